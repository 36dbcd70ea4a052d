// Audio and video of one consult through the media relay (docs/protocol.md, 5.7): a publish
// connection (this side offers its camera and microphone) and a subscribe connection (the relay
// offers everyone else's streams), both signalled over the protocol client.

// iceCandidatePoolSize: each connection starts gathering its candidates when it is made, not
// when its local description is set, so ICE starts as soon as the offer or answer is applied.
const PC_CONFIG = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', iceCandidatePoolSize: 1 };
// How long ICE may stay "disconnected" before this side restarts it. A short outage needs
// nothing: neither side gives up on the connection (the relay keeps an endpoint for 30 s of
// silence), so ICE and media come back by themselves when the network does. Only a connection
// that stays broken longer (a changed network) is restarted; "failed" is acted on at once.
const DISCONNECTED_GRACE_MS = 10000;
// After a failed rebuild, the next attempt waits this long (doubling up to the maximum).
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;
// When ICE breaks, the WebSocket may be dead too (a changed network) without either side
// noticing for a long time. A ping is sent; TCP delivers it once the network is back, however
// long the outage, so the WebSocket is given up only when the ping stays unanswered this long
// (the outage then lasted long enough that the connections are restarted anyway).
const SIGNALING_DEAD_MS = 12000;
// Simulcast (docs/protocol.md 5.7, Simulcast): the camera is sent as layers, lowest first, and
// the relay forwards to each subscriber the one its link carries. Three layers from 960 pixels wide, two
// below (the page asks for 640x480): Chromium's encoder sends no more at those sizes, and
// leaves out the top ones, not the bottom ones, when asked for more.
const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 350000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 },
];

// The publish chain when no offer was made yet (Call.publish).
const PUB_IDLE = Promise.resolve();
// How long a prepared call's publish answer waits for the first subscribe answer (prepare()).
const FIRST_ANSWER_WAIT_MS = 400;

function simulcastEncodings(track) {
  const width = (track && track.getSettings && track.getSettings().width) || 640;
  return SIMULCAST.slice(width >= 960 ? 0 : 1).map((e) => ({ ...e }));
}

// Whether TURN credentials are good for new allocations for another minute (the username is
// "<expiry>:<user id>", docs/protocol.md); servers without a username need none.
function iceServersValid(servers) {
  const now = Date.now() / 1000;
  return servers.every((s) => {
    if (!s || typeof s.username !== 'string') return true;
    const expiry = Number(s.username.split(':')[0]);
    return Number.isFinite(expiry) && expiry - now > 60;
  });
}

// Media states, for the page: 'idle' | 'connecting' | 'connected' | 'reconnecting' |
// 'unavailable' (the server offers no media) | 'elsewhere' (another connection of this
// participant took the call over) | 'closed'.
export class Call {
  // client: protocol Client; consult: consult id; stream: local MediaStream or null.
  // onTracks(participant, MediaStream|null): the remote tracks of a participant (null: gone).
  // onState(state): see above.
  constructor({
    client,
    consult,
    stream = null,
    sendVideo = true,
    onTracks = () => {},
    onState = () => {},
    e2ee = null,
    simulcast = true,
    iceServers = null,
  }) {
    this.simulcast = simulcast; // publish the camera as layers (SIMULCAST)
    this.e2ee = e2ee; // E2ee (e2ee/e2ee.js): every frame encrypted with SFrame, or null
    this.client = client;
    this.consult = consult;
    this.stream = stream;
    this.onTracks = onTracks;
    this.onState = onState;
    this.state = 'idle';
    this.closed = false;
    this.sendVideo = sendVideo;
    this.pub = null; // { pc, pending: [], remoteSet, audio, video, timer }
    this.sub = null; // { pc, pending: [], remoteSet, timer, chain }
    this.subscribing = null; // Promise of a media.subscribe in flight
    this.streams = []; // the last offer's streams list
    this.remote = new Map(); // participant -> MediaStream
    this.offs = [];
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = 0;
    this.restarts = 0;
    this.refusals = 0;
    this.rebuilding = null;
    this.subGen = 0;
    this.stashOffers = null;
    this.pubChain = PUB_IDLE;
    this.hadStreams = false;
    // TURN servers from the server's answers (ice_servers), else none. `iceServers`: what the
    // page already has from invite.redeem or consult.join ([] when that answer had none: the
    // server has no TURN), or null.
    this.iceServers = Array.isArray(iceServers) ? iceServers : [];
    this.iceKnown = Array.isArray(iceServers);
    this.offs.push(client.on('media.offer', (m) => this.onOffer(m)));
    this.offs.push(client.on('media.candidate', (m) => this.onCandidate(m)));
    this.offs.push(client.on('media.state', (m) => this.onRelayState(m)));
    // The relay withholds video while this subscriber's link cannot carry it (audio-only
    // fallback, protocol.md 5.7); the status line says why.
    this.videoPaused = false;
    this.offs.push(client.on('media.video', (m) => this.onVideo(m)));
    this.offs.push(client.on('connection', (m) => this.onSignaling(m.state)));
    this.signalingDown = false;
    this.checkingSignaling = false;
    this.started = false; // start() was called (prepare() alone says nothing to the server)
    this.subFirst = null; // prepare(): resolves when the first subscribe offer is answered
    this.subFirstDone = null;
    this.firstUp = null; // prepare(): resolves when the first subscribe connection is connected
    this.firstUpDone = null;
  }

  // After the WebSocket was down the relay may have dropped both connections (they belonged to
  // the old one): both are built again once the session is restored.
  onSignaling(state) {
    if (this.closed || !this.started) return; // a prepared call has nothing at the relay yet
    if (state !== 'open') {
      this.signalingDown = true;
    } else if (this.signalingDown) {
      this.signalingDown = false;
      this.rebuild();
    }
  }

  async checkSignaling() {
    const client = this.client;
    if (this.closed || this.checkingSignaling || client.state !== 'open') return;
    this.checkingSignaling = true;
    try {
      const alive = await Promise.race([
        client.request('ping').then(
          () => true,
          () => true, // refused or lost: the client handles that itself
        ),
        new Promise((resolve) => setTimeout(() => resolve(false), SIGNALING_DEAD_MS)),
      ]);
      if (!alive && !this.closed && client.state === 'open' && this.iceBroken()) {
        this.signalingDown = true;
        client.reconnectNow();
      }
    } finally {
      this.checkingSignaling = false;
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  async request(type, fields = {}) {
    const res = await this.client.request(type, { consult: this.consult, ...fields });
    // With TURN configured the server hands out (fresh) credentials with its answers.
    if (res && Array.isArray(res.ice_servers)) this.iceServers = res.ice_servers;
    return res;
  }

  pcConfig() {
    return { ...PC_CONFIG, iceServers: this.iceServers };
  }

  // Makes both connections before the call may start (a patient in the lobby), without a word
  // to the server: the publish connection with its offer set locally, its candidates held back,
  // and the first subscribe connection, both gathering candidates meanwhile. start() then sends
  // its requests at once instead of first building connections and an offer. Only when the TURN
  // servers are known and valid (they would be stale otherwise); start() replaces a prepared
  // connection whose TURN credentials have run out meanwhile.
  // Both requests leaving together, the page's work for both connections would coincide: the
  // publish answer is therefore applied (and the publish connection's ICE, DTLS and encoder
  // started) only once the first subscribe offer is answered, so that the patient's first
  // remote frame is not queued behind the page's own sending; the relay's side of the publish
  // connection is ready meanwhile.
  prepare() {
    const known = this.iceKnown && iceServersValid(this.iceServers);
    if (this.closed || this.pub || this.sub || !known) return Promise.resolve();
    const sub = this.replaceSubscribe();
    sub.prepared = true;
    this.subFirst = new Promise((resolve) => {
      this.subFirstDone = resolve;
    });
    this.firstUp = new Promise((resolve) => {
      this.firstUpDone = resolve;
    });
    const pub = (this.pub = this.newPublish());
    pub.hold = [];
    pub.prepared = (async () => {
      const offer = await pub.pc.createOffer();
      await pub.pc.setLocalDescription(offer);
      pub.offerSet = true;
    })();
    return pub.prepared.catch(() => {});
  }

  // Whether a prepared connection can still be used: open, and the TURN credentials it gathered
  // with still good.
  usable(conn) {
    const servers = conn.pc.getConfiguration().iceServers || [];
    return conn.pc.signalingState !== 'closed' && iceServersValid(servers);
  }

  // Sets up both connections: at once when the TURN servers are known and still valid (or the
  // server has none), else subscribe first, so that the publish connection has the TURN
  // servers from its answer. Resolves when the publish offer is answered; media follows when
  // ICE and DTLS are done.
  async start() {
    this.started = true;
    this.setState('connecting');
    try {
      if (this.iceKnown && iceServersValid(this.iceServers)) {
        await Promise.all([this.subscribe(), this.publish()]);
      } else {
        await this.subscribe();
        await this.publish();
      }
      this.refusals = 0;
    } catch (err) {
      if (this.closed) return;
      const code = err && err.code;
      // Not (or no longer) admitted: media starts again when the page calls start() after the
      // next `admitted`.
      if (code === 'bad_state') {
        this.dropConnections();
        this.setState('idle');
        throw err;
      }
      // A server without media (or without this participant's right to it) keeps saying so.
      if (code === 'unknown_type' || code === 'forbidden' || code === 'not_found') {
        this.refusals += 1;
        if (code !== 'not_found' || this.refusals >= 3) {
          this.dropConnections();
          this.setState('unavailable');
          throw err;
        }
      }
      this.scheduleRetry();
      throw err;
    }
  }

  // ---- publish ----------------------------------------------------------------------------

  // Offers are sent one at a time: an ICE restart waits for a negotiation in progress.
  publish(opts = {}) {
    // The first offer starts at once (a prepared one then leaves in this task), later ones
    // after the one before.
    const idle = this.pubChain === PUB_IDLE;
    const run = idle
      ? this.negotiate(opts)
      : this.pubChain.catch(() => {}).then(() => this.negotiate(opts));
    this.pubChain = run;
    return run;
  }

  async negotiate({ iceRestart = false } = {}) {
    if (this.closed) return;
    let pub = this.pub;
    // A closed connection cannot restart ICE: the caller rebuilds both (scheduleRetry).
    if (pub && pub.pc.signalingState === 'closed') throw new Error('publish connection closed');
    let ready = null; // the offer prepare() set locally
    if (pub && pub.prepared) {
      ready = iceRestart || !this.usable(pub) ? null : pub.prepared;
      pub.prepared = null;
      if (!ready) {
        pub.pc.close();
        pub = this.pub = null;
      }
    }
    if (!pub) pub = this.pub = this.newPublish();
    if (iceRestart) {
      try {
        pub.pc.setConfiguration({ ...pub.pc.getConfiguration(), iceServers: this.iceServers });
      } catch {
        /* keeps the servers it has */
      }
    }
    if (ready) {
      if (!pub.offerSet) await ready; // else the request leaves in this task
    } else {
      const offer = await pub.pc.createOffer({ iceRestart });
      await pub.pc.setLocalDescription(offer);
    }
    const sent = this.request('media.publish', {
      sdp: pub.pc.localDescription.sdp,
      e2ee: !!this.e2ee,
    });
    this.release(pub);
    const res = await sent;
    if (this.closed || this.pub !== pub) return;
    // A prepared call applies the publish answer once the first subscribe offer is answered
    // (prepare()), at most FIRST_ANSWER_WAIT_MS later.
    const first = this.subFirst;
    this.subFirst = null;
    if (first) await Promise.race([first, new Promise((r) => setTimeout(r, FIRST_ANSWER_WAIT_MS))]);
    if (this.closed || this.pub !== pub) return;
    await pub.pc.setRemoteDescription({ type: 'answer', sdp: res.sdp });
    pub.remoteSet = true;
    await this.flush(pub);
  }

  newPublish() {
    const pc = new RTCPeerConnection(this.pcConfig());
    const streams = this.stream ? [this.stream] : [];
    const track = (kind) => {
      if (!this.stream) return null;
      const list = kind === 'audio' ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
      return list[0] || null;
    };
    const audio = pc.addTransceiver(track('audio') || 'audio', { direction: 'sendonly', streams });
    const videoTrack = this.sendVideo ? track('video') : null;
    const init = { direction: 'sendonly', streams };
    if (this.simulcast) init.sendEncodings = simulcastEncodings(videoTrack);
    const video = pc.addTransceiver(videoTrack || 'video', init);
    if (this.e2ee) {
      // The frame bytes left in the clear are known for VP8 and Opus only (e2ee/worker.js).
      preferCodec(video, 'video/vp8');
      this.e2ee.attachSender(audio.sender, 'audio');
      this.e2ee.attachSender(video.sender, 'video');
    }
    const pub = { name: 'publish', pc, pending: [], remoteSet: false, audio, video, timer: 0 };
    this.watch(pub);
    return pub;
  }

  // Uses another local stream (other camera or microphone) without renegotiating.
  async setStream(stream) {
    this.stream = stream;
    if (!this.pub) return;
    const a = stream ? stream.getAudioTracks()[0] || null : null;
    const v = stream && this.sendVideo ? stream.getVideoTracks()[0] || null : null;
    await Promise.all([
      this.pub.audio.sender.replaceTrack(a),
      this.pub.video.sender.replaceTrack(v),
    ]).catch(() => {});
    if (stream) {
      for (const t of [this.pub.audio, this.pub.video]) t.sender.setStreams?.(stream);
    }
  }

  // Camera off or audio only: stops sending video (no renegotiation; the sender keeps its
  // m-section).
  async setSendVideo(on) {
    this.sendVideo = on;
    if (!this.pub) return;
    const v = on && this.stream ? this.stream.getVideoTracks()[0] || null : null;
    await this.pub.video.sender.replaceTrack(v).catch(() => {});
  }

  // ---- subscribe --------------------------------------------------------------------------

  onVideo(msg) {
    if (msg.consult !== this.consult || this.closed) return;
    this.videoPaused = msg.video === 'paused';
    this.onState(this.state);
  }

  // Asks the relay for a (new) subscribe connection; its offer arrives as media.offer.
  subscribe() {
    if (this.closed) return Promise.resolve();
    this.videoPaused = false; // a new connection starts with video
    if (this.subscribing) return this.subscribing;
    const gen = ++this.subGen;
    // A connection prepare() made counts as none yet: this request is its first.
    const ready = this.sub && this.sub.prepared && this.usable(this.sub) ? this.sub : null;
    if (this.sub && this.sub.prepared && !ready) {
      this.sub.pc.close();
      this.sub = null;
    }
    const first = !this.sub || !!ready;
    const stash = [];
    this.stashOffers = stash;
    // The first connection is made before the request, so that it gathers its candidates
    // while the relay prepares its offer: when the TURN servers are known and valid (else it
    // waits for the answer, which carries fresh ones).
    const early = !!ready || (first && this.iceKnown && iceServersValid(this.iceServers));
    if (ready) ready.prepared = false;
    else if (early) this.replaceSubscribe();
    const run = (async () => {
      try {
        await this.request('media.subscribe', { e2ee: !!this.e2ee });
      } finally {
        if (this.subGen === gen) {
          this.stashOffers = null;
          this.subscribing = null;
        }
      }
      if (this.closed || this.subGen !== gen) return;
      // Offers that arrived before the answer belong to the previous connection, unless there
      // was none.
      if (!early) this.replaceSubscribe();
      if (first && stash.length) this.onOffer(stash[stash.length - 1]);
    })();
    this.subscribing = run;
    return run;
  }

  replaceSubscribe() {
    const old = this.sub;
    if (old) {
      clearTimeout(old.timer);
      old.pc.close();
    }
    const pc = new RTCPeerConnection(this.pcConfig());
    const sub = {
      name: 'subscribe',
      pc,
      pending: [],
      remoteSet: false,
      expectOffer: this.hadStreams,
      timer: 0,
      chain: Promise.resolve(),
    };
    pc.addEventListener('track', (ev) => {
      if (this.e2ee) this.e2ee.attachReceiver(ev.receiver, ev.track.kind);
      this.syncTracks();
    });
    this.watch(sub);
    this.sub = sub;
    return sub;
  }

  onOffer(msg) {
    if (msg.consult !== this.consult || this.closed) return;
    if (this.stashOffers) {
      this.stashOffers.push(msg);
      return;
    }
    const sub = this.sub;
    if (!sub) return;
    sub.chain = sub.chain.then(() => this.answer(sub, msg)).catch((err) => {
      if (this.closed || this.sub !== sub) return;
      if (err && err.code === 'bad_state') return; // a newer offer is on its way
      console.warn('media.offer', err);
      this.scheduleRetry();
    });
  }

  async answer(sub, msg) {
    if (this.sub !== sub || sub.pc.signalingState === 'closed') return;
    await sub.pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    const answer = await sub.pc.createAnswer();
    await sub.pc.setLocalDescription(answer);
    this.streams = Array.isArray(msg.streams) ? msg.streams : [];
    this.hadStreams = this.streams.length > 0;
    sub.remoteSet = true;
    this.syncTracks();
    this.updateState();
    // The answer goes out before this side's candidates (they follow as ICE gathers).
    const sent = this.request('media.answer', {
      sdp: sub.pc.localDescription.sdp,
      version: msg.version,
    });
    if (this.subFirstDone) this.subFirstDone();
    this.subFirstDone = null;
    await this.flush(sub);
    await sent;
  }

  // Groups the subscribe connection's receiving tracks by participant, following the last
  // offer's streams list (by mid, else by the msid stream id).
  syncTracks() {
    const sub = this.sub;
    if (!sub) return;
    const byMid = new Map();
    for (const t of sub.pc.getTransceivers()) if (t.mid !== null) byMid.set(t.mid, t);
    const wanted = new Map(); // participant -> [track]
    for (const s of this.streams) {
      if (!s || !s.participant) continue;
      let tr = s.mid !== undefined && s.mid !== null ? byMid.get(String(s.mid)) : null;
      if (!tr && s.stream) {
        tr = sub.pc.getTransceivers().find((t) => this.streamIdOf(t) === s.stream) || null;
      }
      if (!tr || !tr.receiver || !tr.receiver.track) continue;
      if (!wanted.has(s.participant)) wanted.set(s.participant, []);
      wanted.get(s.participant).push(tr.receiver.track);
    }
    for (const [pid, tracks] of wanted) {
      const old = this.remote.get(pid);
      const have = old ? old.getTracks() : [];
      const same = have.length === tracks.length && tracks.every((t) => have.includes(t));
      if (same) continue;
      // A new stream object, so that the media element starts over with the new tracks.
      const ms = new MediaStream(tracks);
      this.remote.set(pid, ms);
      this.onTracks(pid, ms);
    }
    for (const pid of [...this.remote.keys()]) {
      if (!wanted.has(pid)) {
        this.remote.delete(pid);
        this.onTracks(pid, null);
      }
    }
  }

  streamIdOf(transceiver) {
    const sdp = this.sub && this.sub.pc.remoteDescription ? this.sub.pc.remoteDescription.sdp : '';
    if (!sdp || transceiver.mid === null) return null;
    for (const section of sdp.split(/\r?\nm=/).slice(1)) {
      const mid = /\r?\na=mid:(\S+)/.exec(section);
      if (!mid || mid[1] !== transceiver.mid) continue;
      const msid = /\r?\na=msid:(\S+)/.exec(section);
      return msid ? msid[1] : null;
    }
    return null;
  }

  // ---- candidates and connection state ----------------------------------------------------

  watch(conn) {
    const { pc } = conn;
    let sentEnd = false;
    // A candidate to the relay ('' for the end of candidates, once per run of candidates).
    conn.sendCandidate = (cand) => {
      if (!cand) {
        if (sentEnd) return;
        sentEnd = true;
      } else {
        sentEnd = false;
      }
      this.request('media.candidate', { pc: conn.name, candidate: cand }).catch(() => {});
    };
    pc.addEventListener('icecandidate', (ev) => {
      if (this.closed || !this.isCurrent(conn)) return;
      const cand = ev.candidate && ev.candidate.candidate ? ev.candidate.candidate : '';
      if (conn.hold) conn.hold.push(cand); // a prepared connection says nothing before its offer
      else conn.sendCandidate(cand);
    });
    pc.addEventListener('iceconnectionstatechange', () => this.onIceState(conn));
    pc.addEventListener('connectionstatechange', () => this.onIceState(conn));
  }

  // Sends what a prepared connection held back (after its offer; candidates its offer carries
  // already are sent again, which the relay ignores).
  release(conn) {
    const held = conn.hold || [];
    conn.hold = null;
    for (const cand of held) conn.sendCandidate(cand);
  }

  isCurrent(conn) {
    return conn === this.pub || conn === this.sub;
  }

  onCandidate(msg) {
    if (msg.consult !== this.consult || this.closed) return;
    const conn = msg.pc === 'publish' ? this.pub : msg.pc === 'subscribe' ? this.sub : null;
    if (!conn) return;
    const cand = {
      candidate: typeof msg.candidate === 'string' ? msg.candidate.replace(/^a=/, '') : '',
      sdpMid: typeof msg.sdpMid === 'string' ? msg.sdpMid : null,
      sdpMLineIndex: Number.isInteger(msg.sdpMLineIndex) ? msg.sdpMLineIndex : null,
    };
    if (!conn.remoteSet) {
      conn.pending.push(cand);
      return;
    }
    this.addCandidate(conn, cand);
  }

  async flush(conn) {
    const list = conn.pending.splice(0);
    for (const c of list) await this.addCandidate(conn, c);
  }

  async addCandidate(conn, cand) {
    const { pc } = conn;
    if (pc.signalingState === 'closed') return;
    // The relay names the m-section (the BUNDLE tag); older servers did not.
    const init = { ...cand };
    if (init.sdpMid === null && init.sdpMLineIndex === null) {
      init.sdpMid = bundleMid(pc.remoteDescription && pc.remoteDescription.sdp);
    }
    if (init.sdpMLineIndex === null) delete init.sdpMLineIndex;
    try {
      await pc.addIceCandidate(init);
    } catch {
      /* a candidate this browser cannot use, or end-of-candidates twice */
    }
  }

  // The relay gave up on a connection (e.g. ICE consent lost during an outage): its side of the
  // DTLS session is gone, so both connections are built again.
  onRelayState(msg) {
    if (msg.consult !== this.consult || this.closed) return;
    if (msg.state === 'failed') {
      const conn = msg.pc === 'publish' ? this.pub : this.sub;
      if (conn) this.rebuild();
    } else if (msg.state === 'closed') {
      // Another connection of this participant (a second window) took the call over: stay
      // quiet here instead of taking it back.
      clearTimeout(this.retryTimer);
      this.retryTimer = 0;
      this.dropConnections();
      this.setState('elsewhere');
    }
  }

  onIceState(conn) {
    if (this.closed || !this.isCurrent(conn)) return;
    const s = conn.pc.iceConnectionState;
    const c = conn.pc.connectionState;
    if (s === 'failed' || c === 'failed') {
      clearTimeout(conn.timer);
      conn.timer = 0;
      this.recover(conn);
    } else if (s === 'disconnected' || c === 'disconnected') {
      this.checkSignaling();
      if (!conn.timer) {
        conn.timer = setTimeout(() => {
          conn.timer = 0;
          const now = conn.pc.iceConnectionState;
          if (this.isCurrent(conn) && (now === 'disconnected' || now === 'failed')) {
            this.recover(conn);
          }
        }, DISCONNECTED_GRACE_MS);
      }
    } else if (s === 'connected' || s === 'completed') {
      clearTimeout(conn.timer);
      conn.timer = 0;
    }
    if (c === 'connected' && conn === this.sub && this.firstUpDone) {
      this.firstUpDone();
      this.firstUpDone = null;
    }
    this.updateState();
  }

  // Whether a connection of this call is (still) disconnected or failed.
  iceBroken() {
    return [this.pub, this.sub].some((conn) => {
      if (!conn) return false;
      const s = conn.pc.iceConnectionState;
      return s === 'disconnected' || s === 'failed';
    });
  }

  connected(conn) {
    if (!conn) return false;
    const s = conn.pc.iceConnectionState;
    const c = conn.pc.connectionState;
    return (s === 'connected' || s === 'completed') && (c === undefined || c === 'connected');
  }

  // A subscribe connection with nothing to receive (nobody else publishes: no offer yet, or an
  // offer without streams) need not be connected. After a rebuild an offer is expected when
  // there were streams before.
  subscribeIdle() {
    const sub = this.sub;
    if (!sub) return false;
    if (!sub.remoteSet) return !sub.expectOffer;
    return this.streams.length === 0;
  }

  updateState() {
    if (this.closed || this.state === 'elsewhere') return;
    const pubOk = this.connected(this.pub);
    const subOk = this.connected(this.sub) || this.subscribeIdle();
    if (pubOk && subOk) {
      this.retryMs = RETRY_MIN_MS;
      this.setState('connected');
      return;
    }
    if (this.iceBroken() || this.state === 'reconnecting') this.setState('reconnecting');
    else if (this.state !== 'connected') this.setState('connecting');
  }

  // Restarts ICE on the publish connection, or rebuilds the subscribe connection.
  recover(conn) {
    if (this.closed) return;
    this.checkSignaling();
    this.setState('reconnecting');
    this.restarts += 1;
    const job = conn === this.pub ? this.publish({ iceRestart: true }) : this.subscribe();
    job.catch(() => this.scheduleRetry());
  }

  // Called after a network change: restarts both connections.
  restartIce() {
    if (this.closed) return Promise.resolve();
    this.setState('reconnecting');
    this.restarts += 1;
    return Promise.all([this.publish({ iceRestart: true }), this.subscribe()]).catch(() =>
      this.scheduleRetry(),
    );
  }

  // After the signaling connection was restored: the relay may have dropped both connections,
  // so both are built again.
  resume() {
    return this.rebuild();
  }

  scheduleRetry() {
    if (this.closed || this.retryTimer || this.state === 'elsewhere') return;
    this.setState('reconnecting');
    const delay = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.rebuild();
    }, delay);
  }

  // Closes both connections at the relay and here, and sets them up again.
  rebuild() {
    if (this.closed || this.rebuilding) return this.rebuilding;
    if (this.client.state !== 'open') {
      this.signalingDown = true; // rebuilt once the WebSocket is back (onSignaling)
      return null;
    }
    this.setState('reconnecting');
    this.restarts += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.rebuilding = (async () => {
      try {
        await this.request('media.stop').catch(() => {});
        if (this.closed) return;
        this.dropConnections();
        await this.start().catch(() => {});
      } finally {
        this.rebuilding = null;
      }
    })();
    return this.rebuilding;
  }

  dropConnections() {
    for (const conn of [this.pub, this.sub]) {
      if (!conn) continue;
      clearTimeout(conn.timer);
      conn.pc.close();
    }
    this.pub = null;
    this.sub = null;
    this.subGen += 1;
    this.subscribing = null;
    this.stashOffers = null;
    this.pubChain = PUB_IDLE;
    this.streams = [];
    this.syncTracks();
  }

  // Ends media for this consult; tell = false when the server already ended it (left, ended).
  async stop({ tell = true } = {}) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const off of this.offs) off();
    this.offs = [];
    const remote = [...this.remote.keys()];
    for (const conn of [this.pub, this.sub]) {
      if (!conn) continue;
      clearTimeout(conn.timer);
      conn.pc.close();
    }
    this.pub = null;
    this.sub = null;
    this.remote.clear();
    for (const pid of remote) this.onTracks(pid, null);
    this.setState('closed');
    if (tell) await this.request('media.stop').catch(() => {});
  }

  // ---- statistics (tests and diagnostics) ---------------------------------------------------

  // The subscribe connection's announced SSRCs (ssrc -> mid).
  announced() {
    const sub = this.sub;
    const sdp = sub && sub.pc.remoteDescription ? sub.pc.remoteDescription.sdp : '';
    return ssrcMids(sdp);
  }

  async stats() {
    const read = async (conn) => {
      if (!conn || conn.pc.signalingState === 'closed') return [];
      const report = await conn.pc.getStats();
      return [...report.values()];
    };
    return {
      publish: await read(this.pub),
      subscribe: await read(this.sub),
      state: this.state,
      restarts: this.restarts,
      ice: {
        publish: this.pub ? this.pub.pc.iceConnectionState : null,
        subscribe: this.sub ? this.sub.pc.iceConnectionState : null,
      },
      streams: this.streams,
    };
  }
}

// The first mid of the BUNDLE group (the transport every candidate belongs to).
function bundleMid(sdp) {
  if (!sdp) return '0';
  const group = /\r?\na=group:BUNDLE ([^\r\n]+)/.exec(`\n${sdp}`);
  if (group) return group[1].trim().split(/\s+/)[0];
  const mid = /\r?\na=mid:(\S+)/.exec(`\n${sdp}`);
  return mid ? mid[1] : '0';
}

// The SSRCs a description announces (a=ssrc), each with the mid of its m-section.
export function ssrcMids(sdp) {
  const out = new Map();
  if (!sdp) return out;
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /\r?\na=mid:(\S+)/.exec(section);
    if (!mid) continue;
    for (const m of section.matchAll(/\r?\na=ssrc:(\d+) /g)) out.set(m[1], mid[1]);
  }
  return out;
}

// Puts codec mime (and its retransmission format) first and alone on a transceiver.
function preferCodec(transceiver, mime) {
  if (!transceiver.setCodecPreferences) return;
  const kind = transceiver.receiver.track.kind;
  for (const api of [globalThis.RTCRtpReceiver, globalThis.RTCRtpSender]) {
    const caps = api?.getCapabilities?.(kind);
    if (!caps) continue;
    const pick = caps.codecs.filter((c) => ['/rtx', mime].some((m) => c.mimeType.toLowerCase().endsWith(m)));
    if (!pick.some((c) => c.mimeType.toLowerCase() === mime)) continue;
    try {
      transceiver.setCodecPreferences(pick);
      return;
    } catch {
      /* this browser takes the other list */
    }
  }
}
