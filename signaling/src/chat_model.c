/* The delivery service's in-memory model: conversations loaded from the store with their
 * observer (the group's public state), members and the decision whether each may be in the
 * group now, the devices of connections, and the delivery of appended log entries. */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/digest.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define IDENTITY_TAG "spk1"

size_t ds_identity(const char *iss, const char *sub, const char *device, uint8_t *out, size_t cap)
{
    int n = snprintf((char *)out, cap, IDENTITY_TAG "\n%s\n%s\n%s", iss, sub, device);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

/* Copies the next "\n"-separated field of [*p, end) into dst (cap bytes with NUL). */
static bool take_field(const uint8_t **p, const uint8_t *end, char *dst, size_t cap, bool last)
{
    const uint8_t *q = *p;
    while (q < end && *q != '\n') {
        q++;
    }
    size_t n = (size_t)(q - *p);
    if (n == 0 || n >= cap || (last ? q != end : q == end)) {
        return false;
    }
    memcpy(dst, *p, n);
    dst[n] = '\0';
    *p = last ? q : q + 1;
    return true;
}

int ds_identity_parse(const uint8_t *id, size_t n, ds_device_t *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *p = id, *end = id + n;
    char tag[8];
    if (!take_field(&p, end, tag, sizeof(tag), false) || strcmp(tag, IDENTITY_TAG) != 0 ||
        !take_field(&p, end, out->iss, sizeof(out->iss), false) ||
        !take_field(&p, end, out->sub, sizeof(out->sub), false) ||
        !take_field(&p, end, out->device, sizeof(out->device), true)) {
        return SPK_EDECODE;
    }
    return 0;
}

/* ---- conversations ---- */

static void conv_free(ds_conv_t *c)
{
    spk_mls_observer_free(c->obs);
    free(c->members);
    spk_map_free(&c->member_at);
    free(c->conns);
    free(c);
}

/* The key of member_at; its length. */
static size_t member_key(const char *iss, const char *sub, char out[2 * SPK_SUB_LEN])
{
    size_t a = strlen(iss), b = strlen(sub);
    if (a + b + 1 >= 2 * SPK_SUB_LEN) {
        return 0;
    }
    memcpy(out, iss, a);
    out[a] = '\n';
    memcpy(out + a + 1, sub, b);
    return a + b + 1;
}

int ds_member_add(ds_conv_t *c, const spk_chat_member_rec_t *rec)
{
    ds_member_t *m = ds_member_find(c, rec->iss, rec->sub);
    if (m != NULL) {
        m->rec = *rec;
        m->role = spk_role_parse(rec->role);
        m->gen = 0;
        return 0;
    }
    if (c->n_members == c->cap_members) {
        size_t ncap = c->cap_members ? c->cap_members * 2 : 8;
        ds_member_t *nm = realloc(c->members, ncap * sizeof(*nm));
        if (nm == NULL) {
            return SPK_ENOMEM;
        }
        c->members = nm;
        c->cap_members = ncap;
    }
    char key[2 * SPK_SUB_LEN];
    size_t kn = member_key(rec->iss, rec->sub, key);
    if (kn == 0 ||
        spk_map_put(&c->member_at, key, kn, (void *)(uintptr_t)(c->n_members + 1)) != 0) {
        return SPK_ENOMEM;
    }
    c->members[c->n_members++] = (ds_member_t){.rec = *rec, .role = spk_role_parse(rec->role)};
    return 0;
}

static int load_member_cb(void *ud, const spk_chat_member_rec_t *m)
{
    return ds_member_add(ud, m);
}

static bool recent_digest(const uint8_t *msg, size_t n, uint64_t *h)
{
    uint8_t md[32];
    if (spk_sha256(md, msg, n, NULL, 0) != 0) {
        return false;
    }
    memcpy(h, md, sizeof(*h));
    return true;
}

typedef struct {
    uint64_t h[DS_RECENT];
    size_t n;
} recent_load_t;

static int recent_row_cb(void *ud, const spk_chat_entry_t *e)
{
    recent_load_t *x = ud;
    if (x->n < DS_RECENT && recent_digest(e->data, e->data_len, &x->h[x->n])) {
        x->n++;
    }
    return 0;
}

/* The replay window survives the conversation leaving memory and a restart: the window stored
 * when it last left memory (or at the last maintenance), then the digests of the current epoch's
 * application messages appended after that (still in the log: an application message is
 * trimmed only once a stored window covers it). */
static int load_recent(spk_sig_t *s, ds_conv_t *c)
{
    recent_load_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return SPK_ENOMEM;
    }
    uint64_t epoch = spk_mls_observer_epoch(c->obs), stored_epoch = 0;
    int64_t covered = 0;
    size_t n = 0;
    c->recent_epoch = epoch;
    c->n_recent = 0;
    int rc = spk_store_chat_replay_get(s->store, c->rec.id, &stored_epoch, &covered, c->recent,
                                       DS_RECENT, &n);
    if (rc == 0 && stored_epoch == epoch) {
        c->n_recent = n;
    }
    if (rc == SPK_ENOTFOUND) {
        rc = 0;
    }
    c->recent_seq = covered;
    if (rc == 0) {
        rc = spk_store_chat_log_recent(s->store, c->rec.id, epoch, SPK_CHAT_ENTRY_MESSAGE, covered,
                                       DS_RECENT, recent_row_cb, x);
    }
    for (size_t i = x->n; rc == 0 && i-- > 0;) {
        c->recent[c->n_recent++ % DS_RECENT] = x->h[i];
    }
    free(x);
    return rc;
}

int ds_recent_save(spk_sig_t *s, ds_conv_t *c)
{
    if (c->recent_seq >= c->last_seq) {
        return 0; /* nothing appended since it was stored */
    }
    uint64_t h[DS_RECENT];
    size_t n = c->n_recent < DS_RECENT ? c->n_recent : DS_RECENT;
    size_t start = c->n_recent < DS_RECENT ? 0 : c->n_recent % DS_RECENT;
    for (size_t i = 0; i < n; i++) {
        h[i] = c->recent[(start + i) % DS_RECENT];
    }
    int rc = spk_store_chat_replay_put(s->store, c->rec.id, c->recent_epoch, c->last_seq, h, n);
    if (rc == 0) {
        c->recent_seq = c->last_seq; /* (the caller sets -1 when its transaction rolls back) */
    }
    return rc;
}

/* Reads a conversation into a zeroed c (on failure c holds what was read: conv_free it). */
static int conv_load(spk_sig_t *s, const char *id, ds_conv_t *c)
{
    int rc = spk_store_chat_conv_get(s->store, id, &c->rec);
    if (rc == 0 && c->rec.has_group) {
        spk_store_blob_t blob = {0};
        uint64_t epoch = 0;
        rc = spk_store_chat_group_get(s->store, id, &epoch, &blob);
        if (rc == 0) {
            rc = spk_mls_observer_restore(&c->obs, blob.p, blob.n);
        }
        c->saved = rc == 0;
        c->saved_epoch = epoch;
        spk_store_blob_free(&blob);
    }
    if (rc == 0) {
        rc = spk_store_chat_log_last(s->store, id, &c->last_seq);
        c->delivered_seq = c->last_seq;
    }
    if (rc == 0 && c->obs != NULL) {
        rc = load_recent(s, c);
    }
    if (rc == 0) {
        rc = spk_store_chat_member_each(s->store, id, load_member_cb, c);
    }
    return rc;
}

int ds_conv_get(spk_sig_t *s, const char *id, ds_conv_t **out)
{
    ds_conv_t *c = spk_map_get_str(&s->chats, id);
    if (c != NULL) {
        *out = c;
        return 0;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    int rc = conv_load(s, id, c);
    if (rc == 0) {
        rc = spk_map_put_str(&s->chats, c->rec.id, c);
    }
    if (rc != 0) {
        conv_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void ds_conv_reload(spk_sig_t *s, ds_conv_t *c)
{
    /* the failed request's writes go first (the request is refused; run_action's rollback is
     * then a no-op) */
    if (spk_store_in_txn(s->store)) {
        spk_store_rollback(s->store);
    }
    ds_conv_t *fresh = calloc(1, sizeof(*fresh));
    int rc = fresh != NULL ? conv_load(s, c->rec.id, fresh) : SPK_ENOMEM;
    if (rc == 0) {
        /* the same conversation, as stored; the connections that follow it keep following */
        uint64_t *conns = c->conns;
        size_t n_conns = c->n_conns, cap_conns = c->cap_conns;
        int64_t trimmed_at = c->trimmed_at;
        spk_mls_observer_free(c->obs);
        free(c->members);
        spk_map_free(&c->member_at);
        *c = *fresh;
        c->conns = conns;
        c->n_conns = n_conns;
        c->cap_conns = cap_conns;
        c->trimmed_at = trimmed_at;
        free(fresh);
        return;
    }
    if (fresh != NULL) {
        conv_free(fresh);
    }
    /* Cannot read it now: drop it from memory; the connections that followed it get it again
     * when they sync (chat.sync), and everything is in the store. */
    spk_warn(0, "chat: conversation %s could not be reloaded: %s", c->rec.id, spk_strerror(rc));
    for (size_t i = c->n_conns; i-- > 0;) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        if (conn != NULL) {
            ds_detach(s, conn, c);
        }
    }
    spk_map_del_str(&s->chats, c->rec.id);
    conv_free(c);
}

void sig_chat_sweep(spk_sig_t *s)
{
    ds_conv_t *idle[128];
    size_t n = 0, it = 0;
    bool dirty = false;
    void *v;
    while (n < sizeof(idle) / sizeof(idle[0]) && spk_map_next(&s->chats, &it, &v)) {
        if (((ds_conv_t *)v)->n_conns == 0) {
            dirty = dirty || ((ds_conv_t *)v)->recent_seq < ((ds_conv_t *)v)->last_seq;
            idle[n++] = v;
        }
    }
    /* Their replay windows are stored first (so that their messages can be trimmed); when that
     * fails they stay in memory and are tried again. */
    int rc = dirty ? spk_store_begin(s->store) : 0;
    for (size_t i = 0; dirty && rc == 0 && i < n; i++) {
        rc = ds_recent_save(s, idle[i]);
    }
    if (dirty && rc == 0) {
        rc = spk_store_commit(s->store, NULL);
    } else if (dirty) {
        spk_store_rollback(s->store);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            idle[i]->recent_seq = -1; /* stored again next time */
        }
        spk_warn(0, "chat: storing replay windows failed: %s", spk_strerror(rc));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        spk_map_del_str(&s->chats, idle[i]->rec.id);
        conv_free(idle[i]);
    }
}

/* Acknowledged entries are deleted in batches of at most this many, one batch a tick (a second),
 * so that a large backlog does not hold the control thread (and every connection) for seconds. */
#define TRIM_BATCH 1000

/* Ends a maintenance transaction: committed when rc is 0, rolled back otherwise. */
static int maint_end(spk_sig_t *s, int rc)
{
    if (rc == 0) {
        return spk_store_commit(s->store, NULL);
    }
    spk_store_rollback(s->store);
    return rc;
}

/* One more batch of acknowledged entries, in a transaction of its own. */
static void trim_more(spk_sig_t *s)
{
    int64_t trimmed = 0;
    int rc = spk_store_begin(s->store);
    if (rc == 0) {
        rc = spk_store_chat_log_trim_acked(s->store, TRIM_BATCH, &trimmed);
    }
    rc = maint_end(s, rc);
    s->chat_trim_more = rc == 0 && trimmed == TRIM_BATCH;
    if (rc != 0) {
        spk_warn(0, "chat: deleting acknowledged entries failed: %s", spk_strerror(rc));
    } else {
        spk_debug(0, "chat: deleted %lld more acknowledged entries", (long long)trimmed);
    }
}

void sig_chat_tick(spk_sig_t *s, int64_t now)
{
    sig_chat_sweep(s);
    if (s->chat_trim_more) {
        trim_more(s);
    }
    if (s->access_change_at != 0 && now >= s->access_change_at) {
        /* a delegation a member's access rested on ran out: decide again, now */
        s->access_change_at = 0;
        s->access_gen++;
    }
    if (now - s->chat_maint_at < 60) {
        return;
    }
    s->chat_maint_at = now;
    s->access_gen++; /* delegations run out with time, not only with events */
    int64_t trimmed = 0, expired = 0, kps = 0;
    int64_t keep_s = s->cfg.chat_retention_s > 0 ? s->cfg.chat_retention_s : 30 * 86400;
    int rc = spk_store_begin(s->store);
    size_t it = 0;
    void *v;
    while (rc == 0 && spk_map_next(&s->chats, &it, &v)) {
        rc = ds_recent_save(s, v); /* so that their messages can be trimmed */
    }
    if (rc == 0) {
        rc = spk_store_chat_log_trim_acked(s->store, TRIM_BATCH, &trimmed);
    }
    if (rc == 0) {
        rc = spk_store_chat_log_expire(s->store, (now - keep_s) * 1000, &expired);
    }
    if (rc == 0) {
        rc = spk_store_chat_kp_expire(s->store, now, &kps);
    }
    int64_t files = 0;
    if (rc == 0) {
        rc = sig_files_expire(s, now, &files);
    }
    rc = maint_end(s, rc);
    s->chat_trim_more = rc == 0 && trimmed == TRIM_BATCH;
    if (rc != 0) {
        it = 0;
        while (spk_map_next(&s->chats, &it, &v)) {
            ((ds_conv_t *)v)->recent_seq = -1; /* replay windows: stored again next time */
        }
        spk_warn(0, "chat: store maintenance failed: %s", spk_strerror(rc));
    } else if (trimmed + expired + kps + files > 0) {
        spk_info(0,
                 "chat: deleted %lld acknowledged and %lld expired entries, %lld KeyPackages, "
                 "%lld files",
                 (long long)trimmed, (long long)expired, (long long)kps, (long long)files);
    }
}

void sig_chat_free_all(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->chats, &it, &v)) {
        conv_free(v);
    }
    spk_map_free(&s->chats);
}

void sig_chat_access_changed(spk_sig_t *s)
{
    s->access_gen++;
}

/* ---- who may be in a conversation ---- */

ds_member_t *ds_member_find(ds_conv_t *c, const char *iss, const char *sub)
{
    char key[2 * SPK_SUB_LEN];
    size_t kn = member_key(iss, sub, key);
    uintptr_t at = kn > 0 ? (uintptr_t)spk_map_get(&c->member_at, key, kn) : 0;
    return at > 0 && at <= c->n_members ? &c->members[at - 1] : NULL;
}

/* The relationship of a member's role to the conversation, from the store and the consult. */
static bool relationship_holds(spk_sig_t *s, ds_conv_t *c, const spk_chat_member_rec_t *m)
{
    spk_role_t role = spk_role_parse(m->role);
    const char *kind = c->rec.kind;
    bool consult_kind = c->rec.consult[0] != '\0';
    switch (role) {
    case SPK_ROLE_GP:
    case SPK_ROLE_ASSISTANT:
        return true; /* their practice is checked on their own requests (token claim) */
    case SPK_ROLE_REMOTE_GP: {
        spk_delegation_rec_t d;
        if (spk_store_delegation_find_active(s->store, c->rec.practice, m->iss, m->sub, spk_now_s(),
                                             &d) != 0) {
            return false;
        }
        if (d.valid_until > 0 &&
            (s->access_change_at == 0 || d.valid_until < s->access_change_at)) {
            s->access_change_at = d.valid_until; /* decided again when it runs out */
        }
        return true;
    }
    case SPK_ROLE_PARTNER:
        return strcmp(kind, "care_team") == 0;
    case SPK_ROLE_SPECIALIST: {
        if (!consult_kind || strcmp(kind, "econsult") == 0) {
            return false;
        }
        sig_consult_t *sc = NULL;
        if (sig_consult_lookup(s, c->rec.consult, &sc) != 0 ||
            sig_specialist_invited(s, sc, m->iss, m->sub) != 0) {
            return false;
        }
        if (strcmp(kind, "consult") != 0) {
            return true;
        }
        /* A consult's chat, and with it the call's media keys, is for who is in the call. */
        sig_part_t *p = sig_part_find_sub(sc, m->iss, m->sub);
        return p != NULL && p->rec.state == SPK_PART_ADMITTED;
    }
    case SPK_ROLE_PATIENT: {
        if (strcmp(kind, "care_team") == 0) {
            return true;
        }
        if (!consult_kind || strcmp(kind, "specialist_question") == 0) {
            return false;
        }
        sig_consult_t *sc = NULL;
        if (sig_consult_lookup(s, c->rec.consult, &sc) != 0) {
            return false;
        }
        sig_part_t *p = sig_part_find(sc, m->sub);
        if (p == NULL) {
            return false;
        }
        /* A consult's chat is for who is admitted to the call; an e-consult for the patient
         * unless refused. */
        return strcmp(kind, "consult") == 0 ? p->rec.state == SPK_PART_ADMITTED
                                            : p->rec.state != SPK_PART_DENIED;
    }
    default:
        return false;
    }
}

bool ds_member_allowed(spk_sig_t *s, ds_conv_t *c, ds_member_t *m)
{
    if (m->gen != s->access_gen || m->gen == 0) {
        m->allowed =
            m->rec.removed_at == 0 && c->rec.closed_at == 0 && relationship_holds(s, c, &m->rec);
        m->gen = s->access_gen;
    }
    return m->allowed;
}

bool ds_conn_fits(const ds_conv_t *c, const ds_member_t *m, const spk_token_claims_t *w)
{
    if (m->role != w->role) {
        return false;
    }
    if (w->role == SPK_ROLE_GP || w->role == SPK_ROLE_ASSISTANT) {
        return strcmp(w->practice, c->rec.practice) == 0;
    }
    return true;
}

int ds_caller_allowed(sig_req_t *r, ds_conv_t *c)
{
    const spk_token_claims_t *w = r->c->who;
    snprintf(r->practice, sizeof(r->practice), "%s", c->rec.practice);
    snprintf(r->patient, sizeof(r->patient), "%s", c->rec.patient);
    snprintf(r->object, sizeof(r->object), "%s", c->rec.id);
    ds_member_t *m = ds_member_find(c, w->iss, w->sub);
    if (m == NULL || m->role != w->role || !ds_member_allowed(r->s, c, m)) {
        snprintf(r->why, sizeof(r->why), "not a member of this conversation");
        return SPK_EFORBIDDEN;
    }
    if (w->role == SPK_ROLE_PATIENT && w->consult[0] != '\0' && c->rec.consult[0] != '\0' &&
        strcmp(w->consult, c->rec.consult) != 0) {
        snprintf(r->why, sizeof(r->why), "the session is for another consult");
        return SPK_EFORBIDDEN;
    }
    if (sig_is_staff(w->role)) {
        return sig_rel_practice_in(
            r, c->rec.practice,
            c->rec.consult[0] ? c->rec.consult : NULL); /* practice claim, acts_for, delegation */
    }
    return 0;
}

ds_conn_t *ds_caller_device(sig_req_t *r, int *rc)
{
    if (r->c->chat == NULL) {
        snprintf(r->why, sizeof(r->why), "declare the device first (chat.device)");
        *rc = SPK_ESTATE;
        return NULL;
    }
    *rc = 0;
    return r->c->chat;
}

bool ds_device_in_group(const ds_conv_t *c, const char *iss, const char *sub, const char *device,
                        uint32_t *leaf)
{
    if (c->obs == NULL) {
        return false;
    }
    uint8_t want[DS_IDENTITY_MAX];
    size_t wn = ds_identity(iss, sub, device, want, sizeof(want));
    uint32_t n = spk_mls_observer_leaf_count(c->obs);
    for (uint32_t l = 0; wn > 0 && l < n; l++) {
        const uint8_t *id;
        size_t len;
        if (spk_mls_observer_member_identity(c->obs, l, &id, &len) == 0 && len == wn &&
            memcmp(id, want, wn) == 0) {
            if (leaf != NULL) {
                *leaf = l;
            }
            return true;
        }
    }
    return false;
}

/* ---- live delivery ---- */

int ds_attach(spk_sig_t *s, sig_conn_t *conn, ds_conv_t *c)
{
    (void)s;
    ds_conn_t *dc = conn->chat;
    for (size_t i = 0; i < dc->n_convs; i++) {
        if (dc->convs[i] == c) {
            return 0;
        }
    }
    if (dc->n_convs == dc->cap_convs) {
        size_t ncap = dc->cap_convs ? dc->cap_convs * 2 : 4;
        ds_conv_t **nc = realloc(dc->convs, ncap * sizeof(*nc));
        if (nc == NULL) {
            return SPK_ENOMEM;
        }
        dc->convs = nc;
        dc->cap_convs = ncap;
    }
    if (spk_u64_push(&c->conns, &c->n_conns, &c->cap_conns, conn->id) != 0) {
        return SPK_ENOMEM;
    }
    dc->convs[dc->n_convs++] = c;
    return 0;
}

void ds_detach(spk_sig_t *s, sig_conn_t *conn, ds_conv_t *c)
{
    (void)s;
    ds_conn_t *dc = conn->chat;
    for (size_t i = 0; dc != NULL && i < dc->n_convs; i++) {
        if (dc->convs[i] == c) {
            dc->convs[i] = dc->convs[--dc->n_convs];
            break;
        }
    }
    for (size_t i = 0; i < c->n_conns; i++) {
        if (c->conns[i] == conn->id) {
            c->conns[i] = c->conns[--c->n_conns];
            break;
        }
    }
}

void sig_chat_conn_free(spk_sig_t *s, sig_conn_t *conn)
{
    ds_conn_t *dc = conn->chat;
    if (dc == NULL) {
        return;
    }
    while (dc->n_convs > 0) {
        ds_detach(s, conn, dc->convs[dc->n_convs - 1]);
    }
    free(dc->convs);
    free(dc);
    conn->chat = NULL;
}

int ds_append(spk_sig_t *s, ds_conv_t *c, spk_chat_entry_t *e, ds_pending_t *pending)
{
    snprintf(e->conversation, sizeof(e->conversation), "%s", c->rec.id);
    e->seq = c->last_seq + 1;
    e->at_ms = spk_now_ms();
    int rc = spk_store_chat_log_append(s->store, e);
    if (rc != 0) {
        return rc;
    }
    c->last_seq = e->seq;
    pending->e = *e;
    pending->data = malloc(e->data_len);
    if (pending->data == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(pending->data, e->data, e->data_len);
    pending->e.data = pending->data;
    return 0;
}

bool ds_replayed(ds_conv_t *c, uint64_t epoch, const uint8_t *msg, size_t n, uint64_t *digest)
{
    if (!recent_digest(msg, n, digest)) {
        *digest = 0;
        return false; /* cannot tell: let the members' MLS refuse a replay */
    }
    if (c->recent_epoch != epoch) {
        return false;
    }
    size_t have = c->n_recent < DS_RECENT ? c->n_recent : DS_RECENT;
    for (size_t i = 0; i < have; i++) {
        if (c->recent[i] == *digest) {
            return true;
        }
    }
    return false;
}

void ds_remember(ds_conv_t *c, uint64_t epoch, uint64_t digest)
{
    if (c->recent_epoch != epoch) {
        c->recent_epoch = epoch;
        c->n_recent = 0;
    }
    c->recent[c->n_recent++ % DS_RECENT] = digest;
}

static const char *const entry_types[] = {"", "commit", "proposal", "message", "welcome"};

char *ds_entry_text(const spk_chat_entry_t *e, size_t *len)
{
    /* Written directly (as jansson would, same order of fields): building a JSON tree and
     * dumping it was a fifth of a message's cost in the core (docs/performance.md); the data
     * (base64url) needs no escaping, the names are escaped. */
    int t = (int)e->type >= 1 && (int)e->type <= 4 ? (int)e->type : 0;
    char conv[6 * SPK_ID_LEN], iss[6 * SPK_SUB_LEN], sub[6 * SPK_SUB_LEN];
    char dev[6 * SPK_CHAT_DEVICE_LEN];
    spk_json_escape(conv, sizeof(conv), e->conversation);
    spk_json_escape(iss, sizeof(iss), e->sender_iss);
    spk_json_escape(sub, sizeof(sub), e->sender);
    spk_json_escape(dev, sizeof(dev), e->sender_device);
    size_t cap = strlen(conv) + strlen(iss) + strlen(sub) + strlen(dev) + 256 +
                 spk_b64url_encoded_len(e->data_len);
    char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    int hn = snprintf(out, cap,
                      "{\"type\":\"chat.entry\",\"conversation\":\"%s\",\"seq\":%lld,"
                      "\"epoch\":%lld,\"kind\":\"%s\",\"sender\":{\"iss\":\"%s\",\"sub\":\"%s\","
                      "\"device\":\"%s\"},\"at_ms\":%lld,\"data\":\"",
                      conv, (long long)e->seq, (long long)(json_int_t)e->epoch, entry_types[t], iss,
                      sub, dev, (long long)e->at_ms);
    if (hn < 0 || (size_t)hn >= cap) {
        free(out);
        return NULL;
    }
    size_t n = (size_t)hn;
    n += spk_b64url_encode(out + n, e->data, e->data_len);
    memcpy(out + n, "\"}", 3);
    *len = n + 2;
    return out;
}

/* Should the device of this connection get entry e? */
static bool wants(spk_sig_t *s, ds_conv_t *c, sig_conn_t *conn, const spk_chat_entry_t *e)
{
    const ds_conn_t *dc = conn->chat;
    const spk_token_claims_t *w = conn->who;
    bool own = strcmp(dc->device, e->sender_device) == 0 && strcmp(w->sub, e->sender) == 0 &&
               strcmp(w->iss, e->sender_iss) == 0;
    if (e->type == SPK_CHAT_ENTRY_WELCOME) {
        if (strcmp(dc->device, e->to_device) != 0 || strcmp(w->sub, e->to) != 0 ||
            strcmp(w->iss, e->to_iss) != 0) {
            return false;
        }
    } else if (own) {
        return false; /* the sender has it */
    }
    ds_member_t *m = ds_member_find(c, w->iss, w->sub);
    return m != NULL && ds_conn_fits(c, m, w) && ds_member_allowed(s, c, m);
}

static void deliver_gap(spk_sig_t *s, ds_conv_t *c, int64_t upto);

void ds_deliver(spk_sig_t *s, ds_conv_t *c, const spk_chat_entry_t *e)
{
    if (e->seq <= c->delivered_seq) {
        return; /* went out here already (another node's entry, caught up) */
    }
    if (e->seq > c->delivered_seq + 1 && s->io.publish_cb != NULL) {
        /* Entries other nodes appended in between and whose events have not arrived yet go
         * first, so devices here get the log in order. */
        deliver_gap(s, c, e->seq - 1);
    }
    c->delivered_seq = e->seq;
    sig_bus_chat(s, c->rec.id, e->seq, (int)e->type);
    size_t len = 0;
    char *txt = ds_entry_text(e, &len);
    if (txt == NULL) {
        return;
    }
    sig_share_begin(s, txt, len); /* held once for every device, not a copy each */
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        if (conn != NULL && conn->chat != NULL && conn->chat->live && wants(s, c, conn, e)) {
            sig_deliver_text(s, conn, txt, len);
        }
    }
    sig_share_end(s);
    free(txt);
}

json_t *ds_conv_json(spk_sig_t *s, ds_conv_t *c)
{
    json_t *members = json_array();
    for (size_t i = 0; members != NULL && i < c->n_members; i++) {
        ds_member_t *m = &c->members[i];
        if (m->rec.removed_at != 0) {
            continue;
        }
        json_array_append_new(members,
                              json_pack("{s:s, s:s, s:s, s:s, s:b}", "iss", m->rec.iss, "sub",
                                        m->rec.sub, "name", m->rec.name, "role", m->rec.role,
                                        "allowed", ds_member_allowed(s, c, m)));
    }
    json_t *devices = json_array();
    uint32_t n = c->obs != NULL ? spk_mls_observer_leaf_count(c->obs) : 0;
    for (uint32_t l = 0; devices != NULL && l < n; l++) {
        const uint8_t *id;
        size_t len;
        ds_device_t d;
        if (spk_mls_observer_member_identity(c->obs, l, &id, &len) == 0 &&
            ds_identity_parse(id, len, &d) == 0) {
            json_array_append_new(devices,
                                  json_pack("{s:I, s:s, s:s, s:s}", "leaf", (json_int_t)l, "iss",
                                            d.iss, "sub", d.sub, "device", d.device));
        }
    }
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:o, s:o}", "id", c->rec.id, "kind",
        c->rec.kind, "practice", c->rec.practice, "patient", c->rec.patient, "consult",
        c->rec.consult, "title", c->rec.title, "created_at", (json_int_t)c->rec.created_at, "epoch",
        (json_int_t)(c->obs != NULL ? spk_mls_observer_epoch(c->obs) : 0), "group", c->obs != NULL,
        "last_seq", (json_int_t)c->last_seq, "members", members, "devices", devices);
}

/* ---- entries another node appended (bus.c) ---- */

typedef struct {
    spk_sig_t *s;
    ds_conv_t *c;
} catch_up_t;

static int catch_up_cb(void *ud, const spk_chat_entry_t *e)
{
    catch_up_t *k = ud;
    ds_deliver(k->s, k->c, e);
    if (k->c->last_seq < e->seq) {
        k->c->last_seq = e->seq;
    }
    return 0;
}

static void deliver_gap(spk_sig_t *s, ds_conv_t *c, int64_t upto)
{
    catch_up_t k = {s, c};
    int64_t from = c->delivered_seq;
    bool rx = s->bus_rx;
    s->bus_rx = true; /* the nodes that appended them told the others */
    int rc = spk_store_chat_log_each(s->store, c->rec.id, from, upto - from, catch_up_cb, &k);
    s->bus_rx = rx;
    if (rc != 0) {
        spk_warn(0, "bus: cannot read conversation %s: %s", c->rec.id, spk_strerror(rc));
    }
    c->delivered_seq = upto; /* what could not be read is for the devices' next sync */
}

/* Connections here whose device is in the group follow it (a Welcome made elsewhere). */
static void follow_members(spk_sig_t *s, ds_conv_t *c)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *conn = v;
        if (conn->chat != NULL && conn->chat->live &&
            ds_device_in_group(c, conn->who->iss, conn->who->sub, conn->chat->device, NULL)) {
            ds_attach(s, conn, c);
        }
    }
}

static bool any_live_device(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        const sig_conn_t *conn = v;
        if (conn->chat != NULL && conn->chat->live) {
            return true;
        }
    }
    return false;
}

void sig_chat_catch_up(spk_sig_t *s, const char *conv, int64_t seq, int kind)
{
    ds_conv_t *c = spk_map_get_str(&s->chats, conv);
    if (c != NULL ? seq <= c->delivered_seq
                  : (kind == SPK_CHAT_ENTRY_MESSAGE || !any_live_device(s))) {
        return; /* known, or nobody here can be concerned (it is read from the store on use) */
    }
    int64_t from = c != NULL ? c->delivered_seq : seq - 1;
    if (c == NULL || kind != SPK_CHAT_ENTRY_MESSAGE) {
        /* The group or its members may have changed, and devices here may have joined. */
        if (c != NULL) {
            ds_conv_reload(s, c); /* frees c when it cannot be read */
            c = spk_map_get_str(&s->chats, conv);
        } else if (ds_conv_get(s, conv, &c) != 0) {
            c = NULL;
        }
        if (c == NULL) {
            spk_warn(0, "bus: cannot read conversation %s again", conv);
            return;
        }
        sig_chat_access_changed(s);
        c->delivered_seq = from; /* read again: what is new to the devices here is still new */
    }
    deliver_gap(s, c, seq);
    if (kind != SPK_CHAT_ENTRY_MESSAGE) {
        /* Devices here that the Commit added follow from its Welcome on (the next entry), as on
         * the node that took the Commit. */
        follow_members(s, c);
    }
}
