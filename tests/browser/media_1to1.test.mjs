// Browser test: a GP in the console and an admitted patient see and hear each other through
// spreekd's media relay (docs/protocol.md 5.7), and the relay's counters show the forwarding.
// Screenshots of both call views go to $SPK_BROWSER_ARTIFACTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GP,
  admit,
  assertNoStrayRtp,
  createAndJoin,
  fromName,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  relayCounters,
  setup,
  summary,
  tid,
  waitMedia,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';

test('1:1 video consult through the relay', { timeout: 120000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);

  await t.test('patient and GP decode each other\'s video and receive audio', async () => {
    await Promise.all([
      waitReceiving(pat, [GP.name], { frames: 100 }),
      waitReceiving(gp, [PATIENT], { frames: 100 }),
    ]);
  });

  await t.test('the tiles show the other participant by name, playing', async () => {
    for (const [page, name] of [
      [pat, GP.name],
      [gp, PATIENT],
    ]) {
      const sum = await summary(page);
      assert.equal(sum.state, 'connected');
      assert.equal(sum.tiles.length, 1);
      assert.equal(sum.tiles[0].name, name);
      assert.equal(sum.tiles[0].playing, true);
      assert.ok(sum.tiles[0].width > 0, 'the remote video has a size');
      assert.equal(await tid(page, 'call-status').isVisible(), false);
    }
  });

  await t.test('nobody receives their own media back', async () => {
    await assertNoStrayRtp(pat, 'patient');
    await assertNoStrayRtp(gp, 'GP');
  });

  await t.test('the relay counts the forwarded packets, and the count grows', async () => {
    const first = await waitCounter(env.srv, (c) => c.forwarded > 0);
    assert.ok(first.received > 0, `received ${first.received}`);
    await waitCounter(env.srv, (c) => c.forwarded > first.forwarded + 100);
  });

  await t.test('camera off and audio only show on the other side', async () => {
    await env.shot(pat, 'media-1to1-patient');
    await env.shot(gp, 'media-1to1-gp');
    await tid(pat, 'call-audio-only').click();
    await waitMedia(gp, (s) => s.tiles[0] && s.tiles[0].cameraOff, { what: 'camera-off tile' });
    await env.shot(gp, 'media-1to1-gp-patient-audio-only');
    await env.shot(pat, 'media-1to1-patient-audio-only');
    await tid(pat, 'call-audio-only').click();
    await waitMedia(gp, (s) => s.tiles[0] && !s.tiles[0].cameraOff, { what: 'video back' });
    const before = fromName(await summary(gp), PATIENT).framesDecoded;
    await waitMedia(gp, (s) => fromName(s, PATIENT).framesDecoded > before + 30, {
      what: 'frames after audio only',
    });
  });

  await t.test('camera off shows on the other side too', async () => {
    await tid(gp, 'call-camera').click();
    assert.equal(await tid(gp, 'call-camera').getAttribute('aria-pressed'), 'false');
    await waitMedia(pat, (s) => s.tiles[0] && s.tiles[0].cameraOff, { what: 'GP camera off' });
    await env.shot(pat, 'media-1to1-patient-gp-camera-off');
    await tid(gp, 'call-camera').click();
    await waitMedia(pat, (s) => s.tiles[0] && !s.tiles[0].cameraOff, { what: 'GP camera on' });
  });

  await t.test('microphone off shows on the own tile', async () => {
    await tid(pat, 'call-mic').click();
    assert.equal(await tid(pat, 'call-mic').getAttribute('aria-pressed'), 'false');
    assert.equal(await pat.locator('.tile-local .flag-mic-off').isVisible(), true);
    await tid(pat, 'call-mic').click();
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});

async function waitCounter(srv, check, timeout = 20000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await relayCounters(srv);
    if (check(last)) return last;
    if (Date.now() > end) assert.fail(`relay counters: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
