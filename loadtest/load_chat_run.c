/* spreekload --chat: the measured steps. Each step offers a rate of application messages (all
 * conversations together, round robin over every device), encrypted with spk_mls before the
 * step starts so that the client's CPU goes to the protocol; recipients record each entry's
 * arrival (and in sample conversations keep the ciphertext, decrypted and checked after the
 * step; with --decrypt-all every device decrypts as messages arrive). Per step: messages the
 * service acknowledged (stored and durable) and deliveries per second inside the window,
 * end-to-end latency from send to the last recipient's receipt, spreekd's CPU per message
 * (/proc/<pid>/stat). With --crash-after, spreekd is killed with SIGKILL during the first step
 * and restarted; the devices reconnect and sync, and at the end every acknowledged message
 * must have reached every other device of its conversation exactly once. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "load_chat_int.h"
#include "spk/util.h"

void lc_dev_ready(lc_t *L, lc_dev_t *v);

static lc_t *lc_of(cdev_t *d)
{
    return d->env->data;
}

/* ---- per-seq bookkeeping ---- */

static lc_slot_t *slot(lc_conv_t *cv, int64_t seq)
{
    if (seq <= 0) {
        return NULL;
    }
    if ((size_t)seq >= cv->cap_slots) {
        size_t ncap = cv->cap_slots ? cv->cap_slots : 256;
        while (ncap <= (size_t)seq) {
            ncap *= 2;
        }
        lc_slot_t *n = realloc(cv->slots, ncap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        for (size_t i = cv->cap_slots; i < ncap; i++) {
            n[i] = (lc_slot_t){.sender = -1, .step = -1};
        }
        cv->slots = n;
        cv->cap_slots = ncap;
    }
    return &cv->slots[seq];
}

static bool bit_set(uint8_t **bits, size_t *cap, size_t i)
{
    if (i / 8 >= *cap) {
        size_t ncap = *cap ? *cap : 64;
        while (ncap <= i / 8) {
            ncap *= 2;
        }
        uint8_t *n = realloc(*bits, ncap);
        if (n == NULL) {
            return false;
        }
        memset(n + *cap, 0, ncap - *cap);
        *bits = n;
        *cap = ncap;
    }
    bool was = ((*bits)[i / 8] >> (i % 8)) & 1;
    (*bits)[i / 8] |= (uint8_t)(1u << (i % 8));
    return was;
}

static bool bit_get(const uint8_t *bits, size_t cap, size_t i)
{
    return i / 8 < cap && ((bits[i / 8] >> (i % 8)) & 1);
}

/* A recipient has the entry (decrypted or not). */
static void received(lc_t *L, lc_conv_t *cv, int64_t seq, uint64_t t)
{
    lc_slot_t *s = slot(cv, seq);
    if (s == NULL) {
        return;
    }
    s->n_recv++;
    if (t > s->t_last) {
        s->t_last = t;
    }
    if (L->sending) {
        L->steps[L->step].delivered++;
    }
}

/* Checks a plaintext "c<conv> d<dev> n<msgno> ...": what this conversation's device sent. */
static void handed_over(lc_t *L, lc_dev_t *v, int64_t seq, const uint8_t *pt, size_t n)
{
    lc_conv_t *cv = v->cv;
    char buf[64];
    size_t m = n < sizeof(buf) - 1 ? n : sizeof(buf) - 1;
    memcpy(buf, pt, m);
    buf[m] = '\0';
    int c = -1, dv = -1;
    unsigned msgno = 0;
    lc_slot_t *s = slot(cv, seq);
    if (sscanf(buf, "c%d d%d n%u", &c, &dv, &msgno) != 3 || c != cv->idx || dv < 0 || dv >= cv->n ||
        dv == v->idx || (s != NULL && s->sender >= 0 && s->sender != dv)) {
        v->bad_text++;
        L->verify_errors++;
        lc_error(L, "conversation %d device %d: seq %lld is not what was sent: %.40s", cv->idx,
                 v->idx, (long long)seq, buf);
        return;
    }
    if (bit_set(&v->got, &v->cap_got, (size_t)seq)) {
        v->app_dups++;
    }
    /* (sender, msgno) at most once to the application */
    size_t per = 1u << 16;
    if (msgno < per && bit_set(&v->msgs, &v->msgs_per_sender, (size_t)dv * per + msgno)) {
        v->app_dups++;
        L->verify_errors++;
        lc_error(L, "conversation %d device %d: message d%d n%u twice", cv->idx, v->idx, dv, msgno);
    }
}

/* ---- device callbacks ---- */

static void on_message(cdev_t *d, cdev_conv_t *c, int64_t seq, const char *sender,
                       const uint8_t *pt, size_t n, uint64_t t_ns)
{
    (void)sender;
    lc_t *L = lc_of(d);
    lc_dev_t *v = d->data;
    lc_conv_t *cv = c->data;
    if (cv == NULL) {
        return;
    }
    received(L, cv, seq, t_ns);
    handed_over(L, v, seq, pt, n);
}

static void on_receipt(cdev_t *d, cdev_conv_t *c, int64_t seq, const uint8_t *msg, size_t n,
                       uint64_t t_ns)
{
    lc_t *L = lc_of(d);
    lc_dev_t *v = d->data;
    lc_conv_t *cv = c->data;
    if (cv == NULL) {
        return;
    }
    received(L, cv, seq, t_ns);
    if (cv->sample) {
        if (v->n_rx == v->cap_rx) {
            size_t ncap = v->cap_rx ? v->cap_rx * 2 : 256;
            lc_rx_t *nr = realloc(v->rx, ncap * sizeof(*nr));
            if (nr == NULL) {
                return;
            }
            v->rx = nr;
            v->cap_rx = ncap;
        }
        uint8_t *p = malloc(n);
        if (p != NULL) {
            memcpy(p, msg, n);
            v->rx[v->n_rx++] = (lc_rx_t){seq, p, n};
        }
    }
}

static void sync_done(cdev_t *d, void *ud, const char *code, json_t *m)
{
    lc_dev_t *v = ud;
    lc_t *L = lc_of(d);
    if (code != NULL) {
        if (strcmp(code, "disconnected") != 0) {
            L->setup_errors++;
            lc_error(L, "chat.sync: %s", code);
        }
        return;
    }
    bool more = false;
    json_t *list = json_object_get(m, "conversations");
    for (size_t i = 0; i < json_array_size(list); i++) {
        more |= json_is_true(json_object_get(json_array_get(list, i), "more"));
    }
    if (more) {
        cdev_ack_flush(d); /* then the next batch */
        cdev_sync(d, NULL, sync_done, v);
        return;
    }
    v->synced = true;
    lc_advance(v->cv);
}

static void on_ready(cdev_t *d)
{
    lc_t *L = lc_of(d);
    lc_dev_t *v = d->data;
    v->ready = true;
    if (L->crashed) {
        L->reconnects++;
    }
    lc_dev_ready(L, v);
    cdev_sync(d, NULL, sync_done, v);
}

static void on_joined(cdev_t *d, cdev_conv_t *c)
{
    lc_dev_t *v = d->data;
    if (strcmp(c->id, v->cv->id) == 0) {
        v->joined = true;
        c->data = v->cv;
        c->decrypt = lc_of(d)->decrypt_all;
        lc_advance(v->cv);
    }
}

static void on_end(cdev_t *d, const char *why)
{
    lc_t *L = lc_of(d);
    if (L->closing) {
        return;
    }
    lc_dev_t *v = d->data;
    bool was_ready = v->ready;
    v->ready = false;
    v->synced = false;
    if (!was_ready) {
        lc_dev_ready(L, v); /* no longer connecting */
    }
    if (L->crashed) {
        lc_dev_start(L, v); /* the server is back: reconnect and sync */
        return;
    }
    L->lost++;
    lc_error(L, "conversation %d device %d: connection ended: %s", v->cv->idx, v->idx, why);
}

static void on_error(cdev_t *d, const char *what)
{
    lc_t *L = lc_of(d);
    lc_dev_t *v = d->data;
    lc_error(L, "conversation %d device %d: %s", v->cv->idx, v->idx, what);
}

const cdev_cbs_t lc_cbs = {.message_cb = on_message,
                           .receipt_cb = on_receipt,
                           .joined_cb = on_joined,
                           .ready_cb = on_ready,
                           .end_cb = on_end,
                           .error_cb = on_error};

/* ---- a step ---- */

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Encrypts every device's messages of the step, yielding to the loop now and then. */
static int prepare(lc_t *L, int k, size_t per_dev)
{
    char *pt = malloc(L->size + 1);
    if (pt == NULL) {
        return -1;
    }
    uint64_t last = spk_mono_ns();
    for (size_t i = 0; i < L->n_all; i++) {
        lc_dev_t *v = L->all[i];
        for (size_t j = v->qi; j < v->qn; j++) {
            free(v->q[j]);
        }
        free(v->q);
        v->q = calloc(per_dev, sizeof(*v->q));
        v->qn = v->qi = 0;
        if (v->q == NULL) {
            free(pt);
            return -1;
        }
        for (size_t j = 0; j < per_dev; j++) {
            int n = snprintf(pt, L->size + 1, "c%d d%d n%u ", v->cv->idx, v->idx, v->next_msgno++);
            memset(pt + n, 'x', L->size - (size_t)n);
            if (cdev_encrypt_b64(v->d, v->cv->id, (const uint8_t *)pt, L->size, &v->q[v->qn]) !=
                0) {
                L->send_errors++;
                break;
            }
            v->qn++;
        }
        if (spk_mono_ns() - last > 50000000) {
            uv_run(&L->loop, UV_RUN_NOWAIT); /* pings, acks */
            last = spk_mono_ns();
        }
    }
    free(pt);
    fprintf(stderr, "spreekload: step %d: %zu messages per device encrypted\n", k, per_dev);
    return 0;
}

static void send_done(cdev_t *d, void *ud, const char *code, json_t *m)
{
    lc_t *L = lc_of(d);
    lc_send_t *snd = ud;
    lc_dev_t *v = snd->dev;
    L->in_flight--;
    if (code != NULL && strcmp(code, "unavailable") == 0) {
        /* back-pressure: refused unstored (docs/protocol.md chat.send); counted, not an error */
        L->steps[L->step >= 0 ? L->step : L->n_rates - 1].shed++;
        return;
    }
    if (code != NULL) {
        if (strcmp(code, "disconnected") != 0 || (!L->crashed && !L->closing)) {
            L->send_errors++;
            lc_error(L, "chat.send: %s %s", code, cdev_str(m, "message"));
        }
        return;
    }
    int64_t seq = (int64_t)json_integer_value(json_object_get(m, "seq"));
    lc_slot_t *s = slot(v->cv, seq);
    if (s == NULL) {
        return;
    }
    s->t_send = snd->t_send;
    s->sender = (int8_t)v->idx;
    s->step = (int8_t)(L->step >= 0 ? L->step : L->n_rates - 1);
    s->acked = true;
    if (L->sending) {
        L->steps[L->step].acked++;
    }
}

static void pace(lc_t *L, uint64_t now)
{
    lc_step_t *st = &L->steps[L->step];
    uint64_t target = (uint64_t)(st->rate * (double)(now - st->t0) / 1e9);
    size_t idle = 0;
    while (st->sent + st->offline < target && idle < L->n_all && L->n_sends < L->cap_sends) {
        lc_dev_t *v = L->all[L->rr];
        L->rr = (L->rr + 1) % L->n_all;
        if (v->qi >= v->qn) {
            idle++;
            continue;
        }
        idle = 0;
        char *b64 = v->q[v->qi];
        v->q[v->qi++] = NULL;
        if (!v->synced) {
            st->offline++; /* its turn came while it was offline: not sent */
            free(b64);
            continue;
        }
        lc_send_t *snd = &L->sends[L->n_sends++];
        snd->dev = v;
        snd->t_send = uv_hrtime();
        L->in_flight++;
        st->sent++;
        cdev_send_b64(v->d, v->cv->id, b64, send_done, snd);
        free(b64);
    }
}

static void pace_cb(uv_timer_t *t)
{
    lc_t *L = t->data;
    uint64_t now = uv_hrtime();
    if (!L->sending) {
        return;
    }
    lc_step_t *st = &L->steps[L->step];
    if (L->crash_after_s > 0 && !L->crashed && now - st->t0 >= (uint64_t)(L->crash_after_s * 1e9)) {
        fprintf(stderr, "spreekload: kill -9 spreekd (pid %d) after %.1f s\n", L->pid,
                (double)(now - st->t0) / 1e9);
        lc_server_kill(L);
        L->crashed = true;
        L->crash_at_ns = now;
        if (lc_server_start(L) != 0) {
            lc_error(L, "spreekd did not restart");
            L->verify_errors++;
        }
        fprintf(stderr, "spreekload: spreekd restarted (pid %d)\n", L->pid);
        /* The devices notice their connections ended and reconnect (on_end). */
    }
    if (now - st->t0 >= (uint64_t)(L->duration_s * 1e9)) {
        L->sending = false;
        st->t1 = now;
        st->cpu1 = spk_bench_cpu_s(L->pid);
        st->ctl1 = lc_control_cpu_s(L->pid);
        st->wait1 = spk_bench_task_wait_s(L->pid, L->pid);
        st->self1 = self_cpu_s();
        return;
    }
    pace(L, now);
}

/* Every acknowledged message of the step has reached every other device. */
static bool drained(lc_t *L)
{
    if (L->in_flight > 0 || L->sending) {
        return false;
    }
    for (int c = 0; c < L->conversations; c++) {
        lc_conv_t *cv = &L->cs[c];
        for (size_t s = 1; s < cv->cap_slots; s++) {
            if (cv->slots[s].acked && cv->slots[s].n_recv < cv->n - 1) {
                return false;
            }
        }
    }
    return true;
}

static bool not_sending(lc_t *L)
{
    return !L->sending;
}

/* Decrypts what the sample conversations' devices kept, in seq order, and checks it. */
static uint64_t verify_sample(lc_t *L)
{
    uint64_t checked = 0;
    for (int c = 0; c < L->conversations; c++) {
        lc_conv_t *cv = &L->cs[c];
        for (int i = 0; cv->sample && i < cv->n; i++) {
            lc_dev_t *v = &cv->devs[i];
            cdev_conv_t *dc = cdev_conv(v->d, cv->id, false);
            for (size_t j = 0; j < v->n_rx; j++) {
                spk_mls_event_t ev;
                memset(&ev, 0, sizeof(ev));
                int rc = dc != NULL && dc->g != NULL
                             ? spk_mls_process(dc->g, v->rx[j].p, v->rx[j].n, &ev)
                             : -1;
                if (rc != 0 || ev.type != SPK_MLS_EVENT_APPLICATION) {
                    L->verify_errors++;
                    lc_error(L, "conversation %d device %d: seq %lld does not decrypt (%d)",
                             cv->idx, i, (long long)v->rx[j].seq, rc);
                } else {
                    handed_over(L, v, v->rx[j].seq, ev.data.p, ev.data.n);
                    checked++;
                }
                spk_mls_buf_free(&ev.data);
                free(v->rx[j].p);
            }
            v->n_rx = 0;
        }
    }
    return checked;
}

typedef struct {
    uint64_t *e2e, *each;
    size_t n_e2e, n_each, incomplete;
} lat_t;

static void latencies(lc_t *L, int k, lat_t *o)
{
    memset(o, 0, sizeof(*o));
    size_t cap = L->n_sends + 1;
    o->e2e = calloc(cap, sizeof(uint64_t));
    for (int c = 0; o->e2e != NULL && c < L->conversations; c++) {
        lc_conv_t *cv = &L->cs[c];
        for (size_t s = 1; s < cv->cap_slots; s++) {
            lc_slot_t *x = &cv->slots[s];
            if (!x->acked || x->step != k) {
                continue;
            }
            if (x->n_recv < cv->n - 1 || x->t_last < x->t_send) {
                o->incomplete++;
            } else if (o->n_e2e < cap) {
                o->e2e[o->n_e2e++] = (x->t_last - x->t_send) / 1000;
            }
        }
    }
    if (o->e2e != NULL) {
        qsort(o->e2e, o->n_e2e, sizeof(uint64_t), spk_bench_cmp_u64);
    }
}

static json_t *step_json(lc_t *L, int k, uint64_t checked)
{
    lc_step_t *st = &L->steps[k];
    double wall = (double)(st->t1 - st->t0) / 1e9;
    /* after a restart the CPU time is another process's */
    double cpu = st->cpu0 >= 0 && st->cpu1 >= 0 && !L->crashed ? st->cpu1 - st->cpu0 : -1;
    double ctl = st->ctl0 >= 0 && st->ctl1 >= 0 && !L->crashed ? st->ctl1 - st->ctl0 : -1;
    lat_t lt;
    latencies(L, k, &lt);
    json_t *o = json_object();
    json_object_set_new(o, "rate_offered", json_real(st->rate));
    json_object_set_new(o, "seconds", json_real(wall));
    json_object_set_new(o, "sent", json_integer((json_int_t)st->sent));
    json_object_set_new(o, "not_sent_offline", json_integer((json_int_t)st->offline));
    json_object_set_new(o, "refused_unavailable", json_integer((json_int_t)st->shed));
    json_object_set_new(o, "acknowledged_in_window", json_integer((json_int_t)st->acked));
    json_object_set_new(o, "messages_per_s", json_real(wall > 0 ? (double)st->acked / wall : 0));
    json_object_set_new(o, "deliveries_per_s",
                        json_real(wall > 0 ? (double)st->delivered / wall : 0));
    json_object_set_new(o, "e2e_p50_us",
                        json_integer((json_int_t)spk_bench_percentile(lt.e2e, lt.n_e2e, 0.5)));
    json_object_set_new(o, "e2e_p99_us",
                        json_integer((json_int_t)spk_bench_percentile(lt.e2e, lt.n_e2e, 0.99)));
    json_object_set_new(o, "e2e_max_us",
                        json_integer((json_int_t)(lt.n_e2e ? lt.e2e[lt.n_e2e - 1] : 0)));
    json_object_set_new(o, "e2e_samples", json_integer((json_int_t)lt.n_e2e));
    json_object_set_new(o, "incomplete", json_integer((json_int_t)lt.incomplete));
    json_object_set_new(o, "spreekd_cpu_s", json_real(cpu));
    json_object_set_new(o, "spreekd_cpu_util", json_real(wall > 0 && cpu >= 0 ? cpu / wall : -1));
    json_object_set_new(o, "spreekd_cpu_us_per_message",
                        json_real(cpu >= 0 && st->acked ? cpu * 1e6 / (double)st->acked : -1));
    json_object_set_new(o, "control_thread_util",
                        json_real(wall > 0 && ctl >= 0 ? ctl / wall : -1));
    json_object_set_new(o, "control_thread_us_per_message",
                        json_real(ctl >= 0 && st->acked ? ctl * 1e6 / (double)st->acked : -1));
    /* CPU the control thread wanted and did not get (a shared machine) */
    json_object_set_new(
        o, "control_thread_runqueue_wait_s",
        json_real(st->wait0 >= 0 && st->wait1 >= 0 && !L->crashed ? st->wait1 - st->wait0 : -1));
    json_object_set_new(o, "client_cpu_util",
                        json_real(wall > 0 ? (st->self1 - st->self0) / wall : 0));
    json_object_set_new(o, "sample_checked", json_integer((json_int_t)checked));
    free(lt.e2e);
    return o;
}

/* After a crash: every acknowledged message reached every other device exactly once. */
static json_t *verify_delivery(lc_t *L)
{
    uint64_t acked = 0, missing = 0, dups = 0, bad = 0, before = 0;
    for (int c = 0; c < L->conversations; c++) {
        lc_conv_t *cv = &L->cs[c];
        for (size_t s = 1; s < cv->cap_slots; s++) {
            lc_slot_t *x = &cv->slots[s];
            if (!x->acked) {
                continue;
            }
            acked++;
            before += x->t_send < L->crash_at_ns;
            for (int i = 0; i < cv->n; i++) {
                if (i != x->sender && !bit_get(cv->devs[i].got, cv->devs[i].cap_got, s)) {
                    missing++;
                    if (missing <= 5) {
                        lc_error(L, "conversation %d: acknowledged seq %zu never reached device %d",
                                 cv->idx, s, i);
                    }
                }
            }
        }
        for (int i = 0; i < cv->n; i++) {
            dups += cv->devs[i].app_dups;
            bad += cv->devs[i].bad_text;
        }
    }
    L->verify_errors += missing;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "acknowledged", (json_int_t)acked,
                     "acknowledged_before_kill", (json_int_t)before, "missing", (json_int_t)missing,
                     "twice_to_application", (json_int_t)dups, "wrong_text", (json_int_t)bad,
                     "skipped_seen", (json_int_t)L->env.skipped, "reconnects",
                     (json_int_t)L->reconnects);
}

void lc_lost_json(lc_t *L, json_t *out)
{
    json_object_set_new(out, "connections_lost", json_integer((json_int_t)L->lost));
    /* connections spreekd closed for an incomplete request head (408): a device lost while
     * connecting shows here when the server or this client was held past the header timeout */
    json_object_set_new(out, "header_timeouts",
                        json_real(spk_bench_metric(
                            L->port, "spk_connections_rejected_total{reason=\"header_timeout\"}")));
}

int lc_run_steps(lc_t *L, json_t *out)
{
    uv_timer_t *pacer = &L->pacer;
    uv_timer_init(&L->loop, pacer);
    pacer->data = L;
    json_t *steps = json_array();
    json_object_set_new(out, "conversations", json_integer(L->conversations));
    json_object_set_new(out, "devices_per_conversation", json_integer(L->k));
    json_object_set_new(out, "kind", json_string(L->kind));
    json_object_set_new(out, "plaintext_bytes", json_integer((json_int_t)L->size));
    json_object_set_new(out, "ack_ms", json_integer(L->ack_ms));
    json_object_set_new(out, "spreekd_pid", json_integer(L->pid));
    lc_run_until(L, NULL, 500);
    for (int k = 0; k < L->n_rates; k++) {
        lc_step_t *st = &L->steps[k];
        st->rate = L->rates[k];
        size_t per_dev = (size_t)(st->rate * L->duration_s / (double)L->n_all) + 2;
        if (L->in_flight > 0 && L->sends != NULL) {
            /* answers of the last step still to come: keep what they point into */
            lc_send_t **r = realloc(L->retired, (L->n_retired + 1) * sizeof(*r));
            if (r == NULL) {
                break;
            }
            L->retired = r;
            L->retired[L->n_retired++] = L->sends;
        } else {
            free(L->sends);
        }
        L->cap_sends = per_dev * L->n_all;
        L->n_sends = 0;
        L->sends = calloc(L->cap_sends, sizeof(*L->sends));
        if (L->sends == NULL || prepare(L, k, per_dev) != 0) {
            break;
        }
        lc_run_until(L, NULL, 300);
        fprintf(stderr, "spreekload: step %d: %.0f messages/s for %.0f s\n", k, st->rate,
                L->duration_s);
        L->step = k;
        L->rr = 0;
        st->t0 = uv_hrtime();
        st->cpu0 = spk_bench_cpu_s(L->pid);
        st->ctl0 = lc_control_cpu_s(L->pid);
        st->wait0 = spk_bench_task_wait_s(L->pid, L->pid);
        st->self0 = self_cpu_s();
        L->sending = true;
        uv_timer_start(pacer, pace_cb, 1, 1);
        lc_run_until(L, not_sending, L->duration_s * 1000 + 5000);
        uv_timer_stop(pacer);
        double drain_ms = L->drain_timeout_s > 0 ? L->drain_timeout_s * 1000 : 20000;
        bool ok = lc_run_until(L, drained, L->crashed && drain_ms < 60000 ? 60000 : drain_ms);
        if (!ok) {
            fprintf(stderr, "spreekload: step %d: not every message arrived\n", k);
        }
        uint64_t checked = verify_sample(L);
        json_t *sj = step_json(L, k, checked);
        L->incomplete += (uint64_t)json_integer_value(json_object_get(sj, "incomplete"));
        json_array_append_new(steps, sj);
        L->step = -1;
    }
    json_object_set_new(out, "steps", steps);
    json_object_set_new(out, "send_errors", json_integer((json_int_t)L->send_errors));
    json_object_set_new(out, "entry_errors", json_integer((json_int_t)L->env.entry_errors));
    lc_lost_json(L, out);
    if (L->crash_after_s > 0 || L->decrypt_all) {
        json_object_set_new(out, "delivery", verify_delivery(L));
    }
    json_object_set_new(out, "verify_errors", json_integer((json_int_t)L->verify_errors));
    uint64_t shed = 0;
    for (int k = 0; k < L->n_rates; k++) {
        shed += L->steps[k].shed;
    }
    json_object_set_new(out, "refused_unavailable", json_integer((json_int_t)shed));
    double deferred = spk_bench_metric(L->port, "spk_rx_deferred_total");
    json_object_set_new(out, "deferred_messages", json_real(deferred));
    json_object_set_new(out, "unanswered", json_integer((json_int_t)L->in_flight));
    if (L->in_flight > 0) {
        lc_error(L, "%zu chat.send requests were never answered", L->in_flight);
    }
    bool fail = L->verify_errors > 0 || L->env.entry_errors > 0 || L->send_errors > 0 ||
                L->lost > 0 || L->setup_errors > 0 || L->incomplete > 0 || L->in_flight > 0 ||
                (L->expect_deferred && deferred <= 0);
    if (L->crash_after_s > 0) {
        json_t *dl = json_object_get(out, "delivery");
        fail |= !L->crashed || L->reconnects == 0 ||
                json_integer_value(json_object_get(dl, "acknowledged_before_kill")) == 0;
    }
    return fail ? 1 : 0;
}
