/* Which backend the store unit suites run on (backend.h). */
#include "backend.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool g_pg;
static int g_seq;

bool tb_init(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pg") != 0) {
            fprintf(stderr, "usage: %s [--pg]\n", argv[0]);
            return false;
        }
        g_pg = true;
    }
    if (g_pg && getenv("SPK_TEST_PG") == NULL) {
        fprintf(stderr, "--pg needs SPK_TEST_PG (run under tests/lib/with_postgres.sh)\n");
        return false;
    }
    return true;
}

bool tb_pg(void)
{
    return g_pg;
}

const char *tb_name(void)
{
    return g_pg ? "postgresql" : "sqlite";
}

/* Runs SQL text on a PostgreSQL connection string; fails the test on an error. */
static void pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connect %s: %s", conninfo, PQerrorMessage(c));
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("sql \"%s\": %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

void tb_create(tb_store_t *b, const char *dir)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "%s", dir);
    if (!g_pg) {
        return;
    }
    snprintf(b->dbname, sizeof(b->dbname), "spk_t_%d_%d", (int)getpid(), ++g_seq);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", b->dbname);
    pg_exec(getenv("SPK_TEST_PG"), sql);
    snprintf(b->target, sizeof(b->target), "%s dbname=%s", getenv("SPK_TEST_PG"), b->dbname);
}

void tb_destroy(tb_store_t *b)
{
    if (b->dbname[0] != '\0') {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->dbname);
        pg_exec(getenv("SPK_TEST_PG"), sql);
        b->dbname[0] = '\0';
    }
}

int tb_open(const tb_store_t *b, spk_store_t **out)
{
    return spk_store_open_db(out, b->dir, b->target);
}

void tb_copy(const tb_store_t *from, tb_store_t *to, const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", dir, from->dir, dir);
    assert_int_equal(system(cmd), 0);
    memset(to, 0, sizeof(*to));
    snprintf(to->dir, sizeof(to->dir), "%s", dir);
    if (!g_pg) {
        return;
    }
    snprintf(to->dbname, sizeof(to->dbname), "spk_t_%d_%d", (int)getpid(), ++g_seq);
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s", to->dbname, from->dbname);
    pg_exec(getenv("SPK_TEST_PG"), sql);
    snprintf(to->target, sizeof(to->target), "%s dbname=%s", getenv("SPK_TEST_PG"), to->dbname);
}

static void lite_exec(const tb_store_t *b, const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/spreekkamer.db", b->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("sql \"%s\": %s", sql, err != NULL ? err : "?");
    }
    sqlite3_close(db);
}

void tb_sql(const tb_store_t *b, const char *sql)
{
    if (g_pg) {
        pg_exec(b->target, sql);
    } else {
        lite_exec(b, sql);
    }
}

#define UNGUARD_LITE                                                                               \
    "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;"
#define UNGUARD_PG                                                                                 \
    "DROP TRIGGER IF EXISTS audit_no_update ON audit;"                                             \
    "DROP TRIGGER IF EXISTS audit_no_delete ON audit;"                                             \
    "DROP TRIGGER IF EXISTS audit_no_truncate ON audit;"

void tb_tamper(const tb_store_t *b, const char *sql)
{
    size_t n = strlen(sql) + 256;
    char *q = malloc(n);
    assert_non_null(q);
    snprintf(q, n, "%s%s", g_pg ? UNGUARD_PG : UNGUARD_LITE, sql);
    tb_sql(b, q);
    free(q);
}

int64_t tb_int(const tb_store_t *b, const char *sql)
{
    int64_t v = 0;
    if (g_pg) {
        PGconn *c = PQconnectdb(b->target);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            fail_msg("sql \"%s\": %s", sql, PQresultErrorMessage(r));
        }
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/spreekkamer.db", b->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* COPY the row out of one database and into the other. */
static void pg_copy_row(const tb_store_t *from, const tb_store_t *to, int64_t seq, bool replace)
{
    char sql[256];
    PGconn *src = PQconnectdb(from->target);
    PGconn *dst = PQconnectdb(to->target);
    assert_int_equal(PQstatus(src), CONNECTION_OK);
    assert_int_equal(PQstatus(dst), CONNECTION_OK);
    PQclear(PQexec(dst, UNGUARD_PG));
    if (replace) {
        snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE seq = %lld", (long long)seq);
        PGresult *r = PQexec(dst, sql);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    snprintf(sql, sizeof(sql), "COPY (SELECT * FROM audit WHERE seq = %lld) TO STDOUT",
             (long long)seq);
    PGresult *r = PQexec(src, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COPY_OUT);
    PQclear(r);
    r = PQexec(dst, "COPY audit FROM STDIN");
    assert_int_equal(PQresultStatus(r), PGRES_COPY_IN);
    PQclear(r);
    char *row = NULL;
    int n;
    while ((n = PQgetCopyData(src, &row, 0)) > 0) {
        assert_int_equal(PQputCopyData(dst, row, n), 1);
        PQfreemem(row);
    }
    assert_int_equal(PQputCopyEnd(dst, NULL), 1);
    while ((r = PQgetResult(src)) != NULL) {
        PQclear(r);
    }
    while ((r = PQgetResult(dst)) != NULL) {
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
    }
    PQfinish(src);
    PQfinish(dst);
}

void tb_copy_audit_row(const tb_store_t *from, const tb_store_t *to, int64_t seq, bool replace)
{
    if (g_pg) {
        pg_copy_row(from, to, seq, replace);
        return;
    }
    char del[96] = "";
    if (replace) {
        snprintf(del, sizeof(del), "DELETE FROM audit WHERE seq = %lld;", (long long)seq);
    }
    char q[1024];
    snprintf(q, sizeof(q),
             "ATTACH '%s/spreekkamer.db' AS twin; %s"
             " INSERT INTO audit SELECT * FROM twin.audit WHERE seq = %lld;",
             from->dir, del, (long long)seq);
    tb_tamper(to, q);
}

void tb_temp_open(tb_store_t *b, char *dir, const char *pattern, spk_store_t **st)
{
    snprintf(dir, 256, "%s", pattern);
    assert_non_null(mkdtemp(dir));
    strcat(dir, "/data");
    tb_create(b, dir);
    assert_int_equal(tb_open(b, st), 0);
}

void tb_temp_close(tb_store_t *b, char *dir, spk_store_t *st)
{
    spk_store_close(st);
    tb_destroy(b);
    *strrchr(dir, '/') = '\0';
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}
