// Client MLS state at rest in the browser: group state blobs (Group.save() of spk_mls.js) and
// KeyPackage secrets in IndexedDB, each encrypted with AES-256-GCM under one non-extractable
// WebCrypto key. The key itself is stored in IndexedDB as a CryptoKey object: script on the
// page can use it but never read its bytes, and a copy of the database files alone decrypts
// nothing without the browser's own storage of that key. docs/browser-mls.md describes the
// format.
//
//   const store = await openMlsStore();             // database 'spreekkamer-mls'
//   await store.putState(groupId, group.save());    // after every change of the group
//   const g = mls.restore(await store.getState(groupId));
//   await store.putKeyPackageSecret(ref, secret);  // until the Welcome arrives
//   const secret = await store.takeKeyPackageSecret(ref);  // read and delete (one use)
//
// The chat client keeps its own records (decrypted message history, delivery cursors, unsent
// messages) in the same way, under ids it chooses: putChat / getChat / listChat(prefix).
//
// Records: { v: 1, iv: 12 random bytes, ct: AES-GCM ciphertext with its 16-byte tag }, the
// additional data binding each record to its place ("spreekkamer-mls/1 state <groupId>",
// "... kp <ref>" or "... chat <id>"), so a record copied under another name does not decrypt. The plaintext a get
// returns belongs to the caller: wipe it with .fill(0) once it went into spk_mls.

const VERSION = 1; // record format
const DB_VERSION = 2; // 2: the chat store
const KEY_ID = 'aes-gcm-256';
const STORES = ['keys', 'state', 'kp', 'chat'];
const te = new TextEncoder();

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function open(name) {
  const r = indexedDB.open(name, DB_VERSION);
  r.onupgradeneeded = () => {
    for (const s of STORES) {
      if (!r.result.objectStoreNames.contains(s)) r.result.createObjectStore(s);
    }
  };
  return req(r);
}

// A write resolves once its transaction has committed. A read resolves with its requests'
// results: its transaction's completion adds nothing to them and costs the page one more turn
// through the browser's storage process (tens of milliseconds on a busy machine, at the moment
// a Welcome is waited for).
async function tx(db, store, mode, fn) {
  const t = db.transaction(store, mode);
  const done = new Promise((resolve, reject) => {
    t.oncomplete = resolve;
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
  });
  if (mode === 'readonly') done.catch(() => {}); // a failed request rejects fn's result itself
  const out = await fn(t.objectStore(store));
  if (mode !== 'readonly') await done;
  return out;
}

// The database's key: made once, non-extractable, kept as a CryptoKey. Two tabs opening the
// store at once agree on one key (the first write wins; the loser reads the winner's).
async function loadKey(db) {
  const have = await tx(db, 'keys', 'readonly', (s) => req(s.get(KEY_ID)));
  if (have) return have;
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, [
    'encrypt',
    'decrypt',
  ]);
  await tx(db, 'keys', 'readwrite', async (s) => {
    if (!(await req(s.get(KEY_ID)))) await req(s.put(key, KEY_ID));
  });
  return tx(db, 'keys', 'readonly', (s) => req(s.get(KEY_ID)));
}

export class MlsStoreError extends Error {
  constructor(message) {
    super(message);
    this.name = 'MlsStoreError';
  }
}

export class MlsStore {
  #db;
  #key;

  constructor(db, key) {
    this.#db = db;
    this.#key = key;
  }

  // The key can be used but not read (for tests: extractable is false).
  get key() {
    return this.#key;
  }

  async #seal(kind, id, bytes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ad = te.encode(`spreekkamer-mls/${VERSION} ${kind} ${id}`);
    const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: ad }, this.#key, bytes);
    return { v: VERSION, iv, ct: new Uint8Array(ct) };
  }

  async #open(kind, id, rec) {
    if (!rec) return null;
    if (rec.v !== VERSION || !(rec.iv instanceof Uint8Array) || !(rec.ct instanceof Uint8Array)) {
      throw new MlsStoreError(`${kind} ${id}: unknown record format`);
    }
    const ad = te.encode(`spreekkamer-mls/${VERSION} ${kind} ${id}`);
    try {
      const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: rec.iv, additionalData: ad }, this.#key, rec.ct);
      return new Uint8Array(pt);
    } catch {
      throw new MlsStoreError(`${kind} ${id}: does not decrypt (altered, moved or another key)`);
    }
  }

  async #put(kind, id, bytes) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`${kind}: expected Uint8Array`);
    const rec = await this.#seal(kind, String(id), bytes);
    await tx(this.#db, kind, 'readwrite', (s) => req(s.put(rec, String(id))));
  }

  async #get(kind, id) {
    const rec = await tx(this.#db, kind, 'readonly', (s) => req(s.get(String(id))));
    return this.#open(kind, String(id), rec);
  }

  async #delete(kind, id) {
    await tx(this.#db, kind, 'readwrite', (s) => req(s.delete(String(id))));
  }

  async #list(kind, prefix = null) {
    const range = prefix === null ? undefined : IDBKeyRange.bound(prefix, `${prefix}\uffff`);
    const keys = await tx(this.#db, kind, 'readonly', (s) => req(s.getAllKeys(range)));
    return keys.map(String);
  }

  // ---- group state (Group.save() blobs), by group id ----

  putState(groupId, blob) {
    return this.#put('state', groupId, blob);
  }

  getState(groupId) {
    return this.#get('state', groupId);
  }

  deleteState(groupId) {
    return this.#delete('state', groupId);
  }

  listStates() {
    return this.#list('state');
  }

  // ---- KeyPackage secrets (keyPackageCreate().secret), by a reference the client chooses ----

  putKeyPackageSecret(ref, secret) {
    return this.#put('kp', ref, secret);
  }

  getKeyPackageSecret(ref) {
    return this.#get('kp', ref);
  }

  // Reads and deletes: a KeyPackage is used once.
  async takeKeyPackageSecret(ref) {
    const secret = await this.#get('kp', ref);
    if (secret) await this.#delete('kp', ref);
    return secret;
  }

  deleteKeyPackageSecret(ref) {
    return this.#delete('kp', ref);
  }

  listKeyPackageSecrets() {
    return this.#list('kp');
  }

  // ---- the chat client's records (history, cursors, unsent messages), by id ----

  putChat(id, bytes) {
    return this.#put('chat', id, bytes);
  }

  getChat(id) {
    return this.#get('chat', id);
  }

  deleteChat(id) {
    return this.#delete('chat', id);
  }

  // Ids that start with prefix, in key order.
  listChat(prefix = '') {
    return this.#list('chat', prefix);
  }

  // [{ id, bytes }] of every record whose id starts with prefix, in key order.
  async getChatRange(prefix) {
    const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
    const [keys, recs] = await tx(this.#db, 'chat', 'readonly', (s) =>
      Promise.all([req(s.getAllKeys(range)), req(s.getAll(range))]),
    );
    const out = [];
    for (let i = 0; i < keys.length; i++) {
      out.push({ id: String(keys[i]), bytes: await this.#open('chat', String(keys[i]), recs[i]) });
    }
    return out;
  }

  close() {
    this.#db.close();
  }
}

export async function openMlsStore(name = 'spreekkamer-mls') {
  if (typeof indexedDB === 'undefined' || !globalThis.crypto?.subtle) {
    throw new MlsStoreError('IndexedDB and WebCrypto are needed (a secure context)');
  }
  const db = await open(name);
  let key;
  try {
    key = await loadKey(db);
  } catch (err) {
    db.close();
    throw new MlsStoreError(`no storable non-extractable key in this browser: ${err.message}`);
  }
  if (!(key instanceof CryptoKey) || key.extractable || key.algorithm.name !== 'AES-GCM') {
    db.close();
    throw new MlsStoreError('the stored key is not a non-extractable AES-GCM CryptoKey');
  }
  return new MlsStore(db, key);
}

// Deletes the whole database (sign-out, device wipe).
export function deleteMlsStore(name = 'spreekkamer-mls') {
  return req(indexedDB.deleteDatabase(name));
}
