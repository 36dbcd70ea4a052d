// docs/openapi.yaml validates against the OpenAPI 3.0 schema and matches the implementation
// both ways: every documented operation is answered by spreekd (not 404/405 for an unknown
// endpoint), and every route of the implementation's table (signaling/src/api.c) is documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { setup } from './lib.mjs';

const SPEC = new URL('../../../docs/openapi.yaml', import.meta.url);
const ROUTES = new URL('../../../signaling/src/api.c', import.meta.url);

function implemented() {
  const src = readFileSync(ROUTES, 'utf8');
  const table = src.split('/* api-routes:begin */')[1].split('/* api-routes:end */')[0];
  return [...table.matchAll(/\{"([A-Z]+)",\s*"([^"]+)"/g)].map(([, m, p]) => `${m} ${p.replaceAll('*', '{}')}`);
}

test('the OpenAPI file is valid OpenAPI 3.0', async () => {
  const v = new Validator();
  const res = await v.validate(readFileSync(SPEC, 'utf8'));
  assert.equal(res.valid, true, JSON.stringify(res.errors, null, 2));
  assert.equal(v.version, '3.0');
});

test('documented and implemented endpoints are the same, and each exists', { timeout: 60000 }, async (t) => {
  const v = new Validator();
  await v.validate(readFileSync(SPEC, 'utf8'));
  const spec = v.resolveRefs();
  const documented = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const m of ['get', 'post', 'put', 'patch', 'delete']) {
      if (item[m]) documented.push(`${m.toUpperCase()} ${path.replace(/\{[^}]+\}/g, '{}')}`);
    }
  }
  assert.deepEqual([...documented].sort(), [...implemented()].sort());
  const { api } = await setup(t);
  for (const op of documented) {
    const [method, path] = op.split(' ');
    const url = path.replace('{}', 'c_unknownconsult').replace('{}', '0123456789abcdef');
    const r = await api(method, url.includes('consults') && method === 'GET' && !url.includes('c_') ? `${url}?date=2026-01-01` : url,
      method === 'POST' ? { body: {} } : {});
    const code = r.json?.code ?? r.json?.issue?.[0]?.details?.coding?.[0]?.code;
    assert.ok(!(r.status === 405 || (r.status === 404 && /no such endpoint/.test(r.text))),
      `${op}: ${r.status} ${code}`);
  }
});
