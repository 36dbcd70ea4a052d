// Bad input to /api/v1: each is answered with its documented status and error code
// (docs/integration.md "Errors"), nothing is changed, and the server carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctl } from '../lib/ctl.mjs';
import { registerIntegration, serviceToken } from '../signaling/fixture.mjs';
import { setup } from './lib.mjs';

test('bad input to the API', { timeout: 60000 }, async (t) => {
  const { env, api, integ, token } = await setup(t, { args: ['--api-max-body', '2048'] });
  const now = Math.floor(Date.now() / 1000);
  const create = { patient: 'pseudo-1', gp: 'gp-1' };
  const expect = async (r, status, code) => {
    const res = await r;
    assert.equal(res.status, status, res.text);
    assert.equal(res.json?.code, code, res.text);
    return res;
  };

  await t.test('no token, a malformed, forged, expired or future token', async () => {
    await expect(api('GET', '/api/v1/consults?date=2026-01-01', { tok: null }), 401, 'unauthenticated');
    await expect(api('POST', '/api/v1/consults', { body: create, tok: 'abc' }), 401, 'token_invalid');
    const other = registerIntegration(env.srv.dataDir, { id: 'his-other' });
    const forged = serviceToken({ ...other, iss: integ.id, kid: integ.kid }, { sub: integ.id });
    await expect(api('POST', '/api/v1/consults', { body: create, tok: forged }), 401, 'token_invalid');
    await expect(api('POST', '/api/v1/consults', { body: create, tok: token({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }) }),
      401, 'token_expired');
    await expect(api('POST', '/api/v1/consults', { body: create, tok: token({ nbf: now + 3600, exp: now + 7200 }) }),
      401, 'token_not_yet_valid');
    await expect(api('POST', '/api/v1/consults', { body: create, tok: serviceToken(integ, { role: 'gp' }) }),
      401, 'token_invalid');
    await expect(api('POST', '/api/v1/consults', { body: create, tok: env.token(env.users.partner) }), 403, 'forbidden');
  });

  await t.test('another practice', async () => {
    await expect(api('POST', '/api/v1/consults', { body: { ...create, practice: 'praktijk-b' } }), 403, 'forbidden');
    const gp2 = await env.as(env.users.gp2);
    const { consult } = await gp2.ok('consult.create', { patient: 'pseudo-b' });
    await expect(api('GET', `/api/v1/consults/${consult.id}`), 403, 'forbidden');
    await expect(api('POST', `/api/v1/consults/${consult.id}/invites`, { body: {} }), 403, 'forbidden');
    await expect(api('GET', `/api/v1/consults/c_nosuchconsult`), 404, 'not_found');
  });

  await t.test('malformed JSON, wrong content type, unknown and mistyped fields', async () => {
    await expect(api('POST', '/api/v1/consults', { raw: '{"patient": ', headers: { 'content-type': 'application/json' } }), 400, 'bad_json');
    await expect(api('POST', '/api/v1/consults', { raw: '[1]', headers: { 'content-type': 'application/json' } }), 400, 'bad_json');
    await expect(api('POST', '/api/v1/consults', { raw: JSON.stringify(create), headers: { 'content-type': 'text/plain' } }), 400, 'bad_json');
    const u = await expect(api('POST', '/api/v1/consults', { body: { ...create, patient_name: 'Jan' } }), 400, 'bad_message');
    assert.match(u.json.message, /unknown field: patient_name/);
    await expect(api('POST', '/api/v1/consults', { body: { ...create, planned_at: 'morgen' } }), 400, 'bad_message');
    await expect(api('POST', '/api/v1/consults', { body: { patient: 'p' } }), 400, 'bad_message');
    await expect(api('GET', '/api/v1/consults?date=2026-13-01'), 400, 'bad_message');
    await expect(api('GET', '/api/v1/consults?date=2026-01-01&colour=red'), 400, 'bad_message');
    await expect(api('GET', '/api/v1/consults'), 400, 'bad_message');
    await expect(api('POST', '/api/v1/fhir/Appointment', { body: { resourceType: 'Patient' } }), 400, undefined);
  });

  await t.test('oversized body', async () => {
    const big = { ...create, title: 'x'.repeat(4000) };
    await expect(api('POST', '/api/v1/consults', { body: big }), 413, 'too_large');
  });

  await t.test('unknown endpoint and wrong method', async () => {
    await expect(api('GET', '/api/v1/patients'), 404, 'not_found');
    await expect(api('PUT', '/api/v1/consults'), 405, 'unknown_type');
  });

  await t.test('an idempotency key replayed with another body', async () => {
    const a = await api('POST', '/api/v1/consults', { body: create, headers: { 'idempotency-key': 'k-1' } });
    assert.equal(a.status, 201);
    await expect(api('POST', '/api/v1/consults', { body: { ...create, patient: 'pseudo-2' }, headers: { 'idempotency-key': 'k-1' } }),
      422, 'idempotency_key_reused');
    const b = await api('POST', '/api/v1/consults', { body: create, headers: { 'idempotency-key': 'k-1' } });
    assert.equal(b.json.consult.id, a.json.consult.id);
    await expect(api('GET', `/api/v1/consults/${a.json.consult.id}`, { headers: { 'idempotency-key': 'k-2' } }), 400, 'bad_message');
  });

  await t.test('a revoked integration', async () => {
    const r = ctl(env.srv.dataDir, ['integration', 'revoke', '--id', integ.id]);
    assert.equal(r.status, 0, r.stderr);
    await expect(api('POST', '/api/v1/consults', { body: create }), 401, 'token_revoked');
  });

  await t.test('the server carries on', async () => {
    const c = await env.connect();
    assert.equal(await c.code('ping'), 'ok');
    const h = await fetch(`${env.srv.url}/healthz`);
    assert.equal(h.status, 200);
  });
});
