// Remote GP under a time-limited delegation, and the relationship checks behind the matrix:
// the right role with the wrong relationship is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot, consultWithPatient, PRACTICE } from './fixture.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('remote GP holds consults only while the delegation is active', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const rgp = await env.as(env.users.remote_gp);
    const { consult, participant } = await consultWithPatient(env, gp);

    // No delegation yet.
    assert.equal(await rgp.code('consult.join', { consult: consult.id }), 'forbidden');
    assert.equal(await rgp.code('consult.create', { patient: 'pseudo-1', practice: PRACTICE }), 'forbidden');
    assert.equal(await rgp.code('consult.list', { practice: PRACTICE }), 'forbidden');

    const now = Math.floor(Date.now() / 1000);
    const { delegation } = await gp.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now + 3600 });
    assert.equal(delegation.practice, PRACTICE);
    assert.equal(delegation.remote_gp, 'rgp-1');

    // Now the remote GP can do the full consult for the practice.
    const mine = await rgp.ok('delegation.list');
    assert.deepEqual(mine.delegations.map((d) => d.id), [delegation.id]);
    await rgp.ok('consult.join', { consult: consult.id });
    await rgp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    await rgp.ok('identity.record', { consult: consult.id, participant: participant.id, method: 'digid', verified: true });
    const c2 = await rgp.ok('consult.create', { patient: 'pseudo-2', practice: PRACTICE });
    assert.equal(c2.consult.practice, PRACTICE);
    // ...but not for a practice that did not delegate, and not its own HAP without one.
    assert.equal(await rgp.code('consult.create', { patient: 'pseudo-3', practice: 'praktijk-b' }), 'forbidden');
    assert.equal(await rgp.code('consult.create', { patient: 'pseudo-3' }), 'forbidden');
    // A remote GP cannot grant delegations.
    assert.equal(await rgp.code('delegation.grant', { remote_gp: 'rgp-2', valid_until: now + 60 }), 'forbidden');

    // Another practice's GP cannot revoke it; the own GP can.
    const gp2 = await env.as(env.users.gp2);
    assert.equal(await gp2.code('delegation.revoke', { delegation: delegation.id }), 'forbidden');
    await gp.ok('delegation.revoke', { delegation: delegation.id });
    assert.equal(await gp.code('delegation.revoke', { delegation: delegation.id }), 'bad_state');
    assert.equal(await rgp.code('lobby.list', { consult: consult.id }), 'forbidden');
    assert.equal(await rgp.code('consult.get', { consult: consult.id }), 'forbidden');

    // The audit log names the practice the remote GP acted for.
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    assert.equal(log.verified, true);
    const acted = log.entries.filter((e) => e.user === 'rgp-1' && e.outcome === 'success' &&
      !['auth.login', 'delegation.list'].includes(e.event));
    assert.ok(acted.length >= 4);
    assert.ok(acted.every((e) => e.on_behalf_of === PRACTICE));
    assert.ok(log.entries.some((e) => e.event === 'delegation.revoke' && e.user === 'gp-1'));
    assert.ok(log.entries.some((e) => e.user === 'rgp-1' && e.outcome === 'forbidden'));
    assert.ok(log.entries.some((e) => e.event === 'delegation.use' && e.object === delegation.id));
  } finally {
    await env.close();
  }
});

test('a delegation expires by itself', async () => {
  const env = await boot();
  try {
    const admin = await env.as(env.users.admin);
    const rgp = await env.as(env.users.remote_gp);
    const now = Math.floor(Date.now() / 1000);
    await admin.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now + 2 });
    await rgp.ok('consult.list', { practice: PRACTICE });
    await sleep(3100);
    assert.equal(await rgp.code('consult.list', { practice: PRACTICE }), 'forbidden');
    // Delegations are bounded in time.
    assert.equal(await admin.code('delegation.grant', { remote_gp: 'rgp-1', valid_until: now + 200 * 86400 }), 'bad_message');
    assert.equal(await admin.code('delegation.grant', { remote_gp: 'rgp-1', valid_until: now - 10 }), 'bad_message');
  } finally {
    await env.close();
  }
});

test('relationships: the right role is not enough', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const { consult, participant } = await consultWithPatient(env, gp);
    // A GP of another practice.
    const gp2 = await env.as(env.users.gp2);
    for (const [a, f] of [['consult.get', {}], ['consult.join', {}], ['lobby.list', {}], ['consult.end', {}],
      ['lobby.admit', { participant: participant.id }], ['invite.create', {}]]) {
      assert.equal(await gp2.code(a, { consult: consult.id, ...f }), 'forbidden', a);
    }
    assert.equal(await gp2.code('consult.list', { practice: PRACTICE }), 'forbidden');
    // An assistant whose token names no GP.
    const lone = await env.as({ ...env.users.assistant, acts_for: undefined });
    assert.equal(await lone.code('consult.create', { patient: 'x' }), 'forbidden');
    // An assistant for a GP, audited on behalf of that GP.
    const da = await env.as(env.users.assistant);
    const created = await da.ok('consult.create', { patient: 'pseudo-5' });
    assert.equal(created.consult.gp, 'gp-1');
    // A specialist who was not invited.
    const spec = await env.as(env.users.specialist);
    assert.equal(await spec.code('consult.get', { consult: consult.id }), 'forbidden');
    // Unknown consult.
    assert.equal(await gp.code('consult.get', { consult: 'c_doesnotexist0000' }), 'not_found');
    assert.equal(await gp.code('lobby.admit', { consult: consult.id, participant: 'p_nobody' }), 'not_found');
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const byDa = log.entries.filter((e) => e.user === 'da-1' && e.event === 'consult.create' && e.outcome === 'success');
    assert.equal(byDa.length, 1);
    assert.equal(byDa[0].on_behalf_of, 'gp-1');
    assert.equal(byDa[0].patient, 'pseudo-5');
  } finally {
    await env.close();
  }
});
