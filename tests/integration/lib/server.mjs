// Runs the real spreekd for integration tests: loopback only, an ephemeral port, a fresh data
// directory, stderr captured as parsed JSON log lines.
//
//   import { startServer } from '../lib/server.mjs';
//   const srv = await startServer({ args: ['--max-connections', '2'] });
//   // srv.url      http(s)://127.0.0.1:<port>      (HTTP base, no trailing slash)
//   // srv.wsUrl    ws(s)://127.0.0.1:<port>/ws
//   // srv.port, srv.dataDir, srv.proc, srv.stdout (text), srv.stderr (text), srv.logs (objects)
//   await srv.waitLog(/drain/);                    // a log line whose msg matches
//   const { code } = await srv.stop();             // SIGTERM; throws unless the exit code is 0
//
// The binary is $SPREEKD (CTest sets it to $<TARGET_FILE:spreekd>), else build/server/spreekd.
// Unless args contain --listen, the server listens on 127.0.0.1:0 and the port is read from its
// `listening` log line, so tests never race for a port.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DEFAULT_BIN = 'build/server/spreekd';

/**
 * Starts spreekd and resolves once it logs `listening`.
 * @param {object} [o]
 * @param {string[]} [o.args]       extra command-line flags (`--key value`)
 * @param {string} [o.dataDir]      data directory to use (default: a fresh temp dir)
 * @param {boolean} [o.keepDataDir] keep the data directory after stop() (default false, or
 *                                  true when dataDir was given)
 * @param {object} [o.env]          extra environment variables
 * @param {string} [o.bin]          spreekd path (default $SPREEKD)
 * @param {number} [o.timeoutMs]    how long to wait for `listening` (default 15000)
 * @param {boolean} [o.echo]        copy the server's stderr to this process's stderr
 */
export async function startServer(o = {}) {
  const bin = o.bin ?? process.env.SPREEKD ?? DEFAULT_BIN;
  const ownDir = !o.dataDir;
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'spk-test-'));
  const keepDataDir = o.keepDataDir ?? !ownDir;
  const args = [...(o.args ?? [])];
  if (!args.some((a) => a === '--listen' || a.startsWith('--listen='))) {
    args.push('--listen', '127.0.0.1:0');
  }
  if (!args.some((a) => a === '--data' || a.startsWith('--data='))) {
    args.push('--data', dataDir);
  }
  const proc = spawn(bin, args, {
    env: { ...process.env, ...(o.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const srv = new Server(proc, dataDir, keepDataDir, o.echo ?? !!process.env.SPK_TEST_ECHO);
  try {
    const line = await srv.waitLog(/^listening /, o.timeoutMs ?? 15000);
    srv._setAddress(line.msg);
  } catch (e) {
    srv.kill();
    srv._cleanup();
    throw new Error(`spreekd did not start: ${e.message}\n--- stderr ---\n${srv.stderr}`);
  }
  return srv;
}

/** Prometheus text format into {'name{labels}': number}. */
export function parseMetrics(body) {
  const out = {};
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

class Server {
  constructor(proc, dataDir, keepDataDir, echo) {
    this.proc = proc;
    this.dataDir = dataDir;
    this.keepDataDir = keepDataDir;
    this.stdout = '';
    this.stderr = '';
    this.logs = [];
    this.exit = null; // {code, signal} once exited
    this._waiters = [];
    this._partial = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (s) => { this.stdout += s; });
    proc.stderr.on('data', (s) => {
      if (echo) process.stderr.write(s);
      this.stderr += s;
      this._partial += s;
      let nl;
      while ((nl = this._partial.indexOf('\n')) >= 0) {
        const text = this._partial.slice(0, nl);
        this._partial = this._partial.slice(nl + 1);
        this._onLine(text);
      }
    });
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this._waiters.splice(0)) {
          w.reject(new Error(`spreekd exited (code ${code}, signal ${signal}) while waiting for ${w.re}`));
        }
        resolve(this.exit);
      });
    });
  }

  _onLine(text) {
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      line = { level: 'raw', conn: 0, msg: text };
    }
    this.logs.push(line);
    for (const w of [...this._waiters]) {
      if (w.re.test(line.msg ?? '')) {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }

  _setAddress(msg) {
    const ws = /ws=(wss?):\/\/(\S+):(\d+)\/ws/.exec(msg);
    if (!ws) throw new Error(`cannot parse listening line: ${msg}`);
    const host = ws[2];
    this.port = Number(ws[3]);
    this.tls = ws[1] === 'wss';
    this.host = host;
    this.url = `${this.tls ? 'https' : 'http'}://${host}:${this.port}`;
    this.wsUrl = `${ws[1]}://${host}:${this.port}/ws`;
    const pub = /^listening (\S+)/.exec(msg);
    this.publicUrl = pub ? pub[1] : this.url;
  }

  /** Log lines (parsed) whose msg matches `re`, so far. */
  grep(re) {
    return this.logs.filter((l) => re.test(l.msg ?? ''));
  }

  /** Resolves with the first log line (past or future) whose msg matches `re`. */
  waitLog(re, timeoutMs = 10000) {
    const seen = this.logs.find((l) => re.test(l.msg ?? ''));
    if (seen) return Promise.resolve(seen);
    if (this.exit) return Promise.reject(new Error(`spreekd has exited; no log matching ${re}`));
    return new Promise((resolve, reject) => {
      const w = { re };
      const timer = setTimeout(() => {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        reject(new Error(`no log line matching ${re} within ${timeoutMs} ms`));
      }, timeoutMs);
      w.resolve = (l) => { clearTimeout(timer); resolve(l); };
      w.reject = (e) => { clearTimeout(timer); reject(e); };
      this._waiters.push(w);
    });
  }

  /** GET `path` and resolve with {status, headers, body}; `init` goes to fetch(). */
  async get(path, init = {}) {
    const r = await fetch(this.url + path, init);
    return { status: r.status, headers: r.headers, body: await r.text() };
  }

  /** The /metrics text parsed into {'name{labels}': number}. */
  async metrics() {
    const { body } = await this.get('/metrics');
    return parseMetrics(body);
  }

  /**
   * Sends `signal` (default SIGTERM) and waits for the exit. Throws unless it exits with
   * `expectCode` (default 0) within timeoutMs; then removes the data directory unless kept.
   */
  async stop({ signal = 'SIGTERM', timeoutMs = 15000, expectCode = 0 } = {}) {
    if (!this.exit) this.proc.kill(signal);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`spreekd did not exit within ${timeoutMs} ms after ${signal}`)), timeoutMs);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } catch (e) {
      this.kill();
      throw new Error(`${e.message}\n--- stderr ---\n${this.stderr}`);
    } finally {
      clearTimeout(timer);
    }
    const { code, signal: sig } = this.exit;
    if (expectCode !== null && code !== expectCode) {
      throw new Error(`spreekd exited with code ${code} (signal ${sig}), expected ${expectCode}\n--- stderr ---\n${this.stderr}`);
    }
    this._cleanup();
    return this.exit;
  }

  /** SIGKILL, no checks (for cleanup after a failure). */
  kill() {
    if (!this.exit) this.proc.kill('SIGKILL');
  }

  _cleanup() {
    if (!this.keepDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
