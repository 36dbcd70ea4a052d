/* Internal structures of the signaling core (spk/signaling.h). */
#ifndef SPK_SIG_CORE_INT_H
#define SPK_SIG_CORE_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "spk/map.h"
#include "spk/relay.h"
#include "spk/signaling.h"

/* Consults one connection can be joined to at once. */
#define SPK_SIG_MAX_JOINED 16
/* Relay counters kept per endpoint for /metrics. */
#define SIG_EP_STATS 10

typedef struct sig_consult sig_consult_t;
typedef struct sig_part sig_part_t;
typedef struct sig_media sig_media_t;

/* One joined (connection, consult) pair. */
typedef struct {
    sig_consult_t *consult;
    sig_part_t *part;
    sig_media_t *media; /* NULL until the connection sets up media in this consult */
} sig_join_t;

typedef struct {
    uint64_t id;
    char remote[64];
    uint64_t opened_ms;
    bool authed;
    bool closing;
    spk_token_claims_t who;
    /* token bucket */
    double tokens;
    uint64_t refill_ms;
    sig_join_t joined[SPK_SIG_MAX_JOINED];
    int n_joined;
    char delegation_used[SPK_ID_LEN]; /* last delegation audited as used on this connection */
} sig_conn_t;

struct sig_part {
    spk_participant_rec_t rec;
    int online; /* number of connections joined as this participant */
};

struct sig_consult {
    spk_consult_rec_t rec;
    uint64_t relay_id; /* the consult's numeric id towards the relay */
    sig_part_t **parts;
    size_t n_parts, cap_parts;
    uint64_t *conns; /* connections joined to this consult */
    size_t n_conns, cap_conns;
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
    SIG_M_COUNT
};

struct spk_sig {
    spk_config_t cfg;
    spk_store_t *store;
    const spk_keyring_t *kr;
    const spk_signer_t *issuer;
    spk_sig_io_t io;
    spk_map_t conns;    /* u64 -> sig_conn_t* */
    spk_map_t consults; /* id -> sig_consult_t* (open consults, loaded lazily) */
    bool draining;
    uint64_t n_msgs;
    uint64_t errors[64]; /* by -code */
    uint64_t by_action[32];
    uint64_t m[SIG_M_COUNT];
    /* media relay (NULL when media is off) */
    spk_relay_t *relay;
    spk_map_t eps; /* relay endpoint id -> sig_ep_owner_t* */
    uint64_t next_ep, next_relay_consult;
    uint64_t relay_closed[SIG_EP_STATS]; /* counter totals of closed endpoints */
    spk_map_t ep_stats;                  /* endpoint id -> last counters (uint64_t[SIG_EP_STATS]) */
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
    /* audit record of the action (filled by handlers) */
    const char *event;
    char on_behalf_of[SPK_SUB_LEN];
    char patient[SPK_SUB_LEN];
    char object[SPK_SUB_LEN];
    char detail[256];
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

/* policy.c */
const sig_action_t *sig_action_find(const char *type, int *index);
const sig_action_t *sig_action_at(int i);
bool sig_role_allows(const sig_action_t *a, spk_role_t role);
int sig_rel_practice(sig_req_t *r, const char *practice);
int sig_rel_consult(sig_req_t *r, sig_consult_t *c);
bool sig_is_staff(spk_role_t role);

/* core.c */
int sig_send_json(spk_sig_t *s, uint64_t conn, json_t *msg); /* steals msg */
void sig_reply_ok(sig_req_t *r);
void sig_audit(sig_req_t *r, int outcome);
void sig_audit_raw(spk_sig_t *s, const spk_token_claims_t *who, const char *remote,
                   const char *event, int outcome, const char *on_behalf_of, const char *patient,
                   const char *object, const char *detail);
int sig_bad_field(sig_req_t *r, const char *field);
int sig_get_str(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out);
int sig_get_bool(sig_req_t *r, const char *field, bool *out);
int sig_get_int(sig_req_t *r, const char *field, bool required, int64_t lo, int64_t hi,
                int64_t *out);

/* consult.c: model */
int sig_consult_lookup(spk_sig_t *s, const char *id, sig_consult_t **out);
sig_consult_t *sig_consult_cached(spk_sig_t *s, const char *id);
void sig_consult_drop(spk_sig_t *s, sig_consult_t *c);
void sig_consults_free(spk_sig_t *s);
sig_part_t *sig_part_find(sig_consult_t *c, const char *id);
sig_part_t *sig_part_find_sub(sig_consult_t *c, const char *sub);
int sig_part_add(sig_consult_t *c, const spk_participant_rec_t *rec, sig_part_t **out);
int sig_part_save(spk_sig_t *s, sig_part_t *p, spk_part_state_t state, int64_t now);
json_t *sig_consult_json(const sig_consult_t *c, bool with_patient);
json_t *sig_part_json(const sig_part_t *p);
json_t *sig_roster_json(const sig_consult_t *c);
json_t *sig_lobby_json(const sig_consult_t *c);
json_t *sig_fact_json(const spk_fact_rec_t *f);
void sig_broadcast_roster(spk_sig_t *s, sig_consult_t *c);
void sig_broadcast_lobby(spk_sig_t *s, sig_consult_t *c);
void sig_broadcast_facts(spk_sig_t *s, sig_consult_t *c);
void sig_send_to_part(spk_sig_t *s, sig_consult_t *c, sig_part_t *p, json_t *msg);
int sig_join_conn(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, sig_part_t *p);
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

/* media.c: called by the model when a join ends or a participant's admission changes. */
void sig_media_unjoin(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j);
void sig_media_consult_changed(spk_sig_t *s, sig_consult_t *c);
void sig_media_free_all(spk_sig_t *s);
void sig_media_tick(spk_sig_t *s);
size_t sig_media_metrics(spk_sig_t *s, char *buf, size_t cap);
json_t *sig_ice_servers_json(const spk_sig_t *s, const sig_conn_t *conn, int64_t now);

/* Looks up the request's "consult" field and checks the caller's relationship to it.
 * require_open: SPK_ECONSULTENDED for an ended consult. */
int sig_req_consult(sig_req_t *r, bool require_open, sig_consult_t **out);

#endif
