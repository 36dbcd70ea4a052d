// TLS: with a certificate and key spreekd serves HTTPS and WSS (self-signed cert made here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { open, ping, rawExchange, makeCert } from './util.mjs';

function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('HTTPS healthz and a WSS session with a self-signed certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-tls-'));
  const { cert, key } = makeCert(dir);
  const ca = readFileSync(cert);
  const srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key] });
  try {
    assert.ok(srv.url.startsWith('https://'), srv.url);
    assert.ok(srv.wsUrl.startsWith('wss://'), srv.wsUrl);
    assert.ok(srv.publicUrl.startsWith('https://'), srv.publicUrl);
    const h = await httpsGet(`${srv.url}/healthz`, ca);
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });

    const ws = await open(srv.wsUrl, { ca });
    assert.equal((await ping(ws, 1)).type, 'ok');
    ws.close();
    await ws.closed;

    // HTTP/1.1 only, also for clients offering h2 (WebSockets stay RFC 6455 connections)
    const alpn = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca, servername: '127.0.0.1',
        ALPNProtocols: ['h2', 'http/1.1'] }, () => { resolve(s.alpnProtocol); s.end(); });
      s.on('error', reject);
    });
    assert.equal(alpn, 'http/1.1');

    // an untrusted certificate is refused by the client; plain HTTP gets no HTTP answer
    await assert.rejects(httpsGet(`${srv.url}/healthz`, undefined));
    const plain = await rawExchange(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
    assert.doesNotMatch(plain.data, /^HTTP\/1\.1 200/);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
