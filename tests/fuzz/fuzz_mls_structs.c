/* libFuzzer target for the MLS wire-struct decoders and the ratchet tree.
 *
 * The first input byte selects the struct (modulo the table size); the rest is decoded. Every
 * encoding is canonical (minimal varints, optional octets 0/1, no trailing blank tree nodes), so
 * whatever decodes must re-encode to exactly the same bytes. Decoded trees are also hashed,
 * resolved and validated to exercise the tree code on arbitrary shapes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/validate.h"

#define ROUNDTRIP(name)                                                                            \
    static int rt_##name(const uint8_t *p, size_t n, spk_mls_bytes_t *out)                         \
    {                                                                                              \
        spk_mls_##name##_t x;                                                                      \
        int rc = spk_mls_##name##_decode(&x, p, n);                                                \
        if (rc == 0) {                                                                             \
            rc = spk_mls_##name##_encode(&x, out);                                                 \
            spk_mls_##name##_free(&x);                                                             \
        }                                                                                          \
        return rc;                                                                                 \
    }

static int rt_message(const uint8_t *p, size_t n, spk_mls_bytes_t *out)
{
    spk_mls_message_t x;
    mls_peek_t info;
    int peek = spk_mls_message_peek(p, n, &info);
    int rc = spk_mls_message_decode(&x, p, n);
    if (rc == 0) {
        if (peek != 0) {
            fprintf(stderr, "peek rejected a message that decodes\n");
            abort();
        }
        rc = spk_mls_message_encode(&x, out);
        spk_mls_message_free(&x);
    }
    return rc;
}

ROUNDTRIP(commit)
ROUNDTRIP(group_secrets)
ROUNDTRIP(update_path)
ROUNDTRIP(key_package)
ROUNDTRIP(leaf_node)
ROUNDTRIP(proposal)
ROUNDTRIP(group_info)

static int rt_tree(const uint8_t *p, size_t n, spk_mls_bytes_t *out)
{
    spk_mls_tree_t t;
    int rc = spk_mls_tree_decode(&t, p, n);
    if (rc != 0) {
        return rc;
    }
    uint8_t h[SPK_MLS_HASH_LEN];
    uint32_t *res;
    size_t n_res;
    (void)spk_mls_tree_root_hash(&t, h);
    if (spk_mls_tree_resolution(&t, spk_mls_tm_root(t.n_leaves), &res, &n_res) == 0) {
        free(res);
    }
    (void)spk_mls_tree_verify_unmerged(&t);
    if (t.n_leaves <= 64) {
        (void)spk_mls_tree_validate(&t, (const uint8_t *)"g", 1, NULL);
    }
    rc = spk_mls_tree_encode(&t, out);
    spk_mls_tree_free(&t);
    return rc;
}

typedef int (*rt_fn)(const uint8_t *p, size_t n, spk_mls_bytes_t *out);

static const rt_fn table[] = {rt_message,       rt_tree,        rt_commit,
                              rt_group_secrets, rt_update_path, rt_key_package,
                              rt_leaf_node,     rt_proposal,    rt_group_info};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    rt_fn fn = table[data[0] % (sizeof table / sizeof table[0])];
    spk_mls_bytes_t out = {NULL, 0};
    if (fn(data + 1, size - 1, &out) == 0) {
        if (out.n != size - 1 || (out.n > 0 && memcmp(out.p, data + 1, out.n) != 0)) {
            fprintf(stderr, "re-encoding differs from the input (selector %u)\n", data[0]);
            abort();
        }
        spk_mls_bytes_free(&out);
    }
    return 0;
}
