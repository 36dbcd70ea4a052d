#!/usr/bin/env bash
# Builds libsrtp2 against OpenSSL from the distribution's own source package into .deps/libsrtp
# (static, -fPIC). Debian's binary libsrtp2 uses NSS, which is several times slower and takes a
# process-wide lock; spreekd links this build instead and never loads the NSS one.
#
# The deb-src entry is derived at run time from the machine's own apt sources (deb822 files and
# one-line lists): same URIs, suites, components and Signed-By, restricted to the suites of the
# running release. Nothing about a particular mirror is stored in the repository.
#
# Idempotent: exits at once when .deps/libsrtp/STAMP names the same build recipe (a hash of
# this script). The new library is built and checked in a temporary prefix and only then moved
# into place, so a failed build leaves the previous one usable. The deb-src entry it may add is
# removed again when it is done.
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

CODENAME="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
if [ -z "$CODENAME" ]; then
  echo "setup-libsrtp: cannot determine the release codename from /etc/os-release" >&2
  exit 1
fi

SRC_LIST=/etc/apt/sources.list.d/spreekkamer-src.sources

# Emits deb822 "deb-src" stanzas for every "deb" entry whose suite belongs to this release
# (CODENAME, CODENAME-updates, CODENAME-security, ...). Reads deb822 files and one-line lists.
derive_sources() {
  local files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    files+=("$f")
  done
  ((${#files[@]})) || return 0
  awk -v cn="$CODENAME" '
    function suite_ok(s) { return s == cn || index(s, cn "-") == 1 }
    function flush(   n, i, arr, keep) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites != "" && enabled != "no") {
        n = split(suites, arr, /[ \t]+/); keep = ""
        for (i = 1; i <= n; i++) if (arr[i] != "" && suite_ok(arr[i])) keep = keep (keep == "" ? "" : " ") arr[i]
        if (keep != "") {
          printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, keep, comps
          if (signed != "") printf "Signed-By: %s\n", signed
          printf "\n"
        }
      }
      types = uris = suites = comps = signed = enabled = ""
    }
    FILENAME ~ /\.sources$/ {
      if (FNR == 1) flush()
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^#/) next
      if ($0 ~ /^[ \t]/) {
        # Continuation line (e.g. a key embedded in Signed-By): keep it with its field.
        if (k == "signed-by") signed = signed "\n" $0
        next
      }
      key = $0; sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      k = tolower(key)
      if (k == "types") types = val
      else if (k == "uris") uris = val
      else if (k == "suites") suites = val
      else if (k == "components") comps = val
      else if (k == "signed-by") signed = val
      else if (k == "enabled") enabled = tolower(val)
      next
    }
    {
      if (FNR == 1) flush()
      line = $0; sub(/#.*/, "", line)
      n = split(line, w, /[ \t]+/); i = 1
      while (i <= n && w[i] == "") i++
      if (i > n || w[i] != "deb") next
      i++; opts = ""
      if (w[i] ~ /^\[/) {
        while (i <= n) { opts = opts " " w[i]; if (w[i] ~ /\]$/) { i++; break } i++ }
      }
      if (i + 1 > n || !suite_ok(w[i + 1])) next
      printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", w[i], w[i + 1]
      for (j = i + 2; j <= n; j++) if (w[j] != "") printf " %s", w[j]
      printf "\n"
      if (match(opts, /signed-by=[^] \t]+/)) printf "Signed-By: %s\n", substr(opts, RSTART + 10, RLENGTH - 10)
      printf "\n"
    }
    END { flush() }
  ' "${files[@]}"
}

WORK="$(mktemp -d)"
added_src=false
cleanup() {
  rm -rf "$WORK"
  if $added_src; then
    $SUDO rm -f "$SRC_LIST"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
chmod 0755 "$WORK"
# apt-get source downloads as the unprivileged _apt user when it can.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$WORK"
fi

# Source entries the machine already has (other than ours) make ours unnecessary.
have_src=false
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && [ "$f" != "$SRC_LIST" ] || continue
  if grep -Eqs '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' "$f"; then
    have_src=true
  fi
done
if ! $have_src; then
  derive_sources >"$WORK/src.sources"
  if [ ! -s "$WORK/src.sources" ]; then
    echo "setup-libsrtp: no apt source for release '$CODENAME' found to derive deb-src from" >&2
    exit 1
  fi
  if ! cmp -s "$WORK/src.sources" "$SRC_LIST" 2>/dev/null; then
    echo "setup-libsrtp: writing $SRC_LIST (removed again when done)"
    $SUDO install -m 0644 "$WORK/src.sources" "$SRC_LIST"
  fi
  added_src=true
fi

if ! command -v dpkg-source >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends dpkg-dev
fi
for tool in make cc; do
  command -v "$tool" >/dev/null 2>&1 || $SUDO apt-get install -y -qq --no-install-recommends build-essential
done
dpkg-query -W -f='${Status}' libssl-dev 2>/dev/null | grep -q "install ok installed" ||
  $SUDO apt-get install -y -qq --no-install-recommends libssl-dev pkg-config

echo "setup-libsrtp: apt-get update (with deb-src)"
# A failing third-party repository must not stop us; apt-get source below decides.
$SUDO apt-get update -qq || echo "setup-libsrtp: apt-get update reported errors; continuing" >&2

echo "setup-libsrtp: fetching the libsrtp2 source package"
(cd "$WORK" && apt-get source -qq libsrtp2 >/dev/null)
SRCDIR="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'libsrtp2-*' | head -n1)"
if [ -z "$SRCDIR" ] || [ ! -x "$SRCDIR/configure" ]; then
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
