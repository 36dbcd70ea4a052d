/* Message framing protection (RFC 9420 §6). */
#include "mls/msgprot.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"

#define REUSE_GUARD_LEN 4
#define SENDER_DATA_LEN 12 /* uint32 leaf_index || uint32 generation || reuse_guard[4] */

void spk_mls_auth_content_free(spk_mls_auth_content_t *ac)
{
    if (ac == NULL) {
        return;
    }
    spk_mls_framed_content_free(&ac->content);
    spk_mls_bytes_free(&ac->signature);
    spk_mls_bytes_free(&ac->confirmation_tag);
    memset(ac, 0, sizeof *ac);
}

int spk_mls_confirmed_transcript_input_write_parts(spk_mls_writer_t *w, uint16_t wire_format,
                                                   const spk_mls_framed_content_t *c,
                                                   const spk_mls_bytes_t *signature)
{
    spk_mls_write_u16(w, wire_format);
    spk_mls_framed_content_write(w, c);
    return spk_mls_write_opaque_v(w, signature->p, signature->n);
}

int spk_mls_confirmed_transcript_input_write(spk_mls_writer_t *w, const spk_mls_auth_content_t *ac)
{
    return spk_mls_confirmed_transcript_input_write_parts(w, ac->wire_format, &ac->content,
                                                          &ac->signature);
}

int spk_mls_auth_content_write_parts(spk_mls_writer_t *w, uint16_t wire_format,
                                     const spk_mls_framed_content_t *c,
                                     const spk_mls_bytes_t *signature,
                                     const spk_mls_bytes_t *confirmation_tag)
{
    static const spk_mls_bytes_t empty = {NULL, 0};
    spk_mls_write_u16(w, wire_format);
    spk_mls_framed_content_write(w, c);
    return spk_mls_auth_data_write(w, c->content_type, signature,
                                   confirmation_tag != NULL ? confirmation_tag : &empty);
}

int spk_mls_auth_content_write(spk_mls_writer_t *w, const spk_mls_auth_content_t *ac)
{
    return spk_mls_auth_content_write_parts(w, ac->wire_format, &ac->content, &ac->signature,
                                            &ac->confirmation_tag);
}

int spk_mls_proposal_ref_of(uint16_t wire_format, const spk_mls_framed_content_t *c,
                            const spk_mls_bytes_t *signature, uint8_t out[SPK_MLS_HASH_LEN])
{
    spk_mls_writer_t w;
    if (c->content_type != SPK_MLS_CONTENT_PROPOSAL) {
        return SPK_EINVAL;
    }
    spk_mls_writer_init(&w);
    int rc = spk_mls_auth_content_write_parts(&w, wire_format, c, signature, NULL);
    rc = rc != 0 ? rc : spk_mls_make_proposal_ref(w.buf, w.len, out);
    spk_mls_writer_free(&w);
    return rc;
}

static bool context_in_tbs(uint8_t sender_type)
{
    return sender_type == SPK_MLS_SENDER_MEMBER || sender_type == SPK_MLS_SENDER_NEW_MEMBER_COMMIT;
}

int spk_mls_framed_content_tbs_write(spk_mls_writer_t *w, uint16_t wire_format,
                                     const spk_mls_framed_content_t *c, const uint8_t *gc,
                                     size_t gc_len)
{
    spk_mls_write_u16(w, SPK_MLS_VERSION_10);
    spk_mls_write_u16(w, wire_format);
    spk_mls_framed_content_write(w, c);
    if (context_in_tbs(c->sender.type)) {
        spk_mls_write_bytes(w, gc, gc_len);
    }
    return w->err;
}

int spk_mls_framed_content_sign(uint16_t wire_format, const spk_mls_framed_content_t *c,
                                const uint8_t *gc, size_t gc_len,
                                const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                spk_mls_bytes_t *signature)
{
    spk_mls_writer_t w;
    uint8_t sig[SPK_MLS_SIG_LEN];
    spk_mls_writer_init(&w);
    int rc = spk_mls_framed_content_tbs_write(&w, wire_format, c, gc, gc_len);
    rc = rc != 0 ? rc : spk_mls_sign_with_label(sig_priv, "FramedContentTBS", w.buf, w.len, sig);
    rc = rc != 0 ? rc : spk_mls_bytes_dup(signature, sig, sizeof sig);
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_framed_content_verify(uint16_t wire_format, const spk_mls_framed_content_t *c,
                                  const uint8_t *gc, size_t gc_len,
                                  const spk_mls_bytes_t *signature, const uint8_t *sig_pub,
                                  size_t sig_pub_len)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    int rc = spk_mls_framed_content_tbs_write(&w, wire_format, c, gc, gc_len);
    rc = rc != 0 ? rc
                 : spk_mls_verify_with_label(sig_pub, sig_pub_len, "FramedContentTBS", w.buf, w.len,
                                             signature->p, signature->n);
    spk_mls_writer_free(&w);
    return rc;
}

int spk_mls_membership_tag(const spk_mls_framed_content_t *c, const spk_mls_bytes_t *signature,
                           const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                           size_t gc_len, const uint8_t membership_key[SPK_MLS_HASH_LEN],
                           uint8_t out[SPK_MLS_HASH_LEN])
{
    static const spk_mls_bytes_t empty = {NULL, 0};
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    /* AuthenticatedContentTBM = FramedContentTBS || FramedContentAuthData. */
    spk_mls_framed_content_tbs_write(&w, SPK_MLS_WIRE_PUBLIC, c, gc, gc_len);
    int rc = spk_mls_auth_data_write(&w, c->content_type, signature,
                                     confirmation_tag != NULL ? confirmation_tag : &empty);
    rc = rc != 0 ? rc : spk_mls_hmac_sha256(membership_key, SPK_MLS_HASH_LEN, w.buf, w.len, out);
    spk_mls_writer_free(&w);
    return rc;
}

static int check_commit_tag(const spk_mls_framed_content_t *c, const spk_mls_bytes_t *tag)
{
    if (c->content_type == SPK_MLS_CONTENT_COMMIT && (tag == NULL || tag->n == 0)) {
        return SPK_EINVAL;
    }
    return 0;
}

int spk_mls_public_message_protect(const spk_mls_framed_content_t *c,
                                   const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                                   size_t gc_len, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                   const uint8_t *membership_key, spk_mls_bytes_t *out)
{
    static const spk_mls_bytes_t empty = {NULL, 0};
    spk_mls_bytes_t sig = {0};
    uint8_t tag[SPK_MLS_HASH_LEN];
    bool member = c->sender.type == SPK_MLS_SENDER_MEMBER;
    const spk_mls_bytes_t *ctag =
        c->content_type == SPK_MLS_CONTENT_COMMIT ? confirmation_tag : &empty;

    out->p = NULL;
    out->n = 0;
    if (c->content_type == SPK_MLS_CONTENT_APPLICATION || (member && membership_key == NULL)) {
        return SPK_EINVAL;
    }
    int rc = check_commit_tag(c, confirmation_tag);
    rc = rc != 0 ? rc
                 : spk_mls_framed_content_sign(SPK_MLS_WIRE_PUBLIC, c, gc, gc_len, sig_priv, &sig);
    if (rc == 0 && member) {
        rc = spk_mls_membership_tag(c, &sig, ctag, gc, gc_len, membership_key, tag);
    }
    if (rc == 0) {
        spk_mls_writer_t w;
        spk_mls_writer_init(&w);
        spk_mls_write_u16(&w, SPK_MLS_VERSION_10);
        spk_mls_write_u16(&w, SPK_MLS_WIRE_PUBLIC);
        spk_mls_framed_content_write(&w, c);
        spk_mls_auth_data_write(&w, c->content_type, &sig, ctag);
        if (member) {
            spk_mls_write_opaque_v(&w, tag, sizeof tag);
        }
        rc = spk_mls_writer_take(&w, out);
    }
    spk_mls_bytes_free(&sig);
    return rc;
}

int spk_mls_public_message_check(const spk_mls_public_message_t *pm, const uint8_t *gc,
                                 size_t gc_len, const uint8_t *membership_key,
                                 const uint8_t *sig_pub, size_t sig_pub_len)
{
    const spk_mls_framed_content_t *c = &pm->content;
    if (c->content_type == SPK_MLS_CONTENT_APPLICATION) {
        return SPK_EVERIFY; /* §6.2: application data is never sent as PublicMessage */
    }
    if (c->sender.type == SPK_MLS_SENDER_MEMBER) {
        uint8_t tag[SPK_MLS_HASH_LEN];
        if (membership_key == NULL) {
            return SPK_EINVAL;
        }
        int rc = spk_mls_membership_tag(c, &pm->signature, &pm->confirmation_tag, gc, gc_len,
                                        membership_key, tag);
        if (rc != 0) {
            return rc;
        }
        if (pm->membership_tag.n != sizeof tag ||
            !spk_ct_equal(pm->membership_tag.p, tag, sizeof tag)) {
            return SPK_EMLSMEMBERTAG;
        }
    }
    if (spk_mls_framed_content_verify(SPK_MLS_WIRE_PUBLIC, c, gc, gc_len, &pm->signature, sig_pub,
                                      sig_pub_len) != 0) {
        return SPK_EMLSSIG;
    }
    return 0;
}

int spk_mls_public_message_verify(const spk_mls_public_message_t *pm, const uint8_t *gc,
                                  size_t gc_len, const uint8_t *membership_key,
                                  const uint8_t *sig_pub, size_t sig_pub_len)
{
    int rc = spk_mls_public_message_check(pm, gc, gc_len, membership_key, sig_pub, sig_pub_len);
    return rc == SPK_EMLSMEMBERTAG || rc == SPK_EMLSSIG ? SPK_EVERIFY : rc;
}

/* ---- PrivateMessage (§6.3) ---- */

static spk_mls_ratchet_type_t ratchet_for(uint8_t content_type)
{
    return content_type == SPK_MLS_CONTENT_APPLICATION ? SPK_MLS_RATCHET_APPLICATION
                                                       : SPK_MLS_RATCHET_HANDSHAKE;
}

/* PrivateContentAAD (§6.3.1). */
static int content_aad_write(spk_mls_writer_t *w, const spk_mls_bytes_t *group_id, uint64_t epoch,
                             uint8_t content_type, const spk_mls_bytes_t *authenticated_data)
{
    spk_mls_write_opaque_v(w, group_id->p, group_id->n);
    spk_mls_write_u64(w, epoch);
    spk_mls_write_u8(w, content_type);
    return spk_mls_write_opaque_v(w, authenticated_data->p, authenticated_data->n);
}

/* SenderDataAAD (§6.3.2). */
static int sender_aad_write(spk_mls_writer_t *w, const spk_mls_bytes_t *group_id, uint64_t epoch,
                            uint8_t content_type)
{
    spk_mls_write_opaque_v(w, group_id->p, group_id->n);
    spk_mls_write_u64(w, epoch);
    return spk_mls_write_u8(w, content_type);
}

/* The content-type-specific body of FramedContent. */
static int content_body_write(spk_mls_writer_t *w, const spk_mls_framed_content_t *c)
{
    switch (c->content_type) {
    case SPK_MLS_CONTENT_APPLICATION:
        return spk_mls_write_opaque_v(w, c->application_data.p, c->application_data.n);
    case SPK_MLS_CONTENT_PROPOSAL:
        return spk_mls_proposal_write(w, &c->proposal);
    case SPK_MLS_CONTENT_COMMIT:
        return spk_mls_commit_write(w, &c->commit);
    default:
        w->err = w->err != 0 ? w->err : SPK_EINVAL;
        return w->err;
    }
}

static int content_body_read(spk_mls_reader_t *r, spk_mls_framed_content_t *c)
{
    switch (c->content_type) {
    case SPK_MLS_CONTENT_APPLICATION:
        return spk_mls_read_opaque_v_dup(r, &c->application_data);
    case SPK_MLS_CONTENT_PROPOSAL:
        return spk_mls_proposal_read(r, &c->proposal);
    case SPK_MLS_CONTENT_COMMIT:
        return spk_mls_commit_read(r, &c->commit);
    default:
        return spk_mls_reader_fail(r, SPK_EDECODE);
    }
}

/* Encrypts PrivateMessageContent; writes ciphertext into *ct and the sender data plaintext. */
static int encrypt_content(const spk_mls_framed_content_t *c, const spk_mls_bytes_t *sig,
                           const spk_mls_bytes_t *ctag, spk_mls_secret_tree_t *st, size_t padding,
                           uint8_t sender_data[SENDER_DATA_LEN], spk_mls_bytes_t *ct)
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN];
    uint32_t gen = 0;
    spk_mls_writer_t pt, aad;
    spk_mls_writer_init(&pt);
    spk_mls_writer_init(&aad);
    content_body_write(&pt, c);
    spk_mls_auth_data_write(&pt, c->content_type, sig, ctag);
    for (size_t i = 0; i < padding; i++) {
        spk_mls_write_u8(&pt, 0);
    }
    content_aad_write(&aad, &c->group_id, c->epoch, c->content_type, &c->authenticated_data);
    int rc = pt.err != 0 ? pt.err : aad.err;
    rc = rc != 0 ? rc : spk_random_bytes(sender_data + 8, REUSE_GUARD_LEN);
    rc = rc != 0 ? rc
                 : spk_mls_secret_tree_next(st, c->sender.index, ratchet_for(c->content_type), &gen,
                                            key, nonce);
    if (rc == 0) {
        for (size_t i = 0; i < 4; i++) {
            sender_data[i] = (uint8_t)(c->sender.index >> (24 - 8 * i));
            sender_data[4 + i] = (uint8_t)(gen >> (24 - 8 * i));
            nonce[i] ^= sender_data[8 + i]; /* §6.3.1 reuse guard */
        }
        ct->n = pt.len + SPK_MLS_AEAD_TAG_LEN;
        ct->p = malloc(ct->n);
        rc = ct->p != NULL ? 0 : SPK_ENOMEM;
    }
    rc = rc != 0 ? rc : spk_mls_aead_seal(key, nonce, aad.buf, aad.len, pt.buf, pt.len, ct->p);
    if (rc != 0) {
        spk_mls_bytes_free(ct);
    }
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    spk_mls_writer_free(&pt);
    spk_mls_writer_free(&aad);
    return rc;
}

int spk_mls_private_message_protect(const spk_mls_framed_content_t *c,
                                    const spk_mls_bytes_t *confirmation_tag, const uint8_t *gc,
                                    size_t gc_len, const uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN],
                                    spk_mls_secret_tree_t *st,
                                    const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                    size_t padding, spk_mls_bytes_t *out)
{
    static const spk_mls_bytes_t empty = {NULL, 0};
    spk_mls_bytes_t sig = {0}, ct = {0};
    uint8_t sender_data[SENDER_DATA_LEN], esd[SENDER_DATA_LEN + SPK_MLS_AEAD_TAG_LEN];
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN];
    const spk_mls_bytes_t *ctag =
        c->content_type == SPK_MLS_CONTENT_COMMIT ? confirmation_tag : &empty;
    spk_mls_writer_t w;

    out->p = NULL;
    out->n = 0;
    if (c->sender.type != SPK_MLS_SENDER_MEMBER || padding > (1u << 20)) {
        return SPK_EINVAL;
    }
    int rc = check_commit_tag(c, confirmation_tag);
    rc = rc != 0 ? rc
                 : spk_mls_framed_content_sign(SPK_MLS_WIRE_PRIVATE, c, gc, gc_len, sig_priv, &sig);
    rc = rc != 0 ? rc : encrypt_content(c, &sig, ctag, st, padding, sender_data, &ct);
    rc = rc != 0 ? rc : spk_mls_sender_data_key_nonce(sender_data_secret, ct.p, ct.n, key, nonce);
    spk_mls_writer_init(&w);
    if (rc == 0) {
        spk_mls_writer_t aad;
        spk_mls_writer_init(&aad);
        rc = sender_aad_write(&aad, &c->group_id, c->epoch, c->content_type);
        rc = rc != 0 ? rc
                     : spk_mls_aead_seal(key, nonce, aad.buf, aad.len, sender_data,
                                         sizeof sender_data, esd);
        spk_mls_writer_free(&aad);
    }
    if (rc == 0) {
        spk_mls_write_u16(&w, SPK_MLS_VERSION_10);
        spk_mls_write_u16(&w, SPK_MLS_WIRE_PRIVATE);
        spk_mls_write_opaque_v(&w, c->group_id.p, c->group_id.n);
        spk_mls_write_u64(&w, c->epoch);
        spk_mls_write_u8(&w, c->content_type);
        spk_mls_write_opaque_v(&w, c->authenticated_data.p, c->authenticated_data.n);
        spk_mls_write_opaque_v(&w, esd, sizeof esd);
        spk_mls_write_opaque_v(&w, ct.p, ct.n);
        rc = spk_mls_writer_take(&w, out);
    }
    spk_mls_writer_free(&w);
    spk_mls_bytes_free(&sig);
    spk_mls_bytes_free(&ct);
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    spk_wipe(sender_data, sizeof sender_data);
    return rc;
}

/* Decrypts the sender data: leaf index, generation and reuse guard. */
static int open_sender_data(const spk_mls_private_message_t *pm,
                            const uint8_t sender_data_secret[SPK_MLS_HASH_LEN], uint32_t *leaf,
                            uint32_t *gen, uint8_t guard[REUSE_GUARD_LEN])
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN], sd[SENDER_DATA_LEN];
    spk_mls_writer_t aad;
    if (pm->encrypted_sender_data.n != SENDER_DATA_LEN + SPK_MLS_AEAD_TAG_LEN) {
        return SPK_EDECODE;
    }
    spk_mls_writer_init(&aad);
    int rc = sender_aad_write(&aad, &pm->group_id, pm->epoch, pm->content_type);
    rc = rc != 0 ? rc
                 : spk_mls_sender_data_key_nonce(sender_data_secret, pm->ciphertext.p,
                                                 pm->ciphertext.n, key, nonce);
    rc = rc != 0 ? rc
                 : spk_mls_aead_open(key, nonce, aad.buf, aad.len, pm->encrypted_sender_data.p,
                                     pm->encrypted_sender_data.n, sd);
    if (rc == 0) {
        *leaf = (uint32_t)sd[0] << 24 | (uint32_t)sd[1] << 16 | (uint32_t)sd[2] << 8 | sd[3];
        *gen = (uint32_t)sd[4] << 24 | (uint32_t)sd[5] << 16 | (uint32_t)sd[6] << 8 | sd[7];
        memcpy(guard, sd + 8, REUSE_GUARD_LEN);
    }
    spk_mls_writer_free(&aad);
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    spk_wipe(sd, sizeof sd);
    return rc;
}

/* Parses PrivateMessageContent into out (content body, auth data, all-zero padding). */
static int parse_private_content(const uint8_t *p, size_t n, spk_mls_auth_content_t *out)
{
    spk_mls_reader_t r;
    spk_mls_reader_init(&r, p, n);
    content_body_read(&r, &out->content);
    spk_mls_auth_data_read(&r, out->content.content_type, &out->signature, &out->confirmation_tag);
    if (r.err != 0) {
        return r.err;
    }
    for (size_t i = r.off; i < n; i++) {
        if (p[i] != 0) {
            return SPK_EDECODE; /* §6.3.1: padding must be zero */
        }
    }
    return 0;
}

/* Copies the plaintext header fields of the PrivateMessage into the FramedContent. */
static int fill_header(const spk_mls_private_message_t *pm, uint32_t leaf,
                       spk_mls_auth_content_t *out)
{
    out->wire_format = SPK_MLS_WIRE_PRIVATE;
    out->content.epoch = pm->epoch;
    out->content.sender.type = SPK_MLS_SENDER_MEMBER;
    out->content.sender.index = leaf;
    out->content.content_type = pm->content_type;
    int rc = spk_mls_bytes_dup(&out->content.group_id, pm->group_id.p, pm->group_id.n);
    return rc != 0 ? rc
                   : spk_mls_bytes_dup(&out->content.authenticated_data, pm->authenticated_data.p,
                                       pm->authenticated_data.n);
}

static int decrypt_content(const spk_mls_private_message_t *pm, const uint8_t *key,
                           const uint8_t *nonce, spk_mls_auth_content_t *out)
{
    spk_mls_writer_t aad;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    if (pm->ciphertext.n < SPK_MLS_AEAD_TAG_LEN) {
        return SPK_ETRUNC;
    }
    pt_len = pm->ciphertext.n - SPK_MLS_AEAD_TAG_LEN;
    pt = malloc(pt_len + 1);
    if (pt == NULL) {
        return SPK_ENOMEM;
    }
    spk_mls_writer_init(&aad);
    int rc = content_aad_write(&aad, &pm->group_id, pm->epoch, pm->content_type,
                               &pm->authenticated_data);
    rc = rc != 0 ? rc
                 : spk_mls_aead_open(key, nonce, aad.buf, aad.len, pm->ciphertext.p,
                                     pm->ciphertext.n, pt);
    rc = rc != 0 ? rc : parse_private_content(pt, pt_len, out);
    spk_wipe(pt, pt_len);
    free(pt);
    spk_mls_writer_free(&aad);
    return rc;
}

int spk_mls_private_message_open(const spk_mls_private_message_t *pm, const uint8_t *gc,
                                 size_t gc_len, spk_mls_secret_tree_t *st,
                                 const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                 spk_mls_sig_key_cb sig_key, void *arg, spk_mls_auth_content_t *out,
                                 uint32_t *generation)
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN], guard[REUSE_GUARD_LEN];
    uint32_t leaf = 0, gen = 0;
    const uint8_t *pub = NULL;
    size_t pub_len = 0;
    spk_mls_ratchet_type_t type = ratchet_for(pm->content_type);

    memset(out, 0, sizeof *out);
    if (pm->content_type < SPK_MLS_CONTENT_APPLICATION ||
        pm->content_type > SPK_MLS_CONTENT_COMMIT || sig_key == NULL) {
        return SPK_EINVAL;
    }
    int rc = open_sender_data(pm, sender_data_secret, &leaf, &gen, guard);
    rc = rc != 0 ? rc : spk_mls_secret_tree_peek(st, leaf, type, gen, key, nonce);
    if (rc == 0) {
        for (size_t i = 0; i < REUSE_GUARD_LEN; i++) {
            nonce[i] ^= guard[i];
        }
        rc = fill_header(pm, leaf, out);
    }
    rc = rc != 0 ? rc : decrypt_content(pm, key, nonce, out);
    rc = rc != 0 ? rc : sig_key(arg, leaf, &pub, &pub_len);
    if (rc == 0 && spk_mls_framed_content_verify(SPK_MLS_WIRE_PRIVATE, &out->content, gc, gc_len,
                                                 &out->signature, pub, pub_len) != 0) {
        rc = SPK_EMLSSIG;
    }
    if (rc == 0) {
        *generation = gen;
    } else {
        spk_mls_auth_content_free(out);
    }
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    return rc;
}

int spk_mls_private_message_consume(spk_mls_secret_tree_t *st, const spk_mls_auth_content_t *ac,
                                    uint32_t generation)
{
    uint8_t key[SPK_MLS_AEAD_KEY_LEN], nonce[SPK_MLS_AEAD_NONCE_LEN];
    int rc =
        spk_mls_secret_tree_consume(st, ac->content.sender.index,
                                    ratchet_for(ac->content.content_type), generation, key, nonce);
    spk_wipe(key, sizeof key);
    spk_wipe(nonce, sizeof nonce);
    return rc;
}

int spk_mls_private_message_unprotect(const spk_mls_private_message_t *pm, const uint8_t *gc,
                                      size_t gc_len, spk_mls_secret_tree_t *st,
                                      const uint8_t sender_data_secret[SPK_MLS_HASH_LEN],
                                      spk_mls_sig_key_cb sig_key, void *arg,
                                      spk_mls_auth_content_t *out)
{
    uint32_t gen = 0;
    int rc = spk_mls_private_message_open(pm, gc, gc_len, st, sender_data_secret, sig_key, arg, out,
                                          &gen);
    if (rc == SPK_EMLSSIG) {
        rc = SPK_EVERIFY;
    }
    /* Everything checked: now delete the key (§9.2). */
    rc = rc != 0 ? rc : spk_mls_private_message_consume(st, out, gen);
    if (rc != 0) {
        spk_mls_auth_content_free(out);
    }
    return rc;
}
