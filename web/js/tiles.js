// Video tiles in #tiles: the local preview is static markup; remote participants get a
// <figure class="tile tile-remote" data-participant="…"> each once the media relay delivers
// their stream. The placeholder shows while there is no remote tile.
import { h } from './dom.js';

function placeholder(container) {
  return container.querySelector('.tile-remote-placeholder');
}

function sync(container) {
  const any = container.querySelector('.tile-remote') !== null;
  const ph = placeholder(container);
  if (ph) ph.hidden = any;
}

// Adds or updates the tile of a participant; returns its <video>.
export function setRemoteTile(container, { id, name, stream }) {
  let tile = container.querySelector(`.tile-remote[data-participant="${CSS.escape(id)}"]`);
  if (!tile) {
    const video = h('video', { autoplay: true, playsInline: true });
    tile = h(
      'figure',
      { class: 'tile tile-remote', dataset: { participant: id, testid: 'remote-tile' } },
      video,
      h('figcaption', { raw: name || '' }),
    );
    const local = container.querySelector('.tile-local');
    container.insertBefore(tile, local);
  }
  const video = tile.querySelector('video');
  if (video.srcObject !== stream) {
    video.srcObject = stream || null;
    if (stream) video.play().catch(() => {});
  }
  tile.querySelector('figcaption').textContent = name || '';
  sync(container);
  return video;
}

export function removeRemoteTile(container, id) {
  const tile = container.querySelector(`.tile-remote[data-participant="${CSS.escape(id)}"]`);
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
