/* Preprocessing: per-column statistics on the training set, applied in place to any split. */
#include "common/data/preprocess.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum { COLUMN_BLOCK = 64 }; /* columns gathered per pass over the rows */

pst_preproc_t *pst_preproc_new(size_t n_features)
{
    pst_preproc_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    size_t n = n_features ? n_features : 1;
    p->n_features = n_features;
    p->pixel_scale = 1.0f;
    p->shift = calloc(n, sizeof *p->shift);
    p->scale = malloc(n * sizeof *p->scale);
    p->fill = calloc(n, sizeof *p->fill);
    if (p->shift == NULL || p->scale == NULL || p->fill == NULL) {
        pst_preproc_destroy(&p);
        return NULL;
    }
    for (size_t j = 0; j < n_features; j++)
        p->scale[j] = 1.0f;
    return p;
}

void pst_preproc_destroy(pst_preproc_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_preproc_t *p = *self_p;
    free(p->shift);
    free(p->scale);
    free(p->fill);
    free(p);
    *self_p = NULL;
}

/* ---- fill values ---- */

static uint32_t float_key(float v)
{
    uint32_t bits;
    if (v == 0.0f)
        return 0; /* -0 and +0 are one value */
    if (isnan(v))
        return 0x7fc00000u;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static void swap_floats(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* Rearranges v[0..n) so that v[k] holds the k-th smallest value, everything before it is no
 * larger and everything after it no smaller (Hoare-style selection around v[k]). */
static void select_kth(float *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, target = (ptrdiff_t)k;
    while (lo < hi) {
        float pivot = v[target];
        ptrdiff_t i = lo, j = hi;
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j) {
                swap_floats(&v[i], &v[j]);
                i++;
                j--;
            }
        } while (i <= j);
        if (j < target)
            lo = i;
        if (target < i)
            hi = j;
    }
}

/* Median of v[0..m), m > 0, reordering v; the mean of the two middle values when m is even. */
static double median(float *v, size_t m)
{
    size_t k = m / 2;
    select_kth(v, m, k);
    if (m % 2)
        return v[k];
    float below = v[0];
    for (size_t i = 1; i < k; i++)
        if (v[i] > below)
            below = v[i];
    return 0.5 * ((double)below + v[k]);
}

/* Value counts in an open-addressing table sized for the column; reused across columns. */
typedef struct counter {
    uint32_t *keys;
    size_t *counts; // 0 = empty slot
    size_t mask;
} counter_t;

static int counter_init(counter_t *c, size_t n)
{
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    c->mask = size - 1;
    c->keys = malloc(size * sizeof *c->keys);
    c->counts = malloc(size * sizeof *c->counts);
    return c->keys && c->counts ? PST_OK : PST_ENOMEM;
}

static void counter_fini(counter_t *c)
{
    free(c->keys);
    free(c->counts);
}

/* Most frequent of v[0..m), the smallest value among ties. */
static double most_frequent(counter_t *c, const float *v, size_t m)
{
    memset(c->counts, 0, (c->mask + 1) * sizeof *c->counts);
    float best = v[0];
    size_t best_count = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t key = float_key(v[i]);
        size_t slot = mix64(key) & c->mask;
        while (c->counts[slot] != 0 && c->keys[slot] != key)
            slot = (slot + 1) & c->mask;
        c->keys[slot] = key;
        size_t count = ++c->counts[slot];
        if (count > best_count || (count == best_count && v[i] < best)) {
            best = v[i];
            best_count = count;
        }
    }
    return best == 0.0f ? 0.0 : best;
}

/* ---- fitting ---- */

/* Fit scratch: one column of pixel-scaled values and its non-missing compaction. */
typedef struct fit_ctx {
    const pst_preproc_opts_t *opts;
    pst_preproc_t *p;
    size_t n_rows;
    float *block;   // (COLUMN_BLOCK, n_rows) column-major slice of the training matrix
    float *present; // (n_rows) non-missing values of one column
    counter_t counter;
} fit_ctx_t;

static double fill_value(fit_ctx_t *c, size_t m, double sum)
{
    if (m == 0)
        return 0.0;
    switch (c->opts->impute) {
    case PST_IMPUTE_MEDIAN:
        return median(c->present, m);
    case PST_IMPUTE_MOST_FREQUENT:
        return most_frequent(&c->counter, c->present, m);
    default:
        return sum / (double)m;
    }
}

/* shift and scale for one column col[0..n) whose missing cells read as fill. */
static void scaler_stats(fit_ctx_t *c, const float *col, float fill, size_t j)
{
    size_t n = c->n_rows;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = isnan(col[i]) ? fill : col[i];
        sum += v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    double mean = sum / (double)n, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double v = isnan(col[i]) ? fill : col[i];
        ss += (v - mean) * (v - mean);
    }
    double shift = 0, spread = 1;
    if (c->opts->scaler == PST_SCALER_STANDARD) {
        shift = mean;
        spread = sqrt(ss / (double)n);
    } else if (c->opts->scaler == PST_SCALER_MINMAX) {
        shift = lo;
        spread = hi - lo;
    }
    /* A constant column keeps scale 1 so it maps to 0 instead of inf or NaN. */
    bool constant = hi == lo || !(spread > 0) || !isfinite(1.0 / spread);
    c->p->shift[j] = (float)shift;
    c->p->scale[j] = constant ? 1.0f : (float)(1.0 / spread);
}

static void fit_column(fit_ctx_t *c, const float *col, size_t j)
{
    size_t m = 0;
    double sum = 0;
    for (size_t i = 0; i < c->n_rows; i++) {
        if (!isnan(col[i])) {
            c->present[m++] = col[i];
            sum += col[i];
        }
    }
    if (m == 0)
        pst_warn("preprocess: feature %zu has no values in the training set; filled with 0", j + 1);
    c->p->fill[j] = (float)fill_value(c, m, sum);
    scaler_stats(c, col, c->p->fill[j], j);
}

/* Gathers columns [j0, j0 + width) of the fitted rows, pixel-scaled, into c->block
 * (column-major). */
static void gather_block(fit_ctx_t *c, const pst_dataset_t *d, const size_t *rows, size_t j0,
                         size_t width)
{
    float ps = c->p->pixel_scale;
    for (size_t i = 0; i < c->n_rows; i++) {
        const float *row = d->x + (rows ? rows[i] : i) * d->n_features + j0;
        for (size_t b = 0; b < width; b++)
            c->block[b * c->n_rows + i] = row[b] * ps;
    }
}

int pst_preproc_fit(const pst_dataset_t *train, const pst_preproc_opts_t *opts, pst_preproc_t **out,
                    pst_err_t *err)
{
    return pst_preproc_fit_rows(train, NULL, train->n_rows, opts, out, err);
}

int pst_preproc_fit_rows(const pst_dataset_t *train, const size_t *rows, size_t n,
                         const pst_preproc_opts_t *opts, pst_preproc_t **out, pst_err_t *err)
{
    if (pst_dataset_is_sparse(train) || train->x == NULL)
        return pst_err_set(err, PST_EINVAL, "preprocess: fit needs a dense dataset");
    if (n == 0)
        return pst_err_set(err, PST_EINVAL, "preprocess: fit on an empty training set");
    fit_ctx_t c = {.opts = opts, .n_rows = n, .p = pst_preproc_new(train->n_features)};
    c.block = malloc(COLUMN_BLOCK * n * sizeof *c.block);
    c.present = malloc(n * sizeof *c.present);
    int rc = c.p && c.block && c.present ? counter_init(&c.counter, n) : PST_ENOMEM;
    if (rc == PST_OK) {
        c.p->pixel_scale = opts->pixel_scale ? 1.0f / 255.0f : 1.0f;
        for (size_t j0 = 0; j0 < train->n_features; j0 += COLUMN_BLOCK) {
            size_t width =
                train->n_features - j0 < COLUMN_BLOCK ? train->n_features - j0 : COLUMN_BLOCK;
            gather_block(&c, train, rows, j0, width);
            for (size_t b = 0; b < width; b++)
                fit_column(&c, c.block + b * n, j0 + b);
        }
    }
    counter_fini(&c.counter);
    free(c.block);
    free(c.present);
    if (rc != PST_OK) {
        pst_preproc_destroy(&c.p);
        return pst_err_set(err, rc, "preprocess: out of memory fitting %zu rows", n);
    }
    *out = c.p;
    return PST_OK;
}

/* ---- applying and checking ---- */

static int non_finite(const pst_dataset_t *d, size_t row, size_t col, const char *what,
                      pst_err_t *err)
{
    const char *name = d->feature_names && d->feature_names[col] ? d->feature_names[col] : "";
    return pst_err_set(err, PST_ENUMERIC, "row %zu, column %zu%s%s%s: non-finite %s", row + 1,
                       col + 1, name[0] ? " '" : "", name, name[0] ? "'" : "", what);
}

/* Transforms one row in place; returns the first column whose result is not finite, or
 * SIZE_MAX. */
static size_t transform_row(const pst_preproc_t *p, float *row)
{
    size_t bad = SIZE_MAX;
    for (size_t j = 0; j < p->n_features; j++) {
        float v = row[j] * p->pixel_scale;
        if (isnan(v))
            v = p->fill[j];
        v = (v - p->shift[j]) * p->scale[j];
        row[j] = v;
        if (!isfinite(v) && bad == SIZE_MAX)
            bad = j;
    }
    return bad;
}

int pst_preproc_apply(const pst_preproc_t *p, pst_dataset_t *d, pst_err_t *err)
{
    if (pst_dataset_is_sparse(d) || d->x == NULL)
        return pst_err_set(err, PST_EINVAL, "preprocess: apply needs a dense dataset (densify it)");
    if (d->n_features != p->n_features)
        return pst_err_set(err, PST_EINVAL, "preprocess: fitted on %zu features, data has %zu",
                           p->n_features, d->n_features);
    size_t bad_row = SIZE_MAX, bad_col = 0, width = d->n_features;
    for (size_t i = 0; i < d->n_rows; i++) {
        size_t j = transform_row(p, d->x + i * width);
        if (j != SIZE_MAX && bad_row == SIZE_MAX) {
            bad_row = i;
            bad_col = j;
        }
    }
    if (bad_row != SIZE_MAX)
        return non_finite(d, bad_row, bad_col, "value after preprocessing", err);
    return PST_OK;
}

int pst_preproc_apply_block(const pst_preproc_t *p, float *x, size_t n_rows, size_t *bad_row,
                            size_t *bad_col)
{
    for (size_t i = 0; i < n_rows; i++) {
        size_t j = transform_row(p, x + i * p->n_features);
        if (j != SIZE_MAX) {
            *bad_row = i;
            *bad_col = j;
            return PST_ENUMERIC;
        }
    }
    return PST_OK;
}

int pst_preproc_apply_cols(const pst_preproc_t *p, float *x, size_t n_rows, const size_t *cols,
                           size_t n_cols, size_t *bad_row, size_t *bad_col)
{
    if (!cols)
        return pst_preproc_apply_block(p, x, n_rows, bad_row, bad_col);
    for (size_t i = 0; i < n_rows; i++) {
        float *row = x + i * n_cols;
        for (size_t j = 0; j < n_cols; j++) {
            size_t c = cols[j];
            float v = row[j] * p->pixel_scale;
            if (isnan(v))
                v = p->fill[c];
            v = (v - p->shift[c]) * p->scale[c];
            row[j] = v;
            if (!isfinite(v)) {
                *bad_row = i;
                *bad_col = j;
                return PST_ENUMERIC;
            }
        }
    }
    return PST_OK;
}

int pst_preproc_check_finite(const pst_dataset_t *d, pst_err_t *err)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        if (pst_dataset_is_sparse(d)) {
            for (size_t k = d->row_ptr[i]; k < d->row_ptr[i + 1]; k++)
                if (!isfinite(d->val[k]))
                    return non_finite(d, i, d->col_idx[k], "feature value", err);
        } else {
            for (size_t j = 0; j < d->n_features; j++)
                if (!isfinite(d->x[i * d->n_features + j]))
                    return non_finite(d, i, j, "feature value", err);
        }
        if (!isfinite(d->y[i]))
            return pst_err_set(err, PST_ENUMERIC, "row %zu: non-finite target", i + 1);
    }
    return PST_OK;
}

/* ---- duplicates ---- */

/* One row as (cols, vals, count): cols is NULL for a dense row. */
typedef struct row_view {
    const uint32_t *cols;
    const float *vals;
    size_t count;
    float label;
} row_view_t;

static row_view_t row_at(const pst_dataset_t *d, size_t i)
{
    if (pst_dataset_is_sparse(d)) {
        size_t b = d->row_ptr[i];
        return (row_view_t){d->col_idx + b, d->val + b, d->row_ptr[i + 1] - b, d->y[i]};
    }
    return (row_view_t){NULL, d->x + i * d->n_features, d->n_features, d->y[i]};
}

static uint64_t row_hash(const row_view_t *r)
{
    uint64_t h = mix64(float_key(r->label) ^ ((uint64_t)r->count << 32));
    for (size_t k = 0; k < r->count; k++) {
        uint64_t col = r->cols ? r->cols[k] : 0;
        h = mix64(h ^ float_key(r->vals[k]) ^ (col << 32)) + k;
    }
    return h;
}

static bool same_float(float a, float b)
{
    return a == b || (isnan(a) && isnan(b));
}

static bool rows_equal(const row_view_t *a, const row_view_t *b)
{
    if (a->count != b->count || !same_float(a->label, b->label))
        return false;
    if (a->cols && memcmp(a->cols, b->cols, a->count * sizeof *a->cols) != 0)
        return false;
    for (size_t k = 0; k < a->count; k++)
        if (!same_float(a->vals[k], b->vals[k]))
            return false;
    return true;
}

/* Copies row src to position dst (dst <= src); for CSR *next_ptr is where row dst begins. */
static void move_row(pst_dataset_t *d, size_t dst, const row_view_t *r, size_t *next_ptr)
{
    if (pst_dataset_is_sparse(d)) {
        memmove(d->col_idx + *next_ptr, r->cols, r->count * sizeof *d->col_idx);
        memmove(d->val + *next_ptr, r->vals, r->count * sizeof *d->val);
        *next_ptr += r->count;
        d->row_ptr[dst + 1] = *next_ptr;
    } else {
        memmove(d->x + dst * d->n_features, r->vals, r->count * sizeof *d->x);
    }
    d->y[dst] = r->label;
}

int pst_preproc_drop_duplicates(pst_dataset_t *d, size_t *n_dropped, pst_err_t *err)
{
    size_t size = 16;
    while (size < 2 * d->n_rows)
        size *= 2;
    size_t *slots = calloc(size, sizeof *slots); /* kept row index + 1; 0 = empty */
    if (slots == NULL)
        return pst_err_set(err, PST_ENOMEM, "drop duplicates: out of memory");
    size_t kept = 0, next_ptr = 0;
    for (size_t i = 0; i < d->n_rows; i++) {
        row_view_t r = row_at(d, i);
        size_t slot = row_hash(&r) & (size - 1);
        bool dup = false;
        while (slots[slot] != 0 && !dup) {
            row_view_t other = row_at(d, slots[slot] - 1);
            dup = rows_equal(&r, &other);
            slot = (slot + 1) & (size - 1);
        }
        if (dup)
            continue;
        slots[slot] = kept + 1;
        move_row(d, kept++, &r, &next_ptr);
    }
    free(slots);
    *n_dropped = d->n_rows - kept;
    d->n_rows = kept;
    return PST_OK;
}
