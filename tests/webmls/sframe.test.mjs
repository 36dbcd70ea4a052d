// The browser's SFrame (web/js/e2ee/sframe.js, WebCrypto) against every case of the official
// vectors (../shared/vectors/sframe), and its MLS key schedule (web/js/e2ee/sframe_mls.js) with
// real groups of the browser's MLS library: the RFC's KID examples, every member reading every
// other, frames across a Commit, a removed member locked out, replay and tamper refusal.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { loadMls } from '../../web/mls/spk_mls.js';
import {
  aeadOpen, aeadSeal, decodeHeader, deriveRaw, encodeHeader, RECV, SEND, SFrameContext, SFrameError,
} from '../../web/js/e2ee/sframe.js';
import { epochKeys, SFrameMls } from '../../web/js/e2ee/sframe_mls.js';

const shared = process.env.SPK_SHARED_DIR ?? '../shared';
const raw = readFileSync(`${shared}/vectors/sframe/test-vectors.json`, 'utf8');
// 64-bit integers: read every number as text.
const vectors = JSON.parse(raw.replace(/:\s*(\d+)/g, ': "$1"'));
const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');
const code = (c) => (e) => e instanceof SFrameError && e.code === c;

test('vectors: headers, AES-CTR + HMAC, whole frames', async () => {
  let passed = 0;
  for (const v of vectors.header) {
    const kid = BigInt(v.kid);
    const ctr = BigInt(v.ctr);
    assert.equal(toHex(encodeHeader(kid, ctr)), v.encoded);
    const h = decodeHeader(hex(v.encoded));
    assert.deepEqual([h.kid, h.ctr, h.len], [kid, ctr, v.encoded.length / 2]);
    passed++;
  }
  for (const v of vectors.aes_ctr_hmac) {
    const suite = Number(v.cipher_suite);
    const ct = await aeadSeal(suite, hex(v.key), hex(v.nonce), hex(v.aad), hex(v.pt));
    assert.equal(toHex(ct), v.ct);
    assert.equal(toHex(await aeadOpen(suite, hex(v.key), hex(v.nonce), hex(v.aad), ct)), v.pt);
    ct[0] ^= 1;
    await assert.rejects(aeadOpen(suite, hex(v.key), hex(v.nonce), hex(v.aad), ct), code('verify'));
    passed++;
  }
  for (const v of vectors.sframe) {
    const suite = Number(v.cipher_suite);
    const kid = BigInt(v.kid);
    const d = await deriveRaw(suite, kid, hex(v.base_key));
    assert.equal(toHex(d.key), v.sframe_key);
    assert.equal(toHex(d.salt), v.sframe_salt);
    const tx = new SFrameContext(suite);
    const rx = new SFrameContext(suite);
    await tx.addKey(kid, SEND, hex(v.base_key));
    await rx.addKey(kid, RECV, hex(v.base_key));
    tx.setNextCtr(kid, BigInt(v.ctr));
    const frame = await tx.encrypt(kid, hex(v.pt), hex(v.metadata));
    assert.equal(toHex(frame), v.ct);
    const r = await rx.decrypt(frame, hex(v.metadata));
    assert.equal(toHex(r.pt), v.pt);
    assert.equal(r.ctr, BigInt(v.ctr));
    await assert.rejects(rx.decrypt(frame, hex(v.metadata)), code('replay'));
    const bad = frame.slice();
    bad[bad.length - 1] ^= 1;
    const rx2 = new SFrameContext(suite);
    await rx2.addKey(kid, RECV, hex(v.base_key));
    await assert.rejects(rx2.decrypt(bad, hex(v.metadata)), code('verify'));
    await assert.rejects(rx2.decrypt(frame, new Uint8Array([1])), code('verify'));
    assert.equal(toHex((await rx2.decrypt(frame, hex(v.metadata))).pt), v.pt); // nothing marked
    passed++;
  }
  const total = vectors.header.length + vectors.aes_ctr_hmac.length + vectors.sframe.length;
  console.log(`sframe/test-vectors.json ${passed}/${total}`);
  assert.equal(passed, total);
});

test('headers: non-minimal and truncated forms are refused', () => {
  assert.throws(() => decodeHeader(new Uint8Array([])), code('truncated'));
  assert.throws(() => decodeHeader(new Uint8Array([0x80])), code('truncated'));
  assert.throws(() => decodeHeader(new Uint8Array([0x80, 0x07])), code('malformed')); // KID 7 extended
  assert.throws(() => decodeHeader(new Uint8Array([0x90, 0x00, 0x09])), code('malformed')); // leading zero
  assert.throws(() => decodeHeader(new Uint8Array([0x0f, 0x01])), code('truncated'));
  assert.deepEqual(decodeHeader(encodeHeader((1n << 64n) - 1n, 0n)).kid, (1n << 64n) - 1n);
});

test('context rules: send or receive keys, counters, the replay window', async () => {
  const key = new Uint8Array(16).fill(7);
  const tx = new SFrameContext();
  const rx = new SFrameContext();
  await tx.addKey(5, SEND, key);
  await rx.addKey(5, RECV, key);
  await assert.rejects(tx.addKey(5, SEND, key), code('exists'));
  await assert.rejects(rx.encrypt(5, new Uint8Array(3)), code('invalid'));
  await assert.rejects(tx.decrypt(await tx.encrypt(5, new Uint8Array(3))), code('not_found'));
  assert.throws(() => tx.setNextCtr(5, 0), code('invalid')); // never back
  const frames = [];
  for (let i = 0; i < 1100; i++) frames.push(await tx.encrypt(5, new Uint8Array([i & 0xff])));
  // Out of order within the window is fine, a replay is not, too old is not.
  await rx.decrypt(frames[1099]);
  await rx.decrypt(frames[500]);
  await assert.rejects(rx.decrypt(frames[500]), code('replay'));
  await assert.rejects(rx.decrypt(frames[50]), code('replay'));
  await rx.decrypt(frames[1000]);
  rx.removeKey(5);
  await assert.rejects(rx.decrypt(frames[1001]), code('not_found'));
});

test("KIDs from MLS: the RFC's examples", async () => {
  const m = new SFrameMls({ epochBits: 4 });
  const base = new Uint8Array(16);
  await m.addEpoch({ epoch: 14n, baseKey: base, leafCount: 64, ownLeaf: 3 });
  assert.equal(m.kid(0), 0x3en);
  await m.addEpoch({ epoch: 16n, baseKey: base, leafCount: 64, ownLeaf: 2 });
  assert.equal(m.kid(2), 0x820n);
  await m.addEpoch({ epoch: 17n, baseKey: base, leafCount: 64, ownLeaf: 33 });
  assert.equal(m.kid(0), 0x211n);
  await assert.rejects(m.addEpoch({ epoch: 17n, baseKey: base, leafCount: 64, ownLeaf: 1 }), code('exists'));
});

test('keys from real MLS groups: everyone reads everyone, across a Commit; a removed member cannot', async () => {
  const mls = await loadMls();
  const ms = ['gp', 'patient', 'specialist'].map((n) => ({ n, ...mls.keyPackageCreate(n) }));
  const gp = mls.create('consult-m_1', ms[0].secret);
  const { welcome } = gp.commit({ add: [ms[1].keyPackage, ms[2].keyPackage] });
  gp.commitMerge();
  const groups = [gp, mls.join(ms[1].secret, welcome), mls.join(ms[2].secret, welcome)];
  const media = groups.map(() => new SFrameMls());
  for (let i = 0; i < 3; i++) await media[i].addEpoch(epochKeys(groups[i]));
  const canary = new TextEncoder().encode('CANARY-spreekkamer-frame');
  const clear = new Uint8Array([0x10, 0x02, 0x00]); // e.g. the VP8 bytes left in the clear
  const frames = [];
  for (let i = 0; i < 3; i++) frames.push(await media[i].encrypt(1, canary, clear));
  for (let i = 0; i < 3; i++) {
    assert.equal(Buffer.from(frames[i]).indexOf(Buffer.from('CANARY')), -1);
    for (let j = 0; j < 3; j++) {
      if (i === j) {
        await assert.rejects(media[j].decrypt(frames[i], clear), code('not_found'));
        continue;
      }
      const r = await media[j].decrypt(frames[i], clear);
      assert.deepEqual(r.pt, canary);
      assert.equal(r.leaf, groups[i].ownLeaf);
      assert.equal(r.context, 1);
      assert.equal(r.epoch, BigInt(groups[i].epoch));
    }
  }
  // The specialist leaves: the GP commits the removal; the patient processes it.
  const inFlight = await media[1].encrypt(0, canary, clear); // the patient, still in the old epoch
  const { commit } = gp.commit({ remove: [groups[2].ownLeaf] });
  gp.commitMerge();
  groups[1].process(commit);
  await media[0].addEpoch(epochKeys(gp));
  await media[1].addEpoch(epochKeys(groups[1]));
  const after = await media[0].encrypt(1, canary, clear);
  assert.deepEqual((await media[1].decrypt(after, clear)).pt, canary);
  assert.deepEqual((await media[0].decrypt(inFlight, clear)).pt, canary); // old epoch kept for receiving
  await assert.rejects(media[2].decrypt(after, clear), code('not_found'));
  // Even a removed member who guesses the epoch bits has no key: a made-up epoch key fails.
  await media[2].addEpoch({ epoch: BigInt(gp.epoch), baseKey: new Uint8Array(16), leafCount: gp.leafCount, ownLeaf: 1 });
  await assert.rejects(media[2].decrypt(after, clear), code('verify'));
  media[0].dropBefore(BigInt(gp.epoch));
  await assert.rejects(media[0].decrypt(inFlight, clear), code('not_found'));
  for (const g of groups) g.free();
});
