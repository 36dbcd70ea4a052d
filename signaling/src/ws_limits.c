/* Transport: limits per source address, the client address behind trusted proxies, and the
 * Origin check of WebSocket upgrades (docs/operations.md "Limits and backpressure", "Behind a
 * reverse proxy").
 *
 * Direct connections are counted per source address (IPv4 by address_prefix_v4, IPv6 by
 * address_prefix_v6) from accept to close; those that have not completed their first request
 * head count as pending too. Over either limit a connection is refused at accept, before lws
 * spends a header buffer or a TLS handshake on it: plain HTTP gets a 429 written straight to
 * the socket, TLS a TCP close. Connections from a trusted proxy are not counted at accept (the
 * proxy holds many); their WebSocket upgrades count per forwarded client address and over the
 * limit are refused with 429.
 *
 * Each accepted connection carries a ws_wsi_rec_t in the wsi's opaque user data (set at
 * LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: lws 4.1 overwrites it after WSI_CREATE): its
 * entry, whether it still counts as pending, and whether it counts in `ws` (proxied) rather than
 * `tcp`.
 *
 * The header timeout (header_timeout_s from accept to a complete first request head) is enforced
 * here rather than by libwebsockets: lws judges its timeouts from a timer, and libuv runs timers
 * before it polls for input, so after the control thread got no CPU for longer than the timeout
 * (a loaded host), lws closed connections whose request had arrived in time but was not read yet
 * -- silently, and with the unread request in the socket the client saw a reset. The sweep runs
 * with the 1 Hz tick's work, after the turn's input was read (ws_server.c flush_check_cb), logs
 * and counts what it closes, and answers 408 over plain HTTP. lws's own limit stays behind it as
 * a backstop (ws_server.c fill_info). */
#include "ws_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

static const char g_refuse_429[] = "HTTP/1.1 429 Too Many Requests\r\n"
                                   "content-type: text/plain; charset=utf-8\r\n"
                                   "content-length: 39\r\n"
                                   "retry-after: 10\r\n"
                                   "connection: close\r\n"
                                   "\r\n"
                                   "too many connections from your address\n";

static const char g_refuse_408[] = "HTTP/1.1 408 Request Timeout\r\n"
                                   "content-type: text/plain; charset=utf-8\r\n"
                                   "content-length: 33\r\n"
                                   "connection: close\r\n"
                                   "\r\n"
                                   "no complete request head in time\n";

/* ---- the table ---- */

static ws_ip_t addr_key(const spk_ws_server_t *srv, const ws_ip_t *ip)
{
    int prefix = ip->family == 4 ? srv->cfg->address_prefix_v4 : srv->cfg->address_prefix_v6;
    return ws_ip_masked(ip, prefix);
}

static ws_addr_entry_t *entry_get(spk_ws_server_t *srv, const ws_ip_t *ip, bool create)
{
    ws_ip_t key = addr_key(srv, ip);
    ws_addr_entry_t *e = spk_map_get(&srv->by_addr, &key, sizeof(key));
    if (e || !create) {
        return e;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        return NULL;
    }
    e->key = key;
    if (spk_map_put(&srv->by_addr, &e->key, sizeof(e->key), e) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

static void entry_release(spk_ws_server_t *srv, ws_addr_entry_t *e)
{
    if (e->tcp == 0 && e->pending == 0 && e->ws == 0) {
        spk_map_del(&srv->by_addr, &e->key, sizeof(e->key));
        free(e);
    }
}

static ws_wsi_rec_t *wsi_rec(struct lws *wsi)
{
    return lws_get_opaque_user_data(wsi);
}

static void awaiting_unlink(spk_ws_server_t *srv, ws_wsi_rec_t *r)
{
    if (!r->awaiting) {
        return;
    }
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        srv->awaiting = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
    r->awaiting = false;
}

static void awaiting_link(spk_ws_server_t *srv, ws_wsi_rec_t *r, uint64_t now, int secs)
{
    awaiting_unlink(srv, r);
    r->since_ms = now;
    r->deadline_ms = now + (uint64_t)secs * 1000;
    r->awaiting = true;
    r->next = srv->awaiting;
    if (srv->awaiting) {
        srv->awaiting->prev = r;
    }
    srv->awaiting = r;
}

int ws_limits_head_timeout_s(const spk_config_t *cfg)
{
    return cfg->header_timeout_s < cfg->handshake_timeout_s ? cfg->header_timeout_s
                                                            : cfg->handshake_timeout_s;
}

/* ---- configuration ---- */

int ws_limits_init(spk_ws_server_t *srv, char *why, size_t why_len)
{
    const spk_config_t *cfg = srv->cfg;
    int rc = ws_cidr_list_parse(cfg->trusted_proxies, &srv->proxies, why, why_len);
    if (rc != 0) {
        return rc;
    }
    srv->n_origins = 0;
    const char *p = cfg->allowed_origins;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        p += len + (p[len] == ',');
        while (len > 0 && (*item == ' ' || *item == '\t')) {
            item++;
            len--;
        }
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            continue;
        }
        if (srv->n_origins >= WS_MAX_ORIGINS) {
            snprintf(why, why_len, "allowed_origins: at most %d origins", WS_MAX_ORIGINS);
            return SPK_ECONFIG;
        }
        if (ws_origin_normalize(item, len, srv->origins[srv->n_origins], WS_ORIGIN_MAX) != 0) {
            snprintf(why, why_len,
                     "allowed_origins: \"%.*s\" is not an origin (http(s)://host[:port])",
                     (int)(len > 100 ? 100 : len), item);
            return SPK_ECONFIG;
        }
        srv->n_origins++;
    }
    const char *hdr = cfg->client_address_header;
    if (srv->proxies.n > 0 && (hdr[0] == '\0' || strcspn(hdr, " \t\r\n:") != strlen(hdr))) {
        snprintf(why, why_len, "client_address_header: \"%s\" is not a header name", hdr);
        return SPK_ECONFIG;
    }
    srv->hsts[0] = '\0';
    if (cfg->tls_cert[0] && cfg->tls_key[0] && cfg->hsts_max_age_s > 0) {
        snprintf(srv->hsts, sizeof(srv->hsts), "max-age=%lld", (long long)cfg->hsts_max_age_s);
    }
    return 0;
}

void ws_limits_start(spk_ws_server_t *srv)
{
    const char *url = srv->cfg->public_url;
    size_t len = strlen(url);
    const char *sep = strstr(url, "://");
    if (sep) {
        size_t host_end = (size_t)(sep - url) + 3 + strcspn(sep + 3, "/?#");
        len = host_end;
    }
    if (ws_origin_normalize(url, len, srv->self_origin, sizeof(srv->self_origin)) != 0) {
        srv->self_origin[0] = '\0';
        spk_warn(0, "public_url %s has no usable origin: same-origin checks use Host alone", url);
    }
}

void ws_limits_free(spk_ws_server_t *srv)
{
    void *v;
    for (size_t i = 0; spk_map_next(&srv->by_addr, &i, &v);) {
        free(v);
    }
    spk_map_free(&srv->by_addr);
}

/* ---- accept ---- */

static void log_refusal(spk_ws_server_t *srv, const char *what, const ws_ip_t *ip,
                        const ws_addr_entry_t *e)
{
    uint64_t now = (uint64_t)spk_now_ms();
    srv->refused_unlogged++;
    if (now - srv->refused_log_ms < 1000) {
        return;
    }
    char addr[64];
    ws_ip_format(ip, addr, sizeof(addr));
    spk_warn(0, "refused: %s from %s (%u open, %u pending); %llu refusal(s) since the last line",
             what, addr, e ? e->tcp : 0, e ? e->pending : 0,
             (unsigned long long)srv->refused_unlogged);
    srv->refused_log_ms = now;
    srv->refused_unlogged = 0;
}

/* Plain HTTP only: the answer goes out before the request is read (it fits in any socket
 * buffer); what the client already sent is read first so that the close is not a reset. */
static void write_refusal(int fd, const char *answer, size_t len)
{
    char sink[2048];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++) {
    }
    ssize_t n = send(fd, answer, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    shutdown(fd, SHUT_WR);
}

int ws_limits_accept(spk_ws_server_t *srv, const struct lws_filter_network_conn_args *a)
{
    if (srv->accepting) {
        /* the previous accept never became a wsi (lws failed to adopt it) */
        srv->accepting->tcp--;
        srv->accepting->pending--;
        entry_release(srv, srv->accepting);
        srv->accepting = NULL;
    }
    ws_ip_t ip;
    if (ws_ip_from_sockaddr((const struct sockaddr *)&a->cli_addr, a->clilen, &ip) != 0) {
        return 0; /* not an IP socket */
    }
    if (ws_cidr_list_match(&srv->proxies, &ip)) {
        return 0; /* counted per forwarded client at the upgrade */
    }
    const spk_config_t *cfg = srv->cfg;
    ws_addr_entry_t *e = entry_get(srv, &ip, true);
    const char *what = NULL;
    if (!e) {
        what = "out of memory";
    } else if (e->tcp >= (uint32_t)cfg->max_connections_per_address) {
        srv->m.rejected_address++;
        what = "too many connections";
    } else if (e->pending >= (uint32_t)cfg->max_pending_per_address) {
        srv->m.rejected_pending++;
        what = "too many unfinished requests";
    }
    if (what) {
        log_refusal(srv, what, &ip, e);
        if (!(cfg->tls_cert[0] && cfg->tls_key[0])) {
            write_refusal(a->accept_fd, g_refuse_429, sizeof(g_refuse_429) - 1);
        }
        if (e) {
            entry_release(srv, e);
        }
        return 1;
    }
    e->tcp++;
    e->pending++;
    srv->accepting = e;
    return 0;
}

void ws_limits_adopted(spk_ws_server_t *srv, struct lws *wsi)
{
    ws_addr_entry_t *e = srv->accepting;
    srv->accepting = NULL;
    ws_wsi_rec_t *r = calloc(1, sizeof(*r));
    if (!r) {
        /* not tracked: lws's backstop closes it if it never completes a request */
        if (e) {
            e->tcp--;
            e->pending--;
            entry_release(srv, e);
        }
        return;
    }
    r->wsi = wsi;
    r->e = e;
    r->pending = e != NULL;
    awaiting_link(srv, r, (uint64_t)spk_now_ms(), ws_limits_head_timeout_s(srv->cfg));
    lws_set_opaque_user_data(wsi, r);
}

void ws_limits_wsi_destroy(spk_ws_server_t *srv, struct lws *wsi)
{
    ws_wsi_rec_t *r = wsi_rec(wsi);
    if (!r) {
        return;
    }
    lws_set_opaque_user_data(wsi, NULL);
    awaiting_unlink(srv, r);
    ws_addr_entry_t *e = r->e;
    if (e) {
        if (r->proxied) {
            e->ws--;
        } else {
            e->tcp--;
            if (r->pending) {
                e->pending--;
            }
        }
        entry_release(srv, e);
    }
    free(r);
}

void ws_limits_request(spk_ws_server_t *srv, struct lws *wsi)
{
    ws_wsi_rec_t *r = wsi_rec(wsi);
    if (!r) {
        return;
    }
    awaiting_unlink(srv, r);
    if (r->pending) {
        r->e->pending--;
        r->pending = false;
    }
}

void ws_limits_response_done(spk_ws_server_t *srv, struct lws *wsi)
{
    ws_wsi_rec_t *r = wsi_rec(wsi);
    if (r) {
        const spk_config_t *cfg = srv->cfg;
        awaiting_link(srv, r, (uint64_t)spk_now_ms(),
                      cfg->handshake_timeout_s + ws_limits_head_timeout_s(cfg));
    }
}

void ws_limits_sweep(spk_ws_server_t *srv, uint64_t now_ms)
{
    bool tls = srv->cfg->tls_cert[0] && srv->cfg->tls_key[0];
    for (ws_wsi_rec_t *r = srv->awaiting, *next; r; r = next) {
        next = r->next;
        if (now_ms < r->deadline_ms) {
            continue;
        }
        awaiting_unlink(srv, r);
        srv->m.rejected_header_timeout++;
        srv->timeout_unlogged++;
        if (now_ms - srv->timeout_log_ms >= 1000) {
            char peer[64] = "";
            lws_get_peer_simple(r->wsi, peer, sizeof(peer));
            spk_info(0,
                     "closed: no complete request head in time (from %s, %llu ms after accept "
                     "or the last response); %llu such close(s) since the last line",
                     peer, (unsigned long long)(now_ms - r->since_ms),
                     (unsigned long long)srv->timeout_unlogged);
            srv->timeout_log_ms = now_ms;
            srv->timeout_unlogged = 0;
        }
        int fd = lws_get_socket_fd(r->wsi);
        if (!tls && fd >= 0) {
            write_refusal(fd, g_refuse_408, sizeof(g_refuse_408) - 1);
        }
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* ---- the client behind a proxy ---- */

static bool peer_ip(struct lws *wsi, ws_ip_t *ip)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = lws_get_socket_fd(wsi);
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
           ws_ip_from_sockaddr((struct sockaddr *)&ss, len, ip) == 0;
}

/* The configured client address header: -1 when absent, -2 when unreadable or longer than
 * the buffer, else its length. X-Forwarded-For and X-Real-IP are headers lws knows by token;
 * any other name is looked up as a custom header (lower case, with its colon). Repeated
 * headers come joined with commas. */
static int forwarded_header(spk_ws_server_t *srv, struct lws *wsi, char *buf, int cap)
{
    const char *name = srv->cfg->client_address_header;
    int len;
    if (strcasecmp(name, "x-forwarded-for") == 0 || strcasecmp(name, "x-real-ip") == 0) {
        enum lws_token_indexes t = strcasecmp(name, "x-real-ip") == 0 ? WSI_TOKEN_HTTP_X_REAL_IP
                                                                      : WSI_TOKEN_X_FORWARDED_FOR;
        len = lws_hdr_total_length(wsi, t);
        if (len <= 0) {
            return -1;
        }
        if (len >= cap) {
            return -2;
        }
        return lws_hdr_copy(wsi, buf, cap, t) == len ? len : -2;
    }
    char lname[80];
    size_t n = strlen(name);
    if (n + 2 > sizeof(lname)) {
        return -2;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        lname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lname[n] = ':';
    lname[n + 1] = '\0';
    len = lws_hdr_custom_length(wsi, lname, (int)n + 1);
    if (len <= 0) {
        return -1;
    }
    if (len >= cap) {
        return -2;
    }
    return lws_hdr_custom_copy(wsi, buf, cap, lname, (int)n + 1) == len ? len : -2;
}

/* 1: from a trusted proxy, *client filled (the proxy itself when it sent no header);
 * 0: a direct connection, *client = the peer (family 0 when unknown); SPK_EDECODE: the
 * proxy's header is unusable. */
static int client_ip(spk_ws_server_t *srv, struct lws *wsi, ws_ip_t *client)
{
    if (!peer_ip(wsi, client)) {
        memset(client, 0, sizeof(*client));
        return 0;
    }
    if (srv->proxies.n == 0 || !ws_cidr_list_match(&srv->proxies, client)) {
        return 0;
    }
    char v[1024];
    int len = forwarded_header(srv, wsi, v, sizeof(v));
    if (len == -1) {
        return 1; /* the proxy's own request (a health check) */
    }
    if (len < 0 || ws_forwarded_client(v, (size_t)len, &srv->proxies, client) != 0) {
        return SPK_EDECODE;
    }
    return 1;
}

void ws_client_address(spk_ws_server_t *srv, struct lws *wsi, char *buf, size_t cap)
{
    ws_ip_t ip;
    if (client_ip(srv, wsi, &ip) < 0 || ip.family == 0) {
        lws_get_peer_simple(wsi, buf, cap);
        return;
    }
    ws_ip_format(&ip, buf, cap);
}

/* ---- the upgrade ---- */

/* Same origin: the origin of public_url, or the request's own Host under the scheme the client
 * used (https with TLS here or behind a trusted proxy that says so, else http). */
static bool origin_allowed(spk_ws_server_t *srv, struct lws *wsi, const char *origin)
{
    for (int i = 0; i < srv->n_origins; i++) {
        if (strcmp(origin, srv->origins[i]) == 0) {
            return true;
        }
    }
    if (srv->n_origins > 0) {
        return false;
    }
    if (srv->self_origin[0] && strcmp(origin, srv->self_origin) == 0) {
        return true;
    }
    char host[256];
    int hlen = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    if (hlen <= 0) {
        return false;
    }
    const char *schemes[] = {"https", "http"};
    bool tls = srv->cfg->tls_cert[0] && srv->cfg->tls_key[0];
    for (int i = 0; i < (tls ? 1 : 2); i++) {
        char own[WS_ORIGIN_MAX];
        if (ws_origin_from_host(schemes[i], host, (size_t)hlen, own, sizeof(own)) == 0 &&
            strcmp(origin, own) == 0) {
            return true;
        }
    }
    return false;
}

static unsigned int check_origin(spk_ws_server_t *srv, struct lws *wsi, const char **why)
{
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (len <= 0) {
        if (srv->cfg->allow_no_origin) {
            return 0;
        }
        *why = "WebSocket upgrade without Origin refused";
        return 403;
    }
    char raw[WS_ORIGIN_MAX];
    char origin[WS_ORIGIN_MAX];
    if (len >= (int)sizeof(raw) || lws_hdr_copy(wsi, raw, sizeof(raw), WSI_TOKEN_ORIGIN) != len ||
        ws_origin_normalize(raw, (size_t)len, origin, sizeof(origin)) != 0 ||
        !origin_allowed(srv, wsi, origin)) {
        *why = "Origin not allowed";
        return 403;
    }
    return 0;
}

unsigned int ws_limits_upgrade(spk_ws_server_t *srv, struct lws *wsi, const char **why)
{
    unsigned int status = check_origin(srv, wsi, why);
    if (status != 0) {
        srv->m.rejected_origin++;
        spk_info(0, "upgrade refused: %s", *why);
        return status;
    }
    ws_ip_t client;
    int rc = client_ip(srv, wsi, &client);
    if (rc == 0) {
        return 0; /* direct: counted from accept */
    }
    if (rc < 0) {
        srv->m.rejected_forwarded++;
        *why = "unusable client address from the proxy";
        spk_warn(0, "upgrade refused: trusted proxy sent an unusable %s",
                 srv->cfg->client_address_header);
        return 400;
    }
    ws_addr_entry_t *e = entry_get(srv, &client, true);
    if (!e || e->ws >= (uint32_t)srv->cfg->max_connections_per_address) {
        srv->m.rejected_address++;
        log_refusal(srv, "too many WebSockets", &client, e);
        if (e) {
            entry_release(srv, e);
        }
        *why = "too many connections from your address";
        return 429;
    }
    e->ws++;
    ws_wsi_rec_t *r = wsi_rec(wsi);
    if (r) {
        r->e = e;
        r->proxied = true;
    } else {
        e->ws--; /* not tracked (out of memory at accept): not counted either */
        entry_release(srv, e);
    }
    return 0;
}
