/* spreekd's connection to Redis for events between nodes (spreekd_bus.c). */
#ifndef SPK_SPREEKD_BUS_H
#define SPK_SPREEKD_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct spk_bus spk_bus_t;
typedef void (*spk_bus_msg_cb)(void *ud, const char *msg, size_t len);

typedef struct {
    const char *addr;     /* "HOST:PORT", "[V6]:PORT" or "HOST" (6379) */
    const char *channel;  /* the deployment's channel */
    const char *user;     /* Redis ACL user; NULL or "" = "default" */
    const char *password; /* NULL or "": no AUTH */
} spk_bus_config_t;

/* Connects to Redis on loop (AUTH first when a password is given), subscribes to the channel
 * and calls on_msg for every event published there (its own too). SPK_ECONFIG for an
 * unreadable address; a Redis that cannot be reached or refuses the credentials is tried again
 * every second. The password is copied and wiped by spk_bus_stop. */
int spk_bus_start(spk_bus_t **out, uv_loop_t *loop, const spk_bus_config_t *cfg,
                  spk_bus_msg_cb on_msg, void *ud);
/* Publishes msg on the channel (spk_sig_io_t.publish_cb; bus is the spk_bus_t). */
void spk_bus_publish(void *bus, const char *msg, size_t len);
bool spk_bus_ready(const spk_bus_t *b);
/* Disconnects; the memory goes once the loop has closed the timer. */
void spk_bus_stop(spk_bus_t *b);

#endif
