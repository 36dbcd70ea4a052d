/* Proposal-list validation (§12.2) and application to the ratchet tree (§12.3). */
#include "mls/tree_apply.h"
#include "mls/validate.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

void spk_mls_applied_free(spk_mls_applied_t *a)
{
    spk_mls_tree_free(&a->tree);
    free(a->added);
    memset(a, 0, sizeof(*a));
}

typedef struct {
    size_t n_gce;
    size_t n_reinit;
    size_t n_external_init;
    size_t n_remove;
    size_t n_psk;
    size_t n_add;
    const spk_mls_extensions_t *gce;
} counts_t;

static void count(const spk_mls_proposal_use_t *list, size_t n, counts_t *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        switch (p->type) {
        case SPK_MLS_PROPOSAL_GCE:
            c->n_gce++;
            c->gce = &p->u.gce;
            break;
        case SPK_MLS_PROPOSAL_REINIT:
            c->n_reinit++;
            break;
        case SPK_MLS_PROPOSAL_EXTERNAL_INIT:
            c->n_external_init++;
            break;
        case SPK_MLS_PROPOSAL_REMOVE:
            c->n_remove++;
            break;
        case SPK_MLS_PROPOSAL_PSK:
            c->n_psk++;
            break;
        case SPK_MLS_PROPOSAL_ADD:
            c->n_add++;
            break;
        default:
            break;
        }
    }
}

/* Proposal-type mix rules of §12.2 for regular and external Commits. */
static int check_mix(const counts_t *c, size_t n, bool external_commit)
{
    if (external_commit) {
        if (c->n_external_init != 1 || c->n_remove > 1 ||
            c->n_external_init + c->n_remove + c->n_psk != n) {
            return SPK_EVERIFY;
        }
        return 0;
    }
    if (c->n_gce > 1 || c->n_external_init > 0 || (c->n_reinit > 0 && n != 1)) {
        return SPK_EVERIFY;
    }
    return 0;
}

static bool psk_ids_equal(const spk_mls_psk_id_t *a, const spk_mls_psk_id_t *b)
{
    return a->psktype == b->psktype && a->usage == b->usage && a->psk_epoch == b->psk_epoch &&
           spk_mls_bytes_eq(&a->psk_id, &b->psk_id) &&
           spk_mls_bytes_eq(&a->psk_group_id, &b->psk_group_id) &&
           spk_mls_bytes_eq(&a->psk_nonce, &b->psk_nonce);
}

/* Update and Remove rules: one per leaf, never the committer, on non-blank leaves; Updates
 * from members with a valid LeafNode carrying a new encryption key. */
static int check_update_remove(const spk_mls_tree_t *t, const uint8_t *group_id,
                               size_t group_id_len, const spk_mls_extensions_t *ext,
                               uint32_t committer, bool external_commit,
                               const spk_mls_proposal_use_t *list, size_t n, bool *touched,
                               bool *removed)
{
    for (size_t i = 0; i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        uint32_t leaf;
        if (p->type == SPK_MLS_PROPOSAL_UPDATE) {
            leaf = list[i].sender;
            const spk_mls_leaf_node_t *cur = spk_mls_tree_leaf(t, leaf);
            if (list[i].sender_type != SPK_MLS_SENDER_MEMBER || cur == NULL || leaf == committer ||
                spk_mls_bytes_eq(&cur->encryption_key, &p->u.update.encryption_key) ||
                spk_mls_leaf_node_validate(&p->u.update, SPK_MLS_LEAF_SRC_UPDATE, group_id,
                                           group_id_len, leaf, 0) != 0 ||
                spk_mls_leaf_check_required(&p->u.update, ext) != 0) {
                return SPK_EVERIFY;
            }
        } else if (p->type == SPK_MLS_PROPOSAL_REMOVE) {
            leaf = p->u.remove;
            if (spk_mls_tree_leaf(t, leaf) == NULL || (!external_commit && leaf == committer)) {
                return SPK_EVERIFY;
            }
            removed[leaf] = true;
        } else {
            continue;
        }
        if (touched[leaf]) {
            return SPK_EVERIFY;
        }
        touched[leaf] = true;
    }
    return 0;
}

/* Add rules: valid KeyPackages supporting the required capabilities, no two with the same
 * signature key, none matching a member that stays; no duplicate PSK ids. */
static int check_adds_psks(const spk_mls_tree_t *t, const spk_mls_extensions_t *ext,
                           const spk_mls_proposal_use_t *list, size_t n, const bool *removed,
                           uint64_t now, bool validate_kps)
{
    for (size_t i = 0; i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_PSK) {
            for (size_t j = 0; j < i; j++) {
                const spk_mls_proposal_t *q = list[j].proposal;
                if (q->type == SPK_MLS_PROPOSAL_PSK && psk_ids_equal(&p->u.psk, &q->u.psk)) {
                    return SPK_EVERIFY;
                }
            }
        }
        if (p->type != SPK_MLS_PROPOSAL_ADD) {
            continue;
        }
        const spk_mls_bytes_t *sk = &p->u.add.leaf_node.signature_key;
        if ((validate_kps && spk_mls_key_package_validate(&p->u.add, now) != 0) ||
            spk_mls_leaf_check_required(&p->u.add.leaf_node, ext) != 0) {
            return SPK_EVERIFY;
        }
        for (size_t j = 0; j < i; j++) {
            const spk_mls_proposal_t *q = list[j].proposal;
            if (q->type == SPK_MLS_PROPOSAL_ADD &&
                spk_mls_bytes_eq(sk, &q->u.add.leaf_node.signature_key)) {
                return SPK_EVERIFY;
            }
        }
        for (uint32_t l = 0; l < t->n_leaves; l++) {
            const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(t, l);
            if (ln != NULL && !removed[l] && spk_mls_bytes_eq(sk, &ln->signature_key)) {
                return SPK_EVERIFY;
            }
        }
    }
    return 0;
}

/* Applies Updates, Removes, then Adds to nt (§12.3). */
static int apply_tree(spk_mls_tree_t *nt, const spk_mls_proposal_use_t *list, size_t n,
                      uint32_t *added)
{
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_UPDATE) {
            rc = spk_mls_tree_update(nt, list[i].sender, &p->u.update);
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_REMOVE) {
            rc = spk_mls_tree_remove(nt, p->u.remove);
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_ADD) {
            rc = spk_mls_tree_add(nt, &p->u.add.leaf_node, &added[k++]);
        }
    }
    return rc;
}

/* The resulting tree: unique keys, shared credential types, and with new GroupContext
 * extensions every member supports them and their required_capabilities (§12.1.7). */
static int check_result(const spk_mls_tree_t *nt, const spk_mls_extensions_t *gce)
{
    int rc = spk_mls_tree_check_members(nt);
    for (uint32_t l = 0; rc == 0 && gce != NULL && l < nt->n_leaves; l++) {
        const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(nt, l);
        if (ln == NULL) {
            continue;
        }
        rc = spk_mls_leaf_check_required(ln, gce);
        for (size_t i = 0; rc == 0 && i < gce->n; i++) {
            if (!spk_mls_leaf_supports_extension(ln, gce->v[i].type)) {
                rc = SPK_EVERIFY;
            }
        }
    }
    return rc == SPK_ENOMEM ? rc : (rc != 0 ? SPK_EVERIFY : 0);
}

static bool path_required(const spk_mls_proposal_use_t *list, size_t n)
{
    if (n == 0) {
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t type = list[i].proposal->type;
        if (type == SPK_MLS_PROPOSAL_UPDATE || type == SPK_MLS_PROPOSAL_REMOVE ||
            type == SPK_MLS_PROPOSAL_EXTERNAL_INIT || type == SPK_MLS_PROPOSAL_GCE) {
            return true;
        }
    }
    return false;
}

int spk_mls_tree_apply_proposals(const spk_mls_tree_t *t, const uint8_t *group_id,
                                 size_t group_id_len, const spk_mls_extensions_t *gc_extensions,
                                 uint32_t committer, bool external_commit,
                                 const spk_mls_proposal_use_t *list, size_t n, uint64_t now,
                                 spk_mls_applied_t *out)
{
    return spk_mls_tree_apply_proposals_ex(t, group_id, group_id_len, gc_extensions, committer,
                                           external_commit, list, n, now, true, out);
}

int spk_mls_tree_apply_proposals_ex(const spk_mls_tree_t *t, const uint8_t *group_id,
                                    size_t group_id_len, const spk_mls_extensions_t *gc_extensions,
                                    uint32_t committer, bool external_commit,
                                    const spk_mls_proposal_use_t *list, size_t n, uint64_t now,
                                    bool validate_kps, spk_mls_applied_t *out)
{
    counts_t c;
    memset(out, 0, sizeof(*out));
    count(list, n, &c);
    int rc = check_mix(&c, n, external_commit);
    if (rc != 0) {
        return rc;
    }
    const spk_mls_extensions_t *ext = c.gce != NULL ? c.gce : gc_extensions;
    /* touched[l]: leaf l is updated or removed; removed[l]: it is removed. */
    bool *touched = calloc(2 * (size_t)t->n_leaves, sizeof(bool));
    if (touched == NULL) {
        return SPK_ENOMEM;
    }
    bool *removed = touched + t->n_leaves;
    rc = check_update_remove(t, group_id, group_id_len, ext, committer, external_commit, list, n,
                             touched, removed);
    if (rc == 0) {
        rc = check_adds_psks(t, ext, list, n, removed, now, validate_kps);
    }
    free(touched);
    if (rc == 0 && c.n_add > 0) {
        out->added = calloc(c.n_add, sizeof(uint32_t));
        rc = out->added == NULL ? SPK_ENOMEM : 0;
    }
    if (rc == 0) {
        rc = spk_mls_tree_copy(&out->tree, t);
    }
    if (rc == 0) {
        out->n_added = c.n_add;
        rc = apply_tree(&out->tree, list, n, out->added);
    }
    if (rc == 0) {
        rc = check_result(&out->tree, c.gce);
    }
    if (rc != 0) {
        spk_mls_applied_free(out);
        return rc;
    }
    out->gce = c.gce;
    out->path_required = external_commit || path_required(list, n);
    out->has_reinit = c.n_reinit > 0;
    out->has_external_init = c.n_external_init > 0;
    out->n_psks = c.n_psk;
    return 0;
}

/* ---- who joined and who left ---- */

static void change_list_free(spk_mls_change_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        spk_mls_bytes_free(&v[i].identity);
    }
    free(v);
}

void spk_mls_changes_free(spk_mls_changes_t *c)
{
    change_list_free(c->joined, c->n_joined);
    change_list_free(c->left, c->n_left);
    memset(c, 0, sizeof(*c));
}

int spk_mls_changes_of(const spk_mls_tree_t *old, const spk_mls_proposal_use_t *list, size_t n,
                       const spk_mls_applied_t *a, spk_mls_changes_t *out)
{
    size_t n_remove = 0;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        n_remove += list[i].proposal->type == SPK_MLS_PROPOSAL_REMOVE;
    }
    out->joined = calloc(a->n_added + 1, sizeof(*out->joined));
    out->left = calloc(n_remove + 1, sizeof(*out->left));
    int rc = out->joined != NULL && out->left != NULL ? 0 : SPK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const spk_mls_proposal_t *p = list[i].proposal;
        if (p->type == SPK_MLS_PROPOSAL_REMOVE) {
            const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(old, p->u.remove);
            spk_mls_change_t *c = &out->left[out->n_left++];
            c->leaf = p->u.remove;
            rc = ln != NULL ? spk_mls_bytes_copy(&c->identity, &ln->credential.identity)
                            : SPK_EINVAL;
        } else if (p->type == SPK_MLS_PROPOSAL_ADD && out->n_joined < a->n_added) {
            spk_mls_change_t *c = &out->joined[out->n_joined];
            c->leaf = a->added[out->n_joined++];
            rc = spk_mls_bytes_copy(&c->identity, &p->u.add.leaf_node.credential.identity);
            rc = rc != 0 ? rc : mls_kp_ref(&p->u.add, c->key_package_ref);
        }
    }
    if (rc != 0) {
        spk_mls_changes_free(out);
    }
    return rc;
}
