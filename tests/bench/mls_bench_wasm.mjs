// MLS benchmark of the WebAssembly build of spk_mls (web/mls/spk_mls.js), the same scenarios as
// mls_bench.c (docs/performance.md, "MLS"), in node or in headless Chromium:
//   app:    encrypt + decrypt of a 1 KiB application message in a two-member group;
//   add N:  creating (alice) and processing (bob) a PublicMessage Commit that adds one member to
//           a group of N (Welcome with the ratchet tree), groups built as in mls_bench.c, every
//           repetition from alice's and bob's saved states.
// Times: process CPU time in node (process.cpuUsage); wall time in Chromium (performance.now:
// a page has no CPU clock), on a page served by the real spreekd. Medians of the repetitions.
// Output: "RESULT <name> <microseconds>" lines, plus in Chromium "RESULT load_cold_ms" and
// "RESULT load_warm_ms" (fetch, compile and instantiate of the module on the self-test page,
// first visit and reload).
// Usage: node mls_bench_wasm.mjs [--chromium] [--reps R] [--app-iters I] [sizes...]
//        (--chromium needs SPREEKD, the spreekd binary, or build/server/spreekd)

// Self-contained (it is also sent into the page): mls is a loaded Mls, now() a clock in µs.
export async function benchWasm(mls, { reps, appIters, sizes, now, log }) {
  const median = (v) => {
    const s = [...v].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const kp = (i) => mls.keyPackageCreate(`member-${i}`);
  function build(n) {
    const kps = Array.from({ length: n }, (_, i) => kp(i));
    const live = [{ leaf: 0, g: mls.create('bench-group', kps[0].secret) }];
    const { welcome } = live[0].g.commit({ add: kps.slice(1).map((k) => k.keyPackage) });
    live[0].g.commitMerge();
    for (let leaf = 1; leaf < n; leaf = leaf === 1 ? 2 : leaf * 2) {
      live.push({ leaf, g: mls.join(kps[leaf].secret, welcome) });
    }
    for (let i = 2; i < live.length; i++) {
      const { commit } = live[i].g.commit();
      live[i].g.commitMerge();
      for (let j = 0; j < live.length; j++) if (j !== i) live[j].g.process(commit);
    }
    const states = [live[0].g.save(), live[1].g.save()];
    for (const l of live) l.g.free();
    return states;
  }
  const out = {};
  {
    const [sa, sb] = build(2);
    const a = mls.restore(sa);
    const b = mls.restore(sb);
    const pt = new Uint8Array(1024).fill(120);
    const v = [];
    // Repetition -1 warms up (the engine's optimising tier) and is not counted.
    for (let r = -1; r < reps; r++) {
      const t = now();
      for (let i = 0; i < appIters; i++) {
        const ev = b.process(a.encrypt(pt));
        if (ev.data.length !== 1024) throw new Error('plaintext');
      }
      if (r >= 0) v.push((now() - t) / appIters);
    }
    a.free();
    b.free();
    out.app_1k = median(v);
  }
  for (const n of sizes) {
    const t0 = Date.now();
    const [sa, sb] = build(n);
    log(`wasm: group of ${n} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const joiner = kp(n).keyPackage;
    const create = [];
    const proc = [];
    for (let r = -1; r < reps; r++) {
      const a = mls.restore(sa);
      const b = mls.restore(sb);
      let t = now();
      const { commit } = a.commit({ add: [joiner] });
      const tc = now() - t;
      t = now();
      b.process(commit);
      const tp = now() - t;
      if (r >= 0) {
        create.push(tc);
        proc.push(tp);
      }
      a.free();
      b.free();
    }
    out[`add_create_${n}`] = median(create);
    out[`add_process_${n}`] = median(proc);
  }
  return out;
}

async function inNode(opts) {
  const { loadMls } = await import('../../web/mls/spk_mls.js');
  const mls = await loadMls();
  const now = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  return benchWasm(mls, { ...opts, now, log: (s) => console.error(s) });
}

async function inChromium(opts) {
  const { launchBrowser, startServer } = await import('../browser/lib.mjs');
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error(`chromium: ${m.text()}`));
    const load = async () => {
      await page.waitForFunction(() => window.selftest !== undefined, null, { timeout: 60000 });
      const st = await page.evaluate(() => window.selftest);
      if (!st.ok) throw new Error(`self-test failed: ${st.error}`);
      return st.loadMs;
    };
    await page.goto(`${server.url}/mls/selftest.html`);
    const cold = await load();
    await page.reload();
    const warm = await load();
    // The bench function goes in as source text, evaluated by the DevTools protocol (which the
    // page's CSP does not govern); the module it measures loads as the client loads it.
    const out = await page.evaluate(`(async () => {
      const { loadMls } = await import('/mls/spk_mls.js');
      const mls = await loadMls();
      const benchWasm = ${benchWasm.toString()};
      const now = () => performance.now() * 1000;
      return benchWasm(mls, { ...${JSON.stringify(opts)}, now, log: (s) => console.log(s) });
    })()`);
    return { ...out, load_cold_ms: cold, load_warm_ms: warm };
  } finally {
    await browser.close();
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opts = { reps: 7, appIters: 300, sizes: [] };
  let chromium = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--reps') opts.reps = Number(args[++i]);
    else if (args[i] === '--app-iters') opts.appIters = Number(args[++i]);
    else if (args[i] === '--chromium') chromium = true;
    else opts.sizes.push(Number(args[i]));
  }
  if (opts.sizes.length === 0) opts.sizes.push(2, 10, 100, 1000);
  const out = chromium ? await inChromium(opts) : await inNode(opts);
  for (const [k, v] of Object.entries(out)) console.log(`RESULT ${k} ${v}`);
}
