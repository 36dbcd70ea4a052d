// Chat attachments on several nodes (run under tests/lib/with_postgres.sh and
// tests/lib/with_redis.sh): nodes that share the store share `files_dir` too (docs/operations.md,
// "Attachments"). The patient on node B uploads an encrypted photo to B; the GP on node A gets a
// download ticket from A and reads the same bytes from A.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodes } from '../lib/nodes.mjs';
import { ChatDevice, loadMls } from './lib.mjs';

const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
const skip = (!process.env.SPK_TEST_PG || !process.env.SPK_TEST_REDIS) &&
  'needs SPK_TEST_PG and SPK_TEST_REDIS (tests/lib/with_postgres.sh, tests/lib/with_redis.sh)';

test('an attachment uploaded on one node is downloaded byte for byte from another', { skip, timeout: 120000 }, async () => {
  const shared = mkdtempSync(join(tmpdir(), 'spk-files-'));
  const env = await startNodes(['a', 'b'], { redis: process.env.SPK_TEST_REDIS, args: ['--files-dir', shared] });
  const [A, B] = env.srv;
  const mls = await loadMls();
  try {
    const gpc = await env.connect(A, env.token(GP));
    const { consult } = await gpc.ok('consult.create', { patient: 'pseudo-files' });
    const { invite } = await gpc.ok('invite.create', { consult: consult.id });
    await gpc.ok('consult.join', { consult: consult.id });
    const patient = await env.connect(B);
    const red = await patient.ok('invite.redeem', { invite: invite.code, name: 'Sanne de Vries' });
    await gpc.until('lobby.update', (e) => e.lobby.length === 1, 10000); // A knows of B's patient
    await gpc.ok('lobby.admit', { consult: consult.id, participant: red.participant.id });
    await patient.next('admitted');
    const { conversation } = await gpc.ok('chat.create', { kind: 'consult', consult: consult.id });
    const conv = conversation.id;
    const gp = await ChatDevice.open(gpc, mls, 'gp-laptop');
    await gp.sync();
    const pt = await ChatDevice.open(patient, mls, 'patient-phone');
    await pt.sync();
    await gp.createGroup(conv);
    await gp.addUser(conv, { sub: red.participant.id }, 'patient', 'Sanne');
    await pt.until(() => pt.groups.has(conv));

    // Upload on B.
    const photo = randomBytes(200 * 1024);
    const up = await patient.ok('chat.file.upload', { conversation: conv, size: photo.length });
    const put = await fetch(B.url + up.path, { method: 'PUT', headers: { authorization: `Bearer ${up.ticket}` }, body: photo });
    assert.equal(put.status, 201, await put.clone().text());
    assert.deepEqual(readdirSync(shared), [up.file]);
    await pt.send(conv, JSON.stringify({ file: up.file, name: 'huid.jpg' }));
    await gp.until(() => gp.texts(conv).length === 1);

    // Download on A, from the directory both share.
    const down = await gpc.ok('chat.file.download', { conversation: conv, file: up.file });
    const got = await fetch(A.url + down.path, { headers: { authorization: `Bearer ${down.ticket}` } });
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(photo), 'the same bytes');
  } finally {
    await env.close();
    rmSync(shared, { recursive: true, force: true });
  }
});
