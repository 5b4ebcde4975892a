/* Tests for common/hashing: golden values, spread, numeric buckets, the TSV reader. */
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

#include "common/data/hashing.h"
#include "scratch.h"

/* Golden values from an independent Python implementation of the algorithm documented in
 * hashing.h; a change here changes every hashed model. */
static void golden_values(void **state)
{
    assert_true(pst_hash64(0, "", 0) == 0xe220a8397b1dcdafULL);
    assert_true(pst_hash64(0, "a", 1) == 0x98bfc87b4e1e8a9cULL);
    assert_true(pst_hash64(42, "hello world", 11) == 0x8d1835ad6e688641ULL);
    assert_true(pst_hash64(7, "0123456789abcdef", 16) == 0x0bf77d274abcbd56ULL);
    assert_true(pst_hash64(7, "0123456789abcdefg", 17) == 0xb7f41da8f7e6197bULL);
    assert_true(pst_hash64(UINT64_MAX, "68fd1e64", 8) == 0x619110adbf452c20ULL);
    assert_true(pst_hash_field_seed(0, 0) == 0xb39362cb946013e3ULL);
    assert_true(pst_hash_field_seed(123, 38) == 0x947c21924b1db702ULL);
    assert_int_equal(pst_hash_feature(0, 0, "68fd1e64", 8, 20), 670496);
    assert_int_equal(pst_hash_feature(7, 3, "68fd1e64", 8, 20), 14536);
    assert_int_equal(pst_hash_feature(7, 4, "68fd1e64", 8, 20), 933623);
    assert_int_equal(pst_hash_feature(7, 3, "", 0, 24), 14581587);
    assert_int_equal(pst_hash_feature(1, 25, "e5ba7672", 8, 32), 1421986991u);
    assert_int_equal(pst_hash_feature(1, 25, "e5ba7672", 8, 1), 0);
}

/* Only len bytes count: what follows the token does not change its hash. */
static void hash_reads_only_len_bytes(void **state)
{
    char a[] = "abcdefghijXYZ", b[] = "abcdefghijQRS";
    assert_true(pst_hash64(5, a, 10) == pst_hash64(5, b, 10));
    assert_true(pst_hash64(5, a, 11) != pst_hash64(5, b, 11));
    /* a trailing zero byte is part of the input, not padding */
    assert_true(pst_hash64(5, "a\0", 2) != pst_hash64(5, "a", 1));
}

/* 200,000 distinct tokens in 1,024 buckets: chi-square near its mean 1,023 (sd 45). */
static void buckets_are_uniform(void **state)
{
    enum { BITS = 10, N = 200000 };
    unsigned *count = calloc(1u << BITS, sizeof *count);
    assert_non_null(count);
    char tok[32];
    for (int i = 0; i < N; i++) {
        int len = snprintf(tok, sizeof tok, "tok%d", i);
        uint32_t b = pst_hash_feature(11, 2, tok, (size_t)len, BITS);
        assert_true(b < (1u << BITS));
        count[b]++;
    }
    double expect = (double)N / (1u << BITS), chi2 = 0;
    for (unsigned b = 0; b < (1u << BITS); b++)
        chi2 += (count[b] - expect) * (count[b] - expect) / expect;
    assert_true(chi2 > 1023 - 5 * 45 && chi2 < 1023 + 5 * 45);
    free(count);
}

/* One flipped input bit flips about half of the 64 output bits. */
static void avalanche(void **state)
{
    double total = 0;
    int n = 0;
    for (int i = 0; i < 500; i++) {
        unsigned char buf[12];
        for (int k = 0; k < 12; k++)
            buf[k] = (unsigned char)(i * 31 + k * 7);
        uint64_t h = pst_hash64(3, buf, sizeof buf);
        for (int bit = 0; bit < 96; bit += 5) {
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            total += __builtin_popcountll(h ^ pst_hash64(3, buf, sizeof buf));
            buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            n++;
        }
    }
    double mean = total / n;
    assert_true(mean > 31.0 && mean < 33.0);
}

/* The same token in 200 fields lands in 200 independent buckets of 2^24. */
static void fields_are_namespaces(void **state)
{
    uint32_t b[200];
    int equal = 0;
    for (uint32_t f = 0; f < 200; f++) {
        b[f] = pst_hash_feature(9, f, "same", 4, 24);
        for (uint32_t g = 0; g < f; g++)
            equal += b[g] == b[f];
    }
    assert_true(equal <= 1);
    /* different seeds, different buckets */
    assert_int_not_equal(pst_hash_feature(1, 0, "same", 4, 24),
                         pst_hash_feature(2, 0, "same", 4, 24));
}

static void numeric_codes(void **state)
{
    const double v[] = {0, 0.5, -0.99, 1, 1.99, 2, 3, 4, 7.5, 8, 1024, 1e9, -1, -2, -3, -4};
    const int32_t code[] = {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 11, 30, -1, -2, -2, -3};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(pst_hash_numeric_code(v[i]), code[i]);
}

static void spec_digest_and_check(void **state)
{
    pst_hash_spec_t a = {
        .n_numeric = 13, .n_categorical = 26, .bits = 20, .seed = 1, .numeric = PST_NUMERIC_BUCKET};
    pst_hash_spec_t b = a;
    assert_true(pst_hash_spec_digest(&a) == pst_hash_spec_digest(&b));
    b.bits = 21;
    assert_true(pst_hash_spec_digest(&a) != pst_hash_spec_digest(&b));
    b = a;
    b.numeric = PST_NUMERIC_LOG;
    assert_true(pst_hash_spec_digest(&a) != pst_hash_spec_digest(&b));
    pst_err_t err;
    assert_int_equal(pst_hash_spec_check(&a, &err), PST_OK);
    b = a;
    b.bits = 0;
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_EINVAL);
    b.bits = 33;
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_EINVAL);
    b = a;
    b.n_numeric = b.n_categorical = 0;
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_EINVAL);
    /* a table per field: 39 fields need 6 bits beside the buckets' */
    b = a;
    b.field_keys = true;
    assert_true(pst_hash_spec_digest(&a) != pst_hash_spec_digest(&b));
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_OK);
    assert_int_equal(pst_hash_spec_n_features(&b), (size_t)39 << 20);
    assert_int_equal(pst_hash_spec_n_features(&a), (size_t)1 << 20);
    b.bits = 26;
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_OK);
    b.bits = 27;
    assert_int_equal(pst_hash_spec_check(&b, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "39 fields"));
}

/* With field keys every entry carries its field above the bucket bits. */
static void field_keys_put_the_field_above_the_bucket(void **state)
{
    pst_hash_spec_t spec = {2, 3, 12, 9, PST_NUMERIC_VALUE, true};
    const char line[] = "1\t5\t\tab\t\tab";
    uint32_t idx[5];
    float val[5], label;
    size_t nnz;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_parse_line(&spec, line, sizeof line - 1, &label, idx, val, &nnz,
                                               "x.tsv", 1, &err),
                     PST_OK);
    const uint32_t want[] = {pst_hash_feature(9, 0, "", 0, 12),
                             (2u << 12) | pst_hash_feature(9, 2, "ab", 2, 12),
                             (4u << 12) | pst_hash_feature(9, 4, "ab", 2, 12)};
    const float want_val[] = {5, 1, 1};
    assert_int_equal(nnz, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(idx[i], want[i]);
        assert_float_equal(val[i], want_val[i], 0);
        assert_int_equal(idx[i] >> 12, i == 0 ? 0 : 2 * i);
    }
}

/* Expected sorted (bucket, value) entries of a row, built from pst_hash_feature. */
typedef struct entry {
    uint32_t bucket;
    float value;
} entry_t;

static int by_bucket(const void *a, const void *b)
{
    uint32_t x = ((const entry_t *)a)->bucket, y = ((const entry_t *)b)->bucket;
    return (x > y) - (x < y);
}

static void assert_row(const pst_dataset_t *d, size_t r, entry_t *e, size_t n)
{
    qsort(e, n, sizeof *e, by_bucket);
    size_t m = 0; /* merge equal buckets */
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && e[m - 1].bucket == e[i].bucket)
            e[m - 1].value += e[i].value;
        else
            e[m++] = e[i];
    }
    assert_int_equal(d->row_ptr[r + 1] - d->row_ptr[r], m);
    for (size_t i = 0; i < m; i++) {
        assert_int_equal(d->col_idx[d->row_ptr[r] + i], e[i].bucket);
        assert_float_equal(d->val[d->row_ptr[r] + i], e[i].value, 1e-6);
    }
}

static uint32_t code_bucket(uint64_t seed, uint32_t field, double v, int bits)
{
    uint32_t c = (uint32_t)pst_hash_numeric_code(v);
    unsigned char le[4] = {(unsigned char)c, (unsigned char)(c >> 8), (unsigned char)(c >> 16),
                           (unsigned char)(c >> 24)};
    return pst_hash_feature(seed, field, (const char *)le, 4, bits);
}

static const char *small_tsv = "1\t5\t-3\tab\t\tcat\n"
                               "0\t\t0\t\tx\t\r\n"
                               "\n"
                               "0\t1e3\t2.5\tab\tab\tab\n";

static void tsv_reader_bucketised(void **state)
{
    const char *path = pst_scratch_file(".tsv", small_tsv);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_read(path, 2, 3, 16, 9, PST_NUMERIC_BUCKET, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 3);
    assert_int_equal(d->n_features, 65536);
    assert_int_equal(d->n_classes, 2);
    assert_null(d->x);
    assert_float_equal(d->y[0], 1, 0);
    assert_float_equal(d->y[1], 0, 0);
    assert_float_equal(d->y[2], 0, 0);
    /* golden: value -3 in numeric field 1 (code -2), seed 9, 16 bits, from the Python peer */
    assert_int_equal(code_bucket(9, 1, -3, 16), 22525);
    entry_t r0[] = {{code_bucket(9, 0, 5, 16), 1},
                    {code_bucket(9, 1, -3, 16), 1},
                    {pst_hash_feature(9, 2, "ab", 2, 16), 1},
                    {pst_hash_feature(9, 4, "cat", 3, 16), 1}};
    assert_row(d, 0, r0, 4);
    entry_t r1[] = {{code_bucket(9, 1, 0, 16), 1}, {pst_hash_feature(9, 3, "x", 1, 16), 1}};
    assert_row(d, 1, r1, 2);
    entry_t r2[] = {{code_bucket(9, 0, 1e3, 16), 1},
                    {code_bucket(9, 1, 2.5, 16), 1},
                    {pst_hash_feature(9, 2, "ab", 2, 16), 1},
                    {pst_hash_feature(9, 3, "ab", 2, 16), 1},
                    {pst_hash_feature(9, 4, "ab", 2, 16), 1}};
    assert_row(d, 2, r2, 5);
    pst_dataset_destroy(&d);
}

static void tsv_reader_values_and_log(void **state)
{
    const char *path = pst_scratch_file(".tsv", small_tsv);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_read(path, 2, 3, 20, 4, PST_NUMERIC_VALUE, &d, &err), PST_OK);
    uint32_t n0 = pst_hash_feature(4, 0, "", 0, 20), n1 = pst_hash_feature(4, 1, "", 0, 20);
    entry_t r0[] = {{n0, 5},
                    {n1, -3},
                    {pst_hash_feature(4, 2, "ab", 2, 20), 1},
                    {pst_hash_feature(4, 4, "cat", 3, 20), 1}};
    assert_row(d, 0, r0, 4);
    entry_t r1[] = {{pst_hash_feature(4, 3, "x", 1, 20), 1}}; /* the zero adds no entry */
    assert_row(d, 1, r1, 1);
    pst_dataset_destroy(&d);

    assert_int_equal(pst_tsv_hashed_read(path, 2, 3, 20, 4, PST_NUMERIC_LOG, &d, &err), PST_OK);
    entry_t l0[] = {{n0, (float)log(6.0)},
                    {n1, (float)-log(4.0)},
                    {pst_hash_feature(4, 2, "ab", 2, 20), 1},
                    {pst_hash_feature(4, 4, "cat", 3, 20), 1}};
    assert_row(d, 0, l0, 4);
    entry_t l2[] = {{n0, (float)log(1001.0)},
                    {n1, (float)log(3.5)},
                    {pst_hash_feature(4, 2, "ab", 2, 20), 1},
                    {pst_hash_feature(4, 3, "ab", 2, 20), 1},
                    {pst_hash_feature(4, 4, "ab", 2, 20), 1}};
    assert_row(d, 2, l2, 5);
    pst_dataset_destroy(&d);
}

/* With one bit there are two buckets: colliding entries are summed. */
static void collisions_are_summed(void **state)
{
    const char *path = pst_scratch_file(".tsv", "1\ta\tb\tc\td\te\tf\tg\n");
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_read(path, 0, 7, 1, 3, PST_NUMERIC_BUCKET, &d, &err), PST_OK);
    size_t nnz = d->row_ptr[1];
    assert_true(nnz >= 1 && nnz <= 2);
    float total = 0;
    for (size_t i = 0; i < nnz; i++) {
        total += d->val[i];
        if (i > 0)
            assert_true(d->col_idx[i] > d->col_idx[i - 1]);
    }
    assert_float_equal(total, 7, 0);
    unsigned ones = 0;
    const char *toks[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (uint32_t f = 0; f < 7; f++)
        ones += pst_hash_feature(3, f, toks[f], 1, 1);
    assert_float_equal(d->val[nnz - 1], nnz == 2 ? (float)ones : 7, 0);
    pst_dataset_destroy(&d);
}

static void expect_error(const char *text, int code, const char *needle)
{
    const char *path = pst_scratch_file(".tsv", text);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    pst_err_clear(&err);
    assert_int_equal(pst_tsv_hashed_read(path, 2, 2, 18, 1, PST_NUMERIC_BUCKET, &d, &err), code);
    assert_null(d);
    if (strstr(err.msg, needle) == NULL || strstr(err.msg, path) == NULL)
        fail_msg("message '%s' lacks '%s' or the path", err.msg, needle);
}

static void bad_input_names_file_and_line(void **state)
{
    expect_error("1\t1\t2\ta\tb\n0\t1\t2\ta\n", PST_EFORMAT,
                 ":2: missing columns: expected 5, found 4");
    expect_error("1\t1\t2\ta\tb\tc\n", PST_EFORMAT, ":1: extra columns: expected 5, found 6");
    expect_error("1\t1\t2\ta\tb\n\n0\t1\t12x\ta\tb\n", PST_EFORMAT,
                 ":3: column 3: bad number '12x'");
    expect_error("0\tnan\t2\ta\tb\n", PST_EFORMAT, ":1: column 2: bad number 'nan'");
    expect_error("0\t 4\t2\ta\tb\n", PST_EFORMAT, ":1: column 2: bad number ' 4'");
    expect_error("2\t1\t2\ta\tb\n", PST_EFORMAT, ":1: column 1: label '2' is not 0 or 1");
    expect_error("\t1\t2\ta\tb\n", PST_EFORMAT, ":1: column 1: label '' is not 0 or 1");
    expect_error("", PST_EFORMAT, "no data rows");
    expect_error("\n\n", PST_EFORMAT, "no data rows");
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(pst_tsv_hashed_read("/nonexistent/x.tsv", 1, 1, 8, 0, 0, &d, &err), PST_EIO);
    const char *ok = pst_scratch_file(".tsv", "1\t1\t2\ta\tb\n");
    assert_int_equal(pst_tsv_hashed_read(ok, 2, 2, 0, 0, PST_NUMERIC_BUCKET, &d, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "bits"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_values),
        cmocka_unit_test(hash_reads_only_len_bytes),
        cmocka_unit_test(buckets_are_uniform),
        cmocka_unit_test(avalanche),
        cmocka_unit_test(fields_are_namespaces),
        cmocka_unit_test(numeric_codes),
        cmocka_unit_test(spec_digest_and_check),
        cmocka_unit_test(field_keys_put_the_field_above_the_bucket),
        cmocka_unit_test_teardown(tsv_reader_bucketised, pst_scratch_remove),
        cmocka_unit_test_teardown(tsv_reader_values_and_log, pst_scratch_remove),
        cmocka_unit_test_teardown(collisions_are_summed, pst_scratch_remove),
        cmocka_unit_test_teardown(bad_input_names_file_and_line, pst_scratch_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
