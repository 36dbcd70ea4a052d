// Interoperability of the C MLS group code (mls_interop_driver) with ts-mls, cipher suite 1.
//   A: ts-mls creates the group and adds the C member and another ts-mls member; the C member
//      joins, handles an application message, a PrivateMessage and a PublicMessage Commit, a
//      Remove proposal committed by reference, and a second message; then the C member sends,
//      commits and sends again, and ts-mls follows.
//   B: the C client creates the group and adds a ts-mls member, which joins from the Welcome
//      (ratchet tree in the GroupInfo extension) and follows a message, a Commit and a message.
// Epoch authenticators must agree at each step. ts-mls is a dependency in package.json: a
// missing ts-mls is a failure, not a skip.
// Usage: node interop.mjs <path to mls_interop_driver>
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import * as mls from 'ts-mls'

const driver = process.argv[2]
const impl = await mls.getCiphersuiteImpl(
  mls.getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'))
const te = new TextEncoder()
const td = new TextDecoder()
const hex = (b) => Buffer.from(b).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s.trim(), 'hex'))
const encode = (m) => hex(mls.encodeMlsMessage(m))
const priv = (pm) => encode({ privateMessage: pm, wireformat: 'mls_private_message', version: 'mls10' })
const run = (...args) => execFileSync(driver, args).toString()
const field = (out, tag) => new RegExp(`^${tag} ([0-9a-f]+)$`, 'm').exec(out)?.[1]

function member (name) {
  return mls.generateKeyPackage({ credentialType: 'basic', identity: te.encode(name) },
    mls.defaultCapabilities(), mls.defaultLifetime, [], impl)
}

async function receive (st, dir, file, wantText) {
  const m = mls.decodeMlsMessage(unhex(readFileSync(join(dir, file), 'utf8')), 0)[0]
  const r = await mls.processMessage(m, st, mls.emptyPskIndex, mls.acceptAll, impl)
  if (wantText !== undefined) {
    assert.equal(r.kind, 'applicationMessage')
    assert.equal(td.decode(r.message), wantText)
  }
  return r.newState
}

async function tsCreatorCJoins (dir) {
  run('kp', dir)
  const alice = await member('alice')
  const bob = await member('bob')
  let st = await mls.createGroup(te.encode('ts-group'), alice.publicPackage, alice.privatePackage, [], impl)
  const ckp = mls.decodeMlsMessage(unhex(readFileSync(join(dir, 'c_kp.hex'), 'utf8')), 0)[0].keyPackage
  let r = await mls.createCommit({ state: st, cipherSuite: impl }, {
    extraProposals: [{ proposalType: 'add', add: { keyPackage: ckp } },
      { proposalType: 'add', add: { keyPackage: bob.publicPackage } }],
    ratchetTreeExtension: true
  })
  st = r.newState
  writeFileSync(join(dir, 'welcome.hex'), encode({ welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' }))
  const msgs = []
  let a = await mls.createApplicationMessage(st, te.encode('hello from ts-mls'), impl)
  st = a.newState
  msgs.push(priv(a.privateMessage))
  r = await mls.createCommit({ state: st, cipherSuite: impl }, {})
  st = r.newState
  msgs.push(encode(r.commit))
  r = await mls.createCommit({ state: st, cipherSuite: impl }, { wireAsPublicMessage: true })
  st = r.newState
  msgs.push(encode(r.commit))
  // Remove bob through a PrivateMessage proposal, committed by reference.
  const pr = await mls.createProposal(st, false, { proposalType: 'remove', remove: { removed: 2 } }, impl)
  st = pr.newState
  msgs.push(encode(pr.message))
  r = await mls.createCommit({ state: st, cipherSuite: impl }, {})
  st = r.newState
  msgs.push(encode(r.commit))
  a = await mls.createApplicationMessage(st, te.encode('second from ts-mls'), impl)
  st = a.newState
  msgs.push(priv(a.privateMessage))
  writeFileSync(join(dir, 'msgs.txt'), msgs.join('\n') + '\n')

  const out = run('join', dir)
  assert.match(out, /^APP hello from ts-mls$/m)
  assert.match(out, /^APP second from ts-mls$/m)
  assert.equal(field(out, 'AUTH'), hex(st.keySchedule.epochAuthenticator))
  st = await receive(st, dir, 'c_app.hex', 'hello from C')
  st = await receive(st, dir, 'c_commit.hex')
  assert.equal(field(out, 'AUTH2'), hex(st.keySchedule.epochAuthenticator))
  await receive(st, dir, 'c_app2.hex', 'second from C')
}

async function cCreatorTsJoins (dir) {
  const bob = await member('bob')
  writeFileSync(join(dir, 'ts_kp.hex'), encode({ keyPackage: bob.publicPackage, wireformat: 'mls_key_package', version: 'mls10' }))
  const out = run('create', dir)
  const welcome = mls.decodeMlsMessage(unhex(readFileSync(join(dir, 'c_welcome.hex'), 'utf8')), 0)[0]
  let st = await mls.joinGroup(welcome.welcome, bob.publicPackage, bob.privatePackage, mls.emptyPskIndex, impl)
  st = await receive(st, dir, 'c_app.hex', 'welcome from C')
  st = await receive(st, dir, 'c_commit.hex')
  st = await receive(st, dir, 'c_app2.hex', 'after update')
  assert.equal(field(out, 'AUTH'), hex(st.keySchedule.epochAuthenticator))
}

for (const [name, fn] of [['ts-mls creates, C joins', tsCreatorCJoins], ['C creates, ts-mls joins', cCreatorTsJoins]]) {
  const dir = mkdtempSync(join(tmpdir(), 'spk-mls-interop-'))
  try {
    await fn(dir)
    console.log(`ok: ${name}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
