/* TLS presentation-language codec for MLS (RFC 9420 §2.1).
 *
 * Readers carry a sticky error: once a read fails, every later read on the same reader is a
 * no-op that returns the same error and zeroes its outputs, so a parser can read a whole struct
 * and check the result once (spk_mls_reader_done or r->err). Borrowed pointers returned by the
 * reader point into the caller's input buffer and live as long as it does.
 *
 * Writers grow on demand and also carry a sticky error; check once with w->err or the return
 * value of spk_mls_writer_take. Variable-length vectors (§2.1.2) carry a 1-, 2- or 4-byte varint
 * length header; the 8-byte form (prefix 11) is reserved and rejected, as are non-minimal
 * encodings. */
#ifndef SPK_MLS_CODEC_H
#define SPK_MLS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest length a varint can carry: 2^30 - 1. */
#define SPK_MLS_VARINT_MAX ((uint64_t)0x3fffffff)

/* Owned bytes. {NULL, 0} is the empty value; free with spk_mls_bytes_free (wipes). */
typedef struct {
    uint8_t *p;
    size_t n;
} spk_mls_bytes_t;

/* Copies n bytes from p into out (out->p is NULL when n == 0). Returns 0 or SPK_ENOMEM. */
int spk_mls_bytes_dup(spk_mls_bytes_t *out, const uint8_t *p, size_t n);
/* Wipes and frees b, leaving {NULL, 0}. NULL-safe. */
void spk_mls_bytes_free(spk_mls_bytes_t *b);
/* Replaces dst with a copy of src (dst freed first on success). */
int spk_mls_bytes_copy(spk_mls_bytes_t *dst, const spk_mls_bytes_t *src);
/* True when a and b hold the same bytes (constant time in the common length). */
bool spk_mls_bytes_eq(const spk_mls_bytes_t *a, const spk_mls_bytes_t *b);
bool spk_mls_bytes_eq_raw(const spk_mls_bytes_t *a, const uint8_t *p, size_t n);

/* ---- reader ---- */

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err; /* 0 or the first SPK_E* error */
} spk_mls_reader_t;

void spk_mls_reader_init(spk_mls_reader_t *r, const uint8_t *p, size_t len);
/* Bytes not yet consumed (0 after an error). */
size_t spk_mls_reader_remaining(const spk_mls_reader_t *r);
/* True when the reader has no error and every byte was consumed. */
bool spk_mls_reader_at_end(const spk_mls_reader_t *r);
/* Returns r->err, or SPK_EDECODE when bytes are left over. */
int spk_mls_reader_done(const spk_mls_reader_t *r);
/* Sets the sticky error (if none is set yet); returns r->err. */
int spk_mls_reader_fail(spk_mls_reader_t *r, int err);

/* Fixed-size big-endian integers. Return 0 or the sticky error (SPK_ETRUNC when short). */
int spk_mls_read_u8(spk_mls_reader_t *r, uint8_t *out);
int spk_mls_read_u16(spk_mls_reader_t *r, uint16_t *out);
int spk_mls_read_u32(spk_mls_reader_t *r, uint32_t *out);
int spk_mls_read_u64(spk_mls_reader_t *r, uint64_t *out);
/* §2.1.2 varint: SPK_EDECODE for the 11 prefix or a non-minimal encoding, SPK_ETRUNC if short. */
int spk_mls_read_varint(spk_mls_reader_t *r, uint64_t *out);
/* n raw bytes, borrowed (no copy). */
int spk_mls_read_bytes(spk_mls_reader_t *r, size_t n, const uint8_t **out);
/* n raw bytes copied into dst. */
int spk_mls_read_copy(spk_mls_reader_t *r, uint8_t *dst, size_t n);
/* opaque<V>: borrowed pointer and length of the body (*p may be NULL when *n == 0). */
int spk_mls_read_opaque_v(spk_mls_reader_t *r, const uint8_t **p, size_t *n);
/* opaque<V> copied into owned bytes (out is overwritten, not freed, on entry). */
int spk_mls_read_opaque_v_dup(spk_mls_reader_t *r, spk_mls_bytes_t *out);
/* opaque<V> whose body must be exactly n bytes (SPK_EDECODE otherwise), copied into dst. */
int spk_mls_read_opaque_v_fixed(spk_mls_reader_t *r, uint8_t *dst, size_t n);
/* A <V> vector: sub becomes a reader over its body; r advances past it. Errors in sub do not
 * propagate to r; use spk_mls_reader_done(sub) and spk_mls_reader_fail(r, ...). */
int spk_mls_read_sub(spk_mls_reader_t *r, spk_mls_reader_t *sub);
/* optional<T> presence octet: 0 -> false, 1 -> true, anything else SPK_EDECODE. */
int spk_mls_read_optional(spk_mls_reader_t *r, bool *present);

/* ---- writer ---- */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int err; /* 0 or the first SPK_E* error */
} spk_mls_writer_t;

/* Initialises an empty writer (no allocation). */
void spk_mls_writer_init(spk_mls_writer_t *w);
/* Wipes and frees the buffer; the writer is reusable after spk_mls_writer_init. */
void spk_mls_writer_free(spk_mls_writer_t *w);
/* Transfers the buffer to out (on success) and resets the writer; on error frees the buffer
 * and returns the sticky error. */
int spk_mls_writer_take(spk_mls_writer_t *w, spk_mls_bytes_t *out);

int spk_mls_write_u8(spk_mls_writer_t *w, uint8_t v);
int spk_mls_write_u16(spk_mls_writer_t *w, uint16_t v);
int spk_mls_write_u32(spk_mls_writer_t *w, uint32_t v);
int spk_mls_write_u64(spk_mls_writer_t *w, uint64_t v);
/* Minimal varint; SPK_ERANGE above SPK_MLS_VARINT_MAX. */
int spk_mls_write_varint(spk_mls_writer_t *w, uint64_t v);
/* Raw bytes (p may be NULL when n == 0). */
int spk_mls_write_bytes(spk_mls_writer_t *w, const uint8_t *p, size_t n);
/* opaque<V>: varint length then the bytes. */
int spk_mls_write_opaque_v(spk_mls_writer_t *w, const uint8_t *p, size_t n);
/* optional<T> presence octet. */
int spk_mls_write_optional(spk_mls_writer_t *w, bool present);
/* A <V> vector whose body is written afterwards: begin records the body start in *mark; end
 * inserts the minimal varint length of everything written since. Pairs nest. */
int spk_mls_write_vec_begin(spk_mls_writer_t *w, size_t *mark);
int spk_mls_write_vec_end(spk_mls_writer_t *w, size_t mark);

/* Encoded size of a varint header for length n (1, 2 or 4; 0 if n is too large). */
size_t spk_mls_varint_size(uint64_t n);

#endif
