// Browser test: end-to-end encrypted media (docs/sframe.md "In the browser"). Headless Chromium
// pages run the web client's Call (rtc.js) with SFrame transforms (e2ee/), keyed from a real MLS
// group of the browser's library; the relay forwards what it cannot read. The GP and an
// admitted patient decode each other's video and hear each other; a participant who is in the
// consult but not in the group receives every frame and decodes none; after a Commit removes a
// member, the remaining two keep decoding in the new epoch and the removed one decodes nothing
// sent after it. Both sides show the same safety number. A member whose key arrives after its
// media is up decodes the frames that waited for the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '../integration/lib/client.mjs';
import { loadMls } from '../../web/mls/spk_mls.js';
import { safetyNumber } from '../../web/js/e2ee/e2ee.js';
import { mintToken } from './lib.mjs';
import { GP, newPage, noProblems, setup } from './media_lib.mjs';
import { keysOf, received, sleep, startCall, until } from './e2ee_lib.mjs';

test('end-to-end encrypted 1:1 call, an outsider, and a member removed', { timeout: 180000 }, async (t) => {
  const env = await setup(t, { e2ee: true });
  const url = env.srv.url;
  const gpToken = await mintToken(env.srv.dataDir, GP);
  const gpc = await Client.connect(env.srv.server.wsUrl);
  t.after(() => gpc.close());
  await gpc.next('hello');
  await gpc.ok('auth', { token: gpToken });
  const { consult } = await gpc.ok('consult.create', { patient: 'pseudo-4711', title: 'E2EE' });
  await gpc.ok('consult.join', { consult: consult.id });
  const patients = [];
  for (const name of ['Sanne de Vries', 'Tolk Ahmed', 'Buitenstaander', 'Late Lid']) {
    const { invite } = await gpc.ok('invite.create', { consult: consult.id });
    const c = await Client.connect(env.srv.server.wsUrl);
    await c.next('hello');
    const red = await c.ok('invite.redeem', { invite: invite.code, name });
    await gpc.ok('lobby.admit', { consult: consult.id, participant: red.participant.id });
    c.close();
    patients.push(red.session_token);
  }

  // The consult's MLS group: the GP, the patient and the interpreter (not the outsider).
  const mls = await loadMls();
  const kps = ['gp', 'patient', 'tolk'].map((n) => mls.keyPackageCreate(n));
  const g0 = mls.create(`consult-${consult.id}`, kps[0].secret);
  const { welcome } = g0.commit({ add: [kps[1].keyPackage, kps[2].keyPackage] });
  g0.commitMerge();
  const groups = [g0, mls.join(kps[1].secret, welcome), mls.join(kps[2].secret, welcome)];
  const safety = safetyNumber(g0.epochAuthenticator());

  const pages = {};
  for (const [who, token, i] of [
    ['gp', gpToken, 0],
    ['patient', patients[0], 1],
    ['tolk', patients[1], 2],
  ]) {
    pages[who] = await newPage(env, who);
    await startCall(pages[who], { url, token, consult: consult.id, keys: keysOf(groups[i]), safety: safetyNumber(groups[i].epochAuthenticator()) });
  }
  pages.outsider = await newPage(env, 'outsider');
  // In the consult (receiving only), with a key of its own that is not the group's: it can
  // decrypt nothing.
  const wrong = { epoch: '1', baseKey: new Array(16).fill(9), leafCount: 4, ownLeaf: 3 };
  await startCall(pages.outsider, { url, token: patients[2], consult: consult.id, keys: wrong, safety: '', send: false });

  await t.test('members decode each other\'s video and hear each other, through SFrame', async () => {
    for (const who of ['gp', 'patient', 'tolk']) {
      const r = await until(pages[who], (x) => x.frames >= 200 && x.heard > 48000 && x.e2ee?.decrypted > 100, who);
      assert.equal(r.e2ee.failed, 0, `${who}: ${JSON.stringify(r.e2ee)}`);
      assert.ok(r.e2ee.encrypted > 100, `${who} encrypts`);
      assert.equal(r.safety, safety, `${who}: the same safety number`);
    }
  });

  await t.test('a participant outside the group receives the frames and decodes none', async () => {
    const r = await until(pages.outsider, (x) => x.audioPackets > 200 && x.e2ee?.failed > 100, 'outsider');
    assert.equal(r.frames, 0, 'no video frame decoded');
    assert.equal(r.e2ee.decrypted, 0);
    assert.ok(r.heard < 4800, `no sound decoded: ${r.heard} samples`);
  });

  await t.test('frames that arrive before the key wait for it, and decode once it comes', async () => {
    // A receiving member whose key comes late (the Welcome after the media connection): its
    // worker holds the first frames (the key frame the relay starts a subscriber with among
    // them) and decrypts them when the key is posted, instead of dropping them.
    const late = await newPage(env, 'late');
    pages.late = late;
    await startCall(late, { url, token: patients[3], consult: consult.id, keys: null, safety: '', send: false });
    const before = await until(late, (x) => x.videoPackets > 0, 'late: video arrives');
    assert.equal(before.frames, 0, 'nothing decodes without a key');
    assert.equal(before.e2ee?.decrypted || 0, 0);
    await late.evaluate(
      ({ keys, safety }) => window.__t.e2ee.setEpoch({ ...keys, baseKey: Uint8Array.from(keys.baseKey) }, safety),
      { keys: keysOf(groups[1]), safety },
    );
    const r = await until(late, (x) => x.frames > 30 && x.e2ee?.released > 0, 'late: decodes');
    assert.equal(r.e2ee.failed, 0, JSON.stringify(r.e2ee));
    assert.ok(r.e2ee.released > 0, `held frames released: ${JSON.stringify(r.e2ee)}`);
  });

  await t.test('after a Commit removes the interpreter, the others keep decoding; the interpreter does not', async () => {
    const { commit } = g0.commit({ remove: [groups[2].ownLeaf] });
    g0.commitMerge();
    groups[1].process(commit);
    for (const [who, g] of [['gp', g0], ['patient', groups[1]]]) {
      await pages[who].evaluate(
        ({ keys, safety }) => window.__t.e2ee.setEpoch({ ...keys, baseKey: Uint8Array.from(keys.baseKey) }, safety),
        { keys: keysOf(g), safety: safetyNumber(g.epochAuthenticator()) },
      );
    }
    await sleep(1500); // frames of the old epoch drain
    const before = { gp: await received(pages.gp), patient: await received(pages.patient), tolk: await received(pages.tolk) };
    await sleep(4000);
    const after = { gp: await received(pages.gp), patient: await received(pages.patient), tolk: await received(pages.tolk) };
    for (const who of ['gp', 'patient']) {
      // Each hears the other (one remote video now counts for the pair).
      assert.ok(after[who].e2ee.decrypted - before[who].e2ee.decrypted > 50, `${who} keeps decrypting`);
      assert.ok(after[who].frames - before[who].frames > 30, `${who} keeps decoding: ${before[who].frames} → ${after[who].frames}`);
      assert.equal(after[who].e2ee.epoch, Number(g0.epoch));
      assert.equal(after[who].safety, safetyNumber(g0.epochAuthenticator()));
    }
    assert.notEqual(safetyNumber(g0.epochAuthenticator()), safety);
    // The interpreter gets the new frames but has no key for them.
    assert.ok(after.tolk.e2ee.dropped_not_ours - before.tolk.e2ee.dropped_not_ours > 50, JSON.stringify(after.tolk.e2ee));
  });

  for (const g of groups) g.free();
  noProblems(env);
});
