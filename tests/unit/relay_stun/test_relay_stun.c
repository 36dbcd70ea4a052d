/* Unit tests for STUN on the relay's receive fast path (relay_stun.h), with checks built by
 * libnice's STUN code as a peer builds them: a consent check for the local credentials is
 * answered (success response of its transaction, XOR-MAPPED-ADDRESS the sender, integrity with
 * the local password, FINGERPRINT), in either role and with USE-CANDIDATE; a keepalive
 * indication is consumed; other credentials, a wrong password, a role conflict, a response, a
 * plain Binding request without credentials, a truncated or altered check and non-STUN bytes
 * are left to libnice, with no answer. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stun/usages/bind.h>
#include <stun/usages/ice.h>

#include "relay_stun.h"

#define UFRAG "rlyU"
#define PWD "relaypassword0123456789"

static StunAgent relay; /* the fast path's */
static StunAgent peer;  /* the browser's */
static struct sockaddr_storage from;
static socklen_t from_len;

static int setup(void **state)
{
    (void)state;
    spk_relay_stun_init(&relay);
    stun_agent_init(&peer, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC5389,
                    STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
    memset(&from, 0, sizeof(from));
    struct sockaddr_in *a = (struct sockaddr_in *)&from;
    a->sin_family = AF_INET;
    a->sin_port = htons(50123);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    from_len = sizeof(*a);
    return 0;
}

/* A check from the peer: USERNAME user, key pwd, the peer controlling or not. */
static size_t check(uint8_t *buf, const char *user, const char *pwd, bool nominate,
                    bool peer_controlling)
{
    StunMessage msg;
    size_t len = stun_usage_ice_conncheck_create(
        &peer, &msg, buf, 512, (const uint8_t *)user, strlen(user), (const uint8_t *)pwd,
        strlen(pwd), nominate, peer_controlling, 0x6e7f00ffu, 0x1234567890ull, NULL,
        STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
    assert_true(len > 0);
    return len;
}

static spk_relay_stun_verdict_t input(uint8_t *buf, size_t len, bool relay_controlling,
                                      uint8_t *out, size_t *out_len)
{
    spk_relay_stun_local_t local = {.ufrag = UFRAG, .pwd = PWD, .controlling = relay_controlling};
    return spk_relay_stun_input(&relay, &local, buf, len, &from, from_len, out, 512, out_len);
}

static bool peer_key(StunAgent *agent, StunMessage *msg, uint8_t *username, uint16_t ulen,
                     uint8_t **password, size_t *plen, void *user)
{
    (void)agent;
    (void)msg;
    (void)username;
    (void)ulen;
    (void)user;
    *password = (uint8_t *)PWD;
    *plen = strlen(PWD);
    return true;
}

/* The answer validates at the peer (its transaction, integrity with the relay's password,
 * FINGERPRINT) as a success that maps the sender's address. */
static void assert_answer(uint8_t *out, size_t out_len)
{
    StunMessage resp;
    assert_int_equal(stun_agent_validate(&peer, &resp, out, out_len, peer_key, NULL),
                     STUN_VALIDATION_SUCCESS);
    struct sockaddr_storage mapped;
    socklen_t mapped_len = sizeof(mapped);
    assert_int_equal(stun_usage_ice_conncheck_process(&resp, &mapped, &mapped_len,
                                                      STUN_USAGE_ICE_COMPATIBILITY_RFC5245),
                     STUN_USAGE_ICE_RETURN_SUCCESS);
    assert_int_equal(mapped_len, from_len);
    assert_memory_equal(&mapped, &from, from_len);
}

static void test_consent_answered(void **state)
{
    (void)state;
    uint8_t buf[512], out[512];
    size_t out_len;
    /* The browser controlling, the relay controlled (publish connection, ICE-lite). */
    size_t len = check(buf, UFRAG ":peerU", PWD, false, true);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_ANSWER);
    assert_answer(out, out_len);
    /* With USE-CANDIDATE (Chrome's checks on the nominated pair). */
    len = check(buf, UFRAG ":peerU", PWD, true, true);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_ANSWER);
    assert_answer(out, out_len);
    /* The relay controlling (subscribe connection), the browser controlled. */
    len = check(buf, UFRAG ":peerU", PWD, false, false);
    assert_int_equal(input(buf, len, true, out, &out_len), SPK_RELAY_STUN_ANSWER);
    assert_answer(out, out_len);
}

static void test_keepalive_consumed(void **state)
{
    (void)state;
    uint8_t buf[512], out[512];
    StunMessage msg;
    size_t out_len = 1;
    size_t len = stun_usage_bind_keepalive(&peer, &msg, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_CONSUMED);
    assert_int_equal(out_len, 0);
}

static void test_left_to_libnice(void **state)
{
    (void)state;
    uint8_t buf[512], out[512];
    size_t out_len = 1, len;
    /* Other credentials: another ufrag (an ICE restart's), a prefix of ours, a wrong key. */
    len = check(buf, "newU:peerU", PWD, false, true);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    assert_int_equal(out_len, 0);
    len = check(buf, "rly:peerU", PWD, false, true);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    len = check(buf, UFRAG ":peerU", "anotherpassword0123456789", false, true);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    /* A role conflict, either way: libnice resolves it with its tie-breaker. */
    len = check(buf, UFRAG ":peerU", PWD, false, true);
    assert_int_equal(input(buf, len, true, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    len = check(buf, UFRAG ":peerU", PWD, false, false);
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    assert_int_equal(out_len, 0);
    /* A response (to libnice's own check). */
    len = check(buf, UFRAG ":peerU", PWD, false, true);
    size_t ans_len;
    assert_int_equal(input(buf, len, false, out, &ans_len), SPK_RELAY_STUN_ANSWER);
    uint8_t copy[512];
    memcpy(copy, out, ans_len);
    assert_int_equal(input(copy, ans_len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    /* A Binding request without credentials (a STUN server's kind). */
    StunMessage msg;
    len = stun_usage_bind_create(&peer, &msg, buf, sizeof(buf));
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    /* A check cut short, one with a flipped bit inside (integrity), non-STUN bytes. */
    len = check(buf, UFRAG ":peerU", PWD, false, true);
    assert_int_equal(input(buf, len - 8, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    len = check(buf, UFRAG ":peerU", PWD, false, true);
    buf[30] ^= 1;
    assert_int_equal(input(buf, len, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    memset(buf, 0x01, 64);
    assert_int_equal(input(buf, 64, false, out, &out_len), SPK_RELAY_STUN_LIBNICE);
    assert_int_equal(out_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_consent_answered, setup),
        cmocka_unit_test_setup(test_keepalive_consumed, setup),
        cmocka_unit_test_setup(test_left_to_libnice, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
