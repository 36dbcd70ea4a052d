// Memory per idle WebSocket connection, plain and TLS: spreekd's VmRSS before and after opening
// N connections (each one upgraded to /ws with spreekkamer.v1 and its hello received), on a
// fresh spreekd per round. Usage:
//   node tests/bench/idle_memory.mjs SPREEKD [--conns N] [--repeat R] [--concurrency C]
//        [--mode plain|tls|both] [--signed-in 0|1] [--settle-ms MS] [--label NAME]
//        [-- extra spreekd flags]
// With --signed-in 1 every connection also signs in (auth) with its own GP token, as a clinician's
// console that waits for patients does. --settle-ms (2500) is the wait between the last
// connection's hello and the second reading: long enough for the server's 1 Hz tick to see the
// burst over and hand the handshakes' freed heap pages back (ws_server.c heap_trim).
// Prints one line per round and a JSON summary (medians) as the last line. docs/performance.md
// ("Memory per idle connection") has the method and the figures.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startServer } from '../integration/lib/server.mjs';
import { loadIssuer, mint } from '../integration/lib/tokens.mjs';
import { makeCert } from '../integration/transport/util.mjs';

const argv = process.argv.slice(2);
const bin = argv.shift();
const opt = {
  conns: 5000, repeat: 3, concurrency: 256, mode: 'both', label: '', 'signed-in': 0, 'settle-ms': 2500,
};
const extra = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--') { extra.push(...argv.slice(i + 1)); break; }
  const k = argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${argv[i]}`);
  opt[k] = typeof opt[k] === 'number' ? Number(argv[++i]) : argv[++i];
}
if (!bin) throw new Error('usage: idle_memory.mjs SPREEKD [options]');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// Opens one connection and resolves once its hello arrived (and, given a token, once it is
// signed in with it).
function openOne(url, ca, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'spreekkamer.v1', { ca, perMessageDeflate: false });
    ws.once('message', () => {
      if (!token) return resolve(ws); // hello
      ws.send(JSON.stringify({ id: 1, type: 'auth', token }));
      ws.once('message', (d) => {
        const m = JSON.parse(String(d));
        if (m.type === 'ok') resolve(ws);
        else reject(new Error(`auth refused: ${String(d).slice(0, 200)}`));
      });
    });
    ws.once('error', reject);
  });
}

async function openMany(url, n, ca, tokenFor) {
  const out = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      out.push(await openOne(url, ca, tokenFor?.(next)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(opt.concurrency, n) }, worker));
  return out;
}

// Limits out of the way (a build older than the limits per address lacks those flags).
function limitArgs() {
  const big = String(opt.conns + 1000);
  // (timeouts too: 256 TLS handshakes at a time on a busy machine can take seconds)
  const args = ['--max-connections', big, '--auth-timeout', '3600', '--handshake-timeout', '120'];
  let help = '';
  try {
    help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  } catch (e) {
    help = String(e.stdout ?? '');
  }
  if (help.includes('max-pending-per-address')) {
    args.push('--max-connections-per-address', big, '--max-pending-per-address', big,
      '--header-timeout', '120');
  }
  return args;
}

async function round(mode, dir) {
  const args = [...limitArgs(), ...extra];
  let ca;
  if (mode === 'tls') {
    const { cert, key } = makeCert(dir);
    ca = readFileSync(cert);
    args.push('--tls-cert', cert, '--tls-key', key);
  }
  const srv = await startServer({ bin, args });
  try {
    // one connection first, so that lazily allocated per-thread buffers are not counted
    const warm = await openOne(srv.wsUrl, ca);
    await sleep(300);
    const before = rssKb(srv.proc.pid);
    const t0 = Date.now();
    let tokenFor;
    if (opt['signed-in']) {
      const issuer = loadIssuer(srv.dataDir);
      tokenFor = (i) => mint(issuer, { sub: `gp-${i}`, name: `Dr. ${i}` });
    }
    const socks = await openMany(srv.wsUrl, opt.conns, ca, tokenFor);
    const openMs = Date.now() - t0;
    await sleep(opt['settle-ms']);
    const after = rssKb(srv.proc.pid);
    const perConn = Math.round(((after - before) * 1024) / opt.conns);
    for (const s of [warm, ...socks]) s.terminate();
    return { perConn, before, after, openMs };
  } finally {
    await srv.stop({ timeoutMs: 30000 });
  }
}

const modes = opt.mode === 'both' ? ['plain', 'tls'] : [opt.mode];
const dir = mkdtempSync(join(tmpdir(), 'spk-idle-'));
const summary = { label: opt.label, conns: opt.conns, repeat: opt.repeat, signed_in: !!opt['signed-in'] };
try {
  for (const mode of modes) {
    const rounds = [];
    for (let r = 0; r < opt.repeat; r++) {
      const x = await round(mode, dir);
      rounds.push(x);
      console.log(`${opt.label ? opt.label + ' ' : ''}${mode} round ${r + 1}: ${x.perConn} B per idle connection (VmRSS ${x.before} -> ${x.after} kB, ${opt.conns} opened in ${x.openMs} ms)`);
    }
    summary[`${mode}_bytes_per_conn`] = median(rounds.map((x) => x.perConn));
    summary[`${mode}_rounds`] = rounds.map((x) => x.perConn);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
