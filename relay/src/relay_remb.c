/* The REMB rule; see relay_remb.h. */
#include "relay_remb.h"

void spk_remb_rule_init(spk_remb_rule_t *r, uint64_t target_bps)
{
    r->target_bps = target_bps;
    r->min_bps = target_bps < SPK_REMB_MIN_BPS ? target_bps : SPK_REMB_MIN_BPS;
    r->bps = target_bps;
}

uint64_t spk_remb_rule_update(spk_remb_rule_t *r, int fraction_lost)
{
    if (fraction_lost < 0) {
        return r->bps;
    }
    if (fraction_lost > 255) {
        fraction_lost = 255;
    }
    uint64_t f = (uint64_t)fraction_lost;
    if (f > SPK_REMB_LOSS_HIGH) {
        /* bps * (1 - (f / 256) / 2) */
        uint64_t next = r->bps / 512 * (512 - f) + r->bps % 512 * (512 - f) / 512;
        r->bps = next < r->min_bps ? r->min_bps : next;
    } else if (f < SPK_REMB_LOSS_LOW) {
        uint64_t next = r->bps + r->bps / 100 * 8 + 1000;
        r->bps = next > r->target_bps || next < r->bps ? r->target_bps : next;
    }
    return r->bps;
}
