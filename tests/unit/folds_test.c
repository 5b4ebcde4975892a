/* Tests for common/folds: k-fold partitions, stratification, groups, seeds; bootstrap; subsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/sample/folds.h"
#include "common/log.h"

static pst_dataset_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", PST_TEST_DATA, name);
    pst_data_spec_t spec = {.path = path, .target = "target"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    if (pst_data_load(&spec, &d, &err) != PST_OK)
        fail_msg("loading %s: %s", name, err.msg);
    return d;
}

/* A classification set whose class c has counts[c] rows, classes interleaved in row order. */
static pst_dataset_t *classes_set(const size_t *counts, int n_classes)
{
    size_t n = 0, left[64], i = 0;
    for (int c = 0; c < n_classes; c++)
        n += counts[c];
    pst_dataset_t *d = pst_dataset_new(n, 1, PST_TASK_CLASSIFICATION);
    d->n_classes = n_classes;
    memcpy(left, counts, (size_t)n_classes * sizeof *left);
    while (i < n)
        for (int c = 0; c < n_classes; c++)
            if (left[c] > 0) {
                left[c]--;
                d->x[i] = (float)i;
                d->y[i++] = (float)c;
            }
    return d;
}

static bool ascending(const size_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i - 1] >= v[i])
            return false;
    return true;
}

/* Each fold: train and test ascending, disjoint, together every row; each repeat: every row in
 * exactly one test fold. */
static void assert_partition(const pst_folds_t *f, size_t n, int k, int repeats)
{
    assert_int_equal(f->k, k);
    assert_int_equal(f->repeats, repeats);
    assert_int_equal(f->n_folds, k * repeats);
    assert_int_equal(f->n_rows, n);
    unsigned char *in_test = malloc(n), *mark = malloc(n);
    for (int r = 0; r < repeats; r++) {
        memset(in_test, 0, n);
        for (int j = 0; j < k; j++) {
            const pst_fold_t *fold = &f->fold[r * k + j];
            assert_int_equal(fold->n_train + fold->n_test, n);
            assert_true(fold->n_test > 0 && fold->n_train > 0);
            assert_true(ascending(fold->test, fold->n_test));
            assert_true(ascending(fold->train, fold->n_train));
            memset(mark, 0, n);
            for (size_t t = 0; t < fold->n_test; t++) {
                assert_true(fold->test[t] < n);
                mark[fold->test[t]] = 1;
                in_test[fold->test[t]]++;
            }
            for (size_t t = 0; t < fold->n_train; t++) {
                assert_true(fold->train[t] < n);
                assert_int_equal(mark[fold->train[t]], 0); /* disjoint */
                mark[fold->train[t]] = 2;
            }
            for (size_t i = 0; i < n; i++)
                assert_int_not_equal(mark[i], 0); /* union is every row */
        }
        for (size_t i = 0; i < n; i++)
            assert_int_equal(in_test[i], 1);
    }
    free(in_test);
    free(mark);
}

/* v is floor(total / k) or ceil(total / k): within one row of the ideal share. */
static void assert_share(size_t v, size_t total, int k, const char *what, int fold)
{
    size_t lo = total / (size_t)k, hi = lo + (total % (size_t)k != 0);
    if (v < lo || v > hi)
        fail_msg("%s, fold %d: %zu rows, ideal %.2f", what, fold, v, (double)total / k);
}

static void assert_stratified(const pst_dataset_t *d, const pst_folds_t *f)
{
    size_t total[64] = {0};
    for (size_t i = 0; i < d->n_rows; i++)
        total[(int)d->y[i]]++;
    for (int j = 0; j < f->n_folds; j++) {
        size_t in_fold[64] = {0};
        const pst_fold_t *fold = &f->fold[j];
        for (size_t t = 0; t < fold->n_test; t++)
            in_fold[(int)d->y[fold->test[t]]]++;
        for (int c = 0; c < d->n_classes; c++) {
            char what[32];
            snprintf(what, sizeof what, "class %d", c);
            assert_share(in_fold[c], total[c], f->k, what, j);
        }
        assert_share(fold->n_test, d->n_rows, f->k, "all classes", j);
    }
}

/* Test fold of every row in repeat r. */
static void fold_of_rows(const pst_folds_t *f, int r, int *fold_of)
{
    for (int j = 0; j < f->k; j++) {
        const pst_fold_t *fold = &f->fold[r * f->k + j];
        for (size_t t = 0; t < fold->n_test; t++)
            fold_of[fold->test[t]] = j;
    }
}

/* Whether two assignments are the same partition up to fold numbering. */
static bool same_partition(const int *a, const int *b, size_t n, int k)
{
    int map[64];
    for (int j = 0; j < k; j++)
        map[j] = -1;
    for (size_t i = 0; i < n; i++) {
        if (map[a[i]] == -1)
            map[a[i]] = b[i];
        if (map[a[i]] != b[i])
            return false;
    }
    return true;
}

static bool repeats_differ(const pst_folds_t *f, int r1, int r2)
{
    int *a = malloc(f->n_rows * sizeof *a), *b = malloc(f->n_rows * sizeof *b);
    fold_of_rows(f, r1, a);
    fold_of_rows(f, r2, b);
    bool differ = !same_partition(a, b, f->n_rows, f->k);
    free(a);
    free(b);
    return differ;
}

static void stratified_real_csvs(void **state)
{
    static const char *names[] = {"iris.csv", "wine.csv", "breast_cancer.csv", "digits.csv"};
    for (size_t t = 0; t < 4; t++) {
        pst_dataset_t *d = load(names[t]);
        pst_folds_t f;
        pst_err_t err = {0};
        assert_int_equal(pst_kfold(d, 5, true, 3, 42, NULL, &f, &err), PST_OK);
        assert_partition(&f, d->n_rows, 5, 3);
        assert_stratified(d, &f);
        assert_true(repeats_differ(&f, 0, 1));
        assert_true(repeats_differ(&f, 1, 2));
        pst_folds_fini(&f);
        pst_dataset_destroy(&d);
    }
}

static void iris_exact_class_counts(void **state)
{
    pst_dataset_t *d = load("iris.csv");
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 5, true, 1, 7, NULL, &f, NULL), PST_OK);
    for (int j = 0; j < 5; j++) {
        int per_class[3] = {0};
        assert_int_equal(f.fold[j].n_test, 30);
        assert_int_equal(f.fold[j].n_train, 120);
        for (size_t t = 0; t < 30; t++)
            per_class[(int)d->y[f.fold[j].test[t]]]++;
        for (int c = 0; c < 3; c++)
            assert_int_equal(per_class[c], 10);
    }
    pst_folds_fini(&f);
    /* plain folds of the same rows do not keep the ratio exactly */
    assert_int_equal(pst_kfold(d, 5, false, 1, 7, NULL, &f, NULL), PST_OK);
    assert_partition(&f, 150, 5, 1);
    bool all_ten = true;
    for (int j = 0; j < 5; j++) {
        int per_class[3] = {0};
        for (size_t t = 0; t < f.fold[j].n_test; t++)
            per_class[(int)d->y[f.fold[j].test[t]]]++;
        all_ten = all_ten && per_class[0] == 10 && per_class[1] == 10 && per_class[2] == 10;
    }
    assert_false(all_ten);
    pst_folds_fini(&f);
    pst_folds_fini(&f);
    pst_dataset_destroy(&d);
}

static void stratified_uneven_classes(void **state)
{
    static const size_t counts[7] = {1, 2, 3, 10, 33, 59, 100};
    pst_dataset_t *d = classes_set(counts, 7);
    pst_log_set_level(PST_LOG_ERROR); /* classes 0..2 have fewer rows than folds: a warning */
    for (int k = 2; k <= 11; k += 3) {
        pst_folds_t f;
        assert_int_equal(pst_kfold(d, k, true, 2, (uint64_t)k, NULL, &f, NULL), PST_OK);
        assert_partition(&f, d->n_rows, k, 2);
        assert_stratified(d, &f);
        pst_folds_fini(&f);
    }
    pst_log_set_level(PST_LOG_INFO);
    pst_dataset_destroy(&d);
}

static void plain_regression_sizes(void **state)
{
    pst_dataset_t *d = load("diabetes.csv");
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_int_equal(d->n_rows, 442);
    pst_folds_t f, g;
    assert_int_equal(pst_kfold(d, 5, false, 2, 3, NULL, &f, NULL), PST_OK);
    assert_partition(&f, 442, 5, 2);
    for (int r = 0; r < 2; r++) {
        size_t n89 = 0;
        for (int j = 0; j < 5; j++) {
            size_t n_test = f.fold[r * 5 + j].n_test;
            assert_true(n_test == 88 || n_test == 89);
            n89 += n_test == 89;
        }
        assert_int_equal(n89, 2); /* 442 = 2 * 89 + 3 * 88 */
    }
    /* stratified means nothing for regression: the same folds as plain */
    assert_int_equal(pst_kfold(d, 5, true, 2, 3, NULL, &g, NULL), PST_OK);
    assert_memory_equal(f.arena, g.arena, 10 * 442 * sizeof *f.arena);
    pst_folds_fini(&f);
    pst_folds_fini(&g);
    pst_dataset_destroy(&d);
}

static void seeds_and_repeats(void **state)
{
    pst_dataset_t *d = load("wine.csv");
    pst_folds_t a, b, c;
    assert_int_equal(pst_kfold(d, 4, true, 3, 11, NULL, &a, NULL), PST_OK);
    assert_int_equal(pst_kfold(d, 4, true, 3, 11, NULL, &b, NULL), PST_OK);
    assert_int_equal(pst_kfold(d, 4, true, 3, 12, NULL, &c, NULL), PST_OK);
    for (int j = 0; j < 12; j++) {
        assert_int_equal(a.fold[j].n_test, b.fold[j].n_test);
        assert_memory_equal(a.fold[j].test, b.fold[j].test, a.fold[j].n_test * sizeof(size_t));
        assert_memory_equal(a.fold[j].train, b.fold[j].train, a.fold[j].n_train * sizeof(size_t));
    }
    int *fa = malloc(d->n_rows * sizeof *fa), *fc = malloc(d->n_rows * sizeof *fc);
    fold_of_rows(&a, 0, fa);
    fold_of_rows(&c, 0, fc);
    assert_false(same_partition(fa, fc, d->n_rows, 4));
    assert_true(repeats_differ(&a, 0, 1));
    assert_true(repeats_differ(&a, 0, 2));
    /* the first repeat does not depend on how many repeats follow */
    pst_folds_t one;
    assert_int_equal(pst_kfold(d, 4, true, 1, 11, NULL, &one, NULL), PST_OK);
    assert_memory_equal(one.arena, a.arena, 4 * d->n_rows * sizeof *one.arena);
    free(fa);
    free(fc);
    pst_folds_fini(&a);
    pst_folds_fini(&b);
    pst_folds_fini(&c);
    pst_folds_fini(&one);
    pst_dataset_destroy(&d);
}

/* No group has rows in two test folds of one repeat. */
static void assert_groups_whole(const pst_folds_t *f, const int64_t *groups)
{
    int *fold_of = malloc(f->n_rows * sizeof *fold_of);
    for (int r = 0; r < f->repeats; r++) {
        fold_of_rows(f, r, fold_of);
        for (size_t i = 0; i < f->n_rows; i++)
            for (size_t j = i + 1; j < f->n_rows; j++)
                if (groups[i] == groups[j] && fold_of[i] != fold_of[j])
                    fail_msg("repeat %d: group %lld split over folds %d and %d", r,
                             (long long)groups[i], fold_of[i], fold_of[j]);
    }
    free(fold_of);
}

static void groups_greedy_by_hand(void **state)
{
    /* group sizes 5, 4, 3, 3, 2, 1 with odd ids, rows interleaved; largest first into the
     * smallest fold: 5 | 4 | 3, then 3 -> the 3-fold (6), 2 -> the 4-fold (6), 1 -> the 5-fold */
    static const int64_t ids[6] = {-9, 1000000000000LL, 7, 3, -1, 42};
    static const size_t sizes[6] = {5, 4, 3, 3, 2, 1};
    int64_t groups[18];
    size_t left[6], i = 0;
    memcpy(left, sizes, sizeof left);
    while (i < 18)
        for (int g = 0; g < 6; g++)
            if (left[g] > 0) {
                left[g]--;
                groups[i++] = ids[g];
            }
    pst_dataset_t *d = pst_dataset_new(18, 1, PST_TASK_REGRESSION);
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 3, false, 4, 5, groups, &f, NULL), PST_OK);
    assert_partition(&f, 18, 3, 4);
    assert_groups_whole(&f, groups);
    for (int j = 0; j < 12; j++)
        assert_int_equal(f.fold[j].n_test, 6);
    /* the 5-group and the 1-group share a fold in every repeat */
    int fold_of[18];
    for (int r = 0; r < 4; r++) {
        fold_of_rows(&f, r, fold_of);
        assert_int_equal(fold_of[0], fold_of[5]); /* row 0 is group -9, row 5 group 42 */
    }
    pst_folds_fini(&f);
    pst_dataset_destroy(&d);
}

static void groups_real_data(void **state)
{
    pst_dataset_t *d = load("breast_cancer.csv");
    int64_t *groups = malloc(d->n_rows * sizeof *groups);
    size_t block = 0, used = 0;
    for (size_t i = 0; i < d->n_rows; i++) { /* pseudo-patients of 1..13 rows, scattered */
        if (used == 1 + block % 13) {
            block++;
            used = 0;
        }
        groups[(i * 7919) % d->n_rows] = (int64_t)block * 1000 - 500;
        used++;
    }
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 5, false, 2, 9, groups, &f, NULL), PST_OK);
    assert_partition(&f, d->n_rows, 5, 2);
    assert_groups_whole(&f, groups);
    for (int r = 0; r < 2; r++) { /* greedy balance: folds within the largest group's size */
        size_t lo = SIZE_MAX, hi = 0;
        for (int j = 0; j < 5; j++) {
            size_t n_test = f.fold[r * 5 + j].n_test;
            lo = n_test < lo ? n_test : lo;
            hi = n_test > hi ? n_test : hi;
        }
        assert_true(hi - lo <= 13);
    }
    pst_folds_fini(&f);
    free(groups);
    pst_dataset_destroy(&d);
}

static void groups_equal_sizes_repeats_differ(void **state)
{
    pst_dataset_t *d = pst_dataset_new(150, 1, PST_TASK_REGRESSION);
    int64_t groups[150];
    for (int i = 0; i < 150; i++)
        groups[i] = i % 30; /* 30 groups of 5 rows */
    pst_folds_t f;
    assert_int_equal(pst_kfold(d, 5, false, 3, 1, groups, &f, NULL), PST_OK);
    assert_partition(&f, 150, 5, 3);
    assert_groups_whole(&f, groups);
    for (int j = 0; j < 15; j++)
        assert_int_equal(f.fold[j].n_test, 30);
    assert_true(repeats_differ(&f, 0, 1));
    assert_true(repeats_differ(&f, 1, 2));
    pst_folds_fini(&f);
    pst_dataset_destroy(&d);
}

static void kfold_errors(void **state)
{
    static const size_t counts[3] = {4, 4, 4};
    pst_dataset_t *d = classes_set(counts, 3);
    int64_t groups[12] = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
    pst_folds_t f;
    pst_err_t err = {0};
    assert_int_equal(pst_kfold(d, 1, false, 1, 0, NULL, &f, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "k = 1"));
    assert_null(f.fold);
    assert_int_equal(pst_kfold(d, 13, false, 1, 0, NULL, &f, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "12 rows"));
    assert_int_equal(pst_kfold(d, 12, false, 1, 0, NULL, &f, &err), PST_OK); /* leave-one-out */
    assert_partition(&f, 12, 12, 1);
    pst_folds_fini(&f);
    assert_int_equal(pst_kfold(d, 3, false, 0, 0, NULL, &f, &err), PST_EINVAL);
    assert_int_equal(pst_kfold(d, 4, false, 1, 0, groups, &f, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "3 distinct groups"));
    assert_null(f.fold);
    assert_int_equal(pst_kfold(d, 3, true, 1, 0, groups, &f, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "groups"));
    assert_int_equal(pst_kfold(d, 3, false, 1, 0, groups, &f, &err), PST_OK);
    assert_partition(&f, 12, 3, 1);
    pst_folds_fini(&f);
    d->y[5] = 3.0f; /* not a class index */
    assert_int_equal(pst_kfold(d, 3, true, 1, 0, NULL, &f, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "k-fold"));
    assert_null(f.fold);
    d->y[5] = 0.5f;
    assert_int_equal(pst_kfold(d, 3, true, 1, 0, NULL, &f, &err), PST_ERANGE);
    pst_dataset_destroy(&d);
}

/* ---- bootstrap ---- */

static void bootstrap_bookkeeping(void **state)
{
    pst_bootstrap_t b;
    pst_err_t err = {0};
    assert_int_equal(pst_bootstrap(1000, 1.0, 3, &b, &err), PST_OK);
    assert_int_equal(b.n_sample, 1000);
    assert_int_equal(b.n_rows, 1000);
    uint32_t seen[1000] = {0};
    for (size_t s = 0; s < b.n_sample; s++) {
        assert_true(b.sample[s] < 1000);
        seen[b.sample[s]]++;
    }
    size_t sum = 0, drawn = 0;
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(seen[i], b.counts[i]);
        sum += b.counts[i];
        drawn += b.counts[i] > 0;
    }
    assert_int_equal(sum, b.n_sample);
    assert_int_equal(drawn + b.n_oob, 1000); /* sampled and OOB cover every row */
    assert_true(ascending(b.oob, b.n_oob));
    size_t at = 0;
    for (size_t i = 0; i < 1000; i++) /* OOB is exactly the rows drawn zero times */
        if (b.counts[i] == 0)
            assert_int_equal(b.oob[at++], i);
    assert_int_equal(at, b.n_oob);
    /* draw order is not sorted */
    assert_false(ascending(b.sample, b.n_sample));
    pst_bootstrap_fini(&b);
    pst_bootstrap_fini(&b);
    assert_null(b.sample);
}

static void bootstrap_oob_fraction(void **state)
{
    const size_t n = 200000;
    static const double fracs[2] = {1.0, 0.5};
    for (int t = 0; t < 2; t++) {
        pst_bootstrap_t b;
        assert_int_equal(pst_bootstrap(n, fracs[t], 100 + (uint64_t)t, &b, NULL), PST_OK);
        assert_int_equal(b.n_sample, (size_t)(fracs[t] * (double)n));
        /* P(row never drawn) = (1 - 1/n)^m ~ e^-(m/n); sd of the fraction is about 0.0011 */
        double expect = pow(1.0 - 1.0 / (double)n, (double)b.n_sample);
        assert_true(fabs(expect - exp(-fracs[t])) < 1e-5);
        double got = (double)b.n_oob / (double)n;
        if (fabs(got - expect) > 0.006)
            fail_msg("max_samples %g: OOB fraction %.4f, expected %.4f", fracs[t], got, expect);
        pst_bootstrap_fini(&b);
    }
}

static void bootstrap_sizes_seeds_errors(void **state)
{
    pst_bootstrap_t a, b;
    pst_err_t err = {0};
    assert_int_equal(pst_bootstrap(10, 0.25, 1, &a, NULL), PST_OK); /* round(2.5) = 3 */
    assert_int_equal(a.n_sample, 3);
    pst_bootstrap_fini(&a);
    assert_int_equal(pst_bootstrap(7, 0.5, 1, &a, NULL), PST_OK); /* round(3.5) = 4 */
    assert_int_equal(a.n_sample, 4);
    pst_bootstrap_fini(&a);
    assert_int_equal(pst_bootstrap(1, 1.0, 1, &a, NULL), PST_OK);
    assert_int_equal(a.sample[0], 0);
    assert_int_equal(a.counts[0], 1);
    assert_int_equal(a.n_oob, 0);
    assert_null(a.oob);
    pst_bootstrap_fini(&a);

    assert_int_equal(pst_bootstrap(500, 0.8, 21, &a, NULL), PST_OK);
    assert_int_equal(pst_bootstrap(500, 0.8, 21, &b, NULL), PST_OK);
    assert_memory_equal(a.sample, b.sample, 400 * sizeof *a.sample);
    pst_bootstrap_fini(&b);
    assert_int_equal(pst_bootstrap(500, 0.8, 22, &b, NULL), PST_OK);
    assert_memory_not_equal(a.sample, b.sample, 400 * sizeof *a.sample);
    pst_bootstrap_fini(&a);
    pst_bootstrap_fini(&b);

    assert_int_equal(pst_bootstrap(3, 0.1, 1, &a, &err), PST_EINVAL); /* round(0.3) = 0 */
    assert_non_null(strstr(err.msg, "no rows"));
    assert_null(a.sample);
    assert_int_equal(pst_bootstrap(0, 1.0, 1, &a, &err), PST_EINVAL);
    assert_int_equal(pst_bootstrap(10, 0.0, 1, &a, &err), PST_EINVAL);
    assert_int_equal(pst_bootstrap(10, 1.5, 1, &a, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "(0, 1]"));
    assert_int_equal(pst_bootstrap(10, NAN, 1, &a, &err), PST_EINVAL);
}

/* ---- feature subsets ---- */

static void feature_subsets(void **state)
{
    size_t *cols = NULL, n_cols = 0;
    pst_err_t err = {0};
    assert_int_equal(pst_feature_subset(20, 0.3, 5, &cols, &n_cols, &err), PST_OK);
    assert_int_equal(n_cols, 6);
    assert_true(ascending(cols, n_cols)); /* sorted and unique */
    assert_true(cols[n_cols - 1] < 20);
    size_t *again = NULL, n_again = 0;
    assert_int_equal(pst_feature_subset(20, 0.3, 5, &again, &n_again, NULL), PST_OK);
    assert_memory_equal(cols, again, 6 * sizeof *cols);
    free(again);
    free(cols);

    assert_int_equal(pst_feature_subset(20, 1.0, 5, &cols, &n_cols, NULL), PST_OK);
    assert_int_equal(n_cols, 20);
    for (size_t j = 0; j < 20; j++)
        assert_int_equal(cols[j], j);
    free(cols);
    assert_int_equal(pst_feature_subset(20, 0.01, 5, &cols, &n_cols, NULL), PST_OK);
    assert_int_equal(n_cols, 1); /* at least one column */
    assert_true(cols[0] < 20);
    free(cols);
    assert_int_equal(pst_feature_subset(7, 0.5, 5, &cols, &n_cols, NULL), PST_OK);
    assert_int_equal(n_cols, 4); /* round(3.5) */
    free(cols);

    assert_int_equal(pst_feature_subset(0, 0.5, 5, &cols, &n_cols, &err), PST_EINVAL);
    assert_int_equal(pst_feature_subset(10, 0.0, 5, &cols, &n_cols, &err), PST_EINVAL);
    assert_int_equal(pst_feature_subset(10, 1.01, 5, &cols, &n_cols, &err), PST_EINVAL);
}

static void feature_subsets_uniform(void **state)
{
    /* 3 of 10 columns over 4000 seeds: each column in about 30% of subsets (sd 0.0072) */
    size_t hits[10] = {0}, differ = 0, prev[3] = {0};
    for (uint64_t seed = 0; seed < 4000; seed++) {
        size_t *cols = NULL, n_cols = 0;
        assert_int_equal(pst_feature_subset(10, 0.3, seed, &cols, &n_cols, NULL), PST_OK);
        assert_int_equal(n_cols, 3);
        assert_true(ascending(cols, 3));
        for (size_t j = 0; j < 3; j++)
            hits[cols[j]]++;
        differ += memcmp(prev, cols, sizeof prev) != 0;
        memcpy(prev, cols, sizeof prev);
        free(cols);
    }
    for (int j = 0; j < 10; j++)
        if (fabs((double)hits[j] / 4000.0 - 0.3) > 0.03)
            fail_msg("column %d chosen in %zu of 4000 subsets", j, hits[j]);
    assert_true(differ > 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stratified_real_csvs),
        cmocka_unit_test(iris_exact_class_counts),
        cmocka_unit_test(stratified_uneven_classes),
        cmocka_unit_test(plain_regression_sizes),
        cmocka_unit_test(seeds_and_repeats),
        cmocka_unit_test(groups_greedy_by_hand),
        cmocka_unit_test(groups_real_data),
        cmocka_unit_test(groups_equal_sizes_repeats_differ),
        cmocka_unit_test(kfold_errors),
        cmocka_unit_test(bootstrap_bookkeeping),
        cmocka_unit_test(bootstrap_oob_fraction),
        cmocka_unit_test(bootstrap_sizes_seeds_errors),
        cmocka_unit_test(feature_subsets),
        cmocka_unit_test(feature_subsets_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
