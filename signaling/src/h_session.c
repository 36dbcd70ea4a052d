/* Session actions: ping, auth, invite.redeem. */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

int sig_h_ping(sig_req_t *r)
{
    json_object_set_new(r->reply, "time", json_integer(spk_now_ms()));
    return 0;
}

static json_t *user_json(const spk_token_claims_t *w)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "sub", w->sub, "name", w->name, "role",
                     spk_role_name(w->role), "practice", w->practice, "acts_for", w->acts_for);
}

int sig_h_auth(sig_req_t *r)
{
    const char *tok;
    int rc = sig_get_str(r, "token", true, SPK_TOKEN_MAX_LEN, &tok);
    if (rc != 0) {
        return rc;
    }
    spk_token_claims_t cl;
    rc = spk_token_verify(r->s->kr, tok, strlen(tok), r->now, r->s->cfg.token_leeway_s, &cl, r->why,
                          sizeof(r->why));
    if (rc != 0) {
        r->s->m[SIG_M_AUTH_FAILED]++;
        spk_info(r->c->id, "auth refused: %s", spk_err_wire(rc));
        return rc;
    }
    if (cl.role == SPK_ROLE_PATIENT && cl.consult[0] == '\0') {
        /* Patients only ever hold session tokens bound to one consult. */
        r->s->m[SIG_M_AUTH_FAILED]++;
        snprintf(r->why, sizeof(r->why), "patient token is not bound to a consult");
        spk_wipe(&cl, sizeof(cl));
        return SPK_ETOKENINVALID;
    }
    r->c->who = cl;
    r->c->authed = true;
    r->s->m[SIG_M_AUTH_OK]++;
    if (cl.role == SPK_ROLE_ASSISTANT) {
        snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", cl.acts_for);
    }
    snprintf(r->object, sizeof(r->object), "%s", cl.consult[0] ? cl.consult : cl.jti);
    spk_info(r->c->id, "authenticated sub=%s role=%s", cl.sub, spk_role_name(cl.role));
    json_object_set_new(r->reply, "user", user_json(&cl));
    json_object_set_new(r->reply, "expires_at", json_integer(cl.exp));
    return 0;
}

/* Signs the patient's session token for reconnecting to this consult. */
static int patient_session_token(sig_req_t *r, const sig_consult_t *c, const sig_part_t *p,
                                 char *out, size_t cap)
{
    spk_token_claims_t cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", p->rec.id);
    snprintf(cl.name, sizeof(cl.name), "%s", p->rec.name);
    snprintf(cl.practice, sizeof(cl.practice), "%s", c->rec.practice);
    snprintf(cl.consult, sizeof(cl.consult), "%s", c->rec.id);
    cl.role = SPK_ROLE_PATIENT;
    cl.iat = r->now;
    cl.nbf = r->now - 1;
    cl.exp = r->now + r->s->cfg.patient_session_s;
    int rc = spk_random_id(cl.jti, sizeof(cl.jti), 12);
    if (rc != 0) {
        return rc;
    }
    long n = spk_token_sign(r->s->issuer, &cl, out, cap);
    return n < 0 ? (int)n : 0;
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

int sig_h_invite_redeem(sig_req_t *r)
{
    const char *code, *name;
    int rc = sig_get_str(r, "invite", true, 64, &code);
    if (rc == 0) {
        rc = sig_get_str(r, "name", true, 400, &name);
    }
    if (rc == 0 && !valid_name(name)) {
        rc = sig_bad_field(r, "name");
    }
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
    /* The single atomic use decides; everything after it is this patient's. */
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
    snprintf(r->object, sizeof(r->object), "%s", c->rec.id);
    if (c->rec.state != SPK_CONSULT_OPEN) {
        return SPK_ECONSULTENDED;
    }
    spk_participant_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.consult, sizeof(rec.consult), "%s", c->rec.id);
    snprintf(rec.id, sizeof(rec.id), "%s", pid);
    snprintf(rec.sub, sizeof(rec.sub), "%s", pid);
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    rec.role = SPK_ROLE_PATIENT;
    rec.state = SPK_PART_LOBBY;
    rec.joined_at = rec.updated_at = r->now;
    char tok[SPK_TOKEN_MAX_LEN];
    sig_part_t *p;
    rc = spk_store_participant_put(r->s->store, &rec);
    if (rc == 0) {
        rc = sig_part_add(c, &rec, &p);
    }
    if (rc == 0) {
        rc = patient_session_token(r, c, p, tok, sizeof(tok));
    }
    if (rc != 0) {
        return rc;
    }
    /* Authenticate the connection as this patient. */
    spk_token_claims_t *w = &r->c->who;
    memset(w, 0, sizeof(*w));
    snprintf(w->sub, sizeof(w->sub), "%s", pid);
    snprintf(w->name, sizeof(w->name), "%s", rec.name);
    snprintf(w->consult, sizeof(w->consult), "%s", c->rec.id);
    snprintf(w->practice, sizeof(w->practice), "%s", c->rec.practice);
    w->role = SPK_ROLE_PATIENT;
    w->exp = r->now + r->s->cfg.patient_session_s;
    r->c->authed = true;
    rc = sig_join_conn(r->s, r->c, c, p);
    if (rc != 0) {
        return rc;
    }
    r->s->m[SIG_M_INVITES_REDEEMED]++;
    json_object_set_new(r->reply, "consult", json_string(c->rec.id));
    json_object_set_new(r->reply, "participant", sig_part_json(p));
    json_object_set_new(r->reply, "session_token", json_string(tok));
    spk_wipe(tok, sizeof(tok));
    sig_audit(r, 0);
    r->event = NULL; /* audited above, before the lobby event */
    sig_reply_ok(r);
    sig_broadcast_lobby(r->s, c);
    return 0;
}
