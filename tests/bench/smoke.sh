#!/usr/bin/env bash
# Smoke test of spreekbench against a real spreekd: usage smoke.sh SPREEKD SPREEKBENCH
# A short run (20 clients for 1 s, 200 idle connections, one round); the JSON summary must parse
# and its counts must be sane.
set -euo pipefail
here=$(dirname "$0")
out=$(bash "$here/run_signaling.sh" "$1" "$2" --clients 20 --duration 1 --warmup 0.3 --idle 200 \
  --repeat 1)
printf '%s\n' "$out"
json=$(printf '%s\n' "$out" | tail -n 1)
node -e '
const s = JSON.parse(process.argv[1]);
const fail = (why) => { console.error("smoke: " + why); process.exit(1); };
for (const [name, r] of [["spreekd", s], ["floor", s.floor]]) {
  if (!r) fail("no " + name + " figures");
  for (const k of ["msgs_per_s", "msgs_per_s_with_idle", "rtt_p50_us", "rtt_p99_us",
                   "rtt_p50_us_with_idle"]) {
    if (!(r[k] > 0)) fail(name + "." + k + " is " + r[k]);
  }
  if (!(r.rtt_p50_us <= r.rtt_p99_us && r.rtt_p99_us <= r.rtt_p999_us)) fail(name + ": percentiles out of order");
  if (r.connect_failures !== 0 || r.error_answers !== 0 || r.connections_lost !== 0) {
    fail(name + ": failures " + r.connect_failures + ", errors " + r.error_answers + ", lost " + r.connections_lost);
  }
  if (!(r.rss_per_idle_conn_bytes >= 0 && r.rss_per_idle_conn_bytes < 1e6)) fail(name + ": rss per connection " + r.rss_per_idle_conn_bytes);
}
if (s.clients !== 20 || s.idle_conns !== 200 || s.repeats !== 1) fail("settings not echoed");
if (!(s.rss_per_idle_conn_bytes > 0)) fail("spreekd rss per idle connection not measured");
if (!(s.ratio_msgs > 0)) fail("no ratio");
console.log("smoke: ok");
' "$json"
