/* psk_secret.json: psk_secret over 0..10 external PSKs (RFC 9420 §8.4). */
#include <stdlib.h>

#include <string.h>

#include "mls/keysched.h"
#include "mls/psk.h"
#include "spk/error.h"
#include "vectors.h"

typedef struct {
    const spk_mls_bytes_t *vals;
    const spk_mls_psk_id_t *ids;
    size_t n;
} psk_store_t;

static int lookup(void *arg, const spk_mls_psk_id_t *id, const uint8_t **psk, size_t *len)
{
    const psk_store_t *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        if (spk_mls_bytes_eq(&s->ids[i].psk_id, &id->psk_id)) {
            *psk = s->vals[i].p;
            *len = s->vals[i].n;
            return 0;
        }
    }
    return SPK_ENOTFOUND;
}

/* The same psk_secret through PreSharedKeyID structs and a lookup callback. */
static bool check_from_ids(const json_t *arr, const spk_mls_bytes_t *vals, size_t n,
                           const json_t *entry)
{
    spk_mls_psk_id_t *ids = calloc(n + 1, sizeof *ids);
    uint8_t out[SPK_MLS_HASH_LEN];
    bool ok = ids != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *p = json_array_get(arr, i);
        ids[i].psktype = SPK_MLS_PSK_EXTERNAL;
        ok = vec_hex(p, "psk_id", &ids[i].psk_id) && vec_hex(p, "psk_nonce", &ids[i].psk_nonce);
    }
    psk_store_t store = {vals, ids, n};
    ok = ok &&
         vec_ok("psk_secret_from_ids", spk_mls_psk_secret_from_ids(ids, n, lookup, &store, out)) &&
         vec_eq_hex("psk_secret (from ids)", out, sizeof out, entry, "psk_secret");
    for (size_t i = 0; ids != NULL && i < n; i++) {
        spk_mls_psk_id_free(&ids[i]);
    }
    free(ids);
    return ok;
}

bool vec_psk_secret(const json_t *entry, size_t index)
{
    const json_t *arr = json_object_get(entry, "psks");
    size_t n = json_array_size(arr);
    spk_mls_bytes_t *ids = calloc(n + 1, sizeof *ids);
    spk_mls_bytes_t *vals = calloc(n + 1, sizeof *vals);
    spk_mls_psk_t *psks = calloc(n + 1, sizeof *psks);
    uint8_t out[SPK_MLS_HASH_LEN];
    bool ok = ids != NULL && vals != NULL && psks != NULL && json_is_array(arr);

    for (size_t i = 0; ok && i < n; i++) {
        const json_t *p = json_array_get(arr, i);
        spk_mls_bytes_t id = {0}, nonce = {0};
        spk_mls_writer_t w;
        spk_mls_writer_init(&w);
        ok = vec_hex(p, "psk_id", &id) && vec_hex(p, "psk_nonce", &nonce) &&
             vec_hex(p, "psk", &vals[i]) &&
             vec_ok("psk id", spk_mls_psk_id_external_write(&w, id.p, id.n, nonce.p, nonce.n)) &&
             vec_ok("psk id", spk_mls_writer_take(&w, &ids[i]));
        spk_mls_writer_free(&w);
        spk_mls_bytes_free(&id);
        spk_mls_bytes_free(&nonce);
        psks[i] = (spk_mls_psk_t){ids[i].p, ids[i].n, vals[i].p, vals[i].n};
    }
    ok = ok && vec_ok("psk_secret", spk_mls_psk_secret(psks, n, out)) &&
         vec_eq_hex("psk_secret", out, sizeof out, entry, "psk_secret");
    ok = ok && check_from_ids(arr, vals, n, entry);
    for (size_t i = 0; i < n && ids != NULL && vals != NULL; i++) {
        spk_mls_bytes_free(&ids[i]);
        spk_mls_bytes_free(&vals[i]);
    }
    free(ids);
    free(vals);
    free(psks);
    return ok;
}
