/* Group commit of application messages and acknowledgements (docs/chat.md "Throughput"): with
 * batching on (spreekd's transport turns it on), chat.send checks a message completely (chat.ack
 * its acknowledgement) and then, instead of a transaction of its own, joins a batch that is written
 * in one transaction when the event loop has handled what it read (spk_sig_flush), when the batch
 * is full, or before anything else enters the core (another request, a connection opening or
 * closing, the tick, shutdown). So no other request is handled between a message's check and its
 * write, and each connection's answers stay in the order of its requests. After the commit every
 * answer ("ok" with seq) and every delivery carries the batch's ticket and waits until it is on
 * disk, as before. If the batch cannot be written, every message in it is answered with the store's
 * error and each conversation is read back from the store.
 *
 * Back-pressure (docs/protocol.md "chat.send"): when the service is behind, chat.send is answered
 * "unavailable" with retry_ms at once, without being checked or stored, so that the messages it
 * does accept keep a bounded delay instead of every message waiting longer and longer. Behind
 * means: this loop turn has handled chat.send for longer than chat_turn_budget_ms already, or the
 * answers and deliveries held for the disk or for slow connections exceed HELD_MAX_BYTES, or the
 * sender's own held answers exceed half its send queue (it does not read them). The refusal joins
 * the batch like an answer, so each connection's answers stay in the order of its requests. */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define RACE_RETRIES 8 /* a batch written again after another node took its seq */
#define BATCH_MAX 256
#define HELD_MAX_BYTES ((size_t)16 << 20)
#define RETRY_HELD_MS 250  /* waiting for the disk or for clients to read */
#define RETRY_STORE_MS 500 /* the database cannot be reached (PostgreSQL reconnecting) */

typedef struct {
    uint64_t conn;
    json_t *id; /* the request's id (owned reference) */
    char conversation[SPK_ID_LEN];
    bool ack;              /* chat.ack (cur) rather than chat.send (e) */
    int64_t shed_ms;       /* > 0: answered "unavailable" with this retry_ms */
    spk_chat_entry_t e;    /* data owned */
    spk_chat_cursor_t cur; /* acked: the seq to acknowledge */
    int refused;           /* an acknowledgement refused when written (its error code) */
} batch_item_t;

struct sig_chat_batch {
    batch_item_t items[BATCH_MAX];
    size_t n;
};

void spk_sig_batch_chat(spk_sig_t *s, bool on)
{
    if (!on) {
        sig_chat_flush(s);
    }
    s->chat_batching = on;
}

/* The next free item (the request will be answered by sig_chat_flush), or NULL. */
static batch_item_t *item_new(sig_req_t *r)
{
    spk_sig_t *s = r->s;
    if (s->chat_batch == NULL) {
        s->chat_batch = calloc(1, sizeof(*s->chat_batch));
        if (s->chat_batch == NULL) {
            return NULL;
        }
    }
    batch_item_t *it = &s->chat_batch->items[s->chat_batch->n];
    memset(it, 0, sizeof(*it));
    it->conn = r->c->id;
    return it;
}

/* Takes the item filled in by the caller into the batch; writes the batch when it is full. */
static void item_take(sig_req_t *r, batch_item_t *it)
{
    it->id = json_incref(r->id);
    r->replied = true; /* answered by sig_chat_flush */
    if (++r->s->chat_batch->n == BATCH_MAX) {
        sig_chat_flush(r->s);
    }
}

int sig_chat_batch_add(sig_req_t *r, ds_conv_t *c, const spk_chat_entry_t *e)
{
    batch_item_t *it = item_new(r);
    uint8_t *data = it != NULL ? malloc(e->data_len > 0 ? e->data_len : 1) : NULL;
    if (data == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(data, e->data, e->data_len);
    snprintf(it->conversation, sizeof(it->conversation), "%s", c->rec.id);
    it->e = *e;
    it->e.data = data;
    item_take(r, it);
    return 0;
}

int sig_chat_batch_ack(sig_req_t *r, const spk_chat_cursor_t *cur)
{
    batch_item_t *it = item_new(r);
    if (it == NULL) {
        return SPK_ENOMEM;
    }
    it->ack = true;
    it->cur = *cur;
    snprintf(it->conversation, sizeof(it->conversation), "%s", cur->conversation);
    item_take(r, it);
    return 0;
}

/* The control thread's CPU time (µs): the turn's budget counts work, not time the thread
 * waited for a CPU (on a shared machine a wall-clock budget ran out without any work done). */
static int64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool spk_sig_busy(spk_sig_t *s)
{
    int64_t budget = s->cfg.chat_turn_budget_ms;
    return s->chat_batching && budget > 0 && s->chat_turn_us != 0 &&
           thread_cpu_us() - s->chat_turn_us > budget * 1000;
}

bool sig_chat_behind(sig_req_t *r, int64_t *retry_ms)
{
    spk_sig_t *s = r->s;
    *retry_ms = 0;
    if (!s->chat_batching) {
        return false;
    }
    if (s->chat_turn_us == 0 && s->cfg.chat_turn_budget_ms > 0) {
        s->chat_turn_us = thread_cpu_us(); /* the turn's budget starts (spk_sig_busy) */
    }
    /* 0: only the sender's own queue counts */
    bool global = s->cfg.chat_turn_budget_ms > 0 && s->held_bytes > HELD_MAX_BYTES;
    if (global || r->c->out_bytes > s->cfg.send_queue_bytes / 2) {
        *retry_ms = RETRY_HELD_MS;
    }
    return *retry_ms > 0;
}

int sig_chat_batch_shed(sig_req_t *r, int64_t retry_ms)
{
    batch_item_t *it = item_new(r);
    if (it == NULL) {
        return SPK_ENOMEM;
    }
    it->shed_ms = retry_ms;
    r->s->chat_shed++;
    item_take(r, it);
    return 0;
}

/* An acknowledgement, checked against the device's cursor inside the batch's transaction
 * (docs/protocol.md chat.ack): not_found when the device has nothing in the conversation,
 * bad_state for a seq beyond the conversation's last entry (as far as the batch has come) or
 * before the device's Welcome; those are answered as refusals (it->refused) and the batch goes
 * on. The cursor only moves forward (another acknowledgement may be further already).
 * Returns a store error only. */
static int ack_write(spk_sig_t *s, batch_item_t *it)
{
    const spk_chat_cursor_t *want = &it->cur;
    spk_chat_cursor_t cur;
    ds_conv_t *c = NULL;
    it->refused = 0;
    int rc = spk_store_chat_cursor_get(s->store, want->conversation, want->iss, want->sub,
                                       want->device, &cur);
    if (rc == 0) {
        rc = ds_conv_get(s, want->conversation, &c);
    }
    if (rc == SPK_ENOTFOUND || (rc == 0 && !cur.active)) {
        it->refused = SPK_ENOTFOUND;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    if (want->acked > c->last_seq || want->acked < cur.from_seq) {
        it->refused = SPK_ESTATE;
        return 0;
    }
    if (cur.acked >= want->acked) {
        return 0; /* acknowledged already: nothing changes */
    }
    cur.acked = want->acked;
    return spk_store_chat_cursor_put(s->store, &cur);
}

/* {"type":"ok","re":id,"seq":seq} (seq < 0: {"type":"ok","re":id}): written directly for an
 * integer id (the usual case; the JSON tree and its dump cost as much as the rest of the
 * answer), through jansson otherwise. */
static void answer_seq(spk_sig_t *s, uint64_t conn, json_t *id, int64_t seq)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c != NULL && json_is_integer(id)) {
        char buf[96];
        int n = seq >= 0 ? snprintf(buf, sizeof(buf), "{\"type\":\"ok\",\"re\":%lld,\"seq\":%lld}",
                                    (long long)json_integer_value(id), (long long)seq)
                         : snprintf(buf, sizeof(buf), "{\"type\":\"ok\",\"re\":%lld}",
                                    (long long)json_integer_value(id));
        sig_deliver_text(s, c, buf, (size_t)n);
        return;
    }
    sig_send_json(
        s, conn,
        seq >= 0 ? json_pack("{s:s, s:O?, s:I}", "type", "ok", "re", id, "seq", (json_int_t)seq)
                 : json_pack("{s:s, s:O?}", "type", "ok", "re", id));
}

/* The refusal of an acknowledgement checked in the batch (ack_write). */
static void answer_ack_refused(spk_sig_t *s, const batch_item_t *it)
{
    char why[96];
    if (it->refused == SPK_ENOTFOUND) {
        snprintf(why, sizeof(why), "this device has nothing in that conversation");
    } else {
        snprintf(why, sizeof(why), "no entry %lld for this device", (long long)it->cur.acked);
    }
    spk_debug(it->conn, "request refused: %s (%s)", spk_err_wire(it->refused), why);
    sig_send_error(s, it->conn, it->id, it->refused, why);
}

static void item_free(batch_item_t *it)
{
    json_decref(it->id);
    free((void *)it->e.data);
    memset(it, 0, sizeof(*it));
}

/* Appends every message of the batch and commits; the conversations' last_seq move on. */
static int batch_write(spk_sig_t *s, sig_chat_batch_t *b, ds_conv_t **convs, uint64_t *ticket)
{
    int rc = spk_store_begin(s->store);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        batch_item_t *it = &b->items[i];
        if (it->shed_ms > 0) {
            continue;
        }
        if (it->ack) {
            rc = ack_write(s, it);
            continue;
        }
        rc = ds_conv_get(s, it->conversation, &convs[i]);
        if (rc == 0) {
            it->e.seq = convs[i]->last_seq + 1;
            it->e.at_ms = spk_now_ms();
            rc = spk_store_chat_log_append_batched(s->store, &it->e);
        }
        if (rc == 0) {
            convs[i]->last_seq = it->e.seq;
        }
    }
    if (rc == 0) {
        rc = spk_store_commit(s->store, ticket);
    }
    return rc;
}

void sig_chat_flush(spk_sig_t *s)
{
    sig_chat_batch_t *b = s->chat_batch;
    if (b == NULL || b->n == 0) {
        return;
    }
    ds_conv_t *convs[BATCH_MAX] = {0};
    uint64_t t = 0;
    size_t work = 0;
    for (size_t i = 0; i < b->n; i++) {
        work += b->items[i].shed_ms == 0;
    }
    int rc = work > 0 ? batch_write(s, b, convs, &t) : 0;
    for (int again = 0; rc == SPK_EEXIST && s->io.publish_cb != NULL && again < RACE_RETRIES;
         again++) {
        /* Another node appended to one of the conversations first and its event is still on
         * the way: once more from the store's last seq (the entries in between are delivered
         * here before these). While both nodes keep sending, it can happen again. */
        spk_store_rollback(s->store);
        for (size_t i = 0; rc == SPK_EEXIST && i < b->n; i++) {
            if (b->items[i].shed_ms > 0) {
                continue;
            }
            ds_conv_t *c = NULL;
            if (ds_conv_get(s, b->items[i].conversation, &c) != 0 ||
                spk_store_chat_log_last(s->store, c->rec.id, &c->last_seq) != 0) {
                rc = SPK_EIO;
            }
        }
        if (rc == SPK_EEXIST) {
            rc = batch_write(s, b, convs, &t);
        }
    }
    uint64_t saved = s->cur_ticket;
    if (rc != 0) {
        spk_store_rollback(s->store);
        spk_warn(0, "chat: a batch of %zu messages could not be stored: %s", b->n,
                 spk_strerror(rc));
        for (size_t i = 0; i < b->n; i++) {
            /* last_seq and the replay window as stored, once per conversation */
            bool first = !b->items[i].ack && b->items[i].shed_ms == 0;
            for (size_t k = 0; k < i && first; k++) {
                first = strcmp(b->items[k].conversation, b->items[i].conversation) != 0;
            }
            ds_conv_t *c = NULL;
            if (first && ds_conv_get(s, b->items[i].conversation, &c) == 0) {
                ds_conv_reload(s, c);
            }
            if (b->items[i].shed_ms > 0) {
                sig_send_error_retry(s, b->items[i].conn, b->items[i].id, SPK_EUNAVAILABLE,
                                     "the service is behind; retry later", b->items[i].shed_ms);
            } else if (rc == SPK_EUNAVAILABLE) { /* the database is being reconnected */
                sig_send_error_retry(s, b->items[i].conn, b->items[i].id, SPK_EUNAVAILABLE,
                                     "the database cannot be reached; retry later", RETRY_STORE_MS);
            } else {
                sig_send_error(s, b->items[i].conn, b->items[i].id, SPK_EIO,
                               "the message could not be stored");
            }
            item_free(&b->items[i]);
        }
        b->n = 0;
        return;
    }
    if (t > s->cur_ticket) {
        s->cur_ticket = t;
    }
    for (size_t i = 0; i < b->n; i++) {
        batch_item_t *it = &b->items[i];
        if (it->shed_ms > 0) {
            s->cur_ticket = saved; /* reveals nothing of this commit */
            sig_send_error_retry(s, it->conn, it->id, SPK_EUNAVAILABLE,
                                 "the service is behind; retry later", it->shed_ms);
            s->cur_ticket = t > saved ? t : saved;
        } else if (it->ack && it->refused != 0) {
            answer_ack_refused(s, it);
        } else if (it->ack) {
            answer_seq(s, it->conn, it->id, -1);
        } else {
            answer_seq(s, it->conn, it->id, it->e.seq);
            ds_deliver(s, convs[i], &it->e);
        }
        item_free(it);
    }
    b->n = 0;
    s->cur_ticket = saved;
}

void sig_chat_batch_free(spk_sig_t *s)
{
    sig_chat_batch_t *b = s->chat_batch;
    if (b != NULL) {
        for (size_t i = 0; i < b->n; i++) {
            item_free(&b->items[i]);
        }
        free(b);
        s->chat_batch = NULL;
    }
}

void spk_sig_flush(spk_sig_t *s)
{
    sig_chat_flush(s);
    s->chat_turn_us = 0; /* the loop turn ends */
}
