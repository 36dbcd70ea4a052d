// A TCP connection that never completes a WebSocket upgrade (or an HTTP request) is closed
// after handshake_timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, rawExchange } from './util.mjs';

test('silent or half-sent handshakes are closed after the handshake timeout', async () => {
  const srv = await startServer({ args: ['--handshake-timeout', '1'] });
  try {
    const [silent, partial, upgrading] = await Promise.all([
      rawExchange(srv.port, null, 8000),
      rawExchange(srv.port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n', 8000),
      rawExchange(srv.port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n', 8000),
    ]);
    for (const [name, r] of Object.entries({ silent, partial, upgrading })) {
      assert.ok(r.closedByServer, `${name}: not closed within 8 s`);
      assert.ok(r.ms >= 800, `${name}: closed too early (${r.ms} ms)`);
      assert.ok(r.ms < 6000, `${name}: closed late (${r.ms} ms)`);
    }
    // an established WebSocket is not subject to the handshake timeout
    const ws = await open(srv.wsUrl);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await ping(ws, 1)).type, 'ok');
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});
