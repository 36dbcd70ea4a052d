/* Small helpers the load tools share: another process's CPU time and memory from /proc, free
 * loopback ports, percentiles. */
#ifndef SPK_BENCHUTIL_H
#define SPK_BENCHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* User + system CPU seconds of a process (every thread, in clock ticks), -1 when unknown. */
double spk_bench_cpu_s(int pid);
/* Seconds one thread of pid spent runnable but waiting for a CPU (schedstat), -1 unknown. */
double spk_bench_task_wait_s(int pid, int tid);
/* Seconds one thread of pid spent on a CPU (schedstat: nanosecond resolution, where stat counts
 * clock ticks), -1 unknown. */
double spk_bench_task_run_s(int pid, int tid);
/* VmRSS in KiB, -1 when unknown. */
long spk_bench_rss_kb(int pid);
/* Up to max thread ids of pid whose name (comm) starts with prefix; returns the count. */
size_t spk_bench_tasks(int pid, const char *prefix, int *tids, size_t max);

/* Datagrams dropped so far on the UDP sockets pid has open (the "drops" column of
 * /proc/net/udp and udp6: receive buffer full), -1 when unknown. */
long spk_bench_udp_drops(int pid);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int spk_bench_free_port(void);
/* True when something accepts TCP connections on 127.0.0.1:port. */
bool spk_bench_port_accepts(int port);

/* A growing array of samples (latencies). */
typedef struct {
    uint64_t *v;
    size_t n, cap;
} spk_bench_samples_t;

/* Appends x; a sample that does not fit in memory is dropped. */
void spk_bench_samples_add(spk_bench_samples_t *s, uint64_t x);
void spk_bench_samples_free(spk_bench_samples_t *s);

/* The value of an unlabelled metric in spreekd's /metrics on 127.0.0.1:port; -1 if absent. */
double spk_bench_metric(int port, const char *name);
int spk_bench_cmp_u64(const void *a, const void *b);
int spk_bench_cmp_double(const void *a, const void *b);
/* Nearest-rank percentile of sorted values (0 when empty). */
uint64_t spk_bench_percentile(const uint64_t *v, size_t n, double q);
/* Median of v (sorted in place); 0 when empty. */
double spk_bench_median(double *v, int n);

#endif
