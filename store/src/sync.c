/* The store's sync thread: group commit, audit anchoring, the external witness and the periodic
 * full walk of the audit chain, all off the control thread.
 *
 * With the thread running, the control thread's connection commits with synchronous=NORMAL:
 * a commit appends its frames to the WAL with write() and returns. The thread flushes the WAL
 * file with one fdatasync for every commit made since the previous flush (it opens the WAL file
 * itself; fsync on any descriptor of a file flushes that file), then publishes the newest
 * ticket it covered (spk_store_durable) and calls durable_cb. Only then does it move the audit
 * head anchor, to the head it read before the flush (so the anchor never names an entry that
 * is not on disk), and write the witness line. Checkpoints run here too, on the thread's own
 * connection (the control thread's connection has automatic checkpoints off).
 *
 * Shared state: last_ticket, durable, anchor_bad, full_failed are atomics; kicked and stop are
 * under mu. */
#include "store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define CHECKPOINT_BYTES (4 * 1024 * 1024) /* checkpoint once the WAL is this large */
#define WALK_ROWS 2000                     /* full-walk step between flushes */
#define IDLE_WAKE_MS 1000

struct st_sync {
    spk_store_t *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool kicked, stop;
    bool failed;
    spk_store_sync_opts_t opts;
    char witness[ST_PATH_MAX];
    char wal_path[ST_PATH_MAX + 8];
    sqlite3 *db;
    int wal_fd;
    ino_t wal_ino;
    uint64_t flushed;
    int64_t head_seq; /* newest audit entry known to be on disk */
    uint8_t head_hash[32];
    int64_t witnessed_seq, witness_ms;
    int witness_fd;
    int64_t next_walk_ms;
    st_walk_t *walk; /* non-NULL while a full walk is under way */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void st_sync_kick(spk_store_t *st)
{
    st_sync_t *y = st->sync;
    pthread_mutex_lock(&y->mu);
    y->kicked = true;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
}

/* Opens the WAL file, again whenever SQLite has replaced it (another inode at the path). */
static int wal_open(st_sync_t *y)
{
    struct stat sb;
    if (stat(y->wal_path, &sb) != 0) {
        spk_error(0, "store: cannot stat %s: %s", y->wal_path, strerror(errno));
        return SPK_EIO;
    }
    if (y->wal_fd >= 0 && sb.st_ino == y->wal_ino) {
        return 0;
    }
    if (y->wal_fd >= 0) {
        close(y->wal_fd);
    }
    y->wal_fd = open(y->wal_path, O_RDONLY | O_CLOEXEC);
    if (y->wal_fd < 0) {
        spk_error(0, "store: cannot open %s: %s", y->wal_path, strerror(errno));
        return SPK_EIO;
    }
    y->wal_ino = sb.st_ino;
    return 0;
}

static void witness_write(st_sync_t *y)
{
    if (y->witness[0] == '\0' || y->head_seq == y->witnessed_seq) {
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

static void checkpoint_if_large(st_sync_t *y)
{
    struct stat sb;
    if (y->wal_fd >= 0 && fstat(y->wal_fd, &sb) == 0 && sb.st_size > CHECKPOINT_BYTES) {
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(y->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spk_warn(0, "store: checkpoint failed: %s", sqlite3_errmsg(y->db));
        }
    }
}

/* Flushes every commit up to ticket t, then anchors and witnesses. */
static void flush(st_sync_t *y, uint64_t t)
{
    spk_store_t *st = y->st;
    if (y->opts.flush_delay_us > 0) {
        usleep((useconds_t)y->opts.flush_delay_us);
        t = atomic_load(&st->last_ticket);
    }
    int64_t seq = 0;
    uint8_t hash[32];
    int rc = st_audit_head(y->db, &seq, hash); /* read before the flush: covered by it */
    if (rc == 0) {
        rc = wal_open(y);
    }
    if (rc == 0 && fdatasync(y->wal_fd) != 0) {
        spk_error(0, "store: flushing %s failed: %s", y->wal_path, strerror(errno));
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
    y->flushed = t;
    atomic_store(&st->durable, t);
    if (y->opts.durable_cb != NULL) {
        y->opts.durable_cb(y->opts.ud, false);
    }
    if (seq > y->head_seq) {
        y->head_seq = seq;
        memcpy(y->head_hash, hash, 32);
        if (st_audit_anchor_move(st, y->db, seq, hash) != 0) {
            spk_error(0, "audit: could not move the head anchor to seq %" PRId64, seq);
        }
    }
    checkpoint_if_large(y);
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
            until.tv_sec += IDLE_WAKE_MS / 1000;
            pthread_cond_timedwait(&y->cv, &y->mu, &until);
        }
        bool stopping = y->stop;
        y->kicked = false;
        pthread_mutex_unlock(&y->mu);
        uint64_t t = atomic_load(&st->last_ticket);
        if (t > y->flushed && !y->failed) {
            flush(y, t);
        }
        if (stopping) {
            y->witness_ms = INT64_MIN / 2; /* the final head is always witnessed */
            witness_write(y);
            break;
        }
        witness_write(y);
        walk_step(y);
        pthread_mutex_lock(&y->mu);
    }
    return NULL;
}

static void sync_free(st_sync_t *y)
{
    st_walk_free(y->walk);
    if (y->db != NULL) {
        sqlite3_close_v2(y->db);
    }
    if (y->wal_fd >= 0) {
        close(y->wal_fd);
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
    y->wal_fd = -1;
    y->witness_fd = -1;
    snprintf(y->witness, sizeof(y->witness), "%s", opts->witness != NULL ? opts->witness : "");
    y->opts.witness = y->witness;
    if (y->opts.witness_interval_ms <= 0) {
        y->opts.witness_interval_ms = 1000;
    }
    snprintf(y->wal_path, sizeof(y->wal_path), "%s-wal", st->db_path);
    pthread_mutex_init(&y->mu, NULL);
    pthread_cond_init(&y->cv, NULL);
    int rc = st_open_db(st->db_path, &y->db);
    if (rc == 0) {
        rc = st_exec_db(y->db, "PRAGMA synchronous=NORMAL");
    }
    if (rc == 0) {
        rc = st_audit_head(y->db, &y->head_seq, y->head_hash);
    }
    /* From now on commits return before they are flushed; this thread flushes them. */
    if (rc == 0) {
        rc = st_exec(st, "PRAGMA synchronous=NORMAL");
    }
    if (rc == 0) {
        rc = st_exec(st, "PRAGMA wal_autocheckpoint=0");
    }
    y->flushed = atomic_load(&st->last_ticket);
    y->next_walk_ms = 0; /* first full walk right away */
    if (rc == 0) {
        st->sync = y;
        if (pthread_create(&y->thread, NULL, sync_main, y) != 0) {
            st->sync = NULL;
            rc = SPK_ENOMEM;
        }
    }
    if (rc != 0) {
        st_exec(st, "PRAGMA synchronous=FULL");
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
    pthread_mutex_lock(&y->mu);
    y->stop = true;
    pthread_cond_signal(&y->cv);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->thread, NULL); /* the last pass flushes and anchors */
    st->sync = NULL;
    st_exec(st, "PRAGMA synchronous=FULL");
    sync_free(y);
}
