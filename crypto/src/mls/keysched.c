/* MLS key schedule (RFC 9420 §8). */
#include "mls/keysched.h"

#include <string.h>

#include "spk/error.h"
#include "spk/util.h"

static const uint8_t zero_secret[SPK_MLS_HASH_LEN] = {0};

static const uint8_t *or_zero(const uint8_t *p)
{
    return p != NULL ? p : zero_secret;
}

int spk_mls_joiner_secret(const uint8_t init_secret[SPK_MLS_HASH_LEN], const uint8_t *commit_secret,
                          const uint8_t *group_context, size_t group_context_len,
                          uint8_t out[SPK_MLS_HASH_LEN])
{
    uint8_t prk[SPK_MLS_HASH_LEN];
    int rc = spk_mls_hkdf_extract(init_secret, SPK_MLS_HASH_LEN, or_zero(commit_secret),
                                  SPK_MLS_HASH_LEN, prk);
    if (rc == 0) {
        rc = spk_mls_expand_with_label(prk, sizeof prk, "joiner", group_context, group_context_len,
                                       out, SPK_MLS_HASH_LEN);
    }
    spk_wipe(prk, sizeof prk);
    return rc;
}

/* member_secret = Extract(joiner_secret, psk_secret). */
static int member_secret(const uint8_t joiner[SPK_MLS_HASH_LEN], const uint8_t *psk_secret,
                         uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_hkdf_extract(joiner, SPK_MLS_HASH_LEN, or_zero(psk_secret), SPK_MLS_HASH_LEN,
                                out);
}

int spk_mls_welcome_secret(const uint8_t joiner[SPK_MLS_HASH_LEN], const uint8_t *psk_secret,
                           uint8_t out[SPK_MLS_HASH_LEN])
{
    uint8_t m[SPK_MLS_HASH_LEN];
    int rc = member_secret(joiner, psk_secret, m);
    if (rc == 0) {
        rc = spk_mls_derive_secret(m, sizeof m, "welcome", out);
    }
    spk_wipe(m, sizeof m);
    return rc;
}

int spk_mls_welcome_key_nonce(const uint8_t welcome_secret[SPK_MLS_HASH_LEN],
                              uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                              uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN])
{
    int rc = spk_mls_expand_with_label(welcome_secret, SPK_MLS_HASH_LEN, "key", NULL, 0, key,
                                       SPK_MLS_AEAD_KEY_LEN);
    if (rc == 0) {
        rc = spk_mls_expand_with_label(welcome_secret, SPK_MLS_HASH_LEN, "nonce", NULL, 0, nonce,
                                       SPK_MLS_AEAD_NONCE_LEN);
    }
    return rc;
}

int spk_mls_key_schedule_from_joiner(const uint8_t joiner[SPK_MLS_HASH_LEN],
                                     const uint8_t *psk_secret, const uint8_t *group_context,
                                     size_t group_context_len, spk_mls_epoch_secrets_t *out)
{
    spk_mls_epoch_secrets_t s;
    uint8_t m[SPK_MLS_HASH_LEN];
    const uint8_t *e = s.epoch_secret;
    int rc = 0;

    memcpy(s.joiner_secret, joiner, SPK_MLS_HASH_LEN);
    rc = member_secret(joiner, psk_secret, m);
    rc = rc != 0 ? rc : spk_mls_derive_secret(m, sizeof m, "welcome", s.welcome_secret);
    rc = rc != 0 ? rc
                 : spk_mls_expand_with_label(m, sizeof m, "epoch", group_context, group_context_len,
                                             s.epoch_secret, SPK_MLS_HASH_LEN);
    /* Table of §8: secrets derived from epoch_secret. */
    const struct {
        const char *label;
        uint8_t *dst;
    } derived[] = {
        {"sender data", s.sender_data_secret},
        {"encryption", s.encryption_secret},
        {"exporter", s.exporter_secret},
        {"external", s.external_secret},
        {"confirm", s.confirmation_key},
        {"membership", s.membership_key},
        {"resumption", s.resumption_psk},
        {"authentication", s.epoch_authenticator},
        {"init", s.init_secret},
    };
    for (size_t i = 0; rc == 0 && i < sizeof derived / sizeof derived[0]; i++) {
        rc = spk_mls_derive_secret(e, SPK_MLS_HASH_LEN, derived[i].label, derived[i].dst);
    }
    if (rc == 0) {
        *out = s;
    }
    spk_wipe(m, sizeof m);
    spk_wipe(&s, sizeof s);
    return rc;
}

int spk_mls_key_schedule(const uint8_t init_secret[SPK_MLS_HASH_LEN], const uint8_t *commit_secret,
                         const uint8_t *psk_secret, const uint8_t *group_context,
                         size_t group_context_len, spk_mls_epoch_secrets_t *out)
{
    uint8_t joiner[SPK_MLS_HASH_LEN];
    int rc =
        spk_mls_joiner_secret(init_secret, commit_secret, group_context, group_context_len, joiner);
    if (rc == 0) {
        rc = spk_mls_key_schedule_from_joiner(joiner, psk_secret, group_context, group_context_len,
                                              out);
    }
    spk_wipe(joiner, sizeof joiner);
    return rc;
}

void spk_mls_epoch_secrets_wipe(spk_mls_epoch_secrets_t *s)
{
    if (s != NULL) {
        spk_wipe(s, sizeof *s);
    }
}

int spk_mls_external_key_pair(const uint8_t external_secret[SPK_MLS_HASH_LEN],
                              uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN])
{
    return spk_mls_derive_key_pair(external_secret, SPK_MLS_HASH_LEN, priv, pub);
}

int spk_mls_exporter(const uint8_t exporter_secret[SPK_MLS_HASH_LEN], const uint8_t *label,
                     size_t label_len, const uint8_t *context, size_t context_len, uint8_t *out,
                     size_t out_len)
{
    uint8_t derived[SPK_MLS_HASH_LEN];
    uint8_t ctx_hash[SPK_MLS_HASH_LEN];
    int rc = spk_mls_derive_secret_n(exporter_secret, SPK_MLS_HASH_LEN, label, label_len, derived);
    rc = rc != 0 ? rc : spk_mls_sha256(context, context_len, ctx_hash);
    rc = rc != 0 ? rc
                 : spk_mls_expand_with_label(derived, sizeof derived, "exported", ctx_hash,
                                             sizeof ctx_hash, out, out_len);
    spk_wipe(derived, sizeof derived);
    return rc;
}

/* ---- PSKs ---- */

int spk_mls_psk_id_external_write(spk_mls_writer_t *w, const uint8_t *psk_id, size_t psk_id_len,
                                  const uint8_t *nonce, size_t nonce_len)
{
    spk_mls_write_u8(w, SPK_MLS_PSKTYPE_EXTERNAL);
    spk_mls_write_opaque_v(w, psk_id, psk_id_len);
    return spk_mls_write_opaque_v(w, nonce, nonce_len);
}

int spk_mls_psk_id_resumption_write(spk_mls_writer_t *w, uint8_t usage, const uint8_t *group_id,
                                    size_t group_id_len, uint64_t epoch, const uint8_t *nonce,
                                    size_t nonce_len)
{
    spk_mls_write_u8(w, SPK_MLS_PSKTYPE_RESUMPTION);
    spk_mls_write_u8(w, usage);
    spk_mls_write_opaque_v(w, group_id, group_id_len);
    spk_mls_write_u64(w, epoch);
    return spk_mls_write_opaque_v(w, nonce, nonce_len);
}

/* psk_input_i = ExpandWithLabel(Extract(0, psk_i), "derived psk", PSKLabel_i, KDF.Nh) with
 * PSKLabel = PreSharedKeyID || uint16 index || uint16 count. */
static int psk_input(const spk_mls_psk_t *p, uint16_t index, uint16_t count,
                     uint8_t out[SPK_MLS_HASH_LEN])
{
    uint8_t extracted[SPK_MLS_HASH_LEN];
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_write_bytes(&w, p->id, p->id_len);
    spk_mls_write_u16(&w, index);
    spk_mls_write_u16(&w, count);
    int rc = w.err;
    rc = rc != 0 ? rc : spk_mls_hkdf_extract(NULL, 0, p->psk, p->psk_len, extracted);
    rc = rc != 0 ? rc
                 : spk_mls_expand_with_label(extracted, sizeof extracted, "derived psk", w.buf,
                                             w.len, out, SPK_MLS_HASH_LEN);
    spk_wipe(extracted, sizeof extracted);
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_psk_secret(const spk_mls_psk_t *psks, size_t n, uint8_t out[SPK_MLS_HASH_LEN])
{
    uint8_t acc[SPK_MLS_HASH_LEN] = {0};
    uint8_t input[SPK_MLS_HASH_LEN];
    int rc = 0;
    if (n > UINT16_MAX || (n > 0 && psks == NULL)) {
        return SPK_EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = psk_input(&psks[i], (uint16_t)i, (uint16_t)n, input);
        /* psk_secret_[i+1] = Extract(psk_input_i, psk_secret_[i]) */
        rc = rc != 0 ? rc : spk_mls_hkdf_extract(input, sizeof input, acc, sizeof acc, acc);
    }
    if (rc == 0) {
        memcpy(out, acc, SPK_MLS_HASH_LEN);
    }
    spk_wipe(acc, sizeof acc);
    spk_wipe(input, sizeof input);
    return rc;
}

/* ---- transcript hashes ---- */

int spk_mls_confirmed_transcript_hash(const uint8_t *interim_before, size_t interim_before_len,
                                      const uint8_t *input, size_t input_len,
                                      uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_sha256_2(interim_before, interim_before_len, input, input_len, out);
}

int spk_mls_interim_transcript_hash(const uint8_t confirmed[SPK_MLS_HASH_LEN],
                                    const uint8_t *confirmation_tag, size_t tag_len,
                                    uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_write_bytes(&w, confirmed, SPK_MLS_HASH_LEN);
    spk_mls_write_opaque_v(&w, confirmation_tag, tag_len);
    int rc = w.err;
    if (rc == 0) {
        rc = spk_mls_sha256(w.buf, w.len, out);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_confirmation_tag(const uint8_t confirmation_key[SPK_MLS_HASH_LEN],
                             const uint8_t confirmed[SPK_MLS_HASH_LEN],
                             uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_hmac_sha256(confirmation_key, SPK_MLS_HASH_LEN, confirmed, SPK_MLS_HASH_LEN,
                               out);
}

int spk_mls_confirmation_tag_verify(const uint8_t confirmation_key[SPK_MLS_HASH_LEN],
                                    const uint8_t confirmed[SPK_MLS_HASH_LEN], const uint8_t *tag,
                                    size_t tag_len)
{
    uint8_t want[SPK_MLS_HASH_LEN];
    int rc = spk_mls_confirmation_tag(confirmation_key, confirmed, want);
    if (rc != 0) {
        return rc;
    }
    if (tag == NULL || tag_len != sizeof want || !spk_ct_equal(tag, want, sizeof want)) {
        return SPK_EVERIFY;
    }
    return 0;
}
