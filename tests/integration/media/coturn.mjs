// coturn on loopback for tests: a temporary configuration like deploy/coturn/turnserver.conf
// (shared-secret credentials, relaying only to 127.0.0.1) on ephemeral ports, with a throw-away
// certificate for TURN over TLS.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

import { waitFor } from './peer.mjs';

export const haveTurnserver = () =>
  spawnSync('sh', ['-c', 'command -v turnserver'], { encoding: 'utf8' }).status === 0;

// coturn's REST credential scheme, computed independently of spreekd.
export function turnCredentials(secret, user, ttl = 3600, now = Math.floor(Date.now() / 1000)) {
  const username = `${now + ttl}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

// A free loopback TCP port (coturn binds UDP and TCP on its listening port).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export async function startCoturn(dir, secret) {
  const port = await freePort();
  let tlsPort = await freePort();
  while (tlsPort === port || tlsPort === port + 1) tlsPort = await freePort();
  const minPort = 50000 + Math.floor(Math.random() * 150) * 100;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const conf = [
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `listening-port=${port}`,
    `tls-listening-port=${tlsPort}`,
    `min-port=${minPort}`,
    `max-port=${minPort + 99}`,
    `cert=${join(dir, 'cert.pem')}`,
    `pkey=${join(dir, 'key.pem')}`,
    'no-tlsv1',
    'no-tlsv1_1',
    'no-dtls',
    'no-rfc5780',
    'no-stun-backward-compatibility',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=spreekkamer.test',
    'fingerprint',
    // relay only to spreekd's relay address
    'denied-peer-ip=0.0.0.0-255.255.255.255',
    'denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'allowed-peer-ip=127.0.0.1',
    'allow-loopback-peers', // the relay is on loopback here; never in production
    'no-multicast-peers',
    'no-tcp-relay',
    'user-quota=8',
    'total-quota=100',
    'no-cli',
    'no-software-attribute',
    'secure-stun',
    `log-file=${join(dir, 'turn.log')}`,
    'simple-log',
    'verbose',
    `pidfile=${join(dir, 'turnserver.pid')}`,
    `userdb=${join(dir, 'turndb')}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'turnserver.conf'), conf);
  const proc = spawn('turnserver', ['-c', join(dir, 'turnserver.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const up = await waitFor(async () => proc.exitCode === null && await canConnect(port) && await canConnect(tlsPort), 10000);
  if (!up) {
    proc.kill('SIGKILL');
    throw new Error(`turnserver did not start\n${log}`);
  }
  const readLog = () => { try { return readFileSync(join(dir, 'turn.log'), 'utf8'); } catch { return log; } };
  return { proc, port, tlsPort, ca: readFileSync(join(dir, 'cert.pem')), log: readLog };
}

export async function stopCoturn(turn) {
  if (!turn) return;
  turn.proc.kill('SIGTERM');
  await waitFor(() => turn.proc.exitCode !== null || turn.proc.signalCode !== null, 5000);
  turn.proc.kill('SIGKILL');
  if (process.env.SPK_TURN_LOG) console.log(turn.log());
}
