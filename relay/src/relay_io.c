/* Packet I/O of a relay worker.
 *
 * Receive: every endpoint's libnice agent delivers its packets on a GMainContext of its own
 * (ep->io_ctx, nice_agent_attach_recv), which the worker's main loop never polls. Instead one
 * epoll set per worker holds the ICE sockets of all its endpoints and is the worker's single
 * packet source: on readiness the worker iterates the io_ctx of each ready endpoint only, and
 * libnice reads that endpoint's sockets until they would block, answering STUN itself (checks,
 * consent) and handing everything else to spk_relay_path_recv_cb (all but the selected socket,
 * once there is one: "Receive without libnice" below). A wake-up therefore costs
 * O(ready endpoints), not the O(all sockets) of polling every source of the worker's context,
 * and takes every packet queued meanwhile. The endpoint contexts poll with io_poll, which
 * answers from the epoll result at hand instead of making a poll() system call of its own. The
 * worker's own context polls with worker_poll: its few other descriptors (GLib's wake-up eventfd,
 * the command eventfd) are registered in the epoll set as well, tagged, so that waiting is one
 * epoll_wait() whose endpoint events io_cb takes over, not a poll() followed by an epoll_wait().
 * (nice_agent_recv_messages_nonblocking() was considered: in libnice 0.1.21 it iterates the
 * component's context as well, at least twice per call — once to read, once to learn that nothing
 * more is queued.)
 *
 * Receive without libnice: once ICE has selected a pair whose local side is a UDP socket (the
 * socket direct sends use, below), the relay reads that socket itself, with recvmmsg() into the
 * worker's RX_BATCH slots (rx_read): a wake-up with one datagram costs one system call instead of
 * a context iteration, a recvmsg() and a second one that finds the socket empty. libnice has no
 * call that takes a datagram read elsewhere, so what arrives there is sorted by the relay
 * (rx_one): a datagram from the selected remote address that is not STUN goes to the packet path
 * as libnice would hand it over; a connectivity check (a STUN Binding request whose USERNAME
 * starts with the local ufrag and whose MESSAGE-INTEGRITY holds with the local password) is
 * answered by the relay with libnice's own STUN code (the peer's consent checks on the selected
 * pair: about one per 2.5 s from a browser); a Binding indication (keepalive) is ignored, as
 * libnice ignores it. Anything else — a datagram from another address, any other STUN message,
 * a role conflict, a check answered from another address (which libnice must see to learn a new
 * candidate or nomination) — makes libnice read all of the endpoint's sockets again for
 * RX_LIBNICE_NS (ep->rx_libnice_until); a datagram only libnice could handle is then dropped
 * (rx_yielded) and its retransmission reaches libnice, as STUN and DTLS retransmit. An ICE
 * restart hands the sockets to libnice for RX_RESTART_NS, long enough for the new checks and
 * nomination. libnice's own RFC 7675 consent checks are off (relay_worker.c ep_agent_new), so no
 * answer to a check of the relay's is expected on the selected pair once it is selected.
 *
 * Send: once ICE has selected a pair whose local side is a UDP socket, packets go out with one
 * sendto() on that socket to the remote address, both cached per endpoint (the GSocket is
 * referenced so its descriptor cannot be reused meanwhile); the cache is dropped whenever
 * libnice selects another pair and on an ICE restart or failure. TCP pairs and anything before
 * selection go through nice_agent_send().
 *
 * Send batching: forwarded RTP is not sent where it is protected. Inside a wake-up (io_cb, one
 * epoll round: every ready endpoint's packets) relay_path.c protects each forwarded packet
 * straight into a slot of the worker's send queue (spk_relay_io_rtp_buf) and queues it on the
 * receiving endpoint, i.e. on its cached socket (spk_relay_io_send_rtp); at the end of the round
 * each endpoint's queue leaves in order with one sendmmsg() (txq_flush), a run of datagrams of
 * one length as one UDP GSO message (UDP_SEGMENT) that the kernel splits into the same datagrams
 * (txq_send_ep; a kernel that refuses GSO turns it off for the worker). The queue never outlives
 * the round: it is flushed early when it holds SPK_RELAY_TXQ_MAX datagrams or one endpoint
 * SPK_RELAY_TXQ_EP_MAX, and before an endpoint's cached socket is dropped (another pair, ICE
 * restart or failure, the endpoint's end). A datagram sendmmsg() refuses (EAGAIN, ENOBUFS, ...;
 * every datagram of a refused GSO message) is counted as dropped_other and the rest are tried
 * again, as one sendto() per packet did.
 * Outside a wake-up, to an endpoint without a direct socket, and for the relay's own RTCP and
 * retransmissions (relay_rtcp.c) a packet is sent at once as before; libnice sends its STUN
 * itself. The relay's own packets may thus overtake forwarded RTP queued in the same round
 * towards the same endpoint; forwarded RTP keeps its order. */
#define _GNU_SOURCE /* sendmmsg */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <stun/usages/ice.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define IO_EP_SOCKETS 64 /* sockets of one endpoint handled (UDP per address, ICE-TCP more) */
/* UDP GSO: datagrams of at most TXQ_GSO_LEN bytes (a 1280-byte IPv6 path with its headers), at
 * most TXQ_GSO_SEGS (the kernel's UDP_MAX_SEGMENTS is 64 or more) and 64 KiB per message. */
#define TXQ_GSO_LEN 1200
#define TXQ_GSO_SEGS 48
/* Reading the selected socket: datagrams per recvmmsg(); the slot size (above any packet the
 * packet path takes, SPK_RELAY_PKT_MAX, and a DTLS record of a 1,500-byte path: a longer
 * datagram is truncated and left to libnice); recvmmsg() calls per endpoint and wake-up (level-
 * triggered epoll brings the rest at the next one); how long libnice reads an endpoint's sockets
 * after a datagram the relay does not handle itself, and after an ICE restart. */
#define RX_BATCH 32
#define RX_SLOT 2048
#define RX_ROUNDS 4
#define RX_LIBNICE_NS (2000ull * 1000000ull)
#define RX_RESTART_NS (10000ull * 1000000ull)

/* The worker whose io_cb is running on this thread, for io_poll. */
static __thread spk_relay_worker_t *tls_worker;

/* ---- receive ---- */

static gushort gio_of_ev(uint32_t e)
{
    return (gushort)(((e & EPOLLIN) ? G_IO_IN : 0) | ((e & EPOLLOUT) ? G_IO_OUT : 0) |
                     ((e & EPOLLPRI) ? G_IO_PRI : 0) | ((e & EPOLLERR) ? G_IO_ERR : 0) |
                     ((e & EPOLLHUP) ? G_IO_HUP : 0));
}

/* The poll function of the endpoints' contexts: inside io_cb, readiness is what epoll_wait just
 * reported (level-triggered, and nobody else reads these sockets); anywhere else a real poll. */
static gint io_poll(GPollFD *fds, guint nfds, gint timeout)
{
    spk_relay_worker_t *w = tls_worker;
    if (w == NULL || w->io_cur == NULL) {
        return g_poll(fds, nfds, timeout);
    }
    gint ready = 0;
    for (guint i = 0; i < nfds; i++) {
        fds[i].revents = 0;
        for (int k = 0; k < w->io_cur_n; k++) {
            if (w->io_cur[k].data.fd == fds[i].fd) {
                fds[i].revents =
                    gio_of_ev(w->io_cur[k].events) & (fds[i].events | G_IO_ERR | G_IO_HUP);
                break;
            }
        }
        ready += fds[i].revents != 0;
    }
    return ready;
}

static void txq_flush(spk_relay_worker_t *w);
static bool tx_direct(spk_relay_ep_t *ep);

static spk_relay_ep_t *ep_of_fd(const spk_relay_worker_t *w, int fd)
{
    return fd >= 0 && (size_t)fd < w->io_cap ? w->io_eps[fd] : NULL;
}

/* epoll data of a descriptor of the worker's context (aux) rather than an endpoint socket. */
#define AUX_TAG (1ull << 32)

/* The worker whose loop runs on this thread, for worker_poll. */
static __thread spk_relay_worker_t *tls_loop;

static uint32_t ev_of_gio(gushort g)
{
    return ((g & G_IO_IN) ? EPOLLIN : 0) | ((g & G_IO_OUT) ? EPOLLOUT : 0) |
           ((g & G_IO_PRI) ? EPOLLPRI : 0);
}

/* Makes the aux registrations those of fds[] (every descriptor but the epoll set's); false when
 * they cannot be (too many, a duplicate, epoll_ctl failing): then a plain poll() is made. */
static bool aux_sync(spk_relay_worker_t *w, const GPollFD *fds, guint nfds)
{
    int fd[SPK_RELAY_IO_AUX];
    uint32_t ev[SPK_RELAY_IO_AUX];
    int n = 0;
    for (guint i = 0; i < nfds; i++) {
        if (fds[i].fd == w->epoll_fd) {
            continue;
        }
        if (n == SPK_RELAY_IO_AUX || fds[i].fd < 0) {
            return false;
        }
        for (int k = 0; k < n; k++) {
            if (fd[k] == fds[i].fd) {
                return false;
            }
        }
        fd[n] = fds[i].fd;
        ev[n++] = ev_of_gio(fds[i].events);
    }
    bool same = n == w->aux_n;
    for (int k = 0; same && k < n; k++) {
        same = fd[k] == w->aux_fd[k] && ev[k] == w->aux_ev[k];
    }
    if (same) {
        return true;
    }
    /* Gone: unregistered, unless the number is an endpoint socket's now (the old descriptor was
     * closed, which took it out of the set). */
    for (int k = 0; k < w->aux_n; k++) {
        bool kept = false;
        for (int j = 0; j < n && !kept; j++) {
            kept = fd[j] == w->aux_fd[k];
        }
        if (!kept && ep_of_fd(w, w->aux_fd[k]) == NULL) {
            epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, w->aux_fd[k], NULL);
        }
    }
    w->aux_n = 0;
    for (int k = 0; k < n; k++) {
        struct epoll_event e = {.events = ev[k], .data.u64 = AUX_TAG | (uint32_t)fd[k]};
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, fd[k], &e) != 0 &&
            (errno != ENOENT || epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd[k], &e) != 0)) {
            return false;
        }
        w->aux_fd[w->aux_n] = fd[k];
        w->aux_ev[w->aux_n++] = ev[k];
    }
    return true;
}

/* The poll function of the worker's context (see the top of the file). */
static gint worker_poll(GPollFD *fds, guint nfds, gint timeout)
{
    spk_relay_worker_t *w = tls_loop;
    w = w != NULL && w->epoll_fd >= 0 ? w : NULL;
    GPollFD *io = NULL;
    for (guint i = 0; w != NULL && i < nfds && io == NULL; i++) {
        io = fds[i].fd == w->epoll_fd ? &fds[i] : NULL;
    }
    if (io == NULL || !aux_sync(w, fds, nfds)) {
        if (w != NULL) {
            w->io_ready_n = -1; /* io_cb waits itself */
        }
        return g_poll(fds, nfds, timeout);
    }
    struct epoll_event evs[SPK_RELAY_IO_EVENTS];
    int n;
    do {
        n = epoll_wait(w->epoll_fd, evs, SPK_RELAY_IO_EVENTS, timeout);
    } while (n < 0 && errno == EINTR);
    for (guint i = 0; i < nfds; i++) {
        fds[i].revents = 0;
    }
    w->io_ready_n = 0;
    gint ready = 0;
    for (int k = 0; k < n; k++) {
        if ((evs[k].data.u64 & AUX_TAG) == 0) {
            w->io_ready[w->io_ready_n++] = evs[k];
            continue;
        }
        int fd = (int)(uint32_t)evs[k].data.u64;
        uint32_t e = evs[k].events;
        guint i = 0;
        while (i < nfds && fds[i].fd != fd) {
            i++;
        }
        if (i == nfds) { /* a registration left behind: the context no longer watches it */
            epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
            continue;
        }
        fds[i].revents = gio_of_ev(e);
        ready++;
    }
    if (w->io_ready_n > 0) {
        io->revents = G_IO_IN;
        ready++;
    } else {
        w->io_ready_n = -1;
    }
    return ready;
}

void spk_relay_io_thread(spk_relay_worker_t *w)
{
    tls_loop = w;
    w->io_ready_n = -1;
    g_main_context_set_poll_func(w->ctx, worker_poll);
}

/* Whether the addresses are equal (family, address, port). */
static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* libnice reads ep's sockets for the next ns. */
static void rx_to_libnice(spk_relay_ep_t *ep, uint64_t ns)
{
    uint64_t until = spk_mono_ns() + ns;
    if (until > ep->rx_libnice_until) {
        ep->rx_libnice_until = until;
    }
}

/* A datagram read directly that only libnice handles: dropped, and libnice reads from now on. */
static void rx_yield(spk_relay_ep_t *ep)
{
    ep->st.rx_yielded++;
    rx_to_libnice(ep, RX_LIBNICE_NS);
}

/* Whether the relay reads fd of ep itself: ep's selected UDP socket, outside a period in which
 * libnice reads it. */
static bool rx_direct(spk_relay_ep_t *ep, int fd)
{
    if (!tx_direct(ep) || fd != ep->tx_fd) {
        return false;
    }
    if (ep->rx_libnice_until != 0) {
        if (spk_mono_ns() < ep->rx_libnice_until) {
            return false;
        }
        ep->rx_libnice_until = 0;
    }
    return true;
}

typedef struct {
    const char *ufrag;
    const char *pwd;
} rx_cred_t;

/* The local password for a check whose USERNAME is "<local ufrag>:<remote ufrag>". */
static bool rx_validater(StunAgent *agent, StunMessage *msg, uint8_t *username, uint16_t ulen,
                         uint8_t **password, size_t *plen, void *user)
{
    (void)agent;
    (void)msg;
    const rx_cred_t *c = user;
    size_t n = strlen(c->ufrag);
    if (ulen <= n || memcmp(username, c->ufrag, n) != 0 || username[n] != ':') {
        return false;
    }
    *password = (uint8_t *)c->pwd;
    *plen = strlen(c->pwd);
    return true;
}

/* A STUN message read directly from fd (see the top of the file). */
static void rx_stun(spk_relay_worker_t *w, spk_relay_ep_t *ep, int fd, const uint8_t *p, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen, bool from_peer)
{
    if (len >= 2 && p[0] == 0x00 && p[1] == 0x11) {
        return; /* Binding indication: a keepalive */
    }
    gchar *ufrag = NULL, *pwd = NULL;
    if (!nice_agent_get_local_credentials(ep->agent, ep->stream, &ufrag, &pwd)) {
        rx_yield(ep);
        return;
    }
    rx_cred_t cred = {.ufrag = ufrag, .pwd = pwd};
    StunMessage req, resp;
    uint8_t out[512];
    size_t olen = sizeof(out);
    gboolean controlling = FALSE;
    bool control;
    if (stun_agent_validate(&w->rx_stun, &req, p, len, rx_validater, &cred) !=
            STUN_VALIDATION_SUCCESS ||
        stun_message_get_class(&req) != STUN_REQUEST ||
        stun_message_get_method(&req) != STUN_BINDING) {
        goto yield;
    }
    g_object_get(ep->agent, "controlling-mode", &controlling, NULL);
    control = controlling;
    /* Tie-breaker 0: a check that carries our own role is a conflict libnice resolves. */
    if (stun_usage_ice_conncheck_create_reply(&w->rx_stun, &req, &resp, out, &olen, from, fromlen,
                                              &control, 0, STUN_USAGE_ICE_COMPATIBILITY_RFC5245) !=
            STUN_USAGE_ICE_RETURN_SUCCESS ||
        olen == 0) {
        goto yield;
    }
    ssize_t r;
    do {
        r = sendto(fd, out, olen, MSG_DONTWAIT, (const struct sockaddr *)from, fromlen);
    } while (r < 0 && errno == EINTR);
    ep->st.stun_answered++;
    if (!from_peer) {
        rx_to_libnice(ep, RX_LIBNICE_NS); /* a new address: libnice sees its next checks */
    }
    goto out;
yield:
    rx_yield(ep);
out:
    spk_wipe(pwd, strlen(pwd));
    g_free(ufrag);
    g_free(pwd);
}

/* Datagram i of the last recvmmsg() on fd, ep's selected socket. */
static void rx_one(spk_relay_worker_t *w, spk_relay_ep_t *ep, int fd, unsigned i)
{
    const struct msghdr *h = &w->rx_msgs[i].msg_hdr;
    size_t len = w->rx_msgs[i].msg_len;
    uint8_t *p = w->rx_buf + (size_t)i * RX_SLOT;
    if (len == 0) {
        return;
    }
    ep->st.rx_direct++;
    bool from_peer = same_addr(&w->rx_from[i], &ep->tx_addr);
    if ((h->msg_flags & MSG_TRUNC) != 0) {
        rx_yield(ep);
    } else if (p[0] > 3) { /* RFC 7983: 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP */
        if (from_peer) {
            spk_relay_path_recv_cb(ep->agent, ep->stream, 1, (guint)len, (gchar *)p, ep);
        } else {
            rx_yield(ep);
        }
    } else {
        rx_stun(w, ep, fd, p, len, &w->rx_from[i], h->msg_namelen, from_peer);
    }
}

/* Reads ep's selected socket fd with recvmmsg() until a batch is not full (at most RX_ROUNDS). */
static void rx_read(spk_relay_worker_t *w, spk_relay_ep_t *ep, int fd)
{
    for (int round = 0; round < RX_ROUNDS; round++) {
        for (unsigned i = 0; i < RX_BATCH; i++) {
            w->rx_msgs[i].msg_hdr.msg_namelen = sizeof(w->rx_from[i]);
        }
        int n;
        do {
            n = recvmmsg(fd, w->rx_msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        } while (n < 0 && errno == EINTR);
        w->rx_calls++;
        if (n <= 0) {
            return;
        }
        w->rx_datagrams += (uint64_t)n;
        for (unsigned i = 0; i < (unsigned)n; i++) {
            rx_one(w, ep, fd, i);
        }
        if (n < RX_BATCH || ep->tx_fd != fd || ep->rx_libnice_until != 0) {
            return;
        }
    }
}

static gboolean io_cb(gint fd, GIOCondition cond, gpointer user)
{
    spk_relay_worker_t *w = user;
    SPK_RELAY_ON_WORKER(w);
    (void)cond;
    struct epoll_event buf[SPK_RELAY_IO_EVENTS];
    struct epoll_event *evs = buf;
    int n;
    if (w->io_ready_n >= 0) { /* what worker_poll waited for */
        evs = w->io_ready;
        n = w->io_ready_n;
        w->io_ready_n = -1;
    } else {
        do {
            n = epoll_wait(fd, evs, SPK_RELAY_IO_EVENTS, 0);
        } while (n < 0 && errno == EINTR);
    }
    w->io_wakeups++;
    w->txq_on = true;
    tls_worker = w;
    w->io_cur = evs;
    w->io_cur_n = n;
    spk_relay_ep_t *prev = NULL;
    for (int i = 0; i < n; i++) {
        spk_relay_ep_t *ep = (evs[i].data.u64 & AUX_TAG) ? NULL : ep_of_fd(w, evs[i].data.fd);
        if (ep == NULL || ep->io_ctx == NULL) {
            continue; /* gone */
        }
        if ((evs[i].events & EPOLLIN) != 0 && rx_direct(ep, evs[i].data.fd)) {
            rx_read(w, ep, evs[i].data.fd);
            continue;
        }
        if (ep == prev) {
            continue; /* its context was iterated for an earlier socket already */
        }
        prev = ep;
        /* libnice drains every ready socket of this endpoint, one callback per packet. */
        g_main_context_iteration(ep->io_ctx, FALSE);
        if (!ep->dtls_done) {
            /* During set-up libnice may open sockets (ICE-TCP connections). */
            w->io_cur = NULL;
            spk_relay_io_ep_sync(ep);
            w->io_cur = evs;
        }
    }
    w->io_cur = NULL;
    txq_flush(w);
    w->txq_on = false;
    return G_SOURCE_CONTINUE;
}

int spk_relay_io_init(spk_relay_worker_t *w)
{
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll_fd < 0) {
        return SPK_EIO;
    }
    w->io_src = g_unix_fd_source_new(w->epoll_fd, G_IO_IN);
    g_source_set_callback(w->io_src, (GSourceFunc)(void (*)(void))io_cb, w, NULL);
    /* GLib blocks a source that cannot recurse around its dispatch by removing its descriptor
     * from the poll set and adding it back, and each of those writes the context's wake-up
     * eventfd: two system calls per wake-up that io_cb, which never iterates ctx, does not need. */
    g_source_set_can_recurse(w->io_src, TRUE);
    g_source_attach(w->io_src, w->ctx);
    w->txq_buf = malloc((size_t)SPK_RELAY_TXQ_MAX * SPK_RELAY_TXQ_SLOT);
    w->txq = calloc(SPK_RELAY_TXQ_MAX, sizeof(*w->txq));
    w->txq_eps = calloc(SPK_RELAY_TXQ_MAX, sizeof(*w->txq_eps));
    w->rx_buf = malloc((size_t)RX_BATCH * RX_SLOT);
    w->rx_msgs = calloc(RX_BATCH, sizeof(*w->rx_msgs));
    w->rx_iov = calloc(RX_BATCH, sizeof(*w->rx_iov));
    w->rx_from = calloc(RX_BATCH, sizeof(*w->rx_from));
    if (!w->txq_buf || !w->txq || !w->txq_eps || !w->rx_buf || !w->rx_msgs || !w->rx_iov ||
        !w->rx_from) {
        return SPK_ENOMEM;
    }
    for (unsigned i = 0; i < RX_BATCH; i++) {
        w->rx_iov[i].iov_base = w->rx_buf + (size_t)i * RX_SLOT;
        w->rx_iov[i].iov_len = RX_SLOT;
        w->rx_msgs[i].msg_hdr.msg_iov = &w->rx_iov[i];
        w->rx_msgs[i].msg_hdr.msg_iovlen = 1;
        w->rx_msgs[i].msg_hdr.msg_name = &w->rx_from[i];
    }
    stun_agent_init(&w->rx_stun, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    return 0;
}

void spk_relay_io_cleanup(spk_relay_worker_t *w)
{
    spk_debug(0,
              "relay: worker %u: %llu wake-ups, %llu datagrams read directly with %llu "
              "recvmmsg() calls, %llu queued, sent in %llu messages with %llu sendmmsg() calls",
              w->index, (unsigned long long)w->io_wakeups, (unsigned long long)w->rx_datagrams,
              (unsigned long long)w->rx_calls, (unsigned long long)w->txq_queued,
              (unsigned long long)w->txq_msgs, (unsigned long long)w->txq_calls);
    if (w->io_src) {
        g_source_destroy(w->io_src);
        g_source_unref(w->io_src);
        w->io_src = NULL;
    }
    if (w->epoll_fd >= 0) {
        close(w->epoll_fd);
        w->epoll_fd = -1;
    }
    g_clear_pointer(&w->io_eps, free);
    w->io_cap = 0;
    g_clear_pointer(&w->txq_buf, free);
    g_clear_pointer(&w->txq, free);
    g_clear_pointer(&w->txq_eps, free);
    g_clear_pointer(&w->rx_buf, free);
    g_clear_pointer(&w->rx_msgs, free);
    g_clear_pointer(&w->rx_iov, free);
    g_clear_pointer(&w->rx_from, free);
}

/* Records fd as ep's; false when out of memory. */
static bool fd_map_set(spk_relay_worker_t *w, int fd, spk_relay_ep_t *ep)
{
    if ((size_t)fd >= w->io_cap) {
        size_t cap = w->io_cap ? w->io_cap : 256;
        while (cap <= (size_t)fd) {
            cap *= 2;
        }
        spk_relay_ep_t **m = realloc(w->io_eps, cap * sizeof(*m));
        if (m == NULL) {
            return false;
        }
        memset(m + w->io_cap, 0, (cap - w->io_cap) * sizeof(*m));
        w->io_eps = m;
        w->io_cap = cap;
    }
    w->io_eps[fd] = ep;
    return true;
}

int spk_relay_io_ep_attach(spk_relay_ep_t *ep)
{
    ep->io_ctx = g_main_context_new();
    g_main_context_set_poll_func(ep->io_ctx, io_poll);
    if (!nice_agent_attach_recv(ep->agent, ep->stream, 1, ep->io_ctx, spk_relay_path_recv_cb, ep)) {
        return SPK_EIO;
    }
    return 0;
}

/* The descriptors of ep's sockets (at most max). The GPtrArray is read through GLib only: its
 * struct comes from GLib's slice allocator, whose recycling between threads ThreadSanitizer
 * cannot see. */
static guint ep_fds(spk_relay_ep_t *ep, int *fds, guint max)
{
    GPtrArray *socks = nice_agent_get_sockets(ep->agent, ep->stream, 1);
    if (socks == NULL) {
        return 0;
    }
    gsize len = 0;
    gpointer *v = g_ptr_array_steal(socks, &len);
    guint n = 0;
    for (gsize i = 0; i < len; i++) {
        if (n < max) {
            fds[n++] = g_socket_get_fd(v[i]);
        }
        g_object_unref(v[i]);
    }
    g_free(v);
    g_ptr_array_unref(socks);
    return n;
}

void spk_relay_io_ep_sync(spk_relay_ep_t *ep)
{
    if (ep->io_ctx == NULL || ep->agent == NULL || ep->stream == 0) {
        return;
    }
    int fds[IO_EP_SOCKETS];
    guint n = ep_fds(ep, fds, IO_EP_SOCKETS);
    /* A descriptor closed by libnice left the set by itself (and may come back as another
     * endpoint's, which then takes it over in the map); one that is registered already is this
     * endpoint's, as no two endpoints share a socket. */
    for (guint i = 0; i < n; i++) {
        int fd = fds[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint32_t)fd};
        if (fd < 0 || !fd_map_set(ep->w, fd, ep)) {
            continue;
        }
        /* EEXIST: this endpoint's already, or registered as the context's (aux) while libnice
         * watched it there: it is the endpoint's now. */
        if (epoll_ctl(ep->w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0 &&
            (errno != EEXIST || epoll_ctl(ep->w->epoll_fd, EPOLL_CTL_MOD, fd, &ev) != 0)) {
            spk_warn(0, "relay: endpoint %llu: epoll_ctl: %s", (unsigned long long)ep->id,
                     strerror(errno));
        }
    }
}

void spk_relay_io_ep_detach(spk_relay_ep_t *ep)
{
    spk_relay_io_pair_changed(ep);
    if (ep->agent && ep->stream) {
        int fds[IO_EP_SOCKETS];
        guint n = ep_fds(ep, fds, IO_EP_SOCKETS);
        for (guint i = 0; i < n; i++) {
            if (fds[i] >= 0 && ep_of_fd(ep->w, fds[i]) == ep) {
                epoll_ctl(ep->w->epoll_fd, EPOLL_CTL_DEL, fds[i], NULL);
                ep->w->io_eps[fds[i]] = NULL;
            }
        }
        nice_agent_attach_recv(ep->agent, ep->stream, 1, ep->w->ctx, NULL, NULL);
    }
    if (ep->io_ctx) {
        /* What libnice deferred to the endpoint's context. */
        for (int i = 0; i < 16 && g_main_context_iteration(ep->io_ctx, FALSE); i++) {
        }
        g_main_context_unref(ep->io_ctx);
        ep->io_ctx = NULL;
    }
}

/* ---- send ---- */

void spk_relay_io_pair_changed(spk_relay_ep_t *ep)
{
    if (ep->txq_n > 0) {
        txq_flush(ep->w); /* its queue leaves on the socket it was queued for */
    }
    if (ep->tx_sock) {
        g_object_unref(ep->tx_sock);
        ep->tx_sock = NULL;
    }
    ep->tx_fd = -1;
    ep->tx_looked_up = false;
}

void spk_relay_io_ice_restart(spk_relay_ep_t *ep)
{
    spk_relay_io_pair_changed(ep);
    rx_to_libnice(ep, RX_RESTART_NS);
}

/* Caches the selected pair's UDP socket and remote address; false when there is none (no
 * selected pair yet, a relayed or a TCP one). The candidates are libnice's (slice-allocated):
 * read through libnice only, as above. */
static bool tx_lookup(spk_relay_ep_t *ep)
{
    ep->tx_looked_up = true;
    NiceCandidate *local = NULL, *remote = NULL;
    if (!nice_agent_get_selected_pair(ep->agent, ep->stream, 1, &local, &remote) ||
        remote == NULL) {
        return false;
    }
    GSocket *s = nice_agent_get_selected_socket(ep->agent, ep->stream, 1); /* NULL: relayed */
    if (s == NULL) {
        return false;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    nice_address_copy_to_sockaddr(&remote->addr, (struct sockaddr *)&ss);
    socklen_t len = ss.ss_family == AF_INET    ? sizeof(struct sockaddr_in)
                    : ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : 0;
    if (len == 0 || g_socket_get_protocol(s) != G_SOCKET_PROTOCOL_UDP) {
        g_object_unref(s);
        return false;
    }
    memcpy(&ep->tx_addr, &ss, len);
    ep->tx_addrlen = len;
    ep->tx_sock = s;
    ep->tx_fd = g_socket_get_fd(s);
    ep->tx_direct = 0;
    spk_debug(0, "relay: endpoint %llu: sending directly on socket %d", (unsigned long long)ep->id,
              ep->tx_fd);
    return ep->tx_fd >= 0;
}

/* Whether ep has a direct UDP socket (looked up once ICE connected). */
static bool tx_direct(spk_relay_ep_t *ep)
{
    if (!ep->tx_looked_up && ep->ice_state >= SPK_RELAY_ICE_CONNECTED &&
        ep->ice_state != SPK_RELAY_ICE_FAILED) {
        tx_lookup(ep);
    }
    return ep->tx_fd >= 0;
}

int spk_relay_io_send(spk_relay_ep_t *ep, const uint8_t *buf, size_t len)
{
    if (tx_direct(ep)) {
        ssize_t r;
        do {
            r = sendto(ep->tx_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&ep->tx_addr,
                       ep->tx_addrlen);
        } while (r < 0 && errno == EINTR);
        ep->tx_direct++;
        return r == (ssize_t)len ? 0 : SPK_EIO;
    }
    gint r = nice_agent_send(ep->agent, ep->stream, 1, (guint)len, (const gchar *)buf);
    return r == (gint)len ? 0 : SPK_EIO;
}

/* ---- send queue (forwarded RTP of one wake-up) ---- */

static uint8_t *txq_slot(const spk_relay_worker_t *w, unsigned i)
{
    return w->txq_buf + (size_t)i * SPK_RELAY_TXQ_SLOT;
}

static void rtp_sent(spk_relay_ep_t *ep, size_t len)
{
    ep->st.bytes_tx += (uint64_t)len;
    ep->st.rtp_tx++;
}

/* Sends the datagram at iov on ep's cached socket at once and counts it. */
static void txq_send_one(spk_relay_ep_t *ep, const struct iovec *iov)
{
    if (spk_relay_io_send(ep, iov->iov_base, iov->iov_len) != 0) {
        ep->st.dropped_other++;
    } else {
        rtp_sent(ep, iov->iov_len);
    }
}

/* Whether a send failed with err because of GSO itself: no UDP_SEGMENT in the kernel, no
 * checksum offload on the device (EIO), a segment above the path MTU (EINVAL, EMSGSIZE). */
static bool gso_refused(int err)
{
    return err == EINVAL || err == EIO || err == EMSGSIZE || err == ENOPROTOOPT ||
           err == EOPNOTSUPP;
}

/* The outcome of one message of txq_send_ep, segs datagrams of iov[0].iov_len bytes at iov: sent
 * bytes, or -1 and err. Counted; when the kernel refused a GSO message because of GSO itself, GSO
 * is turned off for the worker and its datagrams are sent again one by one. */
static void txq_account(spk_relay_worker_t *w, spk_relay_ep_t *ep, const struct iovec *iov,
                        unsigned segs, ssize_t sent, int err)
{
    size_t len = iov[0].iov_len;
    if (sent == (ssize_t)(len * segs)) {
        for (unsigned s = 0; s < segs; s++) {
            rtp_sent(ep, len);
        }
        ep->tx_direct += segs;
        return;
    }
    if (segs > 1 && sent < 0 && gso_refused(err)) {
        if (!w->txq_gso_off) {
            spk_warn(0, "relay: worker %u: UDP GSO refused (%s): sending datagram by datagram",
                     w->index, strerror(err));
            w->txq_gso_off = true;
        }
        for (unsigned s = 0; s < segs; s++) {
            txq_send_one(ep, &iov[s]);
        }
        return;
    }
    ep->st.dropped_other += segs; /* refused (EAGAIN, ENOBUFS, ...): as by sendto() */
}

/* Sends ep's queued datagrams in order on its cached socket with sendmmsg(): a run of datagrams
 * of one length (at most TXQ_GSO_LEN bytes) as one GSO message (UDP_SEGMENT) of up to
 * TXQ_GSO_SEGS of them, which the kernel splits into the same datagrams, every other datagram as
 * a message of its own. */
static void txq_send_ep(spk_relay_worker_t *w, spk_relay_ep_t *ep)
{
    struct mmsghdr msgs[SPK_RELAY_TXQ_EP_MAX];
    struct iovec iov[SPK_RELAY_TXQ_EP_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[SPK_RELAY_TXQ_EP_MAX];
    unsigned first[SPK_RELAY_TXQ_EP_MAX], segs[SPK_RELAY_TXQ_EP_MAX];
    unsigned n = 0, m = 0; /* datagrams, messages */
    for (int i = ep->txq_head; i >= 0 && n < SPK_RELAY_TXQ_EP_MAX; i = w->txq[i].next) {
        size_t len = w->txq[i].len;
        iov[n].iov_base = txq_slot(w, (unsigned)i);
        iov[n].iov_len = len;
        if (m > 0 && !w->txq_gso_off && len <= TXQ_GSO_LEN && iov[n - 1].iov_len == len &&
            segs[m - 1] < TXQ_GSO_SEGS) {
            segs[m - 1]++;
            msgs[m - 1].msg_hdr.msg_iovlen++;
        } else {
            memset(&msgs[m], 0, sizeof(msgs[m]));
            msgs[m].msg_hdr.msg_name = &ep->tx_addr;
            msgs[m].msg_hdr.msg_namelen = ep->tx_addrlen;
            msgs[m].msg_hdr.msg_iov = &iov[n];
            msgs[m].msg_hdr.msg_iovlen = 1;
            first[m] = n;
            segs[m++] = 1;
        }
        n++;
    }
    for (unsigned k = 0; k < m; k++) {
        if (segs[k] > 1) {
            struct msghdr *h = &msgs[k].msg_hdr;
            h->msg_control = ctl[k].buf;
            h->msg_controllen = sizeof(ctl[k].buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gso = (uint16_t)iov[first[k]].iov_len;
            memcpy(CMSG_DATA(c), &gso, sizeof(gso));
        }
    }
    ep->txq_n = 0;
    ep->txq_head = ep->txq_tail = -1;
    w->txq_msgs += m;
    unsigned off = 0;
    while (off < m && ep->tx_fd >= 0) {
        int r = sendmmsg(ep->tx_fd, msgs + off, m - off, MSG_DONTWAIT);
        w->txq_calls++;
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) { /* this message is refused; the next are tried again */
            txq_account(w, ep, &iov[first[off]], segs[off], -1, errno);
            off++;
            continue;
        }
        for (unsigned k = off; k < off + (unsigned)r; k++) {
            txq_account(w, ep, &iov[first[k]], segs[k], (ssize_t)msgs[k].msg_len, 0);
        }
        off += (unsigned)r;
    }
    for (; off < m; off++) { /* no socket any more (not reached: see pair_changed) */
        ep->st.dropped_other += segs[off];
    }
}

static void txq_flush(spk_relay_worker_t *w)
{
    for (unsigned i = 0; i < w->txq_n_eps; i++) {
        if (w->txq_eps[i]->txq_n > 0) {
            txq_send_ep(w, w->txq_eps[i]);
        }
    }
    w->txq_n = 0;
    w->txq_n_eps = 0;
}

uint8_t *spk_relay_io_rtp_buf(spk_relay_ep_t *ep)
{
    spk_relay_worker_t *w = ep->w;
    if (!w->txq_on || !tx_direct(ep)) {
        return w->tx;
    }
    if (w->txq_n == SPK_RELAY_TXQ_MAX || ep->txq_n == SPK_RELAY_TXQ_EP_MAX) {
        txq_flush(w);
    }
    return txq_slot(w, w->txq_n);
}

void spk_relay_io_send_rtp(spk_relay_ep_t *ep, uint8_t *buf, size_t len)
{
    spk_relay_worker_t *w = ep->w;
    if (!w->txq_on || w->txq_n == SPK_RELAY_TXQ_MAX || buf != txq_slot(w, w->txq_n) ||
        ep->tx_fd < 0) {
        if (spk_relay_io_send(ep, buf, len) != 0) {
            ep->st.dropped_other++;
        } else {
            rtp_sent(ep, len);
        }
        return;
    }
    w->txq_queued++;
    int i = w->txq_n++;
    w->txq[i].len = (uint16_t)len;
    w->txq[i].next = -1;
    if (ep->txq_n++ == 0) {
        ep->txq_head = (int16_t)i;
        w->txq_eps[w->txq_n_eps++] = ep;
    } else {
        w->txq[ep->txq_tail].next = (int16_t)i;
    }
    ep->txq_tail = (int16_t)i;
}
