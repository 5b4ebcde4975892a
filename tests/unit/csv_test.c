/* Tests for common/csv (and CSV loading through common/dataload): real sets and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/data/csv.h"
#include "common/data/dataload.h"
#include "common/data/table.h"
#include "scratch.h"

/* Column options of the next read_text (then reset). */
static pst_table_opts_t next_opts;

/* Reads text as a CSV with the given target and task; returns the code. */
static int read_text(const char *text, const char *target, pst_data_task_t task, pst_dataset_t **d,
                     pst_err_t *err, const char **path_out)
{
    const char *path = pst_scratch_file(".csv", text);
    if (path_out)
        *path_out = path;
    pst_table_opts_t opts = next_opts;
    memset(&next_opts, 0, sizeof next_opts);
    pst_data_spec_t spec = {.path = path, .target = target, .task = task, .table = &opts};
    pst_err_clear(err);
    *d = NULL;
    return pst_csv_read(&spec, d, err);
}

static pst_dataset_t *load_test_set(const char *name, const char *target)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.csv", PST_TEST_DATA, name);
    pst_data_spec_t spec = {.path = path, .target = target};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    int rc = pst_data_load(&spec, &d, &err);
    if (rc != PST_OK)
        fail_msg("%s: %s", name, err.msg);
    return d;
}

static void iris(void **state)
{
    pst_dataset_t *d = load_test_set("iris", "target");
    assert_int_equal(d->n_rows, 150);
    assert_int_equal(d->n_features, 4);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 3);
    assert_string_equal(d->feature_names[0], "sepal_length_cm");
    assert_string_equal(d->feature_names[3], "petal_width_cm");
    assert_string_equal(d->target_name, "target");
    int hist[3] = {0};
    for (size_t i = 0; i < d->n_rows; i++)
        hist[(int)d->y[i]]++;
    for (int c = 0; c < 3; c++) {
        assert_int_equal(hist[c], 50);
        assert_true(d->class_values[c] == c);
    }
    /* column sums from numpy on the same file */
    static const double sums[4] = {876.5, 458.6, 563.7, 179.9};
    for (size_t j = 0; j < 4; j++) {
        double s = 0;
        for (size_t i = 0; i < d->n_rows; i++)
            s += d->x[i * 4 + j];
        assert_true(fabs(s - sums[j]) < 1e-3);
    }
    assert_true(d->x[0] == 5.1f && d->x[1] == 3.5f && d->x[2] == 1.4f && d->x[3] == 0.2f);
    pst_dataset_destroy(&d);
}

static void every_test_set_and_auto_task(void **state)
{
    static const struct {
        const char *name;
        size_t rows, features;
        int task, n_classes;
    } sets[] = {
        {"wine", 178, 13, PST_TASK_CLASSIFICATION, 3},
        {"diabetes", 442, 10, PST_TASK_REGRESSION, 0},
        {"digits", 1797, 64, PST_TASK_CLASSIFICATION, 10},
        {"breast_cancer", 569, 30, PST_TASK_CLASSIFICATION, 2},
    };
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        pst_dataset_t *d = load_test_set(sets[s].name, NULL); /* NULL = last column */
        assert_int_equal(d->n_rows, sets[s].rows);
        assert_int_equal(d->n_features, sets[s].features);
        assert_int_equal(d->task, sets[s].task);
        assert_int_equal(d->n_classes, sets[s].n_classes);
        assert_string_equal(d->target_name, "target");
        if (d->task == PST_TASK_REGRESSION) {
            assert_true(d->y[0] == 151 && d->y[1] == 75 && d->y[2] == 141);
            assert_null(d->class_values);
        }
        pst_dataset_destroy(&d);
    }
    pst_dataset_t *d = load_test_set("wine", NULL);
    int hist[3] = {0};
    for (size_t i = 0; i < d->n_rows; i++)
        hist[(int)d->y[i]]++;
    assert_int_equal(hist[0], 59);
    assert_int_equal(hist[1], 71);
    assert_int_equal(hist[2], 48);
    pst_dataset_destroy(&d);
}

/* A CSV "x,y" with rows i, f(i) for i in [0, n). */
static char *column_csv(int n, double (*f)(int))
{
    char *text = malloc(32 + (size_t)n * 48);
    size_t len = (size_t)sprintf(text, "x,y\n");
    for (int i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "%d,%.17g\n", i, f(i));
    return text;
}

static double identity(int i)
{
    return i;
}

static double halves(int i)
{
    return (i % 3) * 0.5;
}

static void auto_task_rules(void **state)
{
    pst_dataset_t *d;
    pst_err_t err;
    char *text = column_csv(20, identity); /* 20 distinct integers: classification */
    assert_int_equal(read_text(text, "y", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 20);
    pst_dataset_destroy(&d);
    free(text);
    text = column_csv(21, identity); /* 21 distinct: regression */
    assert_int_equal(read_text(text, "y", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_int_equal(d->n_classes, 0);
    pst_dataset_destroy(&d);
    free(text);
    text = column_csv(9, halves); /* 3 distinct but not integral: regression */
    assert_int_equal(read_text(text, "y", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_true(d->y[1] == 0.5f);
    pst_dataset_destroy(&d);
    /* ... unless the caller says classification: classes are the sorted values */
    assert_int_equal(read_text(text, "y", PST_DATA_TASK_CLASSIFICATION, &d, &err, NULL), PST_OK);
    assert_int_equal(d->n_classes, 3);
    assert_true(d->y[0] == 0 && d->y[1] == 1 && d->y[2] == 2);
    assert_true(d->class_values[2] == 1.0);
    pst_dataset_destroy(&d);
    free(text);
}

static void classes_in_sorted_order(void **state)
{
    pst_dataset_t *d;
    pst_err_t err;
    const char *text = "label,a\n5,1\n-1,2\n3,3\n5,4\n";
    assert_int_equal(read_text(text, "label", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 3);
    assert_true(d->class_values[0] == -1 && d->class_values[1] == 3 && d->class_values[2] == 5);
    static const float y[4] = {2, 0, 1, 2};
    for (int i = 0; i < 4; i++) {
        assert_true(d->y[i] == y[i]);
        assert_true(d->x[i] == (float)(i + 1)); /* the target column left the features */
    }
    assert_string_equal(d->feature_names[0], "a");
    pst_dataset_destroy(&d);
    assert_int_equal(read_text(text, "label", PST_DATA_TASK_REGRESSION, &d, &err, NULL), PST_OK);
    assert_true(d->y[0] == 5 && d->y[1] == -1);
    pst_dataset_destroy(&d);
}

static void missing_markers_quotes_crlf(void **state)
{
    pst_dataset_t *d;
    pst_err_t err;
    const char *text = "\"a\",b,\"c \"\"q\"\"\",t\r\n"
                       ",NA,NaN,0\r\n"
                       "na,?,N/A,1\r\n"
                       "\r\n"
                       " \"1.5\" , 2 ,\" -3e1 \",1\r\n"
                       "4,5,6,0";
    assert_int_equal(read_text(text, "t", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->n_rows, 4);
    assert_int_equal(d->n_features, 3);
    assert_string_equal(d->feature_names[0], "a");
    assert_string_equal(d->feature_names[2], "c \"q\"");
    for (int k = 0; k < 6; k++)
        assert_true(isnan(d->x[k]));
    assert_true(d->x[6] == 1.5f && d->x[7] == 2.0f && d->x[8] == -30.0f);
    assert_true(d->x[9] == 4.0f && d->x[11] == 6.0f);
    assert_true(d->y[0] == 0 && d->y[1] == 1 && d->y[2] == 1 && d->y[3] == 0);
    pst_dataset_destroy(&d);
}

static void gzip_csv(void **state)
{
    const char *path = pst_scratch_file(".csv.gz", "");
    gzFile f = gzopen(path, "wb");
    gzputs(f, "a,target\n1,0\n2,1\n");
    gzclose(f);
    pst_data_spec_t spec = {.path = path, .target = "target"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 2);
    assert_true(d->x[1] == 2.0f);
    pst_dataset_destroy(&d);
}

/* Expects text to fail with rc and a message holding every needle; "@" stands for the path. */
static void expect_error(const char *text, const char *target, int rc, const char *needle1,
                         const char *needle2)
{
    pst_dataset_t *d;
    pst_err_t err;
    const char *path;
    assert_int_equal(read_text(text, target, PST_DATA_TASK_AUTO, &d, &err, &path), rc);
    assert_null(d);
    char expect[256];
    const char *needles[2] = {needle1, needle2};
    for (int k = 0; k < 2; k++) {
        if (needles[k] == NULL)
            continue;
        if (needles[k][0] == '@')
            snprintf(expect, sizeof expect, "%s%s", path, needles[k] + 1);
        else
            snprintf(expect, sizeof expect, "%s", needles[k]);
        if (strstr(err.msg, expect) == NULL)
            fail_msg("message '%s' lacks '%s'", err.msg, expect);
    }
}

/* expect_error with column `numeric` declared numeric (data.as_numeric). */
static void expect_numeric_error(const char *numeric, const char *text, const char *needle1,
                                 const char *needle2)
{
    static const char *names[1];
    names[0] = numeric;
    next_opts.numeric = names;
    next_opts.n_numeric = 1;
    expect_error(text, "t", PST_EFORMAT, needle1, needle2);
}

static void bad_input(void **state)
{
    expect_numeric_error("b", "a,b,t\n1,2,0\n3,abc,1\n", "@:3: column 'b'",
                         "non-numeric value 'abc'");
    expect_numeric_error("b", "a,b,t\n1,2,0\n3,4x,1\n", "@:3: column 'b'", "'4x'");
    expect_error("a,b,t\n1,2,0\n1,2,0\n3,4\n", "t", PST_EFORMAT, "@:4: ragged row",
                 "2 fields, the header has 3");
    expect_error("a,b,t\n1,2,0,9\n", "t", PST_EFORMAT, "@:2: ragged row", NULL);
    expect_error("a,b,t\n1,2,0\n", "label", PST_ENOTFOUND, "@:1: target column 'label' not found",
                 "columns are: a, b, t");
    expect_error("", "t", PST_EFORMAT, "@: empty file", NULL);
    expect_error("\n\n", "t", PST_EFORMAT, "@: empty file", NULL);
    expect_error("a,b,t\n", "t", PST_EFORMAT, "@: no data rows", NULL);
    expect_error("a,b,t\n1,2,\n", "t", PST_EFORMAT, "@:2: column 't': missing target", NULL);
    expect_error("a,b,t\n1,\"2,0\n", "t", PST_EFORMAT, "@:2: field 2: unterminated quote", NULL);
    expect_error("a,b,t\n1,\"2\"x,0\n", "t", PST_EFORMAT, "@:2: field 2: text after", NULL);
    /* Missing markers match whole cells only: a cell that merely starts with one is no number. */
    expect_numeric_error("b", "a,b,t\n1,nancy,0\n", "@:2: column 'b'", "'nancy'");
    expect_numeric_error("b", "a,b,t\n1,?5,0\n", "@:2: column 'b'", "'?5'");
    expect_numeric_error("b", "a,b,t\n1,NAx,0\n", "@:2: column 'b'", "'NAx'");
    expect_numeric_error("a", "a,b,t\nn/a/b,1,0\n", "@:2: column 'a'", "'n/a/b'");
    expect_error("a,b,t\n1,inf,0\n", "t", PST_EFORMAT, "@:2: column 'b'", "not a finite float");
    expect_error("a,b,t\n1,1e39,0\n", "t", PST_EFORMAT, "@:2: column 'b'", "not a finite float");
    expect_error("t,t\n1,2\n", "t", PST_EFORMAT, "appears 2 times", NULL);
    expect_error("t\n1\n", "t", PST_EFORMAT, "@:1: header has 1 column", NULL);
    pst_data_spec_t spec = {.path = "/nonexistent/dir/x.csv"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.csv: cannot open"));
}

static void expected_classes_and_reused_mapping(void **state)
{
    const char *path = pst_scratch_file(".csv", "a,t\n1,0\n2,2\n3,1\n");
    pst_data_spec_t spec = {.path = path, .target = "t", .n_classes = 5};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    /* labels 0..K-1 keep their index even when some class is absent */
    assert_int_equal(pst_csv_read(&spec, &d, &err), PST_OK);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 5);
    assert_true(d->y[1] == 2 && d->class_values[4] == 4);
    pst_dataset_destroy(&d);
    spec.n_classes = 2;
    assert_int_equal(pst_csv_read(&spec, &d, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, ":3: label 2 out of range"));
    /* -1/+1 with K = 2 maps by sorted value */
    spec.path = pst_scratch_file(".csv", "a,t\n1,1\n2,-1\n");
    assert_int_equal(pst_csv_read(&spec, &d, &err), PST_OK);
    assert_true(d->y[0] == 1 && d->y[1] == 0);
    pst_dataset_destroy(&d);
    /* a test file read with the training file's classes */
    static const double train_classes[2] = {-1, 1};
    pst_data_spec_t test = {.path = pst_scratch_file(".csv", "a,t\n1,1\n2,1\n"),
                            .target = "t",
                            .class_values = train_classes,
                            .n_class_values = 2};
    assert_int_equal(pst_csv_read(&test, &d, &err), PST_OK);
    assert_int_equal(d->n_classes, 2);
    assert_true(d->y[0] == 1 && d->y[1] == 1);
    pst_dataset_destroy(&d);
    test.path = pst_scratch_file(".csv", "a,t\n1,1\n2,0\n");
    assert_int_equal(pst_csv_read(&test, &d, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, ":3: label 0 out of range"));
}

static void format_inference_errors(void **state)
{
    const char *path = pst_scratch_file(".data", "a,b\n1,2\n");
    pst_data_spec_t spec = {.path = path};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "cannot infer"));
    spec.format = "CSV"; /* an explicit format wins over the name */
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 1);
    pst_dataset_destroy(&d);
    spec.format = "parquet";
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "unknown data format 'parquet'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iris),
        cmocka_unit_test(every_test_set_and_auto_task),
        cmocka_unit_test(auto_task_rules),
        cmocka_unit_test(classes_in_sorted_order),
        cmocka_unit_test(missing_markers_quotes_crlf),
        cmocka_unit_test(gzip_csv),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(expected_classes_and_reused_mapping),
        cmocka_unit_test(format_inference_errors),
    };
    return cmocka_run_group_tests(tests, NULL, pst_scratch_remove);
}
