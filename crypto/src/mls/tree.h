/* The ratchet tree (RFC 9420 §4, §7, Appendix C): array representation, ratchet_tree encoding
 * (§12.4.3.3), resolution (§4.1.1), tree hash (§7.8), parent hash (§7.9) and its validation
 * (§7.9.2), leaf signatures (§7.3), and Add / Update / Remove applied to the tree (§12.1, §7.7).
 *
 * A tree always has a power-of-two number of leaves; nodes[] has 2 * n_leaves - 1 entries in
 * array order (leaf L at 2L, parents at odd indices); blank nodes have type SPK_MLS_NODE_BLANK.
 * The tree owns its nodes; spk_mls_tree_free releases them. Functions that modify a tree leave it
 * unchanged when they fail. */
#ifndef SPK_MLS_TREE_H
#define SPK_MLS_TREE_H

#include "mls/codec.h"
#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/treemath.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    spk_mls_node_t *nodes;
    uint32_t n_leaves; /* power of two, >= 1; 0 only in a zeroed (empty) struct */
} spk_mls_tree_t;

/* ---- encoding: optional<Node> ratchet_tree<V> ---- */

/* Reads a ratchet_tree: the last node must be non-blank; the tree is padded with blanks to the
 * next full size; node types must match their position (leaf at even index); every unmerged leaf
 * index must lie in its parent's subtree. Copies. */
int spk_mls_tree_read(spk_mls_reader_t *r, spk_mls_tree_t *out);
int spk_mls_tree_decode(spk_mls_tree_t *out, const uint8_t *p, size_t n);
/* Writes the tree without trailing blank nodes. */
int spk_mls_tree_write(spk_mls_writer_t *w, const spk_mls_tree_t *t);
int spk_mls_tree_encode(const spk_mls_tree_t *t, spk_mls_bytes_t *out);
void spk_mls_tree_free(spk_mls_tree_t *t);
/* Deep copy; dst is overwritten (not freed) and left zeroed on failure. */
int spk_mls_tree_copy(spk_mls_tree_t *dst, const spk_mls_tree_t *src);

static inline bool spk_mls_tree_is_blank(const spk_mls_tree_t *t, uint32_t x)
{
    return t->nodes[x].type == SPK_MLS_NODE_BLANK;
}

/* Leaf node at leaf index l, or NULL when blank or out of range. */
const spk_mls_leaf_node_t *spk_mls_tree_leaf(const spk_mls_tree_t *t, uint32_t l);

/* ---- resolution, hashes, validation ---- */

/* Resolution of node x (§4.1.1) as node indices, in tree order with each non-blank parent
 * followed by its unmerged leaves in list order. *out is malloc'ed (free it); *n its count. */
int spk_mls_tree_resolution(const spk_mls_tree_t *t, uint32_t x, uint32_t **out, size_t *n);

/* Tree hash of every node (§7.8): hashes has spk_mls_tm_node_width(n_leaves) rows. */
int spk_mls_tree_hashes(const spk_mls_tree_t *t, uint8_t (*hashes)[SPK_MLS_HASH_LEN]);
/* Tree hash of the root. */
int spk_mls_tree_root_hash(const spk_mls_tree_t *t, uint8_t out[SPK_MLS_HASH_LEN]);
/* Parent hash of parent node p with copath child s (§7.9): the hash of ParentHashInput with
 * original_sibling_tree_hash computed with p's unmerged leaves blanked. */
int spk_mls_tree_parent_hash(const spk_mls_tree_t *t, uint32_t p, uint32_t s,
                             uint8_t out[SPK_MLS_HASH_LEN]);
/* §7.9.2 top-down: every non-blank parent has exactly one descendant whose parent hash is valid
 * with respect to it. 0 or SPK_EVERIFY. */
int spk_mls_tree_verify_parent_hashes(const spk_mls_tree_t *t);
/* Verifies the signature of leaf l with LeafNodeTBS (group_id used for update/commit sources).
 * 0 or SPK_EVERIFY. */
int spk_mls_tree_verify_leaf(const spk_mls_tree_t *t, uint32_t l, const uint8_t *group_id,
                             size_t group_id_len);
/* Every non-blank leaf's signature. */
int spk_mls_tree_verify_leaves(const spk_mls_tree_t *t, const uint8_t *group_id,
                               size_t group_id_len);
/* Structural checks on a received tree: unmerged leaves of each parent are non-blank leaves
 * below it that are also unmerged at every non-blank parent between them. 0 or SPK_EVERIFY. */
int spk_mls_tree_verify_unmerged(const spk_mls_tree_t *t);

/* ---- modifications (§12.1, §7.7) ---- */

/* Blanks node x (frees its content). */
void spk_mls_tree_blank(spk_mls_tree_t *t, uint32_t x);
/* Adds a copy of leaf at the leftmost blank leaf (extending the tree when full) and records it
 * as unmerged in the non-blank parents above it. *leaf_out receives its leaf index. */
int spk_mls_tree_add(spk_mls_tree_t *t, const spk_mls_leaf_node_t *leaf, uint32_t *leaf_out);
/* Replaces leaf l with a copy of leaf and blanks the parents on its direct path. */
int spk_mls_tree_update(spk_mls_tree_t *t, uint32_t l, const spk_mls_leaf_node_t *leaf);
/* Blanks leaf l and its direct path, then truncates. SPK_EINVAL when l is blank or absent. */
int spk_mls_tree_remove(spk_mls_tree_t *t, uint32_t l);
/* Halves the tree while its right subtree is all blank (§7.7). */
int spk_mls_tree_truncate(spk_mls_tree_t *t);
/* Doubles the tree, adding a blank right subtree. */
int spk_mls_tree_extend(spk_mls_tree_t *t);

#endif
