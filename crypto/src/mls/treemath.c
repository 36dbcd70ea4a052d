/* Array-based binary tree math (RFC 9420 Appendix C). */
#include "mls/treemath.h"

#include "spk/error.h"

static uint32_t log2_floor(uint32_t x)
{
    uint32_t k = 0;
    if (x == 0) {
        return 0;
    }
    while ((x >> k) > 1) {
        k++;
    }
    return k;
}

uint32_t spk_mls_tm_level(uint32_t x)
{
    uint32_t k = 0;
    while (k < 32 && ((x >> k) & 1) == 1) {
        k++;
    }
    return k;
}

uint32_t spk_mls_tm_node_width(uint32_t n_leaves)
{
    if (n_leaves == 0) {
        return 0;
    }
    return 2 * (n_leaves - 1) + 1;
}

uint32_t spk_mls_tm_root(uint32_t n_leaves)
{
    uint32_t w = spk_mls_tm_node_width(n_leaves);
    if (w == 0) {
        return 0;
    }
    return ((uint32_t)1 << log2_floor(w)) - 1;
}

bool spk_mls_tm_is_leaf(uint32_t x)
{
    return (x & 1) == 0;
}

int spk_mls_tm_left(uint32_t x, uint32_t *out)
{
    uint32_t k = spk_mls_tm_level(x);
    if (k == 0 || k >= 32) {
        return SPK_EINVAL;
    }
    *out = x ^ ((uint32_t)1 << (k - 1));
    return 0;
}

int spk_mls_tm_right(uint32_t x, uint32_t *out)
{
    uint32_t k = spk_mls_tm_level(x);
    if (k == 0 || k >= 31) {
        return SPK_EINVAL;
    }
    *out = x ^ ((uint32_t)3 << (k - 1));
    return 0;
}

int spk_mls_tm_parent(uint32_t x, uint32_t n_leaves, uint32_t *out)
{
    if (x >= spk_mls_tm_node_width(n_leaves) || x == spk_mls_tm_root(n_leaves)) {
        return SPK_EINVAL;
    }
    uint32_t k = spk_mls_tm_level(x);
    if (k >= 30) {
        return SPK_EINVAL;
    }
    uint32_t b = (x >> (k + 1)) & 1;
    *out = (x | ((uint32_t)1 << k)) ^ (b << (k + 1));
    return 0;
}

int spk_mls_tm_sibling(uint32_t x, uint32_t n_leaves, uint32_t *out)
{
    uint32_t p = 0;
    int rc = spk_mls_tm_parent(x, n_leaves, &p);
    if (rc != 0) {
        return rc;
    }
    return x < p ? spk_mls_tm_right(p, out) : spk_mls_tm_left(p, out);
}

int spk_mls_tm_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n)
{
    uint32_t r = spk_mls_tm_root(n_leaves);
    size_t count = 0;
    if (x >= spk_mls_tm_node_width(n_leaves)) {
        return SPK_EINVAL;
    }
    while (x != r) {
        if (count >= cap || spk_mls_tm_parent(x, n_leaves, &x) != 0) {
            return SPK_EINVAL;
        }
        out[count++] = x;
    }
    *n = count;
    return 0;
}

int spk_mls_tm_copath(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n)
{
    uint32_t r = spk_mls_tm_root(n_leaves);
    size_t count = 0;
    if (x >= spk_mls_tm_node_width(n_leaves)) {
        return SPK_EINVAL;
    }
    while (x != r) {
        if (count >= cap || spk_mls_tm_sibling(x, n_leaves, &out[count]) != 0 ||
            spk_mls_tm_parent(x, n_leaves, &x) != 0) {
            return SPK_EINVAL;
        }
        count++;
    }
    *n = count;
    return 0;
}

uint32_t spk_mls_tm_common_ancestor(uint32_t x, uint32_t y)
{
    /* Strip the differing low-order bits, then append the parent suffix 0111..1. */
    uint32_t lx = spk_mls_tm_level(x) + 1;
    uint32_t ly = spk_mls_tm_level(y) + 1;
    if (lx <= ly && lx < 32 && ly < 32 && (x >> ly) == (y >> ly)) {
        return y;
    }
    if (ly <= lx && lx < 32 && (x >> lx) == (y >> lx)) {
        return x;
    }
    uint32_t k = 0;
    uint64_t xn = x, yn = y;
    while (xn != yn) {
        xn >>= 1;
        yn >>= 1;
        k++;
    }
    if (k == 0) {
        return x;
    }
    return (uint32_t)((xn << k) + ((uint64_t)1 << (k - 1)) - 1);
}

bool spk_mls_tm_in_subtree(uint32_t x, uint32_t ancestor)
{
    uint32_t k = spk_mls_tm_level(ancestor);
    if (k >= 31) {
        return true;
    }
    /* The subtree of a level-k node spans [ancestor - (2^k - 1), ancestor + (2^k - 1)]. */
    uint64_t span = ((uint64_t)1 << k) - 1;
    return (uint64_t)x + span >= ancestor && (uint64_t)x <= (uint64_t)ancestor + span;
}
