// Interop with an independent WebRTC stack: two werift peers (a GP and a patient who came in
// through an invite) publish synthetic VP8 and Opus RTP to the real spreekd relay on loopback
// and subscribe. Each must receive the other's packets, unchanged (SSRC and payload counters);
// the patient sets up media once admitted, and nothing flows after they are sent back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { boot, consultWithPatient } from '../signaling/fixture.mjs';
import { Peer, sleep, waitFor } from './peer.mjs';

const GP_TAG = 0x6770; // "gp"
const PT_TAG = 0x7074; // "pt"

let env;
let gp;
let patient;
let consult;
let participant;
let gpPeer;
let ptPeer;

const forwarded = async () => (await env.srv.metrics())['spk_relay_rtp_forwarded_total'] ?? 0;
const received = async () => (await env.srv.metrics())['spk_relay_rtp_received_total'] ?? 0;

before(async () => {
  env = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0']);
  gp = await env.as(env.users.gp);
  ({ consult, patient, participant } = await consultWithPatient(env, gp));
  await patient.ok('consult.join', { consult: consult.id });
});

after(async () => {
  await gpPeer?.close();
  await ptPeer?.close();
  await env?.close();
});

test('werift publishes to the relay; nothing is forwarded while the patient waits', async () => {
  gpPeer = new Peer(gp, consult.id, GP_TAG);
  const gpAnswer = await gpPeer.start();
  gpPeer.startSending();
  // The patient in the lobby can set up no relay connection (docs/protocol.md 5.7).
  ptPeer = new Peer(patient, consult.id, PT_TAG);
  const early = await patient.req('media.publish', { consult: consult.id, sdp: await ptPeer.publishOffer() });
  assert.equal(early.code, 'bad_state', JSON.stringify(early));
  assert.equal((await patient.req('media.subscribe', { consult: consult.id })).code, 'bad_state');
  const up = await waitFor(() => gpPeer.pub.connectionState === 'connected', 20000);
  assert.ok(up, `GP publish connected: ${JSON.stringify(gpPeer.states)}`);
  const rx = await waitFor(async () => (await received()) > 50, 10000);
  assert.ok(rx, `relay received RTP: ${await received()}`);
  assert.equal(await forwarded(), 0, 'nothing forwarded: nobody else is admitted');
  assert.equal(gpPeer.offers.length, 0, 'no offer to the GP while no admitted participant publishes');
  assert.match(gpAnswer, /^a=group:BUNDLE /m, 'answer bundles');
  assert.match(gpAnswer, /^a=rtpmap:\d+ VP8\/90000/m, 'answer keeps VP8');
  assert.match(gpAnswer, /^a=rtpmap:\d+ opus\/48000\/2/m, 'answer keeps Opus');
  assert.match(gpAnswer, /^a=setup:passive/m, 'relay answers passive');
});

test('after admission each peer receives the other\'s audio and video through the relay', async () => {
  const before = await forwarded();
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  await ptPeer.start();
  ptPeer.startSending();
  const connected = (pc) => pc.connectionState === 'connected';
  const up = await waitFor(() => connected(ptPeer.pub) && connected(ptPeer.sub) && connected(gpPeer.sub), 20000);
  assert.ok(up, `connected: gp ${JSON.stringify(gpPeer.states)} patient ${JSON.stringify(ptPeer.states)}`);
  assert.equal(ptPeer.offers.length, 1, 'the patient is offered the GP\'s streams');
  assert.deepEqual(ptPeer.offers[0].streams.map((x) => x.kind).sort(), ['audio', 'video']);
  const enough = (peer, tag) => () => {
    const c = peer.countFrom(tag);
    return c.video >= 30 && c.audio >= 50;
  };
  const ok = await waitFor(async () => enough(gpPeer, PT_TAG)() && enough(ptPeer, GP_TAG)(), 20000);
  const gpGot = gpPeer.countFrom(PT_TAG);
  const ptGot = ptPeer.countFrom(GP_TAG);
  assert.ok(gpPeer.sub.connectionState === 'connected', `GP subscribe connected: ${JSON.stringify(gpPeer.states)}`);
  assert.ok(ok, `both directions flow: gp ${JSON.stringify(gpPeer.summary())} patient ${JSON.stringify(ptPeer.summary())}`);

  // The relay forwards packets unchanged: the SSRCs are the publishers' own.
  const gpSsrc = gpPeer.ssrcs();
  const ptSsrc = ptPeer.ssrcs();
  assert.deepEqual(ptGot.ssrcs, { video: [gpSsrc.video], audio: [gpSsrc.audio] }, 'patient sees the GP\'s SSRCs');
  assert.deepEqual(gpGot.ssrcs, { video: [ptSsrc.video], audio: [ptSsrc.audio] }, 'GP sees the patient\'s SSRCs');

  // Nobody receives their own media back, and every payload is one of ours.
  assert.equal(gpPeer.countFrom(GP_TAG).video + gpPeer.countFrom(GP_TAG).audio, 0, 'GP gets no echo');
  assert.equal(ptPeer.countFrom(PT_TAG).video + ptPeer.countFrom(PT_TAG).audio, 0, 'patient gets no echo');
  assert.equal(gpPeer.foreign + ptPeer.foreign, 0, 'no unknown payloads');

  // Counters increase: the last packet seen is later than the first, and nearly all arrived
  // (loopback: allow a little loss around admission).
  for (const [peer, from] of [[gpPeer, ptPeer], [ptPeer, gpPeer]]) {
    for (const kind of ['video', 'audio']) {
      const r = peer.received[kind].get(from.ssrcs()[kind]);
      const span = r.last - r.first + 1;
      assert.ok(r.last > r.first, `${kind} counters advance: ${JSON.stringify(r)}`);
      assert.ok(r.count >= span * 0.9, `${kind}: ${r.count} of ${span} packets arrived`);
      assert.ok(r.first <= from.sent[kind], `${kind} first counter ${r.first} <= sent ${from.sent[kind]}`);
    }
  }

  // The subscribe offers name the publisher per m-section, never the subscriber itself.
  const gpStreams = [...gpPeer.streams.values()];
  assert.deepEqual(gpStreams.map((s) => s.participant), [participant.id, participant.id],
    `the GP's offer carries the patient's audio and video: ${JSON.stringify(gpStreams)}`);
  const ptStreams = [...ptPeer.streams.values()];
  assert.equal(ptStreams.length, 2);
  assert.ok(ptStreams.every((s) => s.participant !== participant.id), JSON.stringify(ptStreams));
  assert.deepEqual(gpPeer.answerErrors, []);
  assert.deepEqual(ptPeer.answerErrors, []);

  const grown = await waitFor(async () => (await forwarded()) > before + 100, 10000);
  assert.ok(grown, `spk_relay_rtp_forwarded_total grows: ${before} -> ${await forwarded()}`);
});

test('sent back to the lobby, the patient stops receiving', async () => {
  await gp.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
  await sleep(500);
  const a = ptPeer.countFrom(GP_TAG);
  const b = gpPeer.countFrom(PT_TAG);
  await sleep(1500);
  const a2 = ptPeer.countFrom(GP_TAG);
  const b2 = gpPeer.countFrom(PT_TAG);
  assert.equal(a2.video + a2.audio, a.video + a.audio, 'patient receives nothing after send_back');
  assert.equal(b2.video + b2.audio, b.video + b.audio, 'GP receives nothing from the patient after send_back');
});
