// Browser test: end-to-end encrypted video consults through the real pages (docs/sframe.md,
// protocol.md §5.7). spreekd runs with its default, consults that require E2EE; every frame is
// encrypted with SFrame under keys of the consult chat's MLS group, which the GP's console keeps
// in step with who is in the call. A 1:1 consult, then a meekijkconsult with a specialist: all
// decode video and hear audio only once they hold the keys, the safety numbers match, the
// specialist leaving and the patient being sent back each change the epoch, and the others keep
// decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitText } from './lib.mjs';
import {
  GP,
  SPECIALIST,
  admit,
  createAndJoin,
  fromName,
  inviteSpecialist,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  summary,
  tid,
  waitMedia,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';
const WAIT = 90000; // keys come through the chat: a Commit and a Welcome on a loaded machine

// The page's E2EE state: { keyed, epoch, safety, frames } (call.js summary).
async function e2eeOf(page) {
  const sum = await summary(page);
  assert.ok(sum && sum.e2ee, 'the call is end-to-end encrypted');
  return sum.e2ee;
}

// Decodes at least `frames` more video frames from each of `names` and hears them (audio
// level above 0: a frame that does not decrypt is dropped, and dropped audio is silence).
async function decodes(page, names, { frames = 100, since = null } = {}) {
  const base = since || {};
  return waitMedia(
    page,
    (sum) =>
      names.every((n) => {
        const p = fromName(sum, n);
        return p && p.framesDecoded >= (base[n] || 0) + frames && p.audioLevel > 0;
      }),
    { timeout: WAIT, what: `decoding ${names.join(', ')}` },
  );
}

async function decodedSoFar(page, names) {
  const sum = await summary(page);
  return Object.fromEntries(names.map((n) => [n, (fromName(sum, n) || { framesDecoded: 0 }).framesDecoded]));
}

// Waits until every page uses the same epoch, other than `not`; returns its safety number.
async function sameEpoch(pages, { not = null } = {}) {
  const end = Date.now() + WAIT;
  let last = [];
  for (;;) {
    last = await Promise.all(pages.map((p) => summary(p).then((s) => s && s.e2ee)));
    const ok =
      last.every((e) => e && e.keyed) &&
      last.every((e) => e.epoch === last[0].epoch && e.safety === last[0].safety) &&
      last[0].safety !== not;
    if (ok) return last[0];
    if (Date.now() > end) assert.fail(`no common epoch within ${WAIT} ms: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('end-to-end encrypted consult: 1:1, meekijkconsult, leaving and send-back', { timeout: 600000 }, async (t) => {
  const env = await setup(t, { e2ee: true });
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);
  let one = null;

  await t.test('1:1: both decode at least 100 frames and hear audio, with matching safety numbers', async () => {
    await Promise.all([decodes(pat, [GP.name]), decodes(gp, [PATIENT])]);
    one = await sameEpoch([pat, gp]);
    assert.match(one.safety, /^\d{5} \d{5} \d{5} \d{5}$/);
    for (const page of [pat, gp]) {
      await waitText(tid(page, 'call-safety'), one.safety);
      assert.equal(await tid(page, 'call-e2ee').getAttribute('data-state'), 'on');
      const e = await e2eeOf(page);
      assert.ok(e.frames && e.frames.encrypted > 100, `frames encrypted: ${JSON.stringify(e.frames)}`);
      assert.equal(e.frames.failed, 0, 'no frame failed to decrypt');
    }
    await env.shot(pat, 'e2ee-patient');
    await env.shot(gp, 'e2ee-gp');
  });

  const spec = await openConsole(env, SPECIALIST, { width: 1024, height: 800 });
  let three = null;

  await t.test('meekijkconsult: the specialist joins, all three decode both others, one safety number', async () => {
    await inviteSpecialist(gp);
    const item = spec.locator('[data-testid="consult-item"]', { hasText: 'Beeldbellen' });
    await item.waitFor({ state: 'visible', timeout: 15000 });
    await item.click();
    await tid(spec, 'consult-join').click();
    await tid(spec, 'detail-joined').waitFor({ state: 'visible' });
    const before = {
      pat: await decodedSoFar(pat, [GP.name]),
      gp: await decodedSoFar(gp, [PATIENT]),
    };
    three = await sameEpoch([pat, gp, spec], { not: one.safety });
    await Promise.all([
      decodes(pat, [GP.name, SPECIALIST.name], { since: before.pat }),
      decodes(gp, [PATIENT, SPECIALIST.name], { since: before.gp }),
      decodes(spec, [PATIENT, GP.name]),
    ]);
    await waitText(tid(spec, 'call-safety'), three.safety);
  });

  await t.test('the specialist leaves: a new epoch, and patient and GP keep decoding each other', async () => {
    await tid(spec, 'call-leave').click();
    await tid(spec, 'consult-join').waitFor({ state: 'visible' });
    const after = await sameEpoch([pat, gp], { not: three.safety });
    assert.notEqual(after.safety, one.safety);
    assert.ok(BigInt(after.epoch) > BigInt(three.epoch), 'the epoch moved on');
    const base = { pat: await decodedSoFar(pat, [GP.name]), gp: await decodedSoFar(gp, [PATIENT]) };
    await Promise.all([
      decodes(pat, [GP.name], { since: base.pat }),
      decodes(gp, [PATIENT], { since: base.gp }),
    ]);
    three = after;
  });

  await t.test('the patient is sent back: removed from the group, and back in it after admission', async () => {
    const was = await e2eeOf(pat);
    await gp.locator('[data-testid="send-back"]').click();
    await waitText(tid(pat, 'join-status'), 'teruggezet', WAIT);
    // The GP's console removes the patient's device: the group moves to an epoch whose key the
    // patient never gets (the service sends a removed device nothing more).
    const removed = await waitMedia(gp, (x) => x.e2ee && x.e2ee.keyed && BigInt(x.e2ee.epoch) > BigInt(was.epoch), {
      timeout: WAIT,
      what: 'the removal Commit',
    });
    assert.equal(await summary(pat), null, 'the patient has no call in the lobby');
    await admit(gp, pat, PATIENT, { timeout: WAIT });
    const back = await sameEpoch([pat, gp], { not: three.safety });
    assert.ok(BigInt(back.epoch) > BigInt(removed.e2ee.epoch), 'admitted again at an epoch after the removal');
    await Promise.all([decodes(pat, [GP.name]), decodes(gp, [PATIENT], { since: await decodedSoFar(gp, [PATIENT]) })]);
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
});
