/* tree-validation.json: per node resolution (§4.1.1) and tree hash (§7.8); parent hashes
 * (§7.9.2) and leaf signatures with group_id as context (§7.3) must verify. */
#include <stdlib.h>
#include <string.h>

#include "mls/tree.h"
#include "mls/validate.h"
#include "spk/error.h"
#include "vectors.h"

static bool check_resolutions(const spk_mls_tree_t *t, const json_t *res)
{
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    if (!json_is_array(res) || json_array_size(res) != width) {
        return vec_fail("resolutions: %zu entries for a tree of %u nodes", json_array_size(res),
                        width);
    }
    for (uint32_t x = 0; x < width; x++) {
        const json_t *want = json_array_get(res, x);
        uint32_t *got;
        size_t n;
        if (!vec_ok("resolution", spk_mls_tree_resolution(t, x, &got, &n))) {
            return false;
        }
        bool ok = json_array_size(want) == n;
        for (size_t i = 0; ok && i < n; i++) {
            ok = (json_int_t)got[i] == json_integer_value(json_array_get(want, i));
        }
        free(got);
        if (!ok) {
            return vec_fail("resolution of node %u differs", x);
        }
    }
    return true;
}

static bool check_hashes(const spk_mls_tree_t *t, const json_t *hashes)
{
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    if (!json_is_array(hashes) || json_array_size(hashes) != width) {
        return vec_fail("tree_hashes: %zu entries for %u nodes", json_array_size(hashes), width);
    }
    uint8_t(*got)[SPK_MLS_HASH_LEN] = malloc((size_t)width * SPK_MLS_HASH_LEN);
    if (got == NULL) {
        return vec_fail("out of memory");
    }
    bool ok = vec_ok("tree hashes", spk_mls_tree_hashes(t, got));
    for (uint32_t x = 0; ok && x < width; x++) {
        spk_mls_bytes_t want = {NULL, 0};
        const char *s = json_string_value(json_array_get(hashes, x));
        json_t *tmp = json_pack("{s:s}", "h", s != NULL ? s : "");
        ok = tmp != NULL && vec_hex(tmp, "h", &want) &&
             vec_eq("tree hash", got[x], SPK_MLS_HASH_LEN, want.p, want.n);
        spk_mls_bytes_free(&want);
        json_decref(tmp);
    }
    free(got);
    return ok;
}

bool vec_tree_validation(const json_t *entry, size_t index)
{
    spk_mls_bytes_t enc;
    spk_mls_bytes_t group_id;
    spk_mls_tree_t t;
    uint64_t suite;
    if (!vec_u64(entry, "cipher_suite", &suite) || !vec_hex(entry, "tree", &enc)) {
        return false;
    }
    if (suite != 1) {
        spk_mls_bytes_free(&enc);
        return vec_fail("cipher suite %llu not supported", (unsigned long long)suite);
    }
    if (!vec_hex(entry, "group_id", &group_id)) {
        spk_mls_bytes_free(&enc);
        return false;
    }
    bool ok = vec_ok("tree decode", spk_mls_tree_decode(&t, enc.p, enc.n));
    if (ok) {
        ok = check_resolutions(&t, json_object_get(entry, "resolutions")) &&
             check_hashes(&t, json_object_get(entry, "tree_hashes")) &&
             vec_ok("unmerged leaves", spk_mls_tree_verify_unmerged(&t)) &&
             vec_ok("parent hashes", spk_mls_tree_verify_parent_hashes(&t)) &&
             vec_ok("leaf signatures", spk_mls_tree_verify_leaves(&t, group_id.p, group_id.n)) &&
             vec_ok("tree validation", spk_mls_tree_validate(&t, group_id.p, group_id.n, NULL));
        spk_mls_tree_free(&t);
    }
    spk_mls_bytes_free(&enc);
    spk_mls_bytes_free(&group_id);
    return ok;
}
