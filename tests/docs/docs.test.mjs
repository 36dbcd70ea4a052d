// The documents an independent client and an operator work from, checked against the code:
// every error code the server can put in an `error` answer is in docs/protocol.md §3 (and every
// code there exists), and every flag `spreekd --help` prints is in docs/operations.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const read = (p) => readFileSync(p, 'utf8');

// Codes of the one list that are used inside the server and its tools only; protocol.md §3
// names them as such.
const INTERNAL = ['already_exists', 'mls_replay', 'mls_bad_membership_tag', 'mls_bad_confirmation_tag',
  'timeout', 'send_queue_full', 'config_error'];

function section(doc, from, to) {
  const a = doc.indexOf(from);
  const b = doc.indexOf(to, a + 1);
  assert.ok(a >= 0 && b > a, `section ${from}`);
  return doc.slice(a, b);
}

test('protocol.md §3 lists exactly the wire codes of error.h', () => {
  const codes = new Set([...read('common/include/spk/error.h')
    .matchAll(/XX\(\w+,\s*-?\d+,\s*"([a-z_]+)"/g)].map((m) => m[1]));
  assert.ok(codes.size > 40, 'error.h parsed');
  const s3 = section(read('docs/protocol.md'), '## 3. Error codes', '## 4. ');
  const rows = s3.split('\n').filter((l) => l.startsWith('| `'));
  const listed = new Set(rows.flatMap((l) => [...l.split('|')[1].matchAll(/`([a-z_]+)`/g)].map((m) => m[1])));
  const missing = [...codes].filter((c) => !listed.has(c) && !INTERNAL.includes(c));
  assert.deepEqual(missing, [], 'codes a client can receive but §3 does not list');
  const unknown = [...listed].filter((c) => !codes.has(c));
  assert.deepEqual(unknown, [], 'codes §3 lists that the server does not have');
  for (const c of INTERNAL) {
    assert.ok(codes.has(c), `internal code ${c} exists`);
    assert.ok(s3.includes(`\`${c}\``), `§3 names the internal code ${c}`);
  }
});

test('docs/operations.md names every flag of spreekd --help', () => {
  let help;
  try {
    help = execFileSync(process.env.SPREEKD, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    help = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  const flags = [...new Set([...help.matchAll(/^\s+(--[a-z0-9-]+)/gm)].map((m) => m[1]))];
  assert.ok(flags.length > 50, `--help parsed (${flags.length} flags)`);
  const ops = read('docs/operations.md');
  const missing = flags.filter((f) => !new RegExp(`\`${f}(?![a-z0-9-])`).test(ops));
  assert.deepEqual(missing, [], 'flags operations.md does not name');
});
