/* libFuzzer target: arbitrary MLSMessages processed by the delivery service's observer of a
 * LIVE group (spk/mls_observer.h).
 *
 * The observer follows a four-member group (alice, bob, carol, dave) whose parents are not
 * blank (bob and carol committed UpdatePaths). Its saved state is embedded from
 * mls_observer_state.h, so every run starts from the same epoch and the seed corpus, made by
 * the members in that epoch, is valid for it: PublicMessage proposals (Add, Update, Remove,
 * self-remove) and Commits (path-only, Adds and Removes, proposals by reference), and messages
 * the observer refuses (a PrivateMessage Commit, an application message, a Commit of the next
 * epoch).
 *
 * An input is a sequence of records { uint24 length; opaque message[length]; } (at most 8),
 * processed in order by one freshly restored observer. Oracles (abort on violation):
 *   - a failed spk_mls_observer_process leaves the saved state byte-for-byte unchanged and the
 *     result empty;
 *   - a processed Commit reports an epoch one higher, and joined and left members that the tree
 *     confirms (joined leaves hold the reported identity);
 *   - after the records, save -> restore -> save gives the same bytes.
 *
 * Built with -DSPK_MLS_OBSERVER_GENERATE (target mls_observer_gen) the same file builds the
 * group, writes mls_observer_state.h and the seeds: mls_observer_gen <header> <corpus dir>.
 * SPK_FUZZ_VERBOSE=1 prints the result of each record (to check the seeds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_records.h"
#include "spk/error.h"
#include "spk/mls.h"
#include "spk/mls_observer.h"

#define MAX_RECORDS 8

#ifndef SPK_MLS_OBSERVER_GENERATE

#include "mls_observer_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "mls_observer oracle violated: %s\n", what);
        abort();
    }
}

static bool same(const spk_mls_buf_t *a, const spk_mls_buf_t *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

static void check_commit(const spk_mls_observer_t *o, const spk_mls_observed_t *r, uint64_t before)
{
    check(r->epoch == before + 1 && spk_mls_observer_epoch(o) == r->epoch, "new epoch");
    for (size_t i = 0; i < r->n_joined; i++) {
        const uint8_t *id;
        size_t n;
        check(spk_mls_observer_member_identity(o, r->joined[i].leaf, &id, &n) == 0 &&
                  n == r->joined[i].identity_len && memcmp(id, r->joined[i].identity, n) == 0,
              "joined member in the tree");
    }
    for (size_t i = 0; i < r->n_left; i++) {
        check(r->left[i].leaf < UINT32_MAX, "left leaf");
    }
}

static void process_one(spk_mls_observer_t *o, const uint8_t *p, size_t n)
{
    spk_mls_buf_t before, after;
    spk_mls_observed_t r;
    uint64_t epoch = spk_mls_observer_epoch(o);
    check(spk_mls_observer_save(o, &before) == 0, "save before");
    int rc = spk_mls_observer_process(o, p, n, 0, &r);
    if (getenv("SPK_FUZZ_VERBOSE") != NULL) {
        fprintf(stderr, "record of %zu bytes: %s, type %d\n", n, spk_err_name(rc), (int)r.type);
    }
    if (rc != 0) {
        check(r.type == 0 && r.n_joined == 0 && r.n_left == 0, "result filled on failure");
        check(spk_mls_observer_save(o, &after) == 0, "save after");
        check(same(&before, &after), "state changed by a failed process");
        spk_mls_buf_free(&after);
    } else if (r.type == SPK_MLS_EVENT_COMMIT) {
        check_commit(o, &r, epoch);
    } else {
        check(r.type == SPK_MLS_EVENT_PROPOSAL && spk_mls_observer_epoch(o) == epoch, "proposal");
    }
    spk_mls_buf_free(&before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spk_mls_observer_t *o = NULL;
    spk_mls_buf_t a, b;
    if (spk_mls_observer_restore(&o, observer_state, sizeof(observer_state)) != 0) {
        abort(); /* the embedded state must always restore */
    }
    size_t off = 0;
    const uint8_t *rec;
    size_t n;
    for (int i = 0; i < MAX_RECORDS && fuzz_next_record(data, size, &off, &rec, &n); i++) {
        process_one(o, rec, n);
    }
    check(spk_mls_observer_save(o, &a) == 0, "save");
    spk_mls_observer_t *r = NULL;
    check(spk_mls_observer_restore(&r, a.p, a.n) == 0, "restore of a saved state");
    check(spk_mls_observer_save(r, &b) == 0 && same(&a, &b), "save/restore round trip");
    spk_mls_buf_free(&a);
    spk_mls_buf_free(&b);
    spk_mls_observer_free(r);
    spk_mls_observer_free(o);
    return 0;
}

#else /* generator */

static const char *corpus_dir;

/* Writes one seed: the given messages as records. */
static void seed(const char *name, const spk_mls_buf_t *const *msgs, size_t n)
{
    fuzz_write_seed(corpus_dir, name, msgs, n);
}

#define N 4

static spk_mls_buf_t states[N]; /* the members' saved states in the fuzzed epoch */

static spk_mls_t *member(int i)
{
    spk_mls_t *g = NULL;
    fuzz_need(spk_mls_restore(&g, states[i].p, states[i].n), "restore");
    return g;
}

static void key_package(const char *name, spk_mls_buf_t *kp, spk_mls_buf_t *sec)
{
    fuzz_need(spk_mls_key_package_create((const uint8_t *)name, strlen(name), kp, sec), name);
}

/* The group, and the observer that followed it, into states[] and the header. */
static void build(const char *header)
{
    static const uint8_t gid[] = "fuzz-care-team";
    const char *names[N] = {"alice", "bob", "carol", "dave"};
    spk_mls_buf_t kp[N], sec[N], gi, c, w, obs;
    spk_mls_t *g[N];
    spk_mls_event_t ev;
    spk_mls_observer_t *o = NULL;
    for (int i = 0; i < N; i++) {
        key_package(names[i], &kp[i], &sec[i]);
    }
    fuzz_need(spk_mls_create(&g[0], gid, sizeof(gid), sec[0].p, sec[0].n), "create");
    fuzz_need(spk_mls_group_info(g[0], 0, &gi), "group info");
    fuzz_need(spk_mls_observer_create(&o, gi.p, gi.n, NULL, 0), "observer");
    const uint8_t *adds[N - 1] = {kp[1].p, kp[2].p, kp[3].p};
    size_t lens[N - 1] = {kp[1].n, kp[2].n, kp[3].n};
    spk_mls_commit_opts_t opts = {adds, lens, N - 1, NULL, 0, 0};
    fuzz_need(spk_mls_commit(g[0], &opts, &c, &w), "add");
    fuzz_need(spk_mls_observer_process(o, c.p, c.n, 0, NULL), "observe add");
    fuzz_need(spk_mls_commit_merge(g[0]), "merge");
    for (int i = 1; i < N; i++) {
        fuzz_need(spk_mls_join(&g[i], sec[i].p, sec[i].n, w.p, w.n, NULL, 0), "join");
    }
    spk_mls_buf_free(&c);
    spk_mls_buf_free(&w);
    for (int by = 1; by < 3; by++) { /* bob and carol fill in the parents */
        fuzz_need(spk_mls_commit(g[by], NULL, &c, NULL), "path");
        fuzz_need(spk_mls_observer_process(o, c.p, c.n, 0, NULL), "observe path");
        fuzz_need(spk_mls_commit_merge(g[by]), "merge path");
        for (int i = 0; i < N; i++) {
            if (i != by) {
                fuzz_need(spk_mls_process(g[i], c.p, c.n, &ev), "process path");
            }
        }
        spk_mls_buf_free(&c);
    }
    fuzz_need(spk_mls_observer_save(o, &obs), "save observer");
    FILE *f = fopen(header, "w");
    fuzz_need(f == NULL ? SPK_EIO : 0, header);
    fprintf(f, "/* Generated by mls_observer_gen (fuzz_mls_observer.c): the observer of a "
               "four-member group. */\n");
    fprintf(f, "static const uint8_t observer_state[%zu] = {", obs.n);
    for (size_t i = 0; i < obs.n; i++) {
        fprintf(f, "%s0x%02x,", i % 16 == 0 ? "\n    " : " ", obs.p[i]);
    }
    fprintf(f, "\n};\n");
    fclose(f);
    for (int i = 0; i < N; i++) {
        fuzz_need(spk_mls_save(g[i], &states[i]), "save member");
        spk_mls_free(g[i]);
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_observer_free(o);
    spk_mls_buf_free(&gi);
    spk_mls_buf_free(&obs);
}

/* A proposal by member `from` (made by fn), alone and followed by a Commit of member `by`. */
static void proposal_seeds(const char *name, int from, int by,
                           int (*fn)(spk_mls_t *, spk_mls_buf_t *))
{
    char n2[128];
    spk_mls_buf_t p, c;
    spk_mls_event_t ev;
    spk_mls_t *a = member(from);
    spk_mls_t *b = member(by);
    fuzz_need(fn(a, &p), name);
    const spk_mls_buf_t *one[1] = {&p};
    seed(name, one, 1);
    fuzz_need(spk_mls_process(b, p.p, p.n, &ev), "deliver proposal");
    fuzz_need(spk_mls_commit(b, NULL, &c, NULL), "commit by reference");
    const spk_mls_buf_t *two[2] = {&p, &c};
    snprintf(n2, sizeof(n2), "%s_then_commit", name);
    seed(n2, two, 2);
    spk_mls_buf_free(&p);
    spk_mls_buf_free(&c);
    spk_mls_free(a);
    spk_mls_free(b);
}

static int prop_update(spk_mls_t *g, spk_mls_buf_t *out)
{
    return spk_mls_propose_update(g, out);
}

static int prop_remove_carol(spk_mls_t *g, spk_mls_buf_t *out)
{
    return spk_mls_propose_remove(g, 2, out);
}

static int prop_add_erin(spk_mls_t *g, spk_mls_buf_t *out)
{
    spk_mls_buf_t kp, sec;
    key_package("erin", &kp, &sec);
    int rc = spk_mls_propose_add(g, kp.p, kp.n, out);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    return rc;
}

static int prop_leave(spk_mls_t *g, spk_mls_buf_t *out)
{
    return spk_mls_leave(g, out);
}

static void commit_seeds(void)
{
    spk_mls_buf_t c, c2, w, kp, sec, app;
    spk_mls_t *g = member(1);
    fuzz_need(spk_mls_commit(g, NULL, &c, NULL), "path only");
    const spk_mls_buf_t *one[1] = {&c};
    seed("commit_path", one, 1);
    fuzz_need(spk_mls_commit_merge(g), "merge");
    fuzz_need(spk_mls_commit(g, NULL, &c2, NULL), "next epoch");
    const spk_mls_buf_t *two[2] = {&c, &c2};
    seed("commit_next_epoch_alone", two + 1, 1);
    spk_mls_buf_free(&c2);
    spk_mls_free(g);
    /* the second Commit of the epoch is stale */
    g = member(3);
    fuzz_need(spk_mls_commit(g, NULL, &c2, NULL), "concurrent");
    seed("commit_twice_in_epoch", two, 2);
    spk_mls_buf_free(&c);
    spk_mls_buf_free(&c2);
    spk_mls_free(g);
    /* Adds and Removes */
    g = member(0);
    key_package("frank", &kp, &sec);
    const uint8_t *adds[1] = {kp.p};
    size_t lens[1] = {kp.n};
    uint32_t rm[2] = {1, 3};
    spk_mls_commit_opts_t o = {adds, lens, 1, rm, 2, 0};
    fuzz_need(spk_mls_commit(g, &o, &c, &w), "add and remove");
    seed("commit_add_remove", one, 1);
    spk_mls_buf_free(&c);
    spk_mls_buf_free(&w);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    spk_mls_commit_discard(g);
    /* refused: a PrivateMessage Commit, an application message */
    spk_mls_commit_opts_t priv = {NULL, NULL, 0, NULL, 0, SPK_MLS_COMMIT_PRIVATE};
    fuzz_need(spk_mls_commit(g, &priv, &c, NULL), "private");
    seed("commit_private", one, 1);
    spk_mls_buf_free(&c);
    fuzz_need(spk_mls_encrypt(g, (const uint8_t *)"hallo", 5, 0, &app), "app");
    const spk_mls_buf_t *a1[1] = {&app};
    seed("application", a1, 1);
    spk_mls_buf_free(&app);
    spk_mls_free(g);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <header> <corpus dir>\n", argv[0]);
        return 2;
    }
    corpus_dir = argv[2];
    build(argv[1]);
    proposal_seeds("proposal_update", 2, 0, prop_update);
    proposal_seeds("proposal_remove", 1, 0, prop_remove_carol);
    proposal_seeds("proposal_add", 3, 1, prop_add_erin);
    proposal_seeds("proposal_leave", 3, 2, prop_leave);
    commit_seeds();
    for (int i = 0; i < N; i++) {
        spk_mls_buf_free(&states[i]);
    }
    return 0;
}

#endif
