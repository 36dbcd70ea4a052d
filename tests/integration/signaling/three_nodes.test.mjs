// Three spreekd nodes on one PostgreSQL database with events between them over Redis (run under
// tests/lib/with_postgres.sh and tests/lib/with_redis.sh; issue: several nodes). Each node has
// its own data directory with the keys an operator distributes and its own port on loopback.
// A GP on node A, the patient on node B, a specialist on node C:
//  - the patient waits in the lobby on B and the GP on A sees them, online; the admission on A
//    reaches the patient on B; rosters agree on all three nodes;
//  - chat between devices on A and B (Welcome, application messages both ways);
//  - node B is killed (SIGKILL): the patient reconnects to C with the session token and finds
//    the consult, their admission and every chat message sent meanwhile;
//  - both sides of the chat writing at once on two nodes: nothing refused, nothing lost;
//  - two devices each with 25 messages in flight into one conversation on two nodes: every
//    one stored once with a sequence number of its own (a node whose batch finds a number
//    taken writes it again from the store's last one);
//  - two patients racing for one invite on two nodes: exactly one gets in;
//  - Redis dropping the nodes' connections: they connect again and events flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ctl } from '../lib/ctl.mjs';
import { startNodes } from '../lib/nodes.mjs';
import { ChatDevice, chatBetween, loadMls } from '../chat/lib.mjs';

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
const SPEC = { sub: 'spec-1', name: 'Dr. Dermatoloog', role: 'specialist' };
const skip = (!process.env.SPK_TEST_PG || !process.env.SPK_TEST_REDIS) &&
  'needs SPK_TEST_PG and SPK_TEST_REDIS (tests/lib/with_postgres.sh, tests/lib/with_redis.sh)';

const nodes = (names) => startNodes(names, { redis: process.env.SPK_TEST_REDIS });

const patientIn = (e, state) => e.participants.some((p) => p.role === 'patient' && p.state === state && p.online);

test('GP on A, patient on B, specialist on C: lobby, admission, chat; B dies and the patient resumes on C', { skip, timeout: 120000 }, async () => {
  const env = await nodes(['a', 'b', 'c']);
  const [A, B, C] = env.srv;
  const mls = await loadMls();
  try {
    const gp = await env.connect(A, env.token(GP));
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-4711', title: 'Beeldbellen' });
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    await gp.ok('consult.join', { consult: consult.id });

    // The patient redeems the invite on B and waits; the GP on A sees them in the lobby, online.
    const patient = await env.connect(B);
    const red = await patient.ok('invite.redeem', { invite: invite.code, name: 'Sanne de Vries' });
    const lobby = await gp.until('lobby.update', (e) => e.lobby.length === 1 && e.lobby[0].online);
    assert.equal(lobby.lobby[0].name, 'Sanne de Vries');

    // Admitted on A; the patient on B is told and sees the roster.
    await gp.ok('lobby.admit', { consult: consult.id, participant: red.participant.id });
    const adm = await patient.next('admitted');
    assert.equal(adm.participant.state, 'admitted');
    await patient.until('roster', (e) => e.participants.length === 2 && e.participants.every((p) => p.online));
    await gp.until('roster', (e) => patientIn(e, 'admitted'));

    // A specialist on C is told of the invitation made on A and joins; A and B see them online.
    const spec = await env.connect(C, env.token(SPEC));
    await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
    await gp.ok('specialist.invite', { consult: consult.id, specialist: SPEC.sub, name: SPEC.name });
    const invited = await spec.next('specialist.invited', 10000);
    assert.equal(invited.consult, consult.id);
    await spec.ok('consult.join', { consult: consult.id });
    const withSpec = (e) => e.participants.length === 3 && e.participants.some((p) => p.role === 'specialist' && p.online);
    await patient.until('roster', withSpec);
    await gp.until('roster', withSpec);
    const r = await spec.ok('consult.get', { consult: consult.id });
    assert.equal(r.participants.find((p) => p.role === 'patient').state, 'admitted');

    // Chat: the group is made on A, the patient's device on B gets its Welcome over the bus.
    const { conv, gpDev, ptDev } = await chatBetween(mls, gp, patient, consult.id, red.participant.id);
    for (let i = 0; i < 5; i++) {
      assert.equal((await gpDev.send(conv, `vraag ${i}`)).type, 'ok');
      assert.equal((await ptDev.send(conv, `antwoord ${i}`)).type, 'ok');
    }
    await ptDev.until(() => ptDev.texts(conv).length === 5, 10000);
    await gpDev.until(() => gpDev.texts(conv).length === 5, 10000);
    assert.deepEqual(ptDev.texts(conv), [0, 1, 2, 3, 4].map((i) => `vraag ${i}`));
    assert.deepEqual(gpDev.texts(conv), [0, 1, 2, 3, 4].map((i) => `antwoord ${i}`));
    await ptDev.idle();

    // A hears B and C; events went both ways.
    const m = await A.metrics();
    assert.equal(m.spk_bus_nodes, 2);
    assert.ok(m['spk_bus_events_total{dir="out"}'] > 0 && m['spk_bus_events_total{dir="in"}'] > 0);
    assert.equal(m['spk_bus_events_total{dir="bad"}'], 0);

    // Node B dies. The GP writes on while the patient is away, and sees them go offline once
    // B has not been heard for a while.
    B.kill();
    await B.exited;
    for (let i = 0; i < 3; i++) assert.equal((await gpDev.send(conv, `terwijl weg ${i}`)).type, 'ok');
    await gp.until('roster', (e) => e.participants.some((p) => p.role === 'patient' && !p.online), 20000);

    // The patient reconnects to C with the session token: the consult, the admission and the
    // messages written meanwhile are there.
    const again = await env.connect(C);
    await again.ok('auth', { token: red.session_token });
    const j = await again.ok('consult.join', { consult: consult.id });
    const me = j.participants.find((p) => p.id === red.participant.id);
    assert.equal(me.state, 'admitted');
    await gp.until('roster', (e) => patientIn(e, 'admitted'));
    await ptDev.moveTo(again);
    await ptDev.sync(conv);
    await ptDev.until(() => ptDev.texts(conv).length === 8, 10000);
    assert.deepEqual(ptDev.texts(conv).slice(5), [0, 1, 2].map((i) => `terwijl weg ${i}`));
    // ... and chat goes on across A and C.
    assert.equal((await ptDev.send(conv, 'weer terug')).type, 'ok');
    await gpDev.until(() => gpDev.texts(conv).includes('weer terug'), 10000);
    // Both write at once on two nodes (A and C): every message is stored once, none is refused,
    // and each side gets the other's in the order sent.
    const burst = async (d, who) => {
      for (let i = 0; i < 10; i++) assert.equal((await d.send(conv, `${who} ${i}`)).type, 'ok', `${who} ${i}`);
    };
    await Promise.all([burst(gpDev, 'tegelijk gp'), burst(ptDev, 'tegelijk pt')]);
    const ten = (who) => [...Array(10).keys()].map((i) => `${who} ${i}`);
    const from = (d, who) => d.texts(conv).filter((t) => t.startsWith(who));
    await ptDev.until(() => from(ptDev, 'tegelijk gp').length === 10, 15000);
    await gpDev.until(() => from(gpDev, 'tegelijk pt').length === 10, 15000);
    assert.deepEqual(from(ptDev, 'tegelijk gp'), ten('tegelijk gp'));
    assert.deepEqual(from(gpDev, 'tegelijk pt'), ten('tegelijk pt'));
    assert.deepEqual(ptDev.errors, []);
    assert.deepEqual(gpDev.errors, []);

    // Ending the consult on A ends it for the patient on C and the specialist.
    await gp.ok('consult.end', { consult: consult.id });
    await again.next('consult.ended');
    await spec.next('consult.ended');
    const v = ctl(env.dirs[2], ['--store', env.store, 'audit', 'verify']);
    assert.equal(v.status, 0, v.stderr);
  } finally {
    await env.close();
  }
});

test('messages sent at once on two nodes into one conversation: each stored once', { skip, timeout: 60000 }, async () => {
  const env = await nodes(['a', 'b']);
  const [a, b] = env.srv;
  const mls = await loadMls();
  try {
    const gpc = await env.connect(a, env.token(GP));
    const { consult } = await gpc.ok('consult.create', { patient: 'pseudo-send-race' });
    const { conversation } = await gpc.ok('chat.create', { kind: 'consult', consult: consult.id });
    const conv = conversation.id;
    const laptop = await ChatDevice.open(gpc, mls, 'gp-laptop');
    await laptop.sync();
    await laptop.createGroup(conv);
    const deskA = await env.connect(a, env.token(GP));
    const desk = await ChatDevice.open(deskA, mls, 'gp-desktop');
    await desk.sync();
    await laptop.addDevices(conv, { sub: GP.sub });
    await desk.until(() => desk.groups.has(conv));
    await desk.idle();
    deskA.close();
    await desk.moveTo(await env.connect(b, env.token(GP)));
    await desk.sync();
    const devices = [laptop, desk];
    await Promise.all(devices.map((d) => d.idle()));
    const N = 25;
    const answers = await Promise.all(devices.flatMap((d, k) => Array.from({ length: N }, (_, i) =>
      d.client.req('chat.send', { conversation: conv, message: b64u(d.groups.get(conv).encrypt(`${k}:${i}`)) }))));
    assert.deepEqual(answers.filter((m) => m.type !== 'ok'), []);
    const seqs = answers.map((m) => m.seq);
    assert.equal(new Set(seqs).size, 2 * N, `sequence numbers repeat: ${seqs}`);
    // Each device finds the other's messages, each once.
    for (const [k, d] of devices.entries()) {
      await d.sync(conv);
      const other = `${1 - k}:`;
      await d.until(() => d.texts(conv).filter((t) => t.startsWith(other)).length >= N, 10000);
      const got = d.texts(conv).filter((t) => t.startsWith(other));
      assert.equal(new Set(got).size, N, `${d.device}: ${got}`);
      assert.equal(got.length, N, `${d.device}: ${got}`);
    }
    assert.deepEqual(laptop.errors, []);
    assert.deepEqual(desk.errors, []);
  } finally {
    await env.close();
  }
});

test('two patients race for one invite on nodes A and C: exactly one gets in, A sees them', { skip, timeout: 60000 }, async () => {
  const env = await nodes(['a', 'c']);
  const [A, C] = env.srv;
  try {
    const gp = await env.connect(A, env.token(GP));
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-race' });
    await gp.ok('consult.join', { consult: consult.id });
    for (let i = 0; i < 6; i++) {
      const { invite } = await gp.ok('invite.create', { consult: consult.id });
      const p1 = await env.connect(A);
      const p2 = await env.connect(C);
      const both = await Promise.all([
        p1.req('invite.redeem', { invite: invite.code, name: `Eerste ${i}` }),
        p2.req('invite.redeem', { invite: invite.code, name: `Tweede ${i}` }),
      ]);
      const won = both.filter((m) => m.type === 'ok');
      assert.equal(won.length, 1, `round ${i}: ${JSON.stringify(both)}`);
      assert.equal(both.find((m) => m.type !== 'ok').code, 'invite_used');
      // The GP on A sees the winner waiting, whichever node it redeemed on.
      await gp.until('lobby.update', (e) => e.lobby.some((p) => p.id === won[0].participant.id && p.online));
      p1.close();
      p2.close();
    }
  } finally {
    await env.close();
  }
});

test('Redis drops the nodes\' connections: they connect again and events flow', { skip, timeout: 60000 }, async () => {
  const env = await nodes(['a', 'b']);
  const [A, B] = env.srv;
  try {
    const gp = await env.connect(A, env.token(GP));
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-redis' });
    await gp.ok('consult.join', { consult: consult.id });
    const [host, port] = process.env.SPK_TEST_REDIS.split(':');
    for (const type of ['pubsub', 'normal']) {
      const r = spawnSync('redis-cli', ['-h', host, '-p', port, 'CLIENT', 'KILL', 'TYPE', type], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    const subscribed = (s) => s.grep(/^bus: subscribed/).length;
    const until = Date.now() + 15000;
    while ((subscribed(A) < 2 || subscribed(B) < 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.ok(subscribed(A) >= 2 && subscribed(B) >= 2, 'both nodes subscribed again');
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    const patient = await env.connect(B);
    await patient.ok('invite.redeem', { invite: invite.code, name: 'Na de storing' });
    await gp.until('lobby.update', (e) => e.lobby.some((p) => p.name === 'Na de storing' && p.online), 10000);
  } finally {
    await env.close();
  }
});
