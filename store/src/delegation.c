/* Delegations: a practice lets a remote GP act for it for a limited time. */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define DELEG_COLS                                                                                 \
    "id, practice, grantee, granted_by, created_at, valid_from, valid_until, revoked_at,"          \
    " grantee_iss"

static int deleg_row(sqlite3_stmt *s, void *out)
{
    spk_delegation_rec_t *d = out;
    memset(d, 0, sizeof(*d));
    const st_out_t t[] = {ST_OUT(d->id), ST_OUT(d->practice), ST_OUT(d->grantee),
                          ST_OUT(d->granted_by)};
    d->created_at = sqlite3_column_int64(s, 4);
    d->valid_from = sqlite3_column_int64(s, 5);
    d->valid_until = sqlite3_column_int64(s, 6);
    d->revoked_at = sqlite3_column_int64(s, 7);
    int rc = st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
    return rc != 0 ? rc : st_col_str(s, 8, d->grantee_iss, sizeof(d->grantee_iss));
}

int spk_store_delegation_insert(spk_store_t *st, const spk_delegation_rec_t *d)
{
    if (st == NULL || d == NULL || d->id[0] == '\0' || d->practice[0] == '\0' ||
        d->grantee[0] == '\0') {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(
        st, ST_DELEG_INSERT,
        "INSERT INTO delegations (" DELEG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(d->id), ST_IN(d->practice), ST_IN(d->grantee), ST_IN(d->granted_by)};
    const st_in_t iss = ST_IN(d->grantee_iss);
    rc = st_bind_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    if (rc == 0) {
        rc = st_bind_texts(s, 9, &iss, 1);
    }
    sqlite3_bind_int64(s, 5, d->created_at);
    sqlite3_bind_int64(s, 6, d->valid_from);
    sqlite3_bind_int64(s, 7, d->valid_until);
    sqlite3_bind_int64(s, 8, d->revoked_at);
    if (rc == 0) {
        rc = st_step_write(st, s, "delegation insert");
    }
    st_release(st, ST_DELEG_INSERT, s);
    return rc;
}

int spk_store_delegation_get(spk_store_t *st, const char *id, spk_delegation_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_DELEG_GET, "SELECT " DELEG_COLS " FROM delegations WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_one(st->db, s, deleg_row, out, "delegation get");
    }
    st_release(st, ST_DELEG_GET, s);
    return rc;
}

int spk_store_delegation_revoke(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL || at <= 0) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_DELEG_REVOKE,
                   "UPDATE delegations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0", &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (rc == 0) {
        rc = st_step_write(st, s, "delegation revoke");
    }
    int changed = sqlite3_changes(st->db);
    st_release(st, ST_DELEG_REVOKE, s);
    if (rc != 0 || changed > 0) {
        return rc;
    }
    spk_delegation_rec_t d;
    rc = spk_store_delegation_get(st, id, &d);
    return rc == 0 ? SPK_ESTATE : rc;
}

int spk_store_delegation_find_active(spk_store_t *st, const char *practice, const char *grantee_iss,
                                     const char *grantee, int64_t now, spk_delegation_rec_t *out)
{
    if (st == NULL || practice == NULL || grantee_iss == NULL || grantee == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_DELEG_ACTIVE,
                        "SELECT " DELEG_COLS " FROM delegations"
                        " WHERE practice = ?1 AND grantee = ?2 AND grantee_iss = ?4"
                        " AND revoked_at = 0 AND valid_from <= ?3 AND valid_until > ?3"
                        " ORDER BY valid_until DESC, rowid LIMIT 1",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, practice);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, grantee);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 4, grantee_iss);
    }
    sqlite3_bind_int64(s, 3, now);
    if (rc == 0) {
        rc = st_one(st->db, s, deleg_row, out, "delegation active");
    }
    st_release(st, ST_DELEG_ACTIVE, s);
    return rc;
}

typedef struct {
    spk_store_delegation_cb cb;
    void *ud;
} deleg_each_t;

static int deleg_each_row(sqlite3_stmt *s, void *ud)
{
    deleg_each_t *e = ud;
    spk_delegation_rec_t d;
    int rc = deleg_row(s, &d);
    return rc != 0 ? rc : e->cb(e->ud, &d);
}

int spk_store_delegation_each(spk_store_t *st, const char *practice, spk_store_delegation_cb cb,
                              void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_DELEG_EACH,
                        "SELECT " DELEG_COLS " FROM delegations"
                        " WHERE (?1 IS NULL OR practice = ?1) ORDER BY created_at, rowid",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, practice);
    }
    deleg_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(st->db, s, deleg_each_row, &e, "delegation each");
    }
    st_release(st, ST_DELEG_EACH, s);
    return rc;
}
