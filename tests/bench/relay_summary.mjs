// Summarises a run_relay.sh directory: usage relay_summary.mjs DIR REPEAT [CAP_REPEAT]
// Prints a table of medians and, as the last line, one JSON object with every figure. Sections
// run_relay.sh left out (RELAY_SKIP) are null.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, repeatArg, capRepeatArg] = process.argv.slice(2);
const repeat = Number(repeatArg);
const capRepeat = Number(capRepeatArg || 0);
const read = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8').trim().split('\n').pop());
// A run's JSON, or null when it is missing or did not finish.
const readOpt = (name) => {
  try {
    return existsSync(join(dir, name)) ? read(name) : null;
  } catch {
    return null;
  }
};
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? null : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const r1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

const floor = read('floor.json');
const floorUs = floor.gcm.floor_ns / 1000;
// The event-driven floor (epfloor) at a rate per stream and fan-out: the nearest measured rate;
// also with a receiver waiting for the forwarded packets (--sink-wait 1, when measured).
const epfloor = read('epfloor.json');
const epfloorWait = readOpt('epfloor_wait.json');
const epFloorUs = (pps, fan, ep = epfloor) => {
  if (!ep) return null;
  let best = null;
  for (const x of ep.results) {
    if (x.fanout !== fan) continue;
    if (!best || Math.abs(Math.log(x.pps_per_stream / pps)) < Math.abs(Math.log(best.pps_per_stream / pps))) best = x;
  }
  return best ? best.us_per_forwarded : null;
};
const accept = readOpt('accept.json');
const fanout = [];
for (const k of [2, 3, 4]) {
  const runs = [];
  for (let r = 1; r <= repeat; r++) {
    const x = readOpt(`fan${k}.${r}.json`);
    if (x) runs.push(x);
  }
  if (runs.length === 0) continue;
  const m = (key) => median(runs.map((x) => x[key]));
  const perFwd = m('spreekd_cpu_us_per_forwarded');
  const perSent = m('spreekd_cpu_us_per_sent');
  const ep = epFloorUs(runs[0].pps_per_publisher || 160, k - 1);
  const epw = epFloorUs(runs[0].pps_per_publisher || 160, k - 1, epfloorWait);
  fanout.push({
    fanout: k - 1, participants_per_consult: k, consults: runs[0].consults,
    forwarded_pps: r1(m('forwarded_pps')), loss_pct: m('loss_pct'),
    cpu_us_per_forwarded: r1(perFwd), ratio_to_floor: r1(perFwd / floorUs),
    event_floor_us: ep, ratio_to_event_floor: ep ? r1(perFwd / ep) : null,
    cpu_us_per_sent: r1(perSent), ratio_sent_to_floor: r1(perSent / floorUs),
    latency_p50_us: m('latency_p50_us'), latency_p99_us: m('latency_p99_us'),
    worker_cpu_us_per_forwarded: r1(m('worker_cpu_us_per_forwarded')),
    worker_ratio_to_event_floor: ep ? r1(m('worker_cpu_us_per_forwarded') / ep) : null,
    event_floor_wait_us: epw,
    worker_ratio_to_event_floor_wait: epw ? r1(m('worker_cpu_us_per_forwarded') / epw) : null,
    rss_per_participant_bytes: Math.round(m('spreekd_rss_per_participant_bytes')),
    runs: runs.map((x) => r1(x.spreekd_cpu_us_per_forwarded)),
  });
}
// Capacity (spreekload --capacity through one relay worker, capfloor through a minimal
// forwarder) and the one-way delay at half the relay's capacity: medians over the runs.
const capRuns = (prefix) => {
  const runs = [];
  for (let r = 1; r <= capRepeat; r++) {
    const x = readOpt(`${prefix}.${r}.json`);
    if (x && x.steps) runs.push(x);
  }
  return runs;
};
const capOf = (runs) => {
  if (runs.length === 0) return null;
  // Per rate: medians of each figure over the runs that reached it.
  const rates = [...new Set(runs.flatMap((x) => x.steps.map((s) => s.pps_per_publisher)))].sort((a, b) => a - b);
  const keys = ['forwarded_pps', 'loss_pct', 'worker_util', 'worker_cpu_us_per_forwarded', 'worker_runqueue_wait_s',
    'gen_cpu_util', 'gen_runqueue_wait_s', 'latency_p50_us', 'latency_p99_us', 'udp_drops_spreekd', 'udp_drops_client'];
  const steps = rates.map((pps) => {
    const at = runs.map((x) => x.steps.find((s) => s.pps_per_publisher === pps)).filter(Boolean);
    const o = { pps_per_publisher: pps, runs: at.length };
    for (const k of keys) o[k] = r1(median(at.map((s) => s[k])));
    o.saturated = at.map((s) => s.saturated || '-');
    // What a worker with a core of its own would carry at this cost per packet.
    o.core_pps = o.worker_cpu_us_per_forwarded > 0 ? Math.round(1e6 / o.worker_cpu_us_per_forwarded) : null;
    return o;
  });
  return {
    max_forwarded_pps: r1(median(runs.map((x) => x.max_forwarded_pps))),
    runs_max_forwarded_pps: runs.map((x) => r1(x.max_forwarded_pps)),
    saturated: runs.map((x) => x.saturated),
    loadavg_1min: runs.map((x) => x.loadavg_1min),
    samples_bad: runs.reduce((a, x) => a + x.steps.reduce((b, s) => b + s.samples_bad, 0), 0),
    steps,
  };
};
const latOf = (runs) => {
  if (runs.length === 0) return null;
  const s = runs.map((x) => x.steps[0]);
  const m = (k) => r1(median(s.map((x) => x[k])));
  return {
    pps_per_publisher: s[0].pps_per_publisher, forwarded_pps: m('forwarded_pps'), loss_pct: m('loss_pct'),
    p50_us: m('latency_p50_us'), p99_us: m('latency_p99_us'), p999_us: m('latency_p999_us'),
    max_us: m('latency_max_us'), worker_cpu_us_per_forwarded: m('worker_cpu_us_per_forwarded'),
    runs: s.map((x) => [x.latency_p50_us, x.latency_p99_us, x.latency_p999_us]),
    saturated: s.map((x) => x.saturated),
    waits: s.map((x) => Math.max(x.worker_runqueue_wait_s, x.gen_runqueue_wait_s) / x.seconds),
    loadavg_1min: runs.map((x) => x.loadavg_1min),
  };
};
const capacity = capRepeat ? {
  relay: capOf(capRuns('cap')), capfloor: capOf(capRuns('capfloor')),
  latency_half_load: { relay: latOf(capRuns('lat')), capfloor: latOf(capRuns('latfloor')) },
} : null;
// The difference means something only when no run of either lost packets or fell behind, and
// neither the forwarder nor the generator waited for a CPU a tenth of the run or more (the
// delays are the scheduler's otherwise).
const clean = (x) => x && x.saturated.every((v) => v === null) && x.waits.every((w) => w < 0.1);
if (capacity && clean(capacity.latency_half_load.relay) && clean(capacity.latency_half_load.capfloor)) {
  const a = capacity.latency_half_load.relay, b = capacity.latency_half_load.capfloor;
  capacity.latency_half_load.added_p50_us = r1(a.p50_us - b.p50_us);
  capacity.latency_half_load.added_p99_us = r1(a.p99_us - b.p99_us);
}

console.log('-- summary (medians)');
console.log(`floor per 1200-byte packet: GCM ${r1(floorUs)} µs (unprotect ${floor.gcm.unprotect_ns} + protect ${floor.gcm.protect_ns} + sendto ${floor.gcm.send_ns} ns), ` +
  `AES-CM/HMAC-SHA1-80 ${r1(floor.cm_hmac.floor_ns / 1000)} µs`);
if (accept) {
  console.log(`acceptance 20x2x${accept.duration_s}s: loss ${accept.loss_pct} % (${accept.packets_received}/${accept.packets_expected}), ` +
    `latency p50 ${accept.latency_p50_us} µs p99 ${accept.latency_p99_us} µs, join p50 ${accept.join_p50_ms} ms p99 ${accept.join_p99_ms} ms, ` +
    `spreekd ${r1(accept.spreekd_cpu_us_per_forwarded)} µs CPU per forwarded packet, RSS ${accept.spreekd_rss_kb} KiB ` +
    `(${Math.round(accept.spreekd_rss_per_participant_bytes)} B per participant)`);
}
console.log('event-driven floor (epoll, 10 streams, µs per forwarded packet): ' +
  epfloor.results.map((x) => `${x.pps_per_stream} pps × fan-out ${x.fanout}: ${x.us_per_forwarded}`).join(', '));
if (epfloorWait) {
  console.log('event-driven floor, a receiver waiting for the packets: ' +
    epfloorWait.results.map((x) => `${x.pps_per_stream} pps × fan-out ${x.fanout}: ${x.us_per_forwarded}`).join(', '));
}
console.log('fan-out | consults x K | fwd pps | loss % | CPU µs/fwd | ×floor | ×event floor | workers µs/fwd | ×event floor | ×event floor, receiver waiting | CPU µs/sent | ×floor | p50 µs | p99 µs');
for (const f of fanout) {
  console.log(`${f.fanout} | ${f.consults} x ${f.participants_per_consult} | ${f.forwarded_pps} | ${f.loss_pct} | ` +
    `${f.cpu_us_per_forwarded} | ${f.ratio_to_floor} | ${f.ratio_to_event_floor} | ` +
    `${f.worker_cpu_us_per_forwarded} | ${f.worker_ratio_to_event_floor} | ${f.worker_ratio_to_event_floor_wait} | ` +
    `${f.cpu_us_per_sent} | ${f.ratio_sent_to_floor} | ${f.latency_p50_us} | ${f.latency_p99_us}`);
}
if (capacity) {
  for (const [name, c] of [['relay (one worker)', capacity.relay], ['capfloor (minimal forwarder)', capacity.capfloor]]) {
    if (!c) continue;
    console.log(`capacity, ${name}: ${c.max_forwarded_pps} forwarded packets/s with loss < 0.1 % (median; runs ${c.runs_max_forwarded_pps.join(', ')}; ` +
      `saturated: ${c.saturated.join(', ')}; load average ${c.loadavg_1min.join(', ')}; bad samples ${c.samples_bad})`);
    console.log('  pps/publisher | fwd pps | loss % | worker CPU share | worker µs/fwd | 1 s / (µs/fwd) | run-queue wait s | generator CPU / wait s | p50 µs | p99 µs | drops fwd/gen | saturated');
    for (const s of c.steps) {
      console.log(`  ${s.pps_per_publisher} | ${s.forwarded_pps} | ${s.loss_pct} | ${s.worker_util} | ${s.worker_cpu_us_per_forwarded} | ${s.core_pps} | ` +
        `${s.worker_runqueue_wait_s} | ${s.gen_cpu_util} / ${s.gen_runqueue_wait_s} | ${s.latency_p50_us} | ${s.latency_p99_us} | ${s.udp_drops_spreekd}/${s.udp_drops_client} | ${s.saturated.join(',')}`);
    }
  }
  const l = capacity.latency_half_load;
  for (const [name, x] of [['relay', l.relay], ['capfloor', l.capfloor]]) {
    if (!x) continue;
    console.log(`one-way delay at ${x.pps_per_publisher} pps per publisher (${x.forwarded_pps} forwarded/s), ${name}: ` +
      `p50 ${x.p50_us} µs, p99 ${x.p99_us} µs, p99.9 ${x.p999_us} µs, max ${x.max_us} µs (medians; loss ${x.loss_pct} %; ` +
      `saturated: ${x.saturated.map((v) => v || '-').join(', ')})`);
  }
  if (l.added_p99_us !== undefined) console.log(`added by the relay: p50 ${l.added_p50_us} µs, p99 ${l.added_p99_us} µs`);
  else console.log('added by the relay: not given, a latency run lost packets, fell behind or waited for a CPU');
}
console.log(JSON.stringify({ floor, event_floor: epfloor, event_floor_wait: epfloorWait, acceptance: accept, fanout, capacity }));
