/* Tests for app/sweep/sweep_keep.c: the k best jobs' models kept, ranked as a sweep's best (the
 * highest rung first, then the metric), a trial's later job replacing its earlier one, and the
 * files of top_models/ following the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "app/sweep/sweep_keep.h"
#include "common/filesum.h"

/* A model file of one byte: the trial's number, so a written file says whose it is. */
static void offer(pst_sweep_keep_t *keep, int trial, int rung, double metric)
{
    uint8_t *model = malloc(1);
    model[0] = (uint8_t)trial;
    pst_sweep_keep_offer(keep, trial, rung, metric, model, 1);
}

static void expect_trials(const pst_sweep_keep_t *keep, const int *want, int n)
{
    int got[8];
    assert_int_equal(pst_sweep_keep_trials(keep, got, 8), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void keeps_the_best_k_by_rung_then_metric(void **state)
{
    (void)state;
    pst_sweep_keep_t *keep = pst_sweep_keep_new(3, true);
    offer(keep, 0, 0, 0.5);
    offer(keep, 1, 0, 0.7);
    offer(keep, 2, 0, 0.6);
    offer(keep, 3, 0, 0.4); /* below the three kept */
    offer(keep, 4, 0, NAN); /* never kept */
    expect_trials(keep, (const int[]){1, 2, 0}, 3);
    offer(keep, 0, 1, 0.1); /* a higher rung ranks first whatever its metric */
    expect_trials(keep, (const int[]){0, 1, 2}, 3);
    offer(keep, 1, 1, 0.3); /* trial 1's later job replaces its first */
    expect_trials(keep, (const int[]){1, 0, 2}, 3);
    offer(keep, 5, 0, 0.65);
    expect_trials(keep, (const int[]){1, 0, 5}, 3);
    pst_sweep_keep_destroy(&keep);
    assert_null(keep);
    keep = pst_sweep_keep_new(2, false); /* minimising: smaller first */
    offer(keep, 0, 0, 0.5);
    offer(keep, 1, 0, 0.2);
    offer(keep, 2, 0, 0.9);
    expect_trials(keep, (const int[]){1, 0}, 2);
    pst_sweep_keep_destroy(&keep);
}

/* Whether top_models/trial_T.pst exists as a checksummed file of one content byte (*byte). */
static bool has_file(const char *dir, int trial, int *byte)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/top_models/trial_%d.pst", dir, trial);
    unsigned char *data = NULL;
    size_t len = 0;
    if (pst_filesum_read(path, 16, &data, &len, NULL) != PST_OK)
        return false;
    *byte = len > 0 ? data[0] : -1;
    free(data);
    return len == 1;
}

static void files_follow_the_table(void **state)
{
    (void)state;
    char dir[] = "/tmp/sweep_keep_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    pst_sweep_keep_t *keep = pst_sweep_keep_new(2, true);
    offer(keep, 0, 0, 0.5);
    offer(keep, 1, 0, 0.7);
    pst_err_t err = {0};
    assert_int_equal(pst_sweep_keep_write(keep, dir, &err), PST_OK);
    int byte;
    assert_true(has_file(dir, 0, &byte) && byte == 0);
    assert_true(has_file(dir, 1, &byte) && byte == 1);
    offer(keep, 2, 0, 0.9); /* trial 0 leaves the top 2: its file goes */
    assert_int_equal(pst_sweep_keep_write(keep, dir, &err), PST_OK);
    assert_false(has_file(dir, 0, &byte));
    assert_true(has_file(dir, 1, &byte) && byte == 1);
    assert_true(has_file(dir, 2, &byte) && byte == 2);
    pst_sweep_keep_destroy(&keep);
    char path[1200];
    for (int t = 1; t <= 2; t++) {
        snprintf(path, sizeof path, "%s/top_models/trial_%d.pst", dir, t);
        remove(path);
    }
    snprintf(path, sizeof path, "%s/top_models", dir);
    remove(path);
    remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_the_best_k_by_rung_then_metric),
        cmocka_unit_test(files_follow_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
