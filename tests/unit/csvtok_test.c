/* Tests for common/data/csvtok: every RFC 4180 quoting case, BOM, CRLF, blank lines, line
 * numbers, errors with FILE:LINE, and a file streamed across refills. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/csvtok.h"
#include "common/log.h"
#include "scratch.h"

/* Tokenizes text and checks the records against want: fields separated by '|', records by
 * '\n' in want (so the expected text itself holds no '|'). */
static void expect_records(const char *text, size_t len, const char *const *want, size_t n_want)
{
    pst_csvtok_t *t = pst_csvtok_new_mem(text, len, "mem.csv");
    assert_non_null(t);
    pst_err_t err = {0};
    const pst_csv_record_t *rec;
    for (size_t r = 0; r < n_want; r++) {
        assert_int_equal(pst_csvtok_next(t, &rec, &err), 1);
        char joined[512] = "";
        for (size_t f = 0; f < rec->n_fields; f++) {
            assert_int_equal(strlen(rec->fields[f]), rec->lens[f]);
            strcat(joined, f ? "|" : "");
            strcat(joined, rec->fields[f]);
        }
        assert_string_equal(joined, want[r]);
    }
    assert_int_equal(pst_csvtok_next(t, &rec, &err), 0);
    pst_csvtok_destroy(&t);
    assert_null(t);
}

#define EXPECT(text, ...)                                                                          \
    do {                                                                                           \
        const char *want_[] = {__VA_ARGS__};                                                       \
        expect_records(text, strlen(text), want_, sizeof want_ / sizeof *want_);                   \
    } while (0)

static void plain_fields(void **state)
{
    (void)state;
    EXPECT("a,b,c\n1,2,3\n", "a|b|c", "1|2|3");
    EXPECT("a,b\n1,2", "a|b", "1|2");   /* no final line end */
    EXPECT(" a , b\t\n", "a|b");        /* blanks around plain fields trimmed */
    EXPECT("a,,c\n,,\n", "a||c", "||"); /* empty fields */
    EXPECT("x\n\n  \n\ny\n", "x", "y"); /* blank lines skipped */
    EXPECT("ab\"c,d\n", "ab\"c|d");     /* a quote inside a plain field is text */
}

static void quoted_fields(void **state)
{
    (void)state;
    EXPECT("\"a,b\",c\n", "a,b|c");                   /* comma inside quotes */
    EXPECT("\"say \"\"hi\"\"\",x\n", "say \"hi\"|x"); /* doubled quotes */
    EXPECT("\"\"\"\"\n", "\"");                       /* a lone quote */
    EXPECT("\"line1\nline2\",z\nnext,row\n", "line1\nline2|z", "next|row"); /* newline inside */
    EXPECT("\"crlf\r\ninside\",1\r\n", "crlf\r\ninside|1");
    EXPECT("\"\",x\n", "|x");                 /* quoted empty field */
    EXPECT("  \"padded\"  ,b\n", "padded|b"); /* blanks outside quotes dropped */
    EXPECT("\" keep \",b\n", " keep |b");     /* blanks inside quotes kept */
    EXPECT("a,\"b\"", "a|b");                 /* quoted last field at end of input */
}

static void bom_and_crlf(void **state)
{
    (void)state;
    EXPECT("\xEF\xBB\xBFid,name\r\n1,\"Zoë, M.\"\r\n", "id|name", "1|Zoë, M.");
    EXPECT("a,b\r\n1,2\r\n\r\n3,4\r\n", "a|b", "1|2", "3|4");
    expect_records("\xEF\xBB\xBF", 3, NULL, 0); /* a BOM alone holds no record */
}

static void line_numbers(void **state)
{
    (void)state;
    const char *text = "h1,h2\n\"multi\nline\",x\n\nlast,y\n";
    pst_csvtok_t *t = pst_csvtok_new_mem(text, strlen(text), "mem.csv");
    const pst_csv_record_t *rec;
    assert_int_equal(pst_csvtok_next(t, &rec, NULL), 1);
    assert_int_equal(rec->line, 1);
    assert_int_equal(pst_csvtok_next(t, &rec, NULL), 1);
    assert_int_equal(rec->line, 2);
    assert_true(rec->quoted[0] && !rec->quoted[1]);
    assert_int_equal(pst_csvtok_next(t, &rec, NULL), 1);
    assert_int_equal(rec->line, 5);
    pst_csvtok_destroy(&t);
}

static void expect_error(const char *text, const char *needle)
{
    pst_csvtok_t *t = pst_csvtok_new_mem(text, strlen(text), "bad.csv");
    pst_err_t err = {0};
    const pst_csv_record_t *rec;
    int got;
    while ((got = pst_csvtok_next(t, &rec, &err)) == 1)
        ;
    assert_int_equal(got, PST_EFORMAT);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    pst_csvtok_destroy(&t);
}

static void malformed(void **state)
{
    (void)state;
    expect_error("a,b\n1,\"open\n", "bad.csv:2: field 2: unterminated quote");
    expect_error("a,b\n1,\"x\"y\n", "bad.csv:2: field 2: text after the closing quote");
    expect_error("a\n\"x\"\ry\n", "bad.csv:2: field 1: text after the closing quote");
}

/* A file larger than the 1 MiB read buffer, with a quoted field straddling refills, read back
 * record for record. */
static void streamed_file(void **state)
{
    (void)state;
    size_t n = 60000;
    char *text = malloc(n * 40 + 64), *p = text;
    p += sprintf(p, "\xEF\xBB\xBFid,text\r\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%zu,\"row %zu, \"\"q\"\"\nnext\"\r\n", i, i);
    const char *path = pst_scratch_file(".csv", text);
    pst_err_t err = {0};
    pst_csvtok_t *t = pst_csvtok_open(path, &err);
    assert_non_null(t);
    const pst_csv_record_t *rec;
    assert_int_equal(pst_csvtok_next(t, &rec, &err), 1);
    assert_string_equal(rec->fields[0], "id");
    char want[64];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pst_csvtok_next(t, &rec, &err), 1);
        assert_int_equal(rec->n_fields, 2);
        assert_int_equal(strtoul(rec->fields[0], NULL, 10), i);
        snprintf(want, sizeof want, "row %zu, \"q\"\nnext", i);
        assert_string_equal(rec->fields[1], want);
        assert_int_equal(rec->line, 2 + 2 * i);
    }
    assert_int_equal(pst_csvtok_next(t, &rec, &err), 0);
    pst_csvtok_destroy(&t);
    free(text);
}

static void missing_file(void **state)
{
    (void)state;
    pst_err_t err = {0};
    assert_null(pst_csvtok_open("/nonexistent/dir/x.csv", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.csv: cannot open"));
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_fields), cmocka_unit_test(quoted_fields),
        cmocka_unit_test(bom_and_crlf), cmocka_unit_test(line_numbers),
        cmocka_unit_test(malformed),    cmocka_unit_test(streamed_file),
        cmocka_unit_test(missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
