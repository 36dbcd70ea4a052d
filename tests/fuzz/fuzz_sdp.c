/* libFuzzer target for the SDP core (spk/sdp.h).
 *
 * The input is parsed as a description and as a trickled candidate. Properties checked, each
 * aborting on failure:
 *  - whatever parses is written back and parses again to the identical struct, and writing
 *    that gives the identical text;
 *  - the relay's answer to a parsed offer (when one can be made) is written and parses again
 *    to the identical struct;
 *  - a parsed candidate formats and parses again to the identical struct, and the relay's
 *    address filter (spk/addr_filter.h) decides on its address the same way twice, never
 *    accepting a name or a loopback address other than the relay's own. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/addr_filter.h"
#include "spk/error.h"
#include "spk/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (4 * SPK_SDP_MAX_SIZE)

static spk_sdp_t g_a;
static spk_sdp_t g_b;
static char g_out[OUT_CAP];
static char g_out2[OUT_CAP];

static void check_roundtrip(const spk_sdp_t *s)
{
    int n = spk_sdp_write(s, g_out, sizeof(g_out));
    if (n == SPK_EINVAL) {
        return; /* e.g. rejected section without formats cannot be printed */
    }
    if (n < 0) {
        abort();
    }
    if ((size_t)n > SPK_SDP_MAX_SIZE) {
        return; /* the rewrite can be larger than the parser accepts */
    }
    char why[256];
    if (spk_sdp_parse(&g_b, g_out, (size_t)n, why, sizeof(why)) != 0) {
        abort();
    }
    /* Entries dropped at the limits are not written, so only their count differs. */
    static spk_sdp_t want;
    want = *s;
    for (unsigned i = 0; i < want.n_media; i++) {
        want.media[i].n_dropped = 0;
    }
    if (memcmp(&want, &g_b, sizeof(g_b)) != 0) {
        abort();
    }
    int n2 = spk_sdp_write(&g_b, g_out2, sizeof(g_out2));
    if (n2 != n || memcmp(g_out, g_out2, (size_t)n) != 0) {
        abort();
    }
}

static void check_answer(const spk_sdp_t *offer)
{
    static spk_sdp_t answer;
    spk_sdp_local_t l;
    memset(&l, 0, sizeof(l));
    l.ice_ufrag = "spk1";
    l.ice_pwd = "abcdefghijklmnopqrstuvwx";
    l.fingerprint.hash = SPK_SDP_HASH_SHA256;
    l.fingerprint.len = 32;
    l.ice_lite = true;
    l.fb_audio = SPK_SDP_FB_TRANSPORT_CC;
    l.fb_video = SPK_SDP_FB_NACK | SPK_SDP_FB_NACK_PLI | SPK_SDP_FB_TRANSPORT_CC;
    l.exts = SPK_SDP_EXT_BIT(SPK_EXT_MID) | SPK_SDP_EXT_BIT(SPK_EXT_TRANSPORT_CC);
    char why[256];
    if (spk_sdp_answer_init(&answer, offer, &l, why, sizeof(why)) != 0) {
        return;
    }
    check_roundtrip(&answer);
}

static void check_candidate(const uint8_t *data, size_t size)
{
    spk_sdp_candidate_t c;
    spk_sdp_candidate_t d;
    char why[256];
    if (spk_sdp_candidate_parse(&c, (const char *)data, size, why, sizeof(why)) != 0) {
        return;
    }
    char buf[SPK_SDP_MAX_LINE + 64];
    int n = spk_sdp_candidate_format(&c, buf, sizeof(buf));
    if (n < 0 || spk_sdp_candidate_parse(&d, buf, (size_t)n, why, sizeof(why)) != 0 ||
        memcmp(&c, &d, sizeof(c)) != 0) {
        abort();
    }
    static spk_addr_filter_t f;
    static bool f_ready;
    if (!f_ready) {
        static const char *const local[] = {"127.0.0.1", "203.0.113.7"};
        if (spk_addr_filter_init(&f, local, 2, "198.51.100.0/24", "203.0.113.0/24", NULL, 0) != 0) {
            abort();
        }
        f_ready = true;
    }
    bool ok = spk_addr_filter_allows(&f, c.addr);
    uint8_t a[16];
    bool literal = spk_addr_parse(c.addr, a);
    static const uint8_t own[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
    if (ok != spk_addr_filter_allows(&f, d.addr) || (ok && !literal) ||
        (ok && a[10] == 0xff && a[11] == 0xff && a[12] == 127 && memcmp(a, own, 16) != 0)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    check_candidate(data, size);
    if (spk_sdp_parse(&g_a, (const char *)data, size, why, sizeof(why)) != 0) {
        return 0;
    }
    check_roundtrip(&g_a);
    check_answer(&g_a);
    return 0;
}
