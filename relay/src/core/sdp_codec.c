/* SDP codecs and header extensions: names, fmtp parameters, lookups, the relay's codec
 * preference. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "core_int.h"
#include "sdp_int.h"
#include "spk/error.h"
#include "spk/sdp.h"

static const struct {
    const char *name;
    spk_codec_t codec;
} k_codecs[] = {
    {"opus", SPK_CODEC_OPUS},
    {"VP8", SPK_CODEC_VP8},
    {"VP9", SPK_CODEC_VP9},
    {"H264", SPK_CODEC_H264},
    {"H265", SPK_CODEC_H265},
    {"AV1", SPK_CODEC_AV1},
    {"rtx", SPK_CODEC_RTX},
    {"red", SPK_CODEC_RED},
    {"ulpfec", SPK_CODEC_ULPFEC},
    {"flexfec-03", SPK_CODEC_FLEXFEC},
    {"telephone-event", SPK_CODEC_TELEPHONE_EVENT},
    {"CN", SPK_CODEC_CN},
    {"G722", SPK_CODEC_G722},
    {"PCMU", SPK_CODEC_PCMU},
    {"PCMA", SPK_CODEC_PCMA},
};

spk_codec_t spk_sdp_codec_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(k_codecs) / sizeof(k_codecs[0]); i++) {
        if (strcasecmp(name, k_codecs[i].name) == 0) {
            return k_codecs[i].codec;
        }
    }
    return SPK_CODEC_OTHER;
}

static const char *const k_ext_uris[SPK_EXT_COUNT_] = {
    [SPK_EXT_OTHER] = "",
    [SPK_EXT_MID] = "urn:ietf:params:rtp-hdrext:sdes:mid",
    [SPK_EXT_RID] = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    [SPK_EXT_RRID] = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    [SPK_EXT_ABS_SEND_TIME] = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    [SPK_EXT_TRANSPORT_CC] =
        "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    [SPK_EXT_AUDIO_LEVEL] = "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    [SPK_EXT_TOFFSET] = "urn:ietf:params:rtp-hdrext:toffset",
    [SPK_EXT_VIDEO_ORIENTATION] = "urn:3gpp:video-orientation",
    [SPK_EXT_PLAYOUT_DELAY] = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    [SPK_EXT_CSRC_AUDIO_LEVEL] = "urn:ietf:params:rtp-hdrext:csrc-audio-level",
    [SPK_EXT_DEPENDENCY_DESC] = ("https://aomediacodec.github.io/av1-rtp-spec/"
                                 "#dependency-descriptor-rtp-header-extension"),
};

spk_sdp_ext_t spk_sdp_ext_from_uri(const char *uri)
{
    for (int i = 1; i < SPK_EXT_COUNT_; i++) {
        if (strcmp(uri, k_ext_uris[i]) == 0) {
            return (spk_sdp_ext_t)i;
        }
    }
    return SPK_EXT_OTHER;
}

const char *spk_sdp_ext_uri(spk_sdp_ext_t ext)
{
    if ((int)ext <= 0 || ext >= SPK_EXT_COUNT_) {
        return "";
    }
    return k_ext_uris[ext];
}

const char *spk_sdp_dir_name(spk_sdp_dir_t dir)
{
    switch (dir) {
    case SPK_SDP_SENDONLY:
        return "sendonly";
    case SPK_SDP_RECVONLY:
        return "recvonly";
    case SPK_SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

const char *spk_sdp_hash_name(spk_sdp_hash_t hash)
{
    switch (hash) {
    case SPK_SDP_HASH_SHA1:
        return "sha-1";
    case SPK_SDP_HASH_SHA224:
        return "sha-224";
    case SPK_SDP_HASH_SHA256:
        return "sha-256";
    case SPK_SDP_HASH_SHA384:
        return "sha-384";
    case SPK_SDP_HASH_SHA512:
        return "sha-512";
    default:
        return "";
    }
}

void spk_sdp_codec_init_static(spk_sdp_codec_t *c, uint8_t pt)
{
    memset(c, 0, sizeof(*c));
    c->pt = pt;
    c->apt = -1;
    c->packetization_mode = -1;
    static const struct {
        uint8_t pt;
        const char *name;
        spk_codec_t codec;
    } statics[] = {{0, "PCMU", SPK_CODEC_PCMU},
                   {8, "PCMA", SPK_CODEC_PCMA},
                   {9, "G722", SPK_CODEC_G722},
                   {13, "CN", SPK_CODEC_CN}};
    for (size_t i = 0; i < 4; i++) {
        if (statics[i].pt == pt) {
            strcpy(c->name, statics[i].name);
            c->codec = statics[i].codec;
            c->clock_rate = 8000;
            return;
        }
    }
}

static bool parse_hex24(const char *s, size_t n, uint32_t *out)
{
    if (n != 6) {
        return false;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < 6; i++) {
        int ch = (unsigned char)s[i];
        if (!isxdigit(ch)) {
            return false;
        }
        v = v << 4 | (uint32_t)(isdigit(ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
    }
    *out = v;
    return true;
}

static int fmtp_param(spk_sdp_codec_t *c, const char *k, size_t kn, const char *v, size_t vn,
                      char *why, size_t why_len)
{
    uint64_t u;
    if (kn == 3 && strncasecmp(k, "apt", 3) == 0) {
        if (!spk_sdp_parse_u64(v, vn, 127, &u)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "fmtp apt=%.*s", (int)vn, v);
        }
        c->apt = (int16_t)u;
    } else if (kn == 18 && strncasecmp(k, "packetization-mode", 18) == 0) {
        if (!spk_sdp_parse_u64(v, vn, 2, &u)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "fmtp packetization-mode");
        }
        c->packetization_mode = (int8_t)u;
    } else if (kn == 16 && strncasecmp(k, "profile-level-id", 16) == 0 &&
               c->codec == SPK_CODEC_H264) {
        if (!parse_hex24(v, vn, &c->profile_level_id)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "fmtp profile-level-id=%.*s",
                                 (int)(vn > 16 ? 16 : vn), v);
        }
    } else if (kn == 23 && strncasecmp(k, "level-asymmetry-allowed", 23) == 0) {
        if (!spk_sdp_parse_u64(v, vn, 1, &u)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "fmtp level-asymmetry-allowed");
        }
        c->level_asymmetry_allowed = u == 1;
    }
    return 0;
}

int spk_sdp_codec_parse_fmtp(spk_sdp_codec_t *c, char *why, size_t why_len)
{
    c->apt = -1;
    c->packetization_mode = -1;
    c->profile_level_id = 0;
    c->level_asymmetry_allowed = false;
    const char *p = c->fmtp;
    while (*p != '\0') {
        while (*p == ' ' || *p == ';') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *end = strchr(p, ';');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        const char *eq = memchr(p, '=', n);
        if (eq != NULL) {
            size_t kn = (size_t)(eq - p);
            int rc = fmtp_param(c, p, kn, eq + 1, n - kn - 1, why, why_len);
            if (rc != 0) {
                return rc;
            }
        }
        p = end != NULL ? end + 1 : p + strlen(p);
    }
    if (c->codec == SPK_CODEC_RTX && c->apt < 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "rtx without apt");
    }
    return 0;
}

bool spk_sdp_h264_is_baseline(uint32_t profile_level_id)
{
    uint8_t idc = (uint8_t)(profile_level_id >> 16);
    uint8_t iop = (uint8_t)(profile_level_id >> 8);
    switch (idc) {
    case 0x42:
        return true; /* baseline; constrained when constraint_set1 (0x40) is set */
    case 0x4d:
        return (iop & 0x80) != 0; /* main with constraint_set0: constrained baseline */
    case 0x58:
        return (iop & 0xc0) == 0xc0; /* extended with constraint_set0 and 1 */
    default:
        return false;
    }
}

/* ---- lookups ---- */

const spk_sdp_codec_t *spk_sdp_find_codec(const spk_sdp_media_t *m, uint8_t pt)
{
    for (unsigned i = 0; i < m->n_codecs; i++) {
        if (m->codecs[i].pt == pt) {
            return &m->codecs[i];
        }
    }
    return NULL;
}

const spk_sdp_codec_t *spk_sdp_find_rtx(const spk_sdp_media_t *m, uint8_t apt)
{
    for (unsigned i = 0; i < m->n_codecs; i++) {
        if (m->codecs[i].codec == SPK_CODEC_RTX && m->codecs[i].apt == apt) {
            return &m->codecs[i];
        }
    }
    return NULL;
}

const spk_sdp_extmap_t *spk_sdp_find_extmap(const spk_sdp_media_t *m, spk_sdp_ext_t ext)
{
    for (unsigned i = 0; i < m->n_extmaps; i++) {
        if (m->extmaps[i].ext == ext && ext != SPK_EXT_OTHER) {
            return &m->extmaps[i];
        }
    }
    return NULL;
}

spk_sdp_media_t *spk_sdp_find_mid(spk_sdp_t *sdp, const char *mid)
{
    for (unsigned i = 0; i < sdp->n_media; i++) {
        if (sdp->media[i].mid[0] != '\0' && strcmp(sdp->media[i].mid, mid) == 0) {
            return &sdp->media[i];
        }
    }
    return NULL;
}

const spk_sdp_ice_t *spk_sdp_media_ice(const spk_sdp_t *sdp, const spk_sdp_media_t *m)
{
    return m->ice.ufrag[0] != '\0' ? &m->ice : &sdp->ice;
}

const spk_sdp_fingerprint_t *spk_sdp_media_fingerprint(const spk_sdp_t *sdp,
                                                       const spk_sdp_media_t *m)
{
    return m->fingerprint.hash != SPK_SDP_HASH_NONE ? &m->fingerprint : &sdp->fingerprint;
}

spk_sdp_setup_t spk_sdp_media_setup(const spk_sdp_t *sdp, const spk_sdp_media_t *m)
{
    return m->setup != SPK_SDP_SETUP_NONE ? m->setup : sdp->setup;
}

/* ---- selection ---- */

/* Rank of a codec in the relay's preference; 0 = not acceptable, higher is better. */
static int codec_rank(const spk_sdp_media_t *m, const spk_sdp_codec_t *c)
{
    if (m->kind == SPK_SDP_KIND_AUDIO) {
        return (c->codec == SPK_CODEC_OPUS && c->clock_rate == 48000 && c->channels == 2) ? 1 : 0;
    }
    if (m->kind != SPK_SDP_KIND_VIDEO) {
        return 0;
    }
    if (c->codec == SPK_CODEC_VP8 && c->clock_rate == 90000) {
        return 100;
    }
    /* RFC 6184 8.1: no profile-level-id means baseline, level 1 (42000a). */
    uint32_t plid = c->profile_level_id != 0 ? c->profile_level_id : 0x42000a;
    if (c->codec == SPK_CODEC_H264 && c->clock_rate == 90000 && spk_sdp_h264_is_baseline(plid) &&
        c->packetization_mode <= 1) {
        int r = 10;
        if (c->packetization_mode == 1) {
            r += 4;
        }
        if ((plid >> 16) != 0x42 || (plid >> 8 & 0x40) != 0) {
            r += 2; /* constrained baseline (e.g. 42e01f) before plain baseline (42001f) */
        }
        return r;
    }
    return 0;
}

int spk_sdp_select_codec(const spk_sdp_media_t *offer, spk_sdp_codec_t *primary,
                         spk_sdp_codec_t *rtx)
{
    const spk_sdp_codec_t *best = NULL;
    int best_rank = 0;
    for (unsigned i = 0; i < offer->n_codecs; i++) {
        int r = codec_rank(offer, &offer->codecs[i]);
        if (r > best_rank) {
            best_rank = r;
            best = &offer->codecs[i];
        }
    }
    if (rtx != NULL) {
        memset(rtx, 0, sizeof(*rtx));
    }
    if (best == NULL) {
        return SPK_ENOTFOUND;
    }
    *primary = *best;
    const spk_sdp_codec_t *r = spk_sdp_find_rtx(offer, best->pt);
    if (rtx != NULL && r != NULL && r->clock_rate == best->clock_rate) {
        *rtx = *r;
    }
    return 0;
}
