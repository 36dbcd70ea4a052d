/* Retransmission store (byte ring + seq index) and RFC 4588 RTX wrapping. */
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "spk/error.h"
#include "spk/rtx.h"

static bool rtx_sizes_ok(uint32_t slots, size_t arena_bytes, size_t max_packet)
{
    return slots >= 16 && slots <= 32768 && (slots & (slots - 1)) == 0 && max_packet >= 64 &&
           max_packet <= 65535 && arena_bytes >= 2 * max_packet && arena_bytes <= ((size_t)1 << 30);
}

int spk_rtx_store_init(spk_rtx_store_t *s, uint32_t slots, size_t arena_bytes, size_t max_packet)
{
    memset(s, 0, sizeof(*s));
    if (!rtx_sizes_ok(slots, arena_bytes, max_packet)) {
        return SPK_EINVAL;
    }
    s->arena = malloc(arena_bytes);
    s->slots = malloc(sizeof(spk_rtx_slot_t) * slots);
    if (s->arena == NULL || s->slots == NULL) {
        free(s->arena);
        free(s->slots);
        memset(s, 0, sizeof(*s));
        return SPK_ENOMEM;
    }
    for (uint32_t i = 0; i < slots; i++) {
        s->slots[i].seq = INT64_MIN;
        s->slots[i].len = 0;
        s->slots[i].pos = 0;
        s->slots[i].last_sent_ms = 0;
        s->slots[i].resends = 0;
    }
    s->arena_size = arena_bytes;
    s->max_packet = max_packet;
    s->mask = slots - 1;
    return 0;
}

void spk_rtx_store_clear(spk_rtx_store_t *s)
{
    for (uint32_t i = 0; s->slots != NULL && i <= s->mask; i++) {
        s->slots[i].seq = INT64_MIN;
        s->slots[i].len = 0;
        s->slots[i].last_sent_ms = 0;
        s->slots[i].resends = 0;
    }
    memset(&s->unwrap, 0, sizeof(s->unwrap));
    s->reserved = false;
}

void spk_rtx_store_destroy(spk_rtx_store_t *s)
{
    free(s->arena);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

size_t spk_rtx_store_memory(const spk_rtx_store_t *s)
{
    if (s->slots == NULL) {
        return 0;
    }
    return s->arena_size + sizeof(spk_rtx_slot_t) * ((size_t)s->mask + 1);
}

/* True while the bytes of slot e have not been overwritten: a write can reach absolute
 * position head + max_packet, which aliases pos once that exceeds pos + arena_size. */
static bool rtx_bytes_alive(const spk_rtx_store_t *s, const spk_rtx_slot_t *e)
{
    return e->pos + s->arena_size >= s->head + s->max_packet;
}

int spk_rtx_store_resize(spk_rtx_store_t *s, uint32_t slots, size_t arena_bytes)
{
    if (s->slots == NULL || !rtx_sizes_ok(slots, arena_bytes, s->max_packet)) {
        return SPK_EINVAL;
    }
    uint8_t *arena = malloc(arena_bytes);
    spk_rtx_slot_t *idx = malloc(sizeof(*idx) * slots);
    if (arena == NULL || idx == NULL) {
        free(arena);
        free(idx);
        return SPK_ENOMEM;
    }
    for (uint32_t i = 0; i < slots; i++) {
        idx[i] = (spk_rtx_slot_t){.seq = INT64_MIN};
    }
    /* The newest live packets, newest first, while they fit the new index window and leave
     * room for the next write (what rtx_bytes_alive asks of the oldest); then laid out oldest
     * first from position 0. */
    uint32_t keep = 0;
    size_t bytes = 0;
    int64_t oldest = 0;
    if (s->unwrap.started) {
        int64_t hi = s->unwrap.highest;
        for (int64_t ext = hi; ext >= 0 && hi - ext <= (int64_t)s->mask && hi - ext < slots;
             ext--) {
            const spk_rtx_slot_t *e = &s->slots[(uint64_t)ext & s->mask];
            if (e->seq != ext || !rtx_bytes_alive(s, e)) {
                continue;
            }
            size_t need = ((size_t)e->len + 7) & ~(size_t)7;
            if (bytes + need + s->max_packet > arena_bytes) {
                break;
            }
            bytes += need;
            keep++;
            oldest = ext;
        }
    }
    uint64_t pos = 0;
    for (int64_t ext = oldest; keep > 0 && ext <= s->unwrap.highest; ext++) {
        const spk_rtx_slot_t *e = &s->slots[(uint64_t)ext & s->mask];
        if (e->seq != ext || !rtx_bytes_alive(s, e)) {
            continue;
        }
        memcpy(arena + pos, s->arena + e->pos % s->arena_size, e->len);
        spk_rtx_slot_t *n = &idx[(uint64_t)ext & (slots - 1)];
        *n = *e;
        n->pos = pos;
        pos += ((size_t)e->len + 7) & ~(size_t)7;
    }
    free(s->arena);
    free(s->slots);
    s->arena = arena;
    s->arena_size = arena_bytes;
    s->slots = idx;
    s->mask = slots - 1;
    s->head = pos;
    s->reserved = false;
    return 0;
}

void spk_rtx_size_for(uint64_t bytes_per_s, uint64_t pkts_per_s, uint32_t window_ms,
                      size_t max_packet, size_t min_arena, size_t max_arena, uint32_t min_slots,
                      uint32_t max_slots, uint32_t *slots, size_t *arena)
{
    uint64_t bytes = bytes_per_s * window_ms / 1000u + max_packet;
    bytes = (bytes + 4095u) & ~(uint64_t)4095u;
    *arena = bytes < min_arena ? min_arena : bytes > max_arena ? max_arena : (size_t)bytes;
    uint64_t want = 2u * pkts_per_s * window_ms / 1000u;
    uint32_t n = min_slots;
    while (n < max_slots && n < want) {
        n *= 2;
    }
    *slots = n;
}

uint8_t *spk_rtx_reserve(spk_rtx_store_t *s)
{
    if (s->arena == NULL) {
        return NULL;
    }
    if (!s->reserved) {
        uint64_t off = s->head % s->arena_size;
        if (off + s->max_packet > s->arena_size) {
            s->head += s->arena_size - off; /* skip the tail: packets are contiguous */
        }
        s->reserved_at = s->head;
        s->reserved = true;
    }
    return s->arena + s->reserved_at % s->arena_size;
}

/* Seq relative to the highest stored one, without updating it. */
static int64_t rtx_extend(const spk_rtx_store_t *s, uint16_t seq)
{
    spk_seq_unwrap_t u = s->unwrap;
    return spk_seq_unwrap(&u, seq);
}

int spk_rtx_commit(spk_rtx_store_t *s, uint16_t seq, size_t len)
{
    if (!s->reserved) {
        s->stats.rejected++;
        return SPK_ESTATE;
    }
    s->reserved = false;
    if (len == 0 || len > s->max_packet) {
        s->stats.rejected++;
        return SPK_EINVAL;
    }
    int64_t ext = rtx_extend(s, seq);
    spk_rtx_slot_t *e = &s->slots[(uint64_t)ext & s->mask];
    if (s->unwrap.started && s->unwrap.highest - ext > (int64_t)s->mask) {
        s->stats.rejected++;
        return SPK_ERANGE;
    }
    if (e->seq == ext && rtx_bytes_alive(s, e)) {
        s->stats.rejected++;
        return SPK_EEXIST;
    }
    if (e->seq != INT64_MIN && e->seq > ext) {
        s->stats.rejected++;
        return SPK_ERANGE;
    }
    (void)spk_seq_unwrap(&s->unwrap, seq);
    s->head = s->reserved_at + ((len + 7) & ~(size_t)7);
    e->seq = ext;
    e->pos = s->reserved_at;
    e->len = (uint16_t)len;
    e->last_sent_ms = 0;
    e->resends = 0;
    s->stats.stored++;
    return 0;
}

int spk_rtx_put(spk_rtx_store_t *s, uint16_t seq, const uint8_t *pkt, size_t len)
{
    if (pkt == NULL || len == 0 || len > s->max_packet) {
        s->stats.rejected++;
        return SPK_EINVAL;
    }
    uint8_t *dst = spk_rtx_reserve(s);
    if (dst == NULL) {
        return SPK_ESTATE;
    }
    memcpy(dst, pkt, len);
    return spk_rtx_commit(s, seq, len);
}

static const spk_rtx_slot_t *rtx_find(const spk_rtx_store_t *s, uint16_t seq)
{
    if (s->slots == NULL || !s->unwrap.started) {
        return NULL;
    }
    int64_t ext = rtx_extend(s, seq);
    const spk_rtx_slot_t *e = &s->slots[(uint64_t)ext & s->mask];
    if (e->seq != ext || !rtx_bytes_alive(s, e)) {
        return NULL;
    }
    return e;
}

bool spk_rtx_contains(const spk_rtx_store_t *s, uint16_t seq)
{
    return rtx_find(s, seq) != NULL;
}

int spk_rtx_get(spk_rtx_store_t *s, uint16_t seq, uint64_t now_ms, uint32_t min_interval_ms,
                const uint8_t **pkt, size_t *len)
{
    spk_rtx_slot_t *e = (spk_rtx_slot_t *)rtx_find(s, seq);
    if (e == NULL) {
        s->stats.misses++;
        return SPK_ENOTFOUND;
    }
    if (min_interval_ms > 0 && e->resends > 0 && now_ms - e->last_sent_ms < min_interval_ms) {
        s->stats.throttled++;
        return SPK_ERATE;
    }
    e->last_sent_ms = now_ms;
    if (e->resends < UINT16_MAX) {
        e->resends++;
    }
    s->stats.hits++;
    s->stats.bytes_resent += e->len;
    *pkt = s->arena + e->pos % s->arena_size;
    *len = e->len;
    return 0;
}

bool spk_rtx_highest(const spk_rtx_store_t *s, int64_t *seq)
{
    if (!s->unwrap.started) {
        return false;
    }
    *seq = s->unwrap.highest;
    return true;
}

void spk_rtx_get_stats(const spk_rtx_store_t *s, spk_rtx_stats_t *out)
{
    *out = s->stats;
}

int spk_rtx_wrap(uint8_t *out, size_t cap, const uint8_t *pkt, size_t len, uint8_t rtx_pt,
                 uint32_t rtx_ssrc, uint16_t rtx_seq)
{
    spk_rtp_view_t v;
    int rc = spk_rtp_parse(&v, pkt, len, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    size_t total = v.payload_off + 2 + v.payload_len;
    if (out == NULL || cap < total || total > INT32_MAX) {
        return SPK_ETOOBIG;
    }
    memmove(out, pkt, v.payload_off);
    out[0] &= (uint8_t)~0x20; /* no padding */
    spk_rtp_set_pt(out, rtx_pt);
    spk_rtp_set_seq(out, rtx_seq);
    spk_rtp_set_ssrc(out, rtx_ssrc);
    memmove(out + v.payload_off + 2, pkt + v.payload_off, v.payload_len);
    spk_wr16(out + v.payload_off, v.seq);
    return (int)total;
}

int spk_rtx_unwrap(uint8_t *pkt, size_t len, uint8_t orig_pt, uint32_t orig_ssrc)
{
    spk_rtp_view_t v;
    int rc = spk_rtp_parse(&v, pkt, len, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    if (v.payload_len < 2 || len > INT32_MAX) {
        return SPK_ETRUNC;
    }
    uint16_t osn = spk_rd16(pkt + v.payload_off);
    memmove(pkt + v.payload_off, pkt + v.payload_off + 2, v.payload_len - 2);
    pkt[0] &= (uint8_t)~0x20;
    spk_rtp_set_pt(pkt, orig_pt);
    spk_rtp_set_seq(pkt, osn);
    spk_rtp_set_ssrc(pkt, orig_ssrc);
    return (int)(v.payload_off + v.payload_len - 2);
}
