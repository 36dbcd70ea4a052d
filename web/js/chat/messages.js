// Typed chat messages: what goes inside the MLS ciphertext (docs/chat-messages.md).
//
//   const bytes = encode(textMessage('Goedemiddag'));
//   const r = parse(bytes);       // { ok: true, msg } or { ok: false, reason }
//   const obs = toObservation(r.msg, { patient: 'pseudo-4711' });   // FHIR R4 Observation
//
// The same module runs in the browser and in node (tests).

export const SCHEMA_VERSION = 1;
export const MAX_TEXT = 4000;
export const MAX_ENCODED = 40000; // bytes of JSON; the PrivateMessage stays under 48 KiB
const ID_RE = /^[0-9a-f]{32}$/;
const B64U_RE = /^[A-Za-z0-9_-]+$/;
export const PHOTO_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
// The server takes files of at most 10 MiB (file_max_bytes); the ciphertext is 16 bytes longer.
export const MAX_FILE_BYTES = 10 * 1024 * 1024 - 16;

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

const UCUM = 'http://unitsofmeasure.org';
const LOINC = 'http://loinc.org';
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

// The self-measurements a patient can send: LOINC codes, UCUM units, plausible ranges.
export const MEASUREMENTS = {
  blood_pressure: {
    category: 'vital-signs',
    loinc: [['85354-9', 'Blood pressure panel with all children optional']],
    components: {
      systolic: {
        loinc: ['8480-6', 'Systolic blood pressure'],
        unit: 'mm[Hg]',
        min: 40,
        max: 300,
        step: 1,
      },
      diastolic: {
        loinc: ['8462-4', 'Diastolic blood pressure'],
        unit: 'mm[Hg]',
        min: 20,
        max: 200,
        step: 1,
      },
    },
  },
  glucose: {
    category: 'laboratory',
    loinc: [['14743-9', 'Glucose [Moles/volume] in Capillary blood by Glucometer']],
    components: { glucose: { unit: 'mmol/L', min: 0.5, max: 50, step: 0.1 } },
  },
  weight: {
    category: 'vital-signs',
    loinc: [['29463-7', 'Body weight']],
    components: { weight: { unit: 'kg', min: 0.5, max: 500, step: 0.1 } },
  },
  temperature: {
    category: 'vital-signs',
    loinc: [['8310-5', 'Body temperature']],
    components: { temperature: { unit: 'Cel', min: 30, max: 45, step: 0.1 } },
  },
  spo2: {
    category: 'vital-signs',
    loinc: [
      ['2708-6', 'Oxygen saturation in Arterial blood'],
      ['59408-5', 'Oxygen saturation in Arterial blood by Pulse oximetry'],
    ],
    components: { spo2: { unit: '%', min: 50, max: 100, step: 1 } },
  },
};

// How a UCUM unit code is shown.
export const UNIT_LABELS = { 'mm[Hg]': 'mmHg', 'mmol/L': 'mmol/L', kg: 'kg', Cel: '°C', '%': '%' };

export function newMessageId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

function base(type) {
  return { v: SCHEMA_VERSION, id: newMessageId(), type, sent_at: Date.now() };
}

export function textMessage(text) {
  return { ...base('text'), text: String(text) };
}

// file: { id, mime, size, key, iv, sha256 } (web/js/chat/files.js); extra: name, width, height,
// caption.
export function photoMessage(file, extra = {}) {
  const m = { ...base('photo'), file: { ...file } };
  for (const k of ['name', 'width', 'height', 'caption']) {
    if (extra[k] !== undefined && extra[k] !== '') m[k] = extra[k];
  }
  return m;
}

// values: { systolic: 128, diastolic: 82 } or { glucose: 6.1 }; effective: Date or ISO string.
export function measurementMessage(kind, values, effective, note) {
  const def = MEASUREMENTS[kind];
  if (!def) throw new TypeError(`unknown measurement ${kind}`);
  const components = Object.entries(def.components).map(([code, c]) => ({
    code,
    value: Number(values[code]),
    unit: c.unit,
  }));
  const m = {
    ...base('measurement'),
    measurement: {
      kind,
      effective: new Date(effective).toISOString(),
      components,
    },
  };
  if (note) m.measurement.note = String(note);
  return m;
}

// ---- validation ----

const isStr = (v, max) => typeof v === 'string' && v.length > 0 && v.length <= max;
const isInt = (v, min, max) => Number.isInteger(v) && v >= min && v <= max;

function checkFile(f) {
  if (!f || typeof f !== 'object') return 'file';
  if (!isStr(f.id, 128) || !/^[A-Za-z0-9_.-]+$/.test(f.id)) return 'file.id';
  if (!PHOTO_TYPES.includes(f.mime)) return 'file.mime';
  if (!isInt(f.size, 1, MAX_FILE_BYTES)) return 'file.size';
  if (!isStr(f.key, 64) || !B64U_RE.test(f.key) || f.key.length !== 43) return 'file.key';
  if (!isStr(f.iv, 16) || !B64U_RE.test(f.iv) || f.iv.length !== 16) return 'file.iv';
  if (!isStr(f.sha256, 64) || !B64U_RE.test(f.sha256) || f.sha256.length !== 43)
    return 'file.sha256';
  return null;
}

function checkMeasurement(m) {
  if (!m || typeof m !== 'object') return 'measurement';
  const def = MEASUREMENTS[m.kind];
  if (!def) return 'measurement.kind';
  if (typeof m.effective !== 'string' || Number.isNaN(Date.parse(m.effective))) {
    return 'measurement.effective';
  }
  const codes = Object.keys(def.components);
  if (!Array.isArray(m.components) || m.components.length !== codes.length) {
    return 'measurement.components';
  }
  for (const code of codes) {
    const c = m.components.find((x) => x && x.code === code);
    const d = def.components[code];
    if (!c) return `measurement.${code}`;
    if (c.unit !== d.unit) return `measurement.${code}.unit`;
    if (
      typeof c.value !== 'number' ||
      !Number.isFinite(c.value) ||
      c.value < d.min ||
      c.value > d.max
    ) {
      return `measurement.${code}.value`;
    }
  }
  if (m.note !== undefined && (typeof m.note !== 'string' || m.note.length > 500)) {
    return 'measurement.note';
  }
  return null;
}

// Why msg is not a valid message of this schema, or null.
export function invalid(msg) {
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return 'not an object';
  if (!Number.isInteger(msg.v) || msg.v < 1) return 'v';
  if (typeof msg.id !== 'string' || !ID_RE.test(msg.id)) return 'id';
  if (!Number.isInteger(msg.sent_at) || msg.sent_at < 0) return 'sent_at';
  switch (msg.type) {
    case 'text':
      return typeof msg.text === 'string' &&
        msg.text.trim().length > 0 &&
        msg.text.length <= MAX_TEXT
        ? null
        : 'text';
    case 'photo': {
      const why = checkFile(msg.file);
      if (why) return why;
      if (
        msg.caption !== undefined &&
        (typeof msg.caption !== 'string' || msg.caption.length > MAX_TEXT)
      ) {
        return 'caption';
      }
      if (msg.name !== undefined && (typeof msg.name !== 'string' || msg.name.length > 200))
        return 'name';
      for (const k of ['width', 'height']) {
        if (msg[k] !== undefined && !isInt(msg[k], 1, 100000)) return k;
      }
      return null;
    }
    case 'measurement':
      return checkMeasurement(msg.measurement);
    default:
      return null; // a type of a later version: kept, shown as "cannot be shown"
  }
}

export const KNOWN_TYPES = ['text', 'photo', 'measurement'];

export function encode(msg) {
  const why = invalid(msg);
  if (why) throw new TypeError(`invalid message: ${why}`);
  const bytes = te.encode(JSON.stringify(msg));
  if (bytes.length > MAX_ENCODED) throw new RangeError('message too large');
  return bytes;
}

// Plaintext of an application message → { ok: true, msg } or { ok: false, reason }.
export function parse(bytes) {
  let msg;
  try {
    msg = JSON.parse(td.decode(bytes));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const why = invalid(msg);
  return why ? { ok: false, reason: why } : { ok: true, msg };
}

// ---- FHIR R4 ----

const quantity = (value, unit) => ({
  value,
  unit: UNIT_LABELS[unit] || unit,
  system: UCUM,
  code: unit,
});
const loincConcept = (pairs) => ({
  coding: pairs.map(([code, display]) => ({ system: LOINC, code, display })),
  text: pairs[0][1],
});

// A FHIR R4 Observation for a measurement message. patient: the conversation's patient
// (pseudonym) as Observation.subject.identifier; performer: who sent it (default: the patient).
export function toObservation(
  msg,
  { patient, patientSystem = 'urn:spreekkamer:patient', performer } = {},
) {
  if (msg.type !== 'measurement' || checkMeasurement(msg.measurement)) {
    throw new TypeError('not a valid measurement message');
  }
  const m = msg.measurement;
  const def = MEASUREMENTS[m.kind];
  const subject = patient ? { identifier: { system: patientSystem, value: patient } } : undefined;
  const obs = {
    resourceType: 'Observation',
    id: msg.id,
    status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: def.category }] }],
    code: loincConcept(def.loinc),
    ...(subject ? { subject } : {}),
    effectiveDateTime: m.effective,
    issued: new Date(msg.sent_at).toISOString(),
    ...(performer || subject ? { performer: [performer || subject] } : {}),
  };
  const codes = Object.keys(def.components);
  const value = (code) => m.components.find((c) => c.code === code);
  if (codes.length === 1) {
    const c = value(codes[0]);
    obs.valueQuantity = quantity(c.value, c.unit);
  } else {
    obs.component = codes.map((code) => {
      const c = value(code);
      return {
        code: loincConcept([def.components[code].loinc]),
        valueQuantity: quantity(c.value, c.unit),
      };
    });
  }
  if (m.note) obs.note = [{ text: m.note }];
  return obs;
}
