/* MLS group state (RFC 9420 §8, §12): joining through a Welcome (§12.4.3.1), caching proposals
 * (§12.1) and processing Commits (§12.4.2) received from other members, as PublicMessage or
 * PrivateMessage. The public API (spk/mls.h, mls_api.c) is a thin layer over this one.
 *
 * The caller owns spk_mls_group_t (zero it or let join fill it) and releases it with
 * spk_mls_group_free, which wipes every secret. Handling a message never changes the state when
 * it fails: a Commit builds the next epoch aside and installs it only after the confirmation tag
 * verified, and a PrivateMessage's ratchet key is consumed only once its content was accepted.
 *
 * Sending: spk_mls_group_create starts a one-member group (§11); spk_mls_group_commit builds a
 * Commit over inline proposals, always with an UpdatePath, plus the Welcome for added members,
 * and the next epoch's state, which the caller installs with spk_mls_group_merge_commit once the
 * delivery service accepted the Commit (or drops with spk_mls_group_commit_out_free). Own Update
 * proposals keep their new leaf private key in own_updates until the epoch ends. */
#ifndef SPK_MLS_GROUP_H
#define SPK_MLS_GROUP_H

#include "mls/keysched.h"
#include "mls/prim.h"
#include "mls/psk.h"
#include "mls/secrettree.h"
#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/tree_apply.h"
#include "mls/treekem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Resumption PSKs of this many most recent epochs are kept (§8.6). */
#define SPK_MLS_GROUP_RESUMPTION_KEEP 8
/* Proposals cached per epoch. */
#define SPK_MLS_GROUP_MAX_PROPOSALS 1024
/* Own Update proposals whose new leaf private key is kept until the epoch ends. */
#define SPK_MLS_GROUP_MAX_OWN_UPDATES 4

typedef struct {
    uint8_t ref[SPK_MLS_HASH_LEN]; /* ProposalRef */
    spk_mls_proposal_t proposal;
    uint8_t sender_type;
    uint32_t sender;
} spk_mls_cached_proposal_t;

typedef struct {
    uint64_t epoch;
    uint8_t psk[SPK_MLS_HASH_LEN];
} spk_mls_resumption_psk_t;

typedef struct {
    spk_mls_group_context_t gc;
    spk_mls_bytes_t gc_enc; /* serialized gc */
    spk_mls_tree_t tree;
    spk_mls_tree_priv_t priv;
    uint32_t own_leaf;
    uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN];
    spk_mls_epoch_secrets_t secrets;
    spk_mls_secret_tree_t st;
    uint8_t interim[SPK_MLS_HASH_LEN]; /* interim transcript hash */
    spk_mls_cached_proposal_t *proposals;
    size_t n_proposals;
    spk_mls_resumption_psk_t resumption[SPK_MLS_GROUP_RESUMPTION_KEEP];
    size_t n_resumption;
    /* New leaf keys of this member's own Update proposals in this epoch (node = its leaf). */
    spk_mls_node_key_t own_updates[SPK_MLS_GROUP_MAX_OWN_UPDATES];
    size_t n_own_updates;
    bool removed; /* a Commit removed this member (set by the caller, kept by save/restore) */
} spk_mls_group_t;

/* External PSKs (§8.4) come from the application through psk_cb (may be NULL when none are
 * used); resumption PSKs of this group's own recent epochs are resolved internally. */
typedef struct {
    spk_mls_psk_lookup_cb psk_cb;
    void *psk_arg;
} spk_mls_group_env_t;

/* Joins through a Welcome (§12.4.3.1) with the KeyPackage it answers and its private keys.
 * tree is the ratchet tree when it travels out of band, or NULL to take it from the GroupInfo's
 * ratchet_tree extension. Verifies the GroupInfo signature, the tree (hash, parent hashes, leaf
 * nodes), the derived path keys and the confirmation tag. */
int spk_mls_group_join(spk_mls_group_t *g, const spk_mls_welcome_t *welcome,
                       const spk_mls_key_package_t *kp,
                       const uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN],
                       const uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN],
                       const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN], const spk_mls_tree_t *tree,
                       const spk_mls_group_env_t *env);

/* What handling a message did. */
typedef enum {
    SPK_MLS_GROUP_EV_PROPOSAL = 1, /* a proposal was cached for the next Commit */
    SPK_MLS_GROUP_EV_COMMIT = 2,   /* a new epoch was installed */
    SPK_MLS_GROUP_EV_REMOVED = 3,  /* a Commit removed this member; the state is unchanged */
    SPK_MLS_GROUP_EV_APPLICATION = 4,
} spk_mls_group_event_t;

/* What else handling a message tells (owned; free with spk_mls_group_report_free). */
typedef struct {
    uint8_t sender_type; /* SPK_MLS_SENDER_* */
    uint32_t sender;     /* leaf index of a member sender */
    spk_mls_bytes_t authenticated_data;
    spk_mls_changes_t changes; /* EV_COMMIT and EV_REMOVED: who joined and who left */
} spk_mls_group_report_t;

void spk_mls_group_report_free(spk_mls_group_report_t *r);

/* Handles one MLSMessage addressed to the group (PublicMessage or PrivateMessage). For
 * application messages, app (may be NULL) receives the plaintext. Errors: SPK_EMLSGROUP /
 * SPK_EMLSEPOCH for another group or epoch, SPK_EMLSMEMBERTAG, SPK_EMLSSIG, SPK_EMLSCONFIRM for
 * a bad membership tag, signature or confirmation tag, SPK_EMLSREPLAY for a PrivateMessage
 * whose key was already used, SPK_EVERIFY when decryption or another validation fails. g is
 * unchanged on any failure (a PrivateMessage's key is consumed only once it was handled). */
int spk_mls_group_handle(spk_mls_group_t *g, const spk_mls_message_t *m,
                         const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                         spk_mls_bytes_t *app);
/* The same, filling rep (may be NULL; zeroed first, set only on success). */
int spk_mls_group_handle_report(spk_mls_group_t *g, const spk_mls_message_t *m,
                                const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                                spk_mls_bytes_t *app, spk_mls_group_report_t *rep);

void spk_mls_group_free(spk_mls_group_t *g);

/* A one-member group (§11) for the creator's leaf (from its KeyPackage) and keys. extensions
 * may be NULL. */
int spk_mls_group_create(spk_mls_group_t *g, const uint8_t *group_id, size_t group_id_len,
                         const spk_mls_leaf_node_t *leaf,
                         const uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN],
                         const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                         const spk_mls_extensions_t *extensions);

typedef struct {
    spk_mls_bytes_t commit;    /* MLSMessage(PublicMessage) carrying the Commit */
    spk_mls_bytes_t welcome;   /* MLSMessage(Welcome); empty when nobody is added */
    spk_mls_group_t next;      /* the next epoch, for spk_mls_group_merge_commit */
    spk_mls_changes_t changes; /* who the Commit adds and removes */
} spk_mls_commit_out_t;

/* Commits, with a fresh UpdatePath, the cached proposals by reference when include_cached
 * (but not the committer's own Updates) followed by props inline; the list is validated as in
 * §12.2. g is not changed. The Welcome carries the ratchet tree in a GroupInfo extension. */
int spk_mls_group_commit(spk_mls_group_t *g, const spk_mls_proposal_t *props, size_t n,
                         bool include_cached, const spk_mls_group_env_t *env,
                         spk_mls_commit_out_t *out);

/* Flags of spk_mls_group_commit_ex. */
#define SPK_MLS_GROUP_COMMIT_PRIVATE 0x1u /* send the Commit as PrivateMessage */
#define SPK_MLS_GROUP_COMMIT_NO_TREE 0x2u /* no ratchet_tree extension in the Welcome */

/* spk_mls_group_commit with flags and authenticated data (ad may be NULL). With
 * SPK_MLS_GROUP_COMMIT_PRIVATE the Commit consumes one generation of g's handshake ratchet (the
 * only change to g). Cached Removes of the committer's own leaf (its own or another member's)
 * are left out: a member cannot commit its own removal (§12.2). */
int spk_mls_group_commit_ex(spk_mls_group_t *g, const spk_mls_proposal_t *props, size_t n,
                            bool include_cached, const spk_mls_group_env_t *env, unsigned flags,
                            const spk_mls_bytes_t *ad, spk_mls_commit_out_t *out);

/* Sends p as a PublicMessage proposal and caches it for the Commit that will cover it. Update
 * proposals go through spk_mls_group_propose_update (SPK_EINVAL here). */
int spk_mls_group_propose(spk_mls_group_t *g, const spk_mls_proposal_t *p, spk_mls_bytes_t *out);
/* Proposes an Update of this member's leaf with a fresh HPKE key (§12.1.2), as PublicMessage.
 * The new private key is kept in g until the epoch ends, so that a Commit by another member that
 * includes the Update can be processed. SPK_ERANGE when SPK_MLS_GROUP_MAX_OWN_UPDATES are
 * pending. */
int spk_mls_group_propose_update(spk_mls_group_t *g, spk_mls_bytes_t *out);

/* Serialised state (see group_state.c for the format): every secret of the epoch. */
int spk_mls_group_save(const spk_mls_group_t *g, spk_mls_bytes_t *out);
/* Restores and validates a serialised state into g (zeroed on failure). */
int spk_mls_group_restore(spk_mls_group_t *g, const uint8_t *p, size_t n);
/* Installs out->next into g and frees out. */
void spk_mls_group_merge_commit(spk_mls_group_t *g, spk_mls_commit_out_t *out);
void spk_mls_group_commit_out_free(spk_mls_commit_out_t *out);

/* An application message as MLSMessage(PrivateMessage) with `padding` zero bytes. */
int spk_mls_group_send(spk_mls_group_t *g, const uint8_t *data, size_t len, size_t padding,
                       spk_mls_bytes_t *out);
/* The same with authenticated data (ad may be NULL). */
int spk_mls_group_send_ad(spk_mls_group_t *g, const spk_mls_bytes_t *ad, const uint8_t *data,
                          size_t len, size_t padding, spk_mls_bytes_t *out);

#endif
