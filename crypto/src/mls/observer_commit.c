/* MLS observer: validating and applying a Commit without the group's secrets (RFC 9420
 * §12.4.2 as far as it can be followed publicly): the proposal list (§12.2), Add KeyPackages,
 * the UpdatePath (leaf node, parent hashes, one encrypted path secret per node of each
 * resolution), the new tree, GroupContext and transcript hashes. */
#include "mls/group_int.h"
#include "mls/mls_api_int.h"
#include "mls/msgprot.h"
#include "mls/observer_int.h"
#include "mls/tree_apply.h"
#include "mls/treekem.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

typedef obs_next_t next_t;

void obs_next_free(obs_next_t *x)
{
    free(x->list);
    spk_mls_applied_free(&x->a);
    spk_mls_tree_free(&x->tree);
    spk_mls_group_context_free(&x->gc);
    spk_mls_bytes_free(&x->gc_enc);
    spk_mls_changes_free(&x->changes);
    free(x->refs);
    memset(x, 0, sizeof(*x));
}

/* The Commit's proposal list (references resolved from the cache) with each Add's KeyPackage
 * checked; ReInit and ExternalInit are refused. */
static int resolve(const spk_mls_observer_t *o, const spk_mls_commit_t *commit, uint32_t committer,
                   uint64_t now, next_t *x)
{
    const spk_mls_extensions_t *ext = &o->gc.extensions;
    x->n = commit->n_proposals;
    x->list = calloc(x->n + 1, sizeof(*x->list));
    x->refs = calloc(x->n + 1, SPK_MLS_HASH_LEN);
    if (x->list == NULL || x->refs == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < x->n; i++) {
        const spk_mls_proposal_or_ref_t *por = &commit->proposals[i];
        spk_mls_proposal_use_t *u = &x->list[i];
        if (por->type == SPK_MLS_POR_PROPOSAL) {
            u->proposal = &por->proposal;
            u->sender_type = SPK_MLS_SENDER_MEMBER;
            u->sender = committer;
            continue;
        }
        size_t k = 0;
        while (k < o->n_proposals &&
               !spk_mls_bytes_eq_raw(&por->reference, o->proposals[k].ref, SPK_MLS_HASH_LEN)) {
            k++;
        }
        if (k == o->n_proposals) {
            return SPK_EMLSPROPOSAL;
        }
        u->proposal = &o->proposals[k].proposal;
        u->sender_type = o->proposals[k].sender_type;
        u->sender = o->proposals[k].sender;
        memcpy(x->refs + x->n_refs++ * SPK_MLS_HASH_LEN, o->proposals[k].ref, SPK_MLS_HASH_LEN);
    }
    for (size_t i = 0; i < x->n; i++) {
        if (x->list[i].proposal->type == SPK_MLS_PROPOSAL_GCE) {
            ext = &x->list[i].proposal->u.gce;
        }
    }
    for (size_t i = 0; i < x->n; i++) {
        const spk_mls_proposal_t *p = x->list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_REINIT || p->type == SPK_MLS_PROPOSAL_EXTERNAL_INIT) {
            return SPK_EMLSPROPOSAL;
        }
        if (p->type == SPK_MLS_PROPOSAL_ADD) {
            int rc = obs_check_key_package(&p->u.add, ext, now);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* Each node of the path carries one encrypted path secret per node of its copath child's
 * resolution (without the leaves this Commit adds), of the sizes suite 1 gives. */
static int check_ciphertexts(const spk_mls_tree_t *before, const spk_mls_tree_t *after,
                             uint32_t committer, const spk_mls_update_path_t *path,
                             const spk_mls_applied_t *a)
{
    uint32_t nodes[SPK_MLS_TM_MAX_DEPTH];
    uint32_t copath[SPK_MLS_TM_MAX_DEPTH];
    size_t n = 0;
    int rc = spk_mls_tree_filtered_direct_path(before, committer, nodes, copath, &n);
    for (size_t i = 0; rc == 0 && i < n && i < path->n_nodes; i++) {
        uint32_t *res = NULL;
        size_t n_res = 0;
        const spk_mls_update_path_node_t *node = &path->nodes[i];
        rc =
            spk_mls_tree_resolution_excluding(after, copath[i], a->added, a->n_added, &res, &n_res);
        if (rc == 0 && node->n_secrets != n_res) {
            rc = SPK_EVERIFY;
        }
        for (size_t j = 0; rc == 0 && j < node->n_secrets; j++) {
            const spk_mls_hpke_ciphertext_t *ct = &node->secrets[j];
            if (ct->kem_output.n != SPK_MLS_KEM_ENC_LEN ||
                ct->ciphertext.n != SPK_MLS_HASH_LEN + SPK_MLS_AEAD_TAG_LEN) {
                rc = SPK_EVERIFY;
            }
        }
        free(res);
    }
    return rc;
}

/* The tree after the Commit: proposals applied, then the UpdatePath merged and checked. */
static int next_tree(const spk_mls_observer_t *o, const spk_mls_commit_t *commit,
                     uint32_t committer, next_t *x)
{
    const spk_mls_bytes_t *gid = &o->gc.group_id;
    const spk_mls_extensions_t *ext = x->a.gce != NULL ? x->a.gce : &o->gc.extensions;
    if (!commit->has_path) {
        if (x->a.path_required) {
            return SPK_EVERIFY;
        }
        return spk_mls_tree_copy(&x->tree, &x->a.tree);
    }
    const spk_mls_leaf_node_t *ln = &commit->path.leaf_node;
    const spk_mls_leaf_node_t *old = spk_mls_tree_leaf(&x->a.tree, committer);
    if (old == NULL || spk_mls_bytes_eq(&old->encryption_key, &ln->encryption_key) ||
        spk_mls_leaf_node_check(ln, SPK_MLS_LEAF_SRC_COMMIT, 0) != 0 ||
        spk_mls_leaf_check_required(ln, ext) != 0) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_treekem_merge(&x->a.tree, committer, &commit->path, gid->p, gid->n, &x->tree);
    rc = rc != 0 ? rc : spk_mls_tree_check_members(&x->tree);
    rc = rc != 0 ? rc : check_ciphertexts(&x->a.tree, &x->tree, committer, &commit->path, &x->a);
    return rc == 0 || rc == SPK_ENOMEM ? rc : SPK_EVERIFY;
}

/* GroupContext and transcript hashes of the next epoch (§8.2). The confirmation tag cannot be
 * verified without the epoch's secrets; it only enters the interim transcript hash. */
static int next_context(const spk_mls_observer_t *o, const spk_mls_public_message_t *pm, next_t *x)
{
    uint8_t confirmed[SPK_MLS_HASH_LEN];
    spk_mls_writer_t w;
    spk_mls_bytes_t input;
    spk_mls_writer_init(&w);
    spk_mls_confirmed_transcript_input_write_parts(&w, SPK_MLS_WIRE_PUBLIC, &pm->content,
                                                   &pm->signature);
    int rc = spk_mls_writer_take(&w, &input);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_confirmed_transcript_hash(o->interim, sizeof(o->interim), input.p, input.n,
                                           confirmed);
    spk_mls_bytes_free(&input);
    rc =
        rc != 0 ? rc : obs_interim(confirmed, sizeof(confirmed), &pm->confirmation_tag, x->interim);
    rc = rc != 0 ? rc
                 : spk_mls_next_context(&o->gc, &x->tree, x->a.gce, confirmed, sizeof(confirmed),
                                        &x->gc, &x->gc_enc);
    return rc;
}

/* Points out at what the Commit x does (its lists stay in x). */
static void report(spk_mls_observer_t *o, const next_t *x, spk_mls_observed_t *out)
{
    const spk_mls_changes_t *c = &x->changes;
    obs_last_clear(o);
    if (out == NULL) {
        return;
    }
    out->type = SPK_MLS_EVENT_COMMIT;
    out->epoch = x->gc.epoch;
    out->committed = x->refs;
    out->n_committed = x->n_refs;
    if (c->n_joined + c->n_left > 0 && mls_api_members(c, &o->last_members) == 0) {
        out->joined = o->last_members;
        out->n_joined = c->n_joined;
        out->left = o->last_members + c->n_joined;
        out->n_left = c->n_left;
    }
}

void obs_install(spk_mls_observer_t *o, obs_next_t *x)
{
    spk_mls_member_t *members = o->last_members;
    o->last_members = NULL; /* what the report points to stays valid */
    obs_epoch_free(o);
    obs_last_clear(o);
    o->last_members = members;
    o->gc = x->gc;
    o->gc_enc = x->gc_enc;
    o->tree = x->tree;
    memcpy(o->interim, x->interim, sizeof(o->interim));
    o->last_changes = x->changes;
    o->last_refs = x->refs;
    memset(&x->gc, 0, sizeof(x->gc));
    memset(&x->gc_enc, 0, sizeof(x->gc_enc));
    memset(&x->tree, 0, sizeof(x->tree));
    memset(&x->changes, 0, sizeof(x->changes));
    x->refs = NULL;
    obs_next_free(x);
}

int obs_commit(spk_mls_observer_t *o, const spk_mls_public_message_t *pm, uint64_t now, bool apply,
               spk_mls_observed_t *out)
{
    const spk_mls_commit_t *commit = &pm->content.commit;
    const spk_mls_bytes_t *gid = &o->gc.group_id;
    uint32_t committer = pm->content.sender.index;
    next_t x;
    memset(&x, 0, sizeof(x));
    int rc = resolve(o, commit, committer, now, &x);
    if (rc == 0) {
        rc = spk_mls_tree_apply_proposals_ex(&o->tree, gid->p, gid->n, &o->gc.extensions, committer,
                                             false, x.list, x.n, now, false, &x.a);
        if (rc != 0 && rc != SPK_ENOMEM) {
            rc = SPK_EMLSPROPOSAL;
        }
    }
    rc = rc != 0 ? rc : next_tree(o, commit, committer, &x);
    rc = rc != 0 ? rc : next_context(o, pm, &x);
    rc = rc != 0 ? rc : spk_mls_changes_of(&o->tree, x.list, x.n, &x.a, &x.changes);
    if (rc != 0) {
        obs_next_free(&x);
        return rc;
    }
    /* Only what installing needs is kept (the list points into the proposal cache). */
    free(x.list);
    x.list = NULL;
    spk_mls_applied_free(&x.a);
    report(o, &x, out);
    obs_next_free(&o->pending);
    o->pending = x;
    o->has_pending = true;
    if (apply) {
        obs_install(o, &o->pending);
        o->has_pending = false;
    }
    return 0;
}
