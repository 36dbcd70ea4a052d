/* A fast path for the commonest requests (chat.send, chat.ack): a flat JSON object whose values
 * are integers or strings of printable ASCII without escapes is built into a jansson object
 * without jansson's parser, which checks and copies every character of a message's 1.4 KB of
 * base64url one at a time (a sixth of a message's cost in the core, docs/performance.md). Anything
 * else (nesting, escapes, non-ASCII, other literals, numbers that are not plain integers,
 * duplicate keys) returns NULL and goes through json_loadb as before, which gives the same object
 * for every text this accepts. */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>

#define FLAT_KEY_MAX 64

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* A string without escapes, of bytes 0x20..0x7e: its bytes in [*s, *s + *n); the position after
 * the closing quote, or NULL. */
static const char *str(const char *p, const char *end, const char **s, size_t *n)
{
    if (p >= end || *p != '"') {
        return NULL;
    }
    const char *q = ++p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c > 0x7e || c == '\\') {
            return NULL;
        }
        q++;
    }
    if (q >= end) {
        return NULL;
    }
    *s = p;
    *n = (size_t)(q - p);
    return q + 1;
}

/* -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a fraction or exponent. */
static const char *integer(const char *p, const char *end, json_int_t *v)
{
    const char *q = p;
    bool neg = q < end && *q == '-';
    q += neg;
    const char *d = q;
    json_int_t x = 0;
    while (q < end && *q >= '0' && *q <= '9' && q - d < 19) {
        x = x * 10 + (*q - '0');
        q++;
    }
    size_t nd = (size_t)(q - d);
    if (nd == 0 || nd > 18 || (nd > 1 && *d == '0') ||
        (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9')))) {
        return NULL;
    }
    *v = neg ? -x : x;
    return q;
}

json_t *sig_json_flat(const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    p = ws(p, end);
    if (p >= end || *p != '{') {
        return NULL;
    }
    json_t *o = json_object();
    p = ws(p + 1, end);
    bool ok = o != NULL && p < end;
    if (ok && *p == '}') {
        p++; /* {} */
    }
    while (ok && p < end && p[-1] != '}') {
        const char *k = NULL, *s = NULL;
        size_t kn = 0, sn = 0;
        p = str(p, end, &k, &kn);
        p = p != NULL ? ws(p, end) : NULL;
        ok = p != NULL && p < end && *p == ':' && kn <= FLAT_KEY_MAX;
        p = ok ? ws(p + 1, end) : p;
        json_t *v = NULL;
        json_int_t i = 0;
        const char *q = ok ? str(p, end, &s, &sn) : NULL;
        if (q != NULL) {
            v = json_stringn_nocheck(s, sn);
        } else if (ok && (q = integer(p, end, &i)) != NULL) {
            v = json_integer(i);
        }
        char key[FLAT_KEY_MAX + 1];
        if (v != NULL) {
            memcpy(key, k, kn);
            key[kn] = '\0';
        }
        if (v == NULL || json_object_get(o, key) != NULL ||
            json_object_setn_new_nocheck(o, key, kn, v) != 0) {
            json_decref(v);
            ok = false;
            break;
        }
        p = ws(q, end);
        /* a comma and the next member, or the end of the object */
        ok = p < end && (*p == ',' || *p == '}');
        if (ok && *p == ',') {
            p = ws(p + 1, end);
            ok = p < end && *p == '"';
        } else if (ok) {
            p++;
        }
    }
    if (!ok || p[-1] != '}' || ws(p, end) != end) {
        json_decref(o);
        return NULL;
    }
    return o;
}
