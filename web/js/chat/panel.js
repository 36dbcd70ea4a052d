// A conversation's messages and the composer (text, a photo from a file or the camera): the
// chat panel of the consult view, the e-consult page and the console's conversations.
//
//   const panel = new ChatPanel(container, { engine, files, nameOf, label: 'chat.title' });
//   panel.show(conversationId);
import * as i18n from '../i18n.js';
import { h, show } from '../dom.js';
import { MAX_TEXT, PHOTO_TYPES, photoMessage, textMessage } from './messages.js';
import { MAX_PHOTO_BYTES } from './files.js';
import { measurementText } from './measurements.js';

let panels = 0;

export class ChatPanel {
  constructor(
    root,
    { engine, files, nameOf = null, titleKey = 'chat.title', camera = true, queue = false } = {},
  ) {
    this.root = root;
    // queue: before the conversation is known (the practice has not added this device yet)
    // messages wait, shown as pending, and go out once show(id) is called: in the engine's
    // store when `parking` ({ put(msg), list(), flush(id) }) is set, else in memory.
    this.queue = queue;
    this.early = [];
    this.parking = null;
    this.engine = engine;
    this.files = files;
    this.nameOf = nameOf;
    this.conv = null;
    this.urls = new Map(); // file id -> object URL
    this.rendered = new Map(); // item key -> <li>
    this.stream = null;
    const n = ++panels;
    const ids = { input: `chat-input-${n}`, file: `chat-file-${n}`, title: `chat-title-${n}` };
    this.log = h('ol', {
      class: 'chat-log',
      role: 'log',
      'aria-live': 'polite',
      'aria-relevant': 'additions',
      'aria-labelledby': ids.title,
      tabindex: '0',
      dataset: { testid: 'chat-log' },
    });
    this.status = h('p', {
      class: 'chat-status hint',
      dataset: { testid: 'chat-status' },
      hidden: true,
    });
    this.error = h('p', {
      class: 'notice notice-error',
      role: 'alert',
      dataset: { testid: 'chat-error' },
      hidden: true,
    });
    this.input = h('textarea', {
      id: ids.input,
      rows: '2',
      maxlength: String(MAX_TEXT),
      autocomplete: 'off',
      dataset: { testid: 'chat-input' },
    });
    this.fileInput = h('input', {
      id: ids.file,
      type: 'file',
      accept: PHOTO_TYPES.join(','),
      capture: 'environment',
      class: 'visually-hidden',
      tabindex: '-1',
      dataset: { testid: 'chat-file' },
      on: { change: () => this.#onFile() },
    });
    this.sendBtn = h('button', {
      type: 'submit',
      class: 'btn btn-primary',
      dataset: { testid: 'chat-send' },
      text: ['chat.send'],
    });
    this.photoBtn = h('button', {
      type: 'button',
      class: 'btn btn-secondary',
      dataset: { testid: 'chat-photo' },
      text: ['chat.photo.file'],
      on: { click: () => this.fileInput.click() },
    });
    this.cameraBtn = camera
      ? h('button', {
          type: 'button',
          class: 'btn btn-secondary',
          dataset: { testid: 'chat-camera' },
          text: ['chat.photo.camera'],
          on: { click: () => this.#openCamera() },
        })
      : null;
    this.cameraBox = this.#cameraBox();
    this.form = h(
      'form',
      { class: 'chat-compose', novalidate: true, on: { submit: (ev) => this.#onSubmit(ev) } },
      h('label', { for: ids.input, class: 'visually-hidden', text: ['chat.input'] }),
      this.input,
      h('div', { class: 'chat-compose-actions' }, this.photoBtn, this.cameraBtn, this.sendBtn),
      this.fileInput,
    );
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.heading = h('h2', { id: ids.title, class: 'h3', text: [titleKey] });
    root.replaceChildren(
      this.heading,
      this.status,
      this.log,
      this.error,
      this.cameraBox,
      this.form,
    );
    root.classList.add('chat-panel');
    root.dataset.testid = root.dataset.testid || 'chat-panel';
    this.offs = [
      engine.on('message', (ev) => ev.conversation === this.conv && this.#onItem(ev)),
      engine.on('conversation', (ev) => ev.conversation === this.conv && this.renderStatus()),
      engine.on('ready', () => this.renderStatus()),
    ];
    i18n.onLanguageChange(() => this.#rerender());
  }

  // Shows a conversation (null: nothing, the composer disabled).
  async show(id) {
    if (this.conv === id) {
      this.renderStatus();
      return;
    }
    this.conv = id;
    this.root.dataset.conversation = id || '';
    this.log.replaceChildren();
    this.rendered.clear();
    this.renderStatus();
    if (!id) return;
    const items = await this.engine.history(id).catch(() => []);
    if (this.conv !== id) return;
    for (const item of items) this.#render(item);
    this.#scroll();
    if (this.parking) await this.parking.flush(id).catch((err) => this.#setError(err));
    const early = this.early.splice(0);
    for (const msg of early) {
      await this.engine.send(id, msg).catch((err) => this.#setError(err));
    }
  }

  // Shows the messages waiting for the conversation (after a reload of the page).
  async showParked() {
    if (this.conv || !this.parking) return;
    for (const item of await this.parking.list()) this.#render(item);
    this.#scroll();
  }

  // Sends a typed message, or keeps it until the conversation is known (queue).
  async sendMessage(msg) {
    if (this.conv) return this.engine.send(this.conv, msg);
    if (!this.queue) throw Object.assign(new Error('no conversation'), { code: 'not_in_group' });
    let item;
    if (this.parking) {
      item = await this.parking.put(msg);
    } else {
      this.early.push(msg);
      item = {
        key: `early|${msg.id}`,
        seq: 0,
        at: Date.now(),
        mine: true,
        msg,
        pending: true,
        from: {},
      };
    }
    this.#render(item);
    this.#scroll();
    return item;
  }

  // The line above the messages: not in the conversation yet, access ended, sending paused.
  renderStatus() {
    const c = this.conv ? this.engine.get(this.conv) : null;
    let key = null;
    // Waiting messages are kept in the encrypted store, which needs the chat signed in: until
    // then nothing can be written.
    const signingIn = !this.conv && this.queue && !this.engine.attached;
    if (signingIn) key = 'chat.status.offline';
    else if (!this.conv)
      key = this.idleKey || (this.queue ? 'chat.status.waitPractice' : 'chat.status.none');
    else if (!this.engine.attached) key = 'chat.status.offline';
    else if (c && !c.allowed) key = 'chat.status.ended';
    else if (!this.engine.inGroup(this.conv)) key = 'chat.status.joining';
    i18n.setText(this.status, key);
    show(this.status, !!key);
    const ended = !!(c && !c.allowed);
    this.root.dataset.state = key ? key.split('.').pop() : 'ready';
    for (const el of [this.input, this.sendBtn, this.photoBtn, this.cameraBtn]) {
      if (el) el.disabled = (!this.conv && !this.queue) || signingIn || ended;
    }
  }

  nameFor(item) {
    if (item.mine) return i18n.t('chat.you');
    const n = this.nameOf ? this.nameOf(item.from, this.conv) : '';
    if (n) return n;
    const c = this.engine.get(this.conv);
    const m =
      c && c.meta
        ? (c.meta.members || []).find((x) => x.sub === item.from.sub && x.iss === item.from.iss)
        : null;
    return m ? m.name : item.from.sub;
  }

  #onItem({ item, replaced }) {
    const old = [...this.rendered.entries()].find(
      ([, li]) => li.dataset.id === (item.msg && item.msg.id),
    );
    if (replaced && old) {
      const li = this.#build(item);
      old[1].replaceWith(li);
      this.rendered.delete(old[0]);
      this.rendered.set(item.key, li);
      return;
    }
    this.#render(item);
    this.#scroll();
  }

  #render(item) {
    if (this.rendered.has(item.key)) return;
    const li = this.#build(item);
    this.rendered.set(item.key, li);
    // Keep seq order; pending (unsent) messages stay at the end.
    const after = [...this.log.children].find(
      (x) => Number(x.dataset.seq || Infinity) > (item.seq || Infinity),
    );
    if (after) this.log.insertBefore(li, after);
    else this.log.append(li);
  }

  #build(item) {
    const type = item.msg ? item.msg.type : 'invalid';
    const li = h('li', {
      class: `chat-msg${item.mine ? ' chat-mine' : ''}${item.pending ? ' chat-pending' : ''}`,
      dataset: {
        testid: 'chat-message',
        type,
        mine: item.mine ? '1' : '0',
        seq: item.seq ? String(item.seq) : '',
        id: item.msg ? item.msg.id : '',
      },
    });
    const meta = h(
      'p',
      { class: 'chat-meta' },
      h('span', { class: 'chat-from', dataset: { testid: 'chat-from' }, raw: this.nameFor(item) }),
      ' ',
      h('span', {
        class: 'chat-time',
        text: [
          'chat.at',
          {
            time: { time: Math.floor((item.msg ? item.msg.sent_at : item.at) / 1000), date: true },
          },
        ],
      }),
      item.pending ? h('span', { class: 'chat-flag', text: ['chat.pending'] }) : null,
      item.failed
        ? h('span', {
            class: 'chat-flag chat-warn',
            dataset: { testid: 'chat-failed' },
            text: ['chat.failed'],
          })
        : null,
      item.mismatch ? h('span', { class: 'chat-flag chat-warn', text: ['chat.mismatch'] }) : null,
    );
    li.append(meta, this.#body(item));
    return li;
  }

  #body(item) {
    const m = item.msg;
    if (!m) return h('p', { class: 'chat-text chat-invalid', text: ['chat.invalid'] });
    switch (m.type) {
      case 'text':
        return h('p', { class: 'chat-text', dataset: { testid: 'chat-text' }, raw: m.text });
      case 'photo':
        return this.#photo(item);
      case 'measurement':
        return h('p', {
          class: 'chat-text chat-measurement',
          dataset: { testid: 'chat-measurement', kind: m.measurement.kind },
          raw: measurementText(m.measurement),
        });
      default:
        return h('p', { class: 'chat-text chat-invalid', text: ['chat.unknown'] });
    }
  }

  #photo(item) {
    const m = item.msg;
    const fig = h('figure', { class: 'chat-photo', dataset: { testid: 'chat-photo-figure' } });
    const status = h('span', { class: 'hint', text: ['chat.photo.loading'] });
    fig.append(status);
    if (m.caption) fig.append(h('figcaption', { raw: m.caption }));
    const alt = m.caption
      ? i18n.t('chat.photo.altCaption', { name: this.nameFor(item), caption: m.caption })
      : i18n.t('chat.photo.alt', { name: this.nameFor(item) });
    this.#photoUrl(m.file)
      .then((url) => {
        const img = h('img', {
          src: url,
          alt,
          width: m.width || null,
          height: m.height || null,
          dataset: { testid: 'chat-photo' },
        });
        const link = h(
          'a',
          { href: url, target: '_blank', rel: 'noopener', class: 'chat-photo-link' },
          img,
        );
        status.replaceWith(link);
      })
      .catch((err) => {
        status.replaceWith(
          h('span', {
            class: 'notice-error',
            dataset: { testid: 'chat-photo-error' },
            text: [`chat.photo.${err.code === 'file_altered' ? 'altered' : 'failed'}`],
          }),
        );
      });
    return fig;
  }

  #photoUrl(file) {
    if (this.urls.has(file.id)) return this.urls.get(file.id);
    const p = this.files.get(this.conv, file).then((blob) => URL.createObjectURL(blob));
    p.catch(() => this.urls.delete(file.id));
    this.urls.set(file.id, p);
    return p;
  }

  #rerender() {
    for (const [key, li] of this.rendered) {
      const item = (this.engine.get(this.conv)?.items || []).find((x) => x.key === key);
      if (item) {
        const fresh = this.#build(item);
        li.replaceWith(fresh);
        this.rendered.set(key, fresh);
      }
    }
    this.renderStatus();
  }

  #scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  #setError(err) {
    i18n.setError(this.error, err);
  }

  async #onSubmit(ev) {
    ev.preventDefault();
    const text = this.input.value.trim();
    if (!text || (!this.conv && !this.queue)) return;
    this.#setError(null);
    try {
      await this.sendMessage(textMessage(text));
      this.input.value = '';
    } catch (err) {
      this.#setError(err);
    }
    this.input.focus();
  }

  async #onFile() {
    const f = this.fileInput.files && this.fileInput.files[0];
    this.fileInput.value = '';
    if (f) await this.sendPhoto(f, { name: f.name });
  }

  // Encrypts, uploads and sends a photo (a Blob of an image type).
  async sendPhoto(blob, extra = {}) {
    if (!this.conv) {
      this.#setError({ code: 'not_in_group' });
      return;
    }
    this.#setError(null);
    if (!PHOTO_TYPES.includes(blob.type)) {
      this.#setError({ code: 'photo_type' });
      return;
    }
    if (blob.size > MAX_PHOTO_BYTES) {
      this.#setError({ code: 'file_too_large' });
      return;
    }
    const busy = [this.photoBtn, this.cameraBtn].filter(Boolean);
    busy.forEach((b) => (b.disabled = true));
    try {
      const size = await imageSize(blob).catch(() => ({}));
      const file = await this.files.put(this.conv, blob);
      const caption = this.input.value.trim();
      await this.sendMessage(
        photoMessage(file, { ...size, ...extra, caption: caption || undefined }),
      );
      if (caption) this.input.value = '';
    } catch (err) {
      this.#setError(err);
    } finally {
      busy.forEach((b) => (b.disabled = false));
      this.renderStatus();
    }
  }

  // ---- camera ----

  #cameraBox() {
    this.video = h('video', {
      autoplay: true,
      muted: true,
      playsinline: true,
      'aria-hidden': 'true',
    });
    this.video.muted = true;
    return h(
      'div',
      { class: 'chat-camera', hidden: true, dataset: { testid: 'chat-camera-box' } },
      this.video,
      h(
        'div',
        { class: 'chat-compose-actions' },
        h('button', {
          type: 'button',
          class: 'btn btn-primary',
          dataset: { testid: 'chat-camera-take' },
          text: ['chat.photo.take'],
          on: { click: () => this.#takePhoto() },
        }),
        h('button', {
          type: 'button',
          class: 'btn btn-ghost',
          text: ['common.cancel'],
          on: { click: () => this.#closeCamera() },
        }),
      ),
    );
  }

  async #openCamera() {
    this.#setError(null);
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'environment' },
        audio: false,
      });
    } catch {
      this.#setError({ code: 'camera_unavailable' });
      return;
    }
    this.video.srcObject = this.stream;
    show(this.cameraBox, true);
    this.cameraBox.querySelector('button').focus();
  }

  #closeCamera() {
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    this.video.srcObject = null;
    show(this.cameraBox, false);
    if (this.cameraBtn) this.cameraBtn.focus();
  }

  async #takePhoto() {
    const v = this.video;
    if (!v.videoWidth)
      await new Promise((r) => v.addEventListener('loadedmetadata', r, { once: true }));
    const canvas = document.createElement('canvas');
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    canvas.getContext('2d').drawImage(v, 0, 0);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.88));
    this.#closeCamera();
    if (blob) await this.sendPhoto(blob, { width: canvas.width, height: canvas.height });
  }

  destroy() {
    for (const off of this.offs) off();
    this.#closeCamera();
    for (const p of this.urls.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  }
}

async function imageSize(blob) {
  const bmp = await createImageBitmap(blob);
  const out = { width: bmp.width, height: bmp.height };
  bmp.close();
  return out;
}
