/* MLS wire structs, part 3: message framing (§6): Sender, FramedContent, FramedContentAuthData,
 * PublicMessage, PrivateMessage and MLSMessage. */
#include "mls/structs.h"
#include "mls/structs_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- Sender (§6) ---- */

int spk_mls_sender_read(spk_mls_reader_t *r, spk_mls_sender_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u8(r, &out->type);
    if (r->err == 0) {
        switch (out->type) {
        case SPK_MLS_SENDER_MEMBER:
        case SPK_MLS_SENDER_EXTERNAL:
            spk_mls_read_u32(r, &out->index);
            break;
        case SPK_MLS_SENDER_NEW_MEMBER_PROPOSAL:
        case SPK_MLS_SENDER_NEW_MEMBER_COMMIT:
            break;
        default:
            spk_mls_reader_fail(r, SPK_EDECODE);
            break;
        }
    }
    SPK_MLS_READ_END(r, sender, out);
}

int spk_mls_sender_write(spk_mls_writer_t *w, const spk_mls_sender_t *in)
{
    spk_mls_write_u8(w, in->type);
    switch (in->type) {
    case SPK_MLS_SENDER_MEMBER:
    case SPK_MLS_SENDER_EXTERNAL:
        spk_mls_write_u32(w, in->index);
        break;
    case SPK_MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case SPK_MLS_SENDER_NEW_MEMBER_COMMIT:
        break;
    default:
        if (w->err == 0) {
            w->err = SPK_EINVAL;
        }
        break;
    }
    return w->err;
}

void spk_mls_sender_free(spk_mls_sender_t *x)
{
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(sender)

/* ---- FramedContent (§6) ---- */

int spk_mls_framed_content_read(spk_mls_reader_t *r, spk_mls_framed_content_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->group_id);
    spk_mls_read_u64(r, &out->epoch);
    spk_mls_sender_read(r, &out->sender);
    spk_mls_read_opaque_v_dup(r, &out->authenticated_data);
    spk_mls_read_u8(r, &out->content_type);
    if (r->err == 0) {
        switch (out->content_type) {
        case SPK_MLS_CONTENT_APPLICATION:
            spk_mls_read_opaque_v_dup(r, &out->application_data);
            break;
        case SPK_MLS_CONTENT_PROPOSAL:
            spk_mls_proposal_read(r, &out->proposal);
            break;
        case SPK_MLS_CONTENT_COMMIT:
            spk_mls_commit_read(r, &out->commit);
            break;
        default:
            spk_mls_reader_fail(r, SPK_EDECODE);
            break;
        }
    }
    SPK_MLS_READ_END(r, framed_content, out);
}

int spk_mls_framed_content_write(spk_mls_writer_t *w, const spk_mls_framed_content_t *in)
{
    spk_mls_write_opaque_v(w, in->group_id.p, in->group_id.n);
    spk_mls_write_u64(w, in->epoch);
    spk_mls_sender_write(w, &in->sender);
    spk_mls_write_opaque_v(w, in->authenticated_data.p, in->authenticated_data.n);
    spk_mls_write_u8(w, in->content_type);
    switch (in->content_type) {
    case SPK_MLS_CONTENT_APPLICATION:
        spk_mls_write_opaque_v(w, in->application_data.p, in->application_data.n);
        break;
    case SPK_MLS_CONTENT_PROPOSAL:
        spk_mls_proposal_write(w, &in->proposal);
        break;
    case SPK_MLS_CONTENT_COMMIT:
        spk_mls_commit_write(w, &in->commit);
        break;
    default:
        if (w->err == 0) {
            w->err = SPK_EINVAL;
        }
        break;
    }
    return w->err;
}

void spk_mls_framed_content_free(spk_mls_framed_content_t *x)
{
    spk_mls_bytes_free(&x->group_id);
    spk_mls_bytes_free(&x->authenticated_data);
    spk_mls_bytes_free(&x->application_data);
    spk_mls_proposal_free(&x->proposal);
    spk_mls_commit_free(&x->commit);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(framed_content)

/* ---- FramedContentAuthData (§6.1) ---- */

int spk_mls_auth_data_read(spk_mls_reader_t *r, uint8_t content_type, spk_mls_bytes_t *signature,
                           spk_mls_bytes_t *confirmation_tag)
{
    memset(confirmation_tag, 0, sizeof(*confirmation_tag));
    spk_mls_read_opaque_v_dup(r, signature);
    if (content_type == SPK_MLS_CONTENT_COMMIT) {
        spk_mls_read_opaque_v_dup(r, confirmation_tag);
    }
    if (r->err != 0) {
        spk_mls_bytes_free(signature);
        spk_mls_bytes_free(confirmation_tag);
    }
    return r->err;
}

int spk_mls_auth_data_write(spk_mls_writer_t *w, uint8_t content_type,
                            const spk_mls_bytes_t *signature,
                            const spk_mls_bytes_t *confirmation_tag)
{
    spk_mls_write_opaque_v(w, signature->p, signature->n);
    if (content_type == SPK_MLS_CONTENT_COMMIT) {
        spk_mls_write_opaque_v(w, confirmation_tag->p, confirmation_tag->n);
    }
    return w->err;
}

/* ---- PublicMessage (§6.2) ---- */

int spk_mls_public_message_read(spk_mls_reader_t *r, spk_mls_public_message_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_framed_content_read(r, &out->content);
    if (r->err == 0) {
        spk_mls_auth_data_read(r, out->content.content_type, &out->signature,
                               &out->confirmation_tag);
    }
    if (r->err == 0 && out->content.sender.type == SPK_MLS_SENDER_MEMBER) {
        spk_mls_read_opaque_v_dup(r, &out->membership_tag);
    }
    SPK_MLS_READ_END(r, public_message, out);
}

int spk_mls_public_message_write(spk_mls_writer_t *w, const spk_mls_public_message_t *in)
{
    spk_mls_framed_content_write(w, &in->content);
    spk_mls_auth_data_write(w, in->content.content_type, &in->signature, &in->confirmation_tag);
    if (in->content.sender.type == SPK_MLS_SENDER_MEMBER) {
        spk_mls_write_opaque_v(w, in->membership_tag.p, in->membership_tag.n);
    }
    return w->err;
}

void spk_mls_public_message_free(spk_mls_public_message_t *x)
{
    spk_mls_framed_content_free(&x->content);
    spk_mls_bytes_free(&x->signature);
    spk_mls_bytes_free(&x->confirmation_tag);
    spk_mls_bytes_free(&x->membership_tag);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(public_message)

/* ---- PrivateMessage (§6.3) ---- */

int spk_mls_private_message_read(spk_mls_reader_t *r, spk_mls_private_message_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->group_id);
    spk_mls_read_u64(r, &out->epoch);
    spk_mls_read_u8(r, &out->content_type);
    if (r->err == 0 && (out->content_type < SPK_MLS_CONTENT_APPLICATION ||
                        out->content_type > SPK_MLS_CONTENT_COMMIT)) {
        spk_mls_reader_fail(r, SPK_EDECODE);
    }
    spk_mls_read_opaque_v_dup(r, &out->authenticated_data);
    spk_mls_read_opaque_v_dup(r, &out->encrypted_sender_data);
    spk_mls_read_opaque_v_dup(r, &out->ciphertext);
    SPK_MLS_READ_END(r, private_message, out);
}

int spk_mls_private_message_write(spk_mls_writer_t *w, const spk_mls_private_message_t *in)
{
    spk_mls_write_opaque_v(w, in->group_id.p, in->group_id.n);
    spk_mls_write_u64(w, in->epoch);
    spk_mls_write_u8(w, in->content_type);
    spk_mls_write_opaque_v(w, in->authenticated_data.p, in->authenticated_data.n);
    spk_mls_write_opaque_v(w, in->encrypted_sender_data.p, in->encrypted_sender_data.n);
    return spk_mls_write_opaque_v(w, in->ciphertext.p, in->ciphertext.n);
}

void spk_mls_private_message_free(spk_mls_private_message_t *x)
{
    spk_mls_bytes_free(&x->group_id);
    spk_mls_bytes_free(&x->authenticated_data);
    spk_mls_bytes_free(&x->encrypted_sender_data);
    spk_mls_bytes_free(&x->ciphertext);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(private_message)

/* ---- MLSMessage (§6) ---- */

int spk_mls_message_read(spk_mls_reader_t *r, spk_mls_message_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->version);
    spk_mls_read_u16(r, &out->wire_format);
    if (r->err == 0 && out->version != SPK_MLS_VERSION_10) {
        spk_mls_reader_fail(r, SPK_EDECODE);
    }
    if (r->err == 0) {
        switch (out->wire_format) {
        case SPK_MLS_WIRE_PUBLIC:
            spk_mls_public_message_read(r, &out->u.pub);
            break;
        case SPK_MLS_WIRE_PRIVATE:
            spk_mls_private_message_read(r, &out->u.priv);
            break;
        case SPK_MLS_WIRE_WELCOME:
            spk_mls_welcome_read(r, &out->u.welcome);
            break;
        case SPK_MLS_WIRE_GROUP_INFO:
            spk_mls_group_info_read(r, &out->u.group_info);
            break;
        case SPK_MLS_WIRE_KEY_PACKAGE:
            spk_mls_key_package_read(r, &out->u.key_package);
            break;
        default:
            spk_mls_reader_fail(r, SPK_EDECODE);
            break;
        }
    }
    SPK_MLS_READ_END(r, message, out);
}

int spk_mls_message_write(spk_mls_writer_t *w, const spk_mls_message_t *in)
{
    spk_mls_write_u16(w, in->version);
    spk_mls_write_u16(w, in->wire_format);
    switch (in->wire_format) {
    case SPK_MLS_WIRE_PUBLIC:
        return spk_mls_public_message_write(w, &in->u.pub);
    case SPK_MLS_WIRE_PRIVATE:
        return spk_mls_private_message_write(w, &in->u.priv);
    case SPK_MLS_WIRE_WELCOME:
        return spk_mls_welcome_write(w, &in->u.welcome);
    case SPK_MLS_WIRE_GROUP_INFO:
        return spk_mls_group_info_write(w, &in->u.group_info);
    case SPK_MLS_WIRE_KEY_PACKAGE:
        return spk_mls_key_package_write(w, &in->u.key_package);
    default:
        if (w->err == 0) {
            w->err = SPK_EINVAL;
        }
        return w->err;
    }
}

void spk_mls_message_free(spk_mls_message_t *x)
{
    switch (x->wire_format) {
    case SPK_MLS_WIRE_PUBLIC:
        spk_mls_public_message_free(&x->u.pub);
        break;
    case SPK_MLS_WIRE_PRIVATE:
        spk_mls_private_message_free(&x->u.priv);
        break;
    case SPK_MLS_WIRE_WELCOME:
        spk_mls_welcome_free(&x->u.welcome);
        break;
    case SPK_MLS_WIRE_GROUP_INFO:
        spk_mls_group_info_free(&x->u.group_info);
        break;
    case SPK_MLS_WIRE_KEY_PACKAGE:
        spk_mls_key_package_free(&x->u.key_package);
        break;
    default:
        break;
    }
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(message)

/* ---- routing header ---- */

static int peek_public(spk_mls_reader_t *r, mls_peek_t *out)
{
    const uint8_t *ad;
    size_t ad_len;
    spk_mls_read_opaque_v(r, &out->group_id, &out->group_id_len);
    spk_mls_read_u64(r, &out->epoch);
    spk_mls_read_u8(r, &out->sender_type);
    if (r->err == 0 && (out->sender_type == SPK_MLS_SENDER_MEMBER ||
                        out->sender_type == SPK_MLS_SENDER_EXTERNAL)) {
        spk_mls_read_u32(r, &out->sender_index);
    } else if (r->err == 0 && out->sender_type != SPK_MLS_SENDER_NEW_MEMBER_PROPOSAL &&
               out->sender_type != SPK_MLS_SENDER_NEW_MEMBER_COMMIT) {
        spk_mls_reader_fail(r, SPK_EDECODE);
    }
    spk_mls_read_opaque_v(r, &ad, &ad_len);
    spk_mls_read_u8(r, &out->content_type);
    return r->err;
}

int spk_mls_message_peek(const uint8_t *p, size_t n, mls_peek_t *out)
{
    spk_mls_reader_t r;
    uint16_t version = 0;
    uint16_t skip16;
    memset(out, 0, sizeof(*out));
    spk_mls_reader_init(&r, p, n);
    spk_mls_read_u16(&r, &version);
    spk_mls_read_u16(&r, &out->wire_format);
    if (r.err == 0 && version != SPK_MLS_VERSION_10) {
        spk_mls_reader_fail(&r, SPK_EDECODE);
    }
    if (r.err == 0) {
        switch (out->wire_format) {
        case SPK_MLS_WIRE_PUBLIC:
            peek_public(&r, out);
            break;
        case SPK_MLS_WIRE_PRIVATE:
            spk_mls_read_opaque_v(&r, &out->group_id, &out->group_id_len);
            spk_mls_read_u64(&r, &out->epoch);
            spk_mls_read_u8(&r, &out->content_type);
            break;
        case SPK_MLS_WIRE_GROUP_INFO:
            spk_mls_read_u16(&r, &skip16); /* GroupContext.version */
            spk_mls_read_u16(&r, &skip16); /* GroupContext.cipher_suite */
            spk_mls_read_opaque_v(&r, &out->group_id, &out->group_id_len);
            spk_mls_read_u64(&r, &out->epoch);
            break;
        case SPK_MLS_WIRE_WELCOME:
        case SPK_MLS_WIRE_KEY_PACKAGE:
            break;
        default:
            spk_mls_reader_fail(&r, SPK_EDECODE);
            break;
        }
    }
    bool framed =
        out->wire_format == SPK_MLS_WIRE_PUBLIC || out->wire_format == SPK_MLS_WIRE_PRIVATE;
    if (r.err == 0 && framed &&
        (out->content_type < SPK_MLS_CONTENT_APPLICATION ||
         out->content_type > SPK_MLS_CONTENT_COMMIT)) {
        spk_mls_reader_fail(&r, SPK_EDECODE);
    }
    if (r.err != 0) {
        memset(out, 0, sizeof(*out));
    }
    return r.err;
}
