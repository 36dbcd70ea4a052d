/* MLS observer serialisation.
 *
 * Format (TLS presentation language, written with the codec):
 *
 *   uint32 magic = 0x534d4c4f ("SMLO");  uint16 format_version = 1;  uint16 cipher_suite = 1;
 *   Field fields[];    -- tags 1..4 in order, each exactly once, then the end of the buffer
 *   struct { uint16 tag; opaque body<V>; } Field;
 *
 *   tag 1 group_context   GroupContext (§8.1), in its canonical encoding
 *   tag 2 ratchet_tree    optional<Node> ratchet_tree<V> (§12.4.3.3)
 *   tag 3 interim         opaque[32] interim transcript hash
 *   tag 4 proposals       { opaque ref[32]; uint8 sender_type; uint32 sender;
 *                           Proposal proposal; } proposals[]   (as in the member state)
 *
 * A reader rejects other versions, unknown, missing or repeated fields and trailing bytes.
 * Restoring checks the structure: the tree decodes, its unmerged leaves and keys are
 * consistent, its hash is the GroupContext's, every cached proposal's sender is a member; it
 * does not verify the leaf signatures again. Nothing in it is secret. */
#include "mls/group_int.h"
#include "mls/mls_api_int.h"
#include "mls/observer_int.h"
#include "mls/validate.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

#define OBS_MAGIC 0x534d4c4fu
#define OBS_VERSION 1

enum {
    T_GC = 1,
    T_TREE,
    T_INTERIM,
    T_PROPOSALS,
    T_LAST = T_PROPOSALS,
};

int spk_mls_observer_save(const spk_mls_observer_t *o, spk_mls_buf_t *out)
{
    spk_mls_writer_t w;
    spk_mls_bytes_t b = {NULL, 0};
    size_t mark;
    mls_api_buf_clear(out);
    spk_mls_writer_init(&w);
    spk_mls_state_write_header(&w, OBS_MAGIC, OBS_VERSION);
    for (int tag = T_GC; tag <= T_LAST; tag++) {
        spk_mls_write_u16(&w, (uint16_t)tag);
        spk_mls_write_vec_begin(&w, &mark);
        if (tag == T_GC) {
            spk_mls_write_bytes(&w, o->gc_enc.p, o->gc_enc.n);
        } else if (tag == T_TREE) {
            spk_mls_tree_write(&w, &o->tree);
        } else if (tag == T_INTERIM) {
            spk_mls_write_bytes(&w, o->interim, sizeof(o->interim));
        } else {
            spk_mls_proposals_write(&w, o->proposals, o->n_proposals);
        }
        spk_mls_write_vec_end(&w, mark);
    }
    int rc = spk_mls_writer_take(&w, &b);
    if (rc == 0) {
        mls_api_buf_take(out, &b);
    }
    return rc;
}

static int read_field(spk_mls_reader_t *r, void *arg, int tag)
{
    spk_mls_observer_t *o = arg;
    switch (tag) {
    case T_GC:
        return spk_mls_state_read_gc(r, &o->gc, &o->gc_enc);
    case T_TREE:
        return spk_mls_tree_decode(&o->tree, r->p, r->len);
    case T_INTERIM:
        spk_mls_read_copy(r, o->interim, sizeof(o->interim));
        return spk_mls_reader_done(r);
    default:
        return spk_mls_proposals_read(r, &o->proposals, &o->n_proposals);
    }
}

static int check_state(const spk_mls_observer_t *o)
{
    const spk_mls_group_context_t *gc = &o->gc;
    uint8_t th[SPK_MLS_HASH_LEN];
    if (gc->version != SPK_MLS_VERSION_10 || gc->cipher_suite != SPK_MLS_CIPHER_SUITE ||
        (gc->confirmed_transcript_hash.n != SPK_MLS_HASH_LEN &&
         (gc->epoch != 0 || gc->confirmed_transcript_hash.n != 0))) {
        return SPK_EVERIFY;
    }
    int rc = spk_mls_tree_root_hash(&o->tree, th);
    if (rc == 0 && !spk_mls_bytes_eq_raw(&gc->tree_hash, th, sizeof(th))) {
        rc = SPK_EVERIFY;
    }
    rc = rc != 0 ? rc : spk_mls_tree_verify_unmerged(&o->tree);
    rc = rc != 0 ? rc : spk_mls_tree_check_members(&o->tree);
    for (size_t i = 0; rc == 0 && i < o->n_proposals; i++) {
        const spk_mls_cached_proposal_t *cp = &o->proposals[i];
        if (cp->sender_type != SPK_MLS_SENDER_MEMBER ||
            spk_mls_tree_leaf(&o->tree, cp->sender) == NULL) {
            rc = SPK_EVERIFY;
        }
    }
    return rc;
}

int spk_mls_observer_restore(spk_mls_observer_t **out, const uint8_t *blob, size_t blob_len)
{
    *out = NULL;
    if (blob == NULL) {
        return SPK_EINVAL;
    }
    spk_mls_observer_t *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return SPK_ENOMEM;
    }
    int rc = spk_mls_state_read(blob, blob_len, OBS_MAGIC, OBS_VERSION, T_LAST, read_field, o);
    rc = rc != 0 ? rc : check_state(o);
    if (rc != 0) {
        spk_mls_observer_free(o);
        return rc;
    }
    *out = o;
    return 0;
}
