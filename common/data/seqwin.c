/* Sequence windows cut from time-ordered rows. */
#include "common/data/seqwin.h"

#include <stdlib.h>
#include <string.h>

#include "common/data/table.h"

static bool usable(const pst_dataset_t *src, size_t j)
{
    if (src->table == NULL)
        return true;
    pst_col_type_t t = src->table->cols[j].type;
    return t == PST_COL_NUMERIC || t == PST_COL_BOOLEAN;
}

static const char *name_of(const pst_dataset_t *src, size_t j)
{
    return src->feature_names && src->feature_names[j] ? src->feature_names[j] : "?";
}

static int add_col(pst_seqwin_t *w, long col, pst_err_t *err)
{
    if (w->n_cols >= PST_SEQWIN_MAX_COLS)
        return pst_err_set(err, PST_EINVAL, "data.sequence_columns: more than %d columns",
                           PST_SEQWIN_MAX_COLS);
    w->cols[w->n_cols++] = col;
    return PST_OK;
}

static int find_named(pst_seqwin_t *w, const pst_dataset_t *src, const char *name,
                      const char *target, pst_err_t *err)
{
    if (target && strcmp(name, target) == 0)
        return add_col(w, PST_SEQWIN_TARGET, err);
    for (size_t j = 0; src->feature_names && j < src->n_features; j++) {
        if (src->feature_names[j] == NULL || strcmp(src->feature_names[j], name) != 0)
            continue;
        if (!usable(src, j))
            return pst_err_set(err, PST_EINVAL,
                               "data.sequence_columns: column '%s' is %s; window steps take "
                               "numeric or boolean columns",
                               name, pst_col_type_name(src->table->cols[j].type));
        return add_col(w, (long)j, err);
    }
    return pst_err_set(err, PST_EINVAL, "data.sequence_columns: no column '%s' among the features",
                       name);
}

int pst_seqwin_init(pst_seqwin_t *w, const pst_dataset_t *src, int window, int horizon,
                    const char *const *names, int n_names, const char *target, pst_err_t *err)
{
    memset(w, 0, sizeof *w);
    w->window = window;
    w->horizon = horizon;
    if (pst_dataset_is_sparse(src))
        return pst_err_set(err, PST_EINVAL, "data.window: sequence windows need dense CSV data");
    int rc = PST_OK;
    for (int i = 0; i < n_names && rc == PST_OK; i++)
        rc = find_named(w, src, names[i], target, err);
    if (n_names > 0 || rc != PST_OK)
        return rc;
    for (size_t j = 0; j < src->n_features && rc == PST_OK; j++)
        if (usable(src, j))
            rc = add_col(w, (long)j, err);
    if (rc == PST_OK && horizon > 0)
        rc = add_col(w, PST_SEQWIN_TARGET, err);
    if (rc == PST_OK && w->n_cols == 0)
        rc = pst_err_set(err, PST_EINVAL,
                         "data.window: no numeric column to make steps of (%zu features, "
                         "first '%s'); name them in data.sequence_columns",
                         src->n_features, src->n_features ? name_of(src, 0) : "");
    return rc;
}

size_t pst_seqwin_count(const pst_seqwin_t *w, size_t n)
{
    size_t span = (size_t)w->window + (w->open_end ? 0 : (size_t)w->horizon);
    return n + 1 > span ? n + 1 - span : 0;
}

int pst_seqwin_cut(const pst_seqwin_t *w, const pst_dataset_t *src, size_t first, size_t n,
                   const char *part, pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    size_t count = pst_seqwin_count(w, n), width = (size_t)w->window * (size_t)w->n_cols;
    if (count == 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.window: the %s part has %zu rows, fewer than one window of %d "
                           "rows and its horizon %d",
                           part, n, w->window, w->horizon);
    size_t *target_rows = malloc(count * sizeof *target_rows);
    float *x = malloc(count * width * sizeof *x);
    if (!target_rows || !x) {
        free(target_rows);
        free(x);
        return pst_err_set(err, PST_ENOMEM, "data.window: out of memory for %zu windows", count);
    }
    size_t last = first + n - 1;
    for (size_t i = 0; i < count; i++) {
        target_rows[i] = first + i + (size_t)w->window - 1 + (size_t)w->horizon;
        target_rows[i] = target_rows[i] > last ? last : target_rows[i]; /* open_end: see below */
        float *row = x + i * width;
        for (int t = 0; t < w->window; t++) {
            size_t r = first + i + (size_t)t;
            for (int c = 0; c < w->n_cols; c++)
                row[(size_t)t * w->n_cols + c] = w->cols[c] == PST_SEQWIN_TARGET
                                                     ? src->y[r]
                                                     : src->x[r * src->n_features + w->cols[c]];
        }
    }
    /* The target rows carry y and the classes; their features give way to the windows. */
    pst_dataset_t *d = pst_dataset_take_rows(src, target_rows, count);
    free(target_rows);
    for (size_t i = 0; d != NULL && i < count; i++) /* targets not known yet: 0, as a file */
        if (first + i + (size_t)w->window - 1 + (size_t)w->horizon > last) /* lacking them */
            d->y[i] = 0.0f;
    if (d == NULL) {
        free(x);
        return pst_err_set(err, PST_ENOMEM, "data.window: out of memory for %zu windows", count);
    }
    free(d->x);
    d->x = x;
    for (size_t j = 0; d->feature_names && j < d->n_features; j++)
        free(d->feature_names[j]);
    free(d->feature_names);
    d->feature_names = NULL;
    d->n_features = width;
    pst_table_unref(&d->table);
    *out = d;
    return PST_OK;
}
