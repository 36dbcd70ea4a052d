/* Unit tests for the relay link's TLS (spk/relay_tls.h): TLS 1.3 with the PSK from the link
 * secret, over memory on both sides: the handshake, data both ways, and refusals (another
 * secret, bytes that are not TLS, writing before the handshake). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "spk/error.h"
#include "spk/relay_tls.h"

#define SECRET "a-link-secret-of-some-length"

/* Moves pending ciphertext from a to b; returns b's feed result. */
static int shuttle(spk_relay_tls_t *a, spk_relay_tls_t *b)
{
    uint8_t buf[16384];
    int rc = 0;
    size_t n;
    while (rc == 0 && (n = spk_relay_tls_pending(a, buf, sizeof(buf))) > 0) {
        rc = spk_relay_tls_feed(b, buf, n);
    }
    return rc;
}

static void make(const char *server_secret, spk_relay_tls_ctx_t **cs, spk_relay_tls_ctx_t **ss,
                 spk_relay_tls_t **c, spk_relay_tls_t **s)
{
    assert_int_equal(spk_relay_tls_ctx_new(false, SECRET, strlen(SECRET), cs), 0);
    assert_int_equal(spk_relay_tls_ctx_new(true, server_secret, strlen(server_secret), ss), 0);
    assert_int_equal(spk_relay_tls_new(*cs, c), 0);
    assert_int_equal(spk_relay_tls_new(*ss, s), 0);
}

static void done(spk_relay_tls_ctx_t *cs, spk_relay_tls_ctx_t *ss, spk_relay_tls_t *c,
                 spk_relay_tls_t *s)
{
    spk_relay_tls_free(c);
    spk_relay_tls_free(s);
    spk_relay_tls_ctx_free(cs);
    spk_relay_tls_ctx_free(ss);
}

static void test_handshake_and_data(void **state)
{
    (void)state;
    spk_relay_tls_ctx_t *cs, *ss;
    spk_relay_tls_t *c, *s;
    make(SECRET, &cs, &ss, &c, &s);
    assert_false(spk_relay_tls_ready(c));
    assert_int_equal(spk_relay_tls_write(c, (const uint8_t *)"x", 1), SPK_ESTATE);
    for (int i = 0; i < 4 && !(spk_relay_tls_ready(c) && spk_relay_tls_ready(s)); i++) {
        assert_int_equal(shuttle(c, s), 0);
        assert_int_equal(shuttle(s, c), 0);
    }
    assert_true(spk_relay_tls_ready(c));
    assert_true(spk_relay_tls_ready(s));
    static uint8_t big[10000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 7);
    }
    assert_int_equal(spk_relay_tls_write(c, big, sizeof(big)), 0);
    assert_int_equal(shuttle(c, s), 0);
    static uint8_t got[10000];
    size_t have = 0;
    int n;
    while ((n = spk_relay_tls_read(s, got + have, 1000)) > 0) {
        have += (size_t)n;
    }
    assert_int_equal(n, 0);
    assert_int_equal(have, sizeof(big));
    assert_memory_equal(got, big, sizeof(big));
    assert_int_equal(spk_relay_tls_write(s, (const uint8_t *)"pong", 4), 0);
    assert_int_equal(shuttle(s, c), 0);
    uint8_t p[8];
    assert_int_equal(spk_relay_tls_read(c, p, sizeof(p)), 4);
    assert_memory_equal(p, "pong", 4);
    /* Ciphertext changed on the way is refused, and the connection stays broken. */
    assert_int_equal(spk_relay_tls_write(c, (const uint8_t *)"ping", 4), 0);
    uint8_t ct[256];
    size_t m = spk_relay_tls_pending(c, ct, sizeof(ct));
    ct[m - 1] ^= 1;
    assert_int_equal(spk_relay_tls_feed(s, ct, m), 0);
    assert_int_equal(spk_relay_tls_read(s, p, sizeof(p)), SPK_EDECODE);
    assert_int_equal(spk_relay_tls_read(s, p, sizeof(p)), SPK_EDECODE);
    done(cs, ss, c, s);
}

static void test_other_secret(void **state)
{
    (void)state;
    spk_relay_tls_ctx_t *cs, *ss;
    spk_relay_tls_t *c, *s;
    make("a-different-secret-altogether", &cs, &ss, &c, &s);
    assert_int_equal(shuttle(c, s), SPK_EVERIFY);
    assert_false(spk_relay_tls_ready(s));
    /* The server's alert makes the client fail too. */
    int rc = shuttle(s, c);
    assert_true(rc == SPK_EVERIFY || !spk_relay_tls_ready(c));
    done(cs, ss, c, s);
}

static void test_not_tls(void **state)
{
    (void)state;
    spk_relay_tls_ctx_t *cs, *ss;
    spk_relay_tls_t *c, *s;
    make(SECRET, &cs, &ss, &c, &s);
    const uint8_t junk[] = {0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(spk_relay_tls_feed(s, junk, sizeof(junk)), SPK_EVERIFY);
    assert_int_equal(spk_relay_tls_feed(s, junk, 1), SPK_EVERIFY);
    done(cs, ss, c, s);
    /* Secrets outside the bounds. */
    spk_relay_tls_ctx_t *x;
    assert_int_equal(spk_relay_tls_ctx_new(true, "short", 5, &x), SPK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_other_secret),
        cmocka_unit_test(test_not_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
