/* Tests for common/sparsestream: shuffled batches, the buffer bound, the cache, atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/atomicfile.h"
#include "common/gen/clickgen.h"
#include "common/data/libsvm.h"
#include "common/data/sparsestream.h"
#include "scratch.h"

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(pst_scratch_dir());
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text)
{
    pst_err_t err;
    assert_int_equal(pst_write_file_atomic(path, text, strlen(text), &err), PST_OK);
}

static void write_clicks(const char *path, uint64_t rows, uint64_t seed)
{
    pst_clickgen_t cfg;
    pst_clickgen_defaults(&cfg);
    cfg.rows = rows;
    cfg.n_features = 1000;
    cfg.nnz = 5;
    cfg.seed = seed;
    cfg.click_rate = 0.2;
    pst_clickgen_files_t files = {.data = path};
    pst_err_t err;
    if (pst_clickgen_write(&cfg, &files, NULL, &err) != PST_OK)
        fail_msg("%s", err.msg);
}

static pst_dataset_t *read_reference(const char *path)
{
    pst_data_spec_t spec = {.path = path, .task = PST_DATA_TASK_CLASSIFICATION};
    pst_dataset_t *d;
    pst_err_t err;
    if (pst_libsvm_read(&spec, &d, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return d;
}

/* A label as written: the reference holds class indices. */
static float label_of(const pst_dataset_t *ref, uint64_t r)
{
    return ref->class_values ? (float)ref->class_values[(int)ref->y[r]] : ref->y[r];
}

static void assert_row_equal(const pst_sparse_stream_batch_t *b, size_t i, const pst_dataset_t *ref)
{
    uint64_t r = b->row_id[i];
    assert_true(r < ref->n_rows);
    size_t n = b->row_ptr[i + 1] - b->row_ptr[i], start = ref->row_ptr[r];
    assert_int_equal(n, ref->row_ptr[r + 1] - start);
    assert_memory_equal(b->col_idx + b->row_ptr[i], ref->col_idx + start, n * sizeof(uint32_t));
    assert_memory_equal(b->val + b->row_ptr[i], ref->val + start, n * sizeof(float));
    assert_true(b->y[i] == label_of(ref, r));
}

/* Reads one epoch: checks every row against ref, that each appears once, and that the t-th
 * row emitted was among the first buffer + t rows read. Writes the order; returns the count. */
static size_t drain(pst_sparse_stream_t *s, const pst_dataset_t *ref, size_t batch_rows,
                    size_t buffer, uint64_t *order)
{
    unsigned char *seen = calloc(ref->n_rows, 1);
    size_t t = 0;
    const pst_sparse_stream_batch_t *b;
    pst_err_t err;
    for (;;) {
        if (pst_sparse_stream_next(s, &b, &err) != PST_OK)
            fail_msg("%s", err.msg);
        if (b->n_rows == 0)
            break;
        assert_true(b->n_rows == batch_rows || t + b->n_rows == ref->n_rows);
        assert_int_equal(b->row_ptr[0], 0);
        assert_int_equal(b->row_ptr[b->n_rows], b->nnz);
        for (size_t i = 0; i < b->n_rows; i++, t++) {
            assert_row_equal(b, i, ref);
            assert_int_equal(seen[b->row_id[i]]++, 0);
            assert_true(b->row_id[i] < (buffer > 1 ? buffer : 1) + t);
            if (order != NULL)
                order[t] = b->row_id[i];
        }
    }
    assert_int_equal(t, ref->n_rows);
    /* the epoch stays over until a rewind */
    assert_int_equal(pst_sparse_stream_next(s, &b, &err), PST_OK);
    assert_int_equal(b->n_rows, 0);
    free(seen);
    return t;
}

static pst_sparse_stream_t *open_stream(const pst_sparse_source_t *src, size_t batch, size_t buffer,
                                        uint64_t seed, bool cache)
{
    pst_sparse_stream_opts_t opts = {
        .batch_rows = batch, .buffer_rows = buffer, .seed = seed, .use_cache = cache};
    pst_sparse_stream_t *s;
    pst_err_t err;
    if (pst_sparse_stream_open(src, &opts, &s, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return s;
}

static pst_sparse_stream_stats_t stats_of(const pst_sparse_stream_t *s)
{
    pst_sparse_stream_stats_t st;
    pst_sparse_stream_stats(s, &st);
    return st;
}

/* 10,000 rows through a 500-row buffer: each row once per epoch, never more than 500 held. */
static void every_row_once_with_bounded_buffer(void **state)
{
    enum { ROWS = 10000, BUFFER = 500, BATCH = 64 };
    char path[256];
    write_clicks(pst_scratch_path(path, "c.svm"), ROWS, 1);
    pst_dataset_t *ref = read_reference(path);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    uint64_t *e0 = malloc(ROWS * sizeof *e0), *e1 = malloc(ROWS * sizeof *e1);
    uint64_t *again = malloc(ROWS * sizeof *again);

    pst_sparse_stream_t *s = open_stream(&src, BATCH, BUFFER, 42, false);
    drain(s, ref, BATCH, BUFFER, e0);
    pst_sparse_stream_stats_t st = stats_of(s);
    assert_int_equal(st.max_rows_held, BUFFER);
    assert_int_equal(st.rows_held, 0);
    assert_int_equal(st.rows_read, ROWS);
    assert_int_equal(st.n_features, ref->n_features);
    assert_int_equal(st.max_row_nnz, 5);
    assert_false(st.from_cache);
    size_t in_place = 0;
    for (size_t t = 0; t < ROWS; t++)
        in_place += e0[t] == t;
    assert_true(in_place < 100); /* shuffled */

    pst_err_t err;
    assert_int_equal(pst_sparse_stream_rewind(s, &err), PST_OK);
    drain(s, ref, BATCH, BUFFER, e1);
    st = stats_of(s);
    assert_int_equal(st.epoch, 1);
    assert_int_equal(st.max_rows_held, BUFFER);
    assert_int_equal(st.rows_read, 2 * ROWS);
    size_t same = 0;
    for (size_t t = 0; t < ROWS; t++)
        same += e0[t] == e1[t];
    assert_true(same < 100); /* each epoch has its own order */
    pst_sparse_stream_destroy(&s);
    pst_sparse_stream_destroy(&s);

    s = open_stream(&src, 100, BUFFER, 42, false); /* same seed, another batch size */
    drain(s, ref, 100, BUFFER, again);
    assert_memory_equal(e0, again, ROWS * sizeof *e0);
    pst_sparse_stream_destroy(&s);
    free(e0);
    free(e1);
    free(again);
    pst_dataset_destroy(&ref);
}

static void source_order_without_buffer(void **state)
{
    char path[256];
    write_clicks(pst_scratch_path(path, "c.svm"), 3000, 2);
    pst_dataset_t *ref = read_reference(path);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    uint64_t order[3000];
    for (size_t buffer = 0; buffer <= 1; buffer++) {
        pst_sparse_stream_t *s = open_stream(&src, 7, buffer, 1, false);
        drain(s, ref, 7, buffer, order);
        for (uint64_t t = 0; t < 3000; t++)
            assert_int_equal(order[t], t);
        assert_int_equal(stats_of(s).max_rows_held, 1);
        pst_sparse_stream_destroy(&s);
    }
    pst_dataset_destroy(&ref);
}

static const char *hand_svm = "# comment line\n"
                              "+1 1:0.5 3:2 # trailing comment\n"
                              "-1 2:1.5\r\n"
                              "\n"
                              "   \n"
                              "+1\t1:1   4:-3e-1 17:1000000\n"
                              "-1\n"
                              "+1 2:7 5:0.125 6:-1 7:1 8:1 9:1 10:1 11:1 12:1 13:1 14:1 15:1";

/* Comments, blank lines, CRLF, empty rows, no final newline, lines longer than the chunk. */
static void libsvm_details_and_tiny_chunks(void **state)
{
    char path[256];
    write_text(pst_scratch_path(path, "h.svm"), hand_svm);
    pst_dataset_t *ref = read_reference(path);
    assert_int_equal(ref->n_rows, 5);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    for (size_t chunk = 4; chunk <= 4096; chunk *= 8) {
        pst_sparse_stream_opts_t opts = {.batch_rows = 2, .buffer_rows = 3, .chunk_bytes = chunk};
        pst_sparse_stream_t *s;
        pst_err_t err;
        assert_int_equal(pst_sparse_stream_open(&src, &opts, &s, &err), PST_OK);
        drain(s, ref, 2, 3, NULL);
        assert_int_equal(stats_of(s).n_features, 17);
        assert_int_equal(stats_of(s).max_row_nnz, 12);
        pst_sparse_stream_destroy(&s);
    }
    pst_dataset_destroy(&ref);
}

static void gzip_source(void **state)
{
    char path[256], gz[256];
    write_text(pst_scratch_path(path, "h.svm"), hand_svm);
    gzFile f = gzopen(pst_scratch_path(gz, "h.svm.gz"), "wb");
    assert_int_equal(gzwrite(f, hand_svm, (unsigned)strlen(hand_svm)), (int)strlen(hand_svm));
    gzclose(f);
    pst_dataset_t *ref = read_reference(path);
    pst_sparse_source_t src = {.path = gz, .format = PST_SPARSE_LIBSVM};
    pst_sparse_stream_t *s = open_stream(&src, 4, 2, 3, true);
    drain(s, ref, 4, 2, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);
    pst_dataset_destroy(&ref);
}

static void expect_text_error(const char *text, const char *needle)
{
    char path[256];
    write_text(pst_scratch_path(path, "bad.svm"), text);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    pst_sparse_stream_t *s = open_stream(&src, 1000, 10, 1, true);
    const pst_sparse_stream_batch_t *b;
    pst_err_t err;
    pst_err_clear(&err);
    assert_int_equal(pst_sparse_stream_next(s, &b, &err), PST_EFORMAT);
    if (strstr(err.msg, path) == NULL || strstr(err.msg, needle) == NULL)
        fail_msg("message '%s' lacks the path or '%s'", err.msg, needle);
    pst_sparse_stream_destroy(&s);
    char cache[256];
    assert_int_equal(access(pst_scratch_path(cache, "bad.svm.pstcache"), F_OK), -1);
    assert_int_equal(count_temp_files(), 0);
}

static void text_errors_name_file_and_line(void **state)
{
    expect_text_error("1 1:1\n0 2:1\n\n1 3:x\n", ":4: bad token '3:x': non-numeric");
    expect_text_error("1 1:1 1:2\n", ":1: bad token '1:2': feature indices must be strictly");
    expect_text_error("1 0:1\n", ":1: bad token '0:1': feature index 0");
    expect_text_error("# c\nyes 1:1\n", ":2: bad token 'yes': label is not a finite number");
    expect_text_error("1 5\n", ":1: bad token '5': expected idx:value");
    expect_text_error("1 99999999999:1\n", "feature index too large");
    pst_sparse_source_t src = {.path = "/nonexistent/x.svm", .format = PST_SPARSE_LIBSVM};
    pst_sparse_stream_opts_t opts = {.use_cache = true};
    pst_sparse_stream_t *s;
    pst_err_t err;
    assert_int_equal(pst_sparse_stream_open(&src, &opts, &s, &err), PST_EIO);
    assert_null(s);
}

static struct stat stat_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb;
}

static void set_mtime(const char *path, time_t seconds)
{
    struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

/* Written on the first full read, reused while the source is unchanged, rebuilt after. */
static void cache_written_reused_rebuilt(void **state)
{
    char path[256], cache[256];
    write_clicks(pst_scratch_path(path, "c.svm"), 5000, 3);
    pst_scratch_path(cache, "c.svm.pstcache");
    pst_dataset_t *ref = read_reference(path);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    pst_err_t err;
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_ENOTFOUND);

    /* an unfinished epoch leaves no cache and no temporary file */
    pst_sparse_stream_t *s = open_stream(&src, 64, 100, 5, true);
    const pst_sparse_stream_batch_t *b;
    assert_int_equal(pst_sparse_stream_next(s, &b, &err), PST_OK);
    pst_sparse_stream_destroy(&s);
    assert_int_equal(access(cache, F_OK), -1);
    assert_int_equal(count_temp_files(), 0);

    s = open_stream(&src, 64, 100, 5, true);
    assert_false(stats_of(s).from_cache);
    drain(s, ref, 64, 100, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);
    struct stat first = stat_of(cache);
    assert_int_equal(first.st_size, 96 + 16 * 1 + 8 * 5000 + 8 * 5000 * 5);

    assert_int_equal(pst_sparse_stream_rewind(s, &err), PST_OK);
    assert_true(stats_of(s).from_cache);
    drain(s, ref, 64, 100, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);

    s = open_stream(&src, 50, 1000, 6, true); /* a new stream reads the cache too */
    assert_true(stats_of(s).from_cache);
    assert_int_equal(stats_of(s).n_features, ref->n_features);
    drain(s, ref, 50, 1000, NULL);
    assert_int_equal(stats_of(s).caches_written, 0);
    pst_sparse_stream_destroy(&s);
    struct stat again = stat_of(cache);
    assert_int_equal(again.st_ino, first.st_ino);
    assert_true(again.st_mtim.tv_sec == first.st_mtim.tv_sec &&
                again.st_mtim.tv_nsec == first.st_mtim.tv_nsec);

    /* a new source (other rows, other mtime) makes the cache stale */
    pst_dataset_destroy(&ref);
    write_clicks(path, 4000, 4);
    set_mtime(path, 1000000);
    ref = read_reference(path);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "source changed"));
    s = open_stream(&src, 64, 100, 5, true);
    assert_false(stats_of(s).from_cache);
    assert_int_equal(stats_of(s).caches_rejected, 1);
    drain(s, ref, 64, 100, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);

    /* only the mtime changes: still stale */
    set_mtime(path, 1000001);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    pst_dataset_destroy(&ref);
}

static void flip_byte(const char *path, long offset)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    if (offset < 0) {
        fseek(f, 0, SEEK_END);
        offset += ftell(f);
    }
    fseek(f, offset, SEEK_SET);
    int c = fgetc(f);
    fseek(f, offset, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

/* Builds the cache of src with one full epoch. */
static void build_cache(const pst_sparse_source_t *src, const pst_dataset_t *ref)
{
    pst_sparse_stream_t *s = open_stream(src, 256, 1, 1, true);
    drain(s, ref, 256, 1, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);
}

static void corrupt_caches_are_rejected(void **state)
{
    char path[256], cache[256];
    write_clicks(pst_scratch_path(path, "c.svm"), 60000, 7); /* several cache blocks */
    pst_scratch_path(cache, "c.svm.pstcache");
    pst_dataset_t *ref = read_reference(path);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_LIBSVM};
    pst_err_t err;

    build_cache(&src, ref);
    flip_byte(cache, 50); /* a header field */
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "header checksum"));
    pst_sparse_stream_t *s = open_stream(&src, 128, 300, 2, true);
    assert_false(stats_of(s).from_cache);
    assert_int_equal(stats_of(s).caches_rejected, 1);
    drain(s, ref, 128, 300, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);

    /* a payload byte in the last block: found while reading, the epoch ends from the text */
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);
    flip_byte(cache, -20);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK); /* the header is intact */
    s = open_stream(&src, 128, 300, 2, true);
    assert_true(stats_of(s).from_cache);
    drain(s, ref, 128, 300, NULL);
    assert_false(stats_of(s).from_cache);
    assert_int_equal(stats_of(s).caches_rejected, 1);
    assert_int_equal(access(cache, F_OK), -1); /* deleted */
    assert_int_equal(pst_sparse_stream_rewind(s, &err), PST_OK);
    drain(s, ref, 128, 300, NULL); /* the next epoch rebuilds it */
    assert_int_equal(stats_of(s).caches_written, 1);
    pst_sparse_stream_destroy(&s);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);

    /* truncated, and not a cache at all */
    assert_int_equal(truncate(cache, stat_of(cache).st_size - 8), 0);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "length"));
    write_text(cache, "not a cache, but long enough to hold a header of ninety-six bytes......"
                      "..........................");
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    s = open_stream(&src, 1000, 1000, 2, true);
    drain(s, ref, 1000, 1000, NULL);
    pst_sparse_stream_destroy(&s);
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);
    pst_dataset_destroy(&ref);
}

/* A TSV of rows label, 3 numbers, 4 strings, some cells empty. */
static void write_tsv(const char *path, int rows)
{
    size_t cap = (size_t)rows * 80 + 1, len = 0;
    char *text = malloc(cap);
    uint32_t x = 12345;
    for (int r = 0; r < rows; r++) {
        x = x * 1103515245u + 12345u;
        len += (size_t)snprintf(text + len, cap - len, "%u", (x >> 16) & 1);
        for (int c = 0; c < 3; c++) {
            x = x * 1103515245u + 12345u;
            if ((x >> 8) % 7 == 0)
                len += (size_t)snprintf(text + len, cap - len, "\t");
            else
                len += (size_t)snprintf(text + len, cap - len, "\t%d", (int)((x >> 12) % 300) - 5);
        }
        for (int c = 0; c < 4; c++) {
            x = x * 1103515245u + 12345u;
            if ((x >> 8) % 9 == 0)
                len += (size_t)snprintf(text + len, cap - len, "\t");
            else
                len += (size_t)snprintf(text + len, cap - len, "\t%08x", (x >> 10) % (50u << c));
        }
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    write_text(path, text);
    free(text);
}

static void hashed_tsv_stream_and_cache(void **state)
{
    char path[256];
    write_tsv(pst_scratch_path(path, "t.tsv"), 2000);
    pst_hash_spec_t spec = {
        .n_numeric = 3, .n_categorical = 4, .bits = 18, .seed = 5, .numeric = PST_NUMERIC_BUCKET};
    pst_dataset_t *ref;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_read(path, 3, 4, 18, 5, PST_NUMERIC_BUCKET, &ref, &err),
                     PST_OK);
    pst_sparse_source_t src = {.path = path, .format = PST_SPARSE_TSV_HASHED, .hash = spec};
    pst_sparse_stream_t *s = open_stream(&src, 33, 100, 9, true);
    assert_int_equal(stats_of(s).n_features, 1 << 18);
    drain(s, ref, 33, 100, NULL);
    assert_int_equal(stats_of(s).caches_written, 1);
    assert_int_equal(pst_sparse_stream_rewind(s, &err), PST_OK);
    assert_true(stats_of(s).from_cache);
    drain(s, ref, 33, 100, NULL);
    pst_sparse_stream_destroy(&s);
    pst_dataset_destroy(&ref);

    /* another hash spec: the cache is stale */
    src.hash.numeric = PST_NUMERIC_LOG;
    assert_int_equal(pst_sparse_cache_check(&src, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "hash spec"));
    assert_int_equal(pst_tsv_hashed_read(path, 3, 4, 18, 5, PST_NUMERIC_LOG, &ref, &err), PST_OK);
    s = open_stream(&src, 64, 10, 9, true);
    assert_false(stats_of(s).from_cache);
    drain(s, ref, 64, 10, NULL);
    pst_sparse_stream_destroy(&s);
    pst_dataset_destroy(&ref);

    /* TSV errors name the line */
    write_text(path, "1\t1\t2\t3\ta\tb\tc\td\n0\t1\t2\ta\tb\tc\td\n");
    s = open_stream(&src, 64, 10, 9, false);
    const pst_sparse_stream_batch_t *b;
    assert_int_equal(pst_sparse_stream_next(s, &b, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, ":2: missing columns"));
    pst_sparse_stream_destroy(&s);
    src.hash.bits = 0;
    pst_sparse_stream_opts_t opts = {0};
    assert_int_equal(pst_sparse_stream_open(&src, &opts, &s, &err), PST_EINVAL);
}

static void assert_same_dataset(const pst_dataset_t *a, const pst_dataset_t *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    assert_int_equal(a->n_features, b->n_features);
    assert_int_equal(a->n_classes, b->n_classes);
    assert_int_equal(a->task, b->task);
    assert_memory_equal(a->class_values, b->class_values, a->n_classes * sizeof(double));
    assert_memory_equal(a->row_ptr, b->row_ptr, (a->n_rows + 1) * sizeof(size_t));
    size_t nnz = a->row_ptr[a->n_rows];
    assert_memory_equal(a->col_idx, b->col_idx, nnz * sizeof(uint32_t));
    assert_memory_equal(a->val, b->val, nnz * sizeof(float));
    assert_memory_equal(a->y, b->y, a->n_rows * sizeof(float));
}

/* Whole-file loads equal the LIBSVM reader's, from the text and from the cache. */
static void load_equals_reader(void **state)
{
    char path[256], hand[256];
    write_clicks(pst_scratch_path(path, "c.svm"), 70000, 8);
    write_text(pst_scratch_path(hand, "h.svm"), hand_svm);
    const char *paths[] = {path, hand};
    for (int i = 0; i < 2; i++) {
        pst_dataset_t *ref = read_reference(paths[i]), *d;
        pst_sparse_source_t src = {.path = paths[i], .format = PST_SPARSE_LIBSVM};
        pst_data_spec_t labels = {.task = PST_DATA_TASK_CLASSIFICATION};
        pst_err_t err;
        for (int pass = 0; pass < 2; pass++) { /* builds, then reads the cache */
            assert_int_equal(pst_sparse_load(&src, true, &labels, &d, &err), PST_OK);
            assert_same_dataset(d, ref);
            pst_dataset_destroy(&d);
            assert_int_equal(pst_sparse_cache_check(&src, &err), PST_OK);
        }
        pst_dataset_destroy(&ref);
    }
    pst_dataset_t *d;
    pst_err_t err;
    char empty[256];
    write_text(pst_scratch_path(empty, "e.svm"), "# nothing\n\n");
    pst_sparse_source_t src = {.path = empty, .format = PST_SPARSE_LIBSVM};
    assert_int_equal(pst_sparse_load(&src, false, NULL, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "no data rows"));
}

static void atomic_writer(void **state)
{
    char path[256], other[256];
    pst_atomic_writer_t *w;
    pst_err_t err;
    assert_int_equal(pst_atomic_writer_open(pst_scratch_path(path, "w.bin"), 8, &w, &err), PST_OK);
    assert_int_equal(pst_atomic_writer_write(w, "0123456789", 10, &err), PST_OK);
    char *p;
    assert_int_equal(pst_atomic_writer_reserve(w, 4, &p, &err), PST_OK);
    memcpy(p, "abcd", 4);
    pst_atomic_writer_advance(w, 3);
    assert_int_equal(pst_atomic_writer_offset(w), 13);
    assert_int_equal(pst_atomic_writer_reserve(w, 9, &p, &err), PST_EINVAL);
    assert_int_equal(pst_atomic_writer_patch(w, 2, "XY", 2, &err), PST_OK);
    assert_int_equal(pst_atomic_writer_patch(w, 12, "XY", 2, &err), PST_EINVAL);
    assert_int_equal(access(path, F_OK), -1); /* nothing at the path before the commit */
    assert_int_equal(pst_atomic_writer_commit(&w, &err), PST_OK);
    assert_null(w);
    unsigned char *data;
    size_t len;
    assert_int_equal(pst_read_file(path, 100, &data, &len, &err), PST_OK);
    assert_int_equal(len, 13);
    assert_memory_equal(data, "01XY456789abc", 13);
    free(data);
    assert_int_equal(stat_of(path).st_mode & 0777, 0644);

    assert_int_equal(pst_atomic_writer_open(pst_scratch_path(other, "x.bin"), 0, &w, &err), PST_OK);
    assert_int_equal(pst_atomic_writer_write(w, "abc", 3, &err), PST_OK);
    assert_int_equal(count_temp_files(), 1);
    pst_atomic_writer_destroy(&w);
    pst_atomic_writer_destroy(&w);
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(count_temp_files(), 0);
    assert_int_equal(pst_atomic_writer_open("/nonexistent/x", 0, &w, &err), PST_EIO);
    assert_null(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_row_once_with_bounded_buffer, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(source_order_without_buffer, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(libsvm_details_and_tiny_chunks, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(gzip_source, pst_scratch_make, pst_scratch_remove),
        cmocka_unit_test_setup_teardown(text_errors_name_file_and_line, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(cache_written_reused_rebuilt, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(corrupt_caches_are_rejected, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(hashed_tsv_stream_and_cache, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(load_equals_reader, pst_scratch_make, pst_scratch_remove),
        cmocka_unit_test_setup_teardown(atomic_writer, pst_scratch_make, pst_scratch_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
