// KeyPackages built by hand (RFC 9420 §10, cipher suite 1) with node's own Ed25519 and X25519, so
// that a test can make ones the MLS libraries never would: a lifetime that has ended, another
// cipher suite, a signature that does not verify — each otherwise valid and correctly signed.
//
//   keyPackage({ identity, notAfter: now - 60 })  -> MLSMessage(KeyPackage) bytes
import { sign } from 'node:crypto';
import { keyPair } from '../lib/keys.mjs';

const varint = (n) => {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  return Buffer.from([0x80 | ((n >>> 24) & 0x3f), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
};
const vec = (b) => Buffer.concat([varint(b.length), Buffer.from(b)]);
const u8 = (v) => Buffer.from([v]);
const u16 = (v) => Buffer.from([v >> 8, v & 0xff]);
const u64 = (v) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const u16s = (list) => vec(Buffer.concat(list.map(u16)));
const raw = (key) => Buffer.from(key.export({ format: 'jwk' }).x, 'base64url');

// SignWithLabel (§5.1.2): Ed25519 over SignContent { "MLS 1.0 " + label, content }.
function signWithLabel(key, label, content) {
  return sign(null, Buffer.concat([vec(Buffer.from(`MLS 1.0 ${label}`)), vec(content)]), key);
}

/**
 * @param {object} o
 * @param {string} o.identity        the basic credential's identity
 * @param {number} [o.suite]         KeyPackage cipher_suite (1)
 * @param {number[]} [o.suites]      capabilities.cipher_suites ([1])
 * @param {number} [o.notBefore]     lifetime, Unix seconds (now - 3600)
 * @param {number} [o.notAfter]      (now + 30 days)
 * @param {boolean} [o.badSignature] flip a bit of the KeyPackage signature
 */
export function keyPackage({ identity, suite = 1, suites = [1], notBefore, notAfter, badSignature = false }) {
  const now = Math.floor(Date.now() / 1000);
  const sig = keyPair('ed25519');
  const enc = keyPair('x25519');
  const init = keyPair('x25519');
  const leafTbs = Buffer.concat([
    vec(raw(enc.publicKey)),
    vec(raw(sig.publicKey)),
    u16(1), // basic credential
    vec(Buffer.from(identity, 'utf8')),
    u16s([1]), // capabilities: versions
    u16s(suites), // cipher_suites
    u16s([]), // extensions
    u16s([]), // proposals
    u16s([1]), // credentials
    u8(1), // leaf_node_source = key_package
    u64(notBefore ?? now - 3600),
    u64(notAfter ?? now + 30 * 86400),
    vec(Buffer.alloc(0)), // extensions
  ]);
  const leaf = Buffer.concat([leafTbs, vec(signWithLabel(sig.privateKey, 'LeafNodeTBS', leafTbs))]);
  const tbs = Buffer.concat([u16(1), u16(suite), vec(raw(init.publicKey)), leaf, vec(Buffer.alloc(0))]);
  const signature = signWithLabel(sig.privateKey, 'KeyPackageTBS', tbs);
  if (badSignature) signature[7] ^= 0x01;
  return new Uint8Array(Buffer.concat([u16(1), u16(5), tbs, vec(signature)])); // MLSMessage
}
