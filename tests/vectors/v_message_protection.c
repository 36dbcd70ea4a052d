/* message-protection.json: PublicMessage and PrivateMessage protect / unprotect for a Proposal,
 * a Commit and application data (RFC 9420 §6). The sender is leaf 1 of a 2-leaf tree. */
#include <string.h>

#include "mls/msgprot.h"
#include "spk/error.h"
#include "vectors.h"

typedef struct {
    spk_mls_bytes_t group_id, gc;
    uint64_t epoch;
    uint8_t sig_priv[32], sig_pub[32], enc_secret[32], sd_secret[32], membership_key[32];
} mp_case_t;

static int sig_key_cb(void *arg, uint32_t leaf, const uint8_t **pub, size_t *len)
{
    mp_case_t *c = arg;
    if (leaf != 1) {
        return SPK_ENOTFOUND;
    }
    *pub = c->sig_pub;
    *len = sizeof c->sig_pub;
    return 0;
}

static bool load_case(const json_t *e, mp_case_t *c)
{
    spk_mls_bytes_t tree_hash = {0}, cth = {0};
    spk_mls_writer_t w;
    bool ok = vec_hex(e, "group_id", &c->group_id) && vec_u64(e, "epoch", &c->epoch) &&
              vec_hex(e, "tree_hash", &tree_hash) &&
              vec_hex(e, "confirmed_transcript_hash", &cth) &&
              vec_hex_fixed(e, "signature_priv", c->sig_priv, 32) &&
              vec_hex_fixed(e, "signature_pub", c->sig_pub, 32) &&
              vec_hex_fixed(e, "encryption_secret", c->enc_secret, 32) &&
              vec_hex_fixed(e, "sender_data_secret", c->sd_secret, 32) &&
              vec_hex_fixed(e, "membership_key", c->membership_key, 32);
    if (ok) {
        /* GroupContext (§8.1) with empty extensions. */
        spk_mls_writer_init(&w);
        spk_mls_write_u16(&w, 1);
        spk_mls_write_u16(&w, SPK_MLS_CIPHER_SUITE);
        spk_mls_write_opaque_v(&w, c->group_id.p, c->group_id.n);
        spk_mls_write_u64(&w, c->epoch);
        spk_mls_write_opaque_v(&w, tree_hash.p, tree_hash.n);
        spk_mls_write_opaque_v(&w, cth.p, cth.n);
        spk_mls_write_varint(&w, 0);
        ok = vec_ok("group context", spk_mls_writer_take(&w, &c->gc));
    }
    spk_mls_bytes_free(&tree_hash);
    spk_mls_bytes_free(&cth);
    return ok;
}

/* The content body of a FramedContent, serialized as the vector gives it. */
static bool body_encode(const spk_mls_framed_content_t *fc, spk_mls_bytes_t *out)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    if (fc->content_type == SPK_MLS_CONTENT_PROPOSAL) {
        spk_mls_proposal_write(&w, &fc->proposal);
    } else if (fc->content_type == SPK_MLS_CONTENT_COMMIT) {
        spk_mls_commit_write(&w, &fc->commit);
    } else {
        spk_mls_write_bytes(&w, fc->application_data.p, fc->application_data.n);
    }
    return vec_ok("encode body", spk_mls_writer_take(&w, out));
}

static bool check_body(const spk_mls_framed_content_t *fc, uint8_t type, const json_t *e,
                       const char *key)
{
    spk_mls_bytes_t body = {0};
    if (fc->content_type != type || fc->sender.type != SPK_MLS_SENDER_MEMBER ||
        fc->sender.index != 1) {
        return vec_fail("%s: unexpected content type or sender", key);
    }
    bool ok = body_encode(fc, &body) && vec_eq_hex(key, body.p, body.n, e, key);
    spk_mls_bytes_free(&body);
    return ok;
}

static bool check_public(mp_case_t *c, const json_t *e, const char *key, const char *body_key,
                         uint8_t type)
{
    spk_mls_bytes_t raw = {0};
    spk_mls_message_t m;
    memset(&m, 0, sizeof m);
    bool ok = vec_hex(e, key, &raw) && vec_ok("decode", spk_mls_message_decode(&m, raw.p, raw.n)) &&
              (m.wire_format == SPK_MLS_WIRE_PUBLIC || vec_fail("%s is not public", key));
    ok = ok &&
         vec_ok(key, spk_mls_public_message_verify(&m.u.pub, c->gc.p, c->gc.n, c->membership_key,
                                                   c->sig_pub, 32)) &&
         check_body(&m.u.pub.content, type, e, body_key);
    if (ok) {
        /* A wrong membership key must fail. */
        uint8_t bad[32];
        memcpy(bad, c->membership_key, 32);
        bad[0] ^= 1;
        if (spk_mls_public_message_verify(&m.u.pub, c->gc.p, c->gc.n, bad, c->sig_pub, 32) !=
            SPK_EVERIFY) {
            ok = vec_fail("%s verified with a wrong membership key", key);
        }
    }
    spk_mls_message_free(&m);
    spk_mls_bytes_free(&raw);
    return ok;
}

/* Unprotects an MLSMessage(PrivateMessage) with a fresh secret tree; out gets the content. */
static bool open_private(mp_case_t *c, const uint8_t *p, size_t n, spk_mls_auth_content_t *out)
{
    spk_mls_message_t m;
    spk_mls_secret_tree_t st;
    memset(&m, 0, sizeof m);
    memset(out, 0, sizeof *out);
    bool ok = vec_ok("decode", spk_mls_message_decode(&m, p, n)) &&
              (m.wire_format == SPK_MLS_WIRE_PRIVATE || vec_fail("not a PrivateMessage"));
    if (ok && vec_ok("secret tree", spk_mls_secret_tree_init(&st, c->enc_secret, 2))) {
        ok = vec_ok("unprotect",
                    spk_mls_private_message_unprotect(&m.u.priv, c->gc.p, c->gc.n, &st,
                                                      c->sd_secret, sig_key_cb, c, out));
        if (ok) {
            /* The key is consumed: a replay must fail. */
            spk_mls_auth_content_t again;
            if (spk_mls_private_message_unprotect(&m.u.priv, c->gc.p, c->gc.n, &st, c->sd_secret,
                                                  sig_key_cb, c, &again) != SPK_ENOTFOUND) {
                spk_mls_auth_content_free(&again);
                ok = vec_fail("replayed PrivateMessage was accepted");
            }
        }
        spk_mls_secret_tree_free(&st);
    } else {
        ok = false;
    }
    spk_mls_message_free(&m);
    return ok;
}

static bool check_private(mp_case_t *c, const json_t *e, const char *key, const char *body_key,
                          uint8_t type)
{
    spk_mls_bytes_t raw = {0};
    spk_mls_auth_content_t ac;
    memset(&ac, 0, sizeof ac);
    bool ok = vec_hex(e, key, &raw) && open_private(c, raw.p, raw.n, &ac) &&
              check_body(&ac.content, type, e, body_key);
    spk_mls_auth_content_free(&ac);
    spk_mls_bytes_free(&raw);
    return ok;
}

/* Protects the content again (public and private) and unprotects the result. */
static bool round_trip(mp_case_t *c, const json_t *e, const spk_mls_framed_content_t *fc,
                       const char *body_key)
{
    uint8_t tag_bytes[32] = {1, 2, 3};
    spk_mls_bytes_t tag = {tag_bytes, sizeof tag_bytes};
    spk_mls_bytes_t msg = {0};
    spk_mls_secret_tree_t st;
    spk_mls_auth_content_t ac;
    spk_mls_message_t m;
    bool ok = true;

    int rc = spk_mls_public_message_protect(fc, &tag, c->gc.p, c->gc.n, c->sig_priv,
                                            c->membership_key, &msg);
    if (fc->content_type == SPK_MLS_CONTENT_APPLICATION) {
        ok = rc == SPK_EINVAL || vec_fail("application data was sent as PublicMessage");
    } else {
        memset(&m, 0, sizeof m);
        ok = vec_ok("public protect", rc) &&
             vec_ok("decode", spk_mls_message_decode(&m, msg.p, msg.n)) &&
             vec_ok("public verify",
                    spk_mls_public_message_verify(&m.u.pub, c->gc.p, c->gc.n, c->membership_key,
                                                  c->sig_pub, 32)) &&
             check_body(&m.u.pub.content, fc->content_type, e, body_key);
        spk_mls_message_free(&m);
    }
    spk_mls_bytes_free(&msg);
    if (!ok || !vec_ok("secret tree", spk_mls_secret_tree_init(&st, c->enc_secret, 2))) {
        return false;
    }
    ok = vec_ok("private protect",
                spk_mls_private_message_protect(fc, &tag, c->gc.p, c->gc.n, c->sig_priv, &st,
                                                c->sd_secret, 17, &msg)) &&
         open_private(c, msg.p, msg.n, &ac);
    if (ok) {
        ok = check_body(&ac.content, fc->content_type, e, body_key);
        spk_mls_auth_content_free(&ac);
    }
    spk_mls_secret_tree_free(&st);
    spk_mls_bytes_free(&msg);
    return ok;
}

/* Builds the FramedContent for a body from the vector (sender leaf 1). */
static bool build_content(mp_case_t *c, const json_t *e, const char *body_key, uint8_t type,
                          spk_mls_framed_content_t *fc)
{
    spk_mls_bytes_t body = {0};
    memset(fc, 0, sizeof *fc);
    fc->epoch = c->epoch;
    fc->sender.type = SPK_MLS_SENDER_MEMBER;
    fc->sender.index = 1;
    fc->content_type = type;
    bool ok = vec_hex(e, body_key, &body) &&
              vec_ok("group id", spk_mls_bytes_copy(&fc->group_id, &c->group_id));
    if (ok && type == SPK_MLS_CONTENT_PROPOSAL) {
        ok = vec_ok("proposal", spk_mls_proposal_decode(&fc->proposal, body.p, body.n));
    } else if (ok && type == SPK_MLS_CONTENT_COMMIT) {
        ok = vec_ok("commit", spk_mls_commit_decode(&fc->commit, body.p, body.n));
    } else if (ok) {
        fc->application_data = body;
        body.p = NULL;
        body.n = 0;
    }
    spk_mls_bytes_free(&body);
    return ok;
}

bool vec_message_protection(const json_t *entry, size_t index)
{
    static const struct {
        const char *body, *pub, *priv;
        uint8_t type;
    } cases[] = {
        {"proposal", "proposal_pub", "proposal_priv", SPK_MLS_CONTENT_PROPOSAL},
        {"commit", "commit_pub", "commit_priv", SPK_MLS_CONTENT_COMMIT},
        {"application", NULL, "application_priv", SPK_MLS_CONTENT_APPLICATION},
    };
    mp_case_t c;
    memset(&c, 0, sizeof c);
    bool ok = load_case(entry, &c);
    for (size_t i = 0; ok && i < sizeof cases / sizeof cases[0]; i++) {
        spk_mls_framed_content_t fc;
        memset(&fc, 0, sizeof fc);
        if (cases[i].pub != NULL) {
            ok = check_public(&c, entry, cases[i].pub, cases[i].body, cases[i].type);
        }
        ok = ok && check_private(&c, entry, cases[i].priv, cases[i].body, cases[i].type);
        ok = ok && build_content(&c, entry, cases[i].body, cases[i].type, &fc) &&
             round_trip(&c, entry, &fc, cases[i].body);
        spk_mls_framed_content_free(&fc);
    }
    spk_mls_bytes_free(&c.group_id);
    spk_mls_bytes_free(&c.gc);
    return ok;
}
