/* The statement layer on PostgreSQL through libpq (store_priv.h), for deployments beyond one
 * machine (docs/architecture.md "State", "The PostgreSQL store").
 *
 * Every statement is prepared once per connection (named "spk<id>", the ?n parameters
 * rewritten to $n) and run as one command whose whole result is fetched into the client (so an
 * iterator callback may run other statements on the same connection). Parameters go as text
 * (integers in decimal, so that the server may infer int4 or int8) and byte strings in binary;
 * results come in binary (integers big endian, bytea raw).
 *
 * Pipeline mode (libpq). The connection sends commands without waiting for each answer; their
 * results come back in order. (A caller may also have a write of a transaction only sent,
 * defer_next: the chat batch's appends, whose refusal only matters for the whole batch.) A
 * statement whose result the caller reads (every prepared statement, ROLLBACK, a synchronous
 * COMMIT) ends a sync group and is waited for: one round trip. Three commands are only sent, not
 * waited for: BEGIN and the audit lock (pg_advisory_xact_lock) go out in the sync group of the
 * statement that follows them (a failure of either fails that statement, and PostgreSQL skips the
 * rest of the group, so nothing runs outside the transaction or without the lock), and with the
 * sync thread running COMMIT goes out as a sync group of its own whose result the control thread
 * reads later (pg_commit_async): with the next statement's round trip, or from the event loop when
 * the socket turns readable (spk_store_poll). The store counts such a commit as made only when its
 * result has arrived (on_commit); only then can the sync thread's flush cover it. A COMMIT is
 * sent this way only when every earlier command of its transaction is known to have
 * succeeded, so the one way it can still fail is the connection or the server failing in the
 * middle, which leaves the commit in doubt: the store then stops acknowledging anything
 * (on_commit with an error, like a failed flush). Multi-statement SQL text (schema, session
 * settings) leaves pipeline mode for its run.
 *
 * Durability: the connection commits with synchronous_commit on (durable when COMMIT returns)
 * until async_commit switches it off: COMMIT then returns once the commit record is in the WAL
 * buffers, without waiting for the WAL flush. flush() on another connection (the sync
 * thread's) commits a one-row change with synchronous_commit on; PostgreSQL writes the WAL in
 * order and flushes it up to that commit record, so every commit that returned before
 * (of every connection and node) is durable when it returns.
 *
 * A lost connection. When the connection breaks (the server restarted or ended the session, the
 * network or a proxy dropped it), what was outstanding fails (a COMMIT among it is in doubt:
 * on_commit with SPK_EUNAVAILABLE), the statement that found it fails with SPK_EUNAVAILABLE, and
 * the connection is down: every command is refused with SPK_EUNAVAILABLE (inside a transaction
 * until the caller rolls back) while reconnect_step sets a new one up without ever blocking
 * (PQconnectStart, PQconnectPoll when poll() with timeout 0 finds the socket ready), moved on by
 * every call and by pg_poll. Once connected: the session settings again, statements prepared
 * again on use, and on the store's own connection its marker row read (store_priv.h
 * st_db_t.mark_node, sync.c) and handed to on_up before any statement runs. A statement outside
 * a transaction has succeeded only once the end of its sync group has come back, not just its
 * result: PostgreSQL commits its implicit transaction there (the sync thread's flush is one). */
#include "store_priv.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define MAX_PARAMS 24
#define NO_VALUE SIZE_MAX
/* Reconnecting (see "A lost connection" above): the first attempt at once, then after 0.1 s,
 * doubling up to 2 s (a restarted server is found within 2 s of accepting connections); an
 * attempt that has not completed after 10 s is abandoned. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 2000
#define ATTEMPT_MS 10000
/* The control connection's marker row (store_priv.h, st_db_t.mark_node). */
#define MARK_SQL "UPDATE spk_commit_mark SET ticket = $2 WHERE node = $1"
#define MARK_READ_SQL "SELECT ticket FROM spk_commit_mark WHERE node = $1 FOR UPDATE NOWAIT"
/* pg_advisory_xact_lock key of the audit append: "spkaudit" */
#define AUDIT_LOCK_KEY "8319669543063349620"

/* Type OIDs of the integer results (pg_type.h is not part of libpq's headers). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23

typedef struct {
    st_stmt_t base;
    bool cached, busy;
    bool deferred; /* sent without waiting: no result */
    int n_params;
    size_t off[MAX_PARAMS]; /* into buf, NO_VALUE for NULL */
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    char *buf;
    size_t buf_len, buf_cap;
    PGresult *res;
    int row, n_rows;
    int64_t changes;
} pg_stmt_t;

/* A command sent whose result has not been read yet. */
typedef enum {
    Q_TARGET,   /* the statement being waited for (always the newest entry) */
    Q_DEFERRED, /* BEGIN, the audit lock: a failure fails the rest of its sync group */
    Q_COMMIT,   /* a COMMIT sent with pg_commit_async */
} q_kind_t;

typedef struct {
    q_kind_t kind;
    bool synced; /* a Sync follows it (the end of its group) */
    uint64_t ticket;
} q_ent_t;

#define Q_CAP 256

typedef struct {
    st_db_t base;
    PGconn *conn;
    q_ent_t q[Q_CAP]; /* in the order sent */
    unsigned q_head, q_n, q_commits;
    int phase;        /* of the front entry: 0 wants its result, 1 the end of it, 2 its Sync */
    int group_rc;     /* first failure of a deferred command in the current sync group */
    PGresult *target; /* the Q_TARGET's result once read */
    int target_rc;    /* a deferred command before it in its group failed */
    bool txn_failed;  /* a command of the open transaction failed */
    bool defer_next;  /* send the next prepared statement without waiting (pg_defer_next) */
    unsigned gen;     /* counts re-established connections */
    bool async;       /* synchronous_commit off */
    bool prepared[ST_COUNT]; /* on this connection (cleared when it is re-established) */
    pg_stmt_t stmts[ST_COUNT];
    char node[33];  /* this connection's row in spk_flush, "" until flush() made it */
    bool flush_row; /* the row exists */
    bool mark_prepared;
    bool mark_row;        /* this connection created the marker row (pg_mark_start) */
    bool mark_later;      /* pg_mark_start found the connection down: made once it is up */
    uint64_t mark_ticket; /* the ticket to make it with */
    bool broken;          /* out of step with the server: dropped like a lost connection */
    /* A lost connection: down until a new one is set up (and, with a marker row, its marker
     * read); connecting while an attempt (PQconnectStart) is under way. */
    bool down, connecting;
    PostgresPollingStatusType want; /* what the attempt waits for */
    int64_t next_try_ms, attempt_end_ms;
    int retry_ms;
    unsigned attempts; /* failed attempts since the connection was lost */
    char *conninfo;    /* the connection string, for reconnecting */
} pg_db_t;

static pg_db_t *pgd(st_db_t *db)
{
    return (pg_db_t *)db;
}

/* Counts a round trip of kind w that began at t0 (spk_mono_ns). */
static void waited(pg_db_t *d, st_wait_t w, uint64_t t0)
{
    d->base.waits[w]++;
    d->base.wait_ns[w] += spk_mono_ns() - t0;
}

/* Maps a failed result to SPK_E*: unique key → EEXIST, foreign key → ENOTFOUND, others → EIO
 * with the message kept for the log. */
static int map_result(pg_db_t *d, const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL && strcmp(state, "23505") == 0) {
        return SPK_EEXIST;
    }
    if (state != NULL && strcmp(state, "23503") == 0) {
        return SPK_ENOTFOUND;
    }
    const char *msg = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(d->conn);
    snprintf(d->base.errmsg, sizeof(d->base.errmsg), "%s%s%.*s", state != NULL ? state : "",
             state != NULL ? ": " : "", (int)strcspn(msg, "\n"), msg);
    return SPK_EIO;
}

/* The session's settings: UTF-8, commits synchronous or not (async_commit); a lock held by
 * another node's open transaction is waited for 10 s at most, and a transaction of this session
 * left open (its process stopped in the middle of one) is ended after 5 s, so that its locks do
 * not stall the other nodes. */
static int session_setup(pg_db_t *d)
{
    if (PQsetClientEncoding(d->conn, "UTF8") != 0) {
        snprintf(d->base.errmsg, sizeof(d->base.errmsg), "client encoding UTF8 refused");
        return SPK_EIO;
    }
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SET lock_timeout = '10s'; SET idle_in_transaction_session_timeout = '5s';"
             " SET synchronous_commit = %s",
             d->async ? "off" : "on");
    PGresult *r = PQexec(d->conn, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : map_result(d, r);
    PQclear(r);
    return rc;
}

static int conn_lost(pg_db_t *d);
static void describe(PGconn *c, char *out, size_t cap);

/* Enters pipeline mode (after connecting, and after SQL text ran outside it). */
static int pipeline_on(pg_db_t *d)
{
    if (PQenterPipelineMode(d->conn) != 1) {
        snprintf(d->base.errmsg, sizeof(d->base.errmsg), "pipeline mode refused");
        return SPK_EIO;
    }
    return 0;
}

static void go_down(pg_db_t *d);
static int reconnect_step(pg_db_t *d);
static int mark_insert(pg_db_t *d, uint64_t ticket);

/* Before a command: 0 when the connection is up (reconnecting first when it is down and no
 * transaction is open), SPK_EUNAVAILABLE while it is not. */
static int ready(pg_db_t *d)
{
    return d->down ? reconnect_step(d) : 0;
}

/* A failure rc of a command: SPK_EUNAVAILABLE when the connection is gone with it (which then
 * goes down, see the top of the file), rc otherwise. */
static int lost_rc(pg_db_t *d, int rc)
{
    if (rc != 0 && (d->down || d->broken || PQstatus(d->conn) == CONNECTION_BAD)) {
        go_down(d);
        return SPK_EUNAVAILABLE;
    }
    return rc;
}

/* ---- the pipeline: commands sent, results read in order ---- */

static void q_push(pg_db_t *d, q_kind_t kind, bool synced, uint64_t ticket)
{
    d->q[(d->q_head + d->q_n) % Q_CAP] = (q_ent_t){kind, synced, ticket};
    d->q_n++;
    d->q_commits += kind == Q_COMMIT;
}

static void q_pop(pg_db_t *d)
{
    d->q_commits -= d->q[d->q_head].kind == Q_COMMIT;
    d->q_head = (d->q_head + 1) % Q_CAP;
    d->q_n--;
    d->phase = 0;
}

static void commit_done(pg_db_t *d, uint64_t ticket, int rc)
{
    if (rc != 0) {
        spk_error(0, "store: PostgreSQL did not confirm a commit (%s): it may or may not be stored",
                  d->base.errmsg);
    }
    if (d->base.on_commit != NULL) {
        d->base.on_commit(d->base.on_commit_ud, ticket, rc);
    }
}

/* The connection failed with commands outstanding: none of their results will come. A COMMIT
 * among them is in doubt (SPK_EUNAVAILABLE to on_commit: the store resolves it once
 * reconnected). A connection still up is out of step with the server and is dropped too. */
static int conn_lost(pg_db_t *d)
{
    if (d->q_n > 0) {
        const char *msg = PQerrorMessage(d->conn);
        snprintf(d->base.errmsg, sizeof(d->base.errmsg), "connection lost: %.*s",
                 (int)strcspn(msg, "\n"), msg);
        d->broken = d->broken || PQstatus(d->conn) != CONNECTION_BAD;
    }
    while (d->q_n > 0) {
        q_ent_t e = d->q[d->q_head];
        q_pop(d);
        if (e.kind == Q_COMMIT) {
            commit_done(d, e.ticket, SPK_EUNAVAILABLE);
        }
    }
    d->group_rc = 0;
    return SPK_EIO;
}

/* Takes the result r of the front entry. */
static void settle(pg_db_t *d, const q_ent_t *e, PGresult *r)
{
    ExecStatusType es = PQresultStatus(r);
    bool ok = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK;
    if (e->kind == Q_TARGET) {
        d->target = r;
        d->target_rc = d->group_rc;
        return;
    }
    if (e->kind == Q_DEFERRED) {
        if (!ok && d->group_rc == 0) {
            d->group_rc = map_result(d, r);
        }
    } else {
        int rc = ok && strcmp(PQcmdStatus(r), "COMMIT") == 0 ? 0 : SPK_EIO;
        if (rc != 0) {
            map_result(d, r);
        }
        commit_done(d, e->ticket, rc);
    }
    PQclear(r);
}

/* One step of reading the front entry's results: 1 done, 0 would block (only when !block),
 * SPK_EIO when the connection failed (every outstanding entry is then failed). */
static int advance(pg_db_t *d, bool block)
{
    if (!block && (PQconsumeInput(d->conn) != 1 || PQisBusy(d->conn))) {
        return PQstatus(d->conn) == CONNECTION_BAD ? conn_lost(d) : 0;
    }
    PGresult *r = PQgetResult(d->conn);
    q_ent_t e = d->q[d->q_head];
    if (d->phase == 0) {
        if (r == NULL || PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return conn_lost(d); /* the connection is gone (or out of step) */
        }
        settle(d, &e, r);
        d->phase = 1;
        return 1;
    }
    if (d->phase == 1) {
        if (r != NULL) {
            PQclear(r); /* not expected: one result per command */
            return 1;
        }
        if (e.synced) {
            d->phase = 2;
            return 1;
        }
    } else {
        ExecStatusType es = PQresultStatus(r);
        PQclear(r);
        if (es != PGRES_PIPELINE_SYNC) {
            return conn_lost(d);
        }
        d->group_rc = 0;
    }
    q_pop(d);
    return 1;
}

/* Ends the open sync group, if any, so that the server answers it. */
static int sync_open_group(pg_db_t *d)
{
    q_ent_t *last = &d->q[(d->q_head + d->q_n - 1) % Q_CAP];
    if (d->q_n == 0 || last->synced) {
        return 0;
    }
    if (PQpipelineSync(d->conn) != 1) {
        return conn_lost(d);
    }
    last->synced = true;
    return 0;
}

/* Reads every outstanding result (blocking). Returns the first failure of a deferred command
 * among them, or SPK_EIO when the connection failed. */
static int drain(pg_db_t *d)
{
    int rc = sync_open_group(d), first = 0;
    while (rc == 0 && d->q_n > 0) {
        rc = advance(d, true) < 0 ? SPK_EIO : 0;
        first = first != 0 ? first : d->group_rc;
    }
    return rc != 0 ? rc : first;
}

/* Sends SQL text without parameters as one command of the given kind; with sync it ends its
 * group. 0, or SPK_EIO when the connection refused it. */
static int send_text(pg_db_t *d, const char *sql, q_kind_t kind, bool sync, uint64_t ticket)
{
    if (PQsendQueryParams(d->conn, sql, 0, NULL, NULL, NULL, NULL, 1) != 1 ||
        (sync && PQpipelineSync(d->conn) != 1)) {
        map_result(d, NULL);
        conn_lost(d);
        return lost_rc(d, SPK_EIO);
    }
    q_push(d, kind, sync, ticket);
    return 0;
}

/* Waits for the target just sent (and everything before it) and returns its result (the
 * caller clears it), or NULL with *rc set. The wait is counted as a round trip of kind w
 * (ST_WAIT_N: read or write by the result). */
static PGresult *await(pg_db_t *d, st_wait_t w, int *rc)
{
    uint64_t t0 = spk_mono_ns();
    d->target = NULL;
    d->target_rc = 0;
    bool lost = false;
    while (d->q_n > 0 && !lost) {
        lost = advance(d, true) < 0;
    }
    if (lost && !d->base.in_txn) {
        /* The target's result may have come, but not its Sync: outside a transaction its
         * implicit commit happens there, so whether it was made is not known. (Inside one, a
         * result stands: a COMMIT's says it was made, another statement's transaction fails
         * with the connection.) */
        PQclear(d->target);
        d->target = NULL;
    }
    PGresult *r = d->target;
    d->target = NULL;
    if (w == ST_WAIT_N) {
        w = PQresultStatus(r) == PGRES_TUPLES_OK ? ST_WAIT_READ : ST_WAIT_WRITE;
    }
    waited(d, w, t0);
    ExecStatusType es = PQresultStatus(r);
    *rc = r == NULL                                           ? SPK_EIO
          : d->target_rc != 0                                 ? d->target_rc
          : (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) ? 0
                                                              : map_result(d, r);
    if (*rc != 0) {
        PQclear(r);
        d->txn_failed = d->txn_failed || d->base.in_txn;
        *rc = lost_rc(d, *rc);
        return NULL;
    }
    return r;
}

/* After a PQsend* call (sent: its return value) of the statement to wait for: ends its sync
 * group and waits (await). */
static PGresult *sent_wait(pg_db_t *d, int sent, st_wait_t w, int *rc)
{
    if (sent != 1 || PQpipelineSync(d->conn) != 1) {
        map_result(d, NULL);
        conn_lost(d);
        *rc = lost_rc(d, SPK_EIO);
        return NULL;
    }
    q_push(d, Q_TARGET, true, 0);
    return await(d, w, rc);
}

/* Runs SQL text without parameters and waits for it; the result is cleared. */
static int run(pg_db_t *d, st_wait_t w, const char *sql, char *status, size_t cap)
{
    int rc = send_text(d, sql, Q_TARGET, true, 0);
    PGresult *r = rc == 0 ? await(d, w, &rc) : NULL;
    if (r != NULL && status != NULL) {
        snprintf(status, cap, "%s", PQcmdStatus(r));
    }
    PQclear(r);
    return rc;
}

/* SQL text of one or more statements: outside pipeline mode, after every result is in. */
static int pg_exec(st_db_t *db, const char *sql)
{
    pg_db_t *d = pgd(db);
    int rc = ready(d);
    if (rc == 0) {
        rc = drain(d);
    }
    if (rc != 0) {
        return lost_rc(d, rc);
    }
    PQexitPipelineMode(d->conn);
    uint64_t t0 = spk_mono_ns();
    PGresult *r = PQexec(d->conn, sql);
    waited(d, ST_WAIT_OTHER, t0);
    ExecStatusType es = PQresultStatus(r);
    rc = (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) ? 0 : map_result(d, r);
    PQclear(r);
    if (PQpipelineStatus(d->conn) == PQ_PIPELINE_OFF && PQstatus(d->conn) == CONNECTION_OK) {
        pipeline_on(d);
    }
    if (rc != 0) {
        d->txn_failed = d->txn_failed || d->base.in_txn;
        rc = lost_rc(d, rc);
    }
    return rc;
}

/* "?n" → "$n" outside quoted strings and identifiers. */
static char *rewrite_params(const char *sql)
{
    char *out = strdup(sql);
    if (out == NULL) {
        return NULL;
    }
    char quote = 0;
    for (char *p = out; *p != '\0'; p++) {
        if (quote != 0) {
            quote = *p == quote ? 0 : quote;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
            *p = '$';
        }
    }
    return out;
}

static void stmt_reset(pg_stmt_t *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->deferred = false;
    s->n_params = 0;
    s->buf_len = 0;
    s->row = -1;
    s->n_rows = 0;
    s->changes = 0;
}

static int pg_prepare(st_db_t *db, st_stmt_id_t id, const char *sql, st_stmt_t **out)
{
    pg_db_t *d = pgd(db);
    int ready_rc = ready(d);
    if (ready_rc != 0) {
        return ready_rc;
    }
    if (!d->prepared[id]) {
        char *text = rewrite_params(sql);
        if (text == NULL) {
            return SPK_ENOMEM;
        }
        char name[16];
        snprintf(name, sizeof(name), "spk%d", (int)id);
        int rc = 0;
        PQclear(sent_wait(d, PQsendPrepare(d->conn, name, text, 0, NULL), ST_WAIT_OTHER, &rc));
        free(text);
        if (rc != 0) {
            return st_failed(db, rc, "prepare");
        }
        d->prepared[id] = true;
    }
    pg_stmt_t *s = &d->stmts[id];
    if (s->busy) {
        /* In use by an iterator further up the stack: a statement object of its own. */
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            return SPK_ENOMEM;
        }
    } else {
        s->cached = true;
    }
    s->base = (st_stmt_t){db, id};
    s->busy = true;
    stmt_reset(s);
    *out = &s->base;
    return 0;
}

static void pg_release(st_stmt_t *st)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    stmt_reset(s);
    s->busy = false;
    if (!s->cached) {
        free(s->buf);
        free(s);
    }
}

/* Copies a parameter value (NUL-terminated for text) into the statement's buffer. */
static int put(pg_stmt_t *s, int idx, const void *p, size_t n, int fmt)
{
    if (idx < 1 || idx > MAX_PARAMS || n > INT32_MAX - 1) {
        return SPK_ERANGE;
    }
    for (int i = s->n_params; i < idx; i++) {
        s->off[i] = NO_VALUE;
        s->len[i] = 0;
        s->fmt[i] = 0;
    }
    if (idx > s->n_params) {
        s->n_params = idx;
    }
    if (p == NULL) {
        s->off[idx - 1] = NO_VALUE;
        return 0;
    }
    if (s->buf_len + n + 1 > s->buf_cap) {
        size_t cap = s->buf_cap > 0 ? s->buf_cap : 256;
        while (cap < s->buf_len + n + 1) {
            cap *= 2;
        }
        char *b = realloc(s->buf, cap);
        if (b == NULL) {
            return SPK_ENOMEM;
        }
        s->buf = b;
        s->buf_cap = cap;
    }
    memcpy(s->buf + s->buf_len, p, n);
    s->buf[s->buf_len + n] = '\0';
    s->off[idx - 1] = s->buf_len;
    s->len[idx - 1] = (int)n;
    s->fmt[idx - 1] = fmt;
    s->buf_len += n + 1;
    return 0;
}

static int pg_bind_i64(st_stmt_t *s, int idx, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    return put((pg_stmt_t *)s, idx, num, (size_t)n, 0);
}

static int pg_bind_text(st_stmt_t *s, int idx, const char *v, size_t n)
{
    if (memchr(v, '\0', n) != NULL) {
        return SPK_ERANGE; /* text cannot hold NUL in PostgreSQL */
    }
    return put((pg_stmt_t *)s, idx, v, n, 0);
}

static int pg_bind_blob(st_stmt_t *s, int idx, const void *p, size_t n)
{
    return put((pg_stmt_t *)s, idx, p != NULL ? p : "", n, 1);
}

static int pg_bind_null(st_stmt_t *s, int idx)
{
    return put((pg_stmt_t *)s, idx, NULL, 0, 0);
}

static int execute(pg_stmt_t *s)
{
    pg_db_t *d = pgd(s->base.db);
    const char *vals[MAX_PARAMS];
    for (int i = 0; i < s->n_params; i++) {
        vals[i] = s->off[i] == NO_VALUE ? NULL : s->buf + s->off[i];
    }
    char name[16];
    snprintf(name, sizeof(name), "spk%d", (int)s->base.id);
    int rc = 0;
    if (d->down) {
        return SPK_EUNAVAILABLE; /* prepared on a connection that is gone */
    }
    if (d->defer_next && d->base.in_txn) {
        /* Only sent: it goes out with the next statement waited for (or the commit). */
        d->defer_next = false;
        if (PQsendQueryPrepared(d->conn, name, s->n_params, vals, s->len, s->fmt, 1) != 1) {
            map_result(d, NULL);
            conn_lost(d);
            return lost_rc(d, SPK_EIO);
        }
        q_push(d, Q_DEFERRED, false, 0);
        s->deferred = true;
        return 0;
    }
    d->defer_next = false;
    s->res = sent_wait(d, PQsendQueryPrepared(d->conn, name, s->n_params, vals, s->len, s->fmt, 1),
                       ST_WAIT_N, &rc);
    if (s->res == NULL) {
        return rc;
    }
    s->n_rows = PQntuples(s->res);
    const char *n = PQcmdTuples(s->res);
    s->changes = n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
    return 0;
}

static int pg_step(st_stmt_t *st)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (s->res == NULL && !s->deferred) {
        int rc = execute(s);
        if (rc != 0) {
            return rc;
        }
    }
    if (s->row < s->n_rows) {
        s->row++;
    }
    return s->row < s->n_rows ? ST_ROW : ST_DONE;
}

static bool has_value(pg_stmt_t *s, int col)
{
    return s->res != NULL && s->row >= 0 && s->row < s->n_rows && col < PQnfields(s->res) &&
           !PQgetisnull(s->res, s->row, col);
}

static int64_t pg_col_i64(st_stmt_t *st, int col)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!has_value(s, col)) {
        return 0;
    }
    const uint8_t *p = (const uint8_t *)PQgetvalue(s->res, s->row, col);
    int n = PQgetlength(s->res, s->row, col);
    Oid t = PQftype(s->res, col);
    if (!((t == OID_INT8 && n == 8) || (t == OID_INT4 && n == 4) || (t == OID_INT2 && n == 2) ||
          (t == OID_BOOL && n == 1))) {
        return 0; /* not an integer: the query must cast it */
    }
    uint64_t u = (p[0] & 0x80) && t != OID_BOOL ? UINT64_MAX : 0;
    for (int i = 0; i < n; i++) {
        u = (u << 8) | p[i];
    }
    return (int64_t)u;
}

static const void *pg_col_bytes(st_stmt_t *st, int col, size_t *n)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!has_value(s, col)) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)PQgetlength(s->res, s->row, col);
    return PQgetvalue(s->res, s->row, col);
}

static bool pg_col_is_int(st_stmt_t *st, int col)
{
    pg_stmt_t *s = (pg_stmt_t *)st;
    if (!has_value(s, col)) {
        return false;
    }
    Oid t = PQftype(s->res, col);
    return t == OID_INT8 || t == OID_INT4 || t == OID_INT2;
}

static int64_t pg_changes(st_stmt_t *s)
{
    return ((pg_stmt_t *)s)->changes;
}

static int pg_txn(st_db_t *db, st_txn_op_t op)
{
    static const char *const sql[] = {"BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                                      "COMMIT", "ROLLBACK"};
    static const st_wait_t kind[] = {ST_WAIT_BEGIN, ST_WAIT_BEGIN, ST_WAIT_COMMIT, ST_WAIT_OTHER};
    pg_db_t *d = pgd(db);
    if (d->down && op == ST_TXN_ROLLBACK) {
        return 0; /* the server ended the transaction with the connection */
    }
    int ready_rc = ready(d);
    if (ready_rc != 0) {
        return ready_rc;
    }
    if (op == ST_TXN_WRITE || op == ST_TXN_SNAPSHOT) {
        /* Goes out with the next statement, in its sync group. */
        d->txn_failed = false;
        return send_text(d, sql[op], Q_DEFERRED, false, 0);
    }
    char status[64] = "";
    int rc = run(d, kind[op], sql[op], status, sizeof(status));
    if (rc == 0 && op == ST_TXN_COMMIT && strcmp(status, "COMMIT") != 0) {
        /* A statement of the transaction failed: PostgreSQL rolled all of it back. */
        snprintf(db->errmsg, sizeof(db->errmsg), "the transaction was rolled back (%s)", status);
        rc = SPK_EIO;
    }
    return rc;
}

/* COMMIT without waiting for it (see the top of the file): 1 when sent so (its result reaches
 * on_commit later), 0 when it was made and waited for instead, or an error. */
static int pg_commit_async(st_db_t *db, uint64_t ticket)
{
    pg_db_t *d = pgd(db);
    /* Only when every earlier command of the transaction is known to have succeeded: nothing
     * but COMMITs of earlier transactions may still be outstanding. */
    bool known = !d->txn_failed && d->q_n == d->q_commits && d->q_n < Q_CAP - 8;
    if (!d->async || db->on_commit == NULL || !known) {
        int rc = pg_txn(db, ST_TXN_COMMIT);
        return rc;
    }
    int rc = send_text(d, "COMMIT", Q_COMMIT, true, ticket);
    return rc != 0 ? rc : 1;
}

/* Reads the results that have arrived, without blocking. */
static void pg_poll(st_db_t *db)
{
    pg_db_t *d = pgd(db);
    if (d->down) {
        reconnect_step(d);
        return;
    }
    /* Reads whatever came, also with nothing outstanding (a notice, the server ending the
     * session), so that a readable socket does not stay readable. A server ending the session
     * sends an error and then closes: read once more to see the close. */
    int ok = PQconsumeInput(d->conn);
    if (ok == 1 && d->q_n == 0) {
        ok = PQconsumeInput(d->conn);
    }
    if (ok != 1 && d->q_n > 0) {
        conn_lost(d);
    }
    while (d->q_n > 0 && advance(d, false) > 0) {
    }
    if (lost_rc(d, SPK_EIO) == SPK_EUNAVAILABLE && !db->in_txn) {
        reconnect_step(d); /* at once: the server may be up (a backend ended, a proxy restarted) */
    }
}

static bool pg_up(const st_db_t *db)
{
    return !((const pg_db_t *)db)->down;
}

static int pg_poll_fd(const st_db_t *db, unsigned *gen)
{
    const pg_db_t *d = (const pg_db_t *)db;
    if (gen != NULL) {
        *gen = d->gen;
    }
    return PQsocket(d->conn);
}

static size_t pg_pending(const st_db_t *db)
{
    return ((const pg_db_t *)db)->q_commits;
}

static int pg_drain(st_db_t *db)
{
    return drain(pgd(db));
}

static void pg_defer_next(st_db_t *db)
{
    pgd(db)->defer_next = true;
}

/* Goes out with the next statement (the head read), in its sync group: the head is read after
 * the lock is held, in one round trip. */
static int pg_lock_audit(st_db_t *db)
{
    int rc = ready(pgd(db));
    return rc != 0 ? rc
                   : send_text(pgd(db), "SELECT pg_advisory_xact_lock(" AUDIT_LOCK_KEY ")",
                               Q_DEFERRED, false, 0);
}

/* Runs a statement with text parameters and waits for it; *first (may be NULL) receives the
 * first column of its first row as an integer (-1 without a row or for NULL). */
static int run_params(pg_db_t *d, const char *sql, int n, const char *const *vals, int64_t *first)
{
    int rc = 0;
    PGresult *r = sent_wait(d, PQsendQueryParams(d->conn, sql, n, NULL, vals, NULL, NULL, 0),
                            ST_WAIT_OTHER, &rc);
    if (first != NULL) {
        bool has = r != NULL && PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0);
        *first = has ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    }
    PQclear(r);
    return rc;
}

/* ---- a lost connection ---- */

static int64_t now_ms(void)
{
    return (int64_t)(spk_mono_ns() / 1000000);
}

/* The connection is gone (the server restarted or ended the session, the network or a proxy
 * dropped it): what was outstanding has failed (conn_lost), and from now on every command is
 * refused with SPK_EUNAVAILABLE until reconnect_step has set a new connection up. */
static void go_down(pg_db_t *d)
{
    if (d->down) {
        return;
    }
    conn_lost(d);
    const char *msg = PQerrorMessage(d->conn);
    spk_warn(0, "store: connection to PostgreSQL lost (%.*s); reconnecting",
             (int)strcspn(msg, "\n"), msg);
    d->down = true;
    d->connecting = false;
    d->broken = false;
    d->defer_next = false;
    d->txn_failed = d->base.in_txn;
    d->next_try_ms = 0;
    d->retry_ms = RETRY_FIRST_MS;
    d->attempts = 0;
    memset(d->prepared, 0, sizeof(d->prepared));
    d->mark_prepared = false;
}

/* An attempt failed: the next one after the back-off. */
static int attempt_failed(pg_db_t *d, int64_t now, const char *why)
{
    /* The first failure, then about once a minute. */
    if (d->attempts++ % (60000 / RETRY_MAX_MS) == 0) {
        spk_warn(0, "store: PostgreSQL not reachable (%.*s); trying again", (int)strcspn(why, "\n"),
                 why);
    }
    d->connecting = false;
    d->next_try_ms = now + d->retry_ms;
    d->retry_ms = d->retry_ms * 2 < RETRY_MAX_MS ? d->retry_ms * 2 : RETRY_MAX_MS;
    return SPK_EUNAVAILABLE;
}

/* The new connection is made: the session as before and, on the connection with a marker row,
 * the marker read under its row lock (NOWAIT: a transaction of the old session that still
 * holds it makes this attempt fail and the next one try again) and handed to on_up. */
static int established(pg_db_t *d, int64_t now)
{
    int rc = session_setup(d);
    if (rc == 0) {
        rc = pipeline_on(d);
    }
    int64_t mark = -1;
    if (rc == 0 && d->mark_later) {
        rc = mark_insert(d, d->mark_ticket);
    }
    if (rc == 0 && d->base.mark_node[0] != '\0' && d->base.on_up != NULL) {
        const char *vals[1] = {d->base.mark_node};
        rc = run_params(d, MARK_READ_SQL, 1, vals, &mark);
    }
    if (rc != 0) {
        return attempt_failed(d, now, d->base.errmsg);
    }
    d->down = false;
    d->attempts = 0;
    if (d->base.reconnects != NULL) {
        atomic_fetch_add(d->base.reconnects, 1);
    }
    char where[256];
    describe(d->conn, where, sizeof(where));
    spk_info(0, "store: reconnected to %s", where);
    if (d->base.mark_node[0] != '\0' && d->base.on_up != NULL) {
        d->base.on_up(d->base.on_commit_ud, mark);
    }
    return 0;
}

/* Moves reconnecting on as far as it can without waiting (poll with timeout 0, PQconnectPoll):
 * 0 once the connection is up, SPK_EUNAVAILABLE while it is not. Not inside a transaction (the
 * caller rolls it back first). */
static int reconnect_step(pg_db_t *d)
{
    if (!d->down) {
        return 0;
    }
    if (d->base.in_txn) {
        return SPK_EUNAVAILABLE;
    }
    int64_t now = now_ms();
    if (!d->connecting) {
        if (now < d->next_try_ms) {
            return SPK_EUNAVAILABLE;
        }
        PQfinish(d->conn);
        d->conn = PQconnectStart(d->conninfo);
        d->gen++;
        if (d->conn == NULL || PQstatus(d->conn) == CONNECTION_BAD) {
            return attempt_failed(d, now, d->conn != NULL ? PQerrorMessage(d->conn) : "no memory");
        }
        d->connecting = true;
        d->want = PGRES_POLLING_WRITING;
        d->attempt_end_ms = now + ATTEMPT_MS;
    }
    while (d->want != PGRES_POLLING_OK) {
        struct pollfd p = {.fd = PQsocket(d->conn),
                           .events = d->want == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        if (p.fd < 0) {
            return attempt_failed(d, now, PQerrorMessage(d->conn));
        }
        if (poll(&p, 1, 0) == 0) {
            return now < d->attempt_end_ms ? SPK_EUNAVAILABLE
                                           : attempt_failed(d, now, "timed out connecting");
        }
        d->want = PQconnectPoll(d->conn);
        if (d->want == PGRES_POLLING_FAILED) {
            return attempt_failed(d, now, PQerrorMessage(d->conn));
        }
    }
    d->connecting = false;
    return established(d, now);
}

/* Sends the marker update (st_db_t.mark_node) for the transaction of `ticket`: with BEGIN, or in
 * the sync group of the write after it outside a transaction (one implicit transaction). */
static int pg_mark(st_db_t *db, uint64_t ticket)
{
    pg_db_t *d = pgd(db);
    int rc = ready(d);
    if (rc != 0 || db->mark_node[0] == '\0') {
        return rc;
    }
    if (!d->mark_prepared) {
        if (PQsendPrepare(d->conn, "spkmark", MARK_SQL, 2, NULL) != 1) {
            map_result(d, NULL);
            conn_lost(d);
            return lost_rc(d, SPK_EIO);
        }
        q_push(d, Q_DEFERRED, false, 0);
        d->mark_prepared = true;
    }
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ticket);
    const char *vals[2] = {db->mark_node, num};
    if (PQsendQueryPrepared(d->conn, "spkmark", 2, vals, NULL, NULL, 0) != 1) {
        map_result(d, NULL);
        conn_lost(d);
        return lost_rc(d, SPK_EIO);
    }
    q_push(d, Q_DEFERRED, false, 0);
    return 0;
}

/* Creates (or resets) the marker row at ticket, waiting for it. */
static int mark_insert(pg_db_t *d, uint64_t ticket)
{
    char num[24];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)ticket);
    const char *vals[2] = {d->base.mark_node, num};
    int rc = run_params(d,
                        "INSERT INTO spk_commit_mark (node, ticket) VALUES ($1, $2) ON CONFLICT"
                        " (node) DO UPDATE SET ticket = EXCLUDED.ticket",
                        2, vals, NULL);
    d->mark_row = d->mark_row || rc == 0;
    d->mark_later = d->mark_later && rc != 0;
    return rc;
}

/* Creates the marker row of node at ticket. With the connection down (the database went away
 * as the node started) it is made once the connection is up, before the marker is read
 * (established): no transaction gets a ticket meanwhile. */
static int pg_mark_start(st_db_t *db, uint64_t ticket)
{
    pg_db_t *d = pgd(db);
    int rc = ready(d);
    if (rc == 0) {
        rc = mark_insert(d, ticket);
    }
    if (rc == SPK_EUNAVAILABLE) {
        spk_warn(0, "store: the marker row is made once PostgreSQL is reachable again");
        d->mark_later = true;
        d->mark_ticket = ticket;
        rc = 1;
    }
    return rc;
}

/* The lease of node db->mark_node (in a table of its own, so that the renewal never waits for
 * the marker row, which the control connection's transactions hold), and removing the nodes
 * whose lease ran out: their lease, marker and spk_flush rows. */
static int pg_mark_renew(st_db_t *db, int64_t *db_ms)
{
    pg_db_t *d = pgd(db);
    int rc = ready(d);
    if (rc != 0) {
        return rc;
    }
    const char *vals[1] = {db->mark_node};
    return run_params(d,
                      "INSERT INTO spk_node_lease (node, seen) VALUES ($1, now()) ON CONFLICT"
                      " (node) DO UPDATE SET seen = now() RETURNING (extract(epoch FROM seen) *"
                      " 1000)::bigint",
                      1, vals, db_ms);
}

static int pg_mark_sweep(st_db_t *db, int64_t before_ms)
{
    pg_db_t *d = pgd(db);
    int rc = ready(d);
    if (rc != 0) {
        return rc;
    }
    char num[24];
    snprintf(num, sizeof(num), "%lld", (long long)before_ms);
    const char *vals[2] = {db->mark_node, num};
    PGresult *r = sent_wait(
        d,
        PQsendQueryParams(d->conn,
                          "WITH gone AS (DELETE FROM spk_node_lease WHERE node <> $1 AND seen <"
                          " to_timestamp($2::float8 / 1000) RETURNING node, seen),"
                          " m AS (DELETE FROM spk_commit_mark WHERE node IN (SELECT node FROM"
                          " gone) RETURNING node, ticket), f AS (DELETE FROM spk_flush WHERE node"
                          " IN (SELECT node FROM gone)) SELECT g.node, coalesce(m.ticket::text,"
                          " 'none'), g.seen FROM gone g LEFT JOIN m ON m.node = g.node",
                          2, NULL, vals, NULL, NULL, 0),
        ST_WAIT_OTHER, &rc);
    for (int i = 0; r != NULL && i < PQntuples(r); i++) {
        spk_info(0,
                 "store: removed the rows of node %s (spk_commit_mark ticket %s), which is"
                 " gone: its lease was last renewed at %s",
                 PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    }
    PQclear(r);
    return rc;
}

static int pg_flush(st_db_t *db)
{
    pg_db_t *d = pgd(db);
    if (d->node[0] == '\0' && db->mark_node[0] != '\0') {
        /* The node's name: its row goes with its marker row when the node is gone. */
        memcpy(d->node, db->mark_node, sizeof(d->node));
    }
    if (d->node[0] == '\0' && spk_random_id(d->node, sizeof(d->node), 12) != 0) {
        return SPK_EIO;
    }
    int rc = ready(d);
    if (rc != 0) {
        return rc;
    }
    /* With a marker to watch, its value as the statement began (so covered by this flush). */
    const char *vals[2] = {d->node, db->mark_node};
    db->mark_seen = -1;
    rc = db->mark_node[0] != '\0'
             ? run_params(d,
                          "INSERT INTO spk_flush (node, n) VALUES ($1, 1) ON CONFLICT (node)"
                          " DO UPDATE SET n = spk_flush.n + 1 RETURNING"
                          " (SELECT ticket FROM spk_commit_mark WHERE node = $2)",
                          2, vals, &db->mark_seen)
             : run_params(d,
                          "INSERT INTO spk_flush (node, n) VALUES ($1, 1) ON CONFLICT (node)"
                          " DO UPDATE SET n = spk_flush.n + 1",
                          1, vals, NULL);
    d->flush_row = d->flush_row || rc == 0;
    return rc;
}

static int pg_async_commit(st_db_t *db, bool on)
{
    pg_db_t *d = pgd(db);
    int rc = pg_exec(db, on ? "SET synchronous_commit = off" : "SET synchronous_commit = on");
    if (rc == SPK_EUNAVAILABLE) {
        rc = 0; /* the connection set up next gets it (session_setup) */
    }
    if (rc == 0) {
        d->async = on;
    }
    return rc;
}

static void pg_close(st_db_t *db)
{
    pg_db_t *d = pgd(db);
    drain(d);
    if (d->flush_row && !d->down && PQstatus(d->conn) == CONNECTION_OK) {
        const char *vals[1] = {d->node};
        run_params(d, "DELETE FROM spk_flush WHERE node = $1", 1, vals, NULL);
    }
    if (d->mark_row && !d->down && PQstatus(d->conn) == CONNECTION_OK) {
        /* (the node's lease too, which its sync thread made) */
        const char *vals[1] = {db->mark_node};
        run_params(d, "DELETE FROM spk_commit_mark WHERE node = $1", 1, vals, NULL);
        run_params(d, "DELETE FROM spk_node_lease WHERE node = $1", 1, vals, NULL);
    }
    for (int i = 0; i < ST_COUNT; i++) {
        stmt_reset(&d->stmts[i]);
        free(d->stmts[i].buf);
    }
    PQfinish(d->conn);
    free(d->conninfo);
    free(d);
}

const st_backend_t st_pg_backend = {
    .name = "postgresql",
    .prepare = pg_prepare,
    .release = pg_release,
    .bind_i64 = pg_bind_i64,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .col_i64 = pg_col_i64,
    .col_bytes = pg_col_bytes,
    .col_is_int = pg_col_is_int,
    .changes = pg_changes,
    .exec = pg_exec,
    .txn = pg_txn,
    .lock_audit = pg_lock_audit,
    .commit_async = pg_commit_async,
    .poll = pg_poll,
    .up = pg_up,
    .mark = pg_mark,
    .mark_start = pg_mark_start,
    .mark_renew = pg_mark_renew,
    .mark_sweep = pg_mark_sweep,
    .poll_fd = pg_poll_fd,
    .pending = pg_pending,
    .drain = pg_drain,
    .defer_next = pg_defer_next,
    .flush = pg_flush,
    .async_commit = pg_async_commit,
    .maintain = NULL,
    .schema_apply = st_schema_pg,
    .close = pg_close,
};

/* The connection string without its password, for logs. */
static void describe(PGconn *c, char *out, size_t cap)
{
    const char *host = PQhost(c);
    snprintf(out, cap, "database %s on %s port %s as %s", PQdb(c) ? PQdb(c) : "?",
             host ? host : "?", PQport(c) ? PQport(c) : "?", PQuser(c) ? PQuser(c) : "?");
}

/* Is the SQLSTATE a server gave while refusing a connection a passing state (08: connection
 * exception, also pgbouncer without its server; 53: out of resources, too many connections;
 * 57P01-57P03: shutting down, crashed, starting up or in recovery)? Everything else (28: wrong
 * role or password, no pg_hba.conf entry; 3D000: no such database; ...) is a refusal. */
static bool sqlstate_passing(const char *code)
{
    return strncmp(code, "08", 2) == 0 || strncmp(code, "53", 2) == 0 ||
           strncmp(code, "57P0", 4) == 0;
}

/* The SQLSTATE in a verbose error message ("FATAL:  28P01: password ..."; the severity may be
 * translated, the code never is), copied to code[6]; false when the server said nothing. */
static bool find_sqlstate(const char *msg, char code[6])
{
    for (const char *p = strstr(msg, ":  "); p != NULL; p = strstr(p + 1, ":  ")) {
        const char *c = p + 3;
        size_t n = 0;
        while (n < 5 && ((c[n] >= '0' && c[n] <= '9') || (c[n] >= 'A' && c[n] <= 'Z'))) {
            n++;
        }
        if (n == 5 && c[5] == ':') {
            memcpy(code, c, 5);
            code[5] = '\0';
            return true;
        }
    }
    return false;
}

/* Has the attempt got past opening the socket (the server, or whatever listens there, took
 * part: TLS negotiation, authentication)? */
static bool got_through(ConnStatusType s)
{
    return s != CONNECTION_STARTED && s != CONNECTION_NEEDED && s != CONNECTION_BAD &&
           s != CONNECTION_OK;
}

/* Connects once, waiting at most ATTEMPT_MS: 0, SPK_EUNAVAILABLE when PostgreSQL could not be
 * reached (no address for the host name, connection refused or timed out, nothing listening on
 * the socket, the server starting up, shutting down or out of connections) or SPK_ECONFIG when
 * it refused (a bad connection string, authentication, no such database or role, TLS required
 * by one side and refused or failing verification by the other); why says what happened. */
static int connect_once(pg_db_t *d, char *why, size_t cap)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(d->conninfo, &err);
    if (opts == NULL) {
        snprintf(why, cap, "%.*s", (int)strcspn(err ? err : "bad connection string", "\n"),
                 err ? err : "bad connection string");
        PQfreemem(err);
        return SPK_ECONFIG;
    }
    PQconninfoFree(opts);
    d->conn = PQconnectStart(d->conninfo);
    if (d->conn == NULL) {
        snprintf(why, cap, "out of memory");
        return SPK_ENOMEM;
    }
    PQsetErrorVerbosity(d->conn, PQERRORS_VERBOSE); /* the SQLSTATE in the message */
    bool through = false;
    int64_t end = now_ms() + ATTEMPT_MS;
    PostgresPollingStatusType want = PGRES_POLLING_WRITING;
    while (want != PGRES_POLLING_OK && want != PGRES_POLLING_FAILED &&
           PQstatus(d->conn) != CONNECTION_BAD) {
        struct pollfd p = {.fd = PQsocket(d->conn),
                           .events = want == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int64_t left = end - now_ms();
        if (p.fd < 0 || left <= 0) {
            break;
        }
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            break;
        }
        if (p.revents != 0) {
            want = PQconnectPoll(d->conn);
            through = through || got_through(PQstatus(d->conn));
        }
    }
    if (want == PGRES_POLLING_OK && PQstatus(d->conn) == CONNECTION_OK) {
        PQsetErrorVerbosity(d->conn, PQERRORS_DEFAULT);
        return 0;
    }
    const char *msg = PQerrorMessage(d->conn);
    bool timed_out = want != PGRES_POLLING_FAILED && PQstatus(d->conn) != CONNECTION_BAD;
    const char *say = timed_out ? "timed out connecting" : msg;
    snprintf(why, cap, "%.*s", (int)strcspn(say, "\n"), say);
    char code[6];
    if (find_sqlstate(msg, code)) {
        return sqlstate_passing(code) ? SPK_EUNAVAILABLE : SPK_ECONFIG;
    }
    return through && !timed_out ? SPK_ECONFIG : SPK_EUNAVAILABLE;
}

/* st_pg_connect; with `later`, a server that cannot be reached leaves the connection down, as
 * one lost before its first statement: the next attempt after the back-off (reconnect_step). */
static int pg_connect(const char *target, bool later, st_db_t **out, char *why, size_t cap)
{
    pg_db_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return SPK_ENOMEM;
    }
    d->base.be = &st_pg_backend;
    d->base.mark_seen = -1;
    d->conninfo = strdup(target);
    int crc = d->conninfo != NULL ? connect_once(d, why, cap) : SPK_ENOMEM;
    if (crc == SPK_EUNAVAILABLE && later) {
        d->down = true;
        d->retry_ms = RETRY_FIRST_MS;
        attempt_failed(d, now_ms(), why);
        *out = &d->base;
        return 0;
    }
    if (crc != 0) {
        PQfinish(d->conn);
        free(d->conninfo);
        free(d);
        return crc;
    }
    int rc = session_setup(d);
    if (rc == 0) {
        rc = pipeline_on(d);
    }
    if (rc != 0) {
        spk_error(0, "store: PostgreSQL session set-up failed: %s", d->base.errmsg);
        pg_close(&d->base);
        return rc;
    }
    char where[256];
    describe(d->conn, where, sizeof(where));
    spk_debug(0, "store: connected to %s", where);
    *out = &d->base;
    return 0;
}

int st_pg_connect(const char *target, st_db_t **out, char *why, size_t cap)
{
    return pg_connect(target, false, out, why, cap);
}

static int pg_open(const char *target, bool later, st_db_t **out)
{
    char why[512];
    int rc = pg_connect(target, later, out, why, sizeof(why));
    if (rc != 0) {
        spk_error(0, "store: PostgreSQL %s: %s",
                  rc == SPK_EUNAVAILABLE ? "not reachable" : "refused the connection", why);
    }
    return rc;
}

int st_pg_open(const char *target, st_db_t **out)
{
    return pg_open(target, false, out);
}

int st_pg_open_later(const char *target, st_db_t **out)
{
    return pg_open(target, true, out);
}
