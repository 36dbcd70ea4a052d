/* libFuzzer target for spk_token_verify.
 *
 * The keyring trusts one key built from a fixed seed, so tokens in the corpus signed with it
 * verify. Two input forms:
 *  - anything else: verified as a compact JWS;
 *  - input starting with '{': "<header JSON>\n<payload JSON>" (or just a payload, with a
 *    default header) is signed with the fixed key first, so the header and claim checks behind
 *    the signature are reachable.
 * Whenever verification succeeds, the claims are signed again and must verify to the same
 * values. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "spk/error.h"
#include "spk/token.h"
#include "spk/util.h"

#define FUZZ_ISS "https://idp.spreekkamer.test"
#define FUZZ_NOW 1700000000
#define FUZZ_LEEWAY 60
#define FUZZ_TOK_CAP (2 * SPK_TOKEN_MAX_LEN + 256)

/* The corpus in corpus/token/ is signed with this seed: bytes 0x00..0x1f. */
static spk_signer_t g_signer;
static spk_keyring_t *g_kr;

static void fuzz_init(void)
{
    if (g_kr != NULL) {
        return;
    }
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)i;
    }
    if (spk_signer_from_seed(&g_signer, seed, FUZZ_ISS) != 0 || spk_keyring_new(&g_kr) != 0 ||
        spk_keyring_add(g_kr, FUZZ_ISS, g_signer.kid, g_signer.pub) != 0) {
        abort();
    }
}

/* Compact JWS over raw header/payload bytes, signed with the fixed key. Returns length or 0. */
static size_t sign_raw(const uint8_t *hdr, size_t hl, const uint8_t *pay, size_t pl, char *out)
{
    if (spk_b64url_encoded_len(hl) + spk_b64url_encoded_len(pl) + 90 > FUZZ_TOK_CAP) {
        return 0;
    }
    size_t o = spk_b64url_encode(out, hdr, hl);
    out[o++] = '.';
    o += spk_b64url_encode(out + o, pay, pl);
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, g_signer.seed, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t sig[64];
    size_t sl = sizeof(sig);
    if (pk == NULL || ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
        EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)out, o) != 1) {
        abort();
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    out[o++] = '.';
    o += spk_b64url_encode(out + o, sig, sizeof(sig));
    return o;
}

static bool claims_equal(const spk_token_claims_t *a, const spk_token_claims_t *b)
{
    return strcmp(a->iss, b->iss) == 0 && strcmp(a->kid, b->kid) == 0 &&
           strcmp(a->sub, b->sub) == 0 && strcmp(a->name, b->name) == 0 && a->role == b->role &&
           strcmp(a->practice, b->practice) == 0 && strcmp(a->acts_for, b->acts_for) == 0 &&
           strcmp(a->consult, b->consult) == 0 && strcmp(a->jti, b->jti) == 0 && a->exp == b->exp &&
           a->nbf == b->nbf && a->iat == b->iat;
}

/* A verified token's claims must survive sign -> verify unchanged. */
static void check_resign(const spk_token_claims_t *c)
{
    char tok[SPK_TOKEN_MAX_LEN + 1];
    long n = spk_token_sign(&g_signer, c, tok, sizeof(tok));
    if (n == SPK_ERANGE) {
        return; /* the original was near the size limit and had a shorter header */
    }
    spk_token_claims_t again;
    if (n <= 0 ||
        spk_token_verify(g_kr, tok, (size_t)n, FUZZ_NOW, FUZZ_LEEWAY, &again, NULL, 0) != 0) {
        fprintf(stderr, "re-signing verified claims failed: %ld\n", n);
        abort();
    }
    if (!claims_equal(c, &again)) {
        fprintf(stderr, "claims changed after re-signing\n");
        abort();
    }
}

static void verify_one(const char *tok, size_t len)
{
    spk_token_claims_t c;
    char why[96];
    int rc = spk_token_verify(g_kr, tok, len, FUZZ_NOW, FUZZ_LEEWAY, &c, why, sizeof(why));
    if (rc == 0) {
        check_resign(&c);
        return;
    }
    if (rc != SPK_ETOKENINVALID && rc != SPK_ETOKENISSUER && rc != SPK_ETOKENEXPIRED &&
        rc != SPK_ETOKENNOTYET) {
        fprintf(stderr, "unexpected error %s\n", spk_err_name(rc));
        abort();
    }
    if (why[0] == '\0' || strlen(why) >= sizeof(why)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    /* Copy so that reads past `size` are caught even though verify takes a length. */
    char *tok = malloc(size > 0 ? size : 1);
    if (tok == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(tok, data, size);
    }
    verify_one(tok, size);
    free(tok);
    if (size == 0 || data[0] != '{') {
        return 0;
    }
    char hdr[128];
    const uint8_t *nl = memchr(data, '\n', size);
    const uint8_t *h = data;
    size_t hl = nl != NULL ? (size_t)(nl - data) : 0;
    const uint8_t *p = nl != NULL ? nl + 1 : data;
    size_t pl = nl != NULL ? size - hl - 1 : size;
    if (nl == NULL) {
        hl = (size_t)snprintf(hdr, sizeof(hdr),
                              "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", g_signer.kid);
        h = (const uint8_t *)hdr;
    }
    char *signed_tok = malloc(FUZZ_TOK_CAP);
    if (signed_tok == NULL) {
        return 0;
    }
    size_t n = sign_raw(h, hl, p, pl, signed_tok);
    if (n > 0) {
        verify_one(signed_tok, n);
    }
    free(signed_tok);
    return 0;
}
