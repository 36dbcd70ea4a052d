/* Unit tests for the relay's REMB rule (relay_remb.h): start at the target, decrease by half
 * the loss above 10 %, increase by 8 % + 1 kbit/s below 2 %, hold in between and without
 * reports, stay within [min, target]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay_remb.h"

static void test_start_and_hold(void **state)
{
    (void)state;
    spk_remb_rule_t r;
    spk_remb_rule_init(&r, 2500000);
    assert_int_equal(r.bps, 2500000);
    assert_int_equal(r.min_bps, SPK_REMB_MIN_BPS);
    /* No report, no loss at the target, loss in the hold band: unchanged. */
    assert_int_equal(spk_remb_rule_update(&r, -1), 2500000);
    assert_int_equal(spk_remb_rule_update(&r, 0), 2500000);
    assert_int_equal(spk_remb_rule_update(&r, SPK_REMB_LOSS_LOW), 2500000);
    assert_int_equal(spk_remb_rule_update(&r, SPK_REMB_LOSS_HIGH), 2500000);
}

static void test_decrease(void **state)
{
    (void)state;
    spk_remb_rule_t r;
    spk_remb_rule_init(&r, 1500000);
    /* 25 % loss (64/256): bps * (1 - 0.125) */
    assert_int_equal(spk_remb_rule_update(&r, 64), 1312500);
    assert_int_equal(spk_remb_rule_update(&r, 64), 1148437);
    /* Just above the threshold: 26/256 -> * (1 - 13/256) */
    spk_remb_rule_init(&r, 1000000);
    assert_int_equal(spk_remb_rule_update(&r, SPK_REMB_LOSS_HIGH + 1), 949218);
    /* Total loss halves it, down to the floor and no further. */
    spk_remb_rule_init(&r, 2500000);
    uint64_t prev = r.bps;
    for (int i = 0; i < 20; i++) {
        uint64_t b = spk_remb_rule_update(&r, 255);
        assert_true(b <= prev);
        assert_true(b >= SPK_REMB_MIN_BPS);
        prev = b;
    }
    assert_int_equal(r.bps, SPK_REMB_MIN_BPS);
    /* Out-of-range input is clamped. */
    assert_int_equal(spk_remb_rule_update(&r, 1000), SPK_REMB_MIN_BPS);
}

static void test_increase(void **state)
{
    (void)state;
    spk_remb_rule_t r;
    spk_remb_rule_init(&r, 2500000);
    r.bps = 1000000;
    assert_int_equal(spk_remb_rule_update(&r, 0), 1081000);
    assert_int_equal(spk_remb_rule_update(&r, SPK_REMB_LOSS_LOW - 1), 1168480);
    /* Back to the target after a loss episode, never above it. */
    int steps = 0;
    while (r.bps < r.target_bps && steps < 100) {
        spk_remb_rule_update(&r, 0);
        steps++;
    }
    assert_int_equal(r.bps, 2500000);
    assert_true(steps > 5 && steps < 20);
    assert_int_equal(spk_remb_rule_update(&r, 0), 2500000);
}

static void test_small_target(void **state)
{
    (void)state;
    spk_remb_rule_t r;
    spk_remb_rule_init(&r, 100000); /* below the usual floor: the floor follows */
    assert_int_equal(r.min_bps, 100000);
    assert_int_equal(spk_remb_rule_update(&r, 255), 100000);
    assert_int_equal(spk_remb_rule_update(&r, 0), 100000);
    spk_remb_rule_init(&r, 0); /* off: stays 0 */
    assert_int_equal(spk_remb_rule_update(&r, 0), 0);
    assert_int_equal(spk_remb_rule_update(&r, 200), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_hold),
        cmocka_unit_test(test_decrease),
        cmocka_unit_test(test_increase),
        cmocka_unit_test(test_small_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
