/* The statement layer's backend-neutral part: binding and reading rows of records, stepping
 * queries, transactions on a connection (store_priv.h). */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"

bool st_fits(const char *v, size_t cap)
{
    return v != NULL && memchr(v, '\0', cap) != NULL;
}

int st_failed(st_db_t *db, int rc, const char *what)
{
    if (rc == SPK_EIO) {
        spk_error(0, "store: %s failed: %s", what, st_db_errmsg(db));
    }
    return rc;
}

int st_bind_texts(st_stmt_t *s, int first, const st_in_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].v == NULL) {
            return SPK_EINVAL;
        }
        const char *end = memchr(f[i].v, '\0', f[i].cap);
        if (end == NULL) {
            return SPK_ERANGE;
        }
        int rc = s->db->be->bind_text(s, first + (int)i, f[i].v, (size_t)(end - f[i].v));
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int st_bind_opt(st_stmt_t *s, int idx, const char *v)
{
    return v == NULL ? s->db->be->bind_null(s, idx) : s->db->be->bind_text(s, idx, v, strlen(v));
}

int st_bind_blob32(st_stmt_t *s, int idx, const uint8_t v[32])
{
    return st_bind_blob(s, idx, v, 32);
}

int st_col_str(st_stmt_t *s, int col, char *dst, size_t cap)
{
    size_t n = 0;
    const char *t = st_col_bytes(s, col, &n);
    if (n >= cap || (t != NULL && memchr(t, '\0', n) != NULL)) {
        dst[0] = '\0';
        return SPK_ERANGE;
    }
    if (n > 0) {
        memcpy(dst, t, n);
    }
    dst[n] = '\0';
    return 0;
}

int st_col_texts(st_stmt_t *s, int first, const st_out_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = st_col_str(s, first + (int)i, f[i].v, f[i].cap);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

bool st_col_blob32(st_stmt_t *s, int col, uint8_t out[32])
{
    size_t n = 0;
    const void *p = st_col_bytes(s, col, &n);
    if (p == NULL || n != 32) {
        memset(out, 0, 32);
        return false;
    }
    memcpy(out, p, 32);
    return true;
}

bool st_col_bool(st_stmt_t *s, int col)
{
    return st_col_i64(s, col) != 0;
}

int st_rows(st_stmt_t *s, int (*row)(st_stmt_t *s, void *ud), void *ud, const char *what)
{
    int step;
    while ((step = st_step(s)) == ST_ROW) {
        int rc = row(s, ud);
        if (rc != 0) {
            return rc;
        }
    }
    return st_failed(s->db, step, what);
}

int st_one(st_stmt_t *s, int (*row)(st_stmt_t *s, void *out), void *out, const char *what)
{
    int step = st_step(s);
    if (step == ST_ROW) {
        return row(s, out);
    }
    return step == ST_DONE ? SPK_ENOTFOUND : st_failed(s->db, step, what);
}

int st_write_one(spk_store_t *st, st_stmt_t *s, int (*row)(st_stmt_t *s, void *out), void *out,
                 const char *what)
{
    int step = st_mark_write(st);
    if (step == 0) {
        step = st_step(s);
    }
    int rc = step == ST_ROW    ? row(s, out)
             : step == ST_DONE ? SPK_ENOTFOUND
                               : st_failed(s->db, step, what);
    while (step == ST_ROW && st_step(s) == ST_ROW) {
    }
    if (step >= 0) {
        st_wrote(st); /* the server ran it, and its marker update with it */
    }
    return rc;
}

int st_step_write(spk_store_t *st, st_stmt_t *s, const char *what)
{
    int rc = st_mark_write(st);
    if (rc == 0) {
        rc = st_step(s);
    }
    while (rc == ST_ROW) {
        rc = st_step(s);
    }
    if (rc == ST_DONE) {
        st_wrote(st);
    }
    return st_failed(s->db, rc, what);
}

int st_write_texts(spk_store_t *st, st_stmt_id_t id, const char *sql, const st_in_t *t, size_t n,
                   const int64_t *ints, size_t n_ints, int64_t *changed, const char *what)
{
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, id, sql, &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_texts(s, 1, t, n);
    for (size_t i = 0; rc == 0 && i < n_ints; i++) {
        rc = st_bind_i64(s, (int)(n + 1 + i), ints[i]);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, what);
    }
    if (changed != NULL) {
        *changed = rc == 0 ? st_changes(s) : 0;
    }
    st_done(s);
    return rc;
}

/* ---- transactions on one connection ---- */

int st_db_begin(st_db_t *db, st_txn_op_t op)
{
    if (db->in_txn) {
        return SPK_ESTATE;
    }
    int rc = db->be->txn(db, op);
    if (rc == 0) {
        db->in_txn = true;
    }
    return st_failed(db, rc, "begin");
}

int st_db_commit(st_db_t *db)
{
    if (!db->in_txn) {
        return SPK_ESTATE;
    }
    int rc = db->be->txn(db, ST_TXN_COMMIT);
    if (rc != 0) {
        st_failed(db, rc, "commit");
        st_db_rollback(db);
        return rc == SPK_EEXIST || rc == SPK_ENOTFOUND || rc == SPK_EUNAVAILABLE ? rc : SPK_EIO;
    }
    db->in_txn = false;
    return 0;
}

int st_db_commit_async(st_db_t *db, uint64_t ticket)
{
    if (db->be->commit_async == NULL) {
        return st_db_commit(db);
    }
    if (!db->in_txn) {
        return SPK_ESTATE;
    }
    int rc = db->be->commit_async(db, ticket);
    if (rc < 0) {
        st_failed(db, rc, "commit");
        st_db_rollback(db);
        return rc == SPK_EEXIST || rc == SPK_ENOTFOUND || rc == SPK_EUNAVAILABLE ? rc : SPK_EIO;
    }
    db->in_txn = false;
    return rc;
}

void st_db_rollback(st_db_t *db)
{
    if (!db->in_txn) {
        return;
    }
    db->in_txn = false;
    if (db->be->txn(db, ST_TXN_ROLLBACK) != 0) {
        spk_error(0, "store: rollback failed: %s", st_db_errmsg(db));
    }
}
