// Headless Chromium through coturn: a GP page over TURN/TLS (what a browser behind a firewall
// that allows only 443 uses) and a patient page over TURN/UDP, both with
// iceTransportPolicy 'relay', exchange camera and microphone through spreekd's relay.
//
// Chromium verifies the TURN server's TLS certificate (a self-signed one fails with
// icecandidateerror 701); the throw-away test certificate is accepted with
// --ignore-certificate-errors. Exits 77 (skipped) without turnserver or Chromium.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { haveTurnserver, startCoturn, stopCoturn, turnCredentials } from './coturn.mjs';

const CHROMIUM = process.env.SPK_CHROMIUM ?? '/usr/bin/chromium';
if (!haveTurnserver() || !existsSync(CHROMIUM)) {
  console.log('SKIP: needs turnserver (Debian package coturn) and Chromium');
  process.exit(77);
}

const { default: assert } = await import('node:assert/strict');
const { after, before, test } = await import('node:test');
const { chromium } = await import('playwright-core');
const { boot } = await import('../signaling/fixture.mjs');
const { CHROMIUM_ARGS } = await import('../../browser/lib.mjs');
const { waitFor } = await import('./peer.mjs');

const SECRET = randomBytes(24).toString('base64');
let dir;
let turn;
let env;
let browser;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'spk-turn-'));
  turn = await startCoturn(dir, SECRET);
  env = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0']);
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
});

after(async () => {
  await browser?.close();
  await env?.close();
  await stopCoturn(turn);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// In the page: sign in (token or invite), join, publish camera + microphone and subscribe, with
// relay-only ICE through `iceServers`. Relay candidates are queued until the remote description
// is set.
function joinCall({ wsUrl, consult, token, invite, iceServers }) {
  return (async () => {
    const ws = new WebSocket(wsUrl, 'spreekkamer.v1');
    await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
    let id = 1;
    const pending = new Map();
    const handlers = {};
    window.__errors = [];
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if ((m.type === 'ok' || m.type === 'error') && pending.has(m.re)) {
        pending.get(m.re)(m);
        pending.delete(m.re);
        return;
      }
      handlers[m.type]?.(m);
    };
    const req = (type, f) => new Promise((res) => {
      const i = id++;
      pending.set(i, res);
      ws.send(JSON.stringify({ id: i, type, ...f }));
    });
    const must = async (type, f) => {
      const r = await req(type, f);
      if (r.type !== 'ok') throw new Error(`${type}: ${r.code} ${r.message}`);
      return r;
    };
    if (token) await must('auth', { token });
    else await must('invite.redeem', { invite, name: 'Sanne' });
    const me = (await must('consult.join', { consult })).participant;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const cfg = { iceServers, iceTransportPolicy: 'relay' };
    const pcs = { publish: new RTCPeerConnection(cfg), subscribe: new RTCPeerConnection(cfg) };
    window.__pcs = pcs;
    const queued = { publish: [], subscribe: [] };
    const add = (pc, c) => pc.addIceCandidate(c ? { candidate: c, sdpMid: '0' } : null)
      .catch((e) => window.__errors.push(`addIceCandidate: ${e}`));
    for (const [name, pc] of Object.entries(pcs)) {
      pc.onicecandidate = (e) => req('media.candidate', { consult, pc: name, candidate: e.candidate ? e.candidate.candidate : '' });
      pc.onicecandidateerror = (e) => window.__errors.push(`${name} ${e.errorCode} ${e.errorText} ${e.url}`);
    }
    handlers['media.candidate'] = (m) => {
      const pc = pcs[m.pc];
      if (!pc.remoteDescription) queued[m.pc].push(m.candidate);
      else add(pc, m.candidate);
    };
    handlers['media.offer'] = async (m) => {
      const sub = pcs.subscribe;
      await sub.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      for (const c of queued.subscribe.splice(0)) await add(sub, c);
      await sub.setLocalDescription(await sub.createAnswer());
      const r = await req('media.answer', { consult, sdp: sub.localDescription.sdp, version: m.version });
      if (r.type !== 'ok') window.__errors.push(`media.answer: ${r.code}`);
    };
    // Media is set up once admitted (a patient in the lobby gets bad_state).
    const start = async () => {
      for (const t of stream.getTracks()) pcs.publish.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
      await pcs.publish.setLocalDescription(await pcs.publish.createOffer());
      const ans = await must('media.publish', { consult, sdp: pcs.publish.localDescription.sdp });
      await pcs.publish.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
      for (const c of queued.publish.splice(0)) await add(pcs.publish, c);
      await must('media.subscribe', { consult });
    };
    if (me.state === 'admitted') await start();
    else handlers.admitted = () => start().catch((e) => window.__errors.push(`start: ${e.message}`));
    return me;
  })();
}

// Per connection: state, the selected pair's local candidate, and what arrived.
function callStats() {
  return (async () => {
    const out = { errors: window.__errors };
    for (const [name, pc] of Object.entries(window.__pcs)) {
      const s = { state: pc.connectionState, video: 0, audio: 0 };
      const report = await pc.getStats();
      report.forEach((r) => {
        if (r.type === 'inbound-rtp') s[r.kind] = r.kind === 'video' ? r.framesDecoded ?? 0 : r.packetsReceived;
        if (r.type === 'transport' && r.selectedCandidatePairId) {
          const pair = report.get(r.selectedCandidatePairId);
          const local = pair && report.get(pair.localCandidateId);
          if (local) s.local = `${local.candidateType}/${local.relayProtocol ?? ''}`;
        }
      });
      out[name] = s;
    }
    return out;
  })();
}

test('Chromium pages relay-only through coturn (TLS and UDP) see and hear each other', async () => {
  const gp = await env.as(env.users.gp);
  const { consult } = await gp.ok('consult.create', { patient: 'pseudo-4711', title: 'Beeldbellen' });
  const { invite } = await gp.ok('invite.create', { consult: consult.id });
  const open = async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${env.srv.url}/`);
    return page;
  };
  const gpPage = await open();
  const ptPage = await open();
  // The page is a second GP of the practice; the Node connection above admits the patient.
  const colleague = { ...env.users.gp, sub: 'gp-2', name: 'Dr. Bakker' };
  const tlsServer = [{ urls: [`turns:127.0.0.1:${turn.tlsPort}?transport=tcp`], ...turnCredentials(SECRET, 'gp-2') }];
  await gpPage.evaluate(joinCall, {
    wsUrl: env.srv.wsUrl, consult: consult.id, token: env.token(colleague), iceServers: tlsServer,
  });
  const pt = await ptPage.evaluate(joinCall, {
    wsUrl: env.srv.wsUrl, consult: consult.id, invite: invite.code, iceServers: [
      { urls: [`turn:127.0.0.1:${turn.port}?transport=udp`], ...turnCredentials(SECRET, 'patient') }],
  });
  await gp.ok('lobby.admit', { consult: consult.id, participant: pt.id });

  let a;
  let b;
  const flowing = (s) => s.publish.state === 'connected' && s.subscribe.state === 'connected' &&
    s.subscribe.video >= 10 && s.subscribe.audio >= 50;
  const ok = await waitFor(async () => {
    a = await gpPage.evaluate(callStats);
    b = await ptPage.evaluate(callStats);
    return flowing(a) && flowing(b);
  }, 30000, 500);
  assert.ok(ok, `media both ways: gp ${JSON.stringify(a)} patient ${JSON.stringify(b)}`);
  assert.equal(a.publish.local, 'relay/tls', 'GP publishes through TURN/TLS');
  assert.equal(a.subscribe.local, 'relay/tls', 'GP subscribes through TURN/TLS');
  assert.equal(b.publish.local, 'relay/udp', 'patient publishes through TURN/UDP');
  assert.equal(b.subscribe.local, 'relay/udp', 'patient subscribes through TURN/UDP');
});
