// Photos and files of the chat, encrypted in the browser (docs/chat-messages.md "Files").
//
// Each file gets a fresh AES-256-GCM key and a random 96-bit nonce; the server stores only the
// ciphertext (docs/protocol.md §5.10: a ticket over the WebSocket, then HTTP) and the key
// travels inside the MLS message that refers to the file. The SHA-256 of the ciphertext in the
// message lets the receiver check that the server returned exactly what was uploaded.
import { MAX_FILE_BYTES } from './messages.js';
import { b64u, unb64u } from './util.js';

export class FileError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'FileError';
    this.code = code;
  }
}

export const MAX_PHOTO_BYTES = MAX_FILE_BYTES;

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

// Encrypts bytes: { ciphertext, key, iv, sha256 } (the last three base64url).
export async function encryptBytes(plain) {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt']);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, plain));
  const out = { ciphertext: ct, key: b64u(raw), iv: b64u(iv), sha256: b64u(await sha256(ct)) };
  raw.fill(0);
  return out;
}

// Checks and decrypts a ciphertext against the file description of a message.
export async function decryptBytes(ct, file) {
  const digest = b64u(await sha256(ct));
  if (digest !== file.sha256) throw new FileError('file_altered', 'the file is not the one sent');
  const raw = unb64u(file.key);
  try {
    const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64u(file.iv) }, key, ct),
    );
  } catch {
    throw new FileError('file_altered', 'the file does not decrypt');
  } finally {
    raw.fill(0);
  }
}

// Uploads and downloads ciphertext (docs/protocol.md §5.10): a ticket from the signaling
// connection (chat.file.upload / chat.file.download), then one HTTP request with it.
export class FileStore {
  constructor({ request, base = '' } = {}) {
    this.request = request; // (type, fields) => Promise of the answer, on the chat's connection
    this.base = base;
    this.cache = new Map(); // file id -> Promise<Blob> (decrypted, this page only)
  }

  async #transfer(type, fields, init) {
    const t = await this.request(type, fields);
    const res = await fetch(`${this.base}${t.path}`, {
      ...init,
      headers: { authorization: `Bearer ${t.ticket}`, ...(init.headers || {}) },
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new FileError(body.code || `http_${res.status}`, body.message);
    }
    return { t, res };
  }

  // Encrypts and uploads a Blob (a photo) for a conversation. Returns the `file` object of a
  // photo message.
  async put(conversation, blob) {
    if (!blob || !blob.size) throw new FileError('file_empty');
    if (blob.size > MAX_PHOTO_BYTES) throw new FileError('file_too_large');
    const plain = new Uint8Array(await blob.arrayBuffer());
    const enc = await encryptBytes(plain);
    plain.fill(0);
    const { t } = await this.#transfer(
      'chat.file.upload',
      { conversation, size: enc.ciphertext.length },
      {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: enc.ciphertext,
      },
    );
    return {
      id: t.file,
      mime: blob.type,
      size: blob.size,
      key: enc.key,
      iv: enc.iv,
      sha256: enc.sha256,
    };
  }

  // Downloads, checks and decrypts the file of a message: a Blob of its type.
  get(conversation, file) {
    if (!this.cache.has(file.id)) {
      const p = (async () => {
        const { res } = await this.#transfer(
          'chat.file.download',
          { conversation, file: file.id },
          { method: 'GET' },
        );
        const ct = new Uint8Array(await res.arrayBuffer());
        const plain = await decryptBytes(ct, file);
        return new Blob([plain], { type: file.mime });
      })();
      p.catch(() => this.cache.delete(file.id));
      this.cache.set(file.id, p);
    }
    return this.cache.get(file.id);
  }
}
