/* Transport: HTTP + WebSocket front of spreekd, libwebsockets on a caller-owned libuv loop.
 *
 * It serves the web client's static files, /healthz and /metrics, and the WebSocket endpoint
 * /ws (subprotocol "spreekkamer.v1"), and drives the signaling core (spk/signaling.h): every
 * connection gets an id (from 1), complete text messages go to spk_sig_conn_message, and the
 * core's send/close requests come back through the io callbacks this module provides.
 *
 * Life cycle, all on the loop's thread:
 *   spk_ws_server_new()      allocate, take the config (borrowed; must outlive the server)
 *   spk_ws_server_listen()   create the lws context on the loop and bind (port 0: ephemeral)
 *   spk_ws_server_io()       io callbacks to hand to spk_sig_new()
 *   spk_ws_server_start()    attach the core and start the 1 Hz tick
 *   ... uv_run() ...
 *   spk_ws_server_drain()    (on SIGTERM) tell the core, close every connection, then stop
 *   spk_ws_server_free()     after uv_run() has returned
 */
#ifndef SPK_WS_SERVER_H
#define SPK_WS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "spk/config.h"
#include "spk/signaling.h"

#define SPK_WS_SUBPROTOCOL "spreekkamer.v1"
#define SPK_WS_PATH "/ws"

typedef struct spk_ws_server spk_ws_server_t;

/* Transport counters (also exported on /metrics). */
typedef struct {
    uint64_t connections_open;        /* WebSocket connections currently open */
    uint64_t connections_total;       /* accepted WebSocket connections */
    uint64_t rejected_too_many;       /* over max_connections */
    uint64_t rejected_draining;       /* upgrade attempted while draining */
    uint64_t rejected_protocol;       /* wrong path or missing/unknown subprotocol */
    uint64_t rejected_address;        /* over max_connections_per_address */
    uint64_t rejected_pending;        /* over max_pending_per_address */
    uint64_t rejected_origin;         /* Origin not allowed, or missing while required */
    uint64_t rejected_forwarded;      /* trusted proxy sent an unusable client address header */
    uint64_t rejected_header_timeout; /* no complete first request head within header_timeout_s */
    uint64_t messages_in, messages_out;
    uint64_t bytes_in, bytes_out;
    uint64_t writes_out;            /* socket writes of messages (several messages each) */
    uint64_t send_queue_overflows;  /* connections closed with 4003 */
    uint64_t frames_too_large;      /* messages over max_message_bytes */
    uint64_t rx_paused;             /* times reading was paused for a full send queue */
    uint64_t connections_rx_paused; /* connections whose reading is paused now */
    uint64_t rx_deferred; /* messages left for a later loop turn (the core's turn budget) */
} spk_ws_metrics_t;

/* Allocates the server. `cfg` and `loop` are borrowed. cfg->web_root must be set (spreekd fills
 * in the built-in default). Does not listen yet. */
int spk_ws_server_new(spk_ws_server_t **out, uv_loop_t *loop, const spk_config_t *cfg);

/* The io callbacks the core uses to send and close (ud = the server). */
void spk_ws_server_io(spk_ws_server_t *ws, spk_sig_io_t *io);

/* Creates the libwebsockets context on the loop and binds cfg->listen_host and
 * cfg->listen_port (0 = an ephemeral port; see spk_ws_server_port). Nothing is served before
 * spk_ws_server_start and uv_run(). On failure `why` says why; the server must then only be
 * freed. */
int spk_ws_server_listen(spk_ws_server_t *ws, char *why, size_t why_len);

/* The port actually bound, after a successful listen. */
int spk_ws_server_port(const spk_ws_server_t *ws);

/* Attaches the core (borrowed; must outlive the server) and starts the 1 Hz tick. Reads
 * cfg->public_url for the Content-Security-Policy, so set it first. */
int spk_ws_server_start(spk_ws_server_t *ws, spk_sig_t *sig);

/* Starts draining: /healthz answers 503, new upgrades are refused, the core is told
 * (spk_sig_shutdown), and every connection is closed with 1001 once its send queue is flushed,
 * or forcibly after cfg->drain_timeout_s. Then the lws context and every handle of the server
 * are closed, so that uv_run() returns once the caller's own handles are closed too. done_cb
 * (may be NULL) runs when the last connection is gone. Calling it twice does nothing more. */
void spk_ws_server_drain(spk_ws_server_t *ws, void (*done_cb)(void *ud), void *ud);

/* Whether the store can be reached (spk_store_available; true until said otherwise): while it
 * cannot, /healthz answers 503 {"status":"store_unavailable"} so that a load balancer sends new
 * clients elsewhere; the connections it has carry on. */
void spk_ws_server_set_store_up(spk_ws_server_t *ws, bool up);

/* Copies the current counters. */
void spk_ws_server_metrics(const spk_ws_server_t *ws, spk_ws_metrics_t *out);

/* Frees the server after uv_run() has returned (finishes the lws context destruction). */
void spk_ws_server_free(spk_ws_server_t *ws);

#endif
