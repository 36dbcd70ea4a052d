/* Session actions: ping, auth, invite.redeem. */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define PATIENT_NAME_MAX_CHARS 100

int sig_h_ping(sig_req_t *r)
{
    json_object_set_new(r->reply, "time", json_integer(spk_now_ms()));
    return 0;
}

static json_t *user_json(const spk_token_claims_t *w)
{
    json_t *u =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "sub", w->sub, "iss", w->iss, "name", w->name,
                  "role", spk_role_name(w->role), "practice", w->practice, "acts_for", w->acts_for);
    if (u != NULL && sig_is_staff(w->role) && w->consult[0] != '\0') {
        /* a session bound to one consult (a console link's) */
        json_object_set_new(u, "consult", json_string(w->consult));
    }
    return u;
}

/* Makes the connection authenticated as `who`, counted against its token; undone by
 * unauthenticate when the action fails afterwards. */
int sig_authenticate(sig_req_t *r, const spk_token_claims_t *who)
{
    if (r->c->who == &sig_no_claims) {
        r->c->who = malloc(sizeof(*r->c->who));
        if (r->c->who == NULL) {
            r->c->who = &sig_no_claims;
            return SPK_ENOMEM;
        }
    }
    *r->c->who = *who;
    int rc = sig_token_count_add(r->s, r->c);
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "this token is in use on too many connections");
        spk_wipe(r->c->who, sizeof(*r->c->who));
        return rc;
    }
    r->c->authed = true;
    return 0;
}

void sig_unauthenticate(sig_req_t *r)
{
    sig_token_count_del(r->s, r->c);
    r->c->authed = false;
    spk_wipe(r->c->who, sizeof(*r->c->who));
}

int sig_session_record(spk_sig_t *s, const spk_token_claims_t *cl)
{
    char name[SPK_TOKEN_SESSION_NAME_LEN];
    int rc = spk_token_session_name(cl, name);
    return rc == 0 ? spk_store_mark_set(s->store, name, cl->exp) : rc;
}

/* A token of the own issuer bound to a consult is a session this server gave out, and it
 * recorded it then (sig_session_record): a copy of issuer.key does not make one. */
static int session_known(sig_req_t *r, const spk_token_claims_t *cl)
{
    if (strcmp(cl->iss, r->s->issuer->iss) != 0 || cl->consult[0] == '\0') {
        return 0;
    }
    char name[SPK_TOKEN_SESSION_NAME_LEN];
    int64_t until = 0;
    int rc = spk_token_session_name(cl, name);
    if (rc == 0) {
        rc = spk_store_mark_get(r->s->store, name, &until);
    }
    if (rc == 0 && until < cl->exp) {
        snprintf(r->why, sizeof(r->why), "no session of this server");
        rc = SPK_ETOKENINVALID;
    }
    return rc;
}

static int verify_token(sig_req_t *r, const char *tok, spk_token_claims_t *cl)
{
    if (strlen(tok) > SPK_TOKEN_MAX_LEN) {
        snprintf(r->why, sizeof(r->why), "token is longer than %d bytes", SPK_TOKEN_MAX_LEN);
        return SPK_ETOKENINVALID;
    }
    /* A practice system integration signs its own tokens with a registered key. */
    int rc = sig_service_verify(r, tok, cl);
    if (rc != SPK_ENOTFOUND) {
        return rc;
    }
    const spk_token_policy_t pol = {.audience = r->s->cfg.token_audience,
                                    .max_lifetime_s = r->s->cfg.token_max_lifetime_s};
    rc = spk_token_verify_policy(r->s->kr, tok, strlen(tok), r->now, r->s->cfg.token_leeway_s, &pol,
                                 cl, r->why, sizeof(r->why));
    if (rc != 0) {
        return rc;
    }
    if (cl->role == SPK_ROLE_SERVICE) {
        snprintf(r->why, sizeof(r->why), "service tokens are signed by a registered integration");
        return SPK_ETOKENISSUER;
    }
    if (!sig_issuer_allows(r->s, cl->iss, cl->role) && !sig_console_session(r->s, cl)) {
        snprintf(r->why, sizeof(r->why), "issuer is not trusted for role %s",
                 spk_role_name(cl->role));
        return SPK_ETOKENISSUER;
    }
    if (cl->role == SPK_ROLE_PATIENT && cl->consult[0] == '\0') {
        /* Patients only ever hold session tokens bound to one consult. */
        snprintf(r->why, sizeof(r->why), "patient token is not bound to a consult");
        return SPK_ETOKENINVALID;
    }
    return session_known(r, cl);
}

int sig_h_auth(sig_req_t *r)
{
    const char *tok;
    /* Length is judged by the token check (token_invalid), not as a malformed field. */
    int rc = sig_get_str(r, "token", true, r->s->cfg.max_message_bytes, &tok);
    if (rc != 0) {
        return rc;
    }
    spk_token_claims_t cl;
    rc = verify_token(r, tok, &cl);
    if (rc == 0 && r->c->api && cl.role != SPK_ROLE_SERVICE) {
        /* The HTTP API is for practice systems; people use the consulting room's own clients,
         * where their requests are theirs and not "on behalf of" anyone. */
        snprintf(r->why, sizeof(r->why),
                 "the HTTP API is for practice systems: sign in with a service token, not a %s "
                 "token",
                 spk_role_name(cl.role));
        rc = SPK_EFORBIDDEN;
    }
    if (rc == 0) {
        rc = sig_authenticate(r, &cl);
    }
    if (rc != 0) {
        r->s->m[SIG_M_AUTH_FAILED]++;
        spk_info(r->c->id, "auth refused: %s", spk_err_wire(rc));
        if (cl.sub[0] != '\0') {
            /* Signed by a trusted issuer but refused (expired, not yet valid, audience, role,
             * too many connections): the audit entry names whose token it was. */
            r->refused = cl;
            r->refused_signed = true;
        }
        spk_wipe(&cl, sizeof(cl));
        return rc;
    }
    if (cl.role == SPK_ROLE_ASSISTANT) {
        snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", cl.acts_for);
    }
    snprintf(r->practice, sizeof(r->practice), "%s", cl.practice);
    snprintf(r->object, sizeof(r->object), "%s", cl.consult[0] ? cl.consult : cl.jti);
    rc = sig_commit(r);
    if (rc != 0) {
        sig_unauthenticate(r);
        spk_wipe(&cl, sizeof(cl));
        return rc;
    }
    r->s->m[SIG_M_AUTH_OK]++;
    spk_info(r->c->id, "authenticated sub=%s role=%s", cl.sub, spk_role_name(cl.role));
    json_object_set_new(r->reply, "user", user_json(&cl));
    json_object_set_new(r->reply, "expires_at", json_integer(cl.exp));
    spk_wipe(&cl, sizeof(cl));
    return 0;
}

int sig_session_start(sig_req_t *r, spk_token_claims_t *cl, char *tok, size_t cap)
{
    snprintf(cl->iss, sizeof(cl->iss), "%s", r->s->issuer->iss);
    snprintf(cl->aud, sizeof(cl->aud), "%s", r->s->cfg.token_audience);
    cl->iat = r->now;
    cl->nbf = r->now - 1;
    cl->exp = r->now + r->s->cfg.patient_session_s;
    int rc = spk_random_id(cl->jti, sizeof(cl->jti), 12);
    if (rc == 0) {
        long n = spk_token_sign(r->s->issuer, cl, tok, cap);
        rc = n < 0 ? (int)n : 0;
    }
    if (rc == 0) {
        rc = sig_session_record(r->s, cl); /* in the same transaction as what it opens */
    }
    if (rc == 0) {
        rc = sig_authenticate(r, cl);
    }
    if (rc == 0) {
        rc = sig_commit(r);
        if (rc != 0) {
            sig_unauthenticate(r);
        }
    }
    if (rc != 0) {
        spk_wipe(tok, cap);
    }
    return rc;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

static int redeem_args(sig_req_t *r, const char **code, const char **name)
{
    int rc = sig_get_str(r, "invite", true, 64, code);
    if (rc == 0) {
        rc = sig_get_str(r, "name", true, 4 * PATIENT_NAME_MAX_CHARS, name);
    }
    if (rc == 0 && utf8_chars(*name) > PATIENT_NAME_MAX_CHARS) {
        rc = sig_bad_field(r, "name");
    }
    return rc;
}

int sig_h_invite_redeem(sig_req_t *r)
{
    const char *code, *name;
    int rc = redeem_args(r, &code, &name);
    if (rc != 0) {
        return rc;
    }
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    char pid[SPK_ID_LEN] = "p_";
    rc = spk_random_id(pid + 2, sizeof(pid) - 2, 12);
    if (rc != 0) {
        return rc;
    }
    /* The single atomic use decides; everything after it is this patient's (and is undone
     * with it when the action fails). */
    spk_invite_rec_t inv;
    rc = spk_store_invite_use(r->s->store, h, r->now, pid, &inv);
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "%s", spk_strerror(rc));
        return rc;
    }
    sig_consult_t *c;
    rc = sig_consult_lookup(r->s, inv.consult, &c);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->patient, sizeof(r->patient), "%s", c->rec.patient);
    snprintf(r->practice, sizeof(r->practice), "%s", c->rec.practice);
    snprintf(r->object, sizeof(r->object), "%s", c->rec.id);
    snprintf(r->detail, sizeof(r->detail), "invite %s", inv.id);
    if (c->rec.state != SPK_CONSULT_OPEN) {
        return SPK_ECONSULTENDED;
    }
    spk_participant_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.consult, sizeof(rec.consult), "%s", c->rec.id);
    snprintf(rec.id, sizeof(rec.id), "%s", pid);
    snprintf(rec.sub, sizeof(rec.sub), "%s", pid);
    snprintf(rec.iss, sizeof(rec.iss), "%s", r->s->issuer->iss);
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    rec.role = SPK_ROLE_PATIENT;
    rec.state = SPK_PART_LOBBY;
    rec.joined_at = rec.updated_at = r->now;
    rc = spk_store_participant_put(r->s->store, &rec);
    /* The session token: the connection is authenticated with exactly these claims. */
    spk_token_claims_t cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", pid);
    snprintf(cl.name, sizeof(cl.name), "%s", rec.name);
    snprintf(cl.practice, sizeof(cl.practice), "%s", c->rec.practice);
    snprintf(cl.consult, sizeof(cl.consult), "%s", c->rec.id);
    cl.role = SPK_ROLE_PATIENT;
    char tok[SPK_TOKEN_MAX_LEN];
    if (rc == 0) {
        rc = sig_session_start(r, &cl, tok, sizeof(tok));
    }
    if (rc != 0) {
        spk_wipe(tok, sizeof(tok));
        return rc;
    }
    /* Committed: the patient waits in the lobby from now on. */
    sig_part_t *p;
    rc = sig_part_add(c, &rec, &p);
    if (rc == 0) {
        rc = sig_join_conn(r->s, r->c, c, p);
    }
    if (rc != 0) {
        spk_error(r->c->id, "patient %s stored but not joined: %s", pid, spk_strerror(rc));
        spk_wipe(tok, sizeof(tok));
        return rc;
    }
    r->s->m[SIG_M_INVITES_REDEEMED]++;
    json_object_set_new(r->reply, "consult", json_string(c->rec.id));
    json_object_set_new(r->reply, "participant", sig_part_json(p));
    json_object_set_new(r->reply, "session_token", json_string(tok));
    spk_wipe(tok, sizeof(tok));
    json_t *ice = sig_ice_servers_json(r->s, r->c, r->now); /* so media can start at admission */
    if (ice != NULL) {
        json_object_set_new(r->reply, "ice_servers", ice);
    }
    sig_reply_ok(r);
    sig_broadcast_lobby(r->s, c);
    return 0;
}
