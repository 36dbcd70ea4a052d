#!/usr/bin/env bash
# Smoke test of spreekload against a real spreekd: usage smoke_spreekload.sh SPREEKD SPREEKLOAD
# 2 consults x 2 participants, 3 s at 160 pps x 1100 bytes per publisher: every participant must
# join and receive media, and nothing may be lost (at 640 packets/s on loopback there is no
# reason for any loss; a lost packet here is a bug, not load).
set -euo pipefail
out=$("$2" --spreekd "$1" --consults 2 --participants 2 --duration 3 --setup-timeout 20)
printf '%s\n' "$out"
node -e '
const s = JSON.parse(process.argv[1]);
const fail = (why) => { console.error("smoke: " + why); process.exit(1); };
if (s.consults !== 2 || s.participants !== 4) fail("settings not echoed");
if (!(s.packets_expected > 0)) fail("nothing expected: " + s.packets_expected);
if (s.packets_received !== s.packets_expected || s.loss_pct !== 0) {
  fail("loss: " + s.packets_received + " of " + s.packets_expected + " (" + s.loss_pct + " %)");
}
if (s.join_without_media !== 0) fail(s.join_without_media + " participants without media");
for (const k of ["signaling_errors", "connections_lost", "media_failures", "send_errors"]) {
  if (s[k] !== 0) fail(k + " = " + s[k]);
}
if (!(s.latency_p50_us > 0 && s.latency_p50_us <= s.latency_p99_us)) fail("latency percentiles");
if (!(s.join_p50_ms > 0 && s.join_p50_ms <= s.join_p99_ms)) fail("join percentiles");
if (!(s.spreekd_cpu_s >= 0 && s.spreekd_rss_kb > 0)) fail("spreekd CPU / RSS not measured");
if (!(s.worker_cpu_us_per_forwarded > 0)) fail("relay worker CPU not measured");
console.log("smoke: ok");
' "$out"
