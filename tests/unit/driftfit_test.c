/* Tests for app/drift/driftfit: how model outputs are profiled (binary: p(class 1) whether the
 * model has one output or two; multiclass: the predicted class by its label; regression: the
 * value) and that counting the same outputs again gives the stored counts exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "app/drift/driftfit.h"
#include "common/drift/driftstat.h"
#include "common/log.h"

enum { N = 500 };

static void assert_recount_is_exact(const pst_drift_dist_t *d, const pst_drift_outputs_t *o,
                                    const float *out, int n_out)
{
    uint64_t *counts = calloc(d->n_bins, sizeof *counts);
    assert_non_null(counts);
    pst_driftfit_count_outputs(d, o, out, n_out, N, counts);
    assert_memory_equal(counts, d->counts, d->n_bins * sizeof *counts);
    assert_float_equal(pst_drift_psi(d->counts, counts, d->n_bins, PST_DRIFT_PSI_GROUPS), 0, 0);
    free(counts);
}

static void binary_outputs_profile_p_of_class_one(void **state)
{
    (void)state;
    static float one[N], two[2 * N];
    for (int i = 0; i < N; i++) {
        one[i] = (float)((i * 37) % 101) / 100.0f;
        two[2 * i] = 1.0f - one[i];
        two[2 * i + 1] = one[i];
    }
    pst_drift_outputs_t o = {PST_TASK_CLASSIFICATION, 2, NULL, NULL};
    pst_drift_dist_t a, b;
    assert_int_equal(pst_driftfit_outputs(&a, &o, one, 1, N, NULL), PST_OK);
    assert_int_equal(pst_driftfit_outputs(&b, &o, two, 2, N, NULL), PST_OK);
    assert_int_equal(a.kind, PST_DRIFT_NUMERIC);
    assert_string_equal(a.name, "prediction");
    assert_int_equal(a.n_bins, b.n_bins);
    assert_memory_equal(a.edges, b.edges, a.n_edges * sizeof *a.edges);
    assert_memory_equal(a.counts, b.counts, a.n_bins * sizeof *a.counts);
    assert_float_equal(a.min, 0.0, 0);
    assert_float_equal(a.max, 1.0, 0);
    assert_recount_is_exact(&a, &o, one, 1);
    assert_recount_is_exact(&b, &o, two, 2);
    pst_drift_dist_fini(&a);
    pst_drift_dist_fini(&b);
}

static void multiclass_outputs_profile_the_predicted_label(void **state)
{
    (void)state;
    static float out[3 * N];
    memset(out, 0, sizeof out);
    for (int i = 0; i < N; i++) /* class 2 for 250 rows, 0 for 150, 1 for 100 */
        out[3 * i + (i % 10 < 5 ? 2 : i % 10 < 8 ? 0 : 1)] = 1.0f;
    const char *names[3] = {"cat", "dog", "owl"};
    pst_drift_outputs_t o = {PST_TASK_CLASSIFICATION, 3, names, NULL};
    pst_drift_dist_t d;
    assert_int_equal(pst_driftfit_outputs(&d, &o, out, 3, N, NULL), PST_OK);
    assert_int_equal(d.kind, PST_DRIFT_CATEGORICAL);
    assert_int_equal(d.n_categories, 3);
    assert_string_equal(d.categories[0], "owl");
    assert_int_equal(d.counts[0], 250);
    assert_string_equal(d.categories[1], "cat");
    assert_int_equal(d.counts[1], 150);
    assert_string_equal(d.categories[2], "dog");
    assert_int_equal(d.counts[2], 100);
    assert_int_equal(d.counts[3], 0);
    assert_recount_is_exact(&d, &o, out, 3);
    pst_drift_dist_fini(&d);
}

static void regression_outputs_profile_the_value(void **state)
{
    (void)state;
    static float out[N];
    for (int i = 0; i < N; i++)
        out[i] = 100.0f + (float)((i * 13) % N);
    pst_drift_outputs_t o = {PST_TASK_REGRESSION, 0, NULL, NULL};
    pst_drift_dist_t d;
    assert_int_equal(pst_driftfit_outputs(&d, &o, out, 1, N, NULL), PST_OK);
    assert_int_equal(d.kind, PST_DRIFT_NUMERIC);
    assert_int_equal(d.n_bins, PST_DRIFT_BINS);
    for (size_t k = 0; k < d.n_bins; k++) /* 500 distinct values: 25 in every bin */
        assert_int_equal(d.counts[k], N / PST_DRIFT_BINS);
    assert_float_equal(d.edges[0], 124.0, 0);
    assert_recount_is_exact(&d, &o, out, 1);
    pst_drift_dist_fini(&d);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_outputs_profile_p_of_class_one),
        cmocka_unit_test(multiclass_outputs_profile_the_predicted_label),
        cmocka_unit_test(regression_outputs_profile_the_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
