/* TreeKEM (RFC 9420 §7.4-§7.6, §7.9): creating and processing an UpdatePath.
 *
 * Private tree state (spk_mls_tree_priv_t) is a small fixed-size struct holding the HPKE private
 * keys a member knows: its own leaf and nodes on its direct path. It owns no heap memory; wipe
 * it with spk_mls_tree_priv_wipe. Keys are stored with their public key so that stale entries
 * can be pruned against the public tree.
 *
 * All operations are functional: they read the current tree / private state and write NEW ones
 * (out_tree, out_priv), so a caller can build a provisional epoch and keep its state unchanged
 * when anything fails. Outputs are only valid (and only need freeing) when 0 is returned.
 *
 * Creating (committer):
 *   1. spk_mls_treekem_create: fresh leaf key and path secrets, new parent keys and parent hashes,
 *      the signed new LeafNode; fills path (keys only), out_tree, out_priv and pending.
 *   2. the caller computes the provisional GroupContext (tree hash of out_tree, ...);
 *   3. spk_mls_treekem_encrypt: fills the encrypted path secrets of path;
 *   4. pending.commit_secret feeds the key schedule; wipe pending afterwards.
 * Processing (receiver):
 *   1. spk_mls_treekem_merge: checks and applies the UpdatePath to a copy of the tree (parent
 *      hashes, leaf signature) -> out_tree;
 *   2. the caller computes the provisional GroupContext from out_tree;
 *   3. spk_mls_treekem_decrypt: decrypts the path secret for the receiver, derives and checks the
 *      keys above it -> out_priv and the commit_secret.
 * `excluded` lists the leaf indices added by the same Commit (§7.6: left out of every resolution
 * that path secrets are encrypted to). */
#ifndef SPK_MLS_TREEKEM_H
#define SPK_MLS_TREEKEM_H

#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/treemath.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t node;
    uint8_t priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t pub[SPK_MLS_KEM_PUB_LEN];
} spk_mls_node_key_t;

typedef struct {
    uint32_t own_leaf;
    size_t n_keys;
    spk_mls_node_key_t keys[SPK_MLS_TM_MAX_DEPTH + 1];
} spk_mls_tree_priv_t;

/* Starts a private state for leaf own_leaf with its HPKE private key. */
int spk_mls_tree_priv_init(spk_mls_tree_priv_t *priv, uint32_t own_leaf,
                           const uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN]);
/* Adds or replaces the key of node x. */
int spk_mls_tree_priv_set(spk_mls_tree_priv_t *priv, uint32_t x,
                          const uint8_t key[SPK_MLS_KEM_PRIV_LEN]);
/* Derives node x's key from its path secret (§7.4) and stores it. */
int spk_mls_tree_priv_set_path_secret(spk_mls_tree_priv_t *priv, uint32_t x,
                                      const uint8_t path_secret[SPK_MLS_HASH_LEN]);
/* Private key of node x, or NULL. */
const uint8_t *spk_mls_tree_priv_get(const spk_mls_tree_priv_t *priv, uint32_t x);
/* Drops keys whose node is blank, outside the tree, or holds another public key. */
void spk_mls_tree_priv_prune(spk_mls_tree_priv_t *priv, const spk_mls_tree_t *t);
/* True when every stored key matches the public key of its node in t. */
bool spk_mls_tree_priv_consistent(const spk_mls_tree_priv_t *priv, const spk_mls_tree_t *t);
void spk_mls_tree_priv_wipe(spk_mls_tree_priv_t *priv);

/* node_secret = DeriveSecret(path_secret, "node"); (priv, pub) = DeriveKeyPair(node_secret). */
int spk_mls_path_secret_keypair(const uint8_t path_secret[SPK_MLS_HASH_LEN],
                                uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                                uint8_t pub[SPK_MLS_KEM_PUB_LEN]);

/* Filtered direct path of leaf (§4.1.2): direct-path nodes whose copath child has a non-empty
 * resolution, bottom-up, with that copath child in copath[i]. */
int spk_mls_tree_filtered_direct_path(const spk_mls_tree_t *t, uint32_t leaf,
                                      uint32_t nodes[SPK_MLS_TM_MAX_DEPTH],
                                      uint32_t copath[SPK_MLS_TM_MAX_DEPTH], size_t *n);

/* Resolution of node x (§4.1.1) without the leaves listed in excluded (leaf indices). */
int spk_mls_tree_resolution_excluding(const spk_mls_tree_t *t, uint32_t x, const uint32_t *excluded,
                                      size_t n_excluded, uint32_t **res, size_t *n_res);

/* Secret material of an UpdatePath being created. Wipe with spk_mls_treekem_pending_wipe. */
typedef struct {
    uint32_t leaf;
    size_t n;
    uint32_t nodes[SPK_MLS_TM_MAX_DEPTH];
    uint32_t copath[SPK_MLS_TM_MAX_DEPTH];
    uint8_t path_secrets[SPK_MLS_TM_MAX_DEPTH][SPK_MLS_HASH_LEN];
    uint8_t commit_secret[SPK_MLS_HASH_LEN];
} spk_mls_treekem_pending_t;

void spk_mls_treekem_pending_wipe(spk_mls_treekem_pending_t *p);

/* Step 1 of creating an UpdatePath for `leaf` in t (t already has the Commit's Add, Update and
 * Remove proposals applied). leaf_template supplies signature_key, credential, capabilities and
 * extensions of the new LeafNode; encryption_key, leaf_node_source (commit), parent_hash and the
 * signature (LeafNodeTBS with group_id, signed with sig_priv) are set here. On success path holds
 * the new LeafNode and one UpdatePathNode per filtered-direct-path node with no ciphertexts. */
int spk_mls_treekem_create(const spk_mls_tree_t *t, const spk_mls_tree_priv_t *priv, uint32_t leaf,
                           const spk_mls_leaf_node_t *leaf_template,
                           const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN], const uint8_t *group_id,
                           size_t group_id_len, spk_mls_update_path_t *path,
                           spk_mls_tree_t *out_tree, spk_mls_tree_priv_t *out_priv,
                           spk_mls_treekem_pending_t *pending);

/* Step 3: encrypts each path secret to the resolution of its copath child in t (the tree the
 * path was created from, or out_tree: copath subtrees are the same), minus excluded leaves, with
 * EncryptWithLabel(pub, "UpdatePathNode", group_context, path_secret). */
int spk_mls_treekem_encrypt(const spk_mls_tree_t *t, const spk_mls_treekem_pending_t *pending,
                            const uint32_t *excluded, size_t n_excluded,
                            const uint8_t *group_context, size_t group_context_len,
                            spk_mls_update_path_t *path);

/* Receiver step 1: applies path from `sender` to a copy of t. Checks the node count against the
 * filtered direct path, leaf_node_source == commit, key sizes, the leaf's parent hash (§7.9.2)
 * and its signature (LeafNodeTBS with group_id and sender). SPK_EVERIFY on a check failure. */
int spk_mls_treekem_merge(const spk_mls_tree_t *t, uint32_t sender,
                          const spk_mls_update_path_t *path, const uint8_t *group_id,
                          size_t group_id_len, spk_mls_tree_t *out_tree);

/* Receiver step 3: merged is the output of spk_mls_treekem_merge. Decrypts the path secret of
 * the lowest filtered-direct-path node above priv->own_leaf, derives the secrets above it and
 * checks every derived public key against path. out_priv is priv pruned against merged plus the
 * new keys; path_secret (may be NULL) receives the decrypted path secret; commit_secret
 * receives DeriveSecret(root path secret, "path"). */
int spk_mls_treekem_decrypt(const spk_mls_tree_t *merged, const spk_mls_tree_priv_t *priv,
                            uint32_t sender, const spk_mls_update_path_t *path,
                            const uint32_t *excluded, size_t n_excluded,
                            const uint8_t *group_context, size_t group_context_len,
                            spk_mls_tree_priv_t *out_priv, uint8_t *path_secret,
                            uint8_t commit_secret[SPK_MLS_HASH_LEN]);

/* The committer's side of a Welcome (§12.4.3.1): the path secret of the lowest node of the
 * filtered direct path whose copath subtree holds leaf (the new member's GroupSecrets
 * path_secret). SPK_ENOTFOUND when leaf is not below the path (e.g. the committer itself). */
int spk_mls_treekem_pending_path_secret(const spk_mls_treekem_pending_t *pending, uint32_t leaf,
                                        uint8_t out[SPK_MLS_HASH_LEN]);

/* The joiner's side (§12.4.3.1): a private state for own_leaf with its leaf key (which must
 * match the tree), plus, when path_secret is not NULL, the keys of the lowest common ancestor
 * of own_leaf and signer and of every node above it on the signer's filtered direct path. Each
 * derived public key must match the tree (SPK_EVERIFY otherwise). */
int spk_mls_tree_priv_join(const spk_mls_tree_t *t, uint32_t own_leaf,
                           const uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN], uint32_t signer,
                           const uint8_t *path_secret, spk_mls_tree_priv_t *out);

#endif
