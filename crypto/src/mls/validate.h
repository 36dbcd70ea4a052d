/* Validation of LeafNodes (§7.3), KeyPackages (§10.1), required capabilities (§11.1) and of a
 * whole ratchet tree received on join (§7.3, §7.9.2, §12.4.3.1). Cipher suite 1 only.
 *
 * All checks return 0 or SPK_EVERIFY (SPK_ENOMEM / SPK_EDECODE where stated). Credential
 * validation against an identity provider (§5.3.1) is the application's job; these functions
 * only check that the credential type is one this library understands. GREASE values (§13.5) in
 * capabilities and extension lists are ignored. */
#ifndef SPK_MLS_VALIDATE_H
#define SPK_MLS_VALIDATE_H

#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RequiredCapabilities (§11.1), decoded from a required_capabilities extension. */
typedef struct {
    spk_mls_u16_list_t extension_types;
    spk_mls_u16_list_t proposal_types;
    spk_mls_u16_list_t credential_types;
} spk_mls_required_caps_t;

int spk_mls_required_caps_decode(spk_mls_required_caps_t *out, const uint8_t *p, size_t n);
int spk_mls_required_caps_encode(const spk_mls_required_caps_t *in, spk_mls_bytes_t *out);
void spk_mls_required_caps_free(spk_mls_required_caps_t *x);

/* True when ln's capabilities list extension type / proposal type / credential type (default
 * extension and proposal types count as supported; GREASE values as well). */
bool spk_mls_leaf_supports_extension(const spk_mls_leaf_node_t *ln, uint16_t type);
bool spk_mls_leaf_supports_proposal(const spk_mls_leaf_node_t *ln, uint16_t type);
bool spk_mls_leaf_supports_credential(const spk_mls_leaf_node_t *ln, uint16_t type);

/* The leaf supports everything a required_capabilities extension in gc_extensions lists (true
 * when there is none). SPK_EDECODE for a malformed extension. */
int spk_mls_leaf_check_required(const spk_mls_leaf_node_t *ln,
                                const spk_mls_extensions_t *gc_extensions);

/* Context-free LeafNode checks of §7.3: suite-1 key sizes, credential type known and listed in
 * capabilities, version 1 and suite 1 listed, every non-default non-GREASE extension listed,
 * leaf_node_source == expected_source, and (when now != 0 and the source is key_package) the
 * lifetime covers now. */
int spk_mls_leaf_node_check(const spk_mls_leaf_node_t *ln, uint8_t expected_source, uint64_t now);

/* §7.3 leaf check plus the signature (LeafNodeTBS with group_id and leaf_index for the update
 * and commit sources). */
int spk_mls_leaf_node_validate(const spk_mls_leaf_node_t *ln, uint8_t expected_source,
                               const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index,
                               uint64_t now);

/* §10.1: version mls10 and suite 1, init_key of 32 bytes and different from the leaf's
 * encryption_key, leaf valid with source key_package (lifetime checked when now != 0), leaf
 * signature and the KeyPackage signature (KeyPackageTBS) under leaf_node.signature_key. */
int spk_mls_key_package_validate(const spk_mls_key_package_t *kp, uint64_t now);

/* Checks a tree received on join or rebuilt after a Commit (§12.4.3.1 step "verify the
 * integrity of the ratchet tree"): unmerged-leaf structure, parent hashes, each leaf's
 * signature and §7.3 checks for its source, required capabilities, that every member supports
 * every credential type in use, and that encryption keys (all nodes) and signature keys (all
 * leaves) are unique. Lifetimes are not checked (§7.3 leaves that optional for received trees). */
int spk_mls_tree_validate(const spk_mls_tree_t *t, const uint8_t *group_id, size_t group_id_len,
                          const spk_mls_extensions_t *gc_extensions);

/* Signing counterparts: replace ln->signature with SignWithLabel(sig_priv, "LeafNodeTBS", ...)
 * (group_id and leaf_index are used for the update and commit sources only), and
 * kp->signature with SignWithLabel(sig_priv, "KeyPackageTBS", ...). */
int spk_mls_leaf_node_sign(spk_mls_leaf_node_t *ln, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                           const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index);
int spk_mls_key_package_sign(spk_mls_key_package_t *kp,
                             const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN]);
/* KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage) (§5.2). */
int mls_kp_ref(const spk_mls_key_package_t *kp, uint8_t out[SPK_MLS_HASH_LEN]);

/* The member-set part of spk_mls_tree_validate: every member supports every credential type in
 * use, and encryption keys (all nodes) and signature keys (all leaves) are unique. */
int spk_mls_tree_check_members(const spk_mls_tree_t *t);

#endif
