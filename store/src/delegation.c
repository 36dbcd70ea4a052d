/* Delegations: a practice lets a remote GP act for it for a limited time. */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define DELEG_COLS                                                                                 \
    "id, practice, grantee, granted_by, created_at, valid_from, valid_until, revoked_at"

static int deleg_row(sqlite3_stmt *s, spk_delegation_rec_t *d)
{
    memset(d, 0, sizeof(*d));
    int rc = SPK_ST_COL_FIELD(s, 0, d->id);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 1, d->practice);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 2, d->grantee);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 3, d->granted_by);
    }
    d->created_at = sqlite3_column_int64(s, 4);
    d->valid_from = sqlite3_column_int64(s, 5);
    d->valid_until = sqlite3_column_int64(s, 6);
    d->revoked_at = sqlite3_column_int64(s, 7);
    return rc;
}

/* Runs a statement expected to return at most one delegation row. */
static int deleg_one(spk_store_t *st, sqlite3_stmt *s, spk_delegation_rec_t *out)
{
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        return deleg_row(s, out);
    }
    return step == SQLITE_DONE ? SPK_ENOTFOUND : spk_st_err(st, step, "delegation get");
}

int spk_store_delegation_insert(spk_store_t *st, const spk_delegation_rec_t *d)
{
    if (st == NULL || d == NULL || d->id[0] == '\0' || d->practice[0] == '\0' ||
        d->grantee[0] == '\0') {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(
        st, SPK_ST_DELEG_INSERT,
        "INSERT INTO delegations (" DELEG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);
    if (rc != 0) {
        return rc;
    }
    rc = SPK_ST_BIND_FIELD(s, 1, d->id);
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 2, d->practice);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 3, d->grantee);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 4, d->granted_by);
    }
    if (rc == 0) {
        sqlite3_bind_int64(s, 5, d->created_at);
        sqlite3_bind_int64(s, 6, d->valid_from);
        sqlite3_bind_int64(s, 7, d->valid_until);
        sqlite3_bind_int64(s, 8, d->revoked_at);
        rc = spk_st_err(st, sqlite3_step(s), "delegation insert");
    }
    spk_st_release(st, SPK_ST_DELEG_INSERT, s);
    return rc;
}

int spk_store_delegation_get(spk_store_t *st, const char *id, spk_delegation_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_DELEG_GET,
                            "SELECT " DELEG_COLS " FROM delegations WHERE id = ?1", &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, id);
    if (rc == 0) {
        rc = deleg_one(st, s, out);
    }
    spk_st_release(st, SPK_ST_DELEG_GET, s);
    return rc;
}

int spk_store_delegation_revoke(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL || at <= 0) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_DELEG_REVOKE,
                            "UPDATE delegations SET revoked_at = ?2"
                            " WHERE id = ?1 AND revoked_at = 0",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (rc == 0) {
        rc = spk_st_err(st, sqlite3_step(s), "delegation revoke");
    }
    int changed = sqlite3_changes(st->db);
    spk_st_release(st, SPK_ST_DELEG_REVOKE, s);
    if (rc != 0 || changed > 0) {
        return rc;
    }
    spk_delegation_rec_t d;
    rc = spk_store_delegation_get(st, id, &d);
    return rc == 0 ? SPK_ESTATE : rc;
}

int spk_store_delegation_find_active(spk_store_t *st, const char *practice, const char *grantee,
                                     int64_t now, spk_delegation_rec_t *out)
{
    if (st == NULL || practice == NULL || grantee == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_DELEG_ACTIVE,
                            "SELECT " DELEG_COLS " FROM delegations"
                            " WHERE practice = ?1 AND grantee = ?2 AND revoked_at = 0"
                            " AND valid_from <= ?3 AND valid_until > ?3"
                            " ORDER BY valid_until DESC, rowid LIMIT 1",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, practice);
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 2, grantee);
    }
    sqlite3_bind_int64(s, 3, now);
    if (rc == 0) {
        rc = deleg_one(st, s, out);
    }
    spk_st_release(st, SPK_ST_DELEG_ACTIVE, s);
    return rc;
}

int spk_store_delegation_each(spk_store_t *st, const char *practice, spk_store_delegation_cb cb,
                              void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_DELEG_EACH,
                            "SELECT " DELEG_COLS " FROM delegations"
                            " WHERE (?1 IS NULL OR practice = ?1) ORDER BY created_at, rowid",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, practice);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        spk_delegation_rec_t d;
        rc = deleg_row(s, &d);
        if (rc == 0) {
            rc = cb(ud, &d);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "delegation each");
    }
    spk_st_release(st, SPK_ST_DELEG_EACH, s);
    return rc;
}
