/* SFrame internals: cipher suites, key derivation, per-key AEAD state, key sets.
 *
 * A key (sframe_key_t) holds the derived salt, OpenSSL contexts keyed once at creation (AES
 * for GCM or CTR, HMAC for the CTR suites) so that a frame costs no key setup, and either the
 * next send CTR or the receive replay window. Key sets are sorted arrays of key pointers
 * looked up by KID. */
#ifndef SPK_SFRAME_INT_H
#define SPK_SFRAME_INT_H

#include "spk/sframe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SFRAME_NONCE_LEN 12u
#define SFRAME_MAX_NK 48u /* CTR suites: 16-byte AES key + 32-byte HMAC key */
#define SFRAME_MAX_NH 64u
#define SFRAME_MAX_BASE_KEY 64u

typedef struct {
    uint16_t id;
    uint8_t nh;  /* hash output length */
    uint8_t nka; /* AES key length of the CTR suites, 0 for GCM */
    uint8_t nk;  /* AEAD key length */
    uint8_t nt;  /* tag length */
    bool sha512;
} sframe_suite_t;

/* The suite with id, or NULL. */
const sframe_suite_t *sframe_suite(uint16_t id);

/* HKDF-Extract with the suite's hash, empty salt (§4.4.2): prk gets nh bytes. */
int sframe_hkdf_extract(const sframe_suite_t *s, const uint8_t *ikm, size_t ikm_len,
                        uint8_t prk[SFRAME_MAX_NH]);
/* "SFrame 1.0 Secret key " / "SFrame 1.0 Secret salt " || u64 kid || u16 suite; *len is 32 or
 * 33. */
void sframe_label(bool salt, uint64_t kid, uint16_t suite, uint8_t out[40], size_t *len);
/* sframe_key (nk bytes) and sframe_salt for kid from base_key (§4.4.2). */
int sframe_derive(const sframe_suite_t *s, uint64_t kid, const uint8_t *base_key,
                  size_t base_key_len, uint8_t key[SFRAME_MAX_NK], uint8_t salt[SFRAME_NONCE_LEN]);

#define SFRAME_WINDOW_WORDS (SPK_SFRAME_REPLAY_WINDOW / 64u)

typedef struct sframe_key {
    uint64_t kid;
    const sframe_suite_t *suite;
    spk_sframe_usage_t usage;
    uint8_t salt[SFRAME_NONCE_LEN];
    void *cipher; /* EVP_CIPHER_CTX, keyed for the key's direction */
    void *mac;    /* EVP_MAC_CTX (HMAC keyed with auth_key), CTR suites only */
    /* send */
    uint64_t next_ctr;
    bool exhausted; /* CTR 2^64 - 1 was used */
    /* receive: CTRs in (top - window, top] accepted so far, bit ctr % window */
    bool seen_any;
    uint64_t top;
    uint64_t window[SFRAME_WINDOW_WORDS];
} sframe_key_t;

/* A key from raw key material (nk bytes) and salt. *out is allocated (free with
 * sframe_key_free). */
int sframe_key_new(sframe_key_t **out, const sframe_suite_t *s, uint64_t kid,
                   spk_sframe_usage_t usage, const uint8_t *key, const uint8_t *salt);
/* The same derived from a base key. */
int sframe_key_derive(sframe_key_t **out, const sframe_suite_t *s, uint64_t kid,
                      spk_sframe_usage_t usage, const uint8_t *base_key, size_t base_key_len);
/* Wipes and frees k. NULL-safe. */
void sframe_key_free(sframe_key_t *k);

/* AEAD.Encrypt (§4.4.3, §4.5.1) with an explicit nonce over aad = a1 || a2: out receives
 * pt_len + nt bytes. */
int sframe_aead_seal(sframe_key_t *k, const uint8_t nonce[SFRAME_NONCE_LEN], const uint8_t *a1,
                     size_t a1_len, const uint8_t *a2, size_t a2_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *out);
/* AEAD.Decrypt: out receives ct_len - nt bytes; SPK_EVERIFY (out wiped) on a bad tag. */
int sframe_aead_open(sframe_key_t *k, const uint8_t nonce[SFRAME_NONCE_LEN], const uint8_t *a1,
                     size_t a1_len, const uint8_t *a2, size_t a2_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *out);

/* nonce = salt XOR u96(ctr). */
void sframe_nonce(const uint8_t salt[SFRAME_NONCE_LEN], uint64_t ctr,
                  uint8_t nonce[SFRAME_NONCE_LEN]);

/* Frame operations on one key (the context and the MLS layer share them). */
int sframe_key_encrypt(sframe_key_t *k, const uint8_t *metadata, size_t metadata_len,
                       const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                       size_t *out_len);
/* Decrypts a frame whose header h was parsed already. */
int sframe_key_decrypt(sframe_key_t *k, const spk_sframe_header_t *h, const uint8_t *metadata,
                       size_t metadata_len, const uint8_t *frame, size_t frame_len, uint8_t *out,
                       size_t out_cap, size_t *out_len);

/* Size and argument checks of a received frame, then its header into h. */
int sframe_parse_frame(const uint8_t *metadata, size_t metadata_len, const uint8_t *frame,
                       size_t frame_len, spk_sframe_header_t *h);

/* ---- key sets ---- */

typedef struct {
    sframe_key_t **v; /* sorted by kid */
    size_t n;
    size_t cap;
} sframe_keyset_t;

sframe_key_t *sframe_keyset_find(const sframe_keyset_t *ks, uint64_t kid);
/* Takes ownership of k (also on failure, when it is freed). SPK_EEXIST, SPK_ERANGE (full). */
int sframe_keyset_insert(sframe_keyset_t *ks, sframe_key_t *k);
/* SPK_ENOTFOUND when kid has no key. */
int sframe_keyset_remove(sframe_keyset_t *ks, uint64_t kid);
void sframe_keyset_free(sframe_keyset_t *ks);

#endif
