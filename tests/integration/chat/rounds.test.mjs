// Rounds of C chat devices against one running spreekd, as the soak test applies them
// (tests/soak/soak.mjs): each `spreekload --chat --port --pid --data` run sets up its
// conversations through the protocol, sends, and disconnects; --prefix keeps each run's users
// apart from the earlier runs'. After every run the delivery service's gauges are back at 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startServer } from '../lib/server.mjs';

const BIN = process.env.SPREEKLOAD ?? 'build/test/loadtest/spreekload';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(srv, prefix) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['--chat', '--port', String(srv.port), '--pid', String(srv.proc.pid), '--data', srv.dataDir,
      '--conversations', '4', '--devices', '5', '--kind', 'mixed', '--rates', '40', '--duration', '2',
      '--sample', '4', '--prefix', prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, err, j: JSON.parse(out.trim().split('\n').pop() || '{}') }));
  });
}

test('chat rounds against one spreekd: each sets up, delivers and leaves nothing behind', async () => {
  const srv = await startServer({ args: ['--max-connections-per-address', '1024', '--max-pending-per-address', '256'] });
  try {
    for (const prefix of ['r1-', 'r2-', 'r3-']) {
      const r = await run(srv, prefix);
      assert.equal(r.code, 0, `${prefix}: exit ${r.code}\n${r.err}`);
      assert.equal(r.j.setup_errors, 0, `${prefix}: ${r.j.first_error}`);
      assert.equal(r.j.send_errors + r.j.entry_errors + r.j.connections_lost + r.j.verify_errors, 0, JSON.stringify(r.j));
      const step = r.j.steps[0];
      assert.ok(step.acknowledged_in_window > 0, `${prefix}: messages acknowledged`);
      assert.equal(step.sample_checked > 0, true, `${prefix}: sample decrypted and checked`);
      let m;
      for (let i = 0; i < 100; i++) {
        m = await srv.metrics();
        if (m.spk_chat_devices === 0 && m.spk_chat_conversations_loaded === 0 && m.spk_connections_open === 0) break;
        await sleep(50);
      }
      assert.equal(m.spk_chat_devices, 0, `${prefix}: devices`);
      assert.equal(m.spk_chat_follows, 0, `${prefix}: follows`);
      assert.equal(m.spk_chat_conversations_loaded, 0, `${prefix}: loaded conversations`);
      assert.equal(m.spk_connections_open, 0, `${prefix}: connections`);
    }
  } finally {
    await srv.stop();
  }
});
