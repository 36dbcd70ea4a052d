/* The "service" role: a practice system (HIS) or regional platform registered as an integration
 * (spreekctl integration register). It signs its own tokens (iss = sub = the integration's id)
 * with a key registered in the store, acts only for the practices of its registration, and is
 * audited on behalf of the GP each request names. Also: the consult's status for integrations,
 * and console links that open the GP console on a consult (docs/integration.md). */
#include "core_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

/* The "iss" of a compact JWS, read before any verification only to choose the keys. */
static bool token_iss(const char *tok, char *out, size_t cap)
{
    const char *p = strchr(tok, '.');
    const char *q = p != NULL ? strchr(p + 1, '.') : NULL;
    if (q == NULL || (size_t)(q - p - 1) > SPK_TOKEN_MAX_LEN) {
        return false;
    }
    uint8_t buf[SPK_TOKEN_MAX_LEN];
    long n = spk_b64url_decode(buf, sizeof(buf), p + 1, (size_t)(q - p - 1));
    if (n <= 0) {
        return false;
    }
    json_t *o = json_loadb((const char *)buf, (size_t)n, 0, NULL);
    const char *iss = json_string_value(json_object_get(o, "iss"));
    bool ok = iss != NULL && strlen(iss) < cap;
    if (ok) {
        memcpy(out, iss, strlen(iss) + 1);
    }
    json_decref(o);
    return ok;
}

typedef struct {
    spk_keyring_t *kr;
    int64_t now;
} keys_t;

static int add_key_cb(void *ud, const spk_integration_key_rec_t *k)
{
    keys_t *ks = ud;
    if (k->retired_at != 0 && k->retired_at <= ks->now) {
        return 0; /* retired (a rotated key verifies until the end of its grace period) */
    }
    int rc = spk_keyring_add(ks->kr, k->integration, k->kid, k->pub);
    return rc == SPK_ERANGE ? 0 : rc; /* more than a keyring holds: the newest are left out */
}

int sig_service_verify(sig_req_t *r, const char *tok, spk_token_claims_t *cl)
{
    char iss[SPK_ID_LEN];
    spk_integration_rec_t in;
    memset(cl, 0, sizeof(*cl));
    if (!token_iss(tok, iss, sizeof(iss))) {
        return SPK_ENOTFOUND;
    }
    int rc = spk_store_integration_get(r->s->store, iss, &in);
    if (rc != 0) {
        return rc == SPK_ENOTFOUND ? SPK_ENOTFOUND : rc;
    }
    if (in.revoked_at != 0) {
        snprintf(r->why, sizeof(r->why), "integration %s has been revoked", in.id);
        return SPK_ETOKENREVOKED;
    }
    spk_keyring_t *kr = NULL;
    rc = spk_keyring_new(&kr);
    keys_t ks = {kr, r->now};
    if (rc == 0) {
        rc = spk_store_integration_key_each(r->s->store, in.id, add_key_cb, &ks);
    }
    if (rc == 0) {
        const spk_token_policy_t pol = {.audience = r->s->cfg.token_audience,
                                        .max_lifetime_s = r->s->cfg.token_max_lifetime_s};
        rc = spk_token_verify_policy(kr, tok, strlen(tok), r->now, r->s->cfg.token_leeway_s, &pol,
                                     cl, r->why, sizeof(r->why));
    }
    spk_keyring_free(kr);
    if (rc == 0 && (cl->role != SPK_ROLE_SERVICE || strcmp(cl->sub, in.id) != 0)) {
        snprintf(r->why, sizeof(r->why), "an integration's token has role service and sub %s",
                 in.id);
        rc = SPK_ETOKENINVALID;
    }
    if (rc == 0) {
        /* The practices come from the registration, which each request is checked against
         * (sig_service_rel; never a copy, so a long list is never cut); the token's claim is
         * not used. The connection's own practice is the registration's only one, or "" for
         * an integration of several practices: its requests name the practice. */
        cl->practice[0] = '\0';
        size_t plen = strlen(in.practices);
        if (strchr(in.practices, ',') == NULL && plen < sizeof(cl->practice)) {
            memcpy(cl->practice, in.practices, plen + 1);
        }
        if (cl->name[0] == '\0') {
            snprintf(cl->name, sizeof(cl->name), "%s", in.name);
        }
    }
    return rc;
}

int sig_service_rel(sig_req_t *r, const char *practice, const char *default_gp)
{
    const spk_token_claims_t *w = r->c->who;
    snprintf(r->practice, sizeof(r->practice), "%s", practice);
    spk_integration_rec_t in;
    int rc = spk_store_integration_get(r->s->store, w->sub, &in);
    if (rc == SPK_ENOTFOUND || (rc == 0 && in.revoked_at != 0)) {
        snprintf(r->why, sizeof(r->why), "integration %.60s is no longer registered", w->sub);
        return SPK_EFORBIDDEN;
    }
    if (rc != 0) {
        return rc;
    }
    if (!spk_integration_acts_for(&in, practice)) {
        snprintf(r->why, sizeof(r->why), "integration %s does not act for practice %s", in.id,
                 practice);
        return SPK_EFORBIDDEN;
    }
    const char *gp = NULL;
    rc = sig_get_str(r, "gp", false, SPK_SUB_LEN - 1, &gp);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s",
             gp != NULL ? gp : (default_gp != NULL ? default_gp : practice));
    return 0;
}

bool sig_console_session(const spk_sig_t *s, const spk_token_claims_t *cl)
{
    return cl->role == SPK_ROLE_GP && cl->consult[0] != '\0' &&
           strcmp(cl->iss, s->issuer->iss) == 0;
}

/* ---- status ---- */

void sig_consult_status(const sig_consult_t *c, json_t *o)
{
    const char *status = "planned";
    int64_t waiting_since = 0;
    int waiting = 0;
    for (size_t i = 0; i < c->n_parts; i++) {
        const sig_part_t *p = c->parts[i];
        if (p->rec.role == SPK_ROLE_PATIENT && p->rec.state == SPK_PART_LOBBY && p->online > 0) {
            waiting++;
            if (waiting_since == 0 || p->rec.updated_at < waiting_since) {
                waiting_since = p->rec.updated_at;
            }
        }
    }
    if (c->rec.state == SPK_CONSULT_ENDED) {
        status = "ended";
    } else if (c->rec.started_at != 0) {
        status = "in_progress";
    } else if (waiting > 0) {
        status = "waiting";
    }
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "planned_at", json_integer(c->rec.planned_at));
    json_object_set_new(o, "planned_end", json_integer(c->rec.planned_end));
    json_object_set_new(o, "started_at", json_integer(c->rec.started_at));
    json_object_set_new(o, "waiting", json_integer(waiting));
    json_object_set_new(o, "waiting_since", json_integer(waiting_since));
}

/* ---- console links ---- */

int sig_h_console_link(sig_req_t *r)
{
    sig_consult_t *c;
    const char *gp = NULL, *name = NULL;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = sig_get_str(r, "gp", false, SPK_SUB_LEN - 1, &gp);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "name", false, SPK_SUB_LEN - 1, &name);
    }
    if (rc != 0) {
        return rc;
    }
    spk_console_link_rec_t l;
    memset(&l, 0, sizeof(l));
    snprintf(l.consult, sizeof(l.consult), "%s", c->rec.id);
    snprintf(l.practice, sizeof(l.practice), "%s", c->rec.practice);
    snprintf(l.gp, sizeof(l.gp), "%s", gp != NULL ? gp : c->rec.gp);
    snprintf(l.name, sizeof(l.name), "%s", name != NULL ? name : l.gp);
    snprintf(l.integration, sizeof(l.integration), "%.*s", (int)sizeof(l.integration) - 1,
             r->c->who->sub);
    l.created_at = r->now;
    l.expires_at = r->now + r->s->cfg.console_link_ttl_s;
    char code[32];
    rc = spk_store_console_link_create(r->s->store, &l, code, sizeof(code));
    if (rc != 0) {
        return rc;
    }
    snprintf(r->detail, sizeof(r->detail), "console link for %s, expires %lld", l.gp,
             (long long)l.expires_at);
    char url[SPK_URL_LEN + 128];
    snprintf(url, sizeof(url), "%s/console#link=%s&consult=%s", r->s->cfg.public_url, code,
             c->rec.id);
    spk_wipe(code, sizeof(code));
    json_object_set_new(r->reply, "link",
                        json_pack("{s:s, s:s, s:s, s:I}", "url", url, "consult", c->rec.id, "gp",
                                  l.gp, "expires_at", (json_int_t)l.expires_at));
    spk_wipe(url, sizeof(url));
    return 0;
}

int sig_h_console_redeem(sig_req_t *r)
{
    const char *code;
    int rc = sig_get_str(r, "link", true, 64, &code);
    if (rc != 0) {
        return rc;
    }
    uint8_t h[32];
    spk_store_invite_hash(code, strlen(code), h);
    spk_console_link_rec_t l;
    rc = spk_store_console_link_use(r->s->store, h, r->now, &l);
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "console link: %s", spk_strerror(rc));
        return rc;
    }
    snprintf(r->practice, sizeof(r->practice), "%s", l.practice);
    snprintf(r->object, sizeof(r->object), "%s", l.consult);
    snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", l.gp);
    snprintf(r->detail, sizeof(r->detail), "console link of integration %s", l.integration);
    /* The GP's session: a GP token of the own issuer bound to the consult it was opened on. */
    spk_token_claims_t cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", l.gp);
    snprintf(cl.name, sizeof(cl.name), "%s", l.name);
    snprintf(cl.practice, sizeof(cl.practice), "%s", l.practice);
    snprintf(cl.consult, sizeof(cl.consult), "%s", l.consult);
    cl.role = SPK_ROLE_GP;
    char tok[SPK_TOKEN_MAX_LEN];
    rc = sig_session_start(r, &cl, tok, sizeof(tok));
    if (rc == 0) {
        json_object_set_new(r->reply, "user",
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "sub", cl.sub, "iss",
                                      cl.iss, "name", cl.name, "role", "gp", "practice",
                                      cl.practice, "acts_for", "", "consult", cl.consult));
        json_object_set_new(r->reply, "consult", json_string(l.consult));
        json_object_set_new(r->reply, "session_token", json_string(tok));
        json_object_set_new(r->reply, "expires_at", json_integer(cl.exp));
    }
    spk_wipe(tok, sizeof(tok));
    spk_wipe(&cl, sizeof(cl));
    return rc;
}
