// The messages a loop turn queues for a connection go out together, several WebSocket frames in
// one socket write (docs/architecture.md, "Transport"). These tests would catch the ways that
// can go wrong: frames out of order or cut at the wrong place (short and 16-bit lengths mixed in
// one write), a write the socket takes only in part while the client does not read (the rest
// must follow whole, before any later frame), and a close while frames are still queued (they
// all arrive first, then the close frame, intact).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, waitMsg, sleep } from './util.mjs';

const FAST = ['--rate', '1000000', '--burst', '1000000'];

// n requests written with one socket write, alternately a ping (answer under 126 bytes) and an
// unknown type with a 64-character string id (an error answer of 126 bytes or more: a 16-bit
// length). Returns the expected answers as [re, type].
function burst(ws, n, first = 1) {
  const want = [];
  ws._socket.cork();
  for (let i = first; i < first + n; i++) {
    if (i % 2 === 0) {
      ws.send(JSON.stringify({ id: i, type: 'ping' }));
      want.push([i, 'ok']);
    } else {
      const id = `req-${i}-`.padEnd(64, 'x');
      ws.send(JSON.stringify({ id, type: 'no.such.request' }));
      want.push([id, 'error']);
    }
  }
  ws._socket.uncork();
  return want;
}

function answers(ws) {
  return ws.msgs.filter((m) => m.type === 'ok' || m.type === 'error');
}

function assertInOrder(got, want) {
  assert.equal(got.length, want.length, 'every request answered');
  got.forEach((m, i) => {
    if (m.re !== want[i][0] || m.type !== want[i][1]) {
      assert.fail(`answer ${i}: ${JSON.stringify(m).slice(0, 200)}, want ${JSON.stringify(want[i])}`);
    }
  });
}

// Sends bursts to a client that does not read until the kernel's buffers are full and answers
// wait in the server's queue; returns the expected answers.
async function fillQueue(srv, ws) {
  const want = [];
  for (let round = 0; round < 400; round++) {
    want.push(...burst(ws, 1000, want.length + 1));
    await sleep(10);
    if ((await srv.metrics()).spk_ws_send_queue_bytes > 0) return want;
  }
  assert.fail(`the queue stayed empty after ${want.length} requests`);
}

test('a burst: frames of mixed lengths in few writes, whole and in order', async () => {
  const srv = await startServer({ args: FAST });
  try {
    const ws = await open(srv.wsUrl);
    const sizes = new Set();
    ws.on('message', (d) => sizes.add(d.length < 126 ? 'short' : 'medium'));
    const before = await srv.metrics();
    const want = burst(ws, 600);
    const t0 = Date.now();
    while (answers(ws).length < want.length && Date.now() - t0 < 20000) await sleep(20);
    assertInOrder(answers(ws), want);
    assert.deepEqual([...sizes].sort(), ['medium', 'short'], 'both header lengths were written');
    const after = await srv.metrics();
    const msgs = after.spk_ws_messages_out_total - before.spk_ws_messages_out_total;
    const writes = after.spk_ws_writes_total - before.spk_ws_writes_total;
    assert.ok(msgs >= 600, `${msgs} messages written`);
    // The server reads the burst in a few turns and answers each turn's requests in one write.
    assert.ok(writes * 4 <= msgs, `${writes} writes for ${msgs} messages: not coalesced`);
    assert.equal(ws.readyState, ws.OPEN);
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});

test('a client that does not read: partial writes resume whole, in order, then more follows', async () => {
  const srv = await startServer({ args: [...FAST, '--send-queue-bytes', '65536'] });
  try {
    const ws = await open(srv.wsUrl);
    ws._socket.pause(); // answers fill the kernel's buffers; the server's writes go out in part
    const want = await fillQueue(srv, ws);
    const during = await srv.metrics();
    assert.equal(during.spk_send_queue_overflows_total, 0);
    ws._socket.resume();
    const t0 = Date.now();
    while (answers(ws).length < want.length && Date.now() - t0 < 30000) await sleep(20);
    assertInOrder(answers(ws), want);
    // and the connection still works: a fresh burst is answered in order after the backlog
    const more = burst(ws, 100, want.length + 1);
    while (answers(ws).length < want.length + more.length && Date.now() - t0 < 30000) await sleep(20);
    assertInOrder(answers(ws), [...want, ...more]);
    assert.equal(ws.readyState, ws.OPEN);
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});

test('closing with frames queued: all of them, then server.shutdown, then close 1001', async () => {
  const srv = await startServer({ args: [...FAST, '--drain-timeout', '20'] });
  try {
    const ws = await open(srv.wsUrl);
    ws._socket.pause();
    const want = await fillQueue(srv, ws);
    srv.proc.kill('SIGTERM'); // the close goes behind the queued frames
    await sleep(300);
    ws._socket.resume();
    await waitMsg(ws, (x) => x.type === 'server.shutdown', 20000);
    const closed = await ws.closed;
    assert.equal(closed.code, 1001);
    // Every answer before server.shutdown, in order; the server may have stopped reading
    // requests when it began to drain, so a tail may be unanswered, never a gap.
    const idx = ws.msgs.findIndex((x) => x.type === 'server.shutdown');
    const got = ws.msgs.slice(0, idx).filter((x) => x.type === 'ok' || x.type === 'error');
    assert.ok(got.length > 0, 'answers arrived');
    assertInOrder(got, want.slice(0, got.length));
    assert.equal(answers(ws).length, got.length, 'nothing after server.shutdown');
    const exit = await srv.exited;
    assert.equal(exit.code, 0, srv.stderr);
  } finally {
    await srv.stop();
  }
});
