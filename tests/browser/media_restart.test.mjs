// Browser test: media recovers without a page reload after the path breaks. First an ICE restart
// asked for from the page (publish offer with new ICE credentials, subscribe connection rebuilt);
// then, inside the loopback-only namespace of run.sh, a long outage: loopback goes down for 12 s,
// longer than the relay keeps a silent endpoint here (--relay-consent-timeout 8) and than the
// pages wait before restarting ICE, and comes back: the pages build their connections again by
// themselves (a short outage needs nothing of the kind: media_netdrop.test.mjs); last, spreekd
// (and so the relay) restarts, and media comes back after the WebSocket reconnects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  GP,
  admit,
  createAndJoin,
  fromName,
  newInvite,
  privateLoopback,
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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function frames(page, name) {
  const p = fromName(await summary(page), name);
  return p ? p.framesDecoded : 0;
}

async function keepsDecoding(page, name, more, what) {
  const base = await frames(page, name);
  await waitMedia(page, (s) => {
    const p = fromName(s, name);
    return s.state === 'connected' && p && p.framesDecoded >= base + more;
  }, { what, timeout: 45000 });
}

test('ICE restart after a network change, without a reload', { timeout: 180000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t, { args: ['--relay-consent-timeout', '8'] });
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);
  await Promise.all([
    waitReceiving(pat, [GP.name], { frames: 30 }),
    waitReceiving(gp, [PATIENT], { frames: 30 }),
  ]);
  for (const page of [pat, gp]) await page.evaluate(() => (window.__notReloaded = true));

  await t.test('an ICE restart asked for by the page keeps media flowing', async () => {
    await pat.evaluate(() => window.__spk.media.restartIce());
    await waitMedia(pat, (s) => s.restarts >= 1 && s.state === 'connected', {
      what: 'patient restarted',
    });
    await Promise.all([
      keepsDecoding(pat, GP.name, 60, 'patient decodes after the restart'),
      keepsDecoding(gp, PATIENT, 60, 'GP decodes after the patient restarted'),
    ]);
  });

  // The relay has given up on the connections (nothing received for 8 s), and the pages, whose
  // ICE stayed disconnected for longer than they wait, build both connections again.
  for (const seconds of [12]) {
    await t.test(`loopback down for ${seconds} s: "Verbinding herstellen…", then media again`, {
      skip: privateLoopback() ? false : 'needs the loopback-only namespace of run.sh',
    }, async () => {
      const restarts = (await summary(pat)).restarts;
      const down = Date.now();
      execFileSync('ip', ['link', 'set', 'lo', 'down']);
      try {
        await tid(pat, 'call-status').waitFor({ state: 'visible', timeout: 15000 });
        assert.match(await tid(pat, 'call-status').innerText(), /Verbinding herstellen/);
        await env.shot(pat, 'media-restart-patient-reconnecting');
        await sleep(Math.max(0, seconds * 1000 - (Date.now() - down)));
      } finally {
        execFileSync('ip', ['link', 'set', 'lo', 'up']);
      }
      await Promise.all([
        keepsDecoding(pat, GP.name, 60, 'patient decodes after the outage'),
        keepsDecoding(gp, PATIENT, 60, 'GP decodes after the outage'),
      ]);
      const after = await summary(pat);
      assert.ok(after.restarts > restarts, `the patient restarted (${after.restarts})`);
      await tid(pat, 'call-status').waitFor({ state: 'hidden', timeout: 10000 });
      t.diagnostic(`${seconds} s outage: media back ${Date.now() - down - seconds * 1000} ms after loopback came up`);
    });
  }

  await t.test('spreekd restarts: the pages reconnect and media flows again', async () => {
    await env.srv.restart();
    await tid(pat, 'connection-status').waitFor({ state: 'hidden', timeout: 30000 });
    await tid(gp, 'connection-status').waitFor({ state: 'hidden', timeout: 30000 });
    await Promise.all([
      keepsDecoding(pat, GP.name, 60, 'patient decodes after the server restart'),
      keepsDecoding(gp, PATIENT, 60, 'GP decodes after the server restart'),
    ]);
  });

  await t.test('neither page was reloaded', async () => {
    for (const page of [pat, gp]) {
      assert.equal(await page.evaluate(() => window.__notReloaded), true);
    }
  });

  await t.test('no script errors or CSP violations', () => {
    // Chromium logs the WebSocket failures during the outages; they are expected.
    for (const list of env.problems) {
      const kept = list.filter((p) => !/WebSocket connection to .* failed/.test(p));
      list.splice(0, list.length, ...kept);
    }
    noProblems(env);
  });
  t.diagnostic(`took ${Date.now() - started} ms`);
});
