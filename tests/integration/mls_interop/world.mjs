// A group of members of mixed implementations (members.mjs) that the differential tests drive
// step by step. After every step every live member must agree on the epoch, the epoch
// authenticator, an exporter secret and the member list (leaf and identity), and that list must
// be the one the test expects; application messages must decrypt everywhere.
import assert from 'node:assert/strict';

import { CMember, hex, WMember } from './members.mjs';

const LABEL = 'spreekkamer-diff'; // one word: the driver's commands are split at spaces
const te = new TextEncoder();

export class World {
  // make: { c: (name) => member, w: ..., ts: ... }
  constructor(make, { log = () => {} } = {}) {
    this.make = make;
    this.log = log;
    this.live = []; // members, each with .leaf
    this.count = 0;
    this.epoch = 0n;
    this.msgs = 0;
  }

  fresh(kind) {
    const m = this.make[kind](`${kind}${this.count++}`);
    return m;
  }

  byLeaf(leaf) {
    return this.live.find((m) => m.leaf === leaf);
  }

  describe() {
    return '[' + [...this.live].sort((a, b) => a.leaf - b.leaf).map((m) => `${m.name}@${m.leaf}`).join(', ') + ']';
  }

  async create(kind, groupId = 'diff-group') {
    const m = this.fresh(kind);
    await m.keyPackage();
    await m.create(groupId);
    m.leaf = 0;
    this.live = [m];
    this.epoch = 0n;
    await this.agree();
    return m;
  }

  // One Commit by `by` that adds members of the given kinds and removes the given members.
  // Returns the new members.
  async commit(by, { add = [], remove = [], priv = false } = {}) {
    const joiners = add.map((k) => this.fresh(k));
    const kps = [];
    for (const j of joiners) kps.push(await j.keyPackage());
    const what =
      `${by.name} commits` +
      (joiners.length ? ` add(${joiners.map((j) => j.name)})` : '') +
      (remove.length ? ` remove(${remove.map((m) => `${m.name}@${m.leaf}`)})` : '') +
      (priv ? ' private' : '');
    this.log(`${what} in ${this.describe()}`);
    const { commit, welcome } = await by.commit({ add: kps, remove: remove.map((m) => m.leaf), priv });
    await by.merge();
    await this.deliver(by, commit, remove);
    await this.welcome(joiners, welcome);
    return joiners;
  }

  // Every other live member processes commit; the removed ones must see their removal.
  async deliver(by, commit, removed) {
    for (const m of this.live) {
      if (m === by) continue;
      const gone = removed.includes(m);
      let ev;
      try {
        ev = await m.process(commit);
      } catch (err) {
        throw new Error(`${m.name} (${m.kind}) failed to process the Commit of ${by.name}: ${err.message}`);
      }
      assert.equal(ev.type, gone ? 'removed' : 'commit', `${m.name} processing the Commit of ${by.name}`);
    }
    this.live = this.live.filter((m) => !removed.includes(m));
    for (const m of removed) await m.free();
    this.epoch++;
  }

  async welcome(joiners, welcome) {
    if (joiners.length) assert.ok(welcome, 'a Commit with Adds came without a Welcome');
    for (const j of joiners) {
      try {
        await j.join(welcome);
      } catch (err) {
        throw new Error(`${j.name} (${j.kind}) failed to join: ${err.message}`);
      }
      j.leaf = (await j.info(LABEL)).leaf;
      this.live.push(j);
    }
    await this.agree();
  }

  // A proposal by `from`, processed by everyone else, then committed by `by`.
  async propose(from, by, kind, arg) {
    let joiner = null;
    let msg;
    if (kind === 'add') {
      joiner = this.fresh(arg);
      msg = await from.proposeAdd(await joiner.keyPackage());
    } else if (kind === 'remove') {
      msg = await from.proposeRemove(arg.leaf);
    } else {
      msg = await from.proposeUpdate();
    }
    this.log(`${from.name} proposes ${kind}${joiner ? ` ${joiner.name}` : arg ? ` ${arg.name}@${arg.leaf}` : ''}, ${by.name} commits, in ${this.describe()}`);
    for (const m of this.live) {
      if (m === from) continue;
      const ev = await m.process(msg);
      assert.equal(ev.type, 'proposal', `${m.name} processing a proposal of ${from.name}`);
    }
    const { commit, welcome } = await by.commit({});
    await by.merge();
    await this.deliver(by, commit, kind === 'remove' ? [arg] : []);
    await this.welcome(joiner ? [joiner] : [], welcome);
  }

  // Every live member agrees with every other and with the expected member list.
  async agree() {
    const want = [...this.live]
      .sort((a, b) => a.leaf - b.leaf)
      .map((m) => `${m.leaf}:${hex(te.encode(m.name))}`)
      .join(',');
    let first = null;
    for (const m of this.live) {
      const i = await m.info(LABEL);
      assert.equal(i.leaf, m.leaf, `${m.name}: own leaf`);
      assert.equal(i.epoch, this.epoch, `${m.name}: epoch`);
      assert.equal(i.members, want, `${m.name}: member list`);
      if (first === null) {
        first = { ...i, name: m.name };
        continue;
      }
      assert.equal(i.auth, first.auth, `epoch authenticator of ${m.name} and ${first.name}`);
      assert.equal(i.exporter, first.exporter, `exporter secret of ${m.name} and ${first.name}`);
    }
  }

  // `from` sends a message; every other live member decrypts it.
  async message(from) {
    const text = `bericht ${this.msgs++} van ${from.name}`;
    const msg = await from.send(text);
    for (const m of this.live) {
      if (m === from) continue;
      const ev = await m.process(msg);
      assert.deepEqual(ev, { type: 'application', text }, `${m.name} decrypting a message of ${from.name}`);
    }
  }

  // A message from a member of each kind present (both directions across implementations).
  async messages(rand = Math.random) {
    for (const kind of new Set(this.live.map((m) => m.kind))) {
      const of = this.live.filter((m) => m.kind === kind);
      await this.message(of[Math.floor(rand() * of.length)]);
    }
  }

  // A group whose members sit at the given leaves with the given kinds, e.g. ['c','w','c','w'].
  async build(kinds) {
    const creator = await this.create(kinds[0]);
    if (kinds.length > 1) await this.commit(creator, { add: kinds.slice(1) });
    return [...this.live].sort((a, b) => a.leaf - b.leaf);
  }
}

export function makers(driver, mls) {
  return {
    c: (name) => new CMember(driver, name),
    w: (name) => new WMember(mls, name),
  };
}

// Deterministic PRNG (mulberry32) for seeded runs.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
