/* The observer tests' group of members (observer_world.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mls/group.h"
#include "mls/observer_int.h"
#include "mls_support.h"
#include "observer_world.h"

static const uint8_t gid[] = "care-team-observed";

static void slot_name(world_t *w, int slot)
{
    snprintf(w->name[slot], sizeof(w->name[slot]), "member-%d", slot);
}

void world_init(world_t *w, int n, bool oob)
{
    spk_mls_buf_t kp, sec, gi, tree = {NULL, 0};
    memset(w, 0, sizeof(*w));
    slot_name(w, 0);
    new_kp(w->name[0], &kp, &sec);
    assert_rc(spk_mls_create(&w->m[0], gid, sizeof(gid), sec.p, sec.n), 0);
    w->n_slots = 1;
    assert_rc(spk_mls_group_info(w->m[0], oob ? SPK_MLS_COMMIT_TREE_OUT_OF_BAND : 0, &gi), 0);
    if (oob) {
        spk_mls_observer_t *none = NULL;
        assert_rc(spk_mls_observer_create(&none, gi.p, gi.n, NULL, 0), SPK_ENOTFOUND);
        assert_rc(spk_mls_ratchet_tree(w->m[0], &tree), 0);
    }
    assert_rc(spk_mls_observer_create(&w->obs, gi.p, gi.n, tree.p, tree.n), 0);
    spk_mls_buf_free(&gi);
    spk_mls_buf_free(&tree);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_check(w);
    if (n > 1) {
        world_commit(w, 0, n - 1, NULL, 0, NULL);
    }
}

void world_free(world_t *w)
{
    for (int i = 0; i < w->n_slots; i++) {
        spk_mls_free(w->m[i]);
    }
    spk_mls_observer_free(w->obs);
    memset(w, 0, sizeof(*w));
}

int world_slot_of_leaf(const world_t *w, uint32_t leaf)
{
    for (int i = 0; i < w->n_slots; i++) {
        if (w->m[i] != NULL && spk_mls_own_leaf(w->m[i]) == leaf) {
            return i;
        }
    }
    return -1;
}

int world_other(const world_t *w, int not_slot)
{
    for (int i = 0; i < w->n_slots; i++) {
        if (i != not_slot && w->m[i] != NULL) {
            return i;
        }
    }
    return -1;
}

/* The same members (leaf, identity) in both lists. */
static void assert_same_members(const spk_mls_member_t *a, size_t na, const spk_mls_member_t *b,
                                size_t nb, bool refs)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].leaf, b[i].leaf);
        assert_int_equal(a[i].identity_len, b[i].identity_len);
        assert_memory_equal(a[i].identity, b[i].identity, a[i].identity_len);
        if (refs) {
            assert_memory_equal(a[i].key_package_ref, b[i].key_package_ref, SPK_MLS_REF_LEN);
        }
    }
}

/* A copy of the observer's report that outlives the next call. */
typedef struct {
    spk_mls_member_t joined[WORLD_MAX], left[WORLD_MAX];
    char ids[2 * WORLD_MAX][16];
    size_t n_joined, n_left;
    uint64_t epoch;
} report_t;

static void copy_members(report_t *r, const spk_mls_member_t *src, size_t n, spk_mls_member_t *dst,
                         size_t id_base)
{
    assert_true(n <= WORLD_MAX);
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        assert_true(src[i].identity_len < 16);
        memcpy(r->ids[id_base + i], src[i].identity, src[i].identity_len);
        dst[i].identity = (const uint8_t *)r->ids[id_base + i];
    }
}

static void observe_commit(world_t *w, int by, const spk_mls_buf_t *commit,
                           const spk_mls_buf_t *welcome, report_t *r)
{
    spk_mls_observed_t res;
    assert_rc(spk_mls_observer_process(w->obs, commit->p, commit->n, w->now, &res), 0);
    assert_int_equal(res.type, SPK_MLS_EVENT_COMMIT);
    assert_int_equal(res.sender, spk_mls_own_leaf(w->m[by]));
    assert_bytes(res.sender_identity, res.sender_identity_len, w->name[by]);
    assert_int_equal(res.epoch, spk_mls_epoch(w->m[by]) + 1);
    r->epoch = res.epoch;
    r->n_joined = res.n_joined;
    r->n_left = res.n_left;
    copy_members(r, res.joined, res.n_joined, r->joined, 0);
    copy_members(r, res.left, res.n_left, r->left, WORLD_MAX);
    /* The Welcome goes to the devices whose KeyPackages the Adds carry. */
    if (res.n_joined > 0) {
        spk_mls_buf_t refs;
        size_t n = 0;
        assert_rc(spk_mls_welcome_refs(welcome->p, welcome->n, &refs, &n), 0);
        assert_int_equal(n, res.n_joined);
        for (size_t i = 0; i < n; i++) {
            assert_memory_equal(refs.p + i * SPK_MLS_REF_LEN, r->joined[i].key_package_ref,
                                SPK_MLS_REF_LEN);
        }
        spk_mls_buf_free(&refs);
    }
}

void world_commit(world_t *w, int by, int n_add, const uint32_t *removes, size_t n_remove,
                  int *joined)
{
    spk_mls_buf_t kp[WORLD_MAX], sec[WORLD_MAX], commit, welcome = {NULL, 0};
    const uint8_t *adds[WORLD_MAX];
    size_t lens[WORLD_MAX];
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    report_t r;
    int first = w->n_slots;
    assert_true(first + n_add <= WORLD_MAX);
    for (int i = 0; i < n_add; i++) {
        slot_name(w, first + i);
        new_kp(w->name[first + i], &kp[i], &sec[i]);
        adds[i] = kp[i].p;
        lens[i] = kp[i].n;
    }
    spk_mls_commit_opts_t o = {adds, lens, (size_t)n_add, removes, n_remove, 0};
    assert_rc(spk_mls_commit(w->m[by], &o, &commit, n_add > 0 ? &welcome : NULL), 0);
    memset(&r, 0, sizeof(r));
    observe_commit(w, by, &commit, &welcome, &r);
    assert_rc(spk_mls_commit_merge_info(w->m[by], &in), 0);
    assert_same_members(r.joined, r.n_joined, in.joined, in.n_joined, true);
    assert_same_members(r.left, r.n_left, in.left, in.n_left, false);
    for (int i = 0; i < w->n_slots; i++) {
        if (i == by || w->m[i] == NULL) {
            continue;
        }
        assert_rc(spk_mls_process_info(w->m[i], commit.p, commit.n, &ev, &in), 0);
        assert_same_members(r.joined, r.n_joined, in.joined, in.n_joined, true);
        assert_same_members(r.left, r.n_left, in.left, in.n_left, false);
        if (ev.type == SPK_MLS_EVENT_REMOVED) {
            spk_mls_free(w->m[i]);
            w->m[i] = NULL;
        } else {
            assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
        }
    }
    for (int i = 0; i < n_add; i++) {
        assert_rc(spk_mls_join(&w->m[first + i], sec[i].p, sec[i].n, welcome.p, welcome.n, NULL, 0),
                  0);
        if (joined != NULL) {
            joined[i] = first + i;
        }
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    w->n_slots += n_add;
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    world_check(w);
}

void world_propose(world_t *w, int from, const spk_mls_buf_t *msg)
{
    spk_mls_observed_t res;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    assert_rc(spk_mls_observer_process(w->obs, msg->p, msg->n, w->now, &res), 0);
    assert_int_equal(res.type, SPK_MLS_EVENT_PROPOSAL);
    assert_int_equal(res.sender, spk_mls_own_leaf(w->m[from]));
    for (int i = 0; i < w->n_slots; i++) {
        if (i != from && w->m[i] != NULL) {
            assert_rc(spk_mls_process_info(w->m[i], msg->p, msg->n, &ev, &in), 0);
            assert_int_equal(ev.type, SPK_MLS_EVENT_PROPOSAL);
            assert_memory_equal(in.proposal.ref, res.proposal.ref, SPK_MLS_REF_LEN);
        }
    }
}

/* The member's internal state through save / restore. */
static void internal_of(spk_mls_t *g, spk_mls_group_t *out)
{
    spk_mls_buf_t b;
    assert_rc(spk_mls_save(g, &b), 0);
    assert_rc(spk_mls_group_restore(out, b.p, b.n), 0);
    spk_mls_buf_free(&b);
}

void world_check(const world_t *w)
{
    spk_mls_buf_t gc, tree, mtree;
    uint8_t th[32];
    assert_rc(spk_mls_observer_group_context(w->obs, &gc), 0);
    assert_rc(spk_mls_observer_ratchet_tree(w->obs, &tree), 0);
    spk_mls_observer_tree_hash(w->obs, th);
    for (int i = 0; i < w->n_slots; i++) {
        spk_mls_group_t g;
        if (w->m[i] == NULL) {
            continue;
        }
        assert_int_equal(spk_mls_epoch(w->m[i]), spk_mls_observer_epoch(w->obs));
        internal_of(w->m[i], &g);
        assert_int_equal(g.gc_enc.n, gc.n);
        assert_memory_equal(g.gc_enc.p, gc.p, gc.n);
        assert_memory_equal(g.gc.tree_hash.p, th, 32);
        assert_memory_equal(g.interim, w->obs->interim, 32);
        spk_mls_group_free(&g);
        assert_rc(spk_mls_ratchet_tree(w->m[i], &mtree), 0);
        assert_int_equal(mtree.n, tree.n);
        assert_memory_equal(mtree.p, tree.p, tree.n);
        spk_mls_buf_free(&mtree);
        assert_int_equal(spk_mls_leaf_count(w->m[i]), spk_mls_observer_leaf_count(w->obs));
        for (uint32_t l = 0; l < spk_mls_leaf_count(w->m[i]); l++) {
            const uint8_t *a, *b;
            size_t na, nb;
            assert_int_equal(spk_mls_is_member(w->m[i], l), spk_mls_observer_is_member(w->obs, l));
            if (spk_mls_observer_is_member(w->obs, l)) {
                assert_rc(spk_mls_member_identity(w->m[i], l, &a, &na), 0);
                assert_rc(spk_mls_observer_member_identity(w->obs, l, &b, &nb), 0);
                assert_int_equal(na, nb);
                assert_memory_equal(a, b, na);
            }
        }
    }
    spk_mls_buf_free(&gc);
    spk_mls_buf_free(&tree);
}

void expect_refused(spk_mls_observer_t *o, const uint8_t *msg, size_t n, uint64_t now, int want)
{
    spk_mls_buf_t before, after;
    spk_mls_observed_t res;
    assert_rc(spk_mls_observer_save(o, &before), 0);
    assert_rc(spk_mls_observer_process(o, msg, n, now, &res), want);
    assert_int_equal(res.type, 0);
    assert_rc(spk_mls_observer_save(o, &after), 0);
    assert_int_equal(before.n, after.n);
    assert_memory_equal(before.p, after.p, before.n);
    spk_mls_buf_free(&before);
    spk_mls_buf_free(&after);
}
