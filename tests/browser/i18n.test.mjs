// The web client's translations: Dutch and English have the same keys, every error code of
// docs/protocol.md section 3 has a message, and every key the pages use exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './lib.mjs';

const web = join(repoRoot, 'web');
const nl = JSON.parse(readFileSync(join(web, 'i18n', 'nl.json'), 'utf8'));
const en = JSON.parse(readFileSync(join(web, 'i18n', 'en.json'), 'utf8'));

function protocolErrorCodes() {
  const doc = readFileSync(join(repoRoot, 'docs', 'protocol.md'), 'utf8');
  const section = doc.split(/^## 3\. /m)[1].split(/^## /m)[0];
  return [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
}

test('Dutch and English have the same keys and no empty strings', () => {
  assert.deepEqual(Object.keys(en).sort(), Object.keys(nl).sort());
  for (const [k, v] of Object.entries({ ...nl, ...en })) {
    assert.ok(typeof v === 'string' && v.trim(), `empty translation: ${k}`);
  }
  for (const k of Object.keys(nl)) {
    const params = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(params(en[k]), params(nl[k]), `placeholders differ: ${k}`);
  }
});

test('every protocol error code has a Dutch and an English message', () => {
  const codes = protocolErrorCodes();
  assert.ok(codes.length >= 20, `found only ${codes.length} codes in protocol.md`);
  for (const code of codes) {
    assert.ok(nl[`error.${code}`], `no Dutch message for ${code}`);
    assert.ok(en[`error.${code}`], `no English message for ${code}`);
  }
});

test('every key the pages use exists', () => {
  const js = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? js(join(dir, d.name)) : d.name.endsWith('.js') ? [join(dir, d.name)] : []);
  const files = [
    ...readdirSync(web).filter((f) => f.endsWith('.html')).map((f) => join(web, f)),
    ...js(join(web, 'js')),
  ];
  const prefixes = [
    'common', 'index', 'join', 'media', 'conn', 'consult', 'role', 'participant', 'console',
    'identity', 'consent', 'fact', 'error', 'call', 'chat', 'measure', 'econsult',
  ].join('|');
  const quoted = new RegExp(`['"]((?:${prefixes})\\.[\\w.]+)['"]`, 'g');
  const missing = new Set();
  for (const file of files) {
    const src = readFileSync(file, 'utf8');
    const keys = [
      ...[...src.matchAll(/data-i18n="([^"]+)"/g)].map((m) => m[1]),
      ...[...src.matchAll(/data-i18n-attr="([^"]+)"/g)].flatMap((m) =>
        m[1].split(';').map((pair) => pair.slice(pair.indexOf(':') + 1)),
      ),
      ...[...src.matchAll(quoted)].map((m) => m[1]),
    ];
    for (const k of keys) {
      if (k.includes('.') && !(k in nl) && !isProtocolType(k)) {
        missing.add(`${k} (${file.slice(web.length + 1)})`);
      }
    }
  }
  assert.deepEqual([...missing], []);
});

// Message types of the protocol look like keys ("consult.join"); they are not UI strings.
function isProtocolType(k) {
  const types =
    /^(consult|identity|consent|console)\.(create|list|get|join|leave|end|ended|facts|record|redeem)$/;
  const media = /^media\.(publish|subscribe|answer|candidate|stop|offer|state|video)$/;
  const chat =
    /^chat\.(device|create|list|get|members\.(add|remove)|send|sync|ack|entry|file\.(upload|download))$/;
  return types.test(k) || media.test(k) || chat.test(k);
}
