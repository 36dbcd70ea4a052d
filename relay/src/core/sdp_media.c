/* SDP media-level attributes: rtpmap, fmtp, rtcp-fb, extmap, ssrc, ssrc-group, msid, mid,
 * directions, candidates, rid, simulcast. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core_int.h"
#include "sdp_int.h"
#include "spk/error.h"
#include "spk/sdp.h"

typedef struct {
    spk_sdp_media_t *m;
    uint32_t *fb_wildcard;
    char *why;
    size_t why_len;
    unsigned line_no;
} media_ctx_t;

static int mfail(const media_ctx_t *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int mfail(const media_ctx_t *c, int err, const char *fmt, ...)
{
    if (c->why != NULL && c->why_len > 0) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(c->why, c->why_len, "sdp line %u: %s", c->line_no, msg);
    }
    return err;
}

/* Splits "<pt> <rest>" and looks the payload type up. *codec is NULL for a payload type that
 * is not on the m-line (the attribute is then ignored). */
static int pt_prefix(const media_ctx_t *c, const char *v, spk_sdp_codec_t **codec,
                     const char **rest, const char *what)
{
    const char *sp = strchr(v, ' ');
    size_t n = sp != NULL ? (size_t)(sp - v) : strlen(v);
    uint64_t pt;
    if (!spk_sdp_parse_u64(v, n, 127, &pt)) {
        return mfail(c, SPK_EDECODE, "%s payload type", what);
    }
    *codec = (spk_sdp_codec_t *)spk_sdp_find_codec(c->m, (uint8_t)pt);
    *rest = sp != NULL ? sp + 1 : "";
    while (**rest == ' ') {
        (*rest)++;
    }
    return 0;
}

static int parse_rtpmap(const media_ctx_t *c, const char *v)
{
    spk_sdp_codec_t *codec;
    const char *rest;
    int rc = pt_prefix(c, v, &codec, &rest, "rtpmap");
    if (rc != 0) {
        return rc;
    }
    const char *s1 = strchr(rest, '/');
    if (s1 == NULL || s1 == rest || (size_t)(s1 - rest) >= sizeof(codec->name)) {
        return mfail(c, SPK_EDECODE, "rtpmap encoding name");
    }
    const char *s2 = strchr(s1 + 1, '/');
    size_t cn = s2 != NULL ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
    uint64_t clock;
    uint64_t ch = 0;
    if (!spk_sdp_parse_u64(s1 + 1, cn, UINT32_MAX, &clock) || clock == 0) {
        return mfail(c, SPK_EDECODE, "rtpmap clock rate");
    }
    if (s2 != NULL && (!spk_sdp_parse_u64(s2 + 1, strlen(s2 + 1), 255, &ch) || ch == 0)) {
        return mfail(c, SPK_EDECODE, "rtpmap channels");
    }
    for (const char *p = rest; p < s1; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            return mfail(c, SPK_EDECODE, "rtpmap encoding name");
        }
    }
    if (codec == NULL) {
        return 0;
    }
    memset(codec->name, 0, sizeof(codec->name));
    memcpy(codec->name, rest, (size_t)(s1 - rest));
    codec->name[s1 - rest] = '\0';
    codec->codec = spk_sdp_codec_from_name(codec->name);
    codec->clock_rate = (uint32_t)clock;
    codec->channels = (uint8_t)ch;
    return 0;
}

static int parse_fmtp(const media_ctx_t *c, const char *v)
{
    spk_sdp_codec_t *codec;
    const char *rest;
    int rc = pt_prefix(c, v, &codec, &rest, "fmtp");
    if (rc != 0) {
        return rc;
    }
    size_t n = strlen(rest);
    while (n > 0 && rest[n - 1] == ' ') {
        n--;
    }
    if (n == 0) {
        return mfail(c, SPK_EDECODE, "fmtp without parameters");
    }
    if (n >= SPK_SDP_MAX_FMTP) {
        return mfail(c, SPK_EDECODE, "fmtp of %zu bytes", n);
    }
    if (codec == NULL) {
        return 0;
    }
    memset(codec->fmtp, 0, sizeof(codec->fmtp));
    memcpy(codec->fmtp, rest, n);
    codec->fmtp[n] = '\0';
    char why[160];
    rc = spk_sdp_codec_parse_fmtp(codec, why, sizeof(why));
    if (rc != 0) {
        return mfail(c, rc, "%s", why);
    }
    return 0;
}

static uint32_t fb_from_value(const char *v)
{
    if (strcmp(v, "nack") == 0) {
        return SPK_SDP_FB_NACK;
    }
    if (strcmp(v, "nack pli") == 0) {
        return SPK_SDP_FB_NACK_PLI;
    }
    if (strcmp(v, "ccm fir") == 0) {
        return SPK_SDP_FB_CCM_FIR;
    }
    if (strcmp(v, "goog-remb") == 0) {
        return SPK_SDP_FB_GOOG_REMB;
    }
    if (strcmp(v, "transport-cc") == 0) {
        return SPK_SDP_FB_TRANSPORT_CC;
    }
    return 0;
}

static int parse_rtcp_fb(const media_ctx_t *c, const char *v)
{
    if (v[0] == '*' && (v[1] == ' ' || v[1] == '\0')) {
        *c->fb_wildcard |= fb_from_value(v[1] == ' ' ? v + 2 : "");
        return 0;
    }
    spk_sdp_codec_t *codec;
    const char *rest;
    int rc = pt_prefix(c, v, &codec, &rest, "rtcp-fb");
    if (rc != 0) {
        return rc;
    }
    if (rest[0] == '\0') {
        return mfail(c, SPK_EDECODE, "rtcp-fb without value");
    }
    if (codec != NULL) {
        codec->fb |= fb_from_value(rest);
    }
    return 0;
}

static int parse_direction(const char *name, spk_sdp_dir_t *dir)
{
    static const char *names[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *dir = (spk_sdp_dir_t)i;
            return 0;
        }
    }
    return 1;
}

static int parse_extmap(const media_ctx_t *c, const char *v)
{
    const char *sp = strchr(v, ' ');
    if (sp == NULL) {
        return mfail(c, SPK_EDECODE, "extmap without URI");
    }
    const char *slash = memchr(v, '/', (size_t)(sp - v));
    size_t idn = slash != NULL ? (size_t)(slash - v) : (size_t)(sp - v);
    uint64_t id;
    if (!spk_sdp_parse_u64(v, idn, 255, &id) || id == 0) {
        return mfail(c, SPK_EDECODE, "extmap id");
    }
    spk_sdp_extmap_t e;
    memset(&e, 0, sizeof(e));
    e.id = (uint8_t)id;
    if (slash != NULL) {
        char d[16];
        size_t dn = (size_t)(sp - slash - 1);
        if (dn == 0 || dn >= sizeof(d)) {
            return mfail(c, SPK_EDECODE, "extmap direction");
        }
        memcpy(d, slash + 1, dn);
        d[dn] = '\0';
        if (parse_direction(d, &e.dir) != 0) {
            return mfail(c, SPK_EDECODE, "extmap direction %s", d);
        }
        e.has_dir = true;
    }
    const char *uri = sp + 1;
    const char *end = strchr(uri, ' ');
    size_t un = end != NULL ? (size_t)(end - uri) : strlen(uri);
    if (un == 0 || un >= sizeof(e.uri)) {
        return mfail(c, SPK_EDECODE, "extmap URI of %zu bytes", un);
    }
    memcpy(e.uri, uri, un);
    e.uri[un] = '\0';
    e.ext = spk_sdp_ext_from_uri(e.uri);
    for (unsigned i = 0; i < c->m->n_extmaps; i++) {
        if (c->m->extmaps[i].id == e.id) {
            return mfail(c, SPK_EDECODE, "extmap id %u used twice", e.id);
        }
    }
    if (c->m->n_extmaps >= SPK_SDP_MAX_EXTMAPS) {
        c->m->n_dropped++;
        return 0;
    }
    c->m->extmaps[c->m->n_extmaps++] = e;
    return 0;
}

static bool copy_id(char *dst, const char *s, size_t n)
{
    if (n == 0 || n >= SPK_SDP_MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return false;
        }
    }
    memset(dst, 0, SPK_SDP_MAX_ID); /* a repeated attribute leaves no stale tail */
    memcpy(dst, s, n);
    return true;
}

/* "<stream> [<track>]" */
static int parse_msid_value(const media_ctx_t *c, const char *v, char *stream, char *track)
{
    const char *sp = strchr(v, ' ');
    size_t sn = sp != NULL ? (size_t)(sp - v) : strlen(v);
    if (!copy_id(stream, v, sn)) {
        return mfail(c, SPK_EDECODE, "msid stream id");
    }
    memset(track, 0, SPK_SDP_MAX_ID);
    if (sp != NULL) {
        const char *t = sp + 1;
        size_t tn = strlen(t);
        while (tn > 0 && t[tn - 1] == ' ') {
            tn--;
        }
        if (tn > 0 && !copy_id(track, t, tn)) {
            return mfail(c, SPK_EDECODE, "msid track id");
        }
    }
    return 0;
}

static spk_sdp_ssrc_t *ssrc_entry(spk_sdp_media_t *m, uint32_t ssrc)
{
    for (unsigned i = 0; i < m->n_ssrcs; i++) {
        if (m->ssrcs[i].ssrc == ssrc) {
            return &m->ssrcs[i];
        }
    }
    if (m->n_ssrcs >= SPK_SDP_MAX_SSRCS) {
        return NULL;
    }
    spk_sdp_ssrc_t *e = &m->ssrcs[m->n_ssrcs++];
    memset(e, 0, sizeof(*e));
    e->ssrc = ssrc;
    return e;
}

static int parse_ssrc(const media_ctx_t *c, const char *v)
{
    const char *sp = strchr(v, ' ');
    size_t n = sp != NULL ? (size_t)(sp - v) : strlen(v);
    uint64_t ssrc;
    if (!spk_sdp_parse_u64(v, n, UINT32_MAX, &ssrc)) {
        return mfail(c, SPK_EDECODE, "ssrc value");
    }
    spk_sdp_ssrc_t *e = ssrc_entry(c->m, (uint32_t)ssrc);
    if (e == NULL) {
        c->m->n_dropped++;
        return 0;
    }
    if (sp == NULL) {
        return 0;
    }
    const char *attr = sp + 1;
    if (strncmp(attr, "cname:", 6) == 0) {
        if (!copy_id(e->cname, attr + 6, strlen(attr + 6))) {
            return mfail(c, SPK_EDECODE, "ssrc cname");
        }
    } else if (strncmp(attr, "msid:", 5) == 0) {
        return parse_msid_value(c, attr + 5, e->msid_stream, e->msid_track);
    }
    return 0;
}

static int parse_ssrc_group(const media_ctx_t *c, const char *v)
{
    spk_sdp_ssrc_group_t g;
    memset(&g, 0, sizeof(g));
    const char *sp = strchr(v, ' ');
    size_t n = sp != NULL ? (size_t)(sp - v) : strlen(v);
    if (n == 0 || n >= sizeof(g.semantics) || sp == NULL) {
        return mfail(c, SPK_EDECODE, "ssrc-group semantics");
    }
    memcpy(g.semantics, v, n);
    bool fits = true;
    const char *p = sp;
    while (*p != '\0') {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *e = strchr(p, ' ');
        size_t tn = e != NULL ? (size_t)(e - p) : strlen(p);
        uint64_t ssrc;
        if (!spk_sdp_parse_u64(p, tn, UINT32_MAX, &ssrc)) {
            return mfail(c, SPK_EDECODE, "ssrc-group ssrc");
        }
        if (g.n < SPK_SDP_MAX_GROUP_SSRCS) {
            g.ssrcs[g.n++] = (uint32_t)ssrc;
        } else {
            fits = false;
        }
        p += tn;
    }
    if (g.n == 0) {
        return mfail(c, SPK_EDECODE, "ssrc-group without ssrcs");
    }
    if (!fits || c->m->n_ssrc_groups >= SPK_SDP_MAX_SSRC_GROUPS) {
        c->m->n_dropped++;
        return 0;
    }
    c->m->ssrc_groups[c->m->n_ssrc_groups++] = g;
    return 0;
}

static bool rid_chars(const char *t, size_t n)
{
    if (n == 0 || n >= SPK_SDP_MAX_RID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)t[i]) && t[i] != '-' && t[i] != '_') {
            return false;
        }
    }
    return true;
}

/* a=rid:<id> send|recv [restrictions] (RFC 8851); restrictions are ignored. */
static int parse_rid(const media_ctx_t *c, const char *v)
{
    const char *sp = strchr(v, ' ');
    size_t n = sp != NULL ? (size_t)(sp - v) : strlen(v);
    if (sp == NULL || !rid_chars(v, n)) {
        return mfail(c, SPK_EDECODE, "rid id");
    }
    const char *d = sp + 1;
    size_t dn = strcspn(d, " ");
    bool recv = dn == 4 && strncmp(d, "recv", 4) == 0;
    if (!recv && !(dn == 4 && strncmp(d, "send", 4) == 0)) {
        return mfail(c, SPK_EDECODE, "rid direction");
    }
    if (c->m->n_rids >= SPK_SDP_MAX_RIDS) {
        c->m->n_dropped++;
        return 0;
    }
    spk_sdp_rid_t *r = &c->m->rids[c->m->n_rids++];
    memset(r, 0, sizeof(*r));
    memcpy(r->id, v, n);
    r->recv = recv;
    return 0;
}

/* a=simulcast:<send|recv> <streams> [<send|recv> <streams>] (RFC 8853): the first direction's
 * streams, separated by ';', each a list of alternatives separated by ',' (the first is kept),
 * "~" marking a paused one. */
static int parse_simulcast(const media_ctx_t *c, const char *v)
{
    size_t dn = strcspn(v, " ");
    bool recv = dn == 4 && strncmp(v, "recv", 4) == 0;
    if ((!recv && !(dn == 4 && strncmp(v, "send", 4) == 0)) || v[dn] != ' ') {
        return mfail(c, SPK_EDECODE, "simulcast direction");
    }
    const char *p = v + dn + 1;
    size_t len = strcspn(p, " ");
    spk_sdp_media_t *m = c->m;
    m->n_sim = 0;
    m->sim_recv = recv;
    while (len > 0) {
        size_t sn = strcspn(p, ";");
        sn = sn > len ? len : sn;
        size_t an = strcspn(p, ",");
        an = an > sn ? sn : an;
        bool paused = an > 0 && p[0] == '~';
        const char *id = paused ? p + 1 : p;
        size_t idn = paused ? an - 1 : an;
        if (!rid_chars(id, idn)) {
            m->n_sim = 0;
            return mfail(c, SPK_EDECODE, "simulcast stream id");
        }
        if (m->n_sim < SPK_SDP_MAX_RIDS) {
            memset(m->sim[m->n_sim], 0, SPK_SDP_MAX_RID);
            memcpy(m->sim[m->n_sim], id, idn);
            m->sim_paused[m->n_sim++] = paused;
        } else {
            m->n_dropped++;
        }
        p += sn;
        len -= sn;
        if (len > 0) {
            p++; /* ';' */
            len--;
            if (len == 0) {
                return mfail(c, SPK_EDECODE, "simulcast list ends with ';'");
            }
        }
    }
    if (m->n_sim == 0) {
        return mfail(c, SPK_EDECODE, "simulcast without streams");
    }
    return 0;
}

static int parse_candidate(const media_ctx_t *c, const char *v)
{
    char line[SPK_SDP_MAX_LINE + 16];
    int n = snprintf(line, sizeof(line), "candidate:%s", v);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        return mfail(c, SPK_EDECODE, "candidate too long");
    }
    spk_sdp_candidate_t cand;
    char why[160];
    int rc = spk_sdp_candidate_parse(&cand, line, (size_t)n, why, sizeof(why));
    if (rc != 0) {
        return mfail(c, rc, "%s", why);
    }
    if (c->m->n_candidates >= SPK_SDP_MAX_CANDIDATES) {
        c->m->n_dropped++;
        return 0;
    }
    c->m->candidates[c->m->n_candidates++] = cand;
    return 0;
}

int spk_sdp_parse_media_attr(spk_sdp_media_t *m, uint32_t *fb_wildcard, const char *name,
                             const char *value, char *why, size_t why_len, unsigned line_no)
{
    media_ctx_t c = {m, fb_wildcard, why, why_len, line_no};
    if (parse_direction(name, &m->dir) == 0) {
        return 0;
    }
    if (strcmp(name, "mid") == 0) {
        if (!copy_id(m->mid, value, strlen(value))) {
            return mfail(&c, SPK_EDECODE, "mid");
        }
        return 0;
    }
    if (strcmp(name, "rtcp-mux") == 0) {
        m->rtcp_mux = true;
    } else if (strcmp(name, "rtcp-rsize") == 0) {
        m->rtcp_rsize = true;
    } else if (strcmp(name, "bundle-only") == 0) {
        m->bundle_only = true;
    } else if (strcmp(name, "rtpmap") == 0) {
        return parse_rtpmap(&c, value);
    } else if (strcmp(name, "fmtp") == 0) {
        return parse_fmtp(&c, value);
    } else if (strcmp(name, "rtcp-fb") == 0) {
        return parse_rtcp_fb(&c, value);
    } else if (strcmp(name, "extmap") == 0) {
        return parse_extmap(&c, value);
    } else if (strcmp(name, "ssrc") == 0) {
        return parse_ssrc(&c, value);
    } else if (strcmp(name, "ssrc-group") == 0) {
        return parse_ssrc_group(&c, value);
    } else if (strcmp(name, "msid") == 0) {
        return parse_msid_value(&c, value, m->msid_stream, m->msid_track);
    } else if (strcmp(name, "candidate") == 0) {
        return parse_candidate(&c, value);
    } else if (strcmp(name, "rid") == 0) {
        return parse_rid(&c, value);
    } else if (strcmp(name, "simulcast") == 0) {
        return parse_simulcast(&c, value);
    } else if (strcmp(name, "sctp-port") == 0) {
        uint64_t port;
        if (!spk_sdp_parse_u64(value, strlen(value), 65535, &port)) {
            return mfail(&c, SPK_EDECODE, "sctp-port");
        }
        m->sctp_port = (uint16_t)port;
    }
    return 0;
}
