// Feeds an E2ee (e2ee.js) with the media keys of a consult: the keys come from the MLS group of
// the consult's chat (the conversation of kind 'consult' for that consult, docs/protocol.md
// §5.7), at its current epoch, again after every Commit. Until this device is in that group the
// call has no key: nothing is sent and nothing received decrypts (worker.js drops such frames).
//
//   const keys = new CallKeys({ engine, consult, e2ee, onChange: () => render(keys.safety) });
//   keys.start(); … keys.stop();
export class CallKeys {
  constructor({ engine, consult, e2ee, onChange = () => {} }) {
    this.engine = engine;
    this.consult = consult;
    this.e2ee = e2ee;
    this.onChange = onChange;
    this.conversation = null; // the consult's conversation once this device is in its group
    this.offs = [];
    this.stopped = false;
  }

  // The safety number of the epoch in use ('' while there is no key).
  get safety() {
    return this.e2ee.safety;
  }

  get keyed() {
    return this.e2ee.epoch !== null;
  }

  start() {
    const look = (ev) => this.#look(ev.conversation, ev.use).catch(() => {});
    this.offs.push(this.engine.on('epoch', look));
    this.offs.push(this.engine.on('conversation', look));
    this.offs.push(this.engine.on('ready', () => this.#lookAll()));
    this.#lookAll();
  }

  stop() {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
  }

  #lookAll() {
    for (const c of this.engine.conversations()) this.#look(c.id).catch(() => {});
  }

  // use: an 'epoch' event's accessor of the group (ChatEngine), valid while the event is
  // dispatched: the key is set at once when nothing had to be awaited before.
  async #look(id, use = null) {
    if (this.stopped || !id) return;
    if (this.conversation && this.conversation !== id) return;
    const c = this.engine.get(id);
    if (!c || !this.engine.inGroup(id)) return;
    if (!c.meta) {
      use = null;
      await this.engine.refresh(id);
    }
    const m = c.meta;
    if (!m || m.kind !== 'consult' || m.consult !== this.consult) return;
    this.conversation = id;
    const before = this.e2ee.epoch;
    const set = (g) => {
      if (g && !this.stopped) this.e2ee.setGroup(g);
    };
    if (use) use(set);
    else await this.engine.withGroup(id, set);
    if (this.e2ee.epoch !== before) this.onChange();
  }
}
