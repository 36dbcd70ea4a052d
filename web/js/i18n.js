// Translations: Dutch by default, English selectable; the choice is kept in localStorage.
// Elements carry data-i18n="key" (text), data-i18n-args='{"name":"…"}' (parameters) and
// data-i18n-attr="placeholder:key;aria-label:key" (attributes); apply() re-translates them.

const STORAGE_KEY = 'spk.lang';
export const LANGUAGES = ['nl', 'en'];

const catalogs = {};
let lang = 'nl';
const listeners = new Set();

function storedLanguage() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.includes(v) ? v : null;
  } catch {
    return null;
  }
}

async function loadCatalog(code) {
  const url = new URL(`../i18n/${code}.json`, import.meta.url);
  const res = await fetch(url, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`i18n ${code}: HTTP ${res.status}`);
  catalogs[code] = await res.json();
}

export async function init() {
  await Promise.all(LANGUAGES.map((code) => loadCatalog(code).catch((err) => console.error(err))));
  lang = storedLanguage() || 'nl';
  apply(document);
  bindSwitches(document);
}

export function language() {
  return lang;
}

export function setLanguage(code) {
  if (!LANGUAGES.includes(code)) return;
  lang = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    /* storage may be unavailable (private mode); the choice then lasts for this page */
  }
  apply(document);
  for (const fn of listeners) fn(code);
}

export function onLanguageChange(fn) {
  listeners.add(fn);
}

function lookup(code, key) {
  const cat = catalogs[code];
  return cat && Object.prototype.hasOwnProperty.call(cat, key) ? cat[key] : undefined;
}

function formatValue(v) {
  if (v && typeof v === 'object' && 'time' in v) {
    const d = new Date(Number(v.time) * 1000);
    const opts = v.date
      ? { dateStyle: 'medium', timeStyle: 'short' }
      : { hour: '2-digit', minute: '2-digit' };
    return new Intl.DateTimeFormat(lang === 'nl' ? 'nl-NL' : 'en-GB', opts).format(d);
  }
  if (v && typeof v === 'object' && 'key' in v) return t(v.key, v.args);
  return String(v ?? '');
}

export function t(key, args = {}) {
  let s = lookup(lang, key);
  if (s === undefined) s = lookup('nl', key);
  if (s === undefined) return key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in args ? formatValue(args[name]) : m));
}

export function has(key) {
  return lookup(lang, key) !== undefined || lookup('nl', key) !== undefined;
}

// Sets an element's text to a translated string and remembers the key for language changes.
export function setText(el, key, args) {
  if (!el) return;
  if (!key) {
    el.removeAttribute('data-i18n');
    el.removeAttribute('data-i18n-args');
    el.textContent = '';
    return;
  }
  el.setAttribute('data-i18n', key);
  if (args && Object.keys(args).length) el.setAttribute('data-i18n-args', JSON.stringify(args));
  else el.removeAttribute('data-i18n-args');
  el.textContent = t(key, args);
}

export function setAttr(el, attr, key, args) {
  const pairs = (el.getAttribute('data-i18n-attr') || '')
    .split(';')
    .filter((p) => p && !p.startsWith(`${attr}:`));
  pairs.push(`${attr}:${key}`);
  el.setAttribute('data-i18n-attr', pairs.join(';'));
  el.setAttribute(attr, t(key, args));
}

function parseArgs(el) {
  const raw = el.getAttribute('data-i18n-args');
  if (!raw) return {};
  try {
    return JSON.parse(raw);
  } catch {
    return {};
  }
}

export function apply(root = document) {
  document.documentElement.lang = lang;
  const scope = root.querySelectorAll ? root : document;
  for (const el of scope.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.getAttribute('data-i18n'), parseArgs(el));
  }
  for (const el of scope.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.getAttribute('data-i18n-attr').split(';')) {
      const idx = pair.indexOf(':');
      if (idx > 0) el.setAttribute(pair.slice(0, idx), t(pair.slice(idx + 1)));
    }
  }
  const title = document.querySelector('title[data-i18n]');
  if (title) document.title = title.textContent;
  for (const btn of document.querySelectorAll('[data-lang]')) {
    btn.setAttribute('aria-pressed', String(btn.getAttribute('data-lang') === lang));
  }
}

function bindSwitches(root) {
  for (const btn of root.querySelectorAll('[data-lang]')) {
    btn.addEventListener('click', () => setLanguage(btn.getAttribute('data-lang')));
  }
}

// Dutch/English message for a protocol error code (docs/protocol.md section 3) or a local one.
export function errorKey(err) {
  const code = (err && err.code) || 'internal';
  const key = `error.${code}`;
  return has(key) ? [key, {}] : ['error.unknown', { code }];
}

export function errorText(err) {
  const [key, args] = errorKey(err);
  return t(key, args);
}

export function setError(el, err) {
  if (!el) return;
  if (!err) {
    setText(el, null);
    el.hidden = true;
    return;
  }
  const [key, args] = errorKey(err);
  setText(el, key, args);
  el.hidden = false;
}
