/* Array-based binary tree math (RFC 9420 §4.1, Appendix C).
 *
 * Nodes are numbered left to right, leaves at even indices (leaf i is node 2i), parents at odd
 * indices. n_leaves is the number of leaves; MLS trees are perfect binary trees (§4), so it is a
 * power of two (other values are not supported by parent/sibling/paths). Functions that can be
 * undefined for their input return 0 or SPK_EINVAL; their output is unchanged on error. */
#ifndef SPK_MLS_TREEMATH_H
#define SPK_MLS_TREEMATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest direct path or copath of a tree with up to 2^31 leaves. */
#define SPK_MLS_TM_MAX_DEPTH 32

/* Level of a node: 0 for leaves, the number of trailing one bits otherwise. */
uint32_t spk_mls_tm_level(uint32_t x);
/* Number of nodes for n_leaves leaves: 2 * (n_leaves - 1) + 1, 0 for 0 leaves. */
uint32_t spk_mls_tm_node_width(uint32_t n_leaves);
/* Root node index (0 for n_leaves <= 1). */
uint32_t spk_mls_tm_root(uint32_t n_leaves);
bool spk_mls_tm_is_leaf(uint32_t x);
static inline uint32_t spk_mls_tm_leaf_to_node(uint32_t leaf)
{
    return 2 * leaf;
}
static inline uint32_t spk_mls_tm_node_to_leaf(uint32_t x)
{
    return x / 2;
}

/* Children of a parent node; SPK_EINVAL for a leaf. */
int spk_mls_tm_left(uint32_t x, uint32_t *out);
int spk_mls_tm_right(uint32_t x, uint32_t *out);
/* Parent / sibling; SPK_EINVAL for the root or a node outside the tree. */
int spk_mls_tm_parent(uint32_t x, uint32_t n_leaves, uint32_t *out);
int spk_mls_tm_sibling(uint32_t x, uint32_t n_leaves, uint32_t *out);
/* Direct path of x: its ancestors from the parent up to and including the root (empty for the
 * root). out needs SPK_MLS_TM_MAX_DEPTH entries; *n receives the count. */
int spk_mls_tm_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n);
/* Copath: the siblings of x and of each node of its direct path except the root. */
int spk_mls_tm_copath(uint32_t x, uint32_t n_leaves, uint32_t *out, size_t cap, size_t *n);
/* Lowest common ancestor of two nodes (x itself when x == y). */
uint32_t spk_mls_tm_common_ancestor(uint32_t x, uint32_t y);
/* True when x lies in the subtree rooted at ancestor (ancestor included). */
bool spk_mls_tm_in_subtree(uint32_t x, uint32_t ancestor);

#endif
