/* Tests for common/data/seqwin.c: windows of time-ordered rows (values, step layout, targets for
 * forecasting and for the window's last row), ranges that keep windows and targets inside, the
 * target column as a step column, and the errors naming columns and parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/data/seqwin.h"
#include "common/data/table.h"
#include "common/log.h"

/* 10 rows: a = 10 t, b = -t, c categorical, target y = 100 + t. */
static pst_dataset_t *series(void)
{
    pst_dataset_t *d = pst_dataset_new(10, 3, PST_TASK_REGRESSION);
    const char *names[3] = {"a", "b", "c"};
    d->feature_names = calloc(3, sizeof(char *));
    d->table = pst_table_new(3);
    for (int j = 0; j < 3; j++) {
        d->feature_names[j] = strdup(names[j]);
        d->table->cols[j].name = strdup(names[j]);
        d->table->cols[j].type = j == 2 ? PST_COL_CATEGORICAL : PST_COL_NUMERIC;
    }
    for (int t = 0; t < 10; t++) {
        d->x[t * 3] = 10.0f * t;
        d->x[t * 3 + 1] = -(float)t;
        d->x[t * 3 + 2] = (float)(t % 2);
        d->y[t] = 100.0f + t;
    }
    return d;
}

static void forecasting_windows(void **state)
{
    (void)state;
    pst_dataset_t *d = series(), *w = NULL;
    pst_seqwin_t sw;
    pst_err_t err = {0};
    const char *cols[] = {"b", "value"};
    assert_int_equal(pst_seqwin_init(&sw, d, 3, 2, cols, 2, "value", &err), PST_OK);
    assert_int_equal(sw.n_cols, 2);
    assert_int_equal(sw.cols[0], 1);
    assert_int_equal(sw.cols[1], PST_SEQWIN_TARGET);
    /* rows 2..8 (7 rows): windows start at 2, 3, 4; the last target is row 4 + 2 + 2 = 8 */
    assert_int_equal(pst_seqwin_count(&sw, 7), 3);
    assert_int_equal(pst_seqwin_cut(&sw, d, 2, 7, "training", &w, &err), PST_OK);
    assert_int_equal(w->n_rows, 3);
    assert_int_equal(w->n_features, 6);
    assert_null(w->table);
    for (int i = 0; i < 3; i++) {
        for (int t = 0; t < 3; t++) {
            int row = 2 + i + t;
            assert_true(w->x[i * 6 + t * 2] == -(float)row);
            assert_true(w->x[i * 6 + t * 2 + 1] == 100.0f + row);
        }
        assert_true(w->y[i] == 100.0f + (2 + i + 2 + 2));
    }
    pst_dataset_destroy(&w);
    /* predicting: windows up to the range's last row, targets past it unknown (0) */
    sw.open_end = true;
    assert_int_equal(pst_seqwin_count(&sw, 7), 5);
    assert_int_equal(pst_seqwin_cut(&sw, d, 2, 7, "scored", &w, &err), PST_OK);
    assert_int_equal(w->n_rows, 5);
    assert_true(w->x[4 * 6 + 2 * 2] == -8.0f); /* the last window ends on row 8 */
    assert_true(w->y[2] == 100.0f + 8 && w->y[3] == 0.0f && w->y[4] == 0.0f);
    pst_dataset_destroy(&w);
    pst_dataset_destroy(&d);
}

static void last_row_target_and_default_columns(void **state)
{
    (void)state;
    pst_dataset_t *d = series(), *w = NULL;
    pst_seqwin_t sw;
    pst_err_t err = {0};
    /* horizon 0, no names: the numeric columns a and b (c is categorical, the target is not
     * forecast so not a step column) */
    assert_int_equal(pst_seqwin_init(&sw, d, 4, 0, NULL, 0, "value", &err), PST_OK);
    assert_int_equal(sw.n_cols, 2);
    assert_int_equal(pst_seqwin_cut(&sw, d, 0, 10, "training", &w, &err), PST_OK);
    assert_int_equal(w->n_rows, 7);
    for (int i = 0; i < 7; i++) {
        assert_true(w->x[i * 8] == 10.0f * i);
        assert_true(w->x[i * 8 + 7] == -(float)(i + 3));
        assert_true(w->y[i] == 100.0f + i + 3);
    }
    pst_dataset_destroy(&w);
    /* forecasting with no names adds the target's own past */
    assert_int_equal(pst_seqwin_init(&sw, d, 4, 1, NULL, 0, "value", &err), PST_OK);
    assert_int_equal(sw.n_cols, 3);
    assert_int_equal(sw.cols[2], PST_SEQWIN_TARGET);
    pst_dataset_destroy(&d);
}

static void errors_name_the_column_and_part(void **state)
{
    (void)state;
    pst_dataset_t *d = series(), *w = NULL;
    pst_seqwin_t sw;
    pst_err_t err = {0};
    const char *cat[] = {"c"}, *missing[] = {"price"};
    assert_int_equal(pst_seqwin_init(&sw, d, 3, 1, cat, 1, "value", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "column 'c' is categorical"));
    assert_int_equal(pst_seqwin_init(&sw, d, 3, 1, missing, 1, "value", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "no column 'price'"));
    assert_int_equal(pst_seqwin_init(&sw, d, 3, 1, NULL, 0, "value", &err), PST_OK);
    /* 3 rows hold no window of 3 with a target 1 row later; 4 rows hold one */
    assert_int_equal(pst_seqwin_count(&sw, 3), 0);
    assert_int_equal(pst_seqwin_cut(&sw, d, 7, 3, "validation", &w, &err), PST_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err.msg, "the validation part has 3 rows"));
    assert_int_equal(pst_seqwin_count(&sw, 4), 1);
    pst_dataset_destroy(&d);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forecasting_windows),
        cmocka_unit_test(last_row_target_and_default_columns),
        cmocka_unit_test(errors_name_the_column_and_part),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
