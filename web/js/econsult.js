// Patient's e-consult page: /econsult.html#<invite code> (the invite of a consult that has an
// e-consult conversation). The patient types a name, redeems the invite, and then writes to the
// practice, sends photos and self-measurements in the end-to-end encrypted conversation.
import * as i18n from './i18n.js';
import { Client } from './protocol.js';
import { $, $$, show, announce } from './dom.js';
import { PatientChat } from './chat/patient_chat.js';
import { MeasurementForm } from './chat/measurements.js';

// Kept in localStorage (not sessionStorage): an e-consult is answered later, and the patient
// comes back to this page with the same link on the same device while the session lasts.
const SESSION_KEY = 'spk.econsult.session';
const CODE_RE = /^[A-Za-z0-9_-]{8,128}$/;

const state = { invite: null, session: null, client: null, chat: null };

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    return s && typeof s.token === 'string' && typeof s.consult === 'string' ? s : null;
  } catch {
    return null;
  }
}

function saveSession(s) {
  state.session = s;
  try {
    if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else localStorage.removeItem(SESSION_KEY);
  } catch {
    /* the page works; a reload starts over */
  }
}

function readInvite() {
  const raw = window.location.hash.replace(/^#/, '');
  if (!raw) return null;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  let code = raw;
  try {
    code = decodeURIComponent(raw).trim();
  } catch {
    /* keep raw */
  }
  return code.startsWith('invite=') ? code.slice(7) : code;
}

function showScreen(name, focus = true) {
  for (const el of $$('.screen')) show(el, el.id === `screen-${name}`);
  document.body.dataset.screen = name;
  if (focus) $(`#screen-${name} h1`)?.focus();
}

const ENDINGS = {
  missing: ['join.end.missing.title', 'join.end.missing.text'],
  invite_invalid: ['join.end.invalid.title', 'error.invite_invalid'],
  invite_used: ['join.end.used.title', 'error.invite_used'],
  invite_expired: ['join.end.expired.title', 'error.invite_expired'],
  invite_revoked: ['join.end.revoked.title', 'error.invite_revoked'],
  consult_ended: ['join.end.ended.title', 'econsult.ended'],
  session: ['join.end.session.title', 'join.end.session.text'],
};

function finish(kind) {
  const [title, text] = ENDINGS[kind] || ENDINGS.session;
  i18n.setText($('#ended-title'), title);
  i18n.setText($('#ended-text'), text);
  i18n.setText($('#ended-hint'), 'join.end.contact');
  $('#screen-ended').dataset.kind = kind;
  if (kind !== 'missing') saveSession(null);
  if (state.client) state.client.close();
  state.client = null;
  showScreen('ended');
  announce(title);
}

function banner(key) {
  const el = $('#connection');
  i18n.setText(el, key);
  show(el, !!key);
}

function connect() {
  const client = new Client({
    onOpen: async (c) => {
      if (!state.session) return;
      await c.request('auth', { token: state.session.token });
      state.chat.attach(c, state.session.consult).catch(() => {});
    },
  });
  client.on('connection', ({ state: s }) =>
    banner(s === 'reconnecting' ? 'conn.reconnecting' : null),
  );
  client.on('session-error', ({ error }) => {
    const code = error && error.code;
    if (code === 'connection_lost' || code === 'timeout') return;
    if (code === 'shutting_down' || code === 'internal' || code === 'rate_limited') {
      setTimeout(() => state.client && state.client.reconnectNow(), 3000);
      return;
    }
    finish(code === 'consult_ended' ? 'consult_ended' : 'session');
  });
  client.on('session.expired', () => finish('session'));
  client.on('consult.ended', () => finish('consult_ended'));
  client.on('denied', () => finish('session'));
  state.client = client;
  client.connect();
  return client;
}

async function onSetup(ev) {
  ev.preventDefault();
  const input = $('#name');
  const name = input.value.trim();
  const err = $('#setup-error');
  if (!name) {
    i18n.setText(err, 'join.name.required');
    show(err, true);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  show(err, false);
  const btn = $('#setup-submit');
  btn.disabled = true;
  try {
    const client = state.client || connect();
    await client.waitOpen();
    const res = await client.request('invite.redeem', { invite: state.invite, name });
    saveSession({ token: res.session_token, consult: res.consult, name, invite: state.invite });
    showScreen('econsult');
    await state.chat.attach(client, res.consult).catch(() => {});
  } catch (e) {
    const code = e && e.code;
    if (ENDINGS[code]) finish(code);
    else i18n.setError(err, e);
  } finally {
    btn.disabled = false;
  }
}

async function main() {
  await i18n.init();
  state.chat = new PatientChat({
    root: $('#econsult-chat'),
    kind: 'econsult',
    titleKey: 'econsult.chatTitle',
    queue: true,
  });
  new MeasurementForm($('#measure-form'), {
    onSubmit: (msg) => state.chat.panel.sendMessage(msg),
  });
  $('#setup-form').addEventListener('submit', onSetup);
  window.addEventListener('hashchange', () => window.location.reload());

  const code = readInvite();
  const session = load();
  if (session && (!code || session.invite === code)) {
    state.session = session;
    showScreen('econsult', false);
    connect();
    return;
  }
  if (!code) {
    finish('missing');
    return;
  }
  if (!CODE_RE.test(code)) {
    finish('invite_invalid');
    return;
  }
  state.invite = code;
  saveSession(null);
  showScreen('setup', false);
}

main().catch((err) => console.error(err));
