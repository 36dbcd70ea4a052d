#!/usr/bin/env bash
# Builds and runs the whole test suite: a -Werror build with every test (unit, vectors,
# integration, browser, fuzz corpus replay), then an ASan+UBSan build running the suite again
# (browser tests excepted). Benchmarks are separate: scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== build (warnings as errors)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPK_WERROR=ON >/dev/null
cmake --build build/test -j"$jobs"
echo "== tests"
ctest --test-dir build/test --output-on-failure -j"$jobs" -LE bench

echo "== build (ASan+UBSan, clang)"
cmake -S . -B build/asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSPK_WERROR=ON \
  -DSPK_SANITIZE=address,undefined >/dev/null
cmake --build build/asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" -LE 'bench|browser'
