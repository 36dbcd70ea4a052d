// A spreekd node that loses its PostgreSQL connections (run under tests/lib/with_postgres.sh;
// docs/operations.md "PostgreSQL", docs/architecture.md "A lost connection to PostgreSQL"):
//  - its backends ended (pg_terminate_backend) while its clients are idle: the node reconnects
//    both connections and the clients' next requests succeed;
//  - PostgreSQL stopped and started again under a load of requests: the node stays up, requests
//    during the outage are answered `unavailable` on connections that carry on, /healthz answers
//    503 store_unavailable meanwhile and 200 after, every acknowledged write is in the database,
//    and the audit chain verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ctl } from '../lib/ctl.mjs';
import { startNodes } from '../lib/nodes.mjs';
import { pgCtl, psql } from '../lib/store.mjs';
import { ChatDevice, loadMls } from '../chat/lib.mjs';

const GP = { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a' };
const skip = !process.env.SPK_TEST_PG && 'needs SPK_TEST_PG (tests/lib/with_postgres.sh)';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const endBackends = (target) => psql(target, 'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity'
  + ' WHERE datname = current_database() AND pid <> pg_backend_pid()');

async function healthz(srv) {
  try {
    const r = await srv.get('/healthz');
    return { status: r.status, body: r.body };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

/* /healthz follows the store within its 100 ms check: true once it answers 200 (10 s at most). */
async function healthy(srv) {
  for (let i = 0; i < 200; i++) {
    if ((await healthz(srv)).status === 200) return true;
    await sleep(50);
  }
  return false;
}

test('backends ended while clients are idle: the node reconnects, the next requests succeed', { skip }, async () => {
  const env = await startNodes(['a']);
  const [srv] = env.srv;
  try {
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const c = await env.connect(srv, env.token(GP));
      await c.ok('consult.create', { patient: `pseudo-idle-${i}` });
      clients.push(c);
    }
    assert.equal(endBackends(env.store), '2'); /* the node's connection and its sync thread's */
    await srv.waitLog(/^store: reconnected/, 10000);
    for (const [i, c] of clients.entries()) {
      const m = await c.req('consult.create', { patient: `pseudo-after-${i}` });
      assert.equal(m.type, 'ok', JSON.stringify(m)); /* an ok waits for the sync thread's flush */
    }
    assert.ok(await healthy(srv), '/healthz did not answer 200 again');
    const m = await srv.metrics();
    assert.ok(m.spk_store_reconnects_total >= 2, JSON.stringify(m.spk_store_reconnects_total));
    assert.equal(m.spk_store_up, 1);
    assert.equal(srv.exit, null);
    assert.equal(srv.logs.find((l) => /storage failure/.test(l.msg ?? '')), undefined);
    assert.equal(psql(env.store, "SELECT count(*) FROM consults WHERE patient LIKE 'pseudo-%'"), '6');
    const v = ctl(env.dirs[0], ['--store', env.store, 'audit', 'verify']);
    assert.equal(v.status, 0, v.stderr);
  } finally {
    await env.close();
  }
});

// Every client creates consults as fast as the answers come, until stop(); what was
// acknowledged, the error codes and the connections that broke are recorded.
function startLoad(clients) {
  const r = { acked: [], codes: new Map(), broken: [], running: true };
  const loops = clients.map(async (c, k) => {
    for (let i = 0; r.running; i++) {
      const m = await c.req('consult.create', { patient: `pseudo-load-${k}-${i}` }, 15000)
        .catch((e) => ({ type: 'lost', e }));
      if (m.type === 'lost') {
        r.broken.push(`client ${k}: ${m.e.message} (${new Date().toISOString()})`);
        return;
      }
      if (m.type === 'ok') {
        r.acked.push(m.consult.id);
      } else {
        r.codes.set(m.code, (r.codes.get(m.code) ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  r.stop = async () => {
    r.running = false;
    await Promise.all(loops);
  };
  return r;
}

// A GP device sending chat messages into a consult's conversation as fast as the answers come,
// until stop(); the acknowledged sequence numbers and the error codes are recorded.
async function startChat(env, srv) {
  const mls = await loadMls();
  const gpc = await env.connect(srv, env.token(GP));
  const { consult } = await gpc.ok('consult.create', { patient: 'pseudo-chat' });
  const { conversation } = await gpc.ok('chat.create', { kind: 'consult', consult: consult.id });
  const dev = await ChatDevice.open(gpc, mls, 'gp-laptop');
  await dev.sync();
  await dev.createGroup(conversation.id);
  const r = { conv: conversation.id, seqs: [], codes: new Map(), broken: [], running: true };
  const loop = (async () => {
    for (let i = 0; r.running; i++) {
      /* An answer held for its commit waits out the outage: a longer wait than dev.send's. */
      const message = Buffer.from(dev.groups.get(r.conv).encrypt(`bericht ${i}`)).toString('base64url');
      const m = await dev.client.req('chat.send', { conversation: r.conv, message }, 15000)
        .catch((e) => ({ type: 'lost', e }));
      if (m.type === 'lost') {
        r.broken.push(`chat: ${m.e.message}`);
        return;
      }
      if (m.type === 'ok') {
        r.seqs.push(m.seq);
      } else {
        r.codes.set(m.code, (r.codes.get(m.code) ?? 0) + 1);
        await sleep(m.retry_ms ?? 20);
      }
    }
  })();
  r.stop = async () => {
    r.running = false;
    await loop;
  };
  return r;
}

function expectStored(env, acked) {
  const stored = new Set(psql(env.store, 'SELECT id FROM consults').split('\n'));
  assert.deepEqual(acked.filter((id) => !stored.has(id)), [], 'acknowledged consults missing from the database');
  const v = ctl(env.dirs[0], ['--store', env.store, 'audit', 'verify']);
  assert.equal(v.status, 0, v.stderr);
}

test('PostgreSQL stopped and started under load: acknowledged writes kept, unavailable meanwhile, the node stays up', { skip }, async () => {
  /* The load is well above the default rate limit of a connection; it is not what is tested. */
  const env = await startNodes(['a'], { args: ['--rate', '5000', '--burst', '5000'] });
  const [srv] = env.srv;
  try {
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await env.connect(srv, env.token(GP)));
    const probe = await env.connect(srv, env.token(GP));
    const chat = await startChat(env, srv);
    const load = startLoad(clients);
    await sleep(700);
    const before = load.acked.length;
    const chatBefore = chat.seqs.length;
    pgCtl('stop', '-m', 'fast');
    const seen = [];
    let probed = null;
    let live = null;
    for (let i = 0; i < 30; i++) { /* 1.5 s without the database */
      seen.push(await healthz(srv));
      if (!probed && seen.at(-1).status === 503) {
        live = await srv.get('/livez'); /* alive: no liveness probe restarts the node */
        /* A request on a connection with nothing held (the load's may wait for answers to
         * commits made just before the stop, which are held until they are durable). */
        probed = await probe.req('consult.create', { patient: 'pseudo-probe' });
      }
      await sleep(50);
    }
    pgCtl('start');
    const back = await healthy(srv);
    const atBack = load.acked.length;
    await sleep(700);
    await load.stop();
    await chat.stop();
    const { acked, codes } = load;
    assert.deepEqual(load.broken, [], `connections lost; the node: ${JSON.stringify(srv.exit)}`);
    assert.equal(srv.exit, null, 'the node exited');
    assert.ok(back, '/healthz did not answer 200 again');
    assert.ok(seen.some((h) => h.status === 503 && JSON.parse(h.body).status === 'store_unavailable'),
      JSON.stringify(seen.slice(0, 3)));
    assert.equal(live?.status, 200, '/livez during the outage');
    assert.ok(before > 0, 'no request succeeded before the outage');
    assert.ok(acked.length > atBack, 'no request succeeded after the outage');
    assert.equal(probed?.code, 'unavailable', JSON.stringify(probed));
    assert.deepEqual([...codes.keys()].filter((c) => c !== 'unavailable'), [], JSON.stringify([...codes]));
    expectStored(env, acked);
    /* Chat messages: acknowledged ones are in the conversation's log, refused ones were told so. */
    assert.deepEqual(chat.broken, []);
    assert.ok(chat.seqs.length > chatBefore, 'no chat message acknowledged after the outage');
    assert.deepEqual([...chat.codes.keys()].filter((c) => c !== 'unavailable'), [], JSON.stringify([...chat.codes]));
    const logged = new Set(psql(env.store, `SELECT seq FROM chat_log WHERE conversation = '${chat.conv}'`)
      .split('\n').map(Number));
    assert.deepEqual(chat.seqs.filter((q) => !logged.has(q)), [], 'acknowledged chat messages missing');
    /* Every connection carried on, the probe's too. */
    for (const c of [...clients, probe]) assert.equal((await c.req('consult.create', { patient: 'pseudo-end' })).type, 'ok');
    assert.equal(srv.logs.find((l) => /storage failure/.test(l.msg ?? '')), undefined);
  } finally {
    await env.close();
  }
});

// A crash loses the commits PostgreSQL confirmed but had not flushed (synchronous_commit is off
// for the node's session). None of them was acknowledged: if the node finds one missing it
// drains and exits 1, otherwise it carries on; either way every acknowledged write is there.
test('PostgreSQL crashes under load: nothing acknowledged is lost', { skip }, async (t) => {
  const env = await startNodes(['a'], { args: ['--rate', '5000', '--burst', '5000'] });
  const [srv] = env.srv;
  try {
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await env.connect(srv, env.token(GP)));
    const load = startLoad(clients);
    await sleep(700);
    pgCtl('stop', '-m', 'immediate');
    await sleep(1000);
    pgCtl('start');
    let up = false;
    for (let i = 0; i < 300 && !srv.exit && !up; i++) {
      up = (await healthz(srv)).status === 200;
      if (!up) await sleep(50);
    }
    await sleep(500);
    await load.stop();
    assert.ok(load.acked.length > 0);
    expectStored(env, load.acked);
    if (srv.exit === null) {
      t.diagnostic('the node found every commit it made and carried on');
      assert.ok(up, '/healthz did not answer 200 again');
      assert.deepEqual(load.broken, []);
      assert.deepEqual([...load.codes.keys()].filter((c) => c !== 'unavailable'), [], JSON.stringify([...load.codes]));
      assert.equal((await clients[0].req('consult.create', { patient: 'pseudo-end' })).type, 'ok');
    } else {
      t.diagnostic('the node found a commit missing and stopped');
      assert.equal(srv.exit.code, 1);
      assert.ok(srv.logs.some((l) => /^store: after reconnecting: /.test(l.msg ?? '')));
    }
  } finally {
    await env.close();
  }
});
