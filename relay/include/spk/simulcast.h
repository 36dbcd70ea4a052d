/* Simulcast at the relay (VP8), I/O-free: the VP8 payload descriptor, the rewriting that makes a
 * subscriber's one video stream continuous across layer switches, and the rule that picks a
 * layer per subscriber. No I/O, no allocation, no clock of its own (the caller passes
 * milliseconds). The worker glue is relay/src/relay_simulcast.c; docs/architecture.md
 * "Simulcast" gives the design.
 *
 * A publisher sends up to SPK_SIM_MAX_LAYERS encodings of one camera (RFC 8853 simulcast, one
 * SSRC each, told apart by the rid header extension), layer 0 the lowest. A subscriber receives
 * one of them at a time under one SSRC of the relay's choosing (spk_sim_out_t): sequence
 * numbers, RTP timestamps and the VP8 picture id and TL0PICIDX are offset so that they run on
 * without a jump when the layer changes, and a change happens only at a key frame of the new
 * layer. The payload is never touched beyond the VP8 payload descriptor, which the browsers'
 * SFrame transform leaves in the clear (it is written by the RTP packetizer, outside the
 * encrypted frame), as it leaves the first bytes of the frame, whose P bit says key frame. */
#ifndef SPK_SIMULCAST_H
#define SPK_SIMULCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPK_SIM_MAX_LAYERS 3

/* ---- VP8 payload descriptor (RFC 7741 section 4.2) ---- */

typedef struct {
    bool start;    /* S bit set and partition index 0: the first packet of a frame */
    bool keyframe; /* start, and the VP8 payload header's P bit is 0 */
    bool has_picture_id;
    bool picture_id_15; /* M bit: 15-bit picture id (else 7-bit) */
    uint16_t picture_id;
    bool has_tl0;
    uint8_t tl0picidx;
    size_t picture_id_off; /* offsets inside the RTP payload, for rewriting in place */
    size_t tl0_off;
    size_t len; /* descriptor bytes */
} spk_vp8_desc_t;

/* Parses the descriptor at the start of an RTP payload. 0, or SPK_EDECODE for a truncated
 * descriptor or a first packet without a payload header byte. */
int spk_vp8_desc_parse(spk_vp8_desc_t *d, const uint8_t *payload, size_t len);

/* ---- one subscriber's stream of one simulcast publisher ---- */

/* How packets of one layer map to what the subscriber receives. */
typedef struct {
    int8_t layer;      /* -1: unused */
    uint16_t out_seq0; /* the first output sequence number of this mapping */
    uint16_t seq_off;
    uint32_t ts_off;
    uint16_t pid_off; /* modulo 2^15 (or 2^7 for 7-bit picture ids) */
    uint8_t tl0_off;
} spk_sim_map_t;

/* Mappings kept for retransmissions: a NACK may name a packet of an earlier layer. */
#define SPK_SIM_HISTORY 4

typedef struct {
    int8_t layer;  /* forwarded now; -1: none (waiting for a key frame) */
    int8_t target; /* wanted; switched to at its next key frame */
    bool started;  /* anything was forwarded: out_* hold the last values */
    bool have_pid; /* out_pid / out_tl0 hold a forwarded value */
    bool have_tl0;
    uint16_t out_seq; /* highest output sequence number so far */
    uint32_t out_ts;
    uint16_t out_pid;
    uint8_t out_tl0;
    uint64_t out_ms;                     /* when out_ts was forwarded */
    uint16_t layer_seq0;                 /* original number of the current layer's first packet */
    uint32_t switches;                   /* layer changes made (for stats) */
    spk_sim_map_t hist[SPK_SIM_HISTORY]; /* hist[0]: current */
} spk_sim_out_t;

/* Nothing forwarded yet, waiting for a key frame of `target`. */
void spk_sim_out_init(spk_sim_out_t *o, int target);

/* Forget the current layer (the subscriber comes back from the lobby or from audio only, or the
 * publisher starts over): the next key frame of the target layer starts forwarding again, with
 * the numbering continuing from where it was. */
void spk_sim_out_resync(spk_sim_out_t *o);

/* Decides for one packet of `layer` (original sequence number seq, timestamp ts, descriptor d,
 * which may be NULL for a packet without one) whether it goes to this subscriber; switches to
 * the target layer when this is the first packet of its key frame. True: forward it, rewritten
 * with spk_sim_out_rewrite(). */
bool spk_sim_out_accept(spk_sim_out_t *o, int layer, uint16_t seq, uint32_t ts,
                        const spk_vp8_desc_t *d, uint64_t now_ms);

/* Rewrites an RTP packet (len bytes, payload at payload_off, descriptor d or NULL) with map and
 * the output SSRC, in place. */
void spk_sim_rewrite(uint8_t *pkt, size_t payload_off, const spk_vp8_desc_t *d,
                     const spk_sim_map_t *map, uint32_t out_ssrc);

/* The mapping an output sequence number was forwarded under and the original number, for a
 * NACK; NULL when it is older than the history. */
const spk_sim_map_t *spk_sim_out_lookup(const spk_sim_out_t *o, uint16_t out_seq,
                                        uint16_t *orig_seq);

/* ---- layer selection per subscriber ---- */

/* Thresholds of the rule (spk_sim_rule_defaults(); spreekd config keys relay.simulcast.*). */
typedef struct {
    int loss_down;      /* fraction lost (/256) above which a window is weak: ~10 % */
    int loss_up;        /* at most this, a window is clean: ~2 % */
    uint32_t down_n;    /* weak windows in a row before going down (1 after a try up) */
    uint32_t grace_ms;  /* after a change, windows in this time do not count */
    uint32_t up_ms;     /* clean for this long (first wait) before trying a layer up */
    uint32_t up_max_ms; /* the wait doubles up to this while tries fail */
    uint32_t stable_ms; /* a try up kept this long resets the wait */
    int loss_fast;      /* a try up with more of its packets asked for again (NACKed, /256) is
                           undone at once: ~25 % */
    uint32_t fast_n;    /* ... once at least this many packets went out since the try */
} spk_sim_rule_t;

void spk_sim_rule_defaults(spk_sim_rule_t *r);
/* Losses 0..255 with loss_up <= loss_down, down_n and the waits nonzero, up_max_ms >= up_ms. */
bool spk_sim_rule_ok(const spk_sim_rule_t *r);

typedef struct {
    uint8_t want;        /* chosen layer, 0 = lowest */
    uint32_t weak_n;     /* weak windows in a row */
    uint64_t changed_at; /* ms of the last change */
    uint64_t clean_from; /* ms since which every window was clean */
    uint32_t wait_ms;    /* current wait before a try up */
    bool went_up;        /* the last change was a try up */
    uint32_t sent;       /* video packets forwarded since the last change */
    uint32_t nacked;     /* of them, the ones the subscriber asked for again */
} spk_sim_select_t;

/* Starts at layer `want` (the top for a new subscriber). */
void spk_sim_select_init(spk_sim_select_t *s, const spk_sim_rule_t *r, int want, uint64_t now_ms);

/* One loss window of the stream the subscriber receives (fraction lost 0..255, or -1: no
 * news), and top, the highest layer the publisher sends now. Returns the layer wanted now
 * (spk_sim_select_t.want, at most top). */
int spk_sim_select_report(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms, int loss,
                          int top);

/* The evidence that comes before a loss window: spk_sim_select_sent() counts one video packet
 * forwarded to the subscriber; spk_sim_select_nacks() counts `nacked` more of them that it
 * asked for again (each lost packet counted once, however often it is asked for). A try up
 * whose packets are asked for again more than loss_fast is undone at once, as a weak window
 * would undo it a second or two later: that time is a frozen picture. Returns the layer
 * wanted now. */
void spk_sim_select_sent(spk_sim_select_t *s);
int spk_sim_select_nacks(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms,
                         uint32_t nacked);

#endif
