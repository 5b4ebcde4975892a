/* Tests for common/eval/curves: ROC and precision-recall points, AUC and average precision of a
 * hand-worked case with a tie, reliability bins (a value on an edge), Brier scores, the mean
 * curves, thinning, and the curve's area against the reported AUC on many rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "common/eval/curves.h"
#include "common/eval/metrics.h"

#define assert_close(got, want) assert_close_at((got), (want), __LINE__)

static void assert_close_at(double got, double want, int line)
{
    if (!(fabs(got - want) <= 1e-9))
        fail_msg("line %d: got %.15g, want %.15g", line, got, want);
}

static void assert_points(const pst_curve_t *c, const double *x, const double *y, int n, int line)
{
    if (c->n != n)
        fail_msg("line %d: %d points, want %d", line, c->n, n);
    for (int i = 0; i < n; i++) {
        assert_close_at(c->x[i], x[i], line);
        assert_close_at(c->y[i], y[i], line);
    }
}

/* Scores 0.9 0.8 0.8 0.6 0.4 0.3 with labels 1 1 0 1 0 0: the two 0.8 rows tie. Worked by hand
 * (and equal to scikit-learn's roc_curve(drop_intermediate=False), precision_recall_curve,
 * roc_auc_score 0.8333 and average_precision_score 29/36). */
static const float SCORE6[6] = {0.9f, 0.8f, 0.8f, 0.6f, 0.4f, 0.3f};
static const float LABEL6[6] = {1, 1, 0, 1, 0, 0};

static void roc_and_pr_of_a_small_case_with_a_tie(void **state)
{
    (void)state;
    pst_class_curves_t c;
    assert_int_equal(pst_class_curves_compute(&c, SCORE6, LABEL6, 6, NULL), PST_OK);
    assert_int_equal(c.n_pos, 3);
    assert_int_equal(c.n_neg, 3);
    const double fpr[] = {0, 0, 1.0 / 3, 1.0 / 3, 2.0 / 3, 1};
    const double tpr[] = {0, 1.0 / 3, 2.0 / 3, 1, 1, 1};
    assert_points(&c.roc, fpr, tpr, 6, __LINE__);
    const double recall[] = {0, 1.0 / 3, 2.0 / 3, 1, 1, 1};
    const double precision[] = {1, 1, 2.0 / 3, 0.75, 0.6, 0.5};
    assert_points(&c.pr, recall, precision, 6, __LINE__);
    assert_close(c.auc, 5.0 / 6);
    assert_close(c.average_precision, 29.0 / 36);
    pst_class_curves_fini(&c);
}

static void auc_is_the_metrics_auc_and_the_curves_area(void **state)
{
    (void)state;
    enum { N = 2000 };
    float *score = malloc(N * sizeof *score), *label = malloc(N * sizeof *label);
    srand(7);
    for (int i = 0; i < N; i++) {
        label[i] = (float)(rand() % 3 == 0);
        /* two decimals: many ties; positives score higher on average */
        score[i] = roundf((float)rand() / (float)RAND_MAX * 80.0f + label[i] * 20.0f) / 100.0f;
    }
    pst_class_curves_t c;
    assert_int_equal(pst_class_curves_compute(&c, score, label, N, NULL), PST_OK);
    double reported = pst_roc_auc(score, label, N);
    assert_true(c.auc == reported); /* bit for bit: the number the run reports */
    double area = 0;
    for (int i = 1; i < c.roc.n; i++)
        area += (c.roc.x[i] - c.roc.x[i - 1]) * (c.roc.y[i] + c.roc.y[i - 1]) / 2;
    assert_close(area, reported);
    assert_true(c.roc.n <= 102); /* 101 distinct scores at most, and (0, 0) */
    assert_close(c.roc.x[c.roc.n - 1], 1);
    assert_close(c.roc.y[c.roc.n - 1], 1);
    assert_close(c.pr.x[c.pr.n - 1], 1);
    pst_class_curves_fini(&c);
    free(score);
    free(label);
}

static void a_missing_class_or_nan_gives_no_curve(void **state)
{
    (void)state;
    const float zeros[6] = {0};
    pst_class_curves_t c;
    assert_int_equal(pst_class_curves_compute(&c, SCORE6, zeros, 6, NULL), PST_OK);
    assert_int_equal(c.roc.n, 0);
    assert_int_equal(c.pr.n, 0);
    assert_true(isnan(c.auc) && isnan(c.average_precision));
    pst_class_curves_fini(&c);
    float nan_score[6] = {0.9f, NAN, 0.8f, 0.6f, 0.4f, 0.3f};
    assert_int_equal(pst_class_curves_compute(&c, nan_score, LABEL6, 6, NULL), PST_OK);
    assert_int_equal(c.roc.n, 0);
    assert_true(isnan(c.auc));
    pst_class_curves_fini(&c);
}

static void reliability_bins_ece_and_brier(void **state)
{
    (void)state;
    const float conf[6] = {0.05f, 0.15f, 0.5f, 0.55f, 0.95f, 0.92f};
    const float hit[6] = {0, 0, 1, 0, 1, 1};
    pst_calibration_t c;
    assert_int_equal(pst_calibration_compute(&c, conf, hit, 6, 10, NULL), PST_OK);
    const size_t count[10] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 2}; /* 0.5 sits on an edge: bin 4 */
    for (int b = 0; b < 10; b++)
        assert_int_equal(c.count[b], count[b]);
    assert_true(isnan(c.mean_pred[2]) && isnan(c.observed[2]));
    assert_close(c.mean_pred[4], 0.5);
    assert_close(c.observed[4], 1);
    assert_close(c.observed[5], 0);
    assert_close(c.mean_pred[9], ((double)0.95f + (double)0.92f) / 2);
    assert_close(c.observed[9], 1);
    double ece = ((double)0.05f + (double)0.15f + 0.5 + (double)0.55f +
                  2 * (1 - ((double)0.95f + (double)0.92f) / 2)) /
                 6;
    assert_close(c.ece, ece);
    assert_int_equal(c.n, 6);
    pst_calibration_fini(&c);
    assert_int_equal(pst_calibration_compute(&c, conf, hit, 6, 0, NULL), PST_EINVAL);

    double want = 0;
    for (int i = 0; i < 6; i++)
        want += ((double)conf[i] - hit[i]) * ((double)conf[i] - hit[i]);
    assert_close(pst_brier_score(conf, 1, hit, 6), want / 6);
    const float prob3[6] = {0.7f, 0.2f, 0.1f, 0.2f, 0.5f, 0.3f};
    const float y3[2] = {0, 2};
    /* (0.09 + 0.04 + 0.01 + 0.04 + 0.25 + 0.49) / 2, in float32 inputs */
    assert_true(fabs(pst_brier_score(prob3, 3, y3, 2) - 0.46) < 1e-6);
    assert_true(isnan(pst_brier_score(prob3, 3, y3, 0)));
}

static void mean_curves_on_a_grid(void **state)
{
    (void)state;
    double ax[] = {0, 0, 1}, ay[] = {0, 1, 1}, bx[] = {0, 1}, by[] = {0, 1};
    pst_curve_t roc[3] = {{ax, ay, 3}, {bx, by, 2}, {NULL, NULL, 0}};
    pst_curve_t mean;
    assert_int_equal(pst_roc_mean(roc, 3, 3, &mean, NULL), PST_OK);
    const double gx[] = {0, 0.5, 1}, roc_want[] = {0.5, 0.75, 1};
    assert_points(&mean, gx, roc_want, 3, __LINE__);
    pst_curve_fini(&mean);

    double cx[] = {0, 0.5, 1}, cy[] = {1, 1, 0.5}, dx[] = {0, 1}, dy[] = {1, 0.25};
    pst_curve_t pr[2] = {{cx, cy, 3}, {dx, dy, 2}};
    assert_int_equal(pst_pr_mean(pr, 2, 3, &mean, NULL), PST_OK);
    const double pr_want[] = {1, 0.625, 0.375};
    assert_points(&mean, gx, pr_want, 3, __LINE__);
    pst_curve_fini(&mean);
    assert_int_equal(pst_roc_mean(roc + 2, 1, 3, &mean, NULL), PST_OK);
    assert_int_equal(mean.n, 0);
    assert_int_equal(pst_roc_mean(roc, 2, 1, &mean, NULL), PST_EINVAL);
}

static void thinning_keeps_the_ends_and_a_bounded_count(void **state)
{
    (void)state;
    enum { N = 1001 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        x[i] = y[i] = i / 1000.0;
    pst_curve_t c = {x, y, N};
    assert_true(pst_curve_thin(&c, 10));
    assert_true(c.n >= 20 && c.n <= 22);
    assert_true(c.x[0] == 0 && c.x[c.n - 1] == 1 && c.y[c.n - 1] == 1);
    for (int i = 1; i < c.n - 1; i++)
        assert_true(c.x[i] - c.x[i - 1] + c.y[i] - c.y[i - 1] >= 0.1 - 1e-12);

    /* a saw: y swings 0/1 at every point, so x + |y| would keep them all; x alone bounds it */
    for (int i = 0; i < N; i++)
        x[i] = i / 1000.0, y[i] = i % 2;
    c.n = N;
    assert_true(pst_curve_thin(&c, 10));
    assert_true(c.n >= 10 && c.n <= 22);
    assert_true(c.x[0] == 0 && c.x[c.n - 1] == 1);

    /* a small curve whose steps are all large keeps every point, vertical ones included */
    double sx[4] = {0, 0, 0.5, 1}, sy[4] = {1, 0.5, 0.6, 0.5};
    pst_curve_t few = {sx, sy, 4};
    assert_false(pst_curve_thin(&few, 400));
    assert_int_equal(few.n, 4);
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roc_and_pr_of_a_small_case_with_a_tie),
        cmocka_unit_test(auc_is_the_metrics_auc_and_the_curves_area),
        cmocka_unit_test(a_missing_class_or_nan_gives_no_curve),
        cmocka_unit_test(reliability_bins_ece_and_brier),
        cmocka_unit_test(mean_curves_on_a_grid),
        cmocka_unit_test(thinning_keeps_the_ends_and_a_bounded_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
