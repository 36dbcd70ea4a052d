// Browser test: a care-team conversation (issue 9, acceptance 2b). The GP starts the patient's
// care-team conversation in the console and adds two partners (a pharmacy and district
// nursing). The district nurse goes offline (page closed, the browser profile kept); the GP and
// the pharmacy write; the nurse comes back and reads the backlog in order. An assistant of the
// practice joins the conversation by themselves and reads along. Then the GP removes
// the nurse: the nurse reads nothing new, cannot write, and sees that the conversation ended for
// them. No script errors or CSP violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, waitText as waitPageText } from './lib.mjs';
import { GP, newPage, noProblems, openConsole, setup, tid } from './media_lib.mjs';
import { sendText, texts, waitReady, waitText } from './chat_lib.mjs';

const PHARMACY = {
  role: 'partner',
  sub: 'apo-1',
  name: 'Apotheek Centrum',
  practice: 'apotheek-centrum',
};
const NURSE = {
  role: 'partner',
  sub: 'wv-1',
  name: 'Wijkverpleging Noord',
  practice: 'wijkzorg-noord',
};
const ASSISTANT = {
  role: 'assistant',
  sub: 'da-1',
  name: 'Fatima (assistente)',
  practice: 'praktijk-a',
  actsFor: 'gp-1',
};
const TITLE = 'Zorgplan mevrouw De Vries';

async function openInbox(page, title = TITLE) {
  const item = page.locator('[data-testid="inbox-item"]', { hasText: title });
  await item.waitFor({ state: 'visible', timeout: 30000 });
  await item.click();
  await waitPageText(tid(page, 'chat-view-title'), title);
  return tid(page, 'chat-view-panel');
}

async function addPartner(gp, who) {
  await tid(gp, 'chat-add-role').selectOption('partner');
  await tid(gp, 'chat-add-sub').fill(who.sub);
  await tid(gp, 'chat-add-name').fill(who.name);
  await tid(gp, 'chat-add-submit').click();
  // Added as a member, and (their console is open) their device joins the group.
  await gp
    .locator(`[data-testid="chat-member"][data-sub="${who.sub}"]:not([data-devices="0"])`)
    .waitFor({ state: 'visible', timeout: 30000 });
}

test(
  'care-team conversation: offline partner catches up, removed partner reads nothing new',
  { timeout: 300000 },
  async (t) => {
    const started = Date.now();
    const env = await setup(t, { relay: false });
    const gp = await openConsole(env, GP);
    const pharmacy = await openConsole(env, PHARMACY);
    // The nurse's browser keeps its profile (IndexedDB) while the page is closed.
    const nurseToken = await mintToken(env.srv.dataDir, NURSE);
    let nurse = await newPage(env, 'nurse');
    const nurseCtx = nurse.context();
    const openNurse = async () => {
      await nurse.goto(`${env.srv.url}/console#token=${nurseToken}`);
      await waitPageText(tid(nurse, 'user-name'), NURSE.name);
    };
    await openNurse();
    let gpChat;

    await t.test('partners see no consults, only conversations', async () => {
      assert.equal(await tid(pharmacy, 'new-consult-submit').isVisible(), false);
      assert.equal(await tid(pharmacy, 'consult-list').isVisible(), false);
      await tid(pharmacy, 'chat-inbox').waitFor({ state: 'visible' });
    });

    await t.test('the GP starts the care-team conversation and adds both partners', async () => {
      await tid(gp, 'ct-patient').fill('pseudo-4711');
      await tid(gp, 'ct-title').fill(TITLE);
      await tid(gp, 'ct-submit').click();
      await waitPageText(tid(gp, 'chat-view-title'), TITLE);
      gpChat = tid(gp, 'chat-view-panel');
      await waitReady(gpChat);
      await addPartner(gp, PHARMACY);
      await addPartner(gp, NURSE);
      await sendText(gpChat, 'Welkom in het zorgteam van mevrouw De Vries.');
    });

    let phChat;
    let nuChat;
    await t.test('both partners find it in their inbox and read the welcome', async () => {
      phChat = await openInbox(pharmacy);
      nuChat = await openInbox(nurse);
      await waitText(phChat, 'Welkom in het zorgteam');
      await waitText(nuChat, 'Welkom in het zorgteam');
    });

    await t.test('the nurse goes offline; the GP and the pharmacy write', async () => {
      await nurse.close();
      await waitReady(phChat);
      await sendText(gpChat, 'Medicatie: metoprolol 50 mg is gestopt.');
      await sendText(phChat, 'Verwerkt in het medicatieoverzicht.');
      await sendText(gpChat, 'Graag bloeddruk meten bij het volgende bezoek.');
      await waitText(phChat, 'bloeddruk meten');
    });

    await t.test('the nurse comes back and reads the backlog, in order', async () => {
      nurse = await nurseCtx.newPage();
      env.problems.push([]);
      nurse.on('pageerror', (err) => env.problems.at(-1).push(`nurse: ${err.message}`));
      nurse.on(
        'console',
        (m) => m.type() === 'error' && env.problems.at(-1).push(`nurse: ${m.text()}`),
      );
      await openNurse();
      nuChat = await openInbox(nurse);
      await waitText(nuChat, 'bloeddruk meten');
      const got = await texts(nuChat);
      assert.deepEqual(got, [
        'Welkom in het zorgteam van mevrouw De Vries.',
        'Medicatie: metoprolol 50 mg is gestopt.',
        'Verwerkt in het medicatieoverzicht.',
        'Graag bloeddruk meten bij het volgende bezoek.',
      ]);
      await sendText(nuChat, 'Gelezen, ik meet morgen.');
      await waitText(gpChat, 'ik meet morgen');
      await env.shot(nurse, 'chat-care-team-nurse');
    });

    await t.test('an assistant of the practice joins by themselves and reads along', async () => {
      const assistant = await openConsole(env, ASSISTANT);
      const item = assistant.locator('[data-testid="inbox-item"]', { hasText: TITLE });
      await item.waitFor({ state: 'visible', timeout: 30000 });
      await item.click();
      await tid(assistant, 'chat-view-not-member').waitFor({ state: 'visible' });
      await tid(assistant, 'chat-view-join').click();
      await tid(assistant, 'chat-view-not-member').waitFor({ state: 'hidden' });
      const asChat = tid(assistant, 'chat-view-panel');
      await waitReady(asChat, 40000);
      await sendText(gpChat, 'Ook de assistente leest mee.');
      await waitText(asChat, 'Ook de assistente leest mee');
      // New members read from when their device joined, not the history before.
      assert.ok(!(await texts(asChat)).some((x) => x.includes('Welkom in het zorgteam')));
    });

    await t.test('the GP removes the nurse: nothing new reaches the nurse', async () => {
      await gp
        .locator(
          `[data-testid="chat-member"][data-sub="${NURSE.sub}"] [data-testid="chat-member-remove"]`,
        )
        .click();
      await gp
        .locator(`[data-testid="chat-member"][data-sub="${NURSE.sub}"]`)
        .waitFor({ state: 'detached', timeout: 20000 });
      // The removal Commit took the nurse's device out of the group.
      await gp.waitForFunction(
        (sub) => {
          const e = window.__spk.chat;
          return e
            .conversations()
            .some(
              (c) =>
                c.meta && c.meta.devices.length > 0 && !c.meta.devices.some((d) => d.sub === sub),
            );
        },
        NURSE.sub,
        { timeout: 20000 },
      );
      await sendText(gpChat, 'Nieuw zorgplan volgt (niet voor de wijkverpleging).');
      await waitText(phChat, 'Nieuw zorgplan volgt');
      // The nurse's console learns that the conversation ended for them, and reads nothing new.
      await nurse
        .locator('[data-testid="chat-view-panel"][data-state="ended"]')
        .waitFor({ timeout: 20000 });
      assert.ok(!(await texts(nuChat)).some((x) => x.includes('Nieuw zorgplan')));
      assert.equal(await nuChat.locator('[data-testid="chat-input"]').isDisabled(), true);
      await env.shot(gp, 'chat-care-team-gp');
    });

    await t.test('no script errors or CSP violations', () => noProblems(env));
    t.diagnostic(`took ${Date.now() - started} ms`);
  },
);
