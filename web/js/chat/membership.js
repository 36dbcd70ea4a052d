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

const userKey = (u) => `${u.iss || ''}\n${u.sub}`;

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
    // With the conversation object known from before, the requests go out together (the
    // service handles one connection's requests in order): the wanted users who are not
    // members yet are added, the object is fetched again (it then shows them), and the
    // KeyPackages of everyone who may be here are claimed — one round trip instead of one per
    // step (what decides the Welcome of a patient just admitted). What the fresh object shows
    // otherwise (a claim refused or missing) is done after it.
    const known = engine.get(id)?.meta || null;
    const early = new Map(); // user key -> Promise of [claimed] or null (refused)
    let members = 0;
    let adding = [];
    if (known) {
      adding = wanted
        .filter((w) => !findMember(known, w.user))
        .map((w) => this.#add(id, w).then((ok) => ok && members++));
      const users = (known.members || []).filter((m) => m.allowed).map((m) => ({ sub: m.sub, iss: m.iss }));
      for (const w of wanted) {
        const m = findMember(known, w.user);
        users.push(m ? { sub: m.sub, iss: m.iss } : w.user);
      }
      for (const u of users) {
        if (!early.has(userKey(u))) early.set(userKey(u), this.#claim(id, u).catch(() => null));
      }
    }
    const fresh = engine.refresh(id);
    await Promise.all(adding).catch(() => {});
    let meta = (await fresh).meta;
    for (const w of wanted) {
      const m = findMember(meta, w.user);
      if (m) continue; // a member (one whose access ended: the service decides again later)
      if (await this.#add(id, w)) {
        members++;
        meta = (await engine.refresh(id)).meta;
      }
    }
    // The devices of every member who may be here, that are not in the group yet.
    const claims = (meta.members || [])
      .filter((m) => m.allowed)
      .map(async (m) => {
        const u = { sub: m.sub, iss: m.iss };
        // A claim sent without the issuer (a user new to the conversation) is theirs when no
        // other member has the same sub.
        const bare = (meta.members || []).filter((x) => x.sub === m.sub).length === 1;
        const p = early.get(userKey(u)) || (bare ? early.get(userKey({ sub: m.sub })) : null);
        const got = p ? await p : null;
        return (got || (await this.#claim(id, u)) || []).map((c) => ({ ...c, user: u }));
      });
    const claimed = (await Promise.all(claims)).flat();
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

  // Makes a wanted user a member; false when the service does not allow it (yet).
  async #add(id, w) {
    const fields = { conversation: id, user: w.user, role: w.role };
    if (w.name) fields.name = w.name;
    try {
      await this.#request('chat.members.add', fields);
      return true;
    } catch (err) {
      if (err.code !== 'forbidden') throw err; // not allowed (yet): nothing to add
      return false;
    }
  }

  // The KeyPackages of a user's devices that are not in the group yet ([{ user, device, kp }]),
  // or null when the service refuses (not a member who may be here).
  async #claim(id, user) {
    try {
      const r = await this.#request('mls.key_packages.claim', { conversation: id, user });
      return (r.key_packages || []).map((k) => ({
        user: { sub: user.sub, iss: user.iss },
        device: k.device,
        kp: unb64u(k.key_package),
      }));
    } catch (err) {
      if (err.code !== 'forbidden') throw err;
      return null;
    }
  }

  // Removes a user from the conversation and their devices from the group.
  async remove(id, user) {
    await this.#request('chat.members.remove', { conversation: id, user });
    return this.reconcile(id);
  }
}
