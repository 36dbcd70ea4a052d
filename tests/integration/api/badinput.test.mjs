// Bad input to /api/v1: each is answered with its documented status and error code
// (docs/integration.md "Errors"), nothing is changed, and the server carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctl } from '../lib/ctl.mjs';
import { registerIntegration, serviceToken } from '../signaling/fixture.mjs';
import { setup } from './lib.mjs';

test('bad input to the API', { timeout: 60000 }, async (t) => {
  const { env, api, integ, token } = await setup(t, { args: ['--api-max-body', '2048', '--auth-fail-log', '1000'] });
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

  await t.test("a person's token: the API is for practice systems", async () => {
    // A GP of the practice may create consults over the WebSocket, but not through /api/v1.
    for (const who of [env.users.gp, env.users.admin, env.users.assistant]) {
      const r = await expect(api('POST', '/api/v1/consults', { body: create, tok: env.token(who) }), 403, 'forbidden');
      assert.match(r.json.message, /HTTP API is for practice systems: sign in with a service token/);
      await expect(api('GET', '/api/v1/consults?date=2026-01-01', { tok: env.token(who) }), 403, 'forbidden');
    }
    const f = await api('GET', '/api/v1/fhir/Appointment/c_x', { tok: env.token(env.users.gp) });
    assert.equal(f.status, 403, f.text);
    assert.equal(f.json.issue[0].details.coding[0].code, 'forbidden');
    const gp = await env.as(env.users.gp);
    assert.equal((await gp.req('consult.create', { patient: 'pseudo-ws' })).type, 'ok');
    // The refusal is audited with whose token it was.
    const admin = await env.as(env.users.admin);
    const { entries } = await admin.ok('audit.read', { limit: 1000 });
    assert.ok(entries.some((e) => e.event === 'auth.login' && e.outcome === 'forbidden' && e.user === 'gp-1'),
      JSON.stringify(entries.filter((e) => e.event === 'auth.login')));
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
    // A reason that quotes bytes which are not text (a query name %FF) is still a JSON body.
    const q = await expect(api('GET', '/api/v1/consults?date=2026-01-01&%FF%FEx=1'), 400, 'bad_message');
    assert.match(q.json.message, /unknown query parameter: \\xFF\\xFEx/);
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

  await t.test('an integration of many practices (a list longer than a token claim)', async () => {
    const many = [...Array.from({ length: 14 }, (_, i) => `praktijk-nummer-${i}`), 'praktijk-a'].join(',');
    assert.ok(many.length > 200);
    const big = registerIntegration(env.srv.dataDir, { id: 'his-regio', practices: many });
    const tok = serviceToken(big);
    const r = await api('POST', '/api/v1/consults', { body: { ...create, practice: 'praktijk-a' }, tok });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.consult.practice, 'praktijk-a');
    // It has no practice of its own: a request names one.
    const none = await expect(api('POST', '/api/v1/consults', { body: create, tok }), 400, 'bad_message');
    assert.match(none.json.message, /practice/);
    await expect(api('POST', '/api/v1/consults', { body: { ...create, practice: 'praktijk-nummer' }, tok }), 403, 'forbidden');
    // Signed in over the WebSocket, its practice is empty rather than a cut list.
    const c = await env.connect();
    const m = await c.req('auth', { token: tok });
    assert.equal(m.type, 'ok');
    assert.equal(m.user.practice, '');
    // An integration of one practice has that one.
    const one = await env.connect();
    assert.equal((await one.req('auth', { token: token() })).user.practice, 'praktijk-a');
  });

  await t.test('spreekctl refuses practices and webhook URLs it cannot act for or deliver to', async () => {
    const pub = 'A'.repeat(43);
    const reg = (practices, webhook) => ctl(env.srv.dataDir, ['integration', 'register', '--id', 'his-refused',
      '--practices', practices, '--public-key', pub, ...(webhook ? ['--webhook', webhook] : [])]);
    for (const p of ['praktijk-a,,praktijk-b', 'praktijk-a,', 'x'.repeat(128)]) {
      const r = reg(p);
      assert.notEqual(r.status, 0, p);
      assert.match(r.stderr, /--practices/);
    }
    for (const u of ['https://user@his.example.nl/hook', 'https://his.example.nl:https/hook',
      'https://his.example.nl:65536/', 'https://his.example.nl/a\r\nX-Injected: 1', 'http://his.example.nl/hook',
      'http://127.0.0.1.his.example.nl/hook', 'ftp://his.example.nl/']) {
      const r = reg('praktijk-a', u);
      assert.notEqual(r.status, 0, u);
      assert.match(r.stderr, /--webhook/, u);
    }
    const ok = reg(`${'x'.repeat(127)},praktijk-a`, 'https://his.example.nl:8443/hook?v=1');
    assert.equal(ok.status, 0, ok.stderr);
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
