// Beyond max_connections a new connection is told too_many_connections and closed with 1013;
// the others carry on, and room frees up when one leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, waitMsg, sleep } from './util.mjs';

test('max connections: too_many_connections + close 1013', async () => {
  const srv = await startServer({ args: ['--max-connections', '2'] });
  try {
    const a = await open(srv.wsUrl);
    const b = await open(srv.wsUrl);
    const c = await open(srv.wsUrl, { hello: false });
    const err = await waitMsg(c, (m) => m.type === 'error');
    assert.equal(err.code, 'too_many_connections');
    assert.equal(err.re, null);
    const closed = await c.closed;
    assert.equal(closed.code, 1013);
    assert.ok(!c.msgs.some((m) => m.type === 'hello'), 'the refused connection never reached the core');

    assert.equal((await ping(a, 1)).type, 'ok');
    assert.equal((await ping(b, 1)).type, 'ok');
    let m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="too_many_connections"}'], 1);

    a.close();
    await a.closed;
    for (let i = 0; i < 50 && (await srv.metrics()).spk_connections_open !== 1; i++) await sleep(20);
    const d = await open(srv.wsUrl);
    assert.equal((await ping(d, 1)).type, 'ok');
    m = await srv.metrics();
    assert.equal(m.spk_connections_open, 2);
    b.close();
    d.close();
    await Promise.all([b.closed, d.closed]);
  } finally {
    await srv.stop();
  }
});
