// The console's list of open consults.
import * as i18n from './i18n.js';
import { h } from './dom.js';

export function consultTitle(entry) {
  return entry.consult.title || i18n.t('console.detail.untitled');
}

// "(2) Console – …": patients waiting in the consults this console follows.
export function updateTitle(entries) {
  const base = i18n.t('console.doctitle');
  let waiting = 0;
  for (const e of entries) waiting += e.lobby.length;
  document.title = waiting ? `(${waiting}) ${base}` : base;
}

// entries: consult entries in display order; emptyKey: message when there are none.
export function renderConsultList(ul, entries, { selected, emptyKey, onSelect }) {
  if (!entries.length) {
    ul.replaceChildren(h('li', { class: 'empty', text: [emptyKey] }));
    return;
  }
  ul.replaceChildren(
    ...entries.map((e) => {
      const c = e.consult;
      const waiting = e.lobby.length;
      return h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: 'consult-item',
            'aria-current': c.id === selected ? 'true' : null,
            dataset: { testid: 'consult-item', consult: c.id },
            on: { click: () => onSelect(c.id) },
          },
          h('span', { class: 'consult-item-title', raw: consultTitle(e) }),
          h(
            'span',
            { class: 'consult-item-meta' },
            h('span', { class: 'pseudonym', raw: c.patient || '' }),
            c.created_at
              ? h('span', { text: ['console.consults.created', { time: { time: c.created_at } }] })
              : null,
          ),
          e.joined
            ? h('span', { class: 'badge badge-admitted', text: ['console.consults.joined'] })
            : null,
          waiting
            ? h('span', {
                class: 'badge badge-lobby',
                dataset: { testid: 'consult-waiting' },
                text: ['console.consults.waiting', { n: waiting }],
              })
            : null,
        ),
      );
    }),
  );
}
