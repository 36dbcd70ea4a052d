/* SFrame (RFC 9605): end-to-end encryption of media frames, with keys from MLS (§5.2).
 *
 * Two layers:
 *   - spk_sframe_ctx_t, the SFrame context of RFC 9605 Appendix A: a set of keys, each named by
 *     a KID and usable either for sending or for receiving (never both), derived from a
 *     base_key (§4.4.2); frames are encrypted under a send key with a counter the context
 *     increments, and decrypted under the receive key the header's KID names, behind a replay
 *     window.
 *   - spk_sframe_mls_t, the MLS key schedule of §5.2: one base key per MLS epoch from the
 *     group's exporter; KIDs carry the low epoch bits, the sender's leaf index and a context
 *     value, so every member derives the same per-sender keys and a frame names the key it
 *     needs; a bounded set of recent epochs is kept for frames still in flight after a Commit.
 * docs/sframe.md has the KID layout, what travels in the clear and a worked example.
 *
 * Cipher suites: the five of RFC 9605 §4.5 (the two for spreekkamer are
 * SPK_SFRAME_AES_128_GCM_SHA256_128, the natural match of MLS suite 1, and
 * SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80 for short tags).
 *
 * Conventions for every function below:
 *   - Returns 0 or a negative SPK_E* code (spk/error.h); predicates return bool.
 *   - Input pointers are borrowed for the duration of the call. Output buffers are the
 *     caller's; they must not overlap the inputs. No allocation on the frame path except the
 *     first frame under a new KID of spk_sframe_mls_t (its keys are derived on demand).
 *   - Not thread-safe: one context is used by one thread at a time; different contexts may be
 *     used from different threads concurrently (a media worker owns the contexts of its
 *     streams).
 *   - A call that fails changes nothing: no counter is consumed by a failed encryption, a
 *     failed decryption leaves the replay window as it was and wipes whatever it wrote to the
 *     output buffer (unauthenticated plaintext is never handed out).
 *   - Keys are wiped when they are removed and when the context is freed. */
#ifndef SPK_SFRAME_H
#define SPK_SFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/mls.h"

/* ---- cipher suites (§4.5, IANA "SFrame Cipher Suites") ---- */

enum {
    SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80 = 0x0001,
    SPK_SFRAME_AES_128_CTR_HMAC_SHA256_64 = 0x0002,
    SPK_SFRAME_AES_128_CTR_HMAC_SHA256_32 = 0x0003,
    SPK_SFRAME_AES_128_GCM_SHA256_128 = 0x0004,
    SPK_SFRAME_AES_256_GCM_SHA512_128 = 0x0005,
};

bool spk_sframe_suite_supported(uint16_t suite);
/* Authentication tag length Nt of suite (4 to 16), 0 for an unknown suite. */
size_t spk_sframe_tag_len(uint16_t suite);
/* AEAD key length Nk of suite (the length of an MLS-derived base key), 0 if unknown. */
size_t spk_sframe_key_len(uint16_t suite);

/* ---- header (§4.3) ---- */

/* Config byte plus up to 8 bytes of KID and 8 of CTR. */
#define SPK_SFRAME_MAX_HEADER 17u
#define SPK_SFRAME_MAX_TAG 16u
/* A frame is at most this much longer than its plaintext. */
#define SPK_SFRAME_MAX_OVERHEAD (SPK_SFRAME_MAX_HEADER + SPK_SFRAME_MAX_TAG)
/* Largest plaintext (and metadata) accepted: SPK_ETOOBIG above. */
#define SPK_SFRAME_MAX_FRAME (16u * 1024u * 1024u)

typedef struct {
    uint64_t kid;
    uint64_t ctr;
    size_t len; /* encoded length, 1 to 17 */
} spk_sframe_header_t;

/* Encoded length of the header for (kid, ctr). */
size_t spk_sframe_header_size(uint64_t kid, uint64_t ctr);
/* Writes the minimal encoding of (kid, ctr) to out; *len receives its length. */
void spk_sframe_header_encode(uint64_t kid, uint64_t ctr, uint8_t out[SPK_SFRAME_MAX_HEADER],
                              size_t *len);
/* Parses the header at the start of p (the rest of p is not read). SPK_ETRUNC when p ends
 * inside the header, SPK_EDECODE for a value not in its minimal form (a KID or CTR below 8 in
 * the extended form, or with a leading zero byte): every (KID, CTR) has exactly one encoding. */
int spk_sframe_header_decode(const uint8_t *p, size_t n, spk_sframe_header_t *h);

/* ---- SFrame context (Appendix A) ---- */

typedef struct spk_sframe_ctx spk_sframe_ctx_t;

typedef enum {
    SPK_SFRAME_SEND = 1, /* this context encrypts under the key */
    SPK_SFRAME_RECV = 2, /* this context decrypts under the key */
} spk_sframe_usage_t;

/* Frames per receive key that may arrive out of order: a CTR more than this far below the
 * highest one seen is refused (SPK_EREPLAY), as is every CTR already accepted. */
#define SPK_SFRAME_REPLAY_WINDOW 1024u
/* Keys per context. */
#define SPK_SFRAME_MAX_KEYS 4096u

/* A context for one cipher suite with no keys. SPK_EINVAL for an unknown suite. *out is
 * allocated; free it with spk_sframe_ctx_free. */
int spk_sframe_ctx_create(spk_sframe_ctx_t **out, uint16_t suite);
/* Wipes every key and frees c. NULL-safe. */
void spk_sframe_ctx_free(spk_sframe_ctx_t *c);

/* Derives sframe_key and sframe_salt for kid from base_key (§4.4.2; 1 to 64 bytes) and adds
 * them for usage. A send key starts at CTR 0. SPK_EEXIST when kid has a key already,
 * SPK_ERANGE beyond SPK_SFRAME_MAX_KEYS. A base_key must never be a send key in two contexts
 * (two senders would reuse nonces). */
int spk_sframe_ctx_add_key(spk_sframe_ctx_t *c, uint64_t kid, spk_sframe_usage_t usage,
                           const uint8_t *base_key, size_t base_key_len);
/* Removes (and wipes) the key of kid. SPK_ENOTFOUND when there is none. */
int spk_sframe_ctx_remove_key(spk_sframe_ctx_t *c, uint64_t kid);
/* Moves the next CTR of send key kid forward to ctr, e.g. to continue a context that was
 * persisted (§9.1: store the next CTR before using it). SPK_EINVAL when ctr is below the next
 * CTR (a counter never goes back) or kid is a receive key, SPK_ENOTFOUND without a key. */
int spk_sframe_ctx_set_next_ctr(spk_sframe_ctx_t *c, uint64_t kid, uint64_t ctr);

/* Encrypts pt under send key kid with the next CTR into out: header || ciphertext || tag,
 * *out_len bytes (pt_len + header + tag; out_cap >= pt_len + SPK_SFRAME_MAX_OVERHEAD always
 * suffices). metadata (may be NULL when metadata_len is 0) is authenticated, not sent
 * (§4.4.3, §9.4). Errors: SPK_ENOTFOUND no key for kid, SPK_EINVAL kid is a receive key or
 * out_cap is too small, SPK_ETOOBIG pt or metadata above SPK_SFRAME_MAX_FRAME, SPK_ERANGE the
 * key's 2^64 counters are used up. */
int spk_sframe_encrypt(spk_sframe_ctx_t *c, uint64_t kid, const uint8_t *metadata,
                       size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                       size_t out_cap, size_t *out_len);
/* Decrypts an SFrame ciphertext into out (*out_len bytes; out_cap >= frame_len suffices);
 * hdr (may be NULL) receives its KID and CTR. Errors: SPK_ETRUNC / SPK_EDECODE malformed
 * header or shorter than the tag, SPK_ENOTFOUND no receive key for the KID (the application
 * may hold the frame until the key arrives, §4.4.4), SPK_EREPLAY CTR already accepted or below
 * the replay window, SPK_EVERIFY authentication failed, SPK_EINVAL out_cap too small,
 * SPK_ETOOBIG above SPK_SFRAME_MAX_FRAME. */
int spk_sframe_decrypt(spk_sframe_ctx_t *c, const uint8_t *metadata, size_t metadata_len,
                       const uint8_t *frame, size_t frame_len, uint8_t *out, size_t out_cap,
                       size_t *out_len, spk_sframe_header_t *hdr);

/* ---- keys from MLS (§5.2) ---- */

/* KID = context << (S + E) | leaf_index << E | epoch mod 2^E, where E is epoch_bits and S is
 * the number of bits of a leaf index: log2 of the group's leaf count (members and blank
 * leaves; the leaf count of an MLS tree is a power of two). */

typedef struct spk_sframe_mls spk_sframe_mls_t;

/* Epochs that may be kept at once (and the largest max_epochs). */
#define SPK_SFRAME_MLS_MAX_EPOCHS 16u
/* Largest epoch_bits. */
#define SPK_SFRAME_MLS_MAX_EPOCH_BITS 16u
/* Largest leaf count of a group (S <= 16). */
#define SPK_SFRAME_MLS_MAX_LEAVES 65536u

typedef struct {
    uint16_t suite;      /* SPK_SFRAME_*; 0 means SPK_SFRAME_AES_128_GCM_SHA256_128 */
    unsigned epoch_bits; /* E, 1 to SPK_SFRAME_MLS_MAX_EPOCH_BITS; 0 means 4 */
    unsigned max_epochs; /* epochs kept, 1 to min(2^E, SPK_SFRAME_MLS_MAX_EPOCHS); 0 means 3 */
} spk_sframe_mls_opts_t;

/* What a received frame was: its KID's parts and CTR. */
typedef struct {
    uint64_t epoch; /* the full MLS epoch the frame was encrypted in */
    uint32_t leaf;  /* the sender's leaf index in that epoch */
    uint64_t context;
    uint64_t kid;
    uint64_t ctr;
} spk_sframe_mls_sender_t;

/* opts may be NULL (all defaults). SPK_EINVAL for values out of range. *out is allocated;
 * free it with spk_sframe_mls_free. */
int spk_sframe_mls_create(spk_sframe_mls_t **out, const spk_sframe_mls_opts_t *opts);
/* Wipes every key and frees s. NULL-safe. */
void spk_sframe_mls_free(spk_sframe_mls_t *s);

/* Installs g's current epoch: base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk), with the
 * group's leaf count and this member's leaf. Call it after joining and after every processed
 * or merged Commit. The new epoch becomes the one frames are sent in; older ones stay for
 * receiving until evicted: an epoch with the same low E bits is removed (§5.2), then the oldest
 * beyond max_epochs. SPK_EEXIST when the epoch is installed already, SPK_ESTATE when it is not
 * newer than the newest installed epoch, SPK_ERANGE when the group has more than
 * SPK_SFRAME_MLS_MAX_LEAVES leaves. */
int spk_sframe_mls_add_epoch(spk_sframe_mls_t *s, const spk_mls_t *g);
/* The same from explicit values (base_key of Nk bytes), for keys exported elsewhere. */
int spk_sframe_mls_add_epoch_secret(spk_sframe_mls_t *s, uint64_t epoch, const uint8_t *base_key,
                                    size_t base_key_len, uint32_t leaf_count, uint32_t own_leaf);
/* Removes (and wipes) every epoch older than epoch, e.g. once frames of the previous epoch can
 * no longer be in flight. */
void spk_sframe_mls_drop_before(spk_sframe_mls_t *s, uint64_t epoch);
/* The newest installed epoch (the one frames are sent in); SPK_ENOTFOUND when none is. */
int spk_sframe_mls_send_epoch(const spk_sframe_mls_t *s, uint64_t *epoch);

/* The KID this member sends with in the newest epoch for context (a value the application
 * picks per outgoing stream, 0 for the shortest KID). SPK_EINVAL when context does not fit in
 * the 64 - S - E bits left, SPK_ENOTFOUND without an epoch. */
int spk_sframe_mls_kid(const spk_sframe_mls_t *s, uint64_t context, uint64_t *kid);
/* Encrypts pt in the newest epoch under this member's KID for context; as spk_sframe_encrypt
 * otherwise. */
int spk_sframe_mls_encrypt(spk_sframe_mls_t *s, uint64_t context, const uint8_t *metadata,
                           size_t metadata_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                           size_t out_cap, size_t *out_len);
/* Decrypts a frame of any member in any kept epoch, deriving that sender's key on its first
 * frame; sender (may be NULL) says who sent it in which epoch. SPK_ENOTFOUND when no kept
 * epoch has the KID's epoch bits, the leaf index is outside the epoch's tree or is this
 * member's own (its own frames are never decrypted: a key is for sending or receiving), or the
 * epoch holds SPK_SFRAME_MAX_KEYS keys already; otherwise as spk_sframe_decrypt. */
int spk_sframe_mls_decrypt(spk_sframe_mls_t *s, const uint8_t *metadata, size_t metadata_len,
                           const uint8_t *frame, size_t frame_len, uint8_t *out, size_t out_cap,
                           size_t *out_len, spk_sframe_mls_sender_t *sender);

#endif
