/* Tests for the parameter server's defences: CURVE admits only the job's worker keys (a stranger
 * gets no answer), a worker cannot speak under another worker's id, non-finite pushes are refused
 * with the weights unchanged, and the store quota refuses an INIT past it. Live over TCP loopback:
 * the server in a thread, clients in the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/fed/fedkeys.h"
#include "common/log.h"
#include "ps/server.h"
#include "worker/psclient.h"

typedef struct server_run {
    pst_server_t *srv;
    pthread_t thread;
    int rc;
    char endpoint[256];
} server_run_t;

/* The job's keys: the server's pair and one pair per worker. */
typedef struct job_keys {
    pst_fedkey_pair_t server, workers[2];
    pst_fedkey_list_t allowed;
} job_keys_t;

static void *run_main(void *arg)
{
    server_run_t *r = arg;
    r->rc = pst_server_run(r->srv, NULL);
    return NULL;
}

static void make_keys(job_keys_t *k)
{
    memset(k, 0, sizeof *k);
    assert_int_equal(pst_fedkey_generate(&k->server, NULL), PST_OK);
    for (int w = 0; w < 2; w++) {
        char id[4];
        snprintf(id, sizeof id, "%d", w);
        assert_int_equal(pst_fedkey_generate(&k->workers[w], NULL), PST_OK);
        assert_int_equal(pst_fedkey_list_add(&k->allowed, k->workers[w].public_key, id, NULL),
                         PST_OK);
    }
}

/* The server of cfg (two workers), bound to loopback and running in a thread. */
static server_run_t *start_cfg(const pst_server_cfg_t *cfg)
{
    server_run_t *r = calloc(1, sizeof *r);
    pst_err_t err = {0};
    r->srv = pst_server_new(cfg, &err);
    if (r->srv == NULL)
        fail_msg("server: %s", err.msg);
    assert_int_equal(
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err),
        PST_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
    return r;
}

/* A BSP server for two workers (CURVE with keys when keys is not NULL), running in a thread. */
static server_run_t *start_server(const job_keys_t *keys, uint64_t max_store_bytes)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = 2;
    cfg.max_store_bytes = max_store_bytes;
    cfg.curve_key = keys ? &keys->server : NULL;
    cfg.worker_keys = keys ? &keys->allowed : NULL;
    return start_cfg(&cfg);
}

static void stop_server(server_run_t *r, uint64_t counters[PST_STAT_COUNT])
{
    pst_server_stop(r->srv);
    assert_int_equal(pthread_join(r->thread, NULL), 0);
    assert_int_equal(r->rc, PST_OK);
    pst_server_stats(r->srv, counters);
    pst_server_destroy(&r->srv);
    free(r);
}

/* A client as worker id: with key pair key trusting server_public, or with token (both NULL:
 * plain TCP). */
static pst_psclient_t *connect_as(const server_run_t *r, uint32_t id, const pst_fedkey_pair_t *key,
                                  const char *server_public, const char *token, int timeout_ms)
{
    const char *endpoints[1] = {r->endpoint};
    const char *server_keys[1] = {server_public};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.worker_id = id;
    cfg.heartbeat_ms = 0;
    cfg.timeout_ms = timeout_ms;
    cfg.curve_key = key;
    cfg.server_keys = key ? server_keys : NULL;
    cfg.token = token;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

static pst_psclient_t *connect_client(const server_run_t *r, uint32_t id,
                                      const pst_fedkey_pair_t *key, const char *server_public,
                                      int timeout_ms)
{
    return connect_as(r, id, key, server_public, NULL, timeout_ms);
}

enum { N = 4 };
static const float W0[N] = {1.0f, -2.0f, 0.5f, 4.0f};

/* Registers dense tensor 1/0 of N floats and sends its INIT; returns the handle, or the error. */
static int register_and_init(pst_psclient_t *c, pst_err_t *err)
{
    int t = pst_psclient_register_dense(c, 1, 0, N, err);
    if (t < 0)
        return t;
    uint64_t clock = 0;
    int rc = pst_psclient_init_on_servers(c, t, W0, &clock, err);
    return rc == PST_OK ? t : rc;
}

static int pull_now(pst_psclient_t *c, int tensor, float *dst, pst_err_t *err)
{
    pst_ticket_t t;
    int rc = pst_psclient_pull(c, tensor, dst, 0, &t, err);
    return rc == PST_OK ? pst_psclient_wait(c, t, err) : rc;
}

static int push_now(pst_psclient_t *c, int tensor, const float *g, pst_err_t *err)
{
    pst_ticket_t t;
    int rc = pst_psclient_push(c, tensor, g, 0, 1.0f, &t, err);
    return rc == PST_OK ? pst_psclient_wait(c, t, err) : rc;
}

/* ---- CURVE ---- */

static void workers_with_their_keys_are_served(void **state)
{
    (void)state;
    job_keys_t k;
    make_keys(&k);
    server_run_t *r = start_server(&k, 0);
    pst_psclient_t *a = connect_client(r, 0, &k.workers[0], k.server.public_key, 5000);
    pst_err_t err = {0};
    int t = register_and_init(a, &err);
    if (t < 0)
        fail_msg("%s", err.msg);
    float got[N];
    assert_int_equal(pull_now(a, t, got, &err), PST_OK);
    assert_memory_equal(got, W0, sizeof got);
    pst_psclient_destroy(&a);
    uint64_t c[PST_STAT_COUNT];
    stop_server(r, c);
    assert_int_equal(c[PST_STAT_SPOOFED], 0);
    pst_fedkey_list_fini(&k.allowed);
}

/* Requests from a client the server does not admit are never answered: each times out. */
static void expect_no_answer(pst_psclient_t *s);

/* ---- tokens (cluster.security=token) ---- */

/* A server admitting the two workers' secret keys as their tokens over PLAIN. */
static server_run_t *start_token_server(const pst_fedkey_pair_t workers[2],
                                        pst_fedkey_list_t *tokens)
{
    memset(tokens, 0, sizeof *tokens);
    for (int w = 0; w < 2; w++)
        assert_int_equal(pst_fedkey_list_add(tokens, workers[w].secret_key, w ? "1" : "0", NULL),
                         PST_OK);
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = 2;
    cfg.worker_keys = tokens;
    cfg.plain_tokens = true;
    return start_cfg(&cfg);
}

static pst_psclient_t *connect_token_client(const server_run_t *r, uint32_t id, const char *token,
                                            int timeout_ms)
{
    return connect_as(r, id, NULL, NULL, token, timeout_ms);
}

/* Each worker is served under its own token; no token, a made-up token, or worker 1's token
 * presented as worker 0 gets no answer. */
static void tokens_admit_only_their_workers(void **state)
{
    (void)state;
    job_keys_t k;
    make_keys(&k);
    pst_fedkey_list_t tokens;
    server_run_t *r = start_token_server(k.workers, &tokens);
    pst_psclient_t *none = connect_client(r, 0, NULL, NULL, 800);
    expect_no_answer(none);
    pst_psclient_destroy(&none);
    pst_fedkey_pair_t own;
    assert_int_equal(pst_fedkey_generate(&own, NULL), PST_OK);
    pst_psclient_t *guess = connect_token_client(r, 0, own.secret_key, 800);
    expect_no_answer(guess);
    pst_psclient_destroy(&guess);
    pst_psclient_t *swapped = connect_token_client(r, 0, k.workers[1].secret_key, 800);
    expect_no_answer(swapped);
    pst_psclient_destroy(&swapped);
    pst_psclient_t *a = connect_token_client(r, 0, k.workers[0].secret_key, 5000);
    pst_err_t err = {0};
    uint64_t c[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(a, 0, c, &err), PST_OK);
    assert_int_equal(c[PST_STAT_TENSORS], 0); /* none of the strangers' INITs landed */
    int t = register_and_init(a, &err);
    if (t < 0)
        fail_msg("%s", err.msg);
    float got[N];
    assert_int_equal(pull_now(a, t, got, &err), PST_OK);
    assert_memory_equal(got, W0, sizeof got);
    pst_psclient_t *b = connect_token_client(r, 1, k.workers[1].secret_key, 5000);
    assert_int_equal(pst_psclient_server_stats(b, 0, c, &err), PST_OK);
    pst_psclient_destroy(&b);
    pst_psclient_destroy(&a);
    stop_server(r, c);
    assert_int_equal(c[PST_STAT_SPOOFED], 0);
    pst_fedkey_list_fini(&tokens);
    pst_fedkey_list_fini(&k.allowed);
}

static void expect_no_answer(pst_psclient_t *s)
{
    pst_err_t err = {0};
    uint64_t counters[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(s, 0, counters, &err), PST_ETIMEOUT);
    int t = pst_psclient_register_dense(s, 1, 0, N, &err);
    assert_true(t >= 0);
    uint64_t clock = 0;
    assert_int_equal(pst_psclient_init_on_servers(s, t, W0, &clock, &err), PST_ETIMEOUT);
}

static void strangers_get_no_answer(void **state)
{
    (void)state;
    job_keys_t k;
    make_keys(&k);
    server_run_t *r = start_server(&k, 0);
    /* No CURVE at all. */
    pst_psclient_t *plain = connect_client(r, 0, NULL, NULL, 800);
    expect_no_answer(plain);
    pst_psclient_destroy(&plain);
    /* CURVE with the server's public key, but a key pair the job did not make. */
    pst_fedkey_pair_t own;
    assert_int_equal(pst_fedkey_generate(&own, NULL), PST_OK);
    pst_psclient_t *keyed = connect_client(r, 0, &own, k.server.public_key, 800);
    expect_no_answer(keyed);
    pst_psclient_destroy(&keyed);
    /* The job's real worker is still served, and saw none of the stranger's INITs. */
    pst_psclient_t *a = connect_client(r, 0, &k.workers[0], k.server.public_key, 5000);
    pst_err_t err = {0};
    uint64_t c[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(a, 0, c, &err), PST_OK);
    assert_int_equal(c[PST_STAT_TENSORS], 0);
    pst_psclient_destroy(&a);
    stop_server(r, c);
    pst_fedkey_list_fini(&k.allowed);
}

static void a_worker_cannot_speak_as_another(void **state)
{
    (void)state;
    job_keys_t k;
    make_keys(&k);
    server_run_t *r = start_server(&k, 0);
    /* Worker 1's key, claiming to be worker 0. */
    pst_psclient_t *liar = connect_client(r, 0, &k.workers[1], k.server.public_key, 5000);
    pst_err_t err = {0};
    int rc = register_and_init(liar, &err);
    assert_int_equal(rc, PST_EPROTO);
    assert_non_null(strstr(err.msg, "a request as worker 0 from worker 1"));
    assert_int_equal(pst_psclient_shutdown(liar, &err), PST_EPROTO);
    pst_psclient_destroy(&liar);
    /* Worker 0 is still expected: its own requests go through. */
    pst_psclient_t *a = connect_client(r, 0, &k.workers[0], k.server.public_key, 5000);
    uint64_t c[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(a, 0, c, &err), PST_OK);
    assert_int_equal(c[PST_STAT_SPOOFED], 2);
    assert_int_equal(c[PST_STAT_TENSORS], 0);
    pst_psclient_destroy(&a);
    stop_server(r, c);
    pst_fedkey_list_fini(&k.allowed);
}

/* ---- values and sizes ---- */

static void nonfinite_push_is_refused_with_weights_unchanged(void **state)
{
    (void)state;
    server_run_t *r = start_server(NULL, 0);
    pst_psclient_t *a = connect_client(r, 0, NULL, NULL, 5000);
    pst_psclient_t *b = connect_client(r, 1, NULL, NULL, 5000);
    pst_err_t err = {0};
    int ta = register_and_init(a, &err), tb = register_and_init(b, &err);
    assert_true(ta >= 0 && tb >= 0);
    const float bad[2][N] = {{1.0f, NAN, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, -INFINITY}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(push_now(a, ta, bad[i], &err), PST_ENUMERIC);
        assert_non_null(strstr(err.msg, "refused"));
    }
    /* The BSP clock did not move: both workers' finite pushes make its one step. */
    const float g[N] = {1.0f, 1.0f, 1.0f, 1.0f};
    assert_int_equal(push_now(a, ta, g, &err), PST_OK);
    float got[N];
    assert_int_equal(pull_now(b, tb, got, &err), PST_OK);
    assert_memory_equal(got, W0, sizeof got);
    assert_int_equal(push_now(b, tb, g, &err), PST_OK);
    pst_ticket_t t;
    assert_int_equal(pst_psclient_pull(b, tb, got, 1, &t, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(b, t, &err), PST_OK);
    for (int i = 0; i < N; i++)
        assert_true(got[i] == W0[i] - 1.0f); /* SGD, lr 1, mean gradient 1 */
    uint64_t c[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(a, 0, c, &err), PST_OK);
    assert_int_equal(c[PST_STAT_NONFINITE], 2);
    pst_psclient_destroy(&a);
    pst_psclient_destroy(&b);
    stop_server(r, c);
}

static void init_past_the_store_limit_is_refused(void **state)
{
    (void)state;
    server_run_t *r = start_server(NULL, 1u << 20);
    pst_psclient_t *a = connect_client(r, 0, NULL, NULL, 5000);
    pst_err_t err = {0};
    /* 70000 floats take 1.07 MiB at 16 bytes a value: past the limit. */
    enum { BIG = 70000 };
    float *big = calloc(BIG, sizeof *big);
    int t = pst_psclient_register_dense(a, 2, 0, BIG, &err);
    assert_true(t >= 0);
    uint64_t clock = 0;
    assert_int_equal(pst_psclient_init_on_servers(a, t, big, &clock, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "cluster.server_memory"));
    free(big);
    /* A small tensor still fits. */
    assert_true(register_and_init(a, &err) >= 0);
    uint64_t c[PST_STAT_COUNT];
    assert_int_equal(pst_psclient_server_stats(a, 0, c, &err), PST_OK);
    assert_int_equal(c[PST_STAT_TENSORS], 1);
    assert_true(c[PST_STAT_STORE_BYTES] <= (1u << 20));
    pst_psclient_destroy(&a);
    stop_server(r, c);
}

/* A pull far past the slice's clock is refused at once instead of waiting forever, and a worker
 * can keep at most PST_SERVER_MAX_QUEUED_PULLS pulls waiting. */
static void pulls_far_ahead_and_queues_are_bounded(void **state)
{
    (void)state;
    server_run_t *r = start_server(NULL, 0);
    pst_psclient_t *a = connect_client(r, 0, NULL, NULL, 5000);
    pst_err_t err = {0};
    int t = register_and_init(a, &err);
    assert_true(t >= 0);
    float got[N];
    pst_ticket_t ticket;
    assert_int_equal(pst_psclient_pull(a, t, got, 1000, &ticket, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(a, ticket, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "for clock 1000; the slice is at clock 0"));
    /* Clock 1 waits for the BSP step of clock 0 (worker 1 never pushes): 16 wait, the 17th is
     * refused. */
    pst_ticket_t waiting[16];
    for (int i = 0; i < 16; i++)
        assert_int_equal(pst_psclient_pull(a, t, got, 1, &waiting[i], &err), PST_OK);
    assert_int_equal(pst_psclient_pull(a, t, got, 1, &ticket, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(a, ticket, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "16 pulls of tensor 1/0 waiting already"));
    for (int i = 0; i < 16; i++)
        assert_int_equal(pst_psclient_test(a, waiting[i], 0, &err), PST_ETIMEOUT);
    pst_psclient_destroy(&a);
    uint64_t c[PST_STAT_COUNT];
    stop_server(r, c);
    assert_int_equal(c[PST_STAT_ERRORS], 2);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(workers_with_their_keys_are_served),
        cmocka_unit_test(strangers_get_no_answer),
        cmocka_unit_test(tokens_admit_only_their_workers),
        cmocka_unit_test(a_worker_cannot_speak_as_another),
        cmocka_unit_test(nonfinite_push_is_refused_with_weights_unchanged),
        cmocka_unit_test(init_past_the_store_limit_is_refused),
        cmocka_unit_test(pulls_far_ahead_and_queues_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
