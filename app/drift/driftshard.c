/* Drift profiles over per-worker files: averaged quantile edges, counts summed over workers. */
#include "app/drift/driftshard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/table.h"

#define N_QUANTILES (PST_DRIFT_BINS - 1)

/* One numeric column: values[i * stride] of this worker's rows. */
typedef struct column {
    const float *values;
    size_t stride;
    const char *name;
} column_t;

/* Edges of every column: each worker's quantiles weighted by its finite values, summed. */
static int agree_edges(pst_drift_dist_t *dists, const column_t *cols, size_t n_cols, size_t n_rows,
                       const pst_reducer_t *r, pst_err_t *err)
{
    size_t width = N_QUANTILES + 1;
    double *buf = calloc(n_cols * width + 1, sizeof *buf), q[N_QUANTILES];
    int rc = buf ? PST_OK : pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t j = 0; j < n_cols && rc == PST_OK; j++) {
        size_t finite = 0;
        rc = pst_drift_quantiles(cols[j].values, cols[j].stride, n_rows, q, &finite, err);
        for (size_t k = 0; finite > 0 && k < N_QUANTILES; k++)
            buf[j * width + k] = q[k] * (double)finite;
        buf[j * width + N_QUANTILES] = (double)finite;
    }
    if (rc == PST_OK)
        rc = r->sum(r->ctx, buf, (int)(n_cols * width), err);
    for (size_t j = 0; j < n_cols && rc == PST_OK; j++) {
        double weight = buf[j * width + N_QUANTILES];
        for (size_t k = 0; k < N_QUANTILES; k++)
            q[k] = weight > 0 ? buf[j * width + k] / weight : 0;
        rc = pst_drift_dist_init_edges(&dists[j], cols[j].name, q, weight > 0 ? N_QUANTILES : 0,
                                       err);
    }
    free(buf);
    return rc;
}

/* This worker's rows counted in the agreed edges, then counts, missing cells, maxima and minima
 * reduced over workers. */
static int agree_counts(pst_drift_dist_t *dists, const column_t *cols, size_t n_cols, size_t n_rows,
                        const pst_reducer_t *r, pst_err_t *err)
{
    size_t total = 0;
    for (size_t j = 0; j < n_cols; j++) {
        for (size_t i = 0; i < n_rows; i++)
            pst_drift_dist_add(&dists[j], cols[j].values[i * cols[j].stride]);
        total += dists[j].n_bins + 1;
    }
    double *sums = malloc((total + 1) * sizeof *sums),
           *ext = malloc((2 * n_cols + 1) * sizeof *ext);
    int rc = sums && ext ? PST_OK : pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t j = 0, at = 0; j < n_cols && rc == PST_OK; j++) {
        for (size_t k = 0; k < dists[j].n_bins; k++)
            sums[at++] = (double)dists[j].counts[k];
        sums[at++] = (double)dists[j].n_missing;
        ext[2 * j] = isnan(dists[j].max) ? -INFINITY : dists[j].max;
        ext[2 * j + 1] = isnan(dists[j].min) ? -INFINITY : -dists[j].min;
    }
    if (rc == PST_OK && (rc = r->sum(r->ctx, sums, (int)total, err)) == PST_OK)
        rc = r->max(r->ctx, ext, (int)(2 * n_cols), err);
    for (size_t j = 0, at = 0; j < n_cols && rc == PST_OK; j++) {
        for (size_t k = 0; k < dists[j].n_bins; k++)
            dists[j].counts[k] = (uint64_t)sums[at++];
        dists[j].n_missing = (uint64_t)sums[at++];
        dists[j].max = isinf(ext[2 * j]) ? NAN : ext[2 * j];
        dists[j].min = isinf(ext[2 * j + 1]) ? NAN : -ext[2 * j + 1];
    }
    free(sums);
    free(ext);
    return rc;
}

static int fit_columns(pst_drift_dist_t *dists, const column_t *cols, size_t n_cols, size_t n_rows,
                       const pst_reducer_t *r, pst_err_t *err)
{
    int rc = agree_edges(dists, cols, n_cols, n_rows, r, err);
    return rc == PST_OK ? agree_counts(dists, cols, n_cols, n_rows, r, err) : rc;
}

/* Class counts summed over workers (the workers agreed on the classes before). */
static int agree_classes(pst_drift_profile_t *p, const pst_dataset_t *ds, const pst_reducer_t *r,
                         pst_err_t *err)
{
    size_t k = ds->n_classes > 0 ? (size_t)ds->n_classes : 1;
    double *sums = calloc(k, sizeof *sums);
    uint64_t *counts = calloc(k, sizeof *counts);
    char(*texts)[64] = calloc(k, sizeof *texts);
    const char **values = calloc(k, sizeof *values);
    int rc = sums && counts && texts && values
                 ? PST_OK
                 : pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t i = 0; rc == PST_OK && i < ds->n_rows; i++)
        if (ds->y[i] >= 0 && ds->y[i] < (float)k)
            sums[(size_t)ds->y[i]]++;
    if (rc == PST_OK)
        rc = r->sum(r->ctx, sums, (int)k, err);
    for (size_t c = 0; rc == PST_OK && c < k; c++) {
        counts[c] = (uint64_t)sums[c];
        pst_drift_class_text((const char *const *)ds->class_names, ds->class_values, (int)c,
                             texts[c], sizeof texts[c]);
        values[c] = texts[c];
    }
    if (rc == PST_OK)
        rc = pst_drift_dist_fit_counts(&p->label, ds->target_name ? ds->target_name : "label",
                                       values, counts, k, err);
    free(sums);
    free(counts);
    free(texts);
    free(values);
    return rc;
}

static int fit_profile(pst_drift_profile_t *p, const pst_dataset_t *ds, const pst_reducer_t *r,
                       pst_err_t *err)
{
    size_t n = p->n_features, nf = ds->n_features;
    column_t *cols = calloc(n + 1, sizeof *cols);
    char(*names)[32] = calloc(n + 1, sizeof *names);
    if (!cols || !names) {
        free(cols);
        free(names);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    for (size_t j = 0; j < n; j++) {
        snprintf(names[j], sizeof names[j], "f%zu", j);
        cols[j] = (column_t){ds->x + j, nf,
                             ds->table           ? ds->table->cols[j].name
                             : ds->feature_names ? ds->feature_names[j]
                                                 : names[j]};
    }
    int rc = fit_columns(p->features, cols, n, ds->n_rows, r, err);
    column_t label = {ds->y, 1, ds->target_name ? ds->target_name : "label"};
    if (rc == PST_OK)
        rc = ds->task == PST_TASK_CLASSIFICATION
                 ? agree_classes(p, ds, r, err)
                 : fit_columns(&p->label, &label, 1, ds->n_rows, r, err);
    p->has_label = rc == PST_OK;
    free(cols);
    free(names);
    return rc;
}

int pst_drift_profile_fit_shards(const pst_dataset_t *train, const pst_reducer_t *r,
                                 pst_drift_profile_t **out, pst_err_t *err)
{
    *out = NULL;
    if (train->x == NULL)
        return pst_err_set(err, PST_EINVAL, "drift profile: the dataset is not dense");
    size_t n =
        train->n_features < PST_DRIFT_MAX_FEATURES ? train->n_features : PST_DRIFT_MAX_FEATURES;
    pst_drift_profile_t *p = calloc(1, sizeof *p);
    if (p == NULL || !(p->features = calloc(n ? n : 1, sizeof *p->features))) {
        free(p);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    p->n_inputs = train->n_features;
    p->n_features = n; /* entries not fitted yet are zeroed: safe to release */
    int rc = fit_profile(p, train, r, err);
    if (rc != PST_OK)
        pst_drift_profile_destroy(&p);
    *out = p;
    return rc;
}
