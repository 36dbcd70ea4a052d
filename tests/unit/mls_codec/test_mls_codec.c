/* Unit tests for the MLS TLS codec (RFC 9420 §2.1): rejection cases the official
 * deserialization vectors do not cover, plus writer round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mls/codec.h"
#include "mls/treemath.h"
#include "spk/error.h"
#include "spk/hpke.h"

static int read_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    spk_mls_reader_t r;
    spk_mls_reader_init(&r, p, n);
    int rc = spk_mls_read_varint(&r, v);
    return rc != 0 ? rc : spk_mls_reader_done(&r);
}

static void test_varint_valid(void **state)
{
    uint64_t v = 0;
    const uint8_t one[] = {0x25};
    const uint8_t two[] = {0x7b, 0xbd};
    const uint8_t four[] = {0x9d, 0x7f, 0x3e, 0x7d};
    const uint8_t max[] = {0xbf, 0xff, 0xff, 0xff};
    assert_int_equal(read_varint(one, sizeof one, &v), 0);
    assert_int_equal(v, 37);
    assert_int_equal(read_varint(two, sizeof two, &v), 0);
    assert_int_equal(v, 15293);
    assert_int_equal(read_varint(four, sizeof four, &v), 0);
    assert_int_equal(v, 494878333);
    assert_int_equal(read_varint(max, sizeof max, &v), 0);
    assert_int_equal(v, SPK_MLS_VARINT_MAX);
}

static void test_varint_non_minimal(void **state)
{
    uint64_t v = 99;
    const uint8_t two_for_zero[] = {0x40, 0x00};
    const uint8_t two_for_63[] = {0x40, 0x3f};
    const uint8_t four_for_small[] = {0x80, 0x00, 0x00, 0x25};
    const uint8_t four_for_16383[] = {0x80, 0x00, 0x3f, 0xff};
    assert_int_equal(read_varint(two_for_zero, 2, &v), SPK_EDECODE);
    assert_int_equal(v, 0);
    assert_int_equal(read_varint(two_for_63, 2, &v), SPK_EDECODE);
    assert_int_equal(read_varint(four_for_small, 4, &v), SPK_EDECODE);
    assert_int_equal(read_varint(four_for_16383, 4, &v), SPK_EDECODE);
}

static void test_varint_reserved_prefix(void **state)
{
    uint64_t v = 0;
    const uint8_t eight[] = {0xc0, 0, 0, 0, 0, 0, 0, 0x01};
    const uint8_t lone[] = {0xff};
    assert_int_equal(read_varint(eight, sizeof eight, &v), SPK_EDECODE);
    assert_int_equal(read_varint(lone, sizeof lone, &v), SPK_EDECODE);
}

static void test_varint_truncated(void **state)
{
    uint64_t v = 0;
    const uint8_t two[] = {0x7b};
    const uint8_t four[] = {0x9d, 0x7f, 0x3e};
    assert_int_equal(read_varint(two, sizeof two, &v), SPK_ETRUNC);
    assert_int_equal(read_varint(four, sizeof four, &v), SPK_ETRUNC);
    assert_int_equal(read_varint(NULL, 0, &v), SPK_ETRUNC);
}

static void test_opaque_beyond_buffer(void **state)
{
    spk_mls_reader_t r;
    const uint8_t *p = NULL;
    size_t n = 0;
    const uint8_t short_body[] = {0x05, 'a', 'b', 'c'};
    spk_mls_reader_init(&r, short_body, sizeof short_body);
    assert_int_equal(spk_mls_read_opaque_v(&r, &p, &n), SPK_ETRUNC);
    assert_null(p);
    assert_int_equal(n, 0);
    /* Huge declared length must not overflow the bounds check. */
    const uint8_t huge[] = {0xbf, 0xff, 0xff, 0xff, 0x00};
    spk_mls_reader_init(&r, huge, sizeof huge);
    assert_int_equal(spk_mls_read_opaque_v(&r, &p, &n), SPK_ETRUNC);
    /* A sub-vector longer than its parent. */
    const uint8_t nested[] = {0x02, 0x05, 0x00, 0x00};
    spk_mls_reader_t sub;
    spk_mls_reader_init(&r, nested, sizeof nested);
    assert_int_equal(spk_mls_read_sub(&r, &sub), 0);
    assert_int_equal(spk_mls_read_opaque_v(&sub, &p, &n), SPK_ETRUNC);
    assert_int_equal(spk_mls_reader_done(&r), SPK_EDECODE); /* one byte left over */
}

static void test_sticky_error(void **state)
{
    spk_mls_reader_t r;
    uint16_t a = 1;
    uint8_t b = 1;
    uint32_t c = 1;
    const uint8_t buf[] = {0x01, 0x02, 0x03};
    spk_mls_reader_init(&r, buf, sizeof buf);
    assert_int_equal(spk_mls_read_u16(&r, &a), 0);
    assert_int_equal(a, 0x0102);
    assert_int_equal(spk_mls_read_u32(&r, &c), SPK_ETRUNC);
    assert_int_equal(c, 0);
    /* The remaining byte would be readable, but the error is sticky. */
    assert_int_equal(spk_mls_read_u8(&r, &b), SPK_ETRUNC);
    assert_int_equal(b, 0);
    assert_int_equal(spk_mls_reader_remaining(&r), 0);
    assert_false(spk_mls_reader_at_end(&r));
    assert_int_equal(spk_mls_reader_done(&r), SPK_ETRUNC);
}

static void test_optional(void **state)
{
    spk_mls_reader_t r;
    bool present = true;
    const uint8_t bad[] = {0x02};
    const uint8_t good[] = {0x00, 0x01};
    spk_mls_reader_init(&r, bad, sizeof bad);
    assert_int_equal(spk_mls_read_optional(&r, &present), SPK_EDECODE);
    assert_false(present);
    spk_mls_reader_init(&r, good, sizeof good);
    assert_int_equal(spk_mls_read_optional(&r, &present), 0);
    assert_false(present);
    assert_int_equal(spk_mls_read_optional(&r, &present), 0);
    assert_true(present);
    assert_int_equal(spk_mls_reader_done(&r), 0);
}

static void test_fixed_opaque(void **state)
{
    spk_mls_reader_t r;
    uint8_t out[4];
    const uint8_t wrong[] = {0x03, 1, 2, 3};
    spk_mls_reader_init(&r, wrong, sizeof wrong);
    assert_int_equal(spk_mls_read_opaque_v_fixed(&r, out, sizeof out), SPK_EDECODE);
}

static void test_writer_round_trip(void **state)
{
    spk_mls_writer_t w;
    spk_mls_bytes_t out;
    uint8_t body[300];
    memset(body, 0xab, sizeof body);
    spk_mls_writer_init(&w);
    spk_mls_write_u8(&w, 1);
    spk_mls_write_u16(&w, 0x0203);
    spk_mls_write_u32(&w, 0x04050607);
    spk_mls_write_u64(&w, 0x08090a0b0c0d0e0fULL);
    spk_mls_write_opaque_v(&w, body, 63);
    spk_mls_write_opaque_v(&w, body, 64);
    size_t outer = 0, inner = 0;
    spk_mls_write_vec_begin(&w, &outer);
    spk_mls_write_vec_begin(&w, &inner);
    spk_mls_write_bytes(&w, body, sizeof body);
    spk_mls_write_vec_end(&w, inner);
    spk_mls_write_optional(&w, true);
    spk_mls_write_vec_end(&w, outer);
    assert_int_equal(spk_mls_writer_take(&w, &out), 0);

    spk_mls_reader_t r, sub;
    uint8_t a;
    uint16_t b;
    uint32_t c;
    uint64_t d;
    const uint8_t *p;
    size_t n;
    bool present;
    spk_mls_reader_init(&r, out.p, out.n);
    spk_mls_read_u8(&r, &a);
    spk_mls_read_u16(&r, &b);
    spk_mls_read_u32(&r, &c);
    spk_mls_read_u64(&r, &d);
    assert_int_equal(a, 1);
    assert_int_equal(b, 0x0203);
    assert_int_equal(c, 0x04050607);
    assert_true(d == 0x08090a0b0c0d0e0fULL);
    assert_int_equal(r.p[r.off], 63); /* 1-byte header */
    spk_mls_read_opaque_v(&r, &p, &n);
    assert_int_equal(n, 63);
    assert_int_equal(r.p[r.off], 0x40); /* 2-byte header */
    spk_mls_read_opaque_v(&r, &p, &n);
    assert_int_equal(n, 64);
    assert_int_equal(spk_mls_read_sub(&r, &sub), 0);
    assert_int_equal(spk_mls_read_opaque_v(&sub, &p, &n), 0);
    assert_int_equal(n, sizeof body);
    assert_memory_equal(p, body, sizeof body);
    assert_int_equal(spk_mls_read_optional(&sub, &present), 0);
    assert_true(present);
    assert_int_equal(spk_mls_reader_done(&sub), 0);
    assert_int_equal(spk_mls_reader_done(&r), 0);
    spk_mls_bytes_free(&out);
    assert_null(out.p);
}

static void test_writer_range(void **state)
{
    spk_mls_writer_t w;
    spk_mls_bytes_t out;
    spk_mls_writer_init(&w);
    assert_int_equal(spk_mls_write_varint(&w, SPK_MLS_VARINT_MAX + 1), SPK_ERANGE);
    /* Sticky: later writes fail too, and take reports the error. */
    assert_int_equal(spk_mls_write_u8(&w, 0), SPK_ERANGE);
    assert_int_equal(spk_mls_writer_take(&w, &out), SPK_ERANGE);
    assert_null(out.p);
}

static void test_treemath_bounds(void **state)
{
    uint32_t out = 7;
    assert_int_equal(spk_mls_tm_left(4, &out), SPK_EINVAL);
    assert_int_equal(spk_mls_tm_parent(3, 4, &out), SPK_EINVAL); /* root */
    assert_int_equal(spk_mls_tm_parent(7, 4, &out), SPK_EINVAL); /* outside */
    assert_int_equal(out, 7);
    assert_int_equal(spk_mls_tm_common_ancestor(0, 6), 3);
    assert_int_equal(spk_mls_tm_common_ancestor(2, 2), 2);
}

static void test_hpke_bad_inputs(void **state)
{
    spk_hpke_ctx_t ctx;
    uint8_t sk[32], pk[32], enc[32] = {0};
    spk_hpke_params_t p = {.mode = SPK_HPKE_MODE_BASE, .aead_id = SPK_HPKE_AEAD_AES128GCM};
    assert_int_equal(spk_hpke_generate_key_pair(sk, pk), 0);
    /* All-zero (low-order) public key: the DH output would be zero and must abort. */
    assert_int_equal(spk_hpke_setup_receiver(&ctx, &p, enc, sizeof enc, sk), SPK_ECRYPTO);
    /* PSK mode without a PSK. */
    p.mode = SPK_HPKE_MODE_PSK;
    assert_int_equal(spk_hpke_setup_sender(&ctx, &p, pk, sizeof pk, enc), SPK_EINVAL);
    /* Base mode with a PSK. */
    p.mode = SPK_HPKE_MODE_BASE;
    p.psk = sk;
    p.psk_len = 32;
    p.psk_id = sk;
    p.psk_id_len = 1;
    assert_int_equal(spk_hpke_setup_sender(&ctx, &p, pk, sizeof pk, enc), SPK_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_valid),
        cmocka_unit_test(test_varint_non_minimal),
        cmocka_unit_test(test_varint_reserved_prefix),
        cmocka_unit_test(test_varint_truncated),
        cmocka_unit_test(test_opaque_beyond_buffer),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_optional),
        cmocka_unit_test(test_fixed_opaque),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_range),
        cmocka_unit_test(test_treemath_bounds),
        cmocka_unit_test(test_hpke_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
