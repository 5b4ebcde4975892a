/* Tests for app/imbalance: train.imbalance on a job's training set. Class weights and class
 * counts against hand-computed values, resampled lists balanced and drawn from the set, SMOTE
 * rows appended to it, the same list on every call (workers agree), per-worker counts summed
 * through the reducer, and the refusals (regression, resampling across per-worker files). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "app/imbalance.h"
#include "common/log.h"

#define N_ROWS 20

/* 16 rows of class 0, 4 of class 1, features (row, noise). */
static pst_dataset_t *imbalanced(void)
{
    pst_dataset_t *d = pst_dataset_new(N_ROWS, 2, PST_TASK_CLASSIFICATION);
    d->n_classes = 2;
    for (size_t i = 0; i < N_ROWS; i++) {
        d->y[i] = i % 5 == 4 ? 1.0f : 0.0f;
        d->x[2 * i] = (float)i;
        d->x[2 * i + 1] = (float)((i * 7) % 3);
    }
    return d;
}

static void configure(pst_config_t *cfg, const char *method)
{
    char set[64];
    pst_config_init(cfg);
    snprintf(set, sizeof set, "train.imbalance=%s", method);
    assert_int_equal(pst_config_set(cfg, set, NULL), PST_OK);
    assert_int_equal(pst_config_set(cfg, "train.smote_k=2", NULL), PST_OK);
}

static void none_changes_nothing(void **state)
{
    pst_config_t cfg;
    configure(&cfg, "none");
    pst_dataset_t *d = imbalanced();
    pst_imbalance_t ib;
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, NULL, NULL), PST_OK);
    assert_null(ib.rows);
    assert_null(ib.class_weights);
    assert_null(ib.class_rows);
    assert_int_equal(d->n_rows, N_ROWS);
    pst_imbalance_fini(&ib);
    pst_dataset_destroy(&d);
    pst_config_fini(&cfg);
}

static void class_weight_is_balanced(void **state)
{
    pst_config_t cfg;
    configure(&cfg, "class_weight");
    pst_dataset_t *d = imbalanced();
    pst_imbalance_t ib;
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, NULL, NULL), PST_OK);
    assert_null(ib.rows);
    assert_int_equal(ib.class_rows[0], 16);
    assert_int_equal(ib.class_rows[1], 4);
    /* n / (classes * count): 20 / 32 and 20 / 8 */
    assert_true(ib.class_weights[0] == 0.625);
    assert_true(ib.class_weights[1] == 2.5);
    pst_imbalance_fini(&ib);
    pst_dataset_destroy(&d);
    pst_config_fini(&cfg);
}

static void resampled_lists_are_balanced_and_repeatable(void **state)
{
    const char *methods[2] = {"oversample", "undersample"};
    const size_t per_class[2] = {16, 4};
    for (int m = 0; m < 2; m++) {
        pst_config_t cfg;
        configure(&cfg, methods[m]);
        pst_dataset_t *d = imbalanced();
        pst_imbalance_t a, b;
        assert_int_equal(pst_imbalance_apply(&a, &cfg, d, NULL, NULL), PST_OK);
        assert_int_equal(pst_imbalance_apply(&b, &cfg, d, NULL, NULL), PST_OK);
        assert_int_equal(a.n_rows, 2 * per_class[m]);
        assert_int_equal(a.class_rows[0], per_class[m]);
        assert_int_equal(a.class_rows[1], per_class[m]);
        size_t seen[2] = {0, 0};
        for (size_t i = 0; i < a.n_rows; i++) {
            assert_true(a.rows[i] < N_ROWS);
            seen[(int)d->y[a.rows[i]]]++;
        }
        assert_int_equal(seen[0], per_class[m]);
        assert_int_equal(seen[1], per_class[m]);
        assert_int_equal(b.n_rows, a.n_rows);
        assert_memory_equal(b.rows, a.rows, a.n_rows * sizeof(size_t));
        assert_int_equal(d->n_rows, N_ROWS);
        pst_imbalance_fini(&a);
        pst_imbalance_fini(&b);
        pst_dataset_destroy(&d);
        pst_config_fini(&cfg);
    }
}

static void smote_appends_minority_rows(void **state)
{
    pst_config_t cfg;
    configure(&cfg, "smote");
    pst_dataset_t *d = imbalanced();
    pst_imbalance_t ib;
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, NULL, NULL), PST_OK);
    assert_int_equal(ib.n_synthetic, 12);
    assert_int_equal(d->n_rows, N_ROWS + 12);
    assert_null(ib.rows);
    assert_int_equal(ib.class_rows[0], 16);
    assert_int_equal(ib.class_rows[1], 16);
    /* The original rows are untouched; every synthetic row is of class 1 and lies between two
     * class-1 rows (feature 0 is the row number of rows 4, 9, 14, 19). */
    for (size_t i = 0; i < N_ROWS; i++)
        assert_true(d->x[2 * i] == (float)i);
    for (size_t i = N_ROWS; i < d->n_rows; i++) {
        assert_true(d->y[i] == 1.0f);
        assert_true(d->x[2 * i] >= 4.0f && d->x[2 * i] <= 19.0f);
    }
    pst_imbalance_fini(&ib);
    pst_dataset_destroy(&d);
    pst_config_fini(&cfg);
}

/* A reducer standing for three workers holding the same rows: sums triple. */
static int triple_sum(void *ctx, double *vals, int n, pst_err_t *err)
{
    (*(int *)ctx)++;
    for (int i = 0; i < n; i++)
        vals[i] *= 3;
    return PST_OK;
}

static void worker_files_sum_counts_and_refuse_resampling(void **state)
{
    int calls = 0;
    pst_reducer_t reduce = {&calls, triple_sum, NULL};
    pst_config_t cfg;
    configure(&cfg, "class_weight");
    pst_dataset_t *d = imbalanced();
    pst_imbalance_t ib;
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, &reduce, NULL), PST_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(ib.class_rows[0], 48);
    assert_int_equal(ib.class_rows[1], 12);
    assert_true(ib.class_weights[0] == 0.625);
    assert_true(ib.class_weights[1] == 2.5);
    pst_imbalance_fini(&ib);
    pst_config_fini(&cfg);
    configure(&cfg, "undersample");
    pst_err_t err = {0};
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, &reduce, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.imbalance: undersample resamples the whole training"));
    assert_int_equal(calls, 1);
    pst_imbalance_fini(&ib);
    d->task = PST_TASK_REGRESSION;
    assert_int_equal(pst_imbalance_apply(&ib, &cfg, d, NULL, &err), PST_EINVAL);
    assert_string_equal(err.msg, "train.imbalance: undersample needs a classification task");
    pst_imbalance_fini(&ib);
    pst_dataset_destroy(&d);
    pst_config_fini(&cfg);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(none_changes_nothing),
        cmocka_unit_test(class_weight_is_balanced),
        cmocka_unit_test(resampled_lists_are_balanced_and_repeatable),
        cmocka_unit_test(smote_appends_minority_rows),
        cmocka_unit_test(worker_files_sum_counts_and_refuse_resampling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
