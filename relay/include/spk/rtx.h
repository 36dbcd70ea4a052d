/* Retransmission store and RTX (RFC 4588) packet helpers. No I/O.
 *
 * One store per published stream (per publisher SSRC), owned by the worker thread that owns
 * the consult; subscribers never copy packets: they keep their own seq/ts/ssrc offsets and look
 * the publisher's packet up by the publisher's sequence number when a NACK arrives, then copy
 * it once into their scratch buffer to rewrite and SRTP-protect it (which they must do anyway,
 * since protection differs per subscriber). No locks and no refcounts: everything happens on
 * the one worker thread.
 *
 * Layout: a byte ring (the arena) holds packets back to back; an index of `slots` entries
 * (a power of two) maps seq & (slots - 1) to an arena position. A packet stays retrievable
 * until either its index slot is reused (`slots` newer sequence numbers arrived) or the arena
 * wrapped over its bytes. Memory is set at init: arena_bytes + slots * 32 bytes; nothing is
 * allocated afterwards unless the owner resizes the store (spk_rtx_store_resize: the relay sizes
 * it from the stream's measured rate and a time window).
 *
 * Zero-copy insertion: spk_rtx_reserve() returns max_packet writable bytes at the arena head;
 * the worker copies the SRTP packet from the socket there, unprotects it in place (libsrtp
 * works in place), parses it, forwards it and finally spk_rtx_commit()s it under its sequence
 * number, which just records the position. spk_rtx_put() is the copying variant. */
#ifndef SPK_RTX_H
#define SPK_RTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/rtp.h"

/* Suggested sizes: video 512 slots / 512 KiB (about 1.6 s at 2.5 Mbit/s; the largest the relay
 * grows a video store to), audio 64 slots / 16 KiB. */
#define SPK_RTX_VIDEO_SLOTS 512
#define SPK_RTX_VIDEO_ARENA (512u * 1024u)
#define SPK_RTX_AUDIO_SLOTS 64
#define SPK_RTX_AUDIO_ARENA (16u * 1024u)
#define SPK_RTX_MAX_PACKET 1500

typedef struct {
    uint64_t stored;    /* packets committed */
    uint64_t rejected;  /* commits refused: duplicate, too old or too long */
    uint64_t hits;      /* lookups answered */
    uint64_t misses;    /* lookups for packets never stored or already overwritten */
    uint64_t throttled; /* lookups refused by min_interval_ms */
    uint64_t bytes_resent;
} spk_rtx_stats_t;

typedef struct {
    int64_t seq;  /* unwrapped; INT64_MIN when empty */
    uint64_t pos; /* absolute arena position (monotonic) */
    uint64_t last_sent_ms;
    uint16_t len;
    uint16_t resends;
} spk_rtx_slot_t;

/* Plain struct so it can be embedded in the stream that owns it; treat the fields as
 * private. */
typedef struct {
    uint8_t *arena;
    size_t arena_size;
    size_t max_packet;
    spk_rtx_slot_t *slots;
    uint32_t mask;
    uint64_t head; /* absolute arena position of the next write */
    uint64_t reserved_at;
    bool reserved;
    spk_seq_unwrap_t unwrap;
    spk_rtx_stats_t stats;
} spk_rtx_store_t;

/* slots: power of two in 16..32768; arena_bytes >= 2 * max_packet; max_packet 64..65535.
 * Returns 0, SPK_EINVAL or SPK_ENOMEM. */
int spk_rtx_store_init(spk_rtx_store_t *s, uint32_t slots, size_t arena_bytes, size_t max_packet);
/* Forgets every stored packet (a stream that starts over: its sequence numbers may jump
 * anywhere); memory stays allocated, statistics are kept. */
void spk_rtx_store_clear(spk_rtx_store_t *s);
/* Moves the store to new sizes (the limits of spk_rtx_store_init), keeping the newest packets
 * that fit both (with their resend state); a pending reservation is dropped. Returns 0,
 * SPK_EINVAL or SPK_ENOMEM (the store is unchanged). */
int spk_rtx_store_resize(spk_rtx_store_t *s, uint32_t slots, size_t arena_bytes);
/* The sizes of a store that holds window_ms of a stream arriving at bytes_per_s in pkts_per_s
 * packets: an arena of the window's bytes plus room for one more packet, rounded up to 4 KiB,
 * within [min_arena, max_arena]; the next power of two of twice the window's packets as slots,
 * within [min_slots, max_slots] (both powers of two). */
void spk_rtx_size_for(uint64_t bytes_per_s, uint64_t pkts_per_s, uint32_t window_ms,
                      size_t max_packet, size_t min_arena, size_t max_arena, uint32_t min_slots,
                      uint32_t max_slots, uint32_t *slots, size_t *arena);
/* Frees the memory; s may be zeroed or already destroyed. */
void spk_rtx_store_destroy(spk_rtx_store_t *s);
/* Bytes allocated by the store. */
size_t spk_rtx_store_memory(const spk_rtx_store_t *s);

/* max_packet writable bytes at the arena head. A second reserve without commit returns the
 * same buffer. Pointers returned earlier by spk_rtx_get may be invalidated. */
uint8_t *spk_rtx_reserve(spk_rtx_store_t *s);
/* Stores the reserved bytes [0, len) as packet `seq` (the publisher's RTP sequence number).
 * Returns 0, SPK_ESTATE (nothing reserved), SPK_EINVAL (len 0 or > max_packet), SPK_EEXIST
 * (seq already stored) or SPK_ERANGE (older than the window). On error the reservation is
 * dropped and the store is unchanged. */
int spk_rtx_commit(spk_rtx_store_t *s, uint16_t seq, size_t len);
/* Copying variant: reserve + memcpy + commit. */
int spk_rtx_put(spk_rtx_store_t *s, uint16_t seq, const uint8_t *pkt, size_t len);

/* Looks a packet up for a retransmission. When min_interval_ms > 0 and the packet was handed
 * out less than that long ago (by now_ms, the caller's monotonic clock), it is refused with
 * SPK_ERATE (several subscribers NACKing the same loss within one RTT need only one answer
 * each, and a NACK storm no more). Returns 0 with *pkt and *len (valid until the next reserve or
 * put), SPK_ENOTFOUND or SPK_ERATE. */
int spk_rtx_get(spk_rtx_store_t *s, uint16_t seq, uint64_t now_ms, uint32_t min_interval_ms,
                const uint8_t **pkt, size_t *len);
bool spk_rtx_contains(const spk_rtx_store_t *s, uint16_t seq);
/* Highest stored seq (unwrapped); false when empty. */
bool spk_rtx_highest(const spk_rtx_store_t *s, int64_t *seq);
void spk_rtx_get_stats(const spk_rtx_store_t *s, spk_rtx_stats_t *out);

/* RFC 4588: builds the RTX packet for an original packet: header (CSRCs and header extension
 * kept, padding dropped) with rtx_pt, rtx_ssrc, rtx_seq, then the original sequence number
 * (OSN), then the original payload. out needs len + 2 bytes. Returns the length, SPK_ETOOBIG or
 * the spk_rtp_parse error. */
int spk_rtx_wrap(uint8_t *out, size_t cap, const uint8_t *pkt, size_t len, uint8_t rtx_pt,
                 uint32_t rtx_ssrc, uint16_t rtx_seq);
/* Turns an RTX packet back into the original in place: reads the OSN, moves the payload over
 * it, sets orig_pt, orig_ssrc and seq = OSN and clears the padding bit. Returns the new length,
 * SPK_ETRUNC for an RTX packet without OSN (a padding-only bandwidth probe: drop it) or the
 * spk_rtp_parse error. */
int spk_rtx_unwrap(uint8_t *pkt, size_t len, uint8_t orig_pt, uint32_t orig_ssrc);

#endif
