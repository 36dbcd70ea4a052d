// The media worker of end-to-end encryption: RTCRtpScriptTransform encrypts every outgoing
// encoded audio and video frame with SFrame and decrypts every incoming one, with keys from the
// consult's MLS group that the page posts here (docs/sframe.md "In the browser").
//
// A frame goes out as   clear || SFrame(rest)   where `clear` is the part the browser's RTP
// packetizer and depacketizer read (VP8: the first 10 bytes of a key frame — frame tag, start
// code, size — and 3 of a delta frame; Opus: the TOC byte); `clear` is authenticated as SFrame
// metadata, so nobody can change it unnoticed. Nothing is ever sent unencrypted: without a key
// a frame is dropped. A received frame whose key has not arrived yet waits for it (at most
// HOLD_MS, below); a frame that does not decrypt is dropped and counted.
import { SFrameMls } from './sframe_mls.js';
import { decodeHeader } from './sframe.js';

const CLEAR = { audio: 1, key: 10, delta: 3 };
const media = new SFrameMls();
// released: frames decrypted after waiting for their key (counted in decrypted too);
// key_frames_asked: requests to the video encoders for a key frame when a new epoch came.
const stats = {
  encrypted: 0,
  decrypted: 0,
  released: 0,
  dropped_no_key: 0,
  dropped_not_ours: 0,
  failed: 0,
  key_frames_asked: 0,
  epoch: null,
};
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

// Counters are reported at most every REPORT_MS, and at once when one moves after standing
// still that long (the first frame decrypted after a key arrives shows without delay).
const REPORT_MS = 250;
const moved = {};

function count(field) {
  stats[field]++;
  const now = performance.now();
  const idle = now - (moved[field] ?? -Infinity) >= REPORT_MS;
  moved[field] = now;
  if (idle) {
    clearTimeout(statsTimer);
    report();
  } else if (!statsTimer) statsTimer = setTimeout(report, REPORT_MS);
}

// The video senders' encoders: asked for a key frame whenever a new epoch is installed. With
// the first key, the frames before it (the key frame that starts the stream among them) were
// dropped; after a Commit that added a member, that member has no key for the epochs before,
// so the stream must start again from a key frame it can decrypt (else its decoder waits for
// a key frame request to reach this encoder through the relay).
const keyFrameAsks = new Set();

function encrypter(kind, transformer) {
  const context = kind === 'audio' ? 0 : 1;
  const ask = () => {
    count('key_frames_asked');
    Promise.resolve()
      .then(() => transformer.generateKeyFrame())
      .catch(() => {});
  };
  if (kind === 'video' && typeof transformer.generateKeyFrame === 'function') keyFrameAsks.add(ask);
  return { transform: encryptFrame, flush: () => keyFrameAsks.delete(ask) };

  async function encryptFrame(frame, controller) {
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
  }
}

// Frames that arrive before their key (a call's first frames: media is up before the device's
// Welcome is processed; and after a Commit, frames of the new epoch before the page posts it)
// wait here, per receiver, for HOLD_MS at most, and are decrypted in order when an epoch is
// installed; a frame that arrives meanwhile queues behind them. Video keeps only the frames
// from the latest key frame on (the decoder cannot use older ones), audio the latest
// HOLD_AUDIO. So the first key frame of a call is not lost to a key that comes a little later,
// and the decoder does not have to ask the sender for another.
const HOLD_MS = 2000;
const HOLD_AUDIO = 50;
const receivers = new Set();

// Could a key for this frame still come? No epoch installed yet, or its epoch bits are a
// little ahead of the newest installed epoch's.
function keyMayCome(data) {
  const newest = media.sendEpoch;
  if (newest === null) return true;
  try {
    const { kid } = decodeHeader(data);
    const mask = (1n << media.E) - 1n;
    const ahead = ((kid & mask) - (newest & mask)) & mask;
    return ahead > 0n && ahead <= mask >> 1n;
  } catch {
    return false;
  }
}

function decrypter(kind) {
  const held = []; // { frame, at } in arrival order
  let controller = null;
  let draining = false;

  // 'ok', 'wait' (no key yet) or the counter of a dropped frame.
  async function open(frame) {
    const data = new Uint8Array(frame.data);
    const n = clearBytes(kind, frame);
    if (data.length <= n) return 'failed';
    const t0 = performance.now();
    try {
      const r = await media.decrypt(data.subarray(n), data.subarray(0, n));
      const out = new Uint8Array(n + r.pt.length);
      out.set(data.subarray(0, n), 0);
      out.set(r.pt, n);
      frame.data = out.buffer;
      took('decrypt', t0);
      return 'ok';
    } catch (e) {
      if (!e || e.code !== 'not_found') return 'failed';
      return keyMayCome(data.subarray(n)) ? 'wait' : 'dropped_not_ours';
    }
  }

  function hold(frame) {
    const now = performance.now();
    if (kind === 'video' && frame.type === 'key') {
      for (const _ of held.splice(0)) count('dropped_not_ours');
    }
    held.push({ frame, at: now });
    while (held.length && (now - held[0].at > HOLD_MS || (kind === 'audio' && held.length > HOLD_AUDIO))) {
      held.shift();
      count('dropped_not_ours');
    }
  }

  // Decrypts the held frames in order while their keys are there; a frame still waiting for
  // its key stops the drain (unless its time is up). A frame stays first in `held` until it is
  // passed on, so one arriving meanwhile queues behind it.
  async function drain() {
    if (draining) return;
    draining = true;
    try {
      while (held.length) {
        const h = held[0];
        const r = await open(h.frame);
        if (r === 'wait' && performance.now() - h.at <= HOLD_MS) break;
        held.shift();
        if (r === 'ok') {
          controller.enqueue(h.frame);
          count('decrypted');
          count('released');
        } else count(r === 'wait' ? 'dropped_not_ours' : r);
      }
    } catch {
      // the stream ended: nothing more to pass on
      held.length = 0;
      receivers.delete(rx);
    } finally {
      draining = false;
    }
  }

  const rx = { drain };
  receivers.add(rx);
  const transform = async (frame, c) => {
    controller = c;
    if (held.length) return hold(frame);
    const r = await open(frame);
    if (r === 'ok') {
      c.enqueue(frame);
      count('decrypted');
    } else if (r === 'wait') hold(frame);
    else count(r);
  };
  return { transform, flush: () => receivers.delete(rx) };
}

self.onrtctransform = (event) => {
  const t = event.transformer;
  const { operation, kind } = t.options;
  const stage = operation === 'encrypt' ? encrypter(kind, t) : decrypter(kind);
  t.readable.pipeThrough(new TransformStream(stage)).pipeTo(t.writable).catch(() => {});
};

self.onmessage = async (event) => {
  const m = event.data;
  try {
    if (m.type === 'epoch') {
      await media.addEpoch({ epoch: BigInt(m.epoch), baseKey: m.baseKey, leafCount: m.leafCount, ownLeaf: m.ownLeaf });
      m.baseKey.fill(0);
      stats.epoch = BigInt(m.epoch);
      report();
      for (const rx of receivers) rx.drain();
      for (const ask of keyFrameAsks) ask();
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
