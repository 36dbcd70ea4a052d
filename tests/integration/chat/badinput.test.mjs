// Bad input to the delivery service (docs/protocol.md §5.9), each answered with its documented
// code while the connection and the server carry on and nothing stored is lost: Commits for a
// past and a future epoch, a second Commit for an epoch, Commits against the conversation's
// membership, KeyPackages with a wrong suite, a bad signature, an ended lifetime or another
// device's credential (and ended ones never handed out), messages from a device outside the
// group, a removed member, oversized, replayed (also after the conversation left memory and after
// a restart) and stale messages, acknowledgements of entries the device does not have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { attach, boot } from '../signaling/fixture.mjs';
import { startServer } from '../lib/server.mjs';
import { ChatDevice, loadMls } from './lib.mjs';
import { keyPackage } from './keypackage.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mls = await loadMls();
const b64u = (b) => Buffer.from(b).toString('base64url');
const hex = (b) => Buffer.from(b).toString('hex');
const wijk = { sub: 'wijk-1', name: 'Wijkverpleging Noord', role: 'partner', practice: 'wijkzorg' };

// A care-team conversation: the GP's laptop created the group, the pharmacy's PC was added.
async function careTeam(env) {
  const gpc = await env.as(env.users.gp);
  const gp = await ChatDevice.open(gpc, mls, 'gp-laptop');
  await gp.sync();
  const apoc = await env.as(env.users.partner);
  const apo = await ChatDevice.open(apoc, mls, 'apo-pc');
  await apo.sync();
  const { conversation } = await gpc.ok('chat.create', { kind: 'care_team', patient: 'pseudo-4711' });
  const conv = conversation.id;
  await gp.createGroup(conv);
  await gp.addUser(conv, { sub: 'apo-1' }, 'partner', 'Apotheek');
  await apo.until(() => apo.groups.has(conv));
  return { gpc, gp, apoc, apo, conv };
}

async function carriesOn(client) {
  assert.equal((await client.req('ping')).type, 'ok', 'the connection no longer answers');
}

async function agree(conv, ...devices) {
  for (const d of devices) await d.idle();
  const auths = devices.map((d) => hex(d.groups.get(conv).epochAuthenticator()));
  const epochs = devices.map((d) => d.groups.get(conv).epoch);
  assert.equal(new Set(auths).size, 1, `members disagree (epochs ${epochs.join(', ')})`);
}

async function serverEpoch(client, conv) {
  return (await client.ok('chat.get', { conversation: conv })).conversation.epoch;
}

test('KeyPackages: wrong suite, bad signature, ended lifetime, another credential are refused; nothing of the request is stored', async () => {
  const env = await boot();
  try {
    const c = await env.as(env.users.gp);
    const d = await ChatDevice.open(c, mls, 'gp-laptop', { keyPackages: 0 });
    const me = d.identity;
    const now = Math.floor(Date.now() / 1000);
    // control: a hand-built valid KeyPackage is accepted (so the refusals below are for the one
    // fault each has), and the browser's library agrees it is valid
    const good = keyPackage({ identity: me });
    mls.keyPackageCheck(good);
    assert.equal((await c.ok('mls.key_packages.upload', { key_packages: [b64u(good)] })).one_time, 1);
    const bad = {
      'wrong cipher suite': keyPackage({ identity: me, suite: 2, suites: [1, 2] }),
      'bad signature': keyPackage({ identity: me, badSignature: true }),
      'ended lifetime': keyPackage({ identity: me, notBefore: now - 7200, notAfter: now - 600 }),
      'not yet valid': keyPackage({ identity: me, notBefore: now + 7200, notAfter: now + 86400 }),
      "another device's credential": keyPackage({ identity: me.replace(/gp-laptop$/, 'gp-desktop') }),
      "another user's credential": keyPackage({ identity: me.replace('\ngp-1\n', '\ngp-9\n') }),
      'not a KeyPackage': new Uint8Array(randomBytes(300)),
    };
    for (const [what, kp] of Object.entries(bad)) {
      if (what !== "another device's credential" && what !== "another user's credential" && what !== 'not a KeyPackage') {
        assert.throws(() => mls.keyPackageCheck(kp), `${what}: the library accepts it`);
      }
      // in a batch with a valid one: the whole request is refused, nothing stored
      const r = await c.req('mls.key_packages.upload', { key_packages: [b64u(keyPackage({ identity: me })), b64u(kp)] });
      assert.equal(r.code, 'mls_bad_key_package', `${what}: ${r.code} ${r.message}`);
      const lr = await c.req('mls.key_packages.upload', { key_packages: [], last_resort: b64u(kp) });
      assert.equal(lr.code, 'mls_bad_key_package', `${what} (last resort): ${lr.code}`);
      const st = await c.ok('mls.key_packages.status');
      assert.deepEqual([st.one_time, st.last_resort], [1, false], `${what}: something was stored`);
    }
    // not base64url, too many
    assert.equal((await c.req('mls.key_packages.upload', { key_packages: ['***'] })).code, 'bad_message');
    const many = Array.from({ length: 101 }, () => b64u(good));
    assert.equal((await c.req('mls.key_packages.upload', { key_packages: many })).code, 'bad_message');
    await carriesOn(c);
    // the one valid KeyPackage is still there and is handed out
    const { conversation } = await c.ok('chat.create', { kind: 'care_team', patient: 'pseudo-1' });
    const claim = await c.ok('mls.key_packages.claim', { conversation: conversation.id, user: { sub: 'gp-1' } });
    assert.deepEqual(claim.key_packages.map((k) => k.key_package), [b64u(good)]);
  } finally {
    await env.close();
  }
});

test('a device holds at most 200 one-time KeyPackages: out_of_range beyond, nothing of that request stored', async () => {
  const env = await boot();
  try {
    const c = await env.as(env.users.gp);
    const d = await ChatDevice.open(c, mls, 'gp-laptop', { keyPackages: 0 });
    const fresh = (n) => Array.from({ length: n }, () => b64u(keyPackage({ identity: d.identity })));
    assert.equal((await c.ok('mls.key_packages.upload', { key_packages: fresh(100) })).one_time, 100);
    assert.equal((await c.ok('mls.key_packages.upload', { key_packages: fresh(99) })).one_time, 199);
    const over = await c.req('mls.key_packages.upload', { key_packages: fresh(2) });
    assert.equal(over.code, 'out_of_range', `${over.code} ${over.message}`);
    assert.equal((await c.ok('mls.key_packages.status')).one_time, 199, 'part of a refused upload was stored');
    assert.equal((await c.ok('mls.key_packages.upload', { key_packages: fresh(1) })).one_time, 200);
    await carriesOn(c);
  } finally {
    await env.close();
  }
});

test('KeyPackages whose lifetime has ended are not counted or handed out', async () => {
  const env = await boot();
  try {
    const c = await env.as(env.users.gp);
    const d = await ChatDevice.open(c, mls, 'gp-laptop', { keyPackages: 0 });
    const now = Math.floor(Date.now() / 1000);
    const short = (o = {}) => b64u(keyPackage({ identity: d.identity, notAfter: now + 2, ...o }));
    await c.ok('mls.key_packages.upload', { key_packages: [short(), short()], last_resort: short() });
    let st = await c.ok('mls.key_packages.status');
    assert.deepEqual([st.one_time, st.last_resort], [2, true], 'valid ones are counted');
    await sleep(3500);
    st = await c.ok('mls.key_packages.status');
    assert.deepEqual([st.one_time, st.last_resort], [0, false], 'ended KeyPackages count as valid');
    const { conversation } = await c.ok('chat.create', { kind: 'care_team', patient: 'pseudo-1' });
    const claim = await c.ok('mls.key_packages.claim', { conversation: conversation.id, user: { sub: 'gp-1' } });
    assert.deepEqual(claim.key_packages, [], 'an ended KeyPackage was handed out');
    assert.deepEqual(claim.missing, ['gp-laptop']);
    // one with a long lifetime uploaded next to them is handed out (the store keeps it 90 days)
    const long = b64u(keyPackage({ identity: d.identity }));
    await c.ok('mls.key_packages.upload', { key_packages: [long] });
    const again = await c.ok('mls.key_packages.claim', { conversation: conversation.id, user: { sub: 'gp-1' } });
    assert.deepEqual(again.key_packages.map((k) => [k.key_package, k.last_resort]), [[long, false]]);
    await carriesOn(c);
  } finally {
    await env.close();
  }
});

test('Commits: a past epoch, a future epoch, a second one for an epoch, a replay, a bad signature, a PrivateMessage', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    const epoch0 = await serverEpoch(gpc, conv);
    assert.equal(epoch0, 1);

    // a future epoch: the GP merges a Commit it never sent and commits again on top of it
    const saved = gp.groups.get(conv).save();
    const g = gp.groups.get(conv);
    g.commit({});
    g.commitMerge();
    const ahead = g.commit({}).commit;
    let r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(ahead) });
    assert.equal(r.code, 'mls_wrong_epoch', `${r.code} ${r.message}`);
    g.free();
    gp.groups.set(conv, mls.restore(saved));

    // the second Commit for an epoch: both build on epoch 1; the first sent wins
    const cg = gp.groups.get(conv).commit({}).commit;
    const ca = apo.groups.get(conv).commit({}).commit;
    r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(cg) });
    assert.equal(r.type, 'ok');
    gp.groups.get(conv).commitMerge();
    gp.seen.set(conv, r.seq);
    r = await apoc.req('mls.commit', { conversation: conv, commit: b64u(ca) });
    assert.equal(r.code, 'mls_stale_epoch', `${r.code} ${r.message}`);
    apo.groups.get(conv).commitDiscard();
    // the winner sent again (a replay) is a Commit for an epoch that is committed already
    r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(cg) });
    assert.equal(r.code, 'mls_stale_epoch');
    await apo.idle();
    assert.equal(apo.groups.get(conv).epoch, 2n);

    // a past epoch: the pharmacy's state from epoch 2, used after epoch 3
    const old = apo.groups.get(conv).save();
    await gp.commit(conv, {});
    await apo.idle();
    const current = apo.groups.get(conv).save();
    const stale = mls.restore(old);
    r = await apoc.req('mls.commit', { conversation: conv, commit: b64u(stale.commit({}).commit) });
    assert.equal(r.code, 'mls_stale_epoch');
    stale.free();
    apo.groups.get(conv).free();
    apo.groups.set(conv, mls.restore(current));

    // a bad signature (a bit of the PublicMessage's signature flipped: it sits before the
    // confirmation tag and the membership tag, 33 bytes each with their lengths)
    const pending = gp.groups.get(conv).commit({}).commit;
    const forged = new Uint8Array(pending);
    forged[forged.length - 66 - 20] ^= 0x01;
    r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(forged) });
    assert.equal(r.code, 'mls_bad_signature', `${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();
    // a Commit as PrivateMessage: the service cannot check it
    const priv = gp.groups.get(conv).commit({ private: true }).commit;
    r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(priv) });
    assert.equal(r.code, 'invalid_argument', `${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();
    // garbage and not base64url
    r = await gpc.req('mls.commit', { conversation: conv, commit: b64u(randomBytes(200)) });
    assert.ok(['malformed', 'invalid_argument', 'truncated'].includes(r.code), r.code);
    assert.equal((await gpc.req('mls.commit', { conversation: conv, commit: '!!' })).code, 'bad_message');

    // none of it changed the group: the epoch is 3, a valid Commit goes through, all agree
    assert.equal(await serverEpoch(gpc, conv), 3);
    await carriesOn(gpc);
    await apo.commit(conv, {});
    await gp.idle();
    await agree(conv, gp, apo);
    assert.deepEqual([...gp.errors, ...apo.errors], []);
  } finally {
    await env.close();
  }
});

test('Commits against the membership: a non-member\'s device, a removal the committer may not make, a Welcome for KeyPackages not claimed here', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    const epoch0 = await serverEpoch(gpc, conv);
    const wijkId = gp.identity.replace('\ngp-1\ngp-laptop', '\nwijk-1\nwijk-tablet');
    assert.notEqual(wijkId, gp.identity);
    const commitWith = (device, opts, { withWelcome = true } = {}) => {
      const { commit, welcome } = device.groups.get(conv).commit(opts);
      const fields = { conversation: conv, commit: b64u(commit) };
      if (welcome && withWelcome) fields.welcome = b64u(welcome);
      return device.client.req('mls.commit', fields);
    };

    // the device of someone who is not a member (a valid KeyPackage with a valid credential)
    let r = await commitWith(gp, { add: [keyPackage({ identity: wijkId })] });
    assert.equal(r.code, 'mls_membership', `${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();
    // a partner removes the GP (only staff remove others)
    const gpLeaf = apo.groups.get(conv).members().find((m) => new TextDecoder().decode(m.identity).includes('\ngp-1\n')).leaf;
    r = await commitWith(apo, { remove: [gpLeaf] });
    assert.equal(r.code, 'mls_membership', `${r.code} ${r.message}`);
    apo.groups.get(conv).commitDiscard();

    // the district nurse becomes a member and uploads a KeyPackage; the GP adds a KeyPackage of
    // that device that was never claimed here, then the right one without its Welcome
    await gpc.ok('chat.members.add', { conversation: conv, user: { sub: 'wijk-1' }, role: 'partner', name: 'Wijkverpleging' });
    const wijkc = await env.as(wijk);
    const nurse = await ChatDevice.open(wijkc, mls, 'wijk-tablet');
    await nurse.sync();
    assert.equal(nurse.identity, wijkId);
    r = await commitWith(gp, { add: [keyPackage({ identity: wijkId })] });
    assert.equal(r.code, 'bad_message', `not claimed: ${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();
    const claim = await gpc.ok('mls.key_packages.claim', { conversation: conv, user: { sub: 'wijk-1' } });
    const add = claim.key_packages.map((k) => Buffer.from(k.key_package, 'base64url'));
    assert.equal(add.length, 1);
    r = await commitWith(gp, { add }, { withWelcome: false });
    assert.equal(r.code, 'bad_message', `no Welcome: ${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();

    // none of it moved the group; the claimed KeyPackage with its Welcome goes through
    assert.equal(await serverEpoch(gpc, conv), epoch0);
    await carriesOn(gpc);
    await carriesOn(apoc);
    await gp.commit(conv, { add });
    await nurse.until(() => nurse.groups.has(conv));
    await gp.send(conv, 'welkom');
    await nurse.until(() => nurse.texts(conv).includes('welkom'));
    // the pharmacy kept following the conversation live through the refusals
    await apo.until(() => apo.texts(conv).includes('welkom'));
    await agree(conv, gp, apo, nurse);
    assert.deepEqual([...gp.errors, ...apo.errors, ...nurse.errors], []);
  } finally {
    await env.close();
  }
});

test('a Commit adds at most 64 devices: out_of_range beyond, nothing of it stored', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    const epoch0 = await serverEpoch(gpc, conv);
    // the district nurse may be in the conversation; her team's devices are valid KeyPackages
    await gpc.ok('chat.members.add', { conversation: conv, user: { sub: 'wijk-1' }, role: 'partner', name: 'Wijkverpleging' });
    const devices = (n) => Array.from({ length: n }, (_, i) =>
      keyPackage({ identity: gp.identity.replace('\ngp-1\ngp-laptop', `\nwijk-1\ntablet-${i}`) }));
    const commitAdding = (add) => {
      const { commit, welcome } = gp.groups.get(conv).commit({ add });
      return gpc.req('mls.commit', { conversation: conv, commit: b64u(commit), welcome: b64u(welcome) });
    };
    // 65 devices: refused for their number, before anything else about them is looked at
    let r = await commitAdding(devices(65));
    assert.equal(r.code, 'out_of_range', `${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();
    // 64 pass the count; these were not claimed here, which is the next refusal
    r = await commitAdding(devices(64));
    assert.equal(r.code, 'bad_message', `${r.code} ${r.message}`);
    gp.groups.get(conv).commitDiscard();

    // nothing moved: the same epoch, and the members carry on in it
    assert.equal(await serverEpoch(gpc, conv), epoch0);
    await carriesOn(gpc);
    await carriesOn(apoc);
    await gp.send(conv, 'nog steeds hier');
    await apo.until(() => apo.texts(conv).includes('nog steeds hier'));
    await agree(conv, gp, apo);
    assert.deepEqual([...gp.errors, ...apo.errors], []);
  } finally {
    await env.close();
  }
});

test('messages: outside the group, not a member, oversized, replayed, stale, future, not base64url', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    const send = (client, msg) => client.req('chat.send', { conversation: conv, message: msg });

    // the pharmacy's second device is declared but not in the group: it cannot send as the
    // group's member (it sends a ciphertext the pharmacy's PC made)
    const phoneConn = await env.as(env.users.partner);
    await ChatDevice.open(phoneConn, mls, 'apo-phone');
    const byPc = b64u(apo.groups.get(conv).encrypt('van de pc'));
    assert.equal((await send(phoneConn, byPc)).code, 'mls_bad_sender');
    // a user who is not a member
    const wijkc = await env.as(wijk);
    await ChatDevice.open(wijkc, mls, 'wijk-tablet');
    assert.equal((await send(wijkc, byPc)).code, 'forbidden');
    // no chat.device on the connection
    const bare = await env.as(env.users.partner);
    assert.equal((await send(bare, byPc)).code, 'bad_state');

    // oversized: over max_message_bytes (65,536) but within max_mls_message_bytes, the frame
    // of a signed-in connection is read and refused as too_large for anything but mls.*,
    // naming the request; over max_mls_message_bytes it is discarded unread (re: null)
    const big = b64u(randomBytes(49153));
    gpc.send({ id: 999, type: 'chat.send', conversation: conv, message: big });
    const tooLarge = await gpc.next('error');
    assert.deepEqual([tooLarge.code, tooLarge.re], ['too_large', 999]);
    await carriesOn(gpc);
    // an mls.* request between the two limits is read and handled (a Commit into a large group
    // carries the ratchet tree): this one is no MLS message, so it is refused as such
    const junk = b64u(randomBytes(200 * 1024));
    const bigCommit = await gpc.req('mls.commit', { conversation: conv, commit: junk });
    assert.equal(bigCommit.type, 'error');
    assert.ok(['malformed', 'truncated', 'invalid_argument'].includes(bigCommit.code), bigCommit.code);
    const huge = b64u(randomBytes(3200 * 1024)); // > 4 MiB as base64url
    gpc.send({ id: 998, type: 'chat.send', conversation: conv, message: huge });
    const discarded = await gpc.next('error');
    assert.deepEqual([discarded.code, discarded.re], ['too_large', null]);
    await carriesOn(gpc);
    // not MLS, not an application message, not base64url
    assert.ok(['malformed', 'truncated', 'invalid_argument'].includes((await send(gpc, b64u(randomBytes(100)))).code));
    assert.equal((await send(gpc, '%%%')).code, 'bad_message');
    assert.equal((await send(gpc, b64u(gp.groups.get(conv).commit({}).commit))).code, 'invalid_argument');
    gp.groups.get(conv).commitDiscard();

    // a replay of a ciphertext of the current epoch
    const m1 = b64u(gp.groups.get(conv).encrypt('één keer'));
    assert.equal((await send(gpc, m1)).type, 'ok');
    const again = await send(gpc, m1);
    assert.equal(again.code, 'replay', `${again.code} ${again.message}`);

    // a stale epoch: encrypted in epoch 1, sent after the Commit to epoch 2
    const old = b64u(gp.groups.get(conv).encrypt('te laat'));
    await apo.commit(conv, {});
    await gp.idle();
    assert.equal((await send(gpc, old)).code, 'mls_stale_epoch');
    // a future epoch: from a state that merged a Commit nobody saw
    const saved = gp.groups.get(conv).save();
    const ahead = mls.restore(saved);
    ahead.commit({});
    ahead.commitMerge();
    assert.equal((await send(gpc, b64u(ahead.encrypt('te vroeg')))).code, 'mls_wrong_epoch');
    ahead.free();

    // carry on: the next message arrives, and the pharmacy got 'één keer' exactly once
    assert.equal((await gp.send(conv, 'daarna')).type, 'ok');
    await apo.until(() => apo.texts(conv).includes('daarna'));
    assert.deepEqual(apo.texts(conv), ['één keer', 'daarna']);
    assert.deepEqual([...gp.errors, ...apo.errors], []);
  } finally {
    await env.close();
  }
});

test('an oversized message within a larger frame limit is bad_message', async () => {
  const env = await boot(['--max-message-bytes', '262144']);
  try {
    const { gpc, conv } = await careTeam(env);
    const r = await gpc.req('chat.send', { conversation: conv, message: b64u(randomBytes(49153)) });
    assert.equal(r.code, 'bad_message', `${r.code} ${r.message}`);
    await carriesOn(gpc);
  } finally {
    await env.close();
  }
});

test('a replay is refused after the conversation left the service\'s memory and after a restart', async () => {
  const env = await boot([], { keepDataDir: true });
  let env2 = null;
  try {
    const { gpc, gp, apo, conv } = await careTeam(env);
    const m = b64u(gp.groups.get(conv).encrypt('één keer'));
    const first = await gpc.req('chat.send', { conversation: conv, message: m });
    assert.equal(first.type, 'ok');
    // three more from the pharmacy: the window holds the messages of both senders
    const later = [];
    for (let i = 0; i < 3; i++) later.push(b64u(apo.groups.get(conv).encrypt(`bericht ${i}`)));
    for (const x of later) assert.equal((await apo.client.req('chat.send', { conversation: conv, message: x })).type, 'ok');
    await gp.until(() => gp.texts(conv).length === 3);
    await apo.until(() => apo.texts(conv).length === 1);
    // nobody follows the conversation: it leaves the service's memory within a second
    apo.client.close();
    gp.client.close();
    await sleep(2500);
    const again = await env.as(env.users.gp);
    await again.ok('chat.device', { device: 'gp-laptop' });
    let r = await again.req('chat.send', { conversation: conv, message: m });
    assert.equal(r.code, 'replay', `${r.type} ${r.code ?? ''}: the replay was stored (seq ${r.seq})`);
    // the same after a restart of spreekd on the same data directory
    const dataDir = env.srv.dataDir;
    await env.close();
    env2 = attach(await startServer({ dataDir, keepDataDir: false }));
    const back = await env2.as(env2.users.partner);
    await back.ok('chat.device', { device: 'apo-pc' });
    r = await back.req('chat.send', { conversation: conv, message: later[2] });
    assert.equal(r.code, 'replay', `after a restart: ${r.type} ${r.code ?? ''} (seq ${r.seq})`);
    const gp2 = await env2.as(env2.users.gp);
    await gp2.ok('chat.device', { device: 'gp-laptop' });
    r = await gp2.req('chat.send', { conversation: conv, message: m });
    assert.equal(r.code, 'replay', `after a restart: ${r.type} ${r.code ?? ''} (seq ${r.seq})`);
    // nothing was stored by the refusals: the log ends with the pharmacy's third message
    assert.equal((await gp2.ok('chat.get', { conversation: conv })).conversation.last_seq, first.seq + 3);
    await carriesOn(gp2);
  } finally {
    if (env2) await env2.close();
    else await env.close();
  }
});

test('acknowledgements: beyond the log, before the device\'s Welcome, another conversation, no device', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    for (let i = 0; i < 3; i++) await gp.send(conv, `bericht ${i}`);
    await apo.until(() => apo.texts(conv).length === 3);
    const last = (await gpc.ok('chat.get', { conversation: conv })).conversation.last_seq;
    const ack = (client, conversation, seq) => client.req('chat.ack', { conversation, seq });
    // beyond the last entry
    let r = await ack(apoc, conv, last + 1);
    assert.equal(r.code, 'bad_state', `${r.code} ${r.message}`);
    // before the device's Welcome (entry 1 is the GP's first Commit, before the pharmacy joined)
    r = await ack(apoc, conv, 1);
    assert.equal(r.code, 'bad_state');
    // a conversation the device has nothing in, and one that does not exist
    const { conversation: other } = await gpc.ok('chat.create', { kind: 'care_team', patient: 'pseudo-2' });
    assert.equal((await ack(apoc, other.id, 1)).code, 'not_found');
    assert.equal((await ack(apoc, 'm_nonexistent', 1)).code, 'not_found');
    // malformed seq, no device declared
    assert.equal((await ack(apoc, conv, 0)).code, 'bad_message');
    assert.equal((await apoc.req('chat.ack', { conversation: conv, seq: 'drie' })).code, 'bad_message');
    const bare = await env.as(env.users.partner);
    assert.equal((await ack(bare, conv, last)).code, 'bad_state');
    // an older seq again changes nothing
    assert.equal((await ack(apoc, conv, last)).type, 'ok');
    assert.equal((await ack(apoc, conv, last - 1)).type, 'ok');
    await carriesOn(apoc);
    // nothing was lost: a reconnecting pharmacy PC (from its saved state) gets what came after
    const saved = apo.groups.get(conv).save();
    apo.client.close();
    await gp.send(conv, 'na de fouten');
    const back = await ChatDevice.open(await env.as(env.users.partner), mls, 'apo-pc', { keyPackages: 0 });
    back.groups.set(conv, mls.restore(saved));
    await back.sync();
    await back.until(() => back.texts(conv).length === 1);
    assert.deepEqual(back.texts(conv), ['na de fouten']);
    assert.deepEqual(back.errors, []);
  } finally {
    await env.close();
  }
});

test('a removed member fetches nothing and sends nothing; the others carry on', async () => {
  const env = await boot();
  try {
    const { gpc, gp, apoc, apo, conv } = await careTeam(env);
    await gp.send(conv, 'voor');
    await apo.until(() => apo.texts(conv).length === 1);
    await gpc.ok('chat.members.remove', { conversation: conv, user: { sub: 'apo-1' } });
    const leaf = gp.groups.get(conv).members().find((m) => new TextDecoder().decode(m.identity).includes('\napo-1\n')).leaf;
    await gp.commit(conv, { remove: [leaf] });
    await gp.send(conv, 'na');
    await sleep(300);
    assert.deepEqual(apo.texts(conv), ['voor']);
    // fetching: sync lists nothing of it, get and claim are forbidden
    const sync = await apoc.ok('chat.sync', { conversation: conv });
    assert.ok(!sync.conversations.some((c) => c.conversation === conv && c.sent > 0));
    assert.equal((await apoc.req('chat.get', { conversation: conv })).code, 'forbidden');
    assert.equal((await apoc.req('mls.key_packages.claim', { conversation: conv, user: { sub: 'gp-1' } })).code, 'forbidden');
    const list = await apoc.ok('chat.list');
    assert.ok(!list.conversations.some((c) => c.id === conv));
    // sending (from the old epoch's state it still has) and committing
    const r = await apo.send(conv, 'mag niet');
    assert.equal(r.code, 'forbidden');
    const c = await apoc.req('mls.commit', { conversation: conv, commit: b64u(apo.groups.get(conv).commit({}).commit) });
    assert.equal(c.code, 'forbidden');
    // removing again
    assert.equal((await gpc.req('chat.members.remove', { conversation: conv, user: { sub: 'apo-1' } })).code, 'bad_state');
    await carriesOn(apoc);
    assert.equal((await gp.send(conv, 'verder')).type, 'ok');
  } finally {
    await env.close();
  }
});
