// The patient's side of the chat (consult page and e-consult page): one engine for the page,
// attached after every sign-in, and a panel that shows the conversation of one kind that
// belongs to the patient's consult as soon as the practice has added this device.
//
//   const chat = new PatientChat({ root, kind: 'consult' });
//   chat.attach(client, consultId);          // after auth / invite.redeem, on every reconnect
import { ChatEngine } from './engine.js';
import { FileStore } from './files.js';
import { ChatPanel } from './panel.js';

export class PatientChat {
  constructor({ root, kind, titleKey = 'chat.title', queue = false, onConversation = null }) {
    this.kind = kind;
    this.consult = null;
    this.current = null;
    this.onConversation = onConversation;
    this.engine = new ChatEngine();
    this.engine.prepare().catch(() => {}); // the MLS module loads while the patient types a name
    this.files = new FileStore({ request: (type, fields) => this.engine.request(type, fields) });
    this.panel = new ChatPanel(root, { engine: this.engine, files: this.files, titleKey, queue });
    this.engine.on('conversation', (ev) => this.#check(ev.conversation));
    this.engine.on('ready', () => this.#checkAll());
    window.__spk = window.__spk || {};
    window.__spk.chat = this.engine;
  }

  // Signs the chat in on a connection that has just been authenticated for consult.
  attach(client, consult) {
    this.consult = consult;
    this.panel.renderStatus();
    return this.engine
      .attach(client, { role: 'patient' })
      .then(() => {
        this.panel.renderStatus();
        if (!this.panel.queue || this.panel.parking) return;
        // Messages written before the conversation exists wait in the encrypted store, so a
        // reload does not lose them.
        this.panel.parking = {
          put: (msg) => this.engine.park(consult, msg),
          list: () => this.engine.parked(consult),
          flush: (id) => this.engine.unpark(consult, id),
        };
        if (this.current) this.engine.unpark(consult, this.current).catch(() => {});
        else this.panel.showParked();
      })
      .catch((err) => {
        this.panel.renderStatus();
        throw err;
      });
  }

  async #checkAll() {
    for (const c of this.engine.conversations()) await this.#check(c.id);
    this.panel.renderStatus();
  }

  // Is this the consult's conversation of our kind? Then show it.
  async #check(id) {
    if (this.current === id) {
      this.panel.renderStatus();
      return;
    }
    const c = this.engine.get(id);
    if (!c || !this.engine.inGroup(id)) return;
    if (!c.meta) {
      try {
        await this.engine.refresh(id);
      } catch {
        return; // not (or no longer) a member
      }
    }
    const m = c.meta;
    if (m && m.kind === this.kind && m.consult === this.consult && this.current !== id) {
      this.current = id;
      await this.panel.show(id);
      if (this.onConversation) this.onConversation(id);
    }
  }

  // The conversation of the consult shown (null until the practice added this device).
  conversation() {
    return this.current;
  }

  detach() {
    this.engine.detach();
  }
}
