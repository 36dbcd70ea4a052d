// MLS benchmark: the C library (mls_bench), its WebAssembly build (mls_bench_wasm.mjs, in node
// and in headless Chromium) and ts-mls on the same machine, same scenarios, one table with the
// ratios to C (docs/performance.md, "MLS"). The Chromium column needs SPREEKD (the page is
// served by spreekd) and is left out with --no-chromium.
//   app:     encrypt + decrypt of a 1 KiB application message (two members), MLSMessage bytes
//            encoded and decoded on both sides;
//   add N:   creating (alice) and processing (bob) a PublicMessage Commit that adds one member
//            to a group of N, Welcome with the ratchet tree.
// Groups are built as in mls_bench.c: one Commit adds everyone, then the members at leaves 2,
// 4, 8, ... join and commit an UpdatePath, so alice's copath is non-blank. Times are process
// CPU time (process.cpuUsage), medians of the repetitions.
// Usage: node mls_bench_tsmls.mjs <mls_bench> [--reps R] [--app-iters I] [--no-chromium] [sizes...]
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import * as mls from 'ts-mls'

const args = process.argv.slice(2)
const cbench = args.shift()
let reps = 7
let appIters = 300
let chromium = true
const sizes = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--reps') reps = Number(args[++i])
  else if (args[i] === '--no-chromium') chromium = false
  else if (args[i] === '--app-iters') appIters = Number(args[++i])
  else sizes.push(Number(args[i]))
}
if (sizes.length === 0) sizes.push(2, 10, 100, 1000)

const impl = await mls.getCiphersuiteImpl(
  mls.getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'))
const te = new TextEncoder()
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system }
const median = (v) => { const s = [...v].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const roundtrip = (m) => mls.decodeMlsMessage(mls.encodeMlsMessage(m), 0)[0]
const member = (i) => mls.generateKeyPackage({ credentialType: 'basic', identity: te.encode(`member-${i}`) },
  mls.defaultCapabilities(), mls.defaultLifetime, [], impl)

async function process1 (st, msg) {
  const r = await mls.processMessage(msg, st, mls.emptyPskIndex, mls.acceptAll, impl)
  return r.newState
}

async function buildGroup (n) {
  const kps = []
  for (let i = 0; i < n; i++) kps.push(await member(i))
  const live = [{ leaf: 0, st: await mls.createGroup(te.encode('bench-group'), kps[0].publicPackage, kps[0].privatePackage, [], impl) }]
  const r = await mls.createCommit({ state: live[0].st, cipherSuite: impl }, {
    extraProposals: kps.slice(1).map((k) => ({ proposalType: 'add', add: { keyPackage: k.publicPackage } })),
    ratchetTreeExtension: true,
    wireAsPublicMessage: true
  })
  live[0].st = r.newState
  for (let leaf = 1; leaf < n; leaf = leaf === 1 ? 2 : leaf * 2) {
    live.push({ leaf, st: await mls.joinGroup(r.welcome, kps[leaf].publicPackage, kps[leaf].privatePackage, mls.emptyPskIndex, impl) })
  }
  for (let i = 2; i < live.length; i++) {
    const c = await mls.createCommit({ state: live[i].st, cipherSuite: impl }, { wireAsPublicMessage: true })
    live[i].st = c.newState
    const msg = roundtrip(c.commit)
    for (let j = 0; j < live.length; j++) {
      if (j !== i) live[j].st = await process1(live[j].st, msg)
    }
  }
  return [live[0].st, live[1].st]
}

async function benchApp () {
  const [a0, b0] = await buildGroup(2)
  let a = a0
  let b = b0
  const pt = new Uint8Array(1024).fill(120)
  const v = []
  for (let r = 0; r < reps; r++) {
    const t = cpu()
    for (let i = 0; i < appIters; i++) {
      const m = await mls.createApplicationMessage(a, pt, impl)
      a = m.newState
      const bytes = mls.encodeMlsMessage({ privateMessage: m.privateMessage, wireformat: 'mls_private_message', version: 'mls10' })
      const res = await mls.processMessage(mls.decodeMlsMessage(bytes, 0)[0], b, mls.emptyPskIndex, mls.acceptAll, impl)
      if (res.message.length !== 1024) throw new Error('plaintext')
      b = res.newState
    }
    v.push((cpu() - t) / appIters)
  }
  return median(v)
}

async function benchAdd (n) {
  const t0 = Date.now()
  const [a, b] = await buildGroup(n)
  console.error(`ts-mls: group of ${n} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const kp = await member(n)
  const create = []
  const proc = []
  for (let r = 0; r < reps; r++) {
    let t = cpu()
    const c = await mls.createCommit({ state: a, cipherSuite: impl }, {
      extraProposals: [{ proposalType: 'add', add: { keyPackage: kp.publicPackage } }],
      ratchetTreeExtension: true,
      wireAsPublicMessage: true
    })
    const bytes = mls.encodeMlsMessage(c.commit)
    mls.encodeMlsMessage({ welcome: c.welcome, wireformat: 'mls_welcome', version: 'mls10' })
    create.push(cpu() - t)
    t = cpu()
    await process1(b, mls.decodeMlsMessage(bytes, 0)[0])
    proc.push(cpu() - t)
  }
  return [median(create), median(proc)]
}

// C first (its own process), then ts-mls.
const cOut = execFileSync(cbench, ['--reps', String(reps), '--app-iters', String(appIters), ...sizes.map(String)],
  { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 }).toString()
const results = (out) => Object.fromEntries([...out.matchAll(/^RESULT (\S+) (\S+)$/gm)].map((m) => [m[1], Number(m[2])]))
const c = results(cOut)
// The WebAssembly build: node (CPU time), then Chromium (wall time), each its own process.
const wasmBench = join(dirname(new URL(import.meta.url).pathname), 'mls_bench_wasm.mjs')
const wasmRun = (extra) => results(execFileSync(process.execPath,
  [wasmBench, ...extra, '--reps', String(reps), '--app-iters', String(appIters), ...sizes.map(String)],
  { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 }).toString())
const wn = wasmRun([])
const wc = chromium ? wasmRun(['--chromium']) : {}
const ts = { app_1k: await benchApp() }
for (const n of sizes) {
  [ts[`add_create_${n}`], ts[`add_process_${n}`]] = await benchAdd(n)
}

const fmt = (us) => us >= 10000 ? `${(us / 1000).toFixed(1)} ms` : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`
const rows = [['encrypt + decrypt 1 KiB', 'app_1k']]
for (const n of sizes) {
  rows.push([`add one member, N=${n}: create Commit`, `add_create_${n}`])
  rows.push([`add one member, N=${n}: process Commit`, `add_process_${n}`])
}
const tsMlsDir = join(dirname(createRequire(import.meta.url).resolve('ts-mls')), '..', '..')
const tsMlsVersion = JSON.parse(readFileSync(join(tsMlsDir, 'package.json'), 'utf8')).version
console.log(`MLS benchmark (cipher suite 1), ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, ts-mls ${tsMlsVersion}`)
console.log(`median of ${reps} repetitions; process CPU time per operation, Chromium: wall time`)
console.log('')
console.log('| operation | C (spk_mls) | wasm, node | wasm, Chromium | ts-mls | wasm node / C | ts-mls / C |')
console.log('|---|---:|---:|---:|---:|---:|---:|')
const opt = (v) => v === undefined ? '–' : fmt(v)
for (const [label, key] of rows) {
  console.log(`| ${label} | ${fmt(c[key])} | ${fmt(wn[key])} | ${opt(wc[key])} | ${fmt(ts[key])} | ` +
    `${(wn[key] / c[key]).toFixed(1)}× | ${(ts[key] / c[key]).toFixed(1)}× |`)
}
const wasmFile = join(dirname(wasmBench), '..', '..', 'web', 'vendor', 'spk_mls.wasm')
const wasmBytes = readFileSync(wasmFile)
const gz = (await import('node:zlib')).gzipSync(wasmBytes, { level: 9 }).length
console.log('')
console.log(`spk_mls.wasm: ${wasmBytes.length} bytes, ${gz} gzipped` + (chromium
  ? `; loaded in Chromium (fetch, compile, instantiate) in ${wc.load_cold_ms.toFixed(1)} ms on the first visit, ${wc.load_warm_ms.toFixed(1)} ms on reload`
  : ''))
// The delivery service's observer (C only): processing the same Commit, saving and restoring it.
console.log('')
console.log('| delivery service observer (C) | process Commit | save | restore | state |')
console.log('|---|---:|---:|---:|---:|')
for (const n of sizes) {
  if (c[`observer_commit_${n}`] === undefined) continue
  console.log(`| N=${n} | ${fmt(c[`observer_commit_${n}`])} | ${fmt(c[`observer_save_${n}`])} | ` +
    `${fmt(c[`observer_restore_${n}`])} | ${(c[`observer_state_bytes_${n}`] / 1024).toFixed(1)} KiB |`)
}
