// Small DOM helpers shared by the pages.
import { setText } from './i18n.js';

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// h('li', { class: 'x', dataset: { testid: 'y' }, text: ['key', args] }, child, …)
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') setText(el, v[0], v[1]);
    else if (k === 'raw') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function show(el, visible) {
  if (el) el.hidden = !visible;
}

// Politely announces a translated message to screen readers.
export function announce(key, args) {
  const el = document.getElementById('announcer');
  if (!el) return;
  setText(el, null);
  // A fresh text node after a tick makes repeated messages announce again.
  setTimeout(() => setText(el, key, args), 50);
}

// Sets the text and state of a two-step confirmation button; returns true on the second press.
export function confirmStep(btn, idleKey, confirmKey, timeoutMs = 5000) {
  if (btn.dataset.confirming === '1') {
    delete btn.dataset.confirming;
    clearTimeout(Number(btn.dataset.timer));
    setText(btn, idleKey);
    return true;
  }
  btn.dataset.confirming = '1';
  setText(btn, confirmKey);
  btn.dataset.timer = String(
    setTimeout(() => {
      delete btn.dataset.confirming;
      setText(btn, idleKey);
    }, timeoutMs),
  );
  return false;
}

export async function copyText(text, fallbackInput) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackInput) {
      fallbackInput.focus();
      fallbackInput.select();
      try {
        return document.execCommand('copy');
      } catch {
        return false;
      }
    }
    return false;
  }
}
