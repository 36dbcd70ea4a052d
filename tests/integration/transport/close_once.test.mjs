// A server-initiated close sends exactly one close frame, also after the client answers it
// (a second one makes browsers report "Close received after close" and see code 1006).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from '../lib/server.mjs';

// A raw RFC 6455 client that records the server's close frames and answers the first one.
function rawClient(port) {
  const sock = net.connect(port, '127.0.0.1');
  const st = { closes: [], sock };
  let buf = Buffer.alloc(0);
  let upgraded = false;
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (!upgraded) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      upgraded = true;
      buf = buf.subarray(i + 4);
    }
    while (buf.length >= 2) {
      const op = buf[0] & 15;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) { len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + len) break;
      if (op === 8) {
        st.closes.push(len >= 2 ? buf.readUInt16BE(off) : 0);
        // Masked close reply with code 1000, as a browser sends it.
        sock.write(Buffer.from([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]));
      }
      buf = buf.subarray(off + len);
    }
  });
  st.closed = new Promise((r) => sock.on('close', r));
  sock.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    'Sec-WebSocket-Protocol: spreekkamer.v1\r\n\r\n');
  return st;
}

test('auth timeout closes with one 4001 frame', async () => {
  const srv = await startServer({ args: ['--auth-timeout', '1'] });
  try {
    const c = rawClient(srv.port);
    await c.closed;
    assert.deepEqual(c.closes, [4001]);
  } finally {
    await srv.stop();
  }
});

test('shutdown closes with one 1001 frame', async () => {
  const srv = await startServer();
  const c = rawClient(srv.port);
  await new Promise((r) => setTimeout(r, 300));
  const stopped = srv.stop();
  await c.closed;
  await stopped;
  assert.deepEqual(c.closes, [1001]);
});
