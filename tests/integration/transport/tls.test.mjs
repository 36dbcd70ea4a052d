// TLS: with a certificate and key spreekd serves HTTPS and WSS (self-signed cert made here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
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

// The protocol versions and suites spreekd accepts (docs/operations.md, "TLS"), asked with
// OpenSSL's own client at security level 0 so that the client would offer what the server must
// refuse: TLS 1.0 and 1.1, and TLS 1.2 with CBC or RSA key exchange, are refused; TLS 1.2 with
// ECDHE and AES-GCM, and TLS 1.3, are accepted.
test('TLS 1.2 with forward-secret AEAD suites and TLS 1.3 only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-tls-'));
  const { cert, key } = makeCert(dir);
  const srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key] });
  const hello = (...args) => {
    const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-servername', 'localhost', ...args],
      { input: 'Q\n', encoding: 'utf8', timeout: 20000 });
    const m = /Protocol\s*:\s*(\S+)[\s\S]*?Cipher\s*:\s*(\S+)/.exec(r.stdout) || /New, (\S+), Cipher is (\S+)/.exec(r.stdout);
    const ok = !!m && m[2] !== '0000' && m[2] !== '(NONE)';
    return { ok, proto: m?.[1], cipher: m?.[2], out: r.stdout.slice(-400) + r.stderr.slice(-400) };
  };
  try {
    for (const v of ['-tls1', '-tls1_1']) {
      const h = hello(v, '-cipher', 'DEFAULT@SECLEVEL=0');
      assert.equal(h.ok, false, `${v} accepted: ${h.out}`);
    }
    for (const c of ['ECDHE-ECDSA-AES128-SHA', 'AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-SHA256']) {
      const h = hello('-tls1_2', '-cipher', `${c}@SECLEVEL=0`);
      assert.equal(h.ok, false, `${c} accepted: ${h.out}`);
    }
    const t12 = hello('-tls1_2');
    assert.ok(t12.ok, t12.out);
    assert.match(t12.cipher, /^ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$/);
    const t13 = hello('-tls1_3');
    assert.ok(t13.ok, t13.out);
    assert.match(t13.cipher, /^TLS_/);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
