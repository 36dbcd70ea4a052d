// Consult churn through the real signaling protocol (docs/protocol.md), for the soak test
// (scripts/soak.sh, docs/operations.md "Soak test"). Not part of the normal suite.
//
//   node tests/soak/churn.mjs --ws ws://127.0.0.1:8480/ws --data DATA_DIR [options]
//
// --parallel N workers (8) each run consult cycles one after the other; --rate R starts R cycles
// per second in total (open loop, the workers take the next slot; 0 = closed loop: as fast as the
// answers come back, which is how the capacity is measured); --seconds S stops after S seconds
// (0: run until SIGTERM or SIGINT). On a stop no new cycle starts, the cycles in flight finish,
// every connection is closed and one summary line is printed.
//
// One cycle: the GP (or, every third cycle, the assistant acting for that GP) creates a consult,
// an invite and a spare invite that it revokes at once, and joins; the patient connects, redeems
// the invite and waits in the lobby (every fifth patient drops its connection there and comes back
// with its session token); the staff member sees it in lobby.update and admits it, records the
// identity check (the GP records that the patient can speak freely), reads the consult, sends the
// patient back to the lobby and admits it again; the patient leaves and closes; the consult is
// ended. Every answer and event is checked.
//
// Refused requests, each expecting one exact error code: a GP of another practice reads and
// admits in a live consult (forbidden); malformed frames on a signed-in connection (bad_json,
// bad_message for a missing field, for a newline in a title and for a binary frame, unknown_type,
// too_large); a burst of 160 pings on one connection (rate_limited beyond the burst); refused
// sign-ins from 127.0.0.2 (token_unknown_issuer, token_expired, invite_used, invite_revoked,
// invite_invalid: kept under the throttle threshold); and from 127.0.0.3 a run of bad tokens
// until sign-ins from that address are throttled (rate_limited). Sign-in refusals come from
// other loopback addresses because the server counts them per source address: from 127.0.0.1
// they would throttle the load itself.
//
// stdout: one JSON line per --stats-interval seconds ({"kind":"stats",...}) and a final
// {"kind":"summary",...}. Exit status 1 when any answer, event or connection was not what the
// protocol promises (the first 20 are described on stderr and in the summary).
import { Client } from '../integration/lib/client.mjs';
import { foreignIssuer, loadIssuer, mint } from '../integration/lib/tokens.mjs';
import { parseOptions } from './options.mjs';

const defaults = {
  ws: '',
  data: '',
  parallel: 8,
  rate: 2,
  seconds: 0,
  statsInterval: 10,
  timeoutMs: 60000,
  probeIntervalMs: 2000,
};
const opt = parseOptions(defaults, process.argv.slice(2), 'churn');
if (!opt.ws || !opt.data) {
  console.error('usage: churn.mjs --ws URL --data DIR [--parallel N] [--rate R] [--seconds S]');
  process.exit(2);
}

const issuer = loadIssuer(opt.data);
const PRACTICE = 'praktijk-soak';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- counters ----

const st = {
  cycles: 0,
  cyclesFailed: 0,
  requests: 0,
  refusedExpected: {},
  unexpected: 0,
  unexpectedFirst: [],
  connections: 0,
  behindMs: 0,
  behindMsRun: 0,
  rtts: [],
  bursts: 0,
  burstsLimited: 0,
};
function unexpected(what) {
  st.unexpected++;
  if (st.unexpectedFirst.length < 20) {
    const line = `${new Date().toISOString()} ${what}`;
    st.unexpectedFirst.push(line);
    console.error(`churn: unexpected: ${line}`);
  }
}
function refused(code) {
  st.refusedExpected[code] = (st.refusedExpected[code] ?? 0) + 1;
}

// ---- connections and requests ----

const open = new Set();
async function connect(localAddress) {
  const c = await Client.connect(opt.ws, localAddress ? { localAddress } : {});
  open.add(c);
  c.ws.on('close', () => open.delete(c));
  st.connections++;
  const hello = await c.next('hello', opt.timeoutMs);
  c.openedAt = Date.now();
  c.authTimeoutMs = hello.limits?.auth_timeout_ms ?? 15000;
  return c;
}

// A connection that has not signed in is closed with 4001 once auth_timeout_ms have passed
// since the upgrade (docs/protocol.md section 1). For the sign-in probes, which stay
// unauthenticated on purpose, that close is what the protocol promises when a slow server has
// not answered their attempts by then; any other close is not.
function closedByAuthTimeout(c, err) {
  return c.closed?.code === 4001 && Date.now() - c.openedAt >= c.authTimeoutMs - 1000 && /closed 4001/.test(err.message);
}

// Requests on one connection are paced to PACE_PER_S (the server allows 50/s with bursts of 100,
// docs/protocol.md section 1), as a client that keeps to the announced limits does; only the
// burst probe goes faster, on purpose.
const PACE_PER_S = 40;
async function pace(c) {
  const now = Date.now();
  const p = c.pace ?? (c.pace = { tokens: PACE_PER_S, t: now });
  p.tokens = Math.min(PACE_PER_S, p.tokens + ((now - p.t) * PACE_PER_S) / 1000);
  p.t = now;
  p.tokens -= 1;
  if (p.tokens < 0) await sleep((-p.tokens * 1000) / PACE_PER_S);
}

async function req(c, type, fields = {}, paced = true) {
  if (paced) await pace(c);
  const t0 = process.hrtime.bigint();
  const m = await c.req(type, fields, opt.timeoutMs);
  st.requests++;
  st.rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  return m;
}

async function ok(c, type, fields = {}) {
  const m = await req(c, type, fields);
  if (m.type !== 'ok') throw new Error(`${type}: ${m.code} ${m.message}`);
  return m;
}

// A request that must be refused with exactly `code`.
async function expectCode(c, code, type, fields = {}) {
  const m = await req(c, type, fields);
  const got = m.type === 'ok' ? 'ok' : m.code;
  if (got !== code) unexpected(`${type}: expected ${code}, got ${got} (${m.message ?? ''})`);
  else refused(code);
  return got;
}

let jti = 0;
const token = (claims) => mint(issuer, { jti: `soak-${process.pid}-${++jti}`, ...claims });

// A sign-in that a starved server did not answer within auth_timeout_ms ends in close 4001, as
// the protocol says; the cycle is then given up without counting it as unexpected.
class AuthTimeout extends Error {}
async function signInOn(c, type, fields) {
  try {
    return await ok(c, type, fields);
  } catch (e) {
    if (closedByAuthTimeout(c, e)) throw new AuthTimeout(`${type}: ${e.message}`);
    throw e;
  }
}

async function signIn(claims, localAddress) {
  const c = await connect(localAddress);
  await signInOn(c, 'auth', { token: token(claims) });
  return c;
}

// ---- one consult cycle ----

// Recent codes and consults, for the refusal probes.
const recent = { used: [], revoked: [], consults: [] };
const remember = (list, v) => {
  list.push(v);
  if (list.length > 32) list.shift();
};

class Worker {
  constructor(i) {
    this.i = i;
    this.gpClaims = { sub: `gp-soak-${i}`, name: `Dr. Soak ${i}`, role: 'gp', practice: PRACTICE };
    this.daClaims = {
      sub: `da-soak-${i}`, name: `Assistent ${i}`, role: 'assistant', practice: PRACTICE, acts_for: `gp-soak-${i}`,
    };
    this.gp = null;
    this.da = null;
    this.uses = 0;
  }

  // Staff connections are kept for 25 cycles, then signed in again with fresh tokens.
  async staff() {
    if (this.gp && this.uses++ < 25 && !this.gp.closed && !this.da.closed) return;
    this.gp?.close();
    this.da?.close();
    this.gp = await signIn(this.gpClaims);
    this.da = await signIn(this.daClaims);
    this.uses = 1;
  }

  async cycle(n) {
    await this.staff();
    const gp = this.gp;
    const actor = n % 3 === 0 ? this.da : gp;
    actor.drain();
    const { consult } = await ok(actor, 'consult.create', { patient: `pseudo-soak-${n % 997}`, title: 'Soak' });
    const cid = consult.id;
    remember(recent.consults, cid);
    const { invite } = await ok(actor, 'invite.create', { consult: cid });
    const spare = await ok(actor, 'invite.create', { consult: cid, ttl: 600 });
    const rv = await ok(actor, 'invite.revoke', { consult: cid, invite: spare.invite.id });
    if (rv.invite.state !== 'revoked') throw new Error(`invite.revoke: state ${rv.invite.state}`);
    remember(recent.revoked, spare.invite.code);
    await ok(actor, 'consult.join', { consult: cid });

    let pat = await connect();
    try {
      const red = await signInOn(pat, 'invite.redeem', { invite: invite.code, name: `Patiënt ${n}` });
      remember(recent.used, invite.code);
      const pid = red.participant.id;
      if (red.participant.state !== 'lobby') throw new Error(`redeem: state ${red.participant.state}`);
      await actor.until('lobby.update', (e) => e.consult === cid && e.lobby.some((p) => p.id === pid), opt.timeoutMs);
      if (n % 5 === 0) {
        // The patient's connection drops in the lobby; it comes back with its session token.
        pat.close();
        await pat.closedPromise(opt.timeoutMs);
        pat = await connect();
        await signInOn(pat, 'auth', { token: red.session_token });
        const j = await ok(pat, 'consult.join', { consult: cid });
        if (j.participant.state !== 'lobby' || j.participant.id !== pid) {
          throw new Error(`rejoin: ${j.participant.id} ${j.participant.state}`);
        }
      }
      const admit = () => ok(actor, 'lobby.admit', { consult: cid, participant: pid });
      await admit();
      await pat.next('admitted', opt.timeoutMs);
      await ok(actor, 'identity.record', { consult: cid, participant: pid, method: 'id_document', verified: true });
      await ok(gp, 'speak_freely.record', { consult: cid, participant: pid, confirmed: true });
      const got = await ok(actor, 'consult.get', { consult: cid });
      if (got.facts.length !== 2) throw new Error(`consult.get: ${got.facts.length} facts`);
      await ok(actor, 'lobby.send_back', { consult: cid, participant: pid });
      await pat.next('sent_back', opt.timeoutMs);
      await admit();
      await pat.next('admitted', opt.timeoutMs);
      await ok(pat, 'consult.leave', { consult: cid });
    } finally {
      pat.close();
    }
    await ok(actor, 'consult.end', { consult: cid });
    actor.drain();
    gp.drain();
  }

  close() {
    this.gp?.close();
    this.da?.close();
  }
}

// ---- refusals ----

class Prober {
  constructor() {
    this.k = 0;
    this.other = null;
    this.bad = null;
    this.burst = null;
    this.lastBurst = 0;
    this.lastThrottle = 0;
    this.signins = []; // times of refused sign-ins from 127.0.0.2, kept under the throttle
  }

  async conn(name, claims) {
    if (!this[name] || this[name].closed) this[name] = await signIn(claims);
    return this[name];
  }

  async probe() {
    const now = Date.now();
    if (now - this.lastBurst > 30000) {
      this.lastBurst = now;
      return this.rateBurst();
    }
    if (now - this.lastThrottle > 65000) {
      this.lastThrottle = now;
      return this.throttle();
    }
    const k = this.k++ % 3;
    if (k === 0) return this.otherPractice();
    if (k === 1) return this.malformed();
    return this.refusedSignIn();
  }

  async otherPractice() {
    const cid = recent.consults[recent.consults.length - 1];
    if (!cid) return;
    const c = await this.conn('other', { sub: 'gp-elders', name: 'Dr. Elders', role: 'gp', practice: 'praktijk-elders' });
    await expectCode(c, 'forbidden', 'consult.get', { consult: cid });
    await expectCode(c, 'forbidden', 'lobby.admit', { consult: cid, participant: 'p_00000000000000000000' });
  }

  // An error answer without `re` (bad_json, too_large, binary frames) arrives as an event.
  async rawExpect(c, send, code, what) {
    c.drain('error');
    send();
    let m;
    try {
      m = await c.next('error', opt.timeoutMs);
    } catch (e) {
      throw new Error(`${what}: ${e.message}`);
    }
    st.requests++;
    if (m.code !== code) unexpected(`raw frame: expected ${code}, got ${m.code}`);
    else refused(code);
  }

  async malformed() {
    const c = await this.conn('bad', { sub: 'gp-bad', name: 'Dr. Fout', role: 'gp', practice: PRACTICE });
    switch (Math.floor(this.k / 3) % 5) {
      case 0:
        return this.rawExpect(c, () => c.send('{"id":1,"type":'), 'bad_json', 'truncated JSON');
      case 1:
        return expectCode(c, 'bad_message', 'consult.create', { title: 'zonder patiënt' });
      case 2:
        return expectCode(c, 'bad_message', 'consult.create', { patient: 'pseudo-x', title: 'twee\nregels' });
      case 3:
        return expectCode(c, 'unknown_type', 'consult.explode', {});
      default:
        await this.rawExpect(c, () => c.ws.send(Buffer.from([1, 2, 3]), { binary: true }), 'bad_message', 'binary frame');
        return this.rawExpect(c, () => c.send({ type: 'ping', pad: 'x'.repeat(70000) }), 'too_large', '70 KB frame');
    }
  }

  // 300 pings at once on one connection: beyond the burst (100) they are answered rate_limited.
  // How many depends on how fast the server reads them (the bucket refills at 50/s while it
  // works through the frames; on a starved machine it may read them all slowly enough), so a
  // single burst may pass unlimited; the summary requires that some bursts were limited.
  async rateBurst() {
    const c = await this.conn('burst', { sub: 'gp-burst', name: 'Dr. Haast', role: 'gp', practice: PRACTICE });
    const answers = await Promise.all(Array.from({ length: 300 }, () => req(c, 'ping', {}, false)));
    const limited = answers.filter((m) => m.type === 'error' && m.code === 'rate_limited').length;
    const oks = answers.filter((m) => m.type === 'ok').length;
    st.bursts++;
    if (oks + limited !== answers.length) {
      unexpected(`ping burst: ${oks} ok, ${limited} rate_limited of ${answers.length}`);
    } else if (limited) {
      st.burstsLimited++;
      for (let i = 0; i < limited; i++) refused('rate_limited');
    }
  }

  // Refused sign-ins from 127.0.0.2, at most 20 a minute (the throttle is at 30).
  async refusedSignIn() {
    const now = Date.now();
    this.signins = this.signins.filter((t) => now - t < 61000);
    if (this.signins.length >= 20) return;
    this.signins.push(now);
    const c = await connect('127.0.0.2');
    try {
      return await this.signInAttempt(c, now);
    } catch (e) {
      if (!closedByAuthTimeout(c, e)) throw e;
      refused('closed_4001_auth_timeout');
      return undefined;
    } finally {
      c.close();
    }
  }

  async signInAttempt(c, now) {
    const foreign = foreignIssuer();
    const past = Math.floor(now / 1000) - 600;
    switch (Math.floor(this.k / 3) % 5) {
        case 0:
          return await expectCode(c, 'token_unknown_issuer', 'auth', { token: mint(foreign, { sub: 'x' }) });
        case 1:
          return await expectCode(c, 'token_expired', 'auth', {
            token: token({ sub: 'gp-late', role: 'gp', practice: PRACTICE, iat: past, nbf: past, exp: past + 60 }),
          });
        case 2:
          if (!recent.used.length) return undefined;
          return await expectCode(c, 'invite_used', 'invite.redeem', { invite: recent.used[0], name: 'Nog eens' });
        case 3:
          if (!recent.revoked.length) return undefined;
          return await expectCode(c, 'invite_revoked', 'invite.redeem', { invite: recent.revoked[0], name: 'Te laat' });
        default:
          return await expectCode(c, 'invite_invalid', 'invite.redeem', { invite: 'A'.repeat(22), name: 'Niemand' });
    }
  }

  // From 127.0.0.3: bad tokens until that address is throttled (at most 70 tries; a new
  // connection when a slow server let the old one reach its authentication timeout).
  async throttle() {
    let c = await connect('127.0.0.3');
    try {
      for (let i = 0; i < 70; i++) {
        let m;
        try {
          m = await req(c, 'auth', { token: `bad.${i}.token` });
        } catch (e) {
          if (!closedByAuthTimeout(c, e)) throw e;
          refused('closed_4001_auth_timeout');
          c = await connect('127.0.0.3');
          continue;
        }
        const code = m.type === 'ok' ? 'ok' : m.code;
        if (code === 'rate_limited') {
          refused('rate_limited_sign_in');
          return;
        }
        if (code !== 'token_invalid') {
          unexpected(`throttle probe: expected token_invalid or rate_limited, got ${code}`);
          return;
        }
        refused('token_invalid');
      }
      unexpected('throttle probe: 70 refused sign-ins from one address and no rate_limited');
    } finally {
      c.close();
    }
  }

  close() {
    for (const c of [this.other, this.bad, this.burst]) c?.close();
  }
}

// ---- the run ----

let stopping = false;
let nextSlot = 0;
let t0 = Date.now();
// Open loop: cycle k may start at t0 + k / rate; a worker that finds its slot in the past is
// behind (the server or this driver cannot keep up), which the stats report.
async function takeSlot() {
  const k = nextSlot++;
  if (opt.rate <= 0) return k;
  const at = t0 + (k * 1000) / opt.rate;
  const wait = at - Date.now();
  if (wait > 0) await sleep(wait);
  else {
    st.behindMs = Math.max(st.behindMs, -wait);
    st.behindMsRun = Math.max(st.behindMsRun, -wait);
  }
  return k;
}

async function workerLoop(w) {
  while (!stopping) {
    const n = await takeSlot();
    if (stopping) break;
    try {
      await w.cycle(n);
      st.cycles++;
    } catch (e) {
      st.cyclesFailed++;
      if (e instanceof AuthTimeout) refused('cycle_given_up_auth_timeout');
      else unexpected(`cycle ${n} (worker ${w.i}): ${e.message}`);
      w.close();
      w.gp = null;
      await sleep(1000);
    }
  }
  w.close();
}

async function proberLoop(p) {
  while (!stopping) {
    await sleep(opt.probeIntervalMs);
    if (stopping) break;
    try {
      await p.probe();
    } catch (e) {
      unexpected(`probe ${p.k}: ${e.message}`);
      p.close();
      p.other = p.bad = p.burst = null;
    }
  }
  p.close();
}

function pct(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : 0;
}

let last = { t: Date.now(), cycles: 0, requests: 0 };
function stats(kind) {
  const now = Date.now();
  const rtts = st.rtts.sort((a, b) => a - b);
  const line = {
    kind,
    t_s: Math.round((now - t0) / 1000),
    cycles: st.cycles,
    cycles_failed: st.cyclesFailed,
    requests: st.requests,
    connections: st.connections,
    cycles_per_s: +(((st.cycles - last.cycles) * 1000) / Math.max(1, now - last.t)).toFixed(2),
    requests_per_s: +(((st.requests - last.requests) * 1000) / Math.max(1, now - last.t)).toFixed(1),
    rtt_ms_p50: +pct(rtts, 0.5).toFixed(2),
    rtt_ms_p99: +pct(rtts, 0.99).toFixed(2),
    rtt_ms_max: +(rtts[rtts.length - 1] ?? 0).toFixed(2),
    behind_ms_max: Math.round(st.behindMs),
    refused_expected: st.refusedExpected,
    unexpected: st.unexpected,
  };
  if (kind === 'summary') {
    line.cycles_per_s = +((st.cycles * 1000) / Math.max(1, now - t0)).toFixed(2);
    line.requests_per_s = +((st.requests * 1000) / Math.max(1, now - t0)).toFixed(1);
    line.unexpected_first = st.unexpectedFirst;
    line.behind_ms_max = Math.round(st.behindMsRun);
    line.ping_bursts = st.bursts;
    line.ping_bursts_limited = st.burstsLimited;
    line.parallel = opt.parallel;
    line.rate = opt.rate;
  }
  st.rtts = [];
  st.behindMs = 0;
  last = { t: now, cycles: st.cycles, requests: st.requests };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function main() {
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { stopping = true; });
  t0 = Date.now();
  last.t = t0;
  const statsTimer = setInterval(() => stats('stats'), opt.statsInterval * 1000);
  const stopTimer = opt.seconds > 0 ? setTimeout(() => { stopping = true; }, opt.seconds * 1000) : null;
  const workers = Array.from({ length: opt.parallel }, (_, i) => new Worker(i));
  const loops = workers.map((w) => workerLoop(w));
  loops.push(proberLoop(new Prober()));
  await Promise.all(loops);
  clearInterval(statsTimer);
  if (stopTimer) clearTimeout(stopTimer);
  if (st.bursts >= 3 && st.burstsLimited === 0) unexpected(`${st.bursts} bursts of 300 pings, none rate_limited`);
  for (const c of open) c.close();
  const end = Date.now() + 5000;
  while (open.size && Date.now() < end) await sleep(50);
  if (open.size) unexpected(`${open.size} connections did not close`);
  // The totals cover the whole run; the latency figures the last interval.
  stats('summary');
  process.exit(st.unexpected ? 1 : 0);
}

main().catch((e) => {
  console.error(`churn: ${e.stack}`);
  process.exit(1);
});
