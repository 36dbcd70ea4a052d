/* MLS group state, sending side: creating a group (§11), creating a Commit with an UpdatePath
 * and the Welcome for the members it adds (§12.4.1, §12.4.3), and application messages. */
#include "mls/group.h"
#include "mls/group_int.h"
#include "mls/msgprot.h"
#include "mls/tree_apply.h"
#include "mls/validate.h"
#include "mls/welcome_crypto.h"

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- creating a group (§11) ---- */

/* Epoch 0: key schedule from a fresh random secret, confirmation tag over the empty confirmed
 * transcript hash, and the interim transcript hash from it. */
static int first_epoch(spk_mls_group_t *ng)
{
    uint8_t joiner[SPK_MLS_HASH_LEN];
    uint8_t tag[SPK_MLS_HASH_LEN];
    uint8_t input[1 + SPK_MLS_HASH_LEN];
    int rc = spk_random_bytes(joiner, sizeof(joiner));
    rc = rc != 0 ? rc
                 : spk_mls_key_schedule_from_joiner(joiner, NULL, ng->gc_enc.p, ng->gc_enc.n,
                                                    &ng->secrets);
    rc = rc != 0
             ? rc
             : spk_mls_hmac_sha256(ng->secrets.confirmation_key, SPK_MLS_HASH_LEN, NULL, 0, tag);
    if (rc == 0) {
        /* interim = Hash("" || V(confirmation_tag)) */
        input[0] = SPK_MLS_HASH_LEN;
        memcpy(input + 1, tag, sizeof(tag));
        rc = spk_mls_sha256(input, sizeof(input), ng->interim);
    }
    spk_wipe(joiner, sizeof(joiner));
    return rc;
}

static int creator_tree(spk_mls_tree_t *t, const spk_mls_leaf_node_t *leaf)
{
    t->nodes = calloc(1, sizeof(spk_mls_node_t));
    if (t->nodes == NULL) {
        return SPK_ENOMEM;
    }
    t->n_leaves = 1;
    int rc = spk_mls_leaf_node_copy(&t->nodes[0].leaf, leaf);
    if (rc == 0) {
        t->nodes[0].type = SPK_MLS_NODE_LEAF;
    }
    return rc;
}

int spk_mls_group_create(spk_mls_group_t *g, const uint8_t *group_id, size_t group_id_len,
                         const spk_mls_leaf_node_t *leaf,
                         const uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN],
                         const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                         const spk_mls_extensions_t *extensions)
{
    spk_mls_group_t ng;
    spk_mls_group_context_t gc;
    uint8_t th[SPK_MLS_HASH_LEN];
    memset(&ng, 0, sizeof(ng));
    memset(&gc, 0, sizeof(gc));
    memset(g, 0, sizeof(*g));
    int rc = creator_tree(&ng.tree, leaf);
    rc = rc != 0 ? rc : spk_mls_tree_root_hash(&ng.tree, th);
    if (rc == 0) {
        gc.version = SPK_MLS_VERSION_10;
        gc.cipher_suite = SPK_MLS_CIPHER_SUITE;
        gc.group_id.p = (uint8_t *)group_id;
        gc.group_id.n = group_id_len;
        gc.tree_hash.p = th;
        gc.tree_hash.n = sizeof(th);
        if (extensions != NULL) {
            gc.extensions = *extensions;
        }
        rc = spk_mls_group_context_dup(&gc, &ng.gc, &ng.gc_enc);
    }
    rc = rc != 0 ? rc : spk_mls_tree_priv_join(&ng.tree, 0, enc_priv, 0, NULL, &ng.priv);
    rc = rc != 0 ? rc : first_epoch(&ng);
    rc = rc != 0 ? rc : spk_mls_secret_tree_init(&ng.st, ng.secrets.encryption_secret, 1);
    if (rc != 0) {
        spk_mls_group_free(&ng);
        return rc;
    }
    memcpy(ng.sig_priv, sig_priv, SPK_MLS_SIG_PRIV_LEN);
    spk_mls_group_install(g, &ng);
    return 0;
}

/* ---- creating a Commit (§12.4.1) ---- */

void spk_mls_group_commit_out_free(spk_mls_commit_out_t *out)
{
    spk_mls_bytes_free(&out->commit);
    spk_mls_bytes_free(&out->welcome);
    spk_mls_group_free(&out->next);
    spk_mls_changes_free(&out->changes);
}

void spk_mls_group_merge_commit(spk_mls_group_t *g, spk_mls_commit_out_t *out)
{
    spk_mls_group_install(g, &out->next);
    spk_mls_group_commit_out_free(out);
}

/* Everything a Commit under construction needs across the steps. */
typedef struct {
    spk_mls_applied_t a;
    spk_mls_update_path_t path;
    spk_mls_treekem_pending_t pending;
    spk_mls_framed_content_t content; /* borrows from g, the proposals and path */
    spk_mls_proposal_or_ref_t *pors;
    spk_mls_bytes_t signature;
    uint8_t confirmed[SPK_MLS_HASH_LEN];
    uint8_t tag[SPK_MLS_HASH_LEN];
    uint8_t psk_secret[SPK_MLS_HASH_LEN];
    unsigned flags;       /* SPK_MLS_GROUP_COMMIT_* */
    uint16_t wire_format; /* of the Commit message */
    spk_mls_bytes_t ad;   /* authenticated_data (borrowed) */
} build_t;

static void build_free(build_t *b)
{
    spk_mls_applied_free(&b->a);
    spk_mls_update_path_free(&b->path);
    spk_mls_treekem_pending_wipe(&b->pending);
    free(b->pors);
    spk_mls_bytes_free(&b->signature);
    spk_wipe(b, sizeof(*b));
}

/* Applies the proposals, creates and encrypts the UpdatePath; fills next's tree and keys. */
static int build_path(const spk_mls_group_t *g, const spk_mls_proposal_use_t *list, size_t n,
                      build_t *b, spk_mls_group_t *next)
{
    const spk_mls_bytes_t *gid = &g->gc.group_id;
    spk_mls_bytes_t prov = {NULL, 0};
    int rc = spk_mls_tree_apply_proposals(&g->tree, gid->p, gid->n, &g->gc.extensions, g->own_leaf,
                                          false, list, n, 0, &b->a);
    rc = rc != 0 ? rc
                 : spk_mls_treekem_create(&b->a.tree, &g->priv, g->own_leaf,
                                          spk_mls_tree_leaf(&b->a.tree, g->own_leaf), g->sig_priv,
                                          gid->p, gid->n, &b->path, &next->tree, &next->priv,
                                          &b->pending);
    rc = rc != 0 ? rc
                 : spk_mls_group_next_context(g, &next->tree, b->a.gce,
                                              g->gc.confirmed_transcript_hash.p,
                                              g->gc.confirmed_transcript_hash.n, NULL, &prov);
    rc = rc != 0 ? rc
                 : spk_mls_treekem_encrypt(&next->tree, &b->pending, b->a.added, b->a.n_added,
                                           prov.p, prov.n, &b->path);
    spk_mls_bytes_free(&prov);
    return rc;
}

/* FramedContent of the Commit, its signature and the confirmed transcript hash. */
static int build_content(const spk_mls_group_t *g, size_t n, build_t *b)
{
    spk_mls_writer_t w;
    spk_mls_bytes_t input;
    b->content.group_id = g->gc.group_id;
    b->content.epoch = g->gc.epoch;
    b->content.sender.type = SPK_MLS_SENDER_MEMBER;
    b->content.sender.index = g->own_leaf;
    b->content.content_type = SPK_MLS_CONTENT_COMMIT;
    b->content.authenticated_data = b->ad;
    b->content.commit.proposals = b->pors;
    b->content.commit.n_proposals = n;
    b->content.commit.has_path = true;
    b->content.commit.path = b->path;
    int rc = spk_mls_framed_content_sign(b->wire_format, &b->content, g->gc_enc.p, g->gc_enc.n,
                                         g->sig_priv, &b->signature);
    if (rc != 0) {
        return rc;
    }
    spk_mls_writer_init(&w);
    spk_mls_confirmed_transcript_input_write_parts(&w, b->wire_format, &b->content, &b->signature);
    rc = spk_mls_writer_take(&w, &input);
    if (rc == 0) {
        rc = spk_mls_confirmed_transcript_hash(g->interim, sizeof(g->interim), input.p, input.n,
                                               b->confirmed);
        spk_mls_bytes_free(&input);
    }
    return rc;
}

/* The Commit as MLSMessage: PublicMessage with a membership tag, or PrivateMessage under the
 * next generation of the committer's handshake ratchet in st (the signature is deterministic,
 * so protecting re-signs to the same bytes that entered the transcript hash). */
static int frame_commit(const spk_mls_group_t *g, build_t *b, spk_mls_secret_tree_t *st,
                        spk_mls_commit_out_t *out)
{
    spk_mls_message_t m;
    uint8_t mt[SPK_MLS_HASH_LEN];
    spk_mls_bytes_t tag = {b->tag, sizeof(b->tag)};
    if (b->wire_format == SPK_MLS_WIRE_PRIVATE) {
        return spk_mls_private_message_protect(&b->content, &tag, g->gc_enc.p, g->gc_enc.n,
                                               g->sig_priv, st, g->secrets.sender_data_secret, 0,
                                               &out->commit);
    }
    int rc = spk_mls_membership_tag(&b->content, &b->signature, &tag, g->gc_enc.p, g->gc_enc.n,
                                    g->secrets.membership_key, mt);
    if (rc == 0) {
        memset(&m, 0, sizeof(m));
        m.version = SPK_MLS_VERSION_10;
        m.wire_format = SPK_MLS_WIRE_PUBLIC;
        m.u.pub.content = b->content;
        m.u.pub.signature = b->signature;
        m.u.pub.confirmation_tag = tag;
        m.u.pub.membership_tag.p = mt;
        m.u.pub.membership_tag.n = sizeof(mt);
        rc = spk_mls_message_encode(&m, &out->commit);
    }
    return rc;
}

/* Key schedule and transcript of the next epoch, then the framed Commit message. */
static int build_epoch(const spk_mls_group_t *g, spk_mls_secret_tree_t *st,
                       const spk_mls_group_env_t *env, const spk_mls_proposal_use_t *list, size_t n,
                       build_t *b, spk_mls_commit_out_t *out)
{
    spk_mls_group_t *next = &out->next;
    spk_mls_psk_id_t *ids = calloc(n + 1, sizeof(*ids));
    size_t k = 0;
    if (ids == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (list[i].proposal->type == SPK_MLS_PROPOSAL_PSK) {
            ids[k++] = list[i].proposal->u.psk;
        }
    }
    int rc = spk_mls_group_psk_secret(g, env, ids, k, b->psk_secret);
    free(ids);
    rc = rc != 0 ? rc
                 : spk_mls_group_next_context(g, &next->tree, b->a.gce, b->confirmed,
                                              sizeof(b->confirmed), &next->gc, &next->gc_enc);
    rc = rc != 0
             ? rc
             : spk_mls_key_schedule(g->secrets.init_secret, b->pending.commit_secret, b->psk_secret,
                                    next->gc_enc.p, next->gc_enc.n, &next->secrets);
    rc = rc != 0 ? rc
                 : spk_mls_confirmation_tag(next->secrets.confirmation_key, b->confirmed, b->tag);
    rc = rc != 0
             ? rc
             : spk_mls_interim_transcript_hash(b->confirmed, b->tag, sizeof(b->tag), next->interim);
    rc = rc != 0 ? rc
                 : spk_mls_secret_tree_init(&next->st, next->secrets.encryption_secret,
                                            next->tree.n_leaves);
    if (rc == 0) {
        rc = frame_commit(g, b, st, out);
    }
    return rc;
}

/* ---- Welcome (§12.4.3.1) ---- */

/* Signed GroupInfo of the next epoch with the ratchet tree in an extension, sealed. */
static int seal_group_info(const spk_mls_group_t *g, const build_t *b, const spk_mls_group_t *next,
                           spk_mls_bytes_t *enc_gi)
{
    spk_mls_group_info_t gi;
    spk_mls_extension_t ext;
    memset(&gi, 0, sizeof(gi));
    memset(&ext, 0, sizeof(ext));
    ext.type = SPK_MLS_EXT_RATCHET_TREE;
    gi.group_context = next->gc;
    if ((b->flags & SPK_MLS_GROUP_COMMIT_NO_TREE) == 0) {
        int rc = spk_mls_tree_encode(&next->tree, &ext.data);
        if (rc != 0) {
            return rc;
        }
        gi.extensions.v = &ext;
        gi.extensions.n = 1;
    }
    gi.confirmation_tag.p = (uint8_t *)b->tag;
    gi.confirmation_tag.n = sizeof(b->tag);
    gi.signer = g->own_leaf;
    int rc = spk_mls_group_info_sign(&gi, g->sig_priv);
    rc = rc != 0 ? rc
                 : spk_mls_welcome_seal_group_info(&gi, next->secrets.joiner_secret, b->psk_secret,
                                                   enc_gi);
    spk_mls_bytes_free(&gi.signature);
    spk_mls_bytes_free(&ext.data);
    return rc;
}

/* EncryptedGroupSecrets for the new member at leaf with KeyPackage kp. */
static int seal_secrets(const build_t *b, const spk_mls_group_t *next,
                        const spk_mls_key_package_t *kp, uint32_t leaf, spk_mls_psk_id_t *psks,
                        size_t n_psks, const spk_mls_bytes_t *enc_gi,
                        spk_mls_encrypted_group_secrets_t *out)
{
    spk_mls_group_secrets_t gs;
    uint8_t ps[SPK_MLS_HASH_LEN];
    uint8_t ref[SPK_MLS_HASH_LEN];
    memset(&gs, 0, sizeof(gs));
    gs.joiner_secret.p = (uint8_t *)next->secrets.joiner_secret;
    gs.joiner_secret.n = SPK_MLS_HASH_LEN;
    gs.psks = psks;
    gs.n_psks = n_psks;
    int rc = spk_mls_treekem_pending_path_secret(&b->pending, leaf, ps);
    if (rc == 0) {
        gs.has_path_secret = true;
        gs.path_secret.p = ps;
        gs.path_secret.n = sizeof(ps);
    }
    rc = mls_kp_ref(kp, ref);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&out->new_member, ref, sizeof(ref));
    rc = rc != 0 ? rc
                 : spk_mls_welcome_seal_secrets(&gs, kp->init_key.p, kp->init_key.n, enc_gi,
                                                &out->encrypted_group_secrets);
    spk_wipe(ps, sizeof(ps));
    return rc;
}

static int build_welcome(const spk_mls_group_t *g, const spk_mls_proposal_use_t *list, size_t n,
                         const build_t *b, spk_mls_commit_out_t *out)
{
    spk_mls_message_t m;
    spk_mls_psk_id_t *psks = calloc(n + 1, sizeof(*psks));
    size_t n_psks = 0;
    size_t k = 0;
    memset(&m, 0, sizeof(m));
    m.version = SPK_MLS_VERSION_10;
    m.wire_format = SPK_MLS_WIRE_WELCOME;
    m.u.welcome.cipher_suite = SPK_MLS_CIPHER_SUITE;
    m.u.welcome.secrets = calloc(b->a.n_added + 1, sizeof(spk_mls_encrypted_group_secrets_t));
    int rc = psks != NULL && m.u.welcome.secrets != NULL ? 0 : SPK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (list[i].proposal->type == SPK_MLS_PROPOSAL_PSK) {
            psks[n_psks++] = list[i].proposal->u.psk;
        }
    }
    rc = rc != 0 ? rc : seal_group_info(g, b, &out->next, &m.u.welcome.encrypted_group_info);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (list[i].proposal->type == SPK_MLS_PROPOSAL_ADD) {
            rc = seal_secrets(b, &out->next, &list[i].proposal->u.add, b->a.added[k], psks, n_psks,
                              &m.u.welcome.encrypted_group_info, &m.u.welcome.secrets[k]);
            k++;
            m.u.welcome.n_secrets = k;
        }
    }
    rc = rc != 0 ? rc : spk_mls_message_encode(&m, &out->welcome);
    free(psks);
    spk_mls_message_free(&m);
    return rc;
}

/* The Commit's proposal list: cached proposals by reference (except the committer's own
 * Updates, §12.2), then the inline ones; list[i] and pors[i] describe the same proposal. */
static int make_list(const spk_mls_group_t *g, const spk_mls_proposal_t *props, size_t n,
                     bool include_cached, spk_mls_proposal_use_t *list, build_t *b, size_t *total)
{
    size_t k = 0;
    b->pors = calloc(n + g->n_proposals + 1, sizeof(*b->pors));
    if (b->pors == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; include_cached && i < g->n_proposals; i++) {
        const spk_mls_cached_proposal_t *cp = &g->proposals[i];
        if (cp->proposal.type == SPK_MLS_PROPOSAL_UPDATE &&
            cp->sender_type == SPK_MLS_SENDER_MEMBER && cp->sender == g->own_leaf) {
            continue;
        }
        if (cp->proposal.type == SPK_MLS_PROPOSAL_REMOVE && cp->proposal.u.remove == g->own_leaf) {
            continue; /* a self-remove: another member commits it */
        }
        list[k].proposal = &cp->proposal;
        list[k].sender_type = cp->sender_type;
        list[k].sender = cp->sender;
        b->pors[k].type = SPK_MLS_POR_REFERENCE;
        b->pors[k].reference.p = (uint8_t *)cp->ref;
        b->pors[k].reference.n = SPK_MLS_HASH_LEN;
        k++;
    }
    for (size_t i = 0; i < n; i++) {
        list[k].proposal = &props[i];
        list[k].sender_type = SPK_MLS_SENDER_MEMBER;
        list[k].sender = g->own_leaf;
        b->pors[k].type = SPK_MLS_POR_PROPOSAL;
        b->pors[k].proposal = props[i];
        k++;
    }
    *total = k;
    return 0;
}

int spk_mls_group_commit(spk_mls_group_t *g, const spk_mls_proposal_t *props, size_t n,
                         bool include_cached, const spk_mls_group_env_t *env,
                         spk_mls_commit_out_t *out)
{
    return spk_mls_group_commit_ex(g, props, n, include_cached, env, 0, NULL, out);
}

int spk_mls_group_commit_ex(spk_mls_group_t *g, const spk_mls_proposal_t *props, size_t n,
                            bool include_cached, const spk_mls_group_env_t *env, unsigned flags,
                            const spk_mls_bytes_t *ad, spk_mls_commit_out_t *out)
{
    build_t *b = calloc(1, sizeof(*b));
    spk_mls_proposal_use_t *list = calloc(n + g->n_proposals + 1, sizeof(*list));
    size_t total = 0;
    memset(out, 0, sizeof(*out));
    int rc = b != NULL && list != NULL ? 0 : SPK_ENOMEM;
    if (rc == 0) {
        b->flags = flags;
        b->wire_format = (flags & SPK_MLS_GROUP_COMMIT_PRIVATE) != 0 ? SPK_MLS_WIRE_PRIVATE
                                                                     : SPK_MLS_WIRE_PUBLIC;
        if (ad != NULL) {
            b->ad = *ad;
        }
    }
    rc = rc != 0 ? rc : make_list(g, props, n, include_cached, list, b, &total);
    rc = rc != 0 ? rc : build_path(g, list, total, b, &out->next);
    rc = rc != 0 ? rc : build_content(g, total, b);
    rc = rc != 0 ? rc : build_epoch(g, &g->st, env, list, total, b, out);
    if (rc == 0 && b->a.n_added > 0) {
        rc = build_welcome(g, list, total, b, out);
    }
    rc = rc != 0 ? rc : spk_mls_changes_of(&g->tree, list, total, &b->a, &out->changes);
    if (rc == 0) {
        out->next.own_leaf = g->own_leaf;
        memcpy(out->next.sig_priv, g->sig_priv, sizeof(g->sig_priv));
    } else {
        spk_mls_group_commit_out_free(out);
        memset(out, 0, sizeof(*out));
    }
    if (b != NULL) {
        build_free(b);
        free(b);
    }
    free(list);
    return rc;
}

/* ---- proposals ---- */

/* Frames p as a PublicMessage proposal and caches it. */
static int propose(spk_mls_group_t *g, const spk_mls_proposal_t *p, spk_mls_bytes_t *out)
{
    spk_mls_framed_content_t c;
    spk_mls_message_t m;
    memset(&c, 0, sizeof(c));
    c.group_id = g->gc.group_id;
    c.epoch = g->gc.epoch;
    c.sender.type = SPK_MLS_SENDER_MEMBER;
    c.sender.index = g->own_leaf;
    c.content_type = SPK_MLS_CONTENT_PROPOSAL;
    c.proposal = *p;
    int rc = spk_mls_public_message_protect(&c, NULL, g->gc_enc.p, g->gc_enc.n, g->sig_priv,
                                            g->secrets.membership_key, out);
    if (rc != 0) {
        return rc;
    }
    /* Keep it like any received proposal, so that a Commit may refer to it. */
    rc = spk_mls_message_decode(&m, out->p, out->n);
    if (rc == 0) {
        rc = spk_mls_group_cache_proposal(g, SPK_MLS_WIRE_PUBLIC, &c, &m.u.pub.signature);
        spk_mls_message_free(&m);
    }
    if (rc != 0) {
        spk_mls_bytes_free(out);
    }
    return rc;
}

int spk_mls_group_propose(spk_mls_group_t *g, const spk_mls_proposal_t *p, spk_mls_bytes_t *out)
{
    if (p->type == SPK_MLS_PROPOSAL_UPDATE) {
        return SPK_EINVAL; /* see spk_mls_group_propose_update */
    }
    return propose(g, p, out);
}

int spk_mls_group_propose_update(spk_mls_group_t *g, spk_mls_bytes_t *out)
{
    spk_mls_proposal_t p;
    spk_mls_node_key_t k;
    const spk_mls_leaf_node_t *own = spk_mls_tree_leaf(&g->tree, g->own_leaf);
    if (own == NULL) {
        return SPK_ESTATE;
    }
    if (g->n_own_updates == SPK_MLS_GROUP_MAX_OWN_UPDATES) {
        return SPK_ERANGE;
    }
    memset(&p, 0, sizeof(p));
    p.type = SPK_MLS_PROPOSAL_UPDATE;
    k.node = spk_mls_tm_leaf_to_node(g->own_leaf);
    int rc = spk_mls_x25519_keygen(k.priv, k.pub);
    rc = rc != 0 ? rc : spk_mls_leaf_node_copy(&p.u.update, own);
    if (rc == 0) {
        spk_mls_leaf_node_t *ln = &p.u.update;
        spk_mls_bytes_free(&ln->parent_hash);
        ln->source = SPK_MLS_LEAF_SRC_UPDATE;
        memset(&ln->lifetime, 0, sizeof(ln->lifetime));
        rc = spk_mls_bytes_copy(&ln->encryption_key, &(spk_mls_bytes_t){k.pub, sizeof(k.pub)});
        rc = rc != 0 ? rc
                     : spk_mls_leaf_node_sign(ln, g->sig_priv, g->gc.group_id.p, g->gc.group_id.n,
                                              g->own_leaf);
    }
    rc = rc != 0 ? rc : propose(g, &p, out);
    if (rc == 0) {
        g->own_updates[g->n_own_updates++] = k;
    }
    spk_mls_proposal_free(&p);
    spk_wipe(&k, sizeof(k));
    return rc;
}

/* ---- application messages ---- */

int spk_mls_group_send(spk_mls_group_t *g, const uint8_t *data, size_t len, size_t padding,
                       spk_mls_bytes_t *out)
{
    return spk_mls_group_send_ad(g, NULL, data, len, padding, out);
}

int spk_mls_group_send_ad(spk_mls_group_t *g, const spk_mls_bytes_t *ad, const uint8_t *data,
                          size_t len, size_t padding, spk_mls_bytes_t *out)
{
    spk_mls_framed_content_t c;
    memset(&c, 0, sizeof(c));
    c.group_id = g->gc.group_id;
    c.epoch = g->gc.epoch;
    c.sender.type = SPK_MLS_SENDER_MEMBER;
    c.sender.index = g->own_leaf;
    c.content_type = SPK_MLS_CONTENT_APPLICATION;
    if (ad != NULL) {
        c.authenticated_data = *ad;
    }
    c.application_data.p = (uint8_t *)data;
    c.application_data.n = len;
    return spk_mls_private_message_protect(&c, NULL, g->gc_enc.p, g->gc_enc.n, g->sig_priv, &g->st,
                                           g->secrets.sender_data_secret, padding, out);
}
