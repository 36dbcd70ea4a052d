/* SDP parser for WebRTC offers and answers (RFC 8866, RFC 8829, RFC 8839, RFC 8843). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core_int.h"
#include "sdp_int.h"
#include "spk/error.h"
#include "spk/sdp.h"

typedef struct {
    spk_sdp_t *sdp;
    spk_sdp_media_t *m;   /* current m-section, NULL at session level */
    uint32_t fb_wildcard; /* a=rtcp-fb:* of the current section */
    unsigned line_no;
    bool started; /* v=0 seen */
    char *why;
    size_t why_len;
} parse_ctx_t;

#define FAIL(ctx, err, ...) sdp_fail((ctx), (err), __VA_ARGS__)

static int sdp_fail(parse_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sdp_fail(parse_ctx_t *ctx, int err, const char *fmt, ...)
{
    if (ctx->why != NULL && ctx->why_len > 0) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(ctx->why, ctx->why_len, "sdp line %u: %s", ctx->line_no, msg);
    }
    return err;
}

/* ---- small lexing helpers (on NUL-terminated copies of one line) ---- */

bool spk_sdp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Next space-separated token of *s; advances *s. Returns false when none is left. */
static bool next_tok(const char **s, const char **tok, size_t *n)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '\0') {
        *s = p;
        return false;
    }
    const char *b = p;
    while (*p != '\0' && *p != ' ' && *p != '\t') {
        p++;
    }
    *tok = b;
    *n = (size_t)(p - b);
    *s = p;
    return true;
}

static bool tok_u64(const char **s, uint64_t max, uint64_t *out)
{
    const char *t;
    size_t n;
    return next_tok(s, &t, &n) && spk_sdp_parse_u64(t, n, max, out);
}

/* Copies a token into dst (cap including NUL); false when it does not fit or is empty. */
static bool tok_copy(char *dst, size_t cap, const char *t, size_t n)
{
    if (n == 0 || n >= cap) {
        return false;
    }
    memset(dst, 0, cap); /* a repeated attribute leaves no stale tail */
    memcpy(dst, t, n);
    return true;
}

static bool tok_eq(const char *t, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(t, lit, n) == 0;
}

static bool is_ice_chars(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '+' && *s != '/') {
            return false;
        }
    }
    return true;
}

static bool is_token_chars(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

/* ---- candidates ---- */

static int cand_type(const char *t, size_t n, spk_cand_type_t *out)
{
    static const char *names[] = {"host", "srflx", "prflx", "relay"};
    for (unsigned i = 0; i < 4; i++) {
        if (tok_eq(t, n, names[i])) {
            *out = (spk_cand_type_t)i;
            return 0;
        }
    }
    return SPK_EDECODE;
}

static int cand_tcptype(const char *t, size_t n, spk_cand_tcptype_t *out)
{
    static const char *names[] = {"active", "passive", "so"};
    for (unsigned i = 0; i < 3; i++) {
        if (tok_eq(t, n, names[i])) {
            *out = (spk_cand_tcptype_t)(i + 1);
            return 0;
        }
    }
    return SPK_EDECODE;
}

/* The "name value" pairs after "typ <type>". */
static int cand_extensions(spk_sdp_candidate_t *c, const char *s, char *why, size_t why_len)
{
    const char *k;
    const char *v;
    size_t kn;
    size_t vn;
    while (next_tok(&s, &k, &kn)) {
        if (!next_tok(&s, &v, &vn)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: %.*s without value",
                                 (int)kn, k);
        }
        uint64_t u;
        if (tok_eq(k, kn, "raddr")) {
            if (!tok_copy(c->raddr, sizeof(c->raddr), v, vn)) {
                return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad raddr");
            }
        } else if (tok_eq(k, kn, "rport")) {
            if (!spk_sdp_parse_u64(v, vn, 65535, &u)) {
                return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad rport");
            }
            c->rport = (uint16_t)u;
        } else if (tok_eq(k, kn, "tcptype")) {
            if (cand_tcptype(v, vn, &c->tcptype) != 0) {
                return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad tcptype");
            }
        } else if (tok_eq(k, kn, "generation")) {
            if (!spk_sdp_parse_u64(v, vn, UINT32_MAX, &u)) {
                return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad generation");
            }
            c->generation = (uint32_t)u;
        }
    }
    return 0;
}

static int cand_parse_z(spk_sdp_candidate_t *c, const char *s, char *why, size_t why_len)
{
    const char *t;
    size_t n;
    uint64_t u;
    if (!next_tok(&s, &t, &n) || !is_token_chars(t, n) ||
        !tok_copy(c->foundation, sizeof(c->foundation), t, n)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad foundation");
    }
    if (!tok_u64(&s, 256, &u) || u == 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad component");
    }
    c->component = (uint16_t)u;
    if (!next_tok(&s, &t, &n)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: no transport");
    }
    if (tok_eq(t, n, "udp")) {
        c->transport = SPK_CAND_UDP;
    } else if (tok_eq(t, n, "tcp")) {
        c->transport = SPK_CAND_TCP;
    } else {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: transport %.*s", (int)n, t);
    }
    if (!tok_u64(&s, UINT32_MAX, &u)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad priority");
    }
    c->priority = (uint32_t)u;
    if (!next_tok(&s, &t, &n) || !is_token_chars(t, n) ||
        !tok_copy(c->addr, sizeof(c->addr), t, n)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad address");
    }
    if (!tok_u64(&s, 65535, &u)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad port");
    }
    c->port = (uint16_t)u;
    if (!next_tok(&s, &t, &n) || !tok_eq(t, n, "typ") || !next_tok(&s, &t, &n) ||
        cand_type(t, n, &c->type) != 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad typ");
    }
    int rc = cand_extensions(c, s, why, why_len);
    if (rc == 0 && c->raddr[0] != '\0' && !is_token_chars(c->raddr, strlen(c->raddr))) {
        rc = spk_core_fail(why, why_len, SPK_EDECODE, "candidate: bad raddr");
    }
    return rc;
}

int spk_sdp_candidate_parse(spk_sdp_candidate_t *out, const char *s, size_t len, char *why,
                            size_t why_len)
{
    memset(out, 0, sizeof(*out));
    char buf[SPK_SDP_MAX_LINE + 1];
    if (s == NULL) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: missing");
    }
    while (len > 0 && (s[len - 1] == '\r' || s[len - 1] == '\n')) {
        len--;
    }
    if (len >= 2 && s[0] == 'a' && s[1] == '=') {
        s += 2;
        len -= 2;
    }
    if (len < 10 || strncmp(s, "candidate:", 10) != 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: no \"candidate:\" prefix");
    }
    s += 10;
    len -= 10;
    if (len > SPK_SDP_MAX_LINE || memchr(s, '\0', len) != NULL) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "candidate: too long or NUL byte");
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    int rc = cand_parse_z(out, buf, why, why_len);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- session and media attributes ---- */

static int parse_fingerprint(parse_ctx_t *ctx, const char *v, spk_sdp_fingerprint_t *fp)
{
    const char *t;
    size_t n;
    if (!next_tok(&v, &t, &n)) {
        return FAIL(ctx, SPK_EDECODE, "fingerprint without hash");
    }
    static const struct {
        const char *name;
        spk_sdp_hash_t hash;
        uint8_t len;
    } hashes[] = {{"sha-1", SPK_SDP_HASH_SHA1, 20},
                  {"sha-224", SPK_SDP_HASH_SHA224, 28},
                  {"sha-256", SPK_SDP_HASH_SHA256, 32},
                  {"sha-384", SPK_SDP_HASH_SHA384, 48},
                  {"sha-512", SPK_SDP_HASH_SHA512, 64}};
    unsigned h = 0;
    while (h < 5 && !tok_eq(t, n, hashes[h].name)) {
        h++;
    }
    if (h == 5) {
        return FAIL(ctx, SPK_EDECODE, "fingerprint hash %.*s", (int)n, t);
    }
    if (!next_tok(&v, &t, &n) || n != (size_t)hashes[h].len * 3 - 1) {
        return FAIL(ctx, SPK_EDECODE, "fingerprint length for %s", hashes[h].name);
    }
    memset(fp, 0, sizeof(*fp));
    for (size_t i = 0; i < hashes[h].len; i++) {
        const char *b = t + i * 3;
        if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]) ||
            (i + 1 < hashes[h].len && b[2] != ':')) {
            return FAIL(ctx, SPK_EDECODE, "fingerprint not colon-separated hex");
        }
        char hex[3] = {b[0], b[1], '\0'};
        fp->value[i] = (uint8_t)strtoul(hex, NULL, 16);
    }
    fp->hash = hashes[h].hash;
    fp->len = hashes[h].len;
    return 0;
}

static int parse_setup(parse_ctx_t *ctx, const char *v, spk_sdp_setup_t *out)
{
    static const char *names[] = {"actpass", "active", "passive", "holdconn"};
    for (unsigned i = 0; i < 4; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = (spk_sdp_setup_t)(i + 1);
            return 0;
        }
    }
    return FAIL(ctx, SPK_EDECODE, "setup %.32s", v);
}

static int parse_ice_cred(parse_ctx_t *ctx, const char *v, char *dst, size_t min, const char *what)
{
    size_t n = strlen(v);
    if (n < min || n >= SPK_SDP_MAX_ICE || !is_ice_chars(v)) {
        return FAIL(ctx, SPK_EDECODE, "%s of %zu chars or not ice-chars", what, n);
    }
    memset(dst, 0, SPK_SDP_MAX_ICE);
    memcpy(dst, v, n);
    return 0;
}

static void parse_ice_options(const char *v, spk_sdp_ice_t *ice)
{
    const char *t;
    size_t n;
    while (next_tok(&v, &t, &n)) {
        if (tok_eq(t, n, "trickle")) {
            ice->trickle = true;
        } else if (tok_eq(t, n, "renomination")) {
            ice->renomination = true;
        }
    }
}

static int parse_group(parse_ctx_t *ctx, const char *v)
{
    const char *t;
    size_t n;
    if (!next_tok(&v, &t, &n) || !tok_eq(t, n, "BUNDLE")) {
        return 0; /* LS, FID groups: ignored */
    }
    spk_sdp_t *sdp = ctx->sdp;
    sdp->n_bundle = 0;
    memset(sdp->bundle, 0, sizeof(sdp->bundle));
    while (next_tok(&v, &t, &n)) {
        if (sdp->n_bundle >= SPK_SDP_MAX_MEDIA) {
            return FAIL(ctx, SPK_ETOOBIG, "more than %d BUNDLE mids", SPK_SDP_MAX_MEDIA);
        }
        if (!is_token_chars(t, n) || !tok_copy(sdp->bundle[sdp->n_bundle], SPK_SDP_MAX_ID, t, n)) {
            return FAIL(ctx, SPK_EDECODE, "bad BUNDLE mid");
        }
        sdp->n_bundle++;
    }
    return 0;
}

static int parse_msid_semantic(parse_ctx_t *ctx, const char *v)
{
    const char *t;
    size_t n;
    if (!next_tok(&v, &t, &n)) {
        return FAIL(ctx, SPK_EDECODE, "empty msid-semantic");
    }
    if (!tok_eq(t, n, "WMS")) {
        return 0;
    }
    while (*v == ' ') {
        v++;
    }
    size_t len = strlen(v);
    while (len > 0 && v[len - 1] == ' ') {
        len--;
    }
    if (len >= SPK_SDP_MAX_ID) {
        return FAIL(ctx, SPK_EDECODE, "msid-semantic ids too long");
    }
    ctx->sdp->msid_semantic = true;
    memset(ctx->sdp->msid_semantic_ids, 0, SPK_SDP_MAX_ID);
    memcpy(ctx->sdp->msid_semantic_ids, v, len);
    return 0;
}

/* Attributes valid at session level and (some of them) at media level. Returns 1 when the
 * attribute is not one of these. */
static int parse_transport_attr(parse_ctx_t *ctx, const char *name, const char *v)
{
    spk_sdp_ice_t *ice = ctx->m != NULL ? &ctx->m->ice : &ctx->sdp->ice;
    spk_sdp_fingerprint_t *fp = ctx->m != NULL ? &ctx->m->fingerprint : &ctx->sdp->fingerprint;
    spk_sdp_setup_t *setup = ctx->m != NULL ? &ctx->m->setup : &ctx->sdp->setup;
    if (strcmp(name, "ice-ufrag") == 0) {
        return parse_ice_cred(ctx, v, ice->ufrag, 4, "ice-ufrag");
    }
    if (strcmp(name, "ice-pwd") == 0) {
        return parse_ice_cred(ctx, v, ice->pwd, 22, "ice-pwd");
    }
    if (strcmp(name, "ice-options") == 0) {
        parse_ice_options(v, ice);
        return 0;
    }
    if (strcmp(name, "fingerprint") == 0) {
        return parse_fingerprint(ctx, v, fp);
    }
    if (strcmp(name, "setup") == 0) {
        return parse_setup(ctx, v, setup);
    }
    if (strcmp(name, "end-of-candidates") == 0) {
        if (ctx->m != NULL) {
            ctx->m->end_of_candidates = true;
        }
        return 0;
    }
    return 1;
}

static int parse_session_attr(parse_ctx_t *ctx, const char *name, const char *v)
{
    if (strcmp(name, "ice-lite") == 0) {
        ctx->sdp->ice_lite = true;
        return 0;
    }
    if (strcmp(name, "group") == 0) {
        return parse_group(ctx, v);
    }
    if (strcmp(name, "msid-semantic") == 0) {
        return parse_msid_semantic(ctx, v);
    }
    if (strcmp(name, "extmap-allow-mixed") == 0) {
        ctx->sdp->extmap_allow_mixed = true;
        return 0;
    }
    return 0; /* unknown: ignored */
}

/* ---- lines ---- */

static int parse_origin(parse_ctx_t *ctx, const char *v)
{
    const char *t;
    size_t n;
    uint64_t id;
    uint64_t ver;
    if (!next_tok(&v, &t, &n) || !tok_u64(&v, UINT64_MAX, &id) || !tok_u64(&v, UINT64_MAX, &ver)) {
        return FAIL(ctx, SPK_EDECODE, "bad o= line");
    }
    ctx->sdp->session_id = id;
    ctx->sdp->session_version = ver;
    return 0;
}

/* Completes the current section once all its lines are read: fmtp parameters whose meaning
 * depends on the codec (Firefox writes a=fmtp before a=rtpmap), rtx associations, and
 * a=rtcp-fb:* values. */
static int finish_media(parse_ctx_t *ctx)
{
    spk_sdp_media_t *m = ctx->m;
    if (m == NULL) {
        return 0;
    }
    for (unsigned i = 0; i < m->n_codecs; i++) {
        spk_sdp_codec_t *c = &m->codecs[i];
        if (c->codec != SPK_CODEC_RTX) {
            c->fb |= ctx->fb_wildcard;
        }
        char why[160] = "";
        if (spk_sdp_codec_parse_fmtp(c, why, sizeof(why)) != 0) {
            return FAIL(ctx, SPK_EDECODE, "mid %s payload type %u: %s", m->mid, c->pt, why);
        }
    }
    ctx->fb_wildcard = 0;
    return 0;
}

static spk_sdp_kind_t kind_from_name(const char *t, size_t n)
{
    if (tok_eq(t, n, "audio")) {
        return SPK_SDP_KIND_AUDIO;
    }
    if (tok_eq(t, n, "video")) {
        return SPK_SDP_KIND_VIDEO;
    }
    if (tok_eq(t, n, "application")) {
        return SPK_SDP_KIND_APPLICATION;
    }
    return SPK_SDP_KIND_OTHER;
}

static int parse_media_formats(parse_ctx_t *ctx, spk_sdp_media_t *m, const char *v)
{
    const char *t;
    size_t n;
    bool rtp = strstr(m->proto, "RTP") != NULL;
    unsigned count = 0;
    while (next_tok(&v, &t, &n)) {
        count++;
        if (!rtp) {
            if (m->app_fmt[0] == '\0' && !tok_copy(m->app_fmt, sizeof(m->app_fmt), t, n)) {
                return FAIL(ctx, SPK_EDECODE, "m-line format too long");
            }
            continue;
        }
        uint64_t pt;
        if (!spk_sdp_parse_u64(t, n, 127, &pt)) {
            return FAIL(ctx, SPK_EDECODE, "m-line payload type %.*s", (int)(n > 8 ? 8 : n), t);
        }
        if (spk_sdp_find_codec(m, (uint8_t)pt) != NULL) {
            continue;
        }
        if (m->n_codecs >= SPK_SDP_MAX_CODECS) {
            m->n_dropped++;
            continue;
        }
        spk_sdp_codec_init_static(&m->codecs[m->n_codecs++], (uint8_t)pt);
    }
    if (count == 0) {
        return FAIL(ctx, SPK_EDECODE, "m-line without formats");
    }
    return 0;
}

static int parse_media_line(parse_ctx_t *ctx, const char *v)
{
    int rc = finish_media(ctx);
    if (rc != 0) {
        return rc;
    }
    spk_sdp_t *sdp = ctx->sdp;
    if (sdp->n_media >= SPK_SDP_MAX_MEDIA) {
        return FAIL(ctx, SPK_ETOOBIG, "more than %d m-sections", SPK_SDP_MAX_MEDIA);
    }
    spk_sdp_media_t *m = &sdp->media[sdp->n_media++];
    ctx->m = m;
    const char *t;
    size_t n;
    if (!next_tok(&v, &t, &n) || !tok_copy(m->kind_name, sizeof(m->kind_name), t, n) ||
        !is_token_chars(t, n)) {
        return FAIL(ctx, SPK_EDECODE, "bad m-line media");
    }
    m->kind = kind_from_name(t, n);
    if (!next_tok(&v, &t, &n)) {
        return FAIL(ctx, SPK_EDECODE, "m-line without port");
    }
    const char *slash = memchr(t, '/', n);
    size_t pn = slash != NULL ? (size_t)(slash - t) : n;
    uint64_t port;
    if (!spk_sdp_parse_u64(t, pn, 65535, &port)) {
        return FAIL(ctx, SPK_EDECODE, "m-line port");
    }
    m->port = (uint16_t)port;
    if (!next_tok(&v, &t, &n) || !is_token_chars(t, n) ||
        !tok_copy(m->proto, sizeof(m->proto), t, n)) {
        return FAIL(ctx, SPK_EDECODE, "m-line proto");
    }
    return parse_media_formats(ctx, m, v);
}

/* Dispatches one line (NUL-terminated, without line end). */
static int parse_line(parse_ctx_t *ctx, char *line, size_t len)
{
    if (len < 2 || line[1] != '=' || !islower((unsigned char)line[0])) {
        return FAIL(ctx, SPK_EDECODE, "not <type>=<value>");
    }
    char type = line[0];
    char *v = line + 2;
    if (!ctx->started) {
        if (type != 'v' || strcmp(v, "0") != 0) {
            return FAIL(ctx, SPK_EDECODE, "first line must be v=0");
        }
        ctx->started = true;
        return 0;
    }
    switch (type) {
    case 'o':
        return ctx->m == NULL ? parse_origin(ctx, v) : 0;
    case 'm':
        return parse_media_line(ctx, v);
    case 'a':
        break;
    default:
        return 0;
    }
    char *colon = strchr(v, ':');
    const char *value = "";
    if (colon != NULL) {
        *colon = '\0';
        value = colon + 1;
    }
    int rc = parse_transport_attr(ctx, v, value);
    if (rc <= 0) {
        return rc;
    }
    if (ctx->m == NULL) {
        return parse_session_attr(ctx, v, value);
    }
    return spk_sdp_parse_media_attr(ctx->m, &ctx->fb_wildcard, v, value, ctx->why, ctx->why_len,
                                    ctx->line_no);
}

static int check_description(parse_ctx_t *ctx)
{
    spk_sdp_t *sdp = ctx->sdp;
    if (sdp->n_media == 0) {
        return FAIL(ctx, SPK_EDECODE, "no m-line");
    }
    for (unsigned i = 0; i < sdp->n_media; i++) {
        const char *mid = sdp->media[i].mid;
        for (unsigned j = 0; mid[0] != '\0' && j < i; j++) {
            if (strcmp(mid, sdp->media[j].mid) == 0) {
                return FAIL(ctx, SPK_EDECODE, "duplicate mid %s", mid);
            }
        }
    }
    for (unsigned i = 0; i < sdp->n_bundle; i++) {
        if (spk_sdp_find_mid(sdp, sdp->bundle[i]) == NULL) {
            return FAIL(ctx, SPK_EDECODE, "BUNDLE mid %s has no m-section", sdp->bundle[i]);
        }
    }
    return 0;
}

int spk_sdp_parse(spk_sdp_t *out, const char *sdp, size_t len, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    parse_ctx_t ctx = {.sdp = out, .why = why, .why_len = why_len};
    if (sdp == NULL || len == 0) {
        return FAIL(&ctx, SPK_EDECODE, "empty description");
    }
    if (len > SPK_SDP_MAX_SIZE) {
        return FAIL(&ctx, SPK_ETOOBIG, "description of %zu bytes", len);
    }
    char line[SPK_SDP_MAX_LINE + 1];
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        const char *b = sdp + pos;
        const char *nl = memchr(b, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - b) : len - pos;
        pos += n + (nl != NULL ? 1 : 0);
        ctx.line_no++;
        if (n > 0 && b[n - 1] == '\r') {
            n--;
        }
        if (n == 0) {
            continue;
        }
        if (n > SPK_SDP_MAX_LINE) {
            rc = FAIL(&ctx, SPK_ETOOBIG, "line of %zu bytes", n);
            break;
        }
        if (memchr(b, '\0', n) != NULL || memchr(b, '\r', n) != NULL) {
            rc = FAIL(&ctx, SPK_EDECODE, "NUL or stray CR");
            break;
        }
        memcpy(line, b, n);
        line[n] = '\0';
        rc = parse_line(&ctx, line, n);
    }
    if (rc == 0) {
        rc = finish_media(&ctx);
    }
    if (rc == 0) {
        rc = check_description(&ctx);
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
