// TURN with coturn on loopback: two werift peers forced to relay-only ICE
// (iceTransportPolicy 'relay') reach spreekd's relay through coturn, one over TURN/UDP, the other
// over TURN/TLS (the 443 path of a strict firewall, here on an ephemeral port), with short-lived
// credentials in coturn's shared-secret scheme (username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username))), and exchange media. coturn relays only to the relay's
// address (denied-peer-ip everything, allowed-peer-ip 127.0.0.1), as deploy/coturn/ does.
//
// Run directly (node turn.test.mjs): exits 77 (skipped) when coturn's turnserver is missing.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { haveTurnserver, startCoturn, stopCoturn, turnCredentials } from './coturn.mjs';

if (!haveTurnserver()) {
  console.log('SKIP: turnserver (Debian package coturn) is not installed');
  process.exit(77);
}

const { default: assert } = await import('node:assert/strict');
const { after, before, test } = await import('node:test');
const { boot, consultWithPatient } = await import('../signaling/fixture.mjs');
const { Peer, waitFor } = await import('./peer.mjs');
const { TurnProtocol, UdpTransport } = await import('werift');

const GP_TAG = 0x7475; // "tu"
const PT_TAG = 0x746c; // "tl"
const SECRET = randomBytes(24).toString('base64');

let dir;
let turn;
let env;
let peers = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'spk-turn-'));
  turn = await startCoturn(dir, SECRET);
  env = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0']);
});

after(async () => {
  for (const p of peers) await p.close();
  await env?.close();
  await stopCoturn(turn);
  if (dir) rmSync(dir, { recursive: true, force: true });
  // werift 0.24.4's TURN client keeps a 500 s allocation-refresh timer (timers/promises) alive
  // after close(); leave once the results are in (node:test has set process.exitCode by then).
  setTimeout(() => process.exit(), 500).unref();
});

test('the answers of invite.redeem and consult.join carry TURN credentials, only when configured', async () => {
  const urls = `turn:127.0.0.1:${turn.port}?transport=udp`;
  const withTurn = await boot(['--relay-address', '127.0.0.1', '--media-e2ee', '0',
    '--turn-urls', urls, '--turn-secret', SECRET, '--turn-ttl', '600']);
  try {
    for (const e of [withTurn, env]) {
      const gp = await e.as(e.users.gp);
      const { consult } = await gp.ok('consult.create', { patient: 'pseudo-4711', title: 'Beeldbellen' });
      const { invite } = await gp.ok('invite.create', { consult: consult.id });
      const joined = await gp.ok('consult.join', { consult: consult.id });
      const patient = await e.connect();
      const red = await patient.ok('invite.redeem', { invite: invite.code, name: 'Sanne de Vries' });
      if (e === env) {
        assert.equal(red.ice_servers, undefined);
        assert.equal(joined.ice_servers, undefined);
        continue;
      }
      for (const [ice, sub] of [[red.ice_servers, red.participant.id], [joined.ice_servers, gp.user.sub]]) {
        assert.equal(ice.length, 1);
        assert.deepEqual(ice[0].urls, [urls]);
        const [expiry, user] = ice[0].username.split(':');
        assert.equal(user, sub);
        const left = Number(expiry) - Date.now() / 1000;
        assert.ok(left > 590 && left <= 601, `expiry ${left} s ahead`);
        assert.equal(ice[0].credential, turnCredentials(SECRET, sub, 0, Number(expiry)).credential);
      }
    }
  } finally {
    await withTurn.close();
  }
});

const relayOnly = (peer, name) => peer.localCands[name].length > 0 &&
  peer.localCands[name].every((c) => / typ relay( |$)/.test(c));

test('relay-only peers exchange media through coturn (TURN/UDP and TURN/TLS)', async () => {
  const gp = await env.as(env.users.gp);
  const { consult, patient, participant } = await consultWithPatient(env, gp);
  await patient.ok('consult.join', { consult: consult.id });
  await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });

  const gpCred = turnCredentials(SECRET, gp.user.sub);
  const ptCred = turnCredentials(SECRET, participant.id);
  const gpPeer = new Peer(gp, consult.id, GP_TAG, {
    iceTransportPolicy: 'relay',
    iceServers: [{ urls: `turn:127.0.0.1:${turn.port}?transport=udp`, ...gpCred }],
  });
  const ptPeer = new Peer(patient, consult.id, PT_TAG, {
    iceTransportPolicy: 'relay',
    iceServers: [{ urls: `turns:127.0.0.1:${turn.tlsPort}?transport=tcp`, ...ptCred }],
    turnTlsOptions: { ca: turn.ca },
  });
  peers = [gpPeer, ptPeer];
  await gpPeer.start();
  await ptPeer.start();
  gpPeer.startSending();
  ptPeer.startSending();

  const enough = (peer, tag) => {
    const c = peer.countFrom(tag);
    return c.video >= 30 && c.audio >= 50;
  };
  const ok = await waitFor(() => enough(gpPeer, PT_TAG) && enough(ptPeer, GP_TAG), 30000);
  assert.ok(ok, `media through TURN: gp ${JSON.stringify(gpPeer.summary())} patient ${JSON.stringify(ptPeer.summary())}\n--- coturn ---\n${turn.log().slice(-3000)}`);
  assert.deepEqual(ptPeer.countFrom(GP_TAG).ssrcs, { video: [gpPeer.ssrcs().video], audio: [gpPeer.ssrcs().audio] });
  assert.deepEqual(gpPeer.countFrom(PT_TAG).ssrcs, { video: [ptPeer.ssrcs().video], audio: [ptPeer.ssrcs().audio] });

  // Every candidate the peers gave the relay was a TURN relay candidate.
  for (const [who, p] of [['gp', gpPeer], ['patient', ptPeer]]) {
    for (const name of ['publish', 'subscribe']) {
      assert.ok(relayOnly(p, name), `${who} ${name} offered only relay candidates: ${JSON.stringify(p.localCands[name])}`);
    }
    const inline = p.offerSdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    assert.ok(inline.every((l) => / typ relay( |$)/.test(l)), `${who} publish offer: ${JSON.stringify(inline)}`);
  }
  // coturn allocated for both users, the patient's over TLS.
  const log = turn.log();
  assert.ok(log.includes(`user <${gpCred.username}>: incoming packet ALLOCATE processed, success`), 'GP allocated over UDP');
  assert.ok(log.includes(`user <${ptCred.username}>: incoming packet ALLOCATE processed, success`), 'patient allocated');
  assert.match(log, new RegExp(`username=<${ptCred.username}>.*method=TLSv1\\.[23]`), 'the patient\'s session is TLS');
});

// Allocates on coturn over UDP; resolves with the TURN client, or rejects (client closed).
async function allocate(username, password, ms = 5000) {
  const transport = await UdpTransport.init('udp4', { interfaceAddresses: { udp4: '127.0.0.1' } });
  const client = new TurnProtocol(['127.0.0.1', turn.port], username, password, 600, transport);
  try {
    await withTimeout(client.connectionMade(), ms);
    return client;
  } catch (e) {
    await client.close().catch(() => {});
    await transport.close?.().catch?.(() => {});
    throw e;
  }
}

const withTimeout = (p, ms) => {
  let t;
  return Promise.race([p, new Promise((_, reject) => { t = setTimeout(() => reject(new Error('timeout')), ms); })])
    .finally(() => clearTimeout(t));
};

test('coturn enforces the shared secret and relays only to the relay\'s address', async () => {
  // A credential made with another secret gets no allocation, nor does an expired one.
  const bad = turnCredentials('not-the-secret', 'gp-1');
  await assert.rejects(allocate(bad.username, bad.credential, 3000), 'wrong secret refused');
  const old = turnCredentials(SECRET, 'gp-1', 60, Math.floor(Date.now() / 1000) - 3600);
  await assert.rejects(allocate(old.username, old.credential, 3000), 'expired credential refused');

  // A good one is allocated; permissions are granted for the relay's address only.
  const good = turnCredentials(SECRET, 'gp-1');
  const client = await allocate(good.username, good.credential);
  try {
    assert.equal(client.relayedAddress[0], '127.0.0.1');
    await withTimeout(client.getPermission(['127.0.0.1', 9]), 5000);
    for (const peer of ['127.0.0.2', '10.1.2.3', '192.0.2.7']) {
      await assert.rejects(withTimeout(client.getPermission([peer, 9]), 5000), `permission to ${peer} refused`);
    }
  } finally {
    await client.close();
  }
  const log = turn.log();
  assert.match(log, /CREATE_PERMISSION processed, success/);
  assert.match(log, /CREATE_PERMISSION processed, error 403: Forbidden IP/);
});
