#!/usr/bin/env bash
# Builds and runs the whole test suite: a -Werror build with every test (unit, vectors,
# integration, browser, fuzz corpus replay), then an ASan+UBSan build running the suite again,
# then a ThreadSanitizer build running it once more (browser tests excepted in both: they
# exercise the web client, not new server paths). Benchmarks are separate: scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
root=$(pwd)

# Configure quietly but show what configure warns about.
configure() {
  local dir=$1
  shift
  local log="$dir.configure.log"
  mkdir -p "$(dirname "$dir")"
  if ! cmake -S . -B "$dir" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  grep -A3 -i 'warning' "$log" >&2 || true
}

echo "== build (warnings as errors)"
configure build/test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPK_WERROR=ON
cmake --build build/test -j"$jobs"
echo "== tests"
ctest --test-dir build/test --output-on-failure -j"$jobs" -LE bench

echo "== build (ASan+UBSan, clang)"
configure build/asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSPK_WERROR=ON \
  -DSPK_SANITIZE=address,undefined
cmake --build build/asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" -LE 'bench|browser'

echo "== build (ThreadSanitizer, clang)"
configure build/tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSPK_WERROR=ON \
  -DSPK_SANITIZE=thread
cmake --build build/tsan -j"$jobs"
echo "== tests under ThreadSanitizer"
# tests/sanitizers/tsan.supp names only the Debian libraries that are not built with TSan.
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp" \
  ctest --test-dir build/tsan --output-on-failure -j"$jobs" -LE 'bench|browser'
