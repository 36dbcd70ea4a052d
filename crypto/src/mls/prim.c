/* Cipher suite 1 primitives on OpenSSL 3.0 and the labelled helpers of RFC 9420 §5. */
#include "mls/prim.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "mls/codec.h"
#include "spk/error.h"
#include "spk/hpke.h"
#include "spk/rand.h"
#include "spk/util.h"

#define MLS_LABEL_PREFIX "MLS 1.0 "

/* ---- algorithm cache ----
 *
 * OpenSSL 3 looks algorithms up in its provider store on every EVP_sha256() digest init, MAC
 * fetch and cipher init, which dominated the run time. They are fetched once here instead.
 * Safe to share between threads: pthread_once runs algs_init exactly once and makes its writes
 * visible to every caller; fetched EVP_MD / EVP_CIPHER objects are immutable and reference
 * counted, documented as usable from several threads at once; the HMAC template context is
 * only ever read (EVP_MAC_CTX_dup) after initialisation, never used or keyed itself. The
 * objects live until the process exits (the default library context is not freed earlier). */
typedef struct {
    EVP_MD *sha256;
    EVP_CIPHER *aes128gcm;
    EVP_MAC_CTX *hmac; /* HMAC-SHA256 without a key: dup, then EVP_MAC_init with the key */
    bool ok;
} algs_t;

static algs_t algs;
static pthread_once_t algs_once = PTHREAD_ONCE_INIT;

static void algs_init(void)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    algs.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    algs.aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    algs.hmac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context keeps its own reference */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    algs.ok = algs.sha256 != NULL && algs.aes128gcm != NULL && algs.hmac != NULL &&
              EVP_MAC_CTX_set_params(algs.hmac, params) == 1;
}

/* The cached algorithms, or NULL when OpenSSL could not provide them. */
static const algs_t *algs_get(void)
{
    if (pthread_once(&algs_once, algs_init) != 0 || !algs.ok) {
        return NULL;
    }
    return &algs;
}

/* ---- hash, MAC, KDF ---- */

int spk_mls_sha256(const uint8_t *p, size_t n, uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_sha256_2(p, n, NULL, 0, out);
}

int spk_mls_sha256_2(const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                     uint8_t out[SPK_MLS_HASH_LEN])
{
    const algs_t *alg = algs_get();
    EVP_MD_CTX *md = alg != NULL ? EVP_MD_CTX_new() : NULL;
    unsigned int len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, alg->sha256, NULL) == 1 &&
             (an == 0 || EVP_DigestUpdate(md, a, an) == 1) &&
             (bn == 0 || EVP_DigestUpdate(md, b, bn) == 1) &&
             EVP_DigestFinal_ex(md, out, &len) == 1 && len == SPK_MLS_HASH_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : SPK_ECRYPTO;
}

typedef struct {
    const uint8_t *p;
    size_t n;
} part_t;

/* HMAC-SHA256 over the concatenation of parts. */
static int hmac_parts(const uint8_t *key, size_t key_len, const part_t *parts, size_t n_parts,
                      uint8_t out[SPK_MLS_HASH_LEN])
{
    static const uint8_t zero = 0;
    const algs_t *a = algs_get();
    EVP_MAC_CTX *ctx = a != NULL ? EVP_MAC_CTX_dup(a->hmac) : NULL;
    size_t len = 0;
    int ok = ctx != NULL;

    ok = ok && EVP_MAC_init(ctx, key_len > 0 ? key : &zero, key_len, NULL) == 1;
    for (size_t i = 0; ok && i < n_parts; i++) {
        if (parts[i].n > 0) {
            ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n) == 1;
        }
    }
    ok = ok && EVP_MAC_final(ctx, out, &len, SPK_MLS_HASH_LEN) == 1 && len == SPK_MLS_HASH_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : SPK_ECRYPTO;
}

int spk_mls_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p, size_t n,
                        uint8_t out[SPK_MLS_HASH_LEN])
{
    part_t part = {p, n};
    return hmac_parts(key, key_len, &part, 1, out);
}

int spk_mls_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                         uint8_t prk[SPK_MLS_HASH_LEN])
{
    static const uint8_t zeros[SPK_MLS_HASH_LEN] = {0};
    if (salt_len == 0) {
        salt = zeros;
        salt_len = sizeof zeros;
    }
    return spk_mls_hmac_sha256(salt, salt_len, ikm, ikm_len, prk);
}

int spk_mls_hkdf_expand(const uint8_t *prk, size_t prk_len, const uint8_t *info, size_t info_len,
                        uint8_t *out, size_t out_len)
{
    uint8_t t[SPK_MLS_HASH_LEN];
    size_t t_len = 0;
    size_t done = 0;
    int rc = 0;

    if (out_len > SPK_MLS_HKDF_MAX_OUT) {
        return SPK_EINVAL;
    }
    for (uint8_t i = 1; done < out_len; i++) {
        uint8_t ctr = i;
        part_t parts[3] = {{t, t_len}, {info, info_len}, {&ctr, 1}};
        rc = hmac_parts(prk, prk_len, parts, 3, t);
        if (rc != 0) {
            break;
        }
        t_len = SPK_MLS_HASH_LEN;
        size_t take = out_len - done < t_len ? out_len - done : t_len;
        memcpy(out + done, t, take);
        done += take;
    }
    spk_wipe(t, sizeof t);
    if (rc != 0) {
        spk_wipe(out, out_len);
    }
    return rc;
}

/* ---- AEAD ---- */

static int aead_run(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                    size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out, uint8_t *tag)
{
    const algs_t *a = algs_get();
    EVP_CIPHER_CTX *c = a != NULL ? EVP_CIPHER_CTX_new() : NULL;
    int len = 0;
    int ok = c != NULL && in_len <= INT32_MAX && aad_len <= INT32_MAX;

    ok = ok && EVP_CipherInit_ex(c, a->aes128gcm, NULL, NULL, NULL, enc ? 1 : 0) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SPK_MLS_AEAD_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc ? 1 : 0) == 1;
    if (ok && aad_len > 0) {
        ok = EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len) == 1;
    }
    if (ok && in_len > 0) {
        ok = EVP_CipherUpdate(c, out, &len, in, (int)in_len) == 1;
    }
    if (ok && !enc) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SPK_MLS_AEAD_TAG_LEN, tag) == 1;
    }
    /* GCM finalisation produces no output bytes; give it a scratch buffer. */
    uint8_t scratch[16];
    int fin = ok ? EVP_CipherFinal_ex(c, scratch, &len) : 0;
    if (ok && enc && fin == 1) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SPK_MLS_AEAD_TAG_LEN, tag) == 1;
    }
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        return SPK_ECRYPTO;
    }
    return fin == 1 ? 0 : (enc ? SPK_ECRYPTO : SPK_EVERIFY);
}

int spk_mls_aead_seal(const uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                      const uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN], const uint8_t *aad,
                      size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    int rc = aead_run(true, key, nonce, aad, aad_len, pt, pt_len, out, out + pt_len);
    if (rc != 0) {
        spk_wipe(out, pt_len + SPK_MLS_AEAD_TAG_LEN);
    }
    return rc;
}

int spk_mls_aead_open(const uint8_t key[SPK_MLS_AEAD_KEY_LEN],
                      const uint8_t nonce[SPK_MLS_AEAD_NONCE_LEN], const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *out)
{
    uint8_t tag[SPK_MLS_AEAD_TAG_LEN];
    if (ct_len < SPK_MLS_AEAD_TAG_LEN) {
        return SPK_ETRUNC;
    }
    size_t n = ct_len - SPK_MLS_AEAD_TAG_LEN;
    memcpy(tag, ct + n, sizeof tag);
    int rc = aead_run(false, key, nonce, aad, aad_len, ct, n, out, tag);
    if (rc != 0 && n > 0) {
        spk_wipe(out, n);
    }
    return rc;
}

/* ---- X25519 ---- */

int spk_mls_x25519_pub(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, SPK_MLS_KEM_PRIV_LEN);
    size_t len = SPK_MLS_KEM_PUB_LEN;
    int ok =
        k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == SPK_MLS_KEM_PUB_LEN;
    EVP_PKEY_free(k);
    return ok ? 0 : SPK_ECRYPTO;
}

int spk_mls_x25519_keygen(uint8_t priv[SPK_MLS_KEM_PRIV_LEN], uint8_t pub[SPK_MLS_KEM_PUB_LEN])
{
    int rc = spk_random_bytes(priv, SPK_MLS_KEM_PRIV_LEN);
    if (rc == 0) {
        rc = spk_mls_x25519_pub(priv, pub);
    }
    if (rc != 0) {
        spk_wipe(priv, SPK_MLS_KEM_PRIV_LEN);
    }
    return rc;
}

int spk_mls_x25519_dh_pub(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                          const uint8_t peer_pub[SPK_MLS_KEM_PUB_LEN], uint8_t out[32],
                          uint8_t *pub)
{
    static const uint8_t zeros[32] = {0};
    /* Importing the private key derives its public key anyway: hand it out when asked. */
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, SPK_MLS_KEM_PRIV_LEN);
    EVP_PKEY *peer =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer_pub, SPK_MLS_KEM_PUB_LEN);
    EVP_PKEY_CTX *c = k != NULL ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    size_t len = 32;
    size_t pub_len = SPK_MLS_KEM_PUB_LEN;
    int ok = c != NULL && peer != NULL && EVP_PKEY_derive_init(c) == 1 &&
             EVP_PKEY_derive_set_peer(c, peer) == 1 && EVP_PKEY_derive(c, out, &len) == 1 &&
             len == 32;
    if (ok && pub != NULL) {
        ok = EVP_PKEY_get_raw_public_key(k, pub, &pub_len) == 1 && pub_len == SPK_MLS_KEM_PUB_LEN;
    }
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(k);
    /* RFC 9180 §7.1.4: an all-zero shared secret must abort. */
    if (ok && spk_ct_equal(out, zeros, 32)) {
        ok = 0;
    }
    if (!ok) {
        spk_wipe(out, 32);
        return SPK_ECRYPTO;
    }
    return 0;
}

int spk_mls_x25519_dh(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                      const uint8_t peer_pub[SPK_MLS_KEM_PUB_LEN], uint8_t out[32])
{
    return spk_mls_x25519_dh_pub(priv, peer_pub, out, NULL);
}

/* ---- Ed25519 ---- */

int spk_mls_ed25519_pub(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], uint8_t pub[SPK_MLS_SIG_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SPK_MLS_SIG_PRIV_LEN);
    size_t len = SPK_MLS_SIG_PUB_LEN;
    int ok =
        k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == SPK_MLS_SIG_PUB_LEN;
    EVP_PKEY_free(k);
    return ok ? 0 : SPK_ECRYPTO;
}

int spk_mls_ed25519_keygen(uint8_t seed[SPK_MLS_SIG_PRIV_LEN], uint8_t pub[SPK_MLS_SIG_PUB_LEN])
{
    int rc = spk_random_bytes(seed, SPK_MLS_SIG_PRIV_LEN);
    if (rc == 0) {
        rc = spk_mls_ed25519_pub(seed, pub);
    }
    if (rc != 0) {
        spk_wipe(seed, SPK_MLS_SIG_PRIV_LEN);
    }
    return rc;
}

/* Importing an Ed25519 private key alone recomputes its public key, a scalar multiplication
 * as expensive as the signature itself. Each thread remembers the public key of the last seed
 * it signed with, under SHA-256 of a label and the seed (never the seed itself), and imports
 * the key pair with both halves. */
static _Thread_local struct {
    bool valid;
    uint8_t id[SPK_MLS_HASH_LEN];
    uint8_t pub[SPK_MLS_SIG_PUB_LEN];
} ed_pub_cache;

static int ed25519_cached_pub(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN],
                              uint8_t pub[SPK_MLS_SIG_PUB_LEN])
{
    static const char label[] = "spk ed25519 public key cache";
    uint8_t id[SPK_MLS_HASH_LEN];
    int rc =
        spk_mls_sha256_2((const uint8_t *)label, sizeof(label), seed, SPK_MLS_SIG_PRIV_LEN, id);
    if (rc != 0) {
        return rc;
    }
    if (ed_pub_cache.valid && spk_ct_equal(ed_pub_cache.id, id, sizeof(id))) {
        memcpy(pub, ed_pub_cache.pub, SPK_MLS_SIG_PUB_LEN);
        return 0;
    }
    rc = spk_mls_ed25519_pub(seed, pub);
    if (rc == 0) {
        memcpy(ed_pub_cache.id, id, sizeof(id));
        memcpy(ed_pub_cache.pub, pub, SPK_MLS_SIG_PUB_LEN);
        ed_pub_cache.valid = true;
    }
    return rc;
}

static EVP_PKEY *ed25519_key_pair(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN])
{
    uint8_t pub[SPK_MLS_SIG_PUB_LEN];
    uint8_t priv[SPK_MLS_SIG_PRIV_LEN];
    OSSL_PARAM params[3];
    EVP_PKEY *k = NULL;
    if (ed25519_cached_pub(seed, pub) != 0) {
        return NULL;
    }
    memcpy(priv, seed, sizeof(priv));
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, priv, sizeof(priv));
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    params[2] = OSSL_PARAM_construct_end();
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
    if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
        EVP_PKEY_fromdata(c, &k, EVP_PKEY_KEYPAIR, params) != 1) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(c);
    spk_wipe(priv, sizeof(priv));
    return k;
}

int spk_mls_ed25519_sign(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], const uint8_t *msg, size_t n,
                         uint8_t sig[SPK_MLS_SIG_LEN])
{
    static const uint8_t empty = 0;
    EVP_PKEY *k = ed25519_key_pair(seed);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = SPK_MLS_SIG_LEN;
    int ok = k != NULL && md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(md, sig, &len, n > 0 ? msg : &empty, n) == 1 && len == SPK_MLS_SIG_LEN;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok ? 0 : SPK_ECRYPTO;
}

int spk_mls_ed25519_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t n,
                           const uint8_t *sig, size_t sig_len)
{
    static const uint8_t empty = 0;
    if (pub_len != SPK_MLS_SIG_PUB_LEN || sig_len != SPK_MLS_SIG_LEN || pub == NULL ||
        sig == NULL) {
        return SPK_EVERIFY;
    }
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, pub_len);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = k != NULL && md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, n > 0 ? msg : &empty, n) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok ? 0 : SPK_EVERIFY;
}

/* ---- labelled helpers ---- */

/* Writes V("MLS 1.0 " + label). */
static void write_mls_label(spk_mls_writer_t *w, const uint8_t *label, size_t label_len)
{
    size_t mark = 0;
    spk_mls_write_vec_begin(w, &mark);
    spk_mls_write_bytes(w, (const uint8_t *)MLS_LABEL_PREFIX, strlen(MLS_LABEL_PREFIX));
    spk_mls_write_bytes(w, label, label_len);
    spk_mls_write_vec_end(w, mark);
}

int spk_mls_expand_with_label_n(const uint8_t *secret, size_t secret_len, const uint8_t *label,
                                size_t label_len, const uint8_t *context, size_t context_len,
                                uint8_t *out, size_t out_len)
{
    spk_mls_writer_t w;
    if (out_len > UINT16_MAX) {
        return SPK_EINVAL;
    }
    spk_mls_writer_init(&w);
    spk_mls_write_u16(&w, (uint16_t)out_len);
    write_mls_label(&w, label, label_len);
    spk_mls_write_opaque_v(&w, context, context_len);
    int rc = w.err;
    if (rc == 0) {
        rc = spk_mls_hkdf_expand(secret, secret_len, w.buf, w.len, out, out_len);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_expand_with_label(const uint8_t *secret, size_t secret_len, const char *label,
                              const uint8_t *context, size_t context_len, uint8_t *out,
                              size_t out_len)
{
    return spk_mls_expand_with_label_n(secret, secret_len, (const uint8_t *)label, strlen(label),
                                       context, context_len, out, out_len);
}

int spk_mls_derive_secret(const uint8_t *secret, size_t secret_len, const char *label,
                          uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_expand_with_label(secret, secret_len, label, NULL, 0, out, SPK_MLS_HASH_LEN);
}

int spk_mls_derive_secret_n(const uint8_t *secret, size_t secret_len, const uint8_t *label,
                            size_t label_len, uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_expand_with_label_n(secret, secret_len, label, label_len, NULL, 0, out,
                                       SPK_MLS_HASH_LEN);
}

int spk_mls_derive_tree_secret(const uint8_t *secret, size_t secret_len, const char *label,
                               uint32_t generation, uint8_t *out, size_t out_len)
{
    uint8_t gen[4] = {(uint8_t)(generation >> 24), (uint8_t)(generation >> 16),
                      (uint8_t)(generation >> 8), (uint8_t)generation};
    return spk_mls_expand_with_label(secret, secret_len, label, gen, sizeof gen, out, out_len);
}

int spk_mls_ref_hash(const char *label, const uint8_t *value, size_t value_len,
                     uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_write_opaque_v(&w, (const uint8_t *)label, strlen(label));
    spk_mls_write_opaque_v(&w, value, value_len);
    int rc = w.err;
    if (rc == 0) {
        rc = spk_mls_sha256(w.buf, w.len, out);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_make_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_ref_hash("MLS 1.0 KeyPackage Reference", kp, kp_len, out);
}

int spk_mls_make_proposal_ref(const uint8_t *ac, size_t ac_len, uint8_t out[SPK_MLS_HASH_LEN])
{
    return spk_mls_ref_hash("MLS 1.0 Proposal Reference", ac, ac_len, out);
}

/* SignContent = V("MLS 1.0 " + label) || V(content). */
static int sign_content(spk_mls_writer_t *w, const char *label, const uint8_t *content,
                        size_t content_len)
{
    spk_mls_writer_init(w);
    write_mls_label(w, (const uint8_t *)label, strlen(label));
    spk_mls_write_opaque_v(w, content, content_len);
    return w->err;
}

int spk_mls_sign_with_label(const uint8_t seed[SPK_MLS_SIG_PRIV_LEN], const char *label,
                            const uint8_t *content, size_t content_len,
                            uint8_t sig[SPK_MLS_SIG_LEN])
{
    spk_mls_writer_t w;
    int rc = sign_content(&w, label, content, content_len);
    if (rc == 0) {
        rc = spk_mls_ed25519_sign(seed, w.buf, w.len, sig);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_verify_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                              const uint8_t *content, size_t content_len, const uint8_t *sig,
                              size_t sig_len)
{
    spk_mls_writer_t w;
    int rc = sign_content(&w, label, content, content_len);
    if (rc == 0) {
        rc = spk_mls_ed25519_verify(pub, pub_len, w.buf, w.len, sig, sig_len);
    }
    spk_mls_writer_free(&w);
    return rc;
}

/* EncryptContext = V("MLS 1.0 " + label) || V(context), used as HPKE info (§5.1.3). */
static int encrypt_context(spk_mls_writer_t *w, const char *label, const uint8_t *context,
                           size_t context_len)
{
    return sign_content(w, label, context, context_len);
}

int spk_mls_encrypt_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                               const uint8_t *context, size_t context_len, const uint8_t *pt,
                               size_t pt_len, uint8_t kem_output[SPK_MLS_KEM_ENC_LEN], uint8_t *ct)
{
    spk_mls_writer_t w;
    int rc = encrypt_context(&w, label, context, context_len);
    if (rc == 0) {
        spk_hpke_params_t p = {.mode = SPK_HPKE_MODE_BASE,
                               .aead_id = SPK_HPKE_AEAD_AES128GCM,
                               .info = w.buf,
                               .info_len = w.len};
        rc = spk_hpke_seal_single(&p, pub, pub_len, NULL, 0, pt, pt_len, kem_output, ct);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_decrypt_with_label(const uint8_t priv[SPK_MLS_KEM_PRIV_LEN], const char *label,
                               const uint8_t *context, size_t context_len,
                               const uint8_t *kem_output, size_t kem_output_len, const uint8_t *ct,
                               size_t ct_len, uint8_t *pt)
{
    spk_mls_writer_t w;
    int rc = encrypt_context(&w, label, context, context_len);
    if (rc == 0) {
        spk_hpke_params_t p = {.mode = SPK_HPKE_MODE_BASE,
                               .aead_id = SPK_HPKE_AEAD_AES128GCM,
                               .info = w.buf,
                               .info_len = w.len};
        rc = spk_hpke_open_single(&p, kem_output, kem_output_len, priv, NULL, 0, ct, ct_len, pt);
    }
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t priv[SPK_MLS_KEM_PRIV_LEN],
                            uint8_t pub[SPK_MLS_KEM_PUB_LEN])
{
    return spk_hpke_derive_key_pair(ikm, ikm_len, priv, pub);
}
