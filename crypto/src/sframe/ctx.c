/* SFrame context (RFC 9605 Appendix A): keys by KID, frame encryption and decryption
 * (§4.4.3, §4.4.4), the send counter and the receive replay window (§9.3). */
#include "sframe/sframe_int.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

struct spk_sframe_ctx {
    const sframe_suite_t *suite;
    sframe_keyset_t keys;
};

/* ---- key sets ---- */

/* Index of the first key with kid >= want. */
static size_t lower_bound(const sframe_keyset_t *ks, uint64_t want)
{
    size_t lo = 0;
    size_t hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->v[mid]->kid < want) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

sframe_key_t *sframe_keyset_find(const sframe_keyset_t *ks, uint64_t kid)
{
    size_t i = lower_bound(ks, kid);
    return i < ks->n && ks->v[i]->kid == kid ? ks->v[i] : NULL;
}

int sframe_keyset_insert(sframe_keyset_t *ks, sframe_key_t *k)
{
    size_t i = lower_bound(ks, k->kid);
    int rc = 0;
    if (i < ks->n && ks->v[i]->kid == k->kid) {
        rc = SPK_EEXIST;
    } else if (ks->n == SPK_SFRAME_MAX_KEYS) {
        rc = SPK_ERANGE;
    } else if (ks->n == ks->cap) {
        size_t cap = ks->cap > 0 ? 2 * ks->cap : 4;
        sframe_key_t **v = realloc(ks->v, cap * sizeof(*v));
        if (v == NULL) {
            rc = SPK_ENOMEM;
        } else {
            ks->v = v;
            ks->cap = cap;
        }
    }
    if (rc != 0) {
        sframe_key_free(k);
        return rc;
    }
    memmove(ks->v + i + 1, ks->v + i, (ks->n - i) * sizeof(ks->v[0]));
    ks->v[i] = k;
    ks->n++;
    return 0;
}

int sframe_keyset_remove(sframe_keyset_t *ks, uint64_t kid)
{
    size_t i = lower_bound(ks, kid);
    if (i == ks->n || ks->v[i]->kid != kid) {
        return SPK_ENOTFOUND;
    }
    sframe_key_free(ks->v[i]);
    memmove(ks->v + i, ks->v + i + 1, (ks->n - i - 1) * sizeof(ks->v[0]));
    ks->n--;
    return 0;
}

void sframe_keyset_free(sframe_keyset_t *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        sframe_key_free(ks->v[i]);
    }
    free(ks->v);
    memset(ks, 0, sizeof(*ks));
}

/* ---- replay window ---- */

static bool window_bit(const sframe_key_t *k, uint64_t ctr)
{
    uint64_t slot = ctr % SPK_SFRAME_REPLAY_WINDOW;
    return (k->window[slot / 64] >> (slot % 64)) & 1u;
}

/* True when ctr may be accepted: above everything seen, or inside the window and new. */
static bool window_allows(const sframe_key_t *k, uint64_t ctr)
{
    if (!k->seen_any || ctr > k->top) {
        return true;
    }
    return k->top - ctr < SPK_SFRAME_REPLAY_WINDOW && !window_bit(k, ctr);
}

/* Records ctr (window_allows was true). Moving the top clears the slots it passes. */
static void window_mark(sframe_key_t *k, uint64_t ctr)
{
    if (!k->seen_any || ctr > k->top) {
        uint64_t gap = k->seen_any ? ctr - k->top : SPK_SFRAME_REPLAY_WINDOW;
        if (gap >= SPK_SFRAME_REPLAY_WINDOW) {
            memset(k->window, 0, sizeof(k->window));
        } else {
            for (uint64_t c = k->top + 1; c != ctr + 1; c++) {
                uint64_t slot = c % SPK_SFRAME_REPLAY_WINDOW;
                k->window[slot / 64] &= ~((uint64_t)1 << (slot % 64));
            }
        }
        k->top = ctr;
        k->seen_any = true;
    }
    uint64_t slot = ctr % SPK_SFRAME_REPLAY_WINDOW;
    k->window[slot / 64] |= (uint64_t)1 << (slot % 64);
}

/* ---- frames on one key ---- */

int sframe_key_encrypt(sframe_key_t *k, const uint8_t *metadata, size_t metadata_len,
                       const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                       size_t *out_len)
{
    uint8_t nonce[SFRAME_NONCE_LEN];
    size_t hlen = 0;
    *out_len = 0;
    if (k->usage != SPK_SFRAME_SEND) {
        return SPK_EINVAL;
    }
    if (pt_len > SPK_SFRAME_MAX_FRAME || metadata_len > SPK_SFRAME_MAX_FRAME) {
        return SPK_ETOOBIG;
    }
    if ((pt == NULL && pt_len > 0) || (metadata == NULL && metadata_len > 0) || out == NULL) {
        return SPK_EINVAL;
    }
    if (k->exhausted) {
        return SPK_ERANGE;
    }
    uint64_t ctr = k->next_ctr;
    size_t need = spk_sframe_header_size(k->kid, ctr) + pt_len + k->suite->nt;
    if (out_cap < need) {
        return SPK_EINVAL;
    }
    spk_sframe_header_encode(k->kid, ctr, out, &hlen);
    sframe_nonce(k->salt, ctr, nonce);
    int rc = sframe_aead_seal(k, nonce, out, hlen, metadata, metadata_len, pt, pt_len, out + hlen);
    if (rc != 0) {
        spk_wipe(out, need);
        return rc;
    }
    /* The CTR is used: never again under this key (§4.3, §9.1). */
    if (ctr == UINT64_MAX) {
        k->exhausted = true;
    } else {
        k->next_ctr = ctr + 1;
    }
    *out_len = need;
    return 0;
}

int sframe_key_decrypt(sframe_key_t *k, const spk_sframe_header_t *h, const uint8_t *metadata,
                       size_t metadata_len, const uint8_t *frame, size_t frame_len, uint8_t *out,
                       size_t out_cap, size_t *out_len)
{
    uint8_t nonce[SFRAME_NONCE_LEN];
    size_t nt = k->suite->nt;
    *out_len = 0;
    if (k->usage != SPK_SFRAME_RECV) {
        return SPK_ENOTFOUND; /* a send key is never used to decrypt */
    }
    if (frame_len - h->len < nt) {
        return SPK_ETRUNC;
    }
    size_t n = frame_len - h->len - nt;
    if (out_cap < n || (out == NULL && n > 0)) {
        return SPK_EINVAL;
    }
    if (!window_allows(k, h->ctr)) {
        return SPK_EREPLAY;
    }
    sframe_nonce(k->salt, h->ctr, nonce);
    int rc = sframe_aead_open(k, nonce, frame, h->len, metadata, metadata_len, frame + h->len,
                              frame_len - h->len, out);
    if (rc != 0) {
        return rc;
    }
    window_mark(k, h->ctr);
    *out_len = n;
    return 0;
}

/* ---- context ---- */

int spk_sframe_ctx_create(spk_sframe_ctx_t **out, uint16_t suite)
{
    const sframe_suite_t *s = sframe_suite(suite);
    *out = NULL;
    if (s == NULL) {
        return SPK_EINVAL;
    }
    spk_sframe_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return SPK_ENOMEM;
    }
    c->suite = s;
    *out = c;
    return 0;
}

void spk_sframe_ctx_free(spk_sframe_ctx_t *c)
{
    if (c == NULL) {
        return;
    }
    sframe_keyset_free(&c->keys);
    free(c);
}

int spk_sframe_ctx_add_key(spk_sframe_ctx_t *c, uint64_t kid, spk_sframe_usage_t usage,
                           const uint8_t *base_key, size_t base_key_len)
{
    sframe_key_t *k = NULL;
    if ((usage != SPK_SFRAME_SEND && usage != SPK_SFRAME_RECV) || base_key == NULL ||
        base_key_len == 0 || base_key_len > SFRAME_MAX_BASE_KEY) {
        return SPK_EINVAL;
    }
    if (sframe_keyset_find(&c->keys, kid) != NULL) {
        return SPK_EEXIST;
    }
    int rc = sframe_key_derive(&k, c->suite, kid, usage, base_key, base_key_len);
    return rc != 0 ? rc : sframe_keyset_insert(&c->keys, k);
}

int spk_sframe_ctx_remove_key(spk_sframe_ctx_t *c, uint64_t kid)
{
    return sframe_keyset_remove(&c->keys, kid);
}

int spk_sframe_ctx_set_next_ctr(spk_sframe_ctx_t *c, uint64_t kid, uint64_t ctr)
{
    sframe_key_t *k = sframe_keyset_find(&c->keys, kid);
    if (k == NULL) {
        return SPK_ENOTFOUND;
    }
    if (k->usage != SPK_SFRAME_SEND || k->exhausted || ctr < k->next_ctr) {
        return SPK_EINVAL;
    }
    k->next_ctr = ctr;
    return 0;
}

int spk_sframe_encrypt(spk_sframe_ctx_t *c, uint64_t kid, const uint8_t *metadata,
                       size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                       size_t out_cap, size_t *out_len)
{
    sframe_key_t *k = sframe_keyset_find(&c->keys, kid);
    *out_len = 0;
    if (k == NULL) {
        return SPK_ENOTFOUND;
    }
    return sframe_key_encrypt(k, metadata, metadata_len, pt, pt_len, out, out_cap, out_len);
}

int sframe_parse_frame(const uint8_t *metadata, size_t metadata_len, const uint8_t *frame,
                       size_t frame_len, spk_sframe_header_t *h)
{
    if (frame_len > SPK_SFRAME_MAX_FRAME + SPK_SFRAME_MAX_OVERHEAD ||
        metadata_len > SPK_SFRAME_MAX_FRAME) {
        return SPK_ETOOBIG;
    }
    if ((frame == NULL && frame_len > 0) || (metadata == NULL && metadata_len > 0)) {
        return SPK_EINVAL;
    }
    return spk_sframe_header_decode(frame, frame_len, h);
}

int spk_sframe_decrypt(spk_sframe_ctx_t *c, const uint8_t *metadata, size_t metadata_len,
                       const uint8_t *frame, size_t frame_len, uint8_t *out, size_t out_cap,
                       size_t *out_len, spk_sframe_header_t *hdr)
{
    spk_sframe_header_t h;
    *out_len = 0;
    int rc = sframe_parse_frame(metadata, metadata_len, frame, frame_len, &h);
    if (rc != 0) {
        return rc;
    }
    sframe_key_t *k = sframe_keyset_find(&c->keys, h.kid);
    rc = k != NULL ? sframe_key_decrypt(k, &h, metadata, metadata_len, frame, frame_len, out,
                                        out_cap, out_len)
                   : SPK_ENOTFOUND;
    if (rc == 0 && hdr != NULL) {
        *hdr = h;
    }
    return rc;
}
