/* Media signaling (docs/protocol.md 5.7): publish and subscribe connections per joined
 * (connection, consult), relay endpoints, the lobby gate, re-offers and relay events. */
#include "media_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/sig_media.h"
#include "spk/util.h"

#ifdef SPK_HAVE_RELAY

#include "spk/turn.h"

#define SDP_OUT_CAP 65536

static const char *const g_pc_names[] = {"publish", "subscribe"};

void spk_sig_set_relay(spk_sig_t *s, spk_relay_t *relay)
{
    s->relay = relay;
}

/* Short-lived TURN credentials (coturn's shared-secret scheme) as RTCPeerConnection
 * iceServers, or NULL when TURN is not configured. */
json_t *sig_ice_servers_json(const spk_sig_t *s, const sig_conn_t *conn, int64_t now)
{
    const spk_config_t *cfg = &s->cfg;
    if (cfg->turn_urls[0] == '\0' || cfg->turn_secret[0] == '\0') {
        return NULL;
    }
    char user[SPK_TOKEN_STR + 24];
    char pass[SPK_TURN_PASSWORD_CAP];
    if (spk_turn_credentials(cfg->turn_secret, conn->who.sub, now, cfg->turn_ttl_s, user,
                             sizeof(user), pass, sizeof(pass)) != 0) {
        return NULL;
    }
    json_t *urls = json_array();
    char list[sizeof(cfg->turn_urls)];
    snprintf(list, sizeof(list), "%s", cfg->turn_urls);
    char *save = NULL;
    for (char *u = strtok_r(list, ", ", &save); u != NULL; u = strtok_r(NULL, ", ", &save)) {
        json_array_append_new(urls, json_string(u));
    }
    json_t *server =
        json_pack("{s:o, s:s, s:s}", "urls", urls, "username", user, "credential", pass);
    spk_wipe(pass, sizeof(pass));
    return server != NULL ? json_pack("[o]", server) : NULL;
}

static void add_ice_servers(sig_req_t *r)
{
    json_t *ice = sig_ice_servers_json(r->s, r->c, r->now);
    if (ice != NULL) {
        json_object_set_new(r->reply, "ice_servers", ice);
    }
}

/* The caller's join entry for the request's consult; not_found when not joined. */
static int req_join(sig_req_t *r, sig_consult_t **c, sig_join_t **out)
{
    if (r->s->relay == NULL) {
        snprintf(r->why, sizeof(r->why), "media is not enabled on this server");
        return SPK_ENOTFOUND;
    }
    int rc = sig_req_consult(r, true, c);
    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < r->c->n_joined; i++) {
        if (r->c->joined[i].consult == *c) {
            *out = &r->c->joined[i];
            return 0;
        }
    }
    snprintf(r->why, sizeof(r->why), "join the consult first");
    return SPK_ENOTFOUND;
}

static sig_media_t *media_of(sig_join_t *j)
{
    if (j->media == NULL) {
        j->media = calloc(1, sizeof(*j->media));
    }
    return j->media;
}

static bool may_flow(const sig_join_t *j)
{
    return j->part->rec.state == SPK_PART_ADMITTED && j->consult->rec.state == SPK_CONSULT_OPEN;
}

static int ep_open(spk_sig_t *s, sig_conn_t *conn, sig_consult_t *c, sig_ep_t *ep, sig_pc_t pc)
{
    sig_ep_owner_t *own = calloc(1, sizeof(*own));
    if (own == NULL) {
        return SPK_ENOMEM;
    }
    memset(ep, 0, sizeof(*ep));
    ep->id = ++s->next_ep;
    unsigned roles = pc == SIG_PC_PUBLISH ? SPK_RELAY_ROLE_PUBLISH : SPK_RELAY_ROLE_SUBSCRIBE;
    int rc = spk_relay_endpoint_create(s->relay, c->relay_id, ep->id, roles, &ep->local);
    if (rc == 0) {
        /* A connection's publish and subscribe endpoints never forward to each other. */
        rc = spk_relay_set_owner(s->relay, c->relay_id, ep->id, conn->id);
    }
    if (rc == 0) {
        own->conn = conn->id;
        own->pc = pc;
        snprintf(own->consult, sizeof(own->consult), "%s", c->rec.id);
        rc = spk_map_put_u64(&s->eps, ep->id, own);
    }
    if (rc != 0) {
        free(own);
        ep->id = 0;
        return rc;
    }
    s->m[SIG_M_MEDIA_ENDPOINTS]++;
    return 0;
}

static void ep_close(spk_sig_t *s, sig_consult_t *c, sig_ep_t *ep)
{
    if (ep->id != 0) {
        spk_relay_endpoint_close(s->relay, c->relay_id, ep->id);
        /* The owner entry goes with the CLOSED event; until then events are dropped. */
        sig_ep_owner_t *own = spk_map_get_u64(&s->eps, ep->id);
        if (own != NULL) {
            own->conn = 0;
        }
    }
    memset(ep, 0, sizeof(*ep));
}

/* Tells the relay whether this join's media may flow (the lobby gate). */
static void apply_gate(spk_sig_t *s, sig_join_t *j)
{
    sig_media_t *m = j->media;
    bool on = may_flow(j);
    if (m == NULL || m->forwarding == on) {
        return;
    }
    m->forwarding = on;
    if (m->pub.id != 0) {
        spk_relay_set_forwarding(s->relay, j->consult->relay_id, m->pub.id, on);
    }
    if (m->sub.id != 0) {
        spk_relay_set_forwarding(s->relay, j->consult->relay_id, m->sub.id, on);
    }
}

static void send_candidate(spk_sig_t *s, uint64_t conn, const char *consult, sig_pc_t pc,
                           const char *cand)
{
    sig_send_json(s, conn,
                  json_pack("{s:s, s:s, s:s, s:s}", "type", "media.candidate", "consult", consult,
                            "pc", g_pc_names[pc], "candidate", cand));
}

/* Sends a new media.offer to a subscriber if its streams changed (or force). */
static void reoffer(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j, bool force)
{
    sig_media_t *m = j->media;
    if (m == NULL || m->sub.id == 0) {
        return;
    }
    char *sdp = malloc(SDP_OUT_CAP);
    json_t *streams = NULL;
    if (sdp == NULL) {
        return;
    }
    int changed = sig_media_offer(s, j->consult, conn, m, &streams, sdp, SDP_OUT_CAP);
    if (changed < 0) {
        spk_warn(conn->id, "media offer for %s failed: %s", j->consult->rec.id,
                 spk_strerror(changed));
    } else if ((changed > 0 || force) && m->n_slots > 0) {
        m->version++;
        m->offer_pending = true;
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:I, s:o}", "type", "media.offer", "consult",
                                j->consult->rec.id, "sdp", sdp, "version", (json_int_t)m->version,
                                "streams", streams));
        streams = NULL;
        /* Candidates gathered before the first offer follow it. */
        for (int i = 0; i < m->sub.n_cands; i++) {
            send_candidate(s, conn->id, j->consult->rec.id, SIG_PC_SUBSCRIBE, m->sub.cands[i]);
        }
        m->sub.n_cands = 0;
    }
    json_decref(streams);
    free(sdp);
}

void sig_media_consult_changed(spk_sig_t *s, sig_consult_t *c)
{
    if (s->relay == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            if (conn->joined[k].consult == c) {
                apply_gate(s, &conn->joined[k]);
                reoffer(s, conn, &conn->joined[k], false);
            }
        }
    }
}

void sig_media_unjoin(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j)
{
    sig_media_t *m = j->media;
    if (m == NULL) {
        return;
    }
    if (s->relay != NULL) {
        ep_close(s, j->consult, &m->pub);
        ep_close(s, j->consult, &m->sub);
    }
    free(m);
    j->media = NULL;
}

static int fingerprint_str(const spk_sdp_t *sdp, const spk_sdp_media_t *mm, char *out, size_t cap)
{
    const spk_sdp_fingerprint_t *fp = spk_sdp_media_fingerprint(sdp, mm);
    if (fp->hash != SPK_SDP_HASH_SHA256 || fp->len != 32) {
        return SPK_EDECODE;
    }
    sig_fingerprint_to_str(fp, out, cap);
    return 0;
}

static spk_relay_setup_t relay_setup(spk_sdp_setup_t st)
{
    return st == SPK_SDP_SETUP_ACTIVE    ? SPK_RELAY_SETUP_ACTIVE
           : st == SPK_SDP_SETUP_PASSIVE ? SPK_RELAY_SETUP_PASSIVE
                                         : SPK_RELAY_SETUP_ACTPASS;
}

/* Hands the remote ICE/DTLS parameters and candidates of a description to the relay. On an
 * ICE restart (new ufrag on an endpoint that has one) the relay restarts ICE and *restarted is
 * set: the local credentials in ep->local change. */
static int apply_remote(spk_sig_t *s, sig_consult_t *c, sig_ep_t *ep, const spk_sdp_t *sdp,
                        bool *restarted, char *why, size_t why_len)
{
    const spk_sdp_media_t *first = NULL;
    for (int i = 0; i < sdp->n_media && first == NULL; i++) {
        if (sdp->media[i].port != 0) {
            first = &sdp->media[i];
        }
    }
    if (first == NULL) {
        snprintf(why, why_len, "no accepted m-section");
        return SPK_EDECODE;
    }
    const spk_sdp_ice_t *ice = spk_sdp_media_ice(sdp, first);
    char fp[SPK_RELAY_FINGERPRINT_LEN];
    if (ice->ufrag[0] == '\0' || ice->pwd[0] == '\0' ||
        fingerprint_str(sdp, first, fp, sizeof(fp)) != 0) {
        snprintf(why, why_len, "ICE credentials or SHA-256 fingerprint missing");
        return SPK_EDECODE;
    }
    int rc = 0;
    *restarted = false;
    if (!ep->remote_set) {
        rc = spk_relay_remote_description(s->relay, c->relay_id, ep->id, ice->ufrag, ice->pwd, fp,
                                          relay_setup(spk_sdp_media_setup(sdp, first)));
        ep->remote_set = rc == 0;
    } else if (strcmp(ep->remote_ufrag, ice->ufrag) != 0) {
        rc = spk_relay_ice_restart(s->relay, c->relay_id, ep->id, ice->ufrag, ice->pwd, &ep->local);
        *restarted = rc == 0;
    }
    if (rc != 0) {
        snprintf(why, why_len, "relay refused the description");
        return rc == SPK_EINVAL ? SPK_EDECODE : rc;
    }
    snprintf(ep->remote_ufrag, sizeof(ep->remote_ufrag), "%s", ice->ufrag);
    for (int i = 0; i < first->n_candidates; i++) {
        char line[SPK_RELAY_CANDIDATE_MAX];
        if (spk_sdp_candidate_format(&first->candidates[i], line, sizeof(line)) > 0) {
            spk_relay_remote_candidate(s->relay, c->relay_id, ep->id, line);
        }
    }
    return 0;
}

static int parse_sdp(sig_req_t *r, spk_sdp_t **out)
{
    const char *text;
    int rc = sig_get_raw(r, "sdp", true, SPK_SDP_MAX_SIZE, &text);
    if (rc != 0) {
        return rc;
    }
    spk_sdp_t *sdp = malloc(sizeof(*sdp));
    if (sdp == NULL) {
        return SPK_ENOMEM;
    }
    char why[128] = "";
    rc = spk_sdp_parse(sdp, text, strlen(text), why, sizeof(why));
    if (rc != 0) {
        snprintf(r->why, sizeof(r->why), "sdp: %s", why[0] ? why : spk_strerror(rc));
        free(sdp);
        return rc == SPK_ETOOBIG ? SPK_ETOOBIG : SPK_EDECODE;
    }
    *out = sdp;
    return 0;
}

/* Tells the relay what the publisher sends (for retransmissions as RTX, key-frame requests and
 * bandwidth feedback), before its forwarding is switched on. */
static void declare_streams(spk_sig_t *s, sig_consult_t *c, sig_media_t *m)
{
    spk_relay_stream_t st[SPK_RELAY_MAX_STREAMS];
    size_t n = 0;
    for (int i = 0; i < m->n_tracks && n < SPK_RELAY_MAX_STREAMS; i++) {
        const sig_track_t *t = &m->tracks[i];
        st[n] = (spk_relay_stream_t){.ssrc = t->ssrc,
                                     .rtx_ssrc = t->rtx_ssrc,
                                     .pt = t->codec.pt,
                                     .rtx_pt = t->rtx.pt,
                                     .clock_rate = t->codec.clock_rate,
                                     .video = t->kind == SPK_SDP_KIND_VIDEO};
        n++;
    }
    if (n > 0 && spk_relay_set_streams(s->relay, c->relay_id, m->pub.id, st, n) != 0) {
        spk_warn(0, "relay refused the stream declaration of endpoint %llu",
                 (unsigned long long)m->pub.id);
    }
}

int sig_h_media_publish(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    spk_sdp_t *offer = NULL;
    int rc = req_join(r, &c, &j);
    if (rc == 0) {
        rc = parse_sdp(r, &offer);
    }
    sig_media_t *m = rc == 0 ? media_of(j) : NULL;
    if (rc == 0 && m == NULL) {
        rc = SPK_ENOMEM;
    }
    bool fresh = false;
    if (rc == 0 && m->pub.id == 0) {
        rc = ep_open(r->s, r->c, c, &m->pub, SIG_PC_PUBLISH);
        fresh = rc == 0;
        m->forwarding = false;
    }
    bool restarted = false;
    if (rc == 0) {
        rc = apply_remote(r->s, c, &m->pub, offer, &restarted, r->why, sizeof(r->why));
    }
    char *answer = rc == 0 ? malloc(SDP_OUT_CAP) : NULL;
    if (rc == 0 && answer == NULL) {
        rc = SPK_ENOMEM;
    }
    if (rc == 0) {
        rc = sig_media_answer(r->s, m, offer, answer, SDP_OUT_CAP, r->why, sizeof(r->why));
    }
    free(offer);
    if (rc != 0) {
        if (fresh) {
            ep_close(r->s, c, &m->pub);
        }
        free(answer);
        return rc;
    }
    declare_streams(r->s, c, m);
    json_object_set_new(r->reply, "sdp", json_string(answer));
    free(answer);
    add_ice_servers(r);
    sig_reply_ok(r);
    /* Candidates gathered so far follow the answer. */
    for (int i = 0; i < m->pub.n_cands; i++) {
        send_candidate(r->s, r->c->id, c->rec.id, SIG_PC_PUBLISH, m->pub.cands[i]);
    }
    m->pub.n_cands = 0;
    apply_gate(r->s, j);
    sig_media_consult_changed(r->s, c);
    return 0;
}

int sig_h_media_subscribe(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int rc = req_join(r, &c, &j);
    sig_media_t *m = rc == 0 ? media_of(j) : NULL;
    if (rc == 0 && m == NULL) {
        rc = SPK_ENOMEM;
    }
    if (rc != 0) {
        return rc;
    }
    /* A new subscribe connection: new ICE credentials, new DTLS session, fresh slots. */
    ep_close(r->s, c, &m->sub);
    m->n_slots = 0;
    m->offer_pending = false;
    rc = ep_open(r->s, r->c, c, &m->sub, SIG_PC_SUBSCRIBE);
    if (rc != 0) {
        return rc;
    }
    if (m->forwarding) {
        spk_relay_set_forwarding(r->s->relay, c->relay_id, m->sub.id, true);
    }
    add_ice_servers(r);
    sig_reply_ok(r);
    reoffer(r->s, r->c, j, true);
    return 0;
}

int sig_h_media_answer(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int64_t version = 0;
    spk_sdp_t *answer = NULL;
    int rc = req_join(r, &c, &j);
    if (rc == 0) {
        rc = sig_get_int(r, "version", true, 1, INT64_MAX, &version);
    }
    if (rc == 0 && (j->media == NULL || j->media->sub.id == 0)) {
        snprintf(r->why, sizeof(r->why), "no subscribe connection");
        rc = SPK_ESTATE;
    }
    if (rc == 0 && version != j->media->version) {
        snprintf(r->why, sizeof(r->why), "answer to offer %lld, current is %lld",
                 (long long)version, (long long)j->media->version);
        rc = SPK_ESTATE;
    }
    if (rc == 0) {
        rc = parse_sdp(r, &answer);
    }
    bool restarted = false;
    if (rc == 0) {
        rc = apply_remote(r->s, c, &j->media->sub, answer, &restarted, r->why, sizeof(r->why));
    }
    free(answer);
    if (rc == 0) {
        j->media->offer_pending = false;
    }
    return rc;
}

int sig_h_media_candidate(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    const char *pc, *cand;
    int rc = req_join(r, &c, &j);
    if (rc == 0) {
        rc = sig_get_str(r, "pc", true, 16, &pc);
    }
    if (rc == 0 && strcmp(pc, "publish") != 0 && strcmp(pc, "subscribe") != 0) {
        rc = sig_bad_field(r, "pc");
    }
    if (rc == 0) {
        rc = sig_get_str(r, "candidate", false, SPK_RELAY_CANDIDATE_MAX - 1, &cand);
    }
    if (rc != 0) {
        return rc;
    }
    sig_ep_t *ep = NULL;
    if (j->media != NULL) {
        ep = pc[0] == 'p' ? &j->media->pub : &j->media->sub;
    }
    if (ep == NULL || ep->id == 0) {
        snprintf(r->why, sizeof(r->why), "no %s connection", pc);
        return SPK_ESTATE;
    }
    if (cand != NULL && cand[0] != '\0') {
        spk_sdp_candidate_t parsed;
        if (spk_sdp_candidate_parse(&parsed, cand, strlen(cand), NULL, 0) != 0) {
            return sig_bad_field(r, "candidate");
        }
    }
    return spk_relay_remote_candidate(r->s->relay, c->relay_id, ep->id, cand);
}

int sig_h_media_stop(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int rc = req_join(r, &c, &j);
    if (rc != 0) {
        return rc;
    }
    sig_media_unjoin(r->s, r->c, j);
    sig_reply_ok(r);
    sig_media_consult_changed(r->s, c);
    return 0;
}

/* ---- relay events ---- */

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

static void on_local_candidate(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j, sig_pc_t pc,
                               const char *cand)
{
    sig_media_t *m = j->media;
    sig_ep_t *ep = pc == SIG_PC_PUBLISH ? &m->pub : &m->sub;
    /* Until the client has the description these belong to, remember them. */
    bool hold = pc == SIG_PC_SUBSCRIBE ? m->version == 0 : false;
    if (!hold) {
        send_candidate(s, conn->id, j->consult->rec.id, pc, cand);
    } else if (ep->n_cands < SIG_MEDIA_MAX_CANDS) {
        snprintf(ep->cands[ep->n_cands++], sizeof(ep->cands[0]), "%s", cand);
    }
}

/* The relay counters /metrics reports, in the order of g_stat_names. */
static const char *const g_stat_names[SIG_EP_STATS] = {
    "spk_relay_rtp_received_total",  "spk_relay_rtp_forwarded_total",
    "spk_relay_rtcp_received_total", "spk_relay_unprotect_errors_total",
    "spk_relay_dropped_lobby_total", "spk_relay_dropped_malformed_total",
    "spk_relay_pli_forwarded_total", "spk_relay_nack_received_total",
    "spk_relay_rtx_sent_total",      "spk_relay_remb_sent_total"};

static void stats_vector(const spk_relay_stats_t *st, uint64_t out[SIG_EP_STATS])
{
    const uint64_t v[SIG_EP_STATS] = {st->rtp_rx,           st->rtp_tx,        st->rtcp_rx,
                                      st->unprotect_errors, st->dropped_lobby, st->dropped_other,
                                      st->pli_forwarded,    st->nack_received, st->rtx_sent,
                                      st->rtcp_remb_sent};
    memcpy(out, v, sizeof(v));
}

void spk_sig_relay_event(spk_relay_t *relay, const spk_relay_event_t *ev, void *user)
{
    spk_sig_t *s = user;
    sig_ep_owner_t *own = spk_map_get_u64(&s->eps, ev->endpoint_id);
    if (own == NULL) {
        return;
    }
    if (ev->type == SPK_RELAY_EV_CLOSED || ev->type == SPK_RELAY_EV_STATS) {
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
        return;
    }
    sig_conn_t *conn;
    sig_join_t *j = owner_join(s, own, &conn);
    if (j == NULL || j->media == NULL) {
        return;
    }
    switch (ev->type) {
    case SPK_RELAY_EV_LOCAL_CANDIDATE:
        on_local_candidate(s, conn, j, own->pc, ev->cand);
        break;
    case SPK_RELAY_EV_CONNECTED:
        spk_info(conn->id, "media %s connected (%s)", g_pc_names[own->pc], ev->srtp_profile);
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "media.state", "consult",
                                own->consult, "pc", g_pc_names[own->pc], "state", "connected",
                                "detail", ev->srtp_profile ? ev->srtp_profile : ""));
        break;
    case SPK_RELAY_EV_FAILED:
        s->m[SIG_M_MEDIA_FAILED]++;
        spk_warn(conn->id, "media %s failed: %s", g_pc_names[own->pc], ev->reason);
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "media.state", "consult",
                                own->consult, "pc", g_pc_names[own->pc], "state", "failed",
                                "detail", ev->reason));
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
                        spk_relay_stats(s->relay, c->relay_id, m->pub.id);
                    }
                    if (m->sub.id) {
                        spk_relay_stats(s->relay, c->relay_id, m->sub.id);
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
                     "# TYPE spk_relay_endpoints gauge\nspk_relay_endpoints %zu\n",
                     s->relay != NULL, s->eps.len);
    for (int i = 0; n >= 0 && (size_t)n < cap - o && i <= SIG_EP_STATS; i++) {
        o += (size_t)n;
        if (i == SIG_EP_STATS) {
            break;
        }
        n = snprintf(buf + o, cap - o, "# TYPE %s counter\n%s %llu\n", g_stat_names[i],
                     g_stat_names[i], (unsigned long long)tot[i]);
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

#else /* media off at build time */

json_t *sig_ice_servers_json(const spk_sig_t *s, const sig_conn_t *conn, int64_t now)
{
    return NULL;
}

static int no_media(sig_req_t *r)
{
    snprintf(r->why, sizeof(r->why), "media is not enabled on this server");
    return SPK_ENOTFOUND;
}

int sig_h_media_publish(sig_req_t *r)
{
    return no_media(r);
}

int sig_h_media_subscribe(sig_req_t *r)
{
    return no_media(r);
}

int sig_h_media_answer(sig_req_t *r)
{
    return no_media(r);
}

int sig_h_media_candidate(sig_req_t *r)
{
    return no_media(r);
}

int sig_h_media_stop(sig_req_t *r)
{
    return no_media(r);
}

void sig_media_unjoin(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j)
{
}

void sig_media_consult_changed(spk_sig_t *s, sig_consult_t *c)
{
}

void sig_media_free_all(spk_sig_t *s)
{
}

void sig_media_tick(spk_sig_t *s)
{
}

size_t sig_media_metrics(spk_sig_t *s, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "# TYPE spk_relay_enabled gauge\nspk_relay_enabled 0\n");
    return n < 0 ? 0 : (size_t)n;
}

#endif
