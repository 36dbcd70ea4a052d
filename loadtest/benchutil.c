/* Shared helpers of the load tools. */
#define _GNU_SOURCE
#include "benchutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static double stat_cpu_s(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    unsigned long long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double spk_bench_cpu_s(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    return stat_cpu_s(path);
}

/* Field i (0: time on a CPU, 1: time runnable and waiting) of a task's schedstat, seconds. */
static double schedstat_s(int pid, int tid, int i)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, tid);
    FILE *f = fopen(path, "r");
    unsigned long long v[2] = {0, 0};
    int n = f ? fscanf(f, "%llu %llu", &v[0], &v[1]) : 0;
    if (f) {
        fclose(f);
    }
    return n == 2 ? (double)v[i] / 1e9 : -1;
}

double spk_bench_task_wait_s(int pid, int tid)
{
    return schedstat_s(pid, tid, 1);
}

double spk_bench_task_run_s(int pid, int tid)
{
    return schedstat_s(pid, tid, 0);
}

long spk_bench_rss_kb(int pid)
{
    char path[64];
    char line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

size_t spk_bench_tasks(int pid, const char *prefix, int *tids, size_t max)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while (d && n < max && (e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        char comm[64] = "";
        snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
        FILE *f = tid > 0 ? fopen(path, "r") : NULL;
        if (f && fgets(comm, sizeof(comm), f) && strncmp(comm, prefix, strlen(prefix)) == 0) {
            tids[n++] = tid;
        }
        if (f) {
            fclose(f);
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static int cmp_ulong(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

/* Sorted socket inodes of pid; returns the count (at most max). */
static size_t socket_inodes(int pid, unsigned long *out, size_t max)
{
    char path[64], link[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while (d && n < max && (e = readdir(d)) != NULL) {
        char fdpath[384];
        snprintf(fdpath, sizeof(fdpath), "%s/%s", path, e->d_name);
        ssize_t l = readlink(fdpath, link, sizeof(link) - 1);
        unsigned long ino;
        if (l > 0 && (link[l] = '\0', sscanf(link, "socket:[%lu]", &ino) == 1)) {
            out[n++] = ino;
        }
    }
    if (d) {
        closedir(d);
    }
    qsort(out, n, sizeof(*out), cmp_ulong);
    return n;
}

long spk_bench_udp_drops(int pid)
{
    enum { MAX_SOCKETS = 65536 };
    unsigned long *inodes = malloc(MAX_SOCKETS * sizeof(*inodes));
    if (!inodes || pid <= 0) {
        free(inodes);
        return -1;
    }
    size_t n = socket_inodes(pid, inodes, MAX_SOCKETS);
    long drops = 0;
    const char *tables[] = {"/proc/net/udp", "/proc/net/udp6"};
    for (size_t t = 0; t < 2; t++) {
        char line[512];
        FILE *f = fopen(tables[t], "r");
        while (f && fgets(line, sizeof(line), f)) {
            unsigned long ino, dr;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops */
            if (sscanf(line, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %*s %*s %lu", &ino, &dr) ==
                    2 &&
                bsearch(&ino, inodes, n, sizeof(*inodes), cmp_ulong)) {
                drops += (long)dr;
            }
        }
        if (f) {
            fclose(f);
        }
    }
    free(inodes);
    return drops;
}

int spk_bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

bool spk_bench_port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    return ok;
}

double spk_bench_metric(int port, const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        free(buf);
        close(fd);
        return -1;
    }
    for (ssize_t r; n < cap && (r = read(fd, buf + n, cap - n)) > 0;) {
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    double v = -1;
    size_t nl = strlen(name);
    for (char *p = buf; (p = strstr(p, name)) != NULL; p += nl) {
        if ((p == buf || p[-1] == '\n') && p[nl] == ' ') {
            v = strtod(p + nl + 1, NULL);
            break;
        }
    }
    free(buf);
    return v;
}

int spk_bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int spk_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

uint64_t spk_bench_percentile(const uint64_t *v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return v[rank - 1];
}

double spk_bench_median(double *v, int n)
{
    if (n <= 0) {
        return 0;
    }
    qsort(v, (size_t)n, sizeof(*v), spk_bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void spk_bench_samples_add(spk_bench_samples_t *s, uint64_t x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1 << 16;
        uint64_t *v = realloc(s->v, cap * sizeof(*v));
        if (!v) {
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

void spk_bench_samples_free(spk_bench_samples_t *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}
