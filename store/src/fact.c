/* Facts recorded in a consult (identity check, speak freely, consent, specialist). */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define FACT_COLS "consult, kind, subject, value, recorded_by, at, subject_iss"

static int fact_row(sqlite3_stmt *s, void *out)
{
    spk_fact_rec_t *f = out;
    memset(f, 0, sizeof(*f));
    const st_out_t t[] = {ST_OUT(f->consult), ST_OUT(f->kind), ST_OUT(f->subject), ST_OUT(f->value),
                          ST_OUT(f->recorded_by)};
    f->at = sqlite3_column_int64(s, 5);
    int rc = st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
    return rc != 0 ? rc : st_col_str(s, 6, f->subject_iss, sizeof(f->subject_iss));
}

int spk_store_fact_put(spk_store_t *st, const spk_fact_rec_t *f)
{
    if (st == NULL || f == NULL || f->consult[0] == '\0' || f->kind[0] == '\0') {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_FACT_PUT,
                        "INSERT INTO facts (" FACT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        " ON CONFLICT (consult, kind, subject_iss, subject) DO UPDATE SET"
                        " value = excluded.value, recorded_by = excluded.recorded_by,"
                        " at = excluded.at",
                        &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(f->consult), ST_IN(f->kind), ST_IN(f->subject), ST_IN(f->value),
                         ST_IN(f->recorded_by)};
    const st_in_t iss = ST_IN(f->subject_iss);
    rc = st_bind_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    if (rc == 0) {
        rc = st_bind_texts(s, 7, &iss, 1);
    }
    sqlite3_bind_int64(s, 6, f->at);
    if (rc == 0) {
        rc = st_step_write(st, s, "fact put");
    }
    st_release(st, ST_FACT_PUT, s);
    return rc;
}

int spk_store_fact_get(spk_store_t *st, const char *consult, const char *kind,
                       const char *subject_iss, const char *subject, spk_fact_rec_t *out)
{
    if (st == NULL || consult == NULL || kind == NULL || subject == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_FACT_GET,
                        "SELECT " FACT_COLS " FROM facts WHERE consult = ?1 AND kind = ?2"
                        " AND subject_iss = ?4 AND subject = ?3",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, consult);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, kind);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 3, subject);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 4, subject_iss != NULL ? subject_iss : "");
    }
    if (rc == 0) {
        rc = st_one(st->db, s, fact_row, out, "fact get");
    }
    st_release(st, ST_FACT_GET, s);
    return rc;
}

typedef struct {
    spk_store_fact_cb cb;
    void *ud;
} fact_each_t;

static int fact_each_row(sqlite3_stmt *s, void *ud)
{
    fact_each_t *e = ud;
    spk_fact_rec_t f;
    int rc = fact_row(s, &f);
    return rc != 0 ? rc : e->cb(e->ud, &f);
}

int spk_store_fact_each(spk_store_t *st, const char *consult, spk_store_fact_cb cb, void *ud)
{
    if (st == NULL || consult == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_FACT_EACH,
                        "SELECT " FACT_COLS " FROM facts WHERE consult = ?1"
                        " ORDER BY at, kind, subject",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, consult);
    }
    fact_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(st->db, s, fact_each_row, &e, "fact each");
    }
    st_release(st, ST_FACT_EACH, s);
    return rc;
}
