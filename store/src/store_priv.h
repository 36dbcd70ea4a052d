/* Private to store/: the SQLite handle, the statement cache, transactions, the sync thread and
 * small binding helpers. */
#ifndef SPK_STORE_PRIV_H
#define SPK_STORE_PRIV_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/store.h"

/* One slot per cached statement. */
typedef enum {
    ST_CONSULT_INSERT = 0,
    ST_CONSULT_GET,
    ST_CONSULT_END,
    ST_CONSULT_EACH_OPEN,
    ST_CONSULT_COUNT_OPEN,
    ST_PART_PUT,
    ST_PART_GET,
    ST_PART_EACH,
    ST_INVITE_INSERT,
    ST_INVITE_USE,
    ST_INVITE_GET,
    ST_INVITE_REVOKE,
    ST_INVITE_EACH,
    ST_DELEG_INSERT,
    ST_DELEG_GET,
    ST_DELEG_REVOKE,
    ST_DELEG_ACTIVE,
    ST_DELEG_EACH,
    ST_FACT_PUT,
    ST_FACT_GET,
    ST_FACT_EACH,
    ST_AUDIT_HEAD,
    ST_AUDIT_INSERT,
    ST_AUDIT_EACH,
    ST_AUDIT_EACH_PATIENT,
    ST_AUDIT_EACH_PRACTICE,
    ST_CONSULT_SET_STARTED,
    ST_CONSULT_EACH_BETWEEN,
    ST_INVITE_EXPIRING,
    ST_INTEG_INSERT,
    ST_INTEG_GET,
    ST_INTEG_REVOKE,
    ST_INTEG_WEBHOOK,
    ST_INTEG_EACH,
    ST_INTEG_KEY_ADD,
    ST_INTEG_KEY_RETIRE,
    ST_INTEG_KEY_EACH,
    ST_IDEM_PUT,
    ST_IDEM_GET,
    ST_IDEM_PURGE,
    ST_HOOK_INSERT,
    ST_HOOK_HEAD,
    ST_HOOK_DONE,
    ST_HOOK_RETRY,
    ST_HOOK_COUNT,
    ST_HOOK_TRIM,
    ST_HOOK_EXPIRE,
    ST_LINK_INSERT,
    ST_LINK_USE,
    ST_LINK_GET,
    ST_MARK_GET,
    ST_MARK_SET,
    ST_CHAT_CONV_INSERT,
    ST_CHAT_CONV_GET,
    ST_CHAT_CONV_FIND,
    ST_CHAT_CONV_CLOSE,
    ST_CHAT_GROUP_PUT,
    ST_CHAT_GROUP_GET,
    ST_CHAT_CONV_OF_USER,
    ST_CHAT_CONV_OF_PRACTICE,
    ST_CHAT_MEMBER_PUT,
    ST_CHAT_MEMBER_GET,
    ST_CHAT_MEMBER_EACH,
    ST_CHAT_DEVICE_TOUCH,
    ST_CHAT_DEVICE_EACH,
    ST_CHAT_KP_DROP_LR,
    ST_CHAT_KP_PUT,
    ST_CHAT_KP_PICK,
    ST_CHAT_KP_USE,
    ST_CHAT_KP_COUNT,
    ST_CHAT_KP_OWNER,
    ST_CHAT_KP_EXPIRE,
    ST_CHAT_LOG_APPEND,
    ST_CHAT_LOG_LAST,
    ST_CHAT_LOG_EACH,
    ST_CHAT_LOG_RECENT,
    ST_CHAT_REPLAY_PUT,
    ST_CHAT_REPLAY_GET,
    ST_CHAT_LOG_TRIM,
    ST_CHAT_LOG_EXPIRE,
    ST_CHAT_LOG_TRIM_ACKED,
    ST_CHAT_CURSOR_PUT,
    ST_CHAT_CURSOR_GET,
    ST_CHAT_CURSOR_EACH,
    ST_CHAT_CURSOR_OF_DEVICE,
    ST_CHAT_FILE_INSERT,
    ST_CHAT_FILE_GET,
    ST_CHAT_FILE_EXPIRED,
    ST_CHAT_FILE_DELETE,
    ST_CHAT_FILE_BYTES,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
} st_stmt_id_t;

#define ST_AUDIT_KEY_LEN 32
#define ST_PATH_MAX 1024

typedef struct st_sync st_sync_t;

struct spk_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    char dir[ST_PATH_MAX];
    char db_path[ST_PATH_MAX];
    char head_path[ST_PATH_MAX];
    char head_tmp_path[ST_PATH_MAX];
    uint8_t audit_key[ST_AUDIT_KEY_LEN];
    int lock_fd; /* audit.lock: serialises anchor writes across processes */
    bool in_txn;
    bool txn_audited; /* the open transaction appended audit entries */
    _Atomic uint64_t last_ticket;
    _Atomic uint64_t durable;
    _Atomic bool anchor_bad; /* the anchor did not match the chain: leave it for investigation */
    /* spk_store_audit_verify_recent: the chain is known intact up to (ver_seq, ver_hash) */
    int64_t ver_seq;
    uint8_t ver_hash[32];
    bool ver_v2;
    _Atomic bool full_failed; /* the sync thread's full walk found a fault */
    _Atomic int64_t full_bad_seq;
    st_sync_t *sync; /* NULL without a sync thread */
};

/* Returns the cached statement for `id` (prepared on first use). When the cached one is in use
 * (an iterator callback re-entering the store), a fresh one is prepared instead; hand both
 * back with st_release. */
int st_acquire(spk_store_t *st, st_stmt_id_t id, const char *sql, sqlite3_stmt **out);
void st_release(spk_store_t *st, st_stmt_id_t id, sqlite3_stmt *s);

/* Maps a SQLite result code to SPK_E* (constraint → EEXIST / ENOTFOUND, others → EIO) and logs
 * unexpected failures once. db may be NULL. */
int st_err_db(sqlite3 *db, int rc, const char *what);
#define st_err(st, rc, what) st_err_db((st)->db, (rc), (what))

/* Text parameters and columns, bound or read in a row. A field must fit its capacity. */
typedef struct {
    const char *v;
    size_t cap;
} st_in_t;
typedef struct {
    char *v;
    size_t cap;
} st_out_t;
#define ST_IN(f)                                                                                   \
    {                                                                                              \
        (f), sizeof(f)                                                                             \
    }
#define ST_OUT(f)                                                                                  \
    {                                                                                              \
        (f), sizeof(f)                                                                             \
    }
/* Binds f[0..n) to parameters first, first+1, ...; SPK_ERANGE when one does not fit. */
int st_bind_texts(sqlite3_stmt *s, int first, const st_in_t *f, size_t n);
/* Reads columns first, first+1, ... into f[0..n); SPK_ERANGE when one does not fit. */
int st_col_texts(sqlite3_stmt *s, int first, const st_out_t *f, size_t n);
/* Binds an optional key string (NULL binds SQL NULL). */
int st_bind_opt(sqlite3_stmt *s, int idx, const char *v);
int st_bind_blob32(sqlite3_stmt *s, int idx, const uint8_t v[32]);
/* Copies text column `col` into dst (cap bytes incl. NUL); SPK_ERANGE if it does not fit. */
int st_col_str(sqlite3_stmt *s, int col, char *dst, size_t cap);
/* Copies a 32-byte blob column; false when the column is not exactly 32 bytes. */
bool st_col_blob32(sqlite3_stmt *s, int col, uint8_t out[32]);

/* True when the NUL-terminated field fits its array (a NUL within cap). */
bool st_fits(const char *v, size_t cap);

/* Steps a query, calling row(s, ud) for each row until it returns non-zero (returned) or the
 * rows end (0). Maps step errors with `what`. */
int st_rows(sqlite3 *db, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ud), void *ud,
            const char *what);
/* Steps a query expected to return at most one row into out; SPK_ENOTFOUND without one. */
int st_one(sqlite3 *db, sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *out), void *out,
           const char *what);
/* Steps a write statement to completion. */
int st_step_write(spk_store_t *st, sqlite3_stmt *s, const char *what);

/* Binds texts to parameters 1..n and ints to n+1.., and runs one write statement. */
int st_write_texts(spk_store_t *st, st_stmt_id_t id, const char *sql, const st_in_t *t, size_t n,
                   const int64_t *ints, size_t n_ints, const char *what);

/* Runs a one-shot SQL statement on db. */
int st_exec_db(sqlite3 *db, const char *sql);
#define st_exec(st, sql) st_exec_db((st)->db, (sql))

/* A write committed outside an explicit transaction: advances the ticket. */
void st_wrote(spk_store_t *st);

/* Opens a connection with the store's pragmas (WAL, synchronous=FULL, foreign keys). */
int st_open_db(const char *path, sqlite3 **out);

/* schema.c: creates or migrates the schema. */
int st_schema_apply(spk_store_t *st);
/* integration.c: the integration tables and consult planning columns, added to a store of any
 * schema version that lacks them (idempotent; inside st_schema_apply's transaction). */
int st_schema_integration(spk_store_t *st);
/* chat.c: tables added to schema 3 without a version step (CREATE TABLE IF NOT EXISTS). */
int st_schema_chat(spk_store_t *st);

/* audit.c */
int st_audit_open(spk_store_t *st);
void st_audit_close(spk_store_t *st);
/* Newest (seq, hash) of the chain as seen by db; (0, zeros) when empty. */
int st_audit_head(sqlite3 *db, int64_t *seq, uint8_t hash[32]);
/* Moves the head anchor forward to (seq, hash), an entry known to be on disk, unless the anchor
 * is under investigation (anchor_bad), does not match the chain as db sees it, or is already
 * there. Cross-process safe (audit.lock). */
int st_audit_anchor_move(spk_store_t *st, sqlite3 *db, int64_t seq, const uint8_t hash[32]);
/* A full walk of the chain in steps (for the sync thread): each step walks up to max_rows
 * entries in a read snapshot of db; at the end the anchor is checked and *done set. Returns 0,
 * SPK_EVERIFY (with *bad_seq, *done set) or an error. */
typedef struct st_walk st_walk_t;
st_walk_t *st_walk_new(const spk_store_t *st);
int st_walk_step(spk_store_t *st, st_walk_t *w, sqlite3 *db, int max_rows, bool *done,
                 int64_t *bad_seq);
void st_walk_free(st_walk_t *w);
/* Walks the whole chain on db; 0 intact, SPK_EVERIFY with *bad_seq and why. */
int st_audit_walk_all(spk_store_t *st, sqlite3 *db, int64_t *bad_seq, char *why, size_t why_len);
/* Formats the witness line for (seq, hash) at time ms into out. */
int st_audit_witness_line(int64_t seq, const uint8_t hash[32], int64_t ms, char *out, size_t cap);

/* sync.c */
void st_sync_kick(spk_store_t *st);

#endif
