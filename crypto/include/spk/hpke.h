/* HPKE (RFC 9180) for DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 and AES-128-GCM or the
 * export-only AEAD. Modes base, psk, auth and auth_psk; single-shot and context APIs.
 *
 * Contexts are caller-owned plain structs holding key material; release them with
 * spk_hpke_ctx_destroy, which wipes them. Functions return 0 or a negative SPK_E* code and leave
 * the context unchanged when they fail. */
#ifndef SPK_HPKE_H
#define SPK_HPKE_H

#include <stddef.h>
#include <stdint.h>

#define SPK_HPKE_KEM_X25519_SHA256 0x0020
#define SPK_HPKE_KDF_HKDF_SHA256 0x0001
#define SPK_HPKE_AEAD_AES128GCM 0x0001
#define SPK_HPKE_AEAD_EXPORT_ONLY 0xFFFF

#define SPK_HPKE_NSECRET 32 /* KEM shared secret */
#define SPK_HPKE_NENC 32
#define SPK_HPKE_NPK 32
#define SPK_HPKE_NSK 32
#define SPK_HPKE_NH 32
#define SPK_HPKE_NK 16
#define SPK_HPKE_NN 12
#define SPK_HPKE_NT 16

typedef enum {
    SPK_HPKE_MODE_BASE = 0,
    SPK_HPKE_MODE_PSK = 1,
    SPK_HPKE_MODE_AUTH = 2,
    SPK_HPKE_MODE_AUTH_PSK = 3,
} spk_hpke_mode_t;

/* Setup parameters; all pointers are borrowed for the duration of the call. psk and psk_id must
 * both be empty in base/auth mode and both non-empty in psk/auth_psk mode. */
typedef struct {
    spk_hpke_mode_t mode;
    uint16_t aead_id; /* SPK_HPKE_AEAD_AES128GCM or SPK_HPKE_AEAD_EXPORT_ONLY */
    const uint8_t *info;
    size_t info_len;
    const uint8_t *psk;
    size_t psk_len;
    const uint8_t *psk_id;
    size_t psk_id_len;
    const uint8_t *sk_s; /* auth modes, sender side: the sender's private key (32 bytes) */
    const uint8_t *pk_s; /* auth modes, receiver side: the sender's public key (32 bytes) */
} spk_hpke_params_t;

/* Encryption context (RFC 9180 §5.2). seq is the next sequence number; a test may set it. */
typedef struct {
    uint16_t aead_id;
    uint8_t key[SPK_HPKE_NK];
    uint8_t base_nonce[SPK_HPKE_NN];
    uint64_t seq;
    uint8_t exporter_secret[SPK_HPKE_NH];
} spk_hpke_ctx_t;

/* DeriveKeyPair(ikm) (§7.1.3); sk is the unclamped SerializePrivateKey output. */
int spk_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[SPK_HPKE_NSK],
                             uint8_t pk[SPK_HPKE_NPK]);
/* Fresh random key pair. */
int spk_hpke_generate_key_pair(uint8_t sk[SPK_HPKE_NSK], uint8_t pk[SPK_HPKE_NPK]);

/* SetupS: random ephemeral key; enc receives the encapsulated key. */
int spk_hpke_setup_sender(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params, const uint8_t *pk_r,
                          size_t pk_r_len, uint8_t enc[SPK_HPKE_NENC]);
/* SetupS with a given ephemeral private key (deterministic; for tests). */
int spk_hpke_setup_sender_with_ephemeral(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params,
                                         const uint8_t *pk_r, size_t pk_r_len,
                                         const uint8_t sk_e[SPK_HPKE_NSK],
                                         uint8_t enc[SPK_HPKE_NENC]);
/* SetupR. */
int spk_hpke_setup_receiver(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params,
                            const uint8_t *enc, size_t enc_len, const uint8_t sk_r[SPK_HPKE_NSK]);

/* Seal with nonce = base_nonce XOR seq, then seq++. ct receives pt_len + 16 bytes.
 * SPK_EINVAL for an export-only context, SPK_ERANGE when the sequence is exhausted. */
int spk_hpke_seal(spk_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                  size_t pt_len, uint8_t *ct);
/* Open; pt receives ct_len - 16 bytes. seq advances only on success (SPK_EVERIFY otherwise). */
int spk_hpke_open(spk_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                  size_t ct_len, uint8_t *pt);
/* Secret export (§5.3); out_len <= 255 * 32. */
int spk_hpke_export(const spk_hpke_ctx_t *ctx, const uint8_t *exporter_context,
                    size_t exporter_context_len, uint8_t *out, size_t out_len);
/* Wipes the context. NULL-safe. */
void spk_hpke_ctx_destroy(spk_hpke_ctx_t *ctx);

/* Single-shot Seal (§6.1): enc gets 32 bytes, ct pt_len + 16. */
int spk_hpke_seal_single(const spk_hpke_params_t *params, const uint8_t *pk_r, size_t pk_r_len,
                         const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                         uint8_t enc[SPK_HPKE_NENC], uint8_t *ct);
/* Single-shot Open: pt gets ct_len - 16 bytes. */
int spk_hpke_open_single(const spk_hpke_params_t *params, const uint8_t *enc, size_t enc_len,
                         const uint8_t sk_r[SPK_HPKE_NSK], const uint8_t *aad, size_t aad_len,
                         const uint8_t *ct, size_t ct_len, uint8_t *pt);

#endif
