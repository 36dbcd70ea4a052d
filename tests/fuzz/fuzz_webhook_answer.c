/* libFuzzer target for the status line of a webhook endpoint's answer
 * (signaling/src/webhook_answer.c), which the delivery reads as the bytes arrive.
 *
 * Properties checked, each aborting on failure:
 *  - the result is a status 100..599, 0 (read more) or SPK_EDECODE;
 *  - 0 only while no line has ended and fewer than SPK_WEBHOOK_STATUS_MAX bytes are there;
 *  - a status only for a line starting "HTTP/1.", and it is the line's three digits;
 *  - read in pieces, every prefix gives 0 or the whole input's answer, and the answer does not
 *    change once decided (bytes after the status line do not matter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "spk/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * SPK_WEBHOOK_STATUS_MAX) {
        size = 2 * SPK_WEBHOOK_STATUS_MAX;
    }
    char *s = malloc(size ? size : 1);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    int whole = spk_webhook_status(s, size);
    bool nl = memchr(s, '\n', size) != NULL;
    if (whole == 0  ? (nl || size >= SPK_WEBHOOK_STATUS_MAX)
        : whole > 0 ? (whole < 100 || whole > 599 || size < 12 || memcmp(s, "HTTP/1.", 7) != 0 ||
                       whole != (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'))
                    : whole != SPK_EDECODE) {
        abort();
    }
    int decided = 0;
    for (size_t k = 0; k <= size; k++) {
        int r = spk_webhook_status(s, k);
        if (decided != 0 ? r != decided : (r != 0 && r != whole)) {
            abort();
        }
        decided = r;
    }
    free(s);
    return 0;
}
