// What ts-mls 1.6.4 gets wrong (issue 9, docs/browser-mls.md): the four tree shapes of the
// differential test, each played with ts-mls members beside spk_mls (C) members, asserting the
// failure as it is today. mls_diff.test.mjs plays the same shapes with the WebAssembly build of
// spk_mls in place of ts-mls, where every member agrees. ts-mls stays in the interop tests as an
// independent implementation; if an upgrade fixes one of these, its case here fails: then update
// docs/browser-mls.md and turn the case into an agreement check.
//
// Environment: MLS_DIFF_DRIVER (path of mls_diff_driver, required).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CMember, Driver, TsMember, tsmls, wasm, WMember } from './members.mjs';
import { World } from './world.mjs';

const driverPath = process.env.MLS_DIFF_DRIVER;
assert.ok(driverPath, 'MLS_DIFF_DRIVER must name the mls_diff_driver binary');
const mls = await tsmls();
const wasmMls = await wasm();

async function withWorld(fn) {
  const driver = new Driver(driverPath);
  const world = new World({
    c: (n) => new CMember(driver, n),
    ts: (n) => new TsMember(n),
    w: (n) => new WMember(wasmMls, n),
  });
  try {
    await fn(world);
  } finally {
    driver.close();
  }
}

// 1: one half of the tree blank, so the root is not on the committer's filtered direct path.
// ts-mls derives the commit secret one step past path_secret[n+1] (RFC 9420 §12.4.2), so its
// confirmation tag check fails and the group splits.
test('ts-mls fails 1: half-blank tree [C0, TS1, C2, TS3], C2 commits Remove(0,1)', () =>
  withWorld(async (w) => {
    const m = await w.build(['c', 'ts', 'c', 'ts']);
    await assert.rejects(
      w.commit(m[2], { remove: [m[0], m[1]] }),
      /ts3 \(ts\) failed to process the Commit of c2: Could not verify confirmation tag/,
    );
  }));

// 2: a removed member whose leaf an Add in the same Commit refills: ts-mls throws instead of
// reporting the removal.
test('ts-mls fails 2: [C0, TS1, C2], C0 commits Remove(1) + Add, refilling leaf 1', () =>
  withWorld(async (w) => {
    const m = await w.build(['c', 'ts', 'c']);
    await assert.rejects(
      w.commit(m[0], { add: ['c'], remove: [m[1]] }),
      /ts1 \(ts\) failed to process the Commit of c0: .*No overlap between provided private keys and update path/,
    );
  }));

// 3: ts-mls joiners reject a valid tree: after C2 removed C0, the parent above leaves 0..3
// lists unmerged leaves that ts-mls's check does not accept.
test('ts-mls fails 3: [C0, TS1, C2, TS3, C4], C2 removes C0, C4 adds a ts-mls member', () =>
  withWorld(async (w) => {
    const m = await w.build(['c', 'ts', 'c', 'ts', 'c']);
    await w.commit(m[2], { remove: [m[0]] });
    await assert.rejects(
      w.commit(m[4], { add: ['ts'] }),
      /ts\d+ \(ts\) failed to join: non-blank intermediate node must list leaf node in its unmerged_leaves/,
    );
    // The joiner's leaf is now in everyone's tree but nobody holds its keys.
  }));

// 4: a Commit with a GroupContextExtensions proposal must carry an UpdatePath (RFC 9420
// §12.4); ts-mls sends it without one, and both builds of spk_mls refuse it.
test('ts-mls fails 4: GroupContextExtensions Commit without the required UpdatePath', () =>
  withWorld(async (w) => {
    const [ts0, c1] = await w.build(['ts', 'c']);
    const [w2] = await w.commit(ts0, { add: ['w'] });
    const gce = { proposalType: 'group_context_extensions', groupContextExtensions: { extensions: [] } };
    const { commit } = await ts0.commit({ extraProposals: [gce] });
    const content = mls.decodeMlsMessage(commit, 0)[0].publicMessage.content;
    assert.equal(content.commit.proposals[0].proposal.proposalType, 'group_context_extensions');
    assert.equal(content.commit.path, undefined, 'ts-mls now sends an UpdatePath: update the docs');
    await assert.rejects(c1.process(commit), (err) => err.code === 'EVERIFY');
    assert.throws(() => w2.g.process(commit), { name: 'EVERIFY' });
    // Nobody moved: the group carries on in the old epoch without ts0's Commit.
    await ts0.discard();
    await w.agree();
    await w.messages();
  }));
