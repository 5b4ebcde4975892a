/* In-memory datasets: allocation, row selection with metadata, and sparse-to-dense conversion. */
#include "common/data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "common/data/table.h"

/* a * b into *out, false on size_t overflow. */
static bool mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* calloc that treats a zero-size request as a valid one-byte block, so NULL always means failure.
 */
static void *zalloc(size_t count, size_t size)
{
    size_t bytes;
    if (!mul_size(count, size, &bytes))
        return NULL;
    return calloc(bytes ? bytes : 1, 1);
}

pst_dataset_t *pst_dataset_new(size_t n_rows, size_t n_features, pst_task_t task)
{
    size_t cells;
    if (!mul_size(n_rows, n_features, &cells))
        return NULL;
    pst_dataset_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->n_rows = n_rows;
    d->n_features = n_features;
    d->task = task;
    d->x = zalloc(cells, sizeof *d->x);
    d->y = zalloc(n_rows, sizeof *d->y);
    if (d->x == NULL || d->y == NULL)
        pst_dataset_destroy(&d);
    return d;
}

static void free_names(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void pst_dataset_destroy(pst_dataset_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_dataset_t *d = *self_p;
    free(d->x);
    free(d->row_ptr);
    free(d->col_idx);
    free(d->val);
    free(d->y);
    free(d->class_values);
    free_names(d->feature_names, d->n_features);
    free(d->target_name);
    free_names(d->class_names, d->class_names ? (size_t)d->n_classes : 0);
    pst_table_unref(&d->table);
    free(d);
    *self_p = NULL;
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    if (copy == NULL)
        *ok = false;
    return copy;
}

/* Copies class values, feature and target names from src into dst. False on allocation failure. */
static bool copy_metadata(pst_dataset_t *dst, const pst_dataset_t *src)
{
    bool ok = true;
    dst->n_classes = src->n_classes;
    if (src->class_values != NULL && src->n_classes > 0) {
        dst->class_values = malloc((size_t)src->n_classes * sizeof *dst->class_values);
        if (dst->class_values == NULL)
            return false;
        memcpy(dst->class_values, src->class_values,
               (size_t)src->n_classes * sizeof *dst->class_values);
    }
    if (src->feature_names != NULL) {
        dst->feature_names = zalloc(src->n_features, sizeof *dst->feature_names);
        if (dst->feature_names == NULL)
            return false;
        for (size_t j = 0; j < src->n_features; j++)
            dst->feature_names[j] = dup_or_null(src->feature_names[j], &ok);
    }
    dst->target_name = dup_or_null(src->target_name, &ok);
    if (src->class_names != NULL && src->n_classes > 0) {
        if ((dst->class_names = zalloc((size_t)src->n_classes, sizeof(char *))) == NULL)
            return false;
        for (int c = 0; c < src->n_classes; c++)
            dst->class_names[c] = dup_or_null(src->class_names[c], &ok);
    }
    dst->table = src->table ? pst_table_ref(src->table) : NULL;
    return ok;
}

/* Rows idx[0..n) of a CSR source into the CSR arrays of dst (whose x is already freed). */
static bool take_sparse_rows(pst_dataset_t *dst, const pst_dataset_t *src, const size_t *idx,
                             size_t n)
{
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++)
        nnz += src->row_ptr[idx[i] + 1] - src->row_ptr[idx[i]];
    dst->row_ptr = zalloc(n + 1, sizeof *dst->row_ptr);
    dst->col_idx = zalloc(nnz, sizeof *dst->col_idx);
    dst->val = zalloc(nnz, sizeof *dst->val);
    if (dst->row_ptr == NULL || dst->col_idx == NULL || dst->val == NULL)
        return false;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t begin = src->row_ptr[idx[i]], count = src->row_ptr[idx[i] + 1] - begin;
        memcpy(dst->col_idx + at, src->col_idx + begin, count * sizeof *dst->col_idx);
        memcpy(dst->val + at, src->val + begin, count * sizeof *dst->val);
        at += count;
        dst->row_ptr[i + 1] = at;
    }
    return true;
}

pst_dataset_t *pst_dataset_take_rows(const pst_dataset_t *src, const size_t *idx, size_t n)
{
    bool sparse = pst_dataset_is_sparse(src);
    pst_dataset_t *dst = pst_dataset_new(n, sparse ? 0 : src->n_features, src->task);
    if (dst == NULL)
        return NULL;
    dst->n_features = src->n_features;
    bool ok = copy_metadata(dst, src);
    if (ok && sparse) {
        free(dst->x);
        dst->x = NULL;
        ok = take_sparse_rows(dst, src, idx, n);
    } else if (ok) {
        size_t width = src->n_features;
        for (size_t i = 0; i < n; i++)
            memcpy(dst->x + i * width, src->x + idx[i] * width, width * sizeof *dst->x);
    }
    for (size_t i = 0; ok && i < n; i++)
        dst->y[i] = src->y[idx[i]];
    if (!ok)
        pst_dataset_destroy(&dst);
    return dst;
}

int pst_dataset_append_rows(pst_dataset_t *dst, const pst_dataset_t *src, pst_err_t *err)
{
    if (pst_dataset_is_sparse(dst) || pst_dataset_is_sparse(src) ||
        dst->n_features != src->n_features)
        return pst_err_set(err, PST_EINVAL, "append rows: needs two dense sets of one width");
    size_t n = dst->n_rows + src->n_rows, cells, d = dst->n_features;
    if (n < dst->n_rows || !mul_size(n, d, &cells))
        return pst_err_set(err, PST_ERANGE, "append rows: too many rows");
    float *x = realloc(dst->x, (cells ? cells : 1) * sizeof *x);
    if (x)
        dst->x = x;
    float *y = x ? realloc(dst->y, (n ? n : 1) * sizeof *y) : NULL;
    if (!y)
        return pst_err_set(err, PST_ENOMEM, "append rows: out of memory");
    dst->y = y;
    memcpy(dst->x + dst->n_rows * d, src->x, src->n_rows * d * sizeof *x);
    memcpy(dst->y + dst->n_rows, src->y, src->n_rows * sizeof *y);
    dst->n_rows = n;
    return PST_OK;
}

/* First stored column index >= width, as (row, column); false when every index fits. */
static bool find_wide_column(const pst_dataset_t *d, size_t width, size_t *row, size_t *col)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        for (size_t k = d->row_ptr[i]; k < d->row_ptr[i + 1]; k++) {
            if (d->col_idx[k] >= width) {
                *row = i;
                *col = d->col_idx[k];
                return true;
            }
        }
    }
    return false;
}

int pst_dataset_densify(pst_dataset_t *d, size_t n_features, pst_err_t *err)
{
    if (!pst_dataset_is_sparse(d))
        return PST_OK;
    size_t width = n_features ? n_features : d->n_features, row, col, cells;
    if (width > PST_DATASET_MAX_DENSE_WIDTH)
        return pst_err_set(err, PST_ERANGE,
                           "densify: %zu features (the largest feature index) is wider than the "
                           "%zu a dense model takes; train it with a sparse model (model.type "
                           "sparse_lr, fm or wide_deep)",
                           width, PST_DATASET_MAX_DENSE_WIDTH);
    if (find_wide_column(d, width, &row, &col))
        return pst_err_set(err, PST_ERANGE,
                           "densify: row %zu has feature index %zu but the width is %zu features",
                           row + 1, col + 1, width);
    if (!mul_size(d->n_rows, width, &cells))
        return pst_err_set(err, PST_ENOMEM, "densify: %zu x %zu cells overflow", d->n_rows, width);
    float *x = zalloc(cells, sizeof *x);
    if (x == NULL)
        return pst_err_set(err, PST_ENOMEM, "densify: cannot allocate %zu x %zu cells", d->n_rows,
                           width);
    for (size_t i = 0; i < d->n_rows; i++)
        for (size_t k = d->row_ptr[i]; k < d->row_ptr[i + 1]; k++)
            x[i * width + d->col_idx[k]] = d->val[k];
    if (width != d->n_features) {
        /* Names described the old width; they no longer line up with the columns. */
        free_names(d->feature_names, d->n_features);
        d->feature_names = NULL;
    }
    free(d->row_ptr);
    free(d->col_idx);
    free(d->val);
    d->row_ptr = NULL;
    d->col_idx = NULL;
    d->val = NULL;
    d->x = x;
    d->n_features = width;
    return PST_OK;
}

void pst_dataset_swap(pst_dataset_t *a, pst_dataset_t *b)
{
    pst_dataset_t t = *a;
    *a = *b;
    *b = t;
}
