// Browser test: the chat of a video consult (issue 9, acceptance 2a). During the call (media
// through the relay) the patient sends a text and a photo (from the camera) and the GP sees
// both; the GP sends a text and a photo (from a file) and the patient sees both. The consult's
// chat follows admission: a patient sent back to the waiting room is removed from the group
// and reads nothing new; admitted again, they are added again. No script errors or CSP
// violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GP,
  admit,
  createAndJoin,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  tid,
  waitReceiving,
} from './media_lib.mjs';
import { waitText as waitPageText } from './lib.mjs';
import {
  engineState,
  sendPhotoFile,
  sendText,
  texts,
  waitPhotos,
  waitReady,
  waitText,
} from './chat_lib.mjs';

const PATIENT = 'Sanne de Vries';

test('consult chat: text and photos both ways during the call', { timeout: 300000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT, { timeout: 30000 });
  const gpChat = tid(gp, 'consult-chat');
  const patChat = tid(pat, 'chat-panel');
  let conv;

  await t.test('both chat panels open once the patient is admitted', async () => {
    await Promise.all([waitReady(gpChat), waitReady(patChat)]);
    conv = await patChat.getAttribute('data-conversation');
    assert.match(conv, /^m_/);
    assert.equal(await gpChat.locator('.chat-panel').getAttribute('data-conversation'), conv);
  });

  await t.test('the call runs meanwhile', async () => {
    await waitReceiving(pat, [GP.name], { frames: 10 });
  });

  await t.test(
    'the patient sends a text and a photo from the camera; the GP sees both',
    async () => {
      await sendText(patChat, 'Goedemiddag dokter, hier is de foto van mijn arm.');
      await patChat.locator('[data-testid="chat-camera"]').click();
      await patChat.locator('[data-testid="chat-camera-take"]').click();
      await waitPhotos(patChat, { mine: true });
      await waitText(gpChat, 'hier is de foto van mijn arm');
      const [[w, h]] = await waitPhotos(gpChat, { mine: false });
      assert.ok(w >= 160 && h >= 120, `the camera photo decoded at ${w}×${h}`);
      const from = await gpChat
        .locator('[data-testid="chat-message"][data-mine="0"] [data-testid="chat-from"]')
        .first()
        .innerText();
      assert.equal(from, PATIENT);
    },
  );

  await t.test('the GP sends a text and a photo from a file; the patient sees both', async () => {
    await sendText(gpChat, 'Dank u. Ik stuur u een voorbeeld terug.');
    await sendPhotoFile(gpChat, 'voorbeeld.png');
    await waitPhotos(gpChat, { mine: true });
    await waitText(patChat, 'Ik stuur u een voorbeeld terug');
    const [[w, h]] = await waitPhotos(patChat, { mine: false });
    assert.deepEqual([w, h], [32, 24]);
    const from = await patChat
      .locator('[data-testid="chat-message"][data-mine="0"] [data-testid="chat-from"]')
      .first()
      .innerText();
    assert.equal(from, GP.name);
    await env.shot(pat, 'chat-consult-patient');
    await env.shot(gp, 'chat-consult-gp');
  });

  await t.test('sent back: the patient leaves the group and reads nothing new', async () => {
    await gp.locator('[data-testid="send-back"]').click();
    await waitPageText(tid(pat, 'join-status'), 'teruggezet');
    // The GP console commits the removal (the service refuses any Commit that keeps them).
    await gp.waitForFunction(
      (id) => {
        const c = window.__spk.chat.get(id);
        return c && c.meta && c.meta.devices.every((d) => d.sub.startsWith('gp-'));
      },
      conv,
      { timeout: 20000 },
    );
    await sendText(gpChat, 'Alleen voor de huisarts.');
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!(await texts(patChat)).some((x) => x.includes('Alleen voor de huisarts')));
  });

  await t.test('admitted again: added again, reads what comes after', async () => {
    await admit(gp, pat, PATIENT, { timeout: 30000 });
    await waitReady(patChat);
    await sendText(gpChat, 'Welkom terug.');
    await waitText(patChat, 'Welkom terug');
    assert.ok(!(await texts(patChat)).some((x) => x.includes('Alleen voor de huisarts')));
    const st = await engineState(pat, conv);
    assert.deepEqual(st.errors, []);
    assert.equal((await engineState(gp, conv)).errors.length, 0);
  });

  await t.test('no script errors or CSP violations', () => noProblems(env));
  t.diagnostic(`took ${Date.now() - started} ms`);
});
