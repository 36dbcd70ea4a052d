/* Media worker: a thread running a GLib main context that owns its consults' libnice agents.
 * Commands arrive on a queue with an eventfd wake-up; everything else happens in callbacks on
 * this thread. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define TICK_MS 500
/* Receive buffer of an endpoint's selected socket (capped by net.core.rmem_max): the default
 * ~208 KiB holds only ~90 ms of a 1,000-packet/s endpoint, so a worker that is not scheduled
 * for a moment (a busy host) drops datagrams in the kernel. */
#define RCVBUF_BYTES (1 << 20)

/* ---- command queue ---- */

int spk_relay_worker_post(spk_relay_worker_t *w, spk_relay_cmd_t *cmd)
{
    cmd->next = NULL;
    bool always = cmd->type == SPK_RELAY_CMD_CLOSE || cmd->type == SPK_RELAY_CMD_STOP;
    pthread_mutex_lock(&w->mu);
    if (w->n_cmds >= SPK_RELAY_CMD_QUEUE_MAX && !always) {
        pthread_mutex_unlock(&w->mu);
        spk_warn(0, "relay: worker %u: command queue full; command refused", w->index);
        free(cmd);
        return SPK_ENOMEM;
    }
    w->n_cmds++;
    if (w->tail) {
        w->tail->next = cmd;
    } else {
        w->head = cmd;
    }
    w->tail = cmd;
    pthread_mutex_unlock(&w->mu);
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(w->wake_fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    return 0;
}

static void free_cmds(spk_relay_cmd_t *c)
{
    while (c) {
        spk_relay_cmd_t *next = c->next;
        spk_wipe(c, sizeof(*c));
        free(c);
        c = next;
    }
}

/* ---- endpoints ---- */

static spk_relay_ice_state_t map_state(guint state)
{
    switch (state) {
    case NICE_COMPONENT_STATE_GATHERING:
        return SPK_RELAY_ICE_GATHERING;
    case NICE_COMPONENT_STATE_CONNECTING:
        return SPK_RELAY_ICE_CHECKING;
    case NICE_COMPONENT_STATE_CONNECTED:
        return SPK_RELAY_ICE_CONNECTED;
    case NICE_COMPONENT_STATE_READY:
        return SPK_RELAY_ICE_READY;
    case NICE_COMPONENT_STATE_FAILED:
        return SPK_RELAY_ICE_FAILED;
    default:
        return SPK_RELAY_ICE_NEW;
    }
}

static void set_rcvbuf(spk_relay_ep_t *ep)
{
    GSocket *s = nice_agent_get_selected_socket(ep->agent, ep->stream, 1);
    if (s) {
        int v = RCVBUF_BYTES;
        setsockopt(g_socket_get_fd(s), SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
        g_object_unref(s);
    }
}

static void on_state(NiceAgent *agent, guint stream_id, guint component_id, guint state,
                     gpointer user)
{
    spk_relay_ep_t *ep = user;
    spk_relay_ice_state_t s = map_state(state);
    if (s == ep->ice_state) {
        return;
    }
    ep->ice_state = s;
    spk_relay_io_pair_changed(ep);
    spk_relay_io_ep_sync(ep);
    spk_debug(0, "relay: endpoint %llu: ICE %s", (unsigned long long)ep->id,
              spk_relay_ice_state_name(s));
    spk_relay_ep_event(ep, SPK_RELAY_EV_ICE_STATE);
    if (s == SPK_RELAY_ICE_FAILED) {
        spk_relay_ep_fail(ep, SPK_ETIMEOUT,
                          ep->dtls_done ? "ICE consent lost" : "ICE connectivity checks failed");
    } else if (s == SPK_RELAY_ICE_CONNECTED || s == SPK_RELAY_ICE_READY) {
        set_rcvbuf(ep);
        spk_relay_dtls_start(ep);
    }
}

static void on_selected_pair(NiceAgent *agent, guint stream_id, guint component_id,
                             NiceCandidate *local, NiceCandidate *remote, gpointer user)
{
    spk_relay_ep_t *ep = user;
    spk_relay_io_pair_changed(ep);
    spk_relay_io_ep_sync(ep);
}

static void on_candidate(NiceAgent *agent, NiceCandidate *cand, gpointer user)
{
    spk_relay_ep_t *ep = user;
    gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, cand);
    if (!sdp) {
        return;
    }
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SPK_RELAY_EV_LOCAL_CANDIDATE;
    ev.consult_id = ep->consult->id;
    ev.endpoint_id = ep->id;
    const char *line = strncmp(sdp, "a=", 2) == 0 ? sdp + 2 : sdp;
    if (strlen(line) < sizeof(ev.cand)) {
        memcpy(ev.cand, line, strlen(line) + 1);
        spk_relay_emit(ep->w->relay, &ev);
    }
    g_free(sdp);
}

static void on_gathering_done(NiceAgent *agent, guint stream_id, gpointer user)
{
    spk_relay_ep_t *ep = user;
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SPK_RELAY_EV_LOCAL_CANDIDATE;
    ev.consult_id = ep->consult->id;
    ev.endpoint_id = ep->id;
    spk_relay_emit(ep->w->relay, &ev);
}

static void ep_free(spk_relay_ep_t *ep)
{
    spk_relay_dtls_free(ep);
    spk_relay_rtcp_ep_free(ep);
    if (ep->agent) {
        g_signal_handlers_disconnect_by_data(ep->agent, ep);
        spk_relay_io_ep_detach(ep);
        if (ep->stream) {
            nice_agent_remove_stream(ep->agent, ep->stream);
        }
        g_object_unref(ep->agent);
        ep->agent = NULL;
    }
    spk_wipe(ep->remote_fp, sizeof(ep->remote_fp));
    free(ep);
}

static int ep_agent_new(spk_relay_ep_t *ep, const spk_relay_cmd_t *cmd)
{
    spk_relay_t *relay = ep->w->relay;
    /* Not libnice's RFC 7675 consent freshness: it gives up on a pair about 10 s after the last
     * answered consent check, so a network outage of a few seconds ends the call although both
     * sides would carry on. The relay's own rule (tick_cb: nothing that authenticates, i.e.
     * SRTP or SRTCP from the peer, received for consent_timeout_ms) stops sending to a peer
     * that went away; a browser sends RTCP at least every few seconds even when it only
     * receives. */
    NiceAgentOption opts = NICE_AGENT_OPTION_ICE_TRICKLE;
    if (relay->cfg.ice_lite) {
        opts |= NICE_AGENT_OPTION_LITE_MODE;
    }
    ep->agent = nice_agent_new_full(ep->w->ctx, NICE_COMPATIBILITY_RFC5245, opts);
    if (!ep->agent) {
        return SPK_ENOMEM;
    }
    /* RFC 8445 6.1.1: the offerer controls, unless it is lite. The relay offers on a subscribe
     * connection (a browser answering it takes the controlled role: were both controlled, every
     * connection would start with a role conflict to resolve) and answers on a publish one. */
    bool controlling = !relay->cfg.ice_lite && ep->roles == SPK_RELAY_ROLE_SUBSCRIBE;
    g_object_set(ep->agent, "upnp", FALSE, "ice-tcp", (gboolean)relay->cfg.ice_tcp, "ice-udp", TRUE,
                 "controlling-mode", (gboolean)controlling, NULL);
    for (size_t i = 0; i < relay->n_addrs; i++) {
        nice_agent_add_local_address(ep->agent, &relay->addrs[i]);
    }
    g_signal_connect(ep->agent, "component-state-changed", G_CALLBACK(on_state), ep);
    g_signal_connect(ep->agent, "new-candidate-full", G_CALLBACK(on_candidate), ep);
    g_signal_connect(ep->agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ep);
    g_signal_connect(ep->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ep);
    ep->stream = nice_agent_add_stream(ep->agent, 1);
    if (ep->stream == 0) {
        return SPK_ENOMEM;
    }
    if (relay->cfg.port_min || relay->cfg.port_max) {
        nice_agent_set_port_range(ep->agent, ep->stream, 1, relay->cfg.port_min,
                                  relay->cfg.port_max);
    }
    if (!nice_agent_set_local_credentials(ep->agent, ep->stream, cmd->local_ufrag,
                                          cmd->local_pwd)) {
        return SPK_EINVAL;
    }
    int rc = spk_relay_io_ep_attach(ep);
    if (rc != 0) {
        return rc;
    }
    if (!nice_agent_gather_candidates(ep->agent, ep->stream)) {
        return SPK_EIO;
    }
    spk_relay_io_ep_sync(ep);
    return 0;
}

static spk_relay_consult_t *consult_get(spk_relay_worker_t *w, uint64_t id, bool create)
{
    spk_relay_consult_t *c = spk_map_get_u64(&w->consults, id);
    if (c || !create) {
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->id = id;
    if (spk_map_put_u64(&w->consults, id, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void consult_remove_ep(spk_relay_worker_t *w, spk_relay_ep_t *ep)
{
    spk_relay_consult_t *c = ep->consult;
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->eps[i] == ep) {
            c->eps[i] = c->eps[c->n - 1];
            c->eps[--c->n] = NULL;
            break;
        }
    }
    if (c->n == 0) {
        spk_map_del_u64(&w->consults, c->id);
        free(c);
    }
    ep->consult = NULL;
}

static void create_fail(spk_relay_worker_t *w, const spk_relay_cmd_t *cmd, int err, const char *why)
{
    spk_relay_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = SPK_RELAY_EV_FAILED;
    ev.consult_id = cmd->consult_id;
    ev.endpoint_id = cmd->endpoint_id;
    ev.err = err;
    snprintf(ev.reason, sizeof(ev.reason), "%s", why);
    spk_warn(cmd->endpoint_id, "relay: endpoint create failed: %s", why);
    spk_relay_emit(w->relay, &ev);
}

static void cmd_create(spk_relay_worker_t *w, const spk_relay_cmd_t *cmd)
{
    if (spk_map_get_u64(&w->endpoints, cmd->endpoint_id)) {
        create_fail(w, cmd, SPK_EEXIST, "endpoint id in use");
        return;
    }
    spk_relay_consult_t *c = consult_get(w, cmd->consult_id, true);
    if (!c) {
        create_fail(w, cmd, SPK_ENOMEM, "out of memory");
        return;
    }
    if (c->n >= SPK_RELAY_MAX_CONSULT_ENDPOINTS) {
        create_fail(w, cmd, SPK_ETOOMANY, "too many endpoints in consult");
        return;
    }
    spk_relay_ep_t *ep = calloc(1, sizeof(*ep));
    if (!ep || spk_map_put_u64(&w->endpoints, cmd->endpoint_id, ep) != 0) {
        free(ep);
        if (c->n == 0) {
            spk_map_del_u64(&w->consults, c->id);
            free(c);
        }
        create_fail(w, cmd, SPK_ENOMEM, "out of memory");
        return;
    }
    ep->w = w;
    ep->tx_fd = -1;
    ep->id = cmd->endpoint_id;
    ep->roles = cmd->roles;
    ep->consult = c;
    c->eps[c->n++] = ep;
    ep->created_ns = spk_mono_ns();
    spk_relay_rtcp_ep_init(ep);
    int rc = ep_agent_new(ep, cmd);
    if (rc != 0) {
        spk_relay_ep_fail(ep, rc, "ICE agent setup failed");
    }
}

static void ep_close(spk_relay_worker_t *w, spk_relay_ep_t *ep, bool notify)
{
    spk_map_del_u64(&w->endpoints, ep->id);
    uint64_t consult_id = ep->consult ? ep->consult->id : 0;
    consult_remove_ep(w, ep);
    if (notify) {
        spk_relay_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = SPK_RELAY_EV_CLOSED;
        ev.consult_id = consult_id;
        ev.endpoint_id = ep->id;
        ev.ice_state = ep->ice_state;
        ev.stats = ep->st;
        spk_relay_emit(w->relay, &ev);
    }
    spk_debug(0, "relay: endpoint %llu: endpoint closed", (unsigned long long)ep->id);
    ep_free(ep);
}

static void cmd_remote_desc(spk_relay_ep_t *ep, const spk_relay_cmd_t *cmd)
{
    if (ep->remote_set) {
        spk_warn(0, "relay: endpoint %llu: remote description already set; use ICE restart",
                 (unsigned long long)ep->id);
        return;
    }
    if (!nice_agent_set_remote_credentials(ep->agent, ep->stream, cmd->remote_ufrag,
                                           cmd->remote_pwd)) {
        spk_relay_ep_fail(ep, SPK_EINVAL, "bad remote ICE credentials");
        return;
    }
    memcpy(ep->remote_fp, cmd->remote_fp, sizeof(ep->remote_fp));
    ep->remote_set = true;
    int rc = spk_relay_dtls_setup(ep, cmd->setup);
    if (rc != 0) {
        spk_relay_ep_fail(ep, rc, "DTLS setup failed");
        return;
    }
    if (ep->ice_state == SPK_RELAY_ICE_CONNECTED || ep->ice_state == SPK_RELAY_ICE_READY) {
        spk_relay_dtls_start(ep);
    }
}

static void cmd_remote_cand(spk_relay_ep_t *ep, const spk_relay_cmd_t *cmd)
{
    if (cmd->end_of_candidates) {
        nice_agent_peer_candidate_gathering_done(ep->agent, ep->stream);
        return;
    }
    NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(ep->agent, ep->stream, cmd->cand);
    if (!c) {
        spk_info(0, "relay: endpoint %llu: ignoring unparsable remote candidate",
                 (unsigned long long)ep->id);
        return;
    }
    if (c->component_id == 1) {
        GSList l = {.data = c, .next = NULL};
        nice_agent_set_remote_candidates(ep->agent, ep->stream, 1, &l);
    }
    nice_candidate_free(c);
}

static void cmd_ice_restart(spk_relay_ep_t *ep, const spk_relay_cmd_t *cmd)
{
    spk_relay_io_ice_restart(ep);
    if (!nice_agent_restart_stream(ep->agent, ep->stream) ||
        !nice_agent_set_local_credentials(ep->agent, ep->stream, cmd->local_ufrag,
                                          cmd->local_pwd) ||
        !nice_agent_set_remote_credentials(ep->agent, ep->stream, cmd->remote_ufrag,
                                           cmd->remote_pwd)) {
        spk_relay_ep_fail(ep, SPK_EINVAL, "ICE restart failed");
        return;
    }
    /* Local candidates are kept across a restart; announce them again. */
    GSList *cands = nice_agent_get_local_candidates(ep->agent, ep->stream, 1);
    for (GSList *i = cands; i; i = i->next) {
        on_candidate(ep->agent, i->data, ep);
    }
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
    on_gathering_done(ep->agent, ep->stream, ep);
}

static void dispatch(spk_relay_worker_t *w, const spk_relay_cmd_t *cmd)
{
    SPK_RELAY_ON_WORKER(w);
    if (cmd->type == SPK_RELAY_CMD_CREATE) {
        cmd_create(w, cmd);
        return;
    }
    spk_relay_ep_t *ep = spk_map_get_u64(&w->endpoints, cmd->endpoint_id);
    if (!ep || !ep->consult || ep->consult->id != cmd->consult_id) {
        spk_info(cmd->endpoint_id, "relay: command %d for unknown endpoint", (int)cmd->type);
        if (cmd->type == SPK_RELAY_CMD_CLOSE) {
            /* Still confirm, so that the control side can always wait for CLOSED. */
            spk_relay_event_t ev;
            memset(&ev, 0, sizeof(ev));
            ev.type = SPK_RELAY_EV_CLOSED;
            ev.consult_id = cmd->consult_id;
            ev.endpoint_id = cmd->endpoint_id;
            spk_relay_emit(w->relay, &ev);
        }
        return;
    }
    switch (cmd->type) {
    case SPK_RELAY_CMD_REMOTE_DESC:
        cmd_remote_desc(ep, cmd);
        break;
    case SPK_RELAY_CMD_REMOTE_CAND:
        cmd_remote_cand(ep, cmd);
        break;
    case SPK_RELAY_CMD_FORWARD: {
        bool was = ep->forwarding;
        ep->forwarding = cmd->on;
        spk_debug(0, "relay: endpoint %llu: forwarding %s", (unsigned long long)ep->id,
                  cmd->on ? "on" : "off");
        if (cmd->on && !was) {
            spk_relay_rtcp_on_ready(ep);
            spk_relay_gate_open(ep);
        }
        break;
    }
    case SPK_RELAY_CMD_ICE_RESTART:
        cmd_ice_restart(ep, cmd);
        break;
    case SPK_RELAY_CMD_CLOSE:
        ep_close(w, ep, true);
        break;
    case SPK_RELAY_CMD_STATS:
        spk_relay_ep_event(ep, SPK_RELAY_EV_STATS);
        break;
    case SPK_RELAY_CMD_OWNER:
        ep->owner = cmd->owner;
        break;
    case SPK_RELAY_CMD_STREAMS:
        spk_relay_rtcp_set_streams(ep, cmd->streams, cmd->n_streams);
        break;
    case SPK_RELAY_CMD_EXT_MAP:
        memcpy(ep->ext_map, cmd->ext_map, sizeof(ep->ext_map));
        break;
    default:
        break;
    }
}

static void close_all(spk_relay_worker_t *w)
{
    void *v;
    for (;;) {
        size_t it = 0;
        if (!spk_map_next(&w->endpoints, &it, &v)) {
            break;
        }
        ep_close(w, v, false);
    }
}

static gboolean wake_cb(gint fd, GIOCondition cond, gpointer user)
{
    spk_relay_worker_t *w = user;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&w->mu);
    spk_relay_cmd_t *c = w->head;
    w->head = w->tail = NULL;
    w->n_cmds = 0;
    pthread_mutex_unlock(&w->mu);
    bool stop = false;
    for (spk_relay_cmd_t *i = c; i; i = i->next) {
        if (i->type == SPK_RELAY_CMD_STOP) {
            stop = true;
            break;
        }
        dispatch(w, i);
    }
    free_cmds(c);
    if (stop) {
        close_all(w);
        g_main_loop_quit(w->loop);
    }
    return G_SOURCE_CONTINUE;
}

/* Handshake deadline, and consent: an endpoint from whose peer nothing authenticated arrived
 * for consent_ns (30 s by default, RFC 7675's expiry) is given up, so the relay stops sending
 * to an address that no longer wants its packets. Also deferred key frame requests of a
 * publisher that sent nothing since their window ended (otherwise its next packet sends them). */
static gboolean tick_cb(gpointer user)
{
    spk_relay_worker_t *w = user;
    spk_relay_t *relay = w->relay;
    uint64_t now = spk_mono_ns();
    void *v;
    for (size_t it = 0; spk_map_next(&w->endpoints, &it, &v);) {
        spk_relay_ep_t *ep = v;
        if (ep->failed) {
            continue;
        }
        if (!ep->dtls_done) {
            spk_relay_io_ep_sync(ep);
        }
        spk_relay_rtcp_keyframe_due(ep, now); /* a publisher that sends nothing meanwhile */
        if (!ep->dtls_done && now - ep->created_ns > relay->handshake_ns) {
            spk_relay_ep_fail(ep, SPK_ETIMEOUT, "ICE/DTLS not connected in time");
        } else if (ep->dtls_done && now - ep->heard_ns > relay->consent_ns) {
            spk_relay_ep_fail(ep, SPK_ETIMEOUT, "nothing received: consent expired");
        }
    }
    return G_SOURCE_CONTINUE;
}

int spk_relay_worker_init(spk_relay_worker_t *w, spk_relay_t *relay, unsigned index)
{
    w->relay = relay;
    w->index = index;
    w->wake_fd = -1;
    w->epoll_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    spk_map_init(&w->endpoints);
    spk_map_init(&w->consults);
    w->ctx = g_main_context_new();
    w->loop = g_main_loop_new(w->ctx, FALSE);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        return SPK_EIO;
    }
    w->wake_src = g_unix_fd_source_new(w->wake_fd, G_IO_IN);
    g_source_set_callback(w->wake_src, (GSourceFunc)(void (*)(void))wake_cb, w, NULL);
    g_source_attach(w->wake_src, w->ctx);
    w->tick_src = g_timeout_source_new(TICK_MS);
    g_source_set_callback(w->tick_src, tick_cb, w, NULL);
    g_source_attach(w->tick_src, w->ctx);
    return spk_relay_io_init(w);
}

void spk_relay_worker_cleanup(spk_relay_worker_t *w)
{
    if (!w->relay) {
        return;
    }
    close_all(w);
    spk_relay_io_cleanup(w);
    if (w->wake_src) {
        g_source_destroy(w->wake_src);
        g_source_unref(w->wake_src);
        w->wake_src = NULL;
    }
    if (w->tick_src) {
        g_source_destroy(w->tick_src);
        g_source_unref(w->tick_src);
        w->tick_src = NULL;
    }
    if (w->ctx) {
        /* Let libnice finish what it deferred to idle sources. */
        for (int i = 0; i < 64 && g_main_context_iteration(w->ctx, FALSE); i++) {
        }
    }
    if (w->loop) {
        g_main_loop_unref(w->loop);
        w->loop = NULL;
    }
    if (w->ctx) {
        g_main_context_unref(w->ctx);
        w->ctx = NULL;
    }
    if (w->wake_fd >= 0) {
        close(w->wake_fd);
        w->wake_fd = -1;
    }
    free_cmds(w->head);
    w->head = w->tail = NULL;
    spk_map_free(&w->endpoints);
    spk_map_free(&w->consults);
    pthread_mutex_destroy(&w->mu);
    w->relay = NULL;
}

void *spk_relay_worker_main(void *arg)
{
    spk_relay_worker_t *w = arg;
    w->self = pthread_self();
    char name[16];
    snprintf(name, sizeof(name), "spk-relay-%u", w->index);
    pthread_setname_np(pthread_self(), name); /* per-worker CPU in /proc/<pid>/task */
    g_main_context_push_thread_default(w->ctx);
    spk_relay_io_thread(w);
    g_main_loop_run(w->loop);
    close_all(w);
    for (int i = 0; i < 64 && g_main_context_iteration(w->ctx, FALSE); i++) {
    }
    g_main_context_pop_thread_default(w->ctx);
    return NULL;
}
