/* MLS group state serialisation.
 *
 * Format (TLS presentation language, written with the codec):
 *
 *   uint32 magic = 0x534d4c53 ("SMLS");  uint16 format_version = 1;  uint16 cipher_suite = 1;
 *   Field fields[];    -- until the end of the buffer, in increasing tag order, each exactly once
 *   struct { uint16 tag; opaque body<V>; } Field;
 *
 *   tag  1 group_context   GroupContext (§8.1)
 *   tag  2 ratchet_tree    optional<Node> ratchet_tree<V> (§12.4.3.3)
 *   tag  3 own             uint32 own_leaf; opaque signature_priv[32]; uint8 removed
 *   tag  4 tree_priv       { uint32 node; opaque priv[32]; opaque pub[32]; } keys[]
 *   tag  5 epoch_secrets   12 x opaque[32] (spk_mls_epoch_secrets_t order)
 *   tag  6 interim         opaque[32] interim transcript hash
 *   tag  7 secret_tree     uint32 n_leaves; { uint32 node; opaque secret[32]; } nodes<V>;
 *                          { uint32 index; uint32 next_gen; opaque secret[32];
 *                            { uint32 generation; opaque key[16]; opaque nonce[12]; } skipped<V>;
 *                          } ratchets<V>
 *   tag  8 proposals       { opaque ref[32]; uint8 sender_type; uint32 sender;
 *                            Proposal proposal; } proposals[]
 *   tag  9 resumption      { uint64 epoch; opaque psk[32]; } psks[]
 *   tag 10 own_updates     { uint32 node; opaque priv[32]; opaque pub[32]; } keys[]
 *
 * (x[] : entries repeated to the end of the field body.)
 *
 * A new format version is needed for any change of meaning; a reader rejects other versions,
 * unknown tags, missing or repeated fields and trailing bytes. Restoring re-validates the
 * state: the tree (spk_mls_tree_validate) against the GroupContext's tree hash, the own leaf
 * against the signature key, the private keys against the tree, and every count and index. */
#include "mls/group.h"
#include "mls/group_int.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC 0x534d4c53u
#define STATE_VERSION 1
#define N_EPOCH_SECRETS 12

enum {
    T_GC = 1,
    T_TREE,
    T_OWN,
    T_PRIV,
    T_SECRETS,
    T_INTERIM,
    T_ST,
    T_PROPOSALS,
    T_RESUMPTION,
    T_OWN_UPDATES,
    T_LAST = T_OWN_UPDATES,
};

/* ---- writing ---- */

static void write_keys(spk_mls_writer_t *w, const spk_mls_node_key_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        spk_mls_write_u32(w, k[i].node);
        spk_mls_write_bytes(w, k[i].priv, sizeof(k[i].priv));
        spk_mls_write_bytes(w, k[i].pub, sizeof(k[i].pub));
    }
}

static void write_secret_tree(spk_mls_writer_t *w, const spk_mls_secret_tree_t *st)
{
    size_t mark;
    size_t sub;
    spk_mls_write_u32(w, st->n_leaves);
    spk_mls_write_vec_begin(w, &mark);
    for (uint32_t x = 0; x < st->width; x++) {
        if (st->present[x]) {
            spk_mls_write_u32(w, x);
            spk_mls_write_bytes(w, st->node[x], SPK_MLS_HASH_LEN);
        }
    }
    spk_mls_write_vec_end(w, mark);
    spk_mls_write_vec_begin(w, &mark);
    for (size_t i = 0; i < (size_t)st->n_leaves * 2; i++) {
        const spk_mls_ratchet_t *r = &st->ratchets[i];
        if (!r->ready) {
            continue;
        }
        spk_mls_write_u32(w, (uint32_t)i);
        spk_mls_write_u32(w, r->next_gen);
        spk_mls_write_bytes(w, r->secret, sizeof(r->secret));
        spk_mls_write_vec_begin(w, &sub);
        for (size_t k = 0; k < r->n_skipped; k++) {
            spk_mls_write_u32(w, r->skipped[k].generation);
            spk_mls_write_bytes(w, r->skipped[k].key, SPK_MLS_AEAD_KEY_LEN);
            spk_mls_write_bytes(w, r->skipped[k].nonce, SPK_MLS_AEAD_NONCE_LEN);
        }
        spk_mls_write_vec_end(w, sub);
    }
    spk_mls_write_vec_end(w, mark);
}

void spk_mls_proposals_write(spk_mls_writer_t *w, const spk_mls_cached_proposal_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const spk_mls_cached_proposal_t *cp = &v[i];
        spk_mls_write_bytes(w, cp->ref, sizeof(cp->ref));
        spk_mls_write_u8(w, cp->sender_type);
        spk_mls_write_u32(w, cp->sender);
        spk_mls_proposal_write(w, &cp->proposal);
    }
}

static void write_field(spk_mls_writer_t *w, const spk_mls_group_t *g, int tag)
{
    const spk_mls_epoch_secrets_t *s = &g->secrets;
    const uint8_t *secrets[N_EPOCH_SECRETS] = {
        s->joiner_secret,     s->welcome_secret,  s->epoch_secret,        s->sender_data_secret,
        s->encryption_secret, s->exporter_secret, s->external_secret,     s->confirmation_key,
        s->membership_key,    s->resumption_psk,  s->epoch_authenticator, s->init_secret};
    size_t mark;
    spk_mls_write_u16(w, (uint16_t)tag);
    spk_mls_write_vec_begin(w, &mark);
    switch (tag) {
    case T_GC:
        spk_mls_write_bytes(w, g->gc_enc.p, g->gc_enc.n);
        break;
    case T_TREE:
        spk_mls_tree_write(w, &g->tree);
        break;
    case T_OWN:
        spk_mls_write_u32(w, g->own_leaf);
        spk_mls_write_bytes(w, g->sig_priv, sizeof(g->sig_priv));
        spk_mls_write_u8(w, g->removed ? 1 : 0);
        break;
    case T_PRIV:
        write_keys(w, g->priv.keys, g->priv.n_keys);
        break;
    case T_SECRETS:
        for (size_t i = 0; i < N_EPOCH_SECRETS; i++) {
            spk_mls_write_bytes(w, secrets[i], SPK_MLS_HASH_LEN);
        }
        break;
    case T_INTERIM:
        spk_mls_write_bytes(w, g->interim, sizeof(g->interim));
        break;
    case T_ST:
        write_secret_tree(w, &g->st);
        break;
    case T_PROPOSALS:
        spk_mls_proposals_write(w, g->proposals, g->n_proposals);
        break;
    case T_RESUMPTION:
        for (size_t i = 0; i < g->n_resumption; i++) {
            spk_mls_write_u64(w, g->resumption[i].epoch);
            spk_mls_write_bytes(w, g->resumption[i].psk, SPK_MLS_HASH_LEN);
        }
        break;
    default:
        write_keys(w, g->own_updates, g->n_own_updates);
        break;
    }
    spk_mls_write_vec_end(w, mark);
}

void spk_mls_state_write_header(spk_mls_writer_t *w, uint32_t magic, uint16_t version)
{
    spk_mls_write_u32(w, magic);
    spk_mls_write_u16(w, version);
    spk_mls_write_u16(w, SPK_MLS_CIPHER_SUITE);
}

int spk_mls_group_save(const spk_mls_group_t *g, spk_mls_bytes_t *out)
{
    spk_mls_writer_t w;
    memset(out, 0, sizeof(*out));
    if (g->st.ratchets == NULL || g->tree.n_leaves == 0) {
        return SPK_ESTATE;
    }
    spk_mls_writer_init(&w);
    spk_mls_state_write_header(&w, STATE_MAGIC, STATE_VERSION);
    for (int tag = T_GC; tag <= T_LAST; tag++) {
        write_field(&w, g, tag);
    }
    return spk_mls_writer_take(&w, out);
}

/* ---- reading ---- */

static int read_keys(spk_mls_reader_t *r, spk_mls_node_key_t *keys, size_t max, size_t *n)
{
    *n = 0;
    while (r->err == 0 && spk_mls_reader_remaining(r) > 0) {
        if (*n == max) {
            return spk_mls_reader_fail(r, SPK_ERANGE);
        }
        spk_mls_read_u32(r, &keys[*n].node);
        spk_mls_read_copy(r, keys[*n].priv, SPK_MLS_KEM_PRIV_LEN);
        spk_mls_read_copy(r, keys[*n].pub, SPK_MLS_KEM_PUB_LEN);
        (*n)++;
    }
    return spk_mls_reader_done(r);
}

/* Each stored public key must be the one of its private key. */
static int check_keys(const spk_mls_node_key_t *keys, size_t n)
{
    uint8_t pub[SPK_MLS_KEM_PUB_LEN];
    for (size_t i = 0; i < n; i++) {
        int rc = spk_mls_x25519_pub(keys[i].priv, pub);
        if (rc != 0 || memcmp(pub, keys[i].pub, sizeof(pub)) != 0) {
            return SPK_EVERIFY;
        }
    }
    return 0;
}

static int read_ratchet(spk_mls_reader_t *r, spk_mls_secret_tree_t *st)
{
    uint32_t i = 0;
    spk_mls_reader_t sub;
    spk_mls_read_u32(r, &i);
    if (r->err != 0 || i >= st->n_leaves * 2u || st->ratchets[i].ready) {
        return spk_mls_reader_fail(r, SPK_EDECODE);
    }
    spk_mls_ratchet_t *rt = &st->ratchets[i];
    rt->skipped = calloc(SPK_MLS_RATCHET_MAX_SKIPPED, sizeof(*rt->skipped));
    if (rt->skipped == NULL) {
        return spk_mls_reader_fail(r, SPK_ENOMEM);
    }
    rt->ready = true;
    spk_mls_read_u32(r, &rt->next_gen);
    spk_mls_read_copy(r, rt->secret, sizeof(rt->secret));
    spk_mls_read_sub(r, &sub);
    while (r->err == 0 && sub.err == 0 && spk_mls_reader_remaining(&sub) > 0) {
        spk_mls_ratchet_key_t *k = &rt->skipped[rt->n_skipped];
        if (rt->n_skipped == SPK_MLS_RATCHET_MAX_SKIPPED) {
            return spk_mls_reader_fail(r, SPK_ERANGE);
        }
        spk_mls_read_u32(&sub, &k->generation);
        spk_mls_read_copy(&sub, k->key, sizeof(k->key));
        spk_mls_read_copy(&sub, k->nonce, sizeof(k->nonce));
        if (sub.err == 0 && k->generation >= rt->next_gen) {
            spk_mls_reader_fail(&sub, SPK_EDECODE);
        }
        rt->n_skipped++;
    }
    if (spk_mls_reader_done(&sub) != 0) {
        return spk_mls_reader_fail(r, spk_mls_reader_done(&sub));
    }
    return r->err;
}

static int read_secret_tree(spk_mls_reader_t *r, spk_mls_secret_tree_t *st, uint32_t n_leaves)
{
    static const uint8_t zero[SPK_MLS_HASH_LEN];
    spk_mls_reader_t sub;
    uint32_t n = 0;
    spk_mls_read_u32(r, &n);
    if (r->err != 0 || n != n_leaves) {
        return spk_mls_reader_fail(r, SPK_EVERIFY);
    }
    int rc = spk_mls_secret_tree_init(st, zero, n);
    if (rc != 0) {
        return spk_mls_reader_fail(r, rc);
    }
    memset(st->present, 0, st->width);
    spk_mls_read_sub(r, &sub);
    while (r->err == 0 && sub.err == 0 && spk_mls_reader_remaining(&sub) > 0) {
        uint32_t x = 0;
        spk_mls_read_u32(&sub, &x);
        if (sub.err == 0 && (x >= st->width || st->present[x])) {
            spk_mls_reader_fail(&sub, SPK_EDECODE);
        }
        if (sub.err == 0) {
            spk_mls_read_copy(&sub, st->node[x], SPK_MLS_HASH_LEN);
            st->present[x] = 1;
        }
    }
    if (spk_mls_reader_done(&sub) != 0) {
        return spk_mls_reader_fail(r, spk_mls_reader_done(&sub));
    }
    spk_mls_read_sub(r, &sub);
    while (r->err == 0 && sub.err == 0 && spk_mls_reader_remaining(&sub) > 0) {
        read_ratchet(&sub, st);
    }
    if (spk_mls_reader_done(&sub) != 0) {
        return spk_mls_reader_fail(r, spk_mls_reader_done(&sub));
    }
    return spk_mls_reader_done(r);
}

int spk_mls_proposals_read(spk_mls_reader_t *r, spk_mls_cached_proposal_t **out, size_t *n)
{
    while (r->err == 0 && spk_mls_reader_remaining(r) > 0) {
        spk_mls_cached_proposal_t e;
        memset(&e, 0, sizeof(e));
        if (*n == SPK_MLS_GROUP_MAX_PROPOSALS) {
            return spk_mls_reader_fail(r, SPK_ERANGE);
        }
        spk_mls_read_copy(r, e.ref, sizeof(e.ref));
        spk_mls_read_u8(r, &e.sender_type);
        spk_mls_read_u32(r, &e.sender);
        if (spk_mls_proposal_read(r, &e.proposal) != 0) {
            break;
        }
        spk_mls_cached_proposal_t *v = realloc(*out, (*n + 1) * sizeof(*v));
        if (v == NULL) {
            spk_mls_proposal_free(&e.proposal);
            return spk_mls_reader_fail(r, SPK_ENOMEM);
        }
        *out = v;
        (*out)[(*n)++] = e;
    }
    return spk_mls_reader_done(r);
}

static int read_own(spk_mls_reader_t *r, spk_mls_group_t *g)
{
    uint8_t removed = 0;
    spk_mls_read_u32(r, &g->own_leaf);
    spk_mls_read_copy(r, g->sig_priv, sizeof(g->sig_priv));
    spk_mls_read_u8(r, &removed);
    if (r->err == 0 && removed > 1) {
        spk_mls_reader_fail(r, SPK_EDECODE);
    }
    g->removed = removed == 1;
    return spk_mls_reader_done(r);
}

static int read_field(spk_mls_reader_t *r, spk_mls_group_t *g, int tag)
{
    spk_mls_epoch_secrets_t *s = &g->secrets;
    uint8_t *secrets[N_EPOCH_SECRETS] = {
        s->joiner_secret,     s->welcome_secret,  s->epoch_secret,        s->sender_data_secret,
        s->encryption_secret, s->exporter_secret, s->external_secret,     s->confirmation_key,
        s->membership_key,    s->resumption_psk,  s->epoch_authenticator, s->init_secret};
    int rc;
    switch (tag) {
    case T_GC:
        return spk_mls_state_read_gc(r, &g->gc, &g->gc_enc);
    case T_TREE:
        return spk_mls_tree_decode(&g->tree, r->p, r->len);
    case T_OWN:
        return read_own(r, g);
    case T_PRIV:
        rc = read_keys(r, g->priv.keys, sizeof(g->priv.keys) / sizeof(g->priv.keys[0]),
                       &g->priv.n_keys);
        return rc != 0 ? rc : check_keys(g->priv.keys, g->priv.n_keys);
    case T_SECRETS:
        for (size_t i = 0; i < N_EPOCH_SECRETS; i++) {
            spk_mls_read_copy(r, secrets[i], SPK_MLS_HASH_LEN);
        }
        return spk_mls_reader_done(r);
    case T_INTERIM:
        spk_mls_read_copy(r, g->interim, sizeof(g->interim));
        return spk_mls_reader_done(r);
    case T_ST:
        return read_secret_tree(r, &g->st, g->tree.n_leaves);
    case T_PROPOSALS:
        return spk_mls_proposals_read(r, &g->proposals, &g->n_proposals);
    case T_RESUMPTION:
        while (r->err == 0 && spk_mls_reader_remaining(r) > 0) {
            if (g->n_resumption == SPK_MLS_GROUP_RESUMPTION_KEEP) {
                return SPK_ERANGE;
            }
            spk_mls_read_u64(r, &g->resumption[g->n_resumption].epoch);
            spk_mls_read_copy(r, g->resumption[g->n_resumption].psk, SPK_MLS_HASH_LEN);
            g->n_resumption++;
        }
        return spk_mls_reader_done(r);
    default:
        rc = read_keys(r, g->own_updates, SPK_MLS_GROUP_MAX_OWN_UPDATES, &g->n_own_updates);
        return rc != 0 ? rc : check_keys(g->own_updates, g->n_own_updates);
    }
}

/* Cross-field checks once every field was read. */
static int check_state(const spk_mls_group_t *g)
{
    const spk_mls_group_context_t *gc = &g->gc;
    uint8_t th[SPK_MLS_HASH_LEN];
    uint8_t sp[SPK_MLS_SIG_PUB_LEN];
    if (gc->version != SPK_MLS_VERSION_10 || gc->cipher_suite != SPK_MLS_CIPHER_SUITE ||
        (gc->confirmed_transcript_hash.n != SPK_MLS_HASH_LEN &&
         (gc->epoch != 0 || gc->confirmed_transcript_hash.n != 0))) {
        return SPK_EVERIFY;
    }
    const spk_mls_leaf_node_t *own = spk_mls_tree_leaf(&g->tree, g->own_leaf);
    int rc = spk_mls_tree_root_hash(&g->tree, th);
    if (rc != 0) {
        return rc;
    }
    if (own == NULL || !spk_mls_bytes_eq_raw(&gc->tree_hash, th, sizeof(th))) {
        return SPK_EVERIFY;
    }
    rc = spk_mls_ed25519_pub(g->sig_priv, sp);
    if (rc != 0 || !spk_mls_bytes_eq_raw(&own->signature_key, sp, sizeof(sp))) {
        return SPK_EVERIFY;
    }
    if (g->priv.own_leaf != g->own_leaf || !spk_mls_tree_priv_consistent(&g->priv, &g->tree) ||
        spk_mls_tree_priv_get(&g->priv, spk_mls_tm_leaf_to_node(g->own_leaf)) == NULL) {
        return SPK_EVERIFY;
    }
    for (size_t i = 0; i < g->n_own_updates; i++) {
        if (g->own_updates[i].node != spk_mls_tm_leaf_to_node(g->own_leaf)) {
            return SPK_EVERIFY;
        }
    }
    return spk_mls_tree_validate(&g->tree, gc->group_id.p, gc->group_id.n, &gc->extensions);
}

int spk_mls_state_read(const uint8_t *p, size_t n, uint32_t magic, uint16_t version, int last,
                       spk_mls_state_field_fn fn, void *arg)
{
    spk_mls_reader_t r;
    uint32_t m = 0;
    uint16_t v = 0;
    uint16_t suite = 0;
    spk_mls_reader_init(&r, p, n);
    spk_mls_read_u32(&r, &m);
    spk_mls_read_u16(&r, &v);
    spk_mls_read_u16(&r, &suite);
    if (r.err != 0) {
        return r.err;
    }
    if (m != magic || v != version || suite != SPK_MLS_CIPHER_SUITE) {
        return SPK_EDECODE;
    }
    for (int want = 1; want <= last; want++) {
        uint16_t tag = 0;
        spk_mls_reader_t body;
        spk_mls_read_u16(&r, &tag);
        spk_mls_read_sub(&r, &body);
        if (r.err != 0) {
            return r.err;
        }
        if (tag != want) {
            return SPK_EDECODE;
        }
        int rc = fn(&body, arg, want);
        if (rc != 0) {
            return rc;
        }
    }
    return spk_mls_reader_done(&r);
}

int spk_mls_state_read_gc(const spk_mls_reader_t *r, spk_mls_group_context_t *gc,
                          spk_mls_bytes_t *enc)
{
    /* Kept only in its canonical encoding, which signatures and the key schedule use. */
    int rc = spk_mls_group_context_decode(gc, r->p, r->len);
    rc = rc != 0 ? rc : spk_mls_group_context_encode(gc, enc);
    if (rc == 0 && (enc->n != r->len || memcmp(enc->p, r->p, r->len) != 0)) {
        rc = SPK_EDECODE;
    }
    return rc;
}

static int group_field(spk_mls_reader_t *r, void *arg, int tag)
{
    return read_field(r, arg, tag);
}

int spk_mls_group_restore(spk_mls_group_t *g, const uint8_t *p, size_t n)
{
    spk_mls_group_t ng;
    memset(&ng, 0, sizeof(ng));
    memset(g, 0, sizeof(*g));
    int rc = spk_mls_state_read(p, n, STATE_MAGIC, STATE_VERSION, T_LAST, group_field, &ng);
    if (rc == 0) {
        ng.priv.own_leaf = ng.own_leaf;
        rc = check_state(&ng);
    }
    if (rc != 0) {
        spk_mls_group_free(&ng);
        return rc;
    }
    *g = ng;
    spk_wipe(&ng, sizeof(ng));
    return 0;
}
