#!/usr/bin/env bash
# Builds libsrtp2 against OpenSSL from the distribution's own source package into .deps/libsrtp
# (static, -fPIC). Debian's binary libsrtp2 uses NSS, which is several times slower and takes a
# process-wide lock; spreekd links this build instead and never loads the NSS one.
#
# The source comes from scripts/lib/fetch-source.sh, which derives a deb-src entry from the
# machine's own apt sources when there is none and removes it again afterwards.
#
# Idempotent: exits at once when .deps/libsrtp/STAMP names the same build recipe (a hash of
# this script). The new library is built and checked in a temporary prefix and only then moved
# into place, so a failed build leaves the previous one usable.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PREFIX="$ROOT/.deps/libsrtp"
LIB="$PREFIX/lib/libsrtp2.a"
RECIPE="$(sha256sum "$ROOT/scripts/setup-libsrtp.sh" | cut -d' ' -f1)"

if [ -f "$LIB" ] && [ -f "$PREFIX/include/srtp2/srtp.h" ] &&
  [ "$(cat "$PREFIX/STAMP" 2>/dev/null)" = "$RECIPE" ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
for tool in make cc; do
  command -v "$tool" >/dev/null 2>&1 || $SUDO apt-get install -y -qq --no-install-recommends build-essential
done
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q "install ok installed" ||
  $SUDO apt-get install -y -qq --no-install-recommends libssl-dev pkg-config

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
SRCDIR="$(bash "$ROOT/scripts/lib/fetch-source.sh" libsrtp2 "$WORK")"
if [ ! -x "$SRCDIR/configure" ]; then
  echo "setup-libsrtp: source package did not unpack to a configurable tree" >&2
  exit 1
fi

STAGE="$WORK/prefix"
echo "setup-libsrtp: building $(basename "$SRCDIR") with OpenSSL"
(
  cd "$SRCDIR"
  CFLAGS="-O2 -fPIC" ./configure --enable-openssl --disable-shared --enable-static \
    --prefix="$STAGE" >"$WORK/configure.log" 2>&1 || { tail -n 30 "$WORK/configure.log" >&2; exit 1; }
  grep -q '^#define OPENSSL 1' crypto/include/config.h 2>/dev/null || grep -rq 'define OPENSSL 1' . ||
    { echo "setup-libsrtp: configure did not enable OpenSSL" >&2; exit 1; }
  make -j"$(nproc 2>/dev/null || echo 2)" libsrtp2.a >"$WORK/make.log" 2>&1 ||
    { tail -n 30 "$WORK/make.log" >&2; exit 1; }
  make install >"$WORK/install.log" 2>&1 || { tail -n 30 "$WORK/install.log" >&2; exit 1; }
)

# Verify: the library must call OpenSSL (EVP) and offer AEAD AES-128-GCM, and must not use NSS.
cat >"$WORK/check.c" <<'EOF'
#include <srtp2/srtp.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    if (srtp_init() != srtp_err_status_ok) {
        return 1;
    }
    if (srtp_crypto_policy_set_from_profile_for_rtp(&p.rtp, srtp_profile_aead_aes_128_gcm) !=
        srtp_err_status_ok) {
        return 2;
    }
    if (srtp_crypto_policy_set_from_profile_for_rtp(&p.rtp, srtp_profile_aes128_cm_sha1_80) !=
        srtp_err_status_ok) {
        return 3;
    }
    printf("%s\n", srtp_get_version_string());
    srtp_shutdown();
    return 0;
}
EOF
cc -O0 -I"$STAGE/include" "$WORK/check.c" "$STAGE/lib/libsrtp2.a" $(pkg-config --libs libcrypto) \
  -o "$WORK/check"
"$WORK/check"
SYMS="$(nm "$STAGE/lib/libsrtp2.a" 2>/dev/null || true)"
if ! grep -q ' U EVP_CIPHER_CTX_new' <<<"$SYMS"; then
  echo "setup-libsrtp: $LIB does not reference OpenSSL EVP" >&2
  exit 1
fi
if grep -q ' U NSS_' <<<"$SYMS"; then
  echo "setup-libsrtp: $LIB references NSS" >&2
  exit 1
fi
for pc in "$STAGE"/lib/pkgconfig/*.pc; do
  [ -f "$pc" ] && sed -i "s|$STAGE|$PREFIX|g" "$pc"
done
echo "$RECIPE" >"$STAGE/STAMP"
mkdir -p "$(dirname "$PREFIX")"
rm -rf "$PREFIX.old"
[ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$STAGE" "$PREFIX"
rm -rf "$PREFIX.old"
echo "setup-libsrtp: ok ($LIB)"
