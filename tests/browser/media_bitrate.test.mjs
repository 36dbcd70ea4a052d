// Browser test: on an unshaped link (loopback), a browser publisher's video reaches a subscriber
// through the relay at 1 Mbit/s or more within 5 s of the subscriber decoding its first frame
// (issue 8). The rate is the subscriber's received video bytes (inbound-rtp bytesReceived,
// RTP payload) over sliding 1 s windows, sampled every 100 ms in the page; the publisher's
// estimate and encoder target are recorded for the timeline. Then the browser's ICE checks on
// the selected pairs (its consent checks, which the relay answers itself on the socket it reads
// without libnice) must keep getting answers; a second test does the same with the relay in
// ICE-lite mode (controlled on every connection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GP,
  admit,
  createAndJoin,
  newInvite,
  noiseCamera,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';
const TARGET_BPS = 1000000;
const WITHIN_MS = 5000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// In the page: every 100 ms, the bytes of video received (all inbound video of all connections)
// and sent (outbound video, with the sender's bandwidth estimate), as [ms, rx bytes, tx bytes,
// available outgoing bitrate, encoder target] in window.__rate; the time of the first decoded
// remote frame in window.__firstFrame.
function watchRate(page) {
  return page.evaluate(() => {
    window.__rate = [];
    window.__firstFrame = null;
    const poll = async () => {
      let rx = 0;
      let tx = 0;
      let avail = 0;
      let target = 0;
      for (const pc of window.__pcs || []) {
        if (pc.signalingState === 'closed') continue;
        let report;
        try {
          report = await pc.getStats();
        } catch {
          continue;
        }
        for (const s of report.values()) {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            rx += s.bytesReceived || 0;
            if (s.framesDecoded > 0 && window.__firstFrame === null) window.__firstFrame = Date.now();
          } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
            tx += s.bytesSent || 0;
            target += s.targetBitrate || 0;
          } else if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
            avail = Math.max(avail, s.availableOutgoingBitrate);
          }
        }
      }
      window.__rate.push([Date.now(), rx, tx, avail, target]);
    };
    window.__ratePoll = setInterval(poll, 100);
  });
}

// The ICE checks the page's connected connections sent and had answered on their selected pairs.
function checks(page) {
  return page.evaluate(async () => {
    const sum = { pcs: 0, requests: 0, responses: 0 };
    for (const pc of window.__pcs || []) {
      if (pc.connectionState !== 'connected') continue;
      const report = await pc.getStats();
      for (const s of report.values()) {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
        const pair = report.get(s.selectedCandidatePairId);
        sum.pcs++;
        sum.requests += pair.requestsSent || 0;
        sum.responses += pair.responsesReceived || 0;
      }
    }
    return sum;
  });
}

// Over 6 s (a browser checks a stable pair about every 2.5 s) every check of the GP's page is
// answered but the ones in flight, and the relay answered checks itself on the sockets it reads.
async function checksAnswered(t, env, gp) {
  const c0 = await checks(gp);
  await sleep(6000);
  const c1 = await checks(gp);
  const m = await env.srv.server.metrics();
  const sent = c1.requests - c0.requests;
  const answered = c1.responses - c0.responses;
  t.diagnostic(
    `GP's ${c1.pcs} connections: ${sent} checks sent, ${answered} answered in 6 s; relay: ` +
      `${m.spk_relay_rx_direct_total} datagrams read directly, ${m.spk_relay_stun_answered_total} ` +
      `checks answered there, ${m.spk_relay_rx_yielded_total} left to libnice`,
  );
  assert.ok(c1.pcs >= 2 && c0.pcs === c1.pcs, `the GP's connections stayed connected (${c1.pcs})`);
  assert.ok(sent >= c1.pcs, `the GP checked its pairs (${sent} checks)`);
  assert.ok(answered >= sent - c1.pcs, `${answered} of ${sent} checks answered`);
  assert.ok(m.spk_relay_rx_direct_total > 1000, 'the relay read the selected sockets itself');
  assert.ok(m.spk_relay_stun_answered_total > 0, 'the relay answered checks itself');
}

// Bits per second over the window of `ms` that ends at sample i.
function rateAt(samples, i, col, ms = 1000) {
  const [t1] = samples[i];
  let j = i;
  while (j > 0 && t1 - samples[j - 1][0] <= ms) j--;
  const dt = t1 - samples[j][0];
  return dt >= ms * 0.8 ? ((samples[i][col] - samples[j][col]) * 8 * 1000) / dt : 0;
}

test('a browser publisher reaches 1 Mbit/s of video to a subscriber within 5 s', {
  timeout: 120000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-camera-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = await setup(t, {
    browserArgs: [`--use-file-for-fake-video-capture=${noiseCamera(dir)}`],
  });
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await watchRate(gp);
  await watchRate(pat);
  const admitted = Date.now();
  await admit(gp, pat, PATIENT);
  await waitReceiving(gp, [PATIENT], { frames: 1, audio: 1 });
  await sleep(WITHIN_MS + 1000);

  // The GP subscribes to the patient's video (the GP's own camera is the same file, so the
  // patient's subscription shows the same; one direction is asserted).
  const rx = await gp.evaluate(() => ({ samples: window.__rate, first: window.__firstFrame }));
  const tx = await pat.evaluate(() => window.__rate);
  assert.ok(rx.first, 'the GP decoded a frame');
  const t0 = rx.first;
  let best = 0;
  let bestAt = null;
  for (let i = 0; i < rx.samples.length; i++) {
    const at = rx.samples[i][0] - t0;
    if (at < 0 || at > WITHIN_MS) continue;
    const bps = rateAt(rx.samples, i, 1);
    if (bps > best) [best, bestAt] = [bps, at];
  }
  const kbps = (bps) => `${Math.round(bps / 1000)} kbit/s`;
  for (let i = 0; i < rx.samples.length; i += 5) {
    const at = rx.samples[i][0] - t0;
    if (at < -1000) continue;
    const j = tx.findIndex(([ts]) => ts >= rx.samples[i][0]);
    const pub = j < 0 ? '' : `; publisher sends ${kbps(rateAt(tx, j, 2))}, estimate ${kbps(tx[j][3])}, encoder target ${kbps(tx[j][4])}`;
    t.diagnostic(`${at} ms: GP receives ${kbps(rateAt(rx.samples, i, 1))}${pub}`);
  }
  t.diagnostic(
    `admit to first frame ${t0 - admitted} ms; best 1 s of video within ${WITHIN_MS} ms of it: ` +
      `${kbps(best)} (ending at ${bestAt} ms)`,
  );
  assert.ok(
    best >= TARGET_BPS,
    `the GP received at most ${kbps(best)} of video in any 1 s within ${WITHIN_MS} ms of its first frame`,
  );

  await checksAnswered(t, env, gp);
  noProblems(env);
});

test('with an ICE-lite relay the browser\'s checks are answered as well', {
  timeout: 120000,
}, async (t) => {
  const env = await setup(t, { args: ['--relay-ice-lite', '1'] });
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT);
  await admit(gp, pat, PATIENT);
  await waitReceiving(gp, [PATIENT], { frames: 1, audio: 1 });
  await waitReceiving(pat, [GP.name], { frames: 1, audio: 1 });
  await checksAnswered(t, env, gp);
  noProblems(env);
});
