/* Per-worker training files: each worker loads its own, statistics are reduced over workers. */
#include "app/shardload.h"

#include "app/drift/driftshard.h"
#include "app/tabular.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/dataload.h"
#include "common/sample/split.h"

bool pst_shardload_is_pattern(const char *path)
{
    return strstr(path, PST_WORKER_PATTERN) != NULL;
}

/* Every step that can fail on one worker alone is followed by this agreement, so a failure is
 * seen by all workers and none is left waiting in a reduction. */
static int agree(const pst_reducer_t *r, int rc, pst_err_t *err)
{
    double failed = rc != PST_OK;
    pst_err_t scratch;
    int mrc = r->max(r->ctx, &failed, 1, rc == PST_OK ? err : &scratch);
    if (rc != PST_OK)
        return rc;
    if (mrc != PST_OK)
        return mrc;
    if (failed > 0)
        return pst_err_set(err, PST_ESTATE, "another worker failed to load its data");
    return PST_OK;
}

static void worker_path(const char *pattern, int worker, char *out, size_t cap)
{
    const char *at = strstr(pattern, PST_WORKER_PATTERN);
    snprintf(out, cap, "%.*s%d%s", (int)(at - pattern), pattern, worker,
             at + strlen(PST_WORKER_PATTERN));
}

/* Maps this file's class indices to the global classes 0..K-1 (labels are the integers). */
static int agree_classes(pst_dataset_t *d, const char *path, const pst_reducer_t *r, pst_err_t *err)
{
    double local[2] = {d->task == PST_TASK_CLASSIFICATION ? 1 : 0,
                       d->task == PST_TASK_CLASSIFICATION ? 0 : 1};
    int rc = r->max(r->ctx, local, 2, err);
    if (rc != PST_OK)
        return rc;
    if (local[0] > 0 && local[1] > 0)
        return pst_err_set(err, PST_EINVAL,
                           "the workers' files disagree on the task; set data.task");
    if (d->task != PST_TASK_CLASSIFICATION)
        return PST_OK;
    double k = 0;
    for (int c = 0; c < d->n_classes && rc == PST_OK; c++) {
        double v = d->class_values[c];
        if (v < 0 || v != floor(v) || v > 1e6)
            rc = pst_err_set(err, PST_EFORMAT,
                             "%s: label %g: per-worker files need integer labels 0..K-1", path, v);
        k = fmax(k, v + 1);
    }
    if ((rc = agree(r, rc, err)) != PST_OK || (rc = r->max(r->ctx, &k, 1, err)) != PST_OK)
        return rc;
    for (size_t i = 0; i < d->n_rows; i++)
        d->y[i] = (float)d->class_values[(int)d->y[i]];
    double *values = realloc(d->class_values, (size_t)k * sizeof(double));
    if (!values)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int c = 0; c < (int)k; c++)
        values[c] = c;
    d->class_values = values;
    d->n_classes = (int)k;
    return PST_OK;
}

/* Per feature: [count, sum, sum of squares] summed, [max, -min] maximised, over observed cells. */
static int global_stats(const pst_dataset_t *d, float pixel_scale, const pst_reducer_t *r,
                        double *sums, double *extremes, pst_err_t *err)
{
    size_t m = d->n_features;
    for (size_t j = 0; j < m; j++)
        extremes[2 * j] = extremes[2 * j + 1] = -INFINITY;
    for (size_t i = 0; i < d->n_rows; i++) {
        const float *row = d->x + i * m;
        for (size_t j = 0; j < m; j++) {
            double v = (double)(row[j] * pixel_scale);
            if (isnan(v))
                continue;
            sums[3 * j] += 1;
            sums[3 * j + 1] += v;
            sums[3 * j + 2] += v * v;
            extremes[2 * j] = fmax(extremes[2 * j], v);
            extremes[2 * j + 1] = fmax(extremes[2 * j + 1], -v);
        }
    }
    int rc = r->sum(r->ctx, sums, (int)(3 * m), err);
    return rc ? rc : r->max(r->ctx, extremes, (int)(2 * m), err);
}

static int fit_global(pst_pipeline_t *p, const pst_config_t *cfg, const pst_reducer_t *r,
                      pst_err_t *err)
{
    if (strcmp(cfg->data.impute, "mean") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.impute: %s needs every row in one place; per-worker files "
                           "support mean",
                           cfg->data.impute);
    const pst_dataset_t *d = p->train;
    size_t m = d->n_features;
    bool images = strcmp(p->format, "idx") == 0;
    const char *scaler = cfg->data.scaler;
    bool standard = strcmp(scaler, "standard") == 0 || (strcmp(scaler, "auto") == 0 && !images);
    bool minmax = strcmp(scaler, "minmax") == 0;
    double *sums = calloc(3 * m, sizeof(double)), *ext = calloc(2 * m, sizeof(double));
    p->preproc = pst_preproc_new(m);
    int rc = sums && ext && p->preproc ? PST_OK : PST_ENOMEM;
    double rows = (double)d->n_rows;
    if (rc == PST_OK) {
        p->preproc->pixel_scale = images ? 1.0f / 255.0f : 1.0f;
        rc = global_stats(d, p->preproc->pixel_scale, r, sums, ext, err);
    }
    if (rc == PST_OK)
        rc = r->sum(r->ctx, &rows, 1, err);
    for (size_t j = 0; j < m && rc == PST_OK; j++) {
        /* Statistics of the imputed column: missing cells count as the mean. */
        double n_obs = sums[3 * j];
        double mean = n_obs > 0 ? sums[3 * j + 1] / n_obs : 0;
        double var = (sums[3 * j + 2] + (rows - n_obs) * mean * mean) / rows - mean * mean;
        p->preproc->fill[j] = (float)mean;
        if (standard && var > 1e-12) {
            p->preproc->shift[j] = (float)mean;
            p->preproc->scale[j] = (float)(1.0 / sqrt(var));
        } else if (standard) {
            p->preproc->shift[j] = (float)mean;
        } else if (minmax && n_obs > 0) {
            double lo = -ext[2 * j + 1], hi = ext[2 * j];
            p->preproc->shift[j] = (float)lo;
            p->preproc->scale[j] = hi > lo ? (float)(1.0 / (hi - lo)) : 1.0f;
        }
    }
    free(sums);
    free(ext);
    return rc == PST_ENOMEM ? pst_err_set(err, rc, "out of memory") : rc;
}

static int split_own(pst_pipeline_t *p, const pst_config_t *cfg, pst_dataset_t *all, int worker,
                     pst_err_t *err)
{
    pst_split_t s;
    bool stratify = cfg->data.stratify && all->task == PST_TASK_CLASSIFICATION;
    uint64_t seed = (uint64_t)cfg->seed + 7919u * (uint64_t)(worker + 1);
    int rc = pst_split_two(all, cfg->data.val_fraction, stratify, seed, &s, err);
    if (rc != PST_OK)
        return rc;
    p->train = pst_dataset_take_rows(all, s.train, s.n_train);
    p->val = pst_dataset_take_rows(all, s.val, s.n_val);
    pst_split_fini(&s);
    if (!p->train || !p->val)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    return PST_OK;
}

static int load_own(pst_pipeline_t *p, const pst_config_t *cfg, int worker, const pst_reducer_t *r,
                    pst_dataset_t **all, char *path, size_t cap, pst_err_t *err)
{
    worker_path(cfg->data.train, worker, path, cap);
    pst_data_spec_t spec = {.path = path,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL};
    int rc = pst_data_infer_format(&spec, &p->format, err);
    if (rc == PST_OK)
        rc = pst_pipeline_load_file(cfg, path, NULL, NULL, 0, all, err);
    if (rc == PST_OK && (rc = pst_dataset_densify(*all, 0, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", path);
    if ((rc = agree(r, rc, err)) != PST_OK)
        return rc;
    double width[2] = {(double)(*all)->n_features, -(double)(*all)->n_features};
    if ((rc = r->max(r->ctx, width, 2, err)) != PST_OK)
        return rc;
    if (width[0] != -width[1])
        return pst_err_set(err, PST_EFORMAT, "%s: the workers' files differ in width (%g..%g)",
                           path, -width[1], width[0]);
    return agree_classes(*all, path, r, err);
}

/* Typed CSV columns. Dates, booleans and numbers encode the same on every worker; categories
 * and outlier bounds would be fitted on each worker's own rows and disagree, so they are
 * refused here (one shared file under mpirun fits them once, on the common training split). */
static int encode_own(pst_pipeline_t *p, const pst_config_t *cfg, pst_err_t *err)
{
    const pst_table_t *t = p->train->table;
    for (size_t j = 0; t && j < t->n_cols; j++)
        if (t->cols[j].type == PST_COL_CATEGORICAL)
            return pst_err_set(err, PST_EINVAL,
                               "column '%s' is categorical: one data file per worker (%s) takes "
                               "numeric, boolean and date columns only; give one shared file",
                               t->cols[j].name, PST_WORKER_PATTERN);
    if (t && strcmp(cfg->data.outliers, "none") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.outliers: one data file per worker (%s) cannot fit shared "
                           "bounds; give one shared file",
                           PST_WORKER_PATTERN);
    pst_dataset_t *parts[3] = {p->train, p->val, p->test};
    return pst_tabular_encode(cfg, parts, 3, NULL, 0, &p->encoder, err);
}

int pst_shardload(pst_pipeline_t *p, const pst_config_t *cfg, int worker,
                  const pst_reducer_t *reduce, pst_err_t *err)
{
    memset(p, 0, sizeof *p);
    if (cfg->data.window > 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.window: a time series is one ordered file; data.train names "
                           "one file per worker (%s)",
                           PST_WORKER_PATTERN);
    if (!cfg->data.test[0])
        return pst_err_set(err, PST_EINVAL,
                           "data.train names one file per worker (%s): give data.test too",
                           PST_WORKER_PATTERN);
    char path[4096];
    pst_dataset_t *all = NULL;
    int rc = load_own(p, cfg, worker, reduce, &all, path, sizeof path, err);
    if (rc != PST_OK) {
        pst_dataset_destroy(&all);
        return rc;
    }
    rc = pst_pipeline_load_like(cfg, cfg->data.test, cfg->data.test_labels, all, &p->test, err);
    if (rc == PST_OK && (rc = pst_dataset_densify(p->test, all->n_features, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", cfg->data.test);
    if (rc == PST_OK)
        rc = split_own(p, cfg, all, worker, err);
    if (rc == PST_OK && cfg->data.drop_duplicates)
        rc = pst_preproc_drop_duplicates(p->train, &p->n_duplicates, err);
    /* The raw columns, before encoding: every worker agrees first, so that all or none
     * reduce. */
    if (cfg->drift.profile && (rc = agree(reduce, rc, err)) == PST_OK)
        rc = pst_drift_profile_fit_shards(p->train, reduce, &p->drift, err);
    if (rc == PST_OK)
        rc = encode_own(p, cfg, err);
    rc = agree(reduce, rc, err);
    if (rc == PST_OK)
        rc = fit_global(p, cfg, reduce, err);
    pst_dataset_t *parts[3] = {p->train, p->val, p->test};
    for (int i = 0; i < 3 && rc == PST_OK; i++)
        if ((rc = pst_preproc_apply(p->preproc, parts[i], err)) == PST_OK)
            rc = pst_preproc_check_finite(parts[i], err);
    pst_dataset_destroy(&all);
    if (rc != PST_OK)
        pst_pipeline_fini(p);
    return rc;
}
