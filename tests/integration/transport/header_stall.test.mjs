// The header timeout after the server got no CPU: connections accepted in a burst whose upgrade
// requests arrived in time must all be upgraded and greeted once the server runs again, even when
// it was held (SIGSTOP, as a loaded host does) past header_timeout_s; and a connection that
// really sends no request head is answered 408, logged and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from '../lib/server.mjs';
import { halfOpen, metricsOnce, sleep } from './util.mjs';

const N = 300;
const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Protocol: spreekkamer.v1\r\n\r\n';

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.data = '';
    s.err = null;
    s.on('data', (d) => { s.data += d.toString('latin1'); });
    s.on('error', (e) => { s.err = e.code; });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

test('a burst of upgrades that arrived in time survives a server held past the header timeout', async () => {
  const srv = await startServer({
    args: ['--header-timeout', '1', '--handshake-timeout', '30', '--max-pending-per-address', '1000',
      '--max-connections-per-address', '1000'],
  });
  const socks = [];
  try {
    for (let i = 0; i < N; i += 50) {
      socks.push(...await Promise.all(Array.from({ length: 50 }, () => connect(srv.port))));
    }
    await sleep(500); // accepted by the server meanwhile (its header timers run)
    srv.proc.kill('SIGSTOP');
    try {
      for (const s of socks) s.write(UPGRADE);
      await sleep(3000); // three times the header timeout
    } finally {
      srv.proc.kill('SIGCONT');
    }
    const deadline = Date.now() + 20000;
    const greeted = (s) => s.data.startsWith('HTTP/1.1 101') && s.data.includes('"type":"hello"');
    while (Date.now() < deadline && !socks.every((s) => greeted(s) || s.err || s.destroyed)) {
      await sleep(100);
    }
    const bad = socks.filter((s) => !greeted(s));
    assert.equal(bad.length, 0,
      `${bad.length} of ${N} not upgraded and greeted, e.g. ${bad[0]?.err} ${JSON.stringify(bad[0]?.data.slice(0, 40))}`);
    const m = await metricsOnce(srv.port);
    assert.equal(m['spk_connections_rejected_total{reason="header_timeout"}'], 0);
    assert.ok(m.spk_connections_open >= N, `${m.spk_connections_open} open`);
  } finally {
    for (const s of socks) s.destroy();
    await srv.stop();
  }
});

test('a keep-alive connection that trickles its next request head is closed with 408', async () => {
  // idle allowance (handshake timeout, 2 s) plus the header timeout (1 s) after the response;
  // lws's own limit for it is 61 s
  const srv = await startServer({ args: ['--header-timeout', '1', '--handshake-timeout', '2'] });
  try {
    const s = await halfOpen(srv.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    while (!/\r\n\r\n[\s\S]+/.test(s.data) && !s.isClosed) await sleep(20);
    assert.match(s.data, /^HTTP\/1\.1 200 /);
    const t0 = Date.now();
    s.write('GET / HTTP/1.1\r\n');
    const drip = setInterval(() => { if (!s.isClosed) s.write('X'); }, 200);
    try {
      const closed = await Promise.race([s.whenClosed, sleep(15000).then(() => null)]);
      assert.ok(closed, 'closed well before lws\'s 61 s');
      const ms = Date.now() - t0;
      assert.ok(ms >= 2500 && ms < 10000, `closed after ${ms} ms`);
    } finally {
      clearInterval(drip);
    }
    assert.match(s.data, /HTTP\/1\.1 408 Request Timeout\r\n/);
    const m = await metricsOnce(srv.port);
    assert.equal(m['spk_connections_rejected_total{reason="header_timeout"}'], 1);
  } finally {
    await srv.stop();
  }
});

test('a connection without a request head is answered 408, logged and counted', async () => {
  const srv = await startServer({ args: ['--header-timeout', '1', '--handshake-timeout', '30'] });
  try {
    const silent = await halfOpen(srv.port, null);
    const partial = await halfOpen(srv.port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const closed = await Promise.race([
      Promise.all([silent.whenClosed, partial.whenClosed]),
      sleep(10000).then(() => null),
    ]);
    assert.ok(closed, 'closed well before the 30 s handshake timeout');
    for (const c of closed) assert.ok(c.ms >= 800, `closed too early (${c.ms} ms)`);
    for (const s of [silent, partial]) {
      assert.match(s.data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(s.data, /\r\n\r\nno complete request head in time\n$/);
    }
    const line = await srv.waitLog(/^closed: no complete request head in time \(from 127\.0\.0\.1/);
    assert.equal(line.level, 'info');
    const m = await metricsOnce(srv.port);
    assert.equal(m['spk_connections_rejected_total{reason="header_timeout"}'], 2);
  } finally {
    await srv.stop();
  }
});
