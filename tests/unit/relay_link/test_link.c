/* Unit tests for the relay link core (spk/relay_link.h): the handshake with the shared secret,
 * every message type through encode and decode, and each way a peer's bytes are refused
 * (wrong secret, tampered, replayed or reordered frames, oversized, truncated, trailing bytes,
 * wrong direction or state, values out of range). Frames for the refusals are built here
 * independently of the encoder (tags as docs/relay_link.md defines them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/hmac.h>

#include "spk/error.h"
#include "spk/relay_link.h"

#define SECRET "a-link-secret-of-some-length"

typedef struct {
    spk_link_t ctl, node;
} pair_t;

static void nonce(uint8_t *n, uint8_t v)
{
    memset(n, v, SPK_LINK_NONCE_LEN);
}

/* Feeds one whole frame; returns decode's result. */
static int feed(spk_link_t *l, const uint8_t *buf, int len, spk_link_msg_t *m)
{
    size_t used = 0;
    int rc = spk_link_decode(l, buf, (size_t)len, &used, m);
    if (rc == 1) {
        assert_int_equal(used, (size_t)len);
    }
    return rc;
}

/* Encodes on one side and decodes on the other. */
static int pass(spk_link_t *from, spk_link_t *to, const spk_link_msg_t *in, spk_link_msg_t *out)
{
    uint8_t buf[SPK_LINK_WIRE_MAX];
    int n = spk_link_encode(from, in, buf, sizeof(buf));
    assert_true(n > 0);
    return feed(to, buf, n, out);
}

static void open_pair(pair_t *p, const char *node_secret)
{
    uint8_t nc[SPK_LINK_NONCE_LEN], nn[SPK_LINK_NONCE_LEN];
    nonce(nc, 0xc1);
    nonce(nn, 0x2e);
    assert_int_equal(spk_link_init(&p->ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc), 0);
    assert_int_equal(spk_link_init(&p->node, SPK_LINK_NODE, node_secret, strlen(node_secret), nn),
                     0);
    spk_link_msg_t m = {.type = SPK_LINK_HELLO, .ice_lite = true, .capacity = 500};
    snprintf(m.node_id, sizeof(m.node_id), "relay-a");
    snprintf(m.fingerprint, sizeof(m.fingerprint), "AB:CD");
    spk_link_msg_t got;
    assert_int_equal(pass(&p->node, &p->ctl, &m, &got), 1);
    assert_int_equal(got.type, SPK_LINK_HELLO);
    assert_string_equal(got.node_id, "relay-a");
    assert_string_equal(got.fingerprint, "AB:CD");
    assert_true(got.ice_lite);
    assert_int_equal(got.capacity, 500);
    assert_memory_equal(got.nonce, nn, SPK_LINK_NONCE_LEN);
    spk_link_msg_t auth = {.type = SPK_LINK_AUTH};
    int rc = pass(&p->ctl, &p->node, &auth, &got);
    if (strcmp(node_secret, SECRET) != 0) {
        assert_int_equal(rc, SPK_EVERIFY);
        return;
    }
    assert_int_equal(rc, 1);
    spk_link_msg_t ok = {.type = SPK_LINK_AUTH_OK};
    assert_int_equal(pass(&p->node, &p->ctl, &ok, &got), 1);
    assert_int_equal(p->ctl.state, SPK_LINK_ST_OPEN);
    assert_int_equal(p->node.state, SPK_LINK_ST_OPEN);
}

/* A tagged frame as the peer would send it: length, type, body, tag. */
static int raw_frame(spk_link_t *sender_view, uint64_t seq, uint8_t type, const uint8_t *body,
                     size_t blen, uint8_t *out)
{
    size_t flen = 1 + blen + SPK_LINK_TAG_LEN;
    out[0] = (uint8_t)(flen >> 24);
    out[1] = (uint8_t)(flen >> 16);
    out[2] = (uint8_t)(flen >> 8);
    out[3] = (uint8_t)flen;
    out[4] = type;
    memcpy(out + 5, body, blen);
    uint8_t mac_in[8 + SPK_LINK_WIRE_MAX];
    for (int i = 0; i < 8; i++) {
        mac_in[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    memcpy(mac_in + 8, out, 5 + blen);
    uint8_t md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), sender_view->key_tx, 32, mac_in, 8 + 5 + blen, md, &mdlen);
    memcpy(out + 5 + blen, md, SPK_LINK_TAG_LEN);
    return (int)(5 + blen + SPK_LINK_TAG_LEN);
}

static void test_handshake_and_every_message(void **state)
{
    (void)state;
    pair_t p;
    open_pair(&p, SECRET);
    spk_link_msg_t got;

    spk_link_msg_t c = {.type = SPK_LINK_CREATE, .consult_id = 7, .endpoint_id = 9, .roles = 3};
    snprintf(c.local_ufrag, sizeof(c.local_ufrag), "abcdEFGH");
    snprintf(c.local_pwd, sizeof(c.local_pwd), "0123456789abcdefghijklmn");
    assert_int_equal(pass(&p.ctl, &p.node, &c, &got), 1);
    assert_int_equal(got.type, SPK_LINK_CREATE);
    assert_int_equal(got.consult_id, 7);
    assert_int_equal(got.endpoint_id, 9);
    assert_int_equal(got.roles, 3);
    assert_string_equal(got.local_ufrag, "abcdEFGH");
    assert_string_equal(got.local_pwd, c.local_pwd);

    spk_link_msg_t d = {.type = SPK_LINK_REMOTE_DESCRIPTION,
                        .consult_id = 7,
                        .endpoint_id = 9,
                        .setup = SPK_RELAY_SETUP_PASSIVE};
    snprintf(d.ufrag, sizeof(d.ufrag), "rUfr");
    snprintf(d.pwd, sizeof(d.pwd), "remote-password-22-chars");
    snprintf(d.fingerprint, sizeof(d.fingerprint), "01:02:03");
    assert_int_equal(pass(&p.ctl, &p.node, &d, &got), 1);
    assert_int_equal(got.setup, SPK_RELAY_SETUP_PASSIVE);
    assert_string_equal(got.ufrag, "rUfr");
    assert_string_equal(got.pwd, d.pwd);
    assert_string_equal(got.fingerprint, "01:02:03");

    spk_link_msg_t k = {.type = SPK_LINK_REMOTE_CANDIDATE, .consult_id = 7, .endpoint_id = 9};
    snprintf(k.cand, sizeof(k.cand), "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host");
    assert_int_equal(pass(&p.ctl, &p.node, &k, &got), 1);
    assert_string_equal(got.cand, k.cand);
    k.cand[0] = '\0'; /* end of candidates */
    assert_int_equal(pass(&p.ctl, &p.node, &k, &got), 1);
    assert_string_equal(got.cand, "");

    spk_link_msg_t o = {
        .type = SPK_LINK_SET_OWNER, .consult_id = 7, .endpoint_id = 9, .owner = UINT64_MAX};
    assert_int_equal(pass(&p.ctl, &p.node, &o, &got), 1);
    assert_true(got.owner == UINT64_MAX);

    spk_link_msg_t s = {.type = SPK_LINK_SET_STREAMS, .consult_id = 7, .endpoint_id = 9};
    s.n_streams = 2;
    s.streams[0] = (spk_relay_stream_t){.ssrc = 1,
                                        .rtx_ssrc = 2,
                                        .pt = 96,
                                        .rtx_pt = 97,
                                        .clock_rate = 90000,
                                        .video = true,
                                        .n_rids = 3,
                                        .rids = {"q", "h", "0123456789abcdef"},
                                        .rid_ext = 10,
                                        .rrid_ext = 11};
    s.streams[1] = (spk_relay_stream_t){.ssrc = 0xffffffffu, .pt = 111, .clock_rate = 48000};
    assert_int_equal(pass(&p.ctl, &p.node, &s, &got), 1);
    assert_int_equal(got.n_streams, 2);
    assert_memory_equal(&got.streams[0], &s.streams[0], sizeof(s.streams[0]));
    assert_int_equal(got.streams[1].ssrc, 0xffffffffu);
    assert_false(got.streams[1].video);

    spk_link_msg_t f = {
        .type = SPK_LINK_SET_FORWARDING, .consult_id = 7, .endpoint_id = 9, .on = true};
    assert_int_equal(pass(&p.ctl, &p.node, &f, &got), 1);
    assert_true(got.on);

    spk_link_msg_t r = {.type = SPK_LINK_ICE_RESTART, .consult_id = 7, .endpoint_id = 9};
    snprintf(r.ufrag, sizeof(r.ufrag), "newR");
    snprintf(r.pwd, sizeof(r.pwd), "new-remote-password-xxx");
    snprintf(r.local_ufrag, sizeof(r.local_ufrag), "newL");
    snprintf(r.local_pwd, sizeof(r.local_pwd), "new-local-password-xxxx");
    assert_int_equal(pass(&p.ctl, &p.node, &r, &got), 1);
    assert_string_equal(got.ufrag, "newR");
    assert_string_equal(got.local_pwd, r.local_pwd);

    spk_link_msg_t em = {.type = SPK_LINK_SET_EXT_MAP, .consult_id = 7, .endpoint_id = 9};
    for (int i = 0; i < SPK_RELAY_EXT_IDS; i++) {
        em.ext_map[i] = (uint8_t)(255 - i);
    }
    assert_int_equal(pass(&p.ctl, &p.node, &em, &got), 1);
    assert_memory_equal(got.ext_map, em.ext_map, SPK_RELAY_EXT_IDS);

    for (int t = SPK_LINK_CLOSE; t <= SPK_LINK_STATS; t++) {
        spk_link_msg_t x = {.type = (spk_link_type_t)t, .consult_id = 1, .endpoint_id = 2};
        assert_int_equal(pass(&p.ctl, &p.node, &x, &got), 1);
        assert_int_equal(got.type, t);
    }
    spk_link_msg_t ka = {.type = SPK_LINK_KEEPALIVE};
    assert_int_equal(pass(&p.ctl, &p.node, &ka, &got), 1);

    spk_link_msg_t l = {
        .type = SPK_LINK_LOAD, .endpoints = 12, .consults = 3, .candidates_refused = 1ull << 40};
    assert_int_equal(pass(&p.node, &p.ctl, &l, &got), 1);
    assert_int_equal(got.endpoints, 12);
    assert_int_equal(got.consults, 3);
    assert_true(got.candidates_refused == 1ull << 40);

    spk_link_msg_t e = {.type = SPK_LINK_EVENT};
    e.ev.type = SPK_RELAY_EV_FAILED;
    e.ev.consult_id = 7;
    e.ev.endpoint_id = 9;
    e.ev.err = SPK_ETIMEOUT;
    snprintf(e.ev.reason, sizeof(e.ev.reason), "consent lost");
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_int_equal(got.ev.type, SPK_RELAY_EV_FAILED);
    assert_int_equal(got.ev.err, SPK_ETIMEOUT);
    assert_string_equal(got.ev.reason, "consent lost");
    e.ev.type = SPK_RELAY_EV_CONNECTED;
    e.ev.err = 0;
    e.ev.srtp_profile = "AEAD_AES_128_GCM";
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_string_equal(got.ev.srtp_profile, "AEAD_AES_128_GCM");
    e.ev.type = SPK_RELAY_EV_STATS;
    e.ev.stats.rtp_rx = 5;
    e.ev.stats.rtx_buffer_bytes = 1ull << 50;
    e.ev.stats.video_off = 3;
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_memory_equal(&got.ev.stats, &e.ev.stats, sizeof(e.ev.stats));
    e.ev.type = SPK_RELAY_EV_ICE_STATE;
    e.ev.ice_state = SPK_RELAY_ICE_READY;
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_int_equal(got.ev.ice_state, SPK_RELAY_ICE_READY);
    e.ev.type = SPK_RELAY_EV_VIDEO;
    e.ev.video_on = true;
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_int_equal(got.ev.type, SPK_RELAY_EV_VIDEO);
    assert_true(got.ev.video_on);
    e.ev.video_on = false;
    e.ev.type = SPK_RELAY_EV_LOCAL_CANDIDATE;
    snprintf(e.ev.cand, sizeof(e.ev.cand), "candidate:x");
    assert_int_equal(pass(&p.node, &p.ctl, &e, &got), 1);
    assert_string_equal(got.ev.cand, "candidate:x");
    spk_link_wipe(&p.ctl);
    spk_link_wipe(&p.node);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    pair_t p;
    open_pair(&p, "a-different-secret-altogether");
    assert_int_equal(p.node.state, SPK_LINK_ST_BROKEN);
    spk_link_msg_t m;
    assert_int_equal(spk_link_decode(&p.node, (const uint8_t *)"", 0, &(size_t){0}, &m),
                     SPK_ESTATE);
    /* The controller refuses a node that does not know the secret either: a forged AUTH_OK. */
    uint8_t nc[SPK_LINK_NONCE_LEN], nn[SPK_LINK_NONCE_LEN];
    nonce(nc, 1);
    nonce(nn, 2);
    spk_link_t ctl, node;
    spk_link_init(&ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc);
    spk_link_init(&node, SPK_LINK_NODE, SECRET, strlen(SECRET), nn);
    spk_link_msg_t h = {.type = SPK_LINK_HELLO};
    assert_int_equal(pass(&node, &ctl, &h, &m), 1);
    spk_link_msg_t a = {.type = SPK_LINK_AUTH};
    uint8_t buf[SPK_LINK_WIRE_MAX];
    assert_true(spk_link_encode(&ctl, &a, buf, sizeof(buf)) > 0);
    uint8_t forged[4 + 1 + SPK_LINK_MAC_LEN] = {0, 0, 0, 1 + SPK_LINK_MAC_LEN, SPK_LINK_AUTH_OK};
    assert_int_equal(feed(&ctl, forged, sizeof(forged), &m), SPK_EVERIFY);
}

static void test_secret_bounds(void **state)
{
    (void)state;
    spk_link_t l;
    uint8_t n[SPK_LINK_NONCE_LEN] = {0};
    assert_int_equal(spk_link_init(&l, SPK_LINK_NODE, "short", 5, n), SPK_EINVAL);
    char big[SPK_LINK_SECRET_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(spk_link_init(&l, SPK_LINK_NODE, big, sizeof(big), n), SPK_EINVAL);
    assert_int_equal(spk_link_init(&l, SPK_LINK_NODE, big, SPK_LINK_SECRET_MIN, n), 0);
}

static void test_tamper_replay_reorder(void **state)
{
    (void)state;
    pair_t p;
    spk_link_msg_t got;
    uint8_t a[SPK_LINK_WIRE_MAX], b[SPK_LINK_WIRE_MAX];
    spk_link_msg_t x = {.type = SPK_LINK_STATS, .consult_id = 1, .endpoint_id = 2};

    open_pair(&p, SECRET);
    int n = spk_link_encode(&p.ctl, &x, a, sizeof(a));
    a[10] ^= 1; /* inside the consult id */
    assert_int_equal(feed(&p.node, a, n, &got), SPK_EVERIFY);

    open_pair(&p, SECRET);
    n = spk_link_encode(&p.ctl, &x, a, sizeof(a));
    assert_int_equal(feed(&p.node, a, n, &got), 1);
    assert_int_equal(feed(&p.node, a, n, &got), SPK_EVERIFY); /* replayed */

    open_pair(&p, SECRET);
    n = spk_link_encode(&p.ctl, &x, a, sizeof(a));
    int m = spk_link_encode(&p.ctl, &x, b, sizeof(b));
    assert_int_equal(feed(&p.node, b, m, &got), SPK_EVERIFY); /* second before first */

    /* A frame tagged for the other direction (a node's key) is refused too. */
    open_pair(&p, SECRET);
    spk_link_msg_t l = {.type = SPK_LINK_LOAD};
    n = spk_link_encode(&p.node, &l, a, sizeof(a));
    assert_int_equal(feed(&p.node, a, n, &got), SPK_EVERIFY);
}

static void test_framing_limits(void **state)
{
    (void)state;
    pair_t p;
    spk_link_msg_t got;
    open_pair(&p, SECRET);
    uint8_t big[4] = {0, 0, 0x08, 0x01}; /* 2049 > SPK_LINK_FRAME_MAX */
    assert_int_equal(feed(&p.node, big, 4, &got), SPK_ETOOBIG);
    open_pair(&p, SECRET);
    uint8_t zero[4] = {0};
    assert_int_equal(feed(&p.node, zero, 4, &got), SPK_EDECODE);

    /* Partial frames wait for more, consuming nothing. */
    open_pair(&p, SECRET);
    uint8_t buf[SPK_LINK_WIRE_MAX];
    spk_link_msg_t x = {.type = SPK_LINK_CLOSE, .consult_id = 1, .endpoint_id = 2};
    int n = spk_link_encode(&p.ctl, &x, buf, sizeof(buf));
    for (int i = 0; i < n; i++) {
        size_t used = 99;
        assert_int_equal(spk_link_decode(&p.node, buf, (size_t)i, &used, &got), 0);
        assert_int_equal(used, 0);
    }
    assert_int_equal(feed(&p.node, buf, n, &got), 1);
    /* Too small an output buffer. */
    assert_int_equal(spk_link_encode(&p.ctl, &x, buf, 8), SPK_ETOOBIG);
}

/* Bodies that are well tagged but wrong in content. */
static void expect_body(uint8_t type, const uint8_t *body, size_t len, int want, bool to_node)
{
    pair_t p;
    open_pair(&p, SECRET);
    uint8_t buf[SPK_LINK_WIRE_MAX];
    spk_link_t *from = to_node ? &p.ctl : &p.node;
    spk_link_t *to = to_node ? &p.node : &p.ctl;
    int n = raw_frame(from, 0, type, body, len, buf);
    spk_link_msg_t got;
    assert_int_equal(feed(to, buf, n, &got), want);
}

static void test_strict_bodies(void **state)
{
    (void)state;
    /* CLOSE: ids only. */
    uint8_t ids[16] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
    expect_body(SPK_LINK_CLOSE, ids, 16, 1, true);
    uint8_t trailing[17] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0};
    expect_body(SPK_LINK_CLOSE, trailing, 17, SPK_EDECODE, true);
    expect_body(SPK_LINK_CLOSE, ids, 15, SPK_EDECODE, true);
    uint8_t zero_ids[16] = {0};
    expect_body(SPK_LINK_CLOSE, zero_ids, 16, SPK_EDECODE, true);
    /* SET_FORWARDING with a boolean that is not 0 or 1. */
    uint8_t fw[17] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 2};
    expect_body(SPK_LINK_SET_FORWARDING, fw, 17, SPK_EDECODE, true);
    /* CREATE with roles 4. */
    uint8_t cr[16 + 1 + 2 + 2] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 4, 0, 0, 0, 0};
    expect_body(SPK_LINK_CREATE, cr, sizeof(cr), SPK_EDECODE, true);
    cr[16] = 1;
    expect_body(SPK_LINK_CREATE, cr, sizeof(cr), 1, true);
    /* REMOTE_CANDIDATE: a string longer than its field, and one with a NUL inside. */
    static uint8_t cand[16 + 2 + 300];
    memcpy(cand, ids, 16);
    cand[16] = 0x01;
    cand[17] = 0x00; /* 256: one more than fits with the NUL */
    memset(cand + 18, 'a', 256);
    expect_body(SPK_LINK_REMOTE_CANDIDATE, cand, 16 + 2 + 256, SPK_EDECODE, true);
    cand[16] = 0;
    cand[17] = 3;
    cand[19] = 0;
    expect_body(SPK_LINK_REMOTE_CANDIDATE, cand, 16 + 2 + 3, SPK_EDECODE, true);
    /* SET_STREAMS with five streams, with a payload type above 127, and with four rids. */
    uint8_t st[16 + 1 + 18] = {0};
    memcpy(st, ids, 16);
    st[16] = 5;
    expect_body(SPK_LINK_SET_STREAMS, st, 17, SPK_EDECODE, true);
    st[16] = 1;
    st[17 + 3] = 1;   /* ssrc 1 */
    st[17 + 8] = 200; /* pt */
    expect_body(SPK_LINK_SET_STREAMS, st, sizeof(st), SPK_EDECODE, true);
    st[17 + 8] = 96;
    expect_body(SPK_LINK_SET_STREAMS, st, sizeof(st), 1, true);
    st[17 + 15] = 4; /* n_rids */
    expect_body(SPK_LINK_SET_STREAMS, st, sizeof(st), SPK_EDECODE, true);
    st[17 + 15] = 0;
    /* SET_EXT_MAP: exactly 256 bytes after the ids. */
    static uint8_t map[16 + SPK_RELAY_EXT_IDS + 1];
    memcpy(map, ids, 16);
    expect_body(SPK_LINK_SET_EXT_MAP, map, 16 + SPK_RELAY_EXT_IDS, 1, true);
    expect_body(SPK_LINK_SET_EXT_MAP, map, 16 + SPK_RELAY_EXT_IDS - 1, SPK_EDECODE, true);
    expect_body(SPK_LINK_SET_EXT_MAP, map, 16 + SPK_RELAY_EXT_IDS + 1, SPK_EDECODE, true);
    /* Direction: a node never receives an EVENT, a controller never a command. */
    expect_body(SPK_LINK_EVENT, ids, 16, SPK_EDECODE, true);
    expect_body(SPK_LINK_CLOSE, ids, 16, SPK_EDECODE, false);
    /* Unknown type; a handshake message once open. */
    expect_body(99, ids, 16, SPK_EDECODE, true);
    expect_body(SPK_LINK_AUTH, ids, 16, SPK_ESTATE, true);
    /* An EVENT with type 0 and one with an ICE state out of range. */
    static uint8_t ev[1 + 8 + 8 + 4 + 1 + 1 + 1 + 2 + 2 + 30 * 8];
    memset(ev, 0, sizeof(ev));
    ev[16] = 9; /* endpoint id 9 */
    expect_body(SPK_LINK_EVENT, ev, sizeof(ev), SPK_EDECODE, false);
    ev[0] = SPK_RELAY_EV_ICE_STATE;
    expect_body(SPK_LINK_EVENT, ev, sizeof(ev), 1, false);
    ev[21] = 6;
    expect_body(SPK_LINK_EVENT, ev, sizeof(ev), SPK_EDECODE, false);
    ev[21] = 0;
    ev[23] = 2; /* video_on is a boolean */
    expect_body(SPK_LINK_EVENT, ev, sizeof(ev), SPK_EDECODE, false);
}

static void test_state_order(void **state)
{
    (void)state;
    uint8_t nc[SPK_LINK_NONCE_LEN] = {1}, nn[SPK_LINK_NONCE_LEN] = {2};
    spk_link_t ctl, node;
    spk_link_init(&ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc);
    spk_link_init(&node, SPK_LINK_NODE, SECRET, strlen(SECRET), nn);
    uint8_t buf[SPK_LINK_WIRE_MAX];
    spk_link_msg_t x = {.type = SPK_LINK_CLOSE, .consult_id = 1, .endpoint_id = 2};
    /* No command before the handshake; nobody sends the other side's messages. */
    assert_int_equal(spk_link_encode(&ctl, &x, buf, sizeof(buf)), SPK_ESTATE);
    spk_link_msg_t h = {.type = SPK_LINK_HELLO};
    assert_int_equal(spk_link_encode(&ctl, &h, buf, sizeof(buf)), SPK_ESTATE);
    spk_link_msg_t a = {.type = SPK_LINK_AUTH};
    assert_int_equal(spk_link_encode(&node, &a, buf, sizeof(buf)), SPK_ESTATE);
    /* An untagged command sent to a controller waiting for HELLO. */
    uint8_t cmd[5 + 16] = {0, 0, 0, 17, SPK_LINK_CLOSE};
    spk_link_msg_t got;
    assert_int_equal(feed(&ctl, cmd, sizeof(cmd), &got), SPK_EDECODE);
    /* A HELLO of another version. */
    spk_link_init(&ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc);
    int n = spk_link_encode(&node, &h, buf, sizeof(buf));
    buf[6] = 1; /* version 1: before simulcast */
    assert_int_equal(feed(&ctl, buf, n, &got), SPK_EDECODE);
    /* A second HELLO where AUTH_OK is due. */
    spk_link_init(&ctl, SPK_LINK_CONTROLLER, SECRET, strlen(SECRET), nc);
    spk_link_init(&node, SPK_LINK_NODE, SECRET, strlen(SECRET), nn);
    n = spk_link_encode(&node, &h, buf, sizeof(buf));
    assert_int_equal(feed(&ctl, buf, n, &got), 1);
    assert_int_equal(spk_link_encode(&ctl, &a, buf + 100, 200) > 0, 1);
    n = spk_link_encode(&node, &h, buf, sizeof(buf)); /* node is past HELLO: refused */
    assert_int_equal(n, SPK_ESTATE);
    /* Names for logs. */
    assert_string_equal(spk_link_type_name(SPK_LINK_CREATE), "create");
    assert_string_equal(spk_link_type_name((spk_link_type_t)200), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_every_message),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_secret_bounds),
        cmocka_unit_test(test_tamper_replay_reorder),
        cmocka_unit_test(test_framing_limits),
        cmocka_unit_test(test_strict_bodies),
        cmocka_unit_test(test_state_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
