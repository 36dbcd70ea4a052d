// Browser test: a patient in the waiting room receives no media and sends none to the call: the
// page connects to no one there (it only makes its call's connections ahead, which it uses once
// admitted), and the server refuses media requests from the waiting room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GP,
  admit,
  allInbound,
  createAndJoin,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  summary,
  waitReceiving,
} from './media_lib.mjs';

const FIRST = 'Sanne de Vries';
const SECOND = 'Piet Puk';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The page's RTCPeerConnections that are not closed: whether each has a remote description and
// its ICE state.
function openConnections(page) {
  return page.evaluate(() =>
    (window.__pcs || [])
      .filter((pc) => pc.signalingState !== 'closed')
      .map((pc) => ({ remote: !!pc.remoteDescription, ice: pc.iceConnectionState })),
  );
}

test('lobby: no media to or from a waiting patient', { timeout: 120000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const pat = await patientToLobby(env, await newInvite(gp), FIRST);
  await admit(gp, pat, FIRST);
  await Promise.all([
    waitReceiving(pat, [GP.name], { frames: 30 }),
    waitReceiving(gp, [FIRST], { frames: 30 }),
  ]);
  const second = await patientToLobby(env, await newInvite(gp), SECOND);

  await t.test('the waiting page sets up no media by itself', async () => {
    await sleep(5000);
    assert.equal(await summary(second), null);
    assert.equal((await allInbound(second)).packets, 0);
    // The call's two connections are made ahead (publish and subscribe), and connect to no one:
    // no remote description, no ICE.
    const prepared = await openConnections(second);
    assert.equal(prepared.length, 2, `connections made ahead: ${JSON.stringify(prepared)}`);
    for (const pc of prepared) assert.deepEqual(pc, { remote: false, ice: 'new' });
  });

  await t.test('the waiting room can set up no relay connection', async () => {
    const codes = await second.evaluate(() => window.__spk.media.tryInLobby());
    assert.deepEqual(codes, { 'media.publish': 'bad_state', 'media.subscribe': 'bad_state' });
    await sleep(2000);
    assert.equal((await allInbound(second)).packets, 0, 'the waiting patient receives no RTP');
  });

  await t.test('the others receive nothing from the waiting patient', async () => {
    for (const page of [gp, pat]) {
      const sum = await summary(page);
      const names = Object.values(sum.subscribe.byParticipant).map((p) => p.name);
      assert.ok(!names.includes(SECOND), `received from the waiting patient: ${names}`);
      assert.ok(!sum.tiles.some((x) => x.name === SECOND), 'no tile for the waiting patient');
      assert.equal(sum.subscribe.unannounced.packets, 0, 'no stray RTP');
    }
  });

  await t.test('once admitted, the second patient is in the call', async () => {
    await admit(gp, second, SECOND);
    await Promise.all([
      waitReceiving(second, [GP.name, FIRST], { frames: 30 }),
      waitReceiving(gp, [FIRST, SECOND], { frames: 30 }),
    ]);
    // ... over the connections it made while waiting: no others were made.
    const open = await openConnections(second);
    assert.equal(open.length, 2, `connections: ${JSON.stringify(open)}`);
    for (const pc of open) assert.equal(pc.remote, true);
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
