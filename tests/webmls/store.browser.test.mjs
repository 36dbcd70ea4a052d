// Browser MLS in headless Chromium against the real spreekd serving web/: the WebAssembly
// module loads from /vendor/ (the self-test page), and MLS client state at rest
// (web/mls/store.js): state blobs and KeyPackage secrets in IndexedDB under a non-extractable
// AES-GCM CryptoKey that survives a browser restart, records that hold no plaintext and refuse
// to decrypt when altered or moved.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { CHROMIUM_ARGS, startServer } from '../browser/lib.mjs';

let server;
const profiles = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

function newProfile() {
  const p = mkdtempSync(join(tmpdir(), 'spk-webmls-profile-'));
  profiles.push(p);
  return p;
}

// A Chromium with a persistent profile (IndexedDB on disk), on the self-test page.
async function browser(profile) {
  const { chromium } = await import('playwright-core');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}/mls/selftest.html`);
  await page.waitForFunction(() => window.selftest !== undefined, null, { timeout: 30000 });
  const st = await page.evaluate(() => window.selftest);
  assert.equal(st.ok, true, `self-test: ${st.error ?? ''} ${errors.join('; ')}`);
  return { ctx, page, loadMs: st.loadMs };
}

test('the module loads from spreekd and runs a group in Chromium', async () => {
  const { ctx, page, loadMs } = await browser(newProfile());
  try {
    const wasm = await page.evaluate(async () => {
      const r = await fetch('/vendor/spk_mls.wasm');
      return { status: r.status, type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength };
    });
    assert.equal(wasm.status, 200);
    assert.equal(wasm.type, 'application/wasm');
    assert.ok(wasm.size > 100000);
    console.log(`spk_mls.wasm: ${wasm.size} bytes, loaded and instantiated in ${loadMs.toFixed(1)} ms`);
  } finally {
    await ctx.close();
  }
});

test('state and KeyPackage secrets survive a browser restart, encrypted at rest', async () => {
  // First browser: a group of two; both states and a spare KeyPackage secret go to the store;
  // a message sent now is decrypted after the restart.
  const profile = newProfile();
  let b = await browser(profile);
  let pending;
  try {
    pending = await b.page.evaluate(async () => {
      const { loadMls } = await import('/mls/spk_mls.js');
      const { openMlsStore, deleteMlsStore } = await import('/mls/store.js');
      await deleteMlsStore('test-mls');
      const mls = await loadMls();
      const store = await openMlsStore('test-mls');
      const a = mls.keyPackageCreate('huisarts');
      const p = mls.keyPackageCreate('patient');
      const spare = mls.keyPackageCreate('patient-tablet');
      const ga = mls.create('consult-7', a.secret);
      const { welcome } = ga.commit({ add: [p.keyPackage] });
      ga.commitMerge();
      await store.putKeyPackageSecret('patient-kp-1', p.secret);
      const gp = mls.join(await store.takeKeyPackageSecret('patient-kp-1'), welcome);
      const again = await store.takeKeyPackageSecret('patient-kp-1');
      await store.putKeyPackageSecret('tablet-kp-1', spare.secret);
      const msg = ga.encrypt('vóór de herstart');
      const stateA = ga.save();
      await store.putState('consult-7/huisarts', stateA);
      await store.putState('consult-7/patient', gp.save());
      ga.free();
      gp.free();
      // What is on disk: records of ciphertext, not the blob.
      const raw = await new Promise((resolve, reject) => {
        const r = indexedDB.open('test-mls');
        r.onerror = () => reject(r.error);
        r.onsuccess = () => {
          const t = r.result.transaction(['state', 'keys'], 'readonly');
          const s = t.objectStore('state').get('consult-7/huisarts');
          const k = t.objectStore('keys').getAll();
          t.oncomplete = () => {
            r.result.close();
            resolve({ rec: s.result, keys: k.result });
          };
        };
      });
      const hex = (u) => Array.from(u, (x) => x.toString(16).padStart(2, '0')).join('');
      let exported = 'no error';
      try {
        await crypto.subtle.exportKey('raw', store.key);
      } catch (e) {
        exported = e.name;
      }
      store.close();
      return {
        msg: hex(msg),
        blobLen: stateA.length,
        blobHead: hex(stateA.subarray(0, 24)),
        ctLen: raw.rec.ct.length,
        ctHex: hex(raw.rec.ct),
        ivLen: raw.rec.iv.length,
        keys: raw.keys.map((k) => ({ type: k.type, extractable: k.extractable, alg: k.algorithm.name, cls: k.constructor.name })),
        exported,
        again,
      };
    });
  } finally {
    await b.ctx.close();
  }
  assert.equal(pending.again, null, 'a KeyPackage secret is taken once');
  assert.deepEqual(pending.keys, [{ type: 'secret', extractable: false, alg: 'AES-GCM', cls: 'CryptoKey' }]);
  assert.equal(pending.exported, 'InvalidAccessError', 'the key must not be exportable');
  assert.equal(pending.ivLen, 12);
  assert.equal(pending.ctLen, pending.blobLen + 16, 'AES-GCM ciphertext and tag');
  assert.ok(!pending.ctHex.includes(pending.blobHead), 'the state blob is stored in the clear');

  // Second browser on the same profile: restore both members from the store and carry on.
  b = await browser(profile);
  try {
    const r = await b.page.evaluate(async (msgHex) => {
      const { loadMls } = await import('/mls/spk_mls.js');
      const { openMlsStore, MlsStoreError } = await import('/mls/store.js');
      const mls = await loadMls();
      const store = await openMlsStore('test-mls');
      const unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
      const td = new TextDecoder();
      const ga = mls.restore(await store.getState('consult-7/huisarts'));
      const gp = mls.restore(await store.getState('consult-7/patient'));
      const before = td.decode(gp.process(unhex(msgHex)).data);
      const after = td.decode(ga.process(gp.encrypt('na de herstart')).data);
      const tablet = await store.listKeyPackageSecrets();
      // An altered record and a record moved to another name do not decrypt.
      const db = await new Promise((resolve, reject) => {
        const o = indexedDB.open('test-mls');
        o.onsuccess = () => resolve(o.result);
        o.onerror = () => reject(o.error);
      });
      const edit = (fn) =>
        new Promise((resolve, reject) => {
          const t = db.transaction('state', 'readwrite');
          fn(t.objectStore('state'));
          t.oncomplete = resolve;
          t.onerror = () => reject(t.error);
        });
      const rec = await new Promise((resolve) => {
        const q = db.transaction('state').objectStore('state').get('consult-7/patient');
        q.onsuccess = () => resolve(q.result);
      });
      await edit((s) => s.put(rec, 'consult-8/patient'));
      const bad = { ...rec, ct: rec.ct.slice() };
      bad.ct[10] ^= 1;
      await edit((s) => s.put(bad, 'consult-7/patient'));
      const errors = [];
      for (const id of ['consult-8/patient', 'consult-7/patient']) {
        try {
          await store.getState(id);
          errors.push('decrypted');
        } catch (e) {
          errors.push(e instanceof MlsStoreError ? 'refused' : String(e));
        }
      }
      db.close();
      await store.deleteState('consult-8/patient');
      const left = await store.listStates();
      ga.free();
      gp.free();
      store.close();
      return { before, after, tablet, errors, left };
    }, pending.msg);
    assert.equal(r.before, 'vóór de herstart');
    assert.equal(r.after, 'na de herstart');
    assert.deepEqual(r.tablet, ['tablet-kp-1']);
    assert.deepEqual(r.errors, ['refused', 'refused']);
    assert.deepEqual(r.left.sort(), ['consult-7/huisarts', 'consult-7/patient']);
  } finally {
    await b.ctx.close();
  }
});
