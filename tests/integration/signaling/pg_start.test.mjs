// A spreekd node started while its PostgreSQL database cannot be reached, or refuses it (run
// under tests/lib/with_postgres.sh; docs/operations.md "PostgreSQL", "Starting without the
// database"):
//  - PostgreSQL stopped: the node stays up and listens, /livez 200, /healthz 503
//    store_unavailable, a WebSocket upgrade 503; PostgreSQL started: /healthz 200 within
//    seconds, a client signs in and creates a consult, the audit chain verifies; SIGTERM while
//    it waits ends it with exit 0; a server answering `too many connections` (SQLSTATE 53300,
//    a passing state) is waited for too;
//  - a wrong password, a database that does not exist, TLS required of a server without it or a
//    schema newer than the build:
//    the node exits at once (1) and says
//    that PostgreSQL refused it, instead of trying again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '../lib/client.mjs';
import { ctl } from '../lib/ctl.mjs';
import { startServer } from '../lib/server.mjs';
import { dropStore, pgCtl, pgTarget, psql } from '../lib/store.mjs';
import { loadIssuer, mint } from '../lib/tokens.mjs';

const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
const skip = !process.env.SPK_TEST_PG && 'needs SPK_TEST_PG (tests/lib/with_postgres.sh)';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bin = () => process.env.SPREEKD ?? 'build/server/spreekd';

async function status(srv, path) {
  try {
    const r = await srv.get(path);
    return { status: r.status, body: r.body };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

test('started with PostgreSQL stopped: stays up, 503 until it is back, then serves', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-pgstart-'));
  const store = pgTarget(dir); /* the database exists; the server is stopped next */
  pgCtl('stop', '-m', 'fast');
  let srv;
  try {
    srv = await startServer({ dataDir: dir, args: ['--store', store] });
    await srv.waitLog(/^store: not reachable at start: listening meanwhile/, 10000);
    assert.deepEqual(await status(srv, '/livez'), { status: 200, body: '{"status":"live"}' });
    assert.deepEqual(await status(srv, '/healthz'), { status: 503, body: '{"status":"store_unavailable"}' });
    assert.equal((await status(srv, '/')).status, 503);
    await assert.rejects(Client.connect(srv.wsUrl), /503/);
    await sleep(3000); /* several attempts (0.1 s doubling to 2 s): still up, logged once */
    assert.equal(srv.exit, null);
    assert.equal(srv.logs.filter((l) => /^store: PostgreSQL not reachable/.test(l.msg ?? '')).length, 1);
    assert.equal((await status(srv, '/healthz')).status, 503);

    pgCtl('start');
    const t0 = Date.now();
    let h;
    do {
      h = await status(srv, '/healthz');
      if (h.status !== 200) await sleep(50);
    } while (h.status !== 200 && Date.now() - t0 < 10000);
    assert.deepEqual(h, { status: 200, body: '{"status":"ok"}' }, 'not healthy within 10 s');
    await srv.waitLog(/^store open: serving/, 1000);

    const c = await Client.connect(srv.wsUrl);
    await c.next('hello');
    await c.ok('auth', { token: mint(loadIssuer(dir), GP) });
    const { consult } = await c.ok('consult.create', { patient: 'pseudo-start' });
    c.close();
    assert.equal(psql(store, `SELECT count(*) FROM consults WHERE id = '${consult.id}'`), '1');
    await srv.stop();
    const v = ctl(dir, ['--store', store, 'audit', 'verify']);
    assert.equal(v.status, 0, v.stderr);
  } finally {
    spawnSync(process.env.SPK_TEST_PG_CTL, ['start'], { encoding: 'utf8' }); /* if still stopped */
    if (srv && !srv.exit) srv.kill();
    rmSync(dir, { recursive: true, force: true });
    dropStore(dir);
  }
});

test('started with PostgreSQL stopped: SIGTERM while it waits ends it cleanly', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-pgstart-'));
  const store = pgTarget(dir);
  pgCtl('stop', '-m', 'fast');
  let srv;
  try {
    srv = await startServer({ dataDir: dir, args: ['--store', store] });
    await srv.waitLog(/^store: not reachable at start/, 10000);
    const { code } = await srv.stop(); /* throws unless it exits 0 */
    assert.equal(code, 0);
    assert.ok(srv.logs.some((l) => /^stopped before the store could be opened/.test(l.msg ?? '')));
  } finally {
    spawnSync(process.env.SPK_TEST_PG_CTL, ['start'], { encoding: 'utf8' });
    if (srv && !srv.exit) srv.kill();
    rmSync(dir, { recursive: true, force: true });
    dropStore(dir);
  }
});

test('a server that answers "too many connections" (53300) counts as not reachable: it waits', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-pgstart-'));
  const db = 'spk_pgstart_limit';
  let srv;
  try {
    /* a role of its own that owns the database, with no connection allowed for now */
    psql(process.env.SPK_TEST_PG, 'CREATE ROLE spk_lim LOGIN CONNECTION LIMIT 0');
    psql(process.env.SPK_TEST_PG, `CREATE DATABASE ${db} OWNER spk_lim`);
    const store = `${process.env.SPK_TEST_PG.replace(/dbname=\S+/, '').replace(/user=\S+/, '')} user=spk_lim dbname=${db}`;
    srv = await startServer({ dataDir: dir, args: ['--store', store] });
    await srv.waitLog(/^store: not reachable at start/, 10000);
    assert.match(srv.stderr, /53300/);
    await sleep(1500);
    assert.equal(srv.exit, null);
    assert.equal((await status(srv, '/healthz')).status, 503);
    psql(process.env.SPK_TEST_PG, 'ALTER ROLE spk_lim CONNECTION LIMIT -1');
    await srv.waitLog(/^store open: serving/, 10000);
    assert.deepEqual(await status(srv, '/healthz'), { status: 200, body: '{"status":"ok"}' });
    await srv.stop();
  } finally {
    if (srv && !srv.exit) srv.kill();
    spawnSync('psql', [process.env.SPK_TEST_PG, '-XAtc', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`]);
    spawnSync('psql', [process.env.SPK_TEST_PG, '-XAtc', 'DROP ROLE IF EXISTS spk_lim']);
    rmSync(dir, { recursive: true, force: true });
  }
});

// Runs spreekd to its exit (at most 20 s) and returns {status, stderr, ms}.
function runToExit(dir, store) {
  const t0 = Date.now();
  const r = spawnSync(bin(), ['--data', dir, '--listen', '127.0.0.1:0', '--store', store],
    { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, signal: r.signal, stderr: r.stderr, ms: Date.now() - t0 };
}

test('a wrong password, a missing database, TLS refused, a newer schema: exits at once, PostgreSQL refused it', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-pgstart-'));
  const hba = join(dirname(process.env.SPK_TEST_PG_CTL), 'data', 'pg_hba.conf');
  const hbaWas = readFileSync(hba, 'utf8');
  try {
    /* password authentication for one role over TCP, ahead of the test server's trust lines */
    psql(process.env.SPK_TEST_PG, "CREATE ROLE spk_pw LOGIN PASSWORD 'goed'");
    writeFileSync(hba, `host all spk_pw 127.0.0.1/32 scram-sha-256\n${hbaWas}`);
    pgCtl('reload');
    const tcp = process.env.SPK_TEST_PG_TCP;
    const right = spawnSync('psql', [`${tcp} user=spk_pw password=goed`, '-XAtc', 'SELECT 1'], { encoding: 'utf8' });
    assert.equal(right.stdout.trim(), '1', right.stderr); /* the role and rule work */

    const bad = runToExit(dir, `${tcp} user=spk_pw password=fout`);
    assert.equal(bad.status, 1, `${bad.signal} ${bad.stderr}`);
    assert.ok(bad.ms < 10000, `took ${bad.ms} ms`);
    assert.match(bad.stderr, /store: PostgreSQL refused the connection \(not tried again\): .*28P01/);
    assert.doesNotMatch(bad.stderr, /not reachable/);

    const none = runToExit(dir, `${process.env.SPK_TEST_PG.replace(/dbname=\S+/, '')} dbname=spk_bestaat_niet`);
    assert.equal(none.status, 1, `${none.signal} ${none.stderr}`);
    assert.match(none.stderr, /store: PostgreSQL refused the connection \(not tried again\): .*3D000/);

    const tls = runToExit(dir, `${tcp} dbname=postgres sslmode=require`); /* the server has no TLS */
    assert.equal(tls.status, 1, `${tls.signal} ${tls.stderr}`);
    assert.match(tls.stderr, /store: PostgreSQL refused the connection \(not tried again\): .*SSL/);

    /* a database of a newer schema than this build: refused as before, not waited for */
    const store = pgTarget(dir);
    const srv = await startServer({ dataDir: dir, args: ['--store', store] });
    await srv.stop();
    psql(store, 'UPDATE spk_schema SET version = 999');
    const newer = runToExit(dir, store);
    assert.equal(newer.status, 1, `${newer.signal} ${newer.stderr}`);
    assert.match(newer.stderr, /schema version 999 is newer than this build knows/);
    assert.doesNotMatch(newer.stderr, /not reachable/);
  } finally {
    writeFileSync(hba, hbaWas);
    spawnSync(process.env.SPK_TEST_PG_CTL, ['reload'], { encoding: 'utf8' });
    spawnSync('psql', [process.env.SPK_TEST_PG, '-XAtc', 'DROP ROLE IF EXISTS spk_pw']);
    rmSync(dir, { recursive: true, force: true });
    dropStore(dir);
  }
});
