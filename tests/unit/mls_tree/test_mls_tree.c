/* Unit tests for the MLS wire structs, ratchet tree and TreeKEM: rejection cases the official
 * vectors do not cover, tree operations on hand-built trees, an end-to-end UpdatePath with a
 * member added in the same commit, and tampered paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/tree.h"
#include "mls/tree_apply.h"
#include "mls/treekem.h"
#include "mls/validate.h"
#include "spk/error.h"

/* ---- helpers ---- */

static uint16_t *u16s(uint16_t a)
{
    uint16_t *v = malloc(sizeof(uint16_t));
    assert_non_null(v);
    v[0] = a;
    return v;
}

typedef struct {
    uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN];
    uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN];
    spk_mls_key_package_t kp;
} member_t;

/* A member with fresh keys and a signed KeyPackage. */
static void make_member(member_t *m, const char *name)
{
    uint8_t sig_pub[SPK_MLS_SIG_PUB_LEN];
    uint8_t enc_pub[SPK_MLS_KEM_PUB_LEN];
    uint8_t init_pub[SPK_MLS_KEM_PUB_LEN];
    memset(m, 0, sizeof(*m));
    assert_int_equal(spk_mls_ed25519_keygen(m->sig_priv, sig_pub), 0);
    assert_int_equal(spk_mls_x25519_keygen(m->enc_priv, enc_pub), 0);
    assert_int_equal(spk_mls_x25519_keygen(m->init_priv, init_pub), 0);
    spk_mls_leaf_node_t *ln = &m->kp.leaf_node;
    assert_int_equal(spk_mls_bytes_dup(&ln->encryption_key, enc_pub, sizeof(enc_pub)), 0);
    assert_int_equal(spk_mls_bytes_dup(&ln->signature_key, sig_pub, sizeof(sig_pub)), 0);
    ln->credential.type = SPK_MLS_CRED_BASIC;
    assert_int_equal(
        spk_mls_bytes_dup(&ln->credential.identity, (const uint8_t *)name, strlen(name)), 0);
    ln->capabilities.versions = (spk_mls_u16_list_t){u16s(1), 1};
    ln->capabilities.cipher_suites = (spk_mls_u16_list_t){u16s(1), 1};
    ln->capabilities.credentials = (spk_mls_u16_list_t){u16s(SPK_MLS_CRED_BASIC), 1};
    ln->capabilities.extensions = (spk_mls_u16_list_t){u16s(0x3a3a), 1}; /* GREASE */
    ln->source = SPK_MLS_LEAF_SRC_KEY_PACKAGE;
    ln->lifetime.not_before = 0;
    ln->lifetime.not_after = UINT64_MAX;
    assert_int_equal(spk_mls_leaf_node_sign(ln, m->sig_priv, NULL, 0, 0), 0);
    m->kp.version = 1;
    m->kp.cipher_suite = 1;
    assert_int_equal(spk_mls_bytes_dup(&m->kp.init_key, init_pub, sizeof(init_pub)), 0);
    assert_int_equal(spk_mls_key_package_sign(&m->kp, m->sig_priv), 0);
}

static int decode_hex_message(const char *hex, int (*fn)(const uint8_t *, size_t))
{
    uint8_t buf[256];
    size_t n = strlen(hex) / 2;
    assert_true(n <= sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        buf[i] = (uint8_t)v;
    }
    return fn(buf, n);
}

static int try_message(const uint8_t *p, size_t n)
{
    spk_mls_message_t m;
    int rc = spk_mls_message_decode(&m, p, n);
    spk_mls_message_free(&m);
    return rc;
}

static int try_tree(const uint8_t *p, size_t n)
{
    spk_mls_tree_t t;
    int rc = spk_mls_tree_decode(&t, p, n);
    spk_mls_tree_free(&t);
    return rc;
}

static int try_proposal(const uint8_t *p, size_t n)
{
    spk_mls_proposal_t x;
    int rc = spk_mls_proposal_decode(&x, p, n);
    spk_mls_proposal_free(&x);
    return rc;
}

static int try_commit(const uint8_t *p, size_t n)
{
    spk_mls_commit_t x;
    int rc = spk_mls_commit_decode(&x, p, n);
    spk_mls_commit_free(&x);
    return rc;
}

static int try_credential(const uint8_t *p, size_t n)
{
    spk_mls_credential_t x;
    int rc = spk_mls_credential_decode(&x, p, n);
    spk_mls_credential_free(&x);
    return rc;
}

static int try_extensions(const uint8_t *p, size_t n)
{
    spk_mls_reader_t r;
    spk_mls_extensions_t e;
    spk_mls_reader_init(&r, p, n);
    int rc = spk_mls_extensions_read(&r, &e);
    if (rc == 0) {
        rc = spk_mls_reader_done(&r);
        spk_mls_extensions_free(&e);
    }
    return rc;
}

/* ---- decoding ---- */

static void test_reject_enums(void **state)
{
    /* MLSMessage: version 2; wire format 6; wire format 0. */
    assert_int_equal(decode_hex_message("00020005", try_message), SPK_EDECODE);
    assert_int_equal(decode_hex_message("00010006", try_message), SPK_EDECODE);
    assert_int_equal(decode_hex_message("00010000", try_message), SPK_EDECODE);
    /* PrivateMessage with content type 4. */
    assert_int_equal(decode_hex_message("000100020000000000000000000004000000", try_message),
                     SPK_EDECODE);
    /* PublicMessage with sender type 5. */
    assert_int_equal(decode_hex_message("0001000100000000000000000005", try_message), SPK_EDECODE);
    /* Proposal types 0 and 8; remove proposal is fine. */
    assert_int_equal(decode_hex_message("0000", try_proposal), SPK_EDECODE);
    assert_int_equal(decode_hex_message("000800000001", try_proposal), SPK_EDECODE);
    assert_int_equal(decode_hex_message("000300000001", try_proposal), 0);
    /* Credential type 3 cannot be skipped; basic is fine. */
    assert_int_equal(decode_hex_message("000301aa", try_credential), SPK_EDECODE);
    assert_int_equal(decode_hex_message("000101aa", try_credential), 0);
    /* Commit: optional octet 2; ProposalOrRef type 3. */
    assert_int_equal(decode_hex_message("0002", try_commit), SPK_EDECODE);
    assert_int_equal(decode_hex_message("010300", try_commit), SPK_EDECODE);
    assert_int_equal(decode_hex_message("0000", try_commit), 0);
    /* Non-minimal varint length (0x4001 for 1). */
    assert_int_equal(decode_hex_message("00014001aa", try_credential), SPK_EDECODE);
}

static void test_reject_tree_shapes(void **state)
{
    /* Empty tree; last node blank; parent node at a leaf position. */
    assert_int_equal(decode_hex_message("00", try_tree), SPK_EDECODE);
    assert_int_equal(decode_hex_message("0100", try_tree), SPK_EDECODE);
    assert_int_equal(decode_hex_message("050102000000", try_tree), SPK_EDECODE);
}

static void test_extension_cap_and_grease(void **state)
{
    /* 257 empty extensions of type 0x0a0a: over SPK_MLS_MAX_EXTENSIONS. */
    size_t n = 257 * 3;
    uint8_t *buf = malloc(n + 2);
    assert_non_null(buf);
    buf[0] = 0x40 | (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    for (size_t i = 0; i < 257; i++) {
        buf[2 + 3 * i] = 0x0a;
        buf[3 + 3 * i] = 0x0a;
        buf[4 + 3 * i] = 0x00;
    }
    assert_int_equal(try_extensions(buf, n + 2), SPK_ERANGE);
    /* 256 are accepted and kept. */
    n = 256 * 3;
    buf[0] = 0x40 | (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    assert_int_equal(try_extensions(buf, n + 2), 0);
    free(buf);
    assert_true(spk_mls_is_grease(0x0a0a));
    assert_true(spk_mls_is_grease(0xeaea));
    assert_false(spk_mls_is_grease(0xfafa));
    assert_false(spk_mls_is_grease(0x0a1a));
    assert_false(spk_mls_is_grease(0x0002));
}

/* ---- key packages, tree operations ---- */

static void test_key_package(void **state)
{
    member_t m;
    make_member(&m, "alice");
    assert_int_equal(spk_mls_key_package_validate(&m.kp, 1700000000), 0);
    uint8_t ref[SPK_MLS_HASH_LEN];
    uint8_t want[SPK_MLS_HASH_LEN];
    spk_mls_bytes_t enc;
    assert_int_equal(mls_kp_ref(&m.kp, ref), 0);
    assert_int_equal(spk_mls_key_package_encode(&m.kp, &enc), 0);
    assert_int_equal(spk_mls_ref_hash("MLS 1.0 KeyPackage Reference", enc.p, enc.n, want), 0);
    assert_memory_equal(ref, want, sizeof(ref));
    spk_mls_bytes_free(&enc);
    m.kp.signature.p[0] ^= 1;
    assert_int_equal(spk_mls_key_package_validate(&m.kp, 1700000000), SPK_EVERIFY);
    m.kp.signature.p[0] ^= 1;
    m.kp.leaf_node.source = SPK_MLS_LEAF_SRC_UPDATE;
    assert_int_equal(spk_mls_key_package_validate(&m.kp, 1700000000), SPK_EVERIFY);
    spk_mls_key_package_free(&m.kp);
}

static void build_tree(spk_mls_tree_t *t, member_t *ms, size_t n)
{
    uint32_t leaf;
    memset(t, 0, sizeof(*t));
    t->nodes = calloc(1, sizeof(spk_mls_node_t));
    assert_non_null(t->nodes);
    t->n_leaves = 1;
    t->nodes[0].type = SPK_MLS_NODE_LEAF;
    assert_int_equal(spk_mls_leaf_node_copy(&t->nodes[0].leaf, &ms[0].kp.leaf_node), 0);
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(spk_mls_tree_add(t, &ms[i].kp.leaf_node, &leaf), 0);
        assert_int_equal(leaf, i);
    }
}

static void test_tree_ops(void **state)
{
    member_t ms[3];
    spk_mls_tree_t t;
    for (size_t i = 0; i < 3; i++) {
        make_member(&ms[i], "m");
    }
    build_tree(&t, ms, 3);
    assert_int_equal(t.n_leaves, 4);
    assert_int_equal(spk_mls_tree_remove(&t, 3), SPK_EINVAL); /* blank */
    assert_int_equal(spk_mls_tree_remove(&t, 2), 0);
    assert_int_equal(t.n_leaves, 2);
    assert_int_equal(spk_mls_tree_remove(&t, 1), 0);
    assert_int_equal(t.n_leaves, 1);
    assert_int_equal(spk_mls_tree_validate(&t, (const uint8_t *)"g", 1, NULL), 0);
    spk_mls_tree_free(&t);
    for (size_t i = 0; i < 3; i++) {
        spk_mls_key_package_free(&ms[i].kp);
    }
}

/* ---- TreeKEM ---- */

typedef struct {
    member_t ms[5];
    spk_mls_tree_t tree;
    spk_mls_tree_priv_t priv[5];
} group_t;

static const uint8_t gid[] = "group";
static const uint8_t gc[] = "provisional group context";

static void group_setup(group_t *g, size_t n)
{
    memset(g, 0, sizeof(*g));
    for (size_t i = 0; i < n; i++) {
        make_member(&g->ms[i], "member");
        assert_int_equal(spk_mls_tree_priv_init(&g->priv[i], (uint32_t)i, g->ms[i].enc_priv), 0);
    }
    build_tree(&g->tree, g->ms, n);
}

static void group_free(group_t *g, size_t n)
{
    spk_mls_tree_free(&g->tree);
    for (size_t i = 0; i < n; i++) {
        spk_mls_key_package_free(&g->ms[i].kp);
    }
}

/* Member `by` commits an UpdatePath; every other member but `skip` must agree. Installs the new
 * tree and private states. */
static void commit_path(group_t *g, size_t n, uint32_t by, const uint32_t *excl, size_t n_excl)
{
    spk_mls_update_path_t path;
    spk_mls_tree_t nt;
    spk_mls_tree_priv_t np;
    spk_mls_treekem_pending_t pd;
    uint8_t h1[SPK_MLS_HASH_LEN];
    uint8_t h2[SPK_MLS_HASH_LEN];
    assert_int_equal(spk_mls_treekem_create(&g->tree, &g->priv[by], by,
                                            spk_mls_tree_leaf(&g->tree, by), g->ms[by].sig_priv,
                                            gid, sizeof(gid), &path, &nt, &np, &pd),
                     0);
    assert_int_equal(spk_mls_treekem_encrypt(&g->tree, &pd, excl, n_excl, gc, sizeof(gc), &path),
                     0);
    assert_int_equal(spk_mls_tree_root_hash(&nt, h1), 0);
    assert_int_equal(spk_mls_tree_validate(&nt, gid, sizeof(gid), NULL), 0);
    spk_mls_tree_priv_t news[5];
    spk_mls_tree_priv_t np_bad;
    for (uint32_t j = 0; j < n; j++) {
        spk_mls_tree_t merged;
        uint8_t cs[SPK_MLS_HASH_LEN];
        if (j == by) {
            continue;
        }
        assert_int_equal(spk_mls_treekem_merge(&g->tree, by, &path, gid, sizeof(gid), &merged), 0);
        assert_int_equal(spk_mls_tree_root_hash(&merged, h2), 0);
        assert_memory_equal(h1, h2, sizeof(h1));
        bool excluded = false;
        for (size_t k = 0; k < n_excl; k++) {
            excluded = excluded || excl[k] == j;
        }
        int rc = spk_mls_treekem_decrypt(&merged, &g->priv[j], by, &path, excl, n_excl, gc,
                                         sizeof(gc), &news[j], NULL, cs);
        if (excluded) {
            /* A member added by this Commit gets its path secret through the Welcome. */
            uint8_t ps[SPK_MLS_HASH_LEN];
            assert_int_not_equal(rc, 0);
            assert_int_equal(spk_mls_treekem_pending_path_secret(&pd, j, ps), 0);
            assert_int_equal(
                spk_mls_tree_priv_join(&merged, j, g->ms[j].enc_priv, by, ps, &news[j]), 0);
            assert_true(news[j].n_keys > 1);
            ps[0] ^= 1;
            assert_int_equal(spk_mls_tree_priv_join(&merged, j, g->ms[j].enc_priv, by, ps, &np_bad),
                             SPK_EVERIFY);
        } else {
            assert_int_equal(rc, 0);
            assert_memory_equal(cs, pd.commit_secret, sizeof(cs));
        }
        spk_mls_tree_free(&merged);
    }
    for (uint32_t j = 0; j < n; j++) {
        g->priv[j] = j == by ? np : news[j];
    }
    spk_mls_tree_free(&g->tree);
    g->tree = nt;
    spk_mls_update_path_free(&path);
    spk_mls_treekem_pending_wipe(&pd);
}

static void test_treekem_rounds(void **state)
{
    group_t *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    group_setup(g, 5);
    /* Leaf 4 was "added by the same commit": it gets no path secret. */
    const uint32_t excl[] = {4};
    commit_path(g, 5, 0, excl, 1);
    commit_path(g, 5, 3, NULL, 0);
    commit_path(g, 5, 4, NULL, 0);
    commit_path(g, 5, 1, NULL, 0);
    for (uint32_t j = 0; j < 5; j++) {
        assert_true(spk_mls_tree_priv_consistent(&g->priv[j], &g->tree));
    }
    group_free(g, 5);
    free(g);
}

static void test_treekem_tamper(void **state)
{
    group_t *g = calloc(1, sizeof(*g));
    spk_mls_update_path_t path;
    spk_mls_tree_t nt;
    spk_mls_tree_t merged;
    spk_mls_tree_priv_t np;
    spk_mls_treekem_pending_t pd;
    uint8_t cs[SPK_MLS_HASH_LEN];
    assert_non_null(g);
    group_setup(g, 4);
    commit_path(g, 4, 2, NULL, 0);
    assert_int_equal(spk_mls_treekem_create(&g->tree, &g->priv[0], 0,
                                            spk_mls_tree_leaf(&g->tree, 0), g->ms[0].sig_priv, gid,
                                            sizeof(gid), &path, &nt, &np, &pd),
                     0);
    assert_int_equal(spk_mls_treekem_encrypt(&g->tree, &pd, NULL, 0, gc, sizeof(gc), &path), 0);
    /* Wrong group id: the leaf signature fails. */
    assert_int_equal(spk_mls_treekem_merge(&g->tree, 0, &path, gid, sizeof(gid) - 1, &merged),
                     SPK_EVERIFY);
    /* A changed node key breaks the leaf's parent hash. */
    path.nodes[1].encryption_key.p[0] ^= 1;
    assert_int_equal(spk_mls_treekem_merge(&g->tree, 0, &path, gid, sizeof(gid), &merged),
                     SPK_EVERIFY);
    path.nodes[1].encryption_key.p[0] ^= 1;
    /* Wrong sender. */
    assert_int_equal(spk_mls_treekem_merge(&g->tree, 1, &path, gid, sizeof(gid), &merged),
                     SPK_EVERIFY);
    /* A changed ciphertext fails to decrypt; a changed context too. */
    assert_int_equal(spk_mls_treekem_merge(&g->tree, 0, &path, gid, sizeof(gid), &merged), 0);
    path.nodes[1].secrets[0].ciphertext.p[3] ^= 1;
    assert_int_not_equal(spk_mls_treekem_decrypt(&merged, &g->priv[2], 0, &path, NULL, 0, gc,
                                                 sizeof(gc), &np, NULL, cs),
                         0);
    path.nodes[1].secrets[0].ciphertext.p[3] ^= 1;
    assert_int_not_equal(spk_mls_treekem_decrypt(&merged, &g->priv[2], 0, &path, NULL, 0, gc,
                                                 sizeof(gc) - 1, &np, NULL, cs),
                         0);
    assert_int_equal(spk_mls_treekem_decrypt(&merged, &g->priv[2], 0, &path, NULL, 0, gc,
                                             sizeof(gc), &np, NULL, cs),
                     0);
    assert_memory_equal(cs, pd.commit_secret, sizeof(cs));
    /* Parent-hash validation catches a tampered parent in a stored tree. */
    uint32_t root = spk_mls_tm_root(merged.n_leaves);
    merged.nodes[root].parent.encryption_key.p[5] ^= 1;
    assert_int_equal(spk_mls_tree_verify_parent_hashes(&merged), SPK_EVERIFY);
    spk_mls_tree_free(&merged);
    spk_mls_tree_free(&nt);
    spk_mls_update_path_free(&path);
    spk_mls_treekem_pending_wipe(&pd);
    group_free(g, 4);
    free(g);
}

/* ---- proposal lists ---- */

static int apply(const spk_mls_tree_t *t, uint32_t committer, const spk_mls_proposal_t *props,
                 const uint32_t *senders, size_t n, spk_mls_applied_t *out)
{
    spk_mls_proposal_use_t list[8];
    for (size_t i = 0; i < n; i++) {
        list[i].proposal = &props[i];
        list[i].sender_type = SPK_MLS_SENDER_MEMBER;
        list[i].sender = senders != NULL ? senders[i] : committer;
    }
    return spk_mls_tree_apply_proposals(t, gid, sizeof(gid), NULL, committer, false, list, n,
                                        1700000000, out);
}

static void test_apply_proposals(void **state)
{
    group_t *g = calloc(1, sizeof(*g));
    member_t extra;
    spk_mls_applied_t a;
    spk_mls_proposal_t p[3];
    assert_non_null(g);
    group_setup(g, 3);
    make_member(&extra, "dave");
    memset(p, 0, sizeof(p));

    /* Empty commit: path required. */
    assert_int_equal(apply(&g->tree, 0, p, NULL, 0, &a), 0);
    assert_true(a.path_required);
    spk_mls_applied_free(&a);

    /* Add only: no path required; the new member lands in leaf 3. */
    p[0].type = SPK_MLS_PROPOSAL_ADD;
    p[0].u.add = extra.kp;
    assert_int_equal(apply(&g->tree, 0, p, NULL, 1, &a), 0);
    assert_false(a.path_required);
    assert_int_equal(a.n_added, 1);
    assert_int_equal(a.added[0], 3);
    spk_mls_applied_free(&a);

    /* Remove leaf 1 and Add: the Add takes the freed leaf. */
    p[1].type = SPK_MLS_PROPOSAL_REMOVE;
    p[1].u.remove = 1;
    assert_int_equal(apply(&g->tree, 0, p, NULL, 2, &a), 0);
    assert_true(a.path_required);
    assert_int_equal(a.added[0], 1);
    spk_mls_applied_free(&a);

    /* Removing the committer, or the same leaf twice, is invalid. */
    p[1].u.remove = 0;
    assert_int_equal(apply(&g->tree, 0, p, NULL, 2, &a), SPK_EVERIFY);
    p[1].u.remove = 2;
    p[2] = p[1];
    assert_int_equal(apply(&g->tree, 0, &p[1], NULL, 2, &a), SPK_EVERIFY);

    /* Adding a current member again is invalid, unless it is removed by the same Commit. */
    p[0].u.add = g->ms[2].kp;
    assert_int_equal(apply(&g->tree, 0, p, NULL, 1, &a), SPK_EVERIFY);
    assert_int_equal(apply(&g->tree, 0, p, NULL, 2, &a), 0);
    spk_mls_applied_free(&a);

    /* ReInit with another proposal is invalid. */
    p[1].type = SPK_MLS_PROPOSAL_REINIT;
    memset(&p[1].u.reinit, 0, sizeof(p[1].u.reinit));
    assert_int_equal(apply(&g->tree, 0, p, NULL, 2, &a), SPK_EVERIFY);

    /* An Update from member 1 with a fresh, signed leaf; not from the committer. */
    uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t enc_pub[SPK_MLS_KEM_PUB_LEN];
    spk_mls_leaf_node_t *ln = &p[2].u.update;
    memset(&p[2], 0, sizeof(p[2]));
    p[2].type = SPK_MLS_PROPOSAL_UPDATE;
    assert_int_equal(spk_mls_leaf_node_copy(ln, spk_mls_tree_leaf(&g->tree, 1)), 0);
    assert_int_equal(spk_mls_x25519_keygen(enc_priv, enc_pub), 0);
    memcpy(ln->encryption_key.p, enc_pub, sizeof(enc_pub));
    ln->source = SPK_MLS_LEAF_SRC_UPDATE;
    assert_int_equal(spk_mls_leaf_node_sign(ln, g->ms[1].sig_priv, gid, sizeof(gid), 1), 0);
    const uint32_t senders[] = {1};
    assert_int_equal(apply(&g->tree, 0, &p[2], senders, 1, &a), 0);
    assert_true(a.path_required);
    assert_true(spk_mls_bytes_eq_raw(&spk_mls_tree_leaf(&a.tree, 1)->encryption_key, enc_pub,
                                     sizeof(enc_pub)));
    spk_mls_applied_free(&a);
    assert_int_equal(apply(&g->tree, 1, &p[2], senders, 1, &a), SPK_EVERIFY);
    ln->signature.p[0] ^= 1;
    assert_int_equal(apply(&g->tree, 0, &p[2], senders, 1, &a), SPK_EVERIFY);

    spk_mls_leaf_node_free(ln);
    spk_mls_key_package_free(&extra.kp);
    group_free(g, 3);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_enums),
        cmocka_unit_test(test_reject_tree_shapes),
        cmocka_unit_test(test_extension_cap_and_grease),
        cmocka_unit_test(test_key_package),
        cmocka_unit_test(test_tree_ops),
        cmocka_unit_test(test_treekem_rounds),
        cmocka_unit_test(test_treekem_tamper),
        cmocka_unit_test(test_apply_proposals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
