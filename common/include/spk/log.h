/* JSON-lines logging to stderr. Every line carries the connection id (0 = none), so one
 * session can be followed with grep. Log once, where the decision is made. */
#ifndef SPK_LOG_H
#define SPK_LOG_H

#include <stdint.h>

typedef enum { SPK_LOG_DEBUG = 0, SPK_LOG_INFO, SPK_LOG_WARN, SPK_LOG_ERROR } spk_log_level_t;

void spk_log_set_level(spk_log_level_t level);
spk_log_level_t spk_log_get_level(void);
/* Parses "debug" | "info" | "warn" | "error"; returns 0 or SPK_EINVAL. */
int spk_log_level_parse(const char *s, spk_log_level_t *out);

void spk_log(spk_log_level_t level, uint64_t conn_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define spk_debug(conn, ...) spk_log(SPK_LOG_DEBUG, (conn), __VA_ARGS__)
#define spk_info(conn, ...) spk_log(SPK_LOG_INFO, (conn), __VA_ARGS__)
#define spk_warn(conn, ...) spk_log(SPK_LOG_WARN, (conn), __VA_ARGS__)
#define spk_error(conn, ...) spk_log(SPK_LOG_ERROR, (conn), __VA_ARGS__)

#endif
