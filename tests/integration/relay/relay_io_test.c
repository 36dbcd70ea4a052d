/* The relay worker's packet I/O on 127.0.0.1 (relay/src/relay_io.c): a real spk_relay with one
 * worker, two real client peers (loadtest/peer.c) A and B in one consult, and a bare UDP socket
 * X that speaks ICE with libnice's STUN code, claiming to be A from another address.
 *
 * Usage: relay_io_e2e MODE
 *   stunmix  X sends valid connectivity checks to A's relay socket in the middle of a stream of
 *            SRTP from A, so that the relay reads them in the same batches: every check is
 *            answered (libnice still handles STUN), every packet reaches B, and B's packets
 *            still reach A (the selected pair did not move)
 *   newpair  X nominates itself (USE-CANDIDATE with a higher priority, answering the relay's
 *            own checks): the relay selects the new pair, and B's packets for A go to X and no
 *            longer to A — the cached destination of direct sends follows the selected pair
 *   burst    A sends bursts of 200 packets without pausing, so that one wake-up of the worker
 *            forwards many of them (more than one sendmmsg() per subscriber, SPK_RELAY_TXQ_EP_MAX):
 *            B receives every packet once and in order, and the relay's statistics for B
 *            (rtp_tx, bytes_tx) count exactly the packets B received, none dropped
 *   direct   media both ways, connectivity checks from A's own address (the selected pair's remote
 *            side) in between, then one from X: the relay reads the selected sockets itself
 *            (rx_direct), answers A's checks itself without handing anything to libnice
 *            (stun_answered, rx_yielded 0), X's first check too (a valid answer X checks), and
 *            every packet still arrives; then media again after X (libnice reads meanwhile)
 *   direct6  direct over IPv6 (::1): the relay, the peers and X on the loopback's IPv6 address
 *   gsomtu   burst with the loopback MTU lowered below the packets' size plus headers first, so
 *            that the kernel refuses the relay's UDP GSO messages (a segment must fit the MTU;
 *            single datagrams are fragmented): the relay turns GSO off and sends the refused
 *            packets one by one, and B still receives every packet once and in order, none
 *            dropped. Only in a loopback-only network namespace (netns.sh), else skipped (77). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stun/stunagent.h>
#include <stun/usages/ice.h>
#include <uv.h>

#include "check.h"
#include "peer.h"
#include "spk/log.h"
#include "spk/relay.h"
#include "spk/util.h"

#define CONSULT 5
#define EP_A 501
#define EP_B 502
#define ROLES (SPK_RELAY_ROLE_PUBLISH | SPK_RELAY_ROLE_SUBSCRIBE)
#define PAYLOAD 800
#define X_PRIORITY 0x7effffffu /* above any host candidate's */

typedef struct {
    spk_peer_t *peer;
    uint64_t ep;
    uint32_t ssrc;
    uint16_t seq;
    uint64_t got; /* RTP received */
    uint16_t last_seq;
    uint64_t out_of_order;   /* RTP whose sequence number is not the previous one's successor */
    spk_relay_stats_t final; /* with CLOSED */
    bool connected;
    bool failed;
    bool closed;
    uint16_t udp_port; /* the relay's UDP candidate for this endpoint */
    spk_relay_local_t local;
} side_t;

static uv_loop_t loop;
static GMainContext *pctx;
static spk_relay_t *relay;
static side_t A, B;

/* X: a socket that claims to be A. */
static int xfd = -1;
static bool v6; /* direct6: everything on ::1 */
static StunAgent xagent;
static uint64_t x_answers;  /* success responses to its checks that validated */
static uint64_t x_requests; /* checks from the relay, answered */
static uint64_t x_media;    /* SRTP/SRTCP datagrams from the relay */
static uint64_t x_tie;

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
        if (ev->cand[0] && (strstr(ev->cand, " UDP ") || strstr(ev->cand, " udp "))) {
            unsigned port = 0;
            CHECK(sscanf(ev->cand, "candidate:%*s %*u %*s %*u %*s %u", &port) == 1);
            s->udp_port = (uint16_t)port;
        }
        CHECK(spk_peer_add_remote_candidate(s->peer, ev->cand[0] ? ev->cand : NULL) == 0);
        break;
    case SPK_RELAY_EV_CONNECTED:
        s->connected = true;
        break;
    case SPK_RELAY_EV_FAILED:
        fprintf(stderr, "endpoint %" PRIu64 " failed: %s\n", ev->endpoint_id, ev->reason);
        s->failed = true;
        break;
    case SPK_RELAY_EV_CLOSED:
        s->final = ev->stats;
        s->closed = true;
        break;
    default:
        break;
    }
}

static void media_cb(spk_peer_t *peer, const uint8_t *pkt, size_t len, bool rtcp, void *user)
{
    (void)peer;
    side_t *s = user;
    if (!rtcp && len == 12 + PAYLOAD) {
        uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
        s->out_of_order += s->got > 0 && seq != (uint16_t)(s->last_seq + 1);
        s->last_seq = seq;
        s->got++;
    }
}

/* The password X's STUN agent checks a message with: the relay's (responses to X's checks,
 * USERNAME relay:A) or A's (the relay's checks, USERNAME A:relay). */
static bool x_validater(StunAgent *agent, StunMessage *msg, uint8_t *username, uint16_t ulen,
                        uint8_t **password, size_t *plen, void *user)
{
    (void)agent;
    (void)msg;
    (void)user;
    const char *a = spk_peer_ufrag(A.peer);
    const char *pwd =
        (ulen > strlen(a) && memcmp(username, a, strlen(a)) == 0 && username[strlen(a)] == ':')
            ? spk_peer_pwd(A.peer)
            : A.local.pwd;
    *password = (uint8_t *)pwd;
    *plen = strlen(pwd);
    return true;
}

static void x_poll(void)
{
    uint8_t buf[1500];
    struct sockaddr_storage from;
    for (;;) {
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(xfd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n <= 0) {
            CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
        if (buf[0] >= 128 && buf[0] <= 191) {
            x_media++;
            continue;
        }
        StunMessage msg;
        if (stun_agent_validate(&xagent, &msg, buf, (size_t)n, x_validater, NULL) !=
            STUN_VALIDATION_SUCCESS) {
            continue;
        }
        if (stun_message_get_class(&msg) == STUN_RESPONSE) {
            x_answers++;
        } else if (stun_message_get_class(&msg) == STUN_REQUEST) {
            StunMessage resp;
            uint8_t out[1500];
            size_t olen = sizeof(out);
            bool control = true;
            if (stun_usage_ice_conncheck_create_reply(
                    &xagent, &msg, &resp, out, &olen, &from, flen, &control, x_tie,
                    STUN_USAGE_ICE_COMPATIBILITY_RFC5245) == STUN_USAGE_ICE_RETURN_SUCCESS &&
                olen > 0) {
                CHECK(sendto(xfd, out, olen, 0, (struct sockaddr *)&from, flen) == (ssize_t)olen);
                x_requests++;
            }
        }
    }
}

/* One connectivity check to A's relay socket, as A (controlling), sent on fd. */
static void check_from(int fd, bool nominate)
{
    char user[256];
    snprintf(user, sizeof(user), "%s:%s", A.local.ufrag, spk_peer_ufrag(A.peer));
    uint8_t buf[512];
    StunMessage msg;
    size_t len = stun_usage_ice_conncheck_create(
        &xagent, &msg, buf, sizeof(buf), (const uint8_t *)user, strlen(user),
        (const uint8_t *)A.local.pwd, strlen(A.local.pwd), nominate, true, X_PRIORITY, x_tie, NULL,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    CHECK(len > 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(A.udp_port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in6 to6 = {.sin6_family = AF_INET6, .sin6_port = htons(A.udp_port)};
    to6.sin6_addr = in6addr_loopback;
    const struct sockaddr *dst = v6 ? (struct sockaddr *)&to6 : (struct sockaddr *)&to;
    socklen_t dlen = v6 ? sizeof(to6) : sizeof(to);
    CHECK(sendto(fd, buf, len, 0, dst, dlen) == (ssize_t)len);
}

/* One connectivity check from X. */
static void x_check(bool nominate)
{
    check_from(xfd, nominate);
}

/* Runs the uv loop, the peers' context and X until cond() or timeout. */
static bool pump(bool (*cond)(void), unsigned timeout_ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uv_run(&loop, UV_RUN_NOWAIT);
        while (g_main_context_iteration(pctx, FALSE)) {
        }
        x_poll();
        if (cond && cond()) {
            return true;
        }
        if (spk_mono_ns() > end) {
            return false;
        }
        usleep(200);
    }
}

static void send_rtp(side_t *s, uint32_t n)
{
    uint8_t pkt[12 + PAYLOAD];
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0x80;
    pkt[1] = 96;
    pkt[2] = (uint8_t)(s->seq >> 8);
    pkt[3] = (uint8_t)s->seq;
    s->seq++;
    for (int i = 0; i < 4; i++) {
        pkt[4 + i] = (uint8_t)((n * 3000) >> (24 - 8 * i));
        pkt[8 + i] = (uint8_t)(s->ssrc >> (24 - 8 * i));
    }
    CHECK(spk_peer_send_rtp(s->peer, pkt, sizeof(pkt)) == 0);
}

static void setup_side(side_t *s, uint64_t ep, bool dtls_server)
{
    s->ep = ep;
    s->ssrc = 0x5000u + (uint32_t)ep;
    spk_peer_config_t pc = {.ctx = pctx,
                            .address = v6 ? "::1" : "127.0.0.1",
                            .dtls_server = dtls_server,
                            .media_cb = media_cb,
                            .user = s};
    CHECK(spk_peer_new(&pc, &s->peer) == 0);
    CHECK(spk_relay_endpoint_create(relay, CONSULT, ep, ROLES, &s->local) == 0);
    spk_relay_setup_t setup = dtls_server ? SPK_RELAY_SETUP_PASSIVE : SPK_RELAY_SETUP_ACTIVE;
    CHECK(spk_relay_remote_description(relay, CONSULT, ep, spk_peer_ufrag(s->peer),
                                       spk_peer_pwd(s->peer), spk_peer_fingerprint(s->peer),
                                       setup) == 0);
    CHECK(spk_peer_set_remote(s->peer, s->local.ufrag, s->local.pwd, s->local.fingerprint) == 0);
}

static void give_candidates(side_t *s)
{
    const char *lines[SPK_PEER_MAX_CANDIDATES];
    bool done = false;
    size_t n = spk_peer_local_candidates(s->peer, lines, SPK_PEER_MAX_CANDIDATES, &done);
    CHECK(n > 0);
    for (size_t j = 0; j < n; j++) {
        CHECK(spk_relay_remote_candidate(relay, CONSULT, s->ep, lines[j]) == 0);
    }
    CHECK(spk_relay_remote_candidate(relay, CONSULT, s->ep, NULL) == 0);
}

static bool both_connected(void)
{
    return (A.connected && B.connected && spk_peer_connected(A.peer) &&
            spk_peer_connected(B.peer)) ||
           A.failed || B.failed;
}

static uint64_t want_a, want_b, want_x_answers, want_x_media;

static bool received(void)
{
    return A.got >= want_a && B.got >= want_b && x_answers >= want_x_answers &&
           x_media >= want_x_media;
}

static bool both_closed(void)
{
    return A.closed && B.closed;
}

/* B sends n packets in bursts of 10, waiting for them where they should arrive. */
static void b_sends(uint32_t first, uint32_t n, bool to_x)
{
    for (uint32_t i = 0; i < n; i++) {
        send_rtp(&B, first + i);
        if (i % 10 == 9) {
            if (to_x) {
                want_x_media = x_media + 5;
            }
            pump(received, 2000);
        }
    }
}

static void run_stunmix(void)
{
    const uint32_t n = 400, checks = n / 10;
    for (uint32_t i = 0; i < n; i++) {
        send_rtp(&A, i);
        if (i % 10 == 4) {
            x_check(false);
        }
        if (i % 10 == 9) {
            want_b = i + 1 > 32 ? i + 1 - 32 : 0;
            CHECK(pump(received, 5000));
        }
    }
    want_b = n;
    want_x_answers = checks;
    CHECK(pump(received, 5000));
    printf("stunmix: B got %" PRIu64 "/%u packets of A; X's %u checks in between answered %" PRIu64
           " times; the relay's own checks to X %" PRIu64 "\n",
           B.got, n, checks, x_answers, x_requests);
    CHECK(x_answers == checks);
    /* The selected pair stayed A's: B's packets reach A, none X. */
    want_a = 100;
    b_sends(0, 100, false);
    CHECK(pump(received, 5000));
    CHECK(x_media == 0);
}

static void run_direct(void)
{
    int afd = -1;
    struct sockaddr_storage to;
    socklen_t to_len = sizeof(to);
    CHECK(spk_peer_selected(A.peer, &afd, &to, &to_len) == 0 && afd >= 0);
    const uint32_t n = 400, checks = n / 20;
    for (uint32_t i = 0; i < n; i++) {
        send_rtp(&A, i);
        send_rtp(&B, i);
        if (i % 20 == 7) {
            check_from(afd, false); /* answered to A's socket, where libnice ignores it */
        }
        if (i % 10 == 9) {
            want_a = want_b = i + 1 > 32 ? i + 1 - 32 : 0;
            CHECK(pump(received, 5000));
        }
    }
    want_a = want_b = n;
    CHECK(pump(received, 5000));
    /* X: answered (by the relay, which then lets libnice read for a while). */
    want_x_answers = 1;
    x_check(false);
    CHECK(pump(received, 5000));
    want_a = want_b = n + 100;
    for (uint32_t i = n; i < n + 100; i++) {
        send_rtp(&A, i);
        send_rtp(&B, i);
    }
    CHECK(pump(received, 5000));
    CHECK(x_media == 0);
    printf("direct: A got %" PRIu64 ", B got %" PRIu64 "; %u checks from A's address, X's answered "
           "%" PRIu64 " times\n",
           A.got, B.got, checks, x_answers);
}

static bool x_gets_media(void)
{
    send_rtp(&B, 0);
    return x_media > 0;
}

static void run_newpair(void)
{
    /* Media flows to A first (and the direct-send destination is cached). */
    want_a = 50;
    b_sends(0, 50, false);
    CHECK(pump(received, 5000));
    CHECK(x_media == 0);
    /* X nominates itself until the relay moves the pair (it checks X back first). */
    uint64_t t0 = spk_mono_ns();
    bool moved = false;
    for (int i = 0; i < 100 && !moved; i++) {
        x_check(true);
        moved = pump(x_gets_media, 50);
    }
    CHECK(moved);
    pump(NULL, 100);
    uint64_t a_before = A.got, x_before = x_media;
    b_sends(1000, 200, true);
    pump(NULL, 300);
    printf("newpair: pair moved to X after %.0f ms (%" PRIu64 " checks answered by X); then B's "
           "200 packets: %" PRIu64 " at X, %" PRIu64 " at A\n",
           (double)(spk_mono_ns() - t0) / 1e6, x_requests, x_media - x_before, A.got - a_before);
    CHECK(x_media - x_before >= 190); /* loopback: all of them, barring a scheduling hiccup */
    CHECK(A.got == a_before);
}

/* Lowers the MTU of lo, in a loopback-only network namespace only (netns.sh): false when there
 * is any other interface. */
static bool lo_mtu(int mtu)
{
    struct if_nameindex *ifs = if_nameindex();
    bool lo_only = ifs != NULL;
    for (struct if_nameindex *i = ifs; i != NULL && i->if_index != 0; i++) {
        lo_only = lo_only && strcmp(i->if_name, "lo") == 0;
    }
    if_freenameindex(ifs);
    int fd = lo_only ? socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    ifr.ifr_mtu = mtu;
    bool ok = fd >= 0 && ioctl(fd, SIOCSIFMTU, &ifr) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static void run_burst(void)
{
    /* Room for a whole burst at B, which reads only between bursts. */
    int fd = -1;
    struct sockaddr_storage to;
    socklen_t to_len = sizeof(to);
    CHECK(spk_peer_selected(B.peer, &fd, &to, &to_len) == 0 && fd >= 0);
    int rcvbuf = 4 << 20;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0);
    const uint32_t bursts = 10, per = 200;
    for (uint32_t b = 0; b < bursts; b++) {
        for (uint32_t i = 0; i < per; i++) {
            send_rtp(&A, b * per + i);
        }
        want_b = (uint64_t)(b + 1) * per;
        CHECK(pump(received, 5000));
    }
    pump(NULL, 100);
    printf("burst: B got %" PRIu64 "/%u packets of A, %" PRIu64 " out of order\n", B.got,
           bursts * per, B.out_of_order);
    CHECK(B.got == (uint64_t)bursts * per);
    CHECK(B.out_of_order == 0);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "stunmix";
    v6 = strcmp(mode, "direct6") == 0;
    spk_log_set_level(getenv("SPK_TEST_DEBUG") ? SPK_LOG_DEBUG : SPK_LOG_ERROR);
    CHECK(uv_loop_init(&loop) == 0);
    pctx = g_main_context_new();
    spk_relay_config_t cfg;
    spk_relay_config_init(&cfg);
    cfg.workers = 1;
    cfg.addresses[0] = v6 ? "::1" : "127.0.0.1";
    cfg.n_addresses = 1;
    CHECK(spk_relay_new(&loop, &cfg, event_cb, NULL, &relay) == 0);

    xfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in xa = {.sin_family = AF_INET};
    xa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in6 xa6 = {.sin6_family = AF_INET6};
    xa6.sin6_addr = in6addr_loopback;
    CHECK(xfd >= 0 && bind(xfd, v6 ? (struct sockaddr *)&xa6 : (struct sockaddr *)&xa,
                           v6 ? sizeof(xa6) : sizeof(xa)) == 0);
    static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME,
                                     STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                     STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
                                     STUN_ATTRIBUTE_PRIORITY,
                                     STUN_ATTRIBUTE_USE_CANDIDATE,
                                     STUN_ATTRIBUTE_ICE_CONTROLLED,
                                     STUN_ATTRIBUTE_ICE_CONTROLLING,
                                     STUN_ATTRIBUTE_FINGERPRINT,
                                     0};
    stun_agent_init(&xagent, known, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    x_tie = spk_mono_ns();

    setup_side(&A, EP_A, false);
    setup_side(&B, EP_B, true);
    pump(NULL, 20);
    give_candidates(&A);
    give_candidates(&B);
    CHECK(pump(both_connected, 15000));
    CHECK(!A.failed && !B.failed && A.udp_port != 0);
    CHECK(spk_relay_set_forwarding(relay, CONSULT, EP_A, true) == 0);
    CHECK(spk_relay_set_forwarding(relay, CONSULT, EP_B, true) == 0);
    pump(NULL, 50);

    if (strcmp(mode, "newpair") == 0) {
        run_newpair();
    } else if (strcmp(mode, "burst") == 0) {
        run_burst();
    } else if (strcmp(mode, "direct") == 0 || v6) {
        run_direct();
    } else if (strcmp(mode, "gsomtu") == 0) {
        /* 12 + PAYLOAD + the SRTP tag + 28 header bytes do not fit. */
        if (!lo_mtu(12 + PAYLOAD)) {
            printf("gsomtu: skipped: not in a loopback-only network namespace\n");
            return 77;
        }
        run_burst();
    } else {
        run_stunmix();
    }
    CHECK(!A.failed && !B.failed);
    CHECK(spk_relay_endpoint_close(relay, CONSULT, EP_A) == 0);
    CHECK(spk_relay_endpoint_close(relay, CONSULT, EP_B) == 0);
    CHECK(pump(both_closed, 5000));
    if (strcmp(mode, "direct") == 0 || v6) {
        /* Both read without libnice; A's 20 checks and X's first answered by the relay itself,
         * nothing read directly dropped. */
        printf("direct: relay endpoints: rx_direct %" PRIu64 " / %" PRIu64
               ", stun_answered %" PRIu64 " / %" PRIu64 ", rx_yielded %" PRIu64 " / %" PRIu64 "\n",
               A.final.rx_direct, B.final.rx_direct, A.final.stun_answered, B.final.stun_answered,
               A.final.rx_yielded, B.final.rx_yielded);
        CHECK(A.final.rx_direct >= 400 && B.final.rx_direct >= 400);
        CHECK(A.final.stun_answered == 400 / 20 + 1);
        CHECK(A.final.rx_yielded == 0 && B.final.rx_yielded == 0);
        CHECK(A.final.rtp_rx == 500 && B.final.rtp_rx == 500);
    }
    if (strcmp(mode, "burst") == 0 || strcmp(mode, "gsomtu") == 0) {
        /* Every forwarded packet counted once when it left, as B received them (SRTP adds the
         * 10-byte tag of AES_CM_128_HMAC_SHA1_80 or the 16 of AEAD_AES_128_GCM). */
        printf("burst: relay to B: rtp_tx %" PRIu64 ", bytes_tx %" PRIu64 ", dropped_other %" PRIu64
               "\n",
               B.final.rtp_tx, B.final.bytes_tx, B.final.dropped_other);
        CHECK(B.final.rtp_tx == B.got);
        CHECK(B.final.dropped_other == 0);
        CHECK(B.final.bytes_tx >= B.got * (12 + PAYLOAD + 10));
    }
    spk_relay_destroy(relay);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    spk_peer_free(A.peer);
    spk_peer_free(B.peer);
    while (g_main_context_iteration(pctx, FALSE)) {
    }
    g_main_context_unref(pctx);
    close(xfd);
    printf("ok\n");
    return 0;
}
