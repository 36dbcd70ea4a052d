// Access that ends while a connection is open (docs/protocol.md §5.8): a revoked or expired
// delegation, withdrawn consent; what a patient sees of other patients; revoked invites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot, consultWithPatient, PRACTICE } from './fixture.mjs';

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Counts events of `type` a client receives from now on.
function counter(c, type) {
  const seen = [];
  const orig = c._onMessage.bind(c);
  c._onMessage = (data, bin) => {
    const m = JSON.parse(data.toString());
    if (m.type === type) seen.push(m);
    orig(data, bin);
  };
  return seen;
}

test('a revoked delegation ends the remote GP presence at once; an expiring one when it runs out', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { delegation } = await gp.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now() + 3600 });
    const rgp = await env.as(env.users.remote_gp);
    const { consult, patient } = await consultWithPatient(env, gp);
    await rgp.ok('consult.join', { consult: consult.id, practice: PRACTICE });
    const lobbyEvents = counter(rgp, 'lobby.update');

    await gp.ok('delegation.revoke', { delegation: delegation.id });
    const ended = await rgp.next('access.ended');
    assert.equal(ended.consult, consult.id);
    assert.equal(ended.reason, 'delegation_ended');
    // Nothing of the consult reaches the remote GP any more.
    patient.close();
    await sleep(500);
    assert.equal(lobbyEvents.length, 0, 'lobby events after the revocation');
    assert.equal(await rgp.code('consult.get', { consult: consult.id }), 'forbidden');

    // A delegation that runs out while the remote GP is in the consult.
    await gp.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now() + 3 });
    await rgp.ok('consult.join', { consult: consult.id });
    const t0 = Date.now();
    const ended2 = await rgp.next('access.ended', 8000);
    assert.equal(ended2.reason, 'delegation_ended');
    assert.ok(Date.now() - t0 < 6000);

    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const ends = log.entries.filter((e) => e.event === 'access.end' && e.user === 'rgp-1');
    assert.equal(ends.length, 2);
    assert.ok(ends.every((e) => e.on_behalf_of === PRACTICE && e.object === consult.id));
    assert.ok(ends.some((e) => /revoked/.test(e.detail)) && ends.some((e) => /ran out/.test(e.detail)));
  } finally {
    await env.close();
  }
});

test('withdrawn consent removes the specialist and ends the invitation', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, patient, participant } = await consultWithPatient(env, gp);
    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1', name: 'Dr. Dermatoloog' });
    const spec = await env.as(env.users.specialist);
    await spec.ok('consult.join', { consult: consult.id });
    await spec.next('roster'); // the one that follows the join
    const rosters = counter(spec, 'roster');

    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: false, method: 'verbal' });
    const ended = await spec.next('access.ended');
    assert.equal(ended.reason, 'consent_withdrawn');
    assert.equal(await spec.code('consult.join', { consult: consult.id }), 'forbidden');
    assert.equal(await spec.code('consult.get', { consult: consult.id }), 'forbidden');
    // The patient and GP see the specialist gone; the specialist hears nothing more.
    const r = await patient.until('roster', (m) => m.participants.every((p) => p.role !== 'specialist' || p.online === false));
    assert.ok(r);
    await gp.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
    await sleep(300);
    assert.equal(rosters.length, 0);
    const got = await gp.ok('consult.get', { consult: consult.id });
    assert.ok(got.facts.some((f) => f.kind === 'specialist' && f.value.startsWith('withdrawn:')));

    // Consent given again does not revive the old invitation: a new one is needed.
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'written' });
    assert.equal(await spec.code('consult.join', { consult: consult.id }), 'forbidden');
    await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1' });
    assert.equal(await spec.code('consult.join', { consult: consult.id }), 'ok');
  } finally {
    await env.close();
  }
});

test('a patient never sees another patient who waits, was refused or left', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, patient: a, participant: pa } = await consultWithPatient(env, gp, 'Anna Aarts');
    await gp.ok('lobby.admit', { consult: consult.id, participant: pa.id });
    await a.next('admitted');
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    const b = await env.connect();
    const rb = await b.ok('invite.redeem', { invite: invite.code, name: 'Bert Bos' });
    const names = (list) => list.map((p) => p.name);

    // A (admitted) sees nobody waiting, in roster events and in consult.get.
    const got = await a.ok('consult.get', { consult: consult.id });
    assert.ok(!names(got.participants).includes('Bert Bos'));
    // every event A got while B waited (rosters among them) names nobody waiting
    await sleep(200);
    for (const e of a.events) {
      const listed = [...(e.participants || []), ...(e.lobby || [])];
      assert.ok(!names(listed).includes('Bert Bos'), JSON.stringify(e));
    }
    a.drain('roster');
    await gp.ok('identity.record', { consult: consult.id, participant: pa.id, method: 'digid', verified: true });
    // Staff do see B waiting, in the lobby and the roster.
    const staff = await gp.ok('consult.get', { consult: consult.id });
    assert.ok(names(staff.lobby).includes('Bert Bos'));
    assert.ok(names(staff.participants).includes('Bert Bos'));

    // Refusing B: staff get lobby.update and a roster without B; A learns nothing of B.
    gp.drain();
    await gp.ok('lobby.deny', { consult: consult.id, participant: rb.participant.id, reason: 'verkeerde afspraak' });
    const roster = await gp.next('roster');
    assert.ok(!names(roster.participants).includes('Bert Bos'));
    await sleep(300);
    for (const e of a.events) {
      if (e.participants) assert.ok(!names(e.participants).includes('Bert Bos'), JSON.stringify(e));
    }

    // Two patients admitted together see each other; once one leaves, the other no longer does.
    const { invite: i3 } = await gp.ok('invite.create', { consult: consult.id });
    const c3 = await env.connect();
    const r3 = await c3.ok('invite.redeem', { invite: i3.code, name: 'Cor Claes' });
    await gp.ok('lobby.admit', { consult: consult.id, participant: r3.participant.id });
    await a.until('roster', (m) => names(m.participants).includes('Cor Claes'));
    await c3.ok('consult.leave', { consult: consult.id });
    await a.until('roster', (m) => !names(m.participants).includes('Cor Claes'));
    const later = await a.ok('consult.get', { consult: consult.id });
    assert.deepEqual(names(later.participants).sort(), ['Anna Aarts', 'Dr. Jansen']);
  } finally {
    await env.close();
  }
});

test('invites can be listed and revoked by staff; a revoked invite is refused', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-9' });
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    assert.match(invite.id, /^[0-9a-f]{16}$/);
    assert.equal(invite.state, 'open');
    const { invite: other } = await gp.ok('invite.create', { consult: consult.id, ttl: 60 });

    const list = await gp.ok('invite.list', { consult: consult.id });
    assert.deepEqual(list.invites.map((i) => i.id).sort(), [invite.id, other.id].sort());
    assert.ok(list.invites.every((i) => i.code === undefined && i.url === undefined));

    const as = await env.as(env.users.assistant);
    const rev = await as.ok('invite.revoke', { consult: consult.id, invite: invite.id });
    assert.equal(rev.invite.state, 'revoked');
    assert.equal(await as.code('invite.revoke', { consult: consult.id, invite: invite.id }), 'invite_revoked');
    const p = await env.connect();
    assert.equal(await p.code('invite.redeem', { invite: invite.code, name: 'Sanne' }), 'invite_revoked');
    assert.equal(await p.code('invite.redeem', { invite: other.code, name: 'Sanne' }), 'ok');
    assert.equal(await gp.code('invite.revoke', { consult: consult.id, invite: other.id }), 'invite_used');
    assert.equal(await gp.code('invite.revoke', { consult: consult.id, invite: '0123456789abcdef' }), 'not_found');

    const gp2 = await env.as(env.users.gp2);
    assert.equal(await gp2.code('invite.list', { consult: consult.id }), 'forbidden');
    const spec = await env.as(env.users.specialist);
    assert.equal(await spec.code('invite.revoke', { consult: consult.id, invite: other.id }), 'forbidden');

    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    assert.ok(log.entries.some((e) => e.event === 'invite.revoke' && e.outcome === 'success' &&
      e.on_behalf_of === 'gp-1' && e.detail.includes(invite.id)));
  } finally {
    await env.close();
  }
});

// A token that expires while its connection is joined to a consult (docs/protocol.md §5.8): the
// connection leaves the consult (access.ended, token_expired), is told (session.expired), is
// closed with 4004, and the end is audited.
test('a token expiring while joined ends the connection\'s access at once, audited', async () => {
  const env = await boot(['--token-leeway', '0']);
  try {
    const gp = await env.as(env.users.gp);
    const { consult } = await consultWithPatient(env, gp);
    const exp = now() + 3;
    const short = await env.as({ ...env.users.gp, exp, iat: exp - 60, nbf: exp - 60 });
    await short.ok('consult.join', { consult: consult.id });
    const lobbyEvents = counter(short, 'lobby.update');
    const ended = await short.next('access.ended', 8000);
    assert.equal(ended.consult, consult.id);
    assert.equal(ended.reason, 'token_expired');
    const expired = await short.next('session.expired', 3000);
    assert.equal(expired.expired_at, exp);
    assert.ok(now() >= exp, 'not before the token expired');
    assert.equal((await short.closedPromise()).code, 4004);
    assert.equal(lobbyEvents.length, 0);
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const end = log.entries.find((e) => e.event === 'session.expire');
    assert.ok(end, 'session.expire audited');
    assert.equal(end.user, env.users.gp.sub);
    assert.equal(end.outcome, 'token_expired');
  } finally {
    await env.close();
  }
});
