#!/usr/bin/env bash
# Media relay benchmark: usage run_relay.sh SPREEKD SPREEKLOAD SRTPFLOOR EPFLOOR
# 1. the floors per 1200-byte packet: busy loop (srtpfloor: libsrtp unprotect + protect + one UDP
#    sendto on loopback, both SRTP profiles, median of 3 runs) and event-driven (epfloor: the same
#    work in an epoll forwarder woken once per arriving packet, 10 streams at random spacing,
#    RELAY_EP_PPS packets/s per stream, fan-out 1, 2 and 3, CPU per forwarded packet, median of 3);
# 2. the acceptance run: spreekload, 20 consults x 2 participants for 30 s, 160 pps x 1100 bytes
#    per publisher (its JSON summary is printed as is);
# 3. spreekd CPU time per forwarded packet at fan-out 1, 2 and 3: consults of 2, 3 and 4
#    participants in which every participant publishes (CPU / packets delivered to the other
#    participants), median of RELAY_REPEAT runs, and the ratios to both floors;
# 4. the highest forwarded packet rate one relay worker sustains with loss below 0.1 %
#    (--relay-workers 1, the publishers' rate ramped in steps).
# Every spreekload run starts its own spreekd (temporary data directory, free port). The last
# line is one JSON object with every figure. Settings (environment): RELAY_REPEAT (3),
# RELAY_DURATION (6 s per fan-out run), RELAY_ACCEPT_DURATION (30), RELAY_CONSULTS (6 per fan-out
# run), RELAY_RAMP ("160,800,1600,2400,3200,4000,4800" pps per publisher), RELAY_RAMP_STEP (4 s), RELAY_EP_PPS ("50,160,800,2000"), RELAY_EP_SECONDS (1.5).
set -euo pipefail
spreekd=$1
load=$2
floor=$3
epfloor=$4
repeat=${RELAY_REPEAT:-3}
dur=${RELAY_DURATION:-6}
out=$(mktemp -d "${TMPDIR:-/tmp}/spreekrelay.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "-- floor: libsrtp unprotect + protect + UDP sendto, 1200-byte packets"
"$floor" --packets 100000 --repeat 3 | tee "$out/floor.json"

echo "-- event-driven floor: epoll forwarder, 10 streams, one wake-up per arrival"
"$epfloor" --streams 10 --pps "${RELAY_EP_PPS:-50,160,800,2000}" --fanouts 1,2,3 \
  --seconds "${RELAY_EP_SECONDS:-1.5}" --repeat 3 | tee "$out/epfloor.json"

echo "-- acceptance: 20 consults x 2 participants, ${RELAY_ACCEPT_DURATION:-30} s"
"$load" --spreekd "$spreekd" --consults 20 --participants 2 \
  --duration "${RELAY_ACCEPT_DURATION:-30}" | tee "$out/accept.json" || true

for k in 2 3 4; do
  for r in $(seq 1 "$repeat"); do
    echo "-- fan-out $((k - 1)): ${RELAY_CONSULTS:-6} consults x $k participants, all publishing, run $r"
    "$load" --spreekd "$spreekd" --consults "${RELAY_CONSULTS:-6}" --participants "$k" \
      --duration "$dur" | tee "$out/fan$k.$r.json" || true
  done
done

echo "-- one worker: ramp ${RELAY_RAMP:-160,800,1600,2400,3200,4000,4800} pps per publisher"
"$load" --spreekd "$spreekd" --relay-workers 1 --consults 10 --participants 2 \
  --rates "${RELAY_RAMP:-160,800,1600,2400,3200,4000,4800}" --duration "${RELAY_RAMP_STEP:-4}" \
  | tee "$out/ramp.json" || true

node "$(dirname "$0")/relay_summary.mjs" "$out" "$repeat"
