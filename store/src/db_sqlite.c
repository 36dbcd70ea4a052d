/* The statement layer on SQLite (store_priv.h): the embedded default, one file in WAL mode.
 *
 * Durability: a connection commits with synchronous=FULL (durable when the commit returns)
 * until async_commit switches it to synchronous=NORMAL, where a commit appends its frames to
 * the WAL with write() and returns; flush() then makes every commit so far durable with one
 * fdatasync of the WAL file (fsync on any descriptor of a file flushes that file), and
 * maintain() checkpoints the WAL once it is large (automatic checkpoints are off on the
 * connection that commits asynchronously, so that it never does that work itself). */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"

#define BUSY_TIMEOUT_MS 10000
#define CHECKPOINT_BYTES (4 * 1024 * 1024) /* checkpoint once the WAL is this large */

typedef struct {
    st_stmt_t base;
    sqlite3_stmt *h;
    bool cached; /* the connection's statement for base.id; else finalized on release */
    int64_t changes;
} lite_stmt_t;

typedef struct {
    st_db_t base;
    sqlite3 *h;
    lite_stmt_t stmts[ST_COUNT];
    sqlite3_stmt *txn[4]; /* BEGIN IMMEDIATE, BEGIN, COMMIT, ROLLBACK */
    char wal_path[ST_PATH_MAX + 8];
    int wal_fd;
    ino_t wal_ino;
} lite_db_t;

static lite_db_t *lite(st_db_t *db)
{
    return (lite_db_t *)db;
}

/* Maps a SQLite result code to SPK_E* (constraint → EEXIST / ENOTFOUND, others → EIO, with
 * the message kept for the log). */
static int map_rc(lite_db_t *d, int rc)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
        return ST_DONE;
    case SQLITE_ROW:
        return ST_ROW;
    default:
        break;
    }
    int ext = sqlite3_extended_errcode(d->h);
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
        return SPK_EEXIST;
    }
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return SPK_ENOTFOUND;
    }
    snprintf(d->base.errmsg, sizeof(d->base.errmsg), "%s (%d)", sqlite3_errmsg(d->h), ext);
    return SPK_EIO;
}

static int lite_prepare(st_db_t *db, st_stmt_id_t id, const char *sql, st_stmt_t **out)
{
    lite_db_t *d = lite(db);
    lite_stmt_t *s = &d->stmts[id];
    if (s->h != NULL && !sqlite3_stmt_busy(s->h)) {
        s->changes = 0;
        *out = &s->base;
        return 0;
    }
    sqlite3_stmt *fresh = NULL;
    int rc = sqlite3_prepare_v3(d->h, sql, -1, s->h == NULL ? SQLITE_PREPARE_PERSISTENT : 0, &fresh,
                                NULL);
    if (rc != SQLITE_OK) {
        return st_failed(db, map_rc(d, rc), "prepare");
    }
    if (s->h == NULL) {
        *s = (lite_stmt_t){.base = {db, id}, .h = fresh, .cached = true};
        *out = &s->base;
        return 0;
    }
    /* In use by an iterator further up the stack: a statement of its own. */
    lite_stmt_t *tmp = calloc(1, sizeof(*tmp));
    if (tmp == NULL) {
        sqlite3_finalize(fresh);
        return SPK_ENOMEM;
    }
    *tmp = (lite_stmt_t){.base = {db, id}, .h = fresh};
    *out = &tmp->base;
    return 0;
}

static void lite_release(st_stmt_t *st)
{
    lite_stmt_t *s = (lite_stmt_t *)st;
    if (s->cached) {
        sqlite3_reset(s->h);
        sqlite3_clear_bindings(s->h);
    } else {
        sqlite3_finalize(s->h);
        free(s);
    }
}

static int bind_rc(int rc)
{
    return rc == SQLITE_OK ? 0 : (rc == SQLITE_TOOBIG ? SPK_ERANGE : SPK_EIO);
}

static int lite_bind_i64(st_stmt_t *s, int idx, int64_t v)
{
    return bind_rc(sqlite3_bind_int64(((lite_stmt_t *)s)->h, idx, v));
}

static int lite_bind_text(st_stmt_t *s, int idx, const char *v, size_t n)
{
    return bind_rc(
        sqlite3_bind_text64(((lite_stmt_t *)s)->h, idx, v, n, SQLITE_TRANSIENT, SQLITE_UTF8));
}

static int lite_bind_blob(st_stmt_t *s, int idx, const void *p, size_t n)
{
    return bind_rc(sqlite3_bind_blob64(((lite_stmt_t *)s)->h, idx, p, n, SQLITE_TRANSIENT));
}

static int lite_bind_null(st_stmt_t *s, int idx)
{
    return bind_rc(sqlite3_bind_null(((lite_stmt_t *)s)->h, idx));
}

static int lite_step(st_stmt_t *st)
{
    lite_stmt_t *s = (lite_stmt_t *)st;
    lite_db_t *d = lite(st->db);
    int rc = map_rc(d, sqlite3_step(s->h));
    if (rc == ST_DONE) {
        s->changes = sqlite3_changes64(d->h);
    }
    return rc;
}

static int64_t lite_col_i64(st_stmt_t *s, int col)
{
    return sqlite3_column_int64(((lite_stmt_t *)s)->h, col);
}

static const void *lite_col_bytes(st_stmt_t *s, int col, size_t *n)
{
    sqlite3_stmt *h = ((lite_stmt_t *)s)->h;
    const void *p = sqlite3_column_blob(h, col);
    *n = p != NULL ? (size_t)sqlite3_column_bytes(h, col) : 0;
    return p;
}

static bool lite_col_is_int(st_stmt_t *s, int col)
{
    return sqlite3_column_type(((lite_stmt_t *)s)->h, col) == SQLITE_INTEGER;
}

static int64_t lite_changes(st_stmt_t *s)
{
    return ((lite_stmt_t *)s)->changes;
}

static int lite_exec(st_db_t *db, const char *sql)
{
    lite_db_t *d = lite(db);
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK) {
        return 0;
    }
    int mapped = map_rc(d, rc);
    snprintf(db->errmsg, sizeof(db->errmsg), "\"%.60s\": %s", sql,
             msg != NULL ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return mapped < 0 ? mapped : SPK_EIO;
}

static int lite_txn(st_db_t *db, st_txn_op_t op)
{
    static const char *const sql[] = {"BEGIN IMMEDIATE", "BEGIN", "COMMIT", "ROLLBACK"};
    lite_db_t *d = lite(db);
    if (op == ST_TXN_ROLLBACK && sqlite3_get_autocommit(d->h)) {
        return 0; /* SQLite rolled back already (e.g. after SQLITE_FULL) */
    }
    if (d->txn[op] == NULL) {
        int rc =
            sqlite3_prepare_v3(d->h, sql[op], -1, SQLITE_PREPARE_PERSISTENT, &d->txn[op], NULL);
        if (rc != SQLITE_OK) {
            return map_rc(d, rc);
        }
    }
    int rc = map_rc(d, sqlite3_step(d->txn[op]));
    sqlite3_reset(d->txn[op]);
    if (rc == SPK_EEXIST || rc == SPK_ENOTFOUND) {
        rc = SPK_EIO; /* a deferred constraint at commit: nothing of it is stored */
    }
    return rc == ST_DONE ? 0 : rc;
}

static int lite_lock_audit(st_db_t *db)
{
    (void)db; /* BEGIN IMMEDIATE holds the database's only write lock already */
    return 0;
}

/* Opens the WAL file, again whenever SQLite has replaced it (another inode at the path). */
static int wal_open(lite_db_t *d)
{
    struct stat sb;
    if (stat(d->wal_path, &sb) != 0) {
        snprintf(d->base.errmsg, sizeof(d->base.errmsg), "cannot stat %.200s: %s", d->wal_path,
                 strerror(errno));
        return SPK_EIO;
    }
    if (d->wal_fd >= 0 && sb.st_ino == d->wal_ino) {
        return 0;
    }
    if (d->wal_fd >= 0) {
        close(d->wal_fd);
    }
    d->wal_fd = open(d->wal_path, O_RDONLY | O_CLOEXEC);
    if (d->wal_fd < 0) {
        snprintf(d->base.errmsg, sizeof(d->base.errmsg), "cannot open %.200s: %s", d->wal_path,
                 strerror(errno));
        return SPK_EIO;
    }
    d->wal_ino = sb.st_ino;
    return 0;
}

static int lite_flush(st_db_t *db)
{
    lite_db_t *d = lite(db);
    int rc = wal_open(d);
    if (rc == 0 && fdatasync(d->wal_fd) != 0) {
        snprintf(db->errmsg, sizeof(db->errmsg), "flushing %.200s: %s", d->wal_path,
                 strerror(errno));
        rc = SPK_EIO;
    }
    return rc;
}

static int lite_async_commit(st_db_t *db, bool on)
{
    int rc = lite_exec(db, on ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    if (rc == 0 && on) {
        rc = lite_exec(db, "PRAGMA wal_autocheckpoint=0");
    }
    return rc;
}

static void lite_maintain(st_db_t *db)
{
    lite_db_t *d = lite(db);
    struct stat sb;
    if (d->wal_fd >= 0 && fstat(d->wal_fd, &sb) == 0 && sb.st_size > CHECKPOINT_BYTES) {
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spk_warn(0, "store: checkpoint failed: %s", sqlite3_errmsg(d->h));
        }
    }
}

static void lite_close(st_db_t *db)
{
    lite_db_t *d = lite(db);
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(d->stmts[i].h);
    }
    for (int i = 0; i < 4; i++) {
        sqlite3_finalize(d->txn[i]);
    }
    sqlite3_close_v2(d->h);
    if (d->wal_fd >= 0) {
        close(d->wal_fd);
    }
    free(d);
}

const st_backend_t st_sqlite_backend = {
    .name = "sqlite",
    .prepare = lite_prepare,
    .release = lite_release,
    .bind_i64 = lite_bind_i64,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .col_i64 = lite_col_i64,
    .col_bytes = lite_col_bytes,
    .col_is_int = lite_col_is_int,
    .changes = lite_changes,
    .exec = lite_exec,
    .txn = lite_txn,
    .lock_audit = lite_lock_audit,
    .flush = lite_flush,
    .async_commit = lite_async_commit,
    .maintain = lite_maintain,
    .schema_apply = st_schema_sqlite,
    .close = lite_close,
};

static int apply_pragmas(lite_db_t *d)
{
    int rc = sqlite3_busy_timeout(d->h, BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        return map_rc(d, rc);
    }
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA secure_delete=ON",
    };
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        rc = lite_exec(&d->base, pragmas[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int st_sqlite_open(const char *path, st_db_t **out)
{
    lite_db_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return SPK_ENOMEM;
    }
    d->base.be = &st_sqlite_backend;
    d->wal_fd = -1;
    snprintf(d->wal_path, sizeof(d->wal_path), "%s-wal", path);
    int src = sqlite3_open_v2(
        path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        spk_error(0, "store: cannot open %s: %s", path,
                  d->h != NULL ? sqlite3_errmsg(d->h) : sqlite3_errstr(src));
        sqlite3_close_v2(d->h);
        free(d);
        return SPK_EIO;
    }
    sqlite3_extended_result_codes(d->h, 1);
    int rc = apply_pragmas(d);
    if (rc != 0) {
        spk_error(0, "store: %s: %s", path, d->base.errmsg);
        lite_close(&d->base);
        return rc;
    }
    *out = &d->base;
    return 0;
}
