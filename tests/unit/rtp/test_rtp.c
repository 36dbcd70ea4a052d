/* Unit tests for spk/rtp.h: demultiplexing, RTP header view and header extensions, sequence
 * unwrapping, receiver statistics, RTCP parsing and builders (known answers from RFC 3550,
 * RFC 4585, RFC 5104, the REMB and transport-cc drafts), malformed packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rtp.h"
#include "spk/twcc.h"

int run_rtx_tests(void);

/* Opus packet as Chromium sends it: one-byte extensions audio level (id 1), transport-cc
 * (id 3), mid (id 4). */
static const uint8_t k_opus[] = {
    0x90, 0x6f, 0x12, 0x34, 0x00, 0x01, 0xe2, 0x40, 0x62, 0x12, 0x5a, 0xbb, /* header */
    0xbe, 0xde, 0x00, 0x03,                                                 /* 3 words */
    0x10, 0xaa,                                                             /* id 1 len 1 */
    0x31, 0x01, 0x02,                                                       /* id 3 len 2 */
    0x40, 0x30,                                                             /* id 4 "0" */
    0x00, 0x00, 0x00, 0x00, 0x00,                                           /* padding */
    0xfc, 0xff, 0xfe,                                                       /* payload */
};

static void test_classify(void **state)
{
    (void)state;
    uint8_t b[2] = {0, 1};
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_STUN);
    b[0] = 22;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_DTLS);
    b[0] = 17;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_ZRTP);
    b[0] = 64;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_TURN_CHANNEL);
    b[0] = 0x80;
    b[1] = 111;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_RTP);
    b[1] = 0x80 | 96; /* marker + PT 96 = 224: RTP */
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_RTP);
    b[1] = 200;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_RTCP);
    b[1] = 223;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_RTCP);
    b[1] = 192;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_RTCP);
    assert_int_equal(spk_pkt_classify(b, 1), SPK_PKT_RTP);
    b[0] = 200;
    assert_int_equal(spk_pkt_classify(b, 2), SPK_PKT_UNKNOWN);
    assert_int_equal(spk_pkt_classify(NULL, 0), SPK_PKT_UNKNOWN);
}

static void test_rtp_parse(void **state)
{
    (void)state;
    spk_rtp_view_t v;
    char why[128];
    assert_int_equal(spk_rtp_parse(&v, k_opus, sizeof(k_opus), why, sizeof(why)), 0);
    assert_false(v.padding);
    assert_true(v.extension);
    assert_false(v.marker);
    assert_int_equal(v.cc, 0);
    assert_int_equal(v.pt, 111);
    assert_int_equal(v.seq, 0x1234);
    assert_int_equal(v.ts, 123456);
    assert_int_equal(v.ssrc, 0x62125abb);
    assert_int_equal(v.ext_profile, 0xbede);
    assert_int_equal(v.ext_off, 16);
    assert_int_equal(v.ext_len, 12);
    assert_int_equal(v.payload_off, 28);
    assert_int_equal(v.payload_len, 3);

    spk_rtp_ext_t e;
    assert_int_equal(spk_rtp_ext_find(&v, 1, &e), 0);
    bool voice;
    uint8_t level;
    assert_true(spk_rtp_ext_read_audio_level(&e, &voice, &level));
    assert_true(voice);
    assert_int_equal(level, 0x2a);
    assert_int_equal(spk_rtp_ext_find(&v, 3, &e), 0);
    uint16_t tw;
    assert_true(spk_rtp_ext_read_u16(&e, &tw));
    assert_int_equal(tw, 0x0102);
    assert_int_equal(e.off, 19);
    assert_int_equal(spk_rtp_ext_find(&v, 4, &e), 0);
    assert_int_equal(e.len, 1);
    assert_int_equal(e.data[0], '0');
    assert_int_equal(spk_rtp_ext_find(&v, 5, &e), SPK_ENOTFOUND);
    uint32_t ast;
    assert_false(spk_rtp_ext_read_abs_send_time(&e, &ast));

    /* Rewrite in place. */
    uint8_t pkt[sizeof(k_opus)];
    memcpy(pkt, k_opus, sizeof(pkt));
    spk_rtp_set_ssrc(pkt, 0xdeadbeef);
    spk_rtp_set_seq(pkt, 7);
    spk_rtp_set_ts(pkt, 0xfffffff0);
    spk_rtp_set_pt(pkt, 0xff);
    spk_rtp_set_marker(pkt, true);
    assert_int_equal(spk_rtp_parse(&v, pkt, sizeof(pkt), NULL, 0), 0);
    assert_int_equal(v.ssrc, 0xdeadbeef);
    assert_int_equal(v.seq, 7);
    assert_int_equal(v.ts, 0xfffffff0);
    assert_int_equal(v.pt, 127);
    assert_true(v.marker);
    spk_rtp_set_pt(pkt, 96);
    assert_int_equal(pkt[1], 0x80 | 96);
    assert_int_equal(spk_rtp_ext_find(&v, 3, &e), 0);
    spk_rtp_ext_write_u16(pkt, &e, 0xbeef);
    assert_int_equal(pkt[19], 0xbe);
    assert_int_equal(pkt[20], 0xef);
}

static void test_rtp_csrc_padding(void **state)
{
    (void)state;
    /* Two CSRCs, padding of 4 bytes. */
    uint8_t p[] = {0xa2, 0x60, 0x00, 0x01, 0, 0, 0,    1, 0, 0, 0, 2, 0,
                   0,    0,    0x11, 0,    0, 0, 0x22, 9, 9, 0, 0, 0, 4};
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(p), NULL, 0), 0);
    assert_int_equal(v.cc, 2);
    assert_int_equal(spk_rtp_csrc(&v, 0), 0x11);
    assert_int_equal(spk_rtp_csrc(&v, 1), 0x22);
    assert_int_equal(spk_rtp_csrc(&v, 2), 0);
    assert_int_equal(v.payload_off, 20);
    assert_int_equal(v.payload_len, 2);
    assert_int_equal(v.pad_len, 4);
}

static void test_rtp_two_byte_ext(void **state)
{
    (void)state;
    uint8_t p[] = {0x90, 0x60, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 2, 0x10, 0x00, 0x00, 0x02,
                   /* id 7 len 0, padding, id 20 len 3 */
                   7, 0, 0, 20, 3, 1, 2, 3, 0xee};
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(p), NULL, 0), 0);
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_t e;
    spk_rtp_ext_iter_init(&it, &v);
    assert_int_equal(spk_rtp_ext_next(&it, &e), 0);
    assert_int_equal(e.id, 7);
    assert_int_equal(e.len, 0);
    assert_int_equal(spk_rtp_ext_next(&it, &e), 0);
    assert_int_equal(e.id, 20);
    assert_int_equal(e.len, 3);
    uint32_t ast;
    assert_true(spk_rtp_ext_read_abs_send_time(&e, &ast));
    assert_int_equal(ast, 0x010203);
    assert_int_equal(spk_rtp_ext_next(&it, &e), SPK_ENOTFOUND);
    assert_int_equal(v.payload_len, 1);

    /* Remap: 20 -> 5, 7 removed. */
    uint8_t map[256] = {0};
    map[20] = 5;
    assert_int_equal(spk_rtp_ext_remap(p, &v, map), 0);
    assert_int_equal(spk_rtp_ext_find(&v, 5, &e), 0);
    assert_int_equal(e.len, 3);
    assert_int_equal(spk_rtp_ext_find(&v, 7, &e), SPK_ENOTFOUND);
}

static void test_rtp_ext_remap_one_byte(void **state)
{
    (void)state;
    uint8_t p[sizeof(k_opus)];
    memcpy(p, k_opus, sizeof(p));
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(p), NULL, 0), 0);
    uint8_t map[256] = {0};
    map[1] = 9;
    map[3] = 2;
    map[4] = 15; /* not valid in the one-byte form: removed */
    assert_int_equal(spk_rtp_ext_remap(p, &v, map), 0);
    spk_rtp_ext_t e;
    assert_int_equal(spk_rtp_ext_find(&v, 9, &e), 0);
    assert_int_equal(e.data[0], 0xaa);
    assert_int_equal(spk_rtp_ext_find(&v, 2, &e), 0);
    assert_int_equal(e.len, 2);
    assert_int_equal(spk_rtp_ext_find(&v, 4, &e), SPK_ENOTFOUND);
    assert_int_equal(p[21], 0);
    assert_int_equal(p[22], 0);
    /* An id 15 element ends the walk. */
    memcpy(p, k_opus, sizeof(p));
    p[18] = 0xf1;
    assert_int_equal(spk_rtp_ext_find(&v, 4, &e), SPK_ENOTFOUND);
}

static void test_rtp_malformed(void **state)
{
    (void)state;
    spk_rtp_view_t v;
    char why[128];
    uint8_t p[64];
    memcpy(p, k_opus, sizeof(k_opus));
    assert_int_equal(spk_rtp_parse(&v, p, 11, why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "header needs 12"));
    assert_int_equal(spk_rtp_parse(&v, NULL, 0, NULL, 0), SPK_ETRUNC);
    /* CSRC count beyond the packet. */
    uint8_t c[16] = {0x8f, 0x60};
    assert_int_equal(spk_rtp_parse(&v, c, sizeof(c), why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "15 csrcs"));
    /* Extension length beyond the packet. */
    memcpy(p, k_opus, sizeof(k_opus));
    p[15] = 9;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "extension of 36 bytes"));
    /* Extension header cut off. */
    assert_int_equal(spk_rtp_parse(&v, k_opus, 14, why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "extension header"));
    /* Padding length beyond the payload, and zero. */
    memcpy(p, k_opus, sizeof(k_opus));
    p[0] |= 0x20;
    p[sizeof(k_opus) - 1] = 4;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "padding 4 beyond 3"));
    p[sizeof(k_opus) - 1] = 0;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "padding count 0"));
    p[sizeof(k_opus) - 1] = 3;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), why, sizeof(why)), 0);
    assert_int_equal(v.payload_len, 0);
    /* Version. */
    p[0] = 0x40;
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "version 1"));
    /* One-byte element running past the block. */
    memcpy(p, k_opus, sizeof(k_opus));
    p[14] = 0;
    p[15] = 1;
    p[16] = 0x1f; /* id 1, len 16 in a 4-byte block */
    assert_int_equal(spk_rtp_parse(&v, p, sizeof(k_opus), NULL, 0), 0);
    spk_rtp_ext_t e;
    assert_int_equal(spk_rtp_ext_find(&v, 4, &e), SPK_ETRUNC);
    uint8_t map[256] = {0};
    assert_int_equal(spk_rtp_ext_remap(p, &v, map), SPK_ETRUNC);
}

static void test_seq_unwrap(void **state)
{
    (void)state;
    spk_seq_unwrap_t u = {0};
    assert_int_equal(spk_seq_unwrap(&u, 65530), 65530);
    assert_int_equal(spk_seq_unwrap(&u, 65535), 65535);
    assert_int_equal(spk_seq_unwrap(&u, 2), 65538);
    assert_int_equal(spk_seq_unwrap(&u, 65534), 65534); /* late, before the wrap */
    assert_int_equal(spk_seq_unwrap(&u, 3), 65539);
    assert_int_equal(spk_seq_unwrap(&u, 0x8002), 65536 + 0x8002);
    spk_seq_unwrap_t w = {0};
    assert_int_equal(spk_seq_unwrap(&w, 0), 0);
    assert_int_equal(spk_seq_unwrap(&w, 65535), -1);
    int64_t last = 0;
    spk_seq_unwrap_t z = {0};
    for (uint32_t i = 0; i < 300000; i += 7) {
        last = spk_seq_unwrap(&z, (uint16_t)i);
    }
    assert_int_equal(last, 299999 - (299999 % 7));
}

static void test_rx_stats(void **state)
{
    (void)state;
    spk_rtp_rx_stats_t s;
    spk_rtp_rx_stats_init(&s, 0x1234, 90000, 65530);
    /* Probation: the first packet is not yet valid. */
    assert_false(spk_rtp_rx_stats_update(&s, 65530, 0, 0));
    assert_true(spk_rtp_rx_stats_update(&s, 65531, 3000, 33333));
    uint64_t t = 33333;
    uint32_t ts = 3000;
    /* 65532 .. 65535, 0 .. 15 with 65534 and 3 lost; constant transit. */
    for (uint32_t i = 65532; i < 65536 + 16; i++) {
        t += 33333;
        ts += 3000;
        if (i == 65534 || i == 65536 + 3) {
            continue;
        }
        assert_true(spk_rtp_rx_stats_update(&s, (uint16_t)i, ts, t));
    }
    spk_rtp_rx_stats_on_sr(&s, 0x0123456789abcdefull, t);
    spk_rtcp_report_t r;
    spk_rtp_rx_stats_report(&s, t + 500000, &r);
    assert_int_equal(r.ssrc, 0x1234);
    assert_int_equal(r.ext_highest_seq, 65536 + 15);
    assert_int_equal(r.cumulative_lost, 2);
    /* expected 21 (65531 .. 65551), lost 2: 2 * 256 / 21 = 24 */
    assert_int_equal(r.fraction_lost, 24);
    assert_true(r.jitter <= 1);
    assert_int_equal(r.lsr, 0x456789ab);
    assert_int_equal(r.dlsr, 32768);
    /* Next interval without loss. */
    for (uint32_t i = 16; i < 26; i++) {
        t += 33333;
        ts += 3000;
        assert_true(spk_rtp_rx_stats_update(&s, (uint16_t)i, ts, t));
    }
    spk_rtp_rx_stats_report(&s, t, &r);
    assert_int_equal(r.fraction_lost, 0);
    assert_int_equal(r.cumulative_lost, 2);
    /* Jitter: alternating 10 ms early/late. */
    for (uint32_t i = 26; i < 400; i++) {
        t += 33333 + ((i & 1) ? 10000 : -10000);
        ts += 3000;
        spk_rtp_rx_stats_update(&s, (uint16_t)i, ts, t);
        t -= ((i & 1) ? 10000 : -10000);
    }
    spk_rtp_rx_stats_report(&s, t, &r);
    /* |D| is 20 ms = 1800 RTP units every time: J converges to 1800. */
    assert_true(r.jitter >= 1700 && r.jitter <= 1800);
    /* A big jump is rejected once, then accepted as a restart. */
    assert_false(spk_rtp_rx_stats_update(&s, 30000, ts, t));
    assert_true(spk_rtp_rx_stats_update(&s, 30001, ts, t));
}

/* ---- RTCP ---- */

/* Chromium-style compound: SR with one report block + SDES CNAME. */
static const uint8_t k_sr_sdes[] = {
    0x81, 0xc8, 0x00, 0x0c, 0x62, 0x12, 0x5a, 0xbb, /* SR, RC 1, len 12 */
    0xe9, 0x6a, 0x3b, 0x1c, 0x80, 0x00, 0x00, 0x00, /* NTP */
    0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x01, 0x00, /* RTP ts, packets */
    0x00, 0x01, 0x00, 0x00,                         /* octets */
    0x11, 0x22, 0x33, 0x44, 0x05, 0xff, 0xff, 0xfe, /* block: ssrc, 5/256, cum -2 */
    0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, /* ext seq, jitter */
    0xab, 0xcd, 0xef, 0x01, 0x00, 0x01, 0x00, 0x00, /* lsr, dlsr */
    0x81, 0xca, 0x00, 0x04, 0x62, 0x12, 0x5a, 0xbb, /* SDES, len 4 */
    0x01, 0x08, 'H',  'k',  '3',  'o',  'N',  '9',  /* CNAME */
    'Z',  'p',  0x00, 0x00,                         /* null + pad */
};

static void test_rtcp_sr_sdes(void **state)
{
    (void)state;
    char why[128];
    assert_int_equal(spk_rtcp_validate(k_sr_sdes, sizeof(k_sr_sdes), why, sizeof(why)), 0);
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_iter_init(&it, k_sr_sdes, sizeof(k_sr_sdes));
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), 0);
    assert_int_equal(p.pt, SPK_RTCP_SR);
    spk_rtcp_sr_t sr;
    assert_int_equal(spk_rtcp_parse_sr_rr(&p, &sr, why, sizeof(why)), 0);
    assert_true(sr.is_sr);
    assert_int_equal(sr.ssrc, 0x62125abb);
    assert_int_equal(sr.ntp, 0xe96a3b1c80000000ull);
    assert_int_equal(sr.rtp_ts, 123456);
    assert_int_equal(sr.packet_count, 256);
    assert_int_equal(sr.octet_count, 65536);
    assert_int_equal(sr.n_reports, 1);
    spk_rtcp_report_t r;
    spk_rtcp_report_get(&sr, 0, &r);
    assert_int_equal(r.ssrc, 0x11223344);
    assert_int_equal(r.fraction_lost, 5);
    assert_int_equal(r.cumulative_lost, -2);
    assert_int_equal(r.ext_highest_seq, 0x10010);
    assert_int_equal(r.jitter, 32);
    assert_int_equal(r.lsr, 0xabcdef01);
    assert_int_equal(r.dlsr, 65536);
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), 0);
    assert_int_equal(p.pt, SPK_RTCP_SDES);
    spk_rtcp_sdes_iter_t si;
    spk_rtcp_sdes_item_t item;
    assert_int_equal(spk_rtcp_sdes_iter_init(&si, &p), 0);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), 0);
    assert_int_equal(item.ssrc, 0x62125abb);
    assert_int_equal(item.type, SPK_SDES_CNAME);
    assert_int_equal(item.len, 8);
    assert_memory_equal(item.data, "Hk3oN9Zp", 8);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), SPK_ENOTFOUND);
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), SPK_ENOTFOUND);

    /* The builders produce the same bytes. */
    uint8_t out[128];
    int n = spk_rtcp_build_sr(out, sizeof(out), 0x62125abb, 0xe96a3b1c80000000ull, 123456, 256,
                              65536, &r, 1);
    assert_int_equal(n, 52);
    assert_memory_equal(out, k_sr_sdes, 52);
    int m = spk_rtcp_build_sdes_cname(out + n, sizeof(out) - (size_t)n, 0x62125abb, "Hk3oN9Zp");
    assert_int_equal(m, 20);
    assert_memory_equal(out, k_sr_sdes, sizeof(k_sr_sdes));
    assert_int_equal(spk_rtcp_build_sr(out, 51, 1, 0, 0, 0, 0, &r, 1), SPK_ETOOBIG);
    assert_int_equal(spk_rtcp_build_sdes_cname(out, sizeof(out), 1, ""), SPK_EINVAL);
}

static void test_rtcp_rr_bye_app(void **state)
{
    (void)state;
    spk_rtcp_report_t reps[2] = {{.ssrc = 1,
                                  .fraction_lost = 2,
                                  .cumulative_lost = 0x7fffff,
                                  .ext_highest_seq = 4,
                                  .jitter = 5,
                                  .lsr = 6,
                                  .dlsr = 7},
                                 {.ssrc = 8, .cumulative_lost = -0x800000}};
    uint8_t out[256];
    int n = spk_rtcp_build_rr(out, sizeof(out), 0xcafe, reps, 2);
    assert_int_equal(n, 56);
    assert_int_equal(out[0], 0x82);
    assert_int_equal(out[1], 201);
    assert_int_equal(out[3], 13);
    uint32_t ssrcs[2] = {0xcafe, 0xbabe};
    int b = spk_rtcp_build_bye(out + n, sizeof(out) - (size_t)n, ssrcs, 2);
    assert_int_equal(b, 12);
    /* APP with name "spk " and 4 data bytes, hand-written. */
    const uint8_t app[] = {0x83, 204, 0, 3, 0, 0, 0, 9, 's', 'p', 'k', ' ', 1, 2, 3, 4};
    memcpy(out + n + b, app, sizeof(app));
    size_t total = (size_t)(n + b) + sizeof(app);
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_iter_init(&it, out, total);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    spk_rtcp_sr_t rr;
    assert_int_equal(spk_rtcp_parse_sr_rr(&p, &rr, NULL, 0), 0);
    assert_false(rr.is_sr);
    assert_int_equal(rr.ssrc, 0xcafe);
    spk_rtcp_report_t r;
    spk_rtcp_report_get(&rr, 0, &r);
    assert_memory_equal(&r, &reps[0], sizeof(r));
    spk_rtcp_report_get(&rr, 1, &r);
    assert_int_equal(r.cumulative_lost, -0x800000);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    spk_rtcp_bye_t bye;
    assert_int_equal(spk_rtcp_parse_bye(&p, &bye, NULL, 0), 0);
    assert_int_equal(bye.n_ssrcs, 2);
    assert_int_equal(spk_rtcp_ssrc_at(bye.ssrcs, 1), 0xbabe);
    assert_null(bye.reason);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    spk_rtcp_app_t a;
    assert_int_equal(spk_rtcp_parse_app(&p, &a, NULL, 0), 0);
    assert_int_equal(a.subtype, 3);
    assert_int_equal(a.ssrc, 9);
    assert_string_equal(a.name, "spk ");
    assert_int_equal(a.len, 4);
    assert_int_equal(spk_rtcp_parse_bye(&p, &bye, NULL, 0), SPK_EINVAL);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), SPK_ENOTFOUND);

    /* BYE with a reason. */
    const uint8_t bye2[] = {0x81, 203, 0, 3, 0, 0, 0, 1, 5, 'l', 'e', 'f', 't', '!', 0, 0};
    spk_rtcp_iter_init(&it, bye2, sizeof(bye2));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_bye(&p, &bye, NULL, 0), 0);
    assert_int_equal(bye.reason_len, 5);
    assert_memory_equal(bye.reason, "left!", 5);
}

/* RFC 4585 6.2.1: lost 100, 102 and 116 -> PID 100, BLP bits 1 and 15. */
static const uint8_t k_nack[] = {0x81, 0xcd, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,
                                 0x00, 0x00, 0x00, 0x02, 0x00, 0x64, 0x80, 0x02};

static void test_rtcp_nack(void **state)
{
    (void)state;
    uint16_t lost[] = {100, 102, 116};
    uint8_t out[64];
    assert_int_equal(spk_rtcp_build_nack(out, sizeof(out), 1, 2, lost, 3), 16);
    assert_memory_equal(out, k_nack, sizeof(k_nack));
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb;
    spk_rtcp_nack_iter_t ni;
    spk_rtcp_iter_init(&it, k_nack, sizeof(k_nack));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(fb.fmt, SPK_RTPFB_NACK);
    assert_int_equal(fb.sender_ssrc, 1);
    assert_int_equal(fb.media_ssrc, 2);
    assert_int_equal(spk_rtcp_nack_iter_init(&ni, &fb, NULL, 0), 0);
    uint16_t seq;
    uint16_t got[40];
    size_t n = 0;
    while (spk_rtcp_nack_next(&ni, &seq)) {
        got[n++] = seq;
    }
    assert_int_equal(n, 3);
    assert_memory_equal(got, lost, sizeof(lost));

    /* Across the wrap, with duplicates, two items. */
    uint16_t many[] = {65534, 65534, 65535, 0, 14, 15, 40};
    int len = spk_rtcp_build_nack(out, sizeof(out), 1, 2, many, 7);
    assert_int_equal(len, 24); /* items at 65534 (+65535, 0, 14), 15 and 40 */
    spk_rtcp_iter_init(&it, out, (size_t)len);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_nack_iter_init(&ni, &fb, NULL, 0), 0);
    n = 0;
    while (spk_rtcp_nack_next(&ni, &seq)) {
        got[n++] = seq;
    }
    uint16_t want[] = {65534, 65535, 0, 14, 15, 40};
    assert_int_equal(n, 6);
    assert_memory_equal(got, want, sizeof(want));
    assert_int_equal(spk_rtcp_build_nack(out, 23, 1, 2, many, 7), SPK_ETOOBIG);
    assert_int_equal(spk_rtcp_build_nack(out, sizeof(out), 1, 2, many, 0), SPK_EINVAL);
}

static void test_rtcp_pli_fir(void **state)
{
    (void)state;
    /* RFC 4585 6.3.1 PLI; RFC 5104 4.3.1 FIR (media source 0, target in the FCI). */
    const uint8_t pli[] = {0x81, 0xce, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2};
    const uint8_t fir[] = {0x84, 0xce, 0x00, 0x04, 0,    0,    0, 1, 0, 0,
                           0,    0,    0xaa, 0xbb, 0xcc, 0xdd, 7, 0, 0, 0};
    uint8_t out[32];
    assert_int_equal(spk_rtcp_build_pli(out, sizeof(out), 1, 2), 12);
    assert_memory_equal(out, pli, sizeof(pli));
    assert_int_equal(spk_rtcp_build_pli(out, 11, 1, 2), SPK_ETOOBIG);
    assert_int_equal(spk_rtcp_build_fir(out, sizeof(out), 1, 0xaabbccdd, 7), 20);
    assert_memory_equal(out, fir, sizeof(fir));
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb;
    spk_rtcp_iter_init(&it, fir, sizeof(fir));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(fb.pt, SPK_RTCP_PSFB);
    assert_int_equal(fb.fmt, SPK_PSFB_FIR);
    size_t n;
    assert_int_equal(spk_rtcp_fir_count(&fb, &n, NULL, 0), 0);
    assert_int_equal(n, 1);
    uint32_t ssrc;
    uint8_t sn;
    spk_rtcp_fir_get(&fb, 0, &ssrc, &sn);
    assert_int_equal(ssrc, 0xaabbccdd);
    assert_int_equal(sn, 7);
    spk_rtcp_iter_init(&it, pli, sizeof(pli));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(fb.fmt, SPK_PSFB_PLI);
    assert_int_equal(fb.fci_len, 0);
    char why[128];
    assert_int_equal(spk_rtcp_fir_count(&fb, &n, why, sizeof(why)), SPK_EINVAL);
    fb.fmt = SPK_PSFB_FIR;
    assert_int_equal(spk_rtcp_fir_count(&fb, &n, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "FIR FCI of 0"));
}

/* REMB for 1 Mbit/s: 1000000 = 250000 << 2. */
static const uint8_t k_remb[] = {0x8f, 0xce, 0x00, 0x05, 0,    0,    0,    1,
                                 0,    0,    0,    0,    'R',  'E',  'M',  'B',
                                 0x01, 0x0b, 0xd0, 0x90, 0x11, 0x22, 0x33, 0x44};

static void test_rtcp_remb(void **state)
{
    (void)state;
    uint8_t out[64];
    uint32_t ssrc = 0x11223344;
    assert_int_equal(spk_rtcp_build_remb(out, sizeof(out), 1, 1000000, &ssrc, 1), 24);
    assert_memory_equal(out, k_remb, sizeof(k_remb));
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb;
    spk_rtcp_remb_t remb;
    char why[128];
    spk_rtcp_iter_init(&it, k_remb, sizeof(k_remb));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, why, sizeof(why)), 0);
    assert_int_equal(remb.bitrate_bps, 1000000);
    assert_int_equal(remb.n_ssrcs, 1);
    assert_int_equal(spk_rtcp_ssrc_at(remb.ssrcs, 0), 0x11223344);
    /* Wrong num ssrc. */
    uint8_t bad[sizeof(k_remb)];
    memcpy(bad, k_remb, sizeof(bad));
    bad[16] = 2;
    spk_rtcp_iter_init(&it, bad, sizeof(bad));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "num ssrc 2"));
    bad[16] = 0;
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, why, sizeof(why)), SPK_EDECODE);
    /* Not REMB. */
    bad[12] = 'X';
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, why, sizeof(why)), SPK_ENOTFOUND);
    /* Saturation: mantissa 0x3ffff << 63. */
    memcpy(bad, k_remb, sizeof(bad));
    bad[17] = 0xff;
    bad[18] = 0xff;
    bad[19] = 0xff;
    spk_rtcp_iter_init(&it, bad, sizeof(bad));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, NULL, 0), 0);
    assert_true(remb.bitrate_bps == UINT64_MAX);
    /* Large bitrate round trip loses only low bits. */
    assert_int_equal(spk_rtcp_build_remb(out, sizeof(out), 1, 123456789012ull, &ssrc, 1), 24);
    spk_rtcp_iter_init(&it, out, 24);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_remb(&fb, &remb, NULL, 0), 0);
    assert_true(remb.bitrate_bps <= 123456789012ull &&
                remb.bitrate_bps > 123456789012ull - (123456789012ull >> 17));
}

static void twcc_roundtrip(const spk_twcc_recv_t *in, size_t n, size_t want_consumed)
{
    uint8_t out[1500];
    size_t consumed = 0;
    int len = spk_rtcp_build_twcc(out, sizeof(out), 1, 2, 9, in, n, &consumed);
    assert_true(len > 0);
    assert_int_equal(len % 4, 0);
    assert_int_equal(consumed, want_consumed);
    char why[128];
    assert_int_equal(spk_rtcp_validate(out, (size_t)len, why, sizeof(why)), 0);
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb;
    spk_rtcp_twcc_t tw;
    spk_rtcp_iter_init(&it, out, (size_t)len);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_twcc(&fb, &tw, NULL, 0), 0);
    assert_int_equal(tw.base_seq, (uint16_t)in[0].seq);
    assert_int_equal(tw.fb_count, 9);
    assert_int_equal(tw.status_count, in[consumed - 1].seq - in[0].seq + 1);
    static spk_twcc_status_t st[70000];
    int ns = spk_rtcp_twcc_decode(&tw, st, 70000);
    assert_int_equal(ns, tw.status_count);
    size_t k = 0;
    for (int i = 0; i < ns; i++) {
        if (k < consumed && (uint16_t)in[k].seq == st[i].seq) {
            assert_true(st[i].received);
            /* 250 us resolution, floor */
            int64_t want = in[k].arrival_us - (in[k].arrival_us % 250 + 250) % 250;
            assert_int_equal(st[i].arrival_us, want);
            k++;
        } else {
            assert_false(st[i].received);
        }
    }
    assert_int_equal(k, consumed);
}

static void test_rtcp_twcc(void **state)
{
    (void)state;
    /* Consecutive, small deltas. */
    spk_twcc_recv_t a[40];
    for (int i = 0; i < 40; i++) {
        a[i].seq = 65520 + i;
        a[i].arrival_us = 1000000 + i * 5000;
    }
    twcc_roundtrip(a, 40, 40);
    /* Gaps (run-length of losses), reordering-like negative delta, large delta. */
    spk_twcc_recv_t b[] = {{10, 2000000}, {11, 2000250}, {30, 2001000}, {31, 1999000},
                           {32, 2500000}, {33, 2500100}, {34, 2500300}, {35, 2500600},
                           {36, 2500700}, {37, 2500800}, {38, 2500900}, {39, 2501000},
                           {40, 2501100}, {41, 2501200}};
    twcc_roundtrip(b, sizeof(b) / sizeof(b[0]), sizeof(b) / sizeof(b[0]));
    /* A delta beyond 16 bits (> 8.19 s) stops the feedback. */
    spk_twcc_recv_t c[] = {{1, 0}, {2, 1000}, {3, 20000000}};
    twcc_roundtrip(c, 3, 2);
    /* Known answer: base 5, two packets 5 and 7 (6 lost), ref time 1 (64 ms), deltas 0 and 4
     * (1 ms): one two-bit vector chunk 0b11 01 00 01 00... = 0xd100, then deltas 00 04. */
    spk_twcc_recv_t d[] = {{5, 64000}, {7, 65000}};
    uint8_t out[64];
    size_t used;
    int len = spk_rtcp_build_twcc(out, sizeof(out), 0xa, 0xb, 3, d, 2, &used);
    const uint8_t want[] = {0x8f, 0xcd, 0x00, 0x05, 0, 0, 0, 0x0a, 0,    0,    0,    0x0b,
                            0x00, 0x05, 0x00, 0x03, 0, 0, 1, 3,    0xd1, 0x00, 0x00, 0x04};
    assert_int_equal(len, 24);
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(spk_rtcp_build_twcc(out, 16, 0xa, 0xb, 3, d, 2, &used), SPK_ETOOBIG);
    spk_twcc_recv_t e[] = {{7, 0}, {5, 0}};
    assert_int_equal(spk_rtcp_build_twcc(out, sizeof(out), 1, 2, 0, e, 2, &used), SPK_EINVAL);
}

/* Decodes a feedback built by the recorder into st; returns the status count. */
static int decode_fb(const uint8_t *buf, int len, spk_rtcp_twcc_t *tw, spk_twcc_status_t *st,
                     size_t cap)
{
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb;
    assert_true(len > 0);
    spk_rtcp_iter_init(&it, buf, (size_t)len);
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_twcc(&fb, tw, NULL, 0), 0);
    return spk_rtcp_twcc_decode(tw, st, cap);
}

static void test_twcc_recorder(void **state)
{
    (void)state;
    static spk_twcc_rx_t r;
    spk_twcc_rx_init(&r);
    uint8_t out[1200];
    spk_rtcp_twcc_t tw;
    spk_twcc_status_t st[2048];
    assert_int_equal(spk_twcc_rx_build(&r, out, sizeof(out), 1, 2), 0);
    /* 65530 .. 65539 (wrapping), 65533 lost, 65535 after 0. */
    const uint16_t order[] = {65530, 65531, 65532, 65534, 0, 65535, 1, 2, 3};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        assert_true(spk_twcc_rx_on_packet(&r, order[i], 1000000 + (int64_t)i * 1000));
    }
    assert_false(spk_twcc_rx_on_packet(&r, 2, 1));
    assert_int_equal(spk_twcc_rx_pending(&r), 9);
    int len = spk_twcc_rx_build(&r, out, sizeof(out), 1, 2);
    int n = decode_fb(out, len, &tw, st, 2048);
    assert_int_equal(tw.base_seq, 65530);
    assert_int_equal(n, 10);
    assert_int_equal(tw.fb_count, 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(st[i].received, i != 3);
    }
    assert_int_equal(st[5].arrival_us, 1005000); /* 65535 arrived after 0: negative delta */
    assert_int_equal(st[6].arrival_us, 1004000);
    assert_int_equal(spk_twcc_rx_build(&r, out, sizeof(out), 1, 2), 0);
    /* 4 and 5 lost: the next feedback starts at 4. A late 65533 is not recorded. */
    assert_false(spk_twcc_rx_on_packet(&r, 65533, 1010000));
    assert_true(spk_twcc_rx_on_packet(&r, 6, 1020000));
    assert_true(spk_twcc_rx_on_packet(&r, 7, 1021000));
    len = spk_twcc_rx_build(&r, out, sizeof(out), 1, 2);
    n = decode_fb(out, len, &tw, st, 2048);
    assert_int_equal(tw.base_seq, 4);
    assert_int_equal(tw.fb_count, 1);
    assert_int_equal(n, 4);
    assert_false(st[0].received);
    assert_false(st[1].received);
    assert_true(st[2].received);
    assert_int_equal(st[3].arrival_us, 1021000);
    /* More than the pending limit: the oldest are dropped, the rest fit several feedbacks. */
    for (int i = 0; i < SPK_TWCC_MAX_PENDING + 100; i++) {
        spk_twcc_rx_on_packet(&r, (uint16_t)(8 + i), 2000000 + (int64_t)i * 100);
    }
    assert_int_equal(spk_twcc_rx_pending(&r), SPK_TWCC_MAX_PENDING);
    size_t total = 0;
    int rounds = 0;
    while ((len = spk_twcc_rx_build(&r, out, 300, 1, 2)) > 0) {
        n = decode_fb(out, len, &tw, st, 2048);
        total += (size_t)n;
        rounds++;
    }
    assert_int_equal(len, 0);
    assert_int_equal(total, SPK_TWCC_MAX_PENDING);
    assert_true(rounds > 1);
    spk_twcc_stats_t s;
    spk_twcc_rx_get_stats(&r, &s);
    assert_int_equal(s.dropped, 100);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.late, 1);
    assert_int_equal(s.feedbacks, 2 + (uint64_t)rounds);
    assert_int_equal(spk_twcc_rx_build(&r, out, 10, 1, 2), 0);
    spk_twcc_rx_on_packet(&r, 5000, 0);
    assert_int_equal(spk_twcc_rx_build(&r, out, 10, 1, 2), SPK_ETOOBIG);
}

static void test_rtcp_malformed(void **state)
{
    (void)state;
    char why[128];
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    /* Length field beyond the buffer. */
    uint8_t rr[8] = {0x80, 201, 0x00, 0x02, 0, 0, 0, 1};
    spk_rtcp_iter_init(&it, rr, sizeof(rr));
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "length 12 beyond 8"));
    /* Zero length: an RR needs its SSRC. */
    rr[3] = 0;
    spk_rtcp_iter_init(&it, rr, sizeof(rr));
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "RR count 0 needs 4 bytes, has 0"));
    /* Report count beyond the packet. */
    uint8_t rr2[8] = {0x81, 201, 0x00, 0x01, 0, 0, 0, 1};
    spk_rtcp_iter_init(&it, rr2, sizeof(rr2));
    assert_int_equal(spk_rtcp_next(&it, &p, why, sizeof(why)), SPK_ETRUNC);
    /* Trailing bytes. */
    uint8_t pli[14] = {0x81, 0xce, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0};
    assert_int_equal(spk_rtcp_validate(pli, sizeof(pli), why, sizeof(why)), SPK_ETRUNC);
    assert_non_null(strstr(why, "2 trailing"));
    assert_int_equal(spk_rtcp_validate(pli, 12, why, sizeof(why)), 0);
    assert_int_equal(spk_rtcp_validate(pli, 0, why, sizeof(why)), SPK_ETRUNC);
    /* Version, packet type. */
    pli[0] = 0x41;
    assert_int_equal(spk_rtcp_validate(pli, 12, why, sizeof(why)), SPK_EDECODE);
    pli[0] = 0x81;
    pli[1] = 190;
    assert_int_equal(spk_rtcp_validate(pli, 12, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "packet type 190"));
    /* Padding: count 0 and beyond the packet. */
    uint8_t pad[12] = {0xa0, 201, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(spk_rtcp_validate(pad, sizeof(pad), why, sizeof(why)), SPK_EDECODE);
    pad[11] = 9;
    assert_int_equal(spk_rtcp_validate(pad, sizeof(pad), why, sizeof(why)), SPK_EDECODE);
    pad[11] = 4;
    assert_int_equal(spk_rtcp_validate(pad, sizeof(pad), why, sizeof(why)), 0);
    /* NACK FCI not a multiple of 4. */
    uint8_t nack[16];
    memcpy(nack, k_nack, sizeof(nack));
    nack[0] |= 0x20;
    nack[15] = 2;
    spk_rtcp_fb_t fb;
    spk_rtcp_nack_iter_t ni;
    spk_rtcp_iter_init(&it, nack, sizeof(nack));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_nack_iter_init(&ni, &fb, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "NACK FCI of 2"));
    /* SDES chunk without null item; item beyond the chunk. */
    const uint8_t sdes[] = {0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, 'a', 'b'};
    spk_rtcp_iter_init(&it, sdes, sizeof(sdes));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    spk_rtcp_sdes_iter_t si;
    spk_rtcp_sdes_item_t item;
    assert_int_equal(spk_rtcp_sdes_iter_init(&si, &p), 0);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), 0);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), SPK_ETRUNC);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), SPK_ENOTFOUND);
    const uint8_t sdes2[] = {0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 'a', 'b'};
    spk_rtcp_iter_init(&it, sdes2, sizeof(sdes2));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_sdes_iter_init(&si, &p), 0);
    assert_int_equal(spk_rtcp_sdes_next(&si, &item), SPK_ETRUNC);
    /* BYE reason beyond the packet. */
    const uint8_t bye[] = {0x81, 203, 0, 2, 0, 0, 0, 1, 9, 'x', 'y', 'z'};
    spk_rtcp_bye_t b;
    spk_rtcp_iter_init(&it, bye, sizeof(bye));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_bye(&p, &b, why, sizeof(why)), SPK_ETRUNC);
    /* transport-cc: chunks claim more statuses than are present. */
    const uint8_t tw[] = {0x8f, 205, 0, 5, 0, 0, 0, 1, 0,    0,    0, 2,
                          0,    1,   0, 9, 0, 0, 0, 0, 0xd5, 0x55, 0, 0};
    spk_rtcp_twcc_t t;
    spk_twcc_status_t st[16];
    spk_rtcp_iter_init(&it, tw, sizeof(tw));
    assert_int_equal(spk_rtcp_next(&it, &p, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_fb(&p, &fb, NULL, 0), 0);
    assert_int_equal(spk_rtcp_parse_twcc(&fb, &t, NULL, 0), 0);
    assert_int_equal(spk_rtcp_twcc_decode(&t, st, 16), SPK_ETRUNC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_rtp_parse),
        cmocka_unit_test(test_rtp_csrc_padding),
        cmocka_unit_test(test_rtp_two_byte_ext),
        cmocka_unit_test(test_rtp_ext_remap_one_byte),
        cmocka_unit_test(test_rtp_malformed),
        cmocka_unit_test(test_seq_unwrap),
        cmocka_unit_test(test_rx_stats),
        cmocka_unit_test(test_rtcp_sr_sdes),
        cmocka_unit_test(test_rtcp_rr_bye_app),
        cmocka_unit_test(test_rtcp_nack),
        cmocka_unit_test(test_rtcp_pli_fir),
        cmocka_unit_test(test_rtcp_remb),
        cmocka_unit_test(test_rtcp_twcc),
        cmocka_unit_test(test_twcc_recorder),
        cmocka_unit_test(test_rtcp_malformed),
    };
    int rc = cmocka_run_group_tests_name("rtp", tests, NULL, NULL);
    return rc | run_rtx_tests();
}
