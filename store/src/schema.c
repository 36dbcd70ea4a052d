/* The SQLite schema and its migrations (schema_pg.c has PostgreSQL's). PRAGMA user_version holds
 * the schema version; a store of an older version is migrated in one transaction when it is
 * opened, and a store of a newer version than this build knows is refused. */
#include "store_priv.h"

#include <stdio.h>

#include "spk/error.h"
#include "spk/log.h"

#define SCHEMA_VERSION 4

/* The current schema for a new store. The audit table refuses UPDATE and DELETE through
 * triggers: a guard against mistakes, not against an attacker (who can drop the triggers); the
 * hash chain, the anchor and the witness are what detect that. */
static const char *const schema_v2 =
    "CREATE TABLE consults ("
    " id TEXT PRIMARY KEY NOT NULL, practice TEXT NOT NULL, gp TEXT NOT NULL,"
    " patient TEXT NOT NULL, title TEXT NOT NULL, created_by TEXT NOT NULL,"
    " state INTEGER NOT NULL, created_at INTEGER NOT NULL, ended_at INTEGER NOT NULL);"
    "CREATE INDEX consults_open ON consults(state, practice, created_at);"
    "CREATE TABLE participants ("
    " consult TEXT NOT NULL REFERENCES consults(id), id TEXT NOT NULL, sub TEXT NOT NULL,"
    " name TEXT NOT NULL, role TEXT NOT NULL, state INTEGER NOT NULL,"
    " joined_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, iss TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (consult, id));"
    "CREATE TABLE invites ("
    " code_hash BLOB PRIMARY KEY NOT NULL, consult TEXT NOT NULL REFERENCES consults(id),"
    " created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " used_at INTEGER NOT NULL, used_by TEXT NOT NULL, id TEXT NOT NULL DEFAULT '',"
    " revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX invites_consult ON invites(consult);"
    "CREATE UNIQUE INDEX invites_id ON invites(id);"
    "CREATE TABLE delegations ("
    " id TEXT PRIMARY KEY NOT NULL, practice TEXT NOT NULL, grantee TEXT NOT NULL,"
    " granted_by TEXT NOT NULL, created_at INTEGER NOT NULL, valid_from INTEGER NOT NULL,"
    " valid_until INTEGER NOT NULL, revoked_at INTEGER NOT NULL,"
    " grantee_iss TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX delegations_pg ON delegations(practice, grantee);"
    "CREATE TABLE facts ("
    " consult TEXT NOT NULL REFERENCES consults(id), kind TEXT NOT NULL, subject TEXT NOT NULL,"
    " value TEXT NOT NULL, recorded_by TEXT NOT NULL, at INTEGER NOT NULL,"
    " subject_iss TEXT NOT NULL DEFAULT '', PRIMARY KEY (consult, kind, subject_iss, subject));"
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY NOT NULL, ts_ms INTEGER NOT NULL, event TEXT NOT NULL,"
    " outcome TEXT NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,"
    " on_behalf_of TEXT NOT NULL, access_point TEXT NOT NULL, patient TEXT NOT NULL,"
    " object TEXT NOT NULL, detail TEXT NOT NULL, prev_hash BLOB NOT NULL,"
    " hash BLOB NOT NULL, v INTEGER NOT NULL DEFAULT 1, issuer TEXT NOT NULL DEFAULT '',"
    " practice TEXT NOT NULL DEFAULT '', mac BLOB);"
    "CREATE INDEX audit_patient ON audit(patient, seq);"
    "CREATE INDEX audit_practice ON audit(practice, seq);";

/* Run on every open: the guards come back if someone dropped them. */
static const char *const guards =
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;";

/* Version 1 → 2: users are (issuer, subject) pairs; invites get a public id and can be revoked;
 * audit entries record the practice and the user's issuer and carry a MAC (entries of version 1
 * keep their encoding: the column v says which one the hash covers). */
static const char *const migrate_1_2 =
    "ALTER TABLE participants ADD COLUMN iss TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE invites ADD COLUMN id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE invites ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;"
    "UPDATE invites SET id = lower(hex(substr(code_hash, 1, 8)));"
    "CREATE UNIQUE INDEX invites_id ON invites(id);"
    "ALTER TABLE delegations ADD COLUMN grantee_iss TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE facts_v2 ("
    " consult TEXT NOT NULL REFERENCES consults(id), kind TEXT NOT NULL, subject TEXT NOT NULL,"
    " value TEXT NOT NULL, recorded_by TEXT NOT NULL, at INTEGER NOT NULL,"
    " subject_iss TEXT NOT NULL DEFAULT '', PRIMARY KEY (consult, kind, subject_iss, subject));"
    "INSERT INTO facts_v2 (consult, kind, subject, value, recorded_by, at)"
    " SELECT consult, kind, subject, value, recorded_by, at FROM facts;"
    "DROP TABLE facts;"
    "ALTER TABLE facts_v2 RENAME TO facts;"
    "ALTER TABLE audit ADD COLUMN v INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE audit ADD COLUMN issuer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE audit ADD COLUMN practice TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE audit ADD COLUMN mac BLOB;"
    "CREATE INDEX audit_practice ON audit(practice, seq);";

/* Version 2 → 3: the MLS delivery service (docs/chat.md). */
static const char *const migrate_2_3 =
    "CREATE TABLE chat_conversations ("
    " id TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, practice TEXT NOT NULL,"
    " patient TEXT NOT NULL, consult TEXT NOT NULL, title TEXT NOT NULL,"
    " created_by_iss TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " closed_at INTEGER NOT NULL, retention_s INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " observer BLOB);"
    "CREATE INDEX chat_conv_find ON chat_conversations(kind, practice, patient, consult);"
    "CREATE TABLE chat_members ("
    " conversation TEXT NOT NULL REFERENCES chat_conversations(id), iss TEXT NOT NULL,"
    " sub TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, added_by TEXT NOT NULL,"
    " added_at INTEGER NOT NULL, removed_at INTEGER NOT NULL,"
    " PRIMARY KEY (conversation, iss, sub));"
    "CREATE INDEX chat_members_user ON chat_members(iss, sub);"
    "CREATE TABLE chat_devices ("
    " iss TEXT NOT NULL, sub TEXT NOT NULL, device TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL, PRIMARY KEY (iss, sub, device));"
    "CREATE TABLE chat_keypackages ("
    " ref BLOB PRIMARY KEY NOT NULL, iss TEXT NOT NULL, sub TEXT NOT NULL, device TEXT NOT NULL,"
    " kp BLOB, last_resort INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL);"
    "CREATE INDEX chat_kp_device ON chat_keypackages(iss, sub, device, last_resort);"
    "CREATE TABLE chat_log ("
    " conversation TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " type INTEGER NOT NULL, sender_iss TEXT NOT NULL, sender TEXT NOT NULL,"
    " sender_device TEXT NOT NULL, to_iss TEXT NOT NULL, to_sub TEXT NOT NULL,"
    " to_device TEXT NOT NULL, at_ms INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY (conversation, seq)) WITHOUT ROWID;"
    "CREATE INDEX chat_log_time ON chat_log(at_ms);"
    "CREATE TABLE chat_cursors ("
    " conversation TEXT NOT NULL, iss TEXT NOT NULL, sub TEXT NOT NULL, device TEXT NOT NULL,"
    " from_seq INTEGER NOT NULL, acked INTEGER NOT NULL, active INTEGER NOT NULL,"
    " PRIMARY KEY (conversation, iss, sub, device));"
    "CREATE INDEX chat_cursors_device ON chat_cursors(iss, sub, device, active);"
    "CREATE TABLE chat_files ("
    " id TEXT PRIMARY KEY NOT NULL, conversation TEXT NOT NULL, size INTEGER NOT NULL,"
    " uploader_iss TEXT NOT NULL, uploader TEXT NOT NULL, device TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX chat_files_conv ON chat_files(conversation, created_at);";

/* Version 3 → 4: the chat log in one global append order (docs/chat.md "Throughput"): rows keyed
 * by gseq, so a batch of messages to many conversations appends at the end of one B-tree instead
 * of touching one page per conversation; (conversation, seq) stays unique (its small index serves
 * each device's drain, and a second writer of a seq gets SPK_EEXIST as before). */
static const char *const migrate_3_4 =
    "CREATE TABLE chat_log_v4 ("
    " gseq INTEGER PRIMARY KEY, conversation TEXT NOT NULL, seq INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, type INTEGER NOT NULL, sender_iss TEXT NOT NULL,"
    " sender TEXT NOT NULL, sender_device TEXT NOT NULL, to_iss TEXT NOT NULL,"
    " to_sub TEXT NOT NULL, to_device TEXT NOT NULL, at_ms INTEGER NOT NULL, data BLOB NOT NULL,"
    " CONSTRAINT chat_log_conv_seq UNIQUE (conversation, seq));"
    "INSERT INTO chat_log_v4 (conversation, seq, epoch, type, sender_iss, sender, sender_device,"
    " to_iss, to_sub, to_device, at_ms, data) SELECT conversation, seq, epoch, type, sender_iss,"
    " sender, sender_device, to_iss, to_sub, to_device, at_ms, data FROM chat_log"
    " ORDER BY at_ms, conversation, seq;"
    "DROP TABLE chat_log;"
    "ALTER TABLE chat_log_v4 RENAME TO chat_log;"
    "CREATE INDEX chat_log_time ON chat_log(at_ms);";

static int int_row(st_stmt_t *s, void *out)
{
    *(int64_t *)out = st_col_i64(s, 0);
    return 0;
}

static int user_version(spk_store_t *st, int *out)
{
    st_stmt_t *s = NULL;
    int64_t v = 0;
    int rc = st_prep(st->db, ST_SCHEMA_VERSION, "PRAGMA user_version", &s);
    if (rc == 0) {
        rc = st_one(s, int_row, &v, "user_version");
    }
    st_done(s);
    *out = (int)v;
    return rc;
}

static bool has_tables(spk_store_t *st)
{
    st_stmt_t *s = NULL;
    int64_t one = 0;
    int rc = st_prep(st->db, ST_SCHEMA_TABLES,
                     "SELECT 1 FROM sqlite_master WHERE name = 'consults'", &s);
    if (rc == 0) {
        rc = st_one(s, int_row, &one, "schema tables");
    }
    st_done(s);
    return rc == 0 && one == 1;
}

int st_schema_sqlite(spk_store_t *st)
{
    int rc = st_db_begin(st->db, ST_TXN_WRITE);
    if (rc != 0) {
        return rc;
    }
    int v = 0;
    rc = user_version(st, &v);
    if (rc == 0 && v > SCHEMA_VERSION) {
        spk_error(0, "store: schema version %d is newer than this build knows (%d)", v,
                  SCHEMA_VERSION);
        rc = SPK_ECONFIG;
    }
    if (rc == 0 && v == 0 && has_tables(st)) {
        v = 1; /* stores made before user_version was kept */
    }
    const int orig = v;
    /* A new store starts at version 2; every store then takes the steps it lacks. */
    if (rc == 0 && v == 0) {
        rc = st_db_exec(st->db, schema_v2);
        v = 2;
    }
    if (rc == 0 && v == 1) {
        spk_info(0, "store: migrating schema 1 -> 2");
        rc = st_db_exec(st->db, migrate_1_2);
        v = 2;
    }
    if (rc == 0 && v == 2) {
        if (orig != 0) {
            spk_info(0, "store: migrating schema 2 -> 3");
        }
        rc = st_db_exec(st->db, migrate_2_3);
        v = 3;
    }
    if (rc == 0 && v == 3) {
        if (orig != 0) {
            spk_info(0, "store: migrating schema 3 -> 4");
        }
        rc = st_db_exec(st->db, migrate_3_4);
        v = 4;
    }
    if (rc == 0) {
        rc = st_db_exec(st->db, guards);
    }
    if (rc == 0) {
        rc = st_schema_integration(st);
    }
    if (rc == 0) {
        rc = st_schema_chat(st);
    }
    if (rc == 0 && orig != SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
        rc = st_db_exec(st->db, sql);
    }
    if (rc == 0) {
        return st_db_commit(st->db);
    }
    st_failed(st->db, rc, "schema");
    st_db_rollback(st->db);
    return rc;
}
