/* The I/O-free parts of the practice system integration: the API's dates (signaling/src/
 * api_time.c), the request mapping (api.c), webhook URLs (common/src/url.c), the status line of
 * a webhook answer (webhook_answer.c) and the retry backoff (webhook.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "spk/error.h"
#include "spk/url.h"
#include "spk/webhook.h"

static int64_t instant(const char *s)
{
    int64_t t = 0;
    assert_true(api_instant_parse(s, &t));
    return t;
}

static void test_instants(void **state)
{
    (void)state;
    assert_int_equal(instant("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(instant("2026-05-12T14:30:00+02:00"), instant("2026-05-12T12:30:00Z"));
    assert_int_equal(instant("2026-05-12T14:30:00.123456789-01:30"),
                     instant("2026-05-12T16:00:00Z"));
    assert_int_equal(instant("2028-02-29T23:59:60Z"), instant("2028-03-01T00:00:00Z"));
    assert_int_equal(instant("2026-05-12T12:00:00+14:00"), instant("2026-05-11T22:00:00Z"));
    static const char *const bad[] = {
        "2026-05-12T14:30:00",       "2026-02-29T10:00:00Z",
        "2026-04-31T10:00:00Z",      "2026-05-12T24:00:00Z",
        "2026-05-12T14:30:61Z",      "2026-05-12T14:30:00+14:30",
        "2026-05-12T14:30:00.Z",     " 2026-05-12T14:30:00Z",
        "+026-05-12T14:30:00Z",      "2026-5-12T14:30:00Z",
        "2026-05-12 14:30:00Z",      "2026-05-12T14:30:00Zx",
        "2026-05-12T14:30:00+2:00",  "2026-05-12T14:30:00+02:0 ",
        "0000-01-01T00:00:00Z",      "2026-05-12T14:30:00.1234567890Z",
        "2026-05-12T14:30:00+-1:00", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t;
        if (api_instant_parse(bad[i], &t)) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    char buf[32];
    api_instant_format(instant("2026-05-12T14:30:05+02:00"), buf, sizeof(buf));
    assert_string_equal(buf, "2026-05-12T12:30:05Z");
    api_instant_format(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
}

static void test_civil(void **state)
{
    (void)state;
    api_civil_t c;
    api_civil(0, &c);
    assert_true(c.year == 1970 && c.month == 1 && c.day == 1 && c.wday == 4);
    api_civil(instant("2000-02-29T13:14:15Z"), &c);
    assert_true(c.year == 2000 && c.month == 2 && c.day == 29 && c.hour == 13 && c.min == 14 &&
                c.sec == 15 && c.wday == 2);
    assert_int_equal(api_days_from_civil(2026, 5, 12) * 86400, instant("2026-05-12T00:00:00Z"));
}

static void test_local_days(void **state)
{
    (void)state;
    int64_t from, until;
    /* summer time begins: a day of 23 hours */
    assert_true(api_local_day("2026-03-29", &from, &until));
    assert_int_equal(from, instant("2026-03-28T23:00:00Z"));
    assert_int_equal(until, instant("2026-03-29T22:00:00Z"));
    /* ends: 25 hours */
    assert_true(api_local_day("2026-10-25", &from, &until));
    assert_int_equal(from, instant("2026-10-24T22:00:00Z"));
    assert_int_equal(until, instant("2026-10-25T23:00:00Z"));
    assert_true(api_local_day("2026-05-12", &from, &until));
    assert_int_equal(until - from, 86400);
    assert_int_equal(api_local_offset(instant("2026-03-29T00:59:59Z")), 3600);
    assert_int_equal(api_local_offset(instant("2026-03-29T01:00:00Z")), 7200);
    assert_int_equal(api_local_offset(instant("2026-10-25T00:59:59Z")), 7200);
    assert_int_equal(api_local_offset(instant("2026-10-25T01:00:00Z")), 3600);
    static const char *const bad[] = {"2026-02-29", "2026-13-01", "2026-1-01 ", " 2026-1-01",
                                      "+026-01-01", "1999-12-31", "2026-05-1x", "2026/05/12"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (api_local_day(bad[i], &from, &until)) {
            fail_msg("accepted %s", bad[i]);
        }
    }
}

static int map(const char *method, const char *path, const char *body, const char *idem,
               int *status)
{
    api_req_t in;
    memset(&in, 0, sizeof(in));
    in.method = method;
    in.path = path;
    in.body = body;
    in.body_len = body != NULL ? strlen(body) : 0;
    in.content_type = body != NULL ? "application/json" : "";
    in.idempotency_key = idem;
    api_call_t *c = NULL;
    bool fhir;
    char why[160];
    int rc = api_call_new(&in, &c, status, &fhir, why, sizeof(why));
    api_call_free(c);
    return rc;
}

static void test_routes(void **state)
{
    (void)state;
    int st;
    assert_int_equal(map("POST", "/api/v1/consults", "{\"patient\":\"p\",\"gp\":\"g\"}", "k", &st),
                     0);
    /* the body cannot choose the action or its id */
    assert_int_equal(
        map("POST", "/api/v1/consults", "{\"patient\":\"p\",\"type\":\"consult.end\"}", "", &st),
        SPK_EBADMSG);
    assert_int_equal(st, 400);
    assert_int_equal(map("GET", "/api/v1/consults/c_1", "{}", "", &st), SPK_EBADMSG);
    assert_int_equal(map("GET", "/api/v1/consults/c_1", NULL, "k", &st), SPK_EBADMSG);
    assert_int_equal(map("PUT", "/api/v1/consults", NULL, "", &st), SPK_EUNKNOWNTYPE);
    assert_int_equal(st, 405);
    assert_int_equal(map("GET", "/api/v1/consults/c_1/../x", NULL, "", &st), SPK_ENOTFOUND);
    assert_int_equal(st, 404);
    assert_int_equal(map("GET", "/api/v1/consults/c%201", NULL, "", &st), SPK_ENOTFOUND);
}

static void url(const char *s, int want, bool tls, const char *host, const char *port,
                const char *path)
{
    spk_url_t u;
    int rc = spk_url_parse(s, strlen(s), &u);
    if (rc != want) {
        fail_msg("%s: %d, want %d", s, rc, want);
    }
    if (rc == 0) {
        assert_int_equal(u.tls, tls);
        assert_string_equal(u.host, host);
        assert_string_equal(u.port, port);
        assert_string_equal(u.path, path);
    }
}

static void test_urls(void **state)
{
    (void)state;
    url("https://his.example.nl/hooks?x=1#f", 0, true, "his.example.nl", "443", "/hooks?x=1");
    url("HTTP://127.0.0.1:8080", 0, false, "127.0.0.1", "8080", "/");
    url("https://[2001:db8::1]:08443?q", 0, true, "2001:db8::1", "8443", "/?q");
    url("https://user@host/", SPK_EINVAL, false, "", "", "");
    url("https://h:0/", SPK_EINVAL, false, "", "", "");
    url("https://h:65536/", SPK_EINVAL, false, "", "", "");
    url("https://h:http/", SPK_EINVAL, false, "", "", "");
    url("https://h:/", SPK_EINVAL, false, "", "", "");
    url("https://h/a b", SPK_EINVAL, false, "", "", "");
    url("https://h/a\r\nX-Injected: 1", SPK_EINVAL, false, "", "", "");
    url("https:///path", SPK_EINVAL, false, "", "", "");
    url("https://[::1/", SPK_EINVAL, false, "", "", "");
    url("ftp://h/", SPK_EINVAL, false, "", "", "");
    url("https://h\xc3\xa9.nl/", SPK_EINVAL, false, "", "", "");
    spk_url_t u;
    assert_int_equal(spk_url_parse("http://[::1]:9/h", 16, &u), 0);
    assert_true(spk_url_host_loopback(&u));
    char out[128];
    assert_int_equal(spk_url_format(&u, out, sizeof(out)), 0);
    assert_string_equal(out, "http://[::1]:9/h");
    static const char *const loop[] = {"http://localhost/", "http://127.1.2.3:80/"};
    static const char *const not_loop[] = {"http://127.0.0.1.evil.nl/", "http://128.0.0.1/",
                                           "http://localhost.evil.nl/"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(spk_url_parse(loop[i], strlen(loop[i]), &u), 0);
        assert_true(spk_url_host_loopback(&u));
    }
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(spk_url_parse(not_loop[i], strlen(not_loop[i]), &u), 0);
        assert_false(spk_url_host_loopback(&u));
    }
}

static int status(const char *s)
{
    return spk_webhook_status(s, strlen(s));
}

static void test_status_line(void **state)
{
    (void)state;
    assert_int_equal(status("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 200);
    assert_int_equal(status("HTTP/1.0 500 Internal Server Error\r\n"), 500);
    assert_int_equal(status("HTTP/1.1 204\r\n"), 204);
    assert_int_equal(status("HTTP/1.1 302 Found\n"), 302);
    assert_int_equal(status("HTTP/1.1 200 OK"), 0); /* read more */
    assert_int_equal(status("HTT"), 0);
    assert_int_equal(status("HTTP/1.1 99 x\r\n"), SPK_EDECODE);
    assert_int_equal(status("HTTP/1.1 2000 OK\r\n"), SPK_EDECODE);
    assert_int_equal(status("HTTP/1.1 -20 OK\r\n"), SPK_EDECODE);
    assert_int_equal(status("HTTP/2 200\r\n"), SPK_EDECODE);
    assert_int_equal(status("<html>\n"), SPK_EDECODE);
    char big[SPK_WEBHOOK_STATUS_MAX + 8];
    memset(big, 'x', sizeof(big));
    memcpy(big, "HTTP/1.1 200 ", 13);
    assert_int_equal(spk_webhook_status(big, SPK_WEBHOOK_STATUS_MAX - 1), 0);
    assert_int_equal(spk_webhook_status(big, SPK_WEBHOOK_STATUS_MAX), SPK_EDECODE);
    big[SPK_WEBHOOK_STATUS_MAX + 2] = '\n'; /* a line ending past the limit is too late */
    assert_int_equal(spk_webhook_status(big, sizeof(big)), SPK_EDECODE);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(spk_webhook_backoff_ms(1), 1000);
    assert_int_equal(spk_webhook_backoff_ms(2), 2000);
    assert_int_equal(spk_webhook_backoff_ms(3), 4000);
    assert_int_equal(spk_webhook_backoff_ms(9), 256000);
    assert_int_equal(spk_webhook_backoff_ms(10), 300000);
    assert_int_equal(spk_webhook_backoff_ms(1000), 300000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instants),   cmocka_unit_test(test_civil),
        cmocka_unit_test(test_local_days), cmocka_unit_test(test_routes),
        cmocka_unit_test(test_urls),       cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
