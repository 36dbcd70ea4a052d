// A chat device for tests: speaks docs/protocol.md §5.9 (the delivery service) with the
// browser's MLS library (web/mls/spk_mls.js, spk_mls compiled to WebAssembly) — the same code a
// patient's or GP's browser runs.
//
//   const mls = await loadMls();
//   const d = await ChatDevice.open(env, client, 'laptop', mls);   // chat.device + KeyPackages
//   await d.createGroup(conv);                                      // first member
//   await d.addUser(conv, { sub }, 'patient');                      // member + MLS Add
//   await d.send(conv, 'hallo');
//   await other.until(() => other.texts(conv).includes('hallo'));
import { loadMls } from '../../../web/mls/spk_mls.js';
import { consultWithPatient } from '../signaling/fixture.mjs';

export { loadMls };

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const unb64u = (s) => new Uint8Array(Buffer.from(s, 'base64url'));
const td = new TextDecoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class ChatDevice {
  constructor(client, mls, device, identity) {
    this.client = client;
    this.mls = mls;
    this.device = device;
    this.identity = identity;
    this.secrets = []; // KeyPackage secrets not used yet
    this.groups = new Map(); // conversation -> Group
    this.received = new Map(); // conversation -> [{ seq, sender, text }]
    this.seen = new Map(); // conversation -> highest seq handled
    this.errors = [];
    this.queue = Promise.resolve();
    this.#listen(client);
  }

  #listen(client) {
    client.ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'chat.entry') this.queue = this.queue.then(() => this.#onEntry(m));
    });
  }

  // Moves the device to another signed-in connection (another node, say), keeping its groups.
  async moveTo(client) {
    this.client = client;
    this.#listen(client);
    await client.ok('chat.device', { device: this.device });
  }

  // Declares the device on the connection and uploads `keyPackages` KeyPackages.
  static async open(client, mls, device, { keyPackages = 3, lastResort = false } = {}) {
    const r = await client.ok('chat.device', { device });
    const d = new ChatDevice(client, mls, device, r.identity);
    if (keyPackages > 0 || lastResort) await d.upload(keyPackages, lastResort);
    return d;
  }

  async upload(n, lastResort = false) {
    const kps = [];
    for (let i = 0; i < n; i++) {
      const { keyPackage, secret } = this.mls.keyPackageCreate(this.identity);
      this.secrets.push(secret);
      kps.push(b64u(keyPackage));
    }
    const fields = { key_packages: kps };
    if (lastResort) {
      const { keyPackage, secret } = this.mls.keyPackageCreate(this.identity);
      this.secrets.push(secret);
      fields.last_resort = b64u(keyPackage);
    }
    return this.client.ok('mls.key_packages.upload', fields);
  }

  // Starts live delivery and takes the backlog.
  async sync(conversation) {
    const r = await this.client.ok('chat.sync', conversation ? { conversation } : {});
    await this.idle();
    return r;
  }

  // Waits until every entry received so far is handled.
  async idle() {
    for (let i = 0; i < 3; i++) {
      await this.queue;
      await sleep(10);
    }
  }

  async createGroup(conversation) {
    const secret = this.secrets.shift();
    const g = this.mls.create(conversation, secret);
    this.groups.set(conversation, g);
    await this.client.ok('mls.group.create', { conversation, group_info: b64u(g.groupInfo()) });
    return g;
  }

  // Adds every device of a user (a member of the conversation already) to the group.
  async addDevices(conversation, user) {
    const claim = await this.client.ok('mls.key_packages.claim', { conversation, user });
    const add = claim.key_packages.map((k) => unb64u(k.key_package));
    return this.commit(conversation, { add });
  }

  // Makes the user a member (chat.members.add) and adds their devices.
  async addUser(conversation, user, role, name) {
    await this.client.ok('chat.members.add', { conversation, user, role, name });
    return this.addDevices(conversation, user);
  }

  // Commits (adds: KeyPackage bytes, remove: leaves); retries on a lost race.
  async commit(conversation, opts = {}, { retries = 5 } = {}) {
    for (let attempt = 0; ; attempt++) {
      await this.idle();
      const g = this.groups.get(conversation);
      const { commit, welcome } = g.commit(opts);
      const fields = { conversation, commit: b64u(commit) };
      if (welcome) fields.welcome = b64u(welcome);
      const r = await this.client.req('mls.commit', fields);
      if (r.type === 'ok') {
        g.commitMerge();
        this.seen.set(conversation, Math.max(this.seen.get(conversation) ?? 0, r.seq));
        return r;
      }
      g.commitDiscard();
      if (r.code !== 'mls_stale_epoch' || attempt >= retries) {
        const e = new Error(`mls.commit: ${r.code} ${r.message}`);
        e.code = r.code;
        throw e;
      }
      await sleep(50); // the winning Commit is on its way: process it, then try again
    }
  }

  // Leaves by a self-remove proposal (another member commits it).
  async proposeLeave(conversation) {
    const g = this.groups.get(conversation);
    return this.client.ok('mls.proposal', { conversation, proposal: b64u(g.leave()) });
  }

  async send(conversation, text) {
    await this.idle();
    const g = this.groups.get(conversation);
    return this.client.req('chat.send', { conversation, message: b64u(g.encrypt(text)) });
  }

  texts(conversation) {
    return (this.received.get(conversation) ?? []).map((m) => m.text);
  }

  async until(pred, timeoutMs = 5000) {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`${this.device}: condition not reached in ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async #onEntry(m) {
    const conv = m.conversation;
    if ((this.seen.get(conv) ?? 0) >= m.seq) return; // handled already (none twice)
    try {
      const data = unb64u(m.data);
      if (m.kind === 'welcome') {
        this.#join(conv, data);
      } else {
        const g = this.groups.get(conv);
        if (!g) throw new Error(`entry ${m.seq} for a group this device is not in`);
        const ev = g.process(data);
        if (ev.type === 'application') {
          const list = this.received.get(conv) ?? [];
          list.push({ seq: m.seq, sender: m.sender, text: td.decode(ev.data) });
          this.received.set(conv, list);
        } else if (ev.type === 'removed') {
          g.free();
          this.groups.delete(conv);
        }
      }
      this.seen.set(conv, m.seq);
      await this.client.ok('chat.ack', { conversation: conv, seq: m.seq });
    } catch (e) {
      this.errors.push(`${conv}#${m.seq} ${m.kind}: ${e.message}`);
    }
  }

  #join(conv, welcome) {
    for (let i = 0; i < this.secrets.length; i++) {
      try {
        const g = this.mls.join(this.secrets[i], welcome);
        this.secrets.splice(i, 1);
        this.groups.set(conv, g);
        return;
      } catch (e) {
        if (e.name !== 'ENOTFOUND') throw e;
      }
    }
    throw new Error('no KeyPackage of this device in the Welcome');
  }

  close() {
    for (const g of this.groups.values()) g.free();
    this.groups.clear();
  }
}

// A consult with an admitted patient and its chat: the GP's and the patient's devices in the group.
export async function consultChat(env, mls) {
  const gpc = await env.as(env.users.gp);
  const { consult, patient, participant, sessionToken } = await consultWithPatient(env, gpc);
  await gpc.ok('lobby.admit', { consult: consult.id, participant: participant.id });
  const { conv, gpDev: gp, ptDev: pt } = await chatBetween(mls, gpc, patient, consult.id, participant.id);
  return { gpc, gp, pt, patient, consult, participant, sessionToken, conv };
}

/** The consult's chat between a GP's connection and an admitted patient's (`patientSub`, their
 *  participant id): devices on both, the GP's makes the group and adds the patient; resolves
 *  once the patient's device has joined. */
export async function chatBetween(mls, gp, patient, consultId, patientSub) {
  const { conversation } = await gp.ok('chat.create', { kind: 'consult', consult: consultId });
  const conv = conversation.id;
  const gpDev = await ChatDevice.open(gp, mls, 'gp-laptop');
  await gpDev.sync();
  const ptDev = await ChatDevice.open(patient, mls, 'patient-phone');
  await ptDev.sync();
  await gpDev.createGroup(conv);
  await gpDev.addUser(conv, { sub: patientSub }, 'patient', 'Sanne');
  await ptDev.until(() => ptDev.groups.has(conv), 10000);
  return { conv, gpDev, ptDev };
}
