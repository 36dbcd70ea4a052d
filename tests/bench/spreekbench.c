/* spreekbench: signaling load generator for spreekd.
 *
 * A libuv client with its own minimal RFC 6455 implementation measures, against a server:
 *   - round-trip latency and message rate of `ping` requests from N active clients, and the
 *     server's CPU time per answered request;
 *   - resident memory per idle connection (VmRSS before and after opening M idle connections);
 *   - the same round trips while the M idle connections stay open.
 * The same measurements run against a floor: a minimal WebSocket server in this program
 * (--floor-server PORT) that answers `ping` with a fixed `ok` frame. Each server is started
 * fresh for every round; medians over the rounds are printed, then one JSON summary line.
 * docs/performance.md describes the method and the figures. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "benchutil.h"
#include "ws.h"

#define SUBPROTOCOL SPK_WS_SUBPROTOCOL
#define RBUF_SIZE 65536
#define MAX_HEADER SPK_WS_MAX_HEADER
#define MAX_ROUNDS 15

/* ---------------------------------------------------------------- small utilities ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Raises RLIMIT_NOFILE to at least want (the hard limit too when privileged). */
static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) {
        return;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit hard = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &hard) == 0) {
            return;
        }
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "spreekbench: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
    }
}

static rlim_t nofile_limit(void)
{
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 0;
}

/* ---------------------------------------------------------------- JSON scanning ---- */

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Points at the value of the first "key": in p (enough for the flat server messages). */
static const char *json_find(const char *p, size_t n, const char *key)
{
    char pat[40];
    int m = snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *end = p + n;
    const char *q = memmem(p, n, pat, (size_t)m);
    while (q) {
        const char *v = q + m;
        while (v < end && is_ws(*v)) {
            v++;
        }
        if (v < end && *v == ':') {
            v++;
            while (v < end && is_ws(*v)) {
                v++;
            }
            return v < end ? v : NULL;
        }
        q = memmem(q + 1, (size_t)(end - q - 1), pat, (size_t)m);
    }
    return NULL;
}

static bool json_str_is(const char *p, size_t n, const char *key, const char *want)
{
    const char *v = json_find(p, n, key);
    size_t wl = strlen(want);
    return v && (size_t)(p + n - v) >= wl + 2 && v[0] == '"' && memcmp(v + 1, want, wl) == 0 &&
           v[wl + 1] == '"';
}

static bool json_uint(const char *p, size_t n, const char *key, uint64_t *out)
{
    const char *v = json_find(p, n, key);
    const char *end = p + n;
    if (!v || v >= end || *v < '0' || *v > '9') {
        return false;
    }
    uint64_t x = 0;
    while (v < end && *v >= '0' && *v <= '9') {
        x = x * 10 + (uint64_t)(*v - '0');
        v++;
    }
    *out = x;
    return true;
}

/* The raw JSON text of an "id" value (number or short string without escapes). */
static size_t json_raw_id(const char *p, size_t n, const char **out)
{
    const char *v = json_find(p, n, "id");
    const char *end = p + n;
    if (!v) {
        return 0;
    }
    const char *e = v;
    if (*v == '"') {
        e++;
        while (e < end && *e != '"' && *e != '\\' && e - v < 66) {
            e++;
        }
        if (e >= end || *e != '"') {
            return 0;
        }
        e++;
    } else {
        while (e < end && *e >= '0' && *e <= '9' && e - v < 17) {
            e++;
        }
    }
    *out = v;
    return (size_t)(e - v);
}

/* ---------------------------------------------------------------- floor server ---- */

typedef struct {
    uv_tcp_t tcp;
    bool open;
    bool closing;
    spk_ws_rxbuf_t rx;
} fconn_t;

typedef struct {
    uint8_t *p;
    size_t len, cap;
} obuf_t;

static uint8_t g_fout[2 * RBUF_SIZE];

static void fconn_closed(uv_handle_t *h)
{
    fconn_t *c = h->data;
    free(c->rx.p);
    free(c);
}

static void fconn_close(fconn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    spk_ws_close_rst(&c->tcp, fconn_closed);
}

static void fconn_flush(fconn_t *c, obuf_t *o)
{
    if (o->len && !c->closing && spk_ws_write((uv_stream_t *)&c->tcp, o->p, o->len) != 0) {
        fconn_close(c);
    }
    o->len = 0;
}

/* Answers the upgrade request at p; returns the bytes used, 0 when incomplete, -1 to refuse. */
static long floor_handshake(fconn_t *c, const uint8_t *p, size_t n, obuf_t *o)
{
    const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) {
        return n > MAX_HEADER ? -1 : 0;
    }
    size_t hlen = (size_t)(end - p) + 4;
    char hdr[MAX_HEADER + 1];
    if (hlen > MAX_HEADER) {
        return -1;
    }
    memcpy(hdr, p, hlen);
    hdr[hlen] = '\0';
    char *k = strcasestr(hdr, "\nsec-websocket-key:");
    char *proto = strcasestr(hdr, "\nsec-websocket-protocol:");
    if (strncmp(hdr, "GET /ws ", 8) != 0 || !k || !proto || !strstr(proto, SUBPROTOCOL)) {
        return -1;
    }
    k += strlen("\nsec-websocket-key:");
    k += strspn(k, " \t");
    size_t klen = strcspn(k, " \t\r\n");
    char accept[32];
    spk_ws_accept(k, klen, accept);
    int m = snprintf((char *)o->p, o->cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: " SUBPROTOCOL "\r\n\r\n",
                     accept);
    static const char hello[] =
        "{\"type\":\"hello\",\"protocol\":\"" SUBPROTOCOL "\",\"server\":\"floor\"}";
    o->len = (size_t)m + spk_ws_frame(o->p + m, SPK_WS_OP_TEXT, hello, sizeof(hello) - 1, NULL);
    c->open = true;
    return (long)hlen;
}

/* Appends the answer to one text message. */
static void floor_answer(obuf_t *o, const char *msg, size_t len)
{
    const char *id = NULL;
    size_t id_len = json_raw_id(msg, len, &id);
    if (id_len == 0) {
        id = "null";
        id_len = 4;
    }
    char reply[160];
    int m;
    if (json_str_is(msg, len, "type", "ping")) {
        m = snprintf(reply, sizeof(reply), "{\"type\":\"ok\",\"re\":%.*s,\"time\":%" PRId64 "}",
                     (int)id_len, id, wall_ms());
    } else {
        m = snprintf(reply, sizeof(reply),
                     "{\"type\":\"error\",\"re\":%.*s,\"code\":\"unknown_type\"}", (int)id_len, id);
    }
    o->len += spk_ws_frame(o->p + o->len, SPK_WS_OP_TEXT, reply, (size_t)m, NULL);
}

/* Handles the frames in (p, n); returns the bytes used or -1 to close. */
static long floor_frames(fconn_t *c, uint8_t *p, size_t n, obuf_t *o)
{
    size_t off = 0;
    spk_ws_frame_t f;
    int r;
    while ((r = spk_ws_parse(p + off, n - off, &f)) == 1) {
        off += f.size;
        if (o->cap - o->len < 256 + (f.opcode == SPK_WS_OP_PING ? f.len : 0)) {
            fconn_flush(c, o);
        }
        if (f.opcode == SPK_WS_OP_TEXT && f.fin) {
            floor_answer(o, (const char *)f.payload, f.len);
        } else if (f.opcode == SPK_WS_OP_PING && f.len <= 125) {
            o->len += spk_ws_frame(o->p + o->len, SPK_WS_OP_PONG, f.payload, f.len, NULL);
        } else if (f.opcode == SPK_WS_OP_CLOSE) {
            o->len += spk_ws_frame(o->p + o->len, SPK_WS_OP_CLOSE, f.payload, f.len < 2 ? f.len : 2,
                                   NULL);
            return -1;
        } else if (f.opcode != SPK_WS_OP_PONG) {
            return -1; /* binary and fragmented messages are not part of this benchmark */
        }
    }
    return r < 0 ? -1 : (long)off;
}

static void floor_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fconn_t *c = s->data;
    if (nread <= 0) {
        if (nread < 0) {
            fconn_close(c);
        }
        return;
    }
    uint8_t *p;
    size_t n;
    if (spk_ws_rx_input(&c->rx, buf, (size_t)nread, &p, &n) != 0) {
        fconn_close(c);
        return;
    }
    obuf_t o = {g_fout, 0, sizeof(g_fout)};
    long used = 0;
    if (!c->open) {
        used = floor_handshake(c, p, n, &o);
    }
    if (used >= 0 && c->open) {
        long more = floor_frames(c, p + used, n - (size_t)used, &o);
        used = more < 0 ? -1 : used + more;
    }
    fconn_flush(c, &o);
    if (used < 0 || spk_ws_rx_done(&c->rx, p, n, (size_t)used) != 0) {
        fconn_close(c);
    }
}

static void floor_accept(uv_stream_t *server, int status)
{
    if (status < 0) {
        return;
    }
    fconn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return;
    }
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, fconn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, spk_ws_alloc_shared, floor_read);
}

static void floor_signal(uv_signal_t *h, int signum)
{
    uv_stop(h->loop);
}

static int floor_main(int port)
{
    raise_nofile(65536);
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t sigterm;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)&server, 4096, floor_accept);
    }
    if (r != 0) {
        fprintf(stderr, "spreekbench: floor server cannot listen on port %d: %s\n", port,
                uv_strerror(r));
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, floor_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---------------------------------------------------------------- client ---- */

typedef struct bench bench_t;

typedef struct {
    spk_ws_client_t ws; /* ws.data points back here */
    bench_t *b;
    bool active;
    bool ended;
    bool ready; /* hello received */
    uint32_t inflight;
    uint64_t next_id;
    uint64_t *sent_ns; /* send time of id % window */
} bconn_t;

typedef struct {
    double p50_us, p99_us, p999_us, mps;
    double cpu_us_per_msg; /* server CPU time per answered ping */
    double cpu_util;       /* server CPU seconds per second */
    double client_util;    /* this process's CPU seconds per second */
    uint64_t samples;
} load_t;

typedef struct {
    load_t alone, with_idle;
    double rss_per_idle;
    long rss_before_kb, rss_after_kb;
    double idle_open_s;
    uint64_t failures, errors, lost;
} round_t;

struct bench {
    uv_loop_t *loop;
    struct sockaddr_in addr;
    char host_port[64];
    uv_timer_t deadline, tick;
    bool (*until)(bench_t *);
    uint64_t rng;

    /* settings */
    int clients, window, idle, repeat, concurrency;
    bool verbose;
    double duration_s, warmup_s;

    /* connections of the current round */
    bconn_t **conns;
    size_t n_conns, cap_conns;
    size_t open_next, open_end; /* batch being opened */
    size_t pending;             /* connects and upgrades in flight */
    size_t n_ready, n_failed, n_handles;

    /* load */
    bool pinging, measuring;
    uint64_t inflight_total, responses, errors, lost;
    spk_bench_samples_t lat;
};

static void conn_closed(spk_ws_client_t *ws)
{
    bconn_t *c = ws->data;
    c->b->n_handles--;
}

static void pump_connects(bench_t *b);

/* A connection ended: before its hello it counts as failed, after it as lost. */
static void conn_ended(spk_ws_client_t *ws, const char *why)
{
    bconn_t *c = ws->data;
    bench_t *b = c->b;
    c->ended = true;
    if (!c->ready) {
        b->n_failed++;
        b->pending--;
        if (b->n_failed <= 5) {
            fprintf(stderr, "spreekbench: connection failed: %s\n", why);
        }
        pump_connects(b);
    } else {
        b->lost++;
        if (b->lost <= 5) {
            fprintf(stderr, "spreekbench: connection lost: %s\n", why);
        }
    }
    b->inflight_total -= c->inflight;
    c->inflight = 0;
}

static void send_ping(bconn_t *c)
{
    bench_t *b = c->b;
    char js[64];
    int n = snprintf(js, sizeof(js), "{\"id\":%" PRIu64 ",\"type\":\"ping\"}", c->next_id);
    c->sent_ns[c->next_id % (uint64_t)b->window] = uv_hrtime();
    c->next_id++;
    c->inflight++;
    b->inflight_total++;
    spk_ws_client_send(&c->ws, SPK_WS_OP_TEXT, js, (size_t)n);
}

static void on_answer(bconn_t *c, const char *msg, size_t len, uint64_t now)
{
    bench_t *b = c->b;
    uint64_t re;
    if (!json_uint(msg, len, "re", &re) || c->inflight == 0 || !c->active) {
        return; /* not an answer to one of our pings */
    }
    uint64_t sent = c->sent_ns[re % (uint64_t)b->window];
    c->inflight--;
    b->inflight_total--;
    if (b->measuring) {
        b->responses++;
        spk_bench_samples_add(&b->lat, now - sent);
    }
    if (b->pinging) {
        send_ping(c);
    }
}

static void on_message(spk_ws_client_t *ws, const char *msg, size_t len, uint64_t now)
{
    bconn_t *c = ws->data;
    bench_t *b = c->b;
    if (json_str_is(msg, len, "type", "ok")) {
        on_answer(c, msg, len, now);
    } else if (json_str_is(msg, len, "type", "error")) {
        b->errors++;
        if (b->errors <= 5) {
            fprintf(stderr, "spreekbench: error answer: %.*s\n", (int)(len > 200 ? 200 : len), msg);
        }
        on_answer(c, msg, len, now);
    } else if (!c->ready && json_str_is(msg, len, "type", "hello")) {
        c->ready = true;
        b->n_ready++;
        b->pending--;
        pump_connects(b);
    }
}

static const spk_ws_client_cbs_t g_conn_cbs = {
    .text_cb = on_message, .end_cb = conn_ended, .closed_cb = conn_closed};

static void conn_start(bench_t *b, bconn_t *c)
{
    c->ws.data = c;
    b->n_handles++;
    b->pending++;
    int r = spk_ws_client_connect(&c->ws, b->loop, (const struct sockaddr *)&b->addr, b->host_port,
                                  &g_conn_cbs, &b->rng);
    if (r != 0) {
        conn_ended(&c->ws, uv_strerror(r));
    }
}

/* Starts connections of the current batch while fewer than `concurrency` are in progress. */
static void pump_connects(bench_t *b)
{
    while (b->open_next < b->open_end && b->pending < (size_t)b->concurrency) {
        conn_start(b, b->conns[b->open_next++]);
    }
}

static int open_batch(bench_t *b, int count, bool active)
{
    if (b->n_conns + (size_t)count > b->cap_conns) {
        size_t cap = b->n_conns + (size_t)count;
        bconn_t **v = realloc(b->conns, cap * sizeof(*v));
        if (!v) {
            return -1;
        }
        b->conns = v;
        b->cap_conns = cap;
    }
    b->open_next = b->n_conns;
    for (int i = 0; i < count; i++) {
        bconn_t *c = calloc(1, sizeof(*c));
        uint64_t *sent = active ? calloc((size_t)b->window, sizeof(uint64_t)) : NULL;
        if (!c || (active && !sent)) {
            free(c);
            free(sent);
            return -1;
        }
        c->sent_ns = sent;
        c->b = b;
        c->active = active;
        b->conns[b->n_conns++] = c;
    }
    b->open_end = b->n_conns;
    pump_connects(b);
    return 0;
}

/* ---------------------------------------------------------------- loop phases ---- */

static void phase_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->until && b->until(b)) {
        uv_stop(b->loop);
    }
}

static void phase_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop until cond holds (checked every 2 ms) or ms have passed. */
static bool run_until(bench_t *b, bool (*cond)(bench_t *), uint64_t ms)
{
    b->until = cond;
    uv_update_time(b->loop);
    uv_timer_start(&b->deadline, phase_deadline, ms, 0);
    if (cond) {
        uv_timer_start(&b->tick, phase_tick, 2, 2);
    }
    if (!cond || !cond(b)) {
        uv_run(b->loop, UV_RUN_DEFAULT);
    }
    uv_timer_stop(&b->deadline);
    uv_timer_stop(&b->tick);
    b->until = NULL;
    return cond ? cond(b) : true;
}

static void run_for(bench_t *b, double seconds)
{
    run_until(b, NULL, (uint64_t)(seconds * 1000));
}

static bool batch_done(bench_t *b)
{
    return b->open_next == b->open_end && b->pending == 0;
}

static bool no_inflight(bench_t *b)
{
    return b->inflight_total == 0;
}

static bool no_handles(bench_t *b)
{
    return b->n_handles == 0;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Warm-up, then duration_s of measured round trips from the active connections; the
 * server's CPU time per answered ping when its pid is known. */
static void measure_load(bench_t *b, int pid, load_t *out)
{
    b->pinging = true;
    for (size_t i = 0; i < b->n_conns; i++) {
        bconn_t *c = b->conns[i];
        for (int w = 0; w < b->window && c->active && spk_ws_client_is_open(&c->ws); w++) {
            send_ping(c);
        }
    }
    run_for(b, b->warmup_s);
    b->lat.n = 0;
    b->responses = 0;
    b->measuring = true;
    double cpu0 = pid > 0 ? spk_bench_cpu_s(pid) : -1;
    double self0 = self_cpu_s();
    uint64_t t0 = uv_hrtime();
    run_for(b, b->duration_s);
    uint64_t t1 = uv_hrtime();
    double cpu1 = pid > 0 ? spk_bench_cpu_s(pid) : -1;
    double wall = (double)(t1 - t0) / 1e9;
    out->client_util = (self_cpu_s() - self0) / wall;
    b->measuring = false;
    b->pinging = false;
    run_until(b, no_inflight, 10000);
    qsort(b->lat.v, b->lat.n, sizeof(*b->lat.v), spk_bench_cmp_u64);
    out->p50_us = (double)spk_bench_percentile(b->lat.v, b->lat.n, 0.50) / 1e3;
    out->p99_us = (double)spk_bench_percentile(b->lat.v, b->lat.n, 0.99) / 1e3;
    out->p999_us = (double)spk_bench_percentile(b->lat.v, b->lat.n, 0.999) / 1e3;
    out->mps = (double)b->responses / wall;
    out->samples = b->lat.n;
    out->cpu_util = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / wall : -1;
    out->cpu_us_per_msg =
        out->cpu_util >= 0 && b->responses ? (cpu1 - cpu0) * 1e6 / (double)b->responses : -1;
}

static void close_all(bench_t *b)
{
    for (size_t i = 0; i < b->n_conns; i++) {
        spk_ws_client_close(&b->conns[i]->ws);
    }
    run_until(b, no_handles, 10000);
    for (size_t i = 0; i < b->n_conns; i++) {
        free(b->conns[i]->sent_ns);
        free(b->conns[i]);
    }
    b->n_conns = 0;
    b->n_ready = b->n_failed = 0;
    b->pending = 0;
    b->inflight_total = 0;
}

static bool open_and_wait(bench_t *b, int count, bool active, double timeout_s)
{
    size_t failed0 = b->n_failed;
    if (open_batch(b, count, active) != 0) {
        fprintf(stderr, "spreekbench: out of memory\n");
        return false;
    }
    if (!run_until(b, batch_done, (uint64_t)(timeout_s * 1000))) {
        fprintf(stderr, "spreekbench: %zu of %d connections not ready after %.0f s\n",
                b->pending + (b->open_end - b->open_next), count, timeout_s);
        return false;
    }
    return b->n_failed == failed0;
}

/* With --verbose: the phase about to start, on stderr (to time a profiler run). */
static void progress(const bench_t *b, int pid, const char *phase)
{
    if (b->verbose) {
        fprintf(stderr, "spreekbench: %.3f server pid %d: %s\n", (double)uv_hrtime() / 1e9, pid,
                phase);
    }
}

/* One round against a running server: load alone, RSS of idle connections, load with idle. */
static int run_round(bench_t *b, int pid, round_t *r)
{
    memset(r, 0, sizeof(*r));
    b->errors = b->lost = 0;
    r->rss_per_idle = -1;
    progress(b, pid, "connecting the active clients");
    bool ok = open_and_wait(b, b->clients, true, 30);
    if (ok) {
        progress(b, pid, "load");
        measure_load(b, pid, &r->alone);
    }
    if (ok && b->idle > 0) {
        run_for(b, 0.2);
        r->rss_before_kb = pid > 0 ? spk_bench_rss_kb(pid) : -1;
        progress(b, pid, "opening the idle connections");
        uint64_t t0 = uv_hrtime();
        ok = open_and_wait(b, b->idle, false, 120);
        r->idle_open_s = (double)(uv_hrtime() - t0) / 1e9;
        run_for(b, 0.5);
        r->rss_after_kb = pid > 0 ? spk_bench_rss_kb(pid) : -1;
        if (r->rss_before_kb > 0 && r->rss_after_kb > 0) {
            r->rss_per_idle = (double)(r->rss_after_kb - r->rss_before_kb) * 1024.0 / b->idle;
        }
        if (ok) {
            progress(b, pid, "load with the idle connections open");
            measure_load(b, pid, &r->with_idle);
        }
    }
    progress(b, pid, "closing");
    r->failures = b->n_failed;
    r->errors = b->errors;
    r->lost = b->lost;
    close_all(b);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- servers ---- */

typedef struct {
    uv_process_t proc;
    bool running;
    bool handle_open;
    int port;
    int pid;
} server_t;

static void server_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    s->handle_open = false;
}

static void server_exited(uv_process_t *p, int64_t status, int signum)
{
    server_t *s = p->data;
    s->running = false;
    if (status != 0 || (signum != 0 && signum != SIGTERM)) {
        fprintf(stderr, "spreekbench: server pid %d exited: status %" PRId64 " signal %d\n", s->pid,
                status, signum);
    }
    uv_close((uv_handle_t *)p, server_closed);
}

/* Starts argv (every "{port}" in it replaced by a free port) and waits until it accepts. */
static int server_start(bench_t *b, server_t *s, char **tmpl, int argc)
{
    memset(s, 0, sizeof(*s));
    s->port = spk_bench_free_port();
    char **argv = calloc((size_t)argc + 1, sizeof(char *));
    if (s->port < 0 || !argv) {
        free(argv);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        char *ph = strstr(tmpl[i], "{port}");
        argv[i] = malloc(strlen(tmpl[i]) + 8);
        if (ph && argv[i]) {
            sprintf(argv[i], "%.*s%d%s", (int)(ph - tmpl[i]), tmpl[i], s->port, ph + 6);
        } else if (argv[i]) {
            strcpy(argv[i], tmpl[i]);
        }
    }
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .file = argv[0], .args = argv, .exit_cb = server_exited, .stdio_count = 3, .stdio = stdio};
    s->proc.data = s;
    int r = uv_spawn(b->loop, &s->proc, &o);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    free(argv);
    if (r != 0) {
        fprintf(stderr, "spreekbench: cannot start %s: %s\n", tmpl[0], uv_strerror(r));
        s->handle_open = true;
        uv_close((uv_handle_t *)&s->proc, server_closed);
        return -1;
    }
    s->running = true;
    s->handle_open = true;
    s->pid = s->proc.pid;
    for (int i = 0; i < 500 && s->running && !spk_bench_port_accepts(s->port); i++) {
        run_for(b, 0.02);
    }
    return s->running && spk_bench_port_accepts(s->port) ? 0 : -1;
}

static void server_stop(bench_t *b, server_t *s)
{
    if (s->running) {
        uv_process_kill(&s->proc, SIGTERM);
        for (int i = 0; i < 1000 && s->running; i++) {
            run_for(b, 0.01);
        }
    }
    if (s->running) {
        fprintf(stderr, "spreekbench: server pid %d ignores SIGTERM: killing it\n", s->pid);
        uv_process_kill(&s->proc, SIGKILL);
    }
    while (s->running || s->handle_open) {
        run_for(b, 0.01);
    }
}

/* ---------------------------------------------------------------- report ---- */

typedef struct {
    const char *name;
    round_t rounds[MAX_ROUNDS];
    int n;
    round_t med; /* medians over the rounds, field by field */
} series_t;

#define MED_FIELD(S, F)                                                                            \
    do {                                                                                           \
        double v_[MAX_ROUNDS];                                                                     \
        for (int i_ = 0; i_ < (S)->n; i_++) {                                                      \
            v_[i_] = (double)(S)->rounds[i_].F;                                                    \
        }                                                                                          \
        (S)->med.F = spk_bench_median(v_, (S)->n);                                                 \
    } while (0)

static void series_median(series_t *s)
{
    MED_FIELD(s, alone.p50_us);
    MED_FIELD(s, alone.p99_us);
    MED_FIELD(s, alone.p999_us);
    MED_FIELD(s, alone.mps);
    MED_FIELD(s, with_idle.p50_us);
    MED_FIELD(s, with_idle.p99_us);
    MED_FIELD(s, with_idle.p999_us);
    MED_FIELD(s, with_idle.mps);
    MED_FIELD(s, alone.cpu_us_per_msg);
    MED_FIELD(s, alone.cpu_util);
    MED_FIELD(s, alone.client_util);
    MED_FIELD(s, with_idle.cpu_us_per_msg);
    MED_FIELD(s, with_idle.cpu_util);
    MED_FIELD(s, with_idle.client_util);
    MED_FIELD(s, rss_per_idle);
    MED_FIELD(s, idle_open_s);
    uint64_t f = 0, e = 0, l = 0;
    for (int i = 0; i < s->n; i++) {
        f += s->rounds[i].failures;
        e += s->rounds[i].errors;
        l += s->rounds[i].lost;
    }
    s->med.failures = f;
    s->med.errors = e;
    s->med.lost = l;
}

static void print_load(const char *name, int i, const char *what, const load_t *l)
{
    printf("%-8s round %d: %s: %8.0f msg/s  rtt p50 %7.1f us  p99 %8.1f us  p99.9 %8.1f us  "
           "server CPU %.1f us/msg (%.0f %% busy), client %.0f %% busy\n",
           name, i + 1, what, l->mps, l->p50_us, l->p99_us, l->p999_us, l->cpu_us_per_msg,
           l->cpu_util * 100, l->client_util * 100);
}

static void print_round(const bench_t *b, const char *name, int i, const round_t *r)
{
    char what[64];
    snprintf(what, sizeof(what), "%d clients", b->clients);
    print_load(name, i, what, &r->alone);
    if (b->idle > 0) {
        printf("%-8s round %d: %d idle connections opened in %.2f s, VmRSS %ld -> %ld kB: "
               "%.0f bytes per idle connection\n",
               name, i + 1, b->idle, r->idle_open_s, r->rss_before_kb, r->rss_after_kb,
               r->rss_per_idle);
        snprintf(what, sizeof(what), "%d clients + %d idle", b->clients, b->idle);
        print_load(name, i, what, &r->with_idle);
    }
    if (r->failures || r->errors || r->lost) {
        printf("%-8s round %d: %" PRIu64 " connection failures, %" PRIu64 " error answers, %" PRIu64
               " connections lost\n",
               name, i + 1, r->failures, r->errors, r->lost);
    }
    fflush(stdout);
}

typedef struct {
    const char *label;
    double a, f;
} row_t;

static void print_median_table(const bench_t *b, const series_t *s, const series_t *fl)
{
    const round_t *m = &s->med;
    const round_t *f = fl ? &fl->med : &s->med;
    row_t rows[] = {
        {"msg/s", m->alone.mps, f->alone.mps},
        {"rtt p50 (us)", m->alone.p50_us, f->alone.p50_us},
        {"rtt p99 (us)", m->alone.p99_us, f->alone.p99_us},
        {"rtt p99.9 (us)", m->alone.p999_us, f->alone.p999_us},
        {"server CPU per msg (us)", m->alone.cpu_us_per_msg, f->alone.cpu_us_per_msg},
        {"bytes per idle connection", m->rss_per_idle, f->rss_per_idle},
        {"msg/s with idle", m->with_idle.mps, f->with_idle.mps},
        {"rtt p50 with idle (us)", m->with_idle.p50_us, f->with_idle.p50_us},
        {"rtt p99 with idle (us)", m->with_idle.p99_us, f->with_idle.p99_us},
        {"rtt p99.9 with idle (us)", m->with_idle.p999_us, f->with_idle.p999_us},
        {"server CPU per msg with idle (us)", m->with_idle.cpu_us_per_msg,
         f->with_idle.cpu_us_per_msg},
    };
    printf("\nmedians of %d round(s)             %12s %12s %8s\n", s->n, s->name,
           fl ? fl->name : "", fl ? "ratio" : "");
    int nrows = b->idle > 0 ? 11 : 5;
    for (int i = 0; i < nrows; i++) {
        if (fl && rows[i].f > 0) {
            printf("%-34s %12.1f %12.1f %8.2f\n", rows[i].label, rows[i].a, rows[i].f,
                   rows[i].a / rows[i].f);
        } else {
            printf("%-34s %12.1f\n", rows[i].label, rows[i].a);
        }
    }
}

static void json_runs(const char *key, const series_t *s, bool with_idle)
{
    printf(",\"%s\":[", key);
    for (int i = 0; i < s->n; i++) {
        const load_t *l = with_idle ? &s->rounds[i].with_idle : &s->rounds[i].alone;
        printf("%s%.0f", i ? "," : "", l->mps);
    }
    printf("]");
}

static void json_series(const bench_t *b, const series_t *s)
{
    const round_t *m = &s->med;
    printf("\"msgs_per_s\":%.0f,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"rtt_p999_us\":%.1f,"
           "\"cpu_us_per_msg\":%.2f,\"cpu_util\":%.2f,\"client_cpu_util\":%.2f",
           m->alone.mps, m->alone.p50_us, m->alone.p99_us, m->alone.p999_us,
           m->alone.cpu_us_per_msg, m->alone.cpu_util, m->alone.client_util);
    json_runs("msgs_per_s_runs", s, false);
    if (b->idle > 0) {
        printf(",\"rss_per_idle_conn_bytes\":%.0f,\"idle_open_s\":%.3f,"
               "\"msgs_per_s_with_idle\":%.0f,\"rtt_p50_us_with_idle\":%.1f,"
               "\"rtt_p99_us_with_idle\":%.1f,\"rtt_p999_us_with_idle\":%.1f,"
               "\"cpu_us_per_msg_with_idle\":%.2f,\"cpu_util_with_idle\":%.2f",
               m->rss_per_idle, m->idle_open_s, m->with_idle.mps, m->with_idle.p50_us,
               m->with_idle.p99_us, m->with_idle.p999_us, m->with_idle.cpu_us_per_msg,
               m->with_idle.cpu_util);
        json_runs("msgs_per_s_with_idle_runs", s, true);
    }
    printf(",\"connect_failures\":%" PRIu64 ",\"error_answers\":%" PRIu64
           ",\"connections_lost\":%" PRIu64,
           m->failures, m->errors, m->lost);
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static void print_json(const bench_t *b, const series_t *s, const series_t *fl)
{
    const round_t *m = &s->med;
    printf("{\"clients\":%d,\"window\":%d,\"duration_s\":%g,\"warmup_s\":%g,\"repeats\":%d,"
           "\"idle_conns\":%d,",
           b->clients, b->window, b->duration_s, b->warmup_s, s->n, b->idle);
    json_series(b, s);
    if (fl) {
        const round_t *f = &fl->med;
        printf(",\"floor\":{");
        json_series(b, fl);
        printf("},\"ratio_msgs\":%.3f,\"ratio_rtt_p50\":%.3f,\"ratio_rtt_p99\":%.3f,"
               "\"ratio_cpu_per_msg\":%.3f",
               ratio(m->alone.mps, f->alone.mps), ratio(m->alone.p50_us, f->alone.p50_us),
               ratio(m->alone.p99_us, f->alone.p99_us),
               ratio(m->alone.cpu_us_per_msg, f->alone.cpu_us_per_msg));
        if (b->idle > 0) {
            printf(",\"ratio_msgs_with_idle\":%.3f,\"ratio_cpu_per_msg_with_idle\":%.3f,"
                   "\"ratio_rss_per_idle_conn\":%.3f",
                   ratio(m->with_idle.mps, f->with_idle.mps),
                   ratio(m->with_idle.cpu_us_per_msg, f->with_idle.cpu_us_per_msg),
                   ratio(m->rss_per_idle, f->rss_per_idle));
        }
    }
    printf("}\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- main ---- */

typedef struct {
    char **server_argv; /* after "--" */
    int server_argc;
    const char *target; /* HOST:PORT of a running server */
    int target_pid;
    bool floor;
    int floor_port; /* >= 0: run as the floor server */
} opts_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: spreekbench [options] -- SERVER_COMMAND... (\"{port}\" is replaced)\n"
                 "       spreekbench [options] --target 127.0.0.1:PORT [--pid PID]\n"
                 "       spreekbench --floor-server PORT\n"
                 "\n"
                 "  --clients N              active clients, each with pings in flight (1000)\n"
                 "  --window N               pings in flight per active client (1)\n"
                 "  --duration S             measured seconds per load phase (10)\n"
                 "  --warmup S               seconds of load before measuring (2)\n"
                 "  --idle N                 idle connections, 0 to skip (10000)\n"
                 "  --repeat N               rounds; medians are reported (3)\n"
                 "  --connect-concurrency N  upgrades in progress at once (256)\n"
                 "  --no-floor               do not measure the built-in floor server\n"
                 "  --verbose                print each phase as it starts on stderr\n"
                 "  --target HOST:PORT       measure a running server instead of starting one\n"
                 "  --pid PID                its process id, for VmRSS (with --target)\n"
                 "  --floor-server PORT      run only the floor server\n");
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_opt(bench_t *b, opts_t *o, const char *k, const char *v)
{
    double x;
    struct {
        const char *name;
        int *ival;
        double *dval;
        double lo, hi;
    } nums[] = {
        {"--clients", &b->clients, NULL, 1, 100000},
        {"--window", &b->window, NULL, 1, 1000},
        {"--idle", &b->idle, NULL, 0, 1000000},
        {"--repeat", &b->repeat, NULL, 1, MAX_ROUNDS},
        {"--connect-concurrency", &b->concurrency, NULL, 1, 100000},
        {"--pid", &o->target_pid, NULL, 1, 1e9},
        {"--floor-server", &o->floor_port, NULL, 0, 65535},
        {"--duration", NULL, &b->duration_s, 0.1, 3600},
        {"--warmup", NULL, &b->warmup_s, 0, 3600},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(k, nums[i].name) == 0) {
            if (parse_num(v, nums[i].lo, nums[i].hi, &x) != 0) {
                fprintf(stderr, "spreekbench: bad value for %s: %s\n", k, v);
                return -1;
            }
            if (nums[i].ival) {
                *nums[i].ival = (int)x;
            } else {
                *nums[i].dval = x;
            }
            return 0;
        }
    }
    if (strcmp(k, "--target") == 0) {
        o->target = v;
        return 0;
    }
    fprintf(stderr, "spreekbench: unknown option %s (see --help)\n", k);
    return -1;
}

/* Returns 0 to run, 1 to exit 0, -1 to exit 2. */
static int parse_args(bench_t *b, opts_t *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            o->server_argv = argv + i + 1;
            o->server_argc = argc - i - 1;
            break;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--no-floor") == 0) {
            o->floor = false;
            continue;
        }
        if (strcmp(argv[i], "--verbose") == 0) {
            b->verbose = true;
            continue;
        }
        if (i + 1 >= argc || parse_opt(b, o, argv[i], argv[i + 1]) != 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "spreekbench: %s needs a value\n", argv[i]);
            }
            return -1;
        }
        i++;
    }
    if (o->floor_port < 0 && (o->server_argc > 0) == (o->target != NULL)) {
        fprintf(stderr, "spreekbench: give either -- SERVER_COMMAND or --target (see --help)\n");
        return -1;
    }
    return 0;
}

static int bench_init(bench_t *b, const char *host_port)
{
    char host[64];
    int port = 0;
    b->loop = uv_default_loop();
    uv_timer_init(b->loop, &b->deadline);
    uv_timer_init(b->loop, &b->tick);
    b->deadline.data = b->tick.data = b;
    b->rng = uv_hrtime() | 1;
    if (!host_port) {
        return 0;
    }
    const char *colon = strrchr(host_port, ':');
    if (!colon || colon - host_port >= (long)sizeof(host)) {
        return -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - host_port), host_port);
    port = atoi(colon + 1);
    snprintf(b->host_port, sizeof(b->host_port), "%s", host_port);
    return uv_ip4_addr(host, port, &b->addr);
}

static void set_target_port(bench_t *b, int port)
{
    uv_ip4_addr("127.0.0.1", port, &b->addr);
    snprintf(b->host_port, sizeof(b->host_port), "127.0.0.1:%d", port);
}

/* One round of the series: starts its server when it has a command, measures, stops it. */
static int series_round(bench_t *b, series_t *s, char **argv, int argc, int pid)
{
    static server_t srv;
    round_t *r = &s->rounds[s->n];
    if (argc > 0) {
        if (server_start(b, &srv, argv, argc) != 0) {
            fprintf(stderr, "spreekbench: %s did not start\n", s->name);
            server_stop(b, &srv);
            return -1;
        }
        set_target_port(b, srv.port);
        pid = srv.pid;
    }
    int rc = run_round(b, pid, r);
    if (argc > 0) {
        server_stop(b, &srv);
    }
    print_round(b, s->name, s->n, r);
    s->n++;
    return rc;
}

static int run_bench(bench_t *b, const opts_t *o)
{
    static series_t main_s, floor_s;
    main_s.name = "spreekd";
    floor_s.name = "floor";
    char exe[4096];
    size_t exe_len = sizeof(exe);
    if (uv_exepath(exe, &exe_len) != 0) {
        return -1;
    }
    char *floor_argv[] = {exe, "--floor-server", "{port}"};
    printf("spreekbench: %d active clients (window %d), %d idle connections, %g s warm-up + "
           "%g s per load phase, %d round(s); RLIMIT_NOFILE %llu\n",
           b->clients, b->window, b->idle, b->warmup_s, b->duration_s, b->repeat,
           (unsigned long long)nofile_limit());
    if (o->target && o->target_pid > 0 && b->repeat > 1 && b->idle > 0) {
        printf("note: with --target every round reuses one server process; VmRSS deltas after "
               "the first round reuse freed memory\n");
    }
    int rc = 0;
    for (int i = 0; i < b->repeat; i++) {
        if (series_round(b, &main_s, o->server_argv, o->server_argc, o->target_pid) != 0) {
            rc = -1;
        }
        if (o->floor && series_round(b, &floor_s, floor_argv, 3, 0) != 0) {
            rc = -1;
        }
    }
    series_median(&main_s);
    if (o->floor) {
        series_median(&floor_s);
    }
    print_median_table(b, &main_s, o->floor ? &floor_s : NULL);
    print_json(b, &main_s, o->floor ? &floor_s : NULL);
    return rc;
}

int main(int argc, char **argv)
{
    static bench_t b = {.clients = 1000,
                        .window = 1,
                        .idle = 10000,
                        .repeat = 3,
                        .concurrency = 256,
                        .duration_s = 10,
                        .warmup_s = 2};
    opts_t o = {.floor = true, .floor_port = -1};
    signal(SIGPIPE, SIG_IGN);
    int pr = parse_args(&b, &o, argc, argv);
    if (pr != 0) {
        return pr > 0 ? 0 : 2;
    }
    if (o.floor_port >= 0) {
        return floor_main(o.floor_port);
    }
    raise_nofile((rlim_t)(b.clients + b.idle) * 2 + 1024);
    if (nofile_limit() < (rlim_t)(b.clients + b.idle) + 64) {
        fprintf(stderr, "spreekbench: RLIMIT_NOFILE %llu is too low for %d connections\n",
                (unsigned long long)nofile_limit(), b.clients + b.idle);
        return 2;
    }
    if (bench_init(&b, o.target) != 0) {
        fprintf(stderr, "spreekbench: bad --target %s (want IPv4 HOST:PORT)\n", o.target);
        return 2;
    }
    return run_bench(&b, &o) == 0 ? 0 : 1;
}
