/* Tests for ps/server with worker/psclient over TCP loopback: servers run in threads, clients in
 * the test thread; BSP, SSP and ASP clocks, sharding, sparse keys, dead workers, hostile frames
 * and checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "ps/server.h"
#include "worker/psclient.h"

typedef struct server_run {
    pst_server_t *srv;
    pthread_t thread;
    int rc;
    char endpoint[256];
} server_run_t;

static void *run_main(void *arg)
{
    server_run_t *r = arg;
    r->rc = pst_server_run(r->srv, NULL);
    return NULL;
}

static pst_server_cfg_t server_cfg(uint32_t n_workers, pst_consistency_t mode)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = n_workers;
    cfg.consistency = mode;
    return cfg;
}

static server_run_t *start_server(const pst_server_cfg_t *cfg)
{
    server_run_t *r = calloc(1, sizeof *r);
    pst_err_t err = {0};
    r->srv = pst_server_new(cfg, &err);
    assert_non_null(r->srv);
    assert_int_equal(
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err),
        PST_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
    return r;
}

/* Joins the server (run() returns once every worker shut down or died) and takes its counters. */
static void finish_server(server_run_t *r, uint64_t counters[PST_STAT_COUNT])
{
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    assert_int_equal(r->rc, PST_OK);
    if (counters != NULL)
        pst_server_stats(r->srv, counters);
    pst_server_destroy(&r->srv);
    free(r);
}

static pst_psclient_t *connect_client(server_run_t **servers, uint32_t n_servers, uint32_t id,
                                      int heartbeat_ms, pst_codec_t codec)
{
    const char *endpoints[8];
    for (uint32_t s = 0; s < n_servers; s++)
        endpoints[s] = servers[s]->endpoint;
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = n_servers;
    cfg.worker_id = id;
    cfg.heartbeat_ms = heartbeat_ms;
    cfg.timeout_ms = 5000;
    cfg.push_codec = codec;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

static void ok(int rc, const pst_err_t *err)
{
    if (rc != PST_OK)
        fail_msg("rc %d: %s", rc, err->msg);
}

static void pull_now(pst_psclient_t *c, int tensor, float *dst, uint64_t clock)
{
    pst_err_t err = {0};
    pst_ticket_t t;
    ok(pst_psclient_pull(c, tensor, dst, clock, &t, &err), &err);
    ok(pst_psclient_wait(c, t, &err), &err);
}

static void push_now(pst_psclient_t *c, int tensor, const float *g, uint64_t clock, float lr)
{
    pst_err_t err = {0};
    pst_ticket_t t;
    ok(pst_psclient_push(c, tensor, g, clock, lr, &t, &err), &err);
    ok(pst_psclient_wait(c, t, &err), &err);
}

static void shutdown_client(pst_psclient_t **c)
{
    pst_err_t err = {0};
    ok(pst_psclient_shutdown(*c, &err), &err);
    pst_psclient_destroy(c);
}

enum { N = 5 };
/* Dyadic values, so every sum and product below is exact in float32. */
static const float W0[N] = {1.0f, -2.0f, 0.5f, 4.0f, 0.0f};
static const float G1[N] = {1.0f, 0.5f, -2.0f, 0.25f, 8.0f};
static const float G2[N] = {3.0f, -0.5f, 1.0f, 0.75f, -4.0f};

/* ---- BSP ---- */

/* A BSP server for 2 workers, with worker 0 (a) and worker 1 (b) connected, each holding tensor
 * 1/0 of N floats registered (handles ta, tb). */
static void start_bsp_pair(server_run_t **srv, pst_psclient_t **a, int *ta, pst_psclient_t **b,
                           int *tb)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_BSP);
    *srv = start_server(&cfg);
    *a = connect_client(srv, 1, 0, 1000, PST_CODEC_RAW);
    *b = connect_client(srv, 1, 1, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    *ta = pst_psclient_register_dense(*a, 1, 0, N, &err);
    *tb = pst_psclient_register_dense(*b, 1, 0, N, &err);
}

/* With a's push of G1 for clock 0 in: a's pull of clock 1 is held until b pushes G2, then a and b
 * both see one step (lr 0.5) of the two gradients' mean from W0. */
static void close_clock_0(pst_psclient_t *a, int ta, pst_psclient_t *b, int tb, float *wa,
                          float *wb)
{
    pst_err_t err = {0};
    pst_ticket_t pull_a;
    ok(pst_psclient_pull(a, ta, wa, 1, &pull_a, &err), &err);
    assert_int_equal(pst_psclient_test(a, pull_a, 300, &err), PST_ETIMEOUT);
    push_now(b, tb, G2, 0, 0.5f);
    ok(pst_psclient_wait(a, pull_a, &err), &err);
    pull_now(b, tb, wb, 1);
    for (int i = 0; i < N; i++) {
        float expect = W0[i] - 0.5f * ((G1[i] + G2[i]) * 0.5f);
        assert_true(wa[i] == expect);
        assert_true(wb[i] == expect);
    }
}

static void bsp_applies_one_averaged_step_per_clock(void **state)
{
    server_run_t *srv;
    pst_psclient_t *a, *b;
    int ta, tb;
    start_bsp_pair(&srv, &a, &ta, &b, &tb);
    pst_err_t err = {0};
    uint64_t clock = 99;
    float other[N] = {9, 9, 9, 9, 9};
    ok(pst_psclient_init_on_servers(a, ta, W0, &clock, &err), &err);
    assert_int_equal(clock, 0);
    ok(pst_psclient_init_on_servers(b, tb, other, &clock, &err),
       &err); /* ignored: first writer wins */

    float wa[N], wb[N];
    pull_now(a, ta, wa, 0);
    pull_now(b, tb, wb, 0);
    assert_memory_equal(wa, W0, sizeof wa);
    assert_memory_equal(wb, W0, sizeof wb);

    /* a pushes clock 0 and asks for clock 1: held until b's push arrives. */
    push_now(a, ta, G1, 0, 0.5f);
    close_clock_0(a, ta, b, tb, wa, wb);

    /* A late push for clock 0 is acknowledged and dropped; a push from the future is refused. */
    push_now(b, tb, G2, 0, 0.5f);
    pst_psclient_stats_t st;
    pst_psclient_stats(b, &st);
    assert_int_equal(st.stale_pushes, 1);
    pst_ticket_t t;
    ok(pst_psclient_push(a, ta, G1, 7, 0.5f, &t, &err), &err);
    assert_int_equal(pst_psclient_wait(a, t, &err), PST_ESTATE);
    assert_non_null(strstr(err.msg, "clock 1 is open"));
    /* Unknown tensors are refused with a readable error. */
    int ghost = pst_psclient_register_dense(a, 1, 42, N, &err);
    ok(pst_psclient_pull(a, ghost, wa, 0, &t, &err), &err);
    assert_int_equal(pst_psclient_wait(a, t, &err), PST_ENOTFOUND);
    assert_non_null(strstr(err.msg, "tensor 1/42 is not registered"));
    pull_now(a, ta, wa, 1);
    assert_true(wa[0] == W0[0] - 0.5f * ((G1[0] + G2[0]) * 0.5f));

    pst_psclient_stats(a, &st);
    assert_int_equal(st.pushes, 1);
    assert_int_equal(st.pulls, 3);
    assert_int_equal(st.errors, 2);
    assert_true(st.pull_latency_ms > 0.0);
    shutdown_client(&a);
    shutdown_client(&b);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_UPDATES], 1);
    assert_int_equal(c[PST_STAT_STALE_PUSHES], 1);
    assert_int_equal(c[PST_STAT_ERRORS], 2);
    assert_int_equal(c[PST_STAT_TENSORS], 1);
    assert_int_equal(c[PST_STAT_BAD_FRAMES], 0);
}

/* A worker's second push for the open clock is refused, not summed: the step stays the average of
 * one push per worker, and the clock closes only when the other worker pushed. */
static void bsp_refuses_a_second_push_for_the_open_clock(void **state)
{
    server_run_t *srv;
    pst_psclient_t *a, *b;
    int ta, tb;
    start_bsp_pair(&srv, &a, &ta, &b, &tb);
    pst_err_t err = {0};
    uint64_t clock;
    ok(pst_psclient_init_on_servers(a, ta, W0, &clock, &err), &err);
    ok(pst_psclient_init_on_servers(b, tb, W0, &clock, &err), &err);

    push_now(a, ta, G1, 0, 0.5f);
    pst_ticket_t t;
    ok(pst_psclient_push(a, ta, G1, 0, 0.5f, &t, &err), &err);
    assert_int_equal(pst_psclient_wait(a, t, &err), PST_ESTATE);
    assert_non_null(strstr(err.msg, "second push of tensor 1/0 for clock 0"));
    /* Clock 0 is still open: a pull for clock 1 waits for b, then one step of the mean. */
    float wa[N], wb[N];
    close_clock_0(a, ta, b, tb, wa, wb);
    shutdown_client(&a);
    shutdown_client(&b);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_UPDATES], 1);
    assert_int_equal(c[PST_STAT_ERRORS], 1);
}

typedef struct delayed_push {
    pst_psclient_t *c;
    int tensor;
    double after_s; /* sleeps this long, then pushes G2 for clock 0 */
} delayed_push_t;

static void *delayed_push_main(void *arg)
{
    delayed_push_t *d = arg;
    struct timespec ts = {0, (long)(d->after_s * 1e9)};
    nanosleep(&ts, NULL);
    pst_err_t err = {0};
    pst_ticket_t t;
    if (pst_psclient_push(d->c, d->tensor, G2, 0, 0.5f, &t, &err) == PST_OK)
        pst_psclient_wait(d->c, t, &err);
    return NULL;
}

/* A worker's wait sums hold the time it blocked: a's pull of clock 1 blocks until b pushes
 * 0.3 s later, so a's pull wait is at least that and at most the wall time a spent waiting.
 * The server counts its time on pushes and pulls from receipt to reply: it handled every
 * request, and its time does not include the 0.3 s that a's pull sat waiting for b. */
static void waits_and_server_time_are_counted(void **state)
{
    (void)state;
    server_run_t *srv;
    pst_psclient_t *a, *b;
    int ta, tb;
    start_bsp_pair(&srv, &a, &ta, &b, &tb);
    pst_err_t err = {0};
    uint64_t clock;
    ok(pst_psclient_init_on_servers(a, ta, W0, &clock, &err), &err);
    ok(pst_psclient_init_on_servers(b, tb, W0, &clock, &err), &err);
    pst_psclient_stats_t st;
    pst_psclient_stats(a, &st);
    assert_true(st.pull_wait_ms == 0.0 && st.push_wait_ms == 0.0);

    double t0 = pst_clock_seconds();
    push_now(a, ta, G1, 0, 0.5f);
    double pushed = pst_clock_seconds();
    float wa[N];
    pst_ticket_t pull_a;
    ok(pst_psclient_pull(a, ta, wa, 1, &pull_a, &err), &err);
    delayed_push_t d = {b, tb, 0.3};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, delayed_push_main, &d), 0);
    double wait_from = pst_clock_seconds();
    ok(pst_psclient_wait(a, pull_a, &err), &err);
    double wait_to = pst_clock_seconds();
    assert_int_equal(pthread_join(th, NULL), 0);

    pst_psclient_stats(a, &st);
    assert_true(st.push_wait_ms > 0.0 && st.push_wait_ms <= (pushed - t0) * 1e3);
    assert_true(st.pull_wait_ms >= 300.0 * 0.95);
    assert_true(st.pull_wait_ms <= (wait_to - wait_from) * 1e3);
    shutdown_client(&a);
    shutdown_client(&b);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_PUSHES], 2);
    assert_int_equal(c[PST_STAT_PULLS], 1);
    assert_true(c[PST_STAT_PUSH_US] > 0 && c[PST_STAT_PULL_US] > 0);
    assert_true(c[PST_STAT_PUSH_US] + c[PST_STAT_PULL_US] < 150000);
}

typedef struct barrier_arg {
    pst_psclient_t *c;
    int rc;
    double left_at;
} barrier_arg_t;

static void *barrier_main(void *arg)
{
    barrier_arg_t *b = arg;
    b->rc = pst_psclient_barrier(b->c, NULL);
    b->left_at = pst_clock_seconds();
    return NULL;
}

static void barrier_waits_for_every_live_worker(void **state)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_BSP);
    server_run_t *srv = start_server(&cfg);
    barrier_arg_t first = {connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW), -1, 0};
    pst_psclient_t *second = connect_client(&srv, 1, 1, 1000, PST_CODEC_RAW);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, barrier_main, &first), 0);
    usleep(300 * 1000);
    double arrived = pst_clock_seconds();
    pst_err_t err = {0};
    ok(pst_psclient_barrier(second, &err), &err);
    pthread_join(th, NULL);
    assert_int_equal(first.rc, PST_OK);
    /* The first worker left only after the second arrived. */
    assert_true(first.left_at >= arrived);
    shutdown_client(&first.c);
    shutdown_client(&second);
    finish_server(srv, NULL);
}

/* ---- SSP ---- */

static void ssp_blocks_the_fast_worker_at_the_staleness_bound(void **state)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_SSP);
    cfg.staleness = 1;
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *fast = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_psclient_t *slow = connect_client(&srv, 1, 1, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int tf = pst_psclient_register_dense(fast, 0, 0, N, &err);
    int ts = pst_psclient_register_dense(slow, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(fast, tf, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(slow, ts, W0, NULL, &err), &err);

    /* The fast worker runs clocks 0 and 1 while the slow one has pushed nothing. */
    float w[N];
    pull_now(fast, tf, w, 0);
    push_now(fast, tf, G1, 0, 1.0f);
    pull_now(fast, tf, w, 1);
    /* Pushes apply at once, each scaled by 1/2. */
    for (int i = 0; i < N; i++)
        assert_true(w[i] == W0[i] - 0.5f * G1[i]);
    push_now(fast, tf, G1, 1, 1.0f);
    /* Clock 2 needs every worker to have pushed clock 0. */
    pst_ticket_t blocked;
    ok(pst_psclient_pull(fast, tf, w, 2, &blocked, &err), &err);
    assert_int_equal(pst_psclient_test(fast, blocked, 300, &err), PST_ETIMEOUT);
    float ws[N];
    pull_now(slow, ts, ws, 0);
    push_now(slow, ts, G2, 0, 1.0f);
    double pushed = pst_clock_seconds();
    ok(pst_psclient_wait(fast, blocked, &err), &err);
    assert_true(pst_clock_seconds() - pushed < 1.0);
    for (int i = 0; i < N; i++)
        assert_true(w[i] == W0[i] - 0.5f * G1[i] - 0.5f * G1[i] - 0.5f * G2[i]);
    /* Clock 3 waits for the slow worker's clock 1; clock 2 of the slow one is free. */
    push_now(fast, tf, G1, 2, 1.0f);
    ok(pst_psclient_pull(fast, tf, w, 3, &blocked, &err), &err);
    assert_int_equal(pst_psclient_test(fast, blocked, 200, &err), PST_ETIMEOUT);
    pull_now(slow, ts, ws, 1);
    push_now(slow, ts, G2, 1, 1.0f);
    ok(pst_psclient_wait(fast, blocked, &err), &err);
    shutdown_client(&fast);
    shutdown_client(&slow);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_UPDATES], 5);
}

/* ---- ASP ---- */

static void asp_never_waits(void **state)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_ASP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *a = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_psclient_t *b = connect_client(&srv, 1, 1, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int ta = pst_psclient_register_dense(a, 0, 0, N, &err);
    int tb = pst_psclient_register_dense(b, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(a, ta, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(b, tb, W0, NULL, &err), &err);
    float w[N];
    for (uint64_t clock = 0; clock < 6; clock++) {
        pull_now(a, ta, w, clock);
        push_now(a, ta, G1, clock, 0.5f);
    }
    pull_now(a, ta, w, 6);
    for (int i = 0; i < N; i++)
        assert_true(w[i] == W0[i] - 6 * (0.5f * (0.5f * G1[i])));
    shutdown_client(&a);
    shutdown_client(&b);
    finish_server(srv, NULL);
}

/* ---- sharding ---- */

static void two_servers_split_a_tensor(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    cfg.n_servers = 2;
    server_run_t *srv[2];
    for (uint32_t s = 0; s < 2; s++) {
        cfg.server_index = s;
        srv[s] = start_server(&cfg);
    }
    pst_psclient_t *c = connect_client(srv, 2, 0, 1000, PST_CODEC_LZ4);
    pst_err_t err = {0};
    enum { M = 7 };
    float w0[M] = {0, 1, 2, 3, 4, 5, 6}, g[M] = {1, 1, 1, 1, 2, 2, 2}, w[M];
    int t = pst_psclient_register_dense(c, 3, 1, M, &err);
    ok(pst_psclient_init_on_servers(c, t, w0, NULL, &err), &err);
    pull_now(c, t, w, 0);
    assert_memory_equal(w, w0, sizeof w);
    push_now(c, t, g, 0, 0.5f);
    pull_now(c, t, w, 1);
    for (int i = 0; i < M; i++)
        assert_true(w[i] == w0[i] - 0.5f * g[i]);
    /* 7 elements: server 0 holds [0, 4), server 1 [4, 7); each saw only its range. */
    uint64_t c0[PST_STAT_COUNT], c1[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, c0, &err), &err);
    ok(pst_psclient_server_stats(c, 1, c1, &err), &err);
    assert_int_equal(c0[PST_STAT_BYTES_RAW_IN], 2 * 4 * sizeof(float)); /* INIT + PUSH */
    assert_int_equal(c1[PST_STAT_BYTES_RAW_IN], 2 * 3 * sizeof(float));
    assert_int_equal(c0[PST_STAT_BYTES_RAW_OUT], 2 * 4 * sizeof(float)); /* two pulls */
    assert_int_equal(c1[PST_STAT_BYTES_RAW_OUT], 2 * 3 * sizeof(float));
    assert_int_equal(c0[PST_STAT_UPDATES], 1);
    assert_int_equal(c1[PST_STAT_UPDATES], 1);
    shutdown_client(&c);
    finish_server(srv[0], NULL);
    finish_server(srv[1], NULL);
}

/* A tensor smaller than the number of servers leaves a server with an empty range. */
static void tiny_tensor_on_three_servers(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    cfg.n_servers = 3;
    server_run_t *srv[3];
    for (uint32_t s = 0; s < 3; s++) {
        cfg.server_index = s;
        srv[s] = start_server(&cfg);
    }
    pst_psclient_t *c = connect_client(srv, 3, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    float w0[2] = {1, 2}, g[2] = {2, 4}, w[2];
    int t = pst_psclient_register_dense(c, 0, 0, 2, &err);
    ok(pst_psclient_init_on_servers(c, t, w0, NULL, &err), &err);
    push_now(c, t, g, 0, 0.25f);
    pull_now(c, t, w, 1);
    assert_true(w[0] == 0.5f && w[1] == 1.0f);
    shutdown_client(&c);
    for (int s = 0; s < 3; s++)
        finish_server(srv[s], NULL);
}

/* ---- sparse ---- */

static void sparse_push_pull_moves_only_the_given_keys(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    cfg.n_servers = 2;
    server_run_t *srv[2];
    for (uint32_t s = 0; s < 2; s++) {
        cfg.server_index = s;
        srv[s] = start_server(&cfg);
    }
    pst_psclient_t *c = connect_client(srv, 2, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    enum { W = 4 };
    int t = pst_psclient_register_sparse(c, 2, 0, W, 0.0f, 7, &err);
    ok(pst_psclient_init_on_servers(c, t, NULL, NULL, &err), &err);

    /* Keys chosen to land on both servers. */
    uint64_t keys[3] = {3, 10, 1000};
    assert_true(pst_wire_key_server(3, 2) != pst_wire_key_server(10, 2) ||
                pst_wire_key_server(3, 2) != pst_wire_key_server(1000, 2));
    float g[3 * W];
    for (int i = 0; i < 3 * W; i++)
        g[i] = (float)(i + 1);
    pst_psclient_stats_t before, after;
    pst_psclient_stats(c, &before);
    pst_ticket_t tk;
    ok(pst_psclient_push_sparse(c, t, keys, 3, g, 0, 0.5f, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    pst_psclient_stats(c, &after);
    /* Exactly three keys and three rows left this worker. */
    assert_int_equal(after.bytes_raw_sent - before.bytes_raw_sent,
                     3 * sizeof(uint64_t) + 3 * W * sizeof(float));

    uint64_t more[4] = {3, 10, 1000, 5555};
    float rows[4 * W];
    memset(rows, 0xff, sizeof rows);
    pst_psclient_stats(c, &before);
    ok(pst_psclient_pull_sparse(c, t, more, 4, rows, 1, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    pst_psclient_stats(c, &after);
    assert_int_equal(after.bytes_raw_sent - before.bytes_raw_sent, 4 * sizeof(uint64_t));
    assert_int_equal(after.bytes_raw_received - before.bytes_raw_received, 4 * W * sizeof(float));
    for (int i = 0; i < 3 * W; i++)
        assert_true(rows[i] == -0.5f * g[i]);
    for (int j = 0; j < W; j++)
        assert_true(rows[3 * W + j] == 0.0f); /* a fresh row */

    /* The servers together received the 3 keys and rows of the push and the 4 keys of the pull
     * (plus nothing else with a payload). */
    uint64_t c0[PST_STAT_COUNT], c1[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, c0, &err), &err);
    ok(pst_psclient_server_stats(c, 1, c1, &err), &err);
    assert_int_equal(c0[PST_STAT_BYTES_RAW_IN] + c1[PST_STAT_BYTES_RAW_IN],
                     3 * 8 + 3 * W * 4 + 4 * 8);

    /* Unsorted keys are refused before anything is sent. */
    uint64_t bad[2] = {9, 4};
    assert_int_equal(pst_psclient_push_sparse(c, t, bad, 2, g, 1, 0.5f, &tk, &err), PST_EINVAL);
    shutdown_client(&c);
    finish_server(srv[0], NULL);
    finish_server(srv[1], NULL);
}

/* ---- failures ---- */

static void dead_worker_stops_holding_back_bsp(void **state)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_BSP);
    cfg.heartbeat_timeout_ms = 600;
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *live = connect_client(&srv, 1, 0, 100, PST_CODEC_RAW);
    pst_psclient_t *doomed = connect_client(&srv, 1, 1, 0, PST_CODEC_RAW); /* no heartbeats */
    pst_err_t err = {0};
    int tl = pst_psclient_register_dense(live, 0, 0, N, &err);
    int td = pst_psclient_register_dense(doomed, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(live, tl, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(doomed, td, W0, NULL, &err), &err);
    double last_heard = pst_clock_seconds();

    /* The live worker pushes clock 0; the pull of clock 1 waits for the silent one... */
    float w[N];
    pull_now(live, tl, w, 0);
    push_now(live, tl, G1, 0, 0.5f);
    pst_ticket_t t;
    ok(pst_psclient_pull(live, tl, w, 1, &t, &err), &err);
    assert_int_equal(pst_psclient_test(live, t, 200, &err), PST_ETIMEOUT);
    /* ...until it is declared dead, 600 ms after it was last heard of. */
    ok(pst_psclient_wait(live, t, &err), &err);
    assert_true(pst_clock_seconds() - last_heard >= 0.55);
    for (int i = 0; i < N; i++)
        assert_true(w[i] == W0[i] - 0.5f * G1[i]); /* the one contribution, not halved */
    /* The live worker, idle for longer than the timeout, is kept alive by its heartbeats, and
     * with the dead worker gone clocks go on without waiting. */
    usleep(900 * 1000);
    push_now(live, tl, G1, 1, 0.5f);
    pull_now(live, tl, w, 2);
    assert_true(w[0] == W0[0] - G1[0]);
    shutdown_client(&live);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_DEAD_WORKERS], 1);
    assert_int_equal(c[PST_STAT_UPDATES], 2);
    pst_psclient_destroy(&doomed);
}

static void send_frames(void *sock, int n, const void *const *data, const size_t *len)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(sock, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

/* ---- key signatures ---- */

enum { KN = 1000, KW = 2 };

/* KN random keys with gaps in [128, 16384): two varint bytes each, which LZ4 cannot squeeze
 * much, so a keys frame costs well over KN bytes. */
static void spread_keys(uint64_t *keys, uint64_t seed)
{
    uint64_t x = seed, k = 0;
    for (int i = 0; i < KN; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        k += 128 + (x >> 33) % 16256;
        keys[i] = k;
    }
}

/* Pulls or pushes keys on server 0 of c and returns the wire and raw bytes this worker sent. */
static void sparse_round(pst_psclient_t *c, int t, const uint64_t *keys, const float *g, float *dst,
                         uint64_t clock, uint64_t *wire, uint64_t *raw)
{
    pst_psclient_stats_t before, after;
    pst_err_t err = {0};
    pst_ticket_t tk;
    pst_psclient_stats(c, &before);
    if (g != NULL)
        ok(pst_psclient_push_sparse(c, t, keys, KN, g, clock, 0.5f, &tk, &err), &err);
    else
        ok(pst_psclient_pull_sparse(c, t, keys, KN, dst, clock, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    pst_psclient_stats(c, &after);
    *wire = after.bytes_wire_sent - before.bytes_wire_sent;
    *raw = after.bytes_raw_sent - before.bytes_raw_sent;
}

static void push_after_pull_names_its_keys_by_signature(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_sparse(c, 3, 0, KW, 0.0f, 7, &err);
    ok(pst_psclient_init_on_servers(c, t, NULL, NULL, &err), &err);
    static uint64_t keys[KN], other[KN];
    static float g[KN * KW], rows[KN * KW];
    spread_keys(keys, 1);
    spread_keys(other, 2);
    for (int i = 0; i < KN * KW; i++)
        g[i] = (float)(i % 64) - 32.0f; /* exact in float32, and so is 0.5 * g */
    uint64_t pull_wire, pull_raw, push_wire, push_raw, wire, raw;

    /* Clock 0: the pull carries the full list, encoded: between 1 and 8 bytes a key. */
    sparse_round(c, t, keys, NULL, rows, 0, &pull_wire, &pull_raw);
    assert_int_equal(pull_raw, KN * 8);
    assert_true(pull_wire > KN && pull_wire < KN * 3);
    /* The push of the same batch names the list by signature: no keys frame, only the header
     * (well under 100 bytes) beside the rows; raw still counts the keys. */
    sparse_round(c, t, keys, g, NULL, 0, &push_wire, &push_raw);
    assert_int_equal(push_raw, KN * 8 + KN * KW * 4);
    assert_true(push_wire >= KN * KW * 4 && push_wire < KN * KW * 4 + 100);

    /* Clock 1: the same keys again, pulled by signature too; the values are those a full list
     * gives: one SGD step of lr 0.5 from zero rows. */
    memset(rows, 0xff, sizeof rows);
    sparse_round(c, t, keys, NULL, rows, 1, &wire, &raw);
    assert_true(wire < 100);
    for (int i = 0; i < KN * KW; i++)
        assert_true(rows[i] == -0.5f * g[i]);
    /* Another list travels in full, and the following push of it by signature. */
    sparse_round(c, t, other, NULL, rows, 1, &wire, &raw);
    assert_true(wire > KN);
    sparse_round(c, t, other, g, NULL, 1, &wire, &raw);
    assert_true(wire < KN * KW * 4 + 100);
    sparse_round(c, t, other, NULL, rows, 2, &wire, &raw);
    assert_true(wire < 100);
    /* Keys in both lists got one step each, the others one step or none. */
    for (int i = 0; i < KN * KW; i++)
        assert_true(rows[i] == -0.5f * g[i] + (other[i / KW] == keys[i / KW] ? -0.5f * g[i] : 0));

    /* The server counted the raw bytes this worker sent, keys named by signature included. */
    uint64_t counters[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, counters, &err), &err);
    pst_psclient_stats_t cs;
    pst_psclient_stats(c, &cs);
    assert_int_equal(counters[PST_STAT_ERRORS], 0);
    assert_int_equal(counters[PST_STAT_BYTES_RAW_IN], cs.bytes_raw_sent);
    shutdown_client(&c);
    finish_server(srv, NULL);
}

/* The weight of key a[i], coordinate w, after a push of g (SGD, lr 0.5) with each of lists[0..n):
 * every list holding the key stepped it by its own row of g. */
static float pushed_weight(uint64_t lists[][KN], int n, uint64_t key, const float *g, int w)
{
    float want = 0.0f;
    for (int l = 0; l < n; l++) {
        for (int j = 0; j < KN; j++) {
            if (lists[l][j] == key)
                want += -0.5f * g[j * KW + w];
        }
    }
    return want;
}

/* A worker prefetching sends the next batches' pulls (new lists) before the current batch's push:
 * the server remembers the last PST_WIRE_KEY_LISTS lists, so the push still names its keys by
 * signature, and so do pushes of every list after it; one list more replaces the oldest, which
 * travels in full again. */
static void the_last_lists_are_named_by_signature(void **state)
{
    enum { L = PST_WIRE_KEY_LISTS };
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_ASP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_sparse(c, 5, 0, KW, 0.0f, 7, &err);
    ok(pst_psclient_init_on_servers(c, t, NULL, NULL, &err), &err);
    static uint64_t lists[L + 1][KN];
    static float g[KN * KW], rows[KN * KW];
    for (int l = 0; l <= L; l++)
        spread_keys(lists[l], 3 + (uint64_t)l);
    for (int i = 0; i < KN * KW; i++)
        g[i] = (float)(i % 16) - 8.0f;
    uint64_t wire, raw;
    const uint64_t values = KN * KW * 4, header = 100;
    for (int l = 0; l < L; l++) { /* step 0's pull, then steps 1 .. L - 1's, prefetched */
        sparse_round(c, t, lists[l], NULL, rows, (uint64_t)l, &wire, &raw);
        assert_true(wire > KN);
    }
    for (int l = 0; l < L; l++) { /* each step's push: its list by signature */
        sparse_round(c, t, lists[l], g, NULL, (uint64_t)l, &wire, &raw);
        assert_true(wire >= values && wire < values + header);
    }
    sparse_round(c, t, lists[L], NULL, rows, L, &wire, &raw); /* replaces lists[0], the oldest */
    assert_true(wire > KN);
    sparse_round(c, t, lists[1], NULL, rows, L, &wire, &raw);
    assert_true(wire < header);
    sparse_round(c, t, lists[0], NULL, rows, L, &wire, &raw); /* in full again */
    assert_true(wire > KN);
    /* Every key of lists[0] got its push, and the push of every other list holding it too. */
    for (int i = 0; i < KN; i++) {
        for (int w = 0; w < KW; w++)
            assert_true(rows[i * KW + w] == pushed_weight(lists, L, lists[0][i], g, w));
    }
    uint64_t counters[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, counters, &err), &err);
    assert_int_equal(counters[PST_STAT_ERRORS], 0);
    shutdown_client(&c);
    finish_server(srv, NULL);
}

/* A signature the server does not hold for this worker is refused with an ERROR; the client then
 * sends the full list again and is served. */
static void unknown_key_signature_is_refused(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_ASP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_sparse(c, 4, 0, 1, 0.0f, 7, &err);
    ok(pst_psclient_init_on_servers(c, t, NULL, NULL, &err), &err);

    /* A signature never sent, from a raw socket speaking for worker 0. */
    void *ctx = zmq_ctx_new();
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(raw, srv->endpoint), 0);
    uint8_t buf[PST_WIRE_MAX_HEADER];
    float grad[2] = {1.0f, 2.0f};
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PUSH;
    h.model_id = 4;
    h.sparse = 1;
    h.row_width = 1;
    h.count = 2;
    h.seq = 9;
    h.raw_size = h.wire_size = sizeof grad;
    h.checksum = pst_checksum(grad, sizeof grad);
    h.flags = PST_WIRE_FLAG_KEYS_CACHED;
    h.key_signature = 0x1234;
    size_t len = pst__header__pack(&h, buf);
    send_frames(raw, 2, (const void *[]){buf, grad}, (size_t[]){len, sizeof grad});
    int n = zmq_recv(raw, buf, sizeof buf, 0);
    assert_true(n > 0);
    Pst__Header *reply = pst__header__unpack(NULL, (size_t)n, buf);
    assert_non_null(reply);
    assert_int_equal(reply->op, PST__OP__OP_ERROR);
    assert_int_equal(reply->seq, 9);
    assert_int_equal(-(int)reply->flags, PST_ENOTFOUND);
    assert_non_null(strstr(reply->error, "unknown key signature"));
    pst__header__free_unpacked(reply, NULL);

    /* The client's lists are replaced on the server behind its back (a second connection for the
     * same worker pulls as many other lists as the server remembers): its next request by
     * signature is refused... */
    uint64_t keys[3] = {5, 6, 70}, other[PST_WIRE_KEY_LISTS][2];
    float g[3] = {2.0f, 4.0f, 8.0f}, rows[3];
    pst_ticket_t tk;
    ok(pst_psclient_pull_sparse(c, t, keys, 3, rows, 0, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    pst_psclient_t *twin = connect_client(&srv, 1, 0, 0, PST_CODEC_RAW);
    int t2 = pst_psclient_register_sparse(twin, 4, 0, 1, 0.0f, 7, &err);
    for (int i = 0; i < PST_WIRE_KEY_LISTS; i++) {
        other[i][0] = 1 + (uint64_t)i;
        other[i][1] = 100 + (uint64_t)i;
        ok(pst_psclient_pull_sparse(twin, t2, other[i], 2, rows, 0, &tk, &err), &err);
        ok(pst_psclient_wait(twin, tk, &err), &err);
    }
    pst_psclient_destroy(&twin);
    ok(pst_psclient_push_sparse(c, t, keys, 3, g, 0, 1.0f, &tk, &err), &err);
    assert_int_equal(pst_psclient_wait(c, tk, &err), PST_ENOTFOUND);
    assert_non_null(strstr(err.msg, "unknown key signature"));
    /* ... and the retry sends the full list and is applied (ASP, one participant). */
    ok(pst_psclient_push_sparse(c, t, keys, 3, g, 0, 1.0f, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    ok(pst_psclient_pull_sparse(c, t, keys, 3, rows, 1, &tk, &err), &err);
    ok(pst_psclient_wait(c, tk, &err), &err);
    for (int i = 0; i < 3; i++)
        assert_true(rows[i] == -g[i]);
    uint64_t counters[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, counters, &err), &err);
    assert_int_equal(counters[PST_STAT_ERRORS], 2);
    assert_int_equal(counters[PST_STAT_PUSHES], 1);
    shutdown_client(&c);
    finish_server(srv, NULL);
    zmq_close(raw);
    zmq_ctx_term(ctx);
}

static void hostile_frames_are_dropped_and_counted(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    server_run_t *srv = start_server(&cfg);
    void *ctx = zmq_ctx_new();
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(raw, srv->endpoint), 0);

    /* 1: garbage where the header belongs. */
    uint8_t garbage[64];
    memset(garbage, 0xa5, sizeof garbage);
    send_frames(raw, 1, (const void *[]){garbage}, (size_t[]){sizeof garbage});
    /* 2: a push whose raw_size disagrees with its count. */
    uint8_t buf[PST_WIRE_MAX_HEADER];
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PUSH;
    h.count = 4;
    h.raw_size = 12;
    h.wire_size = 16;
    size_t len = pst__header__pack(&h, buf);
    send_frames(raw, 2, (const void *[]){buf, garbage}, (size_t[]){len, 16});
    /* 3: ten frames. */
    send_frames(raw, 10,
                (const void *[]){garbage, garbage, garbage, garbage, garbage, garbage, garbage,
                                 garbage, garbage, garbage},
                (size_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    /* 4: a huge declared payload with no payload. */
    h.count = 1ull << 40;
    h.raw_size = h.count * 4;
    len = pst__header__pack(&h, buf);
    send_frames(raw, 1, (const void *[]){buf}, (size_t[]){len});
    /* A well-formed message from a sender that is not a worker gets an ERROR reply. */
    Pst__Header stranger = PST__HEADER__INIT;
    stranger.op = PST__OP__OP_HEARTBEAT;
    stranger.sender = 77;
    stranger.seq = 5;
    len = pst__header__pack(&stranger, buf);
    send_frames(raw, 1, (const void *[]){buf}, (size_t[]){len});
    int n = zmq_recv(raw, buf, sizeof buf, 0);
    assert_true(n > 0);
    Pst__Header *reply = pst__header__unpack(NULL, (size_t)n, buf);
    assert_non_null(reply);
    assert_int_equal(reply->op, PST__OP__OP_ERROR);
    assert_int_equal(reply->seq, 5);
    assert_non_null(strstr(reply->error, "not a worker id"));
    pst__header__free_unpacked(reply, NULL);

    /* Service goes on for a real worker. */
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_dense(c, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(c, t, W0, NULL, &err), &err);
    push_now(c, t, G1, 0, 1.0f);
    float w[N];
    pull_now(c, t, w, 1);
    assert_true(w[1] == W0[1] - G1[1]);
    uint64_t counters[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(c, 0, counters, &err), &err);
    assert_int_equal(counters[PST_STAT_BAD_FRAMES], 4);
    assert_int_equal(counters[PST_STAT_ERRORS], 1);
    shutdown_client(&c);
    finish_server(srv, NULL);
    zmq_close(raw);
    zmq_ctx_term(ctx);
}

/* A checksum failure is answered with an error (the header was sound), never applied. */
static void corrupt_payload_is_refused(void **state)
{
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_ASP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_dense(c, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(c, t, W0, NULL, &err), &err);
    void *ctx = zmq_ctx_new();
    void *raw = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 3000, linger = 0;
    zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(raw, srv->endpoint), 0);
    Pst__Header h = PST__HEADER__INIT;
    h.op = PST__OP__OP_PUSH;
    h.count = N;
    h.raw_size = h.wire_size = sizeof G1;
    h.checksum = pst_checksum(G1, sizeof G1) + 1;
    h.lr = 1.0f;
    uint8_t buf[PST_WIRE_MAX_HEADER];
    size_t len = pst__header__pack(&h, buf);
    send_frames(raw, 2, (const void *[]){buf, G1}, (size_t[]){len, sizeof G1});
    int n = zmq_recv(raw, buf, sizeof buf, 0);
    Pst__Header *reply = pst__header__unpack(NULL, (size_t)n, buf);
    assert_non_null(reply);
    assert_int_equal(reply->op, PST__OP__OP_ERROR);
    assert_non_null(strstr(reply->error, "checksum"));
    pst__header__free_unpacked(reply, NULL);
    float w[N];
    pull_now(c, t, w, 0);
    assert_memory_equal(w, W0, sizeof w);
    shutdown_client(&c);
    uint64_t counters[PST_STAT_COUNT];
    finish_server(srv, counters);
    assert_int_equal(counters[PST_STAT_BAD_FRAMES], 1);
    assert_int_equal(counters[PST_STAT_UPDATES], 0);
    zmq_close(raw);
    zmq_ctx_term(ctx);
}

/* An unanswered request fails with the name of the silent server, it does not hang. */
static void silent_server_times_out_with_its_name(void **state)
{
    void *ctx = zmq_ctx_new();
    void *mute = zmq_socket(ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(mute, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_bind(mute, "tcp://127.0.0.1:*"), 0);
    server_run_t fake = {0};
    size_t len = sizeof fake.endpoint;
    zmq_getsockopt(mute, ZMQ_LAST_ENDPOINT, fake.endpoint, &len);
    const char *endpoints[1] = {fake.endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.timeout_ms = 300;
    cfg.heartbeat_ms = 0;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    assert_non_null(c);
    int t = pst_psclient_register_dense(c, 0, 0, N, &err);
    double start = pst_clock_seconds();
    assert_int_equal(pst_psclient_init_on_servers(c, t, W0, NULL, &err), PST_ETIMEOUT);
    assert_true(pst_clock_seconds() - start < 2.0);
    assert_non_null(strstr(err.msg, "server 0"));
    assert_non_null(strstr(err.msg, fake.endpoint));
    pst_psclient_destroy(&c);
    zmq_close(mute);
    zmq_ctx_term(ctx);
}

/* ---- checkpoints ---- */

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void checkpoint_and_resume(void **state)
{
    char dir[] = "/tmp/pst_server_ckpt_XXXXXX";
    assert_non_null(mkdtemp(dir));
    pst_server_cfg_t cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    pst_optim_cfg_defaults(&cfg.optim, PST_OPT_MOMENTUM);
    cfg.checkpoint_dir = dir;
    cfg.checkpoint_every = 2;
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int t = pst_psclient_register_dense(c, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(c, t, W0, NULL, &err), &err);
    float w[N], w4[N];
    for (uint64_t clock = 0; clock < 5; clock++) {
        pull_now(c, t, w, clock);
        push_now(c, t, G1, clock, 0.125f);
    }
    /* The checkpoint of clock 4 holds the weights a pull at clock 4 saw. */
    shutdown_client(&c);
    uint64_t counters[PST_STAT_COUNT];
    finish_server(srv, counters);
    assert_int_equal(counters[PST_STAT_CHECKPOINTS], 2); /* after clocks 2 and 4 */
    /* server-0-clock-2.ckpt, server-0-clock-4.ckpt and server-0.ckpt (clock 4's); no temporary */
    assert_int_equal(count_files(dir), 3);

    /* A second run resumes: the reference is a run without interruption up to clock 4. */
    pst_server_cfg_t ref_cfg = server_cfg(1, PST_CONSISTENCY_BSP);
    pst_optim_cfg_defaults(&ref_cfg.optim, PST_OPT_MOMENTUM);
    server_run_t *ref = start_server(&ref_cfg);
    pst_psclient_t *rcl = connect_client(&ref, 1, 0, 1000, PST_CODEC_RAW);
    int rt = pst_psclient_register_dense(rcl, 0, 0, N, &err);
    ok(pst_psclient_init_on_servers(rcl, rt, W0, NULL, &err), &err);
    for (uint64_t clock = 0; clock < 4; clock++)
        push_now(rcl, rt, G1, clock, 0.125f);
    pull_now(rcl, rt, w4, 4);

    srv = calloc(1, sizeof *srv);
    srv->srv = pst_server_new(&cfg, &err);
    uint64_t clock = 0;
    ok(pst_server_restore(srv->srv, &clock, &err), &err);
    assert_int_equal(clock, 4);
    ok(pst_server_bind(srv->srv, "tcp://127.0.0.1:*", srv->endpoint, sizeof srv->endpoint, &err),
       &err);
    assert_int_equal(pthread_create(&srv->thread, NULL, run_main, srv), 0);
    c = connect_client(&srv, 1, 0, 1000, PST_CODEC_RAW);
    t = pst_psclient_register_dense(c, 0, 0, N, &err);
    float ignored[N] = {0};
    uint64_t resume = 0;
    ok(pst_psclient_init_on_servers(c, t, ignored, &resume, &err), &err);
    assert_int_equal(resume, 4);
    pull_now(c, t, w, 4);
    assert_memory_equal(w, w4, sizeof w);
    /* Momentum state came back too: the next step matches the uninterrupted run's. */
    push_now(c, t, G2, 4, 0.125f);
    push_now(rcl, rt, G2, 4, 0.125f);
    pull_now(c, t, w, 5);
    pull_now(rcl, rt, w4, 5);
    assert_memory_equal(w, w4, sizeof w);
    ok(pst_psclient_checkpoint(c, &err), &err);
    shutdown_client(&c);
    shutdown_client(&rcl);
    finish_server(srv, NULL);
    finish_server(ref, NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/server-0.ckpt", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- dropping a model ---- */

/* Over two servers: a model dropped mid-clock fails the pull another worker has queued on it,
 * leaves the other model alone, and registered again starts afresh: new initial values, clock 0
 * and no optimizer state (momentum would otherwise carry the old velocity). */
static void drop_forgets_a_model_and_its_optimizer_state(void **state)
{
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_BSP);
    pst_optim_cfg_defaults(&cfg.optim, PST_OPT_MOMENTUM);
    cfg.optim.momentum = 0.5f;
    cfg.n_servers = 2;
    server_run_t *srv[2];
    for (uint32_t s = 0; s < 2; s++) {
        cfg.server_index = s;
        srv[s] = start_server(&cfg);
    }
    pst_psclient_t *a = connect_client(srv, 2, 0, 1000, PST_CODEC_RAW);
    pst_psclient_t *b = connect_client(srv, 2, 1, 1000, PST_CODEC_RAW);
    pst_err_t err = {0};
    int a1 = pst_psclient_register_dense(a, 1, 0, N, &err);
    int a2 = pst_psclient_register_dense(a, 2, 0, N, &err);
    int b1 = pst_psclient_register_dense(b, 1, 0, N, &err);
    int b2 = pst_psclient_register_dense(b, 2, 0, N, &err);
    ok(pst_psclient_init_on_servers(a, a1, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(a, a2, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(b, b1, W0, NULL, &err), &err);
    ok(pst_psclient_init_on_servers(b, b2, W0, NULL, &err), &err);
    float w[N];
    for (uint64_t clock = 0; clock < 2; clock++) { /* model 1 gathers momentum */
        push_now(a, a1, G1, clock, 0.5f);
        push_now(b, b1, G1, clock, 0.5f);
    }

    /* a pushed clock 2 and waits for clock 3 (b's push); b drops the model instead. */
    push_now(a, a1, G1, 2, 0.5f);
    pst_ticket_t queued;
    ok(pst_psclient_pull(a, a1, w, 3, &queued, &err), &err);
    assert_int_equal(pst_psclient_test(a, queued, 100, &err), PST_ETIMEOUT);
    uint64_t c[PST_STAT_COUNT];
    ok(pst_psclient_server_stats(b, 0, c, &err), &err);
    assert_int_equal(c[PST_STAT_TENSORS], 2);
    ok(pst_psclient_drop(b, 1, &err), &err);
    double dropped_at = pst_clock_seconds();
    assert_int_equal(pst_psclient_wait(a, queued, &err), PST_ESTATE);
    assert_true(pst_clock_seconds() - dropped_at < 1.0);
    assert_non_null(strstr(err.msg, "tensor 1/0 was dropped"));
    /* A request with a dropped handle is refused here; one naming the model still reaches the
     * servers, which no longer know it. */
    pst_ticket_t t;
    assert_int_equal(pst_psclient_pull(b, b1, w, 0, &t, &err), PST_EINVAL);
    assert_int_equal(pst_psclient_push(a, a1, G1, 3, 0.5f, &t, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(a, t, &err), PST_ENOTFOUND);
    for (uint32_t s = 0; s < 2; s++) {
        ok(pst_psclient_server_stats(b, s, c, &err), &err);
        assert_int_equal(c[PST_STAT_TENSORS], 1);
    }
    /* Dropping again, by the other worker, is no error; the other model goes on. */
    ok(pst_psclient_drop(a, 1, &err), &err);
    push_now(a, a2, G2, 0, 0.5f);
    push_now(b, b2, G2, 0, 0.5f);
    pull_now(a, a2, w, 1);
    for (int i = 0; i < N; i++)
        assert_true(w[i] == W0[i] - 0.5f * G2[i]);

    /* Registered again: the slots of the dropped handles are reused, the first INIT wins again,
     * and the first step has no velocity: w = init - lr g exactly. */
    float init[N] = {2.0f, 2.0f, -1.0f, 0.5f, 1.0f};
    int a1b = pst_psclient_register_dense(a, 1, 0, N, &err);
    int b1b = pst_psclient_register_dense(b, 1, 0, N, &err);
    assert_int_equal(a1b, a1);
    assert_int_equal(b1b, b1);
    uint64_t clock = 99;
    ok(pst_psclient_init_on_servers(a, a1b, init, &clock, &err), &err);
    assert_int_equal(clock, 0);
    ok(pst_psclient_init_on_servers(b, b1b, W0, &clock, &err), &err);
    pull_now(b, b1b, w, 0);
    assert_memory_equal(w, init, sizeof w);
    push_now(a, a1b, G1, 0, 0.5f);
    push_now(b, b1b, G2, 0, 0.5f);
    pull_now(b, b1b, w, 1);
    for (int i = 0; i < N; i++)
        assert_true(w[i] == init[i] - 0.5f * ((G1[i] + G2[i]) * 0.5f));
    /* Dropping a model with one of its own requests outstanding is refused. */
    ok(pst_psclient_pull(a, a1b, w, 1, &t, &err), &err);
    assert_int_equal(pst_psclient_drop(a, 1, &err), PST_ESTATE);
    ok(pst_psclient_wait(a, t, &err), &err);
    shutdown_client(&a);
    shutdown_client(&b);
    for (uint32_t s = 0; s < 2; s++) {
        finish_server(srv[s], c);
        assert_int_equal(c[PST_STAT_TENSORS], 2);
        assert_int_equal(c[PST_STAT_BAD_FRAMES], 0);
    }
}

/* ---- unacknowledged, coalesced requests ---- */

/* A worker whose pushes are not acknowledged and whose requests travel coalesced. */
static pst_psclient_t *connect_lean(server_run_t *srv, uint32_t id)
{
    const char *endpoints[1] = {srv->endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.worker_id = id;
    cfg.timeout_ms = 5000;
    cfg.push_acks = false;
    cfg.coalesce = true;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

/* Two lean BSP workers train exactly as acknowledged ones; a refused push fails the worker's next
 * wait with the server's text (once), a stale one is counted, and the server sends no ACK. */
static void unacknowledged_pushes_apply_and_report_refusals_later(void **state)
{
    (void)state;
    pst_server_cfg_t cfg = server_cfg(2, PST_CONSISTENCY_BSP);
    server_run_t *srv = start_server(&cfg);
    pst_psclient_t *a = connect_lean(srv, 0), *b = connect_lean(srv, 1);
    pst_err_t err = {0};
    int ta = pst_psclient_register_dense(a, 1, 0, N, &err);
    int tb = pst_psclient_register_dense(b, 1, 0, N, &err);
    uint64_t clock;
    ok(pst_psclient_init_on_servers(a, ta, W0, &clock, &err), &err);
    ok(pst_psclient_init_on_servers(b, tb, W0, &clock, &err), &err);
    /* a's push of clock 0 and its pull of clock 1 leave together; the pull waits for b. */
    pst_ticket_t push_a, pull_a;
    float wa[N], wb[N];
    ok(pst_psclient_push(a, ta, G1, 0, 0.5f, &push_a, &err), &err);
    ok(pst_psclient_pull(a, ta, wa, 1, &pull_a, &err), &err);
    assert_int_equal(pst_psclient_test(a, pull_a, 300, &err), PST_ETIMEOUT);
    ok(pst_psclient_wait(a, push_a, &err), &err); /* done once ZeroMQ let go of G1 */
    push_now(b, tb, G2, 0, 0.5f);
    ok(pst_psclient_wait(a, pull_a, &err), &err);
    pull_now(b, tb, wb, 1);
    for (int i = 0; i < N; i++) {
        float expect = W0[i] - 0.5f * ((G1[i] + G2[i]) * 0.5f);
        assert_true(wa[i] == expect);
        assert_true(wb[i] == expect);
    }
    /* A push from the future is refused: its own wait succeeds, the next one fails. */
    pst_ticket_t t;
    ok(pst_psclient_push(a, ta, G1, 7, 0.5f, &t, &err), &err);
    ok(pst_psclient_wait(a, t, &err), &err);
    ok(pst_psclient_pull(a, ta, wa, 1, &t, &err), &err);
    assert_int_equal(pst_psclient_wait(a, t, &err), PST_ESTATE);
    assert_non_null(strstr(err.msg, "clock 1 is open"));
    pull_now(a, ta, wa, 1); /* reported once */
    assert_true(wa[0] == W0[0] - 0.5f * ((G1[0] + G2[0]) * 0.5f));
    /* A late push for clock 0 is dropped and counted as stale. */
    push_now(b, tb, G2, 0, 0.5f);
    pull_now(b, tb, wb, 1);
    pst_psclient_stats_t st;
    pst_psclient_stats(b, &st);
    assert_int_equal(st.stale_pushes, 1);
    assert_int_equal(st.errors, 0);
    pst_psclient_stats(a, &st);
    assert_int_equal(st.errors, 1);
    shutdown_client(&a);
    shutdown_client(&b);
    uint64_t c[PST_STAT_COUNT];
    finish_server(srv, c);
    assert_int_equal(c[PST_STAT_UPDATES], 1);
    assert_int_equal(c[PST_STAT_PUSHES], 2);
    assert_int_equal(c[PST_STAT_STALE_PUSHES], 1);
    assert_int_equal(c[PST_STAT_ERRORS], 1);
    assert_int_equal(c[PST_STAT_BAD_FRAMES], 0);
    assert_int_equal(c[PST_STAT_PULLS], 5); /* a: 3 (one answered, its wait failed), b: 2 */
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bsp_applies_one_averaged_step_per_clock),
        cmocka_unit_test(bsp_refuses_a_second_push_for_the_open_clock),
        cmocka_unit_test(waits_and_server_time_are_counted),
        cmocka_unit_test(barrier_waits_for_every_live_worker),
        cmocka_unit_test(ssp_blocks_the_fast_worker_at_the_staleness_bound),
        cmocka_unit_test(asp_never_waits),
        cmocka_unit_test(two_servers_split_a_tensor),
        cmocka_unit_test(tiny_tensor_on_three_servers),
        cmocka_unit_test(sparse_push_pull_moves_only_the_given_keys),
        cmocka_unit_test(dead_worker_stops_holding_back_bsp),
        cmocka_unit_test(hostile_frames_are_dropped_and_counted),
        cmocka_unit_test(corrupt_payload_is_refused),
        cmocka_unit_test(push_after_pull_names_its_keys_by_signature),
        cmocka_unit_test(the_last_lists_are_named_by_signature),
        cmocka_unit_test(unknown_key_signature_is_refused),
        cmocka_unit_test(silent_server_times_out_with_its_name),
        cmocka_unit_test(checkpoint_and_resume),
        cmocka_unit_test(drop_forgets_a_model_and_its_optimizer_state),
        cmocka_unit_test(unacknowledged_pushes_apply_and_report_refusals_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
