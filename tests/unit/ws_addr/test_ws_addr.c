/* Transport address helpers (signaling/src/ws_addr.c): addresses and prefixes, trusted-proxy
 * lists, the client address in a proxy's header, origins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "ws_addr.h"

static ws_ip_t ip(const char *s)
{
    ws_ip_t a;
    assert_int_equal(ws_ip_parse(s, strlen(s), &a), 0);
    return a;
}

static void assert_ip(const ws_ip_t *a, const char *want)
{
    char buf[64];
    ws_ip_format(a, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_parse_and_mask(void **state)
{
    (void)state;
    ws_ip_t a = ip("192.0.2.77");
    assert_int_equal(a.family, 4);
    assert_ip(&a, "192.0.2.77");
    ws_ip_t m = ws_ip_masked(&a, 24);
    assert_ip(&m, "192.0.2.0");
    /* an IPv4-mapped IPv6 address is the IPv4 address */
    ws_ip_t mapped = ip("::ffff:192.0.2.77");
    assert_true(ws_ip_equal(&mapped, &a));
    /* IPv6 by /64: two addresses of one /64 fall together, the next /64 does not */
    ws_ip_t x = ip("2001:db8:1:2:aaaa::1");
    ws_ip_t y = ip("[2001:db8:1:2:ffff:ffff:ffff:ffff]");
    ws_ip_t z = ip("2001:db8:1:3::1");
    ws_ip_t mx = ws_ip_masked(&x, 64), my = ws_ip_masked(&y, 64), mz = ws_ip_masked(&z, 64);
    assert_true(ws_ip_equal(&mx, &my));
    assert_false(ws_ip_equal(&mx, &mz));
    assert_ip(&mx, "2001:db8:1:2::");
    ws_ip_t m56 = ws_ip_masked(&z, 56);
    assert_ip(&m56, "2001:db8:1::");
    ws_ip_t full = ws_ip_masked(&x, 128);
    assert_true(ws_ip_equal(&full, &x));

    const char *bad[] = {"",           "1.2.3",        "1.2.3.4.5", "256.1.1.1", "example.org",
                         "1.2.3.4:80", "fe80::1%eth0", "[::1",      "::1]",      " 1.2.3.4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ws_ip_t out;
        assert_int_equal(ws_ip_parse(bad[i], strlen(bad[i]), &out), SPK_EDECODE);
    }
    /* no read past len */
    ws_ip_t out;
    assert_int_equal(ws_ip_parse("10.0.0.1999", 8, &out), 0);
    assert_ip(&out, "10.0.0.1");
}

static void test_cidr_list(void **state)
{
    (void)state;
    ws_cidr_list_t l;
    char why[128] = "";
    assert_int_equal(
        ws_cidr_list_parse(" 10.0.0.0/8, 192.0.2.1 ,2001:db8::/32,", &l, why, sizeof(why)), 0);
    assert_int_equal(l.n, 3);
    ws_ip_t in1 = ip("10.200.1.1"), in2 = ip("192.0.2.1"), in3 = ip("2001:db8:ffff::9");
    ws_ip_t out1 = ip("11.0.0.1"), out2 = ip("192.0.2.2"), out3 = ip("2001:db9::1");
    assert_true(ws_cidr_list_match(&l, &in1));
    assert_true(ws_cidr_list_match(&l, &in2));
    assert_true(ws_cidr_list_match(&l, &in3));
    assert_false(ws_cidr_list_match(&l, &out1));
    assert_false(ws_cidr_list_match(&l, &out2));
    assert_false(ws_cidr_list_match(&l, &out3));
    assert_int_equal(ws_cidr_list_parse("", &l, why, sizeof(why)), 0);
    assert_int_equal(l.n, 0);
    assert_false(ws_cidr_list_match(&l, &in1));
    const char *bad[] = {"10.0.0.0/33", "::/129",        "10.0.0.0/",
                         "10.0.0.0/x",  "proxy.example", "10.0.0.0/8/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ws_cidr_list_parse(bad[i], &l, why, sizeof(why)), SPK_ECONFIG);
        assert_non_null(strstr(why, "trusted_proxies"));
    }
}

static void forwarded(const char *v, const ws_cidr_list_t *t, int want_rc, const char *want)
{
    ws_ip_t out;
    int rc = ws_forwarded_client(v, strlen(v), t, &out);
    assert_int_equal(rc, want_rc);
    if (rc == 0) {
        assert_ip(&out, want);
    }
}

static void test_forwarded_client(void **state)
{
    (void)state;
    ws_cidr_list_t t;
    char why[128];
    assert_int_equal(ws_cidr_list_parse("10.0.0.0/8", &t, why, sizeof(why)), 0);
    forwarded("198.51.100.7", &t, 0, "198.51.100.7");
    /* the rightmost untrusted entry: what the client wrote itself on the left is ignored */
    forwarded("203.0.113.66, 198.51.100.7", &t, 0, "198.51.100.7");
    forwarded("203.0.113.66, 198.51.100.7, 10.1.1.1,10.2.2.2", &t, 0, "198.51.100.7");
    /* only trusted hops: the leftmost */
    forwarded("10.9.9.9, 10.1.1.1", &t, 0, "10.9.9.9");
    forwarded("198.51.100.7:5000", &t, 0, "198.51.100.7");
    forwarded("[2001:db8::7]:443", &t, 0, "2001:db8::7");
    forwarded("2001:db8::7", &t, 0, "2001:db8::7");
    /* a forged entry to the left of the client's real one is never parsed */
    forwarded("junk, 198.51.100.7", &t, 0, "198.51.100.7");
    const char *bad[] = {"",
                         " , ",
                         "junk",
                         "198.51.100.7, junk",
                         "198.51.100.7:99999",
                         "[2001:db8::7",
                         "1.2.3.4:",
                         "unknown",
                         "198.51.100.7:80:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        forwarded(bad[i], &t, SPK_EDECODE, NULL);
    }
}

static void origin(const char *in, const char *want)
{
    char out[WS_ORIGIN_MAX];
    int rc = ws_origin_normalize(in, strlen(in), out, sizeof(out));
    if (!want) {
        assert_int_equal(rc, SPK_EDECODE);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
}

static void test_origins(void **state)
{
    (void)state;
    origin("https://Consult.Example.NL", "https://consult.example.nl");
    origin("https://consult.example.nl:443", "https://consult.example.nl");
    origin("http://consult.example.nl:80/", "http://consult.example.nl");
    origin("http://127.0.0.1:8480", "http://127.0.0.1:8480");
    origin("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443");
    origin("https://consult.example.nl:80", "https://consult.example.nl:80");
    const char *bad[] = {"null",
                         "",
                         "ftp://example.nl",
                         "https://",
                         "https://a/b",
                         "https://user@host",
                         "https://host:0",
                         "https://host:65536",
                         "https://host:x",
                         "https://ho st",
                         "https://[::1",
                         "javascript:1",
                         "https://host?q",
                         "https://host#f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        origin(bad[i], NULL);
    }
    char out[WS_ORIGIN_MAX];
    assert_int_equal(ws_origin_from_host("https", "Consult.example.nl:443", 22, out, sizeof(out)),
                     0);
    assert_string_equal(out, "https://consult.example.nl");
    assert_int_equal(ws_origin_from_host("http", "127.0.0.1:8480", 14, out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8480");
    assert_int_equal(ws_origin_from_host("http", "a/b", 3, out, sizeof(out)), SPK_EDECODE);
    /* an origin longer than the buffer is refused, not cut */
    char longo[400];
    memset(longo, 'a', sizeof(longo));
    memcpy(longo, "https://", 8);
    assert_int_equal(ws_origin_normalize(longo, sizeof(longo), out, sizeof(out)), SPK_EDECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_mask),
        cmocka_unit_test(test_cidr_list),
        cmocka_unit_test(test_forwarded_client),
        cmocka_unit_test(test_origins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
