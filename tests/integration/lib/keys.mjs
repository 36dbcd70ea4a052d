// Ed25519 and X25519 key pairs for the tests (issuer keys, KeyPackages built by hand).
// crypto.generateKeyPairSync is not used for these: under Node.js 20 a garbage collection that
// runs while a key is generated can finalize an earlier generation job, whose destructor waits
// for a mutex the running job holds, and the test process hangs for good (seen: the main thread
// in ~KeyGenJob, every other thread idle). A private key from 32 random bytes is the same key.
//
//   const { privateKey, publicKey } = keyPair('ed25519');   // KeyObjects, as generateKeyPairSync
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';

// PKCS #8 wrapping of a raw 32-byte private key (RFC 8410): OID 1.3.101.112 / 1.3.101.110.
const PKCS8_PREFIX = {
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
};

// The private key whose raw 32 bytes are seed (an issuer.key file keeps them so).
export function privateKeyFromSeed(type, seed) {
  const prefix = PKCS8_PREFIX[type];
  if (!prefix) throw new Error(`${type} is not ed25519 or x25519`);
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
}

export function keyPair(type) {
  const seed = randomBytes(32);
  const privateKey = privateKeyFromSeed(type, seed);
  seed.fill(0);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
