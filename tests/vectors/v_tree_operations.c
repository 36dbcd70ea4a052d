/* tree-operations.json: apply one Add, Update or Remove proposal to a ratchet tree (§12.1.1 -
 * §12.1.3, §7.7) and compare the serialized tree and the tree hashes before and after. */
#include <string.h>

#include "mls/structs.h"
#include "mls/tree.h"
#include "spk/error.h"
#include "vectors.h"

static int apply(spk_mls_tree_t *t, const spk_mls_proposal_t *p, uint32_t sender)
{
    uint32_t leaf;
    switch (p->type) {
    case SPK_MLS_PROPOSAL_ADD:
        return spk_mls_tree_add(t, &p->u.add.leaf_node, &leaf);
    case SPK_MLS_PROPOSAL_UPDATE:
        return spk_mls_tree_update(t, sender, &p->u.update);
    case SPK_MLS_PROPOSAL_REMOVE:
        return spk_mls_tree_remove(t, p->u.remove);
    default:
        return SPK_EINVAL;
    }
}

static bool check_hash(const spk_mls_tree_t *t, const json_t *entry, const char *key)
{
    uint8_t h[SPK_MLS_HASH_LEN];
    return vec_ok(key, spk_mls_tree_root_hash(t, h)) && vec_eq_hex(key, h, sizeof(h), entry, key);
}

bool vec_tree_operations(const json_t *entry, size_t index)
{
    spk_mls_bytes_t before;
    spk_mls_bytes_t prop_enc;
    spk_mls_bytes_t after = {NULL, 0};
    spk_mls_tree_t t;
    spk_mls_proposal_t prop;
    uint64_t sender;
    if (!vec_u64(entry, "proposal_sender", &sender) || !vec_hex(entry, "tree_before", &before)) {
        return false;
    }
    if (!vec_hex(entry, "proposal", &prop_enc)) {
        spk_mls_bytes_free(&before);
        return false;
    }
    bool ok = vec_ok("tree decode", spk_mls_tree_decode(&t, before.p, before.n));
    if (ok) {
        ok = vec_ok("proposal decode", spk_mls_proposal_decode(&prop, prop_enc.p, prop_enc.n));
        if (ok) {
            ok = check_hash(&t, entry, "tree_hash_before") &&
                 vec_ok("apply", apply(&t, &prop, (uint32_t)sender)) &&
                 vec_ok("tree encode", spk_mls_tree_encode(&t, &after)) &&
                 vec_eq_hex("tree_after", after.p, after.n, entry, "tree_after") &&
                 check_hash(&t, entry, "tree_hash_after");
            spk_mls_proposal_free(&prop);
        }
        spk_mls_tree_free(&t);
    }
    spk_mls_bytes_free(&after);
    spk_mls_bytes_free(&before);
    spk_mls_bytes_free(&prop_enc);
    return ok;
}
