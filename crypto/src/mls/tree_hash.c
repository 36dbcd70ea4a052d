/* Ratchet tree: resolution (§4.1.1), tree hash (§7.8), parent hash (§7.9), parent-hash
 * validation (§7.9.2), leaf signatures (§7.3) and unmerged-leaf consistency. */
#include "mls/tree.h"
#include "mls/tree_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- resolution ---- */

static void resolve(const spk_mls_tree_t *t, uint32_t x, uint32_t *out, size_t *n)
{
    const spk_mls_node_t *node = &t->nodes[x];
    if (node->type == SPK_MLS_NODE_LEAF) {
        out[(*n)++] = x;
    } else if (node->type == SPK_MLS_NODE_PARENT) {
        out[(*n)++] = x;
        for (size_t i = 0; i < node->parent.n_unmerged; i++) {
            out[(*n)++] = 2 * node->parent.unmerged_leaves[i];
        }
    } else if (spk_mls_tm_level(x) > 0) {
        resolve(t, tm_left(x), out, n);
        resolve(t, tm_right(x), out, n);
    }
}

/* Upper bound on the resolution size of x: one slot per node of the subtree plus unmerged. */
static size_t resolution_bound(const spk_mls_tree_t *t, uint32_t x)
{
    uint32_t k = spk_mls_tm_level(x);
    uint32_t lo = x - ((1u << k) - 1);
    uint32_t hi = x + ((1u << k) - 1);
    size_t bound = 0;
    for (uint32_t i = lo; i <= hi; i++) {
        bound += 1;
        if (t->nodes[i].type == SPK_MLS_NODE_PARENT) {
            bound += t->nodes[i].parent.n_unmerged;
        }
    }
    return bound;
}

int spk_mls_tree_resolution(const spk_mls_tree_t *t, uint32_t x, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (x >= spk_mls_tm_node_width(t->n_leaves)) {
        return SPK_EINVAL;
    }
    uint32_t *v = malloc(resolution_bound(t, x) * sizeof(uint32_t));
    if (v == NULL) {
        return SPK_ENOMEM;
    }
    resolve(t, x, v, n);
    *out = v;
    return 0;
}

/* ---- tree hash ---- */

typedef struct {
    const uint32_t *v; /* leaf indices treated as blank (and dropped from unmerged lists) */
    size_t n;
} excl_t;

static bool is_excluded(const excl_t *ex, uint32_t leaf)
{
    for (size_t i = 0; ex != NULL && i < ex->n; i++) {
        if (ex->v[i] == leaf) {
            return true;
        }
    }
    return false;
}

static bool subtree_has_excluded(const excl_t *ex, uint32_t x)
{
    for (size_t i = 0; ex != NULL && i < ex->n; i++) {
        if (spk_mls_tm_in_subtree(2 * ex->v[i], x)) {
            return true;
        }
    }
    return false;
}

static int leaf_hash(const spk_mls_tree_t *t, uint32_t x, const excl_t *ex,
                     uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    spk_mls_bytes_t enc;
    const spk_mls_node_t *node = &t->nodes[x];
    bool present = node->type == SPK_MLS_NODE_LEAF && !is_excluded(ex, x / 2);
    spk_mls_writer_init(&w);
    spk_mls_write_u8(&w, SPK_MLS_NODE_LEAF);
    spk_mls_write_u32(&w, x / 2);
    spk_mls_write_optional(&w, present);
    if (present) {
        spk_mls_leaf_node_write(&w, &node->leaf);
    }
    int rc = spk_mls_writer_take(&w, &enc);
    if (rc == 0) {
        rc = spk_mls_sha256(enc.p, enc.n, out);
        spk_mls_bytes_free(&enc);
    }
    return rc;
}

static int parent_hash_input(const spk_mls_tree_t *t, uint32_t x, const excl_t *ex,
                             const uint8_t *lh, const uint8_t *rh, uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    spk_mls_bytes_t enc;
    const spk_mls_node_t *node = &t->nodes[x];
    bool present = node->type == SPK_MLS_NODE_PARENT;
    spk_mls_writer_init(&w);
    spk_mls_write_u8(&w, SPK_MLS_NODE_PARENT);
    spk_mls_write_optional(&w, present);
    if (present) {
        const spk_mls_parent_node_t *p = &node->parent;
        size_t mark;
        spk_mls_write_opaque_v(&w, p->encryption_key.p, p->encryption_key.n);
        spk_mls_write_opaque_v(&w, p->parent_hash.p, p->parent_hash.n);
        spk_mls_write_vec_begin(&w, &mark);
        for (size_t i = 0; i < p->n_unmerged; i++) {
            if (!is_excluded(ex, p->unmerged_leaves[i])) {
                spk_mls_write_u32(&w, p->unmerged_leaves[i]);
            }
        }
        spk_mls_write_vec_end(&w, mark);
    }
    spk_mls_write_opaque_v(&w, lh, SPK_MLS_HASH_LEN);
    spk_mls_write_opaque_v(&w, rh, SPK_MLS_HASH_LEN);
    int rc = spk_mls_writer_take(&w, &enc);
    if (rc == 0) {
        rc = spk_mls_sha256(enc.p, enc.n, out);
        spk_mls_bytes_free(&enc);
    }
    return rc;
}

/* Tree hash of node x with the leaves in ex blanked. When memo is given, every node hash of the
 * subtree is stored in memo[node]; when cache is given (hashes with no exclusion), subtrees
 * without excluded leaves are taken from it. */
static int tree_hash_rec(const spk_mls_tree_t *t, uint32_t x, const excl_t *ex,
                         uint8_t (*memo)[SPK_MLS_HASH_LEN],
                         const uint8_t (*cache)[SPK_MLS_HASH_LEN], uint8_t out[SPK_MLS_HASH_LEN])
{
    int rc;
    if (cache != NULL && !subtree_has_excluded(ex, x)) {
        memcpy(out, cache[x], SPK_MLS_HASH_LEN);
        return 0;
    }
    if (spk_mls_tm_level(x) == 0) {
        rc = leaf_hash(t, x, ex, out);
    } else {
        uint8_t lh[SPK_MLS_HASH_LEN];
        uint8_t rh[SPK_MLS_HASH_LEN];
        rc = tree_hash_rec(t, tm_left(x), ex, memo, cache, lh);
        if (rc == 0) {
            rc = tree_hash_rec(t, tm_right(x), ex, memo, cache, rh);
        }
        if (rc == 0) {
            rc = parent_hash_input(t, x, ex, lh, rh, out);
        }
    }
    if (rc == 0 && memo != NULL) {
        memcpy(memo[x], out, SPK_MLS_HASH_LEN);
    }
    return rc;
}

int spk_mls_tree_hashes(const spk_mls_tree_t *t, uint8_t (*hashes)[SPK_MLS_HASH_LEN])
{
    uint8_t root[SPK_MLS_HASH_LEN];
    if (t->n_leaves == 0) {
        return SPK_EINVAL;
    }
    return tree_hash_rec(t, spk_mls_tm_root(t->n_leaves), NULL, hashes, NULL, root);
}

int spk_mls_tree_root_hash(const spk_mls_tree_t *t, uint8_t out[SPK_MLS_HASH_LEN])
{
    if (t->n_leaves == 0) {
        return SPK_EINVAL;
    }
    return tree_hash_rec(t, spk_mls_tm_root(t->n_leaves), NULL, NULL, NULL, out);
}

/* ---- parent hash ---- */

static int parent_hash_cached(const spk_mls_tree_t *t, uint32_t p, uint32_t s,
                              const uint8_t (*cache)[SPK_MLS_HASH_LEN],
                              uint8_t out[SPK_MLS_HASH_LEN])
{
    const spk_mls_parent_node_t *pn = &t->nodes[p].parent;
    excl_t ex = {pn->unmerged_leaves, pn->n_unmerged};
    uint8_t sib[SPK_MLS_HASH_LEN];
    spk_mls_writer_t w;
    spk_mls_bytes_t enc;
    if (t->nodes[p].type != SPK_MLS_NODE_PARENT) {
        return SPK_EINVAL;
    }
    int rc = tree_hash_rec(t, s, &ex, NULL, cache, sib);
    if (rc != 0) {
        return rc;
    }
    spk_mls_writer_init(&w);
    spk_mls_write_opaque_v(&w, pn->encryption_key.p, pn->encryption_key.n);
    spk_mls_write_opaque_v(&w, pn->parent_hash.p, pn->parent_hash.n);
    spk_mls_write_opaque_v(&w, sib, sizeof(sib));
    rc = spk_mls_writer_take(&w, &enc);
    if (rc == 0) {
        rc = spk_mls_sha256(enc.p, enc.n, out);
        spk_mls_bytes_free(&enc);
    }
    return rc;
}

int spk_mls_tree_parent_hash(const spk_mls_tree_t *t, uint32_t p, uint32_t s,
                             uint8_t out[SPK_MLS_HASH_LEN])
{
    return parent_hash_cached(t, p, s, NULL, out);
}

/* The parent_hash field of node d, or NULL when it has none. */
static const spk_mls_bytes_t *node_parent_hash(const spk_mls_tree_t *t, uint32_t d)
{
    const spk_mls_node_t *node = &t->nodes[d];
    if (node->type == SPK_MLS_NODE_PARENT) {
        return &node->parent.parent_hash;
    }
    if (node->type == SPK_MLS_NODE_LEAF && node->leaf.source == SPK_MLS_LEAF_SRC_COMMIT) {
        return &node->leaf.parent_hash;
    }
    return NULL;
}

/* §7.9.2 third criterion: P.unmerged_leaves restricted to subtree(c) equals res \ {d}. */
static bool unmerged_matches(const spk_mls_parent_node_t *p, uint32_t c, const uint32_t *res,
                             size_t n_res, uint32_t d)
{
    size_t in_sub = 0;
    for (size_t i = 0; i < p->n_unmerged; i++) {
        uint32_t leaf = 2 * p->unmerged_leaves[i];
        if (!spk_mls_tm_in_subtree(leaf, c)) {
            continue;
        }
        in_sub++;
        bool found = false;
        for (size_t j = 0; j < n_res; j++) {
            if (res[j] == leaf && leaf != d) {
                found = true;
            }
        }
        if (!found) {
            return false;
        }
    }
    return in_sub + 1 == n_res;
}

/* Number of descendants of parent p whose parent hash is valid with respect to p. */
static int count_valid_children(const spk_mls_tree_t *t, uint32_t p,
                                const uint8_t (*cache)[SPK_MLS_HASH_LEN], size_t *count)
{
    uint32_t kids[2] = {tm_left(p), tm_right(p)};
    *count = 0;
    for (int side = 0; side < 2; side++) {
        uint32_t c = kids[side];
        uint32_t s = kids[1 - side];
        uint8_t ph[SPK_MLS_HASH_LEN];
        uint32_t *res;
        size_t n_res;
        int rc = parent_hash_cached(t, p, s, cache, ph);
        if (rc == 0) {
            rc = spk_mls_tree_resolution(t, c, &res, &n_res);
        }
        if (rc != 0) {
            return rc;
        }
        for (size_t i = 0; i < n_res; i++) {
            const spk_mls_bytes_t *dph = node_parent_hash(t, res[i]);
            if (dph != NULL && spk_mls_bytes_eq_raw(dph, ph, sizeof(ph)) &&
                unmerged_matches(&t->nodes[p].parent, c, res, n_res, res[i])) {
                (*count)++;
            }
        }
        free(res);
    }
    return 0;
}

int spk_mls_tree_verify_parent_hashes(const spk_mls_tree_t *t)
{
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    if (width == 0) {
        return SPK_EINVAL;
    }
    uint8_t(*cache)[SPK_MLS_HASH_LEN] = malloc((size_t)width * SPK_MLS_HASH_LEN);
    if (cache == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_mls_tree_hashes(t, cache);
    for (uint32_t x = 1; rc == 0 && x < width; x += 2) {
        size_t count = 0;
        if (t->nodes[x].type != SPK_MLS_NODE_PARENT) {
            continue;
        }
        rc = count_valid_children(t, x, (const uint8_t(*)[SPK_MLS_HASH_LEN])cache, &count);
        if (rc == 0 && count != 1) {
            rc = SPK_EVERIFY;
        }
    }
    free(cache);
    return rc;
}

/* ---- leaf signatures, unmerged leaves ---- */

int spk_mls_tree_verify_leaf(const spk_mls_tree_t *t, uint32_t l, const uint8_t *group_id,
                             size_t group_id_len)
{
    const spk_mls_leaf_node_t *leaf = spk_mls_tree_leaf(t, l);
    spk_mls_writer_t w;
    spk_mls_bytes_t tbs;
    if (leaf == NULL) {
        return SPK_EINVAL;
    }
    spk_mls_writer_init(&w);
    spk_mls_leaf_node_tbs_write(&w, leaf, group_id, group_id_len, l);
    int rc = spk_mls_writer_take(&w, &tbs);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_verify_with_label(leaf->signature_key.p, leaf->signature_key.n, "LeafNodeTBS",
                                   tbs.p, tbs.n, leaf->signature.p, leaf->signature.n);
    spk_mls_bytes_free(&tbs);
    return rc == 0 ? 0 : SPK_EVERIFY;
}

int spk_mls_tree_verify_leaves(const spk_mls_tree_t *t, const uint8_t *group_id,
                               size_t group_id_len)
{
    for (uint32_t l = 0; l < t->n_leaves; l++) {
        if (spk_mls_tree_leaf(t, l) == NULL) {
            continue;
        }
        int rc = spk_mls_tree_verify_leaf(t, l, group_id, group_id_len);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static bool list_has_u32(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == x) {
            return true;
        }
    }
    return false;
}

/* Checks the unmerged leaves of parent x (see spk_mls_tree_verify_unmerged). */
static bool unmerged_ok(const spk_mls_tree_t *t, uint32_t x)
{
    const spk_mls_parent_node_t *p = &t->nodes[x].parent;
    for (size_t i = 0; i < p->n_unmerged; i++) {
        uint32_t l = p->unmerged_leaves[i];
        if (l >= t->n_leaves || !spk_mls_tm_in_subtree(2 * l, x) ||
            spk_mls_tree_leaf(t, l) == NULL || list_has_u32(p->unmerged_leaves, i, l)) {
            return false;
        }
        for (uint32_t y = tm_parent(2 * l, t->n_leaves); y != x; y = tm_parent(y, t->n_leaves)) {
            const spk_mls_node_t *mid = &t->nodes[y];
            if (mid->type == SPK_MLS_NODE_PARENT &&
                !list_has_u32(mid->parent.unmerged_leaves, mid->parent.n_unmerged, l)) {
                return false;
            }
        }
    }
    return true;
}

int spk_mls_tree_verify_unmerged(const spk_mls_tree_t *t)
{
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    for (uint32_t x = 1; x < width; x += 2) {
        if (t->nodes[x].type == SPK_MLS_NODE_PARENT && !unmerged_ok(t, x)) {
            return SPK_EVERIFY;
        }
    }
    return 0;
}
