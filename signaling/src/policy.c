/* The role x action matrix (docs/roles.md) and the relationship checks behind it. */
#include "core_int.h"

#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"

#define P SIG_ROLE_BIT(SPK_ROLE_PATIENT)
#define G SIG_ROLE_BIT(SPK_ROLE_GP)
#define A SIG_ROLE_BIT(SPK_ROLE_ASSISTANT)
#define R SIG_ROLE_BIT(SPK_ROLE_REMOTE_GP)
#define S SIG_ROLE_BIT(SPK_ROLE_SPECIALIST)
#define T SIG_ROLE_BIT(SPK_ROLE_PARTNER)
#define D SIG_ROLE_BIT(SPK_ROLE_ADMIN)
#define V SIG_ROLE_BIT(SPK_ROLE_SERVICE)
#define ALL (P | G | A | R | S | T | D | V)

/* Must match docs/roles.md row for row (tests/integration/signaling walks both). */
static const sig_action_t g_actions[] = {
    {"ping", ALL, true, NULL, sig_h_ping},
    {"auth", 0, true, "auth.login", sig_h_auth},
    {"invite.redeem", 0, true, "invite.use", sig_h_invite_redeem},
    {"consult.create", G | A | R | V, false, "consult.create", sig_h_consult_create},
    {"consult.list", G | A | R | V, false, "consult.list", sig_h_consult_list},
    {"consult.get", P | G | A | R | S | V, false, "consult.read", sig_h_consult_get},
    {"consult.join", P | G | A | R | S, false, "consult.join", sig_h_consult_join},
    {"consult.leave", P | G | A | R | S, false, "consult.leave", sig_h_consult_leave},
    {"consult.end", G | A | R | V, false, "consult.end", sig_h_consult_end},
    {"invite.create", G | A | R | V, false, "invite.create", sig_h_invite_create},
    {"invite.list", G | A | R | V, false, "invite.list", sig_h_invite_list},
    {"invite.revoke", G | A | R | V, false, "invite.revoke", sig_h_invite_revoke},
    {"lobby.list", G | A | R, false, "lobby.list", sig_h_lobby_list},
    {"lobby.admit", G | A | R, false, "consult.admit", sig_h_lobby_admit},
    {"lobby.deny", G | A | R, false, "consult.deny", sig_h_lobby_deny},
    {"lobby.send_back", G | A | R, false, "consult.send_back", sig_h_lobby_send_back},
    {"identity.record", G | A | R, false, "identity.check", sig_h_identity_record},
    {"speak_freely.record", G | R, false, "speak_freely.record", sig_h_speak_freely_record},
    {"consent.record", G | R, false, "consent.record", sig_h_consent_record},
    {"specialist.invite", G | R, false, "specialist.invite", sig_h_specialist_invite},
    {"delegation.grant", G | D, false, "delegation.grant", sig_h_delegation_grant},
    {"delegation.revoke", G | D, false, "delegation.revoke", sig_h_delegation_revoke},
    {"delegation.list", G | R | D, false, "delegation.list", sig_h_delegation_list},
    {"audit.read", D, false, "audit.read", sig_h_audit_read},
    /* Media set-up is not audited per message (candidates trickle); joining the consult is. */
    {"media.publish", P | G | A | R | S, false, NULL, sig_h_media_publish},
    {"media.subscribe", P | G | A | R | S, false, NULL, sig_h_media_subscribe},
    {"media.answer", P | G | A | R | S, false, NULL, sig_h_media_answer},
    {"media.candidate", P | G | A | R | S, false, NULL, sig_h_media_candidate},
    {"media.stop", P | G | A | R | S, false, NULL, sig_h_media_stop},
    /* The MLS delivery service (docs/chat.md): members only; an admin never reads content.
     * Who may be in which conversation is decided per conversation (chat_model.c). */
    {"chat.device", P | G | A | R | S | T, false, NULL, sig_h_chat_device},
    {"chat.create", G | A | R, false, "chat.create", sig_h_chat_create},
    {"chat.list", P | G | A | R | S | T, false, "chat.list", sig_h_chat_list},
    {"chat.get", P | G | A | R | S | T, false, "chat.open", sig_h_chat_get},
    {"chat.members.add", G | A | R, false, "chat.member.add", sig_h_chat_members_add},
    {"chat.members.remove", P | G | A | R | S | T, false, "chat.member.remove",
     sig_h_chat_members_remove},
    {"chat.send", P | G | A | R | S | T, false, NULL, sig_h_chat_send},
    {"chat.sync", P | G | A | R | S | T, false, "chat.sync", sig_h_chat_sync},
    {"chat.ack", P | G | A | R | S | T, false, NULL, sig_h_chat_ack},
    {"chat.file.upload", P | G | A | R | S | T, false, "chat.file.upload", sig_h_chat_file_upload},
    {"chat.file.download", P | G | A | R | S | T, false, "chat.file.download",
     sig_h_chat_file_download},
    {"mls.key_packages.upload", P | G | A | R | S | T, false, NULL, sig_h_mls_kp_upload},
    {"mls.key_packages.status", P | G | A | R | S | T, false, NULL, sig_h_mls_kp_status},
    {"mls.key_packages.claim", P | G | A | R | S | T, false, NULL, sig_h_mls_kp_claim},
    {"mls.group.create", P | G | A | R | S | T, false, "chat.group.create", sig_h_mls_group_create},
    {"mls.commit", P | G | A | R | S | T, false, "chat.group.change", sig_h_mls_commit},
    {"mls.proposal", P | G | A | R | S | T, false, NULL, sig_h_mls_proposal},
    /* Practice system integrations (service.c, docs/integration.md). */
    {"console.link", V, false, "console.link", sig_h_console_link},
    {"console.redeem", 0, true, "console.link.use", sig_h_console_redeem},
};

_Static_assert(sizeof(g_actions) / sizeof(g_actions[0]) == SIG_N_ACTIONS,
               "SIG_N_ACTIONS must match the action table");

#undef P
#undef G
#undef A
#undef R
#undef S
#undef T
#undef D
#undef V
#undef ALL

/* "gp,assistant" -> role bits; false for an unknown role name. */
static bool parse_roles(const char *list, unsigned *out)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    *out = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        spk_role_t r = spk_role_parse(t);
        if (r == SPK_ROLE_NONE) {
            return false;
        }
        *out |= SIG_ROLE_BIT(r);
    }
    return true;
}

int sig_issuers_init(spk_sig_t *s)
{
    unsigned all = 0;
    for (int r = SPK_ROLE_NONE + 1; r < SPK_ROLE_COUNT; r++) {
        all |= SIG_ROLE_BIT(r);
    }
    /* The own issuer: every role for the embedded default; only patient session tokens once
     * an identity provider is configured (unless configured otherwise). */
    sig_issuer_t *own = &s->issuers[0];
    snprintf(own->iss, sizeof(own->iss), "%s", s->issuer->iss);
    const char *own_roles = s->cfg.own_issuer_roles;
    if (own_roles[0] == '\0') {
        own->roles = s->cfg.n_issuers == 0 ? all : SIG_ROLE_BIT(SPK_ROLE_PATIENT);
    } else if (!parse_roles(own_roles, &own->roles)) {
        spk_error(0, "own_issuer_roles: unknown role in \"%s\"", own_roles);
        return SPK_ECONFIG;
    }
    s->n_issuers = 1;
    for (int i = 0; i < s->cfg.n_issuers; i++) {
        sig_issuer_t *e = &s->issuers[s->n_issuers++];
        const char *line = s->cfg.issuers[i];
        size_t n = strcspn(line, " ");
        snprintf(e->iss, sizeof(e->iss), "%.*s", (int)n, line);
        const char *roles = strstr(line, " roles=");
        e->roles = all;
        if (roles != NULL && !parse_roles(roles + 7, &e->roles)) {
            spk_error(0, "issuer %s: unknown role in \"%s\"", e->iss, roles + 7);
            return SPK_ECONFIG;
        }
    }
    return 0;
}

bool sig_issuer_allows(const spk_sig_t *s, const char *iss, spk_role_t role)
{
    /* An issuer may appear more than once (several keys): any entry allowing the role counts. */
    for (int i = 0; i < s->n_issuers; i++) {
        if (strcmp(s->issuers[i].iss, iss) == 0 && (s->issuers[i].roles & SIG_ROLE_BIT(role))) {
            return true;
        }
    }
    return false;
}

const sig_action_t *sig_action_find(const char *type, int *index)
{
    for (size_t i = 0; i < sizeof(g_actions) / sizeof(g_actions[0]); i++) {
        if (strcmp(g_actions[i].type, type) == 0) {
            if (index != NULL) {
                *index = (int)i;
            }
            return &g_actions[i];
        }
    }
    return NULL;
}

const sig_action_t *sig_action_at(int i)
{
    if (i < 0 || i >= SIG_N_ACTIONS) {
        return NULL;
    }
    return &g_actions[i];
}

bool sig_role_allows(const sig_action_t *a, spk_role_t role)
{
    return (a->roles & SIG_ROLE_BIT(role)) != 0;
}

bool sig_is_staff(spk_role_t role)
{
    return role == SPK_ROLE_GP || role == SPK_ROLE_ASSISTANT || role == SPK_ROLE_REMOTE_GP;
}

/* May the caller act for `practice` (create or list its consults, manage its delegations)? */
static int rel_practice(sig_req_t *r, const char *practice);

int sig_rel_practice(sig_req_t *r, const char *practice)
{
    return sig_rel_practice_in(r, practice, NULL);
}

/* A staff session with a `consult` claim (a console link's) is bound to that consult: it acts
 * on the consult and its conversations, never on anything practice-wide or on another consult.
 * consult: what the request is about, NULL for the practice as a whole. */
int sig_rel_practice_in(sig_req_t *r, const char *practice, const char *consult)
{
    const spk_token_claims_t *w = r->c->who;
    if (sig_is_staff(w->role) && w->consult[0] != '\0' &&
        (consult == NULL || strcmp(w->consult, consult) != 0)) {
        snprintf(r->practice, sizeof(r->practice), "%s", practice);
        snprintf(r->why, sizeof(r->why), "this session is for consult %.100s only", w->consult);
        return SPK_EFORBIDDEN;
    }
    return rel_practice(r, practice);
}

static int rel_practice(sig_req_t *r, const char *practice)
{
    const spk_token_claims_t *w = r->c->who;
    snprintf(r->practice, sizeof(r->practice), "%s", practice);
    switch (w->role) {
    case SPK_ROLE_GP:
    case SPK_ROLE_ADMIN:
        return strcmp(w->practice, practice) == 0 ? 0 : SPK_EFORBIDDEN;
    case SPK_ROLE_ASSISTANT:
        if (w->acts_for[0] == '\0') {
            snprintf(r->why, sizeof(r->why), "assistant token names no GP to act for");
            return SPK_EFORBIDDEN;
        }
        snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", w->acts_for);
        return strcmp(w->practice, practice) == 0 ? 0 : SPK_EFORBIDDEN;
    case SPK_ROLE_REMOTE_GP: {
        spk_delegation_rec_t d;
        int rc =
            spk_store_delegation_find_active(r->s->store, practice, w->iss, w->sub, r->now, &d);
        if (rc == SPK_ENOTFOUND) {
            snprintf(r->why, sizeof(r->why), "no active delegation from %s", practice);
            return SPK_EFORBIDDEN;
        }
        if (rc != 0) {
            return rc;
        }
        snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", practice);
        snprintf(r->detail, sizeof(r->detail), "delegation %s", d.id);
        snprintf(r->delegation, sizeof(r->delegation), "%s", d.id);
        r->delegation_until = d.valid_until;
        if (strcmp(r->c->delegation_used, d.id) != 0) {
            /* The first use of a delegation on a connection is an audit event of its own. */
            const sig_audit_ev_t ev = {.who = w,
                                       .remote = r->c->remote,
                                       .event = "delegation.use",
                                       .on_behalf_of = practice,
                                       .practice = practice,
                                       .object = d.id,
                                       .detail = r->detail};
            rc = sig_audit_write(r->s, &ev);
            if (rc != 0) {
                return SPK_EIO;
            }
            snprintf(r->c->delegation_used, sizeof(r->c->delegation_used), "%s", d.id);
        }
        return 0;
    }
    case SPK_ROLE_SERVICE:
        return sig_service_rel(r, practice, NULL);
    default:
        return SPK_EFORBIDDEN;
    }
}

/* May the caller act on consult `c`? Sets the audit's patient and object as a side effect. */
int sig_rel_consult(sig_req_t *r, sig_consult_t *c)
{
    const spk_token_claims_t *w = r->c->who;
    snprintf(r->patient, sizeof(r->patient), "%s", c->rec.patient);
    snprintf(r->object, sizeof(r->object), "%s", c->rec.id);
    snprintf(r->practice, sizeof(r->practice), "%s", c->rec.practice);
    switch (w->role) {
    case SPK_ROLE_GP:
    case SPK_ROLE_ASSISTANT:
    case SPK_ROLE_REMOTE_GP:
        return sig_rel_practice_in(r, c->rec.practice, c->rec.id);
    case SPK_ROLE_SERVICE:
        return sig_service_rel(r, c->rec.practice, c->rec.gp);
    case SPK_ROLE_SPECIALIST: {
        int rc = sig_specialist_invited(r->s, c, w->iss, w->sub);
        if (rc == SPK_EFORBIDDEN) {
            snprintf(r->why, sizeof(r->why),
                     "specialist not invited to this consult, or the patient's consent was "
                     "withdrawn");
        }
        return rc;
    }
    case SPK_ROLE_PATIENT: {
        if (strcmp(w->consult, c->rec.id) != 0) {
            return SPK_EFORBIDDEN;
        }
        /* The participant its session was made for: the same issuer, not only the same id. */
        sig_part_t *p = sig_part_find_sub(c, w->iss, w->sub);
        if (p == NULL || p->rec.state == SPK_PART_DENIED) {
            return SPK_EFORBIDDEN;
        }
        return 0;
    }
    default:
        return SPK_EFORBIDDEN;
    }
}

int sig_specialist_invited(spk_sig_t *s, const sig_consult_t *c, const char *iss, const char *sub)
{
    spk_fact_rec_t f;
    int rc = spk_store_fact_get(s->store, c->rec.id, "specialist", iss, sub, &f);
    if (rc == 0 && strncmp(f.value, "withdrawn:", 10) == 0) {
        rc = SPK_ENOTFOUND;
    }
    if (rc == 0) {
        rc = spk_store_fact_get(s->store, c->rec.id, "consent", NULL, "meekijkconsult", &f);
        if (rc == 0 && strncmp(f.value, "given:", 6) != 0) {
            rc = SPK_ENOTFOUND;
        }
    }
    return rc == SPK_ENOTFOUND ? SPK_EFORBIDDEN : rc;
}

int sig_req_consult(sig_req_t *r, bool require_open, sig_consult_t **out)
{
    const char *id;
    int rc = sig_get_str(r, "consult", true, SPK_ID_LEN - 1, &id);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->object, sizeof(r->object), "%s", id);
    sig_consult_t *c;
    rc = sig_consult_lookup(r->s, id, &c);
    if (rc != 0) {
        return rc;
    }
    rc = sig_rel_consult(r, c);
    if (rc != 0) {
        return rc;
    }
    if (require_open && c->rec.state != SPK_CONSULT_OPEN) {
        return SPK_ECONSULTENDED;
    }
    *out = c;
    return 0;
}
