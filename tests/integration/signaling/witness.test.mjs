// The audit witness (docs/audit.md) and spreekctl's operator identity. Whoever holds a backup of
// the data directory holds a consistent older chain with its anchor and the audit key: putting
// that backup back erases every later entry, and `audit verify` alone cannot see it. The heads
// spreekd shipped to the witness (here a file outside the data directory) can:
// `audit verify --witness FILE` names the first witnessed head no longer in the chain.
// spreekctl names its operator from the process's user and login session, never from $USER.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { attach, consultWithPatient } from './fixture.mjs';
import { startServer } from '../lib/server.mjs';
import { storeArgs } from '../lib/store.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// spreekctl on the data directory (and, in the PostgreSQL run, on that directory's database)
const ctl = (dataDir, args, env = {}) =>
  spawnSync(process.env.SPREEKCTL ?? 'build/server/spreekctl', ['--data', dataDir, ...storeArgs(dataDir), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

test('a backup put back is consistent, but the witness shows what it erased', { skip: process.env.SPK_TEST_STORE === 'postgresql' && 'the store is not in the data directory' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-witness-'));
  const data = join(dir, 'data');
  const witness = join(dir, 'witness.log');
  const args = ['--audit-witness', witness, '--audit-witness-interval', '100'];
  try {
    let env = attach(await startServer({ dataDir: data, args }));
    let gp = await env.as(env.users.gp);
    await consultWithPatient(env, gp);
    await sleep(300);
    await env.srv.stop();
    cpSync(data, join(dir, 'backup'), { recursive: true }); // the backup
    env = attach(await startServer({ dataDir: data, args }));
    gp = await env.as(env.users.gp);
    for (let i = 0; i < 3; i++) await consultWithPatient(env, gp);
    await sleep(300);
    await env.srv.stop();
    const lines = readFileSync(witness, 'utf8').trim().split('\n');
    assert.ok(lines.length >= 2, 'heads were witnessed');
    for (const l of lines) assert.match(l, /^spk-audit-witness v1 \d+ \d+ [0-9a-f]{64}$/);
    let v = ctl(data, ['audit', 'verify', '--witness', witness]);
    assert.equal(v.status, 0, v.stderr + v.stdout);
    assert.match(v.stdout, /witness: \d+ heads in .* are all in the chain/);

    // The backup goes back in place of the live data directory.
    rmSync(data, { recursive: true, force: true });
    cpSync(join(dir, 'backup'), data, { recursive: true });
    v = ctl(data, ['audit', 'verify']);
    assert.equal(v.status, 0, 'the older chain and its anchor agree with each other');
    v = ctl(data, ['audit', 'verify', '--witness', witness]);
    assert.notEqual(v.status, 0, 'the witness sees the erased entries');
    assert.match(v.stdout + v.stderr, /witness/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spreekctl names its operator from the process, not from $USER', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-operator-'));
  try {
    const srv = await startServer({ dataDir: join(dir, 'data') });
    await srv.stop();
    const r = ctl(join(dir, 'data'), ['token', 'mint', '--role', 'gp', '--sub', 'gp-1', '--name', 'Dr. Jansen', '--practice', 'praktijk-a'], { USER: 'mallory', SUDO_USER: 'mallory', LOGNAME: 'mallory' });
    assert.equal(r.status, 0, r.stderr);
    const list = ctl(join(dir, 'data'), ['audit', 'list', '--json']);
    assert.equal(list.status, 0, list.stderr);
    const entries = JSON.parse(list.stdout);
    const mine = entries.filter((e) => e.access_point.startsWith('spreekctl'));
    assert.ok(mine.length >= 1, JSON.stringify(entries.slice(-3)));
    for (const e of mine) assert.doesNotMatch(JSON.stringify(e), /mallory/);
    const me = spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim();
    for (const e of mine) {
      assert.equal(e.user, me);
      assert.equal(e.issuer, 'unix');
      assert.match(e.access_point, new RegExp(`^spreekctl uid ${process.getuid()}\\b`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
