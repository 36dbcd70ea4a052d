/* End-to-end tests of the MLS group state between members implemented here: create, add
 * through Welcome, application messages, remove, PSK and GroupContextExtensions commits, and
 * rejection of replayed or tampered Commits without a state change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mls/group.h"
#include "mls/prim.h"
#include "mls/structs.h"
#include "mls/validate.h"
#include "spk/error.h"

static const uint8_t gid[] = "consult-42";
static const uint8_t psk_id[] = "external psk";
static const uint8_t psk_val[] = "0123456789abcdef0123456789abcdef";

static int psk_cb(void *arg, const spk_mls_psk_id_t *id, const uint8_t **psk, size_t *len)
{
    if (id->psktype == SPK_MLS_PSK_EXTERNAL &&
        spk_mls_bytes_eq_raw(&id->psk_id, psk_id, sizeof(psk_id))) {
        *psk = psk_val;
        *len = sizeof(psk_val);
        return 0;
    }
    return SPK_ENOTFOUND;
}

static const spk_mls_group_env_t env = {psk_cb, NULL};

typedef struct {
    uint8_t sig_priv[SPK_MLS_SIG_PRIV_LEN];
    uint8_t enc_priv[SPK_MLS_KEM_PRIV_LEN];
    uint8_t init_priv[SPK_MLS_KEM_PRIV_LEN];
    spk_mls_key_package_t kp;
    spk_mls_group_t g;
    bool in;
} member_t;

static uint16_t *u16s(uint16_t a, uint16_t b)
{
    uint16_t *v = malloc(2 * sizeof(uint16_t));
    assert_non_null(v);
    v[0] = a;
    v[1] = b;
    return v;
}

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
    ln->capabilities.versions = (spk_mls_u16_list_t){u16s(1, 0x1a1a), 2};
    ln->capabilities.cipher_suites = (spk_mls_u16_list_t){u16s(1, 0x2a2a), 2};
    ln->capabilities.credentials = (spk_mls_u16_list_t){u16s(SPK_MLS_CRED_BASIC, 0x3a3a), 2};
    ln->capabilities.extensions = (spk_mls_u16_list_t){u16s(0xff00, 0x4a4a), 2};
    ln->source = SPK_MLS_LEAF_SRC_KEY_PACKAGE;
    ln->lifetime.not_after = UINT64_MAX;
    assert_int_equal(spk_mls_leaf_node_sign(ln, m->sig_priv, NULL, 0, 0), 0);
    m->kp.version = 1;
    m->kp.cipher_suite = 1;
    assert_int_equal(spk_mls_bytes_dup(&m->kp.init_key, init_pub, sizeof(init_pub)), 0);
    assert_int_equal(spk_mls_key_package_sign(&m->kp, m->sig_priv), 0);
}

static void join(member_t *m, const spk_mls_bytes_t *welcome)
{
    spk_mls_message_t w;
    assert_int_equal(spk_mls_message_decode(&w, welcome->p, welcome->n), 0);
    assert_int_equal(w.wire_format, SPK_MLS_WIRE_WELCOME);
    assert_int_equal(spk_mls_group_join(&m->g, &w.u.welcome, &m->kp, m->init_priv, m->enc_priv,
                                        m->sig_priv, NULL, &env),
                     0);
    spk_mls_message_free(&w);
    m->in = true;
}

static int deliver(member_t *m, const spk_mls_bytes_t *msg, spk_mls_group_event_t *ev,
                   spk_mls_bytes_t *app)
{
    spk_mls_message_t x;
    int rc = spk_mls_message_decode(&x, msg->p, msg->n);
    if (rc == 0) {
        rc = spk_mls_group_handle(&m->g, &x, &env, ev, app);
        spk_mls_message_free(&x);
    }
    return rc;
}

/* `by` commits props; every other member in the group processes it; added ones join. */
static void commit(member_t *ms, size_t n, size_t by, const spk_mls_proposal_t *props,
                   size_t n_props, member_t **joiners, size_t n_join)
{
    spk_mls_commit_out_t out;
    spk_mls_group_event_t ev;
    assert_int_equal(spk_mls_group_commit(&ms[by].g, props, n_props, true, &env, &out), 0);
    for (size_t i = 0; i < n; i++) {
        if (i == by || !ms[i].in) {
            continue;
        }
        assert_int_equal(deliver(&ms[i], &out.commit, &ev, NULL), 0);
        if (ev == SPK_MLS_GROUP_EV_REMOVED) {
            spk_mls_group_free(&ms[i].g);
            ms[i].in = false;
            continue;
        }
        assert_int_equal(ev, SPK_MLS_GROUP_EV_COMMIT);
        /* A replay of the same Commit is for an old epoch now. */
        assert_int_equal(deliver(&ms[i], &out.commit, &ev, NULL), SPK_EMLSEPOCH);
    }
    assert_int_equal(out.welcome.n > 0, n_join > 0);
    spk_mls_bytes_t welcome = out.welcome;
    out.welcome.p = NULL;
    out.welcome.n = 0;
    spk_mls_group_merge_commit(&ms[by].g, &out);
    for (size_t j = 0; j < n_join; j++) {
        join(joiners[j], &welcome);
    }
    spk_mls_bytes_free(&welcome);
    const uint8_t *auth = ms[by].g.secrets.epoch_authenticator;
    for (size_t i = 0; i < n; i++) {
        if (ms[i].in) {
            assert_memory_equal(ms[i].g.secrets.epoch_authenticator, auth, SPK_MLS_HASH_LEN);
            assert_int_equal(ms[i].g.gc.epoch, ms[by].g.gc.epoch);
        }
    }
}

static void send_and_check(member_t *ms, size_t n, size_t from, const char *text)
{
    spk_mls_bytes_t msg;
    assert_int_equal(spk_mls_group_send(&ms[from].g, (const uint8_t *)text, strlen(text), 7, &msg),
                     0);
    for (size_t i = 0; i < n; i++) {
        spk_mls_group_event_t ev;
        spk_mls_bytes_t app = {NULL, 0};
        if (i == from || !ms[i].in) {
            continue;
        }
        assert_int_equal(deliver(&ms[i], &msg, &ev, &app), 0);
        assert_int_equal(ev, SPK_MLS_GROUP_EV_APPLICATION);
        assert_int_equal(app.n, strlen(text));
        assert_memory_equal(app.p, text, app.n);
        spk_mls_bytes_free(&app);
        /* The ratchet key was consumed: a replay fails. */
        assert_int_not_equal(deliver(&ms[i], &msg, &ev, NULL), 0);
    }
    spk_mls_bytes_free(&msg);
}

static spk_mls_proposal_t add_of(const member_t *m)
{
    spk_mls_proposal_t p;
    memset(&p, 0, sizeof(p));
    p.type = SPK_MLS_PROPOSAL_ADD;
    p.u.add = m->kp; /* shallow: the proposal is only read */
    return p;
}

static void test_group_lifecycle(void **state)
{
    member_t *ms = calloc(4, sizeof(member_t));
    assert_non_null(ms);
    const char *names[] = {"gp", "patient", "specialist", "nurse"};
    for (size_t i = 0; i < 4; i++) {
        make_member(&ms[i], names[i]);
    }
    assert_int_equal(spk_mls_group_create(&ms[0].g, gid, sizeof(gid), &ms[0].kp.leaf_node,
                                          ms[0].enc_priv, ms[0].sig_priv, NULL),
                     0);
    ms[0].in = true;

    /* The GP adds the patient. */
    spk_mls_proposal_t props[3];
    props[0] = add_of(&ms[1]);
    member_t *j1[] = {&ms[1]};
    commit(ms, 4, 0, props, 1, j1, 1);
    send_and_check(ms, 4, 0, "goedemorgen");
    send_and_check(ms, 4, 1, "hallo dokter");

    /* The patient adds two more with an external PSK. */
    props[0] = add_of(&ms[2]);
    props[1] = add_of(&ms[3]);
    memset(&props[2], 0, sizeof(props[2]));
    props[2].type = SPK_MLS_PROPOSAL_PSK;
    props[2].u.psk.psktype = SPK_MLS_PSK_EXTERNAL;
    props[2].u.psk.psk_id.p = (uint8_t *)psk_id;
    props[2].u.psk.psk_id.n = sizeof(psk_id);
    props[2].u.psk.psk_nonce.p = (uint8_t *)psk_val;
    props[2].u.psk.psk_nonce.n = SPK_MLS_HASH_LEN;
    member_t *j2[] = {&ms[2], &ms[3]};
    commit(ms, 4, 1, props, 3, j2, 2);
    send_and_check(ms, 4, 3, "ik kijk mee");

    /* An empty Commit (path only), then GroupContextExtensions with a supported type. */
    commit(ms, 4, 2, NULL, 0, NULL, 0);
    spk_mls_extension_t ext = {0xff00, {(uint8_t *)"x", 1}};
    memset(&props[0], 0, sizeof(props[0]));
    props[0].type = SPK_MLS_PROPOSAL_GCE;
    props[0].u.gce.v = &ext;
    props[0].u.gce.n = 1;
    commit(ms, 4, 3, props, 1, NULL, 0);
    assert_int_equal(ms[0].g.gc.extensions.n, 1);

    /* An unsupported extension type is refused. */
    spk_mls_commit_out_t out;
    ext.type = 0xff01;
    assert_int_equal(spk_mls_group_commit(&ms[0].g, props, 1, false, &env, &out), SPK_EVERIFY);

    /* The GP proposes removing the patient; the specialist commits it by reference, and the
     * patient learns it was removed. */
    spk_mls_bytes_t prop_msg;
    spk_mls_group_event_t ev;
    memset(&props[0], 0, sizeof(props[0]));
    props[0].type = SPK_MLS_PROPOSAL_REMOVE;
    props[0].u.remove = 1;
    assert_int_equal(spk_mls_group_propose(&ms[0].g, &props[0], &prop_msg), 0);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(deliver(&ms[i], &prop_msg, &ev, NULL), 0);
        assert_int_equal(ev, SPK_MLS_GROUP_EV_PROPOSAL);
    }
    spk_mls_bytes_free(&prop_msg);
    commit(ms, 4, 2, NULL, 0, NULL, 0);
    assert_false(ms[1].in);
    send_and_check(ms, 4, 0, "tot ziens");

    for (size_t i = 0; i < 4; i++) {
        spk_mls_group_free(&ms[i].g);
        spk_mls_key_package_free(&ms[i].kp);
    }
    free(ms);
}

static void test_tampered_commit(void **state)
{
    member_t *ms = calloc(3, sizeof(member_t));
    spk_mls_commit_out_t out;
    spk_mls_group_event_t ev;
    assert_non_null(ms);
    for (size_t i = 0; i < 3; i++) {
        make_member(&ms[i], "m");
    }
    assert_int_equal(spk_mls_group_create(&ms[0].g, gid, sizeof(gid), &ms[0].kp.leaf_node,
                                          ms[0].enc_priv, ms[0].sig_priv, NULL),
                     0);
    ms[0].in = true;
    spk_mls_proposal_t props[2] = {add_of(&ms[1]), add_of(&ms[2])};

    /* Every 5th byte of the Welcome flipped: joining fails cleanly, or (for bytes only another
     * joiner reads, such as its own KeyPackageRef) gives the same epoch. */
    uint8_t want[SPK_MLS_HASH_LEN];
    assert_int_equal(spk_mls_group_commit(&ms[0].g, props, 2, false, &env, &out), 0);
    memcpy(want, out.next.secrets.epoch_authenticator, sizeof(want));
    for (size_t i = 0; i < out.welcome.n; i += 5) {
        spk_mls_message_t w;
        spk_mls_group_t g;
        out.welcome.p[i] ^= 0x04;
        if (spk_mls_message_decode(&w, out.welcome.p, out.welcome.n) == 0) {
            if (spk_mls_group_join(&g, &w.u.welcome, &ms[1].kp, ms[1].init_priv, ms[1].enc_priv,
                                   ms[1].sig_priv, NULL, &env) == 0) {
                assert_memory_equal(g.secrets.epoch_authenticator, want, sizeof(want));
                spk_mls_group_free(&g);
            }
            spk_mls_message_free(&w);
        }
        out.welcome.p[i] ^= 0x04;
    }
    spk_mls_group_commit_out_free(&out);

    member_t *j[] = {&ms[1], &ms[2]};
    commit(ms, 3, 0, props, 2, j, 2);

    assert_int_equal(spk_mls_group_commit(&ms[0].g, NULL, 0, false, &env, &out), 0);
    uint8_t before[SPK_MLS_HASH_LEN];
    memcpy(before, ms[1].g.secrets.epoch_authenticator, sizeof(before));
    /* Flip every byte in turn: each variant must be rejected and leave the state alone. */
    for (size_t i = 0; i < out.commit.n; i += 7) {
        out.commit.p[i] ^= 0x01;
        assert_int_not_equal(deliver(&ms[1], &out.commit, &ev, NULL), 0);
        out.commit.p[i] ^= 0x01;
        assert_memory_equal(ms[1].g.secrets.epoch_authenticator, before, sizeof(before));
    }
    assert_int_equal(deliver(&ms[1], &out.commit, &ev, NULL), 0);
    assert_int_equal(ev, SPK_MLS_GROUP_EV_COMMIT);
    spk_mls_group_merge_commit(&ms[0].g, &out);
    assert_memory_equal(ms[0].g.secrets.epoch_authenticator, ms[1].g.secrets.epoch_authenticator,
                        SPK_MLS_HASH_LEN);
    for (size_t i = 0; i < 3; i++) {
        spk_mls_group_free(&ms[i].g);
        spk_mls_key_package_free(&ms[i].kp);
    }
    free(ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_lifecycle),
        cmocka_unit_test(test_tampered_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
