// Keeps a conversation's MLS group in step with who may be in it (docs/chat-client.md
// "Membership"): staff make the users that should be members members (chat.members.add), add
// the devices of every member that may be there now (mls.key_packages.claim + one Commit with
// the Adds and a Welcome), and remove the devices of users whose access ended (the service
// refuses every Commit that keeps them: mls_membership).
//
//   const plan = new Membership(engine);
//   await plan.reconcile(conversationId, { wanted: [{ user: { sub }, role: 'patient', name }] });
import { ChatError } from './engine.js';
import { parseIdentity, sameUser, unb64u } from './util.js';

const findMember = (meta, u) =>
  (meta.members || []).find((m) => m.sub === u.sub && (!u.iss || m.iss === u.iss));

export class Membership {
  #running = new Map(); // conversation -> Promise of the reconcile in progress
  #again = new Set();

  constructor(engine) {
    this.engine = engine;
  }

  #request(type, fields) {
    if (!this.engine.client) return Promise.reject(new ChatError('connection_lost'));
    return this.engine.client.request(type, fields);
  }

  // One reconcile per conversation at a time; a call meanwhile runs once more afterwards.
  reconcile(id, opts = {}) {
    if (this.#running.has(id)) {
      this.#again.add(id);
      this.#lastOpts = { ...(this.#lastOpts || {}), [id]: opts };
      return this.#running.get(id);
    }
    const p = (async () => {
      try {
        let r = await this.#reconcile(id, opts);
        while (this.#again.delete(id)) {
          r = await this.#reconcile(id, (this.#lastOpts && this.#lastOpts[id]) || opts);
        }
        return r;
      } finally {
        this.#running.delete(id);
      }
    })();
    this.#running.set(id, p);
    return p;
  }

  #lastOpts = null;

  // wanted: users who should be members ({ user: { sub, iss? }, role, name }).
  // Returns { added: n devices, removed: n devices, members: n users added, waiting: n members
  // who may be here but have no device in the group }.
  async #reconcile(id, { wanted = [] } = {}) {
    const engine = this.engine;
    if (!(await engine.ensureGroup(id))) return { added: 0, removed: 0, members: 0, waiting: 0 };
    let meta = (await engine.refresh(id)).meta;
    let members = 0;
    for (const w of wanted) {
      const m = findMember(meta, w.user);
      if (m && m.allowed) continue;
      if (m && !m.allowed) continue; // a member whose access ended: the service decides again later
      const fields = { conversation: id, user: w.user, role: w.role };
      if (w.name) fields.name = w.name;
      try {
        meta = (await this.#request('chat.members.add', fields)).conversation;
        members++;
      } catch (err) {
        if (err.code !== 'forbidden') throw err; // not allowed (yet): nothing to add
      }
    }
    // The devices of every member who may be here, that are not in the group yet.
    const claimed = [];
    for (const m of meta.members || []) {
      if (!m.allowed) continue;
      try {
        const r = await this.#request('mls.key_packages.claim', {
          conversation: id,
          user: { sub: m.sub, iss: m.iss },
        });
        for (const k of r.key_packages || []) {
          claimed.push({
            user: { sub: m.sub, iss: m.iss },
            device: k.device,
            kp: unb64u(k.key_package),
          });
        }
      } catch (err) {
        if (err.code !== 'forbidden') throw err;
      }
    }
    const allowed = (who) => (meta.members || []).some((m) => m.allowed && sameUser(m, who));
    let added = 0;
    let removed = 0;
    const plan = (g) => {
      const inGroup = g.members().map((x) => ({ leaf: x.leaf, who: parseIdentity(x.identity) }));
      const has = (c) =>
        inGroup.some((x) => x.who && sameUser(x.who, c.user) && x.who.device === c.device);
      const add = claimed.filter((c) => !has(c));
      const remove = inGroup
        .filter((x) => x.leaf !== g.ownLeaf && (!x.who || !allowed(x.who)))
        .map((x) => x.leaf);
      added = add.length;
      removed = remove.length;
      return { add: add.map((c) => c.kp), remove, proposals: true };
    };
    try {
      await engine.commit(id, plan);
    } catch (err) {
      if (err.code !== 'mls_membership') throw err;
      // Access changed between our look and the Commit: look again, once.
      meta = (await engine.refresh(id)).meta;
      await engine.commit(id, plan);
    }
    if (added || removed) meta = (await engine.refresh(id).catch(() => null))?.meta || meta;
    // Members who may be here but have no device in the group yet (their device has not
    // uploaded KeyPackages, or was offline): the caller tries again later.
    const me = engine.user;
    const waiting = (meta.members || []).filter(
      (m) => m.allowed && !sameUser(m, me) && !(meta.devices || []).some((d) => sameUser(d, m)),
    ).length;
    return { added, removed, members, waiting };
  }

  // Removes a user from the conversation and their devices from the group.
  async remove(id, user) {
    await this.#request('chat.members.remove', { conversation: id, user });
    return this.reconcile(id);
  }
}
