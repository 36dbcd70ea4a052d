// Which store the integration tests run spreekd and spreekctl on. By default SQLite in the
// data directory (nothing to add). With SPK_TEST_STORE=postgresql, under
// tests/lib/with_postgres.sh (which exports SPK_TEST_PG and puts createdb/dropdb on PATH), every
// data directory gets a PostgreSQL database of its own, named after the directory, so that a
// server restarted on the same directory finds its state again.
//
//   import { storeArgs, dropStore } from './store.mjs';
//   spawn(bin, ['--data', dir, ...storeArgs(dir)]);
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const onPostgres = () => process.env.SPK_TEST_STORE === 'postgresql';

const dbName = (dataDir) => `spk_${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 24)}`;

const created = new Set();

/** The libpq connection string of dataDir's database (created on first use). */
export function pgTarget(dataDir) {
  const base = process.env.SPK_TEST_PG;
  if (!base) throw new Error('SPK_TEST_STORE=postgresql needs SPK_TEST_PG (tests/lib/with_postgres.sh)');
  const name = dbName(dataDir);
  if (!created.has(name)) {
    const r = spawnSync('createdb', [name], { encoding: 'utf8' });
    if (r.status !== 0 && !/already exists/.test(r.stderr)) {
      throw new Error(`createdb ${name}: ${r.stderr || r.error}`);
    }
    created.add(name);
  }
  return `${base} dbname=${name}`;
}

/** Extra flags that point spreekd or spreekctl at dataDir's store ([] for SQLite). */
export function storeArgs(dataDir, args = []) {
  if (!onPostgres() || args.some((a) => a === '--store' || a.startsWith('--store='))) return [];
  return ['--store', pgTarget(dataDir)];
}

/** Drops dataDir's database (PostgreSQL), when the data directory goes. */
export function dropStore(dataDir) {
  if (!onPostgres()) return;
  const name = dbName(dataDir);
  spawnSync('dropdb', ['--force', '--if-exists', name], { encoding: 'utf8' });
  created.delete(name);
}

/** Runs one SQL command with psql on target; its output, trimmed (throws on failure). */
export function psql(target, sql) {
  const r = spawnSync('psql', [target, '-XAtc', sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

/** pg_ctl on the test's own server (SPK_TEST_PG_CTL, tests/lib/with_postgres.sh): stop, start,
 *  reload (throws on failure). */
export function pgCtl(...args) {
  const r = spawnSync(process.env.SPK_TEST_PG_CTL, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pg_ctl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
}
