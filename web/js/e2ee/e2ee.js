// End-to-end encrypted media for one call (docs/sframe.md "In the browser"): a worker that
// encrypts and decrypts encoded frames (worker.js), fed with the SFrame keys of the consult's
// MLS group. The page calls setEpoch after joining the group and after every Commit; Call
// (rtc.js) attaches the transforms to its senders and receivers.
import { epochKeys } from './sframe_mls.js';

// Frames of the previous epoch may still arrive this long after a Commit.
const OLD_EPOCH_MS = 5000;

export class E2ee {
  static supported() {
    return typeof globalThis.RTCRtpScriptTransform === 'function' && typeof globalThis.Worker === 'function';
  }

  constructor({ onStats = () => {} } = {}) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.stats = null;
    this.epoch = null;
    this.safety = '';
    this.dropTimer = 0;
    this.worker.onmessage = (e) => {
      if (e.data.type === 'stats') {
        this.stats = e.data.stats;
        onStats(this.stats);
      } else if (e.data.type === 'error') {
        console.warn('e2ee worker:', e.data.message);
      }
    };
  }

  // From a web/mls Group (spk_mls.js) at its current epoch.
  setGroup(group) {
    this.setEpoch(epochKeys(group), safetyNumber(group.epochAuthenticator()));
  }

  // {epoch, baseKey, leafCount, ownLeaf}; safety: the number both sides can compare.
  setEpoch(keys, safety = '') {
    const epoch = BigInt(keys.epoch);
    if (this.epoch !== null && epoch <= this.epoch) return;
    const baseKey = Uint8Array.from(keys.baseKey);
    this.worker.postMessage(
      { type: 'epoch', epoch: epoch.toString(), baseKey, leafCount: keys.leafCount, ownLeaf: keys.ownLeaf },
      [baseKey.buffer],
    );
    this.epoch = epoch;
    this.safety = safety;
    clearTimeout(this.dropTimer);
    this.dropTimer = setTimeout(() => this.worker.postMessage({ type: 'drop_before', epoch: epoch.toString() }), OLD_EPOCH_MS);
  }

  // kind: 'audio' | 'video'
  attachSender(sender, kind) {
    sender.transform = new RTCRtpScriptTransform(this.worker, { operation: 'encrypt', kind });
  }

  attachReceiver(receiver, kind) {
    if (receiver.transform) return;
    receiver.transform = new RTCRtpScriptTransform(this.worker, { operation: 'decrypt', kind });
  }

  close() {
    clearTimeout(this.dropTimer);
    this.worker.postMessage({ type: 'close' });
  }
}

// Four groups of five digits from the MLS epoch authenticator (RFC 9420 §8.7): equal on every
// device in the same epoch of the same group, different otherwise.
export function safetyNumber(authenticator) {
  const groups = [];
  for (let i = 0; i < 4; i++) {
    let v = 0n;
    for (let j = 0; j < 5; j++) v = (v << 8n) | BigInt(authenticator[i * 5 + j]);
    groups.push(String(v % 100000n).padStart(5, '0'));
  }
  return groups.join(' ');
}
