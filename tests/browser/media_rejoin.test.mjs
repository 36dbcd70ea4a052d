// Browser test: the patient leaves the call and comes back through the waiting room; after the
// GP admits them again, audio and video flow again both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitText } from './lib.mjs';
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
  tid,
  waitMedia,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';

test('leave and rejoin: media flows again', { timeout: 120000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);

  await t.test('the call runs', async () => {
    await Promise.all([
      waitReceiving(pat, [GP.name], { frames: 30 }),
      waitReceiving(gp, [PATIENT], { frames: 30 }),
    ]);
  });

  await t.test('the patient leaves: media stops on both sides', async () => {
    await tid(pat, 'consult-leave').click();
    await waitText(tid(pat, 'screen-ended'), 'verlaten');
    assert.equal(await summary(pat), null, 'the patient has no call any more');
    await waitMedia(gp, (s) => s.tiles.length === 0, { what: 'patient tile removed', timeout: 15000 });
  });

  await t.test('the patient comes back through the waiting room and is admitted again', async () => {
    await tid(pat, 'ended-rejoin').click();
    await waitText(tid(pat, 'join-status'), 'De huisarts laat u zo binnen');
    assert.equal(await summary(pat), null, 'no media in the waiting room');
    await admit(gp, pat, PATIENT);
  });

  await t.test('media flows again both ways', async () => {
    const before = fromName(await summary(gp), PATIENT);
    const base = before ? before.framesDecoded : 0;
    await Promise.all([
      waitReceiving(pat, [GP.name], { frames: 60 }),
      waitMedia(gp, (s) => {
        const p = fromName(s, PATIENT);
        return p && p.framesDecoded >= base + 60 && s.tiles.length === 1;
      }, { what: 'GP receives the patient again' }),
    ]);
    await env.shot(pat, 'media-rejoin-patient');
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
