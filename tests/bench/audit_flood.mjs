// Audit under load (docs/performance.md "Audit"): how a flood of refused sign-ins and a stream of
// audited actions affect an unrelated client's ping, and how many audit entries per second the
// store commits. Usage: node tests/bench/audit_flood.mjs SPREEKD [seconds]
// Three phases, each on a fresh spreekd with its own data directory:
//   flood-throttled: 60 anonymous connections send bad tokens at 50/s each (defaults: refused
//                    sign-ins are logged one by one up to a limit, then summarised and throttled)
//   flood-logged:    the same flood with every refusal logged (throttling off): the raw cost of
//                    audit appends with group commit
//   actions:         20 signed-in GPs create consults as fast as their answers come back
// Reported per phase: ping round trip of a separate client (p50, p99, max in ms), audit entries
// committed per second, and for `actions` the acknowledged actions per second.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Client } from '../integration/lib/client.mjs';
import { loadIssuer, mint } from '../integration/lib/tokens.mjs';

const bin = process.argv[2] ?? '';
const seconds = Number(process.argv[3] ?? 10);
const ctlBin = bin.replace(/spreekd$/, 'spreekctl');

const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))];

function auditCount(dataDir) {
  const r = spawnSync(ctlBin, ['--data', dataDir, 'audit', 'list', '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  return JSON.parse(r.stdout).length;
}

async function pinger(srv, token, stop) {
  const c = await Client.connect(srv.wsUrl);
  await c.next('hello');
  await c.ok('auth', { token });
  const rtts = [];
  while (!stop.now) {
    const t0 = process.hrtime.bigint();
    await c.ok('ping');
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 20));
  }
  c.close();
  return rtts.sort((a, b) => a - b);
}

async function flood(srv, stop) {
  const conns = [];
  for (let i = 0; i < 60; i++) {
    const c = await Client.connect(srv.wsUrl);
    await c.next('hello');
    conns.push(c);
  }
  let sent = 0;
  const timer = setInterval(() => {
    for (const c of conns) {
      for (let k = 0; k < 5; k++) {
        c.send({ type: 'auth', token: `bogus.${sent++}.x` });
      }
    }
  }, 100); // 50 per second per connection
  while (!stop.now) await new Promise((r) => setTimeout(r, 50));
  clearInterval(timer);
  for (const c of conns) c.close();
  return sent;
}

async function actions(srv, token, stop) {
  let done = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    const c = await Client.connect(srv.wsUrl);
    await c.next('hello');
    await c.ok('auth', { token });
    while (!stop.now) {
      await c.ok('consult.create', { patient: 'pseudo-bench' });
      done++;
    }
    c.close();
  }));
  return done;
}

// Runs a load function in a worker thread (its own event loop, so the pinger measures the
// server and not the load generator); resolves with its count when `stop` is set.
function inWorker(kind, srv, token, stop) {
  const w = new Worker(new URL(import.meta.url), { workerData: { kind, wsUrl: srv.wsUrl, token } });
  return new Promise((resolve, reject) => {
    w.on('message', (n) => resolve(n));
    w.on('error', reject);
    const t = setInterval(() => {
      if (stop.now) {
        clearInterval(t);
        w.postMessage('stop');
      }
    }, 20);
  });
}

if (!isMainThread) {
  const stop = { now: false };
  parentPort.on('message', () => { stop.now = true; });
  const srv = { wsUrl: workerData.wsUrl };
  const n = workerData.kind === 'flood' ? await flood(srv, stop) : await actions(srv, workerData.token, stop);
  parentPort.postMessage(n);
  process.exit(0);
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// spreekd with its log at warn and discarded: the benchmark's own process must not spend its
// time reading the server's log lines.
async function startQuiet(dataDir, args) {
  const port = await freePort();
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data', dataDir, '--log-level', 'warn', ...args],
    { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const exited = new Promise((r) => proc.once('exit', r));
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    stop: async () => { proc.kill('SIGTERM'); await exited; },
    kill: () => proc.kill('SIGKILL'),
  };
}

async function phase(name, args, load) {
  const dataDir = mkdtempSync(join(tmpdir(), 'spk-auditbench-'));
  const srv = await startQuiet(dataDir, [...args, '--max-connections-per-token', '1000']);
  try {
    const token = mint(loadIssuer(dataDir), { sub: 'gp-bench', role: 'gp', practice: 'p', exp: Math.floor(Date.now() / 1000) + 3600 });
    const before = auditCount(dataDir);
    const stop = { now: false };
    const t0 = Date.now();
    const [rtts, work] = await Promise.all([
      pinger(srv, token, stop),
      load(srv, token, stop),
      new Promise((r) => setTimeout(() => { stop.now = true; r(); }, seconds * 1000)),
    ]);
    const secs = (Date.now() - t0) / 1000;
    await srv.stop();
    const entries = auditCount(dataDir) - before;
    const out = {
      phase: name, seconds: Number(secs.toFixed(1)),
      ping_p50_ms: Number(pct(rtts, 50).toFixed(2)), ping_p99_ms: Number(pct(rtts, 99).toFixed(2)),
      ping_max_ms: Number(rtts.at(-1).toFixed(2)),
      audit_entries_per_s: Math.round(entries / secs),
    };
    if (name === 'actions') out.actions_per_s = Math.round(work / secs);
    else out.attempts_per_s = Math.round(work / secs);
    console.log(JSON.stringify(out));
    return out;
  } finally {
    srv.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await phase('flood-throttled', [], (srv, t, stop) => inWorker('flood', srv, t, stop));
await phase('flood-logged', ['--auth-fail-throttle', '1000000', '--auth-fail-log', '100000'],
  (srv, t, stop) => inWorker('flood', srv, t, stop));
await phase('actions', [], (srv, t, stop) => inWorker('actions', srv, t, stop));
