/* Relay end to end on 127.0.0.1: a real spk_relay (libnice, OpenSSL DTLS, libsrtp) and two real
 * client peers (loadtest/peer.c) in one consult. Checks the lobby gate, forwarding both ways,
 * payload integrity, stats, endpoint close and relay destroy.
 *
 * Usage: relay_e2e MODE [packets]
 *   full     full-ICE relay: lobby, forwarding both ways, one side back in the lobby, again
 *   lite     the same with an ICE-lite relay and a configured port range
 *   restart  full, then an ICE restart of one endpoint; media flows again
 *   badfp    wrong fingerprints in the remote descriptions: both endpoints fail (EVERIFY)
 *   consent  a peer vanishes: its endpoint fails when nothing arrives for consent_timeout_ms
 *   dtlsloss the peers drop the relay's first DTLS flights (server and client role): the relay's
 *            retransmission timers recover, then media flows
 *   fanout   three endpoints in one consult (one subscribe-only, sharing an owner with one of
 *            the others) and one in another consult on the same relay: each publisher reaches
 *            every other subscriber of its consult that is not its own, with per-subscriber
 *            SRTP; nothing crosses consults
 *   rtcp     RTCP per hop: publishers A (declared video with rtx) and C (learned) and a
 *            subscriber B that loses packets on purpose: B's NACKs are answered from the
 *            relay's buffer (RTX for A, the original packet for C), a NACK the buffer cannot
 *            answer reaches A, and the relay NACKs A itself for a packet it never got;
 *            PLI/FIR reach the publisher, throttled; the publishers get the
 *            relay's RRs and a REMB of the configured bitrate, lowered when B reports loss; B's
 *            own RR/REMB are not forwarded; A's SR reaches B without report blocks; a new
 *            subscriber D triggers a PLI to A
 *   withheld publisher A (declared video with rtx) and subscriber B; B goes back to the lobby
 *            while A sends: nothing of that period ever reaches B after it is forwarded to again
 *            — not B's NACKs for all of it, not A's retransmission (after the relay's own NACK)
 *            of a packet lost on its way to the relay, not a late (reordered) original — while
 *            packets sent after re-admission are forwarded and repaired as usual
 *   candfilter remote candidates: an address the relay does not listen on (127.0.0.2), a
 *            link-local, a multicast and a private one and an mDNS name are refused and counted,
 *            and no STUN check reaches the loopback one; a configured allow range and the
 *            relay's own address are accepted, and checks reach them
 * The main thread is the control thread (uv loop) and also iterates the peers' GMainContext. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "check.h"
#include "peer.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/relay.h"
#include "spk/rtp.h"
#include "spk/rtx.h"
#include "spk/util.h"

#define CONSULT 77
#define CONSULT2 78
#define EP_A 1001
#define EP_B 1002
#define EP_C 1003
#define EP_D 2001
#define N_SIDES 4
#define ROLES_ALL (SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE)
#define PAYLOAD 1000
#define MAX_PKTS 20000

typedef struct {
    spk_peer_t *peer;
    uint64_t consult;
    uint64_t ep;
    unsigned idx; /* sender index, carried in the SSRC's low byte */
    uint32_t ssrc;
    uint16_t seq;
    /* receive side */
    uint64_t got;
    uint64_t got_pli;
    uint64_t pli_ns[8]; /* arrival of the PLIs for this side's SSRC (mono ns), by got_pli % 8 */
    uint64_t got_fir;
    uint64_t got_nack;
    uint8_t nacked[65536 / 8]; /* every sequence number NACKed to this side */
    uint64_t got_rr;           /* receiver reports with a block about this side's SSRC */
    uint32_t rr_ext_seq;
    uint32_t rr_lsr;
    int32_t rr_lost;
    uint64_t got_remb;
    uint64_t remb_bps; /* last REMB */
    bool remb_own;     /* the last REMB listed this side's SSRC */
    uint64_t got_sr;   /* SRs from other sides */
    uint8_t sr_rc;     /* report count of the last one */
    uint64_t foreign;  /* feedback carrying another peer's SSRC as sender (not terminated) */
    uint64_t got_rtx;  /* RTX packets (unwrapped, then counted as the original) */
    uint32_t rtx_ssrc; /* this side's rtx SSRC when it declares rtx */
    bool drop_on;      /* drop some RTP on purpose (before SRTP) */
    uint16_t dropped[N_SIDES][64];
    size_t n_dropped[N_SIDES];
    uint64_t got_from[N_SIDES];
    uint64_t bad;
    uint64_t lat_ns_sum;
    uint64_t lat_ns_max;
    uint8_t seen[N_SIDES][MAX_PKTS];
    /* relay side */
    bool connected;
    bool failed;
    bool closed;
    bool have_stats;
    int fail_err;
    uint16_t cand_port;
    spk_relay_stats_t stats;
    const char *profile;
    int n_cands;
    int tcp_cands;
    bool cands_done;
    uint64_t video_events; /* SPK_RELAY_EV_VIDEO (audio-only fallback) */
    bool video_on;
} side_t;

static uv_loop_t loop;
static GMainContext *pctx;
static spk_relay_t *relay;
static side_t S[N_SIDES];
#define A S[0]
#define B S[1]
#define C S[2]
#define D S[3]

static side_t *side_of(uint64_t ep)
{
    for (unsigned i = 0; i < N_SIDES; i++) {
        if (S[i].ep == ep) {
            return &S[i];
        }
    }
    return NULL;
}

static void event_cb(spk_relay_t *r, const spk_relay_event_t *ev, void *user)
{
    side_t *s = side_of(ev->endpoint_id);
    CHECK(s != NULL);
    CHECK_EQ(ev->consult_id, s->consult);
    switch (ev->type) {
    case SPK_RELAY_EV_LOCAL_CANDIDATE:
        if (ev->cand[0]) {
            s->n_cands++;
            unsigned port = 0;
            /* candidate:<foundation> <component> <transport> <priority> <address> <port> ... */
            CHECK(sscanf(ev->cand, "candidate:%*s %*u %*s %*u %*s %u", &port) == 1);
            if (strstr(ev->cand, " UDP ") || strstr(ev->cand, " udp ")) {
                s->cand_port = (uint16_t)port;
            }
        } else {
            s->cands_done = true;
        }
        if (strstr(ev->cand, " tcp ") || strstr(ev->cand, " TCP ")) {
            s->tcp_cands++; /* the peers use UDP only */
        } else if (s->peer) {
            CHECK_EQ(spk_peer_add_remote_candidate(s->peer, ev->cand[0] ? ev->cand : NULL), 0);
        }
        break;
    case SPK_RELAY_EV_CONNECTED:
        s->connected = true;
        s->profile = ev->srtp_profile;
        break;
    case SPK_RELAY_EV_FAILED:
        fprintf(stderr, "endpoint %" PRIu64 " failed: %s\n", ev->endpoint_id, ev->reason);
        s->failed = true;
        s->fail_err = ev->err;
        break;
    case SPK_RELAY_EV_CLOSED:
        s->closed = true;
        s->stats = ev->stats;
        break;
    case SPK_RELAY_EV_STATS:
        s->have_stats = true;
        s->stats = ev->stats;
        break;
    case SPK_RELAY_EV_VIDEO:
        s->video_events++;
        s->video_on = ev->video_on;
        break;
    default:
        break;
    }
}

static void rtcp_report(side_t *s, const spk_rtcp_pkt_t *p)
{
    spk_rtcp_sr_t sr;
    CHECK_EQ(spk_rtcp_parse_sr_rr(p, &sr, NULL, 0), 0);
    if (sr.is_sr) {
        s->got_sr++;
        s->sr_rc = sr.n_reports;
    }
    for (unsigned i = 0; i < sr.n_reports; i++) {
        spk_rtcp_report_t r;
        spk_rtcp_report_get(&sr, i, &r);
        if (r.ssrc == s->ssrc) {
            s->got_rr++;
            s->rr_ext_seq = r.ext_highest_seq;
            s->rr_lsr = r.lsr;
            s->rr_lost = r.cumulative_lost;
        }
    }
}

static void rtcp_feedback(side_t *s, const spk_rtcp_pkt_t *p)
{
    spk_rtcp_fb_t fb;
    CHECK_EQ(spk_rtcp_parse_fb(p, &fb, NULL, 0), 0);
    spk_rtcp_remb_t remb;
    if (p->pt == SPK_RTCP_PSFB && p->count == SPK_PSFB_PLI) {
        if (fb.media_ssrc == s->ssrc) {
            s->pli_ns[s->got_pli % 8] = spk_mono_ns();
            s->got_pli++;
        }
    } else if (p->pt == SPK_RTCP_PSFB && p->count == SPK_PSFB_FIR) {
        uint32_t target;
        uint8_t nr;
        spk_rtcp_fir_get(&fb, 0, &target, &nr);
        s->got_fir += target == s->ssrc;
    } else if (p->pt == SPK_RTCP_PSFB && spk_rtcp_parse_remb(&fb, &remb, NULL, 0) == 0) {
        s->got_remb++;
        s->remb_bps = remb.bitrate_bps;
        s->remb_own = false;
        for (unsigned i = 0; i < remb.n_ssrcs; i++) {
            s->remb_own |= spk_rtcp_ssrc_at(remb.ssrcs, i) == s->ssrc;
        }
    } else if (p->pt == SPK_RTCP_RTPFB && p->count == SPK_RTPFB_NACK && fb.media_ssrc == s->ssrc) {
        spk_rtcp_nack_iter_t it;
        uint16_t seq;
        CHECK_EQ(spk_rtcp_nack_iter_init(&it, &fb, NULL, 0), 0);
        while (spk_rtcp_nack_next(&it, &seq)) {
            s->nacked[seq / 8] |= (uint8_t)(1u << (seq % 8));
        }
        s->got_nack++;
    }
}

static void media_rtcp(side_t *s, const uint8_t *pkt, size_t len)
{
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_iter_init(&it, pkt, len);
    int rc;
    while ((rc = spk_rtcp_next(&it, &p, NULL, 0)) == 0) {
        uint32_t sender = p.len >= 8 ? spk_rtcp_ssrc_at(p.data + 4, 0) : 0;
        for (unsigned i = 0; i < N_SIDES; i++) {
            if (&S[i] != s && S[i].ssrc == sender && p.pt != SPK_RTCP_SR && p.pt != SPK_RTCP_SDES) {
                s->foreign++;
            }
        }
        if (p.pt == SPK_RTCP_SR || p.pt == SPK_RTCP_RR) {
            rtcp_report(s, &p);
        } else if (p.pt == SPK_RTCP_PSFB || p.pt == SPK_RTCP_RTPFB) {
            rtcp_feedback(s, &p);
        }
    }
    if (rc != SPK_ENOTFOUND) {
        s->bad++;
    }
}

static void media_cb(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user)
{
    side_t *s = user;
    if (rtcp) {
        media_rtcp(s, pkt, len);
        return;
    }
    uint8_t orig[12 + PAYLOAD + 2];
    uint32_t ssrc = len >= 12 ? spk_rtcp_ssrc_at(pkt + 8, 0) : 0;
    for (unsigned i = 0; i < N_SIDES; i++) {
        if (ssrc != 0 && ssrc == S[i].rtx_ssrc && len <= sizeof(orig) && (pkt[1] & 0x7f) == 97) {
            memcpy(orig, pkt, len);
            int n = spk_rtx_unwrap(orig, len, 96, S[i].ssrc);
            if (n < 0) {
                s->bad++;
                return;
            }
            s->got_rtx++;
            pkt = orig;
            len = (size_t)n;
        }
    }
    if (len != 12 + PAYLOAD) {
        s->bad++;
        return;
    }
    const uint8_t *pl = pkt + 12;
    uint32_t n = (uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 | (uint32_t)pl[2] << 8 | pl[3];
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) {
        t = t << 8 | pl[4 + i];
    }
    unsigned from = pkt[11] % N_SIDES;
    bool ok = n < MAX_PKTS && !s->seen[from][n];
    for (size_t i = 12; ok && i < PAYLOAD; i++) {
        ok = pl[i] == (uint8_t)(n * 31 + i);
    }
    if (!ok) {
        s->bad++;
        return;
    }
    s->seen[from][n] = 1;
    s->got++;
    s->got_from[from]++;
    uint64_t lat = spk_mono_ns() - t;
    s->lat_ns_sum += lat;
    if (lat > s->lat_ns_max) {
        s->lat_ns_max = lat;
    }
}

/* Runs the uv loop and the peers' context until cond() or timeout. */
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
    return A.connected && B.connected && spk_peer_connected(A.peer) && spk_peer_connected(B.peer);
}

static bool any_failed(void)
{
    return A.failed || B.failed || spk_peer_failed(A.peer) || spk_peer_failed(B.peer);
}

static bool connected_or_failed(void)
{
    return both_connected() || any_failed();
}

static uint64_t want_a, want_b;

static bool received_all(void)
{
    return A.got >= want_a && B.got >= want_b;
}

static bool have_stats(void)
{
    return A.have_stats && B.have_stats;
}

static bool a_closed(void)
{
    return A.closed;
}

static bool b_closed(void)
{
    return B.closed;
}

static void build_one(side_t *s, uint32_t n, uint8_t pkt[12 + PAYLOAD])
{
    pkt[0] = 0x80;
    pkt[1] = 96;
    pkt[2] = (uint8_t)(s->seq >> 8);
    pkt[3] = (uint8_t)s->seq;
    uint32_t ts = n * 3000;
    for (int i = 0; i < 4; i++) {
        pkt[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
        pkt[8 + i] = (uint8_t)(s->ssrc >> (24 - 8 * i));
    }
    s->seq++;
    uint8_t *pl = pkt + 12;
    uint64_t t = spk_mono_ns();
    for (int i = 0; i < 4; i++) {
        pl[i] = (uint8_t)(n >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++) {
        pl[4 + i] = (uint8_t)(t >> (56 - 8 * i));
    }
    for (size_t i = 12; i < PAYLOAD; i++) {
        pl[i] = (uint8_t)(n * 31 + i);
    }
}

static void send_one(side_t *s, uint32_t n)
{
    uint8_t pkt[12 + PAYLOAD];
    build_one(s, n, pkt);
    CHECK_EQ(spk_peer_send_rtp(s->peer, pkt, sizeof(pkt)), 0);
}

/* Loss simulation in the receiving peer: every 37th sequence number (up to 64 per sender). */
static bool drop_cb(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user)
{
    side_t *s = user;
    if (rtcp || !s->drop_on || len < 12) {
        return false;
    }
    uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
    uint32_t ssrc = spk_rtcp_ssrc_at(pkt + 8, 0);
    for (unsigned i = 0; i < N_SIDES; i++) {
        if (S[i].ssrc == ssrc && seq % 37 == 5 && s->n_dropped[i] < 64) {
            s->dropped[i][s->n_dropped[i]++] = seq;
            return true;
        }
    }
    return false;
}

static uint64_t window_floor;

static bool within_window(void)
{
    return A.got >= window_floor && B.got >= window_floor;
}

/* Each side sends count packets numbered from first, in bursts of 10. When packets are expected
 * to arrive, at most WINDOW are in flight per direction, so that a starved thread on a busy
 * machine does not overflow loopback socket buffers (which would be real loss, not a relay
 * fault). */
#define WINDOW 32
static void send_both(uint32_t first, uint32_t count, bool expect_flow)
{
    for (uint32_t i = 0; i < count; i++) {
        send_one(&A, first + i);
        send_one(&B, first + i);
        if (i % 10 == 9) {
            window_floor = i + 1 > WINDOW ? i + 1 - WINDOW : 0;
            pump(expect_flow ? within_window : NULL, expect_flow ? 5000 : 1);
        }
    }
}

static void reset_rx(void)
{
    for (unsigned i = 0; i < N_SIDES; i++) {
        S[i].got = S[i].bad = S[i].lat_ns_sum = S[i].lat_ns_max = 0;
        memset(S[i].got_from, 0, sizeof(S[i].got_from));
        memset(S[i].seen, 0, sizeof(S[i].seen));
    }
}

static void exchange_candidates(int only)
{
    for (int i = 0; i < N_SIDES; i++) {
        if ((only >= 0 && only != i) || !S[i].peer) {
            continue;
        }
        const char *lines[SPK_PEER_MAX_CANDIDATES];
        bool done = false;
        size_t n = spk_peer_local_candidates(S[i].peer, lines, SPK_PEER_MAX_CANDIDATES, &done);
        CHECK(n > 0);
        for (size_t j = 0; j < n; j++) {
            CHECK_EQ(spk_relay_remote_candidate(relay, S[i].consult, S[i].ep, lines[j]), 0);
        }
        CHECK_EQ(spk_relay_remote_candidate(relay, S[i].consult, S[i].ep, NULL), 0);
    }
}

static unsigned drop_dtls_rx;

static void setup_side(side_t *s, uint64_t consult, uint64_t ep, unsigned roles, bool dtls_server,
                       bool bad_fp)
{
    s->consult = consult;
    s->ep = ep;
    s->idx = (unsigned)(s - S);
    s->ssrc = 0x11111100u * (s->idx + 1) + s->idx;
    s->seq = (uint16_t)(s->ssrc * 7);
    spk_peer_config_t pc = {.ctx = pctx,
                            .address = "127.0.0.1",
                            .dtls_server = dtls_server,
                            .ice_controlled = roles == SPK_RELAY_ROLE_SUBSCRIBE,
                            .media_cb = media_cb,
                            .user = s,
                            .drop_dtls_rx = drop_dtls_rx,
                            .drop_rx = drop_cb};
    CHECK_EQ(spk_peer_new(&pc, &s->peer), 0);
    spk_relay_local_t local;
    CHECK_EQ(spk_relay_endpoint_create(relay, consult, ep, roles, &local), 0);
    CHECK(strlen(local.ufrag) >= 4);
    CHECK(strcmp(local.fingerprint, spk_relay_fingerprint(relay)) == 0);
    /* The peer's setup: passive peer -> the relay is the DTLS client, and vice versa. */
    spk_relay_setup_t setup = dtls_server ? SPK_RELAY_SETUP_PASSIVE : SPK_RELAY_SETUP_ACTIVE;
    char fp[SPK_RELAY_FINGERPRINT_LEN];
    snprintf(fp, sizeof(fp), "%s", spk_peer_fingerprint(s->peer));
    if (bad_fp) {
        fp[0] = fp[0] == 'A' ? 'B' : 'A';
    }
    CHECK_EQ(spk_relay_remote_description(relay, consult, ep, spk_peer_ufrag(s->peer),
                                          spk_peer_pwd(s->peer), fp, setup),
             0);
    CHECK_EQ(spk_peer_set_remote(s->peer, local.ufrag, local.pwd, local.fingerprint), 0);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static void request_stats(void)
{
    A.have_stats = B.have_stats = false;
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_A), 0);
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_B), 0);
    CHECK(pump(have_stats, 5000));
}

static void phase_lobby(uint32_t n)
{
    reset_rx();
    send_both(0, n, false);
    pump(NULL, 300);
    CHECK_EQ(A.got, 0);
    CHECK_EQ(B.got, 0);
    request_stats();
    CHECK_EQ(A.stats.rtp_rx, n);
    CHECK_EQ(B.stats.rtp_rx, n);
    CHECK_EQ(A.stats.rtp_tx, 0);
    CHECK(A.stats.dropped_lobby >= n);
    printf("lobby: %u packets each way sent, 0 forwarded\n", n);
}

static void phase_flow(const char *name, uint32_t first, uint32_t n)
{
    request_stats();
    uint64_t w0 = A.stats.worker_cpu_ns;
    uint64_t fwd0 = A.stats.rtp_tx + B.stats.rtp_tx;
    reset_rx();
    want_a = want_b = n;
    double c0 = cpu_s();
    uint64_t t0 = spk_mono_ns();
    send_both(first, n, true);
    bool all = pump(received_all, 10000);
    double secs = (double)(spk_mono_ns() - t0) / 1e9;
    double cpu = cpu_s() - c0;
    printf("%s: A got %" PRIu64 "/%u, B got %" PRIu64 "/%u, bad %" PRIu64 "/%" PRIu64
           ", latency avg %.1f/%.1f us max %.1f/%.1f us, %.3f s, process CPU %.3f s\n",
           name, A.got, n, B.got, n, A.bad, B.bad, A.got ? A.lat_ns_sum / 1e3 / A.got : 0.0,
           B.got ? B.lat_ns_sum / 1e3 / B.got : 0.0, A.lat_ns_max / 1e3, B.lat_ns_max / 1e3, secs,
           cpu);
    CHECK_EQ(A.bad, 0);
    CHECK_EQ(B.bad, 0);
    CHECK(all);
    request_stats();
    CHECK_EQ(A.stats.dtls_released, 1); /* each peer sent SRTP: its DTLS state is gone */
    CHECK_EQ(B.stats.dtls_released, 1);
    uint64_t fwd = A.stats.rtp_tx + B.stats.rtp_tx - fwd0;
    printf("%s: relay worker CPU %.2f us per forwarded packet (%" PRIu64 " packets, fan-out 1)\n",
           name, (double)(A.stats.worker_cpu_ns - w0) / 1e3 / (double)fwd, fwd);
}

static bool got_plis(void)
{
    return A.got_pli >= 1 && B.got_pli >= 1;
}

static bool got_plis_twice(void)
{
    return A.got_pli >= 2 && B.got_pli >= 2;
}

/* RTCP feedback through the relay: each side asks the other for a key frame five times; the
 * relay passes one per stream per 500 ms: the first at once, the other four in one when the
 * window ends. Both publishers have had the relay's RR and REMB. */
static void phase_rtcp(void)
{
    uint8_t pli[64];
    pump(NULL, 600); /* past the key frame request the relay made when the streams started */
    request_stats();
    uint64_t throttled0 = A.stats.pli_throttled + B.stats.pli_throttled;
    A.got_pli = B.got_pli = 0;
    for (int i = 0; i < 5; i++) {
        int n = spk_rtcp_build_pli(pli, sizeof(pli), A.ssrc, B.ssrc);
        CHECK_EQ(n, 12);
        CHECK_EQ(spk_peer_send_rtcp(A.peer, pli, (size_t)n), 0);
        n = spk_rtcp_build_pli(pli, sizeof(pli), B.ssrc, A.ssrc);
        CHECK_EQ(spk_peer_send_rtcp(B.peer, pli, (size_t)n), 0);
    }
    CHECK(pump(got_plis, 5000));
    pump(NULL, 200);
    CHECK_EQ(A.got_pli, 1);
    CHECK_EQ(B.got_pli, 1);
    CHECK(pump(got_plis_twice, 3000)); /* no packets meanwhile: the worker's tick sends them */
    pump(NULL, 700);
    CHECK_EQ(A.got_pli, 2);
    CHECK_EQ(B.got_pli, 2);
    CHECK((A.pli_ns[1] - A.pli_ns[0]) / 1000000u >= 450);
    CHECK_EQ(A.bad, 0);
    CHECK_EQ(B.bad, 0);
    request_stats();
    CHECK(A.stats.pli_throttled + B.stats.pli_throttled >= throttled0 + 8);
    CHECK(A.got_rr > 0 && B.got_rr > 0);
    CHECK(A.got_remb > 0 && A.remb_own && B.got_remb > 0 && B.remb_own);
    CHECK_EQ(A.remb_bps, SPK_RELAY_REMB_DEFAULT);
    CHECK_EQ(A.foreign, 0);
    CHECK_EQ(B.foreign, 0);
    printf("rtcp: 5 PLIs each way, 1 forwarded at once and 1 when the window ended; RR and "
           "REMB %" PRIu64 " bit/s from the relay\n",
           A.remb_bps);
}

static void phase_one_side_lobby(uint32_t first, uint32_t n)
{
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, false), 0);
    pump(NULL, 50);
    reset_rx();
    send_both(first, n, false);
    pump(NULL, 300);
    CHECK_EQ(A.got, 0); /* nothing to an endpoint in the lobby */
    CHECK_EQ(B.got, 0); /* nothing from an endpoint in the lobby */
    printf("A in lobby: 0 forwarded either way\n");
}

static bool a_failed(void)
{
    return A.failed;
}

static bool both_relay_failed(void)
{
    return A.failed && B.failed;
}

static void connect_all(bool bad_fp)
{
    setup_side(&A, CONSULT, EP_A, ROLES_ALL, false, bad_fp); /* relay is DTLS server */
    setup_side(&B, CONSULT, EP_B, ROLES_ALL, true, bad_fp);  /* relay is DTLS client */
    pump(NULL, 20);
    exchange_candidates(-1);
}

static void phase_restart(uint32_t first, uint32_t n)
{
    spk_relay_local_t local;
    A.cands_done = false;
    CHECK_EQ(spk_peer_ice_restart(A.peer), 0);
    CHECK_EQ(spk_relay_ice_restart(relay, CONSULT, EP_A, spk_peer_ufrag(A.peer),
                                   spk_peer_pwd(A.peer), &local),
             0);
    CHECK_EQ(spk_peer_set_remote_ice(A.peer, local.ufrag, local.pwd), 0);
    exchange_candidates(0);
    /* Media resumes once the new pair is selected; send until it does. */
    reset_rx();
    uint32_t sent = 0;
    uint64_t end = spk_mono_ns() + 10000000000ull;
    while ((A.got < 20 || B.got < 20) && spk_mono_ns() < end) {
        send_one(&A, first + sent);
        send_one(&B, first + sent);
        sent++;
        CHECK(sent < n);
        pump(NULL, 5);
    }
    CHECK(A.got >= 20 && B.got >= 20);
    CHECK(!any_failed());
    printf("ICE restart: media flows again after %u packets\n", sent);
}

static bool all_connected(void)
{
    for (unsigned i = 0; i < N_SIDES; i++) {
        if (S[i].peer && !(S[i].connected && spk_peer_connected(S[i].peer))) {
            return false;
        }
    }
    return true;
}

static bool fanout_done(void)
{
    return B.got_from[2] >= want_a && A.got_from[2] >= want_a && C.got_from[0] >= want_a;
}

static bool fanout_window(void)
{
    return A.got >= window_floor && B.got >= window_floor && C.got >= window_floor;
}

static void run_fanout(uint32_t n)
{
    setup_side(&A, CONSULT, EP_A, ROLES_ALL, false, false);
    setup_side(&B, CONSULT, EP_B, SPK_RELAY_ROLE_SUBSCRIBE, true, false);
    setup_side(&C, CONSULT, EP_C, ROLES_ALL, false, false);
    setup_side(&D, CONSULT2, EP_D, ROLES_ALL, true, false);
    /* A and B are one participant's publish(+subscribe) and subscribe connections. */
    CHECK_EQ(spk_relay_set_owner(relay, CONSULT, EP_A, 9), 0);
    CHECK_EQ(spk_relay_set_owner(relay, CONSULT, EP_B, 9), 0);
    pump(NULL, 20);
    exchange_candidates(-1);
    CHECK(pump(all_connected, 15000));
    for (unsigned i = 0; i < N_SIDES; i++) {
        CHECK(!S[i].failed && !spk_peer_failed(S[i].peer));
        CHECK_EQ(spk_relay_set_forwarding(relay, S[i].consult, S[i].ep, true), 0);
    }
    pump(NULL, 50);
    request_stats();
    uint64_t w0 = A.stats.worker_cpu_ns;
    reset_rx();
    want_a = n;
    for (uint32_t i = 0; i < n; i++) {
        for (unsigned k = 0; k < N_SIDES; k++) {
            send_one(&S[k], i);
        }
        if (i % 10 == 9) {
            window_floor = i + 1 > WINDOW ? i + 1 - WINDOW : 0;
            pump(fanout_window, 5000);
        }
    }
    CHECK(pump(fanout_done, 10000));
    pump(NULL, 200);
    for (unsigned i = 0; i < N_SIDES; i++) {
        CHECK_EQ(S[i].bad, 0);
        CHECK_EQ(S[i].got_from[i], 0); /* never echoed */
        CHECK_EQ(S[i].got_from[1], 0); /* B only subscribes */
        CHECK_EQ(S[i].got_from[3], 0); /* D is in another consult */
    }
    CHECK_EQ(D.got, 0);
    CHECK_EQ(A.got, n);
    CHECK_EQ(B.got, n);
    CHECK_EQ(B.got_from[0], 0); /* same owner as A */
    CHECK_EQ(C.got, n);
    request_stats();
    uint64_t fwd = A.stats.rtp_tx + B.stats.rtp_tx + C.stats.rtp_tx;
    printf("fanout: A %" PRIu64 ", B %" PRIu64 " (from C only), C %" PRIu64 ", D %" PRIu64
           "; %" PRIu64 " packets forwarded\n",
           A.got, B.got, C.got, D.got, fwd);
    printf("fanout: worker CPU %.2f us per forwarded packet (the worker of consult %d also "
           "received the packets that had no subscriber)\n",
           (double)(A.stats.worker_cpu_ns - w0) / 1e3 / (double)fwd, CONSULT);
    for (unsigned i = 1; i < N_SIDES; i++) {
        S[i].closed = false;
        CHECK_EQ(spk_relay_endpoint_close(relay, S[i].consult, S[i].ep), 0);
    }
}

/* ---- rtcp mode ---- */

#define RTCP_REMB_BPS 1500000u

static bool rtcp_window(void)
{
    return B.got_from[0] + B.n_dropped[0] >= window_floor &&
           B.got_from[2] + B.n_dropped[2] >= window_floor;
}

static bool b_has_all(void)
{
    return B.got_from[0] >= want_a && B.got_from[2] >= want_b;
}

static bool rtcp_have_stats(void)
{
    return A.have_stats && B.have_stats && C.have_stats;
}

static void rtcp_stats_ab(void)
{
    A.have_stats = B.have_stats = false;
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_A), 0);
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_B), 0);
    CHECK(pump(have_stats, 5000));
}

static void rtcp_stats(void)
{
    A.have_stats = B.have_stats = C.have_stats = false;
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_A), 0);
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_B), 0);
    CHECK_EQ(spk_relay_stats(relay, CONSULT, EP_C), 0);
    CHECK(pump(rtcp_have_stats, 5000));
}

static bool got_nack_for(const side_t *s, uint16_t seq)
{
    return (s->nacked[seq / 8] >> (seq % 8)) & 1u;
}

static void rtcp_send_nack(side_t *from, uint32_t media, const uint16_t *seqs, size_t n)
{
    uint8_t buf[512];
    int len = spk_rtcp_build_nack(buf, sizeof(buf), from->ssrc, media, seqs, n);
    CHECK(len > 0);
    CHECK_EQ(spk_peer_send_rtcp(from->peer, buf, (size_t)len), 0);
}

/* A and C send n packets; B drops every 37th on purpose; A "loses" one packet on its way to the
 * relay and sends it later on its rtx stream. Then B NACKs what it dropped. */
static void rtcp_phase_nack(uint32_t n)
{
    uint16_t a_first = A.seq;
    uint8_t held[12 + PAYLOAD];
    uint16_t held_seq = 0;
    reset_rx();
    B.drop_on = true;
    for (uint32_t i = 0; i < n; i++) {
        if (i == n / 2) {
            held_seq = A.seq;
            build_one(&A, i, held); /* not sent: lost before the relay */
        } else {
            send_one(&A, i);
        }
        send_one(&C, i);
        if (i % 10 == 9) {
            window_floor = i + 1 > WINDOW ? i + 1 - WINDOW : 0;
            CHECK(pump(rtcp_window, 5000));
        }
    }
    window_floor = n - 1;
    CHECK(pump(rtcp_window, 5000));
    B.drop_on = false;
    CHECK(B.n_dropped[0] > 5 && B.n_dropped[2] > 5);
    CHECK_EQ(B.got_rtx, 0);
    /* A goes on at a video-like pace until the relay has NACKed the gap (it looks for gaps
     * every 20 ms, as A's packets arrive). */
    uint32_t extra = 0;
    while (!got_nack_for(&A, held_seq) && extra < 200) {
        send_one(&A, n + extra++);
        pump(NULL, 10);
    }
    CHECK(got_nack_for(&A, held_seq)); /* the relay's own, for the gap it saw */
    want_a = n + extra;
    want_b = n;
    /* The publisher's retransmission of the packet the relay never had: into the buffer and on
     * to B as RTX. */
    uint8_t rtx[sizeof(held) + 2];
    int len = spk_rtx_wrap(rtx, sizeof(rtx), held, sizeof(held), 97, A.rtx_ssrc, 1);
    CHECK(len > 0);
    CHECK_EQ(spk_peer_send_rtp(A.peer, rtx, (size_t)len), 0);
    rtcp_send_nack(&B, A.ssrc, B.dropped[0], B.n_dropped[0]);
    rtcp_send_nack(&B, C.ssrc, B.dropped[2], B.n_dropped[2]);
    uint16_t gone = (uint16_t)(a_first - 100);
    rtcp_send_nack(&B, A.ssrc, &gone, 1); /* never sent: not in the buffer */
    CHECK(pump(b_has_all, 5000));
    pump(NULL, 200);
    CHECK_EQ(B.bad, 0);
    CHECK_EQ(B.got_from[0], n + extra);
    CHECK_EQ(B.got_from[2], n);
    CHECK_EQ(B.got_rtx, B.n_dropped[0] + 1); /* RTX for A only: C has no rtx */
    CHECK(got_nack_for(&A, gone));           /* B's, forwarded */
    rtcp_stats();
    CHECK_EQ(B.stats.nack_received, B.n_dropped[0] + B.n_dropped[2] + 1);
    CHECK_EQ(B.stats.rtx_sent, B.n_dropped[0] + B.n_dropped[2] + 1);
    CHECK_EQ(A.stats.nack_forwarded, 1);
    CHECK(A.stats.nack_sent >= 1);
    CHECK_EQ(C.stats.nack_sent, 0); /* learned stream: the relay does not NACK it itself */
    CHECK(A.stats.rtx_buffer_bytes > 0 && C.stats.rtx_buffer_bytes > 0);
    printf("nack: B dropped %zu of A and %zu of C; retransmitted from the buffer (%" PRIu64
           " RTX incl. 1 repaired upstream after the relay's NACK for seq %u), 1 NACK "
           "forwarded to A\n",
           B.n_dropped[0], B.n_dropped[2], B.got_rtx, (unsigned)held_seq);
}

static bool a_and_c_keyframe(void)
{
    return A.got_pli >= 1 && C.got_fir >= 1;
}

static void rtcp_phase_pli(void)
{
    pump(NULL, 600); /* past the throttle */
    rtcp_stats();
    uint64_t fwd0 = A.stats.pli_forwarded, thr0 = A.stats.pli_throttled;
    A.got_pli = C.got_fir = 0;
    uint8_t buf[64];
    for (int i = 0; i < 3; i++) {
        int n = spk_rtcp_build_pli(buf, sizeof(buf), B.ssrc, A.ssrc);
        CHECK_EQ(spk_peer_send_rtcp(B.peer, buf, (size_t)n), 0);
    }
    int n = spk_rtcp_build_fir(buf, sizeof(buf), B.ssrc, C.ssrc, 1);
    CHECK_EQ(spk_peer_send_rtcp(B.peer, buf, (size_t)n), 0);
    CHECK(pump(a_and_c_keyframe, 3000));
    pump(NULL, 200);
    CHECK_EQ(A.got_pli, 1);
    CHECK_EQ(C.got_fir, 1);
    rtcp_stats();
    CHECK_EQ(A.stats.pli_forwarded, fwd0 + 1);
    CHECK_EQ(A.stats.pli_throttled, thr0 + 2);
    printf("pli: 3 PLIs from B for A's stream: 1 reached A (2 throttled); B's FIR reached C\n");
}

/* B reports 25 % loss on A's stream and sends its own REMB; A sends an SR. */
static void rtcp_phase_remb(uint32_t first)
{
    CHECK(A.got_remb > 0 && A.remb_own && C.got_remb > 0);
    CHECK_EQ(A.remb_bps, RTCP_REMB_BPS);
    CHECK(A.got_rr > 0 && C.got_rr > 0);
    CHECK_EQ(B.got_sr, 0);
    uint64_t remb0 = A.got_remb;
    uint64_t end = spk_mono_ns() + 3500000000ull;
    uint8_t buf[512];
    for (uint32_t i = 0; spk_mono_ns() < end; i++) {
        send_one(&A, first + i);
        if (i % 20 == 0) {
            spk_rtcp_report_t r = {.ssrc = A.ssrc, .fraction_lost = 64, .ext_highest_seq = A.seq};
            int n = spk_rtcp_build_rr(buf, sizeof(buf), B.ssrc, &r, 1);
            int m =
                spk_rtcp_build_remb(buf + n, sizeof(buf) - (size_t)n, B.ssrc, 100000, &A.ssrc, 1);
            CHECK(n > 0 && m > 0);
            CHECK_EQ(spk_peer_send_rtcp(B.peer, buf, (size_t)(n + m)), 0);
            spk_rtcp_report_t about_c = {.ssrc = C.ssrc};
            uint64_t ntp = (uint64_t)(3900000000u + i) << 32 | 0x12345678u;
            n = spk_rtcp_build_sr(buf, sizeof(buf), A.ssrc, ntp, i * 3000, i, i * PAYLOAD, &about_c,
                                  1);
            m = spk_rtcp_build_sdes_cname(buf + n, sizeof(buf) - (size_t)n, A.ssrc, "a@test");
            CHECK(n > 0 && m > 0);
            CHECK_EQ(spk_peer_send_rtcp(A.peer, buf, (size_t)(n + m)), 0);
        }
        pump(NULL, 10);
    }
    CHECK(A.got_remb >= remb0 + 2);
    CHECK(A.remb_bps < RTCP_REMB_BPS && A.remb_bps >= 150000);
    CHECK(A.rr_lsr != 0); /* the relay took the SR's NTP time for LSR */
    CHECK(B.got_sr > 0);
    CHECK_EQ(B.sr_rc, 0); /* A's report block about C stays at the relay */
    CHECK_EQ(A.foreign, 0);
    CHECK_EQ(C.foreign, 0);
    CHECK_EQ(A.bad + B.bad + C.bad, 0);
    rtcp_stats();
    /* the wire format keeps 18 bits of mantissa */
    CHECK(A.stats.remb_bps >= A.remb_bps && A.stats.remb_bps - A.remb_bps <= A.remb_bps / 1000);
    CHECK(B.stats.rtcp_terminated > 0);
    printf("remb: %u bit/s configured, %" PRIu64 " bit/s after B reported 25 %% loss (%" PRIu64
           " REMBs, %" PRIu64 " RRs to A); A's SRs reached B without report blocks\n",
           RTCP_REMB_BPS, A.remb_bps, A.got_remb, A.got_rr);
}

static bool d_ready(void)
{
    return D.connected && spk_peer_connected(D.peer);
}

static uint64_t rtcp_pli0;

static bool a_pli_again(void)
{
    return A.got_pli > rtcp_pli0;
}

/* A new subscriber D: the relay asks A for a key frame as soon as D is forwarded to. */
static void rtcp_phase_join(uint32_t first)
{
    rtcp_pli0 = A.got_pli;
    rtcp_stats();
    uint64_t gen0 = A.stats.pli_generated;
    setup_side(&D, CONSULT, EP_D, SPK_RELAY_ROLE_SUBSCRIBE, true, false);
    pump(NULL, 20);
    exchange_candidates(3);
    CHECK(pump(d_ready, 10000));
    CHECK_EQ(A.got_pli, rtcp_pli0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_D, true), 0);
    CHECK(pump(a_pli_again, 3000));
    for (uint32_t i = 0; i < 20; i++) {
        send_one(&A, first + i);
        pump(NULL, 2);
    }
    pump(NULL, 100);
    CHECK(D.got_from[0] > 0);
    rtcp_stats();
    CHECK_EQ(A.stats.pli_generated, gen0 + 1);
    printf("join: subscriber D forwarded to: PLI to A; D receives A\n");
}

static uint32_t rtcp_next;

static bool a_pli_twice(void)
{
    send_one(&A, rtcp_next++); /* A keeps publishing, as a camera does */
    usleep(10000);
    return A.got_pli >= rtcp_pli0 + 2;
}

/* A subscriber that starts just after another's key frame request still gets its own: D's
 * forwarding restarts 100 ms after B's PLI for A went out; the relay's request for D falls in the
 * stream's 500 ms window and goes to A when the window ends, one PLI for the window. */
static void rtcp_phase_join_soon(uint32_t first)
{
    rtcp_next = first;
    pump(NULL, 600); /* past the throttle of the join above */
    rtcp_stats();
    uint64_t gen0 = A.stats.pli_generated, thr0 = A.stats.pli_throttled;
    rtcp_pli0 = A.got_pli;
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_D, false), 0);
    uint8_t buf[64];
    int n = spk_rtcp_build_pli(buf, sizeof(buf), B.ssrc, A.ssrc);
    CHECK_EQ(spk_peer_send_rtcp(B.peer, buf, (size_t)n), 0);
    CHECK(pump(a_pli_again, 3000));
    pump(NULL, 100);
    uint64_t t_join = spk_mono_ns();
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_D, true), 0);
    CHECK(pump(a_pli_twice, 3000));
    uint64_t gap_ms = (A.pli_ns[(rtcp_pli0 + 1) % 8] - A.pli_ns[rtcp_pli0 % 8]) / 1000000u;
    uint64_t wait_ms = (A.pli_ns[(rtcp_pli0 + 1) % 8] - t_join) / 1000000u;
    for (int i = 0; i < 80; i++) { /* 800 ms more of A's packets: nothing else is pending */
        send_one(&A, rtcp_next++);
        pump(NULL, 10);
    }
    CHECK_EQ(A.got_pli, rtcp_pli0 + 2);
    CHECK(gap_ms >= 450); /* the window held (less a little for the arrival of the first) */
    rtcp_stats();
    CHECK_EQ(A.stats.pli_throttled, thr0 + 1);
    CHECK_EQ(A.stats.pli_generated, gen0 + 1);
    printf("join soon after a PLI: D's key frame request reached A %" PRIu64 " ms after D's start, "
           "%" PRIu64 " ms after B's (held, not dropped)\n",
           wait_ms, gap_ms);
}

/* A publishes video with rtx (payload types 96/97), declared to the relay. */
static spk_relay_stream_t declare_a_video_rtx(void)
{
    A.rtx_ssrc = A.ssrc + 0x100; /* same low byte: the receiver finds the sender by it */
    spk_relay_stream_t st = {.ssrc = A.ssrc,
                             .rtx_ssrc = A.rtx_ssrc,
                             .pt = 96,
                             .rtx_pt = 97,
                             .clock_rate = 90000,
                             .video = true};
    CHECK_EQ(spk_relay_set_streams(relay, CONSULT, EP_A, &st, 1), 0);
    return st;
}

static void run_rtcp(uint32_t n)
{
    setup_side(&A, CONSULT, EP_A, SPK_RELAY_ROLE_PUBLISH, false, false);
    setup_side(&B, CONSULT, EP_B, SPK_RELAY_ROLE_SUBSCRIBE, true, false);
    setup_side(&C, CONSULT, EP_C, SPK_RELAY_ROLE_PUBLISH, false, false);
    spk_relay_stream_t st = declare_a_video_rtx();
    spk_relay_stream_t dup[2] = {st, st};
    CHECK_EQ(spk_relay_set_streams(relay, CONSULT, EP_A, dup, 2), SPK_EINVAL);
    pump(NULL, 20);
    exchange_candidates(-1);
    CHECK(pump(all_connected, 15000));
    for (unsigned i = 0; i < 3; i++) {
        CHECK(!S[i].failed && !spk_peer_failed(S[i].peer));
        CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, S[i].ep, true), 0);
    }
    pump(NULL, 50);
    rtcp_phase_nack(n);
    rtcp_phase_pli();
    rtcp_phase_remb(2 * n + 400);
    rtcp_phase_join(2 * n + 1000);
    rtcp_phase_join_soon(2 * n + 1100);
    for (unsigned i = 1; i < N_SIDES; i++) {
        S[i].closed = false;
        CHECK_EQ(spk_relay_endpoint_close(relay, S[i].consult, S[i].ep), 0);
    }
}

/* ---- withheld mode ---- */

#define LOBBY_N 299

static uint32_t b_want;

static bool b_has(void)
{
    return B.got_from[0] >= b_want;
}

static bool a_nacked_both(uint16_t x, uint16_t y)
{
    return got_nack_for(&A, x) && got_nack_for(&A, y);
}

/* B NACKs [first, first + n) of A's stream, 100 at a time (the relay reads up to 128 per NACK). */
static void b_nack_range(uint16_t first, uint32_t n)
{
    for (uint32_t done = 0; done < n;) {
        uint16_t seqs[100];
        size_t k = 0;
        for (; k < 100 && done < n; k++, done++) {
            seqs[k] = (uint16_t)(first + done);
        }
        rtcp_send_nack(&B, A.ssrc, seqs, k);
        pump(NULL, 5);
    }
}

static void run_withheld(uint32_t n)
{
    setup_side(&A, CONSULT, EP_A, SPK_RELAY_ROLE_PUBLISH, false, false);
    setup_side(&B, CONSULT, EP_B, SPK_RELAY_ROLE_SUBSCRIBE, true, false);
    declare_a_video_rtx();
    pump(NULL, 20);
    exchange_candidates(-1);
    CHECK(pump(both_connected, 15000));
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    pump(NULL, 50);
    reset_rx();

    /* Admitted: B receives A. */
    for (uint32_t i = 0; i < n; i++) {
        send_one(&A, i);
        pump(NULL, 1);
    }
    b_want = n;
    CHECK(pump(b_has, 5000));

    /* B in the lobby while A sends LOBBY_N packets; one is lost on its way to the relay and
     * one is delayed in the network. */
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, false), 0);
    pump(NULL, 50);
    uint16_t lobby_seq0 = A.seq;
    uint8_t lost[12 + PAYLOAD], late[12 + PAYLOAD];
    uint16_t lost_seq = 0, late_seq = 0;
    for (uint32_t i = 0; i < LOBBY_N; i++) {
        if (i == 100) {
            lost_seq = A.seq;
            build_one(&A, n + i, lost);
        } else if (i == 200) {
            late_seq = A.seq;
            build_one(&A, n + i, late);
        } else {
            send_one(&A, n + i);
        }
        pump(NULL, 1);
    }
    /* The relay NACKs A for both gaps (it looks every 20 ms as A's packets arrive). */
    uint32_t next = n + LOBBY_N;
    for (int k = 0; k < 100 && !a_nacked_both(lost_seq, late_seq); k++) {
        send_one(&A, next++);
        pump(NULL, 10);
    }
    CHECK(a_nacked_both(lost_seq, late_seq));
    uint16_t lobby_seq1 = A.seq;
    pump(NULL, 100);
    CHECK_EQ(B.got_from[0], n); /* nothing while in the lobby */

    /* Back in the call; B loses some of what follows on purpose. */
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    pump(NULL, 50);
    uint32_t after0 = next;
    B.drop_on = true;
    for (uint32_t i = 0; i < 200; i++) {
        send_one(&A, next++);
        pump(NULL, 1);
    }
    B.drop_on = false;
    uint32_t after_n = next - after0;
    CHECK(B.n_dropped[0] > 3);
    b_want = n + after_n - B.n_dropped[0];
    CHECK(pump(b_has, 5000));

    /* The late original, the publisher's repair of the lost one, and B's NACKs for the whole
     * lobby period and for what it lost after re-admission. */
    CHECK_EQ(spk_peer_send_rtp(A.peer, late, sizeof(late)), 0);
    uint8_t rtx[sizeof(lost) + 2];
    int len = spk_rtx_wrap(rtx, sizeof(rtx), lost, sizeof(lost), 97, A.rtx_ssrc, 1);
    CHECK(len > 0);
    CHECK_EQ(spk_peer_send_rtp(A.peer, rtx, (size_t)len), 0);
    pump(NULL, 50);
    b_nack_range(lobby_seq0, (uint16_t)(lobby_seq1 - lobby_seq0));
    rtcp_send_nack(&B, A.ssrc, B.dropped[0], B.n_dropped[0]);
    b_want = n + after_n;
    CHECK(pump(b_has, 5000));
    pump(NULL, 300);

    uint32_t leaked = 0;
    for (uint32_t k = n; k < after0; k++) {
        leaked += B.seen[0][k];
    }
    printf("withheld: B NACKed the %u packets of its lobby period; %u of them reached it; %zu "
           "lost after re-admission repaired by %" PRIu64 " RTX\n",
           (unsigned)(uint16_t)(lobby_seq1 - lobby_seq0), leaked, B.n_dropped[0], B.got_rtx);
    CHECK_EQ(leaked, 0);
    CHECK_EQ(B.got_from[0], n + after_n);
    CHECK_EQ(B.got_rtx, B.n_dropped[0]);
    CHECK_EQ(B.bad, 0);
    rtcp_stats_ab();
    CHECK_EQ(A.stats.nack_forwarded, 0); /* withheld sequence numbers are not asked for */
    S[1].closed = false;
    CHECK_EQ(spk_relay_endpoint_close(relay, CONSULT, EP_B), 0);
}

/* ---- fallback mode ---- */

static bool b_video_off(void)
{
    return B.video_events == 1 && !B.video_on;
}

static bool b_video_back(void)
{
    return B.video_events == 2 && B.video_on;
}

/* B's receiver report on A's stream: cumulative loss and extended highest sequence number. */
static void b_report(int32_t lost, uint32_t ext_hi)
{
    uint8_t buf[128];
    spk_rtcp_report_t r = {.ssrc = A.ssrc, .cumulative_lost = lost, .ext_highest_seq = ext_hi};
    int len = spk_rtcp_build_rr(buf, sizeof(buf), B.ssrc, &r, 1);
    CHECK(len > 0);
    CHECK_EQ(spk_peer_send_rtcp(B.peer, buf, (size_t)len), 0);
}

/* A sends a packet every 10 ms and B reports every 100 ms (half of what A sent since `from`
 * lost while `lossy`, else its count frozen as if nothing arrived) until cond or `ms` pass. */
static uint32_t fallback_run(uint32_t next, uint16_t from, bool lossy, bool (*cond)(void),
                             unsigned ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)ms * 1000000u;
    uint32_t hi = from;
    for (uint32_t i = 0; spk_mono_ns() < end && !(cond && cond()); i++) {
        send_one(&A, next++);
        if (i % 10 == 0) {
            hi = lossy ? A.seq : hi;
            b_report(lossy ? (int32_t)((uint16_t)(A.seq - from) / 2) : 0, hi);
        }
        pump(NULL, 10);
    }
    return next;
}

/* B reports half of A's video lost: the relay withholds video from B (VIDEO event), answers
 * none of B's NACKs for what it withheld and asks A for none of it; after the backoff video
 * comes back (VIDEO event) with only what follows. */
static void run_fallback(void)
{
    setup_side(&A, CONSULT, EP_A, SPK_RELAY_ROLE_PUBLISH, false, false);
    setup_side(&B, CONSULT, EP_B, SPK_RELAY_ROLE_SUBSCRIBE, true, false);
    declare_a_video_rtx();
    pump(NULL, 20);
    exchange_candidates(-1);
    CHECK(pump(both_connected, 15000));
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    pump(NULL, 50);
    reset_rx();

    uint64_t t0 = spk_mono_ns();
    uint32_t next = fallback_run(0, A.seq, true, b_video_off, 10000);
    CHECK(b_video_off());
    double off_s = (double)(spk_mono_ns() - t0) / 1e9;
    CHECK(off_s >= 2.5 && off_s < 8.0);
    CHECK(B.got_from[0] > 0);
    pump(NULL, 100);

    /* Off: nothing reaches B, not even what it NACKs. */
    uint64_t got0 = B.got_from[0], rtx0 = B.got_rtx;
    uint32_t off_first = next;
    uint16_t off_seq0 = A.seq;
    t0 = spk_mono_ns();
    next = fallback_run(next, off_seq0, false, NULL, 2000);
    uint32_t off_last = next; /* [off_first, off_last): sent while off, NACKed by B below */
    uint16_t off_seq1 = A.seq;
    b_nack_range(off_seq0, (uint16_t)(off_seq1 - off_seq0));
    uint64_t pli0 = A.got_pli;
    uint8_t pli[64];
    int pli_len = spk_rtcp_build_pli(pli, sizeof(pli), B.ssrc, A.ssrc);
    CHECK(pli_len > 0);
    CHECK_EQ(spk_peer_send_rtcp(B.peer, pli, (size_t)pli_len), 0);
    pump(NULL, 200);
    CHECK_EQ(A.got_pli, pli0); /* no key frame for a subscriber that gets no video */
    CHECK_EQ(B.got_from[0], got0);
    CHECK_EQ(B.got_rtx, rtx0);
    for (uint16_t q = off_seq0; q != off_seq1; q++) {
        CHECK(!got_nack_for(&A, q)); /* withheld numbers are not asked for upstream */
    }

    /* The next try: after the backoff, video again, from newer packets only. */
    next = fallback_run(next, off_seq0, false, b_video_back, 15000);
    CHECK(b_video_back());
    pump(NULL, 50);
    CHECK(A.got_pli > pli0); /* the relay's own request: video resumes from a key frame */
    double back_s = (double)(spk_mono_ns() - t0) / 1e9;
    CHECK(back_s >= 7.5 && back_s < 12.0);
    for (uint32_t i = 0; i < 100; i++) {
        send_one(&A, next++);
        pump(NULL, 5);
    }
    b_want = got0 + 100;
    CHECK(pump(b_has, 5000));
    b_nack_range(off_seq0, (uint16_t)(off_seq1 - off_seq0));
    pump(NULL, 200);
    uint32_t leaked = 0;
    for (uint32_t k = off_first; k < off_last; k++) {
        leaked += B.seen[0][k];
    }
    CHECK_EQ(leaked, 0);
    CHECK_EQ(B.bad, 0);
    rtcp_stats_ab();
    CHECK_EQ(B.stats.video_off, 1);
    CHECK(B.stats.video_withheld >= off_last - off_first);
    printf("fallback: video withheld %.1f s after B began reporting 50 %% loss; %" PRIu64
           " packets withheld, none reached B (NACKed or not); video back after %.1f s\n",
           off_s, B.stats.video_withheld, back_s);
    S[1].closed = false;
    CHECK_EQ(spk_relay_endpoint_close(relay, CONSULT, EP_B), 0);
}

/* ---- candfilter mode ---- */

/* A UDP socket on addr (ephemeral port) that the relay's checks may reach. */
static int udp_on(const char *addr, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    CHECK_EQ(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* STUN messages (RFC 5389 magic cookie) read from fd so far. */
static unsigned stun_count(int fd)
{
    unsigned n = 0;
    uint8_t buf[1500];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) {
        n += r >= 20 && (buf[0] & 0xc0) == 0 && buf[4] == 0x21 && buf[5] == 0x12 &&
             buf[6] == 0xa4 && buf[7] == 0x42;
    }
    return n;
}

static int cand_at(const char *addr, uint16_t port)
{
    char line[160];
    snprintf(line, sizeof(line), "candidate:1 1 udp 2130706431 %s %u typ host", addr, port);
    return spk_relay_remote_candidate(relay, CONSULT, EP_A, line);
}

static void run_candfilter(void)
{
    uint16_t p_own, p_other, p_allowed;
    int own = udp_on("127.0.0.1", &p_own);
    int other = udp_on("127.0.0.2", &p_other);
    int allowed = udp_on("127.0.0.3", &p_allowed);
    spk_relay_local_t local;
    A.consult = CONSULT;
    A.ep = EP_A;
    CHECK_EQ(spk_relay_endpoint_create(relay, CONSULT, EP_A, ROLES_ALL, &local), 0);
    CHECK_EQ(spk_relay_remote_description(relay, CONSULT, EP_A, "remoteufrag",
                                          "remotepasswordremotepassword",
                                          "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                                          "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
                                          SPK_RELAY_SETUP_ACTIVE),
             0);
    /* Refused: another loopback address, link-local, multicast, private (the relay has no
     * private address), unspecified, an mDNS name. */
    CHECK_EQ(cand_at("127.0.0.2", p_other), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("169.254.10.10", 9), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("224.0.0.251", 5353), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("192.168.1.20", 9), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("0.0.0.0", 9), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("fe80::1", 9), SPK_EFORBIDDEN);
    CHECK_EQ(cand_at("5f0c8a4e-7c1d-4b8e-9d2a-1f3e5a7b9c0d.local", 9), SPK_EFORBIDDEN);
    CHECK_EQ(spk_relay_remote_candidate(relay, CONSULT, EP_A, "candidate:garbage"), SPK_EINVAL);
    CHECK_EQ(spk_relay_candidates_refused(relay), 7);
    /* Accepted: the relay's own loopback address, and a configured allow range. */
    CHECK_EQ(cand_at("127.0.0.1", p_own), 0);
    CHECK_EQ(cand_at("127.0.0.3", p_allowed), 0);
    CHECK_EQ(spk_relay_remote_candidate(relay, CONSULT, EP_A, NULL), 0);
    unsigned n_own = 0, n_other = 0, n_allowed = 0;
    uint64_t end = spk_mono_ns() + 5000000000ull;
    while ((n_own == 0 || n_allowed == 0) && spk_mono_ns() < end) {
        pump(NULL, 50);
        n_own += stun_count(own);
        n_other += stun_count(other);
        n_allowed += stun_count(allowed);
    }
    pump(NULL, 500);
    n_own += stun_count(own);
    n_other += stun_count(other);
    n_allowed += stun_count(allowed);
    printf("candfilter: STUN checks reached the relay's own address %u times, the allowed one %u "
           "times, the refused loopback address %u times; %" PRIu64 " candidates refused\n",
           n_own, n_allowed, n_other, spk_relay_candidates_refused(relay));
    CHECK(n_own > 0);
    CHECK(n_allowed > 0);
    CHECK_EQ(n_other, 0);
    close(own);
    close(other);
    close(allowed);
}

static bool others_closed(void)
{
    return B.closed && C.closed && D.closed;
}

static void teardown(void)
{
    if (!A.closed) {
        CHECK_EQ(spk_relay_endpoint_close(relay, CONSULT, EP_A), 0);
        CHECK(pump(a_closed, 5000));
    }
    spk_relay_destroy(relay);
    relay = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    for (unsigned i = 0; i < N_SIDES; i++) {
        spk_peer_free(S[i].peer);
    }
    while (g_main_context_iteration(pctx, FALSE)) {
    }
    g_main_context_unref(pctx);
}

static void run_forwarding(uint32_t n, bool lite, bool restart)
{
    CHECK(pump(connected_or_failed, 15000));
    CHECK(!any_failed());
    CHECK(A.n_cands > 0 && A.cands_done);
    printf("connected (%s ICE, %d relay candidates): relay %s / %s, peers %s / %s\n",
           lite ? "lite" : "full", A.n_cands, A.profile, B.profile, spk_peer_srtp_profile(A.peer),
           spk_peer_srtp_profile(B.peer));
    CHECK(strcmp(A.profile, "AEAD_AES_128_GCM") == 0);
    CHECK(strcmp(B.profile, "AEAD_AES_128_GCM") == 0);

    phase_lobby(50);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
    pump(NULL, 50);
    phase_flow("forwarding", 100, n);
    if (restart) {
        phase_restart(200 + 2 * n, n);
        return;
    }
    phase_rtcp();
    phase_one_side_lobby(100 + n, 50);
    CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
    pump(NULL, 50);
    phase_flow("forwarding again", 200 + n, n);

    request_stats();
    printf("relay stats A: rtp_rx %" PRIu64 " rtp_tx %" PRIu64 " unprotect_err %" PRIu64
           " lobby %" PRIu64 " path %.2f us/packet in (unprotect + protect + send)\n",
           A.stats.rtp_rx, A.stats.rtp_tx, A.stats.unprotect_errors, A.stats.dropped_lobby,
           A.stats.path_ns / 1e3 / (double)A.stats.rtp_rx);
    CHECK_EQ(A.stats.unprotect_errors, 0);
    CHECK_EQ(B.stats.unprotect_errors, 0);
    CHECK(A.stats.rtp_tx >= 2 * n);
    spk_peer_stats_t ps;
    spk_peer_stats(A.peer, &ps);
    CHECK_EQ(ps.unprotect_errors, 0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "full";
    bool lite = strcmp(mode, "lite") == 0;
    uint32_t n = argc > 2 ? (uint32_t)atoi(argv[2]) : 500;
    CHECK(n >= 10 && n * 4 < MAX_PKTS);
    spk_log_set_level(getenv("SPK_TEST_DEBUG") ? SPK_LOG_DEBUG : SPK_LOG_ERROR);
    CHECK_EQ(uv_loop_init(&loop), 0);
    pctx = g_main_context_new();

    spk_relay_config_t cfg;
    spk_relay_config_init(&cfg);
    cfg.workers = 2;
    cfg.addresses[0] = "127.0.0.1";
    cfg.addresses[1] = "::1"; /* gathered too; the IPv4-only peers pair with 127.0.0.1 */
    cfg.n_addresses = 2;
    cfg.ice_lite = lite;
    if (lite) {
        cfg.port_min = 41000;
        cfg.port_max = 41999;
        cfg.ice_tcp = true; /* passive TCP candidates too; the peers pair over UDP */
    }
    if (strcmp(mode, "consent") == 0) {
        cfg.consent_timeout_ms = 1500;
    }
    if (strcmp(mode, "rtcp") == 0) {
        cfg.remb_bps = RTCP_REMB_BPS;
    }
    if (strcmp(mode, "rtcp") == 0 || strcmp(mode, "withheld") == 0) {
        /* B NACKs what it lost only after the whole phase, which a slow (sanitized) build or a
         * busy host may spread over more than the default 500 ms; for "withheld" a longer
         * history also keeps the lobby period's packets there to be asked for. */
        cfg.rtx_window_ms = 10000;
    }
    if (strcmp(mode, "candfilter") == 0) {
        cfg.candidate_allow = "127.0.0.3/32";
        cfg.candidate_deny = "203.0.113.0/24";
    }
    CHECK_EQ(spk_relay_new(&loop, &cfg, event_cb, NULL, &relay), 0);
    CHECK_EQ(strlen(spk_relay_fingerprint(relay)), 95);

    if (strcmp(mode, "badfp") == 0) {
        connect_all(true);
        CHECK(pump(both_relay_failed, 15000));
        CHECK_EQ(A.fail_err, SPK_EVERIFY);
        CHECK_EQ(B.fail_err, SPK_EVERIFY);
        CHECK(!A.connected && !B.connected);
        printf("wrong fingerprints: both endpoints failed verification\n");
    } else if (strcmp(mode, "consent") == 0) {
        connect_all(false);
        CHECK(pump(connected_or_failed, 15000));
        CHECK(!any_failed());
        spk_peer_free(A.peer);
        A.peer = NULL;
        CHECK(pump(a_failed, 10000));
        CHECK_EQ(A.fail_err, SPK_ETIMEOUT);
        printf("peer gone: endpoint failed (consent)\n");
    } else if (strcmp(mode, "dtlsloss") == 0) {
        drop_dtls_rx = 1;
        uint64_t t0 = spk_mono_ns();
        connect_all(false);
        CHECK(pump(connected_or_failed, 15000));
        CHECK(!any_failed());
        double secs = (double)(spk_mono_ns() - t0) / 1e9;
        printf("first relay DTLS flight lost on both endpoints: connected after %.2f s\n", secs);
        CHECK(secs > 0.9); /* a retransmission happened */
        CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_A, true), 0);
        CHECK_EQ(spk_relay_set_forwarding(relay, CONSULT, EP_B, true), 0);
        pump(NULL, 50);
        phase_flow("forwarding", 0, n);
    } else if (strcmp(mode, "fanout") == 0) {
        run_fanout(n);
        CHECK(pump(others_closed, 5000));
    } else if (strcmp(mode, "rtcp") == 0) {
        run_rtcp(n);
        CHECK(pump(others_closed, 5000));
    } else if (strcmp(mode, "candfilter") == 0) {
        run_candfilter();
    } else if (strcmp(mode, "withheld") == 0) {
        run_withheld(n);
        CHECK(pump(b_closed, 5000));
    } else if (strcmp(mode, "fallback") == 0) {
        run_fallback();
        CHECK(pump(b_closed, 5000));
    } else {
        connect_all(false);
        run_forwarding(n, lite, strcmp(mode, "restart") == 0);
        if (lite) {
            CHECK(A.cand_port >= 41000 && A.cand_port <= 41999);
            CHECK(A.tcp_cands > 0);
        }
    }
    CHECK_EQ(spk_relay_endpoint_close(relay, CONSULT, EP_A), 0);
    CHECK(pump(a_closed, 5000));
    teardown();
    printf("ok\n");
    return 0;
}
