// Encrypted attachments (docs/protocol.md §5.10): a member asks over the WebSocket for an upload
// or a download and gets a one-use ticket for one HTTP request. Only members of the file's own
// conversation get one, the bytes stay exactly what was uploaded, a ticket works once, for its
// file, while the session that asked is open and the access holds, and sizes and quotas hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { boot } from '../signaling/fixture.mjs';
import { ChatDevice, consultChat, loadMls } from './lib.mjs';

const mls = await loadMls();

const put = (env, path, ticket, body, headers = {}) =>
  fetch(env.srv.url + path, {
    method: 'PUT',
    headers: { ...(ticket ? { authorization: `Bearer ${ticket}` } : {}), ...headers },
    body,
  });
const get = (env, path, ticket) =>
  fetch(env.srv.url + path, { headers: ticket ? { authorization: `Bearer ${ticket}` } : {} });

async function upload(env, client, conversation, bytes) {
  const g = await client.ok('chat.file.upload', { conversation, size: bytes.length });
  const r = await put(env, g.path, g.ticket, bytes);
  assert.equal(r.status, 201, await r.clone().text());
  assert.deepEqual(await r.json(), { file: g.file, size: bytes.length });
  return g.file;
}

async function download(env, client, conversation, file) {
  const g = await client.ok('chat.file.download', { conversation, file });
  const r = await get(env, g.path, g.ticket);
  return { status: r.status, headers: r.headers, bytes: new Uint8Array(await r.arrayBuffer()), grant: g };
}

test('a photo goes from the patient to the GP byte for byte; both accesses are audited', async () => {
  const env = await boot();
  try {
    const { gpc, patient, pt, gp, conv } = await consultChat(env, mls);
    const photo = randomBytes(300 * 1024); // the ciphertext the browser made
    const file = await upload(env, patient, conv, photo);
    await pt.send(conv, JSON.stringify({ file, name: 'huid.jpg' }));
    await gp.until(() => gp.texts(conv).length === 1);
    assert.equal(JSON.parse(gp.texts(conv)[0]).file, file);
    const d = await download(env, gpc, conv, file);
    assert.equal(d.status, 200);
    assert.equal(d.headers.get('content-type'), 'application/octet-stream');
    assert.equal(d.headers.get('cache-control'), 'no-store');
    assert.equal(d.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(Buffer.from(d.bytes).equals(photo));
    assert.equal(d.grant.size, photo.length);
    // Nothing but the finished file is left in the directory.
    assert.deepEqual(readdirSync(`${env.srv.dataDir}/files`), [file]);

    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const up = log.entries.filter((e) => e.event === 'chat.file.upload');
    const down = log.entries.filter((e) => e.event === 'chat.file.download');
    assert.equal(up.length, 1);
    assert.equal(down.length, 1);
    assert.equal(up[0].outcome, 'success');
    assert.equal(down[0].user, 'gp-1');
    assert.equal(down[0].object, conv);
    assert.match(down[0].detail, new RegExp(file));
  } finally {
    await env.close();
  }
});

test('a ticket works once, for its own file and direction, and not without itself', async () => {
  const env = await boot();
  try {
    const { gpc, patient, conv } = await consultChat(env, mls);
    const a = await upload(env, patient, conv, randomBytes(1000));
    const b = await upload(env, patient, conv, randomBytes(2000));
    const g = await gpc.ok('chat.file.download', { conversation: conv, file: a });
    // Without a ticket, with a made-up one, for the other file, or to upload: unauthenticated.
    for (const r of [
      await get(env, `/files/${a}`),
      await get(env, `/files/${a}`, 'x'.repeat(43)),
      await get(env, `/files/${b}`, g.ticket),
      await put(env, `/files/${a}`, g.ticket, new Uint8Array(1000)),
    ]) {
      assert.equal(r.status, 401);
      assert.equal((await r.json()).code, 'unauthenticated');
    }
    assert.equal((await get(env, `/files/${a}`, g.ticket)).status, 200);
    const again = await get(env, `/files/${a}`, g.ticket);
    assert.equal(again.status, 401);
    // Paths that are not a file id.
    for (const p of ['/files/..%2fspreekkamer.db', '/files/', '/files/spreekkamer.db', '/files/f_a.part']) {
      const r = await get(env, p, g.ticket);
      assert.equal(r.status, 404, p);
    }
    // A NUL in the path: the HTTP library closes the connection.
    await assert.rejects(get(env, '/files/f_a%00b', g.ticket));
    // Other methods.
    const del = await fetch(`${env.srv.url}/files/${a}`, { method: 'DELETE' });
    assert.equal(del.status, 405);
    // The server carries on.
    assert.equal((await gpc.req('ping')).type, 'ok');
  } finally {
    await env.close();
  }
});

test("only members of the file's own conversation get a ticket", async () => {
  const env = await boot();
  try {
    const one = await consultChat(env, mls);
    const two = await consultChat(env, mls);
    const file = await upload(env, one.patient, one.conv, randomBytes(500));
    // The other consult's patient, through their own conversation: the file is not there.
    let r = await two.patient.req('chat.file.download', { conversation: two.conv, file });
    assert.equal(r.code, 'not_found');
    // ... and through the file's conversation: not a member.
    r = await two.patient.req('chat.file.download', { conversation: one.conv, file });
    assert.equal(r.code, 'forbidden');
    r = await two.patient.req('chat.file.upload', { conversation: one.conv, size: 10 });
    assert.equal(r.code, 'forbidden');
    // A GP of another practice.
    const other = await env.as(env.users.gp2);
    await ChatDevice.open(other, mls, 'elders-pc', { keyPackages: 0 });
    r = await other.req('chat.file.download', { conversation: one.conv, file });
    assert.equal(r.code, 'forbidden');
    // Without declaring a device first.
    const bare = await env.as(env.users.gp);
    r = await bare.req('chat.file.download', { conversation: one.conv, file });
    assert.equal(r.code, 'bad_state');
    // Bad fields.
    for (const f of [{}, { conversation: one.conv }, { conversation: one.conv, file: 7 }]) {
      assert.equal((await one.gpc.req('chat.file.download', f)).code, 'bad_message');
    }
    for (const size of [0, -1, 1.5, 'groot']) {
      assert.equal((await one.gpc.req('chat.file.upload', { conversation: one.conv, size })).code, 'bad_message');
    }
  } finally {
    await env.close();
  }
});

test('access that ends between the ticket and its use ends the transfer, and it is audited', async () => {
  const env = await boot();
  try {
    const { gpc, patient, consult, participant, conv } = await consultChat(env, mls);
    const file = await upload(env, gpc, conv, randomBytes(4000));
    const g = await patient.ok('chat.file.download', { conversation: conv, file });
    const up = await patient.ok('chat.file.upload', { conversation: conv, size: 100 });
    await gpc.ok('lobby.send_back', { consult: consult.id, participant: participant.id });
    let r = await get(env, g.path, g.ticket);
    assert.equal(r.status, 403);
    assert.equal((await r.json()).code, 'forbidden');
    r = await put(env, up.path, up.ticket, new Uint8Array(100));
    assert.equal(r.status, 403);
    assert.ok(!existsSync(`${env.srv.dataDir}/files/${up.file}`));
    const admin = await env.as(env.users.admin);
    const log = await admin.ok('audit.read', { limit: 1000 });
    const refused = log.entries.filter((e) => e.event.startsWith('chat.file.') && e.outcome !== 'success');
    assert.deepEqual(
      refused.map((e) => [e.event, e.outcome, e.user, e.object]),
      [
        ['chat.file.download', 'forbidden', participant.id, conv],
        ['chat.file.upload', 'forbidden', participant.id, conv],
      ],
    );
  } finally {
    await env.close();
  }
});

test('a ticket dies with the session that asked for it', async () => {
  const env = await boot();
  try {
    const { gpc, patient, conv } = await consultChat(env, mls);
    const file = await upload(env, gpc, conv, randomBytes(100));
    const g = await patient.ok('chat.file.download', { conversation: conv, file });
    patient.close();
    await new Promise((res) => setTimeout(res, 200));
    const r = await get(env, g.path, g.ticket);
    assert.equal(r.status, 401);
  } finally {
    await env.close();
  }
});

test('sizes: the limit per file, the quota per conversation, and a body that does not match', async () => {
  const env = await boot(['--file-max-bytes', '4096', '--file-quota-bytes', '10000']);
  try {
    const { gpc, conv } = await consultChat(env, mls);
    let r = await gpc.req('chat.file.upload', { conversation: conv, size: 4097 });
    assert.equal(r.code, 'too_large');
    await upload(env, gpc, conv, randomBytes(4096));
    await upload(env, gpc, conv, randomBytes(4096));
    r = await gpc.req('chat.file.upload', { conversation: conv, size: 4096 });
    assert.equal(r.code, 'too_large');
    assert.match(r.message, /quota/);
    // Content-Length other than the granted size.
    const g = await gpc.ok('chat.file.upload', { conversation: conv, size: 1000 });
    r = await put(env, g.path, g.ticket, new Uint8Array(999));
    assert.equal(r.status, 400);
    assert.equal((await r.json()).code, 'bad_message');
    // A download of a file whose upload never came: not found.
    r = await gpc.req('chat.file.download', { conversation: conv, file: g.file });
    const d = await get(env, r.path, r.ticket);
    assert.equal(d.status, 404);
    assert.deepEqual(
      readdirSync(`${env.srv.dataDir}/files`).filter((n) => n.endsWith('.part')),
      [],
    );
    assert.equal((await gpc.req('ping')).type, 'ok');
  } finally {
    await env.close();
  }
});

test('an upload cut off halfway leaves nothing behind, and the file is not there', async () => {
  const env = await boot();
  try {
    const { gpc, conv } = await consultChat(env, mls);
    const g = await gpc.ok('chat.file.upload', { conversation: conv, size: 100000 });
    const sock = connect(env.srv.port, '127.0.0.1');
    await new Promise((res) => sock.once('connect', res));
    sock.write(`PUT ${g.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${g.ticket}\r\n` +
      'Content-Length: 100000\r\n\r\n');
    sock.write(randomBytes(30000));
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(readdirSync(`${env.srv.dataDir}/files`), [`${g.file}.part`]);
    sock.destroy();
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(readdirSync(`${env.srv.dataDir}/files`), []);
    const d = await gpc.ok('chat.file.download', { conversation: conv, file: g.file });
    assert.equal((await get(env, d.path, d.ticket)).status, 404);
  } finally {
    await env.close();
  }
});
