/* Unit tests for spk/sdp.h: browser offers (Chromium, Firefox, Safari), round trips, codec
 * selection, the relay's answers and offers, candidates, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rtp.h"
#include "spk/sdp.h"

#ifndef SPK_SDP_FIXTURES
#define SPK_SDP_FIXTURES "."
#endif

#define OUT_CAP 65536

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", SPK_SDP_FIXTURES, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(n > 0);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static spk_sdp_t *parse_file(const char *name)
{
    size_t len;
    char *text = load(name, &len);
    spk_sdp_t *s = malloc(sizeof(*s));
    assert_non_null(s);
    char why[256] = "";
    int rc = spk_sdp_parse(s, text, len, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", name, why);
    }
    assert_int_equal(rc, 0);
    free(text);
    return s;
}

/* Parses text and returns the error, with the reason in why. */
static int parse_text(const char *text, char *why, size_t why_len)
{
    spk_sdp_t *s = malloc(sizeof(*s));
    assert_non_null(s);
    int rc = spk_sdp_parse(s, text, strlen(text), why, why_len);
    free(s);
    return rc;
}

static const uint8_t k_fp[32] = {0x4A, 0xAD, 0xB9, 0xB1, 0x3F, 0x82, 0x18, 0x3B, 0x54, 0x02, 0x12,
                                 0xDF, 0x3E, 0x5D, 0x49, 0x6B, 0x19, 0xE5, 0x7C, 0xAB, 0x0F, 0xDE,
                                 0xF6, 0x88, 0xC6, 0x2D, 0x52, 0x3E, 0x1E, 0x7E, 0x63, 0xB0};

static void test_chromium_offer(void **state)
{
    (void)state;
    spk_sdp_t *s = parse_file("chromium_offer.sdp");
    assert_int_equal(s->session_id, 4611731400430051336ull);
    assert_int_equal(s->session_version, 2);
    assert_int_equal(s->n_media, 2);
    assert_int_equal(s->n_bundle, 2);
    assert_string_equal(s->bundle[0], "0");
    assert_string_equal(s->bundle[1], "1");
    assert_true(s->extmap_allow_mixed);
    assert_true(s->msid_semantic);
    assert_false(s->ice_lite);

    const spk_sdp_media_t *a = &s->media[0];
    assert_int_equal(a->kind, SPK_SDP_KIND_AUDIO);
    assert_int_equal(a->port, 9);
    assert_string_equal(a->proto, "UDP/TLS/RTP/SAVPF");
    assert_string_equal(a->mid, "0");
    assert_int_equal(a->dir, SPK_SDP_SENDRECV);
    assert_true(a->rtcp_mux);
    assert_true(a->rtcp_rsize);
    assert_string_equal(a->ice.ufrag, "Xk2p");
    assert_string_equal(a->ice.pwd, "8sJ3kLmN0pQrStUvWxYz1a2b");
    assert_true(a->ice.trickle);
    assert_int_equal(a->fingerprint.hash, SPK_SDP_HASH_SHA256);
    assert_int_equal(a->fingerprint.len, 32);
    assert_memory_equal(a->fingerprint.value, k_fp, 32);
    assert_int_equal(a->setup, SPK_SDP_SETUP_ACTPASS);
    assert_int_equal(a->n_codecs, 8);
    assert_int_equal(a->codecs[0].pt, 111);
    assert_int_equal(a->codecs[0].codec, SPK_CODEC_OPUS);
    assert_int_equal(a->codecs[0].clock_rate, 48000);
    assert_int_equal(a->codecs[0].channels, 2);
    assert_string_equal(a->codecs[0].fmtp, "minptime=10;useinbandfec=1");
    assert_int_equal(a->codecs[0].fb, SPK_SDP_FB_TRANSPORT_CC);
    assert_int_equal(a->codecs[1].codec, SPK_CODEC_RED);
    assert_int_equal(a->codecs[3].codec, SPK_CODEC_PCMU);
    assert_int_equal(a->codecs[7].codec, SPK_CODEC_TELEPHONE_EVENT);
    assert_int_equal(a->n_extmaps, 4);
    assert_int_equal(a->extmaps[0].ext, SPK_EXT_AUDIO_LEVEL);
    assert_int_equal(spk_sdp_find_extmap(a, SPK_EXT_MID)->id, 4);
    assert_int_equal(spk_sdp_find_extmap(a, SPK_EXT_TRANSPORT_CC)->id, 3);
    assert_int_equal(a->n_ssrcs, 1);
    assert_int_equal(a->ssrcs[0].ssrc, 1645384123u);
    assert_string_equal(a->ssrcs[0].cname, "Hk3oN9Zp1qR2sT4u");
    assert_string_equal(a->msid_stream, "f7b9c2e4-1d3a-4c5b-8e6f-0a1b2c3d4e5f");
    assert_string_equal(a->msid_track, "9a8b7c6d-5e4f-4a3b-2c1d-0e1f2a3b4c5d");

    const spk_sdp_media_t *v = &s->media[1];
    assert_int_equal(v->kind, SPK_SDP_KIND_VIDEO);
    assert_int_equal(v->n_codecs, 25);
    assert_int_equal(v->n_dropped, 0);
    assert_int_equal(v->n_extmaps, 11);
    const spk_sdp_codec_t *vp8 = spk_sdp_find_codec(v, 96);
    assert_non_null(vp8);
    assert_int_equal(vp8->codec, SPK_CODEC_VP8);
    assert_int_equal(vp8->fb, SPK_SDP_FB_NACK | SPK_SDP_FB_NACK_PLI | SPK_SDP_FB_CCM_FIR |
                                  SPK_SDP_FB_GOOG_REMB | SPK_SDP_FB_TRANSPORT_CC);
    assert_int_equal(spk_sdp_find_rtx(v, 96)->pt, 97);
    const spk_sdp_codec_t *h = spk_sdp_find_codec(v, 106);
    assert_int_equal(h->codec, SPK_CODEC_H264);
    assert_int_equal(h->profile_level_id, 0x42e01f);
    assert_int_equal(h->packetization_mode, 1);
    assert_true(h->level_asymmetry_allowed);
    assert_int_equal(spk_sdp_find_codec(v, 39)->packetization_mode, 0);
    assert_int_equal(spk_sdp_find_codec(v, 118)->codec, SPK_CODEC_ULPFEC);
    assert_int_equal(spk_sdp_find_codec(v, 117)->apt, 116);
    assert_int_equal(v->n_ssrc_groups, 1);
    assert_string_equal(v->ssrc_groups[0].semantics, "FID");
    assert_int_equal(v->ssrc_groups[0].n, 2);
    assert_int_equal(v->ssrc_groups[0].ssrcs[0], 3735928559u);
    assert_int_equal(v->ssrc_groups[0].ssrcs[1], 2882400001u);
    assert_int_equal(v->n_ssrcs, 2);
    assert_string_equal(v->ssrcs[1].msid_track, "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e");
    free(s);
}

static void test_firefox_offer(void **state)
{
    (void)state;
    spk_sdp_t *s = parse_file("firefox_offer.sdp");
    assert_int_equal(s->session_id, 5403785129785364213ull);
    assert_int_equal(s->fingerprint.hash, SPK_SDP_HASH_SHA256);
    assert_true(s->ice.trickle);
    assert_string_equal(s->msid_semantic_ids, "*");
    const spk_sdp_media_t *a = &s->media[0];
    /* Fingerprint only at session level: the effective one comes from there. */
    assert_int_equal(a->fingerprint.hash, SPK_SDP_HASH_NONE);
    assert_ptr_equal(spk_sdp_media_fingerprint(s, a), &s->fingerprint);
    assert_ptr_equal(spk_sdp_media_ice(s, a), &a->ice);
    assert_string_equal(a->ice.ufrag, "c1f2a3b4");
    assert_int_equal(spk_sdp_media_setup(s, a), SPK_SDP_SETUP_ACTPASS);
    assert_int_equal(a->n_candidates, 3);
    assert_true(a->end_of_candidates);
    assert_int_equal(a->candidates[0].transport, SPK_CAND_UDP);
    assert_int_equal(a->candidates[0].priority, 2122252543u);
    assert_string_equal(a->candidates[0].addr, "192.168.1.23");
    assert_int_equal(a->candidates[0].port, 51324);
    assert_int_equal(a->candidates[1].transport, SPK_CAND_TCP);
    assert_int_equal(a->candidates[1].tcptype, SPK_CAND_TCP_ACTIVE);
    assert_int_equal(a->candidates[2].type, SPK_CAND_SRFLX);
    assert_string_equal(a->candidates[2].raddr, "192.168.1.23");
    assert_int_equal(a->extmaps[1].ext, SPK_EXT_CSRC_AUDIO_LEVEL);
    assert_true(a->extmaps[1].has_dir);
    assert_int_equal(a->extmaps[1].dir, SPK_SDP_RECVONLY);
    assert_int_equal(spk_sdp_find_codec(a, 9)->channels, 1);
    assert_string_equal(spk_sdp_find_codec(a, 101)->fmtp, "0-15");
    assert_string_equal(a->msid_stream, "{5c0d2d5f-0c9c-4b8e-9a55-0c1a8f3a6b21}");
    const spk_sdp_media_t *v = &s->media[1];
    assert_int_equal(v->n_codecs, 11);
    assert_int_equal(spk_sdp_find_codec(v, 97)->packetization_mode, -1);
    assert_int_equal(spk_sdp_find_codec(v, 126)->profile_level_id, 0x42e01f);
    assert_int_equal(spk_sdp_find_rtx(v, 120)->pt, 124);
    assert_int_equal(spk_sdp_find_rtx(v, 122)->pt, 119);
    assert_int_equal(v->n_ssrc_groups, 1);
    assert_int_equal(v->ssrc_groups[0].ssrcs[0], 1510613869u);
    free(s);
}

static void test_safari_offer(void **state)
{
    (void)state;
    spk_sdp_t *s = parse_file("safari_offer.sdp");
    const spk_sdp_media_t *a = &s->media[0];
    assert_int_equal(a->port, 64123);
    assert_int_equal(a->n_candidates, 2);
    assert_string_equal(a->candidates[0].addr, "3c7e9d2a-5b1f-4e8c-a6d0-9f2b4c8e1a73.local");
    assert_int_equal(a->candidates[0].generation, 0);
    assert_string_equal(a->candidates[1].raddr, "0.0.0.0");
    assert_int_equal(a->candidates[1].rport, 0);
    const spk_sdp_media_t *v = &s->media[1];
    assert_int_equal(spk_sdp_find_codec(v, 96)->profile_level_id, 0x640c1f);
    assert_int_equal(spk_sdp_find_codec(v, 100)->codec, SPK_CODEC_H265);
    free(s);
}

static void roundtrip(const char *name)
{
    spk_sdp_t *a = parse_file(name);
    char *out = malloc(OUT_CAP);
    char *out2 = malloc(OUT_CAP);
    spk_sdp_t *b = malloc(sizeof(*b));
    assert_non_null(out);
    assert_non_null(out2);
    assert_non_null(b);
    int n = spk_sdp_write(a, out, OUT_CAP);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    char why[256] = "";
    int rc = spk_sdp_parse(b, out, (size_t)n, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "%s rewritten: %s\n%s", name, why, out);
    }
    assert_int_equal(rc, 0);
    assert_memory_equal(a, b, sizeof(*a));
    int n2 = spk_sdp_write(b, out2, OUT_CAP);
    assert_int_equal(n, n2);
    assert_string_equal(out, out2);
    /* Too small a buffer fails cleanly. */
    assert_int_equal(spk_sdp_write(a, out2, (size_t)n), SPK_ETOOBIG);
    assert_int_equal(out2[0], '\0');
    free(a);
    free(b);
    free(out);
    free(out2);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip("chromium_offer.sdp");
    roundtrip("chromium_answer.sdp");
    roundtrip("firefox_offer.sdp");
    roundtrip("safari_offer.sdp");
}

static void test_lf_only(void **state)
{
    (void)state;
    size_t len;
    char *text = load("chromium_offer.sdp", &len);
    char *lf = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\r') {
            lf[o++] = text[i];
        }
    }
    spk_sdp_t *a = malloc(sizeof(*a));
    spk_sdp_t *b = malloc(sizeof(*b));
    assert_int_equal(spk_sdp_parse(a, text, len, NULL, 0), 0);
    assert_int_equal(spk_sdp_parse(b, lf, o, NULL, 0), 0);
    assert_memory_equal(a, b, sizeof(*a));
    /* No final line end either. */
    assert_int_equal(spk_sdp_parse(b, lf, o - 1, NULL, 0), 0);
    assert_memory_equal(a, b, sizeof(*a));
    free(a);
    free(b);
    free(text);
    free(lf);
}

static void test_select_codec(void **state)
{
    (void)state;
    spk_sdp_codec_t p;
    spk_sdp_codec_t r;
    spk_sdp_t *c = parse_file("chromium_offer.sdp");
    assert_int_equal(spk_sdp_select_codec(&c->media[0], &p, &r), 0);
    assert_int_equal(p.pt, 111);
    assert_int_equal(r.pt, 0);
    assert_int_equal(spk_sdp_select_codec(&c->media[1], &p, &r), 0);
    assert_int_equal(p.pt, 96);
    assert_int_equal(r.pt, 97);
    /* Without VP8: constrained baseline with packetization-mode 1 wins (106, not 102/104). */
    spk_sdp_media_t *v = &c->media[1];
    v->codecs[0].codec = SPK_CODEC_OTHER;
    assert_int_equal(spk_sdp_select_codec(v, &p, &r), 0);
    assert_int_equal(p.pt, 106);
    assert_int_equal(r.pt, 107);
    free(c);

    spk_sdp_t *s = parse_file("safari_offer.sdp");
    assert_int_equal(spk_sdp_select_codec(&s->media[1], &p, &r), 0);
    assert_int_equal(p.pt, 102);
    assert_int_equal(r.pt, 103);
    s->media[1].codecs[6].codec = SPK_CODEC_OTHER; /* VP8 gone: 42e01f, never 640c1f */
    assert_int_equal(spk_sdp_select_codec(&s->media[1], &p, NULL), 0);
    assert_int_equal(p.pt, 98);
    assert_int_equal(p.profile_level_id, 0x42e01f);
    s->media[1].codecs[2].codec = SPK_CODEC_OTHER;
    assert_int_equal(spk_sdp_select_codec(&s->media[1], &p, &r), SPK_ENOTFOUND);
    free(s);

    spk_sdp_t *f = parse_file("firefox_offer.sdp");
    assert_int_equal(spk_sdp_select_codec(&f->media[0], &p, &r), 0);
    assert_int_equal(p.pt, 109);
    assert_int_equal(spk_sdp_select_codec(&f->media[1], &p, &r), 0);
    assert_int_equal(p.pt, 120);
    assert_int_equal(r.pt, 124);
    free(f);

    /* H.264 without profile-level-id is baseline (RFC 6184). */
    spk_sdp_media_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->kind = SPK_SDP_KIND_VIDEO;
    h->n_codecs = 1;
    h->codecs[0].pt = 100;
    h->codecs[0].codec = SPK_CODEC_H264;
    h->codecs[0].clock_rate = 90000;
    h->codecs[0].packetization_mode = -1;
    h->codecs[0].apt = -1;
    assert_int_equal(spk_sdp_select_codec(h, &p, &r), 0);
    assert_int_equal(p.pt, 100);
    h->codecs[0].packetization_mode = 2;
    assert_int_equal(spk_sdp_select_codec(h, &p, &r), SPK_ENOTFOUND);
    free(h);

    assert_true(spk_sdp_h264_is_baseline(0x42e01f));
    assert_true(spk_sdp_h264_is_baseline(0x42001f));
    assert_true(spk_sdp_h264_is_baseline(0x4d801f));
    assert_false(spk_sdp_h264_is_baseline(0x4d001f));
    assert_false(spk_sdp_h264_is_baseline(0x640c1f));
}

static void make_local(spk_sdp_local_t *l)
{
    memset(l, 0, sizeof(*l));
    l->ice_ufrag = "spk1";
    l->ice_pwd = "abcdefghijklmnopqrstuvwx";
    l->fingerprint.hash = SPK_SDP_HASH_SHA256;
    l->fingerprint.len = 32;
    for (int i = 0; i < 32; i++) {
        l->fingerprint.value[i] = (uint8_t)(0xA0 + i);
    }
    l->ice_lite = true;
    l->fb_audio = SPK_SDP_FB_TRANSPORT_CC;
    l->fb_video =
        SPK_SDP_FB_NACK | SPK_SDP_FB_NACK_PLI | SPK_SDP_FB_CCM_FIR | SPK_SDP_FB_TRANSPORT_CC;
    l->exts = SPK_SDP_EXT_BIT(SPK_EXT_MID) | SPK_SDP_EXT_BIT(SPK_EXT_TRANSPORT_CC) |
              SPK_SDP_EXT_BIT(SPK_EXT_ABS_SEND_TIME) | SPK_SDP_EXT_BIT(SPK_EXT_AUDIO_LEVEL);
    l->session_id = 77;
    l->session_version = 1;
}

static void check_answer(const char *name, uint8_t audio_pt, uint8_t video_pt, uint8_t rtx_pt)
{
    spk_sdp_t *o = parse_file(name);
    spk_sdp_t *a = malloc(sizeof(*a));
    spk_sdp_t *b = malloc(sizeof(*b));
    char *out = malloc(OUT_CAP);
    spk_sdp_local_t l;
    make_local(&l);
    char why[256] = "";
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    assert_int_equal(a->n_media, 2);
    assert_int_equal(a->n_bundle, 2);
    assert_true(a->ice_lite);
    assert_int_equal(a->media[0].n_codecs, 1);
    assert_int_equal(a->media[0].codecs[0].pt, audio_pt);
    assert_int_equal(a->media[0].codecs[0].fb & ~SPK_SDP_FB_TRANSPORT_CC, 0);
    assert_int_equal(a->media[1].codecs[0].pt, video_pt);
    assert_int_equal(a->media[1].n_codecs, rtx_pt != 0 ? 2 : 1);
    if (rtx_pt != 0) {
        assert_int_equal(a->media[1].codecs[1].pt, rtx_pt);
    }
    assert_int_equal(a->media[1].codecs[0].fb & SPK_SDP_FB_GOOG_REMB, 0);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(a->media[i].setup, SPK_SDP_SETUP_PASSIVE);
        assert_int_equal(a->media[i].dir, SPK_SDP_RECVONLY);
        assert_true(a->media[i].rtcp_mux);
        assert_string_equal(a->media[i].mid, o->media[i].mid);
        for (unsigned e = 0; e < a->media[i].n_extmaps; e++) {
            assert_true((l.exts & SPK_SDP_EXT_BIT(a->media[i].extmaps[e].ext)) != 0);
        }
    }
    /* The relay forwards a stream on the video section. */
    a->media[1].dir = SPK_SDP_SENDRECV;
    assert_int_equal(spk_sdp_media_add_stream(&a->media[1], 1111, 2222, "relay", "s1", "t1"), 0);
    spk_sdp_candidate_t c;
    const char *host = "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host";
    assert_int_equal(spk_sdp_candidate_parse(&c, host, strlen(host), why, sizeof(why)), 0);
    assert_int_equal(spk_sdp_media_add_candidate(&a->media[0], &c), 0);
    int n = spk_sdp_write(a, out, OUT_CAP);
    assert_true(n > 0);
    assert_non_null(strstr(out, "a=ice-lite\r\n"));
    assert_non_null(strstr(out, "a=setup:passive\r\n"));
    assert_non_null(strstr(out, "a=group:BUNDLE 0 1\r\n"));
    assert_non_null(strstr(out, "a=ssrc-group:FID 1111 2222\r\n"));
    assert_non_null(strstr(out, "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"));
    assert_int_equal(spk_sdp_parse(b, out, (size_t)n, why, sizeof(why)), 0);
    assert_memory_equal(a, b, sizeof(*a));
    free(o);
    free(a);
    free(b);
    free(out);
}

static void test_answer(void **state)
{
    (void)state;
    check_answer("chromium_offer.sdp", 111, 96, 97);
    check_answer("firefox_offer.sdp", 109, 120, 124);
    check_answer("safari_offer.sdp", 111, 102, 103);
}

/* Simulcast (RFC 8851/8853): Chromium's offer for sendEncodings h (half size) and f; the
 * relay's answer accepts both rids in order when VP8 and the rid extension are there. */
static void test_simulcast(void **state)
{
    (void)state;
    spk_sdp_t *o = parse_file("chromium_simulcast_offer.sdp");
    spk_sdp_t *a = malloc(sizeof(*a));
    spk_sdp_t *b = malloc(sizeof(*b));
    char *out = malloc(OUT_CAP);
    char why[256] = "";
    const spk_sdp_media_t *v = &o->media[1];
    assert_int_equal(v->n_rids, 2);
    assert_string_equal(v->rids[0].id, "h");
    assert_false(v->rids[0].recv);
    assert_string_equal(v->rids[1].id, "f");
    assert_int_equal(v->n_sim, 2);
    assert_false(v->sim_recv);
    assert_string_equal(v->sim[0], "h");
    assert_string_equal(v->sim[1], "f");
    assert_int_equal(v->n_ssrcs, 0); /* Chromium names no SSRC for simulcast layers */
    assert_false(spk_sdp_answer_simulcast(&o->media[0]));
    spk_sdp_local_t l;
    make_local(&l);
    /* Without the rid extension among the relay's: no simulcast in the answer. */
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    assert_false(spk_sdp_answer_simulcast(&a->media[1]));
    assert_int_equal(a->media[1].n_rids, 0);
    l.exts |= SPK_SDP_EXT_BIT(SPK_EXT_RID) | SPK_SDP_EXT_BIT(SPK_EXT_RRID);
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    const spk_sdp_media_t *av = &a->media[1];
    assert_true(spk_sdp_answer_simulcast(av));
    assert_false(spk_sdp_answer_simulcast(&a->media[0]));
    assert_int_equal(av->n_rids, 2);
    assert_true(av->rids[0].recv && av->rids[1].recv);
    assert_non_null(spk_sdp_find_extmap(av, SPK_EXT_RID));
    assert_int_equal(spk_sdp_find_extmap(av, SPK_EXT_RID)->id,
                     spk_sdp_find_extmap(v, SPK_EXT_RID)->id);
    int n = spk_sdp_write(a, out, OUT_CAP);
    assert_true(n > 0);
    assert_non_null(strstr(out, "a=rid:h recv\r\na=rid:f recv\r\na=simulcast:recv h;f\r\n"));
    assert_int_equal(spk_sdp_parse(b, out, (size_t)n, why, sizeof(why)), 0);
    assert_memory_equal(a, b, sizeof(*a));
    /* The offer round-trips too. */
    n = spk_sdp_write(o, out, OUT_CAP);
    assert_true(n > 0);
    assert_non_null(strstr(out, "a=simulcast:send h;f\r\n"));
    assert_int_equal(spk_sdp_parse(b, out, (size_t)n, why, sizeof(why)), 0);
    assert_memory_equal(o, b, sizeof(*o));
    /* A paused stream is left out; one stream left is no simulcast. */
    o->media[1].sim_paused[1] = true;
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    assert_false(spk_sdp_answer_simulcast(&a->media[1]));
    assert_int_equal(a->media[1].n_rids, 0);
    o->media[1].sim_paused[1] = false;
    /* Not VP8: not answered either (the relay switches layers at VP8 key frames only). */
    for (unsigned i = 0; i < o->media[1].n_codecs; i++) {
        if (o->media[1].codecs[i].codec == SPK_CODEC_VP8) {
            o->media[1].codecs[i].codec = SPK_CODEC_OTHER;
        }
    }
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    assert_int_not_equal(a->media[1].codecs[0].codec, SPK_CODEC_VP8);
    assert_false(spk_sdp_answer_simulcast(&a->media[1]));
    free(o);
    free(a);
    free(b);
    free(out);
}

static void test_simulcast_attrs(void **state)
{
    (void)state;
    spk_sdp_t *s = malloc(sizeof(*s));
    char why[256] = "";
    static const char text[] = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                               "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
                               "a=rid:q send max-width=320\r\na=rid:h send\r\na=rid:f recv\r\n"
                               "a=simulcast:send q,x;~h;f recv z\r\n";
    assert_int_equal(spk_sdp_parse(s, text, strlen(text), why, sizeof(why)), 0);
    const spk_sdp_media_t *m = &s->media[0];
    assert_int_equal(m->n_rids, 3);
    assert_true(m->rids[2].recv);
    assert_int_equal(m->n_sim, 3);
    assert_string_equal(m->sim[0], "q"); /* the first alternative */
    assert_true(m->sim_paused[1]);
    assert_string_equal(m->sim[1], "h");
    assert_false(m->sim_paused[2]);
    free(s);
}

static const char k_app_offer[] =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
    "a=fingerprint:sha-256 "
    "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:"
    "1E:1F\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtcp-mux\r\n"
    "a=rtpmap:100 H264/90000\r\na=fmtp:100 profile-level-id=640c1f;packetization-mode=1\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n"
    "a=sctp-port:5000\r\na=max-message-size:262144\r\n";

static void test_answer_rejects(void **state)
{
    (void)state;
    spk_sdp_t *o = malloc(sizeof(*o));
    spk_sdp_t *a = malloc(sizeof(*a));
    char *out = malloc(OUT_CAP);
    char why[256] = "";
    spk_sdp_local_t l;
    make_local(&l);
    assert_int_equal(spk_sdp_parse(o, k_app_offer, strlen(k_app_offer), why, sizeof(why)), 0);
    assert_int_equal(o->media[2].kind, SPK_SDP_KIND_APPLICATION);
    assert_string_equal(o->media[2].app_fmt, "webrtc-datachannel");
    assert_int_equal(o->media[2].sctp_port, 5000);
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    assert_int_equal(a->media[0].dir, SPK_SDP_RECVONLY);
    assert_int_equal(a->media[1].port, 0); /* only H.264 high */
    assert_int_equal(a->media[2].port, 0);
    assert_int_equal(a->n_bundle, 1);
    int n = spk_sdp_write(a, out, OUT_CAP);
    assert_true(n > 0);
    assert_non_null(strstr(out, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
    assert_non_null(strstr(out, "m=video 0 UDP/TLS/RTP/SAVPF 100\r\n"));
    /* Without rtcp-mux the accepted audio section cannot be answered. */
    o->media[0].rtcp_mux = false;
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "rtcp-mux"));
    o->media[0].rtcp_mux = true;
    o->ice.ufrag[0] = '\0';
    o->media[0].ice.ufrag[0] = '\0';
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "ICE"));
    l.ice_pwd = "short";
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), SPK_EINVAL);
    free(o);
    free(a);
    free(out);
}

/* VP8 at payload type 96, as a relay offer lists it. */
static void vp8_codec(spk_sdp_codec_t *c)
{
    memset(c, 0, sizeof(*c));
    c->pt = 96;
    c->codec = SPK_CODEC_VP8;
    strcpy(c->name, "VP8");
    c->clock_rate = 90000;
    c->apt = -1;
    c->packetization_mode = -1;
}

static void test_offer(void **state)
{
    (void)state;
    spk_sdp_local_t l;
    make_local(&l);
    l.ice_lite = false;
    l.ice_trickle = true;
    spk_sdp_t *o = malloc(sizeof(*o));
    spk_sdp_t *b = malloc(sizeof(*b));
    char *out = malloc(OUT_CAP);
    assert_int_equal(spk_sdp_offer_init(o, &l), 0);
    spk_sdp_codec_t opus;
    memset(&opus, 0, sizeof(opus));
    opus.pt = 111;
    opus.codec = SPK_CODEC_OPUS;
    strcpy(opus.name, "opus");
    opus.clock_rate = 48000;
    opus.channels = 2;
    strcpy(opus.fmtp, "minptime=10;useinbandfec=1");
    opus.apt = -1;
    opus.packetization_mode = -1;
    spk_sdp_codec_t vid[2];
    memset(vid, 0, sizeof(vid));
    vp8_codec(&vid[0]);
    vid[1].pt = 97;
    vid[1].codec = SPK_CODEC_RTX;
    strcpy(vid[1].name, "rtx");
    vid[1].clock_rate = 90000;
    strcpy(vid[1].fmtp, "apt=96");
    vid[1].apt = 96;
    vid[1].packetization_mode = -1;
    spk_sdp_media_t *m0 =
        spk_sdp_offer_add_media(o, &l, SPK_SDP_KIND_AUDIO, "a0", SPK_SDP_SENDONLY, &opus, 1);
    assert_non_null(m0);
    spk_sdp_media_t *m1 =
        spk_sdp_offer_add_media(o, &l, SPK_SDP_KIND_VIDEO, "v0", SPK_SDP_SENDONLY, vid, 2);
    assert_non_null(m1);
    assert_null(spk_sdp_offer_add_media(o, &l, SPK_SDP_KIND_VIDEO, "v0", SPK_SDP_SENDONLY, vid, 2));
    assert_null(
        spk_sdp_offer_add_media(o, &l, SPK_SDP_KIND_VIDEO, "bad mid", SPK_SDP_SENDONLY, vid, 2));
    assert_int_equal(spk_sdp_media_add_stream(m0, 5, 0, "relay", "peer-1", "audio-1"), 0);
    assert_int_equal(spk_sdp_media_add_stream(m1, 6, 7, "relay", "peer-1", "video-1"), 0);
    assert_int_equal(spk_sdp_media_add_stream(m1, 6, 7, "relay", "bad id", "video-1"), SPK_EINVAL);
    int n = spk_sdp_write(o, out, OUT_CAP);
    assert_true(n > 0);
    assert_null(strstr(out, "a=ice-lite"));
    assert_non_null(strstr(out, "a=setup:actpass\r\n"));
    assert_non_null(strstr(out, "a=group:BUNDLE a0 v0\r\n"));
    assert_non_null(strstr(out, "a=rtcp-fb:96 nack pli\r\n"));
    assert_non_null(strstr(out, "a=rtcp-fb:111 transport-cc\r\n"));
    assert_non_null(strstr(out, "a=ice-options:trickle\r\n"));
    assert_non_null(strstr(out, "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"));
    assert_non_null(strstr(out, "a=ssrc:7 msid:peer-1 video-1\r\n"));
    char why[256] = "";
    assert_int_equal(spk_sdp_parse(b, out, (size_t)n, why, sizeof(why)), 0);
    assert_memory_equal(o, b, sizeof(*o));
    free(o);
    free(b);
    free(out);
}

/* The extensions the relay forwards to subscribers (signaling/src/media_sdp.c SUB_EXTS). */
#define FWD_EXTS                                                                                   \
    (SPK_SDP_EXT_BIT(SPK_EXT_ABS_SEND_TIME) | SPK_SDP_EXT_BIT(SPK_EXT_AUDIO_LEVEL) |               \
     SPK_SDP_EXT_BIT(SPK_EXT_VIDEO_ORIENTATION))

static void test_ext_ids(void **state)
{
    (void)state;
    /* Numbered 1, 2, ... in spk_sdp_ext_t order among the set. */
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_ABS_SEND_TIME), 1);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_AUDIO_LEVEL), 2);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_VIDEO_ORIENTATION), 3);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_MID), 0);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_TRANSPORT_CC), 0);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_OTHER), 0);
    assert_int_equal(spk_sdp_offer_ext_id(FWD_EXTS, SPK_EXT_COUNT_), 0);
    assert_int_equal(spk_sdp_offer_ext_id(0, SPK_EXT_AUDIO_LEVEL), 0);
    uint32_t all = 0;
    for (int e = 1; e < SPK_EXT_COUNT_; e++) {
        all |= SPK_SDP_EXT_BIT(e);
    }
    assert_int_equal(spk_sdp_offer_ext_id(all, SPK_EXT_MID), 1);
    assert_int_equal(spk_sdp_offer_ext_id(all, (spk_sdp_ext_t)(SPK_EXT_COUNT_ - 1)),
                     SPK_EXT_COUNT_ - 1 <= 14 ? SPK_EXT_COUNT_ - 1 : 0);

    /* An offer built with the set carries exactly those ids. */
    spk_sdp_local_t l;
    make_local(&l);
    l.exts = FWD_EXTS;
    spk_sdp_t *o = malloc(sizeof(*o));
    assert_int_equal(spk_sdp_offer_init(o, &l), 0);
    spk_sdp_codec_t vp8;
    vp8_codec(&vp8);
    spk_sdp_media_t *m =
        spk_sdp_offer_add_media(o, &l, SPK_SDP_KIND_VIDEO, "v0", SPK_SDP_SENDONLY, &vp8, 1);
    assert_non_null(m);
    assert_int_equal(m->n_extmaps, 3);
    assert_int_equal(spk_sdp_find_extmap(m, SPK_EXT_ABS_SEND_TIME)->id, 1);
    assert_int_equal(spk_sdp_find_extmap(m, SPK_EXT_AUDIO_LEVEL)->id, 2);
    assert_int_equal(spk_sdp_find_extmap(m, SPK_EXT_VIDEO_ORIENTATION)->id, 3);
    free(o);
}

/* A publisher's ids (Chromium's offer: audio level 1, abs-send-time 2, transport-cc 3, mid 4,
 * video orientation 13, toffset 14, ...) become the subscribers' on the packet path. */
static void test_ext_map(void **state)
{
    (void)state;
    spk_sdp_t *o = parse_file("chromium_offer.sdp");
    spk_sdp_t *a = malloc(sizeof(*a));
    spk_sdp_local_t l;
    make_local(&l);
    l.exts = FWD_EXTS | SPK_SDP_EXT_BIT(SPK_EXT_MID);
    char why[256] = "";
    assert_int_equal(spk_sdp_answer_init(a, o, &l, why, sizeof(why)), 0);
    uint8_t map[256];
    memset(map, 0xEE, sizeof(map));
    spk_sdp_ext_map(a, FWD_EXTS, map);
    for (int id = 0; id < 256; id++) {
        uint8_t want = id == 1 ? 2 : id == 2 ? 1 : id == 13 ? 3 : 0;
        assert_int_equal(map[id], want);
    }
    /* A rejected section's extmaps do not count. */
    a->media[1].port = 0;
    spk_sdp_ext_map(a, FWD_EXTS, map);
    assert_int_equal(map[13], 0);
    assert_int_equal(map[1], 2);
    a->media[1].port = 9;
    spk_sdp_ext_map(a, FWD_EXTS, map);

    /* A video packet as Chromium sends it: one-byte form with abs-send-time (2), transport-cc
     * (3), mid (4), video orientation (13, rotation 90: value 1) and toffset (14). */
    uint8_t pkt[64] = {0x90, 96, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 7, 0xBE, 0xDE, 0, 5};
    const uint8_t ext[20] = {0x22, 0xAA, 0xBB, 0xCC, 0x31, 0x00, 0x05, 0x40, '1',  0xD0,
                             0x01, 0xE2, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy(pkt + 16, ext, sizeof(ext));
    const uint8_t payload[4] = {0x10, 0x02, 0x03, 0x04};
    memcpy(pkt + 36, payload, sizeof(payload));
    size_t len = 40;
    spk_rtp_view_t v;
    assert_int_equal(spk_rtp_parse(&v, pkt, len, why, sizeof(why)), 0);
    assert_int_equal(spk_rtp_ext_remap(pkt, &v, map), 0);
    const uint8_t want[20] = {0x12, 0xAA, 0xBB, 0xCC, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30,
                              0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_memory_equal(pkt + 16, want, sizeof(want));
    assert_memory_equal(pkt + 36, payload, sizeof(payload));
    assert_int_equal(spk_rtp_parse(&v, pkt, len, why, sizeof(why)), 0);
    spk_rtp_ext_t e;
    assert_int_equal(spk_rtp_ext_find(&v, 3, &e), 0); /* orientation, under the new id */
    assert_int_equal(e.len, 1);
    assert_int_equal(e.data[0], 0x01);
    uint32_t ast = 0;
    assert_int_equal(spk_rtp_ext_find(&v, 1, &e), 0);
    assert_true(spk_rtp_ext_read_abs_send_time(&e, &ast));
    assert_int_equal(ast, 0xAABBCC);
    assert_int_equal(spk_rtp_ext_find(&v, 2, &e), SPK_ENOTFOUND); /* no audio level here */
    assert_int_equal(spk_rtp_ext_find(&v, 4, &e), SPK_ENOTFOUND); /* mid removed */

    /* Audio: audio level (1 -> 2) keeps its value. */
    uint8_t apkt[24] = {0x90, 111,  0, 1, 0,    0,    0,    1,    0,    0,    0,    8,
                        0xBE, 0xDE, 0, 1, 0x10, 0x85, 0x00, 0x00, 0xF8, 0xFF, 0xFE, 0x00};
    assert_int_equal(spk_rtp_parse(&v, apkt, sizeof(apkt), why, sizeof(why)), 0);
    assert_int_equal(spk_rtp_ext_remap(apkt, &v, map), 0);
    assert_int_equal(apkt[16], 0x20);
    assert_int_equal(spk_rtp_parse(&v, apkt, sizeof(apkt), why, sizeof(why)), 0);
    assert_int_equal(spk_rtp_ext_find(&v, 2, &e), 0);
    bool voice = false;
    uint8_t level = 0;
    assert_true(spk_rtp_ext_read_audio_level(&e, &voice, &level));
    assert_true(voice);
    assert_int_equal(level, 5);
    free(o);
    free(a);
}

static void test_candidates(void **state)
{
    (void)state;
    spk_sdp_candidate_t c;
    char why[256] = "";
    const char *t = "candidate:842163049 1 udp 1677729535 203.0.113.44 64123 typ srflx raddr "
                    "0.0.0.0 rport 0 generation 0 ufrag q7Zr network-id 1 network-cost 10";
    assert_int_equal(spk_sdp_candidate_parse(&c, t, strlen(t), why, sizeof(why)), 0);
    assert_int_equal(c.type, SPK_CAND_SRFLX);
    assert_int_equal(c.port, 64123);
    assert_string_equal(c.foundation, "842163049");
    const char *t2 = "a=candidate:1 1 TCP 1518280447 ::1 9 typ host tcptype passive\r\n";
    assert_int_equal(spk_sdp_candidate_parse(&c, t2, strlen(t2), why, sizeof(why)), 0);
    assert_int_equal(c.transport, SPK_CAND_TCP);
    assert_int_equal(c.tcptype, SPK_CAND_TCP_PASSIVE);
    assert_string_equal(c.addr, "::1");
    char buf[256];
    int n = spk_sdp_candidate_format(&c, buf, sizeof(buf));
    assert_string_equal(buf, "candidate:1 1 tcp 1518280447 ::1 9 typ host tcptype passive");
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(spk_sdp_candidate_format(&c, buf, 10), SPK_ETOOBIG);

    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"candidate:1 1 udp 1 1.2.3.4 5 typ", "typ"},
        {"candidate:1 1 sctp 1 1.2.3.4 5 typ host", "transport"},
        {"candidate:1 0 udp 1 1.2.3.4 5 typ host", "component"},
        {"candidate:1 1 udp 99999999999 1.2.3.4 5 typ host", "priority"},
        {"candidate:1 1 udp 1 1.2.3.4 65536 typ host", "port"},
        {"candidate:1 1 udp 1 1.2.3.4 5 typ bogus", "typ"},
        {"candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr", "without value"},
        {"candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport x", "rport"},
        {"cand:1 1 udp 1 1.2.3.4 5 typ host", "prefix"},
        {"candidate:", "foundation"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(
            spk_sdp_candidate_parse(&c, bad[i].text, strlen(bad[i].text), why, sizeof(why)),
            SPK_EDECODE);
        if (strstr(why, bad[i].why) == NULL) {
            fail_msg("candidate %zu: why \"%s\" lacks \"%s\"", i, why, bad[i].why);
        }
    }
}

#define HDR "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
#define MA "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int err;
        const char *why;
    } cases[] = {
        {HDR, SPK_EDECODE, "no m-line"},
        {"", SPK_EDECODE, "empty"},
        {"o=- 1 1 IN IP4 0.0.0.0\r\n" MA, SPK_EDECODE, "v=0"},
        {"v=1\r\n" MA, SPK_EDECODE, "v=0"},
        {HDR "garbage\r\n" MA, SPK_EDECODE, "line 5: not <type>=<value>"},
        {HDR MA "a=fmtp:x1 a=b\r\n", SPK_EDECODE, "fmtp payload type"},
        {HDR MA "a=rid:h sideways\r\n", SPK_EDECODE, "rid direction"},
        {HDR MA "a=rid:h\r\n", SPK_EDECODE, "rid id"},
        {HDR MA "a=rid:abcdefghijklmnopq send\r\n", SPK_EDECODE, "rid id"},
        {HDR MA "a=rid:a.b send\r\n", SPK_EDECODE, "rid id"},
        {HDR MA "a=simulcast:both h;f\r\n", SPK_EDECODE, "simulcast direction"},
        {HDR MA "a=simulcast:send\r\n", SPK_EDECODE, "simulcast direction"},
        {HDR MA "a=simulcast:send h;\r\n", SPK_EDECODE, "ends with"},
        {HDR MA "a=simulcast:send ~;f\r\n", SPK_EDECODE, "simulcast stream id"},
        {HDR MA "a=simulcast:send h;;f\r\n", SPK_EDECODE, "simulcast stream id"},
        {HDR MA "a=fmtp:111\r\n", SPK_EDECODE, "fmtp without parameters"},
        {HDR MA "a=fmtp:111 \r\n", SPK_EDECODE, "fmtp without parameters"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=abc\r\n",
         SPK_EDECODE, "apt"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 x=1\r\n",
         SPK_EDECODE, "rtx without apt"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 97\r\na=rtpmap:97 rtx/90000\r\n", SPK_EDECODE,
         "payload type 97: rtx without apt"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=fmtp:100 profile-level-id=42e0zz\r\n"
             "a=rtpmap:100 H264/90000\r\n",
         SPK_EDECODE, "payload type 100: fmtp profile-level-id"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 H264/90000\r\n"
             "a=fmtp:100 profile-level-id=42e0zz\r\n",
         SPK_EDECODE, "profile-level-id"},
        {HDR "m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=rtpmap:100 H264/90000\r\n"
             "a=fmtp:100 packetization-mode=7\r\n",
         SPK_EDECODE, "packetization-mode"},
        {HDR MA "a=rtpmap:111 opus/0/2\r\n", SPK_EDECODE, "clock rate"},
        {HDR MA "a=rtpmap:111 opus\r\n", SPK_EDECODE, "encoding name"},
        {HDR MA "a=rtpmap:111 op us/48000\r\n", SPK_EDECODE, "encoding name"},
        {HDR "m=audio 9 UDP/TLS/RTP/SAVPF\r\n", SPK_EDECODE, "without formats"},
        {HDR "m=audio 9 UDP/TLS/RTP/SAVPF 128\r\n", SPK_EDECODE, "payload type"},
        {HDR "m=audio 70000 UDP/TLS/RTP/SAVPF 0\r\n", SPK_EDECODE, "port"},
        {HDR MA "a=fingerprint:sha-256 AA:BB\r\n", SPK_EDECODE, "fingerprint length"},
        {HDR MA "a=fingerprint:md5 AA:BB\r\n", SPK_EDECODE, "fingerprint hash"},
        {HDR MA "a=setup:both\r\n", SPK_EDECODE, "setup"},
        {HDR MA "a=ice-ufrag:ab\r\n", SPK_EDECODE, "ice-ufrag"},
        {HDR MA "a=ice-pwd:has space in it 12345678901234\r\n", SPK_EDECODE, "ice-pwd"},
        {HDR MA "a=extmap:0 urn:x\r\n", SPK_EDECODE, "extmap id"},
        {HDR MA "a=extmap:256 urn:x\r\n", SPK_EDECODE, "extmap id"},
        {HDR MA "a=extmap:1 urn:x\r\na=extmap:1 urn:y\r\n", SPK_EDECODE, "used twice"},
        {HDR MA "a=extmap:1/sideways urn:x\r\n", SPK_EDECODE, "direction"},
        {HDR MA "a=ssrc:-5 cname:x\r\n", SPK_EDECODE, "ssrc value"},
        {HDR MA "a=ssrc-group:FID\r\n", SPK_EDECODE, "ssrc-group"},
        {HDR MA "a=mid:\r\n", SPK_EDECODE, "mid"},
        {HDR MA MA, SPK_EDECODE, "duplicate mid"},
        {HDR "a=group:BUNDLE 0 7\r\n" MA, SPK_EDECODE, "BUNDLE mid 7"},
        {HDR MA "a=candidate:1 1 udp 1 x 5 typ nope\r\n", SPK_EDECODE, "typ"},
        {HDR "o=- x 1 IN IP4 0.0.0.0\r\n" MA, SPK_EDECODE, "o="},
        {HDR MA "a=msid:\r\n", SPK_EDECODE, "msid"},
    };
    char why[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        int rc = parse_text(cases[i].text, why, sizeof(why));
        if (rc != cases[i].err || strstr(why, cases[i].why) == NULL) {
            fail_msg("case %zu: rc %d (want %d), why \"%s\" (want \"%s\")", i, rc, cases[i].err,
                     why, cases[i].why);
        }
    }
    /* NUL inside a line. */
    static const char nul[] = HDR "a=x\0y\r\n" MA;
    spk_sdp_t *s = malloc(sizeof(*s));
    assert_int_equal(spk_sdp_parse(s, nul, sizeof(nul) - 1, why, sizeof(why)), SPK_EDECODE);
    assert_non_null(strstr(why, "NUL"));
    /* Parsing NULL / why NULL is fine. */
    assert_int_equal(spk_sdp_parse(s, NULL, 0, NULL, 0), SPK_EDECODE);
    free(s);
}

static void test_limits(void **state)
{
    (void)state;
    char *text = malloc(SPK_SDP_MAX_SIZE + 1024);
    char why[256] = "";
    /* A huge line. */
    size_t o = (size_t)sprintf(text, HDR MA "a=x-huge:");
    memset(text + o, 'a', SPK_SDP_MAX_LINE);
    o += SPK_SDP_MAX_LINE;
    text[o] = '\0';
    assert_int_equal(parse_text(text, why, sizeof(why)), SPK_ETOOBIG);
    assert_non_null(strstr(why, "line of"));
    /* Whole description too large. */
    o = (size_t)sprintf(text, HDR MA);
    while (o < SPK_SDP_MAX_SIZE + 10) {
        o += (size_t)sprintf(text + o, "a=x-filler:0123456789\r\n");
    }
    assert_int_equal(parse_text(text, why, sizeof(why)), SPK_ETOOBIG);
    assert_non_null(strstr(why, "description of"));
    /* 33 m-sections. */
    o = (size_t)sprintf(text, HDR);
    for (int i = 0; i <= SPK_SDP_MAX_MEDIA; i++) {
        o += (size_t)sprintf(text + o, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:%d\r\n", i);
    }
    assert_int_equal(parse_text(text, why, sizeof(why)), SPK_ETOOBIG);
    assert_non_null(strstr(why, "m-sections"));
    /* 60 payload types: 48 kept, the rest counted. */
    o = (size_t)sprintf(text, HDR "m=video 9 UDP/TLS/RTP/SAVPF");
    for (int i = 0; i < 60; i++) {
        o += (size_t)sprintf(text + o, " %d", 35 + i);
    }
    o += (size_t)sprintf(text + o, "\r\na=rtcp-fb:* nack\r\na=rtpmap:94 VP8/90000\r\n");
    spk_sdp_t *s = malloc(sizeof(*s));
    assert_int_equal(spk_sdp_parse(s, text, o, why, sizeof(why)), 0);
    assert_int_equal(s->media[0].n_codecs, SPK_SDP_MAX_CODECS);
    assert_int_equal(s->media[0].n_dropped, 60 - SPK_SDP_MAX_CODECS);
    assert_int_equal(s->media[0].codecs[0].fb, SPK_SDP_FB_NACK); /* wildcard applied */
    assert_null(spk_sdp_find_codec(&s->media[0], 94));
    free(s);
    free(text);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(spk_sdp_codec_from_name("OPUS"), SPK_CODEC_OPUS);
    assert_int_equal(spk_sdp_codec_from_name("h264"), SPK_CODEC_H264);
    assert_int_equal(spk_sdp_codec_from_name("x-nope"), SPK_CODEC_OTHER);
    for (int e = 1; e < SPK_EXT_COUNT_; e++) {
        assert_int_equal(spk_sdp_ext_from_uri(spk_sdp_ext_uri((spk_sdp_ext_t)e)), e);
    }
    assert_string_equal(spk_sdp_ext_uri(SPK_EXT_OTHER), "");
    assert_string_equal(spk_sdp_dir_name(SPK_SDP_INACTIVE), "inactive");
    assert_string_equal(spk_sdp_hash_name(SPK_SDP_HASH_SHA256), "sha-256");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chromium_offer),  cmocka_unit_test(test_firefox_offer),
        cmocka_unit_test(test_safari_offer),    cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_lf_only),         cmocka_unit_test(test_select_codec),
        cmocka_unit_test(test_answer),          cmocka_unit_test(test_answer_rejects),
        cmocka_unit_test(test_offer),           cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_names),           cmocka_unit_test(test_ext_ids),
        cmocka_unit_test(test_ext_map),         cmocka_unit_test(test_simulcast),
        cmocka_unit_test(test_simulcast_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
