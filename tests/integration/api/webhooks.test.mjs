// Webhook endpoints that fail: one that answers 500, one that hangs, one that is down while
// spreekd restarts. Events are retried with backoff, delivered in order once the endpoint
// recovers, survive the restart (the queue is in the store), and the control thread carries on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { setup } from './lib.mjs';

test('a webhook endpoint that answers 500, then recovers', { timeout: 60000 }, async (t) => {
  let fail = 2;
  const { api, hook } = await setup(t, { behave: () => (fail-- > 0 ? 500 : 200) });
  const c = await api('POST', '/api/v1/consults', { body: { patient: 'p-1', gp: 'gp-1' } });
  await api('POST', `/api/v1/consults/${c.json.consult.id}/end`);
  const ev = await hook.waitFor((e) => e.type === 'consult.ended', 15000);
  assert.equal(ev.attempt, 3, 'delivered on the third attempt (1 s, 2 s backoff)');
  assert.deepEqual(hook.bad, []);
});

test('a webhook endpoint that hangs: timeouts, retries, and the server carries on', { timeout: 60000 }, async (t) => {
  let hang = 2;
  const { env, api, hook } = await setup(t, { behave: () => (hang-- > 0 ? 'hang' : 200) });
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const c = await api('POST', '/api/v1/consults', { body: { patient: `p-${i}`, gp: 'gp-1' } });
    ids.push(c.json.consult.id);
    await api('POST', `/api/v1/consults/${c.json.consult.id}/end`);
  }
  // While deliveries hang (webhook_timeout 1 s), signaling answers at once.
  const ws = await env.connect();
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    assert.equal(await ws.code('ping'), 'ok');
    assert.ok(performance.now() - t0 < 500, 'ping answered while a webhook hangs');
  }
  await hook.waitFor((e) => e.consult === ids[2], 20000, 'for the last consult');
  assert.deepEqual(hook.events.map((e) => e.consult), ids, 'in order, none lost, none twice');
});

test('queued events survive a restart and go out once the endpoint is back', { timeout: 60000 }, async (t) => {
  let up = false;
  const { env, api, hook } = await setup(t, { behave: () => (up ? 200 : 503) });
  const c = await api('POST', '/api/v1/consults', { body: { patient: 'p-r', gp: 'gp-1' } });
  await api('POST', `/api/v1/consults/${c.json.consult.id}/end`);
  await new Promise((r) => setTimeout(r, 300));
  env.srv.keepDataDir = true;
  await env.srv.stop();
  up = true;
  const srv2 = await startServer({ dataDir: env.srv.dataDir, args: ['--webhook-timeout', '1000'] });
  t.after(async () => {
    srv2.keepDataDir = false;
    await srv2.stop().catch(() => {});
  });
  const ev = await hook.waitFor((e) => e.type === 'consult.ended' && e.consult === c.json.consult.id, 15000)
    .catch((e) => { throw new Error(`${e.message}\n${srv2.stderr.slice(-3000)}`); });
  assert.ok(ev.attempt >= 2);
  assert.deepEqual(hook.bad, []);
});
