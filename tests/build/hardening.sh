#!/usr/bin/env bash
# Checks the hardening of the installed programs (cmake/SpkWarnings.cmake): position-independent
# executables, full RELRO (BIND_NOW), a non-executable stack, the stack protector linked in, and
# in optimised builds without sanitizers glibc's fortified functions (_FORTIFY_SOURCE).
#   tests/build/hardening.sh FORTIFY(0|1) PROGRAM...
set -euo pipefail
fortify=$1
shift
fail=0
for p in "$@"; do
  h=$(readelf -h "$p")
  d=$(readelf -d "$p")
  l=$(readelf -lW "$p")
  s=$(nm -D "$p")
  grep -q 'Type:.*DYN' <<<"$h" || { echo "$p: not position-independent"; fail=1; }
  grep -q 'BIND_NOW\|FLAGS_1.*NOW' <<<"$d" || { echo "$p: no BIND_NOW (full RELRO)"; fail=1; }
  grep -q 'GNU_RELRO' <<<"$l" || { echo "$p: no RELRO segment"; fail=1; }
  grep -E 'GNU_STACK' <<<"$l" | grep -q 'RWE' && { echo "$p: executable stack"; fail=1; }
  grep -q '__stack_chk_fail' <<<"$s" || { echo "$p: no stack protector"; fail=1; }
  if [[ $fortify == 1 ]]; then
    grep -q '_chk@' <<<"$s" || { echo "$p: no fortified function (_FORTIFY_SOURCE)"; fail=1; }
  fi
  ((fail)) || echo "$p: hardened"
done
exit $fail
