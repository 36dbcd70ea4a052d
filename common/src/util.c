#include "spk/util.h"
#include "spk/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void spk_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        explicit_bzero(p, n);
    }
}

bool spk_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= (uint8_t)(x[i] ^ y[i]);
    }
    return d == 0;
}

int64_t spk_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t spk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t spk_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t spk_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

size_t spk_b64url_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64u[(v >> 18) & 63];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
        out[o++] = b64u[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64u[(v >> 18) & 63];
        out[o++] = b64u[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64u[(v >> 18) & 63];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* The value of each base64url character + 1; 0 for every other byte (a table: the decoder is on
 * the path of every chat message). */
static const uint8_t b64u_rev[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

static int b64u_val(char c)
{
    return (int)b64u_rev[(unsigned char)c] - 1;
}

long spk_b64url_decode(uint8_t *out, size_t out_cap, const char *in, size_t n)
{
    if (n % 4 == 1) {
        return SPK_EDECODE;
    }
    size_t need = (n / 4) * 3 + ((n % 4) ? (n % 4) - 1 : 0);
    if (need > out_cap) {
        return SPK_ERANGE;
    }
    size_t o = 0;
    size_t i = 0;
    /* whole groups of four characters (three bytes) first */
    for (; i + 4 <= n; i += 4) {
        const unsigned char *q = (const unsigned char *)in + i;
        unsigned a = b64u_rev[q[0]], b = b64u_rev[q[1]], c = b64u_rev[q[2]], d = b64u_rev[q[3]];
        if (a == 0 || b == 0 || c == 0 || d == 0) {
            return SPK_EDECODE;
        }
        uint32_t v = ((a - 1) << 18) | ((b - 1) << 12) | ((c - 1) << 6) | (d - 1);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    uint32_t acc = 0;
    int bits = 0;
    for (; i < n; i++) {
        int v = b64u_val(in[i]);
        if (v < 0) {
            return SPK_EDECODE;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Reject non-canonical trailing bits. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return SPK_EDECODE;
    }
    return (long)o;
}

void spk_hex_encode(char *out, const uint8_t *in, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

long spk_hex_decode(uint8_t *out, size_t out_cap, const char *in, size_t n)
{
    if (n % 2) {
        return SPK_EDECODE;
    }
    if (n / 2 > out_cap) {
        return SPK_ERANGE;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexv(in[2 * i]), l = hexv(in[2 * i + 1]);
        if (h < 0 || l < 0) {
            return SPK_EDECODE;
        }
        out[i] = (uint8_t)((h << 4) | l);
    }
    return (long)(n / 2);
}

size_t spk_json_escape(char *out, size_t cap, const char *in)
{
    static const char hx[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0) {
        return 0;
    }
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        char tmp[7];
        size_t len;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            len = 2;
        } else if (c == '\n') {
            memcpy(tmp, "\\n", 2);
            len = 2;
        } else if (c < 0x20) {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hx[c >> 4];
            tmp[5] = hx[c & 15];
            len = 6;
        } else {
            tmp[0] = (char)c;
            len = 1;
        }
        if (o + len + 1 > cap) {
            break;
        }
        memcpy(out + o, tmp, len);
        o += len;
    }
    out[o] = '\0';
    return o;
}

int spk_u64_push(uint64_t **arr, size_t *len, size_t *cap, uint64_t v)
{
    if (*len == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        uint64_t *n = realloc(*arr, ncap * sizeof(*n));
        if (n == NULL) {
            return SPK_ENOMEM;
        }
        *arr = n;
        *cap = ncap;
    }
    (*arr)[(*len)++] = v;
    return 0;
}

uint64_t spk_fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = s; c != NULL && *c != '\0'; c++) {
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    }
    return h;
}
