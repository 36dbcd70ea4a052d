/* HPKE (RFC 9180): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM / export-only. */
#include "spk/hpke.h"

#include <stdbool.h>
#include <string.h>

#include "mls/codec.h"
#include "mls/prim.h"
#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#define HPKE_VERSION_LABEL "HPKE-v1"
#define SUITE_ID_MAX 10

typedef struct {
    uint8_t id[SUITE_ID_MAX];
    size_t len;
} suite_id_t;

static void kem_suite_id(suite_id_t *s)
{
    memcpy(s->id, "KEM", 3);
    s->id[3] = SPK_HPKE_KEM_X25519_SHA256 >> 8;
    s->id[4] = SPK_HPKE_KEM_X25519_SHA256 & 0xff;
    s->len = 5;
}

static void hpke_suite_id(suite_id_t *s, uint16_t aead_id)
{
    memcpy(s->id, "HPKE", 4);
    s->id[4] = SPK_HPKE_KEM_X25519_SHA256 >> 8;
    s->id[5] = SPK_HPKE_KEM_X25519_SHA256 & 0xff;
    s->id[6] = SPK_HPKE_KDF_HKDF_SHA256 >> 8;
    s->id[7] = SPK_HPKE_KDF_HKDF_SHA256 & 0xff;
    s->id[8] = (uint8_t)(aead_id >> 8);
    s->id[9] = (uint8_t)aead_id;
    s->len = 10;
}

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
static int labeled_extract(const suite_id_t *s, const uint8_t *salt, size_t salt_len,
                           const char *label, const uint8_t *ikm, size_t ikm_len,
                           uint8_t out[SPK_HPKE_NH])
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_write_bytes(&w, (const uint8_t *)HPKE_VERSION_LABEL, strlen(HPKE_VERSION_LABEL));
    spk_mls_write_bytes(&w, s->id, s->len);
    spk_mls_write_bytes(&w, (const uint8_t *)label, strlen(label));
    spk_mls_write_bytes(&w, ikm, ikm_len);
    int rc = w.err;
    if (rc == 0) {
        rc = spk_mls_hkdf_extract(salt, salt_len, w.buf, w.len, out);
    }
    spk_mls_writer_free(&w);
    return rc;
}

/* LabeledExpand(prk, label, info, L) = Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id ||
 * label || info, L). */
static int labeled_expand(const suite_id_t *s, const uint8_t *prk, const char *label,
                          const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    spk_mls_writer_t w;
    if (out_len > SPK_MLS_HKDF_MAX_OUT) {
        return SPK_EINVAL;
    }
    spk_mls_writer_init(&w);
    spk_mls_write_u16(&w, (uint16_t)out_len);
    spk_mls_write_bytes(&w, (const uint8_t *)HPKE_VERSION_LABEL, strlen(HPKE_VERSION_LABEL));
    spk_mls_write_bytes(&w, s->id, s->len);
    spk_mls_write_bytes(&w, (const uint8_t *)label, strlen(label));
    spk_mls_write_bytes(&w, info, info_len);
    int rc = w.err;
    if (rc == 0) {
        rc = spk_mls_hkdf_expand(prk, SPK_HPKE_NH, w.buf, w.len, out, out_len);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[SPK_HPKE_NSK],
                             uint8_t pk[SPK_HPKE_NPK])
{
    suite_id_t s;
    uint8_t prk[SPK_HPKE_NH];
    kem_suite_id(&s);
    int rc = labeled_extract(&s, NULL, 0, "dkp_prk", ikm, ikm_len, prk);
    if (rc == 0) {
        rc = labeled_expand(&s, prk, "sk", NULL, 0, sk, SPK_HPKE_NSK);
    }
    if (rc == 0) {
        rc = spk_mls_x25519_pub(sk, pk);
    }
    spk_wipe(prk, sizeof prk);
    if (rc != 0) {
        spk_wipe(sk, SPK_HPKE_NSK);
    }
    return rc;
}

int spk_hpke_generate_key_pair(uint8_t sk[SPK_HPKE_NSK], uint8_t pk[SPK_HPKE_NPK])
{
    return spk_mls_x25519_keygen(sk, pk);
}

/* ExtractAndExpand(dh, kem_context) (§4.1). */
static int extract_and_expand(const uint8_t *dh, size_t dh_len, const uint8_t *kem_ctx,
                              size_t kem_ctx_len, uint8_t shared[SPK_HPKE_NSECRET])
{
    suite_id_t s;
    uint8_t prk[SPK_HPKE_NH];
    kem_suite_id(&s);
    int rc = labeled_extract(&s, NULL, 0, "eae_prk", dh, dh_len, prk);
    if (rc == 0) {
        rc = labeled_expand(&s, prk, "shared_secret", kem_ctx, kem_ctx_len, shared,
                            SPK_HPKE_NSECRET);
    }
    spk_wipe(prk, sizeof prk);
    return rc;
}

static bool is_auth(spk_hpke_mode_t m)
{
    return m == SPK_HPKE_MODE_AUTH || m == SPK_HPKE_MODE_AUTH_PSK;
}

static bool is_psk(spk_hpke_mode_t m)
{
    return m == SPK_HPKE_MODE_PSK || m == SPK_HPKE_MODE_AUTH_PSK;
}

/* VerifyPSKInputs (§5.1) plus the parameter checks of this API. */
static int check_params(const spk_hpke_params_t *p, bool sender)
{
    if (p == NULL || (int)p->mode < 0 || p->mode > SPK_HPKE_MODE_AUTH_PSK) {
        return SPK_EINVAL;
    }
    if (p->aead_id != SPK_HPKE_AEAD_AES128GCM && p->aead_id != SPK_HPKE_AEAD_EXPORT_ONLY) {
        return SPK_EINVAL;
    }
    bool got_psk = p->psk_len > 0;
    bool got_id = p->psk_id_len > 0;
    if (got_psk != got_id || got_psk != is_psk(p->mode)) {
        return SPK_EINVAL;
    }
    if (is_auth(p->mode) && (sender ? p->sk_s == NULL : p->pk_s == NULL)) {
        return SPK_EINVAL;
    }
    if ((p->info_len > 0 && p->info == NULL) || (got_psk && (!p->psk || !p->psk_id))) {
        return SPK_EINVAL;
    }
    return 0;
}

/* KeySchedule (§5.1). */
static int key_schedule(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *p,
                        const uint8_t shared[SPK_HPKE_NSECRET])
{
    suite_id_t s;
    uint8_t ksc[1 + 2 * SPK_HPKE_NH];
    uint8_t secret[SPK_HPKE_NH];
    spk_hpke_ctx_t out;

    memset(&out, 0, sizeof out);
    hpke_suite_id(&s, p->aead_id);
    ksc[0] = (uint8_t)p->mode;
    int rc = labeled_extract(&s, NULL, 0, "psk_id_hash", p->psk_id, p->psk_id_len, ksc + 1);
    if (rc == 0) {
        rc = labeled_extract(&s, NULL, 0, "info_hash", p->info, p->info_len, ksc + 1 + SPK_HPKE_NH);
    }
    if (rc == 0) {
        rc = labeled_extract(&s, shared, SPK_HPKE_NSECRET, "secret", p->psk, p->psk_len, secret);
    }
    if (rc == 0 && p->aead_id != SPK_HPKE_AEAD_EXPORT_ONLY) {
        rc = labeled_expand(&s, secret, "key", ksc, sizeof ksc, out.key, SPK_HPKE_NK);
        if (rc == 0) {
            rc = labeled_expand(&s, secret, "base_nonce", ksc, sizeof ksc, out.base_nonce,
                                SPK_HPKE_NN);
        }
    }
    if (rc == 0) {
        rc = labeled_expand(&s, secret, "exp", ksc, sizeof ksc, out.exporter_secret, SPK_HPKE_NH);
    }
    out.aead_id = p->aead_id;
    if (rc == 0) {
        *ctx = out;
    }
    spk_wipe(&out, sizeof out);
    spk_wipe(secret, sizeof secret);
    return rc;
}

int spk_hpke_setup_sender_with_ephemeral(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params,
                                         const uint8_t *pk_r, size_t pk_r_len,
                                         const uint8_t sk_e[SPK_HPKE_NSK],
                                         uint8_t enc[SPK_HPKE_NENC])
{
    uint8_t dh[64];
    uint8_t kem_ctx[3 * SPK_HPKE_NPK];
    uint8_t shared[SPK_HPKE_NSECRET];
    size_t dh_len = 32;
    size_t kem_ctx_len = 2 * SPK_HPKE_NPK;

    int rc = check_params(params, true);
    if (rc == 0 && (pk_r == NULL || pk_r_len != SPK_HPKE_NPK)) {
        rc = SPK_EINVAL;
    }
    /* Encap / AuthEncap (§4.1). */
    rc = rc != 0 ? rc : spk_mls_x25519_dh_pub(sk_e, pk_r, dh, kem_ctx);
    if (rc == 0) {
        memcpy(kem_ctx + SPK_HPKE_NPK, pk_r, SPK_HPKE_NPK);
    }
    if (rc == 0 && is_auth(params->mode)) {
        rc = spk_mls_x25519_dh(params->sk_s, pk_r, dh + 32);
        dh_len = 64;
        rc = rc != 0 ? rc : spk_mls_x25519_pub(params->sk_s, kem_ctx + 2 * SPK_HPKE_NPK);
        kem_ctx_len = 3 * SPK_HPKE_NPK;
    }
    rc = rc != 0 ? rc : extract_and_expand(dh, dh_len, kem_ctx, kem_ctx_len, shared);
    rc = rc != 0 ? rc : key_schedule(ctx, params, shared);
    if (rc == 0) {
        memcpy(enc, kem_ctx, SPK_HPKE_NENC);
    }
    spk_wipe(dh, sizeof dh);
    spk_wipe(shared, sizeof shared);
    return rc;
}

int spk_hpke_setup_sender(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params, const uint8_t *pk_r,
                          size_t pk_r_len, uint8_t enc[SPK_HPKE_NENC])
{
    uint8_t sk_e[SPK_HPKE_NSK];
    /* Any 32 random bytes are an X25519 private key; its public key is derived once, with the
     * shared secret, in spk_hpke_setup_sender_with_ephemeral. */
    int rc = spk_random_bytes(sk_e, sizeof sk_e);
    if (rc == 0) {
        rc = spk_hpke_setup_sender_with_ephemeral(ctx, params, pk_r, pk_r_len, sk_e, enc);
    }
    spk_wipe(sk_e, sizeof sk_e);
    return rc;
}

int spk_hpke_setup_receiver(spk_hpke_ctx_t *ctx, const spk_hpke_params_t *params,
                            const uint8_t *enc, size_t enc_len, const uint8_t sk_r[SPK_HPKE_NSK])
{
    uint8_t dh[64];
    uint8_t kem_ctx[3 * SPK_HPKE_NPK];
    uint8_t shared[SPK_HPKE_NSECRET];
    size_t dh_len = 32;
    size_t kem_ctx_len = 2 * SPK_HPKE_NPK;

    int rc = check_params(params, false);
    if (rc == 0 && (enc == NULL || enc_len != SPK_HPKE_NENC)) {
        rc = SPK_EDECODE;
    }
    /* Decap / AuthDecap (§4.1). */
    rc = rc != 0 ? rc : spk_mls_x25519_dh_pub(sk_r, enc, dh, kem_ctx + SPK_HPKE_NENC);
    if (rc == 0) {
        memcpy(kem_ctx, enc, SPK_HPKE_NENC);
    }
    if (rc == 0 && is_auth(params->mode)) {
        rc = spk_mls_x25519_dh(sk_r, params->pk_s, dh + 32);
        dh_len = 64;
        memcpy(kem_ctx + 2 * SPK_HPKE_NPK, params->pk_s, SPK_HPKE_NPK);
        kem_ctx_len = 3 * SPK_HPKE_NPK;
    }
    rc = rc != 0 ? rc : extract_and_expand(dh, dh_len, kem_ctx, kem_ctx_len, shared);
    rc = rc != 0 ? rc : key_schedule(ctx, params, shared);
    spk_wipe(dh, sizeof dh);
    spk_wipe(shared, sizeof shared);
    return rc;
}

/* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn) (§5.2). */
static void compute_nonce(const spk_hpke_ctx_t *ctx, uint8_t nonce[SPK_HPKE_NN])
{
    memcpy(nonce, ctx->base_nonce, SPK_HPKE_NN);
    for (size_t i = 0; i < 8; i++) {
        nonce[SPK_HPKE_NN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
    }
}

int spk_hpke_seal(spk_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                  size_t pt_len, uint8_t *ct)
{
    uint8_t nonce[SPK_HPKE_NN];
    if (ctx->aead_id != SPK_HPKE_AEAD_AES128GCM) {
        return SPK_EINVAL;
    }
    /* The sequence is a uint64 here, far below 2^96 - 1; refuse to wrap it. */
    if (ctx->seq == UINT64_MAX) {
        return SPK_ERANGE;
    }
    compute_nonce(ctx, nonce);
    int rc = spk_mls_aead_seal(ctx->key, nonce, aad, aad_len, pt, pt_len, ct);
    if (rc == 0) {
        ctx->seq++;
    }
    return rc;
}

int spk_hpke_open(spk_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                  size_t ct_len, uint8_t *pt)
{
    uint8_t nonce[SPK_HPKE_NN];
    if (ctx->aead_id != SPK_HPKE_AEAD_AES128GCM) {
        return SPK_EINVAL;
    }
    if (ctx->seq == UINT64_MAX) {
        return SPK_ERANGE;
    }
    compute_nonce(ctx, nonce);
    int rc = spk_mls_aead_open(ctx->key, nonce, aad, aad_len, ct, ct_len, pt);
    if (rc == 0) {
        ctx->seq++;
    }
    return rc;
}

int spk_hpke_export(const spk_hpke_ctx_t *ctx, const uint8_t *exporter_context,
                    size_t exporter_context_len, uint8_t *out, size_t out_len)
{
    suite_id_t s;
    hpke_suite_id(&s, ctx->aead_id);
    return labeled_expand(&s, ctx->exporter_secret, "sec", exporter_context, exporter_context_len,
                          out, out_len);
}

void spk_hpke_ctx_destroy(spk_hpke_ctx_t *ctx)
{
    if (ctx != NULL) {
        spk_wipe(ctx, sizeof *ctx);
    }
}

int spk_hpke_seal_single(const spk_hpke_params_t *params, const uint8_t *pk_r, size_t pk_r_len,
                         const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                         uint8_t enc[SPK_HPKE_NENC], uint8_t *ct)
{
    spk_hpke_ctx_t ctx;
    int rc = spk_hpke_setup_sender(&ctx, params, pk_r, pk_r_len, enc);
    if (rc != 0) {
        return rc;
    }
    rc = spk_hpke_seal(&ctx, aad, aad_len, pt, pt_len, ct);
    spk_hpke_ctx_destroy(&ctx);
    return rc;
}

int spk_hpke_open_single(const spk_hpke_params_t *params, const uint8_t *enc, size_t enc_len,
                         const uint8_t sk_r[SPK_HPKE_NSK], const uint8_t *aad, size_t aad_len,
                         const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    spk_hpke_ctx_t ctx;
    int rc = spk_hpke_setup_receiver(&ctx, params, enc, enc_len, sk_r);
    if (rc != 0) {
        return rc;
    }
    rc = spk_hpke_open(&ctx, aad, aad_len, ct, ct_len, pt);
    spk_hpke_ctx_destroy(&ctx);
    return rc;
}
