/* db_floor: what one database operation costs the thread that waits for it, SQLite against
 * PostgreSQL (docs/performance.md "Store"): the raw library calls (the floor), then the same
 * through spk_store as spreekd uses it (with the sync thread running, commits asynchronous).
 *
 *   db_floor [--reps N]            SQLite only
 *   with_postgres.sh db_floor      SQLite and PostgreSQL (SPK_TEST_PG: Unix socket,
 *                                  SPK_TEST_PG_TCP: 127.0.0.1)
 *
 * Wall-clock time per operation (a round trip waits for another process), median of N
 * repetitions of a batch; one table, then a JSON line. */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "spk/store.h"

#define MAX_REPS 31
#define ROWS 10000

static int g_reps = 7;
static int g_seq; /* unique keys for inserts */
static char g_json[8192];
static size_t g_json_len;

static double wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef void (*op_fn)(void *ud, int i);

/* Median microseconds per call of op over g_reps batches of n. */
static double measure(op_fn op, void *ud, int n)
{
    double v[MAX_REPS];
    for (int r = 0; r < g_reps; r++) {
        double t0 = wall_us();
        for (int i = 0; i < n; i++) {
            op(ud, r * n + i);
        }
        v[r] = (wall_us() - t0) / n;
    }
    return bench_median(v, g_reps);
}

static void report(const char *key, const char *what, double us)
{
    printf("  %-58s %9.1f us\n", what, us);
    g_json_len += (size_t)snprintf(g_json + g_json_len, sizeof(g_json) - g_json_len,
                                   "%s\"%s\":%.1f", g_json_len > 1 ? "," : "", key, us);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "db_floor: %s: %s\n", what, msg);
    exit(1);
}

/* ---- PostgreSQL through libpq ---- */

static void pg_ok(PGresult *r, const char *what)
{
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        die(what, PQresultErrorMessage(r));
    }
    PQclear(r);
}

static void pg_select1(void *ud, int i)
{
    (void)i;
    pg_ok(PQexec(ud, "SELECT 1"), "select 1");
}

static void key_of(char *out, size_t cap, int i)
{
    snprintf(out, cap, "k%d", i % ROWS);
}

static void pg_get_unprepared(void *ud, int i)
{
    char k[16];
    key_of(k, sizeof(k), i);
    const char *p[1] = {k};
    pg_ok(PQexecParams(ud, "SELECT id, v FROM t WHERE id = $1", 1, NULL, p, NULL, NULL, 1), "get");
}

static void pg_get_prepared(void *ud, int i)
{
    char k[16];
    key_of(k, sizeof(k), i);
    const char *p[1] = {k};
    pg_ok(PQexecPrepared(ud, "get", 1, p, NULL, NULL, 1), "get prepared");
}

static void pg_insert(void *ud, int i)
{
    (void)i;
    char k[16];
    snprintf(k, sizeof(k), "n%d", ++g_seq);
    const char *p[1] = {k};
    pg_ok(PQexecPrepared(ud, "ins", 1, p, NULL, NULL, 1), "insert");
}

static void pg_txn(void *ud, int i)
{
    pg_ok(PQexec(ud, "BEGIN"), "begin");
    pg_insert(ud, i);
    pg_insert(ud, i);
    pg_ok(PQexec(ud, "COMMIT"), "commit");
}

static void pg_marker(void *ud, int i)
{
    (void)i;
    pg_ok(PQexec(ud, "UPDATE mark SET n = n + 1"), "marker");
}

static void pg_floor(const char *conninfo, const char *via)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        die("connect", PQerrorMessage(c));
    }
    pg_ok(PQexec(c, "DROP TABLE IF EXISTS t, w, mark;"
                    "CREATE TABLE t (id TEXT COLLATE \"C\" PRIMARY KEY, v BIGINT);"
                    "INSERT INTO t SELECT 'k' || g, g FROM generate_series(0, 9999) g;"
                    "CREATE TABLE w (id TEXT COLLATE \"C\" PRIMARY KEY, v BIGINT);"
                    "CREATE TABLE mark (n BIGINT); INSERT INTO mark VALUES (0); ANALYZE t;"),
          "set-up");
    pg_ok(PQprepare(c, "get", "SELECT id, v FROM t WHERE id = $1", 0, NULL), "prepare");
    pg_ok(PQprepare(c, "ins", "INSERT INTO w VALUES ($1, 1)", 0, NULL), "prepare");
    char key[64], what[96];
#define PG_REPORT(k, w, fn, n)                                                                     \
    snprintf(key, sizeof(key), "pg_%s_%s", via, k);                                                \
    snprintf(what, sizeof(what), "%s (%s)", w, via);                                               \
    report(key, what, measure(fn, c, n))
    printf("PostgreSQL over %s\n", via);
    PG_REPORT("select1", "round trip: SELECT 1", pg_select1, 2000);
    PG_REPORT("get_unprepared", "point read, PQexecParams (parse + plan each time)",
              pg_get_unprepared, 2000);
    PG_REPORT("get", "point read, prepared", pg_get_prepared, 2000);
    pg_ok(PQexec(c, "SET synchronous_commit = off"), "set");
    PG_REPORT("insert_async", "insert, autocommit, synchronous_commit off", pg_insert, 2000);
    PG_REPORT("txn_async", "BEGIN, 2 inserts, COMMIT, synchronous_commit off", pg_txn, 1000);
    pg_ok(PQexec(c, "SET synchronous_commit = on"), "set");
    PG_REPORT("insert_sync", "insert, autocommit, synchronous_commit on", pg_insert, 200);
    PG_REPORT("txn_sync", "BEGIN, 2 inserts, COMMIT, synchronous_commit on", pg_txn, 200);
    PG_REPORT("flush", "flush marker: one-row UPDATE, synchronous_commit on", pg_marker, 200);
#undef PG_REPORT
    PQfinish(c);
}

/* ---- SQLite ---- */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *get, *ins;
} lite_t;

static void lite_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        die(sql, err != NULL ? err : "?");
    }
}

static void lite_get(void *ud, int i)
{
    lite_t *l = ud;
    char k[16];
    key_of(k, sizeof(k), i);
    sqlite3_bind_text(l->get, 1, k, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(l->get) != SQLITE_ROW) {
        die("get", sqlite3_errmsg(l->db));
    }
    sqlite3_reset(l->get);
}

static void lite_insert(void *ud, int i)
{
    (void)i;
    lite_t *l = ud;
    char k[16];
    snprintf(k, sizeof(k), "n%d", ++g_seq);
    sqlite3_bind_text(l->ins, 1, k, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(l->ins) != SQLITE_DONE) {
        die("insert", sqlite3_errmsg(l->db));
    }
    sqlite3_reset(l->ins);
}

static void lite_txn(void *ud, int i)
{
    lite_t *l = ud;
    lite_exec(l->db, "BEGIN IMMEDIATE");
    lite_insert(ud, i);
    lite_insert(ud, i);
    lite_exec(l->db, "COMMIT");
}

static void lite_floor(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/floor.db", dir);
    lite_t l = {0};
    if (sqlite3_open(path, &l.db) != SQLITE_OK) {
        die("open", path);
    }
    lite_exec(l.db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                    "CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER);"
                    "CREATE TABLE w (id TEXT PRIMARY KEY, v INTEGER);"
                    "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 9999)"
                    " INSERT INTO t SELECT 'k' || n, n FROM g;");
    sqlite3_prepare_v2(l.db, "SELECT id, v FROM t WHERE id = ?1", -1, &l.get, NULL);
    sqlite3_prepare_v2(l.db, "INSERT INTO w VALUES (?1, 1)", -1, &l.ins, NULL);
    printf("SQLite (WAL, one file)\n");
    report("lite_get", "point read, prepared", measure(lite_get, &l, 20000));
    report("lite_insert_full", "insert, autocommit, synchronous=FULL (fsync each)",
           measure(lite_insert, &l, 200));
    lite_exec(l.db, "PRAGMA synchronous=NORMAL");
    report("lite_insert_normal", "insert, autocommit, synchronous=NORMAL (no fsync)",
           measure(lite_insert, &l, 3000));
    report("lite_txn_normal", "BEGIN, 2 inserts, COMMIT, synchronous=NORMAL",
           measure(lite_txn, &l, 3000));
    sqlite3_finalize(l.get);
    sqlite3_finalize(l.ins);
    sqlite3_close(l.db);
}

/* ---- through spk_store, as spreekd uses it ---- */

static void store_get(void *ud, int i)
{
    spk_consult_rec_t c;
    char id[32];
    snprintf(id, sizeof(id), "c_%d", i % 200);
    if (spk_store_consult_get(ud, id, &c) != 0) {
        die("consult get", id);
    }
}

/* A handler's write: a new consult and its audit entry in one transaction. */
static void store_write(void *ud, int i)
{
    (void)i;
    spk_store_t *st = ud;
    spk_consult_rec_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "c_w%d", ++g_seq);
    snprintf(c.practice, sizeof(c.practice), "praktijk-a");
    snprintf(c.gp, sizeof(c.gp), "gp-1");
    snprintf(c.patient, sizeof(c.patient), "pseudo-1");
    c.created_at = 1;
    spk_audit_rec_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.event, sizeof(r.event), "consult.create");
    snprintf(r.outcome, sizeof(r.outcome), "success");
    snprintf(r.object, sizeof(r.object), "%s", c.id);
    uint64_t t = 0;
    if (spk_store_begin(st) != 0 || spk_store_consult_insert(st, &c) != 0 ||
        spk_store_audit_append(st, &r) != 0 || spk_store_commit(st, &t) != 0) {
        die("write", c.id);
    }
}

static void store_floor(const char *dir, const char *db, const char *name)
{
    spk_store_t *st = NULL;
    if (spk_store_open_db(&st, dir, db) != 0) {
        die("store open", name);
    }
    spk_store_sync_opts_t o = {.full_verify_interval_s = 0};
    if (spk_store_sync_start(st, &o) != 0) {
        die("sync start", name);
    }
    for (int i = 0; i < 200; i++) {
        spk_consult_rec_t c;
        memset(&c, 0, sizeof(c));
        snprintf(c.id, sizeof(c.id), "c_%d", i);
        snprintf(c.practice, sizeof(c.practice), "praktijk-a");
        spk_store_consult_insert(st, &c);
    }
    char key[64], what[96];
    printf("spk_store on %s (sync thread running)\n", name);
    snprintf(key, sizeof(key), "store_%s_get", name);
    report(key, "spk_store_consult_get", measure(store_get, st, 2000));
    snprintf(key, sizeof(key), "store_%s_write", name);
    snprintf(what, sizeof(what), "begin, consult insert, audit append, commit");
    report(key, what, measure(store_write, st, 500));
    /* How long a commit waits for its flush: the outbox holds the answer that long. */
    double v[MAX_REPS];
    for (int r = 0; r < g_reps; r++) {
        store_write(st, 0);
        uint64_t t = spk_store_last_ticket(st);
        double t0 = wall_us();
        while (spk_store_durable(st) < t) {
            spk_store_poll(st); /* PostgreSQL: reads the COMMIT's answer (spreekd's loop does) */
            usleep(20);
        }
        v[r] = wall_us() - t0;
    }
    snprintf(key, sizeof(key), "store_%s_durable", name);
    report(key, "commit to durable (group commit flush)", bench_median(v, g_reps));
    spk_store_close(st);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            g_reps = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: db_floor [--reps N]\n");
            return 2;
        }
    }
    if (g_reps < 1 || g_reps > MAX_REPS) {
        g_reps = 7;
    }
    char dir[] = "/tmp/spk-dbfloor-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp", dir);
    }
    g_json[g_json_len++] = '{';
    printf("wall-clock time per operation, median of %d batches\n", g_reps);
    lite_floor(dir);
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/lite", dir);
    store_floor(sub, NULL, "sqlite");
    const char *pg = getenv("SPK_TEST_PG");
    if (pg != NULL) {
        pg_floor(pg, "unix");
        if (getenv("SPK_TEST_PG_TCP") != NULL) {
            pg_floor(getenv("SPK_TEST_PG_TCP"), "tcp");
        }
        snprintf(sub, sizeof(sub), "%s/pg", dir);
        store_floor(sub, pg, "postgresql");
    }
    snprintf(g_json + g_json_len, sizeof(g_json) - g_json_len, "}");
    printf("%s\n", g_json);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
