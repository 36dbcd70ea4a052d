#!/usr/bin/env bash
# Benchmarks on a Release build, one section each ("== name"); docs/performance.md has the method
# and the figures. Usage: scripts/bench.sh [section ...]   (default: every section)
# A section is a function section_<name> below, listed in all_sections.
# Settings of the signaling section (environment): BENCH_CLIENTS (1000), BENCH_IDLE (10000),
# BENCH_DURATION (5 s measured per load phase), BENCH_WARMUP (1 s), BENCH_REPEAT (3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
build=build/bench
all_sections=(signaling)

machine() {
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)," \
    "kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')"
}

section_signaling() {
  echo "== signaling"
  # spreekbench starts a fresh spreekd for every round on a free loopback port with a temporary
  # data directory and generous limits (tests/bench/run_signaling.sh), and stops it with SIGTERM
  # after the round; the same for its built-in floor server.
  local t0=$SECONDS
  bash tests/bench/run_signaling.sh "$build/server/spreekd" "$build/tests/bench/spreekbench" \
    --clients "${BENCH_CLIENTS:-1000}" --idle "${BENCH_IDLE:-10000}" \
    --duration "${BENCH_DURATION:-5}" --warmup "${BENCH_WARMUP:-1}" --repeat "${BENCH_REPEAT:-3}" \
    | tee "$build/signaling.out"
  tail -n 1 "$build/signaling.out" >"$build/signaling.json"
  echo "signaling: $((SECONDS - t0)) s; JSON summary in $build/signaling.json"
}

sections=("$@")
((${#sections[@]})) || sections=("${all_sections[@]}")
for s in "${sections[@]}"; do
  declare -F "section_$s" >/dev/null || {
    echo "bench: unknown section $s (sections: ${all_sections[*]})" >&2
    exit 2
  }
done

echo "== build (Release)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPK_TESTS=ON >/dev/null
cmake --build "$build" -j"$jobs" --target spreekd spreekbench
machine
for s in "${sections[@]}"; do
  "section_$s"
done
