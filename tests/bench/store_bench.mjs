// The store under signaling load, SQLite against PostgreSQL (docs/performance.md "Store").
// Usage: node tests/bench/store_bench.mjs SPREEKD [--seconds S] [--warmup S] [--repeat N]
//        [--clients N] [--nodes N] [--phases read,chat] [--backends sqlite,postgresql]
// Runs on SQLite, and on PostgreSQL too when SPK_TEST_PG names a server (scripts/bench.sh runs
// it under tests/lib/with_postgres.sh). Every phase of every round starts a fresh spreekd with a
// fresh data directory (and database), then measures for S seconds after a warm-up:
//   read:    N clients in a closed loop of mls.key_packages.status (one query, not audited)
//   audited: N clients in a closed loop of consult.get (a read and its audit entry, NEN 7513:
//            a transaction whose answer waits until the commit is durable)
//   write:   N clients in a closed loop of consult.create (a new consult and its audit entry,
//            answered once durable)
//   chat:    10 conversations, one sending device each with 8 messages in flight, chat.send of
//          MLS application messages encrypted before the phase (each one appended to the
//          conversation's log and acknowledged once durable)
// The load runs in two worker threads (their own event loops). Besides the rate, the CPU time
// per request is measured over the same interval (from /proc): spreekd's, and on PostgreSQL
// also the database server's (every process of the cluster), which is the work the database
// does for spreekd. On a shared machine the CPU time is the robust figure; the rate depends on
// how much CPU the processes got. Rounds are reported one by one, then medians and the
// PostgreSQL / SQLite ratios, and a JSON line last.
// With --nodes N (needs SPK_TEST_PG and SPK_TEST_REDIS; scripts/bench.sh "nodes") each phase
// runs against N spreekd nodes (1 too) on one PostgreSQL database and one Redis instead, the
// clients (and chat senders) spread evenly over the nodes, one load thread per node at least;
// the CPU time is that of all N nodes (plus the database server's). Only PostgreSQL then.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Client } from '../integration/lib/client.mjs';
import { loadIssuer, mint } from '../integration/lib/tokens.mjs';

const GP = { sub: 'gp-bench', name: 'Dr. Bench', role: 'gp', practice: 'p' };
const PHASES = ['read', 'audited', 'write', 'chat'];
const CONVS = 10;
const CHAT_WINDOW = 8;
const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

// ---- load, in worker threads ----

// One request per phase, and what a connection does before (read: declare a chat device).
const REQUESTS = {
  read: { setup: (c, i) => c.ok('chat.device', { device: `bench-${i}` }), type: 'mls.key_packages.status', fields: () => ({}) },
  audited: { type: 'consult.get', fields: (consult) => ({ consult }) },
  write: { type: 'consult.create', fields: () => ({ patient: 'pseudo-bench' }) },
};

async function loop(c, req, consult, stop, count) {
  while (!stop.now) {
    const m = await c.req(req.type, req.fields(consult));
    if (m.type !== 'ok') throw new Error(`${req.type}: ${m.code}`);
    if (stop.measuring) count.n++;
  }
}

if (!isMainThread) {
  const { kind, wsUrl, token, clients, consult } = workerData;
  const stop = { now: false, measuring: false };
  const count = { n: 0 };
  parentPort.on('message', (m) => {
    if (m === 'measure') {
      stop.measuring = true;
    } else {
      stop.now = true;
    }
  });
  const req = REQUESTS[kind];
  const conns = [];
  for (let i = 0; i < clients; i++) {
    const c = await Client.connect(wsUrl);
    await c.next('hello');
    await c.ok('auth', { token });
    if (req.setup) await req.setup(c, `${workerData.index}-${i}`);
    conns.push(c);
  }
  parentPort.postMessage('ready');
  await Promise.all(conns.map((c) => loop(c, req, consult, stop, count)));
  for (const c of conns) c.close();
  parentPort.postMessage(count.n);
  process.exit(0);
}

// ---- CPU time from /proc ----

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

function statOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) * TICK_US };
  } catch {
    return null; // gone
  }
}

// CPU time (µs) of the PostgreSQL cluster of SPK_TEST_PG: the postmaster and its children.
function pgCpuUs() {
  if (!process.env.PGHOST) return 0;
  let postmaster;
  try {
    postmaster = Number(readFileSync(join(process.env.PGHOST, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return 0;
  }
  let sum = statOf(postmaster)?.cpu ?? 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = statOf(d);
    if (st && st.ppid === postmaster) sum += st.cpu;
  }
  return sum;
}

function cpuNow(srv) {
  const spreekd = srv.pids.reduce((sum, pid) => sum + (statOf(pid)?.cpu ?? 0), 0);
  return { spreekd, pg: srv.backend === 'postgresql' ? pgCpuUs() : 0 };
}

// Time the control thread was blocked waiting for the database server, and its round trips, by
// operation (spk_store_wait_seconds_total / spk_store_round_trips_total in /metrics, summed
// over the nodes; PostgreSQL only).
async function waitsNow(srv) {
  const out = { us: {}, n: {} };
  if (srv.backend !== 'postgresql') return out;
  for (const port of srv.ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^spk_store_(round_trips_total|wait_seconds_total)\{op="(\w+)"\} (\S+)$/gm)) {
      const [key, mult] = m[1] === 'round_trips_total' ? ['n', 1] : ['us', 1e6];
      out[key][m[2]] = (out[key][m[2]] ?? 0) + Number(m[3]) * mult;
    }
  }
  return out;
}

// Per request: blocked µs and round trips, in all and by operation.
function waitFigures(n, w0, w1) {
  const per = (key) => Object.fromEntries(Object.keys(w1[key]).map((op) => [op, n > 0 ? (w1[key][op] - (w0[key][op] ?? 0)) / n : 0]));
  const us = per('us');
  const rt = per('n');
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
  return { blocked: sum(us), trips: sum(rt), us, rt };
}

// ---- servers ----

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let dbSeq = 0;

// Fresh spreekd nodes (log at warn, discarded) on fresh data directories and, for PostgreSQL, a
// fresh database they share (node 0 makes the keys an operator distributes; Redis between them).
async function start(bin, backend, nodes = 1, redis = null) {
  const dirs = Array.from({ length: nodes }, () => mkdtempSync(join(tmpdir(), 'spk-storebench-')));
  const common = ['--log-level', 'warn', '--rate', '1000000', '--burst', '1000000',
    '--max-connections-per-token', '1000'];
  let db = null;
  if (backend === 'postgresql') {
    db = `spk_bench_${process.pid}_${++dbSeq}`;
    const r = spawnSync('createdb', [db], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`createdb: ${r.stderr}`);
    common.push('--store', `${process.env.SPK_TEST_PG} dbname=${db}`);
    if (redis) common.push('--redis', redis);
  }
  const procs = [];
  const ports = [];
  for (let i = 0; i < nodes; i++) {
    if (i > 0) {
      for (const f of ['issuer.key', 'audit.key']) copyFileSync(join(dirs[0], f), join(dirs[i], f));
    }
    const port = await freePort();
    const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data', dirs[i], ...common], { stdio: 'ignore' });
    procs.push({ proc, exited: new Promise((r) => proc.once('exit', r)) });
    ports.push(port);
    for (let k = 0; k < 500; k++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
      } catch {
        await sleep(20);
      }
    }
  }
  const wsUrls = ports.map((port) => `ws://127.0.0.1:${port}/ws`);
  return {
    wsUrl: wsUrls[0],
    wsUrls,
    pids: procs.map((p) => p.proc.pid),
    ports,
    backend,
    dataDir: dirs[0],
    stop: async () => {
      for (const p of procs) p.proc.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      if (db) spawnSync('dropdb', ['--force', db]);
    },
  };
}

// ---- phases ----

async function requestPhase(srv, kind, clients, warmup, seconds) {
  const token = mint(loadIssuer(srv.dataDir), { ...GP, exp: Math.floor(Date.now() / 1000) + 3600 });
  const c = await Client.connect(srv.wsUrl);
  await c.next('hello');
  await c.ok('auth', { token });
  const { consult } = await c.ok('consult.create', { patient: 'pseudo-bench' });
  c.close();
  const n = Math.max(2, srv.wsUrls.length);
  const workers = Array.from({ length: n }, (_, index) => new Worker(new URL(import.meta.url), {
    workerData: {
      kind, index, wsUrl: srv.wsUrls[index % srv.wsUrls.length], token, clients: Math.ceil(clients / n), consult: consult.id,
    },
  }));
  const results = workers.map((w) => new Promise((resolve, reject) => {
    w.on('message', (m) => { if (typeof m === 'number') resolve(m); });
    w.on('error', reject);
  }));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r)))); // ready
  await sleep(warmup * 1000);
  for (const w of workers) w.postMessage('measure');
  const w0 = await waitsNow(srv);
  const t0 = process.hrtime.bigint();
  const c0 = cpuNow(srv);
  await sleep(seconds * 1000);
  for (const w of workers) w.postMessage('stop');
  const c1 = cpuNow(srv);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const w1 = await waitsNow(srv);
  const done = (await Promise.all(results)).reduce((a, b) => a + b, 0);
  return { ...figures(done, elapsed, c0, c1), waits: waitFigures(done, w0, w1) };
}

// Rate, and CPU µs per request of spreekd and of the database server.
function figures(n, elapsed, c0, c1) {
  return {
    rate: n / elapsed,
    cpu: n > 0 ? (c1.spreekd - c0.spreekd) / n : 0,
    cpuDb: n > 0 ? (c1.pg - c0.pg) / n : 0,
  };
}

async function chatPhase(srv, mls, warmup, seconds) {
  const token = mint(loadIssuer(srv.dataDir), { ...GP, exp: Math.floor(Date.now() / 1000) + 3600 });
  const per = Math.ceil((warmup + seconds) * 12000 / CONVS); // more than the server takes
  const senders = [];
  for (let i = 0; i < CONVS; i++) {
    const c = await Client.connect(srv.wsUrls[i % srv.wsUrls.length]);
    await c.next('hello');
    await c.ok('auth', { token });
    const { consult } = await c.ok('consult.create', { patient: `pseudo-chat-${i}` });
    const { conversation } = await c.ok('chat.create', { kind: 'consult', consult: consult.id });
    const device = `bench-${i}`;
    const { identity } = await c.ok('chat.device', { device });
    const { keyPackage, secret } = mls.keyPackageCreate(identity);
    await c.ok('mls.key_packages.upload', { key_packages: [b64u(keyPackage)] });
    const g = mls.create(conversation.id, secret);
    await c.ok('mls.group.create', { conversation: conversation.id, group_info: b64u(g.groupInfo()) });
    const msgs = [];
    for (let k = 0; k < per; k++) msgs.push(b64u(g.encrypt(`zelfmeting ${k}: 132/84 mmHg`)));
    g.free();
    senders.push({ c, conv: conversation.id, msgs, next: 0 });
  }
  const stop = { now: false, measuring: false };
  let acked = 0;
  const pump = async (s) => {
    while (!stop.now && s.next < s.msgs.length) {
      const m = await s.c.req('chat.send', { conversation: s.conv, message: s.msgs[s.next++] });
      if (m.type !== 'ok') throw new Error(`chat.send: ${m.code} ${m.message}`);
      if (stop.measuring) acked++;
    }
  };
  const running = senders.flatMap((s) => Array.from({ length: CHAT_WINDOW }, () => pump(s)));
  await sleep(warmup * 1000);
  const w0 = await waitsNow(srv);
  stop.measuring = true;
  const t0 = process.hrtime.bigint();
  const c0 = cpuNow(srv);
  await sleep(seconds * 1000);
  stop.now = true;
  const c1 = cpuNow(srv);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const w1 = await waitsNow(srv);
  const out = { ...figures(acked, elapsed, c0, c1), waits: waitFigures(acked, w0, w1) };
  await Promise.all(running);
  if (senders.some((s) => s.next >= s.msgs.length)) {
    console.log('store_bench: warning: a sender ran out of messages; raise the pool');
  }
  for (const s of senders) s.c.close();
  return out;
}

// ---- main ----

const bin = process.argv[2];
if (!bin || bin.startsWith('--')) {
  console.error('usage: node tests/bench/store_bench.mjs SPREEKD [--seconds S] [--warmup S] [--repeat N] [--clients N]');
  process.exit(2);
}
const seconds = arg('seconds', 5);
const warmup = arg('warmup', 1);
const repeat = arg('repeat', 3);
const clients = arg('clients', 50);
const nodes = arg('nodes', 1);
const cluster = process.argv.includes('--nodes');
const phasesArg = process.argv.indexOf('--phases');
const phases = phasesArg > 0 ? process.argv[phasesArg + 1].split(',') : PHASES;
if (cluster && (!process.env.SPK_TEST_PG || !process.env.SPK_TEST_REDIS)) {
  console.error('store_bench: --nodes needs SPK_TEST_PG and SPK_TEST_REDIS');
  process.exit(2);
}
const backendsArg = process.argv.indexOf('--backends');
const backends = cluster ? ['postgresql']
  : backendsArg > 0 ? process.argv[backendsArg + 1].split(',')
    : process.env.SPK_TEST_PG ? ['sqlite', 'postgresql'] : ['sqlite'];
const { loadMls } = await import('../../web/mls/spk_mls.js');
const mls = await loadMls();
const runs = {};
const add = (key, v) => (runs[key] ??= []).push(Math.round(v * 10) / 10);
for (let round = 1; round <= repeat; round++) {
  for (const backend of backends) {
    for (const phase of phases) {
      const srv = await start(bin, backend, nodes, cluster ? process.env.SPK_TEST_REDIS : null);
      let f;
      try {
        f = phase === 'chat' ? await chatPhase(srv, mls, warmup, seconds)
          : await requestPhase(srv, phase, clients, warmup, seconds);
      } finally {
        await srv.stop();
      }
      add(`${backend}.${phase}.rate`, Math.round(f.rate));
      add(`${backend}.${phase}.cpu_us`, f.cpu);
      add(`${backend}.${phase}.db_cpu_us`, f.cpuDb);
      let blocked = '';
      if (backend === 'postgresql') {
        add(`${backend}.${phase}.blocked_us`, f.waits.blocked);
        add(`${backend}.${phase}.round_trips`, f.waits.trips);
        for (const op of Object.keys(f.waits.us)) {
          add(`${backend}.${phase}.blocked_us.${op}`, f.waits.us[op]);
          add(`${backend}.${phase}.round_trips.${op}`, f.waits.rt[op]);
        }
        const ops = Object.keys(f.waits.us).filter((op) => f.waits.rt[op] >= 0.01)
          .map((op) => `${op} ${f.waits.rt[op].toFixed(2)}/${f.waits.us[op].toFixed(0)}`).join(', ');
        blocked = `  control thread blocked ${f.waits.blocked.toFixed(1)} us/req in ${f.waits.trips.toFixed(2)} round trips (${ops})`;
      }
      console.log(`round ${round} ${backend.padEnd(10)} ${phase.padEnd(7)} ${String(Math.round(f.rate)).padStart(6)} /s`
        + `  spreekd ${f.cpu.toFixed(1).padStart(6)} us/req  database ${f.cpuDb.toFixed(1).padStart(6)} us/req${blocked}`);
    }
  }
}
const med = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
console.log(`\nmedians of ${repeat} rounds, ${nodes} node(s), ${clients} clients (read, audited, write), ${CONVS} conversations x ${CHAT_WINDOW} in flight (chat);`);
console.log('CPU per request: spreekd + database server (PostgreSQL only)');
const both = !cluster && backends.includes('sqlite') && backends.includes('postgresql');
if (both) {
  console.log('phase      sqlite/s  postgresql/s  ratio   sqlite CPU us  postgresql CPU us (spreekd + db)  ratio');
}
for (const phase of both ? phases : []) {
  const g = (b, k) => med[`${b}.${phase}.${k}`];
  const s = g('sqlite', 'rate');
  const p = g('postgresql', 'rate');
  const sc = g('sqlite', 'cpu_us');
  const pc = p !== undefined ? g('postgresql', 'cpu_us') + g('postgresql', 'db_cpu_us') : undefined;
  console.log(`${phase.padEnd(8)} ${String(s).padStart(10)} ${String(p ?? '-').padStart(13)} ${p ? (p / s).toFixed(2).padStart(6) : '      '}`
    + ` ${sc.toFixed(1).padStart(14)} ${p ? `${pc.toFixed(1)} (${g('postgresql', 'cpu_us')} + ${g('postgresql', 'db_cpu_us')})`.padStart(33) : ''}`
    + ` ${p ? (pc / sc).toFixed(2).padStart(6) : ''}`);
}
if (backends.includes('postgresql')) {
  console.log('PostgreSQL: control thread blocked on the database, us/req, and round trips/req (by op: trips/us)');
  for (const phase of phases) {
    const g = (k) => med[`postgresql.${phase}.${k}`];
    const ops = ['begin', 'read', 'write', 'audit_lock', 'commit', 'other'].filter((op) => g(`round_trips.${op}`) >= 0.01)
      .map((op) => `${op} ${g(`round_trips.${op}`)}/${g(`blocked_us.${op}`)}`).join(', ');
    console.log(`${phase.padEnd(8)} blocked ${String(g('blocked_us')).padStart(7)} us in ${g('round_trips')} round trips (${ops})`);
  }
}
if (cluster) {
  for (const phase of phases) {
    const g = (k) => med[`postgresql.${phase}.${k}`];
    console.log(`${phase.padEnd(8)} ${String(g('rate')).padStart(8)} /s  CPU ${(g('cpu_us') + g('db_cpu_us')).toFixed(1)} us/req`
      + ` (${nodes} spreekd ${g('cpu_us')} + db ${g('db_cpu_us')})`);
  }
}
console.log(JSON.stringify({ seconds, warmup, repeat, clients, nodes, medians: med, runs }));
