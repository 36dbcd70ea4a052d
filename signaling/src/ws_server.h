/* Private to the transport: state shared by ws_server.c (context, WebSocket connections) and
 * ws_server_http.c (static files, /healthz, /metrics). */
#ifndef SPK_WS_SERVER_PRIV_H
#define SPK_WS_SERVER_PRIV_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "spk/config.h"
#include "spk/map.h"
#include "spk/signaling.h"
#include "spk/ws_server.h"
#include "ws_addr.h"

#define WS_MAX_ORIGINS 16

/* One queued outgoing message; buf has LWS_PRE bytes of headroom before the payload. */
typedef struct spk_ws_msg {
    struct spk_ws_msg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} spk_ws_msg_t;

/* Per-address accounting (ws_limits.c): one entry per source address, masked by the configured
 * prefix, freed when every count is back at 0. */
typedef struct {
    ws_ip_t key;
    uint32_t tcp;     /* direct TCP connections open (any state) */
    uint32_t pending; /* of those, without a complete first request */
    uint32_t ws;      /* WebSockets through a trusted proxy, by the forwarded client address */
} ws_addr_entry_t;

/* What ws_limits.c keeps per accepted connection (the wsi's opaque user data) from its adoption
 * to its destruction: its address entry (NULL for a trusted proxy's connection until its
 * upgrade, or a non-IP socket), and, until its request head is complete, its place in the
 * server's list of connections awaiting one (the header timeout). */
typedef struct ws_wsi_rec {
    struct lws *wsi;
    ws_addr_entry_t *e;
    uint64_t since_ms;    /* spk_now_ms() at the adoption, or at the end of the last response */
    uint64_t deadline_ms; /* closed by ws_limits_sweep from then on while still `awaiting` */
    struct ws_wsi_rec *prev, *next; /* srv->awaiting, while `awaiting` */
    bool awaiting;                  /* no complete request head yet */
    bool pending;                   /* counted in e->pending */
    bool proxied;                   /* counted in e->ws (an upgrade from a trusted proxy) */
} ws_wsi_rec_t;

/* Per-WebSocket-connection state: the lws per-session data of the "spreekkamer.v1" protocol.
 * Allocated (zeroed) by lws; everything it points to is freed on LWS_CALLBACK_CLOSED. */
typedef struct spk_ws_conn {
    struct lws *wsi;
    uint64_t id;
    struct spk_ws_conn *prev, *next; /* srv->conns */
    bool tracked;                    /* in srv->conns and srv->by_id */
    bool in_core;                    /* spk_sig_conn_open succeeded */

    spk_ws_msg_t *q_head, *q_tail;
    size_t q_bytes;
    bool flush_due; /* in srv->flushq: its queue is written before the loop polls again */
    bool rx_paused; /* lws_rx_flow_control(wsi, 0) is in effect */
    bool deferred;  /* a complete message waits in rx for the next loop turn (srv->deferred) */

    char *rx; /* reassembly of a fragmented text message */
    size_t rx_len, rx_cap;
    bool rx_discard; /* current message is over the limit */
    bool rx_binary;  /* current message is binary */

    int close_code; /* != 0: close once the queue is flushed */
    char close_reason[64];
    bool killed;          /* queue dropped: closing without flushing */
    bool close_sent;      /* close frame written; nothing more goes out */
    uint64_t last_rx_ms;  /* last frame or pong from the peer (idle timeout) */
    uint64_t validity_ms; /* last lws_validity_confirmed() */
    bool ping_due;        /* write a ping at the next writable callback */
    bool ping_out;        /* a ping is unanswered */
} spk_ws_conn_t;

typedef struct ws_file_job ws_file_job_t;
typedef struct ws_api_req ws_api_req_t;

/* Per-HTTP-request state (protocol "http"). */
typedef struct {
    char *body; /* response: LWS_PRE headroom before the payload */
    size_t body_len;
    bool close_after; /* close the connection once the response is written */
    /* an upload in progress (ws_files.c) */
    bool uploading;
    int fd;                  /* the ".part" file the body goes to; valid while uploading */
    uint64_t got;            /* body bytes so far */
    int upload_err;          /* != 0: refuse at the body's end (bytes are discarded) */
    spk_sig_file_t xfer;     /* what the ticket allowed */
    ws_file_job_t *job;      /* the upload being made durable (NULL when none) */
    ws_api_req_t *api;       /* an /api/v1 request in progress (ws_api.c) */
    unsigned int api_status; /* its decided response, written when writable */
    const char *api_ctype;
    char *api_body;
} spk_ws_http_t;

struct spk_ws_server {
    uv_loop_t *loop;
    const spk_config_t *cfg;
    spk_sig_t *sig;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int port;
    char web_root[4096]; /* realpath of cfg->web_root */
    char csp[768];
    char files_dir[600]; /* <data_dir>/files: encrypted chat attachments */

    uint64_t next_id;
    /* the frames of one write, gathered from a connection's queue (reused: no allocation and
     * no fresh pages per write) */
    unsigned char *wbuf;
    size_t wbuf_cap;
    /* connections with messages queued in this loop turn: written once each before the loop
     * polls again (flush_prep), so the frames a turn produces for a connection go out in one
     * write */
    uint64_t *flushq;
    size_t n_flush, cap_flush;
    uv_prepare_t flush_prep;
    spk_ws_conn_t *conns; /* every tracked WebSocket connection */
    spk_map_t by_id;      /* id -> spk_ws_conn_t* */
    spk_ws_metrics_t m;

    /* limits per address, trusted proxies, origins (ws_limits.c) */
    spk_map_t by_addr;               /* masked ws_ip_t -> ws_addr_entry_t* */
    ws_addr_entry_t *accepting;      /* from FILTER_NETWORK_CONNECTION to the adoption */
    ws_cidr_list_t proxies;          /* cfg->trusted_proxies */
    char self_origin[WS_ORIGIN_MAX]; /* origin of cfg->public_url */
    char origins[WS_MAX_ORIGINS][WS_ORIGIN_MAX]; /* cfg->allowed_origins, normalised */
    int n_origins;
    char hsts[48];             /* "max-age=N" when TLS is on and hsts_max_age_s > 0, else "" */
    uint64_t refused_log_ms;   /* last "refused" log line (at most one a second) */
    uint64_t refused_unlogged; /* refusals since */
    ws_wsi_rec_t *awaiting;    /* connections without a complete request head yet */
    uint64_t timeout_log_ms;   /* last "header timeout" log line (at most one a second) */
    uint64_t timeout_unlogged; /* header timeouts since */

    /* /api/v1 (ws_api.c): requests running on internal core connections */
    spk_map_t api_by_id;    /* core connection id -> ws_api_req_t* */
    ws_api_req_t *api_done; /* finished: their core connections close from api_idle */
    ws_api_req_t *api_kick; /* with core answers to handle from api_idle */
    uv_idle_t api_idle;
    uv_idle_t tick_idle; /* keeps the loop's poll from blocking while a tick is due */
    bool tick_due;       /* the 1 Hz tick fired; its work runs after this turn's input */
    /* heap trim (ws_server.c heap_trim): the last one's time and the connections opened
     * and closed until then, and until the previous tick */
    uint64_t trim_ms, trim_at_total, trim_seen_total;
    uint64_t api_requests, api_errors;

    uv_timer_t tick;
    uv_check_t flush_check; /* after each turn's I/O: the core writes its batch (spk_sig_flush) */
    uv_timer_t drain_timer;
    uv_idle_t stop_idle;
    /* messages read while the core was over its turn budget (spk_sig_busy): handed over in
     * the next turns, oldest first, their connections not read meanwhile */
    uint64_t *deferred;
    size_t n_deferred, cap_deferred;
    uv_idle_t defer_idle; /* keeps the loop turning while messages are deferred */
    bool draining;
    bool store_down; /* /healthz answers 503 (spk_ws_server_set_store_up) */
    bool stopping;   /* lws_context_destroy has been called once */
    int open_handles;
    void (*done_cb)(void *ud);
    void *done_ud;
};

/* ---- ws_limits.c ---- */

/* Parses trusted_proxies and allowed_origins. 0 or SPK_ECONFIG with `why`. */
int ws_limits_init(spk_ws_server_t *srv, char *why, size_t why_len);
/* Takes the origin of cfg->public_url (set once the port is known). */
void ws_limits_start(spk_ws_server_t *srv);
void ws_limits_free(spk_ws_server_t *srv);
/* LWS_CALLBACK_FILTER_NETWORK_CONNECTION: 0 to accept, 1 after refusing (429 on plain HTTP). */
int ws_limits_accept(spk_ws_server_t *srv, const struct lws_filter_network_conn_args *a);
/* LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED (right after FILTER_NETWORK_CONNECTION) and
 * LWS_CALLBACK_WSI_DESTROY of every accepted connection. */
void ws_limits_adopted(spk_ws_server_t *srv, struct lws *wsi);
void ws_limits_wsi_destroy(spk_ws_server_t *srv, struct lws *wsi);
/* The connection's request head is complete: it no longer counts as pending. */
void ws_limits_request(spk_ws_server_t *srv, struct lws *wsi);
/* The time from accept to a complete first request head: header_timeout_s, at most
 * handshake_timeout_s. */
int ws_limits_head_timeout_s(const spk_config_t *cfg);
/* A response was written and the connection stays open for another request: its head must be
 * complete within handshake_timeout_s (idle) plus header_timeout_s. */
void ws_limits_response_done(spk_ws_server_t *srv, struct lws *wsi);
/* From the tick's work, after the loop turn's input was read: closes the connections that have
 * not completed their first request head within header_timeout_s of accept, or the next one in
 * time on a keep-alive connection (408 on plain HTTP), logged at most once a second and
 * counted. */
void ws_limits_sweep(spk_ws_server_t *srv, uint64_t now_ms);
/* At the upgrade: the Origin check and, behind a trusted proxy, the limit per forwarded client
 * address. 0 to allow; otherwise the HTTP status to refuse with, and `why` for the body. */
unsigned int ws_limits_upgrade(spk_ws_server_t *srv, struct lws *wsi, const char **why);
/* The client's address as text: the peer, or behind a trusted proxy the forwarded one. */
void ws_client_address(spk_ws_server_t *srv, struct lws *wsi, char *buf, size_t cap);

/* ---- ws_server_http.c: helpers for the other HTTP handlers ---- */

/* Security headers on a response built in [*p, end). */
int ws_http_security_headers(spk_ws_server_t *srv, struct lws *wsi, bool html, unsigned char **p,
                             unsigned char *end);
/* Answers with status and a text body (no-store); the body is written from HTTP_WRITEABLE. */
int ws_http_respond_text(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h,
                         unsigned int status, const char *ctype, const char *text);

/* ---- ws_files.c: /files/<id>, encrypted chat attachments (docs/protocol.md §5.10) ---- */

/* Creates the directory. 0 or SPK_EIO with why. */
int ws_files_init(spk_ws_server_t *srv, char *why, size_t why_len);
/* A request for /files/...: GET downloads, PUT uploads (its body follows). */
int ws_files_request(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *uri);
int ws_files_body(spk_ws_server_t *srv, spk_ws_http_t *h, const void *in, size_t len);
int ws_files_body_done(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h);
/* The request's connection is gone: an unfinished upload is discarded. */
void ws_files_closed(spk_ws_server_t *srv, spk_ws_http_t *h);
/* io callback: deletes a file's bytes. */
void ws_files_delete(void *ud, const char *file);
/* ---- ws_api.c: the /api/v1 HTTP API ---- */
/* LWS_CALLBACK_HTTP for a path under /api/: collects the request (dispatched at once without a
 * body, else when the body is complete). */
int ws_api_begin(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *uri);
int ws_api_body(spk_ws_http_t *h, const void *in, size_t len);
void ws_api_body_done(spk_ws_http_t *h);
/* The HTTP connection is gone (its request may still finish in the core). */
void ws_api_drop(spk_ws_http_t *h);
/* io callbacks for internal core connections: SPK_ENOTFOUND / false when conn is not one. */
int ws_api_core_message(spk_ws_server_t *srv, uint64_t conn, const char *msg, size_t len);
bool ws_api_core_close(spk_ws_server_t *srv, uint64_t conn);
void ws_api_idle_cb(uv_idle_t *h);
/* At shutdown: frees requests still waiting (their core connections are gone with the core). */
void ws_api_free_all(spk_ws_server_t *srv);
/* ws_server_http.c: status, headers and body (malloc'd with LWS_PRE headroom, taken over). */
int ws_http_respond(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, unsigned int status,
                    const char *ctype, char *body, size_t len);

/* protocols[0] callback: HTTP requests and upgrade confirmation. */
int spk_ws_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);

#endif
