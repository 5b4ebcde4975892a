/* Tests for common/numparse: each parser's accepted syntax, edges and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/numparse.h"

#define TEXT_POLICY (PST_NUM_FINITE | PST_NUM_TRAILING_SPACE)

/* pst_parse_double on text with the config/sweep policy; PST_OK and *v, or the code. */
static int text_number(const char *text, double *v)
{
    *v = -12345;
    return pst_parse_double(text, TEXT_POLICY, v);
}

static void whole_text_numbers(void **state)
{
    (void)state;
    double v;
    assert_int_equal(text_number("42", &v), PST_OK);
    assert_true(v == 42);
    assert_int_equal(text_number("-0.5e3", &v), PST_OK);
    assert_true(v == -500);
    assert_int_equal(text_number("  7  ", &v), PST_OK); /* strtod skips leading blanks */
    assert_true(v == 7);
    assert_int_equal(text_number("7\t\n", &v), PST_OK);
    assert_int_equal(text_number("0x10", &v), PST_OK); /* hex, as strtod reads it */
    assert_true(v == 16);
    assert_int_equal(text_number("+3", &v), PST_OK);
    assert_true(v == 3);
}

static void whole_text_refusals(void **state)
{
    (void)state;
    double v;
    const char *bad[] = {"",    "   ",  "abc",   "1x",     "1 2", "1e",  "inf",
                         "nan", "-inf", "1e400", "1e-400", "1,5", "--1", "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(text_number(bad[i], &v), PST_EINVAL);
        assert_true(v == -12345); /* untouched on failure */
    }
    /* without the policies: nan and inf parse, trailing blanks do not */
    assert_int_equal(pst_parse_double("nan", 0, &v), PST_OK);
    assert_true(isnan(v));
    assert_int_equal(pst_parse_double("-inf", 0, &v), PST_OK);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(pst_parse_double("1e400", 0, &v), PST_OK);
    assert_int_equal(pst_parse_double("1 ", 0, &v), PST_EINVAL);
    assert_int_equal(pst_parse_double("", 0, &v), PST_EINVAL);
}

static void whole_numbers_in_range(void **state)
{
    (void)state;
    long n = -1;
    assert_int_equal(pst_parse_long("12", 1, 100, &n), PST_OK);
    assert_int_equal(n, 12);
    assert_int_equal(pst_parse_long("1.2e1", 1, 100, &n), PST_OK);
    assert_int_equal(n, 12);
    assert_int_equal(pst_parse_long(" 3.0 ", 1, 100, &n), PST_OK);
    assert_int_equal(n, 3);
    assert_int_equal(pst_parse_long("1", 1, 1, &n), PST_OK); /* bounds are inclusive */
    n = -1;
    assert_int_equal(pst_parse_long("2.5", 1, 100, &n), PST_EFORMAT);
    assert_int_equal(pst_parse_long("0", 1, 100, &n), PST_ERANGE);
    assert_int_equal(pst_parse_long("101", 1, 100, &n), PST_ERANGE);
    assert_int_equal(pst_parse_long("1e300", 1, LONG_MAX, &n), PST_ERANGE);
    assert_int_equal(pst_parse_long("ten", 1, 100, &n), PST_EINVAL);
    assert_int_equal(pst_parse_long("", 1, 100, &n), PST_EINVAL);
    assert_int_equal(pst_parse_long("nan", 1, 100, &n), PST_EINVAL);
    assert_int_equal(n, -1);
}

static void decimal_integers(void **state)
{
    (void)state;
    long n = -1;
    assert_int_equal(pst_parse_decimal("0", &n), PST_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pst_parse_decimal("-17", &n), PST_OK);
    assert_int_equal(n, -17);
    assert_int_equal(pst_parse_decimal("9223372036854775807", &n), PST_OK);
    assert_true(n == LONG_MAX);
    n = 5;
    assert_int_equal(pst_parse_decimal("9223372036854775808", &n), PST_EINVAL); /* overflow */
    assert_int_equal(pst_parse_decimal("", &n), PST_EINVAL);
    assert_int_equal(pst_parse_decimal("1.0", &n), PST_EINVAL);
    assert_int_equal(pst_parse_decimal("12 ", &n), PST_EINVAL);
    assert_int_equal(pst_parse_decimal("0x1f", &n), PST_EINVAL);
    assert_int_equal(n, 5);
}

static void unsigned_64_bit(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(pst_parse_u64("0", &v), PST_OK);
    assert_true(v == 0);
    assert_int_equal(pst_parse_u64("18446744073709551615", &v), PST_OK);
    assert_true(v == UINT64_MAX);
    v = 5;
    assert_int_equal(pst_parse_u64("18446744073709551616", &v), PST_EINVAL); /* overflow */
    assert_int_equal(pst_parse_u64("-1", &v), PST_EINVAL); /* strtoull would wrap it */
    assert_int_equal(pst_parse_u64("+1", &v), PST_EINVAL);
    assert_int_equal(pst_parse_u64(" 1", &v), PST_EINVAL);
    assert_int_equal(pst_parse_u64("1 ", &v), PST_EINVAL);
    assert_int_equal(pst_parse_u64("", &v), PST_EINVAL);
    assert_int_equal(pst_parse_u64("1e3", &v), PST_EINVAL);
    assert_true(v == 5);
}

/* pst_parse_float_field on the first len bytes of text. */
static int field(const char *text, size_t len, double *v)
{
    *v = -12345;
    return pst_parse_float_field(text, len, v);
}

static void data_fields(void **state)
{
    (void)state;
    double v;
    assert_int_equal(field("1", 1, &v), PST_OK);
    assert_true(v == 1);
    assert_int_equal(field("-0", 2, &v), PST_OK);
    assert_true(v == 0 && signbit(v));
    assert_int_equal(field("+25", 3, &v), PST_OK);
    assert_true(v == 25);
    assert_int_equal(field("999999999999999", 15, &v), PST_OK); /* fast path, exact */
    assert_true(v == 999999999999999.0);
    assert_int_equal(field("12345678901234567", 17, &v), PST_OK); /* through strtod */
    assert_true(v == 12345678901234567.0);
    assert_int_equal(field("0.25", 4, &v), PST_OK);
    assert_true(v == 0.25);
    assert_int_equal(field("1e-3", 4, &v), PST_OK);
    assert_true(v == 1e-3);
    assert_int_equal(field("0x1p3", 5, &v), PST_OK);
    assert_true(v == 8);
    assert_int_equal(field("1e-50", 5, &v), PST_OK); /* underflow is not refused */
    /* only the first len bytes count, when what follows ends the number */
    assert_int_equal(field("12\t3", 2, &v), PST_OK);
    assert_true(v == 12);
    assert_int_equal(field("7,8", 1, &v), PST_OK);
    assert_true(v == 7);
}

static void data_field_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
    } cases[] = {
        {"", PST_EFORMAT},
        {"-", PST_EFORMAT},
        {"+", PST_EFORMAT},
        {" 1", PST_EFORMAT},
        {"\t1", PST_EFORMAT},
        {"1 ", PST_EFORMAT},
        {"1x", PST_EFORMAT},
        {"1.5.", PST_EFORMAT},
        {"abc", PST_EFORMAT},
        {"inf", PST_ENUMERIC},
        {"nan", PST_ENUMERIC},
        {"-infinity", PST_ENUMERIC},
        {"1e39", PST_ENUMERIC} /* beyond float */,
        {"-3.5e38", PST_ENUMERIC},
    };
    double v;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(field(cases[i].text, strlen(cases[i].text), &v), cases[i].rc);
        assert_true(v == -12345); /* untouched on failure */
    }
    assert_int_equal(field("3.4e38", 6, &v), PST_OK);
    assert_true(v <= FLT_MAX);
}

/* pst_parse_float_field against strtod on text[0..len): the same code path decision and, when
 * accepted, the same double and the same float, bit for bit. */
static void assert_same_as_strtod(const char *text)
{
    size_t len = strlen(text);
    char *stop;
    double want = strtod(text, &stop), got = -12345;
    int rc = pst_parse_float_field(text, len, &got);
    bool accepted =
        len > 0 && text[0] != ' ' && stop == text + len && isfinite(want) && fabs(want) <= FLT_MAX;
    if ((rc == PST_OK) != accepted)
        fail_msg("'%s': code %d, strtod accepts: %d", text, rc, accepted);
    if (accepted) {
        float fw = (float)want, fg = (float)got;
        if (memcmp(&want, &got, sizeof want) != 0 || memcmp(&fw, &fg, sizeof fw) != 0)
            fail_msg("'%s': %.17g, strtod %.17g", text, got, want);
    }
}

static void data_fields_match_strtod_bit_for_bit(void **state)
{
    (void)state;
    /* halfway and near-halfway cases, the edges of the exact path, long and tiny numbers */
    static const char *awkward[] = {"0.1",
                                    "0.2",
                                    "0.3",
                                    "1.1",
                                    "2.675",
                                    "0.30000000000000004",
                                    "9007199254740992",
                                    "9007199254740993",
                                    "9007199254740991.5",
                                    "900719925474099.3",
                                    "1e22",
                                    "1e23",
                                    "1e-22",
                                    "1e-23",
                                    "4503599627370497.5",
                                    "123456789012345678",
                                    "1234567890123456789",
                                    "12345678901234567890",
                                    "0.000000000000000000001",
                                    "1.7976931348623157e308",
                                    "3.4028234663852886e38",
                                    "3.4028235e38",
                                    "3.4028236e38",
                                    "1.4e-45",
                                    "7e-46",
                                    "1.17549435e-38",
                                    "16777217",
                                    "16777217.0",
                                    "33554433e-1",
                                    "0.1e1",
                                    "-0.0",
                                    "+.5",
                                    "5.",
                                    "00000000000000000000001",
                                    "1.00000005960464477539062",
                                    "1.0000000596046448",
                                    "8.589973e9",
                                    "1e0005",
                                    "1e+22",
                                    "1E-22",
                                    "1e",
                                    "1e+",
                                    "1.5.2",
                                    "--1",
                                    "0x1.8p1",
                                    "inf",
                                    "NaN",
                                    "1e400",
                                    "1e-400",
                                    "2.2250738585072011e-308"};
    for (size_t i = 0; i < sizeof awkward / sizeof *awkward; i++)
        assert_same_as_strtod(awkward[i]);
    /* random decimals: up to 20 digits, a point anywhere, exponents around the exact range */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char text[64];
    for (int n = 0; n < 200000; n++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int digits = 1 + (int)(x % 20), point = (int)((x >> 8) % (uint64_t)(digits + 1));
        size_t k = 0;
        if ((x >> 16) & 1)
            text[k++] = '-';
        uint64_t y = x;
        for (int d = 0; d < digits; d++) {
            if (d == point && (x >> 17) & 1)
                text[k++] = '.';
            y = y * 6364136223846793005ULL + 1442695040888963407ULL;
            text[k++] = (char)('0' + (y >> 60) % 10);
        }
        if ((x >> 20) % 3 == 0)
            k += (size_t)snprintf(text + k, sizeof text - k, "e%d", (int)((x >> 24) % 61) - 30);
        text[k] = '\0';
        assert_same_as_strtod(text);
    }
}

static void digit_runs(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(pst_parse_digits_u32("123:4", 5, &v), 3);
    assert_true(v == 123);
    assert_int_equal(pst_parse_digits_u32(":4", 2, &v), 0);
    assert_true(v == 0);
    assert_int_equal(pst_parse_digits_u32("4294967295", 10, &v), 10);
    assert_true(v == UINT32_MAX);
    assert_int_equal(pst_parse_digits_u32("4294967296", 10, &v), 10);
    assert_true(v == (uint64_t)UINT32_MAX + 1);
    assert_int_equal(pst_parse_digits_u32("99999999999999999999999", 23, &v), 23);
    assert_true(v == (uint64_t)UINT32_MAX + 1); /* saturates, never wraps */
    assert_int_equal(pst_parse_digits_u32("0007", 4, &v), 4);
    assert_true(v == 7);
    assert_int_equal(pst_parse_digits_u32("12", 1, &v), 1); /* stops at len */
    assert_true(v == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_text_numbers),
        cmocka_unit_test(whole_text_refusals),
        cmocka_unit_test(whole_numbers_in_range),
        cmocka_unit_test(decimal_integers),
        cmocka_unit_test(unsigned_64_bit),
        cmocka_unit_test(data_fields),
        cmocka_unit_test(data_field_refusals),
        cmocka_unit_test(digit_runs),
        cmocka_unit_test(data_fields_match_strtod_bit_for_bit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
