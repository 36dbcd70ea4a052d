/* Unit tests for simulcast at the relay (spk/simulcast.h): the VP8 payload descriptor (picture
 * id forms, TL0PICIDX, key frames, truncation); a subscriber's stream across layer switches
 * (nothing of a layer before its key frame, sequence numbers without a gap, timestamps, picture
 * ids and TL0PICIDX running on, late packets of the old layer and of the new one from before its
 * key frame dropped, wrap-around); NACK mapping back to each layer's original numbers; and the
 * layer choice (down after weak windows, grace after a change, up after a clean wait that
 * doubles when a try fails and resets once stable, the top the publisher sends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "spk/error.h"
#include "spk/rtp.h"
#include "spk/simulcast.h"

/* ---- VP8 descriptor ---- */

static void test_vp8_desc(void **state)
{
    (void)state;
    spk_vp8_desc_t d;
    /* X I L T, 15-bit picture id 0x1234, TL0PICIDX 7, TID byte, key frame payload (P = 0). */
    const uint8_t key[] = {0x90, 0xE0, 0x92, 0x34, 0x07, 0x20, 0x10, 0x02, 0x00};
    assert_int_equal(spk_vp8_desc_parse(&d, key, sizeof(key)), 0);
    assert_true(d.start && d.keyframe && d.has_picture_id && d.picture_id_15 && d.has_tl0);
    assert_int_equal(d.picture_id, 0x1234);
    assert_int_equal(d.tl0picidx, 7);
    assert_int_equal(d.picture_id_off, 2);
    assert_int_equal(d.tl0_off, 4);
    assert_int_equal(d.len, 6);
    /* The same with P = 1: a delta frame. */
    const uint8_t delta[] = {0x90, 0xE0, 0x92, 0x34, 0x07, 0x20, 0x11};
    assert_int_equal(spk_vp8_desc_parse(&d, delta, sizeof(delta)), 0);
    assert_true(d.start && !d.keyframe);
    /* Not the first packet of the frame: never a key frame, however the byte looks. */
    const uint8_t cont[] = {0x80, 0x80, 0x05, 0x00};
    assert_int_equal(spk_vp8_desc_parse(&d, cont, sizeof(cont)), 0);
    assert_true(!d.start && !d.keyframe && d.has_picture_id && !d.picture_id_15);
    assert_int_equal(d.picture_id, 5);
    /* Partition index 1 with S set: not the frame's start. */
    const uint8_t part1[] = {0x11, 0x00};
    assert_int_equal(spk_vp8_desc_parse(&d, part1, sizeof(part1)), 0);
    assert_false(d.start);
    /* No extension: one byte. */
    const uint8_t plain[] = {0x10, 0x00};
    assert_int_equal(spk_vp8_desc_parse(&d, plain, sizeof(plain)), 0);
    assert_true(d.keyframe && !d.has_picture_id && d.len == 1);
    /* Truncated: every prefix of `key` up to the descriptor's end fails. */
    for (size_t n = 0; n <= 6; n++) {
        assert_int_equal(spk_vp8_desc_parse(&d, key, n), SPK_EDECODE);
    }
}

/* ---- a subscriber's stream ---- */

typedef struct {
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    uint16_t pid;
    uint8_t tl0;
} layer_t;

/* An RTP packet of `l` (one packet per frame) with a VP8 descriptor (15-bit picture id,
 * TL0PICIDX), key or delta; advances the layer. Returns its length. */
static size_t packet(uint8_t *buf, layer_t *l, bool key)
{
    memset(buf, 0, 32);
    buf[0] = 0x80;
    buf[1] = 96;
    spk_rtp_set_seq(buf, l->seq);
    spk_rtp_set_ts(buf, l->ts);
    spk_rtp_set_ssrc(buf, l->ssrc);
    uint8_t *p = buf + 12;
    p[0] = 0x90;
    p[1] = 0xC0;
    p[2] = (uint8_t)(0x80 | (l->pid >> 8));
    p[3] = (uint8_t)l->pid;
    p[4] = l->tl0;
    p[5] = key ? 0x00 : 0x01;
    l->seq++;
    l->ts += 3000;
    l->pid = (uint16_t)((l->pid + 1) & 0x7FFF);
    l->tl0++;
    return 18;
}

typedef struct {
    spk_sim_out_t o;
    uint64_t now;
    uint16_t last_seq;
    uint32_t last_ts;
    uint16_t last_pid;
    uint8_t last_tl0;
    unsigned n_out;
} sub_t;

/* Offers a packet of layer `layer`; when accepted, rewrites it and checks that it continues the
 * output without a gap. Returns whether it was forwarded. */
static bool offer(sub_t *s, int layer, layer_t *l, bool key)
{
    uint8_t buf[64];
    size_t len = packet(buf, l, key);
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, buf, len, NULL, 0), 0);
    spk_vp8_desc_t d;
    assert_int_equal(spk_vp8_desc_parse(&d, buf + v.payload_off, v.payload_len), 0);
    s->now += 33;
    if (!spk_sim_out_accept(&s->o, layer, v.seq, v.ts, &d, s->now)) {
        return false;
    }
    spk_sim_rewrite(buf, v.payload_off, &d, &s->o.hist[0], 0xABCD);
    assert_int_equal(spk_rtp_parse(&v, buf, len, NULL, 0), 0);
    assert_int_equal(v.ssrc, 0xABCD);
    spk_vp8_desc_t out;
    assert_int_equal(spk_vp8_desc_parse(&out, buf + v.payload_off, v.payload_len), 0);
    if (s->n_out > 0) {
        assert_int_equal(v.seq, (uint16_t)(s->last_seq + 1));
        assert_true((int32_t)(v.ts - s->last_ts) > 0);
        assert_int_equal(out.picture_id, (s->last_pid + 1) & 0x7FFF);
        assert_int_equal(out.tl0picidx, (uint8_t)(s->last_tl0 + 1));
    }
    s->last_seq = v.seq;
    s->last_ts = v.ts;
    s->last_pid = out.picture_id;
    s->last_tl0 = out.tl0picidx;
    s->n_out++;
    return true;
}

static void test_switch_continuity(void **state)
{
    (void)state;
    sub_t s;
    memset(&s, 0, sizeof(s));
    spk_sim_out_init(&s.o, 1);
    layer_t lo = {.ssrc = 1, .seq = 1000, .ts = 5000, .pid = 100, .tl0 = 10};
    layer_t hi = {.ssrc = 2, .seq = 65530, .ts = 0xFFFFF000u, .pid = 0x7FFE, .tl0 = 254};
    /* Nothing before the target layer's key frame, of either layer. */
    assert_false(offer(&s, 1, &hi, false));
    assert_false(offer(&s, 0, &lo, true));
    assert_true(offer(&s, 1, &hi, true));
    for (int i = 0; i < 20; i++) { /* sequence numbers, timestamps, ids wrap on the way */
        assert_false(offer(&s, 0, &lo, i == 5));
        assert_true(offer(&s, 1, &hi, false));
    }
    assert_int_equal(s.o.layer, 1);
    /* Down: the high layer stops at once (a step down comes when the link is short: its
     * packets would only delay the low layer's key frame); nothing until that key frame. */
    s.o.target = 0;
    assert_false(offer(&s, 0, &lo, false));
    assert_false(offer(&s, 1, &hi, false));
    assert_int_equal(s.o.layer, 1);
    layer_t late_lo = lo; /* a low packet that will arrive late, from before the key frame */
    lo.seq++;
    lo.ts += 3000;
    assert_true(offer(&s, 0, &lo, true));
    assert_int_equal(s.o.layer, 0);
    assert_int_equal(s.o.switches, 1);
    assert_false(offer(&s, 1, &hi, false)); /* the old layer: no more */
    assert_false(offer(&s, 0, &late_lo, false));
    for (int i = 0; i < 10; i++) {
        assert_true(offer(&s, 0, &lo, false));
    }
    /* Up again, a switch at a key frame; then the same layer's key frames change nothing. */
    s.o.target = 1;
    assert_true(offer(&s, 0, &lo, true));
    assert_true(offer(&s, 1, &hi, true));
    assert_true(offer(&s, 1, &hi, true));
    assert_int_equal(s.o.switches, 2);
    assert_int_equal(s.n_out, 1 + 20 + 1 + 10 + 1 + 2);
}

static void test_reordered_same_layer(void **state)
{
    (void)state;
    sub_t s;
    memset(&s, 0, sizeof(s));
    spk_sim_out_init(&s.o, 0);
    layer_t lo = {.ssrc = 1, .seq = 10, .ts = 1, .pid = 1, .tl0 = 1};
    assert_true(offer(&s, 0, &lo, true));
    /* Packet 11 late, after 12: forwarded with its own number, the newest stays 12. */
    uint8_t a[64], b[64];
    layer_t l11 = lo;
    packet(a, &lo, false);
    packet(b, &lo, false);
    spk_vp8_desc_t d;
    assert_int_equal(spk_vp8_desc_parse(&d, b + 12, 6), 0);
    assert_true(spk_sim_out_accept(&s.o, 0, 12, l11.ts + 3000, &d, 100));
    assert_int_equal(spk_vp8_desc_parse(&d, a + 12, 6), 0);
    assert_true(spk_sim_out_accept(&s.o, 0, 11, l11.ts, &d, 101));
    assert_int_equal(s.o.out_seq, 12);
}

static void test_nack_lookup(void **state)
{
    (void)state;
    sub_t s;
    memset(&s, 0, sizeof(s));
    spk_sim_out_init(&s.o, 0);
    layer_t lo = {.ssrc = 1, .seq = 1000, .ts = 5000, .pid = 100, .tl0 = 10};
    layer_t hi = {.ssrc = 2, .seq = 30000, .ts = 7000, .pid = 900, .tl0 = 50};
    uint16_t seq;
    assert_null(spk_sim_out_lookup(&s.o, 1000, &seq)); /* nothing sent */
    assert_true(offer(&s, 0, &lo, true));              /* out 1000 = lo 1000 */
    assert_true(offer(&s, 0, &lo, false));
    s.o.target = 1;
    assert_true(offer(&s, 1, &hi, true)); /* out 1002 = hi 30000 */
    assert_true(offer(&s, 1, &hi, false));
    const spk_sim_map_t *m = spk_sim_out_lookup(&s.o, 1001, &seq);
    assert_non_null(m);
    assert_int_equal(m->layer, 0);
    assert_int_equal(seq, 1001);
    m = spk_sim_out_lookup(&s.o, 1003, &seq);
    assert_non_null(m);
    assert_int_equal(m->layer, 1);
    assert_int_equal(seq, 30001);
    assert_null(spk_sim_out_lookup(&s.o, 1004, &seq)); /* not sent yet */
    /* Older than the history: after SPK_SIM_HISTORY more switches, 1001 is forgotten. */
    for (int i = 0; i < SPK_SIM_HISTORY; i++) {
        s.o.target = (int8_t)(i % 2 == 0 ? 0 : 1);
        assert_true(offer(&s, s.o.target, s.o.target == 0 ? &lo : &hi, true));
    }
    assert_null(spk_sim_out_lookup(&s.o, 1001, &seq));
    /* Resync: nothing until the next key frame, the numbering continues. */
    spk_sim_out_resync(&s.o);
    int cur = s.o.target;
    assert_false(offer(&s, cur, cur == 0 ? &lo : &hi, false));
    assert_true(offer(&s, cur, cur == 0 ? &lo : &hi, true));
}

static void test_seven_bit_picture_id(void **state)
{
    (void)state;
    spk_sim_out_t o;
    spk_sim_out_init(&o, 0);
    uint8_t pkt[20] = {0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0x90, 0x80, 0x7F, 0x00};
    spk_vp8_desc_t d;
    assert_int_equal(spk_vp8_desc_parse(&d, pkt + 12, 4), 0);
    assert_true(spk_sim_out_accept(&o, 0, 1, 1, &d, 0));
    spk_sim_map_t m = o.hist[0];
    m.pid_off = 3;
    spk_sim_rewrite(pkt, 12, &d, &m, 5);
    assert_int_equal(pkt[14], 0x02); /* (127 + 3) mod 128, M bit clear */
}

/* ---- layer choice ---- */

static void test_select(void **state)
{
    (void)state;
    spk_sim_rule_t r;
    spk_sim_rule_defaults(&r);
    assert_true(spk_sim_rule_ok(&r));
    spk_sim_rule_t bad = r;
    bad.loss_up = r.loss_down + 1;
    assert_false(spk_sim_rule_ok(&bad));
    bad = r;
    bad.up_max_ms = r.up_ms - 1;
    assert_false(spk_sim_rule_ok(&bad));
    bad = r;
    bad.down_n = 0;
    assert_false(spk_sim_rule_ok(&bad));
    spk_sim_select_t s;
    uint64_t t = 100000;
    spk_sim_select_init(&s, &r, 2, t);
    /* Loss in the grace time after the start does not count; no news changes nothing. */
    assert_int_equal(spk_sim_select_report(&s, &r, t + 500, 200, 2), 2);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 1000, 200, 2), 2);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 2000, -1, 2), 2);
    /* Two weak windows in a row: one layer down; a fine one in between resets the count. */
    assert_int_equal(spk_sim_select_report(&s, &r, t + 2000, 100, 2), 2);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 3000, 10, 2), 2);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 4000, 100, 2), 2);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 5000, 100, 2), 1);
    /* Weak again right away: in the grace time, nothing; after it, down to 0 and no lower. */
    assert_int_equal(spk_sim_select_report(&s, &r, t + 6000, 100, 2), 1);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 7000, 100, 2), 1);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 8000, 100, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 10000, 100, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, t + 11000, 100, 2), 0);
    /* Clean for up_ms: one up. A middling window restarts the wait. */
    uint64_t c = t + 12000;
    assert_int_equal(spk_sim_select_report(&s, &r, c, 0, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, c + 2000, 15, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, c + 2000 + r.up_ms - 1, 0, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, c + 2000 + r.up_ms, 0, 2), 1);
    /* That try fails soon: back down at the first weak window after the grace time, and the
     * next try waits twice as long. */
    uint64_t u = c + 2000 + r.up_ms;
    assert_int_equal(spk_sim_select_report(&s, &r, u + 1000, 200, 2), 1);
    assert_int_equal(spk_sim_select_report(&s, &r, u + 2000, 200, 2), 0);
    assert_int_equal(s.wait_ms, 2 * r.up_ms);
    /* Staying down for stable_ms does not shorten the wait: only a try that holds does. */
    spk_sim_select_t kept = s;
    assert_int_equal(spk_sim_select_report(&kept, &r, u + 2000 + r.stable_ms, 15, 2), 0);
    assert_int_equal(kept.wait_ms, 2 * r.up_ms);
    uint64_t d = u + 2000;
    assert_int_equal(spk_sim_select_report(&s, &r, d + 2 * r.up_ms - 1, 0, 2), 0);
    assert_int_equal(spk_sim_select_report(&s, &r, d + 2 * r.up_ms, 0, 2), 1);
    /* Kept for stable_ms: the wait is back at its start; up to the top and not beyond it. */
    uint64_t e = d + 2 * r.up_ms;
    assert_int_equal(spk_sim_select_report(&s, &r, e + r.stable_ms, 0, 2), 2);
    assert_int_equal(s.wait_ms, r.up_ms);
    assert_int_equal(spk_sim_select_report(&s, &r, e + 3 * r.stable_ms, 0, 2), 2);
    /* The publisher stops sending the top layer: the choice follows it down. */
    assert_int_equal(spk_sim_select_report(&s, &r, e + 4 * r.stable_ms, 0, 1), 1);
    /* The wait never exceeds up_max_ms, however many tries fail. */
    for (int i = 0; i < 10; i++) {
        s.went_up = true;
        s.weak_n = r.down_n;
        s.want = 1;
        s.changed_at = e + 5 * r.stable_ms + (uint64_t)i * 10000;
        spk_sim_select_report(&s, &r, s.changed_at + r.grace_ms, 200, 1);
    }
    assert_int_equal(s.wait_ms, r.up_max_ms);
}

/* `sent` packets forwarded, then `nacked` of them asked for again. */
static int nacks(spk_sim_select_t *s, const spk_sim_rule_t *r, uint64_t now_ms, uint32_t sent,
                 uint32_t nacked)
{
    for (uint32_t i = 0; i < sent; i++) {
        spk_sim_select_sent(s);
    }
    return spk_sim_select_nacks(s, r, now_ms, nacked);
}

/* A try up whose packets are asked for again is undone before any loss window says so. */
static void test_select_nacks(void **state)
{
    (void)state;
    spk_sim_rule_t r;
    spk_sim_rule_defaults(&r);
    spk_sim_select_t s;
    uint64_t t = 1000;
    spk_sim_select_init(&s, &r, 0, t);
    /* Clean for up_ms: a try up to layer 1. */
    assert_int_equal(spk_sim_select_report(&s, &r, t + r.up_ms, 0, 1), 1);
    uint64_t u = t + r.up_ms;
    /* Before enough packets went out, NACKs decide nothing. */
    assert_int_equal(nacks(&s, &r, u + 100, r.fast_n - 1, r.fast_n - 1), 1);
    assert_int_equal(s.sent, r.fast_n - 1);
    assert_int_equal(s.nacked, r.fast_n - 1);
    /* Enough of them, nearly all asked again: undone at once (inside the grace time of the
     * windows), the next try waits twice as long, the counts start over. */
    assert_int_equal(nacks(&s, &r, u + 200, 1, 0), 0);
    assert_int_equal(s.wait_ms, 2 * r.up_ms);
    assert_int_equal(s.sent, 0);
    assert_int_equal(s.nacked, 0);
    /* At level 0 nothing is below: NACKs change nothing. */
    assert_int_equal(nacks(&s, &r, u + 300, 1000, 1000), 0);
    /* The next try, with loss at the threshold (not above it): it stands. */
    uint64_t v = u + 200 + 2 * r.up_ms;
    assert_int_equal(spk_sim_select_report(&s, &r, v, 0, 1), 1);
    uint32_t sent = 1024, at = (uint32_t)((uint64_t)r.loss_fast * sent / 256u);
    assert_int_equal(nacks(&s, &r, v + 500, sent, at), 1);
    assert_int_equal(nacks(&s, &r, v + 600, 0, 1), 0);
    /* A level kept for stable_ms is no longer a try: NACKs leave it to the loss windows. */
    uint64_t w = v + 600 + 4 * r.up_ms;
    assert_int_equal(spk_sim_select_report(&s, &r, w, 0, 1), 1);
    assert_int_equal(nacks(&s, &r, w + r.stable_ms, 1000, 1000), 1);
    /* A level reached by stepping down is no try either. */
    spk_sim_select_t d;
    spk_sim_select_init(&d, &r, 2, t);
    assert_int_equal(spk_sim_select_report(&d, &r, t + r.grace_ms, 100, 2), 2);
    assert_int_equal(spk_sim_select_report(&d, &r, t + r.grace_ms + 1000, 100, 2), 1);
    assert_int_equal(nacks(&d, &r, t + r.grace_ms + 1100, 1000, 1000), 1);
    /* A rule with loss_fast below loss_down, or no minimum count, is refused. */
    spk_sim_rule_t bad = r;
    bad.loss_fast = r.loss_down - 1;
    assert_false(spk_sim_rule_ok(&bad));
    bad = r;
    bad.fast_n = 0;
    assert_false(spk_sim_rule_ok(&bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vp8_desc),
        cmocka_unit_test(test_switch_continuity),
        cmocka_unit_test(test_reordered_same_layer),
        cmocka_unit_test(test_nack_lookup),
        cmocka_unit_test(test_seven_bit_picture_id),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_nacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
