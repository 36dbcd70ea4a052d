/* Remote candidate address filter (spk/addr_filter.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core_int.h"
#include "spk/addr_filter.h"
#include "spk/error.h"

#define ADDR_TEXT_MAX 64

/* Built-in ranges, as text so that they read like the documentation. */
static const char *const g_refused[] = {
    "0.0.0.0/8",       /* unspecified, "this network" */
    "::/128",          /* unspecified */
    "224.0.0.0/4",     /* multicast */
    "ff00::/8",        /* multicast */
    "169.254.0.0/16",  /* link-local */
    "fe80::/10",       /* link-local */
    "240.0.0.0/4",     /* reserved, and 255.255.255.255 broadcast */
    "::/96",           /* IPv4-compatible (deprecated); :: and ::1 are judged apart */
    "64:ff9b::/96",    /* NAT64: would reach IPv4 destinations the IPv4 rules refuse */
    "64:ff9b:1::/48",  /* local-use NAT64 */
    "::ffff:0:0:0/96", /* IPv4-translated */
};
static const char *const g_loopback[] = {"127.0.0.0/8", "::1/128"};
static const char *const g_private[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                        "100.64.0.0/10", "fc00::/7"};

bool spk_addr_parse(const char *s, uint8_t out[16])
{
    if (s == NULL) {
        return false;
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

static bool cidr_match(const spk_cidr_t *c, const uint8_t a[16])
{
    unsigned full = c->bits / 8u;
    unsigned rest = c->bits % 8u;
    if (memcmp(c->addr, a, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xffu << (8u - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

int spk_cidr_parse(spk_cidr_t *out, const char *s, char *why, size_t why_len)
{
    char text[ADDR_TEXT_MAX];
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= sizeof(text)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "empty or over-long address range");
    }
    memcpy(text, s, n + 1);
    char *slash = strchr(text, '/');
    long bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end = NULL;
        if (!isdigit((unsigned char)slash[1])) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "bad prefix length in '%s'", s);
        }
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0') {
            return spk_core_fail(why, why_len, SPK_EDECODE, "bad prefix length in '%s'", s);
        }
    }
    memset(out, 0, sizeof(*out));
    if (!spk_addr_parse(text, out->addr)) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "'%s' is not an IP address", text);
    }
    bool v4 = strchr(text, ':') == NULL;
    long max = v4 ? 32 : 128;
    if (bits < 0) {
        bits = max;
    }
    if (bits > max) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "prefix length over %ld in '%s'", max, s);
    }
    out->bits = (uint8_t)(v4 ? bits + 96 : bits);
    spk_cidr_t net = *out;
    unsigned full = out->bits / 8u;
    if (full < 16) {
        net.addr[full] &= (uint8_t)(0xffu << (8u - out->bits % 8u));
        memset(net.addr + full + 1, 0, 15 - full);
    }
    if (memcmp(net.addr, out->addr, 16) != 0) {
        return spk_core_fail(why, why_len, SPK_EDECODE, "host bits set in '%s'", s);
    }
    return 0;
}

/* Parses a list separated by commas or spaces into ranges[cap]. */
static int parse_list(spk_cidr_t *ranges, uint8_t *n, const char *list, char *why, size_t why_len)
{
    *n = 0;
    for (const char *p = list; p != NULL && *p != '\0';) {
        while (*p == ',' || *p == ' ' || *p == '\t') {
            p++;
        }
        size_t len = strcspn(p, ", \t");
        if (len == 0) {
            break;
        }
        if (*n == SPK_ADDR_FILTER_MAX_RANGES) {
            return spk_core_fail(why, why_len, SPK_ETOOBIG, "more than %d address ranges",
                                 SPK_ADDR_FILTER_MAX_RANGES);
        }
        char one[ADDR_TEXT_MAX];
        if (len >= sizeof(one)) {
            return spk_core_fail(why, why_len, SPK_EDECODE, "over-long address range");
        }
        memcpy(one, p, len);
        one[len] = '\0';
        int rc = spk_cidr_parse(&ranges[*n], one, why, why_len);
        if (rc != 0) {
            return rc;
        }
        (*n)++;
        p += len;
    }
    return 0;
}

static bool in_builtin(const char *const *list, size_t n, const uint8_t a[16])
{
    for (size_t i = 0; i < n; i++) {
        spk_cidr_t c;
        if (spk_cidr_parse(&c, list[i], NULL, 0) == 0 && cidr_match(&c, a)) {
            return true;
        }
    }
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int spk_addr_filter_init(spk_addr_filter_t *f, const char *const *local, size_t n_local,
                         const char *allow, const char *deny, char *why, size_t why_len)
{
    memset(f, 0, sizeof(*f));
    if (n_local > SPK_ADDR_FILTER_MAX_LOCAL) {
        return spk_core_fail(why, why_len, SPK_ETOOBIG, "more than %d local addresses",
                             SPK_ADDR_FILTER_MAX_LOCAL);
    }
    for (size_t i = 0; i < n_local; i++) {
        spk_cidr_t *c = &f->local[i];
        if (!spk_addr_parse(local[i], c->addr)) {
            memset(f, 0, sizeof(*f));
            return spk_core_fail(why, why_len, SPK_EDECODE, "local address '%s' is not literal",
                                 local[i] != NULL ? local[i] : "(null)");
        }
        c->bits = 128;
        f->local_private |= in_builtin(g_private, COUNT(g_private), c->addr);
    }
    f->n_local = (uint8_t)n_local;
    int rc = parse_list(f->allow, &f->n_allow, allow, why, why_len);
    if (rc == 0) {
        rc = parse_list(f->deny, &f->n_deny, deny, why, why_len);
    }
    if (rc != 0) {
        memset(f, 0, sizeof(*f));
    }
    return rc;
}

static bool in_list(const spk_cidr_t *list, size_t n, const uint8_t a[16])
{
    for (size_t i = 0; i < n; i++) {
        if (cidr_match(&list[i], a)) {
            return true;
        }
    }
    return false;
}

bool spk_addr_filter_allows(const spk_addr_filter_t *f, const char *addr)
{
    uint8_t a[16];
    if (!spk_addr_parse(addr, a)) {
        return false;
    }
    if (in_list(f->deny, f->n_deny, a)) {
        return false;
    }
    if (in_list(f->allow, f->n_allow, a)) {
        return true;
    }
    if (in_builtin(g_loopback, COUNT(g_loopback), a)) {
        return in_list(f->local, f->n_local, a);
    }
    if (in_builtin(g_refused, COUNT(g_refused), a)) {
        return false;
    }
    if (in_builtin(g_private, COUNT(g_private), a)) {
        return f->local_private;
    }
    return true;
}
