/* Webhook delivery to practice systems (docs/integration.md "Webhooks").
 *
 * The signaling core stores events in the store's webhook queue inside the transaction of the
 * action that caused them (hooks.c). This module delivers them: per integration in order, one at
 * a time, each POST signed with HMAC-SHA256 over "<timestamp>.<body>" with the integration's
 * secret, retried with exponential backoff (1 s doubling to 5 min, kept in milliseconds) until
 * delivered or older than webhook_max_age_s. An event is sent only once its commit is on disk.
 *
 * Threads: the control thread reads the queue and builds requests (uv timer); the network I/O
 * (DNS, connect, TLS, write, read the status line), which may block for up to
 * webhook_timeout_ms, runs on webhook_workers threads; results come back through a uv_async. So
 * an endpoint that hangs or answers 500 costs the control thread nothing but bookkeeping. */
#ifndef SPK_WEBHOOK_H
#define SPK_WEBHOOK_H

#include <stdint.h>
#include <uv.h>

#include "spk/config.h"
#include "spk/store.h"

typedef struct spk_webhooks spk_webhooks_t;

/* Starts the poll timer and the workers. cfg and store are borrowed and must outlive it. */
int spk_webhooks_start(spk_webhooks_t **out, uv_loop_t *loop, const spk_config_t *cfg,
                       spk_store_t *store);
/* Stops polling, waits for the workers (at most one attempt's timeout), closes its handles and
 * frees it once they are closed (run the loop). Undelivered events stay queued. NULL-safe. */
void spk_webhooks_stop(spk_webhooks_t *w);

typedef struct {
    uint64_t delivered, failed, dropped;
} spk_webhooks_stats_t;
void spk_webhooks_stats(const spk_webhooks_t *w, spk_webhooks_stats_t *out);

/* The one-attempt HTTP(S) POST a worker makes (webhook_http.c): status code (> 0), or a
 * negative SPK_E* with `why`. Plain http is refused unless the address is on loopback. */
int spk_webhook_post(const char *url, const char *headers, const char *body, int timeout_ms,
                     const char *ca_file, char *why, size_t why_len);

/* The wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, ... at most
 * 5 minutes (milliseconds). */
int64_t spk_webhook_backoff_ms(int attempts);

/* The status code of an endpoint's answer from its first bytes buf[0..len) (webhook_answer.c,
 * I/O-free): 100..599 once the status line "HTTP/1.<d> <ddd>[ <reason>]" ends (LF or CRLF); 0
 * while it has not ended and len < SPK_WEBHOOK_STATUS_MAX (read more); else SPK_EDECODE. */
#define SPK_WEBHOOK_STATUS_MAX 512
int spk_webhook_status(const char *buf, size_t len);

#endif
