/* Tests of the public MLS API (spk/mls.h): lifecycle, own Update proposals, PrivateMessage
 * Commits, out-of-band ratchet trees, removal, state save/restore, and bad input. Every bad
 * input must return its specific error code and leave the state byte-for-byte unchanged (saved
 * before and after), and the group must keep working afterwards.
 *
 * Usage: test_mls_api [case]   (no argument runs every case) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mls/group.h"
#include "mls/msgprot.h"
#include "mls/structs.h"
#include "spk/error.h"
#include "spk/mls.h"

#define N_MEMBERS 3

static const uint8_t gid[] = "consult-7";

typedef struct {
    spk_mls_t *m[N_MEMBERS]; /* alice (creator), bob, carol */
} world_t;

static void assert_rc(int got, int want)
{
    if (got != want) {
        print_error("rc %s (%d), want %s (%d)\n", spk_err_name(got), got, spk_err_name(want), want);
    }
    assert_int_equal(got, want);
}

static void new_kp(const char *name, spk_mls_buf_t *kp, spk_mls_buf_t *sec)
{
    assert_rc(spk_mls_key_package_create((const uint8_t *)name, strlen(name), kp, sec), 0);
}

/* alice creates the group and adds bob and carol in one Commit; both join from the Welcome. */
static void world_init(world_t *w, unsigned flags)
{
    spk_mls_buf_t kp[N_MEMBERS], sec[N_MEMBERS], commit, welcome, tree = {NULL, 0};
    const char *names[N_MEMBERS] = {"alice", "bob", "carol"};
    for (int i = 0; i < N_MEMBERS; i++) {
        new_kp(names[i], &kp[i], &sec[i]);
    }
    assert_rc(spk_mls_create(&w->m[0], gid, sizeof(gid), sec[0].p, sec[0].n), 0);
    const uint8_t *adds[2] = {kp[1].p, kp[2].p};
    size_t lens[2] = {kp[1].n, kp[2].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, NULL, 0, flags};
    assert_rc(spk_mls_commit(w->m[0], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_commit_merge(w->m[0]), 0);
    if (flags & SPK_MLS_COMMIT_TREE_OUT_OF_BAND) {
        spk_mls_t *nope = NULL;
        assert_rc(spk_mls_join(&nope, sec[1].p, sec[1].n, welcome.p, welcome.n, NULL, 0),
                  SPK_ENOTFOUND);
        assert_rc(spk_mls_ratchet_tree(w->m[0], &tree), 0);
    }
    for (int i = 1; i < N_MEMBERS; i++) {
        assert_rc(spk_mls_join(&w->m[i], sec[i].p, sec[i].n, welcome.p, welcome.n, tree.p, tree.n),
                  0);
        assert_int_equal(spk_mls_epoch(w->m[i]), 1);
        assert_int_equal(spk_mls_own_leaf(w->m[i]), (uint32_t)i);
    }
    for (int i = 0; i < N_MEMBERS; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    spk_mls_buf_free(&tree);
}

static void world_free(world_t *w)
{
    for (int i = 0; i < N_MEMBERS; i++) {
        spk_mls_free(w->m[i]);
        w->m[i] = NULL;
    }
}

/* Same epoch authenticator and exporter output on every live member. */
static void assert_agree(world_t *w)
{
    uint8_t a0[32], x0[32], a[32], x[32];
    assert_rc(spk_mls_epoch_authenticator(w->m[0], a0), 0);
    assert_rc(spk_mls_export_secret(w->m[0], "sframe", NULL, 0, x0, sizeof(x0)), 0);
    for (int i = 1; i < N_MEMBERS; i++) {
        if (w->m[i] == NULL) {
            continue;
        }
        assert_int_equal(spk_mls_epoch(w->m[i]), spk_mls_epoch(w->m[0]));
        assert_rc(spk_mls_epoch_authenticator(w->m[i], a), 0);
        assert_rc(spk_mls_export_secret(w->m[i], "sframe", NULL, 0, x, sizeof(x)), 0);
        assert_memory_equal(a, a0, sizeof(a));
        assert_memory_equal(x, x0, sizeof(x));
    }
}

/* from sends text; every other live member decrypts it. */
static void say(world_t *w, int from, const char *text)
{
    spk_mls_buf_t msg;
    spk_mls_event_t ev;
    assert_rc(spk_mls_encrypt(w->m[from], (const uint8_t *)text, strlen(text), 8, &msg), 0);
    for (int i = 0; i < N_MEMBERS; i++) {
        if (i == from || w->m[i] == NULL) {
            continue;
        }
        assert_rc(spk_mls_process(w->m[i], msg.p, msg.n, &ev), 0);
        assert_int_equal(ev.type, SPK_MLS_EVENT_APPLICATION);
        assert_int_equal(ev.data.n, strlen(text));
        assert_memory_equal(ev.data.p, text, ev.data.n);
        spk_mls_buf_free(&ev.data);
    }
    spk_mls_buf_free(&msg);
}

/* by commits (flags); everyone else processes it; by merges. */
static void commit_all(world_t *w, int by, unsigned flags)
{
    spk_mls_buf_t commit;
    spk_mls_event_t ev;
    spk_mls_commit_opts_t o = {NULL, NULL, 0, NULL, 0, flags};
    assert_rc(spk_mls_commit(w->m[by], &o, &commit, NULL), 0);
    for (int i = 0; i < N_MEMBERS; i++) {
        if (i != by && w->m[i] != NULL) {
            assert_rc(spk_mls_process(w->m[i], commit.p, commit.n, &ev), 0);
            assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
        }
    }
    assert_rc(spk_mls_commit_merge(w->m[by]), 0);
    spk_mls_buf_free(&commit);
}

/* ---- lifecycle ---- */

static void test_lifecycle(void **state)
{
    (void)state;
    world_t w;
    world_init(&w, 0);
    assert_agree(&w);
    say(&w, 0, "hallo");
    say(&w, 1, "dag dokter");
    say(&w, 2, "goedemiddag");
    commit_all(&w, 1, 0);
    assert_agree(&w);
    say(&w, 2, "na de commit");
    const uint8_t *id;
    size_t id_len;
    assert_rc(spk_mls_member_identity(w.m[0], 2, &id, &id_len), 0);
    assert_int_equal(id_len, 5);
    assert_memory_equal(id, "carol", 5);
    assert_int_equal(spk_mls_leaf_count(w.m[0]), 4);
    world_free(&w);
}

static void test_key_package(void **state)
{
    (void)state;
    spk_mls_buf_t kp, sec, id;
    new_kp("dokter@example", &kp, &sec);
    assert_rc(spk_mls_key_package_check(kp.p, kp.n, 0, &id), 0);
    assert_int_equal(id.n, 14);
    assert_memory_equal(id.p, "dokter@example", 14);
    spk_mls_buf_free(&id);
    kp.p[kp.n - 1] ^= 1; /* signature */
    assert_rc(spk_mls_key_package_check(kp.p, kp.n, 0, NULL), SPK_EVERIFY);
    assert_rc(spk_mls_key_package_check(kp.p, kp.n - 10, 0, NULL), SPK_ETRUNC);
    /* Far in the future the lifetime has ended. */
    kp.p[kp.n - 1] ^= 1;
    assert_rc(spk_mls_key_package_check(kp.p, kp.n, UINT64_C(1) << 40, NULL), SPK_EVERIFY);
    /* The lifetime as created: from an hour ago to 90 days from now. */
    uint64_t nb = 0, na = 0, now = (uint64_t)time(NULL);
    assert_rc(spk_mls_key_package_lifetime(kp.p, kp.n, &nb, &na), 0);
    assert_true(nb <= now - 3600 + 5 && nb + 3600 + 5 >= now);
    assert_true(na >= now + 90 * 86400 - 5 && na <= now + 90 * 86400 + 5);
    assert_rc(spk_mls_key_package_lifetime(kp.p, kp.n - 10, &nb, &na), SPK_ETRUNC);
    assert_true(nb == 0 && na == 0);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
}

/* ---- own Update proposals, PrivateMessage commits, out-of-band trees ---- */

static void test_own_update(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t prop;
    spk_mls_event_t ev;
    world_init(&w, 0);
    assert_rc(spk_mls_propose_update(w.m[1], &prop), 0);
    for (int i = 0; i < N_MEMBERS; i++) {
        if (i != 1) {
            assert_rc(spk_mls_process(w.m[i], prop.p, prop.n, &ev), 0);
            assert_int_equal(ev.type, SPK_MLS_EVENT_PROPOSAL);
        }
    }
    spk_mls_buf_free(&prop);
    /* alice commits bob's Update by reference; bob needs his new leaf key to follow. */
    commit_all(&w, 0, 0);
    assert_agree(&w);
    say(&w, 1, "nieuwe sleutel");
    /* And once more with carol's Update committed by bob as PrivateMessage. */
    assert_rc(spk_mls_propose_update(w.m[2], &prop), 0);
    assert_rc(spk_mls_process(w.m[0], prop.p, prop.n, &ev), 0);
    assert_rc(spk_mls_process(w.m[1], prop.p, prop.n, &ev), 0);
    spk_mls_buf_free(&prop);
    commit_all(&w, 1, SPK_MLS_COMMIT_PRIVATE);
    assert_agree(&w);
    say(&w, 2, "weer nieuw");
    world_free(&w);
}

static void test_private_commit_oob_tree(void **state)
{
    (void)state;
    world_t w;
    world_init(&w, SPK_MLS_COMMIT_PRIVATE | SPK_MLS_COMMIT_TREE_OUT_OF_BAND);
    assert_agree(&w);
    commit_all(&w, 2, SPK_MLS_COMMIT_PRIVATE);
    assert_agree(&w);
    say(&w, 0, "prive");
    world_free(&w);
}

/* ---- removal ---- */

static void test_remove(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t commit, msg;
    spk_mls_event_t ev;
    world_init(&w, 0);
    uint32_t carol = spk_mls_own_leaf(w.m[2]);
    spk_mls_commit_opts_t o = {NULL, NULL, 0, &carol, 1, 0};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    assert_rc(spk_mls_process(w.m[1], commit.p, commit.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_rc(spk_mls_process(w.m[2], commit.p, commit.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_REMOVED);
    assert_false(spk_mls_is_member(w.m[0], carol));
    /* carol can no longer read the group. */
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"zonder carol", 12, 0, &msg), 0);
    assert_rc(spk_mls_process(w.m[2], msg.p, msg.n, &ev), SPK_ESTATE);
    spk_mls_buf_free(&commit);
    assert_rc(spk_mls_encrypt(w.m[2], (const uint8_t *)"x", 1, 0, &commit), SPK_ESTATE);
    assert_rc(spk_mls_process(w.m[1], msg.p, msg.n, &ev), 0);
    spk_mls_buf_free(&ev.data);
    spk_mls_buf_free(&msg);
    spk_mls_free(w.m[2]);
    w.m[2] = NULL;
    assert_agree(&w);
    world_free(&w);
}

/* A Commit that removes carol and adds dave, who takes carol's leaf: carol is still removed. */
static void test_remove_leaf_reused(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp, sec, commit, welcome;
    spk_mls_event_t ev;
    spk_mls_t *dave = NULL;
    world_init(&w, 0);
    uint32_t carol = 2;
    new_kp("dave", &kp, &sec);
    const uint8_t *adds[1] = {kp.p};
    size_t lens[1] = {kp.n};
    spk_mls_commit_opts_t o = {adds, lens, 1, &carol, 1, SPK_MLS_COMMIT_PRIVATE};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    assert_rc(spk_mls_process(w.m[1], commit.p, commit.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_rc(spk_mls_process(w.m[2], commit.p, commit.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_REMOVED);
    assert_rc(spk_mls_join(&dave, sec.p, sec.n, welcome.p, welcome.n, NULL, 0), 0);
    assert_int_equal(spk_mls_own_leaf(dave), carol);
    spk_mls_free(w.m[2]);
    w.m[2] = dave;
    assert_agree(&w);
    say(&w, 2, "dave is er");
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    world_free(&w);
}

/* ---- save / restore ---- */

static void test_save_restore(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t a, b, prop;
    spk_mls_event_t ev;
    world_init(&w, 0);
    say(&w, 0, "voor het opslaan");
    assert_rc(spk_mls_propose_update(w.m[1], &prop), 0);
    assert_rc(spk_mls_process(w.m[0], prop.p, prop.n, &ev), 0);
    assert_rc(spk_mls_process(w.m[2], prop.p, prop.n, &ev), 0);
    spk_mls_buf_free(&prop);
    for (int i = 0; i < N_MEMBERS; i++) {
        spk_mls_t *r = NULL;
        assert_rc(spk_mls_save(w.m[i], &a), 0);
        assert_rc(spk_mls_restore(&r, a.p, a.n), 0);
        assert_rc(spk_mls_save(r, &b), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.p, b.p, a.n);
        /* Every truncation and a flipped byte in each field header are rejected. */
        for (size_t n = 0; n < a.n; n += 1 + a.n / 97) {
            spk_mls_t *bad = NULL;
            assert_true(spk_mls_restore(&bad, a.p, n) < 0);
            assert_null(bad);
        }
        a.p[0] ^= 1;
        spk_mls_t *bad = NULL;
        assert_rc(spk_mls_restore(&bad, a.p, a.n), SPK_EDECODE);
        spk_mls_free(w.m[i]);
        w.m[i] = r;
        spk_mls_buf_free(&a);
        spk_mls_buf_free(&b);
    }
    commit_all(&w, 0, 0); /* includes bob's Update: bob's kept key survived the restore */
    assert_agree(&w);
    say(&w, 1, "na het herstellen");
    world_free(&w);
}

/* ---- bad input ---- */

/* Processing msg at g fails with want and leaves the saved state identical. */
static void expect_rejected(spk_mls_t *g, const uint8_t *msg, size_t n, int want)
{
    spk_mls_buf_t before, after;
    spk_mls_event_t ev;
    assert_rc(spk_mls_save(g, &before), 0);
    assert_rc(spk_mls_process(g, msg, n, &ev), want);
    assert_int_equal(ev.type, 0);
    assert_null(ev.data.p);
    assert_rc(spk_mls_save(g, &after), 0);
    assert_int_equal(before.n, after.n);
    assert_memory_equal(before.p, after.p, before.n);
    spk_mls_buf_free(&before);
    spk_mls_buf_free(&after);
}

/* The internal view of a member's state (through save/restore), for forging messages. */
static void internal_copy(spk_mls_t *g, spk_mls_group_t *out)
{
    spk_mls_buf_t b;
    assert_rc(spk_mls_save(g, &b), 0);
    assert_rc(spk_mls_group_restore(out, b.p, b.n), 0);
    spk_mls_buf_free(&b);
}

/* Re-encodes a PublicMessage after tampering, with a valid membership tag when retag. */
static void reencode(spk_mls_message_t *m, const spk_mls_group_t *g, bool retag,
                     spk_mls_bytes_t *out)
{
    spk_mls_public_message_t *pm = &m->u.pub;
    if (retag) {
        assert_rc(spk_mls_membership_tag(&pm->content, &pm->signature, &pm->confirmation_tag,
                                         g->gc_enc.p, g->gc_enc.n, g->secrets.membership_key,
                                         pm->membership_tag.p),
                  0);
    }
    assert_rc(spk_mls_message_encode(m, out), 0);
}

static void test_bad_framing(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t msg;
    world_init(&w, 0);
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"tekst", 5, 0, &msg), 0);
    /* truncated at every length */
    for (size_t n = 0; n < msg.n; n++) {
        spk_mls_buf_t before, after;
        spk_mls_event_t ev;
        assert_rc(spk_mls_save(w.m[1], &before), 0);
        int rc = spk_mls_process(w.m[1], msg.p, n, &ev);
        assert_true(rc == SPK_ETRUNC || rc == SPK_EDECODE);
        assert_rc(spk_mls_save(w.m[1], &after), 0);
        assert_memory_equal(before.p, after.p, before.n);
        spk_mls_buf_free(&before);
        spk_mls_buf_free(&after);
    }
    expect_rejected(w.m[1], msg.p, msg.n - 1, SPK_ETRUNC);
    /* trailing bytes */
    uint8_t *longer = calloc(1, msg.n + 1);
    memcpy(longer, msg.p, msg.n);
    expect_rejected(w.m[1], longer, msg.n + 1, SPK_EDECODE);
    free(longer);
    /* oversized */
    uint8_t *big = calloc(1, SPK_MLS_MAX_MESSAGE + 1);
    memcpy(big, msg.p, msg.n);
    expect_rejected(w.m[1], big, SPK_MLS_MAX_MESSAGE + 1, SPK_ETOOBIG);
    free(big);
    /* garbage: bad version, bad wire format, random bytes */
    uint8_t garbage[64];
    memset(garbage, 0xa5, sizeof(garbage));
    expect_rejected(w.m[1], garbage, sizeof(garbage), SPK_EDECODE);
    garbage[0] = 0;
    garbage[1] = 1; /* mls10 */
    garbage[2] = 0;
    garbage[3] = 9; /* no such wire format */
    expect_rejected(w.m[1], garbage, sizeof(garbage), SPK_EDECODE);
    /* a Welcome or KeyPackage is not processed as a group message */
    spk_mls_buf_t kp, sec;
    new_kp("dave", &kp, &sec);
    expect_rejected(w.m[1], kp.p, kp.n, SPK_EINVAL);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    /* a flipped ciphertext byte fails decryption */
    msg.p[msg.n - 3] ^= 1;
    expect_rejected(w.m[1], msg.p, msg.n, SPK_EVERIFY);
    msg.p[msg.n - 3] ^= 1;
    /* the intact message still decrypts afterwards */
    spk_mls_event_t ev;
    assert_rc(spk_mls_process(w.m[1], msg.p, msg.n, &ev), 0);
    spk_mls_buf_free(&ev.data);
    /* and is then a replay */
    expect_rejected(w.m[1], msg.p, msg.n, SPK_EMLSREPLAY);
    spk_mls_buf_free(&msg);
    say(&w, 0, "werkt nog");
    world_free(&w);
}

static void test_wrong_group_and_epoch(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t msg, old, commit;
    spk_mls_event_t ev;
    world_init(&w, 0);
    /* another group: different group id */
    spk_mls_buf_t kp, sec;
    static const uint8_t gid2[] = "consult-8";
    spk_mls_t *x = NULL;
    new_kp("mallory", &kp, &sec);
    assert_rc(spk_mls_create(&x, gid2, sizeof(gid2), sec.p, sec.n), 0);
    assert_rc(spk_mls_encrypt(x, (const uint8_t *)"elders", 6, 0, &msg), 0);
    expect_rejected(w.m[1], msg.p, msg.n, SPK_EMLSGROUP);
    spk_mls_buf_free(&msg);
    assert_rc(spk_mls_propose_remove(x, 0, &msg), SPK_ESTATE); /* alone: nobody to commit it */
    spk_mls_free(x);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    /* stale epoch: sent before a Commit, delivered after it */
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"oud", 3, 0, &old), 0);
    spk_mls_commit_opts_t o = {NULL, NULL, 0, NULL, 0, 0};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    /* future epoch: bob has not seen the Commit yet */
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"nieuw", 5, 0, &msg), 0);
    expect_rejected(w.m[1], msg.p, msg.n, SPK_EMLSEPOCH);
    assert_rc(spk_mls_process(w.m[1], commit.p, commit.n, &ev), 0);
    expect_rejected(w.m[1], old.p, old.n, SPK_EMLSEPOCH);
    /* replayed Commit */
    expect_rejected(w.m[1], commit.p, commit.n, SPK_EMLSEPOCH);
    assert_rc(spk_mls_process(w.m[1], msg.p, msg.n, &ev), 0);
    spk_mls_buf_free(&ev.data);
    /* carol still in the previous epoch: also rejects the new one, then catches up */
    assert_rc(spk_mls_process(w.m[2], commit.p, commit.n, &ev), 0);
    spk_mls_buf_free(&msg);
    spk_mls_buf_free(&old);
    spk_mls_buf_free(&commit);
    assert_agree(&w);
    say(&w, 2, "verder");
    world_free(&w);
}

static void test_bad_tags_and_signatures(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t prop, commit;
    spk_mls_message_t m;
    spk_mls_bytes_t bad;
    spk_mls_group_t bob;
    spk_mls_event_t ev;
    world_init(&w, 0);
    internal_copy(w.m[1], &bob);
    /* a proposal with a bad membership tag, then a bad signature under a valid tag */
    uint32_t carol = 2;
    assert_rc(spk_mls_propose_remove(w.m[0], carol, &prop), 0);
    assert_rc(spk_mls_message_decode(&m, prop.p, prop.n), 0);
    m.u.pub.membership_tag.p[0] ^= 1;
    reencode(&m, &bob, false, &bad);
    expect_rejected(w.m[1], bad.p, bad.n, SPK_EMLSMEMBERTAG);
    spk_mls_bytes_free(&bad);
    m.u.pub.signature.p[5] ^= 1;
    reencode(&m, &bob, true, &bad);
    expect_rejected(w.m[1], bad.p, bad.n, SPK_EMLSSIG);
    spk_mls_bytes_free(&bad);
    spk_mls_message_free(&m);
    /* the genuine proposal is still accepted */
    assert_rc(spk_mls_process(w.m[1], prop.p, prop.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_PROPOSAL);
    spk_mls_buf_free(&prop);
    /* a Commit (covering it by reference) with a bad confirmation tag, valid membership tag */
    spk_mls_commit_opts_t o = {NULL, NULL, 0, NULL, 0, 0};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, NULL), 0);
    assert_rc(spk_mls_message_decode(&m, commit.p, commit.n), 0);
    m.u.pub.confirmation_tag.p[0] ^= 1;
    reencode(&m, &bob, true, &bad);
    expect_rejected(w.m[1], bad.p, bad.n, SPK_EMLSCONFIRM);
    spk_mls_bytes_free(&bad);
    /* ... a bad signature on the Commit */
    m.u.pub.confirmation_tag.p[0] ^= 1;
    m.u.pub.signature.p[0] ^= 1;
    reencode(&m, &bob, true, &bad);
    expect_rejected(w.m[1], bad.p, bad.n, SPK_EMLSSIG);
    spk_mls_bytes_free(&bad);
    spk_mls_message_free(&m);
    /* The genuine Commit still works afterwards. */
    assert_rc(spk_mls_process(w.m[1], commit.p, commit.n, &ev), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    expect_rejected(w.m[1], commit.p, commit.n, SPK_EMLSEPOCH);
    spk_mls_buf_free(&commit);
    spk_mls_group_free(&bob);
    spk_mls_free(w.m[2]); /* carol was removed */
    w.m[2] = NULL;
    assert_agree(&w);
    say(&w, 1, "na de aanval");
    world_free(&w);
}

/* A PrivateMessage that decrypts but whose signature was made with another key: rejected
 * without consuming the ratchet key, so the genuine message of that generation still works. */
static void test_private_bad_signature(void **state)
{
    (void)state;
    world_t w;
    spk_mls_group_t alice;
    spk_mls_framed_content_t c;
    spk_mls_bytes_t forged;
    spk_mls_buf_t real;
    spk_mls_event_t ev;
    uint8_t other_sig[SPK_MLS_SIG_PRIV_LEN], other_pub[SPK_MLS_SIG_PUB_LEN];
    world_init(&w, 0);
    internal_copy(w.m[0], &alice);
    assert_rc(spk_mls_ed25519_keygen(other_sig, other_pub), 0);
    memset(&c, 0, sizeof(c));
    c.group_id = alice.gc.group_id;
    c.epoch = alice.gc.epoch;
    c.sender.type = SPK_MLS_SENDER_MEMBER;
    c.sender.index = alice.own_leaf;
    c.content_type = SPK_MLS_CONTENT_APPLICATION;
    c.application_data.p = (uint8_t *)"vervalst";
    c.application_data.n = 8;
    assert_rc(spk_mls_private_message_protect(&c, NULL, alice.gc_enc.p, alice.gc_enc.n, other_sig,
                                              &alice.st, alice.secrets.sender_data_secret, 0,
                                              &forged),
              0);
    expect_rejected(w.m[1], forged.p, forged.n, SPK_EMLSSIG);
    spk_mls_bytes_free(&forged);
    /* The same generation from the real alice is accepted. */
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"echt", 4, 0, &real), 0);
    assert_rc(spk_mls_process(w.m[1], real.p, real.n, &ev), 0);
    assert_int_equal(ev.data.n, 4);
    spk_mls_buf_free(&ev.data);
    spk_mls_buf_free(&real);
    spk_mls_group_free(&alice);
    say(&w, 2, "verder");
    world_free(&w);
}

/* A member's own messages echoed back by the delivery service are rejected without effect. */
static void test_own_echo(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t m, c;
    world_init(&w, 0);
    assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)"echo", 4, 0, &m), 0);
    expect_rejected(w.m[0], m.p, m.n, SPK_EMLSREPLAY);
    spk_mls_buf_free(&m);
    assert_rc(spk_mls_propose_update(w.m[0], &m), 0);
    expect_rejected(w.m[0], m.p, m.n, SPK_EMLSREPLAY);
    spk_mls_commit_opts_t priv = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    assert_rc(spk_mls_commit(w.m[0], &priv, &c, NULL), 0);
    expect_rejected(w.m[0], c.p, c.n, SPK_EMLSREPLAY);
    spk_mls_buf_free(&c);
    assert_rc(spk_mls_commit(w.m[0], NULL, &c, NULL), 0);
    expect_rejected(w.m[0], c.p, c.n, SPK_EVERIFY);
    /* The others take the proposal and the last Commit; alice merges it. */
    spk_mls_event_t ev;
    for (int i = 1; i < N_MEMBERS; i++) {
        assert_rc(spk_mls_process(w.m[i], m.p, m.n, &ev), 0);
        assert_rc(spk_mls_process(w.m[i], c.p, c.n, &ev), 0);
        assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    }
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    spk_mls_buf_free(&m);
    spk_mls_buf_free(&c);
    assert_agree(&w);
    say(&w, 0, "na de echo");
    world_free(&w);
}

static void test_private_replays(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t prop, commit, msgs[4];
    spk_mls_event_t ev;
    world_init(&w, 0);
    /* out of order within the window, then replays */
    for (int i = 0; i < 4; i++) {
        char t[8];
        snprintf(t, sizeof(t), "m%d", i);
        assert_rc(spk_mls_encrypt(w.m[0], (const uint8_t *)t, strlen(t), 0, &msgs[i]), 0);
    }
    for (int i = 3; i >= 0; i--) {
        assert_rc(spk_mls_process(w.m[1], msgs[i].p, msgs[i].n, &ev), 0);
        assert_int_equal(ev.data.p[1], '0' + i);
        spk_mls_buf_free(&ev.data);
    }
    for (int i = 0; i < 4; i++) {
        expect_rejected(w.m[1], msgs[i].p, msgs[i].n, SPK_EMLSREPLAY);
        spk_mls_buf_free(&msgs[i]);
    }
    /* A proposal is cached once; a PrivateMessage Commit replayed after it was processed is
     * for an old epoch, and so is the proposal afterwards. */
    assert_rc(spk_mls_propose_update(w.m[2], &prop), 0);
    assert_rc(spk_mls_process(w.m[0], prop.p, prop.n, &ev), 0);
    assert_rc(spk_mls_process(w.m[1], prop.p, prop.n, &ev), 0);
    expect_rejected(w.m[1], prop.p, prop.n, SPK_EMLSREPLAY);
    spk_mls_commit_opts_t o = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, NULL), 0);
    assert_rc(spk_mls_process(w.m[1], commit.p, commit.n, &ev), 0);
    assert_rc(spk_mls_process(w.m[2], commit.p, commit.n, &ev), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    expect_rejected(w.m[1], commit.p, commit.n, SPK_EMLSEPOCH);
    expect_rejected(w.m[1], prop.p, prop.n, SPK_EMLSEPOCH);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&prop);
    assert_agree(&w);
    say(&w, 2, "na replays");
    world_free(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_key_package),
        cmocka_unit_test(test_own_update),
        cmocka_unit_test(test_private_commit_oob_tree),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_remove_leaf_reused),
        cmocka_unit_test(test_save_restore),
        cmocka_unit_test(test_bad_framing),
        cmocka_unit_test(test_wrong_group_and_epoch),
        cmocka_unit_test(test_bad_tags_and_signatures),
        cmocka_unit_test(test_private_bad_signature),
        cmocka_unit_test(test_own_echo),
        cmocka_unit_test(test_private_replays),
    };
    if (argc > 1) {
        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
            if (strcmp(tests[i].name + 5, argv[1]) == 0) {
                return _cmocka_run_group_tests(argv[1], &tests[i], 1, NULL, NULL);
            }
        }
        fprintf(stderr, "unknown case %s\n", argv[1]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
