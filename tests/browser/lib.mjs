// Helpers for the browser tests: a real spreekd on loopback with a temporary data directory,
// tokens from spreekctl, and headless Chromium driven by playwright-core.
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startServer as startSpreekd } from '../integration/lib/server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
const run = promisify(execFile);

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection',
];

// Starts spreekd (tests/integration/lib/server.mjs) on 127.0.0.1 with an ephemeral port, a
// temporary data directory and this repository's web client. Returns { url, port, dataDir,
// halt, restart, stop }: restart() stops the server (SIGTERM, so clients get "server.shutdown")
// and starts it again on the same port and data directory.
export async function startServer({ args = [] } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'spk-browser-'));
  const common = ['--web-root', join(repoRoot, 'web'), '--log-level', 'info', ...args];
  let srv;
  try {
    srv = await startSpreekd({ args: common, dataDir, keepDataDir: true });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const handle = {
    url: srv.url,
    port: srv.port,
    dataDir,
    get server() {
      return srv;
    },
    async halt() {
      if (!srv.exit) await srv.stop();
    },
    async restart() {
      await handle.halt();
      // The port was just released; binding it again can fail for a moment.
      for (let attempt = 1; ; attempt++) {
        try {
          srv = await startSpreekd({
            args: ['--listen', `127.0.0.1:${handle.port}`, ...common],
            dataDir,
            keepDataDir: true,
          });
          return handle;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    async stop() {
      try {
        await handle.halt();
      } finally {
        srv.kill();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  return handle;
}

// Mints a professional token with spreekctl (the embedded issuer of the server's data dir).
// Without SPREEKCTL (a manual run) it signs with the issuer key directly, as the integration
// tests do.
export async function mintToken(dataDir, { role, sub, name, practice, actsFor }) {
  const bin = process.env.SPREEKCTL;
  if (!bin) {
    const { loadIssuer, mint } = await import('../integration/lib/tokens.mjs');
    return mint(loadIssuer(dataDir), { role, sub, name, practice, acts_for: actsFor });
  }
  const args = ['--data', dataDir, 'token', 'mint', '--role', role, '--sub', sub, '--name', name];
  if (practice) args.push('--practice', practice);
  if (actsFor) args.push('--acts-for', actsFor);
  const { stdout } = await run(bin, args, { timeout: 15000 });
  const token = stdout
    .split(/\s+/)
    .reverse()
    .find((w) => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(w));
  if (!token) throw new Error(`spreekctl printed no token: ${stdout}`);
  return token;
}

// `args`: more Chromium switches (e.g. a fake camera's picture from a file).
export async function launchBrowser({ args = [] } = {}) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
  });
}

// Where screenshots go: the build tree (never the repository).
export function artifactDir() {
  const dir = process.env.SPK_BROWSER_ARTIFACTS || join(tmpdir(), 'spreekkamer-browser-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

// Chromium's own console lines for a refused or dropped WebSocket, and for a message sent on one
// that the network has just closed; expected while a test has the server down on purpose.
export const NETWORK_NOISE =
  /^WebSocket (connection to '.*' failed|is already in CLOSING or CLOSED state)/;

// Records console errors and uncaught exceptions of a page.
export function watchPage(page, label) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`${label}: pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${label}: console: ${msg.text()}`);
  });
  return problems;
}

// Drops network noise recorded since `from` (an index into problems).
export function forgiveNetworkNoise(problems, from) {
  const noise = (p) => NETWORK_NOISE.test(p.replace(/^.*?: console: /, ''));
  const kept = problems.slice(from).filter((p) => !noise(p));
  problems.splice(from, problems.length - from, ...kept);
}

// Waits until the element's visible text matches (string: contains; RegExp: test).
export async function waitText(locator, expected, timeout = 10000) {
  await locator.waitFor({ state: 'visible', timeout });
  const end = Date.now() + timeout;
  let last = '';
  for (;;) {
    last = (await locator.innerText().catch(() => '')) || '';
    const ok = expected instanceof RegExp ? expected.test(last) : last.includes(expected);
    if (ok) return last;
    if (Date.now() > end) {
      throw new Error(`expected text ${expected} in ${locator}, got: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
