// Walks every role against every action of docs/roles.md on a real server. For each pair a fresh
// consult is prepared in which the relationship of that role holds, so an `allow` must answer
// `ok` and a `deny` must answer `forbidden` (`unauthenticated` before sign-in).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { boot, PRACTICE } from './fixture.mjs';

// A publish offer as Chromium writes it (audio + video, BUNDLE, trickle).
const OFFER = readFileSync(new URL('../../unit/sdp/chromium_offer.sdp', import.meta.url), 'utf8');

function readMatrix() {
  const md = readFileSync(new URL('../../../docs/roles.md', import.meta.url), 'utf8');
  const body = md.split('<!-- matrix:begin -->')[1].split('<!-- matrix:end -->')[0];
  const rows = body.trim().split('\n').map((l) => l.split('|').slice(1, -1).map((s) => s.trim()));
  const roles = rows[0].slice(1);
  const matrix = {};
  for (const r of rows.slice(2)) {
    matrix[r[0]] = Object.fromEntries(roles.map((role, i) => [role, r[i + 1]]));
  }
  return { roles, matrix };
}

// A fresh consult with a patient in the lobby, a delegation to the remote GP, the patient's
// consent and the specialist invited. Returns what the requests need.
async function prepare(env, gp) {
  const now = Math.floor(Date.now() / 1000);
  const { consult } = await gp.ok('consult.create', { patient: 'pseudo-roles', title: 'matrix' });
  const { invite } = await gp.ok('invite.create', { consult: consult.id });
  const patient = await env.connect();
  const red = await patient.ok('invite.redeem', { invite: invite.code, name: 'Patiënt' });
  await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
  await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1' });
  const { delegation } = await gp.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now + 3600 });
  const { invite: spare } = await gp.ok('invite.create', { consult: consult.id });
  return { consult: consult.id, participant: red.participant.id, patient, delegation: delegation.id, spare: spare.id, now };
}

// The request each action is tried with; `pre` runs first (as the GP or as the caller).
const requests = {
  ping: () => ({}),
  'consult.create': () => ({ patient: 'pseudo-new', practice: PRACTICE, gp: 'gp-1' }),
  'consult.list': () => ({ practice: PRACTICE }),
  'consult.get': (x) => ({ consult: x.consult }),
  'consult.join': (x) => ({ consult: x.consult }),
  'consult.leave': (x) => ({ consult: x.consult }),
  'consult.end': (x) => ({ consult: x.consult }),
  'invite.create': (x) => ({ consult: x.consult }),
  'invite.list': (x) => ({ consult: x.consult }),
  'invite.revoke': (x) => ({ consult: x.consult, invite: x.spare }),
  'lobby.list': (x) => ({ consult: x.consult }),
  'lobby.admit': (x) => ({ consult: x.consult, participant: x.participant }),
  'lobby.deny': (x) => ({ consult: x.consult, participant: x.participant }),
  'lobby.send_back': (x) => ({ consult: x.consult, participant: x.participant }),
  'identity.record': (x) => ({ consult: x.consult, participant: x.participant, method: 'id_document', verified: true }),
  'speak_freely.record': (x) => ({ consult: x.consult, participant: x.participant, confirmed: true }),
  'consent.record': (x) => ({ consult: x.consult, scope: 'meekijkconsult', given: true, method: 'verbal' }),
  'specialist.invite': (x) => ({ consult: x.consult, specialist: 'spec-2' }),
  'delegation.grant': (x) => ({ remote_gp: 'rgp-2', valid_until: x.now + 600 }),
  'delegation.revoke': (x) => ({ delegation: x.delegation }),
  'delegation.list': () => ({}),
  'audit.read': () => ({ limit: 5 }),
  'media.publish': (x) => ({ consult: x.consult, sdp: OFFER, e2ee: true }),
  'media.subscribe': (x) => ({ consult: x.consult, e2ee: true }),
  'media.answer': (x) => ({ consult: x.consult, sdp: OFFER, version: 1 }),
  'media.candidate': (x) => ({ consult: x.consult, pc: 'publish', candidate: '' }),
  'media.stop': (x) => ({ consult: x.consult }),
  'chat.device': () => ({ device: 'roles-device' }),
  'chat.create': (x) => ({ kind: 'consult', consult: x.consult }),
  'chat.list': () => ({}),
  'chat.get': () => ({ conversation: 'm_none' }),
  'chat.members.add': () => ({ conversation: 'm_none', user: { sub: 'x' }, role: 'partner' }),
  'chat.members.remove': () => ({ conversation: 'm_none', user: { sub: 'x' } }),
  'chat.send': () => ({ conversation: 'm_none', message: 'AA' }),
  'chat.sync': () => ({}),
  'chat.ack': () => ({ conversation: 'm_none', seq: 1 }),
  'chat.file.upload': () => ({ conversation: 'm_none', size: 10 }),
  'chat.file.download': () => ({ conversation: 'm_none', file: 'f_none' }),
  'mls.key_packages.upload': () => ({ key_packages: [] }),
  'mls.key_packages.status': () => ({}),
  'mls.key_packages.claim': () => ({ conversation: 'm_none', user: { sub: 'x' } }),
  'mls.group.create': () => ({ conversation: 'm_none', group_info: 'AA' }),
  'mls.commit': () => ({ conversation: 'm_none', commit: 'AA' }),
  'mls.proposal': () => ({ conversation: 'm_none', proposal: 'AA' }),
  'console.link': (x) => ({ consult: x.consult }),
};

// What an allowed request answers when it is not plainly `ok`: an answer with no offer
// outstanding is a state error, not a permission error.
const allowedCode = {
  'media.answer': 'bad_state',
  // Chat actions on a conversation that does not exist, or before the connection declared its
  // device: past the role check, refused by the state (the chat tests cover relationships).
  'chat.get': 'not_found',
  'chat.members.add': 'not_found',
  'chat.members.remove': 'not_found',
  'chat.send': 'bad_state',
  'chat.sync': 'bad_state',
  'chat.ack': 'bad_state',
  'chat.file.upload': 'bad_state',
  'chat.file.download': 'bad_state',
  'mls.key_packages.upload': 'bad_state',
  'mls.key_packages.status': 'bad_state',
  'mls.key_packages.claim': 'not_found',
  'mls.group.create': 'bad_state',
  'mls.commit': 'bad_state',
  'mls.proposal': 'bad_state',
};
// Media actions need the caller joined to the consult (and a publish connection for
// candidates); the preparation runs only for roles that may do them.
const mediaPrep = {
  'media.candidate': async (caller, x) => { await caller.ok('media.publish', { consult: x.consult, sdp: OFFER, e2ee: true }); },
};

test('role x action matrix matches docs/roles.md', async () => {
  const { roles, matrix } = readMatrix();
  assert.deepEqual(Object.keys(matrix).sort(), Object.keys(requests).sort(), 'every documented action is exercised');
  const env = await boot(['--rate', '100000', '--burst', '100000', '--relay-address', '127.0.0.1']);
  const mismatches = [];
  let checked = 0;
  try {
    const gp = await env.as(env.users.gp);
    for (const action of Object.keys(matrix)) {
      for (const role of roles) {
        const x = await prepare(env, gp);
        if (action === 'lobby.send_back') await gp.ok('lobby.admit', { consult: x.consult, participant: x.participant });
        let caller;
        if (role === 'unauthenticated') caller = await env.connect();
        else if (role === 'patient') caller = x.patient;
        else caller = await env.as(env.users[role]);
        const joins = action === 'consult.leave' || action.startsWith('media.');
        if (joins && matrix['consult.join'][role] === 'allow') {
          await caller.ok('consult.join', { consult: x.consult });
          // Media is for admitted participants (a patient in the lobby gets bad_state).
          if (role === 'patient' && action.startsWith('media.')) {
            await gp.ok('lobby.admit', { consult: x.consult, participant: x.participant });
          }
          if (mediaPrep[action]) await mediaPrep[action](caller, x);
        }
        const code = await caller.code(action, requests[action](x));
        const want = matrix[action][role];
        const expect = want === 'allow' ? (allowedCode[action] ?? 'ok')
          : role === 'unauthenticated' ? 'unauthenticated' : 'forbidden';
        checked++;
        if (code !== expect) mismatches.push(`${role} ${action}: got ${code}, matrix says ${want}`);
        if (caller !== x.patient) caller.close();
        x.patient.close();
      }
    }
  } finally {
    await env.close();
  }
  assert.deepEqual(mismatches, []);
  assert.equal(checked, roles.length * Object.keys(matrix).length);
});
