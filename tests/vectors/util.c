/* Helpers shared by the vector handlers. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/util.h"
#include "vectors.h"

static const char *g_file = "";
static size_t g_index;

void vec_set_context(const char *file, size_t index)
{
    g_file = file;
    g_index = index;
}

bool vec_fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s[%zu]: ", g_file, g_index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

const char *vec_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        vec_fail("field '%s' missing or not a string", key);
        return NULL;
    }
    return json_string_value(v);
}

bool vec_hex(const json_t *obj, const char *key, spk_mls_bytes_t *out)
{
    out->p = NULL;
    out->n = 0;
    const char *s = vec_str(obj, key);
    if (s == NULL) {
        return false;
    }
    size_t len = strlen(s);
    if (len % 2 != 0) {
        return vec_fail("field '%s' has odd hex length", key);
    }
    if (len == 0) {
        return true;
    }
    out->p = malloc(len / 2);
    if (out->p == NULL) {
        return vec_fail("out of memory");
    }
    long n = spk_hex_decode(out->p, len / 2, s, len);
    if (n < 0) {
        free(out->p);
        out->p = NULL;
        return vec_fail("field '%s' is not hex", key);
    }
    out->n = (size_t)n;
    return true;
}

bool vec_hex_fixed(const json_t *obj, const char *key, uint8_t *out, size_t n)
{
    spk_mls_bytes_t b;
    if (!vec_hex(obj, key, &b)) {
        return false;
    }
    bool ok = b.n == n;
    if (ok) {
        memcpy(out, b.p, n);
    } else {
        vec_fail("field '%s' has %zu bytes, expected %zu", key, b.n, n);
    }
    spk_mls_bytes_free(&b);
    return ok;
}

bool vec_u64(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    if (json_is_string(v)) {
        char *end = NULL;
        const char *s = json_string_value(v);
        unsigned long long x = strtoull(s, &end, 10);
        if (*s != '\0' && end != NULL && *end == '\0') {
            *out = x;
            return true;
        }
    }
    return vec_fail("field '%s' missing or not an unsigned integer", key);
}

static void print_hex(const char *tag, const uint8_t *p, size_t n)
{
    fprintf(stderr, "    %s (%zu): ", tag, n);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "%02x", p[i]);
    }
    fputc('\n', stderr);
}

bool vec_eq(const char *what, const uint8_t *got, size_t got_len, const uint8_t *want,
            size_t want_len)
{
    if (got_len == want_len && (got_len == 0 || memcmp(got, want, got_len) == 0)) {
        return true;
    }
    vec_fail("%s mismatch", what);
    print_hex("got ", got, got_len);
    print_hex("want", want, want_len);
    return false;
}

bool vec_eq_hex(const char *what, const uint8_t *got, size_t got_len, const json_t *obj,
                const char *key)
{
    spk_mls_bytes_t want;
    if (!vec_hex(obj, key, &want)) {
        return false;
    }
    bool ok = vec_eq(what, got, got_len, want.p, want.n);
    spk_mls_bytes_free(&want);
    return ok;
}

bool vec_ok(const char *what, int rc)
{
    if (rc == 0) {
        return true;
    }
    return vec_fail("%s failed: %s (%d)", what, spk_err_name(rc), rc);
}
