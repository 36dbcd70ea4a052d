#!/usr/bin/env bash
# Runs spreekbench against spreekd: usage run_signaling.sh SPREEKD SPREEKBENCH [spreekbench options]
# spreekbench starts a fresh spreekd for every round (on a free loopback port, with a temporary
# data directory and limits that stay out of the way), stops it with SIGTERM after the round, and
# does the same with its built-in floor server. Output: spreekbench's lines, the last one JSON.
set -euo pipefail
spreekd=$1
spreekbench=$2
shift 2
data=$(mktemp -d "${TMPDIR:-/tmp}/spreekbench.XXXXXX")
trap 'rm -rf "$data"' EXIT
# 11,000 connections on each side: spreekbench raises RLIMIT_NOFILE and the servers it starts
# inherit the raised limit.
"$spreekbench" "$@" -- "$spreekd" --listen '127.0.0.1:{port}' --data "$data" \
  --rate 1000000 --burst 1000000 --auth-timeout 3600 --max-connections 50000 \
  --max-connections-per-address 50000 --max-pending-per-address 50000 --log-level warn
