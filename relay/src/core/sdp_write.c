/* SDP writer: prints an spk_sdp_t with CRLF line ends in JSEP attribute order. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sdp_int.h"
#include "spk/error.h"
#include "spk/sdp.h"

typedef struct {
    char *p;
    size_t cap;
    size_t len;
    bool overflow;
} wbuf_t;

static void wr(wbuf_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wr(wbuf_t *w, const char *fmt, ...)
{
    if (w->overflow) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->overflow = true;
        return;
    }
    w->len += (size_t)n;
}

static const char *cand_type_name(spk_cand_type_t t)
{
    switch (t) {
    case SPK_CAND_SRFLX:
        return "srflx";
    case SPK_CAND_PRFLX:
        return "prflx";
    case SPK_CAND_RELAY:
        return "relay";
    default:
        return "host";
    }
}

static void write_candidate(wbuf_t *w, const spk_sdp_candidate_t *c)
{
    wr(w, "candidate:%s %u %s %" PRIu32 " %s %u typ %s", c->foundation, c->component,
       c->transport == SPK_CAND_TCP ? "tcp" : "udp", c->priority, c->addr, c->port,
       cand_type_name(c->type));
    if (c->raddr[0] != '\0') {
        wr(w, " raddr %s rport %u", c->raddr, c->rport);
    } else if (c->rport != 0) {
        wr(w, " rport %u", c->rport);
    }
    static const char *tcptypes[] = {"", "active", "passive", "so"};
    if (c->tcptype != SPK_CAND_TCP_NONE && (unsigned)c->tcptype < 4) {
        wr(w, " tcptype %s", tcptypes[c->tcptype]);
    }
    if (c->generation != 0) {
        wr(w, " generation %" PRIu32, c->generation);
    }
}

int spk_sdp_candidate_format(const spk_sdp_candidate_t *c, char *out, size_t cap)
{
    if (out == NULL || cap == 0) {
        return SPK_ETOOBIG;
    }
    wbuf_t w = {out, cap, 0, false};
    out[0] = '\0';
    write_candidate(&w, c);
    if (w.overflow || w.len > INT32_MAX) {
        out[0] = '\0';
        return SPK_ETOOBIG;
    }
    return (int)w.len;
}

static void write_ice_dtls(wbuf_t *w, const spk_sdp_ice_t *ice, const spk_sdp_fingerprint_t *fp,
                           spk_sdp_setup_t setup)
{
    if (ice->ufrag[0] != '\0') {
        wr(w, "a=ice-ufrag:%s\r\n", ice->ufrag);
    }
    if (ice->pwd[0] != '\0') {
        wr(w, "a=ice-pwd:%s\r\n", ice->pwd);
    }
    if (ice->trickle || ice->renomination) {
        wr(w, "a=ice-options:%s%s%s\r\n", ice->trickle ? "trickle" : "",
           ice->trickle && ice->renomination ? " " : "", ice->renomination ? "renomination" : "");
    }
    if (fp->hash != SPK_SDP_HASH_NONE) {
        wr(w, "a=fingerprint:%s ", spk_sdp_hash_name(fp->hash));
        for (unsigned i = 0; i < fp->len && i < SPK_SDP_MAX_FINGERPRINT; i++) {
            wr(w, "%02X%s", fp->value[i], i + 1 < fp->len ? ":" : "\r\n");
        }
    }
    static const char *setups[] = {"", "actpass", "active", "passive", "holdconn"};
    if (setup != SPK_SDP_SETUP_NONE && (unsigned)setup < 5) {
        wr(w, "a=setup:%s\r\n", setups[setup]);
    }
}

static void write_codec(wbuf_t *w, const spk_sdp_codec_t *c)
{
    if (c->clock_rate != 0) {
        wr(w, "a=rtpmap:%u %s/%" PRIu32, c->pt, c->name, c->clock_rate);
        if (c->channels != 0) {
            wr(w, "/%u", c->channels);
        }
        wr(w, "\r\n");
    }
    static const struct {
        uint32_t bit;
        const char *text;
    } fbs[] = {{SPK_SDP_FB_GOOG_REMB, "goog-remb"},
               {SPK_SDP_FB_TRANSPORT_CC, "transport-cc"},
               {SPK_SDP_FB_CCM_FIR, "ccm fir"},
               {SPK_SDP_FB_NACK, "nack"},
               {SPK_SDP_FB_NACK_PLI, "nack pli"}};
    for (size_t i = 0; i < sizeof(fbs) / sizeof(fbs[0]); i++) {
        if (c->fb & fbs[i].bit) {
            wr(w, "a=rtcp-fb:%u %s\r\n", c->pt, fbs[i].text);
        }
    }
    if (c->fmtp[0] != '\0') {
        wr(w, "a=fmtp:%u %s\r\n", c->pt, c->fmtp);
    }
}

static void write_ssrcs(wbuf_t *w, const spk_sdp_media_t *m)
{
    for (unsigned i = 0; i < m->n_ssrc_groups && i < SPK_SDP_MAX_SSRC_GROUPS; i++) {
        const spk_sdp_ssrc_group_t *g = &m->ssrc_groups[i];
        wr(w, "a=ssrc-group:%s", g->semantics);
        for (unsigned j = 0; j < g->n && j < SPK_SDP_MAX_GROUP_SSRCS; j++) {
            wr(w, " %" PRIu32, g->ssrcs[j]);
        }
        wr(w, "\r\n");
    }
    for (unsigned i = 0; i < m->n_ssrcs && i < SPK_SDP_MAX_SSRCS; i++) {
        const spk_sdp_ssrc_t *s = &m->ssrcs[i];
        if (s->cname[0] == '\0' && s->msid_stream[0] == '\0') {
            wr(w, "a=ssrc:%" PRIu32 "\r\n", s->ssrc);
        }
        if (s->cname[0] != '\0') {
            wr(w, "a=ssrc:%" PRIu32 " cname:%s\r\n", s->ssrc, s->cname);
        }
        if (s->msid_stream[0] != '\0') {
            wr(w, "a=ssrc:%" PRIu32 " msid:%s%s%s\r\n", s->ssrc, s->msid_stream,
               s->msid_track[0] != '\0' ? " " : "", s->msid_track);
        }
    }
}

static int write_mline(wbuf_t *w, const spk_sdp_media_t *m)
{
    wr(w, "m=%s %u %s", m->kind_name[0] != '\0' ? m->kind_name : "audio", m->port,
       m->proto[0] != '\0' ? m->proto : "UDP/TLS/RTP/SAVPF");
    if (strstr(m->proto, "RTP") != NULL || m->proto[0] == '\0') {
        if (m->n_codecs == 0) {
            return SPK_EINVAL;
        }
        for (unsigned i = 0; i < m->n_codecs && i < SPK_SDP_MAX_CODECS; i++) {
            wr(w, " %u", m->codecs[i].pt);
        }
    } else {
        if (m->app_fmt[0] == '\0') {
            return SPK_EINVAL;
        }
        wr(w, " %s", m->app_fmt);
    }
    wr(w, "\r\nc=IN IP4 0.0.0.0\r\n");
    return 0;
}

static int write_media(wbuf_t *w, const spk_sdp_media_t *m)
{
    int rc = write_mline(w, m);
    if (rc != 0) {
        return rc;
    }
    for (unsigned i = 0; i < m->n_candidates && i < SPK_SDP_MAX_CANDIDATES; i++) {
        wr(w, "a=");
        write_candidate(w, &m->candidates[i]);
        wr(w, "\r\n");
    }
    if (m->end_of_candidates) {
        wr(w, "a=end-of-candidates\r\n");
    }
    write_ice_dtls(w, &m->ice, &m->fingerprint, m->setup);
    if (m->mid[0] != '\0') {
        wr(w, "a=mid:%s\r\n", m->mid);
    }
    for (unsigned i = 0; i < m->n_extmaps && i < SPK_SDP_MAX_EXTMAPS; i++) {
        const spk_sdp_extmap_t *e = &m->extmaps[i];
        wr(w, "a=extmap:%u%s%s %s\r\n", e->id, e->has_dir ? "/" : "",
           e->has_dir ? spk_sdp_dir_name(e->dir) : "", e->uri);
    }
    wr(w, "a=%s\r\n", spk_sdp_dir_name(m->dir));
    if (m->msid_stream[0] != '\0') {
        wr(w, "a=msid:%s%s%s\r\n", m->msid_stream, m->msid_track[0] != '\0' ? " " : "",
           m->msid_track);
    }
    if (m->rtcp_mux) {
        wr(w, "a=rtcp-mux\r\n");
    }
    if (m->rtcp_rsize) {
        wr(w, "a=rtcp-rsize\r\n");
    }
    if (m->bundle_only) {
        wr(w, "a=bundle-only\r\n");
    }
    if (m->sctp_port != 0) {
        wr(w, "a=sctp-port:%u\r\n", m->sctp_port);
    }
    for (unsigned i = 0; i < m->n_codecs && i < SPK_SDP_MAX_CODECS; i++) {
        write_codec(w, &m->codecs[i]);
    }
    write_ssrcs(w, m);
    for (unsigned i = 0; i < m->n_rids && i < SPK_SDP_MAX_RIDS; i++) {
        wr(w, "a=rid:%s %s\r\n", m->rids[i].id, m->rids[i].recv ? "recv" : "send");
    }
    if (m->n_sim > 0) {
        wr(w, "a=simulcast:%s ", m->sim_recv ? "recv" : "send");
        for (unsigned i = 0; i < m->n_sim && i < SPK_SDP_MAX_RIDS; i++) {
            wr(w, "%s%s%s", i > 0 ? ";" : "", m->sim_paused[i] ? "~" : "", m->sim[i]);
        }
        wr(w, "\r\n");
    }
    return 0;
}

int spk_sdp_write(const spk_sdp_t *sdp, char *out, size_t cap)
{
    if (out == NULL || cap == 0) {
        return SPK_ETOOBIG;
    }
    out[0] = '\0';
    if (sdp->n_media == 0 || sdp->n_media > SPK_SDP_MAX_MEDIA) {
        return SPK_EINVAL;
    }
    wbuf_t w = {out, cap, 0, false};
    wr(&w, "v=0\r\no=- %" PRIu64 " %" PRIu64 " IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
       sdp->session_id, sdp->session_version);
    if (sdp->ice_lite) {
        wr(&w, "a=ice-lite\r\n");
    }
    write_ice_dtls(&w, &sdp->ice, &sdp->fingerprint, sdp->setup);
    if (sdp->n_bundle > 0) {
        wr(&w, "a=group:BUNDLE");
        for (unsigned i = 0; i < sdp->n_bundle && i < SPK_SDP_MAX_MEDIA; i++) {
            wr(&w, " %s", sdp->bundle[i]);
        }
        wr(&w, "\r\n");
    }
    if (sdp->extmap_allow_mixed) {
        wr(&w, "a=extmap-allow-mixed\r\n");
    }
    if (sdp->msid_semantic) {
        wr(&w, "a=msid-semantic: WMS%s%s\r\n", sdp->msid_semantic_ids[0] != '\0' ? " " : "",
           sdp->msid_semantic_ids);
    }
    for (unsigned i = 0; i < sdp->n_media; i++) {
        int rc = write_media(&w, &sdp->media[i]);
        if (rc != 0) {
            out[0] = '\0';
            return rc;
        }
    }
    if (w.overflow || w.len > INT32_MAX) {
        out[0] = '\0';
        return SPK_ETOOBIG;
    }
    return (int)w.len;
}
