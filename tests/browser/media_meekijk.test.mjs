// Browser test: meekijkconsult through the relay. The GP records the patient's consent and
// invites a specialist; the specialist (third browser context, console with a specialist token)
// sees the consult appear, joins, and all three receive both others' audio and video.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitText } from './lib.mjs';
import {
  GP,
  SPECIALIST,
  admit,
  assertNoStrayRtp,
  createAndJoin,
  inviteSpecialist,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  summary,
  tid,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';

test('meekijkconsult: patient, GP and specialist', { timeout: 150000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);
  await waitReceiving(pat, [GP.name], { frames: 10 });
  const spec = await openConsole(env, SPECIALIST, { width: 1024, height: 800 });

  await t.test('the specialist console lists no consults before the invite', async () => {
    await waitText(tid(spec, 'consult-list'), 'uitgenodigd');
    assert.equal(await spec.locator('[data-testid="new-consult-submit"]').isVisible(), false);
  });

  await t.test('GP records consent and invites the specialist', async () => {
    await inviteSpecialist(gp);
  });

  await t.test('the specialist sees the consult and joins', async () => {
    const item = spec.locator('[data-testid="consult-item"]', { hasText: 'Beeldbellen' });
    await item.waitFor({ state: 'visible', timeout: 10000 });
    await item.click();
    await tid(spec, 'consult-join').click();
    await tid(spec, 'detail-joined').waitFor({ state: 'visible' });
    await waitText(tid(spec, 'console-roster'), PATIENT);
  });

  await t.test('all three receive both others', async () => {
    await Promise.all([
      waitReceiving(pat, [GP.name, SPECIALIST.name], { frames: 30 }),
      waitReceiving(gp, [PATIENT, SPECIALIST.name], { frames: 30 }),
      waitReceiving(spec, [PATIENT, GP.name], { frames: 30 }),
    ]);
    for (const [page, n] of [
      [pat, 'patient'],
      [gp, 'GP'],
      [spec, 'specialist'],
    ]) {
      const sum = await summary(page);
      assert.equal(sum.tiles.length, 2, `${n}: two remote tiles`);
      assert.ok(sum.tiles.every((x) => x.playing && x.width > 0), `${n}: both tiles play`);
    }
    await env.shot(pat, 'media-meekijk-patient');
    await env.shot(gp, 'media-meekijk-gp');
    await env.shot(spec, 'media-meekijk-specialist');
  });

  await t.test('nobody receives their own media back', async () => {
    await assertNoStrayRtp(pat, 'patient');
    await assertNoStrayRtp(gp, 'GP');
    await assertNoStrayRtp(spec, 'specialist');
  });

  await t.test('when the specialist leaves, the others keep only each other', async () => {
    await tid(spec, 'call-leave').click();
    await tid(spec, 'consult-join').waitFor({ state: 'visible' });
    for (const page of [pat, gp]) {
      await page.waitForFunction(
        () => document.querySelectorAll('#tiles .tile-remote').length === 1,
        null,
        { timeout: 15000 },
      );
    }
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
