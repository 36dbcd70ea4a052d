/* Unit tests for the relay link's TLS (spk/relay_tls.h): TLS 1.3 with the PSK from the link
 * secret, over memory on both sides: the handshake, data both ways, and refusals (another
 * secret, bytes that are not TLS, writing before the handshake); then both ends of a whole
 * connection, TLS and link frames stacked (spk/relay_conn.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "spk/error.h"
#include "spk/relay_conn.h"
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

/* Both ends of a relay link connection (spk/relay_conn.h): TLS, the node's HELLO as soon as
 * TLS is up, the link handshake, then messages both ways. */
typedef struct {
    spk_link_msg_t got[8];
    int n;
} inbox_t;

static bool collect(const spk_link_msg_t *m, void *user)
{
    inbox_t *b = user;
    if (b->n < 8) {
        b->got[b->n++] = *m;
    }
    return true;
}

/* Moves ciphertext from a to b until neither has any; returns b's last feed result. */
static int pump(spk_link_conn_t *a, spk_link_conn_t *b, inbox_t *box)
{
    static uint8_t buf[16384];
    size_t n;
    int rc = 0;
    const char *why;
    while (rc == 0 && (n = spk_link_conn_pending(a, buf, sizeof(buf))) > 0) {
        rc = spk_link_conn_feed(b, buf, n, collect, box, &why);
    }
    return rc;
}

static void test_conn_pair(void **state)
{
    (void)state;
    spk_relay_tls_ctx_t *cs, *ss;
    assert_int_equal(spk_relay_tls_ctx_new(false, SECRET, strlen(SECRET), &cs), 0);
    assert_int_equal(spk_relay_tls_ctx_new(true, SECRET, strlen(SECRET), &ss), 0);
    spk_link_msg_t hello = {.capacity = 9};
    snprintf(hello.node_id, sizeof(hello.node_id), "relay-x");
    spk_link_conn_t *ctl, *node;
    assert_int_equal(spk_link_conn_new(cs, SPK_LINK_NODE, SECRET, strlen(SECRET), NULL, &ctl),
                     SPK_EINVAL);
    assert_int_equal(spk_link_conn_new(cs, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), NULL, &ctl),
                     0);
    assert_int_equal(spk_link_conn_new(ss, SPK_LINK_NODE, SECRET, strlen(SECRET), &hello, &node),
                     0);
    inbox_t at_ctl = {0}, at_node = {0};
    assert_int_equal(pump(ctl, node, &at_node), 0); /* ClientHello */
    assert_int_equal(pump(node, ctl, &at_ctl), 0);  /* server flight */
    assert_int_equal(pump(ctl, node, &at_node), 0); /* Finished: the node sends HELLO */
    assert_int_equal(pump(node, ctl, &at_ctl), 0);
    assert_int_equal(at_ctl.n, 1);
    assert_int_equal(at_ctl.got[0].type, SPK_LINK_HELLO);
    assert_string_equal(at_ctl.got[0].node_id, "relay-x");
    assert_int_equal(at_ctl.got[0].capacity, 9);
    spk_link_msg_t auth = {.type = SPK_LINK_AUTH}, ok = {.type = SPK_LINK_AUTH_OK};
    assert_int_equal(spk_link_conn_send(ctl, &auth), 0);
    assert_int_equal(pump(ctl, node, &at_node), 0);
    assert_int_equal(spk_link_conn_send(node, &ok), 0);
    assert_int_equal(pump(node, ctl, &at_ctl), 0);
    assert_true(spk_link_conn_open(ctl) && spk_link_conn_open(node));
    spk_link_msg_t cmd = {.type = SPK_LINK_STATS, .consult_id = 3, .endpoint_id = 4};
    assert_int_equal(spk_link_conn_send(ctl, &cmd), 0);
    assert_int_equal(spk_link_conn_send(ctl, &cmd), 0);
    assert_int_equal(pump(ctl, node, &at_node), 0);
    assert_int_equal(at_node.n, 3);
    assert_int_equal(at_node.got[2].type, SPK_LINK_STATS);
    assert_int_equal(at_node.got[2].endpoint_id, 4);
    /* A message this side may not send is refused without harm. */
    assert_int_equal(spk_link_conn_send(ctl, &ok), SPK_ESTATE);
    spk_link_conn_free(ctl);
    spk_link_conn_free(node);

    /* Another secret on the node: the controller's first flight is refused. */
    spk_relay_tls_ctx_t *other;
    const char *bad = "another-secret-entirely-here";
    assert_int_equal(spk_relay_tls_ctx_new(true, bad, strlen(bad), &other), 0);
    assert_int_equal(spk_link_conn_new(cs, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), NULL, &ctl),
                     0);
    assert_int_equal(spk_link_conn_new(other, SPK_LINK_NODE, bad, strlen(bad), &hello, &node), 0);
    assert_int_equal(pump(ctl, node, &at_node), SPK_EVERIFY);
    spk_link_conn_free(ctl);
    spk_link_conn_free(node);
    spk_relay_tls_ctx_free(other);
    spk_relay_tls_ctx_free(cs);
    spk_relay_tls_ctx_free(ss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_other_secret),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_conn_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
