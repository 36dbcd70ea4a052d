/* MLS observer ("public group"): follows one group's handshake without any of its secrets, for
 * the delivery service (RFC 9420 §16, RFC 9750).
 *
 * The group's creator uploads a GroupInfo (spk_mls_group_info); the observer starts from it and
 * then processes every PublicMessage Proposal and Commit of the group in the order the delivery
 * service accepts them. For each it checks what can be checked without secrets and applies it
 * to the public ratchet tree, tracking the GroupContext (tree hash, confirmed and interim
 * transcript hashes) exactly as the members do, so it can verify the next message's signature
 * and report who joined and who left. docs/mls.md ("The observer") lists precisely what it
 * verifies, what it cannot (membership tags, confirmation tags, the encrypted path secrets) and
 * the threat model that gives the delivery service.
 *
 * Conventions (as in spk/mls.h):
 *   - Returns 0 or a negative SPK_E* code (spk/error.h).
 *   - Input pointers are borrowed for the call; spk_mls_buf_t outputs belong to the caller
 *     (spk_mls_buf_free); pointers inside spk_mls_observed_t and returned by the accessors are
 *     borrowed from the observer until the next non-const call on it or spk_mls_observer_free.
 *   - Not thread-safe: one observer is used by one thread at a time; different observers may be
 *     used concurrently.
 *   - A call that fails leaves the observer exactly as it was (the unit tests compare
 *     spk_mls_observer_save before and after every refused message). So the delivery service
 *     can offer a Commit to the observer and accept it only when it returns 0: "exactly one
 *     Commit per epoch, first valid wins" is the first one for the observer's epoch that
 *     returns 0; a later one for that epoch returns SPK_EMLSSTALE.
 *   - It holds no secret: its state may be stored like any other delivery service data. */
#ifndef SPK_MLS_OBSERVER_H
#define SPK_MLS_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/mls.h"

typedef struct spk_mls_observer spk_mls_observer_t;

/* Starts following a group from an MLSMessage(GroupInfo) of one of its members
 * (spk_mls_group_info). ratchet_tree is the tree when the GroupInfo leaves it out
 * (spk_mls_ratchet_tree of a member), or NULL to take it from the ratchet_tree extension.
 * Checks: version and cipher suite, the whole tree (leaf signatures, parent hashes, unmerged
 * leaves, unique keys, credentials), that the tree hash is the GroupContext's, and the
 * GroupInfo's signature by its signer (a member). Errors: SPK_ETOOBIG, SPK_ETRUNC /
 * SPK_EDECODE malformed, SPK_EINVAL not a GroupInfo, SPK_ENOTFOUND no tree, SPK_EMLSSENDER the
 * signer is not a member, SPK_EMLSSIG bad signature, SPK_EVERIFY invalid tree or GroupContext.
 * *out is allocated; free it with spk_mls_observer_free. */
int spk_mls_observer_create(spk_mls_observer_t **out, const uint8_t *group_info,
                            size_t group_info_len, const uint8_t *ratchet_tree,
                            size_t ratchet_tree_len);
/* Frees o. NULL-safe. */
void spk_mls_observer_free(spk_mls_observer_t *o);

/* What processing one message did. */
typedef struct {
    spk_mls_event_type_t type; /* SPK_MLS_EVENT_PROPOSAL or SPK_MLS_EVENT_COMMIT */
    uint64_t epoch;            /* PROPOSAL: the current epoch; COMMIT: the new one */
    uint32_t sender;           /* the sender's leaf (always a member) */
    const uint8_t *sender_identity;
    size_t sender_identity_len;
    const uint8_t *authenticated_data;
    size_t authenticated_data_len;
    /* COMMIT: who joined (leaf, identity, KeyPackageRef of its Add: route the Welcome to the
     * device that uploaded that KeyPackage) and who left (leaf, identity), in proposal order. */
    const spk_mls_member_t *joined;
    size_t n_joined;
    const spk_mls_member_t *left;
    size_t n_left;
    /* COMMIT: the ProposalRefs it covered by reference (n_committed * SPK_MLS_REF_LEN bytes). */
    const uint8_t *committed;
    size_t n_committed;
    spk_mls_proposal_info_t proposal; /* PROPOSAL: what was cached */
} spk_mls_observed_t;

/* Processes one MLSMessage(PublicMessage) of the group: a Proposal is validated and cached, a
 * Commit validated and applied (a new epoch). now (Unix seconds, 0 to skip) checks the
 * lifetime of KeyPackages in Adds. Errors, each leaving o unchanged:
 *   SPK_ETOOBIG, SPK_ETRUNC / SPK_EDECODE   malformed or too large;
 *   SPK_EINVAL        not a PublicMessage (handshake messages must be PublicMessage for the
 *                     delivery service to read them), or application data in one;
 *   SPK_EMLSGROUP     another group;
 *   SPK_EMLSSTALE     an epoch that is already committed (e.g. the second Commit of an epoch);
 *   SPK_EMLSEPOCH     a later epoch;
 *   SPK_EMLSSENDER    the sender is not a member (a blank or absent leaf, an external sender,
 *                     a new member: not accepted by the observer);
 *   SPK_EMLSSIG       the signature does not verify with the sender's key;
 *   SPK_EMLSKEYPACKAGE an Add's KeyPackage is invalid (suite, signatures, lifetime, keys,
 *                     required capabilities);
 *   SPK_EMLSPROPOSAL  an invalid proposal or proposal list (§12.2), a reference to a proposal
 *                     the observer has not seen, ReInit or ExternalInit (not supported);
 *   SPK_EMLSREPLAY    a proposal cached already;
 *   SPK_EVERIFY       an invalid Commit otherwise: UpdatePath missing where required, its leaf
 *                     node (source, signature, keys), parent hashes, the number of encrypted
 *                     path secrets, the resulting tree, a confirmation tag of the wrong size.
 * out (may be NULL) is filled on success. */
int spk_mls_observer_process(spk_mls_observer_t *o, const uint8_t *msg, size_t msg_len,
                             uint64_t now, spk_mls_observed_t *out);

/* Two steps, for a delivery service that decides on a Commit's membership changes before it
 * accepts it: spk_mls_observer_prepare validates msg exactly as spk_mls_observer_process and
 * fills out, but a Commit is only kept pending (the observer stays in its epoch; a proposal
 * is cached as by process); then spk_mls_observer_accept installs the pending Commit, or
 * spk_mls_observer_discard drops it. One pending Commit at a time: preparing or processing
 * another replaces it. It is not saved. accept: SPK_ESTATE when nothing is pending. */
int spk_mls_observer_prepare(spk_mls_observer_t *o, const uint8_t *msg, size_t msg_len,
                             uint64_t now, spk_mls_observed_t *out);
int spk_mls_observer_accept(spk_mls_observer_t *o);
void spk_mls_observer_discard(spk_mls_observer_t *o);

/* Drops a cached proposal (e.g. an Add the conversation's policy forbids): a Commit that
 * refers to it is then refused with SPK_EMLSPROPOSAL. SPK_ENOTFOUND (nothing changed) when no
 * cached proposal has that reference. */
int spk_mls_observer_proposal_refuse(spk_mls_observer_t *o, const uint8_t ref[SPK_MLS_REF_LEN]);

/* ---- the followed group ---- */

uint64_t spk_mls_observer_epoch(const spk_mls_observer_t *o);
/* Group id, borrowed. */
const uint8_t *spk_mls_observer_group_id(const spk_mls_observer_t *o, size_t *len);
/* Tree hash of the current epoch (§7.8): equal to every member's when they agree. */
void spk_mls_observer_tree_hash(const spk_mls_observer_t *o, uint8_t out[32]);
uint32_t spk_mls_observer_leaf_count(const spk_mls_observer_t *o);
bool spk_mls_observer_is_member(const spk_mls_observer_t *o, uint32_t leaf);
/* Identity of the member at leaf (borrowed). SPK_ENOTFOUND for a blank leaf. */
int spk_mls_observer_member_identity(const spk_mls_observer_t *o, uint32_t leaf,
                                     const uint8_t **identity, size_t *len);
/* The ratchet tree (§12.4.3.3): members give it to joiners whose Welcome leaves it out. */
int spk_mls_observer_ratchet_tree(const spk_mls_observer_t *o, spk_mls_buf_t *out);
/* The serialized GroupContext of the current epoch (§8.1). */
int spk_mls_observer_group_context(const spk_mls_observer_t *o, spk_mls_buf_t *out);
/* Cached proposals of the epoch (as spk_mls_proposal_count / _get of a member). */
size_t spk_mls_observer_proposal_count(const spk_mls_observer_t *o);
int spk_mls_observer_proposal_get(const spk_mls_observer_t *o, size_t i,
                                  spk_mls_proposal_info_t *out);

/* ---- persistence ---- */

/* Serialises the observer (versioned; docs/mls.md). No secret inside. */
int spk_mls_observer_save(const spk_mls_observer_t *o, spk_mls_buf_t *out);
/* Restores a saved observer. Checks the format, the tree's structure, that its hash is the
 * GroupContext's, and the cached proposals; not the leaf signatures again (they were verified
 * when the observer accepted them, and the blob is the delivery service's own data).
 * SPK_EDECODE / SPK_ETRUNC malformed, SPK_EVERIFY inconsistent. *out is allocated. */
int spk_mls_observer_restore(spk_mls_observer_t **out, const uint8_t *blob, size_t blob_len);

#endif
