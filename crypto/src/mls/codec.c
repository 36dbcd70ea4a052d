/* TLS presentation-language codec for MLS (RFC 9420 §2.1). */
#include "mls/codec.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/util.h"

/* ---- owned bytes ---- */

int spk_mls_bytes_dup(spk_mls_bytes_t *out, const uint8_t *p, size_t n)
{
    out->p = NULL;
    out->n = 0;
    if (n == 0) {
        return 0;
    }
    if (p == NULL) {
        return SPK_EINVAL;
    }
    out->p = malloc(n);
    if (out->p == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(out->p, p, n);
    out->n = n;
    return 0;
}

void spk_mls_bytes_free(spk_mls_bytes_t *b)
{
    if (b == NULL) {
        return;
    }
    if (b->p != NULL) {
        spk_wipe(b->p, b->n);
        free(b->p);
    }
    b->p = NULL;
    b->n = 0;
}

int spk_mls_bytes_copy(spk_mls_bytes_t *dst, const spk_mls_bytes_t *src)
{
    spk_mls_bytes_t tmp;
    int rc = spk_mls_bytes_dup(&tmp, src->p, src->n);
    if (rc != 0) {
        return rc;
    }
    spk_mls_bytes_free(dst);
    *dst = tmp;
    return 0;
}

bool spk_mls_bytes_eq_raw(const spk_mls_bytes_t *a, const uint8_t *p, size_t n)
{
    if (a->n != n) {
        return false;
    }
    if (n == 0) {
        return true;
    }
    return spk_ct_equal(a->p, p, n);
}

bool spk_mls_bytes_eq(const spk_mls_bytes_t *a, const spk_mls_bytes_t *b)
{
    return spk_mls_bytes_eq_raw(a, b->p, b->n);
}

/* ---- reader ---- */

void spk_mls_reader_init(spk_mls_reader_t *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p != NULL ? len : 0;
    r->off = 0;
    r->err = 0;
}

size_t spk_mls_reader_remaining(const spk_mls_reader_t *r)
{
    if (r->err != 0) {
        return 0;
    }
    return r->len - r->off;
}

bool spk_mls_reader_at_end(const spk_mls_reader_t *r)
{
    return r->err == 0 && r->off == r->len;
}

int spk_mls_reader_done(const spk_mls_reader_t *r)
{
    if (r->err != 0) {
        return r->err;
    }
    return r->off == r->len ? 0 : SPK_EDECODE;
}

int spk_mls_reader_fail(spk_mls_reader_t *r, int err)
{
    if (r->err == 0) {
        r->err = err != 0 ? err : SPK_EDECODE;
    }
    return r->err;
}

/* Takes n bytes or sets SPK_ETRUNC; returns NULL on error. */
static const uint8_t *take(spk_mls_reader_t *r, size_t n)
{
    if (r->err != 0) {
        return NULL;
    }
    if (n > r->len - r->off) {
        r->err = SPK_ETRUNC;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static uint64_t load_be(const uint8_t *q, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | q[i];
    }
    return v;
}

int spk_mls_read_u8(spk_mls_reader_t *r, uint8_t *out)
{
    const uint8_t *q = take(r, 1);
    *out = q != NULL ? q[0] : 0;
    return r->err;
}

int spk_mls_read_u16(spk_mls_reader_t *r, uint16_t *out)
{
    const uint8_t *q = take(r, 2);
    *out = q != NULL ? (uint16_t)load_be(q, 2) : 0;
    return r->err;
}

int spk_mls_read_u32(spk_mls_reader_t *r, uint32_t *out)
{
    const uint8_t *q = take(r, 4);
    *out = q != NULL ? (uint32_t)load_be(q, 4) : 0;
    return r->err;
}

int spk_mls_read_u64(spk_mls_reader_t *r, uint64_t *out)
{
    const uint8_t *q = take(r, 8);
    *out = q != NULL ? load_be(q, 8) : 0;
    return r->err;
}

int spk_mls_read_varint(spk_mls_reader_t *r, uint64_t *out)
{
    *out = 0;
    if (r->err != 0) {
        return r->err;
    }
    if (r->off >= r->len) {
        r->err = SPK_ETRUNC;
        return r->err;
    }
    uint8_t prefix = r->p[r->off] >> 6;
    if (prefix == 3) {
        r->err = SPK_EDECODE;
        return r->err;
    }
    size_t n = (size_t)1 << prefix;
    const uint8_t *q = take(r, n);
    if (q == NULL) {
        return r->err;
    }
    uint64_t v = load_be(q, n);
    v &= ((uint64_t)1 << (8 * n - 2)) - 1;
    /* §2.1.2: the encoding must be minimal. */
    if (spk_mls_varint_size(v) != n) {
        r->err = SPK_EDECODE;
        return r->err;
    }
    *out = v;
    return 0;
}

int spk_mls_read_bytes(spk_mls_reader_t *r, size_t n, const uint8_t **out)
{
    *out = take(r, n);
    return r->err;
}

int spk_mls_read_copy(spk_mls_reader_t *r, uint8_t *dst, size_t n)
{
    const uint8_t *q = take(r, n);
    if (q == NULL) {
        if (n > 0) {
            memset(dst, 0, n);
        }
        return r->err;
    }
    if (n > 0) {
        memcpy(dst, q, n);
    }
    return 0;
}

int spk_mls_read_opaque_v(spk_mls_reader_t *r, const uint8_t **p, size_t *n)
{
    uint64_t len = 0;
    *p = NULL;
    *n = 0;
    if (spk_mls_read_varint(r, &len) != 0) {
        return r->err;
    }
    const uint8_t *q = take(r, (size_t)len);
    if (q == NULL) {
        return r->err;
    }
    *p = len > 0 ? q : NULL;
    *n = (size_t)len;
    return 0;
}

int spk_mls_read_opaque_v_dup(spk_mls_reader_t *r, spk_mls_bytes_t *out)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    out->p = NULL;
    out->n = 0;
    if (spk_mls_read_opaque_v(r, &p, &n) != 0) {
        return r->err;
    }
    int rc = spk_mls_bytes_dup(out, p, n);
    if (rc != 0) {
        return spk_mls_reader_fail(r, rc);
    }
    return 0;
}

int spk_mls_read_opaque_v_fixed(spk_mls_reader_t *r, uint8_t *dst, size_t n)
{
    const uint8_t *p = NULL;
    size_t got = 0;
    if (spk_mls_read_opaque_v(r, &p, &got) == 0 && got != n) {
        spk_mls_reader_fail(r, SPK_EDECODE);
    }
    if (r->err != 0) {
        if (n > 0) {
            memset(dst, 0, n);
        }
        return r->err;
    }
    if (n > 0) {
        memcpy(dst, p, n);
    }
    return 0;
}

int spk_mls_read_sub(spk_mls_reader_t *r, spk_mls_reader_t *sub)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    spk_mls_read_opaque_v(r, &p, &n);
    spk_mls_reader_init(sub, p, n);
    if (r->err != 0) {
        sub->err = r->err;
    }
    return r->err;
}

int spk_mls_read_optional(spk_mls_reader_t *r, bool *present)
{
    uint8_t v = 0;
    *present = false;
    if (spk_mls_read_u8(r, &v) != 0) {
        return r->err;
    }
    if (v > 1) {
        return spk_mls_reader_fail(r, SPK_EDECODE);
    }
    *present = v == 1;
    return 0;
}

/* ---- writer ---- */

size_t spk_mls_varint_size(uint64_t n)
{
    if (n < 0x40) {
        return 1;
    }
    if (n < 0x4000) {
        return 2;
    }
    if (n <= SPK_MLS_VARINT_MAX) {
        return 4;
    }
    return 0;
}

void spk_mls_writer_init(spk_mls_writer_t *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->err = 0;
}

void spk_mls_writer_free(spk_mls_writer_t *w)
{
    if (w->buf != NULL) {
        spk_wipe(w->buf, w->cap);
        free(w->buf);
    }
    spk_mls_writer_init(w);
}

int spk_mls_writer_take(spk_mls_writer_t *w, spk_mls_bytes_t *out)
{
    out->p = NULL;
    out->n = 0;
    if (w->err != 0) {
        int err = w->err;
        spk_mls_writer_free(w);
        return err;
    }
    if (w->len == 0) {
        spk_mls_writer_free(w);
        return 0;
    }
    /* Shrink to the exact length so spk_mls_bytes_free wipes everything that was written. */
    uint8_t *p = malloc(w->len);
    if (p == NULL) {
        spk_mls_writer_free(w);
        return SPK_ENOMEM;
    }
    memcpy(p, w->buf, w->len);
    out->p = p;
    out->n = w->len;
    spk_mls_writer_free(w);
    return 0;
}

/* Ensures room for n more bytes; returns a pointer to them or NULL (sticky error set). */
static uint8_t *reserve(spk_mls_writer_t *w, size_t n)
{
    if (w->err != 0) {
        return NULL;
    }
    if (n > SIZE_MAX / 2 - w->len) {
        w->err = SPK_ENOMEM;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap != 0 ? w->cap : 64;
        while (cap < w->len + n) {
            cap *= 2;
        }
        uint8_t *nb = malloc(cap);
        if (nb == NULL) {
            w->err = SPK_ENOMEM;
            return NULL;
        }
        /* Copy rather than realloc so the old buffer can be wiped. */
        if (w->buf != NULL) {
            memcpy(nb, w->buf, w->len);
            spk_wipe(w->buf, w->cap);
            free(w->buf);
        }
        w->buf = nb;
        w->cap = cap;
    }
    uint8_t *q = w->buf + w->len;
    w->len += n;
    return q;
}

static int write_be(spk_mls_writer_t *w, uint64_t v, size_t n)
{
    uint8_t *q = reserve(w, n);
    if (q == NULL) {
        return w->err;
    }
    for (size_t i = 0; i < n; i++) {
        q[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    return 0;
}

int spk_mls_write_u8(spk_mls_writer_t *w, uint8_t v)
{
    return write_be(w, v, 1);
}

int spk_mls_write_u16(spk_mls_writer_t *w, uint16_t v)
{
    return write_be(w, v, 2);
}

int spk_mls_write_u32(spk_mls_writer_t *w, uint32_t v)
{
    return write_be(w, v, 4);
}

int spk_mls_write_u64(spk_mls_writer_t *w, uint64_t v)
{
    return write_be(w, v, 8);
}

static void encode_varint(uint8_t *q, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        q[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    if (n == 2) {
        q[0] |= 0x40;
    } else if (n == 4) {
        q[0] |= 0x80;
    }
}

int spk_mls_write_varint(spk_mls_writer_t *w, uint64_t v)
{
    size_t n = spk_mls_varint_size(v);
    if (w->err != 0) {
        return w->err;
    }
    if (n == 0) {
        w->err = SPK_ERANGE;
        return w->err;
    }
    uint8_t *q = reserve(w, n);
    if (q == NULL) {
        return w->err;
    }
    encode_varint(q, v, n);
    return 0;
}

int spk_mls_write_bytes(spk_mls_writer_t *w, const uint8_t *p, size_t n)
{
    if (n == 0) {
        return w->err;
    }
    if (p == NULL && w->err == 0) {
        w->err = SPK_EINVAL;
    }
    uint8_t *q = reserve(w, n);
    if (q == NULL) {
        return w->err;
    }
    memcpy(q, p, n);
    return 0;
}

int spk_mls_write_opaque_v(spk_mls_writer_t *w, const uint8_t *p, size_t n)
{
    if (spk_mls_write_varint(w, n) != 0) {
        return w->err;
    }
    return spk_mls_write_bytes(w, p, n);
}

int spk_mls_write_optional(spk_mls_writer_t *w, bool present)
{
    return spk_mls_write_u8(w, present ? 1 : 0);
}

int spk_mls_write_vec_begin(spk_mls_writer_t *w, size_t *mark)
{
    *mark = w->len;
    return w->err;
}

int spk_mls_write_vec_end(spk_mls_writer_t *w, size_t mark)
{
    if (w->err != 0) {
        return w->err;
    }
    if (mark > w->len) {
        w->err = SPK_EINVAL;
        return w->err;
    }
    size_t body = w->len - mark;
    size_t n = spk_mls_varint_size(body);
    if (n == 0) {
        w->err = SPK_ERANGE;
        return w->err;
    }
    if (reserve(w, n) == NULL) {
        return w->err;
    }
    memmove(w->buf + mark + n, w->buf + mark, body);
    encode_varint(w->buf + mark, body, n);
    return 0;
}
