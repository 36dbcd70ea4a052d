/* Webhook delivery (spk/webhook.h): a poll timer on the control thread, worker threads for the
 * network, results back through a uv_async. */
#include "spk/webhook.h"

#include <inttypes.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/map.h"
#include "spk/util.h"

#define POLL_MS 100
#define BACKOFF_MAX_MS 300000 /* 5 minutes */

typedef struct job {
    struct job *next;
    char integration[SPK_ID_LEN];
    int64_t row;
    int attempts;
    char url[SPK_URL_LEN];
    char *headers, *body;
    int result; /* status code or negative SPK_E* */
    char why[160];
} job_t;

struct spk_webhooks {
    uv_loop_t *loop;
    const spk_config_t *cfg;
    spk_store_t *st;
    uv_timer_t timer;
    uv_async_t async;
    int open_handles;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *todo, *todo_tail; /* for the workers */
    job_t *done;             /* for the control thread */
    bool stop;
    spk_map_t busy; /* integration id -> (void *)1 while a delivery is in flight */
    int64_t last_expire;
    spk_webhooks_stats_t stats;
};

int64_t spk_webhook_backoff_ms(int attempts)
{
    if (attempts < 1) {
        return 0;
    }
    return attempts > 9 ? BACKOFF_MAX_MS
                        : (1000LL << (attempts - 1) < BACKOFF_MAX_MS ? 1000LL << (attempts - 1)
                                                                     : BACKOFF_MAX_MS);
}

static void job_free(job_t *j)
{
    if (j != NULL) {
        free(j->headers);
        free(j->body);
        free(j);
    }
}

static void *worker(void *arg)
{
    spk_webhooks_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->todo == NULL) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->stop) {
            break;
        }
        job_t *j = w->todo;
        w->todo = j->next;
        if (w->todo == NULL) {
            w->todo_tail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        j->why[0] = '\0';
        j->result = spk_webhook_post(j->url, j->headers, j->body, w->cfg->webhook_timeout_ms,
                                     w->cfg->webhook_ca_file, j->why, sizeof(j->why));
        pthread_mutex_lock(&w->mu);
        j->next = w->done;
        w->done = j;
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* "t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>" */
static void sign(const uint8_t secret[32], int64_t t, const char *body, char *out, size_t cap)
{
    size_t bl = strlen(body);
    char *msg = malloc(bl + 32);
    unsigned char mac[32];
    unsigned int ml = 0;
    bool ok = false;
    if (msg != NULL) {
        int tl = snprintf(msg, 32, "%" PRId64 ".", t);
        memcpy(msg + tl, body, bl);
        ok = HMAC(EVP_sha256(), secret, 32, (const unsigned char *)msg, (size_t)tl + bl, mac,
                  &ml) != NULL;
        free(msg);
    }
    char hex[65] = "";
    if (ok) {
        spk_hex_encode(hex, mac, 32);
    }
    snprintf(out, cap, "t=%" PRId64 ",v1=%s", t, hex);
}

/* The request for the integration's oldest event, or NULL when none is due (now_ms). */
static job_t *next_job(spk_webhooks_t *w, const spk_integration_rec_t *in, int64_t now_ms)
{
    spk_webhook_rec_t ev;
    uint64_t seen = spk_store_last_ticket(w->st);
    if (spk_store_webhook_head(w->st, in->id, &ev) != 0 || ev.next_at_ms > now_ms) {
        return NULL;
    }
    if (spk_store_durable(w->st) < seen) {
        return NULL; /* its commit may not be on disk yet: next poll */
    }
    json_t *o = json_loads(ev.event, 0, NULL);
    if (o == NULL) {
        spk_store_webhook_done(w->st, ev.id); /* cannot happen: the core wrote it */
        return NULL;
    }
    json_object_set_new(o, "seq", json_integer(ev.seq));
    json_object_set_new(o, "attempt", json_integer(ev.attempts + 1));
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        json_decref(o);
        return NULL;
    }
    j->body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    const char *type = json_string_value(json_object_get(o, "type"));
    const char *id = json_string_value(json_object_get(o, "id"));
    char sig[128];
    sign(in->webhook_secret, spk_now_s(), j->body != NULL ? j->body : "", sig, sizeof(sig));
    size_t hl = 512;
    j->headers = malloc(hl);
    if (j->body == NULL || j->headers == NULL) {
        json_decref(o);
        job_free(j);
        return NULL;
    }
    snprintf(j->headers, hl,
             "Spreekkamer-Signature: %s\r\nSpreekkamer-Event: %s\r\nSpreekkamer-Event-Id: "
             "%s\r\nSpreekkamer-Event-Seq: %" PRId64 "\r\n",
             sig, type != NULL ? type : "", id != NULL ? id : "", ev.seq);
    json_decref(o);
    snprintf(j->integration, sizeof(j->integration), "%s", in->id);
    snprintf(j->url, sizeof(j->url), "%s", in->webhook_url);
    j->row = ev.id;
    j->attempts = ev.attempts;
    return j;
}

static int poll_cb(void *ud, const spk_integration_rec_t *in)
{
    spk_webhooks_t *w = ud;
    if (in->revoked_at != 0 || in->webhook_url[0] == '\0' ||
        spk_map_get_str(&w->busy, in->id) != NULL) {
        return 0;
    }
    job_t *j = next_job(w, in, spk_now_ms());
    if (j == NULL) {
        return 0;
    }
    if (spk_map_put_str(&w->busy, j->integration, (void *)1) != 0) {
        job_free(j);
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    if (w->todo_tail != NULL) {
        w->todo_tail->next = j;
    } else {
        w->todo = j;
    }
    w->todo_tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void timer_cb(uv_timer_t *t)
{
    spk_webhooks_t *w = t->data;
    if (spk_store_in_txn(w->st)) {
        return;
    }
    int64_t now = spk_now_s();
    if (now - w->last_expire >= 60) {
        w->last_expire = now;
        int64_t n = 0;
        if (spk_store_webhook_expire(w->st, now - w->cfg->webhook_max_age_s, &n) == 0 && n > 0) {
            w->stats.dropped += (uint64_t)n;
            spk_warn(0, "webhooks: %" PRId64 " event(s) older than %" PRId64 " s dropped", n,
                     w->cfg->webhook_max_age_s);
        }
    }
    spk_store_integration_each(w->st, poll_cb, w);
}

/* Results of the workers: delivered, or retried later with backoff. */
static void async_cb(uv_async_t *a)
{
    spk_webhooks_t *w = a->data;
    pthread_mutex_lock(&w->mu);
    job_t *list = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    bool any_ok = false;
    while (list != NULL) {
        job_t *j = list;
        list = j->next;
        spk_map_del_str(&w->busy, j->integration);
        if (j->result >= 200 && j->result < 300) {
            w->stats.delivered++;
            any_ok = true;
            spk_store_webhook_done(w->st, j->row);
        } else {
            w->stats.failed++;
            int attempts = j->attempts + 1;
            int64_t delay = spk_webhook_backoff_ms(attempts);
            char err[128];
            if (j->result > 0) {
                snprintf(err, sizeof(err), "http %d", j->result);
            } else {
                snprintf(err, sizeof(err), "%s: %.100s", spk_err_wire(j->result), j->why);
            }
            spk_info(0, "webhook to %s failed (%s); attempt %d, next in %" PRId64 " ms",
                     j->integration, err, attempts, delay);
            spk_store_webhook_retry(w->st, j->row, attempts, spk_now_ms() + delay, err);
        }
        job_free(j);
    }
    if (any_ok) {
        timer_cb(&w->timer); /* the next event of that integration right away */
    }
}

int spk_webhooks_start(spk_webhooks_t **out, uv_loop_t *loop, const spk_config_t *cfg,
                       spk_store_t *store)
{
    spk_webhooks_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return SPK_ENOMEM;
    }
    w->loop = loop;
    w->cfg = cfg;
    w->st = store;
    spk_map_init(&w->busy);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->n_threads = cfg->webhook_workers > 0 ? cfg->webhook_workers : 1;
    w->threads = calloc((size_t)w->n_threads, sizeof(pthread_t));
    if (w->threads == NULL || uv_async_init(loop, &w->async, async_cb) != 0) {
        free(w->threads);
        free(w);
        return SPK_ENOMEM;
    }
    w->async.data = w;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->open_handles = 2;
    for (int i = 0; i < w->n_threads; i++) {
        if (pthread_create(&w->threads[i], NULL, worker, w) != 0) {
            w->n_threads = i;
            break;
        }
    }
    uv_timer_start(&w->timer, timer_cb, POLL_MS, POLL_MS);
    *out = w;
    return 0;
}

static void closed_cb(uv_handle_t *h)
{
    spk_webhooks_t *w = h->data;
    if (--w->open_handles == 0) {
        spk_map_free(&w->busy);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
}

void spk_webhooks_stop(spk_webhooks_t *w)
{
    if (w == NULL) {
        return;
    }
    uv_timer_stop(&w->timer);
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->n_threads; i++) {
        pthread_join(w->threads[i], NULL);
    }
    free(w->threads);
    w->threads = NULL;
    /* Jobs not started or not yet reported stay queued in the store: nothing is lost. */
    for (job_t *l = w->todo; l != NULL;) {
        job_t *n = l->next;
        job_free(l);
        l = n;
    }
    for (job_t *l = w->done; l != NULL;) {
        job_t *n = l->next;
        job_free(l);
        l = n;
    }
    w->todo = w->done = NULL;
    uv_close((uv_handle_t *)&w->timer, closed_cb);
    uv_close((uv_handle_t *)&w->async, closed_cb);
}

void spk_webhooks_stats(const spk_webhooks_t *w, spk_webhooks_stats_t *out)
{
    *out = w->stats;
}
