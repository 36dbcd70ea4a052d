// Binary frames are answered with bad_message; the connection stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, waitMsg } from './util.mjs';

test('binary frame: bad_message, and the connection still works', async () => {
  const srv = await startServer();
  try {
    const ws = await open(srv.wsUrl);
    ws.send(Buffer.from('{"id":1,"type":"ping"}'), { binary: true });
    const e = await waitMsg(ws, (m) => m.type === 'error');
    assert.equal(e.code, 'bad_message');
    assert.equal(e.re, null);
    // fragmented binary message: one answer
    ws.send(Buffer.alloc(100, 1), { binary: true, fin: false });
    ws.send(Buffer.alloc(100, 2), { binary: true, fin: true });
    assert.equal((await ping(ws, 2)).type, 'ok');
    assert.equal(ws.msgs.filter((m) => m.type === 'error' && m.code === 'bad_message').length, 2);
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});
