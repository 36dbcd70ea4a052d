/* Tests of the MLS observer (spk/mls_observer.h), the delivery service's view of a group:
 *   - real groups of spk_mls members, every Commit a PublicMessage offered to the observer
 *     first: adds, removes, updates, self-removes, path-only commits, in varied tree shapes
 *     (blank halves, the creator removed, random sequences); after each step the observer's
 *     epoch, GroupContext, transcript hash, tree and members equal every member's
 *     (observer_world.c), and its report of who joined and left equals theirs;
 *   - refused messages, each with its own code and the observer's saved state unchanged: bad
 *     signature, earlier and later epochs, a sender that is not a member, another group,
 *     PrivateMessage, invalid Add KeyPackages, unknown proposal references, invalid proposal
 *     lists and UpdatePaths (forged and re-signed with the committer's key), replayed
 *     proposals; the bound of what it can check (a bad confirmation tag passes it, the members
 *     reject it);
 *   - save / restore, and the GroupInfo it starts from.
 *
 * Usage: test_mls_observer [case]   (no argument runs every case) */
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
#include "mls_support.h"
#include "observer_world.h"

#define FAR_FUTURE (UINT64_C(1) << 40)

/* ---- following real groups ---- */

static void test_lifecycle_oob(void **state)
{
    (void)state;
    world_t w;
    world_init(&w, 3, true);
    for (int by = 0; by < 3; by++) {
        world_commit(&w, by, 0, NULL, 0, NULL); /* path-only */
    }
    world_commit(&w, 1, 2, NULL, 0, NULL);
    assert_int_equal(spk_mls_observer_epoch(w.obs), 5);
    world_free(&w);
}

/* Tree shapes where half of the tree is blank, the creator is gone, leaves are refilled. */
static void test_shapes(void **state)
{
    (void)state;
    world_t w;
    uint32_t left_half[4] = {0, 1, 2, 3};
    uint32_t right_half[4] = {4, 5, 6, 7};
    world_init(&w, 8, false);
    world_commit(&w, world_slot_of_leaf(&w, 5), 0, left_half, 4, NULL); /* left half blank */
    world_commit(&w, world_slot_of_leaf(&w, 6), 0, NULL, 0, NULL);
    world_commit(&w, world_slot_of_leaf(&w, 7), 3, NULL, 0, NULL);       /* refills 0..2 */
    world_commit(&w, world_slot_of_leaf(&w, 0), 0, right_half, 4, NULL); /* right half blank */
    assert_int_equal(spk_mls_observer_leaf_count(w.obs), 4);
    world_commit(&w, world_slot_of_leaf(&w, 2), 0, NULL, 0, NULL);
    uint32_t middle[1] = {1};
    world_commit(&w, world_slot_of_leaf(&w, 0), 5, middle, 1, NULL);
    world_free(&w);
}

/* Proposals committed by reference: Updates, a Remove, a self-remove. */
static void test_proposals_by_reference(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t p[4];
    spk_mls_proposal_info_t info;
    world_init(&w, 6, false);
    assert_rc(spk_mls_propose_update(w.m[1], &p[0]), 0);
    assert_rc(spk_mls_propose_update(w.m[2], &p[1]), 0);
    assert_rc(spk_mls_propose_remove(w.m[3], spk_mls_own_leaf(w.m[4]), &p[2]), 0);
    assert_rc(spk_mls_leave(w.m[5], &p[3]), 0);
    const int from[4] = {1, 2, 3, 5};
    uint8_t refs[4][SPK_MLS_REF_LEN];
    for (int i = 0; i < 4; i++) {
        world_propose(&w, from[i], &p[i]);
        assert_rc(spk_mls_observer_proposal_get(w.obs, (size_t)i, &info), 0);
        memcpy(refs[i], info.ref, SPK_MLS_REF_LEN);
        spk_mls_buf_free(&p[i]);
    }
    assert_int_equal(spk_mls_observer_proposal_count(w.obs), 4);
    assert_rc(spk_mls_observer_proposal_get(w.obs, 3, &info), 0);
    assert_true(info.type == SPK_MLS_PROP_REMOVE && info.leaf == 5 && info.sender == 5);
    assert_bytes(info.identity, info.identity_len, "member-5");
    assert_rc(spk_mls_observer_proposal_get(w.obs, 4, &info), SPK_ENOTFOUND);
    /* The Commit covers all four by reference; the observer names them. */
    spk_mls_buf_t commit;
    spk_mls_observed_t res;
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    spk_mls_buf_t blob;
    spk_mls_observer_t *copy = NULL;
    assert_rc(spk_mls_observer_save(w.obs, &blob), 0);
    assert_rc(spk_mls_observer_restore(&copy, blob.p, blob.n), 0);
    assert_rc(spk_mls_observer_process(copy, commit.p, commit.n, 0, &res), 0);
    assert_int_equal(res.n_committed, 4);
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(res.committed + i * SPK_MLS_REF_LEN, refs[i], SPK_MLS_REF_LEN);
    }
    assert_int_equal(res.n_left, 2);
    assert_int_equal(spk_mls_observer_proposal_count(copy), 0);
    spk_mls_observer_free(copy);
    spk_mls_buf_free(&blob);
    spk_mls_buf_free(&commit);
    spk_mls_commit_discard(w.m[0]);
    world_commit(&w, 0, 0, NULL, 0, NULL); /* the same through the world's checks */
    assert_null(w.m[4]);
    assert_null(w.m[5]);
    world_free(&w);
}

/* Random adds, removes, updates, self-removes and path-only commits (fixed seed). */
static uint32_t rnd_state = 0x5eed1234u;

static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % n;
}

static int n_live(const world_t *w)
{
    int n = 0;
    for (int i = 0; i < w->n_slots; i++) {
        n += w->m[i] != NULL;
    }
    return n;
}

static int random_live(const world_t *w)
{
    int k = (int)rnd((uint32_t)n_live(w));
    for (int i = 0; i < w->n_slots; i++) {
        if (w->m[i] != NULL && k-- == 0) {
            return i;
        }
    }
    return -1;
}

static void random_step(world_t *w)
{
    int by = random_live(w);
    uint32_t op = rnd(5);
    if (n_live(w) <= 2 && op == 1) {
        op = 0;
    }
    if (w->n_slots + 3 > WORLD_MAX && op == 0) {
        op = 4;
    }
    if (op == 0) {
        world_commit(w, by, 1 + (int)rnd(3), NULL, 0, NULL);
    } else if (op == 1) {
        int victim = by;
        while (victim == by) {
            victim = random_live(w);
        }
        uint32_t leaf = spk_mls_own_leaf(w->m[victim]);
        world_commit(w, by, (int)rnd(2), &leaf, 1, NULL);
    } else if (op == 2 || op == 3) {
        int other = by;
        while (other == by) {
            other = random_live(w);
        }
        spk_mls_buf_t p;
        if (op == 2) {
            assert_rc(spk_mls_propose_update(w->m[other], &p), 0);
        } else {
            assert_rc(n_live(w) > 2 ? spk_mls_leave(w->m[other], &p)
                                    : spk_mls_propose_update(w->m[other], &p),
                      0);
        }
        world_propose(w, other, &p);
        spk_mls_buf_free(&p);
        world_commit(w, by, 0, NULL, 0, NULL);
    } else {
        world_commit(w, by, 0, NULL, 0, NULL);
    }
}

static void test_random(void **state)
{
    (void)state;
    world_t w;
    world_init(&w, 4, false);
    for (int step = 0; step < 60; step++) {
        random_step(&w);
    }
    world_free(&w);
}

/* ---- refused messages ---- */

/* Two members commit in the same epoch: the first wins, the second is stale; the loser
 * re-bases and its new Commit is accepted. A Commit from a later epoch is refused. */
static void test_concurrent_commits(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t c1, c2, c3;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w, 3, false);
    assert_rc(spk_mls_commit(w.m[1], NULL, &c1, NULL), 0);
    assert_rc(spk_mls_commit(w.m[2], NULL, &c2, NULL), 0);
    assert_rc(spk_mls_observer_process(w.obs, c1.p, c1.n, 0, NULL), 0);
    expect_refused(w.obs, c2.p, c2.n, 0, SPK_EMLSSTALE);
    expect_refused(w.obs, c1.p, c1.n, 0, SPK_EMLSSTALE); /* a replayed Commit too */
    assert_rc(spk_mls_commit_merge(w.m[1]), 0);
    assert_rc(spk_mls_process_info(w.m[0], c1.p, c1.n, &ev, &in), 0);
    spk_mls_commit_discard(w.m[2]);
    assert_rc(spk_mls_process_info(w.m[2], c1.p, c1.n, &ev, &in), 0);
    world_check(&w);
    /* carol's Commit for the next-next epoch (she merged one the observer has not seen). */
    assert_rc(spk_mls_commit(w.m[2], NULL, &c3, NULL), 0);
    spk_mls_t *ahead = NULL;
    spk_mls_buf_t blob, c4;
    assert_rc(spk_mls_save(w.m[2], &blob), 0);
    assert_rc(spk_mls_restore(&ahead, blob.p, blob.n), 0);
    assert_rc(spk_mls_commit(ahead, NULL, &c4, NULL), 0);
    assert_rc(spk_mls_commit_merge(ahead), 0);
    spk_mls_buf_free(&c4);
    assert_rc(spk_mls_commit(ahead, NULL, &c4, NULL), 0);
    expect_refused(w.obs, c4.p, c4.n, 0, SPK_EMLSEPOCH);
    spk_mls_free(ahead);
    spk_mls_buf_free(&c4);
    spk_mls_buf_free(&blob);
    /* The re-based Commit is accepted. */
    assert_rc(spk_mls_observer_process(w.obs, c3.p, c3.n, 0, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[2]), 0);
    for (int i = 0; i < 2; i++) {
        assert_rc(spk_mls_process_info(w.m[i], c3.p, c3.n, &ev, &in), 0);
    }
    world_check(&w);
    spk_mls_buf_free(&c1);
    spk_mls_buf_free(&c2);
    spk_mls_buf_free(&c3);
    world_free(&w);
}

/* Forging: decode a PublicMessage, change it, sign it again with the sender's key (so that only
 * the change is wrong) and give it a valid membership tag. */
typedef void (*tamper_fn)(spk_mls_public_message_t *pm);

static void forge(spk_mls_t *sender, const spk_mls_buf_t *msg, tamper_fn fn, spk_mls_bytes_t *out)
{
    spk_mls_buf_t b;
    spk_mls_group_t g;
    spk_mls_message_t m;
    assert_rc(spk_mls_save(sender, &b), 0);
    assert_rc(spk_mls_group_restore(&g, b.p, b.n), 0);
    spk_mls_buf_free(&b);
    assert_rc(spk_mls_message_decode(&m, msg->p, msg->n), 0);
    spk_mls_public_message_t *pm = &m.u.pub;
    fn(pm);
    spk_mls_bytes_free(&pm->signature);
    assert_rc(spk_mls_framed_content_sign(SPK_MLS_WIRE_PUBLIC, &pm->content, g.gc_enc.p, g.gc_enc.n,
                                          g.sig_priv, &pm->signature),
              0);
    if (pm->membership_tag.n == SPK_MLS_HASH_LEN) {
        assert_rc(spk_mls_membership_tag(&pm->content, &pm->signature, &pm->confirmation_tag,
                                         g.gc_enc.p, g.gc_enc.n, g.secrets.membership_key,
                                         pm->membership_tag.p),
                  0);
    }
    assert_rc(spk_mls_message_encode(&m, out), 0);
    spk_mls_message_free(&m);
    spk_mls_group_free(&g);
}

static void remove_committer(spk_mls_public_message_t *pm)
{
    spk_mls_commit_t *c = &pm->content.commit;
    spk_mls_proposal_or_ref_t *v = realloc(c->proposals, (c->n_proposals + 1) * sizeof(*v));
    assert_non_null(v);
    memset(&v[c->n_proposals], 0, sizeof(v[0]));
    v[c->n_proposals].type = SPK_MLS_POR_PROPOSAL;
    v[c->n_proposals].proposal.type = SPK_MLS_PROPOSAL_REMOVE;
    v[c->n_proposals].proposal.u.remove = pm->content.sender.index;
    c->proposals = v;
    c->n_proposals++;
}

static void flip_path_key(spk_mls_public_message_t *pm)
{
    pm->content.commit.path.nodes[0].encryption_key.p[3] ^= 1;
}

static void drop_ciphertext(spk_mls_public_message_t *pm)
{
    spk_mls_update_path_node_t *n = &pm->content.commit.path.nodes[0];
    assert_true(n->n_secrets > 0);
    spk_mls_hpke_ciphertext_free(&n->secrets[--n->n_secrets]);
}

static void flip_leaf_signature(spk_mls_public_message_t *pm)
{
    pm->content.commit.path.leaf_node.signature.p[0] ^= 1;
}

static void short_confirmation_tag(spk_mls_public_message_t *pm)
{
    pm->confirmation_tag.n = 16;
}

static void flip_confirmation_tag(spk_mls_public_message_t *pm)
{
    pm->confirmation_tag.p[0] ^= 1;
}

static void no_path(spk_mls_public_message_t *pm)
{
    spk_mls_update_path_free(&pm->content.commit.path);
    pm->content.commit.has_path = false;
}

static void test_forged_commits(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t commit, kp, sec;
    spk_mls_bytes_t bad;
    world_init(&w, 4, false);
    new_kp("outsider", &kp, &sec);
    const uint8_t *adds[1] = {kp.p};
    size_t lens[1] = {kp.n};
    uint32_t carol = 2;
    spk_mls_commit_opts_t o = {adds, lens, 1, &carol, 1, 0};
    assert_rc(spk_mls_commit(w.m[1], &o, &commit, NULL), SPK_EINVAL); /* welcome needed */
    spk_mls_buf_t welcome;
    assert_rc(spk_mls_commit(w.m[1], &o, &commit, &welcome), 0);
    /* bad signature */
    /* the signature ends before the confirmation and membership tags (1 + 32 bytes each) */
    commit.p[commit.n - 100] ^= 1;
    expect_refused(w.obs, commit.p, commit.n, 0, SPK_EMLSSIG);
    commit.p[commit.n - 100] ^= 1;
    /* forged and re-signed: each change alone */
    const struct {
        tamper_fn fn;
        int want;
    } cases[] = {
        {remove_committer, SPK_EMLSPROPOSAL},  {flip_path_key, SPK_EVERIFY},
        {drop_ciphertext, SPK_EVERIFY},        {flip_leaf_signature, SPK_EVERIFY},
        {short_confirmation_tag, SPK_EVERIFY}, {no_path, SPK_EVERIFY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        forge(w.m[1], &commit, cases[i].fn, &bad);
        expect_refused(w.obs, bad.p, bad.n, 0, cases[i].want);
        spk_mls_bytes_free(&bad);
    }
    /* the sender index of a blank leaf, of no leaf (checked before the signature) */
    spk_mls_message_t m;
    const uint32_t senders[2] = {3000, 7};
    for (int i = 0; i < 2; i++) {
        assert_rc(spk_mls_message_decode(&m, commit.p, commit.n), 0);
        m.u.pub.content.sender.index = senders[i];
        assert_rc(spk_mls_message_encode(&m, &bad), 0);
        expect_refused(w.obs, bad.p, bad.n, 0, SPK_EMLSSENDER);
        spk_mls_bytes_free(&bad);
        spk_mls_message_free(&m);
    }
    /* malformed, oversized */
    for (size_t n = 0; n < commit.n; n += 1 + commit.n / 50) {
        spk_mls_buf_t before, after;
        assert_rc(spk_mls_observer_save(w.obs, &before), 0);
        int rc = spk_mls_observer_process(w.obs, commit.p, n, 0, NULL);
        assert_true(rc == SPK_ETRUNC || rc == SPK_EDECODE);
        assert_rc(spk_mls_observer_save(w.obs, &after), 0);
        assert_memory_equal(before.p, after.p, before.n);
        spk_mls_buf_free(&before);
        spk_mls_buf_free(&after);
    }
    uint8_t *big = calloc(1, SPK_MLS_MAX_MESSAGE + 1);
    memcpy(big, commit.p, commit.n);
    expect_refused(w.obs, big, SPK_MLS_MAX_MESSAGE + 1, 0, SPK_ETOOBIG);
    free(big);
    /* the genuine Commit after all that */
    spk_mls_observed_t res;
    assert_rc(spk_mls_observer_process(w.obs, commit.p, commit.n, 0, &res), 0);
    assert_true(res.n_joined == 1 && res.n_left == 1);
    assert_bytes(res.joined[0].identity, res.joined[0].identity_len, "outsider");
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_free(&w);
}

/* Not for the observer: another group, a PrivateMessage Commit or application message, a
 * KeyPackage, a Welcome. */
static void test_not_for_observer(void **state)
{
    (void)state;
    world_t w, other;
    spk_mls_buf_t m;
    world_init(&w, 3, false);
    world_init(&other, 2, false);
    assert_rc(spk_mls_commit(other.m[0], NULL, &m, NULL), 0);
    /* the other group's id differs only in name: the group id check comes first */
    spk_mls_message_t dm;
    spk_mls_bytes_t bad;
    assert_rc(spk_mls_message_decode(&dm, m.p, m.n), 0);
    dm.u.pub.content.group_id.p[0] ^= 1;
    assert_rc(spk_mls_message_encode(&dm, &bad), 0);
    expect_refused(w.obs, bad.p, bad.n, 0, SPK_EMLSGROUP);
    spk_mls_bytes_free(&bad);
    spk_mls_message_free(&dm);
    spk_mls_buf_free(&m);
    spk_mls_commit_discard(other.m[0]);
    spk_mls_commit_opts_t priv = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    assert_rc(spk_mls_commit(w.m[1], &priv, &m, NULL), 0);
    expect_refused(w.obs, m.p, m.n, 0, SPK_EINVAL);
    spk_mls_buf_free(&m);
    spk_mls_commit_discard(w.m[1]);
    assert_rc(spk_mls_encrypt(w.m[1], (const uint8_t *)"geheim", 6, 0, &m), 0);
    expect_refused(w.obs, m.p, m.n, 0, SPK_EINVAL);
    spk_mls_buf_free(&m);
    spk_mls_buf_t kp, sec;
    new_kp("x", &kp, &sec);
    expect_refused(w.obs, kp.p, kp.n, 0, SPK_EINVAL);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_free(&other);
    world_commit(&w, 2, 0, NULL, 0, NULL);
    world_free(&w);
}

/* Invalid KeyPackages in Adds: expired (at the observer's time), or with a bad signature. */
static void tamper_kp_signature(spk_mls_public_message_t *pm)
{
    spk_mls_commit_t *c = &pm->content.commit;
    for (size_t i = 0; i < c->n_proposals; i++) {
        if (c->proposals[i].type == SPK_MLS_POR_PROPOSAL &&
            c->proposals[i].proposal.type == SPK_MLS_PROPOSAL_ADD) {
            c->proposals[i].proposal.u.add.signature.p[0] ^= 1;
        }
    }
}

static void tamper_kp_suite(spk_mls_public_message_t *pm)
{
    spk_mls_commit_t *c = &pm->content.commit;
    for (size_t i = 0; i < c->n_proposals; i++) {
        if (c->proposals[i].type == SPK_MLS_POR_PROPOSAL &&
            c->proposals[i].proposal.type == SPK_MLS_PROPOSAL_ADD) {
            c->proposals[i].proposal.u.add.cipher_suite = 2;
        }
    }
}

static void test_bad_key_packages(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp, sec, commit, welcome, prop;
    spk_mls_bytes_t bad;
    world_init(&w, 3, false);
    new_kp("expired-later", &kp, &sec);
    const uint8_t *adds[1] = {kp.p};
    size_t lens[1] = {kp.n};
    spk_mls_commit_opts_t o = {adds, lens, 1, NULL, 0, 0};
    assert_rc(spk_mls_commit(w.m[2], &o, &commit, &welcome), 0);
    expect_refused(w.obs, commit.p, commit.n, FAR_FUTURE, SPK_EMLSKEYPACKAGE);
    forge(w.m[2], &commit, tamper_kp_signature, &bad);
    expect_refused(w.obs, bad.p, bad.n, 0, SPK_EMLSKEYPACKAGE);
    spk_mls_bytes_free(&bad);
    forge(w.m[2], &commit, tamper_kp_suite, &bad);
    expect_refused(w.obs, bad.p, bad.n, 0, SPK_EMLSKEYPACKAGE);
    spk_mls_bytes_free(&bad);
    spk_mls_commit_discard(w.m[2]);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    /* An Add proposal with an expired KeyPackage, then with a valid one. */
    assert_rc(spk_mls_propose_add(w.m[1], kp.p, kp.n, &prop), 0);
    expect_refused(w.obs, prop.p, prop.n, FAR_FUTURE, SPK_EMLSKEYPACKAGE);
    w.now = (uint64_t)time(NULL);
    spk_mls_observed_t res;
    assert_rc(spk_mls_observer_process(w.obs, prop.p, prop.n, w.now, &res), 0);
    assert_int_equal(res.proposal.type, SPK_MLS_PROP_ADD);
    assert_bytes(res.proposal.identity, res.proposal.identity_len, "expired-later");
    uint8_t ref[SPK_MLS_REF_LEN];
    assert_rc(spk_mls_key_package_ref(kp.p, kp.n, ref), 0);
    assert_memory_equal(res.proposal.key_package_ref, ref, SPK_MLS_REF_LEN);
    expect_refused(w.obs, prop.p, prop.n, 0, SPK_EMLSREPLAY);
    spk_mls_buf_free(&prop);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_free(&w);
}

/* A Commit that refers to a proposal the observer never saw. */
static void test_unknown_reference(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t prop, commit;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w, 3, false);
    assert_rc(spk_mls_propose_update(w.m[1], &prop), 0);
    assert_rc(spk_mls_process_info(w.m[0], prop.p, prop.n, &ev, &in),
              0); /* bypassing the service */
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    expect_refused(w.obs, commit.p, commit.n, 0, SPK_EMLSPROPOSAL);
    /* once the observer has it, the same Commit is accepted */
    assert_rc(spk_mls_observer_process(w.obs, prop.p, prop.n, 0, NULL), 0);
    assert_rc(spk_mls_observer_process(w.obs, commit.p, commit.n, 0, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    assert_rc(spk_mls_process_info(w.m[1], commit.p, commit.n, &ev, &in), 0);
    assert_rc(spk_mls_process_info(w.m[2], prop.p, prop.n, &ev, &in), 0);
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), 0);
    world_check(&w);
    spk_mls_buf_free(&prop);
    spk_mls_buf_free(&commit);
    world_free(&w);
}

/* What the observer cannot check: a Commit whose confirmation tag is wrong passes it (it has
 * no confirmation key); every member rejects it. */
static void test_confirmation_tag_limit(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t commit, blob;
    spk_mls_bytes_t bad;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    spk_mls_observer_t *copy = NULL;
    world_init(&w, 3, false);
    assert_rc(spk_mls_commit(w.m[1], NULL, &commit, NULL), 0);
    forge(w.m[1], &commit, flip_confirmation_tag, &bad);
    assert_rc(spk_mls_observer_save(w.obs, &blob), 0);
    assert_rc(spk_mls_observer_restore(&copy, blob.p, blob.n), 0);
    assert_rc(spk_mls_observer_process(copy, bad.p, bad.n, 0, NULL), 0);
    assert_rc(spk_mls_process_info(w.m[0], bad.p, bad.n, &ev, &in), SPK_EMLSCONFIRM);
    assert_rc(spk_mls_process_info(w.m[2], bad.p, bad.n, &ev, &in), SPK_EMLSCONFIRM);
    spk_mls_observer_free(copy);
    spk_mls_bytes_free(&bad);
    /* the saved state before the bad Commit restores the service's view */
    spk_mls_observer_free(w.obs);
    assert_rc(spk_mls_observer_restore(&w.obs, blob.p, blob.n), 0);
    assert_rc(spk_mls_observer_process(w.obs, commit.p, commit.n, 0, NULL), 0);
    assert_rc(spk_mls_commit_merge(w.m[1]), 0);
    assert_rc(spk_mls_process_info(w.m[0], commit.p, commit.n, &ev, &in), 0);
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), 0);
    world_check(&w);
    spk_mls_buf_free(&blob);
    spk_mls_buf_free(&commit);
    world_free(&w);
}

/* The delivery service's two steps: prepare, check the membership changes, then accept or
 * discard; and refusing a proposal before anyone commits it. */
static void test_prepare_accept(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t kp, sec, commit, welcome, before, after, prop;
    spk_mls_observed_t res;
    spk_mls_event_t ev;
    spk_mls_event_info_t in;
    world_init(&w, 3, false);
    assert_rc(spk_mls_observer_accept(w.obs), SPK_ESTATE);
    new_kp("not-in-this-conversation", &kp, &sec);
    const uint8_t *adds[1] = {kp.p};
    size_t lens[1] = {kp.n};
    spk_mls_commit_opts_t o = {adds, lens, 1, NULL, 0, 0};
    assert_rc(spk_mls_commit(w.m[1], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_observer_save(w.obs, &before), 0);
    assert_rc(spk_mls_observer_prepare(w.obs, commit.p, commit.n, 0, &res), 0);
    assert_int_equal(res.type, SPK_MLS_EVENT_COMMIT);
    assert_int_equal(res.epoch, 2);
    assert_int_equal(res.n_joined, 1);
    assert_bytes(res.joined[0].identity, res.joined[0].identity_len, "not-in-this-conversation");
    assert_int_equal(spk_mls_observer_epoch(w.obs), 1); /* still pending */
    assert_rc(spk_mls_observer_save(w.obs, &after), 0);
    assert_int_equal(before.n, after.n);
    assert_memory_equal(before.p, after.p, before.n);
    spk_mls_buf_free(&after);
    spk_mls_observer_discard(w.obs); /* the policy says no */
    assert_rc(spk_mls_observer_accept(w.obs), SPK_ESTATE);
    assert_rc(spk_mls_observer_save(w.obs, &after), 0);
    assert_memory_equal(before.p, after.p, before.n);
    spk_mls_buf_free(&after);
    spk_mls_buf_free(&before);
    spk_mls_commit_discard(w.m[1]);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    /* The same Add as a proposal: the service refuses it; a Commit that includes it is refused. */
    assert_rc(spk_mls_propose_add(w.m[2], kp.p, kp.n, &prop), 0);
    assert_rc(spk_mls_observer_process(w.obs, prop.p, prop.n, 0, &res), 0);
    uint8_t ref[SPK_MLS_REF_LEN];
    memcpy(ref, res.proposal.ref, sizeof(ref));
    assert_rc(spk_mls_observer_proposal_refuse(w.obs, ref), 0);
    assert_rc(spk_mls_observer_save(w.obs, &before), 0);
    assert_rc(spk_mls_observer_proposal_refuse(w.obs, ref), SPK_ENOTFOUND);
    assert_rc(spk_mls_observer_save(w.obs, &after), 0);
    assert_memory_equal(before.p, after.p, before.n);
    spk_mls_buf_free(&after);
    spk_mls_buf_free(&before);
    assert_rc(spk_mls_process_info(w.m[0], prop.p, prop.n, &ev, &in), 0);
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, &welcome), 0);
    expect_refused(w.obs, commit.p, commit.n, 0, SPK_EMLSPROPOSAL);
    spk_mls_commit_discard(w.m[0]);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    /* A Commit the policy allows: prepared, accepted, followed by everyone. */
    assert_rc(spk_mls_proposal_refuse(w.m[0], ref), 0);
    assert_rc(spk_mls_commit(w.m[0], NULL, &commit, NULL), 0);
    assert_rc(spk_mls_observer_prepare(w.obs, commit.p, commit.n, 0, &res), 0);
    assert_true(res.n_joined == 0 && res.n_left == 0);
    assert_rc(spk_mls_observer_accept(w.obs), 0);
    assert_int_equal(spk_mls_observer_epoch(w.obs), 2);
    assert_rc(spk_mls_commit_merge(w.m[0]), 0);
    assert_rc(spk_mls_process_info(w.m[1], commit.p, commit.n, &ev, &in), 0);
    assert_rc(spk_mls_process_info(w.m[2], commit.p, commit.n, &ev, &in), 0);
    world_check(&w);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&prop);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    world_free(&w);
}

/* ---- persistence and the starting GroupInfo ---- */

static void test_save_restore(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t a, b, prop;
    world_init(&w, 5, false);
    assert_rc(spk_mls_propose_update(w.m[3], &prop), 0);
    world_propose(&w, 3, &prop);
    spk_mls_buf_free(&prop);
    assert_rc(spk_mls_observer_save(w.obs, &a), 0);
    spk_mls_observer_t *r = NULL;
    assert_rc(spk_mls_observer_restore(&r, a.p, a.n), 0);
    assert_rc(spk_mls_observer_save(r, &b), 0);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.p, b.p, a.n);
    for (size_t n = 0; n < a.n; n += 1 + a.n / 97) {
        spk_mls_observer_t *bad = NULL;
        assert_true(spk_mls_observer_restore(&bad, a.p, n) < 0);
        assert_null(bad);
    }
    /* a changed byte of the tree hash (in the GroupContext): inconsistent */
    size_t gid_len = 0;
    spk_mls_observer_group_id(w.obs, &gid_len);
    /* header 8, tag 2, length 2, version and suite 4, V(group_id), epoch 8, tree_hash length */
    size_t th_off = 8 + 2 + 2 + 4 + 1 + gid_len + 8 + 1;
    a.p[th_off] ^= 1;
    spk_mls_observer_t *bad = NULL;
    assert_rc(spk_mls_observer_restore(&bad, a.p, a.n), SPK_EVERIFY);
    a.p[th_off] ^= 1;
    a.p[0] ^= 1;
    assert_rc(spk_mls_observer_restore(&bad, a.p, a.n), SPK_EDECODE);
    /* the restored observer follows the group on */
    spk_mls_observer_free(w.obs);
    w.obs = r;
    world_commit(&w, 4, 1, NULL, 0, NULL);
    spk_mls_buf_free(&a);
    spk_mls_buf_free(&b);
    world_free(&w);
}

static void test_group_info_checks(void **state)
{
    (void)state;
    world_t w;
    spk_mls_buf_t gi, tree, kp, sec;
    spk_mls_message_t m;
    spk_mls_bytes_t bad;
    spk_mls_observer_t *o = NULL;
    world_init(&w, 3, false);
    assert_rc(spk_mls_group_info(w.m[2], 0, &gi), 0);
    assert_rc(spk_mls_observer_create(&o, gi.p, gi.n, NULL, 0), 0);
    assert_int_equal(spk_mls_observer_epoch(o), spk_mls_epoch(w.m[2]));
    spk_mls_observer_free(o);
    /* bad signature; a signer that is not a member; not a GroupInfo; truncated */
    assert_rc(spk_mls_message_decode(&m, gi.p, gi.n), 0);
    m.u.group_info.signature.p[1] ^= 1;
    assert_rc(spk_mls_message_encode(&m, &bad), 0);
    assert_rc(spk_mls_observer_create(&o, bad.p, bad.n, NULL, 0), SPK_EMLSSIG);
    spk_mls_bytes_free(&bad);
    m.u.group_info.signature.p[1] ^= 1;
    m.u.group_info.signer = 3; /* blank */
    assert_rc(spk_mls_message_encode(&m, &bad), 0);
    assert_rc(spk_mls_observer_create(&o, bad.p, bad.n, NULL, 0), SPK_EMLSSENDER);
    spk_mls_bytes_free(&bad);
    spk_mls_message_free(&m);
    new_kp("x", &kp, &sec);
    assert_rc(spk_mls_observer_create(&o, kp.p, kp.n, NULL, 0), SPK_EINVAL);
    assert_rc(spk_mls_observer_create(&o, gi.p, gi.n - 1, NULL, 0), SPK_ETRUNC);
    assert_null(o);
    /* a tree out of band that is not the GroupInfo's (the next epoch's) */
    spk_mls_buf_t oob_gi;
    assert_rc(spk_mls_group_info(w.m[2], SPK_MLS_COMMIT_TREE_OUT_OF_BAND, &oob_gi), 0);
    world_commit(&w, 0, 0, NULL, 0, NULL);
    assert_rc(spk_mls_ratchet_tree(w.m[0], &tree), 0);
    assert_rc(spk_mls_observer_create(&o, oob_gi.p, oob_gi.n, tree.p, tree.n), SPK_EVERIFY);
    spk_mls_buf_free(&tree);
    spk_mls_buf_free(&oob_gi);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    spk_mls_buf_free(&gi);
    world_free(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_oob),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_proposals_by_reference),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_concurrent_commits),
        cmocka_unit_test(test_forged_commits),
        cmocka_unit_test(test_not_for_observer),
        cmocka_unit_test(test_bad_key_packages),
        cmocka_unit_test(test_unknown_reference),
        cmocka_unit_test(test_confirmation_tag_limit),
        cmocka_unit_test(test_prepare_accept),
        cmocka_unit_test(test_save_restore),
        cmocka_unit_test(test_group_info_checks),
    };
    return run_cases(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
