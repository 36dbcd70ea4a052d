/* Tests of SFrame (spk/sframe.h): header edge cases, the context (send/receive separation,
 * counters, replay window, bad input), and MLS-derived keys with real spk_mls groups (KID
 * layout, several epochs in flight, eviction, a removed member).
 *
 * Usage: test_sframe [case]   (no argument runs every case) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mls_support.h"
#include "spk/error.h"
#include "spk/mls.h"
#include "spk/sframe.h"

static const uint8_t base_a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t md[] = "rtp:ssrc=1234";
static const uint8_t frame_pt[] = "een videoframe van de huisarts";

/* ---- header ---- */

static void test_header(void **state)
{
    (void)state;
    const uint64_t values[] = {0, 1, 7, 8, 255, 256, 65535, 65536, UINT64_C(1) << 56, UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        for (size_t j = 0; j < sizeof(values) / sizeof(values[0]); j++) {
            uint8_t b[SPK_SFRAME_MAX_HEADER];
            size_t n = 0;
            spk_sframe_header_t h;
            spk_sframe_header_encode(values[i], values[j], b, &n);
            assert_int_equal(n, spk_sframe_header_size(values[i], values[j]));
            assert_rc(spk_sframe_header_decode(b, n, &h), 0);
            assert_true(h.kid == values[i] && h.ctr == values[j] && h.len == n);
            for (size_t k = 0; k < n; k++) {
                assert_rc(spk_sframe_header_decode(b, k, &h), SPK_ETRUNC);
            }
        }
    }
    spk_sframe_header_t h;
    /* Non-minimal forms: a value below 8 in the extended form, a leading zero byte. */
    const uint8_t kid5_ext[] = {0x80, 0x05};
    const uint8_t ctr0_ext[] = {0x08, 0x00};
    const uint8_t kid_lead0[] = {0x90, 0x00, 0x10};
    const uint8_t ctr_lead0[] = {0x09, 0x00, 0xff};
    assert_rc(spk_sframe_header_decode(kid5_ext, sizeof(kid5_ext), &h), SPK_EDECODE);
    assert_rc(spk_sframe_header_decode(ctr0_ext, sizeof(ctr0_ext), &h), SPK_EDECODE);
    assert_rc(spk_sframe_header_decode(kid_lead0, sizeof(kid_lead0), &h), SPK_EDECODE);
    assert_rc(spk_sframe_header_decode(ctr_lead0, sizeof(ctr_lead0), &h), SPK_EDECODE);
    /* Trailing bytes are the ciphertext: not read. */
    const uint8_t with_body[] = {0x12, 0xde, 0xad};
    assert_rc(spk_sframe_header_decode(with_body, sizeof(with_body), &h), 0);
    assert_true(h.kid == 1 && h.ctr == 2 && h.len == 1);
}

/* ---- context ---- */

typedef struct {
    spk_sframe_ctx_t *tx;
    spk_sframe_ctx_t *rx;
    uint8_t buf[256];
    size_t n;
} pair_t;

static void pair_init(pair_t *p, uint16_t suite, uint64_t kid)
{
    memset(p, 0, sizeof(*p));
    assert_rc(spk_sframe_ctx_create(&p->tx, suite), 0);
    assert_rc(spk_sframe_ctx_create(&p->rx, suite), 0);
    assert_rc(spk_sframe_ctx_add_key(p->tx, kid, SPK_SFRAME_SEND, base_a, sizeof(base_a)), 0);
    assert_rc(spk_sframe_ctx_add_key(p->rx, kid, SPK_SFRAME_RECV, base_a, sizeof(base_a)), 0);
}

static void pair_free(pair_t *p)
{
    spk_sframe_ctx_free(p->tx);
    spk_sframe_ctx_free(p->rx);
}

static void seal(pair_t *p, uint64_t kid)
{
    assert_rc(spk_sframe_encrypt(p->tx, kid, md, sizeof(md), frame_pt, sizeof(frame_pt), p->buf,
                                 sizeof(p->buf), &p->n),
              0);
}

/* Opens frame f (n bytes) at rx and expects want; on success the plaintext must match. */
static void open_expect(spk_sframe_ctx_t *rx, const uint8_t *f, size_t n, int want)
{
    uint8_t out[256];
    size_t len = 99;
    memset(out, 0x5a, sizeof(out));
    assert_rc(spk_sframe_decrypt(rx, md, sizeof(md), f, n, out, sizeof(out), &len, NULL), want);
    if (want == 0) {
        assert_int_equal(len, sizeof(frame_pt));
        assert_memory_equal(out, frame_pt, len);
    } else {
        assert_int_equal(len, 0);
        for (size_t i = 0; i < sizeof(frame_pt); i++) {
            assert_true(out[i] == 0x5a || out[i] == 0); /* untouched or wiped */
        }
    }
}

static void roundtrip_suite(uint16_t suite)
{
    pair_t p;
    spk_sframe_header_t h;
    uint8_t out[256];
    size_t len = 0;
    pair_init(&p, suite, 42);
    for (uint64_t i = 0; i < 10; i++) {
        seal(&p, 42);
        assert_int_equal(p.n, spk_sframe_header_size(42, i) + sizeof(frame_pt) +
                                  spk_sframe_tag_len(suite));
        assert_rc(spk_sframe_decrypt(p.rx, md, sizeof(md), p.buf, p.n, out, sizeof(out), &len, &h),
                  0);
        assert_true(h.kid == 42 && h.ctr == i);
        assert_memory_equal(out, frame_pt, len);
    }
    /* Other metadata, a flipped bit anywhere: rejected, window untouched. */
    seal(&p, 42);
    assert_rc(
        spk_sframe_decrypt(p.rx, md, sizeof(md) - 1, p.buf, p.n, out, sizeof(out), &len, NULL),
        SPK_EVERIFY);
    for (size_t i = 0; i < p.n; i++) {
        p.buf[i] ^= 0x10;
        int rc = spk_sframe_decrypt(p.rx, md, sizeof(md), p.buf, p.n, out, sizeof(out), &len, NULL);
        assert_true(rc == SPK_EVERIFY || rc == SPK_ENOTFOUND || rc == SPK_EDECODE ||
                    rc == SPK_ETRUNC);
        p.buf[i] ^= 0x10;
    }
    open_expect(p.rx, p.buf, p.n, 0);
    open_expect(p.rx, p.buf, p.n, SPK_EREPLAY);
    pair_free(&p);
}

static void test_ctx_roundtrip(void **state)
{
    (void)state;
    roundtrip_suite(SPK_SFRAME_AES_128_GCM_SHA256_128);
    roundtrip_suite(SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80);
    roundtrip_suite(SPK_SFRAME_AES_128_CTR_HMAC_SHA256_32);
    roundtrip_suite(SPK_SFRAME_AES_256_GCM_SHA512_128);
    spk_sframe_ctx_t *c = NULL;
    assert_rc(spk_sframe_ctx_create(&c, 0), SPK_EINVAL);
    assert_rc(spk_sframe_ctx_create(&c, 6), SPK_EINVAL);
    assert_null(c);
}

static void test_ctx_keys(void **state)
{
    (void)state;
    pair_t p;
    uint8_t out[256];
    size_t len = 0;
    pair_init(&p, SPK_SFRAME_AES_128_GCM_SHA256_128, 9);
    /* One key per KID; usage fixed: a receive key never encrypts, a send key never decrypts. */
    assert_rc(spk_sframe_ctx_add_key(p.tx, 9, SPK_SFRAME_RECV, base_a, sizeof(base_a)), SPK_EEXIST);
    assert_rc(spk_sframe_ctx_add_key(p.tx, 10, 3, base_a, sizeof(base_a)), SPK_EINVAL);
    assert_rc(spk_sframe_ctx_add_key(p.tx, 10, SPK_SFRAME_SEND, base_a, 0), SPK_EINVAL);
    assert_rc(spk_sframe_encrypt(p.rx, 9, NULL, 0, frame_pt, 4, out, sizeof(out), &len),
              SPK_EINVAL);
    seal(&p, 9);
    open_expect(p.tx, p.buf, p.n, SPK_ENOTFOUND);
    assert_rc(spk_sframe_encrypt(p.tx, 10, NULL, 0, frame_pt, 4, out, sizeof(out), &len),
              SPK_ENOTFOUND);
    /* An unknown KID at the receiver. */
    assert_rc(spk_sframe_ctx_remove_key(p.rx, 9), 0);
    assert_rc(spk_sframe_ctx_remove_key(p.rx, 9), SPK_ENOTFOUND);
    open_expect(p.rx, p.buf, p.n, SPK_ENOTFOUND);
    /* Another base key under the same KID does not authenticate. */
    const uint8_t other[16] = {0};
    assert_rc(spk_sframe_ctx_add_key(p.rx, 9, SPK_SFRAME_RECV, other, sizeof(other)), 0);
    open_expect(p.rx, p.buf, p.n, SPK_EVERIFY);
    pair_free(&p);
}

static void test_ctx_counter(void **state)
{
    (void)state;
    pair_t p;
    uint8_t out[256];
    size_t len = 0;
    spk_sframe_header_t h;
    pair_init(&p, SPK_SFRAME_AES_128_GCM_SHA256_128, 1);
    /* A failed encryption (output too small, frame too big) uses no counter. */
    assert_rc(spk_sframe_encrypt(p.tx, 1, md, sizeof(md), frame_pt, sizeof(frame_pt), out,
                                 sizeof(frame_pt), &len),
              SPK_EINVAL);
    assert_rc(spk_sframe_encrypt(p.tx, 1, NULL, 0, frame_pt, SPK_SFRAME_MAX_FRAME + 1, out,
                                 sizeof(out), &len),
              SPK_ETOOBIG);
    seal(&p, 1);
    assert_rc(spk_sframe_header_decode(p.buf, p.n, &h), 0);
    assert_int_equal(h.ctr, 0);
    /* The counter moves forward only. */
    assert_rc(spk_sframe_ctx_set_next_ctr(p.tx, 1, 0), SPK_EINVAL);
    assert_rc(spk_sframe_ctx_set_next_ctr(p.rx, 1, 5), SPK_EINVAL);
    assert_rc(spk_sframe_ctx_set_next_ctr(p.tx, 2, 5), SPK_ENOTFOUND);
    assert_rc(spk_sframe_ctx_set_next_ctr(p.tx, 1, UINT64_MAX), 0);
    seal(&p, 1);
    assert_rc(spk_sframe_header_decode(p.buf, p.n, &h), 0);
    assert_true(h.ctr == UINT64_MAX);
    open_expect(p.rx, p.buf, p.n, 0);
    /* 2^64 frames sent: the key is used up. */
    assert_rc(spk_sframe_encrypt(p.tx, 1, md, sizeof(md), frame_pt, sizeof(frame_pt), out,
                                 sizeof(out), &len),
              SPK_ERANGE);
    assert_rc(spk_sframe_ctx_set_next_ctr(p.tx, 1, UINT64_MAX), SPK_EINVAL);
    pair_free(&p);
}

static void test_ctx_replay_window(void **state)
{
    (void)state;
    pair_t p;
    enum { N = SPK_SFRAME_REPLAY_WINDOW + 8 };
    static uint8_t frames[N][96];
    static size_t lens[N];
    pair_init(&p, SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80, 77);
    for (int i = 0; i < N; i++) {
        seal(&p, 77);
        assert_true(p.n <= sizeof(frames[i]));
        memcpy(frames[i], p.buf, p.n);
        lens[i] = p.n;
    }
    /* Out of order inside the window: 5, 3, 4, 0; then each is a replay. */
    const int order[] = {5, 3, 4, 0};
    for (size_t i = 0; i < 4; i++) {
        open_expect(p.rx, frames[order[i]], lens[order[i]], 0);
    }
    for (size_t i = 0; i < 4; i++) {
        open_expect(p.rx, frames[order[i]], lens[order[i]], SPK_EREPLAY);
    }
    /* A tampered frame does not mark its CTR: the genuine one is accepted afterwards. */
    frames[1][lens[1] - 1] ^= 1;
    open_expect(p.rx, frames[1], lens[1], SPK_EVERIFY);
    frames[1][lens[1] - 1] ^= 1;
    open_expect(p.rx, frames[1], lens[1], 0);
    /* The top moves to 1027 (W = 1024): slots of CTR 6 .. 1027 are cleared on the way, so CTR
     * 1024 (slot 0, where CTR 0 was marked) is new; CTR 4 and 5 are still inside and seen,
     * CTR 3 has fallen out. */
    open_expect(p.rx, frames[1027], lens[1027], 0);
    open_expect(p.rx, frames[1024], lens[1024], 0);
    open_expect(p.rx, frames[4], lens[4], SPK_EREPLAY);
    open_expect(p.rx, frames[5], lens[5], SPK_EREPLAY);
    open_expect(p.rx, frames[3], lens[3], SPK_EREPLAY);
    open_expect(p.rx, frames[2], lens[2], SPK_EREPLAY); /* its slot was cleared */
    open_expect(p.rx, frames[6], lens[6], 0);
    /* To the last frame (1031): CTR 7 is out, 8 is the oldest still inside. */
    open_expect(p.rx, frames[N - 1], lens[N - 1], 0);
    open_expect(p.rx, frames[7], lens[7], SPK_EREPLAY);
    open_expect(p.rx, frames[4], lens[4], SPK_EREPLAY); /* out, and its slot cleared */
    open_expect(p.rx, frames[8], lens[8], 0);
    open_expect(p.rx, frames[N - 2], lens[N - 2], 0);
    open_expect(p.rx, frames[N - 1], lens[N - 1], SPK_EREPLAY);
    pair_free(&p);
}

static void test_ctx_bad_frames(void **state)
{
    (void)state;
    pair_t p;
    uint8_t out[256];
    size_t len = 0;
    pair_init(&p, SPK_SFRAME_AES_128_GCM_SHA256_128, 1000);
    seal(&p, 1000);
    /* Truncated at every length: a clear code, no plaintext. */
    for (size_t n = 0; n < p.n; n++) {
        int rc = spk_sframe_decrypt(p.rx, md, sizeof(md), p.buf, n, out, sizeof(out), &len, NULL);
        assert_true(rc == SPK_ETRUNC || rc == SPK_EVERIFY);
        assert_int_equal(len, 0);
    }
    /* Output too small; oversized input; NULL with a length. */
    assert_rc(spk_sframe_decrypt(p.rx, md, sizeof(md), p.buf, p.n, out, 4, &len, NULL), SPK_EINVAL);
    assert_rc(spk_sframe_decrypt(p.rx, md, sizeof(md), p.buf,
                                 SPK_SFRAME_MAX_FRAME + SPK_SFRAME_MAX_OVERHEAD + 1, out,
                                 sizeof(out), &len, NULL),
              SPK_ETOOBIG);
    assert_rc(spk_sframe_decrypt(p.rx, NULL, 3, p.buf, p.n, out, sizeof(out), &len, NULL),
              SPK_EINVAL);
    /* Trailing garbage is part of the ciphertext: it fails authentication. */
    p.buf[p.n] = 0;
    open_expect(p.rx, p.buf, p.n + 1, SPK_EVERIFY);
    open_expect(p.rx, p.buf, p.n, 0);
    pair_free(&p);
}

/* ---- keys from MLS ---- */

#define N_MEMBERS 3

typedef struct {
    spk_mls_t *g[N_MEMBERS];
    spk_sframe_mls_t *s[N_MEMBERS];
} call_t;

/* A GP creates the consult's group and adds the patient and a specialist; each installs the
 * epoch in its SFrame keys. */
static void call_init(call_t *c, const spk_sframe_mls_opts_t *opts)
{
    spk_mls_buf_t k[N_MEMBERS], sec[N_MEMBERS], commit, welcome;
    const char *names[N_MEMBERS] = {"gp", "patient", "specialist"};
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < N_MEMBERS; i++) {
        new_kp(names[i], &k[i], &sec[i]);
    }
    assert_rc(spk_mls_create(&c->g[0], (const uint8_t *)"consult-1", 9, sec[0].p, sec[0].n), 0);
    const uint8_t *adds[2] = {k[1].p, k[2].p};
    size_t lens[2] = {k[1].n, k[2].n};
    spk_mls_commit_opts_t o = {adds, lens, 2, NULL, 0, 0};
    assert_rc(spk_mls_commit(c->g[0], &o, &commit, &welcome), 0);
    assert_rc(spk_mls_commit_merge(c->g[0]), 0);
    for (int i = 1; i < N_MEMBERS; i++) {
        assert_rc(spk_mls_join(&c->g[i], sec[i].p, sec[i].n, welcome.p, welcome.n, NULL, 0), 0);
    }
    for (int i = 0; i < N_MEMBERS; i++) {
        assert_rc(spk_sframe_mls_create(&c->s[i], opts), 0);
        assert_rc(spk_sframe_mls_add_epoch(c->s[i], c->g[i]), 0);
        spk_mls_buf_free(&k[i]);
        spk_mls_buf_free(&sec[i]);
    }
    spk_mls_buf_free(&commit);
    spk_mls_buf_free(&welcome);
}

static void call_free(call_t *c)
{
    for (int i = 0; i < N_MEMBERS; i++) {
        spk_mls_free(c->g[i]);
        spk_sframe_mls_free(c->s[i]);
    }
}

/* by commits (removing leaf `remove` unless UINT32_MAX); the others process it; everyone
 * still in the group installs the new epoch. */
static void call_commit(call_t *c, int by, uint32_t remove)
{
    spk_mls_buf_t commit;
    spk_mls_event_t ev;
    spk_mls_commit_opts_t o = {NULL, NULL, 0, &remove, remove != UINT32_MAX ? 1 : 0, 0};
    assert_rc(spk_mls_commit(c->g[by], &o, &commit, NULL), 0);
    assert_rc(spk_mls_commit_merge(c->g[by]), 0);
    assert_rc(spk_sframe_mls_add_epoch(c->s[by], c->g[by]), 0);
    for (int i = 0; i < N_MEMBERS; i++) {
        if (i == by) {
            continue;
        }
        assert_rc(spk_mls_process(c->g[i], commit.p, commit.n, &ev), 0);
        if (ev.type == SPK_MLS_EVENT_COMMIT) {
            assert_rc(spk_sframe_mls_add_epoch(c->s[i], c->g[i]), 0);
        }
    }
    spk_mls_buf_free(&commit);
}

typedef struct {
    uint8_t b[128];
    size_t n;
} frame_t;

static void mls_seal(call_t *c, int from, uint64_t context, frame_t *f)
{
    assert_rc(spk_sframe_mls_encrypt(c->s[from], context, md, sizeof(md), frame_pt,
                                     sizeof(frame_pt), f->b, sizeof(f->b), &f->n),
              0);
}

static void mls_open(spk_sframe_mls_t *s, const frame_t *f, int want, spk_sframe_mls_sender_t *who)
{
    uint8_t out[128];
    size_t len = 0;
    assert_rc(spk_sframe_mls_decrypt(s, md, sizeof(md), f->b, f->n, out, sizeof(out), &len, who),
              want);
    if (want == 0) {
        assert_int_equal(len, sizeof(frame_pt));
        assert_memory_equal(out, frame_pt, len);
    }
}

static void test_mls_call(void **state)
{
    (void)state;
    call_t c;
    frame_t f, old;
    spk_sframe_mls_sender_t who;
    call_init(&c, NULL);
    /* Each member's frames decrypt at the others, naming sender and epoch; never at itself. */
    for (int from = 0; from < N_MEMBERS; from++) {
        mls_seal(&c, from, 0, &f);
        for (int to = 0; to < N_MEMBERS; to++) {
            if (to == from) {
                mls_open(c.s[to], &f, SPK_ENOTFOUND, NULL);
                continue;
            }
            mls_open(c.s[to], &f, 0, &who);
            assert_int_equal(who.epoch, 1);
            assert_int_equal(who.leaf, spk_mls_own_leaf(c.g[from]));
            assert_int_equal(who.context, 0);
            /* E = 4, S = 2 (4 leaves): KID = leaf << 4 | 1. */
            assert_int_equal(who.kid, ((uint64_t)who.leaf << 4) | 1);
            mls_open(c.s[to], &f, SPK_EREPLAY, NULL);
        }
    }
    /* A frame under a member's own KID is refused even before it sent in the epoch: its own
     * keys are for sending only. */
    call_commit(&c, 0, UINT32_MAX);
    spk_sframe_mls_t *twin = NULL;
    uint8_t base[16];
    assert_rc(spk_mls_export_secret(c.g[1], "SFrame 1.0 Base Key", NULL, 0, base, 16), 0);
    assert_rc(spk_sframe_mls_create(&twin, NULL), 0);
    assert_rc(spk_sframe_mls_add_epoch_secret(twin, spk_mls_epoch(c.g[1]), base, 16,
                                              spk_mls_leaf_count(c.g[1]), 1),
              0);
    assert_rc(spk_sframe_mls_encrypt(twin, 5, md, sizeof(md), frame_pt, sizeof(frame_pt), f.b,
                                     sizeof(f.b), &f.n),
              0);
    mls_open(c.s[1], &f, SPK_ENOTFOUND, NULL);
    mls_open(c.s[0], &f, 0, &who);
    assert_true(who.leaf == 1 && who.context == 5);
    spk_sframe_mls_free(twin);
    /* A second stream of the GP (context 1) has its own KID and counter. */
    uint64_t kid = 0;
    assert_rc(spk_sframe_mls_kid(c.s[0], 1, &kid), 0);
    assert_int_equal(kid, (UINT64_C(1) << 6) | 2);
    mls_seal(&c, 0, 1, &f);
    mls_open(c.s[1], &f, 0, &who);
    assert_true(who.context == 1 && who.ctr == 0 && who.kid == kid);
    assert_rc(spk_sframe_mls_kid(c.s[0], UINT64_C(1) << 58, &kid), SPK_EINVAL);
    /* A frame of epoch 2 still in flight after the next Commit decrypts; new frames use
     * epoch 3. */
    mls_seal(&c, 1, 0, &old);
    call_commit(&c, 2, UINT32_MAX);
    mls_seal(&c, 1, 0, &f);
    mls_open(c.s[0], &old, 0, &who);
    assert_int_equal(who.epoch, 2);
    mls_open(c.s[0], &f, 0, &who);
    assert_int_equal(who.epoch, 3);
    /* Once the application drops epoch 2, its frames have no key. */
    mls_seal(&c, 2, 0, &f);
    spk_sframe_mls_drop_before(c.s[0], 3);
    mls_open(c.s[0], &old, SPK_ENOTFOUND, NULL);
    mls_open(c.s[0], &f, 0, NULL);
    call_free(&c);
}

/* The specialist leaves: frames sent after the Commit cannot be read by them. */
static void test_mls_removed_member(void **state)
{
    (void)state;
    call_t c;
    frame_t f;
    call_init(&c, NULL);
    call_commit(&c, 0, spk_mls_own_leaf(c.g[2]));
    uint64_t e0 = 0;
    uint64_t e2 = 0;
    assert_rc(spk_sframe_mls_send_epoch(c.s[0], &e0), 0);
    assert_rc(spk_sframe_mls_send_epoch(c.s[2], &e2), 0);
    assert_int_equal(e0, 2);
    assert_int_equal(e2, 1);
    mls_seal(&c, 0, 0, &f);
    mls_open(c.s[1], &f, 0, NULL);
    mls_open(c.s[2], &f, SPK_ENOTFOUND, NULL);
    /* Even with a key under the KID the epoch bits name, the old epoch's key fails. */
    spk_sframe_mls_opts_t o1 = {0, 1, 1};
    spk_sframe_mls_t *x = NULL;
    uint8_t old_base[16];
    assert_rc(spk_mls_export_secret(c.g[2], "SFrame 1.0 Base Key", NULL, 0, old_base, 16), 0);
    assert_rc(spk_sframe_mls_create(&x, &o1), 0);
    assert_rc(spk_sframe_mls_add_epoch_secret(x, 4, old_base, 16, 4, 2), 0);
    /* (with E = 1, epoch 4 has the low bit of epoch 2) */
    mls_open(x, &f, SPK_EVERIFY, NULL);
    spk_sframe_mls_free(x);
    call_free(&c);
}

/* The example of RFC 9605 Figure 7 (E = 4, S = 6) and the epoch bookkeeping. */
static void test_mls_kids_and_epochs(void **state)
{
    (void)state;
    spk_sframe_mls_t *s = NULL;
    uint8_t base[16] = {0};
    uint64_t kid = 0;
    spk_sframe_mls_opts_t o = {SPK_SFRAME_AES_128_GCM_SHA256_128, 4, 2};
    assert_rc(spk_sframe_mls_create(&s, &o), 0);
    assert_rc(spk_sframe_mls_kid(s, 0, &kid), SPK_ENOTFOUND);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 14, base, 16, 64, 3), 0);
    assert_rc(spk_sframe_mls_kid(s, 0, &kid), 0);
    assert_int_equal(kid, 0x3e);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 14, base, 16, 64, 3), SPK_EEXIST);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 13, base, 16, 64, 3), SPK_ESTATE);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 16, base, 16, 64, 2), 0);
    assert_rc(spk_sframe_mls_kid(s, 2, &kid), 0);
    assert_int_equal(kid, 0x820);
    assert_rc(spk_sframe_mls_kid(s, 3, &kid), 0);
    assert_int_equal(kid, 0xc20);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 17, base, 16, 64, 33), 0);
    assert_rc(spk_sframe_mls_kid(s, 0, &kid), 0);
    assert_int_equal(kid, 0x211);
    /* Bad arguments. */
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 18, base, 15, 64, 3), SPK_EINVAL);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 18, base, 16, 64, 64), SPK_EINVAL);
    assert_rc(spk_sframe_mls_add_epoch_secret(s, 18, base, 16, 65537, 3), SPK_ERANGE);
    spk_sframe_mls_free(s);
    spk_sframe_mls_opts_t bad[] = {{7, 0, 0}, {0, 17, 0}, {0, 2, 5}, {0, 0, 17}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_rc(spk_sframe_mls_create(&s, &bad[i]), SPK_EINVAL);
        assert_null(s);
    }
}

/* Eviction: max_epochs kept; an epoch sharing the low E bits replaces the older one (§5.2). */
static void test_mls_eviction(void **state)
{
    (void)state;
    spk_sframe_mls_t *tx = NULL;
    spk_sframe_mls_t *rx = NULL;
    uint8_t base[4][48];
    frame_t f[4];
    spk_sframe_mls_opts_t o = {SPK_SFRAME_AES_128_CTR_HMAC_SHA256_80, 2, 3};
    assert_rc(spk_sframe_mls_create(&tx, &o), 0);
    assert_rc(spk_sframe_mls_create(&rx, &o), 0);
    for (int e = 0; e < 4; e++) {
        memset(base[e], e + 1, sizeof(base[e]));
        assert_rc(spk_sframe_mls_add_epoch_secret(tx, (uint64_t)e, base[e], 48, 2, 0), 0);
        assert_rc(spk_sframe_mls_encrypt(tx, 0, md, sizeof(md), frame_pt, sizeof(frame_pt), f[e].b,
                                         sizeof(f[e].b), &f[e].n),
                  0);
        assert_rc(spk_sframe_mls_add_epoch_secret(rx, (uint64_t)e, base[e], 48, 2, 1), 0);
    }
    /* rx keeps epochs 1..3 (max 3): epoch 0's frame has no key. */
    mls_open(rx, &f[0], SPK_ENOTFOUND, NULL);
    for (int e = 1; e < 4; e++) {
        spk_sframe_mls_sender_t who;
        mls_open(rx, &f[e], 0, &who);
        assert_int_equal(who.epoch, (uint64_t)e);
        assert_int_equal(who.leaf, 0);
    }
    /* Epoch 5 shares its low 2 bits with epoch 1, which goes; 2 and 3 stay. */
    uint8_t b5[48];
    memset(b5, 5, sizeof(b5));
    spk_sframe_mls_free(rx);
    rx = NULL;
    assert_rc(spk_sframe_mls_create(&rx, &o), 0);
    for (int e = 1; e < 4; e++) {
        assert_rc(spk_sframe_mls_add_epoch_secret(rx, (uint64_t)e, base[e], 48, 2, 1), 0);
    }
    assert_rc(spk_sframe_mls_add_epoch_secret(rx, 5, b5, 48, 2, 1), 0);
    mls_open(rx, &f[1], SPK_EVERIFY, NULL); /* its bits now name epoch 5 */
    mls_open(rx, &f[2], 0, NULL);
    mls_open(rx, &f[3], 0, NULL);
    spk_sframe_mls_free(tx);
    spk_sframe_mls_free(rx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_ctx_roundtrip),
        cmocka_unit_test(test_ctx_keys),
        cmocka_unit_test(test_ctx_counter),
        cmocka_unit_test(test_ctx_replay_window),
        cmocka_unit_test(test_ctx_bad_frames),
        cmocka_unit_test(test_mls_call),
        cmocka_unit_test(test_mls_removed_member),
        cmocka_unit_test(test_mls_kids_and_epochs),
        cmocka_unit_test(test_mls_eviction),
    };
    return run_cases(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
