/* Tests for namespaces declared while a server runs (ps/server_namespaces, the contract of plans):
 * before its declaration a namespace takes no INIT; once declared, INIT inside its tensors and
 * shapes is accepted and anything else refused by name and counted; a namespace is declared once,
 * at most max_live at a time, with its own tensors only; its DROP frees the declaration, and the
 * next task may declare it again with other shapes; a sparse tensor's key bound keeps rows of other
 * keys from being created. The server runs live on loopback in a thread
 * and the declarations come from the test thread, as they do from a rank's main thread. */
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

enum { N = 5, WIDTH = 3, BIG = 1 << 20, MAX_LIVE = 2 };

/* ---- the contract's namespaces ---- */

static void a_namespace_is_found_and_removed_whole(void **state)
{
    (void)state;
    pst_contract_t c;
    pst_contract_init(&c);
    pst_err_t err = {0};
    assert_int_equal(pst_contract_add_dense(&c, 1, 0, 10, &err), PST_OK);
    assert_int_equal(pst_contract_add_dense(&c, 2, 0, 20, &err), PST_OK);
    assert_int_equal(pst_contract_add_sparse(&c, 1, 1, 4, &err), PST_OK);
    assert_int_equal(pst_contract_add_dense(&c, PST_CONTRACT_ANY_MODEL, 3, 1, &err), PST_OK);
    assert_true(pst_contract_has_model(&c, 1));
    assert_false(pst_contract_has_model(&c, 3)); /* any-model entries are no namespace's own */
    assert_int_equal(pst_contract_remove_model(&c, 1), 2);
    assert_int_equal(pst_contract_remove_model(&c, 1), 0);
    assert_false(pst_contract_has_model(&c, 1));
    assert_int_equal(c.n, 2);
    assert_int_equal(c.tensors[0].model_id, 2);
    assert_int_equal(c.tensors[0].total, 20);
    assert_int_equal(c.tensors[1].model_id, PST_CONTRACT_ANY_MODEL);
    pst_contract_fini(&c);
}

/* ---- a server of a plan ---- */

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

/* A server for two workers expecting at most MAX_LIVE namespaces, running in a thread. */
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
    assert_int_equal(pst_server_expect_namespaces(r->srv, MAX_LIVE, &err), PST_OK);
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

/* INIT of dense model/tensor with n floats 0, 1, 2, ...; the round trip's result. */
static int init_dense(pst_psclient_t *c, uint32_t model, uint32_t tensor, uint64_t n,
                      pst_err_t *err)
{
    int t = pst_psclient_register_dense(c, model, tensor, n, err);
    if (t < 0)
        return t;
    float *values = calloc(n, sizeof *values);
    for (uint64_t i = 0; i < n && i < 16; i++)
        values[i] = (float)i;
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

/* Namespace model: dense tensor 0 of n floats and sparse tensor 1 with rows of WIDTH. */
static int declare(pst_server_t *srv, uint32_t model, uint64_t n, pst_err_t *err)
{
    pst_contract_t ns;
    pst_contract_init(&ns);
    assert_int_equal(pst_contract_add_dense(&ns, model, 0, n, err), PST_OK);
    assert_int_equal(pst_contract_add_sparse(&ns, model, 1, WIDTH, err), PST_OK);
    int rc = pst_server_declare_namespace(srv, model, &ns, err);
    pst_contract_fini(&ns);
    return rc;
}

static void an_undeclared_namespace_takes_no_init(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_psclient_t *a = connect_client(r, 0);
    pst_err_t err = {0};
    assert_int_equal(init_dense(a, 1, 0, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 1/0: namespace 1 is not declared (0 of at most 2 "
                                    "namespaces are)"));
    assert_int_equal(init_sparse(a, 0, 0, WIDTH, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 0/0: namespace 0 is not declared"));
    uint64_t c[PST_STAT_COUNT];
    server_stats(a, c);
    assert_int_equal(c[PST_STAT_CONTRACT], 2);
    assert_int_equal(c[PST_STAT_TENSORS], 0);
    assert_int_equal(c[PST_STAT_STORE_BYTES], 0);
    pst_psclient_destroy(&a);
    stop_server(r, c);
}

static void a_declared_namespace_admits_its_shapes_only(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_psclient_t *a = connect_client(r, 0), *b = connect_client(r, 1);
    pst_err_t err = {0};
    assert_int_equal(declare(r->srv, 3, N, &err), PST_OK);
    assert_int_equal(pst_server_namespaces_live(r->srv), 1);
    assert_int_equal(init_dense(a, 3, 0, N, &err), PST_OK);
    assert_int_equal(init_sparse(a, 3, 1, WIDTH, &err), PST_OK);
    uint64_t before[PST_STAT_COUNT], after[PST_STAT_COUNT];
    server_stats(a, before);
    assert_int_equal(before[PST_STAT_TENSORS], 2);
    assert_int_equal(before[PST_STAT_CONTRACT], 0);

    /* another size, another tensor of the namespace, wider rows, sparse as dense: all refused */
    assert_int_equal(init_dense(b, 3, 0, BIG, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "namespace 3: tensor 3/0: INIT of 1048576 elements; the "
                                    "job's model contract declares 5"));
    assert_int_equal(init_dense(b, 3, 2, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 3/2 is not in the job's model contract"));
    assert_int_equal(init_sparse(b, 3, 1, WIDTH + 1, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "rows of 4 floats; the job's model contract declares 3"));
    assert_int_equal(init_dense(b, 3, 1, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "tensor 3/1 is sparse in the job's model contract"));
    /* a namespace beside it stays closed */
    assert_int_equal(init_dense(b, 4, 0, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "namespace 4 is not declared (1 of at most 2"));

    server_stats(a, after);
    assert_int_equal(after[PST_STAT_CONTRACT], 5);
    assert_int_equal(after[PST_STAT_TENSORS], 2);
    assert_int_equal(after[PST_STAT_STORE_BYTES], before[PST_STAT_STORE_BYTES]);
    /* the second worker's INIT within the declaration is admitted, the weights the first's */
    assert_int_equal(init_dense(b, 3, 0, N, &err), PST_OK);
    int t = pst_psclient_register_dense(b, 3, 0, N, &err);
    float got[N], want[N] = {0, 1, 2, 3, 4};
    pst_ticket_t ticket;
    assert_int_equal(pst_psclient_pull(b, t, got, 0, &ticket, &err), PST_OK);
    assert_int_equal(pst_psclient_wait(b, ticket, &err), PST_OK);
    assert_memory_equal(got, want, sizeof got);
    pst_psclient_destroy(&a);
    pst_psclient_destroy(&b);
    uint64_t c[PST_STAT_COUNT];
    stop_server(r, c);
    assert_int_equal(c[PST_STAT_CONTRACT], 5);
}

static void declarations_are_bounded_and_checked(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_err_t err = {0};
    assert_int_equal(declare(r->srv, 1, N, &err), PST_OK);
    assert_int_equal(declare(r->srv, 1, N, &err), PST_EINVAL);
    assert_string_equal(err.msg, "namespace 1 is declared already");
    assert_int_equal(declare(r->srv, 2, 2 * N, &err), PST_OK);
    assert_int_equal(declare(r->srv, 3, N, &err), PST_ERANGE);
    assert_string_equal(err.msg,
                        "namespace 3: 2 namespaces are declared, the most the plan runs at once");
    assert_int_equal(pst_server_namespaces_live(r->srv), 2);
    /* a declaration naming another namespace's tensor, or none, is refused whole */
    pst_contract_t ns;
    pst_contract_init(&ns);
    assert_int_equal(pst_server_declare_namespace(r->srv, 7, &ns, &err), PST_EINVAL);
    assert_string_equal(err.msg, "namespace 7: declared without tensors");
    assert_int_equal(pst_contract_add_dense(&ns, 2, 5, 1, &err), PST_OK);
    assert_int_equal(pst_server_declare_namespace(r->srv, 7, &ns, &err), PST_EINVAL);
    assert_string_equal(err.msg, "namespace 7: declares tensor 2/5 of another");
    pst_contract_fini(&ns);
    /* a fixed contract cannot be set beside declared namespaces, nor namespaces expected twice */
    pst_contract_t fixed;
    pst_contract_init(&fixed);
    assert_int_equal(pst_contract_add_dense(&fixed, 0, 0, 1, &err), PST_OK);
    assert_int_equal(pst_server_set_contract(r->srv, &fixed, &err), PST_ESTATE);
    assert_int_equal(pst_server_expect_namespaces(r->srv, 4, &err), PST_ESTATE);
    pst_contract_fini(&fixed);
    uint64_t c[PST_STAT_COUNT];
    stop_server(r, c);
    /* a server with a fixed contract takes no declaration */
    pst_server_cfg_t cfg;
    pst_server_cfg_defaults(&cfg);
    pst_server_t *plain = pst_server_new(&cfg, &err);
    assert_non_null(plain);
    assert_int_equal(declare(plain, 1, N, &err), PST_ESTATE);
    pst_server_destroy(&plain);
}

static void a_dropped_namespace_frees_its_declaration(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_psclient_t *a = connect_client(r, 0);
    pst_err_t err = {0};
    assert_int_equal(declare(r->srv, 1, N, &err), PST_OK);
    assert_int_equal(declare(r->srv, 2, N, &err), PST_OK);
    assert_int_equal(init_dense(a, 1, 0, N, &err), PST_OK);
    assert_int_equal(pst_psclient_drop(a, 1, &err), PST_OK);
    assert_int_equal(pst_server_namespaces_live(r->srv), 1);
    /* gone: its INIT is refused again, and a dropped namespace dropped again changes nothing */
    assert_int_equal(init_dense(a, 1, 0, N, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "namespace 1 is not declared (1 of at most 2"));
    assert_int_equal(pst_psclient_drop(a, 1, &err), PST_OK);
    assert_int_equal(pst_server_namespaces_live(r->srv), 1);
    /* the freed place takes the next task, which may declare the id again with another shape */
    assert_int_equal(declare(r->srv, 1, 2 * N, &err), PST_OK);
    assert_int_equal(init_dense(a, 1, 0, N, &err), PST_EINVAL);
    assert_int_equal(init_dense(a, 1, 0, 2 * N, &err), PST_OK);
    /* the other namespace was never touched */
    assert_int_equal(init_dense(a, 2, 0, N, &err), PST_OK);
    uint64_t c[PST_STAT_COUNT];
    server_stats(a, c);
    assert_int_equal(c[PST_STAT_TENSORS], 2);
    assert_int_equal(c[PST_STAT_CONTRACT], 2);
    pst_psclient_destroy(&a);
    stop_server(r, c);
}

/* Pulls rows of keys[0..n) of sparse model/1 (rows of WIDTH); the round trip's result. */
static int pull_rows(pst_psclient_t *c, uint32_t model, const uint64_t *keys, size_t n,
                     pst_err_t *err)
{
    int t = pst_psclient_register_sparse(c, model, 1, WIDTH, 0.0f, 1, err);
    if (t < 0)
        return t;
    float rows[4 * WIDTH];
    pst_ticket_t ticket;
    int rc = pst_psclient_pull_sparse(c, t, keys, n, rows, 0, &ticket, err);
    return rc == PST_OK ? pst_psclient_wait(c, ticket, err) : rc;
}

static void a_sparse_key_outside_its_bound_creates_no_row(void **state)
{
    (void)state;
    server_run_t *r = start_server();
    pst_psclient_t *a = connect_client(r, 0);
    pst_err_t err = {0};
    pst_contract_t ns;
    pst_contract_init(&ns);
    assert_int_equal(pst_contract_add_sparse_keys(&ns, 6, 1, WIDTH, 100, &err), PST_OK);
    assert_int_equal(pst_contract_add_sparse_keys(&ns, 6, 2, WIDTH, 0, &err), PST_EINVAL);
    assert_int_equal(pst_server_declare_namespace(r->srv, 6, &ns, &err), PST_OK);
    pst_contract_fini(&ns);
    assert_int_equal(init_sparse(a, 6, 1, WIDTH, &err), PST_OK);
    uint64_t c[PST_STAT_COUNT];
    server_stats(a, c);
    uint64_t store = c[PST_STAT_STORE_BYTES];
    const uint64_t inside[2] = {5, 99}, outside[2] = {5, 100}, far[1] = {UINT64_C(1) << 40};
    assert_int_equal(pull_rows(a, 6, inside, 2, &err), PST_OK);
    server_stats(a, c);
    uint64_t two_rows = c[PST_STAT_STORE_BYTES] - store;
    assert_true(two_rows >= 2 * WIDTH * sizeof(float));
    assert_int_equal(pull_rows(a, 6, outside, 2, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "tensor 6/1: key 100 is outside the job's model contract "
                                    "(keys below 100)"));
    assert_int_equal(pull_rows(a, 6, far, 1, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "key 1099511627776 is outside"));
    server_stats(a, c);
    assert_int_equal(c[PST_STAT_CONTRACT], 2);
    /* neither refused pull created a row, not even the in-bound key 5 beside key 100 */
    assert_int_equal(c[PST_STAT_STORE_BYTES] - store, two_rows);
    pst_psclient_destroy(&a);
    stop_server(r, c);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_namespace_is_found_and_removed_whole),
        cmocka_unit_test(an_undeclared_namespace_takes_no_init),
        cmocka_unit_test(a_declared_namespace_admits_its_shapes_only),
        cmocka_unit_test(declarations_are_bounded_and_checked),
        cmocka_unit_test(a_dropped_namespace_frees_its_declaration),
        cmocka_unit_test(a_sparse_key_outside_its_bound_creates_no_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
