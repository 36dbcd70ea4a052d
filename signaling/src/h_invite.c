/* Patient invites: create (the code is shown once), list and revoke. */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"

static const char *invite_state(const spk_invite_rec_t *inv, int64_t now)
{
    if (inv->used_at != 0) {
        return "used";
    }
    if (inv->revoked_at != 0) {
        return "revoked";
    }
    return inv->expires_at <= now ? "expired" : "open";
}

static json_t *invite_json(const spk_invite_rec_t *inv, int64_t now)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id", inv->id, "state",
                     invite_state(inv, now), "created_by", inv->created_by, "created_at",
                     (json_int_t)inv->created_at, "expires_at", (json_int_t)inv->expires_at,
                     "used_at", (json_int_t)inv->used_at, "revoked_at",
                     (json_int_t)inv->revoked_at);
}

int sig_h_invite_create(sig_req_t *r)
{
    sig_consult_t *c;
    int64_t ttl = r->s->cfg.invite_ttl_s;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = sig_get_int(r, "ttl", false, 60, 604800, &ttl);
    }
    if (rc != 0) {
        return rc;
    }
    char code[64];
    spk_invite_rec_t inv;
    rc = spk_store_invite_create(r->s->store, c->rec.id, r->c->who->sub, r->now, ttl, code,
                                 sizeof(code), &inv);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->detail, sizeof(r->detail), "invite %s", inv.id);
    char url[512];
    snprintf(url, sizeof(url), "%s/join#%s", r->s->cfg.public_url, code);
    json_t *o = invite_json(&inv, r->now);
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "code", json_string(code));
    json_object_set_new(r->reply, "invite", o);
    json_object_set_new(r->reply, "consult", sig_consult_json(c, true));
    return 0;
}

static int list_cb(void *ud, const spk_invite_rec_t *inv)
{
    void **a = ud;
    return json_array_append_new(a[0], invite_json(inv, *(const int64_t *)a[1])) == 0 ? 0
                                                                                      : SPK_ENOMEM;
}

int sig_h_invite_list(sig_req_t *r)
{
    sig_consult_t *c;
    int rc = sig_req_consult(r, true, &c);
    if (rc != 0) {
        return rc;
    }
    json_t *arr = json_array();
    void *ud[2] = {arr, &r->now};
    rc = arr != NULL ? spk_store_invite_each(r->s->store, c->rec.id, list_cb, ud) : SPK_ENOMEM;
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    json_object_set_new(r->reply, "invites", arr);
    return 0;
}

int sig_h_invite_revoke(sig_req_t *r)
{
    sig_consult_t *c;
    const char *id;
    int rc = sig_req_consult(r, true, &c);
    if (rc == 0) {
        rc = sig_get_str(r, "invite", true, SPK_INVITE_ID_LEN - 1, &id);
    }
    if (rc != 0) {
        return rc;
    }
    snprintf(r->detail, sizeof(r->detail), "invite %s", id);
    spk_invite_rec_t inv;
    rc = spk_store_invite_revoke(r->s->store, c->rec.id, id, r->now, &inv);
    if (rc == SPK_ENOTFOUND) {
        snprintf(r->why, sizeof(r->why), "no such invite for this consult");
    } else if (rc == SPK_EINVITEUSED || rc == SPK_EINVITEREVOKED) {
        snprintf(r->why, sizeof(r->why), "%s", spk_strerror(rc));
    }
    if (rc != 0) {
        return rc;
    }
    json_object_set_new(r->reply, "invite", invite_json(&inv, r->now));
    return 0;
}
