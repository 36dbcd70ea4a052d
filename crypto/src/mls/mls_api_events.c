/* Public MLS API (spk/mls.h): handling messages and reporting them as events (sender,
 * authenticated data, who joined and left), merging an own Commit, and the pending proposals
 * an application may inspect and refuse. */
#include "spk/mls.h"

#include "mls/group.h"
#include "mls/group_int.h"
#include "mls/mls_api_int.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

_Static_assert((int)SPK_MLS_MSG_PUBLIC == (int)SPK_MLS_WIRE_PUBLIC &&
                   (int)SPK_MLS_MSG_KEY_PACKAGE == (int)SPK_MLS_WIRE_KEY_PACKAGE &&
                   (int)SPK_MLS_KIND_APPLICATION == (int)SPK_MLS_CONTENT_APPLICATION &&
                   (int)SPK_MLS_KIND_COMMIT == (int)SPK_MLS_CONTENT_COMMIT &&
                   (int)SPK_MLS_PROP_ADD == (int)SPK_MLS_PROPOSAL_ADD &&
                   (int)SPK_MLS_PROP_GROUP_CONTEXT_EXTENSIONS == (int)SPK_MLS_PROPOSAL_GCE &&
                   SPK_MLS_REF_LEN == SPK_MLS_HASH_LEN,
               "public MLS constants must match the wire values");

/* ---- proposals ---- */

void mls_api_proposal_info(const spk_mls_tree_t *tree, const spk_mls_cached_proposal_t *cp,
                           spk_mls_proposal_info_t *out)
{
    const spk_mls_proposal_t *p = &cp->proposal;
    const spk_mls_leaf_node_t *ln = NULL;
    memset(out, 0, sizeof(*out));
    memcpy(out->ref, cp->ref, sizeof(out->ref));
    out->type = p->type;
    out->sender = cp->sender_type == SPK_MLS_SENDER_MEMBER ? cp->sender : SPK_MLS_NO_LEAF;
    out->leaf = SPK_MLS_NO_LEAF;
    switch (p->type) {
    case SPK_MLS_PROPOSAL_ADD:
        ln = &p->u.add.leaf_node;
        if (mls_kp_ref(&p->u.add, out->key_package_ref) != 0) {
            memset(out->key_package_ref, 0, sizeof(out->key_package_ref));
        }
        break;
    case SPK_MLS_PROPOSAL_REMOVE:
        out->leaf = p->u.remove;
        ln = spk_mls_tree_leaf(tree, p->u.remove);
        break;
    case SPK_MLS_PROPOSAL_UPDATE:
        out->leaf = out->sender;
        ln = &p->u.update;
        break;
    default:
        break;
    }
    if (ln != NULL) {
        out->identity = ln->credential.identity.p;
        out->identity_len = ln->credential.identity.n;
    }
}

size_t spk_mls_proposal_count(const spk_mls_t *g)
{
    return g->g.n_proposals;
}

int spk_mls_proposal_get(const spk_mls_t *g, size_t i, spk_mls_proposal_info_t *out)
{
    if (i >= g->g.n_proposals) {
        return SPK_ENOTFOUND;
    }
    mls_api_proposal_info(&g->g.tree, &g->g.proposals[i], out);
    return 0;
}

int spk_mls_proposal_refuse(spk_mls_t *g, const uint8_t ref[SPK_MLS_REF_LEN])
{
    return spk_mls_proposal_cache_drop(g->g.proposals, &g->g.n_proposals, ref);
}

/* ---- events ---- */

int mls_api_members(const spk_mls_changes_t *c, spk_mls_member_t **out)
{
    size_t n = c->n_joined + c->n_left;
    *out = calloc(n + 1, sizeof(spk_mls_member_t));
    if (*out == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const spk_mls_change_t *ch = i < c->n_joined ? &c->joined[i] : &c->left[i - c->n_joined];
        spk_mls_member_t *m = &(*out)[i];
        m->leaf = ch->leaf;
        m->identity = ch->identity.p;
        m->identity_len = ch->identity.n;
        memcpy(m->key_package_ref, ch->key_package_ref, sizeof(m->key_package_ref));
    }
    return 0;
}

/* Points ev at g->last (sender, authenticated data, joined and left). */
static int event_fill(spk_mls_t *g, spk_mls_event_info_t *ev, uint64_t epoch)
{
    spk_mls_group_report_t *r = &g->last;
    const spk_mls_changes_t *c = &r->changes;
    const spk_mls_leaf_node_t *ln = NULL;
    ev->epoch = epoch;
    ev->sender = SPK_MLS_NO_LEAF;
    if (r->sender_type == SPK_MLS_SENDER_MEMBER) {
        ev->sender = r->sender;
        ln = spk_mls_tree_leaf(&g->g.tree, r->sender);
    }
    if (ln != NULL) {
        ev->sender_identity = ln->credential.identity.p;
        ev->sender_identity_len = ln->credential.identity.n;
    }
    ev->authenticated_data = r->authenticated_data.p;
    ev->authenticated_data_len = r->authenticated_data.n;
    if (c->n_joined + c->n_left == 0) {
        return 0;
    }
    int rc = mls_api_members(c, &g->last_members);
    if (rc != 0) {
        return rc;
    }
    ev->joined = g->last_members;
    ev->n_joined = c->n_joined;
    ev->left = g->last_members + c->n_joined;
    ev->n_left = c->n_left;
    return 0;
}

int spk_mls_process(spk_mls_t *g, const uint8_t *msg, size_t msg_len, spk_mls_event_t *ev)
{
    return spk_mls_process_info(g, msg, msg_len, ev, NULL);
}

int spk_mls_process_info(spk_mls_t *g, const uint8_t *msg, size_t msg_len, spk_mls_event_t *ev,
                         spk_mls_event_info_t *info)
{
    spk_mls_event_info_t scratch;
    spk_mls_event_info_t *in = info != NULL ? info : &scratch;
    spk_mls_message_t m;
    spk_mls_group_event_t gev = 0;
    spk_mls_bytes_t app = {NULL, 0};
    spk_mls_group_report_t rep;
    memset(ev, 0, sizeof(*ev));
    memset(in, 0, sizeof(*in));
    if (g->g.removed && msg != NULL && msg_len <= SPK_MLS_MAX_MESSAGE) {
        return SPK_ESTATE;
    }
    int rc = mls_api_decode(&m, msg, msg_len);
    if (rc != 0) {
        return rc;
    }
    if (m.wire_format != SPK_MLS_WIRE_PUBLIC && m.wire_format != SPK_MLS_WIRE_PRIVATE) {
        rc = SPK_EINVAL;
    }
    uint64_t epoch = g->g.gc.epoch;
    rc = rc != 0 ? rc : spk_mls_group_handle_report(&g->g, &m, NULL, &gev, &app, &rep);
    spk_mls_message_free(&m);
    if (rc != 0) {
        return rc;
    }
    mls_api_last_clear(g);
    g->last = rep;
    switch (gev) {
    case SPK_MLS_GROUP_EV_APPLICATION:
        ev->type = SPK_MLS_EVENT_APPLICATION;
        mls_api_buf_take(&ev->data, &app);
        break;
    case SPK_MLS_GROUP_EV_PROPOSAL:
        ev->type = SPK_MLS_EVENT_PROPOSAL;
        mls_api_proposal_info(&g->g.tree, &g->g.proposals[g->g.n_proposals - 1], &in->proposal);
        break;
    case SPK_MLS_GROUP_EV_REMOVED:
        ev->type = SPK_MLS_EVENT_REMOVED;
        g->g.removed = true;
        mls_api_pending_drop(g);
        break;
    default:
        ev->type = SPK_MLS_EVENT_COMMIT;
        epoch = g->g.gc.epoch;
        mls_api_pending_drop(g);
        break;
    }
    spk_mls_bytes_free(&app);
    if (info == NULL) {
        return 0;
    }
    /* Out of memory here leaves the message handled but info without its lists. */
    return event_fill(g, info, epoch);
}

int spk_mls_commit_merge_info(spk_mls_t *g, spk_mls_event_info_t *info)
{
    if (info != NULL) {
        memset(info, 0, sizeof(*info));
    }
    if (!g->has_pending || g->pending.next.gc.epoch != g->g.gc.epoch + 1) {
        mls_api_pending_drop(g);
        return SPK_ESTATE;
    }
    mls_api_last_clear(g);
    g->last.sender_type = SPK_MLS_SENDER_MEMBER;
    g->last.sender = g->g.own_leaf;
    g->last.authenticated_data = g->pending_ad;
    g->last.changes = g->pending.changes;
    memset(&g->pending_ad, 0, sizeof(g->pending_ad));
    memset(&g->pending.changes, 0, sizeof(g->pending.changes));
    spk_mls_group_merge_commit(&g->g, &g->pending);
    g->has_pending = false;
    memset(&g->pending, 0, sizeof(g->pending));
    return info != NULL ? event_fill(g, info, g->g.gc.epoch) : 0;
}

int spk_mls_commit_merge(spk_mls_t *g)
{
    return spk_mls_commit_merge_info(g, NULL);
}
