// Security headers: Strict-Transport-Security on every HTTPS response (max-age configurable, 0
// turns it off, never on plain HTTP); on the web client's pages a Content-Security-Policy that
// allows only the server itself (and its WebSocket origin), frame-ancestors 'none',
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer (invite codes live in URL
// fragments). With TLS, a connection over the per-address limits is closed at accept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { makeCert } from './util.mjs';

function makeSite(base) {
  const web = join(base, 'web');
  mkdirSync(join(web, 'js'), { recursive: true });
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>index</title>');
  writeFileSync(join(web, 'join.html'), '<!doctype html><title>join</title>');
  writeFileSync(join(web, 'js', 'app.js'), 'export const x = 1;\n');
  return web;
}

// One HTTPS request on a fresh connection: {status, headers}.
function request(port, ca, { method = 'GET', path = '/', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method, ca, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const UPGRADE_NO_PROTO = { path: '/ws', headers: { Connection: 'Upgrade', Upgrade: 'websocket',
  'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } };

test('HSTS on every HTTPS response, configurable, off with 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-hdr-'));
  const { cert, key } = makeCert(dir);
  const ca = readFileSync(cert);
  const web = makeSite(dir);
  const srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key, '--web-root', web] });
  const short = await startServer({ args: ['--tls-cert', cert, '--tls-key', key, '--web-root', web, '--hsts-max-age', '600'] });
  const off = await startServer({ args: ['--tls-cert', cert, '--tls-key', key, '--web-root', web, '--hsts-max-age', '0'] });
  try {
    const cases = {
      'page': [{ path: '/' }, 200],
      'entry point': [{ path: '/join' }, 200],
      'script': [{ path: '/js/app.js' }, 200],
      'healthz': [{ path: '/healthz' }, 200],
      'metrics': [{ path: '/metrics' }, 200],
      'not found': [{ path: '/nope.html' }, 404],
      'plain GET of /ws': [{ path: '/ws' }, 426],
      'method': [{ method: 'POST', path: '/healthz' }, 405],
      'refused upgrade': [UPGRADE_NO_PROTO, 400],
    };
    for (const [name, [req, status]] of Object.entries(cases)) {
      const r = await request(srv.port, ca, req);
      assert.equal(r.status, status, name);
      assert.equal(r.headers['strict-transport-security'], 'max-age=31536000', name);
      const s = await request(short.port, ca, req);
      assert.equal(s.headers['strict-transport-security'], 'max-age=600', name);
      const o = await request(off.port, ca, req);
      assert.equal(o.status, status, name);
      assert.equal(o.headers['strict-transport-security'], undefined, name);
    }
  } finally {
    await Promise.all([srv.stop(), short.stop(), off.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no HSTS on plain HTTP; the web client gets a self-only CSP and the other headers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-hdr-'));
  const web = makeSite(dir);
  const srv = await startServer({ args: ['--web-root', web] });
  try {
    for (const path of ['/', '/join', '/js/app.js', '/healthz', '/nope']) {
      const r = await srv.get(path);
      assert.equal(r.headers.get('strict-transport-security'), null, path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
    }
    for (const path of ['/', '/join']) {
      const r = await srv.get(path);
      const csp = Object.fromEntries(r.headers.get('content-security-policy').split(';')
        .map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
      assert.deepEqual(csp['default-src'], ["'self'"], path);
      assert.deepEqual(csp['script-src'], ["'self'", "'wasm-unsafe-eval'"], path);
      assert.deepEqual(csp['style-src'], ["'self'"], path);
      assert.deepEqual(csp['frame-ancestors'], ["'none'"], path);
      assert.deepEqual(csp['object-src'], ["'none'"], path);
      assert.deepEqual(csp['base-uri'], ["'none'"], path);
      assert.deepEqual(csp['connect-src'], ["'self'", `ws://127.0.0.1:${srv.port}`], path);
      for (const [k, v] of Object.entries(csp)) {
        for (const src of v) {
          // 'wasm-unsafe-eval' only lets the MLS WebAssembly module compile; no other unsafe-*.
          if (k === 'script-src' && src === "'wasm-unsafe-eval'") continue;
          assert.ok(!/unsafe|\*|^https?:$|^http/.test(src), `${path}: ${k} allows ${src}`);
        }
      }
      assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
    }
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS: a connection over the pending limit is closed at accept, without a handshake', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-hdr-'));
  const { cert, key } = makeCert(dir);
  const ca = readFileSync(cert);
  const srv = await startServer({ args: ['--tls-cert', cert, '--tls-key', key, '--max-pending-per-address', '2'] });
  try {
    // two connections from one address that never start their handshake: the limit
    const net = await import('node:net');
    const silent = [];
    for (let i = 0; i < 2; i++) {
      silent.push(await new Promise((r) => {
        const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => r(s));
      }));
    }
    const err = await new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: srv.port, ca, localAddress: '127.0.0.2' }, () => resolve(null));
      s.on('error', (e) => resolve(e));
    });
    assert.ok(err, 'the TLS handshake over the limit did not complete');
    assert.match(err.code ?? err.message, /ECONNRESET|socket disconnected|EPIPE/);
    // another address is served
    const h = await request(srv.port, ca, { path: '/healthz' });
    assert.equal(h.status, 200);
    silent.forEach((s) => s.destroy());
    const body = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: srv.port, path: '/metrics', ca, agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    assert.match(body, /^spk_connections_rejected_total\{reason="pending_per_address"\} 1$/m);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
