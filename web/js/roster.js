// Participant list shared by the patient page and the console.
import { h } from './dom.js';

const STATE_ORDER = { admitted: 0, lobby: 1, left: 2, denied: 3 };

export function initials(name) {
  const parts = String(name || '?')
    .replace(/^(dr|drs|mr|mw|dhr)\.?\s+/i, '')
    .split(/\s+/)
    .filter(Boolean);
  if (!parts.length) return '?';
  const first = parts[0][0];
  const last = parts.length > 1 ? parts[parts.length - 1][0] : '';
  return (first + last).toUpperCase();
}

export function stateKey(p) {
  if (p.state === 'admitted' && p.online === false) return 'participant.offline';
  return `participant.state.${p.state}`;
}

// Renders participants into a <ul>. extra(p) may return nodes (buttons) for a participant.
export function renderRoster(ul, participants, ownId, extra = null) {
  if (!ul) return;
  const list = (participants || [])
    .filter((p) => p && p.state !== 'denied')
    .slice()
    .sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9));
  ul.replaceChildren(
    ...list.map((p) =>
      h(
        'li',
        {
          class: `roster-item state-${p.state}${p.online === false ? ' is-offline' : ''}`,
          dataset: { testid: 'roster-item', participant: p.id, state: p.state, role: p.role },
        },
        h('span', { class: `avatar role-${p.role}`, 'aria-hidden': 'true', raw: initials(p.name) }),
        h(
          'span',
          { class: 'who' },
          h('span', { class: 'name', dataset: { testid: 'roster-name' }, raw: p.name }),
          p.id === ownId ? h('span', { class: 'self', text: ['consult.roster.self'] }) : null,
          h('span', { class: 'role', text: [`role.${p.role}`] }),
        ),
        h('span', { class: `badge badge-${p.state}`, text: [stateKey(p)] }),
        extra ? extra(p) : null,
      ),
    ),
  );
  if (!list.length) {
    ul.replaceChildren(h('li', { class: 'empty', text: ['consult.roster.empty'] }));
  }
}
