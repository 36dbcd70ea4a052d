/* srtpfloor: the floor of the relay's packet path, measured on this machine: for a 1200-byte
 * SRTP packet, libsrtp unprotect (the publisher's keys) + protect (the subscriber's keys) + one
 * UDP sendto on loopback, in a tight loop, for AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80.
 * The packets are protected beforehand by a third session (the publisher) and the receiving
 * socket is drained between batches; neither is timed. Prints the median of --repeat runs of
 * --packets packets per profile as one JSON line:
 *   {"gcm":{"unprotect_ns":..,"protect_ns":..,"send_ns":..,"floor_ns":..},"cm_hmac":{..}} */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include "floor_util.h"

#define PKT 1200
#define BATCH 128
#define MAX_REPEAT 15

typedef struct {
    double unprotect_ns, protect_ns, send_ns, floor_ns;
} floor_t;

/* One run of n packets; 0 or -1. */
static int run(srtp_profile_t prof, int n, int tx, int rx, const struct sockaddr_in *to,
               floor_t *out)
{
    uint8_t k1[30], k2[30];
    RAND_bytes(k1, sizeof(k1));
    RAND_bytes(k2, sizeof(k2));
    srtp_t pub = NULL, in = NULL, outs = NULL;
    if (floor_session(&pub, prof, k1, false) || floor_session(&in, prof, k1, true) ||
        floor_session(&outs, prof, k2, false)) {
        return -1;
    }
    static uint8_t pkts[BATCH][PKT + SRTP_MAX_TRAILER_LEN];
    static uint8_t buf[PKT + SRTP_MAX_TRAILER_LEN];
    int lens[BATCH];
    uint64_t t_un = 0, t_pr = 0, t_tx = 0;
    uint16_t seq = 0;
    int rc = 0;
    int plain = PKT - (prof == srtp_profile_aead_aes_128_gcm ? 16 : 10);
    for (int done = 0; done < n && rc == 0; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            memset(pkts[i], 0xab, PKT);
            pkts[i][0] = 0x80;
            pkts[i][1] = 96;
            pkts[i][2] = (uint8_t)(seq >> 8);
            pkts[i][3] = (uint8_t)seq;
            memset(pkts[i] + 8, 0x11, 4);
            seq++;
            lens[i] = plain; /* 1200 bytes on the wire with the tag */
            if (srtp_protect(pub, pkts[i], &lens[i]) != srtp_err_status_ok) {
                rc = -1;
            }
        }
        /* Stage by stage over the batch, so that the clock is read three times per batch. */
        static uint8_t work[BATCH][PKT + SRTP_MAX_TRAILER_LEN];
        int wl[BATCH];
        uint64_t a = floor_clock_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < BATCH; i++) {
            memcpy(work[i], pkts[i], (size_t)lens[i]);
            wl[i] = lens[i];
            rc |= srtp_unprotect(in, work[i], &wl[i]) == srtp_err_status_ok ? 0 : -1;
        }
        uint64_t b = floor_clock_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < BATCH; i++) {
            rc |= srtp_protect(outs, work[i], &wl[i]) == srtp_err_status_ok ? 0 : -1;
        }
        uint64_t c = floor_clock_ns(CLOCK_MONOTONIC);
        for (int i = 0; i < BATCH; i++) {
            ssize_t r =
                sendto(tx, work[i], (size_t)wl[i], 0, (const struct sockaddr *)to, sizeof(*to));
            rc |= r == wl[i] ? 0 : -1;
        }
        uint64_t d = floor_clock_ns(CLOCK_MONOTONIC);
        t_un += b - a;
        t_pr += c - b;
        t_tx += d - c;
        while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
        }
    }
    srtp_dealloc(pub);
    srtp_dealloc(in);
    srtp_dealloc(outs);
    out->unprotect_ns = (double)t_un / n;
    out->protect_ns = (double)t_pr / n;
    out->send_ns = (double)t_tx / n;
    out->floor_ns = out->unprotect_ns + out->protect_ns + out->send_ns;
    return rc;
}

static double med(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), floor_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int measure(srtp_profile_t prof, int n, int repeat, int tx, int rx,
                   const struct sockaddr_in *to, floor_t *m)
{
    double u[MAX_REPEAT], p[MAX_REPEAT], s[MAX_REPEAT], f[MAX_REPEAT];
    floor_t warm;
    if (run(prof, n / 4 + BATCH, tx, rx, to, &warm) != 0) {
        return -1;
    }
    for (int r = 0; r < repeat; r++) {
        floor_t x;
        if (run(prof, n, tx, rx, to, &x) != 0) {
            return -1;
        }
        u[r] = x.unprotect_ns;
        p[r] = x.protect_ns;
        s[r] = x.send_ns;
        f[r] = x.floor_ns;
    }
    m->unprotect_ns = med(u, repeat);
    m->protect_ns = med(p, repeat);
    m->send_ns = med(s, repeat);
    m->floor_ns = med(f, repeat);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 200000, repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--packets") == 0) {
            n = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--repeat") == 0) {
            repeat = atoi(argv[i + 1]);
        }
    }
    if (n < BATCH || repeat < 1 || repeat > MAX_REPEAT) {
        fprintf(stderr, "usage: srtpfloor [--packets N] [--repeat R (1..%d)]\n", MAX_REPEAT);
        return 2;
    }
    srtp_init();
    int tx = socket(AF_INET, SOCK_DGRAM, 0), rx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(to);
    int big = 4 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (tx < 0 || rx < 0 || bind(rx, (struct sockaddr *)&to, sizeof(to)) != 0 ||
        getsockname(rx, (struct sockaddr *)&to, &alen) != 0) {
        perror("srtpfloor: socket");
        return 1;
    }
    floor_t gcm, cm;
    if (measure(srtp_profile_aead_aes_128_gcm, n, repeat, tx, rx, &to, &gcm) != 0 ||
        measure(srtp_profile_aes128_cm_sha1_80, n, repeat, tx, rx, &to, &cm) != 0) {
        fprintf(stderr, "srtpfloor: libsrtp or send failed\n");
        return 1;
    }
    printf("{\"packet_bytes\":%d,\"packets\":%d,\"repeats\":%d,"
           "\"gcm\":{\"unprotect_ns\":%.0f,\"protect_ns\":%.0f,\"send_ns\":%.0f,\"floor_ns\":%.0f},"
           "\"cm_hmac\":{\"unprotect_ns\":%.0f,\"protect_ns\":%.0f,\"send_ns\":%.0f,"
           "\"floor_ns\":%.0f}}\n",
           PKT, n, repeat, gcm.unprotect_ns, gcm.protect_ns, gcm.send_ns, gcm.floor_ns,
           cm.unprotect_ns, cm.protect_ns, cm.send_ns, cm.floor_ns);
    close(tx);
    close(rx);
    return 0;
}
