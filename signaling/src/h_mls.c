/* MLS actions of the delivery service: KeyPackages, creating a conversation's group, Commits
 * (exactly one per epoch, the first valid wins) and proposals. Handshake messages travel as
 * PublicMessage so that the service can follow the group with its observer and hold membership
 * to the conversation's policy (docs/chat.md). */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/text.h"
#include "spk/util.h"

#define KP_MAX_BYTES 16384
#define KP_MAX_PER_UPLOAD 100
#define KP_MAX_PER_DEVICE 200
#define KP_STORE_DAYS 90
#define HANDSHAKE_MAX_BYTES (1024 * 1024)

/* A base64url field decoded into a new buffer (at most max bytes). */
int ds_get_b64(sig_req_t *r, const char *field, bool required, size_t max, uint8_t **out,
               size_t *len)
{
    const char *txt;
    *out = NULL;
    *len = 0;
    /* base64url only: the decoder refuses every other character, so no text check first */
    int rc = sig_get_raw(r, field, required, spk_b64url_encoded_len(max), &txt);
    if (rc != 0 || txt == NULL) {
        return rc;
    }
    size_t n = json_string_length(json_object_get(r->req, field));
    uint8_t *buf = malloc(n * 3 / 4 + 4);
    if (buf == NULL) {
        return SPK_ENOMEM;
    }
    long got = spk_b64url_decode(buf, n * 3 / 4 + 4, txt, n);
    if (got <= 0 || (size_t)got > max) {
        free(buf);
        return sig_bad_field(r, field);
    }
    *out = buf;
    *len = (size_t)got;
    return 0;
}

/* The caller's device identity bytes. */
static size_t caller_identity(sig_req_t *r, uint8_t *out, size_t cap)
{
    const spk_token_claims_t *w = r->c->who;
    return ds_identity(w->iss, w->sub, r->c->chat->device, out, cap);
}

/* ---- KeyPackages ---- */

static int upload_one(sig_req_t *r, const uint8_t *kp, size_t n, bool last_resort)
{
    spk_mls_buf_t id = {0};
    int rc = spk_mls_key_package_check(kp, n, (uint64_t)r->now, &id);
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "KeyPackage invalid (suite, signatures or lifetime)");
        return SPK_EMLSKEYPACKAGE;
    }
    uint8_t want[DS_IDENTITY_MAX];
    size_t wn = caller_identity(r, want, sizeof(want));
    bool mine = wn > 0 && id.n == wn && memcmp(id.p, want, wn) == 0;
    spk_mls_buf_free(&id);
    if (!mine) {
        snprintf(r->why, sizeof(r->why), "KeyPackage credential is not this device");
        return SPK_EMLSKEYPACKAGE;
    }
    uint8_t ref[SPK_MLS_REF_LEN];
    uint64_t not_before = 0, not_after = 0;
    rc = spk_mls_key_package_ref(kp, n, ref);
    if (rc == 0) {
        rc = spk_mls_key_package_lifetime(kp, n, &not_before, &not_after);
    }
    if (rc == 0) {
        /* kept until its own lifetime ends (claims and status count it only before then), and
         * at most KP_STORE_DAYS */
        int64_t until = r->now + KP_STORE_DAYS * 86400;
        if (not_after < (uint64_t)until) {
            until = (int64_t)not_after;
        }
        const spk_token_claims_t *w = r->c->who;
        rc = spk_store_chat_kp_put(r->s->store, ref, w->iss, w->sub, r->c->chat->device, kp, n,
                                   last_resort, r->now, until);
        if (rc == SPK_EEXIST) {
            rc = 0; /* uploaded before: nothing new */
        }
    }
    return rc;
}

static int kp_status(sig_req_t *r)
{
    const spk_token_claims_t *w = r->c->who;
    int64_t one = 0;
    bool lr = false;
    int rc =
        spk_store_chat_kp_count(r->s->store, w->iss, w->sub, r->c->chat->device, r->now, &one, &lr);
    if (rc == 0) {
        json_object_set_new(r->reply, "one_time", json_integer(one));
        json_object_set_new(r->reply, "last_resort", json_boolean(lr));
    }
    return rc;
}

int sig_h_mls_kp_upload(sig_req_t *r)
{
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    json_t *list = json_object_get(r->req, "key_packages");
    if (list != NULL && (!json_is_array(list) || json_array_size(list) > KP_MAX_PER_UPLOAD)) {
        return sig_bad_field(r, "key_packages");
    }
    int64_t one = 0;
    bool lr = false;
    const spk_token_claims_t *w = r->c->who;
    rc =
        spk_store_chat_kp_count(r->s->store, w->iss, w->sub, r->c->chat->device, r->now, &one, &lr);
    if (rc == 0 && one + (int64_t)json_array_size(list) > KP_MAX_PER_DEVICE) {
        snprintf(r->why, sizeof(r->why), "at most %d KeyPackages per device", KP_MAX_PER_DEVICE);
        return SPK_ERANGE;
    }
    rc = sig_begin(r);
    for (size_t i = 0; rc == 0 && i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        uint8_t *kp = NULL;
        size_t n = 0;
        json_t *saved = r->req;
        json_t *one_field = json_pack("{s:O}", "key_package", v);
        r->req = one_field;
        rc = one_field != NULL ? ds_get_b64(r, "key_package", true, KP_MAX_BYTES, &kp, &n)
                               : SPK_ENOMEM;
        r->req = saved;
        json_decref(one_field);
        if (rc == SPK_EBADMSG) {
            snprintf(r->why, sizeof(r->why), "key_packages[%zu] is not base64url", i);
        }
        if (rc == 0) {
            rc = upload_one(r, kp, n, false);
        }
        free(kp);
    }
    uint8_t *last = NULL;
    size_t last_n = 0;
    if (rc == 0) {
        rc = ds_get_b64(r, "last_resort", false, KP_MAX_BYTES, &last, &last_n);
    }
    if (rc == 0 && last != NULL) {
        rc = upload_one(r, last, last_n, true);
    }
    free(last);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    return rc == 0 ? kp_status(r) : rc;
}

int sig_h_mls_kp_status(sig_req_t *r)
{
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    return kp_status(r);
}

/* The conversation of the request and the caller's right to act in it. */
static int req_conv(sig_req_t *r, ds_conv_t **out)
{
    const char *id;
    int rc = sig_get_str(r, "conversation", true, SPK_ID_LEN - 1, &id);
    if (rc != 0) {
        return rc;
    }
    snprintf(r->object, sizeof(r->object), "%s", id);
    rc = ds_conv_get(r->s, id, out);
    if (rc == SPK_ENOTFOUND) {
        snprintf(r->why, sizeof(r->why), "no such conversation");
    }
    return rc == 0 ? ds_caller_allowed(r, *out) : rc;
}

/* The user a request names: {"sub": ..., "iss": ...} (iss defaults to dflt). */
int ds_req_user(sig_req_t *r, const char *field, const char *dflt, char iss[SPK_SUB_LEN],
                char sub[SPK_SUB_LEN])
{
    json_t *u = json_object_get(r->req, field);
    json_t *ji = json_object_get(u, "iss");
    json_t *js = json_object_get(u, "sub");
    if (!json_is_object(u) || !json_is_string(js) || json_string_length(js) == 0 ||
        json_string_length(js) >= SPK_SUB_LEN || (ji != NULL && !json_is_string(ji)) ||
        (ji != NULL && (json_string_length(ji) == 0 || json_string_length(ji) >= SPK_SUB_LEN))) {
        return sig_bad_field(r, field);
    }
    snprintf(sub, SPK_SUB_LEN, "%s", json_string_value(js));
    snprintf(iss, SPK_SUB_LEN, "%s", ji != NULL ? json_string_value(ji) : dflt);
    if (strlen(sub) != json_string_length(js) || !spk_text_ok(sub, strlen(sub)) ||
        !spk_text_ok(iss, strlen(iss))) {
        return sig_bad_field(r, field);
    }
    return 0;
}

typedef struct {
    sig_req_t *r;
    ds_conv_t *c;
    json_t *out;
    const char *iss, *sub;
} claim_t;

static int claim_cb(void *ud, const char *device, int64_t last_seen)
{
    (void)last_seen;
    claim_t *k = ud;
    if (ds_device_in_group(k->c, k->iss, k->sub, device, NULL)) {
        return 0; /* in the group already */
    }
    spk_store_blob_t kp = {0};
    bool lr = false;
    int rc = spk_store_chat_kp_claim(k->r->s->store, k->iss, k->sub, device, k->r->now, &kp, &lr);
    if (rc == SPK_ENOTFOUND) {
        return json_array_append_new(json_object_get(k->r->reply, "missing"), json_string(device));
    }
    if (rc != 0) {
        return rc;
    }
    char *b64 = malloc(spk_b64url_encoded_len(kp.n) + 1);
    if (b64 == NULL) {
        spk_store_blob_free(&kp);
        return SPK_ENOMEM;
    }
    spk_b64url_encode(b64, kp.p, kp.n);
    spk_store_blob_free(&kp);
    rc = json_array_append_new(k->out, json_pack("{s:s, s:s, s:b}", "device", device, "key_package",
                                                 b64, "last_resort", lr));
    free(b64);
    return rc == 0 ? 0 : SPK_ENOMEM;
}

int sig_h_mls_kp_claim(sig_req_t *r)
{
    ds_conv_t *c;
    char iss[SPK_SUB_LEN], sub[SPK_SUB_LEN];
    int rc = req_conv(r, &c);
    if (rc == 0) {
        rc = ds_req_user(r, "user", r->c->who->iss, iss, sub);
    }
    if (rc != 0) {
        return rc;
    }
    ds_member_t *m = ds_member_find(c, iss, sub);
    json_t *user = json_object_get(r->req, "user");
    if (m == NULL && json_object_get(user, "iss") == NULL) {
        /* No issuer given: the caller's, else this server's own (a patient's, as for
         * chat.members.add). */
        snprintf(iss, sizeof(iss), "%s", r->s->issuer->iss);
        m = ds_member_find(c, iss, sub);
    }
    if (m == NULL || !ds_member_allowed(r->s, c, m)) {
        snprintf(r->why, sizeof(r->why), "that user may not be in this conversation");
        return SPK_EFORBIDDEN;
    }
    json_t *out = json_array();
    json_object_set_new(r->reply, "key_packages", out);
    json_object_set_new(r->reply, "missing", json_array());
    rc = sig_begin(r);
    claim_t k = {r, c, out, iss, sub};
    if (rc == 0) {
        rc = spk_store_chat_device_each(r->s->store, iss, sub, claim_cb, &k);
    }
    return rc == 0 ? sig_commit(r) : rc;
}

/* ---- the group ---- */

static int commit_entries(sig_req_t *r, ds_conv_t *c, ds_pending_t *p, size_t n)
{
    int rc = sig_commit(r);
    if (rc != 0) {
        ds_conv_reload(r->s, c); /* the observer moved on in memory only: reload */
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        ds_deliver(r->s, c, &p[i].e);
    }
    return 0;
}

static void pending_free(ds_pending_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].data);
    }
}

/* Stores the group's state, provided nobody (another node) stored another Commit first. */
static int save_group(sig_req_t *r, ds_conv_t *c)
{
    spk_mls_buf_t blob = {0};
    uint64_t epoch = spk_mls_observer_epoch(c->obs);
    int rc = spk_mls_observer_save(c->obs, &blob);
    if (rc == 0) {
        rc = spk_store_chat_group_put(r->s->store, c->rec.id, c->saved ? &c->saved_epoch : NULL,
                                      epoch, blob.p, blob.n);
    }
    spk_mls_buf_free(&blob);
    if (rc == 0) {
        c->saved = true;
        c->saved_epoch = epoch;
    } else if (rc == SPK_EMLSSTALE) {
        snprintf(r->why, sizeof(r->why),
                 "another Commit was accepted for this epoch first: process it first");
    }
    return rc;
}

static int set_cursor(spk_sig_t *s, ds_conv_t *c, const ds_device_t *d, int64_t from, bool on)
{
    spk_chat_cursor_t cur;
    memset(&cur, 0, sizeof(cur));
    snprintf(cur.conversation, sizeof(cur.conversation), "%s", c->rec.id);
    snprintf(cur.iss, sizeof(cur.iss), "%s", d->iss);
    snprintf(cur.sub, sizeof(cur.sub), "%s", d->sub);
    snprintf(cur.device, sizeof(cur.device), "%s", d->device);
    if (!on &&
        spk_store_chat_cursor_get(s->store, c->rec.id, d->iss, d->sub, d->device, &cur) == 0) {
        cur.active = false;
        return spk_store_chat_cursor_put(s->store, &cur);
    }
    cur.from_seq = from;
    cur.acked = from - 1;
    cur.active = on;
    return spk_store_chat_cursor_put(s->store, &cur);
}

/* Connections of device d that follow live get (or stop getting) the conversation. */
static void follow(spk_sig_t *s, ds_conv_t *c, const ds_device_t *d, bool on)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *conn = v;
        if (conn->chat != NULL && conn->chat->live && strcmp(conn->chat->device, d->device) == 0 &&
            strcmp(conn->who->sub, d->sub) == 0 && strcmp(conn->who->iss, d->iss) == 0) {
            if (on) {
                ds_attach(s, conn, c);
            } else {
                ds_detach(s, conn, c);
            }
        }
    }
}

int sig_h_mls_group_create(sig_req_t *r)
{
    ds_conv_t *c;
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    uint8_t *gi = NULL;
    size_t gi_n = 0;
    rc = req_conv(r, &c);
    if (rc == 0) {
        rc = ds_get_b64(r, "group_info", true, HANDSHAKE_MAX_BYTES, &gi, &gi_n);
    }
    if (rc == 0 && c->obs != NULL) {
        snprintf(r->why, sizeof(r->why), "the conversation's group exists already");
        rc = SPK_ESTATE;
    }
    spk_mls_observer_t *obs = NULL;
    if (rc == 0) {
        rc = spk_mls_observer_create(&obs, gi, gi_n, NULL, 0);
    }
    free(gi);
    if (rc != 0) {
        return rc;
    }
    size_t gid_n = 0;
    const uint8_t *gid = spk_mls_observer_group_id(obs, &gid_n);
    uint8_t me[DS_IDENTITY_MAX];
    size_t me_n = caller_identity(r, me, sizeof(me));
    const uint8_t *id0 = NULL;
    size_t id0_n = 0;
    if (gid_n != strlen(c->rec.id) || memcmp(gid, c->rec.id, gid_n) != 0) {
        snprintf(r->why, sizeof(r->why), "the group id must be the conversation id");
        rc = SPK_EMLSGROUP;
    } else if (spk_mls_observer_leaf_count(obs) != 1 ||
               spk_mls_observer_member_identity(obs, 0, &id0, &id0_n) != 0 || id0_n != me_n ||
               memcmp(id0, me, me_n) != 0) {
        snprintf(r->why, sizeof(r->why), "the group must start with the caller's device alone");
        rc = SPK_EFORBIDDEN;
    }
    if (rc != 0) {
        spk_mls_observer_free(obs);
        return rc;
    }
    c->obs = obs;
    ds_device_t d;
    ds_identity_parse(me, me_n, &d);
    rc = save_group(r, c);
    if (rc == 0) {
        rc = set_cursor(r->s, c, &d, c->last_seq + 1, true);
    }
    snprintf(r->detail, sizeof(r->detail), "group created by device %s", d.device);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        ds_conv_reload(r->s, c);
        return rc;
    }
    if (r->c->chat->live) {
        ds_attach(r->s, r->c, c);
    }
    json_object_set_new(r->reply, "epoch", json_integer((json_int_t)spk_mls_observer_epoch(obs)));
    return 0;
}

/* May the committer remove device leaf `l` of user d? Staff may remove anyone; anyone may
 * remove a device whose user may no longer be in the conversation, or one that asked to leave
 * (a Remove proposal of its own, committed by reference). */
static bool may_remove(sig_req_t *r, ds_conv_t *c, const ds_device_t *d, uint32_t leaf,
                       const spk_mls_observed_t *o)
{
    if (sig_is_staff(r->c->who->role)) {
        return true;
    }
    ds_member_t *m = ds_member_find(c, d->iss, d->sub);
    if (m == NULL || !ds_member_allowed(r->s, c, m)) {
        return true;
    }
    size_t n = spk_mls_observer_proposal_count(c->obs);
    for (size_t i = 0; i < n; i++) {
        spk_mls_proposal_info_t p;
        if (spk_mls_observer_proposal_get(c->obs, i, &p) != 0 || p.type != SPK_MLS_PROP_REMOVE ||
            p.leaf != leaf || p.sender != leaf) {
            continue;
        }
        for (size_t k = 0; k < o->n_committed; k++) {
            if (memcmp(o->committed + k * SPK_MLS_REF_LEN, p.ref, SPK_MLS_REF_LEN) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The Commit against the conversation's membership: who joins must be allowed, who leaves may
 * be removed by this committer, and every device of a user who may no longer be in it must
 * leave now. */
static int commit_policy(sig_req_t *r, ds_conv_t *c, const spk_mls_observed_t *o)
{
    for (size_t i = 0; i < o->n_joined; i++) {
        ds_device_t d;
        ds_member_t *m = NULL;
        if (ds_identity_parse(o->joined[i].identity, o->joined[i].identity_len, &d) == 0) {
            m = ds_member_find(c, d.iss, d.sub);
        }
        if (m == NULL || !ds_member_allowed(r->s, c, m)) {
            snprintf(r->why, sizeof(r->why),
                     "the Commit adds a device of someone who may not be"
                     " in this conversation");
            return SPK_EMLSMEMBERS;
        }
    }
    for (size_t i = 0; i < o->n_left; i++) {
        ds_device_t d;
        if (ds_identity_parse(o->left[i].identity, o->left[i].identity_len, &d) != 0 ||
            !may_remove(r, c, &d, o->left[i].leaf, o)) {
            snprintf(r->why, sizeof(r->why), "only staff remove others from a conversation");
            return SPK_EMLSMEMBERS;
        }
    }
    uint32_t leaves = spk_mls_observer_leaf_count(c->obs);
    for (uint32_t l = 0; l < leaves; l++) {
        const uint8_t *id;
        size_t n;
        ds_device_t d;
        if (spk_mls_observer_member_identity(c->obs, l, &id, &n) != 0 ||
            ds_identity_parse(id, n, &d) != 0) {
            continue;
        }
        ds_member_t *m = ds_member_find(c, d.iss, d.sub);
        if (m != NULL && ds_member_allowed(r->s, c, m)) {
            continue;
        }
        bool removed = false;
        for (size_t i = 0; i < o->n_left && !removed; i++) {
            removed = o->left[i].leaf == l;
        }
        if (!removed) {
            snprintf(r->why, sizeof(r->why),
                     "the Commit must remove %.60s (no longer in this"
                     " conversation)",
                     d.sub);
            return SPK_EMLSMEMBERS;
        }
    }
    return 0;
}

/* The Welcome goes to each new device: the one that uploaded the KeyPackage it was added with. */
static int route_welcome(sig_req_t *r, ds_conv_t *c, const spk_mls_observed_t *o,
                         const uint8_t *welcome, size_t welcome_n, ds_pending_t *p, size_t *np)
{
    spk_mls_buf_t refs = {0};
    size_t nrefs = 0;
    int rc = spk_mls_welcome_refs(welcome, welcome_n, &refs, &nrefs);
    if (rc == 0 && nrefs != o->n_joined) {
        snprintf(r->why, sizeof(r->why), "the Welcome is not for exactly the devices added");
        rc = SPK_EBADMSG;
    }
    for (size_t i = 0; rc == 0 && i < o->n_joined; i++) {
        const spk_mls_member_t *j = &o->joined[i];
        ds_device_t d, owner;
        bool listed = false;
        for (size_t k = 0; k < nrefs; k++) {
            listed |=
                memcmp(refs.p + k * SPK_MLS_REF_LEN, j->key_package_ref, SPK_MLS_REF_LEN) == 0;
        }
        rc = ds_identity_parse(j->identity, j->identity_len, &d);
        if (rc == 0) {
            rc = spk_store_chat_kp_owner(r->s->store, j->key_package_ref, owner.iss, owner.sub,
                                         owner.device);
        }
        if (rc == 0 && (!listed || strcmp(owner.iss, d.iss) != 0 || strcmp(owner.sub, d.sub) != 0 ||
                        strcmp(owner.device, d.device) != 0)) {
            snprintf(r->why, sizeof(r->why), "the Welcome does not match a claimed KeyPackage");
            rc = SPK_EBADMSG;
        }
        if (rc == SPK_ENOTFOUND) {
            snprintf(r->why, sizeof(r->why),
                     "an added KeyPackage was not claimed from this service");
            rc = SPK_EBADMSG;
        }
        spk_chat_entry_t e;
        memset(&e, 0, sizeof(e));
        e.type = SPK_CHAT_ENTRY_WELCOME;
        e.epoch = spk_mls_observer_epoch(c->obs);
        snprintf(e.sender_iss, sizeof(e.sender_iss), "%s", r->c->who->iss);
        snprintf(e.sender, sizeof(e.sender), "%s", r->c->who->sub);
        snprintf(e.sender_device, sizeof(e.sender_device), "%s", r->c->chat->device);
        snprintf(e.to_iss, sizeof(e.to_iss), "%s", d.iss);
        snprintf(e.to, sizeof(e.to), "%s", d.sub);
        snprintf(e.to_device, sizeof(e.to_device), "%s", d.device);
        e.data = welcome;
        e.data_len = welcome_n;
        if (rc == 0) {
            rc = ds_append(r->s, c, &e, &p[*np]);
            *np += rc == 0;
        }
        if (rc == 0) {
            rc = set_cursor(r->s, c, &d, e.seq, true);
        }
    }
    spk_mls_buf_free(&refs);
    return rc;
}

/* Checks a handshake message's header and that the caller's device sent it. */
static int handshake_check(sig_req_t *r, ds_conv_t *c, const uint8_t *msg, size_t n, uint8_t kind)
{
    spk_mls_message_info_t mi;
    int rc = spk_mls_message_info(msg, n, &mi);
    if (rc != 0) {
        return rc;
    }
    if (mi.wire_format != SPK_MLS_MSG_PUBLIC || mi.content_type != kind) {
        snprintf(r->why, sizeof(r->why), "handshake messages travel as PublicMessage");
        return SPK_EINVAL;
    }
    if (c->obs == NULL) {
        snprintf(r->why, sizeof(r->why), "the conversation's group does not exist yet");
        return SPK_ESTATE;
    }
    uint32_t leaf = 0;
    if (!ds_device_in_group(c, r->c->who->iss, r->c->who->sub, r->c->chat->device, &leaf) ||
        mi.sender != leaf) {
        snprintf(r->why, sizeof(r->why), "a device sends only as itself");
        return SPK_EMLSSENDER;
    }
    return 0;
}

/* The entry recording msg, from the caller's device. */
static void own_entry(sig_req_t *r, spk_chat_entry_t *e, spk_chat_entry_type_t type, uint64_t epoch,
                      const uint8_t *msg, size_t n)
{
    memset(e, 0, sizeof(*e));
    e->type = type;
    e->epoch = epoch;
    snprintf(e->sender_iss, sizeof(e->sender_iss), "%s", r->c->who->iss);
    snprintf(e->sender, sizeof(e->sender), "%s", r->c->who->sub);
    snprintf(e->sender_device, sizeof(e->sender_device), "%s", r->c->chat->device);
    e->data = msg;
    e->data_len = n;
}

#define MAX_JOIN 64

static int apply_commit(sig_req_t *r, ds_conv_t *c, const spk_mls_observed_t *o,
                        const uint8_t *commit, size_t commit_n, const uint8_t *welcome,
                        size_t welcome_n, ds_pending_t *p, size_t *np)
{
    uint64_t old_epoch = spk_mls_observer_epoch(c->obs);
    /* Devices that leave stop getting the log after this Commit. */
    ds_device_t gone[MAX_JOIN];
    size_t n_gone = 0;
    for (size_t i = 0; i < o->n_left && n_gone < MAX_JOIN; i++) {
        if (ds_identity_parse(o->left[i].identity, o->left[i].identity_len, &gone[n_gone]) == 0) {
            n_gone++;
        }
    }
    spk_chat_entry_t e;
    own_entry(r, &e, SPK_CHAT_ENTRY_COMMIT, old_epoch, commit, commit_n);
    /* The epoch first: of two nodes racing with Commits of one epoch, the loser stops here. */
    int rc = spk_mls_observer_accept(c->obs);
    if (rc == 0) {
        rc = save_group(r, c);
    }
    if (rc == 0) {
        rc = ds_append(r->s, c, &e, &p[(*np)]);
        *np += rc == 0;
    }
    for (size_t i = 0; rc == 0 && i < n_gone; i++) {
        rc = set_cursor(r->s, c, &gone[i], 0, false);
    }
    if (rc == 0 && o->n_joined > 0) {
        rc = welcome == NULL ? SPK_EBADMSG : route_welcome(r, c, o, welcome, welcome_n, p, np);
        if (welcome == NULL) {
            snprintf(r->why, sizeof(r->why), "a Commit that adds devices needs their Welcome");
        }
    }
    snprintf(r->detail, sizeof(r->detail), "epoch %llu: %zu devices joined, %zu left",
             (unsigned long long)spk_mls_observer_epoch(c->obs), o->n_joined, o->n_left);
    return rc;
}

int sig_h_mls_commit(sig_req_t *r)
{
    ds_conv_t *c;
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    uint8_t *commit = NULL, *welcome = NULL;
    size_t commit_n = 0, welcome_n = 0;
    rc = req_conv(r, &c);
    if (rc == 0) {
        rc = ds_get_b64(r, "commit", true, HANDSHAKE_MAX_BYTES, &commit, &commit_n);
    }
    if (rc == 0) {
        rc = ds_get_b64(r, "welcome", false, HANDSHAKE_MAX_BYTES, &welcome, &welcome_n);
    }
    if (rc == 0) {
        rc = handshake_check(r, c, commit, commit_n, SPK_MLS_KIND_COMMIT);
    }
    spk_mls_observed_t o;
    if (rc == 0) {
        rc = spk_mls_observer_prepare(c->obs, commit, commit_n, (uint64_t)r->now, &o);
        if (rc == SPK_EMLSSTALE) {
            snprintf(r->why, sizeof(r->why), "epoch %llu is committed already: process it first",
                     (unsigned long long)spk_mls_observer_epoch(c->obs));
        }
    }
    bool prepared = rc == 0;
    if (rc == 0) {
        rc = commit_policy(r, c, &o);
    }
    ds_pending_t p[MAX_JOIN + 1];
    size_t np = 0;
    if (rc == 0 && o.n_joined > MAX_JOIN) {
        snprintf(r->why, sizeof(r->why), "at most %d devices join in one Commit", MAX_JOIN);
        rc = SPK_ERANGE;
    }
    bool applied = false;
    if (rc == 0) {
        applied = true;
        rc = apply_commit(r, c, &o, commit, commit_n, welcome, welcome_n, p, &np);
    } else if (prepared) {
        spk_mls_observer_discard(c->obs);
    }
    free(commit);
    free(welcome);
    if (rc != 0) {
        pending_free(p, np);
        if (applied) {
            ds_conv_reload(r->s, c); /* the observer may have moved on: reload from the store */
        }
        return rc;
    }
    uint64_t epoch = spk_mls_observer_epoch(c->obs);
    int64_t seq = np > 0 ? p[0].e.seq : 0;
    rc = sig_commit(r);
    if (rc != 0) {
        ds_conv_reload(r->s, c); /* the observer moved on in memory only: reload */
    }
    if (rc == 0) {
        /* Everyone in the group gets the Commit; new devices that are connected follow from
         * their Welcome on; leavers got the Commit that removes them and stop. */
        ds_deliver(r->s, c, &p[0].e);
        for (size_t i = 0; i < o.n_joined; i++) {
            ds_device_t d;
            if (ds_identity_parse(o.joined[i].identity, o.joined[i].identity_len, &d) == 0) {
                follow(r->s, c, &d, true);
            }
        }
        for (size_t i = 1; i < np; i++) {
            ds_deliver(r->s, c, &p[i].e);
        }
        for (size_t i = 0; i < o.n_left; i++) {
            ds_device_t d;
            if (ds_identity_parse(o.left[i].identity, o.left[i].identity_len, &d) == 0) {
                follow(r->s, c, &d, false);
            }
        }
        json_object_set_new(r->reply, "epoch", json_integer((json_int_t)epoch));
        json_object_set_new(r->reply, "seq", json_integer(seq));
    }
    pending_free(p, np);
    return rc;
}

int sig_h_mls_proposal(sig_req_t *r)
{
    ds_conv_t *c;
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    uint8_t *msg = NULL;
    size_t n = 0;
    rc = req_conv(r, &c);
    if (rc == 0) {
        rc = ds_get_b64(r, "proposal", true, HANDSHAKE_MAX_BYTES, &msg, &n);
    }
    if (rc == 0) {
        rc = handshake_check(r, c, msg, n, SPK_MLS_KIND_PROPOSAL);
    }
    spk_mls_observed_t o;
    if (rc == 0) {
        rc = spk_mls_observer_prepare(c->obs, msg, n, (uint64_t)r->now, &o);
    }
    /* Only own removals (leaving), own updates, and Adds of allowed users from anyone; staff
     * may propose any Remove. */
    if (rc == 0 && o.proposal.type == SPK_MLS_PROP_REMOVE && o.proposal.leaf != o.sender &&
        !sig_is_staff(r->c->who->role)) {
        snprintf(r->why, sizeof(r->why), "only staff propose to remove others");
        rc = SPK_EMLSMEMBERS;
    }
    if (rc == 0 && o.proposal.type == SPK_MLS_PROP_ADD) {
        ds_device_t d;
        ds_member_t *m = NULL;
        if (ds_identity_parse(o.proposal.identity, o.proposal.identity_len, &d) == 0) {
            m = ds_member_find(c, d.iss, d.sub);
        }
        if (m == NULL || !ds_member_allowed(r->s, c, m)) {
            snprintf(r->why, sizeof(r->why),
                     "the proposal adds someone who may not be in this"
                     " conversation");
            rc = SPK_EMLSMEMBERS;
        }
    }
    if (rc != 0) {
        if (rc != SPK_EMLSMEMBERS) {
            free(msg);
            return rc;
        }
        /* prepare cached the proposal: reload the observer from the store */
        free(msg);
        ds_conv_reload(r->s, c);
        return rc;
    }
    ds_pending_t p[1];
    size_t np = 0;
    spk_chat_entry_t e;
    own_entry(r, &e, SPK_CHAT_ENTRY_PROPOSAL, spk_mls_observer_epoch(c->obs), msg, n);
    rc = sig_begin(r);
    if (rc == 0) {
        rc = ds_append(r->s, c, &e, &p[0]);
        np = rc == 0;
    }
    if (rc == 0) {
        rc = save_group(r, c);
    }
    free(msg);
    if (rc == 0) {
        json_object_set_new(r->reply, "seq", json_integer(p[0].e.seq));
        rc = commit_entries(r, c, p, np);
    } else {
        ds_conv_reload(r->s, c);
    }
    pending_free(p, np);
    return rc;
}
