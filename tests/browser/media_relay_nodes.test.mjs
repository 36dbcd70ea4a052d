// Browser test: spreekd runs the media on two relay nodes (spreek-relay, docs/operations.md
// "Relay nodes"). A GP and a patient in Chromium hold a call; the node carrying it is killed
// (SIGKILL); both pages are told (media.state failed, relay_node_lost), rebuild their
// connections by themselves (web/js/rtc.js) and audio and video flow again through the other
// node, header extensions included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startRelay } from '../integration/lib/relay_nodes.mjs';
import {
  GP,
  admit,
  createAndJoin,
  fromName,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  summary,
  waitMedia,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';
const SECRET = 'browser-relay-link-secret-0123';

test('a relay node dies: the call moves to the other node', { timeout: 180000 }, async (t) => {
  const started = Date.now();
  const relays = [];
  t.after(() => {
    for (const r of relays) if (!r.exited) r.proc.kill('SIGKILL');
  });
  for (const id of ['relay-a', 'relay-b']) relays.push(await startRelay(await freePort(), id, SECRET));
  const nodes = relays.map((r) => `127.0.0.1:${r.port}`).join(',');
  const env = await setup(t, { relayArgs: ['--relay-nodes', nodes, '--relay-secret', SECRET] });
  const metrics = () => env.srv.server.metrics();
  const label = (r) => `{node="127.0.0.1:${r.port}"}`;
  // Polls metrics until check(m) holds (or `ms` pass); returns the last metrics.
  const until = async (check, ms = 5000) => {
    let m = await metrics();
    for (const end = Date.now() + ms; !check(m) && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 200));
      m = await metrics();
    }
    return m;
  };
  const up = async () => {
    const m = await metrics();
    return relays.every((r) => m[`spk_relay_node_up${label(r)}`] === 1);
  };
  for (let i = 0; i < 50 && !(await up()); i++) await new Promise((r) => setTimeout(r, 200));
  assert.ok(await up(), 'both relay nodes are up');

  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);

  let victim;
  await t.test('the call runs on one node', async () => {
    await Promise.all([
      waitReceiving(pat, [GP.name], { frames: 30 }),
      waitReceiving(gp, [PATIENT], { frames: 30 }),
    ]);
    const four = (m, r) => m[`spk_relay_node_endpoints${label(r)}`] === 4;
    const m = await until((x) => relays.filter((r) => four(x, r)).length === 1);
    const used = relays.filter((r) => four(m, r));
    assert.equal(used.length, 1, `one node carries the consult's four connections: ${JSON.stringify(m)}`);
    victim = used[0];
  });

  await t.test('the node is killed: both pages rebuild and receive again', async () => {
    const before = [(await summary(gp)).restarts, (await summary(pat)).restarts];
    const t0 = Date.now();
    victim.proc.kill('SIGKILL');
    const again = (page, name, base) => waitMedia(page, (s) => {
      const p = fromName(s, name);
      return s.restarts > base && p && p.framesDecoded >= 30 && p.audioPackets > 50;
    }, { what: `${name} received again after the rebuild`, timeout: 45000 });
    await Promise.all([again(gp, PATIENT, before[0]), again(pat, GP.name, before[1])]);
    t.diagnostic(`media flowing again ${Date.now() - t0} ms after the relay node was killed`);
    const other = relays.find((r) => r !== victim);
    const m = await until((x) => x[`spk_relay_node_endpoints${label(other)}`] === 4);
    assert.equal(m[`spk_relay_node_up${label(victim)}`], 0);
    assert.equal(m[`spk_relay_node_endpoints_lost_total${label(victim)}`], 4);
    assert.equal(m[`spk_relay_node_endpoints${label(other)}`], 4, 'the call is on the other node now');
    await env.shot(pat, 'media-relay-nodes-patient');
  });

  await t.test('header extensions reach the subscriber through the node (audio level)', async () => {
    // getSynchronizationSources() has an audioLevel only from the ssrc-audio-level extension,
    // which the node forwards only with the extension map spreekd sent it (SET_EXT_MAP).
    const levels = () => gp.evaluate(() => {
      const out = [];
      for (const pc of window.__pcs || []) {
        if (pc.signalingState === 'closed') continue;
        for (const r of pc.getReceivers()) {
          if (r.track.kind !== 'audio') continue;
          for (const src of r.getSynchronizationSources()) out.push(src.audioLevel);
        }
      }
      return out;
    });
    let got = [];
    for (let i = 0; i < 40 && !got.some((l) => typeof l === 'number'); i++) {
      got = await levels();
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(got.some((l) => typeof l === 'number'), `audio level from the extension: ${JSON.stringify(got)}`);
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
