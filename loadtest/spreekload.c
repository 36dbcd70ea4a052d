/* spreekload: N consults x K participants through spreekd's real signaling protocol and real
 * media (ICE, DTLS-SRTP, SRTP through the relay), on loopback.
 *
 * Each consult: a GP signs in, creates the consult and K-1 invites, joins and admits; K-1
 * patients redeem the invites and join. Every participant publishes synthetic RTP (--pps packets
 * of --size bytes per second) on its publish connection and receives everyone else's on its
 * subscribe connection. Once every subscriber has media from every other participant (or
 * --setup-timeout passed), each rate of --rates (default: --pps) is held for --duration seconds
 * and measured: packets sent / expected / received (per publisher sequence numbers), loss,
 * latency through the relay (receive time - send time in the payload, one host clock), spreekd's
 * CPU time (/proc/<pid>/stat, and per relay worker thread) per forwarded packet, and its RSS.
 * Join time: a participant's WebSocket connect -> first media packet received. One JSON object
 * on stdout; progress on stderr. docs/performance.md ("Media relay") describes the method. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "load.h"
#include "load_chat.h"
#include "spk/util.h"

extern char **environ;

typedef struct {
    const char *spreekd;
    const char *data;
    int port;
    int pid;
    int workers;
    bool e2ee; /* the consults require end-to-end encrypted media (--e2ee, --e2ee-tap) */
    char tmp[64];
} server_opts_t;

/* ---- spreekd ---- */

static int server_start(server_opts_t *o)
{
    if (!o->data) {
        snprintf(o->tmp, sizeof(o->tmp), "/tmp/spreekload.XXXXXX");
        if (!mkdtemp(o->tmp)) {
            return -1;
        }
        o->data = o->tmp;
    }
    o->port = spk_bench_free_port();
    char listen[32], workers[16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", o->port);
    snprintf(workers, sizeof(workers), "%d", o->workers);
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)o->spreekd;
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--data";
    argv[n++] = (char *)o->data;
    argv[n++] = "--relay-address";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    argv[n++] = "--rate";
    argv[n++] = "100000";
    argv[n++] = "--burst";
    argv[n++] = "100000";
    argv[n++] = "--media-e2ee";
    argv[n++] = o->e2ee ? "1" : "0";
    if (o->workers > 0) {
        argv[n++] = "--relay-workers";
        argv[n++] = workers;
    }
    argv[n] = NULL;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* stdout is for the JSON summary; spreekd's log goes to stderr */
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int sr = posix_spawn(&pid, o->spreekd, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (sr != 0) {
        fprintf(stderr, "spreekload: cannot start %s: %s\n", o->spreekd, strerror(errno));
        return -1;
    }
    o->pid = (int)pid;
    for (int i = 0; i < 500; i++) {
        if (spk_bench_port_accepts(o->port)) {
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            break;
        }
        usleep(20000);
    }
    fprintf(stderr, "spreekload: spreekd did not start\n");
    return -1;
}

static void server_stop(server_opts_t *o)
{
    if (!o->spreekd || o->pid <= 0) {
        return;
    }
    kill(o->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; i++) {
        if (waitpid(o->pid, &status, WNOHANG) == o->pid) {
            o->pid = 0;
            break;
        }
        usleep(10000);
    }
    if (o->pid > 0) {
        kill(o->pid, SIGKILL);
        waitpid(o->pid, &status, 0);
    }
    if (o->tmp[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", o->tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "spreekload: cannot remove %s\n", o->tmp);
        }
    }
}

/* ---- the loop ---- */

static gboolean pump_cb(gpointer user)
{
    load_t *L = user;
    load_media_pump(L, spk_mono_ns());
    return G_SOURCE_CONTINUE;
}

static bool all_ready(load_t *L)
{
    int total = 0;
    return load_media_pairs_ready(L, &total) == total;
}

bool load_run_until(load_t *L, bool (*cond)(load_t *), double ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)(ms * 1e6);
    while (!(cond && cond(L)) && spk_mono_ns() < end) {
        g_main_context_iteration(L->ctx, TRUE);
    }
    return cond ? cond(L) : true;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void worker_cpu(load_t *L, double *out, double *wait)
{
    for (size_t i = 0; i < L->n_workers; i++) {
        out[i] = spk_bench_task_run_s(L->pid, L->worker_tids[i]); /* ns, not clock ticks */
        wait[i] = spk_bench_task_wait_s(L->pid, L->worker_tids[i]);
    }
}

static void step_begin(load_t *L, int k)
{
    uint64_t now = spk_mono_ns();
    load_step_t *st = &L->steps[k];
    st->pps = L->rates[k];
    for (int c = 0; c < L->consults; c++) {
        for (int i = 0; i < L->k; i++) {
            load_part_t *p = &L->cs[c].parts[i];
            if (k > 0) {
                p->s1[k - 1] = p->seq;
            }
            p->s0[k] = p->seq;
            p->send_base_ns = now;
            p->send_base_seq = p->seq;
        }
    }
    L->step = k;
    st->t0_ns = now;
    st->cpu0 = L->pid > 0 ? spk_bench_cpu_s(L->pid) : -1;
    st->self0 = self_cpu_s();
    st->sdrop0 = spk_bench_udp_drops(L->pid);
    st->cdrop0 = spk_bench_udp_drops((int)getpid());
    worker_cpu(L, st->wcpu0, st->wwait0);
    if (k > 0) {
        L->steps[k - 1].t1_ns = now;
        L->steps[k - 1].cpu1 = st->cpu0;
        L->steps[k - 1].self1 = st->self0;
        L->steps[k - 1].sdrop1 = st->sdrop0;
        L->steps[k - 1].cdrop1 = st->cdrop0;
        memcpy(L->steps[k - 1].wcpu1, st->wcpu0, sizeof(st->wcpu0));
        memcpy(L->steps[k - 1].wwait1, st->wwait0, sizeof(st->wwait0));
    }
}

static void steps_end(load_t *L)
{
    int k = L->n_rates - 1;
    load_step_t *st = &L->steps[k];
    for (int c = 0; c < L->consults; c++) {
        for (int i = 0; i < L->k; i++) {
            L->cs[c].parts[i].s1[k] = L->cs[c].parts[i].seq;
        }
    }
    st->t1_ns = spk_mono_ns();
    st->cpu1 = L->pid > 0 ? spk_bench_cpu_s(L->pid) : -1;
    st->self1 = self_cpu_s();
    worker_cpu(L, st->wcpu1, st->wwait1);
    L->sending = false;
}

/* ---- results ---- */

static uint64_t count_bits(const load_pair_t *pr, uint64_t a, uint64_t b)
{
    uint64_t n = 0;
    for (uint64_t s = a; s < b && s < pr->cap_bits; s++) {
        n += (pr->bits[s / 8] >> (s & 7)) & 1;
    }
    return n;
}

typedef struct {
    uint64_t sent, expected, received;
    double loss_pct, wall_s, fwd_pps, cpu_s, cpu_us_per_fwd;
    uint64_t p50, p99, max;
} step_res_t;

static void step_result(load_t *L, int k, step_res_t *r)
{
    memset(r, 0, sizeof(*r));
    for (int c = 0; c < L->consults; c++) {
        for (int i = 0; i < L->k; i++) {
            const load_part_t *pub = &L->cs[c].parts[i];
            uint64_t n = pub->s1[k] - pub->s0[k];
            r->sent += n;
            for (int j = 0; j < L->k; j++) {
                if (j != i && load_e2ee_sends(&L->cs[c].parts[j])) { /* a tap counts apart */
                    r->expected += n;
                    r->received += count_bits(&L->cs[c].parts[j].pairs[i], pub->s0[k], pub->s1[k]);
                }
            }
        }
    }
    load_step_t *st = &L->steps[k];
    r->wall_s = (double)(st->t1_ns - st->t0_ns) / 1e9;
    r->loss_pct =
        r->expected ? 100.0 * (double)(r->expected - r->received) / (double)r->expected : 100.0;
    r->fwd_pps = r->wall_s > 0 ? (double)r->received / r->wall_s : 0;
    r->cpu_s = st->cpu0 >= 0 && st->cpu1 >= 0 ? st->cpu1 - st->cpu0 : -1;
    r->cpu_us_per_fwd = r->cpu_s >= 0 && r->received ? r->cpu_s * 1e6 / (double)r->received : -1;
    qsort(st->lat.v, st->lat.n, sizeof(uint64_t), spk_bench_cmp_u64);
    r->p50 = spk_bench_percentile(st->lat.v, st->lat.n, 0.50);
    r->p99 = spk_bench_percentile(st->lat.v, st->lat.n, 0.99);
    r->max = st->lat.n ? st->lat.v[st->lat.n - 1] : 0;
}

static void print_step(load_t *L, int k, const step_res_t *r, json_t *o)
{
    load_step_t *st = &L->steps[k];
    json_object_set_new(o, "pps_per_publisher", json_real(st->pps));
    json_object_set_new(o, "seconds", json_real(r->wall_s));
    json_object_set_new(o, "packets_sent", json_integer((json_int_t)r->sent));
    json_object_set_new(o, "packets_expected", json_integer((json_int_t)r->expected));
    json_object_set_new(o, "packets_received", json_integer((json_int_t)r->received));
    json_object_set_new(o, "loss_pct", json_real(r->loss_pct));
    json_object_set_new(o, "forwarded_pps", json_real(r->fwd_pps));
    json_object_set_new(o, "latency_p50_us", json_integer((json_int_t)r->p50));
    json_object_set_new(o, "latency_p99_us", json_integer((json_int_t)r->p99));
    json_object_set_new(o, "latency_max_us", json_integer((json_int_t)r->max));
    json_object_set_new(o, "spreekd_cpu_s", json_real(r->cpu_s));
    json_object_set_new(o, "spreekd_cpu_util", json_real(r->wall_s > 0 ? r->cpu_s / r->wall_s : 0));
    json_object_set_new(o, "spreekd_cpu_us_per_forwarded", json_real(r->cpu_us_per_fwd));
    /* Everything the relay sent: the expected packets plus media routed back to its own
     * publisher, when that happens. */
    json_object_set_new(o, "echo_packets", json_integer((json_int_t)st->echo_rx));
    double all = (double)(r->received + st->echo_rx);
    json_object_set_new(o, "spreekd_cpu_us_per_sent",
                        json_real(r->cpu_s >= 0 && all > 0 ? r->cpu_s * 1e6 / all : -1));
    json_t *w = json_array();
    for (size_t i = 0; i < L->n_workers; i++) {
        json_array_append_new(w, json_real(st->wcpu1[i] - st->wcpu0[i]));
    }
    json_object_set_new(o, "worker_cpu_s", w);
    /* The relay workers' CPU per forwarded packet, from schedstat (nanoseconds): at low rates
     * the process figure above, in 10 ms clock ticks, is coarse (one tick over 6 s at 600
     * forwarded packets/s is 2.8 us per packet). */
    double wsum = 0;
    for (size_t i = 0; i < L->n_workers; i++) {
        wsum += st->wcpu1[i] - st->wcpu0[i];
    }
    json_object_set_new(o, "worker_cpu_us_per_forwarded",
                        json_real(r->received > 0 ? wsum * 1e6 / (double)r->received : -1));
    /* Time the workers were runnable but not running: CPU they wanted and did not get. */
    json_t *wq = json_array();
    for (size_t i = 0; i < L->n_workers; i++) {
        json_array_append_new(wq, json_real(st->wwait1[i] - st->wwait0[i]));
    }
    json_object_set_new(o, "worker_runqueue_wait_s", wq);
    json_object_set_new(o, "udp_drops_spreekd", json_integer(st->sdrop1 - st->sdrop0));
    json_object_set_new(o, "udp_drops_client", json_integer(st->cdrop1 - st->cdrop0));
    json_object_set_new(o, "client_cpu_util",
                        json_real(r->wall_s > 0 ? (st->self1 - st->self0) / r->wall_s : 0));
}

static void join_times(load_t *L, uint64_t *p50, uint64_t *p99, int *missing)
{
    uint64_t *v = calloc((size_t)L->n_parts_total, sizeof(*v));
    size_t n = 0;
    *missing = 0;
    for (int c = 0; c < L->consults && v; c++) {
        for (int i = 0; i < L->k; i++) {
            const load_part_t *p = &L->cs[c].parts[i];
            if (p->t_media_ns) {
                v[n++] = (p->t_media_ns - p->t_start_ns) / 1000000;
            } else {
                (*missing)++;
            }
        }
    }
    if (v) {
        qsort(v, n, sizeof(*v), spk_bench_cmp_u64);
    }
    *p50 = v ? spk_bench_percentile(v, n, 0.5) : 0;
    *p99 = v ? spk_bench_percentile(v, n, 0.99) : 0;
    free(v);
}

static void print_summary(load_t *L, double setup_s, long rss0, long rss1)
{
    json_t *o = json_object();
    json_object_set_new(o, "consults", json_integer(L->consults));
    json_object_set_new(o, "participants", json_integer(L->n_parts_total));
    json_object_set_new(o, "participants_per_consult", json_integer(L->k));
    json_object_set_new(o, "duration_s", json_real(L->duration_s));
    json_object_set_new(o, "packet_bytes", json_integer((json_int_t)L->size));
    json_object_set_new(o, "setup_s", json_real(setup_s));
    uint64_t j50, j99;
    int missing;
    join_times(L, &j50, &j99, &missing);
    json_object_set_new(o, "join_p50_ms", json_integer((json_int_t)j50));
    json_object_set_new(o, "join_p99_ms", json_integer((json_int_t)j99));
    json_object_set_new(o, "join_without_media", json_integer(missing));
    step_res_t r0;
    step_result(L, 0, &r0);
    print_step(L, 0, &r0, o);
    if (L->n_rates > 1) {
        json_t *steps = json_array();
        json_array_append_new(steps, json_deep_copy(o));
        for (int k = 1; k < L->n_rates; k++) {
            step_res_t r;
            step_result(L, k, &r);
            json_t *s = json_object();
            print_step(L, k, &r, s);
            json_array_append_new(steps, s);
        }
        json_object_set_new(o, "steps", steps);
    }
    json_object_set_new(o, "spreekd_pid", json_integer(L->pid));
    json_object_set_new(o, "relay_workers", json_integer((json_int_t)L->n_workers));
    json_object_set_new(o, "spreekd_rss_kb_start", json_integer(rss0));
    json_object_set_new(o, "spreekd_rss_kb", json_integer(rss1));
    double per = rss0 > 0 && rss1 > 0 ? (double)(rss1 - rss0) * 1024.0 / L->n_parts_total : -1;
    json_object_set_new(o, "spreekd_rss_per_participant_bytes", json_real(per));
    json_object_set_new(o, "signaling_errors", json_integer((json_int_t)L->sig_errors));
    json_object_set_new(o, "connections_lost", json_integer((json_int_t)L->ws_lost));
    json_object_set_new(o, "media_failures", json_integer((json_int_t)L->media_failed));
    json_object_set_new(o, "send_errors", json_integer((json_int_t)L->send_errors));
    json_object_set_new(o, "foreign_packets", json_integer((json_int_t)L->foreign_rx));
    if (L->e2ee || L->e2ee_tap) {
        json_t *e = json_object();
        json_object_set_new(e, "on", json_boolean(L->e2ee));
        json_object_set_new(e, "failed", json_integer((json_int_t)L->e2ee_failed));
        json_object_set_new(e, "tap", json_boolean(L->e2ee_tap));
        json_object_set_new(e, "tap_frames", json_integer((json_int_t)L->e2ee_tap_frames));
        json_object_set_new(e, "tap_refused", json_integer((json_int_t)L->e2ee_tap_refused));
        json_object_set_new(e, "tap_opened", json_integer((json_int_t)L->e2ee_tap_opened));
        json_object_set_new(e, "plaintext_markers_seen",
                            json_integer((json_int_t)L->e2ee_canary_seen));
        json_object_set_new(o, "e2ee", e);
    }
    char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("%s\n", txt ? txt : "{}");
    fflush(stdout);
    free(txt);
    json_decref(o);
}

/* ---- setup ---- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: spreekload [options]\n"
        "  --consults N          consults (20)\n"
        "  --participants K      participants per consult, GP + K-1 patients (2, max %d)\n"
        "  --duration S          seconds measured per rate (30)\n"
        "  --pps R               RTP packets per second per publisher (160)\n"
        "  --rates R1,R2,...     measure these rates one after the other (default: --pps)\n"
        "  --size B              RTP packet size in bytes, 40..1400 (1100)\n"
        "  --setup-timeout S     wait at most this for all media to flow (30)\n"
        "  --rcvbuf B            receive buffer of the client's media sockets (4194304)\n"
        "  --e2ee                payloads are SFrame frames keyed from each consult's MLS group\n"
        "  --e2ee-tap            with --e2ee: the last participant is outside the group and\n"
        "                        receives only (needs --participants >= 3)\n"
        "  --capacity            capacity mode (capgen.h): after the setup every rate of --rates\n"
        "                        is a step of --duration s with pre-protected packets sent in\n"
        "                        bursts and counted from the RTP header; loss, one-way delay\n"
        "                        p50/p99/p99.9, relay worker and generator CPU per step; stops\n"
        "                        after two steps in a row lose 0.1 %% or more\n"
        "  --cap-threads N       1: one thread sends and receives; 2: a receiver thread (1)\n"
        "  --cap-tick-us U       send tick, microseconds (200)\n"
        "  --cap-mem-mb M        pre-protected packets per step at most, MiB (512)\n"
        "  --spreekd PATH        start this spreekd (temporary data dir, free port)\n"
        "  --relay-workers N     with --spreekd: relay worker threads\n"
        "  --pid PID --port P --data DIR   use a running spreekd instead\n"
        "  --chat ... | --chat-agent --port P   chat devices instead (--chat --help)\n",
        LOAD_MAX_K);
}

static int parse_rates(load_t *L, const char *s)
{
    L->n_rates = 0;
    while (*s && L->n_rates < LOAD_MAX_STEPS) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v <= 0 || v > 100000) {
            return -1;
        }
        L->rates[L->n_rates++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
            return -1;
        }
    }
    return L->n_rates > 0 ? 0 : -1;
}

static int parse_args(load_t *L, server_opts_t *so, int argc, char **argv)
{
    const char *rates = NULL;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(k, "--capacity") == 0) {
            L->capacity = true;
            continue;
        }
        if (strcmp(k, "--e2ee") == 0 || strcmp(k, "--e2ee-tap") == 0 || strcmp(k, "--tap") == 0) {
            L->e2ee = L->e2ee || strcmp(k, "--tap") != 0;
            L->e2ee_tap = L->e2ee_tap || strcmp(k, "--e2ee") != 0;
            continue;
        }
        if (!v) {
            return -1;
        }
        i++;
        if (strcmp(k, "--consults") == 0) {
            L->consults = atoi(v);
        } else if (strcmp(k, "--participants") == 0) {
            L->k = atoi(v);
        } else if (strcmp(k, "--duration") == 0) {
            L->duration_s = atof(v);
        } else if (strcmp(k, "--pps") == 0) {
            L->pps = atof(v);
        } else if (strcmp(k, "--rates") == 0) {
            rates = v;
        } else if (strcmp(k, "--size") == 0) {
            L->size = (size_t)atoi(v);
        } else if (strcmp(k, "--rcvbuf") == 0) {
            L->rcvbuf = atoi(v);
        } else if (strcmp(k, "--setup-timeout") == 0) {
            L->setup_timeout_s = atof(v);
        } else if (strcmp(k, "--cap-threads") == 0) {
            L->cap_threads = atoi(v);
        } else if (strcmp(k, "--cap-tick-us") == 0) {
            L->cap_tick_us = (unsigned)atoi(v);
        } else if (strcmp(k, "--cap-mem-mb") == 0) {
            L->cap_mem_mb = (size_t)atoi(v);
        } else if (strcmp(k, "--spreekd") == 0) {
            so->spreekd = v;
        } else if (strcmp(k, "--relay-workers") == 0) {
            so->workers = atoi(v);
        } else if (strcmp(k, "--pid") == 0) {
            so->pid = atoi(v);
        } else if (strcmp(k, "--port") == 0) {
            so->port = atoi(v);
        } else if (strcmp(k, "--data") == 0) {
            so->data = v;
        } else {
            return -1;
        }
    }
    if (rates ? parse_rates(L, rates) != 0 : (L->rates[0] = L->pps, L->n_rates = 1, false)) {
        return -1;
    }
    L->pps = L->rates[0];
    bool external = so->pid > 0 && so->port > 0 && so->data;
    if (L->consults < 1 || L->consults > 10000 || L->k < 1 || L->k > LOAD_MAX_K ||
        L->duration_s <= 0 || L->size < 40 || L->size > 1400 || (!so->spreekd && !external) ||
        (L->capacity && (L->e2ee || L->e2ee_tap || L->cap_threads < 1 || L->cap_threads > 2))) {
        return -1;
    }
    return 0;
}

static int env_init(load_t *L, const server_opts_t *so)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/issuer.key", so->data);
    int rc = spk_signer_load(&L->signer, path);
    if (rc != 0) {
        fprintf(stderr, "spreekload: cannot load %s: %d\n", path, rc);
        return -1;
    }
    L->pid = so->pid;
    fprintf(stderr, "spreekload: spreekd pid %d\n", L->pid);
    L->n_workers = spk_bench_tasks(L->pid, "spk-relay", L->worker_tids, 64);
    uv_ip4_addr("127.0.0.1", so->port, &L->addr);
    snprintf(L->host_port, sizeof(L->host_port), "127.0.0.1:%d", so->port);
    L->rng = spk_mono_ns() | 1;
    L->ctx = g_main_context_new();
    g_main_context_push_thread_default(L->ctx);
    uv_loop_init(&L->uv);
    L->uv_src = load_uv_source_new(&L->uv);
    g_source_attach(L->uv_src, L->ctx);
    GSource *t = g_timeout_source_new(1);
    g_source_set_callback(t, pump_cb, L, NULL);
    g_source_attach(t, L->ctx);
    g_source_unref(t);
    L->sdp_a = malloc(sizeof(spk_sdp_t));
    L->sdp_b = malloc(sizeof(spk_sdp_t));
    L->sdp_text = malloc(SPK_SDP_MAX_SIZE);
    L->cs = calloc((size_t)L->consults, sizeof(load_consult_t));
    if (!L->sdp_a || !L->sdp_b || !L->sdp_text || !L->cs) {
        return -1;
    }
    L->n_parts_total = L->consults * L->k;
    for (int c = 0; c < L->consults; c++) {
        L->cs[c].L = L;
        L->cs[c].idx = c;
        for (int i = 0; i < L->k; i++) {
            load_part_t *p = &L->cs[c].parts[i];
            p->L = L;
            p->cons = &L->cs[c];
            p->idx = i;
            p->gidx = c * L->k + i;
        }
    }
    return 0;
}

static void env_free(load_t *L)
{
    if (L->ctx) {
        for (int c = 0; L->cs && c < L->consults; c++) {
            for (int i = 0; i < L->k; i++) {
                load_part_close(&L->cs[c].parts[i]);
            }
        }
        load_run_until(L, NULL, 200); /* close callbacks */
        for (int c = 0; L->cs && c < L->consults; c++) {
            for (int i = 0; i < L->k; i++) {
                load_media_free(&L->cs[c].parts[i]);
            }
        }
        g_source_destroy(L->uv_src);
        g_source_unref(L->uv_src);
        if (uv_loop_close(&L->uv) != 0) {
            fprintf(stderr, "spreekload: uv handles left open\n");
        }
        g_main_context_pop_thread_default(L->ctx);
        g_main_context_unref(L->ctx);
    }
    for (int k = 0; k < LOAD_MAX_STEPS; k++) {
        spk_bench_samples_free(&L->steps[k].lat);
    }
    free(L->cs);
    free(L->sdp_a);
    free(L->sdp_b);
    free(L->sdp_text);
    spk_signer_wipe(&L->signer);
}

/* Signaling and media up for every participant; true when every media pair flows. */
static bool setup(load_t *L, double *setup_s)
{
    uint64_t t0 = spk_mono_ns();
    L->step = -1;
    L->sending = true;
    for (int c = 0; c < L->consults; c++) {
        load_part_start(&L->cs[c].parts[0]);
    }
    bool ok = load_run_until(L, all_ready, L->setup_timeout_s * 1000);
    *setup_s = (double)(spk_mono_ns() - t0) / 1e9;
    int total = 0;
    int ready = load_media_pairs_ready(L, &total);
    fprintf(stderr, "spreekload: %s after %.1f s: %d of %d media pairs flowing\n",
            ok ? "set up" : "setup timed out", *setup_s, ready, total);
    load_run_until(L, NULL, 500);
    return ok;
}

static bool run(load_t *L, double *setup_s, long *rss1)
{
    bool ok = setup(L, setup_s);
    for (int k = 0; k < L->n_rates; k++) {
        step_begin(L, k);
        fprintf(stderr, "spreekload: measuring %.0f pps per publisher for %.0f s\n", L->rates[k],
                L->duration_s);
        load_run_until(L, NULL, L->duration_s * 1000);
    }
    *rss1 = L->pid > 0 ? spk_bench_rss_kb(L->pid) : -1;
    steps_end(L);
    load_run_until(L, NULL, 500); /* packets in flight */
    L->steps[L->n_rates - 1].sdrop1 = spk_bench_udp_drops(L->pid);
    L->steps[L->n_rates - 1].cdrop1 = spk_bench_udp_drops((int)getpid());
    return ok;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strncmp(argv[1], "--chat", 6) == 0) {
        return load_chat_main(argc, argv); /* chat devices instead of media (load_chat.h) */
    }
    load_t *L = calloc(1, sizeof(*L));
    server_opts_t so;
    memset(&so, 0, sizeof(so));
    if (!L) {
        return 1;
    }
    L->consults = 20;
    L->k = 2;
    L->duration_s = 30;
    L->pps = 160;
    L->size = 1100;
    L->setup_timeout_s = 30;
    L->rcvbuf = 4 << 20;
    L->cap_threads = 1;
    if (parse_args(L, &so, argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    so.e2ee = L->e2ee || L->e2ee_tap;
    if (so.spreekd && server_start(&so) != 0) {
        server_stop(&so);
        return 1;
    }
    usleep(200000);
    long rss0 = spk_bench_rss_kb(so.pid);
    int rc = 1;
    if (env_init(L, &so) == 0 && load_e2ee_setup(L) == 0) {
        double setup_s = 0;
        long rss1 = -1;
        if (L->capacity) {
            rc = setup(L, &setup_s) ? load_cap_run(L, setup_s) : 1;
        } else {
            run(L, &setup_s, &rss1);
            print_summary(L, setup_s, rss0, rss1);
            rc = L->sig_errors || L->ws_lost || L->media_failed || L->e2ee_failed ||
                         L->e2ee_tap_opened || (L->e2ee && L->e2ee_canary_seen) ||
                         (L->e2ee_tap && L->e2ee_tap_frames == 0)
                     ? 1
                     : 0;
        }
    }
    env_free(L);
    server_stop(&so);
    free(L);
    return rc;
}
