/* libFuzzer target for the flat-request fast path (signaling/src/json_flat.c), differential
 * against jansson: whatever sig_json_flat accepts, json_loadb (as the core calls it, duplicates
 * refused) accepts too and gives an equal object; aborts otherwise. Inputs json_loadb accepts
 * that the fast path refuses are fine (they take the full parser). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "core_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *fast = sig_json_flat((const char *)data, size);
    if (fast == NULL) {
        return 0;
    }
    json_t *full = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (full == NULL || !json_is_object(fast) || !json_equal(fast, full)) {
        abort();
    }
    json_decref(fast);
    json_decref(full);
    return 0;
}
