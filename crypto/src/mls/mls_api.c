/* Public MLS API (spk/mls.h): a thin layer over the group state machine (mls/group.h) that
 * works on MLSMessage bytes, keeps the pending Commit and the KeyPackage secrets. */
#include "spk/mls.h"

#include "mls/group.h"
#include "mls/keysched.h"
#include "mls/mls_api_int.h"
#include "mls/secrettree.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(SPK_MLS_MAX_FORWARD == SPK_MLS_RATCHET_MAX_FORWARD &&
                   SPK_MLS_MAX_SKIPPED == SPK_MLS_RATCHET_MAX_SKIPPED,
               "the out-of-order window in spk/mls.h must match the secret tree");

#define KP_SECRET_MAGIC 0x534d4b50u /* "SMKP" */
#define KP_SECRET_VERSION 1
#define KP_LIFETIME_BEFORE 3600u
#define KP_LIFETIME_AFTER (90u * 24u * 3600u)

void spk_mls_buf_free(spk_mls_buf_t *b)
{
    if (b == NULL) {
        return;
    }
    spk_mls_bytes_t t = {b->p, b->n};
    spk_mls_bytes_free(&t);
    b->p = NULL;
    b->n = 0;
}

void mls_api_buf_take(spk_mls_buf_t *dst, spk_mls_bytes_t *src)
{
    dst->p = src->p;
    dst->n = src->n;
    src->p = NULL;
    src->n = 0;
}

void mls_api_buf_clear(spk_mls_buf_t *b)
{
    if (b != NULL) {
        b->p = NULL;
        b->n = 0;
    }
}

/* ---- KeyPackages ---- */

typedef struct {
    spk_mls_message_t kpm; /* MLSMessage(KeyPackage) */
    uint8_t sig[SPK_MLS_SIG_PRIV_LEN];
    uint8_t enc[SPK_MLS_KEM_PRIV_LEN];
    uint8_t init[SPK_MLS_KEM_PRIV_LEN];
} kp_secret_t;

static void kp_secret_free(kp_secret_t *s)
{
    spk_mls_message_free(&s->kpm);
    spk_wipe(s, sizeof(*s));
}

static uint16_t *one_u16(uint16_t v)
{
    uint16_t *p = malloc(sizeof(uint16_t));
    if (p != NULL) {
        *p = v;
    }
    return p;
}

/* The KeyPackage's LeafNode for fresh keys in s. */
static int make_leaf(spk_mls_leaf_node_t *ln, kp_secret_t *s, const uint8_t *id, size_t id_len)
{
    uint8_t sp[SPK_MLS_SIG_PUB_LEN];
    uint8_t ep[SPK_MLS_KEM_PUB_LEN];
    uint64_t now = spk_now_s();
    int rc = spk_mls_ed25519_keygen(s->sig, sp);
    rc = rc != 0 ? rc : spk_mls_x25519_keygen(s->enc, ep);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&ln->encryption_key, ep, sizeof(ep));
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&ln->signature_key, sp, sizeof(sp));
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&ln->credential.identity, id, id_len);
    if (rc != 0) {
        return rc;
    }
    ln->credential.type = SPK_MLS_CRED_BASIC;
    ln->capabilities.versions = (spk_mls_u16_list_t){one_u16(SPK_MLS_VERSION_10), 1};
    ln->capabilities.cipher_suites = (spk_mls_u16_list_t){one_u16(SPK_MLS_CIPHER_SUITE), 1};
    ln->capabilities.credentials = (spk_mls_u16_list_t){one_u16(SPK_MLS_CRED_BASIC), 1};
    if (ln->capabilities.versions.v == NULL || ln->capabilities.cipher_suites.v == NULL ||
        ln->capabilities.credentials.v == NULL) {
        return SPK_ENOMEM;
    }
    ln->source = SPK_MLS_LEAF_SRC_KEY_PACKAGE;
    ln->lifetime.not_before = now > KP_LIFETIME_BEFORE ? now - KP_LIFETIME_BEFORE : 0;
    ln->lifetime.not_after = now + KP_LIFETIME_AFTER;
    return spk_mls_leaf_node_sign(ln, s->sig, NULL, 0, 0);
}

static int kp_secret_encode(const spk_mls_bytes_t *kp, const kp_secret_t *s, spk_mls_bytes_t *out)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    spk_mls_write_u32(&w, KP_SECRET_MAGIC);
    spk_mls_write_u16(&w, KP_SECRET_VERSION);
    spk_mls_write_opaque_v(&w, kp->p, kp->n);
    spk_mls_write_bytes(&w, s->sig, sizeof(s->sig));
    spk_mls_write_bytes(&w, s->enc, sizeof(s->enc));
    spk_mls_write_bytes(&w, s->init, sizeof(s->init));
    return spk_mls_writer_take(&w, out);
}

/* Decodes a KeyPackage secret; the private keys must match the KeyPackage's public keys. */
static int kp_secret_decode(kp_secret_t *s, const uint8_t *p, size_t n)
{
    spk_mls_reader_t r;
    uint32_t magic = 0;
    uint16_t version = 0;
    const uint8_t *kp = NULL;
    size_t kp_len = 0;
    uint8_t pub[SPK_MLS_KEM_PUB_LEN];
    memset(s, 0, sizeof(*s));
    spk_mls_reader_init(&r, p, n);
    spk_mls_read_u32(&r, &magic);
    spk_mls_read_u16(&r, &version);
    spk_mls_read_opaque_v(&r, &kp, &kp_len);
    spk_mls_read_copy(&r, s->sig, sizeof(s->sig));
    spk_mls_read_copy(&r, s->enc, sizeof(s->enc));
    spk_mls_read_copy(&r, s->init, sizeof(s->init));
    int rc = spk_mls_reader_done(&r);
    if (rc == 0 && (magic != KP_SECRET_MAGIC || version != KP_SECRET_VERSION)) {
        rc = SPK_EDECODE;
    }
    rc = rc != 0 ? rc : spk_mls_message_decode(&s->kpm, kp, kp_len);
    if (rc == 0 && s->kpm.wire_format != SPK_MLS_WIRE_KEY_PACKAGE) {
        rc = SPK_EDECODE;
    }
    const spk_mls_key_package_t *k = &s->kpm.u.key_package;
    rc = rc != 0 ? rc : spk_mls_x25519_pub(s->init, pub);
    if (rc == 0 && !spk_mls_bytes_eq_raw(&k->init_key, pub, sizeof(pub))) {
        rc = SPK_EVERIFY;
    }
    rc = rc != 0 ? rc : spk_mls_x25519_pub(s->enc, pub);
    if (rc == 0 && !spk_mls_bytes_eq_raw(&k->leaf_node.encryption_key, pub, sizeof(pub))) {
        rc = SPK_EVERIFY;
    }
    rc = rc != 0 ? rc : spk_mls_ed25519_pub(s->sig, pub);
    if (rc == 0 && !spk_mls_bytes_eq_raw(&k->leaf_node.signature_key, pub, sizeof(pub))) {
        rc = SPK_EVERIFY;
    }
    spk_wipe(pub, sizeof(pub));
    if (rc != 0) {
        kp_secret_free(s);
    }
    return rc;
}

int spk_mls_key_package_create(const uint8_t *identity, size_t identity_len,
                               spk_mls_buf_t *key_package, spk_mls_buf_t *secret)
{
    kp_secret_t s;
    uint8_t ip[SPK_MLS_KEM_PUB_LEN];
    spk_mls_bytes_t enc = {NULL, 0};
    spk_mls_bytes_t sec = {NULL, 0};
    mls_api_buf_clear(key_package);
    mls_api_buf_clear(secret);
    if (identity_len > SPK_MLS_MAX_IDENTITY || (identity == NULL && identity_len > 0)) {
        return SPK_EINVAL;
    }
    memset(&s, 0, sizeof(s));
    s.kpm.version = SPK_MLS_VERSION_10;
    s.kpm.wire_format = SPK_MLS_WIRE_KEY_PACKAGE;
    spk_mls_key_package_t *kp = &s.kpm.u.key_package;
    kp->version = SPK_MLS_VERSION_10;
    kp->cipher_suite = SPK_MLS_CIPHER_SUITE;
    int rc = make_leaf(&kp->leaf_node, &s, identity, identity_len);
    rc = rc != 0 ? rc : spk_mls_x25519_keygen(s.init, ip);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(&kp->init_key, ip, sizeof(ip));
    rc = rc != 0 ? rc : spk_mls_key_package_sign(kp, s.sig);
    rc = rc != 0 ? rc : spk_mls_message_encode(&s.kpm, &enc);
    rc = rc != 0 ? rc : kp_secret_encode(&enc, &s, &sec);
    kp_secret_free(&s);
    if (rc != 0) {
        spk_mls_bytes_free(&enc);
        return rc;
    }
    mls_api_buf_take(key_package, &enc);
    mls_api_buf_take(secret, &sec);
    return 0;
}

/* Decodes an MLSMessage(KeyPackage) into m and validates it at now. */
static int kp_decode(spk_mls_message_t *m, const uint8_t *p, size_t n, uint64_t now)
{
    if (p == NULL || n > SPK_MLS_MAX_MESSAGE) {
        memset(m, 0, sizeof(*m));
        return p == NULL ? SPK_EINVAL : SPK_ETOOBIG;
    }
    int rc = spk_mls_message_decode(m, p, n);
    if (rc != 0) {
        return rc;
    }
    rc = m->wire_format == SPK_MLS_WIRE_KEY_PACKAGE ? 0 : SPK_EDECODE;
    rc = rc != 0 ? rc : spk_mls_key_package_validate(&m->u.key_package, now);
    if (rc != 0) {
        spk_mls_message_free(m);
    }
    return rc;
}

int spk_mls_key_package_check(const uint8_t *kp, size_t kp_len, uint64_t now,
                              spk_mls_buf_t *identity)
{
    spk_mls_message_t m;
    spk_mls_bytes_t id = {NULL, 0};
    mls_api_buf_clear(identity);
    int rc = kp_decode(&m, kp, kp_len, now);
    if (rc != 0) {
        return rc;
    }
    if (identity != NULL) {
        rc = spk_mls_bytes_copy(&id, &m.u.key_package.leaf_node.credential.identity);
        if (rc == 0) {
            mls_api_buf_take(identity, &id);
        }
    }
    spk_mls_message_free(&m);
    return rc;
}

/* ---- creating and joining ---- */

static spk_mls_t *handle_new(void)
{
    return calloc(1, sizeof(spk_mls_t));
}

int spk_mls_create(spk_mls_t **out, const uint8_t *group_id, size_t group_id_len,
                   const uint8_t *kp_secret, size_t kp_secret_len)
{
    kp_secret_t s;
    *out = NULL;
    if (group_id == NULL || group_id_len == 0 || group_id_len > SPK_MLS_MAX_IDENTITY) {
        return SPK_EINVAL;
    }
    int rc = kp_secret_decode(&s, kp_secret, kp_secret_len);
    if (rc != 0) {
        return rc;
    }
    spk_mls_t *g = handle_new();
    rc = g != NULL ? 0 : SPK_ENOMEM;
    rc = rc != 0 ? rc
                 : spk_mls_group_create(&g->g, group_id, group_id_len,
                                        &s.kpm.u.key_package.leaf_node, s.enc, s.sig, NULL);
    kp_secret_free(&s);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int spk_mls_join(spk_mls_t **out, const uint8_t *kp_secret, size_t kp_secret_len,
                 const uint8_t *welcome, size_t welcome_len, const uint8_t *ratchet_tree,
                 size_t ratchet_tree_len)
{
    kp_secret_t s;
    spk_mls_message_t wm;
    spk_mls_tree_t tree;
    *out = NULL;
    memset(&wm, 0, sizeof(wm));
    memset(&tree, 0, sizeof(tree));
    if (welcome == NULL) {
        return SPK_EINVAL;
    }
    if (welcome_len > SPK_MLS_MAX_MESSAGE || ratchet_tree_len > SPK_MLS_MAX_MESSAGE) {
        return SPK_ETOOBIG;
    }
    int rc = kp_secret_decode(&s, kp_secret, kp_secret_len);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_message_decode(&wm, welcome, welcome_len);
    if (rc == 0 && wm.wire_format != SPK_MLS_WIRE_WELCOME) {
        rc = SPK_EINVAL;
    }
    if (rc == 0 && ratchet_tree != NULL) {
        rc = spk_mls_tree_decode(&tree, ratchet_tree, ratchet_tree_len);
    }
    spk_mls_t *g = rc == 0 ? handle_new() : NULL;
    if (rc == 0 && g == NULL) {
        rc = SPK_ENOMEM;
    }
    rc = rc != 0 ? rc
                 : spk_mls_group_join(&g->g, &wm.u.welcome, &s.kpm.u.key_package, s.init, s.enc,
                                      s.sig, ratchet_tree != NULL ? &tree : NULL, NULL);
    kp_secret_free(&s);
    spk_mls_message_free(&wm);
    spk_mls_tree_free(&tree);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void mls_api_pending_drop(spk_mls_t *g)
{
    if (g->has_pending) {
        spk_mls_group_commit_out_free(&g->pending);
        g->has_pending = false;
    }
    spk_mls_bytes_free(&g->pending_ad);
}

void mls_api_last_clear(spk_mls_t *g)
{
    spk_mls_group_report_free(&g->last);
    free(g->last_members);
    g->last_members = NULL;
}

void spk_mls_free(spk_mls_t *g)
{
    if (g == NULL) {
        return;
    }
    mls_api_pending_drop(g);
    mls_api_last_clear(g);
    spk_mls_group_free(&g->g);
    spk_wipe(g, sizeof(*g));
    free(g);
}

/* ---- proposals ---- */

static int propose(spk_mls_t *g, const spk_mls_proposal_t *p, spk_mls_buf_t *msg)
{
    spk_mls_bytes_t out = {NULL, 0};
    int rc = spk_mls_group_propose(&g->g, p, &out);
    if (rc == 0) {
        mls_api_buf_take(msg, &out);
    }
    return rc;
}

int spk_mls_propose_add(spk_mls_t *g, const uint8_t *kp, size_t kp_len, spk_mls_buf_t *msg)
{
    spk_mls_proposal_t p;
    spk_mls_message_t m;
    mls_api_buf_clear(msg);
    if (g->g.removed) {
        return SPK_ESTATE;
    }
    int rc = kp_decode(&m, kp, kp_len, spk_now_s());
    if (rc != 0) {
        return rc;
    }
    memset(&p, 0, sizeof(p));
    p.type = SPK_MLS_PROPOSAL_ADD;
    p.u.add = m.u.key_package; /* borrowed for the call */
    rc = propose(g, &p, msg);
    spk_mls_message_free(&m);
    return rc;
}

static bool has_other_member(const spk_mls_group_t *g)
{
    for (uint32_t l = 0; l < g->tree.n_leaves; l++) {
        if (l != g->own_leaf && spk_mls_tree_leaf(&g->tree, l) != NULL) {
            return true;
        }
    }
    return false;
}

int spk_mls_propose_remove(spk_mls_t *g, uint32_t leaf, spk_mls_buf_t *msg)
{
    spk_mls_proposal_t p;
    mls_api_buf_clear(msg);
    if (g->g.removed) {
        return SPK_ESTATE;
    }
    if (spk_mls_tree_leaf(&g->g.tree, leaf) == NULL) {
        return SPK_ENOTFOUND;
    }
    if (leaf == g->g.own_leaf && !has_other_member(&g->g)) {
        return SPK_ESTATE; /* nobody could commit the self-remove */
    }
    memset(&p, 0, sizeof(p));
    p.type = SPK_MLS_PROPOSAL_REMOVE;
    p.u.remove = leaf;
    return propose(g, &p, msg);
}

int spk_mls_leave(spk_mls_t *g, spk_mls_buf_t *msg)
{
    return spk_mls_propose_remove(g, g->g.own_leaf, msg);
}

int spk_mls_propose_update(spk_mls_t *g, spk_mls_buf_t *msg)
{
    spk_mls_bytes_t out = {NULL, 0};
    mls_api_buf_clear(msg);
    if (g->g.removed) {
        return SPK_ESTATE;
    }
    int rc = spk_mls_group_propose_update(&g->g, &out);
    if (rc == 0) {
        mls_api_buf_take(msg, &out);
    }
    return rc;
}

/* ---- commits ---- */

/* Inline proposals of opts: Removes, then Adds (decoded into msgs). */
static int commit_props(const spk_mls_t *g, const spk_mls_commit_opts_t *o,
                        spk_mls_proposal_t *props, spk_mls_message_t *msgs)
{
    size_t k = 0;
    uint64_t now = spk_now_s();
    for (size_t i = 0; i < o->n_remove; i++) {
        if (o->remove[i] == g->g.own_leaf) {
            return SPK_EINVAL;
        }
        props[k].type = SPK_MLS_PROPOSAL_REMOVE;
        props[k++].u.remove = o->remove[i];
    }
    for (size_t i = 0; i < o->n_add; i++) {
        int rc = kp_decode(&msgs[i], o->add[i], o->add_len[i], now);
        if (rc != 0) {
            return rc;
        }
        props[k].type = SPK_MLS_PROPOSAL_ADD;
        props[k++].u.add = msgs[i].u.key_package; /* borrowed from msgs[i] */
    }
    return 0;
}

int spk_mls_commit(spk_mls_t *g, const spk_mls_commit_opts_t *opts, spk_mls_buf_t *commit,
                   spk_mls_buf_t *welcome)
{
    return spk_mls_commit_ad(g, opts, NULL, 0, commit, welcome);
}

int spk_mls_commit_ad(spk_mls_t *g, const spk_mls_commit_opts_t *opts, const uint8_t *ad_p,
                      size_t ad_len, spk_mls_buf_t *commit, spk_mls_buf_t *welcome)
{
    static const spk_mls_commit_opts_t none = {NULL, NULL, 0, NULL, 0, 0};
    const spk_mls_commit_opts_t *o = opts != NULL ? opts : &none;
    spk_mls_commit_out_t out;
    mls_api_buf_clear(commit);
    mls_api_buf_clear(welcome);
    if (g->g.removed) {
        return SPK_ESTATE;
    }
    if ((o->n_add > 0 && (welcome == NULL || o->add == NULL || o->add_len == NULL)) ||
        (o->n_remove > 0 && o->remove == NULL) || o->n_add > SPK_MLS_GROUP_MAX_PROPOSALS ||
        o->n_remove > SPK_MLS_GROUP_MAX_PROPOSALS || (ad_p == NULL && ad_len > 0) ||
        ad_len > SPK_MLS_MAX_AUTHENTICATED_DATA) {
        return SPK_EINVAL;
    }
    spk_mls_bytes_t ad = {(uint8_t *)ad_p, ad_len};
    spk_mls_bytes_t ad_copy = {NULL, 0};
    size_t n = o->n_add + o->n_remove;
    spk_mls_proposal_t *props = calloc(n + 1, sizeof(*props));
    spk_mls_message_t *msgs = calloc(o->n_add + 1, sizeof(*msgs));
    int rc = props != NULL && msgs != NULL ? 0 : SPK_ENOMEM;
    rc = rc != 0 ? rc : commit_props(g, o, props, msgs);
    unsigned flags =
        ((o->flags & SPK_MLS_COMMIT_PRIVATE) != 0 ? SPK_MLS_GROUP_COMMIT_PRIVATE : 0) |
        ((o->flags & SPK_MLS_COMMIT_TREE_OUT_OF_BAND) != 0 ? SPK_MLS_GROUP_COMMIT_NO_TREE : 0);
    rc = rc != 0 ? rc : spk_mls_bytes_copy(&ad_copy, &ad);
    rc = rc != 0 ? rc : spk_mls_group_commit_ex(&g->g, props, n, true, NULL, flags, &ad, &out);
    for (size_t i = 0; msgs != NULL && i < o->n_add; i++) {
        spk_mls_message_free(&msgs[i]);
    }
    free(msgs);
    free(props);
    if (rc != 0) {
        spk_mls_bytes_free(&ad_copy);
        return rc;
    }
    mls_api_pending_drop(g);
    mls_api_buf_take(commit, &out.commit);
    if (welcome != NULL) {
        mls_api_buf_take(welcome, &out.welcome);
    }
    g->pending = out;
    g->has_pending = true;
    g->pending_ad = ad_copy;
    return 0;
}

void spk_mls_commit_discard(spk_mls_t *g)
{
    mls_api_pending_drop(g);
}

/* ---- messages ---- */

int spk_mls_encrypt(spk_mls_t *g, const uint8_t *pt, size_t pt_len, size_t padding,
                    spk_mls_buf_t *msg)
{
    return spk_mls_encrypt_ad(g, NULL, 0, pt, pt_len, padding, msg);
}

int spk_mls_encrypt_ad(spk_mls_t *g, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                       size_t pt_len, size_t padding, spk_mls_buf_t *msg)
{
    spk_mls_bytes_t out = {NULL, 0};
    spk_mls_bytes_t a = {(uint8_t *)ad, ad_len};
    mls_api_buf_clear(msg);
    if (g->g.removed) {
        return SPK_ESTATE;
    }
    if ((pt == NULL && pt_len > 0) || pt_len > SPK_MLS_MAX_MESSAGE ||
        padding > SPK_MLS_MAX_MESSAGE || (ad == NULL && ad_len > 0) ||
        ad_len > SPK_MLS_MAX_AUTHENTICATED_DATA) {
        return SPK_EINVAL;
    }
    int rc = spk_mls_group_send_ad(&g->g, &a, pt, pt_len, padding, &out);
    if (rc == 0) {
        mls_api_buf_take(msg, &out);
    }
    return rc;
}

/* ---- epoch information ---- */

uint64_t spk_mls_epoch(const spk_mls_t *g)
{
    return g->g.gc.epoch;
}

uint32_t spk_mls_own_leaf(const spk_mls_t *g)
{
    return g->g.own_leaf;
}

const uint8_t *spk_mls_group_id(const spk_mls_t *g, size_t *len)
{
    *len = g->g.gc.group_id.n;
    return g->g.gc.group_id.p;
}

uint32_t spk_mls_leaf_count(const spk_mls_t *g)
{
    return g->g.tree.n_leaves;
}

bool spk_mls_is_member(const spk_mls_t *g, uint32_t leaf)
{
    return spk_mls_tree_leaf(&g->g.tree, leaf) != NULL;
}

int spk_mls_member_identity(const spk_mls_t *g, uint32_t leaf, const uint8_t **identity,
                            size_t *len)
{
    const spk_mls_leaf_node_t *ln = spk_mls_tree_leaf(&g->g.tree, leaf);
    if (ln == NULL) {
        return SPK_ENOTFOUND;
    }
    *identity = ln->credential.identity.p;
    *len = ln->credential.identity.n;
    return 0;
}

int spk_mls_epoch_authenticator(const spk_mls_t *g, uint8_t out[SPK_MLS_EPOCH_AUTHENTICATOR_LEN])
{
    memcpy(out, g->g.secrets.epoch_authenticator, SPK_MLS_EPOCH_AUTHENTICATOR_LEN);
    return 0;
}

int spk_mls_export_secret(const spk_mls_t *g, const char *label, const uint8_t *context,
                          size_t context_len, uint8_t *out, size_t out_len)
{
    if (label == NULL || out == NULL || out_len == 0 || out_len > SPK_MLS_HKDF_MAX_OUT ||
        (context == NULL && context_len > 0)) {
        return SPK_EINVAL;
    }
    return spk_mls_exporter(g->g.secrets.exporter_secret, (const uint8_t *)label, strlen(label),
                            context, context_len, out, out_len);
}

int spk_mls_ratchet_tree(const spk_mls_t *g, spk_mls_buf_t *out)
{
    spk_mls_bytes_t b = {NULL, 0};
    mls_api_buf_clear(out);
    int rc = spk_mls_tree_encode(&g->g.tree, &b);
    if (rc == 0) {
        mls_api_buf_take(out, &b);
    }
    return rc;
}

/* ---- state persistence ---- */

int spk_mls_save(const spk_mls_t *g, spk_mls_buf_t *out)
{
    spk_mls_bytes_t b = {NULL, 0};
    mls_api_buf_clear(out);
    int rc = spk_mls_group_save(&g->g, &b);
    if (rc == 0) {
        mls_api_buf_take(out, &b);
    }
    return rc;
}

int spk_mls_restore(spk_mls_t **out, const uint8_t *blob, size_t blob_len)
{
    *out = NULL;
    if (blob == NULL) {
        return SPK_EINVAL;
    }
    spk_mls_t *g = handle_new();
    if (g == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_mls_group_restore(&g->g, blob, blob_len);
    if (rc != 0) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}
