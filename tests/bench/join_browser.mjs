// Benchmark: how long a patient waits for the picture (docs/performance.md "Join"). The real
// pages in headless Chromium through the relay: a GP console and a patient page; the GP admits
// the patient, and the time from the admit click to the first decoded remote video frame is
// measured on both sides (requestVideoFrameCallback on the tiles); then the GP sends the patient
// back and the next join begins (the GP admits BENCH_JOIN_WAIT_MS, default 2000, after the
// patient appears in the lobby; the time counts from the click as the GP's page receives it).
// The patient's media connections are built anew at every
// admission (ICE, DTLS, SRTP, first key frame). With E2EE (the server's default) the keys come
// through the consult chat's MLS group as well (a Commit with the patient's device and a Welcome).
// With BENCH_JOIN_SPLIT=1 each page also records when the steps of a join happen (signaling
// messages, ICE and DTLS states, the first video packet and the first decoded frame, from
// getStats polled every 10 ms), and the medians of each step since the admit click are printed.
// The steps include the chat's (the GP's chat.members.add, claims and Commit, the patient's
// Welcome) and E2EE's (the key posted to the media worker, its first frame encrypted, decrypted
// or dropped). BENCH_JOIN_FRESH=1: every join is a new patient's first admission (a new invite
// and browser context) instead of the same patient sent back and admitted again.
// BENCH_JOIN_PROFILE=1: each page's main thread is sampled during every join (below);
// BENCH_JOIN_TRACE=<file>: a Chromium trace (devtools.timeline, blink, webrtc) of the second
// join is written to the file.
// Usage: SPREEKD=... SPREEKCTL=... [BENCH_WEB_ROOT=dir] node tests/bench/join_browser.mjs
//        [JOINS=20] [e2ee: 0|1]
import { waitText } from '../browser/lib.mjs';
import { GP, admit, createAndJoin, newInvite, openConsole, patientToLobby, setup, tid } from '../browser/media_lib.mjs';

const joins = Number(process.argv[2] || 20);
const e2ee = process.argv[3] === '1';
const cleanups = [];
const t = { after: (fn) => cleanups.push(fn) };
const PATIENT = 'Sanne de Vries';
const split = process.env.BENCH_JOIN_SPLIT === '1';

// Run in every document of the pages when `split`: window.__steps, [ms since the epoch, step],
// for the first occurrence of each step after window.__stepsFrom.
function traceInit() {
  const steps = (window.__steps = []);
  window.__stepsFrom = Infinity;
  const note = (what) => {
    if (Date.now() < window.__stepsFrom || steps.some(([, w]) => w === what)) return;
    steps.push([Date.now(), what]);
  };
  window.__note = note;
  const asks = new Map(); // request id -> type
  const watched = (type) => /^(media\.|admitted|sent_back|lobby\.admit|roster|mls\.|chat\.(entry|members|get|sync))/.test(type || '');
  const NativeWs = window.WebSocket;
  window.WebSocket = class extends NativeWs {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string' || ev.data.length > 65536) return;
        let m;
        try {
          m = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (m.re != null && asks.has(m.re)) note(`< ${m.type} ${asks.get(m.re)}`);
        else if (m.type === 'chat.entry') note(`< chat.entry ${m.kind}`);
        else if (watched(m.type)) note(`< ${m.type}`);
      });
    }
    send(data) {
      if (typeof data === 'string' && data.length < 65536) {
        try {
          const m = JSON.parse(data);
          if (watched(m.type)) {
            if (m.id != null) asks.set(m.id, m.type);
            note(`> ${m.type}${m.type === 'media.candidate' ? ` ${m.pc}` : ''}`);
          }
        } catch {
          /* not JSON */
        }
      }
      return super.send(data);
    }
  };
  // End-to-end encryption (web/js/e2ee): the media key posted to the worker, and the worker's
  // counters growing past what they were when the steps began (it reports a counter at once
  // when it moves after standing still).
  const NativeWorker = window.Worker;
  window.__workers = [];
  window.Worker = class extends NativeWorker {
    constructor(...args) {
      super(...args);
      this.__last = {};
      this.__base = null;
      window.__workers.push(this);
      this.addEventListener('message', (ev) => {
        const st = ev.data && ev.data.type === 'stats' ? ev.data.stats : null;
        if (!st) return;
        this.__last = st;
        if (Date.now() < window.__stepsFrom) return;
        const base = this.__base || {};
        for (const f of ['encrypted', 'decrypted', 'released', 'dropped_no_key', 'dropped_not_ours', 'key_frames_asked']) {
          if ((st[f] || 0) > (base[f] || 0)) note(`e2ee ${f}`);
        }
      });
    }
    postMessage(m, ...rest) {
      if (m && m.type === 'epoch') note('e2ee key set');
      return super.postMessage(m, ...rest);
    }
  };
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      let name = 'pc';
      const origSrd = this.setRemoteDescription.bind(this);
      this.setRemoteDescription = (d, ...rest) => {
        if (d && d.type === 'offer') name = 'sub';
        if (d && d.type === 'answer') name = 'pub';
        return origSrd(d, ...rest);
      };
      this.addEventListener('iceconnectionstatechange', () => note(`${name} ice ${this.iceConnectionState}`));
      this.addEventListener('connectionstatechange', () => note(`${name} conn ${this.connectionState}`));
    }
  };
  // Counters of the streams there were when the steps began (the GP's subscribe connection
  // stays up between joins) count from what they had then.
  window.__base = null;
  setInterval(async () => {
    if (Date.now() < window.__stepsFrom) return;
    const first = window.__base === null;
    if (first) window.__base = new Map();
    const base = window.__base;
    const grew = (s, field) => {
      const k = `${s.id} ${field}`;
      if (first) base.set(k, s[field] || 0);
      return (s[field] || 0) > (base.get(k) || 0);
    };
    for (const pc of window.__pcs || []) {
      if (pc.signalingState === 'closed') continue;
      let r;
      try {
        r = await pc.getStats();
      } catch {
        continue;
      }
      for (const s of r.values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          if (grew(s, 'packetsReceived')) note('video rtp in');
          if (grew(s, 'framesDecoded')) note('video decoded');
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video' && grew(s, 'packetsSent')) {
          note('video rtp out');
        }
      }
    }
  }, 10);
}

// Arms a page: the wall-clock time of the first remote video frame shown after now.
function arm(page) {
  return page.evaluate(() => {
    window.__first = null;
    window.__admitClick = null;
    if (!window.__admitWatch) {
      window.__admitWatch = true;
      document.addEventListener(
        'click',
        (ev) => {
          if (ev.target.closest && ev.target.closest('[data-testid="lobby-admit"]')) window.__admitClick = Date.now();
        },
        true,
      );
    }
    if (window.__steps) {
      window.__steps.length = 0;
      window.__stepsFrom = Date.now();
      window.__base = null;
      for (const w of window.__workers || []) w.__base = { ...w.__last };
    }
    // Every remote video element that appears gets a frame callback (a MutationObserver, not
    // polling, so that the measurement takes no CPU from the page it measures).
    const seen = new WeakSet();
    const scan = () => {
      for (const v of document.querySelectorAll('#tiles .tile-remote video')) {
        if (seen.has(v)) continue;
        seen.add(v);
        v.requestVideoFrameCallback(() => {
          if (window.__first === null) window.__first = Date.now();
          if (window.__note) window.__note('frame shown');
          if (window.__firstObs) window.__firstObs.disconnect();
        });
      }
    };
    if (window.__firstObs) window.__firstObs.disconnect();
    window.__firstObs = new MutationObserver(scan);
    window.__firstObs.observe(document.body, { childList: true, subtree: true });
    scan();
  });
}

async function firstFrame(page, timeout = 30000) {
  const h = await page.waitForFunction(() => window.__first, null, { timeout, polling: 10 });
  return h.jsonValue();
}

// BENCH_JOIN_PROFILE=1: the main thread of each page is sampled (the DevTools protocol's CPU
// profiler, 250 µs) from just before the admit click until both first frames were seen, and the self time of each function
// summed over the joins is printed, with the share of the window the thread was busy.
const profile = process.env.BENCH_JOIN_PROFILE === '1';
const profiles = {
  patient: { self: new Map(), busy: 0, window: 0, rtt: new Map(), net: new Map() },
  gp: { self: new Map(), busy: 0, window: 0, rtt: new Map(), net: new Map() },
};
const cdpOf = new WeakMap();
async function profStart(page) {
  let cdp = cdpOf.get(page);
  if (!cdp) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 250 });
    await cdp.send('Network.enable');
    cdp.frames = [];
    const rec = (dir) => (ev) => {
      let m;
      try {
        m = JSON.parse(ev.response.payloadData);
      } catch {
        return;
      }
      cdp.frames.push({ t: ev.timestamp * 1000, dir, type: m.type, id: m.id, re: m.re, pc: m.pc });
    };
    cdp.on('Network.webSocketFrameSent', rec('>'));
    cdp.on('Network.webSocketFrameReceived', rec('<'));
    cdpOf.set(page, cdp);
  }
  cdp.frames.length = 0;
  await cdp.send('Profiler.start');
}
async function profStop(page, into) {
  const cdp = cdpOf.get(page);
  const { profile: pr } = await cdp.send('Profiler.stop');
  // The WebSocket frames as DevTools recorded them (stamped where the renderer handles them, so
  // a busy page delays them too): each step's time since the first frame of the join, and each
  // request's round trip.
  const asked = new Map();
  const f0 = cdp.frames.length ? cdp.frames[0].t : 0;
  const seen = new Set();
  for (const f of cdp.frames) {
    let step = null;
    if (f.dir === '>' && f.id != null) {
      asked.set(f.id, f);
      step = `> ${f.type}${f.pc ? ` ${f.pc}` : ''}`;
    } else if (f.dir === '<' && f.re != null && asked.has(f.re)) {
      const q = asked.get(f.re);
      const k = `round trip ${q.type}${q.pc ? ` ${q.pc}` : ''}`;
      if (!into.rtt.has(k)) into.rtt.set(k, []);
      into.rtt.get(k).push(f.t - q.t);
      step = `< ${f.type} ${q.type}${q.pc ? ` ${q.pc}` : ''}`;
    } else if (f.dir === '<') step = `< ${f.type}`;
    if (step && !seen.has(step)) {
      seen.add(step);
      if (!into.net.has(step)) into.net.set(step, []);
      into.net.get(step).push(f.t - f0);
    }
  }
  const byId = new Map(pr.nodes.map((n) => [n.id, n]));
  for (let k = 0; k < pr.samples.length; k++) {
    const dt = (k + 1 < pr.timeDeltas.length ? pr.timeDeltas[k + 1] : 0) / 1000;
    const cf = byId.get(pr.samples[k]).callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    const url = (cf.url || '').replace(/^.*\/(web|js)\//, '');
    const key = name.startsWith('(') ? name : `${name} ${url}:${cf.lineNumber + 1}`;
    into.self.set(key, (into.self.get(key) || 0) + dt);
    into.busy += dt;
  }
  into.window += (pr.endTime - pr.startTime) / 1000;
}
function profPrint(all, joins) {
  for (const [who, pr] of Object.entries(all)) {
    console.log(`main thread of the ${who}'s page, admit to first frame, ${joins} joins: busy ${Math.round(pr.busy / joins)} ms of ${Math.round(pr.window / joins)} ms per join`);
    const rows = [...pr.self].sort((a, b) => b[1] - a[1]).slice(0, 30);
    for (const [k, ms] of rows) console.log(`  ${(ms / joins).toFixed(1).padStart(6)} ms  ${k}`);
    console.log(`  WebSocket frames in DevTools at the ${who}'s page, ms since its first frame of the join (p50):`);
    const net = [...pr.net].map(([k, a]) => [k, pct(a, 50), a.length]).sort((a, b) => a[1] - b[1]);
    for (const [k, p50, n] of net) console.log(`  ${p50.toFixed(1).padStart(7)} ${String(n).padStart(3)}  ${k}`);
    console.log(`  round trips in DevTools (p50 / p95 ms):`);
    for (const [k, a] of pr.rtt) console.log(`  ${pct(a, 50).toFixed(1).padStart(7)} ${pct(a, 95).toFixed(1).padStart(7)}  ${k}`);
  }
}

const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};

try {
  // BENCH_WEB_ROOT: another web client (e.g. an older tree's, for a before/after comparison);
  // BENCH_JOIN_ARGS: more spreekd switches (e.g. "--relay-ice-lite 1").
  const args = process.env.BENCH_WEB_ROOT ? ['--web-root', process.env.BENCH_WEB_ROOT] : [];
  args.push(...(process.env.BENCH_JOIN_ARGS || '').split(' ').filter(Boolean));
  const env = await setup(t, { e2ee, args });
  const init = split ? traceInit : undefined;
  const gp = await openConsole(env, GP, { init });
  await createAndJoin(gp);
  // BENCH_JOIN_FRESH=1: every join is a new patient's first admission (a new invite, a new
  // browser context: no chat group, no KeyPackage claimed before, nothing cached), the page
  // closed after it; otherwise one patient is sent back and admitted again.
  const fresh = process.env.BENCH_JOIN_FRESH === '1';
  const lobbyWait = Number(process.env.BENCH_JOIN_WAIT_MS ?? 2000);
  const nameOf = (i) => (fresh ? `Patiënt ${String(i).padStart(2, '0')}` : PATIENT);
  let pat = await patientToLobby(env, await newInvite(gp), nameOf(0), { init });
  const atPatient = [];
  const atGp = [];
  const stepsOf = { patient: new Map(), gp: new Map() }; // step -> [ms since the admit click]
  const collect = async (page, into, t0) => {
    const line = {};
    for (const [t, what] of await page.evaluate(() => window.__steps || [])) {
      if (!into.has(what)) into.set(what, []);
      into.get(what).push(t - t0);
      line[what] = t - t0;
    }
    return line;
  };
  for (let i = 0; i < joins + 1; i++) {
    if (lobbyWait > 0) {
      // A person admits after reading the lobby entry, not the moment it appears: the patient's
      // page has finished what it does on arrival by then (BENCH_JOIN_WAIT_MS, 0 = at once).
      await gp.locator('[data-testid="lobby-entry"]', { hasText: nameOf(i) }).waitFor({ timeout: 30000 });
      await new Promise((r) => setTimeout(r, lobbyWait));
    }
    await arm(pat);
    await arm(gp);
    if (profile && i > 0) await Promise.all([profStart(pat), profStart(gp)]);
    const tracing = process.env.BENCH_JOIN_TRACE && i === 1;
    if (tracing) await env.browser.startTracing(pat, { path: process.env.BENCH_JOIN_TRACE, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink', 'webrtc'] });
    const tClick = Date.now();
    await admit(gp, pat, nameOf(i), { timeout: 30000 });
    // The admit is the click as the GP's page received it (Playwright's own checks before it
    // clicks take tens of milliseconds that no person waits for); one clock for all pages.
    const t0 = (await gp.evaluate(() => window.__admitClick)) || tClick;
    const [p, g] = await Promise.all([firstFrame(pat), firstFrame(gp)]);
    if (tracing) await env.browser.stopTracing();
    if (profile && i > 0) {
      await profStop(pat, profiles.patient);
      await profStop(gp, profiles.gp);
    }
    if (i > 0) {
      // the first join warms up the pages (module loading, the MLS library); not counted
      atPatient.push(p - t0);
      atGp.push(g - t0);
      const line = { join: i, patient_ms: p - t0, gp_ms: g - t0 };
      if (split) {
        line.patient_steps = await collect(pat, stepsOf.patient, t0);
        line.gp_steps = await collect(gp, stepsOf.gp, t0);
      }
      console.log(JSON.stringify(line));
      if (split && process.env.BENCH_JOIN_LOGS === "1") {
        // the relay's log lines of this join (spreekd runs with --log-level info)
        for (const l of env.srv.server.logs) {
          const at = Date.parse(l.ts);
          if (at >= t0 && at <= Math.max(p, g) && /^relay/.test(l.msg || '')) console.log(`  ${at - t0} ms: ${l.msg}`);
        }
      }
    }
    if (fresh) {
      await pat.context().close();
      await gp.waitForFunction(() => !document.querySelector('#tiles .tile-remote'), null, { timeout: 30000 });
      if (i < joins) pat = await patientToLobby(env, await newInvite(gp), nameOf(i + 1), { init });
      continue;
    }
    await gp.locator('[data-testid="send-back"]').click();
    await waitText(tid(pat, 'join-status'), 'teruggezet', 30000);
    await pat.waitForFunction(() => !document.querySelector('#tiles .tile-remote'), null, { timeout: 30000 });
  }
  const fig = (a) => ({ p50: pct(a, 50), p95: pct(a, 95), max: Math.max(...a) });
  const out = { e2ee, joins, fresh, lobby_wait_ms: lobbyWait, patient_ms: fig(atPatient), gp_ms: fig(atGp) };
  if (split) {
    for (const [who, m] of Object.entries(stepsOf)) {
      const rows = [...m].map(([what, a]) => [what, pct(a, 50), pct(a, 95), a.length]);
      rows.sort((x, y) => x[1] - y[1]);
      console.log(`steps at the ${who} (ms since the admit click: p50 p95 count):`);
      for (const [what, p50, p95, n] of rows) console.log(`  ${String(p50).padStart(5)} ${String(p95).padStart(5)} ${String(n).padStart(3)}  ${what}`);
      out[`${who}_steps_p50`] = Object.fromEntries(rows.map(([w, p50]) => [w, p50]));
    }
  }
  if (profile) profPrint(profiles, joins);
  console.log(JSON.stringify(out));
  console.log(
    `join (admit → first decoded remote frame), ${joins} ${fresh ? 'first admissions' : 'joins'}, E2EE ${e2ee ? 'on' : 'off'}: ` +
      `patient p50 ${out.patient_ms.p50} ms p95 ${out.patient_ms.p95} ms; GP p50 ${out.gp_ms.p50} ms p95 ${out.gp_ms.p95} ms`,
  );
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
