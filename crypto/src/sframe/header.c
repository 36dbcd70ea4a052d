/* SFrame header (RFC 9605 §4.3): config byte X|KKK|Y|CCC, then the extended KID and CTR as
 * minimal big-endian integers. */
#include "spk/sframe.h"

#include "spk/error.h"

/* Bytes of the minimal big-endian encoding of v (v >= 8, so at least 1). */
static size_t be_len(uint64_t v)
{
    size_t n = 1;
    while (n < 8 && (v >> (8 * n)) != 0) {
        n++;
    }
    return n;
}

size_t spk_sframe_header_size(uint64_t kid, uint64_t ctr)
{
    return 1 + (kid < 8 ? 0 : be_len(kid)) + (ctr < 8 ? 0 : be_len(ctr));
}

static size_t put_be(uint8_t *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return n;
}

void spk_sframe_header_encode(uint64_t kid, uint64_t ctr, uint8_t out[SPK_SFRAME_MAX_HEADER],
                              size_t *len)
{
    size_t off = 1;
    uint8_t config = 0;
    if (kid < 8) {
        config |= (uint8_t)(kid << 4);
    } else {
        size_t n = be_len(kid);
        config |= (uint8_t)(0x80u | ((n - 1) << 4));
        off += put_be(out + off, kid, n);
    }
    if (ctr < 8) {
        config |= (uint8_t)ctr;
    } else {
        size_t n = be_len(ctr);
        config |= (uint8_t)(0x08u | (n - 1));
        off += put_be(out + off, ctr, n);
    }
    out[0] = config;
    *len = off;
}

/* One field: the 3-bit value itself, or (extended) a minimal n-byte integer from p. */
static int get_field(bool extended, unsigned bits, const uint8_t *p, size_t n, size_t *off,
                     uint64_t *out)
{
    if (!extended) {
        *out = bits;
        return 0;
    }
    size_t len = bits + 1;
    if (n - *off < len) {
        return SPK_ETRUNC;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        v = (v << 8) | p[*off + i];
    }
    if (v < 8 || p[*off] == 0) {
        return SPK_EDECODE; /* not minimal */
    }
    *off += len;
    *out = v;
    return 0;
}

int spk_sframe_header_decode(const uint8_t *p, size_t n, spk_sframe_header_t *h)
{
    size_t off = 1;
    uint64_t kid = 0;
    uint64_t ctr = 0;
    if (n == 0) {
        return SPK_ETRUNC;
    }
    uint8_t config = p[0];
    int rc = get_field((config & 0x80u) != 0, (config >> 4) & 7u, p, n, &off, &kid);
    rc = rc != 0 ? rc : get_field((config & 0x08u) != 0, config & 7u, p, n, &off, &ctr);
    if (rc != 0) {
        return rc;
    }
    h->kid = kid;
    h->ctr = ctr;
    h->len = off;
    return 0;
}
