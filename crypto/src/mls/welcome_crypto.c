/* Welcome cryptography (RFC 9420 §12.4.3). */
#include "mls/welcome_crypto.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/util.h"

#define WELCOME_LABEL "Welcome"

int spk_mls_welcome_open_secrets(const spk_mls_welcome_t *w, const uint8_t kp_ref[SPK_MLS_HASH_LEN],
                                 const uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN],
                                 spk_mls_group_secrets_t *out)
{
    const spk_mls_hpke_ciphertext_t *ct = NULL;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < w->n_secrets; i++) {
        const spk_mls_bytes_t *ref = &w->secrets[i].new_member;
        if (spk_mls_bytes_eq_raw(ref, kp_ref, SPK_MLS_HASH_LEN)) {
            ct = &w->secrets[i].encrypted_group_secrets;
            break;
        }
    }
    if (ct == NULL) {
        return SPK_ENOTFOUND;
    }
    if (ct->ciphertext.n < SPK_MLS_AEAD_TAG_LEN) {
        return SPK_ETRUNC;
    }
    size_t n = ct->ciphertext.n - SPK_MLS_AEAD_TAG_LEN;
    uint8_t *pt = malloc(n + 1);
    if (pt == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_mls_decrypt_with_label(init_priv, WELCOME_LABEL, w->encrypted_group_info.p,
                                        w->encrypted_group_info.n, ct->kem_output.p,
                                        ct->kem_output.n, ct->ciphertext.p, ct->ciphertext.n, pt);
    rc = rc != 0 ? rc : spk_mls_group_secrets_decode(out, pt, n);
    spk_wipe(pt, n);
    free(pt);
    return rc;
}

int spk_mls_welcome_seal_secrets(const spk_mls_group_secrets_t *gs, const uint8_t *init_pub,
                                 size_t init_pub_len, const spk_mls_bytes_t *encrypted_group_info,
                                 spk_mls_hpke_ciphertext_t *out)
{
    spk_mls_bytes_t pt = {0};
    uint8_t kem[SPK_MLS_KEM_ENC_LEN];
    memset(out, 0, sizeof *out);
    int rc = spk_mls_group_secrets_encode(gs, &pt);
    if (rc == 0) {
        out->ciphertext.n = pt.n + SPK_MLS_AEAD_TAG_LEN;
        out->ciphertext.p = malloc(out->ciphertext.n);
        rc = out->ciphertext.p != NULL ? 0 : SPK_ENOMEM;
    }
    rc = rc != 0 ? rc
                 : spk_mls_encrypt_with_label(init_pub, init_pub_len, WELCOME_LABEL,
                                              encrypted_group_info->p, encrypted_group_info->n,
                                              pt.p, pt.n, kem, out->ciphertext.p);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&out->kem_output, kem, sizeof kem);
    if (rc != 0) {
        spk_mls_hpke_ciphertext_free(out);
    }
    spk_mls_bytes_free(&pt);
    return rc;
}

static int welcome_key_nonce(const uint8_t joiner[SPK_MLS_HASH_LEN], const uint8_t *psk_secret,
                             uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    uint8_t ws[SPK_MLS_HASH_LEN];
    int rc = spk_mls_welcome_secret(joiner, psk_secret, ws);
    rc = rc != 0 ? rc : spk_mls_welcome_key_nonce(ws, key, nonce);
    spk_wipe(ws, sizeof ws);
    return rc;
}

int spk_mls_welcome_open_group_info(const spk_mls_welcome_t *w,
                                    const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                    const uint8_t *psk_secret, spk_mls_group_info_t *out)
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN];
    const spk_mls_bytes_t *egi = &w->encrypted_group_info;
    memset(out, 0, sizeof *out);
    if (egi->n < SPK_MLS_AEAD_TAG_LEN) {
        return SPK_ETRUNC;
    }
    size_t n = egi->n - SPK_MLS_AEAD_TAG_LEN;
    uint8_t *pt = malloc(n + 1);
    if (pt == NULL) {
        return SPK_ENOMEM;
    }
    int rc = welcome_key_nonce(joiner_secret, psk_secret, key, nonce);
    rc = rc != 0 ? rc : spk_mls_aead_open(key, nonce, NULL, 0, egi->p, egi->n, pt);
    rc = rc != 0 ? rc : spk_mls_group_info_decode(out, pt, n);
    spk_wipe(pt, n);
    free(pt);
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    return rc;
}

int spk_mls_welcome_seal_group_info(const spk_mls_group_info_t *gi,
                                    const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                    const uint8_t *psk_secret, spk_mls_bytes_t *out)
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN];
    spk_mls_bytes_t pt = {0};
    out->p = NULL;
    out->n = 0;
    int rc = spk_mls_group_info_encode(gi, &pt);
    rc = rc != 0 ? rc : welcome_key_nonce(joiner_secret, psk_secret, key, nonce);
    if (rc == 0) {
        out->n = pt.n + SPK_MLS_AEAD_TAG_LEN;
        out->p = malloc(out->n);
        rc = out->p != NULL ? 0 : SPK_ENOMEM;
    }
    rc = rc != 0 ? rc : spk_mls_aead_seal(key, nonce, NULL, 0, pt.p, pt.n, out->p);
    if (rc != 0) {
        spk_mls_bytes_free(out);
    }
    spk_mls_bytes_free(&pt);
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    return rc;
}

int spk_mls_group_info_sign(spk_mls_group_info_t *gi, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN])
{
    spk_mls_writer_t w;
    spk_mls_bytes_t sig = {0};
    uint8_t raw[SPK_MLS_SIG_LEN];
    spk_mls_writer_init(&w);
    int rc = spk_mls_group_info_tbs_write(&w, gi);
    rc = rc != 0 ? rc : spk_mls_sign_with_label(sig_priv, "GroupInfoTBS", w.buf, w.len, raw);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&sig, raw, sizeof raw);
    if (rc == 0) {
        spk_mls_bytes_free(&gi->signature);
        gi->signature = sig;
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_group_info_verify(const spk_mls_group_info_t *gi, const uint8_t *sig_pub,
                              size_t sig_pub_len)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    int rc = spk_mls_group_info_tbs_write(&w, gi);
    rc = rc != 0 ? rc
                 : spk_mls_verify_with_label(sig_pub, sig_pub_len, "GroupInfoTBS", w.buf, w.len,
                                             gi->signature.p, gi->signature.n);
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_group_info_check_confirmation(const spk_mls_group_info_t *gi,
                                          const uint8_t joiner_secret[SPK_MLS_HASH_LEN],
                                          const uint8_t *psk_secret,
                                          spk_mls_epoch_secrets_t *secrets)
{
    spk_mls_bytes_t gc = {0};
    spk_mls_epoch_secrets_t s;
    const spk_mls_bytes_t *cth = &gi->group_context.confirmed_transcript_hash;
    memset(&s, 0, sizeof s);
    if (cth->n != SPK_MLS_HASH_LEN) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_group_context_encode(&gi->group_context, &gc);
    rc = rc != 0 ? rc : spk_mls_key_schedule_from_joiner(joiner_secret, psk_secret, gc.p, gc.n, &s);
    rc = rc != 0 ? rc
                 : spk_mls_confirmation_tag_verify(s.confirmation_key, cth->p,
                                                   gi->confirmation_tag.p, gi->confirmation_tag.n);
    if (rc == 0 && secrets != NULL) {
        *secrets = s;
    }
    spk_mls_epoch_secrets_wipe(&s);
    spk_mls_bytes_free(&gc);
    return rc;
}
