/* chat_core_bench: what one application message costs the delivery service inside spreekd's
 * core, without sockets or the transport (scripts/bench.sh section chat; docs/performance.md).
 *
 * N care_team conversations of 5 devices (the GP, an assistant and three partners; five signed-in
 * connections per conversation that follow it live) are built through the protocol with real MLS
 * (spk_mls: KeyPackages, the group, one Commit adding four devices with its Welcome). Then
 * messages encrypted beforehand by the GP's member go to spk_sig_conn_message as chat.send, round
 * robin over the conversations. The store is what spreekd runs: SQLite in WAL mode in a data
 * directory, the sync thread flushing in groups; the durability it reports is passed to the core
 * (spk_sig_durable) between messages as spreekd's loop does. Every answer and delivery is
 * serialised by the core and handed to the io callback, which counts it.
 *
 * Modes, measured alternately in each of R rounds on the same conversations (medians; the first
 * is the baseline of the ratios): "1" = every chat.send its own transaction (group commit off,
 * as before spk_sig_batch_chat), "B" > 1 = group commit on with spk_sig_flush after every B
 * messages, as spreekd's loop does after each turn in which it read B messages.
 *
 * Prints one JSON object: per mode messages per second of this loop and CPU per message of the
 * thread (CLOCK_THREAD_CPUTIME_ID) and of the process (with the sync thread). Under callgrind the
 * instrumentation is on only while messages are sent:
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=send_all chat_core_bench ...
 * usage: chat_core_bench [--conversations N] [--messages M per mode and round] [--rounds R]
 *                        [--batches 1,16,64] [--dir PARENT] */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/mls.h"
#include "spk/signaling.h"
#include "spk/util.h"

#define DEVS 5
#define ISSUER "bench-issuer"

static spk_sig_t *g_sig;
static spk_store_t *g_store;
static spk_signer_t g_issuer;
static atomic_bool g_flushed;
static uint64_t g_out_msgs, g_out_bytes;
static char g_answer[1 << 16];
static bool g_answered;
static bool g_watch = true; /* keep answers (set-up); off while measuring */

static void die(const char *what)
{
    fprintf(stderr, "chat_core_bench: %s\n", what);
    exit(1);
}

static int send_cb(void *ud, uint64_t conn, const char *msg, size_t len)
{
    (void)ud;
    (void)conn;
    g_out_msgs++;
    g_out_bytes += len;
    if (g_watch && len < sizeof(g_answer) && memmem(msg, len, "\"re\":", 5) != NULL) {
        memcpy(g_answer, msg, len);
        g_answer[len] = '\0';
        g_answered = true;
    }
    return 0;
}

static void close_cb(void *ud, uint64_t conn, int code, const char *reason)
{
    (void)ud;
    fprintf(stderr, "chat_core_bench: connection %llu closed (%d %s)\n", (unsigned long long)conn,
            code, reason);
    exit(1);
}

static void durable_cb(void *ud, bool failed)
{
    (void)ud;
    if (failed) {
        die("the store could not flush");
    }
    atomic_store(&g_flushed, true);
}

/* Passes new durability to the core (spreekd's loop does it on the sync thread's wake-up). */
static void pump(void)
{
    if (atomic_exchange(&g_flushed, false)) {
        spk_sig_durable(g_sig, false);
    }
}

/* Sends a request and waits (pumping durability) for its answer; true when "ok". */
static bool req(uint64_t conn, json_t *m)
{
    char *txt = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    g_answered = false;
    spk_sig_conn_message(g_sig, conn, txt, strlen(txt), 0);
    free(txt);
    for (int i = 0; !g_answered && i < 100000; i++) {
        usleep(100);
        pump();
    }
    return g_answered && strstr(g_answer, "\"type\":\"ok\"") != NULL;
}

static char *b64(const uint8_t *p, size_t n)
{
    char *s = malloc(spk_b64url_encoded_len(n) + 1);
    if (s == NULL) {
        die("memory");
    }
    spk_b64url_encode(s, p, n);
    return s;
}

static const char *sub_of(int c, int i, char *buf, size_t cap)
{
    static const char *const kinds[DEVS] = {"gp", "da", "apo", "wijk", "fysio"};
    snprintf(buf, cap, "%s-%d", kinds[i], c);
    return buf;
}

static void sign_in(uint64_t conn, int c, int i)
{
    spk_token_claims_t t;
    memset(&t, 0, sizeof(t));
    sub_of(c, i, t.sub, sizeof(t.sub));
    snprintf(t.name, sizeof(t.name), "Bench %.60s", t.sub);
    snprintf(t.practice, sizeof(t.practice), "%s", i < 2 ? "praktijk-bench" : "partner-bench");
    if (i == 1) {
        sub_of(c, 0, t.acts_for, sizeof(t.acts_for));
    }
    snprintf(t.jti, sizeof(t.jti), "j-%.60s", t.sub);
    snprintf(t.aud, sizeof(t.aud), "spreekkamer");
    t.role = i == 0 ? SPK_ROLE_GP : i == 1 ? SPK_ROLE_ASSISTANT : SPK_ROLE_PARTNER;
    t.iat = t.nbf = spk_now_s() - 10;
    t.exp = spk_now_s() + 6 * 3600;
    char tok[SPK_TOKEN_MAX_LEN];
    if (spk_token_sign(&g_issuer, &t, tok, sizeof(tok)) < 0) {
        die("token");
    }
    spk_sig_conn_open(g_sig, conn, "127.0.0.1", 0);
    if (!req(conn, json_pack("{s:s, s:s}", "type", "auth", "token", tok)) ||
        !req(conn, json_pack("{s:s, s:s}", "type", "chat.device", "device", "d")) ||
        !req(conn, json_pack("{s:s}", "type", "chat.sync"))) {
        die("sign-in");
    }
}

/* Conversation c on connections base..base+4; the GP's member is returned. */
static spk_mls_t *build(int c, uint64_t base, char *conv, size_t cap)
{
    char sub[64], id[256];
    for (int i = 0; i < DEVS; i++) {
        sign_in(base + (uint64_t)i, c, i);
    }
    char patient[32];
    snprintf(patient, sizeof(patient), "p-%d", c);
    if (!req(base, json_pack("{s:s, s:s, s:s}", "type", "chat.create", "kind", "care_team",
                             "patient", patient))) {
        die("chat.create");
    }
    json_t *a = json_loads(g_answer, 0, NULL);
    snprintf(conv, cap, "%s",
             json_string_value(json_object_get(json_object_get(a, "conversation"), "id")));
    json_decref(a);
    spk_mls_buf_t kps[DEVS], secrets[DEVS];
    for (int i = 0; i < DEVS; i++) {
        int n = snprintf(id, sizeof(id), "spk1\n" ISSUER "\n%s\nd", sub_of(c, i, sub, sizeof(sub)));
        if (spk_mls_key_package_create((const uint8_t *)id, (size_t)n, &kps[i], &secrets[i]) != 0) {
            die("key package");
        }
        if (i == 0) {
            continue;
        }
        char *k = b64(kps[i].p, kps[i].n);
        bool ok = req(base, json_pack("{s:s, s:s, s:{s:s}, s:s}", "type", "chat.members.add",
                                      "conversation", conv, "user", "sub", sub, "role",
                                      i == 1 ? "assistant" : "partner")) &&
                  req(base + (uint64_t)i, json_pack("{s:s, s:[s]}", "type",
                                                    "mls.key_packages.upload", "key_packages", k));
        free(k);
        if (!ok) {
            die("members and KeyPackages");
        }
    }
    spk_mls_t *g = NULL;
    spk_mls_buf_t gi = {0}, commit = {0}, welcome = {0};
    if (spk_mls_create(&g, (const uint8_t *)conv, strlen(conv), secrets[0].p, secrets[0].n) != 0 ||
        spk_mls_group_info(g, 0, &gi) != 0) {
        die("group");
    }
    char *gis = b64(gi.p, gi.n);
    if (!req(base, json_pack("{s:s, s:s, s:s}", "type", "mls.group.create", "conversation", conv,
                             "group_info", gis))) {
        die("mls.group.create");
    }
    free(gis);
    const uint8_t *add[DEVS - 1];
    size_t add_len[DEVS - 1];
    for (int i = 1; i < DEVS; i++) {
        if (!req(base,
                 json_pack("{s:s, s:s, s:{s:s}}", "type", "mls.key_packages.claim", "conversation",
                           conv, "user", "sub", sub_of(c, i, sub, sizeof(sub))))) {
            die("claim");
        }
        add[i - 1] = kps[i].p;
        add_len[i - 1] = kps[i].n;
    }
    spk_mls_commit_opts_t o = {.add = add, .add_len = add_len, .n_add = DEVS - 1};
    if (spk_mls_commit(g, &o, &commit, &welcome) != 0) {
        die("commit");
    }
    char *cs = b64(commit.p, commit.n), *ws = b64(welcome.p, welcome.n);
    if (!req(base, json_pack("{s:s, s:s, s:s, s:s}", "type", "mls.commit", "conversation", conv,
                             "commit", cs, "welcome", ws)) ||
        spk_mls_commit_merge(g) != 0) {
        die("mls.commit");
    }
    free(cs);
    free(ws);
    for (int i = 0; i < DEVS; i++) {
        spk_mls_buf_free(&kps[i]);
        spk_mls_buf_free(&secrets[i]);
    }
    spk_mls_buf_free(&gi);
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
    return g;
}

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The measured part (callgrind --toggle-collect=send_all): messages [k0, k0 + m) of every
 * conversation; with batch > 1 the core writes after every batch messages. */
__attribute__((noinline)) void send_all(char ***msgs, int convs, int k0, int m, int batch);
__attribute__((noinline)) void send_all(char ***msgs, int convs, int k0, int m, int batch)
{
    int since = 0;
    for (int k = k0; k < k0 + m; k++) {
        for (int c = 0; c < convs; c++) {
            spk_sig_conn_message(g_sig, (uint64_t)c * DEVS + 1, msgs[c][k], strlen(msgs[c][k]), 0);
            if (batch > 1 && ++since == batch) {
                spk_sig_flush(g_sig);
                since = 0;
            }
            pump();
        }
    }
    spk_sig_flush(g_sig);
}

#define MAX_MODES 8
#define MAX_ROUNDS 15

typedef struct {
    double rate[MAX_ROUNDS], thread_us[MAX_ROUNDS], process_us[MAX_ROUNDS];
} mode_t_;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[MAX_ROUNDS];
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* Waits until everything held went out (on disk) and checks that every message produced an
 * answer and four deliveries. */
static void settle(uint64_t out0, double n)
{
    for (int i = 0; i < 2000 && spk_store_durable(g_store) < spk_store_last_ticket(g_store); i++) {
        usleep(1000);
    }
    usleep(2000);
    pump();
    if (g_out_msgs - out0 < (uint64_t)(n * DEVS)) {
        fprintf(stderr, "chat_core_bench: %llu messages out for %.0f sent (want %d each)\n",
                (unsigned long long)(g_out_msgs - out0), n, DEVS);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int convs = 1000, m = 10, rounds = 3, batches[MAX_MODES] = {1, 16, 64}, n_modes = 3;
    const char *parent = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--conversations") == 0) {
            convs = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--messages") == 0) {
            m = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--batches") == 0) {
            n_modes = 0;
            for (char *p = argv[i + 1]; *p != '\0' && n_modes < MAX_MODES;) {
                batches[n_modes++] = (int)strtol(p, &p, 10);
                p += *p == ',';
            }
        } else if (strcmp(argv[i], "--dir") == 0) {
            parent = argv[i + 1];
        } else {
            die("usage: chat_core_bench [--conversations N] [--messages M] [--rounds R] "
                "[--batches 1,16,64] [--dir PARENT]");
        }
    }
    if (convs < 1 || m < 1 || rounds < 1 || rounds > MAX_ROUNDS || n_modes < 1) {
        die("bad arguments");
    }
    for (int i = 0; i < n_modes; i++) {
        if (batches[i] < 1) {
            die("bad --batches");
        }
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/chat-core-bench-XXXXXX", parent);
    spk_log_set_level(SPK_LOG_WARN);
    if (mkdtemp(dir) == NULL || spk_store_open(&g_store, dir) != 0) {
        die("store");
    }
    spk_store_sync_opts_t so = {.durable_cb = durable_cb};
    if (spk_store_sync_start(g_store, &so) != 0) {
        die("sync thread");
    }
    static const uint8_t seed[32] = {3};
    spk_signer_from_seed(&g_issuer, seed, ISSUER);
    spk_keyring_t *kr = NULL;
    spk_keyring_new(&kr);
    spk_keyring_add(kr, g_issuer.iss, g_issuer.kid, g_issuer.pub);
    spk_config_t cfg;
    spk_config_defaults(&cfg);
    cfg.rate_per_s = 1e9;
    cfg.rate_burst = 1e9;
    cfg.chat_turn_budget_ms = 0; /* no back-pressure: every message is measured */
    spk_config_finish(&cfg);
    spk_sig_io_t io = {.send_cb = send_cb, .close_cb = close_cb};
    if (spk_sig_new(&g_sig, &cfg, g_store, kr, &g_issuer, &io) != 0) {
        die("core");
    }
    char ***msgs = calloc((size_t)convs, sizeof(*msgs));
    int total = m * n_modes * rounds;
    static const uint8_t text[100] = "Bloeddruk 142/91 gemeten om 08:00, graag uw advies";
    for (int c = 0; c < convs; c++) {
        char conv[64];
        spk_mls_t *g = build(c, (uint64_t)c * DEVS + 1, conv, sizeof(conv));
        msgs[c] = calloc((size_t)total, sizeof(char *));
        for (int k = 0; k < total; k++) {
            spk_mls_buf_t ct = {0};
            if (spk_mls_encrypt(g, text, sizeof(text), 0, &ct) != 0) {
                die("encrypt");
            }
            char *e = b64(ct.p, ct.n);
            size_t cap = strlen(e) + 128;
            msgs[c][k] = malloc(cap);
            snprintf(
                msgs[c][k], cap,
                "{\"id\":%d,\"type\":\"chat.send\",\"conversation\":\"%s\",\"message\":\"%s\"}",
                k + 100, conv, e);
            free(e);
            spk_mls_buf_free(&ct);
        }
        spk_mls_free(g);
    }
    fprintf(stderr, "chat_core_bench: %d conversations of %d devices built\n", convs, DEVS);
    g_watch = false;
    static mode_t_ res[MAX_MODES];
    double n = (double)convs * m;
    uint64_t out_all = 0, bytes_all = 0;
    int k0 = 0;
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < n_modes; i++) {
            int mode = (i + round) % n_modes; /* a different order in each round */
            spk_sig_batch_chat(g_sig, batches[mode] > 1);
            uint64_t out0 = g_out_msgs, bytes0 = g_out_bytes;
            double w0 = now_s(CLOCK_MONOTONIC), t0 = now_s(CLOCK_THREAD_CPUTIME_ID),
                   p0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
            send_all(msgs, convs, k0, m, batches[mode]);
            double w1 = now_s(CLOCK_MONOTONIC), t1 = now_s(CLOCK_THREAD_CPUTIME_ID),
                   p1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
            k0 += m;
            settle(out0, n);
            out_all += g_out_msgs - out0;
            bytes_all += g_out_bytes - bytes0;
            res[mode].rate[round] = n / (w1 - w0);
            res[mode].thread_us[round] = (t1 - t0) * 1e6 / n;
            res[mode].process_us[round] = (p1 - p0) * 1e6 / n;
            fprintf(stderr,
                    "chat_core_bench: round %d batch %d: %.0f messages/s, %.2f us/message "
                    "(thread), %.2f (process)\n",
                    round + 1, batches[mode], res[mode].rate[round], res[mode].thread_us[round],
                    res[mode].process_us[round]);
        }
    }
    printf("{\"conversations\":%d,\"devices\":%d,\"messages_per_mode_and_round\":%.0f,"
           "\"rounds\":%d,\"out_per_message\":%.2f,\"out_bytes_per_message\":%.0f,\"modes\":[",
           convs, DEVS, n, rounds, (double)out_all / (n * n_modes * rounds),
           (double)bytes_all / (n * n_modes * rounds));
    double base = median(res[0].thread_us, rounds);
    for (int i = 0; i < n_modes; i++) {
        double tu = median(res[i].thread_us, rounds);
        printf("%s{\"batch\":%d,\"messages_per_s\":%.0f,\"thread_cpu_us_per_message\":%.2f,"
               "\"process_cpu_us_per_message\":%.2f,\"thread_cpu_vs_first\":%.2f}",
               i ? "," : "", batches[i], median(res[i].rate, rounds), tu,
               median(res[i].process_us, rounds), tu / base);
    }
    printf("]}\n");
    for (int c = 0; c < convs; c++) {
        for (int k = 0; k < total; k++) {
            free(msgs[c][k]);
        }
        free(msgs[c]);
    }
    free(msgs);
    spk_sig_free(g_sig);
    spk_store_close(g_store);
    spk_keyring_free(kr);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
