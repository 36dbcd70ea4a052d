/* Simulcast at the relay: VP8 descriptor, rewriting, layer selection; see spk/simulcast.h. */
#include "spk/simulcast.h"

#include <string.h>

#include "spk/error.h"
#include "spk/rtp.h"

/* ---- VP8 payload descriptor ---- */

int spk_vp8_desc_parse(spk_vp8_desc_t *d, const uint8_t *p, size_t len)
{
    memset(d, 0, sizeof(*d));
    if (len < 1) {
        return SPK_EDECODE;
    }
    size_t i = 1;
    bool s_bit = (p[0] & 0x10u) != 0;
    unsigned pid = p[0] & 0x07u;
    if (p[0] & 0x80u) { /* X: extension byte */
        if (len < 2) {
            return SPK_EDECODE;
        }
        uint8_t x = p[1];
        i = 2;
        if (x & 0x80u) { /* I: picture id */
            if (i >= len) {
                return SPK_EDECODE;
            }
            d->has_picture_id = true;
            d->picture_id_off = i;
            if (p[i] & 0x80u) {
                if (i + 1 >= len) {
                    return SPK_EDECODE;
                }
                d->picture_id_15 = true;
                d->picture_id = (uint16_t)(((p[i] & 0x7Fu) << 8) | p[i + 1]);
                i += 2;
            } else {
                d->picture_id = p[i] & 0x7Fu;
                i += 1;
            }
        }
        if (x & 0x40u) { /* L: TL0PICIDX */
            if (i >= len) {
                return SPK_EDECODE;
            }
            d->has_tl0 = true;
            d->tl0_off = i;
            d->tl0picidx = p[i];
            i += 1;
        }
        if (x & 0x30u) { /* T or K: TID/Y/KEYIDX */
            i += 1;
        }
    }
    if (i > len) {
        return SPK_EDECODE;
    }
    d->len = i;
    d->start = s_bit && pid == 0;
    if (d->start) {
        if (i >= len) {
            return SPK_EDECODE; /* a frame's first packet carries its payload header */
        }
        d->keyframe = (p[i] & 0x01u) == 0;
    }
    return 0;
}

/* ---- rewriting ---- */

static void map_none(spk_sim_map_t *m)
{
    memset(m, 0, sizeof(*m));
    m->layer = -1;
}

void spk_sim_out_init(spk_sim_out_t *o, int target)
{
    memset(o, 0, sizeof(*o));
    o->layer = -1;
    o->target = (int8_t)target;
    for (size_t i = 0; i < SPK_SIM_HISTORY; i++) {
        map_none(&o->hist[i]);
    }
}

void spk_sim_out_resync(spk_sim_out_t *o)
{
    o->layer = -1;
}

/* Notes what was forwarded under the current mapping (the newest values). */
static void note_out(spk_sim_out_t *o, uint16_t seq, uint32_t ts, const spk_vp8_desc_t *d,
                     uint64_t now_ms)
{
    const spk_sim_map_t *m = &o->hist[0];
    uint16_t out = (uint16_t)(seq + m->seq_off);
    if (o->started && (int16_t)(uint16_t)(out - o->out_seq) <= 0) {
        return; /* reordered: not the newest */
    }
    o->out_seq = out;
    o->out_ts = ts + m->ts_off;
    o->out_ms = now_ms;
    o->started = true;
    if (d != NULL && d->has_picture_id) {
        uint16_t mask = d->picture_id_15 ? 0x7FFFu : 0x7Fu;
        o->out_pid = (uint16_t)((d->picture_id + m->pid_off) & mask);
        o->have_pid = true;
    }
    if (d != NULL && d->has_tl0) {
        o->out_tl0 = (uint8_t)(d->tl0picidx + m->tl0_off);
        o->have_tl0 = true;
    }
}

static void switch_to(spk_sim_out_t *o, int layer, uint16_t seq, uint32_t ts,
                      const spk_vp8_desc_t *d, uint64_t now_ms)
{
    spk_sim_map_t m;
    map_none(&m);
    m.layer = (int8_t)layer;
    if (o->started) {
        /* The key frame follows the last packet sent without a gap, a little later in time. */
        uint64_t dt = now_ms > o->out_ms ? now_ms - o->out_ms : 0;
        uint32_t step = dt > 10000u ? 900000u : (uint32_t)dt * 90u;
        m.seq_off = (uint16_t)(o->out_seq + 1u - seq);
        m.ts_off = o->out_ts + (step == 0 ? 1u : step) - ts;
        if (o->have_pid && d->has_picture_id) {
            m.pid_off = (uint16_t)((o->out_pid + 1u - d->picture_id) & 0x7FFFu);
        }
        if (o->have_tl0 && d->has_tl0) {
            m.tl0_off = (uint8_t)(o->out_tl0 + 1u - d->tl0picidx);
        }
        o->switches++;
    }
    m.out_seq0 = (uint16_t)(seq + m.seq_off);
    memmove(&o->hist[1], &o->hist[0], sizeof(o->hist[0]) * (SPK_SIM_HISTORY - 1));
    o->hist[0] = m;
    o->layer = (int8_t)layer;
    o->layer_seq0 = seq;
}

bool spk_sim_out_accept(spk_sim_out_t *o, int layer, uint16_t seq, uint32_t ts,
                        const spk_vp8_desc_t *d, uint64_t now_ms)
{
    if (layer == o->target && layer != o->layer && d != NULL && d->keyframe) {
        switch_to(o, layer, seq, ts, d, now_ms);
    } else if (layer != o->layer || o->layer < 0 || (int16_t)(uint16_t)(seq - o->layer_seq0) < 0) {
        return false; /* another layer, or of this one from before the switch */
    } else if (o->target < o->layer) {
        return false; /* down: the link is short, and the lower key frame must get through */
    }
    note_out(o, seq, ts, d, now_ms);
    return true;
}

void spk_sim_rewrite(uint8_t *pkt, size_t payload_off, const spk_vp8_desc_t *d,
                     const spk_sim_map_t *map, uint32_t out_ssrc)
{
    uint16_t seq = (uint16_t)((pkt[2] << 8) | pkt[3]);
    uint32_t ts = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
    spk_rtp_set_seq(pkt, (uint16_t)(seq + map->seq_off));
    spk_rtp_set_ts(pkt, ts + map->ts_off);
    spk_rtp_set_ssrc(pkt, out_ssrc);
    if (d == NULL) {
        return;
    }
    uint8_t *p = pkt + payload_off;
    if (d->has_picture_id) {
        if (d->picture_id_15) {
            uint16_t v = (uint16_t)((d->picture_id + map->pid_off) & 0x7FFFu);
            p[d->picture_id_off] = (uint8_t)(0x80u | (v >> 8));
            p[d->picture_id_off + 1] = (uint8_t)v;
        } else {
            p[d->picture_id_off] = (uint8_t)((d->picture_id + map->pid_off) & 0x7Fu);
        }
    }
    if (d->has_tl0) {
        p[d->tl0_off] = (uint8_t)(d->tl0picidx + map->tl0_off);
    }
}

const spk_sim_map_t *spk_sim_out_lookup(const spk_sim_out_t *o, uint16_t out_seq,
                                        uint16_t *orig_seq)
{
    if (!o->started || (int16_t)(uint16_t)(out_seq - o->out_seq) > 0) {
        return NULL; /* never sent */
    }
    for (size_t i = 0; i < SPK_SIM_HISTORY && o->hist[i].layer >= 0; i++) {
        const spk_sim_map_t *m = &o->hist[i];
        if ((int16_t)(uint16_t)(out_seq - m->out_seq0) >= 0) {
            *orig_seq = (uint16_t)(out_seq - m->seq_off);
            return m;
        }
    }
    return NULL;
}

/* ---- layer selection ---- */

void spk_sim_rule_defaults(spk_sim_rule_t *r)
{
    r->loss_down = 26; /* ~10 % */
    r->loss_up = 5;    /* ~2 % */
    r->down_n = 2;
    r->grace_ms = 1500;
    r->up_ms = 4000;
    r->up_max_ms = 32000;
    r->stable_ms = 20000;
    r->loss_fast = 64; /* ~25 % */
    r->fast_n = 128;
}

bool spk_sim_rule_ok(const spk_sim_rule_t *r)
{
    return r->loss_down >= 0 && r->loss_down <= 255 && r->loss_up >= 0 &&
           r->loss_up <= r->loss_down && r->down_n > 0 && r->up_ms > 0 &&
           r->up_max_ms >= r->up_ms && r->stable_ms > 0 && r->loss_fast >= r->loss_down &&
           r->loss_fast <= 255 && r->fast_n > 0;
}

void spk_sim_select_init(spk_sim_select_t *s, const spk_sim_rule_t *r, int want, uint64_t now_ms)
{
    memset(s, 0, sizeof(*s));
    s->want = (uint8_t)(want < 0 ? 0 : want);
    s->changed_at = now_ms;
    s->clean_from = now_ms;
    s->wait_ms = r->up_ms;
}

static void change(spk_sim_select_t *s, uint64_t now_ms, int want, bool up)
{
    s->want = (uint8_t)want;
    s->changed_at = now_ms;
    s->clean_from = now_ms;
    s->weak_n = 0;
    s->went_up = up;
    s->sent = 0;
    s->nacked = 0;
}

/* A try up (now_ms inside its stable time) is undone; the next one waits twice as long. */
static void undo_try(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms)
{
    uint32_t next = s->wait_ms * 2u;
    s->wait_ms = next > r->up_max_ms ? r->up_max_ms : next;
    change(s, now_ms, s->want - 1, false);
}

static bool trying(const spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms)
{
    return s->went_up && s->want > 0 && now_ms - s->changed_at < r->stable_ms;
}

int spk_sim_select_report(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms, int loss,
                          int top)
{
    top = top < 0 ? 0 : top;
    if (now_ms < s->changed_at) {
        now_ms = s->changed_at;
    }
    if (s->want > top) {
        s->want = (uint8_t)top; /* the publisher stopped sending it */
    }
    if (loss < 0 || now_ms - s->changed_at < r->grace_ms) {
        return s->want;
    }
    if (s->went_up && now_ms - s->changed_at >= r->stable_ms) {
        s->wait_ms = r->up_ms; /* the try held: the next one need not wait long */
    }
    if (loss > r->loss_down) {
        s->clean_from = now_ms;
        /* A try up is undone at its first weak window: the link said what it carries; down
         * again soon after a try up, the next one waits longer. */
        if (trying(s, r, now_ms)) {
            undo_try(s, r, now_ms);
        } else if (++s->weak_n >= r->down_n && s->want > 0) {
            change(s, now_ms, s->want - 1, false);
        }
        return s->want;
    }
    s->weak_n = 0;
    if (loss > r->loss_up) {
        s->clean_from = now_ms;
    } else if (s->want < top && now_ms - s->clean_from >= s->wait_ms) {
        change(s, now_ms, s->want + 1, true);
    }
    return s->want;
}

void spk_sim_select_sent(spk_sim_select_t *s)
{
    if (s->sent < UINT32_MAX) {
        s->sent++;
    }
}

int spk_sim_select_nacks(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms,
                         uint32_t nacked)
{
    s->nacked = s->nacked + nacked < s->nacked ? UINT32_MAX : s->nacked + nacked;
    if (now_ms < s->changed_at) {
        now_ms = s->changed_at;
    }
    if (trying(s, r, now_ms) && s->sent >= r->fast_n &&
        (uint64_t)s->nacked * 256u > (uint64_t)r->loss_fast * s->sent) {
        undo_try(s, r, now_ms);
    }
    return s->want;
}
