// C chat devices for tests: `spreekload --chat-agent` (loadtest/chat_agent.c) runs devices built
// on spk_mls in C, each with its own WebSocket connection to spreekd, and this module drives them
// with the same methods as ChatDevice (lib.mjs), so a test can mix C members and members running
// the browser's MLS library in one conversation.
//
//   const agent = await Agent.start(env.srv);
//   const c = await CDevice.open(agent, { token }, 'c-laptop');   // or { invite, name }
//   await c.sync(); await c.createGroup(conv); await c.send(conv, 'hallo');
//   await agent.close();
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ChatDevice } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DEFAULT_BIN = 'build/loadtest/spreekload';

export class Agent {
  constructor(proc) {
    this.proc = proc;
    this.nextId = 1;
    this.pending = new Map();
    this.devices = new Map();
    this.stderr = '';
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (s) => { this.stderr += s; });
    createInterface({ input: proc.stdout }).on('line', (line) => this.#onLine(line));
  }

  static async start(srv, { bin = process.env.SPREEKLOAD ?? DEFAULT_BIN } = {}) {
    const proc = spawn(bin, ['--chat-agent', '--port', String(srv.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    return new Agent(proc);
  }

  #onLine(line) {
    const m = JSON.parse(line);
    if (m.re !== undefined) {
      const p = this.pending.get(m.re);
      this.pending.delete(m.re);
      p?.resolve(m);
      return;
    }
    this.devices.get(m.dev)?.onEvent(m);
  }

  // Sends a command and resolves with its answer ({code, ...}).
  cmd(fields, timeoutMs = 15000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`agent: no answer to ${fields.cmd} within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      this.pending.set(id, { resolve: (m) => { clearTimeout(timer); resolve(m); } });
      this.proc.stdin.write(`${JSON.stringify({ id, ...fields })}\n`);
    });
  }

  // Frees every device and waits for the process; throws unless it exits cleanly.
  async close() {
    if (this.proc.exitCode === null) {
      await this.cmd({ cmd: 'quit' }).catch(() => {});
      this.proc.stdin.end();
    }
    const { code, signal } = await this.exited;
    if (code !== 0) throw new Error(`spreekload --chat-agent exited with ${code} (${signal})\n${this.stderr}`);
  }
}

export class CDevice {
  constructor(agent, name) {
    this.agent = agent;
    this.name = name;
    this.received = new Map(); // conversation -> [{ seq, sender, text }]
    this.inGroup = new Set();
    this.removed = new Set();
    this.errors = [];
    this.ended = null;
    agent.devices.set(name, this);
  }

  // Signs in ({ token } or { invite, name }), declares `device`, uploads KeyPackages.
  static async open(agent, signIn, device, { keyPackages = 3 } = {}) {
    const name = `${device}#${agent.nextId}`;
    const d = new CDevice(agent, name);
    d.device = device;
    const r = await agent.cmd({ cmd: 'open', dev: name, device, key_packages: keyPackages, ...signIn });
    if (r.code !== null) throw new Error(`open ${device}: ${r.code} ${r.why ?? ''}`);
    d.identity = r.identity;
    d.sub = r.sub;
    d.iss = r.iss;
    d.participant = r.participant;
    d.sessionToken = r.session_token; // a patient's, after redeeming an invite
    return d;
  }

  onEvent(m) {
    const conv = m.conversation;
    if (m.ev === 'message') {
      const list = this.received.get(conv) ?? [];
      list.push({ seq: m.seq, sender: m.sender, text: m.text });
      this.received.set(conv, list);
    } else if (m.ev === 'joined') {
      this.inGroup.add(conv);
      this.removed.delete(conv);
    } else if (m.ev === 'removed') {
      this.inGroup.delete(conv);
      this.removed.add(conv);
    } else if (m.ev === 'error') {
      this.errors.push(m.what);
    } else if (m.ev === 'end') {
      this.ended = m.why;
    }
  }

  async #do(cmd, fields = {}, timeoutMs) {
    return this.agent.cmd({ cmd, dev: this.name, ...fields }, timeoutMs);
  }

  async #ok(cmd, fields) {
    const r = await this.#do(cmd, fields);
    if (r.code !== null) {
      const e = new Error(`${this.device} ${cmd}: ${r.code} ${r.answer?.message ?? ''}`);
      e.code = r.code;
      throw e;
    }
    return r;
  }

  // A protocol request on this device's connection; resolves with the answer.
  async req(type, fields = {}) {
    const r = await this.#do('req', { msg: { type, ...fields } });
    return r.answer ?? { type: 'error', code: r.code };
  }

  async ok(type, fields = {}) {
    const m = await this.req(type, fields);
    if (m.type !== 'ok') throw new Error(`${type} failed: ${m.code} ${m.message}`);
    return m;
  }

  async sync(conversation) {
    const r = await this.#ok('sync', conversation ? { conversation } : {});
    await this.idle();
    return r.answer;
  }

  // Lets entries in flight arrive (the agent handles them as they come).
  async idle() {
    await sleep(30);
  }

  async createGroup(conversation) {
    const r = await this.#ok('create_group', { conversation });
    this.inGroup.add(conversation);
    return r.answer;
  }

  async addDevices(conversation, user) {
    return (await this.#ok('add_devices', { conversation, user })).answer;
  }

  async addUser(conversation, user, role, name) {
    await this.ok('chat.members.add', { conversation, user, role, name });
    return this.addDevices(conversation, user);
  }

  // Commits Removes of `remove` leaves (an UpdatePath alone when empty); re-bases on a lost race.
  async commit(conversation, { remove = [] } = {}, { retries = 5 } = {}) {
    return (await this.#ok('commit', { conversation, remove, retries })).answer;
  }

  async proposeLeave(conversation) {
    return (await this.#ok('propose_leave', { conversation })).answer;
  }

  // Encrypts and sends; resolves with the answer (ok or error), as ChatDevice.send does.
  async send(conversation, text) {
    const r = await this.#do('send', { conversation, text });
    return r.answer ?? { type: 'error', code: r.code };
  }

  // An application message for the current epoch, not sent (base64url).
  async encrypt(conversation, text) {
    return (await this.#ok('encrypt', { conversation, text })).message;
  }

  // A Commit (UpdatePath only) built on the current epoch and kept pending, not sent.
  async commitPrepare(conversation) {
    return (await this.#ok('commit_prepare', { conversation })).commit;
  }

  async commitMerge(conversation, seq) {
    await this.#ok('commit_merge', { conversation, seq });
  }

  async commitDiscard(conversation) {
    await this.#ok('commit_discard', { conversation });
  }

  async sendRaw(conversation, message) {
    return (await this.#do('send_raw', { conversation, message })).answer;
  }

  async state(conversation) {
    return this.#ok('state', { conversation });
  }

  async leavesOf(conversation, sub) {
    return (await this.#ok('leaves', { conversation, sub })).leaves;
  }

  // Offline (state kept) and back.
  async disconnect() {
    await this.#ok('disconnect');
  }

  async reconnect() {
    this.ended = null;
    await this.#ok('connect');
  }

  texts(conversation) {
    return (this.received.get(conversation) ?? []).map((m) => m.text);
  }

  until(pred, timeoutMs = 5000) {
    return ChatDevice.prototype.until.call(this, pred, timeoutMs);
  }
}
