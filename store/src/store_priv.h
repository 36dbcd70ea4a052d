/* Private to store/: the SQLite handle, the statement cache and small binding helpers. */
#ifndef SPK_STORE_PRIV_H
#define SPK_STORE_PRIV_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/store.h"

/* One slot per cached statement. */
typedef enum {
    SPK_ST_CONSULT_INSERT = 0,
    SPK_ST_CONSULT_GET,
    SPK_ST_CONSULT_END,
    SPK_ST_CONSULT_EACH_OPEN,
    SPK_ST_PART_PUT,
    SPK_ST_PART_GET,
    SPK_ST_PART_EACH,
    SPK_ST_INVITE_INSERT,
    SPK_ST_INVITE_USE,
    SPK_ST_INVITE_GET,
    SPK_ST_DELEG_INSERT,
    SPK_ST_DELEG_GET,
    SPK_ST_DELEG_REVOKE,
    SPK_ST_DELEG_ACTIVE,
    SPK_ST_DELEG_EACH,
    SPK_ST_FACT_PUT,
    SPK_ST_FACT_GET,
    SPK_ST_FACT_EACH,
    SPK_ST_AUDIT_HEAD,
    SPK_ST_AUDIT_INSERT,
    SPK_ST_AUDIT_WALK,
    SPK_ST_AUDIT_EACH,
    SPK_ST_AUDIT_EACH_PATIENT,
    SPK_ST_COUNT
} spk_stmt_id_t;

#define SPK_AUDIT_KEY_LEN 32
#define SPK_PATH_MAX 1024

struct spk_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[SPK_ST_COUNT];
    char dir[SPK_PATH_MAX];
    char head_path[SPK_PATH_MAX];
    char head_tmp_path[SPK_PATH_MAX];
    uint8_t audit_key[SPK_AUDIT_KEY_LEN];
    int lock_fd; /* audit.lock: serialises appends (DB row + anchor) across processes */
    bool anchor_warned;
};

/* Returns the cached statement for `id` (prepared on first use). When the cached one is in use
 * (an iterator callback re-entering the store), a fresh one is prepared instead; hand both
 * back with spk_st_release. */
int spk_st_acquire(spk_store_t *st, spk_stmt_id_t id, const char *sql, sqlite3_stmt **out);
void spk_st_release(spk_store_t *st, spk_stmt_id_t id, sqlite3_stmt *s);

/* Maps a SQLite result code to SPK_E* (constraint → EEXIST / ENOTFOUND, others → EIO) and logs
 * unexpected failures once. */
int spk_st_err(spk_store_t *st, int rc, const char *what);

/* Binds a NUL-terminated string that must fit in `cap` bytes; SPK_ERANGE if it does not. */
int spk_st_bind_str(sqlite3_stmt *s, int idx, const char *v, size_t cap);
/* Binds an optional key string (NULL binds SQL NULL). */
int spk_st_bind_opt(sqlite3_stmt *s, int idx, const char *v);
/* Copies text column `col` into dst (cap bytes incl. NUL); SPK_ERANGE if it does not fit. */
int spk_st_col_str(sqlite3_stmt *s, int col, char *dst, size_t cap);

/* True when the NUL-terminated field fits its array (a NUL within cap). */
bool spk_st_fits(const char *v, size_t cap);

/* Runs a one-shot SQL statement (BEGIN, COMMIT, ...). */
int spk_st_exec(spk_store_t *st, const char *sql);

#define SPK_ST_BIND_FIELD(s, idx, field) spk_st_bind_str((s), (idx), (field), sizeof(field))
#define SPK_ST_COL_FIELD(s, col, field) spk_st_col_str((s), (col), (field), sizeof(field))

/* audit.c: called by spk_store_open once the schema exists. */
int spk_audit_open(spk_store_t *st);
void spk_audit_close(spk_store_t *st);

#endif
