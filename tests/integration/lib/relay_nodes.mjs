// Relay nodes for tests: starts real spreek-relay processes on loopback (docs/operations.md
// "Relay nodes"). The binary is $SPREEK_RELAY (CTest sets it), else build/server/spreek-relay.
//
//   const port = await freePort();
//   const r = await startRelay(port, 'relay-a', SECRET);  // resolves once it listens
//   // r.proc, r.port, r.nodeId, r.fingerprint (its DTLS certificate's), r.log (stderr), r.exited
import { spawn } from 'node:child_process';
import net from 'node:net';

export const RELAY_BIN = process.env.SPREEK_RELAY ?? 'build/server/spreek-relay';

// A TCP port that was free a moment ago on 127.0.0.1.
export const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

export function startRelay(port, nodeId, secret) {
  const proc = spawn(process.env.SPREEK_RELAY ?? RELAY_BIN, ['--addresses', '127.0.0.1', '--listen', `127.0.0.1:${port}`,
    '--node-id', nodeId, '--workers', '1'], {
    env: { ...process.env, SPREEK_RELAY_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = { proc, port, nodeId, log: '', fingerprint: null, exited: null };
  proc.stderr.on('data', (d) => {
    r.log += d;
    if (process.env.SPK_TEST_ECHO) process.stderr.write(`[${nodeId}] ${d}`);
    const m = r.log.match(/fingerprint ([0-9A-F:]{95})/);
    if (m) r.fingerprint = m[1];
  });
  proc.on('exit', (code, signal) => { r.exited = { code, signal }; });
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${nodeId} did not start: ${r.log}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/listening on/.test(out)) {
        clearTimeout(t);
        resolve(r);
      }
    });
  });
}
