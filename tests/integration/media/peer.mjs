// A consult participant built on werift (an independent WebRTC stack in TypeScript): one
// publish connection (client offers, media.publish answers) and one subscribe connection
// (media.subscribe, then the relay's media.offer events answered with media.answer), with
// candidates trickled both ways as docs/protocol.md section 5.7 describes.
//
// It publishes synthetic RTP: VP8 at ~30 packets/s and Opus at ~50 packets/s. Every payload
// starts with a 4-byte magic ("SPKV" / "SPKA"), a 4-byte publisher tag and a 4-byte counter, so
// a receiver can tell whose packet it got and whether it skipped any.
import {
  GenericNack, MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtcpTransportLayerFeedback,
  RtpHeader, RtpPacket,
} from 'werift';

// Loopback only: werift also gathers on the host's other interfaces (when not run in a
// loopback-only namespace); those candidates are never handed to the relay.
const onLoopback = (cand) => {
  const f = cand.split(' ');
  return f.length > 5 && f[4] === '127.0.0.1';
};
export const loopbackOnly = (sdp) => sdp.split('\r\n')
  .filter((l) => !l.startsWith('a=candidate:') || onLoopback(l)).join('\r\n');

export const MAGIC = { video: Buffer.from('SPKV'), audio: Buffer.from('SPKA') };

const VP8 = () => new RTCRtpCodecParameters({
  mimeType: 'video/VP8', clockRate: 90000,
  rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
});
const OPUS = () => new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 });

// Parses one of our payloads; null for anything else. A VP8 payload carries a 1-byte payload
// descriptor (S bit, partition 0) in front so that it is a well-formed VP8 RTP payload.
export function parsePayload(kind, payload) {
  const off = kind === 'video' ? 1 : 0;
  if (payload.length < off + 12) return null;
  if (!payload.subarray(off, off + 4).equals(MAGIC[kind])) return null;
  return { tag: payload.readUInt32BE(off + 4), counter: payload.readUInt32BE(off + 8) };
}

function makePayload(kind, tag, counter, videoBytes = 400) {
  const body = Buffer.alloc(kind === 'video' ? videoBytes : 80);
  const off = kind === 'video' ? 1 : 0;
  if (kind === 'video') body[0] = 0x10; // VP8 descriptor: S=1, PID=0
  MAGIC[kind].copy(body, off);
  body.writeUInt32BE(tag >>> 0, off + 4);
  body.writeUInt32BE(counter >>> 0, off + 8);
  return body;
}

// setRemoteDescription of a subscribe offer, around a werift 0.24.4 defect: for an m-section new
// in a remote offer it recycles the transceiver of any m-section it last answered inactive
// (TransceiverManager.addTransceiver, "reuse inactive"), also when the offer still has that
// m-section. That transceiver's mid is then gone, createAnswer throws "Transceiver with mid=…
// not found" and the offer is never answered: when it was the only offer whose answer the relay
// would take (quick offers after relay_node_lost: the older ones are answered stale), the relay
// never learns the subscriber's ICE credentials and fails the connection ("ICE connectivity
// checks failed"). In JSEP (RFC 8829 5.10) a new m-section may only take a transceiver that is
// associated with no m-section, and one whose mid the offer still has stays associated: so those
// transceivers are kept out of werift's reuse while the offer applies.
async function applyOffer(pc, sdp) {
  const mids = new Set([...sdp.matchAll(/^a=mid:(\S+)/gm)].map((m) => m[1]));
  const kept = pc.getTransceivers().filter((t) => mids.has(t.mid) && !t.usedForSender);
  for (const t of kept) t.usedForSender = true; // werift: "should not be reused"
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp });
  } finally {
    for (const t of kept) t.usedForSender = false;
  }
}

export class Peer {
  /**
   * @param {import('../lib/client.mjs').Client} client  an authenticated protocol client
   * @param {string} consult  consult id (joined already)
   * @param {number} tag      a number put into every payload this peer publishes
   * @param {object} [rtcConfig]  extra werift configuration (e.g. iceServers, iceTransportPolicy)
   * @param {object} [opts]
   * @param {boolean} [opts.rebuildOnFailure]  on media.state "failed" for either connection,
   *   rebuild both as the browser client does (web/js/rtc.js rebuild): media.stop, new
   *   connections, publish and subscribe again
   */
  constructor(client, consult, tag, rtcConfig = {}, { rebuildOnFailure = false } = {}) {
    this.client = client;
    this.consult = consult;
    this.tag = tag;
    this.rebuildOnFailure = rebuildOnFailure;
    this.rebuilds = [];     // {at, done} per rebuild (ms since the epoch)
    this.rebuilding = null;
    this.gen = 0;           // bumped by each rebuild
    // Says "e2ee": true in media.publish and media.subscribe (a consult that requires it,
    // protocol.md §5.7). The payload stays this peer's synthetic one: the relay forwards it
    // exactly as it forwards SFrame frames, without reading it (relay/README.md).
    this.e2ee = false;
    this.rtcConfig = {
      iceServers: [],
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
      codecs: { audio: [OPUS()], video: [VP8()] },
      ...rtcConfig,
    };
    this.localCands = { publish: [], subscribe: [] };
    this.receivers = new Set(); // every receiver the subscribe connection had
    this.states = { publish: [], subscribe: [] };
    this._makeConnections();
    this.sent = { video: 0, audio: 0 };
    this.timers = [];
    this.offers = [];       // media.offer events handled
    this.offersIn = [];     // media.offer events as they arrive (handled or held)
    this.candEvents = [];   // media.candidate events, as received
    this.stateEvents = [];  // media.state events, as received
    this.answerErrors = [];
    this.streams = new Map(); // mid -> {participant, kind}
    // received[kind] : Map ssrc -> {tags:Set, count, first, last, pt, counters:Set, firstSeq, lastSeq}
    this.received = { video: new Map(), audio: new Map() };
    this.foreign = 0; // packets whose payload was not ours
    this._queue = Promise.resolve();
    this._onEvent = this._onEvent.bind(this);
  }

  // New publish and subscribe connections (and tracks): at the start and for each rebuild.
  _makeConnections() {
    this.pub = new RTCPeerConnection(this.rtcConfig);
    this.sub = new RTCPeerConnection(this.rtcConfig);
    this.pcs = { publish: this.pub, subscribe: this.sub };
    this.pendingCands = { publish: [], subscribe: [] };
    this.tracks = { video: new MediaStreamTrack({ kind: 'video' }), audio: new MediaStreamTrack({ kind: 'audio' }) };
    this.videoTx = null;
    this.audioTx = null;
    for (const name of ['publish', 'subscribe']) {
      const pc = this.pcs[name];
      pc.onicecandidate = ({ candidate }) => {
        if (pc !== this.pcs[name]) return; // a connection a rebuild replaced
        const c = candidate ? candidate.candidate : '';
        if (c && !onLoopback(c)) return;
        if (c) this.localCands[name].push(c);
        this.client.req('media.candidate', { consult: this.consult, pc: name, candidate: c }).catch(() => {});
      };
      pc.connectionStateChange.subscribe((s) => {
        if (pc === this.pcs[name]) this.states[name].push(s);
      });
    }
    this.sub.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => this._onRtp(track.kind, rtp));
    });
  }

  // Closes both connections at the relay and here and sets them up again, as the browser client
  // does after the relay reports a failure. One at a time; resolves when both are requested.
  rebuild() {
    if (this.rebuilding) return this.rebuilding;
    const entry = { at: Date.now(), done: 0 };
    this.rebuilds.push(entry);
    this.rebuilding = (async () => {
      try {
        await this.client.req('media.stop', { consult: this.consult });
        // Everything after media.stop's reply is about the new connections.
        this.gen += 1;
        this._queue = Promise.resolve();
        const old = [this.pub, this.sub];
        const oldReceivers = [...this.receivers];
        this._makeConnections();
        await Promise.allSettled(old.map((pc) => pc.close()));
        for (const r of oldReceivers) r.nack?.close?.();
        await this.publish();
        const s = await this.client.req('media.subscribe', { consult: this.consult, e2ee: this.e2ee });
        if (s.type !== 'ok') throw new Error(`media.subscribe: ${s.code} ${s.message}`);
        entry.done = Date.now();
      } catch (err) {
        this.answerErrors.push(`rebuild: ${err.message}`);
      } finally {
        this.rebuilding = null;
      }
    })();
    return this.rebuilding;
  }

  _onRtp(kind, rtp) {
    const p = parsePayload(kind, rtp.payload);
    if (!p) {
      this.foreign++;
      return;
    }
    const ssrc = rtp.header.ssrc;
    let r = this.received[kind].get(ssrc);
    if (!r) {
      r = {
        tags: new Set(), count: 0, first: p.counter, last: p.counter, pt: rtp.header.payloadType,
        counters: new Set(), firstSeq: rtp.header.sequenceNumber, lastSeq: rtp.header.sequenceNumber,
      };
      this.received[kind].set(ssrc, r);
    }
    r.tags.add(p.tag);
    r.count++;
    r.last = Math.max(r.last, p.counter);
    r.counters.add(p.counter);
    r.lastSeq = rtp.header.sequenceNumber;
  }

  // Feeds the client's buffered and future events to this peer.
  _pump() {
    const c = this.client;
    const take = () => {
      const idx = c.events.findIndex((e) => (e.type === 'media.offer' || e.type === 'media.candidate' ||
        e.type === 'media.state') && e.consult === this.consult);
      if (idx < 0) return false;
      const [e] = c.events.splice(idx, 1);
      this._onEvent(e);
      return true;
    };
    while (take());
    // Wrap the client's dispatcher so that media events go straight to the peer.
    const orig = c._onMessage.bind(c);
    c._onMessage = (data, isBinary) => {
      const msg = JSON.parse(data.toString());
      if ((msg.type === 'media.offer' || msg.type === 'media.candidate' || msg.type === 'media.state') &&
          msg.consult === this.consult) {
        this._onEvent(msg);
        return;
      }
      orig(data, isBinary);
    };
    this._restore = () => { c._onMessage = orig; };
  }

  // Holds back the handling of media events (offers are not applied or answered) until the
  // returned function is called, as a client busy elsewhere would; offersIn shows what came.
  hold() {
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    this._queue = this._queue.then(() => gate);
    return release;
  }

  _onEvent(e) {
    if (e.type === 'media.offer') this.offersIn.push(e);
    // Serialise: a candidate may arrive while the offer is being applied. Events queued for
    // connections a rebuild has replaced are skipped (their handling may never finish).
    const gen = this.gen;
    this._queue = this._queue.then(() => (gen === this.gen ? this._handle(e) : null)).catch((err) => {
      this.answerErrors.push(`${e.type}: ${err.message}`);
    });
  }

  async _handle(e) {
    if (e.type === 'media.state') {
      this.stateEvents.push(e);
      this.states[e.pc].push(`relay:${e.state}`);
      // Not awaited: the rebuild's own offers come through this queue.
      if (e.state === 'failed' && this.rebuildOnFailure) this.rebuild();
      return;
    }
    if (e.type === 'media.candidate') {
      this.candEvents.push(e);
      const pc = this.pcs[e.pc];
      if (!pc.remoteDescription) {
        this.pendingCands[e.pc].push(e.candidate);
        return;
      }
      await this._addCandidate(pc, e.candidate);
      return;
    }
    // media.offer
    this.offers.push(e);
    for (const s of e.streams ?? []) this.streams.set(s.mid, s);
    await applyOffer(this.sub, e.sdp);
    for (const t of this.sub.getTransceivers()) this.receivers.add(t.receiver);
    for (const c of this.pendingCands.subscribe.splice(0)) await this._addCandidate(this.sub, c);
    const answer = await this.sub.createAnswer();
    await this.sub.setLocalDescription(answer);
    const r = await this.client.req('media.answer', {
      consult: this.consult, sdp: loopbackOnly(this.sub.localDescription.sdp), version: e.version,
    });
    if (r.type !== 'ok') this.answerErrors.push(`media.answer v${e.version}: ${r.code} ${r.message}`);
  }

  async _addCandidate(pc, cand) {
    const mid = pc.remoteDescription?.sdp.match(/^a=mid:(\S+)/m)?.[1] ?? '0';
    if (!cand) return; // end of candidates: nothing werift needs
    await pc.addIceCandidate({ candidate: cand, sdpMid: mid, sdpMLineIndex: 0 });
  }

  // Publishes (offer → media.publish → answer) and subscribes; either may be left out. Returns
  // the relay's answer SDP (undefined without publish).
  async start({ publish = true, subscribe = true } = {}) {
    this._pump();
    if (publish) await this.publish();
    if (subscribe) {
      const s = await this.client.req('media.subscribe', { consult: this.consult, e2ee: this.e2ee });
      if (s.type !== 'ok') throw new Error(`media.subscribe: ${s.code} ${s.message}`);
    }
    return this.answerSdp;
  }

  // The publish offer (creates the transceivers once); then media.publish and the answer.
  async publishOffer() {
    if (!this.videoTx) {
      this.videoTx = this.pub.addTransceiver(this.tracks.video, { direction: 'sendonly' });
      this.audioTx = this.pub.addTransceiver(this.tracks.audio, { direction: 'sendonly' });
    }
    const offer = await this.pub.createOffer();
    await this.pub.setLocalDescription(offer);
    this.offerSdp = loopbackOnly(this.pub.localDescription.sdp);
    return this.offerSdp;
  }

  async publish() {
    await this.publishOffer();
    const r = await this.client.req('media.publish', { consult: this.consult, sdp: this.offerSdp, e2ee: this.e2ee });
    if (r.type !== 'ok') throw new Error(`media.publish: ${r.code} ${r.message}\n--- offer ---\n${this.offerSdp}`);
    this.answerSdp = r.sdp;
    await this.pub.setRemoteDescription({ type: 'answer', sdp: r.sdp });
    for (const c of this.pendingCands.publish.splice(0)) await this._addCandidate(this.pub, c);
    return r.sdp;
  }

  // Sends a generic NACK for `seqs` of the publisher stream `ssrc` on the subscribe connection.
  async nack(ssrc, seqs) {
    const dtls = this.sub.getReceivers().find((r) => r.dtlsTransport)?.dtlsTransport;
    if (!dtls) throw new Error('no subscribe transport');
    for (let i = 0; i < seqs.length; i += 100) {
      const feedback = new GenericNack({ senderSsrc: 1234, mediaSourceSsrc: ssrc, lost: seqs.slice(i, i + 100) });
      await dtls.sendRtcp([new RtcpTransportLayerFeedback({ feedback })]);
    }
  }

  // The SSRCs this peer's senders stamp on their packets.
  ssrcs() {
    return { video: this.videoTx.sender.ssrc, audio: this.audioTx.sender.ssrc };
  }

  // Starts writing synthetic RTP (~30 video and ~50 audio packets per second; videoBytes and
  // videoMs change the video payload size and spacing). Writes to the current tracks, so that
  // sending carries on across a rebuild.
  startSending({ videoBytes = 400, videoMs = 33 } = {}) {
    const send = (kind, tsStep) => {
      let seq = 1000;
      let ts = 5000;
      return () => {
        if (!this.tracks[kind]) return;
        const n = this.sent[kind]++;
        const header = new RtpHeader({
          version: 2, padding: false, extension: false, marker: kind === 'video',
          payloadType: 0, sequenceNumber: seq, timestamp: ts, ssrc: 0,
        });
        seq = (seq + 1) & 0xffff;
        ts = (ts + tsStep) >>> 0;
        this.tracks[kind].writeRtp(new RtpPacket(header, makePayload(kind, this.tag, n, videoBytes)));
      };
    };
    this.timers.push(setInterval(send('video', 3000), videoMs));
    this.timers.push(setInterval(send('audio', 960), 20));
  }

  stopSending() {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  // Packets received so far from publisher `tag`, per kind.
  countFrom(tag) {
    const out = { video: 0, audio: 0, ssrcs: { video: [], audio: [] } };
    for (const kind of ['video', 'audio']) {
      for (const [ssrc, r] of this.received[kind]) {
        if (r.tags.has(tag)) {
          out[kind] += r.count;
          out.ssrcs[kind].push(ssrc);
        }
      }
    }
    return out;
  }

  // Everything received, for assertion messages.
  summary() {
    const s = {};
    for (const kind of ['video', 'audio']) {
      s[kind] = [...this.received[kind]].map(([ssrc, r]) => ({ ssrc, tags: [...r.tags], count: r.count, first: r.first, last: r.last, pt: r.pt }));
    }
    return {
      ...s, foreign: this.foreign, sent: this.sent, states: this.states,
      offers: this.offers.map((o) => o.version), errors: this.answerErrors,
    };
  }

  async close() {
    this.stopSending();
    this._restore?.();
    // werift's close() can wait on a transport whose far end is gone (a killed relay node):
    // give it 5 s, then drop the peer as it is.
    let timer;
    const gaveUp = new Promise((resolve) => {
      timer = setTimeout(resolve, 5000);
      timer.unref();
    });
    await Promise.race([Promise.allSettled([this.pub.close(), this.sub.close()]), gaveUp]);
    clearTimeout(timer);
    // werift 0.24 leaves a receiver's NACK timer running forever once it gave up on a lost
    // packet, also for receivers of m-sections a later offer removed: stop them all.
    for (const r of this.receivers) r.nack?.close?.();
  }
}

// Polls `fn` until it returns truthy or `ms` pass; returns the last value.
export async function waitFor(fn, ms, step = 100) {
  const end = Date.now() + ms;
  let v;
  while (!(v = await fn()) && Date.now() < end) await new Promise((r) => setTimeout(r, step));
  return v;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
