/* psk_secret from PreSharedKeyID structs (RFC 9420 §8.4). */
#include "mls/psk.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"

int spk_mls_psk_secret_from_ids(const spk_mls_psk_id_t *ids, size_t n, spk_mls_psk_lookup_cb lookup,
                                void *arg, uint8_t out[SPK_MLS_HASH_LEN])
{
    if (n == 0) {
        return spk_mls_psk_secret(NULL, 0, out);
    }
    if (ids == NULL || lookup == NULL || n > UINT16_MAX) {
        return SPK_EINVAL;
    }
    spk_mls_psk_t *psks = calloc(n, sizeof *psks);
    spk_mls_bytes_t *enc = calloc(n, sizeof *enc);
    int rc = psks != NULL && enc != NULL ? 0 : SPK_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = spk_mls_psk_id_encode(&ids[i], &enc[i]);
        rc = rc != 0 ? rc : lookup(arg, &ids[i], &psks[i].psk, &psks[i].psk_len);
        psks[i].id = enc[i].p;
        psks[i].id_len = enc[i].n;
    }
    rc = rc != 0 ? rc : spk_mls_psk_secret(psks, n, out);
    for (size_t i = 0; enc != NULL && i < n; i++) {
        spk_mls_bytes_free(&enc[i]);
    }
    free(enc);
    free(psks);
    return rc;
}
