/* The relays a controller (spreekd) drives, behind one interface: either the in-process relay
 * (spk/relay.h, the embedded default, passed straight through) or relay nodes, separate
 * spreek-relay processes reached over the relay link (spk/relay_link.h).
 *
 * The commands and events are those of spk/relay.h, with the same meaning, ids and order per
 * endpoint; the control thread (the thread running the loop) calls everything here.
 *
 * Relay nodes. Each consult is pinned to one node while it has endpoints: the first endpoint
 * of a consult places it on the connected node with the fewest consults (then endpoints) from
 * this controller, among those below their announced capacity; when none is connected,
 * endpoint creation is SPK_EUNAVAILABLE. The local ICE credentials are chosen here and sent
 * with the command; the DTLS fingerprint and ICE mode are the node's, from its HELLO. When a
 * node's link drops (closed, broken, or silent for SPK_RELAYS_DEAD_MS), every endpoint on it
 * gets a FAILED event at once with err SPK_EUNAVAILABLE and reason SPK_RELAYS_LOST_REASON (an
 * endpoint already being closed gets its CLOSED event instead); their consults are unpinned,
 * so the next endpoint of such a consult is placed on a living node. Commands for an endpoint
 * on a lost node are dropped (0); its close answers CLOSED. The controller reconnects to a lost
 * node (after 0.5 s, doubling up to 5 s) and places consults on it again once it is back.
 * Events of this kind are delivered from the loop, never from inside a command. */
#ifndef SPK_RELAYS_H
#define SPK_RELAYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "spk/relay.h"

typedef struct spk_relays_s spk_relays_t;

#define SPK_RELAYS_MAX_NODES 32
#define SPK_RELAYS_LOST_REASON "relay_node_lost"
/* Keep-alive interval and how long a silent link counts as alive. */
#define SPK_RELAYS_KEEPALIVE_MS 1000
#define SPK_RELAYS_DEAD_MS 3500

/* Called on the loop's thread; the event is borrowed. The callback may call commands, not
 * spk_relays_destroy(). */
typedef void (*spk_relays_event_cb)(const spk_relay_event_t *ev, void *user);

/* The in-process relay: spk_relay_new() with cfg. Errors as spk_relay_new(). */
int spk_relays_new_local(uv_loop_t *loop, const spk_relay_config_t *cfg, spk_relays_event_cb cb,
                         void *user, spk_relays_t **out);

typedef struct {
    /* "host:port" entries ("[v6]:port" for IPv6 literals), comma or space separated. */
    const char *nodes;
    /* The shared secret of the relay link (SPK_LINK_SECRET_MIN..SPK_LINK_SECRET_MAX bytes). */
    const char *secret;
} spk_relays_remote_config_t;

/* Relay nodes: starts connecting to each; returns at once (nodes come up asynchronously).
 * SPK_ECONFIG for a bad node list or secret, SPK_ENOMEM. */
int spk_relays_new_remote(uv_loop_t *loop, const spk_relays_remote_config_t *cfg,
                          spk_relays_event_cb cb, void *user, spk_relays_t **out);

/* Stops everything; no events after this. Memory is released once the loop has run the close
 * callbacks (run it once more). */
void spk_relays_destroy(spk_relays_t *r);

/* Commands: as spk_relay_*() in spk/relay.h. */
int spk_relays_endpoint_create(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                               unsigned roles, spk_relay_local_t *local);
int spk_relays_remote_description(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                                  const char *ufrag, const char *pwd, const char *fingerprint,
                                  spk_relay_setup_t setup);
int spk_relays_remote_candidate(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                                const char *candidate);
int spk_relays_set_owner(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                         uint64_t owner);
int spk_relays_set_streams(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const spk_relay_stream_t *streams, size_t n);
int spk_relays_set_ext_map(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const uint8_t map[SPK_RELAY_EXT_IDS]);
int spk_relays_set_forwarding(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id, bool on);
int spk_relays_ice_restart(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id,
                           const char *ufrag, const char *pwd, spk_relay_local_t *local);
int spk_relays_endpoint_close(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id);
int spk_relays_stats(spk_relays_t *r, uint64_t consult_id, uint64_t endpoint_id);

/* Remote candidates refused by the address filters (all nodes' last reports for remote). */
uint64_t spk_relays_candidates_refused(const spk_relays_t *r);

/* Prometheus text for the relay nodes (nothing for the in-process relay): per node, labelled
 * node="host:port", spk_relay_node_up, spk_relay_node_consults, spk_relay_node_endpoints (this
 * controller's), spk_relay_node_reported_endpoints (the node's LOAD), and the counters
 * spk_relay_node_connects_total, spk_relay_node_lost_total, spk_relay_node_endpoints_lost_total.
 * Returns the length written (truncated to cap - 1). */
size_t spk_relays_metrics(const spk_relays_t *r, char *buf, size_t cap);

/* Shared placement, for several controllers driving the same relay nodes (spreekd nodes on one
 * store). Without it each controller places consults by itself. With it, a consult that needs a
 * node here asks cb, which keeps one record per consult where every controller sees it: cb sets
 * the record to `want` when there is none or it holds `replace` (0: none), atomically, and
 * returns the record in *chosen (another controller's choice when it came first). Nodes are
 * named by spk_relays_node_key() of their configured "host:port", so every controller must list
 * a node under the same name. A record naming a node that is not up here is replaced by this
 * controller's choice (its node was lost: the consult moves for everyone); one naming a node
 * this controller does not know is SPK_EUNAVAILABLE. Errors of cb are returned as they are. */
typedef int (*spk_relays_place_cb)(void *user, uint64_t consult_id, int64_t want, int64_t replace,
                                   int64_t *chosen);
void spk_relays_set_placement(spk_relays_t *r, spk_relays_place_cb cb, void *user);
/* A node's name in placement records: FNV-1a 64 of "host:port", positive and nonzero. */
int64_t spk_relays_node_key(const char *name);
/* The name of a consult's placement record as a store mark ("relay_pin <consult id>"), the one
 * spreekd's cb keeps; spreekd deletes it when the consult ends. */
#define SPK_RELAYS_PIN_NAME_LEN 32
void spk_relays_pin_name(uint64_t consult_id, char out[SPK_RELAYS_PIN_NAME_LEN]);

/* Whether endpoints can be created now (in-process: always; nodes: at least one is up). */
bool spk_relays_available(const spk_relays_t *r);

#endif
