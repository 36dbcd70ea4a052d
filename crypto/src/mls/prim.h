/* Cipher suite 1 primitives (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519) and the labelled
 * helpers of RFC 9420 §5.
 *
 * All functions return 0 or a negative SPK_E* code. Output buffers are caller-provided with the
 * sizes given by the constants below. Inputs and outputs may not overlap unless stated. */
#ifndef SPK_MLS_PRIM_H
#define SPK_MLS_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPK_MLS_CIPHER_SUITE 0x0001
#define SPK_MLS_HASH_LEN 32     /* SHA-256, KDF.Nh */
#define SPK_MLS_AEAD_KEY_LEN 16 /* AES-128-GCM Nk */
#define SPK_MLS_AEAD_NONCE_LEN 12
#define SPK_MLS_AEAD_TAG_LEN 16
#define SPK_MLS_KEM_PUB_LEN 32 /* X25519 */
#define SPK_MLS_KEM_PRIV_LEN 32
#define SPK_MLS_KEM_ENC_LEN 32
#define SPK_MLS_SIG_PUB_LEN 32  /* Ed25519 */
#define SPK_MLS_SIG_PRIV_LEN 32 /* Ed25519 seed */
#define SPK_MLS_SIG_LEN 64
#define SPK_MLS_HKDF_MAX_OUT (255 * SPK_MLS_HASH_LEN)

/* ---- hash, MAC, KDF ---- */

int spk_mls_sha256(const uint8_t *p, size_t n, uint8_t out[SPK_MLS_HASH_LEN]);
/* SHA-256 over the concatenation a || b. */
int spk_mls_sha256_2(const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                     uint8_t out[SPK_MLS_HASH_LEN]);
int spk_mls_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p, size_t n,
                        uint8_t out[SPK_MLS_HASH_LEN]);
/* HKDF-Extract (RFC 5869) on HMAC-SHA256; an empty salt means HashLen zero bytes. */
int spk_mls_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                         uint8_t prk[SPK_MLS_HASH_LEN]);
/* HKDF-Expand; out_len <= SPK_MLS_HKDF_MAX_OUT, any input size. */
int spk_mls_hkdf_expand(const uint8_t *prk, size_t prk_len, const uint8_t *info, size_t info_len,
                        uint8_t *out, size_t out_len);

/* ---- AEAD: AES-128-GCM ---- */

/* out receives pt_len + 16 bytes (ciphertext || tag). */
int spk_mls_aead_seal(const uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                      const uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN], const uint8_t *aad,
                      size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out);
/* out receives ct_len - 16 bytes. SPK_EVERIFY on a bad tag, SPK_ETRUNC if ct_len < 16. */
int spk_mls_aead_open(const uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                      const uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN], const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out);

/* ---- X25519 ---- */

/* Private keys are raw 32 bytes, accepted unclamped (clamping happens inside X25519). */
int spk_mls_x25519_keygen(uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN]);
int spk_mls_x25519_pub(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN]);
/* SPK_ECRYPTO on failure, including an all-zero shared secret (RFC 9180 §7.1.4). */
int spk_mls_x25519_dh(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                      const uint8_t peer_pub[SPK_MLS_KEM_PUB_LEN], uint8_t out[32]);
/* The same, also writing priv's public key to pub (when not NULL) at no extra cost. */
int spk_mls_x25519_dh_pub(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                          const uint8_t peer_pub[SPK_MLS_KEM_PUB_LEN], uint8_t out[32],
                          uint8_t *pub);

/* ---- Ed25519 ---- */

/* Fresh random seed and its public key. */
int spk_mls_ed25519_keygen(uint8_t seed[SPK_MLS_SIG_PRIV_LEN], uint8_t pub[SPK_MLS_SIG_PUB_LEN]);
int spk_mls_ed25519_pub(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], uint8_t pub[SPK_MLS_SIG_PUB_LEN]);
int spk_mls_ed25519_sign(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], const uint8_t *msg, size_t n,
                         uint8_t sig[SPK_MLS_SIG_LEN]);
/* 0 when valid, SPK_EVERIFY otherwise (including a wrong length of pub or sig). */
int spk_mls_ed25519_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t n,
                           const uint8_t *sig, size_t sig_len);

/* ---- labelled helpers (RFC 9420 §5) ---- */

/* ExpandWithLabel(secret, label, context, length) with KDFLabel =
 * uint16(length) || V("MLS 1.0 " + label) || V(context). */
int spk_mls_expand_with_label(const uint8_t *secret, size_t secret_len, const char *label,
                              const uint8_t *context, size_t context_len, uint8_t *out,
                              size_t out_len);
/* The same with a label of explicit length (arbitrary bytes). */
int spk_mls_expand_with_label_n(const uint8_t *secret, size_t secret_len, const uint8_t *label,
                                size_t label_len, const uint8_t *context, size_t context_len,
                                uint8_t *out, size_t out_len);
/* DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", 32). */
int spk_mls_derive_secret(const uint8_t *secret, size_t secret_len, const char *label,
                          uint8_t out[SPK_MLS_HASH_LEN]);
int spk_mls_derive_secret_n(const uint8_t *secret, size_t secret_len, const uint8_t *label,
                            size_t label_len, uint8_t out[SPK_MLS_HASH_LEN]);
/* DeriveTreeSecret(secret, label, generation, length) (§9). */
int spk_mls_derive_tree_secret(const uint8_t *secret, size_t secret_len, const char *label,
                               uint32_t generation, uint8_t *out, size_t out_len);
/* RefHash(label, value) = SHA256(V(label) || V(value)); label is used verbatim (§5.2). */
int spk_mls_ref_hash(const char *label, const uint8_t *value, size_t value_len,
                     uint8_t out[SPK_MLS_HASH_LEN]);
/* MakeKeyPackageRef over a serialized KeyPackage ("MLS 1.0 KeyPackage Reference"). */
int spk_mls_make_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t out[SPK_MLS_HASH_LEN]);
/* MakeProposalRef over a serialized AuthenticatedContent ("MLS 1.0 Proposal Reference"). */
int spk_mls_make_proposal_ref(const uint8_t *ac, size_t ac_len, uint8_t out[SPK_MLS_HASH_LEN]);

/* SignWithLabel: Ed25519 over SignContent = V("MLS 1.0 " + label) || V(content) (§5.1.2). */
int spk_mls_sign_with_label(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], const char *label,
                            const uint8_t *content, size_t content_len,
                            uint8_t sig[SPK_MLS_SIG_LEN]);
/* VerifyWithLabel: 0 when valid, SPK_EVERIFY otherwise. */
int spk_mls_verify_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                              const uint8_t *content, size_t content_len, const uint8_t *sig,
                              size_t sig_len);

/* EncryptWithLabel (§5.1.3): HPKE base-mode SealBase(pub, info, "", pt) with
 * info = V("MLS 1.0 " + label) || V(context). kem_output gets 32 bytes, ct pt_len + 16. */
int spk_mls_encrypt_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                               const uint8_t *context, size_t context_len, const uint8_t *pt,
                               size_t pt_len, uint8_t kem_output[SPK_MLS_KEM_ENC_LEN], uint8_t *ct);
/* DecryptWithLabel: pt receives ct_len - 16 bytes. SPK_EVERIFY if authentication fails. */
int spk_mls_decrypt_with_label(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN], const char *label,
                               const uint8_t *context, size_t context_len,
                               const uint8_t *kem_output, size_t kem_output_len, const uint8_t *ct,
                               size_t ct_len, uint8_t *pt);

/* HPKE DeriveKeyPair (RFC 9180 §7.1.3) for DHKEM(X25519, HKDF-SHA256); priv is unclamped. */
int spk_mls_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                            uint8_t pub[SPK_MLS_KEM_PUB_LEN]);

#endif
