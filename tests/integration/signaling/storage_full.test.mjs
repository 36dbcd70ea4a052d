// When the store cannot write (here: its file system is full), an action and its audit entry
// both fail: the client gets `internal`, nothing changed, the connection and server carry on,
// and once there is room again everything works and the audit chain verifies.
// Runs in a private mount namespace with a small tmpfs as the data directory (CMakeLists.txt:
// `unshare -m`; SPK_TMPFS names the mount point).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, writeSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { boot } from './fixture.mjs';
import { ctl } from '../lib/ctl.mjs';

const dir = process.env.SPK_TMPFS;

// Fills the file system until a write fails; returns the filler's path.
function fill(where) {
  const path = join(where, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  }
  try {
    for (;;) writeSync(fd, chunk.subarray(0, 512));
  } catch {
    // and the last bytes
  }
  closeSync(fd);
  return path;
}

test('a full disk fails the action and its audit entry together; nothing is lost', { skip: !dir }, async () => {
  const data = join(dir, 'data');
  const env = await boot([], { dataDir: data });
  try {
    const gp = await env.as(env.users.gp);
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-1', title: 'voor' });
    const filler = fill(dir);
    const refused = await gp.req('consult.create', { patient: 'pseudo-2', title: 'tijdens' });
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'internal');
    assert.equal(await gp.code('ping'), 'ok');
    unlinkSync(filler);
    const list = await gp.ok('consult.list');
    assert.deepEqual(list.consults.map((c) => c.title), ['voor']);
    await gp.ok('consult.create', { patient: 'pseudo-3', title: 'na' });
    assert.equal((await gp.ok('consult.get', { consult: consult.id })).consult.title, 'voor');
  } finally {
    await env.close();
  }
  const v = ctl(data, ['audit', 'verify']);
  assert.equal(v.status, 0, v.stdout + v.stderr);
});
