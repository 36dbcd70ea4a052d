#!/usr/bin/env bash
# spreekctl end to end. Usage: ctl_test.sh SPREEKCTL TOKEN_CHECK CASE
# Each case runs the real binary in its own temporary data directory.
set -u

CTL=$1
CHECK=$2
CASE=$3
TMP=$(mktemp -d /tmp/spk_ctl_XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DATA=$TMP/data
DB=$DATA/spreekkamer.db
OUT=$TMP/out
ERR=$TMP/err

die() {
    echo "FAIL [$CASE]: $*" >&2
    echo "--- stdout:" >&2
    cat "$OUT" >&2 2>/dev/null
    echo "--- stderr:" >&2
    cat "$ERR" >&2 2>/dev/null
    exit 1
}

# run EXPECTED_EXIT args...: runs spreekctl with --data, output in $OUT / $ERR.
run() {
    local want=$1
    shift
    "$CTL" --data "$DATA" "$@" >"$OUT" 2>"$ERR"
    local got=$?
    [ "$got" -eq "$want" ] || die "spreekctl $* exited $got, want $want"
}

expect_out() { grep -Eq -- "$1" "$OUT" || die "stdout lacks /$1/"; }
expect_err() { grep -Eq -- "$1" "$ERR" || die "stderr lacks /$1/"; }

sql() { sqlite3 "$DB" "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; $1" || die "sqlite3: $1"; }

# A store with a consult, an invite and some audit entries (seq 1..6 at least).
populate() {
    run 0 init
    run 0 token mint --role gp --sub gp-jansen --name "Dr. Jansen" --practice prac-1
    run 0 consult create --practice prac-1 --gp gp-jansen --patient pp-42 --title "Beeldbellen"
    CONSULT=$(cat "$OUT")
    run 0 invite create --consult "$CONSULT"
    run 0 delegation grant --practice prac-1 --remote-gp rgp-de-vries --hours 8
    run 0 audit verify
    expect_out '^audit log intact: [0-9]+ entries$'
}

verify_fails_at() {
    run 1 audit verify
    expect_out "first bad seq $1:"
    expect_err 'verification_failed'
}

case_flow() {
    run 0 init
    expect_out 'issuer key created'
    [ -f "$DATA/issuer.key" ] || die "no issuer.key"
    [ "$(stat -c %a "$DATA")" = 700 ] || die "data dir not 0700"
    [ "$(stat -c %a "$DATA/issuer.key")" = 600 ] || die "issuer.key not 0600"
    run 0 init
    expect_out 'already present'
    run 0 key show
    KEYLINE=$(cat "$OUT")
    echo "$KEYLINE" | grep -Eq '^spreekkamer-local [A-Za-z0-9_-]{16} [A-Za-z0-9_-]{43}$' ||
        die "key line shape: $KEYLINE"

    run 0 token mint --role assistant --sub ast-1 --name "Anna" --practice prac-1 \
        --acts-for gp-jansen --ttl 600
    TOKEN=$(cat "$OUT")
    echo "$TOKEN" | grep -Eq '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$' ||
        die "token shape: $TOKEN"
    CLAIMS=$("$CHECK" "$KEYLINE" "$TOKEN") || die "token does not verify"
    [ "$CLAIMS" = "assistant ast-1 prac-1 gp-jansen - 600" ] || die "claims: $CLAIMS"
    run 0 token mint --role gp --sub gp-jansen --name "Dr. Jansen" --practice prac-1
    CLAIMS=$("$CHECK" "$KEYLINE" "$(cat "$OUT")") || die "token does not verify"
    [ "$CLAIMS" = "gp gp-jansen prac-1 - - 28800" ] || die "default ttl: $CLAIMS"

    run 0 consult create --practice prac-1 --gp gp-jansen --patient pp-42 --title "Beeldbellen"
    CONSULT=$(cat "$OUT")
    echo "$CONSULT" | grep -Eq '^c_[A-Za-z0-9_-]{16}$' || die "consult id: $CONSULT"
    run 0 invite create --consult "$CONSULT"
    expect_out '^http://127\.0\.0\.1:8480/join#[A-Za-z0-9_-]{22}$'
    run 0 invite create --consult "$CONSULT" --url https://consult.example.nl/ --ttl 300
    expect_out '^https://consult\.example\.nl/join#[A-Za-z0-9_-]{22}$'
    # The code is never stored, only its hash.
    CODE=$(sed 's/.*#//' "$OUT")
    [ ${#CODE} -eq 22 ] || die "code: $CODE"
    sqlite3 "$DB" .dump | grep -q -- "$CODE" && die "invite code stored in clear"
    run 1 invite create --consult c_unknown
    expect_err 'error: not_found'

    run 0 delegation grant --practice prac-1 --remote-gp rgp-de-vries --hours 8 --by gp-jansen
    DELEG=$(cat "$OUT")
    run 0 delegation list --practice prac-1
    expect_out "$DELEG +active +rgp-de-vries"
    run 0 delegation revoke --id "$DELEG"
    run 1 delegation revoke --id "$DELEG"
    expect_err 'error: bad_state'
    run 0 delegation list --practice prac-1 --json
    expect_out '"status": "revoked"'

    run 0 audit verify
    expect_out '^audit log intact: 1[0-9] entries$'

    run 0 consult create --practice prac-1 --gp gp-jansen --patient pp-other
    run 0 audit export --patient pp-42
    expect_out 'consult aangemaakt \[consult.create\]'
    expect_out 'uitnodiging aangemaakt \[invite.create\]'
    expect_out 'logboek geëxporteerd \[audit.export\]'
    expect_out 'wie: [^ ]+ \(admin\)'
    expect_out '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z'
    grep -q 'pp-other' "$OUT" && die "export shows another patient's entries"
    grep -q 'token.mint' "$OUT" && die "export shows entries without this patient"
    run 0 audit export --patient pp-42 --json
    expect_out '"event": "consult.create"'
    expect_out '"patient": "pp-42"'
    grep -c '"event": "audit.export"' "$OUT" | grep -q '^2$' || die "both exports not listed"

    run 0 audit list
    expect_out 'token.mint'
    expect_out 'logboek ingezien \[audit.read\]'
    run 0 audit verify
}

case_usage() {
    "$CTL" --help >"$OUT" 2>"$ERR" || die "--help failed"
    expect_out 'usage: spreekctl'
    "$CTL" audit --help >"$OUT" 2>"$ERR" || die "audit --help failed"
    expect_out 'audit export --patient'
    "$CTL" token mint --help >"$OUT" 2>"$ERR" || die "token mint --help failed"
    expect_out 'token mint --role'
    run 2
    run 2 frobnicate
    run 2 audit
    run 2 token mint --role gp --sub a --name b
    expect_err 'needs --practice'
    run 2 token mint --role wizard --sub a --name b --practice p
    run 2 consult create --practice p --gp g --patient x --colour blue
    run 2 invite create --consult c_x --ttl -5
    run 2 delegation grant --practice p --remote-gp r
    run 2 delegation grant --practice p --remote-gp r --hours 2 --until 99999999999
    run 2 audit verify --json
    run 2 audit export --patient ""
    run 2 key show --data
    # Commands other than init need an initialised store.
    run 1 audit verify
    expect_err 'error: not_found'
}

case_config() {
    cat >"$TMP/cfg.json" <<EOF
{ "data_dir": "$TMP/from-config", "public_url": "https://spreek.example.nl/",
  "issuer_name": "praktijk-noord" }
EOF
    "$CTL" --config "$TMP/cfg.json" init >"$OUT" 2>"$ERR" || die "init with config"
    [ -f "$TMP/from-config/issuer.key" ] || die "data_dir from config not used"
    expect_out '^praktijk-noord '
    "$CTL" --config "$TMP/cfg.json" consult create --practice p --gp g --patient x >"$OUT" 2>"$ERR" ||
        die "consult create with config"
    C=$(cat "$OUT")
    "$CTL" --config "$TMP/cfg.json" invite create --consult "$C" >"$OUT" 2>"$ERR" || die "invite"
    expect_out '^https://spreek\.example\.nl/join#'
    echo '{ "no_such_key": 1 }' >"$TMP/bad.json"
    "$CTL" --config "$TMP/bad.json" init >"$OUT" 2>"$ERR"
    [ $? -eq 1 ] || die "bad config accepted"
    expect_err 'config_error'
}

case_ended_consult() {
    populate
    sqlite3 "$DB" "UPDATE consults SET state = 1, ended_at = 1 WHERE id = '$CONSULT'"
    run 1 invite create --consult "$CONSULT"
    expect_err 'error: consult_ended'
    run 0 audit export --patient pp-42
    expect_out 'uitkomst: mislukt \(consult_ended\)'
}

case_tamper_modify() {
    populate
    sql "UPDATE audit SET user = 'someone-else' WHERE seq = 3"
    verify_fails_at 3
    expect_out 'modified'
}

case_tamper_delete_middle() {
    populate
    sql "DELETE FROM audit WHERE seq = 2"
    verify_fails_at 2
    expect_out 'missing'
}

case_tamper_delete_newest() {
    populate
    LAST=$(sqlite3 "$DB" "SELECT max(seq) FROM audit")
    sql "DELETE FROM audit WHERE seq = $LAST"
    verify_fails_at "$LAST"
    # Still failing after more activity.
    run 0 consult create --practice prac-1 --gp gp-jansen --patient pp-42
    verify_fails_at "$LAST"
}

case_tamper_reorder() {
    populate
    sql "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (2, 3);
         UPDATE audit SET (ts_ms, event, outcome, user, name, role, on_behalf_of, access_point,
           patient, object, detail, prev_hash, hash) = (SELECT ts_ms, event, outcome, user,
           name, role, on_behalf_of, access_point, patient, object, detail, prev_hash, hash
           FROM t WHERE t.seq = 5 - audit.seq) WHERE seq IN (2, 3);"
    verify_fails_at 2
}

case_tamper_insert() {
    populate
    LAST=$(sqlite3 "$DB" "SELECT max(seq) FROM audit")
    sql "INSERT INTO audit SELECT seq + 1, ts_ms, 'consult.admit', outcome, user, name, role,
         on_behalf_of, access_point, patient, object, detail, hash, hash, v, issuer, practice,
         mac FROM audit WHERE seq = $LAST"
    verify_fails_at $((LAST + 1))
}

case_tamper_anchor() {
    populate
    sed -i 's/^\(spk-audit-head v2 \)\([0-9]*\)/\1999/' "$DATA/audit.head"
    verify_fails_at 0
    expect_out 'audit.head'
}

case "$CASE" in
flow | usage | config | ended_consult | tamper_modify | tamper_delete_middle | \
    tamper_delete_newest | tamper_reorder | tamper_insert | tamper_anchor)
    "case_$CASE"
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "ok [$CASE]"
