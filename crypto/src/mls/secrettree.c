/* Secret tree and ratchets (RFC 9420 §9). */
#include "mls/secrettree.h"

#include <stdlib.h>
#include <string.h>

#include "mls/treemath.h"
#include "spk/error.h"
#include "spk/util.h"

int spk_mls_sender_data_key_nonce(const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                  const uint8_t *ciphertext, size_t ciphertext_len,
                                  uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                                  uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    size_t n = ciphertext_len < SPK_MLS_HASH_LEN ? ciphertext_len : SPK_MLS_HASH_LEN;
    int rc = spk_mls_expand_with_label(sender_data_secret, SPK_MLS_HASH_LEN, "key", ciphertext, n,
                                       key, SPK_MLS_AEAD_KEY_LEN);
    if (rc == 0) {
        rc = spk_mls_expand_with_label(sender_data_secret, SPK_MLS_HASH_LEN, "nonce", ciphertext, n,
                                       nonce, SPK_MLS_AEAD_NONCE_LEN);
    }
    return rc;
}

int spk_mls_secret_tree_init(spk_mls_secret_tree_t *st,
                             const uint8_t encryption_secret[SPK_MLS_HASH_LEN], uint32_t n_leaves)
{
    memset(st, 0, sizeof *st);
    if (n_leaves == 0 || n_leaves > (UINT32_C(1) << 30) || (n_leaves & (n_leaves - 1)) != 0) {
        return SPK_EINVAL;
    }
    st->n_leaves = n_leaves;
    st->width = spk_mls_tm_node_width(n_leaves);
    st->node = calloc(st->width, sizeof *st->node);
    st->present = calloc(st->width, 1);
    st->ratchets = calloc((size_t)n_leaves * 2, sizeof *st->ratchets);
    if (st->node == NULL || st->present == NULL || st->ratchets == NULL) {
        spk_mls_secret_tree_free(st);
        return SPK_ENOMEM;
    }
    uint32_t root = spk_mls_tm_root(n_leaves);
    memcpy(st->node[root], encryption_secret, SPK_MLS_HASH_LEN);
    st->present[root] = 1;
    return 0;
}

static void ratchet_clear(spk_mls_ratchet_t *r)
{
    if (r->skipped != NULL) {
        spk_wipe(r->skipped, SPK_MLS_RATCHET_MAX_SKIPPED * sizeof *r->skipped);
        free(r->skipped);
    }
    spk_wipe(r, sizeof *r);
}

void spk_mls_secret_tree_free(spk_mls_secret_tree_t *st)
{
    if (st == NULL) {
        return;
    }
    if (st->node != NULL) {
        spk_wipe(st->node, (size_t)st->width * sizeof *st->node);
        free(st->node);
    }
    free(st->present);
    if (st->ratchets != NULL) {
        for (size_t i = 0; i < (size_t)st->n_leaves * 2; i++) {
            ratchet_clear(&st->ratchets[i]);
        }
        free(st->ratchets);
    }
    memset(st, 0, sizeof *st);
}

/* tree_node_[child]_secret = ExpandWithLabel(parent, "tree", "left" | "right", KDF.Nh). */
static int child_secret(const uint8_t parent[SPK_MLS_HASH_LEN], bool right,
                        uint8_t out[SPK_MLS_HASH_LEN])
{
    const char *ctx = right ? "right" : "left";
    return spk_mls_expand_with_label(parent, SPK_MLS_HASH_LEN, "tree", (const uint8_t *)ctx,
                                     strlen(ctx), out, SPK_MLS_HASH_LEN);
}

/* Derives the leaf's node secret into out. With commit, stores both children of every node on
 * the way down and deletes the parents. */
static int leaf_secret(spk_mls_secret_tree_t *st, uint32_t leaf, bool commit,
                       uint8_t out[SPK_MLS_HASH_LEN])
{
    uint32_t x = spk_mls_tm_leaf_to_node(leaf);
    size_t depth = 0;
    /* Walk up to the nearest ancestor (or self) that still holds its secret. */
    while (!st->present[x]) {
        if (depth >= SPK_MLS_TM_MAX_DEPTH || spk_mls_tm_parent(x, st->n_leaves, &x) != 0) {
            return SPK_ENOTFOUND; /* the leaf's secret was already turned into ratchets */
        }
        depth++;
    }
    uint8_t cur[SPK_MLS_HASH_LEN], other[SPK_MLS_HASH_LEN], next[SPK_MLS_HASH_LEN];
    int rc = 0;
    memcpy(cur, st->node[x], SPK_MLS_HASH_LEN);
    uint32_t target = spk_mls_tm_leaf_to_node(leaf);
    while (rc == 0 && x != target) {
        uint32_t l = 0, r = 0;
        spk_mls_tm_left(x, &l);
        spk_mls_tm_right(x, &r);
        bool go_right = target > x;
        rc = child_secret(cur, !go_right, other);
        rc = rc != 0 ? rc : child_secret(cur, go_right, next);
        if (rc == 0) {
            memcpy(cur, next, SPK_MLS_HASH_LEN);
        }
        if (rc == 0 && commit) {
            memcpy(st->node[go_right ? l : r], other, SPK_MLS_HASH_LEN);
            st->present[go_right ? l : r] = 1;
            memcpy(st->node[go_right ? r : l], cur, SPK_MLS_HASH_LEN);
            st->present[go_right ? r : l] = 1;
            spk_wipe(st->node[x], SPK_MLS_HASH_LEN);
            st->present[x] = 0;
        }
        x = go_right ? r : l;
    }
    if (rc == 0) {
        memcpy(out, cur, SPK_MLS_HASH_LEN);
    }
    spk_wipe(cur, sizeof cur);
    spk_wipe(other, sizeof other);
    spk_wipe(next, sizeof next);
    return rc;
}

/* The ratchet's initial state from the leaf secret (§9.1). */
static int ratchet_start(const uint8_t leaf[SPK_MLS_HASH_LEN], spk_mls_ratchet_type_t type,
                         uint8_t out[SPK_MLS_HASH_LEN])
{
    const char *label = type == SPK_MLS_RATCHET_HANDSHAKE ? "handshake" : "application";
    return spk_mls_expand_with_label(leaf, SPK_MLS_HASH_LEN, label, NULL, 0, out, SPK_MLS_HASH_LEN);
}

/* Initialises both ratchets of a leaf (commit) and deletes its leaf secret. */
static int leaf_ratchets_init(spk_mls_secret_tree_t *st, uint32_t leaf)
{
    uint8_t ls[SPK_MLS_HASH_LEN], hs[SPK_MLS_HASH_LEN], app[SPK_MLS_HASH_LEN];
    spk_mls_ratchet_key_t *sk_h = calloc(SPK_MLS_RATCHET_MAX_SKIPPED, sizeof *sk_h);
    spk_mls_ratchet_key_t *sk_a = calloc(SPK_MLS_RATCHET_MAX_SKIPPED, sizeof *sk_a);
    int rc = sk_h != NULL && sk_a != NULL ? 0 : SPK_ENOMEM;
    rc = rc != 0 ? rc : leaf_secret(st, leaf, false, ls);
    rc = rc != 0 ? rc : ratchet_start(ls, SPK_MLS_RATCHET_HANDSHAKE, hs);
    rc = rc != 0 ? rc : ratchet_start(ls, SPK_MLS_RATCHET_APPLICATION, app);
    /* Commit only once everything that can fail has succeeded. */
    rc = rc != 0 ? rc : leaf_secret(st, leaf, true, ls);
    if (rc == 0) {
        uint32_t x = spk_mls_tm_leaf_to_node(leaf);
        spk_wipe(st->node[x], SPK_MLS_HASH_LEN);
        st->present[x] = 0;
        spk_mls_ratchet_t *h = &st->ratchets[2 * (size_t)leaf + SPK_MLS_RATCHET_HANDSHAKE];
        spk_mls_ratchet_t *a = &st->ratchets[2 * (size_t)leaf + SPK_MLS_RATCHET_APPLICATION];
        *h = (spk_mls_ratchet_t){.ready = true, .next_gen = 0, .skipped = sk_h};
        *a = (spk_mls_ratchet_t){.ready = true, .next_gen = 0, .skipped = sk_a};
        memcpy(h->secret, hs, SPK_MLS_HASH_LEN);
        memcpy(a->secret, app, SPK_MLS_HASH_LEN);
        sk_h = NULL;
        sk_a = NULL;
    }
    free(sk_h);
    free(sk_a);
    spk_wipe(ls, sizeof ls);
    spk_wipe(hs, sizeof hs);
    spk_wipe(app, sizeof app);
    return rc;
}

/* key, nonce and next secret of generation j from ratchet secret r_j (next may alias secret). */
static int ratchet_step(const uint8_t *secret, uint32_t j, spk_mls_ratchet_key_t *k, uint8_t *next)
{
    uint8_t tmp[SPK_MLS_HASH_LEN];
    k->generation = j;
    int rc = spk_mls_derive_tree_secret(secret, SPK_MLS_HASH_LEN, "key", j, k->key,
                                        SPK_MLS_AEAD_KEY_LEN);
    rc = rc != 0 ? rc
                 : spk_mls_derive_tree_secret(secret, SPK_MLS_HASH_LEN, "nonce", j, k->nonce,
                                              SPK_MLS_AEAD_NONCE_LEN);
    rc = rc != 0 ? rc
                 : spk_mls_derive_tree_secret(secret, SPK_MLS_HASH_LEN, "secret", j, tmp,
                                              SPK_MLS_HASH_LEN);
    if (rc == 0) {
        memcpy(next, tmp, SPK_MLS_HASH_LEN);
    }
    spk_wipe(tmp, sizeof tmp);
    return rc;
}

static void skipped_remove(spk_mls_ratchet_t *r, size_t i)
{
    memmove(&r->skipped[i], &r->skipped[i + 1], (r->n_skipped - i - 1) * sizeof *r->skipped);
    r->n_skipped--;
    spk_wipe(&r->skipped[r->n_skipped], sizeof *r->skipped);
}

static void skipped_add(spk_mls_ratchet_t *r, const spk_mls_ratchet_key_t *k)
{
    if (r->n_skipped == SPK_MLS_RATCHET_MAX_SKIPPED) {
        skipped_remove(r, 0); /* evict the oldest */
    }
    r->skipped[r->n_skipped++] = *k;
}

/* Looks up a generation on a ready ratchet; with commit, deletes it and advances. */
static int ratchet_lookup(spk_mls_ratchet_t *r, uint32_t gen, bool commit,
                          spk_mls_ratchet_key_t *out)
{
    if (gen < r->next_gen) {
        for (size_t i = 0; i < r->n_skipped; i++) {
            if (r->skipped[i].generation == gen) {
                *out = r->skipped[i];
                if (commit) {
                    skipped_remove(r, i);
                }
                return 0;
            }
        }
        return SPK_ENOTFOUND;
    }
    if (gen - r->next_gen > SPK_MLS_RATCHET_MAX_FORWARD || gen == UINT32_MAX) {
        return SPK_ERANGE;
    }
    uint8_t secret[SPK_MLS_HASH_LEN];
    spk_mls_ratchet_key_t k;
    spk_mls_ratchet_key_t *keep = NULL;
    /* Only the newest SPK_MLS_RATCHET_MAX_SKIPPED skipped keys can survive in the window. */
    uint32_t n_skip = gen - r->next_gen;
    uint32_t n_keep = n_skip < SPK_MLS_RATCHET_MAX_SKIPPED ? n_skip : SPK_MLS_RATCHET_MAX_SKIPPED;
    uint32_t first_kept = gen - n_keep;
    int rc = 0;
    if (commit && n_keep > 0) {
        keep = calloc(n_keep, sizeof *keep);
        if (keep == NULL) {
            return SPK_ENOMEM;
        }
    }
    memcpy(secret, r->secret, SPK_MLS_HASH_LEN);
    for (uint32_t j = r->next_gen; rc == 0 && j <= gen; j++) {
        rc = ratchet_step(secret, j, &k, secret);
        if (rc == 0 && keep != NULL && j < gen && j >= first_kept) {
            keep[j - first_kept] = k;
        }
    }
    /* State changes only once every derivation succeeded. */
    if (rc == 0) {
        *out = k;
        if (commit) {
            for (uint32_t i = 0; i < n_keep; i++) {
                skipped_add(r, &keep[i]);
            }
            memcpy(r->secret, secret, SPK_MLS_HASH_LEN);
            r->next_gen = gen + 1;
        }
    }
    if (keep != NULL) {
        spk_wipe(keep, n_keep * sizeof *keep);
        free(keep);
    }
    spk_wipe(secret, sizeof secret);
    spk_wipe(&k, sizeof k);
    return rc;
}

static int tree_lookup(spk_mls_secret_tree_t *st, uint32_t leaf, spk_mls_ratchet_type_t type,
                       uint32_t gen, bool commit, uint8_t *key, uint8_t *nonce)
{
    spk_mls_ratchet_key_t k;
    int rc = 0;
    if (st->ratchets == NULL || leaf >= st->n_leaves ||
        (type != SPK_MLS_RATCHET_HANDSHAKE && type != SPK_MLS_RATCHET_APPLICATION)) {
        return SPK_EINVAL;
    }
    spk_mls_ratchet_t *r = &st->ratchets[2 * (size_t)leaf + type];
    if (r->ready) {
        rc = ratchet_lookup(r, gen, commit, &k);
    } else if (!commit) {
        /* Peek on a temporary ratchet derived from the tree. */
        spk_mls_ratchet_t tmp = {.ready = true};
        uint8_t ls[SPK_MLS_HASH_LEN];
        rc = leaf_secret(st, leaf, false, ls);
        rc = rc != 0 ? rc : ratchet_start(ls, type, tmp.secret);
        rc = rc != 0 ? rc : ratchet_lookup(&tmp, gen, false, &k);
        spk_wipe(ls, sizeof ls);
        spk_wipe(&tmp, sizeof tmp);
    } else {
        /* Check first so that a failing lookup leaves the tree untouched. */
        rc = tree_lookup(st, leaf, type, gen, false, key, nonce);
        rc = rc != 0 ? rc : leaf_ratchets_init(st, leaf);
        rc = rc != 0 ? rc : ratchet_lookup(r, gen, true, &k);
    }
    if (rc == 0) {
        memcpy(key, k.key, SPK_MLS_AEAD_KEY_LEN);
        memcpy(nonce, k.nonce, SPK_MLS_AEAD_NONCE_LEN);
    }
    spk_wipe(&k, sizeof k);
    return rc;
}

int spk_mls_secret_tree_peek(spk_mls_secret_tree_t *st, uint32_t leaf, spk_mls_ratchet_type_t type,
                             uint32_t generation, uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    return tree_lookup(st, leaf, type, generation, false, key, nonce);
}

int spk_mls_secret_tree_consume(spk_mls_secret_tree_t *st, uint32_t leaf,
                                spk_mls_ratchet_type_t type, uint32_t generation,
                                uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                                uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    return tree_lookup(st, leaf, type, generation, true, key, nonce);
}

int spk_mls_secret_tree_next(spk_mls_secret_tree_t *st, uint32_t leaf, spk_mls_ratchet_type_t type,
                             uint32_t *generation, uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    uint32_t gen = 0;
    if (st->ratchets == NULL || leaf >= st->n_leaves ||
        (type != SPK_MLS_RATCHET_HANDSHAKE && type != SPK_MLS_RATCHET_APPLICATION)) {
        return SPK_EINVAL;
    }
    const spk_mls_ratchet_t *r = &st->ratchets[2 * (size_t)leaf + type];
    if (r->ready) {
        gen = r->next_gen;
    }
    int rc = tree_lookup(st, leaf, type, gen, true, key, nonce);
    if (rc == 0) {
        *generation = gen;
    }
    return rc;
}
