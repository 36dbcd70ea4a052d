/* Persistence behind one interface. Embedded default: SQLite in WAL mode in the data directory
 * (file "spreekkamer.db"). Every call runs on the caller's thread (the control thread in spreekd)
 * and is durable when it returns (synchronous=FULL): an acknowledged action survives a crash.
 *
 * Strings in records are NUL-terminated and truncated fields are refused with SPK_ERANGE.
 * Functions return 0 or a negative SPK_E* code (SPK_ENOTFOUND when a row is missing, SPK_EIO
 * on a database failure). Iteration callbacks return 0 to continue, non-zero to stop (that
 * value is returned by the iterator). */
#ifndef SPK_STORE_H
#define SPK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/role.h"

#define SPK_ID_LEN 48   /* consult, participant, delegation ids */
#define SPK_SUB_LEN 128 /* user ids, names, practice ids, pseudonyms */

typedef struct spk_store spk_store_t;

/* Opens (creating if needed, mode 0700 dir / 0600 files) the store in directory `dir`, applies
 * the schema, and checks the audit head anchor (see audit below). */
int spk_store_open(spk_store_t **out, const char *dir);
void spk_store_close(spk_store_t *st);

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
    int64_t created_at, ended_at; /* unix seconds; ended_at 0 while open */
} spk_consult_rec_t;

int spk_store_consult_insert(spk_store_t *st, const spk_consult_rec_t *c); /* SPK_EEXIST */
int spk_store_consult_get(spk_store_t *st, const char *id, spk_consult_rec_t *out);
/* Marks ended; SPK_ECONSULTENDED if it already was. */
int spk_store_consult_end(spk_store_t *st, const char *id, int64_t at);
typedef int (*spk_store_consult_cb)(void *ud, const spk_consult_rec_t *c);
/* Open consults, optionally only those of one practice (NULL = all), oldest first. */
int spk_store_consult_each_open(spk_store_t *st, const char *practice, spk_store_consult_cb cb,
                                void *ud);

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

/* ---- invites (single use, expiring, bound to one consult) ---- */
typedef struct {
    uint8_t code_hash[32]; /* SHA-256 of the invite code; the code itself is never stored */
    char consult[SPK_ID_LEN];
    char created_by[SPK_SUB_LEN];
    int64_t created_at, expires_at, used_at; /* used_at 0 while unused */
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
/* Atomically marks the invite used (one UPDATE ... WHERE used_at = 0 AND expires_at > now).
 * Returns 0 and fills *out (may be NULL), or SPK_EINVITEINVALID (unknown), SPK_EINVITEUSED,
 * SPK_EINVITEEXPIRED. Exactly one of two concurrent callers can succeed. */
int spk_store_invite_use(spk_store_t *st, const uint8_t code_hash[32], int64_t now,
                         const char *participant_id, spk_invite_rec_t *out);

/* ---- delegations: a practice lets a remote GP act for it for a limited time ---- */
typedef struct {
    char id[SPK_ID_LEN];
    char practice[SPK_SUB_LEN];
    char grantee[SPK_SUB_LEN]; /* remote_gp sub */
    char granted_by[SPK_SUB_LEN];
    int64_t created_at, valid_from, valid_until, revoked_at; /* revoked_at 0 if not revoked */
} spk_delegation_rec_t;

int spk_store_delegation_insert(spk_store_t *st, const spk_delegation_rec_t *d);
int spk_store_delegation_get(spk_store_t *st, const char *id, spk_delegation_rec_t *out);
/* SPK_ENOTFOUND, or SPK_ESTATE if already revoked. */
int spk_store_delegation_revoke(spk_store_t *st, const char *id, int64_t at);
/* An active delegation (valid_from <= now < valid_until, not revoked) for grantee at practice;
 * SPK_ENOTFOUND if none. */
int spk_store_delegation_find_active(spk_store_t *st, const char *practice, const char *grantee,
                                     int64_t now, spk_delegation_rec_t *out);
typedef int (*spk_store_delegation_cb)(void *ud, const spk_delegation_rec_t *d);
int spk_store_delegation_each(spk_store_t *st, const char *practice, spk_store_delegation_cb cb,
                              void *ud);

/* ---- facts recorded in a consult: identity check, "can speak freely", consent, invited
 * specialists. Keyed by (consult, kind, subject); put replaces. ---- */
typedef struct {
    char consult[SPK_ID_LEN];
    char kind[32];             /* "identity_check" | "speak_freely" | "consent" | "specialist" */
    char subject[SPK_SUB_LEN]; /* participant id, consent scope, or specialist sub */
    char value[SPK_SUB_LEN];   /* e.g. "verified:id_document", "yes", "given:verbal" */
    char recorded_by[SPK_SUB_LEN];
    int64_t at;
} spk_fact_rec_t;

int spk_store_fact_put(spk_store_t *st, const spk_fact_rec_t *f);
int spk_store_fact_get(spk_store_t *st, const char *consult, const char *kind, const char *subject,
                       spk_fact_rec_t *out);
typedef int (*spk_store_fact_cb)(void *ud, const spk_fact_rec_t *f);
int spk_store_fact_each(spk_store_t *st, const char *consult, spk_store_fact_cb cb, void *ud);

/* ---- audit log (NEN 7513): append-only, hash-chained ----
 * hash = SHA-256(prev_hash || canonical encoding of every other field including seq).
 * The head (last seq and hash) is also kept in an anchor file "audit.head" next to the
 * database, authenticated with HMAC under a key in "audit.key", so that deleting the newest
 * entries is detected too. */
typedef struct {
    int64_t seq;      /* assigned by append, from 1 */
    int64_t ts_ms;    /* unix milliseconds */
    char event[48];   /* e.g. "consult.create" (docs/audit.md lists them) */
    char outcome[32]; /* "success" or the error's wire code ("forbidden", ...) */
    char user[SPK_SUB_LEN];
    char name[SPK_SUB_LEN];
    char role[16];
    char on_behalf_of[SPK_SUB_LEN]; /* acts-for gp, or the practice for a remote gp */
    char access_point[64];          /* remote address, or "spreekctl" */
    char patient[SPK_SUB_LEN];      /* patient pseudonym, "" if none */
    char object[SPK_SUB_LEN];       /* consult id, invite, delegation id, ... */
    char detail[256];
    uint8_t prev_hash[32];
    uint8_t hash[32];
} spk_audit_rec_t;

/* Fills rec->seq, prev_hash and hash and appends durably. */
int spk_store_audit_append(spk_store_t *st, spk_audit_rec_t *rec);
/* Walks the whole chain. 0 when intact; SPK_EVERIFY with *bad_seq (first bad seq, or the
 * expected one when entries are missing) and a reason when modified, deleted, inserted or
 * reordered entries are found, or when the head anchor does not match. */
int spk_store_audit_verify(spk_store_t *st, int64_t *bad_seq, char *why, size_t why_len);
/* Notes on the above: *bad_seq is 0 when the anchor file itself is missing or fails
 * authentication. A zero rec->ts_ms is filled with the current time by append. While the anchor
 * does not match, append still adds entries but leaves the anchor as it is, so verify keeps
 * failing until an administrator has investigated and re-anchored (docs/audit.md). */
/* Accepts the current chain as the new baseline after an investigation: the chain must hold
 * together from seq 1 (SPK_EVERIFY with *bad_seq otherwise, nothing appended); then appends
 * `rec` (e.g. event "audit.reanchor", detail naming the reason) and rewrites the anchor. */
int spk_store_audit_reanchor(spk_store_t *st, spk_audit_rec_t *rec, int64_t *bad_seq, char *why,
                             size_t why_len);
typedef int (*spk_store_audit_cb)(void *ud, const spk_audit_rec_t *r);
/* Entries in seq order, optionally only those of one patient pseudonym (NULL = all). */
int spk_store_audit_each(spk_store_t *st, const char *patient, spk_store_audit_cb cb, void *ud);

#endif
