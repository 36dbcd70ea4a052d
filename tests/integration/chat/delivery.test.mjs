// The MLS delivery service with real MLS clients (the browser's library in node): a consult's
// chat follows admission, messages are stored and forwarded in order, a removed member reads
// nothing new, and two Commits of one epoch race: one wins, the other re-bases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyPair } from '../lib/keys.mjs';
import { boot, consultWithPatient } from '../signaling/fixture.mjs';
import { mint } from '../lib/tokens.mjs';
import { ChatDevice, chatBetween, consultChat, loadMls } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mls = await loadMls();

// The GP's device and a care-team conversation whose group it made.
async function careTeam(env) {
  const gpc = await env.as(env.users.gp);
  const gp = await ChatDevice.open(gpc, mls, 'gp-laptop');
  await gp.sync();
  const { conversation } = await gpc.ok('chat.create', { kind: 'care_team', patient: 'pseudo-4711' });
  await gp.createGroup(conversation.id);
  return { gpc, gp, conv: conversation.id };
}

test('a consult chat: messages both ways, in order, once each', async () => {
  const env = await boot();
  try {
    const { gp, pt, conv } = await consultChat(env, mls);
    for (let i = 0; i < 20; i++) {
      assert.equal((await gp.send(conv, `gp ${i}`)).type, 'ok');
      assert.equal((await pt.send(conv, `pt ${i}`)).type, 'ok');
    }
    const want = (who) => Array.from({ length: 20 }, (_, i) => `${who} ${i}`);
    await pt.until(() => pt.texts(conv).length === 20);
    await gp.until(() => gp.texts(conv).length === 20);
    assert.deepEqual(pt.texts(conv), want('gp'));
    assert.deepEqual(gp.texts(conv), want('pt'));
    assert.deepEqual(gp.errors, []);
    assert.deepEqual(pt.errors, []);
    // The epoch authenticators agree: both are in one group.
    assert.deepEqual(gp.groups.get(conv).epochAuthenticator(), pt.groups.get(conv).epochAuthenticator());
  } finally {
    await env.close();
  }
});

test('a burst of large and small entries: each whole and in order (several frames per write)', async () => {
  // A 48 KiB message's entry is over 65,535 bytes (a 64-bit frame length) and larger than one
  // write's batch; the short ones between it go out together (docs/architecture.md).
  const env = await boot(['--max-message-bytes', '131072']);
  try {
    const { gp, pt, conv } = await consultChat(env, mls);
    let largest = 0;
    pt.client.ws.on('message', (d) => {
      largest = Math.max(largest, d.length);
    });
    await gp.idle();
    const g = gp.groups.get(conv);
    const texts = [];
    const reqs = [];
    for (let i = 0; i < 12; i++) {
      const text = i % 4 === 1 ? `big ${i} `.padEnd(48900, 'x') : `small ${i}`;
      texts.push(text);
      const message = Buffer.from(g.encrypt(text)).toString('base64url');
      reqs.push(gp.client.req('chat.send', { conversation: conv, message }, 20000));
    }
    for (const r of await Promise.all(reqs)) assert.equal(r.type, 'ok', JSON.stringify(r));
    await pt.until(() => pt.texts(conv).length === texts.length, 20000);
    assert.deepEqual(pt.texts(conv), texts);
    assert.deepEqual(pt.errors, []);
    assert.ok(largest > 65535, `largest entry ${largest} bytes: the 64-bit length was not used`);
  } finally {
    await env.close();
  }
});

test('delivery service gauges follow the devices and return to 0 when they go', async () => {
  const env = await boot();
  try {
    const { gpc, gp, pt, patient, conv } = await consultChat(env, mls);
    assert.equal((await gp.send(conv, 'hallo')).type, 'ok');
    const during = await env.srv.metrics();
    assert.equal(during.spk_chat_devices, 2, 'two connections declared a device');
    assert.equal(during.spk_chat_follows, 2, 'both follow the one conversation');
    assert.equal(during.spk_chat_conversations_loaded, 1);
    assert.equal(during.spk_file_tickets, 0);
    gp.close();
    pt.close();
    gpc.close();
    patient.close();
    // Connections close shortly after the client; the conversation is unloaded by the next tick.
    let after;
    for (let i = 0; i < 100; i++) {
      after = await env.srv.metrics();
      if (after.spk_chat_devices === 0 && after.spk_chat_follows === 0 && after.spk_chat_conversations_loaded === 0) break;
      await sleep(50);
    }
    assert.equal(after.spk_chat_devices, 0);
    assert.equal(after.spk_chat_follows, 0);
    assert.equal(after.spk_chat_conversations_loaded, 0, 'an unfollowed conversation is unloaded');
  } finally {
    await env.close();
  }
});

test('an offline device receives what it missed, in order, after reconnecting', async () => {
  const env = await boot();
  try {
    const { gp, pt, conv, participant, sessionToken } = await consultChat(env, mls);
    // The patient's second device (a laptop) joins too.
    const laptopConn = await env.connect();
    await laptopConn.ok('auth', { token: sessionToken });
    const laptop = await ChatDevice.open(laptopConn, mls, 'patient-laptop');
    await laptop.sync();
    await gp.addDevices(conv, { sub: participant.id });
    await laptop.until(() => laptop.groups.has(conv));
    // The laptop goes offline; messages keep coming.
    const saved = laptop.groups.get(conv).save();
    laptopConn.close();
    await sleep(100);
    for (let i = 0; i < 15; i++) await gp.send(conv, `terwijl offline ${i}`);
    await pt.until(() => pt.texts(conv).length === 15);
    // Back online, from the saved state: it gets the backlog in order.
    const again = await env.connect();
    await again.ok('auth', { token: sessionToken });
    const back = await ChatDevice.open(again, mls, 'patient-laptop', { keyPackages: 0 });
    back.groups.set(conv, mls.restore(saved));
    await back.sync();
    await back.until(() => back.texts(conv).length === 15);
    assert.deepEqual(back.texts(conv), Array.from({ length: 15 }, (_, i) => `terwijl offline ${i}`));
    assert.deepEqual(back.errors, []);
  } finally {
    await env.close();
  }
});

test('sent back to the lobby: nothing new reaches the patient; the next Commit must remove them', async () => {
  const env = await boot();
  try {
    const { gpc, gp, pt, consult, participant, conv } = await consultChat(env, mls);
    await gp.send(conv, 'voor');
    await pt.until(() => pt.texts(conv).includes('voor'));
    await gpc.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
    await gp.send(conv, 'na het terugsturen');
    await sleep(300);
    assert.ok(!pt.texts(conv).includes('na het terugsturen'), 'delivered after access ended');
    // A Commit that leaves the patient in is refused; one that removes them is accepted.
    await assert.rejects(gp.commit(conv, {}), (e) => e.code === 'mls_membership');
    const leaf = gp.groups.get(conv).members().find((m) => new TextDecoder().decode(m.identity).includes(participant.id)).leaf;
    await gp.commit(conv, { remove: [leaf] });
    await gp.send(conv, 'na de verwijdering');
    await sleep(300);
    assert.ok(!pt.texts(conv).includes('na de verwijdering'));
    // The patient cannot send either.
    const r = await pt.send(conv, 'mag niet');
    assert.equal(r.code, 'forbidden');
  } finally {
    await env.close();
  }
});

test("a GP of an identity provider claims an admitted patient's KeyPackages without naming the patient's issuer", async () => {
  // The GP's issuer is the practice's identity provider, the patient's is the server's own: a
  // claim whose user has no `iss` finds the patient (protocol.md 5.9), so a client can send it
  // before it has the conversation object that names the issuer.
  const { publicKey, privateKey } = keyPair('ed25519');
  const idp = { iss: 'https://idp.regio.example', kid: 'k1', key: privateKey };
  const env = await boot(['--issuer', `${idp.iss} k1 ${publicKey.export({ format: 'jwk' }).x}`]);
  try {
    const gpc = await env.connect();
    await gpc.ok('auth', { token: mint(idp, env.users.gp) });
    const { consult, patient, participant } = await consultWithPatient(env, gpc);
    const { conversation } = await gpc.ok('chat.create', { kind: 'consult', consult: consult.id });
    // In the lobby the patient is no member: nothing to claim.
    assert.equal(await gpc.code('mls.key_packages.claim', { conversation: conversation.id, user: { sub: participant.id } }), 'forbidden');
    await gpc.ok('lobby.admit', { consult: consult.id, participant: participant.id });
    // Without an issuer (lib.mjs addUser): the patient's device joins through the claimed
    // KeyPackage.
    const { conv, ptDev } = await chatBetween(mls, gpc, patient, consult.id, participant.id);
    assert.equal(conv, conversation.id);
    assert.ok(ptDev.groups.has(conv));
    // With the GP's issuer named, the patient is not found.
    assert.equal(
      await gpc.code('mls.key_packages.claim', { conversation: conv, user: { sub: participant.id, iss: idp.iss } }),
      'forbidden',
    );
  } finally {
    await env.close();
  }
});

test('two Commits for one epoch: the first valid wins, the other re-bases and succeeds', async () => {
  const env = await boot();
  try {
    const { gpc, gp, pt, conv, consult } = await consultChat(env, mls);
    // A second GP device joins, then both GP devices commit at once.
    const second = await env.as(env.users.gp);
    const gp2 = await ChatDevice.open(second, mls, 'gp-desktop');
    await gp2.sync();
    await gp.addDevices(conv, { sub: 'gp-1' });
    await gp2.until(() => gp2.groups.has(conv));
    const [a, b] = await Promise.allSettled([gp.commit(conv, {}), gp2.commit(conv, {})]);
    assert.equal(a.status, 'fulfilled', a.reason?.message);
    assert.equal(b.status, 'fulfilled', b.reason?.message);
    await Promise.all([gp.idle(), gp2.idle(), pt.idle()]);
    const auth = [gp, gp2, pt].map((d) => Buffer.from(d.groups.get(conv).epochAuthenticator()).toString('hex'));
    assert.equal(new Set(auth).size, 1, 'members disagree after the race');
    assert.equal(gp.groups.get(conv).epoch, 4n);
    void gpc;
    void consult;
  } finally {
    await env.close();
  }
});

// A member is added by user id and role; the service cannot know a GP's practice then. A GP of
// another practice made a member of this practice's conversation gets neither its Welcome nor
// its messages, and chat.sync says they are not allowed (their chat.get and chat.send were
// refused already).
test('a GP of another practice made a member reads nothing of the conversation', async () => {
  const env = await boot();
  try {
    const { gpc, gp, conv } = await careTeam(env);
    const oc = await env.as({ sub: 'gp-9', name: 'Dr. Elders', role: 'gp', practice: 'praktijk-b' });
    const other = await ChatDevice.open(oc, mls, 'elders-pc');
    await other.sync();
    await gpc.ok('chat.members.add', { conversation: conv, user: { sub: 'gp-9' }, role: 'gp', name: 'Dr. Elders' });
    await gp.addDevices(conv, { sub: 'gp-9' });
    await gp.send(conv, 'alleen voor praktijk A');
    await sleep(300);
    assert.ok(!other.groups.has(conv), 'no Welcome reached the other practice');
    assert.deepEqual(other.texts(conv), []);
    const s = await oc.ok('chat.sync', { conversation: conv });
    assert.deepEqual(s.conversations.map((x) => [x.conversation, x.allowed, x.sent]), [[conv, false, 0]]);
    assert.equal((await oc.req('chat.get', { conversation: conv })).code, 'forbidden');
    assert.equal(await other.until(() => true).then(() => other.texts(conv).length), 0);
  } finally {
    await env.close();
  }
});

test("a remote GP under delegation joins the practice's care-team conversation and reads it until the delegation ends", async () => {
  const env = await boot();
  try {
    const { gpc, gp, conv } = await careTeam(env);
    const now = () => Math.floor(Date.now() / 1000);
    const { delegation } = await gpc.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: now() + 3600 });

    const rc = await env.as(env.users.remote_gp);
    // Without a delegation of that practice, or for someone else, no.
    const list = await rc.ok('chat.list', { practice: 'praktijk-a' });
    assert.ok(list.conversations.some((c) => c.id === conv && c.member === false));
    let r = await rc.req('chat.members.add', { conversation: conv, user: { sub: 'apo-1' }, role: 'partner' });
    assert.equal(r.code, 'forbidden');
    r = await rc.req('chat.members.add', { conversation: conv, user: { sub: 'rgp-1' }, role: 'gp' });
    assert.equal(r.code, 'forbidden');
    await rc.ok('chat.members.add', { conversation: conv, user: { sub: 'rgp-1' }, role: 'remote_gp', name: 'Dr. Waarnemer' });
    const rgp = await ChatDevice.open(rc, mls, 'hap-pc');
    await rgp.sync();
    // A member's device commits the Add of the new member's devices.
    await gp.addDevices(conv, { sub: 'rgp-1' });
    await rgp.until(() => rgp.groups.has(conv));
    await gp.send(conv, 'overdracht: let op de bloeddruk');
    await rgp.until(() => rgp.texts(conv).includes('overdracht: let op de bloeddruk'));

    // The audit names the practice the remote GP acted for.
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const add = log.entries.find((e) => e.event === 'chat.member.add' && e.user === 'rgp-1');
    assert.equal(add?.on_behalf_of, 'praktijk-a');

    // The delegation ends: nothing new reaches the remote GP, and the next Commit must remove them.
    await gpc.ok('delegation.revoke', { delegation: delegation.id });
    await gp.send(conv, 'na de intrekking');
    await sleep(300);
    assert.ok(!rgp.texts(conv).includes('na de intrekking'));
    await assert.rejects(gp.commit(conv, {}), (e) => e.code === 'mls_membership');
    const leaf = gp.groups.get(conv).members().find((m) => new TextDecoder().decode(m.identity).includes('rgp-1'));
    assert.ok(leaf, 'the remote GP is a leaf');
    await gp.commit(conv, { remove: [leaf.leaf] });
    assert.deepEqual(gp.errors, []);
  } finally {
    await env.close();
  }
});

// A delegation that runs out (valid_until) ends the remote GP's reading at once, also when they
// are in no consult: the next entry is not delivered and chat.sync says not allowed.
test('a delegation running out ends the remote GP\'s chat at once', async () => {
  const env = await boot();
  try {
    const { gpc, gp, conv } = await careTeam(env);
    const until = Math.floor(Date.now() / 1000) + 4;
    await gpc.ok('delegation.grant', { remote_gp: 'rgp-1', valid_until: until });
    const rc = await env.as(env.users.remote_gp);
    await rc.ok('chat.members.add', { conversation: conv, user: { sub: 'rgp-1' }, role: 'remote_gp', name: 'Dr. Waarnemer' });
    const rgp = await ChatDevice.open(rc, mls, 'hap-pc');
    await rgp.sync();
    await gp.addDevices(conv, { sub: 'rgp-1' });
    await rgp.until(() => rgp.groups.has(conv));
    await gp.send(conv, 'tijdens de waarneming');
    await rgp.until(() => rgp.texts(conv).includes('tijdens de waarneming'));
    while (Date.now() / 1000 < until + 1.5) await sleep(200); // the delegation has run out
    await gp.send(conv, 'na de waarneming');
    await sleep(500);
    assert.ok(!rgp.texts(conv).includes('na de waarneming'), 'nothing new after the delegation ended');
    const s = await rc.ok('chat.sync', { conversation: conv });
    assert.deepEqual(s.conversations.map((x) => x.allowed), [false]);
  } finally {
    await env.close();
  }
});
