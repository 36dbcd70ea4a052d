// Browser test: header extensions survive the relay (issue 8, docs/protocol.md 5.7). The
// patient's camera is turned a quarter (a phone held upright): its frames carry rotation 90, so
// Chromium, with video orientation negotiated, sends the picture as captured plus the rotation
// in the urn:3gpp:video-orientation extension. The GP must see the patient upright: the decoded
// frames are landscape (inbound-rtp frameWidth > frameHeight: the rotation was not applied to
// the pixels) and the video element portrait (it came with the extension, under the GP's
// negotiated id). Audio level: the GP's receiver reports an audioLevel for the patient's audio
// (getSynchronizationSources takes it only from the ssrc-audio-level extension).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GP,
  admit,
  createAndJoin,
  fromName,
  newInvite,
  noProblems,
  openConsole,
  patientToLobby,
  setup,
  summary,
  waitMedia,
  waitReceiving,
} from './media_lib.mjs';

const PATIENT = 'Sanne de Vries';
const VIDEO_ORIENTATION = 'urn:3gpp:video-orientation';
const AUDIO_LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';

// In the patient's page: the camera's frames get rotation 90 (WebCodecs VideoFrame rotation),
// as a phone's camera held upright delivers them.
function rotateCamera() {
  const md = navigator.mediaDevices;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    const [video] = stream.getVideoTracks();
    if (!video) return stream;
    const processor = new MediaStreamTrackProcessor({ track: video });
    const generator = new MediaStreamTrackGenerator({ kind: 'video' });
    const rotate = new TransformStream({
      transform(frame, out) {
        out.enqueue(new VideoFrame(frame, { rotation: 90 }));
        frame.close();
      },
    });
    processor.readable.pipeThrough(rotate).pipeTo(generator.writable).catch(() => {});
    const stop = generator.stop.bind(generator);
    generator.stop = () => {
      video.stop();
      stop();
    };
    return new MediaStream([...stream.getAudioTracks(), generator]);
  };
}

// The extmap lines of a connection's negotiated descriptions, as { uri: id }, per side.
function extmaps(page, which) {
  return page.evaluate((which) => {
    const map = (sdp) => {
      const out = {};
      for (const m of (sdp || '').matchAll(/^a=extmap:(\d+)(?:\/\w+)? (\S+)/gm)) out[m[2]] = Number(m[1]);
      return out;
    };
    return (window.__pcs || [])
      .filter((pc) => pc.signalingState !== 'closed')
      .map((pc) => ({
        local: map(pc.localDescription && pc.localDescription.sdp),
        remote: map(pc.remoteDescription && pc.remoteDescription.sdp),
        offerer: pc.localDescription && pc.localDescription.type === 'offer',
      }))
      .filter((d) => (which === 'publish' ? d.offerer : !d.offerer));
  }, which);
}

// The GP's inbound video frame size and the audio levels its audio receivers report.
function received(page) {
  return page.evaluate(async () => {
    const out = { frames: [], levels: [] };
    for (const pc of window.__pcs || []) {
      if (pc.signalingState === 'closed') continue;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.frameWidth) {
          out.frames.push([s.frameWidth, s.frameHeight]);
        }
      }
      for (const r of pc.getReceivers()) {
        if (r.track.kind !== 'audio') continue;
        for (const src of r.getSynchronizationSources()) out.levels.push(src.audioLevel);
      }
    }
    return out;
  });
}

test('video orientation and audio level reach the subscriber', { timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const gp = await openConsole(env, GP);
  await createAndJoin(gp);
  const invite = await newInvite(gp);
  const pat = await patientToLobby(env, invite, PATIENT, { init: rotateCamera });
  await admit(gp, pat, PATIENT);
  await waitReceiving(gp, [PATIENT], { frames: 30 });

  await t.test('negotiated: the publisher sends them, the subscriber takes them', async () => {
    const [pub] = await extmaps(pat, 'publish');
    assert.ok(pub, 'the patient has a publish connection');
    assert.ok(pub.remote[VIDEO_ORIENTATION], `relay's answer accepts video orientation: ${JSON.stringify(pub.remote)}`);
    assert.ok(pub.remote[AUDIO_LEVEL], 'and audio level');
    const [sub] = await extmaps(gp, 'subscribe');
    assert.ok(sub, 'the GP has a subscribe connection');
    assert.ok(sub.local[VIDEO_ORIENTATION], `GP's answer takes video orientation: ${JSON.stringify(sub.local)}`);
    assert.ok(sub.local[AUDIO_LEVEL], 'and audio level');
    t.diagnostic(`patient sends ids ${JSON.stringify(pub.remote)}; GP receives ids ${JSON.stringify(sub.local)}`);
  });

  await t.test('the GP sees the patient upright: the rotation came in the extension', async () => {
    const sum = await waitMedia(
      gp,
      (s) => s.tiles.length === 1 && s.tiles[0].width > 0 && s.tiles[0].height > 0,
      { what: 'a remote tile with a size' },
    );
    const got = await received(gp);
    t.diagnostic(`GP: video element ${sum.tiles[0].width}x${sum.tiles[0].height}, decoded frames ${JSON.stringify(got.frames)}`);
    assert.equal(got.frames.length, 1);
    const [fw, fh] = got.frames[0];
    assert.ok(fw > fh, `the frames travel as captured (landscape): ${fw}x${fh}`);
    assert.ok(
      sum.tiles[0].height > sum.tiles[0].width,
      `shown upright (portrait): ${sum.tiles[0].width}x${sum.tiles[0].height}`,
    );
    await env.shot(gp, 'media-extensions-gp-upright');
  });

  await t.test('the GP gets the patient\'s audio level', async () => {
    let got;
    const end = Date.now() + 10000;
    do {
      got = await received(gp);
      if (got.levels.some((l) => typeof l === 'number')) break;
      await new Promise((r) => setTimeout(r, 200));
    } while (Date.now() < end);
    t.diagnostic(`GP audio levels: ${JSON.stringify(got.levels)}`);
    assert.ok(got.levels.some((l) => typeof l === 'number' && l >= 0 && l <= 1), 'an audio level from the extension');
    assert.ok(fromName(await summary(gp), PATIENT).framesDecoded > 0);
  });
  noProblems(env);
});
