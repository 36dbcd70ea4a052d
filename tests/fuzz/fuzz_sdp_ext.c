/* libFuzzer target for the header extension map (spk_sdp_ext_map, spk/sdp.h) and its use on
 * packets (spk_rtp_ext_remap, spk/rtp.h): the relay builds the map from its answer to a
 * publisher's offer and rewrites every RTP packet of that publisher with it.
 *
 * Input: two bytes (little-endian) of the set of extensions the relay forwards (spk_sdp_ext_t
 * bits), then an SDP offer, then optionally a NUL and the body of a one-byte-form (RFC 8285)
 * extension block. Properties checked, each aborting on failure, for the map of the relay's
 * answer and for the map of the offer itself:
 *  - map[0] is 0, and every entry is 0 or an id 1..14 of the subscribers' offer;
 *  - an entry map[i] = v comes from an accepted section with an extmap of id i whose extension
 *    is forwarded and is offered under v (spk_sdp_offer_ext_id);
 *  - no two extensions share an offered id;
 * and for the packet: the remap succeeds exactly when the block walks without truncation; after
 * it every element carries an id some entry of the map gives, and no more elements remain than
 * there were with a nonzero map entry. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rtp.h"
#include "spk/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PKT_CAP (12 + 4 + 1024)

static spk_sdp_t g_offer;
static spk_sdp_t g_answer;

/* The section extmap that explains map[id] = v, if any. */
static bool explained(const spk_sdp_t *sdp, uint32_t exts, unsigned id, uint8_t v)
{
    for (unsigned i = 0; i < sdp->n_media; i++) {
        const spk_sdp_media_t *m = &sdp->media[i];
        for (unsigned k = 0; m->port != 0 && k < m->n_extmaps; k++) {
            const spk_sdp_extmap_t *x = &m->extmaps[k];
            if (x->id == id && (exts & SPK_SDP_EXT_BIT(x->ext)) != 0 &&
                spk_sdp_offer_ext_id(exts, x->ext) == v) {
                return true;
            }
        }
    }
    return false;
}

static void check_map(const spk_sdp_t *sdp, uint32_t exts, uint8_t map[256])
{
    spk_sdp_ext_map(sdp, exts, map);
    if (map[0] != 0) {
        abort();
    }
    for (unsigned id = 1; id < 256; id++) {
        if (map[id] != 0 && (map[id] > 14 || !explained(sdp, exts, id, map[id]))) {
            abort();
        }
    }
    /* The offered ids are distinct per extension. */
    for (int a = 1; a < SPK_EXT_COUNT_; a++) {
        uint8_t ia = spk_sdp_offer_ext_id(exts, (spk_sdp_ext_t)a);
        for (int b = a + 1; ia != 0 && b < SPK_EXT_COUNT_; b++) {
            if (spk_sdp_offer_ext_id(exts, (spk_sdp_ext_t)b) == ia) {
                abort();
            }
        }
    }
}

/* Counts the elements of a parsed packet, and those whose id has a nonzero map entry; false
 * when the block is truncated. */
static bool walk(const uint8_t *pkt, size_t len, const uint8_t map[256], size_t *n, size_t *kept,
                 bool check_ids)
{
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, pkt, len, NULL, 0) != 0) {
        abort(); /* built to be valid */
    }
    bool image[256] = {false};
    for (unsigned i = 0; i < 256; i++) {
        image[map[i]] = map[i] != 0;
    }
    spk_rtp_ext_iter_t it;
    spk_rtp_ext_iter_init(&it, &v);
    spk_rtp_ext_t e;
    int rc;
    *n = *kept = 0;
    while ((rc = spk_rtp_ext_next(&it, &e)) == 0) {
        (*n)++;
        *kept += map[e.id] != 0 ? 1u : 0u;
        if (check_ids && !image[e.id]) {
            abort();
        }
    }
    return rc == SPK_ENOTFOUND;
}

static void check_remap(const uint8_t map[256], const uint8_t *body, size_t n)
{
    static uint8_t pkt[PKT_CAP];
    if (n > PKT_CAP - 16) {
        n = PKT_CAP - 16;
    }
    size_t words = (n + 3) / 4;
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0x90; /* V=2, X=1 */
    pkt[1] = 96;
    pkt[12] = 0xBE;
    pkt[13] = 0xDE;
    pkt[14] = (uint8_t)(words >> 8);
    pkt[15] = (uint8_t)words;
    memcpy(pkt + 16, body, n);
    size_t len = 16 + words * 4 + 4; /* and a little payload */
    size_t before = 0, kept = 0, after = 0, unused = 0;
    bool clean = walk(pkt, len, map, &before, &kept, false);
    spk_rtp_view_t v;
    if (spk_rtp_parse(&v, pkt, len, NULL, 0) != 0) {
        abort();
    }
    int rc = spk_rtp_ext_remap(pkt, &v, map);
    if ((rc == 0) != clean) {
        abort();
    }
    if (rc != 0) {
        return;
    }
    /* After the rewrite the ids are the subscribers': check them against the map's image. */
    if (!walk(pkt, len, map, &after, &unused, true) || after > kept) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    uint32_t exts = (uint32_t)(data[0] | data[1] << 8) & ((1u << SPK_EXT_COUNT_) - 1u);
    exts &= ~SPK_SDP_EXT_BIT(SPK_EXT_OTHER);
    const uint8_t *sdp = data + 2;
    size_t sdp_len = size - 2;
    const uint8_t *nul = memchr(sdp, 0, sdp_len);
    const uint8_t *body = NULL;
    size_t body_len = 0;
    if (nul != NULL) {
        body = nul + 1;
        body_len = sdp_len - (size_t)(body - sdp);
        sdp_len = (size_t)(nul - sdp);
    }
    if (spk_sdp_parse(&g_offer, (const char *)sdp, sdp_len, NULL, 0) != 0) {
        return 0;
    }
    uint8_t map[256];
    check_map(&g_offer, exts, map);
    if (body != NULL) {
        check_remap(map, body, body_len);
    }
    spk_sdp_local_t l;
    memset(&l, 0, sizeof(l));
    l.ice_ufrag = "spk1";
    l.ice_pwd = "abcdefghijklmnopqrstuvwx";
    l.fingerprint.hash = SPK_SDP_HASH_SHA256;
    l.fingerprint.len = 32;
    l.ice_lite = true;
    l.exts = exts | SPK_SDP_EXT_BIT(SPK_EXT_MID);
    if (spk_sdp_answer_init(&g_answer, &g_offer, &l, NULL, 0) != 0) {
        return 0;
    }
    check_map(&g_answer, exts, map);
    if (body != NULL) {
        check_remap(map, body, body_len);
    }
    return 0;
}
