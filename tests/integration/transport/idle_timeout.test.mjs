// The server pings an idle connection after idle/2 and closes it with 4002 after idle without
// traffic or pong; a client that answers pings stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping } from './util.mjs';

test('a client that does not answer pings is dropped with 4002', async () => {
  const srv = await startServer({ args: ['--idle-timeout', '2', '--auth-timeout', '60'] });
  try {
    const t0 = Date.now();
    const mute = await open(srv.wsUrl, { autoPong: false });
    const alive = await open(srv.wsUrl);
    let mutePings = 0;
    let alivePings = 0;
    mute.on('ping', () => { mutePings++; });
    alive.on('ping', () => { alivePings++; });

    const closed = await mute.closed;
    const ms = Date.now() - t0;
    assert.equal(closed.code, 4002);
    assert.ok(mutePings >= 1, 'the server pinged first');
    assert.ok(ms >= 1900 && ms < 5000, `closed after ${ms} ms`);

    // answering pings keeps a connection open past the idle timeout
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(alivePings >= 1, 'the live client was pinged');
    assert.equal(alive.readyState, alive.OPEN);
    assert.equal((await ping(alive, 1)).type, 'ok');
    alive.close();
    await alive.closed;
    const idle = srv.grep(/^idle for \d+ ms: closing/);
    assert.deepEqual(idle.map((l) => l.conn), [1], JSON.stringify(srv.logs));
  } finally {
    await srv.stop();
  }
});
