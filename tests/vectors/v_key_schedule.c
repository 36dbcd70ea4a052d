/* key-schedule.json: 5 chained epochs (RFC 9420 §8, §8.1, §8.3, §8.5). */
#include <string.h>

#include "mls/keysched.h"
#include "vectors.h"

/* GroupContext (§8.1) with empty extensions. */
static int write_group_context(spk_mls_writer_t *w, const spk_mls_bytes_t *group_id, uint64_t epoch,
                               const spk_mls_bytes_t *tree_hash, const spk_mls_bytes_t *cth)
{
    spk_mls_write_u16(w, 1);
    spk_mls_write_u16(w, SPK_MLS_CIPHER_SUITE);
    spk_mls_write_opaque_v(w, group_id->p, group_id->n);
    spk_mls_write_u64(w, epoch);
    spk_mls_write_opaque_v(w, tree_hash->p, tree_hash->n);
    spk_mls_write_opaque_v(w, cth->p, cth->n);
    return spk_mls_write_varint(w, 0);
}

static bool check_secrets(const json_t *ep, const spk_mls_epoch_secrets_t *s)
{
    const struct {
        const char *key;
        const uint8_t *v;
    } fields[] = {
        {"joiner_secret", s->joiner_secret},
        {"welcome_secret", s->welcome_secret},
        {"sender_data_secret", s->sender_data_secret},
        {"encryption_secret", s->encryption_secret},
        {"exporter_secret", s->exporter_secret},
        {"external_secret", s->external_secret},
        {"confirmation_key", s->confirmation_key},
        {"membership_key", s->membership_key},
        {"resumption_psk", s->resumption_psk},
        {"epoch_authenticator", s->epoch_authenticator},
        {"init_secret", s->init_secret},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        ok = vec_eq_hex(fields[i].key, fields[i].v, SPK_MLS_HASH_LEN, ep, fields[i].key) && ok;
    }
    return ok;
}

static bool check_exporter(const json_t *x, const spk_mls_epoch_secrets_t *s)
{
    spk_mls_bytes_t ctx = {0};
    uint64_t len = 0;
    uint8_t out[256];
    /* The label is used as ASCII text, not hex-decoded. */
    const char *label = vec_str(x, "label");
    bool ok = label != NULL && vec_hex(x, "context", &ctx) && vec_u64(x, "length", &len) &&
              len <= sizeof out &&
              vec_ok("exporter", spk_mls_exporter(s->exporter_secret, (const uint8_t *)label,
                                                  strlen(label), ctx.p, ctx.n, out, (size_t)len)) &&
              vec_eq_hex("exporter secret", out, (size_t)len, x, "secret");
    spk_mls_bytes_free(&ctx);
    return ok;
}

static bool run_epoch(const json_t *ep, const spk_mls_bytes_t *group_id, uint64_t epoch,
                      uint8_t init[SPK_MLS_HASH_LEN])
{
    spk_mls_bytes_t tree_hash = {0}, cth = {0};
    uint8_t commit[32], psk[32], priv[32], pub[32];
    spk_mls_epoch_secrets_t s;
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    bool ok = vec_hex(ep, "tree_hash", &tree_hash) &&
              vec_hex(ep, "confirmed_transcript_hash", &cth) &&
              vec_hex_fixed(ep, "commit_secret", commit, 32) &&
              vec_hex_fixed(ep, "psk_secret", psk, 32) &&
              vec_ok("group context", write_group_context(&w, group_id, epoch, &tree_hash, &cth)) &&
              vec_eq_hex("group_context", w.buf, w.len, ep, "group_context");
    ok = ok && vec_ok("key schedule", spk_mls_key_schedule(init, commit, psk, w.buf, w.len, &s));
    if (ok) {
        ok = check_secrets(ep, &s);
        ok = vec_ok("external key pair", spk_mls_external_key_pair(s.external_secret, priv, pub)) &&
             vec_eq_hex("external_pub", pub, 32, ep, "external_pub") && ok;
        ok = check_exporter(json_object_get(ep, "exporter"), &s) && ok;
        memcpy(init, s.init_secret, SPK_MLS_HASH_LEN);
    }
    spk_mls_epoch_secrets_wipe(&s);
    spk_mls_writer_free(&w);
    spk_mls_bytes_free(&tree_hash);
    spk_mls_bytes_free(&cth);
    return ok;
}

bool vec_key_schedule(const json_t *entry, size_t index)
{
    spk_mls_bytes_t group_id = {0};
    uint8_t init[SPK_MLS_HASH_LEN];
    uint64_t suite = 0;
    const json_t *epochs = json_object_get(entry, "epochs");
    bool ok = vec_u64(entry, "cipher_suite", &suite) && suite == 1 &&
              vec_hex(entry, "group_id", &group_id) &&
              vec_hex_fixed(entry, "initial_init_secret", init, sizeof init) &&
              json_array_size(epochs) > 0;
    for (size_t i = 0; ok && i < json_array_size(epochs); i++) {
        ok = run_epoch(json_array_get(epochs, i), &group_id, i, init);
        if (!ok) {
            vec_fail("epoch %zu failed", i);
        }
    }
    spk_mls_bytes_free(&group_id);
    return ok;
}
