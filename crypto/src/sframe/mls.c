/* SFrame keys from MLS (RFC 9605 §5.2): a base key per epoch from the MLS exporter, per-sender
 * keys through KIDs that carry the epoch's low bits, the sender's leaf index and a context
 * value, and a bounded set of recent epochs for frames in flight. */
#include "sframe/sframe_int.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

#define BASE_KEY_LABEL "SFrame 1.0 Base Key"

typedef struct {
    bool used;
    uint64_t epoch;
    uint32_t leaf_count;
    uint32_t own_leaf;
    unsigned s_bits; /* S: bits of a leaf index */
    uint8_t base_key[SFRAME_MAX_NK];
    sframe_keyset_t keys; /* own send keys and the receive keys derived so far */
} epoch_t;

struct spk_sframe_mls {
    const sframe_suite_t *suite;
    unsigned e_bits;
    unsigned max_epochs;
    epoch_t ep[SPK_SFRAME_MLS_MAX_EPOCHS];
    bool any;
    uint64_t newest;
};

int spk_sframe_mls_create(spk_sframe_mls_t **out, const spk_sframe_mls_opts_t *opts)
{
    static const spk_sframe_mls_opts_t defaults = {0, 0, 0};
    const spk_sframe_mls_opts_t *o = opts != NULL ? opts : &defaults;
    uint16_t suite = o->suite != 0 ? o->suite : SPK_SFRAME_AES_128_GCM_SHA256_128;
    unsigned e = o->epoch_bits != 0 ? o->epoch_bits : 4;
    unsigned max = o->max_epochs != 0 ? o->max_epochs : 3;
    *out = NULL;
    if (sframe_suite(suite) == NULL || e > SPK_SFRAME_MLS_MAX_EPOCH_BITS ||
        max > SPK_SFRAME_MLS_MAX_EPOCHS || max > (1u << e)) {
        return SPK_EINVAL;
    }
    spk_sframe_mls_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SPK_ENOMEM;
    }
    s->suite = sframe_suite(suite);
    s->e_bits = e;
    s->max_epochs = max;
    *out = s;
    return 0;
}

static void epoch_clear(epoch_t *ep)
{
    sframe_keyset_free(&ep->keys);
    spk_wipe(ep, sizeof(*ep));
}

void spk_sframe_mls_free(spk_sframe_mls_t *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < SPK_SFRAME_MLS_MAX_EPOCHS; i++) {
        epoch_clear(&s->ep[i]);
    }
    spk_wipe(s, sizeof(*s));
    free(s);
}

static uint64_t epoch_mask(const spk_sframe_mls_t *s)
{
    return ((uint64_t)1 << s->e_bits) - 1;
}

/* The kept epoch whose low E bits are low, or NULL. */
static epoch_t *epoch_by_bits(spk_sframe_mls_t *s, uint64_t low)
{
    for (size_t i = 0; i < SPK_SFRAME_MLS_MAX_EPOCHS; i++) {
        if (s->ep[i].used && (s->ep[i].epoch & epoch_mask(s)) == low) {
            return &s->ep[i];
        }
    }
    return NULL;
}

static epoch_t *epoch_newest(spk_sframe_mls_t *s)
{
    return s->any ? epoch_by_bits(s, s->newest & epoch_mask(s)) : NULL;
}

/* A free slot, evicting the epoch that shares the new one's low bits (§5.2) and then the
 * oldest while max_epochs are kept. */
static epoch_t *epoch_slot(spk_sframe_mls_t *s, uint64_t epoch)
{
    epoch_t *same = epoch_by_bits(s, epoch & epoch_mask(s));
    if (same != NULL) {
        epoch_clear(same);
    }
    for (;;) {
        size_t kept = 0;
        epoch_t *oldest = NULL;
        epoch_t *free_slot = NULL;
        for (size_t i = 0; i < SPK_SFRAME_MLS_MAX_EPOCHS; i++) {
            epoch_t *ep = &s->ep[i];
            if (!ep->used) {
                free_slot = free_slot != NULL ? free_slot : ep;
                continue;
            }
            kept++;
            if (oldest == NULL || ep->epoch < oldest->epoch) {
                oldest = ep;
            }
        }
        if (kept < s->max_epochs) {
            return free_slot;
        }
        epoch_clear(oldest);
    }
}

int spk_sframe_mls_add_epoch_secret(spk_sframe_mls_t *s, uint64_t epoch, const uint8_t *base_key,
                                    size_t base_key_len, uint32_t leaf_count, uint32_t own_leaf)
{
    if (base_key == NULL || base_key_len != s->suite->nk || leaf_count == 0 ||
        own_leaf >= leaf_count) {
        return SPK_EINVAL;
    }
    if (leaf_count > SPK_SFRAME_MLS_MAX_LEAVES) {
        return SPK_ERANGE;
    }
    for (size_t i = 0; i < SPK_SFRAME_MLS_MAX_EPOCHS; i++) {
        if (s->ep[i].used && s->ep[i].epoch == epoch) {
            return SPK_EEXIST;
        }
    }
    if (s->any && epoch < s->newest) {
        return SPK_ESTATE;
    }
    epoch_t *ep = epoch_slot(s, epoch);
    unsigned bits = 0;
    while (((uint64_t)1 << bits) < leaf_count) {
        bits++;
    }
    ep->used = true;
    ep->epoch = epoch;
    ep->leaf_count = leaf_count;
    ep->own_leaf = own_leaf;
    ep->s_bits = bits;
    memcpy(ep->base_key, base_key, base_key_len);
    s->any = true;
    s->newest = epoch;
    return 0;
}

int spk_sframe_mls_add_epoch(spk_sframe_mls_t *s, const spk_mls_t *g)
{
    uint8_t base[SFRAME_MAX_NK];
    int rc = spk_mls_export_secret(g, BASE_KEY_LABEL, NULL, 0, base, s->suite->nk);
    rc = rc != 0 ? rc
                 : spk_sframe_mls_add_epoch_secret(s, spk_mls_epoch(g), base, s->suite->nk,
                                                   spk_mls_leaf_count(g), spk_mls_own_leaf(g));
    spk_wipe(base, sizeof(base));
    return rc;
}

void spk_sframe_mls_drop_before(spk_sframe_mls_t *s, uint64_t epoch)
{
    for (size_t i = 0; i < SPK_SFRAME_MLS_MAX_EPOCHS; i++) {
        if (s->ep[i].used && s->ep[i].epoch < epoch) {
            epoch_clear(&s->ep[i]);
        }
    }
}

int spk_sframe_mls_send_epoch(const spk_sframe_mls_t *s, uint64_t *epoch)
{
    if (!s->any || epoch_newest((spk_sframe_mls_t *)s) == NULL) {
        return SPK_ENOTFOUND;
    }
    *epoch = s->newest;
    return 0;
}

/* KID of (context, leaf) in ep; SPK_EINVAL when context does not fit. */
static int make_kid(const spk_sframe_mls_t *s, const epoch_t *ep, uint64_t context, uint32_t leaf,
                    uint64_t *kid)
{
    unsigned shift = ep->s_bits + s->e_bits;
    if (shift < 64 && (context >> (64 - shift)) != 0) {
        return SPK_EINVAL;
    }
    *kid = (context << shift) | ((uint64_t)leaf << s->e_bits) | (ep->epoch & epoch_mask(s));
    return 0;
}

int spk_sframe_mls_kid(const spk_sframe_mls_t *s, uint64_t context, uint64_t *kid)
{
    epoch_t *ep = epoch_newest((spk_sframe_mls_t *)s);
    if (ep == NULL) {
        return SPK_ENOTFOUND;
    }
    return make_kid(s, ep, context, ep->own_leaf, kid);
}

int spk_sframe_mls_encrypt(spk_sframe_mls_t *s, uint64_t context, const uint8_t *metadata,
                           size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                           size_t out_cap, size_t *out_len)
{
    epoch_t *ep = epoch_newest(s);
    uint64_t kid = 0;
    *out_len = 0;
    if (ep == NULL) {
        return SPK_ENOTFOUND;
    }
    int rc = make_kid(s, ep, context, ep->own_leaf, &kid);
    if (rc != 0) {
        return rc;
    }
    sframe_key_t *k = sframe_keyset_find(&ep->keys, kid);
    if (k == NULL) {
        rc = sframe_key_derive(&k, s->suite, kid, SPK_SFRAME_SEND, ep->base_key, s->suite->nk);
        rc = rc != 0 ? rc : sframe_keyset_insert(&ep->keys, k);
        if (rc != 0) {
            return rc;
        }
    }
    return sframe_key_encrypt(k, metadata, metadata_len, pt, pt_len, out, out_cap, out_len);
}

/* Decrypts with a receive key derived for this frame; the key is kept only when the frame
 * authenticated, so forged KIDs cannot fill the epoch. */
static int decrypt_new_key(spk_sframe_mls_t *s, epoch_t *ep, const spk_sframe_header_t *h,
                           const uint8_t *metadata, size_t metadata_len, const uint8_t *frame,
                           size_t frame_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    sframe_key_t *k = NULL;
    if (ep->keys.n == SPK_SFRAME_MAX_KEYS) {
        return SPK_ENOTFOUND;
    }
    int rc = sframe_key_derive(&k, s->suite, h->kid, SPK_SFRAME_RECV, ep->base_key, s->suite->nk);
    rc = rc != 0 ? rc
                 : sframe_key_decrypt(k, h, metadata, metadata_len, frame, frame_len, out, out_cap,
                                      out_len);
    if (rc != 0) {
        sframe_key_free(k);
        return rc;
    }
    rc = sframe_keyset_insert(&ep->keys, k);
    if (rc != 0) {
        spk_wipe(out, *out_len);
        *out_len = 0;
    }
    return rc;
}

int spk_sframe_mls_decrypt(spk_sframe_mls_t *s, const uint8_t *metadata, size_t metadata_len,
                           const uint8_t *frame, size_t frame_len, uint8_t *out, size_t out_cap,
                           size_t *out_len, spk_sframe_mls_sender_t *sender)
{
    spk_sframe_header_t h;
    *out_len = 0;
    int rc = sframe_parse_frame(metadata, metadata_len, frame, frame_len, &h);
    if (rc != 0) {
        return rc;
    }
    epoch_t *ep = epoch_by_bits(s, h.kid & epoch_mask(s));
    if (ep == NULL) {
        return SPK_ENOTFOUND;
    }
    unsigned shift = ep->s_bits + s->e_bits;
    uint32_t leaf = (uint32_t)((h.kid >> s->e_bits) & (((uint64_t)1 << ep->s_bits) - 1));
    if (leaf >= ep->leaf_count || leaf == ep->own_leaf) {
        return SPK_ENOTFOUND;
    }
    sframe_key_t *k = sframe_keyset_find(&ep->keys, h.kid);
    rc = k != NULL ? sframe_key_decrypt(k, &h, metadata, metadata_len, frame, frame_len, out,
                                        out_cap, out_len)
                   : decrypt_new_key(s, ep, &h, metadata, metadata_len, frame, frame_len, out,
                                     out_cap, out_len);
    if (rc == 0 && sender != NULL) {
        sender->epoch = ep->epoch;
        sender->leaf = leaf;
        sender->context = shift < 64 ? h.kid >> shift : 0;
        sender->kid = h.kid;
        sender->ctr = h.ctr;
    }
    return rc;
}
