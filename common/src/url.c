/* Strict absolute http(s) URLs (spk/url.h). */
#include "spk/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spk/error.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

/* The host at p[0..n): a name, or a bracketed IPv6 address. *used: bytes taken. */
static int parse_host(const char *p, size_t n, spk_url_t *u, size_t *used)
{
    size_t i = 0, hl;
    const char *h;
    if (n > 0 && p[0] == '[') {
        for (i = 1; i < n && v6_char(p[i]); i++) {
        }
        if (i >= n || p[i] != ']' || i < 3) {
            return SPK_EINVAL;
        }
        h = p + 1;
        hl = i - 1;
        i++;
    } else {
        for (i = 0; i < n && name_char(p[i]); i++) {
        }
        h = p;
        hl = i;
    }
    if (hl == 0 || hl > SPK_URL_HOST_MAX) {
        return SPK_EINVAL;
    }
    memcpy(u->host, h, hl);
    u->host[hl] = '\0';
    *used = i;
    return 0;
}

/* The port at p[0..n) (digits up to the path). *used: bytes taken. */
static int parse_port(const char *p, size_t n, spk_url_t *u, size_t *used)
{
    size_t i = 0;
    long v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        v = v * 10 + (p[i] - '0');
        if (v > 65535) {
            return SPK_EINVAL;
        }
    }
    if (i == 0 || v == 0) {
        return SPK_EINVAL;
    }
    snprintf(u->port, sizeof(u->port), "%hu", (unsigned short)v); /* v <= 65535 */
    *used = i;
    return 0;
}

int spk_url_parse(const char *s, size_t len, spk_url_t *u)
{
    memset(u, 0, sizeof(*u));
    size_t i;
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        u->tls = true;
        i = 8;
    } else if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        i = 7;
    } else {
        return SPK_EINVAL;
    }
    size_t used = 0;
    if (parse_host(s + i, len - i, u, &used) != 0) {
        return SPK_EINVAL;
    }
    i += used;
    if (i < len && s[i] == ':') {
        i++;
        if (parse_port(s + i, len - i, u, &used) != 0) {
            return SPK_EINVAL;
        }
        i += used;
    } else {
        snprintf(u->port, sizeof(u->port), "%s", u->tls ? "443" : "80");
    }
    /* The rest is a path and query (or nothing); the fragment is the client's own. */
    size_t end = i;
    while (end < len && s[end] != '#') {
        end++;
    }
    for (size_t k = i; k < len; k++) {
        if ((unsigned char)s[k] <= 0x20 || (unsigned char)s[k] >= 0x7f) {
            return SPK_EINVAL;
        }
    }
    if (i < end && s[i] != '/' && s[i] != '?') {
        return SPK_EINVAL; /* "@" of user information, or anything else after the host */
    }
    size_t pl = end - i;
    bool slash = pl > 0 && s[i] == '/';
    if (pl + (slash ? 0 : 1) > SPK_URL_PATH_MAX) {
        return SPK_EINVAL;
    }
    snprintf(u->path, sizeof(u->path), "%s%.*s", slash ? "" : "/", (int)pl, s + i);
    return 0;
}

int spk_url_format(const spk_url_t *u, char *out, size_t cap)
{
    bool v6 = strchr(u->host, ':') != NULL;
    int n = snprintf(out, cap, "%s://%s%s%s:%s%s", u->tls ? "https" : "http", v6 ? "[" : "",
                     u->host, v6 ? "]" : "", u->port, u->path);
    return n >= 0 && (size_t)n < cap ? 0 : SPK_ERANGE;
}

bool spk_url_host_loopback(const spk_url_t *u)
{
    if (strcasecmp(u->host, "localhost") == 0 || strcmp(u->host, "::1") == 0) {
        return true;
    }
    unsigned a, b, c, d;
    char tail;
    return sscanf(u->host, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 &&
           b < 256 && c < 256 && d < 256;
}

int spk_hostport_parse(const char *s, char *host, size_t host_cap, int *port)
{
    if (s == NULL || host == NULL || port == NULL || host_cap == 0) {
        return SPK_EINVAL;
    }
    const char *h = s;
    size_t hlen;
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return SPK_EINVAL;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || strchr(s, ':') != colon) {
            return SPK_EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    size_t digits = strspn(p, "0123456789");
    if (hlen == 0 || hlen >= host_cap || digits == 0 || digits > 5 || p[digits] != '\0') {
        return SPK_EINVAL;
    }
    long v = strtol(p, NULL, 10);
    if (v > 65535) {
        return SPK_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)v;
    return 0;
}
