#!/usr/bin/env bash
# Runs a command next to a private PostgreSQL server made for it, and removes the server after:
#   tests/lib/with_postgres.sh CMD [ARG ...]
# The server (Debian's postgresql package, the newest installed major version) is initialised
# into a temporary directory, listens on 127.0.0.1 at a free port and on a Unix socket in that
# directory, and trusts local connections of the user "spk". PostgreSQL refuses to run as root:
# as root the server runs as the "postgres" system user (runuser), otherwise as the caller.
# CMD runs as the caller with
#   SPK_TEST_PG   libpq connection string of the "postgres" database (Unix socket)
#   SPK_TEST_PG_TCP  the same over TCP on 127.0.0.1
#   PGHOST, PGPORT, PGUSER  so that psql, createdb and dropdb reach it
#   SPK_TEST_PG_CTL  a script that runs pg_ctl on this server as its owner with the server's
#                    options, for tests that stop and start it ("$SPK_TEST_PG_CTL stop -m fast",
#                    "$SPK_TEST_PG_CTL start")
# Exit status: CMD's; 77 (skip) when no PostgreSQL server is installed.
set -euo pipefail
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bindir" || ! -x "$bindir/postgres" ]]; then
  echo "with_postgres: no PostgreSQL server installed (apt-get install postgresql)" >&2
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spk-pg.XXXXXX")
as=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$tmp"
  as=(runuser -u postgres --)
fi
cleanup() {
  "${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"${as[@]}" "$bindir/initdb" -D "$tmp/data" -U spk -A trust -E UTF8 --locale=C -N >"$tmp/initdb.log" 2>&1 ||
  { cat "$tmp/initdb.log" >&2; exit 1; }
started=0
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 30000))
  if "${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$tmp -c max_connections=300" \
    >/dev/null 2>&1; then
    started=1
    break
  fi
done
if ((!started)); then
  echo "with_postgres: the server did not start" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
fi
export SPK_TEST_PG="host=$tmp port=$port user=spk dbname=postgres"
export SPK_TEST_PG_TCP="host=127.0.0.1 port=$port user=spk dbname=postgres"
export PGHOST=$tmp PGPORT=$port PGUSER=spk
export PATH="$bindir:$PATH"
# pg_ctl on this server as its owner, with the options it was started with.
cat >"$tmp/pgctl" <<EOF
#!/usr/bin/env bash
exec ${as[*]} "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \\
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$tmp -c max_connections=300" "\$@"
EOF
chmod 755 "$tmp/pgctl"
export SPK_TEST_PG_CTL="$tmp/pgctl"
set +e
"$@"
rc=$?
set -e
exit $rc
