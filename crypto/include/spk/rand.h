#ifndef SPK_RAND_H
#define SPK_RAND_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf with n bytes from the OpenSSL CSPRNG. Returns 0 or SPK_ECRYPTO. */
int spk_random_bytes(void *buf, size_t n);
/* Random identifier: `bytes` random bytes as base64url into out (cap >= 4*bytes/3+2). */
int spk_random_id(char *out, size_t cap, size_t bytes);

#endif
