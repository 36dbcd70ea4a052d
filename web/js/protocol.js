// Client for the spreekkamer.v1 signaling protocol (docs/protocol.md).
// One WebSocket, requests answered by id, events dispatched by type, automatic reconnect.

export const SUBPROTOCOL = 'spreekkamer.v1';

export class ProtocolError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export function defaultUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
// A connection that never opened (network down, server not listening) cost the server nothing,
// so it is tried again at least this often: the session comes back soon after the network does.
const CONNECT_RETRY_MAX_MS = 3000;
const REQUEST_TIMEOUT_MS = 20000;

// States: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'
export class Client {
  constructor({ url = defaultUrl(), onOpen = null } = {}) {
    this.url = url;
    this.onOpen = onOpen; // async (client) => void, runs after every (re)connect
    this.state = 'idle';
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.handlers = new Map();
    this.attempt = 0;
    this.retryTimer = null;
    this.retryAfterMs = 0;
    this.stopped = false;
    this.hello = null;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, payload) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(payload);
      } catch (err) {
        console.error(err);
      }
    }
    for (const fn of this.handlers.get('*') || []) {
      try {
        fn(payload);
      } catch (err) {
        console.error(err);
      }
    }
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit('connection', { type: 'connection', state, ...detail });
  }

  connect() {
    this.stopped = false;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.opened = false;
    ws.addEventListener('open', () => {
      if (ws === this.ws) this.opened = true;
      this.handleOpen(ws);
    });
    ws.addEventListener('message', (ev) => this.handleMessage(ws, ev));
    ws.addEventListener('close', (ev) => this.handleClose(ws, ev));
  }

  async handleOpen(ws) {
    if (ws !== this.ws) return;
    try {
      if (this.onOpen) await this.onOpen(this);
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.retryAfterMs = 0;
      this.setState('open');
    } catch (err) {
      if (ws !== this.ws) return;
      // The session could not be restored; the application decides what happens next.
      this.emit('session-error', { type: 'session-error', error: err });
    }
  }

  handleMessage(ws, ev) {
    if (ws !== this.ws || typeof ev.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    if (msg.type === 'ok' || msg.type === 'error') {
      const entry = this.pending.get(msg.re);
      if (!entry) return;
      this.pending.delete(msg.re);
      clearTimeout(entry.timer);
      if (msg.type === 'ok') entry.resolve(msg);
      else {
        const err = new ProtocolError(msg.code, msg.message);
        if (Number.isFinite(msg.retry_ms)) err.retryMs = msg.retry_ms; // the service is behind
        entry.reject(err);
      }
      return;
    }
    if (msg.type === 'hello') this.hello = msg;
    if (msg.type === 'server.shutdown') {
      this.retryAfterMs = Number(msg.retry_after_ms) || 0;
    }
    this.emit(msg.type, msg);
  }

  handleClose(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.failPending('connection_lost');
    if (this.stopped) {
      this.setState('closed', { code: ev.code });
      return;
    }
    this.scheduleReconnect(ev.code, !this.opened);
  }

  scheduleReconnect(code, neverOpened = true) {
    this.attempt += 1;
    let base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt - 1, 6));
    if (neverOpened) base = Math.min(base, CONNECT_RETRY_MAX_MS);
    let delay = Math.round(base / 2 + Math.random() * (base / 2));
    if (this.retryAfterMs > 0) delay = Math.max(delay, this.retryAfterMs);
    this.retryAfterMs = 0;
    // The timer is set before listeners hear of it, so that close() from a listener stops it.
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.setState('reconnecting', { attempt: this.attempt, delay, code });
  }

  failPending(code) {
    for (const [, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new ProtocolError(code));
    }
    this.pending.clear();
  }

  request(type, fields = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ProtocolError('connection_lost'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ProtocolError('timeout'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...fields, id, type }));
    });
  }

  // Resolves once the connection is open (after onOpen restored the session); rejects with
  // connection_failed when that takes longer than timeoutMs.
  waitOpen(timeoutMs = 20000) {
    if (this.state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ProtocolError('connection_failed'));
      }, timeoutMs);
      const off = this.on('connection', ({ state }) => {
        if (state === 'open') {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  // Drops the current connection and connects again right away (e.g. after the user fixed
  // something). Keeps handlers.
  reconnectNow() {
    if (this.stopped) return;
    this.attempt = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this.failPending('connection_lost');
    this.open();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.failPending('connection_lost');
    if (ws) ws.close(1000);
    this.setState('closed', { code: 1000 });
  }
}
