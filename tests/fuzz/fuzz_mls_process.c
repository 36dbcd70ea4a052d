/* libFuzzer target: arbitrary MLSMessages processed by a LIVE group member.
 *
 * The member is "bob" of a three-member group (alice, bob, carol) whose epoch has non-blank
 * parent nodes (alice committed an UpdatePath after the Adds). Its saved state and the
 * KeyPackage secret of "dave" (a prospective member) are embedded from mls_process_state.h, so
 * every run starts from the same state and the seed corpus, made by the other members in that
 * same epoch, authenticates: real PrivateMessage application data, Public/PrivateMessage
 * proposals and Commits (Add, Remove, Update by reference, path-only), and dave's Welcome.
 *
 * An input is a sequence of records { uint24 length; opaque message[length]; } (at most 8),
 * handled in order by one freshly restored copy of bob, so runs are independent. A Welcome
 * record is also offered to spk_mls_join with dave's secret. Oracles (abort on violation):
 *   - a failed spk_mls_process leaves the saved state byte-for-byte unchanged;
 *   - after the records, save -> restore -> save gives the same bytes, and a member that was
 *     not removed can still encrypt.
 *
 * Built with -DSPK_MLS_PROCESS_GENERATE (target mls_process_gen) the same file builds the group,
 * writes mls_process_state.h and the seed corpus: mls_process_gen <header> <corpus dir>.
 * SPK_FUZZ_VERBOSE=1 prints the result of each record (to check the seeds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_records.h"
#include "spk/error.h"
#include "spk/mls.h"

#define MAX_RECORDS 8

#ifndef SPK_MLS_PROCESS_GENERATE

#include "mls_process_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "mls_process oracle violated: %s\n", what);
        abort();
    }
}

static bool same(const spk_mls_buf_t *a, const spk_mls_buf_t *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

static void try_join(const uint8_t *p, size_t n)
{
    spk_mls_t *d = NULL;
    if (n < 4 || p[0] != 0 || p[1] != 1 || p[2] != 0 || p[3] != 3) {
        return;
    }
    int rc = spk_mls_join(&d, dave_secret, sizeof(dave_secret), p, n, NULL, 0);
    if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "join: %s\n", spk_err_name(rc));
    }
    if (rc == 0) {
        spk_mls_buf_t m;
        check(spk_mls_encrypt(d, (const uint8_t *)"d", 1, 0, &m) == 0, "joiner cannot send");
        spk_mls_buf_free(&m);
        spk_mls_free(d);
    }
}

/* One record against g; the state must not change when processing fails. */
static void process_one(spk_mls_t *g, const uint8_t *p, size_t n)
{
    spk_mls_buf_t before, after;
    spk_mls_event_t ev;
    check(spk_mls_save(g, &before) == 0, "save before");
    int rc = spk_mls_process(g, p, n, &ev);
    if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "record of %zu bytes: %s, event %d\n", n, spk_err_name(rc), (int)ev.type);
    }
    if (rc != 0) {
        check(ev.type == 0 && ev.data.p == NULL, "event filled on failure");
        check(spk_mls_save(g, &after) == 0, "save after");
        check(same(&before, &after), "state changed by a failed process");
        spk_mls_buf_free(&after);
    }
    spk_mls_buf_free(&ev.data);
    spk_mls_buf_free(&before);
    try_join(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spk_mls_t *g = NULL;
    spk_mls_buf_t a, b, m;
    if (spk_mls_restore(&g, bob_state, sizeof(bob_state)) != 0) {
        abort(); /* the embedded state must always restore */
    }
    size_t off = 0;
    const uint8_t *rec;
    size_t n;
    for (int i = 0; i < MAX_RECORDS && fuzz_next_record(data, size, &off, &rec, &n); i++) {
        process_one(g, rec, n);
    }
    check(spk_mls_save(g, &a) == 0, "save");
    spk_mls_t *r = NULL;
    check(spk_mls_restore(&r, a.p, a.n) == 0, "restore of a saved state");
    check(spk_mls_save(r, &b) == 0 && same(&a, &b), "save/restore round trip");
    int rc = spk_mls_encrypt(r, (const uint8_t *)"x", 1, 0, &m);
    check(rc == 0 || rc == SPK_ESTATE, "encrypt after processing");
    spk_mls_buf_free(&m);
    spk_mls_buf_free(&a);
    spk_mls_buf_free(&b);
    spk_mls_free(r);
    spk_mls_free(g);
    return 0;
}

#else /* generator */

static const char *corpus_dir;

/* Writes one seed: the given messages as records. */
static void seed(const char *name, const spk_mls_buf_t *const *msgs, size_t n)
{
    fuzz_write_seed(corpus_dir, name, msgs, n);
}

static void seed1(const char *name, const spk_mls_buf_t *m)
{
    seed(name, &m, 1);
}

static void write_array(FILE *f, const char *name, const spk_mls_buf_t *b)
{
    fprintf(f, "static const uint8_t %s[%zu] = {", name, b->n);
    for (size_t i = 0; i < b->n; i++) {
        fprintf(f, "%s0x%02x,", i % 16 == 0 ? "\n    " : " ", b->p[i]);
    }
    fprintf(f, "\n};\n");
}

typedef struct {
    spk_mls_buf_t alice, carol; /* saved states in the fuzzed epoch */
} epoch_t;

static spk_mls_t *copy_of(const spk_mls_buf_t *state)
{
    spk_mls_t *g = NULL;
    fuzz_need(spk_mls_restore(&g, state->p, state->n), "restore");
    return g;
}

static void commit_seed(const char *name, spk_mls_t *g, const spk_mls_commit_opts_t *o,
                        const spk_mls_buf_t *prefix, spk_mls_buf_t *welcome)
{
    spk_mls_buf_t c, w;
    fuzz_need(spk_mls_commit(g, o, &c, &w), name);
    const spk_mls_buf_t *msgs[2] = {prefix, &c};
    seed(name, prefix != NULL ? msgs : msgs + 1, prefix != NULL ? 2 : 1);
    if (welcome != NULL) {
        *welcome = w;
    } else {
        spk_mls_buf_free(&w);
    }
    spk_mls_buf_free(&c);
}

static void proposal_seeds(const epoch_t *e, const spk_mls_buf_t *dave_kp)
{
    spk_mls_buf_t p;
    spk_mls_t *a = copy_of(&e->alice);
    fuzz_need(spk_mls_propose_add(a, dave_kp->p, dave_kp->n, &p), "propose add");
    seed1("proposal_add", &p);
    commit_seed("proposal_add_then_commit", a, NULL, &p, NULL);
    spk_mls_buf_free(&p);
    spk_mls_free(a);

    a = copy_of(&e->alice);
    fuzz_need(spk_mls_propose_remove(a, 2, &p), "propose remove");
    seed1("proposal_remove", &p);
    spk_mls_commit_opts_t priv = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    commit_seed("proposal_remove_then_private_commit", a, &priv, &p, NULL);
    spk_mls_buf_free(&p);
    spk_mls_free(a);

    spk_mls_t *c = copy_of(&e->carol);
    spk_mls_event_t ev;
    fuzz_need(spk_mls_propose_update(c, &p), "propose update");
    seed1("proposal_update", &p);
    a = copy_of(&e->alice);
    fuzz_need(spk_mls_process(a, p.p, p.n, &ev), "alice gets the update");
    commit_seed("update_then_commit", a, NULL, &p, NULL);
    spk_mls_buf_free(&p);
    spk_mls_free(a);
    spk_mls_free(c);
}

static void commit_seeds(const epoch_t *e, const spk_mls_buf_t *dave_kp)
{
    spk_mls_buf_t w;
    const uint8_t *adds[1] = {dave_kp->p};
    size_t lens[1] = {dave_kp->n};
    uint32_t alice_leaf = 0;
    spk_mls_t *a = copy_of(&e->alice);
    commit_seed("commit_path_public", a, NULL, NULL, NULL);
    spk_mls_free(a);

    a = copy_of(&e->alice);
    spk_mls_commit_opts_t add_priv = {adds, lens, 1, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    commit_seed("commit_add_private", a, &add_priv, NULL, &w);
    seed1("welcome_dave", &w);
    spk_mls_buf_free(&w);
    spk_mls_free(a);

    spk_mls_t *c = copy_of(&e->carol);
    spk_mls_commit_opts_t rm = {NULL, NULL, 0, &alice_leaf, 1, 0};
    commit_seed("commit_remove_by_carol", c, &rm, NULL, NULL);
    spk_mls_free(c);

    c = copy_of(&e->carol);
    uint32_t bob_leaf = 1;
    spk_mls_commit_opts_t rm_bob = {adds, lens, 1, &bob_leaf, 1, SPK_MLS_COMMIT_PRIVATE};
    commit_seed("commit_remove_bob", c, &rm_bob, NULL, NULL);
    spk_mls_free(c);
}

static void app_seeds(const epoch_t *e, const spk_mls_buf_t *dave_kp)
{
    spk_mls_buf_t m[3];
    spk_mls_t *c = copy_of(&e->carol);
    for (int i = 0; i < 3; i++) {
        char t[32];
        snprintf(t, sizeof(t), "bericht %d van carol", i);
        fuzz_need(spk_mls_encrypt(c, (const uint8_t *)t, strlen(t), (size_t)i * 7, &m[i]), "send");
    }
    const spk_mls_buf_t *order[4] = {&m[2], &m[0], &m[1], &m[0]}; /* out of order, replay */
    seed("app_out_of_order_replay", order, 4);
    seed1("app_carol", &m[0]);
    for (int i = 0; i < 3; i++) {
        spk_mls_buf_free(&m[i]);
    }
    spk_mls_free(c);
    spk_mls_t *a = copy_of(&e->alice);
    fuzz_need(spk_mls_encrypt(a, (const uint8_t *)"", 0, 0, &m[0]), "send empty");
    seed1("app_alice_empty", &m[0]);
    spk_mls_buf_free(&m[0]);
    spk_mls_free(a);
    seed1("key_package", dave_kp);
}

int main(int argc, char **argv)
{
    spk_mls_buf_t kp[4], sec[4], c, w, bob;
    spk_mls_t *g[3];
    spk_mls_event_t ev;
    const char *names[4] = {"alice", "bob", "carol", "dave"};
    if (argc != 3) {
        fprintf(stderr, "usage: %s HEADER CORPUS_DIR\n", argv[0]);
        return 2;
    }
    corpus_dir = argv[2];
    for (int i = 0; i < 4; i++) {
        fuzz_need(spk_mls_key_package_create((const uint8_t *)names[i], strlen(names[i]), &kp[i],
                                             &sec[i]),
                  "key package");
    }
    static const uint8_t gid[] = "fuzz-consult";
    fuzz_need(spk_mls_create(&g[0], gid, sizeof(gid), sec[0].p, sec[0].n), "create");
    const uint8_t *adds[2] = {kp[1].p, kp[2].p};
    size_t lens[2] = {kp[1].n, kp[2].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, NULL, 0, 0};
    fuzz_need(spk_mls_commit(g[0], &o, &c, &w), "add");
    fuzz_need(spk_mls_commit_merge(g[0]), "merge");
    fuzz_need(spk_mls_join(&g[1], sec[1].p, sec[1].n, w.p, w.n, NULL, 0), "join bob");
    fuzz_need(spk_mls_join(&g[2], sec[2].p, sec[2].n, w.p, w.n, NULL, 0), "join carol");
    spk_mls_buf_free(&c);
    spk_mls_buf_free(&w);
    /* An UpdatePath so that parent nodes are not blank. */
    fuzz_need(spk_mls_commit(g[0], NULL, &c, NULL), "path");
    fuzz_need(spk_mls_commit_merge(g[0]), "merge path");
    fuzz_need(spk_mls_process(g[1], c.p, c.n, &ev), "bob path");
    fuzz_need(spk_mls_process(g[2], c.p, c.n, &ev), "carol path");
    spk_mls_buf_free(&c);

    epoch_t e;
    fuzz_need(spk_mls_save(g[0], &e.alice), "save alice");
    fuzz_need(spk_mls_save(g[2], &e.carol), "save carol");
    fuzz_need(spk_mls_save(g[1], &bob), "save bob");
    proposal_seeds(&e, &kp[3]);
    commit_seeds(&e, &kp[3]);
    app_seeds(&e, &kp[3]);

    FILE *f = fopen(argv[1], "w");
    fuzz_need(f == NULL ? SPK_EIO : 0, argv[1]);
    fprintf(f, "/* Generated by mls_process_gen (fuzz_mls_process.c): the saved state of bob and\n"
               " * the KeyPackage secret of dave. Test keys only. */\n");
    write_array(f, "bob_state", &bob);
    write_array(f, "dave_secret", &sec[3]);
    fclose(f);
    for (int i = 0; i < 4; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    for (int i = 0; i < 3; i++) {
        spk_mls_free(g[i]);
    }
    spk_mls_buf_free(&e.alice);
    spk_mls_buf_free(&e.carol);
    spk_mls_buf_free(&bob);
    return 0;
}

#endif
