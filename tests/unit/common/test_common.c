#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spk/error.h"
#include "spk/map.h"
#include "spk/role.h"
#include "spk/text.h"
#include "spk/url.h"
#include "spk/util.h"

static void test_error_table(void **state)
{
    assert_string_equal(spk_err_wire(SPK_EBADJSON), "bad_json");
    assert_string_equal(spk_err_name(SPK_EFORBIDDEN), "EFORBIDDEN");
    assert_string_equal(spk_err_wire(-9999), "internal");
    assert_string_equal(spk_strerror(0), "success");
}

static void test_b64url_roundtrip(void **state)
{
    const uint8_t in[] = {0xfb, 0xff, 0x00, 0x10, 0x41};
    for (size_t n = 0; n <= sizeof(in); n++) {
        char enc[16];
        uint8_t dec[8];
        size_t e = spk_b64url_encode(enc, in, n);
        assert_int_equal(e, spk_b64url_encoded_len(n));
        long d = spk_b64url_decode(dec, sizeof(dec), enc, e);
        assert_int_equal(d, (long)n);
        assert_memory_equal(dec, in, n);
    }
    uint8_t out[8];
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "a+b/", 4), SPK_EDECODE);
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "abcde", 5), SPK_EDECODE);
    /* "QR" has non-zero trailing bits: non-canonical. */
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "QR", 2), SPK_EDECODE);
    assert_int_equal(spk_b64url_decode(out, 1, "QUJD", 4), SPK_ERANGE);
    /* every position of a whole group and of the tail; bytes outside the alphabet */
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "QUJDQUJD", 8), 6);
    assert_memory_equal(out, "ABCABC", 6);
    for (size_t i = 0; i < 8; i++) {
        char bad[9] = "QUJDQUJD";
        bad[i] = (char)(i % 2 ? 0xc3 : '=');
        assert_int_equal(spk_b64url_decode(out, sizeof(out), bad, 8), SPK_EDECODE);
    }
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "QUJD\0UE", 7), SPK_EDECODE);
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "QUJDQU.", 7), SPK_EDECODE);
    assert_int_equal(spk_b64url_decode(out, sizeof(out), "-_-_", 4), 3);
}

static void test_hex(void **state)
{
    uint8_t b[4];
    char s[9];
    assert_int_equal(spk_hex_decode(b, sizeof(b), "00ff10Ab", 8), 4);
    spk_hex_encode(s, b, 4);
    assert_string_equal(s, "00ff10ab");
    assert_int_equal(spk_hex_decode(b, sizeof(b), "0g", 2), SPK_EDECODE);
    assert_int_equal(spk_hex_decode(b, sizeof(b), "0", 1), SPK_EDECODE);
}

static void test_json_escape(void **state)
{
    char out[64];
    spk_json_escape(out, sizeof(out), "a\"b\\c\n\x01");
    assert_string_equal(out, "a\\\"b\\\\c\\n\\u0001");
    spk_json_escape(out, 4, "abcdef");
    assert_string_equal(out, "abc");
}

static void test_map(void **state)
{
    spk_map_t m;
    spk_map_init(&m);
    static int vals[2000];
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(spk_map_put_u64(&m, (uint64_t)i * 7919u, &vals[i]), 0);
    }
    assert_int_equal(m.len, 2000);
    for (int i = 0; i < 2000; i += 2) {
        assert_ptr_equal(spk_map_del_u64(&m, (uint64_t)i * 7919u), &vals[i]);
    }
    for (int i = 0; i < 2000; i++) {
        void *v = spk_map_get_u64(&m, (uint64_t)i * 7919u);
        assert_ptr_equal(v, (i % 2) ? &vals[i] : NULL);
    }
    assert_int_equal(spk_map_put_str(&m, "c_abc", &vals[0]), 0);
    assert_int_equal(spk_map_put_str(&m, "c_abc", &vals[1]), 0);
    assert_ptr_equal(spk_map_get_str(&m, "c_abc"), &vals[1]);
    size_t it = 0, n = 0;
    void *v;
    while (spk_map_next(&m, &it, &v)) {
        n++;
    }
    assert_int_equal(n, 1001);
    spk_map_free(&m);
    assert_null(spk_map_get_str(&m, "c_abc"));
}

static void test_roles(void **state)
{
    assert_int_equal(spk_role_parse("remote_gp"), SPK_ROLE_REMOTE_GP);
    assert_int_equal(spk_role_parse("root"), SPK_ROLE_NONE);
    assert_int_equal(spk_role_parse(NULL), SPK_ROLE_NONE);
    assert_string_equal(spk_role_name(SPK_ROLE_ADMIN), "admin");
    assert_string_equal(spk_role_name(SPK_ROLE_COUNT), "none");
}

static void test_text_ok(void **state)
{
    (void)state;
    static const char *const good[] = {
        "Sanne de Vries",   "Dr. Ömer Çelik",         "Zoë", "李小龍",
        "Jean-Luc O'Neill", "emoji \xf0\x9f\x98\x80", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!spk_text_ok(good[i], strlen(good[i]))) {
            fail_msg("refused \"%s\"", good[i]);
        }
    }
    static const char *const bad[] = {"line\nforged",
                                      "tab\there",
                                      "nul\x01",
                                      "del\x7f",
                                      "c1 \xc2\x85",
                                      "rlo \xe2\x80\xae",
                                      "lri \xe2\x81\xa6",
                                      "alm \xd8\x9c",
                                      "zwsp \xe2\x80\x8b",
                                      "zwj \xe2\x80\x8d",
                                      "bom \xef\xbb\xbf",
                                      "shy \xc2\xad",
                                      "ls \xe2\x80\xa8",
                                      "tag \xf3\xa0\x80\x81",
                                      "hangul \xe3\x85\xa4",
                                      "overlong \xc0\xaf",
                                      "surrogate \xed\xa0\x80",
                                      "cut \xe2\x82",
                                      "big \xf4\x90\x80\x80",
                                      "lone \x80",
                                      "nonchar \xef\xbf\xbf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (spk_text_ok(bad[i], strlen(bad[i]))) {
            fail_msg("accepted bad text #%zu", i);
        }
    }
    assert_false(spk_text_ok("a\0b", 3));
}

static void test_utf8_copy(void **state)
{
    (void)state;
    char out[8];
    /* "aaaaa" + "é" (2 bytes) + "x": 8 bytes; cap 7 holds 6 bytes: the é would be cut -> drop it */
    assert_int_equal(spk_utf8_copy(out, 7, "aaaaa\xc3\xa9x"), 5);
    assert_string_equal(out, "aaaaa");
    assert_int_equal(spk_utf8_copy(out, 8, "aaaaa\xc3\xa9x"), 7);
    assert_string_equal(out, "aaaaa\xc3\xa9");
    assert_int_equal(spk_utf8_copy(out, 8, "abc"), 3);
    assert_string_equal(out, "abc");
    /* a 4-byte character cut after 1, 2 or 3 of its bytes */
    for (size_t cap = 3; cap <= 5; cap++) {
        assert_int_equal(spk_utf8_copy(out, cap, "ab\xf0\x9f\x98\x80"), 2);
        assert_true(spk_text_ok(out, strlen(out)));
    }
    assert_int_equal(spk_utf8_copy(out, 7, "ab\xf0\x9f\x98\x80"), 6);
    assert_int_equal(spk_utf8_copy(out, 1, "abc"), 0);
    assert_string_equal(out, "");
    /* a source that fits but was cut inside its last character already (an snprintf into a
     * fixed buffer): the incomplete character goes */
    assert_int_equal(spk_utf8_copy(out, sizeof(out), "ab\xc3"), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(spk_utf8_copy(out, sizeof(out), "a\xe2\x82"), 1);
    assert_int_equal(spk_utf8_copy(out, sizeof(out), "\xf0\x9f\x98"), 0);
    assert_int_equal(spk_utf8_copy(out, sizeof(out), "\x80\x80"), 0);
    assert_int_equal(spk_utf8_copy(out, sizeof(out), "a\xe2\x82\xac"), 4);
    assert_true(spk_text_ok(out, strlen(out)));
}

static void test_text_escape(void **state)
{
    (void)state;
    char out[128];
    spk_text_escape(out, sizeof(out), "Dr. Jansen\nforged line");
    assert_string_equal(out, "Dr. Jansen\\u{000A}forged line");
    spk_text_escape(out, sizeof(out),
                    "a\xe2\x80\xae"
                    "b\\c\xff");
    assert_string_equal(out, "a\\u{202E}b\\\\c\\xFF");
    spk_text_escape(out, sizeof(out), "Zo\xc3\xab");
    assert_string_equal(out, "Zo\xc3\xab");
    assert_int_equal(spk_text_escape(out, 6, "ab\ncd"), 2); /* the escape does not fit */
    assert_string_equal(out, "ab");
}

/* "HOST:PORT" and "[V6]:PORT" (listen addresses, relay nodes). */
static void test_hostport(void **state)
{
    (void)state;
    char host[16];
    int port = -1;
    assert_int_equal(spk_hostport_parse("127.0.0.1:8490", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8490);
    assert_int_equal(spk_hostport_parse("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(spk_hostport_parse("relay-a:65535", host, sizeof(host), &port), 0);
    const char *bad[] = {"127.0.0.1",
                         "::1:80",
                         "[::1]80",
                         ":80",
                         "h:",
                         "h:65536",
                         "h:-1",
                         "h:8x",
                         "h:123456",
                         "[::1",
                         "a-very-long-host-name:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(spk_hostport_parse(bad[i], host, sizeof(host), &port), SPK_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_text_ok),
        cmocka_unit_test(test_utf8_copy),
        cmocka_unit_test(test_text_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
