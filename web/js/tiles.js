// Video tiles in #tiles: the local preview is static markup; remote participants get a
// <figure class="tile tile-remote" data-participant="…"> each once the media relay delivers
// their stream. The placeholder shows while there is no remote tile. The container's
// data-remotes attribute holds the number of remote tiles (for the grid layout).
import { h } from './dom.js';
import { initials } from './roster.js';

function placeholder(container) {
  return container.querySelector('.tile-remote-placeholder');
}

function sync(container) {
  const count = container.querySelectorAll('.tile-remote').length;
  const ph = placeholder(container);
  if (ph) ph.hidden = count > 0;
  container.dataset.remotes = String(count);
}

function find(container, id) {
  return container.querySelector(`.tile-remote[data-participant="${CSS.escape(id)}"]`);
}

// Starts playback. A browser that refuses to play sound before the user touched the page (e.g.
// after a reload) plays the picture muted and the tile offers a button to turn the sound on.
function play(tile, video) {
  video.play().catch((err) => {
    if (!err || err.name !== 'NotAllowedError' || video.muted) return;
    const ua = navigator.userActivation;
    if (ua && ua.hasBeenActive) {
      // Not the autoplay rule (the user did interact): try once more.
      setTimeout(() => video.play().catch(() => {}), 500);
      return;
    }
    video.muted = true;
    tile.classList.add('needs-sound');
    video.play().catch(() => {});
    document.addEventListener('pointerdown', unmuteAll, { once: true, capture: true });
    document.addEventListener('keydown', unmuteAll, { once: true, capture: true });
  });
}

function unmute(tile) {
  const video = tile.querySelector('video');
  tile.classList.remove('needs-sound');
  video.muted = false;
  video.play().catch(() => {});
}

function unmuteAll() {
  for (const tile of document.querySelectorAll('.tile-remote.needs-sound')) unmute(tile);
}

// Adds or updates the tile of a participant; returns its <video>. The remote audio plays
// through the same element.
export function setRemoteTile(container, { id, name, stream }) {
  let tile = find(container, id);
  if (!tile) {
    const video = h('video', { autoplay: true, playsInline: true });
    tile = h(
      'figure',
      { class: 'tile tile-remote', dataset: { participant: id, testid: 'remote-tile' } },
      video,
      h(
        'div',
        { class: 'tile-off', 'aria-hidden': 'true' },
        h('span', { class: 'tile-avatar' }),
        h('span', { class: 'tile-off-text', text: ['call.cameraOff'] }),
      ),
      h('button', {
        type: 'button',
        class: 'btn btn-primary btn-small tile-sound',
        text: ['call.enableSound'],
        on: { click: (ev) => unmute(ev.currentTarget.closest('.tile')) },
      }),
      h('figcaption', {}, h('span', { class: 'tile-name' })),
    );
    const local = container.querySelector('.tile-local');
    container.insertBefore(tile, local);
  }
  const video = tile.querySelector('video');
  if (video.srcObject !== stream) {
    video.srcObject = stream || null;
    if (stream) play(tile, video);
  }
  setTileName(container, id, name);
  sync(container);
  return video;
}

export function setTileName(container, id, name) {
  const tile = find(container, id);
  if (!tile) return;
  tile.querySelector('.tile-name').textContent = name || '';
  tile.querySelector('.tile-avatar').textContent = initials(name);
  tile.querySelector('video').setAttribute('aria-label', name || '');
}

// Shows that no video arrives from this participant (camera off or audio only).
export function setTileCameraOff(container, id, off) {
  const tile = find(container, id);
  if (tile) tile.classList.toggle('is-camera-off', !!off);
}

export function removeRemoteTile(container, id) {
  const tile = find(container, id);
  if (tile) {
    const video = tile.querySelector('video');
    if (video) video.srcObject = null;
    tile.remove();
  }
  sync(container);
}

// Keeps only the tiles of these participant ids (e.g. after a roster event).
export function pruneRemoteTiles(container, keepIds) {
  const keep = new Set(keepIds);
  for (const tile of container.querySelectorAll('.tile-remote')) {
    if (!keep.has(tile.dataset.participant)) removeRemoteTile(container, tile.dataset.participant);
  }
}
