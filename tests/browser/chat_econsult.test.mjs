// Browser test: an e-consult with home measurements (issue 9, acceptance 2c). The GP starts an
// e-consult for a consult, makes its invite link and closes the console; the patient opens the
// link on the e-consult page, writes a question and a first blood-pressure reading, which wait
// in the browser's encrypted store (a reload keeps them) until the GP opens the e-consult again
// and the console adds the patient. Then the rest of the series; the GP console shows it as a
// table and a plot, the GP answers, the patient reads it, comes back later and finds it all.
// No script errors or CSP violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, waitText as waitPageText } from './lib.mjs';
import { GP, newPage, noProblems, setup, tid } from './media_lib.mjs';
import { sendText, waitReady, waitText } from './chat_lib.mjs';

const SERIES = [
  ['2026-11-30T08:00', 152, 95],
  ['2026-12-01T08:05', 148, 92],
  ['2026-12-02T07:55', 141, 90],
  ['2026-12-03T08:10', 137, 86],
];

async function enterBloodPressure(page, [when, sys, dia]) {
  await tid(page, 'measure-kind').selectOption('blood_pressure');
  await tid(page, 'measure-systolic').fill(String(sys));
  await tid(page, 'measure-diastolic').fill(String(dia));
  await tid(page, 'measure-when').fill(when);
  await tid(page, 'measure-submit').click();
  // Cleared once accepted (sent, or waiting until the conversation is open).
  await page.waitForFunction(
    () => document.querySelector('[data-testid="measure-systolic"]').value === '',
  );
}

test(
  'e-consult: a blood-pressure series shown to the GP as a table and a plot',
  { timeout: 300000 },
  async (t) => {
    const started = Date.now();
    const env = await setup(t, { relay: false });
    // The GP's browser keeps its profile while the console is closed.
    const gpToken = await mintToken(env.srv.dataDir, GP);
    let gp = await newPage(env, 'gp');
    const gpCtx = gp.context();
    const openGp = async () => {
      await gp.goto(`${env.srv.url}/console#token=${gpToken}`);
      await waitPageText(tid(gp, 'user-name'), GP.name);
    };
    await openGp();
    let url;

    await t.test('the GP starts an e-consult and makes its invite link', async () => {
      await tid(gp, 'new-consult-patient').fill('pseudo-4711');
      await tid(gp, 'new-consult-title').fill('Bloeddruk thuis');
      await tid(gp, 'new-consult-submit').click();
      await waitPageText(tid(gp, 'detail-title'), 'Bloeddruk thuis');
      await tid(gp, 'econsult-start').click();
      await waitPageText(tid(gp, 'chat-view-title'), 'Bloeddruk thuis');
      await waitPageText(tid(gp, 'chat-view-meta'), 'E-consult');
      await tid(gp, 'econsult-invite').click();
      await gp.waitForFunction(
        () => document.querySelector('[data-testid="econsult-url"]').value !== '',
      );
      url = await tid(gp, 'econsult-url').inputValue();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/econsult\.html#[A-Za-z0-9_-]{16,}$/);
      // Nobody of the practice is online while the patient writes.
      await gp.close();
    });

    let pat;
    let patChat;
    await t.test(
      'the patient opens the link, writes and measures before the practice is there',
      async () => {
        pat = await newPage(env, 'patient', { width: 400, height: 860, mobile: true });
        await pat.goto(url);
        await tid(pat, 'econsult-name').fill('Sanne de Vries');
        await tid(pat, 'econsult-start').click();
        await tid(pat, 'econsult-view').waitFor({ state: 'visible' });
        assert.equal(
          new URL(pat.url()).hash,
          '',
          'the invite code is removed from the address bar',
        );
        patChat = tid(pat, 'chat-panel');
        await patChat
          .locator('[data-testid="chat-input"]')
          .fill('Mijn bloeddruk is de laatste dagen hoog.');
        await patChat.locator('[data-testid="chat-send"]').click();
        await enterBloodPressure(pat, SERIES[0]);
        const pending = patChat.locator('[data-testid="chat-message"].chat-pending');
        await pending.nth(1).waitFor({ state: 'visible' });
        // They wait in the browser's encrypted store: a reload keeps them.
        await pat.waitForFunction(() => window.__spk.chat.attached);
        await pat.reload();
        await tid(pat, 'econsult-view').waitFor({ state: 'visible' });
        await patChat.locator('[data-testid="chat-message"].chat-pending').nth(1).waitFor();
        assert.equal(await patChat.locator('[data-testid="chat-message"]').count(), 2);
      },
    );

    let gpChat;
    await t.test(
      'the GP opens the e-consult later; the patient is added, what waited goes out',
      async () => {
        gp = await gpCtx.newPage();
        env.problems.push([]);
        gp.on('pageerror', (err) => env.problems.at(-1).push(`gp: ${err.message}`));
        gp.on(
          'console',
          (m) => m.type() === 'error' && env.problems.at(-1).push(`gp: ${m.text()}`),
        );
        await openGp();
        const item = gp.locator('[data-testid="inbox-item"][data-kind="econsult"]');
        await item.waitFor({ state: 'visible', timeout: 30000 });
        await item.click();
        gpChat = tid(gp, 'chat-view-panel');
        await waitReady(patChat, 40000);
        await waitText(gpChat, 'de laatste dagen hoog');
        for (const m of SERIES.slice(1)) await enterBloodPressure(pat, m);
      },
    );

    await t.test('the GP console shows the series as a table and a plot', async () => {
      const table = gp.locator('[data-testid="measure-table"][data-kind="blood_pressure"]');
      await gp.waitForFunction(
        (n) =>
          document.querySelectorAll(
            '[data-testid="measure-table"][data-kind="blood_pressure"] [data-testid="measure-row"]',
          ).length === n,
        SERIES.length,
        { timeout: 20000 },
      );
      const rows = await table
        .locator('[data-testid="measure-row"]')
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td.num')].map((td) => td.textContent)),
        );
      // Newest first.
      assert.deepEqual(
        rows,
        SERIES.slice()
          .reverse()
          .map(([, s, d]) => [String(s), String(d)]),
      );
      const plot = gp.locator('[data-testid="measure-plot"][data-kind="blood_pressure"]');
      await plot.waitFor({ state: 'visible' });
      const shape = await plot.evaluate((svg) => ({
        role: svg.getAttribute('role'),
        title: svg.querySelector('title').textContent,
        series: [...svg.querySelectorAll('.plot-series')].map((g) => ({
          code: g.dataset.code,
          points: g.querySelectorAll('circle').length,
          ys: [...g.querySelectorAll('circle')].map((c) => Number(c.getAttribute('cy'))),
          xs: [...g.querySelectorAll('circle')].map((c) => Number(c.getAttribute('cx'))),
        })),
      }));
      assert.equal(shape.role, 'img');
      assert.match(shape.title, /Bloeddruk: 4 metingen/);
      assert.deepEqual(
        shape.series.map((s) => [s.code, s.points]),
        [
          ['systolic', 4],
          ['diastolic', 4],
        ],
      );
      // Time runs left to right; the falling pressure goes down the plot (larger y).
      for (const s of shape.series) {
        assert.deepEqual(
          s.xs,
          s.xs.slice().sort((a, b) => a - b),
        );
        assert.deepEqual(
          s.ys,
          s.ys.slice().sort((a, b) => a - b),
        );
      }
      // Systolic above diastolic everywhere.
      shape.series[0].ys.forEach((y, i) => assert.ok(y < shape.series[1].ys[i]));
      const inChat = await gpChat.locator('[data-testid="chat-measurement"]').allInnerTexts();
      assert.equal(inChat.length, 4);
      assert.match(inChat[0], /Bloeddruk 152\/95 mmHg/);
      await env.shot(gp, 'chat-econsult-gp');
    });

    await t.test('the GP answers; the patient reads it', async () => {
      await sendText(gpChat, 'Dank u. De waarden dalen; meet nog een week door.');
      await waitText(patChat, 'meet nog een week door');
      await env.shot(pat, 'chat-econsult-patient');
    });

    await t.test(
      'the patient comes back later: the conversation and its history are there',
      async () => {
        await pat.reload();
        await tid(pat, 'econsult-view').waitFor({ state: 'visible' });
        patChat = tid(pat, 'chat-panel');
        await waitReady(patChat);
        await waitText(patChat, 'meet nog een week door');
        assert.equal(await patChat.locator('[data-testid="chat-measurement"]').count(), 4);
        await sendText(patChat, 'Dank u, dat doe ik.');
        await waitText(gpChat, 'dat doe ik');
      },
    );

    await t.test('English is available', async () => {
      await tid(pat, 'lang-en').click();
      await waitPageText(tid(pat, 'measure-submit'), 'Send measurement');
      await tid(gp, 'lang-en').click();
      await waitPageText(gp.locator('[data-testid="measure-table"] caption'), 'Blood pressure');
    });

    await t.test('no script errors or CSP violations', () => noProblems(env));
    t.diagnostic(`took ${Date.now() - started} ms`);
  },
);
