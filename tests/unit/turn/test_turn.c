/* TURN credentials (coturn shared-secret scheme) against answers computed independently:
 *
 *   printf '%s' 1700003600:p_Zz1 | openssl dgst -sha1 -hmac north-sea-4711 -binary | base64
 *   python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
 *       b"k"*100, b"1800000000:user", hashlib.sha1).digest()).decode())'
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spk/config.h"
#include "spk/error.h"
#include "spk/turn.h"

static void test_known_answers(void **state)
{
    (void)state;
    static const struct {
        const char *secret, *user;
        int64_t now, ttl;
        const char *username, *password;
    } kat[] = {
        {"north-sea-4711", "p_Zz1", 1700000000, 3600, "1700003600:p_Zz1",
         "smKHBL9BbxlB8jRemm1V6Si63HE="},
        {"x", "a", 0, 86400, "86400:a", "1xiqAjagHe0HcSaeOkqb9oOn9c4="},
        /* UTF-8 secret; a ':' in the user id is kept (coturn splits at the first ':') */
        {"geheim-met-\xc3\xbc", "gp-1:extra", 1794996400, 3600, "1795000000:gp-1:extra",
         "Hxg5BmR0+ZVX1tXCgfge3wK9fig="},
        /* a secret longer than the SHA-1 block is hashed first (RFC 2104) */
        {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
         "kkkkkkkkkkkk",
         "user", 1799999999, 1, "1800000000:user", "25dj1S56H2F/krS1fsPf5wfMTEk="},
    };
    for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
        char user[128];
        char pass[SPK_TURN_PASSWORD_CAP];
        assert_int_equal(spk_turn_credentials(kat[i].secret, kat[i].user, kat[i].now, kat[i].ttl,
                                              user, sizeof(user), pass, sizeof(pass)),
                         0);
        assert_string_equal(user, kat[i].username);
        assert_string_equal(pass, kat[i].password);
    }
}

static void test_exact_capacity(void **state)
{
    (void)state;
    char user[17]; /* "1700003600:p_Zz1" is 16 bytes */
    char pass[SPK_TURN_PASSWORD_CAP];
    assert_int_equal(spk_turn_credentials("north-sea-4711", "p_Zz1", 1700000000, 3600, user,
                                          sizeof(user), pass, sizeof(pass)),
                     0);
    assert_string_equal(user, "1700003600:p_Zz1");
    assert_int_equal(strlen(pass), 28);
}

static void test_small_buffers(void **state)
{
    (void)state;
    char user[16];
    char pass[SPK_TURN_PASSWORD_CAP];
    memset(user, 'x', sizeof(user));
    memset(pass, 'x', sizeof(pass));
    assert_int_equal(spk_turn_credentials("s", "p_Zz1", 1700000000, 3600, user, sizeof(user), pass,
                                          sizeof(pass)),
                     SPK_ERANGE);
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
    char big[64];
    char small_pass[SPK_TURN_PASSWORD_CAP - 1];
    assert_int_equal(
        spk_turn_credentials("s", "u", 1, 1, big, sizeof(big), small_pass, sizeof(small_pass)),
        SPK_ERANGE);
    assert_string_equal(big, "");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char user[64];
    char pass[SPK_TURN_PASSWORD_CAP];
    assert_int_equal(spk_turn_credentials("", "u", 1, 1, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(spk_turn_credentials(NULL, "u", 1, 1, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", "", 1, 1, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", NULL, 1, 1, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(
        spk_turn_credentials("s", "a\nb", 1, 1, user, sizeof(user), pass, sizeof(pass)),
        SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", "u", 1, 0, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", "u", 1, -5, user, sizeof(user), pass, sizeof(pass)),
                     SPK_EINVAL);
    assert_int_equal(
        spk_turn_credentials("s", "u", INT64_MAX, 1, user, sizeof(user), pass, sizeof(pass)),
        SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", "u", 1, 1, NULL, 0, pass, sizeof(pass)), SPK_EINVAL);
    assert_int_equal(spk_turn_credentials("s", "u", 1, 1, user, sizeof(user), NULL, 0), SPK_EINVAL);
}

/* The TURN settings: defaults, flags, range of the ttl. */
static void test_config_keys(void **state)
{
    (void)state;
    spk_config_t c;
    char why[256];
    spk_config_defaults(&c);
    assert_string_equal(c.turn_urls, "");
    assert_string_equal(c.turn_secret, "");
    assert_int_equal(c.turn_ttl_s, 3600);
    assert_int_equal(spk_config_set(&c, "turn-urls",
                                    "turns:turn.example.nl:443?transport=tcp,"
                                    "turn:turn.example.nl:3478",
                                    why, sizeof(why)),
                     0);
    assert_string_equal(c.turn_urls,
                        "turns:turn.example.nl:443?transport=tcp,turn:turn.example.nl:3478");
    assert_int_equal(spk_config_set(&c, "turn-secret", "s3cret", why, sizeof(why)), 0);
    assert_string_equal(c.turn_secret, "s3cret");
    assert_int_equal(spk_config_set(&c, "turn-ttl", "600", why, sizeof(why)), 0);
    assert_int_equal(c.turn_ttl_s, 600);
    assert_int_equal(spk_config_set(&c, "turn-ttl", "59", why, sizeof(why)), SPK_ECONFIG);
    assert_int_equal(spk_config_set(&c, "turn-ttl", "86401", why, sizeof(why)), SPK_ECONFIG);
    assert_int_equal(c.turn_ttl_s, 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers), cmocka_unit_test(test_exact_capacity),
        cmocka_unit_test(test_small_buffers), cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
