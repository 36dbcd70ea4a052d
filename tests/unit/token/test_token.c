/* Unit tests for spk/token.h: JWS EdDSA signing and verification, keyring, key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/token.h"
#include "spk/util.h"

#define ISS "https://idp.spreekkamer.test"
#define NOW 1700000000
#define RAW_KID "k1"
#define TOK_CAP (SPK_TOKEN_MAX_LEN + 64)

/* RFC 8032 section 7.1, test 1. */
static const uint8_t k_seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                   0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                   0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const uint8_t k_pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                  0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                  0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

/* A valid payload for raw tokens (exp NOW+3600, nbf/iat NOW-60). */
#define P_TIMES "\"exp\":1700003600,\"nbf\":1699999940,\"iat\":1699999940"
#define P_BASE "\"iss\":\"" ISS "\",\"sub\":\"u1\",\"role\":\"gp\",\"jti\":\"j1\"," P_TIMES
#define H_OK "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" RAW_KID "\"}"

static spk_signer_t g_signer;
static spk_keyring_t *g_kr;

static int group_setup(void **state)
{
    if (spk_signer_from_seed(&g_signer, k_seed, ISS) != 0 || spk_keyring_new(&g_kr) != 0 ||
        spk_keyring_add(g_kr, ISS, g_signer.kid, g_signer.pub) != 0 ||
        spk_keyring_add(g_kr, ISS, RAW_KID, g_signer.pub) != 0) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    spk_keyring_free(g_kr);
    spk_signer_wipe(&g_signer);
    return 0;
}

static void make_claims(spk_token_claims_t *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->sub, "uzi:900012345");
    strcpy(c->name, "Dr. A. de Vries");
    c->role = SPK_ROLE_GP;
    strcpy(c->practice, "praktijk-zuid");
    strcpy(c->acts_for, "uzi:900054321");
    strcpy(c->consult, "c-42");
    strcpy(c->jti, "jti-0001");
    c->exp = NOW + 3600;
    c->nbf = NOW - 60;
    c->iat = NOW - 60;
}

static size_t sign_ok(const spk_signer_t *s, const spk_token_claims_t *c, char *tok)
{
    long n = spk_token_sign(s, c, tok, TOK_CAP);
    assert_true(n > 0);
    assert_int_equal(strlen(tok), (size_t)n);
    return (size_t)n;
}

static int verify_at(const char *tok, size_t len, int64_t now, int64_t leeway)
{
    spk_token_claims_t out;
    char why[128];
    int rc = spk_token_verify(g_kr, tok, len, now, leeway, &out, why, sizeof(why));
    if (rc == SPK_ETOKENEXPIRED || rc == SPK_ETOKENNOTYET) {
        /* signed, only the time failed: the claims say whose token it was */
        assert_true(out.sub[0] != '\0');
        assert_true(why[0] != '\0');
    } else if (rc != 0) {
        spk_token_claims_t zero;
        memset(&zero, 0, sizeof(zero));
        assert_memory_equal(&out, &zero, sizeof(out));
        assert_true(why[0] != '\0');
    }
    return rc;
}

static int verify_str(const char *tok)
{
    return verify_at(tok, strlen(tok), NOW, 0);
}

/* Builds a compact JWS over arbitrary header and payload bytes, signed with `seed`. */
static void raw_token(const uint8_t seed[32], const char *hdr, const char *pay, char *out)
{
    size_t o = spk_b64url_encode(out, (const uint8_t *)hdr, strlen(hdr));
    out[o++] = '.';
    o += spk_b64url_encode(out + o, (const uint8_t *)pay, strlen(pay));
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t sig[64];
    size_t sl = sizeof(sig);
    assert_non_null(pk);
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)out, o), 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    out[o++] = '.';
    spk_b64url_encode(out + o, sig, sizeof(sig));
}

static int verify_raw(const char *hdr, const char *pay)
{
    char tok[3 * TOK_CAP];
    raw_token(k_seed, hdr, pay, tok);
    return verify_str(tok);
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void test_signer_from_seed_kat(void **state)
{
    spk_signer_t s;
    assert_int_equal(spk_signer_from_seed(&s, k_seed, ISS), 0);
    assert_memory_equal(s.pub, k_pub, 32);
    /* base64url(SHA-256(pub)), first 16 characters. */
    assert_string_equal(s.kid, "If4x36FUomFia_hU");
    assert_string_equal(s.iss, ISS);
    spk_signer_wipe(&s);
    const uint8_t zero[sizeof(s)] = {0};
    assert_memory_equal(&s, zero, sizeof(s));
}

static void test_signer_generate(void **state)
{
    spk_signer_t a, b;
    assert_int_equal(spk_signer_generate(&a, ISS), 0);
    assert_int_equal(spk_signer_generate(&b, ISS), 0);
    assert_memory_not_equal(a.seed, b.seed, 32);
    assert_int_equal(strlen(a.kid), 16);
    assert_string_not_equal(a.kid, b.kid);
    assert_int_equal(spk_signer_generate(&a, ""), SPK_EINVAL);
    assert_int_equal(spk_signer_generate(&a, "has space"), SPK_EINVAL);
    assert_int_equal(spk_signer_generate(NULL, ISS), SPK_EINVAL);
    char longiss[SPK_TOKEN_STR + 1];
    memset(longiss, 'a', SPK_TOKEN_STR);
    longiss[SPK_TOKEN_STR] = '\0';
    assert_int_equal(spk_signer_generate(&a, longiss), SPK_EINVAL);
    longiss[SPK_TOKEN_STR - 1] = '\0';
    assert_int_equal(spk_signer_generate(&a, longiss), 0);
    spk_signer_wipe(&a);
    spk_signer_wipe(&b);
}

/* ---- round trip ---------------------------------------------------------------------------- */

static void test_roundtrip_all_claims(void **state)
{
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    make_claims(&c);
    strcpy(c.iss, "ignored: the signer's iss is used");
    size_t n = sign_ok(&g_signer, &c, tok);
    char why[64] = "unchanged";
    assert_int_equal(spk_token_verify(g_kr, tok, n, NOW, 0, &out, why, sizeof(why)), 0);
    assert_string_equal(why, "");
    assert_string_equal(out.iss, ISS);
    assert_string_equal(out.kid, g_signer.kid);
    assert_string_equal(out.sub, c.sub);
    assert_string_equal(out.name, c.name);
    assert_int_equal(out.role, SPK_ROLE_GP);
    assert_string_equal(out.practice, c.practice);
    assert_string_equal(out.acts_for, c.acts_for);
    assert_string_equal(out.consult, c.consult);
    assert_string_equal(out.jti, c.jti);
    assert_int_equal(out.exp, c.exp);
    assert_int_equal(out.nbf, c.nbf);
    assert_int_equal(out.iat, c.iat);
    /* The header is exactly alg, typ, kid. */
    uint8_t hdr[256];
    long hl = spk_b64url_decode(hdr, sizeof(hdr) - 1, tok, (size_t)(strchr(tok, '.') - tok));
    assert_true(hl > 0);
    hdr[hl] = '\0';
    char want[256];
    snprintf(want, sizeof(want), "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             g_signer.kid);
    assert_string_equal((char *)hdr, want);
}

static void test_roundtrip_optional_absent(void **state)
{
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    make_claims(&c);
    c.name[0] = c.practice[0] = c.acts_for[0] = c.consult[0] = '\0';
    size_t n = sign_ok(&g_signer, &c, tok);
    assert_int_equal(spk_token_verify(g_kr, tok, n, NOW, 0, &out, NULL, 0), 0);
    assert_string_equal(out.name, "");
    assert_string_equal(out.practice, "");
    assert_string_equal(out.acts_for, "");
    assert_string_equal(out.consult, "");
    /* Raw payload with only the required claims. */
    assert_int_equal(verify_raw(H_OK, "{" P_BASE "}"), 0);
    /* Unknown claims are ignored; typ is optional. */
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\"}",
                                "{" P_BASE ",\"xyz\":[1,{\"x\":null}]}"),
                     0);
    /* "aud" is known: a string or an array of strings. */
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"aud\":[1,{\"x\":null}]}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"aud\":[]}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"aud\":\"x\\u202ey\"}"), SPK_ETOKENINVALID);
}

static int verify_policy(const char *pay, const char *aud, int64_t max_life, char *got_aud)
{
    char tok[3 * TOK_CAP];
    raw_token(k_seed, H_OK, pay, tok);
    spk_token_claims_t out;
    const spk_token_policy_t pol = {.audience = aud, .max_lifetime_s = max_life};
    int rc = spk_token_verify_policy(g_kr, tok, strlen(tok), NOW, 0, &pol, &out, NULL, 0);
    if (got_aud != NULL) {
        strcpy(got_aud, out.aud);
    }
    return rc;
}

/* Audience and longest lifetime, checked only when the deployment asks for them. */
static void test_policy(void **state)
{
    char aud[SPK_TOKEN_STR];
    assert_int_equal(verify_policy("{" P_BASE ",\"aud\":\"spreekkamer\"}", "spreekkamer", 0, aud),
                     0);
    assert_string_equal(aud, "spreekkamer");
    assert_int_equal(
        verify_policy("{" P_BASE ",\"aud\":[\"other\",\"spreekkamer\"]}", "spreekkamer", 0, aud),
        0);
    assert_string_equal(aud, "spreekkamer");
    assert_int_equal(verify_policy("{" P_BASE ",\"aud\":\"other\"}", "spreekkamer", 0, NULL),
                     SPK_ETOKENINVALID);
    assert_int_equal(verify_policy("{" P_BASE ",\"aud\":[\"a\",\"b\"]}", "spreekkamer", 0, NULL),
                     SPK_ETOKENINVALID);
    assert_int_equal(verify_policy("{" P_BASE "}", "spreekkamer", 0, NULL), SPK_ETOKENINVALID);
    assert_int_equal(verify_policy("{" P_BASE "}", NULL, 0, NULL), 0);
    assert_int_equal(verify_policy("{" P_BASE "}", "", 0, NULL), 0);
    /* P_TIMES: iat NOW-60, exp NOW+3600: 3660 s. */
    assert_int_equal(verify_policy("{" P_BASE "}", NULL, 3660, NULL), 0);
    assert_int_equal(verify_policy("{" P_BASE "}", NULL, 3659, NULL), SPK_ETOKENINVALID);
    /* exp before iat */
    assert_int_equal(verify_policy("{\"iss\":\"" ISS
                                   "\",\"sub\":\"u1\",\"role\":\"gp\",\"jti\":\"j1\","
                                   "\"exp\":1700003600,\"nbf\":1699999940,\"iat\":1700009999}",
                                   NULL, 3660, NULL),
                     SPK_ETOKENINVALID);
    /* A signed aud round-trips. */
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    make_claims(&c);
    strcpy(c.aud, "spreekkamer");
    size_t n = sign_ok(&g_signer, &c, tok);
    const spk_token_policy_t pol = {.audience = "spreekkamer"};
    assert_int_equal(spk_token_verify_policy(g_kr, tok, n, NOW, 0, &pol, &out, NULL, 0), 0);
    assert_string_equal(out.aud, "spreekkamer");
}

static void test_each_role(void **state)
{
    for (int r = SPK_ROLE_NONE + 1; r < SPK_ROLE_COUNT; r++) {
        spk_token_claims_t c, out;
        char tok[TOK_CAP];
        make_claims(&c);
        c.role = (spk_role_t)r;
        size_t n = sign_ok(&g_signer, &c, tok);
        assert_int_equal(spk_token_verify(g_kr, tok, n, NOW, 0, &out, NULL, 0), 0);
        assert_int_equal(out.role, r);
        char pay[512];
        snprintf(pay, sizeof(pay),
                 "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"role\":\"%s\",\"jti\":\"j\"," P_TIMES "}",
                 spk_role_name((spk_role_t)r));
        assert_int_equal(verify_raw(H_OK, pay), 0);
    }
}

static void test_unknown_role(void **state)
{
    const char *tail = ",\"sub\":\"u\",\"jti\":\"j\"," P_TIMES "}";
    char pay[512];
    const char *roles[] = {"\"doctor\"", "\"none\"", "\"GP\"", "\"\"", "1", "null", "[\"gp\"]"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"role\":%s%s", roles[i], tail);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    }
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\"%s", tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    /* Signing refuses roles outside the enum. */
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    c.role = SPK_ROLE_NONE;
    assert_int_equal(spk_token_sign(&g_signer, &c, tok, sizeof(tok)), SPK_EINVAL);
    c.role = SPK_ROLE_COUNT;
    assert_int_equal(spk_token_sign(&g_signer, &c, tok, sizeof(tok)), SPK_EINVAL);
}

/* ---- time ---------------------------------------------------------------------------------- */

static void test_expired_and_not_yet(void **state)
{
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    size_t n = sign_ok(&g_signer, &c, tok);
    assert_int_equal(verify_at(tok, n, NOW, 0), 0);
    assert_int_equal(verify_at(tok, n, NOW + 7200, 0), SPK_ETOKENEXPIRED);
    assert_int_equal(verify_at(tok, n, NOW - 3600, 0), SPK_ETOKENNOTYET);
    assert_int_equal(verify_at(tok, n, INT64_MAX, 0), SPK_ETOKENEXPIRED);
    assert_int_equal(verify_at(tok, n, INT64_MIN, 0), SPK_ETOKENNOTYET);
    char why[64];
    spk_token_claims_t out;
    assert_int_equal(spk_token_verify(g_kr, tok, n, NOW + 7200, 0, &out, why, sizeof(why)),
                     SPK_ETOKENEXPIRED);
    assert_string_equal(why, "token has expired");
}

static void test_leeway_edges(void **state)
{
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    c.nbf = NOW;
    c.exp = NOW + 100;
    size_t n = sign_ok(&g_signer, &c, tok);
    /* Without leeway: valid in [nbf, exp). */
    assert_int_equal(verify_at(tok, n, NOW - 1, 0), SPK_ETOKENNOTYET);
    assert_int_equal(verify_at(tok, n, NOW, 0), 0);
    assert_int_equal(verify_at(tok, n, NOW + 99, 0), 0);
    assert_int_equal(verify_at(tok, n, NOW + 100, 0), SPK_ETOKENEXPIRED);
    /* With 30 s leeway: valid in [nbf - 30, exp + 30). */
    assert_int_equal(verify_at(tok, n, NOW - 31, 30), SPK_ETOKENNOTYET);
    assert_int_equal(verify_at(tok, n, NOW - 30, 30), 0);
    assert_int_equal(verify_at(tok, n, NOW + 129, 30), 0);
    assert_int_equal(verify_at(tok, n, NOW + 130, 30), SPK_ETOKENEXPIRED);
    /* Huge leeway and extreme claim values must not overflow. */
    assert_int_equal(verify_at(tok, n, NOW, INT64_MAX), 0);
    assert_int_equal(verify_at(tok, n, NOW, -1), SPK_EINVAL);
    assert_int_equal(verify_raw(H_OK, "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"role\":\"gp\","
                                      "\"jti\":\"j\",\"exp\":9223372036854775807,"
                                      "\"nbf\":-9223372036854775808,\"iat\":0}"),
                     0);
    char t2[TOK_CAP];
    raw_token(k_seed, H_OK,
              "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"role\":\"gp\",\"jti\":\"j\","
              "\"exp\":9223372036854775807,\"nbf\":-9223372036854775808,\"iat\":0}",
              t2);
    assert_int_equal(verify_at(t2, strlen(t2), INT64_MAX, 10), 0);
    assert_int_equal(verify_at(t2, strlen(t2), INT64_MIN, 10), 0);
    /* Beyond int64: not a JSON integer jansson can hold. */
    assert_int_equal(verify_raw(H_OK, "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"role\":\"gp\","
                                      "\"jti\":\"j\",\"exp\":9223372036854775808,"
                                      "\"nbf\":0,\"iat\":0}"),
                     SPK_ETOKENINVALID);
}

/* ---- forgery ------------------------------------------------------------------------------- */

/* Rebuilds tok with one bit flipped in the decoded bytes of part `part`. */
static size_t flip_bit(const char *tok, int part, size_t bit, char *out)
{
    const char *p[3];
    size_t l[3];
    p[0] = tok;
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    l[0] = (size_t)(d1 - tok);
    p[1] = d1 + 1;
    l[1] = (size_t)(d2 - p[1]);
    p[2] = d2 + 1;
    l[2] = strlen(p[2]);
    uint8_t raw[SPK_TOKEN_MAX_LEN];
    long n = spk_b64url_decode(raw, sizeof(raw), p[part], l[part]);
    assert_true(n > 0);
    if (bit >= (size_t)n * 8) {
        return 0;
    }
    raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        if (i == part) {
            o += spk_b64url_encode(out + o, raw, (size_t)n);
        } else {
            memcpy(out + o, p[i], l[i]);
            o += l[i];
        }
        out[o++] = '.';
    }
    out[--o] = '\0';
    return o;
}

static void test_forged_bitflip_each_part(void **state)
{
    spk_token_claims_t c;
    char tok[TOK_CAP], bad[2 * TOK_CAP];
    make_claims(&c);
    sign_ok(&g_signer, &c, tok);
    /* Header bit: raw token whose header has an ignored member we can alter. */
    char rt[TOK_CAP];
    raw_token(k_seed, "{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\",\"x\":\"a\"}", "{" P_BASE "}",
              rt);
    assert_int_equal(verify_str(rt), 0);
    char *x = strstr(rt, ".");
    uint8_t h[128];
    long hl = spk_b64url_decode(h, sizeof(h), rt, (size_t)(x - rt));
    assert_true(hl > 3);
    /* "a" -> "c": bit 1 of the byte before the closing quote and brace. */
    assert_true(flip_bit(rt, 0, (size_t)(hl - 3) * 8 + 1, bad) > 0);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    /* Payload bit: the case bit of the first letter of "sub"'s value ("uzi" -> "Uzi"). */
    uint8_t pay[1024];
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    long pl = spk_b64url_decode(pay, sizeof(pay), d1 + 1, (size_t)(d2 - d1 - 1));
    assert_true(pl > 0);
    const char *sub = strstr((const char *)pay, "\"sub\":\"uzi") + 7;
    size_t off = (size_t)(sub - (const char *)pay);
    assert_true(flip_bit(tok, 1, off * 8 + 5, bad) > 0);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    /* Signature bits: first, a middle one, last. */
    const size_t sig_bits[] = {0, 257, 511};
    for (size_t i = 0; i < 3; i++) {
        assert_true(flip_bit(tok, 2, sig_bits[i], bad) > 0);
        assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    }
    assert_int_equal(verify_str(tok), 0);
}

static void test_forged_every_bit(void **state)
{
    spk_token_claims_t c;
    char tok[TOK_CAP], bad[2 * TOK_CAP];
    make_claims(&c);
    sign_ok(&g_signer, &c, tok);
    size_t tried = 0;
    for (int part = 0; part < 3; part++) {
        for (size_t bit = 0;; bit++) {
            size_t n = flip_bit(tok, part, bit, bad);
            if (n == 0) {
                break;
            }
            int rc = verify_at(bad, n, NOW, 0);
            if (rc != SPK_ETOKENINVALID && rc != SPK_ETOKENISSUER) {
                print_error("part %d bit %zu: %s\n", part, bit, spk_err_name(rc));
                fail();
            }
            tried++;
        }
    }
    assert_true(tried > 2000);
}

static void test_swapped_payload(void **state)
{
    spk_token_claims_t a, b;
    char ta[TOK_CAP], tb[TOK_CAP], mix[2 * TOK_CAP];
    make_claims(&a);
    make_claims(&b);
    strcpy(b.sub, "uzi:attacker");
    b.role = SPK_ROLE_ADMIN;
    sign_ok(&g_signer, &a, ta);
    sign_ok(&g_signer, &b, tb);
    /* b's header and payload with a's signature. */
    const char *sa = strrchr(ta, '.');
    const char *sb = strrchr(tb, '.');
    snprintf(mix, sizeof(mix), "%.*s%s", (int)(sb - tb), tb, sa);
    assert_int_equal(verify_str(mix), SPK_ETOKENINVALID);
    /* a's header, b's payload, a's signature. */
    const char *da = strchr(ta, '.');
    const char *db = strchr(tb, '.');
    snprintf(mix, sizeof(mix), "%.*s%.*s%s", (int)(da - ta), ta, (int)(sb - db), db, sa);
    assert_int_equal(verify_str(mix), SPK_ETOKENINVALID);
}

static void test_wrong_issuer(void **state)
{
    spk_signer_t other;
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    /* Same key, untrusted issuer name. */
    assert_int_equal(spk_signer_from_seed(&other, k_seed, "https://evil.test"), 0);
    sign_ok(&other, &c, tok);
    assert_int_equal(verify_str(tok), SPK_ETOKENISSUER);
    /* Different key, untrusted issuer. */
    assert_int_equal(spk_signer_generate(&other, "https://evil.test"), 0);
    sign_ok(&other, &c, tok);
    assert_int_equal(verify_str(tok), SPK_ETOKENISSUER);
    spk_signer_wipe(&other);
    /* Missing or mistyped iss cannot select a key. */
    assert_int_equal(verify_raw(H_OK, "{\"sub\":\"u\",\"role\":\"gp\",\"jti\":\"j\"," P_TIMES "}"),
                     SPK_ETOKENINVALID);
    assert_int_equal(
        verify_raw(H_OK, "{\"iss\":7,\"sub\":\"u\",\"role\":\"gp\",\"jti\":\"j\"," P_TIMES "}"),
        SPK_ETOKENINVALID);
}

static void test_right_issuer_wrong_kid(void **state)
{
    spk_signer_t other;
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    /* Trusted issuer name, key not in the keyring. */
    assert_int_equal(spk_signer_generate(&other, ISS), 0);
    sign_ok(&other, &c, tok);
    assert_int_equal(verify_str(tok), SPK_ETOKENISSUER);
    /* Untrusted key claiming a trusted kid of the trusted issuer: signature fails. */
    strcpy(other.kid, g_signer.kid);
    sign_ok(&other, &c, tok);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
    spk_signer_wipe(&other);
}

static void test_issuer_key_confusion(void **state)
{
    /* Two issuers with the same kid: a token of issuer B claiming iss A must not verify. */
    spk_keyring_t *kr;
    spk_signer_t a, b;
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    assert_int_equal(spk_keyring_new(&kr), 0);
    assert_int_equal(spk_signer_generate(&a, "issuer-a"), 0);
    assert_int_equal(spk_signer_generate(&b, "issuer-b"), 0);
    assert_int_equal(spk_keyring_add(kr, "issuer-a", "shared", a.pub), 0);
    assert_int_equal(spk_keyring_add(kr, "issuer-b", "shared", b.pub), 0);
    strcpy(a.kid, "shared");
    strcpy(b.kid, "shared");
    make_claims(&c);
    long n = spk_token_sign(&b, &c, tok, sizeof(tok));
    assert_true(n > 0);
    assert_int_equal(spk_token_verify(kr, tok, (size_t)n, NOW, 0, &out, NULL, 0), 0);
    assert_string_equal(out.iss, "issuer-b");
    strcpy(b.iss, "issuer-a");
    n = spk_token_sign(&b, &c, tok, sizeof(tok));
    assert_true(n > 0);
    assert_int_equal(spk_token_verify(kr, tok, (size_t)n, NOW, 0, &out, NULL, 0),
                     SPK_ETOKENINVALID);
    spk_signer_wipe(&a);
    spk_signer_wipe(&b);
    spk_keyring_free(kr);
}

/* ---- header ---------------------------------------------------------------------------------- */

static void test_header_alg(void **state)
{
    const char *pay = "{" P_BASE "}";
    const char *bad[] = {
        "{\"alg\":\"none\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"HS256\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"RS256\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"ES256\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"eddsa\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"EdDSA \",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"Ed25519\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":null,\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":[\"EdDSA\"],\"kid\":\"" RAW_KID "\"}",
        "{\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\"}",
        "{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\",\"typ\":\"JWS\"}",
        "{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\",\"typ\":1}",
        "{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\",\"crit\":[\"exp\"]}",
        "[\"EdDSA\"]",
        "\"EdDSA\"",
        "{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\"}x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = verify_raw(bad[i], pay);
        if (rc != SPK_ETOKENINVALID) {
            print_error("header %zu: %s\n", i, bad[i]);
        }
        assert_int_equal(rc, SPK_ETOKENINVALID);
    }
    /* Whitespace around JSON members is fine. */
    assert_int_equal(verify_raw(" { \"alg\" : \"EdDSA\" ,\n\"kid\":\"" RAW_KID "\" } ", pay), 0);
}

static void test_header_alg_none_unsigned(void **state)
{
    /* Classic alg:none forms: empty signature, and a zero signature. */
    char tok[TOK_CAP], h[128], p[512];
    const char *hdr = "{\"alg\":\"none\",\"kid\":\"" RAW_KID "\"}";
    const char *pay = "{" P_BASE "}";
    spk_b64url_encode(h, (const uint8_t *)hdr, strlen(hdr));
    spk_b64url_encode(p, (const uint8_t *)pay, strlen(pay));
    snprintf(tok, sizeof(tok), "%s.%s.", h, p);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
    uint8_t zero[64] = {0};
    char zs[100];
    spk_b64url_encode(zs, zero, sizeof(zero));
    snprintf(tok, sizeof(tok), "%s.%s.%s", h, p, zs);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
    /* alg EdDSA with a zero signature. */
    spk_b64url_encode(h, (const uint8_t *)H_OK, strlen(H_OK));
    snprintf(tok, sizeof(tok), "%s.%s.%s", h, p, zs);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
}

static void test_header_kid(void **state)
{
    const char *pay = "{" P_BASE "}";
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", pay), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"\"}", pay), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":1}", pay), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":null}", pay), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"k\\u0001\"}", pay),
                     SPK_ETOKENINVALID);
    /* A well-formed kid that is not trusted. */
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"k2\"}", pay), SPK_ETOKENISSUER);
    /* The kid is compared exactly. */
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"K1\"}", pay), SPK_ETOKENISSUER);
    /* Structure errors win over header errors, header errors over issuer errors. */
    char tok[TOK_CAP];
    raw_token(k_seed, "{\"alg\":\"HS256\",\"kid\":\"unknown\"}", pay, tok);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
}

/* ---- structure ------------------------------------------------------------------------------ */

static void test_bad_base64url(void **state)
{
    char tok[TOK_CAP], bad[2 * TOK_CAP];
    spk_token_claims_t c;
    make_claims(&c);
    size_t n = sign_ok(&g_signer, &c, tok);
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    size_t pos[] = {1, (size_t)(d1 - tok) + 2, (size_t)(d2 - tok) + 2};
    const char subst[] = {'+', '/', '=', ' ', '\0', '\n', '\xff', '*'};
    for (size_t i = 0; i < 3; i++) {
        for (size_t k = 0; k < sizeof(subst); k++) {
            memcpy(bad, tok, n + 1);
            bad[pos[i]] = subst[k];
            assert_int_equal(verify_at(bad, n, NOW, 0), SPK_ETOKENINVALID);
        }
    }
    /* Padding appended to each part. */
    for (size_t i = 0; i < 3; i++) {
        size_t at = i == 0 ? (size_t)(d1 - tok) : i == 1 ? (size_t)(d2 - tok) : n;
        snprintf(bad, sizeof(bad), "%.*s=%s", (int)at, tok, tok + at);
        assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    }
    /* Non-canonical trailing bits in the signature: 86 characters, the last one carries 4
     * unused bits, so a canonical encoding ends in A, Q, g or w. */
    memcpy(bad, tok, n + 1);
    assert_true(n - (size_t)(d2 - tok) - 1 == 86);
    assert_non_null(strchr("AQgw", bad[n - 1]));
    bad[n - 1] = 'B';
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    /* An extra character in the header part. */
    snprintf(bad, sizeof(bad), "%.*sA%s", (int)(d1 - tok), tok, d1);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    /* Signature of the wrong length. */
    snprintf(bad, sizeof(bad), "%.*s.AAAA", (int)(d2 - tok), tok);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%sAAAA", tok);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
}

static void test_dots_and_empty_parts(void **state)
{
    char tok[TOK_CAP], bad[2 * TOK_CAP];
    spk_token_claims_t c;
    make_claims(&c);
    sign_ok(&g_signer, &c, tok);
    const char *d1 = strchr(tok, '.');
    const char *d2 = strchr(d1 + 1, '.');
    const char *fixed[] = {"abc",  "a.b",  ".",    "..",       "...",    "a.b.c.d",
                           "a..c", ".b.c", "a.b.", "e30.e30.", "e30.e30"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        assert_int_equal(verify_str(fixed[i]), SPK_ETOKENINVALID);
    }
    /* The real token with a part removed, emptied, or a fourth part added. */
    snprintf(bad, sizeof(bad), "%.*s", (int)(d2 - tok), tok);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%.*s.%s", (int)(d1 - tok), tok, d2);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%s", d1);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%.*s.", (int)(d2 - tok), tok);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%s.", tok);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    snprintf(bad, sizeof(bad), "%s.%s", tok, d2 + 1);
    assert_int_equal(verify_str(bad), SPK_ETOKENINVALID);
    /* Empty header / payload JSON objects or non-objects. */
    assert_int_equal(verify_raw("{}", "{" P_BASE "}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "[]"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "null"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{" P_BASE), SPK_ETOKENINVALID);
    /* Length 0, and len shorter than the string. */
    assert_int_equal(verify_at(tok, 0, NOW, 0), SPK_ETOKENINVALID);
    assert_int_equal(verify_at(tok, strlen(tok) - 1, NOW, 0), SPK_ETOKENINVALID);
}

static void test_oversize(void **state)
{
    char *big = malloc(SPK_TOKEN_MAX_LEN + 2);
    assert_non_null(big);
    memset(big, 'A', SPK_TOKEN_MAX_LEN + 1);
    big[SPK_TOKEN_MAX_LEN + 1] = '\0';
    assert_int_equal(verify_at(big, SPK_TOKEN_MAX_LEN + 1, NOW, 0), SPK_ETOKENINVALID);
    /* A validly signed token just over the limit is refused on size alone. */
    char pay[4096];
    char pad[3100];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    snprintf(pay, sizeof(pay), "{" P_BASE ",\"pad\":\"%s\"}", pad);
    char tok[3 * TOK_CAP];
    raw_token(k_seed, H_OK, pay, tok);
    assert_true(strlen(tok) > SPK_TOKEN_MAX_LEN);
    assert_int_equal(verify_str(tok), SPK_ETOKENINVALID);
    /* Trim the padding until the token is just within the limit: it verifies. */
    size_t cut = (strlen(tok) - SPK_TOKEN_MAX_LEN) * 3 / 4;
    cut = cut > 4 ? cut - 4 : 0;
    pad[sizeof(pad) - 1 - cut] = '\0';
    for (int i = 0; i < 64; i++) {
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"pad\":\"%s\"}", pad);
        raw_token(k_seed, H_OK, pay, tok);
        if (strlen(tok) <= SPK_TOKEN_MAX_LEN) {
            break;
        }
        pad[strlen(pad) - 1] = '\0';
    }
    assert_true(strlen(tok) <= SPK_TOKEN_MAX_LEN);
    assert_true(strlen(tok) > SPK_TOKEN_MAX_LEN - 4);
    assert_int_equal(verify_str(tok), 0);
    free(big);
}

/* ---- claims --------------------------------------------------------------------------------- */

static void test_numeric_claims(void **state)
{
    const char *head = "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"role\":\"gp\",\"jti\":\"j\",";
    const char *bad[] = {
        "\"exp\":1700003600.0,\"nbf\":0,\"iat\":0}",
        "\"exp\":1.7e9,\"nbf\":0,\"iat\":0}",
        "\"exp\":\"1700003600\",\"nbf\":0,\"iat\":0}",
        "\"exp\":null,\"nbf\":0,\"iat\":0}",
        "\"exp\":true,\"nbf\":0,\"iat\":0}",
        "\"nbf\":0,\"iat\":0}",
        "\"exp\":1700003600,\"iat\":0}",
        "\"exp\":1700003600,\"nbf\":0}",
        "\"exp\":1700003600,\"nbf\":0.5,\"iat\":0}",
        "\"exp\":1700003600,\"nbf\":0,\"iat\":[]}",
        "\"exp\":1700003600,\"nbf\":0,\"iat\":-1e0}",
        "\"exp\":01700003600,\"nbf\":0,\"iat\":0}",
    };
    char pay[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(pay, sizeof(pay), "%s%s", head, bad[i]);
        if (verify_raw(H_OK, pay) != SPK_ETOKENINVALID) {
            print_error("payload %zu: %s\n", i, pay);
            fail();
        }
    }
    snprintf(pay, sizeof(pay), "%s%s", head, "\"exp\":1700003600,\"nbf\":-0,\"iat\":0}");
    assert_int_equal(verify_raw(H_OK, pay), 0);
}

static void test_duplicate_keys(void **state)
{
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"sub\":\"admin\"}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"role\":\"admin\"}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{" P_BASE ",\"exp\":9999999999}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw(H_OK, "{\"iss\":\"x\"," P_BASE "}"), SPK_ETOKENINVALID);
    assert_int_equal(verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"" RAW_KID "\",\"kid\":\"" RAW_KID
                                "\"}",
                                "{" P_BASE "}"),
                     SPK_ETOKENINVALID);
}

static void test_string_claims(void **state)
{
    char pay[1024];
    char s127[128], s128[129];
    memset(s127, 'a', 127);
    s127[127] = '\0';
    memset(s128, 'a', 128);
    s128[128] = '\0';
    const char *fields[] = {"name", "practice", "acts_for", "consult"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":\"%s\"}", fields[i], s127);
        assert_int_equal(verify_raw(H_OK, pay), 0);
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":\"%s\"}", fields[i], s128);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":1}", fields[i]);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":null}", fields[i]);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":\"a\\u0007b\"}", fields[i]);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
        snprintf(pay, sizeof(pay), "{" P_BASE ",\"%s\":\"a\\u0000b\"}", fields[i]);
        assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    }
    /* Required strings: too long, empty, missing, mistyped. */
    const char *tail = ",\"role\":\"gp\"," P_TIMES "}";
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"jti\":\"j\"%s", s128, tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"jti\":\"j\"%s", s127, tail);
    assert_int_equal(verify_raw(H_OK, pay), 0);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"jti\":\"%s\"%s", s128, tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":\"\",\"jti\":\"j\"%s", tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"jti\":\"j\"%s", tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":\"u\"%s", tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    snprintf(pay, sizeof(pay), "{\"iss\":\"" ISS "\",\"sub\":[],\"jti\":\"j\"%s", tail);
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
    /* UTF-8 is fine; escapes are decoded. */
    snprintf(pay, sizeof(pay), "{" P_BASE ",\"name\":\"Jos\\u00e9 \\\"J\\\" M\xc3\xbcller\"}");
    char tok[TOK_CAP];
    raw_token(k_seed, H_OK, pay, tok);
    spk_token_claims_t out;
    assert_int_equal(spk_token_verify(g_kr, tok, strlen(tok), NOW, 0, &out, NULL, 0), 0);
    assert_string_equal(out.name, "Jos\xc3\xa9 \"J\" M\xc3\xbcller");
    /* Invalid UTF-8 in the payload. */
    snprintf(pay, sizeof(pay), "{" P_BASE ",\"name\":\"\xc3\"}");
    assert_int_equal(verify_raw(H_OK, pay), SPK_ETOKENINVALID);
}

static void test_sign_errors(void **state)
{
    spk_token_claims_t c;
    char tok[TOK_CAP];
    make_claims(&c);
    long n = spk_token_sign(&g_signer, &c, tok, sizeof(tok));
    assert_true(n > 0);
    /* Exactly enough room, and one byte short. */
    assert_int_equal(spk_token_sign(&g_signer, &c, tok, (size_t)n + 1), n);
    assert_int_equal(spk_token_sign(&g_signer, &c, tok, (size_t)n), SPK_ERANGE);
    assert_string_equal(tok, "");
    assert_int_equal(spk_token_sign(&g_signer, &c, tok, 0), SPK_ERANGE);
    assert_int_equal(spk_token_sign(NULL, &c, tok, sizeof(tok)), SPK_EINVAL);
    assert_int_equal(spk_token_sign(&g_signer, NULL, tok, sizeof(tok)), SPK_EINVAL);
    assert_int_equal(spk_token_sign(&g_signer, &c, NULL, sizeof(tok)), SPK_EINVAL);
    /* Claims that the verifier would refuse are refused when signing. */
    spk_token_claims_t b = c;
    b.sub[0] = '\0';
    assert_int_equal(spk_token_sign(&g_signer, &b, tok, sizeof(tok)), SPK_EINVAL);
    b = c;
    b.jti[0] = '\0';
    assert_int_equal(spk_token_sign(&g_signer, &b, tok, sizeof(tok)), SPK_EINVAL);
    b = c;
    memset(b.name, 'n', sizeof(b.name)); /* not NUL terminated */
    assert_int_equal(spk_token_sign(&g_signer, &b, tok, sizeof(tok)), SPK_EINVAL);
    b = c;
    strcpy(b.practice, "a\nb");
    assert_int_equal(spk_token_sign(&g_signer, &b, tok, sizeof(tok)), SPK_EINVAL);
    b = c;
    strcpy(b.consult, "\xff\xfe");
    assert_int_equal(spk_token_sign(&g_signer, &b, tok, sizeof(tok)), SPK_EINVAL);
    spk_signer_t s = g_signer;
    s.kid[0] = '\0';
    assert_int_equal(spk_token_sign(&s, &c, tok, sizeof(tok)), SPK_EINVAL);
    spk_signer_wipe(&s);
    /* Largest claims: every string 127 bytes of characters JSON must escape. */
    b = c;
    char *fields[] = {b.sub, b.name, b.practice, b.acts_for, b.consult, b.jti};
    for (size_t i = 0; i < 6; i++) {
        memset(fields[i], '"', SPK_TOKEN_STR - 1);
        fields[i][SPK_TOKEN_STR - 1] = '\0';
    }
    n = spk_token_sign(&g_signer, &b, tok, sizeof(tok));
    assert_true(n > 0 && n <= SPK_TOKEN_MAX_LEN);
    spk_token_claims_t out;
    assert_int_equal(spk_token_verify(g_kr, tok, (size_t)n, NOW, 0, &out, NULL, 0), 0);
    assert_string_equal(out.consult, b.consult);
}

static void test_verify_args(void **state)
{
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    make_claims(&c);
    size_t n = sign_ok(&g_signer, &c, tok);
    assert_int_equal(spk_token_verify(NULL, tok, n, NOW, 0, &out, NULL, 0), SPK_EINVAL);
    assert_int_equal(spk_token_verify(g_kr, NULL, n, NOW, 0, &out, NULL, 0), SPK_EINVAL);
    assert_int_equal(spk_token_verify(g_kr, tok, n, NOW, 0, NULL, NULL, 0), SPK_EINVAL);
    /* A short why buffer is truncated, not overrun. */
    char why[4] = "xyz";
    assert_int_equal(spk_token_verify(g_kr, "a.b", 3, NOW, 0, &out, why, 1), SPK_ETOKENINVALID);
    assert_string_equal(why, "");
    assert_int_equal(spk_token_verify(g_kr, "a.b", 3, NOW, 0, &out, why, sizeof(why)),
                     SPK_ETOKENINVALID);
    assert_int_equal(strlen(why), 3);
    /* A token embedded in a larger buffer: only len bytes count. */
    char buf[TOK_CAP + 8];
    snprintf(buf, sizeof(buf), "%sGARBAGE", tok);
    assert_int_equal(verify_at(buf, n, NOW, 0), 0);
}

/* ---- keyring ----------------------------------------------------------------------------------
 */

static void test_keyring_full_and_duplicate(void **state)
{
    spk_keyring_t *kr;
    uint8_t pub[32] = {1};
    assert_int_equal(spk_keyring_new(&kr), 0);
    char kid[16], line[128], pubs[48];
    spk_b64url_encode(pubs, pub, 32);
    for (int i = 0; i < 64; i++) {
        snprintf(kid, sizeof(kid), "k%d", i);
        assert_int_equal(spk_keyring_add(kr, ISS, kid, pub), 0);
    }
    assert_int_equal(spk_keyring_add(kr, ISS, "k64", pub), SPK_ERANGE);
    assert_int_equal(spk_keyring_add(kr, ISS, "k7", pub), SPK_EEXIST);
    snprintf(line, sizeof(line), "%s k65 %s", ISS, pubs);
    assert_int_equal(spk_keyring_add_str(kr, line), SPK_ERANGE);
    snprintf(line, sizeof(line), "%s k63 %s", ISS, pubs);
    assert_int_equal(spk_keyring_add_str(kr, line), SPK_EEXIST);
    spk_keyring_free(kr);

    assert_int_equal(spk_keyring_new(&kr), 0);
    assert_int_equal(spk_keyring_add(kr, ISS, "k", pub), 0);
    assert_int_equal(spk_keyring_add(kr, ISS, "k", k_pub), SPK_EEXIST);
    assert_int_equal(spk_keyring_add(kr, "other", "k", pub), 0);
    assert_int_equal(spk_keyring_add(kr, ISS, "k2", pub), 0);
    assert_int_equal(spk_keyring_add(kr, "", "k", pub), SPK_EINVAL);
    assert_int_equal(spk_keyring_add(kr, ISS, "", pub), SPK_EINVAL);
    assert_int_equal(spk_keyring_add(kr, ISS, "a b", pub), SPK_EINVAL);
    assert_int_equal(spk_keyring_add(kr, ISS, "k3", NULL), SPK_EINVAL);
    assert_int_equal(spk_keyring_add(NULL, ISS, "k3", pub), SPK_EINVAL);
    spk_keyring_free(kr);
    spk_keyring_free(NULL);
    assert_int_equal(spk_keyring_new(NULL), SPK_EINVAL);
}

static void test_keyring_add_str(void **state)
{
    spk_keyring_t *kr;
    char pub[48], line[256];
    spk_b64url_encode(pub, g_signer.pub, 32);
    assert_int_equal(spk_keyring_new(&kr), 0);
    snprintf(line, sizeof(line), "%s %s %s\n", ISS, g_signer.kid, pub);
    assert_int_equal(spk_keyring_add_str(kr, line), 0);
    assert_int_equal(spk_keyring_add_str(kr, line), SPK_EEXIST);
    snprintf(line, sizeof(line), "  %s\tk2   %s\r\n", ISS, pub);
    assert_int_equal(spk_keyring_add_str(kr, line), 0);
    const char *bad[] = {
        "",
        "iss kid",
        "iss kid AAAA extra",
        "iss kid AAAA",
        "iss kid 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "iss kid 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "iss kid 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURoA",
        "iss\x01 kid 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "iss kid 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\n\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (spk_keyring_add_str(kr, bad[i]) != SPK_ECONFIG) {
            print_error("line %zu\n", i);
            fail();
        }
    }
    assert_int_equal(spk_keyring_add_str(kr, NULL), SPK_EINVAL);
    char huge[1024];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(spk_keyring_add_str(kr, huge), SPK_ECONFIG);
    /* A token verifies against the key added in config form. */
    spk_token_claims_t c, out;
    char tok[TOK_CAP];
    make_claims(&c);
    size_t n = sign_ok(&g_signer, &c, tok);
    assert_int_equal(spk_token_verify(kr, tok, n, NOW, 0, &out, NULL, 0), 0);
    spk_keyring_free(kr);
}

/* ---- key files --------------------------------------------------------------------------------
 */

static char g_dir[PATH_MAX];

static int dir_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/spk_token_XXXXXX", base != NULL ? base : "/tmp");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int dir_teardown(void **state)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[PATH_MAX + 256];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return rmdir(g_dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_keyfile_roundtrip(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/signing.key", g_dir);
    spk_signer_t s, l;
    assert_int_equal(spk_signer_generate(&s, ISS), 0);
    mode_t old = umask(0);
    assert_int_equal(spk_signer_save(&s, path), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(g_dir), 1);
    assert_int_equal(spk_signer_load(&l, path), 0);
    assert_memory_equal(&s, &l, sizeof(s));
    /* File content is the documented single line. */
    char want[256], seed[48], got[256] = "";
    spk_b64url_encode(seed, s.seed, 32);
    snprintf(want, sizeof(want), "%s %s %s\n", ISS, s.kid, seed);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(got, sizeof(got), f));
    fclose(f);
    assert_string_equal(got, want);
    /* Saving again replaces the key atomically, leaving no temporary file. */
    spk_signer_t s2;
    assert_int_equal(spk_signer_from_seed(&s2, k_seed, "embedded"), 0);
    assert_int_equal(spk_signer_save(&s2, path), 0);
    assert_int_equal(count_entries(g_dir), 1);
    assert_int_equal(spk_signer_load(&l, path), 0);
    assert_memory_equal(&s2, &l, sizeof(s2));
    /* A kid assigned elsewhere is kept on load. */
    snprintf(want, sizeof(want), "idp key-2026-01 %s\n", seed);
    write_file(path, want, 0600);
    assert_int_equal(spk_signer_load(&l, path), 0);
    assert_string_equal(l.kid, "key-2026-01");
    assert_string_equal(l.iss, "idp");
    assert_memory_equal(l.seed, s.seed, 32);
    assert_memory_equal(l.pub, s.pub, 32);
    spk_signer_wipe(&s);
    spk_signer_wipe(&s2);
    spk_signer_wipe(&l);
}

static void test_keyfile_permissions(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/perm.key", g_dir);
    assert_int_equal(spk_signer_save(&g_signer, path), 0);
    spk_signer_t l;
    const mode_t bad[] = {0640, 0604, 0644, 0660, 0606, 0610, 0601, 0620, 0602};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        assert_int_equal(spk_signer_load(&l, path), SPK_ECONFIG);
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(spk_signer_load(&l, path), 0);
    assert_memory_equal(&l, &g_signer, sizeof(l));
    /* Not a regular file. */
    assert_int_equal(spk_signer_load(&l, g_dir), SPK_ECONFIG);
    /* Missing file. */
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof(missing), "%s/missing.key", g_dir);
    assert_int_equal(spk_signer_load(&l, missing), SPK_ENOTFOUND);
    /* Save into a directory that does not exist. */
    snprintf(missing, sizeof(missing), "%s/no/such/dir.key", g_dir);
    assert_int_equal(spk_signer_save(&g_signer, missing), SPK_EIO);
    assert_int_equal(spk_signer_save(NULL, path), SPK_EINVAL);
    assert_int_equal(spk_signer_load(NULL, path), SPK_EINVAL);
    spk_signer_wipe(&l);
    unlink(path);
}

static void test_keyfile_malformed(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/bad.key", g_dir);
    char seed[48];
    spk_b64url_encode(seed, k_seed, 32);
    char line[1024];
    /* "@" stands for the base64url seed. */
    const char *forms[] = {
        "",
        "\n",
        "iss kid\n",
        "iss @\n",
        "iss kid @ extra\n",
        "iss kid @=\n",
        "iss kid @AAAA\n",
        "iss\x7f kid @\n",
        "iss kid @\n\n",
        "iss kid AAAA\n",
    };
    spk_signer_t l;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *at = strchr(forms[i], '@');
        if (at != NULL) {
            snprintf(line, sizeof(line), "%.*s%s%s", (int)(at - forms[i]), forms[i], seed, at + 1);
        } else {
            snprintf(line, sizeof(line), "%s", forms[i]);
        }
        write_file(path, line, 0600);
        if (spk_signer_load(&l, path) != SPK_ECONFIG) {
            print_error("key file %zu: %s\n", i, line);
            fail();
        }
    }
    /* Embedded NUL. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "iss kid %s", seed);
    fputc('\0', f);
    fputc('\n', f);
    fclose(f);
    assert_int_equal(spk_signer_load(&l, path), SPK_ECONFIG);
    /* Too long. */
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    write_file(path, line, 0600);
    assert_int_equal(spk_signer_load(&l, path), SPK_ECONFIG);
    /* Without trailing newline and with CRLF both load. */
    snprintf(line, sizeof(line), "iss kid %s", seed);
    write_file(path, line, 0600);
    assert_int_equal(spk_signer_load(&l, path), 0);
    snprintf(line, sizeof(line), "iss kid %s\r\n", seed);
    write_file(path, line, 0600);
    assert_int_equal(spk_signer_load(&l, path), 0);
    assert_memory_equal(l.pub, k_pub, 32);
    spk_signer_wipe(&l);
    unlink(path);
}

static void test_session_name(void **state)
{
    (void)state;
    spk_token_claims_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.iss, sizeof(a.iss), "spreekkamer-local");
    snprintf(a.sub, sizeof(a.sub), "p_1");
    snprintf(a.consult, sizeof(a.consult), "c_1");
    snprintf(a.jti, sizeof(a.jti), "j1");
    char n1[SPK_TOKEN_SESSION_NAME_LEN], n2[SPK_TOKEN_SESSION_NAME_LEN];
    assert_int_equal(spk_token_session_name(&a, n1), 0);
    assert_int_equal(strlen(n1), SPK_TOKEN_SESSION_NAME_LEN - 1);
    assert_memory_equal(n1, "session ", 8);
    assert_int_equal(spk_token_session_name(&a, n2), 0);
    assert_string_equal(n1, n2); /* the same claims, the same record */
    /* any of the four claims changed, or moved from one field into the next: another record */
    spk_token_claims_t b = a;
    snprintf(b.jti, sizeof(b.jti), "j2");
    assert_int_equal(spk_token_session_name(&b, n2), 0);
    assert_string_not_equal(n1, n2);
    b = a;
    snprintf(b.consult, sizeof(b.consult), "c_2");
    assert_int_equal(spk_token_session_name(&b, n2), 0);
    assert_string_not_equal(n1, n2);
    b = a;
    snprintf(b.sub, sizeof(b.sub), "p_1c");
    snprintf(b.consult, sizeof(b.consult), "_1");
    assert_int_equal(spk_token_session_name(&b, n2), 0);
    assert_string_not_equal(n1, n2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_from_seed_kat),
        cmocka_unit_test(test_signer_generate),
        cmocka_unit_test(test_roundtrip_all_claims),
        cmocka_unit_test(test_roundtrip_optional_absent),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_each_role),
        cmocka_unit_test(test_unknown_role),
        cmocka_unit_test(test_expired_and_not_yet),
        cmocka_unit_test(test_leeway_edges),
        cmocka_unit_test(test_forged_bitflip_each_part),
        cmocka_unit_test(test_forged_every_bit),
        cmocka_unit_test(test_swapped_payload),
        cmocka_unit_test(test_wrong_issuer),
        cmocka_unit_test(test_right_issuer_wrong_kid),
        cmocka_unit_test(test_issuer_key_confusion),
        cmocka_unit_test(test_header_alg),
        cmocka_unit_test(test_header_alg_none_unsigned),
        cmocka_unit_test(test_header_kid),
        cmocka_unit_test(test_bad_base64url),
        cmocka_unit_test(test_dots_and_empty_parts),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_numeric_claims),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_string_claims),
        cmocka_unit_test(test_session_name),
        cmocka_unit_test(test_sign_errors),
        cmocka_unit_test(test_verify_args),
        cmocka_unit_test(test_keyring_full_and_duplicate),
        cmocka_unit_test(test_keyring_add_str),
        cmocka_unit_test_setup_teardown(test_keyfile_roundtrip, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_permissions, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_keyfile_malformed, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
