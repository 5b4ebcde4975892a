/* Tests for common/data/sparse_parallel and textfile: text parsed on 1, 2, 3 and 7 byte ranges
 * gives the line-by-line reader's rows and first error bit for bit, and whole loads through the
 * mapped cache give the text's rows, refusing or rebuilding truncated and corrupt caches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/data/libsvm.h"
#include "common/data/sparsestream.h"
#include "common/data/sparsestream_internal.h"
#include "common/data/textfile.h"
#include "common/log.h"
#include "common/rng.h"
#include "scratch.h"

static const unsigned thread_counts[] = {1, 2, 3, 7};

/* A growing text. */
typedef struct text {
    char *s;
    size_t len, cap;
} text_t;

static void put(text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof line);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = 2 * (t->len + (size_t)n + 1);
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

/* Values that take every path of the number parser: plain, long, hex, exponents, signs. */
static const char *awkward[] = {"1",
                                "0.5",
                                "-0",
                                "0.1",
                                "3.14159",
                                "1e-7",
                                "2.5E+3",
                                "-.25",
                                "7.",
                                "0x1p-3",
                                "1e-45",
                                "3.4028234e38",
                                "0.3",
                                "123456789012345678901",
                                "9007199254740993",
                                "1.00000000000000011102230246251565404236316680908203125",
                                "4.9e-324",
                                "+6",
                                "1e22",
                                "1e23"};

/* LIBSVM text of rows lines with blank, comment and CRLF lines, tabs, trailing comments and
 * awkward values; no final newline when open_end. */
static void libsvm_text(text_t *t, int rows, uint64_t seed, bool open_end)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    size_t n_awk = sizeof awkward / sizeof *awkward;
    for (int r = 0; r < rows; r++) {
        uint64_t kind = pst_rng_below(&rng, 12);
        if (kind == 0) {
            put(t, "\n");
            continue;
        }
        if (kind == 1) {
            put(t, "# comment line %d\n", r);
            continue;
        }
        put(t, "%s", pst_rng_below(&rng, 2) ? "1" : (kind == 2 ? "-1.0" : "0"));
        uint64_t idx = 0, entries = pst_rng_below(&rng, 9);
        for (uint64_t e = 0; e < entries; e++) {
            idx += 1 + pst_rng_below(&rng, 50);
            put(t, "%s%llu:%s", kind == 3 && e == 1 ? "\t" : " ", (unsigned long long)idx,
                awkward[pst_rng_below(&rng, n_awk)]);
        }
        put(t, "%s", kind == 4 ? " # trailing" : kind == 5 ? "\r" : kind == 6 ? "  " : "");
        if (!(open_end && r == rows - 1))
            put(t, "\n");
    }
}

/* Criteo-style TSV: label, 2 numbers, 3 tokens; empty cells, blank and CRLF lines. */
static void tsv_text(text_t *t, int rows, uint64_t seed, bool open_end)
{
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    for (int r = 0; r < rows; r++) {
        uint64_t kind = pst_rng_below(&rng, 10);
        if (kind == 0) {
            put(t, "\n");
            continue;
        }
        put(t, "%d\t%s\t%s\t%s\t\t%08llx%s", (int)pst_rng_below(&rng, 2),
            kind == 2 ? "" : awkward[pst_rng_below(&rng, 9)], awkward[pst_rng_below(&rng, 9)],
            kind == 3 ? "" : "a1b2", (unsigned long long)pst_rng_below(&rng, 1u << 20),
            kind == 4 ? "\r" : "");
        if (!(open_end && r == rows - 1))
            put(t, "\n");
    }
}

static const char *save(const text_t *t, const char *name)
{
    static char path[256];
    pst_err_t err;
    pst_scratch_path(path, name);
    assert_int_equal(pst_write_file_atomic(path, t->s, t->len, &err), PST_OK);
    return path;
}

/* The line-by-line reader's rows of src into b, or its error code with err. */
static int serial_rows(const pst_sparse_source_t *src, pst_sparse_csr_build_t *b, pst_err_t *err)
{
    pst_sparse_text_t text;
    int rc = pst_sparse_text_open(&text, src, 64, err); /* tiny chunks: lines cross every read */
    assert_int_equal(rc, PST_OK);
    pst_sparse_row_t row;
    b->with_lines = true;
    while ((rc = pst_sparse_text_row(&text, &row, err)) == 1)
        assert_int_equal(pst_sparse_csr_append(b, &row, text.line_no, err), PST_OK);
    pst_sparse_text_close(&text);
    return rc;
}

static void assert_same_rows(const pst_sparse_csr_build_t *a, const pst_sparse_csr_build_t *b)
{
    assert_int_equal(a->csr.n_rows, b->csr.n_rows);
    assert_int_equal(a->nnz, b->nnz);
    assert_int_equal(a->csr.n_features, b->csr.n_features);
    size_t rows = a->csr.n_rows, nnz = a->nnz;
    assert_memory_equal(a->csr.row_ptr, b->csr.row_ptr, (rows + 1) * sizeof(size_t));
    assert_memory_equal(a->csr.raw, b->csr.raw, rows * sizeof(double)); /* bit for bit */
    assert_memory_equal(a->csr.lines, b->csr.lines, rows * sizeof(size_t));
    assert_memory_equal(a->csr.col_idx, b->csr.col_idx, nnz * sizeof(uint32_t));
    assert_memory_equal(a->csr.val, b->csr.val, nnz * sizeof(float));
}

/* At least one of the n - 1 inner range offsets of data falls inside a line. */
static bool some_offset_inside_a_line(const char *data, size_t len, unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        size_t offset = len * i / n;
        if (data[offset - 1] != '\n' && pst_text_range_start(data, len, i, n) != offset)
            return true;
    }
    return false;
}

/* src's file parsed on every thread count equals the serial reader's rows. */
static void check_parallel_equals_serial(const pst_sparse_source_t *src, size_t min_rows)
{
    pst_sparse_csr_build_t ref = {0};
    pst_err_t err;
    assert_int_equal(serial_rows(src, &ref, &err), 0);
    assert_true(ref.csr.n_rows >= min_rows);
    pst_text_file_t file;
    assert_int_equal(pst_text_file_open(&file, src->path, &err), PST_OK);
    for (size_t k = 0; k < sizeof thread_counts / sizeof *thread_counts; k++) {
        unsigned n = thread_counts[k];
        assert_int_equal(pst_text_thread_count(n, file.len), n);
        if (n > 2)
            assert_true(some_offset_inside_a_line(file.data, file.len, n));
        pst_sparse_csr_build_t got = {.with_lines = true};
        assert_int_equal(pst_sparse_parse_text(src, file.data, file.len, n, &got, &err), PST_OK);
        assert_same_rows(&ref, &got);
        pst_sparse_csr_fini(&got);
    }
    pst_text_file_close(&file);
    pst_sparse_csr_fini(&ref);
}

static void libsvm_ranges_equal_serial(void **state)
{
    (void)state;
    for (int open_end = 0; open_end < 2; open_end++) {
        text_t t = {0};
        libsvm_text(&t, 400, 11 + (uint64_t)open_end, open_end);
        assert_true(open_end ? t.s[t.len - 1] != '\n' : t.s[t.len - 1] == '\n');
        pst_sparse_source_t src = {.path = save(&t, "a.svm"), .format = PST_SPARSE_LIBSVM};
        check_parallel_equals_serial(&src, 300);
        free(t.s);
    }
}

static void tsv_ranges_equal_serial(void **state)
{
    (void)state;
    for (int open_end = 0; open_end < 2; open_end++) {
        text_t t = {0};
        tsv_text(&t, 300, 5 + (uint64_t)open_end, open_end);
        pst_sparse_source_t src = {.path = save(&t, "a.tsv"),
                                   .format = PST_SPARSE_TSV_HASHED,
                                   .hash = {.n_numeric = 2,
                                            .n_categorical = 3,
                                            .bits = 12,
                                            .seed = 3,
                                            .numeric = PST_NUMERIC_LOG}};
        check_parallel_equals_serial(&src, 250);
        free(t.s);
    }
}

/* One line longer than a range: the ranges that start inside it hold no line at all. */
static void long_line_spans_ranges(void **state)
{
    (void)state;
    text_t t = {0};
    put(&t, "1 3:1\n0");
    for (int i = 1; i <= 150; i++)
        put(&t, " %d:%d", i, i);
    put(&t, "\n1 7:2.5\n");
    pst_sparse_source_t src = {.path = save(&t, "long.svm"), .format = PST_SPARSE_LIBSVM};
    check_parallel_equals_serial(&src, 3);
    free(t.s);
}

/* The message of the first bad line in file order, whatever range it falls in. */
static void check_error(const char *name, const text_t *t, const pst_sparse_source_t *base,
                        const char *needle)
{
    pst_sparse_source_t src = *base;
    src.path = save(t, name);
    pst_sparse_csr_build_t ref = {0};
    pst_err_t want, got;
    int rc = serial_rows(&src, &ref, &want);
    pst_sparse_csr_fini(&ref);
    assert_int_equal(rc, PST_EFORMAT);
    if (strstr(want.msg, needle) == NULL)
        fail_msg("serial message '%s' lacks '%s'", want.msg, needle);
    for (size_t k = 0; k < sizeof thread_counts / sizeof *thread_counts; k++) {
        pst_sparse_csr_build_t b = {.with_lines = true};
        pst_err_clear(&got);
        assert_int_equal(pst_sparse_parse_text(&src, t->s, t->len, thread_counts[k], &b, &got),
                         PST_EFORMAT);
        assert_string_equal(got.msg, want.msg);
        assert_null(b.csr.row_ptr);
    }
}

static void errors_name_the_first_bad_line(void **state)
{
    (void)state;
    pst_sparse_source_t svm = {.format = PST_SPARSE_LIBSVM};
    text_t t = {0};
    for (int i = 0; i < 300; i++)
        put(&t, i % 7 ? "1 %d:0.5 %d:1\n" : "\n", i + 1, i + 2);
    size_t good = t.len;
    put(&t, "0 4:1 4:2\n"); /* line 301, in the last of 2, 3 or 7 ranges */
    check_error("late.svm", &t, &svm, ":301: bad token '4:2': feature indices must be strictly");
    t.len = good;
    for (int i = 0; i < 40; i++)
        put(&t, "1 2:1\n");
    put(&t, "1 9:x\n"); /* line 341 */
    t.s[good / 2 + 1] = '\0';
    /* a NUL half-way: line 151 fails first (its label), before line 341 */
    size_t line = 1;
    for (size_t i = 0; i < good / 2 + 1; i++)
        line += t.s[i] == '\n';
    char needle[32];
    snprintf(needle, sizeof needle, ":%zu: bad token", line);
    check_error("two.svm", &t, &svm, needle);
    free(t.s);

    pst_sparse_source_t tsv = {.format = PST_SPARSE_TSV_HASHED,
                               .hash = {.n_numeric = 1, .n_categorical = 1, .bits = 8}};
    text_t u = {0};
    for (int i = 0; i < 200; i++)
        put(&u, "%d\t%d\tab\n", i % 2, i);
    put(&u, "1\t2\n");
    check_error("late.tsv", &u, &tsv, ":201: missing columns: expected 3, found 2");
    free(u.s);
}

/* pst_libsvm_read: the same dataset (labels, classes, entries) on every thread count. */
static void libsvm_read_same_for_every_count(void **state)
{
    (void)state;
    text_t t = {0};
    libsvm_text(&t, 300, 99, true);
    const char *path = save(&t, "r.svm");
    pst_dataset_t *ref = NULL;
    pst_err_t err;
    for (size_t k = 0; k < sizeof thread_counts / sizeof *thread_counts; k++) {
        pst_data_spec_t spec = {
            .path = path, .task = PST_DATA_TASK_CLASSIFICATION, .read_threads = thread_counts[k]};
        pst_dataset_t *d;
        assert_int_equal(pst_libsvm_read(&spec, &d, &err), PST_OK);
        if (ref == NULL) {
            ref = d;
            assert_int_equal(d->n_classes, 3); /* -1, 0, 1 */
            continue;
        }
        assert_int_equal(d->n_rows, ref->n_rows);
        assert_int_equal(d->n_features, ref->n_features);
        assert_memory_equal(d->row_ptr, ref->row_ptr, (d->n_rows + 1) * sizeof *d->row_ptr);
        size_t nnz = d->row_ptr[d->n_rows];
        assert_memory_equal(d->col_idx, ref->col_idx, nnz * sizeof *d->col_idx);
        assert_memory_equal(d->val, ref->val, nnz * sizeof *d->val);
        assert_memory_equal(d->y, ref->y, d->n_rows * sizeof *d->y);
        pst_dataset_destroy(&d);
    }
    pst_dataset_destroy(&ref);
    free(t.s);
}

static void assert_same_dataset(const pst_dataset_t *a, const pst_dataset_t *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    assert_int_equal(a->n_features, b->n_features);
    assert_memory_equal(a->row_ptr, b->row_ptr, (a->n_rows + 1) * sizeof *a->row_ptr);
    size_t nnz = a->row_ptr[a->n_rows];
    assert_memory_equal(a->col_idx, b->col_idx, nnz * sizeof *a->col_idx);
    assert_memory_equal(a->val, b->val, nnz * sizeof *a->val);
    assert_memory_equal(a->y, b->y, a->n_rows * sizeof *a->y);
}

static pst_dataset_t *load(const pst_sparse_source_t *src, bool cache, unsigned threads)
{
    pst_data_spec_t labels = {.task = PST_DATA_TASK_CLASSIFICATION, .read_threads = threads};
    pst_dataset_t *d;
    pst_err_t err;
    if (pst_sparse_load(src, cache, &labels, &d, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return d;
}

static off_t size_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* Rows of about 2 MiB of text: enough for several cache blocks. */
static void big_text(text_t *t)
{
    pst_rng_t rng;
    pst_rng_init(&rng, 4);
    for (int r = 0; r < 30000; r++) {
        put(t, "%d", (int)pst_rng_below(&rng, 2));
        uint64_t idx = 0;
        for (int e = 0; e < 12; e++)
            put(t, " %llu:%s", (unsigned long long)(idx += 1 + pst_rng_below(&rng, 900)),
                awkward[pst_rng_below(&rng, 8)]);
        put(t, "\n");
    }
}

static void mapped_cache_equals_text(void **state)
{
    (void)state;
    text_t t = {0};
    big_text(&t);
    pst_sparse_source_t src = {.path = save(&t, "big.svm"), .format = PST_SPARSE_LIBSVM};
    char cache[300];
    snprintf(cache, sizeof cache, "%s.pstcache", src.path);
    pst_dataset_t *text = load(&src, false, 3);
    assert_int_equal(access(cache, F_OK), -1);
    for (size_t k = 0; k < sizeof thread_counts / sizeof *thread_counts; k++) {
        unlink(cache);
        pst_dataset_t *first = load(&src, true, thread_counts[k]); /* from text, writes it */
        pst_err_t err;
        assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);
        pst_dataset_t *mapped = load(&src, true, thread_counts[k]);
        assert_same_dataset(text, first);
        assert_same_dataset(text, mapped);
        /* the cache's own rows, read through the mapping */
        pst_sparse_csr_build_t b;
        assert_int_equal(pst_sparse_cache_load(&src, cache, thread_counts[k], &b, &err), PST_OK);
        assert_int_equal(b.csr.n_rows, text->n_rows);
        assert_memory_equal(b.csr.row_ptr, text->row_ptr, (text->n_rows + 1) * sizeof(size_t));
        assert_memory_equal(b.csr.col_idx, text->col_idx, b.nnz * sizeof(uint32_t));
        assert_memory_equal(b.csr.val, text->val, b.nnz * sizeof(float));
        for (size_t i = 0; i < text->n_rows; i++)
            assert_true(b.csr.raw[i] == text->class_values[(size_t)text->y[i]]);
        pst_sparse_csr_fini(&b);
        pst_dataset_destroy(&first);
        pst_dataset_destroy(&mapped);
    }
    pst_dataset_destroy(&text);
    free(t.s);
}

/* A cache cut short, or with a flipped payload byte, is refused and rebuilt from the text. */
static void damaged_cache_rebuilt(void **state)
{
    (void)state;
    text_t t = {0};
    big_text(&t);
    pst_sparse_source_t src = {.path = save(&t, "dmg.svm"), .format = PST_SPARSE_LIBSVM};
    char cache[300];
    snprintf(cache, sizeof cache, "%s.pstcache", src.path);
    pst_dataset_t *text = load(&src, false, 1);
    pst_dataset_destroy(&text);
    text = load(&src, true, 2);
    off_t full = size_of(cache);
    const off_t cuts[] = {full - 1, full / 2, 100, 95, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        assert_int_equal(truncate(cache, cuts[i]), 0);
        pst_err_t err;
        assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
        pst_sparse_csr_build_t b;
        assert_int_equal(pst_sparse_cache_load(&src, cache, 2, &b, &err), PST_EFORMAT);
        if (strstr(err.msg, cache) == NULL)
            fail_msg("'%s' does not name the cache", err.msg);
        pst_dataset_t *d = load(&src, true, 2);
        assert_same_dataset(text, d);
        pst_dataset_destroy(&d);
        assert_int_equal(size_of(cache), full); /* rewritten whole */
    }
    /* a flipped byte in the last block's values: the checksum catches it */
    FILE *f = fopen(cache, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, full - 3, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, full - 3, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    pst_sparse_csr_build_t b;
    pst_err_t err;
    assert_int_equal(pst_sparse_cache_load(&src, cache, 3, &b, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "is corrupt"));
    pst_dataset_t *d = load(&src, true, 3);
    assert_same_dataset(text, d);
    pst_dataset_destroy(&d);
    assert_int_equal(pst_sparse_cache_load(&src, cache, 3, &b, &err), PST_OK);
    pst_sparse_csr_fini(&b);
    pst_dataset_destroy(&text);
    free(t.s);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(libsvm_ranges_equal_serial, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(tsv_ranges_equal_serial, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(long_line_spans_ranges, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(errors_name_the_first_bad_line, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(libsvm_read_same_for_every_count, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(mapped_cache_equals_text, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(damaged_cache_rebuilt, pst_scratch_make,
                                        pst_scratch_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
