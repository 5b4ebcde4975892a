/* Tests for common/preprocess: hand-computed statistics, train-only fitting, imputation,
 * scaling, finiteness checks and duplicate removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/data/preprocess.h"
#include "common/rng.h"

static pst_dataset_t *make(size_t rows, size_t cols, const float *x, const float *y)
{
    pst_dataset_t *d = pst_dataset_new(rows, cols, PST_TASK_CLASSIFICATION);
    assert_non_null(d);
    memcpy(d->x, x, rows * cols * sizeof *x);
    if (y)
        memcpy(d->y, y, rows * sizeof *y);
    return d;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.9g, want %.9g", got, want);
}

/* The 4-row training matrix: an increasing column, one with a gap, a constant one. */
static const float train_x[12] = {
    1, 1,   5, /* */
    2, NAN, 5, /* */
    3, 3,   5, /* */
    4, 8,   5,
};

static void standard_scaler_uses_train_statistics(void **state)
{
    pst_dataset_t *train = make(4, 3, train_x, NULL);
    static const float val_x[6] = {5, NAN, 7, 0, 2, 5};
    pst_dataset_t *val = make(2, 3, val_x, NULL);
    pst_preproc_opts_t opts = {.scaler = PST_SCALER_STANDARD, .impute = PST_IMPUTE_MEAN};
    pst_preproc_t *p = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_fit(train, &opts, &p, &err), PST_OK);
    /* numpy: mean and population std of [1,2,3,4] and of the imputed [1,4,3,8] */
    assert_close(p->shift[0], 2.5, 1e-6);
    assert_close(p->scale[0], 0.8944271909999159, 1e-6);
    assert_close(p->fill[1], 4.0, 1e-6);
    assert_close(p->shift[1], 4.0, 1e-6);
    assert_close(p->scale[1], 0.3922322702763681, 1e-6);
    assert_close(p->scale[2], 1.0, 0); /* constant column: no division by zero */
    assert_int_equal(pst_preproc_apply(p, train, &err), PST_OK);
    for (size_t j = 0; j < 3; j++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < 4; i++) {
            sum += train->x[i * 3 + j];
            sq += train->x[i * 3 + j] * train->x[i * 3 + j];
        }
        assert_close(sum / 4, 0.0, 1e-6);
        assert_close(sqrt(sq / 4), j == 2 ? 0.0 : 1.0, 1e-6);
    }
    assert_int_equal(pst_preproc_apply(p, val, &err), PST_OK);
    static const double want[6] = {2.23606797749979,    0.0, 2.0, -2.23606797749979,
                                   -0.7844645405527362, 0.0};
    for (int k = 0; k < 6; k++)
        assert_close(val->x[k], want[k], 1e-6);
    assert_int_equal(pst_preproc_check_finite(val, &err), PST_OK);
    pst_preproc_destroy(&p);
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

/* Fill value for one column x[0..n) under the given strategy, scaler none. */
static float fill_for(const float *x, size_t n, pst_impute_t impute)
{
    pst_dataset_t *d = make(n, 1, x, NULL);
    pst_preproc_opts_t opts = {.impute = impute};
    pst_preproc_t *p = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_fit(d, &opts, &p, &err), PST_OK);
    float fill = p->fill[0];
    assert_true(p->shift[0] == 0 && p->scale[0] == 1);
    assert_int_equal(pst_preproc_apply(p, d, &err), PST_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(d->x[i] == (isnan(x[i]) ? fill : x[i]));
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&d);
    return fill;
}

static void imputation_mean_median_mode(void **state)
{
    static const float odd[4] = {1, NAN, 3, 8};
    assert_close(fill_for(odd, 4, PST_IMPUTE_MEAN), 4.0, 1e-6);
    assert_close(fill_for(odd, 4, PST_IMPUTE_MEDIAN), 3.0, 0);
    assert_close(fill_for(odd, 4, PST_IMPUTE_MOST_FREQUENT), 1.0, 0); /* tie: smallest */
    static const float even[5] = {20, 1, NAN, 10, 2};
    assert_close(fill_for(even, 5, PST_IMPUTE_MEDIAN), 6.0, 0);
    assert_close(fill_for(even, 5, PST_IMPUTE_MEAN), 8.25, 1e-6);
    static const float modes[7] = {7, 2, 7, NAN, 2, 9, 7};
    assert_close(fill_for(modes, 7, PST_IMPUTE_MOST_FREQUENT), 7.0, 0);
    static const float tie[6] = {7, 2, 7, NAN, 2, 9};
    assert_close(fill_for(tie, 6, PST_IMPUTE_MOST_FREQUENT), 2.0, 0);
    static const float none[2] = {NAN, NAN};
    assert_close(fill_for(none, 2, PST_IMPUTE_MEDIAN), 0.0, 0);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void median_matches_sorting(void **state)
{
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    for (size_t n = 1; n < 300; n += 7) {
        float *x = malloc(n * sizeof *x), *sorted = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)pst_rng_below(&rng, 1 + n / 3); /* many repeats */
        memcpy(sorted, x, n * sizeof *x);
        qsort(sorted, n, sizeof *sorted, cmp_float);
        double want = n % 2 ? sorted[n / 2] : 0.5 * ((double)sorted[n / 2 - 1] + sorted[n / 2]);
        pst_dataset_t *d = make(n, 1, x, NULL);
        pst_preproc_opts_t opts = {.impute = PST_IMPUTE_MEDIAN};
        pst_preproc_t *p = NULL;
        assert_int_equal(pst_preproc_fit(d, &opts, &p, NULL), PST_OK);
        assert_close(p->fill[0], want, 0);
        pst_preproc_destroy(&p);
        pst_dataset_destroy(&d);
        free(x);
        free(sorted);
    }
}

static void minmax_to_unit_interval(void **state)
{
    pst_dataset_t *train = make(4, 3, train_x, NULL);
    pst_preproc_opts_t opts = {.scaler = PST_SCALER_MINMAX, .impute = PST_IMPUTE_MEAN};
    pst_preproc_t *p = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_fit(train, &opts, &p, &err), PST_OK);
    assert_int_equal(pst_preproc_apply(p, train, &err), PST_OK);
    static const double want[12] = {0, 0, 0, 1.0 / 3, 3.0 / 7, 0, 2.0 / 3, 2.0 / 7, 0, 1, 1, 0};
    for (int k = 0; k < 12; k++) {
        assert_close(train->x[k], want[k], 1e-6);
        assert_true(train->x[k] >= 0 && train->x[k] <= 1);
    }
    static const float val_x[3] = {10, 0, 6};
    pst_dataset_t *val = make(1, 3, val_x, NULL);
    assert_int_equal(pst_preproc_apply(p, val, &err), PST_OK);
    assert_close(val->x[0], 3.0, 1e-6); /* (10 - 1) / 3: outside [0,1] is the val set's business */
    assert_close(val->x[1], -1.0 / 7, 1e-6);
    assert_close(val->x[2], 1.0, 1e-6);
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&train);
    pst_dataset_destroy(&val);
}

static void pixel_scaling_first(void **state)
{
    static const float x[6] = {0, 255, 51, 102, NAN, 0};
    pst_dataset_t *d = make(3, 2, x, NULL);
    pst_preproc_opts_t opts = {.pixel_scale = true, .impute = PST_IMPUTE_MEAN};
    pst_preproc_t *p = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_fit(d, &opts, &p, &err), PST_OK);
    assert_close(p->pixel_scale, 1.0 / 255, 1e-9);
    assert_close(p->fill[0], 0.1, 1e-6); /* mean of 0 and 0.2 in scaled units */
    assert_int_equal(pst_preproc_apply(p, d, &err), PST_OK);
    static const double want[6] = {0, 1, 0.2, 0.4, 0.1, 0};
    for (int k = 0; k < 6; k++)
        assert_close(d->x[k], want[k], 1e-6);
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&d);
}

static void real_images_standardised(void **state)
{
    pst_data_spec_t spec = {.path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
    pst_preproc_opts_t opts = {.pixel_scale = true, .scaler = PST_SCALER_STANDARD};
    pst_preproc_t *p = NULL;
    assert_int_equal(pst_preproc_fit(d, &opts, &p, &err), PST_OK);
    assert_int_equal(pst_preproc_apply(p, d, &err), PST_OK);
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_OK);
    for (size_t j = 0; j < d->n_features; j += 97) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < d->n_rows; i++) {
            double v = d->x[i * d->n_features + j];
            sum += v;
            sq += v * v;
        }
        double mean = sum / (double)d->n_rows;
        assert_close(mean, 0.0, 1e-4);
        assert_close(sqrt(sq / (double)d->n_rows - mean * mean), 1.0, 1e-3);
    }
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&d);
}

static void non_finite_values_are_reported(void **state)
{
    static const float x[6] = {1, 2, 3, NAN, 5, 6};
    pst_dataset_t *d = make(3, 2, x, NULL);
    d->feature_names = calloc(2, sizeof *d->feature_names);
    d->feature_names[0] = strdup("width");
    d->feature_names[1] = strdup("height");
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 2, column 2 'height'"));
    d->x[3] = 4;
    d->y[2] = INFINITY;
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 3: non-finite target"));
    d->y[2] = 0;
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_OK);
    /* a transform that overflows float is caught by apply itself */
    pst_preproc_t *p = pst_preproc_new(2);
    p->scale[0] = 3e38f;
    assert_int_equal(pst_preproc_apply(p, d, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 2, column 1 'width'"));
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_ENUMERIC);
    pst_preproc_destroy(&p);
    /* wrong width and sparse input are refused */
    p = pst_preproc_new(3);
    assert_int_equal(pst_preproc_apply(p, d, &err), PST_EINVAL);
    pst_preproc_destroy(&p);
    pst_dataset_destroy(&d);
}

static void duplicates_dropped_keeping_first(void **state)
{
    static const float x[16] = {
        1,   2,     /* kept */
        3,   4,     /* kept */
        1,   2,     /* duplicate of row 0 */
        1,   2,     /* same features, other label: kept */
        NAN, 0,     /* kept */
        NAN, -0.0f, /* duplicate: NaN equals NaN, -0 equals 0 */
        3,   4,     /* duplicate of row 1 */
        4,   3,     /* kept */
    };
    static const float y[8] = {0, 1, 0, 1, 0, 0, 1, 1};
    pst_dataset_t *d = make(8, 2, x, y);
    size_t dropped = 0;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_drop_duplicates(d, &dropped, &err), PST_OK);
    assert_int_equal(dropped, 3);
    assert_int_equal(d->n_rows, 5);
    static const float want_x[10] = {1, 2, 3, 4, 1, 2, NAN, 0, 4, 3};
    static const float want_y[5] = {0, 1, 1, 0, 1};
    for (int k = 0; k < 10; k++)
        assert_true(d->x[k] == want_x[k] || (isnan(d->x[k]) && isnan(want_x[k])));
    assert_memory_equal(d->y, want_y, sizeof want_y);
    assert_int_equal(pst_preproc_drop_duplicates(d, &dropped, &err), PST_OK);
    assert_int_equal(dropped, 0);
    pst_dataset_destroy(&d);
}

/* Kept rows by brute force: row i survives if no earlier row equals it. */
static size_t naive_unique(const float *x, const float *y, size_t n, size_t w)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = y[k] == y[i] && memcmp(x + k * w, x + i * w, w * sizeof *x) == 0;
        kept += !dup;
    }
    return kept;
}

static void duplicates_match_brute_force(void **state)
{
    enum { N = 3000, W = 3 };
    float *x = malloc(N * W * sizeof *x), y[N];
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < W; j++)
            x[i * W + j] = (float)pst_rng_below(&rng, 4);
        y[i] = (float)pst_rng_below(&rng, 3);
    }
    size_t want = naive_unique(x, y, N, W);
    assert_true(want < N && want > 100);
    pst_dataset_t *d = make(N, W, x, y);
    size_t dropped;
    assert_int_equal(pst_preproc_drop_duplicates(d, &dropped, NULL), PST_OK);
    assert_int_equal(d->n_rows, want);
    assert_int_equal(dropped, N - want);
    assert_int_equal(naive_unique(d->x, d->y, d->n_rows, W), want); /* all distinct now */
    free(x);
    pst_dataset_destroy(&d);
}

static void sparse_duplicates(void **state)
{
    /* rows: {0:1}, {2:5}, {0:1} dup, {0:1, 2:5}, {2:5} dup, {} , {} dup */
    pst_dataset_t *d = pst_dataset_new(7, 0, PST_TASK_REGRESSION);
    free(d->x);
    d->x = NULL;
    d->n_features = 3;
    static const size_t row_ptr[8] = {0, 1, 2, 3, 5, 6, 6, 6};
    static const uint32_t cols[6] = {0, 2, 0, 0, 2, 2};
    static const float vals[6] = {1, 5, 1, 1, 5, 5};
    d->row_ptr = malloc(sizeof row_ptr);
    d->col_idx = malloc(sizeof cols);
    d->val = malloc(sizeof vals);
    memcpy(d->row_ptr, row_ptr, sizeof row_ptr);
    memcpy(d->col_idx, cols, sizeof cols);
    memcpy(d->val, vals, sizeof vals);
    size_t dropped;
    assert_int_equal(pst_preproc_drop_duplicates(d, &dropped, NULL), PST_OK);
    assert_int_equal(dropped, 3);
    assert_int_equal(d->n_rows, 4);
    static const size_t want_ptr[5] = {0, 1, 2, 4, 4};
    static const uint32_t want_cols[4] = {0, 2, 0, 2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(d->row_ptr[i], want_ptr[i]);
    for (int k = 0; k < 4; k++)
        assert_int_equal(d->col_idx[k], want_cols[k]);
    d->val[1] = NAN;
    pst_err_t err = {0};
    assert_int_equal(pst_preproc_check_finite(d, &err), PST_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 2, column 3"));
    pst_preproc_opts_t opts = {0};
    pst_preproc_t *p = NULL;
    assert_int_equal(pst_preproc_fit(d, &opts, &p, &err), PST_EINVAL);
    pst_dataset_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(standard_scaler_uses_train_statistics),
        cmocka_unit_test(imputation_mean_median_mode),
        cmocka_unit_test(median_matches_sorting),
        cmocka_unit_test(minmax_to_unit_interval),
        cmocka_unit_test(pixel_scaling_first),
        cmocka_unit_test(real_images_standardised),
        cmocka_unit_test(non_finite_values_are_reported),
        cmocka_unit_test(duplicates_dropped_keeping_first),
        cmocka_unit_test(duplicates_match_brute_force),
        cmocka_unit_test(sparse_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
