/* The store's sync thread: group commit, audit anchoring, the external witness and the periodic
 * full walk of the audit chain, all off the control thread, on a connection of its own.
 *
 * With the thread running, the control thread's connection commits asynchronously (SQLite:
 * synchronous=NORMAL, a commit appends its frames to the WAL with write() and returns;
 * PostgreSQL: synchronous_commit off, a commit returns once its record is in the WAL buffers).
 * The thread makes every commit made since the previous flush durable at once (the backend's
 * flush: one fdatasync of the WAL file, or one small commit with synchronous_commit on that
 * PostgreSQL only acknowledges after flushing the WAL up to it), then publishes the newest
 * ticket it covered (spk_store_durable) and calls durable_cb. Only then does it move the audit
 * head anchor, to the head it read before the flush (so the anchor never names an entry that
 * is not on disk), and write the witness line. SQLite's checkpoints run here too (the control
 * thread's connection has automatic checkpoints off).
 *
 * On PostgreSQL the control thread's COMMIT is not waited for (db_pg.c): a commit is covered by
 * a flush only once the server has confirmed it (st_committed, the store's `committed`
 * ticket), and a commit whose outcome is in doubt (the connection failed before the server
 * answered) is resolved once the connection is back (on_up below).
 *
 * A lost connection (PostgreSQL restarted, a backend ended, the network or a proxy dropped it)
 * is re-established by db_pg.c with a back-off; meanwhile store calls fail with
 * SPK_EUNAVAILABLE. Whether the commits not yet durable survived is read from the control
 * connection's marker row (spk_commit_mark), which every transaction with a ticket sets to its
 * ticket: PostgreSQL writes one session's commits to its WAL in order, so the row's value is
 * the newest ticket the database has, and every one before it is there too. The sync thread's
 * flush reads the row as it begins and makes durable only tickets up to it (so a commit the
 * server confirmed but lost in a crash is never counted durable); after reconnecting the
 * control thread reads it (under its row lock, so a transaction of the old session is over)
 * and finds every ticket handed out there, or stops durability for good (on_up).
 *
 * Rows of nodes that are gone. A node that was killed leaves its marker row (and its spk_flush
 * row, of the same name) behind. Each node holds a lease (spk_node_lease): its sync thread
 * renews it every 1/60 of the lease (opts.mark_lease_ms, one hour), and the rows of a node whose
 * lease ran out are removed by another node's sync thread. Whether a session of the owner is
 * connected cannot tell a node that is gone from one that is reconnecting (a restart of
 * PostgreSQL ends every session, and a node starting just after it would take its peers for
 * gone), so only time does: a node removes others' rows only after renewing its own on time
 * for a whole lease (mark_lease), so a row is removed only when its node did not renew it for
 * a whole lease while the database could be reached. A node kept away from the database alone
 * for that long finds its row gone once back and stops as on any missing marker row (drains,
 * exit 1: nothing acknowledged is lost). Rows made by older builds have no lease and are never
 * removed.
 *
 * Shared state: last_ticket, committed, durable, commit_failed, anchor_bad, full_failed are
 * atomics; kicked and stop are under mu. */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define WALK_ROWS 2000 /* full-walk step between flushes */
#define IDLE_WAKE_MS 1000
#define RETRY_WAKE_MS 100     /* while the connection is down or the marker lags */
#define MARK_LEASE_MS 3600000 /* opts.mark_lease_ms by default */
#define RENEWALS 60           /* per lease */

struct st_sync {
    spk_store_t *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked, stop;
    bool failed;
    bool down;   /* the connection is being re-established */
    bool behind; /* the last flush could not cover every committed ticket */
    spk_store_sync_opts_t opts;
    char witness[ST_PATH_MAX];
    st_db_t *db;
    uint64_t flushed;
    int64_t head_seq; /* newest audit entry known to be on disk (-1: not read yet) */
    uint8_t head_hash[32];
    int64_t witnessed_seq, witness_ms;
    int witness_fd;
    int64_t next_walk_ms;
    st_walk_t *walk; /* non-NULL while a full walk is under way */
    /* The node's lease: next renewal, last one made, and since when every renewal was made on
     * time (mono_ms); the database's clock at the last one, and how long its call took. */
    int64_t renew_at_ms, renewed_ms, steady_ms;
    int64_t renewed_db_ms, renew_took_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail_commits(spk_store_t *st)
{
    atomic_store(&st->commit_failed, true);
    if (st->sync != NULL) {
        st_sync_kick(st);
    }
}

/* Control thread: the outcome of a COMMIT sent without waiting (db_pg.c). In doubt
 * (SPK_EUNAVAILABLE, the connection failed before the answer): on_up settles it. */
static void on_commit(void *ud, uint64_t ticket, int rc)
{
    spk_store_t *st = ud;
    if (rc == SPK_EUNAVAILABLE) {
        return;
    }
    if (rc != 0) {
        fail_commits(st);
        return;
    }
    st_committed(st, ticket);
}

/* Control thread: its connection is back and `mark` is the newest ticket the database has
 * (-1: the marker row is gone). Every ticket handed out must be there, and no more: a commit
 * the server never made (its COMMIT lost with the connection, or lost in a crash) leaves this
 * node's memory ahead of the database, and a commit reported failed that was made leaves it
 * behind. Either ends durability for good (spreekd drains and exits), as a failed flush does;
 * what those commits revealed was never sent. */
static void on_up(void *ud, int64_t mark)
{
    spk_store_t *st = ud;
    uint64_t last = atomic_load(&st->last_ticket);
    uint64_t durable = atomic_load(&st->durable);
    atomic_store(&st->mark_made, true);
    const char *why = mark < 0                   ? "its marker row is gone"
                      : (uint64_t)mark < durable ? "commits already acknowledged are missing"
                                                   " (a standby without them took over?)"
                      : (uint64_t)mark < last    ? "commits whose answer was lost with the"
                                                   " connection were not made"
                      : (uint64_t)mark > last    ? "a commit reported as failed was made"
                                                 : NULL;
    if (why != NULL) {
        spk_error(0,
                  "store: after reconnecting: %s (ticket %lld in the database, %llu handed out,"
                  " %llu acknowledged)",
                  why, (long long)mark, (unsigned long long)last, (unsigned long long)durable);
        fail_commits(st);
        return;
    }
    if (atomic_load(&st->committed) < last) {
        spk_info(0, "store: the commits in doubt up to ticket %llu were made",
                 (unsigned long long)last);
    }
    st_committed(st, last);
}

void st_committed(spk_store_t *st, uint64_t t)
{
    if (atomic_load(&st->commit_failed) || t <= atomic_load(&st->committed)) {
        return;
    }
    atomic_store(&st->committed, t);
    if (st->sync != NULL) {
        st_sync_kick(st);
    }
}

void st_sync_kick(spk_store_t *st)
{
    st_sync_t *y = st->sync;
    pthread_mutex_lock(&y->mu);
    y->kicked = true;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
}

static void witness_write(st_sync_t *y)
{
    if (y->witness[0] == '\0' || y->head_seq < 0 || y->head_seq == y->witnessed_seq) {
        return;
    }
    int64_t now = mono_ms();
    if (now - y->witness_ms < y->opts.witness_interval_ms) {
        return;
    }
    char line[256];
    int n = st_audit_witness_line(y->head_seq, y->head_hash, spk_now_ms(), line, sizeof(line) - 1);
    if (n < 0) {
        return;
    }
    if (strcmp(y->witness, "syslog") == 0) {
        syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line);
    } else {
        if (y->witness_fd < 0) {
            y->witness_fd =
                open(y->witness, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
        }
        line[n++] = '\n';
        if (y->witness_fd < 0 || write(y->witness_fd, line, (size_t)n) != n) {
            /* A FIFO without a reader, a full disk: try again on the next change. */
            spk_warn(0, "audit: witness %s not written: %s", y->witness, strerror(errno));
            if (y->witness_fd >= 0) {
                close(y->witness_fd);
                y->witness_fd = -1;
            }
            return;
        }
    }
    y->witnessed_seq = y->head_seq;
    y->witness_ms = now;
}

/* Flushes every commit up to ticket t, then anchors and witnesses. */
static void flush(st_sync_t *y, uint64_t t)
{
    spk_store_t *st = y->st;
    if (y->opts.flush_delay_us > 0) {
        usleep((useconds_t)y->opts.flush_delay_us);
        t = atomic_load(&st->committed);
    }
    int64_t seq = 0;
    uint8_t hash[32];
    bool made = atomic_load(&st->mark_made);   /* before the flush reads the row */
    int rc = st_audit_head(y->db, &seq, hash); /* read before the flush: covered by it */
    if (rc == 0) {
        rc = y->db->be->flush(y->db);
    }
    if (rc == SPK_EUNAVAILABLE) {
        /* Not a failure of the disk: flushed again once the connection is back. */
        if (!y->down) {
            spk_warn(0, "store: the sync thread's connection is down: flushing when it is back");
        }
        y->down = true;
        atomic_store(&st->sync_down, true);
        return;
    }
    if (rc != 0) {
        spk_error(0, "store: flush failed: %s", st_db_errmsg(y->db));
    }
    if (rc == 0 && y->down) {
        spk_info(0, "store: the sync thread's connection is back");
        y->down = false;
        atomic_store(&st->sync_down, false);
    }
    if (rc == 0 && y->db->mark_node[0] != '\0' && !made) {
        t = y->flushed; /* the row is not made yet, and no commit either (pg_mark_start) */
    } else if (rc == 0 && y->db->mark_node[0] != '\0') {
        /* Only what the database had as the flush began (see the top of the file). */
        int64_t m = y->db->mark_seen;
        if (m < 0) {
            spk_error(0, "store: the marker row is gone");
            rc = SPK_EIO;
        } else if ((uint64_t)m < t) {
            t = (uint64_t)m;
        }
    }
    y->behind = rc == 0 && t < atomic_load(&st->committed);
    if (rc == 0 && atomic_load(&st->commit_failed)) {
        spk_error(
            0, "store: commits were lost or cannot be accounted for: nothing more is acknowledged");
        rc = SPK_EIO;
    }
    if (rc != 0) {
        /* After a failed flush the page cache may have dropped the data: nothing committed
         * since can be promised durable any more. */
        y->failed = true;
        if (y->opts.durable_cb != NULL) {
            y->opts.durable_cb(y->opts.ud, true);
        }
        return;
    }
    if (t > y->flushed) {
        y->flushed = t;
        atomic_store(&st->durable, t);
        if (y->opts.durable_cb != NULL) {
            y->opts.durable_cb(y->opts.ud, false);
        }
    } else if (y->head_seq >= 0) {
        return;
    }
    /* (With the head not read at start, the first flush that reaches the database reads it.) */
    if (seq > y->head_seq) {
        y->head_seq = seq;
        memcpy(y->head_hash, hash, 32);
        if (st_audit_anchor_move(st, y->db, seq, hash) != 0) {
            spk_error(0, "audit: could not move the head anchor to seq %" PRId64, seq);
        }
    }
    if (y->db->be->maintain != NULL) {
        y->db->be->maintain(y->db);
    }
}

/* The node's lease, and the rows of nodes that are gone (see the top of the file). Leases run
 * on the database's clock; whether this thread may judge others' leases runs on its own: only
 * after it has renewed its own on time (at most 3 renewal intervals apart) for a whole lease,
 * so the database was reachable for all of that time, and a node that did not renew meanwhile
 * was not merely kept away with everyone else (an outage of the database or of its network).
 * A step of the database's clock (which would age every lease at once) starts that count
 * again: between two renewals it must advance as this thread's did, within a tenth (and 1 s). */
static void mark_lease(st_sync_t *y)
{
    int64_t now = mono_ms();
    if (y->db->be->mark_renew == NULL || y->db->mark_node[0] == '\0' || now < y->renew_at_ms) {
        return;
    }
    int64_t lease = y->opts.mark_lease_ms, every = lease / RENEWALS;
    bool on_time = y->renewed_ms > 0 && now - y->renewed_ms <= 3 * every;
    if (!on_time) {
        y->steady_ms = now; /* counts from this renewal on, if it is made */
    }
    int64_t db_ms = -1;
    int rc = y->db->be->mark_renew(y->db, &db_ms);
    if (rc != 0) {
        y->renew_at_ms = now + (every < RETRY_WAKE_MS ? every : RETRY_WAKE_MS);
        return;
    }
    int64_t took = mono_ms() - now; /* the database's time is from within each call */
    int64_t skew = (db_ms - y->renewed_db_ms) - (now - y->renewed_ms);
    int64_t slack = (now - y->renewed_ms) / 10 > 1000 ? (now - y->renewed_ms) / 10 : 1000;
    slack += took + y->renew_took_ms;
    if (on_time && (skew > slack || skew < -slack)) {
        spk_warn(0,
                 "store: PostgreSQL's clock moved %lld ms against this node's: no other node's"
                 " lease is judged for a whole lease",
                 (long long)skew);
        y->steady_ms = now;
    }
    y->renewed_ms = now;
    y->renewed_db_ms = db_ms;
    y->renew_took_ms = took;
    y->renew_at_ms = now + every;
    if (on_time && now - y->steady_ms >= lease) {
        /* by the database's clock as just checked, not as it may read a moment later */
        y->db->be->mark_sweep(y->db, db_ms - lease);
    }
}

/* One step of the periodic full walk of the chain. */
static void walk_step(st_sync_t *y)
{
    if (y->opts.full_verify_interval_s <= 0) {
        return;
    }
    if (y->walk == NULL) {
        if (mono_ms() < y->next_walk_ms) {
            return;
        }
        y->walk = st_walk_new(y->st);
        if (y->walk == NULL) {
            return;
        }
    }
    bool done = false;
    int64_t bad = 0;
    int rc = st_walk_step(y->st, y->walk, y->db, WALK_ROWS, &done, &bad);
    if (rc == SPK_EVERIFY) {
        atomic_store(&y->st->full_bad_seq, bad);
        atomic_store(&y->st->full_failed, true);
    }
    if (done || (rc != 0 && rc != SPK_EVERIFY)) {
        st_walk_free(y->walk);
        y->walk = NULL;
        y->next_walk_ms = mono_ms() + (int64_t)y->opts.full_verify_interval_s * 1000;
    }
}

static void *sync_main(void *arg)
{
    st_sync_t *y = arg;
    spk_store_t *st = y->st;
    pthread_mutex_lock(&y->mu);
    for (;;) {
        if (!y->kicked && !y->stop && y->walk == NULL) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long ms = y->down || y->behind || y->head_seq < 0 ? RETRY_WAKE_MS : IDLE_WAKE_MS;
            int64_t renew = y->renew_at_ms - mono_ms();
            ms = y->db->mark_node[0] != '\0' && renew < ms ? (renew > 1 ? (long)renew : 1) : ms;
            until.tv_nsec += (ms % 1000) * 1000000L;
            until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&y->cv, &y->mu, &until);
        }
        bool stopping = y->stop;
        y->kicked = false;
        pthread_mutex_unlock(&y->mu);
        uint64_t t = atomic_load(&st->committed);
        bool retry = y->down || y->behind || y->head_seq < 0;
        if ((t > y->flushed || retry || atomic_load(&st->commit_failed)) && !y->failed) {
            flush(y, t);
        }
        if (stopping) {
            y->witness_ms = INT64_MIN / 2; /* the final head is always witnessed */
            witness_write(y);
            break;
        }
        witness_write(y);
        mark_lease(y);
        walk_step(y);
        pthread_mutex_lock(&y->mu);
    }
    return NULL;
}

static void sync_free(st_sync_t *y)
{
    st_walk_free(y->walk);
    if (y->db != NULL) {
        y->db->be->close(y->db);
    }
    if (y->witness_fd >= 0) {
        close(y->witness_fd);
    }
    pthread_cond_destroy(&y->cv);
    pthread_mutex_destroy(&y->mu);
    free(y);
}

int spk_store_sync_start(spk_store_t *st, const spk_store_sync_opts_t *opts)
{
    if (st == NULL || opts == NULL || st->sync != NULL || st->in_txn) {
        return SPK_EINVAL;
    }
    if (opts->witness != NULL && strlen(opts->witness) >= ST_PATH_MAX) {
        return SPK_ERANGE;
    }
    st_sync_t *y = calloc(1, sizeof(*y));
    if (y == NULL) {
        return SPK_ENOMEM;
    }
    y->st = st;
    y->opts = *opts;
    y->witness_fd = -1;
    snprintf(y->witness, sizeof(y->witness), "%s", opts->witness != NULL ? opts->witness : "");
    y->opts.witness = y->witness;
    if (y->opts.witness_interval_ms <= 0) {
        y->opts.witness_interval_ms = 1000;
    }
    if (y->opts.mark_lease_ms <= 0) {
        y->opts.mark_lease_ms = MARK_LEASE_MS;
    }
    pthread_mutex_init(&y->mu, NULL);
    pthread_cond_init(&y->cv, NULL);
    /* The thread's connection and the head may wait for a database that cannot be reached
     * now (it went away just after the store opened): the thread sets both up once it can. */
    int rc = st_db_open_same(st, &y->db);
    if (rc == 0) {
        y->db->reconnects = &st->reconnects;
        rc = st_audit_head(y->db, &y->head_seq, y->head_hash);
        if (rc == SPK_EUNAVAILABLE) {
            spk_warn(0, "store: the sync thread's connection is down: flushing when it is up");
            y->head_seq = -1;
            y->down = true;
            atomic_store(&st->sync_down, true);
            rc = 0;
        }
    }
    /* From now on commits return before they are flushed; this thread flushes them. */
    if (rc == 0) {
        rc = st->db->be->async_commit(st->db, true);
    }
    st->db->on_commit = on_commit;
    st->db->on_commit_ud = st;
    if (rc == 0 && st->db->be->mark_start != NULL) {
        /* The marker row of this store's connection, from the newest ticket on. */
        rc = spk_random_id(st->db->mark_node, sizeof(st->db->mark_node), 12);
        if (rc == 0) {
            rc = st->db->be->mark_start(st->db, atomic_load(&st->last_ticket));
            atomic_store(&st->mark_made, rc == 0);
            rc = rc > 0 ? 0 : rc;
        }
        if (rc == 0) {
            /* named, so that the row of a node that was killed can be told apart */
            spk_info(0, "store: this node's row in spk_commit_mark is %s", st->db->mark_node);
        }
        memcpy(y->db->mark_node, st->db->mark_node, sizeof(y->db->mark_node));
        st->db->on_up = on_up;
    }
    y->flushed = atomic_load(&st->committed);
    y->next_walk_ms = 0; /* first full walk right away */
    if (rc == 0) {
        st->sync = y;
        if (pthread_create(&y->thread, NULL, sync_main, y) != 0) {
            st->sync = NULL;
            rc = SPK_ENOMEM;
        }
    }
    if (rc != 0) {
        st->db->be->async_commit(st->db, false);
        st->db->on_commit = NULL;
        st->db->on_up = NULL;
        sync_free(y);
    }
    return rc;
}

void spk_store_sync_stop(spk_store_t *st)
{
    if (st == NULL) {
        return;
    }
    st_sync_t *y = st->sync;
    if (y == NULL) {
        return;
    }
    if (st->db->be->drain != NULL && !st->in_txn) {
        st->db->be->drain(st->db); /* the outstanding commits' outcomes, for the last flush */
    }
    pthread_mutex_lock(&y->mu);
    y->stop = true;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->thread, NULL); /* the last pass flushes and anchors */
    st->sync = NULL;
    st->db->be->async_commit(st->db, false);
    st->db->on_commit = NULL;
    st->db->on_up = NULL; /* commits are synchronous again (the marker row stays until close) */
    sync_free(y);
}
