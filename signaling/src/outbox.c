/* Holding messages until the commit they reveal is on disk.
 *
 * "ok" promises that the action is durable (docs/protocol.md §2). With the store's sync thread
 * (group commit) a commit returns before it is flushed, so every message sent while handling an
 * action after its commit (the answer, and the events telling others) carries that commit's
 * ticket and waits on its connection until spk_store_durable() reaches it. A connection's
 * messages stay in order: once one is held, the ones after it queue behind it, whatever their
 * ticket. Closing a connection (sig_close_conn) queues behind its messages too. Connections
 * without held messages and messages that reveal no commit go out at once.
 *
 * Released messages go to the transport only while its queue for the connection is under half
 * of send_queue_bytes (io.queued_cb); the rest waits here until the transport reports the queue
 * empty (spk_sig_conn_writable). So a burst released at once does not overflow a client that
 * reads. A client that does not read still ends as a slow consumer: once more than
 * send_queue_bytes wait here, they are handed to the transport, which closes it with 4003.
 *
 * One text delivered to many connections (a chat entry to every device following the
 * conversation, sig_share_begin) is held once, shared by reference: a Commit into a group of
 * 1,000 devices is large, and a copy per device was most of its cost. */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

struct sig_shared {
    size_t refs;
    char data[];
};

struct sig_out {
    sig_out_t *next;
    uint64_t ticket;
    int close_code; /* > 0: close the connection with this code instead of sending */
    size_t len;
    sig_shared_t *shared; /* the text when shared, else in data */
    char data[];          /* message text, or the close reason */
};

static void shared_put(sig_shared_t *sh)
{
    if (sh != NULL && --sh->refs == 0) {
        free(sh);
    }
}

static void out_free(sig_out_t *o)
{
    shared_put(o->shared);
    free(o);
}

static const char *out_text(const sig_out_t *o)
{
    return o->shared != NULL ? o->shared->data : o->data;
}

void sig_share_begin(spk_sig_t *s, const char *txt, size_t len)
{
    sig_share_end(s);
    s->share_txt = txt;
    s->share_len = len;
}

void sig_share_end(spk_sig_t *s)
{
    shared_put(s->share);
    s->share = NULL;
    s->share_txt = NULL;
    s->share_len = 0;
}

/* The shared copy of the text between sig_share_begin and sig_share_end (NULL: not that text,
 * or out of memory: copied instead). */
static sig_shared_t *shared_get(spk_sig_t *s, const char *data, size_t len, int close_code)
{
    if (close_code > 0 || data != s->share_txt || len != s->share_len) {
        return NULL;
    }
    if (s->share == NULL) {
        s->share = malloc(sizeof(*s->share) + len + 1);
        if (s->share == NULL) {
            return NULL;
        }
        s->share->refs = 1; /* the sharing's own */
        memcpy(s->share->data, data, len);
        s->share->data[len] = '\0';
    }
    s->share->refs++;
    return s->share;
}

static int enqueue(spk_sig_t *s, sig_conn_t *c, const char *data, size_t len, int close_code)
{
    sig_shared_t *sh = shared_get(s, data, len, close_code);
    sig_out_t *o = malloc(sizeof(*o) + (sh != NULL ? 0 : len) + 1);
    if (o == NULL) {
        shared_put(sh);
        return SPK_ENOMEM;
    }
    o->next = NULL;
    o->ticket = s->cur_ticket;
    o->close_code = close_code;
    o->len = len;
    o->shared = sh;
    if (sh == NULL) {
        memcpy(o->data, data, len);
    }
    o->data[sh != NULL ? 0 : len] = '\0';
    if (c->out_head == NULL) {
        if (spk_u64_push(&s->held, &s->n_held, &s->cap_held, c->id) != 0) {
            out_free(o);
            return SPK_ENOMEM;
        }
        c->out_head = o;
    } else {
        c->out_tail->next = o;
    }
    c->out_tail = o;
    c->out_bytes += len;
    s->held_bytes += len;
    return 0;
}

static bool must_hold(spk_sig_t *s, const sig_conn_t *c)
{
    return c->out_head != NULL || s->storage_failed || s->cur_ticket > spk_store_durable(s->store);
}

int sig_deliver_text(spk_sig_t *s, sig_conn_t *c, const char *txt, size_t len)
{
    s->m[SIG_M_EVENTS]++;
    return must_hold(s, c) ? enqueue(s, c, txt, len, 0) : s->io.send_cb(s->io.ud, c->id, txt, len);
}

int sig_deliver(spk_sig_t *s, sig_conn_t *c, json_t *msg)
{
    char *txt = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (txt == NULL) {
        return SPK_ENOMEM;
    }
    int rc = sig_deliver_text(s, c, txt, strlen(txt));
    free(txt);
    return rc;
}

void sig_close_conn(spk_sig_t *s, sig_conn_t *c, int ws_code, const char *reason)
{
    if (c->closing) {
        return;
    }
    if (must_hold(s, c) && enqueue(s, c, reason, strlen(reason), ws_code) == 0) {
        return;
    }
    c->closing = true;
    s->io.close_cb(s->io.ud, c->id, ws_code, reason);
}

void sig_outq_free(spk_sig_t *s, sig_conn_t *c)
{
    s->held_bytes -= c->out_bytes;
    while (c->out_head != NULL) {
        sig_out_t *o = c->out_head;
        c->out_head = o->next;
        out_free(o);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
}

/* Is the transport's queue for c too full to take released messages now? */
static bool transport_busy(spk_sig_t *s, const sig_conn_t *c)
{
    size_t cap = s->cfg.send_queue_bytes;
    return s->io.queued_cb != NULL && c->out_bytes <= cap &&
           s->io.queued_cb(s->io.ud, c->id) > cap / 2;
}

/* Sends what conn may send now; true when its queue is empty afterwards. */
static bool drain(spk_sig_t *s, sig_conn_t *c, uint64_t durable)
{
    while (c->out_head != NULL && c->out_head->ticket <= durable && !c->closing &&
           !transport_busy(s, c)) {
        sig_out_t *o = c->out_head;
        c->out_head = o->next;
        c->out_bytes -= o->len;
        s->held_bytes -= o->len;
        if (o->close_code > 0) {
            c->closing = true;
            s->io.close_cb(s->io.ud, c->id, o->close_code, o->data);
        } else {
            s->io.send_cb(s->io.ud, c->id, out_text(o), o->len);
        }
        out_free(o);
    }
    if (c->closing) {
        sig_outq_free(s, c); /* nothing is sent after a close */
    }
    if (c->out_head == NULL) {
        c->out_tail = NULL;
        return true;
    }
    return false;
}

void spk_sig_durable(spk_sig_t *s, bool failed)
{
    if (failed) {
        /* The disk refused a flush: what is held was never acknowledged and must not be. */
        if (!s->storage_failed) {
            spk_error(0, "storage can no longer flush: acknowledgements stop");
        }
        s->storage_failed = true;
        return;
    }
    if (s->storage_failed) {
        return;
    }
    uint64_t durable = spk_store_durable(s->store);
    uint64_t saved = s->cur_ticket;
    s->cur_ticket = 0;
    size_t keep = 0;
    for (size_t i = 0; i < s->n_held; i++) {
        sig_conn_t *c = spk_map_get_u64(&s->conns, s->held[i]);
        if (c != NULL && !drain(s, c, durable)) {
            s->held[keep++] = s->held[i];
        }
    }
    s->n_held = keep;
    s->cur_ticket = saved;
    sig_bus_release(s, durable);
}

void spk_sig_conn_writable(spk_sig_t *s, uint64_t conn)
{
    sig_conn_t *c = spk_map_get_u64(&s->conns, conn);
    if (c == NULL || c->out_head == NULL || s->storage_failed) {
        return;
    }
    uint64_t saved = s->cur_ticket;
    s->cur_ticket = 0;
    drain(s, c, spk_store_durable(s->store)); /* stays in the held list until spk_sig_durable */
    s->cur_ticket = saved;
}

void sig_held_free(spk_sig_t *s)
{
    free(s->held);
    s->held = NULL;
    s->n_held = s->cap_held = 0;
}
