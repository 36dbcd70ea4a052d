/* Private helpers for the ratchet tree files: infallible forms of the tree math of treemath.h
 * for inputs the caller has already checked (x a parent, x not the root, ...). */
#ifndef SPK_MLS_TREE_INT_H
#define SPK_MLS_TREE_INT_H

#include "mls/treemath.h"

#include <stddef.h>
#include <stdint.h>

static inline uint32_t tm_left(uint32_t x)
{
    uint32_t out = x;
    (void)spk_mls_tm_left(x, &out);
    return out;
}

static inline uint32_t tm_right(uint32_t x)
{
    uint32_t out = x;
    (void)spk_mls_tm_right(x, &out);
    return out;
}

static inline uint32_t tm_parent(uint32_t x, uint32_t n_leaves)
{
    uint32_t out = x;
    (void)spk_mls_tm_parent(x, n_leaves, &out);
    return out;
}

static inline uint32_t tm_sibling(uint32_t x, uint32_t n_leaves)
{
    uint32_t out = x;
    (void)spk_mls_tm_sibling(x, n_leaves, &out);
    return out;
}

/* Direct path of x (bottom-up); returns the count written into out. */
static inline size_t tm_direct_path(uint32_t x, uint32_t n_leaves,
                                    uint32_t out[SPK_MLS_TM_MAX_DEPTH])
{
    size_t n = 0;
    if (spk_mls_tm_direct_path(x, n_leaves, out, SPK_MLS_TM_MAX_DEPTH, &n) != 0) {
        return 0;
    }
    return n;
}

#endif
