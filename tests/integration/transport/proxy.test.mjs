// Behind a reverse proxy: only a peer in trusted_proxies may name the client's address (in
// client_address_header); its WebSockets count per forwarded client address (429 beyond the
// limit), the forwarded address is the one logged and handed to the core, an unusable header
// from a trusted proxy is refused with 400, and the header from anyone else is ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, refused, sleep } from './util.mjs';

const PROTO = 'spreekkamer.v1';
const PROXY = '127.0.0.3';

const viaProxy = (xff, extra = {}) => ({ localAddress: PROXY, headers: { 'X-Forwarded-For': xff }, ...extra });

async function remoteOf(srv, ws) {
  // the open line is logged before hello is sent; match the newest one
  await sleep(20);
  const lines = srv.grep(/^open remote=/);
  return lines[lines.length - 1].msg.replace('open remote=', '');
}

test('X-Forwarded-For from a trusted proxy: client address, limit per client, 400 when unusable', async () => {
  const srv = await startServer({
    args: ['--trusted-proxies', `10.0.0.0/8, ${PROXY}`, '--max-connections-per-address', '2'],
  });
  try {
    const a = await open(srv.wsUrl, viaProxy('198.51.100.7'));
    assert.equal(await remoteOf(srv, a), '198.51.100.7');
    // the client's own (forged) entry is left of what the proxy appended: the rightmost
    // untrusted address counts; trusted hops are skipped
    const b = await open(srv.wsUrl, viaProxy('203.0.113.66, 198.51.100.7, 10.1.2.3'));
    assert.equal(await remoteOf(srv, b), '198.51.100.7');
    // a third from that client through the proxy is over the limit of 2
    const err = await refused(srv.wsUrl, PROTO, viaProxy('198.51.100.7'));
    assert.match(err.message, /Unexpected server response: 429/);
    // other clients behind the same proxy carry on (the proxy itself is not limited at accept)
    const others = [];
    for (let i = 1; i <= 4; i++) {
      const ws = await open(srv.wsUrl, viaProxy(`198.51.100.${100 + i}:5000`));
      assert.equal((await ping(ws, 1)).type, 'ok');
      others.push(ws);
    }
    const v6 = await open(srv.wsUrl, viaProxy('[2001:db8::7]:443'));
    assert.equal(await remoteOf(srv, v6), '2001:db8::7');
    // unusable headers from the trusted proxy
    for (const bad of ['not-an-address', '198.51.100.7, junk', '[2001:db8::1', '198.51.100.7:99999', ' , ']) {
      const e = await refused(srv.wsUrl, PROTO, viaProxy(bad));
      assert.match(e.message, /Unexpected server response: 400/, bad);
    }
    // the proxy's own request without the header (a health check) goes through as the proxy
    const own = await open(srv.wsUrl, { localAddress: PROXY });
    assert.equal(await remoteOf(srv, own), PROXY);

    const m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="per_address"}'], 1);
    assert.equal(m['spk_connections_rejected_total{reason="bad_forwarded_address"}'], 5);

    // room again for the limited client once one of its connections closes
    a.close();
    await a.closed;
    let again;
    for (let i = 0; i < 50 && !again; i++) {
      again = await open(srv.wsUrl, viaProxy('198.51.100.7')).catch(() => null);
      if (!again) await sleep(50);
    }
    assert.ok(again, 'accepted again after one closed');
    for (const ws of [b, again, v6, own, ...others]) ws.close();
    await Promise.all([b, again, v6, own, ...others].map((ws) => ws.closed));
  } finally {
    await srv.stop();
  }
});

test('X-Forwarded-For from an untrusted peer is ignored; X-Real-IP when configured', async () => {
  const srv = await startServer({
    args: ['--trusted-proxies', PROXY, '--client-address-header', 'X-Real-IP', '--max-connections-per-address', '1'],
  });
  try {
    // not a trusted proxy: its header changes nothing, and its own address is limited
    const direct = await open(srv.wsUrl, { localAddress: '127.0.0.4', headers: { 'X-Forwarded-For': '198.51.100.9', 'X-Real-IP': '198.51.100.9' } });
    assert.equal(await remoteOf(srv, direct), '127.0.0.4');
    const e = await refused(srv.wsUrl, PROTO, { localAddress: '127.0.0.4', headers: { 'X-Real-IP': '198.51.100.10' } });
    assert.match(e.message, /429/);
    // the trusted proxy with the configured header; X-Forwarded-For is not read then
    const p = await open(srv.wsUrl, { localAddress: PROXY, headers: { 'X-Real-IP': '192.0.2.44', 'X-Forwarded-For': '192.0.2.99' } });
    assert.equal(await remoteOf(srv, p), '192.0.2.44');
    for (const ws of [direct, p]) ws.close();
    await Promise.all([direct.closed, p.closed]);
  } finally {
    await srv.stop();
  }
});

test('a malformed trusted_proxies entry stops spreekd at start with a message', async () => {
  await assert.rejects(startServer({ args: ['--trusted-proxies', '10.0.0.0/33'], timeoutMs: 5000 }),
    /cannot start: trusted_proxies: .*10\.0\.0\.0\/33.* is not an address or CIDR/);
});
