/* Private to store/: the statement layer both backends implement (SQLite in db_sqlite.c,
 * PostgreSQL in db_pg.c), transactions, the sync thread and small binding helpers.
 *
 * Statement layer. A connection (st_db_t) keeps one prepared statement per st_stmt_id_t; the
 * queries are written once, in the SQL both backends accept: parameters as ?1, ?2, ... (the
 * PostgreSQL backend rewrites them to $1, $2, ... when it prepares), integers as 64-bit, byte
 * strings as BLOB/bytea, text compared bytewise, no rowid unless the table declares one
 * (the PostgreSQL schema has a rowid column where the queries order by it), an untyped
 * parameter that only meets NULL written as CAST(?n AS TEXT). What differs between the two
 * (column types, WITHOUT ROWID, PRAGMAs, triggers, how a transaction begins, how the audit
 * append is serialised, how commits are made durable) lives in the backend and its schema.
 *
 * Use: st_prep(db, id, sql, &s); st_bind_*(s, ...); st_step(s) until it returns ST_DONE (or
 * an error), reading st_col_*(s, ...) while it returns ST_ROW; st_done(s). Column values stay
 * valid until the next st_step or st_done. A statement that is in use when its id is prepared
 * again (an iterator callback re-entering the store) is not disturbed: the second use gets a
 * statement of its own. */
#ifndef SPK_STORE_PRIV_H
#define SPK_STORE_PRIV_H

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
    ST_AUDIT_HASH_AT,
    ST_AUDIT_WALK,
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
    ST_MARK_NEXT,
    ST_MARK_CLAIM,
    ST_MARK_PURGE,
    ST_MARK_DELETE,
    ST_CHAT_CONV_INSERT,
    ST_CHAT_CONV_GET,
    ST_CHAT_CONV_FIND,
    ST_CHAT_CONV_CLOSE,
    ST_CHAT_GROUP_CREATE,
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
    ST_SCHEMA_VERSION,
    ST_SCHEMA_TABLES,
    ST_SCHEMA_COLUMN,
    ST_COUNT
} st_stmt_id_t;

#define ST_AUDIT_KEY_LEN 32
#define ST_PATH_MAX 1024
#define ST_TARGET_MAX 1024

/* st_step results besides SPK_E* codes. */
#define ST_DONE 0
#define ST_ROW 1

typedef struct st_db st_db_t;
typedef struct st_stmt st_stmt_t;
typedef struct st_sync st_sync_t;

typedef enum {
    ST_TXN_WRITE,    /* a write transaction; SQLite takes the write lock at once */
    ST_TXN_SNAPSHOT, /* a read-only transaction over one consistent snapshot */
    ST_TXN_COMMIT,
    ST_TXN_ROLLBACK,
} st_txn_op_t;

/* What a backend implements. Every function runs on the thread that owns the connection. */
typedef struct {
    const char *name; /* "sqlite" | "postgresql" */
    /* Returns a statement for id (prepared on first use on this connection). */
    int (*prepare)(st_db_t *db, st_stmt_id_t id, const char *sql, st_stmt_t **out);
    void (*release)(st_stmt_t *s);
    /* Parameters are 1-based; values are copied. */
    int (*bind_i64)(st_stmt_t *s, int idx, int64_t v);
    int (*bind_text)(st_stmt_t *s, int idx, const char *v, size_t n);
    int (*bind_blob)(st_stmt_t *s, int idx, const void *p, size_t n);
    int (*bind_null)(st_stmt_t *s, int idx);
    /* ST_ROW, ST_DONE or SPK_E* (SPK_EEXIST for a unique key, SPK_ENOTFOUND for a foreign key
     * violation; SPK_EIO with st_db_errmsg otherwise). */
    int (*step)(st_stmt_t *s);
    /* Columns are 0-based. */
    int64_t (*col_i64)(st_stmt_t *s, int col);
    /* Text or bytes of a column (NULL with *n = 0 for SQL NULL). */
    const void *(*col_bytes)(st_stmt_t *s, int col, size_t *n);
    /* Is the column's value stored as an integer (SQLite keeps any type in any column)? */
    bool (*col_is_int)(st_stmt_t *s, int col);
    /* Rows changed by the statement's last completed step. */
    int64_t (*changes)(st_stmt_t *s);
    /* Runs SQL text (one or more statements, no parameters). */
    int (*exec)(st_db_t *db, const char *sql);
    int (*txn)(st_db_t *db, st_txn_op_t op);
    /* Serialises audit appends across processes and nodes until the transaction ends (NULL:
     * the write transaction does already). May only be sent: a failure then fails the next
     * statement. */
    int (*lock_audit)(st_db_t *db);
    /* Commits without waiting for the server (NULL: the backend does not): 1 when the result
     * will reach db->on_commit later (from a later statement, poll or drain), 0 when committed
     * now, or an error (rolled back). */
    int (*commit_async)(st_db_t *db, uint64_t ticket);
    /* Reads results that have arrived without blocking; the socket to watch for them (-1: none)
     * and a count of re-established connections (the socket may change); how many commits
     * are outstanding; waiting for all of them. NULL without commit_async. */
    void (*poll)(st_db_t *db);
    int (*poll_fd)(const st_db_t *db, unsigned *gen);
    /* Is the connection usable (false while a lost one is being re-established)? NULL: always. */
    bool (*up)(const st_db_t *db);
    /* The marker row (st_db_t.mark_node; NULL on SQLite): mark sends, without waiting, the
     * update of the row to `ticket` inside the open write transaction or, outside one, together
     * with the next statement; mark_start creates the row at `ticket` and waits (1: the
     * connection is down, and the row is made once it is up, before on_up). */
    int (*mark)(st_db_t *db, uint64_t ticket);
    int (*mark_start)(st_db_t *db, uint64_t ticket);
    /* On another connection (the sync thread's, sync.c "Rows of nodes that are gone"):
     * mark_renew renews the lease of the node db->mark_node (*db_ms: the database's clock, in
     * ms, it was renewed at); mark_sweep removes the rows of the other nodes whose lease was
     * last renewed before before_ms (the database's clock). */
    int (*mark_renew)(st_db_t *db, int64_t *db_ms);
    int (*mark_sweep)(st_db_t *db, int64_t before_ms);
    size_t (*pending)(const st_db_t *db);
    int (*drain)(st_db_t *db);
    /* The next statement stepped on db, a write inside a transaction, is only sent: its step
     * returns ST_DONE at once (no rows, no count) and a refusal fails the next statement
     * waited for, or the commit (NULL: every statement is waited for). */
    void (*defer_next)(st_db_t *db);
    /* Makes every commit of any connection that returned before the call durable. */
    int (*flush)(st_db_t *db);
    /* Commits of this connection return before they are durable (on) or after (off). */
    int (*async_commit)(st_db_t *db, bool on);
    /* Housekeeping after a flush (SQLite: checkpoint a large WAL). NULL when none. */
    void (*maintain)(st_db_t *db);
    int (*schema_apply)(spk_store_t *st);
    void (*close)(st_db_t *db);
} st_backend_t;

/* What a connection waited for the database server for (PostgreSQL; SQLite does not wait on
 * a server): round trips and the wall time the calling thread was blocked in them. */
typedef enum {
    ST_WAIT_BEGIN,
    ST_WAIT_READ,  /* a statement that returned rows */
    ST_WAIT_WRITE, /* a statement that returned none */
    ST_WAIT_AUDIT_LOCK,
    ST_WAIT_COMMIT,
    ST_WAIT_OTHER, /* rollback, prepare, session and schema statements */
    ST_WAIT_N
} st_wait_t;

/* Every backend's connection starts with this. */
struct st_db {
    const st_backend_t *be;
    bool in_txn;
    char errmsg[256]; /* the last failure, for logs */
    uint64_t waits[ST_WAIT_N];
    uint64_t wait_ns[ST_WAIT_N];
    /* commit_async: the outcome of the commit with this ticket (0: made; SPK_EUNAVAILABLE: in
     * doubt, the connection failed before the answer; else refused) */
    void (*on_commit)(void *ud, uint64_t ticket, int rc);
    void *on_commit_ud;
    /* PostgreSQL's marker row of the store's own connection (spk_commit_mark, "" when none):
     * every transaction with a ticket also sets the row to its ticket, so the row names the
     * newest of them the database has (docs/architecture.md "A lost connection"). */
    char mark_node[33];
    int64_t mark_seen; /* flush(): the row as the flush began (-1: no row or none watched) */
    /* A lost connection was re-established and its marker read (-1: no row); on_commit_ud. */
    void (*on_up)(void *ud, int64_t mark);
    _Atomic uint64_t *reconnects; /* counts re-established connections (the store's; NULL) */
};

/* Every backend's statement starts with this. */
struct st_stmt {
    st_db_t *db;
    st_stmt_id_t id;
};

extern const st_backend_t st_sqlite_backend;
extern const st_backend_t st_pg_backend;

/* Opens a connection: SQLite on the file `path`; PostgreSQL with the libpq connection string
 * `target`. */
int st_sqlite_open(const char *path, st_db_t **out);
int st_pg_open(const char *target, st_db_t **out);
/* st_pg_open for a connection that can wait: when the server cannot be reached now (not when it
 * refuses), the connection is returned down and set up in the background with the back-off of
 * a lost one (db_pg.c "A lost connection"); every statement meanwhile is SPK_EUNAVAILABLE. */
int st_pg_open_later(const char *target, st_db_t **out);
/* st_pg_open without logging: SPK_EUNAVAILABLE when the server could not be reached, SPK_ECONFIG
 * when it refused (db_pg.c, connect_once), with the reason in why. */
int st_pg_connect(const char *target, st_db_t **out, char *why, size_t cap);
/* Opens another connection to the same database as st's (for the sync thread); on PostgreSQL
 * one that cannot be made now is set up later (st_pg_open_later). */
int st_db_open_same(const spk_store_t *st, st_db_t **out);

static inline int st_prep(st_db_t *db, st_stmt_id_t id, const char *sql, st_stmt_t **out)
{
    return db->be->prepare(db, id, sql, out);
}
/* Hands a statement back (NULL-safe). */
static inline void st_done(st_stmt_t *s)
{
    if (s != NULL) {
        s->db->be->release(s);
    }
}
static inline int st_bind_i64(st_stmt_t *s, int idx, int64_t v)
{
    return s->db->be->bind_i64(s, idx, v);
}
static inline int st_bind_blob(st_stmt_t *s, int idx, const void *p, size_t n)
{
    return s->db->be->bind_blob(s, idx, p, n);
}
static inline int st_step(st_stmt_t *s)
{
    return s->db->be->step(s);
}
static inline int64_t st_col_i64(st_stmt_t *s, int col)
{
    return s->db->be->col_i64(s, col);
}
static inline const void *st_col_bytes(st_stmt_t *s, int col, size_t *n)
{
    return s->db->be->col_bytes(s, col, n);
}
static inline int64_t st_changes(st_stmt_t *s)
{
    return s->db->be->changes(s);
}
static inline int st_db_exec(st_db_t *db, const char *sql)
{
    return db->be->exec(db, sql);
}
static inline const char *st_db_errmsg(const st_db_t *db)
{
    return db->errmsg;
}

/* Transactions on one connection (the store's own go through spk_store_begin). */
int st_db_begin(st_db_t *db, st_txn_op_t op);
int st_db_commit(st_db_t *db);
/* Commits with commit_async where the backend has it: 1 sent (outcome to on_commit), 0 made,
 * or an error (rolled back). */
int st_db_commit_async(st_db_t *db, uint64_t ticket);
void st_db_rollback(st_db_t *db);

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
int st_bind_texts(st_stmt_t *s, int first, const st_in_t *f, size_t n);
/* Reads columns first, first+1, ... into f[0..n); SPK_ERANGE when one does not fit. */
int st_col_texts(st_stmt_t *s, int first, const st_out_t *f, size_t n);
/* Binds an optional key string (NULL binds SQL NULL). */
int st_bind_opt(st_stmt_t *s, int idx, const char *v);
int st_bind_blob32(st_stmt_t *s, int idx, const uint8_t v[32]);
/* Copies text column `col` into dst (cap bytes incl. NUL); SPK_ERANGE if it does not fit. */
int st_col_str(st_stmt_t *s, int col, char *dst, size_t cap);
/* Copies a 32-byte blob column; false when the column is not exactly 32 bytes. */
bool st_col_blob32(st_stmt_t *s, int col, uint8_t out[32]);
/* A column as a boolean (stored as 0 / 1). */
bool st_col_bool(st_stmt_t *s, int col);

/* True when the NUL-terminated field fits its array (a NUL within cap). */
bool st_fits(const char *v, size_t cap);

/* Steps a query, calling row(s, ud) for each row until it returns non-zero (returned) or the
 * rows end (0). Logs a failure with `what`. */
int st_rows(st_stmt_t *s, int (*row)(st_stmt_t *s, void *ud), void *ud, const char *what);
/* Steps a query expected to return at most one row into out; SPK_ENOTFOUND without one. */
int st_one(st_stmt_t *s, int (*row)(st_stmt_t *s, void *out), void *out, const char *what);
/* Steps a write statement that returns at most one row (UPDATE ... RETURNING) like st_one, and
 * advances the ticket outside a transaction once the server has run it, with a row or not. */
int st_write_one(spk_store_t *st, st_stmt_t *s, int (*row)(st_stmt_t *s, void *out), void *out,
                 const char *what);
/* Steps a write statement to completion and advances the ticket outside a transaction. */
int st_step_write(spk_store_t *st, st_stmt_t *s, const char *what);
/* Logs a database failure (SPK_EIO, with st_db_errmsg) of `what` and returns rc. */
int st_failed(st_db_t *db, int rc, const char *what);

/* Binds texts to parameters 1..n and ints to n+1.., and runs one write statement; *changed
 * (may be NULL) receives the number of rows it changed. */
int st_write_texts(spk_store_t *st, st_stmt_id_t id, const char *sql, const st_in_t *t, size_t n,
                   const int64_t *ints, size_t n_ints, int64_t *changed, const char *what);

/* A write committed outside an explicit transaction: advances the ticket. */
void st_wrote(spk_store_t *st);

struct spk_store {
    st_db_t *db; /* the caller's connection */
    char dir[ST_PATH_MAX];
    char target[ST_TARGET_MAX]; /* PostgreSQL connection string; "" for SQLite */
    char db_path[ST_PATH_MAX];  /* SQLite database file */
    char head_path[ST_PATH_MAX];
    char head_tmp_path[ST_PATH_MAX];
    uint8_t audit_key[ST_AUDIT_KEY_LEN];
    int lock_fd; /* audit.lock: serialises anchor writes across processes */
    bool in_txn;
    bool txn_audited;             /* the open transaction appended audit entries */
    _Atomic uint64_t last_ticket; /* the newest commit's ticket (given to the caller) */
    _Atomic uint64_t committed;   /* the newest whose commit the database confirmed (≤ last) */
    _Atomic uint64_t durable;
    _Atomic bool commit_failed;  /* a commit was lost or cannot be accounted for: nothing is
                                  * durable any more */
    _Atomic bool sync_down;      /* the sync thread's connection is being re-established */
    _Atomic bool mark_made;      /* the marker row exists (made later: sync.c on_up) */
    _Atomic uint64_t reconnects; /* connections to PostgreSQL re-established (both) */
    _Atomic bool anchor_bad; /* the anchor did not match the chain: leave it for investigation */
    /* spk_store_audit_verify_recent: the chain is known intact up to (ver_seq, ver_hash) */
    int64_t ver_seq;
    uint8_t ver_hash[32];
    bool ver_v2;
    _Atomic bool full_failed; /* the sync thread's full walk found a fault */
    _Atomic int64_t full_bad_seq;
    st_sync_t *sync; /* NULL without a sync thread */
};

/* schema.c (SQLite) and schema_pg.c: create or migrate the schema. */
int st_schema_sqlite(spk_store_t *st);
int st_schema_pg(spk_store_t *st);
/* integration.c: the integration tables and consult planning columns, added to a SQLite store
 * of any schema version that lacks them (idempotent; inside st_schema_sqlite's transaction);
 * PostgreSQL's schema has them from its first version. */
int st_schema_integration(spk_store_t *st);
/* chat.c: tables added to schema 3 without a version step (CREATE TABLE IF NOT EXISTS). */
int st_schema_chat(spk_store_t *st);

/* audit.c */
int st_audit_open(spk_store_t *st);
void st_audit_close(spk_store_t *st);
/* Newest (seq, hash) of the chain as seen by db; (0, zeros) when empty. */
int st_audit_head(st_db_t *db, int64_t *seq, uint8_t hash[32]);
/* Moves the head anchor forward to (seq, hash), an entry known to be on disk, unless the anchor
 * is under investigation (anchor_bad), does not match the chain as db sees it, or is already
 * there. Cross-process safe (audit.lock). */
int st_audit_anchor_move(spk_store_t *st, st_db_t *db, int64_t seq, const uint8_t hash[32]);
/* A full walk of the chain in steps (for the sync thread): each step walks up to max_rows
 * entries in a read snapshot of db; at the end the anchor is checked and *done set. Returns 0,
 * SPK_EVERIFY (with *bad_seq, *done set) or an error. */
typedef struct st_walk st_walk_t;
st_walk_t *st_walk_new(const spk_store_t *st);
int st_walk_step(spk_store_t *st, st_walk_t *w, st_db_t *db, int max_rows, bool *done,
                 int64_t *bad_seq);
void st_walk_free(st_walk_t *w);
/* Walks the whole chain on db; 0 intact, SPK_EVERIFY with *bad_seq and why. */
int st_audit_walk_all(spk_store_t *st, st_db_t *db, int64_t *bad_seq, char *why, size_t why_len);
/* Formats the witness line for (seq, hash) at time ms into out. */
int st_audit_witness_line(int64_t seq, const uint8_t hash[32], int64_t ms, char *out, size_t cap);

/* sync.c */
void st_sync_kick(spk_store_t *st);
/* The database confirmed commits up to ticket t (control thread). */
void st_committed(spk_store_t *st, uint64_t t);
/* Before a write outside a transaction: its marker update (PostgreSQL; see st_db_t.mark_node),
 * sent with it. 0 without a marker row or inside a transaction. */
int st_mark_write(spk_store_t *st);

#endif
