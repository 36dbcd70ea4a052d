/* Events between nodes that share one store (docs/architecture.md "Several nodes").
 *
 * Each node keeps consults and conversations its connections use in memory and tells only its
 * own connections. When several nodes share a PostgreSQL store, a change made on one node is
 * published (spk_sig_io_t.publish_cb; spreekd carries it over Redis) as a small JSON event that
 * names what changed, never the change itself: the other nodes read the consult or the
 * conversation again from the store, which stays the one truth, and tell their connections as
 * if the change had happened there. The exceptions are messages for one participant
 * (admitted, denied, sent_back) and for one user (specialist.invited), carried whole because
 * they are not in the store.
 *
 *   {"n":NODE, "k":"consult", "id":CONSULT, "w":WHAT, "on":{PART:COUNT, ...}}
 *   {"n":NODE, "k":"part", "id":CONSULT, "p":PART, "m":MESSAGE}
 *   {"n":NODE, "k":"chat", "id":CONVERSATION, "seq":SEQ, "kind":KIND}
 *   {"n":NODE, "k":"user", "id":SUB, "iss":ISS, "role":ROLE, "m":MESSAGE}
 *   {"n":NODE, "k":"media", "id":CONSULT, "pubs":{PART:[TRACK, ...], ...}}
 *   {"n":NODE, "k":"media?", "id":CONSULT}
 *   {"n":NODE, "k":"deleg", "id":DELEGATION}   revoked: read it, end access under it here
 *
 *   {"n":NODE, "k":"alive"}   every BUS_ALIVE_MS
 *
 * "on" carries the sending node's presence counts: a participant is online while connections
 * on any node are joined as them. A node not heard for BUS_GONE_MS (killed, cut off) is taken
 * as gone: its counts are dropped and rosters and lobbies here are sent again. A node heard again
 * after that or after BUS_GAP_MS of silence is told this node's consults again (resync). Events
 * wait like answers do for the commit they reveal to be durable (outbox.c), so no node tells a
 * client of a change a crash could still lose. A node that does not have the consult or
 * conversation loaded has nobody to tell and ignores it.
 *
 * Media (media_bus.c): every node drives the consult's one relay node for its own connections,
 * and a subscriber's offer lists the streams of every admitted publisher, so each node says
 * which of its connections publish what in a consult ("media": the whole list, when it changed;
 * tracks are not in the store) and asks for the others' lists when a subscriber starts here
 * ("media?").
 *
 * Access that ends by a decision on another node ends here at once for this node's
 * connections, audited here: a consent withdrawn ("facts": the store's consent is read),
 * a delegation revoked ("deleg"), a participant sent back or denied ("part"/"consult": media
 * here follows the participant's state). The rosters of those consults are then published
 * again (presence changed here). */
#include "core_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/util.h"

#define BUS_ALIVE_MS 2000
#define BUS_GONE_MS 7000
#define BUS_GAP_MS 3500 /* a node silent this long may have sent what did not arrive */
#define BUS_FORGET_MS (10 * 60 * 1000) /* a node gone this long is forgotten */

typedef struct {
    char node[SIG_NODE_LEN];
    uint64_t seen_ms;
    bool gone; /* not heard for BUS_GONE_MS: its presence and publishers were dropped */
} sig_bus_peer_t;

typedef struct sig_bus_out {
    struct sig_bus_out *next;
    uint64_t ticket;
    size_t len;
    char data[];
} sig_bus_out_t;

bool sig_bus_on(const spk_sig_t *s)
{
    return s->io.publish_cb != NULL && !s->bus_rx;
}

static void node_name(spk_sig_t *s)
{
    if (s->node[0] == '\0') {
        uint8_t b[8];
        if (spk_random_bytes(b, sizeof(b)) != 0) {
            memset(b, 0x5a, sizeof(b));
        }
        for (int i = 0; i < 8; i++) {
            snprintf(s->node + 2 * i, 3, "%02x", b[i]);
        }
    }
}

/* Adds the node's name and publishes m (stolen) now or once its commit is durable. */
static void publish(spk_sig_t *s, json_t *m)
{
    if (m == NULL) {
        return;
    }
    node_name(s);
    json_object_set_new(m, "n", json_string(s->node));
    char *txt = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (txt == NULL) {
        return;
    }
    size_t len = strlen(txt);
    bool hold =
        s->bus_head != NULL || s->storage_failed || s->cur_ticket > spk_store_durable(s->store);
    if (!hold) {
        s->bus_published++;
        s->io.publish_cb(s->io.bus_ud, txt, len);
        free(txt);
        return;
    }
    sig_bus_out_t *o = malloc(sizeof(*o) + len + 1);
    if (o != NULL) {
        o->next = NULL;
        o->ticket = s->cur_ticket;
        o->len = len;
        memcpy(o->data, txt, len + 1);
        if (s->bus_tail != NULL) {
            s->bus_tail->next = o;
        } else {
            s->bus_head = o;
        }
        s->bus_tail = o;
    }
    free(txt);
}

void sig_bus_publish_media(spk_sig_t *s, json_t *m)
{
    if (s->io.publish_cb == NULL) {
        json_decref(m);
        return;
    }
    publish(s, m);
}

void sig_bus_release(spk_sig_t *s, uint64_t durable)
{
    while (s->bus_head != NULL && s->bus_head->ticket <= durable) {
        sig_bus_out_t *o = s->bus_head;
        s->bus_head = o->next;
        s->bus_published++;
        s->io.publish_cb(s->io.bus_ud, o->data, o->len);
        free(o);
    }
    if (s->bus_head == NULL) {
        s->bus_tail = NULL;
    }
}

void sig_bus_free(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->bus_peers, &it, &v)) {
        free(v);
    }
    spk_map_free(&s->bus_peers);
    while (s->bus_head != NULL) {
        sig_bus_out_t *o = s->bus_head;
        s->bus_head = o->next;
        free(o);
    }
    s->bus_tail = NULL;
}

int sig_part_online(const sig_part_t *p)
{
    int n = p->online;
    for (int i = 0; i < SIG_BUS_NODES; i++) {
        n += p->rnode[i][0] != '\0' ? p->ronline[i] : 0;
    }
    return n;
}

void sig_bus_consult(spk_sig_t *s, const sig_consult_t *c, const char *what)
{
    if (!sig_bus_on(s)) {
        return;
    }
    json_t *on = json_object();
    for (size_t i = 0; on != NULL && i < c->n_parts; i++) {
        json_object_set_new(on, c->parts[i]->rec.id, json_integer(c->parts[i]->online));
    }
    publish(
        s, json_pack("{s:s, s:s, s:s, s:o}", "k", "consult", "id", c->rec.id, "w", what, "on", on));
}

void sig_bus_part(spk_sig_t *s, const sig_consult_t *c, const sig_part_t *p, const json_t *msg)
{
    if (!sig_bus_on(s)) {
        return;
    }
    publish(s, json_pack("{s:s, s:s, s:s, s:O}", "k", "part", "id", c->rec.id, "p", p->rec.id, "m",
                         msg));
}

void sig_bus_user(spk_sig_t *s, spk_role_t role, const char *iss, const char *sub,
                  const json_t *msg)
{
    if (!sig_bus_on(s)) {
        return;
    }
    publish(s, json_pack("{s:s, s:s, s:i, s:s, s:O}", "k", "user", "id", sub, "role", (int)role,
                         "iss", iss, "m", msg));
}

void sig_bus_chat(spk_sig_t *s, const char *conv, int64_t seq, int kind)
{
    if (!sig_bus_on(s)) {
        return;
    }
    publish(s, json_pack("{s:s, s:s, s:I, s:i}", "k", "chat", "id", conv, "seq", (json_int_t)seq,
                         "kind", kind));
}

void sig_bus_delegation(spk_sig_t *s, const char *id)
{
    if (!sig_bus_on(s)) {
        return;
    }
    publish(s, json_pack("{s:s, s:s}", "k", "deleg", "id", id));
}

void sig_bus_access_ended(spk_sig_t *s, const sig_consult_t *c)
{
    if (!s->bus_rx || s->io.publish_cb == NULL) {
        return;
    }
    for (int i = 0; i < s->n_bus_again; i++) {
        if (strcmp(s->bus_again[i], c->rec.id) == 0) {
            return;
        }
    }
    if (s->n_bus_again < (int)(sizeof(s->bus_again) / sizeof(s->bus_again[0]))) {
        snprintf(s->bus_again[s->n_bus_again++], SPK_ID_LEN, "%s", c->rec.id);
    }
}

/* The rosters of consults where access ended here while handling bus input: the other nodes
 * see the presence this node has now. */
static void publish_again(spk_sig_t *s)
{
    for (int i = 0; i < s->n_bus_again; i++) {
        sig_consult_t *c = sig_consult_cached(s, s->bus_again[i]);
        if (c != NULL) {
            sig_bus_consult(s, c, "roster");
        }
    }
    s->n_bus_again = 0;
}

/* Access decided on another node that this node enforces for its own connections: a consent
 * withdrawn (specialists leave), a delegation revoked (the remote GP leaves the practice's
 * consults). The store says what holds now; ending access is audited here (access.c). */
static void consent_check(spk_sig_t *s, sig_consult_t *c)
{
    spk_fact_rec_t f;
    if (spk_store_fact_get(s->store, c->rec.id, "consent", "", "meekijkconsult", &f) == 0 &&
        strncmp(f.value, "refused", 7) == 0) {
        sig_access_consent_withdrawn(s, c);
    }
}

static void on_delegation(spk_sig_t *s, const char *id)
{
    spk_delegation_rec_t d;
    int rc = spk_store_delegation_get(s->store, id, &d);
    if (rc != 0) {
        s->bus_bad += rc == SPK_ENOTFOUND;
        return;
    }
    if (d.revoked_at != 0) {
        sig_chat_access_changed(s);
        sig_access_delegation_revoked(s, &d);
    }
}

/* ---- nodes that are alive ---- */

/* What another node may have missed of this node's consults is said again (presence, media
 * lists), and what this node may have missed of theirs is asked for (media lists): after a
 * silence (Redis down or paused, a node's loop stalled) the bus delivers nothing of what was
 * published meanwhile, and a node taken as gone lost this node's presence and publishers. */
static void resync(spk_sig_t *s, bool presence)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        sig_consult_t *c = v;
        if (c->n_conns > 0 && c->rec.state == SPK_CONSULT_OPEN) {
            if (presence) {
                sig_bus_consult(s, c, "roster");
            }
            sig_media_bus_resync(s, c);
        }
    }
}

static void heard(spk_sig_t *s, const char *node)
{
    sig_bus_peer_t *p = spk_map_get_str(&s->bus_peers, node);
    uint64_t now = spk_now_ms();
    if (p != NULL && (p->gone || now - p->seen_ms >= BUS_GAP_MS)) {
        spk_info(0, "bus: node %s heard again after %llu ms%s: consults said again", node,
                 (unsigned long long)(now - p->seen_ms), p->gone ? " (taken as gone)" : "");
        resync(s, p->gone);
        p->gone = false;
    }
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
            return;
        }
        snprintf(p->node, sizeof(p->node), "%s", node);
        if (spk_map_put_str(&s->bus_peers, p->node, p) != 0) {
            free(p);
            return;
        }
    }
    p->seen_ms = now;
}

size_t sig_bus_nodes(spk_sig_t *s)
{
    size_t n = 0, it = 0;
    void *v;
    while (spk_map_next(&s->bus_peers, &it, &v)) {
        n += !((sig_bus_peer_t *)v)->gone;
    }
    return n;
}

/* Drops node's presence counts; rosters and lobbies of the consults it had are sent again. */
static void node_gone(spk_sig_t *s, const char *node)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        sig_consult_t *c = v;
        bool changed = false;
        for (size_t i = 0; i < c->n_parts; i++) {
            sig_part_t *p = c->parts[i];
            for (int k = 0; k < SIG_BUS_NODES; k++) {
                if (strcmp(p->rnode[k], node) == 0) {
                    changed |= p->ronline[k] > 0;
                    p->rnode[k][0] = '\0';
                    p->ronline[k] = 0;
                }
            }
        }
        if (changed && c->rec.state == SPK_CONSULT_OPEN) {
            sig_broadcast_roster(s, c);
            sig_broadcast_lobby(s, c);
        }
    }
    sig_media_bus_node_gone(s, node);
}

void sig_bus_tick(spk_sig_t *s, uint64_t now_ms)
{
    if (s->io.publish_cb == NULL) {
        return;
    }
    if (now_ms - s->bus_alive_at >= BUS_ALIVE_MS) {
        s->bus_alive_at = now_ms;
        node_name(s);
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "{\"n\":\"%s\",\"k\":\"alive\"}", s->node);
        s->io.publish_cb(s->io.bus_ud, msg, (size_t)n);
    }
    sig_bus_peer_t *gone[16];
    size_t n = 0, it = 0;
    void *v;
    uint64_t now = spk_now_ms();
    while (n < sizeof(gone) / sizeof(gone[0]) && spk_map_next(&s->bus_peers, &it, &v)) {
        sig_bus_peer_t *p = v;
        if ((!p->gone && now - p->seen_ms >= BUS_GONE_MS) || now - p->seen_ms >= BUS_FORGET_MS) {
            gone[n++] = p;
        }
    }
    s->bus_rx = true; /* the other nodes decide for themselves */
    for (size_t i = 0; i < n; i++) {
        if (gone[i]->gone) {
            spk_map_del_str(&s->bus_peers, gone[i]->node); /* not back: forgotten */
            free(gone[i]);
            continue;
        }
        spk_warn(0, "bus: node %s not heard for %d s: its connections count as gone", gone[i]->node,
                 BUS_GONE_MS / 1000);
        gone[i]->gone = true;
        node_gone(s, gone[i]->node);
    }
    s->bus_rx = false;
}

/* ---- input ---- */

static void set_remote(sig_part_t *p, const char *node, int n)
{
    int free_at = -1;
    for (int i = 0; i < SIG_BUS_NODES; i++) {
        if (strcmp(p->rnode[i], node) == 0) {
            p->ronline[i] = n;
            return;
        }
        if (free_at < 0 && (p->rnode[i][0] == '\0' || p->ronline[i] == 0)) {
            free_at = i;
        }
    }
    if (free_at >= 0 && n > 0) {
        snprintf(p->rnode[free_at], SIG_NODE_LEN, "%s", node);
        p->ronline[free_at] = n;
    }
}

static void on_consult(spk_sig_t *s, sig_consult_t *c, const char *node, json_t *ev)
{
    json_t *on = json_object_get(ev, "on");
    const char *key;
    json_t *v;
    json_object_foreach(on, key, v)
    {
        sig_part_t *p = sig_part_find(c, key);
        if (p != NULL && json_is_integer(v)) {
            set_remote(p, node, (int)json_integer_value(v));
        }
    }
    const char *what = json_string_value(json_object_get(ev, "w"));
    if (what == NULL) {
        return;
    }
    if (strcmp(what, "ended") == 0) {
        if (c->rec.state == SPK_CONSULT_ENDED) {
            sig_consult_ended(s, c);
        }
    } else if (strcmp(what, "roster") == 0) {
        sig_broadcast_roster(s, c);
    } else if (strcmp(what, "lobby") == 0) {
        sig_broadcast_lobby(s, c);
    } else if (strcmp(what, "facts") == 0) {
        sig_broadcast_facts(s, c);
        consent_check(s, c);
    }
}

static void on_part(spk_sig_t *s, sig_consult_t *c, json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "p"));
    sig_part_t *p = id != NULL ? sig_part_find(c, id) : NULL;
    json_t *m = json_object_get(ev, "m");
    if (p == NULL || !json_is_object(m)) {
        s->bus_bad++;
        return;
    }
    sig_send_to_part(s, c, p, json_incref(m));
    sig_chat_access_changed(s); /* a consult's chat follows admission */
}

void spk_sig_bus_input(spk_sig_t *s, const char *msg, size_t len)
{
    json_t *ev = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL);
    const char *node = json_string_value(json_object_get(ev, "n"));
    const char *kind = json_string_value(json_object_get(ev, "k"));
    const char *id = json_string_value(json_object_get(ev, "id"));
    if (node == NULL || kind == NULL || strlen(node) >= SIG_NODE_LEN ||
        (id == NULL && strcmp(kind, "alive") != 0)) {
        s->bus_bad++;
        json_decref(ev);
        return;
    }
    node_name(s);
    if (strcmp(node, s->node) == 0) {
        json_decref(ev);
        return;
    }
    sig_chat_flush(s); /* nothing enters the core past a waiting batch */
    s->bus_received++;
    heard(s, node);
    s->bus_rx = true;
    if (strcmp(kind, "alive") == 0) {
        /* heard */
    } else if (strcmp(kind, "user") == 0) {
        const char *iss = json_string_value(json_object_get(ev, "iss"));
        json_t *role = json_object_get(ev, "role");
        json_t *m = json_object_get(ev, "m");
        if (iss != NULL && json_is_integer(role) && json_is_object(m)) {
            sig_send_to_user(s, (spk_role_t)json_integer_value(role), iss, id, json_incref(m));
        } else {
            s->bus_bad++;
        }
    } else if (strcmp(kind, "chat") == 0) {
        json_t *seq = json_object_get(ev, "seq");
        sig_chat_catch_up(s, id, json_is_integer(seq) ? json_integer_value(seq) : 0,
                          (int)json_integer_value(json_object_get(ev, "kind")));
    } else if (strcmp(kind, "consult") == 0 || strcmp(kind, "part") == 0) {
        sig_consult_t *c = sig_consult_cached(s, id);
        int rc = c != NULL ? sig_consult_reload(s, c) : SPK_ENOTFOUND;
        if (rc == 0 && kind[0] == 'c') {
            on_consult(s, c, node, ev);
        } else if (rc == 0) {
            on_part(s, c, ev);
        } else if (rc != SPK_ENOTFOUND) {
            spk_warn(0, "bus: cannot read consult %s again: %s", id, spk_strerror(rc));
        }
        if (rc == 0 && c->rec.state == SPK_CONSULT_OPEN) {
            /* media here ends with access decided there (send-back, deny, ...) */
            sig_media_consult_changed(s, c);
        }
    } else if (strcmp(kind, "deleg") == 0) {
        on_delegation(s, id);
    } else if (strcmp(kind, "media") == 0 || strcmp(kind, "media?") == 0) {
        sig_consult_t *c = sig_consult_cached(s, id);
        if (c != NULL) {
            sig_media_bus_input(s, c, node, kind, ev);
        }
    } else {
        s->bus_bad++;
    }
    s->bus_rx = false;
    publish_again(s);
    json_decref(ev);
}
