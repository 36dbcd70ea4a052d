/* MLS wire structs, part 1: generic vectors, Credential (§5.3), Capabilities, Lifetime,
 * Extension, LeafNode (§7.2), ParentNode (§7.1), Node (§12.4.3.3), KeyPackage (§10). */
#include "mls/structs.h"
#include "mls/structs_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- generic vectors ---- */

int spk_mls_vec_read(spk_mls_reader_t *r, void **arr, size_t *n, size_t elem_size, size_t max,
                     spk_mls_elem_read_fn rd, spk_mls_elem_free_fn fr)
{
    spk_mls_reader_t sub;
    uint8_t *a = NULL;
    size_t cnt = 0;
    size_t cap = 0;
    int rc = 0;

    *arr = NULL;
    *n = 0;
    if (spk_mls_read_sub(r, &sub) != 0) {
        return r->err;
    }
    while (spk_mls_reader_remaining(&sub) > 0) {
        if (cnt == max) {
            rc = SPK_ERANGE;
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            if (ncap > max) {
                ncap = max;
            }
            uint8_t *na = realloc(a, ncap * elem_size);
            if (na == NULL) {
                rc = SPK_ENOMEM;
                break;
            }
            a = na;
            cap = ncap;
        }
        memset(a + cnt * elem_size, 0, elem_size);
        rc = rd(&sub, a + cnt * elem_size);
        if (rc != 0) {
            break;
        }
        cnt++;
    }
    if (rc == 0) {
        rc = spk_mls_reader_done(&sub);
    }
    if (rc != 0) {
        spk_mls_vec_free(a, cnt, elem_size, fr);
        return spk_mls_reader_fail(r, rc);
    }
    *arr = a;
    *n = cnt;
    return 0;
}

int spk_mls_vec_write(spk_mls_writer_t *w, const void *arr, size_t n, size_t elem_size,
                      spk_mls_elem_write_fn wr)
{
    size_t mark;
    const uint8_t *a = arr;
    spk_mls_write_vec_begin(w, &mark);
    for (size_t i = 0; i < n; i++) {
        wr(w, a + i * elem_size);
    }
    spk_mls_write_vec_end(w, mark);
    return w->err;
}

void spk_mls_vec_free(void *arr, size_t n, size_t elem_size, spk_mls_elem_free_fn fr)
{
    uint8_t *a = arr;
    if (a == NULL) {
        return;
    }
    if (fr != NULL) {
        for (size_t i = 0; i < n; i++) {
            fr(a + i * elem_size);
        }
    }
    free(a);
}

static int u16_rd_(spk_mls_reader_t *r, void *e)
{
    return spk_mls_read_u16(r, (uint16_t *)e);
}

static int u16_wr_(spk_mls_writer_t *w, const void *e)
{
    return spk_mls_write_u16(w, *(const uint16_t *)e);
}

static int u32_rd_(spk_mls_reader_t *r, void *e)
{
    return spk_mls_read_u32(r, (uint32_t *)e);
}

static int u32_wr_(spk_mls_writer_t *w, const void *e)
{
    return spk_mls_write_u32(w, *(const uint32_t *)e);
}

int spk_mls_u16_list_read(spk_mls_reader_t *r, spk_mls_u16_list_t *out, size_t max)
{
    void *a;
    int rc = spk_mls_vec_read(r, &a, &out->n, sizeof(uint16_t), max, u16_rd_, NULL);
    out->v = a;
    return rc;
}

int spk_mls_u16_list_write(spk_mls_writer_t *w, const spk_mls_u16_list_t *in)
{
    return spk_mls_vec_write(w, in->v, in->n, sizeof(uint16_t), u16_wr_);
}

int spk_mls_u32_vec_read(spk_mls_reader_t *r, uint32_t **arr, size_t *n, size_t max)
{
    void *a;
    int rc = spk_mls_vec_read(r, &a, n, sizeof(uint32_t), max, u32_rd_, NULL);
    *arr = a;
    return rc;
}

int spk_mls_u32_vec_write(spk_mls_writer_t *w, const uint32_t *arr, size_t n)
{
    return spk_mls_vec_write(w, arr, n, sizeof(uint32_t), u32_wr_);
}

bool spk_mls_is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && ((v >> 8) & 0xff) == (v & 0xff) && (v >> 12) <= 0xe;
}

bool spk_mls_u16_list_has(const spk_mls_u16_list_t *list, uint16_t v)
{
    for (size_t i = 0; i < list->n; i++) {
        if (list->v[i] == v) {
            return true;
        }
    }
    return false;
}

static int bytes_rd_(spk_mls_reader_t *r, void *e)
{
    return spk_mls_read_opaque_v_dup(r, (spk_mls_bytes_t *)e);
}

static int bytes_wr_(spk_mls_writer_t *w, const void *e)
{
    const spk_mls_bytes_t *b = e;
    return spk_mls_write_opaque_v(w, b->p, b->n);
}

static void bytes_fr_(void *e)
{
    spk_mls_bytes_free((spk_mls_bytes_t *)e);
}

/* ---- Credential (§5.3) ---- */

int spk_mls_credential_read(spk_mls_reader_t *r, spk_mls_credential_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->type);
    if (r->err == 0) {
        if (out->type == SPK_MLS_CRED_BASIC) {
            spk_mls_read_opaque_v_dup(r, &out->identity);
        } else if (out->type == SPK_MLS_CRED_X509) {
            void *a;
            spk_mls_vec_read(r, &a, &out->n_certs, sizeof(spk_mls_bytes_t), SPK_MLS_MAX_CERTS,
                             bytes_rd_, bytes_fr_);
            out->certs = a;
        } else {
            /* Unknown credential types have no length prefix and cannot be skipped. */
            spk_mls_reader_fail(r, SPK_EDECODE);
        }
    }
    SPK_MLS_READ_END(r, credential, out);
}

int spk_mls_credential_write(spk_mls_writer_t *w, const spk_mls_credential_t *in)
{
    spk_mls_write_u16(w, in->type);
    if (in->type == SPK_MLS_CRED_BASIC) {
        spk_mls_write_opaque_v(w, in->identity.p, in->identity.n);
    } else if (in->type == SPK_MLS_CRED_X509) {
        spk_mls_vec_write(w, in->certs, in->n_certs, sizeof(spk_mls_bytes_t), bytes_wr_);
    } else if (w->err == 0) {
        w->err = SPK_EINVAL;
    }
    return w->err;
}

void spk_mls_credential_free(spk_mls_credential_t *x)
{
    spk_mls_bytes_free(&x->identity);
    spk_mls_vec_free(x->certs, x->n_certs, sizeof(spk_mls_bytes_t), bytes_fr_);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(credential)

/* ---- Capabilities, Lifetime (§7.2) ---- */

int spk_mls_capabilities_read(spk_mls_reader_t *r, spk_mls_capabilities_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_u16_list_read(r, &out->versions, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(r, &out->cipher_suites, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(r, &out->extensions, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(r, &out->proposals, SPK_MLS_MAX_CAPS);
    spk_mls_u16_list_read(r, &out->credentials, SPK_MLS_MAX_CAPS);
    SPK_MLS_READ_END(r, capabilities, out);
}

int spk_mls_capabilities_write(spk_mls_writer_t *w, const spk_mls_capabilities_t *in)
{
    spk_mls_u16_list_write(w, &in->versions);
    spk_mls_u16_list_write(w, &in->cipher_suites);
    spk_mls_u16_list_write(w, &in->extensions);
    spk_mls_u16_list_write(w, &in->proposals);
    spk_mls_u16_list_write(w, &in->credentials);
    return w->err;
}

void spk_mls_capabilities_free(spk_mls_capabilities_t *x)
{
    free(x->versions.v);
    free(x->cipher_suites.v);
    free(x->extensions.v);
    free(x->proposals.v);
    free(x->credentials.v);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(capabilities)

int spk_mls_lifetime_read(spk_mls_reader_t *r, spk_mls_lifetime_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u64(r, &out->not_before);
    spk_mls_read_u64(r, &out->not_after);
    SPK_MLS_READ_END(r, lifetime, out);
}

int spk_mls_lifetime_write(spk_mls_writer_t *w, const spk_mls_lifetime_t *in)
{
    spk_mls_write_u64(w, in->not_before);
    return spk_mls_write_u64(w, in->not_after);
}

void spk_mls_lifetime_free(spk_mls_lifetime_t *x)
{
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(lifetime)

/* ---- Extension (§7.2, §13) ---- */

int spk_mls_extension_read(spk_mls_reader_t *r, spk_mls_extension_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->type);
    spk_mls_read_opaque_v_dup(r, &out->data);
    SPK_MLS_READ_END(r, extension, out);
}

int spk_mls_extension_write(spk_mls_writer_t *w, const spk_mls_extension_t *in)
{
    spk_mls_write_u16(w, in->type);
    return spk_mls_write_opaque_v(w, in->data.p, in->data.n);
}

void spk_mls_extension_free(spk_mls_extension_t *x)
{
    spk_mls_bytes_free(&x->data);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(extension)
SPK_MLS_ELEM_ADAPTERS(extension)

int spk_mls_extensions_read(spk_mls_reader_t *r, spk_mls_extensions_t *out)
{
    void *a;
    int rc = spk_mls_vec_read(r, &a, &out->n, sizeof(spk_mls_extension_t), SPK_MLS_MAX_EXTENSIONS,
                              extension_rd_, extension_fr_);
    out->v = a;
    return rc;
}

int spk_mls_extensions_write(spk_mls_writer_t *w, const spk_mls_extensions_t *in)
{
    return spk_mls_vec_write(w, in->v, in->n, sizeof(spk_mls_extension_t), extension_wr_);
}

void spk_mls_extensions_free(spk_mls_extensions_t *e)
{
    spk_mls_vec_free(e->v, e->n, sizeof(spk_mls_extension_t), extension_fr_);
    e->v = NULL;
    e->n = 0;
}

int spk_mls_extensions_copy(spk_mls_extensions_t *dst, const spk_mls_extensions_t *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0) {
        return 0;
    }
    dst->v = calloc(src->n, sizeof(spk_mls_extension_t));
    if (dst->v == NULL) {
        return SPK_ENOMEM;
    }
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].type = src->v[i].type;
        if (spk_mls_bytes_copy(&dst->v[i].data, &src->v[i].data) != 0) {
            dst->n = i;
            spk_mls_extensions_free(dst);
            return SPK_ENOMEM;
        }
    }
    dst->n = src->n;
    return 0;
}

const spk_mls_extension_t *spk_mls_extensions_find(const spk_mls_extensions_t *e, uint16_t type)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->v[i].type == type) {
            return &e->v[i];
        }
    }
    return NULL;
}

/* ---- LeafNode (§7.2) ---- */

/* The LeafNode fields up to and including extensions (shared by LeafNode and LeafNodeTBS). */
static int leaf_node_content_write(spk_mls_writer_t *w, const spk_mls_leaf_node_t *in)
{
    spk_mls_write_opaque_v(w, in->encryption_key.p, in->encryption_key.n);
    spk_mls_write_opaque_v(w, in->signature_key.p, in->signature_key.n);
    spk_mls_credential_write(w, &in->credential);
    spk_mls_capabilities_write(w, &in->capabilities);
    spk_mls_write_u8(w, in->source);
    switch (in->source) {
    case SPK_MLS_LEAF_SRC_KEY_PACKAGE:
        spk_mls_lifetime_write(w, &in->lifetime);
        break;
    case SPK_MLS_LEAF_SRC_UPDATE:
        break;
    case SPK_MLS_LEAF_SRC_COMMIT:
        spk_mls_write_opaque_v(w, in->parent_hash.p, in->parent_hash.n);
        break;
    default:
        if (w->err == 0) {
            w->err = SPK_EINVAL;
        }
        break;
    }
    spk_mls_extensions_write(w, &in->extensions);
    return w->err;
}

int spk_mls_leaf_node_read(spk_mls_reader_t *r, spk_mls_leaf_node_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->encryption_key);
    spk_mls_read_opaque_v_dup(r, &out->signature_key);
    spk_mls_credential_read(r, &out->credential);
    spk_mls_capabilities_read(r, &out->capabilities);
    spk_mls_read_u8(r, &out->source);
    if (r->err == 0) {
        switch (out->source) {
        case SPK_MLS_LEAF_SRC_KEY_PACKAGE:
            spk_mls_lifetime_read(r, &out->lifetime);
            break;
        case SPK_MLS_LEAF_SRC_UPDATE:
            break;
        case SPK_MLS_LEAF_SRC_COMMIT:
            spk_mls_read_opaque_v_dup(r, &out->parent_hash);
            break;
        default:
            spk_mls_reader_fail(r, SPK_EDECODE);
            break;
        }
    }
    spk_mls_extensions_read(r, &out->extensions);
    spk_mls_read_opaque_v_dup(r, &out->signature);
    SPK_MLS_READ_END(r, leaf_node, out);
}

int spk_mls_leaf_node_write(spk_mls_writer_t *w, const spk_mls_leaf_node_t *in)
{
    leaf_node_content_write(w, in);
    return spk_mls_write_opaque_v(w, in->signature.p, in->signature.n);
}

int spk_mls_leaf_node_tbs_write(spk_mls_writer_t *w, const spk_mls_leaf_node_t *ln,
                                const uint8_t *group_id, size_t group_id_len, uint32_t leaf_index)
{
    leaf_node_content_write(w, ln);
    if (ln->source == SPK_MLS_LEAF_SRC_UPDATE || ln->source == SPK_MLS_LEAF_SRC_COMMIT) {
        spk_mls_write_opaque_v(w, group_id, group_id_len);
        spk_mls_write_u32(w, leaf_index);
    }
    return w->err;
}

void spk_mls_leaf_node_free(spk_mls_leaf_node_t *x)
{
    spk_mls_bytes_free(&x->encryption_key);
    spk_mls_bytes_free(&x->signature_key);
    spk_mls_credential_free(&x->credential);
    spk_mls_capabilities_free(&x->capabilities);
    spk_mls_bytes_free(&x->parent_hash);
    spk_mls_extensions_free(&x->extensions);
    spk_mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(leaf_node)

int spk_mls_leaf_node_copy(spk_mls_leaf_node_t *dst, const spk_mls_leaf_node_t *src)
{
    spk_mls_bytes_t enc;
    memset(dst, 0, sizeof(*dst));
    int rc = spk_mls_leaf_node_encode(src, &enc);
    if (rc != 0) {
        return rc;
    }
    rc = spk_mls_leaf_node_decode(dst, enc.p, enc.n);
    spk_mls_bytes_free(&enc);
    return rc;
}

/* ---- ParentNode (§7.1) and Node ---- */

int spk_mls_parent_node_read(spk_mls_reader_t *r, spk_mls_parent_node_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_opaque_v_dup(r, &out->encryption_key);
    spk_mls_read_opaque_v_dup(r, &out->parent_hash);
    spk_mls_u32_vec_read(r, &out->unmerged_leaves, &out->n_unmerged, SPK_MLS_MAX_LIST);
    SPK_MLS_READ_END(r, parent_node, out);
}

int spk_mls_parent_node_write(spk_mls_writer_t *w, const spk_mls_parent_node_t *in)
{
    spk_mls_write_opaque_v(w, in->encryption_key.p, in->encryption_key.n);
    spk_mls_write_opaque_v(w, in->parent_hash.p, in->parent_hash.n);
    return spk_mls_u32_vec_write(w, in->unmerged_leaves, in->n_unmerged);
}

void spk_mls_parent_node_free(spk_mls_parent_node_t *x)
{
    spk_mls_bytes_free(&x->encryption_key);
    spk_mls_bytes_free(&x->parent_hash);
    free(x->unmerged_leaves);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(parent_node)

int spk_mls_parent_node_copy(spk_mls_parent_node_t *dst, const spk_mls_parent_node_t *src)
{
    memset(dst, 0, sizeof(*dst));
    if (spk_mls_bytes_copy(&dst->encryption_key, &src->encryption_key) != 0 ||
        spk_mls_bytes_copy(&dst->parent_hash, &src->parent_hash) != 0) {
        spk_mls_parent_node_free(dst);
        return SPK_ENOMEM;
    }
    if (src->n_unmerged > 0) {
        dst->unmerged_leaves = malloc(src->n_unmerged * sizeof(uint32_t));
        if (dst->unmerged_leaves == NULL) {
            spk_mls_parent_node_free(dst);
            return SPK_ENOMEM;
        }
        memcpy(dst->unmerged_leaves, src->unmerged_leaves, src->n_unmerged * sizeof(uint32_t));
        dst->n_unmerged = src->n_unmerged;
    }
    return 0;
}

/* Node as it appears inside optional<Node> (§12.4.3.3): node_type then the body. */
int spk_mls_node_read(spk_mls_reader_t *r, spk_mls_node_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u8(r, &out->type);
    if (r->err == 0) {
        if (out->type == SPK_MLS_NODE_LEAF) {
            spk_mls_leaf_node_read(r, &out->leaf);
        } else if (out->type == SPK_MLS_NODE_PARENT) {
            spk_mls_parent_node_read(r, &out->parent);
        } else {
            spk_mls_reader_fail(r, SPK_EDECODE);
        }
    }
    SPK_MLS_READ_END(r, node, out);
}

int spk_mls_node_write(spk_mls_writer_t *w, const spk_mls_node_t *in)
{
    spk_mls_write_u8(w, in->type);
    if (in->type == SPK_MLS_NODE_LEAF) {
        spk_mls_leaf_node_write(w, &in->leaf);
    } else if (in->type == SPK_MLS_NODE_PARENT) {
        spk_mls_parent_node_write(w, &in->parent);
    } else if (w->err == 0) {
        w->err = SPK_EINVAL;
    }
    return w->err;
}

void spk_mls_node_free(spk_mls_node_t *x)
{
    spk_mls_leaf_node_free(&x->leaf);
    spk_mls_parent_node_free(&x->parent);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(node)

int spk_mls_node_copy(spk_mls_node_t *dst, const spk_mls_node_t *src)
{
    int rc = 0;
    memset(dst, 0, sizeof(*dst));
    if (src->type == SPK_MLS_NODE_LEAF) {
        rc = spk_mls_leaf_node_copy(&dst->leaf, &src->leaf);
    } else if (src->type == SPK_MLS_NODE_PARENT) {
        rc = spk_mls_parent_node_copy(&dst->parent, &src->parent);
    }
    if (rc == 0) {
        dst->type = src->type;
    }
    return rc;
}

/* ---- KeyPackage (§10) ---- */

int spk_mls_key_package_read(spk_mls_reader_t *r, spk_mls_key_package_t *out)
{
    memset(out, 0, sizeof(*out));
    spk_mls_read_u16(r, &out->version);
    spk_mls_read_u16(r, &out->cipher_suite);
    spk_mls_read_opaque_v_dup(r, &out->init_key);
    spk_mls_leaf_node_read(r, &out->leaf_node);
    spk_mls_extensions_read(r, &out->extensions);
    spk_mls_read_opaque_v_dup(r, &out->signature);
    SPK_MLS_READ_END(r, key_package, out);
}

int spk_mls_key_package_tbs_write(spk_mls_writer_t *w, const spk_mls_key_package_t *kp)
{
    spk_mls_write_u16(w, kp->version);
    spk_mls_write_u16(w, kp->cipher_suite);
    spk_mls_write_opaque_v(w, kp->init_key.p, kp->init_key.n);
    spk_mls_leaf_node_write(w, &kp->leaf_node);
    return spk_mls_extensions_write(w, &kp->extensions);
}

int spk_mls_key_package_write(spk_mls_writer_t *w, const spk_mls_key_package_t *in)
{
    spk_mls_key_package_tbs_write(w, in);
    return spk_mls_write_opaque_v(w, in->signature.p, in->signature.n);
}

void spk_mls_key_package_free(spk_mls_key_package_t *x)
{
    spk_mls_bytes_free(&x->init_key);
    spk_mls_leaf_node_free(&x->leaf_node);
    spk_mls_extensions_free(&x->extensions);
    spk_mls_bytes_free(&x->signature);
    memset(x, 0, sizeof(*x));
}

SPK_MLS_DEFINE_CODEC(key_package)
