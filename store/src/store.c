/* SQLite store: open/close, pragmas, transactions, the prepared-statement cache and the binding
 * helpers every table uses. */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define BUSY_TIMEOUT_MS 10000

bool st_fits(const char *v, size_t cap)
{
    return v != NULL && memchr(v, '\0', cap) != NULL;
}

int st_err_db(sqlite3 *db, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    default:
        break;
    }
    int ext = db != NULL ? sqlite3_extended_errcode(db) : rc;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
        return SPK_EEXIST;
    }
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return SPK_ENOTFOUND;
    }
    spk_error(0, "store: %s failed: %s (%d)", what,
              db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc), ext);
    return SPK_EIO;
}

int st_acquire(spk_store_t *st, st_stmt_id_t id, const char *sql, sqlite3_stmt **out)
{
    sqlite3_stmt *s = st->stmts[id];
    if (s != NULL && !sqlite3_stmt_busy(s)) {
        *out = s;
        return 0;
    }
    sqlite3_stmt *fresh = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, s == NULL ? SQLITE_PREPARE_PERSISTENT : 0, &fresh,
                                NULL);
    if (rc != SQLITE_OK) {
        return st_err(st, rc, "prepare");
    }
    if (s == NULL) {
        st->stmts[id] = fresh;
    }
    *out = fresh;
    return 0;
}

void st_release(spk_store_t *st, st_stmt_id_t id, sqlite3_stmt *s)
{
    if (s == NULL) {
        return;
    }
    if (st->stmts[id] == s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    } else {
        sqlite3_finalize(s);
    }
}

int st_bind_texts(sqlite3_stmt *s, int first, const st_in_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].v == NULL) {
            return SPK_EINVAL;
        }
        const char *end = memchr(f[i].v, '\0', f[i].cap);
        if (end == NULL) {
            return SPK_ERANGE;
        }
        if (sqlite3_bind_text(s, first + (int)i, f[i].v, (int)(end - f[i].v), SQLITE_TRANSIENT) !=
            SQLITE_OK) {
            return SPK_EIO;
        }
    }
    return 0;
}

int st_col_str(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (t == NULL) {
        n = 0;
    }
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

int st_col_texts(sqlite3_stmt *s, int first, const st_out_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = st_col_str(s, first + (int)i, f[i].v, f[i].cap);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int st_bind_opt(sqlite3_stmt *s, int idx, const char *v)
{
    int rc =
        v == NULL ? sqlite3_bind_null(s, idx) : sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : SPK_EIO;
}

int st_bind_blob32(sqlite3_stmt *s, int idx, const uint8_t v[32])
{
    return sqlite3_bind_blob(s, idx, v, 32, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : SPK_EIO;
}

bool st_col_blob32(sqlite3_stmt *s, int col, uint8_t out[32])
{
    const void *p = sqlite3_column_blob(s, col);
    if (p == NULL || sqlite3_column_bytes(s, col) != 32) {
        memset(out, 0, 32);
        return false;
    }
    memcpy(out, p, 32);
    return true;
}

int st_rows(sqlite3 *db, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ud), void *ud,
            const char *what)
{
    int step;
    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        int rc = row(s, ud);
        if (rc != 0) {
            return rc;
        }
    }
    return step == SQLITE_DONE ? 0 : st_err_db(db, step, what);
}

int st_one(sqlite3 *db, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *out), void *out,
           const char *what)
{
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        return row(s, out);
    }
    return step == SQLITE_DONE ? SPK_ENOTFOUND : st_err_db(db, step, what);
}

void st_wrote(spk_store_t *st)
{
    if (!st->in_txn) {
        atomic_fetch_add(&st->last_ticket, 1);
        if (st->sync != NULL) {
            st_sync_kick(st);
        } else {
            atomic_store(&st->durable, atomic_load(&st->last_ticket));
        }
    }
}

int st_step_write(spk_store_t *st, sqlite3_stmt *s, const char *what)
{
    int rc = st_err(st, sqlite3_step(s), what);
    if (rc == 0) {
        st_wrote(st);
    }
    return rc;
}

int st_exec_db(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        spk_error(0, "store: \"%.60s\" failed: %s", sql, msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_BUSY ? SPK_EIO : st_err_db(db, rc, "exec");
    }
    return 0;
}

/* ---- transactions ---- */

static int exec_cached(spk_store_t *st, st_stmt_id_t id, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int rc = st_acquire(st, id, sql, &s);
    if (rc == 0) {
        rc = st_err(st, sqlite3_step(s), sql);
    }
    st_release(st, id, s);
    return rc;
}

int spk_store_begin(spk_store_t *st)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    if (st->in_txn) {
        return SPK_ESTATE;
    }
    int rc = exec_cached(st, ST_BEGIN, "BEGIN IMMEDIATE");
    if (rc == 0) {
        st->in_txn = true;
        st->txn_audited = false;
    }
    return rc;
}

void spk_store_rollback(spk_store_t *st)
{
    if (st == NULL || !st->in_txn) {
        return;
    }
    st->in_txn = false;
    if (exec_cached(st, ST_ROLLBACK, "ROLLBACK") != 0 && !sqlite3_get_autocommit(st->db)) {
        spk_error(0, "store: rollback failed; the connection stays in a transaction");
    }
}

int spk_store_commit(spk_store_t *st, uint64_t *ticket)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    if (!st->in_txn) {
        return SPK_ESTATE;
    }
    int rc = exec_cached(st, ST_COMMIT, "COMMIT");
    if (rc != 0) {
        spk_store_rollback(st);
        return rc;
    }
    st->in_txn = false;
    uint64_t t = atomic_fetch_add(&st->last_ticket, 1) + 1;
    if (ticket != NULL) {
        *ticket = t;
    }
    if (st->sync != NULL) {
        st_sync_kick(st);
        return 0;
    }
    /* synchronous=FULL: durable now; the anchor follows the new head. */
    atomic_store(&st->durable, t);
    int64_t seq = 0;
    uint8_t hash[32];
    if (st->txn_audited && (st_audit_head(st->db, &seq, hash) != 0 ||
                            st_audit_anchor_move(st, st->db, seq, hash) != 0)) {
        spk_error(0, "audit: could not move the head anchor (the entries are stored)");
    }
    return 0;
}

bool spk_store_in_txn(const spk_store_t *st)
{
    return st != NULL && st->in_txn;
}

uint64_t spk_store_last_ticket(const spk_store_t *st)
{
    return atomic_load(&st->last_ticket);
}

uint64_t spk_store_durable(const spk_store_t *st)
{
    return atomic_load(&st->durable);
}

/* ---- open / close ---- */

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0) {
        return 0;
    }
    struct stat sb;
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        return 0;
    }
    spk_error(0, "store: cannot create directory %s: %s", dir, strerror(errno));
    return SPK_EIO;
}

/* SQLite creates the -wal and -shm files with the database file's mode, so creating the
 * database file 0600 first keeps all three private. */
static int precreate_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        spk_error(0, "store: cannot create %s: %s", path, strerror(errno));
        return SPK_EIO;
    }
    close(fd);
    return 0;
}

static int apply_pragmas(sqlite3 *db)
{
    int rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        return st_err_db(db, rc, "busy_timeout");
    }
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA secure_delete=ON",
    };
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        rc = st_exec_db(db, pragmas[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int st_open_db(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        spk_error(0, "store: cannot open %s: %s", path,
                  db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(src));
        sqlite3_close_v2(db);
        return SPK_EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    int rc = apply_pragmas(db);
    if (rc != 0) {
        sqlite3_close_v2(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : 0;
}

int spk_store_open(spk_store_t **out, const char *dir)
{
    if (out == NULL || dir == NULL || dir[0] == '\0') {
        return SPK_EINVAL;
    }
    *out = NULL;
    if (strlen(dir) + 32 >= ST_PATH_MAX) {
        return SPK_ERANGE;
    }
    spk_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return SPK_ENOMEM;
    }
    st->lock_fd = -1;
    snprintf(st->dir, sizeof(st->dir), "%s", dir);
    int rc = path_join(st->head_path, sizeof(st->head_path), dir, "audit.head");
    if (rc == 0) {
        rc = path_join(st->head_tmp_path, sizeof(st->head_tmp_path), dir, "audit.head.tmp");
    }
    if (rc == 0) {
        rc = path_join(st->db_path, sizeof(st->db_path), dir, "spreekkamer.db");
    }
    if (rc == 0) {
        rc = make_dir(dir);
    }
    if (rc == 0) {
        rc = precreate_file(st->db_path);
    }
    if (rc == 0) {
        rc = st_open_db(st->db_path, &st->db);
    }
    if (rc == 0) {
        rc = st_schema_apply(st);
    }
    if (rc == 0) {
        rc = st_audit_open(st);
    }
    if (rc != 0) {
        spk_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void spk_store_close(spk_store_t *st)
{
    if (st == NULL) {
        return;
    }
    spk_store_rollback(st);
    spk_store_sync_stop(st);
    for (int i = 0; i < ST_COUNT; i++) {
        if (st->stmts[i] != NULL) {
            sqlite3_finalize(st->stmts[i]);
        }
    }
    if (st->db != NULL) {
        sqlite3_close_v2(st->db);
    }
    st_audit_close(st);
    spk_wipe(st, sizeof(*st));
    free(st);
}
