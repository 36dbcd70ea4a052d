// SIGTERM drains: /healthz turns 503, every client gets server.shutdown and then close 1001,
// new upgrades are refused, a client that does not answer is closed at the drain timeout, and
// the process exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, waitMsg, refused, PROTO } from './util.mjs';

test('SIGTERM: server.shutdown, close 1001, healthz 503, exit 0', async () => {
  // 2 s, below the 3 s the server waits for the answer to a close frame it sent (after which
  // lws drops the connection by itself): the stuck client is then closed by the drain's timeout.
  const srv = await startServer({ args: ['--drain-timeout', '2'] });
  let stopped = false;
  try {
    const a = await open(srv.wsUrl);
    const b = await open(srv.wsUrl);
    const stuck = await open(srv.wsUrl);
    stuck._socket.pause(); // never reads the close: keeps the drain going until its timeout
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');

    for (const ws of [a, b]) {
      const m = await waitMsg(ws, (x) => x.type === 'server.shutdown');
      assert.equal(typeof m.retry_after_ms, 'number');
      const c = await ws.closed;
      assert.equal(c.code, 1001);
    }

    // still draining (the stuck client holds it open): health says so, upgrades are refused
    const h = await srv.get('/healthz');
    assert.equal(h.status, 503);
    assert.deepEqual(JSON.parse(h.body), { status: 'draining' });
    const live = await srv.get('/livez'); // alive: a liveness probe must not kill the drain
    assert.equal(live.status, 200);
    assert.deepEqual(JSON.parse(live.body), { status: 'live' });
    const e = await refused(srv.wsUrl, PROTO);
    assert.match(e.message, /503/);

    const exit = await srv.exited;
    const ms = Date.now() - t0;
    assert.equal(exit.code, 0, srv.stderr);
    assert.ok(ms >= 1500 && ms < 8000, `exit after ${ms} ms, drain timeout 2 s`);
    assert.ok(srv.grep(/^drain: timeout after 2 s, 1 connection/).length === 1, srv.stderr);
    await srv.stop();
    stopped = true;
    stuck.terminate();
  } finally {
    if (!stopped) await srv.stop();
  }
});
