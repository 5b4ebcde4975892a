/* Tests for common/metrics: hand-made examples against scikit-learn, AUC with ties, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common/eval/metrics.h"

/* Golden numbers come from scikit-learn 1.2.1 on the float32 inputs below, converted to float64:
 *   precision_recall_fscore_support(y, pred, labels=range(K), average=None|"macro"|"micro",
 *                                   zero_division=0), confusion_matrix, accuracy_score,
 *   log_loss(y, P, labels=range(K), eps=1e-15), roc_auc_score(y, score), mean_squared_error,
 *   mean_absolute_error, r2_score.
 * Specificity (not in scikit-learn) is TN / (TN + FP) worked out by hand from the confusion. */

#define assert_near(got, want) assert_near_at((got), (want), __LINE__)

/* Relative 1e-6 (absolute below 1): inputs are float32, sums are double. */
static void assert_near_at(double got, double want, int line)
{
    if (!(fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want))))
        fail_msg("line %d: got %.12g, want %.12g", line, got, want);
}

static void assert_near_n(const double *got, const double *want, int n, int line)
{
    for (int i = 0; i < n; i++)
        assert_near_at(got[i], want[i], line);
}

/* 3 classes, 12 rows; row 7 ties classes 0 and 1 and the first maximum (0) is predicted.
 * Confusion (row = true): [[2,1,1],[1,3,1],[0,1,2]]. */
static const float PROB3[12 * 3] = {
    0.7f, 0.2f, 0.1f, 0.5f,  0.3f,  0.2f,  0.3f, 0.6f,  0.1f,  0.2f, 0.3f, 0.5f,
    0.1f, 0.8f, 0.1f, 0.25f, 0.5f,  0.25f, 0.3f, 0.45f, 0.25f, 0.4f, 0.4f, 0.2f,
    0.1f, 0.3f, 0.6f, 0.05f, 0.15f, 0.8f,  0.2f, 0.2f,  0.6f,  0.3f, 0.5f, 0.2f,
};
static const float LABELS3[12] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2};

static void three_classes_match_sklearn(void **state)
{
    pst_class_metrics_t m;
    pst_err_t err = {0};
    assert_int_equal(pst_class_metrics_compute(&m, 3, 12, PROB3, NULL, LABELS3, &err), PST_OK);
    const long confusion[9] = {2, 1, 1, 1, 3, 1, 0, 1, 2};
    assert_memory_equal(m.confusion, confusion, sizeof confusion);
    assert_int_equal(m.n, 12);
    assert_int_equal(m.n_classes, 3);
    assert_near(m.accuracy, 0.583333333333333);

    const double precision[3] = {0.666666666666667, 0.6, 0.5};
    const double recall[3] = {0.5, 0.6, 0.666666666666667};
    const double f1[3] = {0.571428571428572, 0.6, 0.571428571428572};
    const double specificity[3] = {7.0 / 8, 5.0 / 7, 7.0 / 9};
    assert_near_n(m.precision, precision, 3, __LINE__);
    assert_near_n(m.recall, recall, 3, __LINE__);
    assert_near_n(m.f1, f1, 3, __LINE__);
    assert_near_n(m.specificity, specificity, 3, __LINE__);

    assert_near(m.precision_macro, 0.588888888888889);
    assert_near(m.recall_macro, 0.588888888888889);
    assert_near(m.f1_macro, 0.580952380952381);
    assert_near(m.specificity_macro, (7.0 / 8 + 5.0 / 7 + 7.0 / 9) / 3);
    assert_near(m.precision_micro, 0.583333333333333);
    assert_near(m.recall_micro, 0.583333333333333);
    assert_near(m.f1_micro, 0.583333333333333);
    assert_near(m.specificity_micro, 19.0 / 24); /* sum TN 19, sum FP 5 */

    assert_near(m.log_loss, 0.836808494405049);
    assert_true(isnan(m.roc_auc)); /* not binary */
    pst_class_metrics_fini(&m);
    assert_null(m.confusion);
    pst_class_metrics_fini(&m); /* safe twice */
}

/* Explicit predictions, 4 classes: class 2 is never predicted and class 3 never occurs, so their
 * precision, recall and F1 divide by zero and count as 0; both still enter the macro means. */
static void zero_division_counts_as_zero(void **state)
{
    const float labels[6] = {0, 1, 2, 2, 0, 1};
    const int pred[6] = {0, 1, 1, 0, 0, 1};
    pst_class_metrics_t m;
    assert_int_equal(pst_class_metrics_compute(&m, 4, 6, NULL, pred, labels, NULL), PST_OK);
    const long confusion[16] = {2, 0, 0, 0, 0, 2, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(m.confusion, confusion, sizeof confusion);
    const double precision[4] = {0.666666666666667, 0.666666666666667, 0, 0};
    const double recall[4] = {1, 1, 0, 0};
    const double f1[4] = {0.8, 0.8, 0, 0};
    const double specificity[4] = {0.75, 0.75, 1, 1};
    assert_near_n(m.precision, precision, 4, __LINE__);
    assert_near_n(m.recall, recall, 4, __LINE__);
    assert_near_n(m.f1, f1, 4, __LINE__);
    assert_near_n(m.specificity, specificity, 4, __LINE__);
    assert_near(m.precision_macro, 0.333333333333333);
    assert_near(m.recall_macro, 0.5);
    assert_near(m.f1_macro, 0.4);
    assert_near(m.specificity_macro, 0.875);
    assert_near(m.f1_micro, 0.666666666666667);
    assert_near(m.specificity_micro, 16.0 / 18);
    assert_true(isnan(m.log_loss)); /* no probabilities */
    assert_true(isnan(m.roc_auc));
    pst_class_metrics_fini(&m);
}

/* Scores with three ties across classes, and a positive scored 0 (log-loss clamps it to 1e-15). */
static const float SCORE2[9] = {0.1f, 0.4f, 0.35f, 0.8f, 0.4f, 0.4f, 0.9f, 0.1f, 0.0f};
static const float LABELS2[9] = {0, 0, 1, 1, 1, 0, 1, 1, 1};

static void binary_with_ties(void **state)
{
    assert_near(pst_roc_auc(SCORE2, LABELS2, 9), 0.527777777777778);

    float prob[18];
    for (int i = 0; i < 9; i++) {
        prob[2 * i] = 1.0f - SCORE2[i];
        prob[2 * i + 1] = SCORE2[i];
    }
    pst_class_metrics_t m;
    assert_int_equal(pst_class_metrics_compute(&m, 2, 9, prob, NULL, LABELS2, NULL), PST_OK);
    const long confusion[4] = {3, 0, 4, 2};
    assert_memory_equal(m.confusion, confusion, sizeof confusion);
    assert_near(m.accuracy, 5.0 / 9);
    assert_near(m.roc_auc, 0.527777777777778);
    assert_near(m.log_loss, 4.47366557719785);
    const double precision[2] = {0.428571428571429, 1.0}, recall[2] = {1.0, 0.333333333333333};
    const double f1[2] = {0.6, 0.5};
    assert_near_n(m.precision, precision, 2, __LINE__);
    assert_near_n(m.recall, recall, 2, __LINE__);
    assert_near_n(m.f1, f1, 2, __LINE__);
    /* In a binary task one class's specificity is the other's recall. */
    assert_near(m.specificity[0], m.recall[1]);
    assert_near(m.specificity[1], m.recall[0]);
    pst_class_metrics_fini(&m);
}

/* Hand-counted AUCs: perfect, reversed, all tied, and the undefined cases. */
static void auc_by_hand(void **state)
{
    const float s[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const float up[4] = {0, 0, 1, 1}, down[4] = {1, 1, 0, 0}, one_class[4] = {1, 1, 1, 1};
    assert_near(pst_roc_auc(s, up, 4), 1.0);
    assert_near(pst_roc_auc(s, down, 4), 0.0);
    const float tied[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    assert_near(pst_roc_auc(tied, up, 4), 0.5);
    /* Positives at 0.2 and 0.4 against negatives at 0.1 and 0.3: 3 of 4 pairs ordered. */
    const float mixed[4] = {0, 1, 0, 1};
    assert_near(pst_roc_auc(s, mixed, 4), 0.75);
    assert_true(isnan(pst_roc_auc(s, one_class, 4)));
    const float bad_label[4] = {0, 2, 1, 0};
    assert_true(isnan(pst_roc_auc(s, bad_label, 4)));
    const float nan_score[4] = {0.1f, NAN, 0.3f, 0.4f};
    assert_true(isnan(pst_roc_auc(nan_score, up, 4)));
    assert_true(isnan(pst_roc_auc(s, up, 0)));
}

static void errors_name_the_row(void **state)
{
    pst_class_metrics_t m;
    pst_err_t err = {0};
    float labels[3] = {0, 3, 1};
    float prob[6] = {0.5f, 0.5f, 0.1f, 0.9f, 0.2f, 0.8f};
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, prob, NULL, labels, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 1"));
    assert_null(m.confusion);

    labels[1] = 0.5f; /* not a class index */
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, prob, NULL, labels, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 1"));
    labels[1] = NAN;
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, prob, NULL, labels, &err), PST_ERANGE);

    labels[1] = 1;
    prob[5] = NAN;
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, prob, NULL, labels, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 2"));
    prob[5] = INFINITY;
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, prob, NULL, labels, &err), PST_ENUMERIC);

    const int pred[3] = {0, 1, -1};
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, NULL, pred, labels, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_int_equal(pst_class_metrics_compute(&m, 2, 0, NULL, pred, labels, &err), PST_EINVAL);
    assert_int_equal(pst_class_metrics_compute(&m, 2, 3, NULL, NULL, labels, NULL), PST_EINVAL);
}

/* Predictions win over probabilities for the confusion; log-loss still uses the probabilities. */
static void explicit_predictions_override_argmax(void **state)
{
    const int pred[12] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2};
    pst_class_metrics_t m;
    assert_int_equal(pst_class_metrics_compute(&m, 3, 12, PROB3, pred, LABELS3, NULL), PST_OK);
    assert_near(m.accuracy, 1.0);
    assert_near(m.f1_macro, 1.0);
    assert_near(m.specificity_micro, 1.0);
    assert_near(m.log_loss, 0.836808494405049);
    pst_class_metrics_fini(&m);
}

static void regression_matches_sklearn(void **state)
{
    const float target[5] = {3.0f, -0.5f, 2.0f, 7.0f, 4.2f};
    const float pred[5] = {2.5f, 0.0f, 2.1f, 7.8f, 3.9f};
    pst_reg_metrics_t r;
    pst_reg_metrics_compute(&r, 5, pred, target);
    assert_int_equal(r.n, 5);
    assert_near(r.mse, 0.248000022888209);
    assert_near(r.mae, 0.439999961853027);
    assert_near(r.r2, 0.959466522920009);

    /* Constant target: r2_score gives 1.0 for a perfect fit and 0.0 otherwise. */
    const float flat[3] = {2, 2, 2}, off[3] = {2, 2, 2.5f};
    pst_reg_metrics_compute(&r, 3, flat, flat);
    assert_near(r.r2, 1.0);
    assert_near(r.mse, 0.0);
    pst_reg_metrics_compute(&r, 3, off, flat);
    assert_near(r.r2, 0.0);
    assert_near(r.mse, 0.25 / 3);
    assert_near(r.mae, 0.5 / 3);

    pst_reg_metrics_compute(&r, 0, pred, target);
    assert_true(isnan(r.mse) && isnan(r.mae) && isnan(r.r2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(three_classes_match_sklearn),
        cmocka_unit_test(zero_division_counts_as_zero),
        cmocka_unit_test(binary_with_ties),
        cmocka_unit_test(auc_by_hand),
        cmocka_unit_test(errors_name_the_row),
        cmocka_unit_test(explicit_predictions_override_argmax),
        cmocka_unit_test(regression_matches_sklearn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
