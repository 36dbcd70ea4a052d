/* Private helpers of the relay protocol cores: big-endian access and error reasons. */
#ifndef SPK_RELAY_CORE_INT_H
#define SPK_RELAY_CORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spk/rtp.h"

static inline uint16_t spk_rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t spk_rd24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t spk_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void spk_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void spk_wr24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static inline void spk_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes a reason into why (may be NULL) and returns err. */
int spk_core_fail(char *why, size_t why_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Transport-cc feedback covering statuses from base (<= pkts[0].seq) on; see
 * spk_rtcp_build_twcc, which is this with base = pkts[0].seq. */
int spk_core_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        uint8_t fb_count, int64_t base, const spk_twcc_recv_t *pkts, size_t n,
                        size_t *consumed);

#endif
