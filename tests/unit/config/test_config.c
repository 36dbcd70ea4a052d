/* Configuration: defaults, JSON file, flags over file, refused values and keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spk/config.h"
#include "spk/error.h"

/* Writes `text` to a fresh temporary file; the caller unlinks `path`. */
static void write_tmp(char *path, size_t cap, const char *text)
{
    snprintf(path, cap, "/tmp/spk_cfg_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int load_text(spk_config_t *c, const char *text, char *why, size_t why_len)
{
    char path[64];
    write_tmp(path, sizeof(path), text);
    int rc = spk_config_load_file(c, path, why, why_len);
    unlink(path);
    return rc;
}

static void test_defaults(void **state)
{
    spk_config_t c;
    spk_config_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8480);
    assert_string_equal(c.data_dir, "./data");
    assert_string_equal(c.files_dir, "");
    assert_string_equal(c.web_root, "");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.max_connections, 20000);
    assert_int_equal(c.max_message_bytes, 65536);
    assert_int_equal(c.send_queue_bytes, 1024 * 1024);
    assert_int_equal(c.handshake_timeout_s, 10);
    assert_int_equal(c.auth_timeout_s, 15);
    assert_int_equal(c.idle_timeout_s, 60);
    assert_true(c.rate_per_s == 50.0);
    assert_true(c.rate_burst == 100.0);
    assert_int_equal(c.drain_timeout_s, 5);
    assert_string_equal(c.issuer_name, "spreekkamer-local");
    assert_int_equal(c.token_leeway_s, 60);
    assert_int_equal(c.invite_ttl_s, 86400);
    assert_int_equal(c.patient_session_s, 43200);
    assert_int_equal(c.n_issuers, 0);
    assert_int_equal(c.relay_fallback_loss_pct, 20);
    assert_int_equal(c.relay_fallback_backoff_max_ms, 64000);
    assert_int_equal(c.relay_simulcast_loss_pct, 10);
    assert_int_equal(c.relay_simulcast_up_ms, 4000);
    spk_config_finish(&c);
    assert_string_equal(c.public_url, "http://127.0.0.1:8480");
}

static void test_file(void **state)
{
    spk_config_t c;
    spk_config_defaults(&c);
    char why[256] = "";
    int rc = load_text(&c,
                       "{\"listen\": \"[::1]:9000\", \"data_dir\": \"/tmp/d\",\n"
                       " \"max_connections\": 10, \"rate_per_s\": 2.5, \"idle_timeout_s\": 30,\n"
                       " \"log_level\": \"debug\", \"send_queue_bytes\": 4096,\n"
                       " \"issuers\": [\"idp k1 AAAA\", \"idp2 k2 BBBB\"],\n"
                       " \"tls_cert\": \"c.pem\", \"tls_key\": \"k.pem\"}",
                       why, sizeof(why));
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_string_equal(c.data_dir, "/tmp/d");
    assert_int_equal(c.max_connections, 10);
    assert_true(c.rate_per_s == 2.5);
    assert_int_equal(c.idle_timeout_s, 30);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.send_queue_bytes, 4096);
    assert_int_equal(c.n_issuers, 2);
    assert_string_equal(c.issuers[1], "idp2 k2 BBBB");
    spk_config_finish(&c);
    assert_string_equal(c.public_url, "https://[::1]:9000");

    /* separate host and port keys */
    rc = load_text(&c, "{\"listen_host\": \"127.0.0.1\", \"listen_port\": 0}", why, sizeof(why));
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 0);
}

static void test_flags_override_file(void **state)
{
    spk_config_t c;
    spk_config_defaults(&c);
    char why[256] = "";
    assert_int_equal(load_text(&c,
                               "{\"listen\": \"127.0.0.1:9000\", \"max_message_bytes\": 1024,"
                               " \"issuers\": [\"a b c\"]}",
                               why, sizeof(why)),
                     0);
    assert_int_equal(spk_config_set(&c, "listen", "127.0.0.1:9100", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "max-message-bytes", "2048", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "data", "/var/lib/x", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "web-root", "/srv/web", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "rate", "7.5", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "burst", "20", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "issuer", "d e f", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "public-url", "https://gp.example/", why, sizeof(why)), 0);
    assert_int_equal(spk_config_set(&c, "drain-timeout", "0", why, sizeof(why)), 0);
    assert_int_equal(c.listen_port, 9100);
    assert_int_equal(c.max_message_bytes, 2048);
    assert_string_equal(c.data_dir, "/var/lib/x");
    assert_string_equal(c.web_root, "/srv/web");
    assert_true(c.rate_per_s == 7.5);
    assert_true(c.rate_burst == 20.0);
    assert_int_equal(c.drain_timeout_s, 0);
    assert_int_equal(c.n_issuers, 2); /* --issuer appends to the file's list */
    assert_string_equal(c.issuers[0], "a b c");
    assert_string_equal(c.issuers[1], "d e f");
    spk_config_finish(&c);
    assert_string_equal(c.public_url, "https://gp.example"); /* trailing slash trimmed */
}

typedef struct {
    const char *key, *value;
} kv_t;

static void test_bad_flags(void **state)
{
    static const kv_t bad[] = {
        {"listen", "127.0.0.1"},
        {"listen", "::1:80"},
        {"listen", "[::1]80"},
        {"listen", "host:70000"},
        {"listen", ":80"},
        {"listen", "h:8x"},
        {"max-connections", "0"},
        {"max-connections", "ten"},
        {"max-connections", "1.5"},
        {"idle-timeout", "1"},
        {"log-level", "verbose"},
        {"rate", "0"},
        {"rate", "nan"},
        {"max-message-bytes", "-1"},
        {"handshake-timeout", ""},
        {"issuer", "only-two fields"},
        {"send-queue-bytes", "1e99"},
        {"relay-fallback-loss", "0"},
        {"relay-fallback-loss", "100"},
        {"relay-fallback-weak", "100"},
        {"relay-simulcast-loss", "0"},
        {"relay-simulcast-up", "99"},
        {"relay-simulcast-up-max", "x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spk_config_t c;
        spk_config_defaults(&c);
        char why[256] = "";
        int rc = spk_config_set(&c, bad[i].key, bad[i].value, why, sizeof(why));
        if (rc != SPK_ECONFIG) {
            fail_msg("--%s %s: got %d, expected SPK_ECONFIG", bad[i].key, bad[i].value, rc);
        }
        if (strstr(why, bad[i].key) == NULL) {
            fail_msg("--%s %s: why \"%s\" does not name the option", bad[i].key, bad[i].value, why);
        }
    }
    spk_config_t c;
    spk_config_defaults(&c);
    char why[256] = "";
    assert_int_equal(spk_config_set(&c, "no-such-flag", "1", why, sizeof(why)), SPK_ENOTFOUND);
    assert_non_null(strstr(why, "no-such-flag"));
    /* an overlong string is refused, not truncated */
    char big[700];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(spk_config_set(&c, "data", big, why, sizeof(why)), SPK_ECONFIG);
    assert_string_equal(c.data_dir, "./data");
}

static void test_bad_files(void **state)
{
    static const char *const bad[] = {
        "{\"listen\": 8480}",
        "{\"max_connections\": \"10\"}",
        "{\"max_connections\": 1.5}",
        "{\"no_such_key\": 1}",
        "{\"issuers\": \"x y z\"}",
        "{\"issuers\": [1]}",
        "{\"data\": \"/tmp\"}", /* flag names are not file keys */
        "[1, 2]",
        "{\"listen\": \"127.0.0.1:1\",",
        "{\"rate_per_s\": 1, \"rate_per_s\": 2}",
        "{\"log_level\": \"loud\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spk_config_t c;
        spk_config_defaults(&c);
        char why[256] = "";
        int rc = load_text(&c, bad[i], why, sizeof(why));
        if (rc != SPK_ECONFIG || why[0] == '\0') {
            fail_msg("%s: got %d (%s), expected SPK_ECONFIG with a reason", bad[i], rc, why);
        }
    }
    spk_config_t c;
    spk_config_defaults(&c);
    char why[256] = "";
    assert_int_equal(load_text(&c, "{\"no_such_key\": 1}", why, sizeof(why)), SPK_ECONFIG);
    assert_non_null(strstr(why, "no_such_key"));
    assert_int_equal(spk_config_load_file(&c, "/nonexistent/spk.json", why, sizeof(why)),
                     SPK_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
