/* SFrame cryptography on OpenSSL 3: cipher suites (§4.5), key derivation (§4.4.2), and the
 * AEADs: AES-GCM, and AES-CTR with truncated HMAC (§4.5.1). */
#include "sframe/sframe_int.h"

#include "spk/error.h"
#include "spk/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static const sframe_suite_t suites[] = {
    {SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80, 32, 16, 48, 10, false},
    {SPK_SFRAME_AES_128_CTR_HMAC_SHA256_64, 32, 16, 48, 8, false},
    {SPK_SFRAME_AES_128_CTR_HMAC_SHA256_32, 32, 16, 48, 4, false},
    {SPK_SFRAME_AES_128_GCM_SHA256_128, 32, 0, 16, 16, false},
    {SPK_SFRAME_AES_256_GCM_SHA512_128, 64, 0, 32, 16, true},
};

const sframe_suite_t *sframe_suite(uint16_t id)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        if (suites[i].id == id) {
            return &suites[i];
        }
    }
    return NULL;
}

bool spk_sframe_suite_supported(uint16_t suite)
{
    return sframe_suite(suite) != NULL;
}

size_t spk_sframe_tag_len(uint16_t suite)
{
    const sframe_suite_t *s = sframe_suite(suite);
    return s != NULL ? s->nt : 0;
}

size_t spk_sframe_key_len(uint16_t suite)
{
    const sframe_suite_t *s = sframe_suite(suite);
    return s != NULL ? s->nk : 0;
}

/* ---- algorithm cache ----
 *
 * Fetched once (OpenSSL 3 otherwise looks them up in the provider store on every init), as in
 * mls/prim.c. The fetched objects are immutable and reference counted, safe to share between
 * threads; the HMAC templates are only ever duplicated, never keyed or used themselves. */
typedef struct {
    EVP_CIPHER *gcm128;
    EVP_CIPHER *gcm256;
    EVP_CIPHER *ctr128;
    EVP_MAC_CTX *hmac256;
    EVP_MAC_CTX *hmac512;
    bool ok;
} algs_t;

static algs_t algs;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static EVP_MAC_CTX *hmac_template(EVP_MAC *mac, const char *digest)
{
    char name[16];
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    snprintf(name, sizeof(name), "%s", digest);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_MAC_CTX_set_params(ctx, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void algs_init(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    algs.gcm128 = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    algs.gcm256 = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    algs.ctr128 = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
    algs.hmac256 = hmac_template(mac, "SHA256");
    algs.hmac512 = hmac_template(mac, "SHA512");
    EVP_MAC_free(mac); /* the contexts keep their own reference */
    algs.ok = algs.gcm128 != NULL && algs.gcm256 != NULL && algs.ctr128 != NULL &&
              algs.hmac256 != NULL && algs.hmac512 != NULL;
}

static const algs_t *algs_get(void)
{
    if (pthread_once(&algs_once, algs_init) != 0 || !algs.ok) {
        return NULL;
    }
    return &algs;
}

/* A fresh HMAC context for the suite's hash keyed with key, or NULL. */
static EVP_MAC_CTX *hmac_new(const sframe_suite_t *s, const uint8_t *key, size_t key_len)
{
    static const uint8_t zero = 0;
    const algs_t *a = algs_get();
    EVP_MAC_CTX *ctx = a != NULL ? EVP_MAC_CTX_dup(s->sha512 ? a->hmac512 : a->hmac256) : NULL;
    if (ctx != NULL && EVP_MAC_init(ctx, key_len > 0 ? key : &zero, key_len, NULL) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* ---- key derivation (§4.4.2) ---- */

int sframe_hkdf_extract(const sframe_suite_t *s, const uint8_t *ikm, size_t ikm_len,
                        uint8_t prk[SFRAME_MAX_NH])
{
    static const uint8_t zeros[SFRAME_MAX_NH] = {0};
    EVP_MAC_CTX *ctx = hmac_new(s, zeros, s->nh); /* an empty salt is Nh zero bytes */
    size_t len = 0;
    int ok = ctx != NULL && (ikm_len == 0 || EVP_MAC_update(ctx, ikm, ikm_len) == 1) &&
             EVP_MAC_final(ctx, prk, &len, SFRAME_MAX_NH) == 1 && len == s->nh;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : SPK_ECRYPTO;
}

/* HKDF-Expand(prk, info, out_len) for out_len <= 2 * Nh. */
static int hkdf_expand(const sframe_suite_t *s, const uint8_t *prk, const uint8_t *info,
                       size_t info_len, uint8_t *out, size_t out_len)
{
    uint8_t t[SFRAME_MAX_NH];
    size_t done = 0;
    int ok = out_len <= 2u * s->nh;
    for (uint8_t i = 1; ok && done < out_len; i++) {
        EVP_MAC_CTX *ctx = hmac_new(s, prk, s->nh);
        size_t len = 0;
        ok = ctx != NULL && (i == 1 || EVP_MAC_update(ctx, t, s->nh) == 1) &&
             EVP_MAC_update(ctx, info, info_len) == 1 && EVP_MAC_update(ctx, &i, 1) == 1 &&
             EVP_MAC_final(ctx, t, &len, sizeof(t)) == 1 && len == s->nh;
        EVP_MAC_CTX_free(ctx);
        size_t take = out_len - done < s->nh ? out_len - done : s->nh;
        if (ok) {
            memcpy(out + done, t, take);
            done += take;
        }
    }
    spk_wipe(t, sizeof(t));
    return ok ? 0 : SPK_ECRYPTO;
}

void sframe_label(bool salt, uint64_t kid, uint16_t suite, uint8_t out[40], size_t *len)
{
    const char *prefix = salt ? "SFrame 1.0 Secret salt " : "SFrame 1.0 Secret key ";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (int i = 0; i < 8; i++) {
        out[n++] = (uint8_t)(kid >> (56 - 8 * i));
    }
    out[n++] = (uint8_t)(suite >> 8);
    out[n++] = (uint8_t)suite;
    *len = n;
}

int sframe_derive(const sframe_suite_t *s, uint64_t kid, const uint8_t *base_key,
                  size_t base_key_len, uint8_t key[SFRAME_MAX_NK], uint8_t salt[SFRAME_NONCE_LEN])
{
    uint8_t secret[SFRAME_MAX_NH];
    uint8_t label[40];
    size_t label_len = 0;
    int rc = sframe_hkdf_extract(s, base_key, base_key_len, secret);
    if (rc == 0) {
        sframe_label(false, kid, s->id, label, &label_len);
        rc = hkdf_expand(s, secret, label, label_len, key, s->nk);
    }
    if (rc == 0) {
        sframe_label(true, kid, s->id, label, &label_len);
        rc = hkdf_expand(s, secret, label, label_len, salt, SFRAME_NONCE_LEN);
    }
    spk_wipe(secret, sizeof(secret));
    return rc;
}

/* ---- keys ---- */

void sframe_key_free(sframe_key_t *k)
{
    if (k == NULL) {
        return;
    }
    EVP_CIPHER_CTX_free(k->cipher); /* cleanses the key schedule */
    EVP_MAC_CTX_free(k->mac);
    spk_wipe(k, sizeof(*k));
    free(k);
}

int sframe_key_new(sframe_key_t **out, const sframe_suite_t *s, uint64_t kid,
                   spk_sframe_usage_t usage, const uint8_t *key, const uint8_t *salt)
{
    const algs_t *a = algs_get();
    sframe_key_t *k = calloc(1, sizeof(*k));
    *out = NULL;
    if (a == NULL || k == NULL) {
        free(k);
        return a == NULL ? SPK_ECRYPTO : SPK_ENOMEM;
    }
    k->kid = kid;
    k->suite = s;
    k->usage = usage;
    memcpy(k->salt, salt, SFRAME_NONCE_LEN);
    const EVP_CIPHER *cipher = s->nka > 0 ? a->ctr128 : (s->nk == 32 ? a->gcm256 : a->gcm128);
    /* CTR is its own inverse: both directions encrypt. */
    int enc = s->nka > 0 || usage == SPK_SFRAME_SEND ? 1 : 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    k->cipher = ctx;
    int ok = ctx != NULL && EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, enc) == 1;
    if (ok && s->nka > 0) {
        k->mac = hmac_new(s, key + s->nka, (size_t)s->nk - s->nka);
        ok = k->mac != NULL;
    }
    if (!ok) {
        sframe_key_free(k);
        return SPK_ECRYPTO;
    }
    *out = k;
    return 0;
}

int sframe_key_derive(sframe_key_t **out, const sframe_suite_t *s, uint64_t kid,
                      spk_sframe_usage_t usage, const uint8_t *base_key, size_t base_key_len)
{
    uint8_t key[SFRAME_MAX_NK];
    uint8_t salt[SFRAME_NONCE_LEN];
    *out = NULL;
    int rc = sframe_derive(s, kid, base_key, base_key_len, key, salt);
    rc = rc != 0 ? rc : sframe_key_new(out, s, kid, usage, key, salt);
    spk_wipe(key, sizeof(key));
    spk_wipe(salt, sizeof(salt));
    return rc;
}

void sframe_nonce(const uint8_t salt[SFRAME_NONCE_LEN], uint64_t ctr,
                  uint8_t nonce[SFRAME_NONCE_LEN])
{
    memcpy(nonce, salt, SFRAME_NONCE_LEN);
    for (int i = 0; i < 8; i++) {
        nonce[SFRAME_NONCE_LEN - 1 - i] ^= (uint8_t)(ctr >> (8 * i));
    }
}

/* ---- AEAD ---- */

static int update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t n)
{
    int len = 0;
    return n == 0 ||
           (EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1 && (out == NULL || (size_t)len == n));
}

/* The CTR suites' tag: HMAC(auth_key, u64(len aad) || u64(len ct) || u64(Nt) || nonce || aad
 * || ct), truncated to Nt. */
static int ctr_tag(sframe_key_t *k, const uint8_t *nonce, const uint8_t *a1, size_t a1_len,
                   const uint8_t *a2, size_t a2_len, const uint8_t *ct, size_t ct_len,
                   uint8_t tag[SFRAME_MAX_NH])
{
    EVP_MAC_CTX *mac = k->mac;
    uint8_t lens[24];
    uint64_t v[3] = {(uint64_t)a1_len + a2_len, ct_len, k->suite->nt};
    size_t len = 0;
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < 8; i++) {
            lens[8 * j + i] = (uint8_t)(v[j] >> (56 - 8 * i));
        }
    }
    /* A NULL key restarts HMAC with the key set at creation. */
    int ok = EVP_MAC_init(mac, NULL, 0, NULL) == 1 &&
             EVP_MAC_update(mac, lens, sizeof(lens)) == 1 &&
             EVP_MAC_update(mac, nonce, SFRAME_NONCE_LEN) == 1 &&
             (a1_len == 0 || EVP_MAC_update(mac, a1, a1_len) == 1) &&
             (a2_len == 0 || EVP_MAC_update(mac, a2, a2_len) == 1) &&
             (ct_len == 0 || EVP_MAC_update(mac, ct, ct_len) == 1) &&
             EVP_MAC_final(mac, tag, &len, SFRAME_MAX_NH) == 1;
    return ok ? 0 : SPK_ECRYPTO;
}

/* AES-CTR from the counter block nonce || 00000000. */
static int ctr_crypt(sframe_key_t *k, const uint8_t *nonce, const uint8_t *in, size_t n,
                     uint8_t *out)
{
    uint8_t iv[16] = {0};
    memcpy(iv, nonce, SFRAME_NONCE_LEN);
    int ok = EVP_CipherInit_ex(k->cipher, NULL, NULL, NULL, iv, -1) == 1 &&
             update(k->cipher, out, in, n);
    return ok ? 0 : SPK_ECRYPTO;
}

int sframe_aead_seal(sframe_key_t *k, const uint8_t nonce[SFRAME_NONCE_LEN], const uint8_t *a1,
                     size_t a1_len, const uint8_t *a2, size_t a2_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = k->cipher;
    size_t nt = k->suite->nt;
    if (k->suite->nka > 0) {
        uint8_t tag[SFRAME_MAX_NH];
        int rc = ctr_crypt(k, nonce, pt, pt_len, out);
        rc = rc != 0 ? rc : ctr_tag(k, nonce, a1, a1_len, a2, a2_len, out, pt_len, tag);
        if (rc == 0) {
            memcpy(out + pt_len, tag, nt);
        }
        return rc;
    }
    int len = 0;
    int ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, -1) == 1 &&
             update(ctx, NULL, a1, a1_len) && update(ctx, NULL, a2, a2_len) &&
             update(ctx, out, pt, pt_len) && EVP_CipherFinal_ex(ctx, out + pt_len, &len) == 1 &&
             len == 0 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)nt, out + pt_len) == 1;
    return ok ? 0 : SPK_ECRYPTO;
}

int sframe_aead_open(sframe_key_t *k, const uint8_t nonce[SFRAME_NONCE_LEN], const uint8_t *a1,
                     size_t a1_len, const uint8_t *a2, size_t a2_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = k->cipher;
    size_t nt = k->suite->nt;
    if (ct_len < nt) {
        return SPK_ETRUNC;
    }
    size_t n = ct_len - nt;
    if (k->suite->nka > 0) {
        uint8_t tag[SFRAME_MAX_NH];
        int rc = ctr_tag(k, nonce, a1, a1_len, a2, a2_len, ct, n, tag);
        if (rc == 0 && CRYPTO_memcmp(tag, ct + n, nt) != 0) {
            rc = SPK_EVERIFY;
        }
        return rc != 0 ? rc : ctr_crypt(k, nonce, ct, n, out);
    }
    uint8_t tag[16];
    int len = 0;
    memcpy(tag, ct + n, nt);
    int ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, -1) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, (int)nt, tag) == 1 &&
             update(ctx, NULL, a1, a1_len) && update(ctx, NULL, a2, a2_len) &&
             update(ctx, out, ct, n);
    if (ok && EVP_CipherFinal_ex(ctx, out + n, &len) != 1) {
        spk_wipe(out, n);
        return SPK_EVERIFY;
    }
    if (!ok) {
        spk_wipe(out, n);
        return SPK_ECRYPTO;
    }
    return 0;
}
