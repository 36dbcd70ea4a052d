#!/usr/bin/env bash
# Media relay benchmark: usage run_relay.sh SPREEKD SPREEKLOAD SRTPFLOOR EPFLOOR [CAPFLOOR]
# 1. the floors per 1200-byte packet: busy loop (srtpfloor: libsrtp unprotect + protect + one UDP
#    sendto on loopback, both SRTP profiles, median of 3 runs) and event-driven (epfloor: the same
#    work in an epoll forwarder woken once per arriving packet, 10 streams at random spacing,
#    RELAY_EP_PPS packets/s per stream, fan-out 1, 2 and 3, CPU per forwarded packet, median of 3),
#    twice: with the packets drained by the generator between its sends, and (--sink-wait 1) read
#    by a thread that waits for them in epoll_wait() as spreekload's peers do, so that each send
#    also wakes a receiver, as each of the relay's sends in steps 3 and 4 does;
# 2. the acceptance run: spreekload, 20 consults x 2 participants for 30 s, 160 pps x 1100 bytes
#    per publisher (its JSON summary is printed as is);
# 3. spreekd CPU time per forwarded packet at fan-out 1, 2 and 3: consults of 2, 3 and 4
#    participants in which every participant publishes (CPU / packets delivered to the other
#    participants), median of RELAY_REPEAT runs, and the ratios to both floors;
# 4. capacity and added latency of one relay worker (--relay-workers 1), measured with
#    spreekload --capacity (loadtest/capgen.h: packets SRTP-protected ahead of each step, sent with
#    sendmmsg in 200 µs ticks, counted from the RTP header on receipt, one in 256 unprotected and
#    checked), 10 consults x 2 participants: the publishers' rate ramped in steps of
#    RELAY_CAP_STEP s until two steps in a row lose 0.1 % or more; the capacity is the highest
#    forwarded rate with less loss. Interleaved with the same ramp through capfloor (the same
#    generator against a minimal one-thread SRTP forwarder), RELAY_CAP_REPEAT times each. Then
#    the one-way delay at half the relay's median capacity (on a host so contended that no step
#    was loss-free: half of what its CPU cost per packet allows), RELAY_LAT_SECONDS per run, relay
#    and capfloor interleaved RELAY_CAP_REPEAT times: the relay's added latency is the difference.
# Every spreekload run starts its own spreekd (temporary data directory, free port). The last
# line is one JSON object with every figure. Settings (environment): RELAY_REPEAT (3),
# RELAY_DURATION (6 s per fan-out run), RELAY_ACCEPT_DURATION (30), RELAY_CONSULTS (6 per fan-out
# run), RELAY_EP_PPS ("50,160,800,2000"), RELAY_EP_SECONDS (1.5), RELAY_CAP_RAMP
# ("1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,12000,14000,16000" pps per publisher),
# RELAY_CAP_STEP (2), RELAY_CAP_REPEAT (3), RELAY_LAT_SECONDS (5), RELAY_SKIP ("" or a list of
# "accept,fanout" to leave out), RELAY_OUT (keep every run's JSON in this directory).
set -euo pipefail
spreekd=$1
load=$2
floor=$3
epfloor=$4
capfloor=${5:-$(dirname "$load")/capfloor}
skip=${RELAY_SKIP:-}
repeat=${RELAY_REPEAT:-3}
dur=${RELAY_DURATION:-6}
if [[ -n "${RELAY_OUT:-}" ]]; then # keep every run's JSON there
  out=$RELAY_OUT
  mkdir -p "$out"
else
  out=$(mktemp -d "${TMPDIR:-/tmp}/spreekrelay.XXXXXX")
  trap 'rm -rf "$out"' EXIT
fi

echo "-- floor: libsrtp unprotect + protect + UDP sendto, 1200-byte packets"
"$floor" --packets 100000 --repeat 3 | tee "$out/floor.json"

echo "-- event-driven floor: epoll forwarder, 10 streams, one wake-up per arrival"
"$epfloor" --streams 10 --pps "${RELAY_EP_PPS:-50,160,800,2000}" --fanouts 1,2,3 \
  --seconds "${RELAY_EP_SECONDS:-1.5}" --repeat 3 | tee "$out/epfloor.json"
echo "-- event-driven floor with a receiver waiting for the packets (as spreekload's peers)"
"$epfloor" --streams 10 --pps "${RELAY_EP_PPS:-50,160,800,2000}" --fanouts 1,2,3 \
  --seconds "${RELAY_EP_SECONDS:-1.5}" --repeat 3 --sink-wait 1 | tee "$out/epfloor_wait.json"

if [[ ",$skip," != *,accept,* ]]; then
  echo "-- acceptance: 20 consults x 2 participants, ${RELAY_ACCEPT_DURATION:-30} s"
  "$load" --spreekd "$spreekd" --consults 20 --participants 2 \
    --duration "${RELAY_ACCEPT_DURATION:-30}" | tee "$out/accept.json" || true
fi

if [[ ",$skip," != *,fanout,* ]]; then
  for k in 2 3 4; do
    for r in $(seq 1 "$repeat"); do
      echo "-- fan-out $((k - 1)): ${RELAY_CONSULTS:-6} consults x $k participants, all publishing, run $r"
      "$load" --spreekd "$spreekd" --consults "${RELAY_CONSULTS:-6}" --participants "$k" \
        --duration "$dur" | tee "$out/fan$k.$r.json" || true
    done
  done
fi

ramp=${RELAY_CAP_RAMP:-1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,12000,14000,16000}
cap_repeat=${RELAY_CAP_REPEAT:-3}
echo "-- capacity of one worker: ramp $ramp pps per publisher, 10 consults x 2, relay and capfloor interleaved"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$cap_repeat"); do
  echo "-- capacity, relay, run $r"
  "$load" --spreekd "$spreekd" --relay-workers 1 --consults 10 --participants 2 --capacity \
    --rates "$ramp" --duration "${RELAY_CAP_STEP:-2}" >"$out/cap.$r.json" || true
  echo "-- capacity, capfloor, run $r"
  "$capfloor" --consults 10 --participants 2 --rates "$ramp" --duration "${RELAY_CAP_STEP:-2}" \
    >"$out/capfloor.$r.json" || true
done
# Half the relay's median capacity, as a rate per publisher (10 consults x 2, fan-out 1); when no
# run had a loss-free step (a contended host), half of what the worker's CPU cost per forwarded
# packet at its highest step allows on a core of its own.
half=$(node -e '
const fs = require("fs");
const med = (v) => { v.sort((a, b) => a - b); const n = v.length; return n === 0 ? 0 : n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; };
const runs = [];
for (let r = 1; r <= Number(process.argv[2]); r++) {
  try { runs.push(JSON.parse(fs.readFileSync(`${process.argv[1]}/cap.${r}.json`, "utf8"))); } catch {}
}
let cap = med(runs.map((x) => x.max_forwarded_pps || 0));
if (!(cap > 0)) {
  cap = med(runs.map((x) => x.steps && x.steps.length ? x.steps[x.steps.length - 1].worker_cpu_us_per_forwarded : -1)
    .filter((us) => us > 0).map((us) => 1e6 / us));
  console.error("capacity: no loss-free step; half of 1 s / worker CPU per forwarded packet");
}
console.log(Math.max(100, Math.round(cap / 2 / 20)));
' "$out" "$cap_repeat")
echo "-- latency at half the relay's capacity: $half pps per publisher ($((half * 20)) forwarded packets/s)"
for r in $(seq 1 "$cap_repeat"); do
  "$load" --spreekd "$spreekd" --relay-workers 1 --consults 10 --participants 2 --capacity \
    --rates "$half" --duration "${RELAY_LAT_SECONDS:-5}" >"$out/lat.$r.json" || true
  "$capfloor" --consults 10 --participants 2 --rates "$half" --duration "${RELAY_LAT_SECONDS:-5}" \
    >"$out/latfloor.$r.json" || true
done

node "$(dirname "$0")/relay_summary.mjs" "$out" "$repeat" "$cap_repeat"
