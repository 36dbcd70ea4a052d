#!/bin/sh
# Runs a command inside a network namespace that has only loopback, when this user may create
# one (root, or unprivileged user namespaces); otherwise runs it directly. Inside the namespace
# SPK_NETNS=1 is set, so a test may take loopback down and up to simulate a network change.
if command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
  unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && SPK_NETNS=1 exec "$@"' sh "$@"
fi
exec "$@"
