/* Transport of the /api/v1 HTTP API (api.h): collects a request (method, path, query, bearer
 * token, Idempotency-Key, body up to api_max_body_bytes), then runs it on an internal core
 * connection of its own: "auth" with the bearer token, then the call's actions, exactly as a
 * WebSocket client would send them. The core's answers arrive through the io callbacks (they may
 * wait for the group commit, like every answer); the last one becomes the HTTP response, written
 * from the writable callback. The control thread never waits: a client that goes away leaves
 * the request to finish in the core and its answer is dropped. */
#include "api.h"
#include "ws_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

struct ws_api_req {
    spk_ws_server_t *srv;
    struct lws *wsi;  /* NULL once the HTTP connection is gone */
    spk_ws_http_t *h; /* its per-request data (NULL with wsi) */
    uint64_t conn;    /* internal core connection; 0 before dispatch */
    bool finished;    /* the response is decided */
    bool in_core;
    char method[8];
    char path[256];
    char remote[64];
    char content_type[96];
    char idem[300];
    char *token;
    char query[API_MAX_QUERY][256];
    int n_query;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    api_call_t *call;
    json_t *answers[API_MAX_ACTIONS];
    int n_answers;
    json_t *inbox[API_MAX_ACTIONS + 2]; /* core answers not yet handled */
    int n_inbox;
    bool kicked, retired;
    ws_api_req_t *next_done, *next_kick;
};

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} g_methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static void req_free(ws_api_req_t *q)
{
    if (q->token != NULL) {
        spk_wipe(q->token, strlen(q->token));
        free(q->token);
    }
    if (q->body != NULL) {
        spk_wipe(q->body, q->body_len);
        free(q->body);
    }
    for (int i = 0; i < q->n_answers; i++) {
        json_decref(q->answers[i]);
    }
    for (int i = 0; i < q->n_inbox; i++) {
        json_decref(q->inbox[i]);
    }
    api_call_free(q->call);
    free(q);
}

/* Done with the core connection: closed outside the core's call stack (idle handle). */
static void req_retire(ws_api_req_t *q)
{
    spk_ws_server_t *srv = q->srv;
    if (q->retired) {
        return;
    }
    q->retired = true;
    q->next_done = srv->api_done;
    srv->api_done = q;
    uv_idle_start(&srv->api_idle, ws_api_idle_cb);
}

static void handle_answer(ws_api_req_t *q, json_t *m);

void ws_api_idle_cb(uv_idle_t *h)
{
    spk_ws_server_t *srv = h->data;
    uv_idle_stop(h);
    while (srv->api_kick != NULL) {
        ws_api_req_t *q = srv->api_kick;
        srv->api_kick = q->next_kick;
        q->kicked = false;
        for (int i = 0; i < q->n_inbox; i++) {
            json_t *m = q->inbox[i];
            q->inbox[i] = NULL;
            handle_answer(q, m);
        }
        q->n_inbox = 0;
    }
    while (srv->api_done != NULL) {
        ws_api_req_t *q = srv->api_done;
        srv->api_done = q->next_done;
        if (q->in_core) {
            spk_map_del_u64(&srv->api_by_id, q->conn);
            spk_sig_conn_close(srv->sig, q->conn);
        }
        if (q->h != NULL) {
            q->h->api = NULL;
        }
        req_free(q);
    }
}

/* The response is decided: written at the next writable callback. */
static void finish(ws_api_req_t *q, int status, const char *ctype, char *body)
{
    if (q->finished) {
        free(body);
        return;
    }
    q->finished = true;
    if (body == NULL) {
        status = 500; /* out of memory for the answer: say so rather than nothing */
        body = strdup("{\"code\":\"internal\",\"message\":\"out of memory\"}");
        ctype = "application/json";
    }
    if (q->h == NULL || body == NULL) {
        free(body);
    } else {
        q->h->api_status = (unsigned int)status;
        q->h->api_ctype = ctype;
        q->h->api_body = body;
        lws_callback_on_writable(q->wsi);
    }
    q->srv->api_requests++;
    if (status >= 400) {
        q->srv->api_errors++;
    }
    spk_info(q->conn, "api %s %s -> %d", q->method, q->path, status);
}

static void finish_error(ws_api_req_t *q, int err, const char *why, bool fhir)
{
    const char *code = spk_err_wire(err);
    char *body = api_error_body(fhir, code, why != NULL && why[0] ? why : spk_strerror(err));
    finish(q, api_status(err), fhir ? "application/fhir+json" : "application/json", body);
}

static void send_core(ws_api_req_t *q, json_t *m)
{
    char *txt = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (txt == NULL) {
        finish_error(q, SPK_ENOMEM, NULL, api_call_fhir(q->call));
        return;
    }
    spk_sig_conn_message(q->srv->sig, q->conn, txt, strlen(txt), (uint64_t)spk_now_ms());
    spk_wipe(txt, strlen(txt));
    free(txt);
}

/* Routes the collected request and starts it in the core. */
static void dispatch(ws_api_req_t *q)
{
    spk_ws_server_t *srv = q->srv;
    api_req_t in;
    memset(&in, 0, sizeof(in));
    in.method = q->method;
    in.path = q->path;
    for (int i = 0; i < q->n_query; i++) {
        in.query[i] = q->query[i];
    }
    in.n_query = q->n_query;
    in.body = q->body;
    in.body_len = q->body_len;
    in.content_type = q->content_type;
    in.idempotency_key = q->idem;
    in.now = spk_now_s();
    char why[160] = "";
    int status = 0;
    bool fhir = false;
    if (q->too_large) {
        snprintf(why, sizeof(why), "request body over %zu bytes", srv->cfg->api_max_body_bytes);
        finish_error(q, SPK_ETOOBIG, why, strncmp(q->path, "/api/v1/fhir/", 13) == 0);
        req_retire(q);
        return;
    }
    int rc = api_call_new(&in, &q->call, &status, &fhir, why, sizeof(why));
    if (rc == 0 && q->token == NULL) {
        rc = SPK_EUNAUTH;
        snprintf(why, sizeof(why), "Authorization: Bearer <service token> required");
    }
    if (rc == 0 && srv->draining) {
        rc = SPK_ESHUTDOWN;
    }
    if (rc == 0) {
        q->conn = ++srv->next_id;
        rc = spk_map_put_u64(&srv->api_by_id, q->conn, q);
    }
    if (rc == 0) {
        rc = spk_sig_conn_open(srv->sig, q->conn, q->remote, (uint64_t)spk_now_ms());
        if (rc == 0 && (rc = spk_sig_conn_api(srv->sig, q->conn)) != 0) {
            spk_sig_conn_close(srv->sig, q->conn);
        }
        if (rc != 0) {
            spk_map_del_u64(&srv->api_by_id, q->conn);
        }
    }
    if (rc != 0) {
        finish_error(q, rc, why, fhir);
        req_retire(q);
        return;
    }
    q->in_core = true;
    json_t *auth = json_pack("{s:i, s:s, s:s}", "id", 1, "type", "auth", "token", q->token);
    send_core(q, auth);
    if (!q->finished) {
        send_core(q, api_call_next(q->call, 0, q->answers));
    }
}

/* An answer or event of the core for an internal connection: kept and handled from the idle
 * handle, never inside the core's own call stack (which sends it). */
int ws_api_core_message(spk_ws_server_t *srv, uint64_t conn, const char *msg, size_t len)
{
    ws_api_req_t *q = spk_map_get_u64(&srv->api_by_id, conn);
    if (q == NULL) {
        return SPK_ENOTFOUND;
    }
    json_t *m = json_loadb(msg, len, 0, NULL);
    const char *type = json_string_value(json_object_get(m, "type"));
    bool answer = type != NULL && (strcmp(type, "ok") == 0 || strcmp(type, "error") == 0);
    if (!answer || q->finished || q->n_inbox == (int)(sizeof(q->inbox) / sizeof(q->inbox[0]))) {
        json_decref(m); /* hello and other events; answers after the decision */
        return 0;
    }
    q->inbox[q->n_inbox++] = m;
    if (!q->kicked) {
        q->kicked = true;
        q->next_kick = srv->api_kick;
        srv->api_kick = q;
        uv_idle_start(&srv->api_idle, ws_api_idle_cb);
    }
    return 0;
}

static void handle_answer(ws_api_req_t *q, json_t *m)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    json_int_t re = json_integer_value(json_object_get(m, "re"));
    if (q->finished || q->n_answers == API_MAX_ACTIONS) {
        json_decref(m);
        return;
    }
    bool fhir = api_call_fhir(q->call);
    if (re == 1) {
        if (strcmp(type, "error") != 0) {
            json_decref(m);
            return; /* signed in */
        }
        const char *code = json_string_value(json_object_get(m, "code"));
        const char *why = json_string_value(json_object_get(m, "message"));
        finish(q, api_status(api_wire_err(code)),
               fhir ? "application/fhir+json" : "application/json",
               api_error_body(fhir, code != NULL ? code : "internal", why != NULL ? why : ""));
        json_decref(m);
        req_retire(q);
        return;
    }
    q->answers[q->n_answers++] = m;
    json_t *next = strcmp(type, "ok") == 0 && q->n_answers < API_MAX_ACTIONS
                       ? api_call_next(q->call, q->n_answers, q->answers)
                       : NULL;
    if (next != NULL) {
        send_core(q, next);
        return;
    }
    int status;
    const char *ctype;
    char *body = NULL;
    api_call_response(q->call, q->answers, q->n_answers, &status, &ctype, &body);
    finish(q, status, ctype, body);
    req_retire(q);
}

bool ws_api_core_close(spk_ws_server_t *srv, uint64_t conn)
{
    return spk_map_get_u64(&srv->api_by_id, conn) != NULL;
}

/* ---- HTTP side ---- */

static char *header(struct lws *wsi, enum lws_token_indexes t, size_t max)
{
    int n = lws_hdr_total_length(wsi, t);
    if (n <= 0 || (size_t)n > max) {
        return NULL;
    }
    char *v = malloc((size_t)n + 1);
    if (v != NULL && lws_hdr_copy(wsi, v, n + 1, t) < 0) {
        free(v);
        v = NULL;
    }
    return v;
}

int ws_api_begin(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *uri)
{
    ws_api_req_t *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return -1;
    }
    q->srv = srv;
    q->wsi = wsi;
    q->h = h;
    h->api = q;
    snprintf(q->method, sizeof(q->method), "?");
    for (size_t i = 0; i < sizeof(g_methods) / sizeof(g_methods[0]); i++) {
        if (lws_hdr_total_length(wsi, g_methods[i].tok) > 0) {
            snprintf(q->method, sizeof(q->method), "%s", g_methods[i].name);
            break;
        }
    }
    snprintf(q->path, sizeof(q->path), "%s", uri);
    ws_client_address(srv, wsi, q->remote, sizeof(q->remote));
    char *ct = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, sizeof(q->content_type) - 1);
    snprintf(q->content_type, sizeof(q->content_type), "%s", ct != NULL ? ct : "");
    free(ct);
    char *auth = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, SPK_TOKEN_MAX_LEN + 16);
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && auth[7] != '\0') {
        q->token = strdup(auth + 7);
    }
    if (auth != NULL) {
        spk_wipe(auth, strlen(auth));
    }
    free(auth);
    int n = lws_hdr_custom_length(wsi, "idempotency-key:", 16);
    if (n > 0 && (size_t)n < sizeof(q->idem)) {
        lws_hdr_custom_copy(wsi, q->idem, (int)sizeof(q->idem), "idempotency-key:", 16);
    } else if (n > 0) {
        snprintf(q->idem, sizeof(q->idem), "%0*d", 280, 0); /* refused as too long */
    }
    for (int i = 0; q->n_query < API_MAX_QUERY; i++) {
        char frag[256];
        if (lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
            break;
        }
        snprintf(q->query[q->n_query++], sizeof(q->query[0]), "%s", frag);
    }
    char *cl = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 20);
    long long len = cl != NULL ? atoll(cl) : 0;
    free(cl);
    if (len > 0 && (size_t)len > srv->cfg->api_max_body_bytes) {
        q->too_large = true;
    }
    bool has_body =
        len > 0 && (strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0 ||
                    strcmp(q->method, "PATCH") == 0 || strcmp(q->method, "DELETE") == 0);
    if (!has_body) {
        dispatch(q);
    }
    return 0;
}

int ws_api_body(spk_ws_http_t *h, const void *in, size_t len)
{
    ws_api_req_t *q = h->api;
    if (q == NULL || q->finished || q->call != NULL) {
        return 0;
    }
    size_t max = q->srv->cfg->api_max_body_bytes;
    if (q->too_large || q->body_len + len > max) {
        q->too_large = true;
        return 0; /* discarded; answered with too_large once the body is read */
    }
    if (q->body_len + len + 1 > q->body_cap) {
        size_t cap = q->body_cap ? q->body_cap : 1024;
        while (cap < q->body_len + len + 1) {
            cap *= 2;
        }
        char *p = realloc(q->body, cap);
        if (p == NULL) {
            return -1;
        }
        q->body = p;
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, in, len);
    q->body_len += len;
    q->body[q->body_len] = '\0';
    return 0;
}

void ws_api_body_done(spk_ws_http_t *h)
{
    ws_api_req_t *q = h->api;
    if (q != NULL && !q->finished && q->call == NULL && !q->in_core) {
        dispatch(q);
    }
}

void ws_api_drop(spk_ws_http_t *h)
{
    ws_api_req_t *q = h->api;
    free(h->api_body);
    h->api_body = NULL;
    if (q == NULL) {
        return;
    }
    h->api = NULL;
    q->h = NULL;
    q->wsi = NULL;
    if (!q->in_core && !q->finished) {
        /* never dispatched (the body did not arrive): nothing in the core */
        q->finished = true;
        req_retire(q);
    }
}

void ws_api_free_all(spk_ws_server_t *srv)
{
    while (srv->api_done != NULL) {
        ws_api_req_t *q = srv->api_done;
        srv->api_done = q->next_done;
        spk_map_del_u64(&srv->api_by_id, q->conn);
        req_free(q);
    }
    size_t it = 0;
    void *v;
    while (spk_map_next(&srv->api_by_id, &it, &v)) {
        req_free(v);
    }
}
