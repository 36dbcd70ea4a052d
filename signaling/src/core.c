/* Signaling core: connections, framing, rate limits, dispatch, answers, and the transaction
 * every audited action runs in.
 *
 * A request is decided in this order (docs/protocol.md §3 "Which error wins"): rate limit,
 * JSON, envelope (id, type), known type, draining, authentication state, token still valid,
 * role; then the handler checks its fields and the relationship. An audited action runs in one
 * store transaction with its audit entry: both are committed, or neither (the action then fails
 * with "internal"). Refused accesses and refused sign-ins are audited after the rollback. */
#include "core_int.h"
#include "chat_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/text.h"
#include "spk/util.h"

#define SPK_VERSION_STR "spreekd/0.1.0"

int spk_sig_new(spk_sig_t **out, const spk_config_t *cfg, spk_store_t *store,
                const spk_keyring_t *kr, const spk_signer_t *issuer, const spk_sig_io_t *io)
{
    spk_sig_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SPK_ENOMEM;
    }
    s->cfg = *cfg;
    s->store = store;
    s->kr = kr;
    s->issuer = issuer;
    s->io = *io;
    spk_map_init(&s->conns);
    spk_map_init(&s->consults);
    spk_map_init(&s->tok_conns);
    spk_map_init(&s->auth_fail);
    spk_map_init(&s->chats);
    spk_map_init(&s->tickets);
    spk_map_init(&s->bus_peers);
    s->access_gen = 1;
    int rc = sig_issuers_init(s);
    if (rc != 0) {
        spk_sig_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

spk_token_claims_t sig_no_claims;

static void conn_free(spk_sig_t *s, sig_conn_t *c)
{
    while (c->n_joined > 0) {
        sig_unjoin_conn(s, c, c->joined[c->n_joined - 1].consult, false);
    }
    sig_token_count_del(s, c);
    sig_chat_conn_free(s, c);
    sig_outq_free(s, c);
    if (c->who != &sig_no_claims) {
        spk_wipe(c->who, sizeof(*c->who));
        free(c->who);
    }
    free(c->joined);
    free(c);
}

void spk_sig_free(spk_sig_t *s)
{
    if (s == NULL) {
        return;
    }
    sig_chat_batch_free(s); /* never answered, so never acknowledged */
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        conn_free(s, v);
    }
    spk_map_free(&s->conns);
    spk_map_free(&s->tok_conns);
    sig_auth_fail_free(s);
    sig_held_free(s);
    sig_bus_free(s);
    sig_chat_free_all(s);
    sig_files_free(s);
    sig_consults_free(s);
    sig_media_free_all(s);
    free(s);
}

int sig_send_json(spk_sig_t *s, uint64_t conn, json_t *msg)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c == NULL || msg == NULL) {
        json_decref(msg);
        return c == NULL ? SPK_ENOTFOUND : SPK_ENOMEM;
    }
    return sig_deliver(s, c, msg);
}

void sig_send_error_retry(spk_sig_t *s, uint64_t conn, json_t *id, int err, const char *why,
                          int64_t retry_ms)
{
    int idx = -err;
    if (idx > 0 && idx <= SPK_ERR_COUNT) {
        s->errors[idx]++;
    }
    /* The reason may quote the request, cut to fit: it ends on a character boundary, and a
     * reason that is still not UTF-8 gives way to the code's own text. */
    char msg[512];
    spk_utf8_copy(msg, sizeof(msg), (why != NULL && why[0] != '\0') ? why : spk_strerror(err));
    json_t *m = json_pack("{s:s, s:O?, s:s, s:s}", "type", "error", "re", id, "code",
                          spk_err_wire(err), "message", msg);
    if (m == NULL) {
        m = json_pack("{s:s, s:O?, s:s, s:s}", "type", "error", "re", id, "code", spk_err_wire(err),
                      "message", spk_strerror(err));
    }
    if (m != NULL && retry_ms > 0) {
        json_object_set_new(m, "retry_ms", json_integer(retry_ms));
    }
    sig_send_json(s, conn, m);
}

void sig_send_error(spk_sig_t *s, uint64_t conn, json_t *id, int err, const char *why)
{
    sig_send_error_retry(s, conn, id, err, why, 0);
}

void sig_reply_ok(sig_req_t *r)
{
    if (r->replied) {
        return;
    }
    r->replied = true;
    json_t *m = json_pack("{s:s, s:O?}", "type", "ok", "re", r->id);
    if (m != NULL && r->reply != NULL) {
        json_object_update(m, r->reply);
    }
    sig_send_json(r->s, r->c->id, m);
}

int sig_begin(sig_req_t *r)
{
    return spk_store_in_txn(r->s->store) ? 0 : spk_store_begin(r->s->store);
}

int sig_commit(sig_req_t *r)
{
    spk_store_t *st = r->s->store;
    if (!spk_store_in_txn(st)) {
        return 0;
    }
    int rc = sig_hooks_precommit(r);
    if (rc == 0 && r->idem_key[0] != '\0') {
        rc = sig_idem_store(r);
    }
    if (rc == 0 && r->event != NULL) {
        rc = sig_audit(r, 0);
    }
    uint64_t t = 0;
    if (rc == 0) {
        rc = spk_store_commit(st, &t);
    } else {
        spk_store_rollback(st);
    }
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "the action could not be stored and audited");
        return rc == SPK_EUNAVAILABLE ? rc : SPK_EIO; /* the database is being reconnected */
    }
    r->event = NULL; /* recorded */
    r->idem_key[0] = '\0';
    if (t > r->s->cur_ticket) {
        r->s->cur_ticket = t;
    }
    sig_hooks_postcommit(r);
    return 0;
}

int spk_sig_conn_open(spk_sig_t *s, uint64_t conn, const char *remote_addr, uint64_t now_ms)
{
    sig_chat_flush(s); /* nothing enters the core past a waiting batch */
    sig_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    c->id = conn;
    c->who = &sig_no_claims;
    spk_utf8_copy(c->remote, sizeof(c->remote), remote_addr ? remote_addr : "");
    c->opened_ms = now_ms;
    c->tokens = s->cfg.rate_burst;
    c->refill_ms = now_ms;
    if (spk_map_put_u64(&s->conns, conn, c) != 0) {
        free(c);
        return SPK_ENOMEM;
    }
    sig_send_json(s, conn,
                  json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:f, s:f, s:I}}", "type", "hello",
                            "protocol", "spreekkamer.v1", "server", SPK_VERSION_STR, "limits",
                            "max_message_bytes", (json_int_t)s->cfg.max_message_bytes,
                            "max_mls_message_bytes",
                            (json_int_t)(s->cfg.mls_message_bytes > s->cfg.max_message_bytes
                                             ? s->cfg.mls_message_bytes
                                             : s->cfg.max_message_bytes),
                            "rate", s->cfg.rate_per_s, "burst", s->cfg.rate_burst,
                            "auth_timeout_ms", (json_int_t)s->cfg.auth_timeout_s * 1000));
    if (s->draining) {
        sig_send_json(s, conn,
                      json_pack("{s:s, s:i}", "type", "server.shutdown", "retry_after_ms", 2000));
    }
    return 0;
}

int spk_sig_conn_api(spk_sig_t *s, uint64_t conn)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c == NULL) {
        return SPK_ENOTFOUND;
    }
    c->api = true;
    return 0;
}

void spk_sig_conn_close(spk_sig_t *s, uint64_t conn)
{
    sig_chat_flush(s);
    sig_conn_t *c = spk_map_del_u64(&s->conns, conn);
    if (c == NULL) {
        return;
    }
    while (c->n_joined > 0) {
        sig_unjoin_conn(s, c, c->joined[c->n_joined - 1].consult, true);
    }
    conn_free(s, c);
}

size_t spk_sig_conn_rx_limit(spk_sig_t *s, uint64_t conn)
{
    const sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    size_t lim = s->cfg.max_message_bytes;
    return c != NULL && c->authed && s->cfg.mls_message_bytes > lim ? s->cfg.mls_message_bytes
                                                                    : lim;
}

void spk_sig_conn_reject(spk_sig_t *s, uint64_t conn, int err)
{
    sig_send_error(s, conn, NULL, err, NULL);
}

static bool rate_take(spk_sig_t *s, sig_conn_t *c, uint64_t now_ms)
{
    if (now_ms > c->refill_ms) {
        c->tokens += (double)(now_ms - c->refill_ms) * s->cfg.rate_per_s / 1000.0;
        if (c->tokens > s->cfg.rate_burst) {
            c->tokens = s->cfg.rate_burst;
        }
        c->refill_ms = now_ms;
    }
    if (c->tokens < 1.0) {
        return false;
    }
    c->tokens -= 1.0;
    return true;
}

int sig_bad_field(sig_req_t *r, const char *field)
{
    snprintf(r->why, sizeof(r->why), "missing or mistyped field: %s", field);
    return SPK_EBADMSG;
}

int sig_get_raw(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out)
{
    json_t *v = json_object_get(r->req, field);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return required ? sig_bad_field(r, field) : 0;
    }
    if (!json_is_string(v)) {
        return sig_bad_field(r, field);
    }
    size_t n = json_string_length(v);
    const char *str = json_string_value(v);
    if (n > maxlen || strlen(str) != n || (required && n == 0)) {
        return sig_bad_field(r, field);
    }
    *out = str;
    return 0;
}

int sig_get_str(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out)
{
    int rc = sig_get_raw(r, field, required, maxlen, out);
    if (rc == 0 && *out != NULL && !spk_text_ok(*out, strlen(*out))) {
        *out = NULL;
        snprintf(r->why, sizeof(r->why),
                 "field %s contains control, bidirectional or invisible characters", field);
        return SPK_EBADMSG;
    }
    return rc;
}

int sig_get_bool(sig_req_t *r, const char *field, bool *out)
{
    json_t *v = json_object_get(r->req, field);
    if (!json_is_boolean(v)) {
        return sig_bad_field(r, field);
    }
    *out = json_is_true(v);
    return 0;
}

int sig_get_int(sig_req_t *r, const char *field, bool required, int64_t lo, int64_t hi,
                int64_t *out)
{
    json_t *v = json_object_get(r->req, field);
    if (v == NULL || json_is_null(v)) {
        return required ? sig_bad_field(r, field) : 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        return sig_bad_field(r, field);
    }
    *out = json_integer_value(v);
    return 0;
}

/* The request's id if it has a valid one (also for requests that are refused early). */
static json_t *valid_id(json_t *req)
{
    json_t *id = json_object_get(req, "id");
    if (id == NULL) {
        return NULL;
    }
    bool ok_int = json_is_integer(id) && json_integer_value(id) >= 0 &&
                  json_integer_value(id) <= 9007199254740991LL;
    bool ok_str = json_is_string(id) && json_string_length(id) <= 64 &&
                  spk_text_ok(json_string_value(id), json_string_length(id));
    return ok_int || ok_str ? id : NULL;
}

/* Decodes the frame into r->req and checks the envelope; returns the action or an error. */
static int parse_envelope(sig_req_t *r, const char *data, size_t len, const sig_action_t **out,
                          int *index)
{
    json_error_t jerr;
    r->req = sig_json_flat(data, len); /* NULL: not the simple shape, the full parser decides */
    if (r->req == NULL) {
        r->req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    }
    if (r->req == NULL || !json_is_object(r->req)) {
        snprintf(r->why, sizeof(r->why), "not a JSON object%s%.100s", r->req ? "" : ": ",
                 r->req ? "" : jerr.text);
        return SPK_EBADJSON;
    }
    r->id = valid_id(r->req);
    if (r->id == NULL && json_object_get(r->req, "id") != NULL) {
        return sig_bad_field(r, "id");
    }
    json_t *type = json_object_get(r->req, "type");
    if (!json_is_string(type)) {
        return sig_bad_field(r, "type");
    }
    const sig_action_t *a = sig_action_find(json_string_value(type), index);
    if (a == NULL) {
        snprintf(r->why, sizeof(r->why), "unknown message type");
        return SPK_EUNKNOWNTYPE;
    }
    *out = a;
    return 0;
}

/* Authentication and matrix check for an authenticated or unauthenticated caller. */
static int check_access(sig_req_t *r, const sig_action_t *a)
{
    sig_conn_t *c = r->c;
    if (!c->authed) {
        if (!a->unauth) {
            return SPK_EUNAUTH;
        }
        if (a->event != NULL && sig_auth_throttled(r->s, c->remote, r->now)) {
            snprintf(r->why, sizeof(r->why), "too many refused sign-ins from this address");
            return SPK_ERATE;
        }
        return 0;
    }
    if (a->fn == sig_h_auth || a->fn == sig_h_invite_redeem) {
        return SPK_EALREADY;
    }
    if (r->now >= c->who->exp + r->s->cfg.token_leeway_s) {
        return SPK_ETOKENEXPIRED;
    }
    if (!sig_role_allows(a, c->who->role)) {
        return SPK_EFORBIDDEN;
    }
    return 0;
}

/* Runs the handler inside the action's transaction and audits the outcome. */
static int run_action(sig_req_t *r, const sig_action_t *a)
{
    spk_store_t *st = r->s->store;
    r->reply = json_object();
    if (r->reply == NULL) {
        return SPK_ENOMEM;
    }
    int rc = r->event != NULL ? spk_store_begin(st) : 0;
    if (rc != 0) {
        return rc;
    }
    rc = r->event != NULL ? sig_idem_begin(r) : 0;
    if (rc == 0 && !r->idem_replay) {
        rc = a->fn(r);
    }
    if (rc == 0) {
        rc = sig_commit(r); /* no-op when the handler committed already */
    }
    spk_store_rollback(st); /* no-op after a commit */
    if (rc != 0 && r->event != NULL && a->unauth) {
        sig_audit_auth_refused(r, rc);
    } else if (rc == SPK_EFORBIDDEN && r->event != NULL) {
        sig_audit(r, rc);
    }
    if (rc == 0) {
        sig_reply_ok(r);
    }
    return rc;
}

void spk_sig_conn_message(spk_sig_t *s, uint64_t conn, const char *data, size_t len,
                          uint64_t now_ms)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c == NULL || c->closing) {
        return;
    }
    s->n_msgs++;
    sig_req_t r;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.c = c;
    r.now = spk_now_s();
    const sig_action_t *a = NULL;
    int index = -1;
    int rc;
    if (!rate_take(s, c, now_ms)) {
        /* Dropped unprocessed; the id is still echoed so the client can match the refusal. */
        r.req = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
        r.id = json_is_object(r.req) ? valid_id(r.req) : NULL;
        rc = SPK_ERATE;
    } else {
        rc = parse_envelope(&r, data, len, &a, &index);
    }
    if (rc == 0 && len > s->cfg.max_message_bytes && strncmp(a->type, "mls.", 4) != 0) {
        rc = SPK_ETOOBIG; /* only MLS handshake requests may use mls_message_bytes */
    }
    if (rc != 0 || (a->fn != sig_h_chat_send && a->fn != sig_h_chat_ack)) {
        sig_chat_flush(s); /* only chat.send and chat.ack join a waiting batch */
    }
    if (rc == 0 && s->draining) {
        rc = SPK_ESHUTDOWN;
    }
    if (rc == 0) {
        s->by_action[index]++;
        r.event = a->event;
        rc = check_access(&r, a);
        if (rc == SPK_EFORBIDDEN && r.event != NULL) {
            sig_audit(&r, rc);
        }
    }
    if (rc == 0) {
        rc = run_action(&r, a);
    }
    if (rc != 0) {
        if (rc != SPK_ERATE) {
            spk_debug(conn, "request refused: %s (%s)", spk_err_wire(rc), r.why);
        }
        sig_chat_flush(s); /* the answers of earlier requests go first */
        sig_send_error_retry(s, conn, r.id, rc, r.why, r.retry_ms);
    }
    s->cur_ticket = 0;
    spk_wipe(&r.refused, sizeof(r.refused));
    json_decref(r.reply);
    json_decref(r.req);
}

void spk_sig_tick(spk_sig_t *s, uint64_t now_ms)
{
    sig_chat_flush(s);
    sig_media_tick(s);
    uint64_t limit = (uint64_t)s->cfg.auth_timeout_s * 1000;
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *c = v;
        if (!c->authed && !c->closing && now_ms - c->opened_ms >= limit) {
            s->m[SIG_M_AUTH_TIMEOUTS]++;
            spk_info(c->id, "closing: not authenticated within %d s", s->cfg.auth_timeout_s);
            sig_close_conn(s, c, SPK_WS_AUTH_TIMEOUT, "authentication timeout");
        }
    }
    int64_t now = (int64_t)(now_ms / 1000);
    sig_access_tick(s, now);
    sig_auth_fail_tick(s, now);
    sig_hooks_tick(s, now);
    sig_idem_tick(s, now);
    sig_chat_tick(s, now);
    sig_files_tick(s, now_ms);
    sig_consults_sweep(s);
    sig_bus_tick(s, now_ms);
    s->cur_ticket = 0;
}

void spk_sig_shutdown(spk_sig_t *s)
{
    sig_chat_flush(s);
    s->draining = true;
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *c = v;
        sig_send_json(s, c->id,
                      json_pack("{s:s, s:i}", "type", "server.shutdown", "retry_after_ms", 2000));
    }
}

static size_t append(char *buf, size_t cap, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t append(char *buf, size_t cap, size_t off, const char *fmt, ...)
{
    if (off >= cap) {
        return off;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + off, cap - off, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return off;
    }
    return (size_t)n >= cap - off ? cap - 1 : off + (size_t)n;
}

size_t spk_sig_metrics(spk_sig_t *s, char *buf, size_t cap)
{
    size_t o = 0, authed = 0, held = 0, devices = 0, follows = 0;
    int64_t open = 0;
    spk_store_consult_count_open(s->store, &open);
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        const sig_conn_t *c = v;
        authed += c->authed;
        devices += c->chat != NULL;
        follows += c->chat != NULL ? c->chat->n_convs : 0;
    }
    held = s->n_held;
    o = append(buf, cap, o, "# TYPE spk_sig_sessions gauge\nspk_sig_sessions %zu\n", s->conns.len);
    o = append(buf, cap, o,
               "# TYPE spk_sig_sessions_authenticated gauge\n"
               "spk_sig_sessions_authenticated %zu\n",
               authed);
    o = append(buf, cap, o, "# TYPE spk_consults_open gauge\nspk_consults_open %lld\n",
               (long long)open);
    o = append(buf, cap, o, "# TYPE spk_consults_active gauge\nspk_consults_active %zu\n",
               s->consults.len);
    o = append(buf, cap, o, "# TYPE spk_lobby_waiting gauge\nspk_lobby_waiting %zu\n",
               sig_lobby_waiting(s));
    o = append(buf, cap, o, "# TYPE spk_sig_connections_held gauge\nspk_sig_connections_held %zu\n",
               held);
    /* The delivery service's state in memory (chat_model.c) and the file transfer tickets
     * (h_files.c): each returns to 0 once no device is connected and the tickets have run out. */
    o = append(buf, cap, o,
               "# TYPE spk_chat_devices gauge\nspk_chat_devices %zu\n"
               "# TYPE spk_chat_follows gauge\nspk_chat_follows %zu\n"
               "# TYPE spk_chat_conversations_loaded gauge\nspk_chat_conversations_loaded %zu\n"
               "# TYPE spk_file_tickets gauge\nspk_file_tickets %zu\n",
               devices, follows, s->chats.len, s->tickets.len);
    o = append(buf, cap, o, "# TYPE spk_sig_messages_total counter\nspk_sig_messages_total %llu\n",
               (unsigned long long)s->n_msgs);
    if (s->io.publish_cb != NULL) {
        o = append(buf, cap, o,
                   "# TYPE spk_bus_events_total counter\n"
                   "spk_bus_events_total{dir=\"out\"} %llu\n"
                   "spk_bus_events_total{dir=\"in\"} %llu\n"
                   "spk_bus_events_total{dir=\"bad\"} %llu\n"
                   "# TYPE spk_bus_nodes gauge\nspk_bus_nodes %zu\n",
                   (unsigned long long)s->bus_published, (unsigned long long)s->bus_received,
                   (unsigned long long)s->bus_bad, sig_bus_nodes(s));
    }
    o = append(buf, cap, o, "# TYPE spk_sig_requests_total counter\n");
    for (int i = 0; i < SIG_N_ACTIONS; i++) {
        const sig_action_t *a = sig_action_at(i);
        if (a != NULL && s->by_action[i] > 0) {
            o = append(buf, cap, o, "spk_sig_requests_total{type=\"%s\"} %llu\n", a->type,
                       (unsigned long long)s->by_action[i]);
        }
    }
    o = append(buf, cap, o, "# TYPE spk_sig_errors_total counter\n");
    for (int i = 1; i <= SPK_ERR_COUNT; i++) {
        if (s->errors[i] > 0) {
            o = append(buf, cap, o, "spk_sig_errors_total{code=\"%s\",err=\"%s\"} %llu\n",
                       spk_err_wire(-i), spk_err_name(-i), (unsigned long long)s->errors[i]);
        }
    }
    static const char *const mnames[SIG_M_COUNT] = {
        "spk_consults_created_total", "spk_invites_redeemed_total", "spk_lobby_admitted_total",
        "spk_auth_ok_total",          "spk_auth_failed_total",      "spk_auth_timeouts_total",
        "spk_sig_events_total",       "spk_media_endpoints_total",  "spk_media_failed_total",
        "spk_file_uploads_total",     "spk_file_downloads_total",   "spk_file_refused_total"};
    for (int i = 0; i < SIG_M_COUNT; i++) {
        o = append(buf, cap, o, "# TYPE %s counter\n%s %llu\n", mnames[i], mnames[i],
                   (unsigned long long)s->m[i]);
    }
    if (o < cap) {
        o += spk_store_metrics(s->store, buf + o, cap - o);
    }
    if (o < cap) {
        o += sig_media_metrics(s, buf + o, cap - o);
    }
    return o;
}
