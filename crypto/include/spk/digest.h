/* SHA-256 for the modules that hash identifiers, codes and requests (invite codes, idempotency
 * records, key ids, replay checks). I/O-free. */
#ifndef SPK_DIGEST_H
#define SPK_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of a || b (b may be NULL when blen is 0). 0, or SPK_ECRYPTO with out all zero (an
 * all-zero hash matches nothing stored). */
int spk_sha256(uint8_t out[32], const void *a, size_t alen, const void *b, size_t blen);

#endif
