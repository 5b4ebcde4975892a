/* Tests for app/plan/plancontract under mpirun (3 ranks: one server, a group of two workers): the
 * group's leader declares a task's namespace over MPI and every member learns the outcome; the
 * server's refusal (a namespace declared twice, more namespaces than the plan runs at once) comes
 * back to every member with the server's reason; the server counts what it accepted and refused
 * and keeps the namespaces it accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/mpi/mpijob.h"
#include "app/plan/plancontract.h"
#include "common/log.h"

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

/* Namespace model: dense tensor 0 of n floats. */
static int declare(pst_plancontract_t *pc, MPI_Comm group, bool leader, uint32_t model, uint64_t n,
                   pst_err_t *err)
{
    pst_contract_t ns;
    pst_contract_init(&ns);
    assert_int_equal(pst_contract_add_dense(&ns, model, 0, n, NULL), PST_OK);
    int rc = pst_plancontract_declare(pc, group, leader, model, &ns, err);
    pst_contract_fini(&ns);
    return rc;
}

static void a_leader_declares_for_its_group(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_server_t *srv = NULL;
    if (ranks.worker < 0) {
        pst_server_cfg_t cfg;
        pst_server_cfg_defaults(&cfg);
        cfg.n_workers = 2;
        srv = pst_server_new(&cfg, &err);
        assert_non_null(srv);
    }
    pst_plancontract_t pc;
    assert_int_equal(pst_plancontract_begin(&pc, &ranks, srv, 1, &err), PST_OK);
    MPI_Request end;
    if (ranks.worker < 0) {
        /* the server's main thread handles declarations until the group is done */
        MPI_Ibarrier(MPI_COMM_WORLD, &end);
        pst_plancontract_wait(&pc, &end);
        assert_int_equal(pc.n_declared, 1);
        assert_int_equal(pc.n_refused, 2);
        assert_int_equal(pst_server_namespaces_live(srv), 1);
        pst_server_destroy(&srv);
        return;
    }
    bool leader = ranks.worker == 0;
    assert_int_equal(declare(&pc, ranks.role, leader, 1, 131, &err), PST_OK);
    /* both members hear the server's refusals, with its reason */
    assert_int_equal(declare(&pc, ranks.role, leader, 1, 131, &err), PST_EINVAL);
    assert_string_equal(err.msg, "namespace 1 refused: server 0: namespace 1 is declared already");
    memset(&err, 0, sizeof err);
    assert_int_equal(declare(&pc, ranks.role, leader, 2, 7, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "namespace 2 refused: server 0: namespace 2: 1 namespaces are "
                                    "declared, the most the plan runs at once"));
    MPI_Ibarrier(MPI_COMM_WORLD, &end);
    pst_plancontract_wait(&pc, &end);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    pst_log_set_level(PST_LOG_ERROR);
    pst_err_t err = {0};
    if (pst_mpijob_begin(&job, &err) != PST_OK)
        return 1;
    memset(&ranks, 0, sizeof ranks);
    MPI_Comm_rank(MPI_COMM_WORLD, &ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks.size);
    ranks.n_servers = 1;
    ranks.n_workers = ranks.size - 1;
    ranks.worker = ranks.rank - 1;
    MPI_Comm_split(MPI_COMM_WORLD, ranks.worker >= 0, ranks.rank, &ranks.role);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_leader_declares_for_its_group, arm_alarm, disarm_alarm),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Comm_free(&ranks.role);
    return pst_mpijob_end(&job, failed ? 1 : 0);
}
