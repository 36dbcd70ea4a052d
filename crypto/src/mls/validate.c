/* Validation of LeafNodes (§7.3), KeyPackages (§10.1), required capabilities (§11.1) and whole
 * ratchet trees. */
#include "mls/validate.h"
#include "mls/prim.h"
#include "mls/structs_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- RequiredCapabilities (§11.1) ---- */

void spk_mls_required_caps_free(spk_mls_required_caps_t *x)
{
    free(x->extension_types.v);
    free(x->proposal_types.v);
    free(x->credential_types.v);
    memset(x, 0, sizeof(*x));
}

int spk_mls_required_caps_decode(spk_mls_required_caps_t *out, const uint8_t *p, size_t n)
{
    spk_mls_reader_t r;
    memset(out, 0, sizeof(*out));
    spk_mls_reader_init(&r, p, n);
    spk_mls_u16_list_read(&r, &out->extension_types, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(&r, &out->proposal_types, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(&r, &out->credential_types, SPK_MLS_MAX_CAPS);
    int rc = spk_mls_reader_done(&r);
    if (rc != 0) {
        spk_mls_required_caps_free(out);
    }
    return rc;
}

int spk_mls_required_caps_encode(const spk_mls_required_caps_t *in, spk_mls_bytes_t *out)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    memset(out, 0, sizeof(*out));
    spk_mls_u16_list_write(&w, &in->extension_types);
    spk_mls_u16_list_write(&w, &in->proposal_types);
    spk_mls_u16_list_write(&w, &in->credential_types);
    return spk_mls_writer_take(&w, out);
}

/* ---- capabilities ---- */

bool spk_mls_leaf_supports_extension(const spk_mls_leaf_node_t *ln, uint16_t type)
{
    if ((type >= SPK_MLS_EXT_APPLICATION_ID && type <= SPK_MLS_EXT_EXTERNAL_SENDERS) ||
        spk_mls_is_grease(type)) {
        return true;
    }
    return spk_mls_u16_list_has(&ln->capabilities.extensions, type);
}

bool spk_mls_leaf_supports_proposal(const spk_mls_leaf_node_t *ln, uint16_t type)
{
    if ((type >= SPK_MLS_PROPOSAL_ADD && type <= SPK_MLS_PROPOSAL_GCE) || spk_mls_is_grease(type)) {
        return true;
    }
    return spk_mls_u16_list_has(&ln->capabilities.proposals, type);
}

bool spk_mls_leaf_supports_credential(const spk_mls_leaf_node_t *ln, uint16_t type)
{
    return spk_mls_is_grease(type) || spk_mls_u16_list_has(&ln->capabilities.credentials, type);
}

int spk_mls_leaf_check_required(const spk_mls_leaf_node_t *ln,
                                const spk_mls_extensions_t *gc_extensions)
{
    const spk_mls_extension_t *ext =
        gc_extensions != NULL
            ? spk_mls_extensions_find(gc_extensions, SPK_MLS_EXT_REQUIRED_CAPABILITIES)
            : NULL;
    spk_mls_required_caps_t rc_;
    if (ext == NULL) {
        return 0;
    }
    int rc = spk_mls_required_caps_decode(&rc_, ext->data.p, ext->data.n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < rc_.extension_types.n; i++) {
        if (!spk_mls_leaf_supports_extension(ln, rc_.extension_types.v[i])) {
            rc = SPK_EVERIFY;
        }
    }
    for (size_t i = 0; rc == 0 && i < rc_.proposal_types.n; i++) {
        if (!spk_mls_leaf_supports_proposal(ln, rc_.proposal_types.v[i])) {
            rc = SPK_EVERIFY;
        }
    }
    for (size_t i = 0; rc == 0 && i < rc_.credential_types.n; i++) {
        if (!spk_mls_leaf_supports_credential(ln, rc_.credential_types.v[i])) {
            rc = SPK_EVERIFY;
        }
    }
    spk_mls_required_caps_free(&rc_);
    return rc;
}

/* ---- LeafNode (§7.3) ---- */

int spk_mls_leaf_node_check(const spk_mls_leaf_node_t *ln, uint8_t expected_source, uint64_t now)
{
    const spk_mls_capabilities_t *caps = &ln->capabilities;
    if (ln->encryption_key.n != SPK_MLS_KEM_PUB_LEN || ln->signature_key.n != SPK_MLS_SIG_PUB_LEN ||
        ln->source != expected_source) {
        return SPK_EVERIFY;
    }
    if (ln->credential.type != SPK_MLS_CRED_BASIC && ln->credential.type != SPK_MLS_CRED_X509) {
        return SPK_EVERIFY;
    }
    if (!spk_mls_u16_list_has(&caps->credentials, ln->credential.type) ||
        !spk_mls_u16_list_has(&caps->versions, SPK_MLS_VERSION_10) ||
        !spk_mls_u16_list_has(&caps->cipher_suites, SPK_MLS_CIPHER_SUITE)) {
        return SPK_EVERIFY;
    }
    for (size_t i = 0; i < ln->extensions.n; i++) {
        if (!spk_mls_leaf_supports_extension(ln, ln->extensions.v[i].type)) {
            return SPK_EVERIFY;
        }
    }
    if (ln->source == SPK_MLS_LEAF_SRC_KEY_PACKAGE && now != 0 &&
        (now < ln->lifetime.not_before || now > ln->lifetime.not_after)) {
        return SPK_EVERIFY;
    }
    return 0;
}

static int leaf_signature(const spk_mls_leaf_node_t *ln, const uint8_t *group_id,
                          size_t group_id_len, uint32_t leaf_index)
{
    spk_mls_writer_t w;
    spk_mls_bytes_t tbs;
    spk_mls_writer_init(&w);
    spk_mls_leaf_node_tbs_write(&w, ln, group_id, group_id_len, leaf_index);
    int rc = spk_mls_writer_take(&w, &tbs);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_verify_with_label(ln->signature_key.p, ln->signature_key.n, "LeafNodeTBS", tbs.p,
                                   tbs.n, ln->signature.p, ln->signature.n);
    spk_mls_bytes_free(&tbs);
    return rc == 0 ? 0 : SPK_EVERIFY;
}

int spk_mls_leaf_node_validate(const spk_mls_leaf_node_t *ln, uint8_t expected_source,
                               const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index,
                               uint64_t now)
{
    int rc = spk_mls_leaf_node_check(ln, expected_source, now);
    if (rc == 0) {
        rc = leaf_signature(ln, group_id, group_id_len, leaf_index);
    }
    return rc;
}

/* ---- KeyPackage (§10.1) ---- */

int spk_mls_key_package_validate(const spk_mls_key_package_t *kp, uint64_t now)
{
    const spk_mls_leaf_node_t *ln = &kp->leaf_node;
    spk_mls_writer_t w;
    spk_mls_bytes_t tbs;
    if (kp->version != SPK_MLS_VERSION_10 || kp->cipher_suite != SPK_MLS_CIPHER_SUITE ||
        kp->init_key.n != SPK_MLS_KEM_PUB_LEN ||
        spk_mls_bytes_eq(&kp->init_key, &ln->encryption_key)) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_leaf_node_validate(ln, SPK_MLS_LEAF_SRC_KEY_PACKAGE, NULL, 0, 0, now);
    if (rc != 0) {
        return rc;
    }
    spk_mls_writer_init(&w);
    spk_mls_key_package_tbs_write(&w, kp);
    rc = spk_mls_writer_take(&w, &tbs);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_verify_with_label(ln->signature_key.p, ln->signature_key.n, "KeyPackageTBS", tbs.p,
                                   tbs.n, kp->signature.p, kp->signature.n);
    spk_mls_bytes_free(&tbs);
    return rc == 0 ? 0 : SPK_EVERIFY;
}

/* ---- whole tree ---- */

static int cmp_bytes(const void *a, const void *b)
{
    const spk_mls_bytes_t *x = *(const spk_mls_bytes_t *const *)a;
    const spk_mls_bytes_t *y = *(const spk_mls_bytes_t *const *)b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n > 0 ? memcmp(x->p, y->p, n) : 0;
    if (c != 0) {
        return c;
    }
    return x->n < y->n ? -1 : (x->n > y->n ? 1 : 0);
}

/* True when the n byte strings in v are pairwise different (v is reordered). */
static bool all_distinct(const spk_mls_bytes_t **v, size_t n)
{
    qsort(v, n, sizeof(v[0]), cmp_bytes);
    for (size_t i = 1; i < n; i++) {
        if (cmp_bytes(&v[i - 1], &v[i]) == 0) {
            return false;
        }
    }
    return true;
}

static int keys_unique(const spk_mls_tree_t *t)
{
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    const spk_mls_bytes_t **enc = malloc(width * sizeof(*enc));
    const spk_mls_bytes_t **sig = malloc(t->n_leaves * sizeof(*sig));
    size_t n_enc = 0;
    size_t n_sig = 0;
    int rc = 0;
    if (enc == NULL || sig == NULL) {
        rc = SPK_ENOMEM;
    }
    for (uint32_t x = 0; rc == 0 && x < width; x++) {
        const spk_mls_node_t *node = &t->nodes[x];
        if (node->type == SPK_MLS_NODE_LEAF) {
            enc[n_enc++] = &node->leaf.encryption_key;
            sig[n_sig++] = &node->leaf.signature_key;
        } else if (node->type == SPK_MLS_NODE_PARENT) {
            enc[n_enc++] = &node->parent.encryption_key;
        }
    }
    if (rc == 0 && (!all_distinct(enc, n_enc) || !all_distinct(sig, n_sig))) {
        rc = SPK_EVERIFY;
    }
    free(enc);
    free(sig);
    return rc;
}

/* Every member supports every credential type in use (§7.3). Decoding admits only basic and
 * x509 credentials, so the types in use are a subset of those two. */
static int credentials_supported(const spk_mls_tree_t *t)
{
    bool used[3] = {false, false, false};
    for (uint32_t l = 0; l < t->n_leaves; l++) {
        const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(t, l);
        if (ln != NULL && ln->credential.type < 3) {
            used[ln->credential.type] = true;
        }
    }
    for (uint32_t l = 0; l < t->n_leaves; l++) {
        const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(t, l);
        for (uint16_t type = 1; ln != NULL && type < 3; type++) {
            if (used[type] && !spk_mls_leaf_supports_credential(ln, type)) {
                return SPK_EVERIFY;
            }
        }
    }
    return 0;
}

int spk_mls_tree_validate(const spk_mls_tree_t *t, const uint8_t *group_id, size_t group_id_len,
                          const spk_mls_extensions_t *gc_extensions)
{
    int rc = spk_mls_tree_verify_unmerged(t);
    if (rc == 0) {
        rc = spk_mls_tree_verify_parent_hashes(t);
    }
    for (uint32_t l = 0; rc == 0 && l < t->n_leaves; l++) {
        const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(t, l);
        if (ln == NULL) {
            continue;
        }
        rc = spk_mls_leaf_node_validate(ln, ln->source, group_id, group_id_len, l, 0);
        if (rc == 0) {
            rc = spk_mls_leaf_check_required(ln, gc_extensions);
        }
    }
    if (rc == 0) {
        rc = spk_mls_tree_check_members(t);
    }
    return rc;
}

int spk_mls_tree_check_members(const spk_mls_tree_t *t)
{
    int rc = credentials_supported(t);
    if (rc == 0) {
        rc = keys_unique(t);
    }
    return rc;
}

/* ---- signing ---- */

/* Signs the bytes in w (consumed) with label into *sig, replacing it. */
static int sign_writer(spk_mls_writer_t *w, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                       const char *label, spk_mls_bytes_t *sig)
{
    spk_mls_bytes_t tbs;
    spk_mls_bytes_t out;
    uint8_t s[SPK_MLS_SIG_LEN];
    int rc = spk_mls_writer_take(w, &tbs);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_sign_with_label(sig_priv, label, tbs.p, tbs.n, s);
    spk_mls_bytes_free(&tbs);
    if (rc == 0) {
        rc = spk_mls_bytes_dup(&out, s, sizeof(s));
    }
    if (rc == 0) {
        spk_mls_bytes_free(sig);
        *sig = out;
    }
    return rc;
}

int spk_mls_leaf_node_sign(spk_mls_leaf_node_t *ln, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                           const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_leaf_node_tbs_write(&w, ln, group_id, group_id_len, leaf_index);
    return sign_writer(&w, sig_priv, "LeafNodeTBS", &ln->signature);
}

int spk_mls_key_package_sign(spk_mls_key_package_t *kp,
                             const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN])
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_key_package_tbs_write(&w, kp);
    return sign_writer(&w, sig_priv, "KeyPackageTBS", &kp->signature);
}

int mls_kp_ref(const spk_mls_key_package_t *kp, uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_bytes_t enc;
    int rc = spk_mls_key_package_encode(kp, &enc);
    if (rc == 0) {
        rc = spk_mls_make_key_package_ref(enc.p, enc.n, out);
        spk_mls_bytes_free(&enc);
    }
    return rc;
}
