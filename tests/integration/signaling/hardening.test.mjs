// What an attacker with a valid invite, a clinician of another practice or an anonymous client
// tried, and what the server now does (issue: trustworthy under attack and faults).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyPair } from '../lib/keys.mjs';
import { boot, consultWithPatient, PRACTICE } from './fixture.mjs';
import { ctl, ctlJson } from '../lib/ctl.mjs';
import { mint } from '../lib/tokens.mjs';
import { Client } from '../lib/client.mjs';

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('an admin reads the audit entries of their own practice only', async () => {
  const env = await boot();
  try {
    const gpA = await env.as(env.users.gp);
    const gpB = await env.as(env.users.gp2);
    const { consult: ca } = await gpA.ok('consult.create', { patient: 'pseudo-a' });
    const { consult: cb } = await gpB.ok('consult.create', { patient: 'pseudo-b' });
    const adminA = await env.as(env.users.admin);
    const adminB = await env.as({ ...env.users.admin, sub: 'adm-2', practice: 'praktijk-b' });
    const la = (await adminA.ok('audit.read', { limit: 1000 })).entries;
    const lb = (await adminB.ok('audit.read', { limit: 1000 })).entries;
    assert.ok(la.some((e) => e.object === ca.id));
    assert.ok(!la.some((e) => e.object === cb.id || e.patient === 'pseudo-b' || e.user === 'gp-9'));
    assert.ok(lb.some((e) => e.object === cb.id));
    assert.ok(!lb.some((e) => e.object === ca.id || e.patient === 'pseudo-a'));
    assert.ok(la.every((e) => e.practice === PRACTICE));
    // A patient filter cannot reach into another practice either.
    const cross = await adminA.ok('audit.read', { patient: 'pseudo-b' });
    assert.equal(cross.entries.length, 0);
    // Paging stays within the practice.
    const first = await adminA.ok('audit.read', { limit: 2 });
    const next = await adminA.ok('audit.read', { limit: 1000, after: first.entries.at(-1).seq });
    assert.ok(next.entries.every((e) => e.practice === PRACTICE && e.seq > first.entries.at(-1).seq));
  } finally {
    await env.close();
  }
});

test('text with control, bidirectional or invisible characters is refused everywhere', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, participant } = await consultWithPatient(env, gp);
    const bad = ['Dr. Jansen\nassistent', 'Dr.\u202Enesnaj', 'Dr.\u200BJansen', 'x\u2066y', 'tab\there'];
    for (const v of bad) {
      assert.equal(await gp.code('specialist.invite', { consult: consult.id, specialist: 'spec-1', name: v }), 'bad_message');
      assert.equal(await gp.code('consult.create', { patient: 'p-1', title: v }), 'bad_message');
      assert.equal(await gp.code('lobby.deny', { consult: consult.id, participant: participant.id, reason: v }), 'bad_message');
      const p = await env.connect();
      const { invite } = await gp.ok('invite.create', { consult: consult.id });
      assert.equal(await p.code('invite.redeem', { invite: invite.code, name: v }), 'bad_message');
      // The invite was not used by the refused attempt.
      assert.equal(await p.code('invite.redeem', { invite: invite.code, name: 'Sanne' }), 'ok');
    }
    // A request id with a control character is refused as such.
    gp.send('{"id":"a\\u0007b","type":"ping"}');
    const e = await gp.next('error');
    assert.equal(e.code, 'bad_message');
    // Names in the "who accessed my data" export stay on one line each.
    const out = ctl(env.srv.dataDir, ['audit', 'export', '--patient', 'pseudo-4711']);
    assert.equal(out.status, 0);
    for (const line of out.stdout.trim().split('\n').slice(1)) assert.match(line, /^\d{4}-\d\d-\d\dT/);
  } finally {
    await env.close();
  }
});

// Details and values built from accepted text and cut to their fixed size end on a character
// boundary: a 127-byte specialist id and a 127-byte name of two-byte characters once made a
// 255-byte audit detail ending in half a character, after which the admin's audit.read, the
// patient's JSON export and (after consent was withdrawn) consult.get failed.
test('text cut to fit a detail or a fact ends on a character boundary', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult } = await consultWithPatient(env, gp);
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    const spec = 's'.repeat(127);
    const name = 'a' + 'é'.repeat(63);
    assert.equal(Buffer.byteLength(name), 127);
    await gp.ok('specialist.invite', { consult: consult.id, specialist: spec, name });
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const inv = log.entries.find((e) => e.event === 'specialist.invite');
    assert.ok(inv, 'the invitation is in the audit log');
    assert.ok(!inv.detail.includes('\uFFFD'));
    const out = ctl(env.srv.dataDir, ['audit', 'export', '--patient', 'pseudo-4711', '--json']);
    assert.equal(out.status, 0, out.stderr);
    JSON.parse(out.stdout);
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: false, method: 'verbal' });
    await gp.ok('consult.get', { consult: consult.id });
    // A refusal whose reason quotes the request, cut inside a character, is still answered.
    const r = await gp.req('consult.get', { consult: 'c_' + 'é'.repeat(40) });
    assert.equal(r.type, 'error');
  } finally {
    await env.close();
  }
});

test('the audit log never holds a patient name', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const name = 'Geheime Naam Zoëlla';
    const { consult, participant } = await consultWithPatient(env, gp, name);
    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    const all = ctlJson(env.srv.dataDir, ['audit', 'list']);
    assert.ok(all.length > 3);
    assert.ok(!JSON.stringify(all).includes('Geheime'), 'patient name in the audit log');
    const redeem = all.find((e) => e.event === 'invite.use' && e.outcome === 'success');
    assert.equal(redeem.user, participant.id);
    assert.equal(redeem.name, '');
  } finally {
    await env.close();
  }
});

test('refused sign-ins: logged one by one up to a limit, then summarised and throttled', async () => {
  const env = await boot(['--auth-fail-window', '2', '--auth-fail-log', '3', '--auth-fail-throttle', '6']);
  try {
    const c = await env.connect();
    const codes = [];
    for (let i = 0; i < 10; i++) codes.push(await c.code('auth', { token: `bogus.${i}.x` }));
    assert.deepEqual(codes.slice(0, 6), Array(6).fill('token_invalid'));
    assert.deepEqual(codes.slice(6), Array(4).fill('rate_limited'));
    // A good token from the same address waits for the window too ...
    assert.equal(await c.code('auth', { token: env.token({}) }), 'rate_limited');
    await sleep(3200);
    // ... and gets in after it.
    assert.equal(await c.code('auth', { token: env.token({}) }), 'ok');
    const all = ctlJson(env.srv.dataDir, ['audit', 'list']);
    const single = all.filter((e) => e.event === 'auth.login' && e.outcome === 'token_invalid');
    assert.equal(single.length, 3);
    const summary = all.filter((e) => e.event === 'auth.summary');
    assert.equal(summary.length, 1);
    assert.match(summary[0].detail, /^8 further refused sign-ins/);
    assert.match(summary[0].detail, /token_invalid/);
    assert.match(summary[0].detail, /rate_limited/);
    assert.equal(summary[0].access_point, '127.0.0.1');
    // Other connections carry on meanwhile.
    assert.equal(await c.code('ping'), 'ok');
  } finally {
    await env.close();
  }
});

// Behind a proxy, clients are IPv6 addresses: refusals count per /64, as the connection limits
// do, so rotating addresses inside one's own network does not escape the throttle.
test('refused sign-ins count per IPv6 /64', async () => {
  const env = await boot(['--trusted-proxies', '127.0.0.3', '--auth-fail-window', '60', '--auth-fail-log', '3',
    '--auth-fail-throttle', '6', '--max-connections-per-address', '64']);
  try {
    const via = async (xff) => {
      const c = await Client.connect(env.srv.wsUrl, { localAddress: '127.0.0.3', headers: { 'X-Forwarded-For': xff } });
      await c.next('hello');
      return c;
    };
    const codes = [];
    for (let i = 1; i <= 9; i++) {
      const c = await via(`2001:db8:1:2::${i.toString(16)}`);
      codes.push(await c.code('auth', { token: `bogus.${i}.x` }));
      c.close();
    }
    assert.deepEqual(codes, [...Array(6).fill('token_invalid'), ...Array(3).fill('rate_limited')]);
    const elsewhere = await via('2001:db8:1:3::1');
    assert.equal(await elsewhere.code('auth', { token: 'bogus.x.y' }), 'token_invalid');
    elsewhere.close();
    const all = ctlJson(env.srv.dataDir, ['audit', 'list']);
    const refused = all.filter((e) => e.event === 'auth.login' && e.outcome === 'token_invalid');
    assert.deepEqual(refused.map((e) => e.access_point).slice(0, 3), ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2::3']);
  } finally {
    await env.close();
  }
});

test('one token holds at most max_connections_per_token connections', async () => {
  const env = await boot(['--max-connections-per-token', '2']);
  try {
    const tok = env.token({});
    const a = await env.connect();
    const b = await env.connect();
    const c = await env.connect();
    assert.equal(await a.code('auth', { token: tok }), 'ok');
    assert.equal(await b.code('auth', { token: tok }), 'ok');
    assert.equal(await c.code('auth', { token: tok }), 'too_many_connections');
    assert.equal(await c.code('consult.list'), 'unauthenticated');
    a.close();
    await sleep(300);
    assert.equal(await c.code('auth', { token: tok }), 'ok');
    // A patient session token is one token too: a patient cannot fill a consult with it.
    const gp = await env.as(env.users.gp);
    const { sessionToken } = await consultWithPatient(env, gp);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(await (await env.connect()).code('auth', { token: sessionToken }));
    assert.deepEqual(codes, ['ok', 'too_many_connections', 'too_many_connections']);
  } finally {
    await env.close();
  }
});

test('audience, lifetime and the roles each issuer may sign', async () => {
  const { publicKey, privateKey } = keyPair('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x; // base64url of the 32-byte key
  const idp = { iss: 'https://uzi.example', kid: 'k1', key: privateKey };
  const env = await boot(['--issuer', `${idp.iss} k1 ${raw} roles=gp,assistant`]);
  try {
    const c = await env.connect();
    const t = now();
    // The identity provider's GP token works; its admin token does not.
    assert.equal(await c.code('auth', { token: mint(idp, {}) }), 'ok');
    const c2 = await env.connect();
    assert.equal(await c2.code('auth', { token: mint(idp, { role: 'admin', sub: 'a' }) }), 'token_unknown_issuer');
    // With an identity provider configured, the own issuer signs patient sessions only.
    assert.equal(await c2.code('auth', { token: env.token({ sub: 'gp-local' }) }), 'token_unknown_issuer');
    // Audience and lifetime.
    assert.equal(await c2.code('auth', { token: mint(idp, { aud: 'another-service' }) }), 'token_invalid');
    assert.equal(await c2.code('auth', { token: mint(idp, { aud: undefined }) }), 'token_invalid');
    assert.equal(await c2.code('auth', { token: mint(idp, { aud: ['x', 'spreekkamer'] }) }), 'ok');
    const c3 = await env.connect();
    assert.equal(await c3.code('auth', { token: mint(idp, { iat: t, exp: t + 2 * 86400 }) }), 'token_invalid');
    // A user is (issuer, subject): the same sub from two issuers is two people.
    assert.equal((await c.ok('ping')).type, 'ok');
    // An own-issuer token with a `consult` claim (a console link's GP session, a patient's
    // session) is accepted only when this server gave it out and recorded it: one made with a
    // copy of issuer.key is refused, for an existing consult as for a made-up one.
    const { consult } = await c.ok('consult.create', { patient: 'pseudo-1' });
    for (const bound of [consult.id, 'c_nonexistent']) {
      const s = await env.connect();
      assert.equal(await s.code('auth', { token: env.token({ sub: 'gp-1', consult: bound }) }), 'token_invalid');
      assert.equal(await s.code('auth', { token: env.token({ role: 'patient', sub: 'p_x', consult: bound }) }), 'token_invalid');
    }
  } finally {
    await env.close();
  }
});

test('the same subject from another issuer is another user', async () => {
  const { publicKey, privateKey } = keyPair('ed25519');
  const raw = publicKey.export({ format: 'jwk' }).x;
  const other = { iss: 'https://elders.example', kid: 'k9', key: privateKey };
  const env = await boot(['--issuer', `${other.iss} k9 ${raw}`, '--own-issuer-roles', 'patient,gp,specialist,admin']);
  try {
    const gp = await env.as(env.users.gp);
    const { consult, participant } = await consultWithPatient(env, gp);
    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1' });
    // spec-1 of the own issuer was invited; spec-1 of another issuer was not.
    const impostor = await env.connect();
    await impostor.ok('auth', { token: mint(other, { ...env.users.specialist }) });
    assert.equal(await impostor.code('consult.join', { consult: consult.id }), 'forbidden');
    const spec = await env.as(env.users.specialist);
    assert.equal(await spec.code('consult.join', { consult: consult.id }), 'ok');
    // Inviting the other issuer's spec-1 explicitly works.
    await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1', issuer: other.iss });
    assert.equal(await impostor.code('consult.join', { consult: consult.id }), 'ok');
    const got = await gp.ok('consult.get', { consult: consult.id });
    assert.equal(got.participants.filter((p) => p.role === 'specialist').length, 2);
    // A patient is the participant their session was made for: another issuer trusted for
    // patients cannot sign a token for that participant id.
    const fake = await env.connect();
    await fake.ok('auth', { token: mint(other, { role: 'patient', sub: participant.id, consult: consult.id, practice: undefined }) });
    assert.equal(await fake.code('consult.join', { consult: consult.id }), 'forbidden');
    assert.equal(await fake.code('consult.get', { consult: consult.id }), 'forbidden');
  } finally {
    await env.close();
  }
});

test('rate_limited answers name the request they refuse', async () => {
  const env = await boot(['--rate', '5', '--burst', '2']);
  try {
    const c = await env.connect();
    for (let i = 1; i <= 6; i++) c.send({ id: `r${i}`, type: 'ping' });
    const got = [];
    for (let waited = 0; got.length < 6 && waited < 3000; waited += 20) {
      got.push(...c.events.splice(0).filter((e) => e.type === 'ok' || e.type === 'error'));
      await sleep(20);
    }
    const limited = got.filter((e) => e.code === 'rate_limited');
    assert.ok(limited.length >= 3);
    assert.ok(limited.every((e) => /^r\d$/.test(e.re)), JSON.stringify(limited));
  } finally {
    await env.close();
  }
});
