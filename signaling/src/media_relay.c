/* Media signaling, the relay's side: its events (candidates, connected, failed, closed,
 * counters) routed to the connection that owns the endpoint, the counters /metrics reports,
 * and the periodic counter requests. */
#include "media_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/log.h"
#include "spk/sig_media.h"

static sig_join_t *owner_join(spk_sig_t *s, const sig_ep_owner_t *own, sig_conn_t **conn)
{
    *conn = own->conn ? spk_map_get_u64(&s->conns, own->conn) : NULL;
    for (int i = 0; *conn != NULL && i < (*conn)->n_joined; i++) {
        if (strcmp((*conn)->joined[i].consult->rec.id, own->consult) == 0) {
            return &(*conn)->joined[i];
        }
    }
    return NULL;
}

static void on_local_candidate(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j, sig_ep_t *ep,
                               sig_pc_t pc, const char *cand)
{
    /* Until the client has the description these belong to, they are held. */
    if (ep->mid[0] != '\0') {
        sig_media_send_candidate(s, conn->id, j->consult->rec.id, pc, ep, cand);
    } else if (ep->n_cands < SIG_MEDIA_MAX_CANDS) {
        snprintf(ep->cands[ep->n_cands++], sizeof(ep->cands[0]), "%s", cand);
    }
}

/* The relay counters /metrics reports, in the order of g_stat_names. */
static const char *const g_stat_names[SIG_EP_STATS] = {
    "spk_relay_rtp_received_total",       "spk_relay_rtp_forwarded_total",
    "spk_relay_rtcp_received_total",      "spk_relay_unprotect_errors_total",
    "spk_relay_dropped_lobby_total",      "spk_relay_dropped_malformed_total",
    "spk_relay_pli_forwarded_total",      "spk_relay_nack_received_total",
    "spk_relay_rtx_sent_total",           "spk_relay_remb_sent_total",
    "spk_relay_video_paused_total",       "spk_relay_video_withheld_total",
    "spk_relay_simulcast_switches_total", "spk_relay_rx_direct_total",
    "spk_relay_stun_answered_total",      "spk_relay_rx_yielded_total"};

static void stats_vector(const spk_relay_stats_t *st, uint64_t out[SIG_EP_STATS])
{
    const uint64_t v[SIG_EP_STATS] = {
        st->rtp_rx,        st->rtp_tx,         st->rtcp_rx,       st->unprotect_errors,
        st->dropped_lobby, st->dropped_other,  st->pli_forwarded, st->nack_received,
        st->rtx_sent,      st->rtcp_remb_sent, st->video_off,     st->video_withheld,
        st->sim_switches,  st->rx_direct,      st->stun_answered, st->rx_yielded};
    memcpy(out, v, sizeof(v));
}

/* STATS and CLOSED: the endpoint's counters (kept per endpoint, added to the closed totals at
 * the end); CLOSED also forgets the owner. */
static void on_counters(spk_sig_t *s, const spk_relay_event_t *ev)
{
    uint64_t *st = spk_map_get_u64(&s->ep_stats, ev->endpoint_id);
    if (st == NULL && ev->type == SPK_RELAY_EV_STATS) {
        st = calloc(SIG_EP_STATS, sizeof(*st));
        if (st != NULL && spk_map_put_u64(&s->ep_stats, ev->endpoint_id, st) != 0) {
            free(st);
            st = NULL;
        }
    }
    uint64_t now[SIG_EP_STATS];
    stats_vector(&ev->stats, now);
    if (st != NULL) {
        memcpy(st, now, sizeof(now));
    }
    if (ev->type == SPK_RELAY_EV_CLOSED) {
        for (int i = 0; i < SIG_EP_STATS; i++) {
            s->relay_closed[i] += now[i];
        }
        free(spk_map_del_u64(&s->ep_stats, ev->endpoint_id));
        free(spk_map_del_u64(&s->eps, ev->endpoint_id));
    }
}

void spk_sig_relay_event(const spk_relay_event_t *ev, void *user)
{
    spk_sig_t *s = user;
    sig_ep_owner_t *own = spk_map_get_u64(&s->eps, ev->endpoint_id);
    if (own == NULL) {
        return;
    }
    if (ev->type == SPK_RELAY_EV_CLOSED || ev->type == SPK_RELAY_EV_STATS) {
        on_counters(s, ev);
        return;
    }
    sig_conn_t *conn;
    sig_join_t *j = owner_join(s, own, &conn);
    if (j == NULL || j->media == NULL) {
        return;
    }
    sig_ep_t *ep = own->pc == SIG_PC_PUBLISH ? &j->media->pub : &j->media->sub;
    if (ep->id != ev->endpoint_id) {
        return; /* an endpoint this connection has replaced */
    }
    const char *pc = sig_pc_names[own->pc];
    switch (ev->type) {
    case SPK_RELAY_EV_LOCAL_CANDIDATE:
        on_local_candidate(s, conn, j, ep, own->pc, ev->cand);
        break;
    case SPK_RELAY_EV_CONNECTED:
        spk_info(conn->id, "media %s connected (%s)", pc, ev->srtp_profile);
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "media.state", "consult",
                                own->consult, "pc", pc, "state", "connected", "detail",
                                ev->srtp_profile ? ev->srtp_profile : ""));
        break;
    case SPK_RELAY_EV_FAILED:
        ep->failed = true;
        if (own->pc == SIG_PC_PUBLISH) {
            /* its publisher comes back on another endpoint (another relay node after a node's
             * loss), maybe with the same tracks: the other nodes hear the list again then */
            j->consult->media_said = 0;
        }
        s->m[SIG_M_MEDIA_FAILED]++;
        spk_warn(conn->id, "media %s failed: %s", pc, ev->reason);
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "media.state", "consult",
                                own->consult, "pc", pc, "state", "failed", "detail", ev->reason));
        break;
    case SPK_RELAY_EV_VIDEO:
        /* Audio-only fallback (spk/relay.h): the subscriber's link and the relay's verdict. */
        spk_info(conn->id, "media %s: video %s", pc, ev->video_on ? "resumed" : "paused");
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:s}", "type", "media.video", "consult",
                                own->consult, "video", ev->video_on ? "resumed" : "paused",
                                "reason", ev->video_on ? "link_recovered" : "weak_link"));
        break;
    default:
        break;
    }
}

void sig_media_tick(spk_sig_t *s)
{
    if (s->relay == NULL) {
        return;
    }
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->consults, &it, &v)) {
        sig_consult_t *c = v;
        for (size_t i = 0; i < c->n_conns; i++) {
            sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
            for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
                sig_media_t *m = conn->joined[k].media;
                if (conn->joined[k].consult == c && m != NULL) {
                    if (m->pub.id) {
                        spk_relays_stats(s->relay, c->relay_id, m->pub.id);
                    }
                    if (m->sub.id) {
                        spk_relays_stats(s->relay, c->relay_id, m->sub.id);
                    }
                }
            }
        }
    }
}

size_t sig_media_metrics(spk_sig_t *s, char *buf, size_t cap)
{
    uint64_t tot[SIG_EP_STATS];
    memcpy(tot, s->relay_closed, sizeof(tot));
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->ep_stats, &it, &v)) {
        const uint64_t *st = v;
        for (int i = 0; i < SIG_EP_STATS; i++) {
            tot[i] += st[i];
        }
    }
    size_t o = 0;
    int n = snprintf(buf, cap,
                     "# TYPE spk_relay_enabled gauge\nspk_relay_enabled %d\n"
                     "# TYPE spk_relay_endpoints gauge\nspk_relay_endpoints %zu\n"
                     "# TYPE spk_relay_candidates_refused_total counter\n"
                     "spk_relay_candidates_refused_total %llu\n",
                     s->relay != NULL, s->eps.len,
                     (unsigned long long)(s->relay ? spk_relays_candidates_refused(s->relay) : 0));
    for (int i = 0; n >= 0 && (size_t)n < cap - o && i <= SIG_EP_STATS; i++) {
        o += (size_t)n;
        if (i == SIG_EP_STATS) {
            break;
        }
        n = snprintf(buf + o, cap - o, "# TYPE %s counter\n%s %llu\n", g_stat_names[i],
                     g_stat_names[i], (unsigned long long)tot[i]);
    }
    if (o < cap) {
        o += spk_relays_metrics(s->relay, buf + o, cap - o);
    }
    return o < cap ? o : cap - 1;
}

void sig_media_free_all(spk_sig_t *s)
{
    size_t it = 0;
    void *v;
    while (spk_map_next(&s->eps, &it, &v)) {
        free(v);
    }
    spk_map_free(&s->eps);
    it = 0;
    while (spk_map_next(&s->ep_stats, &it, &v)) {
        free(v);
    }
    spk_map_free(&s->ep_stats);
}
