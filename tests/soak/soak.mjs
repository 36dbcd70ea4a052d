// The soak test (docs/operations.md "Soak test", figures in docs/performance.md "Soak"). Run it
// through scripts/soak.sh, which builds the ASan+UBSan tree and enters a loopback-only network
// namespace first; this file is the orchestrator inside it. Not part of the normal suite.
//
// 1. Starts spreekd (ASan+UBSan build) with the media relay on 127.0.0.1 and a data directory
//    of its own inside --out, stderr to <out>/spreekd.log.
// 2. Priming: a few consult cycles and one small media round, so that whatever spreekd opens
//    once on first use (database files, relay sockets) is open; then idle: the baseline (file
//    descriptors, RSS, live heap).
// 3. Load, in two phases: --warmup-min minutes, idle checkpoint A, the rest of --minutes, idle
//    checkpoint B. The load is consult churn with refused requests (tests/soak/churn.mjs, open
//    loop at --churn-rate cycles/s over --churn-parallel workers) and media (rounds of
//    spreekload against the running spreekd, in --media-streams staggered streams sharing
//    --media-consults consults of 2 participants at --media-pps packets/s per publisher,
//    --media-round-s seconds of media per round) and chat (rounds of spreekload --chat against
//    the running spreekd: --chat-conversations conversations of --chat-devices C devices set up
//    through the protocol, MLS groups, Welcomes, then --chat-rate messages/s for --chat-round-s
//    seconds, a sample decrypted and checked; see chatLoad()).
// 4. Every --sample-s seconds: RSS (and its anonymous, file and shared parts), threads, open
//    file descriptors, CPU time and run-queue wait of spreekd from /proc, its gauges (send queues
//    and the delivery service's included) and counters from /metrics, and the rows of the chat
//    log and of unused KeyPackages in the store; written to <out>/samples.csv and summary.json.
// 5. At each checkpoint the load has stopped and its connections closed: every gauge must be 0
//    and the descriptors exactly the baseline's (at most --idle-timeout-s to get there); then
//    the allocator is purged and RSS (split into ASan's shadow, ASan's heap and the rest) and the
//    live heap (ASan's allocated bytes) are taken, both through gdb.
// 6. SIGTERM: spreekd must drain and exit 0 (LeakSanitizer runs at that exit);
//    `spreekctl audit verify` on the data directory.
// Fails (exit 1, every reason printed and in summary.json) on: the live heap at checkpoint B
// more than --growth-limit-pct above checkpoint A (RSS and its parts are reported: see
// rssSplit()), a thread count at a checkpoint that is not the baseline's, a descriptor count at a checkpoint that is
// not the baseline, a gauge not back at 0, any sanitizer report in spreekd's stderr, spreekd
// exiting early or not with 0, a driver that saw protocol errors the load did not ask for or
// lost a connection, or an audit chain that does not verify.
// --calibrate N measures the capacity of consult churn instead (see calibrate()).
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import readline from 'node:readline';
import { parseMetrics } from '../integration/lib/server.mjs';
import { parseOptions } from './options.mjs';

const defaults = {
  spreekd: 'build/asan/server/spreekd',
  spreekctl: 'build/asan/server/spreekctl',
  spreekload: 'build/test/loadtest/spreekload',
  out: '',
  minutes: 30,
  warmupMin: -1, // default: a third of --minutes, at least 1
  windowMin: -1, // RSS under load is reported for this last part of each phase; default: a sixth of --minutes
  sampleS: 10,
  growthLimitPct: 1, // RSS and live heap, checkpoint B against checkpoint A
  churnRate: 10,
  churnParallel: 48,
  mediaConsults: 25,
  mediaStreams: 2,
  mediaPps: 160,
  mediaRoundS: -1, // default: 110 s, or a third of a shorter run
  chatConversations: 20, // per round; 0: no chat load
  chatDevices: 5,
  chatRate: 400, // application messages per second offered, all conversations of a round together
  chatRoundS: -1, // seconds of messages per round; default: 60 s, or a sixth of a shorter run
  chatSize: 100,
  idleTimeoutS: 120,
  answerTimeoutS: 300, // the drivers' wait for an answer or event, and spreekd's --idle-timeout
  keepData: 0,
  calibrate: 0, // N > 0: measure the churn capacity instead (N closed-loop rounds of 30 s), then stop
  calibrateParallel: 128,
};
const opt = parseOptions(defaults, process.argv.slice(2), 'soak');
if (opt.warmupMin < 0) opt.warmupMin = Math.max(1, Math.round(opt.minutes / 3));
if (opt.windowMin < 0) opt.windowMin = Math.max(0.5, opt.minutes / 6);
if (opt.mediaRoundS < 0) opt.mediaRoundS = Math.min(110, Math.round((opt.minutes * 60) / 3));
if (opt.chatRoundS < 0) opt.chatRoundS = Math.min(60, Math.round((opt.minutes * 60) / 6));
if (opt.warmupMin >= opt.minutes) {
  console.error(`soak: --minutes ${opt.minutes} leaves nothing after the warm-up of ${opt.warmupMin}`);
  process.exit(2);
}
if (!opt.out) opt.out = join('build', 'soak', new Date().toISOString().replace(/[:.]/g, '-'));
opt.out = resolve(opt.out);
mkdirSync(opt.out, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.log(`soak ${new Date().toISOString().slice(11, 19)} ${s}`);
const failures = [];
const fail = (why) => {
  failures.push(why);
  log(`FAIL: ${why}`);
};

// ---- spreekd ----

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// GET on a connection of its own that is closed afterwards (no keep-alive): the sampler must not
// hold a descriptor in spreekd between samples.
function get(port, path, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'close' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    r.on('timeout', () => r.destroy(new Error(`GET ${path} timed out`)));
    r.on('error', reject);
  });
}

const server = { proc: null, pid: 0, port: 0, dataDir: '', exit: null, logPath: join(opt.out, 'spreekd.log') };

async function startServer() {
  // In the output directory rather than the shared /tmp, out of reach of clean-ups there.
  server.dataDir = mkdtempSync(join(opt.out, 'data-'));
  server.port = await freePort();
  const fd = openSync(server.logPath, 'w');
  const args = [
    '--listen', `127.0.0.1:${server.port}`, '--data', server.dataDir, '--relay-address', '127.0.0.1',
    '--media-e2ee', '0', '--log-level', 'info',
    // Every client of the soak connects from 127.0.0.1 (the refusal probes from .2 and .3):
    // room for all of them in the per-address limits, which production spreads over clients.
    '--max-connections-per-address', '1024', '--max-pending-per-address', '256',
    // A starved spreekd (on a shared machine its threads can wait seconds for a CPU) reads a
    // client's pong late and would close a live client as idle (4002): the idle timeout follows
    // the drivers' patience. Idle closing itself is tested in the integration suite.
    '--idle-timeout', String(opt.answerTimeoutS),
  ];
  server.proc = track(spawn(opt.spreekd, args, {
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      ASAN_OPTIONS: process.env.SOAK_ASAN_OPTIONS ?? 'detect_leaks=1:halt_on_error=1:quarantine_size_mb=16',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  }));
  closeSync(fd);
  server.pid = server.proc.pid;
  server.exited = new Promise((resolve) => {
    server.proc.on('exit', (code, signal) => {
      server.exit = { code, signal };
      resolve(server.exit);
    });
  });
  for (let i = 0; i < 300 && !server.exit; i++) {
    try {
      if ((await get(server.port, '/healthz', 2000)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`spreekd did not start (see ${server.logPath})`);
}

// ---- samples ----

function procStatus(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s) ?? [0, -1])[1]);
  return { rss_kb: kb('VmRSS'), rss_anon_kb: kb('RssAnon'), rss_file_kb: kb('RssFile'), rss_shmem_kb: kb('RssShmem'), threads: kb('Threads') };
}
function fdList(pid) {
  const out = [];
  for (const f of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${f}`));
    } catch {
      // closed while listing
    }
  }
  return out;
}
function cpuS(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime + stime, clock ticks of 1/100 s
}
// Time spreekd's threads were runnable but got no CPU (schedstat), summed: how much the other
// load on the machine held it back.
function runqWaitS(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // thread gone
    }
  }
  return +(ns / 1e9).toFixed(2);
}

const GAUGES = {
  connections_open: 'spk_connections_open',
  sig_sessions: 'spk_sig_sessions',
  consults_active: 'spk_consults_active',
  lobby_waiting: 'spk_lobby_waiting',
  connections_held: 'spk_sig_connections_held',
  relay_endpoints: 'spk_relay_endpoints',
  rx_paused: 'spk_connections_rx_paused',
  send_queue_bytes: 'spk_ws_send_queue_bytes',
  send_queue_bytes_max: 'spk_ws_send_queue_bytes_max',
  chat_devices: 'spk_chat_devices',
  chat_follows: 'spk_chat_follows',
  chat_conversations_loaded: 'spk_chat_conversations_loaded',
  file_tickets: 'spk_file_tickets',
};
const COUNTERS = {
  consults_open: 'spk_consults_open',
  connections_total: 'spk_connections_total',
  sig_messages_total: 'spk_sig_messages_total',
  ws_messages_in_total: 'spk_ws_messages_in_total',
  ws_messages_out_total: 'spk_ws_messages_out_total',
  consults_created_total: 'spk_consults_created_total',
  rtp_received_total: 'spk_relay_rtp_received_total',
  rtp_forwarded_total: 'spk_relay_rtp_forwarded_total',
  media_endpoints_total: 'spk_media_endpoints_total',
  media_failed_total: 'spk_media_failed_total',
  unprotect_errors_total: 'spk_relay_unprotect_errors_total',
  chat_send_total: 'spk_sig_requests_total{type="chat.send"}',
};
// Rows in the store, read with the sqlite3 shell (a reader beside spreekd's connection, WAL):
// the chat log holds what some active device has not acknowledged yet (trimmed every minute),
// KeyPackages wait to be claimed. Recorded, not judged: the store is on disk, not in memory.
const STORE_ROWS = { chat_log_rows: 'chat_log', chat_kp_rows: 'chat_keypackages', chat_conversations_rows: 'chat_conversations' };
const COLUMNS = ['t_s', 'phase', 'rss_kb', 'rss_anon_kb', 'rss_file_kb', 'rss_shmem_kb', 'threads', 'fds', 'cpu_s', 'runq_wait_s',
  ...Object.keys(GAUGES), ...Object.keys(COUNTERS), 'sig_errors_total', ...Object.keys(STORE_ROWS), 'loadavg_1m'];

function storeRows() {
  const q = Object.values(STORE_ROWS).map((t) => `SELECT count(*) FROM ${t};`).join(' ');
  const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', join(server.dataDir, 'spreekkamer.db'), q], { encoding: 'utf8', timeout: 10000 });
  const v = (r.stdout ?? '').trim().split('\n').map(Number);
  return Object.fromEntries(Object.keys(STORE_ROWS).map((k, i) => [k, r.status === 0 && Number.isFinite(v[i]) ? v[i] : -1]));
}

const samples = [];
let t0 = 0; // start of the load
const csvPath = join(opt.out, 'samples.csv');
writeFileSync(csvPath, `${COLUMNS.join(',')}\n`);

async function sample(phase, record = true) {
  // /proc first: the metrics request below is a connection of its own.
  const s = { t_s: Math.round((Date.now() - t0) / 100) / 10, phase, ...procStatus(server.pid), fds: fdList(server.pid).length, cpu_s: cpuS(server.pid), runq_wait_s: runqWaitS(server.pid) };
  const m = parseMetrics((await get(server.port, '/metrics')).body);
  for (const [k, name] of Object.entries({ ...GAUGES, ...COUNTERS })) s[k] = m[name] ?? -1;
  s.sig_errors_total = Object.entries(m).filter(([k]) => k.startsWith('spk_sig_errors_total')).reduce((a, [, v]) => a + v, 0);
  if (record) Object.assign(s, storeRows());
  s.loadavg_1m = loadavg()[0].toFixed(2);
  if (record) {
    samples.push(s);
    appendFileSync(csvPath, `${COLUMNS.map((c) => s[c]).join(',')}\n`);
  }
  return s;
}

// ---- drivers ----

const drivers = { churnStats: [], mediaRounds: 0, mediaFailed: [], chatRounds: 0, chatFailed: [] };
const children = new Set(); // every process started here, stopped by pid if the run is cut short
function track(p) {
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
function abort(why) {
  console.error(`soak: ${why}; stopping`);
  for (const p of children) p.kill('SIGKILL');
  process.exit(1);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => abort(`got ${sig}`));
process.on('uncaughtException', (e) => abort(e.stack));
process.on('exit', () => {
  for (const p of children) p.kill('SIGKILL');
});

function startChurn(args, tag) {
  const p = track(spawn(process.execPath, ['tests/soak/churn.mjs', '--ws', `ws://127.0.0.1:${server.port}/ws`, '--data', server.dataDir,
    '--timeout-ms', String(opt.answerTimeoutS * 1000), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const errLog = join(opt.out, `churn-${tag}.log`);
  p.stderr.on('data', (d) => appendFileSync(errLog, d));
  const lines = readline.createInterface({ input: p.stdout });
  const done = new Promise((resolve) => {
    let summary = null;
    lines.on('line', (l) => {
      appendFileSync(join(opt.out, `churn-${tag}.jsonl`), `${l}\n`);
      try {
        const j = JSON.parse(l);
        if (j.kind === 'summary') summary = j;
        else if (tag.startsWith('load')) drivers.churnStats.push(j);
      } catch {
        // not JSON
      }
    });
    // Both the exit and the end of its output, in whichever order they come.
    let exitCode = null;
    let closed = false;
    p.on('exit', (code) => {
      exitCode = code ?? 1;
      if (closed) resolve({ code: exitCode, summary });
    });
    lines.on('close', () => {
      closed = true;
      if (exitCode !== null) resolve({ code: exitCode, summary });
    });
  });
  return { proc: p, done };
}

// One run of spreekload against the running spreekd: stderr to <out>/<name>.log, its JSON summary
// (the last line of stdout) with the exit status and `extra` appended to <out>/<name>.jsonl.
function spreekload(args, name, extra = {}) {
  return new Promise((resolve) => {
    const p = track(spawn(opt.spreekload, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => appendFileSync(join(opt.out, `${name}.log`), d));
    p.on('exit', (code) => {
      let j = null;
      try {
        j = JSON.parse(out.trim().split('\n').pop());
      } catch {
        // no summary
      }
      appendFileSync(join(opt.out, `${name}.jsonl`), `${JSON.stringify({ exit: code, ...extra, ...(j ?? {}) })}\n`);
      resolve({ code, j });
    });
  });
}

function spreekloadRound(consults, durationS) {
  return spreekload([
    '--pid', String(server.pid), '--port', String(server.port), '--data', server.dataDir,
    '--consults', String(consults), '--participants', '2', '--pps', String(opt.mediaPps),
    '--duration', String(durationS),
  ], 'media');
}

// One stream of media rounds, offset so that the streams do not set up at the same moment;
// no round starts that would not finish before the end of the load.
async function mediaStream(i, consults, endMs) {
  await sleep((i * opt.mediaRoundS * 1000) / opt.mediaStreams);
  const rounds = [];
  for (;;) {
    const left = (endMs - Date.now()) / 1000 - 10; // setup and teardown of a round
    if (left < 5) break;
    const r = await spreekloadRound(consults, Math.min(opt.mediaRoundS, left));
    drivers.mediaRounds++;
    rounds.push(r.j);
    // Protocol errors and lost WebSocket connections fail the soak. A media connection that the
    // relay declares failed (ICE consent lost, DTLS timeout) is counted and reported with the
    // relay workers' wait for a CPU beside it: on a shared machine a starved worker loses consent
    // without any fault of its own (docs/performance.md, "Soak").
    if (!r.j || r.j.signaling_errors || r.j.connections_lost) {
      drivers.mediaFailed.push({ stream: i, exit: r.code, signaling_errors: r.j?.signaling_errors, connections_lost: r.j?.connections_lost });
    }
    if (server.exit) break;
  }
  return rounds;
}

// ---- chat ----

// One round of chat: spreekload --chat against the running spreekd. Its devices (one connection
// each) set the conversations up through the protocol: care-team conversations and consult chats
// alternating (for a consult: consult, invite, redemption by the patient's phone, admission, the
// laptop with the session token), members added, the MLS group created, KeyPackages claimed,
// Adds committed, every device joining from its Welcome and following live (chat.sync). Then
// application messages at --chat-rate per second, round robin over the devices, acknowledged
// cumulatively every second; a sample of conversations decrypted and checked at the end. Then
// every device disconnects. Each round has users of its own (--prefix), as new consults bring.
let chatSeq = 0;
function chatRound(durationS) {
  const prefix = `s${++chatSeq}-`;
  return spreekload([
    '--chat', '--port', String(server.port), '--pid', String(server.pid), '--data', server.dataDir,
    '--conversations', String(opt.chatConversations), '--devices', String(opt.chatDevices), '--kind', 'mixed',
    '--rates', String(opt.chatRate), '--duration', String(durationS), '--size', String(opt.chatSize),
    '--sample', String(Math.min(10, opt.chatConversations)), '--prefix', prefix,
    '--setup-timeout', String(opt.answerTimeoutS), '--drain-timeout', String(opt.answerTimeoutS),
  ], 'chat', { prefix });
}

// Chat rounds one after the other until the end of the phase; no round starts that would not
// finish before it. A round that exits with an error, sets up fewer conversations than asked,
// or saw send, entry, verification errors or a lost connection fails the soak.
async function chatLoad(endMs) {
  const rounds = [];
  if (opt.chatConversations <= 0) return rounds;
  for (;;) {
    const left = (endMs - Date.now()) / 1000 - 30; // setup and teardown of a round
    if (left < 10 || server.exit) break;
    const r = await chatRound(Math.min(opt.chatRoundS, left));
    drivers.chatRounds++;
    rounds.push(r.j);
    const j = r.j ?? {};
    const bad = r.code !== 0 || !r.j || j.setup_errors || j.send_errors || j.entry_errors || j.connections_lost || j.verify_errors;
    if (bad) {
      drivers.chatFailed.push({ exit: r.code, setup_errors: j.setup_errors, send_errors: j.send_errors, entry_errors: j.entry_errors,
        connections_lost: j.connections_lost, verify_errors: j.verify_errors, first_error: j.first_error });
    }
  }
  return rounds;
}

// ---- checks ----

let baseThreads = -1;
function idleProblems(s, baseFds) {
  const p = [];
  for (const k of Object.keys(GAUGES)) if (s[k] !== 0) p.push(`${k}=${s[k]}`);
  if (baseFds >= 0 && s.fds !== baseFds) p.push(`fds=${s.fds} (baseline ${baseFds})`);
  if (baseThreads >= 0 && s.threads !== baseThreads) p.push(`threads=${s.threads} (baseline ${baseThreads})`);
  return p;
}

async function waitIdle(baseFds, timeoutS) {
  const end = Date.now() + timeoutS * 1000;
  let s;
  let problems;
  for (;;) {
    await sleep(1000);
    s = await sample('idle', false);
    problems = idleProblems(s, baseFds);
    if (!problems.length || Date.now() > end) break;
  }
  return { s, problems };
}

// RSS by where it lies (/proc/<pid>/smaps, x86-64 ASan layout): ASan's shadow memory
// [0x7fff8000, 0x10007fff8000), ASan's heap (the primary allocator's space at 0x600000000000,
// 4 TB) and everything else (program, libraries, thread stacks, the secondary allocator's large
// blocks, ASan's own bookkeeping). Shadow pages stay resident once a peak of the load has
// touched them, and the heap's pages follow the allocator's free lists: both follow the highest
// load so far, not what the server keeps. The rest grows with ASan's stack depot (every new
// allocation stack is stored for its reports; with malloc_context_size=0 it stays flat). All
// three are reported; the live heap is what is judged.
function rssSplit(pid) {
  const out = { shadow_kb: 0, asan_heap_kb: 0, other_kb: 0 };
  let start = 0n;
  for (const l of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ /.exec(l);
    if (m) {
      start = BigInt(`0x${m[1]}`);
    } else if (l.startsWith('Rss:')) {
      const kb = Number(l.split(/\s+/)[1]);
      if (start >= 0x7fff8000n && start < 0x10007fff8000n) out.shadow_kb += kb;
      else if (start >= 0x600000000000n && start < 0x640000000000n) out.asan_heap_kb += kb;
      else out.other_kb += kb;
    }
  }
  return out;
}

// Calls a function of ASan's runtime in spreekd through gdb (spreekd stops for a moment) and
// returns gdb's output, or '' when gdb is not there.
function gdbCall(expr) {
  const r = spawnSync('gdb', ['-p', String(server.pid), '-batch', '-nx', '-ex', `call ${expr}`], { encoding: 'utf8', timeout: 120000 });
  return r.stdout ?? '';
}

// Bytes the process has allocated and not freed, from ASan's allocator
// (__sanitizer_get_current_allocated_bytes, called through gdb: spreekd stops for a moment).
// Unlike RSS it does not include freed memory held in the quarantine or in the allocator's free
// lists, so it is the exact measure of what the server keeps. -1 when gdb is not there.
function liveHeapBytes() {
  const m = /^\$1 = (\d+)/m.exec(gdbCall('(unsigned long)__sanitizer_get_current_allocated_bytes()'));
  return m ? Number(m[1]) : -1;
}

// An idle checkpoint: the load has stopped; every gauge must be back at 0 and the descriptors at
// the baseline. Then the allocator gives its free pages back (__sanitizer_purge_allocator: the
// quarantine is emptied and free memory returned to the system), and RSS (the lowest of three
// samples 5 s apart, split by rssSplit()) and the live heap are taken.
async function checkpoint(name, baseFds, baseList) {
  const idle = await waitIdle(baseFds, opt.idleTimeoutS);
  if (idle.problems.length) {
    const extra = [...baseList];
    const now = fdList(server.pid).filter((f) => {
      const i = extra.indexOf(f);
      if (i >= 0) {
        extra.splice(i, 1);
        return false;
      }
      return true;
    });
    fail(`${name}: not idle ${opt.idleTimeoutS} s after the load: ${idle.problems.join(', ')}; descriptors not in the baseline: ${JSON.stringify(now.slice(0, 20))}`);
  }
  await sleep(10000);
  const before = procStatus(server.pid).rss_kb;
  gdbCall('(void)__sanitizer_purge_allocator()');
  await sleep(3000);
  const ss = [];
  for (let i = 0; i < 3; i++) {
    ss.push({ ...(await sample(name)), ...rssSplit(server.pid) });
    if (i < 2) await sleep(5000);
  }
  const low = ss.reduce((a, b) => (b.rss_kb < a.rss_kb ? b : a));
  const heap = liveHeapBytes();
  const res = {
    rss_kb: low.rss_kb, rss_before_purge_kb: before, rss_anon_kb: low.rss_anon_kb, rss_file_kb: low.rss_file_kb,
    rss_shadow_kb: low.shadow_kb, rss_asan_heap_kb: low.asan_heap_kb, rss_other_kb: low.other_kb,
    fds: low.fds, threads: low.threads, live_heap_bytes: heap,
    gauges: Object.fromEntries(Object.keys(GAUGES).map((k) => [k, low[k]])), store_rows: storeRowsAt(low), problems: idle.problems,
  };
  log(`${name}: rss ${res.rss_kb} KB (${before} KB before the purge; shadow ${low.shadow_kb}, ASan heap ${low.asan_heap_kb}, ` +
    `rest ${low.other_kb}), live heap ${heap} B, fds ${res.fds} (baseline ${baseFds}), endpoints ${low.relay_endpoints}, held ${low.connections_held}`);
  return res;
}

function sanitizerReports() {
  const text = readFileSync(server.logPath, 'utf8');
  const lines = text.split('\n');
  const hits = [];
  lines.forEach((l, i) => {
    if (/Sanitizer|runtime error:/.test(l) && !l.startsWith('{')) hits.push(i);
  });
  return hits.length ? lines.slice(hits[0], hits[0] + 40).join('\n') : '';
}

// RSS under load, reported (not judged): the samples taken at full media load (relay endpoints =
// 4 × media consults) in the last --window-min minutes of a phase. Under load RSS follows the
// load that is carried at that moment, which on a shared machine is what the neighbours leave:
// the judged comparison is between the idle checkpoints.
function underLoad(phase) {
  const ph = samples.filter((s) => s.phase === phase);
  if (!ph.length) return null;
  const end = ph[ph.length - 1].t_s;
  const full = ph.filter((s) => s.t_s >= end - opt.windowMin * 60 && (opt.mediaConsults <= 0 || s.relay_endpoints === opt.mediaConsults * 4));
  const v = full.map((s) => s.rss_kb).sort((a, b) => a - b);
  return {
    window_s: [Math.round(end - opt.windowMin * 60), Math.round(end)],
    samples: v.length,
    rss_kb_min: v[0] ?? null,
    rss_kb_median: v[Math.floor(v.length / 2)] ?? null,
    rss_kb_max: v[v.length - 1] ?? null,
    connections_open_median: full.map((s) => s.connections_open).sort((a, b) => a - b)[Math.floor(full.length / 2)] ?? null,
  };
}

const storeRowsAt = (smp) => Object.fromEntries(Object.keys(STORE_ROWS).map((k) => [k, smp[k]]));
const MIN_WARMUP_MIN = 5;
const pct = (a, b) => (a > 0 && b >= 0 ? +((100 * (b - a)) / a).toFixed(3) : null);

// ---- capacity of consult churn ----

// Closed loop: --calibrate-parallel workers run cycles as fast as the answers come back, 30 s a
// round; spreekd's CPU time per cycle is the figure that does not depend on the other load on
// the machine, cycles per second the one that does.
async function calibrate() {
  const rounds = [];
  for (let i = 0; i < opt.calibrate; i++) {
    const cpu0 = cpuS(server.pid);
    const t = Date.now();
    const r = await startChurn(['--parallel', String(opt.calibrateParallel), '--rate', '0', '--seconds', '30'], `calibrate-${i}`).done;
    const cpu = cpuS(server.pid) - cpu0;
    const s = r.summary ?? {};
    const round = {
      cycles_per_s: s.cycles_per_s, requests_per_s: s.requests_per_s, rtt_ms_p50: s.rtt_ms_p50, rtt_ms_p99: s.rtt_ms_p99,
      spreekd_cpu_ms_per_cycle: s.cycles ? +((1000 * cpu) / s.cycles).toFixed(2) : null,
      spreekd_cpu_util: +(cpu / ((Date.now() - t) / 1000)).toFixed(2), unexpected: s.unexpected, loadavg_1m: loadavg()[0],
    };
    rounds.push(round);
    log(`calibration round ${i + 1}: ${JSON.stringify(round)}`);
    if (r.code !== 0) fail(`churn driver exit ${r.code}`);
  }
  const med = (k) => rounds.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(rounds.length / 2)];
  const out = { parallel: opt.calibrateParallel, rounds, median_cycles_per_s: med('cycles_per_s'), median_requests_per_s: med('requests_per_s'), median_spreekd_cpu_ms_per_cycle: med('spreekd_cpu_ms_per_cycle') };
  writeFileSync(join(opt.out, 'calibration.json'), `${JSON.stringify(out, null, 1)}\n`);
  console.log(JSON.stringify(out));
  server.proc.kill('SIGTERM');
  await server.exited;
  if (!opt.keepData) rmSync(server.dataDir, { recursive: true, force: true });
  process.exit(failures.length ? 1 : 0);
}

// ---- the run ----

// One phase of load: churn, media streams and the chat hook for `ms`, then everything stopped
// and its connections closed. Returns what the drivers reported.
async function runPhase(name, ms) {
  const endMs = Date.now() + ms;
  const sampler = setInterval(() => {
    sample(name).catch((e) => log(`sample: ${e.message}`));
  }, opt.sampleS * 1000);
  await sample(name);
  const churn = startChurn(['--parallel', String(opt.churnParallel), '--rate', String(opt.churnRate)], name);
  const per = Math.floor(opt.mediaConsults / opt.mediaStreams);
  const streams = Array.from({ length: opt.mediaStreams }, (_, i) =>
    mediaStream(i, i === 0 ? opt.mediaConsults - per * (opt.mediaStreams - 1) : per, endMs));
  const chat = chatLoad(endMs);
  let lastLog = Date.now();
  while (Date.now() < endMs && !server.exit) {
    await sleep(1000);
    if (Date.now() - lastLog >= 60000) {
      lastLog = Date.now();
      const s = samples[samples.length - 1];
      const c = drivers.churnStats[drivers.churnStats.length - 1];
      log(`${name} t=${Math.round((Date.now() - t0) / 1000)} s rss ${s.rss_kb} KB fds ${s.fds} endpoints ${s.relay_endpoints} conns ${s.connections_open} ` +
        `churn ${c ? `${c.cycles} cycles, ${c.unexpected} unexpected` : '-'}, media rounds ${drivers.mediaRounds}, chat rounds ${drivers.chatRounds} ` +
        `(devices ${s.chat_devices}, log ${s.chat_log_rows}), load ${s.loadavg_1m}`);
    }
    if (churn.proc.exitCode !== null) {
      fail(`${name}: churn driver exited early (${churn.proc.exitCode})`);
      break;
    }
  }
  if (server.exit) fail(`spreekd exited during the load: code ${server.exit.code}, signal ${server.exit.signal}`);
  churn.proc.kill('SIGTERM');
  const cr = await churn.done;
  const rounds = (await Promise.all(streams)).flat();
  const chatRounds = await chat;
  clearInterval(sampler);
  const last = await sample(name);
  log(`${name} stopped after ${Math.round(last.t_s)} s: churn exit ${cr.code}, ${rounds.length} media rounds, ${chatRounds.length} chat rounds`);
  if (cr.code !== 0 || !cr.summary || cr.summary.unexpected) {
    fail(`${name}: churn driver: exit ${cr.code}, ${cr.summary?.unexpected ?? '?'} unexpected answers, events or closes: ${JSON.stringify(cr.summary?.unexpected_first ?? [])}`);
  }
  return { churn: cr.summary, rounds, chatRounds };
}

function mediaSummary(rounds) {
  const sum = (k) => rounds.reduce((a, r) => a + (r?.[k] ?? 0), 0);
  const arr = (k) => +rounds.reduce((a, r) => a + (r?.[k] ?? []).reduce((x, y) => x + y, 0), 0).toFixed(1);
  const exp = sum('packets_expected');
  return {
    rounds: rounds.length,
    consults: sum('consults'),
    participants: sum('participants'),
    packets_sent: sum('packets_sent'),
    packets_expected: exp,
    packets_received: sum('packets_received'),
    loss_pct: exp ? +((100 * (exp - sum('packets_received'))) / exp).toFixed(4) : null,
    join_without_media: sum('join_without_media'),
    signaling_errors: sum('signaling_errors'),
    connections_lost: sum('connections_lost'),
    media_failures: sum('media_failures'),
    worker_cpu_s: arr('worker_cpu_s'),
    worker_runqueue_wait_s: arr('worker_runqueue_wait_s'),
  };
}

function chatSummary(rounds) {
  const ok = rounds.filter((r) => r?.steps?.length);
  const steps = ok.map((r) => r.steps[0]);
  const sum = (k) => steps.reduce((a, t) => a + (t[k] ?? 0), 0);
  const med = (k) => steps.map((t) => t[k]).sort((a, b) => a - b)[Math.floor(steps.length / 2)] ?? null;
  const secs = sum('seconds');
  return {
    rounds: rounds.length,
    conversations: ok.reduce((a, r) => a + (r.conversations ?? 0), 0),
    devices: ok.reduce((a, r) => a + (r.conversations ?? 0) * (r.devices_per_conversation ?? 0), 0),
    setup_s_median: ok.map((r) => r.setup_s).sort((a, b) => a - b)[Math.floor(ok.length / 2)] ?? null,
    messages_sent: sum('sent'),
    messages_acknowledged: sum('acknowledged_in_window'),
    message_seconds: +secs.toFixed(1),
    messages_per_s_while_sending: secs ? +(sum('acknowledged_in_window') / secs).toFixed(1) : null,
    deliveries_per_s_median: med('deliveries_per_s'),
    e2e_ms_p50_median: steps.length ? +(med('e2e_p50_us') / 1000).toFixed(2) : null,
    e2e_ms_p99_median: steps.length ? +(med('e2e_p99_us') / 1000).toFixed(2) : null,
    e2e_ms_max: steps.length ? +(Math.max(...steps.map((t) => t.e2e_max_us ?? 0)) / 1000).toFixed(2) : null,
    incomplete: sum('incomplete'),
    sample_checked: sum('sample_checked'),
    errors: rounds.reduce((a, r) => a + (r ? (r.setup_errors ?? 0) + (r.send_errors ?? 0) + (r.entry_errors ?? 0) + (r.verify_errors ?? 0) + (r.connections_lost ?? 0) : 1), 0),
  };
}

function churnSummary(list) {
  const ok = list.filter(Boolean);
  const refused = {};
  for (const c of ok) for (const [k, v] of Object.entries(c.refused_expected)) refused[k] = (refused[k] ?? 0) + v;
  const sum = (k) => ok.reduce((a, c) => a + (c[k] ?? 0), 0);
  return {
    offered_cycles_per_s: opt.churnRate,
    cycles: sum('cycles'),
    cycles_given_up: sum('cycles_failed'),
    requests: sum('requests'),
    connections: sum('connections'),
    ping_bursts: sum('ping_bursts'),
    ping_bursts_limited: sum('ping_bursts_limited'),
    unexpected: sum('unexpected'),
    behind_ms_max: Math.max(0, ...ok.map((c) => c.behind_ms_max ?? 0)),
    refused_expected: refused,
  };
}

async function main() {
  const phase2 = opt.minutes - opt.warmupMin;
  log(`out ${opt.out}; ${opt.minutes} min of load: warm-up ${opt.warmupMin} min, checkpoint, ${phase2} min, checkpoint`);
  await startServer();
  log(`spreekd pid ${server.pid} on 127.0.0.1:${server.port}, data ${server.dataDir}`);
  t0 = Date.now();
  const fresh = await sample('fresh');

  // Priming: what spreekd opens once on first use is open before the baseline.
  const prime = startChurn(['--parallel', '1', '--rate', '0', '--seconds', '5'], 'prime');
  const primeMedia = await spreekloadRound(1, 2);
  const primeChat = opt.chatConversations > 0 ? await chatRound(2) : { code: 0 };
  const primeChurn = await prime.done;
  if (primeChurn.code !== 0 || primeMedia.code !== 0 || primeChat.code !== 0) {
    fail(`priming: churn exit ${primeChurn.code}, spreekload exit ${primeMedia.code}, chat exit ${primeChat.code}`);
  }
  const warm = await waitIdle(-1, 60);
  if (warm.problems.length) fail(`not idle after the priming: ${warm.problems.join(', ')}`);
  await sleep(3000);
  const baseList = fdList(server.pid);
  const baseFds = baseList.length;
  if (opt.calibrate > 0) return calibrate();
  const base = await sample('baseline');
  baseThreads = base.threads;
  const baseHeap = liveHeapBytes();
  log(`baseline: rss ${base.rss_kb} KB (fresh ${fresh.rss_kb} KB), live heap ${baseHeap} B, fds ${baseFds} (fresh ${fresh.fds}), threads ${base.threads}`);

  // Warm-up, checkpoint A, the rest of the load, checkpoint B.
  t0 = Date.now();
  const p1 = await runPhase('load1', opt.warmupMin * 60000);
  const a = server.exit ? null : await checkpoint('idle-a', baseFds, baseList);
  const p2 = server.exit ? null : await runPhase('load2', phase2 * 60000);
  const b = server.exit ? null : await checkpoint('idle-b', baseFds, baseList);
  const rounds = [...p1.rounds, ...(p2?.rounds ?? [])];
  if (drivers.mediaFailed.length) fail(`spreekload rounds with protocol errors or lost connections: ${JSON.stringify(drivers.mediaFailed)}`);
  if (drivers.chatFailed.length) fail(`chat rounds with errors: ${JSON.stringify(drivers.chatFailed)}`);
  const chatRoundsAll = [...p1.chatRounds, ...(p2?.chatRounds ?? [])];

  // Growth: checkpoint B against checkpoint A (both idle, both after load, the allocator purged).
  // Judged: the live heap (what the server keeps allocated: every malloc of spreekd and its
  // libraries goes through ASan's allocator). Reported: the whole RSS and its parts (rssSplit()).
  const rssGrowth = a && b ? pct(a.rss_kb, b.rss_kb) : null;
  const otherGrowth = a && b ? pct(a.rss_other_kb, b.rss_other_kb) : null;
  const heapGrowth = a && b && a.live_heap_bytes > 0 && b.live_heap_bytes >= 0 ? pct(a.live_heap_bytes, b.live_heap_bytes) : null;
  // A warm-up shorter than MIN_WARMUP_MIN (a short trial run) ends before the store's page cache
  // and the maps have reached their working size: growth is then reported, not judged.
  const judge = opt.warmupMin >= MIN_WARMUP_MIN ? fail : (why) => log(`not judged (warm-up under ${MIN_WARMUP_MIN} min): ${why}`);
  if (heapGrowth !== null && heapGrowth > opt.growthLimitPct) judge(`live heap at idle grew ${heapGrowth} % from checkpoint A (${a.live_heap_bytes} B) to checkpoint B (${b.live_heap_bytes} B); limit ${opt.growthLimitPct} %`);
  if (rssGrowth !== null) {
    log(`RSS at idle after the purge (reported, not judged): ${a.rss_kb} KB at A, ${b.rss_kb} KB at B (${rssGrowth} %); ` +
      `shadow ${a.rss_shadow_kb} -> ${b.rss_shadow_kb}, ASan heap ${a.rss_asan_heap_kb} -> ${b.rss_asan_heap_kb}, rest ${a.rss_other_kb} -> ${b.rss_other_kb} KB (${otherGrowth} %)`);
  }

  if (!server.exit) server.proc.kill('SIGTERM');
  const ex = await Promise.race([server.exited, sleep(120000).then(() => null)]);
  if (!ex) {
    server.proc.kill('SIGKILL');
    fail('spreekd did not exit within 120 s of SIGTERM');
  } else if (ex.code !== 0) {
    fail(`spreekd exited with code ${ex.code}, signal ${ex.signal}`);
  }
  const report = sanitizerReports();
  if (report) fail(`sanitizer report in spreekd's stderr:\n${report}`);
  const verify = spawnSync(opt.spreekctl, ['--data', server.dataDir, 'audit', 'verify'], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
  if (verify.status !== 0) fail(`spreekctl audit verify: exit ${verify.status}: ${verify.stdout}${verify.stderr}`);

  const load = samples.filter((s) => s.phase.startsWith('load'));
  const first = load[0];
  const lastLoad = load[load.length - 1];
  const max = (k) => Math.max(...load.map((s) => s[k]));
  const counters = Object.fromEntries(Object.keys(COUNTERS).concat('sig_errors_total').map((k) => [k, lastLoad[k] - first[k]]));
  const loadS = opt.minutes * 60;
  const summary = {
    ok: failures.length === 0,
    failures,
    options: opt,
    spreekd: { pid: server.pid, exit: server.exit },
    checkpoints: { baseline: { rss_kb: base.rss_kb, live_heap_bytes: baseHeap, fds: baseFds, threads: base.threads }, a, b },
    growth_pct: { live_heap_idle: heapGrowth, rss_other_idle: otherGrowth, rss_idle: rssGrowth },
    rss_kb: { fresh: fresh.rss_kb, baseline: base.rss_kb, idle_a: a?.rss_kb, idle_b: b?.rss_kb, max_under_load: max('rss_kb') },
    under_load: { load1: underLoad('load1'), load2: underLoad('load2') },
    fds: { fresh: fresh.fds, baseline: baseFds, max: max('fds'), idle_a: a?.fds, idle_b: b?.fds },
    threads: { baseline: base.threads, max: max('threads'), idle_b: b?.threads },
    max_under_load: Object.fromEntries(Object.keys(GAUGES).map((k) => [k, max(k)])),
    spreekd_cpu_s_load: +(lastLoad.cpu_s - first.cpu_s).toFixed(1),
    spreekd_runq_wait_s_load: +(lastLoad.runq_wait_s - first.runq_wait_s).toFixed(1),
    load_s: loadS,
    server_counters_during_load: counters,
    requests_per_s_mean: +(counters.sig_messages_total / loadS).toFixed(1),
    forwarded_pps_mean: Math.round(counters.rtp_forwarded_total / loadS),
    churn: churnSummary([p1.churn, p2?.churn]),
    media: { offered_forwarded_pps: opt.mediaConsults * 2 * opt.mediaPps, failed_rounds: drivers.mediaFailed, ...mediaSummary(rounds) },
    chat: { offered_messages_per_s: opt.chatRate, conversations_per_round: opt.chatConversations, failed_rounds: drivers.chatFailed, ...chatSummary(chatRoundsAll) },
    store_rows: { baseline: storeRowsAt(base), idle_a: a?.store_rows, idle_b: b?.store_rows, max_under_load: Object.fromEntries(Object.keys(STORE_ROWS).map((k) => [k, max(k)])) },
    audit_verify: verify.stdout.trim(),
    loadavg_1m: { min: Math.min(...load.map((s) => +s.loadavg_1m)), median: load.map((s) => +s.loadavg_1m).sort((x, y) => x - y)[Math.floor(load.length / 2)], max: Math.max(...load.map((s) => +s.loadavg_1m)) },
    samples,
  };
  writeFileSync(join(opt.out, 'summary.json'), `${JSON.stringify(summary, null, 1)}\n`);
  const { samples: _s, options: _o, ...brief } = summary;
  console.log(JSON.stringify(brief, null, 1));
  if (summary.ok && !opt.keepData) rmSync(server.dataDir, { recursive: true, force: true });
  log(summary.ok ? 'PASS' : `FAIL (${failures.length}): data directory kept at ${server.dataDir}`);
  process.exit(summary.ok ? 0 : 1);
}

main().catch((e) => abort(e.stack));
