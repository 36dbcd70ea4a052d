/* NACK generation on the receiving side (RFC 4585 generic NACK): tracks sequence numbers missing
 * from a publisher's stream and says which to request, when. No I/O, no allocation: the state
 * is a fixed struct embedded in the receive stream.
 *
 * Use: spk_nack_gen_on_packet() for every RTP packet received on the stream (including
 * retransmissions after spk_rtx_unwrap); every few milliseconds spk_nack_gen_collect() and, if
 * it returned any, spk_rtcp_build_nack() with them. When spk_nack_gen_keyframe_needed() says so,
 * send a PLI instead: the loss cannot be repaired by retransmission. */
#ifndef SPK_NACK_H
#define SPK_NACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/rtp.h"

#define SPK_NACK_MAX_MISSING 256

typedef struct {
    int64_t seq;
    uint64_t last_sent_ms;
    uint8_t tries;
} spk_nack_entry_t;

typedef struct {
    uint64_t requested; /* sequence numbers put in NACKs (each try counts) */
    uint64_t recovered; /* missing packets that arrived later */
    uint64_t given_up;  /* missing packets dropped after max_tries or max_age */
    uint64_t keyframes; /* times keyframe_needed was raised */
} spk_nack_stats_t;

/* Plain struct to embed; treat the fields as private. */
typedef struct {
    spk_seq_unwrap_t unwrap;
    bool started;
    bool keyframe;
    uint8_t max_tries;
    uint32_t retry_ms;
    uint32_t max_age;
    uint16_t n;
    spk_nack_entry_t missing[SPK_NACK_MAX_MISSING]; /* sorted by seq */
    spk_nack_stats_t stats;
} spk_nack_gen_t;

/* max_tries: requests per missing packet (e.g. 10); retry_ms: interval between requests for
 * the same packet (about one RTT, e.g. 50); max_age: packets older than highest - max_age are
 * no longer requested (e.g. 1000; at most SPK_NACK_MAX_MISSING are tracked). */
void spk_nack_gen_init(spk_nack_gen_t *g, uint8_t max_tries, uint32_t retry_ms, uint32_t max_age);

/* Accounts a received packet. Returns true when it filled a gap (a retransmission or a
 * reordered packet). A forward jump larger than SPK_NACK_MAX_MISSING is not tracked: it sets
 * keyframe_needed. */
bool spk_nack_gen_on_packet(spk_nack_gen_t *g, uint16_t seq, uint64_t now_ms);

/* Writes up to cap sequence numbers due for a NACK now (in increasing order, ready for
 * spk_rtcp_build_nack) and records the attempt; drops entries that ran out of tries or age
 * (which sets keyframe_needed). Returns the number written. */
size_t spk_nack_gen_collect(spk_nack_gen_t *g, uint64_t now_ms, uint16_t *out, size_t cap);

/* True once after losses that retransmission cannot repair; clears the flag. */
bool spk_nack_gen_keyframe_needed(spk_nack_gen_t *g);

/* Packets currently tracked as missing. */
size_t spk_nack_gen_missing(const spk_nack_gen_t *g);
void spk_nack_gen_get_stats(const spk_nack_gen_t *g, spk_nack_stats_t *out);

#endif
