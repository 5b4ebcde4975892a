/* Tests for common/err: codes to text, messages set and prefixed, with or without a buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/err.h"

static void every_code_has_its_text(void **state)
{
    (void)state;
    assert_string_equal(pst_strerror(PST_OK), "success");
    assert_string_equal(pst_strerror(PST_ENOMEM), "out of memory");
    assert_string_equal(pst_strerror(PST_EIO), "input/output error");
    assert_string_equal(pst_strerror(PST_ENUMERIC), "non-finite number");
    assert_string_equal(pst_strerror(-99), "unknown error");
}

static void set_records_and_returns_the_code(void **state)
{
    (void)state;
    pst_err_t err = {0};
    assert_int_equal(pst_err_set(&err, PST_EFORMAT, "%s:%d: bad cell", "a.csv", 3), PST_EFORMAT);
    assert_int_equal(err.code, PST_EFORMAT);
    assert_string_equal(err.msg, "a.csv:3: bad cell");
    assert_int_equal(pst_err_set(NULL, PST_EIO, "ignored"), PST_EIO);
    pst_err_clear(&err);
    assert_int_equal(err.code, PST_OK);
    assert_string_equal(err.msg, "");
    pst_err_clear(NULL);
}

static void prefix_adds_context_and_returns_the_code(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_err_set(&err, PST_EIO, "short read");
    assert_int_equal(pst_err_prefix(&err, PST_EIO, "%s: ", "data.csv"), PST_EIO);
    assert_int_equal(err.code, PST_EIO);
    assert_string_equal(err.msg, "data.csv: short read");
}

/* Without a buffer there is nothing to prefix, but the failure's own code still comes back: an
 * out-of-memory or an I/O error is not turned into "invalid argument". */
static void prefix_without_a_buffer_returns_the_code_it_was_given(void **state)
{
    (void)state;
    const int codes[] = {PST_ENOMEM, PST_EIO, PST_ETIMEOUT, PST_EPROTO, PST_EINVAL};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_int_equal(pst_err_prefix(NULL, codes[i], "context %zu: ", i), codes[i]);
}

/* A callee that failed without filling the buffer: the prefix still reports the failure, never
 * the buffer's stale PST_OK. */
static void prefix_records_the_code_in_a_clean_buffer(void **state)
{
    (void)state;
    pst_err_t err = {0};
    assert_int_equal(pst_err_prefix(&err, PST_ENOMEM, "model: "), PST_ENOMEM);
    assert_int_equal(err.code, PST_ENOMEM);
    assert_string_equal(err.msg, "model: ");
}

/* A prefix that does not fit leaves a terminated message of the buffer's size. */
static void a_long_prefix_is_cut_to_the_buffer(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_err_set(&err, PST_EINVAL, "%0500d", 0);
    char prefix[200];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    assert_int_equal(pst_err_prefix(&err, PST_EINVAL, "%s", prefix), PST_EINVAL);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    assert_memory_equal(err.msg, prefix, sizeof prefix - 1);
}

static void code_comes_from_the_buffer_or_the_fallback(void **state)
{
    (void)state;
    pst_err_t err = {0};
    pst_err_set(&err, PST_EINVAL, "bad layer");
    assert_int_equal(pst_err_code(&err, PST_ENOMEM), PST_EINVAL);
    assert_int_equal(pst_err_code(NULL, PST_ENOMEM), PST_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_its_text),
        cmocka_unit_test(set_records_and_returns_the_code),
        cmocka_unit_test(prefix_adds_context_and_returns_the_code),
        cmocka_unit_test(prefix_without_a_buffer_returns_the_code_it_was_given),
        cmocka_unit_test(prefix_records_the_code_in_a_clean_buffer),
        cmocka_unit_test(a_long_prefix_is_cut_to_the_buffer),
        cmocka_unit_test(code_comes_from_the_buffer_or_the_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
