/* capgen: the capacity mode of the load generator, cheap per packet so that the forwarder under
 * test, not the generator, is what saturates.
 *
 * Before each step every stream's packets for the whole step are built and SRTP-protected
 * ahead (increasing sequence numbers and timestamps, continuing the stream's SRTP index); during
 * the step a timer tick sends whatever is due per stream with one sendmmsg() per stream, and the
 * subscribers' sockets are drained with recvmmsg() and accounted from the RTP header alone (SSRC
 * and sequence number, mapped back through the offset the forwarder applies), without
 * unprotecting: loss per (subscriber, publisher) from a bitmap of the step's packets, one-way
 * delay from the send time of each (stream, packet) on the same host clock (CLOCK_MONOTONIC) into
 * a histogram (1 µs buckets to 65 ms, then 1 ms). One packet in CAPGEN_SAMPLE is unprotected
 * with the subscriber's session and checked, so the forwarder is seen to forward valid SRTP of
 * the right content.
 *
 * Threads: with threads = 1 one thread ticks, sends and receives; with 2 a receiver thread
 * drains the sockets while the caller's thread sends. The SRTP sessions given are used only by
 * capgen while a step runs (protect ahead on the caller's thread, sample unprotect on the
 * receiving thread). */
#ifndef SPK_CAPGEN_H
#define SPK_CAPGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

#define CAPGEN_MAX_SRC 8     /* publishers one subscriber receives */
#define CAPGEN_SAMPLE 256    /* one packet in this many is unprotected and checked */
#define CAPGEN_HIST_US 65536 /* 1 µs buckets below this */
#define CAPGEN_HIST_MS 4096  /* then 1 ms buckets */
#define CAPGEN_LOSS_PCT 0.1  /* the capacity criterion: loss below this */

/* Plaintext RTP of stream s with extended sequence number seq into pkt (capacity cap); returns
 * the length, 0 on failure. */
typedef size_t (*capgen_build_fn)(void *user, int s, uint64_t seq, uint8_t *pkt, size_t cap);
/* A sampled packet of stream s, sequence seq, unprotected: true when its content is right. */
typedef bool (*capgen_check_fn)(void *user, int s, uint64_t seq, const uint8_t *pkt, size_t len);
/* Called from the sending thread about every 20 ms during a step (signaling, RTCP). */
typedef void (*capgen_idle_fn)(void *user);
/* Called from the sending thread when the sending period starts (0) and ends (1), and by
 * capgen_ramp once the step has drained (2). */
typedef void (*capgen_mark_fn)(void *user, int which);

/* What the forwarder under test spent in a step, between the marks. */
typedef struct {
    double cpu_send_s; /* its forwarding threads' CPU over the sending period */
    double cpu_all_s;  /* ... until drained */
    double wait_s;     /* their run-queue wait over the sending period */
    int threads;       /* forwarding threads */
    double proc_cpu_send_s, proc_cpu_all_s; /* the whole forwarder process */
} capgen_fwd_t;
typedef void (*capgen_fwd_fn)(void *user, capgen_fwd_t *out);

typedef struct {
    int fd; /* connected or not: packets go to `to` */
    struct sockaddr_storage to;
    socklen_t to_len;
    void *srtp; /* srtp_t protecting this stream */
    uint32_t ssrc;
    uint64_t seq; /* next extended sequence number; advanced by each step */
} capgen_stream_t;

typedef struct {
    int fd;
    void *srtp_in; /* srtp_t unprotecting what this subscriber receives (samples) */
    int n_src;
    int src_stream[CAPGEN_MAX_SRC];    /* stream index */
    uint32_t src_ssrc[CAPGEN_MAX_SRC]; /* SSRC as received */
    uint16_t seq_off[CAPGEN_MAX_SRC];  /* received sequence number - sent */
} capgen_sub_t;

typedef struct {
    double pps;             /* per stream, target */
    double seconds;         /* sending period as run */
    double planned_seconds; /* as asked (shortened to fit the memory cap) */
    uint64_t sent, expected, received, dups, stray, other;
    double loss_pct, forwarded_pps, sent_pps;
    double lat_p50_us, lat_p99_us, lat_p999_us, lat_max_us, lat_mean_us;
    uint64_t samples, samples_bad;
    uint64_t send_errors;            /* packets the kernel refused */
    double gen_cpu_s;                /* this process, over the sending period and the drain */
    double send_cpu_s, recv_cpu_s;   /* the two threads' CPU (recv 0 with threads 1) */
    double send_wait_s, recv_wait_s; /* and their run-queue wait */
    uint64_t behind_max;             /* packets due but not yet sent at a tick, the most seen */
    uint64_t ticks;
} capgen_result_t;

typedef struct {
    int n_streams, n_subs;
    capgen_stream_t *streams;
    capgen_sub_t *subs;
    int *extra_fds; /* drained and discarded (RTCP to the publishers' sockets) */
    int n_extra;
    size_t size;      /* plaintext RTP bytes */
    int threads;      /* 1 or 2 */
    unsigned tick_us; /* send tick (200) */
    size_t mem_cap;   /* bytes of pre-protected packets per step at most */
    double drain_s;   /* after the sending period, receive until this passes without a
                       * packet (0.3), 10 times this at most */
    capgen_build_fn build;
    capgen_check_fn check;
    capgen_idle_fn idle;
    capgen_mark_fn mark;
    capgen_fwd_fn fwd; /* for capgen_ramp */
    int fwd_pid;       /* the forwarder's process, for its UDP receive drops */
    void *user;
} capgen_cfg_t;

typedef struct capgen capgen_t;

int capgen_new(const capgen_cfg_t *cfg, capgen_t **out);
void capgen_free(capgen_t *g);
/* Builds and protects the packets of one step of `seconds` at pps per stream (fewer seconds
 * if they would not fit in mem_cap). 0 or -1. */
int capgen_prepare(capgen_t *g, double pps, double seconds);
/* Runs the prepared step (sending period, then the drain) and fills r. */
int capgen_run(capgen_t *g, capgen_result_t *r);
/* One step per rate (seconds each) until two in a row lose CAPGEN_LOSS_PCT or more or cannot
 * send at the rate; adds "steps" (the figures of each and who saturated), "max_forwarded_pps",
 * "at_pps_per_publisher" and "saturated" to out. Returns the number of steps in which no sample
 * was checked or one failed, -1 when a step could not be prepared. */
int capgen_ramp(capgen_t *g, const double *rates, int n, double seconds, json_t *out);

#endif
