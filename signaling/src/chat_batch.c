/* Group commit of application messages (docs/chat.md "Throughput"): with batching on (spreekd's
 * transport turns it on), chat.send checks a message completely and then, instead of a
 * transaction of its own, joins a batch that is written in one transaction when the event loop
 * has handled what it read (spk_sig_flush), when the batch is full, or before anything else
 * enters the core (another request, a connection opening or closing, the tick, shutdown). So no
 * other request is handled between a message's check and its write, and each connection's
 * answers stay in the order of its requests. After the commit every answer ("ok" with seq) and
 * every delivery carries the batch's ticket and waits until it is on disk, as before. If the
 * batch cannot be written, every message in it is answered with the store's error and each
 * conversation is read back from the store. */
#include "chat_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define BATCH_MAX 256

typedef struct {
    uint64_t conn;
    json_t *id; /* the request's id (owned reference) */
    char conversation[SPK_ID_LEN];
    spk_chat_entry_t e; /* data owned */
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

int sig_chat_batch_add(sig_req_t *r, ds_conv_t *c, const spk_chat_entry_t *e)
{
    spk_sig_t *s = r->s;
    if (s->chat_batch == NULL) {
        s->chat_batch = calloc(1, sizeof(*s->chat_batch));
        if (s->chat_batch == NULL) {
            return SPK_ENOMEM;
        }
    }
    sig_chat_batch_t *b = s->chat_batch;
    batch_item_t *it = &b->items[b->n];
    uint8_t *data = malloc(e->data_len > 0 ? e->data_len : 1);
    if (data == NULL) {
        return SPK_ENOMEM;
    }
    memcpy(data, e->data, e->data_len);
    it->conn = r->c->id;
    it->id = json_incref(r->id);
    snprintf(it->conversation, sizeof(it->conversation), "%s", c->rec.id);
    it->e = *e;
    it->e.data = data;
    b->n++;
    r->replied = true; /* answered by sig_chat_flush */
    if (b->n == BATCH_MAX) {
        sig_chat_flush(s);
    }
    return 0;
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
        rc = ds_conv_get(s, it->conversation, &convs[i]);
        if (rc == 0) {
            it->e.seq = convs[i]->last_seq + 1;
            it->e.at_ms = spk_now_ms();
            rc = spk_store_chat_log_append(s->store, &it->e);
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
    int rc = batch_write(s, b, convs, &t);
    uint64_t saved = s->cur_ticket;
    if (rc != 0) {
        spk_store_rollback(s->store);
        spk_warn(0, "chat: a batch of %zu messages could not be stored: %s", b->n,
                 spk_strerror(rc));
        for (size_t i = 0; i < b->n; i++) {
            /* last_seq and the replay window as stored, once per conversation */
            bool first = true;
            for (size_t k = 0; k < i && first; k++) {
                first = strcmp(b->items[k].conversation, b->items[i].conversation) != 0;
            }
            ds_conv_t *c = NULL;
            if (first && ds_conv_get(s, b->items[i].conversation, &c) == 0) {
                ds_conv_reload(s, c);
            }
            sig_send_error(s, b->items[i].conn, b->items[i].id, SPK_EIO,
                           "the message could not be stored");
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
        sig_send_json(s, it->conn,
                      json_pack("{s:s, s:O?, s:I}", "type", "ok", "re", it->id, "seq",
                                (json_int_t)it->e.seq));
        ds_deliver(s, convs[i], &it->e);
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
}
