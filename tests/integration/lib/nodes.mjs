// Several spreekd nodes on one PostgreSQL database (tests/lib/with_postgres.sh), as separate
// machines would run them: each has its own data directory with copies of the keys an operator
// distributes (issuer.key, audit.key) made by the first node, and its own port on loopback.
//
//   const env = await startNodes(['a', 'b'], { redis: process.env.SPK_TEST_REDIS });
//   const gp = await env.connect(env.srv[0], env.token(claims));   // signed in
//   await env.close();
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from './client.mjs';
import { startServer } from './server.mjs';
import { dropStore, pgTarget } from './store.mjs';
import { loadIssuer, mint } from './tokens.mjs';

/** Starts one node per name (with `args` added to each); with `redis` they exchange events over
 *  it (and this waits until every node is subscribed). `hosts` gives node i its own loopback
 *  address (e.g. 127.0.0.2), as separate machines have; `nodeArgs[i]` are added to node i's. */
export async function startNodes(names, { redis, args: extra = [], hosts = [], nodeArgs = [] } = {}) {
  const dirs = names.map((n) => mkdtempSync(join(tmpdir(), `spk-node-${n}-`)));
  const store = pgTarget(dirs[0]);
  const args = ['--store', store, ...(redis ? ['--redis', redis] : []), ...extra];
  const argsOf = (i) => [...args, ...(nodeArgs[i] ?? []), ...(hosts[i] ? ['--listen', `${hosts[i]}:0`] : [])];
  const srv = [];
  try {
    srv.push(await startServer({ dataDir: dirs[0], args: argsOf(0) }));
    for (let i = 1; i < dirs.length; i++) {
      for (const f of ['issuer.key', 'audit.key']) copyFileSync(join(dirs[0], f), join(dirs[i], f));
      srv.push(await startServer({ dataDir: dirs[i], args: argsOf(i) }));
    }
    if (redis) await Promise.all(srv.map((s) => s.waitLog(/^bus: subscribed/, 10000)));
  } catch (e) {
    for (const s of srv) s.kill();
    throw e;
  }
  const issuer = loadIssuer(dirs[0]);
  const clients = [];
  const connect = async (node, token) => {
    const c = await Client.connect(node.wsUrl);
    clients.push(c);
    await c.next('hello');
    if (token) await c.ok('auth', { token });
    return c;
  };
  const close = async () => {
    for (const c of clients) c.close();
    for (const s of srv) if (!s.exit) await s.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dropStore(dirs[0]);
  };
  return { srv, dirs, store, token: (claims) => mint(issuer, claims), connect, close };
}
