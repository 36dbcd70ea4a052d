/* MLS observer (spk/mls_observer.h): starting from a GroupInfo, checking senders and
 * signatures, caching proposals, and the accessors. Commits are in observer_commit.c. */
#include "mls/group_int.h"
#include "mls/mls_api_int.h"
#include "mls/msgprot.h"
#include "mls/observer_int.h"
#include "mls/validate.h"
#include "mls/welcome_crypto.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- lifetime ---- */

void obs_epoch_free(spk_mls_observer_t *o)
{
    spk_mls_group_context_free(&o->gc);
    spk_mls_bytes_free(&o->gc_enc);
    spk_mls_tree_free(&o->tree);
    for (size_t i = 0; i < o->n_proposals; i++) {
        spk_mls_proposal_free(&o->proposals[i].proposal);
    }
    free(o->proposals);
    o->proposals = NULL;
    o->n_proposals = 0;
}

void obs_last_clear(spk_mls_observer_t *o)
{
    spk_mls_bytes_free(&o->last_ad);
    spk_mls_changes_free(&o->last_changes);
    free(o->last_members);
    free(o->last_refs);
    o->last_members = NULL;
    o->last_refs = NULL;
}

void spk_mls_observer_free(spk_mls_observer_t *o)
{
    if (o == NULL) {
        return;
    }
    obs_last_clear(o);
    obs_epoch_free(o);
    obs_next_free(&o->pending);
    free(o);
}

int obs_interim(const uint8_t *confirmed, size_t confirmed_len, const spk_mls_bytes_t *tag,
                uint8_t out[SPK_MLS_HASH_LEN])
{
    uint8_t input[1 + SPK_MLS_HASH_LEN];
    if (tag->n != SPK_MLS_HASH_LEN) {
        return SPK_EVERIFY;
    }
    if (confirmed_len == SPK_MLS_HASH_LEN) {
        return spk_mls_interim_transcript_hash(confirmed, tag->p, tag->n, out);
    }
    if (confirmed_len != 0) {
        return SPK_EVERIFY;
    }
    input[0] = SPK_MLS_HASH_LEN; /* epoch 0: Hash("" || V(confirmation_tag)) */
    memcpy(input + 1, tag->p, SPK_MLS_HASH_LEN);
    return spk_mls_sha256(input, sizeof(input), out);
}

/* ---- creating from a GroupInfo ---- */

/* The epoch of gi over tree t into o. */
static int start_epoch(spk_mls_observer_t *o, const spk_mls_group_info_t *gi)
{
    const spk_mls_group_context_t *gc = &gi->group_context;
    uint8_t th[SPK_MLS_HASH_LEN];
    if (gc->version != SPK_MLS_VERSION_10 || gc->cipher_suite != SPK_MLS_CIPHER_SUITE ||
        (gc->confirmed_transcript_hash.n != SPK_MLS_HASH_LEN &&
         (gc->epoch != 0 || gc->confirmed_transcript_hash.n != 0))) {
        return SPK_EVERIFY;
    }
    const spk_mls_leaf_node_t *signer = spk_mls_tree_leaf(&o->tree, gi->signer);
    if (signer == NULL) {
        return SPK_EMLSSENDER;
    }
    if (spk_mls_group_info_verify(gi, signer->signature_key.p, signer->signature_key.n) != 0) {
        return SPK_EMLSSIG;
    }
    int rc = spk_mls_tree_root_hash(&o->tree, th);
    if (rc == 0 && !spk_mls_bytes_eq_raw(&gc->tree_hash, th, sizeof(th))) {
        rc = SPK_EVERIFY;
    }
    rc = rc != 0 ? rc
                 : spk_mls_tree_validate(&o->tree, gc->group_id.p, gc->group_id.n, &gc->extensions);
    rc = rc != 0 ? rc
                 : obs_interim(gc->confirmed_transcript_hash.p, gc->confirmed_transcript_hash.n,
                               &gi->confirmation_tag, o->interim);
    rc = rc != 0 ? rc : spk_mls_group_context_dup(gc, &o->gc, &o->gc_enc);
    return rc == SPK_ENOMEM || rc == SPK_EMLSSENDER || rc == SPK_EMLSSIG || rc == 0 ? rc
                                                                                    : SPK_EVERIFY;
}

int spk_mls_observer_create(spk_mls_observer_t **out, const uint8_t *group_info,
                            size_t group_info_len, const uint8_t *ratchet_tree,
                            size_t ratchet_tree_len)
{
    spk_mls_message_t m;
    *out = NULL;
    if (ratchet_tree_len > SPK_MLS_MAX_MESSAGE) {
        return SPK_ETOOBIG;
    }
    int rc = mls_api_decode(&m, group_info, group_info_len);
    if (rc != 0) {
        return rc;
    }
    spk_mls_observer_t *o = NULL;
    if (m.wire_format != SPK_MLS_WIRE_GROUP_INFO) {
        rc = SPK_EINVAL;
    } else if ((o = calloc(1, sizeof(*o))) == NULL) {
        rc = SPK_ENOMEM;
    }
    if (rc == 0) {
        rc = ratchet_tree != NULL ? spk_mls_tree_decode(&o->tree, ratchet_tree, ratchet_tree_len)
                                  : spk_mls_group_info_tree(&m.u.group_info, NULL, &o->tree);
    }
    rc = rc != 0 ? rc : start_epoch(o, &m.u.group_info);
    spk_mls_message_free(&m);
    if (rc != 0) {
        spk_mls_observer_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* ---- checks shared by proposals and Commits ---- */

int obs_check_key_package(const spk_mls_key_package_t *kp, const spk_mls_extensions_t *ext,
                          uint64_t now)
{
    int rc = spk_mls_key_package_validate(kp, now);
    rc = rc != 0 ? rc : spk_mls_leaf_check_required(&kp->leaf_node, ext);
    return rc == 0 || rc == SPK_ENOMEM ? rc : SPK_EMLSKEYPACKAGE;
}

int obs_check_sender(const spk_mls_observer_t *o, const spk_mls_public_message_t *pm)
{
    const spk_mls_framed_content_t *c = &pm->content;
    const spk_mls_leaf_node_t *ln = c->sender.type == SPK_MLS_SENDER_MEMBER
                                        ? spk_mls_tree_leaf(&o->tree, c->sender.index)
                                        : NULL;
    if (ln == NULL) {
        return SPK_EMLSSENDER;
    }
    int rc =
        spk_mls_framed_content_verify(SPK_MLS_WIRE_PUBLIC, c, o->gc_enc.p, o->gc_enc.n,
                                      &pm->signature, ln->signature_key.p, ln->signature_key.n);
    return rc == 0 || rc == SPK_ENOMEM ? rc : SPK_EMLSSIG;
}

/* ---- proposals ---- */

/* A proposal on its own: what the Commit that covers it will need to hold. */
static int check_proposal(const spk_mls_observer_t *o, const spk_mls_framed_content_t *c,
                          uint64_t now)
{
    const spk_mls_proposal_t *p = &c->proposal;
    const spk_mls_leaf_node_t *cur = spk_mls_tree_leaf(&o->tree, c->sender.index);
    const spk_mls_bytes_t *gid = &o->gc.group_id;
    switch (p->type) {
    case SPK_MLS_PROPOSAL_ADD:
        return obs_check_key_package(&p->u.add, &o->gc.extensions, now);
    case SPK_MLS_PROPOSAL_REMOVE:
        return spk_mls_tree_leaf(&o->tree, p->u.remove) != NULL ? 0 : SPK_EMLSPROPOSAL;
    case SPK_MLS_PROPOSAL_UPDATE:
        if (spk_mls_bytes_eq(&cur->encryption_key, &p->u.update.encryption_key) ||
            spk_mls_leaf_node_validate(&p->u.update, SPK_MLS_LEAF_SRC_UPDATE, gid->p, gid->n,
                                       c->sender.index, 0) != 0 ||
            spk_mls_leaf_check_required(&p->u.update, &o->gc.extensions) != 0) {
            return SPK_EMLSPROPOSAL;
        }
        return 0;
    case SPK_MLS_PROPOSAL_PSK:
    case SPK_MLS_PROPOSAL_GCE:
        return 0; /* checked against the whole list when committed */
    default:
        return SPK_EMLSPROPOSAL; /* ReInit, ExternalInit: not used by spreekkamer */
    }
}

/* ---- processing ---- */

static int process_public(spk_mls_observer_t *o, const spk_mls_public_message_t *pm, uint64_t now,
                          bool apply, spk_mls_observed_t *out)
{
    const spk_mls_framed_content_t *c = &pm->content;
    if (!spk_mls_bytes_eq(&c->group_id, &o->gc.group_id)) {
        return SPK_EMLSGROUP;
    }
    if (c->epoch != o->gc.epoch) {
        return c->epoch < o->gc.epoch ? SPK_EMLSSTALE : SPK_EMLSEPOCH;
    }
    if (c->content_type == SPK_MLS_CONTENT_APPLICATION) {
        return SPK_EINVAL; /* application data is never a PublicMessage (§6.2) */
    }
    int rc = obs_check_sender(o, pm);
    if (rc != 0) {
        return rc;
    }
    if (c->content_type == SPK_MLS_CONTENT_COMMIT) {
        return obs_commit(o, pm, now, apply, out);
    }
    rc = check_proposal(o, c, now);
    rc = rc != 0 ? rc
                 : spk_mls_proposal_cache_add(&o->proposals, &o->n_proposals, SPK_MLS_WIRE_PUBLIC,
                                              c, &pm->signature);
    if (rc == 0 && out != NULL) {
        out->type = SPK_MLS_EVENT_PROPOSAL;
        out->epoch = o->gc.epoch;
        mls_api_proposal_info(&o->tree, &o->proposals[o->n_proposals - 1], &out->proposal);
    }
    return rc;
}

static int handle(spk_mls_observer_t *o, const uint8_t *msg, size_t msg_len, uint64_t now,
                  bool apply, spk_mls_observed_t *out)
{
    spk_mls_message_t m;
    spk_mls_observed_t res;
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    int rc = mls_api_decode(&m, msg, msg_len);
    if (rc != 0) {
        return rc;
    }
    memset(&res, 0, sizeof(res));
    rc = m.wire_format == SPK_MLS_WIRE_PUBLIC ? 0 : SPK_EINVAL;
    rc = rc != 0 ? rc : process_public(o, &m.u.pub, now, apply, &res);
    if (rc == 0 && out != NULL) {
        const spk_mls_framed_content_t *c = &m.u.pub.content;
        const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(&o->tree, c->sender.index);
        *out = res;
        out->sender = c->sender.index;
        if (ln != NULL) {
            out->sender_identity = ln->credential.identity.p;
            out->sender_identity_len = ln->credential.identity.n;
        }
        if (res.type == SPK_MLS_EVENT_PROPOSAL) {
            obs_last_clear(o);
        }
        /* Kept in o until the next call; a copy failure only loses the report. */
        if (spk_mls_bytes_copy(&o->last_ad, &c->authenticated_data) == 0) {
            out->authenticated_data = o->last_ad.p;
            out->authenticated_data_len = o->last_ad.n;
        }
    }
    spk_mls_message_free(&m);
    return rc;
}

int spk_mls_observer_process(spk_mls_observer_t *o, const uint8_t *msg, size_t msg_len,
                             uint64_t now, spk_mls_observed_t *out)
{
    return handle(o, msg, msg_len, now, true, out);
}

int spk_mls_observer_prepare(spk_mls_observer_t *o, const uint8_t *msg, size_t msg_len,
                             uint64_t now, spk_mls_observed_t *out)
{
    return handle(o, msg, msg_len, now, false, out);
}

int spk_mls_observer_accept(spk_mls_observer_t *o)
{
    if (!o->has_pending) {
        return SPK_ESTATE;
    }
    obs_install(o, &o->pending);
    o->has_pending = false;
    return 0;
}

void spk_mls_observer_discard(spk_mls_observer_t *o)
{
    obs_next_free(&o->pending);
    o->has_pending = false;
}

int spk_mls_observer_proposal_refuse(spk_mls_observer_t *o, const uint8_t ref[SPK_MLS_REF_LEN])
{
    return spk_mls_proposal_cache_drop(o->proposals, &o->n_proposals, ref);
}

/* ---- accessors ---- */

uint64_t spk_mls_observer_epoch(const spk_mls_observer_t *o)
{
    return o->gc.epoch;
}

const uint8_t *spk_mls_observer_group_id(const spk_mls_observer_t *o, size_t *len)
{
    *len = o->gc.group_id.n;
    return o->gc.group_id.p;
}

void spk_mls_observer_tree_hash(const spk_mls_observer_t *o, uint8_t out[32])
{
    memset(out, 0, 32);
    if (o->gc.tree_hash.n == 32) {
        memcpy(out, o->gc.tree_hash.p, 32);
    }
}

uint32_t spk_mls_observer_leaf_count(const spk_mls_observer_t *o)
{
    return o->tree.n_leaves;
}

bool spk_mls_observer_is_member(const spk_mls_observer_t *o, uint32_t leaf)
{
    return spk_mls_tree_leaf(&o->tree, leaf) != NULL;
}

int spk_mls_observer_member_identity(const spk_mls_observer_t *o, uint32_t leaf,
                                     const uint8_t **identity, size_t *len)
{
    const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(&o->tree, leaf);
    if (ln == NULL) {
        return SPK_ENOTFOUND;
    }
    *identity = ln->credential.identity.p;
    *len = ln->credential.identity.n;
    return 0;
}

int spk_mls_observer_ratchet_tree(const spk_mls_observer_t *o, spk_mls_buf_t *out)
{
    spk_mls_bytes_t b = {NULL, 0};
    mls_api_buf_clear(out);
    int rc = spk_mls_tree_encode(&o->tree, &b);
    if (rc == 0) {
        mls_api_buf_take(out, &b);
    }
    return rc;
}

int spk_mls_observer_group_context(const spk_mls_observer_t *o, spk_mls_buf_t *out)
{
    spk_mls_bytes_t b = {NULL, 0};
    mls_api_buf_clear(out);
    int rc = spk_mls_bytes_copy(&b, &o->gc_enc);
    if (rc == 0) {
        mls_api_buf_take(out, &b);
    }
    return rc;
}

size_t spk_mls_observer_proposal_count(const spk_mls_observer_t *o)
{
    return o->n_proposals;
}

int spk_mls_observer_proposal_get(const spk_mls_observer_t *o, size_t i,
                                  spk_mls_proposal_info_t *out)
{
    if (i >= o->n_proposals) {
        return SPK_ENOTFOUND;
    }
    mls_api_proposal_info(&o->tree, &o->proposals[i], out);
    return 0;
}
