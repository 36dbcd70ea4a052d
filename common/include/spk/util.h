/* Small helpers shared by every module: encodings, time, wiping. No I/O. */
#ifndef SPK_UTIL_H
#define SPK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wipes secret material; not optimised away. */
void spk_wipe(void *p, size_t n);
/* Constant-time comparison; true when equal. */
bool spk_ct_equal(const void *a, const void *b, size_t n);

/* Wall clock in seconds / milliseconds since the epoch; monotonic in nanoseconds. */
int64_t spk_now_s(void);
int64_t spk_now_ms(void);
uint64_t spk_mono_ns(void);

/* base64url without padding. encode: out needs 4*ceil(n/3)+1; returns length written (NUL
 * terminated). decode: returns decoded length or a negative SPK_E* code (bad alphabet, padding,
 * or out too small). */
size_t spk_b64url_encoded_len(size_t n);
size_t spk_b64url_encode(char *out, const uint8_t *in, size_t n);
long spk_b64url_decode(uint8_t *out, size_t out_cap, const char *in, size_t n);

/* Lower-case hex. encode writes 2n+1 bytes; decode returns length or negative SPK_E*. */
void spk_hex_encode(char *out, const uint8_t *in, size_t n);
long spk_hex_decode(uint8_t *out, size_t out_cap, const char *in, size_t n);

/* JSON string escaping (no surrounding quotes); output always NUL terminated, truncated to fit. */
size_t spk_json_escape(char *out, size_t cap, const char *in);

/* Appends v to a growable array (*arr of *len used, *cap allocated; doubling). 0 or
 * SPK_ENOMEM (the array is unchanged then). */
int spk_u64_push(uint64_t **arr, size_t *len, size_t *cap, uint64_t v);

/* FNV-1a 64 of a NUL-terminated string (not a cryptographic hash: names, not secrets). */
uint64_t spk_fnv1a64(const char *s);

#endif
