/* Chat actions of the delivery service: devices, conversations and their members, sending
 * application messages, and store-and-forward delivery (sync, ack). docs/chat.md. */
#include "chat_int.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/text.h"
#include "spk/util.h"

#define MESSAGE_MAX_BYTES (48 * 1024) /* a PrivateMessage; photos go as files */
#define SYNC_BATCH 1000               /* entries per conversation per chat.sync */
#define DEFAULT_RETENTION_S (30 * 86400)

static const char *const kinds[] = {"consult", "econsult", "specialist_question", "care_team",
                                    NULL};

int sig_h_chat_device(sig_req_t *r)
{
    const char *device;
    int rc = sig_get_str(r, "device", true, SPK_CHAT_DEVICE_LEN - 1, &device);
    if (rc != 0) {
        return rc;
    }
    if (r->c->chat != NULL && strcmp(r->c->chat->device, device) != 0) {
        snprintf(r->why, sizeof(r->why), "this connection is device %s already",
                 r->c->chat->device);
        return SPK_ESTATE;
    }
    const spk_token_claims_t *w = r->c->who;
    rc = sig_begin(r);
    if (rc == 0) {
        rc = spk_store_chat_device_touch(r->s->store, w->iss, w->sub, device, r->now);
    }
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc == 0 && r->c->chat == NULL) {
        r->c->chat = calloc(1, sizeof(*r->c->chat));
        if (r->c->chat == NULL) {
            return SPK_ENOMEM;
        }
        snprintf(r->c->chat->device, sizeof(r->c->chat->device), "%s", device);
    }
    uint8_t id[DS_IDENTITY_MAX];
    size_t n = ds_identity(w->iss, w->sub, device, id, sizeof(id));
    json_object_set_new(r->reply, "identity", json_stringn((const char *)id, n));
    return rc;
}

/* ---- conversations ---- */

static bool one_of(const char *v, const char *const *set)
{
    for (; *set != NULL; set++) {
        if (strcmp(v, *set) == 0) {
            return true;
        }
    }
    return false;
}

static int new_conv(sig_req_t *r, const char *kind, const char *practice, const char *patient,
                    const char *consult, const char *title, ds_conv_t **out)
{
    spk_chat_conv_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    memcpy(rec.id, "m_", 2);
    int rc = spk_random_id(rec.id + 2, sizeof(rec.id) - 2, 12);
    if (rc != 0) {
        return rc;
    }
    const spk_token_claims_t *w = r->c->who;
    snprintf(rec.kind, sizeof(rec.kind), "%s", kind);
    snprintf(rec.practice, sizeof(rec.practice), "%s", practice);
    snprintf(rec.patient, sizeof(rec.patient), "%s", patient);
    snprintf(rec.consult, sizeof(rec.consult), "%s", consult);
    snprintf(rec.title, sizeof(rec.title), "%s", title != NULL ? title : "");
    snprintf(rec.created_by_iss, sizeof(rec.created_by_iss), "%s", w->iss);
    snprintf(rec.created_by, sizeof(rec.created_by), "%s", w->sub);
    rec.created_at = r->now;
    rec.retention_s =
        r->s->cfg.chat_retention_s > 0 ? r->s->cfg.chat_retention_s : DEFAULT_RETENTION_S;
    spk_chat_member_rec_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.conversation, sizeof(m.conversation), "%s", rec.id);
    snprintf(m.iss, sizeof(m.iss), "%s", w->iss);
    snprintf(m.sub, sizeof(m.sub), "%s", w->sub);
    snprintf(m.name, sizeof(m.name), "%s", w->name);
    snprintf(m.role, sizeof(m.role), "%s", spk_role_name(w->role));
    snprintf(m.added_by, sizeof(m.added_by), "%s", w->sub);
    m.added_at = r->now;
    rc = spk_store_chat_conv_insert(r->s->store, &rec);
    if (rc == 0) {
        rc = spk_store_chat_member_put(r->s->store, &m);
    }
    snprintf(r->object, sizeof(r->object), "%s", rec.id);
    snprintf(r->detail, sizeof(r->detail), "%s", kind);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc == 0) {
        sig_chat_access_changed(r->s);
        rc = ds_conv_get(r->s, rec.id, out);
    }
    return rc;
}

int sig_h_chat_create(sig_req_t *r)
{
    const char *kind, *title, *patient;
    int rc = sig_get_str(r, "kind", true, SPK_CHAT_KIND_LEN - 1, &kind);
    if (rc == 0 && !one_of(kind, kinds)) {
        rc = sig_bad_field(r, "kind");
    }
    if (rc == 0) {
        rc = sig_get_str(r, "title", false, SPK_SUB_LEN - 1, &title);
    }
    if (rc != 0) {
        return rc;
    }
    const char *practice = NULL, *consult = "";
    char patient_buf[SPK_SUB_LEN];
    if (strcmp(kind, "care_team") == 0) {
        /* One per patient and practice. */
        rc = sig_get_str(r, "patient", true, SPK_SUB_LEN - 1, &patient);
        if (rc == 0) {
            rc = sig_get_str(r, "practice", false, SPK_SUB_LEN - 1, &practice);
        }
        if (rc == 0) {
            practice = practice != NULL ? practice : r->c->who->practice;
            rc = sig_rel_practice(r, practice);
        }
        snprintf(patient_buf, sizeof(patient_buf), "%s", rc == 0 ? patient : "");
        snprintf(r->patient, sizeof(r->patient), "%s", patient_buf);
    } else {
        /* The chat of a consult, its e-consult, or a question to its invited specialists. */
        sig_consult_t *sc;
        rc = sig_req_consult(r, true, &sc);
        if (rc == 0 && strcmp(kind, "specialist_question") == 0 &&
            r->c->who->role == SPK_ROLE_ASSISTANT) {
            snprintf(r->why, sizeof(r->why), "bringing in a specialist stays with a GP");
            rc = SPK_EFORBIDDEN;
        }
        if (rc == 0) {
            practice = sc->rec.practice;
            consult = sc->rec.id;
            snprintf(patient_buf, sizeof(patient_buf), "%s", sc->rec.patient);
        }
    }
    if (rc != 0) {
        return rc;
    }
    char practice_buf[SPK_SUB_LEN];
    snprintf(practice_buf, sizeof(practice_buf), "%s", practice);
    spk_chat_conv_rec_t found;
    ds_conv_t *c = NULL;
    rc = spk_store_chat_conv_find(r->s->store, kind, practice_buf, patient_buf, consult, &found);
    if (rc == 0) {
        rc = ds_conv_get(r->s, found.id, &c); /* it exists: the same one for everyone */
        snprintf(r->object, sizeof(r->object), "%s", found.id);
        snprintf(r->detail, sizeof(r->detail), "%s (existing)", kind);
    } else if (rc == SPK_ENOTFOUND) {
        rc = new_conv(r, kind, practice_buf, patient_buf, consult, title, &c);
    }
    if (rc == 0) {
        json_object_set_new(r->reply, "conversation", ds_conv_json(r->s, c));
    }
    return rc;
}

typedef struct {
    sig_req_t *r;
    json_t *arr;
} list_t;

static int list_cb(void *ud, const spk_chat_conv_rec_t *rec)
{
    list_t *l = ud;
    ds_conv_t *c;
    if (ds_conv_get(l->r->s, rec->id, &c) != 0) {
        return 0;
    }
    const spk_token_claims_t *w = l->r->c->who;
    ds_member_t *m = ds_member_find(c, w->iss, w->sub);
    bool member = m != NULL && ds_member_allowed(l->r->s, c, m);
    if (!member && !sig_is_staff(w->role)) {
        return 0;
    }
    json_t *o = ds_conv_json(l->r->s, c);
    json_object_set_new(o, "member", json_boolean(member));
    return json_array_append_new(l->arr, o) == 0 ? 0 : SPK_ENOMEM;
}

int sig_h_chat_list(sig_req_t *r)
{
    const spk_token_claims_t *w = r->c->who;
    list_t l = {r, json_array()};
    if (l.arr == NULL) {
        return SPK_ENOMEM;
    }
    json_object_set_new(r->reply, "conversations", l.arr);
    /* Staff see a practice's conversations (to be added to one): their own practice, or for a
     * remote GP the practice they name (with a delegation). Everyone sees their own. */
    const char *practice = NULL;
    int rc =
        sig_is_staff(w->role) ? sig_get_str(r, "practice", false, SPK_SUB_LEN - 1, &practice) : 0;
    if (rc == 0 && practice == NULL && w->role != SPK_ROLE_REMOTE_GP && sig_is_staff(w->role)) {
        practice = w->practice;
    }
    if (rc == 0 && practice != NULL) {
        rc = sig_rel_practice(r, practice);
        return rc == 0 ? spk_store_chat_conv_each_of_practice(r->s->store, practice, list_cb, &l)
                       : rc;
    }
    return rc == 0 ? spk_store_chat_conv_each_of_user(r->s->store, w->iss, w->sub, list_cb, &l)
                   : rc;
}

/* The conversation named in the request; staff of its practice may see it without being a
 * member (metadata only), everyone else only as a member. */
static int req_conv(sig_req_t *r, bool staff_view, ds_conv_t **out)
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
        return rc;
    }
    if (rc == 0) {
        rc = ds_caller_allowed(r, *out);
    }
    if (rc == SPK_EFORBIDDEN && staff_view && sig_is_staff(r->c->who->role)) {
        const ds_conv_t *c = *out;
        rc = sig_rel_practice_in(r, c->rec.practice, c->rec.consult[0] ? c->rec.consult : NULL);
    }
    return rc;
}

int sig_h_chat_get(sig_req_t *r)
{
    ds_conv_t *c;
    int rc = req_conv(r, true, &c);
    if (rc == 0) {
        json_object_set_new(r->reply, "conversation", ds_conv_json(r->s, c));
    }
    return rc;
}

/* Roles that may be members, per kind (docs/chat.md). */
static bool role_fits(const char *kind, spk_role_t role)
{
    switch (role) {
    case SPK_ROLE_GP:
    case SPK_ROLE_ASSISTANT:
    case SPK_ROLE_REMOTE_GP:
        return true;
    case SPK_ROLE_PATIENT:
        return strcmp(kind, "specialist_question") != 0;
    case SPK_ROLE_SPECIALIST:
        return strcmp(kind, "consult") == 0 || strcmp(kind, "specialist_question") == 0;
    case SPK_ROLE_PARTNER:
        return strcmp(kind, "care_team") == 0;
    default:
        return false;
    }
}

int sig_h_chat_members_add(sig_req_t *r)
{
    ds_conv_t *c;
    const char *role_s, *name;
    char iss[SPK_SUB_LEN], sub[SPK_SUB_LEN];
    /* Members add members; staff of the practice (a remote GP through a delegation) who are not
     * members yet may add only themselves (docs/chat.md "Members"). */
    int rc = req_conv(r, true, &c);
    bool member = false;
    if (rc == 0) {
        member = ds_caller_allowed(r, c) == 0;
        r->why[0] = '\0';
    }
    if (rc == 0) {
        rc = sig_get_str(r, "role", true, 15, &role_s);
    }
    spk_role_t role = rc == 0 ? spk_role_parse(role_s) : SPK_ROLE_NONE;
    if (rc == 0 && role == SPK_ROLE_NONE) {
        rc = sig_bad_field(r, "role");
    }
    if (rc == 0) {
        /* Patients are the own issuer's (invite sessions); others default to the caller's. */
        rc = ds_req_user(r, "user", role == SPK_ROLE_PATIENT ? r->s->issuer->iss : r->c->who->iss,
                         iss, sub);
    }
    if (rc == 0) {
        rc = sig_get_str(r, "name", false, SPK_SUB_LEN - 1, &name);
    }
    if (rc != 0) {
        return rc;
    }
    const spk_token_claims_t *w = r->c->who;
    if (!member && (strcmp(sub, w->sub) != 0 || strcmp(iss, w->iss) != 0 || role != w->role)) {
        snprintf(r->why, sizeof(r->why), "only members add others; you may add yourself");
        return SPK_EFORBIDDEN;
    }
    if (!role_fits(c->rec.kind, role)) {
        snprintf(r->why, sizeof(r->why), "a %s is not a member of a %s conversation",
                 spk_role_name(role), c->rec.kind);
        return SPK_EFORBIDDEN;
    }
    spk_chat_member_rec_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.conversation, sizeof(m.conversation), "%s", c->rec.id);
    snprintf(m.iss, sizeof(m.iss), "%s", iss);
    snprintf(m.sub, sizeof(m.sub), "%s", sub);
    snprintf(m.name, sizeof(m.name), "%s", name != NULL ? name : sub);
    snprintf(m.role, sizeof(m.role), "%s", spk_role_name(role));
    snprintf(m.added_by, sizeof(m.added_by), "%s", r->c->who->sub);
    m.added_at = r->now;
    /* The relationship must hold now (an admitted patient, an invited specialist, a remote GP
     * with a delegation). */
    ds_member_t probe = {.rec = m};
    if (!ds_member_allowed(r->s, c, &probe)) {
        snprintf(r->why, sizeof(r->why), "that %s may not be in this conversation now",
                 spk_role_name(role));
        return SPK_EFORBIDDEN;
    }
    snprintf(r->detail, sizeof(r->detail), "member %s (%s)", sub, spk_role_name(role));
    rc = spk_store_chat_member_put(r->s->store, &m);
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc == 0) {
        rc = ds_member_add(c, &m);
        sig_chat_access_changed(r->s);
    }
    if (rc == 0) {
        json_object_set_new(r->reply, "conversation", ds_conv_json(r->s, c));
    }
    return rc;
}

int sig_h_chat_members_remove(sig_req_t *r)
{
    ds_conv_t *c;
    char iss[SPK_SUB_LEN], sub[SPK_SUB_LEN];
    int rc = req_conv(r, false, &c);
    if (rc == 0) {
        rc = ds_req_user(r, "user", r->c->who->iss, iss, sub);
    }
    if (rc != 0) {
        return rc;
    }
    bool self = strcmp(sub, r->c->who->sub) == 0 && strcmp(iss, r->c->who->iss) == 0;
    if (!self && !sig_is_staff(r->c->who->role)) {
        snprintf(r->why, sizeof(r->why), "only staff remove others");
        return SPK_EFORBIDDEN;
    }
    snprintf(r->detail, sizeof(r->detail), "member %s", sub);
    rc = spk_store_chat_member_remove(r->s->store, c->rec.id, iss, sub, r->now);
    if (rc == SPK_ESTATE) {
        snprintf(r->why, sizeof(r->why), "removed already");
    }
    if (rc == 0) {
        rc = sig_commit(r);
    }
    if (rc != 0) {
        return rc;
    }
    ds_member_t *m = ds_member_find(c, iss, sub);
    if (m != NULL) {
        m->rec.removed_at = r->now;
    }
    /* From now on nothing of the conversation reaches them; the next Commit must remove their
     * devices from the group. */
    sig_chat_access_changed(r->s);
    json_object_set_new(r->reply, "conversation", ds_conv_json(r->s, c));
    return 0;
}

/* ---- messages ---- */

int sig_h_chat_send(sig_req_t *r)
{
    ds_conv_t *c;
    int rc = 0;
    if (ds_caller_device(r, &rc) == NULL) {
        return rc;
    }
    int64_t retry_ms = 0;
    if (sig_chat_behind(r, &retry_ms)) {
        return sig_chat_batch_shed(r, retry_ms); /* before any work: shedding must be cheap */
    }
    uint8_t *msg = NULL;
    size_t n = 0;
    rc = req_conv(r, false, &c);
    if (rc == 0) {
        rc = ds_get_b64(r, "message", true, MESSAGE_MAX_BYTES, &msg, &n);
        if (rc == SPK_EBADMSG && json_is_string(json_object_get(r->req, "message"))) {
            snprintf(r->why, sizeof(r->why), "message is not base64url or larger than %d bytes",
                     MESSAGE_MAX_BYTES);
        }
    }
    spk_mls_message_info_t mi;
    uint64_t digest = 0;
    if (rc == 0) {
        rc = spk_mls_message_info(msg, n, &mi);
    }
    if (rc == 0 &&
        (mi.wire_format != SPK_MLS_MSG_PRIVATE || mi.content_type != SPK_MLS_KIND_APPLICATION)) {
        snprintf(r->why, sizeof(r->why), "application messages travel as PrivateMessage");
        rc = SPK_EINVAL;
    }
    if (rc == 0 && c->obs == NULL) {
        snprintf(r->why, sizeof(r->why), "the conversation's group does not exist yet");
        rc = SPK_ESTATE;
    }
    size_t gid_n = 0;
    const uint8_t *gid = rc == 0 ? spk_mls_observer_group_id(c->obs, &gid_n) : NULL;
    uint64_t epoch = rc == 0 ? spk_mls_observer_epoch(c->obs) : 0;
    if (rc == 0 && (mi.group_id_len != gid_n || memcmp(mi.group_id, gid, gid_n) != 0)) {
        rc = SPK_EMLSGROUP;
    } else if (rc == 0 && mi.epoch != epoch) {
        snprintf(r->why, sizeof(r->why), "the group is in epoch %llu", (unsigned long long)epoch);
        rc = mi.epoch < epoch ? SPK_EMLSSTALE : SPK_EMLSEPOCH;
    } else if (rc == 0 &&
               !ds_device_in_group(c, r->c->who->iss, r->c->who->sub, r->c->chat->device, NULL)) {
        snprintf(r->why, sizeof(r->why), "this device is not in the conversation's group");
        rc = SPK_EMLSSENDER;
    } else if (rc == 0 && ds_replayed(c, epoch, msg, n, &digest)) {
        snprintf(r->why, sizeof(r->why), "this message was sent already");
        rc = SPK_EREPLAY;
    }
    ds_pending_t p = {0};
    spk_chat_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.conversation, sizeof(e.conversation), "%s", rc == 0 ? c->rec.id : "");
    e.type = SPK_CHAT_ENTRY_MESSAGE;
    e.epoch = epoch;
    snprintf(e.sender_iss, sizeof(e.sender_iss), "%s", r->c->who->iss);
    snprintf(e.sender, sizeof(e.sender), "%s", r->c->who->sub);
    snprintf(e.sender_device, sizeof(e.sender_device), "%s",
             r->c->chat != NULL ? r->c->chat->device : "");
    e.data = msg;
    e.data_len = n;
    if (rc == 0 && r->s->chat_batching) {
        /* group commit (chat_batch.c): answered and delivered once the batch is stored */
        rc = sig_chat_batch_add(r, c, &e);
        if (rc == 0) {
            ds_remember(c, epoch, digest);
        }
        free(msg);
        return rc;
    }
    for (int attempt = 0; attempt < 2 && rc == 0; attempt++) {
        rc = sig_begin(r);
        if (rc == 0) {
            rc = ds_append(r->s, c, &e, &p);
        }
        if (rc == 0) {
            rc = sig_commit(r);
        }
        if (rc == SPK_EEXIST && attempt == 0 && r->s->io.publish_cb != NULL) {
            /* Another node appended this seq first and its event is still on the way: take
             * the next one (the entries in between are delivered here before this one). */
            free(p.data);
            p.data = NULL;
            spk_store_rollback(r->s->store);
            rc = spk_store_chat_log_last(r->s->store, c->rec.id, &c->last_seq);
            continue;
        }
        break;
    }
    free(msg);
    if (rc != 0) {
        free(p.data);
        if (e.seq > 0) {
            c->last_seq = e.seq - 1; /* not stored */
        }
        return rc;
    }
    ds_remember(c, epoch, digest);
    json_object_set_new(r->reply, "seq", json_integer(e.seq));
    ds_deliver(r->s, c, &p.e);
    free(p.data);
    return 0;
}

/* ---- delivery ---- */

typedef struct {
    sig_req_t *r;
    ds_conv_t *c;
    const spk_chat_cursor_t *cur;
    int64_t sent;
    int64_t last;
} sync_t;

static int sync_entry_cb(void *ud, const spk_chat_entry_t *e)
{
    sync_t *x = ud;
    const spk_chat_cursor_t *cur = x->cur;
    const spk_token_claims_t *w = x->r->c->who;
    x->last = e->seq;
    bool own = strcmp(e->sender, w->sub) == 0 && strcmp(e->sender_iss, w->iss) == 0 &&
               strcmp(e->sender_device, cur->device) == 0;
    bool to_me = strcmp(e->to_device, cur->device) == 0 && strcmp(e->to, w->sub) == 0 &&
                 strcmp(e->to_iss, w->iss) == 0;
    if (e->type == SPK_CHAT_ENTRY_WELCOME ? !to_me : own) {
        return 0;
    }
    x->sent++;
    size_t len = 0;
    char *txt = ds_entry_text(e, &len);
    int rc = txt != NULL ? sig_deliver_text(x->r->s, x->r->c, txt, len) : SPK_ENOMEM;
    free(txt);
    return rc == SPK_EBACKPRESSURE ? 1 : 0;
}

/* Sends the device's backlog of one conversation and follows it live from then on. */
static int sync_conv(sig_req_t *r, const spk_chat_cursor_t *cur, json_t *out)
{
    ds_conv_t *c;
    int rc = ds_conv_get(r->s, cur->conversation, &c);
    if (rc != 0) {
        return rc == SPK_ENOTFOUND ? 0 : rc;
    }
    ds_member_t *m = ds_member_find(c, r->c->who->iss, r->c->who->sub);
    bool allowed = m != NULL && ds_conn_fits(c, m, r->c->who) && ds_member_allowed(r->s, c, m);
    sync_t x = {r, c, cur, 0, 0};
    if (allowed) {
        rc = ds_attach(r->s, r->c, c);
        int64_t after = cur->acked > cur->from_seq - 1 ? cur->acked : cur->from_seq - 1;
        if (rc == 0) {
            rc = spk_store_chat_log_each(r->s->store, c->rec.id, after, SYNC_BATCH, sync_entry_cb,
                                         &x);
        }
    }
    if (rc < 0) {
        return rc;
    }
    return json_array_append_new(
               out,
               json_pack("{s:s, s:b, s:I, s:I, s:b}", "conversation", c->rec.id, "allowed", allowed,
                         "sent", (json_int_t)x.sent, "last_seq", (json_int_t)c->last_seq, "more",
                         allowed && x.last < c->last_seq && x.sent >= SYNC_BATCH)) == 0
               ? 0
               : SPK_ENOMEM;
}

typedef struct {
    sig_req_t *r;
    json_t *out;
    const char *only;
} sync_all_t;

static int sync_cursor_cb(void *ud, const spk_chat_cursor_t *cur)
{
    sync_all_t *a = ud;
    if (a->only != NULL && strcmp(a->only, cur->conversation) != 0) {
        return 0;
    }
    return sync_conv(a->r, cur, a->out);
}

int sig_h_chat_sync(sig_req_t *r)
{
    int rc = 0;
    ds_conn_t *dc = ds_caller_device(r, &rc);
    if (dc == NULL) {
        return rc;
    }
    const char *only;
    rc = sig_get_str(r, "conversation", false, SPK_ID_LEN - 1, &only);
    if (rc != 0) {
        return rc;
    }
    dc->live = true;
    json_t *out = json_array();
    json_object_set_new(r->reply, "conversations", out);
    sync_all_t a = {r, out, only};
    const spk_token_claims_t *w = r->c->who;
    snprintf(r->object, sizeof(r->object), "%s", only != NULL ? only : dc->device);
    snprintf(r->detail, sizeof(r->detail), "device %s", dc->device);
    rc = spk_store_chat_cursor_each_of_device(r->s->store, w->iss, w->sub, dc->device,
                                              sync_cursor_cb, &a);
    return rc > 0 ? 0 : rc;
}

int sig_h_chat_ack(sig_req_t *r)
{
    int rc = 0;
    ds_conn_t *dc = ds_caller_device(r, &rc);
    if (dc == NULL) {
        return rc;
    }
    const char *id;
    int64_t seq = 0;
    rc = sig_get_str(r, "conversation", true, SPK_ID_LEN - 1, &id);
    if (rc == 0) {
        rc = sig_get_int(r, "seq", true, 1, INT64_MAX, &seq);
    }
    if (rc != 0) {
        return rc;
    }
    const spk_token_claims_t *w = r->c->who;
    spk_chat_cursor_t cur;
    if (r->s->chat_batching) {
        /* group commit (chat_batch.c): the device's cursor is read and checked inside the
         * batch's transaction (a read of its own here was the larger part of an ack's cost) */
        memset(&cur, 0, sizeof(cur));
        snprintf(cur.conversation, sizeof(cur.conversation), "%s", id);
        snprintf(cur.iss, sizeof(cur.iss), "%s", w->iss);
        snprintf(cur.sub, sizeof(cur.sub), "%s", w->sub);
        snprintf(cur.device, sizeof(cur.device), "%s", dc->device);
        cur.acked = seq;
        return sig_chat_batch_ack(r, &cur);
    }
    rc = spk_store_chat_cursor_get(r->s->store, id, w->iss, w->sub, dc->device, &cur);
    ds_conv_t *c = NULL;
    if (rc == 0) {
        rc = ds_conv_get(r->s, id, &c);
    }
    if (rc == SPK_ENOTFOUND || (rc == 0 && !cur.active)) {
        snprintf(r->why, sizeof(r->why), "this device has nothing in that conversation");
        return SPK_ENOTFOUND;
    }
    if (rc == 0 && (seq > c->last_seq || seq < cur.from_seq)) {
        snprintf(r->why, sizeof(r->why), "no entry %lld for this device", (long long)seq);
        return SPK_ESTATE;
    }
    if (rc != 0 || seq <= cur.acked) {
        return rc; /* acknowledged already: nothing changes */
    }
    cur.acked = seq;
    rc = sig_begin(r);
    if (rc == 0) {
        rc = spk_store_chat_cursor_put(r->s->store, &cur);
    }
    return rc == 0 ? sig_commit(r) : rc;
}
