/* secret-tree.json: sender-data key/nonce and handshake/application keys and nonces at several
 * generations for every leaf (RFC 9420 §6.3.2, §9). */
#include <string.h>

#include "mls/secrettree.h"
#include "spk/error.h"
#include "vectors.h"

static bool check_sender_data(const json_t *sd)
{
    uint8_t secret[32], key[16], nonce[12];
    spk_mls_bytes_t ct = {0};
    bool ok =
        vec_hex_fixed(sd, "sender_data_secret", secret, 32) && vec_hex(sd, "ciphertext", &ct) &&
        vec_ok("sender data", spk_mls_sender_data_key_nonce(secret, ct.p, ct.n, key, nonce)) &&
        vec_eq_hex("sender data key", key, 16, sd, "key") &&
        vec_eq_hex("sender data nonce", nonce, 12, sd, "nonce");
    spk_mls_bytes_free(&ct);
    return ok;
}

/* Checks one (generation, keys) record: peek first, then consume, then the key must be gone. */
static bool check_gen(spk_mls_secret_tree_t *st, uint32_t leaf, const json_t *g)
{
    static const char *names[2][2] = {{"handshake_key", "handshake_nonce"},
                                      {"application_key", "application_nonce"}};
    uint64_t gen = 0;
    uint8_t key[16], nonce[12], key2[16], nonce2[12];
    if (!vec_u64(g, "generation", &gen) || gen > UINT32_MAX) {
        return false;
    }
    for (int t = 0; t < 2; t++) {
        spk_mls_ratchet_type_t type = (spk_mls_ratchet_type_t)t;
        bool ok =
            vec_ok("peek", spk_mls_secret_tree_peek(st, leaf, type, (uint32_t)gen, key, nonce)) &&
            vec_eq_hex(names[t][0], key, 16, g, names[t][0]) &&
            vec_eq_hex(names[t][1], nonce, 12, g, names[t][1]) &&
            vec_ok("consume",
                   spk_mls_secret_tree_consume(st, leaf, type, (uint32_t)gen, key2, nonce2)) &&
            vec_eq("consumed key", key2, 16, key, 16) &&
            vec_eq("consumed nonce", nonce2, 12, nonce, 12);
        if (ok && spk_mls_secret_tree_consume(st, leaf, type, (uint32_t)gen, key2, nonce2) !=
                      SPK_ENOTFOUND) {
            ok = vec_fail("leaf %u generation %llu could be consumed twice", leaf,
                          (unsigned long long)gen);
        }
        if (!ok) {
            return vec_fail("leaf %u generation %llu", leaf, (unsigned long long)gen);
        }
    }
    return true;
}

/* Out-of-order use: consume the last listed generation first, then the earlier ones from the
 * skipped-key window. */
static bool check_out_of_order(const uint8_t secret[32], uint32_t n_leaves, const json_t *leaves)
{
    spk_mls_secret_tree_t st;
    bool ok = vec_ok("init", spk_mls_secret_tree_init(&st, secret, n_leaves));
    for (uint32_t i = 0; ok && i < n_leaves; i++) {
        const json_t *gens = json_array_get(leaves, i);
        for (size_t k = json_array_size(gens); ok && k > 0; k--) {
            ok = check_gen(&st, i, json_array_get(gens, k - 1));
        }
    }
    uint8_t key[16], nonce[12];
    if (ok && spk_mls_secret_tree_peek(&st, 0, SPK_MLS_RATCHET_APPLICATION, 100000, key, nonce) !=
                  SPK_ERANGE) {
        ok = vec_fail("a generation beyond the window was accepted");
    }
    spk_mls_secret_tree_free(&st);
    return ok;
}

bool vec_secret_tree(const json_t *entry, size_t index)
{
    uint8_t secret[32];
    spk_mls_secret_tree_t st;
    const json_t *leaves = json_object_get(entry, "leaves");
    uint32_t n = (uint32_t)json_array_size(leaves);
    bool ok = check_sender_data(json_object_get(entry, "sender_data")) &&
              vec_hex_fixed(entry, "encryption_secret", secret, 32) && n > 0 &&
              vec_ok("init", spk_mls_secret_tree_init(&st, secret, n));
    if (!ok) {
        return false;
    }
    for (uint32_t i = 0; ok && i < n; i++) {
        const json_t *gens = json_array_get(leaves, i);
        for (size_t k = 0; ok && k < json_array_size(gens); k++) {
            ok = check_gen(&st, i, json_array_get(gens, k));
        }
    }
    spk_mls_secret_tree_free(&st);
    return ok && check_out_of_order(secret, n, leaves);
}
