// SFrame keys from MLS (RFC 9605 §5.2), the same schedule as the C library's spk_sframe_mls_t
// (docs/sframe.md "Keys from MLS"):
//
//   base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk)         one per epoch
//   KID      = context << (S + E) | leaf_index << E | epoch mod 2^E
//
// S = log2(the group's leaf count), E = epochBits (4). Each member sends under its own leaf's
// KIDs (one per context: 0 audio, 1 video) in the newest epoch, and receives any other member's
// frames in any kept epoch, deriving that sender's key on its first frame. Installing an epoch
// drops a kept one with the same low E bits, then the oldest beyond maxEpochs.
import { AES_128_GCM_SHA256_128, RECV, SEND, SFrameContext, SFrameError, SUITES, decodeHeader } from './sframe.js';

export const BASE_KEY_LABEL = 'SFrame 1.0 Base Key';

// What addEpoch needs for a web/mls Group's (spk_mls.js) current epoch.
export function epochKeys(group, suite = AES_128_GCM_SHA256_128) {
  return {
    epoch: BigInt(group.epoch),
    baseKey: group.exportSecret(BASE_KEY_LABEL, new Uint8Array(0), SUITES[suite].nk),
    leafCount: group.leafCount,
    ownLeaf: group.ownLeaf,
  };
}

function log2(n) {
  let s = 0;
  while (1 << s < n) s++;
  return s;
}

export class SFrameMls {
  constructor({ suite = AES_128_GCM_SHA256_128, epochBits = 4, maxEpochs = 3 } = {}) {
    if (!SUITES[suite]) throw new SFrameError('invalid', `unknown suite ${suite}`);
    if (epochBits < 1 || epochBits > 16) throw new SFrameError('invalid', 'epochBits is 1 to 16');
    if (maxEpochs < 1 || maxEpochs > Math.min(2 ** epochBits, 16)) throw new SFrameError('invalid', 'maxEpochs out of range');
    this.suite = suite;
    this.E = BigInt(epochBits);
    this.maxEpochs = maxEpochs;
    this.epochs = []; // oldest first: {epoch (bigint), S, leafCount, ownLeaf, ctx, pending: Map}
  }

  // Installs an epoch (after joining, and after every Commit processed or merged).
  async addEpoch({ epoch, baseKey, leafCount, ownLeaf }) {
    epoch = BigInt(epoch);
    if (leafCount < 1 || leafCount > 65536 || ownLeaf < 0 || ownLeaf >= leafCount) {
      throw new SFrameError('range', 'leaf count or own leaf out of range');
    }
    const newest = this.epochs[this.epochs.length - 1];
    if (newest && epoch <= newest.epoch) {
      throw new SFrameError(epoch === newest.epoch ? 'exists' : 'state', `epoch ${epoch} is not newer than ${newest.epoch}`);
    }
    const mask = (1n << this.E) - 1n;
    this.epochs = this.epochs.filter((e) => (e.epoch & mask) !== (epoch & mask));
    while (this.epochs.length >= this.maxEpochs) this.epochs.shift();
    this.epochs.push({
      epoch,
      S: BigInt(log2(leafCount)),
      leafCount,
      ownLeaf: BigInt(ownLeaf),
      baseKey: Uint8Array.from(baseKey),
      ctx: new SFrameContext(this.suite),
      pending: new Map(),
    });
  }

  dropBefore(epoch) {
    epoch = BigInt(epoch);
    for (const e of this.epochs) if (e.epoch < epoch) e.baseKey.fill(0);
    this.epochs = this.epochs.filter((e) => e.epoch >= epoch);
  }

  get sendEpoch() {
    const e = this.epochs[this.epochs.length - 1];
    return e ? e.epoch : null;
  }

  #kid(e, leaf, context) {
    context = BigInt(context);
    const shift = e.S + this.E;
    if (context < 0n || (shift < 64n && context >= 1n << (64n - shift))) throw new SFrameError('invalid', 'context does not fit in the KID');
    return (context << shift) | (BigInt(leaf) << this.E) | (e.epoch & ((1n << this.E) - 1n));
  }

  kid(context = 0) {
    const e = this.epochs[this.epochs.length - 1];
    if (!e) throw new SFrameError('not_found', 'no epoch installed');
    return this.#kid(e, e.ownLeaf, context);
  }

  async #key(e, kid, usage) {
    if (e.ctx.has(kid)) return;
    let p = e.pending.get(kid);
    if (!p) {
      p = e.ctx.addKey(kid, usage, e.baseKey).finally(() => e.pending.delete(kid));
      e.pending.set(kid, p);
    }
    await p;
  }

  // Encrypts in the newest epoch under this member's KID for context.
  async encrypt(context, pt, metadata) {
    const e = this.epochs[this.epochs.length - 1];
    if (!e) throw new SFrameError('not_found', 'no epoch installed');
    const kid = this.#kid(e, e.ownLeaf, context);
    await this.#key(e, kid, SEND);
    return e.ctx.encrypt(kid, pt, metadata);
  }

  // {pt, epoch, leaf, context, kid, ctr}. not_found: no kept epoch with the KID's epoch bits, a
  // leaf outside that epoch's tree, or this member's own leaf.
  async decrypt(frame, metadata) {
    const { kid } = decodeHeader(frame);
    const mask = (1n << this.E) - 1n;
    const e = this.epochs.find((x) => (x.epoch & mask) === (kid & mask));
    if (!e) throw new SFrameError('not_found', 'no key for this epoch');
    const leaf = (kid >> this.E) & ((1n << e.S) - 1n);
    const context = kid >> (e.S + this.E);
    if (leaf >= BigInt(e.leafCount) || leaf === e.ownLeaf) throw new SFrameError('not_found', 'no receive key for this sender');
    await this.#key(e, kid, RECV);
    const r = await e.ctx.decrypt(frame, metadata);
    return { ...r, epoch: e.epoch, leaf: Number(leaf), context: Number(context) };
  }

  close() {
    this.dropBefore(1n << 64n);
  }
}
