// C members (spk_mls through `spreekload --chat-agent`, cdevice.mjs) and members running the
// browser's MLS library in node (lib.mjs) in one conversation, for every kind: create, add,
// send both ways, an offline device catching up in order, two members committing the same
// epoch at once (one wins, the other re-bases and succeeds), remove, and a removed member
// reading nothing new and sending nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boot } from '../signaling/fixture.mjs';
import { ChatDevice, loadMls } from './lib.mjs';
import { Agent, CDevice } from './cdevice.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mls = await loadMls();
const hex = (b) => Buffer.from(b).toString('hex');
const b64u = (b) => Buffer.from(b).toString('base64url');
const subOf = (d) => d.identity.split('\n')[2];
const isC = (d) => d instanceof CDevice;

// ---- one member device, C or JS ----

// signIn: { claims } | { invite, name } | { session }
async function device(env, agent, impl, signIn, name) {
  let token = signIn.session;
  if (signIn.claims) token = env.token(signIn.claims);
  if (impl === 'c') {
    const d = await CDevice.open(agent, signIn.invite ? { invite: signIn.invite, name: signIn.name } : { token }, name);
    d.session = signIn.invite ? d.sessionToken : token;
    return d;
  }
  const client = await env.connect();
  let participant = null;
  if (signIn.invite) {
    const r = await client.ok('invite.redeem', { invite: signIn.invite, name: signIn.name });
    token = r.session_token;
    participant = r.participant.id;
  } else {
    await client.ok('auth', { token });
  }
  const d = await ChatDevice.open(client, mls, name);
  d.session = token;
  d.participant = participant;
  return d;
}

// The device's connection, for plain protocol requests (req / ok).
const conn = (d) => (isC(d) ? d : d.client);

const inGroup = (d, conv) => (isC(d) ? d.inGroup.has(conv) : d.groups.has(conv));

async function authenticator(d, conv) {
  if (isC(d)) return (await d.state(conv)).authenticator;
  return hex(d.groups.get(conv).epochAuthenticator());
}

async function epoch(d, conv) {
  if (isC(d)) return (await d.state(conv)).epoch;
  return Number(d.groups.get(conv).epoch);
}

// The highest seq the device has handled in the conversation.
async function seen(d, conv) {
  if (isC(d)) return (await d.state(conv)).seen;
  return d.seen.get(conv) ?? 0;
}

async function leavesOf(d, conv, sub) {
  if (isC(d)) return d.leavesOf(conv, sub);
  return d.groups.get(conv).members().filter((m) => new TextDecoder().decode(m.identity).split('\n')[2] === sub).map((m) => m.leaf);
}

// A device goes offline (its MLS state kept) and comes back on a new connection.
async function offline(d) {
  if (isC(d)) return d.disconnect();
  d.saved = new Map([...d.groups].map(([c, g]) => [c, g.save()]));
  d.client.close();
  await sleep(50);
}

async function online(env, d) {
  if (isC(d)) {
    await d.reconnect();
    await d.sync();
    return d;
  }
  const client = await env.connect();
  await client.ok('auth', { token: d.session });
  const back = await ChatDevice.open(client, mls, d.device, { keyPackages: 0 });
  for (const [c, blob] of d.saved) back.groups.set(c, mls.restore(blob));
  for (const [c, seq] of d.seen) back.seen.set(c, seq);
  for (const [c, list] of d.received) back.received.set(c, [...list]);
  back.session = d.session;
  back.participant = d.participant;
  await back.sync();
  return back;
}

// Everyone but the sender has, since `from`, exactly the texts of `sent` from the others.
async function expectTexts(devices, conv, from, sent) {
  for (const d of devices) {
    const want = sent.filter((m) => m.from !== d).map((m) => m.text);
    await d.until(() => d.texts(conv).length - from.get(d) >= want.length, 8000).catch(() => {});
    assert.deepEqual(d.texts(conv).slice(from.get(d)), want, `${d.device} (${isC(d) ? 'C' : 'JS'})`);
  }
}

function marks(devices, conv) {
  return new Map(devices.map((d) => [d, d.texts(conv).length]));
}

async function sendAll(senders, conv, tag) {
  const sent = [];
  for (const d of senders) {
    const text = `${tag} van ${d.device}`;
    const r = await d.send(conv, text);
    assert.equal(r.type, 'ok', `${d.device} send: ${r.code} ${r.message}`);
    sent.push({ from: d, text });
  }
  return sent;
}

async function agree(devices, conv) {
  for (const d of devices) await d.idle();
  const auths = await Promise.all(devices.map((d) => authenticator(d, conv)));
  assert.equal(new Set(auths).size, 1, `members disagree: ${devices.map((d, i) => `${d.device}=${auths[i].slice(0, 8)}`)}`);
  return auths[0];
}

// ---- the scenario every kind goes through ----
// s: { conv, creator, members: [{ d, user, role, name }] (the creator's own other devices with
// role null), offlineDevs, racers: [a, b], removed: { user, devices }, remover }
async function exercise(env, s) {
  const { conv, creator } = s;
  const all = [creator, ...s.members.map((m) => m.d)];
  for (const d of all) await d.sync();
  await creator.createGroup(conv);
  // add: each other user as a member, then all their devices in one Commit
  const users = new Map();
  for (const m of s.members) users.set(m.user.sub, m);
  for (const m of users.values()) {
    if (m.role) await creator.addUser(conv, m.user, m.role, m.name);
    else await creator.addDevices(conv, m.user);
  }
  for (const d of all) await d.until(() => inGroup(d, conv), 8000);
  assert.equal(await epoch(creator, conv), users.size);
  await agree(all, conv);

  // send both ways
  let from = marks(all, conv);
  await expectTexts(all, conv, from, await sendAll(all, conv, 'eerste'));

  // offline devices catch up, in order
  for (const d of s.offlineDevs) await offline(d);
  const present = all.filter((d) => !s.offlineDevs.includes(d));
  from = marks(all, conv);
  const missed = [...(await sendAll(present, conv, 'terwijl offline 1')), ...(await sendAll(present, conv, 'terwijl offline 2'))];
  for (const d of s.offlineDevs) {
    const back = await online(env, d);
    if (back !== d) {
      all[all.indexOf(d)] = back;
      from.set(back, from.get(d));
      for (const m of s.members) if (m.d === d) m.d = back;
      s.racers = s.racers.map((r) => (r === d ? back : r));
    }
  }
  await expectTexts(all.filter((d) => from.has(d)), conv, from, missed);

  // two members, one C and one JS, commit the same epoch at once: both Commits are built on
  // the same epoch before either is sent; one wins, the other gets mls_stale_epoch, processes
  // the winner and commits again on the new epoch
  const before = await epoch(creator, conv);
  const [c, js] = isC(s.racers[0]) ? s.racers : [s.racers[1], s.racers[0]];
  assert.ok(isC(c) && !isC(js), 'the racers are a C and a JS member');
  await js.idle();
  const jsCommit = b64u(js.groups.get(conv).commit({}).commit);
  const cCommit = await c.commitPrepare(conv);
  const [cr, jr] = await Promise.all([
    c.req('mls.commit', { conversation: conv, commit: cCommit }),
    js.client.req('mls.commit', { conversation: conv, commit: jsCommit }),
  ]);
  assert.deepEqual([cr.type, jr.type].sort(), ['error', 'ok'], `${cr.code} ${jr.code}`);
  const [winner, loser] = cr.type === 'ok' ? [cr, jr] : [jr, cr];
  assert.equal(loser.code, 'mls_stale_epoch');
  assert.equal(winner.epoch, before + 1);
  if (cr.type === 'ok') {
    await c.commitMerge(conv, cr.seq);
    js.groups.get(conv).commitDiscard();
    await js.commit(conv, {}); // processes the winner, re-bases, succeeds
  } else {
    js.groups.get(conv).commitMerge();
    js.seen.set(conv, Math.max(js.seen.get(conv) ?? 0, jr.seq));
    await c.commitDiscard(conv);
    await c.idle();
    await c.commit(conv, {});
  }
  await sleep(200);
  assert.equal(await epoch(creator, conv), before + 2);
  await agree(all, conv);

  // remove: nothing new reaches the removed member (not even the Commit that removes their
  // devices: protocol §5.9 chat.members.remove), who can neither read nor send
  const removed = s.removed.devices.map((d) => all.find((x) => x.device === d.device));
  const stay = all.filter((d) => !removed.includes(d));
  const seenBefore = new Map();
  for (const d of removed) seenBefore.set(d, await seen(d, conv));
  await conn(s.remover).ok('chat.members.remove', { conversation: conv, user: s.removed.user });
  const leaves = await leavesOf(s.remover, conv, s.removed.user.sub);
  assert.equal(leaves.length, removed.length);
  await s.remover.commit(conv, { remove: leaves });
  const kept = new Map(removed.map((d) => [d, d.texts(conv).length]));
  from = marks(stay, conv);
  await expectTexts(stay, conv, from, await sendAll(stay, conv, 'na de verwijdering'));
  await sleep(200);
  for (const d of removed) {
    assert.equal(d.texts(conv).length, kept.get(d), `${d.device} read something after its removal`);
    assert.equal(await seen(d, conv), seenBefore.get(d), `${d.device} got an entry after its removal`);
    const sync = await conn(d).req('chat.sync', { conversation: conv });
    assert.equal(sync.type, 'ok');
    assert.ok(!sync.conversations.some((c) => c.conversation === conv && c.sent > 0), 'a removed device got a backlog');
    // chat.get: forbidden, except to staff of the practice, who see the metadata (protocol
    // §5.9) without themselves among the members.
    const get = await conn(d).req('chat.get', { conversation: conv });
    if (get.type === 'ok') {
      assert.ok(['gp', 'assistant', 'remote_gp'].includes(s.removed.role), `chat.get answered a removed ${s.removed.role}`);
      assert.ok(!get.conversation.members.some((m) => m.sub === s.removed.user.sub));
    } else {
      assert.equal(get.code, 'forbidden');
    }
    // It still holds the old epoch's group (it was never told): whatever it sends is refused.
    assert.equal((await d.send(conv, 'na mijn verwijdering')).code, 'forbidden');
  }
  for (const d of stay) assert.ok(!d.texts(conv).includes('na mijn verwijdering'));
  await agree(stay, conv);
  for (const d of all) assert.deepEqual(d.errors, [], `${d.device} errors`);
}

async function withEnv(fn) {
  const env = await boot();
  const agent = await Agent.start(env.srv);
  try {
    await fn(env, agent);
  } finally {
    await agent.close().catch((e) => { throw e; });
    await env.close();
  }
}

// A consult with a patient invite; the GP (device d or a JS client) has joined it.
async function consultFor(gp) {
  const { consult } = await gp.ok('consult.create', { patient: 'pseudo-4711', title: 'Beeldbellen' });
  const { invite } = await gp.ok('invite.create', { consult: consult.id });
  await gp.ok('consult.join', { consult: consult.id });
  return { consult, invite };
}

async function withSpecialist(gp, consult) {
  await gp.ok('consent.record', { consult: consult.id, scope: 'meekijkconsult', given: true, method: 'verbal' });
  await gp.ok('specialist.invite', { consult: consult.id, specialist: 'spec-1', name: 'Dr. Dermatoloog' });
}

test('consult chat: C GP and patient laptop, JS patient phone and GP desktop, C specialist', { timeout: 90000 }, async () => {
  await withEnv(async (env, agent) => {
    const gp = await device(env, agent, 'c', { claims: env.users.gp }, 'gp-laptop');
    const { consult, invite } = await consultFor(gp);
    const phone = await device(env, agent, 'js', { invite: invite.code, name: 'Sanne' }, 'patient-phone');
    await gp.ok('lobby.admit', { consult: consult.id, participant: phone.participant });
    const laptop = await device(env, agent, 'c', { session: phone.session }, 'patient-laptop');
    const desktop = await device(env, agent, 'js', { claims: env.users.gp }, 'gp-desktop');
    await withSpecialist(gp, consult);
    const spec = await device(env, agent, 'c', { claims: env.users.specialist }, 'spec-pc');
    // A specialist is in a consult's chat (and holds its media keys) while in the call.
    await spec.ok('consult.join', { consult: consult.id });
    const { conversation } = await gp.ok('chat.create', { kind: 'consult', consult: consult.id });
    const patient = { sub: phone.participant };
    await exercise(env, {
      conv: conversation.id,
      creator: gp,
      members: [
        { d: desktop, user: { sub: 'gp-1' }, role: null },
        { d: phone, user: patient, role: 'patient', name: 'Sanne' },
        { d: laptop, user: patient, role: 'patient', name: 'Sanne' },
        { d: spec, user: { sub: 'spec-1' }, role: 'specialist', name: 'Dr. Dermatoloog' },
      ],
      offlineDevs: [laptop, desktop],
      racers: [phone, gp],
      removed: { user: { sub: 'spec-1' }, role: 'specialist', devices: [spec] },
      remover: gp,
    });
  });
});

test('econsult: JS GP, C patient (redeemed, in the lobby), C assistant', { timeout: 90000 }, async () => {
  await withEnv(async (env, agent) => {
    const gp = await device(env, agent, 'js', { claims: env.users.gp }, 'gp-laptop');
    const { consult, invite } = await consultFor(gp.client);
    const patient = await device(env, agent, 'c', { invite: invite.code, name: 'Piet' }, 'patient-phone');
    const da = await device(env, agent, 'c', { claims: env.users.assistant }, 'da-pc');
    const { conversation } = await gp.client.ok('chat.create', { kind: 'econsult', consult: consult.id });
    await exercise(env, {
      conv: conversation.id,
      creator: gp,
      members: [
        { d: patient, user: { sub: patient.participant }, role: 'patient', name: 'Piet' },
        { d: da, user: { sub: 'da-1' }, role: 'assistant', name: 'Fatima' },
      ],
      offlineDevs: [patient],
      racers: [patient, gp],
      removed: { user: { sub: 'da-1' }, role: 'assistant', devices: [da] },
      remover: gp,
    });
  });
});

test('specialist question: C GP, JS and C specialist devices, JS assistant', { timeout: 90000 }, async () => {
  await withEnv(async (env, agent) => {
    const gp = await device(env, agent, 'c', { claims: env.users.gp }, 'gp-laptop');
    const { consult } = await consultFor(gp);
    await withSpecialist(gp, consult);
    const specJs = await device(env, agent, 'js', { claims: env.users.specialist }, 'spec-laptop');
    const specC = await device(env, agent, 'c', { claims: env.users.specialist }, 'spec-phone');
    const da = await device(env, agent, 'js', { claims: env.users.assistant }, 'da-pc');
    const { conversation } = await gp.ok('chat.create', { kind: 'specialist_question', consult: consult.id });
    await exercise(env, {
      conv: conversation.id,
      creator: gp,
      members: [
        { d: specJs, user: { sub: 'spec-1' }, role: 'specialist', name: 'Dr. Dermatoloog' },
        { d: specC, user: { sub: 'spec-1' }, role: 'specialist', name: 'Dr. Dermatoloog' },
        { d: da, user: { sub: 'da-1' }, role: 'assistant', name: 'Fatima' },
      ],
      offlineDevs: [specC],
      racers: [specJs, gp],
      removed: { user: { sub: 'da-1' }, role: 'assistant', devices: [da] },
      remover: gp,
    });
  });
});

test('care team: JS GP, C assistant, JS and C partners', { timeout: 90000 }, async () => {
  await withEnv(async (env, agent) => {
    const wijk = { sub: 'wijk-1', name: 'Wijkverpleging Noord', role: 'partner', practice: 'wijkzorg' };
    const fysio = { sub: 'fysio-1', name: 'Fysiotherapie De Brug', role: 'partner', practice: 'fysio-brug' };
    const gp = await device(env, agent, 'js', { claims: env.users.gp }, 'gp-laptop');
    const da = await device(env, agent, 'c', { claims: env.users.assistant }, 'da-pc');
    const apo = await device(env, agent, 'js', { claims: env.users.partner }, 'apo-pc');
    const wijkC = await device(env, agent, 'c', { claims: wijk }, 'wijk-tablet');
    const fysioC = await device(env, agent, 'c', { claims: fysio }, 'fysio-pc');
    const { conversation } = await gp.client.ok('chat.create', { kind: 'care_team', patient: 'pseudo-4711' });
    await exercise(env, {
      conv: conversation.id,
      creator: gp,
      members: [
        { d: da, user: { sub: 'da-1' }, role: 'assistant', name: 'Fatima' },
        { d: apo, user: { sub: 'apo-1' }, role: 'partner', name: 'Apotheek Centrum' },
        { d: wijkC, user: { sub: 'wijk-1' }, role: 'partner', name: 'Wijkverpleging Noord' },
        { d: fysioC, user: { sub: 'fysio-1' }, role: 'partner', name: 'Fysiotherapie De Brug' },
      ],
      offlineDevs: [apo, fysioC],
      racers: [wijkC, apo],
      removed: { user: { sub: 'fysio-1' }, role: 'partner', devices: [fysioC] },
      remover: gp,
    });
  });
});
