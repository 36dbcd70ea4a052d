/* RTCP builders: SR, RR, SDES CNAME, BYE, PLI, FIR, generic NACK, REMB, transport-cc. */
#include <string.h>

#include "core_int.h"
#include "spk/error.h"
#include "spk/rtp.h"

#define RTCP_REPORT_LEN 24

static void rtcp_header(uint8_t *out, uint8_t count, uint8_t pt, size_t len)
{
    out[0] = (uint8_t)(0x80 | (count & 0x1f));
    out[1] = pt;
    spk_wr16(out + 2, (uint16_t)(len / 4 - 1));
}

static void write_report(uint8_t *r, const spk_rtcp_report_t *rep)
{
    spk_wr32(r, rep->ssrc);
    r[4] = rep->fraction_lost;
    int32_t cl = rep->cumulative_lost;
    if (cl > 0x7fffff) {
        cl = 0x7fffff;
    } else if (cl < -0x800000) {
        cl = -0x800000;
    }
    spk_wr24(r + 5, (uint32_t)cl & 0xffffffu);
    spk_wr32(r + 8, rep->ext_highest_seq);
    spk_wr32(r + 12, rep->jitter);
    spk_wr32(r + 16, rep->lsr);
    spk_wr32(r + 20, rep->dlsr);
}

int spk_rtcp_build_rr(uint8_t *out, size_t cap, uint32_t sender_ssrc,
                      const spk_rtcp_report_t *reports, size_t n)
{
    if (n > SPK_RTCP_MAX_REPORTS || (n > 0 && reports == NULL)) {
        return SPK_EINVAL;
    }
    size_t len = 8 + n * RTCP_REPORT_LEN;
    if (out == NULL || cap < len) {
        return SPK_ETOOBIG;
    }
    rtcp_header(out, (uint8_t)n, SPK_RTCP_RR, len);
    spk_wr32(out + 4, sender_ssrc);
    for (size_t i = 0; i < n; i++) {
        write_report(out + 8 + i * RTCP_REPORT_LEN, &reports[i]);
    }
    return (int)len;
}

int spk_rtcp_build_sr(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t ntp, uint32_t rtp_ts,
                      uint32_t packet_count, uint32_t octet_count, const spk_rtcp_report_t *reports,
                      size_t n)
{
    if (n > SPK_RTCP_MAX_REPORTS || (n > 0 && reports == NULL)) {
        return SPK_EINVAL;
    }
    size_t len = 28 + n * RTCP_REPORT_LEN;
    if (out == NULL || cap < len) {
        return SPK_ETOOBIG;
    }
    rtcp_header(out, (uint8_t)n, SPK_RTCP_SR, len);
    spk_wr32(out + 4, sender_ssrc);
    spk_wr32(out + 8, (uint32_t)(ntp >> 32));
    spk_wr32(out + 12, (uint32_t)ntp);
    spk_wr32(out + 16, rtp_ts);
    spk_wr32(out + 20, packet_count);
    spk_wr32(out + 24, octet_count);
    for (size_t i = 0; i < n; i++) {
        write_report(out + 28 + i * RTCP_REPORT_LEN, &reports[i]);
    }
    return (int)len;
}

int spk_rtcp_build_sdes_cname(uint8_t *out, size_t cap, uint32_t ssrc, const char *cname)
{
    if (cname == NULL) {
        return SPK_EINVAL;
    }
    size_t cl = strlen(cname);
    if (cl == 0 || cl > 255) {
        return SPK_EINVAL;
    }
    /* header, ssrc, type, len, text, null item, padding to 32 bits */
    size_t len = (4 + 4 + 2 + cl + 1 + 3) & ~(size_t)3;
    if (out == NULL || cap < len) {
        return SPK_ETOOBIG;
    }
    memset(out, 0, len);
    rtcp_header(out, 1, SPK_RTCP_SDES, len);
    spk_wr32(out + 4, ssrc);
    out[8] = SPK_SDES_CNAME;
    out[9] = (uint8_t)cl;
    memcpy(out + 10, cname, cl);
    return (int)len;
}

int spk_rtcp_build_bye(uint8_t *out, size_t cap, const uint32_t *ssrcs, size_t n)
{
    if (n > 31 || (n > 0 && ssrcs == NULL)) {
        return SPK_EINVAL;
    }
    size_t len = 4 + 4 * n;
    if (out == NULL || cap < len) {
        return SPK_ETOOBIG;
    }
    rtcp_header(out, (uint8_t)n, SPK_RTCP_BYE, len);
    for (size_t i = 0; i < n; i++) {
        spk_wr32(out + 4 + 4 * i, ssrcs[i]);
    }
    return (int)len;
}

static int fb_header(uint8_t *out, size_t cap, uint8_t fmt, uint8_t pt, size_t len,
                     uint32_t sender_ssrc, uint32_t media_ssrc)
{
    if (len > 0x40000) {
        return SPK_EINVAL;
    }
    if (out == NULL || cap < len) {
        return SPK_ETOOBIG;
    }
    rtcp_header(out, fmt, pt, len);
    spk_wr32(out + 4, sender_ssrc);
    spk_wr32(out + 8, media_ssrc);
    return 0;
}

int spk_rtcp_build_pli(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    int rc = fb_header(out, cap, SPK_PSFB_PLI, SPK_RTCP_PSFB, 12, sender_ssrc, media_ssrc);
    return rc < 0 ? rc : 12;
}

int spk_rtcp_build_fir(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t target_ssrc,
                       uint8_t seq_nr)
{
    int rc = fb_header(out, cap, SPK_PSFB_FIR, SPK_RTCP_PSFB, 20, sender_ssrc, 0);
    if (rc < 0) {
        return rc;
    }
    spk_wr32(out + 12, target_ssrc);
    out[16] = seq_nr;
    out[17] = 0;
    out[18] = 0;
    out[19] = 0;
    return 20;
}

/* Packs seqs into PID/BLP items; writes them when fci != NULL. Returns the item count. */
static size_t nack_pack(const uint16_t *seqs, size_t n, uint8_t *fci)
{
    size_t items = 0;
    uint16_t pid = 0;
    uint16_t blp = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t d = (uint16_t)(seqs[i] - pid);
        if (items > 0 && d == 0) {
            continue;
        }
        if (items > 0 && d <= 16) {
            blp = (uint16_t)(blp | (1u << (d - 1)));
            if (fci != NULL) {
                spk_wr16(fci + (items - 1) * 4 + 2, blp);
            }
            continue;
        }
        pid = seqs[i];
        blp = 0;
        if (fci != NULL) {
            spk_wr16(fci + items * 4, pid);
            spk_wr16(fci + items * 4 + 2, 0);
        }
        items++;
    }
    return items;
}

int spk_rtcp_build_nack(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        const uint16_t *seqs, size_t n)
{
    if (n == 0 || seqs == NULL) {
        return SPK_EINVAL;
    }
    size_t items = nack_pack(seqs, n, NULL);
    size_t len = 12 + 4 * items;
    int rc = fb_header(out, cap, SPK_RTPFB_NACK, SPK_RTCP_RTPFB, len, sender_ssrc, media_ssrc);
    if (rc < 0) {
        return rc;
    }
    nack_pack(seqs, n, out + 12);
    return (int)len;
}

int spk_rtcp_build_remb(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint64_t bitrate_bps,
                        const uint32_t *ssrcs, size_t n)
{
    if (n == 0 || n > 255 || ssrcs == NULL) {
        return SPK_EINVAL;
    }
    size_t len = 20 + 4 * n;
    int rc = fb_header(out, cap, SPK_PSFB_AFB, SPK_RTCP_PSFB, len, sender_ssrc, 0);
    if (rc < 0) {
        return rc;
    }
    unsigned exp = 0;
    uint64_t mantissa = bitrate_bps;
    while (mantissa >= (1u << 18)) {
        mantissa >>= 1;
        exp++;
    }
    memcpy(out + 12, "REMB", 4);
    out[16] = (uint8_t)n;
    out[17] = (uint8_t)(exp << 2 | (unsigned)(mantissa >> 16));
    spk_wr16(out + 18, (uint16_t)mantissa);
    for (size_t i = 0; i < n; i++) {
        spk_wr32(out + 20 + 4 * i, ssrcs[i]);
    }
    return (int)len;
}

/* ---- transport-cc ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

/* Walks the status symbols of pkts[0..n): 0 not received, 1 small delta, 2 large delta. */
typedef struct {
    const spk_twcc_recv_t *pkts;
    size_t n;
    size_t i;      /* next packet */
    int64_t j;     /* next status index */
    int64_t base;  /* seq of status 0 */
    int64_t ticks; /* arrival of the previous received packet, 250 us ticks */
} twcc_walk_t;

static unsigned twcc_sym(twcc_walk_t *w, int64_t *delta)
{
    const spk_twcc_recv_t *p = &w->pkts[w->i];
    if (p->seq - w->base != w->j) {
        w->j++;
        return 0;
    }
    int64_t t = floor_div(p->arrival_us, 250);
    int64_t d = t - w->ticks;
    w->ticks = t;
    w->i++;
    w->j++;
    if (delta != NULL) {
        *delta = d;
    }
    return (d >= 0 && d <= 255) ? 1 : 2;
}

/* Encodes (or only counts, when out is NULL) the chunks for statuses [0, count). */
static size_t twcc_chunks(twcc_walk_t w, int64_t count, uint8_t *out)
{
    size_t bytes = 0;
    while (w.j < count) {
        /* Run-length when at least 7 equal symbols follow. */
        twcc_walk_t look = w;
        unsigned first = twcc_sym(&look, NULL);
        int64_t run = 1;
        while (look.j < count && run < 0x1fff) {
            twcc_walk_t probe = look;
            if (twcc_sym(&probe, NULL) != first) {
                break;
            }
            look = probe;
            run++;
        }
        uint16_t chunk;
        if (run >= 7) {
            chunk = (uint16_t)(first << 13 | (unsigned)run);
            w = look;
        } else {
            chunk = 0xC000; /* status vector, two-bit symbols */
            for (unsigned k = 0; k < 7 && w.j < count; k++) {
                chunk = (uint16_t)(chunk | twcc_sym(&w, NULL) << (12 - 2 * k));
            }
        }
        if (out != NULL) {
            spk_wr16(out + bytes, chunk);
        }
        bytes += 2;
    }
    return bytes;
}

/* Packets that fit the delta range and status count limits. */
static size_t twcc_fit(const spk_twcc_recv_t *pkts, size_t n, int64_t base, int64_t ref_ticks)
{
    int64_t ticks = ref_ticks;
    for (size_t i = 0; i < n; i++) {
        if (pkts[i].seq - base > 0xfffe) {
            return i;
        }
        int64_t t = floor_div(pkts[i].arrival_us, 250);
        if (t - ticks < -32768 || t - ticks > 32767) {
            return i;
        }
        ticks = t;
    }
    return n;
}

static size_t twcc_size(const spk_twcc_recv_t *pkts, size_t k, int64_t base, int64_t ref_ticks)
{
    twcc_walk_t w = {pkts, k, 0, 0, base, ref_ticks};
    int64_t count = pkts[k - 1].seq - base + 1;
    size_t bytes = 20 + twcc_chunks(w, count, NULL);
    int64_t ticks = ref_ticks;
    for (size_t i = 0; i < k; i++) {
        int64_t t = floor_div(pkts[i].arrival_us, 250);
        bytes += (t - ticks >= 0 && t - ticks <= 255) ? 1 : 2;
        ticks = t;
    }
    return (bytes + 3) & ~(size_t)3;
}

static void twcc_write(uint8_t *out, size_t len, uint8_t fb_count, const spk_twcc_recv_t *pkts,
                       size_t k, int64_t base, int64_t ref)
{
    int64_t ref_ticks = ref * 256;
    memset(out + 12, 0, len - 12);
    int64_t count = pkts[k - 1].seq - base + 1;
    spk_wr16(out + 12, (uint16_t)base);
    spk_wr16(out + 14, (uint16_t)count);
    spk_wr24(out + 16, (uint32_t)ref & 0xffffffu);
    out[19] = fb_count;
    twcc_walk_t w = {pkts, k, 0, 0, base, ref_ticks};
    size_t pos = 20 + twcc_chunks(w, count, out + 20);
    int64_t ticks = ref_ticks;
    for (size_t i = 0; i < k; i++) {
        int64_t t = floor_div(pkts[i].arrival_us, 250);
        int64_t d = t - ticks;
        ticks = t;
        if (d >= 0 && d <= 255) {
            out[pos++] = (uint8_t)d;
        } else {
            spk_wr16(out + pos, (uint16_t)(int16_t)d);
            pos += 2;
        }
    }
    if (pos < len) {
        /* RFC 3550 padding to the 32-bit boundary, as libwebrtc writes it. */
        out[0] |= 0x20;
        out[len - 1] = (uint8_t)(len - pos);
    }
}

int spk_core_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        uint8_t fb_count, int64_t base, const spk_twcc_recv_t *pkts, size_t n,
                        size_t *consumed)
{
    if (consumed != NULL) {
        *consumed = 0;
    }
    if (pkts == NULL || n == 0 || base > pkts[0].seq) {
        return SPK_EINVAL;
    }
    for (size_t i = 1; i < n; i++) {
        if (pkts[i].seq <= pkts[i - 1].seq) {
            return SPK_EINVAL;
        }
    }
    int64_t ref = floor_div(pkts[0].arrival_us, 64000);
    int64_t ref_ticks = ref * 256;
    size_t k = twcc_fit(pkts, n, base, ref_ticks);
    while (k > 0 && twcc_size(pkts, k, base, ref_ticks) > cap) {
        k /= 2;
    }
    if (k == 0 || out == NULL) {
        return SPK_ETOOBIG;
    }
    size_t len = twcc_size(pkts, k, base, ref_ticks);
    int rc = fb_header(out, cap, SPK_RTPFB_TWCC, SPK_RTCP_RTPFB, len, sender_ssrc, media_ssrc);
    if (rc < 0) {
        return rc;
    }
    twcc_write(out, len, fb_count, pkts, k, base, ref);
    if (consumed != NULL) {
        *consumed = k;
    }
    return (int)len;
}

int spk_rtcp_build_twcc(uint8_t *out, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                        uint8_t fb_count, const spk_twcc_recv_t *pkts, size_t n, size_t *consumed)
{
    int64_t base = (pkts != NULL && n > 0) ? pkts[0].seq : 0;
    return spk_core_build_twcc(out, cap, sender_ssrc, media_ssrc, fb_count, base, pkts, n,
                               consumed);
}
