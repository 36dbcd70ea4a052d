/* MLS (RFC 9420) group messaging, cipher suite 1 only:
 * MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, basic credentials.
 *
 * Every message in and out is a standard MLSMessage (§6): KeyPackages, Welcomes, Commits and
 * proposals (PublicMessage or PrivateMessage) and application messages (PrivateMessage). The
 * library does no I/O; the delivery service orders handshake messages per group.
 *
 * Lifecycle (docs/mls.md has a complete example):
 *   creator:  spk_mls_create -> spk_mls_commit(adds) -> send Commit + Welcome ->
 *             spk_mls_commit_merge once the delivery service accepted the Commit
 *   joiner:   spk_mls_key_package_create -> publish the KeyPackage, keep the secret ->
 *             spk_mls_join(secret, Welcome)
 *   everyone: spk_mls_encrypt / spk_mls_process, spk_mls_export_secret, spk_mls_save /
 *             spk_mls_restore, spk_mls_free
 *
 * Conventions for every function below:
 *   - Returns 0 or a negative SPK_E* code (spk/error.h).
 *   - Input pointers are borrowed for the duration of the call only.
 *   - spk_mls_buf_t outputs are allocated by the library and owned by the caller, who releases
 *     them with spk_mls_buf_free (which wipes them); on failure they are {NULL, 0}.
 *   - Not thread-safe: one spk_mls_t is used by one thread at a time. Different spk_mls_t may
 *     be used from different threads concurrently.
 *   - A function that fails leaves the group state exactly as it was (checked by the unit tests
 *     through spk_mls_save), except where noted for sending (a failed send may skip a ratchet
 *     generation, which receivers tolerate).
 *   - Secrets are wiped when the group or a buffer is freed. */
#ifndef SPK_MLS_H
#define SPK_MLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A group member's state. Opaque. */
typedef struct spk_mls spk_mls_t;

/* Bytes allocated by the library; release with spk_mls_buf_free. */
typedef struct {
    uint8_t *p;
    size_t n;
} spk_mls_buf_t;

/* Wipes and frees b->p and sets b to {NULL, 0}. NULL-safe. */
void spk_mls_buf_free(spk_mls_buf_t *b);

/* Largest MLSMessage accepted by spk_mls_process and spk_mls_join (SPK_ETOOBIG above). */
#define SPK_MLS_MAX_MESSAGE (8u * 1024u * 1024u)
/* Largest identity (basic credential) accepted. */
#define SPK_MLS_MAX_IDENTITY 1024u
/* Out-of-order tolerance per sender and epoch (§9.2): a message may be up to this many
 * generations ahead of the next expected one ... */
#define SPK_MLS_MAX_FORWARD 1024u
/* ... and up to this many keys of skipped generations are kept per sender. */
#define SPK_MLS_MAX_SKIPPED 256u
#define SPK_MLS_EPOCH_AUTHENTICATOR_LEN 32u

/* ---- KeyPackages (§10) ---- */

/* A fresh KeyPackage for identity (basic credential) with new signature, leaf and init keys;
 * lifetime from one hour ago to 90 days from now.
 *   key_package: MLSMessage(KeyPackage), to publish;
 *   secret:      the private keys and the KeyPackage, for spk_mls_join (or spk_mls_create).
 *                It holds private keys: store it encrypted; spk_mls_buf_free wipes it. */
int spk_mls_key_package_create(const uint8_t *identity, size_t identity_len,
                               spk_mls_buf_t *key_package, spk_mls_buf_t *secret);

/* Validates an MLSMessage(KeyPackage) (§10.1): version, cipher suite, leaf node, lifetime at
 * now (Unix seconds; 0 skips the lifetime check) and both signatures. identity (may be NULL)
 * receives a copy of the basic credential's identity. 0, SPK_EDECODE / SPK_ETRUNC for malformed
 * bytes, SPK_EVERIFY for an invalid KeyPackage. */
int spk_mls_key_package_check(const uint8_t *kp, size_t kp_len, uint64_t now,
                              spk_mls_buf_t *identity);

/* ---- creating and joining ---- */

/* A new one-member group (§11) with group_id, for the member of a KeyPackage secret from
 * spk_mls_key_package_create. *out is allocated; free it with spk_mls_free. */
int spk_mls_create(spk_mls_t **out, const uint8_t *group_id, size_t group_id_len,
                   const uint8_t *kp_secret, size_t kp_secret_len);

/* Joins from an MLSMessage(Welcome) addressed to the KeyPackage of kp_secret (§12.4.3.1).
 * ratchet_tree is the tree when it travels out of band (spk_mls_ratchet_tree of a member), or
 * NULL to take it from the GroupInfo extension. Verifies the GroupInfo signature, the tree and
 * the confirmation tag. SPK_ENOTFOUND when the Welcome has nothing for this KeyPackage or no
 * tree is available. *out is allocated; free it with spk_mls_free. */
int spk_mls_join(spk_mls_t **out, const uint8_t *kp_secret, size_t kp_secret_len,
                 const uint8_t *welcome, size_t welcome_len, const uint8_t *ratchet_tree,
                 size_t ratchet_tree_len);

/* Wipes every secret and frees g. NULL-safe. */
void spk_mls_free(spk_mls_t *g);

/* ---- proposals (§12.1) ---- */

/* Each returns the proposal as MLSMessage(PublicMessage) in msg, to send to the group, and
 * caches it so that this member's next Commit includes it.
 * Update (§12.1.2): a fresh leaf HPKE key; its private key is kept until the epoch ends so that
 * a Commit by another member that includes the Update can be processed (at most 4 pending). */
int spk_mls_propose_add(spk_mls_t *g, const uint8_t *kp, size_t kp_len, spk_mls_buf_t *msg);
int spk_mls_propose_remove(spk_mls_t *g, uint32_t leaf, spk_mls_buf_t *msg);
int spk_mls_propose_update(spk_mls_t *g, spk_mls_buf_t *msg);

/* ---- commits (§12.4) ---- */

#define SPK_MLS_COMMIT_PRIVATE 0x1u          /* Commit as PrivateMessage (default PublicMessage) */
#define SPK_MLS_COMMIT_TREE_OUT_OF_BAND 0x2u /* no ratchet_tree extension in the Welcome */

typedef struct {
    const uint8_t *const *add; /* MLSMessage(KeyPackage) of each member to add */
    const size_t *add_len;
    size_t n_add;
    const uint32_t *remove; /* leaf indices of members to remove */
    size_t n_remove;
    unsigned flags; /* SPK_MLS_COMMIT_* */
} spk_mls_commit_opts_t;

/* Builds a Commit over every cached proposal plus opts' Adds and Removes (opts may be NULL),
 * always with an UpdatePath (so it also updates this member's keys), and a Welcome when members
 * are added (welcome may be NULL when nobody is). The new epoch is kept pending in g: the group
 * stays in the current epoch (it can still send and receive) until spk_mls_commit_merge; a
 * Commit from another member that is processed meanwhile discards it. One pending Commit at a
 * time (a new one replaces it). SPK_EVERIFY when the proposal list is invalid (§12.2). With
 * SPK_MLS_COMMIT_PRIVATE one handshake ratchet generation is used. */
int spk_mls_commit(spk_mls_t *g, const spk_mls_commit_opts_t *opts, spk_mls_buf_t *commit,
                   spk_mls_buf_t *welcome);
/* Moves to the pending Commit's epoch (once the delivery service accepted the Commit).
 * SPK_ESTATE when there is none. */
int spk_mls_commit_merge(spk_mls_t *g);
/* Drops the pending Commit (the delivery service rejected it). */
void spk_mls_commit_discard(spk_mls_t *g);

/* ---- messages ---- */

/* Application data as MLSMessage(PrivateMessage) with `padding` zero bytes of padding.
 * SPK_ESTATE after this member was removed. */
int spk_mls_encrypt(spk_mls_t *g, const uint8_t *pt, size_t pt_len, size_t padding,
                    spk_mls_buf_t *msg);

typedef enum {
    SPK_MLS_EVENT_APPLICATION = 1, /* data holds the plaintext */
    SPK_MLS_EVENT_PROPOSAL = 2,    /* cached for the next Commit */
    SPK_MLS_EVENT_COMMIT = 3,      /* a new epoch is installed */
    SPK_MLS_EVENT_REMOVED = 4,     /* a Commit removed this member; the group is now inert */
} spk_mls_event_type_t;

typedef struct {
    spk_mls_event_type_t type;
    spk_mls_buf_t data; /* application plaintext (caller frees with spk_mls_buf_free) */
} spk_mls_event_t;

/* Handles one MLSMessage (PublicMessage or PrivateMessage) for this group. Errors:
 *   SPK_ETOOBIG larger than SPK_MLS_MAX_MESSAGE; SPK_ETRUNC / SPK_EDECODE malformed;
 *   SPK_EINVAL another wire format; SPK_EMLSGROUP another group; SPK_EMLSEPOCH another (older
 *   or newer) epoch, including a replayed Commit; SPK_EMLSREPLAY an application message or
 *   proposal whose key was already used (replay) or fell out of the window; SPK_ERANGE too far
 *   ahead (more than SPK_MLS_MAX_FORWARD generations); SPK_EMLSMEMBERTAG, SPK_EMLSSIG,
 *   SPK_EMLSCONFIRM bad membership tag, signature, confirmation tag; SPK_EVERIFY decryption or
 *   another validation failed; SPK_ESTATE after this member was removed.
 * The state is unchanged on any error. ev is filled on success. */
int spk_mls_process(spk_mls_t *g, const uint8_t *msg, size_t msg_len, spk_mls_event_t *ev);

/* ---- epoch information ---- */

uint64_t spk_mls_epoch(const spk_mls_t *g);
/* This member's leaf index (what others pass to spk_mls_propose_remove). */
uint32_t spk_mls_own_leaf(const spk_mls_t *g);
/* Group id, borrowed from g (valid until g changes). */
const uint8_t *spk_mls_group_id(const spk_mls_t *g, size_t *len);
/* Number of leaves (members and blanks) and whether leaf l holds a member. */
uint32_t spk_mls_leaf_count(const spk_mls_t *g);
bool spk_mls_is_member(const spk_mls_t *g, uint32_t leaf);
/* Identity of the member at leaf (borrowed from g). SPK_ENOTFOUND for a blank leaf. */
int spk_mls_member_identity(const spk_mls_t *g, uint32_t leaf, const uint8_t **identity,
                            size_t *len);
/* epoch_authenticator of the current epoch (§8.7). */
int spk_mls_epoch_authenticator(const spk_mls_t *g, uint8_t out[SPK_MLS_EPOCH_AUTHENTICATOR_LEN]);
/* MLS-Exporter(label, context, out_len) of the current epoch (§8.5). out_len <= 8160. */
int spk_mls_export_secret(const spk_mls_t *g, const char *label, const uint8_t *context,
                          size_t context_len, uint8_t *out, size_t out_len);
/* The ratchet tree (§12.4.3.3), for a joiner when Welcomes leave it out. */
int spk_mls_ratchet_tree(const spk_mls_t *g, spk_mls_buf_t *out);

/* ---- state persistence ---- */

/* Serialises the state (versioned, self-describing; docs/mls.md). The blob holds every secret
 * of the epoch and the signature private key: encrypt it before storing it, and release it
 * with spk_mls_buf_free (which wipes it). A pending Commit is not saved. */
int spk_mls_save(const spk_mls_t *g, spk_mls_buf_t *out);
/* Restores a state saved by spk_mls_save, validating it (format, tree, keys against the tree).
 * SPK_EDECODE / SPK_ETRUNC for a malformed blob, SPK_EVERIFY for an inconsistent one.
 * *out is allocated; free it with spk_mls_free. A restored state must not be used alongside
 * the one it was saved from (that would reuse ratchet keys). */
int spk_mls_restore(spk_mls_t **out, const uint8_t *blob, size_t blob_len);

#endif
