// Benchmark: the latency end-to-end encryption adds per frame in the browser (docs/performance.md
// "SFrame"). Two headless Chromium pages (GP and patient) hold a 1:1 call through the real relay
// with SFrame transforms keyed from a real MLS group, for SECONDS (default 20); then each page's
// media worker reports the time frames spent in its encrypt and decrypt transforms (mean, p50,
// p99 over the last 2,048 frames of each). The floor, measured in the same pages: one WebCrypto
// AES-128-GCM encrypt + decrypt of a 1,200-byte frame, awaited in turn, 2,000 times.
// Usage: SPREEKD=... SPREEKCTL=... node tests/bench/e2ee_browser.mjs [SECONDS]
import { Client } from '../integration/lib/client.mjs';
import { loadMls } from '../../web/mls/spk_mls.js';
import { safetyNumber } from '../../web/js/e2ee/e2ee.js';
import { mintToken } from '../browser/lib.mjs';
import { GP, newPage, setup } from '../browser/media_lib.mjs';
import { keysOf, received, sleep, startCall, until } from '../browser/e2ee_lib.mjs';

const seconds = Number(process.argv[2] || 20);
const cleanups = [];
const t = { after: (fn) => cleanups.push(fn) };

async function floor(page) {
  return page.evaluate(async () => {
    const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 128 }, false, ['encrypt', 'decrypt']);
    const data = new Uint8Array(1200);
    const iv = new Uint8Array(12);
    const n = 2000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      new DataView(iv.buffer).setUint32(8, i);
      const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, data);
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, ct);
    }
    return Math.round(((performance.now() - t0) * 1000) / n);
  });
}

try {
  const env = await setup(t, { e2ee: true });
  const gpToken = await mintToken(env.srv.dataDir, GP);
  const gpc = await Client.connect(env.srv.server.wsUrl);
  cleanups.push(() => gpc.close());
  await gpc.next('hello');
  await gpc.ok('auth', { token: gpToken });
  const { consult } = await gpc.ok('consult.create', { patient: 'pseudo-4711', title: 'E2EE bench' });
  await gpc.ok('consult.join', { consult: consult.id });
  const { invite } = await gpc.ok('invite.create', { consult: consult.id });
  const c = await Client.connect(env.srv.server.wsUrl);
  await c.next('hello');
  const red = await c.ok('invite.redeem', { invite: invite.code, name: 'Sanne de Vries' });
  await gpc.ok('lobby.admit', { consult: consult.id, participant: red.participant.id });
  c.close();

  const mls = await loadMls();
  const kps = ['gp', 'patient'].map((n) => mls.keyPackageCreate(n));
  const g0 = mls.create(`consult-${consult.id}`, kps[0].secret);
  const { welcome } = g0.commit({ add: [kps[1].keyPackage] });
  g0.commitMerge();
  const groups = [g0, mls.join(kps[1].secret, welcome)];
  const pages = {};
  for (const [who, token, i] of [
    ['gp', gpToken, 0],
    ['patient', red.session_token, 1],
  ]) {
    pages[who] = await newPage(env, who);
    await startCall(pages[who], {
      url: env.srv.url,
      token,
      consult: consult.id,
      keys: keysOf(groups[i]),
      safety: safetyNumber(groups[i].epochAuthenticator()),
    });
  }
  for (const who of Object.keys(pages)) await until(pages[who], (x) => x.frames >= 30, who, 60000);
  await sleep(seconds * 1000);
  for (const [who, page] of Object.entries(pages)) {
    const r = await received(page);
    const base = await floor(page);
    const l = r.e2ee.latency;
    console.log(JSON.stringify({ page: who, frames_decoded: r.frames, failed: r.e2ee.failed, encrypt: l.encrypt, decrypt: l.decrypt, webcrypto_gcm_1200_us: base }));
    console.log(
      `${who}: encrypt mean ${l.encrypt.mean_us} µs p50 ${l.encrypt.p50_us} p99 ${l.encrypt.p99_us}; ` +
        `decrypt mean ${l.decrypt.mean_us} µs p50 ${l.decrypt.p50_us} p99 ${l.decrypt.p99_us}; ` +
        `floor (WebCrypto GCM seal+open, 1,200 B) ${base} µs; ` +
        `transform / floor ${((l.encrypt.mean_us + l.decrypt.mean_us) / base).toFixed(2)}x`,
    );
  }
  for (const g of groups) g.free();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
