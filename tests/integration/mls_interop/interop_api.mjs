// Interoperability of the public C MLS API (spk/mls.h, through mls_api_driver) with ts-mls,
// cipher suite 1. Every message crosses as standard MLSMessage bytes; the C members' state is
// saved and restored between every step.
//   A: C creates the group and adds two ts-mls members through KeyPackage, Commit and Welcome
//      (the second Commit as PrivateMessage); application messages both ways; exporter secrets
//      and epoch authenticators agree; C removes a ts-mls member, who then fails to decrypt.
//   B: ts-mls creates the group and adds a C member and a ts-mls member; messages both ways;
//      Commits both ways; exporter secrets agree; ts-mls removes the C member, whose decrypt of
//      the next message then fails.
// ts-mls is a dependency in package.json: a missing ts-mls is a failure, not a skip.
// Usage: node interop_api.mjs <path to mls_api_driver>
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
const LABEL = 'spreekkamer interop'
const hex = (b) => Buffer.from(b).toString('hex')
const unhex = (s) => new Uint8Array(Buffer.from(s.trim(), 'hex'))

let dir
const c = (...args) => execFileSync(driver, [args[0], dir, ...args.slice(1)]).toString()
const field = (out, tag) => new RegExp(`^${tag} (\\S+)$`, 'm').exec(out)?.[1]
const put = (file, msg) => writeFileSync(join(dir, file), hex(mls.encodeMlsMessage(msg)) + '\n')
const get = (file) => mls.decodeMlsMessage(unhex(readFileSync(join(dir, file), 'utf8')), 0)[0]
const privMsg = (pm) => ({ privateMessage: pm, wireformat: 'mls_private_message', version: 'mls10' })

function member (name) {
  return mls.generateKeyPackage({ credentialType: 'basic', identity: te.encode(name) },
    mls.defaultCapabilities(), mls.defaultLifetime, [], impl)
}

async function recv (st, file, wantText) {
  const r = await mls.processMessage(get(file), st, mls.emptyPskIndex, mls.acceptAll, impl)
  if (wantText !== undefined) {
    assert.equal(r.kind, 'applicationMessage')
    assert.equal(td.decode(r.message), wantText)
  }
  return r.newState
}

async function send (st, file, text) {
  const a = await mls.createApplicationMessage(st, te.encode(text), impl)
  put(file, privMsg(a.privateMessage))
  return a.newState
}

// Exporter output and epoch authenticator of the C member equal those of every ts-mls state.
async function agree (cName, states) {
  const info = c('info', cName, LABEL)
  for (const st of states) {
    const exp = await mls.mlsExporter(st.keySchedule.exporterSecret, LABEL, new Uint8Array(0), 32, impl)
    assert.equal(field(info, 'EXPORT'), hex(exp))
    assert.equal(field(info, 'AUTH'), hex(st.keySchedule.epochAuthenticator))
    assert.equal(field(info, 'EPOCH'), String(st.groupContext.epoch))
  }
}

async function cCreates () {
  c('create', 'alice', 'api-c-group')
  const bob = await member('bob')
  const carol = await member('carol')
  put('bob.kp', { keyPackage: bob.publicPackage, wireformat: 'mls_key_package', version: 'mls10' })
  put('carol.kp', { keyPackage: carol.publicPackage, wireformat: 'mls_key_package', version: 'mls10' })
  c('add', 'alice', 'bob.kp')
  let b = await mls.joinGroup(get('welcome').welcome, bob.publicPackage, bob.privatePackage, mls.emptyPskIndex, impl)
  c('add', 'alice', 'carol.kp', 'private')
  assert.equal(get('commit').wireformat, 'mls_private_message')
  b = await recv(b, 'commit')
  let k = await mls.joinGroup(get('welcome').welcome, carol.publicPackage, carol.privatePackage, mls.emptyPskIndex, impl)
  await agree('alice', [b, k])

  c('send', 'alice', 'm1', 'hallo van C')
  b = await recv(b, 'm1', 'hallo van C')
  k = await recv(k, 'm1', 'hallo van C')
  b = await send(b, 'm2', 'hallo van bob')
  assert.match(c('recv', 'alice', 'm2'), /^APP hallo van bob$/m)
  k = await recv(k, 'm2', 'hallo van bob')

  // Remove carol (leaf 2); she cannot read what follows.
  c('remove', 'alice', '2')
  b = await recv(b, 'commit')
  await agree('alice', [b])
  c('send', 'alice', 'm3', 'zonder carol')
  b = await recv(b, 'm3', 'zonder carol')
  await assert.rejects(recv(k, 'm3'), 'the removed member decrypted a post-removal message')
  b = await send(b, 'm4', 'bob na carol')
  assert.match(c('recv', 'alice', 'm4'), /^APP bob na carol$/m)
  await agree('alice', [b])
}

async function tsCreates () {
  c('kp', 'dave')
  const alice = await member('alice')
  const erin = await member('erin')
  let a = await mls.createGroup(te.encode('api-ts-group'), alice.publicPackage, alice.privatePackage, [], impl)
  const daveKp = get('dave.kp').keyPackage
  let r = await mls.createCommit({ state: a, cipherSuite: impl }, {
    extraProposals: [{ proposalType: 'add', add: { keyPackage: daveKp } },
      { proposalType: 'add', add: { keyPackage: erin.publicPackage } }],
    ratchetTreeExtension: true
  })
  a = r.newState
  put('welcome', { welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' })
  c('join', 'dave', 'welcome')
  let e = await mls.joinGroup(r.welcome, erin.publicPackage, erin.privatePackage, mls.emptyPskIndex, impl)
  assert.equal(field(c('info', 'dave', LABEL), 'LEAF'), '1')
  await agree('dave', [a, e])

  a = await send(a, 'm1', 'hallo van ts-mls')
  assert.match(c('recv', 'dave', 'm1'), /^APP hallo van ts-mls$/m)
  e = await recv(e, 'm1', 'hallo van ts-mls')
  c('send', 'dave', 'm2', 'hallo van C')
  a = await recv(a, 'm2', 'hallo van C')
  e = await recv(e, 'm2', 'hallo van C')

  // Commits both ways: ts-mls (PrivateMessage by default), then C (PublicMessage).
  r = await mls.createCommit({ state: a, cipherSuite: impl }, {})
  a = r.newState
  put('commit', r.commit)
  assert.match(c('recv', 'dave', 'commit'), /^EV commit$/m)
  e = await recv(e, 'commit')
  c('commit', 'dave')
  a = await recv(a, 'commit')
  e = await recv(e, 'commit')
  await agree('dave', [a, e])

  // ts-mls removes the C member (leaf 1); its decrypt of the next message fails.
  r = await mls.createCommit({ state: a, cipherSuite: impl }, {
    extraProposals: [{ proposalType: 'remove', remove: { removed: 1 } }]
  })
  a = r.newState
  put('commit', r.commit)
  assert.match(c('recv', 'dave', 'commit'), /^EV removed$/m)
  e = await recv(e, 'commit')
  a = await send(a, 'm3', 'zonder dave')
  assert.match(c('recv', 'dave', 'm3'), /^ERR /m)
  e = await recv(e, 'm3', 'zonder dave')
}

for (const [name, fn] of [['C creates, ts-mls joins', cCreates], ['ts-mls creates, C joins', tsCreates]]) {
  dir = mkdtempSync(join(tmpdir(), 'spk-mls-api-interop-'))
  try {
    await fn()
    console.log(`ok: ${name}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
