#!/usr/bin/env bash
# Smoke test of the capacity mode: usage smoke_capacity.sh SPREEKD SPREEKLOAD CAPFLOOR
# spreekload --capacity, 2 consults x 3 participants (fan-out 2) through one relay worker, and
# capfloor (the same generator, here with a receiving thread of its own, through a minimal
# forwarder), each one 2 s step at 200 packets/s per publisher (2,400 forwarded packets/s):
# nothing lost, duplicated or unaccounted, sampled packets checked (unprotected with the
# subscriber's SRTP session, content matching what was sent) with none bad, and the step's
# figures complete. At this rate on loopback a lost packet is a bug, not load.
set -euo pipefail
check() {
  node -e '
const [name, txt] = process.argv.slice(1);
const o = JSON.parse(txt);
const fail = (why) => { console.error(`smoke ${name}: ${why}`); process.exit(1); };
if (o.mode !== "capacity" || o.fanout !== 2 || !Array.isArray(o.steps) || o.steps.length !== 1) fail("shape");
const s = o.steps[0];
if (s.packets_sent !== 6 * 400) fail(`sent ${s.packets_sent}, want 2400`);
if (s.packets_expected !== 2 * s.packets_sent) fail(`expected ${s.packets_expected}`);
if (s.packets_received !== s.packets_expected || s.loss_pct !== 0) fail(`loss: ${s.packets_received} of ${s.packets_expected}`);
if (s.duplicates !== 0 || s.stray !== 0 || s.send_errors !== 0) fail("duplicates, stray or send errors");
if (!(s.samples_checked >= 15) || s.samples_bad !== 0) fail(`samples ${s.samples_checked}, bad ${s.samples_bad}`);
if (!(s.latency_p50_us > 0 && s.latency_p50_us <= s.latency_p99_us && s.latency_p99_us <= s.latency_max_us)) fail("latency percentiles");
if (!(s.worker_cpu_s > 0 && s.worker_cpu_us_per_forwarded > 0)) fail("forwarder CPU not measured");
if (!(s.gen_cpu_util > 0 && s.gen_cpu_us_per_forwarded > 0)) fail("generator CPU not measured");
if ((o.generator_threads === 2) !== (s.gen_recv_thread_util > 0)) fail("receiving thread");
if (!(s.forwarded_pps > 0 && s.seconds > 0)) fail("rates");
console.log(`smoke ${name}: ok`);
' "$1" "$2"
}
out=$("$2" --spreekd "$1" --relay-workers 1 --consults 2 --participants 3 --capacity --rates 200 \
  --duration 2 --setup-timeout 20)
printf '%s\n' "$out"
check relay "$out"
out=$("$3" --consults 2 --participants 3 --rates 200 --duration 2 --cap-threads 2)
printf '%s\n' "$out"
check capfloor "$out"
