/* passive-client-welcome.json, passive-client-handling-commit.json, passive-client-random.json
 * (RFC 9420 §12): join through the Welcome (tree in the GroupInfo extension or out of band,
 * external PSKs), compare the initial epoch authenticator, then for each epoch cache the
 * proposals, apply the Commit and compare the epoch authenticator. */
#include <stdlib.h>
#include <string.h>

#include "mls/group.h"
#include "mls/msgprot.h"
#include "mls/structs.h"
#include "mls/tree.h"
#include "spk/error.h"
#include "vectors.h"

typedef struct {
    spk_mls_bytes_t id;
    spk_mls_bytes_t psk;
} ext_psk_t;

typedef struct {
    ext_psk_t *v;
    size_t n;
} ext_psks_t;

static int psk_cb(void *arg, const spk_mls_psk_id_t *id, const uint8_t **psk, size_t *len)
{
    const ext_psks_t *e = arg;
    if (id->psktype != SPK_MLS_PSK_EXTERNAL) {
        return SPK_ENOTFOUND;
    }
    for (size_t i = 0; i < e->n; i++) {
        if (spk_mls_bytes_eq(&e->v[i].id, &id->psk_id)) {
            *psk = e->v[i].psk.p;
            *len = e->v[i].psk.n;
            return 0;
        }
    }
    return SPK_ENOTFOUND;
}

static bool load_psks(const json_t *entry, ext_psks_t *e)
{
    const json_t *arr = json_object_get(entry, "external_psks");
    e->n = 0;
    e->v = calloc(json_array_size(arr) + 1, sizeof(ext_psk_t));
    if (e->v == NULL) {
        return vec_fail("out of memory");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *p = json_array_get(arr, i);
        if (!vec_hex(p, "psk_id", &e->v[i].id) || !vec_hex(p, "psk", &e->v[i].psk)) {
            return false;
        }
        e->n = i + 1;
    }
    return true;
}

static void free_psks(ext_psks_t *e)
{
    for (size_t i = 0; e->v != NULL && i <= e->n; i++) {
        spk_mls_bytes_free(&e->v[i].id);
        spk_mls_bytes_free(&e->v[i].psk);
    }
    free(e->v);
}

/* Decodes the hex MLSMessage obj[key] (or the string s when key is NULL). */
static bool message_from(const json_t *obj, const char *key, spk_mls_message_t *m)
{
    spk_mls_bytes_t b;
    if (!vec_hex(obj, key, &b)) {
        return false;
    }
    bool ok = vec_ok(key, spk_mls_message_decode(m, b.p, b.n));
    spk_mls_bytes_free(&b);
    return ok;
}

static bool join(const json_t *entry, const spk_mls_group_env_t *env, spk_mls_group_t *g)
{
    spk_mls_message_t kp;
    spk_mls_message_t welcome;
    spk_mls_tree_t tree;
    bool have_tree = false;
    uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN];
    if (!vec_hex_fixed(entry, "init_priv", init_priv, sizeof(init_priv)) ||
        !vec_hex_fixed(entry, "encryption_priv", enc_priv, sizeof(enc_priv)) ||
        !vec_hex_fixed(entry, "signature_priv", sig_priv, sizeof(sig_priv)) ||
        !message_from(entry, "key_package", &kp)) {
        return false;
    }
    if (!message_from(entry, "welcome", &welcome)) {
        spk_mls_message_free(&kp);
        return false;
    }
    bool ok =
        kp.wire_format == SPK_MLS_WIRE_KEY_PACKAGE && welcome.wire_format == SPK_MLS_WIRE_WELCOME;
    if (ok && json_is_string(json_object_get(entry, "ratchet_tree"))) {
        spk_mls_bytes_t enc;
        ok = vec_hex(entry, "ratchet_tree", &enc) &&
             vec_ok("tree decode", spk_mls_tree_decode(&tree, enc.p, enc.n));
        spk_mls_bytes_free(&enc);
        have_tree = ok;
    }
    ok =
        ok && vec_ok("join", spk_mls_group_join(g, &welcome.u.welcome, &kp.u.key_package, init_priv,
                                                enc_priv, sig_priv, have_tree ? &tree : NULL, env));
    ok = ok && vec_eq_hex("initial_epoch_authenticator", g->secrets.epoch_authenticator,
                          SPK_MLS_HASH_LEN, entry, "initial_epoch_authenticator");
    if (have_tree) {
        spk_mls_tree_free(&tree);
    }
    spk_mls_message_free(&kp);
    spk_mls_message_free(&welcome);
    return ok;
}

static bool handle(spk_mls_group_t *g, const spk_mls_group_env_t *env, const json_t *obj,
                   const char *key, spk_mls_group_event_t want, size_t epoch)
{
    spk_mls_message_t m;
    spk_mls_group_event_t ev;
    if (!message_from(obj, key, &m)) {
        return false;
    }
    int rc = spk_mls_group_handle(g, &m, env, &ev, NULL);
    spk_mls_message_free(&m);
    if (rc != 0) {
        return vec_fail("epoch %zu: %s failed: %s", epoch, key, spk_err_name(rc));
    }
    return ev == want || vec_fail("epoch %zu: %s gave event %d", epoch, key, (int)ev);
}

/* A Commit whose confirmation tag was changed (and membership tag recomputed, so that it gets
 * through framing checks) must be rejected at the very end without touching the state. */
static bool tampered_commit_rejected(spk_mls_group_t *g, const spk_mls_group_env_t *env,
                                     const json_t *ep, size_t epoch)
{
    spk_mls_message_t m;
    spk_mls_group_event_t ev;
    uint8_t before[SPK_MLS_HASH_LEN];
    uint8_t tag[SPK_MLS_HASH_LEN];
    if (!message_from(ep, "commit", &m)) {
        return false;
    }
    spk_mls_public_message_t *pm = &m.u.pub;
    bool ok = true;
    if (m.wire_format == SPK_MLS_WIRE_PUBLIC && pm->confirmation_tag.n > 0 &&
        pm->membership_tag.n == SPK_MLS_HASH_LEN) {
        uint64_t ep_before = g->gc.epoch;
        memcpy(before, g->secrets.epoch_authenticator, sizeof(before));
        pm->confirmation_tag.p[0] ^= 1;
        ok = vec_ok("membership tag",
                    spk_mls_membership_tag(&pm->content, &pm->signature, &pm->confirmation_tag,
                                           g->gc_enc.p, g->gc_enc.n, g->secrets.membership_key,
                                           tag));
        memcpy(pm->membership_tag.p, tag, sizeof(tag));
        int rc = ok ? spk_mls_group_handle(g, &m, env, &ev, NULL) : 0;
        if (ok && rc != SPK_EMLSCONFIRM) {
            ok = vec_fail("epoch %zu: tampered commit gave %s", epoch, spk_err_name(rc));
        }
        if (ok && (g->gc.epoch != ep_before ||
                   memcmp(before, g->secrets.epoch_authenticator, sizeof(before)) != 0)) {
            ok = vec_fail("epoch %zu: state changed by a rejected commit", epoch);
        }
    }
    spk_mls_message_free(&m);
    return ok;
}

static bool run(const json_t *entry)
{
    uint64_t suite;
    ext_psks_t psks = {NULL, 0};
    spk_mls_group_t g;
    memset(&g, 0, sizeof(g));
    if (!vec_u64(entry, "cipher_suite", &suite) || suite != 1) {
        return vec_fail("cipher suite not supported");
    }
    bool ok = load_psks(entry, &psks);
    spk_mls_group_env_t env = {psk_cb, &psks};
    ok = ok && join(entry, &env, &g);
    const json_t *epochs = json_object_get(entry, "epochs");
    for (size_t e = 0; ok && e < json_array_size(epochs); e++) {
        const json_t *ep = json_array_get(epochs, e);
        const json_t *props = json_object_get(ep, "proposals");
        for (size_t i = 0; ok && i < json_array_size(props); i++) {
            json_t *tmp = json_pack("{s:O}", "p", json_array_get(props, i));
            ok = tmp != NULL && handle(&g, &env, tmp, "p", SPK_MLS_GROUP_EV_PROPOSAL, e);
            json_decref(tmp);
        }
        ok = ok && tampered_commit_rejected(&g, &env, ep, e);
        ok = ok && handle(&g, &env, ep, "commit", SPK_MLS_GROUP_EV_COMMIT, e);
        if (ok && !vec_eq_hex("epoch_authenticator", g.secrets.epoch_authenticator,
                              SPK_MLS_HASH_LEN, ep, "epoch_authenticator")) {
            ok = vec_fail("epoch %zu: authenticator differs", e);
        }
    }
    spk_mls_group_free(&g);
    free_psks(&psks);
    return ok;
}

bool vec_passive_client_welcome(const json_t *entry, size_t index)
{
    return run(entry);
}

bool vec_passive_client_handling_commit(const json_t *entry, size_t index)
{
    return run(entry);
}

bool vec_passive_client_random(const json_t *entry, size_t index)
{
    return run(entry);
}
