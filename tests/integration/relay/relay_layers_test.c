/* The relay end to end on 127.0.0.1 (a real spk_relay and two loadtest/peer.c peers), for what
 * the subscriber's stream is made of and for consent:
 *
 * Usage: relay_layers MODE
 *   simulcast  publisher A sends two VP8 layers ("lo", "hi") under SSRCs the relay learns from
 *              their rid header extension; subscriber B gets one stream under the declared
 *              output SSRC, without the rid element: the top layer from its key frame on, then,
 *              when A stops sending it, the low layer from its next key frame — sequence
 *              numbers without a gap and PictureIDs running on across the switch, nothing of
 *              the other layer; B's NACK for a packet of the top layer, sent before the switch,
 *              is not answered once the low layer's key frame went out, one for a packet of the
 *              low layer is answered with RTX on the output rtx SSRC carrying that packet as B
 *              first got it; a packet of an SSRC with an unknown rid is never forwarded; A's sender
 * report for the layer B receives reaches B under the output SSRC with the timestamp offset as B's
 * packets are, the one for the other layer does not. junk       consent rests on authentication: A
 * goes silent but for datagrams from its own address and port that look like RTP and RTCP and do
 * not authenticate; its endpoint still fails once the consent time has passed, while B, sending
 * SRTP, stays. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "check.h"
#include "peer.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/relay.h"
#include "spk/rtp.h"
#include "spk/rtx.h"
#include "spk/simulcast.h"
#include "spk/util.h"

#define CONSULT 91
#define EP_A 3001
#define EP_B 3002
#define OUT_SSRC 0x5EED0001u
#define OUT_RTX 0x5EED0002u
#define RID_EXT 5
#define RRID_EXT 6
#define BODY 200
#define MAX_RX 4096

/* What B received: per packet the output numbers and what the payload says it was. */
typedef struct {
    uint16_t seq;
    uint32_t ts;
    uint16_t pid;
    uint8_t layer;
    uint32_t n;
    bool rtx;
} rx_t;

typedef struct {
    spk_peer_t *peer;
    uint64_t ep;
    bool connected, failed, closed, have_stats;
    int fail_err;
    spk_relay_stats_t stats;
    rx_t rx[MAX_RX];
    size_t n_rx;
    uint64_t bad;     /* RTP not from the output SSRCs, or malformed */
    uint64_t srs;     /* sender reports */
    uint32_t sr_ssrc; /* of the last one */
    uint32_t sr_ts;
    uint64_t with_ext; /* packets that still carried a header extension element */
} side_t;

static uv_loop_t loop;
static GMainContext *pctx;
static spk_relay_t *relay;
static side_t A, B;

static side_t *side_of(uint64_t ep)
{
    return ep == EP_A ? &A : ep == EP_B ? &B : NULL;
}

static void event_cb(spk_relay_t *r, const spk_relay_event_t *ev, void *user)
{
    (void)r;
    (void)user;
    side_t *s = side_of(ev->endpoint_id);
    CHECK(s != NULL);
    switch (ev->type) {
    case SPK_RELAY_EV_LOCAL_CANDIDATE:
        if (!strstr(ev->cand, " tcp ") && !strstr(ev->cand, " TCP ") && s->peer) {
            CHECK_EQ(spk_peer_add_remote_candidate(s->peer, ev->cand[0] ? ev->cand : NULL), 0);
        }
        break;
    case SPK_RELAY_EV_CONNECTED:
        s->connected = true;
        break;
    case SPK_RELAY_EV_FAILED:
        s->failed = true;
        s->fail_err = ev->err;
        break;
    case SPK_RELAY_EV_CLOSED:
        s->closed = true;
        break;
    case SPK_RELAY_EV_STATS:
        s->have_stats = true;
        s->stats = ev->stats;
        break;
    default:
        break;
    }
}

/* B's RTP: one output SSRC (or its rtx), payload = VP8 descriptor, layer, packet number. */
static void media_cb(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user)
{
    (void)peer;
    side_t *s = user;
    if (s != &B) {
        return;
    }
    if (rtcp) {
        spk_rtcp_iter_t it;
        spk_rtcp_pkt_t p;
        spk_rtcp_sr_t sr;
        spk_rtcp_iter_init(&it, pkt, len);
        while (spk_rtcp_next(&it, &p, NULL, 0) == 0) {
            if (p.pt == SPK_RTCP_SR && spk_rtcp_parse_sr_rr(&p, &sr, NULL, 0) == 0) {
                s->srs++;
                s->sr_ssrc = sr.ssrc;
                s->sr_ts = sr.rtp_ts;
            }
        }
        return;
    }
    uint8_t buf[1500];
    if (len > sizeof(buf)) {
        s->bad++;
        return;
    }
    memcpy(buf, pkt, len);
    spk_rtp_view_t v;
    bool rtx = false;
    if (spk_rtp_parse(&v, buf, len, NULL, 0) == 0 && v.ssrc == OUT_RTX) {
        int n = spk_rtx_unwrap(buf, len, 96, OUT_SSRC);
        if (n < 0) {
            s->bad++;
            return;
        }
        len = (size_t)n;
        rtx = true;
    }
    spk_vp8_desc_t d;
    if (spk_rtp_parse(&v, buf, len, NULL, 0) != 0 || v.ssrc != OUT_SSRC ||
        spk_vp8_desc_parse(&d, buf + v.payload_off, v.payload_len) != 0 ||
        v.payload_len != d.len + 1 + 5 + BODY || s->n_rx >= MAX_RX) {
        s->bad++;
        return;
    }
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_t e;
    spk_rtp_ext_iter_init(&it, &v);
    if (spk_rtp_ext_next(&it, &e) == 0) {
        s->with_ext++;
    }
    const uint8_t *p = buf + v.payload_off + d.len + 1;
    rx_t *r = &s->rx[s->n_rx++];
    r->seq = v.seq;
    r->ts = v.ts;
    r->pid = d.picture_id;
    r->layer = p[0];
    r->n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    r->rtx = rtx;
}

static bool pump(bool (*cond)(void), unsigned timeout_ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        while (g_main_context_iteration(pctx, FALSE)) {
        }
        if (cond && cond()) {
            return true;
        }
        if (spk_mono_ns() > end) {
            return false;
        }
        usleep(200);
    }
}

static bool both_connected(void)
{
    return (A.connected && B.connected && spk_peer_connected(A.peer) &&
            spk_peer_connected(B.peer)) ||
           A.failed || B.failed;
}

static void setup_side(side_t *s, uint64_t ep, unsigned roles)
{
    s->ep = ep;
    spk_peer_config_t pc = {.ctx = pctx,
                            .address = "127.0.0.1",
                            .dtls_server = true,
                            .ice_controlled = roles == SPK_RELAY_ROLE_SUBSCRIBE,
                            .media_cb = media_cb,
                            .user = s};
    CHECK_EQ(spk_peer_new(&pc, &s->peer), 0);
    spk_relay_local_t local;
    CHECK_EQ(spk_relay_endpoint_create(relay, CONSULT, ep, roles, &local), 0);
    CHECK_EQ(spk_relay_remote_description(relay, CONSULT, ep, spk_peer_ufrag(s->peer),
                                          spk_peer_pwd(s->peer), spk_peer_fingerprint(s->peer),
                                          SPK_RELAY_SETUP_PASSIVE),
             0);
    CHECK_EQ(spk_peer_set_remote(s->peer, local.ufrag, local.pwd, local.fingerprint), 0);
}

static void connect_both(unsigned roles_b)
{
    setup_side(&A, EP_A, SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE);
    setup_side(&B, EP_B, roles_b);
    for (side_t *s = &A; s; s = s == &A ? &B : NULL) {
        const char *lines[SPK_PEER_MAX_CANDIDATES];
        bool done = false;
        size_t n = spk_peer_local_candidates(s->peer, lines, SPK_PEER_MAX_CANDIDATES, &done);
        CHECK(n > 0);
        for (size_t j = 0; j < n; j++) {
            CHECK_EQ(spk_relay_remote_candidate(relay, CONSULT, s->ep, lines[j]), 0);
        }
        CHECK_EQ(spk_relay_remote_candidate(relay, CONSULT, s->ep, NULL), 0);
    }
    CHECK(pump(both_connected, 15000));
    CHECK(!A.failed && !B.failed);
}

/* ---- simulcast ---- */

typedef struct {
    uint32_t ssrc;
    const char *rid;
    uint16_t seq;
    uint32_t ts;
    uint16_t pid;
    uint8_t tl0;
    uint8_t index;
    uint32_t n; /* packets sent */
} layer_t;

static layer_t lo = {
    .ssrc = 0xA0A0A001u, .rid = "lo", .seq = 100, .ts = 1000, .pid = 7, .index = 0};
static layer_t hi = {
    .ssrc = 0xA0A0A002u, .rid = "hi", .seq = 60000, .ts = 0x7FFFF000u, .pid = 30000, .index = 1};

/* One packet (one frame) of layer l, the rid in a one-byte header extension. */
static void send_layer(layer_t *l, bool key)
{
    uint8_t pkt[12 + 8 + 6 + 5 + BODY];
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0x90; /* V=2, X */
    pkt[1] = 96;
    spk_rtp_set_seq(pkt, l->seq++);
    spk_rtp_set_ts(pkt, l->ts);
    l->ts += 3000;
    spk_rtp_set_ssrc(pkt, l->ssrc);
    uint8_t *x = pkt + 12;
    x[0] = 0xBE;
    x[1] = 0xDE;
    x[3] = 1; /* one word */
    x[4] = (uint8_t)(RID_EXT << 4 | (strlen(l->rid) - 1));
    memcpy(x + 5, l->rid, strlen(l->rid));
    uint8_t *p = x + 8;
    p[0] = 0x90; /* X, S, partition 0 */
    p[1] = 0xC0; /* I, L */
    p[2] = (uint8_t)(0x80 | (l->pid >> 8));
    p[3] = (uint8_t)l->pid;
    p[4] = l->tl0++;
    p[5] = key ? 0x00 : 0x01; /* the frame's first byte: P */
    l->pid = (uint16_t)((l->pid + 1) & 0x7FFF);
    p[6] = l->index;
    for (int i = 0; i < 4; i++) {
        p[7 + i] = (uint8_t)(l->n >> (24 - 8 * i));
    }
    memset(p + 11, 0x5A, BODY);
    l->n++;
    CHECK_EQ(spk_peer_send_rtp(A.peer, pkt, sizeof(pkt)), 0);
}

static size_t want_rx;

static bool b_has(void)
{
    return B.n_rx >= want_rx;
}

/* Sends `frames` frames of the given layers, 20 ms apart, a key frame every `key_every`. */
static void send_frames(unsigned frames, bool with_lo, bool with_hi, unsigned key_every)
{
    for (unsigned i = 0; i < frames; i++) {
        if (with_hi) {
            send_layer(&hi, hi.n % key_every == 0);
        }
        if (with_lo) {
            send_layer(&lo, lo.n % key_every == 0);
        }
        pump(NULL, 20);
    }
}

/* The received packets from index `from`: sequence numbers and picture ids by one. */
static void check_continuous(size_t from, size_t to)
{
    for (size_t i = from + 1; i < to; i++) {
        CHECK_EQ(B.rx[i].seq, (uint16_t)(B.rx[i - 1].seq + 1));
        CHECK_EQ(B.rx[i].pid, (B.rx[i - 1].pid + 1) & 0x7FFF);
    }
}

static void request_stats(side_t *s)
{
    s->have_stats = false;
    CHECK_EQ(spk_relay_stats(relay, CONSULT, s->ep), 0);
    for (uint64_t end = spk_mono_ns() + 5000000000ull; !s->have_stats && spk_mono_ns() < end;) {
        pump(NULL, 10);
    }
    CHECK(s->have_stats);
}

/* A's streams start over (its forwarding restarts, as after the lobby): the relay asks A for a
 * key frame with the first packet; B, waiting for a key frame of its layer, asks too, inside the
 * 500 ms window, so that request is held. A's key frame arrives next and answers both: the held
 * request is not sent when the window ends. */
static void run_held_answered(void)
{
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, false), 0);
    pump(NULL, 600);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    pump(NULL, 50);
    request_stats(&A);
    uint64_t gen0 = A.stats.pli_generated, thr0 = A.stats.pli_throttled;
    size_t n0 = B.n_rx;
    send_frames(1, true, false, 1000); /* lo, not a key frame: B waits */
    send_frames(1, true, false, 1);    /* lo's key frame */
    send_frames(40, true, false, 1000);
    want_rx = n0 + 41;
    CHECK(pump(b_has, 3000));
    CHECK_EQ(B.rx[n0].layer, 0);
    request_stats(&A);
    CHECK_EQ(A.stats.pli_throttled, thr0 + 1); /* B's request, held */
    CHECK_EQ(A.stats.pli_generated, gen0 + 1); /* only the one with the first packet */
    printf("A restarted: 1 key frame request with its first packet, B's held one answered by the "
           "key frame (not sent after the window)\n");
}

static void run_simulcast(void)
{
    connect_both(SPK_RELAY_ROLE_SUBSCRIBE);
    spk_relay_stream_t st = {.ssrc = OUT_SSRC,
                             .rtx_ssrc = OUT_RTX,
                             .pt = 96,
                             .rtx_pt = 97,
                             .video = true,
                             .n_rids = 2,
                             .rids = {"lo", "hi"},
                             .rid_ext = RID_EXT,
                             .rrid_ext = RRID_EXT};
    CHECK_EQ(spk_relay_set_streams(relay, CONSULT, EP_A, &st, 1), 0);
    spk_relay_stream_t bad = st;
    bad.rid_ext = 0;
    CHECK_EQ(spk_relay_set_streams(relay, CONSULT, EP_A, &bad, 1), SPK_EINVAL);
    bad = st;
    bad.n_rids = 4;
    CHECK_EQ(spk_relay_set_streams(relay, CONSULT, EP_A, &bad, 1), SPK_EINVAL);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    pump(NULL, 50);

    /* Both layers: B gets the top one from its first key frame on. A stray SSRC with an
     * unknown rid goes nowhere. */
    layer_t stray = {.ssrc = 0xA0A0A0FFu, .rid = "xx", .seq = 1, .index = 9};
    send_layer(&stray, true);
    send_frames(60, true, true, 20);
    want_rx = 40;
    CHECK(pump(b_has, 5000));
    CHECK_EQ(B.bad, 0);
    CHECK_EQ(B.with_ext, 0); /* the rid element was removed (no extension map set) */
    size_t first_hi = 0;
    while (first_hi < B.n_rx && B.rx[first_hi].layer != 1) {
        first_hi++;
    }
    CHECK(first_hi < B.n_rx);
    for (size_t i = first_hi; i < B.n_rx; i++) {
        CHECK_EQ(B.rx[i].layer, 1);
    }
    check_continuous(0, B.n_rx);
    size_t n_before = B.n_rx;
    printf("both layers: %zu packets to B, the top layer from packet %zu on\n", n_before, first_hi);

    /* The top layer stops: after about 1.5 s the low one, from its next key frame. */
    send_frames(150, true, false, 10);
    want_rx = n_before + 25;
    CHECK(pump(b_has, 5000));
    CHECK_EQ(B.bad, 0);
    size_t first_lo = n_before;
    while (first_lo < B.n_rx && B.rx[first_lo].layer != 0) {
        first_lo++;
    }
    CHECK(first_lo < B.n_rx);
    check_continuous(0, B.n_rx);
    for (size_t i = first_lo; i < B.n_rx; i++) {
        CHECK_EQ(B.rx[i].layer, 0);
    }
    printf("top layer stopped: B on the low layer from packet %zu, %zu in all, no gap\n", first_lo,
           B.n_rx);

    /* Everything sent has arrived (nothing more comes for 300 ms). */
    for (size_t last = SIZE_MAX; last != B.n_rx;) {
        last = B.n_rx;
        pump(NULL, 300);
    }
    rx_t last_lo = B.rx[B.n_rx - 1];
    CHECK(last_lo.layer == 0 && !last_lo.rtx);
    /* A NACK for a packet B got from the top layer, before the low layer's key frame went out:
     * not answered (B's decoder starts again from that key frame). */
    rx_t stale = B.rx[first_hi + 5];
    uint8_t nack[64];
    int n = spk_rtcp_build_nack(nack, sizeof(nack), 0xB0B0B0B0u, OUT_SSRC, &stale.seq, 1);
    CHECK(n > 0);
    size_t before_nack = B.n_rx;
    CHECK_EQ(spk_peer_send_rtcp(B.peer, nack, (size_t)n), 0);
    pump(NULL, 300);
    CHECK_EQ(B.n_rx, before_nack);
    /* One for a packet of the low layer since the switch: RTX, as first sent. */
    CHECK(first_lo + 3 < before_nack);
    rx_t want = B.rx[before_nack - 3]; /* recent: the buffer holds the last half second */
    n = spk_rtcp_build_nack(nack, sizeof(nack), 0xB0B0B0B0u, OUT_SSRC, &want.seq, 1);
    CHECK(n > 0);
    CHECK_EQ(spk_peer_send_rtcp(B.peer, nack, (size_t)n), 0);
    want_rx = before_nack + 1;
    CHECK(pump(b_has, 3000));
    CHECK_EQ(B.n_rx, before_nack + 1);
    rx_t got = B.rx[before_nack];
    CHECK(got.rtx);
    CHECK_EQ(got.seq, want.seq);
    CHECK_EQ(got.pid, want.pid);
    CHECK_EQ(got.layer, 0);
    CHECK_EQ(got.n, want.n);
    /* Sender reports: the low layer's reaches B as its stream's, the top layer's does not. */
    uint8_t sr[64];
    n = spk_rtcp_build_sr(sr, sizeof(sr), hi.ssrc, 0x0123456789ABCDEFull, hi.ts, hi.n, 0, NULL, 0);
    CHECK(n > 0);
    CHECK_EQ(spk_peer_send_rtcp(A.peer, sr, (size_t)n), 0);
    pump(NULL, 300);
    CHECK_EQ(B.srs, 0);
    n = spk_rtcp_build_sr(sr, sizeof(sr), lo.ssrc, 0x0123456789ABCDEFull, lo.ts, lo.n, 0, NULL, 0);
    CHECK(n > 0);
    CHECK_EQ(spk_peer_send_rtcp(A.peer, sr, (size_t)n), 0);
    for (uint64_t end = spk_mono_ns() + 3000000000ull; B.srs == 0 && spk_mono_ns() < end;) {
        pump(NULL, 10);
    }
    CHECK_EQ(B.srs, 1);
    CHECK_EQ(B.sr_ssrc, OUT_SSRC);
    /* The last low packet was sent with lo.ts - 3000 and reached B as last_lo. */
    CHECK_EQ(B.sr_ts - lo.ts, last_lo.ts - (lo.ts - 3000));
    request_stats(&B);
    CHECK(B.stats.sim_switches >= 2);
    CHECK_EQ(B.stats.rtx_sent, 1);
    request_stats(&A);
    CHECK(A.stats.dropped_other >= 1); /* the stray SSRC */
    printf("NACK of top-layer packet %u answered with RTX; %" PRIu64 " layer switches\n", want.seq,
           B.stats.sim_switches);
    run_held_answered();
}

/* ---- consent ---- */

static bool a_failed(void)
{
    return A.failed;
}

static void run_junk(void)
{
    connect_both(SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    uint64_t t0 = spk_mono_ns();
    uint8_t junk[100];
    uint8_t good[12 + BODY] = {0x80, 96};
    spk_rtp_set_ssrc(good, 0xB0B0B0B0u);
    unsigned sent = 0;
    while (!A.failed && spk_mono_ns() - t0 < 6000000000ull) {
        /* From A: RTP- and RTCP-looking datagrams that do not authenticate. */
        for (size_t i = 0; i < sizeof(junk); i++) {
            junk[i] = (uint8_t)(sent * 13 + i * 7);
        }
        junk[0] = 0x80;
        junk[1] = sent % 2 ? 96 : 200; /* RTP, or an RTCP SR */
        CHECK_EQ(spk_peer_send_raw(A.peer, junk, sizeof(junk)), 0);
        /* From B: SRTP. */
        spk_rtp_set_seq(good, (uint16_t)sent);
        CHECK_EQ(spk_peer_send_rtp(B.peer, good, sizeof(good)), 0);
        sent++;
        pump(a_failed, 50);
    }
    double secs = (double)(spk_mono_ns() - t0) / 1e9;
    CHECK(A.failed);
    CHECK_EQ(A.fail_err, SPK_ETIMEOUT);
    CHECK(!B.failed);
    request_stats(&A);
    CHECK(A.stats.unprotect_errors >= 10);
    printf("junk from A's address (%u datagrams, %" PRIu64 " failed authentication): A failed "
           "after %.1f s (consent 1.5 s), B alive\n",
           sent, A.stats.unprotect_errors, secs);
    CHECK(secs < 5.0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "simulcast";
    spk_log_set_level(getenv("SPK_TEST_DEBUG") ? SPK_LOG_DEBUG : SPK_LOG_ERROR);
    CHECK_EQ(uv_loop_init(&loop), 0);
    pctx = g_main_context_new();
    spk_relay_config_t cfg;
    spk_relay_config_init(&cfg);
    cfg.workers = 1;
    cfg.addresses[0] = "127.0.0.1";
    cfg.n_addresses = 1;
    bool junk = strcmp(mode, "junk") == 0;
    cfg.consent_timeout_ms = junk ? 1500 : 0;
    CHECK_EQ(spk_relay_new(&loop, &cfg, event_cb, NULL, &relay), 0);
    if (junk) {
        run_junk();
    } else {
        run_simulcast();
    }
    spk_relay_destroy(relay);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    spk_peer_free(A.peer);
    spk_peer_free(B.peer);
    while (g_main_context_iteration(pctx, FALSE)) {
    }
    g_main_context_unref(pctx);
    printf("ok\n");
    return 0;
}
