/* Practice system integrations: registrations and their keys, idempotency records, the webhook
 * queue, console links and named marks (docs/integration.md). */
#include "store_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#define LINK_CODE_BYTES 16 /* 128 bits */

/* Added to a store of any schema version that lacks them; every statement is idempotent. */
static const char *const integ_tables =
    "CREATE TABLE IF NOT EXISTS integrations ("
    " id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, practices TEXT NOT NULL,"
    " webhook_url TEXT NOT NULL, webhook_secret BLOB NOT NULL, created_at INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS integration_keys ("
    " integration TEXT NOT NULL REFERENCES integrations(id), kid TEXT NOT NULL,"
    " pub BLOB NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER NOT NULL,"
    " PRIMARY KEY (integration, kid));"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    " owner TEXT NOT NULL, key_hash BLOB NOT NULL, req_hash BLOB NOT NULL, reply BLOB NOT NULL,"
    " created_at INTEGER NOT NULL, PRIMARY KEY (owner, key_hash));"
    "CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency(created_at);"
    "CREATE TABLE IF NOT EXISTS webhook_queue ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, integration TEXT NOT NULL, seq INTEGER NOT NULL,"
    " event TEXT NOT NULL, created_at INTEGER NOT NULL, next_at_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, last_error TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS webhook_queue_integ ON webhook_queue(integration, id);"
    "CREATE TABLE IF NOT EXISTS console_links ("
    " code_hash BLOB PRIMARY KEY NOT NULL, consult TEXT NOT NULL REFERENCES consults(id),"
    " practice TEXT NOT NULL, gp TEXT NOT NULL, name TEXT NOT NULL, integration TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS invites_expiry ON invites(expires_at);";

static const char *const consult_cols[] = {"planned_at", "planned_end", "started_at"};

static int one_row(st_stmt_t *s, void *out)
{
    *(bool *)out = true;
    (void)s;
    return 0;
}

static bool has_column(spk_store_t *st, const char *table, const char *col)
{
    st_stmt_t *s = NULL;
    bool found = false;
    int rc = st_prep(st->db, ST_SCHEMA_COLUMN,
                     "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, table);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, col);
    }
    if (rc == 0) {
        st_one(s, one_row, &found, "schema column");
    }
    st_done(s);
    return found;
}

int st_schema_integration(spk_store_t *st)
{
    for (size_t i = 0; i < sizeof(consult_cols) / sizeof(consult_cols[0]); i++) {
        if (!has_column(st, "consults", consult_cols[i])) {
            char sql[128];
            snprintf(sql, sizeof(sql),
                     "ALTER TABLE consults ADD COLUMN %s INTEGER NOT NULL DEFAULT 0",
                     consult_cols[i]);
            int rc = st_db_exec(st->db, sql);
            if (rc != 0) {
                return rc;
            }
        }
    }
    /* The retry time was kept in seconds as next_at; in milliseconds now (a "1 s" backoff is
     * one second). The old values, read as milliseconds, are in the past: due at once. */
    if (has_column(st, "webhook_queue", "next_at")) {
        int rc =
            st_db_exec(st->db, "ALTER TABLE webhook_queue RENAME COLUMN next_at TO next_at_ms");
        if (rc != 0) {
            return rc;
        }
    }
    return st_db_exec(st->db, integ_tables);
}

/* ---- integrations ---- */

#define INTEG_COLS "id, name, practices, webhook_url, webhook_secret, created_at, revoked_at"

static int integ_row(st_stmt_t *s, void *out)
{
    spk_integration_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    const st_out_t t[] = {ST_OUT(r->id), ST_OUT(r->name), ST_OUT(r->practices),
                          ST_OUT(r->webhook_url)};
    st_col_blob32(s, 4, r->webhook_secret);
    r->created_at = st_col_i64(s, 5);
    r->revoked_at = st_col_i64(s, 6);
    return st_col_texts(s, 0, t, sizeof(t) / sizeof(t[0]));
}

int spk_store_integration_insert(spk_store_t *st, const spk_integration_rec_t *r)
{
    if (st == NULL || r == NULL || r->id[0] == '\0') {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(
        st->db, ST_INTEG_INSERT,
        "INSERT INTO integrations (" INTEG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(r->id), ST_IN(r->name), ST_IN(r->practices), ST_IN(r->webhook_url)};
    rc = st_bind_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
    if (rc == 0) {
        rc = st_bind_blob32(s, 5, r->webhook_secret);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 6, r->created_at);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 7, r->revoked_at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "integration insert");
    }
    st_done(s);
    return rc;
}

int spk_store_integration_get(spk_store_t *st, const char *id, spk_integration_rec_t *out)
{
    if (st == NULL || id == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc =
        st_prep(st->db, ST_INTEG_GET, "SELECT " INTEG_COLS " FROM integrations WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_one(s, integ_row, out, "integration get");
    }
    st_done(s);
    return rc;
}

int spk_store_integration_revoke(spk_store_t *st, const char *id, int64_t at)
{
    spk_integration_rec_t r;
    int rc = spk_store_integration_get(st, id, &r);
    if (rc != 0) {
        return rc;
    }
    if (r.revoked_at != 0) {
        return SPK_ESTATE;
    }
    st_stmt_t *s = NULL;
    rc = st_prep(st->db, ST_INTEG_REVOKE, "UPDATE integrations SET revoked_at = ?2 WHERE id = ?1",
                 &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "integration revoke");
    }
    st_done(s);
    return rc;
}

int spk_store_integration_set_webhook(spk_store_t *st, const char *id, const char *url,
                                      const uint8_t secret[32])
{
    if (st == NULL || id == NULL || url == NULL || secret == NULL) {
        return SPK_EINVAL;
    }
    if (!st_fits(url, SPK_URL_LEN)) {
        return SPK_ERANGE;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INTEG_WEBHOOK,
                     "UPDATE integrations SET webhook_url = ?2, webhook_secret = ?3"
                     " WHERE id = ?1",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, id);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, url);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 3, secret);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "integration webhook");
    }
    int64_t changed = st_changes(s);
    st_done(s);
    return rc != 0 ? rc : (changed > 0 ? 0 : SPK_ENOTFOUND);
}

typedef struct {
    spk_store_integration_cb cb;
    void *ud;
} integ_each_t;

static int integ_each_row(st_stmt_t *s, void *ud)
{
    integ_each_t *e = ud;
    spk_integration_rec_t r;
    int rc = integ_row(s, &r);
    return rc != 0 ? rc : e->cb(e->ud, &r);
}

int spk_store_integration_each(spk_store_t *st, spk_store_integration_cb cb, void *ud)
{
    if (st == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INTEG_EACH,
                     "SELECT " INTEG_COLS " FROM integrations ORDER BY created_at, rowid", &s);
    integ_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, integ_each_row, &e, "integration each");
    }
    st_done(s);
    return rc;
}

bool spk_integration_acts_for(const spk_integration_rec_t *r, const char *practice)
{
    size_t n = strlen(practice);
    for (const char *p = r->practices; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && n > 0 && strncmp(p, practice, n) == 0) {
            return true;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

/* ---- keys ---- */

static int key_row(st_stmt_t *s, void *out)
{
    spk_integration_key_rec_t *k = out;
    memset(k, 0, sizeof(*k));
    const st_out_t t[] = {ST_OUT(k->integration), ST_OUT(k->kid)};
    if (!st_col_blob32(s, 2, k->pub)) {
        return SPK_ERANGE;
    }
    k->created_at = st_col_i64(s, 3);
    k->retired_at = st_col_i64(s, 4);
    return st_col_texts(s, 0, t, 2);
}

int spk_store_integration_key_add(spk_store_t *st, const spk_integration_key_rec_t *k)
{
    if (st == NULL || k == NULL || k->kid[0] == '\0') {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INTEG_KEY_ADD,
                     "INSERT INTO integration_keys (integration, kid, pub, created_at,"
                     " retired_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                     &s);
    if (rc != 0) {
        return rc;
    }
    const st_in_t t[] = {ST_IN(k->integration), ST_IN(k->kid)};
    rc = st_bind_texts(s, 1, t, 2);
    if (rc == 0) {
        rc = st_bind_blob32(s, 3, k->pub);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 4, k->created_at);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 5, k->retired_at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "integration key add");
    }
    st_done(s);
    return rc;
}

int spk_store_integration_key_retire(spk_store_t *st, const char *integration, const char *keep,
                                     int64_t at)
{
    if (st == NULL || integration == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INTEG_KEY_RETIRE,
                     "UPDATE integration_keys SET retired_at = ?3 WHERE integration = ?1"
                     " AND retired_at = 0 AND (CAST(?2 AS TEXT) IS NULL OR kid <> ?2)",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, integration);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 2, keep);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "integration key retire");
    }
    st_done(s);
    return rc;
}

typedef struct {
    spk_store_integration_key_cb cb;
    void *ud;
} key_each_t;

static int key_each_row(st_stmt_t *s, void *ud)
{
    key_each_t *e = ud;
    spk_integration_key_rec_t k;
    int rc = key_row(s, &k);
    return rc != 0 ? rc : e->cb(e->ud, &k);
}

int spk_store_integration_key_each(spk_store_t *st, const char *integration,
                                   spk_store_integration_key_cb cb, void *ud)
{
    if (st == NULL || integration == NULL || cb == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_INTEG_KEY_EACH,
                     "SELECT integration, kid, pub, created_at, retired_at FROM"
                     " integration_keys WHERE integration = ?1 ORDER BY created_at, rowid",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, integration);
    }
    key_each_t e = {cb, ud};
    if (rc == 0) {
        rc = st_rows(s, key_each_row, &e, "integration key each");
    }
    st_done(s);
    return rc;
}

/* ---- idempotency ---- */

int spk_store_idem_put(spk_store_t *st, const spk_idem_rec_t *r)
{
    if (st == NULL || r == NULL || r->reply == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_IDEM_PUT,
                     "INSERT INTO idempotency (owner, key_hash, req_hash, reply, created_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)",
                     &s);
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, r->owner);
    if (rc == 0) {
        rc = st_bind_blob32(s, 2, r->key_hash);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 3, r->req_hash);
    }
    if (rc == 0) {
        rc = st_bind_blob(s, 4, r->reply, r->reply_len);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 5, r->created_at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "idempotency put");
    }
    st_done(s);
    return rc;
}

static int idem_row(st_stmt_t *s, void *out)
{
    spk_idem_rec_t *r = out;
    st_col_blob32(s, 0, r->req_hash);
    r->created_at = st_col_i64(s, 2);
    size_t n = 0;
    const void *b = st_col_bytes(s, 1, &n);
    r->reply = malloc(n > 0 ? n : 1);
    if (r->reply == NULL) {
        return SPK_ENOMEM;
    }
    if (n > 0) {
        memcpy(r->reply, b, n);
    }
    r->reply_len = n;
    return 0;
}

int spk_store_idem_get(spk_store_t *st, const char *owner, const uint8_t key_hash[32],
                       spk_idem_rec_t *out)
{
    if (st == NULL || owner == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_IDEM_GET,
                     "SELECT req_hash, reply, created_at FROM idempotency WHERE owner = ?1"
                     " AND key_hash = ?2",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, owner);
    }
    if (rc == 0) {
        rc = st_bind_blob32(s, 2, key_hash);
    }
    if (rc == 0) {
        rc = st_one(s, idem_row, out, "idempotency get");
    }
    st_done(s);
    if (rc == 0) {
        snprintf(out->owner, sizeof(out->owner), "%s", owner);
        memcpy(out->key_hash, key_hash, 32);
    }
    return rc;
}

int spk_store_idem_purge(spk_store_t *st, int64_t before)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_IDEM_PURGE, "DELETE FROM idempotency WHERE created_at < ?1", &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, before);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "idempotency purge");
    }
    st_done(s);
    return rc;
}

/* ---- marks ---- */

static int i64_row(st_stmt_t *s, void *out)
{
    *(int64_t *)out = st_col_i64(s, 0);
    return 0;
}

int spk_store_mark_get(spk_store_t *st, const char *name, int64_t *out)
{
    if (st == NULL || name == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    *out = 0;
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_MARK_GET, "SELECT v FROM marks WHERE name = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, name);
    }
    if (rc == 0) {
        rc = st_one(s, i64_row, out, "mark get");
    }
    st_done(s);
    return rc == SPK_ENOTFOUND ? 0 : rc;
}

int spk_store_mark_set(spk_store_t *st, const char *name, int64_t v)
{
    if (st == NULL || name == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_MARK_SET,
                     "INSERT INTO marks (name, v) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET"
                     " v = excluded.v",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, name);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, v);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "mark set");
    }
    st_done(s);
    return rc;
}

int spk_store_mark_purge(spk_store_t *st, const char *prefix, int64_t below, int64_t *n)
{
    if (st == NULL || prefix == NULL || prefix[0] == '\0') {
        return SPK_EINVAL;
    }
    /* by equality of the name's first characters, not by a range: a database collation may
     * order names with blanks and punctuation otherwise than their bytes */
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_MARK_PURGE,
                     "DELETE FROM marks WHERE substr(name, 1, ?2) = ?1 AND v < ?3", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, prefix);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, (int64_t)strlen(prefix));
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, below);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "mark purge");
    }
    if (rc == 0 && n != NULL) {
        *n = st_changes(s);
    }
    st_done(s);
    return rc;
}

int spk_store_mark_delete(spk_store_t *st, const char *name)
{
    if (st == NULL || name == NULL || name[0] == '\0') {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_MARK_DELETE, "DELETE FROM marks WHERE name = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, name);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "mark delete");
    }
    st_done(s);
    return rc;
}

/* Runs a marks statement that returns the mark's new value: ?1 name, then the values given. */
static int mark_returning(spk_store_t *st, st_stmt_id_t id, const char *sql, const char *name,
                          const int64_t *v, int nv, int64_t *out)
{
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, id, sql, &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, name);
    }
    for (int i = 0; rc == 0 && i < nv; i++) {
        rc = st_bind_i64(s, 2 + i, v[i]);
    }
    if (rc == 0) {
        rc = st_write_one(st, s, i64_row, out, "mark");
    }
    st_done(s);
    return rc;
}

int spk_store_mark_claim(spk_store_t *st, const char *name, int64_t v, int64_t replace,
                         int64_t *out)
{
    if (st == NULL || name == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    const int64_t args[] = {v, replace};
    return mark_returning(
        st, ST_MARK_CLAIM,
        "INSERT INTO marks (name, v) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET"
        " v = CASE WHEN marks.v = ?3 THEN excluded.v ELSE marks.v END RETURNING v",
        name, args, 2, out);
}

/* Increments the mark and returns the new value in one statement, so that processes (nodes)
 * enqueuing at once get different numbers. */
static int mark_next(spk_store_t *st, const char *name, int64_t *out)
{
    return mark_returning(st, ST_MARK_NEXT,
                          "INSERT INTO marks (name, v) VALUES (?1, 1) ON CONFLICT (name) DO UPDATE"
                          " SET v = marks.v + 1 RETURNING v",
                          name, NULL, 0, out);
}

/* ---- webhook queue ---- */

#define HOOK_COLS "id, seq, integration, event, created_at, next_at_ms, attempts, last_error"

static int hook_row(st_stmt_t *s, void *out)
{
    spk_webhook_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    r->id = st_col_i64(s, 0);
    r->seq = st_col_i64(s, 1);
    r->created_at = st_col_i64(s, 4);
    r->next_at_ms = st_col_i64(s, 5);
    r->attempts = (int)st_col_i64(s, 6);
    const st_out_t t[] = {ST_OUT(r->integration), ST_OUT(r->event)};
    int rc = st_col_texts(s, 2, t, 2);
    if (rc == 0) {
        rc = st_col_str(s, 7, r->last_error, sizeof(r->last_error));
    }
    return rc;
}

int spk_store_webhook_count(spk_store_t *st, const char *integration, int64_t *out)
{
    if (st == NULL || integration == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    *out = 0;
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_HOOK_COUNT,
                     "SELECT count(*) FROM webhook_queue WHERE integration = ?1", &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, integration);
    }
    if (rc == 0) {
        rc = st_one(s, i64_row, out, "webhook count");
    }
    st_done(s);
    return rc;
}

/* Drops the integration's oldest events so that at most `keep` remain. */
static int hook_trim(spk_store_t *st, const char *integration, int64_t keep, int64_t *dropped)
{
    int64_t n = 0;
    int rc = spk_store_webhook_count(st, integration, &n);
    if (rc != 0 || n <= keep) {
        return rc;
    }
    st_stmt_t *s = NULL;
    rc = st_prep(st->db, ST_HOOK_TRIM,
                 "DELETE FROM webhook_queue WHERE id IN (SELECT id FROM webhook_queue WHERE"
                 " integration = ?1 ORDER BY id LIMIT ?2)",
                 &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, integration);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, n - keep);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "webhook trim");
    }
    st_done(s);
    if (rc == 0 && dropped != NULL) {
        *dropped += n - keep;
    }
    return rc;
}

int spk_store_webhook_enqueue(spk_store_t *st, const char *integration, const char *event,
                              int64_t now, int max_queue, int64_t *dropped)
{
    if (st == NULL || integration == NULL || event == NULL || max_queue < 1) {
        return SPK_EINVAL;
    }
    if (!st_fits(event, sizeof(((spk_webhook_rec_t *)0)->event))) {
        return SPK_ERANGE;
    }
    char mark[SPK_ID_LEN + 16];
    snprintf(mark, sizeof(mark), "webhook_seq %s", integration);
    int64_t seq = 0;
    int rc = mark_next(st, mark, &seq);
    if (rc == 0) {
        rc = hook_trim(st, integration, max_queue - 1, dropped);
    }
    st_stmt_t *s = NULL;
    if (rc == 0) {
        rc = st_prep(st->db, ST_HOOK_INSERT,
                     "INSERT INTO webhook_queue (integration, seq, event, created_at, next_at_ms,"
                     " attempts, last_error) VALUES (?1, ?2, ?3, ?4, 0, 0, '')",
                     &s);
    }
    if (rc != 0) {
        return rc;
    }
    rc = st_bind_opt(s, 1, integration);
    if (rc == 0) {
        rc = st_bind_i64(s, 2, seq);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 3, event);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 4, now);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "webhook enqueue");
    }
    st_done(s);
    return rc;
}

int spk_store_webhook_head(spk_store_t *st, const char *integration, spk_webhook_rec_t *out)
{
    if (st == NULL || integration == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_HOOK_HEAD,
                     "SELECT " HOOK_COLS " FROM webhook_queue WHERE integration = ?1"
                     " ORDER BY id LIMIT 1",
                     &s);
    if (rc == 0) {
        rc = st_bind_opt(s, 1, integration);
    }
    if (rc == 0) {
        rc = st_one(s, hook_row, out, "webhook head");
    }
    st_done(s);
    return rc;
}

int spk_store_webhook_done(spk_store_t *st, int64_t id)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_HOOK_DONE, "DELETE FROM webhook_queue WHERE id = ?1", &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, id);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "webhook done");
    }
    st_done(s);
    return rc;
}

int spk_store_webhook_retry(spk_store_t *st, int64_t id, int attempts, int64_t next_at_ms,
                            const char *error)
{
    if (st == NULL || error == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_HOOK_RETRY,
                     "UPDATE webhook_queue SET attempts = ?2, next_at_ms = ?3, last_error = ?4"
                     " WHERE id = ?1",
                     &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, id);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, attempts);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 3, next_at_ms);
    }
    if (rc == 0) {
        rc = st_bind_opt(s, 4, error);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "webhook retry");
    }
    st_done(s);
    return rc;
}

int spk_store_webhook_expire(spk_store_t *st, int64_t before, int64_t *n)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_HOOK_EXPIRE, "DELETE FROM webhook_queue WHERE created_at < ?1", &s);
    if (rc == 0) {
        rc = st_bind_i64(s, 1, before);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "webhook expire");
    }
    if (n != NULL) {
        *n = rc == 0 ? st_changes(s) : 0;
    }
    st_done(s);
    return rc;
}

/* ---- console links ---- */

#define LINK_COLS                                                                                  \
    "code_hash, consult, practice, gp, name, integration, created_at, expires_at, used_at"

static int link_row(st_stmt_t *s, void *out)
{
    spk_console_link_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    if (!st_col_blob32(s, 0, r->code_hash)) {
        return SPK_ERANGE;
    }
    const st_out_t t[] = {ST_OUT(r->consult), ST_OUT(r->practice), ST_OUT(r->gp), ST_OUT(r->name),
                          ST_OUT(r->integration)};
    r->created_at = st_col_i64(s, 6);
    r->expires_at = st_col_i64(s, 7);
    r->used_at = st_col_i64(s, 8);
    return st_col_texts(s, 1, t, sizeof(t) / sizeof(t[0]));
}

int spk_store_console_link_create(spk_store_t *st, spk_console_link_rec_t *rec, char *code_out,
                                  size_t cap)
{
    if (st == NULL || rec == NULL || code_out == NULL || cap < 32) {
        return SPK_EINVAL;
    }
    char code[32];
    int rc = spk_random_id(code, sizeof(code), LINK_CODE_BYTES);
    if (rc != 0) {
        return rc;
    }
    spk_store_invite_hash(code, strlen(code), rec->code_hash);
    st_stmt_t *s = NULL;
    rc = st_prep(
        st->db, ST_LINK_INSERT,
        "INSERT INTO console_links (" LINK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)", &s);
    if (rc == 0) {
        rc = st_bind_blob32(s, 1, rec->code_hash);
    }
    const st_in_t t[] = {ST_IN(rec->consult), ST_IN(rec->practice), ST_IN(rec->gp),
                         ST_IN(rec->name), ST_IN(rec->integration)};
    if (rc == 0) {
        rc = st_bind_texts(s, 2, t, sizeof(t) / sizeof(t[0]));
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 7, rec->created_at);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 8, rec->expires_at);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "console link insert");
    }
    st_done(s);
    if (rc == 0) {
        memcpy(code_out, code, strlen(code) + 1);
    }
    spk_wipe(code, sizeof(code));
    return rc;
}

int spk_store_console_link_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                               spk_console_link_rec_t *out)
{
    if (st == NULL || code_hash == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    st_stmt_t *s = NULL;
    int rc = st_prep(st->db, ST_LINK_USE,
                     "UPDATE console_links SET used_at = ?2 WHERE code_hash = ?1 AND"
                     " used_at = 0 AND expires_at > ?2",
                     &s);
    if (rc == 0) {
        rc = st_bind_blob32(s, 1, code_hash);
    }
    if (rc == 0) {
        rc = st_bind_i64(s, 2, now);
    }
    if (rc == 0) {
        rc = st_step_write(st, s, "console link use");
    }
    int64_t changed = rc == 0 ? st_changes(s) : 0;
    st_done(s);
    if (rc != 0) {
        return rc;
    }
    s = NULL;
    rc = st_prep(st->db, ST_LINK_GET,
                 "SELECT " LINK_COLS " FROM console_links WHERE code_hash = ?1", &s);
    if (rc == 0) {
        rc = st_bind_blob32(s, 1, code_hash);
    }
    if (rc == 0) {
        rc = st_one(s, link_row, out, "console link get");
    }
    st_done(s);
    if (rc == SPK_ENOTFOUND) {
        return SPK_EINVITEINVALID;
    }
    if (rc != 0 || changed > 0) {
        return rc;
    }
    return out->used_at != 0 ? SPK_EINVITEUSED : SPK_EINVITEEXPIRED;
}
