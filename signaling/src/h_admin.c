/* Delegation to remote GPs and reading the audit log. */
#include "core_int.h"

#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"

#define MAX_DELEGATION_S (90 * 86400)

static json_t *delegation_json(const spk_delegation_rec_t *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", d->id, "practice",
                     d->practice, "remote_gp", d->grantee, "remote_gp_issuer", d->grantee_iss,
                     "granted_by", d->granted_by, "valid_from", (json_int_t)d->valid_from,
                     "valid_until", (json_int_t)d->valid_until, "revoked_at",
                     (json_int_t)d->revoked_at);
}

int sig_h_delegation_grant(sig_req_t *r)
{
    const spk_token_claims_t *w = r->c->who;
    const char *grantee, *grantee_iss;
    int64_t from = r->now, until = 0;
    int rc = sig_get_str(r, "remote_gp", true, SPK_SUB_LEN - 1, &grantee);
    if (rc == 0) {
        rc = sig_get_str(r, "remote_gp_issuer", false, SPK_SUB_LEN - 1, &grantee_iss);
    }
    if (rc == 0) {
        rc = sig_get_int(r, "valid_from", false, r->now - 86400, r->now + MAX_DELEGATION_S, &from);
    }
    if (rc == 0) {
        rc = sig_get_int(r, "valid_until", true, r->now + 1, r->now + MAX_DELEGATION_S, &until);
    }
    if (rc == 0 && until <= from) {
        rc = sig_bad_field(r, "valid_until");
    }
    if (rc == 0) {
        rc = sig_rel_practice(r, w->practice);
    }
    if (rc != 0) {
        return rc;
    }
    spk_delegation_rec_t d;
    memset(&d, 0, sizeof(d));
    memcpy(d.id, "d_", 2);
    rc = spk_random_id(d.id + 2, sizeof(d.id) - 2, 12);
    if (rc != 0) {
        return rc;
    }
    snprintf(d.practice, sizeof(d.practice), "%s", w->practice);
    snprintf(d.grantee, sizeof(d.grantee), "%s", grantee);
    snprintf(d.grantee_iss, sizeof(d.grantee_iss), "%s",
             grantee_iss != NULL ? grantee_iss : w->iss);
    snprintf(d.granted_by, sizeof(d.granted_by), "%s", w->sub);
    d.created_at = r->now;
    d.valid_from = from;
    d.valid_until = until;
    rc = spk_store_delegation_insert(r->s->store, &d);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->object, sizeof(r->object), "%s", d.id);
    snprintf(r->detail, sizeof(r->detail), "remote_gp %s until %lld", grantee, (long long)until);
    json_object_set_new(r->reply, "delegation", delegation_json(&d));
    sig_chat_access_changed(r->s);
    return 0;
}

int sig_h_delegation_revoke(sig_req_t *r)
{
    const char *id;
    int rc = sig_get_str(r, "delegation", true, SPK_ID_LEN - 1, &id);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->object, sizeof(r->object), "%s", id);
    spk_delegation_rec_t d;
    rc = spk_store_delegation_get(r->s->store, id, &d);
    if (rc == 0) {
        rc = sig_rel_practice(r, d.practice);
    }
    if (rc == 0) {
        rc = spk_store_delegation_revoke(r->s->store, id, r->now);
    }
    if (rc == SPK_ESTATE) {
        snprintf(r->why, sizeof(r->why), "delegation already revoked");
    }
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        return rc;
    }
    /* The remote GP's presence in the practice's consults ends now, not at their next request. */
    sig_chat_access_changed(r->s);
    sig_reply_ok(r);
    sig_access_delegation_revoked(r->s, &d);
    sig_bus_delegation(r->s, d.id); /* and on the other nodes */
    return 0;
}

static int list_cb(void *ud, const spk_delegation_rec_t *d)
{
    return json_array_append_new(ud, delegation_json(d)) == 0 ? 0 : SPK_ENOMEM;
}

typedef struct {
    json_t *arr;
    const char *grantee, *grantee_iss;
} grantee_filter_t;

static int grantee_cb(void *ud, const spk_delegation_rec_t *d)
{
    grantee_filter_t *f = ud;
    return strcmp(d->grantee, f->grantee) == 0 && strcmp(d->grantee_iss, f->grantee_iss) == 0
               ? list_cb(f->arr, d)
               : 0;
}

int sig_h_delegation_list(sig_req_t *r)
{
    const spk_token_claims_t *w = r->c->who;
    json_t *arr = json_array();
    if (arr == NULL) {
        return SPK_ENOMEM;
    }
    int rc;
    if (w->role == SPK_ROLE_REMOTE_GP) {
        grantee_filter_t f = {arr, w->sub, w->iss};
        rc = spk_store_delegation_each(r->s->store, NULL, grantee_cb, &f);
    } else {
        rc = spk_store_delegation_each(r->s->store, w->practice, list_cb, arr);
    }
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    json_object_set_new(r->reply, "delegations", arr);
    return 0;
}

typedef struct {
    json_t *arr;
    int64_t limit;
} audit_q_t;

static int audit_cb(void *ud, const spk_audit_rec_t *a)
{
    audit_q_t *q = ud;
    if ((int64_t)json_array_size(q->arr) >= q->limit) {
        return 1;
    }
    char hash[65];
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hash[2 * i] = hx[a->hash[i] >> 4];
        hash[2 * i + 1] = hx[a->hash[i] & 15];
    }
    hash[64] = '\0';
    json_t *o = json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "seq",
        (json_int_t)a->seq, "ts_ms", (json_int_t)a->ts_ms, "event", a->event, "outcome", a->outcome,
        "user", a->user, "issuer", a->issuer, "name", a->name, "role", a->role, "on_behalf_of",
        a->on_behalf_of, "access_point", a->access_point, "patient", a->patient, "practice",
        a->practice, "object", a->object, "detail", a->detail, "hash", hash);
    return json_array_append_new(q->arr, o) == 0 ? 0 : SPK_ENOMEM;
}

int sig_h_audit_read(sig_req_t *r)
{
    const char *patient;
    audit_q_t q = {.limit = 100};
    /* An admin reads the entries about their own practice only. */
    spk_store_audit_filter_t f = {.practice = r->c->who->practice};
    int rc = sig_get_str(r, "patient", false, SPK_SUB_LEN - 1, &patient);
    if (rc == 0) {
        rc = sig_get_int(r, "limit", false, 1, 1000, &q.limit);
    }
    if (rc == 0) {
        rc = sig_get_int(r, "after", false, 0, INT64_MAX, &f.after);
    }
    if (rc != 0) {
        return rc;
    }
    f.patient = patient;
    snprintf(r->patient, sizeof(r->patient), "%s", patient ? patient : "");
    snprintf(r->practice, sizeof(r->practice), "%s", r->c->who->practice);
    snprintf(r->object, sizeof(r->object), "audit");
    q.arr = json_array();
    if (q.arr == NULL) {
        return SPK_ENOMEM;
    }
    rc = spk_store_audit_each(r->s->store, &f, audit_cb, &q);
    if (rc < 0) {
        json_decref(q.arr);
        return rc;
    }
    int64_t bad = 0;
    char why[128];
    bool ok = spk_store_audit_verify_recent(r->s->store, &bad, why, sizeof(why)) == 0;
    json_object_set_new(r->reply, "entries", q.arr);
    json_object_set_new(r->reply, "verified", json_boolean(ok));
    return 0;
}
