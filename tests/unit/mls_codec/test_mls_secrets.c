/* Unit tests for the secret tree window (RFC 9420 §9), HPKE contexts (RFC 9180 §5.2) and
 * PrivateMessage state handling (§6.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mls/msgprot.h"
#include "mls/secrettree.h"
#include "spk/error.h"
#include "spk/hpke.h"

static const uint8_t secret[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void test_window_bounds(void **state)
{
    spk_mls_secret_tree_t a, b;
    uint8_t k1[16], n1[12], k2[16], n2[12];
    assert_int_equal(spk_mls_secret_tree_init(&a, secret, 4), 0);
    assert_int_equal(spk_mls_secret_tree_init(&b, secret, 4), 0);
    /* Jump to generation 300: generations 44..299 stay in the window, 0..43 are evicted. */
    assert_int_equal(spk_mls_secret_tree_consume(&a, 2, SPK_MLS_RATCHET_APPLICATION, 300, k1, n1),
                     0);
    assert_int_equal(spk_mls_secret_tree_consume(&a, 2, SPK_MLS_RATCHET_APPLICATION, 43, k1, n1),
                     SPK_ENOTFOUND);
    assert_int_equal(spk_mls_secret_tree_consume(&a, 2, SPK_MLS_RATCHET_APPLICATION, 44, k1, n1),
                     0);
    assert_int_equal(spk_mls_secret_tree_peek(&b, 2, SPK_MLS_RATCHET_APPLICATION, 44, k2, n2), 0);
    assert_memory_equal(k1, k2, 16);
    assert_memory_equal(n1, n2, 12);
    assert_int_equal(spk_mls_secret_tree_consume(&a, 2, SPK_MLS_RATCHET_APPLICATION, 299, k1, n1),
                     0);
    /* Beyond the forward bound. */
    assert_int_equal(spk_mls_secret_tree_peek(&a, 2, SPK_MLS_RATCHET_APPLICATION,
                                              301 + SPK_MLS_RATCHET_MAX_FORWARD + 1, k1, n1),
                     SPK_ERANGE);
    assert_int_equal(spk_mls_secret_tree_peek(&a, 2, SPK_MLS_RATCHET_APPLICATION,
                                              301 + SPK_MLS_RATCHET_MAX_FORWARD, k1, n1),
                     0);
    /* Bad leaf and type. */
    assert_int_equal(spk_mls_secret_tree_peek(&a, 4, SPK_MLS_RATCHET_APPLICATION, 0, k1, n1),
                     SPK_EINVAL);
    assert_int_equal(spk_mls_secret_tree_peek(&a, 0, (spk_mls_ratchet_type_t)7, 0, k1, n1),
                     SPK_EINVAL);
    spk_mls_secret_tree_free(&a);
    spk_mls_secret_tree_free(&b);
    spk_mls_secret_tree_free(&b); /* idempotent */
}

static void test_peek_keeps_state(void **state)
{
    spk_mls_secret_tree_t st;
    uint8_t k[16], n[12], k0[16], n0[12];
    uint32_t gen = 99;
    assert_int_equal(spk_mls_secret_tree_init(&st, secret, 8), 0);
    assert_int_equal(spk_mls_secret_tree_peek(&st, 5, SPK_MLS_RATCHET_HANDSHAKE, 0, k0, n0), 0);
    assert_int_equal(spk_mls_secret_tree_peek(&st, 5, SPK_MLS_RATCHET_HANDSHAKE, 7, k, n), 0);
    assert_int_equal(spk_mls_secret_tree_next(&st, 5, SPK_MLS_RATCHET_HANDSHAKE, &gen, k, n), 0);
    assert_int_equal(gen, 0);
    assert_memory_equal(k, k0, 16);
    assert_memory_equal(n, n0, 12);
    assert_int_equal(spk_mls_secret_tree_next(&st, 5, SPK_MLS_RATCHET_HANDSHAKE, &gen, k, n), 0);
    assert_int_equal(gen, 1);
    /* The application ratchet of the same leaf is independent. */
    assert_int_equal(spk_mls_secret_tree_next(&st, 5, SPK_MLS_RATCHET_APPLICATION, &gen, k, n), 0);
    assert_int_equal(gen, 0);
    /* Other leaves are still derivable after leaf 5's path was consumed. */
    for (uint32_t l = 0; l < 8; l++) {
        assert_int_equal(spk_mls_secret_tree_peek(&st, l, SPK_MLS_RATCHET_APPLICATION, 1, k, n), 0);
    }
    spk_mls_secret_tree_free(&st);
}

static void test_hpke_context(void **state)
{
    uint8_t sk[32], pk[32], enc[32], ct[3][21], pt[5];
    spk_hpke_ctx_t s, r;
    const uint8_t info[] = "info";
    spk_hpke_params_t p = {.mode = SPK_HPKE_MODE_BASE,
                           .aead_id = SPK_HPKE_AEAD_AES128GCM,
                           .info = info,
                           .info_len = 4};
    assert_int_equal(spk_hpke_generate_key_pair(sk, pk), 0);
    assert_int_equal(spk_hpke_setup_sender(&s, &p, pk, 32, enc), 0);
    assert_int_equal(spk_hpke_setup_receiver(&r, &p, enc, 32, sk), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(spk_hpke_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct[i]), 0);
    }
    /* Out of order: sequence 1 cannot be opened at sequence 0, and the failure keeps seq. */
    assert_int_equal(spk_hpke_open(&r, NULL, 0, ct[1], sizeof ct[1], pt), SPK_EVERIFY);
    assert_int_equal(r.seq, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(spk_hpke_open(&r, NULL, 0, ct[i], sizeof ct[i], pt), 0);
        assert_memory_equal(pt, "hello", 5);
    }
    assert_int_equal(spk_hpke_open(&r, NULL, 0, ct[0], 15, pt), SPK_ETRUNC);
    uint8_t e1[40], e2[40];
    assert_int_equal(spk_hpke_export(&s, info, 4, e1, sizeof e1), 0);
    assert_int_equal(spk_hpke_export(&r, info, 4, e2, sizeof e2), 0);
    assert_memory_equal(e1, e2, sizeof e1);
    spk_hpke_ctx_destroy(&s);
    spk_hpke_ctx_destroy(&r);
    /* Export-only contexts cannot seal. */
    p.aead_id = SPK_HPKE_AEAD_EXPORT_ONLY;
    assert_int_equal(spk_hpke_setup_sender(&s, &p, pk, 32, enc), 0);
    assert_int_equal(spk_hpke_seal(&s, NULL, 0, pt, 5, ct[0]), SPK_EINVAL);
    spk_hpke_ctx_destroy(&s);
}

static const uint8_t sig_seed[32] = {42};
static uint8_t sig_pub[32];

static int sig_key_cb(void *arg, uint32_t leaf, const uint8_t **pub, size_t *len)
{
    *pub = sig_pub;
    *len = sizeof sig_pub;
    return 0;
}

static void test_private_message_tamper(void **state)
{
    const uint8_t gc[] = {0, 1, 0, 1, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0};
    const uint8_t sd_secret[32] = {9};
    uint8_t gid[] = {'g'};
    uint8_t data[] = {'h', 'i'};
    spk_mls_framed_content_t fc;
    spk_mls_secret_tree_t tx, rx;
    spk_mls_bytes_t msg = {0};
    spk_mls_message_t m;
    spk_mls_auth_content_t ac;

    assert_int_equal(spk_mls_ed25519_pub(sig_seed, sig_pub), 0);
    memset(&fc, 0, sizeof fc);
    fc.group_id = (spk_mls_bytes_t){gid, sizeof gid};
    fc.epoch = 7;
    fc.sender.type = SPK_MLS_SENDER_MEMBER;
    fc.sender.index = 1;
    fc.content_type = SPK_MLS_CONTENT_APPLICATION;
    fc.application_data = (spk_mls_bytes_t){data, sizeof data};
    assert_int_equal(spk_mls_secret_tree_init(&tx, secret, 2), 0);
    assert_int_equal(spk_mls_secret_tree_init(&rx, secret, 2), 0);
    assert_int_equal(spk_mls_private_message_protect(&fc, NULL, gc, sizeof gc, sig_seed, &tx,
                                                     sd_secret, 3, &msg),
                     0);
    memset(&m, 0, sizeof m);
    assert_int_equal(spk_mls_message_decode(&m, msg.p, msg.n), 0);
    /* Tampered ciphertext: fails, and the receiver's key is still there afterwards. */
    m.u.priv.ciphertext.p[m.u.priv.ciphertext.n - 1] ^= 1;
    assert_int_equal(spk_mls_private_message_unprotect(&m.u.priv, gc, sizeof gc, &rx, sd_secret,
                                                       sig_key_cb, NULL, &ac),
                     SPK_EVERIFY);
    m.u.priv.ciphertext.p[m.u.priv.ciphertext.n - 1] ^= 1;
    /* Wrong GroupContext: the signature fails. */
    uint8_t gc2[sizeof gc];
    memcpy(gc2, gc, sizeof gc);
    gc2[13] = 8;
    assert_int_equal(spk_mls_private_message_unprotect(&m.u.priv, gc2, sizeof gc2, &rx, sd_secret,
                                                       sig_key_cb, NULL, &ac),
                     SPK_EVERIFY);
    assert_int_equal(spk_mls_private_message_unprotect(&m.u.priv, gc, sizeof gc, &rx, sd_secret,
                                                       sig_key_cb, NULL, &ac),
                     0);
    assert_int_equal(ac.content.sender.index, 1);
    assert_int_equal(ac.content.application_data.n, 2);
    assert_memory_equal(ac.content.application_data.p, data, 2);
    spk_mls_auth_content_free(&ac);
    spk_mls_message_free(&m);
    spk_mls_bytes_free(&msg);
    spk_mls_secret_tree_free(&tx);
    spk_mls_secret_tree_free(&rx);
}

/* Every single-bit flip and every truncation of a protected message must be rejected. */
static void test_mutations(void **state)
{
    const uint8_t gc[] = {0, 1, 0, 1, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0};
    const uint8_t sd_secret[32] = {9};
    const uint8_t mkey[32] = {5};
    uint8_t gid[] = {'g'};
    uint8_t data[] = {'h', 'i', '!'};
    spk_mls_framed_content_t fc;
    spk_mls_secret_tree_t tx, rx;
    spk_mls_bytes_t priv = {0}, pub = {0};

    assert_int_equal(spk_mls_ed25519_pub(sig_seed, sig_pub), 0);
    memset(&fc, 0, sizeof fc);
    fc.group_id = (spk_mls_bytes_t){gid, sizeof gid};
    fc.epoch = 7;
    fc.sender.type = SPK_MLS_SENDER_MEMBER;
    fc.sender.index = 0;
    fc.authenticated_data = (spk_mls_bytes_t){data, 1};
    fc.content_type = SPK_MLS_CONTENT_APPLICATION;
    fc.application_data = (spk_mls_bytes_t){data, sizeof data};
    assert_int_equal(spk_mls_secret_tree_init(&tx, secret, 2), 0);
    assert_int_equal(spk_mls_secret_tree_init(&rx, secret, 2), 0);
    assert_int_equal(spk_mls_private_message_protect(&fc, NULL, gc, sizeof gc, sig_seed, &tx,
                                                     sd_secret, 2, &priv),
                     0);
    fc.content_type = SPK_MLS_CONTENT_PROPOSAL;
    fc.proposal.type = SPK_MLS_PROPOSAL_REMOVE;
    fc.proposal.u.remove = 1;
    assert_int_equal(spk_mls_public_message_protect(&fc, NULL, gc, sizeof gc, sig_seed, mkey, &pub),
                     0);
    for (size_t n = 0; n < priv.n + priv.n * 8; n++) {
        /* First every truncation, then every single-bit flip. */
        size_t len = n < priv.n ? n : priv.n;
        size_t flip = n < priv.n ? 0 : n - priv.n;
        spk_mls_message_t m;
        spk_mls_auth_content_t ac;
        memset(&m, 0, sizeof m);
        if (n >= priv.n) {
            priv.p[flip / 8] ^= (uint8_t)(1u << (flip % 8));
        }
        if (spk_mls_message_decode(&m, priv.p, len) == 0) {
            assert_true(m.wire_format != SPK_MLS_WIRE_PRIVATE ||
                        spk_mls_private_message_unprotect(&m.u.priv, gc, sizeof gc, &rx, sd_secret,
                                                          sig_key_cb, NULL, &ac) != 0);
            spk_mls_message_free(&m);
        }
        if (n >= priv.n) {
            priv.p[flip / 8] ^= (uint8_t)(1u << (flip % 8));
        }
    }
    for (size_t n = 0; n < pub.n; n++) {
        for (int bit = 0; bit < 8; bit++) {
            spk_mls_message_t m;
            memset(&m, 0, sizeof m);
            pub.p[n] ^= (uint8_t)(1u << bit);
            if (spk_mls_message_decode(&m, pub.p, pub.n) == 0) {
                assert_true(
                    m.wire_format != SPK_MLS_WIRE_PUBLIC ||
                    spk_mls_public_message_verify(&m.u.pub, gc, sizeof gc, mkey, sig_pub, 32) != 0);
                spk_mls_message_free(&m);
            }
            pub.p[n] ^= (uint8_t)(1u << bit);
        }
    }
    /* The untouched messages still verify, and the receiver's key was never consumed. */
    spk_mls_message_t m;
    spk_mls_auth_content_t ac;
    memset(&m, 0, sizeof m);
    assert_int_equal(spk_mls_message_decode(&m, priv.p, priv.n), 0);
    assert_int_equal(spk_mls_private_message_unprotect(&m.u.priv, gc, sizeof gc, &rx, sd_secret,
                                                       sig_key_cb, NULL, &ac),
                     0);
    spk_mls_auth_content_free(&ac);
    spk_mls_message_free(&m);
    assert_int_equal(spk_mls_message_decode(&m, pub.p, pub.n), 0);
    assert_int_equal(spk_mls_public_message_verify(&m.u.pub, gc, sizeof gc, mkey, sig_pub, 32), 0);
    spk_mls_message_free(&m);
    spk_mls_bytes_free(&priv);
    spk_mls_bytes_free(&pub);
    spk_mls_secret_tree_free(&tx);
    spk_mls_secret_tree_free(&rx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_bounds), cmocka_unit_test(test_peek_keeps_state),
        cmocka_unit_test(test_hpke_context),  cmocka_unit_test(test_private_message_tamper),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
