/* MLS wire structs, part 2: PreSharedKeyID (§8.4), proposals (§12.1), ProposalOrRef and Commit
 * (§12.4), UpdatePath (§7.6), GroupContext (§8.1), GroupInfo, GroupSecrets, Welcome (§12.4.3). */
#include "mls/structs.h"
#include "mls/structs_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- PreSharedKeyID (§8.4) ---- */

int spk_mls_psk_id_read(spk_mls_reader_t *r, spk_mls_psk_id_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u8(r, &out->psktype);
    if (r->err == 0) {
        if (out->psktype == SPK_MLS_PSK_EXTERNAL) {
            spk_mls_read_opaque_v_dup(r, &out->psk_id);
        } else if (out->psktype == SPK_MLS_PSK_RESUMPTION) {
            spk_mls_read_u8(r, &out->usage);
            if (r->err == 0 && (out->usage < 1 || out->usage > 3)) {
                spk_mls_reader_fail(r, SPK_EDECODE);
            }
            spk_mls_read_opaque_v_dup(r, &out->psk_group_id);
            spk_mls_read_u64(r, &out->psk_epoch);
        } else {
            spk_mls_reader_fail(r, SPK_EDECODE);
        }
    }
    spk_mls_read_opaque_v_dup(r, &out->psk_nonce);
    SPK_MLS_READ_END(r, psk_id, out);
}

int spk_mls_psk_id_write(spk_mls_writer_t *w, const spk_mls_psk_id_t *in)
{
    spk_mls_write_u8(w, in->psktype);
    if (in->psktype == SPK_MLS_PSK_EXTERNAL) {
        spk_mls_write_opaque_v(w, in->psk_id.p, in->psk_id.n);
    } else if (in->psktype == SPK_MLS_PSK_RESUMPTION) {
        spk_mls_write_u8(w, in->usage);
        spk_mls_write_opaque_v(w, in->psk_group_id.p, in->psk_group_id.n);
        spk_mls_write_u64(w, in->psk_epoch);
    } else if (w->err == 0) {
        w->err = SPK_EINVAL;
    }
    return spk_mls_write_opaque_v(w, in->psk_nonce.p, in->psk_nonce.n);
}

void spk_mls_psk_id_free(spk_mls_psk_id_t *x)
{
    spk_mls_bytes_free(&x->psk_id);
    spk_mls_bytes_free(&x->psk_group_id);
    spk_mls_bytes_free(&x->psk_nonce);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(psk_id)
SPK_MLS_ELEM_ADAPTERS(psk_id)

/* ---- Proposal (§12.1) ---- */

int spk_mls_proposal_body_read(spk_mls_reader_t *r, uint16_t type, spk_mls_proposal_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = type;
    switch (type) {
    case SPK_MLS_PROPOSAL_ADD:
        spk_mls_key_package_read(r, &out->u.add);
        break;
    case SPK_MLS_PROPOSAL_UPDATE:
        spk_mls_leaf_node_read(r, &out->u.update);
        break;
    case SPK_MLS_PROPOSAL_REMOVE:
        spk_mls_read_u32(r, &out->u.remove);
        break;
    case SPK_MLS_PROPOSAL_PSK:
        spk_mls_psk_id_read(r, &out->u.psk);
        break;
    case SPK_MLS_PROPOSAL_REINIT:
        spk_mls_read_opaque_v_dup(r, &out->u.reinit.group_id);
        spk_mls_read_u16(r, &out->u.reinit.version);
        spk_mls_read_u16(r, &out->u.reinit.cipher_suite);
        spk_mls_extensions_read(r, &out->u.reinit.extensions);
        break;
    case SPK_MLS_PROPOSAL_EXTERNAL_INIT:
        spk_mls_read_opaque_v_dup(r, &out->u.external_init);
        break;
    case SPK_MLS_PROPOSAL_GCE:
        spk_mls_extensions_read(r, &out->u.gce);
        break;
    default:
        /* Proposal bodies carry no length: an unknown type cannot be skipped. */
        spk_mls_reader_fail(r, SPK_EDECODE);
        break;
    }
    SPK_MLS_READ_END(r, proposal, out);
}

int spk_mls_proposal_body_write(spk_mls_writer_t *w, const spk_mls_proposal_t *in)
{
    switch (in->type) {
    case SPK_MLS_PROPOSAL_ADD:
        return spk_mls_key_package_write(w, &in->u.add);
    case SPK_MLS_PROPOSAL_UPDATE:
        return spk_mls_leaf_node_write(w, &in->u.update);
    case SPK_MLS_PROPOSAL_REMOVE:
        return spk_mls_write_u32(w, in->u.remove);
    case SPK_MLS_PROPOSAL_PSK:
        return spk_mls_psk_id_write(w, &in->u.psk);
    case SPK_MLS_PROPOSAL_REINIT:
        spk_mls_write_opaque_v(w, in->u.reinit.group_id.p, in->u.reinit.group_id.n);
        spk_mls_write_u16(w, in->u.reinit.version);
        spk_mls_write_u16(w, in->u.reinit.cipher_suite);
        return spk_mls_extensions_write(w, &in->u.reinit.extensions);
    case SPK_MLS_PROPOSAL_EXTERNAL_INIT:
        return spk_mls_write_opaque_v(w, in->u.external_init.p, in->u.external_init.n);
    case SPK_MLS_PROPOSAL_GCE:
        return spk_mls_extensions_write(w, &in->u.gce);
    default:
        if (w->err == 0) {
            w->err = SPK_EINVAL;
        }
        return w->err;
    }
}

int spk_mls_proposal_read(spk_mls_reader_t *r, spk_mls_proposal_t *out)
{
    uint16_t type = 0;
    memset(out, 0, sizeof(*out));
    if (spk_mls_read_u16(r, &type) != 0) {
        return r->err;
    }
    return spk_mls_proposal_body_read(r, type, out);
}

int spk_mls_proposal_write(spk_mls_writer_t *w, const spk_mls_proposal_t *in)
{
    spk_mls_write_u16(w, in->type);
    return spk_mls_proposal_body_write(w, in);
}

void spk_mls_proposal_free(spk_mls_proposal_t *x)
{
    switch (x->type) {
    case SPK_MLS_PROPOSAL_ADD:
        spk_mls_key_package_free(&x->u.add);
        break;
    case SPK_MLS_PROPOSAL_UPDATE:
        spk_mls_leaf_node_free(&x->u.update);
        break;
    case SPK_MLS_PROPOSAL_PSK:
        spk_mls_psk_id_free(&x->u.psk);
        break;
    case SPK_MLS_PROPOSAL_REINIT:
        spk_mls_bytes_free(&x->u.reinit.group_id);
        spk_mls_extensions_free(&x->u.reinit.extensions);
        break;
    case SPK_MLS_PROPOSAL_EXTERNAL_INIT:
        spk_mls_bytes_free(&x->u.external_init);
        break;
    case SPK_MLS_PROPOSAL_GCE:
        spk_mls_extensions_free(&x->u.gce);
        break;
    default:
        break;
    }
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(proposal)

int spk_mls_proposal_or_ref_read(spk_mls_reader_t *r, spk_mls_proposal_or_ref_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u8(r, &out->type);
    if (r->err == 0) {
        if (out->type == SPK_MLS_POR_PROPOSAL) {
            spk_mls_proposal_read(r, &out->proposal);
        } else if (out->type == SPK_MLS_POR_REFERENCE) {
            spk_mls_read_opaque_v_dup(r, &out->reference);
        } else {
            spk_mls_reader_fail(r, SPK_EDECODE);
        }
    }
    SPK_MLS_READ_END(r, proposal_or_ref, out);
}

int spk_mls_proposal_or_ref_write(spk_mls_writer_t *w, const spk_mls_proposal_or_ref_t *in)
{
    spk_mls_write_u8(w, in->type);
    if (in->type == SPK_MLS_POR_PROPOSAL) {
        return spk_mls_proposal_write(w, &in->proposal);
    }
    if (in->type == SPK_MLS_POR_REFERENCE) {
        return spk_mls_write_opaque_v(w, in->reference.p, in->reference.n);
    }
    if (w->err == 0) {
        w->err = SPK_EINVAL;
    }
    return w->err;
}

void spk_mls_proposal_or_ref_free(spk_mls_proposal_or_ref_t *x)
{
    spk_mls_proposal_free(&x->proposal);
    spk_mls_bytes_free(&x->reference);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(proposal_or_ref)
SPK_MLS_ELEM_ADAPTERS(proposal_or_ref)

/* ---- UpdatePath (§7.6) ---- */

int spk_mls_hpke_ciphertext_read(spk_mls_reader_t *r, spk_mls_hpke_ciphertext_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->kem_output);
    spk_mls_read_opaque_v_dup(r, &out->ciphertext);
    SPK_MLS_READ_END(r, hpke_ciphertext, out);
}

int spk_mls_hpke_ciphertext_write(spk_mls_writer_t *w, const spk_mls_hpke_ciphertext_t *in)
{
    spk_mls_write_opaque_v(w, in->kem_output.p, in->kem_output.n);
    return spk_mls_write_opaque_v(w, in->ciphertext.p, in->ciphertext.n);
}

void spk_mls_hpke_ciphertext_free(spk_mls_hpke_ciphertext_t *x)
{
    spk_mls_bytes_free(&x->kem_output);
    spk_mls_bytes_free(&x->ciphertext);
}

SPK_MLS_DEFINE_CODEC(hpke_ciphertext)
SPK_MLS_ELEM_ADAPTERS(hpke_ciphertext)

int spk_mls_update_path_node_read(spk_mls_reader_t *r, spk_mls_update_path_node_t *out)
{
    void *a;
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->encryption_key);
    spk_mls_vec_read(r, &a, &out->n_secrets, sizeof(spk_mls_hpke_ciphertext_t), SPK_MLS_MAX_LIST,
                     hpke_ciphertext_rd_, hpke_ciphertext_fr_);
    out->secrets = a;
    SPK_MLS_READ_END(r, update_path_node, out);
}

int spk_mls_update_path_node_write(spk_mls_writer_t *w, const spk_mls_update_path_node_t *in)
{
    spk_mls_write_opaque_v(w, in->encryption_key.p, in->encryption_key.n);
    return spk_mls_vec_write(w, in->secrets, in->n_secrets, sizeof(spk_mls_hpke_ciphertext_t),
                             hpke_ciphertext_wr_);
}

void spk_mls_update_path_node_free(spk_mls_update_path_node_t *x)
{
    spk_mls_bytes_free(&x->encryption_key);
    spk_mls_vec_free(x->secrets, x->n_secrets, sizeof(spk_mls_hpke_ciphertext_t),
                     hpke_ciphertext_fr_);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(update_path_node)
SPK_MLS_ELEM_ADAPTERS(update_path_node)

int spk_mls_update_path_read(spk_mls_reader_t *r, spk_mls_update_path_t *out)
{
    void *a;
    memset(out, 0, sizeof(*out));
    spk_mls_leaf_node_read(r, &out->leaf_node);
    spk_mls_vec_read(r, &a, &out->n_nodes, sizeof(spk_mls_update_path_node_t), SPK_MLS_MAX_PATH,
                     update_path_node_rd_, update_path_node_fr_);
    out->nodes = a;
    SPK_MLS_READ_END(r, update_path, out);
}

int spk_mls_update_path_write(spk_mls_writer_t *w, const spk_mls_update_path_t *in)
{
    spk_mls_leaf_node_write(w, &in->leaf_node);
    return spk_mls_vec_write(w, in->nodes, in->n_nodes, sizeof(spk_mls_update_path_node_t),
                             update_path_node_wr_);
}

void spk_mls_update_path_free(spk_mls_update_path_t *x)
{
    spk_mls_leaf_node_free(&x->leaf_node);
    spk_mls_vec_free(x->nodes, x->n_nodes, sizeof(spk_mls_update_path_node_t),
                     update_path_node_fr_);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(update_path)

/* ---- Commit (§12.4) ---- */

int spk_mls_commit_read(spk_mls_reader_t *r, spk_mls_commit_t *out)
{
    void *a;
    memset(out, 0, sizeof(*out));
    spk_mls_vec_read(r, &a, &out->n_proposals, sizeof(spk_mls_proposal_or_ref_t), SPK_MLS_MAX_LIST,
                     proposal_or_ref_rd_, proposal_or_ref_fr_);
    out->proposals = a;
    spk_mls_read_optional(r, &out->has_path);
    if (r->err == 0 && out->has_path) {
        spk_mls_update_path_read(r, &out->path);
    }
    SPK_MLS_READ_END(r, commit, out);
}

int spk_mls_commit_write(spk_mls_writer_t *w, const spk_mls_commit_t *in)
{
    spk_mls_vec_write(w, in->proposals, in->n_proposals, sizeof(spk_mls_proposal_or_ref_t),
                      proposal_or_ref_wr_);
    spk_mls_write_optional(w, in->has_path);
    if (in->has_path) {
        spk_mls_update_path_write(w, &in->path);
    }
    return w->err;
}

void spk_mls_commit_free(spk_mls_commit_t *x)
{
    spk_mls_vec_free(x->proposals, x->n_proposals, sizeof(spk_mls_proposal_or_ref_t),
                     proposal_or_ref_fr_);
    spk_mls_update_path_free(&x->path);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(commit)

/* ---- GroupContext (§8.1) ---- */

int spk_mls_group_context_read(spk_mls_reader_t *r, spk_mls_group_context_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->version);
    spk_mls_read_u16(r, &out->cipher_suite);
    spk_mls_read_opaque_v_dup(r, &out->group_id);
    spk_mls_read_u64(r, &out->epoch);
    spk_mls_read_opaque_v_dup(r, &out->tree_hash);
    spk_mls_read_opaque_v_dup(r, &out->confirmed_transcript_hash);
    spk_mls_extensions_read(r, &out->extensions);
    SPK_MLS_READ_END(r, group_context, out);
}

int spk_mls_group_context_write(spk_mls_writer_t *w, const spk_mls_group_context_t *in)
{
    spk_mls_write_u16(w, in->version);
    spk_mls_write_u16(w, in->cipher_suite);
    spk_mls_write_opaque_v(w, in->group_id.p, in->group_id.n);
    spk_mls_write_u64(w, in->epoch);
    spk_mls_write_opaque_v(w, in->tree_hash.p, in->tree_hash.n);
    spk_mls_write_opaque_v(w, in->confirmed_transcript_hash.p, in->confirmed_transcript_hash.n);
    return spk_mls_extensions_write(w, &in->extensions);
}

void spk_mls_group_context_free(spk_mls_group_context_t *x)
{
    spk_mls_bytes_free(&x->group_id);
    spk_mls_bytes_free(&x->tree_hash);
    spk_mls_bytes_free(&x->confirmed_transcript_hash);
    spk_mls_extensions_free(&x->extensions);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(group_context)

/* ---- GroupInfo (§12.4.3) ---- */

int spk_mls_group_info_tbs_write(spk_mls_writer_t *w, const spk_mls_group_info_t *in)
{
    spk_mls_group_context_write(w, &in->group_context);
    spk_mls_extensions_write(w, &in->extensions);
    spk_mls_write_opaque_v(w, in->confirmation_tag.p, in->confirmation_tag.n);
    return spk_mls_write_u32(w, in->signer);
}

int spk_mls_group_info_read(spk_mls_reader_t *r, spk_mls_group_info_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_group_context_read(r, &out->group_context);
    spk_mls_extensions_read(r, &out->extensions);
    spk_mls_read_opaque_v_dup(r, &out->confirmation_tag);
    spk_mls_read_u32(r, &out->signer);
    spk_mls_read_opaque_v_dup(r, &out->signature);
    SPK_MLS_READ_END(r, group_info, out);
}

int spk_mls_group_info_write(spk_mls_writer_t *w, const spk_mls_group_info_t *in)
{
    spk_mls_group_info_tbs_write(w, in);
    return spk_mls_write_opaque_v(w, in->signature.p, in->signature.n);
}

void spk_mls_group_info_free(spk_mls_group_info_t *x)
{
    spk_mls_group_context_free(&x->group_context);
    spk_mls_extensions_free(&x->extensions);
    spk_mls_bytes_free(&x->confirmation_tag);
    spk_mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(group_info)

/* ---- GroupSecrets (§12.4.3.1) ---- */

int spk_mls_group_secrets_read(spk_mls_reader_t *r, spk_mls_group_secrets_t *out)
{
    void *a;
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->joiner_secret);
    spk_mls_read_optional(r, &out->has_path_secret);
    if (r->err == 0 && out->has_path_secret) {
        spk_mls_read_opaque_v_dup(r, &out->path_secret);
    }
    spk_mls_vec_read(r, &a, &out->n_psks, sizeof(spk_mls_psk_id_t), SPK_MLS_MAX_LIST, psk_id_rd_,
                     psk_id_fr_);
    out->psks = a;
    SPK_MLS_READ_END(r, group_secrets, out);
}

int spk_mls_group_secrets_write(spk_mls_writer_t *w, const spk_mls_group_secrets_t *in)
{
    spk_mls_write_opaque_v(w, in->joiner_secret.p, in->joiner_secret.n);
    spk_mls_write_optional(w, in->has_path_secret);
    if (in->has_path_secret) {
        spk_mls_write_opaque_v(w, in->path_secret.p, in->path_secret.n);
    }
    return spk_mls_vec_write(w, in->psks, in->n_psks, sizeof(spk_mls_psk_id_t), psk_id_wr_);
}

void spk_mls_group_secrets_free(spk_mls_group_secrets_t *x)
{
    /* spk_mls_bytes_free wipes before freeing. */
    spk_mls_bytes_free(&x->joiner_secret);
    spk_mls_bytes_free(&x->path_secret);
    spk_mls_vec_free(x->psks, x->n_psks, sizeof(spk_mls_psk_id_t), psk_id_fr_);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(group_secrets)

/* ---- EncryptedGroupSecrets and Welcome (§12.4.3.1) ---- */

int spk_mls_encrypted_group_secrets_read(spk_mls_reader_t *r,
                                         spk_mls_encrypted_group_secrets_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->new_member);
    spk_mls_hpke_ciphertext_read(r, &out->encrypted_group_secrets);
    SPK_MLS_READ_END(r, encrypted_group_secrets, out);
}

int spk_mls_encrypted_group_secrets_write(spk_mls_writer_t *w,
                                          const spk_mls_encrypted_group_secrets_t *in)
{
    spk_mls_write_opaque_v(w, in->new_member.p, in->new_member.n);
    return spk_mls_hpke_ciphertext_write(w, &in->encrypted_group_secrets);
}

void spk_mls_encrypted_group_secrets_free(spk_mls_encrypted_group_secrets_t *x)
{
    spk_mls_bytes_free(&x->new_member);
    spk_mls_hpke_ciphertext_free(&x->encrypted_group_secrets);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(encrypted_group_secrets)
SPK_MLS_ELEM_ADAPTERS(encrypted_group_secrets)

int spk_mls_welcome_read(spk_mls_reader_t *r, spk_mls_welcome_t *out)
{
    void *a;
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->cipher_suite);
    spk_mls_vec_read(r, &a, &out->n_secrets, sizeof(spk_mls_encrypted_group_secrets_t),
                     SPK_MLS_MAX_LIST, encrypted_group_secrets_rd_, encrypted_group_secrets_fr_);
    out->secrets = a;
    spk_mls_read_opaque_v_dup(r, &out->encrypted_group_info);
    SPK_MLS_READ_END(r, welcome, out);
}

int spk_mls_welcome_write(spk_mls_writer_t *w, const spk_mls_welcome_t *in)
{
    spk_mls_write_u16(w, in->cipher_suite);
    spk_mls_vec_write(w, in->secrets, in->n_secrets, sizeof(spk_mls_encrypted_group_secrets_t),
                      encrypted_group_secrets_wr_);
    return spk_mls_write_opaque_v(w, in->encrypted_group_info.p, in->encrypted_group_info.n);
}

void spk_mls_welcome_free(spk_mls_welcome_t *x)
{
    spk_mls_vec_free(x->secrets, x->n_secrets, sizeof(spk_mls_encrypted_group_secrets_t),
                     encrypted_group_secrets_fr_);
    spk_mls_bytes_free(&x->encrypted_group_info);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(welcome)
