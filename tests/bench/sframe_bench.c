/* SFrame micro-benchmark (docs/performance.md, "SFrame"): encrypt + decrypt of one 1,200-byte
 * frame with 8 bytes of metadata, per cipher suite, through
 *   ctx: an SFrame context (spk_sframe_encrypt on one, spk_sframe_decrypt on another), and
 *   mls: MLS-derived keys (spk_sframe_mls_encrypt / _decrypt, a group of 4 leaves);
 * and, as the floor measured in the same run, the bare AEAD on OpenSSL with contexts keyed
 * once: AES-128-GCM seal + open, and AES-128-CTR + HMAC-SHA256 (the CTR suites' composition,
 * without SFrame's header, key lookup and replay window).
 *
 * Times are CPU time of the process (CLOCK_PROCESS_CPUTIME_ID). The figures are measured in
 * rounds, each timing every figure once in turn, so that load from elsewhere on a shared
 * machine falls on all of them alike; results are medians over the rounds, and each ratio is
 * the median of the per-round ratios.
 * Output: "RESULT <name> <median ns per frame>" per figure, then the ratios to the floor.
 * Usage: sframe_bench [--reps R] [--iters I]   (default 7 repetitions of 20,000 frames) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bench_util.h"
#include "spk/error.h"
#include "spk/sframe.h"

#define FRAME 1200
#define MAX_REPS 64

static int reps = 7;
static int iters = 20000;

static void need(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "sframe_bench: %s: %s\n", what, spk_err_name(rc));
        exit(1);
    }
}

static uint8_t pt[FRAME];
static uint8_t ct[FRAME + SPK_SFRAME_MAX_OVERHEAD];
static uint8_t out[FRAME + SPK_SFRAME_MAX_OVERHEAD];
static const uint8_t md[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t base[48] = {7};

typedef void (*one_fn)(void *arg);

/* ns per call of fn over iters calls. */
static double time_once(one_fn fn, void *arg)
{
    double t0 = (bench_cpu_us() * 1e3);
    for (int i = 0; i < iters; i++) {
        fn(arg);
    }
    return ((bench_cpu_us() * 1e3) - t0) / iters;
}

/* ---- SFrame context ---- */

typedef struct {
    spk_sframe_ctx_t *tx;
    spk_sframe_ctx_t *rx;
} ctx_pair_t;

static void ctx_one(void *arg)
{
    ctx_pair_t *p = arg;
    size_t n = 0;
    size_t m = 0;
    need(spk_sframe_encrypt(p->tx, 3, md, sizeof(md), pt, FRAME, ct, sizeof(ct), &n), "encrypt");
    need(spk_sframe_decrypt(p->rx, md, sizeof(md), ct, n, out, sizeof(out), &m, NULL), "decrypt");
}

static void ctx_setup(ctx_pair_t *p, uint16_t suite)
{
    need(spk_sframe_ctx_create(&p->tx, suite), "ctx");
    need(spk_sframe_ctx_create(&p->rx, suite), "ctx");
    need(spk_sframe_ctx_add_key(p->tx, 3, SPK_SFRAME_SEND, base, 16), "key");
    need(spk_sframe_ctx_add_key(p->rx, 3, SPK_SFRAME_RECV, base, 16), "key");
}

/* ---- MLS-derived keys ---- */

typedef struct {
    spk_sframe_mls_t *tx;
    spk_sframe_mls_t *rx;
} mls_pair_t;

static void mls_one(void *arg)
{
    mls_pair_t *p = arg;
    size_t n = 0;
    size_t m = 0;
    need(spk_sframe_mls_encrypt(p->tx, 0, md, sizeof(md), pt, FRAME, ct, sizeof(ct), &n),
         "encrypt");
    need(spk_sframe_mls_decrypt(p->rx, md, sizeof(md), ct, n, out, sizeof(out), &m, NULL),
         "decrypt");
}

static void mls_setup(mls_pair_t *p, uint16_t suite)
{
    spk_sframe_mls_opts_t o = {suite, 4, 3};
    size_t nk = spk_sframe_key_len(suite);
    need(spk_sframe_mls_create(&p->tx, &o), "mls");
    need(spk_sframe_mls_create(&p->rx, &o), "mls");
    for (uint64_t e = 1; e <= 3; e++) { /* three epochs kept, as after two Commits */
        need(spk_sframe_mls_add_epoch_secret(p->tx, e, base, nk, 4, 1), "epoch");
        need(spk_sframe_mls_add_epoch_secret(p->rx, e, base, nk, 4, 2), "epoch");
    }
}

/* ---- the floor: bare AEADs ---- */

typedef struct {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
    EVP_MAC_CTX *mac;
} raw_t;

static void gcm_one(void *arg)
{
    raw_t *r = arg;
    uint8_t iv[12] = {0};
    uint8_t tag[16];
    int len = 0;
    int ok = EVP_EncryptInit_ex(r->enc, NULL, NULL, NULL, iv) == 1 &&
             EVP_EncryptUpdate(r->enc, NULL, &len, md, sizeof(md)) == 1 &&
             EVP_EncryptUpdate(r->enc, ct, &len, pt, FRAME) == 1 &&
             EVP_EncryptFinal_ex(r->enc, ct + FRAME, &len) == 1 &&
             EVP_CIPHER_CTX_ctrl(r->enc, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1 &&
             EVP_DecryptInit_ex(r->dec, NULL, NULL, NULL, iv) == 1 &&
             EVP_CIPHER_CTX_ctrl(r->dec, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
             EVP_DecryptUpdate(r->dec, NULL, &len, md, sizeof(md)) == 1 &&
             EVP_DecryptUpdate(r->dec, out, &len, ct, FRAME) == 1 &&
             EVP_DecryptFinal_ex(r->dec, out + FRAME, &len) == 1;
    need(ok ? 0 : SPK_ECRYPTO, "gcm");
}

static void ctr_hmac_pass(raw_t *r, EVP_CIPHER_CTX *c, const uint8_t *in, uint8_t *o)
{
    uint8_t iv[16] = {0};
    uint8_t tag[32];
    size_t tl = 0;
    int len = 0;
    int ok = EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) == 1 &&
             EVP_EncryptUpdate(c, o, &len, in, FRAME) == 1 &&
             EVP_MAC_init(r->mac, NULL, 0, NULL) == 1 &&
             EVP_MAC_update(r->mac, md, sizeof(md)) == 1 &&
             EVP_MAC_update(r->mac, in == pt ? o : in, FRAME) == 1 &&
             EVP_MAC_final(r->mac, tag, &tl, sizeof(tag)) == 1;
    need(ok ? 0 : SPK_ECRYPTO, "ctr+hmac");
}

static void ctr_hmac_one(void *arg)
{
    raw_t *r = arg;
    ctr_hmac_pass(r, r->enc, pt, ct);
    ctr_hmac_pass(r, r->dec, ct, out);
}

static void raw_setup(raw_t *r, bool gcm)
{
    const uint8_t key[16] = {9};
    const EVP_CIPHER *c = gcm ? EVP_aes_128_gcm() : EVP_aes_128_ctr();
    r->enc = EVP_CIPHER_CTX_new();
    r->dec = EVP_CIPHER_CTX_new();
    r->mac = NULL;
    int ok = EVP_EncryptInit_ex(r->enc, c, NULL, key, NULL) == 1 &&
             (gcm ? EVP_DecryptInit_ex(r->dec, c, NULL, key, NULL)
                  : EVP_EncryptInit_ex(r->dec, c, NULL, key, NULL)) == 1;
    if (!gcm) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
        r->mac = EVP_MAC_CTX_new(mac);
        ok = ok && EVP_MAC_init(r->mac, base + 16, 32, params) == 1;
        EVP_MAC_free(mac);
    }
    need(ok ? 0 : SPK_ECRYPTO, "raw init");
}

static void raw_free(raw_t *r)
{
    EVP_CIPHER_CTX_free(r->enc);
    EVP_CIPHER_CTX_free(r->dec);
    EVP_MAC_CTX_free(r->mac);
}

/* Per suite: the floor, the context, the MLS keys. */
enum { FLOOR, CTX, MLS, N_KINDS };

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
            iters = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--reps R] [--iters I]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || iters < 10) {
        fprintf(stderr, "sframe_bench: reps 1..%d, iters >= 10\n", MAX_REPS);
        return 2;
    }
    memset(pt, 0x42, sizeof(pt));
    static const struct {
        const char *name;
        const char *floor;
        uint16_t suite;
    } s[2] = {
        {"AES_128_GCM_SHA256_128", "aes_128_gcm", SPK_SFRAME_AES_128_GCM_SHA256_128},
        {"AES_128_CTR_HMAC_SHA256_80", "aes_128_ctr_hmac_sha256",
         SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80},
    };
    raw_t raw[2];
    ctx_pair_t ctx[2];
    mls_pair_t mls[2];
    static double t[2][N_KINDS][MAX_REPS];
    static double ratio[2][2][MAX_REPS];
    for (int i = 0; i < 2; i++) {
        raw_setup(&raw[i], i == 0);
        ctx_setup(&ctx[i], s[i].suite);
        mls_setup(&mls[i], s[i].suite);
    }
    for (int r = -1; r < reps; r++) { /* round -1 warms up */
        for (int i = 0; i < 2; i++) {
            double f = time_once(i == 0 ? gcm_one : ctr_hmac_one, &raw[i]);
            double c = time_once(ctx_one, &ctx[i]);
            double m = time_once(mls_one, &mls[i]);
            if (r >= 0) {
                t[i][FLOOR][r] = f;
                t[i][CTX][r] = c;
                t[i][MLS][r] = m;
                ratio[i][0][r] = c / f;
                ratio[i][1][r] = m / f;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        printf("RESULT floor_%s %.0f\n", s[i].floor, bench_median(t[i][FLOOR], reps));
        printf("RESULT ctx_%s %.0f\n", s[i].name, bench_median(t[i][CTX], reps));
        printf("RESULT mls_%s %.0f\n", s[i].name, bench_median(t[i][MLS], reps));
        printf("ratio %s: ctx / floor %.2f, mls / floor %.2f\n", s[i].name,
               bench_median(ratio[i][0], reps), bench_median(ratio[i][1], reps));
        raw_free(&raw[i]);
        spk_sframe_ctx_free(ctx[i].tx);
        spk_sframe_ctx_free(ctx[i].rx);
        spk_sframe_mls_free(mls[i].tx);
        spk_sframe_mls_free(mls[i].rx);
    }
    return 0;
}
