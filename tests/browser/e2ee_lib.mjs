// Helpers of the browser E2EE test and benchmark: pages that run the web client's Call (rtc.js)
// with SFrame transforms (e2ee/) keyed from a given MLS epoch, and what they receive.
import { epochKeys } from '../../web/js/e2ee/sframe_mls.js';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Signs a page in (token), joins the consult and starts its call, with E2EE keys or without.
export async function startCall(page, { url, token, consult, keys, safety, e2ee = true, send = true }) {
  await page.goto(`${url}/`);
  await page.evaluate(
    async ({ token, consult, keys, safety, e2ee, send }) => {
      const { Client } = await import('/js/protocol.js');
      const { Call } = await import('/js/rtc.js');
      const { E2ee } = await import('/js/e2ee/e2ee.js');
      const client = new Client();
      await new Promise((resolve, reject) => {
        client.onOpen = async () => {
          try {
            await client.request('auth', { token });
            await client.request('consult.join', { consult });
            resolve();
          } catch (e) {
            reject(e);
          }
        };
        client.connect();
      });
      const stream = send ? await navigator.mediaDevices.getUserMedia({ audio: true, video: true }) : null;
      const box = document.createElement('div');
      document.body.append(box);
      const sec = e2ee ? new E2ee() : null;
      if (sec && keys) sec.setEpoch({ ...keys, baseKey: Uint8Array.from(keys.baseKey) }, safety);
      const call = new Call({
        client,
        consult,
        stream,
        e2ee: sec,
        onTracks: (pid, ms) => {
          let v = box.querySelector(`[data-p="${pid}"]`);
          if (!ms) return v?.remove();
          if (!v) {
            v = document.createElement('video');
            v.dataset.p = pid;
            v.autoplay = true;
            box.append(v);
          }
          v.srcObject = ms;
        },
      });
      window.__t = { call, e2ee: sec };
      await call.start();
    },
    { token, consult, keys, safety, e2ee, send },
  );
}

// Decoded video frames and received audio per participant, and the worker's counters.
export function received(page) {
  return page.evaluate(async () => {
    const { call, e2ee } = window.__t;
    const out = { frames: 0, videoPackets: 0, audioEnergy: 0, audioPackets: 0, heard: 0, sentVideo: 0, e2ee: e2ee ? e2ee.stats : null, safety: e2ee?.safety };
    if (call.sub) {
      for (const s of (await call.sub.pc.getStats()).values()) {
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') {
          out.frames += s.framesDecoded || 0;
          out.videoPackets += s.packetsReceived || 0;
        } else {
          out.audioEnergy += s.totalAudioEnergy || 0;
          out.audioPackets += s.packetsReceived || 0;
          // samples played that were decoded, not made up to hide loss
          out.heard += (s.totalSamplesReceived || 0) - (s.concealedSamples || 0);
        }
      }
    }
    if (call.pub) {
      for (const s of (await call.pub.pc.getStats()).values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') out.sentVideo += s.framesEncoded || 0;
      }
    }
    return out;
  });
}

export async function until(page, pred, what, timeout = 30000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await received(page);
    if (pred(last)) return last;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeout} ms: ${JSON.stringify(last)}`);
    await sleep(500);
  }
}

export const keysOf = (g) => {
  const k = epochKeys(g);
  return { epoch: k.epoch.toString(), baseKey: [...k.baseKey], leafCount: k.leafCount, ownLeaf: k.ownLeaf };
};

