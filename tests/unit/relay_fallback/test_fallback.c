/* Unit tests for the audio-only fallback rule (relay_fallback.h): video goes off only after
 * weak reports for long enough, a fine report in between resets that, reports just after a
 * change do not count, video comes back after the backoff when audio is clean, the backoff
 * doubles when a probe fails and returns to its start once video stays on, lossy audio delays
 * the probe, and reports about nothing change nothing; the loss window measures a stream over a
 * second whatever the report rate, discards the window across a restart, starts over when the
 * counters go backwards, and says nothing when nothing was expected. */
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
                        spk_fallback_change_t *what)
{
    for (uint64_t t = from; t < to; t += 1000) {
        spk_fallback_change_t c = spk_fallback_report(f, t, vloss, aloss);
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
    assert_int_equal(reports(&f, T0, T0 + 60000, 0, 0, &c), 0);
    assert_int_equal(reports(&f, T0 + 60000, T0 + 90000, SPK_FALLBACK_LOSS_OFF, 0, &c), 0);
    /* 50 % loss: the first weak report at +90 s, off once 2.5 s have passed (the 4th). */
    uint64_t t = reports(&f, T0 + 90000, T0 + 100000, BAD, 0, &c);
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
        assert_int_equal(spk_fallback_report(&f, t, BAD, 0), SPK_FALLBACK_SAME);
        assert_int_equal(spk_fallback_report(&f, t + 1000, BAD, 0), SPK_FALLBACK_SAME);
        assert_int_equal(spk_fallback_report(&f, t + 2000, 0, 0), SPK_FALLBACK_SAME);
        t += 3000;
    }
    /* A report that says nothing about video neither counts nor resets. */
    assert_int_equal(spk_fallback_report(&f, t, BAD, 0), SPK_FALLBACK_SAME);
    assert_int_equal(spk_fallback_report(&f, t + 1000, -1, 0), SPK_FALLBACK_SAME);
    assert_int_equal(spk_fallback_report(&f, t + 2600, BAD, 0), SPK_FALLBACK_VIDEO_OFF);
}

static void test_grace_after_change(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_init(&f, T0);
    /* Within the grace period weak reports do not count. */
    for (uint64_t t = T0; t < T0 + SPK_FALLBACK_GRACE_MS; t += 100) {
        assert_int_equal(spk_fallback_report(&f, t, 255, 0), SPK_FALLBACK_SAME);
    }
    assert_int_equal(f.weak_n, 0);
}

static void test_probe_and_backoff(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    uint64_t off = reports(&f, T0 + 10000, T0 + 20000, BAD, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    /* Off: clean audio brings video back after the backoff, not before. */
    uint64_t on = reports(&f, off + 1000, off + 60000, -1, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + SPK_FALLBACK_BACKOFF_MS);
    assert_false(f.video_off);
    /* The probe fails: off again, and the next wait is twice as long. */
    off = reports(&f, on + 1000, on + 20000, BAD, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    assert_int_equal(f.backoff_ms, 2 * SPK_FALLBACK_BACKOFF_MS);
    on = reports(&f, off + 1000, off + 60000, -1, 0, &c);
    assert_int_equal(on, off + 2 * SPK_FALLBACK_BACKOFF_MS);
    /* Failing probes: the wait doubles up to its maximum. */
    for (int i = 0; i < 10; i++) {
        off = reports(&f, on + 1000, on + 20000, BAD, 0, &c);
        assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
        on = reports(&f, off + 1000, off + 200000, -1, 0, &c);
        assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    }
    assert_int_equal(f.backoff_ms, SPK_FALLBACK_BACKOFF_MAX_MS);
    assert_int_equal(on - off, SPK_FALLBACK_BACKOFF_MAX_MS);
    /* Video stays on long enough: the backoff starts over. */
    assert_int_equal(reports(&f, on + 1000, on + SPK_FALLBACK_STABLE_MS + 2000, 0, 0, &c), 0);
    assert_int_equal(f.backoff_ms, SPK_FALLBACK_BACKOFF_MS);
}

static void test_lossy_audio_delays_probe(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_change_t c;
    spk_fallback_init(&f, T0);
    uint64_t off = reports(&f, T0 + 10000, T0 + 20000, BAD, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    /* Audio loses 10 % for 20 s: no probe; then clean: a full backoff from the last lossy one. */
    assert_int_equal(reports(&f, off + 1000, off + 21000, -1, 26, &c), 0);
    uint64_t on = reports(&f, off + 21000, off + 60000, -1, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + 20000 + SPK_FALLBACK_BACKOFF_MS);
    /* While off, video loss (what was queued on the link when video stopped) does not matter,
     * and audio loss at the limit is clean enough. */
    off = reports(&f, on + 2000, on + 20000, BAD, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    on = reports(&f, off + 1000, off + 60000, 244, SPK_FALLBACK_LOSS_ON, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + 2 * SPK_FALLBACK_BACKOFF_MS);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    spk_fallback_t f;
    spk_fallback_init(&f, T0);
    assert_int_equal(spk_fallback_report(&f, 5, BAD, 0), SPK_FALLBACK_SAME);
    assert_false(f.video_off);
}

static void test_loss_window(void **state)
{
    (void)state;
    spk_loss_window_t w;
    spk_loss_window_init(&w, 1234);
    /* Reports every 100 ms; 100 packets a second, half of them lost. */
    int got = -1;
    uint64_t at = 0;
    for (uint32_t i = 0; i <= 10 && got < 0; i++) {
        got = spk_loss_window_update(&w, T0 + i * 100u, (int32_t)(i * 5u), 1000u + i * 10u);
        at = T0 + i * 100u;
    }
    assert_int_equal(got, 128);
    assert_int_equal(at, T0 + SPK_FALLBACK_WINDOW_MS);
    /* No loss over the next second; then duplicates (cumulative loss falls): 0, not negative. */
    assert_int_equal(spk_loss_window_update(&w, T0 + 1500, 50, 1150), -1);
    assert_int_equal(spk_loss_window_update(&w, T0 + 2000, 50, 1200), 0);
    assert_int_equal(spk_loss_window_update(&w, T0 + 3000, 40, 1300), 0);
    /* Total loss, and more lost than expected (a report's rounding): 255. */
    assert_int_equal(spk_loss_window_update(&w, T0 + 4000, 140, 1400), 255);
    assert_int_equal(spk_loss_window_update(&w, T0 + 5000, 300, 1500), 255);
    /* Nothing expected (video withheld): no news. */
    assert_int_equal(spk_loss_window_update(&w, T0 + 6000, 300, 1500), -1);
    /* A restart: the first report is the base, the window after it (the jump) is discarded. */
    spk_loss_window_restart(&w);
    assert_int_equal(spk_loss_window_update(&w, T0 + 6500, 300, 1500), -1);
    assert_int_equal(spk_loss_window_update(&w, T0 + 7500, 2300, 3600), -1);
    assert_int_equal(spk_loss_window_update(&w, T0 + 8500, 2300, 3700), 0);
    /* Counters backwards (a new numbering): the window starts over. */
    assert_int_equal(spk_loss_window_update(&w, T0 + 9500, 0, 10), -1);
    assert_int_equal(spk_loss_window_update(&w, T0 + 10500, 25, 110), 64);
    /* The clock backwards: starts over too. */
    assert_int_equal(spk_loss_window_update(&w, T0, 25, 210), -1);
    assert_int_equal(spk_loss_window_update(&w, T0 + 1000, 25, 310), 0);
}

/* Thresholds from the relay's configuration (spk_relay_config_t.fallback). */
static void test_configured_rule(void **state)
{
    (void)state;
    spk_relay_fallback_rule_t r;
    spk_fallback_rule_defaults(&r);
    assert_true(spk_fallback_rule_ok(&r));
    r.loss_off = 128; /* 50 % */
    r.weak_ms = 500;
    r.backoff_ms = 1000;
    r.backoff_max_ms = 1000;
    assert_true(spk_fallback_rule_ok(&r));
    spk_fallback_t f;
    spk_fallback_init_rule(&f, T0, &r);
    spk_fallback_change_t c;
    /* 40 % loss is not weak under this rule (it is under the default one). */
    assert_int_equal(reports(&f, T0 + 2000, T0 + 10000, 102, 0, &c), 0);
    uint64_t off = reports(&f, T0 + 10000, T0 + 20000, 200, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_OFF);
    assert_int_equal(off, T0 + 11000); /* two weak reports, 500 ms apart at least */
    uint64_t on = reports(&f, off, off + 10000, -1, 0, &c);
    assert_int_equal(c, SPK_FALLBACK_VIDEO_ON);
    assert_int_equal(on, off + 1000);
    /* Refused: a resume threshold above the weak one, zero times, a maximum below the first. */
    spk_relay_fallback_rule_t bad = r;
    bad.loss_on = 129;
    assert_false(spk_fallback_rule_ok(&bad));
    bad = r;
    bad.loss_off = 256;
    assert_false(spk_fallback_rule_ok(&bad));
    bad = r;
    bad.weak_n = 0;
    assert_false(spk_fallback_rule_ok(&bad));
    bad = r;
    bad.backoff_max_ms = 999;
    assert_false(spk_fallback_rule_ok(&bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goes_off_after_weak_period),
        cmocka_unit_test(test_fine_report_resets),
        cmocka_unit_test(test_grace_after_change),
        cmocka_unit_test(test_probe_and_backoff),
        cmocka_unit_test(test_lossy_audio_delays_probe),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_loss_window),
        cmocka_unit_test(test_configured_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
