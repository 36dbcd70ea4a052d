/* Tests of the MLS API for the delivery service and clients (spk/mls.h): leaving by oneself,
 * the sender and authenticated data of each message, who joined and left in each Commit (on
 * the receivers and on the committer's merge), pending proposals inspected and refused, and
 * the helpers that read messages without a group. Every refused call must return its code and
 * leave the saved state byte-for-byte unchanged.
 *
 * Usage: test_mls_events [case]   (no argument runs every case) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/welcome_crypto.h"
#include "mls_support.h"
#include "spk/error.h"
#include "spk/mls.h"

#define MAX_MEMBERS 6

static const uint8_t gid[] = "care-team-3";

typedef struct {
    spk_mls_t *m[MAX_MEMBERS]; /* 0 alice, 1 bob, 2 carol, then whoever joins */
} world_t;

/* alice creates the group and adds bob and carol. */
static void world_init(world_t *w)
{
    spk_mls_buf_t kp[3], sec[3], commit, welcome;
    const char *names[3] = {"alice", "bob", "carol"};
    memset(w, 0, sizeof(*w));
    for (int i = 0; i < 3; i++) {
        new_kp(names[i], &kp[i], &sec[i]);
    }
    assert_rc(spk_mls_create(&w->m[0], gid, sizeof(gid), sec[0].p, sec[0].n), 0);
    const uint8_t *adds[2] = {kp[1].p, kp[2].p};
    size_t lens[2] = {kp[1].n, kp[2].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, NULL, 0, 0};
    assert_rc(spk_mls_commit(w->m[0], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_commit_merge(w->m[0]), 0);
    for (int i = 1; i < 3; i++) {
        assert_rc(spk_mls_join(&w->m[i], sec[i].p, sec[i].n, welcome.p, welcome.n, NULL, 0), 0);
    }
    for (int i = 0; i < 3; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
}

static void world_free(world_t *w)
{
    for (int i = 0; i < MAX_MEMBERS; i++) {
        spk_mls_free(w->m[i]);
        w->m[i] = NULL;
    }
}

static void save(spk_mls_t *g, spk_mls_buf_t *out)
{
    assert_rc(spk_mls_save(g, out), 0);
}

static void assert_same_state(spk_mls_t *g, spk_mls_buf_t *before)
{
    spk_mls_buf_t after;
    save(g, &after);
    assert_int_equal(before->n, after.n);
    assert_memory_equal(before->p, after.p, after.n);
    spk_mls_buf_free(&after);
    spk_mls_buf_free(before);
}

/* Same epoch authenticator on every live member. */
static void assert_agree(world_t *w)
{
    uint8_t a0[32], a[32];
    int first = -1;
    for (int i = 0; i < MAX_MEMBERS; i++) {
        if (w->m[i] == NULL) {
            continue;
        }
        if (first < 0) {
            first = i;
            assert_rc(spk_mls_epoch_authenticator(w->m[i], a0), 0);
            continue;
        }
        assert_int_equal(spk_mls_epoch(w->m[i]), spk_mls_epoch(w->m[first]));
        assert_rc(spk_mls_epoch_authenticator(w->m[i], a), 0);
        assert_memory_equal(a, a0, sizeof(a));
    }
}

/* Everyone but `from` processes msg; each must report type. */
static void deliver(world_t *w, int from, const spk_mls_buf_t *msg, spk_mls_event_type_t type)
{
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    for (int i = 0; i < MAX_MEMBERS; i++) {
        if (i == from || w->m[i] == NULL) {
            continue;
        }
        assert_rc(spk_mls_process_info(w->m[i], msg->p, msg->n, &ev, &in), 0);
        assert_int_equal(ev.type, type);
        spk_mls_buf_free(&ev.data);
    }
}

/* ---- leaving by oneself ---- */

static void test_self_remove(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t leave, commit, before, blob;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w);
    /* carol cannot commit her own removal (§12.2): refused, state unchanged. */
    uint32_t carol = 2;
    spk_mls_commit_opts_t o = {NULL, NULL, 0, &carol, 1, 0};
    save(w.m[2], &before);
    assert_rc(spk_mls_commit(w.m[2], &o, &commit, NULL), SPK_EINVAL);
    assert_same_state(w.m[2], &before);
    /* She proposes to leave; the others see a Remove of her leaf, proposed by her. */
    assert_rc(spk_mls_leave(w.m[2], &leave), 0);
    for (int i = 0; i < 2; i++) {
        assert_rc(spk_mls_process_info(w.m[i], leave.p, leave.n, &ev, &in), 0);
        assert_int_equal(ev.type, SPK_MLS_EVENT_PROPOSAL);
        assert_int_equal(in.sender, 2);
        assert_bytes(in.sender_identity, in.sender_identity_len, "carol");
        assert_int_equal(in.proposal.type, SPK_MLS_PROP_REMOVE);
        assert_int_equal(in.proposal.sender, 2);
        assert_int_equal(in.proposal.leaf, 2);
        assert_bytes(in.proposal.identity, in.proposal.identity_len, "carol");
    }
    spk_mls_buf_free(&leave);
    /* Her own Commit leaves the self-remove out (checked on a restored copy). */
    spk_mls_t *copy = NULL;
    save(w.m[2], &blob);
    assert_rc(spk_mls_restore(&copy, blob.p, blob.n), 0);
    spk_mls_buf_free(&blob);
    assert_rc(spk_mls_commit(copy, NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge_info(copy, &in), 0);
    assert_int_equal(in.n_left, 0);
    assert_true(spk_mls_is_member(copy, 2));
    spk_mls_buf_free(&commit);
    spk_mls_free(copy);
    /* bob commits it by reference; the committer's merge reports carol as gone. */
    assert_rc(spk_mls_commit(w.m[1], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge_info(w.m[1], &in), 0);
    assert_int_equal(in.epoch, 2);
    assert_int_equal(in.sender, 1);
    assert_int_equal(in.n_joined, 0);
    assert_int_equal(in.n_left, 1);
    assert_int_equal(in.left[0].leaf, 2);
    assert_bytes(in.left[0].identity, in.left[0].identity_len, "carol");
    assert_rc(spk_mls_process_info(w.m[0], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_true(in.sender == 1 && in.n_left == 1 && in.left[0].leaf == 2);
    assert_bytes(in.sender_identity, in.sender_identity_len, "bob");
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_REMOVED);
    assert_true(in.n_left == 1 && in.left[0].leaf == 2);
    assert_rc(spk_mls_leave(w.m[2], &leave), SPK_ESTATE);
    spk_mls_buf_free(&leave);
    spk_mls_buf_free(&commit);
    spk_mls_free(w.m[2]);
    w.m[2] = NULL;
    assert_false(spk_mls_is_member(w.m[0], 2));
    assert_agree(&w);
    /* Alone, alice cannot leave: nobody could commit it. bob leaves, alice commits. */
    assert_rc(spk_mls_leave(w.m[1], &leave), 0);
    assert_rc(spk_mls_process_info(w.m[0], leave.p, leave.n, &ev, &in), 0);
    spk_mls_buf_free(&leave);
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    save(w.m[0], &before);
    assert_rc(spk_mls_leave(w.m[0], &leave), SPK_ESTATE);
    assert_same_state(w.m[0], &before);
    spk_mls_buf_free(&commit);
    world_free(&w);
}

/* A self-remove that a Commit without it overtakes lapses with the epoch; sent again, it
 * works. */
static void test_self_remove_lapses(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t leave, commit;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w);
    assert_rc(spk_mls_leave(w.m[2], &leave), 0);
    assert_rc(spk_mls_process_info(w.m[0], leave.p, leave.n, &ev, &in), 0);
    spk_mls_buf_free(&leave);
    /* bob never saw it and commits first. */
    assert_rc(spk_mls_commit(w.m[1], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[1]), 0);
    deliver(&w, 1, &commit, SPK_MLS_EVENT_COMMIT);
    spk_mls_buf_free(&commit);
    assert_true(spk_mls_is_member(w.m[0], 2));
    assert_int_equal(spk_mls_proposal_count(w.m[0]), 0);
    /* Again, in the new epoch. */
    assert_rc(spk_mls_leave(w.m[2], &leave), 0);
    deliver(&w, 2, &leave, SPK_MLS_EVENT_PROPOSAL);
    spk_mls_buf_free(&leave);
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    assert_rc(spk_mls_process_info(w.m[1], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_REMOVED);
    spk_mls_buf_free(&commit);
    spk_mls_free(w.m[2]);
    w.m[2] = NULL;
    assert_agree(&w);
    world_free(&w);
}

/* ---- senders and authenticated data ---- */

static void test_sender_and_ad(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t msg, before, commit;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    static const char ad[] = "conversation:42;type=photo";
    world_init(&w);
    assert_rc(spk_mls_encrypt_ad(w.m[0], (const uint8_t *)ad, strlen(ad), (const uint8_t *)"foto",
                                 4, 0, &msg),
              0);
    for (int i = 1; i < 3; i++) {
        assert_rc(spk_mls_process_info(w.m[i], msg.p, msg.n, &ev, &in), 0);
        assert_int_equal(ev.type, SPK_MLS_EVENT_APPLICATION);
        assert_int_equal(in.sender, 0);
        assert_int_equal(in.epoch, 1);
        assert_bytes(in.sender_identity, in.sender_identity_len, "alice");
        assert_bytes(in.authenticated_data, in.authenticated_data_len, ad);
        assert_bytes(ev.data.p, ev.data.n, "foto");
        spk_mls_buf_free(&ev.data);
    }
    spk_mls_buf_free(&msg);
    /* The authenticated data is in the clear but covered: changing it fails, unchanged state. */
    spk_mls_message_t m;
    spk_mls_bytes_t bad;
    assert_rc(spk_mls_encrypt_ad(w.m[1], (const uint8_t *)ad, strlen(ad), (const uint8_t *)"x", 1,
                                 0, &msg),
              0);
    assert_rc(spk_mls_message_decode(&m, msg.p, msg.n), 0);
    assert_memory_equal(m.u.priv.authenticated_data.p, ad, strlen(ad));
    m.u.priv.authenticated_data.p[0] ^= 1;
    assert_rc(spk_mls_message_encode(&m, &bad), 0);
    save(w.m[0], &before);
    assert_rc(spk_mls_process_info(w.m[0], bad.p, bad.n, &ev, &in), SPK_EVERIFY);
    assert_same_state(w.m[0], &before);
    spk_mls_bytes_free(&bad);
    spk_mls_message_free(&m);
    assert_rc(spk_mls_process_info(w.m[0], msg.p, msg.n, &ev, &in), 0);
    assert_int_equal(in.sender, 1);
    spk_mls_buf_free(&ev.data);
    spk_mls_buf_free(&msg);
    /* Without authenticated data: empty. Bad arguments: refused, state unchanged. */
    assert_rc(spk_mls_encrypt(w.m[2], (const uint8_t *)"y", 1, 0, &msg), 0);
    assert_rc(spk_mls_process_info(w.m[0], msg.p, msg.n, &ev, &in), 0);
    assert_int_equal(in.authenticated_data_len, 0);
    assert_int_equal(in.sender, 2);
    spk_mls_buf_free(&ev.data);
    spk_mls_buf_free(&msg);
    uint8_t *big = calloc(1, SPK_MLS_MAX_AUTHENTICATED_DATA + 1);
    save(w.m[0], &before);
    assert_rc(spk_mls_encrypt_ad(w.m[0], big, SPK_MLS_MAX_AUTHENTICATED_DATA + 1,
                                 (const uint8_t *)"z", 1, 0, &msg),
              SPK_EINVAL);
    assert_rc(spk_mls_encrypt_ad(w.m[0], NULL, 3, (const uint8_t *)"z", 1, 0, &msg), SPK_EINVAL);
    assert_rc(
        spk_mls_commit_ad(w.m[0], NULL, big, SPK_MLS_MAX_AUTHENTICATED_DATA + 1, &commit, NULL),
        SPK_EINVAL);
    assert_same_state(w.m[0], &before);
    free(big);
    /* A Commit's authenticated data, as PrivateMessage, on receivers and the committer. */
    spk_mls_commit_opts_t priv = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    assert_rc(spk_mls_commit_ad(w.m[2], &priv, (const uint8_t *)"rekey", 5, &commit, NULL), 0);
    assert_rc(spk_mls_process_info(w.m[0], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(ev.type, SPK_MLS_EVENT_COMMIT);
    assert_int_equal(in.epoch, 2);
    assert_int_equal(in.sender, 2);
    assert_bytes(in.authenticated_data, in.authenticated_data_len, "rekey");
    assert_rc(spk_mls_process_info(w.m[1], commit.p, commit.n, &ev, &in), 0);
    assert_rc(spk_mls_commit_merge_info(w.m[2], &in), 0);
    assert_bytes(in.authenticated_data, in.authenticated_data_len, "rekey");
    assert_bytes(in.sender_identity, in.sender_identity_len, "carol");
    spk_mls_buf_free(&commit);
    assert_agree(&w);
    world_free(&w);
}

/* ---- who joined and who left ---- */

static void kp_ref_of(const spk_mls_buf_t *kp, uint8_t ref[SPK_MLS_REF_LEN])
{
    assert_rc(spk_mls_key_package_ref(kp->p, kp->n, ref), 0);
}

static void test_commit_joined_left(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp[3], sec[3], commit, welcome, prop;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    uint8_t ref[3][SPK_MLS_REF_LEN];
    const char *names[3] = {"dave", "erin", "frank"};
    world_init(&w);
    for (int i = 0; i < 3; i++) {
        new_kp(names[i], &kp[i], &sec[i]);
        kp_ref_of(&kp[i], ref[i]);
    }
    /* bob proposes frank; alice removes carol and adds dave and erin in the same Commit. */
    assert_rc(spk_mls_propose_add(w.m[1], kp[2].p, kp[2].n, &prop), 0);
    deliver(&w, 1, &prop, SPK_MLS_EVENT_PROPOSAL);
    spk_mls_buf_free(&prop);
    uint32_t carol = 2;
    const uint8_t *adds[2] = {kp[0].p, kp[1].p};
    size_t lens[2] = {kp[0].n, kp[1].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, &carol, 1, 0};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, &welcome), 0);
    /* frank (cached, first in the list) takes carol's leaf, then dave and erin extend. */
    const uint32_t want_leaf[3] = {3, 4, 2};
    for (int who = 0; who < 3; who++) {
        if (who == 0) {
            assert_rc(spk_mls_commit_merge_info(w.m[0], &in), 0);
        } else {
            assert_rc(spk_mls_process_info(w.m[who], commit.p, commit.n, &ev, &in), 0);
            assert_int_equal(ev.type, who == 2 ? SPK_MLS_EVENT_REMOVED : SPK_MLS_EVENT_COMMIT);
        }
        assert_int_equal(in.sender, 0);
        assert_int_equal(in.n_left, 1);
        assert_int_equal(in.left[0].leaf, 2);
        assert_bytes(in.left[0].identity, in.left[0].identity_len, "carol");
        assert_int_equal(in.n_joined, 3);
        const int order[3] = {2, 0, 1}; /* frank, dave, erin */
        for (int j = 0; j < 3; j++) {
            int k = order[j];
            assert_int_equal(in.joined[j].leaf, want_leaf[k]);
            assert_bytes(in.joined[j].identity, in.joined[j].identity_len, names[k]);
            assert_memory_equal(in.joined[j].key_package_ref, ref[k], SPK_MLS_REF_LEN);
        }
    }
    spk_mls_free(w.m[2]);
    w.m[2] = NULL;
    for (int i = 0; i < 3; i++) {
        assert_rc(spk_mls_join(&w.m[3 + i], sec[i].p, sec[i].n, welcome.p, welcome.n, NULL, 0), 0);
        assert_int_equal(spk_mls_own_leaf(w.m[3 + i]), want_leaf[i]);
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    assert_agree(&w);
    world_free(&w);
}

/* ---- pending proposals ---- */

static void test_pending_proposals(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp, sec, add, upd, commit, before;
    spk_mls_proposal_info_t info;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    uint8_t dave_ref[SPK_MLS_REF_LEN];
    world_init(&w);
    new_kp("dave", &kp, &sec);
    kp_ref_of(&kp, dave_ref);
    assert_rc(spk_mls_propose_add(w.m[1], kp.p, kp.n, &add), 0);
    assert_rc(spk_mls_propose_update(w.m[2], &upd), 0);
    for (int i = 0; i < 3; i++) {
        if (i != 1) {
            assert_rc(spk_mls_process_info(w.m[i], add.p, add.n, &ev, &in), 0);
        }
        if (i != 2) {
            assert_rc(spk_mls_process_info(w.m[i], upd.p, upd.n, &ev, &in), 0);
        }
    }
    assert_int_equal(spk_mls_proposal_count(w.m[0]), 2);
    assert_rc(spk_mls_proposal_get(w.m[0], 0, &info), 0);
    assert_int_equal(info.type, SPK_MLS_PROP_ADD);
    assert_int_equal(info.sender, 1);
    assert_int_equal(info.leaf, SPK_MLS_NO_LEAF);
    assert_bytes(info.identity, info.identity_len, "dave");
    assert_memory_equal(info.key_package_ref, dave_ref, SPK_MLS_REF_LEN);
    uint8_t add_ref[SPK_MLS_REF_LEN];
    memcpy(add_ref, info.ref, sizeof(add_ref));
    assert_rc(spk_mls_proposal_get(w.m[0], 1, &info), 0);
    assert_int_equal(info.type, SPK_MLS_PROP_UPDATE);
    assert_true(info.sender == 2 && info.leaf == 2);
    assert_bytes(info.identity, info.identity_len, "carol");
    save(w.m[0], &before);
    assert_rc(spk_mls_proposal_get(w.m[0], 2, &info), SPK_ENOTFOUND);
    assert_same_state(w.m[0], &before);
    /* alice refuses dave; refusing again is not found, state unchanged. */
    assert_rc(spk_mls_proposal_refuse(w.m[0], add_ref), 0);
    assert_int_equal(spk_mls_proposal_count(w.m[0]), 1);
    save(w.m[0], &before);
    assert_rc(spk_mls_proposal_refuse(w.m[0], add_ref), SPK_ENOTFOUND);
    assert_same_state(w.m[0], &before);
    /* Her Commit covers only carol's Update; the others (holding both) follow it. */
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge_info(w.m[0], &in), 0);
    assert_true(in.n_joined == 0 && in.n_left == 0);
    deliver(&w, 0, &commit, SPK_MLS_EVENT_COMMIT);
    assert_int_equal(spk_mls_leaf_count(w.m[1]), 4);
    assert_false(spk_mls_is_member(w.m[1], 3));
    assert_int_equal(spk_mls_proposal_count(w.m[1]), 0);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&add);
    spk_mls_buf_free(&upd);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    assert_agree(&w);
    world_free(&w);
}

/* A member that refused a proposal rejects a Commit that includes it, without effect. */
static void test_refused_proposal_committed(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp, sec, add, commit, before;
    spk_mls_proposal_info_t info;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w);
    new_kp("mallory", &kp, &sec);
    assert_rc(spk_mls_propose_add(w.m[0], kp.p, kp.n, &add), 0);
    deliver(&w, 0, &add, SPK_MLS_EVENT_PROPOSAL);
    assert_rc(spk_mls_proposal_get(w.m[2], 0, &info), 0);
    assert_rc(spk_mls_proposal_refuse(w.m[2], info.ref), 0);
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    save(w.m[2], &before);
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), SPK_EMLSPROPOSAL);
    assert_int_equal(ev.type, 0);
    assert_same_state(w.m[2], &before);
    assert_rc(spk_mls_process_info(w.m[1], commit.p, commit.n, &ev, &in), 0);
    assert_int_equal(in.n_joined, 1);
    assert_bytes(in.joined[0].identity, in.joined[0].identity_len, "mallory");
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&add);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_free(&w);
}

/* ---- reading messages without a group ---- */

static void test_message_info(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t app, commit, kp, sec;
    spk_mls_message_info_t info;
    world_init(&w);
    assert_rc(spk_mls_encrypt(w.m[1], (const uint8_t *)"hoi", 3, 0, &app), 0);
    assert_rc(spk_mls_message_info(app.p, app.n, &info), 0);
    assert_int_equal(info.wire_format, SPK_MLS_MSG_PRIVATE);
    assert_int_equal(info.content_type, SPK_MLS_KIND_APPLICATION);
    assert_int_equal(info.epoch, 1);
    assert_int_equal(info.sender, SPK_MLS_NO_LEAF); /* encrypted in a PrivateMessage */
    assert_int_equal(info.group_id_len, sizeof(gid));
    assert_memory_equal(info.group_id, gid, sizeof(gid));
    assert_true(info.group_id > app.p && info.group_id < app.p + app.n);
    for (size_t n = 0; n < 8; n++) {
        int rc = spk_mls_message_info(app.p, n, &info);
        assert_true(rc == SPK_ETRUNC || rc == SPK_EDECODE);
    }
    assert_rc(spk_mls_commit(w.m[2], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_message_info(commit.p, commit.n, &info), 0);
    assert_int_equal(info.wire_format, SPK_MLS_MSG_PUBLIC);
    assert_int_equal(info.content_type, SPK_MLS_KIND_COMMIT);
    assert_int_equal(info.sender, 2);
    assert_int_equal(info.epoch, 1);
    new_kp("dave", &kp, &sec);
    assert_rc(spk_mls_message_info(kp.p, kp.n, &info), 0);
    assert_int_equal(info.wire_format, SPK_MLS_MSG_KEY_PACKAGE);
    assert_null(info.group_id);
    /* KeyPackageRef: the same as the Welcome names; another message is refused. */
    uint8_t ref[SPK_MLS_REF_LEN];
    assert_rc(spk_mls_key_package_ref(kp.p, kp.n, ref), 0);
    assert_rc(spk_mls_key_package_ref(app.p, app.n, ref), SPK_EINVAL);
    assert_rc(spk_mls_key_package_ref(kp.p, kp.n - 1, ref), SPK_ETRUNC);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    spk_mls_buf_free(&app);
    spk_mls_buf_free(&commit);
    world_free(&w);
}

static void test_welcome_refs(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp[2], sec[2], commit, welcome, refs;
    size_t n = 0;
    world_init(&w);
    new_kp("dave", &kp[0], &sec[0]);
    new_kp("erin", &kp[1], &sec[1]);
    const uint8_t *adds[2] = {kp[0].p, kp[1].p};
    size_t lens[2] = {kp[0].n, kp[1].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, NULL, 0, 0};
    assert_rc(spk_mls_commit(w.m[0], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_welcome_refs(welcome.p, welcome.n, &refs, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(refs.n, 2 * SPK_MLS_REF_LEN);
    for (int i = 0; i < 2; i++) {
        uint8_t ref[SPK_MLS_REF_LEN];
        assert_rc(spk_mls_key_package_ref(kp[i].p, kp[i].n, ref), 0);
        assert_memory_equal(refs.p + i * SPK_MLS_REF_LEN, ref, SPK_MLS_REF_LEN);
    }
    spk_mls_buf_free(&refs);
    assert_rc(spk_mls_welcome_refs(commit.p, commit.n, &refs, &n), SPK_EINVAL);
    assert_null(refs.p);
    assert_int_equal(n, 0);
    assert_rc(spk_mls_welcome_refs(welcome.p, welcome.n - 1, &refs, &n), SPK_ETRUNC);
    for (int i = 0; i < 2; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    world_free(&w);
}

/* The GroupInfo a member publishes: signed by it, the epoch's GroupContext, the tree. */
static void test_group_info(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t gi, tree;
    spk_mls_message_t m;
    spk_mls_tree_t t;
    world_init(&w);
    for (unsigned flags = 0; flags <= SPK_MLS_COMMIT_TREE_OUT_OF_BAND;
         flags += SPK_MLS_COMMIT_TREE_OUT_OF_BAND) {
        assert_rc(spk_mls_group_info(w.m[1], flags, &gi), 0);
        assert_rc(spk_mls_message_decode(&m, gi.p, gi.n), 0);
        assert_int_equal(m.wire_format, SPK_MLS_WIRE_GROUP_INFO);
        const spk_mls_group_info_t *g = &m.u.group_info;
        assert_int_equal(g->signer, 1);
        assert_int_equal(g->group_context.epoch, 1);
        const spk_mls_extension_t *ext =
            spk_mls_extensions_find(&g->extensions, SPK_MLS_EXT_RATCHET_TREE);
        assert_rc(spk_mls_ratchet_tree(w.m[1], &tree), 0);
        if (flags == 0) {
            assert_non_null(ext);
            assert_int_equal(ext->data.n, tree.n);
            assert_memory_equal(ext->data.p, tree.p, tree.n);
        } else {
            assert_null(ext);
        }
        assert_rc(spk_mls_tree_decode(&t, tree.p, tree.n), 0);
        const spk_mls_leaf_node_t *signer = spk_mls_tree_leaf(&t, 1);
        assert_rc(spk_mls_group_info_verify(g, signer->signature_key.p, signer->signature_key.n),
                  0);
        uint8_t th[32];
        assert_rc(spk_mls_tree_root_hash(&t, th), 0);
        assert_memory_equal(g->group_context.tree_hash.p, th, 32);
        /* Every member publishes the same confirmation tag for the epoch. */
        spk_mls_buf_t other;
        spk_mls_message_t om;
        assert_rc(spk_mls_group_info(w.m[2], flags, &other), 0);
        assert_rc(spk_mls_message_decode(&om, other.p, other.n), 0);
        assert_memory_equal(om.u.group_info.confirmation_tag.p, g->confirmation_tag.p, 32);
        spk_mls_message_free(&om);
        spk_mls_buf_free(&other);
        spk_mls_tree_free(&t);
        spk_mls_message_free(&m);
        spk_mls_buf_free(&tree);
        spk_mls_buf_free(&gi);
    }
    world_free(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_remove),       cmocka_unit_test(test_self_remove_lapses),
        cmocka_unit_test(test_sender_and_ad),     cmocka_unit_test(test_commit_joined_left),
        cmocka_unit_test(test_pending_proposals), cmocka_unit_test(test_refused_proposal_committed),
        cmocka_unit_test(test_message_info),      cmocka_unit_test(test_welcome_refs),
        cmocka_unit_test(test_group_info),
    };
    return run_cases(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
