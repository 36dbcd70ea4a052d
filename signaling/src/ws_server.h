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

/* One queued outgoing message; buf has LWS_PRE bytes of headroom before the payload. */
typedef struct spk_ws_msg {
    struct spk_ws_msg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} spk_ws_msg_t;

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
    bool rx_paused; /* lws_rx_flow_control(wsi, 0) is in effect */

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

/* Per-HTTP-request state (protocol "http"). */
typedef struct {
    char *body; /* LWS_PRE headroom before the payload */
    size_t body_len;
    bool refuse_after_body; /* not a GET: answer 405 once the request body is read */
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

    uint64_t next_id;
    spk_ws_conn_t *conns; /* every tracked WebSocket connection */
    spk_map_t by_id;      /* id -> spk_ws_conn_t* */
    spk_ws_metrics_t m;

    uv_timer_t tick;
    uv_timer_t drain_timer;
    uv_idle_t stop_idle;
    bool draining;
    bool stopping; /* lws_context_destroy has been called once */
    int open_handles;
    void (*done_cb)(void *ud);
    void *done_ud;
};

/* protocols[0] callback: HTTP requests and upgrade confirmation. */
int spk_ws_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);

#endif
