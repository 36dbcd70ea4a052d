// spk_mls (RFC 9420, cipher suite 1) compiled to WebAssembly: the browser's and node's MLS.
// The same C code as the server side and the C clients (crypto/, spk/mls.h), built by
// scripts/setup-webmls.sh into web/vendor/spk_mls.wasm. docs/browser-mls.md describes the API.
//
//   const mls = await loadMls();                 // once; every call after that is synchronous
//   const { keyPackage, secret } = mls.keyPackageCreate('patient:42');
//   const g = mls.join(secret, welcome);         // or mls.create(groupId, secret)
//   const msg = g.encrypt('hallo');              // MLSMessage bytes
//   const ev = g.process(bytes);                 // { type: 'application', data } | ...
//   g.free();                                    // wipes every secret of the group
//
// Bytes in and out are Uint8Array (strings are taken as UTF-8). Failures throw MlsError with
// the C library's code (err.code, e.g. -36) and name (err.name, e.g. 'EMLSEPOCH').
//
// Secrets: every input copied into wasm memory is wiped there before it is freed, and every
// output buffer of the library is released with spk_mls_buf_free (which wipes it) once copied
// out. The copies handed to JavaScript belong to the caller: wipe them with .fill(0) when done.
//
// Adding a C function of spk/mls.h is one method here: open a call scope (this.#m.scope), put
// the inputs in (s.bytes, s.str, s.u32s, s.ptrs), take output slots (s.buf, s.alloc), call
// s.check('spk_mls_name', ...args) and copy the results out (s.take, s.read). The scope wipes
// and frees everything when it ends, also when the call throws.

const te = new TextEncoder();

// Sizes and offsets the wrapper assumes (wasm32), checked against spk_wasm_layout() at load.
const LAYOUT = {
  ptr: 4,
  size: 4,
  buf: 8,
  bufP: 0,
  bufN: 4,
  opts: 24,
  optsAdd: 0,
  optsAddLen: 4,
  optsNAdd: 8,
  optsRemove: 12,
  optsNRemove: 16,
  optsFlags: 20,
  event: 12,
  eventType: 0,
  eventData: 4,
  authLen: 32,
  maxMessage: 8 * 1024 * 1024,
  info: 128,
  infoEpoch: 0,
  infoSender: 8,
  infoSenderId: 12,
  infoSenderIdLen: 16,
  infoAd: 20,
  infoAdLen: 24,
  infoJoined: 28,
  infoNJoined: 32,
  infoLeft: 36,
  infoNLeft: 40,
  member: 44,
  memberLeaf: 0,
  memberId: 4,
  memberIdLen: 8,
};

const NO_LEAF = 0xffffffff;

export const COMMIT_PRIVATE = 0x1;
export const COMMIT_TREE_OUT_OF_BAND = 0x2;
export const EPOCH_AUTHENTICATOR_LEN = LAYOUT.authLen;
export const MAX_MESSAGE = LAYOUT.maxMessage;

const EVENT_TYPES = { 1: 'application', 2: 'proposal', 3: 'commit', 4: 'removed' };

export class MlsError extends Error {
  constructor(code, name, message, fn) {
    super(`${fn}: ${name} (${message})`);
    this.code = code;
    this.name = name;
    this.fn = fn;
  }
}

function toBytes(v, what) {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return te.encode(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`${what}: expected Uint8Array or string`);
}

// Host functions the module imports (WASI preview 1 and a few emscripten ones). The library
// does no I/O: everything but the clock and the random source is a stub.
function hostImports(self, random) {
  const ENOSYS = 52; // emscripten's errno numbers
  const WASI_EBADF = 8;
  const stub = () => -ENOSYS;
  return {
    env: {
      getentropy(ptr, len) {
        if (len > 256) return -1;
        random.getRandomValues(self.u8().subarray(ptr, ptr + len));
        return 0;
      },
      emscripten_notify_memory_growth() {
        self.views = null;
      },
      __syscall_getuid32: () => 0,
      __syscall_geteuid32: () => 0,
      __syscall_getgid32: () => 0,
      __syscall_getegid32: () => 0,
      __syscall_getdents64: stub,
      __syscall_stat64: stub,
    },
    wasi_snapshot_preview1: {
      clock_time_get(id, precision, out) {
        // Realtime (0) and monotonic (1) clocks, in nanoseconds.
        const ms = id === 0 ? Date.now() : globalThis.performance.now();
        self.dv().setBigUint64(out, BigInt(Math.floor(ms * 1e6)), true);
        return 0;
      },
      environ_sizes_get(count, size) {
        self.dv().setUint32(count, 0, true);
        self.dv().setUint32(size, 0, true);
        return 0;
      },
      environ_get: () => 0,
      fd_write(fd, iov, iovcnt, nwritten) {
        // Only a diagnostic from the C library could arrive here; report and drop it.
        const dv = self.dv();
        let n = 0;
        let text = '';
        for (let i = 0; i < iovcnt; i++) {
          const p = dv.getUint32(iov + i * 8, true);
          const len = dv.getUint32(iov + i * 8 + 4, true);
          text += new TextDecoder().decode(self.u8().subarray(p, p + len));
          n += len;
        }
        if (text.trim()) console.warn(`spk_mls (fd ${fd}): ${text.trimEnd()}`);
        dv.setUint32(nwritten, n, true);
        return 0;
      },
      fd_read: () => WASI_EBADF,
      fd_close: () => WASI_EBADF,
      fd_seek: () => WASI_EBADF,
      proc_exit(code) {
        throw new Error(`spk_mls: exit(${code})`);
      },
    },
  };
}

// The instantiated module: memory access and call scopes. One per loadMls().
class Runtime {
  constructor() {
    this.x = null;
    this.views = null;
  }

  u8() {
    if (!this.views || this.views.u8.buffer !== this.x.memory.buffer) {
      const b = this.x.memory.buffer;
      this.views = { u8: new Uint8Array(b), dv: new DataView(b) };
    }
    return this.views.u8;
  }

  dv() {
    this.u8();
    return this.views.dv;
  }

  cstr(p) {
    const u8 = this.u8();
    let e = p;
    while (u8[e] !== 0) e++;
    return new TextDecoder().decode(u8.subarray(p, e));
  }

  fail(fn, rc) {
    const name = this.cstr(this.x.spk_err_name(rc));
    throw new MlsError(rc, name, this.cstr(this.x.spk_strerror(rc)), fn);
  }

  // Runs fn(scope); everything the scope allocated is wiped and freed afterwards.
  scope(fn) {
    const s = new Scope(this);
    try {
      return fn(s);
    } finally {
      s.release();
    }
  }
}

class Scope {
  constructor(rt) {
    this.rt = rt;
    this.regions = []; // [ptr, len] wiped and freed at the end
    this.bufs = []; // spk_mls_buf_t slots released with spk_mls_buf_free at the end
  }

  alloc(len) {
    const p = this.rt.x.malloc(Math.max(len, 1));
    if (p === 0) throw new MlsError(-2, 'ENOMEM', 'out of memory', 'malloc');
    this.regions.push([p, Math.max(len, 1)]);
    this.rt.u8().fill(0, p, p + Math.max(len, 1));
    return p;
  }

  // A copy of bytes in wasm memory; [ptr, len]. null/undefined gives [0, 0].
  bytes(v, what = 'bytes') {
    if (v === null || v === undefined) return [0, 0];
    const b = toBytes(v, what);
    const p = this.alloc(b.length);
    this.rt.u8().set(b, p);
    return [p, b.length];
  }

  // A NUL-terminated UTF-8 copy of a string.
  str(s) {
    const b = te.encode(String(s));
    const p = this.alloc(b.length + 1);
    this.rt.u8().set(b, p);
    return p;
  }

  u32s(list) {
    const p = this.alloc(list.length * 4);
    const dv = this.rt.dv();
    list.forEach((v, i) => dv.setUint32(p + i * 4, v >>> 0, true));
    return p;
  }

  // An array of pointers (or size_t) in wasm memory.
  ptrs(list) {
    return this.u32s(list);
  }

  // An output spk_mls_buf_t, released (wiped) with spk_mls_buf_free when the scope ends.
  buf() {
    const p = this.alloc(LAYOUT.buf);
    this.bufs.push(p);
    return p;
  }

  // A copy of an output buffer's bytes; null when it is empty.
  take(bufPtr) {
    const dv = this.rt.dv();
    const p = dv.getUint32(bufPtr + LAYOUT.bufP, true);
    const n = dv.getUint32(bufPtr + LAYOUT.bufN, true);
    return p === 0 ? null : this.rt.u8().slice(p, p + n);
  }

  read(p, n) {
    return this.rt.u8().slice(p, p + n);
  }

  u32(p) {
    return this.rt.dv().getUint32(p, true);
  }

  check(fn, ...args) {
    const rc = this.rt.x[fn](...args);
    if (rc < 0) this.rt.fail(fn, rc);
    return rc;
  }

  release() {
    for (const b of this.bufs) this.rt.x.spk_mls_buf_free(b);
    const u8 = this.rt.u8();
    for (const [p, n] of this.regions.reverse()) {
      u8.fill(0, p, p + n);
      this.rt.x.free(p);
    }
    this.bufs = [];
    this.regions = [];
  }
}

const finalizer =
  typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry(({ rt, ptr }) => {
       // A group that was never freed: wipe and free it anyway.
       if (ptr.p !== 0) rt.x.spk_mls_free(ptr.p);
     })
    : null;

// One member's group state (spk_mls_t). Not shared between threads; free() it when done.
export class Group {
  #m;
  #h; // { p: pointer } shared with the finalizer

  constructor(rt, ptr) {
    this.#m = rt;
    this.#h = { p: ptr };
    if (finalizer) finalizer.register(this, { rt, ptr: this.#h }, this);
  }

  get #g() {
    if (this.#h.p === 0) throw new MlsError(-26, 'ESTATE', 'group was freed', 'Group');
    return this.#h.p;
  }

  // Wipes every secret of the group and frees it. Idempotent.
  free() {
    if (this.#h.p !== 0) {
      this.#m.x.spk_mls_free(this.#h.p);
      this.#h.p = 0;
      if (finalizer) finalizer.unregister(this);
    }
  }

  get freed() {
    return this.#h.p === 0;
  }

  // ---- proposals: each returns the MLSMessage(PublicMessage) to send ----

  proposeAdd(keyPackage) {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_propose_add', this.#g, ...s.bytes(keyPackage, 'keyPackage'), out);
      return s.take(out);
    });
  }

  proposeRemove(leaf) {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_propose_remove', this.#g, leaf >>> 0, out);
      return s.take(out);
    });
  }

  proposeUpdate() {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_propose_update', this.#g, out);
      return s.take(out);
    });
  }

  // ---- commits ----

  // A Commit over the cached proposals plus add (KeyPackages) and remove (leaf indices).
  // Returns { commit, welcome } (welcome is null when nobody is added). The group stays in
  // its epoch until commitMerge().
  commit({ add = [], remove = [], private: priv = false, treeOutOfBand = false } = {}) {
    return this.#m.scope((s) => {
      const adds = add.map((kp) => s.bytes(kp, 'add'));
      const opts = s.alloc(LAYOUT.opts);
      const dv = this.#m.dv();
      dv.setUint32(opts + LAYOUT.optsAdd, adds.length ? s.ptrs(adds.map((a) => a[0])) : 0, true);
      dv.setUint32(opts + LAYOUT.optsAddLen, adds.length ? s.ptrs(adds.map((a) => a[1])) : 0, true);
      dv.setUint32(opts + LAYOUT.optsNAdd, adds.length, true);
      dv.setUint32(opts + LAYOUT.optsRemove, remove.length ? s.u32s(remove) : 0, true);
      dv.setUint32(opts + LAYOUT.optsNRemove, remove.length, true);
      const flags = (priv ? COMMIT_PRIVATE : 0) | (treeOutOfBand ? COMMIT_TREE_OUT_OF_BAND : 0);
      dv.setUint32(opts + LAYOUT.optsFlags, flags, true);
      const commit = s.buf();
      const welcome = s.buf();
      s.check('spk_mls_commit', this.#g, opts, commit, welcome);
      return { commit: s.take(commit), welcome: s.take(welcome) };
    });
  }

  commitMerge() {
    this.#m.scope((s) => s.check('spk_mls_commit_merge', this.#g));
  }

  commitDiscard() {
    this.#m.x.spk_mls_commit_discard(this.#g);
  }

  // ---- messages ----

  encrypt(plaintext, { padding = 0 } = {}) {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_encrypt', this.#g, ...s.bytes(plaintext, 'plaintext'), padding >>> 0, out);
      return s.take(out);
    });
  }

  // Handles one MLSMessage. Returns { type } with type 'application' (and data, the
  // plaintext), 'proposal', 'commit' or 'removed'. Throws MlsError and leaves the state
  // unchanged on failure.
  process(message) {
    return this.#m.scope((s) => {
      const ev = s.alloc(LAYOUT.event);
      s.check('spk_mls_process', this.#g, ...s.bytes(message, 'message'), ev);
      s.bufs.push(ev + LAYOUT.eventData);
      const type = EVENT_TYPES[s.u32(ev + LAYOUT.eventType)] ?? 'unknown';
      const out = { type };
      if (type === 'application') out.data = s.take(ev + LAYOUT.eventData) ?? new Uint8Array(0);
      return out;
    });
  }

  // process() that also describes the message (spk_mls_process_info): { type, data?, epoch
  // (BigInt: the message's; for a Commit the new one), sender: { leaf, identity } (null for a
  // non-member), authenticatedData, joined and left: [{ leaf, identity }] for a Commit }. The
  // sender is the one the message's signature proves, not what a delivery service claims.
  processInfo(message) {
    return this.#m.scope((s) => {
      const ev = s.alloc(LAYOUT.event);
      const info = s.alloc(LAYOUT.info);
      s.check('spk_mls_process_info', this.#g, ...s.bytes(message, 'message'), ev, info);
      s.bufs.push(ev + LAYOUT.eventData);
      const type = EVENT_TYPES[s.u32(ev + LAYOUT.eventType)] ?? 'unknown';
      const dv = this.#m.dv();
      const bytesAt = (p, n) => (p === 0 ? new Uint8Array(0) : s.read(p, n));
      const members = (arr, n) => {
        const out = [];
        for (let i = 0; i < n; i++) {
          const m = arr + i * LAYOUT.member;
          out.push({
            leaf: s.u32(m + LAYOUT.memberLeaf),
            identity: bytesAt(s.u32(m + LAYOUT.memberId), s.u32(m + LAYOUT.memberIdLen)),
          });
        }
        return out;
      };
      const leaf = s.u32(info + LAYOUT.infoSender);
      const idPtr = s.u32(info + LAYOUT.infoSenderId);
      const out = {
        type,
        epoch: dv.getBigUint64(info + LAYOUT.infoEpoch, true),
        sender:
          leaf === NO_LEAF || idPtr === 0
            ? null
            : { leaf, identity: bytesAt(idPtr, s.u32(info + LAYOUT.infoSenderIdLen)) },
        authenticatedData: bytesAt(s.u32(info + LAYOUT.infoAd), s.u32(info + LAYOUT.infoAdLen)),
        joined: members(s.u32(info + LAYOUT.infoJoined), s.u32(info + LAYOUT.infoNJoined)),
        left: members(s.u32(info + LAYOUT.infoLeft), s.u32(info + LAYOUT.infoNLeft)),
      };
      if (type === 'application') out.data = s.take(ev + LAYOUT.eventData) ?? new Uint8Array(0);
      return out;
    });
  }

  // ---- epoch information ----

  get epoch() {
    return BigInt.asUintN(64, BigInt(this.#m.x.spk_mls_epoch(this.#g)));
  }

  get ownLeaf() {
    return this.#m.x.spk_mls_own_leaf(this.#g) >>> 0;
  }

  get groupId() {
    return this.#m.scope((s) => {
      const len = s.alloc(LAYOUT.size);
      const p = this.#m.x.spk_mls_group_id(this.#g, len);
      return s.read(p, s.u32(len));
    });
  }

  get leafCount() {
    return this.#m.x.spk_mls_leaf_count(this.#g) >>> 0;
  }

  isMember(leaf) {
    return this.#m.x.spk_mls_is_member(this.#g, leaf >>> 0) !== 0;
  }

  // Identity (basic credential) of the member at leaf; null for a blank leaf.
  memberIdentity(leaf) {
    return this.#m.scope((s) => {
      const id = s.alloc(LAYOUT.ptr);
      const len = s.alloc(LAYOUT.size);
      const rc = this.#m.x.spk_mls_member_identity(this.#g, leaf >>> 0, id, len);
      if (rc === -4) return null; // SPK_ENOTFOUND: blank leaf
      if (rc < 0) this.#m.fail('spk_mls_member_identity', rc);
      return s.read(s.u32(id), s.u32(len));
    });
  }

  // Every member: [{ leaf, identity }] in leaf order.
  members() {
    const out = [];
    const n = this.leafCount;
    for (let l = 0; l < n; l++) {
      if (this.isMember(l)) out.push({ leaf: l, identity: this.memberIdentity(l) });
    }
    return out;
  }

  epochAuthenticator() {
    return this.#m.scope((s) => {
      const out = s.alloc(LAYOUT.authLen);
      s.check('spk_mls_epoch_authenticator', this.#g, out);
      return s.read(out, LAYOUT.authLen);
    });
  }

  // MLS-Exporter(label, context, length) of the current epoch (RFC 9420 §8.5).
  exportSecret(label, context = new Uint8Array(0), length = 32) {
    return this.#m.scope((s) => {
      const out = s.alloc(length);
      const ctx = s.bytes(context, 'context');
      s.check('spk_mls_export_secret', this.#g, s.str(label), ...ctx, out, length >>> 0);
      return s.read(out, length);
    });
  }

  ratchetTree() {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_ratchet_tree', this.#g, out);
      return s.take(out);
    });
  }

  // MLSMessage(GroupInfo) of the current epoch, signed by this member: what the delivery
  // service's observer starts from (mls.group.create).
  groupInfo({ treeOutOfBand = false } = {}) {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_group_info', this.#g, treeOutOfBand ? COMMIT_TREE_OUT_OF_BAND : 0, out);
      return s.take(out);
    });
  }

  // Leaving by oneself: a Remove proposal for the own leaf (PublicMessage), which another
  // member commits.
  leave() {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_leave', this.#g, out);
      return s.take(out);
    });
  }

  // The state blob (spk_mls_save): every secret of the epoch and the signature key. Store it
  // only encrypted (web/mls/store.js) and wipe the returned copy when done.
  save() {
    return this.#m.scope((s) => {
      const out = s.buf();
      s.check('spk_mls_save', this.#g, out);
      return s.take(out);
    });
  }
}

export class Mls {
  #m;

  constructor(rt) {
    this.#m = rt;
  }

  // A fresh KeyPackage for identity: { keyPackage, secret }. keyPackage is the
  // MLSMessage(KeyPackage) to publish; secret holds private keys (keep it encrypted).
  keyPackageCreate(identity) {
    return this.#m.scope((s) => {
      const kp = s.buf();
      const secret = s.buf();
      s.check('spk_mls_key_package_create', ...s.bytes(identity, 'identity'), kp, secret);
      return { keyPackage: s.take(kp), secret: s.take(secret) };
    });
  }

  // Validates an MLSMessage(KeyPackage) at time now (Unix seconds; 0 skips the lifetime
  // check) and returns the identity of its credential. Throws MlsError when invalid.
  keyPackageCheck(keyPackage, now = Math.floor(Date.now() / 1000)) {
    return this.#m.scope((s) => {
      const id = s.buf();
      s.check('spk_mls_key_package_check', ...s.bytes(keyPackage, 'keyPackage'), BigInt(now), id);
      return s.take(id) ?? new Uint8Array(0);
    });
  }

  create(groupId, keyPackageSecret) {
    return this.#m.scope((s) => {
      const out = s.alloc(LAYOUT.ptr);
      const gid = s.bytes(groupId, 'groupId');
      s.check('spk_mls_create', out, ...gid, ...s.bytes(keyPackageSecret, 'secret'));
      return new Group(this.#m, s.u32(out));
    });
  }

  // Joins from a Welcome; ratchetTree when the Welcome leaves the tree out.
  join(keyPackageSecret, welcome, ratchetTree = null) {
    return this.#m.scope((s) => {
      const out = s.alloc(LAYOUT.ptr);
      s.check(
        'spk_mls_join',
        out,
        ...s.bytes(keyPackageSecret, 'secret'),
        ...s.bytes(welcome, 'welcome'),
        ...s.bytes(ratchetTree, 'ratchetTree'),
      );
      return new Group(this.#m, s.u32(out));
    });
  }

  // A group from a blob of Group.save(). Never use it next to the state it was saved from.
  restore(blob) {
    return this.#m.scope((s) => {
      const out = s.alloc(LAYOUT.ptr);
      s.check('spk_mls_restore', out, ...s.bytes(blob, 'blob'));
      return new Group(this.#m, s.u32(out));
    });
  }

  errorName(code) {
    return this.#m.cstr(this.#m.x.spk_err_name(code));
  }

  // The module's memory (for tests that check wiping, and for measurements).
  get memory() {
    return this.#m.x.memory;
  }
}

async function fetchWasm(url) {
  if (typeof process === 'object' && process.versions?.node && url.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    return readFile(url);
  }
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`spk_mls: ${url} answered ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

// Loads and instantiates the module. wasm: the module's bytes, a compiled WebAssembly.Module
// or its URL (default: web/vendor/spk_mls.wasm next to this directory).
export async function loadMls({ wasm } = {}) {
  let mod = wasm;
  if (!(mod instanceof WebAssembly.Module)) {
    const bytes =
      mod instanceof Uint8Array || mod instanceof ArrayBuffer
        ? mod
        : await fetchWasm(new URL(mod ?? '../vendor/spk_mls.wasm', import.meta.url));
    mod = await WebAssembly.compile(bytes);
  }
  // The CSPRNG: WebCrypto's getRandomValues (a global in browsers and node >= 19; node 18
  // has it in node:crypto).
  let random = globalThis.crypto;
  if (typeof random?.getRandomValues !== 'function' && typeof process === 'object') {
    random = (await import('node:crypto')).webcrypto;
  }
  if (typeof random?.getRandomValues !== 'function') {
    throw new Error('spk_mls: no crypto.getRandomValues in this environment');
  }
  const rt = new Runtime();
  const inst = await WebAssembly.instantiate(mod, hostImports(rt, random));
  rt.x = inst.exports;
  rt.x._initialize();
  const names = Object.keys(LAYOUT);
  names.forEach((k, i) => {
    const got = rt.x.spk_wasm_layout(i) >>> 0;
    if (got !== LAYOUT[k]) {
      throw new Error(`spk_mls: layout of ${k} is ${got} in the module, ${LAYOUT[k]} here`);
    }
  });
  return new Mls(rt);
}
