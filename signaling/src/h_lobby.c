/* Lobby actions and the facts recorded in a consult: identity check, speaking freely, consent,
 * specialist invitations (meekijkconsult). */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/text.h"

int sig_h_lobby_list(sig_req_t *r)
{
    sig_consult_t *c;
    int rc = sig_req_consult(r, true, &c);
    if (rc != 0) {
        return rc;
    }
    json_object_set_new(r->reply, "lobby", sig_lobby_json(c));
    return 0;
}

/* The consult and the patient participant a lobby action is about. */
static int req_patient(sig_req_t *r, sig_consult_t **c, sig_part_t **p)
{
    const char *pid;
    int rc = sig_req_consult(r, true, c);
    if (rc == 0) {
        rc = sig_get_str(r, "participant", true, SPK_ID_LEN - 1, &pid);
    }
    if (rc != 0) {
        return rc;
    }
    *p = sig_part_find(*c, pid);
    if (*p == NULL) {
        snprintf(r->why, sizeof(r->why), "no such participant in this consult");
        return SPK_ENOTFOUND;
    }
    snprintf(r->detail, sizeof(r->detail), "participant %s", pid);
    return 0;
}

int sig_h_lobby_admit(sig_req_t *r)
{
    sig_consult_t *c;
    sig_part_t *p;
    int rc = req_patient(r, &c, &p);
    if (rc != 0) {
        return rc;
    }
    if (p->rec.state != SPK_PART_LOBBY) {
        snprintf(r->why, sizeof(r->why), "participant is not in the lobby");
        return SPK_ESTATE;
    }
    rc = sig_part_commit(r, p, SPK_PART_ADMITTED);
    if (rc != 0) {
        return rc;
    }
    r->s->m[SIG_M_ADMITTED]++;
    json_object_set_new(r->reply, "participant", sig_part_json(p));
    sig_reply_ok(r);
    sig_send_to_part(r->s, c, p,
                     json_pack("{s:s, s:s, s:o}", "type", "admitted", "consult", c->rec.id,
                               "participant", sig_part_json(p)));
    sig_broadcast_lobby(r->s, c);
    sig_broadcast_roster(r->s, c);
    sig_media_consult_changed(r->s, c);
    return 0;
}

int sig_h_lobby_deny(sig_req_t *r)
{
    sig_consult_t *c;
    sig_part_t *p;
    const char *reason = NULL;
    int rc = req_patient(r, &c, &p);
    if (rc == 0) {
        rc = sig_get_str(r, "reason", false, 200, &reason);
    }
    if (rc != 0) {
        return rc;
    }
    if (p->rec.state != SPK_PART_LOBBY) {
        snprintf(r->why, sizeof(r->why), "participant is not in the lobby");
        return SPK_ESTATE;
    }
    rc = sig_part_commit(r, p, SPK_PART_DENIED);
    if (rc != 0) {
        return rc;
    }
    sig_reply_ok(r);
    sig_send_to_part(r->s, c, p,
                     json_pack("{s:s, s:s, s:s}", "type", "denied", "consult", c->rec.id, "reason",
                               reason != NULL ? reason : ""));
    /* The denied patient's connections leave the consult. */
    for (size_t i = c->n_conns; i-- > 0;) {
        sig_conn_t *conn = spk_map_get_u64(&r->s->conns, c->conns[i]);
        for (int j = 0; conn != NULL && j < conn->n_joined; j++) {
            if (conn->joined[j].part == p) {
                sig_unjoin_conn(r->s, conn, c, false);
                break;
            }
        }
    }
    sig_broadcast_lobby(r->s, c);
    sig_broadcast_roster(r->s, c); /* staff's roster listed the patient while waiting */
    return 0;
}

int sig_h_lobby_send_back(sig_req_t *r)
{
    sig_consult_t *c;
    sig_part_t *p;
    int rc = req_patient(r, &c, &p);
    if (rc != 0) {
        return rc;
    }
    if (p->rec.state != SPK_PART_ADMITTED || p->rec.role != SPK_ROLE_PATIENT) {
        snprintf(r->why, sizeof(r->why), "participant is not an admitted patient");
        return SPK_ESTATE;
    }
    rc = sig_part_commit(r, p, SPK_PART_LOBBY);
    if (rc != 0) {
        return rc;
    }
    sig_reply_ok(r);
    sig_send_to_part(r->s, c, p,
                     json_pack("{s:s, s:s}", "type", "sent_back", "consult", c->rec.id));
    sig_broadcast_roster(r->s, c);
    sig_broadcast_lobby(r->s, c);
    sig_media_consult_changed(r->s, c);
    return 0;
}

static void fact_init(sig_req_t *r, sig_consult_t *c, spk_fact_rec_t *f, const char *kind,
                      const char *subject_iss, const char *subject, const char *value)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->consult, sizeof(f->consult), "%s", c->rec.id);
    snprintf(f->kind, sizeof(f->kind), "%s", kind);
    snprintf(f->subject_iss, sizeof(f->subject_iss), "%s", subject_iss);
    snprintf(f->subject, sizeof(f->subject), "%s", subject);
    snprintf(f->value, sizeof(f->value), "%s", value);
    snprintf(f->recorded_by, sizeof(f->recorded_by), "%s", r->c->who->sub);
    f->at = r->now;
}

/* Stores a fact, commits, and answers with it; staff joined to the consult get
 * consult.facts. */
static int put_fact(sig_req_t *r, sig_consult_t *c, const char *kind, const char *subject_iss,
                    const char *subject, const char *value)
{
    spk_fact_rec_t f;
    fact_init(r, c, &f, kind, subject_iss, subject, value);
    snprintf(r->detail, sizeof(r->detail), "%s %s=%s", kind, subject, value);
    int rc = spk_store_fact_put(r->s->store, &f);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        return rc;
    }
    json_object_set_new(r->reply, "fact", sig_fact_json(&f));
    sig_chat_access_changed(r->s); /* consent and specialists decide chat membership too */
    sig_reply_ok(r);
    sig_broadcast_facts(r->s, c);
    return 0;
}

static bool one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (strcmp(v, *set) == 0) {
            return true;
        }
    }
    return false;
}

int sig_h_identity_record(sig_req_t *r)
{
    static const char *const methods[] = {"id_document", "known_to_caregiver", "digid", "other",
                                          NULL};
    sig_consult_t *c;
    sig_part_t *p;
    const char *method;
    bool verified;
    int rc = req_patient(r, &c, &p);
    if (rc == 0) {
        rc = sig_get_str(r, "method", true, 32, &method);
    }
    if (rc == 0 && !one_of(method, methods)) {
        rc = sig_bad_field(r, "method");
    }
    if (rc == 0) {
        rc = sig_get_bool(r, "verified", &verified);
    }
    if (rc != 0) {
        return rc;
    }
    char value[64];
    snprintf(value, sizeof(value), "%s:%s", verified ? "verified" : "not_verified", method);
    return put_fact(r, c, "identity_check", "", p->rec.id, value);
}

int sig_h_speak_freely_record(sig_req_t *r)
{
    sig_consult_t *c;
    sig_part_t *p;
    bool confirmed;
    int rc = req_patient(r, &c, &p);
    if (rc == 0) {
        rc = sig_get_bool(r, "confirmed", &confirmed);
    }
    if (rc != 0) {
        return rc;
    }
    return put_fact(r, c, "speak_freely", "", p->rec.id, confirmed ? "yes" : "no");
}

/* Marks an invited specialist's invitation withdrawn (value "withdrawn:<name>"). */
static int withdraw_cb(void *ud, const spk_fact_rec_t *f)
{
    sig_req_t *r = ud;
    if (strcmp(f->kind, "specialist") != 0 || strncmp(f->value, "withdrawn:", 10) == 0) {
        return 0;
    }
    spk_fact_rec_t w = *f;
    char v[sizeof(w.value)];
    snprintf(v, sizeof(v), "withdrawn:%.100s", f->value);
    spk_utf8_copy(w.value, sizeof(w.value), v); /* the cut may fall inside a character */
    snprintf(w.recorded_by, sizeof(w.recorded_by), "%s", r->c->who->sub);
    w.at = r->now;
    return spk_store_fact_put(r->s->store, &w);
}

int sig_h_consent_record(sig_req_t *r)
{
    static const char *const scopes[] = {"meekijkconsult", NULL};
    static const char *const methods[] = {"verbal", "written", "in_app", NULL};
    sig_consult_t *c;
    const char *scope, *method;
    bool given;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = sig_get_str(r, "scope", true, 32, &scope);
    }
    if (rc == 0 && !one_of(scope, scopes)) {
        rc = sig_bad_field(r, "scope");
    }
    if (rc == 0) {
        rc = sig_get_bool(r, "given", &given);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "method", true, 32, &method);
    }
    if (rc == 0 && !one_of(method, methods)) {
        rc = sig_bad_field(r, "method");
    }
    if (rc != 0) {
        return rc;
    }
    char value[64];
    snprintf(value, sizeof(value), "%s:%s", given ? "given" : "refused", method);
    if (!given) {
        /* Withdrawing consent ends every specialist invitation of the consult, in the same
         * transaction: they can no longer join, and present ones are removed below. */
        rc = spk_store_fact_each(r->s->store, c->rec.id, withdraw_cb, r);
        if (rc != 0) {
            return rc;
        }
    }
    rc = put_fact(r, c, "consent", "", scope, value);
    if (rc == 0 && !given) {
        sig_access_consent_withdrawn(r->s, c);
    }
    return rc;
}

int sig_h_specialist_invite(sig_req_t *r)
{
    sig_consult_t *c;
    const char *spec, *name, *iss;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = sig_get_str(r, "specialist", true, SPK_SUB_LEN - 1, &spec);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "issuer", false, SPK_SUB_LEN - 1, &iss);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "name", false, SPK_SUB_LEN - 1, &name);
    }
    if (rc != 0) {
        return rc;
    }
    if (iss == NULL) {
        iss = r->c->who->iss; /* the same identity provider as the inviting GP */
    }
    spk_fact_rec_t consent;
    rc = spk_store_fact_get(r->s->store, c->rec.id, "consent", NULL, "meekijkconsult", &consent);
    if (rc == SPK_ENOTFOUND || (rc == 0 && strncmp(consent.value, "given:", 6) != 0)) {
        snprintf(r->why, sizeof(r->why),
                 "the patient's consent to a meekijkconsult is not "
                 "recorded");
        return SPK_ECONSENT;
    }
    if (rc != 0) {
        return rc;
    }
    rc = put_fact(r, c, "specialist", iss, spec, name != NULL ? name : spec);
    if (rc != 0) {
        return rc;
    }
    /* Tell the specialist if they are connected (to any node). */
    json_t *m = json_pack("{s:s, s:s, s:s}", "type", "specialist.invited", "consult", c->rec.id,
                          "by", r->c->who->name);
    if (m != NULL) {
        sig_send_to_user(r->s, SPK_ROLE_SPECIALIST, iss, spec, m);
    }
    return 0;
}
