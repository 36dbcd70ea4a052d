/* A group of real spk_mls members plus the delivery service's observer, for the observer tests:
 * every handshake message goes to the observer first (as the delivery service would offer it),
 * then to the members; world_check compares the observer with every member after each step. */
#ifndef SPK_TESTS_OBSERVER_WORLD_H
#define SPK_TESTS_OBSERVER_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/mls.h"
#include "spk/mls_observer.h"

#define WORLD_MAX 40

typedef struct {
    spk_mls_t *m[WORLD_MAX]; /* members by slot (NULL: not, or no longer, in the group) */
    char name[WORLD_MAX][16];
    int n_slots;
    spk_mls_observer_t *obs;
    uint64_t now; /* passed to the observer (0: no lifetime check) */
} world_t;

/* A group created by slot 0, the observer started from its epoch-0 GroupInfo (with the tree
 * out of band when oob), then n - 1 members added in one Commit. */
void world_init(world_t *w, int n, bool oob);
void world_free(world_t *w);

/* Slot of the member at leaf, or -1. */
int world_slot_of_leaf(const world_t *w, uint32_t leaf);
/* Some live member's slot other than `not` (the lowest), or -1. */
int world_other(const world_t *w, int not_slot);

/* Slot `by` commits the cached proposals plus n_add new members and the removes (leaf
 * indices); the observer processes it first (must accept it: its report is checked against
 * the committer's merge and every receiver's event), then the committer merges, the others
 * process it, and the new members join from the Welcome. Returns the slots that joined in
 * *joined (may be NULL). */
void world_commit(world_t *w, int by, int n_add, const uint32_t *removes, size_t n_remove,
                  int *joined);
/* Slot `from` sends msg (a proposal it made): observer first, then every other live member. */
void world_propose(world_t *w, int from, const spk_mls_buf_t *msg);
/* The observer and every live member agree: epoch, GroupContext (tree hash, transcript hash,
 * extensions), interim transcript hash, ratchet tree, members and identities. */
void world_check(const world_t *w);

/* Processing msg at the observer fails with want and leaves its saved state identical. */
void expect_refused(spk_mls_observer_t *o, const uint8_t *msg, size_t n, uint64_t now, int want);

#endif
