// Static files of the web client: content types, security headers, SPA entry points, no
// directory listing, no way out of the web root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { rawExchange } from './util.mjs';

const SECRET = 'TOP-SECRET-OUTSIDE-WEB-ROOT';

function makeSite() {
  const base = mkdtempSync(join(tmpdir(), 'spk-web-'));
  const web = join(base, 'web');
  mkdirSync(join(web, 'js'), { recursive: true });
  writeFileSync(join(base, 'secret.txt'), SECRET);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>index</title>');
  writeFileSync(join(web, 'join.html'), '<!doctype html><title>join</title>');
  writeFileSync(join(web, 'console.html'), '<!doctype html><title>console</title>');
  writeFileSync(join(web, 'js', 'app.js'), 'export const x = 1;\n');
  writeFileSync(join(web, 'style.css'), 'body{}\n');
  writeFileSync(join(web, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(web, '.env'), SECRET);
  symlinkSync(join(base, 'secret.txt'), join(web, 'link.txt'));
  return { base, web };
}

test('static files, entry points, headers, and no traversal', async () => {
  const site = makeSite();
  const srv = await startServer({ args: ['--web-root', site.web] });
  try {
    const idx = await srv.get('/');
    assert.equal(idx.status, 200);
    assert.equal(idx.body, '<!doctype html><title>index</title>');
    assert.match(idx.headers.get('content-type'), /^text\/html/);
    const csp = idx.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(idx.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(idx.headers.get('referrer-policy'), 'no-referrer');
    assert.match(idx.headers.get('permissions-policy'), /camera=\(self\)/);
    assert.match(idx.headers.get('permissions-policy'), /microphone=\(self\)/);

    const join_ = await srv.get('/join');
    assert.equal(join_.status, 200);
    assert.match(join_.body, /<title>join<\/title>/);
    assert.match(join_.headers.get('content-security-policy'), /default-src 'self'/);
    assert.match((await srv.get('/console')).body, /<title>console<\/title>/);

    const types = { '/js/app.js': /^text\/javascript/, '/style.css': /^text\/css/, '/logo.svg': /^image\/svg\+xml/ };
    for (const [path, re] of Object.entries(types)) {
      const r = await srv.get(path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type'), re, path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    }

    for (const path of ['/js', '/js/', '/nope.html', '/.env', '/link.txt', '/js/../../secret.txt']) {
      const r = await srv.get(path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.body.includes(SECRET), path);
    }

    // raw request lines, exactly as sent (fetch would normalise them)
    const raw = ['/../secret.txt', '/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt',
      '/js/..%2f..%2fsecret.txt', '/%2e%2e%2f%2e%2e%2fsecret.txt', '//secret.txt', '/js/./../../secret.txt',
      '/.%2e/secret.txt', '/link.txt', '/%2eenv'];
    for (const path of raw) {
      const r = await rawExchange(srv.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      assert.ok(!r.data.includes(SECRET), `${path} leaked the file`);
      assert.doesNotMatch(r.data, /^HTTP\/1\.1 200/, `${path} answered 200`);
    }
    const ok = await srv.get('/healthz');
    assert.equal(ok.status, 200, 'server carries on');
  } finally {
    await srv.stop();
    rmSync(site.base, { recursive: true, force: true });
  }
});

test('the built-in web root is the source tree web/ directory', async () => {
  const srv = await startServer();
  try {
    const r = await srv.get('/join');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
  } finally {
    await srv.stop();
  }
});
