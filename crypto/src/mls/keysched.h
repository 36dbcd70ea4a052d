/* MLS key schedule (RFC 9420 §8): epoch secrets, PSK secret (§8.4), exporter (§8.5), external
 * key pair (§8.3), transcript hashes and confirmation tag (§8.2), Welcome key and nonce (§12.4.3).
 *
 * GroupContext travels as its TLS serialization (§8.1): build it with the struct codec and pass
 * the bytes. Secret-holding structs are caller-owned; wipe them with spk_mls_epoch_secrets_wipe.
 * Absent commit or PSK secrets are passed as NULL and mean 32 zero bytes. */
#ifndef SPK_MLS_KEYSCHED_H
#define SPK_MLS_KEYSCHED_H

#include <stddef.h>
#include <stdint.h>

#include "mls/codec.h"
#include "mls/prim.h"

typedef struct {
    uint8_t joiner_secret[SPK_MLS_HASH_LEN];
    uint8_t welcome_secret[SPK_MLS_HASH_LEN];
    uint8_t epoch_secret[SPK_MLS_HASH_LEN];
    uint8_t sender_data_secret[SPK_MLS_HASH_LEN];
    uint8_t encryption_secret[SPK_MLS_HASH_LEN];
    uint8_t exporter_secret[SPK_MLS_HASH_LEN];
    uint8_t external_secret[SPK_MLS_HASH_LEN];
    uint8_t confirmation_key[SPK_MLS_HASH_LEN];
    uint8_t membership_key[SPK_MLS_HASH_LEN];
    uint8_t resumption_psk[SPK_MLS_HASH_LEN];
    uint8_t epoch_authenticator[SPK_MLS_HASH_LEN];
    uint8_t init_secret[SPK_MLS_HASH_LEN]; /* the next epoch's init_secret */
} spk_mls_epoch_secrets_t;

/* joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext). */
int spk_mls_joiner_secret(const uint8_t init_secret[SPK_MLS_HASH_LEN], const uint8_t *commit_secret,
                          const uint8_t *group_context, size_t group_context_len,
                          uint8_t out[SPK_MLS_HASH_LEN]);
/* Everything below joiner_secret: welcome_secret, epoch_secret and the derived secrets. out is
 * written only on success (out->joiner_secret is set from joiner). */
int spk_mls_key_schedule_from_joiner(const uint8_t joiner[SPK_MLS_HASH_LEN],
                                     const uint8_t *psk_secret, const uint8_t *group_context,
                                     size_t group_context_len, spk_mls_epoch_secrets_t *out);
/* The whole epoch transition from the previous epoch's init_secret. */
int spk_mls_key_schedule(const uint8_t init_secret[SPK_MLS_HASH_LEN], const uint8_t *commit_secret,
                         const uint8_t *psk_secret, const uint8_t *group_context,
                         size_t group_context_len, spk_mls_epoch_secrets_t *out);
/* welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret), "welcome"). */
int spk_mls_welcome_secret(const uint8_t joiner[SPK_MLS_HASH_LEN], const uint8_t *psk_secret,
                           uint8_t out[SPK_MLS_HASH_LEN]);
/* welcome_key / welcome_nonce = ExpandWithLabel(welcome_secret, "key" | "nonce", "", N). */
int spk_mls_welcome_key_nonce(const uint8_t welcome_secret[SPK_MLS_HASH_LEN],
                              uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                              uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN]);
void spk_mls_epoch_secrets_wipe(spk_mls_epoch_secrets_t *s);

/* external_priv, external_pub = KEM.DeriveKeyPair(external_secret) (§8.3). */
int spk_mls_external_key_pair(const uint8_t external_secret[SPK_MLS_HASH_LEN],
                              uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN]);
/* MLS-Exporter(label, context, length) (§8.5); label is arbitrary bytes. */
int spk_mls_exporter(const uint8_t exporter_secret[SPK_MLS_HASH_LEN], const uint8_t *label,
                     size_t label_len, const uint8_t *context, size_t context_len, uint8_t *out,
                     size_t out_len);

/* ---- PSKs (§8.4) ---- */

#define SPK_MLS_PSKTYPE_EXTERNAL 1
#define SPK_MLS_PSKTYPE_RESUMPTION 2

/* One PSK for the psk_secret: its serialized PreSharedKeyID and its value (borrowed). */
typedef struct {
    const uint8_t *id;
    size_t id_len;
    const uint8_t *psk;
    size_t psk_len;
} spk_mls_psk_t;

/* Serialized PreSharedKeyID for an external PSK. */
int spk_mls_psk_id_external_write(spk_mls_writer_t *w, const uint8_t *psk_id, size_t psk_id_len,
                                  const uint8_t *nonce, size_t nonce_len);
/* Serialized PreSharedKeyID for a resumption PSK. */
int spk_mls_psk_id_resumption_write(spk_mls_writer_t *w, uint8_t usage, const uint8_t *group_id,
                                    size_t group_id_len, uint64_t epoch, const uint8_t *nonce,
                                    size_t nonce_len);
/* psk_secret over n PSKs in order (32 zero bytes when n == 0); n <= 65535. */
int spk_mls_psk_secret(const spk_mls_psk_t *psks, size_t n, uint8_t out[SPK_MLS_HASH_LEN]);

/* ---- transcript hashes (§8.2) ---- */

/* confirmed = Hash(interim_before || ConfirmedTranscriptHashInput), where the input is
 * wire_format || FramedContent || V(signature) as serialized bytes. interim_before may be empty
 * (epoch 0). */
int spk_mls_confirmed_transcript_hash(const uint8_t *interim_before, size_t interim_before_len,
                                      const uint8_t *input, size_t input_len,
                                      uint8_t out[SPK_MLS_HASH_LEN]);
/* interim = Hash(confirmed || V(confirmation_tag)). */
int spk_mls_interim_transcript_hash(const uint8_t confirmed[SPK_MLS_HASH_LEN],
                                    const uint8_t *confirmation_tag, size_t tag_len,
                                    uint8_t out[SPK_MLS_HASH_LEN]);
/* confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash). */
int spk_mls_confirmation_tag(const uint8_t confirmation_key[SPK_MLS_HASH_LEN],
                             const uint8_t confirmed[SPK_MLS_HASH_LEN],
                             uint8_t out[SPK_MLS_HASH_LEN]);
/* 0 when tag equals the expected confirmation tag (constant time), SPK_EVERIFY otherwise. */
int spk_mls_confirmation_tag_verify(const uint8_t confirmation_key[SPK_MLS_HASH_LEN],
                                    const uint8_t confirmed[SPK_MLS_HASH_LEN], const uint8_t *tag,
                                    size_t tag_len);

#endif
