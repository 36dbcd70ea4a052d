/* RFC 9605 test vectors (sframe/test-vectors.json): header encoding, the AES-CTR + HMAC AEAD,
 * and whole frames (key derivation, nonce, AAD, ciphertext) for all five cipher suites.
 * Each case is checked both ways: what the library produces, and that it takes the given
 * bytes back (decode, decrypt), then refuses them once replayed or tampered with. */
#include <stdlib.h>
#include <string.h>

#include "sframe/sframe_int.h"
#include "spk/error.h"
#include "spk/sframe.h"
#include "vectors.h"

static bool header_case(const json_t *c)
{
    uint64_t kid = 0;
    uint64_t ctr = 0;
    uint8_t enc[SPK_SFRAME_MAX_HEADER];
    size_t len = 0;
    spk_mls_bytes_t want;
    spk_sframe_header_t h;
    if (!vec_u64(c, "kid", &kid) || !vec_u64(c, "ctr", &ctr) || !vec_hex(c, "encoded", &want)) {
        return false;
    }
    spk_sframe_header_encode(kid, ctr, enc, &len);
    bool ok = vec_eq("encoded", enc, len, want.p, want.n) &&
              spk_sframe_header_size(kid, ctr) == want.n &&
              vec_ok("decode", spk_sframe_header_decode(want.p, want.n, &h));
    if (ok && (h.kid != kid || h.ctr != ctr || h.len != want.n)) {
        ok = vec_fail("decoded (%llu, %llu, %zu)", (unsigned long long)h.kid,
                      (unsigned long long)h.ctr, h.len);
    }
    if (ok && want.n > 1 && spk_sframe_header_decode(want.p, want.n - 1, &h) != SPK_ETRUNC) {
        ok = vec_fail("a truncated header was accepted");
    }
    spk_mls_bytes_free(&want);
    return ok;
}

static bool ctr_hmac_case(const json_t *c)
{
    uint64_t suite = 0;
    spk_mls_bytes_t key, nonce, aad, pt, ct;
    sframe_key_t *tx = NULL;
    sframe_key_t *rx = NULL;
    const uint8_t zero_salt[SFRAME_NONCE_LEN] = {0};
    bool ok = vec_u64(c, "cipher_suite", &suite) && vec_hex(c, "key", &key) &&
              vec_hex(c, "nonce", &nonce) && vec_hex(c, "aad", &aad) && vec_hex(c, "pt", &pt) &&
              vec_hex(c, "ct", &ct);
    const sframe_suite_t *s = ok ? sframe_suite((uint16_t)suite) : NULL;
    ok = ok && s != NULL && key.n == s->nk && nonce.n == SFRAME_NONCE_LEN;
    ok = ok && vec_eq_hex("enc_key", key.p, s->nka, c, "enc_key") &&
         vec_eq_hex("auth_key", key.p + s->nka, key.n - s->nka, c, "auth_key");
    ok = ok && vec_ok("key", sframe_key_new(&tx, s, 0, SPK_SFRAME_SEND, key.p, zero_salt)) &&
         vec_ok("key", sframe_key_new(&rx, s, 0, SPK_SFRAME_RECV, key.p, zero_salt));
    uint8_t *out = malloc(ct.n + 1);
    ok = ok && out != NULL &&
         vec_ok("seal", sframe_aead_seal(tx, nonce.p, aad.p, aad.n, NULL, 0, pt.p, pt.n, out)) &&
         vec_eq("ct", out, pt.n + s->nt, ct.p, ct.n) &&
         vec_ok("open", sframe_aead_open(rx, nonce.p, aad.p, aad.n, NULL, 0, ct.p, ct.n, out)) &&
         vec_eq("pt", out, ct.n - s->nt, pt.p, pt.n);
    if (ok) {
        ct.p[ct.n - 1] ^= 1;
        if (sframe_aead_open(rx, nonce.p, aad.p, aad.n, NULL, 0, ct.p, ct.n, out) != SPK_EVERIFY) {
            ok = vec_fail("a tampered tag was accepted");
        }
    }
    free(out);
    sframe_key_free(tx);
    sframe_key_free(rx);
    spk_mls_bytes_t *all[] = {&key, &nonce, &aad, &pt, &ct};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        spk_mls_bytes_free(all[i]);
    }
    return ok;
}

/* Derivation steps of one frame case. */
static bool sframe_derivation(const json_t *c, const sframe_suite_t *s, uint64_t kid, uint64_t ctr,
                              const spk_mls_bytes_t *base, const spk_mls_bytes_t *metadata)
{
    uint8_t label[40];
    size_t label_len = 0;
    uint8_t secret[SFRAME_MAX_NH];
    uint8_t key[SFRAME_MAX_NK];
    uint8_t salt[SFRAME_NONCE_LEN];
    uint8_t nonce[SFRAME_NONCE_LEN];
    uint8_t aad[SPK_SFRAME_MAX_HEADER + 64];
    size_t hlen = 0;
    sframe_label(false, kid, s->id, label, &label_len);
    bool ok = vec_eq_hex("sframe_key_label", label, label_len, c, "sframe_key_label");
    sframe_label(true, kid, s->id, label, &label_len);
    ok = ok && vec_eq_hex("sframe_salt_label", label, label_len, c, "sframe_salt_label") &&
         vec_ok("extract", sframe_hkdf_extract(s, base->p, base->n, secret)) &&
         vec_eq_hex("sframe_secret", secret, s->nh, c, "sframe_secret") &&
         vec_ok("derive", sframe_derive(s, kid, base->p, base->n, key, salt)) &&
         vec_eq_hex("sframe_key", key, s->nk, c, "sframe_key") &&
         vec_eq_hex("sframe_salt", salt, sizeof(salt), c, "sframe_salt");
    sframe_nonce(salt, ctr, nonce);
    ok = ok && vec_eq_hex("nonce", nonce, sizeof(nonce), c, "nonce");
    spk_sframe_header_encode(kid, ctr, aad, &hlen);
    if (ok && metadata->n <= 64) {
        memcpy(aad + hlen, metadata->p, metadata->n);
        ok = vec_eq_hex("aad", aad, hlen + metadata->n, c, "aad");
    }
    return ok;
}

/* The whole frame through the public context API, both ways. */
static bool sframe_frames(uint16_t suite, uint64_t kid, uint64_t ctr, const spk_mls_bytes_t *base,
                          const spk_mls_bytes_t *md, const spk_mls_bytes_t *pt, spk_mls_bytes_t *ct)
{
    spk_sframe_ctx_t *tx = NULL;
    spk_sframe_ctx_t *rx = NULL;
    spk_sframe_header_t h;
    size_t n = 0;
    uint8_t *out = malloc(pt->n + SPK_SFRAME_MAX_OVERHEAD);
    bool ok =
        out != NULL && vec_ok("ctx", spk_sframe_ctx_create(&tx, suite)) &&
        vec_ok("ctx", spk_sframe_ctx_create(&rx, suite)) &&
        vec_ok("add", spk_sframe_ctx_add_key(tx, kid, SPK_SFRAME_SEND, base->p, base->n)) &&
        vec_ok("add", spk_sframe_ctx_add_key(rx, kid, SPK_SFRAME_RECV, base->p, base->n)) &&
        vec_ok("ctr", spk_sframe_ctx_set_next_ctr(tx, kid, ctr)) &&
        vec_ok("encrypt", spk_sframe_encrypt(tx, kid, md->p, md->n, pt->p, pt->n, out,
                                             pt->n + SPK_SFRAME_MAX_OVERHEAD, &n)) &&
        vec_eq("ct", out, n, ct->p, ct->n) &&
        vec_ok("decrypt", spk_sframe_decrypt(rx, md->p, md->n, ct->p, ct->n, out, ct->n, &n, &h)) &&
        vec_eq("pt", out, n, pt->p, pt->n);
    if (ok && (h.kid != kid || h.ctr != ctr)) {
        ok = vec_fail("decrypted header (%llu, %llu)", (unsigned long long)h.kid,
                      (unsigned long long)h.ctr);
    }
    if (ok &&
        spk_sframe_decrypt(rx, md->p, md->n, ct->p, ct->n, out, ct->n, &n, NULL) != SPK_EREPLAY) {
        ok = vec_fail("a replayed frame was accepted");
    }
    if (ok) {
        ct->p[ct->n - 1] ^= 1;
        spk_sframe_ctx_free(rx);
        rx = NULL;
        ok = vec_ok("ctx", spk_sframe_ctx_create(&rx, suite)) &&
             vec_ok("add", spk_sframe_ctx_add_key(rx, kid, SPK_SFRAME_RECV, base->p, base->n));
        if (ok && spk_sframe_decrypt(rx, md->p, md->n, ct->p, ct->n, out, ct->n, &n, NULL) !=
                      SPK_EVERIFY) {
            ok = vec_fail("a tampered frame was accepted");
        }
        ct->p[ct->n - 1] ^= 1;
    }
    spk_sframe_ctx_free(tx);
    spk_sframe_ctx_free(rx);
    free(out);
    return ok;
}

static bool sframe_case(const json_t *c)
{
    uint64_t suite = 0;
    uint64_t kid = 0;
    uint64_t ctr = 0;
    spk_mls_bytes_t base, md, pt, ct;
    memset(&base, 0, sizeof(base));
    md = pt = ct = base;
    bool ok = vec_u64(c, "cipher_suite", &suite) && vec_u64(c, "kid", &kid) &&
              vec_u64(c, "ctr", &ctr) && vec_hex(c, "base_key", &base) &&
              vec_hex(c, "metadata", &md) && vec_hex(c, "pt", &pt) && vec_hex(c, "ct", &ct);
    const sframe_suite_t *s = ok ? sframe_suite((uint16_t)suite) : NULL;
    if (ok && s == NULL) {
        ok = vec_fail("cipher suite %llu not supported", (unsigned long long)suite);
    }
    ok = ok && sframe_derivation(c, s, kid, ctr, &base, &md) &&
         sframe_frames((uint16_t)suite, kid, ctr, &base, &md, &pt, &ct);
    spk_mls_bytes_free(&base);
    spk_mls_bytes_free(&md);
    spk_mls_bytes_free(&pt);
    spk_mls_bytes_free(&ct);
    return ok;
}

bool vec_sframe(const json_t *entry, size_t index)
{
    (void)index;
    const char *section = vec_str(entry, "section");
    const json_t *c = json_object_get(entry, "case");
    if (section == NULL || !json_is_object(c)) {
        return vec_fail("malformed entry");
    }
    if (strcmp(section, "header") == 0) {
        return header_case(c);
    }
    if (strcmp(section, "aes_ctr_hmac") == 0) {
        return ctr_hmac_case(c);
    }
    if (strcmp(section, "sframe") == 0) {
        return sframe_case(c);
    }
    return vec_fail("unknown section %s", section);
}
