// Helpers shared by the transport tests: raw WebSocket connections and plain TCP exchanges.
import net from 'node:net';
import WebSocket from 'ws';

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
// (or timeoutMs passes): {data, closedByServer, ms}.
export function rawExchange(port, bytes, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1');
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
