/* Media signaling (docs/protocol.md 5.7): the media.* requests, the access rules of media_int.h,
 * relay endpoints and re-offers. Relay events and counters are in media_relay.c, SDP in
 * media_sdp.c. */
#include "media_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/sig_media.h"
#include "spk/turn.h"
#include "spk/util.h"

#define SDP_OUT_CAP 65536

const char *const sig_pc_names[2] = {"publish", "subscribe"};

void spk_sig_set_relay(spk_sig_t *s, spk_relays_t *relay)
{
    s->relay = relay;
}

/* Short-lived TURN credentials (coturn's shared-secret scheme) as RTCPeerConnection
 * iceServers, or NULL when TURN is not configured. */
json_t *sig_ice_servers_json(const spk_sig_t *s, const sig_conn_t *conn, int64_t now)
{
    const spk_config_t *cfg = &s->cfg;
    if (s->relay == NULL || cfg->turn_urls[0] == '\0' || cfg->turn_secret[0] == '\0') {
        return NULL;
    }
    char user[SPK_TOKEN_STR + 24];
    char pass[SPK_TURN_PASSWORD_CAP];
    if (spk_turn_credentials(cfg->turn_secret, conn->who->sub, now, cfg->turn_ttl_s, user,
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

static bool may_flow(const sig_join_t *j)
{
    return j->part->rec.state == SPK_PART_ADMITTED && j->consult->rec.state == SPK_CONSULT_OPEN;
}

/* The caller's join entry for the request's consult: not_found without the relay or a join,
 * bad_state unless admitted (when need_admitted). */
static int req_join(sig_req_t *r, bool need_admitted, sig_consult_t **c, sig_join_t **out)
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
            if (need_admitted && !may_flow(*out)) {
                snprintf(r->why, sizeof(r->why), "media starts once you are admitted");
                return SPK_ESTATE;
            }
            return 0;
        }
    }
    snprintf(r->why, sizeof(r->why), "join the consult first");
    return SPK_ENOTFOUND;
}

/* A consult that requires end-to-end encrypted media takes publish and subscribe requests only
 * from clients that say they encrypt every frame with SFrame ("e2ee": true; protocol.md §6). */
static int need_e2ee(sig_req_t *r, const sig_consult_t *c)
{
    if (!c->e2ee) {
        return 0;
    }
    json_t *v = json_object_get(r->req, "e2ee");
    if (v != NULL && !json_is_boolean(v)) {
        return sig_bad_field(r, "e2ee");
    }
    if (!json_is_true(v)) {
        snprintf(r->why, sizeof(r->why), "this consult's media is end-to-end encrypted (SFrame)");
        return SPK_EE2EE;
    }
    return 0;
}

static sig_media_t *media_of(sig_join_t *j)
{
    if (j->media == NULL) {
        j->media = calloc(1, sizeof(*j->media));
    }
    return j->media;
}

/* The relay's owner group of a participant: endpoints of one participant never forward to each
 * other (FNV-1a of the participant id; nonzero). */
static uint64_t owner_of(const sig_part_t *p)
{
    return spk_fnv1a64(p->rec.id) | 1u;
}

/* Creates a relay endpoint for an admitted participant; media flows at once. */
static int ep_open(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j, sig_ep_t *ep, sig_pc_t pc)
{
    sig_consult_t *c = j->consult;
    sig_ep_owner_t *own = calloc(1, sizeof(*own));
    if (own == NULL) {
        return SPK_ENOMEM;
    }
    memset(ep, 0, sizeof(*ep));
    ep->id = ++s->next_ep;
    unsigned roles = pc == SIG_PC_PUBLISH ? SPK_RELAY_ROLE_PUBLISH : SPK_RELAY_ROLE_SUBSCRIBE;
    int rc = spk_relays_endpoint_create(s->relay, c->relay_id, ep->id, roles, &ep->local);
    if (rc == 0) {
        rc = spk_relays_set_owner(s->relay, c->relay_id, ep->id, owner_of(j->part));
    }
    if (rc == 0) {
        own->conn = conn->id;
        own->pc = pc;
        snprintf(own->consult, sizeof(own->consult), "%s", c->rec.id);
        rc = spk_map_put_u64(&s->eps, ep->id, own);
    }
    if (rc != 0) {
        free(own);
        if (ep->id != 0) {
            spk_relays_endpoint_close(s->relay, c->relay_id, ep->id);
        }
        memset(ep, 0, sizeof(*ep));
        return rc;
    }
    s->m[SIG_M_MEDIA_ENDPOINTS]++;
    ep->forwarding = spk_relays_set_forwarding(s->relay, c->relay_id, ep->id, true) == 0;
    return 0;
}

static void ep_close(spk_sig_t *s, sig_consult_t *c, sig_ep_t *ep)
{
    if (ep->id != 0) {
        spk_relays_endpoint_close(s->relay, c->relay_id, ep->id);
        /* The owner entry goes with the CLOSED event; until then events are dropped. */
        sig_ep_owner_t *own = spk_map_get_u64(&s->eps, ep->id);
        if (own != NULL) {
            own->conn = 0;
        }
    }
    memset(ep, 0, sizeof(*ep));
}

static void media_end(spk_sig_t *s, sig_join_t *j)
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

static void send_state(spk_sig_t *s, uint64_t conn, const char *consult, sig_pc_t pc,
                       const char *state, const char *detail)
{
    sig_send_json(s, conn,
                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "media.state", "consult", consult,
                            "pc", sig_pc_names[pc], "state", state, "detail", detail));
}

/* The endpoint of kind pc that another connection of the same participant holds, or NULL. */
static sig_ep_t *held_elsewhere(spk_sig_t *s, const sig_conn_t *self, const sig_join_t *mine,
                                sig_pc_t pc, sig_conn_t **holder, sig_join_t **join)
{
    sig_consult_t *c = mine->consult;
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && conn != self && k < conn->n_joined; k++) {
            sig_join_t *j = &conn->joined[k];
            sig_media_t *m = j->media;
            sig_ep_t *ep = m == NULL ? NULL : pc == SIG_PC_PUBLISH ? &m->pub : &m->sub;
            if (j->consult == c && j->part == mine->part && ep != NULL && ep->id != 0) {
                *holder = conn;
                *join = j;
                return ep;
            }
        }
    }
    return NULL;
}

/* A participant has one endpoint of each kind, held by their newest connection that asked for
 * it: closes the one an older connection holds (and tells it), or refuses while a newer one
 * holds it (a late request of a connection the client has already replaced). */
static int take_over(sig_req_t *r, const sig_join_t *mine, sig_pc_t pc)
{
    sig_conn_t *conn;
    sig_join_t *j;
    sig_ep_t *ep = held_elsewhere(r->s, r->c, mine, pc, &conn, &j);
    if (ep == NULL) {
        return 0;
    }
    if (conn->id > r->c->id) {
        snprintf(r->why, sizeof(r->why),
                 "a newer connection of this participant has the %s "
                 "connection",
                 sig_pc_names[pc]);
        return SPK_ESTATE;
    }
    sig_consult_t *c = mine->consult;
    ep_close(r->s, c, ep);
    if (pc == SIG_PC_PUBLISH) {
        j->media->n_tracks = 0;
    } else {
        j->media->n_slots = 0;
        j->media->next_mid = 0;
        j->media->offer_pending = false;
    }
    send_state(r->s, conn->id, c->rec.id, pc, "closed", "replaced");
    spk_info(conn->id, "media %s in %s replaced by connection %llu", sig_pc_names[pc], c->rec.id,
             (unsigned long long)r->c->id);
    return 0;
}

void sig_media_send_candidate(spk_sig_t *s, uint64_t conn, const char *consult, sig_pc_t pc,
                              const sig_ep_t *ep, const char *cand)
{
    sig_send_json(s, conn,
                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "type", "media.candidate", "consult",
                            consult, "pc", sig_pc_names[pc], "candidate", cand, "sdpMid", ep->mid,
                            "sdpMLineIndex", ep->mline));
}

/* Candidates gathered before the client had the description they belong to. */
static void flush_candidates(spk_sig_t *s, uint64_t conn, const char *consult, sig_pc_t pc,
                             sig_ep_t *ep)
{
    for (int i = 0; i < ep->n_cands; i++) {
        sig_media_send_candidate(s, conn, consult, pc, ep, ep->cands[i]);
    }
    ep->n_cands = 0;
}

/* The offer's m-sections (mid:participant:ssrc) in the debug log. */
static void log_offer(uint64_t conn, const sig_consult_t *c, const sig_media_t *m)
{
    if (spk_log_get_level() > SPK_LOG_DEBUG) {
        return;
    }
    char sum[512] = "";
    size_t o = 0;
    for (int x = 0; x < m->n_slots && o < sizeof(sum); x++) {
        const sig_slot_t *sl = &m->slots[x];
        int n = snprintf(sum + o, sizeof(sum) - o, " %s:%s:%u%s", sl->mid, sl->participant,
                         sl->track.ssrc, sl->active ? "" : "(inactive)");
        o += n > 0 ? (size_t)n : 0;
    }
    spk_debug(conn, "media offer v%lld in %s (sub %llu):%s", (long long)m->version, c->rec.id,
              (unsigned long long)m->sub.id, sum);
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
        log_offer(conn->id, j->consult, m);
        sig_send_json(s, conn->id,
                      json_pack("{s:s, s:s, s:s, s:I, s:o}", "type", "media.offer", "consult",
                                j->consult->rec.id, "sdp", sdp, "version", (json_int_t)m->version,
                                "streams", streams));
        streams = NULL;
        if (m->sub.mid[0] == '\0') {
            /* The first offer: candidates belong to its first m-section. */
            snprintf(m->sub.mid, sizeof(m->sub.mid), "%s", m->slots[0].mid);
            m->sub.mline = 0;
            flush_candidates(s, conn->id, j->consult->rec.id, SIG_PC_SUBSCRIBE, &m->sub);
        }
    }
    json_decref(streams);
    free(sdp);
}

void sig_media_consult_changed(spk_sig_t *s, sig_consult_t *c)
{
    if (s->relay == NULL) {
        return;
    }
    /* Media ends with access; then everyone left is offered what remains. */
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            sig_join_t *j = &conn->joined[k];
            if (j->consult == c && j->media != NULL && !may_flow(j)) {
                spk_info(conn->id, "media in %s ends: not admitted", c->rec.id);
                media_end(s, j);
            }
        }
    }
    for (size_t i = 0; i < c->n_conns; i++) {
        sig_conn_t *conn = spk_map_get_u64(&s->conns, c->conns[i]);
        for (int k = 0; conn != NULL && k < conn->n_joined; k++) {
            if (conn->joined[k].consult == c) {
                reoffer(s, conn, &conn->joined[k], false);
            }
        }
    }
    sig_media_bus_say(s, c, false); /* other nodes' subscribers learn this node's publishers */
}

void sig_media_unjoin(spk_sig_t *s, sig_conn_t *conn, sig_join_t *j)
{
    (void)conn;
    media_end(s, j);
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

/* The first m-section a description accepts (port != 0), or NULL. */
static const spk_sdp_media_t *first_accepted(const spk_sdp_t *sdp, int *index)
{
    for (int i = 0; i < sdp->n_media; i++) {
        if (sdp->media[i].port != 0) {
            *index = i;
            return &sdp->media[i];
        }
    }
    return NULL;
}

/* The transport parameters of a description: ICE credentials and the SHA-256 fingerprint of its
 * first accepted m-section. */
static int transport_of(const spk_sdp_t *sdp, const spk_sdp_ice_t **ice, char *fp, size_t fp_cap,
                        char *why, size_t why_len)
{
    int index;
    const spk_sdp_media_t *first = first_accepted(sdp, &index);
    if (first == NULL) {
        snprintf(why, why_len, "no accepted m-section");
        return SPK_EDECODE;
    }
    *ice = spk_sdp_media_ice(sdp, first);
    if ((*ice)->ufrag[0] == '\0' || (*ice)->pwd[0] == '\0' ||
        fingerprint_str(sdp, first, fp, fp_cap) != 0) {
        snprintf(why, why_len, "ICE credentials or SHA-256 fingerprint missing");
        return SPK_EDECODE;
    }
    return 0;
}

/* Hands the remote ICE/DTLS parameters and candidates of a description to the relay: the
 * first time, or an ICE restart (new ufrag: the relay restarts ICE and ep->local gets new
 * credentials). A candidate outside the relay's address ranges is dropped there. */
static int apply_remote(spk_sig_t *s, sig_consult_t *c, sig_ep_t *ep, const spk_sdp_t *sdp,
                        char *why, size_t why_len)
{
    const spk_sdp_ice_t *ice;
    char fp[SPK_RELAY_FINGERPRINT_LEN];
    int rc = transport_of(sdp, &ice, fp, sizeof(fp), why, why_len);
    if (rc != 0) {
        return rc;
    }
    int index;
    const spk_sdp_media_t *first = first_accepted(sdp, &index);
    if (!ep->remote_set) {
        rc = spk_relays_remote_description(s->relay, c->relay_id, ep->id, ice->ufrag, ice->pwd, fp,
                                           relay_setup(spk_sdp_media_setup(sdp, first)));
        ep->remote_set = rc == 0;
    } else if (strcmp(ep->remote_ufrag, ice->ufrag) != 0) {
        rc =
            spk_relays_ice_restart(s->relay, c->relay_id, ep->id, ice->ufrag, ice->pwd, &ep->local);
    }
    if (rc != 0) {
        snprintf(why, why_len, "relay refused the description");
        return rc == SPK_EINVAL ? SPK_EDECODE : rc;
    }
    snprintf(ep->remote_ufrag, sizeof(ep->remote_ufrag), "%s", ice->ufrag);
    snprintf(ep->remote_fp, sizeof(ep->remote_fp), "%s", fp);
    for (int i = 0; i < first->n_candidates; i++) {
        char line[SPK_RELAY_CANDIDATE_MAX];
        if (spk_sdp_candidate_format(&first->candidates[i], line, sizeof(line)) > 0) {
            (void)spk_relays_remote_candidate(s->relay, c->relay_id, ep->id, line);
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
 * bandwidth feedback) and how to rewrite its header extension ids. */
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
                                     .video = t->kind == SPK_SDP_KIND_VIDEO,
                                     .n_rids = t->n_rids,
                                     .rid_ext = t->rid_ext,
                                     .rrid_ext = t->rrid_ext};
        memcpy(st[n].rids, t->rids, sizeof(st[n].rids));
        n++;
    }
    if (n > 0 && spk_relays_set_streams(s->relay, c->relay_id, m->pub.id, st, n) != 0) {
        spk_warn(0, "relay refused the stream declaration of endpoint %llu",
                 (unsigned long long)m->pub.id);
    }
    if (spk_relays_set_ext_map(s->relay, c->relay_id, m->pub.id, m->ext_map) != 0) {
        spk_warn(0, "relay refused the header extension map of endpoint %llu",
                 (unsigned long long)m->pub.id);
    }
}

/* Whether a publish offer belongs to the publish connection the relay has: a different DTLS
 * fingerprint is a new RTCPeerConnection, which replaces it. A failed connection takes no
 * renegotiation or ICE restart. */
static int publish_target(sig_req_t *r, sig_media_t *m, const spk_sdp_t *offer, bool *fresh)
{
    const spk_sdp_ice_t *ice;
    char fp[SPK_RELAY_FINGERPRINT_LEN];
    int rc = transport_of(offer, &ice, fp, sizeof(fp), r->why, sizeof(r->why));
    if (rc != 0) {
        return rc;
    }
    *fresh = m->pub.id == 0 || (m->pub.remote_set && strcmp(m->pub.remote_fp, fp) != 0);
    if (!*fresh && m->pub.failed) {
        snprintf(r->why, sizeof(r->why),
                 "the publish connection failed: media.stop, then set up a new one");
        return SPK_ESTATE;
    }
    return 0;
}

int sig_h_media_publish(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    spk_sdp_t *offer = NULL;
    int rc = req_join(r, true, &c, &j);
    if (rc == 0) {
        rc = parse_sdp(r, &offer);
    }
    if (rc == 0) {
        rc = need_e2ee(r, c);
    }
    sig_media_t *m = rc == 0 ? media_of(j) : NULL;
    if (rc == 0 && m == NULL) {
        rc = SPK_ENOMEM;
    }
    bool fresh = false;
    if (rc == 0) {
        rc = publish_target(r, m, offer, &fresh);
    }
    if (rc == 0 && fresh) {
        rc = take_over(r, j, SIG_PC_PUBLISH);
    }
    if (rc == 0 && fresh) {
        ep_close(r->s, c, &m->pub);
        rc = ep_open(r->s, r->c, j, &m->pub, SIG_PC_PUBLISH);
    }
    if (rc == 0) {
        rc = apply_remote(r->s, c, &m->pub, offer, r->why, sizeof(r->why));
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
        if (fresh && m->pub.id != 0) {
            ep_close(r->s, c, &m->pub);
            m->n_tracks = 0;
        }
        free(answer);
        return rc;
    }
    declare_streams(r->s, c, m);
    json_object_set_new(r->reply, "sdp", json_string(answer));
    free(answer);
    add_ice_servers(r);
    sig_reply_ok(r);
    flush_candidates(r->s, r->c->id, c->rec.id, SIG_PC_PUBLISH, &m->pub);
    sig_media_consult_changed(r->s, c);
    return 0;
}

int sig_h_media_subscribe(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int rc = req_join(r, true, &c, &j);
    if (rc == 0) {
        rc = need_e2ee(r, c);
    }
    if (rc == 0) {
        rc = take_over(r, j, SIG_PC_SUBSCRIBE);
    }
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
    m->next_mid = 0;
    m->offer_pending = false;
    rc = ep_open(r->s, r->c, j, &m->sub, SIG_PC_SUBSCRIBE);
    if (rc != 0) {
        return rc;
    }
    add_ice_servers(r);
    sig_reply_ok(r);
    reoffer(r->s, r->c, j, true);
    sig_media_bus_ask(r->s, c); /* publishers on other nodes say theirs: a new offer follows */
    return 0;
}

int sig_h_media_answer(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int64_t version = 0;
    spk_sdp_t *answer = NULL;
    int rc = req_join(r, true, &c, &j);
    if (rc == 0) {
        rc = sig_get_int(r, "version", true, 1, INT64_MAX, &version);
    }
    sig_media_t *m = rc == 0 ? j->media : NULL;
    if (rc == 0 && (m == NULL || m->sub.id == 0 || m->sub.failed)) {
        snprintf(r->why, sizeof(r->why), "no working subscribe connection");
        rc = SPK_ESTATE;
    }
    if (rc == 0 && version != m->version) {
        snprintf(r->why, sizeof(r->why), "answer to offer %lld, current is %lld",
                 (long long)version, (long long)m->version);
        rc = SPK_ESTATE;
    }
    if (rc == 0) {
        rc = parse_sdp(r, &answer);
    }
    if (rc == 0 && answer->n_media != m->n_slots) {
        snprintf(r->why, sizeof(r->why), "sdp: %d m-sections, the offer has %d", answer->n_media,
                 m->n_slots);
        rc = SPK_EDECODE;
    }
    /* An answer that accepts nothing (nothing to receive) is fine: the transport stays as the
     * last answer set it up. */
    if (rc == 0 && sig_media_answer_slots(m, answer)) {
        rc = apply_remote(r->s, c, &m->sub, answer, r->why, sizeof(r->why));
    }
    free(answer);
    if (rc != 0) {
        return rc;
    }
    m->offer_pending = false;
    m->answered = version;
    if (m->starved) {
        /* a stream that waited for this answer to learn which slot it may take */
        sig_reply_ok(r);
        reoffer(r->s, r->c, j, false);
    }
    return 0;
}

int sig_h_media_candidate(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    const char *pc, *cand;
    int rc = req_join(r, true, &c, &j);
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
    rc = spk_relays_remote_candidate(r->s->relay, c->relay_id, ep->id, cand);
    /* An address outside the relay's ranges is dropped (and counted): the client learns nothing
     * about which addresses the relay would send to. */
    return rc == SPK_EFORBIDDEN ? 0 : rc;
}

int sig_h_media_stop(sig_req_t *r)
{
    sig_consult_t *c;
    sig_join_t *j;
    int rc = req_join(r, false, &c, &j);
    if (rc != 0) {
        return rc;
    }
    bool had = j->media != NULL;
    media_end(r->s, j);
    sig_reply_ok(r);
    if (had) {
        sig_media_consult_changed(r->s, c);
    }
    return 0;
}
