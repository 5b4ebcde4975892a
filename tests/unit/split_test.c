/* Tests for common/split: partition property, sizes, stratified ratios, seeds, worker strides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/rng.h"
#include "common/sample/split.h"

/* A classification set whose class c has counts[c] rows, classes interleaved in row order. */
static pst_dataset_t *classes_set(const size_t *counts, int n_classes)
{
    size_t n = 0;
    for (int c = 0; c < n_classes; c++)
        n += counts[c];
    pst_dataset_t *d = pst_dataset_new(n, 1, PST_TASK_CLASSIFICATION);
    d->n_classes = n_classes;
    size_t left[64], i = 0;
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

/* Every row in exactly one part, indices in range. */
static void assert_partition(const pst_split_t *s, size_t n)
{
    assert_int_equal(s->n_train + s->n_val + s->n_test, n);
    unsigned char *seen = calloc(n, 1);
    const size_t *parts[3] = {s->train, s->val, s->test};
    const size_t counts[3] = {s->n_train, s->n_val, s->n_test};
    for (int p = 0; p < 3; p++) {
        if (counts[p] == 0)
            assert_null(parts[p]);
        for (size_t k = 0; k < counts[p]; k++) {
            assert_true(parts[p][k] < n);
            assert_int_equal(seen[parts[p][k]]++, 0);
        }
    }
    free(seen);
}

/* |count of class c in part - frac * class size| <= 1 for every class and part. */
static void assert_stratified(const pst_dataset_t *d, const pst_split_t *s, const double frac[3])
{
    const size_t *parts[3] = {s->train, s->val, s->test};
    const size_t counts[3] = {s->n_train, s->n_val, s->n_test};
    for (int c = 0; c < d->n_classes; c++) {
        size_t total = 0;
        for (size_t i = 0; i < d->n_rows; i++)
            total += d->y[i] == c;
        for (int p = 0; p < 3; p++) {
            size_t in_part = 0;
            for (size_t k = 0; k < counts[p]; k++)
                in_part += d->y[parts[p][k]] == c;
            double want = frac[p] * (double)total;
            if (fabs((double)in_part - want) > 1.0)
                fail_msg("class %d part %d: %zu rows, want %.2f", c, p, in_part, want);
        }
    }
}

static void iris_seventy_twenty_ten(void **state)
{
    pst_data_spec_t spec = {.path = PST_TEST_DATA "/iris.csv", .target = "target"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
    pst_split_t s;
    assert_int_equal(pst_split_three(d, 0.7, 0.2, 0.1, true, 42, &s, &err), PST_OK);
    assert_partition(&s, 150);
    assert_int_equal(s.n_train, 105);
    assert_int_equal(s.n_val, 30);
    assert_int_equal(s.n_test, 15);
    /* 50 rows per class: exactly 35 / 10 / 5 each */
    int per_class[3][3] = {{0}};
    const size_t *parts[3] = {s.train, s.val, s.test};
    const size_t counts[3] = {s.n_train, s.n_val, s.n_test};
    for (int p = 0; p < 3; p++)
        for (size_t k = 0; k < counts[p]; k++)
            per_class[p][(int)d->y[parts[p][k]]]++;
    for (int c = 0; c < 3; c++) {
        assert_int_equal(per_class[0][c], 35);
        assert_int_equal(per_class[1][c], 10);
        assert_int_equal(per_class[2][c], 5);
    }
    /* the parts come shuffled, not grouped by class (iris is sorted by class) */
    bool sorted = true;
    for (size_t k = 1; k < s.n_train; k++)
        sorted = sorted && s.train[k - 1] < s.train[k];
    assert_false(sorted);
    assert_true(d->y[s.train[0]] != d->y[s.train[1]] || d->y[s.train[1]] != d->y[s.train[2]] ||
                d->y[s.train[2]] != d->y[s.train[3]]);
    pst_split_fini(&s);
    pst_split_fini(&s);
    pst_dataset_destroy(&d);
}

static void stratified_ratios_uneven_classes(void **state)
{
    static const size_t counts[7] = {1, 2, 3, 10, 33, 59, 100};
    pst_dataset_t *d = classes_set(counts, 7);
    static const double fracs[3][3] = {{0.7, 0.2, 0.1}, {0.5, 0.25, 0.25}, {0.8, 0.0, 0.2}};
    for (int f = 0; f < 3; f++) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
            pst_split_t s;
            assert_int_equal(
                pst_split_three(d, fracs[f][0], fracs[f][1], fracs[f][2], true, seed, &s, NULL),
                PST_OK);
            assert_partition(&s, d->n_rows);
            assert_stratified(d, &s, fracs[f]);
            pst_split_fini(&s);
        }
    }
    pst_dataset_destroy(&d);
}

static void unstratified_sizes(void **state)
{
    static const size_t counts[1] = {11};
    pst_dataset_t *d = classes_set(counts, 1);
    pst_split_t s;
    /* 7.7 / 2.2 / 1.1: floors 7 / 2 / 1 and the leftover row to the largest remainder */
    assert_int_equal(pst_split_three(d, 0.7, 0.2, 0.1, false, 3, &s, NULL), PST_OK);
    assert_partition(&s, 11);
    assert_int_equal(s.n_train, 8);
    assert_int_equal(s.n_val, 2);
    assert_int_equal(s.n_test, 1);
    pst_split_fini(&s);
    /* regression sets ignore stratify */
    d->task = PST_TASK_REGRESSION;
    d->n_classes = 0;
    d->y[0] = 3.7f;
    assert_int_equal(pst_split_three(d, 0.5, 0.5, 0.0, true, 3, &s, NULL), PST_OK);
    assert_partition(&s, 11);
    assert_int_equal(s.n_train, 6); /* 5.5 / 5.5: the tie goes to train */
    assert_int_equal(s.n_val, 5);
    assert_null(s.test);
    pst_split_fini(&s);
    pst_dataset_destroy(&d);
}

static void same_seed_same_split(void **state)
{
    static const size_t counts[3] = {40, 25, 35};
    pst_dataset_t *d = classes_set(counts, 3);
    pst_split_t a, b, c;
    assert_int_equal(pst_split_three(d, 0.6, 0.3, 0.1, true, 7, &a, NULL), PST_OK);
    assert_int_equal(pst_split_three(d, 0.6, 0.3, 0.1, true, 7, &b, NULL), PST_OK);
    assert_int_equal(pst_split_three(d, 0.6, 0.3, 0.1, true, 8, &c, NULL), PST_OK);
    assert_int_equal(a.n_train, b.n_train);
    assert_memory_equal(a.train, b.train, a.n_train * sizeof *a.train);
    assert_memory_equal(a.val, b.val, a.n_val * sizeof *a.val);
    assert_memory_equal(a.test, b.test, a.n_test * sizeof *a.test);
    assert_int_equal(a.n_train, c.n_train); /* same sizes, other rows */
    assert_true(memcmp(a.train, c.train, a.n_train * sizeof *a.train) != 0);
    pst_split_fini(&a);
    pst_split_fini(&b);
    pst_split_fini(&c);
    pst_dataset_destroy(&d);
}

static void validation_from_training_file(void **state)
{
    static const size_t counts[2] = {30, 70};
    pst_dataset_t *d = classes_set(counts, 2);
    pst_split_t s;
    assert_int_equal(pst_split_two(d, 0.2, true, 1, &s, NULL), PST_OK);
    assert_partition(&s, 100);
    assert_int_equal(s.n_train, 80);
    assert_int_equal(s.n_val, 20);
    assert_int_equal(s.n_test, 0);
    assert_null(s.test);
    static const double frac[3] = {0.8, 0.2, 0.0};
    assert_stratified(d, &s, frac);
    pst_split_fini(&s);
    pst_dataset_destroy(&d);
}

static void bad_arguments(void **state)
{
    static const size_t counts[2] = {3, 3};
    pst_dataset_t *d = classes_set(counts, 2);
    pst_split_t s;
    pst_err_t err = {0};
    assert_int_equal(pst_split_three(d, 0.7, 0.2, 0.2, true, 1, &s, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "sum to 1"));
    assert_int_equal(pst_split_three(d, 1.2, -0.2, 0.0, true, 1, &s, &err), PST_EINVAL);
    assert_int_equal(pst_split_two(d, 1.5, true, 1, &s, &err), PST_EINVAL);
    assert_null(s.train);
    d->y[4] = 2; /* not below n_classes */
    assert_int_equal(pst_split_three(d, 0.7, 0.2, 0.1, true, 1, &s, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "row 5"));
    assert_null(s.train);
    assert_int_equal(pst_split_three(d, 0.7, 0.2, 0.1, false, 1, &s, &err), PST_OK);
    pst_split_fini(&s);
    pst_dataset_destroy(&d);
}

static void worker_partitions_are_strided(void **state)
{
    size_t *idx, n;
    assert_int_equal(pst_partition_rows(10, 1, 3, &idx, &n, NULL), PST_OK);
    assert_int_equal(n, 3);
    assert_true(idx[0] == 1 && idx[1] == 4 && idx[2] == 7);
    free(idx);
    unsigned char seen[1000] = {0};
    for (int rank = 0; rank < 7; rank++) {
        assert_int_equal(pst_partition_rows(1000, rank, 7, &idx, &n, NULL), PST_OK);
        assert_int_equal(n, rank < 6 ? 143 : 142); /* 1000 = 7 * 142 + 6 */
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(idx[k] % 7, (size_t)rank);
            seen[idx[k]]++;
        }
        free(idx);
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(pst_partition_rows(3, 4, 5, &idx, &n, NULL), PST_OK);
    assert_int_equal(n, 0);
    assert_non_null(idx);
    free(idx);
    pst_err_t err = {0};
    assert_int_equal(pst_partition_rows(3, 5, 5, &idx, &n, &err), PST_EINVAL);
    assert_int_equal(pst_partition_rows(3, 0, 0, &idx, &n, &err), PST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iris_seventy_twenty_ten),
        cmocka_unit_test(stratified_ratios_uneven_classes),
        cmocka_unit_test(unstratified_sizes),
        cmocka_unit_test(same_seed_same_split),
        cmocka_unit_test(validation_from_training_file),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(worker_partitions_are_strided),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
