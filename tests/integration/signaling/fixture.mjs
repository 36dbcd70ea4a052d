// Shared set-up for the signaling tests: a real spreekd on loopback with a fresh data dir, the
// embedded issuer's key for minting tokens, and helpers to sign in as any role.
import { keyPair } from '../lib/keys.mjs';
import { Client } from '../lib/client.mjs';
import { ctl } from '../lib/ctl.mjs';
import { startServer } from '../lib/server.mjs';
import { loadIssuer, mint } from '../lib/tokens.mjs';

// Registers a practice system integration (role service) with a fresh Ed25519 key pair; its
// tokens are signed with that key (iss = sub = id). Returns { id, iss, kid, key, secret }.
export function registerIntegration(dataDir, { id = 'his-a', practices = PRACTICE, webhook } = {}) {
  const { privateKey, publicKey } = keyPair('ed25519');
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');
  const args = ['integration', 'register', '--id', id, '--practices', practices, '--public-key', pub,
    '--name', `HIS ${id}`];
  if (webhook) args.push('--webhook', webhook);
  const r = ctl(dataDir, args);
  if (r.status !== 0) throw new Error(`integration register: ${r.stderr}`);
  const kid = /^kid (\S+)/m.exec(r.stdout)[1];
  const secret = /^webhook secret ([0-9a-f]+)/m.exec(r.stdout)?.[1];
  return { id, iss: id, kid, key: privateKey, secret };
}

// A service token of integration `integ` (claims override the defaults).
export function serviceToken(integ, claims = {}) {
  return mint(integ, { sub: integ.id, role: 'service', name: undefined, practice: undefined, ...claims });
}

export const PRACTICE = 'praktijk-a';

export async function boot(extraArgs = [], opts = {}) {
  return attach(await startServer({ args: extraArgs, ...opts }));
}

// The same helpers for a server started elsewhere (e.g. by systemd in tests/deploy/): `srv` needs
// wsUrl, dataDir (to read the issuer key) and stop().
export function attach(srv) {
  const issuer = loadIssuer(srv.dataDir);
  const clients = [];
  const connect = async (o) => {
    const c = await Client.connect(srv.wsUrl, o);
    clients.push(c);
    await c.next('hello');
    return c;
  };
  // The practice system integration his-a, registered when a service token is first needed.
  let integration = null;
  const integ = () => (integration ??= registerIntegration(srv.dataDir));
  const token = (claims) => (claims.role === 'service' ? serviceToken(integ(), claims) : mint(issuer, claims));
  // Signs in a new connection with a token for `claims`.
  const as = async (claims) => {
    const c = await connect();
    const m = await c.req('auth', { token: token(claims) });
    if (m.type !== 'ok') throw new Error(`auth failed: ${m.code}`);
    c.user = m.user;
    return c;
  };
  const users = {
    gp: { sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: PRACTICE },
    gp2: { sub: 'gp-9', name: 'Dr. Elders', role: 'gp', practice: 'praktijk-b' },
    assistant: { sub: 'da-1', name: 'Fatima (assistente)', role: 'assistant', practice: PRACTICE, acts_for: 'gp-1' },
    remote_gp: { sub: 'rgp-1', name: 'Dr. Waarnemer', role: 'remote_gp', practice: 'hap-regio' },
    specialist: { sub: 'spec-1', name: 'Dr. Dermatoloog', role: 'specialist', practice: 'ziekenhuis-x' },
    partner: { sub: 'apo-1', name: 'Apotheek Centrum', role: 'partner', practice: 'apotheek-centrum' },
    admin: { sub: 'adm-1', name: 'Beheerder', role: 'admin', practice: PRACTICE },
    service: { sub: 'his-a', role: 'service' },
  };
  const close = async () => {
    for (const c of clients) c.close();
    await srv.stop();
  };
  return { srv, issuer, integration: integ, connect, token, as, users, close };
}

// A consult with a patient waiting in the lobby. Returns the pieces.
export async function consultWithPatient(env, gp, name = 'Sanne de Vries') {
  const { consult } = await gp.ok('consult.create', { patient: 'pseudo-4711', title: 'Beeldbellen' });
  const { invite } = await gp.ok('invite.create', { consult: consult.id });
  await gp.ok('consult.join', { consult: consult.id });
  const patient = await env.connect();
  const red = await patient.ok('invite.redeem', { invite: invite.code, name });
  return { consult, invite, patient, participant: red.participant, sessionToken: red.session_token };
}
