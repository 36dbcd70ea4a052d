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
 *   leaving:  spk_mls_leave -> send the proposal; another member commits it
 *   delivery service: spk_mls_message_info, spk_mls_key_package_ref, spk_mls_welcome_refs,
 *             and the observer of spk/mls_observer.h (follows a group without its secrets)
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
 *   - Secrets are wiped when the group or a buffer is freed.
 *   - Pointers inside spk_mls_event_info_t and spk_mls_proposal_info_t are borrowed from g:
 *     valid until the next call that takes g non-const, or spk_mls_free. */
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
/* KeyPackageRef and ProposalRef (§5.2) length. */
#define SPK_MLS_REF_LEN 32u
/* "No leaf": a sender that is not a member, a proposal that names no leaf. */
#define SPK_MLS_NO_LEAF UINT32_MAX
/* Largest authenticated_data accepted on send. */
#define SPK_MLS_MAX_AUTHENTICATED_DATA (64u * 1024u)

/* Wire formats (§6) and content types (§6) as spk_mls_message_info reports them. */
enum {
    SPK_MLS_MSG_PUBLIC = 1,
    SPK_MLS_MSG_PRIVATE = 2,
    SPK_MLS_MSG_WELCOME = 3,
    SPK_MLS_MSG_GROUP_INFO = 4,
    SPK_MLS_MSG_KEY_PACKAGE = 5,
};
enum {
    SPK_MLS_KIND_APPLICATION = 1,
    SPK_MLS_KIND_PROPOSAL = 2,
    SPK_MLS_KIND_COMMIT = 3,
};
/* Proposal types (§12.1). */
enum {
    SPK_MLS_PROP_ADD = 1,
    SPK_MLS_PROP_UPDATE = 2,
    SPK_MLS_PROP_REMOVE = 3,
    SPK_MLS_PROP_PSK = 4,
    SPK_MLS_PROP_REINIT = 5,
    SPK_MLS_PROP_EXTERNAL_INIT = 6,
    SPK_MLS_PROP_GROUP_CONTEXT_EXTENSIONS = 7,
};

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
/* KeyPackageRef (§5.2) of an MLSMessage(KeyPackage): what a Welcome names its new member by.
 * The KeyPackage is decoded, not validated. SPK_EDECODE / SPK_ETRUNC, SPK_EINVAL for another
 * wire format. */
int spk_mls_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t ref[SPK_MLS_REF_LEN]);
/* The lifetime (§7.2: Unix seconds, both ends inclusive) of an MLSMessage(KeyPackage)'s leaf
 * node; decoded, not validated. SPK_EDECODE / SPK_ETRUNC, SPK_EINVAL for another wire format
 * (both outputs 0 on error). */
int spk_mls_key_package_lifetime(const uint8_t *kp, size_t kp_len, uint64_t *not_before,
                                 uint64_t *not_after);

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
/* Remove of leaf; this member's own leaf is a self-remove (spk_mls_leave). SPK_ENOTFOUND for a
 * blank leaf. */
int spk_mls_propose_remove(spk_mls_t *g, uint32_t leaf, spk_mls_buf_t *msg);
int spk_mls_propose_update(spk_mls_t *g, spk_mls_buf_t *msg);

/* Leaving by oneself: a Remove proposal for this member's own leaf, as PublicMessage in msg, to
 * send to the group. RFC 9420 forbids committing one's own removal (§12.2), so another member
 * commits it (any member's next spk_mls_commit includes it by reference; this member's own
 * Commits leave it out). When that Commit arrives, spk_mls_process reports
 * SPK_MLS_EVENT_REMOVED and the group becomes inert. If a Commit that does not include it
 * arrives first, the proposal lapses with the epoch: call spk_mls_leave again. Until removed
 * the member can still receive and send. SPK_ESTATE after removal, or when this member is the
 * only one (nobody could commit it). */
int spk_mls_leave(spk_mls_t *g, spk_mls_buf_t *msg);

/* ---- pending proposals ---- */

/* A proposal cached in this epoch (received or sent by this member), for the application to
 * inspect, and refuse, before a Commit covers it. Pointers are borrowed from g. */
typedef struct {
    uint8_t ref[SPK_MLS_REF_LEN]; /* ProposalRef (§5.2) */
    uint16_t type;                /* SPK_MLS_PROP_* */
    uint32_t sender;              /* proposer's leaf, SPK_MLS_NO_LEAF for a non-member */
    /* Remove: the leaf removed; Update: the proposer's leaf; Add: SPK_MLS_NO_LEAF (its leaf is
     * chosen by the Commit). */
    uint32_t leaf;
    /* Add: the new member's identity; Remove: the removed member's; Update: the proposer's;
     * NULL otherwise. */
    const uint8_t *identity;
    size_t identity_len;
    uint8_t key_package_ref[SPK_MLS_REF_LEN]; /* Add: KeyPackageRef; zero otherwise */
} spk_mls_proposal_info_t;

/* Number of cached proposals. */
size_t spk_mls_proposal_count(const spk_mls_t *g);
/* The i-th cached proposal (in arrival order). SPK_ENOTFOUND beyond the count. */
int spk_mls_proposal_get(const spk_mls_t *g, size_t i, spk_mls_proposal_info_t *out);
/* Drops the cached proposal ref: this member's next Commit leaves it out, and a Commit from
 * another member that includes it is rejected (SPK_EMLSPROPOSAL) — refusing is the
 * application's policy decision (e.g. an Add of someone who may not be in the conversation).
 * SPK_ENOTFOUND (state unchanged) when no cached proposal has that reference. */
int spk_mls_proposal_refuse(spk_mls_t *g, const uint8_t ref[SPK_MLS_REF_LEN]);

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
 * SPK_MLS_COMMIT_PRIVATE one handshake ratchet generation is used. Cached Removes of this
 * member's own leaf (a self-remove) are left out: another member commits those. */
int spk_mls_commit(spk_mls_t *g, const spk_mls_commit_opts_t *opts, spk_mls_buf_t *commit,
                   spk_mls_buf_t *welcome);
/* The same with authenticated_data (§6) on the Commit: authenticated, not encrypted (visible to
 * the delivery service), at most SPK_MLS_MAX_AUTHENTICATED_DATA bytes (ad may be NULL when
 * ad_len is 0). Receivers get it in spk_mls_event_info_t.authenticated_data. */
int spk_mls_commit_ad(spk_mls_t *g, const spk_mls_commit_opts_t *opts, const uint8_t *ad,
                      size_t ad_len, spk_mls_buf_t *commit, spk_mls_buf_t *welcome);
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
/* The same with authenticated_data (§6.3): authenticated with the message but carried in the
 * clear (the delivery service can read it), at most SPK_MLS_MAX_AUTHENTICATED_DATA bytes.
 * Receivers get it in spk_mls_event_info_t.authenticated_data. */
int spk_mls_encrypt_ad(spk_mls_t *g, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                       size_t pt_len, size_t padding, spk_mls_buf_t *msg);

typedef enum {
    SPK_MLS_EVENT_APPLICATION = 1, /* data holds the plaintext */
    SPK_MLS_EVENT_PROPOSAL = 2,    /* cached for the next Commit */
    SPK_MLS_EVENT_COMMIT = 3,      /* a new epoch is installed */
    SPK_MLS_EVENT_REMOVED = 4,     /* a Commit removed this member; the group is now inert */
} spk_mls_event_type_t;

/* A member who joined or left in a Commit (identity borrowed from g). */
typedef struct {
    uint32_t leaf;
    const uint8_t *identity;
    size_t identity_len;
    uint8_t key_package_ref[SPK_MLS_REF_LEN]; /* joined: KeyPackageRef of its Add; left: zero */
} spk_mls_member_t;

typedef struct {
    spk_mls_event_type_t type;
    spk_mls_buf_t data; /* application plaintext (caller frees with spk_mls_buf_free) */
} spk_mls_event_t;

/* More about an event (spk_mls_process_info, spk_mls_commit_merge_info). Everything in it is
 * borrowed from g (see the conventions at the top). */
typedef struct {
    uint64_t epoch;  /* the message's epoch; for COMMIT the new epoch */
    uint32_t sender; /* sender's leaf index, SPK_MLS_NO_LEAF for a non-member proposal */
    const uint8_t *sender_identity; /* the sender's credential identity (NULL for a non-member) */
    size_t sender_identity_len;
    const uint8_t *authenticated_data; /* the message's authenticated_data (§6), may be empty */
    size_t authenticated_data_len;
    /* COMMIT and REMOVED: who joined (with the leaf each got) and who left, in proposal order.
     * A leaf can appear in both when an Add refills a leaf that a Remove emptied. */
    const spk_mls_member_t *joined;
    size_t n_joined;
    const spk_mls_member_t *left;
    size_t n_left;
    spk_mls_proposal_info_t proposal; /* PROPOSAL: what was cached */
} spk_mls_event_info_t;

/* Handles one MLSMessage (PublicMessage or PrivateMessage) for this group. Errors:
 *   SPK_ETOOBIG larger than SPK_MLS_MAX_MESSAGE; SPK_ETRUNC / SPK_EDECODE malformed;
 *   SPK_EINVAL another wire format; SPK_EMLSGROUP another group; SPK_EMLSEPOCH another (older
 *   or newer) epoch, including a replayed Commit; SPK_EMLSREPLAY an application message or
 *   proposal whose key was already used (replay) or fell out of the window; SPK_ERANGE too far
 *   ahead (more than SPK_MLS_MAX_FORWARD generations); SPK_EMLSMEMBERTAG, SPK_EMLSSIG,
 *   SPK_EMLSCONFIRM bad membership tag, signature, confirmation tag; SPK_EMLSPROPOSAL a Commit
 *   that refers to a proposal this member does not hold (never received, or refused);
 *   SPK_EVERIFY decryption or another validation failed; SPK_ESTATE after this member was
 *   removed.
 * The state is unchanged on any error. ev is filled on success. */
int spk_mls_process(spk_mls_t *g, const uint8_t *msg, size_t msg_len, spk_mls_event_t *ev);
/* spk_mls_process that also describes the message in info (may be NULL; filled on success):
 * epoch, sender, authenticated data, who joined and left, the proposal cached. */
int spk_mls_process_info(spk_mls_t *g, const uint8_t *msg, size_t msg_len, spk_mls_event_t *ev,
                         spk_mls_event_info_t *info);
/* spk_mls_commit_merge that also describes the merged Commit in info (may be NULL): the new
 * epoch, this member as sender, its authenticated data, who joined and who left. */
int spk_mls_commit_merge_info(spk_mls_t *g, spk_mls_event_info_t *info);

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
/* MLSMessage(GroupInfo) (§12.4.3) of the current epoch, signed by this member, with the
 * ratchet tree in its ratchet_tree extension unless SPK_MLS_COMMIT_TREE_OUT_OF_BAND is in
 * flags (then give the observer spk_mls_ratchet_tree). What a delivery service's observer
 * starts from (spk_mls_observer_create). It holds no secret. SPK_ESTATE after removal. */
int spk_mls_group_info(const spk_mls_t *g, unsigned flags, spk_mls_buf_t *out);

/* ---- reading messages without a group (delivery service) ---- */

/* The routing header of an MLSMessage, read without decoding or validating the rest. */
typedef struct {
    uint16_t wire_format;    /* SPK_MLS_MSG_* */
    const uint8_t *group_id; /* borrowed from the message; Public/PrivateMessage, GroupInfo */
    size_t group_id_len;
    uint64_t epoch;       /* Public/PrivateMessage, GroupInfo */
    uint8_t content_type; /* SPK_MLS_KIND_*; Public/PrivateMessage */
    uint32_t sender;      /* PublicMessage from a member: its leaf; else SPK_MLS_NO_LEAF */
} spk_mls_message_info_t;

/* Reads the header of msg: cheap (no allocation, no cryptography), for ordering by epoch and
 * telling handshake from application messages. SPK_ETRUNC / SPK_EDECODE when the header is
 * malformed; nothing after it is checked. */
int spk_mls_message_info(const uint8_t *msg, size_t msg_len, spk_mls_message_info_t *out);
/* The KeyPackageRefs a Welcome is addressed to (one per new member, in order), to route it to
 * the devices that uploaded those KeyPackages: *refs is allocated (n * SPK_MLS_REF_LEN bytes,
 * free with spk_mls_buf_free). SPK_EINVAL when msg is not a Welcome. */
int spk_mls_welcome_refs(const uint8_t *msg, size_t msg_len, spk_mls_buf_t *refs, size_t *n);

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
