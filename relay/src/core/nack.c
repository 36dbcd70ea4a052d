/* Receiver-side NACK generation: a sorted, bounded list of missing sequence numbers. */
#include <string.h>

#include "spk/nack.h"

void spk_nack_gen_init(spk_nack_gen_t *g, uint8_t max_tries, uint32_t retry_ms, uint32_t max_age)
{
    memset(g, 0, sizeof(*g));
    g->max_tries = max_tries == 0 ? 1 : max_tries;
    g->retry_ms = retry_ms;
    g->max_age = max_age == 0 ? 1 : max_age;
}

static void drop_front(spk_nack_gen_t *g, size_t k)
{
    if (k == 0) {
        return;
    }
    memmove(g->missing, g->missing + k, sizeof(g->missing[0]) * (g->n - k));
    g->n = (uint16_t)(g->n - k);
}

static void give_up(spk_nack_gen_t *g, size_t count)
{
    if (count > 0) {
        g->stats.given_up += count;
        if (!g->keyframe) {
            g->keyframe = true;
            g->stats.keyframes++;
        }
    }
}

/* Drops entries older than the age window. */
static void expire(spk_nack_gen_t *g)
{
    int64_t oldest = g->unwrap.highest - (int64_t)g->max_age;
    size_t k = 0;
    while (k < g->n && g->missing[k].seq < oldest) {
        k++;
    }
    give_up(g, k);
    drop_front(g, k);
}

static void add_missing(spk_nack_gen_t *g, int64_t from, int64_t to)
{
    for (int64_t s = from; s < to; s++) {
        if (g->n == SPK_NACK_MAX_MISSING) {
            give_up(g, 1);
            drop_front(g, 1);
        }
        spk_nack_entry_t *e = &g->missing[g->n++];
        e->seq = s;
        e->last_sent_ms = 0;
        e->tries = 0;
    }
}

static bool remove_seq(spk_nack_gen_t *g, int64_t seq)
{
    size_t lo = 0;
    size_t hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->missing[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo >= g->n || g->missing[lo].seq != seq) {
        return false;
    }
    memmove(g->missing + lo, g->missing + lo + 1, sizeof(g->missing[0]) * (g->n - lo - 1));
    g->n--;
    return true;
}

bool spk_nack_gen_on_packet(spk_nack_gen_t *g, uint16_t seq, uint64_t now_ms)
{
    (void)now_ms;
    if (!g->started) {
        g->started = true;
        (void)spk_seq_unwrap(&g->unwrap, seq);
        return false;
    }
    int64_t prev = g->unwrap.highest;
    int64_t ext = spk_seq_unwrap(&g->unwrap, seq);
    if (ext > prev) {
        int64_t gap = ext - prev - 1;
        if (gap > SPK_NACK_MAX_MISSING) {
            give_up(g, g->n + (size_t)gap);
            g->n = 0;
        } else {
            add_missing(g, prev + 1, ext);
        }
        expire(g);
        return false;
    }
    if (remove_seq(g, ext)) {
        g->stats.recovered++;
        return true;
    }
    return false;
}

size_t spk_nack_gen_collect(spk_nack_gen_t *g, uint64_t now_ms, uint16_t *out, size_t cap)
{
    size_t w = 0;
    size_t keep = 0;
    size_t dropped = 0;
    for (size_t i = 0; i < g->n; i++) {
        spk_nack_entry_t e = g->missing[i];
        bool due = e.tries == 0 || now_ms - e.last_sent_ms >= g->retry_ms;
        if (due && e.tries >= g->max_tries) {
            dropped++;
            continue;
        }
        if (due && w < cap) {
            out[w++] = (uint16_t)e.seq;
            e.tries++;
            e.last_sent_ms = now_ms;
            g->stats.requested++;
        }
        g->missing[keep++] = e;
    }
    g->n = (uint16_t)keep;
    give_up(g, dropped);
    return w;
}

bool spk_nack_gen_keyframe_needed(spk_nack_gen_t *g)
{
    bool k = g->keyframe;
    g->keyframe = false;
    return k;
}

size_t spk_nack_gen_missing(const spk_nack_gen_t *g)
{
    return g->n;
}

void spk_nack_gen_get_stats(const spk_nack_gen_t *g, spk_nack_stats_t *out)
{
    *out = g->stats;
}
