/* Tests for the model contract (ps/contract) and its use by the parameter server: declared
 * tensors are admitted with their shapes only; an INIT of an unknown tensor, of a declared one
 * with another size or row width, or a second INIT with another shape is refused with a named
 * error, counted, and leaves the store and the weights as they were. The server runs live on
 * loopback in a thread; the clients are in the test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "ps/contract.h"
#include "ps/server.h"
#include "worker/psclient.h"

/* ---- the contract on its own ---- */

static void declared_shapes_are_admitted_others_refused(void **state)
{
    (void)state;
    pst_contract_t c;
    pst_contract_init(&c);
    pst_err_t err = {0};
    assert_int_equal(pst_contract_add_dense(&c, 0, 0, 100, &err), PST_OK);
    assert_int_equal(pst_contract_add_sparse(&c, 0, 1, 9, &err), PST_OK);
    assert_int_equal(pst_contract_add_dense(&c, PST_CONTRACT_ANY_MODEL, 2, 7, &err), PST_OK);
    assert_int_equal(pst_contract_admit(&c, 0, 0, false, 100, 0, &err), PST_OK);
    assert_int_equal(pst_contract_admit(&c, 0, 1, true, 0, 9, &err), PST_OK);
    /* an any-model entry admits every namespace, with its one shape */
    assert_int_equal(pst_contract_admit(&c, 5, 2, false, 7, 0, &err), PST_OK);
    assert_int_equal(pst_contract_admit(&c, 5, 2, false, 8, 0, &err), PST_EINVAL);
    assert_string_equal(err.msg,
                        "tensor 5/2: INIT of 8 elements; the job's model contract declares 7");
    assert_int_equal(pst_contract_admit(&c, 0, 0, false, 101, 0, &err), PST_EINVAL);
    assert_int_equal(pst_contract_admit(&c, 0, 1, true, 0, 10, &err), PST_EINVAL);
    assert_string_equal(err.msg, "tensor 0/1: INIT with rows of 10 floats; the job's model "
                                 "contract declares 9");
    assert_int_equal(pst_contract_admit(&c, 0, 1, false, 9, 0, &err), PST_EINVAL);
    assert_string_equal(err.msg, "tensor 0/1 is sparse in the job's model contract");
    assert_int_equal(pst_contract_admit(&c, 1, 0, false, 100, 0, &err), PST_EINVAL);
    assert_string_equal(err.msg, "tensor 1/0 is not in the job's model contract");
    /* declaring a tensor twice, or of no size, is a bug of the declarer */
    assert_int_equal(pst_contract_add_dense(&c, 0, 0, 100, &err), PST_EINVAL);
    assert_int_equal(pst_contract_add_dense(&c, 0, 3, 0, &err), PST_EINVAL);
    assert_int_equal(pst_contract_add_sparse(&c, 0, 3, 0, &err), PST_EINVAL);
    assert_int_equal(c.n, 3);
    pst_contract_t d;
    pst_contract_init(&d);
    assert_int_equal(pst_contract_copy(&d, &c, &err), PST_OK);
    assert_true(pst_contract_equal(&c, &d));
    assert_int_equal(pst_contract_add_dense(&d, 0, 4, 1, &err), PST_OK);
    assert_false(pst_contract_equal(&c, &d));
    pst_contract_fini(&d);
    pst_contract_fini(&c);
}

static void a_contract_holds_a_bounded_number_of_tensors(void **state)
{
    (void)state;
    pst_contract_t c;
    pst_contract_init(&c);
    pst_err_t err = {0};
    for (uint32_t t = 0; t < PST_CONTRACT_MAX_TENSORS; t++)
        assert_int_equal(pst_contract_add_dense(&c, 0, t, 1, &err), PST_OK);
    assert_int_equal(pst_contract_add_dense(&c, 0, PST_CONTRACT_MAX_TENSORS, 1, &err), PST_ERANGE);
    pst_contract_fini(&c);
}

/* ---- the server with a contract ---- */

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

enum { N = 4, WIDTH = 3, BIG = 1 << 20 };
static const float W0[N] = {1.0f, -2.0f, 0.5f, 4.0f};

/* A BSP server for two workers whose contract declares dense 1/0 of N floats and sparse 1/1 with
 * rows of WIDTH, running in a thread. */
static server_run_t *start_server(void)
{
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    cfg.n_workers = 2;
    server_run_t *r = calloc(1, sizeof *r);
    pst_err_t err = {0};
    r->srv = pst_server_new(&cfg, &err);
    if (r->srv == NULL)
        fail_msg("server: %s", err.msg);
    pst_contract_t c;
    pst_contract_init(&c);
    assert_int_equal(pst_contract_add_dense(&c, 1, 0, N, &err), PST_OK);
    assert_int_equal(pst_contract_add_sparse(&c, 1, 1, WIDTH, &err), PST_OK);
    assert_int_equal(pst_server_set_contract(r->srv, &c, &err), PST_OK);
    pst_contract_fini(&c); /* the server keeps its own copy */
    assert_int_equal(
        pst_server_bind(r->srv, "tcp://127.0.0.1:*", r->endpoint, sizeof r->endpoint, &err),
        PST_OK);
    assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
    return r;
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

static pst_psclient_t *connect_client(const server_run_t *r, uint32_t id)
{
    const char *endpoints[1] = {r->endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.worker_id = id;
    cfg.heartbeat_ms = 0;
    cfg.timeout_ms = 5000;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fail_msg("client: %s", err.msg);
    return c;
}

/* INIT of dense tensor model/tensor with n floats (zeros past W0); the result of the round trip. */
static int init_dense(pst_psclient_t *c, uint32_t model, uint32_t tensor, uint64_t n,
                      pst_err_t *err)
{
    int t = pst_psclient_register_dense(c, model, tensor, n, err);
    if (t < 0)
        return t;
    float *values = calloc(n, sizeof *values);
    memcpy(values, W0, (n < N ? n : N) * sizeof *values);
    uint64_t clock = 0;
    int rc = pst_psclient_init_on_servers(c, t, values, &clock, err);
    free(values);
    return rc;
}

static int init_sparse(pst_psclient_t *c, uint32_t model, uint32_t tensor, uint32_t width,
                       pst_err_t *err)
{
    int t = pst_psclient_register_sparse(c, model, tensor, width, 0.0f, 1, err);
    if (t < 0)
        return t;
    uint64_t clock = 0;
    return pst_psclient_init_on_servers(c, t, NULL, &clock, err);
}

static void server_stats(pst_psclient_t *c, uint64_t counters[PST_STAT_COUNT])
{
    pst_err_t err = {0};
    assert_int_equal(pst_psclient_server_stats(c, 0, counters, &err), PST_OK);
}

static void init_outside_the_contract_is_refused(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_psclient_t *a = connect_client(r, 0), *b = connect_client(r, 1);
    pst_err_t err = {0};
    assert_int_equal(init_dense(a, 1, 0, N, &err), PST_OK);
    assert_int_equal(init_sparse(a, 1, 1, WIDTH, &err), PST_OK);
    uint64_t before[PST_STAT_COUNT], after[PST_STAT_COUNT];
    server_stats(a, before);
    assert_int_equal(before[PST_STAT_TENSORS], 2);
    assert_int_equal(before[PST_STAT_CONTRACT], 0);

    /* another namespace, another tensor id, a million floats: all refused, by name */
    assert_int_equal(init_dense(b, 2, 0, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 2/0 is not in the job's model contract"));
    assert_int_equal(init_dense(b, 1, 7, BIG, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 1/7 is not in the job's model contract"));
    /* the declared dense tensor with another size (its second INIT, and as if first) */
    assert_int_equal(init_dense(b, 1, 0, BIG, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 1/0: INIT of 1048576 elements; the job's model "
                                    "contract declares 4"));
    /* the declared sparse tensor with wider rows, or as dense */
    assert_int_equal(init_sparse(b, 1, 1, WIDTH + 1, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "rows of 4 floats; the job's model contract declares 3"));
    assert_int_equal(init_dense(b, 1, 1, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 1/1 is sparse in the job's model contract"));

    server_stats(a, after);
    assert_int_equal(after[PST_STAT_CONTRACT], 5);
    assert_int_equal(after[PST_STAT_TENSORS], 2);
    assert_int_equal(after[PST_STAT_STORE_BYTES], before[PST_STAT_STORE_BYTES]);
    /* the weights are those of the first INIT */
    int t = pst_psclient_register_dense(a, 1, 0, N, &err);
    float got[N];
    pst_ticket_t ticket;
    assert_int_equal(pst_psclient_pull(a, t, got, 0, &ticket, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(a, ticket, &err), PST_OK);
    assert_memory_equal(got, W0, sizeof got);
    /* the declared shapes are still admitted for the second worker */
    assert_int_equal(init_dense(b, 1, 0, N, &err), PST_OK);
    assert_int_equal(init_sparse(b, 1, 1, WIDTH, &err), PST_OK);
    pst_psclient_destroy(&a);
    pst_psclient_destroy(&b);
    uint64_t c[PST_STAT_COUNT];
    stop_server(r, c);
    assert_int_equal(c[PST_STAT_CONTRACT], 5);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(declared_shapes_are_admitted_others_refused),
        cmocka_unit_test(a_contract_holds_a_bounded_number_of_tensors),
        cmocka_unit_test(init_outside_the_contract_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
