#!/usr/bin/env bash
# Builds deploy/oci/Containerfile with podman and runs the image the way docs/deploy.md does:
# read-only root, no capabilities, no_new_privs, uid 10001, the data directory on a volume. Then
# tests/deploy/sandbox_client.mjs checks it from a loopback-only network namespace (health,
# web client, sign-in, consult with lobby, media through the relay, MLS chat and an attachment)
# and `podman stop` must drain it to exit status 0.
#
# usage: tests/deploy/oci_image.sh [--keep] [SPREEKCTL]   (as root; 77 = skipped)
#   --keep     keep the images afterwards (a second run then builds from podman's cache)
#   SPREEKCTL  a spreekctl of this tree (default build/test/server/spreekctl), run as uid 10001
#              on the container's data directory to register the API integration
#
# No registry is reachable from here, so the bookworm base image is made on this machine with
# mmdebstrap from the machine's own Debian apt sources and imported into podman; the build then
# installs its packages from the sources inside that image, as it would from any bookworm base.
# Slow (a full build with emscripten: 15-30 minutes on 2 cores) and it needs Debian's package
# mirror, so it is not part of the CTest suite; docs/deploy.md says what it showed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
KEEP=0
if [ "${1:-}" = "--keep" ]; then
  KEEP=1
  shift
fi
CTL="$(readlink -f "${1:-$ROOT/build/test/server/spreekctl}")"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
for t in podman mmdebstrap ip node setpriv; do command -v "$t" >/dev/null || skip "$t not installed"; done
[ -x "$CTL" ] || skip "no spreekctl at $CTL (build the tree first)"

CODENAME="$(. /etc/os-release && echo "$VERSION_CODENAME")"
[ "$CODENAME" = bookworm ] || skip "the base image is made from this machine's sources: needs bookworm, not $CODENAME"

# This machine (and CI's) mounts cgroups in hybrid mode, which crun refuses: use runc there. Its
# sandbox also refuses to raise resource limits, so the containers get modest explicit ones.
PODMAN=(podman)
if [ "$(findmnt -rn -o FSTYPE /sys/fs/cgroup)" != cgroup2 ]; then
  command -v runc >/dev/null || skip "cgroups in hybrid mode and no runc (crun refuses hybrid)"
  PODMAN=(podman --runtime runc)
fi
LIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

WORK="$(mktemp -d /var/tmp/spk-oci.XXXXXX)"
TAG="spk-oci-$$"
NS="spk-oci-$$"
cleanup() {
  local rc=$?
  podman rm -f "$TAG" >/dev/null 2>&1 || true
  ip netns del "$NS" 2>/dev/null || true
  if [ "$KEEP" = 0 ]; then
    [ -n "${SPK_OCI_IMAGE:-}" ] || podman rmi -f "$img" >/dev/null 2>&1 || true
    [ -n "${SPK_OCI_BASE:-}" ] || podman rmi -f "$BASE" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

# 1. A bookworm base image from the machine's own apt sources (Debian's entries only), unless
# SPK_OCI_BASE names one already made.
BASE="${SPK_OCI_BASE:-localhost/spk-bookworm:$TAG}"
if [ -z "${SPK_OCI_BASE:-}" ]; then
  mirrors=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    grep -q "debian-archive-keyring\|^deb .*$CODENAME" "$f" && grep -q "$CODENAME" "$f" && mirrors+=("$f")
  done
  ((${#mirrors[@]})) || skip "no Debian apt source for $CODENAME on this machine"
  echo "== base image: mmdebstrap $CODENAME from ${mirrors[*]}"
  mmdebstrap --quiet --variant=minbase --format=tar "$CODENAME" "$WORK/base.tar" "${mirrors[@]}"
  podman import --quiet "$WORK/base.tar" "localhost/spk-bookworm:$TAG" >/dev/null
  rm -f "$WORK/base.tar"
fi

# 2. The image (or SPK_OCI_IMAGE, one built before).
img="${SPK_OCI_IMAGE:-localhost/spreekd:$TAG}"
if [ -z "${SPK_OCI_IMAGE:-}" ]; then
  echo "== podman build (deploy/oci/Containerfile)"
  t0=$SECONDS
  "${PODMAN[@]}" build --quiet --network=host "${LIMITS[@]}" --build-arg "DEBIAN_IMAGE=$BASE" \
    -f "$ROOT/deploy/oci/Containerfile" -t "localhost/spreekd:$TAG" "$ROOT" >"$WORK/build.log" 2>&1 ||
    { tail -n 60 "$WORK/build.log" >&2; fail "podman build"; }
  echo "built in $((SECONDS - t0)) s; $(podman image inspect -f '{{.Size}}' "localhost/spreekd:$TAG" |
    awk '{ printf "%.0f MB", $1 / 1e6 }')"
fi
[ "$(podman image inspect -f '{{.Config.User}}' "$img")" = 10001:10001 ] || fail "image user is not 10001"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" --network=none --entrypoint /bin/sh "$img" -c \
  'for t in cc gcc cmake make emcc; do command -v "$t" >/dev/null && echo "$t"; done; true' \
  >"$WORK/tools"
[ ! -s "$WORK/tools" ] || fail "build tools in the runtime image: $(cat "$WORK/tools")"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" --network=none "$img" --version | grep -q spreekd || fail "spreekd --version"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" --network=none --entrypoint /usr/local/bin/spreekctl "$img" --help >/dev/null 2>&1 ||
  fail "spreekctl --help"
echo "ok - image runs as 10001:10001, has no compiler, spreekd and spreekctl start"

# 3. Run it: read-only root, no capabilities, loopback-only network namespace.
ip netns add "$NS"
ip -n "$NS" link set lo up
chmod 0711 "$WORK" # uid 10001 (spreekctl) reaches data/ through it
mkdir -p "$WORK/data"
chown 10001:10001 "$WORK/data"
chmod 0700 "$WORK/data"
cp "$HERE/sandbox.json" "$WORK/spreekd.json" # the installed paths: /var/lib/spreekkamer, /usr/local
chmod 0644 "$WORK/spreekd.json"
"${PODMAN[@]}" run -d "${LIMITS[@]}" --name "$TAG" --network "ns:/run/netns/$NS" --read-only --cap-drop=ALL \
  --security-opt=no-new-privileges -v "$WORK/data:/var/lib/spreekkamer" \
  -v "$WORK/spreekd.json:/etc/spreekkamer/spreekd.json:ro" "$img" >/dev/null
for _ in $(seq 1 100); do
  podman logs "$TAG" 2>&1 | grep -q '"msg":"listening ' && break
  sleep 0.1
done
podman logs "$TAG" 2>&1 | grep -q '"msg":"listening ' || { podman logs "$TAG" >&2; fail "did not start"; }
printf '#!/bin/sh\nexec setpriv --reuid 10001 --regid 10001 --clear-groups -- %s "$@"\n' "$CTL" >"$WORK/spreekctl"
chmod 0755 "$WORK/spreekctl"
(cd "$ROOT" && ip netns exec "$NS" env SPK_DATA="$WORK/data" SPREEKCTL="$WORK/spreekctl" \
  node tests/deploy/sandbox_client.mjs check) \
  >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; podman logs "$TAG" >&2; fail "checks"; }
echo "ok - through the container: $(tail -n1 "$WORK/check.log")"
podman stop -t 15 "$TAG" >/dev/null
code="$(podman inspect -f '{{.State.ExitCode}}' "$TAG")"
[ "$code" = 0 ] || { podman logs "$TAG" >&2; fail "exit code $code after podman stop"; }
podman logs "$TAG" 2>&1 | grep -q '"msg":"stopped' || fail "no 'stopped' line"
echo "ok - podman stop drains, exit 0"
echo "3 passed, 0 failed"
