/* Tests for common/alloc: arrays grow and shrink keeping their contents; an overflowing size
 * fails without touching the array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/alloc.h"
#include "common/err.h"

static void grows_and_keeps_contents(void **state)
{
    uint32_t *v = NULL;
    assert_int_equal(pst_array_resize((void **)&v, 4, sizeof *v), PST_OK);
    assert_non_null(v);
    for (uint32_t i = 0; i < 4; i++)
        v[i] = i * 7;
    assert_int_equal(pst_array_resize((void **)&v, 100000, sizeof *v), PST_OK);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(v[i], i * 7);
    v[99999] = 1;
    assert_int_equal(pst_array_resize((void **)&v, 2, sizeof *v), PST_OK);
    assert_int_equal(v[1], 7);
    free(v);
}

static void zero_elements_still_allocates(void **state)
{
    double *v = NULL;
    assert_int_equal(pst_array_resize((void **)&v, 0, sizeof *v), PST_OK);
    assert_non_null(v);
    v[0] = 1.5;
    free(v);
}

static void overflow_fails_and_keeps_the_array(void **state)
{
    uint64_t *v = NULL;
    assert_int_equal(pst_array_resize((void **)&v, 8, sizeof *v), PST_OK);
    v[7] = 42;
    uint64_t *before = v;
    /* n * elem wraps around to 8 bytes: a plain realloc(n * elem) would succeed with a block
     * far smaller than asked for. */
    size_t n = SIZE_MAX / sizeof *v + 2;
    assert_true(n * sizeof *v == 8);
    assert_int_equal(pst_array_resize((void **)&v, n, sizeof *v), PST_ENOMEM);
    assert_ptr_equal(v, before);
    assert_int_equal(v[7], 42);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_keeps_contents),
        cmocka_unit_test(zero_elements_still_allocates),
        cmocka_unit_test(overflow_fails_and_keeps_the_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
