// spreekd's command line: --help, --version, refused flags and config, address in use, a
// config file under flags, IPv6 loopback, and the demo console link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.mjs';
import { open, ping } from './util.mjs';

const BIN = process.env.SPREEKD ?? 'build/server/spreekd';
const run = (args) => spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000 });

test('command line, config file, IPv6, demo link', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spk-cli-'));
  try {
    const help = run(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--max-message-bytes/);
    assert.match(run(['--version']).stdout, /^spreekd \d+\.\d+\.\d+/);

    for (const args of [['--bogus', '1'], ['--listen', 'nope'], ['--max-connections', '0'],
      ['--tls-cert', 'only-cert.pem'], ['stray']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^spreekd: /);
    }
    writeFileSync(join(dir, 'bad.json'), '{"max_connections": 10, "colour": "blue"}');
    const bad = run(['--config', join(dir, 'bad.json')]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown key "colour"/);

    // address in use: exit 1 with a reason
    const blocker = net.createServer();
    await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
    const inUse = run(['--listen', `127.0.0.1:${blocker.address().port}`, '--data', join(dir, 'd0')]);
    blocker.close();
    assert.equal(inUse.status, 1);
    assert.match(inUse.stderr, /Address already in use/);

    // config file, then flags over it; IPv6 loopback
    writeFileSync(join(dir, 'ok.json'), JSON.stringify({ listen: '127.0.0.1:1', max_message_bytes: 4000 }));
    const srv = await startServer({ args: ['--config', join(dir, 'ok.json'), '--listen', '[::1]:0'] });
    try {
      assert.ok(srv.url.startsWith('http://[::1]:'), srv.url);
      assert.equal((await srv.get('/healthz')).status, 200);
      const ws = await open(srv.wsUrl);
      assert.equal(ws.msgs[0].limits.max_message_bytes, 4000, 'file value kept');
      assert.equal((await ping(ws, 1)).type, 'ok');
      ws.close();
      await ws.closed;
      // embedded issuer: a ready-to-open GP console link on stdout
      const link = /(http:\/\/\[::1\]:\d+)\/console#token=([\w-]+\.[\w-]+\.[\w-]+)/.exec(srv.stdout);
      assert.ok(link, srv.stdout);
      assert.equal(link[1], srv.url);
      const claims = JSON.parse(Buffer.from(link[2].split('.')[1], 'base64url'));
      assert.equal(claims.sub, 'gp-demo');
      assert.equal(claims.role, 'gp');
      assert.equal(claims.practice, 'praktijk-demo');
      assert.equal(claims.exp - claims.iat, 12 * 3600);
      const c = await open(srv.wsUrl);
      c.send(JSON.stringify({ id: 1, type: 'auth', token: link[2] }));
      assert.equal((await ping(c, 2)).type, 'ok');
      assert.equal(c.msgs.find((m) => m.re === 1)?.type, 'ok', JSON.stringify(c.msgs));
      c.close();
      await c.closed;
    } finally {
      await srv.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
