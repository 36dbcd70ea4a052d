/* libFuzzer target for the RTP and RTCP cores (spk/rtp.h, spk/rtx.h).
 *
 * Every input is tried as an RTP packet (header view, every header extension element, id
 * remapping, RTX wrap/unwrap) and as a compound RTCP datagram (every packet, every report
 * block, SDES item, BYE ssrc, NACK expansion, FIR entry, REMB ssrc and transport-cc status).
 * Properties checked, each aborting on failure:
 *  - a NACK rebuilt from an expanded NACK expands to the same sequence numbers;
 *  - RTX wrap then unwrap gives back the header fields and payload;
 *  - the retransmission store returns what was put in;
 *  - the NACK generator yields increasing sequence numbers and stays bounded;
 *  - transport-cc feedback built from the packets' arrivals decodes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/nack.h"
#include "spk/rtp.h"
#include "spk/rtx.h"
#include "spk/twcc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PKT 2048

static void fuzz_rtp_exts(const spk_rtp_view_t *v, const uint8_t *data, size_t size)
{
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_t e;
    spk_rtp_ext_iter_init(&it, v);
    unsigned sum = 0;
    while (spk_rtp_ext_next(&it, &e) == 0) {
        if (e.off + e.len > size || e.data != data + e.off) {
            abort();
        }
        for (unsigned i = 0; i < e.len; i++) {
            sum += e.data[i];
        }
        uint16_t u16;
        uint32_t u32;
        bool voice;
        uint8_t level;
        (void)spk_rtp_ext_read_u16(&e, &u16);
        (void)spk_rtp_ext_read_abs_send_time(&e, &u32);
        (void)spk_rtp_ext_read_audio_level(&e, &voice, &level);
    }
    (void)sum;
    if (size > MAX_PKT) {
        return;
    }
    uint8_t copy[MAX_PKT];
    memcpy(copy, data, size);
    spk_rtp_view_t cv;
    if (spk_rtp_parse(&cv, copy, size, NULL, 0) != 0) {
        abort();
    }
    uint8_t map[256];
    for (int i = 0; i < 256; i++) {
        map[i] = (uint8_t)(size > 0 ? data[(size_t)i % size] : 0);
    }
    if (spk_rtp_ext_remap(copy, &cv, map) == 0) {
        /* Remapping never changes the packet structure. */
        spk_rtp_view_t again;
        if (spk_rtp_parse(&again, copy, size, NULL, 0) != 0 ||
            again.payload_off != cv.payload_off) {
            abort();
        }
    }
}

static void fuzz_rtx(const spk_rtp_view_t *v, const uint8_t *data, size_t size)
{
    if (size + 2 > MAX_PKT) {
        return;
    }
    uint8_t rtx[MAX_PKT];
    int n = spk_rtx_wrap(rtx, sizeof(rtx), data, size, 97, 0x1234, 77);
    if (n < 0) {
        abort(); /* data parsed as RTP: wrapping cannot fail */
    }
    int m = spk_rtx_unwrap(rtx, (size_t)n, v->pt, v->ssrc);
    if (m < 0) {
        abort();
    }
    spk_rtp_view_t u;
    if (spk_rtp_parse(&u, rtx, (size_t)m, NULL, 0) != 0 || u.seq != v->seq || u.ts != v->ts ||
        u.ssrc != v->ssrc || u.pt != v->pt || u.payload_len != v->payload_len ||
        memcmp(rtx + u.payload_off, data + v->payload_off, v->payload_len) != 0) {
        abort();
    }
    uint8_t probe[MAX_PKT];
    memcpy(probe, data, size);
    (void)spk_rtx_unwrap(probe, size, 96, 1);
}

static void fuzz_store(const spk_rtp_view_t *v, const uint8_t *data, size_t size)
{
    static spk_rtx_store_t store;
    static bool ready;
    if (!ready) {
        if (spk_rtx_store_init(&store, 16, 4096, 1500) != 0) {
            abort();
        }
        ready = true;
    }
    if (size > 1500) {
        return;
    }
    int rc = spk_rtx_put(&store, v->seq, data, size);
    const uint8_t *got;
    size_t len;
    if (rc == 0) {
        if (spk_rtx_get(&store, v->seq, 0, 0, &got, &len) != 0 || len != size ||
            memcmp(got, data, size) != 0) {
            abort();
        }
    }
    (void)spk_rtx_get(&store, (uint16_t)(v->seq - 3), 0, 10, &got, &len);
}

static void fuzz_nack_gen(const spk_rtp_view_t *v)
{
    static spk_nack_gen_t gen;
    static bool ready;
    static uint64_t now;
    if (!ready) {
        spk_nack_gen_init(&gen, 3, 20, 500);
        ready = true;
    }
    now += v->ts & 0x3f;
    (void)spk_nack_gen_on_packet(&gen, v->seq, now);
    uint16_t out[SPK_NACK_MAX_MISSING];
    size_t n = spk_nack_gen_collect(&gen, now, out, sizeof(out) / sizeof(out[0]));
    for (size_t i = 1; i < n; i++) {
        uint16_t d = (uint16_t)(out[i] - out[i - 1]);
        if (d == 0 || d >= 0x8000) {
            abort(); /* collected in increasing order */
        }
    }
    if (spk_nack_gen_missing(&gen) > SPK_NACK_MAX_MISSING) {
        abort();
    }
    (void)spk_nack_gen_keyframe_needed(&gen);
}

static void fuzz_twcc_rx(const spk_rtp_view_t *v)
{
    static spk_twcc_rx_t rx;
    static unsigned calls;
    static uint8_t out[1200];
    static spk_twcc_status_t st[65536];
    (void)spk_twcc_rx_on_packet(&rx, v->seq, (int64_t)v->ts * 10);
    if (++calls % 8 != 0) {
        return;
    }
    int len;
    while ((len = spk_twcc_rx_build(&rx, out, sizeof(out), 1, v->ssrc)) > 0) {
        spk_rtcp_iter_t it;
        spk_rtcp_pkt_t p;
        spk_rtcp_fb_t fb;
        spk_rtcp_twcc_t tw;
        spk_rtcp_iter_init(&it, out, (size_t)len);
        if (spk_rtcp_next(&it, &p, NULL, 0) != 0 || spk_rtcp_parse_fb(&p, &fb, NULL, 0) != 0 ||
            spk_rtcp_parse_twcc(&fb, &tw, NULL, 0) != 0 ||
            spk_rtcp_twcc_decode(&tw, st, sizeof(st) / sizeof(st[0])) != tw.status_count) {
            abort(); /* the recorder's own feedback must decode */
        }
    }
    if (len < 0) {
        abort();
    }
}

static void fuzz_nack(const spk_rtcp_fb_t *fb)
{
    spk_rtcp_nack_iter_t it;
    if (spk_rtcp_nack_iter_init(&it, fb, NULL, 0) != 0) {
        return;
    }
    static uint16_t seqs[17 * 512];
    size_t n = 0;
    uint16_t s;
    while (n < sizeof(seqs) / sizeof(seqs[0]) && spk_rtcp_nack_next(&it, &s)) {
        seqs[n++] = s;
    }
    /* Rebuild only input in the builder's canonical order (increasing, modulo 2^16). */
    for (size_t i = 1; i < n; i++) {
        uint16_t d = (uint16_t)(seqs[i] - seqs[i - 1]);
        if (d == 0 || d >= 0x8000) {
            return;
        }
    }
    if (n == 0 || n > 4096) {
        return;
    }
    static uint8_t out[12 + 4 * 4096];
    int len = spk_rtcp_build_nack(out, sizeof(out), fb->sender_ssrc, fb->media_ssrc, seqs, n);
    if (len < 0) {
        abort();
    }
    spk_rtcp_iter_t ri;
    spk_rtcp_pkt_t p;
    spk_rtcp_fb_t fb2;
    spk_rtcp_iter_init(&ri, out, (size_t)len);
    if (spk_rtcp_next(&ri, &p, NULL, 0) != 0 || spk_rtcp_parse_fb(&p, &fb2, NULL, 0) != 0 ||
        spk_rtcp_nack_iter_init(&it, &fb2, NULL, 0) != 0) {
        abort();
    }
    size_t k = 0;
    while (spk_rtcp_nack_next(&it, &s)) {
        if (k >= n || s != seqs[k]) {
            abort();
        }
        k++;
    }
    if (k != n) {
        abort();
    }
}

static void fuzz_fb(const spk_rtcp_pkt_t *p)
{
    spk_rtcp_fb_t fb;
    if (spk_rtcp_parse_fb(p, &fb, NULL, 0) != 0) {
        return;
    }
    if (fb.pt == SPK_RTCP_RTPFB && fb.fmt == SPK_RTPFB_NACK) {
        fuzz_nack(&fb);
    }
    size_t n;
    if (spk_rtcp_fir_count(&fb, &n, NULL, 0) == 0) {
        for (size_t i = 0; i < n; i++) {
            uint32_t ssrc;
            uint8_t sn;
            spk_rtcp_fir_get(&fb, i, &ssrc, &sn);
        }
    }
    spk_rtcp_remb_t remb;
    if (spk_rtcp_parse_remb(&fb, &remb, NULL, 0) == 0) {
        uint32_t x = 0;
        for (unsigned i = 0; i < remb.n_ssrcs; i++) {
            x ^= spk_rtcp_ssrc_at(remb.ssrcs, i);
        }
        (void)x;
    }
    spk_rtcp_twcc_t tw;
    if (spk_rtcp_parse_twcc(&fb, &tw, NULL, 0) == 0) {
        static spk_twcc_status_t st[65536];
        int k = spk_rtcp_twcc_decode(&tw, st, sizeof(st) / sizeof(st[0]));
        if (k >= 0 && k != tw.status_count) {
            abort();
        }
    }
}

static void fuzz_rtcp_pkt(const spk_rtcp_pkt_t *p)
{
    spk_rtcp_sr_t sr;
    if (spk_rtcp_parse_sr_rr(p, &sr, NULL, 0) == 0) {
        for (unsigned i = 0; i < sr.n_reports; i++) {
            spk_rtcp_report_t r;
            spk_rtcp_report_get(&sr, i, &r);
        }
    }
    spk_rtcp_sdes_iter_t si;
    if (spk_rtcp_sdes_iter_init(&si, p) == 0) {
        spk_rtcp_sdes_item_t item;
        unsigned sum = 0;
        while (spk_rtcp_sdes_next(&si, &item) == 0) {
            for (unsigned i = 0; i < item.len; i++) {
                sum += item.data[i];
            }
        }
        (void)sum;
    }
    spk_rtcp_bye_t bye;
    if (spk_rtcp_parse_bye(p, &bye, NULL, 0) == 0) {
        uint32_t x = 0;
        for (unsigned i = 0; i < bye.n_ssrcs; i++) {
            x ^= spk_rtcp_ssrc_at(bye.ssrcs, i);
        }
        for (unsigned i = 0; i < bye.reason_len; i++) {
            x += bye.reason[i];
        }
        (void)x;
    }
    spk_rtcp_app_t app;
    if (spk_rtcp_parse_app(p, &app, NULL, 0) == 0 && app.len > 0) {
        (void)app.data[app.len - 1];
    }
    fuzz_fb(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[128];
    (void)spk_pkt_classify(data, size);
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, data, size, why, sizeof(why)) == 0) {
        if (v.payload_off + v.payload_len + v.pad_len != size) {
            abort();
        }
        for (unsigned i = 0; i < v.cc; i++) {
            (void)spk_rtp_csrc(&v, i);
        }
        fuzz_rtp_exts(&v, data, size);
        fuzz_rtx(&v, data, size);
        fuzz_store(&v, data, size);
        fuzz_nack_gen(&v);
        fuzz_twcc_rx(&v);
    }
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_iter_init(&it, data, size);
    while (spk_rtcp_next(&it, &p, why, sizeof(why)) == 0) {
        if (p.body + p.body_len > data + size) {
            abort();
        }
        fuzz_rtcp_pkt(&p);
    }
    (void)spk_rtcp_validate(data, size, NULL, 0);
    return 0;
}
