// Benchmark (scripts/bench.sh section relay_nodes): what running the media on relay nodes costs
// and how fast a consult recovers when its node dies, with werift peers on loopback
// (tests/integration/media/peer.mjs).
//
// Per round and mode, one fresh consult (a GP and an admitted patient):
//  - setup: from the first media.publish until each side has received 10 video and 10 audio
//    packets of the other — in-process relay (baseline) and on a relay node;
//  - rebuild: both peers rebuild their connections on purpose (media.stop, publish, subscribe, as
//    after any failure) until media flows again — in-process (baseline) and on relay nodes;
//  - node loss: SIGKILL of the node carrying the consult until media flows again through the
//    other node (the node is started again for the next round).
// Medians over --rounds (5); the last line is a JSON summary.
//
// Usage: node tests/bench/relay_nodes.mjs <spreekd> <spreek-relay> [--rounds N]
import { freePort, startRelay } from '../integration/lib/relay_nodes.mjs';
import { boot, consultWithPatient } from '../integration/signaling/fixture.mjs';
import { Peer, waitFor } from '../integration/media/peer.mjs';

const [spreekd, relayBin] = process.argv.slice(2);
const ri = process.argv.indexOf('--rounds');
const ROUNDS = ri > 0 ? Number(process.argv[ri + 1]) : 5;
if (!spreekd || !relayBin || !(ROUNDS > 0)) {
  console.error('usage: relay_nodes.mjs <spreekd> <spreek-relay> [--rounds N]');
  process.exit(2);
}
process.env.SPREEKD = spreekd;
process.env.SPREEK_RELAY = relayBin;
const SECRET = 'bench-relay-link-secret-0123456789';
const N = 10;
const LIMIT_MS = 30000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const snap = (p) => ({ gp: p.gp.countFrom(p.tagPt), pt: p.pt.countFrom(p.tagGp) });
const grew = (p, base, n) => {
  const now = snap(p);
  return ['gp', 'pt'].every((k) => now[k].video - base[k].video >= n && now[k].audio - base[k].audio >= n);
};
const ZERO = { gp: { video: 0, audio: 0 }, pt: { video: 0, audio: 0 } };

let tag = 1;
async function newPair(env) {
  const gpc = await env.as(env.users.gp);
  const { consult, patient, participant } = await consultWithPatient(env, gpc);
  await patient.ok('consult.join', { consult: consult.id });
  await gpc.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  const p = { tagGp: tag++, tagPt: tag++ };
  p.gp = new Peer(gpc, consult.id, p.tagGp, {}, { rebuildOnFailure: true });
  p.pt = new Peer(patient, consult.id, p.tagPt, {}, { rebuildOnFailure: true });
  const t0 = performance.now();
  await p.gp.start();
  await p.pt.start();
  p.gp.startSending();
  p.pt.startSending();
  if (!(await waitFor(() => grew(p, ZERO, N), LIMIT_MS, 10))) throw new Error('no media');
  p.setupMs = performance.now() - t0;
  return p;
}

async function closePair(p) {
  await p.gp.close();
  await p.pt.close();
  await p.gp.client.req('media.stop', { consult: p.gp.consult }).catch(() => {});
  await p.pt.client.req('media.stop', { consult: p.pt.consult }).catch(() => {});
}

// Both peers rebuild at once; ms until media flows again.
async function rebuild(p) {
  const base = snap(p);
  const t0 = performance.now();
  await Promise.all([p.gp.rebuild(), p.pt.rebuild()]);
  if (!(await waitFor(() => grew(p, base, N), LIMIT_MS, 10))) throw new Error('no media after rebuild');
  return performance.now() - t0;
}

const fingerprintOf = (sdp) => sdp.match(/^a=fingerprint:sha-256 (\S+)/mi)?.[1]?.toUpperCase();

async function main() {
  const out = { rounds: ROUNDS, setup_inproc: [], setup_node: [], rebuild_inproc: [], rebuild_node: [], node_loss: [] };
  // Both servers run side by side and the modes alternate round by round, after one warm-up
  // round each (not counted), so that neither gets the cold start.
  const inproc = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0']);
  const relays = [];
  for (const id of ['relay-a', 'relay-b']) relays.push(await startRelay(await freePort(), id, SECRET));
  const env = await boot(['--relay-nodes', relays.map((r) => `127.0.0.1:${r.port}`).join(','),
    '--relay-secret', SECRET, '--media-e2ee', '0']);
  const up = async (r) => (await env.srv.metrics())[`spk_relay_node_up{node="127.0.0.1:${r.port}"}`] === 1;
  try {
    for (let i = -1; i < ROUNDS; i++) {
      const a = await newPair(inproc);
      const ra = await rebuild(a);
      await closePair(a);
      if (!(await waitFor(async () => (await up(relays[0])) && (await up(relays[1])), LIMIT_MS))) {
        throw new Error('relay nodes not up');
      }
      const p = await newPair(env);
      const rb = await rebuild(p);
      const k = relays.findIndex((r) => r.fingerprint === fingerprintOf(p.gp.answerSdp));
      const victim = relays[k];
      const base = snap(p);
      const done = () => p.gp.rebuilds.at(-1)?.done && p.pt.rebuilds.at(-1)?.done;
      const before = [p.gp.rebuilds.length, p.pt.rebuilds.length];
      const t0 = performance.now();
      victim.proc.kill('SIGKILL');
      const ok = await waitFor(() => p.gp.rebuilds.length > before[0] && p.pt.rebuilds.length > before[1] &&
        done() && grew(p, base, N), LIMIT_MS, 10);
      if (!ok) throw new Error('no recovery');
      const loss = performance.now() - t0;
      await closePair(p);
      relays[k] = await startRelay(victim.port, victim.nodeId, SECRET);
      if (i >= 0) {
        out.setup_inproc.push(a.setupMs);
        out.rebuild_inproc.push(ra);
        out.setup_node.push(p.setupMs);
        out.rebuild_node.push(rb);
        out.node_loss.push(loss);
      }
    }
  } finally {
    await env.close();
    await inproc.close();
    for (const r of relays) if (!r.exited) r.proc.kill('SIGKILL');
  }

  const m = (k) => Math.round(median(out[k]));
  console.log(`relay nodes, ${ROUNDS} rounds, werift peers, medians (ms):`);
  console.log(`  media set-up   in-process ${m('setup_inproc')}   relay node ${m('setup_node')}   ratio ${(m('setup_node') / m('setup_inproc')).toFixed(2)}`);
  console.log(`  rebuild        in-process ${m('rebuild_inproc')}   relay node ${m('rebuild_node')}   ratio ${(m('rebuild_node') / m('rebuild_inproc')).toFixed(2)}`);
  console.log(`  node SIGKILL → media again ${m('node_loss')}   (vs. an in-process rebuild: ${(m('node_loss') / m('rebuild_inproc')).toFixed(2)}x)`);
  const summary = { rounds: ROUNDS };
  for (const k of Object.keys(out)) if (Array.isArray(out[k])) summary[k] = { median_ms: m(k), all_ms: out[k].map(Math.round) };
  console.log(JSON.stringify(summary));
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
