/* tree-math.json: n_nodes, root, left, right, parent, sibling (RFC 9420 Appendix C). */
#include "mls/treemath.h"
#include "spk/error.h"
#include "vectors.h"

typedef int (*tm_fn)(uint32_t x, uint32_t n_leaves, uint32_t *out);

static int tm_left(uint32_t x, uint32_t n, uint32_t *out)
{
    return spk_mls_tm_left(x, out);
}

static int tm_right(uint32_t x, uint32_t n, uint32_t *out)
{
    return spk_mls_tm_right(x, out);
}

/* Compares fn(i) with the array field key (null where undefined). */
static bool check_array(const json_t *e, const char *key, tm_fn fn, uint32_t n_leaves,
                        uint32_t n_nodes)
{
    const json_t *arr = json_object_get(e, key);
    if (!json_is_array(arr) || json_array_size(arr) != n_nodes) {
        return vec_fail("field '%s' missing or of the wrong size", key);
    }
    for (uint32_t i = 0; i < n_nodes; i++) {
        const json_t *want = json_array_get(arr, i);
        uint32_t got = 0;
        int rc = fn(i, n_leaves, &got);
        if (json_is_null(want)) {
            if (rc == 0) {
                return vec_fail("%s[%u] = %u, expected undefined", key, i, got);
            }
        } else if (rc != 0 || !json_is_integer(want) || json_integer_value(want) != got) {
            return vec_fail("%s[%u]: got %u (rc %d), expected %lld", key, i, got, rc,
                            (long long)json_integer_value(want));
        }
    }
    return true;
}

/* Cross-checks direct path, copath and common ancestors against the primitive operations. */
static bool check_paths(uint32_t n_leaves)
{
    uint32_t dp[SPK_MLS_TM_MAX_DEPTH], cp[SPK_MLS_TM_MAX_DEPTH];
    size_t ndp = 0, ncp = 0;
    for (uint32_t x = 0; x < spk_mls_tm_node_width(n_leaves); x++) {
        if (spk_mls_tm_direct_path(x, n_leaves, dp, SPK_MLS_TM_MAX_DEPTH, &ndp) != 0 ||
            spk_mls_tm_copath(x, n_leaves, cp, SPK_MLS_TM_MAX_DEPTH, &ncp) != 0 || ndp != ncp) {
            return vec_fail("direct path / copath of %u", x);
        }
        uint32_t y = x;
        for (size_t i = 0; i < ndp; i++) {
            uint32_t p = 0, s = 0;
            if (spk_mls_tm_sibling(y, n_leaves, &s) != 0 || s != cp[i] ||
                spk_mls_tm_parent(y, n_leaves, &p) != 0 || p != dp[i] ||
                !spk_mls_tm_in_subtree(x, p) || spk_mls_tm_in_subtree(x, s)) {
                return vec_fail("path step %zu of node %u", i, x);
            }
            y = p;
        }
        for (uint32_t l = 0; l < n_leaves && n_leaves <= 64; l++) {
            uint32_t a = spk_mls_tm_common_ancestor(x, 2 * l);
            if (!spk_mls_tm_in_subtree(x, a) || !spk_mls_tm_in_subtree(2 * l, a)) {
                return vec_fail("common ancestor of %u and leaf %u", x, l);
            }
            uint32_t ch = 0;
            bool lower = spk_mls_tm_left(a, &ch) == 0 && spk_mls_tm_in_subtree(x, ch) &&
                         spk_mls_tm_in_subtree(2 * l, ch);
            lower = lower || (spk_mls_tm_right(a, &ch) == 0 && spk_mls_tm_in_subtree(x, ch) &&
                              spk_mls_tm_in_subtree(2 * l, ch));
            if (lower) {
                return vec_fail("common ancestor of %u and leaf %u is not the lowest", x, l);
            }
        }
    }
    return true;
}

bool vec_tree_math(const json_t *entry, size_t index)
{
    uint64_t n_leaves = 0, n_nodes = 0, root = 0;
    if (!vec_u64(entry, "n_leaves", &n_leaves) || !vec_u64(entry, "n_nodes", &n_nodes) ||
        !vec_u64(entry, "root", &root) || n_leaves > (1u << 20)) {
        return false;
    }
    uint32_t nl = (uint32_t)n_leaves;
    if (spk_mls_tm_node_width(nl) != n_nodes) {
        return vec_fail("n_nodes: got %u, expected %llu", spk_mls_tm_node_width(nl),
                        (unsigned long long)n_nodes);
    }
    if (spk_mls_tm_root(nl) != root) {
        return vec_fail("root: got %u, expected %llu", spk_mls_tm_root(nl),
                        (unsigned long long)root);
    }
    uint32_t nn = (uint32_t)n_nodes;
    return check_array(entry, "left", tm_left, nl, nn) &&
           check_array(entry, "right", tm_right, nl, nn) &&
           check_array(entry, "parent", spk_mls_tm_parent, nl, nn) &&
           check_array(entry, "sibling", spk_mls_tm_sibling, nl, nn) && check_paths(nl);
}
