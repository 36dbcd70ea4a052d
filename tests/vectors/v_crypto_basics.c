/* crypto-basics.json: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret,
 * Sign/VerifyWithLabel, Encrypt/DecryptWithLabel (RFC 9420 §5). */
#include <stdlib.h>
#include <string.h>

#include "mls/prim.h"
#include "spk/error.h"
#include "vectors.h"

static bool check_ref_hash(const json_t *o)
{
    spk_mls_bytes_t value;
    uint8_t out[SPK_MLS_HASH_LEN];
    const char *label = vec_str(o, "label");
    if (label == NULL || !vec_hex(o, "value", &value)) {
        return false;
    }
    bool ok = vec_ok("ref_hash", spk_mls_ref_hash(label, value.p, value.n, out)) &&
              vec_eq_hex("ref_hash", out, sizeof out, o, "out");
    spk_mls_bytes_free(&value);
    return ok;
}

static bool check_expand(const json_t *o)
{
    spk_mls_bytes_t secret = {0}, context = {0};
    uint8_t out[256];
    uint64_t length = 0;
    const char *label = vec_str(o, "label");
    bool ok = label != NULL && vec_hex(o, "secret", &secret) && vec_hex(o, "context", &context) &&
              vec_u64(o, "length", &length) && length <= sizeof out;
    ok = ok &&
         vec_ok("expand_with_label", spk_mls_expand_with_label(secret.p, secret.n, label, context.p,
                                                               context.n, out, (size_t)length)) &&
         vec_eq_hex("expand_with_label", out, (size_t)length, o, "out");
    spk_mls_bytes_free(&secret);
    spk_mls_bytes_free(&context);
    return ok;
}

static bool check_derive_secret(const json_t *o)
{
    spk_mls_bytes_t secret = {0};
    uint8_t out[SPK_MLS_HASH_LEN];
    const char *label = vec_str(o, "label");
    bool ok = label != NULL && vec_hex(o, "secret", &secret) &&
              vec_ok("derive_secret", spk_mls_derive_secret(secret.p, secret.n, label, out)) &&
              vec_eq_hex("derive_secret", out, sizeof out, o, "out");
    spk_mls_bytes_free(&secret);
    return ok;
}

static bool check_derive_tree_secret(const json_t *o)
{
    spk_mls_bytes_t secret = {0};
    uint8_t out[256];
    uint64_t gen = 0, length = 0;
    const char *label = vec_str(o, "label");
    bool ok = label != NULL && vec_hex(o, "secret", &secret) && vec_u64(o, "generation", &gen) &&
              vec_u64(o, "length", &length) && length <= sizeof out && gen <= UINT32_MAX;
    ok = ok &&
         vec_ok("derive_tree_secret",
                spk_mls_derive_tree_secret(secret.p, secret.n, label, (uint32_t)gen, out,
                                           (size_t)length)) &&
         vec_eq_hex("derive_tree_secret", out, (size_t)length, o, "out");
    spk_mls_bytes_free(&secret);
    return ok;
}

static bool check_sign(const json_t *o)
{
    uint8_t priv[32], pub[32], derived_pub[32], sig[SPK_MLS_SIG_LEN];
    spk_mls_bytes_t content = {0}, want = {0};
    const char *label = vec_str(o, "label");
    bool ok = label != NULL && vec_hex_fixed(o, "priv", priv, 32) &&
              vec_hex_fixed(o, "pub", pub, 32) && vec_hex(o, "content", &content) &&
              vec_hex(o, "signature", &want);
    ok = ok && vec_ok("ed25519_pub", spk_mls_ed25519_pub(priv, derived_pub)) &&
         vec_eq("signature public key", derived_pub, 32, pub, 32);
    ok = ok && vec_ok("verify_with_label", spk_mls_verify_with_label(pub, 32, label, content.p,
                                                                     content.n, want.p, want.n));
    ok = ok &&
         vec_ok("sign_with_label",
                spk_mls_sign_with_label(priv, label, content.p, content.n, sig)) &&
         vec_eq("signature", sig, sizeof sig, want.p, want.n);
    if (ok) {
        /* A flipped bit must not verify. */
        sig[0] ^= 1;
        if (spk_mls_verify_with_label(pub, 32, label, content.p, content.n, sig, sizeof sig) !=
            SPK_EVERIFY) {
            ok = vec_fail("corrupted signature verified");
        }
    }
    spk_mls_bytes_free(&content);
    spk_mls_bytes_free(&want);
    return ok;
}

static bool check_encrypt(const json_t *o)
{
    uint8_t priv[32], pub[32], kem[32];
    spk_mls_bytes_t ctx = {0}, pt = {0}, ct = {0}, kem_output = {0};
    uint8_t *buf = NULL, *ct2 = NULL;
    const char *label = vec_str(o, "label");
    bool ok = label != NULL && vec_hex_fixed(o, "priv", priv, 32) &&
              vec_hex_fixed(o, "pub", pub, 32) && vec_hex(o, "context", &ctx) &&
              vec_hex(o, "plaintext", &pt) && vec_hex(o, "ciphertext", &ct) &&
              vec_hex(o, "kem_output", &kem_output) && ct.n >= SPK_MLS_AEAD_TAG_LEN;
    if (ok) {
        buf = calloc(1, ct.n + pt.n + 1);
        ct2 = calloc(1, pt.n + SPK_MLS_AEAD_TAG_LEN);
        ok = buf != NULL && ct2 != NULL;
    }
    ok = ok &&
         vec_ok("decrypt_with_label",
                spk_mls_decrypt_with_label(priv, label, ctx.p, ctx.n, kem_output.p, kem_output.n,
                                           ct.p, ct.n, buf)) &&
         vec_eq("plaintext", buf, ct.n - SPK_MLS_AEAD_TAG_LEN, pt.p, pt.n);
    /* Round trip with a fresh ephemeral key. */
    ok = ok &&
         vec_ok("encrypt_with_label",
                spk_mls_encrypt_with_label(pub, 32, label, ctx.p, ctx.n, pt.p, pt.n, kem, ct2)) &&
         vec_ok("decrypt_with_label (round trip)",
                spk_mls_decrypt_with_label(priv, label, ctx.p, ctx.n, kem, sizeof kem, ct2,
                                           pt.n + SPK_MLS_AEAD_TAG_LEN, buf)) &&
         vec_eq("round-trip plaintext", buf, pt.n, pt.p, pt.n);
    if (ok) {
        ct2[0] ^= 1;
        if (spk_mls_decrypt_with_label(priv, label, ctx.p, ctx.n, kem, sizeof kem, ct2,
                                       pt.n + SPK_MLS_AEAD_TAG_LEN, buf) != SPK_EVERIFY) {
            ok = vec_fail("corrupted ciphertext decrypted");
        }
    }
    free(buf);
    free(ct2);
    spk_mls_bytes_free(&ctx);
    spk_mls_bytes_free(&pt);
    spk_mls_bytes_free(&ct);
    spk_mls_bytes_free(&kem_output);
    return ok;
}

bool vec_crypto_basics(const json_t *entry, size_t index)
{
    uint64_t suite = 0;
    if (!vec_u64(entry, "cipher_suite", &suite) || suite != 1) {
        return vec_fail("unsupported cipher suite");
    }
    bool ok = check_ref_hash(json_object_get(entry, "ref_hash"));
    ok = check_expand(json_object_get(entry, "expand_with_label")) && ok;
    ok = check_derive_secret(json_object_get(entry, "derive_secret")) && ok;
    ok = check_derive_tree_secret(json_object_get(entry, "derive_tree_secret")) && ok;
    ok = check_sign(json_object_get(entry, "sign_with_label")) && ok;
    ok = check_encrypt(json_object_get(entry, "encrypt_with_label")) && ok;
    return ok;
}
