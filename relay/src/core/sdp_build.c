/* The relay's own descriptions: answers to browser offers, and offers. */
#include <string.h>

#include "core_int.h"
#include "sdp_int.h"
#include "spk/error.h"
#include "spk/sdp.h"

static bool ice_chars_ok(const char *s, size_t min)
{
    if (s == NULL) {
        return false;
    }
    size_t n = strlen(s);
    if (n < min || n >= SPK_SDP_MAX_ICE) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool local_ok(const spk_sdp_local_t *l)
{
    return l != NULL && ice_chars_ok(l->ice_ufrag, 4) && ice_chars_ok(l->ice_pwd, 22) &&
           l->fingerprint.hash != SPK_SDP_HASH_NONE && l->fingerprint.len > 0 &&
           l->fingerprint.len <= SPK_SDP_MAX_FINGERPRINT;
}

static void set_transport(spk_sdp_media_t *m, const spk_sdp_local_t *l, spk_sdp_setup_t setup)
{
    strcpy(m->ice.ufrag, l->ice_ufrag);
    strcpy(m->ice.pwd, l->ice_pwd);
    m->ice.trickle = l->ice_trickle;
    m->fingerprint = l->fingerprint;
    m->setup = setup;
}

static void session_init(spk_sdp_t *s, const spk_sdp_local_t *l)
{
    memset(s, 0, sizeof(*s));
    s->session_id = l->session_id;
    s->session_version = l->session_version;
    s->ice_lite = l->ice_lite;
    s->msid_semantic = true;
    strcpy(s->msid_semantic_ids, "*");
}

static spk_sdp_dir_t answer_dir(spk_sdp_dir_t offered)
{
    switch (offered) {
    case SPK_SDP_SENDONLY:
    case SPK_SDP_SENDRECV:
        return SPK_SDP_RECVONLY;
    case SPK_SDP_RECVONLY:
        return SPK_SDP_SENDONLY;
    default:
        return SPK_SDP_INACTIVE;
    }
}

static void reject_media(spk_sdp_media_t *a, const spk_sdp_media_t *o)
{
    a->port = 0;
    a->dir = SPK_SDP_INACTIVE;
    if (o->n_codecs > 0) {
        a->codecs[0] = o->codecs[0];
        a->codecs[0].fb = 0;
        a->n_codecs = 1;
    } else {
        strcpy(a->app_fmt, o->app_fmt[0] != '\0' ? o->app_fmt : "webrtc-datachannel");
    }
}

static void answer_extmaps(spk_sdp_media_t *a, const spk_sdp_media_t *o, uint32_t exts)
{
    for (unsigned i = 0; i < o->n_extmaps; i++) {
        const spk_sdp_extmap_t *e = &o->extmaps[i];
        if (e->ext != SPK_EXT_OTHER && (exts & SPK_SDP_EXT_BIT(e->ext)) != 0 &&
            a->n_extmaps < SPK_SDP_MAX_EXTMAPS) {
            spk_sdp_extmap_t *x = &a->extmaps[a->n_extmaps++];
            *x = *e;
            x->has_dir = false;
            x->dir = SPK_SDP_SENDRECV;
        }
    }
}

static bool offered_rid(const spk_sdp_media_t *o, const char *id)
{
    for (unsigned i = 0; i < o->n_rids; i++) {
        if (!o->rids[i].recv && strcmp(o->rids[i].id, id) == 0) {
            return true;
        }
    }
    return false;
}

/* Accepts the offer's simulcast streams (spk_sdp_answer_init). */
static void answer_simulcast(spk_sdp_media_t *a, const spk_sdp_media_t *o,
                             const spk_sdp_codec_t *primary, uint32_t exts)
{
    if (o->kind != SPK_SDP_KIND_VIDEO || o->n_sim < 2 || o->sim_recv ||
        primary->codec != SPK_CODEC_VP8 || (exts & SPK_SDP_EXT_BIT(SPK_EXT_RID)) == 0 ||
        spk_sdp_find_extmap(o, SPK_EXT_RID) == NULL) {
        return;
    }
    for (unsigned i = 0; i < o->n_sim; i++) {
        if (!o->sim_paused[i] && offered_rid(o, o->sim[i])) {
            strcpy(a->rids[a->n_rids].id, o->sim[i]);
            a->rids[a->n_rids++].recv = true;
            strcpy(a->sim[a->n_sim++], o->sim[i]);
        }
    }
    a->sim_recv = true;
    if (a->n_sim < 2) {
        a->n_rids = 0;
        a->n_sim = 0;
    }
}

bool spk_sdp_answer_simulcast(const spk_sdp_media_t *m)
{
    return m->port != 0 && m->n_sim >= 2 && m->sim_recv;
}

static int answer_media(spk_sdp_media_t *a, const spk_sdp_t *offer, const spk_sdp_media_t *o,
                        const spk_sdp_local_t *l, char *why, size_t why_len)
{
    memset(a, 0, sizeof(*a));
    a->kind = o->kind;
    strcpy(a->kind_name, o->kind_name);
    strcpy(a->proto, o->proto);
    strcpy(a->mid, o->mid);
    spk_sdp_codec_t primary;
    spk_sdp_codec_t rtx;
    bool rtp = strstr(o->proto, "RTP") != NULL;
    if (o->port == 0 || !rtp || spk_sdp_select_codec(o, &primary, &rtx) != 0) {
        reject_media(a, o);
        return 0;
    }
    const spk_sdp_ice_t *ice = spk_sdp_media_ice(offer, o);
    if (ice->ufrag[0] == '\0' || ice->pwd[0] == '\0') {
        return spk_core_fail(why, why_len, SPK_EDECODE, "sdp: mid %s without ICE credentials",
                             o->mid);
    }
    if (spk_sdp_media_fingerprint(offer, o)->hash == SPK_SDP_HASH_NONE) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "sdp: mid %s without fingerprint", o->mid);
    }
    if (!o->rtcp_mux) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "sdp: mid %s without rtcp-mux", o->mid);
    }
    if (o->mid[0] == '\0') {
        return spk_core_fail(why, why_len, SPK_EDECODE, "sdp: m-section without mid");
    }
    a->port = 9;
    a->dir = answer_dir(o->dir);
    a->rtcp_mux = true;
    a->rtcp_rsize = o->rtcp_rsize;
    set_transport(a, l, SPK_SDP_SETUP_PASSIVE);
    uint32_t fb = o->kind == SPK_SDP_KIND_AUDIO ? l->fb_audio : l->fb_video;
    primary.fb &= fb;
    a->codecs[a->n_codecs++] = primary;
    if (rtx.pt != 0) {
        rtx.fb = 0;
        a->codecs[a->n_codecs++] = rtx;
    }
    answer_extmaps(a, o, l->exts);
    answer_simulcast(a, o, &primary, l->exts);
    return 0;
}

int spk_sdp_answer_init(spk_sdp_t *answer, const spk_sdp_t *offer, const spk_sdp_local_t *local,
                        char *why, size_t why_len)
{
    if (answer == NULL || offer == NULL || !local_ok(local)) {
        if (answer != NULL) {
            memset(answer, 0, sizeof(*answer));
        }
        return spk_core_fail(why, why_len, SPK_EINVAL, "sdp: bad local parameters");
    }
    session_init(answer, local);
    answer->extmap_allow_mixed = offer->extmap_allow_mixed;
    for (unsigned i = 0; i < offer->n_media && i < SPK_SDP_MAX_MEDIA; i++) {
        int rc = answer_media(&answer->media[i], offer, &offer->media[i], local, why, why_len);
        if (rc != 0) {
            memset(answer, 0, sizeof(*answer));
            return rc;
        }
        answer->n_media++;
        const spk_sdp_media_t *a = &answer->media[i];
        if (a->port != 0 && a->mid[0] != '\0') {
            strcpy(answer->bundle[answer->n_bundle++], a->mid);
        }
    }
    if (answer->n_bundle == 0) {
        memset(answer, 0, sizeof(*answer));
        return spk_core_fail(why, why_len, SPK_ENOTFOUND, "sdp: no acceptable m-section");
    }
    return 0;
}

int spk_sdp_offer_init(spk_sdp_t *offer, const spk_sdp_local_t *local)
{
    if (offer == NULL || !local_ok(local)) {
        return SPK_EINVAL;
    }
    session_init(offer, local);
    offer->extmap_allow_mixed = true;
    return 0;
}

static bool mid_ok(const char *mid)
{
    size_t n = mid != NULL ? strlen(mid) : 0;
    if (n == 0 || n >= SPK_SDP_MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)mid[i];
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

uint8_t spk_sdp_offer_ext_id(uint32_t exts, spk_sdp_ext_t ext)
{
    if (ext <= SPK_EXT_OTHER || ext >= SPK_EXT_COUNT_ || (exts & SPK_SDP_EXT_BIT(ext)) == 0) {
        return 0;
    }
    unsigned id = 1;
    for (int e = 1; e < (int)ext; e++) {
        id += (exts & SPK_SDP_EXT_BIT(e)) != 0;
    }
    return id <= 14 ? (uint8_t)id : 0;
}

void spk_sdp_ext_map(const spk_sdp_t *sdp, uint32_t exts, uint8_t map[256])
{
    memset(map, 0, 256);
    for (int i = 0; i < sdp->n_media; i++) {
        const spk_sdp_media_t *m = &sdp->media[i];
        if (m->port == 0) {
            continue;
        }
        for (int k = 0; k < m->n_extmaps; k++) {
            const spk_sdp_extmap_t *x = &m->extmaps[k];
            if (x->id >= 1) {
                map[x->id] = spk_sdp_offer_ext_id(exts, x->ext);
            }
        }
    }
}

spk_sdp_media_t *spk_sdp_offer_add_media(spk_sdp_t *offer, const spk_sdp_local_t *local,
                                         spk_sdp_kind_t kind, const char *mid, spk_sdp_dir_t dir,
                                         const spk_sdp_codec_t *codecs, size_t n)
{
    if (offer == NULL || !local_ok(local) || !mid_ok(mid) || codecs == NULL || n == 0 ||
        n > SPK_SDP_MAX_CODECS || offer->n_media >= SPK_SDP_MAX_MEDIA ||
        (kind != SPK_SDP_KIND_AUDIO && kind != SPK_SDP_KIND_VIDEO) ||
        spk_sdp_find_mid(offer, mid) != NULL) {
        return NULL;
    }
    spk_sdp_media_t *m = &offer->media[offer->n_media];
    memset(m, 0, sizeof(*m));
    m->kind = kind;
    strcpy(m->kind_name, kind == SPK_SDP_KIND_AUDIO ? "audio" : "video");
    strcpy(m->proto, "UDP/TLS/RTP/SAVPF");
    strcpy(m->mid, mid);
    m->port = 9;
    m->dir = dir;
    m->rtcp_mux = true;
    m->rtcp_rsize = true;
    set_transport(m, local, SPK_SDP_SETUP_ACTPASS);
    uint32_t fb = kind == SPK_SDP_KIND_AUDIO ? local->fb_audio : local->fb_video;
    for (size_t i = 0; i < n; i++) {
        m->codecs[i] = codecs[i];
        m->codecs[i].fb = codecs[i].codec == SPK_CODEC_RTX ? 0 : fb;
    }
    m->n_codecs = (uint8_t)n;
    for (int e = 1; e < SPK_EXT_COUNT_; e++) {
        uint8_t id = spk_sdp_offer_ext_id(local->exts, (spk_sdp_ext_t)e);
        if (id == 0) {
            continue;
        }
        spk_sdp_extmap_t *x = &m->extmaps[m->n_extmaps++];
        memset(x, 0, sizeof(*x));
        x->id = id;
        x->ext = (spk_sdp_ext_t)e;
        strcpy(x->uri, spk_sdp_ext_uri((spk_sdp_ext_t)e));
    }
    strcpy(offer->bundle[offer->n_bundle++], mid);
    offer->n_media++;
    return m;
}

static bool id_ok(const char *s)
{
    return s != NULL && mid_ok(s);
}

static spk_sdp_ssrc_t *add_ssrc(spk_sdp_media_t *m, uint32_t ssrc, const char *cname,
                                const char *stream_id, const char *track_id)
{
    spk_sdp_ssrc_t *s = &m->ssrcs[m->n_ssrcs++];
    memset(s, 0, sizeof(*s));
    s->ssrc = ssrc;
    strcpy(s->cname, cname);
    strcpy(s->msid_stream, stream_id);
    strcpy(s->msid_track, track_id);
    return s;
}

int spk_sdp_media_add_stream(spk_sdp_media_t *m, uint32_t ssrc, uint32_t rtx_ssrc,
                             const char *cname, const char *stream_id, const char *track_id)
{
    if (m == NULL || !id_ok(cname) || !id_ok(stream_id) || !id_ok(track_id)) {
        return SPK_EINVAL;
    }
    unsigned need = rtx_ssrc != 0 ? 2 : 1;
    if (m->n_ssrcs + need > SPK_SDP_MAX_SSRCS ||
        (rtx_ssrc != 0 && m->n_ssrc_groups >= SPK_SDP_MAX_SSRC_GROUPS)) {
        return SPK_ETOOBIG;
    }
    if (rtx_ssrc != 0) {
        spk_sdp_ssrc_group_t *g = &m->ssrc_groups[m->n_ssrc_groups++];
        memset(g, 0, sizeof(*g));
        strcpy(g->semantics, "FID");
        g->ssrcs[0] = ssrc;
        g->ssrcs[1] = rtx_ssrc;
        g->n = 2;
    }
    add_ssrc(m, ssrc, cname, stream_id, track_id);
    if (rtx_ssrc != 0) {
        add_ssrc(m, rtx_ssrc, cname, stream_id, track_id);
    }
    strcpy(m->msid_stream, stream_id);
    strcpy(m->msid_track, track_id);
    return 0;
}

int spk_sdp_media_add_candidate(spk_sdp_media_t *m, const spk_sdp_candidate_t *c)
{
    if (m == NULL || c == NULL) {
        return SPK_EINVAL;
    }
    if (m->n_candidates >= SPK_SDP_MAX_CANDIDATES) {
        return SPK_ETOOBIG;
    }
    m->candidates[m->n_candidates++] = *c;
    return 0;
}
