/* Helpers shared by the floor tools (srtpfloor, epfloor): header only, as the tools link
 * nothing but libsrtp and OpenSSL. */
#ifndef SPK_FLOOR_UTIL_H
#define SPK_FLOOR_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <srtp2/srtp.h>

static inline uint64_t floor_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An SRTP session keyed with key for any SSRC: inbound (unprotect) or outbound (protect). */
static inline int floor_session(srtp_t *s, srtp_profile_t prof, const uint8_t *key, bool in)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof(pol));
    srtp_crypto_policy_set_from_profile_for_rtp(&pol.rtp, prof);
    srtp_crypto_policy_set_from_profile_for_rtcp(&pol.rtcp, prof);
    pol.key = (uint8_t *)key;
    pol.ssrc.type = in ? ssrc_any_inbound : ssrc_any_outbound;
    pol.window_size = 1024;
    return srtp_create(s, &pol) == srtp_err_status_ok ? 0 : -1;
}

/* A non-blocking UDP socket bound to a free port on 127.0.0.1 with a 4 MiB receive buffer
 * (SO_RCVBUFFORCE where allowed, else SO_RCVBUF up to net.core.rmem_max); its address in *addr
 * (may be NULL). -1 on failure. */
static inline int floor_udp_bound(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int big = 4 << 20;
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    if (addr) {
        *addr = a;
    }
    return fd;
}

static inline int floor_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
