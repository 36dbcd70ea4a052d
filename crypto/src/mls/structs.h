/* MLS wire structs (RFC 9420 §6, §7, §10, §12, §13) with decode and byte-exact encode.
 *
 * Ownership: every decoder COPIES what it keeps (spk_mls_bytes_t fields and arrays are owned by
 * the struct), so the input buffer may be released right after decoding. Each struct has a
 * _free function that wipes and frees everything it owns and leaves the struct zeroed; freeing a
 * zeroed struct is a no-op. Callers own the structs (stack or heap) and must zero-initialise
 * structs they fill by hand before handing them to a _free function.
 *
 * For each struct X:
 *   int  spk_mls_X_read(spk_mls_reader_t *r, spk_mls_X_t *out);
 *        reads one X from r. On failure out is left zeroed (nothing to free) and the error is also
 *        set as r's sticky error.
 *   int  spk_mls_X_decode(spk_mls_X_t *out, const uint8_t *p, size_t n);
 *        decodes exactly one X occupying all of p (trailing bytes are SPK_EDECODE).
 *   int  spk_mls_X_write(spk_mls_writer_t *w, const spk_mls_X_t *in);
 *   int  spk_mls_X_encode(const spk_mls_X_t *in, spk_mls_bytes_t *out);
 *   void spk_mls_X_free(spk_mls_X_t *x);
 *
 * Decoders reject (SPK_EDECODE): enum values the RFC gives no encoding for (credential types
 * other than basic and x509, leaf_node_source, node type, proposal type, ProposalOrRef type,
 * sender type, content type, wire format, PSK type and usage, optional octets other than 0/1),
 * MLSMessage versions other than mls10, and vectors longer than the caps below (SPK_ERANGE).
 * Unknown extension types, including GREASE values (§13.5), are kept and re-encoded verbatim. */
#ifndef SPK_MLS_STRUCTS_H
#define SPK_MLS_STRUCTS_H

#include "mls/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Vector caps (number of elements) enforced by the decoders. */
#define SPK_MLS_MAX_EXTENSIONS 256    /* Extension extensions<V> */
#define SPK_MLS_MAX_CAPS 256          /* each list inside Capabilities */
#define SPK_MLS_MAX_CERTS 64          /* x509 certificate chain */
#define SPK_MLS_MAX_LIST 65536        /* proposals, PSKs, welcome secrets, unmerged leaves, ... */
#define SPK_MLS_MAX_TREE_NODES 131071 /* ratchet_tree: 65536 leaves */
#define SPK_MLS_MAX_PATH 32           /* UpdatePath nodes (tree depth) */

/* §17 registries. */
#define SPK_MLS_VERSION_10 1

enum {
    SPK_MLS_CRED_BASIC = 1,
    SPK_MLS_CRED_X509 = 2,
};

enum {
    SPK_MLS_EXT_APPLICATION_ID = 1,
    SPK_MLS_EXT_RATCHET_TREE = 2,
    SPK_MLS_EXT_REQUIRED_CAPABILITIES = 3,
    SPK_MLS_EXT_EXTERNAL_PUB = 4,
    SPK_MLS_EXT_EXTERNAL_SENDERS = 5,
};

enum {
    SPK_MLS_LEAF_SRC_KEY_PACKAGE = 1,
    SPK_MLS_LEAF_SRC_UPDATE = 2,
    SPK_MLS_LEAF_SRC_COMMIT = 3,
};

enum {
    SPK_MLS_NODE_BLANK = 0, /* local marker for a blank node (absent optional<Node>) */
    SPK_MLS_NODE_LEAF = 1,
    SPK_MLS_NODE_PARENT = 2,
};

enum {
    SPK_MLS_PROPOSAL_ADD = 1,
    SPK_MLS_PROPOSAL_UPDATE = 2,
    SPK_MLS_PROPOSAL_REMOVE = 3,
    SPK_MLS_PROPOSAL_PSK = 4,
    SPK_MLS_PROPOSAL_REINIT = 5,
    SPK_MLS_PROPOSAL_EXTERNAL_INIT = 6,
    SPK_MLS_PROPOSAL_GCE = 7,
};

enum {
    SPK_MLS_POR_PROPOSAL = 1,
    SPK_MLS_POR_REFERENCE = 2,
};

enum {
    SPK_MLS_PSK_EXTERNAL = 1,
    SPK_MLS_PSK_RESUMPTION = 2,
};

enum {
    SPK_MLS_SENDER_MEMBER = 1,
    SPK_MLS_SENDER_EXTERNAL = 2,
    SPK_MLS_SENDER_NEW_MEMBER_PROPOSAL = 3,
    SPK_MLS_SENDER_NEW_MEMBER_COMMIT = 4,
};

enum {
    SPK_MLS_CONTENT_APPLICATION = 1,
    SPK_MLS_CONTENT_PROPOSAL = 2,
    SPK_MLS_CONTENT_COMMIT = 3,
};

enum {
    SPK_MLS_WIRE_PUBLIC = 1,
    SPK_MLS_WIRE_PRIVATE = 2,
    SPK_MLS_WIRE_WELCOME = 3,
    SPK_MLS_WIRE_GROUP_INFO = 4,
    SPK_MLS_WIRE_KEY_PACKAGE = 5,
};

/* GREASE values (§13.5): 0x0A0A, 0x1A1A, ..., 0xEAEA. */
bool spk_mls_is_grease(uint16_t v);

/* ---- §5.3 Credential ---- */
typedef struct {
    uint16_t type;            /* SPK_MLS_CRED_BASIC or SPK_MLS_CRED_X509 */
    spk_mls_bytes_t identity; /* basic */
    spk_mls_bytes_t *certs;   /* x509: certificates<V>, each cert_data kept opaque */
    size_t n_certs;
} spk_mls_credential_t;

/* ---- §7.2 Capabilities, Lifetime, Extension ---- */
typedef struct {
    uint16_t *v;
    size_t n;
} spk_mls_u16_list_t;

typedef struct {
    spk_mls_u16_list_t versions;
    spk_mls_u16_list_t cipher_suites;
    spk_mls_u16_list_t extensions;
    spk_mls_u16_list_t proposals;
    spk_mls_u16_list_t credentials;
} spk_mls_capabilities_t;

typedef struct {
    uint64_t not_before;
    uint64_t not_after;
} spk_mls_lifetime_t;

typedef struct {
    uint16_t type;
    spk_mls_bytes_t data;
} spk_mls_extension_t;

typedef struct {
    spk_mls_extension_t *v;
    size_t n;
} spk_mls_extensions_t;

/* True when list contains v. */
bool spk_mls_u16_list_has(const spk_mls_u16_list_t *list, uint16_t v);
/* The extension of the given type, or NULL. */
const spk_mls_extension_t *spk_mls_extensions_find(const spk_mls_extensions_t *e, uint16_t type);

/* ---- §7.2 LeafNode, §7.1 ParentNode, §12.4.3.3 Node ---- */
typedef struct {
    spk_mls_bytes_t encryption_key; /* HPKEPublicKey */
    spk_mls_bytes_t signature_key;  /* SignaturePublicKey */
    spk_mls_credential_t credential;
    spk_mls_capabilities_t capabilities;
    uint8_t source;              /* SPK_MLS_LEAF_SRC_* */
    spk_mls_lifetime_t lifetime; /* source == key_package */
    spk_mls_bytes_t parent_hash; /* source == commit */
    spk_mls_extensions_t extensions;
    spk_mls_bytes_t signature;
} spk_mls_leaf_node_t;

typedef struct {
    spk_mls_bytes_t encryption_key;
    spk_mls_bytes_t parent_hash;
    uint32_t *unmerged_leaves;
    size_t n_unmerged;
} spk_mls_parent_node_t;

typedef struct {
    uint8_t type; /* SPK_MLS_NODE_BLANK, _LEAF or _PARENT */
    spk_mls_leaf_node_t leaf;
    spk_mls_parent_node_t parent;
} spk_mls_node_t;

/* ---- §10 KeyPackage ---- */
typedef struct {
    uint16_t version;
    uint16_t cipher_suite;
    spk_mls_bytes_t init_key;
    spk_mls_leaf_node_t leaf_node;
    spk_mls_extensions_t extensions;
    spk_mls_bytes_t signature;
} spk_mls_key_package_t;

/* ---- §8.4 PreSharedKeyID ---- */
typedef struct {
    uint8_t psktype;              /* SPK_MLS_PSK_* */
    spk_mls_bytes_t psk_id;       /* external */
    uint8_t usage;                /* resumption: 1 application, 2 reinit, 3 branch */
    spk_mls_bytes_t psk_group_id; /* resumption */
    uint64_t psk_epoch;           /* resumption */
    spk_mls_bytes_t psk_nonce;
} spk_mls_psk_id_t;

/* ---- §12.1 Proposals ---- */
typedef struct {
    spk_mls_bytes_t group_id;
    uint16_t version;
    uint16_t cipher_suite;
    spk_mls_extensions_t extensions;
} spk_mls_reinit_t;

typedef struct {
    uint16_t type; /* SPK_MLS_PROPOSAL_* */
    union {
        spk_mls_key_package_t add;     /* Add.key_package */
        spk_mls_leaf_node_t update;    /* Update.leaf_node */
        uint32_t remove;               /* Remove.removed */
        spk_mls_psk_id_t psk;          /* PreSharedKey.psk */
        spk_mls_reinit_t reinit;       /* ReInit */
        spk_mls_bytes_t external_init; /* ExternalInit.kem_output */
        spk_mls_extensions_t gce;      /* GroupContextExtensions.extensions */
    } u;
} spk_mls_proposal_t;

typedef struct {
    uint8_t type; /* SPK_MLS_POR_* */
    spk_mls_proposal_t proposal;
    spk_mls_bytes_t reference; /* ProposalRef */
} spk_mls_proposal_or_ref_t;

/* ---- §7.6 UpdatePath ---- */
typedef struct {
    spk_mls_bytes_t kem_output;
    spk_mls_bytes_t ciphertext;
} spk_mls_hpke_ciphertext_t;

typedef struct {
    spk_mls_bytes_t encryption_key;
    spk_mls_hpke_ciphertext_t *secrets; /* encrypted_path_secret<V> */
    size_t n_secrets;
} spk_mls_update_path_node_t;

typedef struct {
    spk_mls_leaf_node_t leaf_node;
    spk_mls_update_path_node_t *nodes;
    size_t n_nodes;
} spk_mls_update_path_t;

/* ---- §12.4 Commit ---- */
typedef struct {
    spk_mls_proposal_or_ref_t *proposals;
    size_t n_proposals;
    bool has_path;
    spk_mls_update_path_t path;
} spk_mls_commit_t;

/* ---- §8.1 GroupContext, §12.4.3 GroupInfo, GroupSecrets, Welcome ---- */
typedef struct {
    uint16_t version;
    uint16_t cipher_suite;
    spk_mls_bytes_t group_id;
    uint64_t epoch;
    spk_mls_bytes_t tree_hash;
    spk_mls_bytes_t confirmed_transcript_hash;
    spk_mls_extensions_t extensions;
} spk_mls_group_context_t;

typedef struct {
    spk_mls_group_context_t group_context;
    spk_mls_extensions_t extensions;
    spk_mls_bytes_t confirmation_tag;
    uint32_t signer;
    spk_mls_bytes_t signature;
} spk_mls_group_info_t;

/* Secret: _free wipes joiner_secret and path_secret. */
typedef struct {
    spk_mls_bytes_t joiner_secret;
    bool has_path_secret;
    spk_mls_bytes_t path_secret;
    spk_mls_psk_id_t *psks;
    size_t n_psks;
} spk_mls_group_secrets_t;

typedef struct {
    spk_mls_bytes_t new_member; /* KeyPackageRef */
    spk_mls_hpke_ciphertext_t encrypted_group_secrets;
} spk_mls_encrypted_group_secrets_t;

typedef struct {
    uint16_t cipher_suite;
    spk_mls_encrypted_group_secrets_t *secrets;
    size_t n_secrets;
    spk_mls_bytes_t encrypted_group_info;
} spk_mls_welcome_t;

/* ---- §6 framing ---- */
typedef struct {
    uint8_t type;   /* SPK_MLS_SENDER_* */
    uint32_t index; /* member: leaf_index; external: sender_index */
} spk_mls_sender_t;

typedef struct {
    spk_mls_bytes_t group_id;
    uint64_t epoch;
    spk_mls_sender_t sender;
    spk_mls_bytes_t authenticated_data;
    uint8_t content_type;             /* SPK_MLS_CONTENT_* */
    spk_mls_bytes_t application_data; /* application (wiped on free) */
    spk_mls_proposal_t proposal;      /* proposal */
    spk_mls_commit_t commit;          /* commit */
} spk_mls_framed_content_t;

typedef struct {
    spk_mls_framed_content_t content;
    spk_mls_bytes_t signature;        /* FramedContentAuthData.signature */
    spk_mls_bytes_t confirmation_tag; /* content_type == commit */
    spk_mls_bytes_t membership_tag;   /* sender_type == member */
} spk_mls_public_message_t;

typedef struct {
    spk_mls_bytes_t group_id;
    uint64_t epoch;
    uint8_t content_type;
    spk_mls_bytes_t authenticated_data;
    spk_mls_bytes_t encrypted_sender_data;
    spk_mls_bytes_t ciphertext;
} spk_mls_private_message_t;

typedef struct {
    uint16_t version;     /* always SPK_MLS_VERSION_10 after decode */
    uint16_t wire_format; /* SPK_MLS_WIRE_* */
    union {
        spk_mls_public_message_t pub;
        spk_mls_private_message_t priv;
        spk_mls_welcome_t welcome;
        spk_mls_group_info_t group_info;
        spk_mls_key_package_t key_package;
    } u;
} spk_mls_message_t;

/* Routing header of an MLSMessage, read without decoding (or copying) the rest: what a delivery
 * service needs to order and forward messages. group_id points into the input. content_type
 * and the sender are 0 where the wire format has none (sender: PublicMessage only; group_id and
 * epoch: Public/PrivateMessage and GroupInfo). The rest of the message is not validated. */
typedef struct {
    uint16_t wire_format;
    const uint8_t *group_id;
    size_t group_id_len;
    uint64_t epoch;
    uint8_t content_type;
    uint8_t sender_type;
    uint32_t sender_index;
} mls_peek_t;

int spk_mls_message_peek(const uint8_t *p, size_t n, mls_peek_t *out);

/* FramedContentAuthData (§6.1), read or written given the content type it depends on. */
int spk_mls_auth_data_read(spk_mls_reader_t *r, uint8_t content_type, spk_mls_bytes_t *signature,
                           spk_mls_bytes_t *confirmation_tag);
int spk_mls_auth_data_write(spk_mls_writer_t *w, uint8_t content_type,
                            const spk_mls_bytes_t *signature,
                            const spk_mls_bytes_t *confirmation_tag);

/* Extensions list body (Extension extensions<V>) and Capabilities helpers. */
int spk_mls_extensions_read(spk_mls_reader_t *r, spk_mls_extensions_t *out);
int spk_mls_extensions_write(spk_mls_writer_t *w, const spk_mls_extensions_t *in);
int spk_mls_extensions_copy(spk_mls_extensions_t *dst, const spk_mls_extensions_t *src);
void spk_mls_extensions_free(spk_mls_extensions_t *e);

/* LeafNodeTBS (§7.2): group_id/leaf_index are used only for update and commit sources. */
int spk_mls_leaf_node_tbs_write(spk_mls_writer_t *w, const spk_mls_leaf_node_t *ln,
                                const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index);
/* KeyPackageTBS (§10). */
int spk_mls_key_package_tbs_write(spk_mls_writer_t *w, const spk_mls_key_package_t *kp);

/* Proposal bodies without the leading proposal_type (Add, Update, Remove, ...), as carried by
 * the messages test vectors; out->type is set to type. */
int spk_mls_proposal_body_read(spk_mls_reader_t *r, uint16_t type, spk_mls_proposal_t *out);
int spk_mls_proposal_body_write(spk_mls_writer_t *w, const spk_mls_proposal_t *in);

/* GroupInfoTBS (§12.4.3): every GroupInfo field but the signature. */
int spk_mls_group_info_tbs_write(spk_mls_writer_t *w, const spk_mls_group_info_t *in);

/* Deep copies (dst must be zeroed or freed; on failure dst is left zeroed). */
int spk_mls_leaf_node_copy(spk_mls_leaf_node_t *dst, const spk_mls_leaf_node_t *src);
int spk_mls_parent_node_copy(spk_mls_parent_node_t *dst, const spk_mls_parent_node_t *src);
int spk_mls_node_copy(spk_mls_node_t *dst, const spk_mls_node_t *src);

#define SPK_MLS_STRUCT_API(name)                                                                   \
    int spk_mls_##name##_read(spk_mls_reader_t *r, spk_mls_##name##_t *out);                       \
    int spk_mls_##name##_decode(spk_mls_##name##_t *out, const uint8_t *p, size_t n);              \
    int spk_mls_##name##_write(spk_mls_writer_t *w, const spk_mls_##name##_t *in);                 \
    int spk_mls_##name##_encode(const spk_mls_##name##_t *in, spk_mls_bytes_t *out);               \
    void spk_mls_##name##_free(spk_mls_##name##_t *x);

SPK_MLS_STRUCT_API(credential)
SPK_MLS_STRUCT_API(capabilities)
SPK_MLS_STRUCT_API(lifetime)
SPK_MLS_STRUCT_API(extension)
SPK_MLS_STRUCT_API(leaf_node)
SPK_MLS_STRUCT_API(parent_node)
SPK_MLS_STRUCT_API(node)
SPK_MLS_STRUCT_API(key_package)
SPK_MLS_STRUCT_API(psk_id)
SPK_MLS_STRUCT_API(proposal)
SPK_MLS_STRUCT_API(proposal_or_ref)
SPK_MLS_STRUCT_API(hpke_ciphertext)
SPK_MLS_STRUCT_API(update_path_node)
SPK_MLS_STRUCT_API(update_path)
SPK_MLS_STRUCT_API(commit)
SPK_MLS_STRUCT_API(group_context)
SPK_MLS_STRUCT_API(group_info)
SPK_MLS_STRUCT_API(group_secrets)
SPK_MLS_STRUCT_API(encrypted_group_secrets)
SPK_MLS_STRUCT_API(welcome)
SPK_MLS_STRUCT_API(sender)
SPK_MLS_STRUCT_API(framed_content)
SPK_MLS_STRUCT_API(public_message)
SPK_MLS_STRUCT_API(private_message)
SPK_MLS_STRUCT_API(message)

#endif
