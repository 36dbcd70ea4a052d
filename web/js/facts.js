// Recorded checks and consents (fact objects, docs/protocol.md section 7) as list items.
import { h } from './dom.js';

// [i18n key, args] describing a fact; names come from the consult's participants.
export function factText(entry, f) {
  const who = (id) => {
    const p = entry.participants.find((x) => x.id === id) || entry.lobby.find((x) => x.id === id);
    return p ? p.name : id;
  };
  const [head, tail = ''] = String(f.value || '').split(':');
  switch (f.kind) {
    case 'identity_check':
      return [
        head === 'verified' ? 'fact.identity.verified' : 'fact.identity.notVerified',
        { name: who(f.subject), method: { key: `identity.method.${tail}` } },
      ];
    case 'speak_freely':
      return [head === 'yes' ? 'fact.speak.yes' : 'fact.speak.no', { name: who(f.subject) }];
    case 'consent':
      return [
        head === 'given' ? 'fact.consent.given' : 'fact.consent.refused',
        { method: { key: `consent.method.${tail}` } },
      ];
    case 'specialist':
      return ['fact.specialist', { name: f.value || f.subject, sub: f.subject }];
    default:
      return ['fact.other', { kind: f.kind, value: f.value }];
  }
}

// Renders entry.facts into ul; `user` (the signed-in user) shows their own name as recorder.
export function renderFacts(ul, entry, user) {
  const recorder = (sub) => (user && sub && sub === user.sub && user.name ? user.name : sub || '');
  if (!entry.facts.length) {
    ul.replaceChildren(h('li', { class: 'empty', text: ['console.facts.empty'] }));
    return;
  }
  ul.replaceChildren(
    ...entry.facts.map((f) =>
      h(
        'li',
        { class: `fact fact-${f.kind}`, dataset: { testid: 'fact', kind: f.kind } },
        h('span', { class: 'fact-text', text: factText(entry, f) }),
        h('span', {
          class: 'fact-meta',
          text: ['fact.meta', { by: recorder(f.recorded_by), time: { time: f.at || 0 } }],
        }),
      ),
    ),
  );
}
