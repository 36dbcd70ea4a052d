/* Official test-vector runner: shared declarations.
 *
 * One handler per vector file, in its own v_<name>.c, called once per top-level entry of the
 * file (a file whose top level is an object is one entry). A handler returns true when the entry
 * passes and prints the reason to stderr (vec_fail) otherwise. Handlers are declared weak here:
 * a file whose handler is not linked in is reported as "not yet supported". To add one, create
 * v_<name>.c defining the function below; CMake picks the file up by its name. */
#ifndef SPK_TESTS_VECTORS_H
#define SPK_TESTS_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mls/codec.h"

typedef bool (*vec_handler_fn)(const json_t *entry, size_t index);

#define VEC_HANDLER(name) bool name(const json_t *entry, size_t index) __attribute__((weak))

VEC_HANDLER(vec_hpke);
VEC_HANDLER(vec_tree_math);
VEC_HANDLER(vec_deserialization);
VEC_HANDLER(vec_crypto_basics);
VEC_HANDLER(vec_key_schedule);
VEC_HANDLER(vec_psk_secret);
VEC_HANDLER(vec_secret_tree);
VEC_HANDLER(vec_transcript_hashes);
VEC_HANDLER(vec_message_protection);
VEC_HANDLER(vec_welcome);
VEC_HANDLER(vec_messages);
VEC_HANDLER(vec_tree_operations);
VEC_HANDLER(vec_tree_validation);
VEC_HANDLER(vec_treekem);
VEC_HANDLER(vec_passive_client_welcome);
VEC_HANDLER(vec_passive_client_handling_commit);
VEC_HANDLER(vec_passive_client_random);
VEC_HANDLER(vec_sframe);

/* Prints "<file>[<index>]: message" to stderr and returns false. */
bool vec_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the "<file>[<index>]" prefix used by vec_fail (called by main). */
void vec_set_context(const char *file, size_t index);

/* Hex field obj[key] decoded into owned bytes (an empty string gives {NULL, 0}). */
bool vec_hex(const json_t *obj, const char *key, spk_mls_bytes_t *out);
/* Hex field that must decode to exactly n bytes. */
bool vec_hex_fixed(const json_t *obj, const char *key, uint8_t *out, size_t n);
/* Integer field (JSON integer or decimal string) obj[key]. */
bool vec_u64(const json_t *obj, const char *key, uint64_t *out);
/* String field obj[key] (borrowed). */
const char *vec_str(const json_t *obj, const char *key);
/* Compares got with want; on mismatch prints both in hex under `what` and returns false. */
bool vec_eq(const char *what, const uint8_t *got, size_t got_len, const uint8_t *want,
            size_t want_len);
/* Compares got with the hex field obj[key]. */
bool vec_eq_hex(const char *what, const uint8_t *got, size_t got_len, const json_t *obj,
                const char *key);
/* Checks an SPK_E* return code: true when rc == 0, otherwise prints it. */
bool vec_ok(const char *what, int rc);

#endif
