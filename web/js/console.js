// GP console: /console (optionally /console#token=<jwt>).
import * as i18n from './i18n.js';
import { Client, ProtocolError } from './protocol.js';
import * as media from './media.js';
import { $, $$, h, show, announce, confirmStep, copyText } from './dom.js';
import { renderRoster, initials } from './roster.js';
import { renderFacts } from './facts.js';
import { consultTitle, renderConsultList, updateTitle } from './consult_list.js';
import { CallView, exposeHooks } from './call.js';
import { ConsoleChat } from './chat/console_chat.js';

const TOKEN_KEY = 'spk.console.token';
const JOINED_KEY = 'spk.console.joined';
const PRACTICE_KEY = 'spk.console.practice';
const CALL_KEY = 'spk.console.call';
const LOBBY_POLL_MS = 8000;

const state = {
  token: null,
  user: null,
  practice: '', // for a remote GP: the practice they act for
  client: null,
  consults: new Map(), // id -> { consult, participants, lobby, facts, joined, me, invite }
  order: [],
  selected: null,
  denying: null, // participant id whose deny form is open
  denyReason: '',
  lostConnection: false,
  local: null, // local camera { stream, video, audio }
  localReady: null, // Promise of local
  mic: true,
  camera: true,
  audioOnly: false,
  view: null, // CallView: audio and video of one joined consult
  openOnStart: null, // consult id from #consult=… (a specialist's link)
  link: null, // single-use console link code from #link=… (a practice system's link)
  pollTimer: 0,
  chat: null, // ConsoleChat: consult chat, inbox, conversations (web/js/chat/)
};

// ---- storage -------------------------------------------------------------------------------

function store(key, value) {
  try {
    if (value === null || value === undefined) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, typeof value === 'string' ? value : JSON.stringify(value));
  } catch {
    /* storage unavailable: the session lasts as long as the page */
  }
}

function loadToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function loadJoined() {
  try {
    const list = JSON.parse(sessionStorage.getItem(JOINED_KEY) || '[]');
    return Array.isArray(list) ? list.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function saveJoined() {
  store(
    JOINED_KEY,
    [...state.consults.values()].filter((e) => e.joined).map((e) => e.consult.id),
  );
}

// Takes a token from #token=… (and a consult to open from &consult=…) and removes them from
// the address bar and history.
function tokenFromFragment() {
  const raw = window.location.hash.replace(/^#/, '');
  if (!raw) return null;
  const params = new URLSearchParams(raw);
  const token = params.get('token');
  const consult = params.get('consult');
  const link = params.get('link');
  if (link && /^[A-Za-z0-9_-]{22}$/.test(link)) state.link = link;
  if (consult && /^[A-Za-z0-9_-]{1,127}$/.test(consult)) state.openOnStart = consult;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token && token.trim() ? token.trim() : null;
}

function loadCallConsult() {
  try {
    return sessionStorage.getItem(CALL_KEY);
  } catch {
    return null;
  }
}

// ---- helpers -------------------------------------------------------------------------------

function entry(id) {
  if (!state.consults.has(id)) {
    state.consults.set(id, {
      consult: { id },
      participants: [],
      lobby: [],
      facts: [],
      joined: false,
      me: null,
      invite: null,
    });
  }
  return state.consults.get(id);
}

function current() {
  return state.selected ? state.consults.get(state.selected) || null : null;
}

function request(type, fields) {
  if (!state.client) return Promise.reject(new ProtocolError('connection_lost'));
  return state.client.request(type, fields);
}

async function run(btn, errEl, fn) {
  i18n.setError(errEl, null);
  if (btn) btn.disabled = true;
  try {
    return await fn();
  } catch (err) {
    i18n.setError(errEl, err);
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

function upsert(list, p) {
  const i = list.findIndex((x) => x.id === p.id);
  if (i >= 0) list[i] = { ...list[i], ...p };
  else list.push(p);
}

function canJudge() {
  return state.user && (state.user.role === 'gp' || state.user.role === 'remote_gp');
}

// ---- screens -------------------------------------------------------------------------------

function showScreen(name) {
  show($('#screen-signin'), name === 'signin');
  show($('#screen-app'), name === 'app');
  document.body.dataset.screen = name;
  if (name === 'signin') {
    show($('#user-info'), false);
    $('#token').focus();
  }
}

function setConnectionBanner(key) {
  const el = $('#connection');
  if (!key) {
    show(el, false);
    i18n.setText(el, null);
  } else {
    i18n.setText(el, key);
    show(el, true);
  }
}

// ---- sign in -------------------------------------------------------------------------------

function startSession(token) {
  state.token = token;
  if (state.client) state.client.close();
  const client = new Client({ onOpen: restore });
  state.client = client;
  client.on('connection', onConnection);
  client.on('session-error', ({ error }) => onSessionError(error));
  client.on('lobby.update', onLobbyUpdate);
  client.on('roster', onRoster);
  client.on('consult.facts', onFacts);
  client.on('consult.ended', onEnded);
  client.on('access.ended', onAccessEnded);
  client.on('session.expired', () => {
    signOut();
    i18n.setError($('#signin-error'), { code: 'token_expired' });
  });
  client.on('specialist.invited', (msg) => {
    announce('console.specialist.invitedYou', { by: msg.by });
    if (msg.consult) openConsult(msg.consult);
  });
  const btn = $('#signin-submit');
  btn.disabled = true;
  client.connect();
}

async function restore(client) {
  let res;
  if (state.link) {
    // A console link from the practice system: used once; its session token signs in later.
    res = await client.request('console.redeem', { link: state.link });
    state.link = null;
    state.token = res.session_token;
  } else {
    res = await client.request('auth', { token: state.token });
  }
  state.user = res.user || {};
  store(TOKEN_KEY, state.token);
  renderUser();
  if (document.body.dataset.screen !== 'app') {
    showScreen('app');
    $('#new-patient').focus();
  }
  $('#signin-submit').disabled = false;
  state.chat.attach(client, state.user).catch(() => {});
  await refreshList().catch((err) => i18n.setError($('#list-error'), err));
  for (const id of loadJoined()) {
    try {
      await joinConsult(id);
    } catch (err) {
      if (err.code === 'connection_lost') throw err;
    }
  }
  if (state.openOnStart) {
    const id = state.openOnStart;
    state.openOnStart = null;
    openConsult(id, { select: true });
  }
  if (state.selected) await loadConsult(state.selected).catch(() => {});
  renderAll();
  // After a reload: media again for the consult it was running for.
  const callId = loadCallConsult();
  const callEntry = callId ? state.consults.get(callId) : null;
  if (!state.view.active() && callEntry && callEntry.joined) startCall(callId);
}

// A consult the user was invited to (a specialist cannot list consults).
function openConsult(id, { select: pick = false } = {}) {
  entry(id);
  if (!state.order.includes(id)) state.order.push(id);
  loadConsult(id).catch((err) => {
    if (err && (err.code === 'not_found' || err.code === 'forbidden')) {
      state.consults.delete(id);
      state.order = state.order.filter((x) => x !== id);
      renderList();
    }
  });
  renderList();
  if (pick) select(id);
}

function onSessionError(err) {
  const code = err && err.code;
  if (code === 'connection_lost' || code === 'timeout') return;
  if (code === 'shutting_down' || code === 'internal' || code === 'rate_limited') {
    setTimeout(() => state.client && state.client.reconnectNow(), 3000);
    return;
  }
  signOut();
  i18n.setError($('#signin-error'), err);
}

function signOut() {
  stopCall({ tell: false });
  state.chat.signOut();
  if (state.client) state.client.close();
  state.client = null;
  state.token = null;
  state.user = null;
  state.consults.clear();
  state.order = [];
  state.selected = null;
  store(TOKEN_KEY, null);
  store(JOINED_KEY, null);
  store(PRACTICE_KEY, null);
  store(CALL_KEY, null);
  state.practice = '';
  stopLocalMedia();
  stopPolling();
  setConnectionBanner(null);
  $('#signin-submit').disabled = false;
  $('#token').value = '';
  renderAll();
  showScreen('signin');
}

function onConnection({ state: s }) {
  if (s === 'reconnecting' && state.user) {
    state.lostConnection = true;
    setConnectionBanner('conn.reconnecting');
    state.view.setSignalingLost(true);
  } else if (s === 'connecting' && !state.user) {
    setConnectionBanner(null);
  } else if (s === 'open') {
    if (state.lostConnection) announce('conn.restored');
    state.lostConnection = false;
    setConnectionBanner(null);
    // Media is built again over the restored connection.
    state.view.setSignalingLost(false);
  }
  if (s === 'reconnecting' && !state.user) {
    // Could not reach the server for the first sign-in.
    state.client.close();
    state.client = null;
    $('#signin-submit').disabled = false;
    i18n.setError($('#signin-error'), { code: 'connection_failed' });
  }
}

// ---- data ----------------------------------------------------------------------------------

function isRemote() {
  return !!state.user && state.user.role === 'remote_gp';
}

// A specialist sees only the consults they were invited to and joins them; no lists, invites,
// lobby or checks. A partner (pharmacy, district nursing, ...) has no consults at all, only the
// care-team conversations of the chat.
function isSpecialist() {
  return !!state.user && (state.user.role === 'specialist' || state.user.role === 'partner');
}

// The practice field of consult.list / consult.create: a remote GP names the practice.
function practiceFields() {
  return isRemote() && state.practice ? { practice: state.practice } : {};
}

async function refreshList() {
  if (isSpecialist()) {
    renderList();
    return;
  }
  // A session from a practice system's console link is for its one consult.
  if (state.user && state.user.consult) {
    entry(state.user.consult);
    renderList();
    return;
  }
  if (isRemote() && !state.practice) {
    state.consults.clear();
    state.order = [];
    state.selected = null;
    renderAll();
    return;
  }
  const res = await request('consult.list', practiceFields());
  const seen = new Set();
  for (const c of res.consults || []) {
    const e = entry(c.id);
    e.consult = { ...e.consult, ...c };
    seen.add(c.id);
  }
  for (const [id, e] of state.consults) {
    if (!seen.has(id) && !e.joined) state.consults.delete(id);
  }
  state.order = [...state.consults.values()]
    .sort((a, b) => (a.consult.created_at || 0) - (b.consult.created_at || 0))
    .map((e) => e.consult.id);
  if (state.selected && !state.consults.has(state.selected)) state.selected = null;
  i18n.setError($('#list-error'), null);
  renderList();
}

async function loadConsult(id) {
  const res = await request('consult.get', { consult: id });
  const e = entry(id);
  if (res.consult) e.consult = { ...e.consult, ...res.consult };
  if (Array.isArray(res.participants)) e.participants = res.participants;
  if (Array.isArray(res.lobby)) e.lobby = res.lobby;
  if (Array.isArray(res.facts)) e.facts = res.facts;
  if (e.consult.state === 'ended') removeConsult(id);
  if (id === state.selected) renderDetail();
  renderList();
}

async function joinConsult(id) {
  const res = await request('consult.join', { consult: id });
  const e = entry(id);
  if (res.consult) e.consult = { ...e.consult, ...res.consult };
  e.iceServers = Array.isArray(res.ice_servers) ? res.ice_servers : []; // []: no TURN
  e.me = res.participant || null;
  if (Array.isArray(res.participants)) e.participants = res.participants;
  e.joined = true;
  if (!state.order.includes(id)) state.order.push(id);
  saveJoined();
  await loadConsult(id).catch(() => {});
  return e;
}

function removeConsult(id) {
  const e = state.consults.get(id);
  state.consults.delete(id);
  state.order = state.order.filter((x) => x !== id);
  saveJoined();
  if (state.selected === id) {
    state.selected = null;
    stopPolling();
  }
  if (state.view.consult === id) stopCall({ tell: false });
  if (e && e.joined && ![...state.consults.values()].some((x) => x.joined)) stopLocalMedia();
}

// ---- events --------------------------------------------------------------------------------

function onLobbyUpdate(msg) {
  const e = entry(msg.consult);
  const before = new Set(e.lobby.map((p) => p.id));
  e.lobby = Array.isArray(msg.lobby) ? msg.lobby : [];
  for (const p of e.lobby) {
    if (!before.has(p.id)) announce('console.lobby.arrived', { name: p.name });
  }
  for (const p of e.lobby) upsert(e.participants, p);
  renderList();
  if (msg.consult === state.selected) renderDetail();
}

function onRoster(msg) {
  const e = entry(msg.consult);
  e.participants = Array.isArray(msg.participants) ? msg.participants : [];
  if (state.view.consult === msg.consult) state.view.refreshNames();
  if (msg.consult === state.selected) renderDetail();
}

function onFacts(msg) {
  const e = entry(msg.consult);
  e.facts = Array.isArray(msg.facts) ? msg.facts : [];
  if (msg.consult === state.selected) renderFactList(e);
}

function onEnded(msg) {
  const e = state.consults.get(msg.consult);
  const title = e ? consultTitle(e) : '';
  const wasSelected = state.selected === msg.consult;
  removeConsult(msg.consult);
  announce('console.detail.endedNotice', { title });
  renderAll();
  if (wasSelected) focusDetail();
}

// Access to a consult ended while it was open here (delegation revoked or run out, consent
// withdrawn): the consult leaves the view, and the reason is announced.
function onAccessEnded(msg) {
  const e = state.consults.get(msg.consult);
  const title = e ? consultTitle(e) : '';
  const wasSelected = state.selected === msg.consult;
  if (wasSelected) stopCall({ tell: false });
  removeConsult(msg.consult);
  announce(`console.access.${msg.reason}`, { title });
  renderAll();
  if (wasSelected) focusDetail();
}

// ---- rendering -----------------------------------------------------------------------------

function renderList() {
  const entries = state.order.map((id) => state.consults.get(id)).filter(Boolean);
  updateTitle(state.consults.values());
  renderConsultList($('#consult-list'), entries, {
    selected: state.selected,
    emptyKey: listEmptyKey(),
    onSelect: select,
  });
}

function listEmptyKey() {
  if (isSpecialist()) return 'console.consults.specialist';
  if (isRemote() && !state.practice) return 'console.practice.needed';
  return 'console.consults.empty';
}

function renderUser() {
  const u = state.user || {};
  $('#user-name').textContent = u.name || u.sub || '';
  $('#user-avatar').textContent = initials(u.name || u.sub);
  const args = { role: { key: `role.${u.role}` }, practice: u.practice || '' };
  if (u.acts_for) {
    i18n.setText($('#user-meta'), 'console.user.metaActsFor', { ...args, actsFor: u.acts_for });
  } else {
    i18n.setText($('#user-meta'), 'console.user.meta', args);
  }
  show($('#user-info'), true);
  show($('#practice-form'), isRemote());
  $('#practice').value = state.practice;
  const judge = canJudge();
  show($('#speak-form'), judge);
  show($('#meekijk-title').closest('section'), judge);
  const staff = !isSpecialist();
  for (const id of ['#new-title', '#invite-title', '#lobby-title', '#checks-title']) {
    show($(id).closest('section'), staff);
  }
  show($('#list-refresh'), staff);
  show($('#list-title').closest('section'), state.user.role !== 'partner');
  document.body.classList.toggle('role-specialist', !staff);
}

function renderAll() {
  renderList();
  renderDetail();
}

function renderDetail() {
  const e = current();
  const chatView = state.chat && state.chat.viewing();
  show($('#detail-empty'), !e && !chatView);
  show($('#detail'), !!e && !chatView);
  if (state.chat) state.chat.renderConsult(chatView ? null : e);
  if (!e) return;
  const c = e.consult;
  $('#detail-title').textContent = consultTitle(e);
  i18n.setText($('#detail-meta'), 'console.detail.meta', {
    patient: c.patient || '',
    time: { time: c.created_at || 0, date: true },
  });
  show($('#consult-join'), !e.joined);
  show($('#consult-leave'), e.joined);
  show($('#detail-joined'), e.joined);
  show($('#consult-end'), !isSpecialist());
  show($('#media-card'), e.joined);
  show($('#lobby-hint'), !e.joined);
  renderCall(e);
  renderInvite(e);
  renderLobby(e);
  renderParticipants(e);
  renderFactList(e);
}

function renderInvite(e) {
  const inv = e.invite;
  show($('#invite-result'), !!inv);
  show($('#invite-copied'), false);
  if (!inv) return;
  $('#invite-url').value = inv.url;
  i18n.setText($('#invite-expiry'), 'console.invite.expires', {
    time: { time: inv.expires_at, date: true },
  });
}

function renderLobby(e) {
  const ul = $('#lobby-list');
  const focused = document.activeElement && document.activeElement.id === 'deny-reason';
  if (!e.lobby.length) {
    ul.replaceChildren(h('li', { class: 'empty', text: ['console.lobby.empty'] }));
    return;
  }
  ul.replaceChildren(...e.lobby.map((p) => lobbyItem(e, p)));
  if (focused && $('#deny-reason')) $('#deny-reason').focus();
}

function lobbyItem(e, p) {
  const li = h(
    'li',
    { class: 'lobby-item', dataset: { testid: 'lobby-entry', participant: p.id } },
    h('span', { class: 'avatar role-patient', 'aria-hidden': 'true', raw: initials(p.name) }),
    h(
      'span',
      { class: 'who' },
      h('span', { class: 'name', dataset: { testid: 'lobby-name' }, raw: p.name }),
      h('span', {
        class: 'since',
        text: p.since
          ? ['console.lobby.since', { time: { time: p.since } }]
          : ['participant.state.lobby'],
      }),
      p.online === false
        ? h('span', { class: 'badge badge-left', text: ['participant.offline'] })
        : null,
    ),
  );
  if (state.denying === p.id) {
    li.append(denyForm(e, p));
    return li;
  }
  const actions = h(
    'span',
    { class: 'item-actions' },
    h('button', {
      type: 'button',
      class: 'btn btn-primary btn-small',
      dataset: { testid: 'lobby-admit' },
      text: ['console.lobby.admit'],
      'aria-label': i18n.t('console.lobby.admitName', { name: p.name }),
      on: { click: (ev) => admit(ev.currentTarget, e, p) },
    }),
    h('button', {
      type: 'button',
      class: 'btn btn-secondary btn-small',
      dataset: { testid: 'lobby-deny' },
      text: ['console.lobby.deny'],
      'aria-label': i18n.t('console.lobby.denyName', { name: p.name }),
      on: {
        click: () => {
          state.denying = p.id;
          state.denyReason = '';
          renderLobby(e);
          $('#deny-reason').focus();
        },
      },
    }),
  );
  li.append(actions);
  return li;
}

function denyForm(e, p) {
  const input = h('input', {
    id: 'deny-reason',
    type: 'text',
    maxlength: '200',
    autocomplete: 'off',
    value: state.denyReason,
    dataset: { testid: 'deny-reason' },
    on: { input: (ev) => (state.denyReason = ev.target.value) },
  });
  const form = h(
    'form',
    {
      class: 'deny-form',
      novalidate: true,
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const btn = form.querySelector('button[type=submit]');
          const reason = state.denyReason.trim();
          const fields = { consult: e.consult.id, participant: p.id };
          if (reason) fields.reason = reason;
          const ok = await run(btn, $('#lobby-error'), () => request('lobby.deny', fields));
          if (ok) {
            state.denying = null;
            e.lobby = e.lobby.filter((x) => x.id !== p.id);
            announce('console.lobby.denied', { name: p.name });
            renderDetail();
            renderList();
            $('#lobby-title').focus();
          }
        },
      },
    },
    h('label', { for: 'deny-reason', text: ['console.lobby.reason'] }),
    input,
    h(
      'span',
      { class: 'item-actions' },
      h('button', {
        type: 'submit',
        class: 'btn btn-danger btn-small',
        dataset: { testid: 'lobby-deny-confirm' },
        text: ['console.lobby.denyConfirm'],
      }),
      h('button', {
        type: 'button',
        class: 'btn btn-ghost btn-small',
        text: ['common.cancel'],
        on: {
          click: () => {
            state.denying = null;
            renderLobby(e);
          },
        },
      }),
    ),
  );
  return form;
}

function renderParticipants(e) {
  const meId = e.me ? e.me.id : null;
  renderRoster($('#roster'), e.participants, meId, (p) => {
    if (p.role !== 'patient' || p.state !== 'admitted' || isSpecialist()) return null;
    return h('button', {
      type: 'button',
      class: 'btn btn-ghost btn-small',
      dataset: { testid: 'send-back' },
      text: ['console.roster.sendBack'],
      'aria-label': i18n.t('console.roster.sendBackName', { name: p.name }),
      on: { click: (ev) => sendBack(ev.currentTarget, e, p) },
    });
  });
  // Patients whose checks can be recorded: admitted ones.
  const patients = e.participants.filter((p) => p.role === 'patient' && p.state === 'admitted');
  const sel = $('#checks-patient');
  const prev = sel.value;
  sel.replaceChildren(...patients.map((p) => h('option', { value: p.id, raw: p.name })));
  if (patients.some((p) => p.id === prev)) sel.value = prev;
  show($('#checks-forms'), patients.length > 0);
  show($('#checks-none'), patients.length === 0);
}

function renderFactList(e) {
  renderFacts($('#facts'), e, state.user);
}

function addFact(e, fact) {
  if (!fact) return;
  const same = (f) => f.kind === fact.kind && f.subject === fact.subject && f.at === fact.at;
  if (!e.facts.some(same)) e.facts.push(fact);
  if (e.consult.id === state.selected) renderFactList(e);
}

// ---- actions -------------------------------------------------------------------------------

function select(id) {
  state.chat.closeView();
  if (state.selected !== id) {
    state.denying = null;
    resetForms();
  }
  state.selected = id;
  renderAll();
  focusDetail();
  loadConsult(id).catch((err) => i18n.setError($('#detail-error'), err));
  startPolling();
}

function focusDetail() {
  const target = state.selected ? $('#detail-title') : null;
  if (target) target.focus();
}

function resetForms() {
  const errors = ['detail', 'invite', 'lobby', 'roster', 'checks', 'meekijk'];
  for (const id of errors) i18n.setError($(`#${id}-error`), null);
  $('#identity-verified').checked = false;
  $('#speak-confirmed').checked = false;
  $('#specialist-sub').value = '';
  $('#specialist-name').value = '';
}

function startPolling() {
  stopPolling();
  state.pollTimer = setInterval(() => {
    const e = current();
    if (!e || e.joined || !state.client || state.client.state !== 'open') return;
    loadConsult(e.consult.id).catch(() => {});
  }, LOBBY_POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = 0;
}

// The camera and microphone, opened once for the console's calls.
function startLocalMedia() {
  if (state.localReady) return state.localReady;
  const ready = (async () => {
    const res = await media.openMedia({ video: true, audio: true });
    if (state.localReady !== ready) {
      media.stop(res.stream);
      return null;
    }
    state.local = res;
    media.attach($('#local-video'), res.video ? res.stream : null);
    applyLocalControls();
    return res;
  })();
  state.localReady = ready;
  return ready;
}

function stopLocalMedia() {
  state.localReady = null;
  if (!state.local) return;
  media.stop(state.local.stream);
  state.local = null;
  media.attach($('#local-video'), null);
}

// ---- call ----------------------------------------------------------------------------------

function nameOf(pid) {
  const e = state.view && state.view.consult ? state.consults.get(state.view.consult) : null;
  const p = e ? e.participants.find((x) => x.id === pid) : null;
  return p ? p.name : '';
}

async function startCall(id) {
  const client = state.client;
  store(CALL_KEY, id);
  const local = await startLocalMedia();
  const e = state.consults.get(id);
  if (!e || !e.joined || state.client !== client || !client) return;
  const run = state.view.start({
    client,
    consult: id,
    stream: local ? local.stream : null,
    sendVideo: state.camera && !state.audioOnly,
    e2ee: e.consult.e2ee === true,
    chat: state.chat ? state.chat.engine : null,
    iceServers: e.iceServers ?? null,
  });
  renderDetail();
  await run;
  renderDetail();
}

async function stopCall({ tell = true } = {}) {
  if (!state.view || !state.view.active()) return;
  store(CALL_KEY, null);
  await state.view.stop({ tell });
  renderDetail();
}

function renderCall(e) {
  const here = state.view.consult === e.consult.id;
  const other = state.view.active() && !here;
  show($('#call-box'), e.joined && here);
  show($('#call-elsewhere'), e.joined && !here);
  i18n.setText(
    $('#call-elsewhere p'),
    other ? 'console.call.elsewhere' : 'console.call.off',
  );
  i18n.setText($('#call-here'), other ? 'console.call.here' : 'console.call.start');
}

function applyLocalControls() {
  const l = state.local || { stream: null, video: false, audio: false };
  media.setEnabled(l.stream, 'audio', state.mic);
  media.setEnabled(l.stream, 'video', state.camera);
  const mic = $('#call-mic');
  const cam = $('#call-camera');
  const only = $('#call-audio-only');
  mic.disabled = !l.audio;
  mic.setAttribute('aria-pressed', String(l.audio && state.mic));
  cam.disabled = !l.video;
  cam.setAttribute('aria-pressed', String(l.video && state.camera));
  only.disabled = !l.video;
  only.setAttribute('aria-pressed', String(state.audioOnly));
  const tiles = $('#tiles');
  tiles.classList.toggle('no-local-video', !l.video);
  tiles.classList.toggle('video-off', !l.video || !state.camera || state.audioOnly);
  tiles.classList.toggle('audio-off', !l.audio || !state.mic);
  tiles.classList.toggle('audio-only', state.audioOnly);
}

function bindCallControls() {
  $('#call-mic').addEventListener('click', () => {
    state.mic = !state.mic;
    applyLocalControls();
  });
  $('#call-camera').addEventListener('click', () => {
    state.camera = !state.camera;
    state.view.setSendVideo(state.camera && !state.audioOnly);
    applyLocalControls();
  });
  $('#call-audio-only').addEventListener('click', () => {
    state.audioOnly = !state.audioOnly;
    state.view.setSendVideo(state.camera && !state.audioOnly);
    applyLocalControls();
  });
  $('#call-leave').addEventListener('click', (ev) => {
    const e = state.view.consult ? state.consults.get(state.view.consult) : null;
    if (e) leaveConsult(ev.currentTarget, e);
  });
  $('#call-here').addEventListener('click', () => {
    const e = current();
    if (e && e.joined) startCall(e.consult.id);
  });
}

async function onCreate(ev) {
  ev.preventDefault();
  const patientInput = $('#new-patient');
  const patient = patientInput.value.trim();
  const title = $('#new-title-input').value.trim();
  const errEl = $('#new-error');
  if (!patient) {
    i18n.setText(errEl, 'console.new.patientRequired');
    show(errEl, true);
    patientInput.setAttribute('aria-invalid', 'true');
    patientInput.focus();
    return;
  }
  patientInput.removeAttribute('aria-invalid');
  const fields = { patient, ...practiceFields() };
  if (title) fields.title = title;
  const btn = ev.submitter || $('[data-testid=new-consult-submit]');
  const res = await run(btn, errEl, () => request('consult.create', fields));
  if (!res) return;
  const e = entry(res.consult.id);
  e.consult = res.consult;
  if (!state.order.includes(e.consult.id)) state.order.push(e.consult.id);
  $('#new-form').reset();
  announce('console.new.created', { title: consultTitle(e) });
  select(e.consult.id);
}

async function onInvite(ev) {
  const e = current();
  if (!e) return;
  const res = await run(ev.currentTarget, $('#invite-error'), () =>
    request('invite.create', { consult: e.consult.id }),
  );
  if (!res || !res.invite) return;
  e.invite = res.invite;
  renderInvite(e);
  $('#invite-url').focus();
  $('#invite-url').select();
  announce('console.invite.created');
}

async function onCopy() {
  const ok = await copyText($('#invite-url').value, $('#invite-url'));
  const el = $('#invite-copied');
  i18n.setText(el, ok ? 'console.invite.copied' : 'console.invite.copyFailed');
  show(el, true);
  clearTimeout(Number(el.dataset.timer));
  el.dataset.timer = String(setTimeout(() => show(el, false), 4000));
}

async function onJoin(ev) {
  const e = current();
  if (!e) return;
  const ok = await run(ev.currentTarget, $('#detail-error'), () => joinConsult(e.consult.id));
  if (!ok) return;
  announce('console.detail.joinedNotice');
  renderAll();
  startCall(e.consult.id);
}

function onLeave(ev) {
  const e = current();
  if (e) leaveConsult(ev.currentTarget, e);
}

async function leaveConsult(btn, e) {
  if (state.view.consult === e.consult.id) await stopCall();
  const ok = await run(btn, $('#detail-error'), () =>
    request('consult.leave', { consult: e.consult.id }),
  );
  if (!ok) return;
  e.joined = false;
  e.me = null;
  saveJoined();
  if (![...state.consults.values()].some((x) => x.joined)) stopLocalMedia();
  renderAll();
}

async function onEnd(ev) {
  const e = current();
  if (!e) return;
  const btn = ev.currentTarget;
  if (!confirmStep(btn, 'console.detail.end', 'console.detail.endConfirm')) return;
  const ok = await run(btn, $('#detail-error'), () =>
    request('consult.end', { consult: e.consult.id }),
  );
  if (!ok) return;
  const title = consultTitle(e);
  removeConsult(e.consult.id);
  announce('console.detail.endedNotice', { title });
  renderAll();
}

async function admit(btn, e, p) {
  if (state.chat) state.chat.admitting(e.consult.id, true);
  let res;
  try {
    res = await run(btn, $('#lobby-error'), () =>
      request('lobby.admit', { consult: e.consult.id, participant: p.id }),
    );
  } finally {
    if (state.chat) state.chat.admitting(e.consult.id, false);
  }
  if (!res) return;
  e.lobby = e.lobby.filter((x) => x.id !== p.id);
  upsert(e.participants, res.participant || { ...p, state: 'admitted' });
  if (state.chat) state.chat.admitted(e.consult.id, e.participants);
  announce('console.lobby.admitted', { name: p.name });
  renderDetail();
  renderList();
  // The admit button is gone; continue where the next step is: the checks.
  const next = $('#checks-patient');
  if (next && !next.closest('[hidden]')) next.focus();
  else $('#lobby-title').focus();
}

async function sendBack(btn, e, p) {
  const ok = await run(btn, $('#roster-error'), () =>
    request('lobby.send_back', { consult: e.consult.id, participant: p.id }),
  );
  if (!ok) return;
  upsert(e.participants, { ...p, state: 'lobby' });
  announce('console.roster.sentBack', { name: p.name });
  renderDetail();
  $('#lobby-title').focus();
}

async function onIdentity(ev) {
  ev.preventDefault();
  const e = current();
  const participant = $('#checks-patient').value;
  if (!e || !participant) return;
  const res = await run(ev.submitter, $('#checks-error'), () =>
    request('identity.record', {
      consult: e.consult.id,
      participant,
      method: $('#identity-method').value,
      verified: $('#identity-verified').checked,
    }),
  );
  if (res) {
    addFact(e, res.fact);
    announce('console.recorded');
  }
}

async function onSpeak(ev) {
  ev.preventDefault();
  const e = current();
  const participant = $('#checks-patient').value;
  if (!e || !participant) return;
  const res = await run(ev.submitter, $('#checks-error'), () =>
    request('speak_freely.record', {
      consult: e.consult.id,
      participant,
      confirmed: $('#speak-confirmed').checked,
    }),
  );
  if (res) {
    addFact(e, res.fact);
    announce('console.recorded');
  }
}

async function onConsent(ev) {
  ev.preventDefault();
  const e = current();
  if (!e) return;
  const res = await run(ev.submitter, $('#meekijk-error'), () =>
    request('consent.record', {
      consult: e.consult.id,
      scope: 'meekijkconsult',
      given: $('#consent-given').value === 'yes',
      method: $('#consent-method').value,
    }),
  );
  if (res) {
    addFact(e, res.fact);
    announce('console.recorded');
  }
}

async function onSpecialist(ev) {
  ev.preventDefault();
  const e = current();
  if (!e) return;
  const subInput = $('#specialist-sub');
  const specialist = subInput.value.trim();
  if (!specialist) {
    i18n.setText($('#meekijk-error'), 'console.specialist.subRequired');
    show($('#meekijk-error'), true);
    subInput.setAttribute('aria-invalid', 'true');
    subInput.focus();
    return;
  }
  subInput.removeAttribute('aria-invalid');
  const fields = { consult: e.consult.id, specialist };
  const name = $('#specialist-name').value.trim();
  if (name) fields.name = name;
  const res = await run(ev.submitter, $('#meekijk-error'), () =>
    request('specialist.invite', fields),
  );
  if (res) {
    addFact(e, res.fact);
    $('#specialist-form').reset();
    announce('console.specialist.invited', { name: name || specialist });
  }
}

async function onPractice(ev) {
  ev.preventDefault();
  state.practice = $('#practice').value.trim();
  store(PRACTICE_KEY, state.practice || null);
  for (const [id, e] of state.consults) if (!e.joined) state.consults.delete(id);
  state.order = state.order.filter((id) => state.consults.has(id));
  if (state.selected && !state.consults.has(state.selected)) state.selected = null;
  await run(ev.submitter, $('#list-error'), refreshList);
  renderAll();
}

function onSignIn(ev) {
  ev.preventDefault();
  const token = $('#token').value.trim();
  i18n.setError($('#signin-error'), null);
  if (!token) {
    i18n.setText($('#signin-error'), 'console.signin.required');
    show($('#signin-error'), true);
    $('#token').focus();
    return;
  }
  startSession(token);
}

// ---- start ---------------------------------------------------------------------------------

async function main() {
  await i18n.init();
  state.view = new CallView({ tiles: $('#tiles'), status: $('#call-status'), nameOf });
  exposeHooks(() => state.view);
  state.chat = new ConsoleChat({
    inbox: $('#chat-inbox'),
    view: $('#chat-view'),
    consult: $('#consult-chat'),
    // A conversation opened: the consult detail gives way (and comes back when it closes).
    onView: (open) => {
      if (open) {
        state.selected = null;
        stopPolling();
      }
      renderAll();
    },
  });
  bindCallControls();
  i18n.onLanguageChange(() => {
    if (state.user) renderAll();
  });
  $('#signin-form').addEventListener('submit', onSignIn);
  $('#signout').addEventListener('click', signOut);
  $('#new-form').addEventListener('submit', onCreate);
  $('#practice-form').addEventListener('submit', onPractice);
  $('#list-refresh').addEventListener('click', (ev) =>
    run(ev.currentTarget, $('#list-error'), refreshList),
  );
  $('#invite-create').addEventListener('click', onInvite);
  $('#invite-copy').addEventListener('click', onCopy);
  $('#consult-join').addEventListener('click', onJoin);
  $('#consult-leave').addEventListener('click', onLeave);
  $('#consult-end').addEventListener('click', onEnd);
  $('#identity-form').addEventListener('submit', onIdentity);
  $('#speak-form').addEventListener('submit', onSpeak);
  $('#consent-form').addEventListener('submit', onConsent);
  $('#specialist-form').addEventListener('submit', onSpecialist);
  renderAll();

  try {
    state.practice = sessionStorage.getItem(PRACTICE_KEY) || '';
  } catch {
    state.practice = '';
  }
  // A new sign-in link opened in this tab only changes the fragment.
  window.addEventListener('hashchange', () => {
    if (/(^#|&)(token|link)=/.test(window.location.hash)) window.location.reload();
  });
  const token = tokenFromFragment() || loadToken();
  if (state.link) {
    showScreen('signin');
    startSession(null);
  } else if (token) {
    showScreen('signin');
    $('#token').value = '';
    startSession(token);
  } else {
    showScreen('signin');
  }
}

main().catch((err) => console.error(err));
