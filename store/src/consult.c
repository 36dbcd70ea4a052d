/* Consults and their participants. */
#include "store_priv.h"

#include <string.h>

#include "spk/error.h"

#define CONSULT_COLS "id, practice, gp, patient, title, created_by, state, created_at, ended_at"

static int consult_bind(sqlite3_stmt *s, const spk_consult_rec_t *c)
{
    int rc = SPK_ST_BIND_FIELD(s, 1, c->id);
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 2, c->practice);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 3, c->gp);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 4, c->patient);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 5, c->title);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 6, c->created_by);
    }
    if (rc == 0) {
        sqlite3_bind_int(s, 7, (int)c->state);
        sqlite3_bind_int64(s, 8, c->created_at);
        sqlite3_bind_int64(s, 9, c->ended_at);
    }
    return rc;
}

static int consult_row(sqlite3_stmt *s, spk_consult_rec_t *c)
{
    memset(c, 0, sizeof(*c));
    int rc = SPK_ST_COL_FIELD(s, 0, c->id);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 1, c->practice);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 2, c->gp);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 3, c->patient);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 4, c->title);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 5, c->created_by);
    }
    c->state = sqlite3_column_int(s, 6) == SPK_CONSULT_ENDED ? SPK_CONSULT_ENDED : SPK_CONSULT_OPEN;
    c->created_at = sqlite3_column_int64(s, 7);
    c->ended_at = sqlite3_column_int64(s, 8);
    return rc;
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
    int rc = spk_st_acquire(
        st, SPK_ST_CONSULT_INSERT,
        "INSERT INTO consults (" CONSULT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", &s);
    if (rc != 0) {
        return rc;
    }
    rc = consult_bind(s, c);
    if (rc == 0) {
        rc = spk_st_err(st, sqlite3_step(s), "consult insert");
    }
    spk_st_release(st, SPK_ST_CONSULT_INSERT, s);
    return rc;
}

int spk_store_consult_get(spk_store_t *st, const char *id, spk_consult_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_CONSULT_GET,
                            "SELECT " CONSULT_COLS " FROM consults WHERE id = ?1", &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, id);
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            rc = consult_row(s, out);
        } else {
            rc = step == SQLITE_DONE ? SPK_ENOTFOUND : spk_st_err(st, step, "consult get");
        }
    }
    spk_st_release(st, SPK_ST_CONSULT_GET, s);
    return rc;
}

int spk_store_consult_end(spk_store_t *st, const char *id, int64_t at)
{
    if (st == NULL || id == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_CONSULT_END,
                            "UPDATE consults SET state = 1, ended_at = ?2"
                            " WHERE id = ?1 AND state = 0",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, id);
    sqlite3_bind_int64(s, 2, at);
    if (rc == 0) {
        rc = spk_st_err(st, sqlite3_step(s), "consult end");
    }
    int changed = sqlite3_changes(st->db);
    spk_st_release(st, SPK_ST_CONSULT_END, s);
    if (rc != 0 || changed > 0) {
        return rc;
    }
    spk_consult_rec_t c;
    rc = spk_store_consult_get(st, id, &c);
    return rc == 0 ? SPK_ECONSULTENDED : rc;
}

int spk_store_consult_each_open(spk_store_t *st, const char *practice, spk_store_consult_cb cb,
                                void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_CONSULT_EACH_OPEN,
                            "SELECT " CONSULT_COLS " FROM consults WHERE state = 0"
                            " AND (?1 IS NULL OR practice = ?1) ORDER BY created_at, rowid",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, practice);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        spk_consult_rec_t c;
        rc = consult_row(s, &c);
        if (rc == 0) {
            rc = cb(ud, &c);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "consult each");
    }
    spk_st_release(st, SPK_ST_CONSULT_EACH_OPEN, s);
    return rc;
}

/* ---- participants ---- */

#define PART_COLS "consult, id, sub, name, role, state, joined_at, updated_at"

static int part_row(sqlite3_stmt *s, spk_participant_rec_t *p)
{
    memset(p, 0, sizeof(*p));
    int rc = SPK_ST_COL_FIELD(s, 0, p->consult);
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 1, p->id);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 2, p->sub);
    }
    if (rc == 0) {
        rc = SPK_ST_COL_FIELD(s, 3, p->name);
    }
    const unsigned char *role = sqlite3_column_text(s, 4);
    p->role = role != NULL ? spk_role_parse((const char *)role) : SPK_ROLE_NONE;
    int state = sqlite3_column_int(s, 5);
    p->state = (state >= SPK_PART_LOBBY && state <= SPK_PART_LEFT) ? (spk_part_state_t)state
                                                                   : SPK_PART_LEFT;
    p->joined_at = sqlite3_column_int64(s, 6);
    p->updated_at = sqlite3_column_int64(s, 7);
    return rc;
}

static int part_bind(sqlite3_stmt *s, const spk_participant_rec_t *p)
{
    int rc = SPK_ST_BIND_FIELD(s, 1, p->consult);
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 2, p->id);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 3, p->sub);
    }
    if (rc == 0) {
        rc = SPK_ST_BIND_FIELD(s, 4, p->name);
    }
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 5, spk_role_name(p->role));
        sqlite3_bind_int(s, 6, (int)p->state);
        sqlite3_bind_int64(s, 7, p->joined_at);
        sqlite3_bind_int64(s, 8, p->updated_at);
    }
    return rc;
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
    int rc = spk_st_acquire(st, SPK_ST_PART_PUT,
                            "INSERT INTO participants (" PART_COLS ")"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                            " ON CONFLICT (consult, id) DO UPDATE SET sub = excluded.sub,"
                            " name = excluded.name, role = excluded.role,"
                            " state = excluded.state, joined_at = excluded.joined_at,"
                            " updated_at = excluded.updated_at",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = part_bind(s, p);
    if (rc == 0) {
        rc = spk_st_err(st, sqlite3_step(s), "participant put");
    }
    spk_st_release(st, SPK_ST_PART_PUT, s);
    return rc;
}

int spk_store_participant_get(spk_store_t *st, const char *consult, const char *id,
                              spk_participant_rec_t *out)
{
    if (st == NULL || consult == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_PART_GET,
                            "SELECT " PART_COLS " FROM participants"
                            " WHERE consult = ?1 AND id = ?2",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, consult);
    if (rc == 0) {
        rc = spk_st_bind_opt(s, 2, id);
    }
    if (rc == 0) {
        int step = sqlite3_step(s);
        if (step == SQLITE_ROW) {
            rc = part_row(s, out);
        } else {
            rc = step == SQLITE_DONE ? SPK_ENOTFOUND : spk_st_err(st, step, "participant get");
        }
    }
    spk_st_release(st, SPK_ST_PART_GET, s);
    return rc;
}

int spk_store_participant_each(spk_store_t *st, const char *consult, spk_store_participant_cb cb,
                               void *ud)
{
    if (st == NULL || consult == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    sqlite3_stmt *s = NULL;
    int rc = spk_st_acquire(st, SPK_ST_PART_EACH,
                            "SELECT " PART_COLS " FROM participants WHERE consult = ?1"
                            " ORDER BY joined_at, rowid",
                            &s);
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_bind_opt(s, 1, consult);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        spk_participant_rec_t p;
        rc = part_row(s, &p);
        if (rc == 0) {
            rc = cb(ud, &p);
        }
    }
    if (rc == 0 && step != SQLITE_DONE) {
        rc = spk_st_err(st, step, "participant each");
    }
    spk_st_release(st, SPK_ST_PART_EACH, s);
    return rc;
}
