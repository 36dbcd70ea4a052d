/* Transport-wide congestion control feedback on the receiving side
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01): records the transport-wide sequence
 * number and arrival time of each packet from a publisher and builds the RTPFB fmt 15 feedback
 * that the browser's send-side bandwidth estimator needs to ramp up. No I/O, no allocation.
 *
 * Use: spk_twcc_rx_on_packet() with the value of the transport-cc header extension of every
 * received packet (spk_rtp_ext_find + spk_rtp_ext_read_u16) and the arrival time; every 50 to
 * 100 ms (and whenever spk_twcc_rx_pending() gets large) spk_twcc_rx_build() until it returns
 * 0, and send what it built. Consecutive feedbacks cover consecutive sequence ranges, so packets
 * lost in between are reported as lost. */
#ifndef SPK_TWCC_H
#define SPK_TWCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/rtp.h"

#define SPK_TWCC_MAX_PENDING 1024

typedef struct {
    uint64_t recorded;   /* packets recorded */
    uint64_t duplicates; /* same sequence number twice */
    uint64_t late;       /* arrived after a feedback already reported them lost */
    uint64_t dropped;    /* pending list full: oldest dropped unreported */
    uint64_t feedbacks;  /* feedback packets built */
} spk_twcc_stats_t;

/* Plain struct to embed (about 16 KiB); treat the fields as private. */
typedef struct {
    spk_seq_unwrap_t unwrap;
    bool have_base;
    int64_t next_base; /* first sequence number no feedback has covered yet */
    uint8_t fb_count;
    uint16_t n;
    spk_twcc_recv_t pending[SPK_TWCC_MAX_PENDING]; /* sorted by seq, unique */
    spk_twcc_stats_t stats;
} spk_twcc_rx_t;

void spk_twcc_rx_init(spk_twcc_rx_t *r);

/* Records one received packet. Returns false (and records nothing) for a duplicate or a packet
 * older than what a feedback already covered. arrival_us: the receiver's monotonic clock. */
bool spk_twcc_rx_on_packet(spk_twcc_rx_t *r, uint16_t seq, int64_t arrival_us);

/* Builds one feedback packet from the pending arrivals, starting at the first sequence number
 * not yet covered, and removes what went in. media_ssrc: an SSRC the publisher sends (libwebrtc
 * puts its first media SSRC there). Returns the bytes written, 0 when nothing is pending, or
 * SPK_ETOOBIG when cap cannot hold even one packet's status (use >= 64 bytes; 1200 is
 * plenty). Call again while it returns > 0 and packets remain pending. */
int spk_twcc_rx_build(spk_twcc_rx_t *r, uint8_t *out, size_t cap, uint32_t sender_ssrc,
                      uint32_t media_ssrc);

size_t spk_twcc_rx_pending(const spk_twcc_rx_t *r);
void spk_twcc_rx_get_stats(const spk_twcc_rx_t *r, spk_twcc_stats_t *out);

#endif
