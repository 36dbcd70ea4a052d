/* Invites: single use, expiring, revocable, bound to one consult. Only the SHA-256 of a code is
 * stored; the public id is the hex of its first 8 bytes (it reveals nothing of the code). */
#include "store_priv.h"

#include <string.h>

#include "spk/digest.h"
#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#define INVITE_CODE_BYTES 16 /* 128 bits → 22 base64url characters */
#define INVITE_COLS                                                                                \
    "code_hash, consult, created_by, created_at, expires_at, used_at, used_by, id, revoked_at"

void spk_store_invite_hash(const char *code, size_t len, uint8_t out[32])
{
    /* On failure (cannot happen with a working libcrypto) the all-zero hash matches no invite. */
    spk_sha256(out, code, len, NULL, 0);
}

static void invite_id(const uint8_t hash[32], char id[SPK_INVITE_ID_LEN])
{
    spk_hex_encode(id, hash, 8);
}

static int invite_row(st_stmt_t *s, void *out)
{
    spk_invite_rec_t *inv = out;
    memset(inv, 0, sizeof(*inv));
    if (!st_col_blob32(s, 0, inv->code_hash)) {
        return SPK_ERANGE;
    }
    const st_out_t t[] = {ST_OUT(inv->consult), ST_OUT(inv->created_by)};
    inv->created_at = st_col_i64(s, 3);
    inv->expires_at = st_col_i64(s, 4);
    inv->used_at = st_col_i64(s, 5);
    inv->revoked_at = st_col_i64(s, 8);
    int rc = st_col_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    if (rc == 0) {
        rc = st_col_str(s, 6, inv->used_by, sizeof(inv->used_by));
    }
    if (rc == 0) {
        rc = st_col_str(s, 7, inv->id, sizeof(inv->id));
    }
    return rc;
}

int spk_store_invite_insert(spk_store_t *st, const spk_invite_rec_t *inv)
{
    if (st == NULL || inv == NULL || inv->consult[0] == '\0') {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc =
        st_prep(st->db, ST_INVITE_INSERT,
                "INSERT INTO invites (" INVITE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                " ON CONFLICT DO NOTHING",
                &s);
    if (rc != 0) {
        return rc;
    }
    char id[SPK_INVITE_ID_LEN];
    invite_id(inv->code_hash, id);
    const st_in_t t[] = {ST_IN(inv->consult), ST_IN(inv->created_by)};
    const st_in_t t2[] = {ST_IN(inv->used_by), ST_IN(id)};
    rc = st_bind_blob32(s, 1, inv->code_hash);
    if (rc == 0) {
        rc = st_bind_texts(s, 2, t, 2);
    }
    if (rc == 0) {
        rc = st_bind_texts(s, 7, t2, 2);
    }
    const int64_t ints[] = {inv->created_at, inv->expires_at, inv->used_at};
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = st_bind_i64(s, 4 + i, ints[i]);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 9, inv->revoked_at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "invite insert");
    }
    int64_t changed = st_changes(s);
    st_done(s);
    return rc == 0 && changed == 0 ? SPK_EEXIST : rc;
}

int spk_store_invite_create(spk_store_t *st, const char *consult, const char *created_by,
                            int64_t now, int64_t ttl_s, char *code_out, size_t cap,
                            spk_invite_rec_t *out)
{
    if (st == NULL || consult == NULL || created_by == NULL || code_out == NULL || cap < 32 ||
        ttl_s <= 0 || now <= 0 || ttl_s > INT64_MAX - now) {
        return SPK_EINVAL;
    }
    spk_consult_rec_t c;
    int rc = spk_store_consult_get(st, consult, &c);
    if (rc != 0) {
        return rc;
    }
    if (c.state == SPK_CONSULT_ENDED) {
        return SPK_ECONSULTENDED;
    }
    spk_invite_rec_t inv;
    memset(&inv, 0, sizeof(inv));
    if (!st_fits(created_by, sizeof(inv.created_by))) {
        return SPK_ERANGE;
    }
    memcpy(inv.consult, c.id, sizeof(inv.consult));
    strcpy(inv.created_by, created_by);
    inv.created_at = now;
    inv.expires_at = now + ttl_s;
    char code[32];
    rc = spk_random_id(code, sizeof(code), INVITE_CODE_BYTES);
    if (rc == 0) {
        spk_store_invite_hash(code, strlen(code), inv.code_hash);
        invite_id(inv.code_hash, inv.id);
        rc = spk_store_invite_insert(st, &inv);
    }
    if (rc == 0) {
        memcpy(code_out, code, strlen(code) + 1);
        if (out != NULL) {
            *out = inv;
        }
    }
    spk_wipe(code, sizeof(code));
    return rc;
}

/* Why an invite could not be used or revoked: its current state as an error. */
static int invite_state_err(const spk_invite_rec_t *inv, int64_t now)
{
    if (inv->used_at != 0) {
        return SPK_EINVITEUSED;
    }
    if (inv->revoked_at != 0) {
        return SPK_EINVITEREVOKED;
    }
    if (now > 0 && inv->expires_at <= now) {
        return SPK_EINVITEEXPIRED;
    }
    return SPK_ESTATE;
}

static int invite_get(spk_store_t *st, const uint8_t code_hash[32], spk_invite_rec_t *out)
{
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INVITE_GET,
                     "SELECT " INVITE_COLS " FROM invites WHERE code_hash = ?1", &s);
    if (rc == 0) {
        rc = st_bind_blob32(s, 1, code_hash);
    }
    if (rc == 0) {
        rc = st_one(s, invite_row, out, "invite get");
    }
    st_done(s);
    return rc;
}

/* Steps an UPDATE ... RETURNING of at most one invite to completion and releases it: 0 with
 * *out (may be NULL) filled when a row changed, SPK_ENOTFOUND when none did. */
static int update_one(spk_store_t *st, st_stmt_t *s, spk_invite_rec_t *out, const char *what)
{
    spk_invite_rec_t inv;
    int rc = st_write_one(st, s, invite_row, &inv, what);
    st_done(s);
    if (rc == 0 && out != NULL) {
        *out = inv;
    }
    return rc;
}

int spk_store_invite_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                         const char *participant_id, spk_invite_rec_t *out)
{
    if (st == NULL || code_hash == NULL || participant_id == NULL || now <= 0) {
        return SPK_EINVAL;
    }
    if (!st_fits(participant_id, SPK_ID_LEN)) {
        return SPK_ERANGE;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INVITE_USE,
                     "UPDATE invites SET used_at = ?2, used_by = ?3"
                     " WHERE code_hash = ?1 AND used_at = 0 AND revoked_at = 0"
                     " AND expires_at > ?2 RETURNING " INVITE_COLS,
                     &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_blob32(s, 1, code_hash);
    if (rc == 0) {
        rc = st_bind_i64(s, 2, now);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 3, participant_id);
    }
    if (rc != 0) {
        st_done(s);
        return rc;
    }
    rc = update_one(st, s, out, "invite use");
    if (rc != SPK_ENOTFOUND) {
        return rc;
    }
    spk_invite_rec_t inv;
    rc = invite_get(st, code_hash, &inv);
    if (rc == SPK_ENOTFOUND) {
        return SPK_EINVITEINVALID;
    }
    return rc != 0 ? rc : invite_state_err(&inv, now);
}

int spk_store_invite_revoke(spk_store_t *st, const char *consult, const char *id, int64_t at,
                            spk_invite_rec_t *out)
{
    if (st == NULL || consult == NULL || id == NULL || at <= 0) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INVITE_REVOKE,
                     "UPDATE invites SET revoked_at = ?3 WHERE id = ?1 AND consult = ?2"
                     " AND used_at = 0 AND revoked_at = 0 RETURNING " INVITE_COLS,
                     &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, id);
    if (rc == 0) {
        rc = st_bind_opt(s, 2, consult);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, at);
    }
    if (rc != 0) {
        st_done(s);
        return rc;
    }
    rc = update_one(st, s, out, "invite revoke");
    if (rc != SPK_ENOTFOUND) {
        return rc;
    }
    spk_invite_rec_t inv;
    /* Unknown, another consult's, or no longer revocable. */
    st_stmt_t *g = NULL;
    rc = st_prep(st->db, ST_INVITE_EACH,
                 "SELECT " INVITE_COLS
                 " FROM invites WHERE consult = ?1 AND (CAST(?2 AS TEXT) IS NULL OR"
                 " id = ?2) ORDER BY created_at, rowid",
                 &g);
    if (rc == 0) {
        rc = st_bind_opt(g, 1, consult);
    }
    if (rc == 0) {
        rc = st_bind_opt(g, 2, id);
    }
    if (rc == 0) {
        rc = st_one(g, invite_row, &inv, "invite get");
    }
    st_done(g);
    return rc != 0 ? rc : invite_state_err(&inv, 0);
}

typedef struct {
    spk_store_invite_cb cb;
    void *ud;
} invite_each_t;

static int invite_each_row(st_stmt_t *s, void *ud)
{
    invite_each_t *e = ud;
    spk_invite_rec_t inv;
    int rc = invite_row(s, &inv);
    return rc != 0 ? rc : e->cb(e->ud, &inv);
}

int spk_store_invite_each(spk_store_t *st, const char *consult, spk_store_invite_cb cb, void *ud)
{
    if (st == NULL || consult == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INVITE_EACH,
                     "SELECT " INVITE_COLS
                     " FROM invites WHERE consult = ?1 AND (CAST(?2 AS TEXT) IS NULL OR"
                     " id = ?2) ORDER BY created_at, rowid",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, consult);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, NULL);
    }
    invite_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, invite_each_row, &e, "invite each");
    }
    st_done(s);
    return rc;
}

int spk_store_invite_each_expiring(spk_store_t *st, int64_t after, int64_t until,
                                   spk_store_invite_cb cb, void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INVITE_EXPIRING,
                     "SELECT " INVITE_COLS " FROM invites WHERE used_at = 0 AND revoked_at = 0"
                     " AND expires_at > ?1 AND expires_at <= ?2 ORDER BY expires_at, rowid",
                     &s);
    if (rc != 0) {
        return rc;
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 1, after);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, until);
    }
    invite_each_t e = {cb, ud};
    rc = st_rows(s, invite_each_row, &e, "invite expiring");
    st_done(s);
    return rc;
}
