// No plaintext on the server: members (C and the browser's library) send messages and a photo
// carrying a random canary; then the data directory (database, WAL, files, keys, audit) and a
// core dump of the running spreekd (gcore) are searched for the canary as UTF-8, UTF-16 (both byte
// orders), base64 and base64url (every alignment) and hex. It must be nowhere. A control string
// that the server does keep in the clear (the conversation's title, metadata) is searched the
// same way and must be found in both, so the search itself is shown to work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boot } from '../signaling/fixture.mjs';
import { ChatDevice, loadMls } from './lib.mjs';
import { Agent, CDevice } from './cdevice.mjs';

const mls = await loadMls();
// Under ASan or TSan the process maps terabytes of shadow memory: gcore of it takes longer than
// the test allows and says nothing more about spreekd's own data. Those runs search the data
// directory only; the normal build searches the core too.
const SANITIZED = Boolean(process.env.ASAN_OPTIONS || process.env.TSAN_OPTIONS);
const LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const randomWord = (prefix, n) => prefix + Array.from(randomBytes(n), (b) => LETTERS[b % LETTERS.length]).join('');

// Every byte pattern `text` may take: UTF-8, UTF-16LE/BE, hex, and base64 / base64url of the
// UTF-8 bytes at each of the three alignments (only the characters that depend on nothing else).
function forms(text) {
  const utf8 = Buffer.from(text, 'utf8');
  const be = Buffer.from(text, 'utf16le').swap16();
  const out = { utf8, utf16le: Buffer.from(text, 'utf16le'), utf16be: be, hex: Buffer.from(utf8.toString('hex')), HEX: Buffer.from(utf8.toString('hex').toUpperCase()) };
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), utf8]).toString('base64');
    const from = 4 * Math.ceil(k / 3);
    const to = 4 * Math.floor((k + utf8.length) / 3);
    const mid = enc.slice(from, to);
    out[`base64@${k}`] = Buffer.from(mid);
    out[`base64url@${k}`] = Buffer.from(mid.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return out;
}

// The names of the forms found in the file (read in chunks that overlap by the longest form).
function scan(path, patterns) {
  const longest = Math.max(...Object.values(patterns).map((p) => p.length));
  const chunk = Buffer.alloc(32 << 20);
  const found = new Set();
  const fd = openSync(path, 'r');
  try {
    let pos = 0;
    let keep = 0;
    for (;;) {
      const n = readSync(fd, chunk, keep, chunk.length - keep, pos);
      if (n === 0) break;
      const view = chunk.subarray(0, keep + n);
      for (const [name, p] of Object.entries(patterns)) if (view.indexOf(p) >= 0) found.add(name);
      pos += n;
      keep = Math.min(longest - 1, view.length);
      view.copy(chunk, 0, view.length - keep);
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

// A photo as the browser sends one: AES-256-GCM with a fresh key; the ciphertext is uploaded,
// the key and nonce travel inside the MLS message (protocol §5.10).
function sealPhoto(bytes) {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  const ct = Buffer.concat([c.update(bytes), c.final(), c.getAuthTag()]);
  return { ct, key, nonce };
}

function openPhoto(ct, key, nonce) {
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
}

test('no message or photo plaintext in the data directory or in the memory of spreekd', { timeout: 120000 }, async () => {
  const canary = randomWord('KANARIE', 20);
  const control = randomWord('TITEL', 20);
  const env = await boot();
  const agent = await Agent.start(env.srv);
  const coreDir = mkdtempSync(join(tmpdir(), 'spk-core-'));
  try {
    const gpc = await env.as(env.users.gp);
    const gp = await ChatDevice.open(gpc, mls, 'gp-laptop');
    const dac = await env.as(env.users.assistant);
    const da = await ChatDevice.open(dac, mls, 'da-pc');
    const apo = await CDevice.open(agent, { token: env.token(env.users.partner) }, 'apo-pc');
    for (const d of [gp, da, apo]) await d.sync();
    const { conversation } = await gpc.ok('chat.create', { kind: 'care_team', patient: 'pseudo-4711', title: control });
    const conv = conversation.id;
    await gp.createGroup(conv);
    await gp.addUser(conv, { sub: 'da-1' }, 'assistant', 'Fatima');
    await gp.addUser(conv, { sub: 'apo-1' }, 'partner', 'Apotheek');
    await apo.until(() => apo.inGroup.has(conv));
    await da.until(() => da.groups.has(conv));

    // messages, from the browser's library and from C, short and long, text and structured
    const texts = [
      `Bloeddruk 142/91, ${canary}`,
      JSON.stringify({ type: 'measurement', code: 'bp', note: canary }),
      `${canary} `.repeat(400),
    ];
    for (const t of texts) assert.equal((await gp.send(conv, t)).type, 'ok');
    assert.equal((await apo.send(conv, `Medicatie aangepast ${canary}`)).type, 'ok');
    assert.equal((await da.send(conv, `Afspraak ${canary}`)).type, 'ok');
    // a photo: the canary inside its bytes, in UTF-8 and UTF-16
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(20000), Buffer.from(canary), Buffer.from(canary, 'utf16le'), randomBytes(20000)]);
    const { ct, key, nonce } = sealPhoto(photo);
    const up = await gpc.ok('chat.file.upload', { conversation: conv, size: ct.length });
    const put = await fetch(env.srv.url + up.path, { method: 'PUT', headers: { authorization: `Bearer ${up.ticket}` }, body: ct });
    assert.equal(put.status, 201);
    const photoMsg = JSON.stringify({ type: 'photo', file: up.file, key: key.toString('base64url'), nonce: nonce.toString('base64url'), caption: canary });
    assert.equal((await gp.send(conv, photoMsg)).type, 'ok');

    // everyone got everything (so the canary did pass through the server), and the photo
    // decrypts to what was sent
    await da.until(() => da.texts(conv).length === 5);
    await apo.until(() => apo.texts(conv).length === 5);
    assert.ok(apo.texts(conv).every((t) => t.includes(canary)));
    const msg = JSON.parse(da.texts(conv).at(-1));
    const down = await dac.ok('chat.file.download', { conversation: conv, file: msg.file });
    const got = Buffer.from(await (await fetch(env.srv.url + down.path, { headers: { authorization: `Bearer ${down.ticket}` } })).arrayBuffer());
    assert.ok(openPhoto(got, Buffer.from(msg.key, 'base64url'), Buffer.from(msg.nonce, 'base64url')).equals(photo));

    // a core dump of the running server
    let core = null;
    if (!SANITIZED) {
      execFileSync('gcore', ['-o', join(coreDir, 'core'), String(env.srv.proc.pid)], { stdio: 'ignore', timeout: 60000 });
      [core] = readdirSync(coreDir).map((f) => join(coreDir, f));
      assert.ok(core && statSync(core).size > 1 << 20, 'no core dump');
    }

    const files = filesUnder(env.srv.dataDir);
    assert.ok(files.some((f) => f.endsWith('-wal')) && files.some((f) => f.includes('/files/')), files.join(' '));
    const canaryForms = forms(canary);
    const controlForms = forms(control);
    const where = { canary: [], control: [] };
    for (const f of core ? [...files, core] : files) {
      for (const name of scan(f, canaryForms)) where.canary.push(`${f}: ${name}`);
      if (scan(f, { utf8: controlForms.utf8 }).size > 0) where.control.push(f);
    }
    assert.deepEqual(where.canary, [], 'plaintext found on the server');
    assert.ok(!env.srv.stderr.includes(canary), 'plaintext in the server log');
    // the control: in the store and in memory, found by the same search
    if (core) assert.ok(where.control.includes(core), `control not found in the core: ${where.control}`);
    assert.ok(where.control.some((f) => f !== core), `control not found in the data directory: ${where.control}`);
    assert.deepEqual([...gp.errors, ...da.errors, ...apo.errors], []);
  } finally {
    // a gcore that was cut short leaves the process stopped
    if (env.srv.proc.exitCode === null) env.srv.proc.kill('SIGCONT');
    rmSync(coreDir, { recursive: true, force: true });
    await agent.close();
    await env.close();
  }
});
