/* Facts recorded in a consult (identity check, speak freely, consent, specialist). */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define FACT_COLS "consult, kind, subject, value, recorded_by, at"

static int fact_row(sqlite3_stmt *s, spk_fact_rec_t *f)
{
    memset(f, 0, sizeof(*f));
    int rc = SPK_ST_COL_FIELD(s, 0, f->consult);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 1, f->kind);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 2, f->subject);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 3, f->value);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 4, f->recorded_by);
    }
    f->at = sqlite3_column_int64(s, 5);
    return rc;
}

int spk_store_fact_put(spk_store_t *st, const spk_fact_rec_t *f)
{
    if (st == NULL || f == NULL || f->consult[0] == '\0' || f->kind[0] == '\0') {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_FACT_PUT,
                            "INSERT INTO facts (" FACT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                            " ON CONFLICT (consult, kind, subject) DO UPDATE SET"
                            " value = excluded.value, recorded_by = excluded.recorded_by,"
                            " at = excluded.at",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = SPK_ST_BIND_FIELD(s, 1, f->consult);
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 2, f->kind);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 3, f->subject);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 4, f->value);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 5, f->recorded_by);
    }
    if (rc == 0) {
        sqlite3_bind_int64(s, 6, f->at);
        rc = spk_st_err(st, sqlite3_step(s), "fact put");
    }
    spk_st_release(st, SPK_ST_FACT_PUT, s);
    return rc;
}

int spk_store_fact_get(spk_store_t *st, const char *consult, const char *kind, const char *subject,
                       spk_fact_rec_t *out)
{
    if (st == NULL || consult == NULL || kind == NULL || subject == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_FACT_GET,
                            "SELECT " FACT_COLS " FROM facts"
                            " WHERE consult = ?1 AND kind = ?2 AND subject = ?3",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, consult);
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 2, kind);
    }
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 3, subject);
    }
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            rc = fact_row(s, out);
        } else {
            rc = step == SQLITE_DONE ? SPK_ENOTFOUND : spk_st_err(st, step, "fact get");
        }
    }
    spk_st_release(st, SPK_ST_FACT_GET, s);
    return rc;
}

int spk_store_fact_each(spk_store_t *st, const char *consult, spk_store_fact_cb cb, void *ud)
{
    if (st == NULL || consult == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_FACT_EACH,
                            "SELECT " FACT_COLS " FROM facts WHERE consult = ?1"
                            " ORDER BY at, kind, subject",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, consult);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        spk_fact_rec_t f;
        rc = fact_row(s, &f);
        if (rc == 0) {
            rc = cb(ud, &f);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "fact each");
    }
    spk_st_release(st, SPK_ST_FACT_EACH, s);
    return rc;
}
