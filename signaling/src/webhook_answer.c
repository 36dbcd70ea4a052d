/* The status line of a webhook endpoint's answer (spk/webhook.h), I/O-free. */
#include "spk/webhook.h"

#include <string.h>

#include "spk/error.h"

int spk_webhook_status(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len < SPK_WEBHOOK_STATUS_MAX ? len : SPK_WEBHOOK_STATUS_MAX);
    if (nl == NULL) {
        return len < SPK_WEBHOOK_STATUS_MAX ? 0 : SPK_EDECODE;
    }
    size_t n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    /* "HTTP/1." digit SP 3digit (SP reason | end) */
    if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' || buf[8] != ' ' ||
        (n > 12 && buf[12] != ' ')) {
        return SPK_EDECODE;
    }
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            return SPK_EDECODE;
        }
        code = code * 10 + (buf[i] - '0');
    }
    return code >= 100 && code <= 599 ? code : SPK_EDECODE;
}
