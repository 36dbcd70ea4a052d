# Sourced by the WebAssembly build scripts: the environment Debian's emscripten needs.
# - Its JavaScript tools require node-acorn from /usr/share/nodejs, which a node that is not
#   Debian's (e.g. one in /usr/local) does not search.
# - Debian ships the system libraries prebuilt in a frozen cache (/usr/share/emscripten/cache,
#   FROZEN_CACHE=True): nothing is built or written there. An emscripten whose cache is not
#   frozen builds those libraries on first use; that cache goes to a writable, persistent
#   directory outside the repository instead of the read-only default.
export NODE_PATH="/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}"
if ! command -v emcc >/dev/null 2>&1; then
  echo "emscripten: emcc not found (scripts/setup.sh installs the emscripten package)" >&2
  return 1 2>/dev/null || exit 1
fi
if [ -z "${EM_CACHE:-}" ] && [ "$(em-config FROZEN_CACHE 2>/dev/null)" != "True" ]; then
  export EM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/spreekkamer/emscripten"
  mkdir -p "$EM_CACHE"
fi
