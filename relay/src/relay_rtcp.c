/* RTCP per hop, on the worker thread: the relay is the receiver of each publisher and the sender
 * towards each subscriber, so it terminates RTCP instead of passing it through.
 *
 * To publishers: the relay's own receiver reports (RFC 3550 A.1/A.3/A.8 statistics of what
 * arrives, LSR/DLSR from the publisher's SRs) and a REMB (relay_remb.h) about once a second,
 * driven by the publisher's own packets (no timer: a publisher that sends nothing needs no
 * report); key frame requests (subscribers' PLI/FIR, throttled per stream: one within 500 ms of
 * the last is deferred to the window's end, not dropped; and the relay's own when a stream starts
 * or a subscriber joins); NACKs for what the retransmission buffer lacks
 * and, on declared video streams, for the gaps the relay sees itself (spk/nack.h).
 *
 * To subscribers: the publishers' SRs (and SDES) without report blocks, for lip sync;
 * retransmissions from the buffer (RFC 4588 RTX when the stream has rtx, else the original
 * packet: the outbound SRTP session allows repeated indexes for that).
 *
 * Consumed: subscribers' RRs (their loss feeds the REMB rule), REMB, SDES, BYE, XR, APP,
 * transport-cc feedback. The publisher's rtx stream is terminated too: a retransmission from the
 * publisher fills the buffer and goes to every subscriber (the relay lacked it, so all of them
 * did).
 *
 * No locks; no allocation except a stream's retransmission buffer when the stream is declared
 * or first seen. */
#include <stdlib.h>
#include <string.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define RTCP_INTERVAL_NS 1000000000ull
#define KEYFRAME_MIN_NS 500000000ull
#define NACK_MAX_SEQS 128 /* per NACK packet from a subscriber */
#define FIR_MAX_ENTRIES 8
#define FWD_MAX 640 /* forwarded SR + SDES compound */
/* The relay's own NACKs for gaps in a declared video stream: looked for every 20 ms, each
 * missing packet asked for up to 8 times 40 ms apart, not further back than 512 packets. */
#define NACK_POLL_NS 20000000ull
#define NACK_TRIES 8
#define NACK_RETRY_MS 40
#define NACK_MAX_AGE 512
#define NACK_COLLECT 64
/* Retransmission history of a video stream: rtx_window_ms (spk_relay_config_t, 500 ms by
 * default) of the stream at the rate measured
 * over each RTX_RATE_NS (or less, see history_fit), between RTX_MIN_* and SPK_RTX_VIDEO_*
 * (rtx.h); a new stream starts with RTX_START_*. It grows at once and shrinks when it needs at
 * most half of what it has. */
#define RTX_RATE_NS 1000000000ull
#define RTX_MIN_ARENA (16u * 1024u)
#define RTX_MIN_SLOTS 32u
#define RTX_START_ARENA (64u * 1024u)
#define RTX_START_SLOTS 128u
/* Room in w->ctl for a plain packet; the SRTP trailer goes after it. */
#define CTL_CAP (SPK_RELAY_PKT_MAX + 2)

typedef enum { KF_RELAY, KF_PLI, KF_FIR } keyframe_why_t;

typedef struct {
    uint8_t buf[FWD_MAX];
    size_t len;
    bool has_sr;
} fwd_t;

/* ---- helpers ---- */

/* Whether sub receives pub's media (roles and owner; not the lobby). */
static bool media_link(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub)
{
    if (sub == pub || !(pub->roles & SPK_RELAY_ROLE_PUBLISH) ||
        !(sub->roles & SPK_RELAY_ROLE_SUBSCRIBE)) {
        return false;
    }
    return pub->owner == 0 || pub->owner != sub->owner;
}

bool spk_relay_media_link(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub)
{
    return media_link(sub, pub);
}

/* Whether the relay may send to the endpoint at all: keyed, alive and out of the lobby. */
static bool can_send(const spk_relay_ep_t *to)
{
    return to->forwarding && to->srtp_out != NULL && !to->failed && to->agent != NULL;
}

/* Protects w->ctl[0, len) in place and sends it. */
static bool send_ctl(spk_relay_ep_t *to, size_t len, bool rtcp)
{
    spk_relay_worker_t *w = to->w;
    int n = (int)len;
    srtp_err_status_t e =
        rtcp ? srtp_protect_rtcp(to->srtp_out, w->ctl, &n) : srtp_protect(to->srtp_out, w->ctl, &n);
    if (e != srtp_err_status_ok) {
        to->st.dropped_other++;
        return false;
    }
    if (spk_relay_io_send(to, w->ctl, (size_t)n) != 0) {
        to->st.dropped_other++;
        return false;
    }
    to->st.bytes_tx += (uint64_t)n;
    if (rtcp) {
        to->st.rtcp_tx++;
    }
    return true;
}

static spk_relay_pstream_t *own_stream(spk_relay_ep_t *ep, uint32_t ssrc)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        if (s->in_use && s->d.ssrc == ssrc) {
            return s;
        }
    }
    return NULL;
}

/* The stream with media SSRC ssrc among the publishers sub receives. */
static spk_relay_pstream_t *find_pub(spk_relay_ep_t *sub, uint32_t ssrc, spk_relay_ep_t **pub)
{
    spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *p = c->eps[i];
        if (!media_link(sub, p)) {
            continue;
        }
        spk_relay_pstream_t *s = own_stream(p, ssrc);
        if (s != NULL) {
            *pub = p;
            return s;
        }
    }
    return NULL;
}

/* ---- the gate: nothing of a subscriber's lobby period reaches it ---- */

/* The stream's extended number for seq, relative to its newest packet (no state change). */
static int64_t ext_of(const spk_relay_pstream_t *s, uint16_t seq)
{
    return s->last_ext + (int16_t)(uint16_t)(seq - (uint16_t)s->last_ext);
}

static void loss_windows_restart(spk_relay_ep_t *sub);

void spk_relay_gate_open(spk_relay_ep_t *sub)
{
    sub->n_gate = 0;
    spk_relay_sim_resync_sub(sub); /* from a key frame on */
    loss_windows_restart(sub);     /* what it receives jumps over its time in the lobby */
    spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *p = c->eps[i];
        if (!media_link(sub, p)) {
            continue;
        }
        for (size_t k = 0; k < SPK_RELAY_MAX_STREAMS && sub->n_gate < SPK_RELAY_GATE_MAX; k++) {
            const spk_relay_pstream_t *s = &p->streams[k];
            if (s->in_use && s->have_ext) {
                sub->gate[sub->n_gate++] =
                    (spk_relay_gate_t){.pub = p->id, .ssrc = s->d.ssrc, .start = s->last_ext + 1};
            }
        }
    }
}

bool spk_relay_gate_allows(const spk_relay_ep_t *sub, const spk_relay_ep_t *pub,
                           const spk_relay_pstream_t *s, int64_t ext)
{
    if (s->d.video && sub->fallback.video_off) {
        return false; /* audio only: no video, not even retransmissions */
    }
    for (size_t i = 0; i < sub->n_gate; i++) {
        const spk_relay_gate_t *g = &sub->gate[i];
        if (g->pub == pub->id && g->ssrc == s->d.ssrc) {
            return ext >= g->start;
        }
    }
    /* The stream had no packet when sub's forwarding started: all of it came later. */
    return true;
}

/* sub gets video again after the audio-only fallback: of each video stream, only what follows
 * the newest packet (nothing of the paused period, not even through NACKs), from a key frame. */
static void request_keyframe(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint64_t now_ns,
                             keyframe_why_t why);

static void gate_video_resume(spk_relay_ep_t *sub, uint64_t now_ns)
{
    spk_relay_consult_t *c = sub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *p = c->eps[i];
        if (!media_link(sub, p)) {
            continue;
        }
        for (size_t k = 0; k < SPK_RELAY_MAX_STREAMS; k++) {
            spk_relay_pstream_t *s = &p->streams[k];
            if (!s->in_use || !s->d.video || !s->have_ext) {
                continue;
            }
            spk_relay_gate_t g = {.pub = p->id, .ssrc = s->d.ssrc, .start = s->last_ext + 1};
            size_t j = 0;
            while (j < sub->n_gate && (sub->gate[j].pub != p->id || sub->gate[j].ssrc != g.ssrc)) {
                j++;
            }
            if (j < SPK_RELAY_GATE_MAX) {
                sub->gate[j] = g;
                sub->n_gate = j == sub->n_gate ? (uint8_t)(j + 1) : sub->n_gate;
            }
            request_keyframe(p, s, now_ns, KF_RELAY);
        }
    }
}

/* pub's streams start over (new numbering): the gates others hold about them no longer apply,
 * and everything pub's streams arrive with from now on is after those gates opened. */
static void gate_forget(spk_relay_ep_t *pub)
{
    spk_relay_sim_restart_pub(pub);
    spk_relay_consult_t *c = pub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *sub = c->eps[i];
        for (size_t k = 0; k < sub->n_gate;) {
            if (sub->gate[k].pub == pub->id) {
                sub->gate[k] = sub->gate[--sub->n_gate];
            } else {
                k++;
            }
        }
    }
}

/* ---- streams ---- */

static void store_free(spk_relay_ep_t *ep, spk_relay_pstream_t *s)
{
    ep->st.rtx_buffer_bytes -= spk_rtx_store_memory(&s->store);
    spk_rtx_store_destroy(&s->store);
    memset(&s->store, 0, sizeof(s->store));
}

static void nack_free(spk_relay_ep_t *ep, spk_relay_pstream_t *s)
{
    if (s->nack != NULL) {
        ep->st.rtx_buffer_bytes -= sizeof(*s->nack);
        free(s->nack);
        s->nack = NULL;
    }
}

static void nack_reset(spk_relay_pstream_t *s)
{
    if (s->nack != NULL) {
        spk_nack_gen_init(s->nack, NACK_TRIES, NACK_RETRY_MS, NACK_MAX_AGE);
    }
}

static void stream_release(spk_relay_ep_t *ep, spk_relay_pstream_t *s)
{
    store_free(ep, s);
    nack_free(ep, s);
    memset(s, 0, sizeof(*s));
}

static void stream_setup(spk_relay_ep_t *ep, spk_relay_pstream_t *s, const spk_relay_stream_t *d,
                         bool declared)
{
    uint32_t clock = d->clock_rate != 0 ? d->clock_rate : (d->video ? 90000u : 48000u);
    if (s->in_use && s->started && (s->d.ssrc != d->ssrc || s->d.clock_rate != clock)) {
        s->started = false; /* statistics start over with the next packet */
    }
    s->d = *d;
    s->d.clock_rate = clock;
    if (s->d.rtx_pt == 0 || s->d.rtx_ssrc == 0) {
        s->d.rtx_pt = 0;
        s->d.rtx_ssrc = 0;
    }
    if (!s->in_use) {
        s->worst_fraction_lost = -1;
    }
    s->in_use = true;
    s->declared = declared;
    if (d->video && s->store.arena == NULL) {
        s->rate_t0_ns = 0;
        if (spk_rtx_store_init(&s->store, RTX_START_SLOTS, RTX_START_ARENA, SPK_RTX_MAX_PACKET) ==
            0) {
            ep->st.rtx_buffer_bytes += spk_rtx_store_memory(&s->store);
        } else {
            memset(&s->store, 0, sizeof(s->store));
            spk_warn(0, "relay: endpoint %llu: no memory for a retransmission buffer",
                     (unsigned long long)ep->id);
        }
    } else if (!d->video && s->store.arena != NULL) {
        store_free(ep, s);
    }
    /* Only for declared streams: a recovered packet is recognised on the declared rtx SSRC or,
     * without rtx, on the media SSRC itself. */
    if (declared && d->video && s->nack == NULL) {
        s->nack = malloc(sizeof(*s->nack));
        if (s->nack != NULL) {
            ep->st.rtx_buffer_bytes += sizeof(*s->nack);
            nack_reset(s);
        }
    } else if (!(declared && d->video)) {
        nack_free(ep, s);
    }
}

static spk_relay_pstream_t *free_slot(spk_relay_ep_t *ep, bool evict_learned)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        if (!ep->streams[i].in_use) {
            return &ep->streams[i];
        }
    }
    for (size_t i = 0; evict_learned && i < SPK_RELAY_MAX_STREAMS; i++) {
        if (!ep->streams[i].declared) {
            stream_release(ep, &ep->streams[i]);
            return &ep->streams[i];
        }
    }
    return NULL;
}

static bool declared_in(const spk_relay_stream_t *streams, size_t n, uint32_t ssrc, bool rtx)
{
    for (size_t i = 0; i < n; i++) {
        if ((rtx ? streams[i].rtx_ssrc : streams[i].ssrc) == ssrc && ssrc != 0) {
            return true;
        }
    }
    return false;
}

/* Whether a simulcast declaration keeps the layers of the current one (same output SSRC and
 * rids). */
static bool same_simulcast(const spk_relay_ep_t *ep, const spk_relay_stream_t *streams, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (streams[i].n_rids > 0) {
            return ep->sim.d.n_rids > 0 && streams[i].ssrc == ep->sim.d.ssrc &&
                   streams[i].n_rids == ep->sim.d.n_rids &&
                   memcmp(streams[i].rids, ep->sim.d.rids, sizeof(streams[i].rids)) == 0;
        }
    }
    return false;
}

void spk_relay_rtcp_set_streams(spk_relay_ep_t *ep, const spk_relay_stream_t *streams, size_t n)
{
    bool keep_layers = same_simulcast(ep, streams, n);
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        /* Gone from the declaration, or a learned stream that is really an rtx stream; the
         * layers of a simulcast stream (relay_simulcast.c) while it stays the same. */
        bool gone = s->layer != 0 ? !keep_layers
                                  : (s->declared && !declared_in(streams, n, s->d.ssrc, false)) ||
                                        (!s->declared && declared_in(streams, n, s->d.ssrc, true));
        if (s->in_use && gone) {
            stream_release(ep, s);
        }
    }
    spk_relay_sim_declare(ep, streams, n);
    for (size_t i = 0; i < n && i < SPK_RELAY_MAX_STREAMS; i++) {
        if (streams[i].n_rids > 0) {
            continue; /* its layers are learnt from their packets */
        }
        spk_relay_pstream_t *s = own_stream(ep, streams[i].ssrc);
        if (s == NULL) {
            s = free_slot(ep, true);
        }
        if (s != NULL) {
            stream_setup(ep, s, &streams[i], true);
        }
    }
}

spk_relay_pstream_t *spk_relay_rtcp_add_stream(spk_relay_ep_t *ep, const spk_relay_stream_t *d)
{
    spk_relay_pstream_t *s = free_slot(ep, true);
    if (s != NULL) {
        stream_setup(ep, s, d, true);
    }
    return s;
}

void spk_relay_rtcp_ep_init(spk_relay_ep_t *ep)
{
    uint64_t h = ep->id * 0x9E3779B97F4A7C15ull;
    ep->relay_ssrc = (uint32_t)(h >> 32) | 1u;
    ep->rtcp_next_ns = 0;
    spk_remb_rule_init(&ep->remb, ep->w->relay->cfg.remb_bps);
    spk_fallback_init_rule(&ep->fallback, spk_mono_ns() / 1000000u, &ep->w->relay->cfg.fallback);
    spk_relay_sim_init_sub(ep, spk_mono_ns());
}

void spk_relay_rtcp_ep_free(spk_relay_ep_t *ep)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        stream_release(ep, &ep->streams[i]);
    }
}

/* ---- key frames ---- */

static void keyframe_send(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint64_t now_ns,
                          keyframe_why_t why)
{
    uint8_t *out = pub->w->ctl;
    int n = why == KF_FIR
                ? spk_rtcp_build_fir(out, CTL_CAP, pub->relay_ssrc, s->d.ssrc, ++s->fir_seq)
                : spk_rtcp_build_pli(out, CTL_CAP, pub->relay_ssrc, s->d.ssrc);
    if (n < 0 || !send_ctl(pub, (size_t)n, true)) {
        return;
    }
    s->last_keyframe_ns = now_ns;
    if (why == KF_RELAY) {
        pub->st.pli_generated++;
    } else {
        pub->st.pli_forwarded++;
    }
}

/* At most one request per stream per KEYFRAME_MIN_NS. One that comes within the window is not
 * dropped but deferred to its end, all of them in one (a FIR if any was), so that a subscriber
 * that starts just after another still gets a key frame after at most the window, without
 * waiting for its own next request. */
static void request_keyframe(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint64_t now_ns,
                             keyframe_why_t why)
{
    if (!can_send(pub)) {
        return;
    }
    if (s->last_keyframe_ns != 0 && now_ns - s->last_keyframe_ns < KEYFRAME_MIN_NS) {
        pub->st.pli_throttled++;
        if (!s->kf_pending) {
            s->kf_pending = true;
            s->kf_why = (uint8_t)why;
            pub->kf_pending_n++;
        } else if (why == KF_FIR) {
            s->kf_why = KF_FIR;
        }
        return;
    }
    keyframe_send(pub, s, now_ns, why);
}

void spk_relay_rtcp_keyframe_seen(spk_relay_ep_t *pub, spk_relay_pstream_t *s)
{
    (void)pub; /* kf_pending_n is an upper bound: keyframe_due recounts */
    s->kf_pending = false;
}

void spk_relay_rtcp_keyframe_due(spk_relay_ep_t *pub, uint64_t now_ns)
{
    if (pub->kf_pending_n == 0 || !can_send(pub)) {
        return;
    }
    uint8_t left = 0;
    for (size_t k = 0; k < SPK_RELAY_MAX_STREAMS; k++) {
        spk_relay_pstream_t *s = &pub->streams[k];
        if (!s->kf_pending) {
            continue;
        }
        if (!s->in_use) {
            s->kf_pending = false;
        } else if (now_ns - s->last_keyframe_ns >= KEYFRAME_MIN_NS) {
            s->kf_pending = false;
            keyframe_send(pub, s, now_ns, (keyframe_why_t)s->kf_why);
        } else {
            left++;
        }
    }
    pub->kf_pending_n = left;
}

void spk_relay_rtcp_keyframe(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint64_t now_ns)
{
    request_keyframe(pub, s, now_ns, KF_RELAY);
}

void spk_relay_rtcp_on_ready(spk_relay_ep_t *ep)
{
    if (!can_send(ep) || ep->consult == NULL) {
        return;
    }
    uint64_t now = spk_mono_ns();
    ep->rtcp_next_ns = 0;
    /* Its own streams start over: what it sent in the lobby was not counted, subscribers need
     * a key frame (requested with the first packet), and the numbering (and with it what the
     * buffer holds) begins again, as the sequence numbers may have moved anywhere meanwhile. */
    for (size_t k = 0; k < SPK_RELAY_MAX_STREAMS; k++) {
        spk_relay_pstream_t *s = &ep->streams[k];
        s->started = false;
        s->have_ext = false;
        memset(&s->unwrap, 0, sizeof(s->unwrap));
        if (s->store.arena != NULL) {
            spk_rtx_store_clear(&s->store);
        }
    }
    gate_forget(ep);
    spk_relay_consult_t *c = ep->consult;
    for (size_t i = 0; i < c->n; i++) {
        spk_relay_ep_t *p = c->eps[i];
        if (!media_link(ep, p)) {
            continue;
        }
        for (size_t k = 0; k < SPK_RELAY_MAX_STREAMS; k++) {
            spk_relay_pstream_t *s = &p->streams[k];
            if (s->in_use && s->started && s->d.video) {
                request_keyframe(p, s, now, KF_RELAY);
            }
        }
    }
}

/* ---- retransmissions ---- */

static uint16_t next_rtx_seq(spk_relay_ep_t *sub, uint32_t ssrc)
{
    for (size_t i = 0; i < sub->n_rtx_out; i++) {
        if (sub->rtx_out[i].ssrc == ssrc) {
            return sub->rtx_out[i].seq++;
        }
    }
    size_t i =
        sub->n_rtx_out < SPK_RELAY_RTX_OUT_MAX ? sub->n_rtx_out++ : ssrc % SPK_RELAY_RTX_OUT_MAX;
    /* An arbitrary start (RFC 3550 wants it unpredictable; this one is per subscriber). */
    uint16_t first = (uint16_t)(((uint64_t)ssrc * 0x9E3779B1u ^ sub->id * 0x85EBCA77u) >> 7);
    sub->rtx_out[i].ssrc = ssrc;
    sub->rtx_out[i].seq = (uint16_t)(first + 1);
    return first;
}

void spk_relay_rtcp_resend(spk_relay_ep_t *sub, uint32_t rtx_ssrc, uint8_t rtx_pt,
                           const uint8_t *pkt, size_t len)
{
    if (!can_send(sub)) {
        return;
    }
    uint8_t *out = sub->w->ctl;
    int n = SPK_ETOOBIG;
    if (rtx_ssrc != 0) {
        n = spk_rtx_wrap(out, CTL_CAP, pkt, len, rtx_pt, rtx_ssrc, next_rtx_seq(sub, rtx_ssrc));
    } else if (len <= CTL_CAP) {
        memcpy(out, pkt, len);
        n = (int)len;
    }
    if (n < 0) {
        sub->st.dropped_other++;
        return;
    }
    if (send_ctl(sub, (size_t)n, false)) {
        sub->st.rtx_sent++;
    }
}

/* Sends a stored packet to one subscriber: as RTX when the stream has rtx. */
static void resend(spk_relay_ep_t *sub, const spk_relay_pstream_t *s, const uint8_t *pkt,
                   size_t len)
{
    spk_relay_rtcp_resend(sub, s->d.rtx_ssrc, s->d.rtx_pt, pkt, len);
}

/* A retransmission from the publisher's rtx stream: into the buffer and to every subscriber. */
static void rtx_in(spk_relay_ep_t *pub, spk_relay_pstream_t *s, uint8_t *pkt, size_t len,
                   uint64_t now_ns)
{
    int n = spk_rtx_unwrap(pkt, len, s->d.pt, s->d.ssrc);
    if (n < SPK_RTP_HEADER_LEN) {
        return; /* padding-only probe, or malformed */
    }
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, pkt, (size_t)n, NULL, 0) != 0) {
        return;
    }
    if (s->nack != NULL && s->started) {
        spk_nack_gen_on_packet(s->nack, v.seq, now_ns / 1000000u);
    }
    if (s->store.arena == NULL || spk_rtx_contains(&s->store, v.seq) ||
        spk_rtx_put(&s->store, v.seq, pkt, (size_t)n) != 0) {
        return;
    }
    if (s->started) {
        spk_rtp_rx_stats_update(&s->rx, v.seq, v.ts, now_ns / 1000u);
    }
    const uint8_t *stored;
    size_t slen;
    if (spk_rtx_get(&s->store, v.seq, now_ns / 1000000u, 0, &stored, &slen) != 0) {
        return;
    }
    int64_t ext = ext_of(s, v.seq);
    if (s->layer != 0) {
        return; /* a simulcast layer: kept for the subscribers' NACKs (relay_simulcast.c) */
    }
    spk_relay_consult_t *c = pub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *sub = c->eps[i];
        if (media_link(sub, pub) && spk_relay_gate_allows(sub, pub, s, ext)) {
            resend(sub, s, stored, slen);
        } else if (media_link(sub, pub)) {
            pub->st.dropped_lobby++;
        }
    }
}

static void on_nack(spk_relay_ep_t *sub, const spk_rtcp_pkt_t *p, uint64_t now_ns)
{
    spk_rtcp_fb_t fb;
    spk_rtcp_nack_iter_t it;
    if (spk_rtcp_parse_fb(p, &fb, NULL, 0) != 0 ||
        spk_rtcp_nack_iter_init(&it, &fb, NULL, 0) != 0) {
        sub->st.dropped_other++;
        return;
    }
    bool down;
    if (spk_relay_sim_nack(sub, &fb, now_ns, &down)) {
        if (down) {
            loss_windows_restart(sub); /* the next window spans the switch */
        }
        return;
    }
    spk_relay_ep_t *pub = NULL;
    spk_relay_pstream_t *s = find_pub(sub, fb.media_ssrc, &pub);
    uint16_t miss[NACK_MAX_SEQS];
    size_t n_miss = 0;
    uint16_t seq;
    for (size_t count = 0; count < NACK_MAX_SEQS && spk_rtcp_nack_next(&it, &seq); count++) {
        sub->st.nack_received++;
        if (s == NULL || !s->have_ext || !spk_relay_gate_allows(sub, pub, s, ext_of(s, seq))) {
            continue; /* unknown, or from the subscriber's lobby period: never */
        }
        const uint8_t *pkt;
        size_t len;
        if (s->store.arena != NULL &&
            spk_rtx_get(&s->store, seq, now_ns / 1000000u, 0, &pkt, &len) == 0) {
            resend(sub, s, pkt, len);
        } else {
            miss[n_miss++] = seq;
        }
    }
    if (n_miss == 0 || !can_send(pub)) {
        return;
    }
    int n = spk_rtcp_build_nack(pub->w->ctl, CTL_CAP, pub->relay_ssrc, s->d.ssrc, miss, n_miss);
    if (n > 0 && send_ctl(pub, (size_t)n, true)) {
        pub->st.nack_forwarded += n_miss;
    }
}

/* ---- RTCP from an endpoint ---- */

static void on_psfb(spk_relay_ep_t *sub, const spk_rtcp_pkt_t *p, uint64_t now_ns)
{
    spk_rtcp_fb_t fb;
    if (spk_rtcp_parse_fb(p, &fb, NULL, 0) != 0) {
        sub->st.dropped_other++;
        return;
    }
    spk_relay_ep_t *pub = NULL;
    if (sub->fallback.video_off && (p->count == SPK_PSFB_PLI || p->count == SPK_PSFB_FIR)) {
        /* It gets no video now (audio-only fallback): a key frame would cost the publisher and
         * the other subscribers for nothing; one is asked for when its video resumes. */
        sub->st.rtcp_terminated++;
        return;
    }
    if (p->count == SPK_PSFB_PLI) {
        if (spk_relay_sim_keyframe(sub, fb.media_ssrc, now_ns)) {
            return;
        }
        spk_relay_pstream_t *s = find_pub(sub, fb.media_ssrc, &pub);
        if (s != NULL) {
            request_keyframe(pub, s, now_ns, KF_PLI);
        }
        return;
    }
    size_t n = 0;
    if (p->count != SPK_PSFB_FIR || spk_rtcp_fir_count(&fb, &n, NULL, 0) != 0) {
        sub->st.rtcp_terminated++; /* REMB and the rest */
        return;
    }
    for (size_t i = 0; i < n && i < FIR_MAX_ENTRIES; i++) {
        uint32_t target;
        uint8_t seq_nr;
        spk_rtcp_fir_get(&fb, i, &target, &seq_nr);
        if (spk_relay_sim_keyframe(sub, target, now_ns)) {
            continue;
        }
        spk_relay_pstream_t *s = find_pub(sub, target, &pub);
        if (s != NULL) {
            request_keyframe(pub, s, now_ns, KF_FIR);
        }
    }
}

/* The audio-only fallback's verdict on one receiver report of a subscriber. */
static void fallback_report(spk_relay_ep_t *sub, int video_loss, int audio_loss, uint64_t now_ns)
{
    spk_fallback_change_t c =
        spk_fallback_report(&sub->fallback, now_ns / 1000000u, video_loss, audio_loss);
    if (c == SPK_FALLBACK_SAME) {
        return;
    }
    bool on = c == SPK_FALLBACK_VIDEO_ON;
    if (on) {
        gate_video_resume(sub, now_ns);
        spk_relay_sim_resync_sub(sub);
        loss_windows_restart(sub); /* the next window spans the paused numbers */
    } else {
        sub->st.video_off++;
    }
    spk_info(sub->id, "relay: video %s for a subscriber (loss video %d audio %d /256)",
             on ? "resumed" : "withheld", video_loss, audio_loss);
    spk_relay_ep_event(sub, SPK_RELAY_EV_VIDEO);
}

/* The loss window of the stream ssrc a subscriber reports on (a slot is reused when all are
 * taken). */
static spk_loss_window_t *loss_window(spk_relay_ep_t *sub, uint32_t ssrc)
{
    spk_loss_window_t *free_w = NULL;
    for (size_t i = 0; i < SPK_RELAY_LOSS_WINDOWS; i++) {
        spk_loss_window_t *w = &sub->loss_win[i];
        if (w->used && w->ssrc == ssrc) {
            return w;
        }
        free_w = free_w == NULL && !w->used ? w : free_w;
    }
    spk_loss_window_t *w = free_w ? free_w : &sub->loss_win[ssrc % SPK_RELAY_LOSS_WINDOWS];
    spk_loss_window_init(w, ssrc);
    return w;
}

static void loss_windows_restart(spk_relay_ep_t *sub)
{
    for (size_t i = 0; i < SPK_RELAY_LOSS_WINDOWS; i++) {
        spk_loss_window_restart(&sub->loss_win[i]);
    }
}

/* Report blocks from a subscriber: the worst loss per stream for the REMB rule, and per kind
 * (measured over about a second per stream) for the audio-only fallback. */
static void loss_reports(spk_relay_ep_t *sub, const spk_rtcp_sr_t *sr, uint64_t now_ns)
{
    int video_loss = -1, audio_loss = -1, sim_loss = -1;
    bool has_sim = false;
    for (unsigned i = 0; i < sr->n_reports; i++) {
        spk_rtcp_report_t r;
        spk_rtcp_report_get(sr, i, &r);
        spk_relay_ep_t *pub = NULL;
        spk_relay_pstream_t *s = find_pub(sub, r.ssrc, &pub);
        if (s == NULL) {
            if (spk_relay_sim_owns(sub, r.ssrc)) { /* a simulcast stream it receives */
                int w = spk_loss_window_update(loss_window(sub, r.ssrc), now_ns / 1000000u,
                                               r.cumulative_lost, r.ext_highest_seq);
                sim_loss = w > sim_loss ? w : sim_loss;
                has_sim = true;
            }
            continue;
        }
        int f = (int)r.fraction_lost;
        s->worst_fraction_lost = f > s->worst_fraction_lost ? (int16_t)f : s->worst_fraction_lost;
        f = spk_loss_window_update(loss_window(sub, r.ssrc), now_ns / 1000000u, r.cumulative_lost,
                                   r.ext_highest_seq);
        int *k = s->d.video ? &video_loss : &audio_loss;
        *k = f > *k ? f : *k;
    }
    if (has_sim) {
        /* The layer choice first; the fallback below the lowest layer. */
        bool changed;
        int f = spk_relay_sim_report(sub, sim_loss, now_ns, &changed);
        video_loss = f > video_loss ? f : video_loss;
        if (changed) {
            loss_windows_restart(sub); /* the next window spans the switch */
        }
    }
    /* While video is off every report counts: the next try is due after a time, also for a
     * subscriber that receives nothing else (no audio) and so has no loss to report. */
    if (video_loss >= 0 || audio_loss >= 0 || sub->fallback.video_off) {
        fallback_report(sub, video_loss, audio_loss, now_ns);
    }
}

/* A simulcast layer's SR: to each subscriber that gets that layer now, under the output SSRC and
 * with the RTP timestamp as it receives them (relay_simulcast.h), so that it can keep audio and
 * video in sync; the packet and octet counts are the layer's. */
static void sim_sr(spk_relay_ep_t *pub, const spk_relay_pstream_t *s, const spk_rtcp_sr_t *sr)
{
    spk_relay_consult_t *c = pub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *to = c->eps[i];
        uint32_t ts_off;
        if (!media_link(to, pub) || !can_send(to) ||
            !spk_relay_sim_sr_offset(to, pub, s->layer - 1, &ts_off)) {
            continue;
        }
        int n = spk_rtcp_build_sr(to->w->ctl, CTL_CAP, pub->sim.d.ssrc, sr->ntp,
                                  sr->rtp_ts + ts_off, sr->packet_count, sr->octet_count, NULL, 0);
        if (n > 0) {
            send_ctl(to, (size_t)n, true);
        }
    }
}

static void on_sr_rr(spk_relay_ep_t *ep, const spk_rtcp_pkt_t *p, fwd_t *fwd, uint64_t now_ns)
{
    spk_rtcp_sr_t sr;
    if (spk_rtcp_parse_sr_rr(p, &sr, NULL, 0) != 0) {
        ep->st.dropped_other++;
        return;
    }
    loss_reports(ep, &sr, now_ns);
    if (!sr.is_sr || !(ep->roles & SPK_RELAY_ROLE_PUBLISH)) {
        ep->st.rtcp_terminated++;
        return;
    }
    spk_relay_pstream_t *s = own_stream(ep, sr.ssrc);
    if (s != NULL && s->started) {
        spk_rtp_rx_stats_on_sr(&s->rx, sr.ntp, now_ns / 1000u);
    }
    if (s != NULL && s->layer != 0) {
        sim_sr(ep, s, &sr);
        return;
    }
    /* To the subscribers without report blocks: those are about what this endpoint receives. */
    int n = spk_rtcp_build_sr(fwd->buf + fwd->len, sizeof(fwd->buf) - fwd->len, sr.ssrc, sr.ntp,
                              sr.rtp_ts, sr.packet_count, sr.octet_count, NULL, 0);
    if (n > 0) {
        fwd->len += (size_t)n;
        fwd->has_sr = true;
    }
}

static void forward_sr(spk_relay_ep_t *pub, const fwd_t *fwd)
{
    spk_relay_consult_t *c = pub->consult;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        spk_relay_ep_t *to = c->eps[i];
        if (media_link(to, pub) && can_send(to)) {
            memcpy(to->w->ctl, fwd->buf, fwd->len);
            send_ctl(to, fwd->len, true);
        }
    }
}

void spk_relay_rtcp_in(spk_relay_ep_t *ep, const uint8_t *buf, size_t len, uint64_t now_ns)
{
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    fwd_t fwd;
    fwd.len = 0;
    fwd.has_sr = false;
    spk_rtcp_iter_init(&it, buf, len);
    int rc;
    while ((rc = spk_rtcp_next(&it, &p, NULL, 0)) == 0) {
        switch (p.pt) {
        case SPK_RTCP_SR:
        case SPK_RTCP_RR:
            on_sr_rr(ep, &p, &fwd, now_ns);
            break;
        case SPK_RTCP_SDES:
            if (fwd.has_sr && p.len <= sizeof(fwd.buf) - fwd.len) {
                memcpy(fwd.buf + fwd.len, p.data, p.len);
                fwd.len += p.len;
            } else {
                ep->st.rtcp_terminated++;
            }
            break;
        case SPK_RTCP_RTPFB:
            if (p.count == SPK_RTPFB_NACK) {
                on_nack(ep, &p, now_ns);
            } else {
                ep->st.rtcp_terminated++;
            }
            break;
        case SPK_RTCP_PSFB:
            on_psfb(ep, &p, now_ns);
            break;
        default:
            ep->st.rtcp_terminated++;
            break;
        }
    }
    if (rc != SPK_ENOTFOUND) {
        ep->st.dropped_other++;
    }
    if (fwd.has_sr) {
        forward_sr(ep, &fwd);
    }
}

/* ---- RTP from a publisher ---- */

/* Sizes s's retransmission buffer from the rate measured over the last period. */
static void history_fit(spk_relay_ep_t *ep, spk_relay_pstream_t *s, size_t len, uint64_t now_ns)
{
    s->rate_bytes += len;
    s->rate_pkts++;
    if (s->rate_t0_ns == 0) {
        s->rate_t0_ns = now_ns;
        return;
    }
    /* Measured every period, and sooner when the period has brought half of what the buffer
     * holds: it grows before it would drop packets younger than the window. */
    uint64_t dt = now_ns - s->rate_t0_ns;
    size_t cur = s->store.arena_size;
    uint32_t cur_slots = s->store.mask + 1;
    if (dt < RTX_RATE_NS && s->rate_pkts * 2 < cur_slots && s->rate_bytes * 2 < cur) {
        return;
    }
    if (dt < 1000000u) {
        dt = 1000000u;
    }
    uint32_t slots;
    size_t arena;
    spk_rtx_size_for(s->rate_bytes * 1000000000ull / dt, s->rate_pkts * 1000000000ull / dt,
                     ep->w->relay->cfg.rtx_window_ms ? ep->w->relay->cfg.rtx_window_ms : 500u,
                     SPK_RTX_MAX_PACKET, RTX_MIN_ARENA, SPK_RTX_VIDEO_ARENA, RTX_MIN_SLOTS,
                     SPK_RTX_VIDEO_SLOTS, &slots, &arena);
    s->rate_t0_ns = now_ns;
    s->rate_bytes = 0;
    s->rate_pkts = 0;
    size_t na = arena > cur ? arena : cur;
    uint32_t ns = slots > cur_slots ? slots : cur_slots;
    if (arena * 2 <= cur) {
        na = arena;
        ns = slots;
    }
    if (na == cur && ns == cur_slots) {
        return;
    }
    size_t before = spk_rtx_store_memory(&s->store);
    if (spk_rtx_store_resize(&s->store, ns, na) == 0) {
        ep->st.rtx_buffer_bytes += spk_rtx_store_memory(&s->store);
        ep->st.rtx_buffer_bytes -= before;
    }
}

spk_relay_pstream_t *spk_relay_rtcp_rtp_in(spk_relay_ep_t *ep, uint8_t *pkt, size_t len,
                                           uint64_t now_ns, int64_t *ext)
{
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, pkt, len, NULL, 0) != 0) {
        ep->st.dropped_other++;
        return NULL;
    }
    spk_relay_pstream_t *s = NULL;
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *c = &ep->streams[i];
        if (!c->in_use) {
            continue;
        }
        if (c->d.ssrc == v.ssrc) {
            s = c;
            break;
        }
        if (c->d.rtx_ssrc == v.ssrc) {
            rtx_in(ep, c, pkt, len, now_ns);
            return NULL;
        }
    }
    if (s == NULL) {
        s = free_slot(ep, false);
        if (s == NULL) {
            ep->st.dropped_other++; /* more streams than tracked */
            return NULL;
        }
        spk_relay_stream_t d = {.ssrc = v.ssrc, .pt = v.pt, .video = true};
        stream_setup(ep, s, &d, false);
    }
    if (!s->started) {
        spk_rtp_rx_stats_init(&s->rx, v.ssrc, s->d.clock_rate, v.seq);
        s->started = true;
        nack_reset(s);
        ep->rtcp_next_ns = now_ns; /* report (and REMB) with this packet */
        if (s->d.video) {
            request_keyframe(ep, s, now_ns, KF_RELAY);
        }
    }
    *ext = spk_seq_unwrap(&s->unwrap, v.seq);
    if (!s->have_ext || *ext > s->last_ext) {
        s->last_ext = *ext;
    }
    s->have_ext = true;
    spk_rtp_rx_stats_update(&s->rx, v.seq, v.ts, now_ns / 1000u);
    if (s->nack != NULL) {
        spk_nack_gen_on_packet(s->nack, v.seq, now_ns / 1000000u);
    }
    if (s->store.arena != NULL) {
        history_fit(ep, s, len, now_ns);
        (void)spk_rtx_put(&s->store, v.seq, pkt, len);
    }
    return s;
}

/* NACKs for the gaps the relay saw itself; a key frame when they cannot be repaired. */
static void nack_poll(spk_relay_ep_t *ep, uint64_t now_ns)
{
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        if (!s->in_use || !s->started || s->nack == NULL) {
            continue;
        }
        uint16_t seqs[NACK_COLLECT];
        size_t n = spk_nack_gen_collect(s->nack, now_ns / 1000000u, seqs, NACK_COLLECT);
        if (n > 0) {
            int len = spk_rtcp_build_nack(ep->w->ctl, CTL_CAP, ep->relay_ssrc, s->d.ssrc, seqs, n);
            if (len > 0 && send_ctl(ep, (size_t)len, true)) {
                ep->st.nack_sent += n;
            }
        }
        if (spk_nack_gen_keyframe_needed(s->nack)) {
            request_keyframe(ep, s, now_ns, KF_RELAY);
        }
    }
}

/* The receiver report and REMB to a publisher. */
static void report(spk_relay_ep_t *ep, uint64_t now_ns)
{
    spk_rtcp_report_t reps[SPK_RELAY_MAX_STREAMS];
    uint32_t video[SPK_RELAY_MAX_STREAMS];
    size_t nr = 0, nv = 0;
    int worst = -1;
    for (size_t i = 0; i < SPK_RELAY_MAX_STREAMS; i++) {
        spk_relay_pstream_t *s = &ep->streams[i];
        if (!s->in_use || !s->started) {
            continue;
        }
        spk_rtp_rx_stats_report(&s->rx, now_ns / 1000u, &reps[nr]);
        if (s->d.video) {
            video[nv++] = s->d.ssrc;
            int f = reps[nr].fraction_lost;
            worst = f > worst ? f : worst;
            worst = s->worst_fraction_lost > worst ? s->worst_fraction_lost : worst;
            s->worst_fraction_lost = -1;
        }
        nr++;
    }
    if (nr == 0) {
        return;
    }
    uint8_t *out = ep->w->ctl;
    int n = spk_rtcp_build_rr(out, CTL_CAP, ep->relay_ssrc, reps, nr);
    if (n < 0) {
        return;
    }
    size_t total = (size_t)n;
    bool remb = false;
    if (ep->remb.target_bps != 0 && nv > 0) {
        uint64_t bps = spk_remb_rule_update(&ep->remb, worst);
        int m = spk_rtcp_build_remb(out + total, CTL_CAP - total, ep->relay_ssrc, bps, video, nv);
        if (m > 0) {
            total += (size_t)m;
            remb = true;
            ep->st.remb_bps = bps;
        }
    }
    if (send_ctl(ep, total, true)) {
        ep->st.rtcp_rr_sent++;
        ep->st.rtcp_remb_sent += remb ? 1u : 0u;
    }
}

void spk_relay_rtcp_poll(spk_relay_ep_t *ep, uint64_t now_ns)
{
    if (!can_send(ep)) {
        return;
    }
    spk_relay_rtcp_keyframe_due(ep, now_ns);
    if (now_ns >= ep->nack_next_ns) {
        ep->nack_next_ns = now_ns + NACK_POLL_NS;
        nack_poll(ep, now_ns);
    }
    if (now_ns >= ep->rtcp_next_ns) {
        ep->rtcp_next_ns = now_ns + RTCP_INTERVAL_NS;
        report(ep, now_ns);
    }
}
