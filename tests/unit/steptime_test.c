/* Tests for app/mpi/steptime: a worker's figures as differences of its link counters, the
 * per-step means of comm.step, and comm.server's time per request and per worker step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "app/mpi/steptime.h"
#include "common/log.h"

static double number(const cJSON *obj, const char *section, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, section), name);
    assert_non_null(v);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Only what happened between the two snapshots counts: set-up traffic before the first step is
 * left out. */
static void worker_figures_are_differences(void **state)
{
    (void)state;
    pst_psclient_stats_t from = {.bytes_wire_sent = 1000,
                                 .bytes_wire_received = 500,
                                 .pull_wait_ms = 2.5,
                                 .push_wait_ms = 1.0};
    pst_psclient_stats_t to = {.bytes_wire_sent = 9000,
                               .bytes_wire_received = 20500,
                               .pull_wait_ms = 10.5,
                               .push_wait_ms = 5.0};
    double v[PST_STEPTIME_N];
    pst_steptime_worker(&from, &to, 4, 0.25, v);
    assert_true(v[PST_STEPTIME_STEPS] == 4);
    assert_true(v[PST_STEPTIME_SECONDS] == 0.25);
    assert_true(v[PST_STEPTIME_PULL_WAIT_MS] == 8.0);
    assert_true(v[PST_STEPTIME_PUSH_WAIT_MS] == 4.0);
    assert_true(v[PST_STEPTIME_BYTES_SENT] == 8000);
    assert_true(v[PST_STEPTIME_BYTES_RECEIVED] == 20000);
}

/* Sums over two workers of 4 steps each: 8 steps, 0.5 s in all, so 62.5 ms a step, of which
 * 2 ms pull wait and 1 ms push wait: 59.5 ms of compute. */
static void step_means_split_waits_from_compute(void **state)
{
    (void)state;
    double sum[PST_STEPTIME_N] = {0};
    sum[PST_STEPTIME_STEPS] = 8;
    sum[PST_STEPTIME_SECONDS] = 0.5;
    sum[PST_STEPTIME_PULL_WAIT_MS] = 16;
    sum[PST_STEPTIME_PUSH_WAIT_MS] = 8;
    sum[PST_STEPTIME_BYTES_SENT] = 8 * 1024;
    sum[PST_STEPTIME_BYTES_RECEIVED] = 8 * 4096;
    cJSON *comm = cJSON_CreateObject();
    pst_steptime_json(comm, sum);
    assert_true(number(comm, "step", "steps") == 8);
    assert_true(number(comm, "step", "step_ms") == 62.5);
    assert_true(number(comm, "step", "pull_wait_ms") == 2.0);
    assert_true(number(comm, "step", "push_wait_ms") == 1.0);
    assert_true(number(comm, "step", "compute_ms") == 59.5);
    assert_true(number(comm, "step", "bytes_sent") == 1024);
    assert_true(number(comm, "step", "bytes_received") == 4096);
    cJSON_Delete(comm);
}

/* Without steps there is no per-step figure: NaN (null in JSON), never a division by zero. */
static void no_steps_gives_no_figures(void **state)
{
    (void)state;
    double sum[PST_STEPTIME_N] = {0};
    cJSON *comm = cJSON_CreateObject();
    pst_steptime_json(comm, sum);
    assert_true(isnan(number(comm, "step", "step_ms")));
    assert_true(isnan(number(comm, "step", "compute_ms")));
    cJSON_Delete(comm);
}

/* 10 pushes in 2,500 us and 20 pulls in 1,000 us over 5 worker steps: 250 us a push, 50 us a
 * pull and 0.7 ms of server time per step; bytes are the servers' wire counters. */
static void server_time_per_request_and_step(void **state)
{
    (void)state;
    double c[PST_STAT_COUNT] = {0};
    c[PST_STAT_PUSHES] = 10;
    c[PST_STAT_PULLS] = 20;
    c[PST_STAT_PUSH_US] = 2500;
    c[PST_STAT_PULL_US] = 1000;
    c[PST_STAT_BYTES_WIRE_IN] = 123456;
    c[PST_STAT_BYTES_WIRE_OUT] = 654321;
    cJSON *comm = cJSON_CreateObject();
    pst_steptime_server_json(comm, c, 5);
    assert_true(number(comm, "server", "push_us") == 250);
    assert_true(number(comm, "server", "pull_us") == 50);
    assert_true(number(comm, "server", "busy_ms_per_step") == 0.7);
    assert_true(number(comm, "server", "bytes_in") == 123456);
    assert_true(number(comm, "server", "bytes_out") == 654321);
    assert_true(number(comm, "server", "pushes") == 10);
    cJSON_Delete(comm);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(worker_figures_are_differences),
        cmocka_unit_test(step_means_split_waits_from_compute),
        cmocka_unit_test(no_steps_gives_no_figures),
        cmocka_unit_test(server_time_per_request_and_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
