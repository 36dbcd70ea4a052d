/* spreek-relay: the media relay as its own process (a relay node), driven by spreekd over the
 * relay link (spk/relay_link.h; docs/relay_link.md, docs/operations.md "Relay nodes").
 *
 * One uv loop: the relay's control thread, the link listener and its connections. Each
 * connection is one controller; the endpoint ids it chooses are mapped to the node's own, so
 * controllers never collide. Consult ids are shared: controllers holding the link secret are
 * spreekd nodes of one deployment, whose consult ids name the same consult, so endpoints several
 * controllers create in one consult are one consult here and media flows between them. When a
 * controller's link drops, every endpoint it created is closed. SIGTERM / SIGINT: stop listening,
 * close the links, stop the relay, exit 0. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/map.h"
#include "spk/relay.h"
#include "spk/relay_conn.h"
#include "spk/relay_link.h"
#include "spk/relays.h"
#include "spk/url.h"
#include "spk/util.h"

#define MAX_CONNS 64
#define CIPHER_CAP 16384
#define WRITE_QUEUE_MAX (8u << 20)
#define TICK_MS 1000

typedef struct node node_t;

typedef struct {
    uv_tcp_t tcp;
    node_t *node;
    bool closing;
    spk_link_conn_t *link;
    uint64_t last_rx_ms;
    uint64_t accepted_ms;    /* TLS and the link handshake must be done within SPK_RELAYS_DEAD_MS */
    spk_map_t eps;           /* controller endpoint id -> node endpoint id (uint64 boxed) */
    uint8_t cin[CIPHER_CAP]; /* ciphertext as read */
} conn_t;

/* A consult: the controllers' id (the same from every controller) and the node's. */
typedef struct {
    uint64_t key; /* the controllers' */
    uint64_t id;  /* the node's */
    unsigned refs;
} cconsult_t;

/* A node endpoint: whose it is (conn NULL once that controller is gone). */
typedef struct {
    conn_t *conn;
    uint64_t ctl_ep, ctl_consult;
    cconsult_t *consult;
} nep_t;

struct node {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    spk_relay_t *relay;
    spk_relay_tls_ctx_t *tls;
    conn_t *conns[MAX_CONNS];
    spk_map_t neps;     /* node endpoint id -> nep_t* */
    spk_map_t consults; /* controllers' consult id -> cconsult_t* */
    uint64_t next_ep, next_consult;
    uint32_t n_consults;
    bool stopping;
    /* configuration */
    char listen_host[256];
    int listen_port;
    char secret[SPK_LINK_SECRET_MAX + 1];
    size_t secret_len;
    char node_id[SPK_LINK_NODE_ID_MAX];
    char addresses[256];
    uint32_t capacity;
    spk_relay_config_t rc;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: spreek-relay --addresses A[,B] [options]\n"
        "\n"
        "Runs the spreekkamer media relay as a relay node driven by spreekd (relay_nodes).\n"
        "The link secret comes from --secret-file or the SPREEK_RELAY_SECRET environment\n"
        "variable (at least 16 bytes, the same as spreekd's relay_secret).\n"
        "\n"
        "  --listen HOST:PORT        where spreekd connects (127.0.0.1:8490; [::1]:PORT)\n"
        "  --secret-file FILE        the link secret (first line)\n"
        "  --node-id ID              name in spreekd's logs (the host name)\n"
        "  --capacity N              endpoints this node is meant to carry (0 = no limit)\n"
        "  --addresses A[,B]         addresses ICE candidates are gathered on (required)\n"
        "  --port-min N --port-max N UDP port range (0/0 = ephemeral)\n"
        "  --workers N               media worker threads (0 = number of cores)\n"
        "  --ice-lite 0|1            ICE-lite, for a relay with a public address (0)\n"
        "  --consent-timeout S       endpoint given up after S s without a packet (30; 2..300)\n"
        "  --candidate-allow CIDRS   extra remote ranges the relay may send to\n"
        "  --candidate-deny CIDRS    remote ranges it never sends to\n"
        "  --log-level LEVEL         debug|info|warn|error (info)\n"
        "  --help                    this text\n");
}

/* ---- sending ---- */

static void write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void conn_close(conn_t *c, const char *why);

/* Writes the ciphertext TLS has pending. */
static void conn_flush(conn_t *c)
{
    while (!c->closing) {
        uv_write_t *req = malloc(sizeof(*req) + CIPHER_CAP);
        if (req == NULL) {
            conn_close(c, "out of memory");
            return;
        }
        uint8_t *buf = (uint8_t *)(req + 1);
        size_t len = spk_link_conn_pending(c->link, buf, CIPHER_CAP);
        if (len == 0) {
            free(req);
            return;
        }
        uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
        if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
            free(req);
            conn_close(c, "write failed");
        }
    }
}

static void conn_send(conn_t *c, const spk_link_msg_t *m)
{
    if (c->closing) {
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_QUEUE_MAX) {
        conn_close(c, "the controller does not read");
        return;
    }
    int rc = spk_link_conn_send(c->link, m);
    if (rc == SPK_EINVAL || rc == SPK_ETOOBIG) {
        spk_warn(0, "link: cannot encode %s: %s", spk_link_type_name(m->type), spk_strerror(rc));
        return;
    }
    if (rc != 0) {
        conn_close(c, "TLS error");
        return;
    }
    conn_flush(c);
}

static void send_event(conn_t *c, const spk_relay_event_t *ev)
{
    static spk_link_msg_t m; /* loop thread only */
    memset(&m, 0, sizeof(m));
    m.type = SPK_LINK_EVENT;
    m.ev = *ev;
    conn_send(c, &m);
}

static void send_failed(conn_t *c, uint64_t consult, uint64_t ep, int err, const char *what)
{
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SPK_RELAY_EV_FAILED;
    ev.consult_id = consult;
    ev.endpoint_id = ep;
    ev.err = err;
    snprintf(ev.reason, sizeof(ev.reason), "%s refused: %s", what, spk_strerror(err));
    send_event(c, &ev);
}

/* ---- endpoints ---- */

static void consult_unref(node_t *nd, cconsult_t *cc)
{
    if (cc != NULL && --cc->refs == 0) {
        spk_map_del_u64(&nd->consults, cc->key);
        free(cc);
        nd->n_consults--;
    }
}

static void nep_free(node_t *nd, uint64_t node_ep)
{
    nep_t *e = spk_map_del_u64(&nd->neps, node_ep);
    if (e == NULL) {
        return;
    }
    if (e->conn != NULL) {
        spk_map_del_u64(&e->conn->eps, e->ctl_ep);
        consult_unref(nd, e->consult);
    }
    free(e);
}

/* Relay events: to the controller that owns the endpoint, in its ids. */
static void on_relay_event(spk_relay_t *relay, const spk_relay_event_t *ev, void *user)
{
    (void)relay;
    node_t *nd = user;
    nep_t *e = spk_map_get_u64(&nd->neps, ev->endpoint_id);
    if (e == NULL) {
        return;
    }
    if (e->conn != NULL) {
        spk_relay_event_t out = *ev;
        out.endpoint_id = e->ctl_ep;
        out.consult_id = e->ctl_consult;
        send_event(e->conn, &out);
    }
    if (ev->type == SPK_RELAY_EV_CLOSED) {
        nep_free(nd, ev->endpoint_id);
    }
}

static int create(conn_t *c, const spk_link_msg_t *m)
{
    node_t *nd = c->node;
    if (spk_map_get_u64(&c->eps, m->endpoint_id) != NULL) {
        send_failed(c, m->consult_id, m->endpoint_id, SPK_EEXIST, "create");
        return 0;
    }
    cconsult_t *cc = spk_map_get_u64(&nd->consults, m->consult_id);
    nep_t *e = calloc(1, sizeof(*e));
    bool new_consult = cc == NULL;
    if (new_consult) {
        cc = calloc(1, sizeof(*cc));
    }
    uint64_t node_ep = ++nd->next_ep;
    if (e == NULL || cc == NULL ||
        (new_consult && spk_map_put_u64(&nd->consults, m->consult_id, cc) != 0) ||
        spk_map_put_u64(&nd->neps, node_ep, e) != 0) {
        if (new_consult && cc != NULL) {
            spk_map_del_u64(&nd->consults, m->consult_id);
            free(cc);
        }
        free(e);
        return SPK_ENOMEM;
    }
    if (new_consult) {
        cc->key = m->consult_id;
        cc->id = ++nd->next_consult;
        nd->n_consults++;
    }
    cc->refs++;
    *e = (nep_t){.conn = c, .ctl_ep = m->endpoint_id, .ctl_consult = m->consult_id, .consult = cc};
    if (spk_map_put_u64(&c->eps, m->endpoint_id, (void *)(uintptr_t)node_ep) != 0) {
        e->conn = NULL;
        consult_unref(nd, cc);
        spk_map_del_u64(&nd->neps, node_ep);
        free(e);
        return SPK_ENOMEM;
    }
    spk_relay_ice_creds_t cr;
    snprintf(cr.ufrag, sizeof(cr.ufrag), "%s", m->local_ufrag);
    snprintf(cr.pwd, sizeof(cr.pwd), "%s", m->local_pwd);
    int rc = spk_relay_endpoint_create_with(nd->relay, cc->id, node_ep, m->roles, &cr);
    spk_wipe(&cr, sizeof(cr));
    if (rc != 0) {
        send_failed(c, m->consult_id, m->endpoint_id, rc, "create");
    }
    return 0;
}

/* A command for an existing endpoint; unknown ids are ignored, like the in-process relay does
 * (a close of one is answered CLOSED). */
static int command(conn_t *c, const spk_link_msg_t *m)
{
    node_t *nd = c->node;
    uint64_t node_ep = (uint64_t)(uintptr_t)spk_map_get_u64(&c->eps, m->endpoint_id);
    nep_t *e = node_ep ? spk_map_get_u64(&nd->neps, node_ep) : NULL;
    if (e == NULL || e->ctl_consult != m->consult_id) {
        if (m->type == SPK_LINK_CLOSE) {
            spk_relay_event_t ev = {.type = SPK_RELAY_EV_CLOSED,
                                    .consult_id = m->consult_id,
                                    .endpoint_id = m->endpoint_id};
            send_event(c, &ev);
        }
        return 0;
    }
    uint64_t cid = e->consult->id;
    int rc = 0;
    switch (m->type) {
    case SPK_LINK_REMOTE_DESCRIPTION:
        rc = spk_relay_remote_description(nd->relay, cid, node_ep, m->ufrag, m->pwd, m->fingerprint,
                                          m->setup);
        break;
    case SPK_LINK_REMOTE_CANDIDATE:
        rc = spk_relay_remote_candidate(nd->relay, cid, node_ep, m->cand);
        rc = rc == SPK_EFORBIDDEN || rc == SPK_EINVAL ? 0 : rc; /* counted / not a candidate */
        break;
    case SPK_LINK_SET_OWNER:
        rc = spk_relay_set_owner(nd->relay, cid, node_ep, m->owner);
        break;
    case SPK_LINK_SET_STREAMS:
        rc = spk_relay_set_streams(nd->relay, cid, node_ep, m->streams, m->n_streams);
        break;
    case SPK_LINK_SET_FORWARDING:
        rc = spk_relay_set_forwarding(nd->relay, cid, node_ep, m->on);
        break;
    case SPK_LINK_SET_EXT_MAP:
        rc = spk_relay_set_ext_map(nd->relay, cid, node_ep, m->ext_map);
        break;
    case SPK_LINK_ICE_RESTART: {
        spk_relay_ice_creds_t cr;
        snprintf(cr.ufrag, sizeof(cr.ufrag), "%s", m->local_ufrag);
        snprintf(cr.pwd, sizeof(cr.pwd), "%s", m->local_pwd);
        rc = spk_relay_ice_restart_with(nd->relay, cid, node_ep, m->ufrag, m->pwd, &cr);
        spk_wipe(&cr, sizeof(cr));
        break;
    }
    case SPK_LINK_CLOSE:
        rc = spk_relay_endpoint_close(nd->relay, cid, node_ep);
        break;
    case SPK_LINK_STATS:
        rc = spk_relay_stats(nd->relay, cid, node_ep);
        break;
    default:
        break;
    }
    if (rc != 0) {
        send_failed(c, m->consult_id, m->endpoint_id, rc, spk_link_type_name(m->type));
    }
    return 0;
}

/* ---- connections ---- */

/* The HELLO each connection sends once TLS is up. */
static void hello_of(const node_t *nd, spk_link_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->type = SPK_LINK_HELLO;
    snprintf(m->node_id, sizeof(m->node_id), "%s", nd->node_id);
    snprintf(m->fingerprint, sizeof(m->fingerprint), "%s", spk_relay_fingerprint(nd->relay));
    m->ice_lite = nd->rc.ice_lite;
    m->capacity = nd->capacity;
}

static void send_load(conn_t *c)
{
    node_t *nd = c->node;
    spk_link_msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return;
    }
    m->type = SPK_LINK_LOAD;
    m->endpoints = (uint32_t)nd->neps.len;
    m->consults = nd->n_consults;
    m->candidates_refused = spk_relay_candidates_refused(nd->relay);
    conn_send(c, m);
    free(m);
}

static void conn_freed(uv_handle_t *h)
{
    conn_t *c = h->data;
    spk_map_free(&c->eps);
    spk_link_conn_free(c->link);
    free(c);
}

/* Closes the link; the controller's endpoints are closed on the relay. */
static void conn_close(conn_t *c, const char *why)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    node_t *nd = c->node;
    spk_info(0, "link closed: %s", why);
    for (int i = 0; i < MAX_CONNS; i++) {
        if (nd->conns[i] == c) {
            nd->conns[i] = NULL;
        }
    }
    size_t it = 0;
    void *v;
    while (spk_map_next(&nd->neps, &it, &v)) {
        nep_t *e = v;
        if (e->conn == c) {
            uint64_t node_ep = (uint64_t)(uintptr_t)spk_map_get_u64(&c->eps, e->ctl_ep);
            e->conn = NULL;
            consult_unref(nd, e->consult);
            e->consult = NULL;
            if (nd->relay != NULL && !nd->stopping) {
                /* consult id: any nonzero value selects a worker; CLOSED comes back with ours */
                (void)spk_relay_endpoint_close(nd->relay, 1, node_ep);
            }
        }
    }
    uv_close((uv_handle_t *)&c->tcp, conn_freed);
}

static bool on_msg(const spk_link_msg_t *m, void *user)
{
    conn_t *c = user;
    int rc = 0;
    switch (m->type) {
    case SPK_LINK_AUTH: {
        spk_link_msg_t ok = {.type = SPK_LINK_AUTH_OK};
        conn_send(c, &ok);
        spk_info(0, "controller authenticated");
        send_load(c);
        break;
    }
    case SPK_LINK_KEEPALIVE:
        break;
    case SPK_LINK_CREATE:
        rc = create(c, m);
        break;
    default:
        rc = command(c, m);
        break;
    }
    if (rc != 0) {
        send_failed(c, m->consult_id, m->endpoint_id, rc, spk_link_type_name(m->type));
    }
    return !c->closing;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = h->data;
    buf->base = (char *)c->cin;
    buf->len = sizeof(c->cin);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = s->data;
    if (c->closing || nread == 0) {
        return;
    }
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "closed by the controller" : uv_strerror((int)nread));
        return;
    }
    c->last_rx_ms = uv_now(&c->node->loop);
    const char *why = NULL;
    int rc = spk_link_conn_feed(c->link, c->cin, (size_t)nread, on_msg, c, &why);
    if (c->closing) {
        return;
    }
    conn_flush(c); /* TLS handshake, or its alert */
    if (rc != 0) {
        if (rc != SPK_EIO && rc != SPK_EVERIFY) {
            spk_warn(0, "link: %s", spk_strerror(rc));
        }
        conn_close(c, rc == SPK_EVERIFY ? "authentication failed (another secret?)" : why);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    node_t *nd = server->data;
    if (status != 0 || nd->stopping) {
        return;
    }
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(&nd->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->node = nd;
    spk_map_init(&c->eps);
    spk_link_msg_t hello;
    hello_of(nd, &hello);
    int slot = -1;
    for (int i = 0; i < MAX_CONNS && slot < 0; i++) {
        slot = nd->conns[i] == NULL ? i : -1;
    }
    bool ok = uv_accept(server, (uv_stream_t *)&c->tcp) == 0 && slot >= 0 &&
              spk_link_conn_new(nd->tls, SPK_LINK_NODE, nd->secret, nd->secret_len, &hello,
                                &c->link) == 0;
    if (!ok) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_freed);
        return;
    }
    nd->conns[slot] = c;
    c->last_rx_ms = uv_now(&nd->loop);
    c->accepted_ms = c->last_rx_ms;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        conn_close(c, "cannot read");
    }
}

static void on_tick(uv_timer_t *t)
{
    node_t *nd = t->data;
    uint64_t now = uv_now(&nd->loop);
    for (int i = 0; i < MAX_CONNS; i++) {
        conn_t *c = nd->conns[i];
        if (c == NULL) {
            continue;
        }
        bool open = spk_link_conn_open(c->link);
        if (!open && now - c->accepted_ms > SPK_RELAYS_DEAD_MS) {
            conn_close(c, "handshake timed out");
        } else if (now - c->last_rx_ms > SPK_RELAYS_DEAD_MS) {
            conn_close(c, "controller silent");
        } else if (open) {
            send_load(c);
        }
    }
}

/* ---- start and stop ---- */

static void on_signal(uv_signal_t *h, int signum)
{
    node_t *nd = h->data;
    if (nd->stopping) {
        return;
    }
    spk_info(0, "signal %d: stopping", signum);
    for (int i = 0; i < MAX_CONNS; i++) {
        if (nd->conns[i] != NULL) {
            conn_close(nd->conns[i], "stopping");
        }
    }
    nd->stopping = true;
    uv_close((uv_handle_t *)&nd->listener, NULL);
    uv_close((uv_handle_t *)&nd->tick, NULL);
    uv_close((uv_handle_t *)&nd->sigterm, NULL);
    uv_close((uv_handle_t *)&nd->sigint, NULL);
    spk_relay_destroy(nd->relay);
    nd->relay = NULL;
}

static int read_secret(node_t *nd, const char *file)
{
    const char *env = getenv("SPREEK_RELAY_SECRET");
    char buf[SPK_LINK_SECRET_MAX + 2] = "";
    if (file != NULL) {
        FILE *f = fopen(file, "r");
        if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
            fprintf(stderr, "spreek-relay: cannot read %s: %s\n", file, strerror(errno));
            if (f != NULL) {
                fclose(f);
            }
            return SPK_ECONFIG;
        }
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
    } else if (env != NULL) {
        snprintf(buf, sizeof(buf), "%s", env);
    }
    size_t n = strlen(buf);
    if (n < SPK_LINK_SECRET_MIN || n > SPK_LINK_SECRET_MAX) {
        fprintf(stderr,
                "spreek-relay: the link secret (--secret-file or SPREEK_RELAY_SECRET) "
                "must be %d..%d bytes\n",
                SPK_LINK_SECRET_MIN, SPK_LINK_SECRET_MAX);
        spk_wipe(buf, sizeof(buf));
        return SPK_ECONFIG;
    }
    memcpy(nd->secret, buf, n + 1);
    nd->secret_len = n;
    spk_wipe(buf, sizeof(buf));
    return 0;
}

static int parse_listen(node_t *nd, const char *v)
{
    return spk_hostport_parse(v, nd->listen_host, sizeof(nd->listen_host), &nd->listen_port);
}

static bool parse_uint(const char *v, long max, long *out)
{
    char *e = NULL;
    errno = 0;
    long n = strtol(v, &e, 10);
    if (errno != 0 || e == v || *e != '\0' || n < 0 || n > max) {
        return false;
    }
    *out = n;
    return true;
}

/* Parses the flags; 1 = --help shown, 0 = run, <0 = error (printed). */
static int parse_args(node_t *nd, int argc, char **argv, const char **secret_file)
{
    static char allow[512], deny[512];
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i];
        if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        bool ok = v != NULL;
        if (!ok) {
        } else if (strcmp(k, "--listen") == 0) {
            ok = parse_listen(nd, v) == 0;
        } else if (strcmp(k, "--secret-file") == 0) {
            *secret_file = v;
        } else if (strcmp(k, "--node-id") == 0) {
            ok = strlen(v) > 0 && strlen(v) < sizeof(nd->node_id);
            snprintf(nd->node_id, sizeof(nd->node_id), "%s", v);
        } else if (strcmp(k, "--capacity") == 0) {
            ok = parse_uint(v, 1000000, &n);
            nd->capacity = (uint32_t)n;
        } else if (strcmp(k, "--addresses") == 0 || strcmp(k, "--address") == 0) {
            ok = strlen(v) < sizeof(nd->addresses);
            snprintf(nd->addresses, sizeof(nd->addresses), "%s", v);
        } else if (strcmp(k, "--port-min") == 0 || strcmp(k, "--port-max") == 0) {
            ok = parse_uint(v, 65535, &n);
            *(strcmp(k, "--port-min") == 0 ? &nd->rc.port_min : &nd->rc.port_max) = (uint16_t)n;
        } else if (strcmp(k, "--workers") == 0) {
            ok = parse_uint(v, SPK_RELAY_MAX_WORKERS, &n);
            nd->rc.workers = (unsigned)n;
        } else if (strcmp(k, "--consent-timeout") == 0) {
            ok = parse_uint(v, 300, &n) && n >= 2;
            nd->rc.consent_timeout_ms = (unsigned)n * 1000u;
        } else if (strcmp(k, "--ice-lite") == 0) {
            ok = parse_uint(v, 1, &n);
            nd->rc.ice_lite = n == 1;
        } else if (strcmp(k, "--candidate-allow") == 0 || strcmp(k, "--candidate-deny") == 0) {
            char *dst = k[12] == 'a' ? allow : deny;
            ok = strlen(v) < sizeof(allow);
            snprintf(dst, sizeof(allow), "%s", v);
            *(k[12] == 'a' ? &nd->rc.candidate_allow : &nd->rc.candidate_deny) = dst;
        } else if (strcmp(k, "--log-level") == 0) {
            spk_log_level_t lvl;
            ok = spk_log_level_parse(v, &lvl) == 0;
            spk_log_set_level(lvl);
        } else {
            fprintf(stderr, "spreek-relay: unknown option %s (--help lists them)\n", k);
            return SPK_ECONFIG;
        }
        if (!ok) {
            fprintf(stderr, "spreek-relay: bad or missing value for %s\n", k);
            return SPK_ECONFIG;
        }
    }
    if (nd->addresses[0] == '\0') {
        fprintf(stderr, "spreek-relay: --addresses is required\n");
        return SPK_ECONFIG;
    }
    if (nd->rc.port_min > nd->rc.port_max) {
        fprintf(stderr, "spreek-relay: --port-min is above --port-max\n");
        return SPK_ECONFIG;
    }
    return 0;
}

static int start_listener(node_t *nd)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(nd->listen_host, nd->listen_port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(nd->listen_host, nd->listen_port, (struct sockaddr_in6 *)&ss) != 0) {
        fprintf(stderr, "spreek-relay: --listen needs an IP address, not %s\n", nd->listen_host);
        return SPK_ECONFIG;
    }
    uv_tcp_init(&nd->loop, &nd->listener);
    nd->listener.data = nd;
    int rc = uv_tcp_bind(&nd->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&nd->listener, 16, on_connection);
    }
    if (rc != 0) {
        spk_error(0, "cannot listen on %s:%d: %s", nd->listen_host, nd->listen_port,
                  uv_strerror(rc));
        return SPK_EIO;
    }
    int len = sizeof(ss);
    uv_tcp_getsockname(&nd->listener, (struct sockaddr *)&ss, &len);
    char ip[64] = "";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    printf("spreek-relay %s listening on %s%s%s:%d\n", nd->node_id,
           ss.ss_family == AF_INET6 ? "[" : "", ip, ss.ss_family == AF_INET6 ? "]" : "", port);
    fflush(stdout);
    return 0;
}

static int start(node_t *nd)
{
    static char addrs[256];
    snprintf(addrs, sizeof(addrs), "%s", nd->addresses);
    char *save = NULL;
    for (char *a = strtok_r(addrs, ", ", &save);
         a != NULL && nd->rc.n_addresses < SPK_RELAY_MAX_ADDRESSES;
         a = strtok_r(NULL, ", ", &save)) {
        nd->rc.addresses[nd->rc.n_addresses++] = a;
    }
    int rc = spk_relay_tls_ctx_new(true, nd->secret, nd->secret_len, &nd->tls);
    if (rc != 0) {
        spk_error(0, "cannot set up TLS: %s", spk_strerror(rc));
        return rc;
    }
    rc = spk_relay_new(&nd->loop, &nd->rc, on_relay_event, nd, &nd->relay);
    if (rc != 0) {
        spk_error(0, "cannot start the media relay on %s: %s", nd->addresses, spk_strerror(rc));
        return rc;
    }
    rc = start_listener(nd);
    if (rc != 0) {
        return rc;
    }
    uv_timer_init(&nd->loop, &nd->tick);
    nd->tick.data = nd;
    uv_timer_start(&nd->tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(&nd->loop, &nd->sigterm);
    uv_signal_init(&nd->loop, &nd->sigint);
    nd->sigterm.data = nd;
    nd->sigint.data = nd;
    uv_signal_start(&nd->sigterm, on_signal, SIGTERM);
    uv_signal_start(&nd->sigint, on_signal, SIGINT);
    spk_info(0, "media relay on %s (%s ICE)", nd->addresses, nd->rc.ice_lite ? "lite" : "full");
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    spk_relay_tune_malloc(); /* before any allocation of the relay's */
    static node_t nd;
    spk_relay_config_init(&nd.rc);
    snprintf(nd.listen_host, sizeof(nd.listen_host), "127.0.0.1");
    nd.listen_port = 8490;
    if (gethostname(nd.node_id, sizeof(nd.node_id)) != 0 || nd.node_id[0] == '\0') {
        snprintf(nd.node_id, sizeof(nd.node_id), "relay");
    }
    nd.node_id[sizeof(nd.node_id) - 1] = '\0';
    const char *secret_file = NULL;
    int rc = parse_args(&nd, argc, argv, &secret_file);
    if (rc != 0) {
        return rc > 0 ? 0 : 2;
    }
    if (read_secret(&nd, secret_file) != 0) {
        return 2;
    }
    spk_map_init(&nd.neps);
    spk_map_init(&nd.consults);
    uv_loop_init(&nd.loop);
    rc = start(&nd);
    if (rc != 0) {
        if (nd.relay != NULL) {
            spk_relay_destroy(nd.relay);
        }
        uv_walk(&nd.loop, close_any, NULL);
        uv_run(&nd.loop, UV_RUN_DEFAULT);
        return 1;
    }
    uv_run(&nd.loop, UV_RUN_DEFAULT);
    size_t it = 0;
    void *v;
    while (spk_map_next(&nd.neps, &it, &v)) {
        free(v);
    }
    spk_map_free(&nd.neps);
    it = 0;
    while (spk_map_next(&nd.consults, &it, &v)) {
        free(v);
    }
    spk_map_free(&nd.consults);
    spk_relay_tls_ctx_free(nd.tls);
    uv_loop_close(&nd.loop);
    spk_wipe(nd.secret, sizeof(nd.secret));
    spk_info(0, "stopped");
    return 0;
}
