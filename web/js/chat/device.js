// The chat device of this browser tab (docs/chat-client.md "Devices").
//
// A device is one MLS member with its own group states. Two tabs must never run the same
// device at once: both would use the same ratchet keys (the same AES-GCM key and nonce for two
// messages) and their saved states would overwrite each other. So the device ids of this
// browser are kept in localStorage, and a tab takes the first one whose Web Lock it can hold
// for as long as it lives; a second tab gets the next id (a second device of the same user,
// which staff add to the conversations like any other device).

const LIST_KEY = 'spk.chat.devices';
const LOCK_PREFIX = 'spk-chat-device:';
const ID_RE = /^web-[A-Za-z0-9_-]{8,40}$/;

function loadIds(storage) {
  try {
    const list = JSON.parse(storage.getItem(LIST_KEY) || '[]');
    return Array.isArray(list) ? list.filter((x) => typeof x === 'string' && ID_RE.test(x)) : [];
  } catch {
    return [];
  }
}

function saveIds(storage, ids) {
  try {
    storage.setItem(LIST_KEY, JSON.stringify(ids));
  } catch {
    /* storage unavailable: this tab's device lasts as long as the page */
  }
}

function newId() {
  const b = crypto.getRandomValues(new Uint8Array(9));
  return `web-${btoa(String.fromCharCode(...b))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')}`;
}

// Holds the lock `name` until release() is called; resolves false when another tab has it.
function tryLock(locks, name) {
  return new Promise((resolve) => {
    let release;
    const held = new Promise((r) => (release = r));
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(release);
        return held;
      })
      .catch(() => resolve(false));
  });
}

// Returns { id, release }: the device this tab runs until release() (or the page goes away).
export async function claimDevice({
  storage = globalThis.localStorage,
  locks = globalThis.navigator?.locks,
} = {}) {
  const ids = storage ? loadIds(storage) : [];
  if (!locks) {
    // No Web Locks: one device per browser, and the page must not be open twice.
    if (!ids.length) ids.push(newId());
    if (storage) saveIds(storage, ids);
    return { id: ids[0], release: () => {} };
  }
  for (const id of ids) {
    const release = await tryLock(locks, LOCK_PREFIX + id);
    if (release) return { id, release };
  }
  for (;;) {
    const id = newId();
    const release = await tryLock(locks, LOCK_PREFIX + id);
    if (!release) continue;
    const now = storage ? loadIds(storage) : [];
    now.push(id);
    if (storage) saveIds(storage, now.slice(-16));
    return { id, release };
  }
}
