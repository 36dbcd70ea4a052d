/* Proposal-list validation (§12.2) and application to the ratchet tree (§12.3) for a Commit.
 *
 * This covers what a proposal list does to the tree and the rules about it; the group layer
 * handles what it does to the key schedule (PreSharedKey lookup, ExternalInit's init_secret,
 * ReInit) and to the GroupContext (it installs `gce` when set). Nothing here changes the input
 * tree: the result holds a new, provisional tree. */
#ifndef SPK_MLS_TREE_APPLY_H
#define SPK_MLS_TREE_APPLY_H

#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One proposal covered by a Commit (inline or resolved from a reference), with its sender. */
typedef struct {
    const spk_mls_proposal_t *proposal; /* borrowed */
    uint8_t sender_type;                /* SPK_MLS_SENDER_* */
    uint32_t sender;                    /* leaf index for member senders */
} spk_mls_proposal_use_t;

typedef struct {
    spk_mls_tree_t tree; /* provisional tree (owned) */
    uint32_t *added;     /* leaf index of each Add, in list order (owned) */
    size_t n_added;
    const spk_mls_extensions_t
        *gce;           /* extensions of the GroupContextExtensions proposal, or NULL */
    bool path_required; /* §12.4: the Commit MUST carry an UpdatePath */
    bool has_reinit;
    bool has_external_init;
    size_t n_psks;
} spk_mls_applied_t;

void spk_mls_applied_free(spk_mls_applied_t *a);

/* Validates list (§12.2) against tree t and applies it (§12.3): Updates, then Removes (each
 * truncating), then Adds in order. committer is the committing member's leaf index (ignored
 * for an external Commit). gc_extensions are the current GroupContext extensions (required
 * capabilities). now != 0 checks KeyPackage lifetimes. Returns 0, SPK_EVERIFY when the list or
 * the resulting tree is invalid, or another SPK_E* error; out is only set on success. */
int spk_mls_tree_apply_proposals(const spk_mls_tree_t *t, const uint8_t *group_id,
                                 size_t group_id_len, const spk_mls_extensions_t *gc_extensions,
                                 uint32_t committer, bool external_commit,
                                 const spk_mls_proposal_use_t *list, size_t n, uint64_t now,
                                 spk_mls_applied_t *out);

/* The same; validate_kps false skips the KeyPackage signature and lifetime checks of Adds,
 * for a caller that validated them already (the observer, which reports them with their own
 * code). */
int spk_mls_tree_apply_proposals_ex(const spk_mls_tree_t *t, const uint8_t *group_id,
                                    size_t group_id_len, const spk_mls_extensions_t *gc_extensions,
                                    uint32_t committer, bool external_commit,
                                    const spk_mls_proposal_use_t *list, size_t n, uint64_t now,
                                    bool validate_kps, spk_mls_applied_t *out);

/* ---- who joined and who left ---- */

/* A member added or removed by a Commit. */
typedef struct {
    uint32_t leaf;
    spk_mls_bytes_t identity;                  /* owned copy of the credential's identity */
    uint8_t key_package_ref[SPK_MLS_HASH_LEN]; /* joined: KeyPackageRef of its Add; else 0 */
} spk_mls_change_t;

typedef struct {
    spk_mls_change_t *joined; /* in Add order */
    size_t n_joined;
    spk_mls_change_t *left; /* in Remove order */
    size_t n_left;
} spk_mls_changes_t;

void spk_mls_changes_free(spk_mls_changes_t *c);
/* The members list (validated and applied to old as a) removes and adds: leaf and identity of
 * each Remove from old, leaf (from a->added), identity and KeyPackageRef of each Add. */
int spk_mls_changes_of(const spk_mls_tree_t *old, const spk_mls_proposal_use_t *list, size_t n,
                       const spk_mls_applied_t *a, spk_mls_changes_t *out);

#endif
