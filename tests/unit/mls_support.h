/* Helpers shared by the cmocka tests of the MLS and SFrame APIs: return-code assertions that
 * print both codes, KeyPackages for named members, byte comparisons, and the case runner
 * (a test binary runs one named case, or all without an argument). Include after cmocka.h. */
#ifndef SPK_TESTS_MLS_SUPPORT_H
#define SPK_TESTS_MLS_SUPPORT_H

#include <stdio.h>
#include <string.h>

#include "spk/error.h"
#include "spk/mls.h"

static inline void assert_rc(int got, int want)
{
    if (got != want) {
        print_error("rc %s (%d), want %s (%d)\n", spk_err_name(got), got, spk_err_name(want), want);
    }
    assert_int_equal(got, want);
}

/* A KeyPackage (and its secret) for a member whose identity is name. */
static inline void new_kp(const char *name, spk_mls_buf_t *kp, spk_mls_buf_t *sec)
{
    assert_rc(spk_mls_key_package_create((const uint8_t *)name, strlen(name), kp, sec), 0);
}

/* p[0..n) holds exactly the characters of want. */
static inline void assert_bytes(const uint8_t *p, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

/* Runs the case named argv[1] ("test_" left off), or every case. */
static inline int run_cases(const struct CMUnitTest *tests, size_t n, int argc, char **argv)
{
    if (argc > 1) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(tests[i].name + 5, argv[1]) == 0) {
                return _cmocka_run_group_tests(argv[1], &tests[i], 1, NULL, NULL);
            }
        }
        fprintf(stderr, "unknown case %s\n", argv[1]);
        return 2;
    }
    return _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
}

#endif
