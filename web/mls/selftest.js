// The self-test page (selftest.html): loads the WebAssembly build of spk_mls, makes a group of
// two and exchanges a message; window.selftest = { ok, loadMs } for the tests.
import { loadMls } from './spk_mls.js';

const out = document.getElementById('out');
const t0 = performance.now();
try {
  const mls = await loadMls();
  const loadMs = performance.now() - t0;
  const a = mls.keyPackageCreate('a');
  const b = mls.keyPackageCreate('b');
  const ga = mls.create('selftest', a.secret);
  const { welcome } = ga.commit({ add: [b.keyPackage] });
  ga.commitMerge();
  const gb = mls.join(b.secret, welcome);
  const ev = gb.process(ga.encrypt('hallo'));
  const ok = new TextDecoder().decode(ev.data) === 'hallo';
  ga.free();
  gb.free();
  window.selftest = { ok, loadMs };
  out.textContent = `${ok ? 'ok' : 'FAILED'}: module loaded in ${loadMs.toFixed(1)} ms`;
} catch (err) {
  window.selftest = { ok: false, error: String(err) };
  out.textContent = `FAILED: ${err}`;
}
