/* epfloor: the event-driven floor of the relay's packet path. srtpfloor measures the SRTP work and
 * one sendto in a busy loop, which pays no wake-up; a relay whose packets arrive one at a time
 * cannot avoid one. This is the least a forwarder driven by readiness must spend per packet:
 * --streams publishers (UDP sockets of a generator thread) send 1,200-byte SRTP packets (AEAD_
 * AES_128_GCM) to as many sockets of a forwarder thread, with random (exponential) spacing at
 * --pps packets/s each; the forwarder sleeps in epoll_wait, reads the one packet that woke it,
 * unprotects it with the publisher's session, and for each of F subscribers protects it with the
 * subscriber's session and sends it with one sendto on loopback (to a socket the generator
 * drains). The figure is the forwarder thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user +
 * system, so the wake-up and the system calls count) over the window, per forwarded packet
 * (received × F). Median of --repeat windows of --seconds per (rate, fan-out); one JSON line:
 *   {"streams":10,"sink_wait":false,"results":[{"pps_per_stream":160,"fanout":1,
 *    "us_per_forwarded":..,"wakeups_per_packet":..,"received":..,"sent":..,"runs":[..]},..]}
 * The sink is drained by the generator between its sends, so nobody waits on it: a send costs
 * the forwarder no wake-up of a receiver. With --sink-wait 1 a thread of its own waits in
 * epoll_wait() on the sink and reads each packet as it comes, as a receiving client does (e.g.
 * spreekload's peers): on loopback the sender's system call then also wakes that thread, which
 * is part of what a relay pays per forwarded packet in such a benchmark (on a network the
 * receiver's wake-up happens on its own machine). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include "floor_util.h"

#define PKT 1200
#define PLAIN (PKT - 16) /* GCM tag */
#define MAX_STREAMS 64
#define MAX_FANOUT 8
#define MAX_LIST 16
#define MAX_REPEAT 9

typedef struct {
    int n_streams, fanout;
    double pps; /* per stream */
    double seconds;
    /* generator side */
    int pub_fd[MAX_STREAMS];
    srtp_t pub[MAX_STREAMS];
    struct sockaddr_in fwd_addr[MAX_STREAMS];
    int sink_fd;
    struct sockaddr_in sink_addr;
    /* forwarder side */
    int fwd_fd[MAX_STREAMS];
    srtp_t in[MAX_STREAMS];
    srtp_t out[MAX_FANOUT];
    atomic_bool stop;
    bool sink_wait; /* a thread waits on the sink (above) */
    uint64_t sent, received, wakeups, cpu_ns, errors;
} run_t;

/* --sink-wait: the receiving side, woken by every packet the forwarder sends. */
static void *sink(void *arg)
{
    run_t *r = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, r->sink_fd, &ev);
    static uint8_t drain[PKT + SRTP_MAX_TRAILER_LEN];
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        struct epoll_event got;
        if (epoll_wait(ep, &got, 1, 50) > 0) {
            while (recv(r->sink_fd, drain, sizeof(drain), MSG_DONTWAIT) > 0) {
            }
        }
    }
    close(ep);
    return NULL;
}

/* The forwarder: one wake-up per arrival, the SRTP work and one sendto per subscriber. */
static void *forwarder(void *arg)
{
    run_t *r = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < r->n_streams; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, r->fwd_fd[i], &ev);
    }
    static uint8_t buf[PKT + SRTP_MAX_TRAILER_LEN], tx[PKT + SRTP_MAX_TRAILER_LEN];
    uint64_t t0 = floor_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        struct epoll_event evs[MAX_STREAMS];
        int n = epoll_wait(ep, evs, MAX_STREAMS, 50);
        if (n <= 0) {
            continue;
        }
        r->wakeups++;
        for (int e = 0; e < n; e++) {
            unsigned s = evs[e].data.u32;
            ssize_t got = recv(r->fwd_fd[s], buf, sizeof(buf), MSG_DONTWAIT);
            if (got <= 0) {
                continue;
            }
            r->received++;
            int len = (int)got;
            if (srtp_unprotect(r->in[s], buf, &len) != srtp_err_status_ok) {
                r->errors++;
                continue;
            }
            for (int f = 0; f < r->fanout; f++) {
                memcpy(tx, buf, (size_t)len);
                int out = len;
                if (srtp_protect(r->out[f], tx, &out) != srtp_err_status_ok ||
                    sendto(r->fwd_fd[s], tx, (size_t)out, 0, (struct sockaddr *)&r->sink_addr,
                           sizeof(r->sink_addr)) != out) {
                    r->errors++;
                }
            }
        }
    }
    r->cpu_ns = floor_clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
    close(ep);
    return NULL;
}

static double exp_gap_ns(double rate)
{
    double u = (rand() + 1.0) / ((double)RAND_MAX + 2.0);
    return -log(u) / rate * 1e9;
}

/* The generator: every stream's packets at exponential spacing (the merged arrivals of
 * independent publishers), protected just before sending, plus draining the sink. */
static int generate(run_t *r)
{
    static uint8_t pkt[PKT + SRTP_MAX_TRAILER_LEN], drain[PKT + SRTP_MAX_TRAILER_LEN];
    uint16_t seq[MAX_STREAMS] = {0};
    double total = r->pps * r->n_streams;
    uint64_t start = floor_clock_ns(CLOCK_MONOTONIC), end = start + (uint64_t)(r->seconds * 1e9);
    double next = (double)start;
    while ((uint64_t)next < end) {
        next += exp_gap_ns(total);
        struct timespec ts = {.tv_sec = (time_t)(next / 1e9), .tv_nsec = (long)fmod(next, 1e9)};
        while (!r->sink_wait && recv(r->sink_fd, drain, sizeof(drain), MSG_DONTWAIT) > 0) {
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        int s = rand() % r->n_streams;
        memset(pkt, 0xab, PLAIN);
        pkt[0] = 0x80;
        pkt[1] = 96;
        pkt[2] = (uint8_t)(seq[s] >> 8);
        pkt[3] = (uint8_t)seq[s];
        uint32_t ssrc = 0x10000u + (uint32_t)s;
        pkt[8] = (uint8_t)(ssrc >> 24);
        pkt[9] = (uint8_t)(ssrc >> 16);
        pkt[10] = (uint8_t)(ssrc >> 8);
        pkt[11] = (uint8_t)ssrc;
        seq[s]++;
        int len = PLAIN;
        if (srtp_protect(r->pub[s], pkt, &len) != srtp_err_status_ok) {
            return -1;
        }
        if (sendto(r->pub_fd[s], pkt, (size_t)len, 0, (struct sockaddr *)&r->fwd_addr[s],
                   sizeof(r->fwd_addr[s])) == len) {
            r->sent++;
        }
    }
    return 0;
}

static void run_free(run_t *r)
{
    for (int i = 0; i < r->n_streams; i++) {
        if (r->pub_fd[i] >= 0) {
            close(r->pub_fd[i]);
        }
        if (r->fwd_fd[i] >= 0) {
            close(r->fwd_fd[i]);
        }
        if (r->pub[i]) {
            srtp_dealloc(r->pub[i]);
        }
        if (r->in[i]) {
            srtp_dealloc(r->in[i]);
        }
    }
    for (int f = 0; f < r->fanout; f++) {
        if (r->out[f]) {
            srtp_dealloc(r->out[f]);
        }
    }
    if (r->sink_fd >= 0) {
        close(r->sink_fd);
    }
}

/* One window; the forwarder's CPU per forwarded packet in ns, or a negative value. */
static double run_once(int n_streams, int fanout, double pps, double seconds, bool sink_wait,
                       run_t *r)
{
    memset(r, 0, sizeof(*r));
    r->sink_wait = sink_wait;
    r->n_streams = n_streams;
    r->fanout = fanout;
    r->pps = pps;
    r->seconds = seconds;
    r->sink_fd = floor_udp_bound(&r->sink_addr);
    int rc = r->sink_fd < 0 ? -1 : 0;
    for (int i = 0; i < n_streams; i++) {
        uint8_t key[30];
        RAND_bytes(key, sizeof(key));
        r->pub_fd[i] = floor_udp_bound(NULL);
        r->fwd_fd[i] = floor_udp_bound(&r->fwd_addr[i]);
        rc |= r->pub_fd[i] < 0 || r->fwd_fd[i] < 0 ? -1 : 0;
        rc |= floor_session(&r->pub[i], srtp_profile_aead_aes_128_gcm, key, false) |
              floor_session(&r->in[i], srtp_profile_aead_aes_128_gcm, key, true);
    }
    for (int f = 0; f < fanout; f++) {
        uint8_t key[30];
        RAND_bytes(key, sizeof(key));
        rc |= floor_session(&r->out[f], srtp_profile_aead_aes_128_gcm, key, false);
    }
    pthread_t th, sth;
    if (rc != 0 || pthread_create(&th, NULL, forwarder, r) != 0) {
        run_free(r);
        return -1;
    }
    pthread_setname_np(th, "epfloor-fwd");
    if (sink_wait && pthread_create(&sth, NULL, sink, r) != 0) {
        atomic_store(&r->stop, true);
        pthread_join(th, NULL);
        run_free(r);
        return -1;
    }
    rc = generate(r);
    struct timespec settle = {.tv_nsec = 20 * 1000 * 1000};
    nanosleep(&settle, NULL);
    atomic_store(&r->stop, true);
    pthread_join(th, NULL);
    if (sink_wait) {
        pthread_join(sth, NULL);
    }
    run_free(r);
    if (rc != 0 || r->received == 0 || r->errors != 0) {
        return -1;
    }
    return (double)r->cpu_ns / (double)(r->received * (uint64_t)fanout);
}

static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v <= 0) {
            return -1;
        }
        out[n++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
            return -1;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    int streams = 10, repeat = 3;
    bool sink_wait = false;
    double seconds = 2, rates[MAX_LIST] = {160}, fans[MAX_LIST] = {1, 2, 3};
    int n_rates = 1, n_fans = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--streams") == 0) {
            streams = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            repeat = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--pps") == 0) {
            n_rates = parse_list(argv[i + 1], rates, MAX_LIST);
        } else if (strcmp(argv[i], "--fanouts") == 0) {
            n_fans = parse_list(argv[i + 1], fans, MAX_LIST);
        } else if (strcmp(argv[i], "--sink-wait") == 0) {
            sink_wait = atoi(argv[i + 1]) != 0;
        }
    }
    if (streams < 1 || streams > MAX_STREAMS || repeat < 1 || repeat > MAX_REPEAT || seconds <= 0 ||
        n_rates < 1 || n_fans < 1) {
        fprintf(stderr,
                "usage: epfloor [--streams N (1..%d)] [--pps R,R,..] [--fanouts F,F,..] "
                "[--seconds S] [--repeat N (1..%d)] [--sink-wait 0|1]\n",
                MAX_STREAMS, MAX_REPEAT);
        return 2;
    }
    srtp_init();
    srand((unsigned)floor_clock_ns(CLOCK_MONOTONIC));
    printf("{\"streams\":%d,\"packet_bytes\":%d,\"profile\":\"AEAD_AES_128_GCM\",\"seconds\":%g,"
           "\"repeats\":%d,\"sink_wait\":%s,\"results\":[",
           streams, PKT, seconds, repeat, sink_wait ? "true" : "false");
    for (int ri = 0; ri < n_rates; ri++) {
        for (int fi = 0; fi < n_fans; fi++) {
            int fan = (int)fans[fi];
            if (fan < 1 || fan > MAX_FANOUT) {
                fprintf(stderr, "epfloor: fan-out must be 1..%d\n", MAX_FANOUT);
                return 2;
            }
            double v[MAX_REPEAT];
            run_t r;
            uint64_t recv_sum = 0, wake_sum = 0, sent_sum = 0;
            for (int k = 0; k < repeat; k++) {
                v[k] = run_once(streams, fan, rates[ri], seconds, sink_wait, &r);
                if (v[k] < 0) {
                    fprintf(stderr, "epfloor: run failed (sockets, libsrtp or send)\n");
                    return 1;
                }
                recv_sum += r.received;
                wake_sum += r.wakeups;
                sent_sum += r.sent;
            }
            double sorted[MAX_REPEAT];
            memcpy(sorted, v, sizeof(double) * (size_t)repeat);
            qsort(sorted, (size_t)repeat, sizeof(double), floor_cmp_double);
            double med =
                repeat % 2 ? sorted[repeat / 2] : (sorted[repeat / 2 - 1] + sorted[repeat / 2]) / 2;
            printf("%s{\"pps_per_stream\":%g,\"fanout\":%d,\"us_per_forwarded\":%.2f,"
                   "\"wakeups_per_packet\":%.3f,\"sent\":%llu,\"received\":%llu,\"runs\":[",
                   ri + fi ? "," : "", rates[ri], fan, med / 1000,
                   recv_sum ? (double)wake_sum / (double)recv_sum : 0, (unsigned long long)sent_sum,
                   (unsigned long long)recv_sum);
            for (int k = 0; k < repeat; k++) {
                printf("%s%.2f", k ? "," : "", v[k] / 1000);
            }
            printf("]}");
            fflush(stdout);
        }
    }
    printf("]}\n");
    return 0;
}
