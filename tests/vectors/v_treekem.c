/* treekem.json (RFC 9420 §7.4-§7.6, §7.9): load each member's private state, process every
 * UpdatePath (path secret per receiver, commit_secret, tree hash after merge), then create a
 * fresh UpdatePath per sender and check that every receiver agrees with it. */
#include <stdlib.h>
#include <string.h>

#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/treekem.h"
#include "spk/error.h"
#include "spk/util.h"
#include "vectors.h"

#define MAX_MEMBERS 64

typedef struct {
    spk_mls_tree_t tree;
    spk_mls_bytes_t group_id;
    spk_mls_bytes_t cth;
    uint64_t epoch;
    size_t n;
    spk_mls_tree_priv_t priv[MAX_MEMBERS];
    uint8_t sig_priv[MAX_MEMBERS][SPK_MLS_SIG_PRIV_LEN];
} ctx_t;

static bool load_member(ctx_t *c, const json_t *lp)
{
    uint64_t index;
    uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN];
    spk_mls_tree_priv_t *priv = &c->priv[c->n];
    if (!vec_u64(lp, "index", &index) ||
        !vec_hex_fixed(lp, "encryption_priv", enc_priv, sizeof(enc_priv)) ||
        !vec_hex_fixed(lp, "signature_priv", c->sig_priv[c->n], SPK_MLS_SIG_PRIV_LEN)) {
        return false;
    }
    if (!vec_ok("priv init", spk_mls_tree_priv_init(priv, (uint32_t)index, enc_priv))) {
        return false;
    }
    const json_t *pss = json_object_get(lp, "path_secrets");
    for (size_t i = 0; i < json_array_size(pss); i++) {
        const json_t *e = json_array_get(pss, i);
        uint64_t node;
        uint8_t ps[SPK_MLS_HASH_LEN];
        if (!vec_u64(e, "node", &node) || !vec_hex_fixed(e, "path_secret", ps, sizeof(ps)) ||
            !vec_ok("path secret", spk_mls_tree_priv_set_path_secret(priv, (uint32_t)node, ps))) {
            return false;
        }
    }
    if (!spk_mls_tree_priv_consistent(priv, &c->tree) || priv->n_keys != json_array_size(pss) + 1) {
        return vec_fail("private state of leaf %llu does not match the tree",
                        (unsigned long long)index);
    }
    const spk_mls_leaf_node_t *leaf = spk_mls_tree_leaf(&c->tree, (uint32_t)index);
    uint8_t pub[SPK_MLS_SIG_PUB_LEN];
    if (leaf == NULL || spk_mls_ed25519_pub(c->sig_priv[c->n], pub) != 0 ||
        !spk_mls_bytes_eq_raw(&leaf->signature_key, pub, sizeof(pub))) {
        return vec_fail("signature key of leaf %llu does not match", (unsigned long long)index);
    }
    c->n++;
    return true;
}

/* Provisional GroupContext with the tree hash of t. */
static int group_context(const ctx_t *c, const spk_mls_tree_t *t, spk_mls_bytes_t *out)
{
    uint8_t th[SPK_MLS_HASH_LEN];
    spk_mls_group_context_t gc;
    memset(&gc, 0, sizeof(gc));
    int rc = spk_mls_tree_root_hash(t, th);
    if (rc != 0) {
        return rc;
    }
    gc.version = 1;
    gc.cipher_suite = 1;
    gc.group_id = c->group_id;
    gc.epoch = c->epoch;
    gc.tree_hash.p = th;
    gc.tree_hash.n = sizeof(th);
    gc.confirmed_transcript_hash = c->cth;
    return spk_mls_group_context_encode(&gc, out);
}

/* Receiver j processes path from sender; compares the results when want_* are given. */
static bool receive(const ctx_t *c, size_t j, uint32_t sender, const spk_mls_update_path_t *path,
                    const json_t *want_ps, const uint8_t *want_commit, const uint8_t *want_th)
{
    spk_mls_tree_t merged;
    spk_mls_bytes_t gc = {NULL, 0};
    spk_mls_tree_priv_t np;
    uint8_t ps[SPK_MLS_HASH_LEN];
    uint8_t cs[SPK_MLS_HASH_LEN];
    uint8_t th[SPK_MLS_HASH_LEN];
    if (!vec_ok("merge", spk_mls_treekem_merge(&c->tree, sender, path, c->group_id.p, c->group_id.n,
                                               &merged))) {
        return false;
    }
    bool ok = vec_ok("tree hash", spk_mls_tree_root_hash(&merged, th)) &&
              vec_eq("tree hash after", th, sizeof(th), want_th, SPK_MLS_HASH_LEN) &&
              vec_ok("group context", group_context(c, &merged, &gc)) &&
              vec_ok("decrypt", spk_mls_treekem_decrypt(&merged, &c->priv[j], sender, path, NULL, 0,
                                                        gc.p, gc.n, &np, ps, cs));
    if (ok) {
        ok = vec_eq("commit_secret", cs, sizeof(cs), want_commit, SPK_MLS_HASH_LEN) &&
             spk_mls_tree_priv_consistent(&np, &merged);
        if (ok && want_ps != NULL) {
            spk_mls_bytes_t w;
            json_t *tmp = json_pack("{s:O}", "p", (json_t *)want_ps);
            ok = tmp != NULL && vec_hex(tmp, "p", &w) && vec_eq("path_secret", ps, 32, w.p, w.n);
            if (tmp != NULL) {
                spk_mls_bytes_free(&w);
            }
            json_decref(tmp);
        }
        spk_mls_tree_priv_wipe(&np);
    }
    spk_mls_bytes_free(&gc);
    spk_mls_tree_free(&merged);
    return ok;
}

static bool check_update_path(const ctx_t *c, const json_t *up)
{
    uint64_t sender;
    spk_mls_bytes_t enc;
    spk_mls_update_path_t path;
    uint8_t cs[SPK_MLS_HASH_LEN];
    uint8_t th[SPK_MLS_HASH_LEN];
    if (!vec_u64(up, "sender", &sender) || !vec_hex(up, "update_path", &enc) ||
        !vec_hex_fixed(up, "commit_secret", cs, sizeof(cs)) ||
        !vec_hex_fixed(up, "tree_hash_after", th, sizeof(th))) {
        return false;
    }
    bool ok = vec_ok("update path decode", spk_mls_update_path_decode(&path, enc.p, enc.n));
    spk_mls_bytes_free(&enc);
    const json_t *pss = json_object_get(up, "path_secrets");
    for (size_t k = 0; ok && k < c->n; k++) {
        uint32_t j = c->priv[k].own_leaf;
        if (j == sender) {
            continue;
        }
        const json_t *want = json_array_get(pss, j);
        if (!json_is_string(want)) {
            ok = vec_fail("no path secret for receiver %u", j);
            break;
        }
        ok = receive(c, k, (uint32_t)sender, &path, want, cs, th);
    }
    spk_mls_update_path_free(&path);
    return ok;
}

/* Sender k creates a new UpdatePath; every other member must process it. */
static bool check_create(const ctx_t *c, size_t k)
{
    uint32_t sender = c->priv[k].own_leaf;
    spk_mls_update_path_t path;
    spk_mls_tree_t nt;
    spk_mls_tree_priv_t np;
    spk_mls_treekem_pending_t pd;
    spk_mls_bytes_t gc = {NULL, 0};
    spk_mls_bytes_t wire = {NULL, 0};
    spk_mls_update_path_t rx;
    uint8_t th[SPK_MLS_HASH_LEN];
    const spk_mls_leaf_node_t *tmpl = spk_mls_tree_leaf(&c->tree, sender);
    memset(&rx, 0, sizeof(rx));
    if (!vec_ok("create",
                spk_mls_treekem_create(&c->tree, &c->priv[k], sender, tmpl, c->sig_priv[k],
                                       c->group_id.p, c->group_id.n, &path, &nt, &np, &pd))) {
        return false;
    }
    bool ok =
        spk_mls_tree_priv_consistent(&np, &nt) &&
        vec_ok("tree hash", spk_mls_tree_root_hash(&nt, th)) &&
        vec_ok("group context", group_context(c, &nt, &gc)) &&
        vec_ok("encrypt", spk_mls_treekem_encrypt(&c->tree, &pd, NULL, 0, gc.p, gc.n, &path)) &&
        vec_ok("path encode", spk_mls_update_path_encode(&path, &wire)) &&
        vec_ok("path decode", spk_mls_update_path_decode(&rx, wire.p, wire.n));
    for (size_t j = 0; ok && j < c->n; j++) {
        if (j != k) {
            ok = receive(c, j, sender, &rx, NULL, pd.commit_secret, th);
        }
    }
    spk_mls_update_path_free(&rx);
    spk_mls_bytes_free(&wire);
    spk_mls_bytes_free(&gc);
    spk_mls_update_path_free(&path);
    spk_mls_tree_free(&nt);
    spk_mls_tree_priv_wipe(&np);
    spk_mls_treekem_pending_wipe(&pd);
    return ok;
}

bool vec_treekem(const json_t *entry, size_t index)
{
    spk_mls_bytes_t enc;
    ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return vec_fail("out of memory");
    }
    bool ok = vec_u64(entry, "epoch", &c->epoch) && vec_hex(entry, "group_id", &c->group_id) &&
              vec_hex(entry, "confirmed_transcript_hash", &c->cth) &&
              vec_hex(entry, "ratchet_tree", &enc);
    if (ok) {
        ok = vec_ok("tree decode", spk_mls_tree_decode(&c->tree, enc.p, enc.n));
        spk_mls_bytes_free(&enc);
    }
    const json_t *lps = json_object_get(entry, "leaves_private");
    for (size_t i = 0; ok && i < json_array_size(lps); i++) {
        ok = c->n < MAX_MEMBERS && load_member(c, json_array_get(lps, i));
    }
    const json_t *ups = json_object_get(entry, "update_paths");
    for (size_t i = 0; ok && i < json_array_size(ups); i++) {
        ok = check_update_path(c, json_array_get(ups, i));
    }
    for (size_t k = 0; ok && k < c->n; k++) {
        ok = check_create(c, k);
    }
    spk_mls_tree_free(&c->tree);
    spk_mls_bytes_free(&c->group_id);
    spk_mls_bytes_free(&c->cth);
    spk_wipe(c, sizeof(*c));
    free(c);
    return ok;
}
