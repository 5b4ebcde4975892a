/* Tests for common/libsvm: CSR contents, label mapping, iris round trip, and every bad token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/data/dataload.h"
#include "common/data/libsvm.h"
#include "scratch.h"

static int read_text(const char *text, pst_data_task_t task, pst_dataset_t **d, pst_err_t *err,
                     const char **path_out)
{
    const char *path = pst_scratch_file(".svm", text);
    if (path_out)
        *path_out = path;
    pst_data_spec_t spec = {.path = path, .task = task};
    pst_err_clear(err);
    *d = NULL;
    return pst_libsvm_read(&spec, d, err);
}

static void csr_contents_and_labels(void **state)
{
    const char *text = "+1 1:0.5 3:2 # first\n"
                       "-1 2:1.5\r\n"
                       "# a comment line\n"
                       "\n"
                       "+1\t1:1   4:-3e-1\n";
    pst_dataset_t *d;
    pst_err_t err;
    assert_int_equal(read_text(text, PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_true(pst_dataset_is_sparse(d));
    assert_null(d->x);
    assert_int_equal(d->n_rows, 3);
    assert_int_equal(d->n_features, 4);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 2);
    assert_true(d->class_values[0] == -1 && d->class_values[1] == 1);
    static const size_t row_ptr[4] = {0, 2, 3, 5};
    static const uint32_t cols[5] = {0, 2, 1, 0, 3};
    static const float vals[5] = {0.5f, 2.0f, 1.5f, 1.0f, -0.3f};
    for (int i = 0; i < 4; i++)
        assert_int_equal(d->row_ptr[i], row_ptr[i]);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(d->col_idx[k], cols[k]);
        assert_true(d->val[k] == vals[k]);
    }
    assert_true(d->y[0] == 1 && d->y[1] == 0 && d->y[2] == 1);
    pst_dataset_destroy(&d);
    assert_int_equal(read_text(text, PST_DATA_TASK_REGRESSION, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_true(d->y[0] == 1 && d->y[1] == -1);
    pst_dataset_destroy(&d);
}

static void multiclass_and_regression_labels(void **state)
{
    pst_dataset_t *d;
    pst_err_t err;
    assert_int_equal(read_text("3 1:1\n1 1:2\n2 2:1\n3 1:4\n", PST_DATA_TASK_AUTO, &d, &err, NULL),
                     PST_OK);
    assert_int_equal(d->n_classes, 3);
    assert_true(d->y[0] == 2 && d->y[1] == 0 && d->y[2] == 1 && d->y[3] == 2);
    pst_dataset_destroy(&d);
    assert_int_equal(read_text("2.5 1:1\n-0.25 1:2\n", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(d->task, PST_TASK_REGRESSION);
    assert_true(d->y[0] == 2.5f && d->y[1] == -0.25f);
    pst_dataset_destroy(&d);
}

/* Writes a dense dataset as LIBSVM lines with labels class + 1, zeros left out. */
static char *to_libsvm(const pst_dataset_t *d)
{
    char *text = malloc(d->n_rows * (d->n_features * 24 + 16) + 1);
    size_t len = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        len += (size_t)sprintf(text + len, "%d", (int)d->y[i] + 1);
        for (size_t j = 0; j < d->n_features; j++)
            if (d->x[i * d->n_features + j] != 0)
                len += (size_t)sprintf(text + len, " %zu:%.9g", j + 1,
                                       (double)d->x[i * d->n_features + j]);
        text[len++] = '\n';
    }
    text[len] = '\0';
    return text;
}

static void iris_round_trip(void **state)
{
    pst_data_spec_t spec = {.path = PST_TEST_DATA "/iris.csv", .target = "target"};
    pst_dataset_t *dense = NULL, *sparse = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &dense, &err), PST_OK);
    char *text = to_libsvm(dense);
    spec = (pst_data_spec_t){.path = pst_scratch_file(".libsvm", text)};
    free(text);
    assert_int_equal(pst_data_load(&spec, &sparse, &err), PST_OK);
    assert_true(pst_dataset_is_sparse(sparse));
    assert_int_equal(sparse->n_rows, 150);
    assert_int_equal(sparse->n_classes, 3);
    assert_true(sparse->class_values[0] == 1 && sparse->class_values[2] == 3);
    assert_int_equal(pst_dataset_densify(sparse, 0, &err), PST_OK);
    assert_int_equal(sparse->n_features, 4);
    assert_memory_equal(sparse->x, dense->x, 150 * 4 * sizeof(float));
    assert_memory_equal(sparse->y, dense->y, 150 * sizeof(float));
    pst_dataset_destroy(&dense);
    pst_dataset_destroy(&sparse);
}

static void expect_error(const char *text, int rc, const char *where, const char *what)
{
    pst_dataset_t *d;
    pst_err_t err;
    const char *path;
    assert_int_equal(read_text(text, PST_DATA_TASK_AUTO, &d, &err, &path), rc);
    assert_null(d);
    char expect[128];
    snprintf(expect, sizeof expect, "%s%s", path, where);
    if (strstr(err.msg, expect) == NULL || (what && strstr(err.msg, what) == NULL))
        fail_msg("message '%s' lacks '%s' or '%s'", err.msg, expect, what ? what : "");
}

static void bad_tokens(void **state)
{
    expect_error("1 1:1\n1 2:1 2:3\n", PST_EFORMAT, ":2: bad token '2:3'", "strictly increasing");
    expect_error("1 3:1 2:3\n", PST_EFORMAT, ":1: bad token '2:3'", "strictly increasing");
    expect_error("1 0:1\n", PST_EFORMAT, ":1: bad token '0:1'", "1-based");
    expect_error("1 1:1\n\n1 abc\n", PST_EFORMAT, ":3: bad token 'abc'", "expected idx:value");
    expect_error("1 7\n", PST_EFORMAT, ":1: bad token '7'", "expected idx:value");
    expect_error("1 qid:3 1:1\n", PST_EFORMAT, ":1: bad token 'qid:3'", NULL);
    expect_error("1 3:x\n", PST_EFORMAT, ":1: bad token '3:x'", "non-numeric");
    expect_error("1 3:\n", PST_EFORMAT, ":1: bad token '3:'", "non-numeric");
    expect_error("1 3:1:2\n", PST_EFORMAT, ":1: bad token '3:1:2'", "non-numeric");
    expect_error("1 3:nan\n", PST_EFORMAT, ":1: bad token '3:nan'", "non-finite");
    expect_error("yes 1:1\n", PST_EFORMAT, ":1: bad token 'yes'", "label");
    expect_error("1 99999999999:1\n", PST_EFORMAT, ":1: bad token", "too large");
    expect_error("", PST_EFORMAT, ": no data rows", NULL);
    expect_error("# only a comment\n\n", PST_EFORMAT, ": no data rows", NULL);
}

static void format_inference(void **state)
{
    static const char *suffixes[] = {".txt", ".svm.gz", ".dat"};
    for (int s = 0; s < 3; s++) {
        const char *path = pst_scratch_file(suffixes[s], "# header comment\n-1 2:1\n+1 1:3\n");
        if (s == 1) { /* write it gzip-compressed under the .gz name */
            char cmd[160];
            snprintf(cmd, sizeof cmd, "gzip -c %s > %s.tmp && mv %s.tmp %s", path, path, path,
                     path);
            assert_int_equal(system(cmd), 0);
        }
        pst_data_spec_t spec = {.path = path};
        const char *format = NULL;
        pst_err_t err = {0};
        assert_int_equal(pst_data_infer_format(&spec, &format, &err), PST_OK);
        assert_string_equal(format, "libsvm");
        pst_dataset_t *d = NULL;
        assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
        assert_int_equal(d->n_rows, 2);
        assert_int_equal(d->n_features, 2);
        pst_dataset_destroy(&d);
    }
}

/* IDX is recognised by its magic number, whatever the name; a name with "idx" in it is not IDX. */
static void idx_is_told_by_content_not_name(void **state)
{
    (void)state;
    pst_data_spec_t spec = {.path = pst_scratch_file("-idx-rows.txt", "1 2:5\n0 1:1\n")};
    const char *format = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_infer_format(&spec, &format, &err), PST_OK);
    assert_string_equal(format, "libsvm");
    char path[256];
    FILE *f = fopen(pst_scratch_path(path, "pixels.bin"), "wb");
    const unsigned char head[] = {0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
    fwrite(head, 1, sizeof head, f);
    fclose(f);
    spec.path = path;
    assert_int_equal(pst_data_infer_format(&spec, &format, &err), PST_OK);
    assert_string_equal(format, "idx");
}

/* A feature index past the dense limit is refused with the width named, before any allocation
 * of rows x width cells (60 rows x 10^8 features would be 24 GB). */
static void wide_data_is_not_densified(void **state)
{
    (void)state;
    pst_dataset_t *d;
    pst_err_t err;
    assert_int_equal(read_text("1 2:5 100000000:1\n0 1:1\n", PST_DATA_TASK_AUTO, &d, &err, NULL),
                     PST_OK);
    assert_int_equal(pst_dataset_densify(d, 0, &err), PST_ERANGE);
    assert_non_null(strstr(err.msg, "100000000 features"));
    assert_non_null(strstr(err.msg, "262144"));
    assert_true(pst_dataset_is_sparse(d));
    pst_dataset_destroy(&d);
    /* At the limit it still works. */
    assert_int_equal(read_text("1 2:5 262144:1\n0 1:1\n", PST_DATA_TASK_AUTO, &d, &err, NULL),
                     PST_OK);
    assert_int_equal(pst_dataset_densify(d, 0, &err), PST_OK);
    assert_int_equal(d->n_features, 262144);
    pst_dataset_destroy(&d);
}

/* /dev/zero as a data file (CSV or LIBSVM) is refused after one over-long line, in well under a
 * second, instead of being read until memory runs out. */
static void endless_input_is_refused(void **state)
{
    (void)state;
    const char *formats[] = {"csv", "libsvm"};
    for (int i = 0; i < 2; i++) {
        pst_data_spec_t spec = {.path = "/dev/zero", .format = formats[i], .target = "y"};
        pst_dataset_t *d = NULL;
        pst_err_t err = {0};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(pst_data_load(&spec, &d, &err), PST_EFORMAT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* LIBSVM lines are capped at 16 MiB, CSV records (which may span lines) at 64 MiB. */
        assert_non_null(strstr(err.msg, "/dev/zero"));
        assert_non_null(
            strstr(err.msg, i == 0 ? "record longer than" : "a line longer than 16 MiB"));
        assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 3000);
        assert_null(d);
    }
}

static void densify_widths(void **state)
{
    pst_dataset_t *d;
    pst_err_t err;
    assert_int_equal(read_text("1 2:5\n0 1:1 3:2\n", PST_DATA_TASK_AUTO, &d, &err, NULL), PST_OK);
    assert_int_equal(pst_dataset_densify(d, 2, &err), PST_ERANGE); /* column 3 does not fit */
    assert_true(pst_dataset_is_sparse(d));
    assert_int_equal(pst_dataset_densify(d, 5, &err), PST_OK);
    assert_int_equal(d->n_features, 5);
    static const float x[10] = {0, 5, 0, 0, 0, 1, 0, 2, 0, 0};
    assert_memory_equal(d->x, x, sizeof x);
    assert_int_equal(pst_dataset_densify(d, 0, &err), PST_OK); /* dense: no-op */
    pst_dataset_destroy(&d);
}

static void one_line_parser(void **state)
{
    (void)state;
    uint32_t idx[8];
    float val[8];
    double label = 0;
    size_t nnz = 99;
    pst_err_t err;
    const char *line = "-1.5 2:0.5 7:3 # comment 9:9";
    assert_int_equal(
        pst_libsvm_parse_line(line, strlen(line), &label, idx, val, &nnz, "f.svm", 4, &err), 1);
    assert_true(label == -1.5);
    assert_int_equal(nnz, 2);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 6);
    assert_true(val[0] == 0.5f && val[1] == 3.0f);
    assert_int_equal(pst_libsvm_parse_line("  \t\r", 4, &label, idx, val, &nnz, "f.svm", 5, &err),
                     0);
    assert_int_equal(
        pst_libsvm_parse_line("# all comment", 13, &label, idx, val, &nnz, "f.svm", 6, &err), 0);
    assert_int_equal(pst_libsvm_parse_line("0.1", 3, &label, idx, val, &nnz, "f.svm", 7, &err), 1);
    assert_true(label == 0.1); /* labels keep double precision */
    assert_int_equal(nnz, 0);
    assert_int_equal(
        pst_libsvm_parse_line("1 2:1 2:2", 9, &label, idx, val, &nnz, "f.svm", 8, &err),
        PST_EFORMAT);
    assert_string_equal(err.msg, "f.svm:8: bad token '2:2': feature indices must be strictly "
                                 "increasing");
    assert_true(pst_libsvm_max_entries(strlen(line)) >= 2);
}

/* A line longer than the reader's chunk grows the chunk instead of splitting the row. */
static void line_longer_than_a_chunk(void **state)
{
    (void)state;
    size_t n = 300000, cap = 16 * n;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, cap, "1");
    for (size_t i = 1; i <= n; i++)
        used += (size_t)snprintf(text + used, cap - used, " %zu:1", i);
    snprintf(text + used, cap - used, "\n0 5:2\n");
    pst_dataset_t *d;
    pst_err_t err;
    assert_int_equal(read_text(text, PST_DATA_TASK_REGRESSION, &d, &err, NULL), PST_OK);
    free(text);
    assert_int_equal(d->n_rows, 2);
    assert_int_equal(d->n_features, n);
    assert_int_equal(d->row_ptr[1], n);
    assert_int_equal(d->row_ptr[2], n + 1);
    assert_int_equal(d->col_idx[n], 4);
    pst_dataset_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csr_contents_and_labels),
        cmocka_unit_test(multiclass_and_regression_labels),
        cmocka_unit_test(iris_round_trip),
        cmocka_unit_test(bad_tokens),
        cmocka_unit_test(format_inference),
        cmocka_unit_test(densify_widths),
        cmocka_unit_test(idx_is_told_by_content_not_name),
        cmocka_unit_test(wide_data_is_not_densified),
        cmocka_unit_test(endless_input_is_refused),
        cmocka_unit_test(one_line_parser),
        cmocka_unit_test(line_longer_than_a_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, pst_scratch_remove);
}
