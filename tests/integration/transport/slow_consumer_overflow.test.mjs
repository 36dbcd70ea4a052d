// A client that stops reading while the server pushes events to it (here: consult.facts fanned
// out from another connection's requests) overflows its send queue and is closed with 4003;
// the server and the other connection carry on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { loadIssuer, mint } from '../lib/tokens.mjs';
import { open, waitMsg, sleep } from './util.mjs';

let nextId = 1;
async function req(ws, type, fields = {}) {
  const id = nextId++;
  ws.send(JSON.stringify({ id, type, ...fields }));
  const m = await waitMsg(ws, (x) => x.re === id, 10000);
  if (m.type !== 'ok') throw new Error(`${type}: ${m.code} ${m.message}`);
  return m;
}

test('slow consumer of pushed events is closed with 4003', async () => {
  const srv = await startServer({
    args: ['--send-queue-bytes', '262144', '--rate', '1000000', '--burst', '1000000'],
  });
  try {
    const issuer = loadIssuer(srv.dataDir);
    const gp = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
    const slow = await open(srv.wsUrl);
    await req(slow, 'auth', { token: mint(issuer, gp) });
    const { consult } = await req(slow, 'consult.create', { patient: 'pseudo-1', title: 't' });
    await req(slow, 'consult.join', { consult: consult.id });

    const fast = await open(srv.wsUrl);
    await req(fast, 'auth', { token: mint(issuer, gp) });
    await req(fast, 'consult.join', { consult: consult.id });

    slow._socket.pause(); // the slow client reads nothing from here on
    let closed = null;
    slow.closed.then((c) => { closed = c; });
    // Each invited specialist adds a fact, and every fact list is pushed to the staff in the
    // consult: the pushes grow, so the slow client's kernel buffers and queue fill quickly.
    await req(fast, 'consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    let n = 0;
    const name = 'Dr. Specialist '.padEnd(100, 'x');
    for (; n < 2000; n += 10) {
      if ((await srv.metrics()).spk_send_queue_overflows_total >= 1) break;
      await Promise.all(Array.from({ length: 10 }, (_, i) =>
        req(fast, 'specialist.invite', { consult: consult.id, specialist: `spec-${n + i}`, name })));
    }
    const m = await srv.metrics();
    assert.equal(m.spk_send_queue_overflows_total, 1, `no overflow after ${n} events`);
    await srv.waitLog(/send queue full/);

    // the slow client learns why once it reads again
    slow._socket.resume();
    const t0 = Date.now();
    while (!closed && Date.now() - t0 < 10000) await sleep(20);
    assert.ok(closed, 'slow client was not closed');
    assert.equal(closed.code, 4003);

    // the other connection and the server carry on
    const ok = await req(fast, 'ping');
    assert.equal(ok.type, 'ok');
    for (let i = 0; i < 50 && (await srv.metrics()).spk_connections_open !== 1; i++) await sleep(20);
    assert.equal((await srv.metrics()).spk_connections_open, 1);
    fast.close();
    await fast.closed;
  } finally {
    await srv.stop();
  }
});
