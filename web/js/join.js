// Patient page: /join#<invite code>.
import * as i18n from './i18n.js';
import { Client } from './protocol.js';
import * as media from './media.js';
import { $, $$, h, show, announce } from './dom.js';
import { renderRoster } from './roster.js';
import { CallView, exposeHooks } from './call.js';
import { PatientChat } from './chat/patient_chat.js';

const SESSION_KEY = 'spk.join.session';
const INVITE_KEY = 'spk.join.invite';
const ENDED_KEY = 'spk.join.ended';
const CODE_RE = /^[A-Za-z0-9_-]{8,128}$/;

const state = {
  screen: 'loading', // what the page is in
  shown: 'loading', // the screen on display (the consult's may follow its state briefly)
  entries: 0, // admissions seen, so that a late layout of the consult screen knows its own
  invite: null,
  session: null, // { token, consult, participant, name, invite }
  media: { stream: null, video: false, audio: false, errorKey: null },
  videoOn: true,
  audioOn: true,
  audioOnly: false,
  mediaReady: Promise.resolve(),
  mediaSettled: true, // mediaReady has settled
  view: null, // CallView: audio and video through the relay once admitted
  participants: new Map(), // id -> participant (names for the tiles)
  meter: null,
  mediaEpoch: 0,
  client: null,
  lostConnection: false,
  chat: null, // PatientChat: the consult's end-to-end encrypted chat
  consultInfo: null, // the consult object (its `e2ee`), from consult.join or consult.get
  iceServers: null, // invite.redeem's or consult.join's ice_servers ([]: the server has no TURN)
};

// ---- storage -------------------------------------------------------------------------------

function load(key) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* private mode: the page still works, a reload starts over */
  }
}

function saveSession(session) {
  state.session = session;
  save(SESSION_KEY, session);
}

// Reads the invite code from the fragment and removes it from the address bar and history.
function readInvite() {
  let code = null;
  const raw = window.location.hash.replace(/^#/, '');
  if (raw) {
    try {
      code = decodeURIComponent(raw).trim();
    } catch {
      code = raw;
    }
    if (code.startsWith('invite=')) code = code.slice(7);
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return code;
}

// ---- screens -------------------------------------------------------------------------------

function showScreen(name, { focus = true } = {}) {
  state.screen = name;
  state.shown = name;
  for (const el of $$('.screen')) show(el, el.id === `screen-${name}`);
  document.body.dataset.screen = name;
  if (focus) {
    const heading = $(`#screen-${name} h1`);
    if (heading) heading.focus({ preventScroll: false });
  }
  attachMedia();
}

const ENDINGS = {
  missing: ['join.end.missing.title', 'join.end.missing.text', 'join.end.contact'],
  invite_invalid: ['join.end.invalid.title', 'error.invite_invalid', 'join.end.contact'],
  invite_used: ['join.end.used.title', 'error.invite_used', 'join.end.contact'],
  invite_expired: ['join.end.expired.title', 'error.invite_expired', 'join.end.contact'],
  invite_revoked: ['join.end.revoked.title', 'error.invite_revoked', 'join.end.contact'],
  denied: ['join.end.denied.title', 'join.end.denied.text', 'join.end.contact'],
  ended: ['join.end.ended.title', 'join.end.ended.text', 'join.end.close'],
  consult_ended: ['join.end.ended.title', 'join.end.ended.text', 'join.end.close'],
  left: ['join.end.left.title', 'join.end.left.text', 'join.end.close'],
  session: ['join.end.session.title', 'join.end.session.text', 'join.end.contact'],
};

function finish(kind, { reason = '', keepSession = false } = {}) {
  const [title, text, hint] = ENDINGS[kind] || ENDINGS.session;
  i18n.setText($('#ended-title'), title);
  i18n.setText($('#ended-text'), text);
  const reasonEl = $('#ended-reason');
  reasonEl.textContent = kind === 'denied' ? reason : '';
  show(reasonEl, kind === 'denied' && !!reason);
  i18n.setText($('#ended-hint'), hint);
  $('#screen-ended').dataset.kind = kind;
  show($('#ended-rejoin'), kind === 'left');
  if (kind === 'left' && state.session) saveSession({ ...state.session, left: true });
  if (!keepSession) {
    saveSession(null);
    save(INVITE_KEY, null);
    // A reload shows the same outcome instead of "incomplete link".
    if (kind !== 'missing') save(ENDED_KEY, { kind, reason });
  }
  stopCall({ tell: false });
  if (state.client) {
    state.client.close();
    state.client = null;
  }
  stopMedia();
  setConnectionBanner(null);
  showScreen('ended');
  announce(title);
}

// ---- media ---------------------------------------------------------------------------------

function startMedia(devices = {}) {
  const ready = openLocalMedia(devices);
  state.mediaReady = ready;
  state.mediaSettled = false;
  ready
    .catch(() => {})
    .then(() => {
      if (state.mediaReady === ready) state.mediaSettled = true;
    });
  return ready;
}

async function openLocalMedia(devices) {
  stopMedia();
  const epoch = ++state.mediaEpoch;
  show($('#media-message'), false);
  show($('#media-ok'), false);
  const result = await media.openMedia({ video: true, audio: true, ...devices });
  if (epoch !== state.mediaEpoch) {
    // Stopped (or restarted) while the browser was asking: let go of this stream.
    media.stop(result.stream);
    return;
  }
  state.media = result;
  state.videoOn = result.video;
  state.audioOn = result.audio;
  if (result.stream) state.meter = new media.LevelMeter(result.stream, $('#mic-level'));
  if (state.view) {
    state.view.setStream(result.stream);
    state.view.setSendVideo(sendingVideo());
  }
  renderMedia();
  renderDevices();
}

// Offers a choice when there is more than one camera or microphone.
async function renderDevices() {
  const { cameras, microphones } = await media.listDevices();
  const fill = (select, list, kind, labelKey) => {
    const current = media.currentDeviceId(state.media.stream, kind);
    select.replaceChildren(
      ...list.map((d, i) =>
        h('option', { value: d.deviceId, raw: d.label || i18n.t(labelKey, { n: i + 1 }) }),
      ),
    );
    if (current) select.value = current;
    return list.length > 1;
  };
  const cam = fill($('#camera-select'), cameras, 'video', 'media.cameraN');
  const mic = fill($('#mic-select'), microphones, 'audio', 'media.microphoneN');
  show($('#camera-field'), cam);
  show($('#mic-field'), mic);
  show($('#devices'), cam || mic);
}

function chosenDevices() {
  return { videoId: $('#camera-select').value, audioId: $('#mic-select').value };
}

function stopMedia() {
  state.mediaEpoch++;
  if (state.meter) state.meter.stop();
  state.meter = null;
  media.stop(state.media.stream);
  state.media = { stream: null, video: false, audio: false, errorKey: null };
  attachMedia();
}

// The camera is shown on the visible screen's video element; `also` (a screen about to be
// shown) gets it as well.
function attachMedia(also = null) {
  const stream = state.media.stream;
  const visible = { setup: '#preview', waiting: '#waiting-video', consult: '#local-video' };
  for (const [screen, sel] of Object.entries(visible)) {
    const el = $(sel);
    const want = (screen === state.shown || screen === also) && state.media.video ? stream : null;
    if (el.srcObject !== want) media.attach(el, want);
  }
}

function renderMedia() {
  const m = state.media;
  const msg = $('#media-message');
  if (m.errorKey) {
    let key = m.errorKey;
    if (m.stream && m.audio && !m.video) key = 'media.only.audio';
    else if (m.stream && m.video && !m.audio) key = 'media.only.video';
    i18n.setText($('#media-message-text'), key);
    msg.classList.toggle('notice-warn', true);
    show(msg, true);
    show($('#media-retry'), !m.stream || !m.video || !m.audio);
  } else {
    show(msg, false);
  }
  show($('#media-ok'), !!m.stream && m.video && m.audio);
  show($('#preview-off'), !m.video || !state.videoOn);
  i18n.setText($('#preview-off-text'), m.video ? 'join.preview.off' : 'join.preview.none');
  show($('.level'), m.audio);
  show($('.waiting-preview'), m.video);
  for (const btn of $$('.toggle-video')) {
    btn.disabled = !m.video;
    btn.setAttribute('aria-pressed', String(m.video && state.videoOn));
  }
  for (const btn of $$('.toggle-audio')) {
    btn.disabled = !m.audio;
    btn.setAttribute('aria-pressed', String(m.audio && state.audioOn));
  }
  for (const btn of $$('.toggle-audio-only')) {
    btn.disabled = !m.video;
    btn.setAttribute('aria-pressed', String(state.audioOnly));
  }
  document.body.classList.toggle('video-off', !m.video || !state.videoOn || state.audioOnly);
  document.body.classList.toggle('audio-off', !m.audio || !state.audioOn);
  document.body.classList.toggle('audio-only', state.audioOnly);
  attachMedia();
}

function bindMediaControls() {
  for (const btn of $$('.toggle-video')) {
    btn.addEventListener('click', () => {
      state.videoOn = !state.videoOn;
      media.setEnabled(state.media.stream, 'video', state.videoOn);
      if (state.view) state.view.setSendVideo(sendingVideo());
      renderMedia();
    });
  }
  for (const btn of $$('.toggle-audio')) {
    btn.addEventListener('click', () => {
      state.audioOn = !state.audioOn;
      media.setEnabled(state.media.stream, 'audio', state.audioOn);
      renderMedia();
    });
  }
  for (const btn of $$('.toggle-audio-only')) {
    btn.addEventListener('click', () => {
      state.audioOnly = !state.audioOnly;
      if (state.view) state.view.setSendVideo(sendingVideo());
      renderMedia();
    });
  }
  $('#media-retry').addEventListener('click', () => startMedia());
  $('#camera-select').addEventListener('change', () => startMedia(chosenDevices()));
  $('#mic-select').addEventListener('change', () => startMedia(chosenDevices()));
}

// ---- connection ----------------------------------------------------------------------------

function setConnectionBanner(key) {
  const el = $('#connection');
  if (!key) {
    show(el, false);
    i18n.setText(el, null);
    return;
  }
  i18n.setText(el, key);
  show(el, true);
}

function createClient() {
  const client = new Client({ onOpen: restoreSession });
  client.on('connection', onConnection);
  client.on('session-error', ({ error }) => onSessionError(error));
  client.on('admitted', onAdmitted);
  client.on('denied', (msg) => finish('denied', { reason: msg.reason || '' }));
  client.on('sent_back', onSentBack);
  client.on('roster', (msg) => setParticipants(msg.participants));
  client.on('consult.ended', () => finish('ended'));
  client.on('session.expired', () => {
    client.close();
    finish('session');
  });
  return client;
}

function ownId() {
  return state.session ? state.session.participant : null;
}

function onConnection({ state: s }) {
  if (s === 'reconnecting') {
    state.lostConnection = true;
    setConnectionBanner('conn.reconnecting');
    if (state.view) state.view.setSignalingLost(true);
  } else if (s === 'open') {
    if (state.lostConnection) announce('conn.restored');
    state.lostConnection = false;
    setConnectionBanner(null);
    // Media is built again over the restored connection (unless it was just started).
    if (state.view) state.view.setSignalingLost(false);
  }
}

// ---- call ----------------------------------------------------------------------------------

function setParticipants(list) {
  if (!Array.isArray(list)) return;
  for (const p of list) if (p && p.id) state.participants.set(p.id, p);
  renderRoster($('#roster'), list, ownId());
  if (state.view) state.view.refreshNames();
}

function nameOf(id) {
  const p = state.participants.get(id);
  return p ? p.name : '';
}

// Media starts once the patient is admitted: the relay forwards nothing before that.
async function startCall() {
  const client = state.client;
  const s = state.session;
  if (!client || !s || !state.view) return;
  // Without a wait when the camera is settled and the consult known: the media requests then
  // leave before the page lays out the consult screen (enterConsult).
  if (!state.mediaSettled) {
    await state.mediaReady.catch(() => {});
    if (state.client !== client || state.screen !== 'consult') return;
  }
  // Whether the consult's media must be end-to-end encrypted (keys from its chat's MLS group).
  if (!state.consultInfo || state.consultInfo.id !== s.consult) {
    const res = await client.request('consult.get', { consult: s.consult }).catch(() => null);
    if (!res || state.client !== client) return;
    state.consultInfo = res.consult;
  }
  await state.view.start({
    client,
    consult: s.consult,
    stream: state.media.stream,
    sendVideo: sendingVideo(),
    e2ee: state.consultInfo.e2ee === true,
    chat: state.chat ? state.chat.engine : null,
    iceServers: state.iceServers,
  });
}

// The consult object (whether its media is end-to-end encrypted) while the patient waits, so
// that the call starts without asking for it once admitted.
function prefetchConsult(client, consult) {
  if (state.consultInfo && state.consultInfo.id === consult) return;
  client
    .request('consult.get', { consult })
    .then((res) => {
      if (state.client === client && !state.consultInfo && res.consult) {
        state.consultInfo = res.consult;
        prepareCall();
      }
    })
    .catch(() => {});
}

// While the patient waits, the call's connections and offer are made ahead (CallView.prepare:
// nothing reaches the server), so that once admitted its media requests leave at once.
async function prepareCall() {
  const client = state.client;
  const s = state.session;
  if (!client || !s || !state.view || state.view.active()) return;
  await state.mediaReady.catch(() => {});
  const info = state.consultInfo;
  if (state.client !== client || state.screen !== 'waiting') return;
  if (!info || info.id !== s.consult) return;
  state.view.prepare({
    client,
    consult: s.consult,
    stream: state.media.stream,
    sendVideo: sendingVideo(),
    e2ee: info.e2ee === true,
    chat: state.chat ? state.chat.engine : null,
    iceServers: state.iceServers,
  });
}

// Video goes out while the camera is on and the patient did not choose audio only.
function sendingVideo() {
  return state.videoOn && !state.audioOnly;
}

function stopCall({ tell = true } = {}) {
  if (!state.view) return Promise.resolve();
  if (!state.view.active()) {
    state.view.dropPrepared();
    return Promise.resolve();
  }
  return state.view.stop({ tell });
}

// Runs after every (re)connect: a patient with a session signs in again and rejoins.
async function restoreSession(client) {
  const s = state.session;
  if (!s) return;
  await client.request('auth', { token: s.token });
  const res = await client.request('consult.join', { consult: s.consult });
  if (res.consult) state.consultInfo = res.consult;
  state.iceServers = Array.isArray(res.ice_servers) ? res.ice_servers : [];
  attachChat(client);
  applyParticipant(res.participant, res.participants);
}

// The chat signs in on the same connection; it never holds up the consult.
function attachChat(client) {
  if (state.chat && state.session) state.chat.attach(client, state.session.consult).catch(() => {});
}

function onSessionError(err) {
  const code = err && err.code;
  if (code === 'connection_lost' || code === 'timeout') return; // the client reconnects
  if (code === 'forbidden') finish('denied');
  else if (code === 'consult_ended') finish('ended');
  else if (code === 'not_found') finish('ended');
  else if (code && code.startsWith('token_')) finish('session');
  else if (code === 'shutting_down' || code === 'internal' || code === 'rate_limited') {
    setTimeout(() => state.client && state.client.reconnectNow(), 3000);
  } else finish('session');
}

// ---- consult state -------------------------------------------------------------------------

function applyParticipant(participant, participants) {
  if (!participant) return;
  if (state.session && participant.id) {
    saveSession({ ...state.session, participant: participant.id });
  }
  if (participant.state === 'admitted') {
    enterConsult(participants);
  } else if (participant.state === 'lobby') {
    if (state.view && state.view.active()) stopCall().then(prepareCall);
    else prepareCall();
    const since = $('#waiting-since');
    if (participant.since) {
      i18n.setText(since, 'join.waiting.since', { time: { time: participant.since } });
    }
    show(since, !!participant.since);
    if (state.screen !== 'waiting') showScreen('waiting');
  } else if (participant.state === 'denied') {
    finish('denied');
  } else if (participant.state === 'left') {
    finish('left', { keepSession: true });
  }
}

// How long a patient just admitted may see the waiting screen while the call made ahead
// connects (CallView.firstConnected).
const LAYOUT_WAIT_MS = 800;

function enterConsult(participants) {
  const first = state.screen !== 'consult';
  if (participants) setParticipants(participants);
  if (first) state.screen = 'consult';
  startCall();
  i18n.setText($('#consult-status'), 'join.consult.admitted');
  if (first) {
    announce('join.consult.admitted');
    // The consult screen is laid out once the call made ahead has its subscribe connection
    // up: its layout (styles, the focus) would otherwise take the page's thread while the
    // connection is being made, which the picture waits for; the picture's first frame needs a
    // key frame after that anyway. Its video gets the camera at once, before the call's encoder
    // starts (a new player of the camera track while it encodes delayed the first frame others
    // saw).
    attachMedia('consult');
    const entry = ++state.entries;
    const wait = state.view ? state.view.firstConnected() : Promise.resolve();
    Promise.race([wait, new Promise((r) => setTimeout(r, LAYOUT_WAIT_MS))]).then(() => {
      if (state.entries === entry && state.screen === 'consult' && state.shown !== 'consult') {
        showScreen('consult');
      }
    });
  }
  if (!participants && state.client && state.session) {
    state.client
      .request('consult.get', { consult: state.session.consult })
      .then((res) => setParticipants(res.participants))
      .catch(() => {});
  }
}

function onAdmitted(msg) {
  if (msg.participant) applyParticipant(msg.participant);
  else enterConsult(null);
}

function onSentBack() {
  stopCall().then(prepareCall);
  i18n.setText($('#waiting-status'), 'join.waiting.sentBack');
  showScreen('waiting');
  announce('join.waiting.sentBack');
}

// ---- actions -------------------------------------------------------------------------------

async function onSubmit(ev) {
  ev.preventDefault();
  const input = $('#name');
  const name = input.value.trim();
  const errEl = $('#join-error');
  if (!name) {
    i18n.setText(errEl, 'join.name.required');
    show(errEl, true);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  show(errEl, false);
  const btn = $('#join-submit');
  btn.disabled = true;
  i18n.setText(btn, 'join.submitting');
  try {
    if (!state.client) {
      state.client = createClient();
      state.client.connect();
    }
    await state.client.waitOpen();
    const res = await state.client.request('invite.redeem', { invite: state.invite, name });
    saveSession({
      token: res.session_token,
      consult: res.consult,
      participant: res.participant && res.participant.id,
      name,
      invite: state.invite,
    });
    save(INVITE_KEY, null);
    state.iceServers = Array.isArray(res.ice_servers) ? res.ice_servers : [];
    attachChat(state.client);
    prefetchConsult(state.client, res.consult);
    i18n.setText($('#waiting-status'), 'join.waiting.status');
    applyParticipant(res.participant || { state: 'lobby' });
  } catch (err) {
    const code = err && err.code;
    if (code === 'invite_used' || code === 'invite_expired' || code === 'invite_invalid' ||
      code === 'invite_revoked') {
      finish(code);
    } else if (code === 'consult_ended') {
      finish('ended');
    } else {
      i18n.setError(errEl, err);
      if (code === 'connection_failed' && state.client) {
        state.client.close();
        state.client = null;
      }
    }
  } finally {
    btn.disabled = false;
    i18n.setText(btn, 'join.submit');
  }
}

async function leave() {
  const client = state.client;
  const s = state.session;
  await stopCall();
  if (client && s) {
    try {
      await client.request('consult.leave', { consult: s.consult });
    } catch {
      /* leaving works locally even when the server cannot be told */
    }
  }
  finish('left', { keepSession: true });
}

function rejoin() {
  if (!state.session) return;
  saveSession({ ...state.session, left: false });
  i18n.setText($('#waiting-status'), 'join.waiting.status');
  if (!state.media.stream) startMedia();
  state.client = createClient();
  state.client.connect();
  showScreen('waiting');
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  await i18n.init();
  state.view = new CallView({ tiles: $('#tiles'), status: $('#call-status'), nameOf });
  exposeHooks(() => state.view);
  state.chat = new PatientChat({
    root: $('#consult-chat'),
    kind: 'consult',
  });
  // For tests of the lobby gate: what the server answers media requests from the waiting room
  // (the page itself sets up media only once admitted).
  window.__spk.media.tryInLobby = async () => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'sendonly' });
    const offer = await pc.createOffer();
    pc.close();
    const codes = {};
    for (const [type, fields] of [['media.publish', { sdp: offer.sdp }], ['media.subscribe', {}]]) {
      try {
        await state.client.request(type, { consult: state.session.consult, ...fields });
        codes[type] = 'ok';
      } catch (err) {
        codes[type] = err && err.code;
      }
    }
    return codes;
  };
  bindMediaControls();
  $('#join-form').addEventListener('submit', onSubmit);
  $('#waiting-leave').addEventListener('click', leave);
  $('#consult-leave').addEventListener('click', leave);
  const rejoinBtn = h('button', {
    type: 'button',
    id: 'ended-rejoin',
    class: 'btn btn-secondary',
    hidden: true,
    dataset: { testid: 'ended-rejoin' },
    text: ['join.end.rejoin'],
    on: { click: rejoin },
  });
  $('#screen-ended').append(rejoinBtn);

  const fromHash = readInvite();
  let session = load(SESSION_KEY);
  if (fromHash && session && session.invite !== fromHash) session = null;
  if (fromHash) {
    save(INVITE_KEY, fromHash);
    save(ENDED_KEY, null);
  }
  state.invite = fromHash || load(INVITE_KEY);
  state.session = session;
  save(SESSION_KEY, session);

  // Opening another invite link in this tab only changes the fragment: start over with it.
  window.addEventListener('hashchange', () => window.location.reload());

  if (session && session.left) {
    finish('left', { keepSession: true });
    return;
  }
  if (session) {
    // A reload after the invite was used: sign in again with the session token.
    showScreen('loading', { focus: false });
    startMedia();
    state.client = createClient();
    state.client.connect();
    return;
  }
  if (!state.invite) {
    const ended = load(ENDED_KEY);
    if (ended && ENDINGS[ended.kind]) finish(ended.kind, { reason: ended.reason || '' });
    else finish('missing');
    return;
  }
  if (!CODE_RE.test(state.invite)) {
    finish('invite_invalid');
    return;
  }
  showScreen('setup', { focus: false });
  startMedia();
}

main().catch((err) => {
  console.error(err);
});
