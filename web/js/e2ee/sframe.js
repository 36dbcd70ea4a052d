// SFrame (RFC 9605) with WebCrypto: the header (§4.3), key derivation (§4.4.2), encryption and
// decryption (§4.4.3, §4.4.4) for the five cipher suites of §4.5, and the SFrame context of
// Appendix A with a replay window per receive key. The same rules as the C library
// (crypto/include/spk/sframe.h, docs/sframe.md): a key is for sending or for receiving, a CTR is
// never used twice, a failed decryption leaves the replay window as it was and hands out no
// plaintext, the encoding of a header is minimal and any other is refused.
//
// KIDs and CTRs are BigInts (64 bits); byte strings are Uint8Arrays.

export class SFrameError extends Error {
  constructor(code, message) {
    super(message ?? code);
    this.name = 'SFrameError';
    this.code = code; // truncated | malformed | not_found | replay | verify | invalid | range
  }
}

// §4.5: Nk (AEAD key), Nn (nonce), Nt (tag), hash of the KDF; `ctr` suites are AES-CTR + HMAC.
export const SUITES = {
  1: { ctr: true, nka: 16, nk: 48, nn: 12, nt: 10, hash: 'SHA-256' },
  2: { ctr: true, nka: 16, nk: 48, nn: 12, nt: 8, hash: 'SHA-256' },
  3: { ctr: true, nka: 16, nk: 48, nn: 12, nt: 4, hash: 'SHA-256' },
  4: { ctr: false, nk: 16, nn: 12, nt: 16, hash: 'SHA-256' },
  5: { ctr: false, nk: 32, nn: 12, nt: 16, hash: 'SHA-512' },
};
export const AES_128_GCM_SHA256_128 = 4;
export const REPLAY_WINDOW = 1024n;
export const MAX_KEYS = 4096;
const MAX_U64 = (1n << 64n) - 1n;

const subtle = globalThis.crypto.subtle;
const te = new TextEncoder();

function suiteOf(suite) {
  const s = SUITES[suite];
  if (!s) throw new SFrameError('invalid', `unknown SFrame cipher suite ${suite}`);
  return s;
}

// ---- header (§4.3): config byte X|KKK|Y|CCC, then the extended KID and CTR ----

function byteLen(v) {
  let n = 0;
  for (let x = v; x > 0n; x >>= 8n) n++;
  return Math.max(n, 1);
}

function putBE(out, off, v, n) {
  for (let i = n - 1; i >= 0; i--) {
    out[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export function encodeHeader(kid, ctr) {
  kid = BigInt(kid);
  ctr = BigInt(ctr);
  if (kid < 0n || kid > MAX_U64 || ctr < 0n || ctr > MAX_U64) throw new SFrameError('range', 'KID or CTR out of range');
  const kn = kid < 8n ? 0 : byteLen(kid);
  const cn = ctr < 8n ? 0 : byteLen(ctr);
  const out = new Uint8Array(1 + kn + cn);
  out[0] = (kn ? 0x80 | ((kn - 1) << 4) : Number(kid) << 4) | (cn ? 0x08 | (cn - 1) : Number(ctr));
  if (kn) putBE(out, 1, kid, kn);
  if (cn) putBE(out, 1 + kn, ctr, cn);
  return out;
}

// Parses the header at the start of bytes: {kid, ctr, len}. Refuses non-minimal encodings.
export function decodeHeader(bytes) {
  if (bytes.length < 1) throw new SFrameError('truncated', 'empty frame');
  const cfg = bytes[0];
  let off = 1;
  const field = (extended, v) => {
    if (!extended) return BigInt(v);
    const n = v + 1;
    if (off + n > bytes.length) throw new SFrameError('truncated', 'frame ends inside the header');
    if (n > 1 && bytes[off] === 0) throw new SFrameError('malformed', 'header value with a leading zero byte');
    let x = 0n;
    for (let i = 0; i < n; i++) x = (x << 8n) | BigInt(bytes[off + i]);
    off += n;
    if (x < 8n) throw new SFrameError('malformed', 'header value below 8 in the extended form');
    return x;
  };
  const kid = field((cfg & 0x80) !== 0, (cfg >> 4) & 7);
  const ctr = field((cfg & 0x08) !== 0, cfg & 7);
  return { kid, ctr, len: off };
}

// ---- keys (§4.4.2) ----

function u64(v) {
  const b = new Uint8Array(8);
  putBE(b, 0, BigInt(v), 8);
  return b;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function label(kind, kid, suite) {
  return concat(te.encode(`SFrame 1.0 Secret ${kind} `), u64(kid), new Uint8Array([suite >> 8, suite & 0xff]));
}

async function hkdf(hash, ikm, info, n) {
  const k = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'HKDF', hash, salt: new Uint8Array(0), info }, k, n * 8);
  return new Uint8Array(bits);
}

// sframe_key and sframe_salt for kid from base_key, as raw bytes (for tests and vectors).
export async function deriveRaw(suite, kid, baseKey) {
  const s = suiteOf(suite);
  const key = await hkdf(s.hash, baseKey, label('key', kid, suite), s.nk);
  const salt = await hkdf(s.hash, baseKey, label('salt', kid, suite), s.nn);
  return { key, salt };
}

async function importKeys(suite, raw) {
  const s = suiteOf(suite);
  if (!s.ctr) {
    return { aead: await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']) };
  }
  return {
    enc: await subtle.importKey('raw', raw.subarray(0, s.nka), 'AES-CTR', false, ['encrypt', 'decrypt']),
    auth: await subtle.importKey('raw', raw.subarray(s.nka), { name: 'HMAC', hash: s.hash }, false, ['sign']),
  };
}

// ---- AEAD (§4.4.3, §4.5.1) ----

async function ctrTag(s, keys, nonce, aad, ct) {
  const data = concat(u64(aad.length), u64(ct.length), u64(s.nt), nonce, aad, ct);
  return new Uint8Array(await subtle.sign('HMAC', keys.auth, data)).subarray(0, s.nt);
}

async function seal(suite, keys, nonce, aad, pt) {
  const s = SUITES[suite];
  if (!s.ctr) {
    return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, keys.aead, pt));
  }
  const counter = concat(nonce, new Uint8Array(4));
  const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-CTR', counter, length: 32 }, keys.enc, pt));
  return concat(ct, await ctrTag(s, keys, nonce, aad, ct));
}

function equalCT(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

async function open(suite, keys, nonce, aad, ct) {
  const s = SUITES[suite];
  if (ct.length < s.nt) throw new SFrameError('truncated', 'frame shorter than its tag');
  if (!s.ctr) {
    try {
      return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, keys.aead, ct));
    } catch {
      throw new SFrameError('verify', 'SFrame authentication failed');
    }
  }
  const inner = ct.subarray(0, ct.length - s.nt);
  const tag = await ctrTag(s, keys, nonce, aad, inner);
  if (!equalCT(tag, ct.subarray(ct.length - s.nt))) throw new SFrameError('verify', 'SFrame authentication failed');
  const counter = concat(nonce, new Uint8Array(4));
  return new Uint8Array(await subtle.decrypt({ name: 'AES-CTR', counter, length: 32 }, keys.enc, inner));
}

// Exposed for the AES-CTR + HMAC vectors: AEAD.Encrypt / AEAD.Decrypt with a raw key.
export async function aeadSeal(suite, rawKey, nonce, aad, pt) {
  return seal(suite, await importKeys(suite, rawKey), nonce, aad, pt);
}
export async function aeadOpen(suite, rawKey, nonce, aad, ct) {
  return open(suite, await importKeys(suite, rawKey), nonce, aad, ct);
}

function nonceFor(salt, ctr) {
  const n = salt.slice();
  const c = u64(ctr);
  for (let i = 0; i < 8; i++) n[n.length - 8 + i] ^= c[i];
  return n;
}

// ---- the replay window of a receive key (§9.3) ----

class ReplayWindow {
  constructor() {
    this.top = -1n; // highest CTR accepted
    this.seen = new Set(); // accepted CTRs within the window below top
  }

  check(ctr) {
    if (this.top >= 0n && ctr + REPLAY_WINDOW <= this.top) return false;
    return !(ctr === this.top || this.seen.has(ctr));
  }

  mark(ctr) {
    if (ctr > this.top) {
      if (this.top >= 0n) this.seen.add(this.top);
      this.top = ctr;
      for (const c of this.seen) if (c + REPLAY_WINDOW <= this.top) this.seen.delete(c);
    } else {
      this.seen.add(ctr);
    }
  }
}

// ---- the SFrame context (Appendix A) ----

export const SEND = 'send';
export const RECV = 'recv';

export class SFrameContext {
  constructor(suite = AES_128_GCM_SHA256_128) {
    suiteOf(suite);
    this.suite = suite;
    this.keys = new Map(); // kid (bigint) -> {usage, keys, salt, next, window}
  }

  async addKey(kid, usage, baseKey) {
    kid = BigInt(kid);
    if (usage !== SEND && usage !== RECV) throw new SFrameError('invalid', 'usage is send or recv');
    if (kid < 0n || kid > MAX_U64) throw new SFrameError('range', 'KID out of range');
    if (this.keys.has(kid)) throw new SFrameError('exists', `KID ${kid} has a key already`);
    if (this.keys.size >= MAX_KEYS) throw new SFrameError('range', 'too many keys');
    const raw = await deriveRaw(this.suite, kid, baseKey);
    const keys = await importKeys(this.suite, raw.key);
    raw.key.fill(0);
    if (this.keys.has(kid)) throw new SFrameError('exists', `KID ${kid} has a key already`);
    this.keys.set(kid, { usage, keys, salt: raw.salt, next: 0n, window: new ReplayWindow() });
  }

  removeKey(kid) {
    const k = this.keys.get(BigInt(kid));
    if (!k) throw new SFrameError('not_found', `no key for KID ${kid}`);
    k.salt.fill(0);
    this.keys.delete(BigInt(kid));
  }

  has(kid) {
    return this.keys.has(BigInt(kid));
  }

  // Moves the next CTR of send key kid forward (never back), e.g. to continue a persisted one.
  setNextCtr(kid, ctr) {
    const k = this.keys.get(BigInt(kid));
    if (!k) throw new SFrameError('not_found', `no key for KID ${kid}`);
    if (k.usage !== SEND || BigInt(ctr) < k.next) throw new SFrameError('invalid', 'a counter never goes back');
    k.next = BigInt(ctr);
  }

  // header || ciphertext || tag, under send key kid with its next CTR. metadata is
  // authenticated, not carried.
  async encrypt(kid, pt, metadata = new Uint8Array(0)) {
    kid = BigInt(kid);
    const k = this.keys.get(kid);
    if (!k) throw new SFrameError('not_found', `no key for KID ${kid}`);
    if (k.usage !== SEND) throw new SFrameError('invalid', `KID ${kid} is a receive key`);
    if (k.next > MAX_U64) throw new SFrameError('range', 'the counters of this key are used up');
    const ctr = k.next++; // taken before the await: concurrent calls never share a CTR
    const header = encodeHeader(kid, ctr);
    const ct = await seal(this.suite, k.keys, nonceFor(k.salt, ctr), concat(header, metadata), pt);
    return concat(header, ct);
  }

  // {pt, kid, ctr}; throws SFrameError (not_found: no key for the KID — the caller may hold
  // the frame until it arrives; replay; verify; truncated / malformed).
  async decrypt(frame, metadata = new Uint8Array(0)) {
    const h = decodeHeader(frame);
    const k = this.keys.get(h.kid);
    if (!k || k.usage !== RECV) throw new SFrameError('not_found', `no receive key for KID ${h.kid}`);
    if (!k.window.check(h.ctr)) throw new SFrameError('replay', 'CTR already received or below the replay window');
    const aad = concat(frame.subarray(0, h.len), metadata);
    const pt = await open(this.suite, k.keys, nonceFor(k.salt, h.ctr), aad, frame.subarray(h.len));
    if (this.keys.get(h.kid) !== k || !k.window.check(h.ctr)) {
      throw new SFrameError('replay', 'CTR already received or below the replay window');
    }
    k.window.mark(h.ctr);
    return { pt, kid: h.kid, ctr: h.ctr };
  }
}
