/* Signaling core: connections, framing, rate limits, dispatch, answers, audit. */
#include "core_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define SPK_VERSION_STR "spreekd/0.1.0"

/* Open consults are loaded at start so lobbies and metrics survive a restart. */
static int load_open_cb(void *ud, const spk_consult_rec_t *c)
{
    sig_consult_t *out;
    return sig_consult_lookup(ud, c->id, &out);
}

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
    int rc = spk_store_consult_each_open(store, NULL, load_open_cb, s);
    if (rc != 0) {
        spk_sig_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void conn_free(spk_sig_t *s, sig_conn_t *c)
{
    while (c->n_joined > 0) {
        sig_unjoin_conn(s, c, c->joined[c->n_joined - 1].consult, false);
    }
    spk_wipe(&c->who, sizeof(c->who));
    free(c);
}

void spk_sig_free(spk_sig_t *s)
{
    if (s == NULL) {
        return;
    }
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        conn_free(s, v);
    }
    spk_map_free(&s->conns);
    sig_consults_free(s);
    sig_media_free_all(s);
    free(s);
}

int sig_send_json(spk_sig_t *s, uint64_t conn, json_t *msg)
{
    char *txt = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (txt == NULL) {
        return SPK_ENOMEM;
    }
    s->m[SIG_M_EVENTS]++;
    int rc = s->io.send_cb(s->io.ud, conn, txt, strlen(txt));
    free(txt);
    return rc;
}

static void send_error(spk_sig_t *s, uint64_t conn, json_t *id, int err, const char *why)
{
    int idx = -err;
    if (idx > 0 && idx < (int)(sizeof(s->errors) / sizeof(s->errors[0]))) {
        s->errors[idx]++;
    }
    json_t *m =
        json_pack("{s:s, s:O?, s:s, s:s}", "type", "error", "re", id, "code", spk_err_wire(err),
                  "message", (why != NULL && why[0] != '\0') ? why : spk_strerror(err));
    if (m != NULL) {
        sig_send_json(s, conn, m);
    }
}

void sig_reply_ok(sig_req_t *r)
{
    if (r->replied) {
        return;
    }
    r->replied = true;
    json_t *m = json_pack("{s:s, s:O?}", "type", "ok", "re", r->id);
    if (m == NULL) {
        return;
    }
    if (r->reply != NULL) {
        json_object_update(m, r->reply);
    }
    sig_send_json(r->s, r->c->id, m);
}

int spk_sig_conn_open(spk_sig_t *s, uint64_t conn, const char *remote_addr, uint64_t now_ms)
{
    sig_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    c->id = conn;
    snprintf(c->remote, sizeof(c->remote), "%s", remote_addr ? remote_addr : "");
    c->opened_ms = now_ms;
    c->tokens = s->cfg.rate_burst;
    c->refill_ms = now_ms;
    if (spk_map_put_u64(&s->conns, conn, c) != 0) {
        free(c);
        return SPK_ENOMEM;
    }
    json_t *hello =
        json_pack("{s:s, s:s, s:s, s:{s:I, s:f, s:f, s:I}}", "type", "hello", "protocol",
                  "spreekkamer.v1", "server", SPK_VERSION_STR, "limits", "max_message_bytes",
                  (json_int_t)s->cfg.max_message_bytes, "rate", s->cfg.rate_per_s, "burst",
                  s->cfg.rate_burst, "auth_timeout_ms", (json_int_t)s->cfg.auth_timeout_s * 1000);
    if (hello != NULL) {
        sig_send_json(s, conn, hello);
    }
    if (s->draining) {
        json_t *m = json_pack("{s:s, s:i}", "type", "server.shutdown", "retry_after_ms", 2000);
        if (m != NULL) {
            sig_send_json(s, conn, m);
        }
    }
    return 0;
}

void spk_sig_conn_close(spk_sig_t *s, uint64_t conn)
{
    sig_conn_t *c = spk_map_del_u64(&s->conns, conn);
    if (c == NULL) {
        return;
    }
    while (c->n_joined > 0) {
        sig_unjoin_conn(s, c, c->joined[c->n_joined - 1].consult, true);
    }
    conn_free(s, c);
}

void spk_sig_conn_reject(spk_sig_t *s, uint64_t conn, int err)
{
    if (spk_map_get_u64(&s->conns, conn) != NULL) {
        send_error(s, conn, NULL, err, NULL);
    }
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

int sig_get_str(sig_req_t *r, const char *field, bool required, size_t maxlen, const char **out)
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

void sig_audit_raw(spk_sig_t *s, const spk_token_claims_t *who, const char *remote,
                   const char *event, int outcome, const char *on_behalf_of, const char *patient,
                   const char *object, const char *detail)
{
    spk_audit_rec_t a;
    memset(&a, 0, sizeof(a));
    a.ts_ms = spk_now_ms();
    snprintf(a.event, sizeof(a.event), "%s", event);
    snprintf(a.outcome, sizeof(a.outcome), "%s", outcome == 0 ? "success" : spk_err_wire(outcome));
    if (who != NULL) {
        snprintf(a.user, sizeof(a.user), "%s", who->sub);
        snprintf(a.name, sizeof(a.name), "%s", who->name);
        snprintf(a.role, sizeof(a.role), "%s", spk_role_name(who->role));
    }
    snprintf(a.on_behalf_of, sizeof(a.on_behalf_of), "%s", on_behalf_of ? on_behalf_of : "");
    snprintf(a.access_point, sizeof(a.access_point), "%s", remote ? remote : "");
    snprintf(a.patient, sizeof(a.patient), "%s", patient ? patient : "");
    snprintf(a.object, sizeof(a.object), "%s", object ? object : "");
    snprintf(a.detail, sizeof(a.detail), "%s", detail ? detail : "");
    int rc = spk_store_audit_append(s->store, &a);
    if (rc != 0) {
        spk_error(0, "audit append failed for %s: %s", event, spk_strerror(rc));
    }
}

void sig_audit(sig_req_t *r, int outcome)
{
    const spk_token_claims_t *who = r->c->authed ? &r->c->who : NULL;
    sig_audit_raw(r->s, who, r->c->remote, r->event, outcome, r->on_behalf_of, r->patient,
                  r->object, r->detail);
}

/* Decodes the frame into r->req and checks the envelope; returns the action or an error. */
static int parse_envelope(sig_req_t *r, const char *data, size_t len, const sig_action_t **out,
                          int *index)
{
    json_error_t jerr;
    r->req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (r->req == NULL || !json_is_object(r->req)) {
        snprintf(r->why, sizeof(r->why), "not a JSON object%s%.100s", r->req ? "" : ": ",
                 r->req ? "" : jerr.text);
        return SPK_EBADJSON;
    }
    json_t *id = json_object_get(r->req, "id");
    if (id != NULL) {
        bool ok_int = json_is_integer(id) && json_integer_value(id) >= 0 &&
                      json_integer_value(id) <= 9007199254740991LL;
        bool ok_str = json_is_string(id) && json_string_length(id) <= 64;
        if (!ok_int && !ok_str) {
            return sig_bad_field(r, "id");
        }
        r->id = id;
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
        return a->unauth ? 0 : SPK_EUNAUTH;
    }
    if (a->fn == sig_h_auth || a->fn == sig_h_invite_redeem) {
        return SPK_EALREADY;
    }
    if (r->now >= c->who.exp + r->s->cfg.token_leeway_s) {
        return SPK_ETOKENEXPIRED;
    }
    if (!sig_role_allows(a, c->who.role)) {
        return SPK_EFORBIDDEN;
    }
    return 0;
}

void spk_sig_conn_message(spk_sig_t *s, uint64_t conn, const char *data, size_t len,
                          uint64_t now_ms)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c == NULL || c->closing) {
        return;
    }
    s->n_msgs++;
    if (!rate_take(s, c, now_ms)) {
        send_error(s, conn, NULL, SPK_ERATE, NULL);
        return;
    }
    sig_req_t r;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.c = c;
    r.now = spk_now_s();
    const sig_action_t *a = NULL;
    int index = -1;
    int rc = parse_envelope(&r, data, len, &a, &index);
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
        r.reply = json_object();
        rc = r.reply ? a->fn(&r) : SPK_ENOMEM;
        /* Successful and refused accesses are audited; so is every sign-in attempt. */
        if (r.event != NULL && (rc == 0 || rc == SPK_EFORBIDDEN || a->unauth)) {
            sig_audit(&r, rc);
        }
        if (rc == 0) {
            sig_reply_ok(&r);
        }
    }
    if (rc != 0) {
        if (rc != SPK_ERATE) {
            spk_debug(conn, "request refused: %s (%s)", spk_err_wire(rc), r.why);
        }
        send_error(s, conn, r.id, rc, r.why);
    }
    json_decref(r.reply);
    json_decref(r.req);
}

void spk_sig_tick(spk_sig_t *s, uint64_t now_ms)
{
    sig_media_tick(s);
    uint64_t limit = (uint64_t)s->cfg.auth_timeout_s * 1000;
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *c = v;
        if (!c->authed && !c->closing && now_ms - c->opened_ms >= limit) {
            c->closing = true;
            s->m[SIG_M_AUTH_TIMEOUTS]++;
            spk_info(c->id, "closing: not authenticated within %d s", s->cfg.auth_timeout_s);
            s->io.close_cb(s->io.ud, c->id, SPK_WS_AUTH_TIMEOUT, "authentication timeout");
        }
    }
}

void spk_sig_shutdown(spk_sig_t *s)
{
    s->draining = true;
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->conns, &it, &v)) {
        sig_conn_t *c = v;
        json_t *m = json_pack("{s:s, s:i}", "type", "server.shutdown", "retry_after_ms", 2000);
        if (m != NULL) {
            sig_send_json(s, c->id, m);
        }
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
    size_t o = 0, open = 0, authed = 0;
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        open += ((sig_consult_t *)v)->rec.state == SPK_CONSULT_OPEN;
    }
    it = 0;
    while (spk_map_next(&s->conns, &it, &v)) {
        authed += ((sig_conn_t *)v)->authed;
    }
    o = append(buf, cap, o, "# TYPE spk_sig_sessions gauge\nspk_sig_sessions %zu\n", s->conns.len);
    o = append(buf, cap, o,
               "# TYPE spk_sig_sessions_authenticated gauge\n"
               "spk_sig_sessions_authenticated %zu\n",
               authed);
    o = append(buf, cap, o, "# TYPE spk_consults_open gauge\nspk_consults_open %zu\n", open);
    o = append(buf, cap, o, "# TYPE spk_lobby_waiting gauge\nspk_lobby_waiting %zu\n",
               sig_lobby_waiting(s));
    o = append(buf, cap, o, "# TYPE spk_sig_messages_total counter\nspk_sig_messages_total %llu\n",
               (unsigned long long)s->n_msgs);
    o = append(buf, cap, o, "# TYPE spk_sig_requests_total counter\n");
    for (int i = 0; i < 32; i++) {
        const sig_action_t *a = sig_action_at(i);
        if (a != NULL && s->by_action[i] > 0) {
            o = append(buf, cap, o, "spk_sig_requests_total{type=\"%s\"} %llu\n", a->type,
                       (unsigned long long)s->by_action[i]);
        }
    }
    o = append(buf, cap, o, "# TYPE spk_sig_errors_total counter\n");
    for (int i = 1; i < 64; i++) {
        if (s->errors[i] > 0) {
            o = append(buf, cap, o, "spk_sig_errors_total{code=\"%s\",err=\"%s\"} %llu\n",
                       spk_err_wire(-i), spk_err_name(-i), (unsigned long long)s->errors[i]);
        }
    }
    static const char *const mnames[SIG_M_COUNT] = {
        "spk_consults_created_total", "spk_invites_redeemed_total", "spk_lobby_admitted_total",
        "spk_auth_ok_total",          "spk_auth_failed_total",      "spk_auth_timeouts_total",
        "spk_sig_events_total",       "spk_media_endpoints_total",  "spk_media_failed_total"};
    for (int i = 0; i < SIG_M_COUNT; i++) {
        o = append(buf, cap, o, "# TYPE %s counter\n%s %llu\n", mnames[i], mnames[i],
                   (unsigned long long)s->m[i]);
    }
    if (o < cap) {
        o += sig_media_metrics(s, buf + o, cap - o);
    }
    return o;
}
