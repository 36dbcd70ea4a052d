#!/usr/bin/env bash
# The relay with end-to-end encrypted media on and off: usage run_e2ee.sh SPREEKD SPREEKLOAD
# spreekload, 20 consults x 2 participants at 160 pps x 1100 bytes for BENCH_E2EE_SECONDS (15),
# alternating plain payloads and SFrame frames (--e2ee) BENCH_E2EE_REPEAT (3) times; prints
# spreekd's CPU per forwarded packet of each run, the medians and their ratio. The relay does
# the same work for both (it never looks into payloads), so the ratio is 1 within noise.
set -euo pipefail
secs=${BENCH_E2EE_SECONDS:-15}
reps=${BENCH_E2EE_REPEAT:-3}
plain=()
e2ee=()
for i in $(seq 1 "$reps"); do
  for mode in plain e2ee; do
    flag=()
    [[ $mode == e2ee ]] && flag=(--e2ee)
    out=$("$2" --spreekd "$1" --consults 20 --participants 2 --duration "$secs" "${flag[@]}" 2>/dev/null)
    us=$(node -e 'const s=JSON.parse(process.argv[1]); if (s.loss_pct > 1) process.exit(1);
      console.log(s.spreekd_cpu_us_per_forwarded.toFixed(2))' "$out")
    echo "run $i $mode: $us µs spreekd CPU per forwarded packet"
    if [[ $mode == e2ee ]]; then e2ee+=("$us"); else plain+=("$us"); fi
  done
done
node -e '
const med = (a) => { const s = a.map(Number).sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const p = med(process.argv[1].split(" ")), e = med(process.argv[2].split(" "));
console.log(JSON.stringify({ plain_us_per_fwd: p, e2ee_us_per_fwd: e, ratio: +(e / p).toFixed(3) }));
' "${plain[*]}" "${e2ee[*]}"
