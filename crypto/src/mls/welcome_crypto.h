/* Welcome cryptography (RFC 9420 §12.4.3): GroupSecrets encryption to a KeyPackage init key,
 * GroupInfo encryption under the welcome secret, and GroupInfo signatures (§12.4.3, §5.1.2).
 *
 * Joining (§12.4.3.1): find the entry for MakeKeyPackageRef(KeyPackage), decrypt GroupSecrets
 * with the init private key, compute psk_secret from its PSKs, decrypt the GroupInfo with the
 * welcome secret, verify its signature with the signer's leaf key, then run the key schedule
 * from joiner_secret and check the confirmation tag (spk_mls_group_info_check_confirmation). */
#ifndef SPK_MLS_WELCOME_CRYPTO_H
#define SPK_MLS_WELCOME_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "mls/keysched.h"
#include "mls/prim.h"
#include "mls/structs.h"

/* Finds the EncryptedGroupSecrets addressed to kp_ref (SPK_ENOTFOUND if none) and decrypts it:
 * DecryptWithLabel(init_priv, "Welcome", encrypted_group_info, kem_output, ciphertext). */
int spk_mls_welcome_open_secrets(const spk_mls_welcome_t *w, const uint8_t kp_ref[SPK_MLS_HASH_LEN],
                                 const uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN],
                                 spk_mls_group_secrets_t *out);
/* Encrypts GroupSecrets to a new member's init key; context is the encrypted GroupInfo. */
int spk_mls_welcome_seal_secrets(const spk_mls_group_secrets_t *gs, const uint8_t *init_pub,
                                 size_t init_pub_len, const spk_mls_bytes_t *encrypted_group_info,
                                 spk_mls_hpke_ciphertext_t *out);
/* Decrypts encrypted_group_info with the welcome_secret derived from joiner_secret and
 * psk_secret (NULL means zero) and decodes the GroupInfo. */
int spk_mls_welcome_open_group_info(const spk_mls_welcome_t *w,
                                    const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                    const uint8_t *psk_secret, spk_mls_group_info_t *out);
/* Serializes and encrypts a GroupInfo (empty AAD) for a Welcome. */
int spk_mls_welcome_seal_group_info(const spk_mls_group_info_t *gi,
                                    const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                    const uint8_t *psk_secret, spk_mls_bytes_t *out);

/* GroupInfo signature: SignWithLabel(., "GroupInfoTBS", GroupInfoTBS). sign replaces
 * gi->signature. verify returns 0 or SPK_EVERIFY. */
int spk_mls_group_info_sign(spk_mls_group_info_t *gi, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN]);
int spk_mls_group_info_verify(const spk_mls_group_info_t *gi, const uint8_t *sig_pub,
                              size_t sig_pub_len);

/* Runs the key schedule for the GroupInfo's epoch from joiner_secret and psk_secret and checks
 * its confirmation_tag (SPK_EVERIFY on mismatch). On success, secrets (if not NULL) receives the
 * epoch secrets. */
int spk_mls_group_info_check_confirmation(const spk_mls_group_info_t *gi,
                                          const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                          const uint8_t *psk_secret,
                                          spk_mls_epoch_secrets_t *secrets);

#endif
