// Backpressure for a client that stops reading while it keeps sending requests: once its send
// queue is over half the cap the server stops reading that connection (the client's own
// writes back up), nothing is lost, and reading resumes when the client drains its answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, sleep } from './util.mjs';

test('slow consumer: reading is paused, answers arrive complete and in order', async () => {
  const srv = await startServer({
    args: ['--send-queue-bytes', '16384', '--rate', '1000000', '--burst', '1000000'],
  });
  try {
    const ws = await open(srv.wsUrl);
    const answers = [];
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.type === 'ok' || m.type === 'error') answers.push(m);
    });
    ws._socket.pause(); // stop reading: answers pile up in the kernel, then in the queue

    // Send until the server has stopped reading for good: kernel socket buffers grow first
    // (autotuning), so the queue passes half its cap several times before reads stay paused.
    let sent = 0;
    let stable = false;
    let inBefore = 0;
    for (let round = 0; round < 400 && !stable; round++) {
      for (let i = 0; i < 1000; i++) ws.send(`{"id":${++sent},"type":"ping"}`);
      await sleep(10);
      const a = await srv.metrics();
      if (a.spk_connections_rx_paused !== 1 || a.spk_ws_messages_in_total >= sent) continue;
      await sleep(300);
      const b = await srv.metrics();
      inBefore = b.spk_ws_messages_in_total;
      stable = b.spk_connections_rx_paused === 1 && inBefore === a.spk_ws_messages_in_total;
    }
    assert.ok(stable, `server never stopped reading (sent ${sent} pings)`);
    const during = await srv.metrics();
    assert.ok(during.spk_rx_paused_total >= 1);
    assert.equal(during.spk_send_queue_overflows_total, 0, 'pausing reads keeps the queue under its cap');
    assert.ok(inBefore < sent, `requests are waiting unread (${inBefore} of ${sent} read)`);
    // The queue gauges: answers are queued, never over the cap, all on the one connection; while
    // reading is paused the queue is at least a quarter of the cap (reading resumes below that).
    const q = during.spk_ws_send_queue_bytes;
    assert.ok(q > 0 && q <= 16384, `queued bytes ${q}`);
    if (during.spk_connections_rx_paused === 1) assert.ok(q >= 4096, `queued bytes ${q} while paused`);
    assert.equal(during.spk_ws_send_queue_bytes_max, q);

    ws._socket.resume();
    const t0 = Date.now();
    while (answers.length < sent && Date.now() - t0 < 30000) await sleep(20);
    assert.equal(answers.length, sent, 'every request answered');
    answers.forEach((m, i) => {
      if (m.type !== 'ok' || m.re !== i + 1) assert.fail(`answer ${i}: ${JSON.stringify(m)}`);
    });
    const after = await srv.metrics();
    assert.equal(after.spk_connections_rx_paused, 0, 'reading resumed');
    assert.equal(after.spk_ws_send_queue_bytes, 0, 'queue written out');
    assert.equal(ws.readyState, ws.OPEN);
    ws.close();
    await ws.closed;
  } finally {
    await srv.stop();
  }
});
