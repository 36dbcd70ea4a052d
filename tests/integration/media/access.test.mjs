// Media access control against the real spreekd relay, with werift peers (an independent WebRTC
// stack): no relay endpoints before admission, at most one publish and one subscribe connection
// per participant (a second connection of the same patient replaces the first), a receive-only
// participant receives, media ends at once when a patient is sent back and nothing of the
// lobby period reaches them after re-admission, remote candidates outside the allowed address
// ranges are dropped, and the relay's candidates name their m-section (docs/protocol.md 5.7).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { boot, consultWithPatient } from '../signaling/fixture.mjs';
import { Peer, sleep, waitFor } from './peer.mjs';

const GP_TAG = 0x6770;
const PT_TAG = 0x7074;

let env;
let gp;
let patient;
let consult;
let participant;
let sessionToken;
let gpPeer;
const peers = [];

const metric = async (name) => (await env.srv.metrics())[name] ?? 0;
const endpoints = () => metric('spk_relay_endpoints');
const media = (c) => c.events.filter((e) => e.type.startsWith('media.'));
// Answer errors other than "a newer offer is on its way" (bad_state for an older version).
const answerErrors = (p) => p.answerErrors.filter((e) => !/bad_state answer to offer/.test(e));

function peer(client, tag) {
  const p = new Peer(client, consult.id, tag);
  peers.push(p);
  return p;
}

// The first mid of a description's BUNDLE group and the index of its m-section.
function bundleTag(sdp) {
  const mid = /^a=group:BUNDLE (\S+)/m.exec(sdp)[1];
  const sections = sdp.split(/\r?\nm=/).slice(1);
  const index = sections.findIndex((s) => new RegExp(`\\r?\\na=mid:${mid}\\r?(\\n|$)`).test(s));
  return { mid, index };
}

before(async () => {
  // More connections per token than the default 8, so that the media limit is what holds.
  env = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0', '--max-connections-per-token', '32']);
  gp = await env.as(env.users.gp);
  ({ consult, patient, participant, sessionToken } = await consultWithPatient(env, gp));
  await patient.ok('consult.join', { consult: consult.id });
  gpPeer = peer(gp, GP_TAG);
  await gpPeer.start();
  gpPeer.startSending();
});

after(async () => {
  await Promise.allSettled(peers.map((p) => p.close()));
  await env?.close();
  // werift 0.24.4 keeps timers (timers/promises loops of closed connections) alive after
  // close(); leave once the results are in (node:test has set process.exitCode by then).
  setTimeout(() => process.exit(), 500).unref();
});

test('a patient in the lobby can set up no media connection and receives no media event', async () => {
  assert.ok(await waitFor(async () => (await endpoints()) === 2, 5000), 'the GP has two endpoints');
  const p = new Peer(patient, consult.id, PT_TAG);
  const offer = await p.publishOffer();
  const tries = [
    ['media.publish', { sdp: offer }],
    ['media.subscribe', {}],
    ['media.answer', { sdp: offer, version: 1 }],
    ['media.candidate', { pc: 'publish', candidate: 'candidate:1 1 udp 2130706431 127.0.0.1 9 typ host' }],
  ];
  for (const [type, fields] of tries) {
    const m = await patient.req(type, { consult: consult.id, ...fields });
    assert.equal(m.type, 'error', `${type} answered ${JSON.stringify(m)}`);
    assert.equal(m.code, 'bad_state', `${type}: ${m.code} ${m.message}`);
  }
  assert.equal(await patient.code('media.stop', { consult: consult.id }), 'ok', 'stop closes nothing');
  await p.close();
  await sleep(500);
  assert.equal(await endpoints(), 2, 'no relay endpoint for the waiting patient');
  assert.deepEqual(media(patient), [], 'no media event reaches the lobby');
  assert.equal(gpPeer.offers.length, 0, 'the GP is offered nothing: nobody else publishes');
});

test('the relay\'s candidates carry sdpMid and sdpMLineIndex', async () => {
  assert.ok(await waitFor(() => gpPeer.candEvents.some((e) => e.pc === 'publish' && e.candidate === ''), 5000),
    'end of candidates on the publish connection');
  const tag = bundleTag(gpPeer.answerSdp);
  const pub = gpPeer.candEvents.filter((e) => e.pc === 'publish');
  assert.ok(pub.length >= 2, JSON.stringify(pub));
  for (const e of pub) {
    assert.equal(e.sdpMid, tag.mid, JSON.stringify(e));
    assert.equal(e.sdpMLineIndex, tag.index, JSON.stringify(e));
  }
});

test('a receive-only participant admitted before subscribing receives the others', async () => {
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  await patient.next('admitted');
  const watcher = peer(patient, PT_TAG);
  await watcher.start({ publish: false });
  const ok = await waitFor(() => {
    const c = watcher.countFrom(GP_TAG);
    return c.video >= 30 && c.audio >= 50;
  }, 10000);
  assert.ok(ok, `the receive-only patient gets the GP: ${JSON.stringify(watcher.summary())}`);
  assert.deepEqual(answerErrors(watcher), []);
  const offered = watcher.offers.flatMap((o) => o.streams.map((s) => s.participant));
  assert.ok(offered.length > 0 && offered.every((pid) => pid !== participant.id), JSON.stringify(offered));
  // Its candidates name the subscribe connection's first m-section.
  const tag = bundleTag(watcher.offers[0].sdp);
  const sub = watcher.candEvents.filter((e) => e.pc === 'subscribe');
  assert.ok(sub.length >= 1, JSON.stringify(watcher.candEvents));
  for (const e of sub) {
    assert.equal(e.sdpMid, tag.mid, JSON.stringify(e));
    assert.equal(e.sdpMLineIndex, tag.index, JSON.stringify(e));
  }
  await watcher.close();
  assert.equal(await patient.code('media.stop', { consult: consult.id }), 'ok');

  // The usual meekijkconsult: a specialist who only watches (admitted on joining).
  await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
  await gp.ok('specialist.invite', { consult: consult.id, specialist: env.users.specialist.sub });
  const spec = await env.as(env.users.specialist);
  await spec.ok('consult.join', { consult: consult.id });
  const looker = peer(spec, 0x5350);
  await looker.start({ publish: false });
  const seen = await waitFor(() => looker.countFrom(GP_TAG).video >= 30, 10000);
  assert.ok(seen, `the watching specialist gets the GP: ${JSON.stringify(looker.summary())}`);
  await looker.close();
  await spec.ok('consult.leave', { consult: consult.id });
});

test('one publish and one subscribe connection per participant: another connection replaces them', async () => {
  const first = peer(patient, PT_TAG);
  await first.start();
  first.startSending();
  assert.ok(await waitFor(() => gpPeer.countFrom(PT_TAG).video >= 10, 10000), 'the GP receives the patient');
  assert.ok(await waitFor(async () => (await endpoints()) === 4, 5000), `4 endpoints: ${await endpoints()}`);

  // The same patient on a second connection (a second tab, or a reload before the first one
  // timed out) with the session token.
  const again = await env.connect();
  await again.ok('auth', { token: sessionToken });
  await again.ok('consult.join', { consult: consult.id });
  const second = peer(again, PT_TAG + 1);
  await second.start({ subscribe: false });
  const replaced = await waitFor(() => first.stateEvents.find((e) => e.pc === 'publish' && e.state === 'closed'), 5000);
  assert.ok(replaced, `the first connection is told: ${JSON.stringify(first.stateEvents)}`);
  assert.equal(replaced.detail, 'replaced');
  await second.client.ok('media.subscribe', { consult: consult.id });
  assert.ok(await waitFor(() => first.stateEvents.some((e) => e.pc === 'subscribe' && e.state === 'closed'), 5000),
    JSON.stringify(first.stateEvents));
  // The older connection cannot take it back (a late request of a connection the client has
  // already replaced must not win).
  const back = await patient.req('media.subscribe', { consult: consult.id });
  assert.equal(back.code, 'bad_state', JSON.stringify(back));
  first.stopSending();
  second.startSending();
  assert.ok(await waitFor(() => gpPeer.countFrom(PT_TAG + 1).video >= 10, 10000),
    `the GP receives the second connection: ${JSON.stringify(gpPeer.summary())}`);
  assert.ok(await waitFor(async () => (await endpoints()) === 4, 5000), `still 4 endpoints: ${await endpoints()}`);

  // Ten more connections of the same token cannot fill the consult.
  const extra = [];
  for (let i = 0; i < 10; i++) {
    const c = await env.connect();
    await c.ok('auth', { token: sessionToken });
    await c.ok('consult.join', { consult: consult.id });
    const p = peer(c, PT_TAG + 2 + i);
    await p.start();
    extra.push(p);
    const n = await waitFor(async () => (await endpoints()) === 4, 3000);
    assert.ok(n, `endpoints after ${i + 1} more: ${await endpoints()}`);
  }
  assert.ok(await waitFor(async () => (await endpoints()) === 4, 5000), `back to 4 endpoints: ${await endpoints()}`);
  // The GP can still set up media again.
  assert.equal(await gp.code('media.subscribe', { consult: consult.id }), 'ok');
  assert.deepEqual(media(again).filter((e) => e.type === 'media.state' && e.state === 'failed'), []);
  for (const p of extra) {
    await p.close();
    p.client.close(); // its connection closes: the server ends its media
  }
  await second.close();
  await first.close();
  assert.equal(await patient.code('media.stop', { consult: consult.id }), 'ok');
  assert.equal(await again.code('media.stop', { consult: consult.id }), 'ok');
  again.close();
  assert.ok(await waitFor(async () => (await endpoints()) === 2, 5000), `only the GP's: ${await endpoints()}`);
  gpPeer.answerErrors.length = 0; // the GP's werift subscribe connection was replaced above
});

test('remote candidates outside the allowed ranges are dropped and counted', async () => {
  const before = await metric('spk_relay_candidates_refused_total');
  for (const addr of ['127.0.0.2', '169.254.169.254', '224.0.0.251', '10.1.2.3', 'x.local']) {
    const m = await gp.req('media.candidate', {
      consult: consult.id, pc: 'publish', candidate: `candidate:1 1 udp 2130706431 ${addr} 4000 typ host`,
    });
    assert.equal(m.type, 'ok', `${addr}: ${JSON.stringify(m)}`);
  }
  assert.equal(await metric('spk_relay_candidates_refused_total'), before + 5);
  const ok = await gp.req('media.candidate', {
    consult: consult.id, pc: 'publish', candidate: 'candidate:1 1 udp 2130706431 127.0.0.1 4000 typ host',
  });
  assert.equal(ok.type, 'ok');
  assert.equal(await metric('spk_relay_candidates_refused_total'), before + 5, 'the relay\'s own address is accepted');
  const bad = await gp.req('media.candidate', { consult: consult.id, pc: 'publish', candidate: 'candidate:nonsense' });
  assert.equal(bad.code, 'bad_message');
});

test('sent back: media ends at once; nothing of the lobby period reaches the patient later', async () => {
  const gpNow = new Peer(gp, consult.id, GP_TAG + 100);
  peers.push(gpNow);
  await gp.ok('media.stop', { consult: consult.id });
  await gpPeer.close();
  gpPeer = gpNow;
  await gpPeer.start();
  gpPeer.startSending();
  const pt = peer(patient, PT_TAG);
  await pt.start();
  pt.startSending();
  assert.ok(await waitFor(() => pt.countFrom(GP_TAG + 100).video >= 20 && gpPeer.countFrom(PT_TAG).video >= 20, 10000),
    `both ways: ${JSON.stringify(pt.summary())}`);
  const n0 = await endpoints();
  assert.equal(n0, 4);

  await gp.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
  await patient.next('sent_back');
  assert.ok(await waitFor(async () => (await endpoints()) === 2, 2000), `the patient's endpoints close: ${await endpoints()}`);
  const seen = pt.countFrom(GP_TAG + 100).video;
  const video = [...pt.received.video.values()].find((r) => r.tags.has(GP_TAG + 100));
  const lastSeq = video.lastSeq;
  const lastCounter = video.last;
  const gpSsrc = gpPeer.ssrcs().video;
  await sleep(2000);
  assert.equal(pt.countFrom(GP_TAG + 100).video, seen, 'nothing after sent_back');
  // The GP's subscribe connection is offered the patient's m-sections inactive and can answer.
  assert.ok(await waitFor(() => gpPeer.offers.length >= 2, 3000), 'a new offer to the GP');
  const last = gpPeer.offers.at(-1);
  assert.deepEqual(last.streams, [], JSON.stringify(last.streams));
  await sleep(300);
  assert.deepEqual(answerErrors(gpPeer), [], 'the GP answered the offer without streams');
  assert.deepEqual(media(patient).filter((e) => e.type === 'media.offer' && e.version > 1), [],
    'no media.offer to the waiting patient');
  await pt.close();

  const admitCounter = gpPeer.sent.video;
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  await patient.next('admitted');
  const back = peer(patient, PT_TAG + 50);
  await back.start();
  back.startSending();
  assert.ok(await waitFor(() => back.countFrom(GP_TAG + 100).video >= 10, 10000), JSON.stringify(back.summary()));
  const now = back.received.video.get(gpSsrc);
  // Everything between the last packet before sent_back and the first after re-admission.
  const gap = [];
  for (let s = (lastSeq + 1) & 0xffff; s !== now.firstSeq; s = (s + 1) & 0xffff) gap.push(s);
  assert.ok(gap.length > 30, `the lobby period: ${gap.length} packets`);
  await back.nack(gpSsrc, gap);
  await sleep(1000);
  // The GP's packets numbered from the patient's last before sent_back to the admission.
  const leaked = [...now.counters].filter((c) => c > lastCounter && c < admitCounter);
  assert.deepEqual(leaked, [], `lobby-period packets reached the re-admitted patient: ${leaked.length}`);
  // And the GP's next offer applied: it receives the patient again.
  assert.ok(await waitFor(() => gpPeer.countFrom(PT_TAG + 50).video >= 10, 10000), JSON.stringify(gpPeer.summary()));
  assert.deepEqual(answerErrors(gpPeer), []);
  await back.close();
});

test('access that ends while connected ends media: a watching specialist whose consent is withdrawn', async () => {
  const spec = await env.as(env.users.specialist);
  await spec.ok('consult.join', { consult: consult.id });
  const looker = peer(spec, 0x5351);
  await looker.start({ publish: false });
  assert.ok(await waitFor(() => looker.countFrom(GP_TAG + 100).video >= 10, 10000), JSON.stringify(looker.summary()));
  const n = await endpoints();
  await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: false, method: 'verbal' });
  const ended = await spec.until('access.ended', () => true);
  assert.equal(ended.reason, 'consent_withdrawn');
  assert.ok(await waitFor(async () => (await endpoints()) === n - 1, 2000), `the specialist's endpoint closes: ${await endpoints()}`);
  const got = looker.countFrom(GP_TAG + 100).video;
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(looker.countFrom(GP_TAG + 100).video <= got + 1, 'nothing more reaches the specialist');
  assert.equal((await spec.req('media.subscribe', { consult: consult.id })).type, 'error');
  await looker.close();
});

// The other ways access ends while connected end media the same way: a remote GP whose
// delegation is revoked, and a GP whose token expires (with the server's 60 s leeway: the token
// below expired 56 s ago and is past its leeway 4 s from now).
for (const how of ['delegation revoked', 'token expired']) {
  test(`access that ends while connected ends media: ${how}`, async () => {
    const t = Math.floor(Date.now() / 1000);
    let watcher;
    if (how === 'delegation revoked') {
      const { delegation } = await gp.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: t + 3600 });
      watcher = await env.as(env.users.remote_gp);
      await watcher.ok('consult.join', { consult: consult.id, practice: 'praktijk-a' });
      watcher.revoke = () => gp.ok('delegation.revoke', { delegation: delegation.id });
    } else {
      watcher = await env.as({ ...env.users.gp, sub: 'gp-2', name: 'Dr. Tweede', iat: t - 120, nbf: t - 120, exp: t - 56 });
      await watcher.ok('consult.join', { consult: consult.id });
      watcher.revoke = async () => {};
    }
    const looker = peer(watcher, how === 'token expired' ? 0x5353 : 0x5352);
    await looker.start({ publish: false });
    assert.ok(await waitFor(() => looker.countFrom(GP_TAG + 100).video >= 10, 10000), JSON.stringify(looker.summary()));
    const n = await endpoints();
    await watcher.revoke();
    const ended = await watcher.until('access.ended', () => true, 10000);
    assert.equal(ended.reason, how === 'token expired' ? 'token_expired' : 'delegation_ended');
    assert.ok(await waitFor(async () => (await endpoints()) === n - 1, 2000), `the endpoint closes: ${await endpoints()}`);
    const got = looker.countFrom(GP_TAG + 100).video;
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(looker.countFrom(GP_TAG + 100).video <= got + 1, 'nothing more arrives');
    await looker.close();
  });
}

test('leaving ends the patient\'s media; ending the consult ends everyone\'s', async () => {
  const pt = peer(patient, PT_TAG + 60);
  await pt.start();
  assert.ok(await waitFor(async () => (await endpoints()) === 4, 5000), `${await endpoints()}`);
  await patient.ok('consult.leave', { consult: consult.id });
  assert.ok(await waitFor(async () => (await endpoints()) === 2, 2000), `after leave: ${await endpoints()}`);
  await gp.ok('consult.end', { consult: consult.id });
  assert.ok(await waitFor(async () => (await endpoints()) === 0, 2000), `after end: ${await endpoints()}`);
});
