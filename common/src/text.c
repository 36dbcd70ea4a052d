/* Accepted text and cutting on character boundaries (spk/text.h). */
#include "spk/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (n > 0 bytes left); returns its length, 0 when invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
        *cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
        *cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
        *cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

static bool refused(uint32_t c)
{
    static const uint32_t ranges[][2] = {
        {0x0000, 0x001f}, {0x007f, 0x009f},   {0x00ad, 0x00ad}, {0x034f, 0x034f}, {0x061c, 0x061c},
        {0x115f, 0x1160}, {0x17b4, 0x17b5},   {0x180e, 0x180e}, {0x200b, 0x200f}, {0x2028, 0x202e},
        {0x2060, 0x2064}, {0x2066, 0x2069},   {0x3164, 0x3164}, {0xfeff, 0xfeff}, {0xffa0, 0xffa0},
        {0xfffe, 0xffff}, {0xe0000, 0xe007f},
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (c >= ranges[i][0] && c <= ranges[i][1]) {
            return true;
        }
    }
    return false;
}

bool spk_text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        uint32_t cp = 0;
        size_t len = utf8_next(p, n, &cp);
        if (len == 0 || refused(cp)) {
            return false;
        }
        p += len;
        n -= len;
    }
    return true;
}

size_t spk_utf8_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0) {
        return 0;
    }
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
    }
    /* The last character must be whole: the source may have been cut already (an snprintf
     * into a fixed buffer), or the cut above fell inside it. */
    size_t k = n;
    while (k > 0 && ((unsigned char)src[k - 1] & 0xc0) == 0x80) {
        k--;
    }
    if (k > 0) {
        unsigned char lead = (unsigned char)src[k - 1];
        size_t len = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
        if (len == 0 || (k - 1) + len > n) {
            n = k - 1; /* an incomplete (or stray) last sequence goes */
        }
    } else {
        n = 0; /* nothing but continuation bytes */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

size_t spk_text_escape(char *dst, size_t cap, const char *src)
{
    if (cap == 0) {
        return 0;
    }
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src), o = 0;
    while (n > 0) {
        uint32_t cp = 0;
        size_t len = utf8_next(p, n, &cp);
        char esc[16];
        const char *piece = (const char *)p;
        size_t plen = len;
        if (len == 0) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\x%02X", p[0]);
            piece = esc;
            len = 1;
        } else if (refused(cp)) {
            plen = (size_t)snprintf(esc, sizeof(esc), "\\u{%04X}", (unsigned)cp);
            piece = esc;
        } else if (cp == '\\') {
            piece = "\\\\";
            plen = 2;
        }
        if (o + plen >= cap) {
            break;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        p += len;
        n -= len;
    }
    dst[o] = '\0';
    return o;
}
