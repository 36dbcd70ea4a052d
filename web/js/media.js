// Camera and microphone preview helpers.

export function mediaSupported() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// i18n key for a getUserMedia failure.
export function mediaErrorKey(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'media.error.denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'media.error.notfound';
    case 'NotReadableError':
    case 'AbortError':
      return 'media.error.busy';
    case 'Unsupported':
      return 'media.error.unsupported';
    default:
      return 'media.error.other';
  }
}

async function tryGet(constraints) {
  return navigator.mediaDevices.getUserMedia(constraints);
}

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

// Asks for camera and microphone (optionally specific devices). When one of them is missing,
// falls back to what exists. Resolves to { stream, video, audio, errorKey }; never rejects.
export async function openMedia({ video = true, audio = true, videoId = '', audioId = '' } = {}) {
  if (!mediaSupported()) {
    return { stream: null, video: false, audio: false, errorKey: 'media.error.unsupported' };
  }
  const v = videoId ? { ...VIDEO, deviceId: { exact: videoId } } : VIDEO;
  const a = audioId ? { ...AUDIO, deviceId: { exact: audioId } } : AUDIO;
  let firstError = null;
  const attempts = [];
  if (video && audio) attempts.push({ video: v, audio: a });
  if (audio) attempts.push({ audio: a });
  if (video) attempts.push({ video: v });
  for (const c of attempts) {
    try {
      const stream = await tryGet(c);
      return {
        stream,
        video: stream.getVideoTracks().length > 0,
        audio: stream.getAudioTracks().length > 0,
        errorKey: c.video && c.audio ? null : mediaErrorKey(firstError),
      };
    } catch (err) {
      if (!firstError) firstError = err;
      // A refusal covers every device: asking again for less would only ask again.
      if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) break;
    }
  }
  return { stream: null, video: false, audio: false, errorKey: mediaErrorKey(firstError) };
}

// Cameras and microphones (labels are only known once access was granted).
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return { cameras: [], microphones: [] };
  }
  try {
    const all = await navigator.mediaDevices.enumerateDevices();
    // Chromium lists aliases ("default", "communications") next to the real devices.
    const pick = (kind) => {
      const list = all.filter((d) => d.kind === kind && d.deviceId);
      const real = list.filter((d) => d.deviceId !== 'default' && d.deviceId !== 'communications');
      return real.length ? real : list;
    };
    return { cameras: pick('videoinput'), microphones: pick('audioinput') };
  } catch {
    return { cameras: [], microphones: [] };
  }
}

// The device id a stream's first track of `kind` uses.
export function currentDeviceId(stream, kind) {
  if (!stream) return '';
  const track = (kind === 'video' ? stream.getVideoTracks() : stream.getAudioTracks())[0];
  const settings = track && track.getSettings ? track.getSettings() : {};
  return settings.deviceId || '';
}

export function attach(videoEl, stream) {
  if (!videoEl) return;
  videoEl.muted = true;
  videoEl.playsInline = true;
  videoEl.srcObject = stream || null;
  if (stream) videoEl.play().catch(() => {});
}

export function stop(stream) {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
}

export function setEnabled(stream, kind, on) {
  if (!stream) return;
  const tracks = kind === 'video' ? stream.getVideoTracks() : stream.getAudioTracks();
  for (const track of tracks) track.enabled = on;
}

// Shows the microphone level in a <meter> or progress-like element (value 0..1).
export class LevelMeter {
  constructor(stream, el) {
    this.el = el;
    this.raf = 0;
    this.ctx = null;
    if (!stream || !stream.getAudioTracks().length || !window.AudioContext) return;
    try {
      this.ctx = new AudioContext();
      const src = this.ctx.createMediaStreamSource(stream);
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 512;
      src.connect(this.analyser);
      this.buf = new Uint8Array(this.analyser.fftSize);
      // Browsers may keep audio suspended until the user interacts with the page.
      this.resume = () => this.ctx && this.ctx.resume().catch(() => {});
      this.resume();
      for (const ev of ['pointerdown', 'keydown']) {
        document.addEventListener(ev, this.resume, { once: true, capture: true });
      }
      this.tick = this.tick.bind(this);
      this.raf = requestAnimationFrame(this.tick);
    } catch {
      this.ctx = null;
    }
  }

  tick() {
    this.analyser.getByteTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) {
      const x = (v - 128) / 128;
      sum += x * x;
    }
    const rms = Math.sqrt(sum / this.buf.length);
    const level = Math.min(1, rms * 4);
    if (this.el) this.el.value = Math.round(level * 100) / 100;
    this.raf = requestAnimationFrame(this.tick);
  }

  stop() {
    if (this.resume) {
      for (const ev of ['pointerdown', 'keydown']) {
        document.removeEventListener(ev, this.resume, { capture: true });
      }
    }
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
    if (this.el) this.el.value = 0;
  }
}
