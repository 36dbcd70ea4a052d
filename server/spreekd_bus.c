/* Events between spreekd nodes over Redis publish/subscribe (hiredis and its libuv adapter, on
 * the control thread's loop). Two connections: one subscribed to the deployment's channel, one
 * that publishes. What is published while Redis is unreachable is dropped and counted; the
 * connections are made again every second until they stand. The events only say what changed;
 * the store holds the change (signaling/src/bus.c). */
#include "spreekd_bus.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/log.h"
#include "spk/util.h"

#define BUS_RETRY_MS 1000

struct spk_bus {
    uv_loop_t *loop;
    char host[256];
    int port;
    char channel[128];
    char user[129], password[257]; /* AUTH on every connection when password is set */
    spk_bus_msg_cb on_msg;
    void *ud;
    redisAsyncContext *sub, *pub;
    bool sub_ready; /* subscribed */
    bool down;      /* connecting failed since the last success: said once, not every second */
    bool refused;   /* Redis refused the password: said once */
    uv_timer_t retry;
    bool stopping;
    uint64_t published, dropped;
};

static void connect_all(spk_bus_t *b);

static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
    spk_bus_t *b = priv;
    redisReply *r = reply;
    (void)ac;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        return;
    }
    const redisReply *kind = r->element[0];
    const redisReply *data = r->element[2];
    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }
    if (strcmp(kind->str, "subscribe") == 0) {
        if (!b->sub_ready) {
            spk_info(0, "bus: subscribed to %s on %s:%d", b->channel, b->host, b->port);
        }
        b->sub_ready = true;
    } else if (strcmp(kind->str, "message") == 0 && data->type == REDIS_REPLY_STRING) {
        b->on_msg(b->ud, data->str, data->len);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    spk_bus_t *b = ac->data;
    if (status == REDIS_OK) {
        if (b->down) {
            spk_info(0, "bus: connected to Redis at %s:%d again", b->host, b->port);
        }
        b->down = false;
    } else {
        if (!b->down) {
            spk_warn(0, "bus: cannot connect to Redis at %s:%d: %s (retrying every second)",
                     b->host, b->port, ac->errstr);
        }
        b->down = true;
        /* hiredis frees the context after this callback */
        if (ac == b->sub) {
            b->sub = NULL;
            b->sub_ready = false;
        } else if (ac == b->pub) {
            b->pub = NULL;
        }
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    spk_bus_t *b = ac->data;
    if (ac == b->sub) {
        b->sub = NULL;
        b->sub_ready = false;
    } else if (ac == b->pub) {
        b->pub = NULL;
    }
    if (!b->stopping && !b->down) {
        spk_warn(0, "bus: connection to Redis lost (%s); events are dropped until it is back",
                 status == REDIS_OK ? "closed" : ac->errstr);
    }
}

/* The answer to AUTH: a refused password ends the connection (tried again every second). */
static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    spk_bus_t *b = priv;
    redisReply *r = reply;
    if (r == NULL) {
        return; /* the connection went first */
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!b->refused) {
            spk_error(0, "bus: Redis at %s:%d refused spreekd's credentials: %s", b->host, b->port,
                      r->str);
        }
        b->refused = b->down = true;
        redisAsyncDisconnect(ac);
    } else if (b->refused) {
        spk_info(0, "bus: Redis at %s:%d accepts spreekd's credentials again", b->host, b->port);
        b->refused = false;
    }
}

static redisAsyncContext *connect_one(spk_bus_t *b)
{
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    if (ac == NULL) {
        return NULL;
    }
    if (ac->err != 0) {
        if (!b->down) {
            spk_warn(0, "bus: cannot connect to Redis at %s:%d: %s (retrying every second)",
                     b->host, b->port, ac->errstr);
        }
        b->down = true;
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = b;
    if (redisLibuvAttach(ac, b->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (b->password[0] != '\0') {
        /* queued first: every later command on this connection runs after it */
        redisAsyncCommand(ac, on_auth, b, "AUTH %s %s", b->user[0] ? b->user : "default",
                          b->password);
    }
    return ac;
}

static void connect_all(spk_bus_t *b)
{
    if (b->sub == NULL) {
        b->sub = connect_one(b);
        if (b->sub != NULL) {
            redisAsyncCommand(b->sub, on_message, b, "SUBSCRIBE %s", b->channel);
        }
    }
    if (b->pub == NULL) {
        b->pub = connect_one(b);
    }
}

static void on_retry(uv_timer_t *t)
{
    spk_bus_t *b = t->data;
    if (!b->stopping && (b->sub == NULL || b->pub == NULL)) {
        connect_all(b);
    }
}

/* "HOST:PORT", "[V6]:PORT" or "HOST" (port 6379). */
static int parse_addr(spk_bus_t *b, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    b->port = 6379;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || (size_t)(end - addr - 1) >= sizeof(b->host)) {
            return SPK_ECONFIG;
        }
        snprintf(b->host, sizeof(b->host), "%.*s", (int)(end - addr - 1), addr + 1);
        colon = end[1] == ':' ? end + 1 : NULL;
    } else if (colon != NULL && strchr(addr, ':') == colon) {
        if ((size_t)(colon - addr) >= sizeof(b->host)) {
            return SPK_ECONFIG;
        }
        snprintf(b->host, sizeof(b->host), "%.*s", (int)(colon - addr), addr);
    } else {
        colon = NULL;
        snprintf(b->host, sizeof(b->host), "%s", addr);
    }
    if (colon != NULL) {
        char *end = NULL;
        long p = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || p < 1 || p > 65535) {
            return SPK_ECONFIG;
        }
        b->port = (int)p;
    }
    return b->host[0] != '\0' ? 0 : SPK_ECONFIG;
}

int spk_bus_start(spk_bus_t **out, uv_loop_t *loop, const spk_bus_config_t *cfg,
                  spk_bus_msg_cb on_msg, void *ud)
{
    const char *addr = cfg->addr;
    spk_bus_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return SPK_ENOMEM;
    }
    b->loop = loop;
    b->on_msg = on_msg;
    b->ud = ud;
    snprintf(b->channel, sizeof(b->channel), "%s", cfg->channel);
    snprintf(b->user, sizeof(b->user), "%s", cfg->user ? cfg->user : "");
    snprintf(b->password, sizeof(b->password), "%s", cfg->password ? cfg->password : "");
    int rc = parse_addr(b, addr);
    if (rc != 0) {
        spk_error(0, "bus: cannot read the Redis address \"%s\" (HOST:PORT)", addr);
        spk_wipe(b->password, sizeof(b->password));
        free(b);
        return rc;
    }
    uv_timer_init(loop, &b->retry);
    b->retry.data = b;
    uv_timer_start(&b->retry, on_retry, BUS_RETRY_MS, BUS_RETRY_MS);
    connect_all(b);
    *out = b;
    return 0;
}

void spk_bus_publish(void *bus, const char *msg, size_t len)
{
    spk_bus_t *b = bus;
    if (b == NULL || b->pub == NULL ||
        redisAsyncCommand(b->pub, NULL, NULL, "PUBLISH %s %b", b->channel, msg, len) != REDIS_OK) {
        if (b != NULL && b->dropped++ % 1000 == 0) {
            spk_warn(0, "bus: Redis unreachable: event dropped (%llu so far)",
                     (unsigned long long)b->dropped);
        }
        return;
    }
    b->published++;
}

bool spk_bus_ready(const spk_bus_t *b)
{
    return b != NULL && b->sub_ready && b->pub != NULL;
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

void spk_bus_stop(spk_bus_t *b)
{
    if (b == NULL) {
        return;
    }
    b->stopping = true;
    uv_timer_stop(&b->retry);
    if (b->sub != NULL) {
        redisAsyncFree(b->sub);
        b->sub = NULL;
    }
    if (b->pub != NULL) {
        redisAsyncFree(b->pub);
        b->pub = NULL;
    }
    spk_wipe(b->password, sizeof(b->password));
    uv_close((uv_handle_t *)&b->retry, free_on_close);
}
