/* Tests for common/fedsplit: partition property, IID balance, Dirichlet skew, seeds, Gamma draws.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/sample/fedsplit.h"

/* Every row 0..n-1 appears in exactly one site, and the site bounds are consistent. */
static void assert_partition(const pst_fedsplit_t *s, size_t n)
{
    assert_int_equal(s->n_rows, n);
    assert_int_equal(s->start[0], 0);
    assert_int_equal(s->start[s->n_sites], n);
    int *seen = calloc(n, sizeof *seen);
    for (size_t i = 0; i < n; i++) {
        assert_true(s->rows[i] < n);
        seen[s->rows[i]]++;
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    for (int k = 0; k < s->n_sites; k++)
        assert_true(s->start[k] <= s->start[k + 1]);
    free(seen);
}

static void iid_sizes_balanced(void **state)
{
    (void)state;
    pst_fedsplit_t s;
    pst_err_t err = {0};
    assert_int_equal(pst_fedsplit_iid(&s, 1003, 10, 7, &err), PST_OK);
    assert_partition(&s, 1003);
    /* 1003 = 3 * 101 + 7 * 100 */
    for (int k = 0; k < 10; k++)
        assert_int_equal(pst_fedsplit_size(&s, k), k < 3 ? 101 : 100);
    /* Shuffled: site 0 is not simply rows 0..100. */
    size_t in_order = 0;
    for (size_t i = 0; i < 101; i++)
        in_order += s.rows[i] == i;
    assert_true(in_order < 20);
    pst_fedsplit_fini(&s);
    pst_fedsplit_fini(&s);
}

/* 10 classes of 200 rows, interleaved. */
static int *ten_classes(size_t n)
{
    int *labels = malloc(n * sizeof *labels);
    for (size_t i = 0; i < n; i++)
        labels[i] = (int)(i % 10);
    return labels;
}

/* Mean over sites of the share of the site's most frequent class. */
static double mean_top_share(const pst_fedsplit_t *s, const int *labels)
{
    double total = 0;
    for (int k = 0; k < s->n_sites; k++) {
        int count[10] = {0}, top = 0;
        for (size_t j = s->start[k]; j < s->start[k + 1]; j++)
            count[labels[s->rows[j]]]++;
        for (int c = 0; c < 10; c++)
            top = count[c] > top ? count[c] : top;
        total += (double)top / (double)pst_fedsplit_size(s, k);
    }
    return total / s->n_sites;
}

static void dirichlet_small_alpha_is_skewed(void **state)
{
    (void)state;
    size_t n = 2000;
    int *labels = ten_classes(n);
    pst_fedsplit_t skewed, even;
    pst_err_t err = {0};
    assert_int_equal(pst_fedsplit_dirichlet(&skewed, labels, n, 10, 10, 0.1, 3, &err), PST_OK);
    assert_int_equal(pst_fedsplit_dirichlet(&even, labels, n, 10, 10, 1000.0, 3, &err), PST_OK);
    assert_partition(&skewed, n);
    assert_partition(&even, n);
    for (int k = 0; k < 10; k++)
        assert_true(pst_fedsplit_size(&skewed, k) > 0);
    /* Dir(0.1) over 10 sites puts most of a class on one or two sites: sites hold few classes.
     * Dir(1000) gives every site about 10% of every class. */
    double top_skewed = mean_top_share(&skewed, labels), top_even = mean_top_share(&even, labels);
    assert_true(top_skewed > 0.5);
    assert_true(top_even < 0.16);
    for (int k = 0; k < 10; k++) {
        size_t sz = pst_fedsplit_size(&even, k);
        assert_true(sz > 170 && sz < 230);
    }
    pst_fedsplit_fini(&skewed);
    pst_fedsplit_fini(&even);
    free(labels);
}

static void same_seed_same_split(void **state)
{
    (void)state;
    size_t n = 500;
    int *labels = ten_classes(n);
    pst_fedsplit_t a, b, c;
    pst_err_t err = {0};
    assert_int_equal(pst_fedsplit_dirichlet(&a, labels, n, 10, 5, 0.5, 11, &err), PST_OK);
    assert_int_equal(pst_fedsplit_dirichlet(&b, labels, n, 10, 5, 0.5, 11, &err), PST_OK);
    assert_int_equal(pst_fedsplit_dirichlet(&c, labels, n, 10, 5, 0.5, 12, &err), PST_OK);
    assert_memory_equal(a.rows, b.rows, n * sizeof *a.rows);
    assert_memory_equal(a.start, b.start, 6 * sizeof *a.start);
    assert_true(memcmp(a.start, c.start, 6 * sizeof *a.start) != 0);
    pst_fedsplit_fini(&a), pst_fedsplit_fini(&b), pst_fedsplit_fini(&c);
    assert_int_equal(pst_fedsplit_iid(&a, n, 5, 1, &err), PST_OK);
    assert_int_equal(pst_fedsplit_iid(&b, n, 5, 1, &err), PST_OK);
    assert_int_equal(pst_fedsplit_iid(&c, n, 5, 2, &err), PST_OK);
    assert_memory_equal(a.rows, b.rows, n * sizeof *a.rows);
    assert_true(memcmp(a.rows, c.rows, n * sizeof *a.rows) != 0);
    pst_fedsplit_fini(&a), pst_fedsplit_fini(&b), pst_fedsplit_fini(&c);
    free(labels);
}

/* Empty sites are impossible even when alpha is tiny and sites outnumber classes. */
static void tiny_alpha_fills_every_site(void **state)
{
    (void)state;
    int labels[40];
    for (int i = 0; i < 40; i++)
        labels[i] = i % 2;
    pst_fedsplit_t s;
    pst_err_t err = {0};
    assert_int_equal(pst_fedsplit_dirichlet(&s, labels, 40, 2, 20, 1e-4, 5, &err), PST_OK);
    assert_partition(&s, 40);
    for (int k = 0; k < 20; k++)
        assert_true(pst_fedsplit_size(&s, k) >= 1);
    pst_fedsplit_fini(&s);
}

/* Gamma(a, 1) has mean a and variance a. */
static void gamma_moments(void **state)
{
    (void)state;
    const double shapes[] = {0.1, 0.5, 3.0};
    for (int t = 0; t < 3; t++) {
        pst_rng_t rng;
        pst_rng_init(&rng, 9);
        double a = shapes[t], sum = 0, sq = 0;
        int n = 200000;
        for (int i = 0; i < n; i++) {
            double x = pst_fedsplit_gamma(&rng, a);
            assert_true(x >= 0);
            sum += x, sq += x * x;
        }
        double mean = sum / n, var = sq / n - mean * mean;
        assert_true(fabs(mean - a) < 0.02 * a + 0.005);
        assert_true(fabs(var - a) < 0.06 * a + 0.005);
    }
}

static void bad_arguments(void **state)
{
    (void)state;
    pst_fedsplit_t s;
    pst_err_t err = {0};
    int labels[4] = {0, 1, 2, 1};
    assert_int_equal(pst_fedsplit_iid(&s, 3, 4, 1, &err), PST_EINVAL);
    assert_int_equal(pst_fedsplit_iid(&s, 3, 0, 1, &err), PST_EINVAL);
    assert_int_equal(pst_fedsplit_dirichlet(&s, labels, 4, 3, 2, 0.0, 1, &err), PST_EINVAL);
    assert_int_equal(pst_fedsplit_dirichlet(&s, labels, 4, 2, 2, 0.5, 1, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_int_equal(pst_fedsplit_dirichlet(&s, labels, 4, 3, 5, 0.5, 1, &err), PST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iid_sizes_balanced),   cmocka_unit_test(dirichlet_small_alpha_is_skewed),
        cmocka_unit_test(same_seed_same_split), cmocka_unit_test(tiny_alpha_fills_every_site),
        cmocka_unit_test(gamma_moments),        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
