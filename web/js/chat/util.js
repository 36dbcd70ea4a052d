// Small helpers of the chat client: base64url (RFC 4648 §5, no padding), UTF-8, random ids,
// credential identities, a serial queue.

export const te = new TextEncoder();
export const td = new TextDecoder();

export function b64u(bytes) {
  let s = '';
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function unb64u(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new TypeError('not base64url');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function randomId(bytes = 12) {
  return b64u(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function sha256Hex(text) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', te.encode(text)));
  return [...d].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A device's credential identity: "spk1\n" + iss + "\n" + sub + "\n" + device (docs/chat.md).
export function parseIdentity(bytes) {
  const s = typeof bytes === 'string' ? bytes : td.decode(bytes);
  const parts = s.split('\n');
  if (parts.length !== 4 || parts[0] !== 'spk1') return null;
  return { iss: parts[1], sub: parts[2], device: parts[3] };
}

export const sameUser = (a, b) => !!a && !!b && a.sub === b.sub && a.iss === b.iss;

// Runs async tasks one after another. A task's failure does not stop the ones after it.
export class Serial {
  #tail = Promise.resolve();
  #depth = 0;

  run(fn) {
    this.#depth++;
    const p = this.#tail.then(fn);
    this.#tail = p.then(
      () => this.#depth--,
      () => this.#depth--,
    );
    return p;
  }

  get busy() {
    return this.#depth > 0;
  }

  // Resolves once every task queued so far has finished.
  idle() {
    return this.run(() => {});
  }
}
