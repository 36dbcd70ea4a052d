/* spreekctl integration: practice systems (HIS) that drive spreekkamer through the HTTP API with
 * role "service" (docs/integration.md). register, list, rotate-key, revoke, webhook. Every
 * command runs in one store transaction with its audit entry. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/rand.h"
#include "spk/text.h"
#include "spk/token.h"
#include "spk/url.h"
#include "spk/util.h"

#include "ctl.h"

/* Integration ids: 1..40 characters [a-z0-9-]; they are also the "iss" and "sub" of its tokens. */
static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 40) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
            return false;
        }
    }
    return true;
}

/* "p1,p2,...": each a practice id (1..SPK_SUB_LEN-1 bytes of text without spaces or commas). */
static bool practices_ok(const char *list)
{
    if (!spk_text_ok(list, strlen(list)) || strchr(list, ' ') != NULL) {
        return false;
    }
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= SPK_SUB_LEN) {
            return false;
        }
        p += n;
        if (*p == '\0') {
            return true;
        }
    }
}

/* https://HOST[:PORT]/PATH, or http:// to a loopback address only (tests, a local relay): the
 * parser the delivery uses (spk/url.h), so that what is registered can be delivered to. */
static bool webhook_url_ok(const char *url)
{
    spk_url_t u;
    return strlen(url) < SPK_URL_LEN && spk_text_ok(url, strlen(url)) &&
           spk_url_parse(url, strlen(url), &u) == 0 && (u.tls || spk_url_host_loopback(&u));
}

/* The key id of a public key, as the token module derives it (its first 16 characters fit). */
static void key_id(const uint8_t pub[32], char out[SPK_ID_LEN])
{
    char kid[SPK_TOKEN_STR] = "";
    spk_token_kid(pub, kid);
    snprintf(out, SPK_ID_LEN, "%.*s", SPK_ID_LEN - 1, kid);
}

static int parse_pub(const char *s, uint8_t pub[32])
{
    long n = spk_b64url_decode(pub, 32, s, strlen(s));
    return n == 32 ? 0
                   : usage_error("--public-key must be a base64url Ed25519 public key (32 "
                                 "bytes)");
}

static int add_key(ctl_t *c, const char *id, const uint8_t pub[32], char kid[SPK_ID_LEN])
{
    spk_integration_key_rec_t k;
    memset(&k, 0, sizeof(k));
    snprintf(k.integration, sizeof(k.integration), "%s", id);
    key_id(pub, k.kid);
    memcpy(k.pub, pub, 32);
    k.created_at = spk_now_s();
    snprintf(kid, SPK_ID_LEN, "%s", k.kid);
    return spk_store_integration_key_add(c->st, &k);
}

static void print_secret(const char *id, const char *kid, const char *url, const uint8_t secret[32])
{
    char hex[65];
    spk_hex_encode(hex, secret, 32);
    printf("integration %s\nkid %s\n", id, kid != NULL ? kid : "-");
    if (url[0] != '\0') {
        printf("webhook %s\nwebhook secret %s (shown once)\n", url, hex);
    }
    spk_wipe(hex, sizeof(hex));
}

int cmd_integration_register(ctl_t *c)
{
    spk_integration_rec_t r;
    memset(&r, 0, sizeof(r));
    const char *id = req(c, "id"), *url = opt_or(c, "webhook", "");
    const char *practices = req(c, "practices"), *name = opt_or(c, "name", id);
    uint8_t pub[32];
    if (!id_ok(id)) {
        return usage_error("--id must be 1..40 characters a-z, 0-9 and -");
    }
    if (strlen(practices) >= sizeof(r.practices) || strlen(name) >= sizeof(r.name) ||
        !practices_ok(practices) || !spk_text_ok(name, strlen(name))) {
        return usage_error("--practices (comma-separated ids of 1..127 bytes) or --name too long "
                           "or not text");
    }
    if (url[0] != '\0' && !webhook_url_ok(url)) {
        return usage_error("--webhook must be an https:// URL (http:// only to loopback)");
    }
    int rc = parse_pub(req(c, "public-key"), pub);
    if (rc != CTL_OK) {
        return rc;
    }
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.practices, sizeof(r.practices), "%s", practices);
    snprintf(r.webhook_url, sizeof(r.webhook_url), "%s", url);
    r.created_at = spk_now_s();
    c->practice = r.practices;
    char kid[SPK_ID_LEN] = "";
    rc = spk_random_bytes(r.webhook_secret, sizeof(r.webhook_secret));
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc = spk_store_integration_insert(c->st, &r);
    }
    if (rc == 0) {
        rc = add_key(c, id, pub, kid);
    }
    if (rc == 0) {
        rc = audit(c, "integration.register", 0, NULL, id, "practices %s; kid %s; webhook %s",
                   practices, kid, url[0] ? url : "-");
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "integration.register", rc, NULL, id, "practices %s", practices);
        spk_wipe(&r, sizeof(r));
        return fail(rc, "cannot register integration %s: %s", id, spk_strerror(rc));
    }
    print_secret(id, kid, url, r.webhook_secret);
    spk_wipe(&r, sizeof(r));
    return CTL_OK;
}

typedef struct {
    ctl_t *c;
    json_t *arr;
    json_t *keys;
    int64_t now;
} ilist_t;

static int key_cb(void *ud, const spk_integration_key_rec_t *k)
{
    ilist_t *l = ud;
    bool active = k->retired_at == 0 || k->retired_at > l->now;
    if (l->keys != NULL) {
        json_array_append_new(l->keys,
                              json_pack("{s:s, s:I, s:I, s:b}", "kid", k->kid, "created_at",
                                        (json_int_t)k->created_at, "retired_at",
                                        (json_int_t)k->retired_at, "active", active));
    } else {
        printf("  key %s %s\n", k->kid, active ? "active" : "retired");
    }
    return 0;
}

static int integ_cb(void *ud, const spk_integration_rec_t *r)
{
    ilist_t *l = ud;
    int64_t queued = 0;
    spk_store_webhook_count(l->c->st, r->id, &queued);
    if (l->arr != NULL) {
        l->keys = json_array();
        spk_store_integration_key_each(l->c->st, r->id, key_cb, l);
        json_array_append_new(l->arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:I}",
                                                "id", r->id, "name", r->name, "practices",
                                                r->practices, "webhook", r->webhook_url,
                                                "created_at", (json_int_t)r->created_at,
                                                "revoked_at", (json_int_t)r->revoked_at, "state",
                                                r->revoked_at ? "revoked" : "active", "keys",
                                                l->keys, "webhook_queued", (json_int_t)queued));
        l->keys = NULL;
        return 0;
    }
    printf("%s %s practices=%s webhook=%s queued=%" PRId64 " (%s)\n", r->id,
           r->revoked_at ? "revoked" : "active", r->practices,
           r->webhook_url[0] ? r->webhook_url : "-", queued, r->name);
    return spk_store_integration_key_each(l->c->st, r->id, key_cb, l);
}

int cmd_integration_list(ctl_t *c)
{
    int rc = audit(c, "integration.list", 0, NULL, "integrations", NULL);
    if (rc != 0) {
        return CTL_FAIL;
    }
    ilist_t l = {.c = c, .arr = c->json ? json_array() : NULL, .now = spk_now_s()};
    rc = spk_store_integration_each(c->st, integ_cb, &l);
    if (rc != 0) {
        json_decref(l.arr);
        return fail(rc, "cannot list integrations: %s", spk_strerror(rc));
    }
    if (l.arr != NULL) {
        return dump_json(l.arr) == 0 ? CTL_OK : CTL_FAIL;
    }
    return CTL_OK;
}

/* The integration must exist and be active. */
static int active_integration(ctl_t *c, const char *id, spk_integration_rec_t *r)
{
    int rc = spk_store_integration_get(c->st, id, r);
    if (rc == 0 && r->revoked_at != 0) {
        rc = SPK_ESTATE;
    }
    c->practice = rc == 0 ? r->practices : NULL;
    return rc;
}

int cmd_integration_rotate_key(ctl_t *c)
{
    const char *id = req(c, "id");
    uint8_t pub[32];
    int64_t grace = 0;
    if (opt(c, "grace") != NULL && !parse_pos_i64(opt(c, "grace"), &grace)) {
        return usage_error("--grace must be a positive number of seconds");
    }
    int rc = parse_pub(req(c, "public-key"), pub);
    if (rc != CTL_OK) {
        return rc;
    }
    spk_integration_rec_t r;
    char kid[SPK_ID_LEN] = "";
    rc = spk_store_begin(c->st);
    if (rc == 0) {
        rc = active_integration(c, id, &r);
    }
    if (rc == 0) {
        rc = add_key(c, id, pub, kid);
    }
    if (rc == 0) {
        /* The old keys verify tokens for the grace period still, then no more. */
        rc = spk_store_integration_key_retire(c->st, id, kid, spk_now_s() + grace);
    }
    if (rc == 0) {
        rc = audit(c, "integration.rotate_key", 0, NULL, id,
                   "new kid %s; old keys retire in %" PRId64 " s", kid, grace);
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "integration.rotate_key", rc, NULL, id, NULL);
        return fail(rc, "cannot rotate the key of %s: %s", id, spk_strerror(rc));
    }
    printf("integration %s\nkid %s\n", id, kid);
    return CTL_OK;
}

int cmd_integration_revoke(ctl_t *c)
{
    const char *id = req(c, "id");
    int64_t now = spk_now_s();
    spk_integration_rec_t r;
    int rc = spk_store_begin(c->st);
    if (rc == 0) {
        rc = active_integration(c, id, &r);
    }
    if (rc == 0) {
        rc = spk_store_integration_revoke(c->st, id, now);
    }
    if (rc == 0) {
        rc = spk_store_integration_key_retire(c->st, id, NULL, now);
    }
    if (rc == 0) {
        rc = audit(c, "integration.revoke", 0, NULL, id, "practices %s", r.practices);
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "integration.revoke", rc, NULL, id, NULL);
        return fail(rc, "cannot revoke %s: %s", id, spk_strerror(rc));
    }
    printf("integration %s revoked\n", id);
    return CTL_OK;
}

int cmd_integration_webhook(ctl_t *c)
{
    const char *id = req(c, "id"), *url = req(c, "url");
    if (strcmp(url, "none") == 0) {
        url = "";
    } else if (!webhook_url_ok(url)) {
        return usage_error("--url must be an https:// URL (http:// only to loopback), or none");
    }
    spk_integration_rec_t r;
    uint8_t secret[32];
    int rc = spk_random_bytes(secret, sizeof(secret));
    if (rc == 0) {
        rc = spk_store_begin(c->st);
    }
    if (rc == 0) {
        rc = active_integration(c, id, &r);
    }
    if (rc == 0) {
        rc = spk_store_integration_set_webhook(c->st, id, url, secret);
    }
    if (rc == 0) {
        rc = audit(c, "integration.webhook", 0, NULL, id, "webhook %s; new secret",
                   url[0] ? url : "-");
    }
    rc = end_txn(c, rc);
    if (rc != 0) {
        audit(c, "integration.webhook", rc, NULL, id, NULL);
        spk_wipe(secret, sizeof(secret));
        return fail(rc, "cannot set the webhook of %s: %s", id, spk_strerror(rc));
    }
    print_secret(id, NULL, url, secret);
    spk_wipe(secret, sizeof(secret));
    return CTL_OK;
}
