/* hpke/x25519_sha256_aes128gcm.json: RFC 9180 A.1 and A.7, all four modes. */
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/hpke.h"
#include "vectors.h"

typedef struct {
    spk_mls_bytes_t info, ikm_r, ikm_e, ikm_s, psk, psk_id;
    uint8_t sk_r[32], pk_r[32], sk_e[32], pk_e[32], sk_s[32], pk_s[32];
    uint8_t enc[32];
} hpke_case_t;

static void case_free(hpke_case_t *c)
{
    spk_mls_bytes_free(&c->info);
    spk_mls_bytes_free(&c->ikm_r);
    spk_mls_bytes_free(&c->ikm_e);
    spk_mls_bytes_free(&c->ikm_s);
    spk_mls_bytes_free(&c->psk);
    spk_mls_bytes_free(&c->psk_id);
}

/* DeriveKeyPair(ikm) must give exactly the (unclamped) skXm / pkXm of the vector. */
static bool check_dkp(const char *what, const spk_mls_bytes_t *ikm, const uint8_t *sk,
                      const uint8_t *pk)
{
    uint8_t dsk[32], dpk[32];
    return vec_ok(what, spk_hpke_derive_key_pair(ikm->p, ikm->n, dsk, dpk)) &&
           vec_eq(what, dsk, 32, sk, 32) && vec_eq(what, dpk, 32, pk, 32);
}

static bool load_case(const json_t *e, hpke_case_t *c, uint64_t mode)
{
    bool auth = mode == SPK_HPKE_MODE_AUTH || mode == SPK_HPKE_MODE_AUTH_PSK;
    bool psk = mode == SPK_HPKE_MODE_PSK || mode == SPK_HPKE_MODE_AUTH_PSK;
    bool ok = vec_hex(e, "info", &c->info) && vec_hex(e, "ikmR", &c->ikm_r) &&
              vec_hex(e, "ikmE", &c->ikm_e) && vec_hex_fixed(e, "skRm", c->sk_r, 32) &&
              vec_hex_fixed(e, "pkRm", c->pk_r, 32) && vec_hex_fixed(e, "skEm", c->sk_e, 32) &&
              vec_hex_fixed(e, "pkEm", c->pk_e, 32) && vec_hex_fixed(e, "enc", c->enc, 32);
    if (ok && auth) {
        ok = vec_hex(e, "ikmS", &c->ikm_s) && vec_hex_fixed(e, "skSm", c->sk_s, 32) &&
             vec_hex_fixed(e, "pkSm", c->pk_s, 32);
    }
    if (ok && psk) {
        ok = vec_hex(e, "psk", &c->psk) && vec_hex(e, "psk_id", &c->psk_id);
    }
    ok = ok && check_dkp("DeriveKeyPair(ikmR)", &c->ikm_r, c->sk_r, c->pk_r) &&
         check_dkp("DeriveKeyPair(ikmE)", &c->ikm_e, c->sk_e, c->pk_e);
    if (ok && auth) {
        ok = check_dkp("DeriveKeyPair(ikmS)", &c->ikm_s, c->sk_s, c->pk_s);
    }
    return ok;
}

static bool check_ctx(const json_t *e, const spk_hpke_ctx_t *ctx, uint16_t aead)
{
    bool ok = vec_eq_hex("exporter_secret", ctx->exporter_secret, 32, e, "exporter_secret");
    if (aead == SPK_HPKE_AEAD_AES128GCM) {
        ok = ok && vec_eq_hex("key", ctx->key, 16, e, "key") &&
             vec_eq_hex("base_nonce", ctx->base_nonce, 12, e, "base_nonce");
    }
    return ok;
}

static bool check_encryption(const json_t *x, spk_hpke_ctx_t *s, spk_hpke_ctx_t *r)
{
    spk_mls_bytes_t aad = {0}, pt = {0}, ct = {0};
    uint64_t seq = 0;
    uint8_t *buf = NULL;
    bool ok = vec_u64(x, "seq", &seq) && vec_hex(x, "aad", &aad) && vec_hex(x, "pt", &pt) &&
              vec_hex(x, "ct", &ct);
    if (ok) {
        buf = calloc(1, pt.n + ct.n + 16);
        ok = buf != NULL;
    }
    if (ok) {
        s->seq = seq;
        r->seq = seq;
        ok = vec_ok("seal", spk_hpke_seal(s, aad.p, aad.n, pt.p, pt.n, buf)) &&
             vec_eq("ct", buf, pt.n + 16, ct.p, ct.n) &&
             vec_ok("open", spk_hpke_open(r, aad.p, aad.n, ct.p, ct.n, buf)) &&
             vec_eq("pt", buf, ct.n - 16, pt.p, pt.n);
    }
    if (ok && (s->seq != seq + 1 || r->seq != seq + 1)) {
        ok = vec_fail("sequence number did not advance");
    }
    if (ok && ct.n > 0) {
        /* A corrupted ciphertext fails and leaves the sequence number alone. */
        ct.p[0] ^= 1;
        if (spk_hpke_open(r, aad.p, aad.n, ct.p, ct.n, buf) != SPK_EVERIFY || r->seq != seq + 1) {
            ok = vec_fail("corrupted ciphertext was accepted");
        }
    }
    free(buf);
    spk_mls_bytes_free(&aad);
    spk_mls_bytes_free(&pt);
    spk_mls_bytes_free(&ct);
    return ok;
}

static bool check_export(const json_t *x, const spk_hpke_ctx_t *s, const spk_hpke_ctx_t *r)
{
    spk_mls_bytes_t ectx = {0};
    uint64_t len = 0;
    uint8_t out[256], out2[256];
    bool ok = vec_hex(x, "exporter_context", &ectx) && vec_u64(x, "L", &len) && len <= 256;
    ok = ok && vec_ok("export", spk_hpke_export(s, ectx.p, ectx.n, out, (size_t)len)) &&
         vec_ok("export", spk_hpke_export(r, ectx.p, ectx.n, out2, (size_t)len)) &&
         vec_eq_hex("exported_value", out, (size_t)len, x, "exported_value") &&
         vec_eq_hex("exported_value (receiver)", out2, (size_t)len, x, "exported_value");
    spk_mls_bytes_free(&ectx);
    return ok;
}

static bool run_case(const json_t *e, hpke_case_t *c, uint64_t mode, uint16_t aead)
{
    spk_hpke_ctx_t s, r;
    uint8_t enc[32];
    spk_hpke_params_t p = {.mode = (spk_hpke_mode_t)mode,
                           .aead_id = aead,
                           .info = c->info.p,
                           .info_len = c->info.n,
                           .psk = c->psk.p,
                           .psk_len = c->psk.n,
                           .psk_id = c->psk_id.p,
                           .psk_id_len = c->psk_id.n,
                           .sk_s = c->sk_s,
                           .pk_s = c->pk_s};
    memset(&s, 0, sizeof s);
    memset(&r, 0, sizeof r);
    bool ok = vec_ok("setup sender",
                     spk_hpke_setup_sender_with_ephemeral(&s, &p, c->pk_r, 32, c->sk_e, enc)) &&
              vec_eq("enc", enc, 32, c->enc, 32) &&
              vec_ok("setup receiver", spk_hpke_setup_receiver(&r, &p, c->enc, 32, c->sk_r)) &&
              check_ctx(e, &s, aead) && check_ctx(e, &r, aead);
    const json_t *encs = json_object_get(e, "encryptions");
    for (size_t i = 0; ok && i < json_array_size(encs); i++) {
        ok = check_encryption(json_array_get(encs, i), &s, &r);
    }
    const json_t *exps = json_object_get(e, "exports");
    for (size_t i = 0; ok && i < json_array_size(exps); i++) {
        ok = check_export(json_array_get(exps, i), &s, &r);
    }
    if (ok && aead == SPK_HPKE_AEAD_EXPORT_ONLY && spk_hpke_seal(&s, NULL, 0, NULL, 0, enc) == 0) {
        ok = vec_fail("export-only context sealed");
    }
    spk_hpke_ctx_destroy(&s);
    spk_hpke_ctx_destroy(&r);
    return ok;
}

bool vec_hpke(const json_t *entry, size_t index)
{
    hpke_case_t c;
    uint64_t mode = 0, kem = 0, kdf = 0, aead = 0;
    memset(&c, 0, sizeof c);
    if (!vec_u64(entry, "mode", &mode) || !vec_u64(entry, "kem_id", &kem) ||
        !vec_u64(entry, "kdf_id", &kdf) || !vec_u64(entry, "aead_id", &aead)) {
        return false;
    }
    if (kem != SPK_HPKE_KEM_X25519_SHA256 || kdf != SPK_HPKE_KDF_HKDF_SHA256 ||
        (aead != SPK_HPKE_AEAD_AES128GCM && aead != SPK_HPKE_AEAD_EXPORT_ONLY) || mode > 3) {
        return vec_fail("unsupported suite or mode");
    }
    bool ok = load_case(entry, &c, mode) && run_case(entry, &c, mode, (uint16_t)aead);
    case_free(&c);
    return ok;
}
