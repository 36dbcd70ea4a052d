// Bad input: every case is answered with its documented error code, the connection stays usable,
// the server carries on, and nothing stored is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot, consultWithPatient } from './fixture.mjs';
import { foreignIssuer, mint, signJws } from '../lib/tokens.mjs';
import { ctlJson } from '../lib/ctl.mjs';

const now = () => Math.floor(Date.now() / 1000);

// Sends a raw frame and returns the error that answers it.
async function rawError(c) {
  const e = await c.next('error');
  assert.equal(e.type, 'error');
  return e;
}

test('malformed frames and envelopes', async () => {
  const env = await boot(['--max-message-bytes', '4096']);
  try {
    const c = await env.connect();
    const cases = [
      ['{not json', 'bad_json'],
      ['[1,2,3]', 'bad_json'],
      ['"just a string"', 'bad_json'],
      ['', 'bad_json'],
      ['{"type":"ping","type":"auth"}', 'bad_json'],
      ['{"id":1}', 'bad_message'],
      ['{"id":1,"type":42}', 'bad_message'],
      ['{"id":-1,"type":"ping"}', 'bad_message'],
      ['{"id":{"a":1},"type":"ping"}', 'bad_message'],
      [`{"id":"${'x'.repeat(65)}","type":"ping"}`, 'bad_message'],
      ['{"id":2,"type":"consult.teleport"}', 'unknown_type'],
      ['{"id":3,"type":"consult.create","patient":"x"}', 'unauthenticated'],
    ];
    for (const [frame, code] of cases) {
      c.send(frame);
      const e = await rawError(c);
      assert.equal(e.code, code, frame);
      assert.equal(typeof e.message, 'string');
    }
    // The answer carries the request id where there was a valid one.
    c.send('{"id":"abc","type":"nope"}');
    assert.equal((await rawError(c)).re, 'abc');
    // Too large: discarded with an error; the connection stays usable.
    c.send(JSON.stringify({ id: 9, type: 'ping', pad: 'x'.repeat(5000) }));
    assert.equal((await rawError(c)).code, 'too_large');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await rawError(c)).code, 'bad_message');
    assert.equal((await c.req('ping')).type, 'ok');
  } finally {
    await env.close();
  }
});

test('missing and mistyped fields are named; state is unchanged', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, participant } = await consultWithPatient(env, gp);
    const cases = [
      ['consult.create', {}, 'patient'],
      ['consult.create', { patient: 42 }, 'patient'],
      ['consult.create', { patient: '' }, 'patient'],
      ['consult.create', { patient: 'x'.repeat(500) }, 'patient'],
      ['lobby.admit', { consult: consult.id }, 'participant'],
      ['lobby.admit', { consult: 7, participant: participant.id }, 'consult'],
      ['identity.record', { consult: consult.id, participant: participant.id, method: 'vibes', verified: true }, 'method'],
      ['identity.record', { consult: consult.id, participant: participant.id, method: 'digid', verified: 'yes' }, 'verified'],
      ['invite.create', { consult: consult.id, ttl: 5 }, 'ttl'],
      ['invite.create', { consult: consult.id, ttl: 1.5 }, 'ttl'],
      ['consent.record', { consult: consult.id, scope: 'everything', given: true, method: 'verbal' }, 'scope'],
      ['delegation.grant', { remote_gp: 'r', valid_until: 'tomorrow' }, 'valid_until'],
    ];
    for (const [type, fields, field] of cases) {
      const m = await gp.req(type, fields);
      assert.equal(m.code, 'bad_message', `${type} ${JSON.stringify(fields)}`);
      assert.match(m.message, new RegExp(field));
    }
    // Nothing of that happened.
    const got = await gp.ok('consult.get', { consult: consult.id });
    assert.equal(got.facts.length, 0);
    assert.equal(got.lobby.length, 1);
    const p2 = await env.connect();
    assert.equal(await p2.code('invite.redeem', { invite: 'x', name: '' }), 'bad_message');
    assert.equal(await p2.code('invite.redeem', { invite: 'x', name: 'a\u0001b' }), 'bad_message');
    assert.equal(await p2.code('invite.redeem', { invite: 'nonexistentcode0000000', name: 'A' }), 'invite_invalid');
  } finally {
    await env.close();
  }
});

test('tokens: expired, not yet valid, forged, wrong issuer, wrong algorithm', async () => {
  const env = await boot();
  try {
    const t = now();
    const foreign = foreignIssuer();
    const good = env.token({});
    const [h, p, s] = good.split('.');
    const flip = (x) => x.slice(0, -2) + (x.at(-2) === 'A' ? 'B' : 'A') + x.at(-1);
    const cases = [
      [env.token({ exp: t - 3600 }), 'token_expired'],
      [env.token({ nbf: t + 3600 }), 'token_not_yet_valid'],
      [mint(foreign, {}), 'token_unknown_issuer'],
      [mint({ ...foreign, iss: env.issuer.iss, kid: env.issuer.kid }, {}), 'token_invalid'],
      [`${h}.${p}.${flip(s)}`, 'token_invalid'],
      [`${h}.${Buffer.from(JSON.stringify({ iss: env.issuer.iss, sub: 'x', role: 'admin', exp: t + 99, nbf: 0, iat: 0, jti: 'j' })).toString('base64url')}.${s}`, 'token_invalid'],
      [signJws({ alg: 'none', kid: env.issuer.kid }, { iss: env.issuer.iss }, env.issuer.key), 'token_invalid'],
      [env.token({ role: 'superuser' }), 'token_invalid'],
      ['not-a-token', 'token_invalid'],
      ['a.b.c', 'token_invalid'],
      [env.token({ role: 'patient' }), 'token_invalid'],
    ];
    const c = await env.connect();
    for (const [tok, code] of cases) {
      assert.equal(await c.code('auth', { token: tok }), code, tok.slice(0, 40));
    }
    assert.equal(await c.code('auth', {}), 'bad_message');
    assert.equal(await c.code('auth', { token: 'x'.repeat(5000) }), 'token_invalid');
    // Still usable: a good token signs in, and a second auth is refused.
    assert.equal(await c.code('auth', { token: good }), 'ok');
    assert.equal(await c.code('auth', { token: good }), 'already_authenticated');
    assert.equal(await c.code('invite.redeem', { invite: 'x', name: 'y' }), 'already_authenticated');
    // Failed sign-ins are audited: the practice's admin sees those made with its users' signed
    // tokens; the whole log (spreekctl) has the anonymous ones too.
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    assert.ok(log.entries.some((e) => e.event === 'auth.login' && e.outcome === 'token_expired' &&
      e.user === 'gp-1' && e.practice === 'praktijk-a'));
    assert.ok(!log.entries.some((e) => e.outcome === 'token_unknown_issuer'));
    const all = ctlJson(env.srv.dataDir, ['audit', 'list']);
    assert.ok(all.some((e) => e.event === 'auth.login' && e.outcome === 'token_unknown_issuer'));
  } finally {
    await env.close();
  }
});

test('a session whose token expires ends at once: told, audited and closed with 4004', async () => {
  const env = await boot();
  try {
    const c = await env.connect();
    // exp 2 s ahead, minus the 60 s leeway the server allows: a token already inside it.
    await c.ok('auth', { token: env.token({ iat: now() - 60, nbf: now() - 60, exp: now() + 2 - 60 }) });
    const ev = await c.next('session.expired', 5000);
    assert.ok(ev.expired_at > 0);
    const { code } = await c.closedPromise(5000);
    assert.equal(code, 4004);
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    assert.ok(log.entries.some((e) => e.event === 'session.expire' && e.user === 'gp-1'));
  } finally {
    await env.close();
  }
});

test('flood past the rate limit is refused; the connection recovers', async () => {
  const env = await boot(['--rate', '20', '--burst', '10']);
  try {
    const c = await env.connect();
    for (let i = 0; i < 40; i++) c.send({ id: i + 1, type: 'ping' });
    const answers = () => c.events.filter((e) => e.type === 'ok' || e.type === 'error');
    for (let waited = 0; answers().length < 40 && waited < 5000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = answers();
    const ok = all.filter((e) => e.type === 'ok').length;
    const limited = all.filter((e) => e.code === 'rate_limited').length;
    assert.ok(ok >= 10 && ok < 20, `ok=${ok}`);
    assert.equal(ok + limited, 40);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await c.code('ping'), 'ok');
  } finally {
    await env.close();
  }
});

test('reused invite, ended consult, and unauthenticated actions', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, invite } = await consultWithPatient(env, gp);
    const x = await env.connect();
    assert.equal(await x.code('invite.redeem', { invite: invite.code, name: 'Tweede' }), 'invite_used');
    const spare = (await gp.ok('invite.create', { consult: consult.id, ttl: 60 })).invite.code;
    await gp.ok('consult.end', { consult: consult.id });
    assert.equal(await x.code('invite.redeem', { invite: spare, name: 'Laat' }), 'consult_ended');
    assert.equal(await gp.code('consult.join', { consult: consult.id }), 'consult_ended');
    assert.equal(await gp.code('consult.end', { consult: consult.id }), 'consult_ended');
    const y = await env.connect();
    for (const a of ['consult.list', 'lobby.admit', 'audit.read', 'delegation.grant']) {
      assert.equal(await y.code(a, { consult: consult.id }), 'unauthenticated');
    }
    assert.equal(await gp.code('consult.leave', { consult: consult.id }), 'consult_ended');
    assert.equal(await gp.code('invite.create', { consult: consult.id }), 'consult_ended');
    // The ended consult is still readable (the one action that is) and correct after all that.
    const got = await gp.ok('consult.get', { consult: consult.id });
    assert.equal(got.consult.state, 'ended');
    assert.equal(got.participants.length, 2);
  } finally {
    await env.close();
  }
});

test('one connection joins at most 16 consults: out_of_range for a 17th, and it carries on', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const ids = [];
    for (let i = 0; i < 17; i++) {
      ids.push((await gp.ok('consult.create', { patient: `pseudo-${i}`, title: `Spreekuur ${i}` })).consult.id);
    }
    for (const id of ids.slice(0, 16)) await gp.ok('consult.join', { consult: id });
    assert.equal(await gp.code('consult.join', { consult: ids[16] }), 'out_of_range');
    // Joining one it has already joined is not a new one; leaving one makes room.
    await gp.ok('consult.join', { consult: ids[3] });
    await gp.ok('consult.leave', { consult: ids[3] });
    const got = await gp.ok('consult.join', { consult: ids[16] });
    assert.equal(got.consult.id, ids[16]);
  } finally {
    await env.close();
  }
});

test('a connection that never signs in is closed with 4001', async () => {
  const env = await boot(['--auth-timeout', '1']);
  try {
    const c = await env.connect();
    const { code } = await c.closedPromise(5000);
    assert.equal(code, 4001);
    const ok = await env.as(env.users.gp);
    assert.equal(await ok.code('ping'), 'ok');
  } finally {
    await env.close();
  }
});
