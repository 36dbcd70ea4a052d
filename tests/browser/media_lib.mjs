// Helpers for the media browser tests: spreekd with the relay on 127.0.0.1, a GP console, a
// patient through invite and lobby, and the pages' media statistics (window.__spk.media).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactDir, launchBrowser, mintToken, startServer, waitText, watchPage } from './lib.mjs';

export const GP = { role: 'gp', sub: 'gp-1', name: 'Dr. Jansen', practice: 'praktijk-a' };
export const SPECIALIST = {
  role: 'specialist',
  sub: 'spec-1',
  name: 'Dr. de Boer',
  practice: 'ziekenhuis-b',
};

export const tid = (page, id) => page.locator(`[data-testid="${id}"]`);

// spreekd with the media relay on loopback (unless `relay` is false; more spreekd switches in
// `args`), and headless Chromium (more switches in `browserArgs`). e2ee: the consults require
// end-to-end encrypted media (the product's default); the relay's own tests run without.
// relayArgs: how spreekd gets its relay (default: in-process on 127.0.0.1), e.g. relay nodes.
export async function setup(t, {
  relay = true, e2ee = false, relayArgs = ['--relay-address', '127.0.0.1'], args = [], browserArgs = [],
} = {}) {
  const media = [...relayArgs, '--media-e2ee', e2ee ? '1' : '0'];
  const srv = await startServer({ args: [...(relay ? media : []), ...args] });
  const browser = await launchBrowser({ args: browserArgs });
  const problems = [];
  t.after(async () => {
    await browser.close().catch(() => {});
    await srv.stop();
  });
  const shots = artifactDir();
  const shot = (page, name) =>
    page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }).catch(() => {});
  return { srv, browser, problems, shot };
}

// `init`: a function run in every document of the page before its own scripts.
export async function newPage(env, label, { width = 1280, height = 900, mobile = false, init } = {}) {
  const ctx = await env.browser.newContext({
    viewport: { width, height },
    locale: 'nl-NL',
    ...(mobile ? { deviceScaleFactor: 2, isMobile: true, hasTouch: true } : {}),
  });
  // Every RTCPeerConnection the page creates, so a test can read all of their statistics, and a
  // timeline of their ICE states and of the WebSockets (window.__timeline: [ms, what]) for
  // diagnostics.
  await ctx.addInitScript(() => {
    const timeline = (window.__timeline = []);
    const note = (what) => {
      timeline.push([Date.now(), what]);
      if (timeline.length > 2000) timeline.splice(0, 1000);
    };
    const NativeWs = window.WebSocket;
    if (NativeWs) {
      let n = 0;
      window.WebSocket = class extends NativeWs {
        constructor(...args) {
          super(...args);
          const id = ++n;
          note(`ws${id} new`);
          for (const ev of ['open', 'close', 'error']) {
            this.addEventListener(ev, (e) => note(`ws${id} ${ev}${e.code ? ` ${e.code}` : ''}`));
          }
        }
      };
    }
    const Native = window.RTCPeerConnection;
    if (!Native) return;
    window.__pcs = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        const id = window.__pcs.push(this);
        note(`pc${id} new`);
        this.addEventListener('iceconnectionstatechange', () =>
          note(`pc${id} ice ${this.iceConnectionState}`),
        );
        this.addEventListener('connectionstatechange', () =>
          note(`pc${id} conn ${this.connectionState}`),
        );
      }
    };
  });
  if (init) await ctx.addInitScript(init);
  const page = await ctx.newPage();
  env.problems.push(watchPage(page, label));
  return page;
}

// Inbound RTP packets over all of the page's connections, open or closed since.
export function allInbound(page) {
  return page.evaluate(async () => {
    let packets = 0;
    let connections = 0;
    for (const pc of window.__pcs || []) {
      connections += 1;
      try {
        const report = await pc.getStats();
        for (const s of report.values()) {
          if (s.type === 'inbound-rtp') packets += s.packetsReceived || 0;
        }
      } catch {
        /* closed */
      }
    }
    return { packets, connections };
  });
}

// Nobody receives RTP the relay's offer does not announce (e.g. their own media back).
export async function assertNoStrayRtp(page, label) {
  const sum = await summary(page);
  assert.ok(sum, `${label}: no call`);
  assert.equal(
    sum.subscribe.unannounced.packets,
    0,
    `${label}: RTP from SSRCs not in the offer: ${sum.subscribe.unannounced.ssrcs.join(', ')} ` +
      `(own: ${sum.ownSsrcs.join(', ')})`,
  );
}

// A professional's console, signed in from the link; `consult` opens that consult.
export async function openConsole(env, who, { consult = '', ...size } = {}) {
  const token = await mintToken(env.srv.dataDir, who);
  const page = await newPage(env, who.sub, size);
  const frag = consult ? `token=${token}&consult=${consult}` : `token=${token}`;
  await page.goto(`${env.srv.url}/console#${frag}`);
  await waitText(tid(page, 'user-name'), who.name, 30000); // the console loads its modules first
  return page;
}

// The GP creates a consult and joins it. Returns { id }.
export async function createAndJoin(gp, title = 'Beeldbellen') {
  await tid(gp, 'new-consult-patient').fill('pseudo-4711');
  await tid(gp, 'new-consult-title').fill(title);
  await tid(gp, 'new-consult-submit').click();
  await waitText(tid(gp, 'detail-title'), title);
  const item = gp.locator('[data-testid="consult-item"]', { hasText: title });
  const id = await item.getAttribute('data-consult');
  await tid(gp, 'consult-join').click();
  await tid(gp, 'detail-joined').waitFor({ state: 'visible' });
  return { id };
}

export async function newInvite(gp) {
  const before = await tid(gp, 'invite-url').inputValue().catch(() => '');
  await tid(gp, 'invite-create').click();
  await gp.waitForFunction(
    (old) => {
      const el = document.querySelector('[data-testid="invite-url"]');
      return el && el.value && el.value !== old;
    },
    before,
  );
  return tid(gp, 'invite-url').inputValue();
}

// A patient opens the invite and goes to the waiting room.
export async function patientToLobby(env, inviteUrl, name, size = {}) {
  const page = await newPage(env, name, { width: 360, height: 740, mobile: true, ...size });
  await page.goto(inviteUrl);
  await tid(page, 'screen-setup').waitFor({ state: 'visible' });
  await tid(page, 'media-ok').waitFor({ state: 'visible', timeout: 15000 });
  await tid(page, 'join-name').fill(name);
  await tid(page, 'join-submit').click();
  await waitText(tid(page, 'join-status'), 'De huisarts laat u zo binnen');
  return page;
}

// The GP records the patient's consent (verbal) and invites SPECIALIST to the consult shown.
export async function inviteSpecialist(gp) {
  await tid(gp, 'consent-given').selectOption('yes');
  await tid(gp, 'consent-method').selectOption('verbal');
  await tid(gp, 'consent-submit').click();
  await waitText(gp.locator('[data-testid="fact"][data-kind="consent"]'), 'gegeven');
  await tid(gp, 'specialist-sub').fill(SPECIALIST.sub);
  await tid(gp, 'specialist-name').fill(SPECIALIST.name);
  await tid(gp, 'specialist-submit').click();
  await waitText(gp.locator('[data-testid="fact"][data-kind="specialist"]'), SPECIALIST.name);
}

export async function admit(gp, patient, name, { timeout = 10000 } = {}) {
  const entry = gp.locator('[data-testid="lobby-entry"]', { hasText: name });
  await entry.locator('[data-testid="lobby-admit"]').click({ timeout });
  await waitText(tid(patient, 'consult-status'), 'binnengelaten', timeout);
}

export function summary(page) {
  return page.evaluate(() => (window.__spk && window.__spk.media ? window.__spk.media.summary() : null));
}

// The subscribe connection's totals for the remote participant called `name`.
export function fromName(sum, name) {
  if (!sum) return null;
  return Object.values(sum.subscribe.byParticipant).find((p) => p.name === name) || null;
}

// The local UDP port of the page's connection that receives video (the subscribe one), for
// shaping the packets to it; null without a selected pair.
export function subscribePort(page) {
  return page.evaluate(async () => {
    for (const pc of window.__pcs || []) {
      if (pc.signalingState === 'closed') continue;
      const r = await pc.getStats();
      const all = [...r.values()];
      if (!all.some((s) => s.type === 'inbound-rtp' && s.kind === 'video')) continue;
      const tr = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = tr && r.get(tr.selectedCandidatePairId);
      const local = pair && r.get(pair.localCandidateId);
      if (local) return local.port;
    }
    return null;
  });
}

// Polls the page's media summary until check(sum) is true.
export async function waitMedia(page, check, { timeout = 30000, what = 'media' } = {}) {
  const end = Date.now() + timeout;
  let last = null;
  for (;;) {
    last = await summary(page).catch(() => null);
    if (last && check(last)) return last;
    if (Date.now() > end) {
      assert.fail(`${what}: not reached within ${timeout} ms; last summary: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Waits until the page decodes at least `frames` video frames and receives audio from each of
// `names`.
export function waitReceiving(page, names, { frames = 100, audio = 50, timeout = 30000 } = {}) {
  return waitMedia(
    page,
    (sum) =>
      names.every((n) => {
        const p = fromName(sum, n);
        return (
          p &&
          p.framesDecoded >= frames &&
          p.audioPackets > audio &&
          (p.totalSamplesReceived > 0 || p.audioLevel > 0)
        );
      }),
    { timeout, what: `receiving ${names.join(', ')}` },
  );
}

export async function relayCounters(srv) {
  const m = await srv.server.metrics();
  return {
    forwarded: m.spk_relay_rtp_forwarded_total ?? 0,
    received: m.spk_relay_rtp_received_total ?? 0,
  };
}

// The page's timeline (see newPage) from `since` (ms since the epoch), as lines relative to it.
export async function timeline(page, since) {
  const list = await page.evaluate(() => window.__timeline || []).catch(() => []);
  return list.filter(([t]) => t >= since).map(([t, what]) => `${t - since} ms: ${what}`);
}

// Whether this process runs in a network namespace of its own that has nothing but loopback
// (run.sh), so a test may take the network down.
export function privateLoopback() {
  if (process.env.SPK_NETNS !== '1') return false;
  try {
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).trim().split('\n');
    return links.length === 1 && /^\d+: lo:/.test(links[0]);
  } catch {
    return false;
  }
}

export function noProblems(env) {
  const all = env.problems.flat();
  assert.deepEqual(all, []);
}

// A camera picture with as much detail as a real camera's sensor noise: Chromium's default fake
// camera shows a few flat shapes that VP8 codes in under 500 kbit/s whatever the link allows.
// 640x480 (what the client asks for), 30 frames of 4:2:0 noise in a Y4M file, played in a loop.
export function noiseCamera(dir) {
  const w = 640;
  const h = 480;
  const frame = (w * h * 3) / 2;
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\n`)];
  for (let i = 0; i < 30; i++) parts.push(Buffer.from('FRAME\n'), randomBytes(frame));
  const file = join(dir, 'noise.y4m');
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

// A 640x480 camera picture, flat grey but for a block of noise in the middle: the top layer
// costs several times the lower one (four times the noise), as a real camera's detail does,
// while the encoder keeps a usable frame rate (Chromium's own fake camera codes in so little
// that its layers differ by less than the link's margins; full-frame noise drops to a few frames
// a second). 30 frames of 4:2:0 in a Y4M file, played in a loop.
export function blockCamera(dir) {
  const w = 640;
  const h = 480;
  const bw = 160;
  const bh = 120;
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${h} F30:1 Ip A1:1 C420jpeg\n`)];
  for (let i = 0; i < 30; i++) {
    const f = Buffer.alloc((w * h * 3) / 2, 128);
    const noise = randomBytes(bw * bh);
    for (let y = 0; y < bh; y++) noise.copy(f, ((h - bh) / 2 + y) * w + (w - bw) / 2, y * bw, (y + 1) * bw);
    parts.push(Buffer.from('FRAME\n'), f);
  }
  const file = join(dir, 'block.y4m');
  writeFileSync(file, Buffer.concat(parts));
  return file;
}
