/* Persistence behind one interface. Embedded default: SQLite in WAL mode in the data directory
 * (file "spreekkamer.db"). Beyond one machine: PostgreSQL (spk_store_open_db with a libpq
 * connection string), shared by every node; the audit key, head anchor and lock stay in the
 * data directory either way (docs/architecture.md "State"). Every call runs on the caller's
 * thread (the control thread in spreekd); on PostgreSQL each statement the caller reads is one
 * round trip to the server, which the control thread waits for; BEGIN and the audit lock go
 * out with the statement after them, and with the sync thread COMMIT is not waited for (see
 * spk_store_poll).
 *
 * Transactions and durability. Each write function is a transaction of its own unless the
 * caller has opened one with spk_store_begin: then every write and audit append up to
 * spk_store_commit commits together or not at all (spk_store_rollback). Without a sync thread
 * a commit is durable when it returns (SQLite synchronous=FULL, PostgreSQL synchronous_commit
 * on). With spk_store_sync_start (spreekd) commits are written but not flushed when they
 * return (the SQLite WAL with write(); PostgreSQL's WAL buffers with synchronous_commit off):
 * the store's sync thread makes every commit since the last flush durable at once (one fsync
 * of the WAL file; on PostgreSQL one small commit with synchronous_commit on, which flushes
 * the WAL up to it), then moves the audit head anchor, and reports it; the caller holds back
 * whatever acknowledges a commit until spk_store_durable() reaches that commit's ticket. A
 * process crash (kill -9) of the caller loses nothing committed; a power failure (or, on
 * PostgreSQL, a crash of the database server) loses at most what was not yet acknowledged.
 *
 * Several processes may use one store at once (spreekd and spreekctl on SQLite; any number of
 * spreekd nodes on PostgreSQL): invite redemption, the audit chain and the one Commit per MLS
 * epoch hold across them (see those functions).
 *
 * Strings in records are NUL-terminated and truncated fields are refused with SPK_ERANGE.
 * Functions return 0 or a negative SPK_E* code (SPK_ENOTFOUND when a row is missing, SPK_EIO
 * on a database failure). Iteration callbacks return 0 to continue, non-zero to stop (that
 * value is returned by the iterator). */
#ifndef SPK_STORE_H
#define SPK_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/role.h"

#define SPK_ID_LEN 48   /* consult, participant, delegation ids */
#define SPK_SUB_LEN 128 /* user ids, names, practice ids, pseudonyms */

typedef struct spk_store spk_store_t;

/* Opens (creating if needed, mode 0700 dir / 0600 files) the store in directory `dir`, applies
 * the schema (migrating an older one), and checks the audit head anchor (see audit below). */
int spk_store_open(spk_store_t **out, const char *dir);
/* The same with the database chosen: `db` NULL or "" is SQLite in `dir` (spk_store_open), else a
 * libpq connection string ("postgresql://user@host/db" or "host=... dbname=..."; a password
 * belongs in ~/.pgpass or PGPASSFILE rather than here) of a PostgreSQL database that holds the
 * spreekkamer schema or is empty. `dir` keeps the audit key, anchor and lock. */
int spk_store_open_db(spk_store_t **out, const char *dir, const char *db);
/* For a server that must outlast a database outage at start, after spk_store_open_db returned
 * SPK_EUNAVAILABLE (PostgreSQL not reachable: no address for the host, connection refused or
 * timed out, the server starting up, shutting down or out of connections; logged): tries
 * again after 0.1 s, doubling to every 2 s (an attempt gives up after 10 s), logging about once
 * a minute. Returns 0 once open, at once any other error (SPK_ECONFIG: the server refused,
 * authentication, no such database, TLS; a schema newer than this build, ...), or
 * SPK_ESHUTDOWN soon after *stop becomes true. Blocks: call it off the event loop. */
int spk_store_open_wait(spk_store_t **out, const char *dir, const char *db,
                        const atomic_bool *stop);
/* "sqlite" or "postgresql". */
const char *spk_store_backend(const spk_store_t *st);
/* Stops the sync thread (flushing and anchoring what is committed) and closes. NULL-safe. */
void spk_store_close(spk_store_t *st);

/* ---- transactions and group commit ---- */

/* Opens a write transaction (SPK_ESTATE if one is open). */
int spk_store_begin(spk_store_t *st);
/* Commits it; *ticket (may be NULL) receives the commit's durability ticket. On failure the
 * transaction is rolled back and nothing of it is stored. */
int spk_store_commit(spk_store_t *st, uint64_t *ticket);
/* Discards the open transaction (no-op without one). */
void spk_store_rollback(spk_store_t *st);
bool spk_store_in_txn(const spk_store_t *st);
/* Ticket of the newest commit, and the newest ticket known to be on disk. Without a sync
 * thread both are equal. Safe to call from any thread. */
uint64_t spk_store_last_ticket(const spk_store_t *st);
uint64_t spk_store_durable(const spk_store_t *st);

typedef struct {
    /* Called on the sync thread after each flush (read spk_store_durable), and with failed set
     * when the disk refused a flush: durability can no longer be promised and the caller must
     * stop acknowledging (spreekd exits). */
    void (*durable_cb)(void *ud, bool failed);
    void *ud;
    int flush_delay_us;         /* wait this long after a commit for others to join (0) */
    int full_verify_interval_s; /* re-walk the whole audit chain this often (3600; 0 = never) */
    const char *witness;        /* "" = none, "syslog", or a file/FIFO path: the audit head is
                                 * appended there (one line per change, see docs/audit.md) */
    int witness_interval_ms;    /* at most one witness line per interval (1000) */
    /* PostgreSQL: the node's lease (spk_node_lease), which the sync thread renews every 1/60 of
     * it; the rows of a node that did not renew its lease for this long are removed by the
     * other nodes (0: one hour; the same on every node). */
    int mark_lease_ms;
} spk_store_sync_opts_t;

/* Starts the sync thread (commits are then flushed in groups, see above). On PostgreSQL a
 * database that cannot be reached at that moment does not fail it: the thread's connection and
 * the node's marker row are set up once it can be (spk_store_available is false until then);
 * only a refusal (SPK_ECONFIG) or another fault does. */
int spk_store_sync_start(spk_store_t *st, const spk_store_sync_opts_t *opts);
/* Flushes and anchors what is committed, stops the thread and joins it; commits are durable
 * when they return again. No-op without a sync thread. spk_store_close does it too. */
void spk_store_sync_stop(spk_store_t *st);

/* PostgreSQL with the sync thread: a commit returns once COMMIT is sent; the server's answer
 * is read later, with the next statement's or when the connection's socket turns readable.
 * The caller watches spk_store_poll_fd (-1 on SQLite) for reading and calls spk_store_poll
 * (never blocks; outside a transaction) when it is; *gen (may be NULL) changes when the
 * connection was re-established, and the socket with it. spk_store_pending: commits whose
 * answer has not been read. A commit counts for spk_store_durable only once answered and
 * flushed. Caller's thread.
 *
 * A lost connection to PostgreSQL (either the caller's or the sync thread's) is re-established
 * in the background with a back-off (docs/operations.md "PostgreSQL"); meanwhile every call that
 * needs the database fails with SPK_EUNAVAILABLE, and the caller keeps calling spk_store_poll
 * now and then (every 100 to 250 ms), which moves the caller's reconnecting on without
 * blocking. A commit whose answer never came is in doubt until then: once reconnected the
 * store finds whether every commit it handed a ticket for is in the database; if one is not (or
 * one reported failed is), durability stops for good (durable_cb with failed set), as after a
 * failed flush. spk_store_available: false while a connection is down or after that. */
int spk_store_poll_fd(const spk_store_t *st, unsigned *gen);
void spk_store_poll(spk_store_t *st);
size_t spk_store_pending(const spk_store_t *st);
bool spk_store_available(const spk_store_t *st);

/* Appends, in the Prometheus text format, how often and how long the caller's thread waited for
 * the database server (PostgreSQL only; nothing on SQLite): spk_store_round_trips_total and
 * spk_store_wait_seconds_total by op (begin, read, write, audit_lock, commit, other), then
 * spk_store_reconnects_total and spk_store_up (spk_store_available). Returns
 * the bytes written (output cut at cap - 1, NUL-terminated). Caller's thread. */
size_t spk_store_metrics(const spk_store_t *st, char *buf, size_t cap);

/* ---- consults ---- */
typedef enum { SPK_CONSULT_OPEN = 0, SPK_CONSULT_ENDED = 1 } spk_consult_state_t;

typedef struct {
    char id[SPK_ID_LEN];
    char practice[SPK_SUB_LEN];
    char gp[SPK_SUB_LEN];      /* responsible GP (sub) */
    char patient[SPK_SUB_LEN]; /* patient pseudonym (from the HIS), never a name */
    char title[SPK_SUB_LEN];
    char created_by[SPK_SUB_LEN];
    spk_consult_state_t state;
    int64_t created_at, ended_at;    /* unix seconds; ended_at 0 while open */
    int64_t planned_at, planned_end; /* the appointment's planned start and end; 0 = unplanned */
    int64_t started_at;              /* first admission of a patient; 0 until then */
} spk_consult_rec_t;

int spk_store_consult_insert(spk_store_t *st, const spk_consult_rec_t *c); /* SPK_EEXIST */
int spk_store_consult_get(spk_store_t *st, const char *id, spk_consult_rec_t *out);
/* Marks ended; SPK_ECONSULTENDED if it already was. */
int spk_store_consult_end(spk_store_t *st, const char *id, int64_t at);
/* Number of open consults. */
int spk_store_consult_count_open(spk_store_t *st, int64_t *out);
typedef int (*spk_store_consult_cb)(void *ud, const spk_consult_rec_t *c);
/* Open consults, optionally only those of one practice (NULL = all), oldest first. */
int spk_store_consult_each_open(spk_store_t *st, const char *practice, spk_store_consult_cb cb,
                                void *ud);

/* Records the consult's start (first admission of a patient); no-op once it has one. */
int spk_store_consult_set_started(spk_store_t *st, const char *id, int64_t at);
/* Consults of a practice (open and ended) whose planned start, or creation time when
 * unplanned, lies in [from, until), in that order. */
int spk_store_consult_each_between(spk_store_t *st, const char *practice, int64_t from,
                                   int64_t until, spk_store_consult_cb cb, void *ud);

/* ---- participants of a consult ---- */
typedef enum {
    SPK_PART_LOBBY = 0,    /* waiting, receives nothing of the consult */
    SPK_PART_ADMITTED = 1, /* in the consult */
    SPK_PART_DENIED = 2,   /* refused by staff; cannot come back with the same invite */
    SPK_PART_LEFT = 3,     /* left; may rejoin (patients return to the lobby) */
} spk_part_state_t;

typedef struct {
    char consult[SPK_ID_LEN];
    char id[SPK_ID_LEN];   /* participant id */
    char sub[SPK_SUB_LEN]; /* user id (for patients: the participant id) */
    char iss[SPK_SUB_LEN]; /* issuer of sub: users are (iss, sub) pairs */
    char name[SPK_SUB_LEN];
    spk_role_t role;
    spk_part_state_t state;
    int64_t joined_at, updated_at;
} spk_participant_rec_t;

/* Insert or replace by (consult, id). */
int spk_store_participant_put(spk_store_t *st, const spk_participant_rec_t *p);
int spk_store_participant_get(spk_store_t *st, const char *consult, const char *id,
                              spk_participant_rec_t *out);
typedef int (*spk_store_participant_cb)(void *ud, const spk_participant_rec_t *p);
int spk_store_participant_each(spk_store_t *st, const char *consult, spk_store_participant_cb cb,
                               void *ud);

/* ---- invites (single use, expiring, revocable, bound to one consult) ---- */
#define SPK_INVITE_ID_LEN 17 /* 16 hex characters + NUL */
typedef struct {
    uint8_t code_hash[32];      /* SHA-256 of the invite code; the code itself is never stored */
    char id[SPK_INVITE_ID_LEN]; /* public handle: hex of the first 8 bytes of code_hash */
    char consult[SPK_ID_LEN];
    char created_by[SPK_SUB_LEN];
    int64_t created_at, expires_at, used_at; /* used_at 0 while unused */
    int64_t revoked_at;                      /* 0 unless revoked */
    char used_by[SPK_ID_LEN];                /* participant id */
} spk_invite_rec_t;

int spk_store_invite_insert(spk_store_t *st, const spk_invite_rec_t *inv);
/* Creates an invite for `consult` valid for ttl_s seconds: a fresh 128-bit code, base64url
 * (22 chars) into code_out (cap >= 32), only its hash stored. Fills *out if not NULL. */
int spk_store_invite_create(spk_store_t *st, const char *consult, const char *created_by,
                            int64_t now, int64_t ttl_s, char *code_out, size_t cap,
                            spk_invite_rec_t *out);
/* SHA-256 of an invite code as used for lookup. */
void spk_store_invite_hash(const char *code, size_t len, uint8_t out[32]);
/* Atomically marks the invite used (one UPDATE ... WHERE used_at = 0 AND revoked_at = 0 AND
 * expires_at > now). Returns 0 and fills *out (may be NULL), or SPK_EINVITEINVALID (unknown),
 * SPK_EINVITEUSED, SPK_EINVITEREVOKED, SPK_EINVITEEXPIRED. Exactly one of two concurrent callers
 * can succeed. */
int spk_store_invite_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                         const char *participant_id, spk_invite_rec_t *out);
/* Revokes an unused invite of `consult` by id. SPK_ENOTFOUND (no such invite of that consult),
 * SPK_EINVITEUSED, SPK_EINVITEREVOKED. Fills *out (may be NULL) with the revoked invite. */
int spk_store_invite_revoke(spk_store_t *st, const char *consult, const char *id, int64_t at,
                            spk_invite_rec_t *out);
typedef int (*spk_store_invite_cb)(void *ud, const spk_invite_rec_t *inv);
/* Invites of a consult, oldest first. */
int spk_store_invite_each(spk_store_t *st, const char *consult, spk_store_invite_cb cb, void *ud);
/* Unused, unrevoked invites whose expiry lies in (after, until], in expiry order. */
int spk_store_invite_each_expiring(spk_store_t *st, int64_t after, int64_t until,
                                   spk_store_invite_cb cb, void *ud);

/* ---- delegations: a practice lets a remote GP act for it for a limited time ---- */
typedef struct {
    char id[SPK_ID_LEN];
    char practice[SPK_SUB_LEN];
    char grantee[SPK_SUB_LEN];     /* remote_gp sub */
    char grantee_iss[SPK_SUB_LEN]; /* ... and its issuer */
    char granted_by[SPK_SUB_LEN];
    int64_t created_at, valid_from, valid_until, revoked_at; /* revoked_at 0 if not revoked */
} spk_delegation_rec_t;

int spk_store_delegation_insert(spk_store_t *st, const spk_delegation_rec_t *d);
int spk_store_delegation_get(spk_store_t *st, const char *id, spk_delegation_rec_t *out);
/* SPK_ENOTFOUND, or SPK_ESTATE if already revoked. */
int spk_store_delegation_revoke(spk_store_t *st, const char *id, int64_t at);
/* An active delegation (valid_from <= now < valid_until, not revoked) for (grantee_iss, grantee)
 * at practice; the one that lasts longest when there are several. SPK_ENOTFOUND if none. */
int spk_store_delegation_find_active(spk_store_t *st, const char *practice, const char *grantee_iss,
                                     const char *grantee, int64_t now, spk_delegation_rec_t *out);
typedef int (*spk_store_delegation_cb)(void *ud, const spk_delegation_rec_t *d);
int spk_store_delegation_each(spk_store_t *st, const char *practice, spk_store_delegation_cb cb,
                              void *ud);

/* ---- facts recorded in a consult: identity check, "can speak freely", consent, invited
 * specialists. Keyed by (consult, kind, subject_iss, subject); put replaces. ---- */
typedef struct {
    char consult[SPK_ID_LEN];
    char kind[32];             /* "identity_check" | "speak_freely" | "consent" | "specialist" */
    char subject[SPK_SUB_LEN]; /* participant id, consent scope, or specialist sub */
    char subject_iss[SPK_SUB_LEN]; /* the specialist's issuer; "" for other kinds */
    char value[SPK_SUB_LEN];       /* e.g. "verified:id_document", "yes", "given:verbal" */
    char recorded_by[SPK_SUB_LEN];
    int64_t at;
} spk_fact_rec_t;

int spk_store_fact_put(spk_store_t *st, const spk_fact_rec_t *f);
/* subject_iss may be NULL for "". */
int spk_store_fact_get(spk_store_t *st, const char *consult, const char *kind,
                       const char *subject_iss, const char *subject, spk_fact_rec_t *out);
typedef int (*spk_store_fact_cb)(void *ud, const spk_fact_rec_t *f);
int spk_store_fact_each(spk_store_t *st, const char *consult, spk_store_fact_cb cb, void *ud);

/* ---- audit log (NEN 7513): append-only, hash-chained ----
 * hash = SHA-256(prev_hash || canonical encoding of every other field including seq).
 * The head (a recent seq and its hash) is also kept in an anchor file "audit.head" next to the
 * database, authenticated with HMAC under a key in "audit.key", and can be shipped to an
 * external witness (spk_store_sync_opts_t.witness), so that deleting or rewriting entries is
 * detected. docs/audit.md has the threat model. */
typedef struct {
    int64_t seq;              /* assigned by append, from 1 */
    int64_t ts_ms;            /* unix milliseconds */
    char event[48];           /* e.g. "consult.create" (docs/audit.md lists them) */
    char outcome[32];         /* "success" or the error's wire code ("forbidden", ...) */
    char user[SPK_SUB_LEN];   /* user id (sub); for patients their participant id */
    char issuer[SPK_SUB_LEN]; /* issuer of the user id */
    char name[SPK_SUB_LEN];   /* professional's display name; never a patient's name */
    char role[16];
    char on_behalf_of[SPK_SUB_LEN]; /* acts-for gp, or the practice for a remote gp */
    char access_point[64];          /* remote address, or "spreekctl" */
    char patient[SPK_SUB_LEN];      /* patient pseudonym, "" if none */
    char practice[SPK_SUB_LEN];     /* practice whose data was accessed, "" if none */
    char object[SPK_SUB_LEN];       /* consult id, invite, delegation id, ... */
    char detail[256];
    uint8_t prev_hash[32];
    uint8_t hash[32];
} spk_audit_rec_t;

/* Fills rec->seq, prev_hash and hash and appends: inside the open transaction when there is
 * one (it then commits or rolls back with the action it records), else as a transaction of its
 * own. Text fields are stored as given: callers truncate on character boundaries
 * (spk_utf8_copy). A zero rec->ts_ms is filled with the current time. */
int spk_store_audit_append(spk_store_t *st, spk_audit_rec_t *rec);
/* Walks the whole chain. 0 when intact; SPK_EVERIFY with *bad_seq (first bad seq, or the
 * expected one when entries are missing; 0 when the anchor file itself is missing or fails
 * authentication) and a reason when modified, deleted, inserted or reordered entries are found,
 * or when the chain does not contain the anchored head. While the anchor does not match,
 * appends still add entries but the anchor is left as it is, so verify keeps failing until an
 * administrator has investigated and re-anchored (docs/audit.md). */
int spk_store_audit_verify(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len);
/* Like verify, but walks only the entries appended since the last successful call on this
 * store (the first call walks everything), and fails too once the sync thread's periodic full
 * walk has found a fault. For frequent checks on the control thread. */
int spk_store_audit_verify_recent(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len);
/* Checks that every "<seq> <hash>" line of a witness file is in the chain: a chain rebuilt by
 * someone who holds audit.key still fails here. SPK_EVERIFY with *bad_seq and why otherwise;
 * SPK_ENOTFOUND when the file cannot be read. *lines receives the number of lines checked. */
int spk_store_audit_check_witness(spk_store_t *st, const char *path, int64_t *lines,
                                  int64_t *bad_seq, char *why, size_t why_len);
/* Accepts the current chain as the new baseline after an investigation: the chain must hold
 * together from seq 1 (SPK_EVERIFY with *bad_seq otherwise, nothing appended); then appends
 * `rec` (e.g. event "audit.reanchor", detail naming the reason) and rewrites the anchor. */
int spk_store_audit_reanchor(spk_store_t *st, spk_audit_rec_t *rec, int64_t *bad_seq, char *why,
                             size_t why_len);
typedef int (*spk_store_audit_cb)(void *ud, const spk_audit_rec_t *r);
typedef struct {
    const char *patient;  /* only this patient pseudonym's entries (NULL = any) */
    const char *practice; /* only entries about this practice (NULL = any) */
    int64_t after;        /* only seq > after */
} spk_store_audit_filter_t;
/* Entries in seq order that pass the filter (NULL = all). */
int spk_store_audit_each(spk_store_t *st, const spk_store_audit_filter_t *f, spk_store_audit_cb cb,
                         void *ud);

/* ---- practice system integrations (store/src/integration.c, docs/integration.md) ----
 * An integration is a HIS (or a regional platform) that acts for one or more practices with
 * role "service". It signs its own tokens (iss = sub = its id) with a key registered here;
 * spreekd verifies them against its keys that are not retired. */
#define SPK_INTEG_PRACTICES_LEN 512
#define SPK_URL_LEN 512
typedef struct {
    char id[SPK_ID_LEN];
    char name[SPK_SUB_LEN];
    char practices[SPK_INTEG_PRACTICES_LEN]; /* comma-separated practice ids */
    char webhook_url[SPK_URL_LEN];           /* "" = no webhooks */
    uint8_t webhook_secret[32];
    int64_t created_at, revoked_at; /* revoked_at 0 while active */
} spk_integration_rec_t;

int spk_store_integration_insert(spk_store_t *st, const spk_integration_rec_t *r); /* EEXIST */
int spk_store_integration_get(spk_store_t *st, const char *id, spk_integration_rec_t *out);
/* SPK_ENOTFOUND, or SPK_ESTATE when revoked already. */
int spk_store_integration_revoke(spk_store_t *st, const char *id, int64_t at);
int spk_store_integration_set_webhook(spk_store_t *st, const char *id, const char *url,
                                      const uint8_t secret[32]);
typedef int (*spk_store_integration_cb)(void *ud, const spk_integration_rec_t *r);
/* Every integration (revoked ones too), oldest first. */
int spk_store_integration_each(spk_store_t *st, spk_store_integration_cb cb, void *ud);
/* Does the integration act for `practice`? */
bool spk_integration_acts_for(const spk_integration_rec_t *r, const char *practice);

typedef struct {
    char integration[SPK_ID_LEN];
    char kid[SPK_ID_LEN];
    uint8_t pub[32];                /* Ed25519 public key */
    int64_t created_at, retired_at; /* retired_at 0 while it verifies tokens */
} spk_integration_key_rec_t;

int spk_store_integration_key_add(spk_store_t *st, const spk_integration_key_rec_t *k);
/* Retires every key of the integration except `keep` (NULL: all) at time `at`. */
int spk_store_integration_key_retire(spk_store_t *st, const char *integration, const char *keep,
                                     int64_t at);
typedef int (*spk_store_integration_key_cb)(void *ud, const spk_integration_key_rec_t *k);
int spk_store_integration_key_each(spk_store_t *st, const char *integration,
                                   spk_store_integration_key_cb cb, void *ud);

/* Idempotency records: the answer to a creating request, kept so that a retry with the same
 * key gets the same answer instead of a second resource. The caller seals the answer under a
 * key derived from the Idempotency-Key itself, of which only a hash is stored. */
typedef struct {
    char owner[SPK_ID_LEN]; /* the integration */
    uint8_t key_hash[32];
    uint8_t req_hash[32];
    unsigned char *reply; /* sealed answer: malloc'd by get (caller frees); borrowed by put */
    size_t reply_len;
    int64_t created_at;
} spk_idem_rec_t;
int spk_store_idem_put(spk_store_t *st, const spk_idem_rec_t *r);
/* Fills *out; SPK_ENOTFOUND. */
int spk_store_idem_get(spk_store_t *st, const char *owner, const uint8_t key_hash[32],
                       spk_idem_rec_t *out);
int spk_store_idem_purge(spk_store_t *st, int64_t before);

/* Webhook queue: events waiting for delivery, per integration in order (seq). */
typedef struct {
    int64_t id;  /* queue row */
    int64_t seq; /* per integration, from 1, in the order of the events */
    char integration[SPK_ID_LEN];
    char event[2048];   /* the event's JSON object (without seq) */
    int64_t created_at; /* unix seconds */
    int64_t next_at_ms; /* not before (unix milliseconds; 0: at once) */
    int attempts;
    char last_error[128];
} spk_webhook_rec_t;
/* Appends an event for the integration; when more than max_queue wait, the oldest are dropped
 * (*dropped counts them; may be NULL). */
int spk_store_webhook_enqueue(spk_store_t *st, const char *integration, const char *event,
                              int64_t now, int max_queue, int64_t *dropped);
/* The integration's oldest waiting event; SPK_ENOTFOUND when none. */
int spk_store_webhook_head(spk_store_t *st, const char *integration, spk_webhook_rec_t *out);
int spk_store_webhook_done(spk_store_t *st, int64_t id);
/* The next attempt not before next_at_ms (unix milliseconds). */
int spk_store_webhook_retry(spk_store_t *st, int64_t id, int attempts, int64_t next_at_ms,
                            const char *error);
int spk_store_webhook_count(spk_store_t *st, const char *integration, int64_t *out);
/* Drops events created before `before`; *n counts them (may be NULL). */
int spk_store_webhook_expire(spk_store_t *st, int64_t before, int64_t *n);

/* Console links: single use, short-lived; they open the GP console on a consult for the GP an
 * integration acts for. Only the code's hash is stored. */
typedef struct {
    uint8_t code_hash[32];
    char consult[SPK_ID_LEN];
    char practice[SPK_SUB_LEN];
    char gp[SPK_SUB_LEN];
    char name[SPK_SUB_LEN];
    char integration[SPK_ID_LEN];
    int64_t created_at, expires_at, used_at;
} spk_console_link_rec_t;
/* Stores rec (code_hash filled here) with a fresh code: 22 base64url characters into code_out
 * (cap >= 32). */
int spk_store_console_link_create(spk_store_t *st, spk_console_link_rec_t *rec, char *code_out,
                                  size_t cap);
/* Atomically uses the link: SPK_EINVITEINVALID, SPK_EINVITEUSED, SPK_EINVITEEXPIRED. */
int spk_store_console_link_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                               spk_console_link_rec_t *out);

/* Small named marks (e.g. how far invite expiry has been reported); 0 when unset. */
int spk_store_mark_get(spk_store_t *st, const char *name, int64_t *out);
int spk_store_mark_set(spk_store_t *st, const char *name, int64_t v);
/* Deletes the marks whose name starts with prefix and whose value is below `below`
 * (e.g. the records of session tokens that have expired); *n (optional) gets how many. */
int spk_store_mark_purge(spk_store_t *st, const char *prefix, int64_t below, int64_t *n);
/* Deletes the mark of exactly this name (nothing to delete is no error). */
int spk_store_mark_delete(spk_store_t *st, const char *name);
/* Sets the mark to v when it is unset or equal to `replace`, in one statement (processes racing
 * on one store agree: the first one's v wins, the others get it). *out is the value after. */
int spk_store_mark_claim(spk_store_t *st, const char *name, int64_t v, int64_t replace,
                         int64_t *out);

#endif
