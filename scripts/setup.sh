#!/usr/bin/env bash
# Installs what spreekkamer needs on Debian bookworm (run as root, or with sudo available).
# Fast when everything is present already: it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential cmake pkg-config git
  libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libjansson-dev libsqlite3-dev sqlite3
  libssl-dev openssl libcmocka-dev libnice-dev libglib2.0-dev
  clang libclang-rt-14-dev llvm-14 clang-format
  nodejs npm chromium iproute2 util-linux procps coturn
  emscripten perl patch gdb)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node from elsewhere (e.g. /usr/local) is fine; only install Debian's when there is none.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nginx for tests/deploy/nginx_proxy.sh (the reverse proxy configuration of docs/deploy.md, run
# in front of a real spreekd). Its package would start a daemon on port 80: installed while a
# policy-rc.d forbids starting services, and never started by anything but that test.
if ! dpkg-query -W -f='${Status}' nginx-light 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing nginx-light (not started)"
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    own_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light
  [ "$own_policy" = 0 ] || $SUDO rm -f "$policy"
fi

# npm packages for tests and tools (pinned in package-lock.json).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/setup-libsrtp.sh
# spk_mls for the browser (WebAssembly) into web/vendor/, with libcrypto for wasm in .deps/.
bash scripts/setup-webmls.sh
