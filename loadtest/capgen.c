/* capgen: pre-protected packets out with sendmmsg, accounting from the RTP header on the way in
 * (capgen.h). */
#define _GNU_SOURCE
#include "capgen.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <srtp2/srtp.h>

#include "benchutil.h"

#define SEND_BATCH 64
#define RECV_BATCH 64
#define RX_MAX 1500
#define TAG_ROOM 32

struct capgen {
    capgen_cfg_t cfg;
    size_t stride;
    uint64_t n; /* packets per stream in the prepared step */
    size_t cap_pkts;
    uint8_t *pkts;     /* [stream][k] stride bytes each */
    uint16_t *lens;    /* [stream][k] */
    uint64_t *send_ns; /* [stream][k] */
    uint8_t *bits;     /* [sub][src] bitmap of the step's packets */
    size_t bits_bytes; /* per bitmap */
    size_t bits_cap;
    uint64_t *seq0;
    _Atomic uint64_t *sent; /* per stream: packets handed to the kernel (or about to be) */
    double pps, seconds, planned;

    /* receiving side (one thread) */
    uint64_t hist[CAPGEN_HIST_US + CAPGEN_HIST_MS];
    uint64_t received, dups, stray, other, samples, samples_bad, sample_ctr;
    uint64_t lat_max_ns, lat_sum_ns;
    uint64_t send_errors; /* sending thread */
    uint8_t rx[RECV_BATCH][RX_MAX];
    uint8_t clear[RX_MAX];
    struct mmsghdr rmsg[RECV_BATCH];
    struct iovec riov[RECV_BATCH];
    _Atomic uint64_t rx_batches; /* receive progress, for the drain */
    atomic_bool stop;
    clockid_t recv_clock;
    _Atomic int recv_tid;
    atomic_bool recv_clock_set;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) {
        return 0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int capgen_new(const capgen_cfg_t *cfg, capgen_t **out)
{
    if (!cfg || cfg->n_streams < 1 || cfg->n_subs < 1 || cfg->size < 24 || cfg->size > 1400 ||
        !cfg->build) {
        return -1;
    }
    capgen_t *g = calloc(1, sizeof(*g));
    if (!g) {
        return -1;
    }
    g->cfg = *cfg;
    g->cfg.threads = cfg->threads == 2 ? 2 : 1;
    g->cfg.tick_us = cfg->tick_us ? cfg->tick_us : 200;
    g->cfg.mem_cap = cfg->mem_cap ? cfg->mem_cap : (size_t)512 << 20;
    g->cfg.drain_s = cfg->drain_s > 0 ? cfg->drain_s : 0.3;
    g->stride = (cfg->size + TAG_ROOM + 63) & ~(size_t)63;
    g->seq0 = calloc((size_t)cfg->n_streams, sizeof(*g->seq0));
    g->sent = calloc((size_t)cfg->n_streams, sizeof(*g->sent));
    if (!g->seq0 || !g->sent) {
        capgen_free(g);
        return -1;
    }
    for (int i = 0; i < RECV_BATCH; i++) {
        g->riov[i].iov_base = g->rx[i];
        g->riov[i].iov_len = RX_MAX;
        g->rmsg[i].msg_hdr.msg_iov = &g->riov[i];
        g->rmsg[i].msg_hdr.msg_iovlen = 1;
    }
    *out = g;
    return 0;
}

void capgen_free(capgen_t *g)
{
    if (!g) {
        return;
    }
    free(g->pkts);
    free(g->lens);
    free(g->send_ns);
    free(g->bits);
    free(g->seq0);
    free(g->sent);
    free(g);
}

/* ---- prepare ---- */

static int grow(capgen_t *g, uint64_t n)
{
    size_t ns = (size_t)g->cfg.n_streams;
    if (n > g->cap_pkts) {
        free(g->pkts);
        free(g->lens);
        free(g->send_ns);
        g->pkts = malloc(ns * n * g->stride);
        g->lens = malloc(ns * n * sizeof(*g->lens));
        g->send_ns = malloc(ns * n * sizeof(*g->send_ns));
        g->cap_pkts = g->pkts && g->lens && g->send_ns ? n : 0;
        if (!g->cap_pkts) {
            return -1;
        }
    }
    g->bits_bytes = (n + 7) / 8;
    size_t bits = (size_t)g->cfg.n_subs * CAPGEN_MAX_SRC * g->bits_bytes;
    if (bits > g->bits_cap) {
        free(g->bits);
        g->bits = malloc(bits);
        g->bits_cap = g->bits ? bits : 0;
        if (!g->bits) {
            return -1;
        }
    }
    memset(g->bits, 0, bits);
    return 0;
}

int capgen_prepare(capgen_t *g, double pps, double seconds)
{
    size_t ns = (size_t)g->cfg.n_streams;
    uint64_t n = (uint64_t)(pps * seconds + 0.5);
    uint64_t fit = g->cfg.mem_cap / (ns * g->stride);
    g->planned = seconds;
    if (n > fit) {
        n = fit;
    }
    if (n < 1 || grow(g, n) != 0) {
        return -1;
    }
    g->n = n;
    g->pps = pps;
    g->seconds = (double)n / pps;
    for (size_t s = 0; s < ns; s++) {
        capgen_stream_t *st = &g->cfg.streams[s];
        g->seq0[s] = st->seq;
        atomic_store(&g->sent[s], 0);
        for (uint64_t k = 0; k < n; k++) {
            uint8_t *pkt = g->pkts + (s * n + k) * g->stride;
            size_t len = g->cfg.build(g->cfg.user, (int)s, st->seq + k, pkt, g->stride - TAG_ROOM);
            int plen = (int)len;
            if (len == 0 || srtp_protect((srtp_t)st->srtp, pkt, &plen) != srtp_err_status_ok) {
                return -1;
            }
            g->lens[s * n + k] = (uint16_t)plen;
        }
        st->seq += n; /* the SRTP index moved on whether or not everything goes out */
    }
    return 0;
}

/* ---- receive ---- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sample(capgen_t *g, const capgen_sub_t *sub, int st, uint64_t k, const uint8_t *b,
                   size_t len)
{
    if (!g->cfg.check || !sub->srtp_in) {
        return;
    }
    memcpy(g->clear, b, len);
    int n = (int)len;
    bool ok = srtp_unprotect((srtp_t)sub->srtp_in, g->clear, &n) == srtp_err_status_ok &&
              g->cfg.check(g->cfg.user, st, g->seq0[st] + k, g->clear, (size_t)n);
    g->samples++;
    g->samples_bad += ok ? 0 : 1;
}

static void account(capgen_t *g, int si, const uint8_t *b, size_t len, uint64_t now)
{
    const capgen_sub_t *sub = &g->cfg.subs[si];
    if (len < 12 || (b[0] >> 6) != 2 || (b[1] >= 192 && b[1] <= 223)) {
        g->other++; /* RTCP, STUN */
        return;
    }
    uint32_t ssrc = be32(b + 8);
    int i = 0;
    while (i < sub->n_src && sub->src_ssrc[i] != ssrc) {
        i++;
    }
    if (i == sub->n_src) {
        g->other++;
        return;
    }
    int st = sub->src_stream[i];
    uint16_t seq16 = (uint16_t)(be16(b + 2) - sub->seq_off[i]);
    uint64_t sent = atomic_load_explicit(&g->sent[st], memory_order_acquire);
    uint16_t delta = (uint16_t)((uint16_t)(g->seq0[st] + sent - 1) - seq16);
    if (sent == 0 || delta >= sent) {
        g->stray++; /* not of this step */
        return;
    }
    uint64_t k = sent - 1 - delta;
    uint8_t *bits = g->bits + ((size_t)si * CAPGEN_MAX_SRC + (size_t)i) * g->bits_bytes;
    uint8_t bit = (uint8_t)(1u << (k & 7));
    if (bits[k / 8] & bit) {
        g->dups++;
        return;
    }
    bits[k / 8] |= bit;
    g->received++;
    uint64_t sent_at = g->send_ns[(size_t)st * g->n + k];
    uint64_t lat = now > sent_at ? now - sent_at : 0;
    uint64_t us = lat / 1000, ms = us < CAPGEN_HIST_US ? 0 : (us - CAPGEN_HIST_US) / 1000;
    g->hist[us < CAPGEN_HIST_US
                ? us
                : CAPGEN_HIST_US + (ms < CAPGEN_HIST_MS ? ms : CAPGEN_HIST_MS - 1)]++;
    g->lat_sum_ns += lat;
    g->lat_max_ns = lat > g->lat_max_ns ? lat : g->lat_max_ns;
    if (++g->sample_ctr % CAPGEN_SAMPLE == 0) {
        sample(g, sub, st, k, b, len);
    }
}

/* Reads fd until it would block; si < 0: discard. */
static void drain(capgen_t *g, int fd, int si)
{
    for (;;) {
        int n = recvmmsg(fd, g->rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            return;
        }
        uint64_t now = now_ns();
        atomic_fetch_add_explicit(&g->rx_batches, si >= 0 ? 1 : 0, memory_order_relaxed);
        for (int i = 0; i < n && si >= 0; i++) {
            account(g, si, g->rx[i], g->rmsg[i].msg_len, now);
        }
        if (n < RECV_BATCH) {
            return;
        }
    }
}

/* Epoll data: 0 .. n_subs-1 subscribers, -1 extra sockets, -2 the timer. */
static int epoll_setup(capgen_t *g, int timer_fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    for (int i = 0; i < g->cfg.n_subs; i++) {
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, g->cfg.subs[i].fd, &ev);
    }
    for (int i = 0; i < g->cfg.n_extra; i++) {
        ev.data.u64 = (uint64_t)(1u << 20) + (uint64_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, g->cfg.extra_fds[i], &ev);
    }
    if (timer_fd >= 0) {
        ev.data.u64 = (uint64_t)(2u << 20);
        epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev);
    }
    return ep;
}

/* Handles ready sockets; returns true when the timer fired. */
static bool handle(capgen_t *g, const struct epoll_event *evs, int n)
{
    bool tick = false;
    for (int i = 0; i < n; i++) {
        uint64_t d = evs[i].data.u64;
        if (d == (uint64_t)(2u << 20)) {
            tick = true;
        } else if (d >= (uint64_t)(1u << 20)) {
            drain(g, g->cfg.extra_fds[d - (1u << 20)], -1);
        } else {
            drain(g, g->cfg.subs[d].fd, (int)d);
        }
    }
    return tick;
}

static void *recv_main(void *arg)
{
    capgen_t *g = arg;
    clockid_t c;
    if (pthread_getcpuclockid(pthread_self(), &c) == 0) {
        g->recv_clock = c;
        atomic_store(&g->recv_tid, (int)gettid());
        atomic_store(&g->recv_clock_set, true);
    }
    int ep = epoll_setup(g, -1);
    struct epoll_event evs[64];
    while (ep >= 0 && !atomic_load(&g->stop)) {
        int n = epoll_wait(ep, evs, 64, 20);
        handle(g, evs, n > 0 ? n : 0);
    }
    if (ep >= 0) {
        close(ep);
    }
    return NULL;
}

/* ---- send ---- */

static int send_range(capgen_t *g, int s, uint64_t a, uint64_t b, uint64_t now)
{
    capgen_stream_t *st = &g->cfg.streams[s];
    struct mmsghdr m[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    int errors = 0;
    while (a < b) {
        int cnt = b - a > SEND_BATCH ? SEND_BATCH : (int)(b - a);
        for (int i = 0; i < cnt; i++) {
            size_t idx = (size_t)s * g->n + a + (uint64_t)i;
            g->send_ns[idx] = now;
            iov[i].iov_base = g->pkts + idx * g->stride;
            iov[i].iov_len = g->lens[idx];
            memset(&m[i], 0, sizeof(m[i]));
            m[i].msg_hdr.msg_name = &st->to;
            m[i].msg_hdr.msg_namelen = st->to_len;
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        /* counted as sent before the call: the forwarder may answer before it returns */
        atomic_store_explicit(&g->sent[s], a + (uint64_t)cnt, memory_order_release);
        int off = 0, tries = 0;
        while (off < cnt && tries < 100) {
            int r = sendmmsg(st->fd, m + off, (unsigned)(cnt - off), 0);
            if (r > 0) {
                off += r;
            } else if (r < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS) {
                break;
            } else {
                tries++;
            }
        }
        errors += cnt - off;
        a += (uint64_t)cnt;
    }
    return errors;
}

/* Sends what is due at now; returns the packets that were due and not yet sent. */
static uint64_t send_due(capgen_t *g, uint64_t t0, uint64_t now, bool all)
{
    uint64_t behind = 0;
    uint64_t due = all ? g->n : (uint64_t)((double)(now - t0) * g->pps / 1e9) + 1;
    if (due > g->n) {
        due = g->n;
    }
    for (int s = 0; s < g->cfg.n_streams; s++) {
        uint64_t sent = atomic_load_explicit(&g->sent[s], memory_order_relaxed);
        if (due > sent) {
            behind += due - sent;
            g->send_errors += (uint64_t)send_range(g, s, sent, due, now);
        }
    }
    return behind;
}

static void reset_rx(capgen_t *g)
{
    memset(g->hist, 0, sizeof(g->hist));
    g->received = g->dups = g->stray = g->other = g->samples = g->samples_bad = 0;
    g->lat_max_ns = g->lat_sum_ns = 0;
    g->send_errors = 0;
}

static double hist_q(const capgen_t *g, double q)
{
    const size_t n = CAPGEN_HIST_US + CAPGEN_HIST_MS;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += g->hist[i];
    }
    uint64_t want = (uint64_t)(q * (double)total + 0.999999), cum = 0;
    for (size_t i = 0; i < n && total; i++) {
        cum += g->hist[i];
        if (cum >= want) {
            return i < CAPGEN_HIST_US ? (double)i
                                      : CAPGEN_HIST_US + 1000.0 * (double)(i - CAPGEN_HIST_US);
        }
    }
    return 0;
}

static void results(capgen_t *g, capgen_result_t *r)
{
    r->pps = g->pps;
    r->planned_seconds = g->planned;
    for (int s = 0; s < g->cfg.n_streams; s++) {
        r->sent += atomic_load(&g->sent[s]);
    }
    for (int si = 0; si < g->cfg.n_subs; si++) {
        for (int i = 0; i < g->cfg.subs[si].n_src; i++) {
            r->expected += atomic_load(&g->sent[g->cfg.subs[si].src_stream[i]]);
        }
    }
    r->received = g->received;
    r->dups = g->dups;
    r->stray = g->stray;
    r->other = g->other;
    r->loss_pct =
        r->expected
            ? 100.0 *
                  (double)(r->expected - (r->received < r->expected ? r->received : r->expected)) /
                  (double)r->expected
            : 100.0;
    r->forwarded_pps = r->seconds > 0 ? (double)r->received / r->seconds : 0;
    r->sent_pps = r->seconds > 0 ? (double)r->sent / r->seconds : 0;
    r->lat_p50_us = hist_q(g, 0.50);
    r->lat_p99_us = hist_q(g, 0.99);
    r->lat_p999_us = hist_q(g, 0.999);
    r->lat_max_us = (double)g->lat_max_ns / 1e3;
    r->lat_mean_us = g->received ? (double)g->lat_sum_ns / (double)g->received / 1e3 : 0;
    r->samples = g->samples;
    r->samples_bad = g->samples_bad;
    r->send_errors = g->send_errors;
}

int capgen_run(capgen_t *g, capgen_result_t *r)
{
    memset(r, 0, sizeof(*r));
    reset_rx(g);
    bool two = g->cfg.threads == 2;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, (long)g->cfg.tick_us * 1000},
                             .it_value = {0, (long)g->cfg.tick_us * 1000}};
    if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) != 0) {
        return -1;
    }
    pthread_t th;
    atomic_store(&g->stop, false);
    atomic_store(&g->recv_clock_set, false);
    if (two && pthread_create(&th, NULL, recv_main, g) != 0) {
        close(tfd);
        return -1;
    }
    int ep = two ? -1 : epoll_setup(g, tfd);
    struct epoll_event evs[64];
    while (two && !atomic_load(&g->recv_clock_set)) {
        usleep(100);
    }
    double cpu0 = self_cpu_s(), th0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    double rth0 = two ? clock_s(g->recv_clock) : 0;
    int self = (int)getpid(), send_tid = (int)gettid(), recv_tid = atomic_load(&g->recv_tid);
    double sw0 = spk_bench_task_wait_s(self, send_tid);
    double rw0 = two ? spk_bench_task_wait_s(self, recv_tid) : 0;
    if (g->cfg.mark) {
        g->cfg.mark(g->cfg.user, 0);
    }
    uint64_t t0 = now_ns(), t_idle = t0, end = t0 + (uint64_t)(g->seconds * 1e9);
    uint64_t now = t0, drain_end = 0, drain_cap = 0, batches = 0;
    bool sending = true;
    for (;;) {
        bool tick = true;
        if (two) {
            uint64_t x;
            tick = read(tfd, &x, sizeof(x)) > 0;
        } else {
            int n = epoll_wait(ep, evs, 64, 50);
            tick = handle(g, evs, n > 0 ? n : 0);
            if (tick) {
                uint64_t x;
                (void)!read(tfd, &x, sizeof(x));
            }
        }
        now = now_ns();
        if (sending && tick) {
            uint64_t behind = send_due(g, t0, now, now >= end);
            r->behind_max = behind > r->behind_max ? behind : r->behind_max;
            r->ticks++;
            if (now >= end) {
                sending = false;
                r->seconds = (double)(now - t0) / 1e9;
                r->gen_cpu_s = self_cpu_s() - cpu0;
                r->send_cpu_s = clock_s(CLOCK_THREAD_CPUTIME_ID) - th0;
                r->recv_cpu_s = two ? clock_s(g->recv_clock) - rth0 : 0;
                r->send_wait_s = spk_bench_task_wait_s(self, send_tid) - sw0;
                r->recv_wait_s = two ? spk_bench_task_wait_s(self, recv_tid) - rw0 : 0;
                drain_end = now + (uint64_t)(g->cfg.drain_s * 1e9);
                drain_cap = now + (uint64_t)(10 * g->cfg.drain_s * 1e9);
                if (g->cfg.mark) {
                    g->cfg.mark(g->cfg.user, 1);
                }
            }
        }
        if (now - t_idle > 20000000u && g->cfg.idle) {
            t_idle = now;
            g->cfg.idle(g->cfg.user);
        }
        if (!sending) {
            /* the drain lasts until drain_s pass without a packet, 10 × drain_s at most */
            uint64_t b = atomic_load_explicit(&g->rx_batches, memory_order_relaxed);
            if (b != batches) {
                batches = b;
                drain_end = now + (uint64_t)(g->cfg.drain_s * 1e9);
            }
            if (now >= drain_end || now >= drain_cap) {
                break;
            }
        }
    }
    if (two) {
        atomic_store(&g->stop, true);
        pthread_join(th, NULL);
    } else {
        close(ep);
    }
    close(tfd);
    results(g, r);
    return 0;
}

/* ---- ramp ---- */

/* Who saturated a step that lost CAPGEN_LOSS_PCT or more or could not send at the rate asked:
 * the forwarder (its threads on a CPU 90 % of the time or more), the generator (its busiest
 * thread so), both, or the scheduler (neither busy, but one waited for a CPU a quarter of the
 * time or more); failing all that, whose sockets dropped. */
static const char *who(const capgen_result_t *r, double fwd_util, double gen_util, double fwd_wait,
                       double gen_wait, long sdrop, long cdrop, double target_pps)
{
    bool short_sent = r->sent_pps < 0.98 * target_pps;
    if (r->loss_pct < CAPGEN_LOSS_PCT && !short_sent) {
        return NULL;
    }
    bool fwd = fwd_util >= 0.9, gen = gen_util >= 0.9;
    if (fwd || gen) {
        return fwd && gen ? "both" : fwd ? "relay" : "generator";
    }
    if (fwd_wait >= 0.25 || gen_wait >= 0.25) {
        return "scheduler";
    }
    return sdrop > 0 ? "relay" : cdrop > 0 || short_sent ? "generator" : "unknown";
}

static void set_real(json_t *o, const char *k, double v)
{
    json_object_set_new(o, k, json_real(v));
}

static void set_int(json_t *o, const char *k, uint64_t v)
{
    json_object_set_new(o, k, json_integer((json_int_t)v));
}

static json_t *step_json(const capgen_t *g, const capgen_result_t *r, const capgen_fwd_t *f,
                         long sdrop, long cdrop, const char **sat)
{
    double s = r->seconds > 0 ? r->seconds : 1;
    double fwd_util = f->cpu_send_s / s / (f->threads > 0 ? f->threads : 1);
    double send_util = r->send_cpu_s / s, recv_util = r->recv_cpu_s / s;
    double gen_util = send_util > recv_util ? send_util : recv_util;
    double gen_wait = (r->send_wait_s > r->recv_wait_s ? r->send_wait_s : r->recv_wait_s) / s;
    double fwd_wait = f->wait_s / s / (f->threads > 0 ? f->threads : 1);
    double target = r->pps * g->cfg.n_streams;
    *sat = who(r, fwd_util, gen_util, fwd_wait, gen_wait, sdrop, cdrop, target);
    json_t *o = json_object();
    set_real(o, "pps_per_publisher", r->pps);
    set_real(o, "seconds", r->seconds);
    set_real(o, "planned_seconds", r->planned_seconds);
    set_int(o, "packets_sent", r->sent);
    set_real(o, "sent_pps", r->sent_pps);
    set_real(o, "target_sent_pps", target);
    set_int(o, "packets_expected", r->expected);
    set_int(o, "packets_received", r->received);
    set_real(o, "loss_pct", r->loss_pct);
    set_real(o, "forwarded_pps", r->forwarded_pps);
    set_int(o, "duplicates", r->dups);
    set_int(o, "stray", r->stray);
    set_int(o, "send_errors", r->send_errors);
    set_real(o, "latency_p50_us", r->lat_p50_us);
    set_real(o, "latency_p99_us", r->lat_p99_us);
    set_real(o, "latency_p999_us", r->lat_p999_us);
    set_real(o, "latency_max_us", r->lat_max_us);
    set_real(o, "latency_mean_us", r->lat_mean_us);
    set_int(o, "samples_checked", r->samples);
    set_int(o, "samples_bad", r->samples_bad);
    set_real(o, "worker_cpu_s", f->cpu_send_s);
    set_real(o, "worker_util", fwd_util);
    set_real(o, "worker_runqueue_wait_s", f->wait_s);
    set_real(o, "worker_cpu_us_per_forwarded",
             r->received ? f->cpu_all_s * 1e6 / (double)r->received : -1);
    set_real(o, "process_cpu_us_per_forwarded",
             r->received ? f->proc_cpu_all_s * 1e6 / (double)r->received : -1);
    set_real(o, "process_cpu_util", f->proc_cpu_send_s / s);
    json_object_set_new(o, "udp_drops_spreekd", json_integer(sdrop));
    json_object_set_new(o, "udp_drops_client", json_integer(cdrop));
    set_real(o, "gen_cpu_util", r->gen_cpu_s / s);
    set_real(o, "gen_cpu_us_per_forwarded",
             r->received ? (r->send_cpu_s + r->recv_cpu_s) * 1e6 / (double)r->received : -1);
    set_real(o, "gen_send_thread_util", send_util);
    set_real(o, "gen_recv_thread_util", recv_util);
    set_real(o, "gen_runqueue_wait_s",
             r->send_wait_s > r->recv_wait_s ? r->send_wait_s : r->recv_wait_s);
    set_int(o, "gen_behind_max", r->behind_max);
    json_object_set_new(o, "saturated", *sat ? json_string(*sat) : json_null());
    return o;
}

int capgen_ramp(capgen_t *g, const double *rates, int n, double seconds, json_t *out)
{
    json_t *arr = json_array();
    double best = 0, best_pps = 0;
    const char *first_sat = NULL;
    int lossy = 0, bad = 0;
    for (int k = 0; k < n && lossy < 2; k++) {
        if (capgen_prepare(g, rates[k], seconds) != 0) {
            fprintf(stderr, "capgen: cannot prepare %.0f pps\n", rates[k]);
            bad = -1;
            break;
        }
        fprintf(stderr, "capgen: step %.0f pps per publisher\n", rates[k]);
        long sd0 = spk_bench_udp_drops(g->cfg.fwd_pid), cd0 = spk_bench_udp_drops((int)getpid());
        capgen_result_t r;
        capgen_run(g, &r);
        if (g->cfg.mark) {
            g->cfg.mark(g->cfg.user, 2);
        }
        capgen_fwd_t f = {0};
        if (g->cfg.fwd) {
            g->cfg.fwd(g->cfg.user, &f);
        }
        long sdrop = spk_bench_udp_drops(g->cfg.fwd_pid) - sd0;
        long cdrop = spk_bench_udp_drops((int)getpid()) - cd0;
        const char *sat = NULL;
        json_array_append_new(arr, step_json(g, &r, &f, sdrop, cdrop, &sat));
        fprintf(stderr,
                "capgen:   %.0f fwd/s, loss %.3f %%, p50 %.0f p99 %.0f us, forwarder %.2f CPU, "
                "generator %.2f/%.2f, saturated: %s\n",
                r.forwarded_pps, r.loss_pct, r.lat_p50_us, r.lat_p99_us,
                r.seconds > 0 ? f.cpu_send_s / r.seconds : 0,
                r.seconds > 0 ? r.send_cpu_s / r.seconds : 0,
                r.seconds > 0 ? r.recv_cpu_s / r.seconds : 0, sat ? sat : "no");
        if (bad >= 0) {
            bad += r.samples_bad > 0 || r.samples == 0 ? 1 : 0;
        }
        if (sat) {
            first_sat = first_sat ? first_sat : sat;
            lossy++;
        } else {
            lossy = 0;
            if (r.forwarded_pps > best) {
                best = r.forwarded_pps;
                best_pps = r.pps;
            }
        }
    }
    json_object_set_new(out, "steps", arr);
    json_object_set_new(out, "max_forwarded_pps", json_real(best));
    json_object_set_new(out, "at_pps_per_publisher", json_real(best_pps));
    json_object_set_new(out, "saturated", first_sat ? json_string(first_sat) : json_null());
    return bad;
}
