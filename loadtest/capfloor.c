/* capfloor: the generator of spreekload --capacity (capgen.h) against a minimal SRTP forwarder,
 * the baseline of the relay's capacity and added latency: what the generator, the kernel's
 * loopback path and the least SRTP work cost, measured the same way.
 *
 * The consults of spreekload (--consults x --participants, everyone publishing one stream and
 * receiving the others of the consult) with SRTP keys made here (AEAD_AES_128_GCM, one key per
 * publisher and per subscriber) instead of DTLS. The forwarder is a child process with one
 * thread, like a relay worker: one UDP socket per publisher in one epoll set; on readiness
 * recvmmsg() until empty, and per packet srtp_unprotect() with the publisher's session, then
 * per subscriber of the consult a copy, srtp_protect() with the subscriber's session and one
 * sendto(). Figures per step as spreekload --capacity gives them ("worker_*" is the forwarder's
 * thread). One JSON object on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include "benchutil.h"
#include "capgen.h"
#include "floor_util.h"

#define MAX_PARTS 4096
#define MAX_RATES 16
#define KEY_LEN 28 /* AES-128 key + 12-byte salt */
#define SSRC0 0x5a000000u
#define MAGIC "SPKF"

typedef struct {
    int consults, k, n;
    size_t size;
    double seconds;
    double rates[MAX_RATES];
    int n_rates, threads;
    unsigned tick_us;
    size_t mem_mb;
    /* per participant: publisher stream and subscriber */
    int pub_fd[MAX_PARTS], fwd_fd[MAX_PARTS], sub_fd[MAX_PARTS];
    struct sockaddr_in fwd_addr[MAX_PARTS], sub_addr[MAX_PARTS];
    srtp_t pub_out[MAX_PARTS], fwd_in[MAX_PARTS], fwd_out[MAX_PARTS], sub_in[MAX_PARTS];
    pid_t child;
    double cpu[3], wait[3], pcpu[3];
} floor_t;

static int session_pair(srtp_t *out, srtp_t *in)
{
    uint8_t key[KEY_LEN];
    RAND_bytes(key, sizeof(key));
    int rc = floor_session(out, srtp_profile_aead_aes_128_gcm, key, false) == 0 &&
                     floor_session(in, srtp_profile_aead_aes_128_gcm, key, true) == 0
                 ? 0
                 : -1;
    memset(key, 0, sizeof(key));
    return rc;
}

/* ---- the forwarder (child process) ---- */

static void forward_loop(floor_t *F)
{
    static uint8_t rx[64][1500], tx[1500];
    struct mmsghdr m[64];
    struct iovec iov[64];
    for (int i = 0; i < 64; i++) {
        iov[i] = (struct iovec){.iov_base = rx[i], .iov_len = sizeof(rx[i])};
        memset(&m[i], 0, sizeof(m[i]));
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int s = 0; s < F->n; s++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
        epoll_ctl(ep, EPOLL_CTL_ADD, F->fwd_fd[s], &ev);
    }
    for (;;) {
        struct epoll_event evs[64];
        int ne = epoll_wait(ep, evs, 64, -1);
        for (int e = 0; e < ne; e++) {
            int s = (int)evs[e].data.u32, c = s / F->k;
            int got;
            while ((got = recvmmsg(F->fwd_fd[s], m, 64, MSG_DONTWAIT, NULL)) > 0) {
                for (int i = 0; i < got; i++) {
                    int len = (int)m[i].msg_len;
                    if (srtp_unprotect(F->fwd_in[s], rx[i], &len) != srtp_err_status_ok) {
                        continue;
                    }
                    for (int j = c * F->k; j < (c + 1) * F->k; j++) {
                        if (j == s) {
                            continue;
                        }
                        memcpy(tx, rx[i], (size_t)len);
                        int out = len;
                        if (srtp_protect(F->fwd_out[j], tx, &out) == srtp_err_status_ok) {
                            sendto(F->fwd_fd[s], tx, (size_t)out, 0,
                                   (struct sockaddr *)&F->sub_addr[j], sizeof(F->sub_addr[j]));
                        }
                    }
                }
                if (got < 64) {
                    break;
                }
            }
        }
    }
}

/* ---- the generator's callbacks ---- */

static size_t cb_build(void *u, int s, uint64_t seq, uint8_t *pkt, size_t cap)
{
    floor_t *F = u;
    if (F->size > cap) {
        return 0;
    }
    memset(pkt, 0, F->size);
    uint32_t ssrc = SSRC0 + (uint32_t)s, ts = (uint32_t)(seq * 3000);
    pkt[0] = 0x80;
    pkt[1] = 96;
    pkt[2] = (uint8_t)(seq >> 8);
    pkt[3] = (uint8_t)seq;
    for (int i = 0; i < 4; i++) {
        pkt[4 + i] = (uint8_t)(ts >> (24 - 8 * i));
        pkt[8 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
    }
    memcpy(pkt + 12, MAGIC, 4);
    memcpy(pkt + 16, &s, sizeof(s));
    memcpy(pkt + 20, &seq, sizeof(seq));
    return F->size;
}

static bool cb_check(void *u, int s, uint64_t seq, const uint8_t *pkt, size_t len)
{
    floor_t *F = u;
    int gs;
    uint64_t gq;
    if (len != F->size || memcmp(pkt + 12, MAGIC, 4) != 0) {
        return false;
    }
    memcpy(&gs, pkt + 16, sizeof(gs));
    memcpy(&gq, pkt + 20, sizeof(gq));
    return gs == s && gq == seq;
}

static void cb_mark(void *u, int which)
{
    floor_t *F = u;
    F->cpu[which] = spk_bench_task_run_s(F->child, F->child);
    F->wait[which] = spk_bench_task_wait_s(F->child, F->child);
    F->pcpu[which] = spk_bench_cpu_s(F->child);
}

static void cb_fwd(void *u, capgen_fwd_t *f)
{
    floor_t *F = u;
    f->cpu_send_s = F->cpu[1] - F->cpu[0];
    f->cpu_all_s = F->cpu[2] - F->cpu[0];
    f->wait_s = F->wait[1] - F->wait[0];
    f->threads = 1;
    f->proc_cpu_send_s = F->pcpu[1] - F->pcpu[0];
    f->proc_cpu_all_s = F->pcpu[2] - F->pcpu[0];
}

/* ---- setup ---- */

static int parse_rates(floor_t *F, const char *s)
{
    F->n_rates = 0;
    while (*s && F->n_rates < MAX_RATES) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v <= 0 || v > 1000000) {
            return -1;
        }
        F->rates[F->n_rates++] = v;
        if (*end && *end != ',') {
            return -1;
        }
        s = *end ? end + 1 : end;
    }
    return F->n_rates > 0 ? 0 : -1;
}

static int parse_args(floor_t *F, int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--consults") == 0) {
            F->consults = atoi(v);
        } else if (strcmp(k, "--participants") == 0) {
            F->k = atoi(v);
        } else if (strcmp(k, "--rates") == 0) {
            if (parse_rates(F, v) != 0) {
                return -1;
            }
        } else if (strcmp(k, "--duration") == 0) {
            F->seconds = atof(v);
        } else if (strcmp(k, "--size") == 0) {
            F->size = (size_t)atoi(v);
        } else if (strcmp(k, "--cap-threads") == 0) {
            F->threads = atoi(v);
        } else if (strcmp(k, "--cap-tick-us") == 0) {
            F->tick_us = (unsigned)atoi(v);
        } else if (strcmp(k, "--cap-mem-mb") == 0) {
            F->mem_mb = (size_t)atoi(v);
        } else {
            return -1;
        }
    }
    F->n = F->consults * F->k;
    return (argc % 2 == 1 && F->consults >= 1 && F->k >= 2 && F->k <= CAPGEN_MAX_SRC &&
            F->n <= MAX_PARTS && F->size >= 40 && F->size <= 1400 && F->seconds > 0 &&
            F->n_rates > 0 && F->threads >= 1 && F->threads <= 2)
               ? 0
               : -1;
}

static int setup(floor_t *F)
{
    for (int i = 0; i < F->n; i++) {
        F->pub_fd[i] = floor_udp_bound(NULL);
        F->fwd_fd[i] = floor_udp_bound(&F->fwd_addr[i]);
        F->sub_fd[i] = floor_udp_bound(&F->sub_addr[i]);
        if (F->pub_fd[i] < 0 || F->fwd_fd[i] < 0 || F->sub_fd[i] < 0 ||
            session_pair(&F->pub_out[i], &F->fwd_in[i]) != 0 ||
            session_pair(&F->fwd_out[i], &F->sub_in[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static floor_t F = {.consults = 10, .k = 2, .size = 1100, .seconds = 2, .threads = 1};
    if (parse_args(&F, argc, argv) != 0) {
        fprintf(stderr, "usage: capfloor --rates R1,R2,.. [--consults 10] [--participants 2] "
                        "[--duration 2] [--size 1100] [--cap-threads 1] [--cap-tick-us 200] "
                        "[--cap-mem-mb 512]\n");
        return 2;
    }
    if (srtp_init() != srtp_err_status_ok || setup(&F) != 0) {
        fprintf(stderr, "capfloor: setup failed\n");
        return 1;
    }
    pid_t parent = getpid();
    F.child = fork();
    if (F.child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        for (int i = 0; i < F.n; i++) { /* its own sockets only, so UDP drops count apart */
            close(F.pub_fd[i]);
            close(F.sub_fd[i]);
        }
        forward_loop(&F);
        _exit(0);
    }
    for (int i = 0; i < F.n && F.child > 0; i++) {
        close(F.fwd_fd[i]);
    }
    static capgen_stream_t st[MAX_PARTS];
    static capgen_sub_t sb[MAX_PARTS];
    for (int i = 0; i < F.n; i++) {
        st[i] = (capgen_stream_t){
            .fd = F.pub_fd[i], .srtp = F.pub_out[i], .ssrc = SSRC0 + (uint32_t)i, .seq = 1};
        memcpy(&st[i].to, &F.fwd_addr[i], sizeof(F.fwd_addr[i]));
        st[i].to_len = sizeof(F.fwd_addr[i]);
        sb[i] = (capgen_sub_t){.fd = F.sub_fd[i], .srtp_in = F.sub_in[i]};
        int c = i / F.k;
        for (int j = c * F.k; j < (c + 1) * F.k; j++) {
            if (j != i) {
                sb[i].src_stream[sb[i].n_src] = j;
                sb[i].src_ssrc[sb[i].n_src++] = SSRC0 + (uint32_t)j;
            }
        }
    }
    capgen_cfg_t cfg = {.n_streams = F.n,
                        .n_subs = F.n,
                        .streams = st,
                        .subs = sb,
                        .size = F.size,
                        .threads = F.threads,
                        .tick_us = F.tick_us,
                        .mem_cap = F.mem_mb << 20,
                        .build = cb_build,
                        .check = cb_check,
                        .mark = cb_mark,
                        .fwd = cb_fwd,
                        .fwd_pid = F.child,
                        .user = &F};
    capgen_t *g = NULL;
    int rc = 1;
    if (F.child > 0 && capgen_new(&cfg, &g) == 0) {
        double la[3] = {-1, -1, -1};
        FILE *f = fopen("/proc/loadavg", "r");
        if (f) {
            if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) {
                la[0] = -1;
            }
            fclose(f);
        }
        json_t *o = json_object();
        json_object_set_new(o, "mode", json_string("capacity"));
        json_object_set_new(o, "forwarder", json_string("capfloor"));
        json_object_set_new(o, "consults", json_integer(F.consults));
        json_object_set_new(o, "participants_per_consult", json_integer(F.k));
        json_object_set_new(o, "fanout", json_integer(F.k - 1));
        json_object_set_new(o, "packet_bytes", json_integer((json_int_t)F.size));
        json_object_set_new(o, "srtp_profile", json_string("AEAD_AES_128_GCM"));
        json_object_set_new(o, "generator_threads", json_integer(F.threads));
        json_object_set_new(o, "tick_us", json_integer(F.tick_us ? F.tick_us : 200));
        json_object_set_new(o, "loadavg_1min", json_real(la[0]));
        int bad = capgen_ramp(g, F.rates, F.n_rates, F.seconds, o);
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(o);
        rc = bad != 0 ? 1 : 0;
    }
    capgen_free(g);
    if (F.child > 0) {
        kill(F.child, SIGKILL);
        waitpid(F.child, NULL, 0);
    }
    return rc;
}
