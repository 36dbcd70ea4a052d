#!/usr/bin/env bash
# Fetches and unpacks a Debian source package with `apt-get source`.
#   Usage: scripts/lib/fetch-source.sh PACKAGE DESTDIR
# Unpacks into DESTDIR (which must exist) and prints the path of the unpacked tree.
#
# When the machine has no deb-src entry, one is derived at run time from its own apt sources
# (deb822 files and one-line lists): same URIs, suites, components and Signed-By, restricted to
# the suites of the running release. Nothing about a particular mirror is stored in the
# repository. The derived entry is removed again (and the lists refreshed) before this exits.
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail
PKG="${1:?usage: fetch-source.sh PACKAGE DESTDIR}"
DEST="${2:?usage: fetch-source.sh PACKAGE DESTDIR}"
DEST="$(cd "$DEST" && pwd)"
me="fetch-source($PKG)"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

CODENAME="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
if [ -z "$CODENAME" ]; then
  echo "$me: cannot determine the release codename from /etc/os-release" >&2
  exit 1
fi

SRC_LIST=/etc/apt/sources.list.d/spreekkamer-src.sources

# Emits deb822 "deb-src" stanzas for every "deb" entry whose suite belongs to this release
# (CODENAME, CODENAME-updates, CODENAME-security, ...). Reads deb822 files and one-line lists.
derive_sources() {
  local files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    files+=("$f")
  done
  ((${#files[@]})) || return 0
  awk -v cn="$CODENAME" '
    function suite_ok(s) { return s == cn || index(s, cn "-") == 1 }
    function flush(   n, i, arr, keep) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites != "" && enabled != "no") {
        n = split(suites, arr, /[ \t]+/); keep = ""
        for (i = 1; i <= n; i++) if (arr[i] != "" && suite_ok(arr[i])) keep = keep (keep == "" ? "" : " ") arr[i]
        if (keep != "") {
          printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", uris, keep, comps
          if (signed != "") printf "Signed-By: %s\n", signed
          printf "\n"
        }
      }
      types = uris = suites = comps = signed = enabled = ""
    }
    FILENAME ~ /\.sources$/ {
      if (FNR == 1) flush()
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^#/) next
      if ($0 ~ /^[ \t]/) {
        # Continuation line (e.g. a key embedded in Signed-By): keep it with its field.
        if (k == "signed-by") signed = signed "\n" $0
        next
      }
      key = $0; sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      k = tolower(key)
      if (k == "types") types = val
      else if (k == "uris") uris = val
      else if (k == "suites") suites = val
      else if (k == "components") comps = val
      else if (k == "signed-by") signed = val
      else if (k == "enabled") enabled = tolower(val)
      next
    }
    {
      if (FNR == 1) flush()
      line = $0; sub(/#.*/, "", line)
      n = split(line, w, /[ \t]+/); i = 1
      while (i <= n && w[i] == "") i++
      if (i > n || w[i] != "deb") next
      i++; opts = ""
      if (w[i] ~ /^\[/) {
        while (i <= n) { opts = opts " " w[i]; if (w[i] ~ /\]$/) { i++; break } i++ }
      }
      if (i + 1 > n || !suite_ok(w[i + 1])) next
      printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents:", w[i], w[i + 1]
      for (j = i + 2; j <= n; j++) if (w[j] != "") printf " %s", w[j]
      printf "\n"
      if (match(opts, /signed-by=[^] \t]+/)) printf "Signed-By: %s\n", substr(opts, RSTART + 10, RLENGTH - 10)
      printf "\n"
    }
    END { flush() }
  ' "${files[@]}"
}

WORK="$(mktemp -d)"
added_src=false
cleanup() {
  rm -rf "$WORK"
  if $added_src; then
    $SUDO rm -f "$SRC_LIST"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
chmod 0755 "$WORK"
# apt-get source downloads as the unprivileged _apt user when it can.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$WORK"
fi

# Source entries the machine already has (other than ours) make ours unnecessary.
have_src=false
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && [ "$f" != "$SRC_LIST" ] || continue
  if grep -Eqs '^[[:space:]]*deb-src[[:space:]]|^Types:.*deb-src' "$f"; then
    have_src=true
  fi
done
if ! $have_src; then
  derive_sources >"$WORK/src.sources"
  if [ ! -s "$WORK/src.sources" ]; then
    echo "$me: no apt source for release '$CODENAME' found to derive deb-src from" >&2
    exit 1
  fi
  if ! cmp -s "$WORK/src.sources" "$SRC_LIST" 2>/dev/null; then
    echo "$me: writing $SRC_LIST (removed again when done)" >&2
    $SUDO install -m 0644 "$WORK/src.sources" "$SRC_LIST"
  fi
  added_src=true
fi

if ! command -v dpkg-source >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends dpkg-dev >&2
fi

echo "$me: apt-get update (with deb-src)" >&2
# A failing third-party repository must not stop us; apt-get source below decides.
$SUDO apt-get update -qq >&2 || echo "$me: apt-get update reported errors; continuing" >&2

echo "$me: fetching the source package" >&2
# The newest version first; when a mirror lacks its files (e.g. a security pool that carries only
# binaries), each older version the sources list is tried in turn.
if ! (cd "$WORK" && apt-get source -qq "$PKG" >/dev/null 2>"$WORK/err.log"); then
  ok=false
  for v in $(apt-cache showsrc "$PKG" 2>/dev/null | sed -n 's/^Version: //p' | sort -u -r -V); do
    echo "$me: the newest source failed to download; trying $PKG=$v" >&2
    rm -rf "${WORK:?}"/*/ 2>/dev/null || true
    if (cd "$WORK" && apt-get source -qq "$PKG=$v" >/dev/null 2>>"$WORK/err.log"); then
      ok=true
      break
    fi
  done
  if ! $ok; then
    cat "$WORK/err.log" >&2
    echo "$me: no version of the source package could be downloaded" >&2
    exit 1
  fi
fi
src="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -n1)"
if [ -z "$src" ]; then
  echo "$me: the source package did not unpack" >&2
  exit 1
fi
rm -rf "${DEST:?}/$(basename "$src")"
mv "$src" "$DEST/"
echo "$DEST/$(basename "$src")"
