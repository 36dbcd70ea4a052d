// Every audit event the code can write is documented in docs/audit.md, and the Dutch wording of
// the patient's export (spreekctl) is the one the document gives: no event reaches a patient as
// "overige handeling".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';

const read = (p) => readFileSync(p, 'utf8');

function documented() {
  const m = new Map();
  for (const line of read('docs/audit.md').split('\n')) {
    const r = /^\| `([a-z_]+\.[a-z_.]+)` \| ([^|]+) \|/.exec(line);
    if (r) m.set(r[1], r[2].trim());
  }
  return m;
}

function ctlWording() {
  const src = read('server/spreekctl.c');
  const table = src.slice(src.indexOf('ctl_events[] = {'), src.indexOf('};', src.indexOf('ctl_events[] = {')));
  const m = new Map();
  for (const r of table.matchAll(/\{"([a-z_.]+)",\s*"([^"]+)"\}/g)) m.set(r[1], r[2]);
  return m;
}

// Event names in the code: the policy table's audit column, and every `event = "..."`.
function written() {
  const events = new Set();
  const files = [
    ...readdirSync('signaling/src').filter((f) => f.endsWith('.c')).map((f) => `signaling/src/${f}`),
    ...readdirSync('server').filter((f) => f.endsWith('.c')).map((f) => `server/${f}`),
  ];
  for (const f of files) {
    const src = read(f);
    for (const r of src.matchAll(/\{"[a-z_.]+", [A-Z0-9 |]+, (?:true|false), "([a-z_.]+)"/g)) events.add(r[1]);
    for (const r of src.matchAll(/event\s*=\s*"([a-z_]+\.[a-z_.]+)"/g)) events.add(r[1]);
    for (const r of src.matchAll(/audit_append\([^;]*?"([a-z]+\.[a-z_.]+)"/gs)) events.add(r[1]);
  }
  return events;
}

test('every audit event is documented, with the wording the export uses', () => {
  const doc = documented();
  const nl = ctlWording();
  assert.ok(doc.size >= 40, `only ${doc.size} events parsed from docs/audit.md`);
  for (const e of written()) assert.ok(doc.has(e), `${e} is written but not in docs/audit.md`);
  assert.deepEqual([...nl.keys()].sort(), [...doc.keys()].sort());
  for (const [e, w] of doc) assert.equal(nl.get(e), w, `wording of ${e}`);
});
