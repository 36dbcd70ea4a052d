// kill -9 of spreekd in the middle of consult traffic: after a restart every acknowledged action
// (consult, invite, invite use, admission, recorded checks: identity and speaking freely) is
// there with its own audit entry, and the audit chain verifies. Both ways: what the store holds
// after the restart has its audit entry and every successful audit entry its state, acknowledged
// or not (an action and its audit entry are committed together, or neither).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../lib/client.mjs';
import { startServer } from '../lib/server.mjs';
import { loadIssuer, mint } from '../lib/tokens.mjs';
import { ctl, ctlJson } from '../lib/ctl.mjs';

const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };

async function connect(srv, token) {
  const c = await Client.connect(srv.wsUrl);
  await c.next('hello');
  if (token) await c.ok('auth', { token });
  return c;
}

// One worker: consult after consult, each with an invite, a patient in the lobby, admission and
// an identity check. Every step whose `ok` arrived is recorded in `acked`.
async function worker(srv, token, acked, stop) {
  const gp = await connect(srv, token);
  try {
    while (!stop.now) {
      const { consult } = await gp.ok('consult.create', { patient: `pseudo-${acked.consults.length}` });
      acked.consults.push(consult.id);
      await gp.ok('consult.join', { consult: consult.id });
      const { invite } = await gp.ok('invite.create', { consult: consult.id });
      acked.invites.push({ consult: consult.id, id: invite.id });
      const p = await connect(srv);
      const r = await p.ok('invite.redeem', { invite: invite.code, name: 'Patiënt' });
      acked.redeemed.push({ consult: consult.id, participant: r.participant.id, invite: invite.id });
      await gp.ok('lobby.admit', { consult: consult.id, participant: r.participant.id });
      acked.admitted.push({ consult: consult.id, participant: r.participant.id });
      await gp.ok('identity.record', { consult: consult.id, participant: r.participant.id, method: 'digid', verified: true });
      acked.checks.push({ consult: consult.id, participant: r.participant.id });
      await gp.ok('speak_freely.record', { consult: consult.id, participant: r.participant.id, confirmed: true });
      acked.speak.push({ consult: consult.id, participant: r.participant.id });
      p.close();
    }
  } catch {
    // the server was killed: whatever had no ok is not promised
  } finally {
    gp.close();
  }
}

test('kill -9 mid-traffic loses nothing that was acknowledged', { timeout: 120000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'spk-crash-'));
  try {
    let srv = await startServer({ dataDir });
    const token = mint(loadIssuer(dataDir), GP);
    const acked = { consults: [], invites: [], redeemed: [], admitted: [], checks: [], speak: [] };
    const stop = { now: false };
    const workers = [0, 1, 2].map(() => worker(srv, token, acked, stop));
    while (acked.checks.length < 15) await new Promise((r) => setTimeout(r, 20));
    srv.proc.kill('SIGKILL');
    stop.now = true;
    await Promise.all(workers);
    await srv.exited;
    const total = Object.values(acked).reduce((n, a) => n + a.length, 0);
    assert.ok(total > 60, `only ${total} acknowledged actions before the kill`);

    // The checks below read every consult on one connection: no per-connection rate limit.
    srv = await startServer({ dataDir, args: ['--rate', '100000', '--burst', '100000'] });
    const stored = [];
    try {
      const gp = await connect(srv, token);
      for (const id of acked.consults) {
        assert.equal((await gp.ok('consult.get', { consult: id })).consult.id, id);
      }
      for (const inv of acked.invites) {
        const { invites } = await gp.ok('invite.list', { consult: inv.consult });
        assert.ok(invites.some((i) => i.id === inv.id), `invite ${inv.id} lost`);
      }
      for (const r of acked.redeemed) {
        const { invites } = await gp.ok('invite.list', { consult: r.consult });
        assert.equal(invites.find((i) => i.id === r.invite).state, 'used');
      }
      for (const a of acked.admitted) {
        const got = await gp.ok('consult.get', { consult: a.consult });
        const p = got.participants.find((x) => x.id === a.participant);
        assert.equal(p?.state, 'admitted', `admission of ${a.participant} lost`);
      }
      for (const c of acked.checks) {
        const got = await gp.ok('consult.get', { consult: c.consult });
        assert.ok(got.facts.some((f) => f.kind === 'identity_check' && f.subject === c.participant),
          `identity check in ${c.consult} lost`);
      }
      for (const c of acked.speak) {
        const got = await gp.ok('consult.get', { consult: c.consult });
        assert.ok(got.facts.some((f) => f.kind === 'speak_freely' && f.subject === c.participant),
          `speak-freely record in ${c.consult} lost`);
      }
      // Everything the store holds after the restart, acknowledged or not: the practice's open
      // consults with their participants, facts and invites.
      const { consults } = await gp.ok('consult.list', {});
      for (const c of consults) {
        const got = await gp.ok('consult.get', { consult: c.id });
        const { invites } = await gp.ok('invite.list', { consult: c.id });
        stored.push({ id: c.id, participants: got.participants, facts: got.facts, invites });
      }
      gp.close();
    } finally {
      await srv.stop();
    }
    // Every acknowledged action has its own audit entry.
    const log = ctlJson(dataDir, ['audit', 'list']);
    const ok = log.filter((e) => e.outcome === 'success');
    const has = (event, object, detail) => ok.some((e) => e.event === event && e.object === object && (detail === undefined || e.detail === detail));
    const hasFact = (event, object, kind, subject) => ok.some((e) => e.event === event && e.object === object && e.detail?.startsWith(`${kind} ${subject}=`));
    for (const id of acked.consults) assert.ok(has('consult.create', id), `audit of consult.create ${id}`);
    for (const i of acked.invites) assert.ok(has('invite.create', i.consult, `invite ${i.id}`), `audit of invite.create ${i.id}`);
    for (const r of acked.redeemed) assert.ok(has('invite.use', r.consult, `invite ${r.invite}`), `audit of invite.use ${r.invite}`);
    for (const a of acked.admitted) assert.ok(has('consult.admit', a.consult, `participant ${a.participant}`), `audit of admit of ${a.participant}`);
    for (const c of acked.checks) assert.ok(hasFact('identity.check', c.consult, 'identity_check', c.participant), `audit of identity check of ${c.participant}`);
    for (const c of acked.speak) assert.ok(hasFact('speak_freely.record', c.consult, 'speak_freely', c.participant), `audit of speak-freely of ${c.participant}`);

    // Both ways, acknowledged or not: what is stored has its audit entry ...
    assert.ok(stored.length >= acked.consults.length, `${stored.length} consults stored, ${acked.consults.length} acknowledged`);
    for (const c of stored) {
      assert.ok(has('consult.create', c.id), `stored consult ${c.id} without its audit entry`);
      for (const i of c.invites) {
        assert.ok(has('invite.create', c.id, `invite ${i.id}`), `stored invite ${i.id} without its audit entry`);
        if (i.state === 'used') assert.ok(has('invite.use', c.id, `invite ${i.id}`), `used invite ${i.id} without its audit entry`);
      }
      for (const p of c.participants.filter((x) => x.role === 'patient' && x.state === 'admitted')) {
        assert.ok(has('consult.admit', c.id, `participant ${p.id}`), `admitted ${p.id} without its audit entry`);
      }
      for (const f of c.facts) {
        const event = { identity_check: 'identity.check', speak_freely: 'speak_freely.record' }[f.kind];
        assert.ok(hasFact(event, c.id, f.kind, f.subject), `fact ${f.kind} of ${f.subject} without its audit entry`);
      }
    }
    // ... and every successful audit entry of these actions has its state.
    const byId = new Map(stored.map((c) => [c.id, c]));
    for (const e of ok) {
      const c = byId.get(e.object);
      if (e.event === 'consult.create') assert.ok(c, `audited consult ${e.object} not stored`);
      if (e.event === 'invite.create') assert.ok(c?.invites.some((i) => e.detail === `invite ${i.id}`), `audited ${e.detail} not stored`);
      if (e.event === 'invite.use') assert.ok(c?.invites.some((i) => e.detail === `invite ${i.id}` && i.state === 'used'), `audited use of ${e.detail} not stored`);
      if (e.event === 'consult.admit') assert.ok(c?.participants.some((p) => e.detail === `participant ${p.id}` && p.state === 'admitted'), `audited admission ${e.detail} not stored`);
      if (e.event === 'identity.check' || e.event === 'speak_freely.record') {
        assert.ok(c?.facts.some((f) => e.detail.startsWith(`${f.kind} ${f.subject}=`)), `audited ${e.event} ${e.detail} not stored`);
      }
    }
    // The chain verifies.
    const v = ctl(dataDir, ['audit', 'verify']);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /intact/);
    console.log(`acknowledged before the kill: ${total} actions; all present after restart with their audit entries; ` +
      `${stored.length} consults stored (${acked.consults.length} acknowledged), state and audit agree`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
