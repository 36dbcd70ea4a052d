/* Public MLS API (spk/mls.h): what a delivery service reads from messages without a group
 * (routing header, KeyPackageRef, a Welcome's recipients), and the GroupInfo a member publishes
 * for the delivery service's observer. */
#include "spk/mls.h"

#include "mls/group.h"
#include "mls/mls_api_int.h"
#include "mls/welcome_crypto.h"

#include "spk/error.h"
#include "spk/util.h"

#include <stdlib.h>
#include <string.h>

#define MLS_MESSAGE_HEADER 4 /* uint16 version || uint16 wire_format */

int mls_api_decode(spk_mls_message_t *m, const uint8_t *p, size_t n)
{
    if (p == NULL || n > SPK_MLS_MAX_MESSAGE) {
        memset(m, 0, sizeof(*m));
        return p == NULL ? SPK_EINVAL : SPK_ETOOBIG;
    }
    return spk_mls_message_decode(m, p, n);
}

int spk_mls_message_info(const uint8_t *msg, size_t msg_len, spk_mls_message_info_t *out)
{
    mls_peek_t info;
    memset(out, 0, sizeof(*out));
    out->sender = SPK_MLS_NO_LEAF;
    if (msg == NULL) {
        return SPK_EINVAL;
    }
    int rc = spk_mls_message_peek(msg, msg_len, &info);
    if (rc != 0) {
        return rc;
    }
    out->wire_format = info.wire_format;
    out->group_id = info.group_id;
    out->group_id_len = info.group_id_len;
    out->epoch = info.epoch;
    out->content_type = info.content_type;
    if (info.wire_format == SPK_MLS_WIRE_PUBLIC && info.sender_type == SPK_MLS_SENDER_MEMBER) {
        out->sender = info.sender_index;
    }
    return 0;
}

int spk_mls_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t ref[SPK_MLS_REF_LEN])
{
    spk_mls_message_t m;
    int rc = mls_api_decode(&m, kp, kp_len);
    if (rc != 0) {
        return rc;
    }
    rc = m.wire_format == SPK_MLS_WIRE_KEY_PACKAGE ? 0 : SPK_EINVAL;
    spk_mls_message_free(&m);
    /* The decode is exact, so the KeyPackage's encoding is the bytes after the header. */
    return rc != 0 ? rc
                   : spk_mls_make_key_package_ref(kp + MLS_MESSAGE_HEADER,
                                                  kp_len - MLS_MESSAGE_HEADER, ref);
}

int spk_mls_key_package_lifetime(const uint8_t *kp, size_t kp_len, uint64_t *not_before,
                                 uint64_t *not_after)
{
    spk_mls_message_t m;
    *not_before = 0;
    *not_after = 0;
    int rc = mls_api_decode(&m, kp, kp_len);
    if (rc != 0) {
        return rc;
    }
    if (m.wire_format != SPK_MLS_WIRE_KEY_PACKAGE) {
        rc = SPK_EINVAL;
    } else {
        *not_before = m.u.key_package.leaf_node.lifetime.not_before;
        *not_after = m.u.key_package.leaf_node.lifetime.not_after;
    }
    spk_mls_message_free(&m);
    return rc;
}

int spk_mls_welcome_refs(const uint8_t *msg, size_t msg_len, spk_mls_buf_t *refs, size_t *n)
{
    spk_mls_message_t m;
    spk_mls_bytes_t out = {NULL, 0};
    mls_api_buf_clear(refs);
    *n = 0;
    int rc = mls_api_decode(&m, msg, msg_len);
    if (rc != 0) {
        return rc;
    }
    const spk_mls_welcome_t *w = &m.u.welcome;
    if (m.wire_format != SPK_MLS_WIRE_WELCOME) {
        rc = SPK_EINVAL;
    } else if (w->cipher_suite != SPK_MLS_CIPHER_SUITE) {
        rc = SPK_EDECODE;
    }
    for (size_t i = 0; rc == 0 && i < w->n_secrets; i++) {
        if (w->secrets[i].new_member.n != SPK_MLS_REF_LEN) {
            rc = SPK_EDECODE;
        }
    }
    if (rc == 0 && w->n_secrets > 0) {
        out.p = malloc(w->n_secrets * SPK_MLS_REF_LEN);
        out.n = w->n_secrets * SPK_MLS_REF_LEN;
        rc = out.p != NULL ? 0 : SPK_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < w->n_secrets; i++) {
        memcpy(out.p + i * SPK_MLS_REF_LEN, w->secrets[i].new_member.p, SPK_MLS_REF_LEN);
    }
    if (rc == 0) {
        *n = w->n_secrets;
        mls_api_buf_take(refs, &out);
    } else {
        spk_mls_bytes_free(&out);
    }
    spk_mls_message_free(&m);
    return rc;
}

int spk_mls_group_info(const spk_mls_t *g, unsigned flags, spk_mls_buf_t *out)
{
    const spk_mls_group_t *gg = &g->g;
    spk_mls_message_t m;
    spk_mls_extension_t ext;
    uint8_t tag[SPK_MLS_HASH_LEN];
    spk_mls_bytes_t enc = {NULL, 0};
    mls_api_buf_clear(out);
    if (gg->removed) {
        return SPK_ESTATE;
    }
    memset(&m, 0, sizeof(m));
    memset(&ext, 0, sizeof(ext));
    m.version = SPK_MLS_VERSION_10;
    m.wire_format = SPK_MLS_WIRE_GROUP_INFO;
    spk_mls_group_info_t *gi = &m.u.group_info;
    gi->group_context = gg->gc; /* borrowed for the call */
    ext.type = SPK_MLS_EXT_RATCHET_TREE;
    int rc = 0;
    if ((flags & SPK_MLS_COMMIT_TREE_OUT_OF_BAND) == 0) {
        rc = spk_mls_tree_encode(&gg->tree, &ext.data);
        gi->extensions.v = &ext;
        gi->extensions.n = 1;
    }
    /* The epoch's confirmation tag: MAC(confirmation_key, confirmed_transcript_hash) (§8.2). */
    rc = rc != 0 ? rc
                 : spk_mls_hmac_sha256(gg->secrets.confirmation_key, SPK_MLS_HASH_LEN,
                                       gg->gc.confirmed_transcript_hash.p,
                                       gg->gc.confirmed_transcript_hash.n, tag);
    gi->confirmation_tag.p = tag;
    gi->confirmation_tag.n = sizeof(tag);
    gi->signer = gg->own_leaf;
    rc = rc != 0 ? rc : spk_mls_group_info_sign(gi, gg->sig_priv);
    rc = rc != 0 ? rc : spk_mls_message_encode(&m, &enc);
    spk_mls_bytes_free(&gi->signature);
    spk_mls_bytes_free(&ext.data);
    if (rc == 0) {
        mls_api_buf_take(out, &enc);
    }
    return rc;
}
