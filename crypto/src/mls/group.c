/* MLS group state: lifetime, PSK resolution, and joining through a Welcome (§12.4.3.1). */
#include "mls/group.h"
#include "mls/group_int.h"
#include "mls/validate.h"
#include "mls/welcome_crypto.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- lifetime ---- */

static void free_proposals(spk_mls_group_t *g)
{
    for (size_t i = 0; i < g->n_proposals; i++) {
        spk_mls_proposal_free(&g->proposals[i].proposal);
    }
    free(g->proposals);
    g->proposals = NULL;
    g->n_proposals = 0;
}

/* Frees the per-epoch part of g (everything but the resumption PSKs). */
static void free_epoch(spk_mls_group_t *g)
{
    spk_mls_group_context_free(&g->gc);
    spk_mls_bytes_free(&g->gc_enc);
    spk_mls_tree_free(&g->tree);
    spk_mls_tree_priv_wipe(&g->priv);
    spk_mls_epoch_secrets_wipe(&g->secrets);
    spk_mls_secret_tree_free(&g->st);
    spk_wipe(g->interim, sizeof(g->interim));
    free_proposals(g);
}

void spk_mls_group_free(spk_mls_group_t *g)
{
    free_epoch(g);
    spk_wipe(g, sizeof(*g));
}

void spk_mls_group_install(spk_mls_group_t *g, spk_mls_group_t *ng)
{
    spk_mls_resumption_psk_t keep[SPK_MLS_GROUP_RESUMPTION_KEEP];
    size_t n = g->n_resumption;
    memcpy(keep, g->resumption, sizeof(keep));
    free_epoch(g);
    *g = *ng;
    /* Newest last; drop the oldest when full. */
    if (n == SPK_MLS_GROUP_RESUMPTION_KEEP) {
        memmove(keep, keep + 1, (n - 1) * sizeof(keep[0]));
        n--;
    }
    keep[n].epoch = g->gc.epoch;
    memcpy(keep[n].psk, g->secrets.resumption_psk, SPK_MLS_HASH_LEN);
    memcpy(g->resumption, keep, sizeof(keep));
    g->n_resumption = n + 1;
    spk_wipe(keep, sizeof(keep));
    memset(ng, 0, sizeof(*ng));
}

int spk_mls_group_context_dup(const spk_mls_group_context_t *src, spk_mls_group_context_t *dst,
                              spk_mls_bytes_t *enc)
{
    int rc = spk_mls_group_context_encode(src, enc);
    if (rc == 0) {
        rc = spk_mls_group_context_decode(dst, enc->p, enc->n);
        if (rc != 0) {
            spk_mls_bytes_free(enc);
        }
    }
    return rc;
}

/* ---- PSKs ---- */

typedef struct {
    const spk_mls_group_t *g;
    const spk_mls_group_env_t *env;
} psk_ctx_t;

static int psk_lookup(void *arg, const spk_mls_psk_id_t *id, const uint8_t **psk, size_t *len)
{
    const psk_ctx_t *c = arg;
    if (id->psktype == SPK_MLS_PSK_RESUMPTION && c->g != NULL &&
        spk_mls_bytes_eq(&id->psk_group_id, &c->g->gc.group_id)) {
        for (size_t i = 0; i < c->g->n_resumption; i++) {
            if (c->g->resumption[i].epoch == id->psk_epoch) {
                *psk = c->g->resumption[i].psk;
                *len = SPK_MLS_HASH_LEN;
                return 0;
            }
        }
    }
    if (c->env != NULL && c->env->psk_cb != NULL) {
        return c->env->psk_cb(c->env->psk_arg, id, psk, len);
    }
    return SPK_ENOTFOUND;
}

int spk_mls_group_psk_secret(const spk_mls_group_t *g, const spk_mls_group_env_t *env,
                             const spk_mls_psk_id_t *ids, size_t n, uint8_t out[SPK_MLS_HASH_LEN])
{
    psk_ctx_t c = {g, env};
    return spk_mls_psk_secret_from_ids(ids, n, psk_lookup, &c, out);
}

/* ---- joining (§12.4.3.1) ---- */

int spk_mls_group_info_tree(const spk_mls_group_info_t *gi, const spk_mls_tree_t *oob,
                            spk_mls_tree_t *out)
{
    if (oob != NULL) {
        return spk_mls_tree_copy(out, oob);
    }
    const spk_mls_extension_t *ext =
        spk_mls_extensions_find(&gi->extensions, SPK_MLS_EXT_RATCHET_TREE);
    if (ext == NULL) {
        memset(out, 0, sizeof(*out));
        return SPK_ENOTFOUND;
    }
    return spk_mls_tree_decode(out, ext->data.p, ext->data.n);
}

/* GroupInfo checks against the tree: parameters, signer's signature, tree hash. */
static int check_group_info(const spk_mls_group_info_t *gi, const spk_mls_tree_t *t)
{
    const spk_mls_group_context_t *gc = &gi->group_context;
    const spk_mls_leaf_node_t *signer = spk_mls_tree_leaf(t, gi->signer);
    uint8_t th[SPK_MLS_HASH_LEN];
    if (gc->version != SPK_MLS_VERSION_10 || gc->cipher_suite != SPK_MLS_CIPHER_SUITE ||
        signer == NULL) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_group_info_verify(gi, signer->signature_key.p, signer->signature_key.n);
    if (rc == 0) {
        rc = spk_mls_tree_root_hash(t, th);
    }
    if (rc == 0 && !spk_mls_bytes_eq_raw(&gc->tree_hash, th, sizeof(th))) {
        rc = SPK_EVERIFY;
    }
    return rc;
}

/* The leaf holding exactly the KeyPackage's LeafNode. */
static int find_own_leaf(const spk_mls_tree_t *t, const spk_mls_leaf_node_t *ln, uint32_t *out)
{
    spk_mls_bytes_t want;
    int rc = spk_mls_leaf_node_encode(ln, &want);
    if (rc != 0) {
        return rc;
    }
    rc = SPK_ENOTFOUND;
    for (uint32_t l = 0; rc == SPK_ENOTFOUND && l < t->n_leaves; l++) {
        const spk_mls_leaf_node_t *cand = spk_mls_tree_leaf(t, l);
        spk_mls_bytes_t got;
        if (cand == NULL || !spk_mls_bytes_eq(&cand->encryption_key, &ln->encryption_key)) {
            continue;
        }
        if (spk_mls_leaf_node_encode(cand, &got) != 0) {
            rc = SPK_ENOMEM;
            break;
        }
        if (spk_mls_bytes_eq(&got, &want)) {
            *out = l;
            rc = 0;
        }
        spk_mls_bytes_free(&got);
    }
    spk_mls_bytes_free(&want);
    return rc;
}

/* Tree, own leaf, private keys and epoch secrets of the joined epoch into ng. */
static int join_state(spk_mls_group_t *ng, const spk_mls_group_info_t *gi,
                      const spk_mls_group_secrets_t *gs, const uint8_t *psk_secret,
                      const spk_mls_key_package_t *kp, const uint8_t *enc_priv,
                      const spk_mls_tree_t *oob)
{
    const spk_mls_group_context_t *gc = &gi->group_context;
    const uint8_t *ps = NULL;
    int rc = spk_mls_group_info_tree(gi, oob, &ng->tree);
    rc = rc != 0 ? rc : check_group_info(gi, &ng->tree);
    rc = rc != 0
             ? rc
             : spk_mls_tree_validate(&ng->tree, gc->group_id.p, gc->group_id.n, &gc->extensions);
    rc = rc != 0 ? rc : find_own_leaf(&ng->tree, &kp->leaf_node, &ng->own_leaf);
    if (rc == 0 && gs->has_path_secret) {
        ps = gs->path_secret.p;
        rc = gs->path_secret.n == SPK_MLS_HASH_LEN ? 0 : SPK_EVERIFY;
    }
    rc = rc != 0
             ? rc
             : spk_mls_tree_priv_join(&ng->tree, ng->own_leaf, enc_priv, gi->signer, ps, &ng->priv);
    rc = rc != 0 ? rc
                 : spk_mls_group_info_check_confirmation(gi, gs->joiner_secret.p, psk_secret,
                                                         &ng->secrets);
    rc = rc != 0 ? rc
                 : spk_mls_interim_transcript_hash(gc->confirmed_transcript_hash.p,
                                                   gi->confirmation_tag.p, gi->confirmation_tag.n,
                                                   ng->interim);
    rc = rc != 0 ? rc : spk_mls_group_context_dup(gc, &ng->gc, &ng->gc_enc);
    rc = rc != 0
             ? rc
             : spk_mls_secret_tree_init(&ng->st, ng->secrets.encryption_secret, ng->tree.n_leaves);
    return rc;
}

int spk_mls_group_join(spk_mls_group_t *g, const spk_mls_welcome_t *welcome,
                       const spk_mls_key_package_t *kp,
                       const uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN],
                       const uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN],
                       const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN], const spk_mls_tree_t *tree,
                       const spk_mls_group_env_t *env)
{
    spk_mls_group_t ng;
    spk_mls_group_secrets_t gs;
    spk_mls_group_info_t gi;
    uint8_t ref[SPK_MLS_HASH_LEN];
    uint8_t psk_secret[SPK_MLS_HASH_LEN];
    memset(&ng, 0, sizeof(ng));
    memset(&gs, 0, sizeof(gs));
    memset(&gi, 0, sizeof(gi));
    memset(g, 0, sizeof(*g));
    if (welcome->cipher_suite != SPK_MLS_CIPHER_SUITE || kp->cipher_suite != SPK_MLS_CIPHER_SUITE) {
        return SPK_EVERIFY;
    }
    int rc = mls_kp_ref(kp, ref);
    rc = rc != 0 ? rc : spk_mls_welcome_open_secrets(welcome, ref, init_priv, &gs);
    if (rc == 0 && gs.joiner_secret.n != SPK_MLS_HASH_LEN) {
        rc = SPK_EVERIFY;
    }
    rc = rc != 0 ? rc : spk_mls_group_psk_secret(NULL, env, gs.psks, gs.n_psks, psk_secret);
    rc = rc != 0 ? rc
                 : spk_mls_welcome_open_group_info(welcome, gs.joiner_secret.p, psk_secret, &gi);
    rc = rc != 0 ? rc : join_state(&ng, &gi, &gs, psk_secret, kp, enc_priv, tree);
    if (rc == 0) {
        memcpy(ng.sig_priv, sig_priv, SPK_MLS_SIG_PRIV_LEN);
        spk_mls_group_install(g, &ng);
    } else {
        spk_mls_group_free(&ng);
    }
    spk_mls_group_secrets_free(&gs);
    spk_mls_group_info_free(&gi);
    spk_wipe(psk_secret, sizeof(psk_secret));
    return rc;
}
