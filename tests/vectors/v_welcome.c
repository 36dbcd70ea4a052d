/* welcome.json: decrypt GroupSecrets and GroupInfo from a Welcome, verify the GroupInfo
 * signature and confirmation tag (RFC 9420 §12.4.3.1). */
#include <string.h>

#include "mls/welcome_crypto.h"
#include "spk/error.h"
#include "vectors.h"

typedef struct {
    spk_mls_message_t kp, welcome;
    spk_mls_group_secrets_t gs;
    spk_mls_group_info_t gi;
    spk_mls_bytes_t kp_raw, welcome_raw;
    uint8_t init_priv[32], signer_pub[32], ref[32];
} wc_case_t;

static void case_free(wc_case_t *c)
{
    spk_mls_message_free(&c->kp);
    spk_mls_message_free(&c->welcome);
    spk_mls_group_secrets_free(&c->gs);
    spk_mls_group_info_free(&c->gi);
    spk_mls_bytes_free(&c->kp_raw);
    spk_mls_bytes_free(&c->welcome_raw);
}

/* Re-seals the GroupInfo and GroupSecrets and opens them again. */
static bool round_trip(wc_case_t *c)
{
    uint8_t pub[32];
    spk_mls_welcome_t w;
    spk_mls_group_secrets_t gs2;
    spk_mls_group_info_t gi2;
    spk_mls_encrypted_group_secrets_t egs;
    const spk_mls_key_package_t *kp = &c->kp.u.key_package;
    memset(&w, 0, sizeof w);
    memset(&gs2, 0, sizeof gs2);
    memset(&gi2, 0, sizeof gi2);
    memset(&egs, 0, sizeof egs);
    w.cipher_suite = 1;
    w.secrets = &egs;
    w.n_secrets = 1;
    bool ok =
        vec_ok("init pub", spk_mls_x25519_pub(c->init_priv, pub)) &&
        vec_eq("init key", pub, 32, kp->init_key.p, kp->init_key.n) &&
        vec_ok("seal group info", spk_mls_welcome_seal_group_info(&c->gi, c->gs.joiner_secret.p,
                                                                  NULL, &w.encrypted_group_info)) &&
        vec_ok("seal secrets",
               spk_mls_welcome_seal_secrets(&c->gs, pub, 32, &w.encrypted_group_info,
                                            &egs.encrypted_group_secrets)) &&
        vec_ok("ref", spk_mls_bytes_dup(&egs.new_member, c->ref, 32)) &&
        vec_ok("open secrets", spk_mls_welcome_open_secrets(&w, c->ref, c->init_priv, &gs2)) &&
        vec_eq("joiner secret", gs2.joiner_secret.p, gs2.joiner_secret.n, c->gs.joiner_secret.p,
               c->gs.joiner_secret.n) &&
        vec_ok("open group info",
               spk_mls_welcome_open_group_info(&w, gs2.joiner_secret.p, NULL, &gi2)) &&
        vec_ok("verify", spk_mls_group_info_verify(&gi2, c->signer_pub, 32));
    spk_mls_bytes_free(&w.encrypted_group_info);
    spk_mls_encrypted_group_secrets_free(&egs);
    spk_mls_group_secrets_free(&gs2);
    spk_mls_group_info_free(&gi2);
    return ok;
}

bool vec_welcome(const json_t *entry, size_t index)
{
    wc_case_t c;
    memset(&c, 0, sizeof c);
    bool ok = vec_hex_fixed(entry, "init_priv", c.init_priv, 32) &&
              vec_hex_fixed(entry, "signer_pub", c.signer_pub, 32) &&
              vec_hex(entry, "key_package", &c.kp_raw) && vec_hex(entry, "welcome", &c.welcome_raw);
    ok = ok &&
         vec_ok("decode key package", spk_mls_message_decode(&c.kp, c.kp_raw.p, c.kp_raw.n)) &&
         vec_ok("decode welcome",
                spk_mls_message_decode(&c.welcome, c.welcome_raw.p, c.welcome_raw.n));
    if (ok && (c.kp.wire_format != SPK_MLS_WIRE_KEY_PACKAGE ||
               c.welcome.wire_format != SPK_MLS_WIRE_WELCOME || c.kp_raw.n < 4)) {
        ok = vec_fail("unexpected wire formats");
    }
    /* KeyPackageRef over the serialized KeyPackage (the MLSMessage body). */
    ok = ok && vec_ok("ref", spk_mls_make_key_package_ref(c.kp_raw.p + 4, c.kp_raw.n - 4, c.ref)) &&
         vec_ok("open secrets",
                spk_mls_welcome_open_secrets(&c.welcome.u.welcome, c.ref, c.init_priv, &c.gs));
    if (ok && (c.gs.n_psks != 0 || c.gs.joiner_secret.n != SPK_MLS_HASH_LEN)) {
        ok = vec_fail("unexpected PSKs or joiner secret size");
    }
    ok = ok &&
         vec_ok("open group info", spk_mls_welcome_open_group_info(
                                       &c.welcome.u.welcome, c.gs.joiner_secret.p, NULL, &c.gi)) &&
         vec_ok("group info signature", spk_mls_group_info_verify(&c.gi, c.signer_pub, 32)) &&
         vec_ok("confirmation tag",
                spk_mls_group_info_check_confirmation(&c.gi, c.gs.joiner_secret.p, NULL, NULL));
    if (ok) {
        /* A wrong joiner secret must not open the GroupInfo. */
        spk_mls_group_info_t bad;
        uint8_t wrong[32];
        memcpy(wrong, c.gs.joiner_secret.p, 32);
        wrong[31] ^= 1;
        if (spk_mls_welcome_open_group_info(&c.welcome.u.welcome, wrong, NULL, &bad) !=
            SPK_EVERIFY) {
            spk_mls_group_info_free(&bad);
            ok = vec_fail("GroupInfo opened with a wrong joiner secret");
        }
    }
    ok = ok && round_trip(&c);
    case_free(&c);
    return ok;
}
