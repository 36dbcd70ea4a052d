/* psk_secret from PreSharedKeyID structs (RFC 9420 §8.4), resolving PSK values through a
 * caller-supplied lookup (external PSK store, or resumption secrets of earlier epochs). */
#ifndef SPK_MLS_PSK_H
#define SPK_MLS_PSK_H

#include <stddef.h>
#include <stdint.h>

#include "mls/keysched.h"
#include "mls/structs.h"

/* Returns the PSK value for id (borrowed; valid until spk_mls_psk_secret_from_ids returns), or
 * a negative SPK_E* code (SPK_ENOTFOUND for an unknown PSK). */
typedef int (*spk_mls_psk_lookup_cb)(void *arg, const spk_mls_psk_id_t *id, const uint8_t **psk,
                                     size_t *psk_len);

/* psk_secret over ids in order; 32 zero bytes when n == 0 (lookup may then be NULL). */
int spk_mls_psk_secret_from_ids(const spk_mls_psk_id_t *ids, size_t n, spk_mls_psk_lookup_cb lookup,
                                void *arg, uint8_t out[SPK_MLS_HASH_LEN]);

#endif
