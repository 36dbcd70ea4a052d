// Browser test: the GP sends the patient back to the waiting room and admits them again, several
// times. Each time the patient's page ends its media on `sent_back` (the relay closes the
// patient's connections), the GP's subscribe connection is offered m-sections without streams
// and answers them, and after the admission the next offer applies and audio and video flow
// both ways again. The time from the admission to the first decoded remote frame on each side
// is printed (a diagnostic; the figures belong in docs/performance.md).
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
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';
const CYCLES = 4;

const decoded = (sum, name) => (fromName(sum, name) || { framesDecoded: 0 }).framesDecoded;

// Milliseconds until page decodes frames from `name` beyond `base`.
async function firstFrame(page, name, base, t0) {
  await waitMedia(page, (s) => decoded(s, name) > base, { what: `frames from ${name}`, timeout: 20000 });
  return Date.now() - t0;
}

test('sent back and admitted again, repeatedly: every offer applies, media flows each time', { timeout: 240000 }, async (t) => {
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const pat = await patientToLobby(env, await newInvite(gp), PATIENT);
  const joins = [];

  for (let i = 0; i < CYCLES; i++) {
    const gpBase = decoded(await summary(gp), PATIENT);
    const t0 = Date.now();
    await admit(gp, pat, PATIENT);
    const [toPatient, toGp] = await Promise.all([
      firstFrame(pat, GP.name, 0, t0),
      firstFrame(gp, PATIENT, gpBase, t0),
    ]);
    joins.push(toPatient, toGp);
    await waitMedia(gp, (s) => decoded(s, PATIENT) >= gpBase + 30 && s.tiles.length === 1, {
      what: `cycle ${i}: the GP sees the patient`,
    });
    const before = await env.srv.server.metrics();
    await tid(gp, 'send-back').click();
    await waitText(tid(pat, 'join-status'), 'teruggezet in de wachtkamer');
    assert.equal(await summary(pat), null, `cycle ${i}: no media in the waiting room`);
    await waitMedia(gp, (s) => s.tiles.length === 0 && s.state === 'connected', {
      what: `cycle ${i}: the patient's tile goes, the GP's call stays up`,
      timeout: 15000,
    });
    const after = await env.srv.server.metrics();
    assert.equal(after.spk_relay_endpoints, before.spk_relay_endpoints - 2, `cycle ${i}: endpoints`);
  }

  await t.test('the GP\'s last offer has at most one m-section per kind and stream', async () => {
    const sum = await summary(gp);
    assert.ok(sum.streams.length === 0, JSON.stringify(sum.streams));
    const sdp = await gp.evaluate(() => window.__pcs.filter((pc) => pc.signalingState !== 'closed')
      .map((pc) => pc.remoteDescription?.sdp || '').find((s) => s.includes('a=sendonly') || s.includes('a=inactive')));
    assert.ok(sdp, 'the GP has a subscribe description');
    const sections = sdp.split(/\r?\nm=/).length - 1;
    assert.ok(sections <= 2, `m-sections after ${CYCLES} cycles: ${sections}`);
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  const sorted = [...joins].sort((a, b) => a - b);
  t.diagnostic(`admit to first decoded remote frame (ms, both sides, ${CYCLES} joins): ` +
    `p50 ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)}; all ${joins.join(' ')}`);
});
