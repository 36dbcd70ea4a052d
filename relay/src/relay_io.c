/* Packet I/O of a relay worker.
 *
 * Receive: every endpoint's libnice agent delivers its packets on a GMainContext of its own
 * (ep->io_ctx, nice_agent_attach_recv), which the worker's main loop never polls. Instead one
 * epoll set per worker holds the ICE sockets of all its endpoints and is the worker's single
 * packet source: on readiness the worker iterates the io_ctx of each ready endpoint only, and
 * libnice reads that endpoint's sockets until they would block, answering STUN itself (checks,
 * consent) and handing everything else to spk_relay_path_recv_cb. A wake-up therefore costs
 * O(ready endpoints), not the O(all sockets) of polling every source of the worker's context,
 * and takes every packet queued meanwhile. The endpoint contexts poll with io_poll, which
 * answers from the epoll result at hand instead of making a poll() system call of its own.
 * (nice_agent_recv_messages_nonblocking() was considered: in libnice 0.1.21 it iterates the
 * component's context as well, at least twice per call — once to read, once to learn that nothing
 * more is queued.)
 *
 * Send: once ICE has selected a pair whose local side is a UDP socket, packets go out with one
 * sendto() on that socket to the remote address, both cached per endpoint (the GSocket is
 * referenced so its descriptor cannot be reused meanwhile); the cache is dropped whenever
 * libnice selects another pair and on an ICE restart or failure. TCP pairs and anything before
 * selection go through nice_agent_send(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "relay_int.h"
#include "spk/error.h"
#include "spk/log.h"

#define IO_EVENTS 64
#define IO_EP_SOCKETS 64 /* sockets of one endpoint handled (UDP per address, ICE-TCP more) */

/* The worker whose io_cb is running on this thread, for io_poll. */
static __thread spk_relay_worker_t *tls_worker;

/* ---- receive ---- */

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
                uint32_t e = w->io_cur[k].events;
                fds[i].revents =
                    (gushort)(((e & EPOLLIN) ? G_IO_IN : 0) | ((e & EPOLLERR) ? G_IO_ERR : 0) |
                              ((e & EPOLLHUP) ? G_IO_HUP : 0)) &
                    (fds[i].events | G_IO_ERR | G_IO_HUP);
                break;
            }
        }
        ready += fds[i].revents != 0;
    }
    return ready;
}

static spk_relay_ep_t *ep_of_fd(const spk_relay_worker_t *w, int fd)
{
    return fd >= 0 && (size_t)fd < w->io_cap ? w->io_eps[fd] : NULL;
}

static gboolean io_cb(gint fd, GIOCondition cond, gpointer user)
{
    spk_relay_worker_t *w = user;
    SPK_RELAY_ON_WORKER(w);
    (void)cond;
    struct epoll_event evs[IO_EVENTS];
    int n;
    do {
        n = epoll_wait(fd, evs, IO_EVENTS, 0);
    } while (n < 0 && errno == EINTR);
    w->io_wakeups++;
    tls_worker = w;
    w->io_cur = evs;
    w->io_cur_n = n;
    spk_relay_ep_t *prev = NULL;
    for (int i = 0; i < n; i++) {
        spk_relay_ep_t *ep = ep_of_fd(w, evs[i].data.fd);
        if (ep == NULL || ep == prev || ep->io_ctx == NULL) {
            continue; /* gone, or its context was iterated for an earlier socket already */
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
    return 0;
}

void spk_relay_io_cleanup(spk_relay_worker_t *w)
{
    if (w->io_src) {
        g_source_destroy(w->io_src);
        g_source_unref(w->io_src);
        w->io_src = NULL;
    }
    if (w->epoll_fd >= 0) {
        close(w->epoll_fd);
        w->epoll_fd = -1;
    }
    free(w->io_eps);
    w->io_eps = NULL;
    w->io_cap = 0;
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
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (fd < 0 || !fd_map_set(ep->w, fd, ep)) {
            continue;
        }
        if (epoll_ctl(ep->w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST) {
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
    if (ep->tx_sock) {
        g_object_unref(ep->tx_sock);
        ep->tx_sock = NULL;
    }
    ep->tx_fd = -1;
    ep->tx_looked_up = false;
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

int spk_relay_io_send(spk_relay_ep_t *ep, const uint8_t *buf, size_t len)
{
    if (!ep->tx_looked_up && ep->ice_state >= SPK_RELAY_ICE_CONNECTED &&
        ep->ice_state != SPK_RELAY_ICE_FAILED) {
        tx_lookup(ep);
    }
    if (ep->tx_fd >= 0) {
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
