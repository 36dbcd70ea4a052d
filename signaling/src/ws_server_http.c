/* Transport, HTTP side: static files of the web client, /healthz, /livez, /metrics, and the checks
 * on a WebSocket upgrade (path /ws, subprotocol spreekkamer.v1, not while draining). */
#include "ws_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spk/log.h"

#define METRICS_CAP (256 * 1024)

typedef struct {
    const char *ext;
    const char *type;
} mime_t;

static const mime_t g_mime[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".wasm", "application/wasm"},
    {".txt", "text/plain; charset=utf-8"},
    {".wav", "audio/wav"},
    {".mp3", "audio/mpeg"},
};

static const char *mime_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(g_mime) / sizeof(g_mime[0]); i++) {
        if (strcasecmp(dot, g_mime[i].ext) == 0) {
            return g_mime[i].type;
        }
    }
    return NULL;
}

/* Security headers, raw "name: value\r\n" lines for lws_serve_http_file, or added to p. */
int ws_http_security_headers(spk_ws_server_t *srv, struct lws *wsi, bool html, unsigned char **p,
                             unsigned char *end)
{
    struct {
        const char *name, *value;
        bool html_only;
    } h[] = {
        {"x-content-type-options:", "nosniff", false},
        {"referrer-policy:", "no-referrer", false},
        {"content-security-policy:", srv->csp, true},
        {"permissions-policy:", "camera=(self), microphone=(self), geolocation=(), usb=()", true},
        {"x-frame-options:", "DENY", true},
        {"cache-control:", "no-cache", true},
        {"strict-transport-security:", srv->hsts, false},
    };
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
        if ((h[i].html_only && !html) || h[i].value[0] == '\0') {
            continue;
        }
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i].name,
                                        (const unsigned char *)h[i].value, (int)strlen(h[i].value),
                                        p, end)) {
            return -1;
        }
    }
    return 0;
}

/* Sends status + headers now and the body (taken over: malloc'd with LWS_PRE headroom) from
 * HTTP_WRITEABLE. Returns what the lws callback should return. */
int ws_http_respond(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, unsigned int status,
                    const char *ctype, char *body, size_t len)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)len, &p, end) ||
        ws_http_security_headers(srv, wsi, false, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        free(body);
        return -1;
    }
    free(h->body);
    h->body = body;
    h->body_len = len;
    lws_callback_on_writable(wsi);
    return 0;
}

int ws_http_respond_text(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h,
                         unsigned int status, const char *ctype, const char *text)
{
    size_t len = strlen(text);
    char *body = malloc(LWS_PRE + len + 1);
    if (!body) {
        return -1;
    }
    memcpy(body + LWS_PRE, text, len + 1);
    return ws_http_respond(srv, wsi, h, status, ctype, body, len);
}

/* An /api/v1 response decided since the last callback: headers now, the body when writable. */
static int api_writeable(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h)
{
    size_t len = strlen(h->api_body);
    char *body = malloc(LWS_PRE + len + 1);
    if (body == NULL) {
        return -1;
    }
    memcpy(body + LWS_PRE, h->api_body, len + 1);
    free(h->api_body);
    h->api_body = NULL;
    return ws_http_respond(srv, wsi, h, h->api_status, h->api_ctype, body, len);
}

static int http_writeable(struct lws *wsi, spk_ws_http_t *h)
{
    if (!h->body) {
        return 0;
    }
    int n = lws_write(wsi, (unsigned char *)h->body + LWS_PRE, h->body_len, LWS_WRITE_HTTP_FINAL);
    size_t len = h->body_len;
    free(h->body);
    h->body = NULL;
    if (n < 0 || (size_t)n < len || h->close_after) {
        return -1;
    }
    ws_limits_response_done(lws_context_user(lws_get_context(wsi)), wsi);
    if (lws_http_transaction_completed(wsi)) {
        return -1;
    }
    return 0;
}

static size_t appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
    if (n >= cap) {
        return n;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    if (w < 0) {
        return n;
    }
    return (size_t)w >= cap - n ? cap - 1 : n + (size_t)w;
}

static size_t metric(char *buf, size_t cap, size_t n, const char *name, const char *type,
                     const char *help, uint64_t v)
{
    n = appendf(buf, cap, n, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                (unsigned long long)v);
    return n;
}

static size_t render_metrics(spk_ws_server_t *srv, char *buf, size_t cap)
{
    const spk_ws_metrics_t *m = &srv->m;
    size_t n = 0;
    n = metric(buf, cap, n, "spk_connections_open", "gauge", "Open WebSocket connections.",
               m->connections_open);
    n = metric(buf, cap, n, "spk_connections_total", "counter", "WebSocket connections accepted.",
               m->connections_total);
    n = appendf(buf, cap, n,
                "# HELP spk_connections_rejected_total WebSocket connections or upgrades "
                "refused.\n# TYPE spk_connections_rejected_total counter\n"
                "spk_connections_rejected_total{reason=\"too_many_connections\"} %llu\n"
                "spk_connections_rejected_total{reason=\"draining\"} %llu\n"
                "spk_connections_rejected_total{reason=\"bad_upgrade\"} %llu\n"
                "spk_connections_rejected_total{reason=\"per_address\"} %llu\n"
                "spk_connections_rejected_total{reason=\"pending_per_address\"} %llu\n"
                "spk_connections_rejected_total{reason=\"origin\"} %llu\n"
                "spk_connections_rejected_total{reason=\"bad_forwarded_address\"} %llu\n"
                "spk_connections_rejected_total{reason=\"header_timeout\"} %llu\n",
                (unsigned long long)m->rejected_too_many, (unsigned long long)m->rejected_draining,
                (unsigned long long)m->rejected_protocol, (unsigned long long)m->rejected_address,
                (unsigned long long)m->rejected_pending, (unsigned long long)m->rejected_origin,
                (unsigned long long)m->rejected_forwarded,
                (unsigned long long)m->rejected_header_timeout);
    n = metric(buf, cap, n, "spk_client_addresses", "gauge",
               "Source addresses (by prefix) with connections open.", srv->by_addr.len);
    n = metric(buf, cap, n, "spk_ws_messages_in_total", "counter",
               "Complete text messages received.", m->messages_in);
    n = metric(buf, cap, n, "spk_ws_messages_out_total", "counter", "Messages written.",
               m->messages_out);
    n = metric(buf, cap, n, "spk_ws_writes_total", "counter",
               "Socket writes of messages (the messages a loop turn queues for a connection go "
               "out together).",
               m->writes_out);
    n = metric(buf, cap, n, "spk_ws_bytes_in_total", "counter", "WebSocket payload bytes read.",
               m->bytes_in);
    n = metric(buf, cap, n, "spk_ws_bytes_out_total", "counter", "WebSocket payload bytes written.",
               m->bytes_out);
    n = metric(buf, cap, n, "spk_send_queue_overflows_total", "counter",
               "Connections closed because their send queue was full.", m->send_queue_overflows);
    n = metric(buf, cap, n, "spk_frames_too_large_total", "counter",
               "Messages over max_message_bytes, discarded.", m->frames_too_large);
    n = metric(buf, cap, n, "spk_rx_deferred_total", "counter",
               "Messages left for a later loop turn because the turn's chat budget was spent.",
               m->rx_deferred);
    n = metric(buf, cap, n, "spk_rx_paused_total", "counter",
               "Times reading a connection was paused because its send queue passed half "
               "the cap.",
               m->rx_paused);
    n = metric(buf, cap, n, "spk_connections_rx_paused", "gauge",
               "Connections whose reading is paused now.", m->connections_rx_paused);
    uint64_t q_bytes = 0, q_max = 0;
    for (const spk_ws_conn_t *c = srv->conns; c != NULL; c = c->next) {
        q_bytes += c->q_bytes;
        q_max = c->q_bytes > q_max ? c->q_bytes : q_max;
    }
    n = metric(buf, cap, n, "spk_ws_send_queue_bytes", "gauge",
               "Bytes queued for writing, all connections together.", q_bytes);
    n = metric(buf, cap, n, "spk_ws_send_queue_bytes_max", "gauge",
               "Bytes queued for writing on the connection with the longest queue.", q_max);
    n = metric(buf, cap, n, "spk_draining", "gauge", "1 while the server drains.",
               srv->draining ? 1 : 0);
    n = metric(buf, cap, n, "spk_api_requests_total", "counter", "/api/v1 requests answered.",
               srv->api_requests);
    n = metric(buf, cap, n, "spk_api_errors_total", "counter",
               "/api/v1 requests answered with an error status.", srv->api_errors);
    if (srv->sig && n < cap - 1) {
        n += spk_sig_metrics(srv->sig, buf + n, cap - n);
    }
    return n < cap ? n : cap - 1;
}

static int serve_metrics(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h)
{
    char *body = malloc(LWS_PRE + METRICS_CAP);
    if (!body) {
        return -1;
    }
    size_t n = render_metrics(srv, body + LWS_PRE, METRICS_CAP);
    return ws_http_respond(srv, wsi, h, 200, "text/plain; version=0.0.4; charset=utf-8", body, n);
}

/* Only [A-Za-z0-9._~/-], absolute, no empty or dot-leading segment (no "..", no dotfiles). */
static bool path_is_safe(const char *path)
{
    if (path[0] != '/' || strlen(path) > 512) {
        return false;
    }
    for (const char *p = path; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '~' || ch == '-' ||
                  ch == '/';
        if (!ok) {
            return false;
        }
        if (ch == '/' && (p[1] == '.' || (p[1] == '/'))) {
            return false;
        }
    }
    return true;
}

static int serve_file(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *path)
{
    if (!path_is_safe(path)) {
        spk_info(0, "http: refused path");
        return ws_http_respond_text(srv, wsi, h, 404, "text/plain; charset=utf-8", "not found\n");
    }
    char full[8192];
    char real[4096];
    snprintf(full, sizeof(full), "%s%s", srv->web_root, path);
    struct stat st;
    size_t root_len = strlen(srv->web_root);
    if (!realpath(full, real) || strncmp(real, srv->web_root, root_len) != 0 ||
        real[root_len] != '/' || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        return ws_http_respond_text(srv, wsi, h, 404, "text/plain; charset=utf-8", "not found\n");
    }
    const char *mime = mime_for(real);
    if (!mime) {
        mime = "application/octet-stream";
    }
    bool html = strncmp(mime, "text/html", 9) == 0;
    unsigned char hdrs[1024];
    unsigned char *p = hdrs, *end = hdrs + sizeof(hdrs) - 1;
    if (ws_http_security_headers(srv, wsi, html, &p, end)) {
        return -1;
    }
    *p = '\0'; /* lws_serve_http_file searches other_headers as a C string */
    int n = lws_serve_http_file(wsi, real, mime, (const char *)hdrs, (int)(p - hdrs));
    if (n > 0) {
        ws_limits_response_done(srv, wsi);
    }
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) {
        return -1;
    }
    return 0;
}

static int on_http(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *uri)
{
    /* Listening before the store is open (spreekd waiting for PostgreSQL): only the probes. */
    if (srv->sig == NULL && strcmp(uri, "/livez") != 0 && strcmp(uri, "/healthz") != 0) {
        return ws_http_respond_text(srv, wsi, h, 503, "text/plain; charset=utf-8",
                                    "starting: the store is not reachable yet\n");
    }
    if (strncmp(uri, "/files/", 7) == 0) {
        return ws_files_request(srv, wsi, h, uri);
    }
    if (strncmp(uri, "/api/", 5) == 0) {
        return ws_api_begin(srv, wsi, h, uri);
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        return ws_http_respond_text(srv, wsi, h, 405, "text/plain; charset=utf-8",
                                    "method not allowed\n");
    }
    if (strcmp(uri, "/livez") == 0) {
        /* the loop answers: alive, whatever the store or a drain says (liveness probes) */
        return ws_http_respond_text(srv, wsi, h, 200, "application/json", "{\"status\":\"live\"}");
    }
    if (strcmp(uri, "/healthz") == 0) {
        if (srv->draining) {
            return ws_http_respond_text(srv, wsi, h, 503, "application/json",
                                        "{\"status\":\"draining\"}");
        }
        if (srv->store_down) {
            return ws_http_respond_text(srv, wsi, h, 503, "application/json",
                                        "{\"status\":\"store_unavailable\"}");
        }
        return ws_http_respond_text(srv, wsi, h, 200, "application/json", "{\"status\":\"ok\"}");
    }
    if (strcmp(uri, "/metrics") == 0) {
        return serve_metrics(srv, wsi, h);
    }
    if (strcmp(uri, SPK_WS_PATH) == 0) {
        return ws_http_respond_text(srv, wsi, h, 426, "text/plain; charset=utf-8",
                                    "WebSocket upgrade with subprotocol " SPK_WS_SUBPROTOCOL
                                    " expected\n");
    }
    if (strcmp(uri, "/join") == 0 || strcmp(uri, "/join/") == 0) {
        return serve_file(srv, wsi, h, "/join.html");
    }
    if (strcmp(uri, "/console") == 0 || strcmp(uri, "/console/") == 0) {
        return serve_file(srv, wsi, h, "/console.html");
    }
    if (strcmp(uri, "/") == 0) {
        return serve_file(srv, wsi, h, "/index.html");
    }
    return serve_file(srv, wsi, h, uri);
}

static bool offers_subprotocol(struct lws *wsi)
{
    char list[256];
    if (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_PROTOCOL) <= 0) {
        return false;
    }
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t') {
            tok++;
        }
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t')) {
            tok[--n] = '\0';
        }
        if (strcmp(tok, SPK_WS_SUBPROTOCOL) == 0) {
            return true;
        }
    }
    return false;
}

/* Answers a refused upgrade with status and a text body, with the same headers as every other
 * response (lws_return_http_status adds none of them), and returns 1: lws closes the
 * connection once the callback returns. */
static int refuse_upgrade(spk_ws_server_t *srv, struct lws *wsi, unsigned int status,
                          const char *text)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    size_t len = strlen(text);
    bool later = status == 429 || status == 503;
    if (lws_add_http_common_headers(wsi, status, "text/plain; charset=utf-8", (lws_filepos_t)len,
                                    &p, end) ||
        ws_http_security_headers(srv, wsi, false, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (later && lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                              (const unsigned char *)"10", 2, &p, end)) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                    (const unsigned char *)"close", 5, &p, end) ||
        lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < len) {
        return 1;
    }
    memcpy(p, text, len);
    p += len;
    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
    return 1;
}

/* Returns 0 to allow the upgrade, 1 after answering with an HTTP error. */
static int confirm_upgrade(spk_ws_server_t *srv, struct lws *wsi, const char *what)
{
    char uri[256] = "";
    lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    if (strcmp(what ? what : "", "websocket") != 0 || strcmp(uri, SPK_WS_PATH) != 0 ||
        !offers_subprotocol(wsi)) {
        srv->m.rejected_protocol++;
        spk_info(0, "upgrade refused: path or subprotocol (need %s with %s)", SPK_WS_PATH,
                 SPK_WS_SUBPROTOCOL);
        return refuse_upgrade(srv, wsi, 400,
                              "WebSocket upgrade needs path " SPK_WS_PATH
                              " and subprotocol " SPK_WS_SUBPROTOCOL "\n");
    }
    if (srv->sig == NULL) {
        spk_info(0, "upgrade refused: the store is not reachable yet");
        return refuse_upgrade(srv, wsi, 503, "starting: the store is not reachable yet\n");
    }
    if (srv->draining) {
        srv->m.rejected_draining++;
        spk_info(0, "upgrade refused: draining");
        return refuse_upgrade(srv, wsi, 503, "server is shutting down\n");
    }
    const char *why = NULL;
    unsigned int status = ws_limits_upgrade(srv, wsi, &why);
    if (status != 0) {
        char text[128];
        snprintf(text, sizeof(text), "%s\n", why);
        return refuse_upgrade(srv, wsi, status, text);
    }
    return 0;
}

int spk_ws_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    spk_ws_server_t *srv = lws_context_user(lws_get_context(wsi));
    spk_ws_http_t *h = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return ws_limits_accept(srv, user);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        ws_limits_adopted(srv, wsi);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        ws_limits_wsi_destroy(srv, wsi);
        return 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        ws_limits_response_done(srv, wsi);
        return lws_callback_http_dummy(wsi, reason, user, in, len); /* completes the transaction */
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        ws_limits_request(srv, wsi);
        return confirm_upgrade(srv, wsi, in);
    case LWS_CALLBACK_HTTP:
        ws_limits_request(srv, wsi);
        return on_http(srv, wsi, h, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        if (h && h->api) {
            return ws_api_body(h, in, len);
        }
        return h && h->uploading ? ws_files_body(srv, h, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (h && h->api) {
            ws_api_body_done(h);
            return 0;
        }
        return h && h->uploading ? ws_files_body_done(srv, wsi, h) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (h && h->api_body) {
            return api_writeable(srv, wsi, h);
        }
        if (h) {
            return http_writeable(wsi, h);
        }
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (h) {
            free(h->body);
            h->body = NULL;
            ws_files_closed(srv, h);
            ws_api_drop(h);
        }
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* an upgrade that fell through to this protocol carries no usable subprotocol */
        srv->m.rejected_protocol++;
        return 1;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
