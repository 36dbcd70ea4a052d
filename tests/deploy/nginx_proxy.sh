#!/usr/bin/env bash
# Runs deploy/nginx/spreekkamer.conf (only the certificate paths replaced) in front of a real
# spreekd configured as docs/deploy.md says (trusted_proxies 127.0.0.1, X-Real-IP), in a
# loopback-only network namespace, and checks through it: TLS with HSTS, the web client, the
# WebSocket (sign-in, consult, lobby), media through the relay, an MLS chat message, an
# attachment of file_max_bytes (10 MiB) up and down, the practice system API (/api/v1); /metrics and /healthz not served; port 80
# redirects; spreekd sees the client's own address (a client on 127.0.0.2 is logged as such).
#
# usage: nginx_proxy.sh SPREEKD SPREEKCTL   (as root; 77 = skipped when nginx is not installed)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ "${1:-}" != "--inner" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespace)"; exit 77; }
  command -v nginx >/dev/null || { echo "SKIP: nginx not installed (scripts/setup.sh)"; exit 77; }
  exec unshare --net -- bash "$0" --inner "$(readlink -f "$1")" "$(readlink -f "$2")"
fi
SPREEKD="$2"
export SPREEKCTL="$3"
ip link set lo up
fail() { echo "FAIL: $*" >&2; exit 1; }
W="$(mktemp -d /tmp/spk-nginx.XXXXXX)"
NGINX_PID=""
SPK_PID=""
cleanup() {
  local rc=$?
  [ -z "$NGINX_PID" ] || kill "$NGINX_PID" 2>/dev/null || true
  [ -z "$SPK_PID" ] || kill -KILL "$SPK_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    tail -n 20 "$W/error.log" "$W/spreekd.log" >&2 2>/dev/null || true
  fi
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
sed -e "s|/etc/letsencrypt/live/consult.praktijk.example/fullchain.pem|$W/cert.pem|" \
  -e "s|/etc/letsencrypt/live/consult.praktijk.example/privkey.pem|$W/key.pem|" \
  "$ROOT/deploy/nginx/spreekkamer.conf" >"$W/site.conf"
grep -q "$W/cert.pem" "$W/site.conf" || fail "certificate path not found in the configuration"
mkdir -p "$W/t"
# What /etc/nginx/nginx.conf gives the site on Debian, with this test's own paths.
cat >"$W/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $W/access.log;
    client_body_temp_path $W/t/body;
    proxy_temp_path $W/t/proxy;
    fastcgi_temp_path $W/t/fastcgi;
    uwsgi_temp_path $W/t/uwsgi;
    scgi_temp_path $W/t/scgi;
    include $W/site.conf;
}
EOF
nginx -t -q -c "$W/nginx.conf" -p "$W" || fail "nginx -t"
echo "ok 1 - nginx -t accepts deploy/nginx/spreekkamer.conf"

cat >"$W/spreekd.json" <<EOF
{
  "listen": "127.0.0.1:8480",
  "data_dir": "$W/data",
  "web_root": "$ROOT/web",
  "public_url": "https://127.0.0.1",
  "trusted_proxies": "127.0.0.1, ::1",
  "client_address_header": "X-Real-IP",
  "relay_addresses": "127.0.0.1",
  "drain_timeout_s": 5
}
EOF
"$SPREEKD" --config "$W/spreekd.json" >"$W/spreekd.out" 2>"$W/spreekd.log" &
SPK_PID=$!
for _ in $(seq 1 100); do grep -q '"msg":"listening ' "$W/spreekd.log" && break; sleep 0.1; done
grep -q '"msg":"listening ' "$W/spreekd.log" || fail "spreekd did not start"
nginx -c "$W/nginx.conf" -p "$W" &
NGINX_PID=$!
for _ in $(seq 1 100); do [ -s "$W/nginx.pid" ] && break; sleep 0.1; done

export NODE_EXTRA_CA_CERTS="$W/cert.pem"
cd "$ROOT"
SPK_URL=https://127.0.0.1 SPK_ADMIN_URL=http://127.0.0.1:8480 SPK_DATA="$W/data" SPK_FILE_BYTES=10485760 \
  node tests/deploy/sandbox_client.mjs check >"$W/check.log" 2>&1 || { cat "$W/check.log" >&2; fail "checks through nginx"; }
echo "ok 2 - through nginx: $(tail -n1 "$W/check.log")"

node --input-type=module - <<'EOF' || fail "proxy behaviour"
import assert from 'node:assert/strict';
import WebSocket from 'ws';
const r = await fetch('https://127.0.0.1/join');
assert.equal(r.status, 200);
assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000');
for (const p of ['/metrics', '/healthz', '/livez']) assert.equal((await fetch(`https://127.0.0.1${p}`)).status, 404, p);
const post = await fetch('https://127.0.0.1/join', { method: 'POST', body: 'x' });
assert.equal(post.status, 403, 'only GET for the web client');
// The practice system API takes POST and answers with spreekd's own JSON errors.
const api = await fetch('https://127.0.0.1/api/v1/consults', {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
});
assert.equal(api.status, 401);
assert.equal(typeof (await api.json()).code, 'string');
const plain = await fetch('http://127.0.0.1/join', { redirect: 'manual' });
assert.equal(plain.status, 301);
assert.equal(plain.headers.get('location'), 'https://127.0.0.1/join');
// A client on another loopback address: spreekd must log that address, not the proxy's.
const ws = new WebSocket('wss://127.0.0.1/ws', 'spreekkamer.v1', { localAddress: '127.0.0.2' });
const hello = await new Promise((resolve, reject) => {
  ws.once('message', (d) => resolve(JSON.parse(d.toString())));
  ws.once('error', reject);
});
assert.equal(hello.type, 'hello');
ws.close();
console.log('proxy ok');
EOF
sleep 0.3
grep -q '"msg":"open remote=127.0.0.2"' "$W/spreekd.log" || fail "spreekd did not see the client's address"
echo "ok 3 - HSTS, /metrics, /healthz and /livez not served, GET only for the web client, the API answered by spreekd, port 80 redirects, spreekd logs the client's own address"

kill "$NGINX_PID"
wait "$NGINX_PID" 2>/dev/null || true
NGINX_PID=""
kill -TERM "$SPK_PID"
code=0
wait "$SPK_PID" || code=$?
SPK_PID=""
[ "$code" = 0 ] || fail "spreekd exited $code"
if grep -E '"level":"(warn|error)"' "$W/spreekd.log" >&2; then fail "warnings in spreekd's log"; fi
echo "ok 4 - spreekd drained and exited 0, no warnings"
echo "4 passed, 0 failed"
