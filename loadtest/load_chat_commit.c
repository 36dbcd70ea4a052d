/* spreekload --chat --commit-sizes N,...: Commit handling by the delivery service at group sizes.
 *
 * For each size N: a care_team conversation whose group has N devices — the GP's device (the
 * committer, a full member) and N-1 partner devices, each its own connection that follows the
 * conversation live and acknowledges but does not process (they only take up leaves; the
 * service still fans every Commit out to them) — built through the protocol: members added,
 * KeyPackages claimed, Adds committed 64 at a time. Then, one after the other, --commits
 * Commits of each kind: an UpdatePath alone, adding one device, and removing it again. Per kind:
 * the round trip mls.commit -> ok at the committer (median, p99) and the CPU time of spreekd's
 * control thread per Commit (/proc/<pid>/task/<pid>/schedstat). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load_chat_int.h"
#include "spk/util.h"

#define JOIN_PER_COMMIT 64

typedef struct {
    bool done;
    char code[64];
    json_t *m;
} wait_t;

static size_t cc_ready, cc_synced, cc_lost;

static void wait_cb(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)d;
    wait_t *w = ud;
    w->done = true;
    snprintf(w->code, sizeof(w->code), "%s", code != NULL ? code : "");
    w->m = m != NULL ? json_incref(m) : NULL;
}

static bool wait_for(lc_t *L, wait_t *w, double ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)(ms * 1e6);
    while (!w->done && spk_mono_ns() < end) {
        uv_run(&L->loop, UV_RUN_ONCE);
    }
    return w->done && w->code[0] == '\0';
}

/* A request from d and its answer (held in *w until wait_free). */
static bool call(lc_t *L, cdev_t *d, json_t *req, wait_t *w)
{
    memset(w, 0, sizeof(*w));
    cdev_request(d, req, wait_cb, w);
    bool ok = wait_for(L, w, 60000);
    if (!ok) {
        lc_error(L, "%s: %s %s", json_string_value(json_object_get(req, "type")), w->code,
                 cdev_str(w->m, "message"));
    }
    return ok;
}

static void wait_free(wait_t *w)
{
    json_decref(w->m);
    w->m = NULL;
}

static void sync_cb(cdev_t *d, void *ud, const char *code, json_t *m)
{
    (void)d;
    (void)ud;
    (void)m;
    cc_synced += code == NULL;
}

static void on_ready(cdev_t *d)
{
    cc_ready++;
    cdev_sync(d, NULL, sync_cb, NULL);
}

static void on_end(cdev_t *d, const char *why)
{
    lc_t *L = d->env->data;
    cc_lost++;
    lc_error(L, "device %s: connection ended: %s", d->device, why);
}

static void on_error(cdev_t *d, const char *what)
{
    lc_t *L = d->env->data;
    if (!d->passive) {
        lc_error(L, "device %s: %s", d->device, what);
    }
}

static const cdev_cbs_t cc_cbs = {.ready_cb = on_ready, .end_cb = on_end, .error_cb = on_error};

/* Connects devices [0, n) a few at a time and waits until each follows its conversations. */
static bool connect_all(lc_t *L, cdev_t **devs, size_t n)
{
    cc_ready = cc_synced = cc_lost = 0;
    size_t next = 0;
    uint64_t end = spk_mono_ns() + (uint64_t)(L->setup_timeout_s * 1e9);
    while (cc_synced + cc_lost < n && spk_mono_ns() < end) {
        while (next < n && next - cc_ready < (size_t)L->max_connecting) {
            if (cdev_connect(devs[next++]) != 0) {
                cc_lost++;
            }
        }
        uv_run(&L->loop, UV_RUN_ONCE);
    }
    return cc_synced == n;
}

static cdev_t *device(lc_t *L, const char *sub, const char *role, const char *name, int upload)
{
    char tok[SPK_TOKEN_MAX_LEN + 1];
    if (lc_token(L, sub, name, role, "praktijk-commit", NULL, tok, sizeof(tok)) != 0) {
        return NULL;
    }
    return cdev_new(&L->env, tok, NULL, NULL, "pc", upload);
}

typedef struct {
    uint64_t *rtt_us;
    size_t n;
    double cpu_s;
    size_t commit_bytes, welcome_bytes; /* of the last one */
} kind_t;

static json_t *kind_json(kind_t *k)
{
    qsort(k->rtt_us, k->n, sizeof(uint64_t), spk_bench_cmp_u64);
    return json_pack("{s:I, s:I, s:I, s:f, s:f, s:f}", "commits", (json_int_t)k->n, "commit_bytes",
                     (json_int_t)k->commit_bytes, "welcome_bytes", (json_int_t)k->welcome_bytes,
                     "rtt_p50_ms", (double)spk_bench_percentile(k->rtt_us, k->n, 0.5) / 1000.0,
                     "rtt_p99_ms", (double)spk_bench_percentile(k->rtt_us, k->n, 0.99) / 1000.0,
                     "control_thread_ms_per_commit",
                     k->n > 0 && k->cpu_s >= 0 ? k->cpu_s * 1000.0 / (double)k->n : -1.0);
}

/* One Commit by the GP's device; its round trip into k. */
static bool commit_one(lc_t *L, cdev_t *gp, const char *conv, const cdev_commit_opts_t *o,
                       kind_t *k)
{
    wait_t w;
    memset(&w, 0, sizeof(w));
    uint64_t t0 = uv_hrtime();
    cdev_commit(gp, conv, o, wait_cb, &w);
    bool ok = wait_for(L, &w, 60000);
    if (ok) {
        k->rtt_us[k->n++] = (uv_hrtime() - t0) / 1000;
        k->commit_bytes = cdev_last_commit_bytes;
        k->welcome_bytes = cdev_last_welcome_bytes;
    } else {
        lc_error(L, "mls.commit: %s %s", w.code, cdev_str(w.m, "message"));
    }
    wait_free(&w);
    return ok;
}

/* Builds the group of n devices; returns the conversation id in conv. */
static bool build(lc_t *L, int size, cdev_t *gp, cdev_t **members, size_t n, char *conv)
{
    wait_t w;
    char patient[48];
    snprintf(patient, sizeof(patient), "pseudo-commit-%d", size);
    if (!call(L, gp,
              json_pack("{s:s, s:s, s:s}", "type", "chat.create", "kind", "care_team", "patient",
                        patient),
              &w)) {
        return false;
    }
    snprintf(conv, CDEV_ID_LEN, "%s", cdev_str(json_object_get(w.m, "conversation"), "id"));
    wait_free(&w);
    for (size_t i = 0; i < n; i++) {
        if (!call(L, gp,
                  json_pack("{s:s, s:s, s:{s:s}, s:s}", "type", "chat.members.add", "conversation",
                            conv, "user", "sub", members[i]->sub, "role", "partner"),
                  &w)) {
            return false;
        }
        wait_free(&w);
    }
    memset(&w, 0, sizeof(w));
    cdev_group_create(gp, conv, wait_cb, &w);
    bool ok = wait_for(L, &w, 60000);
    wait_free(&w);
    kind_t none = {.rtt_us = calloc(1 + n / JOIN_PER_COMMIT + 1, sizeof(uint64_t))};
    for (size_t i = 0; ok && i < n; i += JOIN_PER_COMMIT) {
        size_t m = n - i < JOIN_PER_COMMIT ? n - i : JOIN_PER_COMMIT;
        uint8_t *kps[JOIN_PER_COMMIT];
        size_t lens[JOIN_PER_COMMIT], got = 0;
        for (size_t j = 0; ok && j < m; j++) {
            ok = call(L, gp,
                      json_pack("{s:s, s:s, s:{s:s}}", "type", "mls.key_packages.claim",
                                "conversation", conv, "user", "sub", members[i + j]->sub),
                      &w);
            json_t *kp = json_array_get(json_object_get(w.m, "key_packages"), 0);
            kps[got] = ok ? cdev_unb64(cdev_str(kp, "key_package"), &lens[got]) : NULL;
            got += kps[got] != NULL;
            wait_free(&w);
        }
        cdev_commit_opts_t o = {
            .add = (const uint8_t *const *)kps, .add_len = lens, .n_add = got, .retries = 3};
        ok = ok && commit_one(L, gp, conv, &o, &none);
        for (size_t j = 0; j < got; j++) {
            free(kps[j]);
        }
    }
    free(none.rtt_us);
    return ok;
}

static json_t *one_size(lc_t *L, int size)
{
    size_t n = (size_t)(size - 1);
    int per_kind = L->commits;
    cdev_t **devs = calloc(n + 2, sizeof(*devs));
    json_t *o = json_pack("{s:i}", "group_size", size);
    uint64_t t0 = spk_mono_ns();
    char sub[64];
    bool ok = devs != NULL;
    for (size_t i = 0; ok && i < n + 2; i++) {
        if (i == 0) {
            snprintf(sub, sizeof(sub), "gp-commit-%d", size);
            devs[i] = device(L, sub, "gp", "Dr. Commit", 2);
        } else {
            snprintf(sub, sizeof(sub), "partner-commit-%d-%zu", size, i);
            devs[i] = device(L, sub, "partner", sub, i == n + 1 ? per_kind + 2 : 1);
        }
        ok = devs[i] != NULL;
        if (ok && i > 0) {
            devs[i]->passive = true;
        }
    }
    /* the last device is the one added and removed again; the others are the group */
    char conv[CDEV_ID_LEN] = "";
    ok = ok && connect_all(L, devs, n + 2);
    ok = ok && build(L, size, devs[0], devs + 1, n, conv);
    json_object_set_new(o, "setup_s", json_real((double)(spk_mono_ns() - t0) / 1e9));
    fprintf(stderr, "spreekload: group of %d devices %s in %.1f s\n", size,
            ok ? "built" : "NOT built", (double)(spk_mono_ns() - t0) / 1e9);
    cdev_t *spare = devs != NULL ? devs[n + 1] : NULL;
    wait_t w;
    ok = ok && call(L, devs[0],
                    json_pack("{s:s, s:s, s:{s:s}, s:s}", "type", "chat.members.add",
                              "conversation", conv, "user", "sub", spare->sub, "role", "partner"),
                    &w);
    wait_free(&w);
    lc_run_until(L, NULL, 300);
    kind_t update = {.rtt_us = calloc((size_t)per_kind, 8)};
    kind_t add = {.rtt_us = calloc((size_t)per_kind, 8)},
           rm = {.rtt_us = calloc((size_t)per_kind, 8)};
    double c0 = lc_control_cpu_s(L->pid);
    for (int i = 0; ok && i < per_kind; i++) {
        ok = commit_one(L, devs[0], conv, &(cdev_commit_opts_t){.retries = 0}, &update);
    }
    update.cpu_s = lc_control_cpu_s(L->pid) - c0;
    for (int i = 0; ok && i < per_kind; i++) {
        /* add the spare device ... */
        ok = call(L, devs[0],
                  json_pack("{s:s, s:s, s:{s:s}}", "type", "mls.key_packages.claim", "conversation",
                            conv, "user", "sub", spare->sub),
                  &w);
        size_t kn = 0;
        uint8_t *kp =
            ok ? cdev_unb64(cdev_str(json_array_get(json_object_get(w.m, "key_packages"), 0),
                                     "key_package"),
                            &kn)
               : NULL;
        wait_free(&w);
        double c1 = lc_control_cpu_s(L->pid);
        const uint8_t *kpp = kp;
        ok = kp != NULL &&
             commit_one(L, devs[0], conv,
                        &(cdev_commit_opts_t){.add = &kpp, .add_len = &kn, .n_add = 1}, &add);
        free(kp);
        double c2 = lc_control_cpu_s(L->pid);
        /* ... and remove it again */
        uint32_t leaf[1];
        ok = ok && cdev_leaves_of(devs[0], conv, spare->sub, leaf, 1) == 1;
        ok = ok && commit_one(L, devs[0], conv,
                              &(cdev_commit_opts_t){.remove = leaf, .n_remove = 1}, &rm);
        add.cpu_s += c2 - c1;
        rm.cpu_s += lc_control_cpu_s(L->pid) - c2;
    }
    json_object_set_new(o, "update", kind_json(&update));
    json_object_set_new(o, "add_one", kind_json(&add));
    json_object_set_new(o, "remove_one", kind_json(&rm));
    json_object_set_new(o, "ok", json_boolean(ok));
    free(update.rtt_us);
    free(add.rtt_us);
    free(rm.rtt_us);
    for (size_t i = 0; devs != NULL && i < n + 2; i++) {
        cdev_free(devs[i]);
    }
    free(devs);
    lc_run_until(L, NULL, 200);
    return o;
}

int lc_run_commits(lc_t *L, json_t *out)
{
    L->env.cbs = &cc_cbs;
    json_t *sizes = json_array();
    int rc = 0;
    for (int i = 0; i < L->n_commit_sizes; i++) {
        json_t *o = one_size(L, L->commit_sizes[i]);
        rc |= json_is_true(json_object_get(o, "ok")) ? 0 : 1;
        json_array_append_new(sizes, o);
    }
    json_object_set_new(out, "commit_sizes", sizes);
    json_object_set_new(out, "spreekd_pid", json_integer(L->pid));
    return rc;
}
