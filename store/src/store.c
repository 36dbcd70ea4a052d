/* The store: open/close (SQLite in the data directory, or PostgreSQL), the caller's
 * transactions and the durability tickets. */
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

/* A statement outside a transaction has just returned: every commit before it is confirmed
 * (the connection answers in order), and so is the write itself. */
void st_wrote(spk_store_t *st)
{
    if (!st->in_txn) {
        uint64_t t = atomic_fetch_add(&st->last_ticket, 1) + 1;
        if (st->sync != NULL) {
            st_committed(st, t);
        } else {
            atomic_store(&st->committed, t);
            atomic_store(&st->durable, t);
        }
    }
}

int st_mark_write(spk_store_t *st)
{
    if (st->in_txn || st->db->mark_node[0] == '\0') {
        return 0;
    }
    return st->db->be->mark(st->db, atomic_load(&st->last_ticket) + 1);
}

/* ---- transactions ---- */

int spk_store_begin(spk_store_t *st)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    if (st->in_txn) {
        return SPK_ESTATE;
    }
    int rc = st_db_begin(st->db, ST_TXN_WRITE);
    if (rc == 0 && st->db->mark_node[0] != '\0') {
        /* The ticket this transaction's commit will get: none is handed out meanwhile. */
        rc = st->db->be->mark(st->db, atomic_load(&st->last_ticket) + 1);
        if (rc != 0) {
            st_db_rollback(st->db);
        }
    }
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
    st_db_rollback(st->db);
}

int spk_store_commit(spk_store_t *st, uint64_t *ticket)
{
    if (st == NULL) {
        return SPK_EINVAL;
    }
    if (!st->in_txn) {
        return SPK_ESTATE;
    }
    /* With the sync thread, PostgreSQL's COMMIT is sent without waiting for it (db_pg.c): its
     * ticket counts as committed once the server's answer arrives (st_committed), and only a
     * flush after that makes it durable. Rolls back on failure. */
    uint64_t t = atomic_load(&st->last_ticket) + 1;
    int rc = st->sync != NULL ? st_db_commit_async(st->db, t) : st_db_commit(st->db);
    st->in_txn = false;
    if (rc < 0) {
        return rc;
    }
    atomic_store(&st->last_ticket, t);
    if (ticket != NULL) {
        *ticket = t;
    }
    if (st->sync != NULL) {
        if (rc == 0) {
            st_committed(st, t);
        }
        return 0;
    }
    /* Synchronous commits: durable now; the anchor follows the new head. */
    atomic_store(&st->committed, t);
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

int spk_store_poll_fd(const spk_store_t *st, unsigned *gen)
{
    if (st == NULL || st->db->be->poll_fd == NULL) {
        return -1;
    }
    return st->db->be->poll_fd(st->db, gen);
}

void spk_store_poll(spk_store_t *st)
{
    if (st != NULL && st->db->be->poll != NULL && !st->in_txn) {
        st->db->be->poll(st->db);
    }
}

bool spk_store_available(const spk_store_t *st)
{
    if (st == NULL) {
        return false;
    }
    bool up = st->db->be->up == NULL || st->db->be->up(st->db);
    return up && !atomic_load(&st->sync_down) && !atomic_load(&st->commit_failed);
}

size_t spk_store_pending(const spk_store_t *st)
{
    return st != NULL && st->db->be->pending != NULL ? st->db->be->pending(st->db) : 0;
}

size_t spk_store_metrics(const spk_store_t *st, char *buf, size_t cap)
{
    static const char *const ops[ST_WAIT_N] = {"begin",      "read",   "write",
                                               "audit_lock", "commit", "other"};
    if (st == NULL || cap == 0 || st->target[0] == '\0') {
        return 0;
    }
    size_t o = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *name =
            pass == 0 ? "spk_store_round_trips_total" : "spk_store_wait_seconds_total";
        int n = snprintf(buf + o, cap - o, "# TYPE %s counter\n", name);
        for (int i = 0; n >= 0 && (size_t)n < cap - o && i < ST_WAIT_N; i++) {
            o += (size_t)n;
            n = pass == 0 ? snprintf(buf + o, cap - o, "%s{op=\"%s\"} %llu\n", name, ops[i],
                                     (unsigned long long)st->db->waits[i])
                          : snprintf(buf + o, cap - o, "%s{op=\"%s\"} %.6f\n", name, ops[i],
                                     (double)st->db->wait_ns[i] / 1e9);
        }
        if (n < 0 || (size_t)n >= cap - o) {
            return cap - 1;
        }
        o += (size_t)n;
    }
    int n = snprintf(buf + o, cap - o,
                     "# TYPE spk_store_reconnects_total counter\nspk_store_reconnects_total %llu\n"
                     "# TYPE spk_store_up gauge\nspk_store_up %d\n",
                     (unsigned long long)atomic_load(&st->reconnects), spk_store_available(st));
    if (n < 0 || (size_t)n >= cap - o) {
        return cap - 1;
    }
    return o + (size_t)n;
}

const char *spk_store_backend(const spk_store_t *st)
{
    return st != NULL ? st->db->be->name : "";
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

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? SPK_ERANGE : 0;
}

int st_db_open_same(const spk_store_t *st, st_db_t **out)
{
    return st->target[0] != '\0' ? st_pg_open_later(st->target, out)
                                 : st_sqlite_open(st->db_path, out);
}

int spk_store_open(spk_store_t **out, const char *dir)
{
    return spk_store_open_db(out, dir, NULL);
}

/* Opens as spk_store_open_db does; a PostgreSQL connection that cannot be made is not logged
 * but returned (SPK_EUNAVAILABLE: not reachable, SPK_ECONFIG: refused) with the reason in why. */
static int store_open(spk_store_t **out, const char *dir, const char *db, char *why, size_t cap)
{
    if (out == NULL || dir == NULL || dir[0] == '\0') {
        return SPK_EINVAL;
    }
    *out = NULL;
    if (strlen(dir) + 32 >= ST_PATH_MAX || (db != NULL && strlen(db) >= ST_TARGET_MAX)) {
        return SPK_ERANGE;
    }
    spk_store_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return SPK_ENOMEM;
    }
    st->lock_fd = -1;
    snprintf(st->dir, sizeof(st->dir), "%s", dir);
    snprintf(st->target, sizeof(st->target), "%s", db != NULL ? db : "");
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
    if (rc == 0 && st->target[0] == '\0') {
        rc = precreate_file(st->db_path);
    }
    if (rc == 0) {
        rc = st->target[0] != '\0' ? st_pg_connect(st->target, &st->db, why, cap)
                                   : st_sqlite_open(st->db_path, &st->db);
    }
    if (rc == 0) {
        st->db->reconnects = &st->reconnects;
    }
    if (rc == 0) {
        rc = st->db->be->schema_apply(st);
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

/* The lines every PostgreSQL connection that cannot be made at open is logged with. */
static void log_open_failure(int rc, const char *why)
{
    if (rc == SPK_EUNAVAILABLE) {
        spk_warn(0, "store: PostgreSQL not reachable (%s)", why);
    } else {
        spk_error(0, "store: PostgreSQL refused the connection (not tried again): %s", why);
    }
}

int spk_store_open_db(spk_store_t **out, const char *dir, const char *db)
{
    char why[512] = "";
    int rc = store_open(out, dir, db, why, sizeof(why));
    if (rc != 0 && why[0] != '\0') {
        log_open_failure(rc, why);
    }
    return rc;
}

#define WAIT_FIRST_MS 100
#define WAIT_MAX_MS 2000
#define WAIT_SLICE_MS 50

int spk_store_open_wait(spk_store_t **out, const char *dir, const char *db, const atomic_bool *stop)
{
    unsigned wait_ms = WAIT_FIRST_MS;
    for (unsigned attempts = 1;; attempts++) {
        for (unsigned slept = 0; slept < wait_ms; slept += WAIT_SLICE_MS) {
            if (stop != NULL && atomic_load(stop)) {
                return SPK_ESHUTDOWN;
            }
            usleep(WAIT_SLICE_MS * 1000);
        }
        if (stop != NULL && atomic_load(stop)) {
            return SPK_ESHUTDOWN;
        }
        wait_ms = wait_ms * 2 < WAIT_MAX_MS ? wait_ms * 2 : WAIT_MAX_MS;
        char why[512] = "";
        int rc = store_open(out, dir, db, why, sizeof(why));
        if (rc == 0) {
            spk_info(0, "store: PostgreSQL reachable after %u failed attempt(s)", attempts);
            return 0;
        }
        if (rc != SPK_EUNAVAILABLE) {
            if (why[0] != '\0') {
                log_open_failure(rc, why); /* else logged where it failed (schema, anchor) */
            }
            return rc;
        }
        if (attempts % (60000 / WAIT_MAX_MS) == 0) { /* about once a minute, as reconnecting */
            log_open_failure(rc, why[0] != '\0' ? why : "connection lost while opening");
        }
    }
}

void spk_store_close(spk_store_t *st)
{
    if (st == NULL) {
        return;
    }
    spk_store_rollback(st);
    spk_store_sync_stop(st);
    if (st->db != NULL) {
        st->db->be->close(st->db);
    }
    st_audit_close(st);
    spk_wipe(st, sizeof(*st));
    free(st);
}
