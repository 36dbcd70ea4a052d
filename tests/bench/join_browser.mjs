// Benchmark: how long a patient waits for the picture (docs/performance.md "Join"). The real
// pages in headless Chromium through the relay: a GP console and a patient page; the GP admits
// the patient, and the time from the admit click to the first decoded remote video frame is
// measured on both sides (requestVideoFrameCallback on the tiles); then the GP sends the patient
// back and the next join begins. The patient's media connections are built anew at every
// admission (ICE, DTLS, SRTP, first key frame). With E2EE (the server's default) the keys come
// through the consult chat's MLS group as well (a Commit with the patient's device and a Welcome).
// Usage: SPREEKD=... SPREEKCTL=... node tests/bench/join_browser.mjs [JOINS=20] [e2ee: 0|1]
import { waitText } from '../browser/lib.mjs';
import { GP, admit, createAndJoin, newInvite, openConsole, patientToLobby, setup, tid } from '../browser/media_lib.mjs';

const joins = Number(process.argv[2] || 20);
const e2ee = process.argv[3] === '1';
const cleanups = [];
const t = { after: (fn) => cleanups.push(fn) };
const PATIENT = 'Sanne de Vries';

// Arms a page: the wall-clock time of the first remote video frame shown after now.
function arm(page) {
  return page.evaluate(() => {
    window.__first = null;
    const seen = new WeakSet();
    clearInterval(window.__firstTimer);
    window.__firstTimer = setInterval(() => {
      for (const v of document.querySelectorAll('#tiles .tile-remote video')) {
        if (seen.has(v)) continue;
        seen.add(v);
        v.requestVideoFrameCallback(() => {
          if (window.__first === null) window.__first = Date.now();
        });
      }
      if (window.__first !== null) clearInterval(window.__firstTimer);
    }, 2);
  });
}

async function firstFrame(page, timeout = 30000) {
  const h = await page.waitForFunction(() => window.__first, null, { timeout, polling: 10 });
  return h.jsonValue();
}

const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};

try {
  const env = await setup(t, { e2ee });
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  const atPatient = [];
  const atGp = [];
  for (let i = 0; i < joins + 1; i++) {
    await arm(pat);
    await arm(gp);
    const t0 = Date.now();
    await admit(gp, pat, PATIENT, { timeout: 30000 });
    const [p, g] = await Promise.all([firstFrame(pat), firstFrame(gp)]);
    if (i > 0) {
      // the first join warms up the pages (module loading, the MLS library); not counted
      atPatient.push(p - t0);
      atGp.push(g - t0);
      console.log(JSON.stringify({ join: i, patient_ms: p - t0, gp_ms: g - t0 }));
    }
    await gp.locator('[data-testid="send-back"]').click();
    await waitText(tid(pat, 'join-status'), 'teruggezet', 30000);
    await pat.waitForFunction(() => !document.querySelector('#tiles .tile-remote'), null, { timeout: 30000 });
  }
  const fig = (a) => ({ p50: pct(a, 50), p95: pct(a, 95), max: Math.max(...a) });
  const out = { e2ee, joins, patient_ms: fig(atPatient), gp_ms: fig(atGp) };
  console.log(JSON.stringify(out));
  console.log(
    `join (admit → first decoded remote frame), ${joins} joins, E2EE ${e2ee ? 'on' : 'off'}: ` +
      `patient p50 ${out.patient_ms.p50} ms p95 ${out.patient_ms.p95} ms; GP p50 ${out.gp_ms.p50} ms p95 ${out.gp_ms.p95} ms`,
  );
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
