/* The PostgreSQL schema and its migrations (schema.c has SQLite's). The table spk_schema holds
 * the schema version; it counts on from SQLite's (3 is the first version on PostgreSQL), so
 * that one version number names one set of tables on both. A database of an older version is
 * migrated in one transaction when it is opened; one of a newer version than this build knows
 * is refused. Nodes that open an empty database at the same time wait for each other (an
 * advisory lock held for the transaction): one creates the tables, the others find them.
 *
 * Version 3 includes what SQLite stores of any version gain when opened (st_schema_integration:
 * consult planning columns, integrations, idempotency records, the webhook queue, console
 * links, marks; st_schema_chat: the delivery service's replay windows). The tables are SQLite's
 * with PostgreSQL's types: BIGINT for INTEGER, BYTEA for BLOB, text compared bytewise (COLLATE "C",
 * as SQLite compares), and a rowid identity column where the queries order by insertion. spk_flush
 * holds one row per sync-thread connection; changing it with synchronous_commit on is what makes
 * earlier commits durable (db_pg.c). spk_commit_mark (created on every open when missing, like
 * spk_flush a table of the running nodes, not of the data) holds one row per running spreekd:
 * the ticket of its newest transaction, which every transaction with a ticket sets.
 * spk_node_lease (the same kind of table) holds each running node's lease, which its sync
 * thread renews: a node whose lease ran out is gone, and its rows in the three tables are
 * removed (sync.c "Rows of nodes that are gone"; a node of an older build has no lease). */
#include "store_priv.h"

#include <stdio.h>

#include "spk/error.h"
#include "spk/log.h"

#define SCHEMA_VERSION 4
#define SCHEMA_LOCK_KEY "8319669543063350131" /* "spkschem" */

#define T "TEXT COLLATE \"C\" NOT NULL"
#define I "BIGINT NOT NULL"
#define ROWID "rowid BIGINT GENERATED ALWAYS AS IDENTITY"

static const char *const schema_v3 =
    "CREATE TABLE spk_schema (version " I ");"
    "CREATE TABLE spk_flush (node " T " PRIMARY KEY, n " I ");"
    "CREATE TABLE consults ("
    " id " T " PRIMARY KEY, practice " T ", gp " T ", patient " T ", title " T ","
    " created_by " T ", state " I ", created_at " I ", ended_at " I ", " ROWID ","
    " planned_at " I " DEFAULT 0, planned_end " I " DEFAULT 0, started_at " I " DEFAULT 0);"
    "CREATE INDEX consults_open ON consults(state, practice, created_at);"
    "CREATE TABLE participants ("
    " consult " T " REFERENCES consults(id), id " T ", sub " T ", name " T ", role " T ","
    " state " I ", joined_at " I ", updated_at " I ", iss " T " DEFAULT '', " ROWID ","
    " PRIMARY KEY (consult, id));"
    "CREATE TABLE invites ("
    " code_hash BYTEA PRIMARY KEY NOT NULL, consult " T " REFERENCES consults(id),"
    " created_by " T ", created_at " I ", expires_at " I ", used_at " I ", used_by " T ","
    " id " T " DEFAULT '', revoked_at " I " DEFAULT 0, " ROWID ");"
    "CREATE INDEX invites_consult ON invites(consult);"
    "CREATE UNIQUE INDEX invites_id ON invites(id);"
    "CREATE INDEX invites_expiry ON invites(expires_at);"
    "CREATE TABLE delegations ("
    " id " T " PRIMARY KEY, practice " T ", grantee " T ", granted_by " T ","
    " created_at " I ", valid_from " I ", valid_until " I ", revoked_at " I ","
    " grantee_iss " T " DEFAULT '', " ROWID ");"
    "CREATE INDEX delegations_pg ON delegations(practice, grantee);"
    "CREATE TABLE facts ("
    " consult " T " REFERENCES consults(id), kind " T ", subject " T ", value " T ","
    " recorded_by " T ", at " I ", subject_iss " T " DEFAULT '',"
    " PRIMARY KEY (consult, kind, subject_iss, subject));"
    "CREATE TABLE audit ("
    " seq BIGINT PRIMARY KEY NOT NULL, ts_ms " I ", event " T ", outcome " T ","
    " \"user\" " T ", name " T ", role " T ", on_behalf_of " T ", access_point " T ","
    " patient " T ", object " T ", detail " T ", prev_hash BYTEA NOT NULL,"
    " hash BYTEA NOT NULL, v " I " DEFAULT 1, issuer " T " DEFAULT '',"
    " practice " T " DEFAULT '', mac BYTEA);"
    "CREATE INDEX audit_patient ON audit(patient, seq);"
    "CREATE INDEX audit_practice ON audit(practice, seq);"
    "CREATE TABLE chat_conversations ("
    " id " T " PRIMARY KEY, kind " T ", practice " T ", patient " T ", consult " T ","
    " title " T ", created_by_iss " T ", created_by " T ", created_at " I ","
    " closed_at " I ", retention_s " I ", epoch " I ", observer BYTEA);"
    "CREATE INDEX chat_conv_find ON chat_conversations(kind, practice, patient, consult);"
    "CREATE TABLE chat_members ("
    " conversation " T " REFERENCES chat_conversations(id), iss " T ", sub " T ","
    " name " T ", role " T ", added_by " T ", added_at " I ", removed_at " I ", " ROWID ","
    " PRIMARY KEY (conversation, iss, sub));"
    "CREATE INDEX chat_members_user ON chat_members(iss, sub);"
    "CREATE TABLE chat_devices ("
    " iss " T ", sub " T ", device " T ", created_at " I ", last_seen " I ","
    " PRIMARY KEY (iss, sub, device));"
    "CREATE TABLE chat_keypackages ("
    " ref BYTEA PRIMARY KEY NOT NULL, iss " T ", sub " T ", device " T ", kp BYTEA,"
    " last_resort " I ", created_at " I ", not_after " I ");"
    "CREATE INDEX chat_kp_device ON chat_keypackages(iss, sub, device, last_resort);"
    "CREATE TABLE chat_log ("
    " conversation " T ", seq " I ", epoch " I ", type " I ", sender_iss " T ","
    " sender " T ", sender_device " T ", to_iss " T ", to_sub " T ", to_device " T ","
    " at_ms " I ", data BYTEA NOT NULL, PRIMARY KEY (conversation, seq));"
    "CREATE INDEX chat_log_time ON chat_log(at_ms);"
    "CREATE TABLE chat_cursors ("
    " conversation " T ", iss " T ", sub " T ", device " T ", from_seq " I ","
    " acked " I ", active " I ", PRIMARY KEY (conversation, iss, sub, device));"
    "CREATE INDEX chat_cursors_device ON chat_cursors(iss, sub, device, active);"
    "CREATE TABLE chat_files ("
    " id " T " PRIMARY KEY, conversation " T ", size " I ", uploader_iss " T ","
    " uploader " T ", device " T ", created_at " I ");"
    "CREATE INDEX chat_files_conv ON chat_files(conversation, created_at);"
    "CREATE TABLE integrations ("
    " id " T " PRIMARY KEY, name " T ", practices " T ", webhook_url " T ","
    " webhook_secret BYTEA NOT NULL, created_at " I ", revoked_at " I ", " ROWID ");"
    "CREATE TABLE integration_keys ("
    " integration " T " REFERENCES integrations(id), kid " T ", pub BYTEA NOT NULL,"
    " created_at " I ", retired_at " I ", " ROWID ", PRIMARY KEY (integration, kid));"
    "CREATE TABLE idempotency ("
    " owner " T ", key_hash BYTEA NOT NULL, req_hash BYTEA NOT NULL, reply BYTEA NOT NULL,"
    " created_at " I ", PRIMARY KEY (owner, key_hash));"
    "CREATE INDEX idempotency_age ON idempotency(created_at);"
    "CREATE TABLE webhook_queue ("
    " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, integration " T ", seq " I ","
    " event " T ", created_at " I ", next_at_ms " I ", attempts " I ", last_error " T ");"
    "CREATE INDEX webhook_queue_integ ON webhook_queue(integration, id);"
    "CREATE TABLE console_links ("
    " code_hash BYTEA PRIMARY KEY NOT NULL, consult " T " REFERENCES consults(id),"
    " practice " T ", gp " T ", name " T ", integration " T ", created_at " I ","
    " expires_at " I ", used_at " I ");"
    "CREATE TABLE marks (name " T " PRIMARY KEY, v " I ");"
    "CREATE TABLE chat_replay (conversation " T " PRIMARY KEY, epoch " I ", seq " I ","
    " digests BYTEA NOT NULL);"
    "INSERT INTO spk_schema (version) VALUES (3);";

/* Run on every open: the guards come back if someone dropped them (a guard against mistakes,
 * not against an attacker; the hash chain, anchor and witness detect that). */
static const char *const guards =
    "CREATE OR REPLACE FUNCTION spk_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'audit log is append-only'; END$$;"
    "CREATE OR REPLACE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION spk_audit_append_only();"
    "CREATE OR REPLACE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION spk_audit_append_only();"
    "CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit"
    " FOR EACH STATEMENT EXECUTE FUNCTION spk_audit_append_only();";

/* Steps from version n to n + 1, for n = 3, 4, ... */
static const char *const migrations[] = {
    /* 3 → 4: the chat log keyed by one global append order, (conversation, seq) unique (as in
     * schema.c) */
    "ALTER TABLE chat_log ADD COLUMN gseq BIGINT GENERATED ALWAYS AS IDENTITY;"
    "ALTER TABLE chat_log DROP CONSTRAINT chat_log_pkey;"
    "ALTER TABLE chat_log ADD PRIMARY KEY (gseq);"
    "ALTER TABLE chat_log ADD CONSTRAINT chat_log_conv_seq UNIQUE (conversation, seq);",
};

static int int_row(st_stmt_t *s, void *out)
{
    *(int64_t *)out = st_col_i64(s, 0);
    return 0;
}

/* The schema version, 0 for a database without spreekkamer's tables. */
static int schema_version(spk_store_t *st, int64_t *v)
{
    *v = 0;
    st_stmt_t *s = NULL;
    int64_t n = 0;
    int rc = st_prep(st->db, ST_SCHEMA_TABLES,
                     "SELECT CAST(count(*) AS BIGINT) FROM pg_catalog.pg_tables WHERE"
                     " schemaname = current_schema() AND tablename = 'spk_schema'",
                     &s);
    if (rc == 0) {
        rc = st_one(s, int_row, &n, "schema tables");
    }
    st_done(s);
    if (rc != 0 || n == 0) {
        return rc;
    }
    rc = st_prep(st->db, ST_SCHEMA_VERSION, "SELECT max(version) FROM spk_schema", &s);
    if (rc == 0) {
        rc = st_one(s, int_row, v, "schema version");
    }
    st_done(s);
    return rc;
}

static int migrate(spk_store_t *st)
{
    int rc = st_db_exec(st->db, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")");
    int64_t v = 0;
    if (rc == 0) {
        rc = schema_version(st, &v);
    }
    if (rc == 0 && v > SCHEMA_VERSION) {
        spk_error(0, "store: schema version %lld is newer than this build knows (%d)", (long long)v,
                  SCHEMA_VERSION);
        return SPK_ECONFIG;
    }
    if (rc == 0 && v == 0) {
        spk_info(0, "store: creating the schema (version %d) in PostgreSQL", SCHEMA_VERSION);
        rc = st_db_exec(st->db, schema_v3);
        v = 3;
    }
    for (; rc == 0 && v < SCHEMA_VERSION; v++) {
        spk_info(0, "store: migrating schema %lld -> %lld", (long long)v, (long long)v + 1);
        rc = st_db_exec(st->db, migrations[v - 3]);
        if (rc == 0) {
            char sql[64];
            snprintf(sql, sizeof(sql), "UPDATE spk_schema SET version = %lld", (long long)v + 1);
            rc = st_db_exec(st->db, sql);
        }
    }
    if (rc == 0) {
        rc = st_db_exec(st->db, guards);
    }
    if (rc == 0) {
        rc = st_db_exec(st->db, "CREATE TABLE IF NOT EXISTS spk_commit_mark (node " T
                                " PRIMARY KEY, ticket " I ");"
                                "CREATE TABLE IF NOT EXISTS spk_node_lease (node " T
                                " PRIMARY KEY, seen TIMESTAMPTZ NOT NULL)");
    }
    return rc;
}

int st_schema_pg(spk_store_t *st)
{
    int rc = st_db_begin(st->db, ST_TXN_WRITE);
    if (rc != 0) {
        return rc;
    }
    rc = migrate(st);
    if (rc == 0) {
        return st_db_commit(st->db);
    }
    st_failed(st->db, rc, "schema");
    st_db_rollback(st->db);
    return rc;
}
