#!/usr/bin/env bash
# The soak test: spreekd built with ASan+UBSan under consult churn and media for a long run, its
# memory, file descriptors and gauges recorded every 10 s. Not part of scripts/test.sh.
# docs/operations.md ("Soak test") says how to run and read it; docs/performance.md ("Soak")
# has the load it applies, why, and the figures of a 30-minute run.
#
#   bash scripts/soak.sh                 # 30 minutes of load (about 35 minutes in all)
#   bash scripts/soak.sh --minutes 3     # a short run to try it
#   bash scripts/soak.sh --minutes 30 --out build/soak/run1 --churn-rate 2
#
# SOAK_BUILD_DIR (build/asan) and SOAK_TOOLS_DIR (build/test) name the build trees of spreekd and
# spreekctl (ASan+UBSan: <dir>/server/) and of spreekload (<dir>/loadtest/); SOAK_NO_BUILD=1
# skips the builds and runs the binaries found there, e.g. copies made before scripts/test.sh
# rebuilds the default trees.
#
# Every other option goes to tests/soak/soak.mjs (read its header for the list). Output: the
# directory given with --out (default build/soak/<time>): samples.csv, summary.json, spreekd.log
# (spreekd's stderr: its log and any sanitizer report), churn-*.jsonl, media.jsonl, media.log,
# chat.jsonl, chat.log.
# Exit status 0 when every check passed, 1 with the reasons printed when one failed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SOAK_BUILD_DIR:-build/asan}
tools=${SOAK_TOOLS_DIR:-build/test}

if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi

# node_modules for the drivers; gdb reads the live heap at the checkpoints.
[[ -d node_modules/ws ]] && command -v gdb >/dev/null || bash scripts/setup.sh

build_all() {
  echo "== build (ASan+UBSan, clang) in $build"
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSPK_WERROR=ON \
      -DSPK_SANITIZE=address,undefined >"$build.configure.log" 2>&1 || {
      cat "$build.configure.log" >&2
      exit 1
    }
  fi
  nice cmake --build "$build" -j"$(nproc)" --target spreekd spreekctl
  # The media and chat load generator is not under test: it runs from the normal build
  # (build/test, as scripts/test.sh makes it), so that its own CPU use stays small on a shared
  # machine.
  echo "== build (spreekload) in $tools"
  if [[ ! -f $tools/CMakeCache.txt ]]; then
    cmake -S . -B "$tools" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPK_WERROR=ON \
      >"$tools.configure.log" 2>&1 || {
      cat "$tools.configure.log" >&2
      exit 1
    }
  fi
  nice cmake --build "$tools" -j"$(nproc)" --target spreekload
}
if [[ ${SOAK_NO_BUILD:-0} == 1 ]]; then
  echo "== using the binaries in $build and $tools as they are (SOAK_NO_BUILD=1)"
else
  build_all
fi

echo "== soak"
# A loopback-only network namespace: nothing the load does can reach another address, and the
# ports are the namespace's own. It needs root or unprivileged user namespaces.
if ! unshare -n true 2>/dev/null; then
  echo "soak: cannot create a network namespace (unshare -n needs root or user namespaces)" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec unshare -n sh -c 'ip link set lo up && exec node tests/soak/soak.mjs "$@"' sh \
  --spreekd "$build/server/spreekd" --spreekctl "$build/server/spreekctl" \
  --spreekload "$tools/loadtest/spreekload" "$@"
