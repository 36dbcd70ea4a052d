/* Invites: single use, expiring, bound to one consult. Only the SHA-256 of a code is stored. */
#include "store_priv.h"

#include <openssl/evp.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#define INVITE_CODE_BYTES 16 /* 128 bits → 22 base64url characters */
#define INVITE_COLS "code_hash, consult, created_by, created_at, expires_at, used_at, used_by"

void spk_store_invite_hash(const char *code, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    if (EVP_Digest(code, len, out, &n, EVP_sha256(), NULL) != 1) {
        /* Cannot happen with a working libcrypto; an all-zero hash matches no stored invite. */
        memset(out, 0, 32);
    }
}

static int invite_row(sqlite3_stmt *s, spk_invite_rec_t *inv)
{
    memset(inv, 0, sizeof(*inv));
    const void *h = sqlite3_column_blob(s, 0);
    if (h == NULL || sqlite3_column_bytes(s, 0) != 32) {
        return SPK_ERANGE;
    }
    memcpy(inv->code_hash, h, 32);
    int rc = SPK_ST_COL_FIELD(s, 1, inv->consult);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 2, inv->created_by);
    }
    inv->created_at = sqlite3_column_int64(s, 3);
    inv->expires_at = sqlite3_column_int64(s, 4);
    inv->used_at = sqlite3_column_int64(s, 5);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 6, inv->used_by);
    }
    return rc;
}

int spk_store_invite_insert(spk_store_t *st, const spk_invite_rec_t *inv)
{
    if (st == NULL || inv == NULL || inv->consult[0] == '\0') {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(
        st, SPK_ST_INVITE_INSERT,
        "INSERT INTO invites (" INVITE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_bind_blob(s, 1, inv->code_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = SPK_EIO;
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 2, inv->consult);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 3, inv->created_by);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 7, inv->used_by);
    }
    if (rc == 0) {
        sqlite3_bind_int64(s, 4, inv->created_at);
        sqlite3_bind_int64(s, 5, inv->expires_at);
        sqlite3_bind_int64(s, 6, inv->used_at);
        rc = spk_st_err(st, sqlite3_step(s), "invite insert");
    }
    spk_st_release(st, SPK_ST_INVITE_INSERT, s);
    return rc;
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
    if (!spk_st_fits(created_by, sizeof(inv.created_by))) {
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

/* Why an invite could not be used: unknown, used or expired. */
static int invite_why(spk_store_t *st, const uint8_t code_hash[32], int64_t now)
{
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_INVITE_GET,
                            "SELECT " INVITE_COLS " FROM invites WHERE code_hash = ?1", &s);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_bind_blob(s, 1, code_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = SPK_EIO;
    }
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            if (sqlite3_column_int64(s, 5) != 0) {
                rc = SPK_EINVITEUSED;
            } else if (sqlite3_column_int64(s, 4) <= now) {
                rc = SPK_EINVITEEXPIRED;
            } else {
                rc = SPK_ESTATE; /* unreachable: the UPDATE would have matched */
            }
        } else {
            rc = step == SQLITE_DONE ? SPK_EINVITEINVALID : spk_st_err(st, step, "invite get");
        }
    }
    spk_st_release(st, SPK_ST_INVITE_GET, s);
    return rc;
}

int spk_store_invite_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                         const char *participant_id, spk_invite_rec_t *out)
{
    if (st == NULL || code_hash == NULL || participant_id == NULL || now <= 0) {
        return SPK_EINVAL;
    }
    if (!spk_st_fits(participant_id, SPK_ID_LEN)) {
        return SPK_ERANGE;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_INVITE_USE,
                            "UPDATE invites SET used_at = ?2, used_by = ?3"
                            " WHERE code_hash = ?1 AND used_at = 0 AND expires_at > ?2"
                            " RETURNING " INVITE_COLS,
                            &s);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_bind_blob(s, 1, code_hash, 32, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = SPK_EIO;
    }
    sqlite3_bind_int64(s, 2, now);
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 3, participant_id);
    }
    bool used = false;
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            used = true;
            spk_invite_rec_t tmp;
            rc = invite_row(s, out != NULL ? out : &tmp);
            /* Finish the statement so the UPDATE commits before returning. */
            while ((step = sqlite3_step(s)) == SQLITE_ROW) {
            }
        }
        if (step != SQLITE_DONE && rc == 0) {
            rc = spk_st_err(st, step, "invite use");
        }
    }
    spk_st_release(st, SPK_ST_INVITE_USE, s);
    if (rc != 0 || used) {
        return rc;
    }
    return invite_why(st, code_hash, now);
}
