/* Tests for app/mpi/mpijob under mpirun (3 ranks): agreements when all succeed, when one or
 * several ranks fail, which failure wins, over sub-communicators, and the final join. The tests
 * run under an alarm, so a rank left waiting in a collective fails the run instead of hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "app/mpi/mpijob.h"

#define HANG_SECONDS 60

static pst_mpijob_t job;

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

static void begin_reads_the_world(void **state)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    assert_true(job.begun);
    assert_true(job.owns_mpi);
    assert_int_equal(job.rank, rank);
    assert_int_equal(job.size, size);
    assert_true(job.size >= 3);
    assert_true(job.thread_level >= MPI_THREAD_FUNNELED);
}

static void all_succeed(void **state)
{
    int winner = 7;
    assert_int_equal(pst_mpijob_agree(MPI_COMM_WORLD, PST_OK), PST_OK);
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, PST_OK, 3, &winner), PST_OK);
    assert_int_equal(winner, -1);
    pst_err_t err = {0};
    snprintf(err.msg, sizeof err.msg, "untouched");
    assert_int_equal(pst_mpijob_agree_err(MPI_COMM_WORLD, PST_OK, 1, &err), PST_OK);
    assert_string_equal(err.msg, "untouched");
}

/* Each rank in turn fails alone: every rank learns the failure, its code, rank and message. */
static void one_rank_fails_every_rank_sees_it(void **state)
{
    for (int bad = 0; bad < job.size; bad++) {
        int rc = job.rank == bad ? PST_EIO : PST_OK, winner = -1;
        assert_int_equal(pst_mpijob_agree(MPI_COMM_WORLD, rc), PST_EIO);
        assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, 1, &winner), PST_EIO);
        assert_int_equal(winner, bad);
        pst_err_t err = {0};
        if (rc != PST_OK)
            pst_err_set(&err, rc, "rank %d could not read its file", job.rank);
        assert_int_equal(pst_mpijob_agree_err(MPI_COMM_WORLD, rc, 1, &err), PST_EIO);
        char want[64];
        snprintf(want, sizeof want, "rank %d could not read its file", bad);
        assert_string_equal(err.msg, want);
        assert_int_equal(err.code, PST_EIO);
    }
}

/* Several failures of one weight: the lowest failing rank's code wins, whatever the codes. */
static void several_fail_the_lowest_rank_wins(void **state)
{
    int codes[] = {PST_OK, PST_EFORMAT, PST_EPROTO, PST_ETIMEOUT};
    int rc = job.rank < 4 ? codes[job.rank] : PST_ENOMEM, winner = -1;
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, 1, &winner), PST_EFORMAT);
    assert_int_equal(winner, 1);
    /* Every rank failed: rank 0's failure wins although its code is the smallest in size. */
    rc = job.rank == 0 ? PST_ENOMEM : PST_ENUMERIC;
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, 1, &winner), PST_ENOMEM);
    assert_int_equal(winner, 0);
}

/* A heavier failure outranks lighter ones on lower ranks; equal heavy ones go to the lowest. */
static void the_heaviest_failure_wins(void **state)
{
    enum { FOLLOWS = 1, DIVERGED = 2, OWN = 3 };
    int last = job.size - 1, winner = -1;
    int rc = job.rank == 0 ? PST_ENUMERIC : job.rank == last ? PST_ETIMEOUT : PST_ESTATE;
    int weight = job.rank == 0 ? DIVERGED : job.rank == last ? OWN : FOLLOWS;
    pst_err_t err = {0};
    pst_err_set(&err, rc, "rank %d, weight %d", job.rank, weight);
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, weight, &winner), PST_ETIMEOUT);
    assert_int_equal(winner, last);
    assert_int_equal(pst_mpijob_agree_err(MPI_COMM_WORLD, rc, weight, &err), PST_ETIMEOUT);
    char want[64];
    snprintf(want, sizeof want, "rank %d, weight %d", last, OWN);
    assert_string_equal(err.msg, want);
    /* A divergence outranks the failures that follow from it. */
    rc = job.rank == last ? PST_ENUMERIC : job.rank == 0 ? PST_OK : PST_ENOTFOUND;
    weight = job.rank == last ? DIVERGED : FOLLOWS;
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, weight, &winner), PST_ENUMERIC);
    assert_int_equal(winner, last);
    /* Equal heavy failures: the lowest of their ranks. */
    rc = job.rank == 0 ? PST_ENOTFOUND : job.rank == 1 ? PST_EIO : PST_EINVAL;
    weight = job.rank == 0 ? FOLLOWS : OWN;
    assert_int_equal(pst_mpijob_agree_ranked(MPI_COMM_WORLD, rc, weight, &winner), PST_EIO);
    assert_int_equal(winner, 1);
}

/* An agreement over a role's communicator involves that role's ranks only. */
static void a_sub_communicator_agrees_alone(void **state)
{
    MPI_Comm half;
    int color = job.rank % 2, sub_rank, winner = -1;
    MPI_Comm_split(MPI_COMM_WORLD, color, job.rank, &half);
    MPI_Comm_rank(half, &sub_rank);
    /* World rank 1 (rank 0 of the odd ranks) fails; the even ranks all succeed. */
    int rc = job.rank == 1 ? PST_EINVAL : PST_OK;
    int agreed = pst_mpijob_agree_ranked(half, rc, 1, &winner);
    assert_int_equal(agreed, color == 1 ? PST_EINVAL : PST_OK);
    assert_int_equal(winner, color == 1 ? 0 : -1);
    MPI_Comm_free(&half);
}

/* Many agreements in a row, the failing rank moving around: every rank leaves every one. */
static void no_rank_is_left_waiting(void **state)
{
    for (int round = 0; round < 500; round++) {
        int bad = round % (job.size + 1); /* == size: nobody fails */
        int rc = job.rank == bad ? PST_ETIMEOUT : PST_OK;
        int want = bad < job.size ? PST_ETIMEOUT : PST_OK;
        pst_err_t err = {0};
        assert_int_equal(pst_mpijob_agree_err(MPI_COMM_WORLD, rc, 1 + round % 3, &err), want);
        assert_int_equal(pst_mpijob_agree(MPI_COMM_WORLD, rc), want);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void end_without_begin_only_returns(void **state)
{
    pst_mpijob_t never = {0};
    assert_int_equal(pst_mpijob_end(&never, 3), 3);
}

/* A job begun while MPI runs uses it, joins at its end, and leaves MPI running. */
static void a_nested_job_leaves_mpi_running(void **state)
{
    pst_mpijob_t inner;
    assert_int_equal(pst_mpijob_begin(&inner, NULL), PST_OK);
    assert_false(inner.owns_mpi);
    assert_int_equal(inner.rank, job.rank);
    assert_int_equal(pst_mpijob_end(&inner, job.rank == 1 ? 2 : 0), 2);
    assert_int_equal(pst_mpijob_end(&inner, 5), 5); /* ended already: no join */
    int finalized = 1;
    MPI_Finalized(&finalized);
    assert_false(finalized);
}

int main(void)
{
    if (pst_mpijob_begin(&job, NULL) != PST_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(begin_reads_the_world),
        cmocka_unit_test(all_succeed),
        cmocka_unit_test(one_rank_fails_every_rank_sees_it),
        cmocka_unit_test(several_fail_the_lowest_rank_wins),
        cmocka_unit_test(the_heaviest_failure_wins),
        cmocka_unit_test(a_sub_communicator_agrees_alone),
        cmocka_unit_test(no_rank_is_left_waiting),
        cmocka_unit_test(end_without_begin_only_returns),
        cmocka_unit_test(a_nested_job_leaves_mpi_running),
    };
    int failures = cmocka_run_group_tests(tests, arm_alarm, disarm_alarm);
    /* The final join: the last rank's failure status reaches every rank, which then ends. */
    alarm(HANG_SECONDS);
    int worst = pst_mpijob_end(&job, job.rank == job.size - 1 ? 1 : 0);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (worst != 1 || !finalized || job.begun)
        fprintf(stderr, "rank %d: final join gave %d, finalized %d\n", job.rank, worst, finalized);
    return failures || worst != 1 || !finalized || job.begun;
}
