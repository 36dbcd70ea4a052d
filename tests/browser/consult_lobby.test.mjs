// Browser test: a GP in the console and a patient on the join page go through the video
// consult journey on a real spreekd: invite, camera preview (and a refused camera), lobby,
// admission, identity and speak-freely checks, meekijkconsult consent, rosters, send-back,
// denial, reload, a reused invite, the language switch, 360 px, a server restart, leaving and
// rejoining, the end of the consult, and the assistant's and remote GP's console. Screenshots
// go to $SPK_BROWSER_ARTIFACTS (CTest: <build>/tests/browser/artifacts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '../integration/lib/client.mjs';
import {
  artifactDir,
  forgiveNetworkNoise,
  launchBrowser,
  mintToken,
  startServer,
  waitText,
  watchPage,
} from './lib.mjs';

const GP = { role: 'gp', sub: 'gp-1', name: 'Dr. Jansen', practice: 'praktijk-a' };
const PATIENT_NAME = 'Sanne de Vries';

const tid = (page, id) => page.locator(`[data-testid="${id}"]`);
const fact = (page, kind) => page.locator(`[data-testid="fact"][data-kind="${kind}"]`);
const newContext = (browser, width, height, extra = {}) =>
  browser.newContext({ viewport: { width, height }, locale: 'nl-NL', ...extra });

async function noHorizontalScroll(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

test('video consult: console, invite, lobby, admission, checks', { timeout: 150000 }, async (t) => {
  const started = Date.now();
  const srv = await startServer();
  const browser = await launchBrowser();
  const shots = artifactDir();
  const shot = (page, name) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const problems = [];
  t.after(async () => {
    await browser.close().catch(() => {});
    await srv.stop();
  });

  const token = await mintToken(srv.dataDir, GP);

  // GP console, signed in from the link's fragment.
  const gpCtx = await newContext(browser, 1280, 900);
  const gp = await gpCtx.newPage();
  const gpProblems = watchPage(gp, 'console');
  let consultId;
  let inviteUrl;

  await t.test('GP signs in from the console link', async () => {
    await gp.goto(`${srv.url}/console#token=${token}`);
    await waitText(tid(gp, 'user-name'), 'Dr. Jansen');
    const meta = await tid(gp, 'user-meta').innerText();
    assert.match(meta, /huisarts/);
    assert.match(meta, /praktijk-a/);
    assert.equal(new URL(gp.url()).hash, '', 'the token is removed from the address bar');
  });

  await t.test('GP creates a consult and an invite link, and joins', async () => {
    await tid(gp, 'new-consult-patient').fill('pseudo-4711');
    await tid(gp, 'new-consult-title').fill('Beeldbellen');
    await tid(gp, 'new-consult-submit').click();
    await waitText(tid(gp, 'detail-meta'), 'pseudo-4711');
    await waitText(tid(gp, 'detail-title'), 'Beeldbellen');
    const item = gp.locator('[data-testid="consult-item"]', { hasText: 'Beeldbellen' });
    consultId = await item.getAttribute('data-consult');
    assert.ok(consultId, 'the consult is listed');

    await tid(gp, 'invite-create').click();
    await tid(gp, 'invite-url').waitFor({ state: 'visible' });
    inviteUrl = await tid(gp, 'invite-url').inputValue();
    assert.match(inviteUrl, /^http:\/\/127\.0\.0\.1:\d+\/join#[A-Za-z0-9_-]{16,}$/);
    await waitText(tid(gp, 'invite-expiry'), 'Geldig tot');

    await tid(gp, 'consult-join').click();
    await tid(gp, 'detail-joined').waitFor({ state: 'visible' });
    await waitText(tid(gp, 'console-roster'), 'Dr. Jansen');
  });

  // Patient on a phone-sized screen.
  const patCtx = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'nl-NL',
  });
  const pat = await patCtx.newPage();
  const patProblems = watchPage(pat, 'patient');

  await t.test('patient opens the invite and sees the camera preview', async () => {
    await pat.goto(inviteUrl);
    await tid(pat, 'screen-setup').waitFor({ state: 'visible' });
    assert.equal(new URL(pat.url()).hash, '', 'the invite code is removed from the address bar');
    await pat.waitForFunction(() => {
      const v = document.querySelector('[data-testid="join-preview"]');
      return v && v.srcObject && v.videoWidth > 0 && !v.paused;
    }, null, { timeout: 15000 });
    await tid(pat, 'media-ok').waitFor({ state: 'visible' });
    assert.ok(await noHorizontalScroll(pat), 'the join page fits 360 px');
    await shot(pat, 'patient-1-setup');
  });

  await t.test('a refused camera gets a clear message and the patient can go on', async () => {
    const ctx = await newContext(browser, 360, 740);
    await ctx.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    const page = await ctx.newPage();
    const p = watchPage(page, 'refused');
    await page.goto(inviteUrl);
    await waitText(tid(page, 'media-status'), 'geen toestemming');
    assert.equal(await page.locator('#media-retry').isVisible(), true);
    assert.equal(await tid(page, 'join-submit').isEnabled(), true);
    assert.equal(await tid(page, 'toggle-video').isDisabled(), true);
    await shot(page, 'patient-0-camera-refused');
    await ctx.close();
    problems.push(...p);
  });

  await t.test('patient goes to the waiting room', async () => {
    await tid(pat, 'join-name').fill(PATIENT_NAME);
    await tid(pat, 'join-submit').click();
    await waitText(tid(pat, 'join-status'), 'De huisarts laat u zo binnen');
    await shot(pat, 'patient-2-waiting');
  });

  await t.test('GP sees the patient in the lobby and admits them', async () => {
    const entry = gp.locator('[data-testid="lobby-entry"]', { hasText: PATIENT_NAME });
    await entry.waitFor({ state: 'visible', timeout: 10000 });
    await shot(gp, 'gp-1-lobby');
    await entry.locator('[data-testid="lobby-admit"]').click();
    await waitText(tid(pat, 'consult-status'), 'binnengelaten');
    await tid(pat, 'tiles').waitFor({ state: 'visible' });
  });

  await t.test('GP records the identity check and "kan vrijuit spreken"', async () => {
    await tid(gp, 'identity-method').selectOption('id_document');
    await tid(gp, 'identity-verified').check();
    await tid(gp, 'identity-submit').click();
    await waitText(fact(gp, 'identity_check'), 'Identiteitsbewijs getoond');
    await tid(gp, 'speak-freely-confirmed').check();
    await tid(gp, 'speak-freely-submit').click();
    await waitText(fact(gp, 'speak_freely'), 'kan vrijuit spreken');
  });

  await t.test('meekijkconsult: consent first, then the specialist', async () => {
    await tid(gp, 'specialist-sub').fill('spec-1');
    await tid(gp, 'specialist-name').fill('Dr. de Boer');
    await tid(gp, 'specialist-submit').click();
    await waitText(tid(gp, 'meekijk-error'), 'Leg eerst de toestemming van de patiënt vast');
    await tid(gp, 'consent-given').selectOption('yes');
    await tid(gp, 'consent-method').selectOption('verbal');
    await tid(gp, 'consent-submit').click();
    await waitText(fact(gp, 'consent'), 'gegeven');
    await tid(gp, 'specialist-submit').click();
    await waitText(fact(gp, 'specialist'), 'Dr. de Boer');
    assert.equal(await tid(gp, 'meekijk-error').isVisible(), false);
  });

  await t.test('both see each other in the roster', async () => {
    await waitText(tid(gp, 'console-roster'), PATIENT_NAME);
    await waitText(tid(gp, 'console-roster'), 'Dr. Jansen');
    await waitText(tid(pat, 'join-roster'), 'Dr. Jansen');
    await waitText(tid(pat, 'join-roster'), PATIENT_NAME);
    await shot(gp, 'gp-2-consult');
    await shot(pat, 'patient-3-consult');
  });

  await t.test('#tiles takes remote video tiles', async () => {
    const state = await pat.evaluate(async () => {
      const { setRemoteTile, removeRemoteTile } = await import('/js/tiles.js');
      const tiles = document.getElementById('tiles');
      const stream = document.getElementById('local-video').srcObject;
      const placeholder = () => document.getElementById('tiles-placeholder').hidden;
      const video = setRemoteTile(tiles, { id: 'p_test', name: 'Dr. Jansen', stream });
      await new Promise((r) => setTimeout(r, 300));
      const added = { placeholderHidden: placeholder(), playing: video.videoWidth > 0 };
      removeRemoteTile(tiles, 'p_test');
      return { added, removedPlaceholderHidden: placeholder() };
    });
    assert.deepEqual(state, {
      added: { placeholderHidden: true, playing: true },
      removedPlaceholderHidden: false,
    });
  });

  await t.test('GP sends the patient back to the waiting room and admits again', async () => {
    const row = gp.locator('[data-testid="roster-item"]', { hasText: PATIENT_NAME });
    await row.locator('[data-testid="send-back"]').click();
    await waitText(tid(pat, 'join-status'), 'teruggezet');
    const entry = gp.locator('[data-testid="lobby-entry"]', { hasText: PATIENT_NAME });
    await entry.locator('[data-testid="lobby-admit"]').click();
    await waitText(tid(pat, 'consult-status'), 'binnengelaten');
  });

  await t.test('GP denies a second patient, who sees the reason', async () => {
    const first = inviteUrl;
    await tid(gp, 'invite-create').click();
    await gp.waitForFunction(
      (old) => document.querySelector('[data-testid="invite-url"]').value !== old,
      first,
    );
    const second = await tid(gp, 'invite-url').inputValue();
    const ctx = await newContext(browser, 400, 800);
    const page = await ctx.newPage();
    const p = watchPage(page, 'second');
    await page.goto(second);
    await tid(page, 'join-name').fill('Piet Puk');
    await tid(page, 'join-submit').click();
    await waitText(tid(page, 'join-status'), 'De huisarts laat u zo binnen');
    const entry = gp.locator('[data-testid="lobby-entry"]', { hasText: 'Piet Puk' });
    await entry.locator('[data-testid="lobby-deny"]').click();
    await tid(gp, 'deny-reason').fill('U heeft een afspraak op de praktijk.');
    await tid(gp, 'lobby-deny-confirm').click();
    await waitText(tid(page, 'ended-text'), 'niet binnengelaten');
    await waitText(tid(page, 'ended-reason'), 'U heeft een afspraak op de praktijk.');
    await shot(page, 'second-denied');
    await entry.waitFor({ state: 'detached' });
    await ctx.close();
    problems.push(...p);
  });

  await t.test('patient reload resumes the consult with the session token', async () => {
    await pat.reload();
    await waitText(tid(pat, 'consult-status'), 'binnengelaten', 15000);
    await waitText(tid(pat, 'join-roster'), 'Dr. Jansen');
  });

  await t.test('a used invite link shows "al gebruikt"', async () => {
    const ctx = await newContext(browser, 390, 800);
    const page = await ctx.newPage();
    const p = watchPage(page, 'reuse');
    await page.goto(inviteUrl);
    await tid(page, 'join-name').fill('Iemand Anders');
    await tid(page, 'join-submit').click();
    await waitText(tid(page, 'ended-text'), 'al gebruikt');
    await shot(page, 'reuse-1-used');

    await tid(page, 'lang-en').click();
    await waitText(tid(page, 'ended-text'), 'already been used');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await page.reload();
    await waitText(tid(page, 'ended-text'), 'already been used');
    const pressed = await tid(page, 'lang-en').getAttribute('aria-pressed');
    assert.equal(pressed, 'true', 'the language is remembered');
    await shot(page, 'reuse-2-english');
    await ctx.close();
    problems.push(...p);
  });

  await t.test('the language switch turns the console into English', async () => {
    await tid(gp, 'lang-en').click();
    await waitText(gp.locator('#lobby-title'), 'Waiting room');
    await waitText(tid(gp, 'user-meta'), 'GP');
    await waitText(tid(gp, 'consult-end'), 'End consultation');
    await shot(gp, 'gp-3-english');
    await tid(gp, 'lang-nl').click();
    await waitText(gp.locator('#lobby-title'), 'Wachtkamer');
  });

  await t.test('the console fits a 360 px screen', async () => {
    await gp.setViewportSize({ width: 360, height: 800 });
    assert.ok(await noHorizontalScroll(gp), 'the console fits 360 px');
    await shot(gp, 'gp-4-narrow');
    await gp.setViewportSize({ width: 1280, height: 900 });
  });

  await t.test('after a server restart both pages reconnect by themselves', async () => {
    const marks = [gpProblems.length, patProblems.length];
    await srv.halt();
    await waitText(tid(pat, 'connection-status'), 'verbinding');
    await waitText(tid(gp, 'connection-status'), 'verbinding');
    await shot(pat, 'patient-4-reconnecting');
    await srv.restart();
    await tid(pat, 'connection-status').waitFor({ state: 'hidden', timeout: 20000 });
    await tid(gp, 'connection-status').waitFor({ state: 'hidden', timeout: 20000 });
    await waitText(tid(pat, 'consult-status'), 'binnengelaten');
    await waitText(tid(pat, 'join-roster'), 'Dr. Jansen');
    await waitText(tid(gp, 'console-roster'), PATIENT_NAME);
    await tid(gp, 'detail-joined').waitFor({ state: 'visible' });
    forgiveNetworkNoise(gpProblems, marks[0]);
    forgiveNetworkNoise(patProblems, marks[1]);
  });

  await t.test('patient leaves, and comes back through the waiting room', async () => {
    await tid(pat, 'consult-leave').click();
    await waitText(tid(pat, 'screen-ended'), 'verlaten');
    await pat.reload();
    await tid(pat, 'ended-rejoin').waitFor({ state: 'visible' });
    await tid(pat, 'ended-rejoin').click();
    await waitText(tid(pat, 'join-status'), 'De huisarts laat u zo binnen');
    const entry = gp.locator('[data-testid="lobby-entry"]', { hasText: PATIENT_NAME });
    await entry.locator('[data-testid="lobby-admit"]').click();
    await waitText(tid(pat, 'consult-status'), 'binnengelaten');
  });

  await t.test('GP ends the consult and the patient is told', async () => {
    await tid(gp, 'consult-end').click();
    await tid(gp, 'consult-end').click();
    await tid(gp, 'detail-empty').waitFor({ state: 'visible' });
    await waitText(tid(pat, 'screen-ended'), 'afgelopen');
    await shot(pat, 'patient-5-ended');
  });

  await t.test('an assistant signs in "namens" their GP', async () => {
    const assistant = await mintToken(srv.dataDir, {
      role: 'assistant',
      sub: 'da-1',
      name: 'Fatima Bakker',
      practice: 'praktijk-a',
      actsFor: 'gp-1',
    });
    const ctx = await newContext(browser, 1280, 800);
    const page = await ctx.newPage();
    const p = watchPage(page, 'assistant');
    await page.goto(`${srv.url}/console`);
    await tid(page, 'screen-signin').waitFor({ state: 'visible' });
    await shot(page, 'assistant-1-signin');
    await tid(page, 'token-input').fill(assistant);
    await tid(page, 'signin-submit').click();
    await waitText(tid(page, 'user-name'), 'Fatima Bakker');
    await waitText(tid(page, 'user-meta'), 'doktersassistent · praktijk-a · namens gp-1');
    await tid(page, 'new-consult-patient').fill('pseudo-0815');
    await tid(page, 'new-consult-submit').click();
    await waitText(tid(page, 'detail-meta'), 'pseudo-0815');
    await tid(page, 'invite-create').click();
    await tid(page, 'invite-url').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#meekijk-title').isVisible(), false, 'a GP judgement');
    await shot(page, 'assistant-2-console');
    await ctx.close();
    problems.push(...p);
  });

  await t.test('a remote GP names the practice and holds its consults', async () => {
    const ws = await Client.connect(`${srv.url.replace(/^http/, 'ws')}/ws`);
    await ws.next('hello');
    await ws.ok('auth', { token });
    await ws.ok('consult.create', { patient: 'pseudo-5150', title: 'Avondspreekuur' });
    await ws.ok('delegation.grant', {
      remote_gp: 'rgp-1',
      valid_until: Math.floor(Date.now() / 1000) + 3600,
    });
    ws.close();
    const remote = await mintToken(srv.dataDir, {
      role: 'remote_gp',
      sub: 'rgp-1',
      name: 'Dr. Waarnemer',
      practice: 'hap-regio',
    });
    const ctx = await newContext(browser, 1280, 800);
    const page = await ctx.newPage();
    const p = watchPage(page, 'remote');
    await page.goto(`${srv.url}/console#token=${remote}`);
    await waitText(tid(page, 'user-meta'), 'waarnemend huisarts');
    await tid(page, 'practice-input').fill('praktijk-a');
    await tid(page, 'practice-submit').click();
    await page.locator('[data-testid="consult-item"]', { hasText: 'Avondspreekuur' }).click();
    await tid(page, 'consult-join').click();
    await tid(page, 'detail-joined').waitFor({ state: 'visible' });
    await waitText(tid(page, 'console-roster'), 'Dr. Waarnemer');
    await ctx.close();
    problems.push(...p);
  });

  await t.test('no script errors or CSP violations', async () => {
    const all = [...problems, ...gpProblems, ...patProblems];
    assert.deepEqual(all, []);
  });

  t.diagnostic(`screenshots in ${shots}; took ${Date.now() - started} ms`);
});
