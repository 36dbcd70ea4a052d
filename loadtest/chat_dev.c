/* A chat device in C over spreekd's delivery service (chat_dev.h). */
#define _GNU_SOURCE
#include "chat_dev.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/util.h"

/* ---- helpers ---- */

const char *cdev_str(json_t *m, const char *key)
{
    const char *s = json_string_value(json_object_get(m, key));
    return s != NULL ? s : "";
}

char *cdev_b64(const uint8_t *p, size_t n)
{
    char *s = malloc(spk_b64url_encoded_len(n) + 1);
    if (s != NULL) {
        spk_b64url_encode(s, p, n);
    }
    return s;
}

uint8_t *cdev_unb64(const char *s, size_t *n)
{
    size_t len = strlen(s);
    uint8_t *p = malloc(len * 3 / 4 + 4);
    long got = p != NULL ? spk_b64url_decode(p, len * 3 / 4 + 4, s, len) : -1;
    if (got < 0) {
        free(p);
        return NULL;
    }
    *n = (size_t)got;
    return p;
}

static void report(cdev_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(cdev_t *d, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (d->env->cbs->error_cb != NULL) {
        d->env->cbs->error_cb(d, buf);
    }
}

/* ---- requests ---- */

static int req_push(cdev_t *d, uint64_t id, cdev_answer_cb cb, void *ud)
{
    if (d->n_reqs == d->cap_reqs) {
        size_t ncap = d->cap_reqs ? d->cap_reqs * 2 : 16;
        cdev_req_t *n = malloc(ncap * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        for (size_t i = 0; i < d->n_reqs; i++) {
            n[i] = d->reqs[(d->req_head + i) % d->cap_reqs];
        }
        free(d->reqs);
        d->reqs = n;
        d->cap_reqs = ncap;
        d->req_head = 0;
    }
    d->reqs[(d->req_head + d->n_reqs) % d->cap_reqs] = (cdev_req_t){id, cb, ud};
    d->n_reqs++;
    return 0;
}

static bool req_pop(cdev_t *d, json_int_t re, cdev_req_t *out)
{
    if (d->n_reqs == 0 || (json_int_t)d->reqs[d->req_head].id != re) {
        return false;
    }
    *out = d->reqs[d->req_head];
    d->req_head = (d->req_head + 1) % d->cap_reqs;
    d->n_reqs--;
    return true;
}

static void send_text(cdev_t *d, uint64_t id, const char *txt, size_t n, cdev_answer_cb cb,
                      void *ud)
{
    if (d->ws == NULL || !spk_ws_client_is_open(d->ws) || req_push(d, id, cb, ud) != 0) {
        if (cb != NULL) {
            cb(d, ud, "disconnected", NULL);
        }
        return;
    }
    spk_ws_client_send(d->ws, SPK_WS_OP_TEXT, txt, n);
}

void cdev_request(cdev_t *d, json_t *msg, cdev_answer_cb cb, void *ud)
{
    uint64_t id = ++d->next_id;
    char *txt = NULL;
    if (msg != NULL) {
        json_object_set_new(msg, "id", json_integer((json_int_t)id));
        txt = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
    }
    if (txt == NULL) {
        if (cb != NULL) {
            cb(d, ud, "internal", NULL);
        }
        return;
    }
    send_text(d, id, txt, strlen(txt), cb, ud);
    free(txt);
}

void cdev_request_text(cdev_t *d, const char *body, size_t len, cdev_answer_cb cb, void *ud)
{
    uint64_t id = ++d->next_id;
    char head[40];
    int hn = snprintf(head, sizeof(head), "{\"id\":%llu,", (unsigned long long)id);
    char stack[1024];
    size_t total = (size_t)hn + len - 1;
    char *txt = total <= sizeof(stack) ? stack : malloc(total);
    if (txt == NULL || len < 2 || body[0] != '{') {
        if (txt != stack) {
            free(txt);
        }
        if (cb != NULL) {
            cb(d, ud, "internal", NULL);
        }
        return;
    }
    memcpy(txt, head, (size_t)hn);
    memcpy(txt + hn, body + 1, len - 1);
    send_text(d, id, txt, total, cb, ud);
    if (txt != stack) {
        free(txt);
    }
}

/* ---- conversations ---- */

cdev_conv_t *cdev_conv(cdev_t *d, const char *id, bool create)
{
    for (size_t i = 0; i < d->n_convs; i++) {
        if (strcmp(d->convs[i]->id, id) == 0) {
            return d->convs[i];
        }
    }
    if (!create || strlen(id) >= CDEV_ID_LEN) {
        return NULL;
    }
    if (d->n_convs == d->cap_convs) {
        size_t ncap = d->cap_convs ? d->cap_convs * 2 : 4;
        cdev_conv_t **n = realloc(d->convs, ncap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        d->convs = n;
        d->cap_convs = ncap;
    }
    cdev_conv_t *cv = calloc(1, sizeof(*cv));
    if (cv == NULL) {
        return NULL;
    }
    snprintf(cv->id, sizeof(cv->id), "%s", id);
    cv->decrypt = true;
    d->convs[d->n_convs++] = cv;
    return cv;
}

/* ---- acknowledgement ---- */

static void ack_done(cdev_t *d, void *ud, const char *code, json_t *m)
{
    cdev_conv_t *cv = ud;
    (void)m;
    cv->ack_busy = false;
    if (code != NULL && strcmp(code, "disconnected") != 0 && !cv->removed && !d->passive) {
        d->env->req_errors++;
        report(d, "chat.ack %s: %s", cv->id, code);
    }
}

static void ack_one(cdev_t *d, cdev_conv_t *cv)
{
    if (cv->ack_busy || cv->removed || cv->seen <= cv->acked || !d->ready) {
        return;
    }
    char body[160];
    int n =
        snprintf(body, sizeof(body), "{\"type\":\"chat.ack\",\"conversation\":\"%s\",\"seq\":%lld}",
                 cv->id, (long long)cv->seen);
    cv->ack_busy = true;
    /* The server answers in order: once this answer is ok, everything up to seen is durable. */
    cv->acked = cv->seen;
    cdev_request_text(d, body, (size_t)n, ack_done, cv);
}

void cdev_ack_flush(cdev_t *d)
{
    for (size_t i = 0; i < d->n_convs; i++) {
        ack_one(d, d->convs[i]);
    }
}

static void ack_timer_cb(uv_timer_t *t)
{
    cdev_env_t *e = t->data;
    for (size_t i = 0; i < e->n_devs; i++) {
        cdev_ack_flush(e->devs[i]);
    }
}

/* ---- commits ---- */

typedef struct cdev_commit {
    cdev_t *d;
    char conv[CDEV_ID_LEN];
    uint8_t **add;
    size_t *add_len;
    size_t n_add;
    uint32_t *remove;
    size_t n_remove;
    int retries, attempt;
    uint64_t epoch; /* the epoch the Commit was built in */
    cdev_answer_cb cb;
    void *ud;
} cdev_commit_t;

static void commit_free(cdev_commit_t *c)
{
    for (size_t i = 0; i < c->n_add; i++) {
        free(c->add[i]);
    }
    free(c->add);
    free(c->add_len);
    free(c->remove);
    free(c);
}

static void commit_send(cdev_commit_t *c);

static void commit_finish(cdev_commit_t *c, const char *code, json_t *m)
{
    if (c->cb != NULL) {
        c->cb(c->d, c->ud, code, m);
    }
    commit_free(c);
}

static void commit_answer(cdev_t *d, void *ud, const char *code, json_t *m)
{
    cdev_commit_t *c = ud;
    cdev_conv_t *cv = cdev_conv(d, c->conv, false);
    if (cv == NULL || cv->g == NULL) {
        commit_finish(c, code != NULL ? code : "internal", m);
        return;
    }
    if (code == NULL) {
        int rc = spk_mls_commit_merge(cv->g);
        int64_t seq = (int64_t)json_integer_value(json_object_get(m, "seq"));
        if (seq > cv->seen) {
            cv->seen = seq; /* our own entry: never delivered to us */
        }
        commit_finish(c, rc == 0 ? NULL : "merge_failed", m);
        return;
    }
    spk_mls_commit_discard(cv->g);
    if (strcmp(code, "mls_stale_epoch") != 0 || c->attempt >= c->retries) {
        commit_finish(c, code, m);
        return;
    }
    /* Another Commit won the epoch. Its entry came before this answer on this connection, so
     * it is usually processed already; otherwise build again when it arrives. */
    if (spk_mls_epoch(cv->g) > c->epoch) {
        commit_send(c);
    } else {
        cv->retry = c;
    }
}

size_t cdev_last_commit_bytes, cdev_last_welcome_bytes;

static void commit_send(cdev_commit_t *c)
{
    cdev_t *d = c->d;
    cdev_conv_t *cv = cdev_conv(d, c->conv, false);
    if (cv == NULL || cv->g == NULL) {
        commit_finish(c, "not_in_group", NULL);
        return;
    }
    c->attempt++;
    c->epoch = spk_mls_epoch(cv->g);
    spk_mls_commit_opts_t o = {.add = (const uint8_t *const *)c->add,
                               .add_len = c->add_len,
                               .n_add = c->n_add,
                               .remove = c->remove,
                               .n_remove = c->n_remove};
    spk_mls_buf_t commit = {0}, welcome = {0};
    int rc = spk_mls_commit(cv->g, &o, &commit, c->n_add > 0 ? &welcome : NULL);
    if (rc != 0) {
        char why[64];
        snprintf(why, sizeof(why), "commit: %s", spk_err_name(rc));
        commit_finish(c, why, NULL);
        return;
    }
    cdev_last_commit_bytes = commit.n;
    cdev_last_welcome_bytes = welcome.n;
    json_t *msg = json_pack("{s:s, s:s}", "type", "mls.commit", "conversation", c->conv);
    char *cb64 = cdev_b64(commit.p, commit.n);
    char *wb64 = welcome.n > 0 ? cdev_b64(welcome.p, welcome.n) : NULL;
    json_object_set_new(msg, "commit", json_string(cb64 != NULL ? cb64 : ""));
    if (wb64 != NULL) {
        json_object_set_new(msg, "welcome", json_string(wb64));
    }
    free(cb64);
    free(wb64);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    cdev_request(d, msg, commit_answer, c);
}

void cdev_commit(cdev_t *d, const char *conversation, const cdev_commit_opts_t *o,
                 cdev_answer_cb cb, void *ud)
{
    cdev_commit_t *c = calloc(1, sizeof(*c));
    size_t na = o != NULL ? o->n_add : 0, nr = o != NULL ? o->n_remove : 0;
    if (c != NULL) {
        c->add = calloc(na + 1, sizeof(*c->add));
        c->add_len = calloc(na + 1, sizeof(*c->add_len));
        c->remove = calloc(nr + 1, sizeof(*c->remove));
    }
    if (c == NULL || c->add == NULL || c->add_len == NULL || c->remove == NULL) {
        if (c != NULL) {
            commit_free(c);
        }
        if (cb != NULL) {
            cb(d, ud, "internal", NULL);
        }
        return;
    }
    c->d = d;
    snprintf(c->conv, sizeof(c->conv), "%s", conversation);
    for (size_t i = 0; i < na; i++) {
        c->add[i] = malloc(o->add_len[i]);
        if (c->add[i] != NULL) {
            memcpy(c->add[i], o->add[i], o->add_len[i]);
            c->add_len[i] = o->add_len[i];
            c->n_add++;
        }
    }
    if (nr > 0) {
        memcpy(c->remove, o->remove, nr * sizeof(*c->remove));
    }
    c->n_remove = nr;
    c->retries = o != NULL && o->retries > 0 ? o->retries : 0;
    c->cb = cb;
    c->ud = ud;
    commit_send(c);
}

typedef struct {
    char conv[CDEV_ID_LEN];
    int retries;
    cdev_answer_cb cb;
    void *ud;
} claim_t;

static void claim_answer(cdev_t *d, void *ud, const char *code, json_t *m)
{
    claim_t *k = ud;
    if (code != NULL) {
        if (k->cb != NULL) {
            k->cb(d, k->ud, code, m);
        }
        free(k);
        return;
    }
    json_t *list = json_object_get(m, "key_packages");
    size_t n = json_array_size(list);
    if (n == 0) {
        if (k->cb != NULL) {
            k->cb(d, k->ud, NULL, m); /* nothing to add */
        }
        free(k);
        return;
    }
    uint8_t **add = calloc(n, sizeof(*add));
    size_t *len = calloc(n, sizeof(*len));
    size_t got = 0;
    for (size_t i = 0; add != NULL && len != NULL && i < n; i++) {
        add[got] = cdev_unb64(cdev_str(json_array_get(list, i), "key_package"), &len[got]);
        got += add[got] != NULL;
    }
    cdev_commit_opts_t o = {
        .add = (const uint8_t *const *)add, .add_len = len, .n_add = got, .retries = k->retries};
    cdev_commit(d, k->conv, &o, k->cb, k->ud);
    for (size_t i = 0; i < got; i++) {
        free(add[i]);
    }
    free(add);
    free(len);
    free(k);
}

void cdev_add_devices(cdev_t *d, const char *conversation, const char *iss, const char *sub,
                      int retries, cdev_answer_cb cb, void *ud)
{
    claim_t *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        if (cb != NULL) {
            cb(d, ud, "internal", NULL);
        }
        return;
    }
    snprintf(k->conv, sizeof(k->conv), "%s", conversation);
    k->retries = retries;
    k->cb = cb;
    k->ud = ud;
    json_t *user = iss != NULL ? json_pack("{s:s, s:s}", "sub", sub, "iss", iss)
                               : json_pack("{s:s}", "sub", sub);
    cdev_request(d,
                 json_pack("{s:s, s:s, s:o}", "type", "mls.key_packages.claim", "conversation",
                           conversation, "user", user),
                 claim_answer, k);
}

/* ---- groups and messages ---- */

void cdev_group_create(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud)
{
    cdev_conv_t *cv = cdev_conv(d, conversation, true);
    int rc = cv != NULL && cv->g == NULL && d->n_secrets > 0 ? 0 : SPK_ESTATE;
    spk_mls_buf_t gi = {0};
    if (rc == 0) {
        rc = spk_mls_create(&cv->g, (const uint8_t *)conversation, strlen(conversation),
                            d->secrets[0].p, d->secrets[0].n);
    }
    if (rc == 0) {
        spk_mls_buf_free(&d->secrets[0]);
        memmove(d->secrets, d->secrets + 1, (d->n_secrets - 1) * sizeof(*d->secrets));
        d->n_secrets--;
        rc = spk_mls_group_info(cv->g, 0, &gi);
    }
    if (rc != 0) {
        if (cb != NULL) {
            cb(d, ud, spk_err_wire(rc), NULL);
        }
        return;
    }
    char *b64 = cdev_b64(gi.p, gi.n);
    spk_mls_buf_free(&gi);
    cdev_request(d,
                 json_pack("{s:s, s:s, s:s}", "type", "mls.group.create", "conversation",
                           conversation, "group_info", b64 != NULL ? b64 : ""),
                 cb, ud);
    free(b64);
}

int cdev_encrypt_b64(cdev_t *d, const char *conversation, const uint8_t *pt, size_t n, char **b64)
{
    cdev_conv_t *cv = cdev_conv(d, conversation, false);
    if (cv == NULL || cv->g == NULL) {
        return SPK_ESTATE;
    }
    spk_mls_buf_t msg = {0};
    int rc = spk_mls_encrypt(cv->g, pt, n, 0, &msg);
    if (rc == 0) {
        *b64 = cdev_b64(msg.p, msg.n);
        rc = *b64 != NULL ? 0 : SPK_ENOMEM;
    }
    spk_mls_buf_free(&msg);
    return rc;
}

void cdev_send_b64(cdev_t *d, const char *conversation, const char *b64, cdev_answer_cb cb,
                   void *ud)
{
    size_t bn = strlen(b64), cn = strlen(conversation);
    size_t cap = bn + cn + 80;
    char stack[1024];
    char *body = cap <= sizeof(stack) ? stack : malloc(cap);
    if (body == NULL) {
        if (cb != NULL) {
            cb(d, ud, "internal", NULL);
        }
        return;
    }
    int n =
        snprintf(body, cap, "{\"type\":\"chat.send\",\"conversation\":\"%s\",\"message\":\"%s\"}",
                 conversation, b64);
    cdev_request_text(d, body, (size_t)n, cb, ud);
    if (body != stack) {
        free(body);
    }
}

int cdev_send(cdev_t *d, const char *conversation, const uint8_t *pt, size_t n, cdev_answer_cb cb,
              void *ud)
{
    char *b64 = NULL;
    int rc = cdev_encrypt_b64(d, conversation, pt, n, &b64);
    if (rc == 0) {
        cdev_send_b64(d, conversation, b64, cb, ud);
    }
    free(b64);
    return rc;
}

int cdev_propose_leave(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud)
{
    cdev_conv_t *cv = cdev_conv(d, conversation, false);
    if (cv == NULL || cv->g == NULL) {
        return SPK_ESTATE;
    }
    spk_mls_buf_t msg = {0};
    int rc = spk_mls_leave(cv->g, &msg);
    if (rc != 0) {
        return rc;
    }
    char *b64 = cdev_b64(msg.p, msg.n);
    spk_mls_buf_free(&msg);
    cdev_request(d,
                 json_pack("{s:s, s:s, s:s}", "type", "mls.proposal", "conversation", conversation,
                           "proposal", b64 != NULL ? b64 : ""),
                 cb, ud);
    free(b64);
    return 0;
}

size_t cdev_leaves_of(const cdev_t *d, const char *conversation, const char *sub, uint32_t *out,
                      size_t max)
{
    cdev_conv_t *cv = cdev_conv((cdev_t *)d, conversation, false);
    size_t n = 0;
    uint32_t leaves = cv != NULL && cv->g != NULL ? spk_mls_leaf_count(cv->g) : 0;
    size_t sn = strlen(sub);
    for (uint32_t l = 0; l < leaves && n < max; l++) {
        const uint8_t *id;
        size_t len;
        if (spk_mls_member_identity(cv->g, l, &id, &len) != 0) {
            continue;
        }
        /* "spk1\n<iss>\n<sub>\n<device>": the third line */
        const uint8_t *a = memchr(id, '\n', len);
        const uint8_t *b = a != NULL ? memchr(a + 1, '\n', len - (size_t)(a + 1 - id)) : NULL;
        const uint8_t *c = b != NULL ? memchr(b + 1, '\n', len - (size_t)(b + 1 - id)) : NULL;
        if (c != NULL && (size_t)(c - b - 1) == sn && memcmp(b + 1, sub, sn) == 0) {
            out[n++] = l;
        }
    }
    return n;
}

/* ---- entries ---- */

static bool join(cdev_t *d, cdev_conv_t *cv, const uint8_t *welcome, size_t n)
{
    for (size_t i = 0; i < d->n_secrets; i++) {
        spk_mls_t *g = NULL;
        int rc = spk_mls_join(&g, d->secrets[i].p, d->secrets[i].n, welcome, n, NULL, 0);
        if (rc == SPK_ENOTFOUND) {
            continue;
        }
        if (rc != 0) {
            report(d, "%s: join failed: %s", cv->id, spk_err_name(rc));
            return false;
        }
        spk_mls_buf_free(&d->secrets[i]);
        memmove(d->secrets + i, d->secrets + i + 1, (d->n_secrets - i - 1) * sizeof(*d->secrets));
        d->n_secrets--;
        spk_mls_free(cv->g);
        cv->g = g;
        cv->removed = false;
        return true;
    }
    report(d, "%s: no KeyPackage of this device in the Welcome", cv->id);
    return false;
}

/* Processes one handshake or application message; false when it could not be handled. */
static bool process(cdev_t *d, cdev_conv_t *cv, int64_t seq, const char *sender, const uint8_t *msg,
                    size_t n, uint64_t now)
{
    spk_mls_event_t ev;
    memset(&ev, 0, sizeof(ev));
    int rc = spk_mls_process(cv->g, msg, n, &ev);
    if (rc != 0) {
        report(d, "%s#%lld: process: %s", cv->id, (long long)seq, spk_err_name(rc));
        return false;
    }
    const cdev_cbs_t *cb = d->env->cbs;
    cv->seen = seq;
    if (ev.type == SPK_MLS_EVENT_APPLICATION && cb->message_cb != NULL) {
        cb->message_cb(d, cv, seq, sender, ev.data.p, ev.data.n, now);
    } else if (ev.type == SPK_MLS_EVENT_REMOVED) {
        spk_mls_free(cv->g);
        cv->g = NULL;
        cv->removed = true;
        if (cb->removed_cb != NULL) {
            cb->removed_cb(d, cv);
        }
    } else if (ev.type == SPK_MLS_EVENT_COMMIT) {
        if (cb->commit_cb != NULL) {
            cb->commit_cb(d, cv, seq);
        }
        cdev_commit_t *retry = cv->retry;
        cv->retry = NULL;
        if (retry != NULL) {
            commit_send(retry);
        }
    }
    spk_mls_buf_free(&ev.data);
    return true;
}

static void on_entry(cdev_t *d, json_t *m, uint64_t now)
{
    const char *conv = cdev_str(m, "conversation");
    int64_t seq = (int64_t)json_integer_value(json_object_get(m, "seq"));
    const char *kind = cdev_str(m, "kind");
    cdev_conv_t *cv = cdev_conv(d, conv, true);
    if (cv == NULL || seq <= 0) {
        d->env->entry_errors++;
        return;
    }
    if (seq <= cv->seen) {
        d->env->skipped++; /* handled already (none twice) */
        return;
    }
    if (d->passive) {
        cv->seen = seq;
        d->passive_entries++;
        if (d->env->ack_ms == 0) {
            ack_one(d, cv);
        }
        return;
    }
    json_t *snd = json_object_get(m, "sender");
    char sender[2 * SPK_TOKEN_STR];
    snprintf(sender, sizeof(sender), "%s/%s", cdev_str(snd, "sub"), cdev_str(snd, "device"));
    size_t n = 0;
    uint8_t *data = cdev_unb64(cdev_str(m, "data"), &n);
    bool ok = data != NULL;
    if (!ok) {
        report(d, "%s#%lld: data is not base64url", conv, (long long)seq);
    } else if (strcmp(kind, "welcome") == 0) {
        ok = join(d, cv, data, n);
        if (ok) {
            cv->seen = seq;
            if (d->env->cbs->joined_cb != NULL) {
                d->env->cbs->joined_cb(d, cv);
            }
        }
    } else if (cv->g == NULL) {
        report(d, "%s#%lld: %s for a group this device is not in", conv, (long long)seq, kind);
        ok = false;
    } else if (strcmp(kind, "message") == 0 && !cv->decrypt) {
        cv->seen = seq;
        if (d->env->cbs->receipt_cb != NULL) {
            d->env->cbs->receipt_cb(d, cv, seq, data, n, now);
        }
    } else {
        ok = process(d, cv, seq, sender, data, n, now);
    }
    free(data);
    if (!ok) {
        d->env->entry_errors++;
    } else if (d->env->ack_ms == 0) {
        ack_one(d, cv);
    }
}

/* ---- connection ---- */

static void ready(cdev_t *d)
{
    d->ready = true;
    if (d->env->cbs->ready_cb != NULL) {
        d->env->cbs->ready_cb(d);
    }
}

static void fail(cdev_t *d, const char *what, const char *code)
{
    report(d, "%s: %s", what, code);
    if (d->ws != NULL) {
        spk_ws_client_end(d->ws, what);
    }
}

static void upload_answer(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)ud;
    (void)m;
    if (code != NULL) {
        fail(d, "mls.key_packages.upload", code);
        return;
    }
    ready(d);
}

void cdev_upload(cdev_t *d, int n, cdev_answer_cb cb, void *ud)
{
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        spk_mls_buf_t kp = {0}, secret = {0};
        if (spk_mls_key_package_create(d->identity, d->identity_len, &kp, &secret) != 0) {
            continue;
        }
        if (d->n_secrets == d->cap_secrets) {
            size_t ncap = d->cap_secrets ? d->cap_secrets * 2 : 8;
            spk_mls_buf_t *ns = realloc(d->secrets, ncap * sizeof(*ns));
            if (ns == NULL) {
                spk_mls_buf_free(&kp);
                spk_mls_buf_free(&secret);
                break;
            }
            d->secrets = ns;
            d->cap_secrets = ncap;
        }
        d->secrets[d->n_secrets++] = secret;
        char *b64 = cdev_b64(kp.p, kp.n);
        json_array_append_new(list, json_string(b64 != NULL ? b64 : ""));
        free(b64);
        spk_mls_buf_free(&kp);
    }
    cdev_request(d,
                 json_pack("{s:s, s:o}", "type", "mls.key_packages.upload", "key_packages", list),
                 cb, ud);
}

static void device_answer(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)ud;
    if (code != NULL) {
        fail(d, "chat.device", code);
        return;
    }
    const char *id = cdev_str(m, "identity");
    d->identity_len = strlen(id) < sizeof(d->identity) ? strlen(id) : 0;
    memcpy(d->identity, id, d->identity_len);
    /* "spk1\n<iss>\n<sub>\n<device>" */
    const char *a = strchr(id, '\n'), *b = a != NULL ? strchr(a + 1, '\n') : NULL;
    const char *c = b != NULL ? strchr(b + 1, '\n') : NULL;
    if (c != NULL) {
        snprintf(d->iss, sizeof(d->iss), "%.*s", (int)(b - a - 1), a + 1);
        snprintf(d->sub, sizeof(d->sub), "%.*s", (int)(c - b - 1), b + 1);
    }
    if (d->upload > 0) {
        int n = d->upload;
        d->upload = 0;
        cdev_upload(d, n, upload_answer, NULL);
    } else {
        ready(d);
    }
}

static void signed_in(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)ud;
    if (code != NULL) {
        fail(d, d->invite[0] ? "invite.redeem" : "auth", code);
        return;
    }
    const char *session = cdev_str(m, "session_token");
    if (session[0] != '\0') {
        free(d->token);
        d->token = strdup(session); /* reconnect with it */
        d->invite[0] = '\0';
        snprintf(d->participant, sizeof(d->participant), "%s",
                 cdev_str(json_object_get(m, "participant"), "id"));
    }
    cdev_request(d, json_pack("{s:s, s:s}", "type", "chat.device", "device", d->device),
                 device_answer, NULL);
}

static void on_hello(cdev_t *d)
{
    if (d->invite[0] != '\0') {
        cdev_request(d,
                     json_pack("{s:s, s:s, s:s}", "type", "invite.redeem", "invite", d->invite,
                               "name", d->name),
                     signed_in, NULL);
    } else {
        cdev_request(d, json_pack("{s:s, s:s}", "type", "auth", "token", d->token ? d->token : ""),
                     signed_in, NULL);
    }
}

/* ---- the load's fast path ---- */

/* The string value after `key` (e.g. "\"data\":\"") up to the next quote; ids and base64url
 * never hold escapes. */
static const char *find_str(const char *msg, size_t len, const char *key, size_t *n)
{
    size_t kn = strlen(key);
    const char *p = memmem(msg, len, key, kn);
    if (p == NULL) {
        return NULL;
    }
    p += kn;
    const char *q = memchr(p, '"', len - (size_t)(p - msg));
    if (q == NULL) {
        return NULL;
    }
    *n = (size_t)(q - p);
    return p;
}

/* Digits at *p (advanced past them) into *v; false when there are none. */
static bool digits(const char **p, const char *end, int64_t *v)
{
    const char *q = *p;
    int64_t x = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - *p < 18) {
        x = x * 10 + (*q++ - '0');
    }
    if (q == *p) {
        return false;
    }
    *p = q;
    *v = x;
    return true;
}

static bool find_int(const char *msg, size_t len, const char *key, int64_t *v)
{
    size_t kn = strlen(key);
    const char *p = memmem(msg, len, key, kn);
    if (p == NULL) {
        return false;
    }
    p += kn;
    return digits(&p, msg + len, v);
}

/* An application message the device only counts (decrypt off), read without a JSON tree: the
 * fields are looked up by name in what the service wrote. Anything else: false (full parse). */
static bool fast_receipt(cdev_t *d, const char *msg, size_t len, uint64_t now)
{
    static const char head[] = "{\"type\":\"chat.entry\"";
    size_t cn = 0, dn = 0;
    int64_t seq = 0;
    if (d->passive || len < sizeof(head) || memcmp(msg, head, sizeof(head) - 1) != 0 ||
        memmem(msg, len, "\"kind\":\"message\"", 16) == NULL ||
        !find_int(msg, len, "\"seq\":", &seq)) {
        return false;
    }
    const char *conv = find_str(msg, len, "\"conversation\":\"", &cn);
    const char *data = find_str(msg, len, "\"data\":\"", &dn);
    char id[CDEV_ID_LEN];
    if (conv == NULL || data == NULL || cn >= sizeof(id)) {
        return false;
    }
    memcpy(id, conv, cn);
    id[cn] = '\0';
    cdev_conv_t *cv = cdev_conv(d, id, false);
    if (cv == NULL || cv->decrypt || cv->g == NULL) {
        return false;
    }
    if (seq <= cv->seen) {
        d->env->skipped++;
        return true;
    }
    uint8_t stack[2048];
    uint8_t *buf = dn * 3 / 4 + 4 <= sizeof(stack) ? stack : malloc(dn * 3 / 4 + 4);
    long got = buf != NULL ? spk_b64url_decode(buf, dn * 3 / 4 + 4, data, dn) : -1;
    if (got < 0) {
        if (buf != stack) {
            free(buf);
        }
        return false;
    }
    cv->seen = seq;
    if (d->env->cbs->receipt_cb != NULL) {
        d->env->cbs->receipt_cb(d, cv, seq, buf, (size_t)got, now);
    }
    if (buf != stack) {
        free(buf);
    }
    if (d->env->ack_ms == 0) {
        ack_one(d, cv);
    }
    return true;
}

/* The answer to chat.send, exactly {"type":"ok","re":N,"seq":S}, without a JSON parse. */
static bool fast_answer(cdev_t *d, const char *msg, size_t len)
{
    static const char head[] = "{\"type\":\"ok\",\"re\":", mid[] = ",\"seq\":";
    const char *p = msg + sizeof(head) - 1, *end = msg + len;
    int64_t re = 0, seq = 0;
    if (len < sizeof(head) || memcmp(msg, head, sizeof(head) - 1) != 0 || !digits(&p, end, &re) ||
        (size_t)(end - p) < sizeof(mid) || memcmp(p, mid, sizeof(mid) - 1) != 0) {
        return false;
    }
    p += sizeof(mid) - 1;
    cdev_req_t r;
    if (!digits(&p, end, &seq) || end - p != 1 || *p != '}' || !req_pop(d, re, &r)) {
        return false;
    }
    if (r.cb != NULL) {
        json_t *m = json_pack("{s:s, s:I, s:I}", "type", "ok", "re", (json_int_t)re, "seq",
                              (json_int_t)seq);
        r.cb(d, r.ud, NULL, m);
        json_decref(m);
    }
    return true;
}

static void on_text(spk_ws_client_t *ws, const char *msg, size_t len, uint64_t now)
{
    cdev_t *d = ws->data;
    if (d == NULL || d->ws != ws || fast_receipt(d, msg, len, now) || fast_answer(d, msg, len)) {
        return;
    }
    json_error_t err;
    json_t *m = json_loadb(msg, len, 0, &err);
    const char *type = cdev_str(m, "type");
    if (strcmp(type, "chat.entry") == 0) {
        on_entry(d, m, now);
    } else if (strcmp(type, "ok") == 0 || strcmp(type, "error") == 0) {
        cdev_req_t r;
        if (!req_pop(d, json_integer_value(json_object_get(m, "re")), &r)) {
            report(d, "an answer that matches no request: %.200s", msg);
        } else if (r.cb != NULL) {
            r.cb(d, r.ud, type[0] == 'o' ? NULL : cdev_str(m, "code"), m);
        }
    } else if (strcmp(type, "hello") == 0) {
        on_hello(d);
    } else if (d->env->cbs->event_cb != NULL) {
        d->env->cbs->event_cb(d, type, m);
    }
    json_decref(m);
}

static void answer_all(cdev_t *d, const char *code)
{
    while (d->n_reqs > 0) {
        cdev_req_t r = d->reqs[d->req_head];
        d->req_head = (d->req_head + 1) % d->cap_reqs;
        d->n_reqs--;
        if (r.cb != NULL) {
            r.cb(d, r.ud, code, NULL);
        }
    }
}

static void went_offline(cdev_t *d)
{
    d->ws->data = NULL;
    d->ws = NULL;
    d->ready = false;
    for (size_t i = 0; i < d->n_convs; i++) {
        d->convs[i]->ack_busy = false;
    }
    answer_all(d, "disconnected");
}

static void on_end(spk_ws_client_t *ws, const char *why)
{
    cdev_t *d = ws->data;
    if (d == NULL || d->ws != ws) {
        return;
    }
    /* Acknowledgements in flight never got their ok: not known to be durable. */
    for (size_t i = 0; i < d->n_convs; i++) {
        if (d->convs[i]->ack_busy) {
            d->convs[i]->acked = 0;
        }
    }
    went_offline(d);
    if (d->env->cbs->end_cb != NULL) {
        d->env->cbs->end_cb(d, why);
    }
}

static void on_closed(spk_ws_client_t *ws)
{
    free(ws);
}

static const spk_ws_client_cbs_t ws_cbs = {
    .text_cb = on_text, .end_cb = on_end, .closed_cb = on_closed};

int cdev_connect(cdev_t *d)
{
    if (d->ws != NULL) {
        return SPK_ESTATE;
    }
    spk_ws_client_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return SPK_ENOMEM;
    }
    ws->data = d;
    d->ws = ws;
    int r = spk_ws_client_connect(ws, d->env->loop, (const struct sockaddr *)&d->env->addr,
                                  d->env->host_port, &ws_cbs, &d->env->rng);
    if (r != 0) {
        d->ws = NULL; /* closed_cb frees ws */
        ws->data = NULL;
        return SPK_EIO;
    }
    return 0;
}

void cdev_disconnect(cdev_t *d)
{
    if (d->ws == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n_convs; i++) {
        if (d->convs[i]->ack_busy) {
            d->convs[i]->acked = 0;
        }
    }
    spk_ws_client_t *ws = d->ws;
    went_offline(d);
    spk_ws_client_close(ws);
}

void cdev_sync(cdev_t *d, const char *conversation, cdev_answer_cb cb, void *ud)
{
    json_t *m = json_pack("{s:s}", "type", "chat.sync");
    if (conversation != NULL) {
        json_object_set_new(m, "conversation", json_string(conversation));
    }
    cdev_request(d, m, cb, ud);
}

/* ---- lifetime ---- */

int cdev_env_init(cdev_env_t *e, uv_loop_t *loop, int port, const cdev_cbs_t *cbs, int ack_ms)
{
    memset(e, 0, sizeof(*e));
    e->loop = loop;
    e->cbs = cbs;
    e->ack_ms = ack_ms;
    e->rng = spk_mono_ns() | 1;
    uv_ip4_addr("127.0.0.1", port, &e->addr);
    snprintf(e->host_port, sizeof(e->host_port), "127.0.0.1:%d", port);
    uv_timer_init(loop, &e->ack_timer);
    e->ack_timer.data = e;
    if (ack_ms > 0) {
        uv_timer_start(&e->ack_timer, ack_timer_cb, (uint64_t)ack_ms, (uint64_t)ack_ms);
    }
    return 0;
}

void cdev_env_close(cdev_env_t *e)
{
    uv_close((uv_handle_t *)&e->ack_timer, NULL);
    free(e->devs);
    e->devs = NULL;
    e->n_devs = e->cap_devs = 0;
}

cdev_t *cdev_new(cdev_env_t *e, const char *token, const char *invite, const char *name,
                 const char *device, int upload)
{
    cdev_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    if (e->n_devs == e->cap_devs) {
        size_t ncap = e->cap_devs ? e->cap_devs * 2 : 64;
        cdev_t **n = realloc(e->devs, ncap * sizeof(*n));
        if (n == NULL) {
            free(d);
            return NULL;
        }
        e->devs = n;
        e->cap_devs = ncap;
    }
    e->devs[e->n_devs++] = d;
    d->env = e;
    d->token = token != NULL ? strdup(token) : NULL;
    snprintf(d->invite, sizeof(d->invite), "%s", invite != NULL ? invite : "");
    snprintf(d->name, sizeof(d->name), "%s", name != NULL ? name : "");
    snprintf(d->device, sizeof(d->device), "%s", device);
    d->upload = upload;
    return d;
}

void cdev_free(cdev_t *d)
{
    if (d == NULL) {
        return;
    }
    cdev_env_t *e = d->env;
    for (size_t i = 0; i < e->n_devs; i++) {
        if (e->devs[i] == d) {
            e->devs[i] = e->devs[--e->n_devs];
            break;
        }
    }
    cdev_disconnect(d);
    for (size_t i = 0; i < d->n_convs; i++) {
        spk_mls_free(d->convs[i]->g);
        if (d->convs[i]->retry != NULL) {
            commit_free(d->convs[i]->retry);
        }
        free(d->convs[i]);
    }
    for (size_t i = 0; i < d->n_secrets; i++) {
        spk_mls_buf_free(&d->secrets[i]);
    }
    free(d->secrets);
    free(d->convs);
    free(d->reqs);
    if (d->token != NULL) {
        spk_wipe(d->token, strlen(d->token));
        free(d->token);
    }
    free(d);
}
