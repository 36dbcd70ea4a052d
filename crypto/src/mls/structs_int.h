/* Private helpers shared by the MLS wire-struct and tree files: generic <V> vectors of structs
 * and integers, and the whole-buffer decode/encode wrappers. */
#ifndef SPK_MLS_STRUCTS_INT_H
#define SPK_MLS_STRUCTS_INT_H

#include "mls/codec.h"
#include "mls/structs.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int (*spk_mls_elem_read_fn)(spk_mls_reader_t *r, void *elem);
typedef int (*spk_mls_elem_write_fn)(spk_mls_writer_t *w, const void *elem);
typedef void (*spk_mls_elem_free_fn)(void *elem);

/* Reads T items<V> into a fresh array of at most max elements of elem_size bytes each.
 * On failure *arr is NULL, *n is 0, the partial elements are freed and r's error is set. */
int spk_mls_vec_read(spk_mls_reader_t *r, void **arr, size_t *n, size_t elem_size, size_t max,
                     spk_mls_elem_read_fn rd, spk_mls_elem_free_fn fr);
int spk_mls_vec_write(spk_mls_writer_t *w, const void *arr, size_t n, size_t elem_size,
                      spk_mls_elem_write_fn wr);
/* Frees each element and the array; NULL-safe. */
void spk_mls_vec_free(void *arr, size_t n, size_t elem_size, spk_mls_elem_free_fn fr);

/* uint16 items<V> / uint32 items<V>. */
int spk_mls_u16_list_read(spk_mls_reader_t *r, spk_mls_u16_list_t *out, size_t max);
int spk_mls_u16_list_write(spk_mls_writer_t *w, const spk_mls_u16_list_t *in);
int spk_mls_u32_vec_read(spk_mls_reader_t *r, uint32_t **arr, size_t *n, size_t max);
int spk_mls_u32_vec_write(spk_mls_writer_t *w, const uint32_t *arr, size_t n);

/* Adapters that let the generic vector helpers call a typed struct API. */
#define SPK_MLS_ELEM_ADAPTERS(name)                                                                \
    static int name##_rd_(spk_mls_reader_t *r, void *e)                                            \
    {                                                                                              \
        return spk_mls_##name##_read(r, (spk_mls_##name##_t *)e);                                  \
    }                                                                                              \
    static int name##_wr_(spk_mls_writer_t *w, const void *e)                                      \
    {                                                                                              \
        return spk_mls_##name##_write(w, (const spk_mls_##name##_t *)e);                           \
    }                                                                                              \
    static void name##_fr_(void *e)                                                                \
    {                                                                                              \
        spk_mls_##name##_free((spk_mls_##name##_t *)e);                                            \
    }

/* spk_mls_X_decode and spk_mls_X_encode from spk_mls_X_read / _write / _free. */
#define SPK_MLS_DEFINE_CODEC(name)                                                                 \
    int spk_mls_##name##_decode(spk_mls_##name##_t *out, const uint8_t *p, size_t n)               \
    {                                                                                              \
        spk_mls_reader_t r;                                                                        \
        spk_mls_reader_init(&r, p, n);                                                             \
        int rc = spk_mls_##name##_read(&r, out);                                                   \
        if (rc == 0) {                                                                             \
            rc = spk_mls_reader_done(&r);                                                          \
            if (rc != 0) {                                                                         \
                spk_mls_##name##_free(out);                                                        \
            }                                                                                      \
        }                                                                                          \
        return rc;                                                                                 \
    }                                                                                              \
    int spk_mls_##name##_encode(const spk_mls_##name##_t *in, spk_mls_bytes_t *out)                \
    {                                                                                              \
        spk_mls_writer_t w;                                                                        \
        spk_mls_writer_init(&w);                                                                   \
        memset(out, 0, sizeof(*out));                                                              \
        (void)spk_mls_##name##_write(&w, in);                                                      \
        return spk_mls_writer_take(&w, out);                                                       \
    }

/* Ends a _read function: on error frees the partial struct and returns the sticky error. */
#define SPK_MLS_READ_END(r, name, out)                                                             \
    do {                                                                                           \
        if ((r)->err != 0) {                                                                       \
            spk_mls_##name##_free(out);                                                            \
            return (r)->err;                                                                       \
        }                                                                                          \
        return 0;                                                                                  \
    } while (0)

#endif
