// Helpers for the chat browser tests: a chat panel's messages, sending text and photos, images
// that really decoded, and the page's chat engine (window.__spk.chat).
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';

// A small PNG (solid colour, w × h), built here so the tests need no image files.
export function png(w = 32, h = 24, [r, g, b] = [200, 40, 60]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const x of buf) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set([r, g, b], y * (w * 3 + 1) + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// The panel: a locator inside which the chat panel lives.
export function messages(panel) {
  return panel.locator('[data-testid="chat-message"]');
}

// Waits until the panel can send (this device is in the conversation's group).
export async function waitReady(panel, timeout = 30000) {
  await panel.locator('[data-testid="chat-input"]').waitFor({ state: 'visible', timeout });
  const end = Date.now() + timeout;
  for (;;) {
    const st = await panel
      .evaluate(
        (el) =>
          (el.classList.contains('chat-panel') ? el : el.querySelector('.chat-panel'))?.dataset
            .state,
      )
      .catch(() => null);
    if (st === 'ready') return;
    if (Date.now() > end) throw new Error(`chat panel not ready (state ${st})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function sendText(panel, text) {
  await panel.locator('[data-testid="chat-input"]').fill(text);
  await panel.locator('[data-testid="chat-send"]').click();
  // Delivered: the own message has a seq (not pending any more).
  await panel
    .locator(`[data-testid="chat-message"][data-mine="1"]:not(.chat-pending)`, { hasText: text })
    .waitFor({ state: 'visible', timeout: 30000 });
}

export async function sendPhotoFile(panel, name = 'foto.png', buffer = png()) {
  await panel
    .locator('[data-testid="chat-file"]')
    .setInputFiles({ name, mimeType: 'image/png', buffer });
}

// Waits until a received text shows up.
export async function waitText(panel, text, timeout = 30000) {
  await panel
    .locator('[data-testid="chat-message"][data-mine="0"] [data-testid="chat-text"]', {
      hasText: text,
    })
    .waitFor({ state: 'visible', timeout });
}

// Waits until n photos (mine or received, as asked) decoded in the panel; returns their sizes.
export async function waitPhotos(panel, { mine, n = 1, timeout = 30000 }) {
  const msg = `[data-testid="chat-message"][data-type="photo"][data-mine="${mine ? 1 : 0}"]`;
  const sel = `${msg} img[data-testid="chat-photo"]`;
  const end = Date.now() + timeout;
  for (;;) {
    const sizes = await panel
      .locator(sel)
      .evaluateAll((imgs) =>
        imgs.map((i) => (i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0])),
      )
      .catch(() => []);
    const ok = sizes.filter(([w]) => w > 0);
    if (ok.length >= n) return ok;
    if (Date.now() > end)
      assert.fail(
        `expected ${n} decoded photos (${mine ? 'mine' : 'received'}), ` +
          `got ${JSON.stringify(sizes)}`,
      );
    await new Promise((r) => setTimeout(r, 150));
  }
}

export async function texts(panel, { mine } = {}) {
  const sel =
    mine === undefined
      ? '[data-testid="chat-message"] [data-testid="chat-text"]'
      : `[data-testid="chat-message"][data-mine="${mine ? 1 : 0}"] [data-testid="chat-text"]`;
  return panel.locator(sel).allInnerTexts();
}

// The chat engine's view of a conversation in a page: { inGroup, epoch, items, errors }.
export function engineState(page, conversation) {
  return page.evaluate((id) => {
    const e = window.__spk && window.__spk.chat;
    const c = e && e.get(id);
    if (!c) return null;
    return {
      inGroup: e.inGroup(id),
      epoch: c.group && !c.group.freed ? Number(c.group.epoch) : -1,
      handled: c.handled,
      allowed: c.allowed,
      errors: c.errors.slice(),
      devices: c.meta ? c.meta.devices.map((d) => `${d.sub}/${d.device}`) : [],
    };
  }, conversation);
}
