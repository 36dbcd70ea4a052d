// Browser test: the chat client's own guarantees (web/js/chat/engine.js, docs/chat-client.md),
// with a GP console in two tabs of one browser, a partner device in node (the same MLS library,
// tests/integration/chat/lib.mjs), and the WebSocket of the second tab routed through the test
// so that entries can be held back and acknowledgements dropped:
//   - two tabs are two devices (Web Locks), and the first adds the second to the group;
//   - two Commits for one epoch: the loser re-bases and commits again, everyone agrees;
//   - a message encrypted for an epoch that has passed is encrypted again and sent once;
//   - a message that is not a typed message is shown as unreadable, a message sent twice once;
//   - entries delivered again after a reload (acknowledgements lost) are skipped, the history
//     comes from the encrypted store;
//   - after a server restart both tabs reconnect, sync and carry on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../integration/lib/client.mjs';
import { ChatDevice, loadMls } from '../integration/chat/lib.mjs';
import { textMessage } from '../../web/js/chat/messages.js';
import { forgiveNetworkNoise, mintToken, waitText as waitPageText, watchPage } from './lib.mjs';
import { GP, noProblems, openConsole, setup, tid } from './media_lib.mjs';
import { sendText, texts, waitReady, waitText } from './chat_lib.mjs';

const PARTNER = {
  role: 'partner',
  sub: 'apo-1',
  name: 'Apotheek Centrum',
  practice: 'apotheek-centrum',
};
const TITLE = 'Zorgteam client';
const hex = (a) => Buffer.from(a).toString('hex');

// Routes a page's signaling WebSocket through the test: chat.entry frames to the page can be
// held back, chat.ack frames from the page dropped.
async function routed(page) {
  // holdFirst: only the first copy of each entry is held (a later one, from chat.sync, passes).
  const r = { hold: false, holdFirst: false, dropAcks: false, held: [], toPage: null, acksDropped: 0 };
  const seen = new Set();
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    r.toPage = ws;
    ws.onMessage((m) => {
      if (r.dropAcks && typeof m === 'string' && m.includes('"type":"chat.ack"')) {
        r.acksDropped++;
        return;
      }
      server.send(m);
    });
    server.onMessage((m) => {
      const entry = typeof m === 'string' && m.includes('"type":"chat.entry"');
      let first = false;
      if (entry && r.holdFirst) {
        const e = JSON.parse(m);
        first = !seen.has(`${e.conversation}/${e.seq}`);
        seen.add(`${e.conversation}/${e.seq}`);
      }
      if (entry && (r.hold || first)) r.held.push([ws, m]);
      else ws.send(m);
    });
  });
  r.release = () => {
    r.hold = false;
    r.holdFirst = false;
    for (const [ws, m] of r.held.splice(0)) ws.send(m);
  };
  return r;
}

// Waits until the page's chat engine has been told at least once more than `before` that its
// epoch had passed (the answer to its request comes while the Commit's entry is held back); the
// test's assertions say what went wrong if that never happens.
const staleAfter = (page, before) =>
  page
    .waitForFunction((n) => window.__spk.chat.stats.stale > n, before, { timeout: 20000, polling: 50 })
    .catch(() => {});

const authenticator = (page, conv) =>
  page.evaluate((id) => {
    const c = window.__spk.chat.get(id);
    return (
      [...c.group.epochAuthenticator()].map((x) => x.toString(16).padStart(2, '0')).join('') +
      `@${c.group.epoch}`
    );
  }, conv);

test(
  'chat client: devices, re-basing, bad messages, reloads, restarts',
  { timeout: 300000 },
  async (t) => {
    const started = Date.now();
    const env = await setup(t, { relay: false });
    const mls = await loadMls();
    const a = await openConsole(env, GP);
    const token = await mintToken(env.srv.dataDir, GP);
    const b = await a.context().newPage();
    env.problems.push(watchPage(b, 'tab B'));
    const route = await routed(b);
    await b.goto(`${env.srv.url}/console#token=${token}`);
    await waitPageText(tid(b, 'user-name'), GP.name);
    let conv;
    let aChat;
    let bChat;
    let node;

    await t.test('two tabs of one browser are two devices', async () => {
      for (const p of [a, b])
        await p.waitForFunction(() => window.__spk.chat && window.__spk.chat.attached);
      for (const p of [a, b]) {
        await p.evaluate(() => {
          window.__epochs = [];
          window.__spk.chat.on('epoch', (ev) => window.__epochs.push(ev.conversation));
        });
      }
      const ids = await Promise.all(
        [a, b].map((p) => p.evaluate(() => window.__spk.chat.deviceId)),
      );
      assert.notEqual(ids[0], ids[1]);
      assert.match(ids[0], /^web-/);
    });

    await t.test(
      'the first tab creates the conversation and adds the second tab and a partner',
      async () => {
        await tid(a, 'ct-patient').fill('pseudo-4711');
        await tid(a, 'ct-title').fill(TITLE);
        await tid(a, 'ct-submit').click();
        await waitPageText(tid(a, 'chat-view-title'), TITLE);
        aChat = tid(a, 'chat-view-panel');
        await waitReady(aChat);
        conv = await aChat.getAttribute('data-conversation');
        await tid(b, 'inbox-refresh').click();
        await b.locator('[data-testid="inbox-item"]', { hasText: TITLE }).click();
        bChat = tid(b, 'chat-view-panel');
        await waitReady(bChat);
        // The partner's device runs in node.
        const pc = await Client.connect(env.srv.server.wsUrl);
        await pc.next('hello');
        await pc.ok('auth', { token: await mintToken(env.srv.dataDir, PARTNER) });
        node = await ChatDevice.open(pc, mls, 'node-apo');
        await node.sync();
        await tid(a, 'chat-add-role').selectOption('partner');
        await tid(a, 'chat-add-sub').fill(PARTNER.sub);
        await tid(a, 'chat-add-name').fill(PARTNER.name);
        await tid(a, 'chat-add-submit').click();
        await node.until(() => node.groups.has(conv), 20000);
        await sendText(aChat, 'Eerste bericht');
        await waitText(bChat, 'Eerste bericht');
        await node.until(() => node.texts(conv).some((x) => x.includes('Eerste bericht')));
      },
    );

    await t.test(
      'two Commits for one epoch: the second tab loses, re-bases, commits again',
      async () => {
        await Promise.all([a, b].map((p) => p.evaluate(() => window.__spk.chat.idle())));
        const before = await b.evaluate(
          (id) => Number(window.__spk.chat.get(id).group.epoch),
          conv,
        );
        const staleBefore = await b.evaluate(() => window.__spk.chat.stats.stale);
        route.hold = true; // the second tab does not see the first tab's Commit yet
        await a.evaluate((id) => window.__spk.chat.commit(id, () => ({ update: true })), conv);
        const lost = b.evaluate(
          (id) => window.__spk.chat.commit(id, () => ({ update: true })).then((r) => r.epoch),
          conv,
        );
        // held until the second tab's Commit was refused (however long the page takes to send it)
        await staleAfter(b, staleBefore);
        route.release();
        assert.equal(await lost, before + 2);
        assert.ok(
          (await b.evaluate(() => window.__spk.chat.stats.stale)) >= 1,
          'the second tab re-based',
        );
        await node.idle();
        await node.until(() => node.groups.get(conv).epoch === BigInt(before + 2));
        const auth = [await authenticator(a, conv), await authenticator(b, conv)];
        assert.equal(auth[0], auth[1]);
        assert.equal(auth[0], `${hex(node.groups.get(conv).epochAuthenticator())}@${before + 2}`);
        // Media keys from the same epoch: both tabs derive the same SFrame base key.
        const baseKey = (p) =>
          p.evaluate(
            (id) =>
              window.__spk.chat.withGroup(id, (g) =>
                [...g.exportSecret('SFrame 1.0 Base Key', new Uint8Array(0), 16)].join(','),
              ),
            conv,
          );
        assert.equal(await baseKey(a), await baseKey(b));
        for (const p of [a, b]) {
          const seen = await p.evaluate(() => window.__epochs);
          assert.ok(
            seen.filter((x) => x === conv).length >= 2,
            'epoch events for the conversation',
          );
        }
      },
    );

    await t.test('a message of a passed epoch is encrypted again and arrives once', async () => {
      route.hold = true;
      await a.evaluate((id) => window.__spk.chat.commit(id, () => ({ update: true })), conv);
      const staleBefore = await b.evaluate(() => window.__spk.chat.stats.stale);
      const sent = b.evaluate(async (id) => {
        const { textMessage: tm } = await import('/js/chat/messages.js');
        const item = await window.__spk.chat.send(id, tm('Verstuurd in een oud epoch'));
        return item.seq;
      }, conv);
      await staleAfter(b, staleBefore);
      route.release();
      assert.ok((await sent) > 0);
      assert.ok((await b.evaluate(() => window.__spk.chat.stats.stale)) > staleBefore);
      await waitText(aChat, 'Verstuurd in een oud epoch');
      await node.until(() =>
        node.texts(conv).some((x) => x.includes('Verstuurd in een oud epoch')),
      );
      assert.equal(
        (await texts(aChat)).filter((x) => x === 'Verstuurd in een oud epoch').length,
        1,
      );
      assert.equal(
        node.texts(conv).filter((x) => x.includes('Verstuurd in een oud epoch')).length,
        1,
      );
    });

    await t.test(
      "a message sequenced before the tab's own Commit is read with that epoch's keys",
      async () => {
        await Promise.all([a, b].map((p) => p.evaluate(() => window.__spk.chat.idle())));
        await node.idle();
        const epoch = await b.evaluate((id) => Number(window.__spk.chat.get(id).group.epoch), conv);
        await node.until(() => node.groups.get(conv).epoch === BigInt(epoch));
        // The partner's message reaches the tab late (as an event crossing nodes can), after
        // the tab's own Commit of the same epoch was accepted; what the service sends from its
        // store (chat.sync) is not held.
        route.holdFirst = true;
        assert.equal((await node.send(conv, JSON.stringify(textMessage('Vlak voor de Commit')))).type, 'ok');
        for (let i = 0; i < 100 && route.held.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(route.held.length, 1, 'the live entry is held');
        const next = await b.evaluate(
          (id) => window.__spk.chat.commit(id, () => ({ update: true })).then((r) => r.epoch),
          conv,
        );
        assert.equal(next, epoch + 1);
        route.release();
        await waitText(bChat, 'Vlak voor de Commit');
        await waitText(aChat, 'Vlak voor de Commit');
        assert.deepEqual(await b.evaluate((id) => window.__spk.chat.get(id).errors, conv), []);
        await node.until(() => node.groups.get(conv).epoch === BigInt(next));
      },
    );

    await t.test(
      'not a typed message: shown as unreadable; one message sent twice: shown once',
      async () => {
        assert.equal((await node.send(conv, 'geen JSON')).type, 'ok');
        const twice = JSON.stringify(textMessage('Twee keer verstuurd'));
        assert.equal((await node.send(conv, twice)).type, 'ok');
        assert.equal((await node.send(conv, twice)).type, 'ok');
        await node.send(conv, JSON.stringify(textMessage('Daarna')));
        await waitText(aChat, 'Daarna');
        await waitText(bChat, 'Daarna');
        for (const panel of [aChat, bChat]) {
          assert.equal((await texts(panel)).filter((x) => x === 'Twee keer verstuurd').length, 1);
          assert.equal(
            await panel.locator('[data-testid="chat-message"][data-type="invalid"]').count(),
            1,
          );
        }
      },
    );

    await t.test(
      'entries delivered again after a reload are skipped; history from the store',
      async () => {
        route.dropAcks = true;
        for (const n of [1, 2, 3]) await sendText(aChat, `Zonder ontvangstbevestiging ${n}`);
        await waitText(bChat, 'Zonder ontvangstbevestiging 3');
        await b.evaluate(() => window.__spk.chat.idle());
        await new Promise((r) => setTimeout(r, 300));
        assert.ok(route.acksDropped >= 1);
        const before = await texts(bChat);
        route.dropAcks = false;
        await b.reload();
        await waitPageText(tid(b, 'user-name'), GP.name);
        await b.locator('[data-testid="inbox-item"]', { hasText: TITLE }).click();
        bChat = tid(b, 'chat-view-panel');
        await waitReady(bChat);
        await waitText(bChat, 'Zonder ontvangstbevestiging 3');
        await b.waitForFunction(() => window.__spk.chat.stats.skipped >= 3, null, {
          timeout: 10000,
        });
        assert.deepEqual(await texts(bChat), before);
        assert.equal(
          await b.evaluate(() => window.__spk.chat.stats.entries),
          0,
          'nothing handled twice',
        );
        await sendText(aChat, 'Na het herladen');
        await waitText(bChat, 'Na het herladen');
      },
    );

    await t.test('a server restart: both tabs reconnect, sync and carry on', async () => {
      const mark = env.problems.map((p) => p.length);
      node.client.ws.close();
      await env.srv.restart();
      for (const p of [a, b]) {
        await p.waitForFunction(
          () =>
            window.__spk.chat.attached &&
            !document.querySelector('[data-testid="connection-status"]:not([hidden])'),
          null,
          { timeout: 30000 },
        );
      }
      await waitReady(aChat);
      await sendText(aChat, 'Na de herstart');
      await waitText(bChat, 'Na de herstart');
      await sendText(bChat, 'Ook na de herstart');
      await waitText(aChat, 'Ook na de herstart');
      env.problems.forEach((p, i) => forgiveNetworkNoise(p, mark[i] ?? 0));
      for (const p of [a, b]) {
        assert.deepEqual(await p.evaluate((id) => window.__spk.chat.get(id).errors, conv), []);
      }
    });

    await t.test('no script errors or CSP violations', () => noProblems(env));
    node?.close();
    t.diagnostic(`took ${Date.now() - started} ms`);
  },
);
