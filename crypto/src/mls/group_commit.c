/* MLS group state: handling PublicMessage / PrivateMessage, caching proposals (§12.1) and
 * processing Commits (§12.4.2). */
#include "mls/group.h"
#include "mls/group_int.h"
#include "mls/msgprot.h"
#include "mls/tree_apply.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- senders ---- */

/* ExternalSender (§12.1.8.1): the signature key of entry index in external_senders. */
static int external_sender_key(const spk_mls_group_t *g, uint32_t index, const uint8_t **pub,
                               size_t *pub_len)
{
    const spk_mls_extension_t *ext =
        spk_mls_extensions_find(&g->gc.extensions, SPK_MLS_EXT_EXTERNAL_SENDERS);
    spk_mls_reader_t r;
    spk_mls_reader_t sub;
    if (ext == NULL) {
        return SPK_EVERIFY;
    }
    spk_mls_reader_init(&r, ext->data.p, ext->data.n);
    if (spk_mls_read_sub(&r, &sub) != 0 || spk_mls_reader_done(&r) != 0) {
        return SPK_EVERIFY;
    }
    for (uint32_t i = 0; spk_mls_reader_remaining(&sub) > 0; i++) {
        const uint8_t *p;
        size_t n;
        spk_mls_credential_t cred;
        spk_mls_read_opaque_v(&sub, &p, &n);
        if (spk_mls_credential_read(&sub, &cred) != 0) {
            return SPK_EVERIFY;
        }
        spk_mls_credential_free(&cred);
        if (i == index) {
            *pub = p;
            *pub_len = n;
            return 0;
        }
    }
    return SPK_EVERIFY;
}

int spk_mls_group_sender_key(const spk_mls_group_t *g, const spk_mls_framed_content_t *c,
                             const uint8_t **pub, size_t *pub_len)
{
    const spk_mls_leaf_node_t *ln;
    switch (c->sender.type) {
    case SPK_MLS_SENDER_MEMBER:
        ln = spk_mls_tree_leaf(&g->tree, c->sender.index);
        break;
    case SPK_MLS_SENDER_EXTERNAL:
        return external_sender_key(g, c->sender.index, pub, pub_len);
    case SPK_MLS_SENDER_NEW_MEMBER_PROPOSAL:
        ln = c->content_type == SPK_MLS_CONTENT_PROPOSAL && c->proposal.type == SPK_MLS_PROPOSAL_ADD
                 ? &c->proposal.u.add.leaf_node
                 : NULL;
        break;
    default:
        ln = NULL; /* new_member_commit (external Commits) is not supported */
        break;
    }
    if (ln == NULL) {
        return SPK_EVERIFY;
    }
    *pub = ln->signature_key.p;
    *pub_len = ln->signature_key.n;
    return 0;
}

static int sig_key_cb(void *arg, uint32_t leaf_index, const uint8_t **pub, size_t *pub_len)
{
    const spk_mls_leaf_node_t *ln =
        spk_mls_tree_leaf(&((const spk_mls_group_t *)arg)->tree, leaf_index);
    if (ln == NULL) {
        return SPK_ENOTFOUND;
    }
    *pub = ln->signature_key.p;
    *pub_len = ln->signature_key.n;
    return 0;
}

/* ---- proposals ---- */

int spk_mls_proposal_cache_add(spk_mls_cached_proposal_t **cache, size_t *n, uint16_t wire_format,
                               const spk_mls_framed_content_t *c, const spk_mls_bytes_t *signature)
{
    spk_mls_cached_proposal_t e;
    spk_mls_bytes_t enc;
    if (*n == SPK_MLS_GROUP_MAX_PROPOSALS) {
        return SPK_ERANGE;
    }
    memset(&e, 0, sizeof(e));
    e.sender_type = c->sender.type;
    e.sender = c->sender.index;
    int rc = spk_mls_proposal_ref_of(wire_format, c, signature, e.ref);
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        if (memcmp((*cache)[i].ref, e.ref, sizeof(e.ref)) == 0) {
            rc = SPK_EMLSREPLAY; /* the same proposal message again */
        }
    }
    rc = rc != 0 ? rc : spk_mls_proposal_encode(&c->proposal, &enc);
    if (rc == 0) {
        rc = spk_mls_proposal_decode(&e.proposal, enc.p, enc.n);
        spk_mls_bytes_free(&enc);
    }
    spk_mls_cached_proposal_t *v = NULL;
    if (rc == 0) {
        v = realloc(*cache, (*n + 1) * sizeof(*v));
        rc = v == NULL ? SPK_ENOMEM : 0;
    }
    if (rc != 0) {
        spk_mls_proposal_free(&e.proposal);
        return rc;
    }
    *cache = v;
    (*cache)[(*n)++] = e;
    return 0;
}

int spk_mls_proposal_cache_drop(spk_mls_cached_proposal_t *cache, size_t *n,
                                const uint8_t ref[SPK_MLS_HASH_LEN])
{
    for (size_t i = 0; i < *n; i++) {
        if (memcmp(cache[i].ref, ref, SPK_MLS_HASH_LEN) == 0) {
            spk_mls_proposal_free(&cache[i].proposal);
            memmove(cache + i, cache + i + 1, (*n - i - 1) * sizeof(cache[0]));
            (*n)--;
            return 0;
        }
    }
    return SPK_ENOTFOUND;
}

int spk_mls_group_cache_proposal(spk_mls_group_t *g, uint16_t wire_format,
                                 const spk_mls_framed_content_t *c,
                                 const spk_mls_bytes_t *signature)
{
    return spk_mls_proposal_cache_add(&g->proposals, &g->n_proposals, wire_format, c, signature);
}

/* The proposal list of a Commit: inline ones from the committer, references from the cache. */
static int resolve(const spk_mls_group_t *g, const spk_mls_commit_t *commit, uint32_t committer,
                   spk_mls_proposal_use_t *list)
{
    for (size_t i = 0; i < commit->n_proposals; i++) {
        const spk_mls_proposal_or_ref_t *por = &commit->proposals[i];
        if (por->type == SPK_MLS_POR_PROPOSAL) {
            list[i].proposal = &por->proposal;
            list[i].sender_type = SPK_MLS_SENDER_MEMBER;
            list[i].sender = committer;
            continue;
        }
        size_t k = 0;
        while (k < g->n_proposals &&
               !spk_mls_bytes_eq_raw(&por->reference, g->proposals[k].ref, SPK_MLS_HASH_LEN)) {
            k++;
        }
        if (k == g->n_proposals) {
            return SPK_EMLSPROPOSAL; /* never received, or refused */
        }
        list[i].proposal = &g->proposals[k].proposal;
        list[i].sender_type = g->proposals[k].sender_type;
        list[i].sender = g->proposals[k].sender;
    }
    return 0;
}

/* ---- commits ---- */

typedef struct {
    uint16_t wire_format;
    const spk_mls_framed_content_t *content;
    const spk_mls_bytes_t *signature;
    const spk_mls_bytes_t *confirmation_tag;
} commit_msg_t;

/* psk_secret of the PreSharedKey proposals in list order. */
static int commit_psk_secret(const spk_mls_group_t *g, const spk_mls_group_env_t *env,
                             const spk_mls_proposal_use_t *list, size_t n,
                             uint8_t out[SPK_MLS_HASH_LEN])
{
    size_t k = 0;
    spk_mls_psk_id_t *ids = calloc(n > 0 ? n : 1, sizeof(*ids));
    if (ids == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].proposal->type == SPK_MLS_PROPOSAL_PSK) {
            ids[k++] = list[i].proposal->u.psk; /* shallow: only read */
        }
    }
    int rc = spk_mls_group_psk_secret(g, env, ids, k, out);
    free(ids);
    return rc;
}

int spk_mls_group_next_context(const spk_mls_group_t *g, const spk_mls_tree_t *tree,
                               const spk_mls_extensions_t *gce, const uint8_t *confirmed,
                               size_t confirmed_len, spk_mls_group_context_t *gc,
                               spk_mls_bytes_t *enc)
{
    return spk_mls_next_context(&g->gc, tree, gce, confirmed, confirmed_len, gc, enc);
}

int spk_mls_next_context(const spk_mls_group_context_t *cur, const spk_mls_tree_t *tree,
                         const spk_mls_extensions_t *gce, const uint8_t *confirmed,
                         size_t confirmed_len, spk_mls_group_context_t *gc, spk_mls_bytes_t *enc)
{
    spk_mls_group_context_t p = *cur;
    spk_mls_group_context_t tmp;
    uint8_t th[SPK_MLS_HASH_LEN];
    int rc = spk_mls_tree_root_hash(tree, th);
    if (rc != 0) {
        return rc;
    }
    p.epoch = cur->epoch + 1;
    p.tree_hash.p = th;
    p.tree_hash.n = sizeof(th);
    p.confirmed_transcript_hash.p = (uint8_t *)confirmed;
    p.confirmed_transcript_hash.n = confirmed_len;
    if (gce != NULL) {
        p.extensions = *gce;
    }
    if (gc == NULL) {
        memset(enc, 0, sizeof(*enc));
        return spk_mls_group_context_encode(&p, enc);
    }
    rc = spk_mls_group_context_dup(&p, &tmp, enc);
    if (rc == 0) {
        *gc = tmp;
    }
    return rc;
}

static int confirmed_hash(const spk_mls_group_t *g, const commit_msg_t *m,
                          uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    spk_mls_bytes_t input;
    spk_mls_writer_init(&w);
    spk_mls_confirmed_transcript_input_write_parts(&w, m->wire_format, m->content, m->signature);
    int rc = spk_mls_writer_take(&w, &input);
    if (rc == 0) {
        rc = spk_mls_confirmed_transcript_hash(g->interim, sizeof(g->interim), input.p, input.n,
                                               out);
        spk_mls_bytes_free(&input);
    }
    return rc;
}

/* Tree and private keys of the next epoch (proposals applied, UpdatePath merged and
 * decrypted with the provisional GroupContext), and the commit_secret. */
static int next_tree(const spk_mls_group_t *g, const spk_mls_tree_priv_t *priv,
                     const commit_msg_t *m, const spk_mls_applied_t *a, spk_mls_group_t *ng,
                     uint8_t commit_secret[SPK_MLS_HASH_LEN])
{
    const spk_mls_commit_t *commit = &m->content->commit;
    const spk_mls_bytes_t *gid = &g->gc.group_id;
    const spk_mls_extensions_t *ext = a->gce != NULL ? a->gce : &g->gc.extensions;
    uint32_t committer = m->content->sender.index;
    spk_mls_bytes_t prov = {NULL, 0};
    memset(commit_secret, 0, SPK_MLS_HASH_LEN);
    if (!commit->has_path) {
        ng->priv = *priv;
        int rc = spk_mls_tree_copy(&ng->tree, &a->tree);
        if (rc == 0) {
            spk_mls_tree_priv_prune(&ng->priv, &ng->tree);
        }
        return rc;
    }
    const spk_mls_leaf_node_t *ln = &commit->path.leaf_node;
    const spk_mls_leaf_node_t *old = spk_mls_tree_leaf(&a->tree, committer);
    if (old == NULL || spk_mls_bytes_eq(&old->encryption_key, &ln->encryption_key) ||
        spk_mls_leaf_node_check(ln, SPK_MLS_LEAF_SRC_COMMIT, 0) != 0 ||
        spk_mls_leaf_check_required(ln, ext) != 0) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_treekem_merge(&a->tree, committer, &commit->path, gid->p, gid->n, &ng->tree);
    rc = rc != 0 ? rc : spk_mls_tree_check_members(&ng->tree);
    rc = rc != 0
             ? rc
             : spk_mls_group_next_context(g, &ng->tree, a->gce, g->gc.confirmed_transcript_hash.p,
                                          g->gc.confirmed_transcript_hash.n, NULL, &prov);
    rc = rc != 0
             ? rc
             : spk_mls_treekem_decrypt(&ng->tree, priv, committer, &commit->path, a->added,
                                       a->n_added, prov.p, prov.n, &ng->priv, NULL, commit_secret);
    spk_mls_bytes_free(&prov);
    return rc;
}

/* g's private keys with the leaf key of this member's own Update when the Commit applies it
 * (§12.1.2: the committer replaces the leaf with the one from the Update proposal). */
static int priv_with_own_update(const spk_mls_group_t *g, const spk_mls_tree_t *applied,
                                spk_mls_tree_priv_t *out)
{
    const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(applied, g->own_leaf);
    *out = g->priv;
    for (size_t i = 0; ln != NULL && i < g->n_own_updates; i++) {
        const spk_mls_node_key_t *k = &g->own_updates[i];
        if (spk_mls_bytes_eq_raw(&ln->encryption_key, k->pub, sizeof(k->pub))) {
            return spk_mls_tree_priv_set(out, k->node, k->priv);
        }
    }
    return 0;
}

/* Key schedule, confirmation tag and transcript hash of the next epoch. */
static int next_secrets(const spk_mls_group_t *g, const spk_mls_group_env_t *env,
                        const commit_msg_t *m, const spk_mls_proposal_use_t *list, size_t n,
                        const uint8_t *confirmed, const uint8_t *commit_secret, spk_mls_group_t *ng)
{
    uint8_t psk_secret[SPK_MLS_HASH_LEN];
    int rc = commit_psk_secret(g, env, list, n, psk_secret);
    rc = rc != 0 ? rc
                 : spk_mls_key_schedule(g->secrets.init_secret, commit_secret, psk_secret,
                                        ng->gc_enc.p, ng->gc_enc.n, &ng->secrets);
    if (rc == 0 &&
        spk_mls_confirmation_tag_verify(ng->secrets.confirmation_key, confirmed,
                                        m->confirmation_tag->p, m->confirmation_tag->n) != 0) {
        rc = SPK_EMLSCONFIRM;
    }
    rc = rc != 0 ? rc
                 : spk_mls_interim_transcript_hash(confirmed, m->confirmation_tag->p,
                                                   m->confirmation_tag->n, ng->interim);
    rc = rc != 0
             ? rc
             : spk_mls_secret_tree_init(&ng->st, ng->secrets.encryption_secret, ng->tree.n_leaves);
    spk_wipe(psk_secret, sizeof(psk_secret));
    return rc;
}

/* True when the Commit removes this member (its leaf may be reused by an Add of the same
 * Commit, so a non-blank leaf afterwards does not mean it stayed). */
static bool removes_own_leaf(const spk_mls_group_t *g, const spk_mls_proposal_use_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].proposal->type == SPK_MLS_PROPOSAL_REMOVE &&
            list[i].proposal->u.remove == g->own_leaf) {
            return true;
        }
    }
    return false;
}

static int handle_commit(spk_mls_group_t *g, const spk_mls_group_env_t *env, const commit_msg_t *m,
                         spk_mls_group_event_t *ev, spk_mls_group_report_t *rep)
{
    const spk_mls_commit_t *commit = &m->content->commit;
    uint32_t committer = m->content->sender.index;
    spk_mls_applied_t a;
    spk_mls_group_t ng;
    spk_mls_tree_priv_t priv;
    uint8_t confirmed[SPK_MLS_HASH_LEN];
    uint8_t commit_secret[SPK_MLS_HASH_LEN];
    if (m->content->sender.type != SPK_MLS_SENDER_MEMBER || committer == g->own_leaf) {
        return SPK_EVERIFY; /* external Commits are not supported; own Commits are not received */
    }
    spk_mls_proposal_use_t *list = calloc(commit->n_proposals + 1, sizeof(*list));
    if (list == NULL) {
        return SPK_ENOMEM;
    }
    memset(&ng, 0, sizeof(ng));
    int rc = resolve(g, commit, committer, list);
    rc = rc != 0 ? rc
                 : spk_mls_tree_apply_proposals(&g->tree, g->gc.group_id.p, g->gc.group_id.n,
                                                &g->gc.extensions, committer, false, list,
                                                commit->n_proposals, 0, &a);
    if (rc != 0) {
        free(list);
        return rc;
    }
    if (rep != NULL) {
        rc = spk_mls_changes_of(&g->tree, list, commit->n_proposals, &a, &rep->changes);
    }
    if (rc != 0) {
        /* out of memory: nothing changed */
    } else if (removes_own_leaf(g, list, commit->n_proposals) ||
               spk_mls_tree_leaf(&a.tree, g->own_leaf) == NULL) {
        *ev = SPK_MLS_GROUP_EV_REMOVED;
    } else if (a.path_required && !commit->has_path) {
        rc = SPK_EVERIFY;
    } else {
        rc = confirmed_hash(g, m, confirmed);
        rc = rc != 0 ? rc : priv_with_own_update(g, &a.tree, &priv);
        rc = rc != 0 ? rc : next_tree(g, &priv, m, &a, &ng, commit_secret);
        rc = rc != 0 ? rc
                     : spk_mls_group_next_context(g, &ng.tree, a.gce, confirmed, sizeof(confirmed),
                                                  &ng.gc, &ng.gc_enc);
        rc = rc != 0 ? rc
                     : next_secrets(g, env, m, list, commit->n_proposals, confirmed, commit_secret,
                                    &ng);
        if (rc == 0) {
            ng.own_leaf = g->own_leaf;
            memcpy(ng.sig_priv, g->sig_priv, sizeof(ng.sig_priv));
            spk_mls_group_install(g, &ng);
            *ev = SPK_MLS_GROUP_EV_COMMIT;
        }
    }
    spk_mls_group_free(&ng);
    spk_mls_applied_free(&a);
    spk_mls_tree_priv_wipe(&priv);
    spk_wipe(commit_secret, sizeof(commit_secret));
    free(list);
    return rc;
}

/* ---- dispatch ---- */

static int handle_content(spk_mls_group_t *g, const spk_mls_group_env_t *env, const commit_msg_t *m,
                          spk_mls_group_event_t *ev, spk_mls_bytes_t *app,
                          spk_mls_group_report_t *rep)
{
    const spk_mls_framed_content_t *c = m->content;
    if (rep != NULL) {
        rep->sender_type = c->sender.type;
        rep->sender = c->sender.index;
        int rc = spk_mls_bytes_copy(&rep->authenticated_data, &c->authenticated_data);
        if (rc != 0) {
            return rc;
        }
    }
    switch (c->content_type) {
    case SPK_MLS_CONTENT_PROPOSAL: {
        int rc = spk_mls_group_cache_proposal(g, m->wire_format, c, m->signature);
        if (rc == 0) {
            *ev = SPK_MLS_GROUP_EV_PROPOSAL;
        }
        return rc;
    }
    case SPK_MLS_CONTENT_COMMIT:
        return handle_commit(g, env, m, ev, rep);
    default:
        /* Application data only arrives as PrivateMessage (§6.2). */
        if (m->wire_format != SPK_MLS_WIRE_PRIVATE) {
            return SPK_EVERIFY;
        }
        *ev = SPK_MLS_GROUP_EV_APPLICATION;
        return app != NULL ? spk_mls_bytes_copy(app, &c->application_data) : 0;
    }
}

static int handle_public(spk_mls_group_t *g, const spk_mls_public_message_t *pm,
                         const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                         spk_mls_bytes_t *app, spk_mls_group_report_t *rep)
{
    const spk_mls_framed_content_t *c = &pm->content;
    const uint8_t *pub;
    size_t pub_len;
    if (!spk_mls_bytes_eq(&c->group_id, &g->gc.group_id)) {
        return SPK_EMLSGROUP;
    }
    if (c->epoch != g->gc.epoch) {
        return SPK_EMLSEPOCH;
    }
    int rc = spk_mls_group_sender_key(g, c, &pub, &pub_len);
    rc = rc != 0 ? rc
                 : spk_mls_public_message_check(pm, g->gc_enc.p, g->gc_enc.n,
                                                g->secrets.membership_key, pub, pub_len);
    if (rc != 0) {
        return rc;
    }
    commit_msg_t m = {SPK_MLS_WIRE_PUBLIC, c, &pm->signature, &pm->confirmation_tag};
    return handle_content(g, env, &m, ev, app, rep);
}

static int handle_private(spk_mls_group_t *g, const spk_mls_private_message_t *pm,
                          const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                          spk_mls_bytes_t *app, spk_mls_group_report_t *rep)
{
    spk_mls_auth_content_t ac;
    uint32_t gen = 0;
    if (!spk_mls_bytes_eq(&pm->group_id, &g->gc.group_id)) {
        return SPK_EMLSGROUP;
    }
    if (pm->epoch != g->gc.epoch) {
        return SPK_EMLSEPOCH;
    }
    int rc = spk_mls_private_message_open(pm, g->gc_enc.p, g->gc_enc.n, &g->st,
                                          g->secrets.sender_data_secret, sig_key_cb, g, &ac, &gen);
    if (rc == SPK_ENOTFOUND) {
        return SPK_EMLSREPLAY; /* the generation's key was consumed (or evicted) */
    }
    if (rc != 0) {
        return rc;
    }
    commit_msg_t m = {SPK_MLS_WIRE_PRIVATE, &ac.content, &ac.signature, &ac.confirmation_tag};
    size_t n_before = g->n_proposals;
    rc = handle_content(g, env, &m, ev, app, rep);
    /* The ratchet key is deleted (§9.2) only once the content was accepted, so that a rejected
     * message leaves the state as it was; an installed Commit replaced the secret tree. */
    if (rc == 0 && *ev != SPK_MLS_GROUP_EV_COMMIT && *ev != SPK_MLS_GROUP_EV_REMOVED) {
        rc = spk_mls_private_message_consume(&g->st, &ac, gen);
        if (rc != 0 && g->n_proposals > n_before) {
            spk_mls_proposal_free(&g->proposals[--g->n_proposals].proposal);
        }
        if (rc != 0 && app != NULL) {
            spk_mls_bytes_free(app);
        }
    }
    spk_mls_auth_content_free(&ac);
    return rc;
}

void spk_mls_group_report_free(spk_mls_group_report_t *r)
{
    spk_mls_bytes_free(&r->authenticated_data);
    spk_mls_changes_free(&r->changes);
    memset(r, 0, sizeof(*r));
}

int spk_mls_group_handle_report(spk_mls_group_t *g, const spk_mls_message_t *m,
                                const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                                spk_mls_bytes_t *app, spk_mls_group_report_t *rep)
{
    int rc = SPK_EINVAL;
    *ev = 0;
    if (rep != NULL) {
        memset(rep, 0, sizeof(*rep));
    }
    if (m->wire_format == SPK_MLS_WIRE_PUBLIC) {
        rc = handle_public(g, &m->u.pub, env, ev, app, rep);
    } else if (m->wire_format == SPK_MLS_WIRE_PRIVATE) {
        rc = handle_private(g, &m->u.priv, env, ev, app, rep);
    }
    if (rc != 0 && rep != NULL) {
        spk_mls_group_report_free(rep);
    }
    return rc;
}

int spk_mls_group_handle(spk_mls_group_t *g, const spk_mls_message_t *m,
                         const spk_mls_group_env_t *env, spk_mls_group_event_t *ev,
                         spk_mls_bytes_t *app)
{
    return spk_mls_group_handle_report(g, m, env, ev, app, NULL);
}
