// Browser test: an asynchronous question to a specialist (issue 9, acceptance 2d; the
// meekijkconsult of the brief, journey 2). The GP records the patient's consent, invites a
// dermatologist to the consult and asks a question with a photo; the specialist is not online
// then, opens the console later, reads the question, sees the photo and answers; the GP reads
// the answer. No script errors or CSP violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, waitText as waitPageText } from './lib.mjs';
import { GP, SPECIALIST, newPage, noProblems, openConsole, setup, tid } from './media_lib.mjs';
import {
  png,
  sendPhotoFile,
  sendText,
  texts,
  waitPhotos,
  waitReady,
  waitText,
} from './chat_lib.mjs';

const TITLE = 'Plekje op de arm';

test('specialist question: photo and question, answered later', { timeout: 300000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t, { relay: false });
  const gp = await openConsole(env, GP);
  // The specialist's browser keeps its profile while the console is closed.
  const specToken = await mintToken(env.srv.dataDir, SPECIALIST);
  let spec = await newPage(env, 'specialist');
  const specCtx = spec.context();
  const openSpec = async () => {
    await spec.goto(`${env.srv.url}/console#token=${specToken}`);
    await waitPageText(tid(spec, 'user-name'), SPECIALIST.name);
  };
  await openSpec();

  await t.test('a question needs an invited specialist first', async () => {
    await tid(gp, 'new-consult-patient').fill('pseudo-4711');
    await tid(gp, 'new-consult-title').fill(TITLE);
    await tid(gp, 'new-consult-submit').click();
    await waitPageText(tid(gp, 'detail-title'), TITLE);
    await tid(gp, 'question-start').click();
    await waitPageText(tid(gp, 'consult-chat-error'), 'specialist uit');
  });

  let gpChat;
  await t.test('consent, invitation, and the question to the specialist', async () => {
    await tid(gp, 'consent-given').selectOption('yes');
    await tid(gp, 'consent-method').selectOption('verbal');
    await tid(gp, 'consent-submit').click();
    await waitPageText(gp.locator('[data-testid="fact"][data-kind="consent"]'), 'gegeven');
    await tid(gp, 'specialist-sub').fill(SPECIALIST.sub);
    await tid(gp, 'specialist-name').fill(SPECIALIST.name);
    await tid(gp, 'specialist-submit').click();
    await waitPageText(gp.locator('[data-testid="fact"][data-kind="specialist"]'), SPECIALIST.name);
    await tid(gp, 'question-start').click();
    await waitPageText(tid(gp, 'chat-view-meta'), 'Vraag aan specialist');
    gpChat = tid(gp, 'chat-view-panel');
    await waitReady(gpChat);
    // The invited specialist becomes a member and their device joins the group.
    await gp
      .locator(`[data-testid="chat-member"][data-sub="${SPECIALIST.sub}"]:not([data-devices="0"])`)
      .waitFor({ state: 'visible', timeout: 30000 });
  });

  await t.test('the specialist is offline while the GP asks, with a photo', async () => {
    await spec.close();
    await sendText(
      gpChat,
      'Wilt u meekijken naar deze plek op de onderarm? Sinds drie weken, groeit niet.',
    );
    await sendPhotoFile(gpChat, 'onderarm.png', png(48, 36, [150, 90, 60]));
    await waitPhotos(gpChat, { mine: true });
  });

  let specChat;
  await t.test(
    'later the specialist opens the console, reads the question and sees the photo',
    async () => {
      spec = await specCtx.newPage();
      env.problems.push([]);
      spec.on('pageerror', (err) => env.problems.at(-1).push(`specialist: ${err.message}`));
      spec.on(
        'console',
        (m) => m.type() === 'error' && env.problems.at(-1).push(`specialist: ${m.text()}`),
      );
      await openSpec();
      const item = spec.locator('[data-testid="inbox-item"][data-kind="specialist_question"]');
      await item.waitFor({ state: 'visible', timeout: 20000 });
      await item.click();
      await waitPageText(tid(spec, 'chat-view-title'), TITLE);
      specChat = tid(spec, 'chat-view-panel');
      await waitText(specChat, 'plek op de onderarm');
      const [[w, h]] = await waitPhotos(specChat, { mine: false });
      assert.deepEqual([w, h], [48, 36]);
      const alt = await specChat.locator('img[data-testid="chat-photo"]').getAttribute('alt');
      assert.match(alt, /Foto van Dr\. Jansen/);
    },
  );

  await t.test('the specialist answers; the GP reads the answer', async () => {
    await waitReady(specChat);
    await sendText(specChat, 'Ziet eruit als een seborroïsche wrat. Geen verwijzing nodig.');
    await waitText(gpChat, 'seborroïsche wrat');
    assert.deepEqual(await texts(gpChat, { mine: false }), [
      'Ziet eruit als een seborroïsche wrat. Geen verwijzing nodig.',
    ]);
    await env.shot(spec, 'chat-question-specialist');
    await env.shot(gp, 'chat-question-gp');
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
