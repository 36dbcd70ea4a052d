/* Transport: client addresses, trusted proxies and origins, without I/O (ws_addr.h). */
#include "ws_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spk/error.h"

static const uint8_t g_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs on both ends of [*s, *s + *len). */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_space((*s)[*len - 1])) {
        (*len)--;
    }
}

static void ip_from_v6(const uint8_t b[16], ws_ip_t *out)
{
    memset(out, 0, sizeof(*out));
    if (memcmp(b, g_v4mapped, sizeof(g_v4mapped)) == 0) {
        out->family = 4;
        memcpy(out->a, b + 12, 4);
    } else {
        out->family = 6;
        memcpy(out->a, b, 16);
    }
}

int ws_ip_parse(const char *s, size_t len, ws_ip_t *out)
{
    char buf[64];
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len)) {
        return SPK_EDECODE;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    uint8_t b[16];
    if (inet_pton(AF_INET, buf, b) == 1) {
        memset(out, 0, sizeof(*out));
        out->family = 4;
        memcpy(out->a, b, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, b) == 1) {
        ip_from_v6(b, out);
        return 0;
    }
    return SPK_EDECODE;
}

int ws_ip_from_sockaddr(const struct sockaddr *sa, socklen_t len, ws_ip_t *out)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        memset(out, 0, sizeof(*out));
        out->family = 4;
        memcpy(out->a, &v4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        ip_from_v6(v6->sin6_addr.s6_addr, out);
        return 0;
    }
    return SPK_EINVAL;
}

void ws_ip_format(const ws_ip_t *ip, char *buf, size_t cap)
{
    if (!inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->a, buf, (socklen_t)cap) && cap) {
        buf[0] = '\0';
    }
}

ws_ip_t ws_ip_masked(const ws_ip_t *ip, int prefix)
{
    ws_ip_t m = *ip;
    int bits = ip->family == 4 ? 32 : 128;
    if (prefix < 0) {
        prefix = 0;
    }
    for (int i = prefix; i < bits; i++) {
        m.a[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    }
    return m;
}

bool ws_ip_equal(const ws_ip_t *a, const ws_ip_t *b)
{
    return a->family == b->family && memcmp(a->a, b->a, sizeof(a->a)) == 0;
}

static int cidr_parse(const char *s, size_t len, ws_cidr_t *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (ws_ip_parse(s, alen, &out->net) != 0) {
        return SPK_EDECODE;
    }
    int bits = out->net.family == 4 ? 32 : 128;
    out->prefix = bits;
    if (slash) {
        const char *p = slash + 1;
        const char *end = s + len;
        if (p == end || end - p > 3) {
            return SPK_EDECODE;
        }
        int v = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') {
                return SPK_EDECODE;
            }
            v = v * 10 + (*p - '0');
        }
        if (v > bits) {
            return SPK_EDECODE;
        }
        out->prefix = v;
    }
    out->net = ws_ip_masked(&out->net, out->prefix);
    return 0;
}

int ws_cidr_list_parse(const char *s, ws_cidr_list_t *out, char *why, size_t why_len)
{
    out->n = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        size_t ilen = len;
        trim(&item, &ilen);
        p += len;
        if (*p == ',') {
            p++;
        }
        if (ilen == 0) {
            continue;
        }
        if (out->n >= WS_ADDR_MAX_CIDRS) {
            snprintf(why, why_len, "trusted_proxies: at most %d entries", WS_ADDR_MAX_CIDRS);
            return SPK_ECONFIG;
        }
        if (cidr_parse(item, ilen, &out->v[out->n]) != 0) {
            snprintf(why, why_len, "trusted_proxies: \"%.*s\" is not an address or CIDR",
                     (int)(ilen > 64 ? 64 : ilen), item);
            return SPK_ECONFIG;
        }
        out->n++;
    }
    return 0;
}

bool ws_cidr_list_match(const ws_cidr_list_t *l, const ws_ip_t *ip)
{
    for (int i = 0; i < l->n; i++) {
        if (l->v[i].net.family != ip->family) {
            continue;
        }
        ws_ip_t m = ws_ip_masked(ip, l->v[i].prefix);
        if (ws_ip_equal(&m, &l->v[i].net)) {
            return true;
        }
    }
    return false;
}

/* One list entry: an address, optionally with a port ("a.b.c.d:p", "[v6]:p"). */
static int entry_parse(const char *s, size_t len, ws_ip_t *out)
{
    if (ws_ip_parse(s, len, out) == 0) {
        return 0;
    }
    const char *addr = s;
    size_t alen;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':') {
            return SPK_EDECODE;
        }
        addr = s + 1;
        alen = (size_t)(close - s - 1);
    } else {
        const char *colon = memchr(s, ':', len);
        if (!colon || memchr(colon + 1, ':', (size_t)(s + len - colon - 1))) {
            return SPK_EDECODE; /* a bare IPv6 address with a port is ambiguous */
        }
        alen = (size_t)(colon - s);
    }
    const char *port = addr + alen + (addr == s ? 1 : 2);
    const char *end = s + len;
    if (port >= end || end - port > 5) {
        return SPK_EDECODE;
    }
    long v = 0;
    for (const char *p = port; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return SPK_EDECODE;
        }
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) {
        return SPK_EDECODE;
    }
    return ws_ip_parse(addr, alen, out);
}

int ws_forwarded_client(const char *v, size_t len, const ws_cidr_list_t *trusted, ws_ip_t *out)
{
    size_t end = len;
    bool any = false;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',') {
            start--;
        }
        const char *item = v + start;
        size_t ilen = end - start;
        trim(&item, &ilen);
        end = start > 0 ? start - 1 : 0;
        if (ilen == 0) {
            continue;
        }
        ws_ip_t ip;
        if (entry_parse(item, ilen, &ip) != 0) {
            return SPK_EDECODE;
        }
        *out = ip;
        any = true;
        if (!ws_cidr_list_match(trusted, &ip)) {
            return 0;
        }
    }
    return any ? 0 : SPK_EDECODE;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* host: a DNS name ([a-z0-9.-]) or a bracketed IPv6 literal. */
static bool host_ok(const char *h, size_t len)
{
    if (len == 0) {
        return false;
    }
    if (h[0] == '[') {
        ws_ip_t ip;
        return len > 2 && h[len - 1] == ']' && ws_ip_parse(h, len, &ip) == 0 && ip.family == 6;
    }
    for (size_t i = 0; i < len; i++) {
        char c = lower(h[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

int ws_origin_from_host(const char *scheme, const char *host, size_t len, char *out, size_t cap)
{
    int defport = strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "http") == 0 ? 80 : -1;
    if (defport < 0) {
        return SPK_EDECODE;
    }
    trim(&host, &len);
    size_t hlen = len;
    int port = defport;
    const char *colon = NULL;
    if (len > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close && close + 1 < host + len) {
            colon = close + 1;
        }
    } else {
        colon = memchr(host, ':', len);
    }
    if (colon) {
        if (*colon != ':' || colon + 1 == host + len || host + len - colon - 1 > 5) {
            return SPK_EDECODE;
        }
        port = 0;
        for (const char *p = colon + 1; p < host + len; p++) {
            if (*p < '0' || *p > '9') {
                return SPK_EDECODE;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            return SPK_EDECODE;
        }
        hlen = (size_t)(colon - host);
    }
    if (!host_ok(host, hlen) || strlen(scheme) + 3 + hlen + 7 >= cap) {
        return SPK_EDECODE;
    }
    int n = snprintf(out, cap, "%s://", scheme);
    for (size_t i = 0; i < hlen; i++) {
        out[n++] = lower(host[i]);
    }
    out[n] = '\0';
    if (port != defport) {
        snprintf(out + n, cap - (size_t)n, ":%d", port);
    }
    return 0;
}

int ws_origin_normalize(const char *s, size_t len, char *out, size_t cap)
{
    trim(&s, &len);
    const char *scheme;
    size_t skip;
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        scheme = "https";
        skip = 8;
    } else if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        scheme = "http";
        skip = 7;
    } else {
        return SPK_EDECODE;
    }
    const char *host = s + skip;
    size_t hlen = len - skip;
    if (hlen > 0 && host[hlen - 1] == '/') {
        hlen--; /* "https://host/" as some configurations write it */
    }
    if (memchr(host, '/', hlen) || memchr(host, '@', hlen) || memchr(host, '?', hlen) ||
        memchr(host, '#', hlen)) {
        return SPK_EDECODE;
    }
    return ws_origin_from_host(scheme, host, hlen, out, cap);
}
