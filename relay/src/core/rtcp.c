/* RTCP parsing: compound iterator (RFC 3550, RFC 5506 reduced size), SR/RR, SDES, BYE, APP,
 * RFC 4585 feedback (generic NACK, PLI), RFC 5104 FIR, REMB and transport-cc feedback. */
#include <string.h>

#include "core_int.h"
#include "spk/error.h"
#include "spk/rtp.h"

#define RTCP_REPORT_LEN 24

void spk_rtcp_iter_init(spk_rtcp_iter_t *it, const uint8_t *buf, size_t len)
{
    it->buf = buf;
    it->len = buf == NULL ? 0 : len;
    it->pos = 0;
}

/* Smallest body (after the 4-byte header, without padding) each packet type can have. */
static size_t rtcp_min_body(uint8_t pt, uint8_t count)
{
    switch (pt) {
    case SPK_RTCP_SR:
        return 24 + (size_t)count * RTCP_REPORT_LEN;
    case SPK_RTCP_RR:
        return 4 + (size_t)count * RTCP_REPORT_LEN;
    case SPK_RTCP_BYE:
        return (size_t)count * 4;
    case SPK_RTCP_SDES:
        return (size_t)count * 8; /* ssrc + null item padded */
    case SPK_RTCP_APP:
        return 8;
    case SPK_RTCP_RTPFB:
    case SPK_RTCP_PSFB:
        return 8;
    case SPK_RTCP_XR:
        return 4;
    default:
        return 0;
    }
}

static const char *rtcp_name(uint8_t pt)
{
    switch (pt) {
    case SPK_RTCP_SR:
        return "SR";
    case SPK_RTCP_RR:
        return "RR";
    case SPK_RTCP_SDES:
        return "SDES";
    case SPK_RTCP_BYE:
        return "BYE";
    case SPK_RTCP_APP:
        return "APP";
    case SPK_RTCP_RTPFB:
        return "RTPFB";
    case SPK_RTCP_PSFB:
        return "PSFB";
    case SPK_RTCP_XR:
        return "XR";
    default:
        return "packet";
    }
}

int spk_rtcp_next(spk_rtcp_iter_t *it, spk_rtcp_pkt_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (it->pos >= it->len) {
        return SPK_ENOTFOUND;
    }
    const uint8_t *p = it->buf + it->pos;
    size_t left = it->len - it->pos;
    if (left < SPK_RTCP_HEADER_LEN) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: %zu trailing bytes", left);
    }
    if ((p[0] >> 6) != 2) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: version %u", p[0] >> 6);
    }
    uint8_t pt = p[1];
    if (pt < 192 || pt > 223) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: packet type %u", pt);
    }
    size_t len = ((size_t)spk_rd16(p + 2) + 1) * 4;
    if (len > left) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: length %zu beyond %zu bytes", len,
                             left);
    }
    size_t body_len = len - SPK_RTCP_HEADER_LEN;
    bool padding = (p[0] & 0x20) != 0;
    if (padding) {
        uint8_t pad = p[len - 1];
        if (pad == 0 || pad > body_len) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: padding count %u of %zu", pad,
                                 body_len);
        }
        body_len -= pad;
    }
    uint8_t count = p[0] & 0x1f;
    size_t min = rtcp_min_body(pt, count);
    if (body_len < min) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: %s count %u needs %zu bytes, has %zu",
                             rtcp_name(pt), count, min, body_len);
    }
    out->pt = pt;
    out->count = count;
    out->padding = padding;
    out->data = p;
    out->len = len;
    out->body = p + SPK_RTCP_HEADER_LEN;
    out->body_len = body_len;
    it->pos += len;
    return 0;
}

int spk_rtcp_validate(const uint8_t *buf, size_t len, char *why, size_t why_len)
{
    spk_rtcp_iter_t it;
    spk_rtcp_pkt_t p;
    spk_rtcp_iter_init(&it, buf, len);
    int n = 0;
    int rc;
    while ((rc = spk_rtcp_next(&it, &p, why, why_len)) == 0) {
        n++;
    }
    if (rc != SPK_ENOTFOUND) {
        return rc;
    }
    if (n == 0) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: empty");
    }
    return 0;
}

uint32_t spk_rtcp_ssrc_at(const uint8_t *list, unsigned i)
{
    return spk_rd32(list + 4u * i);
}

int spk_rtcp_parse_sr_rr(const spk_rtcp_pkt_t *p, spk_rtcp_sr_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (p->pt != SPK_RTCP_SR && p->pt != SPK_RTCP_RR) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: %u is not SR/RR", p->pt);
    }
    size_t fixed = p->pt == SPK_RTCP_SR ? 24 : 4;
    if (p->body_len < fixed + (size_t)p->count * RTCP_REPORT_LEN) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: %u report blocks beyond packet",
                             p->count);
    }
    const uint8_t *b = p->body;
    out->ssrc = spk_rd32(b);
    out->is_sr = p->pt == SPK_RTCP_SR;
    if (out->is_sr) {
        out->ntp = (uint64_t)spk_rd32(b + 4) << 32 | spk_rd32(b + 8);
        out->rtp_ts = spk_rd32(b + 12);
        out->packet_count = spk_rd32(b + 16);
        out->octet_count = spk_rd32(b + 20);
    }
    out->n_reports = p->count;
    out->reports = b + fixed;
    return 0;
}

void spk_rtcp_report_get(const spk_rtcp_sr_t *sr, unsigned i, spk_rtcp_report_t *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= sr->n_reports) {
        return;
    }
    const uint8_t *r = sr->reports + (size_t)i * RTCP_REPORT_LEN;
    out->ssrc = spk_rd32(r);
    out->fraction_lost = r[4];
    uint32_t cl = spk_rd24(r + 5);
    out->cumulative_lost = (cl & 0x800000u) ? (int32_t)cl - 0x1000000 : (int32_t)cl;
    out->ext_highest_seq = spk_rd32(r + 8);
    out->jitter = spk_rd32(r + 12);
    out->lsr = spk_rd32(r + 16);
    out->dlsr = spk_rd32(r + 20);
}

int spk_rtcp_sdes_iter_init(spk_rtcp_sdes_iter_t *it, const spk_rtcp_pkt_t *p)
{
    memset(it, 0, sizeof(*it));
    if (p->pt != SPK_RTCP_SDES) {
        return SPK_EINVAL;
    }
    it->body = p->body;
    it->len = p->body_len;
    it->chunks_left = p->count;
    return 0;
}

int spk_rtcp_sdes_next(spk_rtcp_sdes_iter_t *it, spk_rtcp_sdes_item_t *out)
{
    for (;;) {
        if (!it->in_chunk) {
            if (it->chunks_left == 0) {
                return SPK_ENOTFOUND;
            }
            if (it->len - it->pos < 4) {
                it->chunks_left = 0;
                return SPK_ETRUNC;
            }
            it->ssrc = spk_rd32(it->body + it->pos);
            it->pos += 4;
            it->chunks_left--;
            it->in_chunk = true;
        }
        if (it->pos >= it->len) {
            it->chunks_left = 0;
            it->in_chunk = false;
            return SPK_ETRUNC; /* no null item */
        }
        uint8_t type = it->body[it->pos];
        if (type == 0) {
            size_t next = (it->pos + 4) & ~(size_t)3; /* null item, then pad to 32 bits */
            it->in_chunk = false;
            if (next > it->len) {
                it->chunks_left = 0;
                return SPK_ETRUNC;
            }
            it->pos = next;
            continue;
        }
        if (it->len - it->pos < 2 || it->body[it->pos + 1] > it->len - it->pos - 2) {
            it->chunks_left = 0;
            it->in_chunk = false;
            return SPK_ETRUNC;
        }
        out->ssrc = it->ssrc;
        out->type = type;
        out->len = it->body[it->pos + 1];
        out->data = it->body + it->pos + 2;
        it->pos += 2 + (size_t)out->len;
        return 0;
    }
}

int spk_rtcp_parse_bye(const spk_rtcp_pkt_t *p, spk_rtcp_bye_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (p->pt != SPK_RTCP_BYE) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: %u is not BYE", p->pt);
    }
    size_t list = (size_t)p->count * 4;
    if (p->body_len < list) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: BYE with %u ssrcs truncated",
                             p->count);
    }
    out->n_ssrcs = p->count;
    out->ssrcs = p->body;
    if (p->body_len > list) {
        uint8_t rl = p->body[list];
        if (rl > p->body_len - list - 1) {
            return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: BYE reason of %u truncated", rl);
        }
        out->reason_len = rl;
        out->reason = p->body + list + 1;
    }
    return 0;
}

int spk_rtcp_parse_app(const spk_rtcp_pkt_t *p, spk_rtcp_app_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (p->pt != SPK_RTCP_APP) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: %u is not APP", p->pt);
    }
    if (p->body_len < 8) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: APP truncated");
    }
    out->subtype = p->count;
    out->ssrc = spk_rd32(p->body);
    memcpy(out->name, p->body + 4, 4);
    out->name[4] = '\0';
    out->data = p->body + 8;
    out->len = p->body_len - 8;
    return 0;
}

int spk_rtcp_parse_fb(const spk_rtcp_pkt_t *p, spk_rtcp_fb_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (p->pt != SPK_RTCP_RTPFB && p->pt != SPK_RTCP_PSFB) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: %u is not feedback", p->pt);
    }
    if (p->body_len < 8) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: feedback truncated");
    }
    out->pt = p->pt;
    out->fmt = p->count;
    out->sender_ssrc = spk_rd32(p->body);
    out->media_ssrc = spk_rd32(p->body + 4);
    out->fci = p->body + 8;
    out->fci_len = p->body_len - 8;
    return 0;
}

int spk_rtcp_nack_iter_init(spk_rtcp_nack_iter_t *it, const spk_rtcp_fb_t *fb, char *why,
                            size_t why_len)
{
    memset(it, 0, sizeof(*it));
    if (fb->pt != SPK_RTCP_RTPFB || fb->fmt != SPK_RTPFB_NACK) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: not a generic NACK");
    }
    if (fb->fci_len == 0 || fb->fci_len % 4 != 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: NACK FCI of %zu bytes", fb->fci_len);
    }
    it->fci = fb->fci;
    it->n_items = fb->fci_len / 4;
    it->bit = -1;
    return 0;
}

bool spk_rtcp_nack_next(spk_rtcp_nack_iter_t *it, uint16_t *seq)
{
    while (it->item < it->n_items) {
        const uint8_t *f = it->fci + it->item * 4;
        uint16_t pid = spk_rd16(f);
        uint16_t blp = spk_rd16(f + 2);
        int bit = it->bit;
        if (bit == -1) {
            it->bit = 0;
            *seq = pid;
            return true;
        }
        while (bit < 16 && (blp & (1u << bit)) == 0) {
            bit++;
        }
        if (bit < 16) {
            it->bit = bit + 1;
            *seq = (uint16_t)(pid + bit + 1);
            return true;
        }
        it->item++;
        it->bit = -1;
    }
    return false;
}

int spk_rtcp_fir_count(const spk_rtcp_fb_t *fb, size_t *n, char *why, size_t why_len)
{
    *n = 0;
    if (fb->pt != SPK_RTCP_PSFB || fb->fmt != SPK_PSFB_FIR) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: not a FIR");
    }
    if (fb->fci_len == 0 || fb->fci_len % 8 != 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: FIR FCI of %zu bytes", fb->fci_len);
    }
    *n = fb->fci_len / 8;
    return 0;
}

void spk_rtcp_fir_get(const spk_rtcp_fb_t *fb, size_t i, uint32_t *ssrc, uint8_t *seq_nr)
{
    if ((i + 1) * 8 > fb->fci_len) {
        *ssrc = 0;
        *seq_nr = 0;
        return;
    }
    *ssrc = spk_rd32(fb->fci + i * 8);
    *seq_nr = fb->fci[i * 8 + 4];
}

int spk_rtcp_parse_remb(const spk_rtcp_fb_t *fb, spk_rtcp_remb_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (fb->pt != SPK_RTCP_PSFB || fb->fmt != SPK_PSFB_AFB) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: not an AFB");
    }
    if (fb->fci_len < 4 || memcmp(fb->fci, "REMB", 4) != 0) {
        return spk_core_fail(why, why_len, SPK_ENOTFOUND, "rtcp: AFB is not REMB");
    }
    if (fb->fci_len < 8) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: REMB truncated");
    }
    uint8_t n = fb->fci[4];
    if (fb->fci_len != 8 + (size_t)n * 4) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtcp: REMB num ssrc %u in %zu bytes", n,
                             fb->fci_len);
    }
    unsigned exp = fb->fci[5] >> 2;
    uint64_t mantissa = (uint64_t)(fb->fci[5] & 3) << 16 | spk_rd16(fb->fci + 6);
    if (exp > 0 && (mantissa >> (64 - exp)) != 0) {
        out->bitrate_bps = UINT64_MAX;
    } else {
        out->bitrate_bps = mantissa << exp;
    }
    out->n_ssrcs = n;
    out->ssrcs = fb->fci + 8;
    return 0;
}

int spk_rtcp_parse_twcc(const spk_rtcp_fb_t *fb, spk_rtcp_twcc_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (fb->pt != SPK_RTCP_RTPFB || fb->fmt != SPK_RTPFB_TWCC) {
        return spk_core_fail(why, why_len, SPK_EINVAL, "rtcp: not transport-cc");
    }
    if (fb->fci_len < 8) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtcp: transport-cc truncated");
    }
    out->base_seq = spk_rd16(fb->fci);
    out->status_count = spk_rd16(fb->fci + 2);
    uint32_t ref = spk_rd24(fb->fci + 4);
    out->ref_time = (ref & 0x800000u) ? (int32_t)ref - 0x1000000 : (int32_t)ref;
    out->fb_count = fb->fci[7];
    out->chunks = fb->fci + 8;
    out->chunks_len = fb->fci_len - 8;
    return 0;
}

/* Status symbol j of chunk c and the number of statuses the chunk carries. */
static unsigned twcc_chunk_n(uint16_t c)
{
    if ((c & 0x8000) == 0) {
        return c & 0x1fff;
    }
    return (c & 0x4000) ? 7 : 14;
}

static unsigned twcc_chunk_sym(uint16_t c, unsigned j)
{
    if ((c & 0x8000) == 0) {
        return (c >> 13) & 3;
    }
    if (c & 0x4000) {
        return (c >> (12 - 2 * j)) & 3;
    }
    return (c >> (13 - j)) & 1;
}

int spk_rtcp_twcc_decode(const spk_rtcp_twcc_t *tw, spk_twcc_status_t *out, size_t cap)
{
    /* Pass 1: find where the receive deltas start. */
    size_t pos = 0;
    size_t total = 0;
    while (total < tw->status_count) {
        if (tw->chunks_len - pos < 2) {
            return SPK_ETRUNC;
        }
        total += twcc_chunk_n(spk_rd16(tw->chunks + pos));
        pos += 2;
    }
    size_t dpos = pos;
    /* Pass 2: statuses and deltas. */
    int64_t t = (int64_t)tw->ref_time * 64000;
    size_t idx = 0;
    pos = 0;
    while (idx < tw->status_count) {
        uint16_t c = spk_rd16(tw->chunks + pos);
        pos += 2;
        unsigned n = twcc_chunk_n(c);
        for (unsigned j = 0; j < n && idx < tw->status_count; j++, idx++) {
            unsigned sym = twcc_chunk_sym(c, j);
            int64_t delta = 0;
            if (sym == 1) {
                if (tw->chunks_len - dpos < 1) {
                    return SPK_ETRUNC;
                }
                delta = tw->chunks[dpos];
                dpos += 1;
            } else if (sym == 2) {
                if (tw->chunks_len - dpos < 2) {
                    return SPK_ETRUNC;
                }
                delta = (int16_t)spk_rd16(tw->chunks + dpos);
                dpos += 2;
            } else if (sym == 3) {
                return SPK_EDECODE;
            }
            t += delta * 250;
            if (idx < cap) {
                out[idx].seq = (uint16_t)(tw->base_seq + idx);
                out[idx].received = sym != 0;
                out[idx].arrival_us = sym != 0 ? t : 0;
            }
        }
    }
    return (int)(tw->status_count < cap ? tw->status_count : cap);
}
