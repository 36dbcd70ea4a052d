/* RTP: demultiplexing, header view, RFC 8285 header extensions, sequence unwrapping and
 * RFC 3550 receiver statistics. */
#include <string.h>

#include "core_int.h"
#include "spk/error.h"
#include "spk/rtp.h"

int spk_core_fail(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why != NULL && why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

spk_pkt_class_t spk_pkt_classify(const uint8_t *buf, size_t len)
{
    if (buf == NULL || len == 0) {
        return SPK_PKT_UNKNOWN;
    }
    uint8_t b = buf[0];
    if (b <= 3) {
        return SPK_PKT_STUN;
    }
    if (b >= 16 && b <= 19) {
        return SPK_PKT_ZRTP;
    }
    if (b >= 20 && b <= 63) {
        return SPK_PKT_DTLS;
    }
    if (b >= 64 && b <= 79) {
        return SPK_PKT_TURN_CHANNEL;
    }
    if (b >= 128 && b <= 191) {
        if (len >= 2 && buf[1] >= 192 && buf[1] <= 223) {
            return SPK_PKT_RTCP;
        }
        return SPK_PKT_RTP;
    }
    return SPK_PKT_UNKNOWN;
}

int spk_rtp_parse(spk_rtp_view_t *v, const uint8_t *buf, size_t len, char *why, size_t why_len)
{
    memset(v, 0, sizeof(*v));
    if (buf == NULL || len < SPK_RTP_HEADER_LEN) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtp: %zu bytes, header needs 12", len);
    }
    if ((buf[0] >> 6) != 2) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtp: version %u", buf[0] >> 6);
    }
    v->data = buf;
    v->len = len;
    v->padding = (buf[0] & 0x20) != 0;
    v->extension = (buf[0] & 0x10) != 0;
    v->cc = buf[0] & 0x0f;
    v->marker = (buf[1] & 0x80) != 0;
    v->pt = buf[1] & 0x7f;
    v->seq = spk_rd16(buf + 2);
    v->ts = spk_rd32(buf + 4);
    v->ssrc = spk_rd32(buf + 8);
    size_t off = SPK_RTP_HEADER_LEN + 4u * v->cc;
    if (off > len) {
        return spk_core_fail(why, why_len, SPK_ETRUNC, "rtp: %u csrcs beyond %zu bytes", v->cc,
                             len);
    }
    if (v->extension) {
        if (off + 4 > len) {
            return spk_core_fail(why, why_len, SPK_ETRUNC, "rtp: extension header truncated");
        }
        v->ext_profile = spk_rd16(buf + off);
        size_t words = spk_rd16(buf + off + 2);
        v->ext_off = off + 4;
        v->ext_len = words * 4;
        if (v->ext_len > len - v->ext_off) {
            return spk_core_fail(why, why_len, SPK_ETRUNC,
                                 "rtp: extension of %zu bytes beyond packet", v->ext_len);
        }
        off = v->ext_off + v->ext_len;
    }
    v->payload_off = off;
    size_t rest = len - off;
    if (v->padding) {
        uint8_t pad = buf[len - 1];
        if (pad == 0) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "rtp: padding count 0");
        }
        if (pad > rest) {
            return spk_core_fail(why, why_len, SPK_ETRUNC,
                                 "rtp: padding %u beyond %zu payload bytes", pad, rest);
        }
        v->pad_len = pad;
        rest -= pad;
    }
    v->payload_len = rest;
    return 0;
}

uint32_t spk_rtp_csrc(const spk_rtp_view_t *v, unsigned i)
{
    if (i >= v->cc) {
        return 0;
    }
    return spk_rd32(v->data + SPK_RTP_HEADER_LEN + 4u * i);
}

void spk_rtp_set_pt(uint8_t *pkt, uint8_t pt)
{
    pkt[1] = (uint8_t)((pkt[1] & 0x80) | (pt & 0x7f));
}

void spk_rtp_set_marker(uint8_t *pkt, bool marker)
{
    pkt[1] = (uint8_t)((pkt[1] & 0x7f) | (marker ? 0x80 : 0));
}

void spk_rtp_set_seq(uint8_t *pkt, uint16_t seq)
{
    spk_wr16(pkt + 2, seq);
}

void spk_rtp_set_ts(uint8_t *pkt, uint32_t ts)
{
    spk_wr32(pkt + 4, ts);
}

void spk_rtp_set_ssrc(uint8_t *pkt, uint32_t ssrc)
{
    spk_wr32(pkt + 8, ssrc);
}

/* ---- header extensions ---- */

void spk_rtp_ext_iter_init(spk_rtp_ext_iter_t *it, const spk_rtp_view_t *v)
{
    memset(it, 0, sizeof(*it));
    it->pkt = v->data;
    if (!v->extension) {
        return;
    }
    if (v->ext_profile == SPK_RTP_EXT_ONE_BYTE) {
        it->two_byte = false;
    } else if ((v->ext_profile & SPK_RTP_EXT_TWO_BYTE_MASK) == SPK_RTP_EXT_TWO_BYTE) {
        it->two_byte = true;
    } else {
        return;
    }
    it->valid = true;
    it->pos = v->ext_off;
    it->end = v->ext_off + v->ext_len;
}

int spk_rtp_ext_next(spk_rtp_ext_iter_t *it, spk_rtp_ext_t *out)
{
    if (!it->valid) {
        return SPK_ENOTFOUND;
    }
    while (it->pos < it->end && it->pkt[it->pos] == 0) {
        it->pos++; /* padding */
    }
    if (it->pos >= it->end) {
        it->valid = false;
        return SPK_ENOTFOUND;
    }
    const uint8_t *p = it->pkt + it->pos;
    size_t hdr;
    size_t len;
    uint8_t id;
    if (!it->two_byte) {
        id = p[0] >> 4;
        if (id == 15) {
            it->valid = false; /* RFC 8285 4.2: stop processing */
            return SPK_ENOTFOUND;
        }
        len = (size_t)(p[0] & 0x0f) + 1;
        hdr = 1;
    } else {
        if (it->pos + 2 > it->end) {
            it->valid = false;
            return SPK_ETRUNC;
        }
        id = p[0];
        len = p[1];
        hdr = 2;
    }
    if (len > it->end - it->pos - hdr) {
        it->valid = false;
        return SPK_ETRUNC;
    }
    out->id = id;
    out->len = (uint8_t)len;
    out->off = it->pos + hdr;
    out->data = it->pkt + out->off;
    it->pos += hdr + len;
    return 0;
}

int spk_rtp_ext_find(const spk_rtp_view_t *v, uint8_t id, spk_rtp_ext_t *out)
{
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_iter_init(&it, v);
    int rc;
    while ((rc = spk_rtp_ext_next(&it, out)) == 0) {
        if (out->id == id) {
            return 0;
        }
    }
    return rc;
}

int spk_rtp_ext_remap(uint8_t *pkt, const spk_rtp_view_t *v, const uint8_t map[256])
{
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_iter_init(&it, v);
    spk_rtp_ext_t e;
    int rc;
    while ((rc = spk_rtp_ext_next(&it, &e)) == 0) {
        size_t hdr = it.two_byte ? 2 : 1;
        uint8_t *h = pkt + e.off - hdr;
        uint8_t nid = map[e.id];
        if (!it.two_byte && nid > 14) {
            nid = 0;
        }
        if (nid == 0) {
            memset(h, 0, hdr + e.len);
        } else if (it.two_byte) {
            h[0] = nid;
        } else {
            h[0] = (uint8_t)((nid << 4) | (h[0] & 0x0f));
        }
    }
    return rc == SPK_ENOTFOUND ? 0 : rc;
}

bool spk_rtp_ext_read_u16(const spk_rtp_ext_t *e, uint16_t *out)
{
    if (e->len != 2) {
        return false;
    }
    *out = spk_rd16(e->data);
    return true;
}

bool spk_rtp_ext_read_abs_send_time(const spk_rtp_ext_t *e, uint32_t *out)
{
    if (e->len != 3) {
        return false;
    }
    *out = spk_rd24(e->data);
    return true;
}

bool spk_rtp_ext_read_audio_level(const spk_rtp_ext_t *e, bool *voice, uint8_t *level)
{
    if (e->len < 1) {
        return false;
    }
    *voice = (e->data[0] & 0x80) != 0;
    *level = e->data[0] & 0x7f;
    return true;
}

void spk_rtp_ext_write_u16(uint8_t *pkt, const spk_rtp_ext_t *e, uint16_t value)
{
    if (e->len >= 2) {
        spk_wr16(pkt + e->off, value);
    }
}

/* ---- sequence numbers and statistics ---- */

int64_t spk_seq_unwrap(spk_seq_unwrap_t *u, uint16_t seq)
{
    if (!u->started) {
        u->started = true;
        u->highest = seq;
        return seq;
    }
    uint16_t last = (uint16_t)u->highest;
    uint16_t fwd = (uint16_t)(seq - last);
    int64_t v;
    if (fwd < 0x8000) {
        v = u->highest + fwd;
        u->highest = v;
    } else {
        v = u->highest - (int64_t)(uint16_t)(last - seq);
    }
    return v;
}

enum { MAX_DROPOUT = 3000, MAX_MISORDER = 100, MIN_SEQUENTIAL = 2, RTP_SEQ_MOD = 1 << 16 };

static void rx_init_seq(spk_rtp_rx_stats_t *s, uint16_t seq)
{
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = RTP_SEQ_MOD + 1;
    s->cycles = 0;
    s->received = 0;
    s->received_prior = 0;
    s->expected_prior = 0;
}

void spk_rtp_rx_stats_init(spk_rtp_rx_stats_t *s, uint32_t ssrc, uint32_t clock_rate,
                           uint16_t first_seq)
{
    memset(s, 0, sizeof(*s));
    s->ssrc = ssrc;
    s->clock_rate = clock_rate;
    rx_init_seq(s, first_seq);
    s->max_seq = (uint16_t)(first_seq - 1);
    s->probation = MIN_SEQUENTIAL;
}

/* RFC 3550 A.1 update_seq. */
static bool rx_update_seq(spk_rtp_rx_stats_t *s, uint16_t seq)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    if (s->probation) {
        if (seq == (uint16_t)(s->max_seq + 1)) {
            s->probation--;
            s->max_seq = seq;
            if (s->probation == 0) {
                rx_init_seq(s, seq);
                s->received++;
                return true;
            }
        } else {
            s->probation = MIN_SEQUENTIAL - 1;
            s->max_seq = seq;
        }
        return false;
    }
    if (udelta < MAX_DROPOUT) {
        if (seq < s->max_seq) {
            s->cycles += RTP_SEQ_MOD;
        }
        s->max_seq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
        if (seq == s->bad_seq) {
            rx_init_seq(s, seq);
        } else {
            s->bad_seq = (uint32_t)((seq + 1) & (RTP_SEQ_MOD - 1));
            return false;
        }
    }
    s->received++;
    return true;
}

bool spk_rtp_rx_stats_update(spk_rtp_rx_stats_t *s, uint16_t seq, uint32_t rtp_ts,
                             uint64_t arrival_us)
{
    if (!rx_update_seq(s, seq)) {
        return false;
    }
    /* A.8: transit = arrival (RTP units) - timestamp; J += (|D| - J) / 16 with J scaled. */
    int64_t arrival = (int64_t)((arrival_us * (uint64_t)s->clock_rate) / 1000000u);
    int64_t transit = (int64_t)(uint32_t)((uint32_t)arrival - rtp_ts);
    if (s->have_transit) {
        int64_t d = (int64_t)(int32_t)(uint32_t)(transit - s->transit);
        if (d < 0) {
            d = -d;
        }
        int64_t j = (int64_t)s->jitter + d - (((int64_t)s->jitter + 8) >> 4);
        s->jitter = j < 0 ? 0 : (j > UINT32_MAX ? UINT32_MAX : (uint32_t)j);
    }
    s->transit = transit;
    s->have_transit = true;
    return true;
}

void spk_rtp_rx_stats_on_sr(spk_rtp_rx_stats_t *s, uint64_t ntp, uint64_t now_us)
{
    s->last_sr = (uint32_t)(ntp >> 16);
    s->last_sr_recv_us = now_us;
}

void spk_rtp_rx_stats_report(spk_rtp_rx_stats_t *s, uint64_t now_us, spk_rtcp_report_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ssrc = s->ssrc;
    uint32_t ext_max = s->cycles + s->max_seq;
    int64_t expected = (int64_t)ext_max - s->base_seq + 1;
    if (s->probation != 0) {
        expected = 0;
    }
    int64_t lost = expected - s->received;
    if (lost > 0x7fffff) {
        lost = 0x7fffff;
    } else if (lost < -0x800000) {
        lost = -0x800000;
    }
    int64_t expected_interval = expected - s->expected_prior;
    int64_t received_interval = (int64_t)s->received - s->received_prior;
    int64_t lost_interval = expected_interval - received_interval;
    if (s->probation == 0) {
        s->expected_prior = (uint32_t)expected;
        s->received_prior = s->received;
    }
    uint8_t fraction = 0;
    if (expected_interval > 0 && lost_interval > 0) {
        int64_t f = (lost_interval << 8) / expected_interval;
        fraction = (uint8_t)(f > 255 ? 255 : f);
    }
    out->fraction_lost = fraction;
    out->cumulative_lost = (int32_t)lost;
    out->ext_highest_seq = ext_max;
    out->jitter = s->jitter >> 4;
    out->lsr = s->last_sr;
    if (s->last_sr != 0 && now_us >= s->last_sr_recv_us) {
        /* DLSR in units of 1/65536 s. */
        out->dlsr = (uint32_t)(((now_us - s->last_sr_recv_us) * 65536u) / 1000000u);
    }
}
