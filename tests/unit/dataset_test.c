/* Tests for common/dataset: allocation, row selection (dense and CSR) with metadata, densify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/data/dataset.h"

static void new_is_zeroed_and_destroy_is_idempotent(void **state)
{
    pst_dataset_t *d = pst_dataset_new(3, 4, PST_TASK_REGRESSION);
    assert_non_null(d);
    assert_int_equal(d->n_rows, 3);
    assert_int_equal(d->n_features, 4);
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_false(pst_dataset_is_sparse(d));
    for (int k = 0; k < 12; k++)
        assert_true(d->x[k] == 0.0f);
    for (int i = 0; i < 3; i++)
        assert_true(d->y[i] == 0.0f);
    assert_null(d->class_values);
    assert_null(d->feature_names);
    pst_dataset_destroy(&d);
    assert_null(d);
    pst_dataset_destroy(&d);
    pst_dataset_destroy(NULL);
    assert_null(pst_dataset_new(SIZE_MAX / 2, 4, PST_TASK_REGRESSION)); /* overflow */
    d = pst_dataset_new(0, 5, PST_TASK_CLASSIFICATION);
    assert_non_null(d);
    pst_dataset_destroy(&d);
}

/* 4 rows x 2 features, x = 10 * row + col, classes 0,1,2,1 with names. */
static pst_dataset_t *labelled_set(void)
{
    pst_dataset_t *d = pst_dataset_new(4, 2, PST_TASK_CLASSIFICATION);
    for (int i = 0; i < 4; i++) {
        d->x[2 * i] = (float)(10 * i);
        d->x[2 * i + 1] = (float)(10 * i + 1);
    }
    static const float y[4] = {0, 1, 2, 1};
    memcpy(d->y, y, sizeof y);
    d->n_classes = 3;
    d->class_values = malloc(3 * sizeof *d->class_values);
    d->class_values[0] = -1;
    d->class_values[1] = 4;
    d->class_values[2] = 9;
    d->feature_names = calloc(2, sizeof *d->feature_names);
    d->feature_names[0] = strdup("a");
    d->feature_names[1] = strdup("b");
    d->target_name = strdup("kind");
    return d;
}

static void take_dense_rows_copies_metadata(void **state)
{
    pst_dataset_t *src = labelled_set();
    static const size_t idx[3] = {3, 0, 3};
    pst_dataset_t *d = pst_dataset_take_rows(src, idx, 3);
    assert_non_null(d);
    assert_int_equal(d->n_rows, 3);
    assert_int_equal(d->n_features, 2);
    static const float x[6] = {30, 31, 0, 1, 30, 31};
    static const float y[3] = {1, 0, 1};
    assert_memory_equal(d->x, x, sizeof x);
    assert_memory_equal(d->y, y, sizeof y);
    assert_int_equal(d->n_classes, 3);
    assert_true(d->class_values[2] == 9);
    assert_ptr_not_equal(d->class_values, src->class_values);
    assert_ptr_not_equal(d->feature_names[1], src->feature_names[1]);
    pst_dataset_destroy(&src); /* the copy owns its own metadata */
    assert_string_equal(d->feature_names[1], "b");
    assert_string_equal(d->target_name, "kind");
    assert_true(d->class_values[0] == -1);
    pst_dataset_t *empty = pst_dataset_take_rows(d, NULL, 0);
    assert_non_null(empty);
    assert_int_equal(empty->n_rows, 0);
    assert_int_equal(empty->n_features, 2);
    pst_dataset_destroy(&empty);
    pst_dataset_destroy(&d);
}

/* 3 rows over 5 features: {1:1.5, 4:2}, {}, {0:-1, 2:3, 3:4}. */
static pst_dataset_t *sparse_set(void)
{
    pst_dataset_t *d = pst_dataset_new(3, 0, PST_TASK_REGRESSION);
    free(d->x);
    d->x = NULL;
    d->n_features = 5;
    static const size_t row_ptr[4] = {0, 2, 2, 5};
    static const uint32_t cols[5] = {1, 4, 0, 2, 3};
    static const float vals[5] = {1.5f, 2, -1, 3, 4};
    d->row_ptr = malloc(sizeof row_ptr);
    d->col_idx = malloc(sizeof cols);
    d->val = malloc(sizeof vals);
    memcpy(d->row_ptr, row_ptr, sizeof row_ptr);
    memcpy(d->col_idx, cols, sizeof cols);
    memcpy(d->val, vals, sizeof vals);
    d->y[0] = 0.5f;
    d->y[1] = 1.5f;
    d->y[2] = 2.5f;
    return d;
}

static void take_sparse_rows(void **state)
{
    pst_dataset_t *src = sparse_set();
    static const size_t idx[3] = {2, 1, 0};
    pst_dataset_t *d = pst_dataset_take_rows(src, idx, 3);
    assert_true(pst_dataset_is_sparse(d));
    assert_null(d->x);
    assert_int_equal(d->n_features, 5);
    static const size_t row_ptr[4] = {0, 3, 3, 5};
    static const uint32_t cols[5] = {0, 2, 3, 1, 4};
    static const float vals[5] = {-1, 3, 4, 1.5f, 2};
    static const float y[3] = {2.5f, 1.5f, 0.5f};
    assert_memory_equal(d->row_ptr, row_ptr, sizeof row_ptr);
    assert_memory_equal(d->col_idx, cols, sizeof cols);
    assert_memory_equal(d->val, vals, sizeof vals);
    assert_memory_equal(d->y, y, sizeof y);
    pst_dataset_destroy(&d);
    pst_dataset_destroy(&src);
}

static void densify_grows_and_checks_width(void **state)
{
    pst_dataset_t *d = sparse_set();
    pst_err_t err = {0};
    assert_int_equal(pst_dataset_densify(d, 4, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 1 has feature index 5"));
    assert_true(pst_dataset_is_sparse(d)); /* untouched on error */
    assert_int_equal(pst_dataset_densify(d, 6, &err), PST_OK);
    assert_false(pst_dataset_is_sparse(d));
    assert_null(d->col_idx);
    assert_int_equal(d->n_features, 6);
    static const float x[18] = {0,  1.5f, 0, 0, 2, 0, /* */
                                0,  0,    0, 0, 0, 0, /* */
                                -1, 0,    3, 4, 0, 0};
    assert_memory_equal(d->x, x, sizeof x);
    assert_true(d->y[2] == 2.5f);
    pst_dataset_destroy(&d);
    d = sparse_set();
    assert_int_equal(pst_dataset_densify(d, 0, &err), PST_OK); /* keep the width */
    assert_int_equal(d->n_features, 5);
    assert_true(d->x[5 * 2 + 3] == 4);
    pst_dataset_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_is_zeroed_and_destroy_is_idempotent),
        cmocka_unit_test(take_dense_rows_copies_metadata),
        cmocka_unit_test(take_sparse_rows),
        cmocka_unit_test(densify_grows_and_checks_width),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
