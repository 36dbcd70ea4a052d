/* spreekload --capacity: the consults set up as usual (signaling, ICE, DTLS-SRTP through the
 * relay), then each rate of --rates is a step of capgen (capgen.h) on the selected pairs'
 * sockets and the peers' SRTP sessions, while the GLib context is left alone (the WebSocket
 * connections are kept served and every subscriber sends its receiver report once a second).
 * Per step: what capgen measured, spreekd's and its relay workers' CPU over the sending period,
 * their run-queue wait, UDP receive drops on either side, and who saturated. One JSON object on
 * stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "capgen.h"
#include "load.h"
#include "spk/util.h"

typedef struct {
    load_t *L;
    load_part_t **parts; /* by gidx */
    double wcpu[3][64], wwait[3][64], cpu[3];
} cap_t;

static size_t cb_build(void *u, int s, uint64_t seq, uint8_t *pkt, size_t cap)
{
    cap_t *c = u;
    return c->L->size <= cap ? load_media_build(c->parts[s], seq, 0, pkt) : 0;
}

static bool cb_check(void *u, int s, uint64_t seq, const uint8_t *pkt, size_t len)
{
    cap_t *c = u;
    return load_media_check(c->parts[s], seq, pkt, len);
}

static void cb_idle(void *u)
{
    cap_t *c = u;
    uv_run(&c->L->uv, UV_RUN_NOWAIT);
    uint64_t now = spk_mono_ns();
    for (int i = 0; i < c->L->n_parts_total; i++) {
        load_media_send_rr(c->parts[i], now);
    }
}

static void snap(cap_t *c, int which)
{
    load_t *L = c->L;
    for (size_t i = 0; i < L->n_workers; i++) {
        c->wcpu[which][i] = spk_bench_task_run_s(L->pid, L->worker_tids[i]);
        c->wwait[which][i] = spk_bench_task_wait_s(L->pid, L->worker_tids[i]);
    }
    c->cpu[which] = spk_bench_cpu_s(L->pid);
}

static void cb_mark(void *u, int which)
{
    snap(u, which);
}

static double sum_delta(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        s += b[i] - a[i];
    }
    return s;
}

static void cb_fwd(void *u, capgen_fwd_t *f)
{
    cap_t *c = u;
    size_t nw = c->L->n_workers;
    f->cpu_send_s = sum_delta(c->wcpu[0], c->wcpu[1], nw);
    f->cpu_all_s = sum_delta(c->wcpu[0], c->wcpu[2], nw);
    f->wait_s = sum_delta(c->wwait[0], c->wwait[1], nw);
    f->threads = (int)nw;
    f->proc_cpu_send_s = c->cpu[1] - c->cpu[0];
    f->proc_cpu_all_s = c->cpu[2] - c->cpu[0];
}

/* The capgen streams and subscribers from the peers. */
static int wire(cap_t *c, capgen_stream_t *st, capgen_sub_t *sb, int *extra)
{
    load_t *L = c->L;
    for (int g = 0; g < L->n_parts_total; g++) {
        load_part_t *p = c->parts[g];
        void *in, *out;
        int fd;
        if (spk_peer_selected(p->pub.peer, &fd, &st[g].to, &st[g].to_len) != 0) {
            return -1;
        }
        st[g].fd = fd;
        extra[g] = fd;
        spk_peer_srtp_sessions(p->pub.peer, &in, &out);
        st[g].srtp = out;
        st[g].ssrc = p->ssrc;
        st[g].seq = p->seq;
        struct sockaddr_storage to;
        socklen_t to_len;
        if (spk_peer_selected(p->sub.peer, &sb[g].fd, &to, &to_len) != 0) {
            return -1;
        }
        spk_peer_srtp_sessions(p->sub.peer, &in, &out);
        sb[g].srtp_in = in;
        for (int j = 0; j < L->k; j++) {
            if (j == p->idx) {
                continue;
            }
            int n = sb[g].n_src++;
            sb[g].src_stream[n] = p->cons->parts[j].gidx;
            sb[g].src_ssrc[n] = p->pairs[j].rx_ssrc;
            sb[g].seq_off[n] = p->pairs[j].seq_off;
        }
        if (!st[g].srtp || !sb[g].srtp_in) {
            return -1;
        }
    }
    return 0;
}

int load_cap_run(load_t *L, double setup_s)
{
    L->sending = false; /* load_media_pump sends no more */
    load_run_until(L, NULL, 300);
    cap_t c;
    memset(&c, 0, sizeof(c));
    c.L = L;
    int n = L->n_parts_total;
    c.parts = calloc((size_t)n, sizeof(*c.parts));
    capgen_stream_t *st = calloc((size_t)n, sizeof(*st));
    capgen_sub_t *sb = calloc((size_t)n, sizeof(*sb));
    int *extra = calloc((size_t)n, sizeof(*extra));
    capgen_t *g = NULL;
    int rc = 1;
    for (int i = 0; c.parts && i < n; i++) {
        c.parts[i] = &L->cs[i / L->k].parts[i % L->k];
    }
    capgen_cfg_t cfg = {.n_streams = n,
                        .n_subs = n,
                        .streams = st,
                        .subs = sb,
                        .extra_fds = extra,
                        .n_extra = n,
                        .size = L->size,
                        .threads = L->cap_threads,
                        .tick_us = L->cap_tick_us,
                        .mem_cap = L->cap_mem_mb << 20,
                        .build = cb_build,
                        .check = cb_check,
                        .idle = cb_idle,
                        .mark = cb_mark,
                        .fwd = cb_fwd,
                        .fwd_pid = L->pid,
                        .user = &c};
    if (!c.parts || !st || !sb || !extra || wire(&c, st, sb, extra) != 0 ||
        capgen_new(&cfg, &g) != 0) {
        fprintf(stderr, "spreekload: capacity mode: cannot take over the media sockets\n");
    } else {
        json_t *o = json_object();
        double la[3];
        uv_loadavg(la);
        json_object_set_new(o, "mode", json_string("capacity"));
        json_object_set_new(o, "consults", json_integer(L->consults));
        json_object_set_new(o, "participants_per_consult", json_integer(L->k));
        json_object_set_new(o, "fanout", json_integer(L->k - 1));
        json_object_set_new(o, "packet_bytes", json_integer((json_int_t)L->size));
        json_object_set_new(o, "setup_s", json_real(setup_s));
        const char *prof = spk_peer_srtp_profile(c.parts[0]->pub.peer);
        json_object_set_new(o, "srtp_profile", prof ? json_string(prof) : json_null());
        json_object_set_new(o, "generator_threads", json_integer(L->cap_threads));
        json_object_set_new(o, "tick_us", json_integer(L->cap_tick_us ? L->cap_tick_us : 200));
        json_object_set_new(o, "relay_workers", json_integer((json_int_t)L->n_workers));
        json_object_set_new(o, "loadavg_1min", json_real(la[0]));
        int bad = capgen_ramp(g, L->rates, L->n_rates, L->duration_s, o);
        json_object_set_new(o, "signaling_errors", json_integer((json_int_t)L->sig_errors));
        json_object_set_new(o, "connections_lost", json_integer((json_int_t)L->ws_lost));
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", txt ? txt : "{}");
        fflush(stdout);
        free(txt);
        json_decref(o);
        rc = bad != 0 || L->sig_errors || L->ws_lost ? 1 : 0;
    }
    for (int i = 0; c.parts && i < n; i++) {
        c.parts[i]->seq = st ? st[i].seq : c.parts[i]->seq;
    }
    capgen_free(g);
    free(c.parts);
    free(st);
    free(sb);
    free(extra);
    return rc;
}
