#!/usr/bin/env bash
# Runs a command next to a private Redis server made for it, and stops the server after:
#   tests/lib/with_redis.sh CMD [ARG ...]
# The server (Debian's redis-server) keeps nothing on disk (no snapshots, no append-only file),
# runs from a temporary directory and listens on 127.0.0.1 at a free port only. CMD runs with
#   SPK_TEST_REDIS  its address, 127.0.0.1:PORT (spreekd's --redis)
# Exit status: CMD's; 77 (skip) when no Redis server is installed.
set -euo pipefail
bin=$(command -v redis-server || true)
if [[ -z "$bin" ]]; then
  echo "with_redis: no Redis server installed (apt-get install redis-server)" >&2
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spk-redis.XXXXXX")
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
started=0
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 30000))
  "$bin" --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly no \
    --protected-mode yes --logfile "$tmp/server.log" --daemonize no &
  pid=$!
  for _ in $(seq 50); do
    if grep -q 'Ready to accept connections' "$tmp/server.log" 2>/dev/null; then
      started=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ((started)) && break
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
if ((!started)); then
  echo "with_redis: the server did not start" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
fi
export SPK_TEST_REDIS="127.0.0.1:$port"
set +e
"$@"
rc=$?
set -e
exit $rc
