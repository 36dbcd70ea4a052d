// The server pings an idle connection after idle/2 and closes it with 4002 after idle without
// traffic or pong; a client that answers pings stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadIssuer, mint } from '../lib/tokens.mjs';
import { open, ping, waitMsg } from './util.mjs';

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

// A loop turn that takes longer than a timeout (a long write, a starved host) must not let the
// server judge idle and authentication timeouts before it reads the frames that arrived during
// that turn: a client that did send in time is served, not closed. The long turn is made with a
// debugger: the loop thread is held at a breakpoint in its check phase (after its poll), so the
// frames sent meanwhile are read only in the next turn, after that turn's timers.
test('frames that arrived during a long loop turn count before its timeouts', async (t) => {
  if (spawnSync('gdb', ['--version']).status !== 0) {
    t.skip('gdb is not installed (scripts/setup.sh installs it)');
    return;
  }
  const srv = await startServer({ args: ['--idle-timeout', '3', '--auth-timeout', '2'] });
  try {
    const token = mint(loadIssuer(srv.dataDir), {});
    const late = await open(srv.wsUrl); // authenticates while the loop is held
    const quiet = await open(srv.wsUrl); // sends a ping while the loop is held
    assert.equal((await authed(quiet, token)).type, 'ok');
    const gdb = spawn('gdb', ['-q', '-nx', '-batch', '-p', String(srv.proc.pid),
      '-ex', 'break spk_sig_flush', '-ex', 'continue', '-ex', 'delete',
      '-ex', 'echo HELD\\n', '-ex', 'shell sleep 4.5', '-ex', 'detach'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    gdb.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((r) => gdb.on('exit', r));
    for (let i = 0; i < 600 && !out.includes('HELD'); i++) await sleep(50);
    assert.ok(out.includes('HELD'), `gdb holds the loop: ${out.slice(-400)}`);
    late.send(JSON.stringify({ id: 1, type: 'auth', token }));
    quiet.send(JSON.stringify({ id: 2, type: 'ping' }));
    await exited;
    assert.equal((await waitMsg(late, (m) => m.re === 1)).type, 'ok', 'late auth answered');
    assert.equal((await waitMsg(quiet, (m) => m.re === 2)).type, 'ok', 'waiting ping answered');
    assert.equal((await ping(late, 3)).type, 'ok');
    assert.equal((await ping(quiet, 4)).type, 'ok');
    assert.deepEqual(srv.grep(/^idle for|not authenticated within/), [], JSON.stringify(srv.logs));
    late.close();
    quiet.close();
    await Promise.all([late.closed, quiet.closed]);
  } finally {
    await srv.stop();
  }
});

async function authed(ws, token) {
  ws.send(JSON.stringify({ id: 100, type: 'auth', token }));
  return waitMsg(ws, (m) => m.re === 100);
}
