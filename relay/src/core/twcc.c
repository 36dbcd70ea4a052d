/* Receiver-side transport-cc: pending arrivals and feedback over consecutive ranges. */
#include <string.h>

#include "core_int.h"
#include "spk/error.h"
#include "spk/twcc.h"

void spk_twcc_rx_init(spk_twcc_rx_t *r)
{
    memset(r, 0, sizeof(*r));
}

/* Index of the first pending entry with seq >= ext. */
static size_t lower_bound(const spk_twcc_rx_t *r, int64_t ext)
{
    size_t lo = 0;
    size_t hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->pending[mid].seq < ext) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void drop_front(spk_twcc_rx_t *r, size_t k)
{
    memmove(r->pending, r->pending + k, sizeof(r->pending[0]) * (r->n - k));
    r->n = (uint16_t)(r->n - k);
}

bool spk_twcc_rx_on_packet(spk_twcc_rx_t *r, uint16_t seq, int64_t arrival_us)
{
    int64_t ext = spk_seq_unwrap(&r->unwrap, seq);
    if (!r->have_base) {
        r->have_base = true;
        r->next_base = ext;
    }
    if (ext < r->next_base) {
        r->stats.late++;
        return false;
    }
    size_t at = lower_bound(r, ext);
    if (at < r->n && r->pending[at].seq == ext) {
        r->stats.duplicates++;
        return false;
    }
    if (r->n == SPK_TWCC_MAX_PENDING) {
        if (at == 0) {
            r->stats.dropped++;
            return false; /* older than everything pending in a full list */
        }
        r->next_base = r->pending[0].seq + 1;
        drop_front(r, 1);
        r->stats.dropped++;
        at--;
    }
    memmove(r->pending + at + 1, r->pending + at, sizeof(r->pending[0]) * (r->n - at));
    r->pending[at].seq = ext;
    r->pending[at].arrival_us = arrival_us;
    r->n++;
    r->stats.recorded++;
    return true;
}

int spk_twcc_rx_build(spk_twcc_rx_t *r, uint8_t *out, size_t cap, uint32_t sender_ssrc,
                      uint32_t media_ssrc)
{
    if (r->n == 0) {
        return 0;
    }
    int64_t base = r->next_base;
    if (base > r->pending[0].seq || r->pending[0].seq - base > 0x7fff) {
        base = r->pending[0].seq; /* a long outage: do not report thousands of losses */
    }
    size_t consumed = 0;
    int len = spk_core_build_twcc(out, cap, sender_ssrc, media_ssrc, r->fb_count, base, r->pending,
                                  r->n, &consumed);
    if (len < 0) {
        return len;
    }
    r->next_base = r->pending[consumed - 1].seq + 1;
    drop_front(r, consumed);
    r->fb_count++;
    r->stats.feedbacks++;
    return len;
}

size_t spk_twcc_rx_pending(const spk_twcc_rx_t *r)
{
    return r->n;
}

void spk_twcc_rx_get_stats(const spk_twcc_rx_t *r, spk_twcc_stats_t *out)
{
    *out = r->stats;
}
