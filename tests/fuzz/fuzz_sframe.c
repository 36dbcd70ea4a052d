/* libFuzzer target: SFrame header parsing and frame decryption (spk/sframe.h).
 *
 * An input is one selector byte and a frame. Every frame goes through spk_sframe_header_decode;
 * then the selector picks the receiver:
 *   0 / 1: an SFrame context (AES_128_GCM_SHA256_128 / AES_128_CTR_HMAC_SHA256_80) with
 *          receive keys for KIDs 0, 7, 8, 300 and 0x123456789 from a fixed base key;
 *   2 / 3: MLS-derived keys (the same two suites, E = 4) with epochs 5, 6 and 7 of a group of 8
 *          leaves in which this member is leaf 2, base keys from fixed bytes.
 * The keys are fixed, so the seeds (made by the same file built with
 * -DSPK_SFRAME_FUZZ_GENERATE, target sframe_gen: sframe_gen <corpus dir>) authenticate:
 * frames of each KID and of other members in each epoch, with short and long CTRs.
 * Oracles (abort on violation):
 *   - a decoded header re-encodes to the same bytes (one encoding per KID and CTR);
 *   - a failed decryption reports no length and leaves no plaintext in the output buffer;
 *   - a decrypted frame has the length the header and tag imply, decrypting it again is a
 *     replay, and an MLS frame's sender parts recompose its KID, never naming this member.
 * SPK_FUZZ_VERBOSE=1 prints the result of each input (to check the seeds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/sframe.h"

static const uint64_t kids[] = {0, 7, 8, 300, UINT64_C(0x123456789)};
static const uint16_t suites[2] = {SPK_SFRAME_AES_128_GCM_SHA256_128,
                                   SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80};
static const uint8_t metadata[] = "fuzz-metadata";

#define OWN_LEAF 2u
#define LEAVES 8u
#define FIRST_EPOCH 5u
#define N_EPOCHS 3u

static void base_key(uint8_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(seed + i);
    }
}

static spk_sframe_ctx_t *make_ctx(uint16_t suite, spk_sframe_usage_t usage)
{
    spk_sframe_ctx_t *c = NULL;
    uint8_t b[16];
    base_key(b, sizeof(b), 0x40);
    if (spk_sframe_ctx_create(&c, suite) != 0) {
        abort();
    }
    for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
        if (spk_sframe_ctx_add_key(c, kids[i], usage, b, sizeof(b)) != 0) {
            abort();
        }
    }
    return c;
}

/* Epochs FIRST_EPOCH.. for the member at own_leaf. */
static spk_sframe_mls_t *make_mls(uint16_t suite, uint32_t own_leaf, unsigned n_epochs)
{
    spk_sframe_mls_t *s = NULL;
    spk_sframe_mls_opts_t o = {suite, 4, N_EPOCHS};
    uint8_t b[48];
    if (spk_sframe_mls_create(&s, &o) != 0) {
        abort();
    }
    for (unsigned e = FIRST_EPOCH; e < FIRST_EPOCH + n_epochs; e++) {
        base_key(b, spk_sframe_key_len(suite), (uint8_t)(e * 16));
        if (spk_sframe_mls_add_epoch_secret(s, e, b, spk_sframe_key_len(suite), LEAVES, own_leaf) !=
            0) {
            abort();
        }
    }
    return s;
}

#ifndef SPK_SFRAME_FUZZ_GENERATE

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "sframe oracle violated: %s\n", what);
        abort();
    }
}

static void check_header(const uint8_t *p, size_t n)
{
    spk_sframe_header_t h;
    uint8_t enc[SPK_SFRAME_MAX_HEADER];
    size_t len = 0;
    int rc = spk_sframe_header_decode(p, n, &h);
    check(rc == 0 || rc == SPK_ETRUNC || rc == SPK_EDECODE, "header error code");
    if (rc == 0) {
        spk_sframe_header_encode(h.kid, h.ctr, enc, &len);
        check(len == h.len && len <= n && memcmp(enc, p, len) == 0, "canonical header");
        check(spk_sframe_header_size(h.kid, h.ctr) == len, "header size");
    }
}

static void check_failure(int rc, size_t out_len, const uint8_t *out, size_t cap)
{
    if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "decrypt: %s\n", spk_err_name(rc));
    }
    check(rc != 0 && out_len == 0, "failure reports no length");
    for (size_t i = 0; i < cap; i++) {
        check(out[i] == 0xa5 || out[i] == 0, "no plaintext after a failure");
    }
}

static void run_ctx(uint16_t suite, const uint8_t *f, size_t n, uint8_t *out)
{
    spk_sframe_ctx_t *c = make_ctx(suite, SPK_SFRAME_RECV);
    spk_sframe_header_t h;
    size_t len = 1;
    memset(out, 0xa5, n);
    int rc = spk_sframe_decrypt(c, metadata, sizeof(metadata), f, n, out, n, &len, &h);
    if (rc != 0) {
        check_failure(rc, len, out, n);
    } else {
        check(len == n - h.len - spk_sframe_tag_len(suite), "plaintext length");
        if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
            fprintf(stderr, "decrypt: OK (kid %llu)\n", (unsigned long long)h.kid);
        }
        rc = spk_sframe_decrypt(c, metadata, sizeof(metadata), f, n, out, n, &len, NULL);
        check(rc == SPK_EREPLAY, "replay detected");
    }
    spk_sframe_ctx_free(c);
}

static void run_mls(uint16_t suite, const uint8_t *f, size_t n, uint8_t *out)
{
    spk_sframe_mls_t *s = make_mls(suite, OWN_LEAF, N_EPOCHS);
    spk_sframe_mls_sender_t who;
    size_t len = 1;
    memset(out, 0xa5, n);
    int rc = spk_sframe_mls_decrypt(s, metadata, sizeof(metadata), f, n, out, n, &len, &who);
    if (rc != 0) {
        check_failure(rc, len, out, n);
    } else {
        check(who.leaf != OWN_LEAF && who.leaf < LEAVES, "sender leaf");
        if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
            fprintf(stderr, "decrypt: OK (leaf %u, epoch %llu)\n", who.leaf,
                    (unsigned long long)who.epoch);
        }
        check(who.epoch >= FIRST_EPOCH && who.epoch < FIRST_EPOCH + N_EPOCHS, "sender epoch");
        check(((who.context << 7) | ((uint64_t)who.leaf << 4) | (who.epoch & 15)) == who.kid,
              "KID parts");
        rc = spk_sframe_mls_decrypt(s, metadata, sizeof(metadata), f, n, out, n, &len, NULL);
        check(rc == SPK_EREPLAY, "replay detected");
    }
    spk_sframe_mls_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) {
        return 0;
    }
    const uint8_t *f = data + 1;
    size_t n = size - 1;
    uint8_t *out = malloc(n + 1);
    if (out == NULL) {
        return 0;
    }
    check_header(f, n);
    uint16_t suite = suites[data[0] & 1];
    if ((data[0] & 2) == 0) {
        run_ctx(suite, f, n, out);
    } else {
        run_mls(suite, f, n, out);
    }
    free(out);
    return 0;
}

#else /* SPK_SFRAME_FUZZ_GENERATE: the seed corpus */

static void write_seed(const char *dir, const char *name, uint8_t selector, const uint8_t *f,
                       size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(&selector, 1, 1, fp) != 1 || fwrite(f, 1, n, fp) != n) {
        fprintf(stderr, "sframe_gen: cannot write %s\n", path);
        exit(1);
    }
    fclose(fp);
}

int main(int argc, char **argv)
{
    uint8_t frame[256];
    uint8_t pt[64];
    size_t n = 0;
    char name[64];
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    memset(pt, 'v', sizeof(pt));
    for (uint8_t sel = 0; sel < 2; sel++) {
        spk_sframe_ctx_t *c = make_ctx(suites[sel], SPK_SFRAME_SEND);
        for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
            const uint64_t ctrs[] = {0, 9, 70000};
            for (size_t j = 0; j < 3; j++) {
                spk_sframe_ctx_set_next_ctr(c, kids[i], ctrs[j]);
                if (spk_sframe_encrypt(c, kids[i], metadata, sizeof(metadata), pt, 8 * j + i, frame,
                                       sizeof(frame), &n) != 0) {
                    abort();
                }
                snprintf(name, sizeof(name), "ctx_s%u_kid%zu_ctr%zu", suites[sel], i, j);
                write_seed(argv[1], name, sel, frame, n);
            }
        }
        spk_sframe_ctx_free(c);
    }
    for (uint8_t sel = 2; sel < 4; sel++) {
        const uint32_t senders[] = {0, 1, 7, OWN_LEAF};
        for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
            for (unsigned e = 1; e <= N_EPOCHS; e++) {
                spk_sframe_mls_t *s = make_mls(suites[sel & 1], senders[i], e);
                if (spk_sframe_mls_encrypt(s, e == 2 ? 3 : 0, metadata, sizeof(metadata), pt, 5 * e,
                                           frame, sizeof(frame), &n) != 0) {
                    abort();
                }
                snprintf(name, sizeof(name), "mls_s%u_leaf%u_epoch%u", suites[sel & 1], senders[i],
                         FIRST_EPOCH + e - 1);
                write_seed(argv[1], name, sel, frame, n);
                spk_sframe_mls_free(s);
            }
        }
    }
    return 0;
}

#endif
