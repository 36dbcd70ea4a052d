// Signs tokens in tests exactly as an identity provider would: compact JWS, EdDSA (Ed25519).
// The embedded issuer key is read from the data directory (issuer.key: "<iss> <kid> <seed>").
import { sign, randomBytes } from 'node:crypto';
import { keyPair, privateKeyFromSeed } from './keys.mjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

export function loadIssuer(dataDir) {
  const [iss, kid, seed] = readFileSync(join(dataDir, 'issuer.key'), 'utf8').trim().split(/\s+/);
  return { iss, kid, key: privateKeyFromSeed('ed25519', Buffer.from(seed, 'base64url')) };
}

// A key nobody trusts, for forged and wrong-issuer tokens.
export function foreignIssuer(iss = 'elsewhere', kid = 'k1') {
  const { privateKey } = keyPair('ed25519');
  return { iss, kid, key: privateKey };
}

export function signJws(header, claims, key) {
  const h = b64u(JSON.stringify(header));
  const p = b64u(JSON.stringify(claims));
  const sig = sign(null, Buffer.from(`${h}.${p}`), key);
  return `${h}.${p}.${b64u(sig)}`;
}

// Mints a token; `claims` override the defaults (valid for an hour from now).
export function mint(issuer, claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  const c = {
    iss: issuer.iss, aud: 'spreekkamer', sub: 'gp-1', name: 'Dr. Jansen', role: 'gp', practice: 'praktijk-a',
    iat: now, nbf: now - 5, exp: now + 3600, jti: randomBytes(9).toString('base64url'), ...claims,
  };
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return signJws({ alg: 'EdDSA', typ: 'JWT', kid: issuer.kid }, c, issuer.key);
}
