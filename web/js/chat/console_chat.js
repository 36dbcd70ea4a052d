// The console's chat: the chat of a joined video consult, the inbox of the practice's
// e-consults, care-team conversations and specialist questions, and a conversation's view
// (messages, members, the e-consult invite, self-measurements as a table and a plot).
// Staff consoles keep every conversation's group in step with who may be in it
// (membership.js); specialists and partners read and write.
import * as i18n from '../i18n.js';
import { h, show, announce, copyText } from '../dom.js';
import { ChatEngine } from './engine.js';
import { FileStore } from './files.js';
import { Membership } from './membership.js';
import { ChatPanel } from './panel.js';
import { renderMeasurements } from './measurements.js';

const STAFF = ['gp', 'assistant', 'remote_gp'];
const VIEW_RECONCILE_MS = 4000;
const BACKGROUND_MS = 20000;
const LIST_MS = 30000;
// While a member who may be in a conversation has no device in its group (their device has not
// uploaded KeyPackages yet), look again after these delays; the background round takes over.
const RETRY_MS = [700, 1500, 3000, 5000, 8000, 13000];
const KIND_ROLES = {
  care_team: ['partner', 'gp', 'assistant', 'remote_gp', 'patient'],
  specialist_question: ['specialist', 'gp', 'assistant', 'remote_gp'],
  econsult: ['gp', 'assistant', 'remote_gp'],
  consult: ['gp', 'assistant', 'remote_gp'],
};

const isStaff = (user) => !!user && STAFF.includes(user.role);

export class ConsoleChat {
  constructor({ inbox, view, consult, onView }) {
    this.roots = { inbox, view, consult };
    this.onView = onView;
    this.engine = new ChatEngine();
    this.files = new FileStore({ request: (type, fields) => this.engine.request(type, fields) });
    this.members = new Membership(this.engine);
    this.user = null;
    this.client = null;
    this.list = []; // conversation objects of chat.list
    this.viewId = null;
    this.consultChats = new Map(); // consult id -> conversation id (its chat)
    this.consultFacts = new Map(); // consult id -> its facts (who is invited as specialist)
    this.creating = new Map(); // consult id -> Promise
    this.admittingConsults = new Set(); // consults with a lobby.admit of this console on its way
    this.unread = new Map();
    this.timers = [];
    this.entry = null; // the consult entry shown in the detail
    this.retries = new Map(); // conversation -> { attempt, timer, opts }
    this.#buildInbox();
    this.#buildConsultCard();
    this.#buildView();
    this.engine.prepare().catch(() => {});
    this.engine.on('message', (ev) => this.#onMessage(ev));
    this.engine.on('conversation', (ev) => this.#onConversation(ev));
    i18n.onLanguageChange(() => {
      this.#renderList();
      if (this.viewId) this.#renderViewMeta();
    });
    window.__spk = window.__spk || {};
    window.__spk.chat = this.engine;
  }

  // ---- session ----

  attach(client, user) {
    this.user = user;
    if (this.client !== client) {
      this.client = client;
      client.on('roster', (msg) => this.#onRoster(msg.consult, msg.participants));
      client.on('consult.facts', (msg) => {
        if (msg.consult && Array.isArray(msg.facts)) this.consultFacts.set(msg.consult, msg.facts);
        this.#reconcileView();
      });
    }
    this.#renderInboxChrome();
    this.#stopTimers();
    this.timers.push(setInterval(() => this.refreshList().catch(() => {}), LIST_MS));
    if (isStaff(user)) this.timers.push(setInterval(() => this.#background(), BACKGROUND_MS));
    this.timers.push(setInterval(() => this.#reconcileView(), VIEW_RECONCILE_MS));
    return this.engine
      .attach(client, user)
      .then(() => this.refreshList())
      .then(() => {
        if (this.entry) this.renderConsult(this.entry);
        if (this.viewId) this.#openView(this.viewId, { focus: false });
      });
  }

  signOut() {
    this.#stopTimers();
    this.closeView();
    this.engine.detach();
    this.list = [];
    this.consultChats.clear();
    this.consultFacts.clear();
    this.creating.clear();
    this.unread.clear();
    this.entry = null;
    this.user = null;
    this.client = null;
    this.#renderList();
  }

  #stopTimers() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
  }

  #request(type, fields) {
    if (!this.client) return Promise.reject({ code: 'connection_lost' });
    return this.client.request(type, fields);
  }

  nameOf(conv, who) {
    const c = this.engine.get(conv);
    const m =
      c && c.meta
        ? (c.meta.members || []).find((x) => x.sub === who.sub && x.iss === who.iss)
        : null;
    return m ? m.name : '';
  }

  // ---- inbox ----

  #buildInbox() {
    const root = this.roots.inbox;
    this.inboxList = h('ul', {
      class: 'consult-list inbox-list',
      dataset: { testid: 'inbox-list' },
    });
    this.inboxError = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
    this.ctPatient = h('input', {
      id: 'ct-patient',
      type: 'text',
      maxlength: '127',
      autocomplete: 'off',
      spellcheck: 'false',
      dataset: { testid: 'ct-patient' },
    });
    this.ctTitle = h('input', {
      id: 'ct-title',
      type: 'text',
      maxlength: '127',
      autocomplete: 'off',
      dataset: { testid: 'ct-title' },
    });
    this.ctForm = h(
      'form',
      { class: 'form subform', novalidate: true, on: { submit: (ev) => this.#createCareTeam(ev) } },
      h(
        'fieldset',
        {},
        h('legend', { text: ['chat.careTeam.new'] }),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'ct-patient', text: ['console.new.patient'] }),
          this.ctPatient,
        ),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'ct-title', text: ['console.new.consultTitle'] }),
          this.ctTitle,
        ),
        h('button', {
          type: 'submit',
          class: 'btn btn-secondary',
          dataset: { testid: 'ct-submit' },
          text: ['chat.careTeam.create'],
        }),
      ),
    );
    root.replaceChildren(
      h(
        'div',
        { class: 'card-head' },
        h('h2', { id: 'inbox-title', class: 'h3', text: ['chat.inbox.title'] }),
        h('button', {
          type: 'button',
          class: 'btn btn-ghost btn-small',
          dataset: { testid: 'inbox-refresh' },
          text: ['console.consults.refresh'],
          on: {
            click: () => this.refreshList().catch((err) => i18n.setError(this.inboxError, err)),
          },
        }),
      ),
      this.inboxError,
      this.inboxList,
      this.ctForm,
    );
    root.setAttribute('aria-labelledby', 'inbox-title');
    this.#renderList();
  }

  #renderInboxChrome() {
    show(this.ctForm, isStaff(this.user) && !(this.user && this.user.consult));
  }

  async refreshList() {
    if (!this.client) return;
    if (this.user && this.user.consult) {
      // A session bound to one consult (a console link's) has no inbox: its consult's chat only.
      this.list = [];
      this.#renderList();
      return;
    }
    const r = await this.#request('chat.list', {});
    this.list = (r.conversations || []).filter((c) => c.kind !== 'consult');
    i18n.setError(this.inboxError, null);
    this.#renderList();
  }

  #renderList() {
    if (!this.list.length) {
      this.inboxList.replaceChildren(h('li', { class: 'empty', text: ['chat.inbox.empty'] }));
      return;
    }
    const items = this.list
      .slice()
      .sort((a, b) => (b.created_at || 0) - (a.created_at || 0))
      .map((c) => {
        const n = this.unread.get(c.id) || 0;
        return h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'consult-item',
              'aria-current': c.id === this.viewId ? 'true' : null,
              dataset: { testid: 'inbox-item', conversation: c.id, kind: c.kind },
              on: { click: () => this.#openView(c.id) },
            },
            h('span', {
              class: 'consult-item-title',
              raw: c.title || i18n.t(`chat.kind.${c.kind}`),
            }),
            h(
              'span',
              { class: 'consult-item-meta' },
              h('span', { text: [`chat.kind.${c.kind}`] }),
              c.patient ? h('span', { class: 'pseudonym', raw: c.patient }) : null,
            ),
            c.member === false
              ? h('span', { class: 'badge badge-left', text: ['chat.inbox.notMember'] })
              : null,
            n
              ? h('span', {
                  class: 'badge badge-lobby',
                  dataset: { testid: 'inbox-unread' },
                  text: ['chat.inbox.unread', { n }],
                })
              : null,
          ),
        );
      });
    this.inboxList.replaceChildren(...items);
  }

  async #createCareTeam(ev) {
    ev.preventDefault();
    const patient = this.ctPatient.value.trim();
    if (!patient) {
      this.ctPatient.setAttribute('aria-invalid', 'true');
      i18n.setText(this.inboxError, 'console.new.patientRequired');
      show(this.inboxError, true);
      this.ctPatient.focus();
      return;
    }
    this.ctPatient.removeAttribute('aria-invalid');
    const fields = { kind: 'care_team', patient };
    const title = this.ctTitle.value.trim();
    if (title) fields.title = title;
    try {
      const r = await this.#request('chat.create', fields);
      this.ctForm.reset();
      await this.refreshList();
      await this.#openView(r.conversation.id);
      announce('chat.careTeam.created');
    } catch (err) {
      i18n.setError(this.inboxError, err);
    }
  }

  #onMessage({ conversation, item, replaced }) {
    if (replaced || item.mine) {
      if (conversation === this.viewId) this.#renderMeasurements();
      return;
    }
    if (conversation !== this.viewId) {
      this.unread.set(conversation, (this.unread.get(conversation) || 0) + 1);
      this.#renderList();
    } else {
      this.#renderMeasurements();
    }
  }

  #onConversation({ conversation, entry }) {
    if (entry === 'welcome' && !this.list.some((c) => c.id === conversation)) {
      this.refreshList().catch(() => {});
    }
    if (conversation === this.viewId) this.#renderMembers();
  }

  // ---- the consult's chat (in the consult detail) ----

  #buildConsultCard() {
    const root = this.roots.consult;
    this.consultPanelRoot = h('div', {
      class: 'chat-card-body',
      dataset: { testid: 'chat-panel' },
    });
    this.consultPanel = new ChatPanel(this.consultPanelRoot, {
      engine: this.engine,
      files: this.files,
      nameOf: (who, conv) => this.nameOf(conv, who),
    });
    this.consultError = h('p', {
      class: 'notice notice-error',
      role: 'alert',
      hidden: true,
      dataset: { testid: 'consult-chat-error' },
    });
    this.econsultBtn = h('button', {
      type: 'button',
      class: 'btn btn-secondary btn-small',
      dataset: { testid: 'econsult-start' },
      text: ['chat.econsult.start'],
      on: { click: () => this.#startFromConsult('econsult') },
    });
    this.questionBtn = h('button', {
      type: 'button',
      class: 'btn btn-secondary btn-small',
      dataset: { testid: 'question-start' },
      text: ['chat.question.start'],
      on: { click: () => this.#startFromConsult('specialist_question') },
    });
    root.replaceChildren(
      this.consultPanelRoot,
      h('div', { class: 'actions chat-card-actions' }, this.econsultBtn, this.questionBtn),
      this.consultError,
    );
  }

  // Called by the console whenever the consult detail is drawn (entry: console.js's consult
  // entry, or null).
  renderConsult(e) {
    this.entry = e;
    if (e && Array.isArray(e.facts)) this.consultFacts.set(e.consult.id, e.facts);
    const root = this.roots.consult;
    const staff = isStaff(this.user);
    show(root, !!e && staff);
    if (!e || !staff) return;
    const judge = this.user.role === 'gp' || this.user.role === 'remote_gp';
    show(this.questionBtn, judge);
    // The chat of a video consult is for who takes part in it.
    this.consultPanel.idleKey = e.joined ? 'chat.status.joining' : 'chat.status.joinConsult';
    const id = e.joined ? this.consultChats.get(e.consult.id) : null;
    if (id) {
      this.consultPanel.show(id);
      return;
    }
    this.consultPanel.show(null);
    if (e.joined && this.engine.attached)
      this.#consultChat(e).catch((err) => i18n.setError(this.consultError, err));
  }

  // The consult's chat: created (once) by the first staff member who joins the consult.
  #consultChat(e) {
    return this.#consultChatOf(e.consult.id, e.participants);
  }

  #consultChatOf(cid, participants) {
    if (!this.creating.has(cid)) {
      const p = (async () => {
        const r = await this.#request('chat.create', { kind: 'consult', consult: cid });
        const id = r.conversation.id;
        if (!this.#isMember(r.conversation)) {
          // Made by another member of staff: take part (the others' consoles add this device).
          const u = this.user;
          await this.#request('chat.members.add', {
            conversation: id,
            user: { sub: u.sub, iss: u.iss },
            role: u.role,
            ...(u.name ? { name: u.name } : {}),
          });
        }
        this.consultChats.set(cid, id);
        if (this.entry && this.entry.consult.id === cid) this.consultPanel.show(id);
        await this.#sync(id, { wanted: this.#callMembers(cid, participants) });
        return id;
      })();
      p.catch(() => this.creating.delete(cid));
      this.creating.set(cid, p);
    }
    return this.creating.get(cid);
  }

  // Who besides staff is in the consult's chat (and holds the call's media keys): the admitted
  // patients, and the invited specialists while a specialist is in the call.
  #callMembers(consult, participants) {
    const out = admittedPatients(participants);
    const inCall = (participants || []).some((p) => p.role === 'specialist' && p.state === 'admitted');
    if (!inCall) return out;
    const facts = this.consultFacts.get(consult) || (this.entry && this.entry.consult.id === consult ? this.entry.facts : []);
    for (const f of activeSpecialists({ facts })) {
      out.push({ user: { sub: f.subject }, role: 'specialist', name: f.value });
    }
    return out;
  }

  // This console admitted a patient (the lobby.admit answer): the consult's chat adds their
  // device at once rather than when the roster event has been handled, so the Welcome (and with
  // it the call's keys) reaches them sooner. participants: the consult's, the patient admitted.
  admitted(consult, participants) {
    this.#onRoster(consult, participants);
  }

  // This console's lobby.admit for a consult is on its way (on) or answered (off): meanwhile
  // its chat starts no periodic look of its own (#reconcileView), which the admission's
  // additions would otherwise have to wait for.
  admitting(consult, on) {
    if (on) this.admittingConsults.add(consult);
    else this.admittingConsults.delete(consult);
  }

  // Admission changed in a joined consult: the patient joins the chat when admitted, leaves it
  // when sent back (also for a consult that is not the one on screen).
  #onRoster(consult, participants) {
    if (!isStaff(this.user) || !this.engine.attached) return;
    const id = this.consultChats.get(consult);
    if (!id) {
      if (this.#callMembers(consult, participants).length)
        this.#consultChatOf(consult, participants).catch(() => {});
      return;
    }
    this.#sync(id, { wanted: this.#callMembers(consult, participants) }).catch(() => {});
  }

  async #startFromConsult(kind) {
    const e = this.entry;
    if (!e) return;
    i18n.setError(this.consultError, null);
    if (kind === 'specialist_question' && !activeSpecialists(e).length) {
      i18n.setText(this.consultError, 'chat.question.needSpecialist');
      show(this.consultError, true);
      return;
    }
    try {
      const fields = { kind, consult: e.consult.id };
      if (e.consult.title) fields.title = e.consult.title;
      const r = await this.#request('chat.create', fields);
      await this.refreshList();
      await this.#openView(r.conversation.id);
    } catch (err) {
      i18n.setError(this.consultError, err);
    }
  }

  // ---- a conversation's view ----

  #buildView() {
    const root = this.roots.view;
    this.vTitle = h('h1', { class: 'h2', tabindex: '-1', dataset: { testid: 'chat-view-title' } });
    this.vMeta = h('p', { class: 'muted', dataset: { testid: 'chat-view-meta' } });
    this.vError = h('p', {
      class: 'notice notice-error full',
      role: 'alert',
      hidden: true,
      dataset: { testid: 'chat-view-error' },
    });
    this.vPanelRoot = h('section', {
      class: 'card chat-card',
      dataset: { testid: 'chat-view-panel' },
    });
    this.vPanel = new ChatPanel(this.vPanelRoot, {
      engine: this.engine,
      files: this.files,
      nameOf: (who, conv) => this.nameOf(conv, who),
    });
    this.vMembers = h('ul', { class: 'roster', dataset: { testid: 'chat-members' } });
    this.addSub = h('input', {
      id: 'chat-add-sub',
      type: 'text',
      maxlength: '127',
      autocomplete: 'off',
      spellcheck: 'false',
      dataset: { testid: 'chat-add-sub' },
    });
    this.addName = h('input', {
      id: 'chat-add-name',
      type: 'text',
      maxlength: '127',
      autocomplete: 'off',
      dataset: { testid: 'chat-add-name' },
    });
    this.addRole = h('select', { id: 'chat-add-role', dataset: { testid: 'chat-add-role' } });
    this.addForm = h(
      'form',
      { class: 'form subform', novalidate: true, on: { submit: (ev) => this.#addMember(ev) } },
      h(
        'fieldset',
        {},
        h('legend', { text: ['chat.members.add'] }),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'chat-add-role', text: ['chat.members.role'] }),
          this.addRole,
        ),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'chat-add-sub', text: ['chat.members.sub'] }),
          this.addSub,
        ),
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'chat-add-name', text: ['console.specialist.name'] }),
          this.addName,
        ),
        h('button', {
          type: 'submit',
          class: 'btn btn-secondary',
          dataset: { testid: 'chat-add-submit' },
          text: ['chat.members.addSubmit'],
        }),
      ),
    );
    this.mError = h('p', {
      class: 'notice notice-error',
      role: 'alert',
      hidden: true,
      dataset: { testid: 'chat-members-error' },
    });
    this.membersCard = h(
      'section',
      { class: 'card', 'aria-labelledby': 'chat-members-title' },
      h('h2', { id: 'chat-members-title', class: 'h3', text: ['chat.members.title'] }),
      h('div', { 'aria-live': 'polite' }, this.vMembers),
      this.mError,
      this.addForm,
    );
    this.inviteUrl = h('input', {
      id: 'econsult-url',
      type: 'text',
      readonly: true,
      dataset: { testid: 'econsult-url' },
    });
    this.inviteBox = h(
      'div',
      { class: 'invite-result', hidden: true },
      h('label', { for: 'econsult-url', text: ['console.invite.link'] }),
      h(
        'div',
        { class: 'input-row' },
        this.inviteUrl,
        h('button', {
          type: 'button',
          class: 'btn btn-secondary',
          text: ['console.invite.copy'],
          on: { click: () => copyText(this.inviteUrl.value, this.inviteUrl) },
        }),
      ),
    );
    this.inviteCard = h(
      'section',
      { class: 'card', 'aria-labelledby': 'econsult-invite-title' },
      h('h2', { id: 'econsult-invite-title', class: 'h3', text: ['chat.econsult.invite'] }),
      h('p', { class: 'muted', text: ['chat.econsult.inviteIntro'] }),
      h('button', {
        type: 'button',
        class: 'btn btn-secondary',
        dataset: { testid: 'econsult-invite' },
        text: ['console.invite.create'],
        on: { click: (ev) => this.#econsultInvite(ev.currentTarget) },
      }),
      this.inviteBox,
    );
    this.vMeasure = h('div', { class: 'measure-list', dataset: { testid: 'measurements' } });
    this.measureCard = h(
      'section',
      { class: 'card', 'aria-labelledby': 'measure-title' },
      h('h2', { id: 'measure-title', class: 'h3', text: ['measure.title'] }),
      this.vMeasure,
    );
    this.vJoinBtn = h('button', {
      type: 'button',
      class: 'btn btn-primary btn-small',
      dataset: { testid: 'chat-view-join' },
      text: ['chat.view.join'],
      on: { click: (ev) => this.#joinSelf(ev.currentTarget) },
    });
    this.vJoin = h(
      'div',
      { class: 'notice full', hidden: true, dataset: { testid: 'chat-view-not-member' } },
      h('p', { text: ['chat.view.notMember'] }),
      this.vJoinBtn,
    );
    root.replaceChildren(
      h(
        'div',
        { class: 'card detail-head' },
        h('div', {}, this.vTitle, this.vMeta),
        h(
          'div',
          { class: 'detail-actions' },
          h('button', {
            type: 'button',
            class: 'btn btn-secondary',
            dataset: { testid: 'chat-view-close' },
            text: ['chat.view.close'],
            on: { click: () => this.closeView(true) },
          }),
        ),
        this.vError,
        this.vJoin,
      ),
      h(
        'div',
        { class: 'detail-grid' },
        h('div', { class: 'detail-col' }, this.vPanelRoot),
        h('div', { class: 'detail-col' }, this.measureCard, this.membersCard, this.inviteCard),
      ),
    );
    root.hidden = true;
  }

  // The chat conversation of a consult, once this console created or found it (null before).
  consultConversation(consult) {
    return this.consultChats.get(consult) || null;
  }

  viewing() {
    return !!this.viewId;
  }

  // Closes the conversation view (the console then shows its consult detail again).
  closeView(render = false) {
    if (!this.viewId) return;
    this.viewId = null;
    this.vPanel.show(null);
    show(this.roots.view, false);
    this.#renderList();
    if (render && this.onView) this.onView(false);
  }

  async #openView(id, { focus = true } = {}) {
    this.viewId = id;
    this.unread.delete(id);
    if (this.onView) this.onView(true);
    show(this.roots.view, true);
    this.#renderList();
    i18n.setError(this.vError, null);
    this.inviteBox.hidden = true;
    try {
      const c = await this.engine.conversation(id);
      if (!c.meta) await this.engine.refresh(id).catch((err) => i18n.setError(this.vError, err));
      if (this.viewId !== id) return;
      this.#renderViewMeta();
      if (focus) this.vTitle.focus();
      await this.vPanel.show(id);
      this.#renderMeasurements();
      this.#reconcileView();
    } catch (err) {
      // Not signed in yet (attach() opens the view again once it is).
      i18n.setError(this.vError, err);
    }
  }

  #meta() {
    const c = this.viewId ? this.engine.get(this.viewId) : null;
    return (c && c.meta) || this.list.find((x) => x.id === this.viewId) || null;
  }

  #renderViewMeta() {
    const m = this.#meta();
    if (!m) return;
    this.vTitle.textContent = m.title || i18n.t(`chat.kind.${m.kind}`);
    // Staff see every conversation of their practice, and take part once they are members
    // (they may add themselves).
    show(this.vJoin, isStaff(this.user) && !this.#isMember(m));
    i18n.setText(this.vMeta, m.patient ? 'chat.view.meta' : 'chat.view.metaNoPatient', {
      kind: { key: `chat.kind.${m.kind}` },
      patient: m.patient || '',
    });
    const staff = isStaff(this.user);
    show(this.addForm, staff && m.kind !== 'consult');
    show(this.inviteCard, staff && m.kind === 'econsult');
    show(this.measureCard, m.kind === 'econsult' || m.kind === 'care_team');
    const roles = KIND_ROLES[m.kind] || [];
    if (this.addRole.dataset.kind !== m.kind) {
      this.addRole.dataset.kind = m.kind;
      this.addRole.replaceChildren(
        ...roles.map((r) => h('option', { value: r, text: [`role.${r}`] })),
      );
    }
    this.#renderMembers();
  }

  #isMember(meta) {
    if (!meta.members) return meta.member !== false;
    return meta.members.some((x) => x.sub === this.user.sub && x.iss === this.user.iss);
  }

  // A member of staff who is not a member yet adds themselves; a member's console then adds
  // this device to the group.
  async #joinSelf(btn) {
    const id = this.viewId;
    const u = this.user;
    btn.disabled = true;
    i18n.setError(this.vError, null);
    try {
      await this.#request('chat.members.add', {
        conversation: id,
        user: { sub: u.sub, iss: u.iss },
        role: u.role,
        ...(u.name ? { name: u.name } : {}),
      });
      await this.engine.refresh(id);
      await this.refreshList().catch(() => {});
      this.#renderViewMeta();
      announce('chat.view.joined');
    } catch (err) {
      i18n.setError(this.vError, err);
    } finally {
      btn.disabled = false;
    }
  }

  #renderMembers() {
    const m = this.#meta();
    if (!m) return;
    const devices = m.devices || [];
    const staff = isStaff(this.user);
    const list = (m.members || []).map((x) => {
      const n = devices.filter((d) => d.sub === x.sub && d.iss === x.iss).length;
      const self = this.user && x.sub === this.user.sub && x.iss === this.user.iss;
      return h(
        'li',
        {
          class: 'roster-item',
          dataset: { testid: 'chat-member', sub: x.sub, devices: String(n) },
        },
        h(
          'span',
          { class: 'who' },
          h('span', { class: 'name', raw: x.name || x.sub }),
          self ? h('span', { class: 'self', text: ['consult.roster.self'] }) : null,
          h('span', { class: 'role', text: [`role.${x.role}`] }),
        ),
        h('span', {
          class: `badge ${n ? 'badge-admitted' : 'badge-lobby'}`,
          text: x.allowed
            ? n
              ? ['chat.members.devices', { n }]
              : ['chat.members.noDevice']
            : ['chat.members.ended'],
        }),
        staff && !self
          ? h('button', {
              type: 'button',
              class: 'btn btn-ghost btn-small',
              dataset: { testid: 'chat-member-remove' },
              text: ['chat.members.remove'],
              'aria-label': i18n.t('chat.members.removeName', { name: x.name || x.sub }),
              on: { click: (ev) => this.#removeMember(ev.currentTarget, x) },
            })
          : null,
      );
    });
    this.vMembers.replaceChildren(
      ...(list.length ? list : [h('li', { class: 'empty', text: ['chat.members.none'] })]),
    );
  }

  #renderMeasurements() {
    const m = this.#meta();
    if (!this.viewId || !m || (m.kind !== 'econsult' && m.kind !== 'care_team')) return;
    const c = this.engine.get(this.viewId);
    renderMeasurements(this.vMeasure, c ? c.items : []);
  }

  async #addMember(ev) {
    ev.preventDefault();
    const id = this.viewId;
    const sub = this.addSub.value.trim();
    if (!id || !sub) {
      this.addSub.setAttribute('aria-invalid', 'true');
      i18n.setText(this.mError, 'chat.members.subRequired');
      show(this.mError, true);
      this.addSub.focus();
      return;
    }
    this.addSub.removeAttribute('aria-invalid');
    i18n.setError(this.mError, null);
    const name = this.addName.value.trim();
    const role = this.addRole.value;
    try {
      await this.#request('chat.members.add', {
        conversation: id,
        user: { sub },
        role,
        ...(name ? { name } : {}),
      });
      this.addSub.value = '';
      this.addName.value = '';
      await this.members.reconcile(id);
      announce('chat.members.added', { name: name || sub });
    } catch (err) {
      i18n.setError(this.mError, err);
    }
    this.#renderMembers();
  }

  async #removeMember(btn, member) {
    btn.disabled = true;
    i18n.setError(this.mError, null);
    try {
      await this.members.remove(this.viewId, { sub: member.sub, iss: member.iss });
      announce('chat.members.removed', { name: member.name || member.sub });
    } catch (err) {
      i18n.setError(this.mError, err);
      btn.disabled = false;
    }
    this.#renderMembers();
  }

  async #econsultInvite(btn) {
    const m = this.#meta();
    if (!m) return;
    btn.disabled = true;
    try {
      const r = await this.#request('invite.create', { consult: m.consult });
      this.inviteUrl.value = econsultUrl(r.invite);
      this.inviteBox.hidden = false;
      this.inviteUrl.focus();
      this.inviteUrl.select();
      announce('console.invite.created');
    } catch (err) {
      i18n.setError(this.vError, err);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- membership ----

  // Who should be members of a conversation, from its consult: the e-consult's patient, the
  // specialists invited to the consult for a question.
  async #wanted(meta) {
    if (!meta || !meta.consult || (meta.kind !== 'econsult' && meta.kind !== 'specialist_question'))
      return [];
    const r = await this.#request('consult.get', { consult: meta.consult });
    if (meta.kind === 'econsult') {
      const all = [...(r.participants || []), ...(r.lobby || [])];
      const seen = new Set();
      return all
        .filter(
          (p) => p.role === 'patient' && p.state !== 'denied' && !seen.has(p.id) && seen.add(p.id),
        )
        .map((p) => ({ user: { sub: p.id }, role: 'patient', name: p.name }));
    }
    return activeSpecialists({ facts: r.facts || [] }).map((f) => ({
      user: { sub: f.subject },
      role: 'specialist',
      name: f.value,
    }));
  }

  async #reconcile(id) {
    const c = await this.engine.conversation(id);
    const meta = c.meta || (await this.engine.refresh(id)).meta;
    if (meta.kind === 'consult') {
      // The consult's chat follows the roster (roster events); here only devices.
      return this.#sync(id, {});
    }
    return this.#sync(id, { wanted: await this.#wanted(meta).catch(() => []) });
  }

  // Reconciles, and looks again soon while a member has no device in the group.
  async #sync(id, opts) {
    const prev = this.retries.get(id);
    if (prev) clearTimeout(prev.timer);
    const r = await this.members.reconcile(id, opts);
    if (!r.waiting) {
      this.retries.delete(id);
      return r;
    }
    const attempt = prev && prev.opts === opts ? prev.attempt : 0;
    if (attempt < RETRY_MS.length) {
      const timer = setTimeout(() => this.#sync(id, opts).catch(() => {}), RETRY_MS[attempt]);
      this.retries.set(id, { attempt: attempt + 1, timer, opts });
    }
    return r;
  }

  #reconcileView() {
    const id = this.viewId;
    if (!id || !this.engine.attached) return;
    for (const consult of this.admittingConsults) if (this.consultChats.get(consult) === id) return;
    const step = isStaff(this.user) ? this.#reconcile(id) : this.engine.refresh(id);
    Promise.resolve(step)
      .then(() => this.viewId === id && this.#renderMembers())
      .catch((err) => {
        if (this.viewId === id && err && err.code !== 'connection_lost')
          i18n.setError(this.mError, err);
      });
  }

  // Every conversation this console is in, one after another: new devices get added, devices
  // whose access ended get removed, an e-consult's patient becomes a member.
  async #background() {
    if (this.busy || !this.engine.attached) return;
    this.busy = true;
    try {
      for (const c of this.engine.conversations()) {
        if (!this.engine.inGroup(c.id) || !c.allowed || c.id === this.viewId) continue;
        await this.#reconcile(c.id).catch(() => {});
      }
    } finally {
      this.busy = false;
    }
  }
}

function admittedPatients(participants) {
  return (participants || [])
    .filter((p) => p.role === 'patient' && p.state === 'admitted')
    .map((p) => ({ user: { sub: p.id }, role: 'patient', name: p.name }));
}

// Specialist facts whose invitation stands (not withdrawn).
function activeSpecialists(e) {
  return (e.facts || []).filter(
    (f) => f.kind === 'specialist' && !String(f.value || '').startsWith('withdrawn:'),
  );
}

// The e-consult page takes the same invite code as the video consult's page.
export function econsultUrl(invite) {
  const u = new URL(invite.url);
  return `${u.origin}/econsult.html${u.hash}`;
}
