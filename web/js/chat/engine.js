// The browser's chat client: one MLS device speaking the delivery service's protocol
// (docs/protocol.md §5.9) over the page's signaling connection, with its state at rest in
// IndexedDB (web/mls/store.js). docs/chat-client.md describes it; the UI lives elsewhere.
//
//   const chat = new ChatEngine();
//   chat.on('message', ({ conversation, item }) => …);
//   await chat.attach(client, user);     // after every sign-in on a (re)connected Client
//   await chat.send(conversationId, textMessage('hallo'));
//
// Every MLS operation (processing an entry, encrypting, committing) runs on one serial queue:
// entries are handled strictly in seq order, a group is never used by two operations at once,
// and the state is saved before anything that depends on it leaves the browser.
import { loadMls } from '../../mls/spk_mls.js';
import { openMlsStore } from '../../mls/store.js';
import { claimDevice } from './device.js';
import { encode, parse } from './messages.js';
import { Serial, b64u, parseIdentity, randomId, sha256Hex, td, te, unb64u } from './util.js';

const KP_LOW = 5; // replenish one-time KeyPackages below this many
const KP_TARGET = 12;
const KP_LIFETIME_MS = 89 * 86400 * 1000; // spk_mls KeyPackages live 90 days
const ACK_DELAY_MS = 40;
const STALE_WAIT_MS = 3000;
const RETRIES = 6;
const STATE_MAGIC = 0x53; // 'S': [magic, version 1, handled seq (8 bytes BE), group blob]

export class ChatError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'ChatError';
    this.code = code;
  }
}

function packState(handled, blob) {
  const out = new Uint8Array(10 + (blob ? blob.length : 0));
  out[0] = STATE_MAGIC;
  out[1] = 1;
  new DataView(out.buffer).setBigUint64(2, BigInt(handled), false);
  if (blob) out.set(blob, 10);
  return out;
}

function unpackState(bytes) {
  if (!bytes || bytes.length < 10 || bytes[0] !== STATE_MAGIC || bytes[1] !== 1) return null;
  const handled = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(2, false));
  return { handled, blob: bytes.length > 10 ? bytes.subarray(10) : null };
}

const seqKey = (seq) => String(seq).padStart(12, '0');
// KeyPackage refs ("<dk>|[lr|]<ms>|<random>"): one-time ones before last-resort ones.
const lastResortLast = (a, b) => (a.includes('|lr|') ? 1 : 0) - (b.includes('|lr|') ? 1 : 0);

// One conversation as this device knows it.
class Conversation {
  constructor(id) {
    this.id = id;
    this.meta = null; // the conversation object of chat.get
    this.group = null; // spk_mls Group while this device is in the group
    this.handled = 0; // highest seq handled (entries at or below are skipped)
    this.allowed = true; // false when the service says this user may no longer be in it
    this.items = []; // history: { key, seq, at, from, mine, msg, pending, invalid }
    this.ids = new Set(); // message ids in items (a resent message is shown once)
    this.loaded = null; // Promise: state and history loaded from the store
    this.epochWaiters = [];
    this.errors = [];
    this.proposals = 0; // proposals received in this epoch (a member's own Remove)
    // seq of this device's own accepted Commit, not merged yet: entries sequenced before it
    // (of the Commit's epoch) are read first (ChatEngine.commit)
    this.mergeAt = 0;
    // seqs of this device's own entries (messages, Commits and their Welcomes) above
    // `handled`: the service never sends them back, so `handled` moves past them
    this.own = new Set();
    this.merged = null; // resolves once that Commit is merged
  }

  get epoch() {
    return this.group && !this.group.freed ? this.group.epoch : -1n;
  }
}

export class ChatEngine {
  #mls = null;
  #store = null;
  #ready = null;
  #device = null; // { id, release }
  #queue = new Serial();
  #handlers = new Map();
  #convs = new Map();
  // KeyPackage secrets made by this page, by ref (a copy of what the store holds): a Welcome
  // for one of them joins without reading the store first (#join). Wiped when used, pruned or
  // on sign-out.
  #kpMem = new Map();
  #acks = new Map(); // conversation -> seq to acknowledge
  #ackTimer = 0;
  #kpTimer = 0;
  #clients = new WeakSet();

  constructor({ storeName = 'spreekkamer-mls', wasm } = {}) {
    this.storeName = storeName;
    this.wasm = wasm;
    this.client = null;
    this.user = null; // { iss, sub, name, role }
    this.identity = null; // credential identity (string)
    this.dk = null; // prefix of this identity's records
    this.attached = false;
    this.stats = { stale: 0, skipped: 0, entries: 0 }; // re-based operations, entries seen again
  }

  // ---- events ----

  on(type, fn) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.#handlers.get(type).delete(fn);
  }

  #emit(type, payload) {
    for (const fn of this.#handlers.get(type) || []) {
      try {
        fn(payload);
      } catch (err) {
        console.error(err);
      }
    }
  }

  #fail(conv, where, err) {
    const code = err && (err.code || err.name) ? `${err.code || err.name} ` : '';
    const text = `${where}: ${code}${err && err.message}`;
    if (conv) conv.errors.push(text);
    this.#emit('error', { conversation: conv ? conv.id : null, where, error: err, text });
  }

  // ---- set-up ----

  get deviceId() {
    return this.#device ? this.#device.id : null;
  }

  get mls() {
    return this.#mls;
  }

  // Loads the MLS module and opens the store ahead of the first attach (optional).
  prepare() {
    return this.#init();
  }

  #init() {
    if (!this.#ready) {
      this.#ready = (async () => {
        const [mls, store, device] = await Promise.all([
          loadMls(this.wasm ? { wasm: this.wasm } : {}),
          openMlsStore(this.storeName),
          claimDevice(),
        ]);
        this.#mls = mls;
        this.#store = store;
        this.#device = device;
      })();
      this.#ready.catch(() => (this.#ready = null));
    }
    return this.#ready;
  }

  // Declares the device on a freshly signed-in connection, keeps the KeyPackage supply up and
  // takes the backlog (then follows live). Call after every (re)connect once `auth` succeeded.
  async attach(client, user) {
    await this.#init();
    this.client = client;
    if (!this.#clients.has(client)) {
      this.#clients.add(client);
      client.on('chat.entry', (m) => {
        if (this.client === client) this.#queue.run(() => this.#onEntry(m));
      });
    }
    const r = await client.request('chat.device', { device: this.#device.id });
    const who = parseIdentity(r.identity);
    if (!who) throw new ChatError('bad_identity', 'the service gave no credential identity');
    // The user is who the service says this connection is (a patient knows no issuer).
    this.user = { name: user.name, role: user.role, iss: who.iss, sub: who.sub };
    if (this.identity !== r.identity) {
      const dk = (await sha256Hex(r.identity)).slice(0, 24);
      // First sign-in, or another user on this page: nothing loaded before belongs to it.
      this.#reset();
      this.identity = r.identity;
      this.dk = dk;
      await this.#loadKnown();
    }
    await this.#replenish().catch((err) => this.#fail(null, 'key_packages', err));
    clearInterval(this.#kpTimer);
    this.#kpTimer = setInterval(() => this.#replenish().catch(() => {}), 5 * 60 * 1000);
    this.attached = true;
    await this.sync();
    this.#emit('ready', {});
    this.#flushOutboxes();
  }

  // Sign-out: forget everything in memory (the store stays, encrypted, for this identity).
  detach() {
    this.attached = false;
    this.client = null;
    clearInterval(this.#kpTimer);
    this.#reset();
  }

  #reset() {
    for (const secret of this.#kpMem.values()) secret.fill(0);
    this.#kpMem.clear();
    for (const c of this.#convs.values()) if (c.group) c.group.free();
    this.#convs.clear();
    this.#acks.clear();
    this.identity = null;
    this.dk = null;
  }

  // A request on the chat's connection (files: tickets are bound to it).
  request(type, fields) {
    if (!this.client) return Promise.reject(new ChatError('connection_lost'));
    return this.client.request(type, fields);
  }

  // ---- conversations ----

  conversations() {
    return [...this.#convs.values()];
  }

  get(id) {
    return this.#convs.get(id) || null;
  }

  // The conversation's local state (loaded from the store on first use, once attached).
  async conversation(id) {
    if (!this.dk) throw new ChatError('not_attached', 'the chat is not signed in yet');
    let c = this.#convs.get(id);
    if (!c) {
      c = new Conversation(id);
      this.#convs.set(id, c);
    }
    if (!c.loaded) c.loaded = this.#load(c);
    await c.loaded;
    return c;
  }

  inGroup(id) {
    const c = this.#convs.get(id);
    return !!(c && c.group && !c.group.freed);
  }

  // Refreshes the conversation object (members, devices) from the service.
  async refresh(id) {
    const c = await this.conversation(id);
    let r;
    try {
      r = await this.request('chat.get', { conversation: id });
    } catch (err) {
      if (err.code === 'forbidden') this.#ended(c);
      throw err;
    }
    this.#applyMeta(c, r);
    return c;
  }

  // A chat.get answer for c.
  #applyMeta(c, r) {
    c.meta = r.conversation;
    if (!c.allowed && this.inGroup(c.id)) c.allowed = true;
    this.#emit('conversation', { conversation: c.id });
  }

  // This user may no longer be in the conversation (removed, or the access it rests on ended):
  // the service sends nothing more of it. Learnt from a refused request or chat.sync.
  #ended(c) {
    if (!c.allowed) return;
    c.allowed = false;
    this.#emit('conversation', { conversation: c.id });
  }

  async #loadKnown() {
    const prefix = `${this.dk}|`;
    const ids = (await this.#store.listStates()).filter((k) => k.startsWith(prefix));
    for (const k of ids) await this.conversation(k.slice(prefix.length));
  }

  async #load(c) {
    // Three independent reads, asked for at once.
    const [raw, recs, pend] = await Promise.all([
      this.#store.getState(this.#stateId(c.id)).catch((err) => {
        this.#fail(c, 'state', err);
        return null;
      }),
      this.#store.getChatRange(`h|${this.dk}|${c.id}|`).catch(() => []),
      this.#store.getChatRange(`o|${this.dk}|${c.id}|`).catch(() => []),
    ]);
    const st = unpackState(raw);
    if (st) {
      c.handled = st.handled;
      if (st.blob) {
        try {
          c.group = this.#mls.restore(st.blob);
        } catch (err) {
          this.#fail(c, 'restore', err);
        }
      }
    }
    if (raw) raw.fill(0);
    for (const { id, bytes } of [...recs, ...pend]) {
      try {
        const item = JSON.parse(td.decode(bytes));
        item.key = id;
        this.#addItem(c, item, false);
      } catch {
        /* an unreadable record is skipped */
      }
    }
  }

  #stateId(conv) {
    return `${this.dk}|${conv}`;
  }

  async #saveState(c) {
    const blob = c.group && !c.group.freed ? c.group.save() : null;
    const rec = packState(c.handled, blob);
    try {
      await this.#store.putState(this.#stateId(c.id), rec);
    } finally {
      rec.fill(0);
      if (blob) blob.fill(0);
    }
  }

  // ---- history ----

  #addItem(c, item, notify = true) {
    if (item.msg && item.msg.id && c.ids.has(item.msg.id)) {
      // The same message again (a send retried after a lost connection): shown once. A
      // pending copy is replaced by the delivered one.
      const i = c.items.findIndex((x) => x.msg && x.msg.id === item.msg.id);
      if (i >= 0 && c.items[i].pending && !item.pending) {
        c.items[i] = item;
        if (notify) this.#emit('message', { conversation: c.id, item, replaced: true });
      }
      return false;
    }
    if (item.msg && item.msg.id) c.ids.add(item.msg.id);
    c.items.push(item);
    c.items.sort((a, b) => (a.seq || Infinity) - (b.seq || Infinity) || a.at - b.at);
    if (notify) this.#emit('message', { conversation: c.id, item });
    return true;
  }

  async #storeItem(c, item) {
    const { key, ...rest } = item;
    await this.#store.putChat(key, te.encode(JSON.stringify(rest)));
  }

  // History of a conversation, oldest first.
  async history(id) {
    const c = await this.conversation(id);
    return c.items.slice();
  }

  // ---- delivery ----

  // chat.sync for all conversations (or one), then again while the service has more.
  async sync(only) {
    for (let round = 0; round < 50; round++) {
      const r = await this.request('chat.sync', only ? { conversation: only } : {});
      let more = false;
      for (const s of r.conversations || []) {
        const c = await this.conversation(s.conversation);
        if (!s.allowed) this.#ended(c);
        else if (!c.allowed) {
          c.allowed = true;
          this.#emit('conversation', { conversation: c.id });
        }
        if (s.more) more = true;
      }
      await this.#queue.idle();
      await this.#flushAcks();
      if (!more) return r;
    }
    return null;
  }

  async #onEntry(m) {
    if (!m || typeof m.conversation !== 'string' || !Number.isInteger(m.seq)) return;
    // A Welcome is what a call's keys wait for: this device's KeyPackage secrets are listed
    // while the conversation loads, and the conversation object (its kind and consult, which
    // the call's keys look for) is asked for at once, while the join goes on.
    const welcome = m.kind === 'welcome';
    const kpRefs = welcome ? this.#kpRefs() : null;
    if (kpRefs) kpRefs.catch(() => {});
    const metaAsked = welcome
      ? this.request('chat.get', { conversation: m.conversation }).catch(() => null)
      : null;
    const c = await this.conversation(m.conversation);
    if (m.seq <= c.handled) {
      this.stats.skipped++;
      this.#ackLater(c, m.seq); // handled before: acknowledge again, never twice to the user
      return;
    }
    this.stats.entries++;
    // An entry after this device's own Commit is of the Commit's epoch.
    if (c.mergeAt && m.seq > c.mergeAt) await this.#mergeOwn(c);
    let item = null;
    let changed = false;
    let meta = null; // after a Welcome: the conversation object, asked for while the state saves
    try {
      const data = unb64u(m.data);
      if (welcome) {
        await this.#join(c, data, kpRefs);
        // The answer asked for above (else asked again: e.g. refused before the join).
        meta = metaAsked
          .then((r) => (r ? this.#applyMeta(c, r) : this.refresh(c.id)))
          .catch(() => {});
        changed = true;
      } else if (!c.group || c.group.freed) {
        throw new ChatError(
          'not_in_group',
          `entry ${m.seq} (${m.kind}) for a group this device is not in`,
        );
      } else {
        const ev = c.group.processInfo(data);
        if (ev.type === 'application') {
          item = this.#itemFrom(c, m, ev);
        } else if (ev.type === 'removed') {
          c.group.free();
          c.group = null;
          changed = true;
        } else {
          if (ev.type === 'proposal') c.proposals += 1;
          else c.proposals = 0; // a Commit covers every proposal of its epoch
          changed = true;
        }
      }
    } catch (err) {
      this.#fail(c, `entry ${m.seq} ${m.kind}`, err);
    }
    c.handled = m.seq;
    this.#skipOwn(c);
    // The history entry first, then the state with the new seq: after a crash in between the
    // entry comes again, and its message is known already by id.
    if (item) {
      this.#addItem(c, item);
      await this.#storeItem(c, item).catch((err) => this.#fail(c, 'history', err));
    }
    const saved = this.#saveState(c).catch((err) => this.#fail(c, 'save', err));
    // Who listens for the new epoch (the call's keys: e2ee/call_keys.js) needs the
    // conversation's kind and consult: they are there when 'epoch' goes out. It goes out while
    // the state is saved: deriving keys from the epoch changes nothing in the group. What does
    // (sending the outbox) waits for the save.
    if (meta) await meta;
    if (changed && c.group && !c.group.freed && m.kind !== 'proposal') this.#emitEpoch(c);
    await saved;
    this.#ackLater(c, m.seq);
    if (changed) {
      this.#wakeEpoch(c);
      this.#emit('conversation', { conversation: c.id, entry: m.kind });
      if (m.kind === 'welcome') this.#flushOutbox(c);
    }
    if (m.kind === 'welcome') this.#replenish().catch(() => {});
  }

  #itemFrom(c, m, ev) {
    const who = ev.sender ? parseIdentity(ev.sender.identity) : null;
    const from = who || { iss: m.sender.iss, sub: m.sender.sub, device: m.sender.device };
    const p = parse(ev.data);
    ev.data.fill(0);
    return {
      key: `h|${this.dk}|${c.id}|${seqKey(m.seq)}`,
      seq: m.seq,
      at: m.at_ms,
      from,
      // The service's sender must be the one the signature proves.
      mismatch: !!who && (who.sub !== m.sender.sub || who.iss !== m.sender.iss),
      mine: false,
      msg: p.ok ? p.msg : null,
      invalid: p.ok ? null : p.reason,
    };
  }

  // This device's KeyPackage secrets: one-time ones first, last-resort ones after.
  async #kpRefs() {
    const refs = (await this.#store.listKeyPackageSecrets()).filter((r) =>
      r.startsWith(`${this.dk}|`),
    );
    refs.sort(lastResortLast);
    return refs;
  }

  // Joins from a Welcome with one of this device's KeyPackage secrets: those this page made
  // (#kpMem) first, without waiting for the store, then the store's (refs: a promise of
  // #kpRefs()).
  async #join(c, welcome, refs) {
    const tried = new Set();
    for (const ref of [...this.#kpMem.keys()].sort(lastResortLast)) {
      tried.add(ref);
      const mem = this.#kpMem.get(ref);
      if (mem && this.#joinWith(c, ref, mem.slice(), welcome)) return;
    }
    for (const ref of await refs) {
      if (tried.has(ref)) continue;
      const secret = await this.#store.getKeyPackageSecret(ref).catch(() => null);
      if (secret && this.#joinWith(c, ref, secret, welcome)) return;
    }
    throw new ChatError('no_key_package', 'no KeyPackage of this device in the Welcome');
  }

  // Tries one secret (wiped here); true when it joined c's group.
  #joinWith(c, ref, secret, welcome) {
    let g;
    try {
      g = this.#mls.join(secret, welcome);
    } catch (err) {
      if (err.name === 'ENOTFOUND') return false;
      throw err;
    } finally {
      secret.fill(0);
    }
    // Used once: deleted while the join goes on (the service handed that KeyPackage out
    // once, so a copy left by a crash meanwhile matches no later Welcome).
    if (!ref.includes('|lr|')) {
      this.#forgetSecret(ref);
      this.#store.deleteKeyPackageSecret(ref).catch(() => {});
    }
    if (c.group) c.group.free(); // an earlier membership (e.g. admitted again)
    c.group = g;
    c.allowed = true;
    return true;
  }

  #forgetSecret(ref) {
    const mem = this.#kpMem.get(ref);
    if (mem) mem.fill(0);
    this.#kpMem.delete(ref);
  }

  #ackLater(c, seq) {
    if ((this.#acks.get(c.id) || 0) < seq) this.#acks.set(c.id, seq);
    if (!this.#ackTimer) this.#ackTimer = setTimeout(() => this.#flushAcks(), ACK_DELAY_MS);
  }

  async #flushAcks() {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = 0;
    const acks = [...this.#acks];
    this.#acks.clear();
    await Promise.all(
      acks.map(([conversation, seq]) =>
        this.request('chat.ack', { conversation, seq }).catch(() => {
          /* the entry comes again after a reconnect and is acknowledged then */
        }),
      ),
    );
  }

  // Entries from..to are this device's own (protocol.md 5.9: a Commit's Welcomes follow its
  // entry): `handled` moves past them once it reaches them.
  #ownEntries(c, from, to) {
    for (let seq = Math.max(from, c.handled + 1); seq <= to; seq++) c.own.add(seq);
    this.#skipOwn(c);
  }

  #skipOwn(c) {
    while (c.own.delete(c.handled + 1)) c.handled += 1;
    for (const seq of c.own) if (seq <= c.handled) c.own.delete(seq);
  }

  // Merges this device's own accepted Commit (ChatEngine.commit).
  async #mergeOwn(c) {
    const done = c.mergedResolve;
    c.mergeAt = 0;
    c.mergedResolve = null;
    if (!done) return;
    if (c.group && !c.group.freed) {
      c.group.commitMerge();
      c.proposals = 0;
      await this.#saveState(c).catch((err) => this.#fail(c, 'save', err));
      this.#wakeEpoch(c);
      this.#emitEpoch(c);
      this.#emit('conversation', { conversation: c.id, entry: 'commit' });
    }
    done();
  }

  // 'epoch' with `use(fn)`: fn gets c's group (or null) at once, during the event's dispatch
  // only, without queueing behind other entries as withGroup() does.
  #emitEpoch(c) {
    let live = true;
    const use = (fn) => {
      if (!live) throw new ChatError('stale', 'use() is valid during the epoch event only');
      return fn(c.group && !c.group.freed ? c.group : null);
    };
    this.#emit('epoch', { conversation: c.id, use });
    live = false;
  }

  #wakeEpoch(c) {
    for (const w of c.epochWaiters.splice(0)) w();
  }

  // Waits until the group moved past `epoch` (the Commit that won arrived), fetching the
  // conversation's backlog when it does not come by itself.
  async #waitEpoch(c, epoch) {
    for (let i = 0; i < 2 && c.epoch <= epoch; i++) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, STALE_WAIT_MS);
        c.epochWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (c.epoch <= epoch) await this.sync(c.id).catch(() => {});
    }
    await this.#queue.idle();
  }

  // ---- KeyPackages ----

  #replenish() {
    if (!this.replenishing) {
      this.replenishing = this.#doReplenish().finally(() => (this.replenishing = null));
    }
    return this.replenishing;
  }

  async #doReplenish() {
    if (!this.client || !this.dk) return;
    const st = await this.request('mls.key_packages.status', {});
    const fields = {};
    const want = st.one_time < KP_LOW ? KP_TARGET - st.one_time : 0;
    if (want > 0) fields.key_packages = await this.#newKeyPackages(want, false);
    if (!st.last_resort) fields.last_resort = (await this.#newKeyPackages(1, true))[0];
    if (!fields.key_packages && !fields.last_resort) return;
    if (!fields.key_packages) fields.key_packages = [];
    await this.request('mls.key_packages.upload', fields);
    await this.#pruneSecrets();
  }

  // Makes n KeyPackages; their secrets go to the store before anything is uploaded.
  async #newKeyPackages(n, lastResort) {
    const out = [];
    for (let i = 0; i < n; i++) {
      const { keyPackage, secret } = this.#mls.keyPackageCreate(this.identity);
      const ref = `${this.dk}|${lastResort ? 'lr|' : ''}${Date.now()}|${randomId(6)}`;
      try {
        await this.#store.putKeyPackageSecret(ref, secret);
        this.#kpMem.set(ref, secret.slice());
      } finally {
        secret.fill(0);
      }
      out.push(b64u(keyPackage));
    }
    return out;
  }

  async #pruneSecrets() {
    const refs = (await this.#store.listKeyPackageSecrets()).filter((r) =>
      r.startsWith(`${this.dk}|`),
    );
    const old = Date.now() - KP_LIFETIME_MS;
    for (const ref of refs) {
      const t = Number(ref.split('|').find((p) => /^\d{13}$/.test(p)));
      if (t && t < old) {
        this.#forgetSecret(ref);
        await this.#store.deleteKeyPackageSecret(ref).catch(() => {});
      }
    }
  }

  // ---- groups and Commits ----

  // Creates the conversation's group with this device as its only member, unless it exists.
  // Returns true when this device is in the group afterwards.
  async ensureGroup(id) {
    const c = await this.conversation(id);
    return this.#queue.run(async () => {
      if (c.group && !c.group.freed) return true;
      const r = await this.request('chat.get', { conversation: id });
      c.meta = r.conversation;
      if (c.meta.group) return false; // someone else made it: a member adds this device
      const { keyPackage, secret } = this.#mls.keyPackageCreate(this.identity);
      let g;
      try {
        g = this.#mls.create(id, secret);
      } finally {
        secret.fill(0);
        keyPackage.fill(0);
      }
      try {
        await this.request('mls.group.create', {
          conversation: id,
          group_info: b64u(g.groupInfo()),
        });
      } catch (err) {
        g.free();
        if (err.code === 'bad_state') return false; // made at the same moment by another device
        throw err;
      }
      c.group = g;
      c.allowed = true;
      await this.#saveState(c);
      this.#emit('epoch', { conversation: id });
      this.#emit('conversation', { conversation: id });
      return true;
    });
  }

  // Commits what plan(group, conv) returns ({ add: [KeyPackage bytes], remove: [leaf], update,
  // proposals }, or null for nothing), re-basing on mls_stale_epoch: plan runs again on the
  // group after the winning Commit. Resolves with the service's answer, or null when there was
  // nothing to commit.
  async commit(id, plan) {
    const c = await this.conversation(id);
    for (let attempt = 0; ; attempt++) {
      const out = await this.#queue.run(async () => {
        if (!c.group || c.group.freed) throw new ChatError('not_in_group');
        if (c.mergeAt) return { merging: c.merged }; // our last Commit is merging
        const p = plan(c.group, c);
        const empty = !p || (!(p.add && p.add.length) && !(p.remove && p.remove.length));
        // A Commit with nothing of its own still covers the proposals received (a member's
        // own Remove, to leave); `update` asks for one anyway (new keys for this member).
        if (!p || (empty && !p.update && !(p.proposals && c.proposals > 0))) return { done: null };
        const epoch = c.group.epoch;
        const { commit, welcome } = c.group.commit({ add: p.add || [], remove: p.remove || [] });
        const fields = { conversation: id, commit: b64u(commit) };
        if (welcome) fields.welcome = b64u(welcome);
        let r;
        try {
          r = await this.request('mls.commit', fields);
        } catch (err) {
          c.group.commitDiscard();
          if (err.code === 'mls_stale_epoch' && attempt < RETRIES) {
            this.stats.stale++;
            return { stale: epoch };
          }
          throw err;
        }
        // Entries sequenced before the Commit (application messages and proposals of this
        // epoch) may not have reached this device yet: an event can be late (crossing nodes),
        // and entries sent before the answer wait behind this task. They are read with this
        // epoch's keys, so the merge waits for them (below).
        c.mergeAt = Number.isInteger(r.seq) ? r.seq : 0;
        // The Commit's entry and the Welcome's after it (one per device added) are this
        // device's own: with them skipped, the next Commit merges without asking chat.sync.
        if (c.mergeAt) this.#ownEntries(c, c.mergeAt, c.mergeAt + (welcome ? (p.add || []).length : 0));
        c.merged = new Promise((resolve) => {
          c.mergedResolve = resolve;
        });
        if (!c.mergeAt || r.seq <= c.handled + 1) await this.#mergeOwn(c);
        return { done: r };
      });
      if ('merging' in out) {
        await out.merging; // then plan again on the merged epoch (not a lost race)
        attempt--;
        continue;
      }
      if (!('stale' in out)) {
        if (c.mergeAt) {
          // chat.sync sends, before its answer, every entry the store holds for this device
          // and not yet acknowledged (the Commit's predecessors among them); the merge is
          // queued after them.
          await this.request('chat.sync', { conversation: id }).catch(() => {});
          this.#queue.run(() => this.#mergeOwn(c));
        }
        await c.merged;
        return out.done;
      }
      await this.#waitEpoch(c, out.stale);
    }
  }

  // ---- sending ----

  // Sends a typed message (messages.js). Returns the history item. When this device is not in
  // the group yet (or the connection is down) the message waits in the outbox, kept in the
  // store, and goes out once it can; the item is then `pending`.
  async send(id, msg) {
    encode(msg); // validates
    const c = await this.conversation(id);
    const item = {
      key: `o|${this.dk}|${c.id}|${seqKey(Date.now())}|${msg.id}`,
      seq: 0,
      at: Date.now(),
      from: { iss: this.user.iss, sub: this.user.sub, device: this.deviceId },
      mine: true,
      msg,
      pending: true,
    };
    this.#addItem(c, item);
    await this.#storeItem(c, item);
    return this.#deliver(c, item);
  }

  async #deliver(c, item) {
    for (let attempt = 0; ; attempt++) {
      const out = await this.#queue.run(async () => {
        if (!item.pending) return { done: item };
        if (!c.group || c.group.freed || !this.attached) return { done: item }; // waits
        // This device's own Commit is accepted but not merged yet: the message is for the
        // epoch it starts, so it waits for the merge rather than going out for the old one.
        if (c.mergeAt) return { merging: c.merged };
        const epoch = c.group.epoch;
        const plain = encode(item.msg);
        const padding = (256 - (plain.length % 256)) % 256;
        let ct;
        try {
          ct = c.group.encrypt(plain, { padding });
        } finally {
          plain.fill(0);
        }
        // The ratchet moved on: the state is saved before the ciphertext leaves, so a reload
        // can never encrypt again with the same key and nonce.
        await this.#saveState(c);
        let r;
        try {
          const body = { conversation: c.id, message: b64u(ct) };
          // "unavailable" with retry_ms: the service is behind and did not store it; the same
          // ciphertext goes again after the advised time (a few times, with jitter)
          for (let busy = 0; ; busy++) {
            try {
              r = await this.request('chat.send', body);
              break;
            } catch (err) {
              if (err.code !== 'unavailable' || !err.retryMs || busy >= RETRIES) throw err;
              await new Promise((ok) => setTimeout(ok, err.retryMs * (1 + Math.random())));
            }
          }
        } catch (err) {
          if (err.code === 'mls_stale_epoch' && attempt < RETRIES) {
            this.stats.stale++;
            return { stale: epoch };
          }
          if (err.code === 'connection_lost' || err.code === 'timeout') return { done: item };
          if (err.code === 'forbidden') this.#ended(c);
          // Refused for good: the message stays in the history as not sent.
          const failed = { ...item, pending: false, failed: err.code || 'internal' };
          await this.#storeItem(c, failed).catch(() => {});
          Object.assign(item, failed);
          this.#emit('message', { conversation: c.id, item, replaced: true });
          throw err;
        }
        if (Number.isInteger(r.seq)) this.#ownEntries(c, r.seq, r.seq);
        const sent = {
          ...item,
          key: `h|${this.dk}|${c.id}|${seqKey(r.seq)}`,
          seq: r.seq,
          pending: false,
        };
        await this.#storeItem(c, sent);
        await this.#store.deleteChat(item.key).catch(() => {});
        const i = c.items.indexOf(item);
        if (i >= 0) c.items.splice(i, 1);
        c.ids.delete(item.msg.id);
        this.#addItem(c, sent, false);
        this.#emit('message', { conversation: c.id, item: sent, replaced: true });
        return { done: sent };
      });
      if ('merging' in out) {
        await out.merging;
        attempt--;
        continue;
      }
      if (!('stale' in out)) return out.done;
      await this.#waitEpoch(c, out.stale);
    }
  }

  // ---- parked messages: written before there is a conversation to send them to ----

  // Keeps a message for `scope` (e.g. a consult: the patient's e-consult before the practice
  // added this device), encrypted in the store; returns its pending history item.
  async park(scope, msg) {
    encode(msg); // validates
    if (!this.dk) throw new ChatError('not_attached');
    const item = {
      key: `p|${this.dk}|${scope}|${seqKey(Date.now())}|${msg.id}`,
      seq: 0,
      at: Date.now(),
      from: { iss: this.user.iss, sub: this.user.sub, device: this.deviceId },
      mine: true,
      msg,
      pending: true,
    };
    await this.#storeItem(null, item);
    return item;
  }

  async parked(scope) {
    if (!this.dk) return [];
    const recs = await this.#store.getChatRange(`p|${this.dk}|${scope}|`);
    const out = [];
    for (const { id, bytes } of recs) {
      try {
        out.push({ ...JSON.parse(td.decode(bytes)), key: id });
      } catch {
        /* unreadable: skipped */
      }
    }
    return out;
  }

  // Sends what was parked for scope into the conversation, oldest first. Each message is in
  // the conversation's outbox before its parked copy goes (a copy sent twice is shown once).
  async unpark(scope, id) {
    for (const item of await this.parked(scope)) {
      await this.send(id, item.msg);
      await this.#store.deleteChat(item.key);
    }
  }

  #flushOutbox(c) {
    for (const item of c.items.filter((x) => x.pending)) {
      this.#deliver(c, item).catch((err) => this.#fail(c, 'send', err));
    }
  }

  #flushOutboxes() {
    for (const c of this.#convs.values()) this.#flushOutbox(c);
  }

  // Leaves a conversation by oneself: a Remove proposal for the own leaf (another member
  // commits it), after chat.members.remove.
  async leave(id) {
    const c = await this.conversation(id);
    return this.#queue.run(async () => {
      if (!c.group || c.group.freed) return null;
      return this.request('mls.proposal', { conversation: id, proposal: b64u(c.group.leave()) });
    });
  }

  // Runs fn(group) on the queue with the conversation's group at its current epoch (null when
  // this device is not in it), e.g. to derive media keys from the MLS exporter on every 'epoch'
  // event: engine.on('epoch', ({ conversation }) => engine.withGroup(conversation, (g) => …)),
  // or at once with the event's own use(fn) while it is dispatched.
  // fn must not keep the group.
  async withGroup(id, fn) {
    const c = await this.conversation(id);
    return this.#queue.run(() => fn(c.group && !c.group.freed ? c.group : null));
  }

  // Waits until every entry received so far is handled (tests, and before a Commit).
  idle() {
    return this.#queue.idle();
  }
}
