/* spreekd's connection to Redis for events between nodes (spreekd_bus.c). */
#ifndef SPK_SPREEKD_BUS_H
#define SPK_SPREEKD_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct spk_bus spk_bus_t;
typedef void (*spk_bus_msg_cb)(void *ud, const char *msg, size_t len);

/* Connects to Redis at addr ("HOST:PORT") on loop, subscribes to channel and calls on_msg for
 * every event published there (its own too). SPK_ECONFIG for an unreadable address; a Redis
 * that cannot be reached yet is retried every second. */
int spk_bus_start(spk_bus_t **out, uv_loop_t *loop, const char *addr, const char *channel,
                  spk_bus_msg_cb on_msg, void *ud);
/* Publishes msg on the channel (spk_sig_io_t.publish_cb; bus is the spk_bus_t). */
void spk_bus_publish(void *bus, const char *msg, size_t len);
bool spk_bus_ready(const spk_bus_t *b);
/* Disconnects; the memory goes once the loop has closed the timer. */
void spk_bus_stop(spk_bus_t *b);

#endif
