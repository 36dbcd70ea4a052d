// The Origin check of the WebSocket upgrade: same origin by default (public_url or the request's
// Host), a configured list instead when allowed_origins is set, and clients without Origin
// (non-browser) allowed or refused by allow_no_origin. Refusals are 403.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { open, ping, refused, sleep } from './util.mjs';

const PROTO = 'spreekkamer.v1';

async function accepted(srv, opts) {
  const ws = await open(srv.wsUrl, opts);
  assert.equal((await ping(ws, 1)).type, 'ok');
  ws.close();
  await ws.closed;
}

async function refused403(srv, opts) {
  const err = await refused(srv.wsUrl, PROTO, opts);
  assert.match(err.message, /Unexpected server response: 403/);
}

test('same origin by default; other origins refused with 403; no Origin allowed', async () => {
  const srv = await startServer({ args: ['--public-url', 'https://consult.praktijk.example'] });
  try {
    const self = `http://127.0.0.1:${srv.port}`;
    await accepted(srv, { origin: self }); // the Host the browser connected to
    await accepted(srv, { origin: 'https://consult.praktijk.example' }); // public_url
    await accepted(srv, { origin: 'HTTPS://Consult.Praktijk.Example:443' }); // same, normalised
    await accepted(srv, {}); // no Origin: a non-browser client
    for (const origin of ['https://evil.example', `http://127.0.0.1:${srv.port + 1}`,
      'http://consult.praktijk.example', 'https://consult.praktijk.example.evil.example', 'null',
      'https://consult.praktijk.example/path', 'javascript:alert(1)', `http://127.0.0.1:${srv.port}@evil.example`]) {
      await refused403(srv, { origin });
    }
    const m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="origin"}'], 8);
    assert.ok(srv.grep(/upgrade refused: Origin not allowed/).length > 0);
    await accepted(srv, { origin: self }); // the server carries on
  } finally {
    await srv.stop();
  }
});

test('allowed_origins replaces same origin; allow_no_origin 0 refuses clients without Origin', async () => {
  const srv = await startServer({
    args: ['--allowed-origins', 'https://consult.praktijk.example, http://localhost:8080', '--allow-no-origin', '0'],
  });
  try {
    await accepted(srv, { origin: 'https://consult.praktijk.example' });
    await accepted(srv, { origin: 'http://LOCALHOST:8080' });
    await refused403(srv, { origin: `http://127.0.0.1:${srv.port}` }); // the list is all there is
    await refused403(srv, {}); // no Origin
    await refused403(srv, { origin: 'http://localhost:8081' });
    await sleep(10);
    const m = await srv.metrics();
    assert.equal(m['spk_connections_rejected_total{reason="origin"}'], 3);
  } finally {
    await srv.stop();
  }
});

test('a malformed allowed_origins entry stops spreekd at start with a message', async () => {
  await assert.rejects(startServer({ args: ['--allowed-origins', 'consult.praktijk.example'], timeoutMs: 5000 }),
    /cannot start: allowed_origins: .*consult\.praktijk\.example.* is not an origin/);
});
