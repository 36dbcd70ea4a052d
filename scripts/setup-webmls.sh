#!/usr/bin/env bash
# Builds spk_mls (crypto/) for WebAssembly into web/vendor/spk_mls.wasm, the MLS library of the
# browser client and of node test clients (web/mls/spk_mls.js loads it; docs/browser-mls.md).
# Needs emscripten (scripts/setup.sh installs Debian's) and libcrypto for wasm
# (scripts/setup-openssl-wasm.sh, run from here).
#
# Idempotent and fast when already built: web/vendor/spk_mls.stamp holds a hash of every source
# compiled in (crypto/ MLS and HPKE, the common helpers they use, the glue in web/mls/), of the
# public headers, of this script and of the libcrypto build recipe; a matching stamp exits at
# once. The module is linked in a temporary directory, loaded and exercised once in node, and
# only then moved into web/vendor/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
OUT="$ROOT/web/vendor"
SSL="$ROOT/.deps/openssl-wasm"

bash "$ROOT/scripts/setup-openssl-wasm.sh"

SOURCES=(crypto/src/mls/*.c crypto/src/hpke/*.c crypto/src/rand.c common/src/util.c
  common/src/error.c web/mls/spk_mls_wasm.c)
HASHED=("${SOURCES[@]}" crypto/src/mls/*.h crypto/src/*.h crypto/include/spk/*.h
  common/include/spk/*.h scripts/setup-webmls.sh scripts/lib/emscripten-env.sh)
STAMP="$({ sha256sum "${HASHED[@]}"; cat "$SSL/STAMP"; } | sha256sum | cut -d' ' -f1)"
if [ -f "$OUT/spk_mls.wasm" ] && [ "$(cat "$OUT/spk_mls.stamp" 2>/dev/null)" = "$STAMP" ]; then
  exit 0
fi

# shellcheck source=lib/emscripten-env.sh
. "$ROOT/scripts/lib/emscripten-env.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Every function of the public header is exported, so that a new one needs only its wrapper in
# web/mls/spk_mls.js; plus the error names, the layout check and the allocator.
mapfile -t API < <(grep -o 'spk_mls_[a-z0-9_]*(' crypto/include/spk/mls.h | tr -d '(' | sort -u)
EXPORTS="$(printf '"_%s",' "${API[@]}" spk_err_name spk_strerror spk_wasm_layout malloc free)"

t0=$SECONDS
echo "setup-webmls: compiling ${#SOURCES[@]} files with emscripten $(emcc -dumpversion)"
nice emcc -O2 -std=c11 -D_GNU_SOURCE -Wall -Werror -Wno-unused-command-line-argument \
  -Icommon/include -Icrypto/include -Icrypto/src -I"$SSL/include" \
  "${SOURCES[@]}" "$SSL/lib/libcrypto.a" \
  --no-entry -s STANDALONE_WASM=1 -s ALLOW_MEMORY_GROWTH=1 -s ERROR_ON_UNDEFINED_SYMBOLS=1 \
  -s "EXPORTED_FUNCTIONS=[${EXPORTS%,}]" -o "$WORK/spk_mls.wasm"

# Smoke check: load it with the wrapper, make and check a KeyPackage, create a group, add a
# member, exchange a message.
node --input-type=module - "$WORK/spk_mls.wasm" <<'JS'
import { readFileSync } from 'node:fs';
import { loadMls } from './web/mls/spk_mls.js';
const mls = await loadMls({ wasm: readFileSync(process.argv[2]) });
const a = mls.keyPackageCreate('a');
const b = mls.keyPackageCreate('b');
if (new TextDecoder().decode(mls.keyPackageCheck(b.keyPackage)) !== 'b') throw new Error('kp check');
const ga = mls.create('smoke', a.secret);
const { welcome } = ga.commit({ add: [b.keyPackage] });
ga.commitMerge();
const gb = mls.join(b.secret, welcome);
const ev = gb.process(ga.encrypt('ok'));
if (ev.type !== 'application' || new TextDecoder().decode(ev.data) !== 'ok') throw new Error('message');
ga.free();
gb.free();
JS

mkdir -p "$OUT"
cp "$WORK/spk_mls.wasm" "$OUT/spk_mls.wasm.new"
mv "$OUT/spk_mls.wasm.new" "$OUT/spk_mls.wasm"
echo "$STAMP" >"$OUT/spk_mls.stamp"
raw=$(stat -c %s "$OUT/spk_mls.wasm")
gz=$(gzip -9c "$OUT/spk_mls.wasm" | wc -c)
echo "setup-webmls: ok ($OUT/spk_mls.wasm, $raw bytes, $gz gzipped, $((SECONDS - t0)) s)"
