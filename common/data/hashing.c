/* Feature hashing: the hash, field namespaces, numeric buckets, the hashed TSV reader. */
#include "common/data/hashing.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/data/sparsestream_internal.h"
#include "common/data/textfile.h"
#include "common/numparse.h"

#define P1 0x9E3779B97F4A7C15ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t fmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Up to 8 bytes as a little-endian word, zero-padded; the same value on every host. */
static uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static uint64_t absorb(uint64_t h, uint64_t w)
{
    h ^= rotl64(w * P2, 31) * P1;
    return rotl64(h, 27) * P1 + P4;
}

uint64_t pst_hash64(uint64_t seed, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = seed + P1 + (uint64_t)len * P2;
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = absorb(h, load_le(p + i, 8));
    if (i < len)
        h = absorb(h, load_le(p + i, len - i));
    return fmix64(h ^ (uint64_t)len);
}

uint64_t pst_hash_field_seed(uint64_t seed, uint32_t field_index)
{
    return fmix64(seed + ((uint64_t)field_index + 1) * P3);
}

uint32_t pst_hash_feature(uint64_t seed, uint32_t field_index, const char *token, size_t len,
                          int bits)
{
    assert(bits >= 1 && bits <= PST_HASH_MAX_BITS);
    uint64_t h = pst_hash64(pst_hash_field_seed(seed, field_index), token, len);
    return (uint32_t)(h >> (64 - bits));
}

int32_t pst_hash_numeric_code(double v)
{
    double a = fabs(v);
    if (!(a >= 1.0))
        return 0;
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1): floor(log2 a) = e - 1 */
    return v < 0 ? -e : e;
}

int pst_hash_spec_check(const pst_hash_spec_t *spec, pst_err_t *err)
{
    if (spec->bits < 1 || spec->bits > PST_HASH_MAX_BITS)
        return pst_err_set(err, PST_EINVAL, "hash bits %d outside [1, %d]", spec->bits,
                           PST_HASH_MAX_BITS);
    if (spec->n_numeric + spec->n_categorical == 0)
        return pst_err_set(err, PST_EINVAL, "no feature columns (numeric and categorical are 0)");
    if (spec->n_numeric + spec->n_categorical > UINT32_MAX / 2)
        return pst_err_set(err, PST_EINVAL, "too many feature columns");
    if (spec->numeric != PST_NUMERIC_VALUE && spec->numeric != PST_NUMERIC_BUCKET &&
        spec->numeric != PST_NUMERIC_LOG)
        return pst_err_set(err, PST_EINVAL, "unknown numeric mode %d", (int)spec->numeric);
    uint64_t n_fields = spec->n_numeric + spec->n_categorical;
    if (spec->field_keys && ((n_fields - 1) >> (32 - spec->bits)) != 0)
        return pst_err_set(err, PST_EINVAL,
                           "a table of 2^%d buckets for each of %llu fields exceeds 32-bit "
                           "feature indices (lower the hash bits)",
                           spec->bits, (unsigned long long)n_fields);
    return PST_OK;
}

size_t pst_hash_spec_n_features(const pst_hash_spec_t *spec)
{
    size_t per_field = (size_t)1 << spec->bits;
    return spec->field_keys ? (spec->n_numeric + spec->n_categorical) * per_field : per_field;
}

uint64_t pst_hash_spec_digest(const pst_hash_spec_t *spec)
{
    uint64_t fields[5] = {spec->n_numeric, spec->n_categorical, (uint64_t)spec->bits, spec->seed,
                          (uint64_t)spec->numeric};
    unsigned char bytes[sizeof fields];
    for (size_t i = 0; i < 5; i++)
        for (size_t b = 0; b < 8; b++)
            bytes[8 * i + b] = (unsigned char)(fields[i] >> (8 * b));
    uint64_t digest = pst_hash64(0x7073742D68617368ULL, bytes, sizeof bytes);
    /* digests of specs without field keys stay as they were, so their caches stay valid */
    return spec->field_keys ? pst_hash64(digest, "field keys", 10) : digest;
}

static size_t count_tabs(const char *s, size_t len)
{
    size_t n = 0;
    for (const char *p = s; (p = memchr(p, '\t', len - (size_t)(p - s))) != NULL; p++)
        n++;
    return n;
}

/* Insertion sort by bucket (stable), then sums equal buckets in their order in the row. */
static size_t sort_and_merge_wide(uint32_t *idx, float *val, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t key = idx[i];
        float v = val[i];
        size_t j = i;
        for (; j > 0 && idx[j - 1] > key; j--) {
            idx[j] = idx[j - 1];
            val[j] = val[j - 1];
        }
        idx[j] = key;
        val[j] = v;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && idx[out - 1] == idx[i]) {
            val[out - 1] += val[i];
        } else {
            idx[out] = idx[i];
            val[out++] = val[i];
        }
    }
    return out;
}

/* As sort_and_merge_wide, faster on rows of up to 256 entries: each entry travels through the
 * insertion sort as one word, bucket << 32 | its position, so equal buckets keep their order in
 * the row and their sums round the same way. */
static size_t sort_and_merge(uint32_t *idx, float *val, size_t n)
{
    if (n > 256)
        return sort_and_merge_wide(idx, val, n);
    uint64_t key[256];
    float v[256];
    for (size_t i = 0; i < n; i++) {
        uint64_t k = (uint64_t)idx[i] << 32 | i;
        size_t j = i;
        for (; j > 0 && key[j - 1] > k; j--)
            key[j] = key[j - 1];
        key[j] = k;
        v[i] = val[i];
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bucket = (uint32_t)(key[i] >> 32);
        float x = v[(uint32_t)key[i]];
        if (out > 0 && idx[out - 1] == bucket) {
            val[out - 1] += x;
        } else {
            idx[out] = bucket;
            val[out++] = x;
        }
    }
    return out;
}

/* Bucket of token[0..len) in field: pst_hash_feature, with the field's seed from seeds when
 * given (pst_hash_spec_field_seeds) rather than derived again. */
static inline uint32_t bucket_of(const pst_hash_spec_t *spec, const uint64_t *seeds, uint32_t field,
                                 const char *token, size_t len)
{
    uint64_t seed = seeds ? seeds[field] : pst_hash_field_seed(spec->seed, field);
    return (uint32_t)(pst_hash64(seed, token, len) >> (64 - spec->bits));
}

void pst_hash_spec_field_seeds(const pst_hash_spec_t *spec, uint64_t *seeds)
{
    for (size_t f = 0; f < spec->n_numeric + spec->n_categorical; f++)
        seeds[f] = pst_hash_field_seed(spec->seed, (uint32_t)f);
}

/* Entry of numeric field `field` with value v; false when the cell adds none (zero value). */
static bool numeric_entry(const pst_hash_spec_t *spec, const uint64_t *seeds, uint32_t field,
                          double v, uint32_t *bucket, float *value)
{
    if (spec->numeric == PST_NUMERIC_BUCKET) {
        uint32_t code = (uint32_t)pst_hash_numeric_code(v);
        unsigned char le[4] = {(unsigned char)code, (unsigned char)(code >> 8),
                               (unsigned char)(code >> 16), (unsigned char)(code >> 24)};
        *bucket = bucket_of(spec, seeds, field, (const char *)le, 4);
        *value = 1.0f;
        return true;
    }
    if (v == 0.0)
        return false;
    *bucket = bucket_of(spec, seeds, field, "", 0);
    *value = spec->numeric == PST_NUMERIC_LOG ? (float)copysign(log1p(fabs(v)), v) : (float)v;
    return true;
}

/* What field_keys adds to a bucket of field: field << bits (bits may be 32 only for one field). */
static uint32_t field_base(const pst_hash_spec_t *spec, size_t field)
{
    return spec->field_keys && field > 0 ? (uint32_t)(field << spec->bits) : 0;
}

static int parse_label(const char *s, size_t len, float *label, const char *path, size_t line_no,
                       pst_err_t *err)
{
    double v;
    if (pst_parse_float_field(s, len, &v) != PST_OK || (v != 0.0 && v != 1.0))
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column 1: label '%.*s' is not 0 or 1", path,
                           line_no, (int)(len > 32 ? 32 : len), s);
    *label = (float)v;
    return PST_OK;
}

/* The common line in one pass: label 0 or 1, the right number of cells, every numeric cell a
 * plain decimal pst_scan_decimal takes whole. 1 with the row, as the general parser would give
 * it; 0 for anything else, which the general parser then reads (and names the error of). */
static int plain_tsv_line(const pst_hash_spec_t *spec, const uint64_t *seeds, const char *s,
                          size_t len, float *label, uint32_t *idx, float *val, size_t *nnz)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    const char *p = s, *q = s, *end = s + len;
    while (q < end && *q != '\t')
        q++;
    if (q - p != 1 || (*p != '0' && *p != '1'))
        return 0;
    *label = (float)(*p - '0');
    size_t n = 0, n_fields = spec->n_numeric + spec->n_categorical;
    for (size_t field = 0; field < n_fields; field++) {
        if (q == end)
            return 0;
        p = ++q;
        while (q < end && *q != '\t')
            q++;
        size_t cell_len = (size_t)(q - p);
        if (cell_len == 0)
            continue;
        if (field < spec->n_numeric) {
            double v;
            if (pst_scan_decimal(p, cell_len, &v) != cell_len)
                return 0;
            if (numeric_entry(spec, seeds, (uint32_t)field, v, &idx[n], &val[n]))
                idx[n++] |= field_base(spec, field);
        } else {
            idx[n] = bucket_of(spec, seeds, (uint32_t)field, p, cell_len) | field_base(spec, field);
            val[n++] = 1.0f;
        }
    }
    if (q != end)
        return 0;
    *nnz = sort_and_merge(idx, val, n);
    return 1;
}

int pst_tsv_hashed_parse_line(const pst_hash_spec_t *spec, const char *s, size_t len, float *label,
                              uint32_t *idx, float *val, size_t *nnz, const char *path,
                              size_t line_no, pst_err_t *err)
{
    return pst_tsv_hashed_parse_seeded(spec, NULL, s, len, label, idx, val, nnz, path, line_no,
                                       err);
}

int pst_tsv_hashed_parse_seeded(const pst_hash_spec_t *spec, const uint64_t *seeds, const char *s,
                                size_t len, float *label, uint32_t *idx, float *val, size_t *nnz,
                                const char *path, size_t line_no, pst_err_t *err)
{
    if (plain_tsv_line(spec, seeds, s, len, label, idx, val, nnz))
        return PST_OK;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    size_t expected = 1 + spec->n_numeric + spec->n_categorical, found = count_tabs(s, len) + 1;
    if (found != expected)
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: %s columns: expected %zu, found %zu", path,
                           line_no, found < expected ? "missing" : "extra", expected, found);
    const char *cell = s, *end = s + len;
    size_t n = 0;
    for (size_t col = 0; col < expected; col++) {
        const char *tab = memchr(cell, '\t', (size_t)(end - cell));
        size_t cell_len = (size_t)((tab ? tab : end) - cell);
        if (col == 0) {
            int rc = parse_label(cell, cell_len, label, path, line_no, err);
            if (rc != PST_OK)
                return rc;
        } else if (cell_len > 0 && col <= spec->n_numeric) {
            double v;
            if (pst_parse_float_field(cell, cell_len, &v) != PST_OK)
                return pst_err_set(err, PST_EFORMAT, "%s:%zu: column %zu: bad number '%.*s'", path,
                                   line_no, col + 1, (int)(cell_len > 32 ? 32 : cell_len), cell);
            if (numeric_entry(spec, seeds, (uint32_t)(col - 1), v, &idx[n], &val[n])) {
                idx[n] |= field_base(spec, col - 1);
                n++;
            }
        } else if (cell_len > 0) {
            idx[n] = bucket_of(spec, seeds, (uint32_t)(col - 1), cell, cell_len) |
                     field_base(spec, col - 1);
            val[n++] = 1.0f;
        }
        cell = tab ? tab + 1 : end;
    }
    *nnz = sort_and_merge(idx, val, n);
    return PST_OK;
}

/* Moves the rows of b into a new classification dataset with classes {0, 1}, labels in y. */
static int finish(pst_sparse_csr_build_t *b, size_t n_features, const char *path,
                  pst_dataset_t **out, pst_err_t *err)
{
    pst_data_csr_t *c = &b->csr;
    if (c->n_rows == 0)
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows", path);
    pst_dataset_t *d = pst_dataset_new(c->n_rows, 0, PST_TASK_CLASSIFICATION);
    double *classes = malloc(2 * sizeof *classes);
    if (d == NULL || classes == NULL) {
        pst_dataset_destroy(&d);
        free(classes);
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    }
    free(d->x);
    d->x = NULL;
    for (size_t i = 0; i < c->n_rows; i++)
        d->y[i] = (float)c->raw[i];
    d->n_features = n_features;
    d->row_ptr = c->row_ptr;
    d->col_idx = c->col_idx;
    d->val = c->val;
    c->row_ptr = NULL;
    c->col_idx = NULL;
    c->val = NULL;
    classes[0] = 0.0;
    classes[1] = 1.0;
    d->class_values = classes;
    d->n_classes = 2;
    *out = d;
    return PST_OK;
}

int pst_tsv_hashed_read(const char *path, size_t n_numeric, size_t n_categorical, int bits,
                        uint64_t seed, pst_numeric_mode_t numeric, pst_dataset_t **out,
                        pst_err_t *err)
{
    *out = NULL;
    pst_sparse_source_t src = {.path = path,
                               .format = PST_SPARSE_TSV_HASHED,
                               .hash = {.n_numeric = n_numeric,
                                        .n_categorical = n_categorical,
                                        .bits = bits,
                                        .seed = seed,
                                        .numeric = numeric}};
    int rc = pst_hash_spec_check(&src.hash, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", path);
    pst_text_file_t text;
    rc = pst_text_file_open(&text, path, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_csr_build_t b = {0};
    rc = pst_sparse_parse_text(&src, text.data, text.len, 0, &b, err);
    pst_text_file_close(&text);
    if (rc == PST_OK)
        rc = finish(&b, pst_hash_spec_n_features(&src.hash), path, out, err);
    pst_sparse_csr_fini(&b);
    return rc;
}
