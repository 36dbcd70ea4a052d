/* Unit tests for the audio-only fallback rule (relay_fallback.h): video goes off only after
 * weak reports for long enough, a fine report in between resets that, reports just after a
 * change do not count, video comes back after the backoff when audio is clean, the backoff
 * doubles when a probe fails and returns to its start once video stays on, a weak REMB counts
 * like loss, and reports about nothing change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "relay_fallback.h"

#define BAD 128 /* 50 % loss */
#define T0 100000u

/* One report a second from `from` (inclusive) to `to` (exclusive); returns the ms of the first
 * change (0 if none) and stores it in *what. */
static uint64_t reports(spk_fallback_t *f, uint64_t from, uint64_t to, int vloss, int aloss,
                        uint64_t remb, spk_fallback_change_t *what)
{
    for (uint64_t t = from; t < to; t += 1000) {
        spk_fallback_change_t c = spk_fallback_report(f, t, vloss, aloss, remb);
        if (c != SPK_FALLBACK_SAME) {
            *what = c;
            return t;
        }
    }
    *what = SPK_FALLBACK_SAME;
    return 0;
}

static void test_goes_off_after_weak_period(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    /* Clean and mildly lossy reports keep video on. */
    assert_int_equal(reports(&f, T0, T0 + 60000, 0, 0, 0, &c), 0);
    assert_int_equal(reports(&f, T0 + 60000, T0 + 90000, SPK_FALLBACK_LOSS_OFF, 0, 0, &c), 0);
    /* 50 % loss: the first weak report at +90 s, off once 2.5 s have passed (the 4th). */
    uint64_t t = reports(&f, T0 + 90000, T0 + 100000, BAD, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    assert_int_equal(t, T0 + 93000);
    assert_true(f.video_off);
    assert_int_equal(f.n_off, 1);
}

static void test_fine_report_resets(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_init(&f, T0);
    uint64_t t = T0 + 10000;
    for (int i = 0; i < 20; i++) {
        /* weak, weak, fine: never 2.5 s of weak reports in a row */
        assert_int_equal(spk_fallback_report(&f, t, BAD, 0, 0), SPK_FALLBACK_SAME);
        assert_int_equal(spk_fallback_report(&f, t + 1000, BAD, 0, 0), SPK_FALLBACK_SAME);
        assert_int_equal(spk_fallback_report(&f, t + 2000, 0, 0, 0), SPK_FALLBACK_SAME);
        t += 3000;
    }
    /* A report that says nothing about video neither counts nor resets. */
    assert_int_equal(spk_fallback_report(&f, t, BAD, 0, 0), SPK_FALLBACK_SAME);
    assert_int_equal(spk_fallback_report(&f, t + 1000, -1, 0, 0), SPK_FALLBACK_SAME);
    assert_int_equal(spk_fallback_report(&f, t + 2600, BAD, 0, 0), SPK_FALLBACK_VIDEO_OFF);
}

static void test_grace_after_change(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_init(&f, T0);
    /* Within the grace period weak reports do not count. */
    for (uint64_t t = T0; t < T0 + SPK_FALLBACK_GRACE_MS; t += 100) {
        assert_int_equal(spk_fallback_report(&f, t, 255, 0, 0), SPK_FALLBACK_SAME);
    }
    assert_int_equal(f.weak_n, 0);
}

static void test_probe_and_backoff(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    uint64_t off = reports(&f, T0 + 10000, T0 + 20000, BAD, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    /* Off: clean audio brings video back after the backoff, not before. */
    uint64_t on = reports(&f, off + 1000, off + 60000, -1, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + SPK_FALLBACK_BACKOFF_MS);
    assert_false(f.video_off);
    /* The probe fails: off again, and the next wait is twice as long. */
    off = reports(&f, on + 1000, on + 20000, BAD, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    assert_int_equal(f.backoff_ms, 2 * SPK_FALLBACK_BACKOFF_MS);
    on = reports(&f, off + 1000, off + 60000, -1, 0, 0, &c);
    assert_int_equal(on, off + 2 * SPK_FALLBACK_BACKOFF_MS);
    /* Failing probes: the wait doubles up to its maximum. */
    for (int i = 0; i < 10; i++) {
        off = reports(&f, on + 1000, on + 20000, BAD, 0, 0, &c);
        assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
        on = reports(&f, off + 1000, off + 200000, -1, 0, 0, &c);
        assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    }
    assert_int_equal(f.backoff_ms, SPK_FALLBACK_BACKOFF_MAX_MS);
    assert_int_equal(on - off, SPK_FALLBACK_BACKOFF_MAX_MS);
    /* Video stays on long enough: the backoff starts over. */
    assert_int_equal(reports(&f, on + 1000, on + SPK_FALLBACK_STABLE_MS + 2000, 0, 0, 0, &c), 0);
    assert_int_equal(f.backoff_ms, SPK_FALLBACK_BACKOFF_MS);
}

static void test_lossy_audio_delays_probe(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    uint64_t off = reports(&f, T0 + 10000, T0 + 20000, BAD, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    /* Audio loses 10 % for 20 s: no probe; then clean: a full backoff from the last lossy one. */
    assert_int_equal(reports(&f, off + 1000, off + 21000, -1, 26, 0, &c), 0);
    uint64_t on = reports(&f, off + 21000, off + 60000, -1, 0, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + 20000 + SPK_FALLBACK_BACKOFF_MS);
}

static void test_remb(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    /* A REMB at the threshold is fine, below it weak, even without loss. */
    assert_int_equal(reports(&f, T0 + 2000, T0 + 30000, 0, 0, SPK_FALLBACK_MIN_VIDEO_BPS, &c), 0);
    uint64_t off = reports(&f, T0 + 30000, T0 + 40000, -1, -1, 60000, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    /* While the REMB stays low there is no probe. */
    assert_int_equal(reports(&f, off + 1000, off + 60000, -1, 0, 60000, &c), 0);
    uint64_t on = reports(&f, off + 60000, off + 90000, -1, 0, 500000, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + 59000 + SPK_FALLBACK_BACKOFF_MS);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_init(&f, T0);
    assert_int_equal(spk_fallback_report(&f, 5, BAD, 0, 0), SPK_FALLBACK_SAME);
    assert_false(f.video_off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goes_off_after_weak_period),
        cmocka_unit_test(test_fine_report_resets),
        cmocka_unit_test(test_grace_after_change),
        cmocka_unit_test(test_probe_and_backoff),
        cmocka_unit_test(test_lossy_audio_delays_probe),
        cmocka_unit_test(test_remb),
        cmocka_unit_test(test_clock_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
