// The consult's end-to-end encryption requirement (docs/protocol.md §5.7 "End-to-end
// encryption"), against spreekd with its default (media_e2ee 1): consult objects say `e2ee`,
// media.publish and media.subscribe without "e2ee": true are refused with e2ee_required and
// set nothing up, a malformed field is bad_message, and the connection carries on.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { boot, consultWithPatient } from '../signaling/fixture.mjs';
import { Peer } from './peer.mjs';

let env;
let gp;
let patient;
let consult;
let participant;
const peers = [];

const endpoints = async () => (await env.srv.metrics()).spk_relay_endpoints ?? 0;

before(async () => {
  env = await boot(['--relay-address', '127.0.0.1']);
  gp = await env.as(env.users.gp);
  ({ consult, patient, participant } = await consultWithPatient(env, gp));
  await patient.ok('consult.join', { consult: consult.id });
});

after(async () => {
  await Promise.allSettled(peers.map((p) => p.close()));
  await env?.close();
  setTimeout(() => process.exit(), 500).unref(); // werift keeps timers alive after close()
});

test('consult objects say that media must be end-to-end encrypted', async () => {
  assert.equal(consult.e2ee, true, JSON.stringify(consult));
  const seen = await patient.ok('consult.get', { consult: consult.id });
  assert.equal(seen.consult.e2ee, true);
  const listed = await gp.ok('consult.list', {});
  assert.ok(listed.consults.every((c) => c.e2ee === true), JSON.stringify(listed.consults));
});

test('publish and subscribe without "e2ee": true are refused and set nothing up', async () => {
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  await patient.next('admitted');
  const p = new Peer(patient, consult.id, 0x7074);
  peers.push(p);
  const sdp = await p.publishOffer();
  const before = await endpoints();
  const cases = [
    ['media.publish', { sdp }, 'e2ee_required'],
    ['media.publish', { sdp, e2ee: false }, 'e2ee_required'],
    ['media.publish', { sdp, e2ee: 'yes' }, 'bad_message'],
    ['media.subscribe', {}, 'e2ee_required'],
    ['media.subscribe', { e2ee: 1 }, 'bad_message'],
  ];
  for (const [type, fields, code] of cases) {
    const m = await patient.req(type, { consult: consult.id, ...fields });
    assert.equal(m.type, 'error', `${type} ${JSON.stringify(fields.e2ee)}: ${JSON.stringify(m)}`);
    assert.equal(m.code, code, `${type} ${JSON.stringify(fields.e2ee)}: ${m.message}`);
  }
  assert.equal(await endpoints(), before, 'no relay endpoint for a refused request');
  assert.equal(await patient.code('ping', {}), 'ok', 'the connection carries on');
  const ok = await patient.req('media.publish', { consult: consult.id, sdp, e2ee: true });
  assert.equal(ok.type, 'ok', JSON.stringify(ok));
  assert.match(ok.sdp, /^v=0/);
  assert.equal(await patient.code('media.subscribe', { consult: consult.id, e2ee: true }), 'ok');
  assert.equal(await patient.code('media.stop', { consult: consult.id }), 'ok');
});
