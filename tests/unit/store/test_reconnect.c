/* Unit tests of the PostgreSQL store losing its connections (run under
 * tests/lib/with_postgres.sh with --pg; on SQLite every test is skipped): the caller's
 * connection and the sync thread's are re-established after their backends are ended (or, for
 * the sync thread's, made once the database takes connections, when it cannot be made as the
 * thread starts), a commit whose answer was lost is found made through the marker row, one that
 * was not made (or an acknowledged one the database no longer has) ends durability, and the
 * audit chain stays one valid chain. The rows of a node that is gone (killed) are removed by
 * the others once its lease has run out, never those of a node that runs (nodes are this
 * program run with --node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "backend.h"
#include "spk/error.h"
#include "spk/store.h"

typedef struct {
    char dir[256];
    tb_store_t b;
    spk_store_t *st;
    char role[32];  /* setup_role: the role the store connects as */
    pid_t nodes[2]; /* other nodes (spawn_node), killed by the teardown */
    int calls;
    bool failed;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    tb_temp_open(&f->b, f->dir, "/tmp/spk_reconn_XXXXXX", &f->st);
    *state = f;
    return 0;
}

static void stop_node(pid_t pid);

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 2; i++) {
        if (f->nodes[i] > 0) {
            stop_node(f->nodes[i]);
        }
    }
    tb_temp_close(&f->b, f->dir, f->st);
    free(f);
    return 0;
}

static void durable_cb(void *ud, bool failed)
{
    fixture_t *f = ud;
    __atomic_add_fetch(&f->calls, 1, __ATOMIC_SEQ_CST);
    if (failed) {
        __atomic_store_n(&f->failed, true, __ATOMIC_SEQ_CST);
    }
}

static bool failed(fixture_t *f)
{
    return __atomic_load_n(&f->failed, __ATOMIC_SEQ_CST);
}

static void start_sync(fixture_t *f)
{
    if (!tb_pg()) {
        skip();
    }
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
}

/* Polls as spreekd's loop does until the ticket is durable (or 10 s have passed). */
static bool wait_durable(fixture_t *f, uint64_t t)
{
    for (int i = 0; i < 1000 && spk_store_durable(f->st) < t && !failed(f); i++) {
        spk_store_poll(f->st);
        usleep(10000);
    }
    return spk_store_durable(f->st) >= t;
}

static bool wait_available(fixture_t *f)
{
    spk_store_poll(f->st); /* reads what the server said (its end) */
    for (int i = 0; i < 1000 && !spk_store_available(f->st) && !failed(f); i++) {
        spk_store_poll(f->st);
        usleep(10000);
    }
    return spk_store_available(f->st);
}

static int audit_one(spk_store_t *st, const char *object)
{
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    r.ts_ms = 1700000000000;
    strcpy(r.event, "consult.create");
    strcpy(r.outcome, "success");
    strcpy(r.user, "gp-jansen");
    strcpy(r.role, "gp");
    strcpy(r.practice, "prac1");
    snprintf(r.object, sizeof(r.object), "%s", object);
    return spk_store_audit_append(st, &r);
}

/* One audited transaction inserting consult `id`. */
static int write_one(spk_store_t *st, const char *id, uint64_t *t)
{
    spk_consult_rec_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "%s", id);
    strcpy(c.practice, "prac1");
    strcpy(c.gp, "gp-jansen");
    strcpy(c.patient, "pp-1");
    strcpy(c.created_by, "gp-jansen");
    c.created_at = 100;
    int rc = spk_store_begin(st);
    if (rc == 0) {
        rc = spk_store_consult_insert(st, &c);
    }
    if (rc == 0) {
        rc = audit_one(st, id);
    }
    if (rc == 0) {
        return spk_store_commit(st, t);
    }
    spk_store_rollback(st);
    return rc;
}

static void expect_chain(fixture_t *f)
{
    int64_t bad = -1;
    char why[256] = "";
    int rc = spk_store_audit_verify(f->st, &bad, why, sizeof(why));
    if (rc != 0) {
        fail_msg("audit verify: %d at %lld: %s", rc, (long long)bad, why);
    }
}

/* Ends the database's other sessions whose current or last query matches `like` (SQL LIKE;
 * SYNC_QUERY: the sync thread's, a flush or its node's lease). */
#define SYNC_QUERY "%spk_flush%' OR query LIKE '%spk_node_lease%"
static void terminate(fixture_t *f, const char *like)
{
    char q[400];
    snprintf(q, sizeof(q),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
             " current_database() AND pid <> pg_backend_pid() AND (query LIKE '%s')",
             like);
    tb_sql(&f->b, q);
    usleep(200000); /* the backends have gone */
}

/* Both connections lost while idle: a statement that finds its connection gone is refused with
 * SPK_EUNAVAILABLE (never SPK_EIO), the store reconnects, writes go on, become durable, and the
 * chain stays one valid chain. */
static void test_idle_loss(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t = 0;
    char id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "c_before%d", i);
        assert_int_equal(write_one(f->st, id, &t), 0);
    }
    assert_true(wait_durable(f, t));
    terminate(f, "%");
    spk_consult_rec_t got;
    int rc = spk_store_consult_get(f->st, "c_before0", &got);
    assert_int_equal(rc, SPK_EUNAVAILABLE); /* found lost, not retried behind the caller */
    assert_false(spk_store_available(f->st));
    assert_true(wait_available(f));
    assert_int_equal(spk_store_consult_get(f->st, "c_before0", &got), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "c_after%d", i);
        assert_int_equal(write_one(f->st, id, &t), 0);
    }
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM consults"), 10);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM audit"), 10);
    expect_chain(f);
}

/* Only the sync thread's connection is lost: its flush fails as "unreachable", not as a disk
 * failure; it reconnects and the commits made meanwhile become durable. */
static void test_sync_connection_loss(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_true(wait_durable(f, t));
    terminate(f, SYNC_QUERY);
    assert_int_equal(
        tb_int(&f->b, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND (query LIKE '" SYNC_QUERY "') AND pid <> pg_backend_pid()"),
        0);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c_x%d", i);
        assert_int_equal(write_one(f->st, id, &t), 0);
    }
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    assert_true(wait_available(f));
    expect_chain(f);
}

/* The connection breaks after the server made a COMMIT but before its answer was read: the
 * commit is in doubt; once reconnected, the marker row shows it was made, so it becomes durable
 * and nothing is failed. (The answer is lost by putting a dead socket under libpq's.) */
static void test_in_doubt_made(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t0 = 0, t = 0;
    assert_int_equal(write_one(f->st, "c_0", &t0), 0);
    assert_true(wait_durable(f, t0));
    assert_int_equal(write_one(f->st, "c_doubt", &t), 0);
    assert_int_equal(spk_store_pending(f->st), 1); /* sent, answer not read */
    usleep(200000);                                /* the server has committed it */
    int fd = spk_store_poll_fd(f->st, NULL);
    assert_true(fd >= 0);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(dup2(sp[0], fd), fd); /* the answer waiting in the old socket is gone */
    close(sp[0]);
    close(sp[1]);
    assert_true(spk_store_durable(f->st) < t);
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM consults WHERE id = 'c_doubt'"), 1);
    uint64_t t2 = 0;
    assert_int_equal(write_one(f->st, "c_next", &t2), 0);
    assert_true(t2 > t);
    assert_true(wait_durable(f, t2));
    expect_chain(f);
}

/* The backend ends while the transaction waits for its COMMIT: a COMMIT sent then is never
 * made. Once reconnected the marker row shows the ticket missing, and durability ends
 * (durable_cb with failed; the caller stops acknowledging). A COMMIT the connection refused at
 * once is SPK_EUNAVAILABLE with nothing committed, and the store carries on. */
static void test_in_doubt_lost(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t0 = 0, t = 0;
    assert_int_equal(write_one(f->st, "c_0", &t0), 0);
    assert_true(wait_durable(f, t0));
    assert_int_equal(spk_store_begin(f->st), 0);
    assert_int_equal(audit_one(f->st, "c_lost"), 0);
    terminate(f, "%");
    int rc = spk_store_commit(f->st, &t);
    if (rc == 0) {
        assert_true(wait_available(f) || failed(f));
        for (int i = 0; i < 500 && !failed(f); i++) {
            spk_store_poll(f->st);
            usleep(10000);
        }
        assert_true(failed(f));
        assert_true(spk_store_durable(f->st) < t);
        assert_false(spk_store_available(f->st));
    } else {
        assert_int_equal(rc, SPK_EUNAVAILABLE);
        assert_true(wait_available(f));
        uint64_t t2 = 0;
        assert_int_equal(write_one(f->st, "c_next", &t2), 0);
        assert_true(wait_durable(f, t2));
        assert_false(failed(f));
    }
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM audit WHERE object = 'c_lost'"), 0);
    expect_chain(f);
}

/* An acknowledged commit the database no longer has (a standby without it took over), seen as
 * the marker row behind the durable ticket: once reconnected, durability ends. */
static void test_acknowledged_missing(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_int_equal(write_one(f->st, "c_2", &t), 0);
    assert_true(wait_durable(f, t));
    tb_sql(&f->b, "UPDATE spk_commit_mark SET ticket = ticket - 1");
    terminate(f, "%");
    for (int i = 0; i < 500 && !failed(f); i++) {
        spk_store_poll(f->st);
        usleep(10000);
    }
    assert_true(failed(f));
    assert_false(spk_store_available(f->st));
}

/* Autocommit writes carry the marker too: a write outside a transaction that changes nothing
 * (an invite used twice) still takes a ticket, and a reconnect afterwards finds every ticket. */
static void test_autocommit_marked(void **state)
{
    fixture_t *f = *state;
    start_sync(f);
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    char code[32];
    spk_invite_rec_t inv;
    assert_int_equal(
        spk_store_invite_create(f->st, "c_1", "gp-jansen", 1000, 600, code, sizeof(code), &inv), 0);
    assert_int_equal(spk_store_invite_use(f->st, inv.code_hash, 1100, "p1", NULL), 0);
    assert_int_equal(spk_store_invite_use(f->st, inv.code_hash, 1101, "p2", NULL), SPK_EINVITEUSED);
    uint64_t last = spk_store_last_ticket(f->st);
    assert_true(wait_durable(f, last));
    assert_int_equal(tb_int(&f->b, "SELECT max(ticket) FROM spk_commit_mark"), (int64_t)last);
    terminate(f, "%");
    assert_true(wait_available(f));
    assert_int_equal(write_one(f->st, "c_2", &t), 0);
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
}

/* Runs SQL on the server's "postgres" database as the test's superuser. */
static void server_sql(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("SPK_TEST_PG"));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fail_msg("sql \"%s\": %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

/* The store opened as a role of its own that owns the test's database (not a superuser, so that
 * a connection limit applies to it): "too many connections" (53300) is a database that cannot
 * be reached, for the connections the store makes next, while the ones made stay. */
static int setup_role(void **state)
{
    if (!tb_pg()) {
        skip();
    }
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/spk_reconn_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    strcat(f->dir, "/data");
    tb_create(&f->b, f->dir);
    char sql[256];
    snprintf(f->role, sizeof(f->role), "spk_lim_%d", (int)getpid());
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN", f->role, f->role);
    server_sql(sql);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s OWNER TO %s", f->b.dbname, f->role);
    server_sql(sql);
    char target[sizeof(f->b.target) + 48]; /* (the test's own statements stay the superuser's) */
    snprintf(target, sizeof(target), "%s user=%s", f->b.target, f->role);
    assert_int_equal(spk_store_open_db(&f->st, f->b.dir, target), 0);
    *state = f;
    return 0;
}

static int teardown_role(void **state)
{
    fixture_t *f = *state;
    char role[64];
    snprintf(role, sizeof(role), "%s", f->role);
    tb_temp_close(&f->b, f->dir, f->st);
    free(f);
    char sql[96];
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", role);
    server_sql(sql);
    return 0;
}

/* New connections of the fixture's role: none beyond those it has (limit 1: the store's own),
 * or any number again. */
static void role_limit(fixture_t *f, int limit)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "ALTER ROLE %s CONNECTION LIMIT %d", f->role, limit);
    server_sql(sql);
}

static uint64_t metric(fixture_t *f, const char *name)
{
    char buf[4096];
    size_t n = spk_store_metrics(f->st, buf, sizeof(buf));
    assert_true(n > 0 && n < sizeof(buf));
    buf[n] = '\0';
    char key[96];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(buf, key);
    assert_non_null(p);
    return strtoull(p + strlen(key), NULL, 10);
}

/* The sync thread's connection cannot be made as it starts (the database went away just after
 * the store opened): the thread starts anyway, commits are made but none is durable while it
 * cannot connect (the store is not available: /healthz 503), and once the database takes
 * connections again it connects with the back-off, counted as a reconnect, and makes them
 * durable; the node's marker row and the audit chain are as after any start. */
static void test_sync_start_unreachable(void **state)
{
    fixture_t *f = *state;
    role_limit(f, 1);
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    assert_false(spk_store_available(f->st));
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    for (int i = 0; i < 100; i++) {
        spk_store_poll(f->st);
        usleep(10000);
    }
    assert_true(spk_store_durable(f->st) < t); /* no flush without the connection */
    assert_false(failed(f));
    assert_false(spk_store_available(f->st));
    assert_int_equal(metric(f, "spk_store_reconnects_total"), 0);
    role_limit(f, -1);
    assert_true(wait_durable(f, t));
    assert_true(wait_available(f));
    assert_false(failed(f));
    assert_int_equal(metric(f, "spk_store_reconnects_total"), 1);
    assert_int_equal(tb_int(&f->b, "SELECT max(ticket) FROM spk_commit_mark"), (int64_t)t);
    uint64_t t2 = 0;
    assert_int_equal(write_one(f->st, "c_2", &t2), 0);
    assert_true(wait_durable(f, t2));
    expect_chain(f);
}

/* Later, the sync thread's connection is lost and cannot be made again for a while: the thread
 * keeps trying with the back-off (nothing fails), and the commits made meanwhile become durable
 * once it can. */
static void test_sync_reconnect_waits(void **state)
{
    fixture_t *f = *state;
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_true(wait_durable(f, t));
    role_limit(f, 1);
    terminate(f, SYNC_QUERY);
    assert_int_equal(write_one(f->st, "c_2", &t), 0);
    for (int i = 0; i < 150; i++) {
        spk_store_poll(f->st);
        usleep(10000);
    }
    assert_true(spk_store_durable(f->st) < t);
    assert_false(failed(f));
    role_limit(f, -1);
    assert_true(wait_durable(f, t));
    assert_true(wait_available(f));
    assert_false(failed(f));
    assert_true(metric(f, "spk_store_reconnects_total") >= 1);
    expect_chain(f);
}

/* A write becomes durable, the node's marker row has its ticket, and the chain is valid. */
static void expect_serving(fixture_t *f)
{
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    assert_int_equal(tb_int(&f->b, "SELECT max(ticket) FROM spk_commit_mark"), (int64_t)t);
    expect_chain(f);
}

/* Both connections are down as the sync thread starts, and the thread's comes back first
 * (the store's is only set up again when the store is used): the marker row waits for the
 * store's connection, and the thread's flushes meanwhile do not take the row for gone; once
 * the store reconnects it makes the row and commits become durable. */
static void test_sync_start_mark_later(void **state)
{
    fixture_t *f = *state;
    role_limit(f, 0);
    terminate(f, "%"); /* the store's connection (the only one so far) */
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f};
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    role_limit(f, 1); /* the sync thread's, and no more */
    char q[160];
    snprintf(q, sizeof(q), "SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'", f->role);
    for (int i = 0; i < 500 && tb_int(&f->b, q) == 0; i++) {
        usleep(10000);
    }
    assert_int_equal(tb_int(&f->b, q), 1);
    usleep(500000); /* flushes on it */
    assert_false(failed(f));
    assert_false(spk_store_available(f->st));
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_commit_mark"), 0);
    role_limit(f, -1);
    assert_true(wait_available(f));
    expect_serving(f);
}

/* PostgreSQL stops just after the store opened, before the sync thread starts: the thread
 * starts (the control connection's set-up, commits without waiting and the marker row, waits for
 * the database too), and once PostgreSQL is back the store serves and commits become durable. */
static void test_sync_start_db_stopped(void **state)
{
    fixture_t *f = *state;
    if (!tb_pg()) {
        skip();
    }
    const char *ctl = getenv("SPK_TEST_PG_CTL");
    assert_non_null(ctl);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' stop -m fast >/dev/null", ctl);
    assert_int_equal(system(cmd), 0);
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f};
    int rc = spk_store_sync_start(f->st, &o);
    snprintf(cmd, sizeof(cmd), "'%s' start >/dev/null", ctl);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
    assert_true(wait_available(f));
    expect_serving(f);
}

/* ---- other nodes: this program run as a node (--node TARGET DIR LEASE_MS) ---- */

#define LEASE_MS 4000 /* of the nodes, in the tests of gone nodes */

extern char **environ;

static void node_durable(void *ud, bool failed)
{
    (void)ud;
    if (failed) {
        _exit(3); /* durability ended: the parent sees it as the exit status */
    }
}

/* A node: its store on the same database, with the sync thread, idle until it is killed. */
static int node_main(const char *target, const char *dir, int lease_ms)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
    if (getppid() == 1) {
        return 2;
    }
    spk_store_t *st = NULL;
    if (spk_store_open_db(&st, dir, target) != 0) {
        return 2;
    }
    spk_store_sync_opts_t o = {.durable_cb = node_durable, .mark_lease_ms = lease_ms};
    if (spk_store_sync_start(st, &o) != 0) {
        return 2;
    }
    for (;;) {
        spk_store_poll(st);
        usleep(50000);
    }
}

/* The first value of a query's first row as text ("" for NULL or no row). */
static void sql_text(fixture_t *f, const char *sql, char *out, size_t cap)
{
    PGconn *c = PQconnectdb(f->b.target);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail_msg("sql \"%s\": %s", sql, PQresultErrorMessage(r));
    }
    snprintf(out, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
}

static int64_t rows_named(fixture_t *f, const char *node)
{
    char q[160];
    snprintf(q, sizeof(q), "SELECT count(*) FROM spk_commit_mark WHERE node = '%s'", node);
    return tb_int(&f->b, q);
}

/* Starts a node on a copy of the fixture's data directory (same keys); its log goes to a file,
 * from which *node receives the name of its marker row once it has made it. */
static pid_t spawn_node(fixture_t *f, const char *name, char node[33])
{
    char dir[300], log[320], cmd[700], self[512], lease[16];
    snprintf(dir, sizeof(dir), "%s_%s", f->dir, name);
    snprintf(log, sizeof(log), "%s.log", dir);
    snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", f->dir, dir);
    assert_int_equal(system(cmd), 0);
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(lease, sizeof(lease), "%d", LEASE_MS);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *args[] = {self, "--node", f->b.target, dir, lease, NULL};
    pid_t pid = -1;
    assert_int_equal(posix_spawn(&pid, self, &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    snprintf(cmd, sizeof(cmd),
             "sed -n 's/.*row in spk_commit_mark is \\([A-Za-z0-9_-]*\\).*/\\1/p' '%s'", log);
    node[0] = '\0';
    for (int i = 0; i < 1000 && node[0] == '\0'; i++) {
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        if (fgets(node, 33, p) == NULL) {
            node[0] = '\0';
        }
        node[strcspn(node, "\n")] = '\0';
        pclose(p);
        if (node[0] == '\0') {
            assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running */
            usleep(10000);
        }
    }
    for (int i = 0; i < 2; i++) {
        if (f->nodes[i] <= 0) {
            f->nodes[i] = pid;
            break;
        }
    }
    assert_true(node[0] != '\0');
    assert_int_equal(rows_named(f, node), 1);
    return pid;
}

static bool alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

static void stop_node(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Kills a node spawn_node started (the teardown does not again). */
static void kill_node(fixture_t *f, pid_t pid)
{
    for (int i = 0; i < 2; i++) {
        if (f->nodes[i] == pid) {
            f->nodes[i] = 0;
        }
    }
    stop_node(pid);
}

/* Waits until the row is gone (true), at most `ms`, polling the store meanwhile. */
static bool wait_row_gone(fixture_t *f, const char *node, int ms)
{
    for (int i = 0; i < ms / 50 && rows_named(f, node) > 0; i++) {
        spk_store_poll(f->st);
        usleep(50000);
    }
    return rows_named(f, node) == 0;
}

static void idle(fixture_t *f, int ms)
{
    for (int i = 0; i < ms / 50; i++) {
        spk_store_poll(f->st);
        usleep(50000);
    }
}

/* Two nodes start at once next to this one; one is killed. Its marker row (and its spk_flush
 * row) is removed by itself (by the other nodes, once its lease has run out), while the rows of
 * the nodes that run, and a row without a lease (an older build's), stay; every node carries
 * on. */
static void test_gone_node_row_removed(void **state)
{
    fixture_t *f = *state;
    if (!tb_pg()) {
        skip();
    }
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f, .mark_lease_ms = LEASE_MS};
    tb_sql(&f->b, "INSERT INTO spk_commit_mark (node, ticket) VALUES ('older_build', 7)");
    char a[33], b[33];
    pid_t pa = spawn_node(f, "a", a);
    pid_t pb = spawn_node(f, "b", b);
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_true(wait_durable(f, t));
    char q[160];
    snprintf(q, sizeof(q), "INSERT INTO spk_flush (node, n) VALUES ('%s', 1)", a);
    tb_sql(&f->b, q); /* as a node makes with its first flush */
    kill_node(f, pa);
    assert_true(wait_row_gone(f, a, 6 * LEASE_MS));
    snprintf(q, sizeof(q), "SELECT count(*) FROM spk_flush WHERE node = '%s'", a);
    assert_int_equal(tb_int(&f->b, q), 0);
    snprintf(q, sizeof(q), "SELECT count(*) FROM spk_node_lease WHERE node = '%s'", a);
    assert_int_equal(tb_int(&f->b, q), 0);
    assert_int_equal(rows_named(f, b), 1);
    assert_int_equal(rows_named(f, "older_build"), 1);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_commit_mark"), 3);
    idle(f, 2 * LEASE_MS); /* the living keep theirs */
    assert_int_equal(rows_named(f, b), 1);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_commit_mark"), 3);
    assert_true(alive(pb));
    assert_int_equal(write_one(f->st, "c_2", &t), 0);
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    spk_store_close(f->st); /* a node that stops takes its rows with it */
    f->st = NULL;
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_commit_mark"), 2);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_node_lease"), 1);
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_flush"), 0); /* (b never flushed) */
    kill_node(f, pb);
}

/* PostgreSQL is away for longer than a lease (every node's renewals fail meanwhile): once it is
 * back, no node takes another for gone. */
static void test_outage_keeps_rows(void **state)
{
    fixture_t *f = *state;
    if (!tb_pg()) {
        skip();
    }
    spk_store_sync_opts_t o = {.durable_cb = durable_cb, .ud = f, .mark_lease_ms = LEASE_MS};
    char b[33];
    pid_t pb = spawn_node(f, "b", b);
    assert_int_equal(spk_store_sync_start(f->st, &o), 0);
    idle(f, LEASE_MS * 3 / 2); /* both judge leases by now */
    char before[80];
    sql_text(f, "SELECT string_agg(node, ',' ORDER BY node) FROM spk_commit_mark", before,
             sizeof(before));
    assert_int_equal(tb_int(&f->b, "SELECT count(*) FROM spk_commit_mark"), 2);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' stop -m fast >/dev/null", getenv("SPK_TEST_PG_CTL"));
    assert_int_equal(system(cmd), 0);
    idle(f, 2 * LEASE_MS);
    snprintf(cmd, sizeof(cmd), "'%s' start >/dev/null", getenv("SPK_TEST_PG_CTL"));
    assert_int_equal(system(cmd), 0);
    assert_true(wait_available(f));
    idle(f, 2 * LEASE_MS);
    char after[80];
    sql_text(f, "SELECT string_agg(node, ',' ORDER BY node) FROM spk_commit_mark", after,
             sizeof(after));
    assert_string_equal(after, before);
    assert_int_equal(rows_named(f, b), 1);
    assert_true(alive(pb));
    uint64_t t = 0;
    assert_int_equal(write_one(f->st, "c_1", &t), 0);
    assert_true(wait_durable(f, t));
    assert_false(failed(f));
    kill_node(f, pb);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--node") == 0) {
        return node_main(argv[2], argv[3], atoi(argv[4]));
    }
    if (!tb_init(argc, argv)) {
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_connection_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_doubt_made, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_doubt_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledged_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autocommit_marked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_start_unreachable, setup_role, teardown_role),
        cmocka_unit_test_setup_teardown(test_sync_reconnect_waits, setup_role, teardown_role),
        cmocka_unit_test_setup_teardown(test_sync_start_mark_later, setup_role, teardown_role),
        cmocka_unit_test_setup_teardown(test_sync_start_db_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_node_row_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_keeps_rows, setup, teardown),
    };
    return cmocka_run_group_tests_name(tb_name(), tests, NULL, NULL);
}
