/* One relay node's link, the controller side: resolve, connect, handshake, keep-alive, read
 * frames, and drop and reconnect (spk/relays.h). */
#include "nodes_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/relay_conn.h"

#define TICK_MS 250
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 5000
/* A node that does not read its commands: the link is dropped. */
#define WRITE_QUEUE_MAX (8u << 20)
#define CIPHER_CAP 16384

struct rconn {
    uv_tcp_t tcp;
    uv_connect_t req;
    rnode_t *node; /* NULL once abandoned (closing) */
    spk_relays_t *owner;
    spk_link_conn_t *link;
    uint8_t cin[CIPHER_CAP]; /* ciphertext as read */
};

typedef struct {
    uv_getaddrinfo_t req;
    spk_relays_t *owner;
    rnode_t *node; /* valid while the owner is not destroyed */
    uint32_t gen;
} resolve_t;

typedef struct {
    uv_write_t req;
    spk_relays_t *owner;
    uint8_t buf[];
} wbuf_t;

uint64_t node_now_ms(const rnode_t *n)
{
    return uv_now(n->owner->loop);
}

static void set_state(rnode_t *n, node_state_t st)
{
    n->state = st;
    n->state_since_ms = node_now_ms(n);
}

static void conn_closed(uv_handle_t *h)
{
    rconn_t *c = h->data;
    spk_relays_t *r = c->owner;
    spk_link_conn_free(c->link);
    free(c);
    nodes_unref(r);
}

/* Drops the link (if any) and schedules a reconnect; the node's endpoints are lost. */
static void node_drop(rnode_t *n, const char *why)
{
    bool was_up = n->state == NODE_UP;
    rconn_t *c = n->conn;
    n->conn = NULL;
    if (c != NULL) {
        c->node = NULL;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
    n->gen++;
    if (n->state != NODE_DOWN) {
        /* While a node stays away, only the first failed attempt is logged at info. */
        spk_log_level_t lvl = was_up                            ? SPK_LOG_WARN
                              : n->backoff_ms == BACKOFF_MIN_MS ? SPK_LOG_INFO
                                                                : SPK_LOG_DEBUG;
        spk_log(lvl, 0, "relay node %s %s: %s", n->name, was_up ? "lost" : "not reachable", why);
    }
    set_state(n, NODE_DOWN);
    n->next_attempt_ms = node_now_ms(n) + n->backoff_ms;
    n->backoff_ms = n->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : n->backoff_ms * 2;
    if (was_up) {
        n->lost++;
        relays_node_lost(n);
    }
}

static void write_done(uv_write_t *req, int status)
{
    (void)status;
    wbuf_t *w = (wbuf_t *)req;
    spk_relays_t *r = w->owner;
    free(w);
    nodes_unref(r);
}

/* Writes the ciphertext TLS has pending; false when the link was dropped. */
static bool conn_flush(rnode_t *n)
{
    rconn_t *c = n->conn;
    for (;;) {
        wbuf_t *w = malloc(sizeof(*w) + CIPHER_CAP);
        if (w == NULL) {
            node_drop(n, "out of memory");
            return false;
        }
        size_t len = spk_link_conn_pending(c->link, w->buf, CIPHER_CAP);
        if (len == 0) {
            free(w);
            return true;
        }
        w->owner = n->owner;
        uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)len);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done);
        if (rc != 0) {
            free(w);
            node_drop(n, uv_strerror(rc));
            return false;
        }
        n->owner->refs++;
    }
}

static int conn_send(rnode_t *n, const spk_link_msg_t *msg)
{
    rconn_t *c = n->conn;
    if (c == NULL) {
        return SPK_ESTATE;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_QUEUE_MAX) {
        node_drop(n, "the node does not read");
        return 0;
    }
    int rc = spk_link_conn_send(c->link, msg);
    if (rc == SPK_EINVAL || rc == SPK_ETOOBIG) {
        return rc; /* this message cannot be sent; the link is fine */
    }
    if (rc != 0) {
        node_drop(n, spk_strerror(rc));
        return 0;
    }
    if (conn_flush(n)) {
        n->last_tx_ms = node_now_ms(n);
    }
    return 0;
}

int node_send(rnode_t *n, const spk_link_msg_t *msg)
{
    return n->state == NODE_UP ? conn_send(n, msg) : SPK_ESTATE;
}

static void on_hello(rnode_t *n, const spk_link_msg_t *m)
{
    snprintf(n->node_id, sizeof(n->node_id), "%s", m->node_id);
    snprintf(n->fingerprint, sizeof(n->fingerprint), "%s", m->fingerprint);
    n->ice_lite = m->ice_lite;
    n->capacity = m->capacity;
    spk_link_msg_t auth = {.type = SPK_LINK_AUTH};
    int rc = conn_send(n, &auth);
    if (rc != 0) {
        node_drop(n, spk_strerror(rc));
    }
}

/* One decoded message; false when the link was dropped. */
static bool on_msg(const spk_link_msg_t *m, void *user)
{
    rnode_t *n = user;
    uint32_t gen = n->gen;
    switch (m->type) {
    case SPK_LINK_HELLO:
        on_hello(n, m);
        break;
    case SPK_LINK_AUTH_OK:
        set_state(n, NODE_UP);
        n->connects++;
        n->backoff_ms = BACKOFF_MIN_MS;
        n->consults = 0;
        n->endpoints = 0;
        spk_info(0, "relay node %s up (node id %s, %s ICE, capacity %u)", n->name, n->node_id,
                 n->ice_lite ? "lite" : "full", (unsigned)n->capacity);
        break;
    case SPK_LINK_LOAD:
        n->rep_endpoints = m->endpoints;
        n->rep_consults = m->consults;
        n->refused = m->candidates_refused;
        break;
    case SPK_LINK_EVENT:
        relays_node_event(n, &m->ev);
        break;
    default:
        break;
    }
    return n->gen == gen && !n->owner->destroyed;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rconn_t *c = h->data;
    buf->base = (char *)c->cin;
    buf->len = sizeof(c->cin);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    rconn_t *c = s->data;
    rnode_t *n = c->node;
    if (n == NULL || nread == 0) {
        return;
    }
    if (nread < 0) {
        node_drop(n, nread == UV_EOF ? "closed by the node" : uv_strerror((int)nread));
        return;
    }
    n->last_rx_ms = node_now_ms(n);
    const char *why = NULL;
    int rc = spk_link_conn_feed(c->link, c->cin, (size_t)nread, on_msg, n, &why);
    if (rc != 0) {
        if (rc != SPK_EIO && rc != SPK_EVERIFY) {
            spk_warn(0, "relay node %s: %s", n->name, spk_strerror(rc));
        }
        node_drop(n, why);
        return;
    }
    if (c->node != NULL) {
        (void)conn_flush(n);
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    rconn_t *c = req->data;
    rnode_t *n = c->node;
    if (n == NULL) {
        return;
    }
    if (status != 0) {
        node_drop(n, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    set_state(n, NODE_HANDSHAKE);
    n->last_rx_ms = node_now_ms(n);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        node_drop(n, uv_strerror(rc));
        return;
    }
    (void)conn_flush(n); /* the ClientHello */
}

static void node_connect(rnode_t *n, const struct sockaddr *addr)
{
    spk_relays_t *r = n->owner;
    rconn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || spk_link_conn_new(r->tls, SPK_LINK_CONTROLLER, r->secret, r->secret_len, NULL,
                                       &c->link) != 0) {
        free(c);
        node_drop(n, "out of memory");
        return;
    }
    c->node = n;
    c->owner = r;
    uv_tcp_init(r->loop, &c->tcp);
    c->tcp.data = c;
    c->req.data = c;
    r->refs++;
    n->conn = c;
    set_state(n, NODE_CONNECTING);
    int rc = uv_tcp_connect(&c->req, &c->tcp, addr, connect_cb);
    if (rc != 0) {
        node_drop(n, uv_strerror(rc));
    }
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *q = (resolve_t *)req;
    spk_relays_t *r = q->owner;
    rnode_t *n = r->destroyed ? NULL : q->node;
    if (n != NULL && n->gen == q->gen && n->state == NODE_RESOLVING) {
        if (status != 0 || res == NULL) {
            node_drop(n, status != 0 ? uv_strerror(status) : "no address");
        } else {
            node_connect(n, res->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    free(q);
    nodes_unref(r);
}

static void node_attempt(rnode_t *n)
{
    spk_relays_t *r = n->owner;
    struct sockaddr_storage ss;
    int port = atoi(n->port);
    if (uv_ip4_addr(n->host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(n->host, port, (struct sockaddr_in6 *)&ss) == 0) {
        node_connect(n, (const struct sockaddr *)&ss);
        return;
    }
    resolve_t *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        node_drop(n, "out of memory");
        return;
    }
    q->owner = r;
    q->node = n;
    q->gen = n->gen;
    set_state(n, NODE_RESOLVING);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(r->loop, &q->req, resolved_cb, n->host, n->port, &hints) != 0) {
        free(q);
        node_drop(n, "cannot resolve");
        return;
    }
    r->refs++;
}

static void tick_cb(uv_timer_t *t)
{
    rnode_t *n = t->data;
    uint64_t now = node_now_ms(n);
    switch (n->state) {
    case NODE_DOWN:
        if (now >= n->next_attempt_ms) {
            node_attempt(n);
        }
        break;
    case NODE_RESOLVING:
    case NODE_CONNECTING:
        if (now - n->state_since_ms > SPK_RELAYS_DEAD_MS) {
            node_drop(n, "timed out");
        }
        break;
    case NODE_HANDSHAKE:
    case NODE_UP:
        if (n->state == NODE_HANDSHAKE && now - n->state_since_ms > SPK_RELAYS_DEAD_MS) {
            node_drop(n, "handshake timed out");
        } else if (now - n->last_rx_ms > SPK_RELAYS_DEAD_MS) {
            node_drop(n, "silent");
        } else if (n->state == NODE_UP && now - n->last_tx_ms >= SPK_RELAYS_KEEPALIVE_MS) {
            spk_link_msg_t ka = {.type = SPK_LINK_KEEPALIVE};
            (void)conn_send(n, &ka);
        }
        break;
    }
}

int node_start(spk_relays_t *r, rnode_t *n)
{
    n->owner = r;
    n->backoff_ms = BACKOFF_MIN_MS;
    int rc = uv_timer_init(r->loop, &n->timer);
    if (rc != 0) {
        return SPK_EIO;
    }
    n->timer.data = n;
    r->refs++;
    node_attempt(n);
    uv_timer_start(&n->timer, tick_cb, TICK_MS, TICK_MS);
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    rnode_t *n = h->data;
    spk_relays_t *r = n->owner;
    free(n);
    nodes_unref(r);
}

/* At destroy: no lost events (the owner is destroyed), the node's memory goes with its timer. */
void node_stop(rnode_t *n)
{
    rconn_t *c = n->conn;
    n->conn = NULL;
    n->gen++;
    if (c != NULL) {
        c->node = NULL;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
    uv_close((uv_handle_t *)&n->timer, timer_closed);
}
