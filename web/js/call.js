// The call view shared by the patient page and the console: one Call (rtc.js) at a time, its
// remote tiles, the connection status line and the camera-off indication.
import * as i18n from './i18n.js';
import { show } from './dom.js';
import { Call } from './rtc.js';
import { E2ee } from './e2ee/e2ee.js';
import { CallKeys } from './e2ee/call_keys.js';
import { setRemoteTile, removeRemoteTile, setTileCameraOff, setTileName } from './tiles.js';

const MONITOR_MS = 1000;
// A remote video that decoded at most one frame per monitor tick for this many ticks counts as
// "camera off" (camera off and audio only send no video).
const STILL_TICKS = 3;

const STATUS_KEYS = {
  connecting: 'call.connecting',
  reconnecting: 'call.reconnecting',
  unavailable: 'call.unavailable',
  elsewhere: 'call.elsewhere',
  e2ee_unsupported: 'call.e2ee.unsupported',
  e2ee_required: 'error.e2ee_required',
  weak_link: 'call.weakLink',
};

// Whether a call made by CallView.prepare is the one these options would start.
function samePrepared(p, { client, consult, e2ee, chat }) {
  return !!p && p.client === client && p.consult === consult && p.e2ee === e2ee && p.chat === chat &&
    !p.call.closed;
}

export class CallView {
  // tiles: the #tiles container; status: the element for the connection status;
  // nameOf(participantId) -> display name.
  constructor({ tiles, status, nameOf = () => '' }) {
    this.tiles = tiles;
    this.status = status;
    this.nameOf = nameOf;
    this.call = null;
    this.prepared = null; // a call made ahead by prepare(), not started
    this.monitor = 0;
    this.frames = new Map(); // participant -> { decoded, still }
    this.signalingLost = false;
    this.unsupported = false; // the consult needs E2EE that this browser cannot do
    this.keys = null; // CallKeys while the call is end-to-end encrypted
    this.badge = document.createElement('p');
    this.badge.className = 'call-e2ee';
    this.badge.dataset.testid = 'call-e2ee';
    this.badge.hidden = true;
    if (status) status.after(this.badge);
    this.renderStatus();
  }

  get consult() {
    return this.call ? this.call.consult : null;
  }

  active() {
    return !!this.call;
  }

  // Starts media for a consult (stopping media of another consult first). e2ee: the consult
  // requires end-to-end encrypted media (its `e2ee`); chat: the ChatEngine whose consult
  // conversation holds the keys (e2ee/call_keys.js).
  // iceServers: invite.redeem's or consult.join's ice_servers ([] when it had none: the server
  // has no TURN), or null when not known.
  async start({ client, consult, stream, sendVideo = true, e2ee = false, chat = null, iceServers = null }) {
    if (this.call && this.call.consult === consult && this.call.client === client) return;
    // A call prepared for this start survives the stop of another one.
    const p = this.prepared;
    this.prepared = null;
    if (this.call) await this.stop();
    this.signalingLost = false;
    this.unsupported = false;
    if (e2ee && (!E2ee.supported() || !chat)) {
      // No call rather than one the consult does not allow.
      if (p) this.discard(p);
      this.unsupported = true;
      this.renderStatus();
      return;
    }
    let made;
    if (samePrepared(p, { client, consult, e2ee, chat })) {
      made = p;
      if (p.call.stream !== stream) p.call.setStream(stream);
      if (p.call.sendVideo !== sendVideo) p.call.setSendVideo(sendVideo);
    } else {
      if (p) this.discard(p);
      made = this.make({ client, consult, stream, sendVideo, e2ee, chat, iceServers });
    }
    const { call } = made;
    this.call = call;
    this.keys = made.keys;
    this.tiles.classList.add('in-call');
    this.renderStatus();
    clearInterval(this.monitor);
    this.monitor = setInterval(() => this.watchFrames(), MONITOR_MS);
    await call.start().catch((err) => console.warn('media', err));
  }

  // Makes a call ahead, while it may not start yet (the patient in the lobby): its connections
  // and offer (Call.prepare) and, with E2EE, its keys, so that start() with the same options
  // sends its media requests at once. Nothing reaches the server and the page shows no call.
  prepare({ client, consult, stream, sendVideo = true, e2ee = false, chat = null, iceServers = null }) {
    if (this.call) return;
    const p = this.prepared;
    if (samePrepared(p, { client, consult, e2ee, chat })) {
      return;
    }
    this.dropPrepared();
    if (e2ee && (!E2ee.supported() || !chat)) return;
    this.prepared = this.make({ client, consult, stream, sendVideo, e2ee, chat, iceServers });
    this.prepared.call.prepare();
  }

  dropPrepared() {
    const p = this.prepared;
    this.prepared = null;
    if (p) this.discard(p);
  }

  make({ client, consult, stream, sendVideo, e2ee, chat, iceServers }) {
    const enc = e2ee ? new E2ee() : null;
    const call = new Call({
      client,
      consult,
      stream,
      sendVideo,
      e2ee: enc,
      iceServers,
      onTracks: (pid, ms) => this.onTracks(call, pid, ms),
      onState: () => {
        if (call === this.call) this.renderStatus();
      },
    });
    let keys = null;
    if (enc) {
      keys = new CallKeys({
        engine: chat,
        consult,
        e2ee: enc,
        onChange: () => {
          if (call === this.call) this.renderStatus();
        },
      });
      keys.start();
    }
    return { client, consult, e2ee, chat, call, enc, keys };
  }

  // Resolves when the started call, if it was made ahead (prepare), has its first subscribe
  // connection up; at once otherwise.
  firstConnected() {
    return (this.call && this.call.firstUp) || Promise.resolve();
  }

  // A call made by prepare() and not started: closed here only (the server never heard of it).
  discard({ call, enc, keys }) {
    if (keys) keys.stop();
    call.stop({ tell: false }).catch(() => {});
    if (enc) enc.close();
  }

  // tell = false when the server already ended this participant's media (ended, denied, left).
  async stop({ tell = true } = {}) {
    this.dropPrepared();
    const call = this.call;
    this.call = null;
    clearInterval(this.monitor);
    this.monitor = 0;
    this.frames.clear();
    const keys = this.keys;
    this.keys = null;
    if (keys) keys.stop();
    if (call) await call.stop({ tell });
    if (keys) keys.e2ee.close();
    for (const tile of [...this.tiles.querySelectorAll('.tile-remote')]) {
      removeRemoteTile(this.tiles, tile.dataset.participant);
    }
    this.tiles.classList.remove('in-call');
    this.signalingLost = false;
    this.renderStatus();
  }

  onTracks(call, pid, ms) {
    if (call !== this.call) return;
    if (ms) {
      setRemoteTile(this.tiles, { id: pid, name: this.nameOf(pid), stream: ms });
    } else {
      removeRemoteTile(this.tiles, pid);
      this.frames.delete(pid);
    }
  }

  // Updates the names on the tiles (after a roster change).
  refreshNames() {
    for (const tile of this.tiles.querySelectorAll('.tile-remote')) {
      const id = tile.dataset.participant;
      setTileName(this.tiles, id, this.nameOf(id));
    }
  }

  // The signaling connection dropped (true) or came back (false), for the status line. The
  // Call itself builds its relay connections again after a reconnect.
  setSignalingLost(lost) {
    this.signalingLost = lost;
    this.renderStatus();
  }

  setStream(stream) {
    if (this.call) this.call.setStream(stream);
  }

  setSendVideo(on) {
    if (this.call) this.call.setSendVideo(on);
  }

  renderStatus() {
    const el = this.status;
    if (!el) return;
    this.renderE2ee();
    let state = this.call ? this.call.state : this.unsupported ? 'e2ee_unsupported' : 'idle';
    if (this.call && this.signalingLost) state = 'reconnecting';
    else if (state === 'connected' && this.call.videoPaused) state = 'weak_link';
    const key = STATUS_KEYS[state] || null;
    el.dataset.state = state;
    if (key) i18n.setText(el, key);
    else i18n.setText(el, null);
    show(el, !!key);
    this.tiles.dataset.media = state;
  }

  // "End-to-end encrypted" with the safety number of the epoch in use, or that the keys are
  // still on their way (until the practice has added this device to the consult's group).
  renderE2ee() {
    const b = this.badge;
    const keys = this.call ? this.keys : null;
    b.hidden = !keys;
    if (!keys) return;
    b.dataset.state = keys.keyed ? 'on' : 'waiting';
    b.dataset.safety = keys.safety;
    b.replaceChildren();
    const label = document.createElement('span');
    i18n.setText(label, keys.keyed ? 'call.e2ee.on' : 'call.e2ee.waiting');
    b.append(label);
    if (keys.keyed) {
      const num = document.createElement('span');
      num.className = 'call-e2ee-safety';
      num.dataset.testid = 'call-safety';
      i18n.setAttr(num, 'title', 'call.e2ee.safety');
      num.textContent = keys.safety;
      b.append(' ', num);
    }
  }

  // Marks remote tiles whose video stopped (camera off, audio only) from the decoded frames.
  async watchFrames() {
    const call = this.call;
    if (!call || !call.sub) return;
    let report;
    try {
      report = await call.sub.pc.getStats();
    } catch {
      return;
    }
    if (call !== this.call) return;
    // While the connection is being restored no frames arrive from anyone: that is shown by
    // the status line, not as cameras turned off.
    if (call.state !== 'connected') {
      this.frames.clear();
      for (const pid of call.remote.keys()) setTileCameraOff(this.tiles, pid, false);
      return;
    }
    const midOf = new Map(); // mid -> { participant, kind }
    for (const s of call.streams) {
      if (s && s.mid !== undefined) midOf.set(String(s.mid), s);
    }
    const announced = call.announced();
    const video = new Map(); // participant -> framesDecoded
    const audio = new Map(); // participant -> packetsReceived
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp') continue;
      const mid = announced.size ? announced.get(String(s.ssrc)) : s.mid;
      const info = midOf.get(String(mid));
      if (!info || info.kind !== s.kind) continue;
      if (s.kind === 'video') video.set(info.participant, s.framesDecoded || 0);
      else audio.set(info.participant, s.packetsReceived || 0);
    }
    for (const pid of call.remote.keys()) {
      const prev = this.frames.get(pid) || { decoded: -10, packets: -1, still: 0 };
      const decoded = video.has(pid) ? video.get(pid) : 0;
      const packets = audio.has(pid) ? audio.get(pid) : -1;
      const still = decoded - prev.decoded <= 1 ? prev.still + 1 : 0;
      this.frames.set(pid, { decoded, packets, still });
      // Sound still arriving while the picture stopped: the camera is off. Both stopped: the
      // network (shown by the status line once ICE notices).
      const hearing = packets < 0 || packets > prev.packets;
      setTileCameraOff(this.tiles, pid, still >= STILL_TICKS && hearing);
    }
  }

  // Totals of the current call's statistics, for tests and diagnostics.
  async summary() {
    const call = this.call;
    if (!call) return null;
    const st = await call.stats();
    const midOf = new Map(st.streams.map((s) => [String(s.mid), s.participant]));
    const announced = call.announced();
    const sum = (list, checkSsrc) => {
      const out = {
        video: { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0 },
        audio: { packetsReceived: 0, totalSamplesReceived: 0, audioLevel: 0, energy: 0 },
        sent: { audio: 0, video: 0, layers: [] },
        byParticipant: {},
        // RTP from SSRCs the relay's offer does not announce (counted apart).
        unannounced: { packets: 0, ssrcs: [] },
      };
      for (const s of list) {
        if (s.type === 'inbound-rtp') {
          if (checkSsrc && !announced.has(String(s.ssrc))) {
            out.unannounced.packets += s.packetsReceived || 0;
            out.unannounced.ssrcs.push(`${s.kind}:${s.ssrc}`);
            continue;
          }
          const mid = checkSsrc ? announced.get(String(s.ssrc)) : s.mid;
          const pid = midOf.get(String(mid)) || '?';
          const p = (out.byParticipant[pid] ||= {
            name: this.nameOf(pid),
            framesDecoded: 0,
            videoPackets: 0,
            audioPackets: 0,
            totalSamplesReceived: 0,
            audioLevel: 0,
          });
          if (s.kind === 'video') {
            out.video.framesDecoded += s.framesDecoded || 0;
            out.video.packetsReceived += s.packetsReceived || 0;
            out.video.bytesReceived += s.bytesReceived || 0;
            p.framesDecoded += s.framesDecoded || 0;
            p.videoPackets += s.packetsReceived || 0;
            p.frameWidth = Math.max(p.frameWidth || 0, s.frameWidth || 0);
          } else if (s.kind === 'audio') {
            out.audio.packetsReceived += s.packetsReceived || 0;
            out.audio.totalSamplesReceived += s.totalSamplesReceived || 0;
            out.audio.audioLevel = Math.max(out.audio.audioLevel, s.audioLevel || 0);
            out.audio.energy += s.totalAudioEnergy || 0;
            p.audioPackets += s.packetsReceived || 0;
            p.totalSamplesReceived += s.totalSamplesReceived || 0;
            p.audioLevel = Math.max(p.audioLevel, s.audioLevel || 0);
          }
        } else if (s.type === 'outbound-rtp') {
          if (s.kind === 'audio') out.sent.audio += s.packetsSent || 0;
          if (s.kind === 'video') out.sent.video += s.packetsSent || 0;
          if (s.kind === 'video' && s.rid) {
            out.sent.layers.push({ rid: s.rid, frameWidth: s.frameWidth || 0, bytesSent: s.bytesSent || 0, active: s.active !== false });
          }
        }
      }
      return out;
    };
    const keys = this.keys;
    return {
      consult: call.consult,
      state: call.state,
      e2ee: keys
        ? { keyed: keys.keyed, epoch: keys.e2ee.epoch === null ? null : String(keys.e2ee.epoch), safety: keys.safety, frames: keys.e2ee.stats }
        : null,
      restarts: call.restarts,
      ice: st.ice,
      streams: st.streams,
      publish: sum(st.publish, false),
      subscribe: sum(st.subscribe, true),
      ownSsrcs: st.publish.filter((s) => s.type === 'outbound-rtp').map((s) => String(s.ssrc)),
      tiles: [...this.tiles.querySelectorAll('.tile-remote')].map((t) => ({
        participant: t.dataset.participant,
        name: t.querySelector('.tile-name').textContent,
        cameraOff: t.classList.contains('is-camera-off'),
        playing: !t.querySelector('video').paused,
        width: t.querySelector('video').videoWidth,
        height: t.querySelector('video').videoHeight,
      })),
    };
  }
}

// Test and diagnostics hooks: window.__spk.media.
export function exposeHooks(getView) {
  const hooks = (window.__spk ||= {});
  hooks.media = {
    summary: () => (getView() ? getView().summary() : null),
    stats: () => (getView() && getView().call ? getView().call.stats() : null),
    state: () => (getView() && getView().call ? getView().call.state : 'idle'),
    restartIce: () => getView() && getView().call && getView().call.restartIce(),
  };
}
