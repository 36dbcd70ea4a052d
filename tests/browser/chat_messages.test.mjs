// The typed chat messages (web/js/chat/messages.js, docs/chat-messages.md) in node: every type
// round-trips, bad input is refused with the field named, and measurements map onto FHIR R4
// Observations with LOINC codes and UCUM units.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MAX_ENCODED,
  MEASUREMENTS,
  encode,
  invalid,
  measurementMessage,
  parse,
  photoMessage,
  textMessage,
  toObservation,
} from '../../web/js/chat/messages.js';

const te = new TextEncoder();
const FILE = {
  id: 'f_abc123',
  mime: 'image/jpeg',
  size: 1234,
  key: 'A'.repeat(43),
  iv: 'B'.repeat(16),
  sha256: 'C'.repeat(43),
};

test('text, photo and measurement messages round-trip', () => {
  for (const m of [
    textMessage('Goedemiddag, dokter'),
    photoMessage(FILE, { name: 'arm.jpg', width: 640, height: 480, caption: 'Hier' }),
    measurementMessage(
      'blood_pressure',
      { systolic: 128, diastolic: 82 },
      '2026-12-01T08:30:00+01:00',
    ),
    measurementMessage('glucose', { glucose: 6.4 }, new Date(0)),
    measurementMessage('weight', { weight: 81.5 }, Date.now()),
    measurementMessage('temperature', { temperature: 37.8 }, Date.now()),
    measurementMessage('spo2', { spo2: 97 }, Date.now(), 'na het traplopen'),
  ]) {
    const r = parse(encode(m));
    assert.equal(r.ok, true, r.reason);
    assert.deepEqual(r.msg, m);
    assert.match(m.id, /^[0-9a-f]{32}$/);
  }
});

test('bad input is refused, naming the field', () => {
  const t = textMessage('x');
  assert.equal(invalid({ ...t, text: '' }), 'text');
  assert.equal(invalid({ ...t, text: '   ' }), 'text');
  assert.equal(invalid({ ...t, text: 'x'.repeat(4001) }), 'text');
  assert.equal(invalid({ ...t, id: 'short' }), 'id');
  assert.equal(invalid({ ...t, v: 0 }), 'v');
  assert.equal(invalid({ ...t, sent_at: -1 }), 'sent_at');
  assert.equal(invalid([]), 'not an object');
  const p = photoMessage(FILE);
  assert.equal(invalid({ ...p, file: { ...FILE, mime: 'text/html' } }), 'file.mime');
  assert.equal(invalid({ ...p, file: { ...FILE, key: 'short' } }), 'file.key');
  assert.equal(invalid({ ...p, file: { ...FILE, id: '../etc' } }), 'file.id');
  assert.equal(invalid({ ...p, file: { ...FILE, size: 0 } }), 'file.size');
  assert.equal(invalid({ ...p, file: { ...FILE, size: 10 * 1024 * 1024 - 15 } }), 'file.size');
  assert.equal(invalid({ ...p, file: { ...FILE, size: 10 * 1024 * 1024 - 16 } }), null);
  const bp = measurementMessage('blood_pressure', { systolic: 128, diastolic: 82 }, Date.now());
  const comps = bp.measurement.components;
  assert.equal(
    invalid({ ...bp, measurement: { ...bp.measurement, components: [comps[0]] } }),
    'measurement.components',
  );
  assert.equal(
    invalid({
      ...bp,
      measurement: { ...bp.measurement, components: [{ ...comps[0], value: 900 }, comps[1]] },
    }),
    'measurement.systolic.value',
  );
  assert.equal(
    invalid({
      ...bp,
      measurement: { ...bp.measurement, components: [comps[0], { ...comps[1], unit: 'kPa' }] },
    }),
    'measurement.diastolic.unit',
  );
  assert.equal(
    invalid({ ...bp, measurement: { ...bp.measurement, kind: 'mood' } }),
    'measurement.kind',
  );
  assert.equal(
    invalid({ ...bp, measurement: { ...bp.measurement, effective: 'gisteren' } }),
    'measurement.effective',
  );
  assert.throws(() => measurementMessage('mood', {}, Date.now()), TypeError);
  assert.throws(() => encode({ ...t, text: '' }), TypeError);
  // Too large as a whole (a long caption on a photo is within its own limit).
  assert.throws(
    () => encode({ ...t, text: 'é'.repeat(4000), pad: 'x'.repeat(MAX_ENCODED) }),
    RangeError,
  );
  // Not JSON, not UTF-8.
  assert.deepEqual(parse(te.encode('{')), { ok: false, reason: 'not JSON' });
  assert.equal(parse(new Uint8Array([0xff, 0xfe])).ok, false);
  // A type of a later version is kept (shown as "cannot be shown"), not refused.
  assert.equal(parse(encode({ ...t, type: 'poll', text: undefined })).ok, true);
});

test('measurements map onto FHIR R4 Observation: LOINC, UCUM, components', () => {
  const bp = measurementMessage(
    'blood_pressure',
    { systolic: 142, diastolic: 91 },
    '2026-12-01T07:15:00Z',
  );
  const o = toObservation(bp, { patient: 'pseudo-4711' });
  assert.equal(o.resourceType, 'Observation');
  assert.equal(o.status, 'final');
  assert.equal(o.id, bp.id);
  assert.deepEqual(o.category[0].coding[0], {
    system: 'http://terminology.hl7.org/CodeSystem/observation-category',
    code: 'vital-signs',
  });
  assert.equal(o.code.coding[0].system, 'http://loinc.org');
  assert.equal(o.code.coding[0].code, '85354-9');
  assert.equal(o.effectiveDateTime, '2026-12-01T07:15:00.000Z');
  assert.deepEqual(o.subject, {
    identifier: { system: 'urn:spreekkamer:patient', value: 'pseudo-4711' },
  });
  assert.equal(o.valueQuantity, undefined);
  assert.deepEqual(
    o.component.map((c) => [
      c.code.coding[0].code,
      c.valueQuantity.value,
      c.valueQuantity.code,
      c.valueQuantity.system,
    ]),
    [
      ['8480-6', 142, 'mm[Hg]', 'http://unitsofmeasure.org'],
      ['8462-4', 91, 'mm[Hg]', 'http://unitsofmeasure.org'],
    ],
  );
  const expect = {
    glucose: ['14743-9', 'mmol/L', 'laboratory'],
    weight: ['29463-7', 'kg', 'vital-signs'],
    temperature: ['8310-5', 'Cel', 'vital-signs'],
    spo2: ['2708-6', '%', 'vital-signs'],
  };
  for (const [kind, [loinc, unit, cat]] of Object.entries(expect)) {
    const c = Object.values(MEASUREMENTS[kind].components)[0];
    const m = measurementMessage(kind, { [kind]: c.min + c.step }, Date.now());
    const obs = toObservation(m);
    assert.equal(obs.code.coding[0].code, loinc, kind);
    assert.equal(obs.valueQuantity.code, unit, kind);
    assert.equal(obs.valueQuantity.system, 'http://unitsofmeasure.org');
    assert.equal(obs.category[0].coding[0].code, cat, kind);
    assert.equal(obs.component, undefined);
  }
  // Pulse oximetry is coded as both the profile's code and the method-specific one.
  const spo2 = toObservation(measurementMessage('spo2', { spo2: 95 }, Date.now()));
  assert.deepEqual(
    spo2.code.coding.map((c) => c.code),
    ['2708-6', '59408-5'],
  );
  assert.throws(() => toObservation(textMessage('x')), TypeError);
});
