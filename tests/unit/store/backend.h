/* The store unit suites run against both backends: SQLite in the test's data directory, or,
 * with --pg, a fresh PostgreSQL database per test on the server tests/lib/with_postgres.sh
 * started (SPK_TEST_PG names it). These helpers hide which one a test runs on. */
#ifndef SPK_TEST_STORE_BACKEND_H
#define SPK_TEST_STORE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/store.h"

typedef struct {
    char dir[256];    /* data directory (keys, anchor; the SQLite file) */
    char target[768]; /* PostgreSQL connection string, "" on SQLite */
    char dbname[64];  /* the test's PostgreSQL database */
} tb_store_t;

/* Parses the suite's arguments (--pg); false on a usage error. */
bool tb_init(int argc, char **argv);
bool tb_pg(void);
/* "sqlite" or "postgresql", for test names in messages. */
const char *tb_name(void);

/* A fresh store location: the directory `dir` (not created) and, on PostgreSQL, a new empty
 * database. */
void tb_create(tb_store_t *b, const char *dir);
/* Drops the database (PostgreSQL). */
void tb_destroy(tb_store_t *b);
int tb_open(const tb_store_t *b, spk_store_t **out);
/* A test's usual start and end: `dir` (at least 256 bytes) becomes mkdtemp(`pattern`) + "/data",
 * a fresh location there with its store open in *st; tb_temp_close closes the store, drops the
 * location and removes the temporary directory. */
void tb_temp_open(tb_store_t *b, char *dir, const char *pattern, spk_store_t **st);
void tb_temp_close(tb_store_t *b, char *dir, spk_store_t *st);
/* Another location with the same database contents (a copy of the directory and, on
 * PostgreSQL, of the database). The store must be closed. */
void tb_copy(const tb_store_t *from, tb_store_t *to, const char *dir);

/* Runs SQL text on the database directly, as someone with access to it would; fails the test
 * on an error. tb_tamper first drops the audit table's guards. */
void tb_sql(const tb_store_t *b, const char *sql);
void tb_tamper(const tb_store_t *b, const char *sql);
/* The single integer a query returns. */
int64_t tb_int(const tb_store_t *b, const char *sql);
/* Copies audit entry `seq` of `from` into `to` (guards dropped), replacing the one there if
 * `replace`. */
void tb_copy_audit_row(const tb_store_t *from, const tb_store_t *to, int64_t seq, bool replace);

#endif
