#!/usr/bin/env bash
# Builds OpenSSL's libcrypto for WebAssembly (emscripten) from the distribution's own openssl
# source package into .deps/openssl-wasm (static libcrypto.a and headers), for the browser build
# of spk_mls (scripts/setup-webmls.sh, docs/browser-mls.md).
#
# Configured with only what MLS cipher suite 1 needs: no assembler, threads, sockets, DSO,
# engines, TLS or legacy algorithms; SHA-2, HMAC, AES-GCM, X25519 and Ed25519 stay. One patch
# (web/mls/openssl-wasm-entropy.patch) makes the seed source call getentropy(), which the
# module's host answers with crypto.getRandomValues.
#
# Idempotent: exits at once when .deps/openssl-wasm/STAMP names the same build recipe (a hash
# of this script and the patch). The library is built in a temporary prefix and moved into
# place only after its checks passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PREFIX="$ROOT/.deps/openssl-wasm"
PATCH="$ROOT/web/mls/openssl-wasm-entropy.patch"
RECIPE="$(cat "$ROOT/scripts/setup-openssl-wasm.sh" "$PATCH" | sha256sum | cut -d' ' -f1)"

if [ -f "$PREFIX/lib/libcrypto.a" ] && [ -f "$PREFIX/include/openssl/evp.h" ] &&
  [ "$(cat "$PREFIX/STAMP" 2>/dev/null)" = "$RECIPE" ]; then
  exit 0
fi

# shellcheck source=lib/emscripten-env.sh
. "$ROOT/scripts/lib/emscripten-env.sh"
for tool in make perl patch; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "setup-openssl-wasm: $tool not found" >&2
    exit 1
  }
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
SRCDIR="$(bash "$ROOT/scripts/lib/fetch-source.sh" openssl "$WORK")"
if [ ! -x "$SRCDIR/Configure" ]; then
  echo "setup-openssl-wasm: the openssl source package has no Configure" >&2
  exit 1
fi
VERSION="$(basename "$SRCDIR")"
STAGE="$WORK/prefix"
t0=$SECONDS
echo "setup-openssl-wasm: building $VERSION for wasm32 (emscripten $(emcc -dumpversion))"
(
  cd "$SRCDIR"
  patch -p1 --forward --quiet <"$PATCH"
  grep -q '__EMSCRIPTEN__' providers/implementations/rands/seeding/rand_unix.c
  # linux-generic32: a plain 32-bit target with no assembler, which is what wasm32 is to OpenSSL.
  CC=emcc AR=emar RANLIB=emranlib ./Configure linux-generic32 \
    --prefix="$STAGE" --libdir=lib --with-rand-seed=getrandom \
    no-asm no-threads no-shared no-pic no-sock no-dgram no-dso no-engine no-afalgeng no-async \
    no-ui-console no-tests no-autoload-config no-secure-memory no-err no-filenames \
    no-deprecated no-legacy no-fips no-ssl no-tls no-dtls no-ktls no-psk no-srp no-srtp \
    no-nextprotoneg no-ssl-trace no-multiblock no-ct no-ocsp no-ts no-cms no-cmp no-rfc3779 \
    no-comp no-aria no-bf no-blake2 no-camellia no-cast no-chacha no-poly1305 no-cmac no-des \
    no-dh no-dsa no-ec2m no-gost no-idea no-md4 no-mdc2 no-ocb no-rc2 no-rc4 no-rmd160 \
    no-scrypt no-seed no-siphash no-siv no-sm2 no-sm3 no-sm4 no-whirlpool \
    -Os -DOPENSSL_SMALL_FOOTPRINT >"$WORK/configure.log" 2>&1 ||
    { tail -n 30 "$WORK/configure.log" >&2; exit 1; }
  { nice make -j"$(nproc 2>/dev/null || echo 2)" build_generated &&
    nice make -j"$(nproc 2>/dev/null || echo 2)" libcrypto.a; } >"$WORK/make.log" 2>&1 ||
    { tail -n 30 "$WORK/make.log" >&2; exit 1; }
  mkdir -p "$STAGE/lib" "$STAGE/include"
  cp libcrypto.a "$STAGE/lib/"
  cp -r include/openssl "$STAGE/include/"
  rm -f "$STAGE"/include/openssl/*.in
)

# Checks: the archive is wasm and has what spk_mls calls; the configuration is the one above.
SYMS="$(emnm "$STAGE/lib/libcrypto.a" 2>/dev/null || llvm-nm "$STAGE/lib/libcrypto.a")"
for sym in EVP_PKEY_derive EVP_DigestSign EVP_MAC_fetch EVP_CipherInit_ex RAND_bytes; do
  grep -q " T $sym\$" <<<"$SYMS" || {
    echo "setup-openssl-wasm: $sym missing from libcrypto.a" >&2
    exit 1
  }
done
grep -q '# *define OPENSSL_NO_ASM' "$STAGE/include/openssl/configuration.h" || {
  echo "setup-openssl-wasm: configuration.h does not say no-asm" >&2
  exit 1
}
echo "$VERSION" >"$STAGE/VERSION"
echo "$RECIPE" >"$STAGE/STAMP"
mkdir -p "$(dirname "$PREFIX")"
rm -rf "$PREFIX.old"
[ -d "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$STAGE" "$PREFIX"
rm -rf "$PREFIX.old"
echo "setup-openssl-wasm: ok ($PREFIX/lib/libcrypto.a, $VERSION, $((SECONDS - t0)) s)"
