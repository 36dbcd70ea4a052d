// Redis with credentials (run under tests/lib/with_postgres.sh and tests/lib/with_redis.sh):
// the test gives Redis an ACL user for spreekd with the rights docs/operations.md names (its
// channel, SUBSCRIBE, PUBLISH, PING) and takes every right from the default user, as
// an operator would (docs/operations.md, "Events between nodes"). Nodes with the user's name and
// password (`redis_user`, `redis_password`) subscribe and carry events to each other; a node
// with a wrong password is refused, says so once, and carries none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNodes } from '../lib/nodes.mjs';
import { startServer } from '../lib/server.mjs';

const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
const skip = (!process.env.SPK_TEST_PG || !process.env.SPK_TEST_REDIS) &&
  'needs SPK_TEST_PG and SPK_TEST_REDIS (tests/lib/with_postgres.sh, tests/lib/with_redis.sh)';

function redis(...args) {
  const [host, port] = process.env.SPK_TEST_REDIS.split(':');
  return execFileSync('redis-cli', ['-h', host, '-p', port, '--no-auth-warning', ...args], { encoding: 'utf8' }).trim();
}

test('nodes sign in to Redis as their ACL user; a wrong password is refused', { skip, timeout: 120000 }, async () => {
  const pass = 'spk-' + Math.random().toString(36).slice(2) + '-redis';
  assert.equal(redis('ACL', 'SETUSER', 'spreekd', 'on', `>${pass}`, '&spreekkamer', '+subscribe', '+publish', '+ping'), 'OK');
  assert.equal(redis('ACL', 'SETUSER', 'default', 'resetpass', '>not-for-spreekd', '-@all'), 'OK');
  const cred = ['--redis-user', 'spreekd', '--redis-password', pass];
  const env = await startNodes(['a', 'b'], { redis: process.env.SPK_TEST_REDIS, args: cred });
  let wrong;
  try {
    const [A, B] = env.srv;
    // Events cross: a patient waiting on B is seen by the GP on A.
    const gp = await env.connect(A, env.token(GP));
    const { consult } = await gp.ok('consult.create', { patient: 'pseudo-acl' });
    const { invite } = await gp.ok('invite.create', { consult: consult.id });
    await gp.ok('consult.join', { consult: consult.id });
    const patient = await env.connect(B);
    await patient.ok('invite.redeem', { invite: invite.code, name: 'Sanne de Vries' });
    await gp.until('lobby.update', (e) => e.lobby.length === 1 && e.lobby[0].online);

    // A node with the wrong password: refused, said once, never subscribed.
    const dir = mkdtempSync(join(tmpdir(), 'spk-node-wrong-'));
    for (const f of ['issuer.key', 'audit.key']) copyFileSync(join(env.dirs[0], f), join(dir, f));
    wrong = await startServer({
      dataDir: dir,
      keepDataDir: false,
      args: ['--store', env.store, '--redis', process.env.SPK_TEST_REDIS, '--redis-user', 'spreekd', '--redis-password', 'wrong-password'],
    });
    await wrong.waitLog(/^bus: Redis at .* refused spreekd's credentials/, 10000);
    await sleep(2500); // two more tries
    assert.equal(wrong.grep(/refused spreekd's credentials/).length, 1, 'said once');
    assert.equal(wrong.grep(/^bus: subscribed/).length, 0);
    assert.equal(wrong.grep(/connection to Redis lost/).length, 0);
    assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-password/, 'the password is never logged');
  } finally {
    if (wrong) await wrong.stop();
    await env.close();
  }
});
