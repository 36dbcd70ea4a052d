// Helpers shared by the transport tests: raw WebSocket connections and plain TCP exchanges.
import { execFileSync, execSync } from 'node:child_process';
import { join } from 'node:path';
import net from 'node:net';
import WebSocket from 'ws';
import { parseMetrics } from '../lib/server.mjs';

export const PROTO = 'spreekkamer.v1';

// Opens a WebSocket and collects every message (parsed JSON) in ws.msgs.
// Resolves once open and, unless hello is false, once the core's hello arrived.
export function open(url, { protocol = PROTO, hello = true, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const ws = protocol === null ? new WebSocket(url, opts) : new WebSocket(url, protocol, opts);
    ws.msgs = [];
    ws.waiters = [];
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      ws.msgs.push(m);
      for (const w of [...ws.waiters]) {
        if (w.pred(m)) {
          ws.waiters.splice(ws.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    ws.once('error', reject);
    ws.once('open', async () => {
      if (hello) await waitMsg(ws, (m) => m.type === 'hello');
      resolve(ws);
    });
  });
}

// Resolves with the first message (already received or future) that satisfies pred.
export function waitMsg(ws, pred, timeoutMs = 5000) {
  const seen = ws.msgs.find(pred);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const w = { pred };
    const t = setTimeout(() => {
      ws.waiters.splice(ws.waiters.indexOf(w), 1);
      reject(new Error(`no matching message within ${timeoutMs} ms; last: ${JSON.stringify(ws.msgs.slice(-3)).slice(0, 600)}`));
    }, timeoutMs);
    w.resolve = (m) => { clearTimeout(t); resolve(m); };
    ws.waiters.push(w);
  });
}

// Sends {"id":id,"type":"ping"} and resolves with its answer.
export async function ping(ws, id) {
  ws.send(JSON.stringify({ id, type: 'ping' }));
  return waitMsg(ws, (m) => m.re === id);
}

// Resolves with the error (Error) that a refused WebSocket handshake ends in.
export function refused(url, protocol, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = protocol === null ? new WebSocket(url, opts) : new WebSocket(url, protocol, opts);
    ws.once('open', () => { ws.terminate(); reject(new Error('upgrade was accepted')); });
    ws.once('error', (e) => resolve(e));
  });
}

// Sends raw bytes over TCP and resolves with everything received until the server closes
// (or timeoutMs passes): {data, closedByServer, ms}. localAddress picks the source address
// (any of 127.0.0.0/8 is local).
export function rawExchange(port, bytes, timeoutMs = 5000, { localAddress } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    let done = false;
    const finish = (closedByServer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data, closedByServer, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => { if (bytes) s.write(bytes); });
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Opens a TCP connection from localAddress and sends `bytes` (an unfinished request, or null
// for a silent connection). Resolves once connected with the socket; s.data collects what the
// server sends, s.whenClosed resolves with {ms} (since connect) when the server closes it.
export function halfOpen(port, bytes, { localAddress = '127.0.0.1' } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.data = '';
    let t0 = Date.now();
    s.isClosed = false;
    s.whenClosed = new Promise((res) => s.on('close', () => { s.isClosed = true; res({ ms: Date.now() - t0 }); }));
    s.on('data', (d) => { s.data += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('connect', () => { t0 = Date.now(); if (bytes) s.write(bytes); resolve(s); });
    s.on('close', () => resolve(s));
  });
}

// The file-descriptor limit of this process's shell (what spreekd started from here gets).
export function fdLimit() {
  try {
    return Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim()) || 1024;
  } catch {
    return 1024;
  }
}

// GET /metrics on a connection of its own (closed after the answer, so that it leaves no
// keep-alive connection behind), parsed into {'name{labels}': number}.
export async function metricsOnce(port, { localAddress } = {}) {
  const r = await rawExchange(port, 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 5000, { localAddress });
  return parseMetrics(r.data.slice(r.data.indexOf('\r\n\r\n') + 4));
}

// A self-signed ECDSA certificate for 127.0.0.1 in dir: {cert, key} (PEM file paths).
export function makeCert(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}
