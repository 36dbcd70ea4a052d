/* Helpers shared by the crypto micro-benchmarks: process CPU time (so that other load on a
 * shared machine does not inflate the figures of single-threaded work) and medians. */
#ifndef SPK_BENCH_UTIL_H
#define SPK_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

/* CPU time of the process in microseconds. */
static inline double bench_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (v is sorted in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
