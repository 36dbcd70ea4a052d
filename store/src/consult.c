/* Consults and their participants. */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define CONSULT_COLS                                                                               \
    "id, practice, gp, patient, title, created_by, state, created_at, ended_at, planned_at,"       \
    " planned_end, started_at"

static int consult_row(sqlite3_stmt *s, void *out)
{
    spk_consult_rec_t *c = out;
    memset(c, 0, sizeof(*c));
    const st_out_t t[] = {ST_OUT(c->id),      ST_OUT(c->practice), ST_OUT(c->gp),
                          ST_OUT(c->patient), ST_OUT(c->title),    ST_OUT(c->created_by)};
    c->state = sqlite3_column_int(s, 6) == SPK_CONSULT_ENDED ? SPK_CONSULT_ENDED : SPK_CONSULT_OPEN;
    c->created_at = sqlite3_column_int64(s, 7);
    c->ended_at = sqlite3_column_int64(s, 8);
    c->planned_at = sqlite3_column_int64(s, 9);
    c->planned_end = sqlite3_column_int64(s, 10);
    c->started_at = sqlite3_column_int64(s, 11);
    return st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
}

int spk_store_consult_insert(spk_store_t *st, const spk_consult_rec_t *c)
{
    if (st == NULL || c == NULL || c->id[0] == '\0') {
        return SPK_EINVAL;
    }
    if (c->state != SPK_CONSULT_OPEN && c->state != SPK_CONSULT_ENDED) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_CONSULT_INSERT,
                        "INSERT INTO consults (" CONSULT_COLS
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(c->id),      ST_IN(c->practice), ST_IN(c->gp),
                         ST_IN(c->patient), ST_IN(c->title),    ST_IN(c->created_by)};
    rc = st_bind_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    sqlite3_bind_int(s, 7, (int)c->state);
    sqlite3_bind_int64(s, 8, c->created_at);
    sqlite3_bind_int64(s, 9, c->ended_at);
    sqlite3_bind_int64(s, 10, c->planned_at);
    sqlite3_bind_int64(s, 11, c->planned_end);
    sqlite3_bind_int64(s, 12, c->started_at);
    if (rc == 0) {
        rc = st_step_write(st, s, "consult insert");
    }
    st_release(st, ST_CONSULT_INSERT, s);
    return rc;
}

int spk_store_consult_get(spk_store_t *st, const char *id, spk_consult_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_CONSULT_GET, "SELECT " CONSULT_COLS " FROM consults WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_one(st->db, s, consult_row, out, "consult get");
    }
    st_release(st, ST_CONSULT_GET, s);
    return rc;
}

int spk_store_consult_end(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_CONSULT_END,
                   "UPDATE consults SET state = 1, ended_at = ?2 WHERE id = ?1 AND state = 0", &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (rc == 0) {
        rc = st_step_write(st, s, "consult end");
    }
    int changed = sqlite3_changes(st->db);
    st_release(st, ST_CONSULT_END, s);
    if (rc != 0 || changed > 0) {
        return rc;
    }
    spk_consult_rec_t c;
    rc = spk_store_consult_get(st, id, &c);
    return rc == 0 ? SPK_ECONSULTENDED : rc;
}

static int count_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
    return 0;
}

int spk_store_consult_count_open(spk_store_t *st, int64_t *out)
{
    if (st == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    *out = 0;
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_CONSULT_COUNT_OPEN, "SELECT count(*) FROM consults WHERE state = 0", &s);
    if (rc == 0) {
        rc = st_one(st->db, s, count_row, out, "consult count");
    }
    st_release(st, ST_CONSULT_COUNT_OPEN, s);
    return rc;
}

typedef struct {
    spk_store_consult_cb cb;
    void *ud;
} consult_each_t;

static int consult_each_row(sqlite3_stmt *s, void *ud)
{
    consult_each_t *e = ud;
    spk_consult_rec_t c;
    int rc = consult_row(s, &c);
    return rc != 0 ? rc : e->cb(e->ud, &c);
}

int spk_store_consult_each_open(spk_store_t *st, const char *practice, spk_store_consult_cb cb,
                                void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_CONSULT_EACH_OPEN,
                        "SELECT " CONSULT_COLS " FROM consults WHERE state = 0"
                        " AND (?1 IS NULL OR practice = ?1) ORDER BY created_at, rowid",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, practice);
    }
    consult_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(st->db, s, consult_each_row, &e, "consult each");
    }
    st_release(st, ST_CONSULT_EACH_OPEN, s);
    return rc;
}

/* ---- participants ---- */

#define PART_COLS "consult, id, sub, name, role, state, joined_at, updated_at, iss"

static int part_row(sqlite3_stmt *s, void *out)
{
    spk_participant_rec_t *p = out;
    memset(p, 0, sizeof(*p));
    const st_out_t t[] = {ST_OUT(p->consult), ST_OUT(p->id), ST_OUT(p->sub), ST_OUT(p->name)};
    const unsigned char *role = sqlite3_column_text(s, 4);
    p->role = role != NULL ? spk_role_parse((const char *)role) : SPK_ROLE_NONE;
    int state = sqlite3_column_int(s, 5);
    p->state = (state >= SPK_PART_LOBBY && state <= SPK_PART_LEFT) ? (spk_part_state_t)state
                                                                   : SPK_PART_LEFT;
    p->joined_at = sqlite3_column_int64(s, 6);
    p->updated_at = sqlite3_column_int64(s, 7);
    int rc = st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
    return rc != 0 ? rc : st_col_str(s, 8, p->iss, sizeof(p->iss));
}

int spk_store_participant_put(spk_store_t *st, const spk_participant_rec_t *p)
{
    if (st == NULL || p == NULL || p->consult[0] == '\0' || p->id[0] == '\0') {
        return SPK_EINVAL;
    }
    if (p->state < SPK_PART_LOBBY || p->state > SPK_PART_LEFT) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_PART_PUT,
                        "INSERT INTO participants (" PART_COLS ")"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                        " ON CONFLICT (consult, id) DO UPDATE SET sub = excluded.sub,"
                        " name = excluded.name, role = excluded.role,"
                        " state = excluded.state, joined_at = excluded.joined_at,"
                        " updated_at = excluded.updated_at, iss = excluded.iss",
                        &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(p->consult), ST_IN(p->id), ST_IN(p->sub), ST_IN(p->name)};
    rc = st_bind_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    if (rc == 0) {
        rc = st_bind_opt(s, 5, spk_role_name(p->role));
    }
    if (rc == 0) {
        const st_in_t iss = ST_IN(p->iss);
        rc = st_bind_texts(s, 9, &iss, 1);
    }
    sqlite3_bind_int(s, 6, (int)p->state);
    sqlite3_bind_int64(s, 7, p->joined_at);
    sqlite3_bind_int64(s, 8, p->updated_at);
    if (rc == 0) {
        rc = st_step_write(st, s, "participant put");
    }
    st_release(st, ST_PART_PUT, s);
    return rc;
}

int spk_store_participant_get(spk_store_t *st, const char *consult, const char *id,
                              spk_participant_rec_t *out)
{
    if (st == NULL || consult == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc =
        st_acquire(st, ST_PART_GET,
                   "SELECT " PART_COLS " FROM participants WHERE consult = ?1 AND id = ?2", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, consult);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, id);
    }
    if (rc == 0) {
        rc = st_one(st->db, s, part_row, out, "participant get");
    }
    st_release(st, ST_PART_GET, s);
    return rc;
}

typedef struct {
    spk_store_participant_cb cb;
    void *ud;
} part_each_t;

static int part_each_row(sqlite3_stmt *s, void *ud)
{
    part_each_t *e = ud;
    spk_participant_rec_t p;
    int rc = part_row(s, &p);
    return rc != 0 ? rc : e->cb(e->ud, &p);
}

int spk_store_participant_each(spk_store_t *st, const char *consult, spk_store_participant_cb cb,
                               void *ud)
{
    if (st == NULL || consult == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_PART_EACH,
                        "SELECT " PART_COLS " FROM participants WHERE consult = ?1"
                        " ORDER BY joined_at, rowid",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, consult);
    }
    part_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(st->db, s, part_each_row, &e, "participant each");
    }
    st_release(st, ST_PART_EACH, s);
    return rc;
}

int spk_store_consult_set_started(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_CONSULT_SET_STARTED,
                        "UPDATE consults SET started_at = ?2 WHERE id = ?1 AND started_at = 0", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    sqlite3_bind_int64(s, 2, at);
    if (rc == 0) {
        rc = st_step_write(st, s, "consult started");
    }
    st_release(st, ST_CONSULT_SET_STARTED, s);
    return rc;
}

int spk_store_consult_each_between(spk_store_t *st, const char *practice, int64_t from,
                                   int64_t until, spk_store_consult_cb cb, void *ud)
{
    if (st == NULL || practice == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, ST_CONSULT_EACH_BETWEEN,
                        "SELECT " CONSULT_COLS " FROM consults WHERE practice = ?1"
                        " AND (CASE planned_at WHEN 0 THEN created_at ELSE planned_at END) >= ?2"
                        " AND (CASE planned_at WHEN 0 THEN created_at ELSE planned_at END) < ?3"
                        " ORDER BY (CASE planned_at WHEN 0 THEN created_at ELSE planned_at END),"
                        " rowid",
                        &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, practice);
    }
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, until);
    consult_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(st->db, s, consult_each_row, &e, "consult each between");
    }
    st_release(st, ST_CONSULT_EACH_BETWEEN, s);
    return rc;
}
