/* Identity tokens: compact JWS with Ed25519 ("alg":"EdDSA"), keyring of trusted issuers.
 *
 * Verification order: size, structure (three non-empty base64url parts, JSON objects, 64-byte
 * signature), header (alg, typ, kid, no crit), issuer/kid lookup in the keyring, signature,
 * claims, time. The payload is parsed before the signature is checked only to read "iss" as a
 * key selector; no claim is used until the signature verifies. */
#include "spk/token.h"
#include "spk/text.h"
#include "spk/digest.h"
#include "spk/error.h"
#include "spk/rand.h"
#include "spk/util.h"
#include "token_priv.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPK_KEYRING_CAP 64
#define SPK_ED25519_KEY 32
#define SPK_ED25519_SIG 64
#define SPK_KID_CHARS 16

typedef struct {
    char iss[SPK_TOKEN_STR];
    char kid[SPK_TOKEN_STR];
    uint8_t pub[SPK_ED25519_KEY];
} spk_keyring_entry_t;

struct spk_keyring {
    size_t n;
    spk_keyring_entry_t keys[SPK_KEYRING_CAP];
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool spk_token_name_ok(const char *s)
{
    if (s == NULL) {
        return false;
    }
    size_t n = strnlen(s, SPK_TOKEN_STR);
    if (n == 0 || n == SPK_TOKEN_STR) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (is_ctl((unsigned char)s[i]) || s[i] == ' ') {
            return false;
        }
    }
    return true;
}

int spk_token_split3(char *line, char *fields[3])
{
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    if (n > 0 && line[n - 1] == '\r') {
        line[--n] = '\0';
    }
    size_t count = 0;
    char *p = line;
    for (;;) {
        while (is_blank(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        if (count == 3) {
            return SPK_ECONFIG;
        }
        fields[count++] = p;
        while (*p != '\0' && !is_blank(*p)) {
            p++;
        }
        if (*p != '\0') {
            *p++ = '\0';
        }
    }
    return count == 3 ? 0 : SPK_ECONFIG;
}

/* A claim string for signing: NUL within SPK_TOKEN_STR, no control characters. */
static bool claim_str_ok(const char *s, bool required)
{
    size_t n = strnlen(s, SPK_TOKEN_STR);
    if (n == SPK_TOKEN_STR || (required && n == 0)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (is_ctl((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static int set_why(char *why, size_t why_len, int rc, const char *msg)
{
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s", msg);
    }
    return rc;
}

/* ---- Ed25519 ------------------------------------------------------------------------------ */

static int ed25519_pub(const uint8_t seed[32], uint8_t pub[32])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SPK_ED25519_KEY);
    size_t len = SPK_ED25519_KEY;
    int rc = SPK_ECRYPTO;
    if (pk != NULL && EVP_PKEY_get_raw_public_key(pk, pub, &len) == 1 && len == SPK_ED25519_KEY) {
        rc = 0;
    }
    EVP_PKEY_free(pk);
    if (rc != 0) {
        ERR_clear_error();
    }
    return rc;
}

static int ed25519_sign(const uint8_t seed[32], const char *msg, size_t n, uint8_t sig[64])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SPK_ED25519_KEY);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = SPK_ED25519_SIG;
    int rc = SPK_ECRYPTO;
    if (pk != NULL && ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
        EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)msg, n) == 1 &&
        sl == SPK_ED25519_SIG) {
        rc = 0;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    if (rc != 0) {
        ERR_clear_error();
    }
    return rc;
}

static bool ed25519_verify(const uint8_t pub[32], const char *msg, size_t n, const uint8_t sig[64])
{
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SPK_ED25519_KEY);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = pk != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
              EVP_DigestVerify(ctx, sig, SPK_ED25519_SIG, (const unsigned char *)msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    if (!ok) {
        ERR_clear_error();
    }
    return ok;
}

int spk_token_kid(const uint8_t pub[32], char kid[SPK_TOKEN_STR])
{
    uint8_t h[32];
    char enc[48];
    int rc = spk_sha256(h, pub, SPK_ED25519_KEY, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    spk_b64url_encode(enc, h, sizeof(h));
    memcpy(kid, enc, SPK_KID_CHARS);
    kid[SPK_KID_CHARS] = '\0';
    return 0;
}

/* ---- signer ------------------------------------------------------------------------------- */

int spk_signer_from_seed(spk_signer_t *s, const uint8_t seed[32], const char *iss)
{
    if (s == NULL || seed == NULL || !spk_token_name_ok(iss)) {
        return SPK_EINVAL;
    }
    spk_signer_t t;
    memset(&t, 0, sizeof(t));
    memcpy(t.seed, seed, sizeof(t.seed));
    memcpy(t.iss, iss, strlen(iss) + 1);
    int rc = ed25519_pub(t.seed, t.pub);
    if (rc == 0) {
        rc = spk_token_kid(t.pub, t.kid);
    }
    if (rc == 0) {
        memcpy(s, &t, sizeof(t));
    }
    spk_wipe(&t, sizeof(t));
    return rc;
}

int spk_signer_generate(spk_signer_t *s, const char *iss)
{
    if (s == NULL || !spk_token_name_ok(iss)) {
        return SPK_EINVAL;
    }
    uint8_t seed[SPK_ED25519_KEY];
    int rc = spk_random_bytes(seed, sizeof(seed));
    if (rc == 0) {
        rc = spk_signer_from_seed(s, seed, iss);
    }
    spk_wipe(seed, sizeof(seed));
    return rc;
}

void spk_signer_wipe(spk_signer_t *s)
{
    if (s != NULL) {
        spk_wipe(s, sizeof(*s));
    }
}

/* ---- keyring ------------------------------------------------------------------------------ */

int spk_keyring_new(spk_keyring_t **out)
{
    if (out == NULL) {
        return SPK_EINVAL;
    }
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : SPK_ENOMEM;
}

void spk_keyring_free(spk_keyring_t *kr)
{
    free(kr);
}

static const spk_keyring_entry_t *keyring_find(const spk_keyring_t *kr, const char *iss,
                                               const char *kid)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->keys[i].iss, iss) == 0 && strcmp(kr->keys[i].kid, kid) == 0) {
            return &kr->keys[i];
        }
    }
    return NULL;
}

int spk_keyring_add(spk_keyring_t *kr, const char *iss, const char *kid, const uint8_t pub[32])
{
    if (kr == NULL || pub == NULL || !spk_token_name_ok(iss) || !spk_token_name_ok(kid)) {
        return SPK_EINVAL;
    }
    if (keyring_find(kr, iss, kid) != NULL) {
        return SPK_EEXIST;
    }
    if (kr->n >= SPK_KEYRING_CAP) {
        return SPK_ERANGE;
    }
    spk_keyring_entry_t *e = &kr->keys[kr->n++];
    memcpy(e->iss, iss, strlen(iss) + 1);
    memcpy(e->kid, kid, strlen(kid) + 1);
    memcpy(e->pub, pub, SPK_ED25519_KEY);
    return 0;
}

int spk_keyring_add_str(spk_keyring_t *kr, const char *line)
{
    if (kr == NULL || line == NULL) {
        return SPK_EINVAL;
    }
    char buf[3 * SPK_TOKEN_STR];
    size_t n = strnlen(line, sizeof(buf));
    if (n == sizeof(buf)) {
        return SPK_ECONFIG;
    }
    memcpy(buf, line, n + 1);
    char *f[3];
    uint8_t pub[SPK_ED25519_KEY];
    if (spk_token_split3(buf, f) != 0 || !spk_token_name_ok(f[0]) || !spk_token_name_ok(f[1]) ||
        spk_b64url_decode(pub, sizeof(pub), f[2], strlen(f[2])) != SPK_ED25519_KEY) {
        return SPK_ECONFIG;
    }
    return spk_keyring_add(kr, f[0], f[1], pub);
}

/* ---- signing ------------------------------------------------------------------------------ */

static int put_str(json_t *o, const char *key, const char *v, bool required)
{
    if (!claim_str_ok(v, required)) {
        return -1;
    }
    if (!required && v[0] == '\0') {
        return 0;
    }
    return json_object_set_new(o, key, json_string(v));
}

static json_t *claims_to_json(const spk_signer_t *s, const spk_token_claims_t *c)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    int bad = 0;
    bad |= put_str(o, "iss", s->iss, true);
    bad |= put_str(o, "sub", c->sub, true);
    bad |= put_str(o, "name", c->name, false);
    bad |= json_object_set_new(o, "role", json_string(spk_role_name(c->role)));
    bad |= put_str(o, "practice", c->practice, false);
    bad |= put_str(o, "acts_for", c->acts_for, false);
    bad |= put_str(o, "consult", c->consult, false);
    bad |= put_str(o, "aud", c->aud, false);
    bad |= json_object_set_new(o, "exp", json_integer((json_int_t)c->exp));
    bad |= json_object_set_new(o, "nbf", json_integer((json_int_t)c->nbf));
    bad |= json_object_set_new(o, "iat", json_integer((json_int_t)c->iat));
    bad |= put_str(o, "jti", c->jti, true);
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static long assemble(const spk_signer_t *s, const char *hdr, const char *pay, char *out, size_t cap)
{
    size_t hl = strlen(hdr);
    size_t pl = strlen(pay);
    size_t total = spk_b64url_encoded_len(hl) + 1 + spk_b64url_encoded_len(pl) + 1 +
                   spk_b64url_encoded_len(SPK_ED25519_SIG);
    if (total > SPK_TOKEN_MAX_LEN || total + 1 > cap) {
        return SPK_ERANGE;
    }
    size_t o = spk_b64url_encode(out, (const uint8_t *)hdr, hl);
    out[o++] = '.';
    o += spk_b64url_encode(out + o, (const uint8_t *)pay, pl);
    uint8_t sig[SPK_ED25519_SIG];
    int rc = ed25519_sign(s->seed, out, o, sig);
    if (rc != 0) {
        return rc;
    }
    out[o++] = '.';
    o += spk_b64url_encode(out + o, sig, sizeof(sig));
    return (long)o;
}

long spk_token_sign(const spk_signer_t *s, const spk_token_claims_t *c, char *out, size_t cap)
{
    if (out != NULL && cap > 0) {
        out[0] = '\0';
    }
    if (s == NULL || c == NULL || out == NULL || !spk_token_name_ok(s->iss) ||
        !spk_token_name_ok(s->kid) || c->role <= SPK_ROLE_NONE || c->role >= SPK_ROLE_COUNT) {
        return SPK_EINVAL;
    }
    json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", s->kid);
    json_t *p = claims_to_json(s, c);
    char *hdr = NULL;
    char *pay = NULL;
    long rc = SPK_EINVAL;
    if (h != NULL && p != NULL) {
        hdr = json_dumps(h, JSON_COMPACT);
        pay = json_dumps(p, JSON_COMPACT);
        rc = (hdr != NULL && pay != NULL) ? assemble(s, hdr, pay, out, cap) : SPK_ENOMEM;
    }
    json_decref(h);
    json_decref(p);
    free(hdr);
    free(pay);
    if (rc < 0 && cap > 0) {
        spk_wipe(out, cap);
    }
    return rc;
}

/* ---- verification ------------------------------------------------------------------------- */

typedef struct {
    const char *tok;
    size_t dot1, dot2, len;
    json_t *hdr;
    json_t *pay;
    uint8_t sig[SPK_ED25519_SIG];
    const char *why;
} spk_jws_t;

static json_t *decode_object(const char *b64, size_t n)
{
    uint8_t buf[SPK_TOKEN_MAX_LEN];
    long d = spk_b64url_decode(buf, sizeof(buf), b64, n);
    if (d <= 0) {
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb((const char *)buf, (size_t)d, JSON_REJECT_DUPLICATES, &err);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Three non-empty base64url parts; header and payload JSON objects; a 64-byte signature. */
static int jws_structure(spk_jws_t *j)
{
    size_t dots[2];
    size_t nd = 0;
    for (size_t i = 0; i < j->len; i++) {
        if (j->tok[i] == '.') {
            if (nd == 2) {
                j->why = "token has more than three parts";
                return SPK_ETOKENINVALID;
            }
            dots[nd++] = i;
        }
    }
    if (nd != 2 || dots[0] == 0 || dots[1] == dots[0] + 1 || dots[1] + 1 == j->len) {
        j->why = "token does not have three non-empty parts";
        return SPK_ETOKENINVALID;
    }
    j->dot1 = dots[0];
    j->dot2 = dots[1];
    const char *sig = j->tok + j->dot2 + 1;
    size_t sig_len = j->len - j->dot2 - 1;
    if (spk_b64url_decode(j->sig, sizeof(j->sig), sig, sig_len) != SPK_ED25519_SIG) {
        j->why = "signature is not 64 bytes of base64url";
        return SPK_ETOKENINVALID;
    }
    j->hdr = decode_object(j->tok, j->dot1);
    if (j->hdr == NULL) {
        j->why = "header is not a base64url JSON object";
        return SPK_ETOKENINVALID;
    }
    j->pay = decode_object(j->tok + j->dot1 + 1, j->dot2 - j->dot1 - 1);
    if (j->pay == NULL) {
        j->why = "payload is not a base64url JSON object";
        return SPK_ETOKENINVALID;
    }
    return 0;
}

/* Copies a JSON string member into dst. Absent optional members leave dst "". */
static bool get_str(json_t *o, const char *key, char dst[SPK_TOKEN_STR], bool required)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        return !required;
    }
    if (!json_is_string(v)) {
        return false;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n >= SPK_TOKEN_STR || strlen(s) != n || (required && n == 0)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (is_ctl((unsigned char)s[i])) {
            return false;
        }
    }
    if (!spk_text_ok(s, n)) {
        return false; /* bidirectional or invisible characters */
    }
    memcpy(dst, s, n + 1);
    return true;
}

/* "aud": a string, or an array of strings (RFC 7519 §4.1.3). With an expected audience the
 * matching element is kept, else the first. */
static bool get_aud(json_t *o, const char *want, char dst[SPK_TOKEN_STR])
{
    json_t *v = json_object_get(o, "aud");
    if (v == NULL || json_is_string(v)) {
        return get_str(o, "aud", dst, false);
    }
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 16) {
        return false;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        json_t *tmp = json_pack("{s:O}", "aud", e);
        char one[SPK_TOKEN_STR] = "";
        bool ok = tmp != NULL && json_is_string(e) && get_str(tmp, "aud", one, true);
        json_decref(tmp);
        if (!ok) {
            return false;
        }
        if (i == 0 || (want != NULL && strcmp(one, want) == 0)) {
            memcpy(dst, one, sizeof(one));
        }
    }
    return true;
}

static bool get_int(json_t *o, const char *key, int64_t *dst)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        return false;
    }
    *dst = (int64_t)json_integer_value(v);
    return true;
}

static int jws_header(spk_jws_t *j, spk_token_claims_t *c)
{
    json_t *alg = json_object_get(j->hdr, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        strcmp(json_string_value(alg), "EdDSA") != 0) {
        j->why = "header alg is not EdDSA";
        return SPK_ETOKENINVALID;
    }
    json_t *typ = json_object_get(j->hdr, "typ");
    if (typ != NULL && (!json_is_string(typ) || json_string_length(typ) != 3 ||
                        strcmp(json_string_value(typ), "JWT") != 0)) {
        j->why = "header typ is not JWT";
        return SPK_ETOKENINVALID;
    }
    if (json_object_get(j->hdr, "crit") != NULL) {
        j->why = "header crit is not supported";
        return SPK_ETOKENINVALID;
    }
    if (!get_str(j->hdr, "kid", c->kid, true)) {
        j->why = "header kid is missing or invalid";
        return SPK_ETOKENINVALID;
    }
    return 0;
}

/* Finds the trusted key for (iss, kid) and checks the signature over "header.payload". */
static int jws_signature(spk_jws_t *j, const spk_keyring_t *kr, const spk_token_claims_t *c)
{
    char iss[SPK_TOKEN_STR] = "";
    if (!get_str(j->pay, "iss", iss, true)) {
        j->why = "claim iss is missing or invalid";
        return SPK_ETOKENINVALID;
    }
    const spk_keyring_entry_t *e = keyring_find(kr, iss, c->kid);
    if (e == NULL) {
        j->why = "issuer and key id are not trusted";
        return SPK_ETOKENISSUER;
    }
    if (!ed25519_verify(e->pub, j->tok, j->dot2, j->sig)) {
        j->why = "signature does not verify";
        return SPK_ETOKENINVALID;
    }
    return 0;
}

static int jws_claims(spk_jws_t *j, const spk_token_policy_t *pol, spk_token_claims_t *c)
{
    char role[SPK_TOKEN_STR] = "";
    bool ok = get_str(j->pay, "iss", c->iss, true) && get_str(j->pay, "sub", c->sub, true) &&
              get_str(j->pay, "jti", c->jti, true) && get_str(j->pay, "role", role, true) &&
              get_str(j->pay, "name", c->name, false) &&
              get_str(j->pay, "practice", c->practice, false) &&
              get_str(j->pay, "acts_for", c->acts_for, false) &&
              get_str(j->pay, "consult", c->consult, false) &&
              get_aud(j->pay, pol != NULL ? pol->audience : NULL, c->aud);
    if (!ok) {
        j->why = "a string claim is missing, mistyped or too long";
        return SPK_ETOKENINVALID;
    }
    if (!get_int(j->pay, "exp", &c->exp) || !get_int(j->pay, "nbf", &c->nbf) ||
        !get_int(j->pay, "iat", &c->iat)) {
        j->why = "claim exp, nbf or iat is missing or not an integer";
        return SPK_ETOKENINVALID;
    }
    c->role = spk_role_parse(role);
    if (c->role == SPK_ROLE_NONE) {
        j->why = "claim role is unknown";
        return SPK_ETOKENINVALID;
    }
    return 0;
}

static int jws_time(spk_jws_t *j, const spk_token_claims_t *c, int64_t now, int64_t leeway)
{
    /* leeway >= 0, so neither bound below can overflow. */
    if (c->nbf >= INT64_MIN + leeway && now < c->nbf - leeway) {
        j->why = "token is not yet valid";
        return SPK_ETOKENNOTYET;
    }
    if (c->exp <= INT64_MAX - leeway && now >= c->exp + leeway) {
        j->why = "token has expired";
        return SPK_ETOKENEXPIRED;
    }
    return 0;
}

/* Audience and lifetime (after the signature: only signed claims are judged). */
static int jws_policy(spk_jws_t *j, const spk_token_policy_t *pol, const spk_token_claims_t *c)
{
    if (pol == NULL) {
        return 0;
    }
    if (pol->audience != NULL && pol->audience[0] != '\0' && strcmp(c->aud, pol->audience) != 0) {
        j->why = c->aud[0] == '\0' ? "claim aud is missing" : "claim aud names another audience";
        return SPK_ETOKENINVALID;
    }
    int64_t from = c->iat > c->nbf ? c->iat : c->nbf;
    if (pol->max_lifetime_s > 0 && (c->exp < from || c->exp - from > pol->max_lifetime_s)) {
        j->why = "token lifetime exceeds the maximum";
        return SPK_ETOKENINVALID;
    }
    return 0;
}

int spk_token_verify(const spk_keyring_t *kr, const char *tok, size_t len, int64_t now,
                     int64_t leeway_s, spk_token_claims_t *out, char *why, size_t why_len)
{
    return spk_token_verify_policy(kr, tok, len, now, leeway_s, NULL, out, why, why_len);
}

int spk_token_verify_policy(const spk_keyring_t *kr, const char *tok, size_t len, int64_t now,
                            int64_t leeway_s, const spk_token_policy_t *pol,
                            spk_token_claims_t *out, char *why, size_t why_len)
{
    if (why != NULL && why_len > 0) {
        why[0] = '\0';
    }
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (kr == NULL || tok == NULL || out == NULL || leeway_s < 0) {
        return set_why(why, why_len, SPK_EINVAL, "invalid arguments");
    }
    if (len == 0 || len > SPK_TOKEN_MAX_LEN) {
        return set_why(why, why_len, SPK_ETOKENINVALID, "token is empty or too long");
    }
    spk_jws_t j;
    memset(&j, 0, sizeof(j));
    j.tok = tok;
    j.len = len;
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    int rc = jws_structure(&j);
    if (rc == 0) {
        rc = jws_header(&j, &c);
    }
    if (rc == 0) {
        rc = jws_signature(&j, kr, &c);
    }
    if (rc == 0) {
        rc = jws_claims(&j, pol, &c);
    }
    bool signed_claims = rc == 0;
    if (rc == 0) {
        rc = jws_time(&j, &c, now, leeway_s);
    }
    if (rc == 0) {
        rc = jws_policy(&j, pol, &c);
    }
    json_decref(j.hdr);
    json_decref(j.pay);
    if (rc != 0) {
        if (signed_claims) {
            *out = c; /* a trusted issuer signed these: the refusal can name them */
        }
        return set_why(why, why_len, rc, j.why != NULL ? j.why : "token is invalid");
    }
    *out = c;
    return 0;
}

int spk_token_session_name(const spk_token_claims_t *c, char out[SPK_TOKEN_SESSION_NAME_LEN])
{
    /* the four claims with their NULs, so that no two different sets run together alike */
    char buf[4 * SPK_TOKEN_STR];
    size_t n = 0;
    const char *parts[] = {c->iss, c->sub, c->consult, c->jti};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        size_t len = strnlen(parts[i], SPK_TOKEN_STR - 1);
        memcpy(buf + n, parts[i], len);
        n += len;
        buf[n++] = '\0';
    }
    uint8_t h[32];
    int rc = spk_sha256(h, buf, n, NULL, 0);
    spk_wipe(buf, sizeof(buf));
    if (rc != 0) {
        return rc;
    }
    memcpy(out, "session ", 8);
    spk_hex_encode(out + 8, h, 16);
    return 0;
}
