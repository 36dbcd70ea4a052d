// The whole consult workflow against the real spreekd: create, invite, lobby, admit, checks,
// meekijkconsult, send back, leave, end, and a restart that keeps consults, lobby and invites.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { boot, consultWithPatient } from './fixture.mjs';
import { storeArgs } from '../lib/store.mjs';

const SPREEKCTL = process.env.SPREEKCTL ?? 'build/server/spreekctl';
const ctl = (dataDir, ...args) =>
  execFileSync(SPREEKCTL, ['--data', dataDir, ...storeArgs(dataDir), ...args], { encoding: 'utf8' });

test('video consult journey end to end', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    assert.equal(gp.user.role, 'gp');
    const { consult, invite, patient, participant } = await consultWithPatient(env, gp);
    assert.match(consult.id, /^c_[A-Za-z0-9_-]{16}$/);
    assert.equal(consult.patient, 'pseudo-4711');
    assert.ok(invite.url.endsWith(`/join#${invite.code}`));
    assert.equal(participant.state, 'lobby');

    // The GP sees the patient waiting.
    const lobby = await gp.until('lobby.update', (e) => e.lobby.length === 1);
    assert.equal(lobby.lobby[0].name, 'Sanne de Vries');
    assert.equal(lobby.lobby[0].online, true);

    // In the lobby the patient sees nothing of the consult.
    const seen = await patient.ok('consult.get', { consult: consult.id });
    assert.equal(seen.participants.length, 1);
    assert.equal(seen.consult.patient, undefined);
    assert.equal(patient.events.filter((e) => e.type === 'roster').length, 0);

    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    const adm = await patient.next('admitted');
    assert.equal(adm.participant.state, 'admitted');
    const rosterP = await patient.until('roster', (e) => e.participants.length === 2);
    assert.deepEqual(rosterP.participants.map((p) => p.name).sort(), ['Dr. Jansen', 'Sanne de Vries']);
    const rosterG = await gp.until('roster', (e) => e.participants.some((p) => p.state === 'admitted' && p.role === 'patient'));
    assert.equal(rosterG.participants.length, 2);

    // Identity check and "can speak freely" are recorded.
    const id = await gp.ok('identity.record', { consult: consult.id, participant: participant.id, method: 'id_document', verified: true });
    assert.equal(id.fact.value, 'verified:id_document');
    const sf = await gp.ok('speak_freely.record', { consult: consult.id, participant: participant.id, confirmed: true });
    assert.equal(sf.fact.value, 'yes');
    const got = await gp.ok('consult.get', { consult: consult.id });
    assert.deepEqual(got.facts.map((f) => f.kind).sort(), ['identity_check', 'speak_freely']);

    // Meekijkconsult: no specialist without the patient's consent.
    assert.equal(await gp.code('specialist.invite', { consult: consult.id, specialist: 'spec-1' }), 'consent_required');
    const spec = await env.as(env.users.specialist);
    assert.equal(await spec.code('consult.join', { consult: consult.id }), 'forbidden');
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1', name: 'Dr. Dermatoloog' });
    const inv = await spec.next('specialist.invited');
    assert.equal(inv.consult, consult.id);
    await spec.ok('consult.join', { consult: consult.id });
    const r3 = await patient.until('roster', (e) => e.participants.length === 3);
    assert.ok(r3.participants.some((p) => p.role === 'specialist' && p.online));

    // Send back to the lobby, admit again.
    await gp.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
    await patient.next('sent_back');
    await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    await patient.next('admitted');

    // The specialist leaves; the others see it.
    await spec.ok('consult.leave', { consult: consult.id });
    await patient.until('roster', (e) => e.participants.some((p) => p.role === 'specialist' && p.state === 'left'));

    // The invite was single use.
    const other = await env.connect();
    assert.equal(await other.code('invite.redeem', { invite: invite.code, name: 'Iemand' }), 'invite_used');

    await gp.ok('consult.end', { consult: consult.id });
    await patient.next('consult.ended');
    assert.equal(await gp.code('lobby.list', { consult: consult.id }), 'consult_ended');
    assert.equal(await gp.code('invite.create', { consult: consult.id }), 'consult_ended');
    const list = await gp.ok('consult.list');
    assert.equal(list.consults.some((c) => c.id === consult.id), false);

    // NEN 7513: the whole run is in the audit log, the chain verifies, and the patient's
    // "who accessed my data" export lists what happened to them.
    assert.match(ctl(env.srv.dataDir, 'audit', 'verify'), /audit log intact/);
    const exp = JSON.parse(ctl(env.srv.dataDir, 'audit', 'export', '--patient', 'pseudo-4711', '--json'));
    const events = exp.map((e) => `${e.event}/${e.role}`);
    for (const want of ['consult.create/gp', 'invite.create/gp', 'invite.use/patient', 'consult.admit/gp',
      'identity.check/gp', 'speak_freely.record/gp', 'consent.record/gp', 'specialist.invite/gp',
      'consult.join/specialist', 'consult.send_back/gp', 'consult.end/gp']) {
      assert.ok(events.includes(want), `export lacks ${want}`);
    }
    assert.ok(exp.some((e) => e.outcome === 'forbidden' && e.user === 'spec-1'), 'refused access is listed');
    assert.ok(exp.every((e) => e.patient === 'pseudo-4711'));
    // Exporting was itself logged.
    const again = JSON.parse(ctl(env.srv.dataDir, 'audit', 'export', '--patient', 'pseudo-4711', '--json'));
    assert.ok(again.some((e) => e.event === 'audit.export'));
  } finally {
    await env.close();
  }
});

test('deny keeps a patient out; reconnect with the session token returns to the same state', async () => {
  const env = await boot();
  try {
    const gp = await env.as(env.users.gp);
    const a = await consultWithPatient(env, gp, 'Patiënt A');
    // Patient A reconnects with the session token: still in the lobby.
    a.patient.close();
    const again = await env.connect();
    const au = await again.ok('auth', { token: a.sessionToken });
    assert.equal(au.user.role, 'patient');
    const j = await again.ok('consult.join', { consult: a.consult.id });
    assert.equal(j.participant.state, 'lobby');
    assert.equal(j.participant.id, a.participant.id);
    // A session token only opens its own consult.
    const { consult: otherConsult } = await gp.ok('consult.create', { patient: 'pseudo-9' });
    assert.equal(await again.code('consult.join', { consult: otherConsult.id }), 'forbidden');

    await gp.ok('lobby.deny', { consult: a.consult.id, participant: a.participant.id, reason: 'Verkeerde afspraak' });
    const d = await again.next('denied');
    assert.equal(d.reason, 'Verkeerde afspraak');
    assert.equal(await again.code('consult.join', { consult: a.consult.id }), 'forbidden');
    assert.equal(await gp.code('lobby.admit', { consult: a.consult.id, participant: a.participant.id }), 'bad_state');
  } finally {
    await env.close();
  }
});

test('a restart keeps consults, the lobby and unused invites', async () => {
  const env = await boot([], { keepDataDir: true });
  let dataDir;
  let consultId, participantId, spare, session;
  try {
    dataDir = env.srv.dataDir;
    const gp = await env.as(env.users.gp);
    const a = await consultWithPatient(env, gp);
    consultId = a.consult.id;
    participantId = a.participant.id;
    session = a.sessionToken;
    spare = (await gp.ok('invite.create', { consult: consultId })).invite.code;
  } finally {
    await env.close();
  }
  const env2 = await boot([], { dataDir, keepDataDir: false });
  try {
    const gp = await env2.as(env2.users.gp);
    const list = await gp.ok('consult.list');
    assert.ok(list.consults.some((c) => c.id === consultId));
    const got = await gp.ok('consult.get', { consult: consultId });
    assert.deepEqual(got.lobby.map((p) => p.id), [participantId]);
    // The patient comes back with the session token and is still waiting.
    const p = await env2.connect();
    await p.ok('auth', { token: session });
    const j = await p.ok('consult.join', { consult: consultId });
    assert.equal(j.participant.state, 'lobby');
    // The unused invite still works once.
    const q = await env2.connect();
    await q.ok('invite.redeem', { invite: spare, name: 'Partner van patiënt' });
    const q2 = await env2.connect();
    assert.equal(await q2.code('invite.redeem', { invite: spare, name: 'X' }), 'invite_used');
  } finally {
    await env2.close();
  }
});
