// Self-measurements: the patient's form, and the console's table and plot over time (SVG drawn
// here, no library). The messages are typed messages (messages.js, docs/chat-messages.md).
import * as i18n from '../i18n.js';
import { h, show, announce } from '../dom.js';
import { MEASUREMENTS, UNIT_LABELS, measurementMessage } from './messages.js';

const SVG = 'http://www.w3.org/2000/svg';
let forms = 0;

function fmt(value, step) {
  const decimals = step < 1 ? 1 : 0;
  return new Intl.NumberFormat(i18n.language() === 'nl' ? 'nl-NL' : 'en-GB', {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  }).format(value);
}

function value(m, code) {
  const c = m.components.find((x) => x.code === code);
  return c ? c.value : NaN;
}

// "128/82 mmHg" or "6,4 mmol/L".
export function valueText(m) {
  const def = MEASUREMENTS[m.kind];
  const codes = Object.keys(def.components);
  const unit = UNIT_LABELS[def.components[codes[0]].unit];
  const nums = codes.map((c) => fmt(value(m, c), def.components[c].step));
  return `${nums.join('/')} ${unit}`;
}

// "Bloeddruk 128/82 mmHg (1 dec. 2026 08:30)".
export function measurementText(m) {
  const when = i18n.t('chat.at', {
    time: { time: Math.floor(Date.parse(m.effective) / 1000), date: true },
  });
  const note = m.note ? ` — ${m.note}` : '';
  return `${i18n.t(`measure.kind.${m.kind}`)} ${valueText(m)} (${when})${note}`;
}

function localInputValue(d) {
  const p = (n) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${day}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// The patient's form: kind, value(s), time, optional note → a measurement message.
export class MeasurementForm {
  constructor(root, { onSubmit }) {
    const n = ++forms;
    this.onSubmit = onSubmit;
    this.kind = h(
      'select',
      {
        id: `measure-kind-${n}`,
        dataset: { testid: 'measure-kind' },
        on: { change: () => this.#fields() },
      },
      ...Object.keys(MEASUREMENTS).map((k) =>
        h('option', { value: k, text: [`measure.kind.${k}`] }),
      ),
    );
    this.values = h('div', { class: 'measure-values' });
    this.when = h('input', {
      id: `measure-when-${n}`,
      type: 'datetime-local',
      required: true,
      dataset: { testid: 'measure-when' },
    });
    this.note = h('input', {
      id: `measure-note-${n}`,
      type: 'text',
      maxlength: '500',
      autocomplete: 'off',
      dataset: { testid: 'measure-note' },
    });
    this.error = h('p', {
      class: 'notice notice-error',
      role: 'alert',
      hidden: true,
      dataset: { testid: 'measure-error' },
    });
    this.n = n;
    const form = h(
      'form',
      { class: 'form measure-form', novalidate: true, on: { submit: (ev) => this.#submit(ev) } },
      h(
        'div',
        { class: 'field' },
        h('label', { for: this.kind.id, text: ['measure.kind'] }),
        this.kind,
      ),
      this.values,
      h(
        'div',
        { class: 'field' },
        h('label', { for: this.when.id, text: ['measure.when'] }),
        this.when,
      ),
      h(
        'div',
        { class: 'field' },
        h('label', { for: this.note.id, text: ['measure.note'] }),
        this.note,
      ),
      this.error,
      h('button', {
        type: 'submit',
        class: 'btn btn-primary',
        dataset: { testid: 'measure-submit' },
        text: ['measure.submit'],
      }),
    );
    root.replaceChildren(form);
    this.form = form;
    this.#fields();
    this.when.value = localInputValue(new Date());
  }

  #fields() {
    const def = MEASUREMENTS[this.kind.value];
    this.inputs = {};
    this.values.replaceChildren(
      ...Object.entries(def.components).map(([code, c]) => {
        const input = h('input', {
          id: `measure-${code}-${this.n}`,
          type: 'number',
          inputmode: 'decimal',
          min: String(c.min),
          max: String(c.max),
          step: String(c.step),
          required: true,
          dataset: { testid: `measure-${code}` },
        });
        this.inputs[code] = input;
        return h(
          'div',
          { class: 'field' },
          h('label', {
            for: input.id,
            text: [
              'measure.valueLabel',
              { what: { key: `measure.part.${code}` }, unit: UNIT_LABELS[c.unit] },
            ],
          }),
          input,
        );
      }),
    );
  }

  async #submit(ev) {
    ev.preventDefault();
    const kind = this.kind.value;
    const def = MEASUREMENTS[kind];
    const values = {};
    for (const [code, c] of Object.entries(def.components)) {
      const input = this.inputs[code];
      const v = Number(String(input.value).replace(',', '.'));
      if (input.value === '' || !Number.isFinite(v) || v < c.min || v > c.max) {
        input.setAttribute('aria-invalid', 'true');
        i18n.setText(this.error, 'measure.range', {
          what: { key: `measure.part.${code}` },
          min: fmt(c.min, c.step),
          max: fmt(c.max, c.step),
          unit: UNIT_LABELS[c.unit],
        });
        show(this.error, true);
        input.focus();
        return;
      }
      input.removeAttribute('aria-invalid');
      values[code] = v;
    }
    const when = new Date(this.when.value);
    if (Number.isNaN(when.getTime())) {
      i18n.setText(this.error, 'measure.whenRequired');
      show(this.error, true);
      this.when.focus();
      return;
    }
    show(this.error, false);
    const btn = this.form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      await this.onSubmit(
        measurementMessage(kind, values, when, this.note.value.trim() || undefined),
      );
      for (const input of Object.values(this.inputs)) input.value = '';
      this.note.value = '';
      announce('measure.sent');
      Object.values(this.inputs)[0].focus();
    } catch (err) {
      i18n.setError(this.error, err);
    } finally {
      btn.disabled = false;
    }
  }
}

// ---- the console's view: a table and a plot per kind ----

// items: history items of a conversation; returns measurements by kind, oldest first.
export function collect(items) {
  const by = new Map();
  for (const it of items) {
    const m = it.msg;
    if (!m || m.type !== 'measurement') continue;
    const list = by.get(m.measurement.kind) || [];
    list.push({ ...m.measurement, id: m.id, from: it.from });
    by.set(m.measurement.kind, list);
  }
  for (const list of by.values())
    list.sort((a, b) => Date.parse(a.effective) - Date.parse(b.effective));
  return by;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// A line plot of one kind over time: one line per component (systolic and diastolic together).
export function plot(kind, list, { width = 440, height = 200 } = {}) {
  const def = MEASUREMENTS[kind];
  const codes = Object.keys(def.components);
  const pad = { l: 44, r: 10, t: 12, b: 30 };
  const times = list.map((m) => Date.parse(m.effective));
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 === t0) {
    t0 -= 3600e3;
    t1 += 3600e3;
  }
  const vals = list.flatMap((m) => codes.map((c) => value(m, c)));
  let v0 = Math.min(...vals);
  let v1 = Math.max(...vals);
  const span = Math.max(v1 - v0, def.components[codes[0]].step * 10);
  v0 -= span * 0.15;
  v1 += span * 0.15;
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - ((v - v0) / (v1 - v0)) * (height - pad.t - pad.b);
  const titleId = `plot-title-${kind}-${++forms}`;
  const unit = UNIT_LABELS[def.components[codes[0]].unit];
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'measure-plot',
    role: 'img',
    'aria-labelledby': titleId,
    'data-testid': 'measure-plot',
    'data-kind': kind,
    preserveAspectRatio: 'xMidYMid meet',
  });
  const title = svg('title', { id: titleId });
  title.textContent = i18n.t('measure.plotTitle', {
    kind: { key: `measure.kind.${kind}` },
    n: list.length,
    unit,
  });
  root.append(title);
  // Axes, three horizontal grid lines with values, first and last date.
  const axes = svg('g', { class: 'plot-axes' });
  for (let i = 0; i <= 2; i++) {
    const v = v0 + ((v1 - v0) * i) / 2;
    const yy = y(v);
    axes.append(svg('line', { x1: pad.l, x2: width - pad.r, y1: yy, y2: yy, class: 'plot-grid' }));
    const label = svg('text', {
      x: pad.l - 6,
      y: yy + 4,
      'text-anchor': 'end',
      class: 'plot-label',
    });
    label.textContent = fmt(v, def.components[codes[0]].step);
    axes.append(label);
  }
  const fmtDate = (t) => i18n.t('chat.at', { time: { time: Math.floor(t / 1000), date: true } });
  for (const [t, anchor] of [
    [t0, 'start'],
    [t1, 'end'],
  ]) {
    const label = svg('text', {
      x: x(t),
      y: height - 10,
      'text-anchor': anchor,
      class: 'plot-label',
    });
    label.textContent = fmtDate(t);
    axes.append(label);
  }
  root.append(axes);
  codes.forEach((code, i) => {
    const pts = list.map((m) => [x(Date.parse(m.effective)), y(value(m, code))]);
    const g = svg('g', { class: `plot-series plot-series-${i}`, 'data-code': code });
    g.append(
      svg('polyline', {
        points: pts.map((p) => p.map((n) => n.toFixed(1)).join(',')).join(' '),
        class: 'plot-line',
      }),
    );
    for (const [px, py] of pts)
      g.append(
        svg('circle', { cx: px.toFixed(1), cy: py.toFixed(1), r: 3.5, class: 'plot-point' }),
      );
    root.append(g);
  });
  return root;
}

function table(kind, list) {
  const def = MEASUREMENTS[kind];
  const codes = Object.keys(def.components);
  return h(
    'table',
    { class: 'measure-table', dataset: { testid: 'measure-table', kind } },
    h('caption', { text: [`measure.kind.${kind}`] }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', text: ['measure.when'] }),
        ...codes.map((c) =>
          h('th', {
            scope: 'col',
            text: [
              'measure.colUnit',
              { what: { key: `measure.part.${c}` }, unit: UNIT_LABELS[def.components[c].unit] },
            ],
          }),
        ),
        h('th', { scope: 'col', text: ['measure.note'] }),
      ),
    ),
    h(
      'tbody',
      {},
      ...list
        .slice()
        .reverse()
        .map((m) =>
          h(
            'tr',
            { dataset: { testid: 'measure-row' } },
            h('th', {
              scope: 'row',
              text: [
                'chat.at',
                { time: { time: Math.floor(Date.parse(m.effective) / 1000), date: true } },
              ],
            }),
            ...codes.map((c) =>
              h('td', { class: 'num', raw: fmt(value(m, c), def.components[c].step) }),
            ),
            h('td', { raw: m.note || '' }),
          ),
        ),
    ),
  );
}

// Which line is which, when a plot has more than one (blood pressure).
function legend(kind) {
  const codes = Object.keys(MEASUREMENTS[kind].components);
  if (codes.length < 2) return null;
  return h(
    'ul',
    { class: 'measure-legend', 'aria-hidden': 'true' },
    ...codes.map((c, i) => h('li', { class: `series-${i}`, text: [`measure.part.${c}`] })),
  );
}

// Renders every kind that has measurements: a heading, the plot, the table.
export function renderMeasurements(root, items) {
  const by = collect(items);
  if (!by.size) {
    root.replaceChildren(h('p', { class: 'hint', text: ['measure.none'] }));
    return;
  }
  const out = [];
  for (const kind of Object.keys(MEASUREMENTS)) {
    const list = by.get(kind);
    if (!list) continue;
    out.push(
      h(
        'section',
        { class: 'measure-kind', dataset: { testid: 'measure-kind-section', kind } },
        h('h3', { class: 'h4', text: [`measure.kind.${kind}`] }),
        list.length > 1 ? plot(kind, list) : null,
        list.length > 1 ? legend(kind) : null,
        table(kind, list),
      ),
    );
  }
  root.replaceChildren(...out);
}
