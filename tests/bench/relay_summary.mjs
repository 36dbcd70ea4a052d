// Summarises a run_relay.sh directory: usage relay_summary.mjs DIR REPEAT
// Prints a table of medians and, as the last line, one JSON object with every figure.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, repeatArg] = process.argv.slice(2);
const repeat = Number(repeatArg);
const read = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8').trim().split('\n').pop());
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? null : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const r1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

const floor = read('floor.json');
const floorUs = floor.gcm.floor_ns / 1000;
// The event-driven floor (epfloor) at a rate per stream and fan-out: the nearest measured rate.
const epfloor = read('epfloor.json');
const epFloorUs = (pps, fan) => {
  let best = null;
  for (const x of epfloor.results) {
    if (x.fanout !== fan) continue;
    if (!best || Math.abs(Math.log(x.pps_per_stream / pps)) < Math.abs(Math.log(best.pps_per_stream / pps))) best = x;
  }
  return best ? best.us_per_forwarded : null;
};
const accept = read('accept.json');
const fanout = [];
for (const k of [2, 3, 4]) {
  const runs = [];
  for (let r = 1; r <= repeat; r++) runs.push(read(`fan${k}.${r}.json`));
  const m = (key) => median(runs.map((x) => x[key]));
  const perFwd = m('spreekd_cpu_us_per_forwarded');
  const perSent = m('spreekd_cpu_us_per_sent');
  const ep = epFloorUs(runs[0].pps_per_publisher || 160, k - 1);
  fanout.push({
    fanout: k - 1, participants_per_consult: k, consults: runs[0].consults,
    forwarded_pps: r1(m('forwarded_pps')), loss_pct: m('loss_pct'),
    cpu_us_per_forwarded: r1(perFwd), ratio_to_floor: r1(perFwd / floorUs),
    event_floor_us: ep, ratio_to_event_floor: ep ? r1(perFwd / ep) : null,
    cpu_us_per_sent: r1(perSent), ratio_sent_to_floor: r1(perSent / floorUs),
    latency_p50_us: m('latency_p50_us'), latency_p99_us: m('latency_p99_us'),
    rss_per_participant_bytes: Math.round(m('spreekd_rss_per_participant_bytes')),
    runs: runs.map((x) => r1(x.spreekd_cpu_us_per_forwarded)),
  });
}
const ramp = read('ramp.json');
const steps = ramp.steps || [ramp];
let best = null;
for (const s of steps) if (s.loss_pct < 0.1 && (!best || s.forwarded_pps > best.forwarded_pps)) best = s;

console.log('-- summary (medians)');
console.log(`floor per 1200-byte packet: GCM ${r1(floorUs)} µs (unprotect ${floor.gcm.unprotect_ns} + protect ${floor.gcm.protect_ns} + sendto ${floor.gcm.send_ns} ns), ` +
  `AES-CM/HMAC-SHA1-80 ${r1(floor.cm_hmac.floor_ns / 1000)} µs`);
console.log(`acceptance 20x2x${accept.duration_s}s: loss ${accept.loss_pct} % (${accept.packets_received}/${accept.packets_expected}), ` +
  `latency p50 ${accept.latency_p50_us} µs p99 ${accept.latency_p99_us} µs, join p50 ${accept.join_p50_ms} ms p99 ${accept.join_p99_ms} ms, ` +
  `spreekd ${r1(accept.spreekd_cpu_us_per_forwarded)} µs CPU per forwarded packet, RSS ${accept.spreekd_rss_kb} KiB ` +
  `(${Math.round(accept.spreekd_rss_per_participant_bytes)} B per participant)`);
console.log('event-driven floor (epoll, 10 streams, µs per forwarded packet): ' +
  epfloor.results.map((x) => `${x.pps_per_stream} pps × fan-out ${x.fanout}: ${x.us_per_forwarded}`).join(', '));
console.log('fan-out | consults x K | fwd pps | loss % | CPU µs/fwd | ×floor | ×event floor | CPU µs/sent | ×floor | p50 µs | p99 µs');
for (const f of fanout) {
  console.log(`${f.fanout} | ${f.consults} x ${f.participants_per_consult} | ${f.forwarded_pps} | ${f.loss_pct} | ` +
    `${f.cpu_us_per_forwarded} | ${f.ratio_to_floor} | ${f.ratio_to_event_floor} | ${f.cpu_us_per_sent} | ${f.ratio_sent_to_floor} | ` +
    `${f.latency_p50_us} | ${f.latency_p99_us}`);
}
console.log('one worker, ramp: pps/publisher -> forwarded pps, loss %, worker CPU s / run-queue wait s ' +
  'in the step, CPU µs per forwarded packet, UDP drops relay/client, client CPU');
const r3 = (x) => Math.round(x * 1000) / 1000;
for (const s of steps) {
  console.log(`  ${s.pps_per_publisher} -> ${r1(s.forwarded_pps)}, ${r3(s.loss_pct)} %, ` +
    `${(s.worker_cpu_s || []).join('/')} / ${(s.worker_runqueue_wait_s || []).map(r1).join('/')} s of ${r1(s.seconds)} s, ` +
    `${r1(s.spreekd_cpu_us_per_forwarded)} µs (×${r1(s.spreekd_cpu_us_per_forwarded / floorUs)} floor, ` +
    `×${r1(s.spreekd_cpu_us_per_forwarded / epFloorUs(s.pps_per_publisher, 1))} event floor), drops ${s.udp_drops_spreekd}/${s.udp_drops_client}, client ${r1(s.client_cpu_util)}`);
}
console.log(`one worker sustains ${best ? r1(best.forwarded_pps) : 0} forwarded packets/s with loss < 0.1 %` +
  (best === steps[steps.length - 1] ? ' (the highest step: the limit is above it)' : ''));
console.log(JSON.stringify({
  floor, event_floor: epfloor, acceptance: accept, fanout,
  one_worker: { max_forwarded_pps: best ? r1(best.forwarded_pps) : 0, at_pps_per_publisher: best ? best.pps_per_publisher : 0, steps },
}));
