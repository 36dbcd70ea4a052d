#include "spk/log.h"
#include "spk/error.h"
#include "spk/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static spk_log_level_t g_level = SPK_LOG_INFO;
static const char *const g_names[] = {"debug", "info", "warn", "error"};

void spk_log_set_level(spk_log_level_t level)
{
    g_level = level;
}

spk_log_level_t spk_log_get_level(void)
{
    return g_level;
}

int spk_log_level_parse(const char *s, spk_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, g_names[i]) == 0) {
            *out = (spk_log_level_t)i;
            return 0;
        }
    }
    return SPK_EINVAL;
}

void spk_log(spk_log_level_t level, uint64_t conn_id, const char *fmt, ...)
{
    if (level < g_level) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char esc[2 * sizeof(msg) + 8];
    spk_json_escape(esc, sizeof(esc), msg);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"conn\":%llu,\"msg\":\"%s\"}\n", when,
            ts.tv_nsec / 1000000, g_names[level], (unsigned long long)conn_id, esc);
}
