// /healthz and /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping } from './util.mjs';

const TRANSPORT_METRICS = [
  'spk_connections_open', 'spk_connections_total',
  'spk_connections_rejected_total{reason="too_many_connections"}',
  'spk_connections_rejected_total{reason="draining"}',
  'spk_connections_rejected_total{reason="bad_upgrade"}',
  'spk_ws_messages_in_total', 'spk_ws_messages_out_total', 'spk_ws_bytes_in_total',
  'spk_ws_bytes_out_total', 'spk_send_queue_overflows_total', 'spk_frames_too_large_total',
  'spk_rx_paused_total', 'spk_connections_rx_paused', 'spk_draining',
  'spk_ws_send_queue_bytes', 'spk_ws_send_queue_bytes_max',
];

test('healthz answers ok, metrics count connections and messages', async () => {
  const srv = await startServer();
  try {
    const h = await srv.get('/healthz');
    assert.equal(h.status, 200);
    assert.match(h.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
    assert.equal(h.headers.get('x-content-type-options'), 'nosniff');

    const live = await srv.get('/livez');
    assert.equal(live.status, 200);
    assert.deepEqual(JSON.parse(live.body), { status: 'live' });

    const post = await srv.get('/healthz', { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal((await srv.get('/ws')).status, 426, 'plain GET on /ws asks for the upgrade');

    const m0 = await srv.get('/metrics');
    assert.equal(m0.status, 200);
    assert.match(m0.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    assert.match(m0.body, /# TYPE spk_connections_open gauge\n/);
    const before = await srv.metrics();
    for (const name of TRANSPORT_METRICS) {
      assert.equal(typeof before[name], 'number', `metric ${name} missing`);
    }
    assert.equal(before.spk_connections_open, 0);
    assert.ok(Object.keys(before).some((k) => k.startsWith('spk_sig_')), 'core metrics follow');

    const ws = await open(srv.wsUrl);
    const ok = await ping(ws, 1);
    assert.equal(ok.type, 'ok');
    const during = await srv.metrics();
    assert.equal(during.spk_connections_open, 1);
    assert.equal(during.spk_connections_total, 1);
    assert.equal(during.spk_ws_messages_in_total, 1);
    assert.ok(during.spk_ws_messages_out_total >= 2, 'hello + ok written');
    assert.ok(during.spk_ws_bytes_in_total > 0 && during.spk_ws_bytes_out_total > 0);
    ws.close();
    await ws.closed;
    // the server sees the close shortly after the client
    for (let i = 0; i < 50 && (await srv.metrics()).spk_connections_open !== 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await srv.metrics()).spk_connections_open, 0);
    assert.ok(srv.grep(/^open remote=127\.0\.0\.1/).some((l) => l.conn === 1), 'conn id 1 logged');
  } finally {
    await srv.stop();
  }
});
