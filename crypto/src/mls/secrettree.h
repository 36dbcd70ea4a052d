/* Secret tree and per-sender ratchets (RFC 9420 §9, §9.1, §9.2) and the sender-data key and
 * nonce (§6.3.2).
 *
 * The tree derives node secrets lazily from encryption_secret and deletes each parent secret
 * once both children exist, and each leaf secret once its two ratchets exist (§9.2). A ratchet
 * keeps the secret of its next generation plus a bounded window of keys for generations that
 * were skipped (out-of-order delivery):
 *   - a lookup may jump at most SPK_MLS_RATCHET_MAX_FORWARD generations beyond the next one;
 *   - at most SPK_MLS_RATCHET_MAX_SKIPPED skipped keys are retained per ratchet; the oldest is
 *     evicted (and wiped) first.
 * Keys are deleted once consumed: a generation can be consumed only once.
 *
 * spk_mls_secret_tree_peek never changes state; spk_mls_secret_tree_consume and _next commit.
 * A receiver peeks, decrypts, and consumes only after authentication succeeded. */
#ifndef SPK_MLS_SECRETTREE_H
#define SPK_MLS_SECRETTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mls/prim.h"

#define SPK_MLS_RATCHET_MAX_FORWARD 1024
#define SPK_MLS_RATCHET_MAX_SKIPPED 256

typedef enum {
    SPK_MLS_RATCHET_HANDSHAKE = 0,
    SPK_MLS_RATCHET_APPLICATION = 1,
} spk_mls_ratchet_type_t;

typedef struct {
    uint32_t generation;
    uint8_t key[SPK_MLS_AEAD_KEY_LEN];
    uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN];
} spk_mls_ratchet_key_t;

typedef struct {
    bool ready;
    uint32_t next_gen;                /* generation of `secret` */
    uint8_t secret[SPK_MLS_HASH_LEN]; /* ratchet secret at next_gen */
    spk_mls_ratchet_key_t *skipped;   /* unused keys of generations < next_gen */
    size_t n_skipped;
} spk_mls_ratchet_t;

typedef struct {
    uint32_t n_leaves;
    uint32_t width;
    uint8_t (*node)[SPK_MLS_HASH_LEN]; /* node secrets, valid where present[i] */
    uint8_t *present;
    spk_mls_ratchet_t *ratchets; /* 2 per leaf: [2 * leaf + type] */
} spk_mls_secret_tree_t;

/* n_leaves is a power of two (perfect tree, §4), at most 2^30; SPK_EINVAL otherwise. */
int spk_mls_secret_tree_init(spk_mls_secret_tree_t *st,
                             const uint8_t encryption_secret[SPK_MLS_HASH_LEN], uint32_t n_leaves);
/* Wipes every secret and frees. NULL-safe; st may be zeroed memory. */
void spk_mls_secret_tree_free(spk_mls_secret_tree_t *st);

/* Key and nonce of (leaf, type, generation) without changing state. SPK_EINVAL for a bad leaf,
 * SPK_ENOTFOUND when the generation was consumed or evicted, SPK_ERANGE beyond the window. */
int spk_mls_secret_tree_peek(spk_mls_secret_tree_t *st, uint32_t leaf, spk_mls_ratchet_type_t type,
                             uint32_t generation, uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN]);
/* The same, then deletes the key (advancing the ratchet and caching skipped keys as needed). */
int spk_mls_secret_tree_consume(spk_mls_secret_tree_t *st, uint32_t leaf,
                                spk_mls_ratchet_type_t type, uint32_t generation,
                                uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                                uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN]);
/* Sender side: consumes the next generation of the leaf's own ratchet. */
int spk_mls_secret_tree_next(spk_mls_secret_tree_t *st, uint32_t leaf, spk_mls_ratchet_type_t type,
                             uint32_t *generation, uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN]);

/* sender_data key and nonce from the first KDF.Nh bytes of the ciphertext (all of it if
 * shorter) (§6.3.2). */
int spk_mls_sender_data_key_nonce(const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                  const uint8_t *ciphertext, size_t ciphertext_len,
                                  uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                                  uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN]);

#endif
