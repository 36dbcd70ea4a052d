// The WebSocket endpoint is /ws with subprotocol spreekkamer.v1; anything else is refused at
// the upgrade.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, refused, PROTO } from './util.mjs';

test('missing or wrong subprotocol, or wrong path, is refused', async () => {
  const srv = await startServer();
  try {
    const cases = [
      [srv.wsUrl, null],
      [srv.wsUrl, 'chat'],
      [srv.wsUrl, ['chat', 'spreekkamer.v2']],
      [srv.url.replace('http', 'ws') + '/other', PROTO],
      [srv.url.replace('http', 'ws') + '/', PROTO],
    ];
    for (const [url, proto] of cases) {
      const e = await refused(url, proto);
      assert.match(e.message, /Unexpected server response: 400/, `${url} ${proto}: ${e.message}`);
    }
    const m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="bad_upgrade"}'], cases.length);
    assert.equal(m.spk_connections_total, 0);

    // among several offered, spreekkamer.v1 is chosen
    const ws = await open(srv.wsUrl, { protocol: ['chat', PROTO] });
    assert.equal(ws.protocol, PROTO);
    assert.equal((await ping(ws, 1)).type, 'ok');
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});
