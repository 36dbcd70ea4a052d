/* Internal structures of the signaling core (spk/signaling.h). */
#ifndef SPK_SIG_CORE_INT_H
#define SPK_SIG_CORE_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "spk/error.h"
#include "spk/map.h"
#include "spk/relay.h"
#include "spk/relays.h"
#include "spk/signaling.h"

/* Consults one connection can be joined to at once. */
#define SPK_SIG_MAX_JOINED 16
/* Actions in the role x action matrix (policy.c asserts the table has exactly this many). */
#define SIG_N_ACTIONS 48
/* Relay counters kept per endpoint for /metrics. */
#define SIG_EP_STATS 16

typedef struct sig_consult sig_consult_t;
typedef struct sig_part sig_part_t;
typedef struct sig_media sig_media_t;

/* One joined (connection, consult) pair. */
typedef struct {
    sig_consult_t *consult;
    sig_part_t *part;
    sig_media_t *media; /* NULL until the connection sets up media in this consult */
    /* Access that ends by itself: a remote GP's delegation (its id and end). 0: none. */
    int64_t access_until;
    char delegation[SPK_ID_LEN];
} sig_join_t;

/* A message held back until the commit it reveals is on disk (outbox.c). */
typedef struct sig_out sig_out_t;

typedef struct {
    uint64_t id;
    char remote[64];
    uint64_t opened_ms;
    bool authed;
    bool closing;
    bool api; /* carries /api/v1 requests: only a service token signs in (spk_sig_conn_api) */
    /* The claims of the signed-in user: sig_no_claims (all empty) until the first sign-in,
     * then the connection's own copy until it closes; wiped when signed out. */
    spk_token_claims_t *who;
    char tok_key[2 * SPK_TOKEN_STR + 2]; /* "<iss> <jti>" while counted against the token */
    /* token bucket */
    double tokens;
    uint64_t refill_ms;
    sig_join_t *joined; /* grown as it joins, up to SPK_SIG_MAX_JOINED; NULL before */
    int n_joined, cap_joined;
    char delegation_used[SPK_ID_LEN]; /* last delegation audited as used on this connection */
    sig_out_t *out_head, *out_tail;   /* held messages, in order */
    struct ds_conn *chat; /* the device this connection is, once declared (chat_model.c) */
    int n_tickets;        /* file transfers handed out and not yet used (h_files.c) */
    size_t out_bytes;     /* ... and their size */
} sig_conn_t;

/* The claims an unauthenticated connection reads: every string empty. Never written. */
extern spk_token_claims_t sig_no_claims;

/* Other nodes whose connections a participant's presence is counted from (bus.c). */
#define SIG_BUS_NODES 8
#define SIG_NODE_LEN 17

struct sig_part {
    spk_participant_rec_t rec;
    int online; /* number of connections joined as this participant */
    /* connections joined as this participant on other nodes, as they last reported */
    char rnode[SIG_BUS_NODES][SIG_NODE_LEN];
    int ronline[SIG_BUS_NODES];
};

/* Failed sign-in attempts from one source address (sig_audit.c). */
typedef struct {
    char key[64];         /* the source address */
    int64_t window_start; /* unix seconds */
    int failures;         /* in this window */
    int unlogged;         /* failures not written one by one (summarised at the window's end) */
    char codes[96];       /* wire codes of the unlogged failures, for the summary */
} sig_fail_t;

struct sig_consult {
    spk_consult_rec_t rec;
    uint64_t relay_id; /* the consult's numeric id towards the relay */
    bool e2ee;         /* media must be end-to-end encrypted (config media_e2ee) */
    sig_part_t **parts;
    size_t n_parts, cap_parts;
    uint64_t *conns; /* connections joined to this consult */
    size_t n_conns, cap_conns;
    /* Publishers on other nodes (bus "media", media_bus.c) and what this node last said. */
    struct sig_rpub *rpubs;
    size_t n_rpubs;
    uint64_t media_said;
};

enum {
    SIG_M_CONSULTS_CREATED,
    SIG_M_INVITES_REDEEMED,
    SIG_M_ADMITTED,
    SIG_M_AUTH_OK,
    SIG_M_AUTH_FAILED,
    SIG_M_AUTH_TIMEOUTS,
    SIG_M_EVENTS,
    SIG_M_MEDIA_ENDPOINTS,
    SIG_M_MEDIA_FAILED,
    SIG_M_FILE_UPLOADS,
    SIG_M_FILE_DOWNLOADS,
    SIG_M_FILE_REFUSED,
    SIG_M_COUNT
};

/* A trusted issuer and the roles it may sign tokens for. */
typedef struct {
    char iss[SPK_TOKEN_STR];
    unsigned roles; /* SIG_ROLE_BIT set */
} sig_issuer_t;

struct spk_sig {
    spk_config_t cfg;
    sig_issuer_t issuers[SPK_CONFIG_MAX_ISSUERS + 1];
    int n_issuers;
    spk_store_t *store;
    const spk_keyring_t *kr;
    const spk_signer_t *issuer;
    spk_sig_io_t io;
    spk_map_t conns;    /* u64 -> sig_conn_t* */
    spk_map_t consults; /* id -> sig_consult_t* (open consults, loaded lazily) */
    bool draining;
    uint64_t n_msgs;
    uint64_t errors[SPK_ERR_COUNT + 1]; /* by -code */
    uint64_t by_action[SIG_N_ACTIONS];
    uint64_t m[SIG_M_COUNT];
    /* media relay (NULL when media is off) */
    spk_relays_t *relay; /* in-process or relay nodes (spk/relays.h) */
    spk_map_t eps;       /* relay endpoint id -> sig_ep_owner_t* */
    uint64_t next_ep;
    uint64_t relay_closed[SIG_EP_STATS]; /* counter totals of closed endpoints */
    spk_map_t ep_stats;                  /* endpoint id -> last counters (uint64_t[SIG_EP_STATS]) */
    /* durability holds (outbox.c) */
    uint64_t cur_ticket; /* commit whose effects the messages being sent now reveal; 0: none */
    uint64_t *held;      /* connections with held messages */
    size_t n_held, cap_held;
    size_t held_bytes; /* the size of every connection's held messages */
    /* one text held once for many connections (sig_share_begin) */
    const char *share_txt;
    size_t share_len;
    struct sig_shared *share;
    bool storage_failed; /* the store can no longer flush: nothing more is acknowledged */
    /* access limits (sig_audit.c, access.c) */
    spk_map_t tok_conns; /* "<iss> <jti>" -> (uintptr_t) connections authenticated with it */
    spk_map_t auth_fail; /* source address -> sig_fail_t* */
    int64_t last_access_check;
    /* MLS delivery service (chat_*.c) */
    spk_map_t chats;          /* conversation id -> ds_conv_t* (loaded on use) */
    uint64_t access_gen;      /* bumped by every change that can change who may be in a group */
    int64_t access_change_at; /* the earliest end (unix s) of a delegation a decision rested on */
    int64_t chat_maint_at;    /* last store maintenance (unix seconds) */
    bool chat_trim_more;      /* the last trim of acknowledged entries stopped at its batch size */
    int64_t idem_purged_at;   /* last purge of old idempotency records (unix seconds) */
    spk_map_t tickets;        /* file transfer ticket -> sig_ticket_t* (h_files.c) */
    /* events for other nodes (bus.c): this node's name, events waiting for their commit */
    char node[SIG_NODE_LEN];
    bool bus_rx; /* handling another node's event: nothing is published again */
    /* consults whose connections here lost access while handling another node's event: their
     * rosters (presence) are published once that is done (bus.c) */
    char bus_again[8][SPK_ID_LEN];
    int n_bus_again;
    struct sig_bus_out *bus_head, *bus_tail;
    uint64_t bus_published, bus_received, bus_bad;
    spk_map_t bus_peers;   /* node -> sig_bus_peer_t*: when each other node was last heard */
    uint64_t bus_alive_at; /* when this node last said it is alive (ms) */
    /* group commit of chat.send (chat_batch.c) */
    bool chat_batching;
    struct sig_chat_batch *chat_batch;
    int64_t chat_turn_us; /* control thread CPU time when the turn's first chat.send came (µs) */
    uint64_t chat_shed;   /* chat.send answered "unavailable" because the service is behind */
};

/* One request being handled. */
typedef struct {
    spk_sig_t *s;
    sig_conn_t *c;
    json_t *req;
    json_t *reply; /* fields added to the "ok" answer */
    json_t *id;    /* borrowed from req, may be NULL */
    int64_t now;   /* unix seconds */
    bool replied;
    char why[160];
    int64_t retry_ms; /* > 0: the error answer carries retry_ms (the service is behind) */
    /* audit record of the action (filled by handlers) */
    const char *event;
    char on_behalf_of[SPK_SUB_LEN];
    char patient[SPK_SUB_LEN];
    char practice[SPK_SUB_LEN]; /* the practice whose data is accessed */
    char object[SPK_SUB_LEN];
    char detail[256];
    /* a refused sign-in whose token a trusted issuer did sign: whose it was (for the audit) */
    bool refused_signed;
    spk_token_claims_t refused;
    /* the delegation a remote GP acts under (sig_rel_practice), for sig_join_conn */
    char delegation[SPK_ID_LEN];
    int64_t delegation_until;
    /* what the action changed, for the integrations' events (hooks.c): a participant moved to
     * a state (sig_part_commit) */
    const sig_part_t *moved;
    spk_part_state_t moved_to;
    /* idempotency (idem.c): the request's key once checked, and a stored answer replayed */
    char idem_key[256];
    uint8_t idem_req_hash[32];
    bool idem_replay;
} sig_req_t;

typedef int (*sig_handler_fn)(sig_req_t *r);

typedef struct {
    const char *type;
    unsigned roles;    /* bit (1u << spk_role_t) set when the matrix says allow */
    bool unauth;       /* allowed before authentication */
    const char *event; /* audit event name, NULL when not audited */
    sig_handler_fn fn;
} sig_action_t;

#define SIG_ROLE_BIT(r) (1u << (r))

/* sig_audit.c: audit entries. Every entry is appended to the store's open transaction when there
 * is one (so it commits with the action), else on its own. Text is cut on character boundaries.
 * Patients are recorded by participant id, never by name. */
typedef struct {
    const spk_token_claims_t *who; /* NULL for an anonymous connection */
    const char *remote;
    const char *event;
    int outcome;
    const char *on_behalf_of, *patient, *practice, *object, *detail;
} sig_audit_ev_t;
int sig_audit_write(spk_sig_t *s, const sig_audit_ev_t *ev);
/* The request's entry with outcome (0 = success). */
int sig_audit(sig_req_t *r, int outcome);
/* A refused sign-in (auth / invite.redeem) from r's source: logged one by one up to a limit per
 * source address and window, then counted into one summary entry at the window's end. */
void sig_audit_auth_refused(sig_req_t *r, int outcome);
/* Too many refused sign-ins from this source in the current window: new attempts are refused
 * (SPK_ERATE) without being evaluated. */
bool sig_auth_throttled(spk_sig_t *s, const char *remote, int64_t now);
/* Writes the summaries of finished windows and forgets old sources. */
void sig_auth_fail_tick(spk_sig_t *s, int64_t now);
void sig_auth_fail_free(spk_sig_t *s);

/* outbox.c: messages wait for the commit they reveal (protocol: "ok" means durable). */
int sig_deliver(spk_sig_t *s, sig_conn_t *c, json_t *msg); /* steals msg */
/* The same for a message already serialised (copied), e.g. one text for many connections. */
int sig_deliver_text(spk_sig_t *s, sig_conn_t *c, const char *txt, size_t len);
/* Closes the connection after its held messages (or now when none are held). */
void sig_close_conn(spk_sig_t *s, sig_conn_t *c, int ws_code, const char *reason);
void sig_outq_free(spk_sig_t *s, sig_conn_t *c);
typedef struct sig_shared sig_shared_t;
/* Until sig_share_end, sig_deliver_text of exactly this text (same pointer and length) holds one
 * shared copy for every connection instead of a copy each. txt must stay valid until the end. */
void sig_share_begin(spk_sig_t *s, const char *txt, size_t len);
void sig_share_end(spk_sig_t *s);
void sig_held_free(spk_sig_t *s);

/* access.c: access that ends while a connection is open. */
/* Ends conn's presence in consult c for `reason` (a documented code: "token_expired",
 * "delegation_ended", "consent_withdrawn", "removed"): unjoins it (media endpoints close),
 * tells the client (event access.ended) and audits it. */
void sig_end_access(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, const char *reason,
                    const char *detail);
/* Re-checks token expiry and delegations of every connection (called from spk_sig_tick). */
void sig_access_tick(spk_sig_t *s, int64_t now);
/* A delegation was revoked: its remote GP's connections leave the practice's consults. */
void sig_access_delegation_revoked(spk_sig_t *s, const spk_delegation_rec_t *d);
/* The patient's consent for a meekijkconsult was withdrawn: invited specialists leave. */
void sig_access_consent_withdrawn(spk_sig_t *s, sig_consult_t *c);
/* Per-token connection limit: counts conn against its token; SPK_ETOOMANY over the limit. */
int sig_token_count_add(spk_sig_t *s, sig_conn_t *conn);
void sig_token_count_del(spk_sig_t *s, sig_conn_t *conn);

/* policy.c */
/* Builds the issuer table from the configuration (own issuer first). SPK_ECONFIG for an unknown
 * role name. */
int sig_issuers_init(spk_sig_t *s);
/* May tokens of issuer iss carry this role? */
bool sig_issuer_allows(const spk_sig_t *s, const char *iss, spk_role_t role);
const sig_action_t *sig_action_find(const char *type, int *index);
const sig_action_t *sig_action_at(int i);
bool sig_role_allows(const sig_action_t *a, spk_role_t role);
int sig_rel_practice(sig_req_t *r, const char *practice);
/* The same for something of one consult (NULL: of the practice as a whole): a staff session
 * bound to a consult (its `consult` claim) acts on that consult only. */
int sig_rel_practice_in(sig_req_t *r, const char *practice, const char *consult);
int sig_rel_consult(sig_req_t *r, sig_consult_t *c);
bool sig_is_staff(spk_role_t role);
/* Is the invited specialist (iss, sub) still invited to c (invitation not withdrawn, consent
 * still given)? */
int sig_specialist_invited(spk_sig_t *s, const sig_consult_t *c, const char *iss, const char *sub);

/* service.c: the "service" role of practice system integrations (docs/integration.md). */
/* A token signed by a registered integration: verified against its keys. SPK_ENOTFOUND when
 * the token's issuer is no integration (the keyring decides then). */
int sig_service_verify(sig_req_t *r, const char *tok, spk_token_claims_t *cl);
/* May the integration act for `practice`? Sets on_behalf_of to the GP named in the request's
 * "gp" field, else default_gp, else the practice. */
int sig_service_rel(sig_req_t *r, const char *practice, const char *default_gp);
/* An own-issuer GP session token from a console link (role gp, bound to a consult). */
bool sig_console_session(const spk_sig_t *s, const spk_token_claims_t *cl);
int sig_h_console_link(sig_req_t *r);
int sig_h_console_redeem(sig_req_t *r);
/* The consult's status for integrations: planned | waiting | in_progress | ended, with times. */
void sig_consult_status(const sig_consult_t *c, json_t *o);

/* hooks.c: events for the integrations' webhooks, stored in the action's transaction. */
int sig_hooks_precommit(sig_req_t *r);
void sig_hooks_postcommit(sig_req_t *r);
/* Reports invites that expired unused since the last call (from the tick). */
void sig_hooks_tick(spk_sig_t *s, int64_t now);

/* idem.c: idempotency keys of creating requests. */
/* Checks the request's idempotency_key: sets r->idem_key (new) or r->idem_replay with the
 * stored answer in r->reply; SPK_EIDEMPOTENCY for a key used with another request. */
int sig_idem_begin(sig_req_t *r);
/* Stores the answer under the key, in the action's transaction (from sig_commit). */
int sig_idem_store(sig_req_t *r);
void sig_idem_tick(spk_sig_t *s, int64_t now);

/* h_session.c */
int sig_authenticate(sig_req_t *r, const spk_token_claims_t *who);
void sig_unauthenticate(sig_req_t *r);
/* A session of the own issuer for cl (sub, name, role, practice, consult set by the caller;
 * iss, aud, times and jti filled in here): its token signed into tok, the connection
 * authenticated with exactly these claims and the request committed (undone on failure, tok
 * wiped). Invite and console link redemption. */
int sig_session_start(sig_req_t *r, spk_token_claims_t *cl, char *tok, size_t cap);
/* Records a session token the own issuer gives out (one with a `consult` claim) in the store. */
int sig_session_record(spk_sig_t *s, const spk_token_claims_t *cl);

/* core.c */
int sig_send_json(spk_sig_t *s, uint64_t conn, json_t *msg); /* steals msg */
/* json_flat.c: a flat object of integers and plain ASCII strings parsed without jansson's
 * parser (the same object json_loadb gives), or NULL for anything else. */
json_t *sig_json_flat(const char *data, size_t len);
/* An error answer to request id (may be NULL) with its documented code. */
void sig_send_error(spk_sig_t *s, uint64_t conn, json_t *id, int err, const char *why);
/* The same with retry_ms (> 0) in the answer: the client may try again after that long. */
void sig_send_error_retry(spk_sig_t *s, uint64_t conn, json_t *id, int err, const char *why,
                          int64_t retry_ms);
void sig_reply_ok(sig_req_t *r);
/* Appends the request's audit entry (r->event, success) to the open transaction and commits
 * it together with the action's changes; from then on, messages sent reveal that commit and are
 * held until it is on disk. Handlers call it once their changes are written and before they
 * change the in-memory model; without an explicit call the core commits after the handler.
 * On failure the transaction is rolled back and the action must fail (nothing changed). */
int sig_commit(sig_req_t *r);
int sig_bad_field(sig_req_t *r, const char *field);
/* A string field: at most maxlen bytes, accepted text (spk/text.h: no control, bidi or
 * invisible characters), non-empty when required. */
int sig_get_str(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out);
/* Like sig_get_str for protocol text that has lines of its own (SDP): any UTF-8 without NUL. */
int sig_get_raw(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out);
int sig_get_bool(sig_req_t *r, const char *field, bool *out);
int sig_get_int(sig_req_t *r, const char *field, bool required, int64_t lo, int64_t hi,
                int64_t *out);

/* consult.c: model */
int sig_consult_lookup(spk_sig_t *s, const char *id, sig_consult_t **out);
sig_consult_t *sig_consult_cached(spk_sig_t *s, const char *id);
void sig_consults_sweep(spk_sig_t *s);
void sig_consults_free(spk_sig_t *s);
sig_part_t *sig_part_find(sig_consult_t *c, const char *id);
/* The participant of user (iss, sub), or NULL. */
sig_part_t *sig_part_find_sub(sig_consult_t *c, const char *iss, const char *sub);
sig_join_t *sig_join_find(sig_conn_t *conn, const sig_consult_t *c);
int sig_part_add(sig_consult_t *c, const spk_participant_rec_t *rec, sig_part_t **out);
/* Stores the participant's new state, commits the request (sig_commit) and only then changes
 * it in memory: a failure changes nothing. */
int sig_part_commit(sig_req_t *r, sig_part_t *p, spk_part_state_t state);
json_t *sig_consult_json(const sig_consult_t *c, bool with_patient);
json_t *sig_part_json(const sig_part_t *p);
/* The roster as `viewer` may see it: staff see everyone but denied participants; others see
 * no one in the lobby and a patient sees no other patient (NULL viewer: staff view). */
json_t *sig_roster_json(const sig_consult_t *c, const sig_part_t *viewer);
json_t *sig_lobby_json(const sig_consult_t *c);
json_t *sig_fact_json(const spk_fact_rec_t *f);
void sig_broadcast_roster(spk_sig_t *s, sig_consult_t *c);
void sig_broadcast_lobby(spk_sig_t *s, sig_consult_t *c);
void sig_broadcast_facts(spk_sig_t *s, sig_consult_t *c);
void sig_send_to_part(spk_sig_t *s, sig_consult_t *c, sig_part_t *p, json_t *msg);
int sig_join_conn(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, sig_part_t *p);
/* Sends msg (stolen) to every signed-in connection of user (iss, sub) with this role, on every
 * node. */
void sig_send_to_user(spk_sig_t *s, spk_role_t role, const char *iss, const char *sub, json_t *msg);
/* The consult has ended: its connections are told (consult.ended) and unjoined. */
void sig_consult_ended(spk_sig_t *s, sig_consult_t *c);
void sig_unjoin_conn(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, bool notify);
size_t sig_lobby_waiting(spk_sig_t *s);

/* handlers (h_session.c, h_consult.c, h_lobby.c, h_admin.c) */
int sig_h_ping(sig_req_t *r);
int sig_h_auth(sig_req_t *r);
int sig_h_invite_redeem(sig_req_t *r);
int sig_h_consult_create(sig_req_t *r);
int sig_h_consult_list(sig_req_t *r);
int sig_h_consult_get(sig_req_t *r);
int sig_h_consult_join(sig_req_t *r);
int sig_h_consult_leave(sig_req_t *r);
int sig_h_consult_end(sig_req_t *r);
int sig_h_invite_create(sig_req_t *r);
int sig_h_invite_list(sig_req_t *r);
int sig_h_invite_revoke(sig_req_t *r);
int sig_h_lobby_list(sig_req_t *r);
int sig_h_lobby_admit(sig_req_t *r);
int sig_h_lobby_deny(sig_req_t *r);
int sig_h_lobby_send_back(sig_req_t *r);
int sig_h_identity_record(sig_req_t *r);
int sig_h_speak_freely_record(sig_req_t *r);
int sig_h_consent_record(sig_req_t *r);
int sig_h_specialist_invite(sig_req_t *r);
int sig_h_delegation_grant(sig_req_t *r);
int sig_h_delegation_revoke(sig_req_t *r);
int sig_h_delegation_list(sig_req_t *r);
int sig_h_audit_read(sig_req_t *r);
int sig_h_media_publish(sig_req_t *r);
int sig_h_media_subscribe(sig_req_t *r);
int sig_h_media_answer(sig_req_t *r);
int sig_h_media_candidate(sig_req_t *r);
int sig_h_media_stop(sig_req_t *r);
int sig_h_chat_device(sig_req_t *r);
int sig_h_chat_create(sig_req_t *r);
int sig_h_chat_list(sig_req_t *r);
int sig_h_chat_get(sig_req_t *r);
int sig_h_chat_members_add(sig_req_t *r);
int sig_h_chat_members_remove(sig_req_t *r);
int sig_h_chat_send(sig_req_t *r);
int sig_h_chat_sync(sig_req_t *r);
int sig_h_chat_ack(sig_req_t *r);
int sig_h_mls_kp_upload(sig_req_t *r);
int sig_h_mls_kp_status(sig_req_t *r);
int sig_h_mls_kp_claim(sig_req_t *r);
int sig_h_mls_group_create(sig_req_t *r);
int sig_h_mls_commit(sig_req_t *r);
int sig_h_mls_proposal(sig_req_t *r);
int sig_h_chat_file_upload(sig_req_t *r);
int sig_h_chat_file_download(sig_req_t *r);

/* h_files.c: transfer tickets run out; attachments past their conversation's retention go. */
void sig_files_tick(spk_sig_t *s, uint64_t now_ms);
int sig_files_expire(spk_sig_t *s, int64_t now, int64_t *n);
void sig_files_free(spk_sig_t *s);

/* chat_model.c: the delivery service's state kept with the core. */
void sig_chat_conn_free(spk_sig_t *s, sig_conn_t *c);
void sig_chat_sweep(spk_sig_t *s);
/* Each second: forgets idle conversations; each minute: trims what every device acknowledged,
 * deletes ciphertext past its retention and used-up KeyPackages, and re-decides access (time
 * passes for delegations). */
void sig_chat_tick(spk_sig_t *s, int64_t now);
void sig_chat_free_all(spk_sig_t *s);
/* chat_batch.c: group commit of application messages. */
typedef struct sig_chat_batch sig_chat_batch_t;
/* Writes the waiting messages in one transaction, answers and delivers them. */
void sig_chat_flush(spk_sig_t *s);
void sig_chat_batch_free(spk_sig_t *s);
/* Someone's access may have changed (admission, delegation, consent, membership): cached
 * decisions are made again before the next delivery. */
void sig_chat_access_changed(spk_sig_t *s);

/* bus.c: events to and from other nodes on one store (spk_sig_io_t.publish_cb). All of them do
 * nothing on a single node. */
bool sig_bus_on(const spk_sig_t *s);
/* The other nodes heard lately (not taken as gone). */
size_t sig_bus_nodes(spk_sig_t *s);
/* The consult changed: other nodes read it again and send what `what` names ("roster",
 * "lobby", "facts", "ended") to their connections; this node's presence counts go along. */
void sig_bus_consult(spk_sig_t *s, const sig_consult_t *c, const char *what);
/* msg (not stolen) for participant p's connections on other nodes. */
void sig_bus_part(spk_sig_t *s, const sig_consult_t *c, const sig_part_t *p, const json_t *msg);
/* msg (not stolen) for the signed-in connections of user (iss, sub, role) on other nodes. */
void sig_bus_user(spk_sig_t *s, spk_role_t role, const char *iss, const char *sub,
                  const json_t *msg);
/* Conversation entry e was appended: other nodes catch up from the store and deliver. */
void sig_bus_chat(spk_sig_t *s, const char *conv, int64_t seq, int kind);
/* A delegation was revoked: nodes end their connections' access under it. */
void sig_bus_delegation(spk_sig_t *s, const char *id);
/* Access of a connection here to c ended while handling bus input (sig_end_access). */
void sig_bus_access_ended(spk_sig_t *s, const sig_consult_t *c);
/* Each second: says this node is alive; a node not heard for a while is taken as gone, and
 * connections counted there no longer make anyone online here. */
void sig_bus_tick(spk_sig_t *s, uint64_t now_ms);
/* Publishes what waits for commits that are durable now (from spk_sig_durable). */
void sig_bus_release(spk_sig_t *s, uint64_t durable);
void sig_bus_free(spk_sig_t *s);
/* Connections joined as p on every node. */
int sig_part_online(const sig_part_t *p);
/* Reads the consult's record and participants again from the store (another node changed
 * them); presence counts stay. */
int sig_consult_reload(spk_sig_t *s, sig_consult_t *c);
/* chat_model.c: another node appended entries up to seq: they are delivered here; an entry of
 * another kind than an application message may have changed the group, which is read again. */
void sig_chat_catch_up(spk_sig_t *s, const char *conv, int64_t seq, int kind);

/* media.c: called by the model when a join ends or a participant's admission changes. */
void sig_media_unjoin(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j);
void sig_media_consult_changed(spk_sig_t *s, sig_consult_t *c);
/* media_bus.c: a consult's media across nodes. The bus input of "media" and "media?" events;
 * a node gone (its publishers are dropped); this node's publishers said again when they changed
 * (or always, with force). */
void sig_media_bus_input(spk_sig_t *s, sig_consult_t *c, const char *node, const char *kind,
                         json_t *ev);
void sig_media_bus_node_gone(spk_sig_t *s, const char *node);
void sig_media_bus_say(spk_sig_t *s, sig_consult_t *c, bool force);
void sig_media_bus_ask(spk_sig_t *s, sig_consult_t *c);
/* After a silence on the bus: says c's list again and asks for the others' (subscribers here). */
void sig_media_bus_resync(spk_sig_t *s, sig_consult_t *c);
void sig_media_bus_free(sig_consult_t *c);
/* bus.c: publishes m (stolen) also while handling bus input (media events are said only when
 * this node's own publishers changed, so they cannot echo). */
void sig_bus_publish_media(spk_sig_t *s, json_t *m);
void sig_media_free_all(spk_sig_t *s);
void sig_media_tick(spk_sig_t *s);
size_t sig_media_metrics(spk_sig_t *s, char *buf, size_t cap);
json_t *sig_ice_servers_json(const spk_sig_t *s, const sig_conn_t *conn, int64_t now);

/* Opens the request's store transaction when the core did not (actions that write but have no
 * audit entry of their own); sig_commit commits it. */
int sig_begin(sig_req_t *r);

/* Looks up the request's "consult" field and checks the caller's relationship to it.
 * require_open: SPK_ECONSULTENDED for an ended consult. */
int sig_req_consult(sig_req_t *r, bool require_open, sig_consult_t **out);

#endif
