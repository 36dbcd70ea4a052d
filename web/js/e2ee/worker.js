// The media worker of end-to-end encryption: RTCRtpScriptTransform encrypts every outgoing
// encoded audio and video frame with SFrame and decrypts every incoming one, with keys from the
// consult's MLS group that the page posts here (docs/sframe.md "In the browser").
//
// A frame goes out as   clear || SFrame(rest)   where `clear` is the part the browser's RTP
// packetizer and depacketizer read (VP8: the first 10 bytes of a key frame — frame tag, start
// code, size — and 3 of a delta frame; Opus: the TOC byte); `clear` is authenticated as SFrame
// metadata, so nobody can change it unnoticed. Nothing is ever sent unencrypted: without a key
// a frame is dropped. A frame that does not decrypt is dropped and counted.
import { SFrameMls } from './sframe_mls.js';

const CLEAR = { audio: 1, key: 10, delta: 3 };
const media = new SFrameMls();
const stats = { encrypted: 0, decrypted: 0, dropped_no_key: 0, dropped_not_ours: 0, failed: 0, epoch: null };
let statsTimer = 0;
// The time each frame spends in the transform (its added latency), over the last RING frames
// per operation: performance.now() resolution (5–100 µs, the browser's choice) limits one
// sample; the mean over many is what a benchmark quotes.
const RING = 2048;
const spent = { encrypt: { at: 0, n: 0, ms: new Float64Array(RING) }, decrypt: { at: 0, n: 0, ms: new Float64Array(RING) } };

function took(op, t0) {
  const r = spent[op];
  r.ms[r.at] = performance.now() - t0;
  r.at = (r.at + 1) % RING;
  r.n++;
}

function latency(op) {
  const r = spent[op];
  const k = Math.min(r.n, RING);
  if (!k) return null;
  const v = Array.from(r.ms.subarray(0, k)).sort((a, b) => a - b);
  const us = (x) => Math.round(x * 1000);
  return { frames: r.n, mean_us: us(v.reduce((a, b) => a + b, 0) / k), p50_us: us(v[k >> 1]), p99_us: us(v[Math.min(k - 1, Math.floor(k * 0.99))]) };
}

function clearBytes(kind, frame) {
  return kind === 'audio' ? CLEAR.audio : frame.type === 'key' ? CLEAR.key : CLEAR.delta;
}

function report() {
  statsTimer = 0;
  self.postMessage({
    type: 'stats',
    stats: {
      ...stats,
      epoch: stats.epoch === null ? null : Number(stats.epoch),
      latency: { encrypt: latency('encrypt'), decrypt: latency('decrypt') },
    },
  });
}

function count(field) {
  stats[field]++;
  if (!statsTimer) statsTimer = setTimeout(report, 250);
}

function encrypter(kind) {
  const context = kind === 'audio' ? 0 : 1;
  return async (frame, controller) => {
    const t0 = performance.now();
    if (media.sendEpoch === null) return count('dropped_no_key');
    const data = new Uint8Array(frame.data);
    const n = Math.min(clearBytes(kind, frame), data.length);
    const clear = data.subarray(0, n);
    try {
      const sealed = await media.encrypt(context, data.subarray(n), clear);
      const out = new Uint8Array(n + sealed.length);
      out.set(clear, 0);
      out.set(sealed, n);
      frame.data = out.buffer;
      controller.enqueue(frame);
      took('encrypt', t0);
      count('encrypted');
    } catch {
      count('failed');
    }
  };
}

function decrypter(kind) {
  return async (frame, controller) => {
    const t0 = performance.now();
    const data = new Uint8Array(frame.data);
    const n = clearBytes(kind, frame);
    if (data.length <= n) return count('failed');
    try {
      const r = await media.decrypt(data.subarray(n), data.subarray(0, n));
      const out = new Uint8Array(n + r.pt.length);
      out.set(data.subarray(0, n), 0);
      out.set(r.pt, n);
      frame.data = out.buffer;
      controller.enqueue(frame);
      took('decrypt', t0);
      count('decrypted');
    } catch (e) {
      count(e && e.code === 'not_found' ? 'dropped_not_ours' : 'failed');
    }
  };
}

self.onrtctransform = (event) => {
  const t = event.transformer;
  const { operation, kind } = t.options;
  const transform = operation === 'encrypt' ? encrypter(kind) : decrypter(kind);
  t.readable.pipeThrough(new TransformStream({ transform })).pipeTo(t.writable).catch(() => {});
};

self.onmessage = async (event) => {
  const m = event.data;
  try {
    if (m.type === 'epoch') {
      await media.addEpoch({ epoch: BigInt(m.epoch), baseKey: m.baseKey, leafCount: m.leafCount, ownLeaf: m.ownLeaf });
      m.baseKey.fill(0);
      stats.epoch = BigInt(m.epoch);
      report();
    } else if (m.type === 'drop_before') {
      media.dropBefore(BigInt(m.epoch));
    } else if (m.type === 'close') {
      media.close();
      self.close();
    }
  } catch (e) {
    self.postMessage({ type: 'error', message: String(e && e.message) });
  }
};
