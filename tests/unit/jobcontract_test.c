/* Tests for app/mpi/jobcontract under mpirun (3 ranks: one server, two workers): the server gets
 * the contract the workers agree on; none when no worker declares one; a worker declaring another
 * contract, or none beside one, is named; a worker whose preparation failed is passed over (the
 * hello exchange ends such a job); wide_deep's contract keeps its rows' key bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "app/mpi/jobcontract.h"
#include "app/mpi/mpijob.h"

#define HANG_SECONDS 60

static pst_mpijob_t job;
static pst_ranks_t ranks;

static int arm_alarm(void **state)
{
    (void)state;
    alarm(HANG_SECONDS);
    return 0;
}

static int disarm_alarm(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* Worker w's declaration: dense 0/0 of size floats (0: declares none). */
static int share(uint64_t size, bool failed, pst_contract_t *agreed, bool *has, pst_err_t *err)
{
    pst_contract_t mine;
    pst_contract_init(&mine);
    if (size > 0)
        assert_int_equal(pst_contract_add_dense(&mine, 0, 0, size, NULL), PST_OK);
    int rc = pst_jobcontract_share(&ranks, failed, size > 0 ? &mine : NULL, agreed, has, err);
    pst_contract_fini(&mine);
    return rc;
}

/* Runs one sharing in which worker 0 declares sizes[0] and worker 1 sizes[1]; on the server,
 * returns its result with *agreed and *has. */
static int round_of(const uint64_t sizes[2], bool w1_failed, pst_contract_t *agreed, bool *has,
                    pst_err_t *err)
{
    if (ranks.worker < 0)
        return share(0, false, agreed, has, err);
    int rc = share(sizes[ranks.worker], ranks.worker == 1 && w1_failed, NULL, NULL, err);
    assert_int_equal(rc, PST_OK); /* a worker learns nothing here */
    return PST_OK;
}

static void agreed_contracts_reach_the_server(void **state)
{
    (void)state;
    pst_contract_t agreed;
    pst_contract_init(&agreed);
    bool has = false;
    pst_err_t err = {0};
    int rc = round_of((const uint64_t[]){131, 131}, false, &agreed, &has, &err);
    if (ranks.worker < 0) {
        assert_int_equal(rc, PST_OK);
        assert_true(has);
        assert_int_equal(agreed.n, 1);
        assert_int_equal(agreed.tensors[0].total, 131);
    }
    rc = round_of((const uint64_t[]){0, 0}, false, &agreed, &has, &err);
    if (ranks.worker < 0) {
        assert_int_equal(rc, PST_OK);
        assert_false(has);
    }
    pst_contract_fini(&agreed);
}

static void a_worker_declaring_otherwise_is_named(void **state)
{
    (void)state;
    pst_contract_t agreed;
    pst_contract_init(&agreed);
    bool has = false;
    pst_err_t err = {0};
    int rc = round_of((const uint64_t[]){131, 132}, false, &agreed, &has, &err);
    if (ranks.worker < 0) {
        assert_int_equal(rc, PST_EINVAL);
        assert_non_null(strstr(err.msg, "worker 1 declares another model contract than worker 0"));
    }
    rc = round_of((const uint64_t[]){131, 0}, false, &agreed, &has, &err);
    if (ranks.worker < 0) {
        assert_int_equal(rc, PST_EINVAL);
        assert_string_equal(err.msg, "worker 1 declares no model contract; worker 0 does");
    }
    /* a worker that failed is passed over: worker 0's contract stands */
    rc = round_of((const uint64_t[]){131, 999}, true, &agreed, &has, &err);
    if (ranks.worker < 0) {
        assert_int_equal(rc, PST_OK);
        assert_true(has);
        assert_int_equal(agreed.tensors[0].total, 131);
    }
    pst_contract_fini(&agreed);
}

/* wide_deep's rows and deep stack reach the server, the rows' key bound with them. */
static void a_wide_deep_contract_keeps_its_key_bound(void **state)
{
    (void)state;
    pst_contract_t mine, agreed;
    pst_contract_init(&mine);
    pst_contract_init(&agreed);
    pst_wide_deep_spec_t hashed = {.dim = 8, .n_fields = 12, .field_shift = 16};
    pst_wide_deep_spec_t ids = {.dim = 4, .n_fields = 4, .field_shift = 0};
    pst_err_t err = {0};
    for (int round = 0; round < 2; round++) {
        pst_contract_fini(&mine);
        if (ranks.worker >= 0)
            assert_int_equal(
                pst_jobcontract_wide_deep(round == 0 ? &hashed : &ids, 1000, &mine, &err), PST_OK);
        bool has = false;
        int rc = pst_jobcontract_share(&ranks, false, ranks.worker >= 0 ? &mine : NULL, &agreed,
                                       &has, &err);
        assert_int_equal(rc, PST_OK);
        if (ranks.worker >= 0)
            continue;
        assert_true(has);
        assert_int_equal(agreed.n, 2);
        const pst_contract_tensor_t *rows = &agreed.tensors[0], *deep = &agreed.tensors[1];
        assert_int_equal(rows->tensor_id, 0);
        assert_int_equal(rows->sparse, 1);
        assert_int_equal(rows->row_width, round == 0 ? 9 : 5);
        /* hashed fields: field << 16 | bucket below 12 << 16; LIBSVM ids: no bound */
        assert_int_equal(rows->total, round == 0 ? UINT64_C(12) << 16 : 0);
        assert_int_equal(deep->tensor_id, 1);
        assert_int_equal(deep->sparse, 0);
        assert_int_equal(deep->total, 1000);
    }
    pst_contract_fini(&mine);
    pst_contract_fini(&agreed);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    pst_err_t err = {0};
    if (pst_mpijob_begin(&job, &err) != PST_OK)
        return 1;
    memset(&ranks, 0, sizeof ranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks.size);
    ranks.n_servers = 1;
    ranks.n_workers = ranks.size - 1;
    ranks.worker = ranks.rank - 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(agreed_contracts_reach_the_server, arm_alarm, disarm_alarm),
        cmocka_unit_test_setup_teardown(a_worker_declaring_otherwise_is_named, arm_alarm,
                                        disarm_alarm),
        cmocka_unit_test_setup_teardown(a_wide_deep_contract_keeps_its_key_bound, arm_alarm,
                                        disarm_alarm),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return pst_mpijob_end(&job, failed ? 1 : 0);
}
