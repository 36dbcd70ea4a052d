#!/usr/bin/env bash
# Runs spreekd under deploy/systemd/spreekd.service, unchanged, with a real systemd as the
# service manager, and checks that the hardened service does its work:
#
#   1. systemd-analyze verify accepts the unit; systemd-analyze security rates it 2.0 or lower;
#   2. systemctl start: spreekd runs as the sysusers.d user with no capabilities, no_new_privs,
#      a seccomp filter, a read-only / and its own writable state directory;
#   3. through the sandbox: /healthz, the web client, sign-in, a consult with lobby and admit,
#      audio and video through the relay (werift peers, ICE + DTLS-SRTP), an MLS chat message,
#      a 2 MiB attachment, a practice system on /api/v1 and its signed webhook, with spreekctl
#      run as the service's user (tests/deploy/sandbox_client.mjs);
#   4. SIGKILL of spreekd: systemd restarts it (Restart=on-failure) and it serves again;
#   5. systemctl stop while a client is connected: server.shutdown, close 1001, exit status 0;
#   6. a bad flag (exit code 2) is not restarted (RestartPreventExitStatus=2).
#
# usage: systemd_sandbox.sh SPREEKD SPREEKCTL   (as root; exits 77 = skipped when it cannot run)
#
# systemd is not PID 1 on this machine (nor on CI), so the test starts its own: systemd 252 as
# PID 1 of new PID, mount, UTS, IPC, network and cgroup namespaces, with nothing shared that it
# could change (the kernel's /proc/sys, which namespaces do not separate, is read-only in them).
# The network namespace has only loopback. /run, /tmp and /var/tmp are fresh tmpfs; /etc, /var
# and /usr/local are overlays whose changes live in memory; cgroup2 is mounted at the root of a
# child cgroup made for the test; systemd loads units only from the test's own
# directory (SYSTEMD_UNIT_PATH: the unit under test, a logging drop-in and empty stand-ins for
# the targets it is ordered against), so no other service of the machine is started. Afterwards
# the namespaces are gone and the script checks that the host is as it was.
set -euo pipefail

SELF="$(readlink -f "$0")"
HERE="$(dirname "$SELF")"
ROOT="$(cd "$HERE/../.." && pwd)"
UNIT="$ROOT/deploy/systemd/spreekd.service"
SYSUSERS="$ROOT/deploy/systemd/spreekkamer.sysusers"

# --- inside the namespaces, as PID 1 before systemd ------------------------------------------
if [ "${1:-}" = "--boot" ]; then
  WORK="$2"
  CG="$3"
  echo 0 >"$CG/cgroup.procs" # this process into the test's cgroup
  mount --make-rprivate /
  mount -t tmpfs -o mode=0755 spk-run /run
  mkdir -p /run/spk-work /run/spk-test /run/spk-ovl /run/spk-units /run/spk-empty
  mount --bind "$WORK" /run/spk-work # before /tmp, where it lives, is covered
  WORK=/run/spk-work
  mount --bind "$WORK/share" /run/spk-test
  mount -t tmpfs -o mode=1777 spk-tmp /tmp
  for d in etc var usr/local; do
    n="${d//\//-}"
    mkdir -p "/run/spk-ovl/$n.up" "/run/spk-ovl/$n.work"
    mount -t overlay "spk-$n" -o "lowerdir=/$d,upperdir=/run/spk-ovl/$n.up,workdir=/run/spk-ovl/$n.work" "/$d"
  done
  mount -t tmpfs -o mode=1777 spk-vartmp /var/tmp # /var is an overlay now; keep /var/tmp fresh
  cp -a "$WORK/units/." /run/spk-units/
  # What an operator installs (docs/deploy.md): the user, the config, the binaries, the web client.
  mkdir -p /etc/sysusers.d
  cp "$SYSUSERS" /etc/sysusers.d/spreekkamer.conf
  systemd-sysusers /etc/sysusers.d/spreekkamer.conf >/dev/null 2>&1
  install -d -m 0750 -o root -g spreekkamer /etc/spreekkamer
  install -m 0640 -o root -g spreekkamer "$WORK/spreekd.json" /etc/spreekkamer/spreekd.json
  install -m 0755 "$WORK/spreekd" "$WORK/spreekctl" /usr/local/bin/
  mkdir -p /usr/local/share/spreekkamer
  cp -r "$WORK/web" /usr/local/share/spreekkamer/web
  rm -f /etc/default/spreekd
  ip link set lo up
  # The kernel's sysctls are not namespaced: systemd as PID 1 raises fs.file-max (and nr_open)
  # for the whole machine. Read-only here, it logs that and goes on; the host keeps its values.
  mount --bind /proc/sys /proc/sys
  mount -o remount,bind,ro /proc/sys
  # systemd writes its own log to /dev/console: here that is a file.
  : >/run/spk-test/systemd.log
  mount --bind /run/spk-test/systemd.log /dev/console
  exec unshare --cgroup -- sh -c '
    mount -t cgroup2 spk-cgroup /sys/fs/cgroup
    exec env -i container=spk-sandbox SYSTEMD_UNIT_PATH=/run/spk-units \
      SYSTEMD_GENERATOR_PATH=/run/spk-empty SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/spk-empty \
      PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      /lib/systemd/systemd --system --unit=spk-sandbox.target --log-target=console \
        --show-status=no >/run/spk-test/systemd.log 2>&1'
fi

# --- on the host ------------------------------------------------------------------------------
SPREEKD="$(readlink -f "$1")"
SPREEKCTL="$(readlink -f "$2")"
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (namespaces, mounts)"
for t in unshare nsenter systemd-analyze systemd-sysusers ip node; do
  command -v "$t" >/dev/null || skip "$t not installed"
done
[ -x /lib/systemd/systemd ] || skip "systemd not installed"
CG2="$(findmnt -rn -t cgroup2 -o TARGET | head -n1)"
[ -n "$CG2" ] || skip "no cgroup2 hierarchy mounted"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "no overlay file system"
[ -f "$ROOT/web/vendor/spk_mls.wasm" ] || skip "web/vendor/spk_mls.wasm not built (scripts/setup.sh)"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok $pass - $*"; }

# The host's state that nothing here may change, compared at the end.
host_state() {
  findmnt -rn -o TARGET,FSTYPE,OPTIONS /sys/fs/cgroup
  find /sys/fs/cgroup "$CG2" -mindepth 1 -maxdepth 1 ! -name 'spk-systemd-*' | sort
  sysctl -n fs.file-max fs.nr_open kernel.pid_max 2>/dev/null
  ls -A /var/log/journal 2>/dev/null || true
  [ ! -e /root/.ssh ] || echo "/root/.ssh"
}
BEFORE="$(host_state)"

WORK="$(mktemp -d /tmp/spk-systemd.XXXXXX)"
MARK="$(mktemp /tmp/spk-systemd-mark.XXXXXX)"
CG="$CG2/spk-systemd-$$"
UNSHARE_PID=""
NSPID=""
cleanup() {
  local rc=$?
  if [ -n "$UNSHARE_PID" ]; then
    [ -z "$NSPID" ] || kill -KILL "$NSPID" 2>/dev/null || true
    kill -KILL "$UNSHARE_PID" 2>/dev/null || true # --kill-child takes PID 1 of the namespace along
    wait "$UNSHARE_PID" 2>/dev/null || true
  fi
  if [ -d "$CG" ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [ -d "$CG" ] || break
      sleep 0.2
    done
  fi
  if [ $rc -ne 0 ] && [ -f "$WORK/share/systemd.log" ]; then
    echo "--- systemd ---" >&2
    tail -n 40 "$WORK/share/systemd.log" >&2
    echo "--- spreekd ---" >&2
    tail -n 40 "$WORK/share/spreekd.log" >&2 || true
  fi
  rm -rf "$WORK" "$MARK"
  exit $rc
}
trap cleanup EXIT

# Stage what goes into the namespace: the unit exactly as shipped, one drop-in that sends its
# output to a file (there is no journald in the namespace), stand-ins for the targets.
mkdir -p "$WORK/share" "$WORK/units/spreekd.service.d"
cp "$UNIT" "$WORK/units/spreekd.service"
cat >"$WORK/units/spreekd.service.d/test-log.conf" <<'EOF'
[Service]
StandardOutput=append:/run/spk-test/spreekd.log
StandardError=inherit
EOF
for t in spk-sandbox sysinit basic network network-online multi-user shutdown sockets timers \
  paths slices local-fs swap; do
  printf '[Unit]\nDescription=%s (test stand-in)\nDefaultDependencies=no\n' "$t" \
    >"$WORK/units/$t.target"
done
printf '[Unit]\nDescription=System slice (test stand-in)\nDefaultDependencies=no\n' \
  >"$WORK/units/system.slice"
cp "$HERE/sandbox.json" "$WORK/spreekd.json" # the installed paths: /var/lib/spreekkamer, /usr/local
cp "$SPREEKD" "$WORK/spreekd"
cp "$SPREEKCTL" "$WORK/spreekctl"
cp -r "$ROOT/web" "$WORK/web"
mkdir "$CG"

unshare --pid --fork --kill-child --mount --uts --ipc --net --mount-proc --propagation private \
  -- bash "$SELF" --boot "$WORK" "$CG" &
UNSHARE_PID=$!

# PID 1 of the namespace is the unshare's child.
NSPID=""
for _ in $(seq 1 50); do
  NSPID="$(pgrep -P "$UNSHARE_PID" | head -n1 || true)"
  [ -n "$NSPID" ] && [ "$(readlink "/proc/$NSPID/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ] && break
  sleep 0.2
done
[ -n "$NSPID" ] || fail "the namespace did not start"
in_ns() { nsenter -t "$NSPID" -a -- env SYSTEMD_UNIT_PATH=/run/spk-units: "$@"; }
for _ in $(seq 1 100); do
  st="$(in_ns systemctl is-system-running 2>/dev/null || true)"
  case "$st" in running | degraded) break ;; esac
  sleep 0.2
done
case "$st" in running | degraded) ;; *) fail "systemd in the namespace is '$st'" ;; esac
ok "systemd $(in_ns systemctl --version | head -n1 | cut -d' ' -f2) runs as PID 1 of the test namespaces"

# 1. Static checks of the unit.
in_ns systemd-analyze verify /run/spk-units/spreekd.service >"$WORK/verify.log" 2>&1 ||
  { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify"; }
[ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log" >&2; fail "systemd-analyze verify warns"; }
ok "systemd-analyze verify: no findings"
exposure="$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null |
  sed -n 's/.*Overall exposure level for spreekd.service: \([0-9.]*\).*/\1/p')"
[ -n "$exposure" ] || fail "systemd-analyze security printed no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
ok "systemd-analyze security: exposure $exposure (<= 2.0)"

# 2. Start it and look at the running process.
in_ns systemctl start spreekd.service || fail "systemctl start"
for _ in $(seq 1 100); do
  grep -q '"msg":"listening ' "$WORK/share/spreekd.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '"msg":"listening ' "$WORK/share/spreekd.log" || fail "spreekd did not log listening"
main="$(in_ns systemctl show -P MainPID spreekd.service)"
[ "$main" -gt 0 ] || fail "no main PID"
status="$(in_ns cat "/proc/$main/status")"
field() { awk -v k="$1:" '$1 == k { print $2 }' <<<"$status"; }
uid="$(in_ns id -u spreekkamer)"
[ "$(field Uid)" = "$uid" ] || fail "runs as uid $(field Uid), not spreekkamer ($uid)"
[ "$(field NoNewPrivs)" = 1 ] || fail "no_new_privs not set"
[ "$(field Seccomp)" = 2 ] || fail "no seccomp filter"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
  [ "$(field "$c")" = 0000000000000000 ] || fail "$c is $(field "$c")"
done
mounts="$(in_ns cat "/proc/$main/mountinfo")"
mnt_opts() { awk -v m="$1" '$5 == m { o = $6 } END { print o }' <<<"$mounts"; }
[[ "$(mnt_opts /)" == ro* ]] || fail "/ is not read-only for the service"
[[ "$(mnt_opts /usr)" == ro* || "$(mnt_opts /usr)" == "" ]] || fail "/usr writable"
[[ "$(mnt_opts /var/lib/spreekkamer)" == rw* ]] || fail "state directory not writable"
[[ "$(mnt_opts /etc)" == ro* ]] || fail "/etc is not read-only for the service"
# LimitNOFILE=65536, unless this machine refuses to raise limits (the sandbox this test runs
# in does, even for root): then systemd keeps the hard limit it has.
want=65536
prlimit --nofile=65536:65536 true 2>/dev/null || want="$(ulimit -Hn)"
nofile="$(in_ns awk '/^Max open files/ { print $4 }' "/proc/$main/limits")"
[ "$nofile" = "$want" ] || fail "LimitNOFILE: $nofile open files, expected $want"
owner="$(in_ns stat -c '%U %a' /var/lib/spreekkamer)"
[ "$owner" = "spreekkamer 700" ] || fail "state directory is '$owner'"
ok "running as spreekkamer (uid $uid), no capabilities, no_new_privs, seccomp, / and /etc read-only, /var/lib/spreekkamer 0700 rw, LimitNOFILE $nofile"

# 3. Everything through the sandbox.
# spreekctl as the docs say: as the service's user, so that what it creates stays spreekd's.
printf '#!/bin/sh\nexec runuser -u spreekkamer -- /usr/local/bin/spreekctl "$@"\n' >"$WORK/share/spreekctl"
chmod 0755 "$WORK/share/spreekctl"
in_ns sh -c "cd '$ROOT' && SPREEKCTL=/run/spk-test/spreekctl node tests/deploy/sandbox_client.mjs check" \
  >"$WORK/check.log" 2>&1 ||
  { cat "$WORK/check.log" >&2; fail "functional checks"; }
ok "through the sandbox: $(tail -n1 "$WORK/check.log")"
# Expected: libwebsockets looks the listen address up as an interface name first (getifaddrs,
# a netlink socket, which RestrictAddressFamilies refuses), says so, and binds the numeric
# address. Anything else at warn or error is a failure.
if grep -E '"level":"(warn|error)"' "$WORK/share/spreekd.log" |
  grep -v 'lws_interface_to_sa: unable to getifaddrs: errno 97' >&2; then
  fail "spreekd logged warnings or errors under the sandbox"
fi
ok "no warnings or errors in spreekd's log but libwebsockets' getifaddrs notice"

# 4. A crash is restarted.
in_ns kill -KILL "$main"
for _ in $(seq 1 100); do
  new="$(in_ns systemctl show -P MainPID spreekd.service)"
  [ "$new" != 0 ] && [ "$new" != "$main" ] && break
  sleep 0.1
done
if [ "$new" = 0 ] || [ "$new" = "$main" ]; then fail "not restarted after SIGKILL"; fi
for _ in $(seq 1 100); do
  in_ns sh -c "cd '$ROOT' && node -e \"fetch('http://127.0.0.1:8480/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))\"" && break
  sleep 0.1
done
[ "$(in_ns systemctl show -P NRestarts spreekd.service)" = 1 ] || fail "NRestarts is not 1"
ok "SIGKILL: restarted (NRestarts=1), /healthz answers again"

# 5. Stop drains: the connected client is told and closed with 1001; exit status 0.
in_ns sh -c "cd '$ROOT' && exec node tests/deploy/sandbox_client.mjs drain" >"$WORK/drain.log" 2>&1 &
drain_pid=$!
for _ in $(seq 1 100); do grep -q '^ready' "$WORK/drain.log" && break; sleep 0.1; done
grep -q '^ready' "$WORK/drain.log" || { cat "$WORK/drain.log" >&2; fail "drain client did not sign in"; }
t0=$(date +%s%N)
in_ns systemctl stop spreekd.service
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$drain_pid" || { cat "$WORK/drain.log" >&2; fail "drain client"; }
[ "$(in_ns systemctl show -P ExecMainStatus spreekd.service)" = 0 ] || fail "exit status not 0"
[ "$(in_ns systemctl show -P Result spreekd.service)" = success ] || fail "result not success"
grep -q '"msg":"stopped' "$WORK/share/spreekd.log" || fail "no 'stopped' log line"
ok "systemctl stop drains: server.shutdown, close 1001, exit 0 after ${ms} ms (TimeoutStopSec=15)"

# 6. A configuration error is final: exit 2, no restart.
echo 'SPREEKD_OPTS=--no-such-flag 1' | in_ns tee /etc/default/spreekd >/dev/null
in_ns systemctl reset-failed spreekd.service 2>/dev/null || true
in_ns systemctl start spreekd.service || true
sleep 3
[ "$(in_ns systemctl show -P ExecMainStatus spreekd.service)" = 2 ] || fail "bad flag: exit status not 2"
[ "$(in_ns systemctl show -P NRestarts spreekd.service)" = 0 ] || fail "bad flag was restarted"
[ "$(in_ns systemctl is-active spreekd.service || true)" = failed ] || fail "not failed"
ok "a bad flag (SPREEKD_OPTS in /etc/default/spreekd) exits 2 and is not restarted"

# Tear down and compare the host.
kill -KILL "$NSPID" "$UNSHARE_PID" 2>/dev/null || true
wait "$UNSHARE_PID" 2>/dev/null || true
UNSHARE_PID=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ -d "$CG" ] || break
  sleep 0.2
done
[ ! -d "$CG" ] || fail "cgroup $CG left behind"
[ -f "$MARK" ] || fail "the host's /tmp was touched"
AFTER="$(host_state)"
[ "$BEFORE" = "$AFTER" ] || { diff <(echo "$BEFORE") <(echo "$AFTER") >&2; fail "host state changed"; }
ok "host unchanged: /tmp, cgroup mounts and hierarchy, journal, fs.file-max, fs.nr_open, kernel.pid_max"
echo "$pass passed, 0 failed"
