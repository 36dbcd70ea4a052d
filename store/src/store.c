/* SQLite store: open/close, schema, pragmas and the prepared-statement cache. */
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

#define SPK_SCHEMA_VERSION 1
#define SPK_BUSY_TIMEOUT_MS 10000

/* Every table is created if missing, so opening an existing store is idempotent. The audit
 * table refuses UPDATE and DELETE through triggers: a guard against mistakes, not against an
 * attacker (who can drop the triggers); the hash chain and the anchor are what detect that. */
static const char *const spk_schema_sql =
    "CREATE TABLE IF NOT EXISTS consults ("
    " id TEXT PRIMARY KEY NOT NULL, practice TEXT NOT NULL, gp TEXT NOT NULL,"
    " patient TEXT NOT NULL, title TEXT NOT NULL, created_by TEXT NOT NULL,"
    " state INTEGER NOT NULL, created_at INTEGER NOT NULL, ended_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS consults_open ON consults(state, practice, created_at);"
    "CREATE TABLE IF NOT EXISTS participants ("
    " consult TEXT NOT NULL REFERENCES consults(id), id TEXT NOT NULL, sub TEXT NOT NULL,"
    " name TEXT NOT NULL, role TEXT NOT NULL, state INTEGER NOT NULL,"
    " joined_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (consult, id));"
    "CREATE TABLE IF NOT EXISTS invites ("
    " code_hash BLOB PRIMARY KEY NOT NULL, consult TEXT NOT NULL REFERENCES consults(id),"
    " created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " used_at INTEGER NOT NULL, used_by TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS invites_consult ON invites(consult);"
    "CREATE TABLE IF NOT EXISTS delegations ("
    " id TEXT PRIMARY KEY NOT NULL, practice TEXT NOT NULL, grantee TEXT NOT NULL,"
    " granted_by TEXT NOT NULL, created_at INTEGER NOT NULL, valid_from INTEGER NOT NULL,"
    " valid_until INTEGER NOT NULL, revoked_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS delegations_pg ON delegations(practice, grantee);"
    "CREATE TABLE IF NOT EXISTS facts ("
    " consult TEXT NOT NULL REFERENCES consults(id), kind TEXT NOT NULL, subject TEXT NOT NULL,"
    " value TEXT NOT NULL, recorded_by TEXT NOT NULL, at INTEGER NOT NULL,"
    " PRIMARY KEY (consult, kind, subject));"
    "CREATE TABLE IF NOT EXISTS audit ("
    " seq INTEGER PRIMARY KEY NOT NULL, ts_ms INTEGER NOT NULL, event TEXT NOT NULL,"
    " outcome TEXT NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,"
    " on_behalf_of TEXT NOT NULL, access_point TEXT NOT NULL, patient TEXT NOT NULL,"
    " object TEXT NOT NULL, detail TEXT NOT NULL, prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_patient ON audit(patient, seq);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;";

bool spk_st_fits(const char *v, size_t cap)
{
    return v != NULL && memchr(v, '\0', cap) != NULL;
}

int spk_st_err(spk_store_t *st, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    default:
        break;
    }
    int ext = st != NULL ? sqlite3_extended_errcode(st->db) : rc;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
        return SPK_EEXIST;
    }
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return SPK_ENOTFOUND;
    }
    spk_error(0, "store: %s failed: %s (%d)", what,
              st != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc), ext);
    return SPK_EIO;
}

int spk_st_acquire(spk_store_t *st, spk_stmt_id_t id, const char *sql, sqlite3_stmt **out)
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
        return spk_st_err(st, rc, "prepare");
    }
    if (s == NULL) {
        st->stmts[id] = fresh;
    }
    *out = fresh;
    return 0;
}

void spk_st_release(spk_store_t *st, spk_stmt_id_t id, sqlite3_stmt *s)
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

int spk_st_bind_str(sqlite3_stmt *s, int idx, const char *v, size_t cap)
{
    if (v == NULL) {
        return SPK_EINVAL;
    }
    const char *end = memchr(v, '\0', cap);
    if (end == NULL) {
        return SPK_ERANGE;
    }
    if (sqlite3_bind_text(s, idx, v, (int)(end - v), SQLITE_TRANSIENT) != SQLITE_OK) {
        return SPK_EIO;
    }
    return 0;
}

int spk_st_bind_opt(sqlite3_stmt *s, int idx, const char *v)
{
    int rc =
        v == NULL ? sqlite3_bind_null(s, idx) : sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT);
    return rc == SQLITE_OK ? 0 : SPK_EIO;
}

int spk_st_col_str(sqlite3_stmt *s, int col, char *dst, size_t cap)
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

int spk_st_exec(spk_store_t *st, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        spk_error(0, "store: \"%s\" failed: %s", sql, msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_BUSY ? SPK_EIO : spk_st_err(st, rc, sql);
    }
    return 0;
}

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

static int apply_pragmas(spk_store_t *st)
{
    int rc = sqlite3_busy_timeout(st->db, SPK_BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK) {
        return spk_st_err(st, rc, "busy_timeout");
    }
    static const char *const pragmas[] = {
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA secure_delete=ON",
    };
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        rc = spk_st_exec(st, pragmas[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int apply_schema(spk_store_t *st)
{
    int rc = spk_st_exec(st, "BEGIN IMMEDIATE");
    if (rc != 0) {
        return rc;
    }
    rc = spk_st_exec(st, spk_schema_sql);
    if (rc == 0) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SPK_SCHEMA_VERSION);
        rc = spk_st_exec(st, sql);
    }
    if (rc == 0) {
        return spk_st_exec(st, "COMMIT");
    }
    spk_st_exec(st, "ROLLBACK");
    return rc;
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : 0;
}

static int open_db(spk_store_t *st)
{
    char path[SPK_PATH_MAX];
    int rc = path_join(path, sizeof(path), st->dir, "spreekkamer.db");
    if (rc == 0) {
        rc = precreate_file(path);
    }
    if (rc != 0) {
        return rc;
    }
    int src = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (src != SQLITE_OK) {
        spk_error(0, "store: cannot open %s: %s", path,
                  st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
        return SPK_EIO;
    }
    sqlite3_extended_result_codes(st->db, 1);
    rc = apply_pragmas(st);
    if (rc == 0) {
        rc = apply_schema(st);
    }
    return rc;
}

int spk_store_open(spk_store_t **out, const char *dir)
{
    if (out == NULL || dir == NULL || dir[0] == '\0') {
        return SPK_EINVAL;
    }
    *out = NULL;
    if (strlen(dir) + 32 >= SPK_PATH_MAX) {
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
        rc = make_dir(dir);
    }
    if (rc == 0) {
        rc = open_db(st);
    }
    if (rc == 0) {
        rc = spk_audit_open(st);
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
    for (int i = 0; i < SPK_ST_COUNT; i++) {
        if (st->stmts[i] != NULL) {
            sqlite3_finalize(st->stmts[i]);
        }
    }
    if (st->db != NULL) {
        sqlite3_close_v2(st->db);
    }
    spk_audit_close(st);
    spk_wipe(st, sizeof(*st));
    free(st);
}
