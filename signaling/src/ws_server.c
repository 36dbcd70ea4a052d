/* Transport: libwebsockets on a caller-owned libuv loop (foreign-loop mode).
 *
 * WebSocket connections: ids, message reassembly and limits, the per-connection send queue
 * with backpressure, closing, the 1 Hz core tick, and draining. HTTP lives in
 * ws_server_http.c. */
#include "ws_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

/* libwebsockets' per-connection receive buffer (allocated at the upgrade, kept for the
 * connection's life); longer messages arrive in chunks of this size and are reassembled here,
 * so a small buffer keeps idle connections cheap. It must hold a control frame's payload
 * (125 bytes). */
#define SPK_WS_RX_CHUNK 512
#define SPK_WS_BATCH_MAX 65536 /* bytes of frames gathered into one write */
#define SPK_WS_HDR_MAX 10      /* the longest WebSocket frame header (server to client) */
/* The most lws hands to one send(). Without it (tx_packet_size 0) lws caps every send at
 * rx_buffer_size + LWS_PRE + 4 (532 bytes here) and keeps the rest, which it writes one such
 * piece per writable event: a 1.5 KB frame took three sends, two of them in later loop turns
 * each with its POLLOUT epoll changes, and a 64 KiB batch 124. No memory is allocated for it. */
#define SPK_WS_TX_CHUNK (SPK_WS_BATCH_MAX + SPK_WS_HDR_MAX)
#define SPK_WS_CLOSE_GRACE_S 3     /* close frame sent: wait this long for the peer's answer */
#define SPK_WS_FLUSH_DEADLINE_S 10 /* closing after flush: give up flushing after this */
/* lws's own request-head limit, this long after header_timeout_s (ws_limits_sweep closes first) */
#define SPK_WS_HEAD_BACKSTOP_S 60
/* lws_write's close opcode (value 4 in enum lws_write_protocol; lws 4.1 keeps the name
 * private). */
#define SPK_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)
_Static_assert(LWS_PRE >= SPK_WS_HDR_MAX, "a frame header fits in a message's headroom");

static const char g_too_many_fmt[] =
    "{\"type\":\"error\",\"re\":null,\"code\":\"%s\",\"message\":\"%s\"}";

/* ---- lws logging into our JSON lines ---- */

static void lws_log_emit(int level, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", line);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    if (level & LLL_ERR) {
        spk_warn(0, "lws: %s", buf);
    } else {
        spk_debug(0, "lws: %s", buf);
    }
}

/* ---- send queue ---- */

static void conn_queue_free(spk_ws_conn_t *c)
{
    spk_ws_msg_t *m = c->q_head;
    while (m) {
        spk_ws_msg_t *next = m->next;
        free(m);
        m = next;
    }
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
}

static int conn_enqueue(spk_ws_conn_t *c, const char *msg, size_t len)
{
    spk_ws_msg_t *m = malloc(sizeof(*m) + LWS_PRE + len);
    if (!m) {
        return SPK_ENOMEM;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->buf + LWS_PRE, msg, len);
    if (c->q_tail) {
        c->q_tail->next = m;
    } else {
        c->q_head = m;
    }
    c->q_tail = m;
    c->q_bytes += len;
    return 0;
}

static void conn_set_rx_paused(spk_ws_server_t *srv, spk_ws_conn_t *c, bool paused)
{
    if (c->rx_paused == paused) {
        return;
    }
    c->rx_paused = paused;
    lws_rx_flow_control(c->wsi, paused ? 0 : 1);
    if (paused) {
        srv->m.rx_paused++;
        srv->m.connections_rx_paused++;
        spk_debug(c->id, "send queue at %zu bytes: reading paused", c->q_bytes);
    } else {
        srv->m.connections_rx_paused--;
        spk_debug(c->id, "send queue at %zu bytes: reading resumed", c->q_bytes);
    }
}

/* The close frame goes out from a writable callback once the queue is empty; the connection
 * is dropped if that and the peer's answer take longer than `deadline_s`. */
static void conn_start_close(spk_ws_conn_t *c, int code, const char *reason, int deadline_s)
{
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, deadline_s);
    lws_callback_on_writable(c->wsi);
}

/* Closes without flushing the queue (slow consumer, idle, internal error). */
static void conn_kill(spk_ws_conn_t *c, int code, const char *reason)
{
    if (c->killed) {
        return;
    }
    c->killed = true;
    conn_queue_free(c);
    conn_start_close(c, code, reason, SPK_WS_CLOSE_GRACE_S);
}

/* Closes once everything queued so far has been written. */
static void conn_close_after_flush(spk_ws_conn_t *c, int code, const char *reason)
{
    if (c->killed || c->close_code != 0) {
        return;
    }
    conn_start_close(c, code, reason, SPK_WS_FLUSH_DEADLINE_S);
}

/* Writes the close frame. lws 4.1 sends no close frame when a WRITEABLE callback returns -1
 * (it treats the socket as unusable), so the frame is written here and lws closes the
 * connection when the peer answers it (or at the pending timeout). */
static int conn_write_close(spk_ws_conn_t *c)
{
    unsigned char buf[LWS_PRE + 125];
    unsigned char *p = buf + LWS_PRE;
    size_t rlen = strlen(c->close_reason);
    if (rlen > 123) {
        rlen = 123;
    }
    p[0] = (unsigned char)((c->close_code >> 8) & 0xff);
    p[1] = (unsigned char)(c->close_code & 0xff);
    memcpy(p + 2, c->close_reason, rlen);
    c->close_sent = true;
    int n = lws_write(c->wsi, p, 2 + rlen, SPK_LWS_WRITE_CLOSE);
    if (n < 0) {
        return -1;
    }
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, SPK_WS_CLOSE_GRACE_S);
    return 0;
}

/* ---- writing: the frames queued for a connection go out together ---- */

/* The header of an unmasked, final text frame of `len` payload bytes, written so that it ends
 * at `end` (RFC 6455 §5.2; at most SPK_WS_HDR_MAX bytes before `end`). Returns its length. */
static size_t frame_header(unsigned char *end, size_t len)
{
    if (len < 126) {
        end[-2] = 0x81;
        end[-1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        end[-4] = 0x81;
        end[-3] = 126;
        end[-2] = (unsigned char)(len >> 8);
        end[-1] = (unsigned char)len;
        return 4;
    }
    end[-10] = 0x81;
    end[-9] = 127;
    for (int i = 0; i < 8; i++) {
        end[-1 - i] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    return 10;
}

/* srv->wbuf holds len bytes (false when out of memory). */
static bool wbuf_reserve(spk_ws_server_t *srv, size_t len)
{
    if (srv->wbuf_cap < len) {
        unsigned char *b = realloc(srv->wbuf, len);
        if (b == NULL) {
            return false;
        }
        srv->wbuf = b;
        srv->wbuf_cap = len;
    }
    return true;
}

/* Writes the messages at the head of c's queue, whole frames, as many as fit in
 * SPK_WS_BATCH_MAX bytes (at least one), with one lws_write of the framed bytes: lws passes
 * LWS_WRITE_RAW through unframed on a WebSocket connection, and keeps what the socket does
 * not take at once and writes it before the next writable callback, so a later write never
 * starts inside a frame. Safe here: no HTTP/2 and no extensions on these connections. -1: the
 * write failed. */
static int conn_write_batch(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    size_t total = 0, n_msgs = 0, payload = 0;
    for (spk_ws_msg_t *m = c->q_head; m != NULL; m = m->next) {
        size_t need = SPK_WS_HDR_MAX + m->len;
        if (n_msgs > 0 && total + need > SPK_WS_BATCH_MAX) {
            break;
        }
        total += need;
        n_msgs++;
    }
    unsigned char *p;
    size_t len = 0;
    spk_ws_msg_t *single = NULL;
    if (n_msgs > 1 && wbuf_reserve(srv, total)) {
        p = srv->wbuf;
        for (size_t i = 0; i < n_msgs; i++) {
            spk_ws_msg_t *m = c->q_head;
            unsigned char hdr[SPK_WS_HDR_MAX];
            size_t h = frame_header(hdr + SPK_WS_HDR_MAX, m->len);
            memcpy(p + len, hdr + SPK_WS_HDR_MAX - h, h);
            memcpy(p + len + h, m->buf + LWS_PRE, m->len);
            len += h + m->len;
            payload += m->len;
            c->q_head = m->next;
            free(m);
        }
    } else {
        /* one message (or no memory for more): framed in its own headroom */
        spk_ws_msg_t *m = c->q_head;
        n_msgs = 1;
        payload = m->len;
        size_t h = frame_header(m->buf + LWS_PRE, m->len);
        p = m->buf + LWS_PRE - h;
        len = h + m->len;
        c->q_head = m->next;
        single = m; /* freed after the write */
    }
    if (c->q_head == NULL) {
        c->q_tail = NULL;
    }
    c->q_bytes -= payload;
    int n = lws_write(c->wsi, p, len, LWS_WRITE_RAW);
    free(single);
    if (n < 0 || (size_t)n < len) {
        spk_info(c->id, "write failed");
        return -1;
    }
    srv->m.writes_out++;
    srv->m.messages_out += n_msgs;
    srv->m.bytes_out += payload;
    return 0;
}

/* Writes c's queue while the socket takes it; what remains waits for a writable callback.
 * `writable`: lws just reported the socket writable. With `to_core`, the core is told once
 * the queue is empty (it may have held messages for it). -1: the write failed. */
static int conn_flush(spk_ws_server_t *srv, spk_ws_conn_t *c, bool writable, bool to_core)
{
    for (;;) {
        while (c->q_head != NULL && !c->close_sent && (writable || !lws_send_pipe_choked(c->wsi))) {
            writable = false;
            if (conn_write_batch(srv, c) != 0) {
                return -1;
            }
        }
        if (c->rx_paused && c->q_bytes < srv->cfg->send_queue_bytes / 4) {
            conn_set_rx_paused(srv, c, false);
        }
        if (c->q_head != NULL || !to_core || !c->in_core || c->close_code != 0 || c->killed) {
            break;
        }
        spk_sig_conn_writable(srv->sig, c->id); /* messages the core held may follow */
        if (c->q_head == NULL) {
            break;
        }
    }
    if (c->q_head != NULL || c->close_code != 0) {
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

/* Before the loop polls: every connection that got messages in this turn writes them. */
static void flush_prep_cb(uv_prepare_t *h)
{
    spk_ws_server_t *srv = h->data;
    for (size_t i = 0; i < srv->n_flush; i++) { /* the list may grow meanwhile */
        spk_ws_conn_t *c = spk_map_get_u64(&srv->by_id, srv->flushq[i]);
        if (c == NULL || !c->flush_due) {
            continue;
        }
        c->flush_due = false;
        if (c->killed || c->close_sent || c->q_head == NULL) {
            continue;
        }
        if (conn_flush(srv, c, false, true) != 0) {
            conn_kill(c, 1011, "write failed");
        }
    }
    srv->n_flush = 0;
}

/* ---- io callbacks for the core ---- */

static int io_send(void *ud, uint64_t conn, const char *msg, size_t len)
{
    spk_ws_server_t *srv = ud;
    spk_ws_conn_t *c = spk_map_get_u64(&srv->by_id, conn);
    if (!c) {
        return ws_api_core_message(srv, conn, msg, len);
    }
    if (c->killed || c->close_code != 0) {
        return 0; /* closing: nothing more goes out */
    }
    size_t cap = srv->cfg->send_queue_bytes;
    if (c->q_bytes > 0 && c->q_bytes + len > cap) {
        srv->m.send_queue_overflows++;
        spk_warn(c->id, "send queue full (%zu + %zu bytes > %zu): closing slow consumer",
                 c->q_bytes, len, cap);
        conn_kill(c, SPK_WS_SLOW_CONSUMER, "send queue full");
        return SPK_EBACKPRESSURE;
    }
    int rc = conn_enqueue(c, msg, len);
    if (rc != 0) {
        spk_error(c->id, "out of memory queueing %zu bytes", len);
        conn_kill(c, 1011, "internal error");
        return rc;
    }
    /* Written before the loop polls again, together with whatever else this turn queues for
     * the connection (one write instead of one per message, and no writable callback with its
     * epoll changes while the socket takes it); written now once a quarter of the cap or a
     * full batch is waiting, so that the queue's cap still measures what the client has not
     * read. */
    if (!c->flush_due) {
        if (spk_u64_push(&srv->flushq, &srv->n_flush, &srv->cap_flush, c->id) == 0) {
            c->flush_due = true;
        } else {
            lws_callback_on_writable(c->wsi);
        }
    }
    size_t early = cap / 4 < SPK_WS_BATCH_MAX ? cap / 4 : SPK_WS_BATCH_MAX;
    if (c->q_bytes >= early && !c->close_sent && conn_flush(srv, c, false, false) != 0) {
        conn_kill(c, 1011, "write failed");
        return SPK_EIO;
    }
    if (c->q_bytes > cap / 2) {
        conn_set_rx_paused(srv, c, true);
    }
    return 0;
}

static size_t io_queued(void *ud, uint64_t conn)
{
    spk_ws_server_t *srv = ud;
    spk_ws_conn_t *c = spk_map_get_u64(&srv->by_id, conn);
    return c != NULL ? c->q_bytes : 0;
}

static void io_close(void *ud, uint64_t conn, int ws_code, const char *reason)
{
    spk_ws_server_t *srv = ud;
    spk_ws_conn_t *c = spk_map_get_u64(&srv->by_id, conn);
    if (!c) {
        ws_api_core_close(srv, conn); /* an /api/v1 request's: it closes when answered */
        return;
    }
    spk_info(c->id, "closing: %d %s", ws_code, reason ? reason : "");
    conn_close_after_flush(c, ws_code, reason);
}

void spk_ws_server_io(spk_ws_server_t *ws, spk_sig_io_t *io)
{
    memset(io, 0, sizeof(*io));
    io->ud = ws;
    io->send_cb = io_send;
    io->close_cb = io_close;
    io->queued_cb = io_queued;
    io->file_delete_cb = ws_files_delete;
}

/* ---- connection life cycle ---- */

static void stop_idle_cb(uv_idle_t *h);

static void conn_track(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    c->next = srv->conns;
    c->prev = NULL;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    c->tracked = true;
    srv->m.connections_open++;
    srv->m.connections_total++;
}

static void conn_untrack(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    c->tracked = false;
    spk_map_del_u64(&srv->by_id, c->id);
    srv->m.connections_open--;
    if (c->rx_paused) {
        srv->m.connections_rx_paused--;
        c->rx_paused = false;
    }
}

static void refuse_too_many(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    char msg[256];
    int n = snprintf(msg, sizeof(msg), g_too_many_fmt, spk_err_wire(SPK_ETOOMANY),
                     spk_strerror(SPK_ETOOMANY));
    srv->m.rejected_too_many++;
    spk_warn(c->id, "refused: %d connections open, limit %d", (int)srv->m.connections_open - 1,
             srv->cfg->max_connections);
    if (conn_enqueue(c, msg, (size_t)n) != 0) {
        conn_kill(c, SPK_WS_TRY_LATER, "too many connections");
        return;
    }
    conn_close_after_flush(c, SPK_WS_TRY_LATER, "too many connections");
}

static int on_established(spk_ws_server_t *srv, struct lws *wsi, spk_ws_conn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->id = ++srv->next_id;
    c->last_rx_ms = (uint64_t)spk_now_ms();
    if (spk_map_put_u64(&srv->by_id, c->id, c) != 0) {
        spk_error(c->id, "out of memory accepting connection");
        return -1;
    }
    conn_track(srv, c);
    char peer[64] = "";
    ws_client_address(srv, wsi, peer, sizeof(peer));
    if (srv->m.connections_open > (uint64_t)srv->cfg->max_connections) {
        refuse_too_many(srv, c);
        return 0;
    }
    if (srv->draining) {
        conn_close_after_flush(c, SPK_WS_SHUTDOWN, "server shutting down");
        return 0;
    }
    spk_info(c->id, "open remote=%s", peer);
    int rc = spk_sig_conn_open(srv->sig, c->id, peer, (uint64_t)spk_now_ms());
    if (rc != 0) {
        spk_warn(c->id, "core refused the connection: %s", spk_strerror(rc));
        conn_close_after_flush(c, 1011, "internal error");
        return 0;
    }
    c->in_core = true;
    return 0;
}

static void on_closed(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    if (!c->tracked) {
        return;
    }
    conn_untrack(srv, c);
    conn_queue_free(c);
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    spk_info(c->id, "closed");
    if (c->in_core) {
        c->in_core = false;
        spk_sig_conn_close(srv->sig, c->id);
    }
    if (srv->draining && !srv->stopping && !srv->conns) {
        spk_info(0, "drain: every connection is closed");
        uv_idle_start(&srv->stop_idle, stop_idle_cb);
    }
}

/* ---- receive: reassembly and limits ---- */

static int rx_append(spk_ws_conn_t *c, const void *in, size_t len, size_t max)
{
    if (c->rx_len + len > max) {
        return SPK_ETOOBIG;
    }
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 1024;
        while (cap < c->rx_len + len + 1) {
            cap *= 2;
        }
        char *p = realloc(c->rx, cap);
        if (!p) {
            return SPK_ENOMEM;
        }
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    c->rx[c->rx_len] = '\0';
    return 0;
}

static void deferred_run(spk_ws_server_t *srv, spk_ws_conn_t *c);

/* Hands the complete message in c->rx to the core (or defers it: back-pressure). */
static void rx_message_done(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    if (!c->rx_binary && !c->rx_discard && spk_sig_busy(srv->sig) &&
        spk_u64_push(&srv->deferred, &srv->n_deferred, &srv->cap_deferred, c->id) == 0) {
        /* The core spent this turn's budget: the message waits (whole, in c->rx) and the
         * connection is not read until it is handled, so the backlog stays in the kernel and
         * the clients' TCP windows instead of in one ever longer turn. */
        c->deferred = true;
        srv->m.rx_deferred++;
        if (!c->rx_paused) {
            lws_rx_flow_control(c->wsi, 0);
        }
        return;
    }
    uint64_t now = (uint64_t)spk_now_ms();
    if (c->rx_binary) {
        spk_info(c->id, "binary message refused");
        spk_sig_conn_reject(srv->sig, c->id, SPK_EBADMSG);
    } else if (c->rx_discard) {
        srv->m.frames_too_large++;
        spk_info(c->id, "message over %zu bytes discarded", spk_sig_conn_rx_limit(srv->sig, c->id));
        spk_sig_conn_reject(srv->sig, c->id, SPK_ETOOBIG);
    } else {
        srv->m.messages_in++;
        spk_sig_conn_message(srv->sig, c->id, c->rx ? c->rx : "", c->rx_len, now);
    }
    c->rx_len = 0;
    c->rx_discard = false;
    c->rx_binary = false;
    if (c->rx_cap > 4 * SPK_WS_RX_CHUNK) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
}

/* The deferred message of c goes to the core now; reading resumes. */
static void deferred_run(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    c->deferred = false;
    uint64_t now = (uint64_t)spk_now_ms();
    srv->m.messages_in++;
    spk_sig_conn_message(srv->sig, c->id, c->rx ? c->rx : "", c->rx_len, now);
    c->rx_len = 0;
    if (c->rx_cap > 4 * SPK_WS_RX_CHUNK) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    if (!c->rx_paused && c->tracked) {
        lws_rx_flow_control(c->wsi, 1);
    }
}

static void defer_idle_cb(uv_idle_t *h);

/* Deferred messages, oldest first, until the core is over its budget again. */
static void deferred_drain(spk_ws_server_t *srv)
{
    size_t i = 0;
    for (; i < srv->n_deferred && !spk_sig_busy(srv->sig); i++) {
        spk_ws_conn_t *c = spk_map_get_u64(&srv->by_id, srv->deferred[i]);
        if (c != NULL && c->deferred) {
            deferred_run(srv, c);
        }
    }
    memmove(srv->deferred, srv->deferred + i, (srv->n_deferred - i) * sizeof(uint64_t));
    srv->n_deferred -= i;
    spk_sig_flush(srv->sig); /* their answers: this turn's batch */
    if (srv->n_deferred > 0) {
        uv_idle_start(&srv->defer_idle, defer_idle_cb); /* no waiting in poll meanwhile */
    } else {
        uv_idle_stop(&srv->defer_idle);
    }
}

static void defer_idle_cb(uv_idle_t *h)
{
    deferred_drain(h->data);
}

static void on_receive(spk_ws_server_t *srv, spk_ws_conn_t *c, const void *in, size_t len)
{
    srv->m.bytes_in += len;
    c->last_rx_ms = (uint64_t)spk_now_ms();
    c->ping_out = false;
    /* lws keeps every connection's validity timer in one sorted list (O(connections) per
     * insert, a fifth of spreekd's CPU with 5,000 chatting connections when this was every
     * 5 s): refresh it every quarter of the idle timeout (at least 5 s). lws hangs up 3 s
     * after the idle timeout without a refresh; input refreshes at least every quarter of it
     * and spreekd's own idle ping (answered: RECEIVE_PONG) comes at half of it. */
    uint64_t every = (uint64_t)srv->cfg->idle_timeout_s * 250;
    if (c->last_rx_ms - c->validity_ms >= (every > 5000 ? every : 5000)) {
        c->validity_ms = c->last_rx_ms;
        lws_validity_confirmed(c->wsi);
    }
    if (!c->in_core || c->killed || c->close_code != 0 || c->close_sent) {
        return; /* refused or closing: input is ignored */
    }
    if (c->deferred) {
        /* more input although deferred (reading was resumed for a slow consumer): the waiting
         * message goes first */
        deferred_run(srv, c);
    }
    if (c->rx_len == 0 && !c->rx_discard && !c->rx_binary) {
        c->rx_binary = lws_frame_is_binary(c->wsi) != 0;
    }
    if (!c->rx_binary && !c->rx_discard) {
        int rc = rx_append(c, in, len, spk_sig_conn_rx_limit(srv->sig, c->id));
        if (rc == SPK_ENOMEM) {
            spk_error(c->id, "out of memory reassembling a message");
            conn_kill(c, 1011, "internal error");
            return;
        }
        if (rc != 0) {
            c->rx_discard = true;
            c->rx_len = 0;
        }
    }
    if (lws_is_final_fragment(c->wsi) && lws_remaining_packet_payload(c->wsi) == 0) {
        rx_message_done(srv, c);
    }
}

/* ---- writable: the queue, as many messages per write as fit in a batch ---- */

static int on_writeable(spk_ws_server_t *srv, spk_ws_conn_t *c)
{
    if (c->close_sent) {
        return 0;
    }
    if (c->ping_due && !c->killed) {
        unsigned char ping[LWS_PRE + 8];
        memcpy(ping + LWS_PRE, "spk-idle", 8);
        c->ping_due = false;
        c->ping_out = true;
        if (lws_write(c->wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 0) {
            return -1;
        }
        if (c->q_head || c->close_code != 0) {
            lws_callback_on_writable(c->wsi);
        }
        return 0;
    }
    if (!c->q_head) {
        if (c->close_code != 0) {
            return conn_write_close(c);
        }
        return 0;
    }
    return conn_flush(srv, c, true, c->in_core);
}

static int ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    spk_ws_server_t *srv = lws_context_user(lws_get_context(wsi));
    spk_ws_conn_t *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(srv, wsi, c);
    case LWS_CALLBACK_RECEIVE:
        if (c && c->tracked) {
            on_receive(srv, c, in, len);
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c && c->tracked) {
            c->last_rx_ms = (uint64_t)spk_now_ms();
            c->ping_out = false;
            lws_validity_confirmed(wsi);
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* The peer answering our own close frame (written by conn_write_close): lws would echo
         * a second close, which browsers report as "Close received after close". */
        return (c && c->close_sent) ? 1 : 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c && c->tracked) {
            return on_writeable(srv, c);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c) {
            on_closed(srv, c);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols g_protocols[] = {
    {"http", spk_ws_http_cb, sizeof(spk_ws_http_t), 0, 0, NULL, 0},
    {SPK_WS_SUBPROTOCOL, ws_cb, sizeof(spk_ws_conn_t), SPK_WS_RX_CHUNK, 0, NULL, SPK_WS_TX_CHUNK},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- timers, draining, shutdown ---- */

/* Idle handling: a connection without traffic or pong for idle/2 is pinged (with a payload:
 * lws 4.1 does not report empty pongs to the protocol callback); after idle_timeout_s it is
 * closed with 4002. lws's own validity check stays behind this as a backstop. */
static void idle_sweep(spk_ws_server_t *srv, uint64_t now)
{
    uint64_t limit = (uint64_t)srv->cfg->idle_timeout_s * 1000;
    /* the sweep runs once a second: ping a tick early so that a pong can arrive in time */
    uint64_t ping_at = limit / 2 > 1000 ? limit / 2 - 1000 : 0;
    for (spk_ws_conn_t *c = srv->conns; c; c = c->next) {
        if (c->killed || c->close_sent) {
            continue;
        }
        uint64_t idle = now - c->last_rx_ms;
        if (idle >= limit) {
            spk_info(c->id, "idle for %llu ms: closing", (unsigned long long)idle);
            conn_kill(c, SPK_WS_IDLE_TIMEOUT, "idle timeout");
        } else if (idle >= ping_at && !c->ping_out && !c->ping_due) {
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
}

/* Connections' short-lived allocations (above all a TLS handshake's buffers and key exchange)
 * leave free holes between the long-lived state of the connections that stay, and glibc keeps
 * those pages resident. Once WS_TRIM_CHURN connections have opened or closed since the last trim
 * and a tick passed without another one (a burst is over), or WS_TRIM_EVERY_MS passed under steady
 * churn, the free pages go back to the kernel: malloc_trim madvises the free space of every
 * arena, holding each arena's lock only while it walks that arena (a few milliseconds on the
 * control thread after thousands of TLS handshakes; the debug log times it).
 * docs/performance.md "Memory per idle connection". */
#define WS_TRIM_CHURN 64
#define WS_TRIM_EVERY_MS 30000

static void heap_trim(spk_ws_server_t *srv, uint64_t now)
{
    /* connections opened plus connections closed */
    uint64_t total = 2 * srv->m.connections_total - srv->m.connections_open;
    bool quiet = total == srv->trim_seen_total;
    srv->trim_seen_total = total;
    if (total - srv->trim_at_total < WS_TRIM_CHURN ||
        (!quiet && now - srv->trim_ms < WS_TRIM_EVERY_MS)) {
        return;
    }
    srv->trim_at_total = total;
    srv->trim_ms = now;
#ifdef __GLIBC__
    uint64_t t0 = spk_mono_ns();
    malloc_trim(0);
    spk_debug(0, "heap trimmed in %llu us", (unsigned long long)((spk_mono_ns() - t0) / 1000));
#endif
}

/* The 1 Hz tick only marks its work due: libuv runs timers before it polls for input, so a
 * server that got no CPU for a while (a loaded host, a stopped process) would otherwise judge
 * idle and authentication timeouts before reading the frames that are already waiting. The
 * work runs in the check phase of the same loop turn, after that turn's input was read; the
 * idle handle makes that turn's poll return at once. */
static void tick_idle_cb(uv_idle_t *h)
{
    (void)h;
}

static void flush_check_cb(uv_check_t *h)
{
    spk_ws_server_t *srv = h->data;
    if (srv->tick_due) {
        srv->tick_due = false;
        uv_idle_stop(&srv->tick_idle);
        uint64_t now = (uint64_t)spk_now_ms();
        idle_sweep(srv, now);
        ws_limits_sweep(srv, now);
        spk_sig_tick(srv->sig, now);
        heap_trim(srv, now);
    }
    spk_sig_flush(srv->sig);
    if (srv->n_deferred > 0) {
        deferred_drain(srv);
    }
}

static void tick_cb(uv_timer_t *t)
{
    spk_ws_server_t *srv = t->data;
    srv->tick_due = true;
    uv_idle_start(&srv->tick_idle, tick_idle_cb);
}

static void handle_closed_cb(uv_handle_t *h)
{
    spk_ws_server_t *srv = h->data;
    srv->open_handles--;
}

/* Runs outside any lws callback: begins the lws context destruction (the second call in
 * spk_ws_server_free finishes it) and closes the server's own handles. */
static void stop_idle_cb(uv_idle_t *h)
{
    spk_ws_server_t *srv = h->data;
    uv_idle_stop(h);
    if (srv->stopping) {
        return;
    }
    srv->stopping = true;
    uv_timer_stop(&srv->tick);
    uv_idle_stop(&srv->tick_idle);
    uv_check_stop(&srv->flush_check);
    spk_sig_flush(srv->sig);
    uv_timer_stop(&srv->drain_timer);
    if (srv->done_cb) {
        srv->done_cb(srv->done_ud);
    }
    lws_context_destroy(srv->ctx);
    uv_close((uv_handle_t *)&srv->tick, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->flush_check, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->drain_timer, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->stop_idle, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->api_idle, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->tick_idle, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->defer_idle, handle_closed_cb);
    uv_close((uv_handle_t *)&srv->flush_prep, handle_closed_cb);
}

static void drain_timeout_cb(uv_timer_t *t)
{
    spk_ws_server_t *srv = t->data;
    int n = 0;
    for (spk_ws_conn_t *c = srv->conns; c; c = c->next) {
        conn_kill(c, SPK_WS_SHUTDOWN, "server shutting down");
        n++;
    }
    spk_warn(0, "drain: timeout after %d s, %d connection(s) closed forcibly",
             srv->cfg->drain_timeout_s, n);
    uv_idle_start(&srv->stop_idle, stop_idle_cb);
}

void spk_ws_server_set_store_up(spk_ws_server_t *ws, bool up)
{
    if (ws != NULL) {
        ws->store_down = !up;
    }
}

void spk_ws_server_drain(spk_ws_server_t *ws, void (*done_cb)(void *ud), void *ud)
{
    if (!ws->sig || ws->draining) {
        return;
    }
    ws->draining = true;
    ws->done_cb = done_cb;
    ws->done_ud = ud;
    spk_info(0, "drain: %llu connection(s) open, timeout %d s",
             (unsigned long long)ws->m.connections_open, ws->cfg->drain_timeout_s);
    spk_sig_shutdown(ws->sig);
    for (spk_ws_conn_t *c = ws->conns; c; c = c->next) {
        conn_close_after_flush(c, SPK_WS_SHUTDOWN, "server shutting down");
    }
    if (!ws->conns) {
        uv_idle_start(&ws->stop_idle, stop_idle_cb);
        return;
    }
    uv_timer_start(&ws->drain_timer, drain_timeout_cb, (uint64_t)ws->cfg->drain_timeout_s * 1000,
                   0);
}

/* ---- construction ---- */

int spk_ws_server_new(spk_ws_server_t **out, uv_loop_t *loop, const spk_config_t *cfg)
{
    *out = NULL;
    if (!loop || !cfg) {
        return SPK_EINVAL;
    }
    spk_ws_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        return SPK_ENOMEM;
    }
    srv->loop = loop;
    srv->cfg = cfg;
    spk_map_init(&srv->by_id);
    spk_map_init(&srv->by_addr);
    spk_map_init(&srv->api_by_id);
    *out = srv;
    return 0;
}

/* The CSP: scripts from the origin only, plus WebAssembly compilation ('wasm-unsafe-eval') for
 * the browser's MLS (web/mls/, docs/browser-mls.md); connect-src: the WebSocket origin matching
 * public_url. */
static void build_csp(spk_ws_server_t *srv)
{
    const char *url = srv->cfg->public_url;
    char origin[300] = "";
    const char *rest = NULL;
    const char *scheme = NULL;
    if (strncmp(url, "https://", 8) == 0) {
        scheme = "wss://";
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        scheme = "ws://";
        rest = url + 7;
    }
    if (rest) {
        size_t host_len = strcspn(rest, "/?#");
        snprintf(origin, sizeof(origin), " %s%.*s", scheme, (int)host_len, rest);
    }
    snprintf(srv->csp, sizeof(srv->csp),
             "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
             "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'%s; "
             "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
             origin);
}

static void fill_info(spk_ws_server_t *srv, struct lws_context_creation_info *info, void **loops,
                      lws_retry_bo_t *retry)
{
    const spk_config_t *cfg = srv->cfg;
    memset(info, 0, sizeof(*info));
    loops[0] = srv->loop;
    info->foreign_loops = loops;
    info->options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                    LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info->port = cfg->listen_port;
    info->iface = cfg->listen_host;
    info->protocols = g_protocols;
    info->user = srv;
    info->vhost_name = "spreekkamer";
    info->timeout_secs = (unsigned int)cfg->handshake_timeout_s;
    /* a connection holds a header buffer from accept until its request head is complete: the
     * header timeout is ws_limits_sweep's, judged after the input that waits was read; lws's
     * own limit (judged before) stays behind it as a backstop */
    info->timeout_secs_ah_idle =
        (unsigned int)(ws_limits_head_timeout_s(cfg) + SPK_WS_HEAD_BACKSTOP_S);
    info->keepalive_timeout = cfg->handshake_timeout_s;
    info->max_http_header_pool = 1024;
    info->gid = -1;
    info->uid = -1;
    info->server_string = "spreekd";
    memset(retry, 0, sizeof(*retry));
    /* backstop behind idle_sweep, which pings at idle/2 and closes with 4002 at idle */
    int hangup = cfg->idle_timeout_s + 3;
    hangup = hangup > 65535 ? 65535 : hangup;
    retry->secs_since_valid_ping = (uint16_t)(hangup - 1);
    retry->secs_since_valid_hangup = (uint16_t)hangup;
    info->retry_and_idle_policy = retry;
    if (cfg->tls_cert[0] && cfg->tls_key[0]) {
        info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info->ssl_cert_filepath = cfg->tls_cert;
        info->ssl_private_key_filepath = cfg->tls_key;
        /* HTTP/1.1 only: WebSockets stay plain RFC 6455 connections (no RFC 8441 streams) */
        info->alpn = "http/1.1";
        /* TLS 1.2 and 1.3 only, no renegotiation; TLS 1.2 with forward-secret AEAD suites only
         * (docs/operations.md, "TLS") */
        info->ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                                SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
        info->ssl_cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    }
    if (strchr(cfg->listen_host, ':') == NULL) {
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
}

/* Tries to bind host:port (numeric addresses only) so that an address in use is reported
 * before lws is involved: lws 4.1 returns a context without the vhost when it cannot bind,
 * and destroying that context crashes (its uv close callbacks outlive the event-lib plugin). */
static int probe_bind(const char *host, int port, char *why, size_t why_len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    int family;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        family = v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        family = v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        len = sizeof(*v6);
    } else {
        return 0; /* an interface name: lws resolves it */
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "socket: %s", strerror(errno));
        return SPK_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, (struct sockaddr *)&ss, len);
    int err = errno;
    close(fd);
    if (rc != 0) {
        snprintf(why, why_len, "cannot listen on %s port %d: %s", host, port, strerror(err));
        return SPK_EIO;
    }
    return 0;
}

int spk_ws_server_listen(spk_ws_server_t *ws, char *why, size_t why_len)
{
    static lws_retry_bo_t retry;
    if (!ws || ws->ctx) {
        return SPK_EINVAL;
    }
    if (!realpath(ws->cfg->web_root, ws->web_root)) {
        snprintf(why, why_len, "web root \"%s\" not found", ws->cfg->web_root);
        return SPK_ECONFIG;
    }
    int rc = ws_limits_init(ws, why, why_len);
    if (rc == 0) {
        rc = ws_files_init(ws, why, why_len);
    }
    if (rc != 0) {
        return rc;
    }
    rc = probe_bind(ws->cfg->listen_host, ws->cfg->listen_port, why, why_len);
    if (rc != 0) {
        return rc;
    }
    int lvl = LLL_ERR | LLL_WARN;
    if (spk_log_get_level() == SPK_LOG_DEBUG) {
        lvl |= LLL_NOTICE;
    }
    lws_set_log_level(lvl, lws_log_emit);

    struct lws_context_creation_info info;
    void *loops[1];
    fill_info(ws, &info, loops, &retry);
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        snprintf(why, why_len, "cannot listen on %s port %d (in use, or not a local address)",
                 ws->cfg->listen_host, ws->cfg->listen_port);
        return SPK_EIO;
    }
    /* lws 4.1 still returns a context when the default vhost cannot bind */
    ws->vhost = lws_get_vhost_by_name(ws->ctx, "spreekkamer");
    if (!ws->vhost) {
        snprintf(why, why_len, "cannot listen on %s port %d", ws->cfg->listen_host,
                 ws->cfg->listen_port);
        ws->ctx = NULL; /* left to process exit: destroying it crashes in lws 4.1 */
        return SPK_EIO;
    }
    ws->port = lws_get_vhost_listen_port(ws->vhost);
    return 0;
}

int spk_ws_server_start(spk_ws_server_t *ws, spk_sig_t *sig)
{
    if (!ws || !sig || !ws->ctx || ws->sig) {
        return SPK_EINVAL;
    }
    ws->sig = sig;
    build_csp(ws);
    ws_limits_start(ws);
    uv_timer_init(ws->loop, &ws->tick);
    uv_timer_init(ws->loop, &ws->drain_timer);
    uv_idle_init(ws->loop, &ws->stop_idle);
    uv_idle_init(ws->loop, &ws->api_idle);
    uv_idle_init(ws->loop, &ws->tick_idle);
    uv_idle_init(ws->loop, &ws->defer_idle);
    uv_check_init(ws->loop, &ws->flush_check);
    uv_prepare_init(ws->loop, &ws->flush_prep);
    ws->tick.data = ws->drain_timer.data = ws->stop_idle.data = ws->api_idle.data =
        ws->tick_idle.data = ws;
    ws->flush_check.data = ws->defer_idle.data = ws->flush_prep.data = ws;
    ws->open_handles = 8;
    uv_timer_start(&ws->tick, tick_cb, 1000, 1000);
    /* group commit of chat messages: written once the turn's input is handled */
    spk_sig_batch_chat(sig, true);
    uv_check_start(&ws->flush_check, flush_check_cb);
    uv_prepare_start(&ws->flush_prep, flush_prep_cb);
    return 0;
}

int spk_ws_server_port(const spk_ws_server_t *ws)
{
    return ws->port;
}

void spk_ws_server_metrics(const spk_ws_server_t *ws, spk_ws_metrics_t *out)
{
    *out = ws->m;
}

void spk_ws_server_free(spk_ws_server_t *ws)
{
    if (!ws) {
        return;
    }
    if (ws->ctx && !ws->stopping) {
        /* listening but never started or drained (start-up failed after listen) */
        ws->stopping = true;
        if (ws->sig) {
            uv_close((uv_handle_t *)&ws->tick, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->flush_check, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->drain_timer, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->stop_idle, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->api_idle, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->tick_idle, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->defer_idle, handle_closed_cb);
            uv_close((uv_handle_t *)&ws->flush_prep, handle_closed_cb);
        }
        lws_context_destroy(ws->ctx);
        uv_run(ws->loop, UV_RUN_DEFAULT);
    }
    if (ws->ctx) {
        /* second call: frees what the first, in-loop call could not */
        lws_context_destroy(ws->ctx);
        ws->ctx = NULL;
    }
    while (ws->conns) {
        spk_ws_conn_t *c = ws->conns;
        conn_untrack(ws, c);
        conn_queue_free(c);
        free(c->rx);
    }
    if (ws->open_handles != 0) {
        spk_warn(0, "transport freed with %d handle(s) still open", ws->open_handles);
    }
    spk_map_free(&ws->by_id);
    ws_api_free_all(ws);
    spk_map_free(&ws->api_by_id);
    ws_limits_free(ws);
    free(ws->wbuf);
    free(ws->flushq);
    free(ws->deferred);
    free(ws);
}
