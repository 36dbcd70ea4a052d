// Relay nodes (issue 11, test 3): spreekd drives two separate spreek-relay processes over the
// relay link (docs/relay_link.md) instead of its in-process relay. Four consults, each a GP and
// a patient on werift peers, are spread over both nodes; SIGKILL of one node fails its
// endpoints at once (media.state failed, detail relay_node_lost), the peers rebuild as the
// browser client does and their media flows again through the other node, while the consults
// on the surviving node never stop. The killed node comes back on its port, spreekd reconnects
// and places the next consult on it. A node with another secret is never used, and garbage on
// the link port closes that connection only. Loopback only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { RELAY_BIN as BIN, freePort, startRelay as start } from '../lib/relay_nodes.mjs';
import { boot, consultWithPatient } from '../signaling/fixture.mjs';
import { Peer, sleep, waitFor } from './peer.mjs';

const SECRET = 'relay-link-test-secret-0123456789';
const startRelay = (port, nodeId, secret = SECRET) => start(port, nodeId, secret);
// Recovery bound: the link drop is seen at once (RST on loopback); the peers then rebuild.
const RECOVERY_MS = 20000;

let env;
let relays;
let bad;
const pairs = []; // {consult, gp, patient, gpPeer, ptPeer, tagGp, tagPt}

const metrics = async () => env.srv.metrics();
const nodeMetric = (m, name, r) => m[`${name}{node="127.0.0.1:${r.port}"}`];
const fingerprintOf = (sdp) => sdp.match(/^a=fingerprint:sha-256 (\S+)/mi)?.[1]?.toUpperCase();
const nodeOf = (pair) => relays.find((r) => r.fingerprint === fingerprintOf(pair.gpPeer.answerSdp));

// Both peers of a pair received at least n more packets of each kind from each other than
// in `base` (a snapshot taken with snap()).
const snap = (pair) => ({
  gp: pair.gpPeer.countFrom(pair.tagPt), pt: pair.ptPeer.countFrom(pair.tagGp),
});
const grew = (pair, base, n) => {
  const now = snap(pair);
  return now.gp.video - base.gp.video >= n && now.gp.audio - base.gp.audio >= n &&
    now.pt.video - base.pt.video >= n && now.pt.audio - base.pt.audio >= n;
};

before(async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  relays = [await startRelay(ports[0], 'relay-a'), await startRelay(ports[1], 'relay-b')];
  bad = await startRelay(ports[2], 'relay-wrong-secret', 'another-secret-of-enough-length');
  const nodes = ports.map((p) => `127.0.0.1:${p}`).join(',');
  env = await boot(['--relay-nodes', nodes, '--relay-secret', SECRET, '--media-e2ee', '0']);
});

after(async () => {
  for (const p of pairs) {
    await p.gpPeer?.close();
    await p.ptPeer?.close();
  }
  await env?.close();
  for (const r of [...(relays ?? []), bad]) {
    if (r && !r.exited) r.proc.kill('SIGKILL');
  }
  setTimeout(() => process.exit(), 500).unref(); // werift keeps timers alive after close()
});

test('spreek-relay: --help, and bad flags or a short secret refused with exit code 2', () => {
  const run = (args, secret = SECRET) => spawnSync(BIN, args, {
    env: { ...process.env, SPREEK_RELAY_SECRET: secret }, encoding: 'utf8', timeout: 10000,
  });
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--secret-file FILE/);
  for (const [args, secret, why] of [
    [['--addresses', '127.0.0.1', '--bogus', '1'], SECRET, /unknown option/],
    [['--listen', '127.0.0.1'], SECRET, /bad or missing value for --listen/],
    [['--addresses', '127.0.0.1', '--workers', '65'], SECRET, /bad or missing value/],
    [['--addresses', '127.0.0.1', '--consent-timeout', '1'], SECRET, /bad or missing value/],
    [['--listen', '127.0.0.1:0'], SECRET, /--addresses is required/],
    [['--addresses', '127.0.0.1', '--listen', '127.0.0.1:0'], 'too-short', /must be 16\.\.256 bytes/],
    [['--addresses', '127.0.0.1', '--secret-file', '/nonexistent/secret'], SECRET, /cannot read/],
  ]) {
    const r = run(args, secret);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});

test('spreekd connects to both nodes and refuses the one with another secret', async () => {
  const up = await waitFor(async () => {
    const m = await metrics();
    return relays.every((r) => nodeMetric(m, 'spk_relay_node_up', r) === 1);
  }, 10000);
  assert.ok(up, `both nodes up: ${JSON.stringify(await metrics())}`);
  assert.ok(relays.every((r) => r.fingerprint), 'each node has its own DTLS certificate');
  assert.notEqual(relays[0].fingerprint, relays[1].fingerprint);
  const refused = await waitFor(() => /authentication failed/.test(bad.log), 10000);
  assert.ok(refused, `wrong secret refused by the node: ${bad.log}`);
  assert.equal(nodeMetric(await metrics(), 'spk_relay_node_up', bad), 0, 'never up');
});

test('garbage on a node\'s link port closes that connection only', async () => {
  const closed = await new Promise((resolve) => {
    const s = net.connect(relays[0].port, '127.0.0.1', () => {
      s.write(Buffer.from('0000ffff0102030405', 'hex')); // a frame longer than the maximum
    });
    s.on('data', () => {});
    s.on('close', () => resolve(true));
    setTimeout(() => { s.destroy(); resolve(false); }, 8000);
  });
  assert.ok(closed, 'the node closed the connection');
  assert.equal(relays[0].exited, null, 'the node carries on');
  assert.equal(nodeMetric(await metrics(), 'spk_relay_node_up', relays[0]), 1, 'spreekd\'s link stays up');
});

test('a connection that never finishes the handshake is closed, even while it trickles bytes', async () => {
  const t0 = Date.now();
  const closedAfter = await new Promise((resolve) => {
    const s = net.connect(relays[1].port, '127.0.0.1', () => {
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00])); // a TLS record of 16 KiB, never sent
    });
    const trickle = setInterval(() => s.write(Buffer.alloc(1)), 300);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => { clearInterval(trickle); resolve(Date.now() - t0); });
    setTimeout(() => { clearInterval(trickle); s.destroy(); resolve(null); }, 10000);
  });
  assert.ok(closedAfter !== null && closedAfter >= 3000, `closed by the node after the handshake limit: ${closedAfter} ms`);
  assert.ok(/handshake timed out/.test(relays[1].log), 'logged');
  assert.equal(relays[1].exited, null, 'the node carries on');
});

test('four consults spread over both nodes, media flows in each', async () => {
  for (let i = 0; i < 4; i++) {
    const gp = await env.as(env.users.gp);
    const { consult, patient, participant } = await consultWithPatient(env, gp, `Patiënt ${i}`);
    await patient.ok('consult.join', { consult: consult.id });
    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    const tagGp = 0x100 + i;
    const tagPt = 0x200 + i;
    const gpPeer = new Peer(gp, consult.id, tagGp, {}, { rebuildOnFailure: true });
    const ptPeer = new Peer(patient, consult.id, tagPt, {}, { rebuildOnFailure: true });
    pairs.push({ consult, gp, patient, gpPeer, ptPeer, tagGp, tagPt });
    await gpPeer.start();
    await ptPeer.start();
    gpPeer.startSending();
    ptPeer.startSending();
  }
  const zero = { gp: { video: 0, audio: 0 }, pt: { video: 0, audio: 0 } };
  const flowing = await waitFor(() => pairs.every((p) => grew(p, zero, 30)), 30000);
  assert.ok(flowing, `media in every consult: ${JSON.stringify(pairs.map((p) => snap(p)))}`);
  const m = await metrics();
  for (const r of relays) {
    assert.equal(nodeMetric(m, 'spk_relay_node_consults', r), 2, `two consults on ${r.nodeId}`);
    assert.equal(nodeMetric(m, 'spk_relay_node_endpoints', r), 8, `eight endpoints on ${r.nodeId}`);
  }
  for (const p of pairs) {
    assert.ok(nodeOf(p), 'the answer carries one of the nodes\' fingerprints');
    assert.equal(fingerprintOf(p.ptPeer.answerSdp), fingerprintOf(p.gpPeer.answerSdp), 'one node per consult');
  }
  assert.equal(pairs.filter((p) => nodeOf(p) === relays[0]).length, 2);
});

test('SIGKILL of a node: its consults recover on the other, the rest never stop', async () => {
  const [victim, survivor] = relays;
  const hit = pairs.filter((p) => nodeOf(p) === victim);
  const spared = pairs.filter((p) => nodeOf(p) === survivor);
  const base = new Map(pairs.map((p) => [p, snap(p)]));
  const forwardedBefore = (await metrics()).spk_relay_rtp_forwarded_total;
  const t0 = Date.now();
  victim.proc.kill('SIGKILL');

  // The unaffected consults keep flowing: sampled every second, each sample shows new packets.
  const stalls = [];
  let last = new Map(spared.map((p) => [p, snap(p)]));
  const sampler = setInterval(() => {
    for (const p of spared) {
      if (!grew(p, last.get(p), 1)) stalls.push({ consult: p.consult.id, at: Date.now() - t0 });
    }
    last = new Map(spared.map((p) => [p, snap(p)]));
  }, 1000);

  const recovered = await waitFor(() => hit.every((p) => grew(p, base.get(p), 30) &&
    p.gpPeer.rebuilds.some((r) => r.done) && p.ptPeer.rebuilds.some((r) => r.done)), RECOVERY_MS, 50);
  const recoveryMs = Date.now() - t0;
  clearInterval(sampler);
  const detail = JSON.stringify(hit.map((p) => ({ gp: p.gpPeer.summary(), pt: p.ptPeer.summary() })));
  assert.ok(recovered, `affected consults recover within ${RECOVERY_MS} ms: ${detail}`);
  console.log(`relay node killed: media of its ${hit.length} consults flowing again through the other node after ${recoveryMs} ms`);

  for (const p of hit) {
    for (const peer of [p.gpPeer, p.ptPeer]) {
      const failed = peer.stateEvents.filter((e) => e.state === 'failed');
      assert.ok(failed.length >= 1, 'told with media.state failed');
      assert.ok(failed.every((e) => e.detail === 'relay_node_lost'), JSON.stringify(failed));
      assert.equal(fingerprintOf(peer.answerSdp), survivor.fingerprint, 'rebuilt on the living node');
    }
  }
  for (const p of spared) {
    const bad = [...p.gpPeer.stateEvents, ...p.ptPeer.stateEvents].filter((e) => e.state !== 'connected');
    assert.deepEqual(bad, [], 'no failed or closed media.state on the surviving node');
    assert.equal(p.gpPeer.rebuilds.length + p.ptPeer.rebuilds.length, 0, 'no rebuild');
    assert.ok(grew(p, base.get(p), 30), 'still flowing');
  }
  assert.deepEqual(stalls, [], 'the surviving node\'s consults never stopped');

  const m = await metrics();
  assert.ok(m.spk_relay_rtp_forwarded_total >= forwardedBefore,
    `counter totals keep what the lost node had counted: ${m.spk_relay_rtp_forwarded_total} >= ${forwardedBefore}`);
  assert.equal(nodeMetric(m, 'spk_relay_node_up', victim), 0);
  assert.equal(nodeMetric(m, 'spk_relay_node_lost_total', victim), 1);
  assert.equal(nodeMetric(m, 'spk_relay_node_endpoints_lost_total', victim), 8);
  assert.equal(nodeMetric(m, 'spk_relay_node_consults', survivor), 4);
  assert.equal(nodeMetric(m, 'spk_relay_node_endpoints', survivor), 16);
});

test('the killed node comes back: spreekd reconnects and places the next consult on it', async () => {
  const victim = relays[0];
  const again = await startRelay(victim.port, 'relay-a');
  relays[0] = again;
  const up = await waitFor(async () => nodeMetric(await metrics(), 'spk_relay_node_up', again) === 1, 15000);
  assert.ok(up, 'reconnected');
  assert.equal(nodeMetric(await metrics(), 'spk_relay_node_connects_total', again), 2);

  const gp = await env.as(env.users.gp);
  const { consult, patient, participant } = await consultWithPatient(env, gp, 'Patiënt 5');
  await patient.ok('consult.join', { consult: consult.id });
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  const pair = {
    consult, gp, patient, tagGp: 0x105, tagPt: 0x205,
    gpPeer: new Peer(gp, consult.id, 0x105), ptPeer: new Peer(patient, consult.id, 0x205),
  };
  pairs.push(pair);
  await pair.gpPeer.start();
  await pair.ptPeer.start();
  pair.gpPeer.startSending();
  pair.ptPeer.startSending();
  assert.equal(fingerprintOf(pair.gpPeer.answerSdp), again.fingerprint, 'placed on the least loaded node');
  const zero = { gp: { video: 0, audio: 0 }, pt: { video: 0, audio: 0 } };
  assert.ok(await waitFor(() => grew(pair, zero, 30), 20000), JSON.stringify(snap(pair)));
});

test('SIGTERM stops a node gracefully; spreekd sees it go', async () => {
  const r = relays[0];
  r.proc.kill('SIGTERM');
  const gone = await waitFor(() => r.exited, 10000);
  assert.deepEqual(gone, { code: 0, signal: null }, r.log);
  assert.ok(await waitFor(async () => nodeMetric(await metrics(), 'spk_relay_node_up', r) === 0, 5000));
  await sleep(100);
});

test('with no node up, media requests answer unavailable; the consult carries on', async () => {
  const last = relays[1];
  last.proc.kill('SIGKILL');
  assert.ok(await waitFor(async () => nodeMetric(await metrics(), 'spk_relay_node_up', last) === 0, 5000));
  const p = pairs[pairs.length - 1];
  const r = await p.gp.req('media.subscribe', { consult: p.consult.id });
  assert.equal(r.code, 'unavailable', JSON.stringify(r));
  const again = await p.gp.req('consult.get', { consult: p.consult.id });
  assert.equal(again.type, 'ok', 'signaling is unaffected');
});
