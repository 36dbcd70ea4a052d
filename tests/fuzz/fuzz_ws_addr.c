/* libFuzzer target for the transport's header parsers (signaling/src/ws_addr.h).
 *
 * The input is read as an X-Forwarded-For value, an Origin, a Host under both schemes, an
 * address and a trusted-proxy list. Properties checked, each aborting on failure:
 *  - a client address found in a forwarded list is printed and parses back to itself, and is
 *    not a trusted proxy unless every entry was one;
 *  - a normalised origin (or Host) normalises again to itself;
 *  - a parsed address prints and parses back to itself, and masking is idempotent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spk/error.h"
#include "ws_addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const ws_ip_t *ip)
{
    char buf[64];
    ws_ip_format(ip, buf, sizeof(buf));
    ws_ip_t back;
    if (ws_ip_parse(buf, strlen(buf), &back) != 0 || !ws_ip_equal(&back, ip)) {
        abort();
    }
    for (int p = 0; p <= (ip->family == 4 ? 32 : 128); p += 8) {
        ws_ip_t m = ws_ip_masked(ip, p);
        ws_ip_t mm = ws_ip_masked(&m, p);
        if (!ws_ip_equal(&m, &mm)) {
            abort();
        }
    }
}

static void check_origin(const char *s, size_t len)
{
    char a[WS_ORIGIN_MAX], b[WS_ORIGIN_MAX];
    if (ws_origin_normalize(s, len, a, sizeof(a)) == 0) {
        if (ws_origin_normalize(a, strlen(a), b, sizeof(b)) != 0 || strcmp(a, b) != 0) {
            abort();
        }
    }
    static const char *schemes[] = {"http", "https"};
    for (int i = 0; i < 2; i++) {
        if (ws_origin_from_host(schemes[i], s, len, a, sizeof(a)) == 0) {
            if (ws_origin_normalize(a, strlen(a), b, sizeof(b)) != 0 || strcmp(a, b) != 0) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the parsers take (pointer, length): hand them an exact-size copy so that a read past the
     * end is caught by ASan */
    char *s = malloc(size ? size : 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);

    static ws_cidr_list_t trusted;
    static int init;
    if (!init) {
        char why[64];
        if (ws_cidr_list_parse("10.0.0.0/8, 2001:db8::/32, 127.0.0.1", &trusted, why,
                               sizeof(why)) != 0) {
            abort();
        }
        init = 1;
    }
    ws_ip_t client;
    if (ws_forwarded_client(s, size, &trusted, &client) == 0) {
        check_roundtrip(&client);
    }
    check_origin(s, size);
    ws_ip_t ip;
    if (ws_ip_parse(s, size, &ip) == 0) {
        check_roundtrip(&ip);
    }
    /* as a configuration string (NUL-terminated) */
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = '\0';
        ws_cidr_list_t l;
        char why[128];
        if (ws_cidr_list_parse(z, &l, why, sizeof(why)) == 0) {
            for (int i = 0; i < l.n; i++) {
                ws_ip_t m = ws_ip_masked(&l.v[i].net, l.v[i].prefix);
                if (!ws_ip_equal(&m, &l.v[i].net) || !ws_cidr_list_match(&l, &l.v[i].net)) {
                    abort();
                }
            }
        }
        free(z);
    }
    free(s);
    return 0;
}
