#!/usr/bin/env bash
# Builds spreekd and runs it with the embedded defaults: listens on 127.0.0.1:8480, data in
# ./data (SQLite, generated issuer key), the media relay on 127.0.0.1, and prints a
# ready-to-open GP console link.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSPK_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target spreekd spreekctl >/dev/null
exec build/release/server/spreekd --data ./data --relay-address 127.0.0.1 "$@"
