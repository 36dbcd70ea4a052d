#!/usr/bin/env bash
# End-to-end encrypted media through the real relay: usage smoke_e2ee_tap.sh SPREEKD SPREEKLOAD
# 2 consults x 3 participants for 3 s. With --e2ee-tap every payload is an SFrame frame keyed
# from the consult's MLS group; the third participant of each consult is in the consult but not
# in the group: it receives every frame, decrypts none, and finds no plaintext marker in them,
# while the members lose nothing and decrypt everything. The control run (--tap, no encryption)
# shows that the same tap does find the markers in plaintext payloads.
set -euo pipefail
check() {
  node -e '
const [mode, text] = process.argv.slice(1);
const s = JSON.parse(text);
const e = s.e2ee;
const fail = (why) => { console.error(`e2ee smoke (${mode}): ${why}`); process.exit(1); };
if (!e || !e.tap) fail("no tap in the summary");
if (!(e.tap_frames > 100)) fail(`the tap received ${e.tap_frames} frames`);
if (mode === "e2ee") {
  if (!e.on) fail("encryption off");
  // A sanitizer build on a loaded machine may drop a packet or two; this is about what the
  // members and the tap can read, not about loss.
  if (s.loss_pct > 2 || !(s.packets_received > 0)) fail(`members lost packets: ${s.loss_pct} %`);
  if (e.failed !== 0) fail(`${e.failed} member frames failed`);
  if (e.tap_refused !== e.tap_frames || e.tap_opened !== 0) fail(`the tap opened ${e.tap_opened}`);
  if (e.plaintext_markers_seen !== 0) fail(`${e.plaintext_markers_seen} frames with plaintext`);
} else if (e.plaintext_markers_seen !== e.tap_frames) {
  fail(`control: markers in ${e.plaintext_markers_seen} of ${e.tap_frames} plaintext frames`);
}
console.log(`e2ee smoke (${mode}): ok, tap saw ${e.tap_frames} frames`);
' "$1" "$2"
}
for mode in e2ee control; do
  flag=--e2ee-tap
  [[ $mode == control ]] && flag=--tap
  out=$("$2" --spreekd "$1" --consults 2 --participants 3 --duration 3 --setup-timeout 20 "$flag")
  printf '%s\n' "$out"
  check "$mode" "$out"
done
