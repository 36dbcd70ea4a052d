/* spk/relays.h internals: the relay set, its nodes and their links (loop thread only). */
#ifndef SPK_NODES_INT_H
#define SPK_NODES_INT_H

#include "spk/map.h"
#include "spk/relay_link.h"
#include "spk/relay_tls.h"
#include "spk/relays.h"

typedef struct rconn rconn_t;

typedef enum {
    NODE_DOWN = 0,
    NODE_RESOLVING,
    NODE_CONNECTING,
    NODE_HANDSHAKE,
    NODE_UP
} node_state_t;

typedef struct rnode {
    spk_relays_t *owner;
    char name[280]; /* "host:port" as configured: the metrics label */
    int64_t key;    /* spk_relays_node_key(name): its name in shared placement records */
    char host[256];
    char port[8];
    node_state_t state;
    uint32_t gen; /* bumped whenever the link drops: endpoints of older generations are lost */
    rconn_t *conn;
    uv_timer_t timer;
    uint64_t next_attempt_ms, last_rx_ms, last_tx_ms, state_since_ms;
    unsigned backoff_ms;
    /* from HELLO */
    char node_id[SPK_LINK_NODE_ID_MAX];
    char fingerprint[SPK_RELAY_FINGERPRINT_LEN];
    bool ice_lite;
    uint32_t capacity;
    /* from LOAD */
    uint32_t rep_endpoints, rep_consults;
    uint64_t refused;
    /* this controller's, on the current generation */
    uint32_t consults, endpoints;
    uint64_t connects, lost, eps_lost;
} rnode_t;

/* A consult's placement; referenced by its endpoints, so it outlives its pin. */
typedef struct {
    uint64_t id;
    rnode_t *node;
    uint32_t gen;
    unsigned n_eps;
    bool pinned; /* the consults map points here */
} rconsult_t;

typedef struct {
    uint64_t id;
    rconsult_t *consult;
    rnode_t *node;
    uint32_t gen;
    bool closing; /* close sent: CLOSED is next */
    bool lost;    /* its node's link dropped: FAILED sent */
    /* The last counters the node reported: a CLOSED made here carries them, so that counter
     * totals built from CLOSED events never go back. */
    spk_relay_stats_t last;
} rep_t;

struct spk_relays_s {
    uv_loop_t *loop;
    spk_relays_event_cb cb;
    void *user;
    bool destroyed;
    unsigned refs; /* open handles and requests, plus one until destroyed */
    spk_relay_t *local;
    /* relay nodes */
    rnode_t *nodes[SPK_RELAYS_MAX_NODES];
    size_t n_nodes;
    char secret[SPK_LINK_SECRET_MAX + 1];
    size_t secret_len;
    spk_relay_tls_ctx_t *tls;
    spk_map_t consults;           /* consult id -> rconsult_t* (pinned) */
    spk_relays_place_cb place_cb; /* shared placement, or NULL */
    void *place_ud;
    spk_map_t eps; /* endpoint id -> rep_t* */
    /* events made here (lost node, close of a lost endpoint), delivered from the loop */
    spk_relay_event_t *pending;
    size_t n_pending, cap_pending;
    uv_timer_t flush;
};

/* node_link.c */
int node_start(spk_relays_t *r, rnode_t *n);
void node_stop(rnode_t *n);
/* Encodes and writes one message; SPK_ESTATE when the node is not up. */
int node_send(rnode_t *n, const spk_link_msg_t *msg);
uint64_t node_now_ms(const rnode_t *n);
void nodes_unref(spk_relays_t *r);

/* relays.c, called by node_link.c */
void relays_node_event(rnode_t *n, const spk_relay_event_t *ev);
void relays_node_lost(rnode_t *n);

#endif
