/* Records shared by the MLS fuzz targets and their seed generators: an input is a sequence of
 * { uint24 length; opaque message[length]; } (the last one may be cut short). */
#ifndef SPK_FUZZ_RECORDS_H
#define SPK_FUZZ_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "spk/error.h"
#include "spk/mls.h"

/* The next record of data after *off: true with its bytes in *p / *n, false at the end. */
static inline bool fuzz_next_record(const uint8_t *data, size_t size, size_t *off,
                                    const uint8_t **p, size_t *n)
{
    if (size - *off < 3) {
        return false;
    }
    size_t len = ((size_t)data[*off] << 16) | ((size_t)data[*off + 1] << 8) | data[*off + 2];
    *off += 3;
    if (len > size - *off) {
        len = size - *off;
    }
    *p = data + *off;
    *n = len;
    *off += len;
    return true;
}

/* Generators: stop on an error. */
static inline void fuzz_need(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "generate: %s: %s\n", what, spk_err_name(rc));
        exit(1);
    }
}

/* Writes the seed dir/name holding msgs as records. */
static inline void fuzz_write_seed(const char *dir, const char *name,
                                   const spk_mls_buf_t *const *msgs, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    fuzz_need(f == NULL ? SPK_EIO : 0, path);
    for (size_t i = 0; i < n; i++) {
        uint8_t h[3] = {(uint8_t)(msgs[i]->n >> 16), (uint8_t)(msgs[i]->n >> 8),
                        (uint8_t)msgs[i]->n};
        fwrite(h, 1, 3, f);
        fwrite(msgs[i]->p, 1, msgs[i]->n, f);
    }
    fclose(f);
}

#endif
