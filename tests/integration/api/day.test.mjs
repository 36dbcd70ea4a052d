// A practice's day through the HTTP API (docs/integration.md): three consults planned, invites
// sent, a patient who enters the lobby (seen via webhook and via the state endpoint), the GP who
// admits, consults that end; a local webhook receiver checks every signature and the order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctlJson } from '../lib/ctl.mjs';
import { setup, today } from './lib.mjs';

test('the whole day of a practice through the API, with webhooks', { timeout: 60000 }, async (t) => {
  const { env, hook, api } = await setup(t);
  const now = Math.floor(Date.now() / 1000);
  const gp = await env.as(env.users.gp);

  const ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await api('POST', '/api/v1/consults', {
      body: { patient: `pseudo-${i}`, gp: 'gp-1', title: `Consult ${i}`, planned_at: now + 60 * (i + 1) },
      headers: { 'idempotency-key': `day-${i}` },
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.consult.status, 'planned');
    assert.equal(r.json.consult.planned_at, now + 60 * (i + 1));
    ids.push(r.json.consult.id);
  }

  await t.test('a retried create with the same Idempotency-Key gives the same consult', async () => {
    const r = await api('POST', '/api/v1/consults', {
      body: { patient: 'pseudo-0', gp: 'gp-1', title: 'Consult 0', planned_at: now + 60 },
      headers: { 'idempotency-key': 'day-0' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.replayed, true);
    assert.equal(r.json.consult.id, ids[0]);
  });

  const invites = [];
  await t.test('invites come back as a link and as texts for SMS and e-mail', async () => {
    for (const id of ids) {
      const r = await api('POST', `/api/v1/consults/${id}/invites`, { body: { ttl: 3600 } });
      assert.equal(r.status, 201, r.text);
      assert.match(r.json.invite.url, /\/join#[A-Za-z0-9_-]{22}$/);
      assert.ok(r.json.invite.text.nl.includes(r.json.invite.url));
      assert.ok(r.json.invite.text.en.includes(r.json.invite.url));
      assert.match(r.json.invite.text.nl, / om \d\d:\d\d/);
      invites.push(r.json.invite);
    }
  });

  await t.test("the day's list has the three consults, planned", async () => {
    const r = await api('GET', `/api/v1/consults?date=${today()}`);
    assert.equal(r.status, 200, r.text);
    const mine = r.json.consults.filter((c) => ids.includes(c.id));
    assert.deepEqual(mine.map((c) => c.id), ids);
    assert.ok(mine.every((c) => c.status === 'planned'));
  });

  let patient;
  await t.test('the patient enters the lobby: webhook and state endpoint say waiting', async () => {
    patient = await env.connect();
    await patient.ok('invite.redeem', { invite: invites[0].code, name: 'Sanne de Vries' });
    const ev = await hook.waitFor((e) => e.type === 'lobby.entered' && e.consult === ids[0]);
    assert.equal(ev.patient, 'pseudo-0');
    assert.equal(ev.via, 'invite');
    assert.ok(!JSON.stringify(ev).includes('Sanne'), 'no names in events');
    const r = await api('GET', `/api/v1/consults/${ids[0]}`);
    assert.equal(r.json.consult.status, 'waiting');
    assert.ok(r.json.consult.waiting_since >= now);
    assert.ok(!r.text.includes('Sanne'), 'the service sees no names');
  });

  await t.test('the GP admits: admitted and started, the state is in progress', async () => {
    await gp.ok('consult.join', { consult: ids[0] });
    const { lobby } = await gp.ok('lobby.list', { consult: ids[0] });
    await gp.ok('lobby.admit', { consult: ids[0], participant: lobby[0].id });
    await hook.waitFor((e) => e.type === 'consult.started' && e.consult === ids[0]);
    const r = await api('GET', `/api/v1/consults/${ids[0]}`);
    assert.equal(r.json.consult.status, 'in_progress');
    const f = await api('GET', `/api/v1/fhir/Appointment/${ids[0]}`);
    assert.equal(f.json.status, 'checked-in');
  });

  await t.test('revoked invite, and ending through the API', async () => {
    const inv = invites[1];
    const r = await api('DELETE', `/api/v1/consults/${ids[1]}/invites/${inv.id}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.invite.state, 'revoked');
    const p2 = await env.connect();
    assert.equal(await p2.code('invite.redeem', { invite: inv.code, name: 'X' }), 'invite_revoked');
    for (const id of ids) {
      const e = await api('POST', `/api/v1/consults/${id}/end`);
      assert.equal(e.status, 200, e.text);
      assert.equal(e.json.consult.status, 'ended');
    }
    await hook.waitFor((e) => e.type === 'consult.ended' && e.consult === ids[2]);
    const f = await api('GET', `/api/v1/fhir/Appointment/${ids[0]}`);
    assert.equal(f.json.status, 'fulfilled');
    const g = await api('GET', `/api/v1/fhir/Appointment/${ids[2]}`);
    assert.equal(g.json.status, 'cancelled');
  });

  await t.test('webhooks: every signature valid, in order, per consult in the order of the day', async () => {
    assert.deepEqual(hook.bad, []);
    const seqs = hook.events.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'delivered in order');
    assert.equal(new Set(hook.events.map((e) => e.id)).size, hook.events.length);
    const first = hook.events.filter((e) => e.consult === ids[0]).map((e) => e.type);
    assert.deepEqual(first, ['invite.used', 'lobby.entered', 'patient.admitted', 'consult.started', 'consult.ended']);
    assert.deepEqual(hook.events.filter((e) => e.consult === ids[2]).map((e) => e.type), ['consult.ended']);
  });

  await t.test('the audit names the integration, acting on behalf of the GP', async () => {
    const entries = ctlJson(env.srv.dataDir, ['audit', 'list']);
    const svc = entries.filter((e) => e.role === 'service' && e.event === 'consult.create');
    assert.equal(svc.length, 4, 'three creates and one replay');
    assert.ok(svc.every((e) => e.user === 'his-day' && e.on_behalf_of === 'gp-1'));
  });
});

test('console link: one click from the HIS into the console, once', { timeout: 30000 }, async (t) => {
  const { env, api } = await setup(t);
  const c = await api('POST', '/api/v1/consults', { body: { patient: 'pseudo-7', gp: 'gp-1' } });
  const r = await api('POST', `/api/v1/consults/${c.json.consult.id}/console-link`, { body: { name: 'Dr. Jansen' } });
  assert.equal(r.status, 201, r.text);
  const m = /\/console#link=([A-Za-z0-9_-]{22})&consult=(c_[A-Za-z0-9_-]+)$/.exec(r.json.link.url);
  assert.ok(m, r.json.link.url);
  assert.equal(m[2], c.json.consult.id);
  assert.ok(r.json.link.expires_at <= Math.floor(Date.now() / 1000) + 300);
  const con = await env.connect();
  const red = await con.ok('console.redeem', { link: m[1] });
  assert.equal(red.user.role, 'gp');
  assert.equal(red.user.sub, 'gp-1');
  assert.equal(red.user.name, 'Dr. Jansen');
  assert.equal(red.consult, m[2]);
  assert.equal(red.user.consult, m[2], 'the session is bound to the consult');
  await con.ok('consult.join', { consult: m[2] });
  // Bound to that consult: nothing practice-wide, no other consult of the practice.
  const other = await api('POST', '/api/v1/consults', { body: { patient: 'pseudo-8', gp: 'gp-1' } });
  assert.equal(await con.code('consult.get', { consult: other.json.consult.id }), 'forbidden');
  assert.equal(await con.code('consult.join', { consult: other.json.consult.id }), 'forbidden');
  assert.equal(await con.code('consult.list', {}), 'forbidden');
  assert.equal(await con.code('chat.list', {}), 'forbidden');
  assert.equal(await con.code('chat.create', { kind: 'care_team', patient: 'pseudo-8' }), 'forbidden');
  const until = Math.floor(Date.now() / 1000) + 3600;
  assert.equal(await con.code('delegation.grant', { remote_gp: 'rgp-1', valid_until: until }), 'forbidden');
  assert.equal((await con.ok('consult.get', { consult: m[2] })).consult.id, m[2]);
  await con.ok('chat.create', { kind: 'consult', consult: m[2] });
  const again = await env.connect();
  assert.equal(await again.code('console.redeem', { link: m[1] }), 'invite_used');
  const re = await env.connect();
  assert.equal((await re.req('auth', { token: red.session_token })).type, 'ok', 'the session token signs in again');
});

// (the store's own test walks the clock; this one waits for the shortest lifetime, 30 s)
test('an expired console link is refused', { timeout: 60000 }, async (t) => {
  const { env, api } = await setup(t, { args: ['--console-link-ttl', '30'] });
  const c = await api('POST', '/api/v1/consults', { body: { patient: 'pseudo-9', gp: 'gp-1' } });
  const r = await api('POST', `/api/v1/consults/${c.json.consult.id}/console-link`, { body: { name: 'Dr. Jansen' } });
  assert.equal(r.status, 201, r.text);
  const code = /#link=([A-Za-z0-9_-]{22})/.exec(r.json.link.url)[1];
  await new Promise((res) => setTimeout(res, 31500));
  const con = await env.connect();
  assert.equal(await con.code('console.redeem', { link: code }), 'invite_expired');
  assert.equal(await con.code('consult.list', {}), 'unauthenticated');
});
