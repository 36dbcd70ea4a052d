// Limits per source address: half-open connections from one address are refused beyond
// max_pending_per_address (429) and cannot hold up /healthz or /metrics; open connections beyond
// max_connections_per_address are refused (429) while other addresses carry on; the header
// timeout closes requests that never complete, even when they trickle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, refused, rawExchange, halfOpen, fdLimit, metricsOnce, sleep } from './util.mjs';

const ATTACKER = '127.0.0.2';
const PARTIAL = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n';
const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

async function waitMetric(srv, name, want, ms = 10000) {
  const t0 = Date.now();
  let v;
  while (Date.now() - t0 < ms) {
    v = (await metricsOnce(srv.port))[name];
    if (v === want) return v;
    await sleep(50);
  }
  assert.equal(v, want, `${name} did not reach ${want}`);
  return v;
}

test('1,100 half-open requests from one address: refused beyond the pending limit, /healthz and /metrics answered meanwhile', async () => {
  // more half-open connections than lws has header buffers (1,024), as in the report; fewer
  // where the descriptor limit does not allow it
  const n = Math.min(1100, Math.floor((fdLimit() - 200) / 2));
  // a header timeout far beyond the wait allowed below: /healthz must not merely come back
  // once the half-open requests have timed out
  const srv = await startServer({ args: ['--header-timeout', '60', '--handshake-timeout', '60'] });
  try {
    const socks = [];
    for (let i = 0; i < n; i += 100) {
      const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) },
        () => halfOpen(srv.port, i % 200 === 0 ? PARTIAL : null, { localAddress: ATTACKER })));
      socks.push(...batch);
    }
    // the refused ones are answered 429 and closed; 32 (the default) stay pending
    const t0 = Date.now();
    while (socks.filter((s) => s.isClosed).length < n - 32 && Date.now() - t0 < 10000) await sleep(50);
    const refusedSocks = socks.filter((s) => s.isClosed);
    const pending = socks.filter((s) => !s.isClosed);
    assert.equal(pending.length, 32, 'half-open connections kept');
    assert.equal(refusedSocks.length, n - 32);
    for (const s of refusedSocks) assert.match(s.data, /^HTTP\/1\.1 429 /);

    // the monitor (another address) is answered while the half-open connections are still there
    const h = await rawExchange(srv.port, HEALTHZ, 15000);
    assert.match(h.data, /^HTTP\/1\.1 200 /, `healthz: ${h.data.slice(0, 80)}`);
    assert.match(h.data, /"status":"ok"/);
    const m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="pending_per_address"}'], n - 32);
    assert.equal(pending.filter((s) => s.isClosed).length, 0, 'still half-open while /healthz answered');

    // a WebSocket from the monitor's address still works during the attack
    const ws = await open(srv.wsUrl);
    assert.equal((await ping(ws, 1)).type, 'ok');
    ws.close();
    await ws.closed;

    for (const s of pending) s.destroy();
    // the attacker's address is forgotten; only 127.0.0.1 (this request) is left
    await waitMetric(srv, 'spk_client_addresses', 1);
  } finally {
    await srv.stop();
  }
});

test('open connections per address: the next one is refused with 429, other addresses carry on', async () => {
  const srv = await startServer({ args: ['--max-connections-per-address', '3'] });
  try {
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await open(srv.wsUrl, { localAddress: ATTACKER }));
    const err = await refused(srv.wsUrl, 'spreekkamer.v1', { localAddress: ATTACKER });
    assert.match(err.message, /429/);
    // plain HTTP from that address too: the answer comes before the request is read
    const r = await rawExchange(srv.port, null, 3000, { localAddress: ATTACKER });
    assert.match(r.data, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(r.data, /retry-after: 10/i);
    assert.ok(r.closedByServer);

    // another address is not affected
    const other = await open(srv.wsUrl);
    assert.equal((await ping(other, 1)).type, 'ok');
    for (const ws of mine) assert.equal((await ping(ws, 2)).type, 'ok');

    let m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="per_address"}'], 2);

    // room again once one closes
    mine[0].close();
    await mine[0].closed;
    let again;
    for (let i = 0; i < 50 && !again; i++) {
      again = await open(srv.wsUrl, { localAddress: ATTACKER }).catch(() => null);
      if (!again) await sleep(50);
    }
    assert.ok(again, 'a connection from the address is accepted again');
    assert.equal((await ping(again, 1)).type, 'ok');
    for (const ws of [mine[1], mine[2], again, other]) ws.close();
    await Promise.all([mine[1], mine[2], again, other].map((ws) => ws.closed));
    // only 127.0.0.1 (this request, and the keep-alive connection of srv.metrics) is left
    await waitMetric(srv, 'spk_client_addresses', 1);
  } finally {
    await srv.stop();
  }
});

test('header timeout: unfinished and trickled requests and upgrades are closed', async () => {
  const srv = await startServer({ args: ['--header-timeout', '1', '--handshake-timeout', '30'] });
  try {
    const partial = await halfOpen(srv.port, PARTIAL);
    const upgrade = await halfOpen(srv.port,
      'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n');
    const silent = await halfOpen(srv.port, null);
    // one header byte every 200 ms: never complete, always active
    const trickle = await halfOpen(srv.port, 'GET / HTTP/1.1\r\n');
    const drip = setInterval(() => { if (!trickle.isClosed) trickle.write('X'); }, 200);
    try {
      const closed = await Promise.race([
        Promise.all([partial.whenClosed, upgrade.whenClosed, silent.whenClosed, trickle.whenClosed]),
        sleep(10000).then(() => null),
      ]);
      assert.ok(closed, 'every unfinished request closed well before the 30 s handshake timeout');
      for (const c of closed) assert.ok(c.ms >= 800, `closed too early (${c.ms} ms)`);
    } finally {
      clearInterval(drip);
    }
    // a complete request on a fresh connection is served
    const ok = await rawExchange(srv.port, HEALTHZ);
    assert.match(ok.data, /^HTTP\/1\.1 200 /);
  } finally {
    await srv.stop();
  }
});
