/* Unit tests for spk/rtx.h: the retransmission store (eviction by slots and by arena bytes,
 * duplicates, late packets, throttling, zero-copy reserve/commit, sequence wrap, resizing) and
 * RFC 4588 RTX wrapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spk/error.h"
#include "spk/nack.h"
#include "spk/rtx.h"

int run_rtx_tests(void);

/* A fake RTP packet of len bytes for seq: header + payload bytes derived from seq. */
static size_t make_pkt(uint8_t *p, uint16_t seq, size_t len)
{
    memset(p, 0, len);
    p[0] = 0x80;
    p[1] = 96;
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    for (size_t i = 12; i < len; i++) {
        p[i] = (uint8_t)(seq + i);
    }
    return len;
}

static void check_pkt(const uint8_t *p, size_t len, uint16_t seq, size_t want_len)
{
    assert_int_equal(len, want_len);
    assert_int_equal(p[2], (uint8_t)(seq >> 8));
    assert_int_equal(p[3], (uint8_t)seq);
    for (size_t i = 12; i < len; i++) {
        if (p[i] != (uint8_t)(seq + i)) {
            fail_msg("seq %u byte %zu: %u", seq, i, p[i]);
        }
    }
}

static void test_store_basic(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    assert_int_equal(spk_rtx_store_init(&s, 100, 65536, 1500), SPK_EINVAL);
    assert_int_equal(spk_rtx_store_init(&s, 64, 2000, 1500), SPK_EINVAL);
    assert_int_equal(spk_rtx_store_init(&s, 64, 64 * 1024, 1500), 0);
    assert_int_equal(spk_rtx_store_memory(&s), 64 * 1024 + 64 * sizeof(spk_rtx_slot_t));
    uint8_t p[1500];
    const uint8_t *got;
    size_t len;
    int64_t hi;
    assert_false(spk_rtx_highest(&s, &hi));
    assert_int_equal(spk_rtx_get(&s, 1, 0, 0, &got, &len), SPK_ENOTFOUND);
    for (uint16_t seq = 1000; seq < 1050; seq++) {
        size_t n = make_pkt(p, seq, 100 + seq % 700);
        assert_int_equal(spk_rtx_put(&s, seq, p, n), 0);
    }
    assert_true(spk_rtx_highest(&s, &hi));
    assert_int_equal(hi, 1049);
    for (uint16_t seq = 1000; seq < 1050; seq++) {
        assert_int_equal(spk_rtx_get(&s, seq, 0, 0, &got, &len), 0);
        check_pkt(got, len, seq, 100 + seq % 700);
    }
    assert_false(spk_rtx_contains(&s, 999));
    assert_false(spk_rtx_contains(&s, 1050));
    /* Duplicate and too long. */
    size_t n = make_pkt(p, 1049, 200);
    assert_int_equal(spk_rtx_put(&s, 1049, p, n), SPK_EEXIST);
    assert_int_equal(spk_rtx_put(&s, 1051, p, 1501), SPK_EINVAL);
    assert_int_equal(spk_rtx_commit(&s, 1051, 10), SPK_ESTATE);
    /* A late packet inside the window is stored (lost 1050 retransmitted by the publisher). */
    n = make_pkt(p, 1052, 300);
    assert_int_equal(spk_rtx_put(&s, 1052, p, n), 0);
    n = make_pkt(p, 1050, 300);
    assert_int_equal(spk_rtx_put(&s, 1050, p, n), 0);
    assert_int_equal(spk_rtx_get(&s, 1050, 0, 0, &got, &len), 0);
    check_pkt(got, len, 1050, 300);
    /* Older than the window (64 slots). */
    n = make_pkt(p, 980, 300);
    assert_int_equal(spk_rtx_put(&s, 980, p, n), SPK_ERANGE);
    spk_rtx_stats_t st;
    spk_rtx_get_stats(&s, &st);
    assert_int_equal(st.stored, 52);
    assert_int_equal(st.rejected, 4);
    assert_int_equal(st.hits, 51);
    assert_int_equal(st.misses, 1);
    spk_rtx_store_destroy(&s);
    spk_rtx_store_destroy(&s);
}

/* A stream that starts over: nothing of before is found, the next sequence numbers may be
 * anywhere (here far behind), and the memory stays. */
static void test_store_clear(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    assert_int_equal(spk_rtx_store_init(&s, 64, 64 * 1024, 1500), 0);
    size_t mem = spk_rtx_store_memory(&s);
    uint8_t p[1500];
    const uint8_t *got;
    size_t len;
    int64_t hi;
    for (uint16_t seq = 40000; seq < 40020; seq++) {
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 200)), 0);
    }
    assert_non_null(spk_rtx_reserve(&s));
    spk_rtx_store_clear(&s);
    assert_int_equal(spk_rtx_store_memory(&s), mem);
    assert_false(spk_rtx_highest(&s, &hi));
    assert_int_equal(spk_rtx_commit(&s, 1, 10), SPK_ESTATE);
    for (uint16_t seq = 40000; seq < 40020; seq++) {
        assert_false(spk_rtx_contains(&s, seq));
        assert_int_equal(spk_rtx_get(&s, seq, 0, 0, &got, &len), SPK_ENOTFOUND);
    }
    /* 39000 would be older than the window (64 slots behind 40019) without the clear. */
    assert_int_equal(spk_rtx_put(&s, 39000, p, make_pkt(p, 39000, 300)), 0);
    assert_int_equal(spk_rtx_get(&s, 39000, 0, 0, &got, &len), 0);
    check_pkt(got, len, 39000, 300);
    assert_true(spk_rtx_highest(&s, &hi));
    assert_int_equal(hi, 39000);
    spk_rtx_store_destroy(&s);
}

static void test_store_eviction(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    /* 16 slots, arena for about 8 packets of 1000 bytes. */
    assert_int_equal(spk_rtx_store_init(&s, 16, 8 * 1024, 1024), 0);
    uint8_t p[1024];
    const uint8_t *got;
    size_t len;
    for (uint32_t i = 0; i < 100; i++) {
        uint16_t seq = (uint16_t)(65500 + i); /* wraps */
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 1000)), 0);
        /* The newest packets are always there; the arena holds at most
         * (8192 - 1024) / 1000 = 7 of them. */
        for (uint32_t back = 0; back <= i && back < 20; back++) {
            uint16_t q = (uint16_t)(seq - back);
            bool have = spk_rtx_contains(&s, q);
            if (back < 6) {
                assert_true(have);
                assert_int_equal(spk_rtx_get(&s, q, 0, 0, &got, &len), 0);
                check_pkt(got, len, q, 1000);
            } else if (back >= 8) {
                assert_false(have);
            }
        }
    }
    /* Small packets: the slot count limits. */
    for (uint32_t i = 0; i < 100; i++) {
        uint16_t seq = (uint16_t)(100 + i);
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 50)), 0);
    }
    for (uint16_t q = 199; q > 199 - 16; q--) {
        assert_true(spk_rtx_contains(&s, q));
    }
    assert_false(spk_rtx_contains(&s, 199 - 16));
    spk_rtx_store_destroy(&s);
}

/* Resizing keeps the newest packets that fit the new arena and index (with their resend
 * state), across a sequence wrap, both ways; the store carries on as usual afterwards. */
static void test_store_resize(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    uint8_t p[1024];
    const uint8_t *got;
    size_t len;
    assert_int_equal(spk_rtx_store_init(&s, 64, 64 * 1024, 1024), 0);
    for (uint32_t i = 0; i < 40; i++) {
        uint16_t seq = (uint16_t)(65520 + i); /* wraps */
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 1000)), 0);
    }
    /* 65530 was handed out once: the resend state travels with it. */
    assert_int_equal(spk_rtx_get(&s, 65530, 1000, 100, &got, &len), 0);
    assert_int_equal(spk_rtx_store_resize(&s, 100, 16 * 1024), SPK_EINVAL);
    assert_int_equal(spk_rtx_store_resize(&s, 64, 1024), SPK_EINVAL);
    /* Up: everything stays. */
    assert_int_equal(spk_rtx_store_resize(&s, 128, 128 * 1024), 0);
    assert_int_equal(spk_rtx_store_memory(&s), 128 * 1024 + 128 * sizeof(spk_rtx_slot_t));
    for (uint32_t i = 0; i < 40; i++) {
        uint16_t seq = (uint16_t)(65520 + i);
        assert_int_equal(spk_rtx_get(&s, seq, 5000, 0, &got, &len), 0);
        check_pkt(got, len, seq, 1000);
    }
    /* Down to 8 KiB: (8192 - 1024) / 1000 = 7 packets, the newest. */
    assert_int_equal(spk_rtx_store_resize(&s, 32, 8 * 1024), 0);
    for (uint32_t i = 0; i < 40; i++) {
        uint16_t seq = (uint16_t)(65520 + i);
        assert_int_equal(spk_rtx_contains(&s, seq), i >= 33);
    }
    /* The slot count limits too: 16 slots keep 16 small packets of 40. */
    spk_rtx_store_clear(&s);
    for (uint16_t seq = 500; seq < 540; seq++) {
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 60)), 0);
    }
    assert_int_equal(spk_rtx_store_resize(&s, 16, 64 * 1024), 0);
    for (uint16_t seq = 500; seq < 540; seq++) {
        assert_int_equal(spk_rtx_contains(&s, seq), seq >= 524);
    }
    /* And it goes on storing, evicting and refusing the stale as before. */
    for (uint16_t seq = 540; seq < 600; seq++) {
        assert_int_equal(spk_rtx_put(&s, seq, p, make_pkt(p, seq, 900)), 0);
        assert_int_equal(spk_rtx_get(&s, seq, 0, 0, &got, &len), 0);
        check_pkt(got, len, seq, 900);
    }
    assert_int_equal(spk_rtx_put(&s, 500, p, make_pkt(p, 500, 60)), SPK_ERANGE);
    assert_true(spk_rtx_contains(&s, 599));
    assert_false(spk_rtx_contains(&s, 540));
    spk_rtx_store_destroy(&s);
}

static void test_size_for(void **state)
{
    (void)state;
    uint32_t slots;
    size_t arena;
    /* 1.5 Mbit/s video in 160 packets/s, 500 ms: 93,750 + 1,500 bytes -> 96 KiB; 160 packets
     * -> 256 slots. */
    spk_rtx_size_for(187500, 160, 500, 1500, 16384, 512 * 1024, 32, 512, &slots, &arena);
    assert_int_equal(arena, 96 * 1024);
    assert_int_equal(slots, 256);
    /* Nothing measured yet, or a trickle: the minimum. */
    spk_rtx_size_for(0, 0, 500, 1500, 16384, 512 * 1024, 32, 512, &slots, &arena);
    assert_int_equal(arena, 16384);
    assert_int_equal(slots, 32);
    /* 8 Mbit/s in 1,000 packets/s: the maximum. */
    spk_rtx_size_for(1000000, 1000, 1000, 1500, 16384, 512 * 1024, 32, 512, &slots, &arena);
    assert_int_equal(arena, 512 * 1024);
    assert_int_equal(slots, 512);
    /* A power of two exactly: 2 * 64 = 128 slots. */
    spk_rtx_size_for(64000, 64, 1000, 1500, 16384, 512 * 1024, 32, 512, &slots, &arena);
    assert_int_equal(slots, 128);
    assert_int_equal(arena, 64 * 1024); /* 65,500 bytes */
}

static void test_store_throttle_and_reserve(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    assert_int_equal(spk_rtx_store_init(&s, 32, 16 * 1024, 1500), 0);
    uint8_t *buf = spk_rtx_reserve(&s);
    assert_non_null(buf);
    assert_ptr_equal(spk_rtx_reserve(&s), buf);
    make_pkt(buf, 7, 500);
    assert_int_equal(spk_rtx_commit(&s, 7, 500), 0);
    const uint8_t *got;
    size_t len;
    assert_int_equal(spk_rtx_get(&s, 7, 1000, 50, &got, &len), 0);
    assert_ptr_equal(got, buf); /* zero copy */
    assert_int_equal(spk_rtx_get(&s, 7, 1020, 50, &got, &len), SPK_ERATE);
    assert_int_equal(spk_rtx_get(&s, 7, 1050, 50, &got, &len), 0);
    assert_int_equal(spk_rtx_get(&s, 7, 1051, 0, &got, &len), 0);
    spk_rtx_stats_t st;
    spk_rtx_get_stats(&s, &st);
    assert_int_equal(st.throttled, 1);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.bytes_resent, 1500);
    /* A failed commit drops the reservation and leaves the store unchanged. */
    buf = spk_rtx_reserve(&s);
    assert_int_equal(spk_rtx_commit(&s, 8, 0), SPK_EINVAL);
    assert_false(spk_rtx_contains(&s, 8));
    assert_true(spk_rtx_contains(&s, 7));
    spk_rtx_store_destroy(&s);
    spk_rtx_store_t z;
    memset(&z, 0, sizeof(z));
    assert_null(spk_rtx_reserve(&z));
    assert_int_equal(spk_rtx_store_memory(&z), 0);
}

static void test_rtx_wrap(void **state)
{
    (void)state;
    /* Header with CSRC, extension, padding. */
    uint8_t orig[] = {0xb1, 0xe0, 0x12, 0x34, 0, 0,    0,    9, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0,
                      5,    0xbe, 0xde, 0,    1, 0x10, 0x7f, 0, 0,    'p',  'a',  'y',  0, 0, 3};
    uint8_t rtx[64];
    int n = spk_rtx_wrap(rtx, sizeof(rtx), orig, sizeof(orig), 97, 0x11111111, 500);
    assert_int_equal(n, 24 + 2 + 3);
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, rtx, (size_t)n, NULL, 0), 0);
    assert_false(v.padding);
    assert_true(v.marker);
    assert_int_equal(v.pt, 97);
    assert_int_equal(v.seq, 500);
    assert_int_equal(v.ssrc, 0x11111111);
    assert_int_equal(v.ts, 9);
    assert_int_equal(v.cc, 1);
    assert_int_equal(v.payload_len, 5);
    assert_int_equal(rtx[v.payload_off], 0x12);
    assert_int_equal(rtx[v.payload_off + 1], 0x34);
    assert_memory_equal(rtx + v.payload_off + 2, "pay", 3);
    assert_int_equal(spk_rtx_wrap(rtx, 28, orig, sizeof(orig), 97, 1, 1), SPK_ETOOBIG);
    assert_int_equal(spk_rtx_wrap(rtx, sizeof(rtx), orig, 11, 97, 1, 1), SPK_ETRUNC);
    /* Back to the original (without its padding). */
    n = spk_rtx_unwrap(rtx, (size_t)n, 96, 0xaabbccdd);
    assert_int_equal(n, 27);
    assert_int_equal(spk_rtp_parse(&v, rtx, (size_t)n, NULL, 0), 0);
    assert_int_equal(v.seq, 0x1234);
    assert_int_equal(v.pt, 96);
    assert_int_equal(v.ssrc, 0xaabbccdd);
    assert_true(v.marker);
    assert_memory_equal(rtx + v.payload_off, "pay", 3);
    assert_int_equal(rtx[0], 0x91); /* padding bit cleared, extension and CSRC kept */
    /* Padding-only probe: no OSN. */
    uint8_t probe[16] = {0xa0, 97, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4};
    assert_int_equal(spk_rtx_unwrap(probe, sizeof(probe), 96, 1), SPK_ETRUNC);
}

static void test_nack_gen(void **state)
{
    (void)state;
    spk_nack_gen_t g;
    spk_nack_gen_init(&g, 3, 50, 1000);
    uint16_t out[64];
    assert_false(spk_nack_gen_on_packet(&g, 65533, 0));
    assert_false(spk_nack_gen_on_packet(&g, 65534, 0));
    /* 65535, 0, 1 lost across the wrap; 3 lost. */
    assert_false(spk_nack_gen_on_packet(&g, 2, 10));
    assert_false(spk_nack_gen_on_packet(&g, 4, 10));
    assert_int_equal(spk_nack_gen_missing(&g), 4);
    assert_int_equal(spk_nack_gen_collect(&g, 10, out, 64), 4);
    assert_int_equal(out[0], 65535);
    assert_int_equal(out[1], 0);
    assert_int_equal(out[2], 1);
    assert_int_equal(out[3], 3);
    /* Not due again before retry_ms. */
    assert_int_equal(spk_nack_gen_collect(&g, 40, out, 64), 0);
    /* 0 arrives (retransmission); a duplicate does nothing. */
    assert_true(spk_nack_gen_on_packet(&g, 0, 45));
    assert_false(spk_nack_gen_on_packet(&g, 0, 45));
    assert_int_equal(spk_nack_gen_collect(&g, 60, out, 2), 2); /* cap */
    assert_int_equal(out[0], 65535);
    assert_int_equal(out[1], 1);
    assert_int_equal(spk_nack_gen_collect(&g, 60, out, 64), 1); /* 3, left out by the cap */
    assert_int_equal(out[0], 3);
    assert_int_equal(spk_nack_gen_collect(&g, 62, out, 64), 0);
    assert_false(spk_nack_gen_keyframe_needed(&g));
    /* Third and last try for each; then they are given up with a keyframe request. */
    assert_int_equal(spk_nack_gen_collect(&g, 110, out, 64), 3);
    assert_int_equal(spk_nack_gen_collect(&g, 200, out, 64), 0);
    assert_int_equal(spk_nack_gen_missing(&g), 0);
    assert_true(spk_nack_gen_keyframe_needed(&g));
    assert_false(spk_nack_gen_keyframe_needed(&g));
    spk_nack_stats_t st;
    spk_nack_gen_get_stats(&g, &st);
    assert_int_equal(st.recovered, 1);
    assert_int_equal(st.given_up, 3);
    assert_int_equal(st.requested, 4 + 2 + 1 + 3);
    /* A jump beyond the tracking window asks for a keyframe instead. */
    assert_false(spk_nack_gen_on_packet(&g, 2000, 400));
    assert_int_equal(spk_nack_gen_missing(&g), 0);
    assert_true(spk_nack_gen_keyframe_needed(&g));
    /* Age: with max_age 10, old holes are dropped as the stream moves on. */
    spk_nack_gen_init(&g, 10, 50, 10);
    spk_nack_gen_on_packet(&g, 100, 0);
    spk_nack_gen_on_packet(&g, 102, 0);
    for (uint16_t s = 103; s < 112; s++) {
        spk_nack_gen_on_packet(&g, s, 0);
    }
    assert_int_equal(spk_nack_gen_missing(&g), 1);
    spk_nack_gen_on_packet(&g, 112, 0);
    assert_int_equal(spk_nack_gen_missing(&g), 0);
    assert_true(spk_nack_gen_keyframe_needed(&g));
}

/* Put + get cost, for the README's figures. */
static void test_store_timing(void **state)
{
    (void)state;
    spk_rtx_store_t s;
    assert_int_equal(spk_rtx_store_init(&s, SPK_RTX_VIDEO_SLOTS, SPK_RTX_VIDEO_ARENA, 1500), 0);
    uint8_t p[1200];
    make_pkt(p, 0, sizeof(p));
    enum { N = 200000 };
    struct timespec a;
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint32_t i = 0; i < N; i++) {
        p[3] = (uint8_t)i;
        if (spk_rtx_put(&s, (uint16_t)i, p, sizeof(p)) != 0) {
            fail();
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double put_ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t *r = spk_rtx_reserve(&s);
        r[0] = 0x80;
        if (spk_rtx_commit(&s, (uint16_t)(N + i), sizeof(p)) != 0) {
            fail();
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double commit_ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    const uint8_t *got;
    size_t len;
    size_t hits = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint32_t i = 0; i < N; i++) {
        hits += spk_rtx_get(&s, (uint16_t)(2 * N - 1 - (i % 400)), 0, 0, &got, &len) == 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double get_ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    assert_int_equal(hits, N);
    printf("rtx store (512 slots, 512 KiB, 1200-byte packets): put %.0f ns, reserve+commit "
           "%.0f ns, get %.0f ns; %zu bytes\n",
           put_ns, commit_ns, get_ns, spk_rtx_store_memory(&s));
    spk_rtx_store_destroy(&s);
}

int run_rtx_tests(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_basic),    cmocka_unit_test(test_store_clear),
        cmocka_unit_test(test_store_eviction), cmocka_unit_test(test_store_throttle_and_reserve),
        cmocka_unit_test(test_rtx_wrap),       cmocka_unit_test(test_nack_gen),
        cmocka_unit_test(test_store_timing),   cmocka_unit_test(test_store_resize),
        cmocka_unit_test(test_size_for),
    };
    return cmocka_run_group_tests_name("rtx", tests, NULL, NULL);
}
