/* Idempotency keys (docs/integration.md "Idempotency"): a practice system that retries a
 * creating request with the same `idempotency_key` gets the first answer again instead of a
 * second consult or invite; the same key with a different request is refused
 * (idempotency_key_reused).
 *
 * The record is written in the action's own transaction (sig_commit), so the action and its
 * record exist together or not at all. It holds a hash of the key, a hash of the request
 * (canonical JSON without id and key) and the answer sealed with AES-256-GCM under a key derived
 * from the idempotency key: an invite code in a stored answer is readable only by whoever
 * presents the key again. Records are kept for IDEM_KEEP_S. */
#include "core_int.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "spk/digest.h"
#include "spk/error.h"
#include "spk/log.h"
#include "spk/rand.h"
#include "spk/text.h"
#include "spk/util.h"

#define IDEM_KEEP_S 86400
#define IDEM_KEY_MAX 255
#define NONCE_LEN 12
#define TAG_LEN 16

/* SHA-256 of a NUL-terminated label (with its NUL) and a buffer. */
static void sha256_parts(uint8_t out[32], const char *a, const void *b, size_t blen)
{
    spk_sha256(out, a, strlen(a) + 1, b, blen);
}

/* Seals (enc) or opens a buffer with AES-256-GCM; returns the output length or -1. */
static long gcm(bool enc, const uint8_t key[32], const uint8_t nonce[NONCE_LEN],
                const unsigned char *in, size_t len, unsigned char *out, uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, f = 0;
    bool ok = ctx != NULL &&
              EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, enc ? 1 : 0) == 1 &&
              EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
              (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
              EVP_CipherFinal_ex(ctx, out + n, &f) == 1 &&
              (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? n + f : -1;
}

int sig_idem_begin(sig_req_t *r)
{
    json_t *k = json_object_get(r->req, "idempotency_key");
    if (k == NULL) {
        return 0;
    }
    if (r->c->who->role != SPK_ROLE_SERVICE) {
        snprintf(r->why, sizeof(r->why), "idempotency keys are for practice systems");
        return sig_bad_field(r, "idempotency_key");
    }
    const char *key;
    int rc = sig_get_str(r, "idempotency_key", true, IDEM_KEY_MAX, &key);
    if (rc != 0) {
        return rc;
    }
    json_t *copy = json_deep_copy(r->req);
    json_object_del(copy, "id");
    json_object_del(copy, "idempotency_key");
    char *canon = copy != NULL ? json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(copy);
    if (canon == NULL) {
        return SPK_ENOMEM;
    }
    sha256_parts(r->idem_req_hash, "spk-idem-request", canon, strlen(canon));
    free(canon);
    uint8_t key_hash[32];
    sha256_parts(key_hash, r->c->who->sub, key, strlen(key));
    spk_idem_rec_t rec;
    rc = spk_store_idem_get(r->s->store, r->c->who->sub, key_hash, &rec);
    if (rc == SPK_ENOTFOUND) {
        snprintf(r->idem_key, sizeof(r->idem_key), "%s", key);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (memcmp(rec.req_hash, r->idem_req_hash, 32) != 0) {
        free(rec.reply);
        snprintf(r->why, sizeof(r->why), "this idempotency key was used for a different request");
        return SPK_EIDEMPOTENCY;
    }
    /* The same request again: its stored answer, opened with the key. */
    uint8_t seal[32];
    sha256_parts(seal, "spk-idem-seal", key, strlen(key));
    rc = SPK_EIO;
    if (rec.reply_len > NONCE_LEN + TAG_LEN) {
        size_t clen = rec.reply_len - NONCE_LEN - TAG_LEN;
        unsigned char *plain = malloc(clen + 1);
        long n = plain != NULL ? gcm(false, seal, rec.reply, rec.reply + NONCE_LEN + TAG_LEN, clen,
                                     plain, rec.reply + NONCE_LEN)
                               : -1;
        json_t *ans = n >= 0 ? json_loadb((const char *)plain, (size_t)n, 0, NULL) : NULL;
        if (ans != NULL) {
            json_object_update(r->reply, ans);
            json_object_set_new(r->reply, "replayed", json_true());
            json_decref(ans);
            rc = 0;
        }
        if (plain != NULL) {
            spk_wipe(plain, clen);
        }
        free(plain);
    }
    spk_wipe(seal, sizeof(seal));
    free(rec.reply);
    if (rc != 0) {
        spk_error(r->c->id, "stored idempotent answer cannot be opened");
        return rc;
    }
    r->idem_replay = true;
    snprintf(r->detail, sizeof(r->detail), "answer replayed for a repeated idempotency key");
    const char *gp = json_string_value(json_object_get(r->req, "gp"));
    snprintf(r->on_behalf_of, sizeof(r->on_behalf_of), "%s", gp != NULL ? gp : "");
    const char *obj =
        json_string_value(json_object_get(json_object_get(r->reply, "consult"), "id"));
    if (obj != NULL) {
        snprintf(r->object, sizeof(r->object), "%s", obj);
        const char *pat =
            json_string_value(json_object_get(json_object_get(r->reply, "consult"), "patient"));
        snprintf(r->patient, sizeof(r->patient), "%s", pat != NULL ? pat : "");
        const char *pr =
            json_string_value(json_object_get(json_object_get(r->reply, "consult"), "practice"));
        snprintf(r->practice, sizeof(r->practice), "%s", pr != NULL ? pr : "");
    }
    return 0;
}

int sig_idem_store(sig_req_t *r)
{
    char *txt = json_dumps(r->reply, JSON_COMPACT);
    if (txt == NULL) {
        return SPK_ENOMEM;
    }
    size_t len = strlen(txt);
    spk_idem_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.owner, sizeof(rec.owner), "%.*s", (int)sizeof(rec.owner) - 1, r->c->who->sub);
    sha256_parts(rec.key_hash, r->c->who->sub, r->idem_key, strlen(r->idem_key));
    memcpy(rec.req_hash, r->idem_req_hash, 32);
    rec.created_at = r->now;
    rec.reply_len = NONCE_LEN + TAG_LEN + len;
    rec.reply = malloc(rec.reply_len);
    uint8_t seal[32];
    sha256_parts(seal, "spk-idem-seal", r->idem_key, strlen(r->idem_key));
    int rc = rec.reply != NULL ? spk_random_bytes(rec.reply, NONCE_LEN) : SPK_ENOMEM;
    if (rc == 0 && gcm(true, seal, rec.reply, (const unsigned char *)txt, len,
                       rec.reply + NONCE_LEN + TAG_LEN, rec.reply + NONCE_LEN) != (long)len) {
        rc = SPK_ECRYPTO;
    }
    if (rc == 0) {
        rc = spk_store_idem_put(r->s->store, &rec);
    }
    spk_wipe(seal, sizeof(seal));
    spk_wipe(txt, len);
    free(txt);
    free(rec.reply);
    return rc;
}

void sig_idem_tick(spk_sig_t *s, int64_t now)
{
    if (now - s->idem_purged_at < 3600 || spk_store_in_txn(s->store)) {
        return;
    }
    s->idem_purged_at = now;
    spk_store_idem_purge(s->store, now - IDEM_KEEP_S);
}
