/* TreeKEM (RFC 9420 §7.4-§7.6): private tree state, filtered direct paths, creating, merging
 * and decrypting UpdatePaths with parent hashes (§7.9). */
#include "mls/treekem.h"
#include "mls/tree_int.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- private state ---- */

void spk_mls_tree_priv_wipe(spk_mls_tree_priv_t *priv)
{
    spk_wipe(priv, sizeof(*priv));
}

int spk_mls_tree_priv_set(spk_mls_tree_priv_t *priv, uint32_t x,
                          const uint8_t key[SPK_MLS_KEM_PRIV_LEN])
{
    uint8_t pub[SPK_MLS_KEM_PUB_LEN];
    size_t i = 0;
    int rc = spk_mls_x25519_pub(key, pub);
    if (rc != 0) {
        return rc;
    }
    while (i < priv->n_keys && priv->keys[i].node != x) {
        i++;
    }
    if (i == priv->n_keys) {
        if (priv->n_keys == sizeof(priv->keys) / sizeof(priv->keys[0])) {
            return SPK_ERANGE;
        }
        priv->n_keys++;
    }
    priv->keys[i].node = x;
    memcpy(priv->keys[i].priv, key, SPK_MLS_KEM_PRIV_LEN);
    memcpy(priv->keys[i].pub, pub, SPK_MLS_KEM_PUB_LEN);
    return 0;
}

int spk_mls_tree_priv_init(spk_mls_tree_priv_t *priv, uint32_t own_leaf,
                           const uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN])
{
    memset(priv, 0, sizeof(*priv));
    priv->own_leaf = own_leaf;
    int rc = spk_mls_tree_priv_set(priv, 2 * own_leaf, leaf_priv);
    if (rc != 0) {
        spk_mls_tree_priv_wipe(priv);
    }
    return rc;
}

int spk_mls_path_secret_keypair(const uint8_t path_secret[SPK_MLS_HASH_LEN],
                                uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                                uint8_t pub[SPK_MLS_KEM_PUB_LEN])
{
    uint8_t node_secret[SPK_MLS_HASH_LEN];
    int rc = spk_mls_derive_secret(path_secret, SPK_MLS_HASH_LEN, "node", node_secret);
    if (rc == 0) {
        rc = spk_mls_derive_key_pair(node_secret, sizeof(node_secret), priv, pub);
    }
    spk_wipe(node_secret, sizeof(node_secret));
    return rc;
}

int spk_mls_tree_priv_set_path_secret(spk_mls_tree_priv_t *priv, uint32_t x,
                                      const uint8_t path_secret[SPK_MLS_HASH_LEN])
{
    uint8_t sk[SPK_MLS_KEM_PRIV_LEN];
    uint8_t pk[SPK_MLS_KEM_PUB_LEN];
    int rc = spk_mls_path_secret_keypair(path_secret, sk, pk);
    if (rc == 0) {
        rc = spk_mls_tree_priv_set(priv, x, sk);
    }
    spk_wipe(sk, sizeof(sk));
    return rc;
}

const uint8_t *spk_mls_tree_priv_get(const spk_mls_tree_priv_t *priv, uint32_t x)
{
    for (size_t i = 0; i < priv->n_keys; i++) {
        if (priv->keys[i].node == x) {
            return priv->keys[i].priv;
        }
    }
    return NULL;
}

/* Public encryption key of node x, or NULL when blank. */
static const spk_mls_bytes_t *node_pub(const spk_mls_tree_t *t, uint32_t x)
{
    const spk_mls_node_t *node = &t->nodes[x];
    if (node->type == SPK_MLS_NODE_LEAF) {
        return &node->leaf.encryption_key;
    }
    if (node->type == SPK_MLS_NODE_PARENT) {
        return &node->parent.encryption_key;
    }
    return NULL;
}

static bool key_matches(const spk_mls_tree_t *t, const spk_mls_node_key_t *k)
{
    if (k->node >= spk_mls_tm_node_width(t->n_leaves)) {
        return false;
    }
    const spk_mls_bytes_t *pub = node_pub(t, k->node);
    return pub != NULL && spk_mls_bytes_eq_raw(pub, k->pub, sizeof(k->pub));
}

void spk_mls_tree_priv_prune(spk_mls_tree_priv_t *priv, const spk_mls_tree_t *t)
{
    size_t j = 0;
    for (size_t i = 0; i < priv->n_keys; i++) {
        if (key_matches(t, &priv->keys[i])) {
            if (i != j) {
                priv->keys[j] = priv->keys[i];
            }
            j++;
        }
    }
    spk_wipe(&priv->keys[j], (priv->n_keys - j) * sizeof(priv->keys[0]));
    priv->n_keys = j;
}

bool spk_mls_tree_priv_consistent(const spk_mls_tree_priv_t *priv, const spk_mls_tree_t *t)
{
    for (size_t i = 0; i < priv->n_keys; i++) {
        if (!key_matches(t, &priv->keys[i])) {
            return false;
        }
    }
    return true;
}

void spk_mls_treekem_pending_wipe(spk_mls_treekem_pending_t *p)
{
    spk_wipe(p, sizeof(*p));
}

/* ---- filtered direct path ---- */

int spk_mls_tree_filtered_direct_path(const spk_mls_tree_t *t, uint32_t leaf,
                                      uint32_t nodes[SPK_MLS_TM_MAX_DEPTH],
                                      uint32_t copath[SPK_MLS_TM_MAX_DEPTH], size_t *n)
{
    *n = 0;
    if (leaf >= t->n_leaves) {
        return SPK_EINVAL;
    }
    uint32_t child = 2 * leaf;
    uint32_t path[SPK_MLS_TM_MAX_DEPTH];
    size_t np = tm_direct_path(child, t->n_leaves, path);
    for (size_t i = 0; i < np; i++) {
        uint32_t s = tm_sibling(child, t->n_leaves);
        uint32_t *res;
        size_t n_res;
        int rc = spk_mls_tree_resolution(t, s, &res, &n_res);
        if (rc != 0) {
            return rc;
        }
        free(res);
        if (n_res > 0) {
            nodes[*n] = path[i];
            copath[*n] = s;
            (*n)++;
        }
        child = path[i];
    }
    return 0;
}

/* ---- shared by create and merge ---- */

/* Blanks the direct path of leaf in nt and installs a parent node with pubs[i] (32 bytes each)
 * and no unmerged leaves at each filtered-direct-path node. */
static int install_path(spk_mls_tree_t *nt, uint32_t leaf, const uint32_t *nodes, size_t n,
                        const uint8_t (*pubs)[SPK_MLS_KEM_PUB_LEN])
{
    uint32_t path[SPK_MLS_TM_MAX_DEPTH];
    size_t np = tm_direct_path(2 * leaf, nt->n_leaves, path);
    for (size_t i = 0; i < np; i++) {
        spk_mls_tree_blank(nt, path[i]);
    }
    for (size_t i = 0; i < n; i++) {
        spk_mls_node_t *node = &nt->nodes[nodes[i]];
        if (spk_mls_bytes_dup(&node->parent.encryption_key, pubs[i], SPK_MLS_KEM_PUB_LEN) != 0) {
            return SPK_ENOMEM;
        }
        node->type = SPK_MLS_NODE_PARENT;
    }
    return 0;
}

/* Sets the parent hashes of the new path nodes top-down (§7.9) and returns the value the leaf's
 * parent_hash must have (*leaf_ph_len 0 when the filtered direct path is empty). */
static int set_parent_hashes(spk_mls_tree_t *nt, const uint32_t *nodes, const uint32_t *copath,
                             size_t n, uint8_t leaf_ph[SPK_MLS_HASH_LEN], size_t *leaf_ph_len)
{
    uint8_t ph[SPK_MLS_HASH_LEN];
    *leaf_ph_len = 0;
    for (size_t i = n; i > 0; i--) {
        int rc = spk_mls_tree_parent_hash(nt, nodes[i - 1], copath[i - 1], ph);
        if (rc != 0) {
            return rc;
        }
        if (i == 1) {
            memcpy(leaf_ph, ph, sizeof(ph));
            *leaf_ph_len = sizeof(ph);
        } else {
            spk_mls_bytes_t *dst = &nt->nodes[nodes[i - 2]].parent.parent_hash;
            spk_mls_bytes_free(dst);
            if (spk_mls_bytes_dup(dst, ph, sizeof(ph)) != 0) {
                return SPK_ENOMEM;
            }
        }
    }
    return 0;
}

/* ---- creating an UpdatePath (§7.4, §7.5) ---- */

/* Path secrets: ps[0] random, ps[i] = DeriveSecret(ps[i-1], "path"); commit_secret follows the
 * last one. Also derives the node key pairs. */
static int make_path_secrets(spk_mls_treekem_pending_t *pd, uint8_t (*privs)[SPK_MLS_KEM_PRIV_LEN],
                             uint8_t (*pubs)[SPK_MLS_KEM_PUB_LEN])
{
    uint8_t cur[SPK_MLS_HASH_LEN];
    int rc = spk_random_bytes(cur, sizeof(cur));
    for (size_t i = 0; rc == 0 && i < pd->n; i++) {
        memcpy(pd->path_secrets[i], cur, sizeof(cur));
        rc = spk_mls_path_secret_keypair(cur, privs[i], pubs[i]);
        if (rc == 0) {
            rc = spk_mls_derive_secret(pd->path_secrets[i], SPK_MLS_HASH_LEN, "path", cur);
        }
    }
    if (rc == 0) {
        memcpy(pd->commit_secret, cur, sizeof(cur));
    }
    spk_wipe(cur, sizeof(cur));
    return rc;
}

/* Builds and signs the committer's new LeafNode into nt and path->leaf_node. */
static int make_leaf(spk_mls_tree_t *nt, uint32_t leaf, const spk_mls_leaf_node_t *tmpl,
                     const uint8_t leaf_pub[SPK_MLS_KEM_PUB_LEN], const uint8_t *ph, size_t ph_len,
                     const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN], const uint8_t *group_id,
                     size_t group_id_len, spk_mls_update_path_t *path)
{
    spk_mls_leaf_node_t *ln = &path->leaf_node;
    int rc = spk_mls_leaf_node_copy(ln, tmpl);
    if (rc != 0) {
        return rc;
    }
    spk_mls_bytes_free(&ln->encryption_key);
    spk_mls_bytes_free(&ln->parent_hash);
    spk_mls_bytes_free(&ln->signature);
    memset(&ln->lifetime, 0, sizeof(ln->lifetime));
    ln->source = SPK_MLS_LEAF_SRC_COMMIT;
    if (spk_mls_bytes_dup(&ln->encryption_key, leaf_pub, SPK_MLS_KEM_PUB_LEN) != 0 ||
        spk_mls_bytes_dup(&ln->parent_hash, ph, ph_len) != 0) {
        return SPK_ENOMEM;
    }
    rc = spk_mls_leaf_node_sign(ln, sig_priv, group_id, group_id_len, leaf);
    if (rc == 0) {
        spk_mls_tree_blank(nt, 2 * leaf);
        rc = spk_mls_leaf_node_copy(&nt->nodes[2 * (size_t)leaf].leaf, ln);
        if (rc == 0) {
            nt->nodes[2 * (size_t)leaf].type = SPK_MLS_NODE_LEAF;
        }
    }
    return rc;
}

/* Fills path->nodes with the public keys (no ciphertexts yet). */
static int make_path_nodes(spk_mls_update_path_t *path, size_t n,
                           const uint8_t (*pubs)[SPK_MLS_KEM_PUB_LEN])
{
    if (n == 0) {
        return 0;
    }
    path->nodes = calloc(n, sizeof(spk_mls_update_path_node_t));
    if (path->nodes == NULL) {
        return SPK_ENOMEM;
    }
    path->n_nodes = n;
    for (size_t i = 0; i < n; i++) {
        if (spk_mls_bytes_dup(&path->nodes[i].encryption_key, pubs[i], SPK_MLS_KEM_PUB_LEN) != 0) {
            return SPK_ENOMEM;
        }
    }
    return 0;
}

/* Stores the new leaf key and node keys in out_priv (a pruned copy of priv). */
static int make_priv(const spk_mls_tree_priv_t *priv, const spk_mls_tree_t *nt, uint32_t leaf,
                     const uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN], const uint32_t *nodes, size_t n,
                     const uint8_t (*privs)[SPK_MLS_KEM_PRIV_LEN], spk_mls_tree_priv_t *out)
{
    int rc = 0;
    if (priv != NULL) {
        *out = *priv;
    } else {
        memset(out, 0, sizeof(*out));
    }
    out->own_leaf = leaf;
    spk_mls_tree_priv_prune(out, nt);
    rc = spk_mls_tree_priv_set(out, 2 * leaf, leaf_priv);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = spk_mls_tree_priv_set(out, nodes[i], privs[i]);
    }
    return rc;
}

int spk_mls_treekem_create(const spk_mls_tree_t *t, const spk_mls_tree_priv_t *priv, uint32_t leaf,
                           const spk_mls_leaf_node_t *leaf_template,
                           const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN], const uint8_t *group_id,
                           size_t group_id_len, spk_mls_update_path_t *path,
                           spk_mls_tree_t *out_tree, spk_mls_tree_priv_t *out_priv,
                           spk_mls_treekem_pending_t *pending)
{
    uint8_t privs[SPK_MLS_TM_MAX_DEPTH][SPK_MLS_KEM_PRIV_LEN];
    uint8_t pubs[SPK_MLS_TM_MAX_DEPTH][SPK_MLS_KEM_PUB_LEN];
    uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t leaf_pub[SPK_MLS_KEM_PUB_LEN];
    uint8_t ph[SPK_MLS_HASH_LEN];
    size_t ph_len = 0;
    memset(path, 0, sizeof(*path));
    memset(out_tree, 0, sizeof(*out_tree));
    memset(pending, 0, sizeof(*pending));
    if (spk_mls_tree_leaf(t, leaf) == NULL) {
        return SPK_EINVAL;
    }
    pending->leaf = leaf;
    int rc =
        spk_mls_tree_filtered_direct_path(t, leaf, pending->nodes, pending->copath, &pending->n);
    if (rc == 0) {
        rc = make_path_secrets(pending, privs, pubs);
    }
    if (rc == 0) {
        rc = spk_mls_x25519_keygen(leaf_priv, leaf_pub);
    }
    if (rc == 0) {
        rc = spk_mls_tree_copy(out_tree, t);
    }
    if (rc == 0) {
        rc = install_path(out_tree, leaf, pending->nodes, pending->n,
                          (const uint8_t(*)[SPK_MLS_KEM_PUB_LEN])pubs);
    }
    if (rc == 0) {
        rc = set_parent_hashes(out_tree, pending->nodes, pending->copath, pending->n, ph, &ph_len);
    }
    if (rc == 0) {
        rc = make_leaf(out_tree, leaf, leaf_template, leaf_pub, ph, ph_len, sig_priv, group_id,
                       group_id_len, path);
    }
    if (rc == 0) {
        rc = make_path_nodes(path, pending->n, (const uint8_t(*)[SPK_MLS_KEM_PUB_LEN])pubs);
    }
    if (rc == 0) {
        rc = make_priv(priv, out_tree, leaf, leaf_priv, pending->nodes, pending->n,
                       (const uint8_t(*)[SPK_MLS_KEM_PRIV_LEN])privs, out_priv);
    }
    spk_wipe(privs, sizeof(privs));
    spk_wipe(leaf_priv, sizeof(leaf_priv));
    if (rc != 0) {
        spk_mls_update_path_free(path);
        spk_mls_tree_free(out_tree);
        spk_mls_tree_priv_wipe(out_priv);
        spk_mls_treekem_pending_wipe(pending);
    }
    return rc;
}

static void free_ciphertexts(spk_mls_update_path_node_t *node)
{
    for (size_t j = 0; j < node->n_secrets; j++) {
        spk_mls_hpke_ciphertext_free(&node->secrets[j]);
    }
    free(node->secrets);
    node->secrets = NULL;
    node->n_secrets = 0;
}

/* Resolution of node x without the excluded leaves. */
int spk_mls_tree_resolution_excluding(const spk_mls_tree_t *t, uint32_t x, const uint32_t *excluded,
                                      size_t n_excluded, uint32_t **res, size_t *n_res)
{
    int rc = spk_mls_tree_resolution(t, x, res, n_res);
    if (rc != 0) {
        return rc;
    }
    size_t j = 0;
    for (size_t i = 0; i < *n_res; i++) {
        bool drop = false;
        for (size_t k = 0; k < n_excluded; k++) {
            if ((*res)[i] == 2 * excluded[k]) {
                drop = true;
            }
        }
        if (!drop) {
            (*res)[j++] = (*res)[i];
        }
    }
    *n_res = j;
    return 0;
}

/* Encrypts one path secret to every node of res into node->secrets. */
static int encrypt_to(const spk_mls_tree_t *t, const uint32_t *res, size_t n_res,
                      const uint8_t *secret, const uint8_t *gc, size_t gc_len,
                      spk_mls_update_path_node_t *node)
{
    if (n_res == 0) {
        return 0;
    }
    node->secrets = calloc(n_res, sizeof(spk_mls_hpke_ciphertext_t));
    if (node->secrets == NULL) {
        return SPK_ENOMEM;
    }
    node->n_secrets = n_res;
    for (size_t j = 0; j < n_res; j++) {
        spk_mls_hpke_ciphertext_t *ct = &node->secrets[j];
        const spk_mls_bytes_t *pub = node_pub(t, res[j]);
        uint8_t kem[SPK_MLS_KEM_ENC_LEN];
        uint8_t out[SPK_MLS_HASH_LEN + SPK_MLS_AEAD_TAG_LEN];
        if (pub == NULL) {
            return SPK_EINVAL;
        }
        int rc = spk_mls_encrypt_with_label(pub->p, pub->n, "UpdatePathNode", gc, gc_len, secret,
                                            SPK_MLS_HASH_LEN, kem, out);
        if (rc != 0) {
            return rc;
        }
        if (spk_mls_bytes_dup(&ct->kem_output, kem, sizeof(kem)) != 0 ||
            spk_mls_bytes_dup(&ct->ciphertext, out, sizeof(out)) != 0) {
            return SPK_ENOMEM;
        }
    }
    return 0;
}

int spk_mls_treekem_encrypt(const spk_mls_tree_t *t, const spk_mls_treekem_pending_t *pending,
                            const uint32_t *excluded, size_t n_excluded,
                            const uint8_t *group_context, size_t group_context_len,
                            spk_mls_update_path_t *path)
{
    if (path->n_nodes != pending->n) {
        return SPK_EINVAL;
    }
    for (size_t i = 0; i < pending->n; i++) {
        uint32_t *res;
        size_t n_res;
        spk_mls_update_path_node_t *node = &path->nodes[i];
        free_ciphertexts(node);
        int rc = spk_mls_tree_resolution_excluding(t, pending->copath[i], excluded, n_excluded,
                                                   &res, &n_res);
        if (rc == 0) {
            rc = encrypt_to(t, res, n_res, pending->path_secrets[i], group_context,
                            group_context_len, node);
            free(res);
        }
        if (rc != 0) {
            for (size_t k = 0; k <= i; k++) {
                free_ciphertexts(&path->nodes[k]);
            }
            return rc;
        }
    }
    return 0;
}

/* ---- processing an UpdatePath (§7.5) ---- */

/* Copies the 32-byte node keys of path into pubs; SPK_EVERIFY when a key has another size. */
static int path_pubs(const spk_mls_update_path_t *path, uint8_t (*pubs)[SPK_MLS_KEM_PUB_LEN])
{
    for (size_t i = 0; i < path->n_nodes; i++) {
        const spk_mls_bytes_t *k = &path->nodes[i].encryption_key;
        if (k->n != SPK_MLS_KEM_PUB_LEN) {
            return SPK_EVERIFY;
        }
        memcpy(pubs[i], k->p, SPK_MLS_KEM_PUB_LEN);
    }
    return 0;
}

/* Applies path to nt (a copy of the tree) and checks the leaf's parent hash and signature. */
static int merge_into(spk_mls_tree_t *nt, uint32_t sender, const spk_mls_update_path_t *path,
                      const uint32_t *nodes, const uint32_t *copath, size_t n,
                      const uint8_t (*pubs)[SPK_MLS_KEM_PUB_LEN], const uint8_t *group_id,
                      size_t group_id_len)
{
    uint8_t ph[SPK_MLS_HASH_LEN];
    size_t ph_len = 0;
    const spk_mls_leaf_node_t *ln = &path->leaf_node;
    int rc = install_path(nt, sender, nodes, n, pubs);
    if (rc == 0) {
        rc = set_parent_hashes(nt, nodes, copath, n, ph, &ph_len);
    }
    if (rc != 0) {
        return rc;
    }
    if (ln->parent_hash.n != ph_len ||
        (ph_len > 0 && !spk_mls_bytes_eq_raw(&ln->parent_hash, ph, ph_len))) {
        return SPK_EVERIFY;
    }
    spk_mls_tree_blank(nt, 2 * sender);
    rc = spk_mls_leaf_node_copy(&nt->nodes[2 * (size_t)sender].leaf, ln);
    if (rc != 0) {
        return rc;
    }
    nt->nodes[2 * (size_t)sender].type = SPK_MLS_NODE_LEAF;
    return spk_mls_tree_verify_leaf(nt, sender, group_id, group_id_len);
}

int spk_mls_treekem_merge(const spk_mls_tree_t *t, uint32_t sender,
                          const spk_mls_update_path_t *path, const uint8_t *group_id,
                          size_t group_id_len, spk_mls_tree_t *out_tree)
{
    uint32_t nodes[SPK_MLS_TM_MAX_DEPTH];
    uint32_t copath[SPK_MLS_TM_MAX_DEPTH];
    uint8_t pubs[SPK_MLS_TM_MAX_DEPTH][SPK_MLS_KEM_PUB_LEN];
    size_t n = 0;
    memset(out_tree, 0, sizeof(*out_tree));
    if (spk_mls_tree_leaf(t, sender) == NULL) {
        return SPK_EINVAL;
    }
    int rc = spk_mls_tree_filtered_direct_path(t, sender, nodes, copath, &n);
    if (rc != 0) {
        return rc;
    }
    if (path->n_nodes != n || path->leaf_node.source != SPK_MLS_LEAF_SRC_COMMIT ||
        path->leaf_node.encryption_key.n != SPK_MLS_KEM_PUB_LEN) {
        return SPK_EVERIFY;
    }
    rc = path_pubs(path, pubs);
    if (rc == 0) {
        rc = spk_mls_tree_copy(out_tree, t);
    }
    if (rc == 0) {
        rc = merge_into(out_tree, sender, path, nodes, copath, n,
                        (const uint8_t(*)[SPK_MLS_KEM_PUB_LEN])pubs, group_id, group_id_len);
        if (rc != 0) {
            spk_mls_tree_free(out_tree);
        }
    }
    return rc;
}

/* Index in res of the first node whose private key priv holds (matching its public key). */
static const uint8_t *find_key(const spk_mls_tree_t *t, const spk_mls_tree_priv_t *priv,
                               const uint32_t *res, size_t n_res, size_t *j)
{
    for (*j = 0; *j < n_res; (*j)++) {
        for (size_t k = 0; k < priv->n_keys; k++) {
            if (priv->keys[k].node == res[*j] && key_matches(t, &priv->keys[k])) {
                return priv->keys[k].priv;
            }
        }
    }
    return NULL;
}

/* Decrypts the path secret for filtered-direct-path position i into ps. */
static int decrypt_at(const spk_mls_tree_t *merged, const spk_mls_tree_priv_t *priv,
                      uint32_t copath, const spk_mls_update_path_node_t *node,
                      const uint32_t *excluded, size_t n_excluded, const uint8_t *gc, size_t gc_len,
                      uint8_t ps[SPK_MLS_HASH_LEN])
{
    uint32_t *res;
    size_t n_res;
    size_t j;
    int rc = spk_mls_tree_resolution_excluding(merged, copath, excluded, n_excluded, &res, &n_res);
    if (rc != 0) {
        return rc;
    }
    const uint8_t *sk = find_key(merged, priv, res, n_res, &j);
    free(res);
    if (node->n_secrets != n_res) {
        return SPK_EVERIFY;
    }
    if (sk == NULL) {
        return SPK_ENOTFOUND;
    }
    const spk_mls_hpke_ciphertext_t *ct = &node->secrets[j];
    if (ct->ciphertext.n != SPK_MLS_HASH_LEN + SPK_MLS_AEAD_TAG_LEN) {
        return SPK_EVERIFY;
    }
    return spk_mls_decrypt_with_label(sk, "UpdatePathNode", gc, gc_len, ct->kem_output.p,
                                      ct->kem_output.n, ct->ciphertext.p, ct->ciphertext.n, ps);
}

/* Derives the keys of nodes[i..n-1] from path_secret (that of nodes[i]) into out, checking each
 * against the public key in t; last (may be NULL) receives the secret after the last node, i.e.
 * the commit_secret. */
static int derive_keys(const spk_mls_tree_t *t, const uint32_t *nodes, size_t i, size_t n,
                       const uint8_t *path_secret, spk_mls_tree_priv_t *out, uint8_t *last)
{
    uint8_t ps[SPK_MLS_HASH_LEN];
    uint8_t next[SPK_MLS_HASH_LEN];
    uint8_t sk[SPK_MLS_KEM_PRIV_LEN];
    uint8_t pk[SPK_MLS_KEM_PUB_LEN];
    int rc = 0;
    memcpy(ps, path_secret, sizeof(ps));
    for (; rc == 0 && i < n; i++) {
        const spk_mls_bytes_t *pub = node_pub(t, nodes[i]);
        rc = spk_mls_path_secret_keypair(ps, sk, pk);
        if (rc == 0 && (pub == NULL || !spk_mls_bytes_eq_raw(pub, pk, sizeof(pk)))) {
            rc = SPK_EVERIFY;
        }
        if (rc == 0) {
            rc = spk_mls_tree_priv_set(out, nodes[i], sk);
        }
        if (rc == 0) {
            rc = spk_mls_derive_secret(ps, sizeof(ps), "path", next);
            memcpy(ps, next, sizeof(ps));
        }
    }
    if (rc == 0 && last != NULL) {
        memcpy(last, ps, sizeof(ps));
    }
    spk_wipe(ps, sizeof(ps));
    spk_wipe(next, sizeof(next));
    spk_wipe(sk, sizeof(sk));
    return rc;
}

int spk_mls_treekem_decrypt(const spk_mls_tree_t *merged, const spk_mls_tree_priv_t *priv,
                            uint32_t sender, const spk_mls_update_path_t *path,
                            const uint32_t *excluded, size_t n_excluded,
                            const uint8_t *group_context, size_t group_context_len,
                            spk_mls_tree_priv_t *out_priv, uint8_t *path_secret,
                            uint8_t commit_secret[SPK_MLS_HASH_LEN])
{
    uint32_t nodes[SPK_MLS_TM_MAX_DEPTH];
    uint32_t copath[SPK_MLS_TM_MAX_DEPTH];
    uint8_t ps[SPK_MLS_HASH_LEN];
    size_t n = 0;
    size_t i = 0;
    memset(out_priv, 0, sizeof(*out_priv));
    if (priv->own_leaf == sender || spk_mls_tree_leaf(merged, sender) == NULL) {
        return SPK_EINVAL;
    }
    int rc = spk_mls_tree_filtered_direct_path(merged, sender, nodes, copath, &n);
    if (rc != 0) {
        return rc;
    }
    if (path->n_nodes != n) {
        return SPK_EVERIFY;
    }
    while (i < n && !spk_mls_tm_in_subtree(2 * priv->own_leaf, copath[i])) {
        i++;
    }
    if (i == n) {
        return SPK_EINVAL;
    }
    rc = decrypt_at(merged, priv, copath[i], &path->nodes[i], excluded, n_excluded, group_context,
                    group_context_len, ps);
    if (rc == 0 && path_secret != NULL) {
        memcpy(path_secret, ps, sizeof(ps));
    }
    if (rc == 0) {
        *out_priv = *priv;
        spk_mls_tree_priv_prune(out_priv, merged);
        /* merged holds the UpdatePath's keys on the filtered direct path. */
        rc = derive_keys(merged, nodes, i, n, ps, out_priv, commit_secret);
    }
    if (rc != 0) {
        spk_mls_tree_priv_wipe(out_priv);
        if (path_secret != NULL) {
            spk_wipe(path_secret, SPK_MLS_HASH_LEN);
        }
    }
    spk_wipe(ps, sizeof(ps));
    return rc;
}

/* ---- Welcome (§12.4.3.1) ---- */

int spk_mls_treekem_pending_path_secret(const spk_mls_treekem_pending_t *pending, uint32_t leaf,
                                        uint8_t out[SPK_MLS_HASH_LEN])
{
    for (size_t i = 0; i < pending->n; i++) {
        if (spk_mls_tm_in_subtree(2 * leaf, pending->copath[i])) {
            memcpy(out, pending->path_secrets[i], SPK_MLS_HASH_LEN);
            return 0;
        }
    }
    return SPK_ENOTFOUND;
}

int spk_mls_tree_priv_join(const spk_mls_tree_t *t, uint32_t own_leaf,
                           const uint8_t leaf_priv[SPK_MLS_KEM_PRIV_LEN], uint32_t signer,
                           const uint8_t *path_secret, spk_mls_tree_priv_t *out)
{
    uint32_t nodes[SPK_MLS_TM_MAX_DEPTH];
    uint32_t copath[SPK_MLS_TM_MAX_DEPTH];
    size_t n = 0;
    size_t i = 0;
    memset(out, 0, sizeof(*out));
    if (spk_mls_tree_leaf(t, own_leaf) == NULL || spk_mls_tree_leaf(t, signer) == NULL) {
        return SPK_EINVAL;
    }
    int rc = spk_mls_tree_priv_init(out, own_leaf, leaf_priv);
    if (rc == 0 && !key_matches(t, &out->keys[0])) {
        rc = SPK_EVERIFY;
    }
    if (rc == 0 && path_secret != NULL) {
        rc = spk_mls_tree_filtered_direct_path(t, signer, nodes, copath, &n);
        while (rc == 0 && i < n && !spk_mls_tm_in_subtree(2 * own_leaf, copath[i])) {
            i++;
        }
        if (rc == 0 && i == n) {
            rc = SPK_EINVAL;
        }
        if (rc == 0) {
            rc = derive_keys(t, nodes, i, n, path_secret, out, NULL);
        }
    }
    if (rc != 0) {
        spk_mls_tree_priv_wipe(out);
    }
    return rc;
}
