// A protocol client for tests: requests with ids, answers matched by `re`, events buffered so a
// test can wait for the next event of a type. Speaks docs/protocol.md and nothing else.
import WebSocket from 'ws';

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.events = [];
    this.waiters = [];
    this.closed = null;
    ws.on('message', (data, isBinary) => this._onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w.reject(new Error(`closed ${code} while waiting for ${w.type}`));
      for (const [, p] of this.pending) p.reject(new Error(`closed ${code} before answer`));
      this.pending.clear();
    });
  }

  static connect(wsUrl, { protocol = 'spreekkamer.v1', ...opts } = {}) {
    return new Promise((resolve, reject) => {
      const ws = protocol === null ? new WebSocket(wsUrl, opts) : new WebSocket(wsUrl, protocol, opts);
      const c = new Client(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  _onMessage(data, isBinary) {
    const msg = JSON.parse(data.toString());
    if ((msg.type === 'ok' || msg.type === 'error') && msg.re !== null && this.pending.has(msg.re)) {
      const p = this.pending.get(msg.re);
      this.pending.delete(msg.re);
      p.resolve(msg);
      return;
    }
    const i = this.waiters.findIndex((w) => w.type === msg.type);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
      return;
    }
    this.events.push(msg);
  }

  // Sends a request and resolves with its answer (ok or error).
  req(type, fields = {}, timeoutMs = 5000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.ws.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  // Sends a request and returns the answer, failing unless it is `ok`.
  async ok(type, fields = {}) {
    const m = await this.req(type, fields);
    if (m.type !== 'ok') throw new Error(`${type} failed: ${m.code} ${m.message}`);
    return m;
  }

  // Sends a request and returns the error code (or 'ok').
  async code(type, fields = {}) {
    const m = await this.req(type, fields);
    return m.type === 'ok' ? 'ok' : m.code;
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  // Next event of `type` (buffered or future).
  next(type, timeoutMs = 5000) {
    const i = this.events.findIndex((e) => e.type === type);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { type, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Waits for the next event of `type` that satisfies pred.
  async until(type, pred, timeoutMs = 5000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching ${type} within ${timeoutMs} ms`);
      const e = await this.next(type, left);
      if (pred(e)) return e;
    }
  }

  // Drops buffered events (optionally only one type).
  drain(type) { this.events = type ? this.events.filter((e) => e.type !== type) : []; }

  // Resolves with {code, reason} when the server closes the connection.
  closedPromise(timeoutMs = 10000) {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not closed in time')), timeoutMs);
      this.ws.once('close', (code, reason) => { clearTimeout(t); resolve({ code, reason: reason.toString() }); });
    });
  }

  close() { if (!this.closed) this.ws.close(); }
}
