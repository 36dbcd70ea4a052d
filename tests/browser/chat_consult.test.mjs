// Browser test: the chat of a video consult (issue 9, acceptance 2a). During the call (media
// through the relay) the patient sends a text and a photo (from the camera) and the GP sees
// both; the GP sends a text and a photo (from a file) and the patient sees both. The consult's
// chat follows admission: a patient sent back to the waiting room is removed from the group
// and reads nothing new; admitted again, they are added again. At each admission the GP's
// console adds the patient's device at once (from the lobby.admit answer), with its requests in
// one round trip. No script errors or CSP violations.
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

// Init script of the GP's page: window.__wsLog, the lobby, chat and MLS requests it sends and
// the answers and events it receives, in order: [dir, type, id or re, user sub, kind]; for an
// answer, the fifth field is the number of KeyPackages it carries (null if none were asked).
function logSignaling() {
  const log = (window.__wsLog = []);
  const watched = /^(lobby\.admit|roster|chat\.|mls\.)/;
  const asks = new Set();
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (m.re != null && asks.has(m.re)) {
          const kps = Array.isArray(m.key_packages) ? m.key_packages.length : null;
          log.push(['<', m.type, m.re, null, kps]);
        }
        else if (watched.test(m.type || '')) log.push(['<', m.type, null, null, m.kind || null]);
      });
    }
    send(data) {
      try {
        const m = JSON.parse(data);
        if (watched.test(m.type || '')) {
          asks.add(m.id);
          log.push(['>', m.type, m.id, m.user ? m.user.sub : m.participant || null, null]);
        }
      } catch {
        /* not JSON */
      }
      return super.send(data);
    }
  };
}

// From the GP's log since index `from`: the admission of `participant` and what followed it.
// Asserts that the patient's KeyPackages were claimed once (a claim answered before the patient's
// device uploaded any takes nothing and may be repeated), without waiting for the answers
// of the requests sent with the claim (members.add, chat.get), that the Commit came after, and
// that it was merged without a chat.sync round trip.
async function checkAdmission(gp, from) {
  const log = (await gp.evaluate(() => window.__wsLog)).slice(from);
  const admitAt = log.findIndex(([d, type]) => d === '>' && type === 'lobby.admit');
  assert.ok(admitAt >= 0, 'lobby.admit sent');
  const patient = log[admitAt][3];
  const after = log.slice(admitAt);
  const sent = (type, sub) => after.findIndex(([d, t, , u]) => d === '>' && t === type && (!sub || u === sub));
  const answered = (i) => after.findIndex(([d, , re]) => d === '<' && re === after[i][2]);
  const claim = sent('mls.key_packages.claim', patient);
  const commit = sent('mls.commit');
  assert.ok(claim > 0 && commit > claim, JSON.stringify(after));
  const claims = after
    .slice(0, commit)
    .filter(([d, t, , u]) => d === '>' && t === 'mls.key_packages.claim' && u === patient)
    .filter(([, , id]) => after.find(([d, , re]) => d === '<' && re === id)?.[4] !== 0);
  assert.equal(claims.length, 1, `the patient's KeyPackages claimed once: ${JSON.stringify(after)}`);
  // The requests that go with the claim left before any of them was answered.
  for (const type of ['chat.members.add', 'chat.get']) {
    const i = sent(type);
    if (i < 0 || i > commit) continue;
    const a = answered(i);
    assert.ok(a < 0 || a > claim, `${type} answered before the claim went out: ${JSON.stringify(after)}`);
  }
  // The Commit is merged at once: the console's earlier Commits and their Welcomes are the only
  // entries before it, which it never receives, so it need not ask chat.sync for them.
  const next = after.slice(answered(commit) + 1).find(([d]) => d === '>');
  assert.ok(!next || next[1] !== 'chat.sync', `the Commit waited for chat.sync: ${JSON.stringify(after)}`);
  return log.length + from;
}

test('consult chat: text and photos both ways during the call', { timeout: 300000 }, async (t) => {
  const started = Date.now();
  const env = await setup(t);
  const gp = await openConsole(env, GP, { init: logSignaling });
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  let logAt = await gp.evaluate(() => window.__wsLog.length);
  await admit(gp, pat, PATIENT, { timeout: 30000 });
  const gpChat = tid(gp, 'consult-chat');
  const patChat = tid(pat, 'chat-panel');
  let conv;

  await t.test('both chat panels open once the patient is admitted', async () => {
    await Promise.all([waitReady(gpChat), waitReady(patChat)]);
    conv = await patChat.getAttribute('data-conversation');
    assert.match(conv, /^m_/);
    assert.equal(await gpChat.locator('.chat-panel').getAttribute('data-conversation'), conv);
    logAt = await checkAdmission(gp, logAt);
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
    logAt = await gp.evaluate(() => window.__wsLog.length);
    await admit(gp, pat, PATIENT, { timeout: 30000 });
    await waitReady(patChat);
    await checkAdmission(gp, logAt);
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
