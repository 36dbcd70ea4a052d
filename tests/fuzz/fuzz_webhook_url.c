/* libFuzzer target for webhook endpoint URLs (common/src/url.c): what spreekctl registers and
 * what the delivery connects to and writes into its request line and Host header.
 *
 * Properties checked, each aborting on failure:
 *  - an accepted URL has a non-empty host of name or IPv6 characters only, a port 1..65535 and
 *    a path that starts with '/' and holds no space, control or non-ASCII byte (nothing can
 *    reach another line of the request);
 *  - it formats as a URL that parses back to exactly the same parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool clean(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1); /* exact size: a read past the end is caught by ASan */
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    spk_url_t u, back;
    if (spk_url_parse(s, size, &u) == 0) {
        long port = atol(u.port);
        if (u.host[0] == '\0' ||
            strspn(u.host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789-._:") != strlen(u.host) ||
            port < 1 || port > 65535 || u.path[0] != '/' || !clean(u.path) ||
            strchr(u.path, '#') != NULL) {
            abort();
        }
        char out[SPK_URL_HOST_MAX + SPK_URL_PATH_MAX + 32];
        if (spk_url_format(&u, out, sizeof(out)) != 0 ||
            spk_url_parse(out, strlen(out), &back) != 0 || back.tls != u.tls ||
            strcmp(back.host, u.host) != 0 || strcmp(back.port, u.port) != 0 ||
            strcmp(back.path, u.path) != 0) {
            abort();
        }
        (void)spk_url_host_loopback(&u);
    }
    free(s);
    return 0;
}
