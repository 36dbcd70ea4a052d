// The client side of tests/deploy/systemd_sandbox.sh: talks to a spreekd that systemd started
// from deploy/systemd/spreekd.service (inside the test's network namespace) and checks that it
// does everything a practice needs while sandboxed. Runs as root in the test's namespaces, so
// it can read the issuer key from the service's state directory to mint tokens.
//
//   node sandbox_client.mjs check   health, metrics, sign-in, consult, lobby, media through the
//                                   relay (werift), an encrypted chat message and attachment, a
//                                   practice system on /api/v1 with a signed webhook back
//   node sandbox_client.mjs drain   signs in, prints "ready", then expects server.shutdown and a
//                                   1001 close when systemd stops the service
//
// SPK_URL (default http://127.0.0.1:8480): where clients connect; SPK_ADMIN_URL (default SPK_URL):
// where /healthz and /metrics are read (a proxy keeps them private); SPK_DATA (default
// /var/lib/spreekkamer): the data directory; SPK_FILE_BYTES (default 2 MiB): the attachment;
// SPREEKCTL: the spreekctl to register the integration with (run it as spreekd's user).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';

import { receiver } from '../integration/api/lib.mjs';
import { consultChat, loadMls } from '../integration/chat/lib.mjs';
import { parseMetrics } from '../integration/lib/server.mjs';
import { Peer, waitFor } from '../integration/media/peer.mjs';
import { attach, consultWithPatient, registerIntegration, serviceToken } from '../integration/signaling/fixture.mjs';

const url = process.env.SPK_URL ?? 'http://127.0.0.1:8480';
const adminUrl = process.env.SPK_ADMIN_URL ?? url;
const dataDir = process.env.SPK_DATA ?? '/var/lib/spreekkamer';
const fileBytes = Number(process.env.SPK_FILE_BYTES ?? 2 * 1024 * 1024);
const srv = {
  url,
  wsUrl: `${url.replace(/^http/, 'ws')}/ws`,
  dataDir,
  async get(path, init = {}) {
    const r = await fetch((/^\/(healthz|metrics)$/.test(path) ? adminUrl : url) + path, init);
    return { status: r.status, body: await r.text() };
  },
  async metrics() {
    return parseMetrics((await this.get('/metrics')).body);
  },
  async stop() {}, // systemd stops it
};

async function check() {
  const health = await srv.get('/healthz');
  assert.equal(health.status, 200, 'healthz');
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
  const m0 = await srv.metrics();
  assert.equal(m0.spk_relay_enabled, 1, 'the media relay runs (GLib, libnice, OpenSSL, libsrtp loaded)');
  const join = await srv.get('/join');
  assert.equal(join.status, 200, 'web client served from the installed web root');

  const env = attach(srv);
  try {
    // Signaling: a GP signs in, creates a consult and an invite; the patient redeems it and waits.
    const gp = await env.as(env.users.gp);
    const { consult, patient, participant } = await consultWithPatient(env, gp);
    await patient.ok('consult.join', { consult: consult.id });

    // Media: werift peers publish and subscribe through the relay (ICE, DTLS-SRTP on UDP).
    const gpPeer = new Peer(gp, consult.id, 0x6770);
    const ptPeer = new Peer(patient, consult.id, 0x7074);
    // The deployed default requires end-to-end encrypted media: the peers say they encrypt.
    gpPeer.e2ee = ptPeer.e2ee = consult.e2ee === true;
    try {
      // Media exists only for admitted participants (protocol.md §5.7).
      await gp.ok('lobby.admit', { consult: consult.id, participant: participant.id });
      await patient.next('admitted');
      await gpPeer.start();
      await ptPeer.start();
      gpPeer.startSending();
      ptPeer.startSending();
      const both = () => {
        const a = gpPeer.countFrom(0x7074);
        const b = ptPeer.countFrom(0x6770);
        return a.video >= 20 && a.audio >= 30 && b.video >= 20 && b.audio >= 30;
      };
      assert.ok(await waitFor(both, 20000),
        `media both ways: gp ${JSON.stringify(gpPeer.summary())} patient ${JSON.stringify(ptPeer.summary())}`);
    } finally {
      await gpPeer.close();
      await ptPeer.close();
      // Their signaling connections go too, so the relay ends their endpoints now instead of
      // noticing later that ICE consent stopped (a warning in the log).
      gp.close();
      patient.close();
    }

    // Chat: an MLS group over the delivery service, a message, and an attachment written to the
    // state directory (files/) and read back byte for byte.
    const mls = await loadMls();
    const c = await consultChat(env, mls);
    await c.pt.send(c.conv, 'goedemorgen');
    await c.gp.until(() => c.gp.texts(c.conv).includes('goedemorgen'));
    const photo = randomBytes(fileBytes);
    const up = await c.patient.ok('chat.file.upload', { conversation: c.conv, size: photo.length });
    const put = await fetch(url + up.path, {
      method: 'PUT', headers: { authorization: `Bearer ${up.ticket}` }, body: photo,
    });
    assert.equal(put.status, 201, await put.clone().text());
    const down = await c.gpc.ok('chat.file.download', { conversation: c.conv, file: up.file });
    const got = await fetch(url + down.path, { headers: { authorization: `Bearer ${down.ticket}` } });
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(photo), 'attachment round trip');
    assert.ok(readdirSync(`${dataDir}/files`).includes(up.file), 'attachment stored in the state directory');
    // A practice system: registered with spreekctl, a consult made and ended over /api/v1, the
    // end delivered as a signed webhook (outbound HTTP from spreekd's worker threads).
    const hook = await receiver();
    try {
      const integ = registerIntegration(dataDir, { id: 'his-sandbox', webhook: hook.url });
      hook.setSecret(integ.secret);
      const post = (path, body) => fetch(url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceToken(integ)}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const made = await post('/api/v1/consults', { patient: 'pseudo-api', gp: 'gp-1' });
      assert.equal(made.status, 201, await made.clone().text());
      const id = (await made.json()).consult.id;
      const ended = await post(`/api/v1/consults/${id}/end`, {});
      assert.equal(ended.status, 200, await ended.clone().text());
      await hook.waitFor((e) => e.type === 'consult.ended' && e.consult === id);
      assert.deepEqual(hook.bad, [], 'every webhook signature checks');
    } finally {
      hook.close();
    }
    const m1 = await srv.metrics();
    console.log(JSON.stringify({
      check: 'ok',
      rtp_forwarded: m1.spk_relay_rtp_forwarded_total,
      file_uploads: m1.spk_file_uploads_total,
      file_bytes: fileBytes,
      api_webhook: 'ok',
    }));
  } finally {
    await env.close();
  }
}

async function drain() {
  const env = attach(srv);
  const gp = await env.as(env.users.gp);
  const closed = new Promise((resolve) => gp.ws.once('close', (code) => resolve(code)));
  console.log('ready');
  const shutdown = await gp.next('server.shutdown', 30000);
  assert.equal(typeof shutdown.retry_after_ms, 'number');
  const code = await closed;
  assert.equal(code, 1001, 'closed as going away');
  console.log(JSON.stringify({ drain: 'ok', close: code }));
}

const mode = process.argv[2];
if (mode === 'check') await check();
else if (mode === 'drain') await drain();
else {
  console.error('usage: sandbox_client.mjs check|drain');
  process.exit(2);
}
process.exit(0);
