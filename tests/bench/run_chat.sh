#!/usr/bin/env bash
# The delivery service under load: usage run_chat.sh SPREEKD SPREEKLOAD OUTDIR
# 0. chat_core_bench (next to this build's spreekd: OUTDIR/tests/bench/chat_core_bench): the
#    cost of one application message inside the core, without sockets, BENCH_CHAT_CORE_CONVS
#    (1000) conversations of 5 devices, BENCH_CHAT_CORE_MESSAGES (10) messages per conversation,
#    mode and round, BENCH_CHAT_CORE_ROUNDS (3) rounds, modes BENCH_CHAT_CORE_BATCHES ("1 16 64":
#    1 = a transaction per message, B = group commit after every B messages) -> OUTDIR/chat-core.json;
# 1. spreekload --chat: BENCH_CHAT_CONVS (1000) conversations of 5 C devices (care_team and
#    consult alternating), application messages of 100 bytes offered at each rate of
#    BENCH_CHAT_RATES ("2000 5000 10000 20000 40000") per second for BENCH_CHAT_SECONDS (10),
#    cumulative acknowledgements every second -> OUTDIR/chat.json;
# 2. spreekload --chat --commit-sizes: Commits at group sizes BENCH_CHAT_COMMIT_SIZES
#    ("2 100 1000"), BENCH_CHAT_COMMITS (20) of each kind -> OUTDIR/chat-commit.json;
# 3. with BENCH_PERF=1: a run at BENCH_CHAT_PERF_RATE (10000) profiled with perf record -g on
#    spreekd for 8 s -> OUTDIR/chat-perf.data and the top of the report.
# Every run starts its own spreekd (temporary data directory, free port on 127.0.0.1).
set -euo pipefail
here=$(dirname "$0")
spreekd=$1 load=$2 out=$3
convs=${BENCH_CHAT_CONVS:-1000}
rates=${BENCH_CHAT_RATES:-2000 5000 10000 20000 40000}
secs=${BENCH_CHAT_SECONDS:-10}
sizes=${BENCH_CHAT_COMMIT_SIZES:-2 100 1000}
core_batches=${BENCH_CHAT_CORE_BATCHES:-1 16 64}
"$out/tests/bench/chat_core_bench" --conversations "${BENCH_CHAT_CORE_CONVS:-1000}" \
  --messages "${BENCH_CHAT_CORE_MESSAGES:-10}" --rounds "${BENCH_CHAT_CORE_ROUNDS:-3}" \
  --batches "${core_batches// /,}" >"$out/chat-core.json" 2>"$out/chat-core.err" ||
  echo "run_chat: the core benchmark reported errors (see $out/chat-core.err)"
node "$here/chat_summary.mjs" "$out/chat-core.json"
"$load" --chat --spreekd "$spreekd" --conversations "$convs" --devices 5 --kind mixed \
  --rates "${rates// /,}" --duration "$secs" --ack-ms 1000 >"$out/chat.json" 2>"$out/chat.err" ||
  echo "run_chat: the message run reported errors (see $out/chat.err)"
node "$here/chat_summary.mjs" "$out/chat.json"
"$load" --chat --spreekd "$spreekd" --commit-sizes "${sizes// /,}" \
  --commits "${BENCH_CHAT_COMMITS:-20}" >"$out/chat-commit.json" 2>"$out/chat-commit.err" ||
  echo "run_chat: the Commit run reported errors (see $out/chat-commit.err)"
node "$here/chat_summary.mjs" "$out/chat-commit.json"
if [[ "${BENCH_PERF:-0}" == 1 ]] && command -v perf >/dev/null; then
  err="$out/chat-perf.err"
  "$load" --chat --spreekd "$spreekd" --conversations "$convs" --devices 5 --kind mixed \
    --rates "${BENCH_CHAT_PERF_RATE:-10000}" --duration 15 >"$out/chat-perf.json" 2>"$err" &
  lp=$! pid=""
  for _ in $(seq 1 3000); do
    grep -q 'messages/s for' "$err" 2>/dev/null && break
    sleep 0.1
  done
  pid=$(sed -n 's/^spreekload: spreekd pid \([0-9]*\).*/\1/p' "$err")
  sleep 2
  perf record -g -o "$out/chat-perf.data" -p "$pid" -- sleep 8 >/dev/null 2>&1 || true
  wait "$lp" || true
  node "$here/chat_summary.mjs" "$out/chat-perf.json"
  perf report -i "$out/chat-perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep '%' | head -n 40 || true
fi
