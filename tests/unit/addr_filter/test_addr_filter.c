/* Unit tests for the remote candidate address filter (spk/addr_filter.h): the built-in rules
 * for a relay on loopback, on a public and on a private address, configured allow and deny
 * ranges, IPv4-mapped forms, names, and malformed ranges with their reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "spk/addr_filter.h"
#include "spk/error.h"

static void filter(spk_addr_filter_t *f, const char *const *local, size_t n, const char *allow,
                   const char *deny)
{
    char why[128] = "";
    int rc = spk_addr_filter_init(f, local, n, allow, deny, why, sizeof(why));
    if (rc != 0) {
        fail_msg("init: %s", why);
    }
}

#define ALLOWS(f, a) assert_true(spk_addr_filter_allows(f, a))
#define REFUSES(f, a) assert_false(spk_addr_filter_allows(f, a))

static void test_public_relay(void **state)
{
    (void)state;
    static const char *const local[] = {"203.0.113.7", "2001:db8::7"};
    spk_addr_filter_t f;
    filter(&f, local, 2, NULL, NULL);
    /* global unicast: a browser's server-reflexive address */
    ALLOWS(&f, "198.51.100.20");
    ALLOWS(&f, "8.8.8.8");
    ALLOWS(&f, "2001:db8:1::20");
    ALLOWS(&f, "::ffff:198.51.100.20");
    /* loopback: never, the relay does not listen there */
    REFUSES(&f, "127.0.0.1");
    REFUSES(&f, "127.1.2.3");
    REFUSES(&f, "::1");
    REFUSES(&f, "::ffff:127.0.0.1");
    /* private ranges: the relay has no address there */
    REFUSES(&f, "10.0.0.1");
    REFUSES(&f, "172.16.0.1");
    REFUSES(&f, "172.31.255.255");
    ALLOWS(&f, "172.32.0.1");
    REFUSES(&f, "192.168.1.10");
    REFUSES(&f, "100.64.0.1");
    REFUSES(&f, "fd12:3456::1");
    REFUSES(&f, "::ffff:10.1.2.3");
    /* always refused */
    REFUSES(&f, "0.0.0.0");
    REFUSES(&f, "0.1.2.3");
    REFUSES(&f, "::");
    REFUSES(&f, "169.254.169.254");
    REFUSES(&f, "fe80::1");
    REFUSES(&f, "224.0.0.251");
    REFUSES(&f, "239.255.255.250");
    REFUSES(&f, "ff02::fb");
    REFUSES(&f, "255.255.255.255");
    REFUSES(&f, "240.0.0.1");
    REFUSES(&f, "::127.0.0.1");     /* IPv4-compatible */
    REFUSES(&f, "64:ff9b::7f00:1"); /* NAT64 of 127.0.0.1 */
    REFUSES(&f, "::ffff:0:7f00:1"); /* IPv4-translated */
    /* not literals: never resolved */
    REFUSES(&f, "6f1c2a3b-1111-2222-3333-444455556666.local");
    REFUSES(&f, "relay.example.nl");
    REFUSES(&f, "");
    REFUSES(&f, NULL);
    REFUSES(&f, "1.2.3.4 ");
}

static void test_loopback_relay(void **state)
{
    (void)state;
    static const char *const local[] = {"127.0.0.1", "::1"};
    spk_addr_filter_t f;
    filter(&f, local, 2, NULL, NULL);
    ALLOWS(&f, "127.0.0.1");
    ALLOWS(&f, "::1");
    ALLOWS(&f, "::ffff:127.0.0.1");
    REFUSES(&f, "127.0.0.2"); /* another loopback address: another service's */
    REFUSES(&f, "192.168.1.10");
    ALLOWS(&f, "198.51.100.20");
}

static void test_private_relay(void **state)
{
    (void)state;
    static const char *const local[] = {"10.20.0.5"};
    spk_addr_filter_t f;
    filter(&f, local, 1, NULL, NULL);
    ALLOWS(&f, "10.20.0.9");
    ALLOWS(&f, "192.168.1.10");
    ALLOWS(&f, "fd00::1");
    REFUSES(&f, "127.0.0.1");
    REFUSES(&f, "169.254.1.1");
}

static void test_configured(void **state)
{
    (void)state;
    static const char *const local[] = {"203.0.113.7"};
    spk_addr_filter_t f;
    /* allow one private network and one loopback address; deny one public network and a
     * host inside the allowed private one (deny wins) */
    filter(&f, local, 1, "192.168.10.0/24, 127.0.0.3 fd00:1::/64", "198.51.100.0/24,192.168.10.66");
    ALLOWS(&f, "192.168.10.5");
    REFUSES(&f, "192.168.10.66");
    REFUSES(&f, "192.168.11.5");
    ALLOWS(&f, "127.0.0.3");
    REFUSES(&f, "127.0.0.4");
    ALLOWS(&f, "fd00:1::9");
    REFUSES(&f, "fd00:2::9");
    REFUSES(&f, "198.51.100.20");
    ALLOWS(&f, "198.51.101.20");
    /* an allow range does not resurrect a name */
    REFUSES(&f, "x.local");
}

static void test_bad_ranges(void **state)
{
    (void)state;
    static const char *const local[] = {"203.0.113.7"};
    static const struct {
        const char *allow;
        const char *reason;
    } bad[] = {
        {"10.0.0.0/33", "prefix length over 32"}, {"10.0.0.1/8", "host bits set"},
        {"10.0.0.0/", "bad prefix length"},       {"10.0.0.0/8x", "bad prefix length"},
        {"10.0.0.0/-1", "bad prefix length"},     {"2001:db8::/129", "prefix length over 128"},
        {"2001:db8::1/32", "host bits set"},      {"example.nl", "is not an IP address"},
        {"10.0.0.256", "is not an IP address"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spk_addr_filter_t f;
        char why[128] = "";
        assert_int_equal(spk_addr_filter_init(&f, local, 1, bad[i].allow, NULL, why, sizeof(why)),
                         SPK_EDECODE);
        if (strstr(why, bad[i].reason) == NULL) {
            fail_msg("%s: reason '%s' lacks '%s'", bad[i].allow, why, bad[i].reason);
        }
    }
    spk_addr_filter_t f;
    char why[128] = "";
    static const char *const names[] = {"relay.example.nl"};
    assert_int_equal(spk_addr_filter_init(&f, names, 1, NULL, NULL, why, sizeof(why)), SPK_EDECODE);
    char many[512] = "";
    for (int i = 0; i <= SPK_ADDR_FILTER_MAX_RANGES; i++) {
        char one[24];
        snprintf(one, sizeof(one), "10.%d.0.0/16,", i);
        strcat(many, one);
    }
    assert_int_equal(spk_addr_filter_init(&f, local, 1, NULL, many, why, sizeof(why)), SPK_ETOOBIG);
    /* Exactly the maximum is fine; empty entries are skipped. */
    many[strlen(many) - strlen("10.16.0.0/16,")] = '\0';
    assert_int_equal(spk_addr_filter_init(&f, local, 1, ",, ", many, why, sizeof(why)), 0);
    assert_int_equal(f.n_deny, SPK_ADDR_FILTER_MAX_RANGES);
    assert_int_equal(f.n_allow, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_relay),  cmocka_unit_test(test_loopback_relay),
        cmocka_unit_test(test_private_relay), cmocka_unit_test(test_configured),
        cmocka_unit_test(test_bad_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
