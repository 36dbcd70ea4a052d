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
all_sections=(signaling memory mls sframe relay relay_nodes e2ee join audit chat store nodes)

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

section_memory() {
  echo "== memory"
  # Memory per idle WebSocket, plain and TLS (tests/bench/idle_memory.mjs): VmRSS of a fresh
  # spreekd before and after opening BENCH_MEM_CONNS (5000) connections, 256 upgrades at a time,
  # BENCH_MEM_REPEAT (3) rounds per mode, medians.
  local t0=$SECONDS
  node tests/bench/idle_memory.mjs "$build/server/spreekd" --conns "${BENCH_MEM_CONNS:-5000}" \
    --repeat "${BENCH_MEM_REPEAT:-3}" | tee "$build/memory.out"
  tail -n 1 "$build/memory.out" >"$build/memory.json"
  echo "memory: $((SECONDS - t0)) s; JSON summary in $build/memory.json"
}

section_mls() {
  echo "== mls"
  # The C library (tests/bench/mls_bench.c), its WebAssembly build in node and in headless
  # Chromium (tests/bench/mls_bench_wasm.mjs, the page served by spreekd) and ts-mls
  # (tests/bench/mls_bench_tsmls.mjs) on the same scenarios, one table with the ratios.
  # Settings: BENCH_MLS_REPS (7), BENCH_MLS_SIZES ("2 10 100 1000").
  local t0=$SECONDS
  cmake --build "$build" -j"$jobs" --target mls_bench
  # shellcheck disable=SC2086
  SPREEKD="$build/server/spreekd" node tests/bench/mls_bench_tsmls.mjs "$build/tests/bench/mls_bench" \
    --reps "${BENCH_MLS_REPS:-7}" ${BENCH_MLS_SIZES:-2 10 100 1000} | tee "$build/mls.out"
  echo "mls: $((SECONDS - t0)) s; table in $build/mls.out"
}

section_sframe() {
  echo "== sframe"
  # tests/bench/sframe_bench.c: encrypt + decrypt of a 1,200-byte frame per cipher suite, through
  # an SFrame context and through MLS-derived keys, against the bare AEAD on OpenSSL measured in
  # the same run. Settings: BENCH_SFRAME_REPS (7), BENCH_SFRAME_ITERS (20000).
  cmake --build "$build" -j"$jobs" --target sframe_bench
  "$build/tests/bench/sframe_bench" --reps "${BENCH_SFRAME_REPS:-7}" \
    --iters "${BENCH_SFRAME_ITERS:-20000}" | tee "$build/sframe.out"
}

section_relay() {
  echo "== relay"
  # tests/bench/run_relay.sh: the floors (srtpfloor: busy loop; epfloor: one epoll wake-up per
  # arriving packet), spreekload's 20 consults x 2 participants
  # for 30 s, CPU per forwarded packet at fan-out 1/2/3 (medians of RELAY_REPEAT runs), and the
  # capacity of one relay worker and the one-way delay at half of it (spreekload --capacity,
  # interleaved with capfloor: the same generator through a minimal SRTP forwarder); every
  # spreekload run starts its own spreekd on loopback.
  # With BENCH_PERF=1 a second acceptance run is profiled: perf record -g -p <spreekd pid>.
  local t0=$SECONDS
  bash tests/bench/run_relay.sh "$build/server/spreekd" "$build/loadtest/spreekload" \
    "$build/loadtest/srtpfloor" "$build/loadtest/epfloor" "$build/loadtest/capfloor" | tee "$build/relay.out"
  tail -n 1 "$build/relay.out" >"$build/relay.json"
  echo "relay: $((SECONDS - t0)) s; JSON summary in $build/relay.json"
  if [[ "${BENCH_PERF:-0}" == 1 ]] && command -v perf >/dev/null; then
    local err="$build/relay-perf.err"
    "$build/loadtest/spreekload" --spreekd "$build/server/spreekd" --consults 20 --participants 2 \
      --duration 12 >"$build/relay-perf.json" 2>"$err" &
    local lp=$! pid=""
    for _ in $(seq 1 100); do
      pid=$(sed -n 's/^spreekload: spreekd pid //p' "$err")
      grep -q '^spreekload: measuring' "$err" && break
      sleep 0.1
    done
    perf record -g -o "$build/relay-perf.data" -p "$pid" -- sleep 8 >/dev/null 2>&1 || true
    wait "$lp" || true
    perf report -i "$build/relay-perf.data" --no-children --sort symbol --stdio -g none \
      2>/dev/null | grep '%' | head -n 25 || true
  fi
}

section_relay_nodes() {
  echo "== relay_nodes"
  # tests/bench/relay_nodes.mjs: werift peers, in-process relay against two spreek-relay nodes
  # side by side, rounds alternating: media set-up, a deliberate rebuild, and the time from a
  # relay node's SIGKILL until media flows again through the other node (BENCH_NODES_ROUNDS, 7).
  local t0=$SECONDS
  sh tests/browser/run.sh node tests/bench/relay_nodes.mjs "$build/server/spreekd" \
    "$build/server/spreek-relay" --rounds "${BENCH_NODES_ROUNDS:-7}" | tee "$build/relay_nodes.out"
  tail -n 1 "$build/relay_nodes.out" >"$build/relay_nodes.json"
  echo "relay_nodes: $((SECONDS - t0)) s; JSON summary in $build/relay_nodes.json"
}

section_e2ee() {
  echo "== e2ee"
  # tests/bench/run_e2ee.sh: spreekd CPU per forwarded packet with plain and with SFrame payloads
  # (spreekload --e2ee), alternating, medians and ratio. Settings: BENCH_E2EE_SECONDS (15),
  # BENCH_E2EE_REPEAT (3).
  bash tests/bench/run_e2ee.sh "$build/server/spreekd" "$build/loadtest/spreekload" |
    tee "$build/e2ee.out"
  # tests/bench/e2ee_browser.mjs: the time frames spend in the browser's SFrame transforms (the
  # latency E2EE adds), against WebCrypto's bare AES-GCM in the same pages. Setting:
  # BENCH_E2EE_BROWSER_SECONDS (20). Needs /usr/bin/chromium.
  if [[ -x /usr/bin/chromium ]]; then
    cmake --build "$build" -j"$jobs" --target spreekctl
    SPREEKD="$build/server/spreekd" SPREEKCTL="$build/server/spreekctl" \
      sh tests/browser/run.sh node tests/bench/e2ee_browser.mjs "${BENCH_E2EE_BROWSER_SECONDS:-20}" |
      tee -a "$build/e2ee.out"
  fi
}

section_join() {
  echo "== join"
  # tests/bench/join_browser.mjs: admit → first decoded remote frame in Chromium (patient and GP),
  # over BENCH_JOINS (20) send-back/admit cycles, without and with end-to-end encryption; the GP
  # admits BENCH_JOIN_WAIT_MS (2000) after the patient appears in the lobby; BENCH_JOIN_FRESH=1
  # makes every join a new patient's first admission, BENCH_JOIN_SPLIT=1 prints the steps.
  # Needs /usr/bin/chromium.
  [[ -x /usr/bin/chromium ]] || { echo "join: no /usr/bin/chromium, skipped"; return; }
  cmake --build "$build" -j"$jobs" --target spreekctl
  local e
  rm -f "$build/join.out"
  for e in 0 1; do
    SPREEKD="$build/server/spreekd" SPREEKCTL="$build/server/spreekctl" \
      sh tests/browser/run.sh node tests/bench/join_browser.mjs "${BENCH_JOINS:-20}" "$e" |
      tee -a "$build/join.out"
  done
}

section_audit() {
  echo "== audit"
  # tests/bench/audit_flood.mjs: an unrelated client's ping round trip while 60 anonymous
  # connections send bad tokens (throttled as configured by default, then with every refusal
  # logged), and while 20 GPs create consults; audit entries committed per second. Setting:
  # BENCH_AUDIT_SECONDS (10 per phase).
  local t0=$SECONDS
  cmake --build "$build" -j"$jobs" --target spreekctl
  node tests/bench/audit_flood.mjs "$build/server/spreekd" "${BENCH_AUDIT_SECONDS:-10}" |
    tee "$build/audit.out"
  echo "audit: $((SECONDS - t0)) s; JSON lines in $build/audit.out"
}

section_store() {
  echo "== store"
  # SQLite against PostgreSQL, on a PostgreSQL server made for the section
  # (tests/lib/with_postgres.sh: a temporary cluster, fsync on, default settings otherwise).
  # tests/bench/db_floor.c: one operation's wall-clock cost to the waiting thread, raw and
  # through spk_store; tests/bench/store_bench.mjs: consult.get and consult.create round trips/s
  # and chat.send messages/s through spreekd. Settings: BENCH_STORE_SECONDS (5 per phase),
  # BENCH_STORE_REPEAT (3 rounds), BENCH_STORE_CLIENTS (50).
  local t0=$SECONDS
  cmake --build "$build" -j"$jobs" --target db_floor
  bash tests/lib/with_postgres.sh "$build/tests/bench/db_floor" | tee "$build/store-floor.out"
  bash tests/lib/with_postgres.sh node tests/bench/store_bench.mjs "$build/server/spreekd" \
    --seconds "${BENCH_STORE_SECONDS:-5}" --repeat "${BENCH_STORE_REPEAT:-3}" \
    --clients "${BENCH_STORE_CLIENTS:-50}" | tee "$build/store.out"
  tail -n 1 "$build/store.out" >"$build/store.json"
  echo "store: $((SECONDS - t0)) s; JSON summary in $build/store.json"
}

section_nodes() {
  echo "== nodes"
  # Two spreekd nodes on one PostgreSQL and one Redis made for the section
  # (tests/lib/with_postgres.sh, tests/lib/with_redis.sh); tests/bench/bus_bench.mjs: latency of
  # a lobby event and of a chat entry to a client on the same node and on the other node, p50
  # and p99 over BENCH_NODES_ROUNDS (300) rounds each.
  local t0=$SECONDS
  bash tests/lib/with_postgres.sh bash tests/lib/with_redis.sh node tests/bench/bus_bench.mjs \
    "$build/server/spreekd" --rounds "${BENCH_NODES_ROUNDS:-300}" | tee "$build/nodes.out"
  tail -n 1 "$build/nodes.out" >"$build/nodes.json"
  # tests/bench/store_bench.mjs --nodes: signaling round trips/s (read) and chat messages/s
  # (chat) with one and with three spreekd nodes on the same PostgreSQL and Redis, clients
  # spread evenly over the nodes (BENCH_STORE_SECONDS, BENCH_STORE_REPEAT, BENCH_STORE_CLIENTS).
  for n in 1 3; do
    bash tests/lib/with_postgres.sh bash tests/lib/with_redis.sh node tests/bench/store_bench.mjs \
      "$build/server/spreekd" --nodes "$n" --phases read,chat --seconds "${BENCH_STORE_SECONDS:-5}" \
      --repeat "${BENCH_STORE_REPEAT:-3}" --clients "${BENCH_STORE_CLIENTS:-50}" |
      tee "$build/nodes-scale-$n.out"
  done
  echo "nodes: $((SECONDS - t0)) s; JSON in $build/nodes.json, $build/nodes-scale-{1,3}.out"
}

section_chat() {
  echo "== chat"
  # tests/bench/run_chat.sh: first the core alone (chat_core_bench: CPU per message with a
  # transaction per message and with group commit, BENCH_CHAT_CORE_*), then the delivery service
  # under spreekload --chat (C devices with spk_mls,
  # loadtest/load_chat*.c; every run starts its own spreekd): BENCH_CHAT_CONVS (1000)
  # conversations of 5 devices, application messages offered at each of BENCH_CHAT_RATES per
  # second for BENCH_CHAT_SECONDS (10) — persisted and fanned out per second, end-to-end p50/p99
  # from send to every recipient's receipt, spreekd's CPU per message — then Commit handling at
  # group sizes BENCH_CHAT_COMMIT_SIZES. With BENCH_PERF=1 another run at BENCH_CHAT_PERF_RATE is
  # profiled (perf record -g on spreekd).
  local t0=$SECONDS
  cmake --build "$build" -j"$jobs" --target chat_core_bench
  bash tests/bench/run_chat.sh "$build/server/spreekd" "$build/loadtest/spreekload" "$build" |
    tee "$build/chat.out"
  echo "chat: $((SECONDS - t0)) s; JSON in $build/chat*.json"
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
cmake --build "$build" -j"$jobs" --target spreekd spreek-relay spreekbench spreekload srtpfloor \
  epfloor capfloor
machine
for s in "${sections[@]}"; do
  "section_$s"
done
