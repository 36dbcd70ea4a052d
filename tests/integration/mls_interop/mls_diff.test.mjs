// Differential test of spk_mls native (C, through mls_diff_driver) against spk_mls compiled to
// WebAssembly (web/mls/spk_mls.js, the browser's MLS) in mixed groups: the tree shapes that
// broke ts-mls 1.6.4 (issue 9, docs/browser-mls.md) as named cases (shape 4 with a ts-mls member
// sending the GroupContextExtensions Commits, which spk_mls does not send), then random adds, removes,
// updates and proposals in groups of up to 24 members. After every step every member agrees on
// epoch, epoch authenticator, exporter secret and member list, and application messages from
// both implementations decrypt everywhere.
//
// Environment: MLS_DIFF_DRIVER (path of mls_diff_driver, required); SPK_MLS_DIFF_SEED (the
// seed of the random part; default: a new one per run, printed); SPK_MLS_DIFF_STEPS (200);
// SPK_MLS_DIFF_MAX (24 members); SPK_MLS_DIFF_VERBOSE=1 prints every step.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Driver, TsMember, tsmls, wasm } from './members.mjs';
import { makers, prng, World } from './world.mjs';

const driverPath = process.env.MLS_DIFF_DRIVER;
assert.ok(driverPath, 'MLS_DIFF_DRIVER must name the mls_diff_driver binary');
const verbose = process.env.SPK_MLS_DIFF_VERBOSE === '1';
const tsMls = await tsmls();

async function withWorld(fn) {
  const driver = new Driver(driverPath);
  const steps = [];
  const world = new World({ ...makers(driver, await wasm()), ts: (n) => new TsMember(n) }, {
    log: (s) => {
      steps.push(s);
      if (verbose) console.log(`  ${s}`);
    },
  });
  try {
    await fn(world);
  } catch (err) {
    err.message += `\nsteps:\n  ${steps.join('\n  ')}`;
    throw err;
  } finally {
    driver.close();
  }
}

const swap = (kinds) => kinds.map((k) => (k === 'c' ? 'w' : 'c'));

// Issue 9, shape 1: one half of the tree blank, so the root is not on the committer's filtered
// direct path; the commit secret is path_secret[n+1] of the last filtered node (RFC 9420
// §12.4.2). ts-mls derived one step further and the group split ([C0, TS1, C2, TS3], C2
// commits Remove(0,1): TS3 failed the confirmation tag).
for (const kinds of [['c', 'w', 'c', 'w'], ['w', 'c', 'w', 'c']]) {
  test(`half-blank tree: ${kinds.join('')}, leaf 2 removes leaves 0 and 1`, () =>
    withWorld(async (w) => {
      const m = await w.build(kinds);
      await w.commit(m[2], { remove: [m[0], m[1]] });
      await w.messages();
      // Both halves again, then a commit from the other side of the tree.
      await w.commit(m[3], { add: ['c', 'w'] });
      await w.commit(m[3], { remove: [m[2]] });
      await w.messages();
    }));
}

// Issue 9, shape 2: a removed member whose leaf an Add in the same Commit refills must see its
// removal (ts-mls threw instead).
for (const kinds of [['c', 'w', 'c'], ['w', 'c', 'w']]) {
  test(`removed leaf refilled in the same Commit: ${kinds.join('')}`, () =>
    withWorld(async (w) => {
      const m = await w.build(kinds);
      const [j] = await w.commit(m[0], { add: [kinds[1]], remove: [m[1]] });
      assert.equal(j.leaf, 1, 'the joiner takes the removed leaf');
      await w.messages();
      const [k] = await w.commit(m[2], { add: [kinds[0]], remove: [m[0]], priv: true });
      assert.equal(k.leaf, 0);
      await w.messages();
    }));
}

// Issue 9, shape 3: a joiner must accept a valid tree with unmerged leaves below a parent
// whose own leaf was removed ([C0, TS1, C2, TS3, C4], C2 removes C0, C4 adds a ts-mls member,
// whose join failed: its unmerged-leaves check was too strict).
for (const kinds of [['c', 'w', 'c', 'w', 'c'], ['w', 'c', 'w', 'c', 'w']]) {
  test(`joiner and unmerged leaves: ${kinds.join('')}, leaf 2 removes 0, leaf 4 adds`, () =>
    withWorld(async (w) => {
      const m = await w.build(kinds);
      await w.commit(m[2], { remove: [m[0]] });
      await w.commit(m[4], { add: swap([kinds[4]]) });
      await w.commit(m[4], { add: [kinds[4]] });
      await w.messages();
    }));
}

// Issue 9, shape 4: GroupContextExtensions Commits. The public API of spk_mls sends no
// GroupContextExtensions proposal, so a ts-mls member sends them here, in groups with C and
// wasm members. Without the UpdatePath that RFC 9420 §12.4 requires (what ts-mls 1.6.4 sends on
// its own) both builds refuse it and the group carries on in its epoch; with one (ts-mls adds a
// path when the Commit also removes a member) both builds accept it and agree with each other and
// with the committer on the new epoch, then commit and message on from there.
const gce = { proposalType: 'group_context_extensions', groupContextExtensions: { extensions: [] } };
for (const kinds of [['ts', 'c', 'w', 'c'], ['ts', 'w', 'c', 'w']]) {
  test(`GroupContextExtensions Commits: ${kinds.join('')}, without and with an UpdatePath`, () =>
    withWorld(async (w) => {
      const m = await w.build(kinds);
      const ts = m[0];
      const { commit: bad } = await ts.commit({ extraProposals: [gce] });
      const content = (c) => tsMls.decodeMlsMessage(c, 0)[0].publicMessage.content.commit;
      assert.equal(content(bad).path, undefined, 'ts-mls now sends an UpdatePath here: update the docs');
      for (const x of m.slice(1)) {
        await assert.rejects(async () => x.process(bad), (err) => err.code === 'EVERIFY' || err.name === 'EVERIFY', `${x.name} (${x.kind})`);
      }
      await ts.discard();
      await w.agree();
      await w.messages();

      const { commit: good } = await ts.commit({ remove: [m[3].leaf], extraProposals: [gce] });
      assert.ok(content(good).path, 'a Commit with a Remove carries an UpdatePath');
      assert.ok(content(good).proposals.some((p) => p.proposal?.proposalType === 'group_context_extensions'));
      await ts.merge();
      await w.deliver(ts, good, [m[3]]);
      await w.agree();
      await w.messages();
      await w.commit(m[1], { add: [kinds[2]] });
      await w.commit(m[2], { remove: [ts] });
      await w.messages();
    }));
}

// Proposals by one member committed by another, including own Updates across implementations.
test('proposals across implementations', () =>
  withWorld(async (w) => {
    const m = await w.build(['c', 'w', 'c', 'w']);
    await w.propose(m[1], m[0], 'update');
    await w.propose(m[0], m[1], 'update');
    await w.propose(m[1], m[2], 'add', 'w');
    await w.propose(m[2], m[3], 'add', 'c');
    await w.propose(m[3], m[0], 'remove', m[2]);
    await w.propose(m[0], m[3], 'remove', m[1]);
    await w.messages();
  }));

// Random steps, seeded.
const seed = Number(process.env.SPK_MLS_DIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));
const steps = Number(process.env.SPK_MLS_DIFF_STEPS ?? 200);
const max = Number(process.env.SPK_MLS_DIFF_MAX ?? 24);
console.log(`mls_diff: seed ${seed} (rerun with SPK_MLS_DIFF_SEED=${seed}), ${steps} steps, up to ${max} members`);

test(`random adds, removes, updates and proposals (seed ${seed})`, () =>
  withWorld(async (w) => {
    const rand = prng(seed);
    const pick = (list) => list[Math.floor(rand() * list.length)];
    const kind = () => (rand() < 0.5 ? 'c' : 'w');
    const some = (list, n) => {
      const pool = [...list];
      const out = [];
      while (out.length < n && pool.length) out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]);
      return out;
    };
    await w.create(kind());
    let peak = 1;
    for (let s = 0; s < steps; s++) {
      const n = w.live.length;
      const by = pick(w.live);
      const others = w.live.filter((m) => m !== by);
      const priv = rand() < 0.3;
      const r = rand();
      if (n < 3 || (r < 0.3 && n < max)) {
        const k = 1 + Math.floor(rand() * Math.min(4, max - n));
        await w.commit(by, { add: Array.from({ length: k }, kind), priv });
      } else if (r < 0.5 || n >= max) {
        await w.commit(by, { remove: some(others, 1 + Math.floor(rand() * Math.min(3, n - 2))), priv });
      } else if (r < 0.65) {
        // Removes and Adds in one Commit: the Adds refill the removed leaves.
        const gone = some(others, 1 + Math.floor(rand() * Math.min(2, n - 2)));
        const k = 1 + Math.floor(rand() * Math.min(3, max - n + gone.length));
        await w.commit(by, { add: Array.from({ length: k }, kind), remove: gone, priv });
      } else if (r < 0.8) {
        await w.commit(by, { priv }); // an UpdatePath only
      } else {
        const from = pick(others);
        const rest = w.live.filter((m) => m !== from && m !== by);
        const p = rand();
        if (p < 0.4) await w.propose(from, by, 'update');
        else if (p < 0.7 && n < max) await w.propose(from, by, 'add', kind());
        else if (rest.length) await w.propose(from, by, 'remove', pick(rest));
        else await w.propose(from, by, 'update');
      }
      peak = Math.max(peak, w.live.length);
      if (rand() < 0.2) {
        const m = pick(w.live);
        await m.cycle(); // save and restore: the state blob carries everything
      }
      await w.messages(rand);
    }
    console.log(`mls_diff: ${steps} steps, peak ${peak} members, final ${w.describe()}`);
    assert.ok(peak >= Math.min(max, 12), `the random walk reached only ${peak} members`);
  }));
