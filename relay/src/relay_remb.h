/* The REMB rule: the bitrate the relay announces to a publisher. No I/O, no allocation.
 *
 * Once per reporting interval (about 1 s) the relay feeds the worst RTCP "fraction lost"
 * (RFC 3550: lost / expected * 256) seen for the publisher's streams in that interval: the
 * relay's own receiver report on what arrives from the publisher and every subscriber's
 * receiver report on what the relay forwarded. Then:
 *
 *   loss > 10 % (fraction > 25):  bps = bps * (1 - loss / 2), not below min_bps;
 *   loss <  2 % (fraction < 5):   bps = bps * 1.08 + 1 kbit/s, not above target_bps;
 *   otherwise, or no report:      bps unchanged.
 *
 * It starts at target_bps. This is libwebrtc's loss-based rule applied at the relay, so one
 * lossy subscriber slows the publisher for everyone (in a two-party consult, the right thing). */
#ifndef SPK_RELAY_REMB_H
#define SPK_RELAY_REMB_H

#include <stdint.h>

#define SPK_REMB_MIN_BPS 150000u
#define SPK_REMB_LOSS_HIGH 25 /* fraction lost above which the bitrate goes down (~10 %) */
#define SPK_REMB_LOSS_LOW 5   /* fraction lost below which it goes up (~2 %) */

typedef struct {
    uint64_t target_bps;
    uint64_t min_bps;
    uint64_t bps;
} spk_remb_rule_t;

/* Starts at target_bps; min_bps = min(SPK_REMB_MIN_BPS, target_bps). */
void spk_remb_rule_init(spk_remb_rule_t *r, uint64_t target_bps);

/* One interval: fraction_lost 0..255, or negative when no report arrived. Returns the new
 * bitrate. */
uint64_t spk_remb_rule_update(spk_remb_rule_t *r, int fraction_lost);

#endif
