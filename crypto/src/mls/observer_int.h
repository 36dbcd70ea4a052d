/* MLS observer internals (spk/mls_observer.h): the public state of one group's epoch and what
 * the last processed message reported. Shared by observer.c (creation, proposals, accessors),
 * observer_commit.c (Commits) and observer_state.c (save / restore). */
#ifndef SPK_MLS_OBSERVER_INT_H
#define SPK_MLS_OBSERVER_INT_H

#include "spk/mls_observer.h"

#include "mls/group.h"

/* The next epoch of a Commit, built aside and installed only when everything held. */
typedef struct {
    spk_mls_proposal_use_t *list;
    size_t n;
    spk_mls_applied_t a;
    spk_mls_tree_t tree;
    spk_mls_group_context_t gc;
    spk_mls_bytes_t gc_enc;
    uint8_t interim[SPK_MLS_HASH_LEN];
    spk_mls_changes_t changes;
    uint8_t *refs; /* ProposalRefs covered by reference */
    size_t n_refs;
} obs_next_t;

struct spk_mls_observer {
    /* The epoch (what a member has, without the secrets). */
    spk_mls_group_context_t gc;
    spk_mls_bytes_t gc_enc; /* serialized gc */
    spk_mls_tree_t tree;
    uint8_t interim[SPK_MLS_HASH_LEN]; /* interim transcript hash */
    spk_mls_cached_proposal_t *proposals;
    size_t n_proposals;
    /* A prepared Commit (spk_mls_observer_prepare) waiting for accept or discard. */
    bool has_pending;
    obs_next_t pending;
    /* What the last result points to. */
    spk_mls_bytes_t last_ad;
    spk_mls_changes_t last_changes;
    spk_mls_member_t *last_members;
    uint8_t *last_refs;
};

/* Frees the epoch state (gc, tree, proposals). */
void obs_epoch_free(spk_mls_observer_t *o);
/* Releases what the last result pointed to. */
void obs_last_clear(spk_mls_observer_t *o);
/* An Add's KeyPackage against the group's required capabilities (ext) at now:
 * SPK_EMLSKEYPACKAGE when invalid. */
int obs_check_key_package(const spk_mls_key_package_t *kp, const spk_mls_extensions_t *ext,
                          uint64_t now);
/* The sender's leaf for a member sender, its signature verified: SPK_EMLSSENDER, SPK_EMLSSIG. */
int obs_check_sender(const spk_mls_observer_t *o, const spk_mls_public_message_t *pm);
/* Validates a Commit (signature checked already), keeps its next epoch as o->pending
 * (replacing one there) and installs it when apply; fills out (may be NULL). */
int obs_commit(spk_mls_observer_t *o, const spk_mls_public_message_t *pm, uint64_t now, bool apply,
               spk_mls_observed_t *out);
/* Installs x (o->pending) as the observer's epoch; the last report stays valid. */
void obs_install(spk_mls_observer_t *o, obs_next_t *x);
void obs_next_free(obs_next_t *x);
/* interim = Hash(confirmed || V(tag)), for a 32-byte tag (SPK_EVERIFY otherwise). */
int obs_interim(const uint8_t *confirmed, size_t confirmed_len, const spk_mls_bytes_t *tag,
                uint8_t out[SPK_MLS_HASH_LEN]);

#endif
