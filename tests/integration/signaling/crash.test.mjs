// kill -9 of spreekd in the middle of consult traffic: after a restart every acknowledged action
// (consult, invite, invite use, admission, recorded check) is there with its audit entry, and
// the audit chain verifies.
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
    const acked = { consults: [], invites: [], redeemed: [], admitted: [], checks: [] };
    const stop = { now: false };
    const workers = [0, 1, 2].map(() => worker(srv, token, acked, stop));
    while (acked.checks.length < 15) await new Promise((r) => setTimeout(r, 20));
    srv.proc.kill('SIGKILL');
    stop.now = true;
    await Promise.all(workers);
    await srv.exited;
    const total = Object.values(acked).reduce((n, a) => n + a.length, 0);
    assert.ok(total > 60, `only ${total} acknowledged actions before the kill`);

    srv = await startServer({ dataDir });
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
      gp.close();
    } finally {
      await srv.stop();
    }
    // Every acknowledged action has its audit entry, and the chain verifies.
    const log = ctlJson(dataDir, ['audit', 'list']);
    const has = (event, object) => log.some((e) => e.event === event && e.object === object && e.outcome === 'success');
    for (const id of acked.consults) assert.ok(has('consult.create', id), `audit of consult.create ${id}`);
    for (const a of acked.admitted) assert.ok(has('consult.admit', a.consult), `audit of admit in ${a.consult}`);
    for (const c of acked.checks) assert.ok(has('identity.check', c.consult), `audit of check in ${c.consult}`);
    const v = ctl(dataDir, ['audit', 'verify']);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    console.log(`acknowledged before the kill: ${total} actions; all present after restart`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
