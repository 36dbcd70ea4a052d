// A message over max_message_bytes (whole or fragmented) is discarded and answered with
// too_large; the connection stays usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, waitMsg } from './util.mjs';

test('oversize message: too_large, and the connection still works', async () => {
  const srv = await startServer({ args: ['--max-message-bytes', '1024'] });
  try {
    const ws = await open(srv.wsUrl);
    const hello = ws.msgs.find((m) => m.type === 'hello');
    assert.equal(hello.limits.max_message_bytes, 1024);

    ws.send(JSON.stringify({ id: 1, type: 'ping', pad: 'x'.repeat(5000) }));
    const e1 = await waitMsg(ws, (m) => m.type === 'error');
    assert.equal(e1.code, 'too_large');
    assert.equal(e1.re, null);
    assert.equal((await ping(ws, 2)).type, 'ok');

    // fragmented: 3 x 400 bytes = 1200 > 1024
    ws.msgs.length = 0;
    ws.send('{"id":3,"type":"ping","pad":"' + 'y'.repeat(372), { fin: false });
    ws.send('z'.repeat(400), { fin: false });
    ws.send('w'.repeat(398) + '"}', { fin: true });
    const e2 = await waitMsg(ws, (m) => m.type === 'error');
    assert.equal(e2.code, 'too_large');

    // fragmented within the limit is reassembled
    ws.send('{"id":4,', { fin: false });
    ws.send('"type":"pi', { fin: false });
    ws.send('ng"}', { fin: true });
    assert.equal((await waitMsg(ws, (m) => m.re === 4)).type, 'ok');

    // exactly at the limit is accepted
    const base = JSON.stringify({ id: 5, type: 'ping', pad: '' });
    ws.send(JSON.stringify({ id: 5, type: 'ping', pad: 'p'.repeat(1024 - base.length) }));
    assert.equal((await waitMsg(ws, (m) => m.re === 5)).type, 'ok');

    const m = await srv.metrics();
    assert.equal(m.spk_frames_too_large_total, 2);
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});
