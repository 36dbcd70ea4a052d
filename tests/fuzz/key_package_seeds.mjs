// Writes the seed corpus of fuzz_key_package.c: KeyPackages as the delivery service receives
// them, made by the browser's MLS library (spk_mls in WebAssembly, the same code as the C
// library) and by hand (tests/integration/chat/keypackage.mjs) with one fault each. Lifetimes
// are around FUZZ_NOW of the target, so the seeds keep their meaning whatever the date.
//   node tests/fuzz/key_package_seeds.mjs tests/fuzz/corpus/key_package
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMls } from '../../web/mls/spk_mls.js';
import { keyPackage } from '../integration/chat/keypackage.mjs';

const FUZZ_NOW = 1796600000; // keep equal to FUZZ_NOW in fuzz_key_package.c
const dir = process.argv[2];
const mls = await loadMls();
const id = (sub, device) => `spk1\nspreekkamer-local\n${sub}\n${device}`;
const seeds = [];
// the library's own (lifetime now - 1 h .. now + 90 days: generated shortly before FUZZ_NOW)
for (const [sub, device] of [['gp-1', 'gp-laptop'], ['p_Zz8kq', 'patient-phone'], ['apo-1', 'pc']]) {
  seeds.push(mls.keyPackageCreate(id(sub, device)).keyPackage);
}
seeds.push(mls.keyPackageCreate('not an spk1 identity').keyPackage);
seeds.push(mls.keyPackageCreate(`spk1\na\nb\nc\nd`).keyPackage);
const t = { notBefore: FUZZ_NOW - 3600, notAfter: FUZZ_NOW + 86400 };
seeds.push(keyPackage({ identity: id('gp-1', 'desktop'), ...t }));
seeds.push(keyPackage({ identity: id('gp-1', 'desktop'), suite: 2, suites: [1, 2], ...t }));
seeds.push(keyPackage({ identity: id('gp-1', 'desktop'), badSignature: true, ...t }));
seeds.push(keyPackage({ identity: id('gp-1', 'desktop'), notBefore: FUZZ_NOW - 7200, notAfter: FUZZ_NOW - 60 }));
seeds.push(keyPackage({ identity: id('gp-1', 'desktop'), notBefore: FUZZ_NOW + 60, notAfter: FUZZ_NOW + 7200 }));
seeds.push(keyPackage({ identity: id('gp-1', 'x'.repeat(64)), suites: [1, 2, 3], ...t }));
for (const s of seeds) {
  const name = createHash('sha1').update(s).digest('hex');
  writeFileSync(join(dir, name), s);
}
console.log(`wrote ${seeds.length} seeds to ${dir}`);
