/* MLS micro-benchmark of the public C API (spk/mls.h); mls_bench_tsmls.mjs runs the same
 * scenarios with ts-mls and prints both with their ratio (docs/performance.md, "MLS").
 *
 *   app:         encrypt + decrypt of a 1 KiB application message in a two-member group;
 *   add N:       creating (alice) and processing (bob) a Commit that adds one member to a group
 *                of N members, for each N given;
 *   observer N:  the delivery service's observer (spk/mls_observer.h) processing that Commit,
 *                and saving / restoring the observer (what the service stores per group).
 *
 * Groups are built realistically rather than with blank parents: alice adds everyone in one
 * Commit (with an UpdatePath), then the members at leaves 2, 4, 8, ... (one in every subtree
 * that is a sibling of alice's direct path) join from the Welcome and commit an UpdatePath,
 * processed by every other live member. Afterwards alice's copath nodes are all non-blank
 * without unmerged leaves, as in a group whose members have updated their keys, so the
 * measured Commit encrypts about log2(N) path secrets. Each repetition restores alice and bob
 * from saved states (not timed), so every measured Commit starts from the same epoch.
 *
 * Times are CPU time of the process (CLOCK_PROCESS_CPUTIME_ID; the work is single-threaded), so
 * that other load on a shared machine does not inflate them; ts-mls is measured the same way
 * (process.cpuUsage).
 * Output: one line per figure, "RESULT <name> <median microseconds per operation>".
 * Usage: mls_bench [--reps R] [--app-iters I] [--blank] [sizes...]   (default 7 reps, 300
 *        iters, sizes 2 10 100 1000; --blank leaves out the UpdatePath commits of the build, so
 *        that the parents are blank except alice's direct path, for comparison) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "spk/error.h"
#include "spk/mls.h"
#include "spk/mls_observer.h"

static int reps = 7;
static int app_iters = 300;
static bool blank_parents = false; /* --blank: skip the UpdatePath commits of the build */

static void need(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "mls_bench: %s: %s\n", what, spk_err_name(rc));
        exit(1);
    }
}

static void key_package(int i, spk_mls_buf_t *kp, spk_mls_buf_t *sec)
{
    char name[32];
    snprintf(name, sizeof(name), "member-%d", i);
    need(spk_mls_key_package_create((const uint8_t *)name, strlen(name), kp, sec), "key package");
}

/* A live member for the group build. */
typedef struct {
    spk_mls_t *g;
    int leaf;
} live_t;

/* Sends commit from live[from] to every other live member. */
static void deliver(live_t *live, int n_live, int from, const spk_mls_buf_t *commit)
{
    spk_mls_event_t ev;
    for (int i = 0; i < n_live; i++) {
        if (i != from) {
            need(spk_mls_process(live[i].g, commit->p, commit->n, &ev), "process build commit");
        }
    }
}

/* Builds a group of n members; returns alice's and bob's saved states. */
static void build_group(int n, spk_mls_buf_t *alice_state, spk_mls_buf_t *bob_state)
{
    static const uint8_t gid[] = "bench-group";
    spk_mls_buf_t *kp = calloc((size_t)n, sizeof(*kp));
    spk_mls_buf_t *sec = calloc((size_t)n, sizeof(*sec));
    const uint8_t **adds = calloc((size_t)n, sizeof(*adds));
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    live_t live[40];
    int n_live = 0;
    spk_mls_buf_t commit, welcome;
    for (int i = 0; i < n; i++) {
        key_package(i, &kp[i], &sec[i]);
        adds[i] = kp[i].p;
        lens[i] = kp[i].n;
    }
    need(spk_mls_create(&live[0].g, gid, sizeof(gid), sec[0].p, sec[0].n), "create");
    live[n_live++].leaf = 0;
    spk_mls_commit_opts_t o = {adds + 1, lens + 1, (size_t)n - 1, NULL, 0, 0};
    need(spk_mls_commit(live[0].g, &o, &commit, &welcome), "bulk add");
    need(spk_mls_commit_merge(live[0].g), "merge");
    spk_mls_buf_free(&commit);
    /* bob (leaf 1) and the members at leaves 2, 4, 8, ... */
    for (int leaf = 1; leaf < n && (leaf == 1 || !blank_parents); leaf = leaf == 1 ? 2 : leaf * 2) {
        need(spk_mls_join(&live[n_live].g, sec[leaf].p, sec[leaf].n, welcome.p, welcome.n, NULL, 0),
             "join");
        live[n_live++].leaf = leaf;
    }
    spk_mls_buf_free(&welcome);
    for (int i = 2; i < n_live; i++) {
        need(spk_mls_commit(live[i].g, NULL, &commit, NULL), "path commit");
        need(spk_mls_commit_merge(live[i].g), "merge path");
        deliver(live, n_live, i, &commit);
        spk_mls_buf_free(&commit);
    }
    need(spk_mls_save(live[0].g, alice_state), "save alice");
    need(spk_mls_save(live[1].g, bob_state), "save bob");
    for (int i = 0; i < n_live; i++) {
        spk_mls_free(live[i].g);
    }
    for (int i = 0; i < n; i++) {
        spk_mls_buf_free(&kp[i]);
        spk_mls_buf_free(&sec[i]);
    }
    free(kp);
    free(sec);
    free(adds);
    free(lens);
}

/* The observer of alice's group, saved. */
static void observer_of(const spk_mls_buf_t *alice, spk_mls_buf_t *out)
{
    spk_mls_t *a = NULL;
    spk_mls_observer_t *o = NULL;
    spk_mls_buf_t gi;
    need(spk_mls_restore(&a, alice->p, alice->n), "restore alice");
    need(spk_mls_group_info(a, 0, &gi), "group info");
    need(spk_mls_observer_create(&o, gi.p, gi.n, NULL, 0), "observer");
    need(spk_mls_observer_save(o, out), "save observer");
    spk_mls_observer_free(o);
    spk_mls_buf_free(&gi);
    spk_mls_free(a);
}

/* Observer figures for one Commit: process, save, restore (medians into t[0..2]). */
static void bench_observer(const spk_mls_buf_t *obs, const spk_mls_buf_t *commit, double *t, int r)
{
    spk_mls_observer_t *o = NULL;
    spk_mls_buf_t saved;
    double t0 = bench_cpu_us();
    need(spk_mls_observer_restore(&o, obs->p, obs->n), "restore observer");
    t[2 * reps + r] = bench_cpu_us() - t0;
    t0 = bench_cpu_us();
    need(spk_mls_observer_process(o, commit->p, commit->n, 0, NULL), "observer process");
    t[r] = bench_cpu_us() - t0;
    t0 = bench_cpu_us();
    need(spk_mls_observer_save(o, &saved), "save observer");
    t[reps + r] = bench_cpu_us() - t0;
    spk_mls_buf_free(&saved);
    spk_mls_observer_free(o);
}

static void bench_add(int n)
{
    spk_mls_buf_t as, bs, kp, sec, obs;
    double *create = calloc((size_t)reps, sizeof(double));
    double *process = calloc((size_t)reps, sizeof(double));
    double *observe = calloc(3 * (size_t)reps, sizeof(double));
    double t0 = bench_cpu_us();
    build_group(n, &as, &bs);
    fprintf(stderr, "mls_bench: group of %d built in %.1f s\n", n, (bench_cpu_us() - t0) / 1e6);
    key_package(n, &kp, &sec);
    observer_of(&as, &obs);
    for (int r = 0; r < reps; r++) {
        spk_mls_t *a = NULL;
        spk_mls_t *b = NULL;
        spk_mls_buf_t commit, welcome;
        spk_mls_event_t ev;
        need(spk_mls_restore(&a, as.p, as.n), "restore alice");
        need(spk_mls_restore(&b, bs.p, bs.n), "restore bob");
        const uint8_t *adds[1] = {kp.p};
        size_t lens[1] = {kp.n};
        spk_mls_commit_opts_t o = {adds, lens, 1, NULL, 0, 0};
        double t = bench_cpu_us();
        need(spk_mls_commit(a, &o, &commit, &welcome), "commit");
        need(spk_mls_commit_merge(a), "merge");
        create[r] = bench_cpu_us() - t;
        t = bench_cpu_us();
        need(spk_mls_process(b, commit.p, commit.n, &ev), "process");
        process[r] = bench_cpu_us() - t;
        bench_observer(&obs, &commit, observe, r);
        spk_mls_buf_free(&commit);
        spk_mls_buf_free(&welcome);
        spk_mls_free(a);
        spk_mls_free(b);
    }
    printf("RESULT add_create_%d %.1f\n", n, bench_median(create, reps));
    printf("RESULT add_process_%d %.1f\n", n, bench_median(process, reps));
    printf("RESULT observer_commit_%d %.1f\n", n, bench_median(observe, reps));
    printf("RESULT observer_save_%d %.1f\n", n, bench_median(observe + reps, reps));
    printf("RESULT observer_restore_%d %.1f\n", n, bench_median(observe + 2 * reps, reps));
    printf("RESULT observer_state_bytes_%d %zu\n", n, obs.n);
    fflush(stdout);
    spk_mls_buf_free(&as);
    spk_mls_buf_free(&bs);
    spk_mls_buf_free(&kp);
    spk_mls_buf_free(&sec);
    spk_mls_buf_free(&obs);
    free(create);
    free(process);
    free(observe);
}

static void bench_app(void)
{
    spk_mls_buf_t as, bs;
    uint8_t pt[1024];
    double *v = calloc((size_t)reps, sizeof(double));
    memset(pt, 'x', sizeof(pt));
    build_group(2, &as, &bs);
    spk_mls_t *a = NULL;
    spk_mls_t *b = NULL;
    need(spk_mls_restore(&a, as.p, as.n), "restore alice");
    need(spk_mls_restore(&b, bs.p, bs.n), "restore bob");
    for (int r = 0; r < reps; r++) {
        double t = bench_cpu_us();
        for (int i = 0; i < app_iters; i++) {
            spk_mls_buf_t m;
            spk_mls_event_t ev;
            need(spk_mls_encrypt(a, pt, sizeof(pt), 0, &m), "encrypt");
            need(spk_mls_process(b, m.p, m.n, &ev), "decrypt");
            if (ev.data.n != sizeof(pt)) {
                need(SPK_EVERIFY, "plaintext");
            }
            spk_mls_buf_free(&ev.data);
            spk_mls_buf_free(&m);
        }
        v[r] = (bench_cpu_us() - t) / app_iters;
    }
    printf("RESULT app_1k %.1f\n", bench_median(v, reps));
    fflush(stdout);
    spk_mls_free(a);
    spk_mls_free(b);
    spk_mls_buf_free(&as);
    spk_mls_buf_free(&bs);
    free(v);
}

int main(int argc, char **argv)
{
    int sizes[16];
    int n_sizes = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--blank") == 0) {
            blank_parents = true;
        } else if (strcmp(argv[i], "--app-iters") == 0 && i + 1 < argc) {
            app_iters = atoi(argv[++i]);
        } else if (n_sizes < 16 && atoi(argv[i]) >= 2) {
            sizes[n_sizes++] = atoi(argv[i]);
        }
    }
    if (reps < 1 || app_iters < 1) {
        return 2;
    }
    if (n_sizes == 0) {
        static const int def[] = {2, 10, 100, 1000};
        memcpy(sizes, def, sizeof(def));
        n_sizes = 4;
    }
    bench_app();
    for (int i = 0; i < n_sizes; i++) {
        bench_add(sizes[i]);
    }
    return 0;
}
