// Group members of three MLS implementations behind one interface, for the differential tests:
//   'c'  spk_mls natively, through mls_diff_driver (one process holds every C member);
//   'w'  spk_mls compiled to WebAssembly (web/mls/spk_mls.js), in this node process;
//   'ts' ts-mls, the independent implementation of the older interop tests.
// Every message crosses as standard MLSMessage bytes. All methods are async.
//   keyPackage()                 fresh KeyPackage (bytes); the member keeps its secret
//   create(groupId) / join(welcome)
//   commit({ add, remove, priv }) -> { commit, welcome }   (then merge())
//   proposeUpdate() / proposeRemove(leaf) / proposeAdd(kp) -> message
//   send(text) -> message;  process(message) -> { type, text }
//   info(label) -> { epoch, leaf, auth, exporter, members }  (hex strings; members 'leaf:id,...')
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { loadMls } from '../../../web/mls/spk_mls.js';

const te = new TextEncoder();
const td = new TextDecoder();
export const hex = (b) => Buffer.from(b).toString('hex');
export const unhex = (s) => new Uint8Array(Buffer.from(s === '-' ? '' : s, 'hex'));

// The C driver process: one command line in, one reply line out, in order.
export class Driver {
  constructor(path) {
    this.proc = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.waiting = [];
    this.exited = null;
    createInterface({ input: this.proc.stdout }).on('line', (l) => this.waiting.shift()?.resolve(l));
    this.proc.on('exit', (code, sig) => {
      this.exited = `mls_diff_driver exited (${code ?? sig})`;
      for (const w of this.waiting.splice(0)) w.reject(new Error(this.exited));
    });
    this.next = 0;
  }

  // Sends one command; resolves to the words after "OK", rejects with "ERR name".
  async cmd(...words) {
    if (this.exited) throw new Error(this.exited);
    const p = new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.proc.stdin.write(words.join(' ') + '\n');
    const line = await p;
    const [status, ...rest] = line.split(' ');
    if (status !== 'OK') {
      const err = new Error(`C ${words[0]}: ${line}`);
      err.code = rest[0];
      throw err;
    }
    return rest;
  }

  slot() {
    return this.next++;
  }

  close() {
    this.proc.stdin.end();
  }
}

export class CMember {
  constructor(driver, name) {
    this.kind = 'c';
    this.name = name;
    this.d = driver;
    this.id = driver.slot();
  }

  async keyPackage() {
    return unhex((await this.d.cmd('kp', this.id, this.name))[0]);
  }

  async create(groupId) {
    await this.d.cmd('create', this.id, hex(te.encode(groupId)));
  }

  async join(welcome) {
    await this.d.cmd('join', this.id, hex(welcome));
  }

  async commit({ add = [], remove = [], priv = false } = {}) {
    const adds = add.length ? add.map(hex).join(',') : '-';
    const rems = remove.length ? remove.join(',') : '-';
    const [c, w] = await this.d.cmd('commit', this.id, priv ? 1 : 0, adds, rems);
    return { commit: unhex(c), welcome: w === '-' ? null : unhex(w) };
  }

  async merge() {
    await this.d.cmd('merge', this.id);
  }

  async discard() {
    await this.d.cmd('discard', this.id);
  }

  async proposeUpdate() {
    return unhex((await this.d.cmd('propose', this.id, 'update'))[0]);
  }

  async proposeRemove(leaf) {
    return unhex((await this.d.cmd('propose', this.id, 'remove', leaf))[0]);
  }

  async proposeAdd(kp) {
    return unhex((await this.d.cmd('propose', this.id, 'add', hex(kp)))[0]);
  }

  async send(text) {
    return unhex((await this.d.cmd('send', this.id, hex(te.encode(text))))[0]);
  }

  async process(msg) {
    const [type, data] = await this.d.cmd('process', this.id, hex(msg));
    return type === 'application' ? { type, text: td.decode(unhex(data)) } : { type };
  }

  async info(label) {
    const [epoch, leaf, auth, exporter, members] = await this.d.cmd('info', this.id, label);
    return { epoch: BigInt(epoch), leaf: Number(leaf), auth, exporter, members: members ?? '' };
  }

  async cycle() {
    await this.d.cmd('cycle', this.id);
  }

  async free() {
    await this.d.cmd('free', this.id);
  }
}

let wasmMls = null;
export async function wasm() {
  wasmMls ??= await loadMls();
  return wasmMls;
}

export class WMember {
  constructor(mls, name) {
    this.kind = 'w';
    this.name = name;
    this.mls = mls;
    this.g = null;
    this.secret = null;
  }

  async keyPackage() {
    const { keyPackage, secret } = this.mls.keyPackageCreate(this.name);
    this.secret = secret;
    return keyPackage;
  }

  async create(groupId) {
    this.g = this.mls.create(groupId, this.secret);
  }

  async join(welcome) {
    this.g = this.mls.join(this.secret, welcome);
  }

  async commit({ add = [], remove = [], priv = false } = {}) {
    return this.g.commit({ add, remove, private: priv });
  }

  async merge() {
    this.g.commitMerge();
  }

  async discard() {
    this.g.commitDiscard();
  }

  async proposeUpdate() {
    return this.g.proposeUpdate();
  }

  async proposeRemove(leaf) {
    return this.g.proposeRemove(leaf);
  }

  async proposeAdd(kp) {
    return this.g.proposeAdd(kp);
  }

  async send(text) {
    return this.g.encrypt(text);
  }

  async process(msg) {
    const ev = this.g.process(msg);
    return ev.type === 'application' ? { type: ev.type, text: td.decode(ev.data) } : ev;
  }

  async info(label) {
    return {
      epoch: this.g.epoch,
      leaf: this.g.ownLeaf,
      auth: hex(this.g.epochAuthenticator()),
      exporter: hex(this.g.exportSecret(label, new Uint8Array(0), 32)),
      members: this.g
        .members()
        .map((m) => `${m.leaf}:${hex(m.identity)}`)
        .join(','),
    };
  }

  async cycle() {
    const blob = this.g.save();
    this.g.free();
    this.g = this.mls.restore(blob);
    blob.fill(0);
  }

  async free() {
    this.g?.free();
    this.secret?.fill(0);
  }
}

// ts-mls 1.6.4 with its default crypto provider, as in the older interop tests.
let tsImpl = null;
let tsMls = null;
export async function tsmls() {
  if (!tsMls) {
    tsMls = await import('ts-mls');
    tsImpl = await tsMls.getCiphersuiteImpl(
      tsMls.getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'),
    );
  }
  return tsMls;
}

export class TsMember {
  constructor(name) {
    this.kind = 'ts';
    this.name = name;
    this.st = null;
    this.pending = null;
  }

  #wrap(msg) {
    return tsMls.encodeMlsMessage(msg);
  }

  #unwrap(bytes) {
    return tsMls.decodeMlsMessage(bytes, 0)[0];
  }

  async keyPackage() {
    const mls = await tsmls();
    this.kp = await mls.generateKeyPackage(
      { credentialType: 'basic', identity: te.encode(this.name) },
      mls.defaultCapabilities(),
      mls.defaultLifetime,
      [],
      tsImpl,
    );
    return this.#wrap({ keyPackage: this.kp.publicPackage, wireformat: 'mls_key_package', version: 'mls10' });
  }

  async create(groupId) {
    this.st = await tsMls.createGroup(te.encode(groupId), this.kp.publicPackage, this.kp.privatePackage, [], tsImpl);
  }

  async join(welcome) {
    const w = this.#unwrap(welcome).welcome;
    this.st = await tsMls.joinGroup(w, this.kp.publicPackage, this.kp.privatePackage, tsMls.emptyPskIndex, tsImpl);
  }

  async commit({ add = [], remove = [], priv = false, extraProposals = [] } = {}) {
    const proposals = [
      ...add.map((kp) => ({ proposalType: 'add', add: { keyPackage: this.#unwrap(kp).keyPackage } })),
      ...remove.map((leaf) => ({ proposalType: 'remove', remove: { removed: leaf } })),
      ...extraProposals,
    ];
    const r = await tsMls.createCommit(
      { state: this.st, cipherSuite: tsImpl },
      { extraProposals: proposals, ratchetTreeExtension: true, wireAsPublicMessage: !priv },
    );
    this.pending = r.newState;
    const welcome = r.welcome ? this.#wrap({ welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' }) : null;
    return { commit: this.#wrap(r.commit), welcome };
  }

  async merge() {
    this.st = this.pending;
    this.pending = null;
  }

  async discard() {
    this.pending = null;
  }

  async proposeRemove(leaf) {
    const r = await tsMls.createProposal(this.st, true, { proposalType: 'remove', remove: { removed: leaf } }, tsImpl);
    this.st = r.newState;
    return this.#wrap(r.message);
  }

  async send(text) {
    const r = await tsMls.createApplicationMessage(this.st, te.encode(text), tsImpl);
    this.st = r.newState;
    return this.#wrap({ privateMessage: r.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
  }

  async process(msg) {
    const before = this.st.groupContext.epoch;
    const r = await tsMls.processMessage(this.#unwrap(msg), this.st, tsMls.emptyPskIndex, tsMls.acceptAll, tsImpl);
    this.st = r.newState;
    if (r.kind === 'applicationMessage') return { type: 'application', text: td.decode(r.message) };
    if (this.st.groupActiveState?.kind === 'removedFromGroup') return { type: 'removed' };
    return { type: this.st.groupContext.epoch !== before ? 'commit' : 'proposal' };
  }

  async info(label) {
    const st = this.st;
    const exp = await tsMls.mlsExporter(st.keySchedule.exporterSecret, label, new Uint8Array(0), 32, tsImpl);
    const members = [];
    for (let i = 0; i < st.ratchetTree.length; i += 2) {
      const n = st.ratchetTree[i];
      if (n?.nodeType === 'leaf') members.push(`${i / 2}:${hex(n.leaf.credential.identity)}`);
    }
    return {
      epoch: st.groupContext.epoch,
      leaf: st.privatePath.leafIndex,
      auth: hex(st.keySchedule.epochAuthenticator),
      exporter: hex(exp),
      members: members.join(','),
    };
  }

  async cycle() {}

  async free() {
    this.st = null;
  }
}
