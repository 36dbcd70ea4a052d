/* Helpers shared by the floor tools (srtpfloor, epfloor): header only, as the tools link
 * nothing but libsrtp and OpenSSL. */
#ifndef SPK_FLOOR_UTIL_H
#define SPK_FLOOR_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

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

static inline int floor_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
