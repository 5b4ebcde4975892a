/* Tests for common/rng: determinism, ranges, shuffle is a permutation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/rng.h"

static void same_seed_same_stream(void **state)
{
    pst_rng_t a, b;
    pst_rng_init(&a, 42);
    pst_rng_init(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pst_rng_next(&a), pst_rng_next(&b));
    pst_rng_init(&b, 43);
    assert_int_not_equal(pst_rng_next(&a), pst_rng_next(&b));
}

static void uniform_and_below_in_range(void **state)
{
    pst_rng_t r;
    pst_rng_init(&r, 7);
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = pst_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        assert_true(pst_rng_below(&r, 13) < 13);
    }
    assert_true(sum / 100000 > 0.49 && sum / 100000 < 0.51);
}

static void normal_has_unit_variance(void **state)
{
    pst_rng_t r;
    pst_rng_init(&r, 3);
    double s = 0, s2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = pst_rng_normal(&r);
        s += z;
        s2 += z * z;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(mean > -0.01 && mean < 0.01);
    assert_true(var > 0.98 && var < 1.02);
}

static void shuffle_is_permutation(void **state)
{
    pst_rng_t r;
    pst_rng_init(&r, 1);
    size_t idx[100];
    int seen[100] = {0};
    for (size_t i = 0; i < 100; i++)
        idx[i] = i;
    pst_rng_shuffle(&r, idx, 100);
    int moved = 0;
    for (size_t i = 0; i < 100; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_stream),
        cmocka_unit_test(uniform_and_below_in_range),
        cmocka_unit_test(normal_has_unit_variance),
        cmocka_unit_test(shuffle_is_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
