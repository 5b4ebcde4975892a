/* Helpers the benchmark programs share: clock, medians, thread pinning and an in-process server. */
#ifndef PST_BENCH_UTIL_H
#define PST_BENCH_UTIL_H

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ps/server.h"

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place and returns its median. */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static inline void bench_die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s: %s\n", what, detail);
    exit(1);
}

/* Pins the calling thread to cpu when the process may run there; says so once either way. Threads
 * it creates afterwards (ZeroMQ's I/O threads among them) inherit the pinning. */
static inline void bench_pin(int cpu, const char *who)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !CPU_ISSET(cpu, &allowed) ||
        CPU_COUNT(&allowed) < 2) {
        printf("    (%s not pinned: fewer than 2 CPUs allowed)\n", who);
        return;
    }
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0)
        printf("    (%s not pinned)\n", who);
}

/* A BSP server for one worker, run in its own thread pinned to a CPU. */
typedef struct bench_server {
    pst_server_t *srv;
    pthread_t thread;
    int cpu;
    char endpoint[256];
} bench_server_t;

static inline void *bench_server_main(void *arg)
{
    bench_server_t *r = arg;
    bench_pin(r->cpu, "server");
    pst_err_t err = {0};
    if (pst_server_run(r->srv, &err) != PST_OK)
        bench_die("server", err.msg);
    return NULL;
}

static inline void bench_server_start(bench_server_t *r, int cpu)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = 1;
    cfg.consistency = PST_CONSISTENCY_BSP;
    pst_err_t err = {0};
    r->cpu = cpu;
    r->srv = pst_server_new(&cfg, &err);
    if (r->srv == NULL ||
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err))
        bench_die("server", err.msg);
    pthread_create(&r->thread, NULL, bench_server_main, r);
}

#endif
