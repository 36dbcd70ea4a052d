#!/bin/sh
# Runs a test in a loopback-only network namespace when the kernel lets us (root or user
# namespaces); otherwise runs it directly. Usage: netns.sh <program> [args...]
if unshare -n true 2>/dev/null; then
  exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
exec "$@"
