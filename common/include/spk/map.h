/* Hash map from byte-string keys (copied) to borrowed values. Open addressing, linear probing,
 * tombstone-free deletion (backward shift). Not thread-safe. */
#ifndef SPK_MAP_H
#define SPK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct spk_map_entry spk_map_entry_t;

typedef struct {
    spk_map_entry_t *slots;
    size_t cap; /* power of two, 0 when empty */
    size_t len;
} spk_map_t;

void spk_map_init(spk_map_t *m);
/* Frees the map's storage (not the values). */
void spk_map_free(spk_map_t *m);
/* Inserts or replaces. Returns 0 or SPK_ENOMEM. */
int spk_map_put(spk_map_t *m, const void *key, size_t klen, void *value);
/* The value, or NULL. */
void *spk_map_get(const spk_map_t *m, const void *key, size_t klen);
/* Removes and returns the value, or NULL if absent. */
void *spk_map_del(spk_map_t *m, const void *key, size_t klen);

/* Convenience for NUL-terminated string and uint64 keys. */
int spk_map_put_str(spk_map_t *m, const char *key, void *value);
void *spk_map_get_str(const spk_map_t *m, const char *key);
void *spk_map_del_str(spk_map_t *m, const char *key);
int spk_map_put_u64(spk_map_t *m, uint64_t key, void *value);
void *spk_map_get_u64(const spk_map_t *m, uint64_t key);
void *spk_map_del_u64(spk_map_t *m, uint64_t key);

/* Iteration: for (size_t i = 0; spk_map_next(m, &i, &val);) ... Do not modify while iterating. */
int spk_map_next(const spk_map_t *m, size_t *iter, void **value);

#endif
