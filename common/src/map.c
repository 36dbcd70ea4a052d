#include "spk/map.h"
#include "spk/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct spk_map_entry {
    uint8_t *key; /* NULL = empty slot */
    size_t klen;
    uint64_t hash;
    void *value;
};

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    /* FNV-1a followed by a 64-bit finaliser (keys are server-generated or bounded in size). */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void spk_map_init(spk_map_t *m)
{
    memset(m, 0, sizeof(*m));
}

void spk_map_free(spk_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
    }
    free(m->slots);
    spk_map_init(m);
}

static spk_map_entry_t *find(const spk_map_t *m, const void *key, size_t klen, uint64_t h)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        spk_map_entry_t *e = &m->slots[i];
        if (e->key == NULL) {
            return NULL;
        }
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            return e;
        }
    }
}

static void place(spk_map_t *m, spk_map_entry_t e)
{
    size_t i = e.hash & (m->cap - 1);
    while (m->slots[i].key != NULL) {
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i] = e;
}

static int grow(spk_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    spk_map_entry_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = calloc(ncap, sizeof(*m->slots));
    if (m->slots == NULL) {
        m->slots = old;
        return SPK_ENOMEM;
    }
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].key != NULL) {
            place(m, old[i]);
        }
    }
    free(old);
    return 0;
}

int spk_map_put(spk_map_t *m, const void *key, size_t klen, void *value)
{
    uint64_t h = hash_bytes(key, klen);
    spk_map_entry_t *e = find(m, key, klen, h);
    if (e != NULL) {
        e->value = value;
        return 0;
    }
    if ((m->len + 1) * 4 > m->cap * 3) {
        int rc = grow(m);
        if (rc != 0) {
            return rc;
        }
    }
    uint8_t *k = malloc(klen ? klen : 1);
    if (k == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(k, key, klen);
    place(m, (spk_map_entry_t){.key = k, .klen = klen, .hash = h, .value = value});
    m->len++;
    return 0;
}

void *spk_map_get(const spk_map_t *m, const void *key, size_t klen)
{
    spk_map_entry_t *e = find(m, key, klen, hash_bytes(key, klen));
    return e ? e->value : NULL;
}

void *spk_map_del(spk_map_t *m, const void *key, size_t klen)
{
    spk_map_entry_t *e = find(m, key, klen, hash_bytes(key, klen));
    if (e == NULL) {
        return NULL;
    }
    void *v = e->value;
    free(e->key);
    size_t i = (size_t)(e - m->slots);
    m->slots[i].key = NULL;
    m->len--;
    /* Backward-shift the following cluster so lookups never stop early. */
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].key != NULL; j = (j + 1) & (m->cap - 1)) {
        spk_map_entry_t moved = m->slots[j];
        m->slots[j].key = NULL;
        place(m, moved);
    }
    return v;
}

int spk_map_put_str(spk_map_t *m, const char *key, void *value)
{
    return spk_map_put(m, key, strlen(key), value);
}

void *spk_map_get_str(const spk_map_t *m, const char *key)
{
    return spk_map_get(m, key, strlen(key));
}

void *spk_map_del_str(spk_map_t *m, const char *key)
{
    return spk_map_del(m, key, strlen(key));
}

int spk_map_put_u64(spk_map_t *m, uint64_t key, void *value)
{
    return spk_map_put(m, &key, sizeof(key), value);
}

void *spk_map_get_u64(const spk_map_t *m, uint64_t key)
{
    return spk_map_get(m, &key, sizeof(key));
}

void *spk_map_del_u64(spk_map_t *m, uint64_t key)
{
    return spk_map_del(m, &key, sizeof(key));
}

int spk_map_next(const spk_map_t *m, size_t *iter, void **value)
{
    while (*iter < m->cap) {
        spk_map_entry_t *e = &m->slots[(*iter)++];
        if (e->key != NULL) {
            *value = e->value;
            return 1;
        }
    }
    return 0;
}
