/* spk/relays.h: the in-process relay passed through, or relay nodes with consults placed by
 * load, endpoints routed to their consult's node, and a lost node's endpoints failed at once. */
#include "nodes_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/url.h"
#include "spk/util.h"

/* ---- lifetime ---- */

static void relays_free(spk_relays_t *r)
{
    spk_relay_tls_ctx_free(r->tls);
    free(r->pending);
    spk_map_free(&r->consults);
    spk_map_free(&r->eps);
    memset(r->secret, 0, sizeof(r->secret));
    free(r);
}

void nodes_unref(spk_relays_t *r)
{
    if (--r->refs == 0) {
        relays_free(r);
    }
}

static void local_cb(spk_relay_t *relay, const spk_relay_event_t *ev, void *user)
{
    (void)relay;
    spk_relays_t *r = user;
    r->cb(ev, r->user);
}

static spk_relays_t *relays_alloc(uv_loop_t *loop, spk_relays_event_cb cb, void *user)
{
    spk_relays_t *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->loop = loop;
        r->cb = cb;
        r->user = user;
        r->refs = 1;
        spk_map_init(&r->consults);
        spk_map_init(&r->eps);
    }
    return r;
}

int spk_relays_new_local(uv_loop_t *loop, const spk_relay_config_t *cfg, spk_relays_event_cb cb,
                         void *user, spk_relays_t **out)
{
    if (loop == NULL || cfg == NULL || cb == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    spk_relays_t *r = relays_alloc(loop, cb, user);
    if (r == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_relay_new(loop, cfg, local_cb, r, &r->local);
    if (rc != 0) {
        relays_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Splits "host:port" / "[v6]:port" into n->host and n->port. */
static int parse_node(const char *s, rnode_t *n)
{
    int port = 0;
    if (spk_hostport_parse(s, n->host, sizeof(n->host), &port) != 0 || port == 0) {
        return SPK_ECONFIG;
    }
    snprintf(n->port, sizeof(n->port), "%d", port);
    snprintf(n->name, sizeof(n->name), "%s", s);
    n->key = spk_relays_node_key(n->name);
    return 0;
}

static int flush_init(spk_relays_t *r);

static int add_nodes(spk_relays_t *r, const char *list)
{
    char buf[4096];
    if (strlen(list) >= sizeof(buf)) {
        return SPK_ECONFIG;
    }
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
        rnode_t *n = calloc(1, sizeof(*n));
        if (n == NULL) {
            return SPK_ENOMEM;
        }
        if (r->n_nodes == SPK_RELAYS_MAX_NODES || parse_node(t, n) != 0) {
            free(n);
            return SPK_ECONFIG;
        }
        r->nodes[r->n_nodes++] = n;
    }
    return r->n_nodes > 0 ? 0 : SPK_ECONFIG;
}

int spk_relays_new_remote(uv_loop_t *loop, const spk_relays_remote_config_t *cfg,
                          spk_relays_event_cb cb, void *user, spk_relays_t **out)
{
    if (loop == NULL || cfg == NULL || cfg->nodes == NULL || cb == NULL || out == NULL) {
        return SPK_EINVAL;
    }
    size_t slen = cfg->secret != NULL ? strlen(cfg->secret) : 0;
    if (slen < SPK_LINK_SECRET_MIN || slen > SPK_LINK_SECRET_MAX) {
        return SPK_ECONFIG;
    }
    spk_relays_t *r = relays_alloc(loop, cb, user);
    if (r == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(r->secret, cfg->secret, slen);
    r->secret_len = slen;
    int rc = add_nodes(r, cfg->nodes);
    if (rc == 0) {
        rc = spk_relay_tls_ctx_new(false, r->secret, r->secret_len, &r->tls);
    }
    if (rc == 0) {
        rc = flush_init(r);
    }
    if (rc != 0) {
        for (size_t i = 0; i < r->n_nodes; i++) {
            free(r->nodes[i]);
        }
        relays_free(r);
        return rc;
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        node_start(r, r->nodes[i]);
    }
    *out = r;
    return 0;
}

static void flush_closed(uv_handle_t *h)
{
    nodes_unref(h->data);
}

void spk_relays_destroy(spk_relays_t *r)
{
    if (r == NULL || r->destroyed) {
        return;
    }
    r->destroyed = true;
    if (r->local != NULL) {
        spk_relay_destroy(r->local);
        r->local = NULL;
        nodes_unref(r);
        return;
    }
    for (size_t i = 0; i < r->n_nodes; i++) {
        node_stop(r->nodes[i]);
    }
    size_t it = 0;
    void *v;
    while (spk_map_next(&r->eps, &it, &v)) {
        free(v);
    }
    it = 0;
    while (spk_map_next(&r->consults, &it, &v)) {
        free(v);
    }
    uv_close((uv_handle_t *)&r->flush, flush_closed);
    nodes_unref(r);
}

/* ---- events made here ---- */

static void ep_forget(spk_relays_t *r, rep_t *ep);

static void flush_cb(uv_timer_t *t)
{
    spk_relays_t *r = t->data;
    /* Callbacks may queue more (a close of a lost endpoint): those go in this round too. */
    for (size_t i = 0; i < r->n_pending && !r->destroyed; i++) {
        spk_relay_event_t ev = r->pending[i];
        if (ev.type == SPK_RELAY_EV_CLOSED) {
            rep_t *ep = spk_map_get_u64(&r->eps, ev.endpoint_id);
            if (ep != NULL) {
                ep_forget(r, ep);
            }
        }
        r->cb(&ev, r->user);
    }
    r->n_pending = 0;
}

static int flush_init(spk_relays_t *r)
{
    if (uv_timer_init(r->loop, &r->flush) != 0) {
        return SPK_EIO;
    }
    r->flush.data = r;
    r->refs++;
    return 0;
}

static void queue_event(spk_relays_t *r, const rep_t *ep, spk_relay_event_type_t type)
{
    if (r->n_pending == r->cap_pending) {
        size_t cap = r->cap_pending ? r->cap_pending * 2 : 64;
        spk_relay_event_t *p = realloc(r->pending, cap * sizeof(*p));
        if (p == NULL) {
            spk_error(0, "relay nodes: out of memory for events");
            return;
        }
        r->pending = p;
        r->cap_pending = cap;
    }
    spk_relay_event_t *ev = &r->pending[r->n_pending++];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    ev->consult_id = ep->consult->id;
    ev->endpoint_id = ep->id;
    if (type == SPK_RELAY_EV_FAILED) {
        ev->err = SPK_EUNAVAILABLE;
        snprintf(ev->reason, sizeof(ev->reason), "%s", SPK_RELAYS_LOST_REASON);
    } else {
        ev->stats = ep->last;
    }
    uv_timer_start(&r->flush, flush_cb, 0, 0);
}

/* ---- placement ---- */

static bool node_live(const rnode_t *n, uint32_t gen)
{
    return n->state == NODE_UP && n->gen == gen;
}

static void consult_unpin(spk_relays_t *r, rconsult_t *c)
{
    if (c->pinned) {
        c->pinned = false;
        spk_map_del_u64(&r->consults, c->id);
        if (node_live(c->node, c->gen) && c->node->consults > 0) {
            c->node->consults--;
        }
    }
    if (c->n_eps == 0) {
        free(c);
    }
}

static void ep_forget(spk_relays_t *r, rep_t *ep)
{
    spk_map_del_u64(&r->eps, ep->id);
    if (node_live(ep->node, ep->gen) && ep->node->endpoints > 0) {
        ep->node->endpoints--;
    }
    rconsult_t *c = ep->consult;
    free(ep);
    if (--c->n_eps == 0) {
        consult_unpin(r, c);
    }
}

/* A node's consults for placement: this controller's, plus (with shared placement) what the
 * node last reported for all its controllers. */
static uint64_t load_of(const spk_relays_t *r, const rnode_t *n)
{
    return n->consults + (r->place_cb != NULL ? n->rep_consults : 0u);
}

static rnode_t *least_loaded(spk_relays_t *r)
{
    rnode_t *best = NULL;
    for (size_t i = 0; i < r->n_nodes; i++) {
        rnode_t *n = r->nodes[i];
        bool full = n->capacity != 0 && n->rep_endpoints >= n->capacity;
        if (n->state != NODE_UP || full) {
            continue;
        }
        if (best == NULL || load_of(r, n) < load_of(r, best) ||
            (load_of(r, n) == load_of(r, best) && n->endpoints < best->endpoints)) {
            best = n;
        }
    }
    return best;
}

int64_t spk_relays_node_key(const char *name)
{
    return (int64_t)((spk_fnv1a64(name) & (uint64_t)INT64_MAX) | 1u);
}

void spk_relays_pin_name(uint64_t consult_id, char out[SPK_RELAYS_PIN_NAME_LEN])
{
    snprintf(out, SPK_RELAYS_PIN_NAME_LEN, "relay_pin %llu", (unsigned long long)consult_id);
}

void spk_relays_set_placement(spk_relays_t *r, spk_relays_place_cb cb, void *user)
{
    if (r != NULL) {
        r->place_cb = cb;
        r->place_ud = user;
    }
}

static rnode_t *node_by_key(spk_relays_t *r, int64_t key)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        if (r->nodes[i]->key == key) {
            return r->nodes[i];
        }
    }
    return NULL;
}

/* The node of the shared record: `want` unless another controller chose first; a record naming
 * a node that is down here is replaced (once) by `want`. */
static int place_shared(spk_relays_t *r, uint64_t consult_id, rnode_t *want, rnode_t **out)
{
    int64_t chosen = 0;
    int rc = r->place_cb(r->place_ud, consult_id, want->key, 0, &chosen);
    rnode_t *n = rc == 0 ? node_by_key(r, chosen) : NULL;
    if (rc == 0 && n != NULL && n->state != NODE_UP) {
        spk_info(0, "relay nodes: consult %llu moves from %s (down) to %s",
                 (unsigned long long)consult_id, n->name, want->name);
        rc = r->place_cb(r->place_ud, consult_id, want->key, chosen, &chosen);
        n = rc == 0 ? node_by_key(r, chosen) : NULL;
    }
    if (rc != 0) {
        return rc;
    }
    if (n == NULL || n->state != NODE_UP) {
        spk_warn(0, "relay nodes: consult %llu is placed on a node not reachable from here",
                 (unsigned long long)consult_id);
        return SPK_EUNAVAILABLE;
    }
    *out = n;
    return 0;
}

/* The consult's placement, pinning it now when it has none (or its node was lost). */
static int place(spk_relays_t *r, uint64_t consult_id, rconsult_t **out)
{
    rconsult_t *c = spk_map_get_u64(&r->consults, consult_id);
    if (c != NULL && node_live(c->node, c->gen)) {
        *out = c;
        return 0;
    }
    if (c != NULL) {
        consult_unpin(r, c);
    }
    rnode_t *n = least_loaded(r);
    if (n == NULL) {
        return SPK_EUNAVAILABLE;
    }
    if (r->place_cb != NULL) {
        int rc = place_shared(r, consult_id, n, &n);
        if (rc != 0) {
            return rc;
        }
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    c->id = consult_id;
    c->node = n;
    c->gen = n->gen;
    c->pinned = true;
    if (spk_map_put_u64(&r->consults, consult_id, c) != 0) {
        free(c);
        return SPK_ENOMEM;
    }
    n->consults++;
    *out = c;
    return 0;
}

void relays_node_lost(rnode_t *n)
{
    spk_relays_t *r = n->owner;
    uint32_t old = n->gen - 1;
    size_t it = 0;
    void *v;
    while (spk_map_next(&r->eps, &it, &v)) {
        rep_t *ep = v;
        if (ep->node == n && ep->gen == old && !ep->lost) {
            ep->lost = true;
            n->eps_lost++;
            queue_event(r, ep, ep->closing ? SPK_RELAY_EV_CLOSED : SPK_RELAY_EV_FAILED);
        }
    }
    /* Unpin its consults: their next endpoint goes to a living node. */
    rconsult_t *drop[64];
    size_t nd;
    do {
        nd = 0;
        it = 0;
        while (nd < 64 && spk_map_next(&r->consults, &it, &v)) {
            rconsult_t *c = v;
            if (c->node == n) {
                drop[nd++] = c;
            }
        }
        for (size_t i = 0; i < nd; i++) {
            consult_unpin(r, drop[i]);
        }
    } while (nd == 64);
    n->consults = 0;
    n->endpoints = 0;
}

void relays_node_event(rnode_t *n, const spk_relay_event_t *ev)
{
    spk_relays_t *r = n->owner;
    rep_t *ep = spk_map_get_u64(&r->eps, ev->endpoint_id);
    if (ep == NULL || ep->node != n || ep->gen != n->gen || ep->lost) {
        return;
    }
    if (ev->type == SPK_RELAY_EV_STATS) {
        ep->last = ev->stats;
    } else if (ev->type == SPK_RELAY_EV_CLOSED) {
        ep_forget(r, ep);
    }
    r->cb(ev, r->user);
}

/* ---- commands ---- */

/* The endpoint's live node, or NULL when the command is to be dropped (lost node);
 * SPK_EINVAL for bad ids or an unknown endpoint. */
static int route(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id, rep_t **ep,
                 rnode_t **node)
{
    *node = NULL;
    *ep = consult_id && endpoint_id ? spk_map_get_u64(&r->eps, endpoint_id) : NULL;
    if (*ep == NULL || (*ep)->consult->id != consult_id) {
        return SPK_EINVAL;
    }
    if (!(*ep)->lost && node_live((*ep)->node, (*ep)->gen)) {
        *node = (*ep)->node;
    }
    return 0;
}

static int send_cmd(spk_relays_t *r, spk_link_msg_t *m)
{
    rep_t *ep;
    rnode_t *n;
    int rc = route(r, m->consult_id, m->endpoint_id, &ep, &n);
    if (rc != 0 || n == NULL) {
        return rc;
    }
    rc = node_send(n, m);
    return rc == SPK_ESTATE ? 0 : rc;
}

static void local_from(const rnode_t *n, const spk_relay_ice_creds_t *cr, spk_relay_local_t *l)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->ufrag, sizeof(l->ufrag), "%s", cr->ufrag);
    snprintf(l->pwd, sizeof(l->pwd), "%s", cr->pwd);
    snprintf(l->fingerprint, sizeof(l->fingerprint), "%s", n->fingerprint);
    l->ice_lite = n->ice_lite;
}

static int remote_create(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id, unsigned roles,
                         spk_relay_local_t *local)
{
    if (spk_map_get_u64(&r->eps, endpoint_id) != NULL) {
        return SPK_EEXIST;
    }
    rconsult_t *c;
    int rc = place(r, consult_id, &c);
    if (rc != 0) {
        return rc;
    }
    static spk_link_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = SPK_LINK_CREATE;
    m.consult_id = consult_id;
    m.endpoint_id = endpoint_id;
    m.roles = roles;
    spk_relay_ice_creds_t cr;
    rc = spk_relay_ice_credentials(&cr);
    rep_t *ep = rc == 0 ? calloc(1, sizeof(*ep)) : NULL;
    if (rc == 0 && ep == NULL) {
        rc = SPK_ENOMEM;
    }
    if (rc == 0 && spk_map_put_u64(&r->eps, endpoint_id, ep) != 0) {
        free(ep);
        rc = SPK_ENOMEM;
    }
    if (rc != 0) {
        if (c->n_eps == 0) {
            consult_unpin(r, c);
        }
        return rc;
    }
    *ep = (rep_t){.id = endpoint_id, .consult = c, .node = c->node, .gen = c->gen};
    c->n_eps++;
    c->node->endpoints++;
    snprintf(m.local_ufrag, sizeof(m.local_ufrag), "%s", cr.ufrag);
    snprintf(m.local_pwd, sizeof(m.local_pwd), "%s", cr.pwd);
    rc = node_send(c->node, &m);
    spk_debug(0, "relay nodes: endpoint %llu of consult %llu on %s (roles %u): %s",
              (unsigned long long)endpoint_id, (unsigned long long)consult_id, c->node->name, roles,
              rc == 0 ? "sent" : spk_strerror(rc));
    local_from(c->node, &cr, local);
    memset(&cr, 0, sizeof(cr));
    if (rc != 0 && rc != SPK_ESTATE) {
        ep_forget(r, ep);
        return rc;
    }
    return 0;
}

int spk_relays_endpoint_create(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                               unsigned roles, spk_relay_local_t *local)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_endpoint_create(r->local, consult_id, endpoint_id, roles, local);
    }
    if (local == NULL || consult_id == 0 || endpoint_id == 0 ||
        (roles & ~(unsigned)(SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE)) != 0) {
        return SPK_EINVAL;
    }
    return remote_create(r, consult_id, endpoint_id, roles, local);
}

static spk_link_msg_t *cmd(spk_link_type_t type, uint64_t consult_id, uint64_t endpoint_id)
{
    static spk_link_msg_t m; /* loop thread only */
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.consult_id = consult_id;
    m.endpoint_id = endpoint_id;
    return &m;
}

static bool str_fits(const char *s, size_t cap)
{
    return s != NULL && s[0] != '\0' && strnlen(s, cap) < cap;
}

int spk_relays_remote_description(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                                  const char *ufrag, const char *pwd, const char *fingerprint,
                                  spk_relay_setup_t setup)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_remote_description(r->local, consult_id, endpoint_id, ufrag, pwd,
                                            fingerprint, setup);
    }
    if (!str_fits(ufrag, SPK_RELAY_UFRAG_MAX) || !str_fits(pwd, SPK_RELAY_PWD_MAX) ||
        !str_fits(fingerprint, SPK_RELAY_FINGERPRINT_LEN) ||
        (unsigned)setup > SPK_RELAY_SETUP_PASSIVE) {
        return SPK_EINVAL;
    }
    spk_link_msg_t *m = cmd(SPK_LINK_REMOTE_DESCRIPTION, consult_id, endpoint_id);
    snprintf(m->ufrag, sizeof(m->ufrag), "%s", ufrag);
    snprintf(m->pwd, sizeof(m->pwd), "%s", pwd);
    snprintf(m->fingerprint, sizeof(m->fingerprint), "%s", fingerprint);
    m->setup = setup;
    return send_cmd(r, m);
}

int spk_relays_remote_candidate(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                                const char *candidate)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_remote_candidate(r->local, consult_id, endpoint_id, candidate);
    }
    if (candidate != NULL &&
        strnlen(candidate, SPK_RELAY_CANDIDATE_MAX) >= SPK_RELAY_CANDIDATE_MAX) {
        return SPK_EINVAL;
    }
    spk_link_msg_t *m = cmd(SPK_LINK_REMOTE_CANDIDATE, consult_id, endpoint_id);
    snprintf(m->cand, sizeof(m->cand), "%s", candidate != NULL ? candidate : "");
    return send_cmd(r, m);
}

int spk_relays_set_owner(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id, uint64_t owner)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_set_owner(r->local, consult_id, endpoint_id, owner);
    }
    spk_link_msg_t *m = cmd(SPK_LINK_SET_OWNER, consult_id, endpoint_id);
    m->owner = owner;
    return send_cmd(r, m);
}

int spk_relays_set_streams(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const spk_relay_stream_t *streams, size_t n)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_set_streams(r->local, consult_id, endpoint_id, streams, n);
    }
    if ((n > 0 && streams == NULL) || n > SPK_RELAY_MAX_STREAMS) {
        return SPK_EINVAL;
    }
    spk_link_msg_t *m = cmd(SPK_LINK_SET_STREAMS, consult_id, endpoint_id);
    for (size_t i = 0; i < n; i++) {
        if (streams[i].ssrc == 0 || streams[i].pt > 127 || streams[i].rtx_pt > 127) {
            return SPK_EINVAL;
        }
        m->streams[i] = streams[i];
    }
    m->n_streams = n;
    return send_cmd(r, m);
}

int spk_relays_set_ext_map(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const uint8_t map[SPK_RELAY_EXT_IDS])
{
    if (r == NULL || r->destroyed || map == NULL) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_set_ext_map(r->local, consult_id, endpoint_id, map);
    }
    spk_link_msg_t *m = cmd(SPK_LINK_SET_EXT_MAP, consult_id, endpoint_id);
    memcpy(m->ext_map, map, sizeof(m->ext_map));
    return send_cmd(r, m);
}

int spk_relays_set_forwarding(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id, bool on)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_set_forwarding(r->local, consult_id, endpoint_id, on);
    }
    spk_link_msg_t *m = cmd(SPK_LINK_SET_FORWARDING, consult_id, endpoint_id);
    m->on = on;
    return send_cmd(r, m);
}

int spk_relays_ice_restart(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const char *ufrag, const char *pwd, spk_relay_local_t *local)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_ice_restart(r->local, consult_id, endpoint_id, ufrag, pwd, local);
    }
    if (local == NULL || !str_fits(ufrag, SPK_RELAY_UFRAG_MAX) ||
        !str_fits(pwd, SPK_RELAY_PWD_MAX)) {
        return SPK_EINVAL;
    }
    rep_t *ep;
    rnode_t *n;
    int rc = route(r, consult_id, endpoint_id, &ep, &n);
    if (rc != 0) {
        return rc;
    }
    spk_relay_ice_creds_t cr;
    rc = spk_relay_ice_credentials(&cr);
    if (rc != 0) {
        return rc;
    }
    local_from(ep->node, &cr, local);
    spk_link_msg_t *m = cmd(SPK_LINK_ICE_RESTART, consult_id, endpoint_id);
    snprintf(m->ufrag, sizeof(m->ufrag), "%s", ufrag);
    snprintf(m->pwd, sizeof(m->pwd), "%s", pwd);
    snprintf(m->local_ufrag, sizeof(m->local_ufrag), "%s", cr.ufrag);
    snprintf(m->local_pwd, sizeof(m->local_pwd), "%s", cr.pwd);
    memset(&cr, 0, sizeof(cr));
    rc = n != NULL ? node_send(n, m) : 0;
    return rc == SPK_ESTATE ? 0 : rc;
}

int spk_relays_endpoint_close(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_endpoint_close(r->local, consult_id, endpoint_id);
    }
    rep_t *ep;
    rnode_t *n;
    int rc = route(r, consult_id, endpoint_id, &ep, &n);
    if (rc != 0 || ep->closing) {
        return rc;
    }
    ep->closing = true;
    if (n == NULL) {
        queue_event(r, ep, SPK_RELAY_EV_CLOSED);
        return 0;
    }
    rc = node_send(n, cmd(SPK_LINK_CLOSE, consult_id, endpoint_id));
    if (rc != 0) {
        queue_event(r, ep, SPK_RELAY_EV_CLOSED);
    }
    return 0;
}

int spk_relays_stats(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id)
{
    if (r == NULL || r->destroyed) {
        return SPK_EINVAL;
    }
    if (r->local != NULL) {
        return spk_relay_stats(r->local, consult_id, endpoint_id);
    }
    return send_cmd(r, cmd(SPK_LINK_STATS, consult_id, endpoint_id));
}

uint64_t spk_relays_candidates_refused(const spk_relays_t *r)
{
    if (r == NULL) {
        return 0;
    }
    if (r->local != NULL) {
        return spk_relay_candidates_refused(r->local);
    }
    uint64_t n = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        n += r->nodes[i]->refused;
    }
    return n;
}

bool spk_relays_available(const spk_relays_t *r)
{
    if (r == NULL || r->destroyed) {
        return false;
    }
    for (size_t i = 0; r->local == NULL && i < r->n_nodes; i++) {
        if (r->nodes[i]->state == NODE_UP) {
            return true;
        }
    }
    return r->local != NULL;
}

size_t spk_relays_metrics(const spk_relays_t *r, char *buf, size_t cap)
{
    if (cap == 0) {
        return 0;
    }
    buf[0] = '\0';
    if (r == NULL || r->local != NULL || r->n_nodes == 0) {
        return 0;
    }
    static const char *const names[] = {"spk_relay_node_up gauge",
                                        "spk_relay_node_consults gauge",
                                        "spk_relay_node_endpoints gauge",
                                        "spk_relay_node_reported_endpoints gauge",
                                        "spk_relay_node_connects_total counter",
                                        "spk_relay_node_lost_total counter",
                                        "spk_relay_node_endpoints_lost_total counter"};
    size_t o = 0;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char metric[64];
        snprintf(metric, sizeof(metric), "%s", names[k]);
        char *sp = strchr(metric, ' ');
        *sp = '\0';
        int n = snprintf(buf + o, cap - o, "# TYPE %s %s\n", metric, sp + 1);
        for (size_t i = 0; n >= 0 && (size_t)n < cap - o && i < r->n_nodes; i++) {
            o += (size_t)n;
            const rnode_t *nd = r->nodes[i];
            const uint64_t v[] = {nd->state == NODE_UP, nd->consults, nd->endpoints,
                                  nd->rep_endpoints,    nd->connects, nd->lost,
                                  nd->eps_lost};
            n = snprintf(buf + o, cap - o, "%s{node=\"%s\"} %llu\n", metric, nd->name,
                         (unsigned long long)v[k]);
        }
        if (n < 0 || (size_t)n >= cap - o) {
            return o;
        }
        o += (size_t)n;
    }
    return o;
}
