/* messages.json: every field decodes with its struct and re-encodes byte-exactly (RFC 9420 §6,
 * §7, §10, §12). Also checks that a trailing byte and a one-byte truncation are rejected. */
#include <stdlib.h>
#include <string.h>

#include "mls/structs.h"
#include "mls/tree.h"
#include "spk/error.h"
#include "vectors.h"

/* Decodes p as the field's struct and re-encodes it into out. */
typedef int (*roundtrip_fn)(const uint8_t *p, size_t n, uint16_t arg, spk_mls_bytes_t *out);

/* The routing header read by spk_mls_message_peek agrees with the full decode. */
static bool peek_matches(const spk_mls_message_t *m, const uint8_t *p, size_t n)
{
    mls_peek_t info;
    const spk_mls_bytes_t *gid = NULL;
    uint64_t epoch = 0;
    uint8_t ct = 0;
    uint8_t st = 0;
    uint32_t si = 0;
    if (spk_mls_message_peek(p, n, &info) != 0) {
        return false;
    }
    if (m->wire_format == SPK_MLS_WIRE_PUBLIC) {
        const spk_mls_framed_content_t *c = &m->u.pub.content;
        gid = &c->group_id;
        epoch = c->epoch;
        ct = c->content_type;
        st = c->sender.type;
        si = c->sender.index;
    } else if (m->wire_format == SPK_MLS_WIRE_PRIVATE) {
        gid = &m->u.priv.group_id;
        epoch = m->u.priv.epoch;
        ct = m->u.priv.content_type;
    } else if (m->wire_format == SPK_MLS_WIRE_GROUP_INFO) {
        gid = &m->u.group_info.group_context.group_id;
        epoch = m->u.group_info.group_context.epoch;
    }
    bool same_gid = gid == NULL ? info.group_id_len == 0
                                : spk_mls_bytes_eq_raw(gid, info.group_id, info.group_id_len);
    return info.wire_format == m->wire_format && same_gid && info.epoch == epoch &&
           info.content_type == ct && info.sender_type == st && info.sender_index == si;
}

static int rt_message(const uint8_t *p, size_t n, uint16_t wire_format, spk_mls_bytes_t *out)
{
    spk_mls_message_t m;
    int rc = spk_mls_message_decode(&m, p, n);
    if (rc != 0) {
        return rc;
    }
    if (m.wire_format != wire_format || !peek_matches(&m, p, n)) {
        rc = SPK_EDECODE;
    } else {
        rc = spk_mls_message_encode(&m, out);
    }
    spk_mls_message_free(&m);
    return rc;
}

static int rt_tree(const uint8_t *p, size_t n, uint16_t arg, spk_mls_bytes_t *out)
{
    spk_mls_tree_t t;
    int rc = spk_mls_tree_decode(&t, p, n);
    if (rc == 0) {
        rc = spk_mls_tree_encode(&t, out);
        spk_mls_tree_free(&t);
    }
    return rc;
}

static int rt_group_secrets(const uint8_t *p, size_t n, uint16_t arg, spk_mls_bytes_t *out)
{
    spk_mls_group_secrets_t gs;
    int rc = spk_mls_group_secrets_decode(&gs, p, n);
    if (rc == 0) {
        rc = spk_mls_group_secrets_encode(&gs, out);
        spk_mls_group_secrets_free(&gs);
    }
    return rc;
}

static int rt_commit(const uint8_t *p, size_t n, uint16_t arg, spk_mls_bytes_t *out)
{
    spk_mls_commit_t c;
    int rc = spk_mls_commit_decode(&c, p, n);
    if (rc == 0) {
        rc = spk_mls_commit_encode(&c, out);
        spk_mls_commit_free(&c);
    }
    return rc;
}

/* A proposal body (without proposal_type) of the given type. */
static int rt_proposal_body(const uint8_t *p, size_t n, uint16_t type, spk_mls_bytes_t *out)
{
    spk_mls_reader_t r;
    spk_mls_proposal_t prop;
    spk_mls_writer_t w;
    spk_mls_reader_init(&r, p, n);
    int rc = spk_mls_proposal_body_read(&r, type, &prop);
    if (rc == 0) {
        rc = spk_mls_reader_done(&r);
    }
    if (rc != 0) {
        spk_mls_proposal_free(&prop);
        return rc;
    }
    spk_mls_writer_init(&w);
    spk_mls_proposal_body_write(&w, &prop);
    spk_mls_proposal_free(&prop);
    return spk_mls_writer_take(&w, out);
}

typedef struct {
    const char *key;
    roundtrip_fn fn;
    uint16_t arg;
} field_t;

static const field_t fields[] = {
    {"mls_welcome", rt_message, SPK_MLS_WIRE_WELCOME},
    {"mls_group_info", rt_message, SPK_MLS_WIRE_GROUP_INFO},
    {"mls_key_package", rt_message, SPK_MLS_WIRE_KEY_PACKAGE},
    {"ratchet_tree", rt_tree, 0},
    {"group_secrets", rt_group_secrets, 0},
    {"add_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_ADD},
    {"update_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_UPDATE},
    {"remove_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_REMOVE},
    {"pre_shared_key_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_PSK},
    {"re_init_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_REINIT},
    {"external_init_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_EXTERNAL_INIT},
    {"group_context_extensions_proposal", rt_proposal_body, SPK_MLS_PROPOSAL_GCE},
    {"commit", rt_commit, 0},
    {"public_message_application", rt_message, SPK_MLS_WIRE_PUBLIC},
    {"public_message_proposal", rt_message, SPK_MLS_WIRE_PUBLIC},
    {"public_message_commit", rt_message, SPK_MLS_WIRE_PUBLIC},
    {"private_message", rt_message, SPK_MLS_WIRE_PRIVATE},
};

static bool check_field(const json_t *entry, const field_t *f)
{
    spk_mls_bytes_t in;
    spk_mls_bytes_t out = {NULL, 0};
    if (!vec_hex(entry, f->key, &in)) {
        return false;
    }
    bool ok =
        vec_ok(f->key, f->fn(in.p, in.n, f->arg, &out)) && vec_eq(f->key, out.p, out.n, in.p, in.n);
    spk_mls_bytes_free(&out);
    if (ok && in.n > 0) {
        /* One trailing byte is garbage; one byte less is truncated. */
        uint8_t *longer = malloc(in.n + 1);
        if (longer == NULL) {
            spk_mls_bytes_free(&in);
            return vec_fail("out of memory");
        }
        memcpy(longer, in.p, in.n);
        longer[in.n] = 0;
        if (f->fn(longer, in.n + 1, f->arg, &out) == 0) {
            spk_mls_bytes_free(&out);
            ok = vec_fail("%s: trailing byte accepted", f->key);
        }
        if (ok && f->fn(in.p, in.n - 1, f->arg, &out) == 0) {
            spk_mls_bytes_free(&out);
            ok = vec_fail("%s: truncated input accepted", f->key);
        }
        free(longer);
    }
    spk_mls_bytes_free(&in);
    return ok;
}

bool vec_messages(const json_t *entry, size_t index)
{
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!check_field(entry, &fields[i])) {
            ok = false;
        }
    }
    return ok;
}
