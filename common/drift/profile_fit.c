/* Drift profiles of datasets: raw CSV columns by type, plain features, and labels. */
#include "common/drift/profile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/table.h"

/* Categorical column j of a raw table: codes counted, then named by the column's vocabulary
 * (a code outside it, which a well-formed table never holds, counts as missing). */
static int fit_category(pst_drift_dist_t *d, const pst_dataset_t *ds, size_t j, pst_err_t *err)
{
    const pst_table_col_t *col = &ds->table->cols[j];
    size_t n_values = col->n_vocab + 1;
    uint64_t *counts = calloc(n_values, sizeof *counts);
    const char **values = malloc(n_values * sizeof *values);
    if (!counts || !values) {
        free(counts);
        free(values);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    for (size_t k = 0; k < col->n_vocab; k++)
        values[k] = col->vocab[k];
    values[col->n_vocab] = "";
    for (size_t i = 0; i < ds->n_rows; i++) {
        float code = ds->x[i * ds->n_features + j];
        counts[isfinite(code) && code >= 0 && code < col->n_vocab ? (size_t)code : col->n_vocab]++;
    }
    /* Values the rows never hold are left out, so that the kept ones are the frequent ones. */
    size_t used = 0;
    for (size_t k = 0; k < n_values; k++)
        if (counts[k] > 0) {
            values[used] = values[k];
            counts[used++] = counts[k];
        }
    int rc = pst_drift_dist_fit_counts(d, col->name, values, counts, used, err);
    free(counts);
    free(values);
    return rc;
}

static bool is_category(const pst_dataset_t *ds, size_t j)
{
    return ds->table && ds->table->cols[j].type == PST_COL_CATEGORICAL;
}

/* Name of feature j into buf when it has none. */
static const char *name_of(const pst_dataset_t *ds, size_t j, char *buf, size_t cap)
{
    if (ds->table)
        return ds->table->cols[j].name;
    if (ds->feature_names)
        return ds->feature_names[j];
    snprintf(buf, cap, "f%zu", j);
    return buf;
}

/* Rows of the edge sample: an even stride, fewer for wide data (PST_DRIFT_SAMPLE_BUDGET). */
static size_t sample_step(size_t n_rows, size_t n_cols)
{
    size_t cap = PST_DRIFT_SAMPLE_BUDGET / (n_cols ? n_cols : 1);
    cap = cap < PST_DRIFT_EDGE_SAMPLE_MIN ? PST_DRIFT_EDGE_SAMPLE_MIN
          : cap > PST_DRIFT_EDGE_SAMPLE   ? PST_DRIFT_EDGE_SAMPLE
                                          : cap;
    return n_rows > cap ? (n_rows + cap - 1) / cap : 1;
}

/* The numeric columns among the first n: the edge sample gathered and every row counted in
 * row-major passes, as the matrix lies in memory (a pass per column would stride through all
 * of it once per column). */
static int fit_numeric_columns(pst_drift_profile_t *p, const pst_dataset_t *ds, size_t n,
                               pst_err_t *err)
{
    size_t nf = ds->n_features, step = sample_step(ds->n_rows, n);
    size_t m = ds->n_rows ? (ds->n_rows - 1) / step + 1 : 0;
    float *sample = malloc((n * m + 1) * sizeof *sample); // (n, m)
    if (sample == NULL)
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t i = 0, k = 0; i < ds->n_rows; i += step, k++)
        for (size_t j = 0; j < n; j++)
            sample[j * m + k] = ds->x[i * nf + j];
    int rc = PST_OK;
    for (size_t j = 0; j < n && rc == PST_OK; j++) {
        char buf[32];
        if (!is_category(ds, j))
            rc = pst_drift_dist_init_numeric(&p->features[j], name_of(ds, j, buf, sizeof buf),
                                             sample + j * m, m, err);
    }
    free(sample);
    for (size_t i = 0; rc == PST_OK && i < ds->n_rows; i++) {
        const float *row = ds->x + i * nf;
        for (size_t j = 0; j < n; j++)
            if (!is_category(ds, j))
                pst_drift_dist_add(&p->features[j], row[j]);
    }
    return rc;
}

int pst_drift_profile_fit_features(const pst_dataset_t *ds, pst_drift_profile_t **out,
                                   pst_err_t *err)
{
    *out = NULL;
    if (ds->x == NULL)
        return pst_err_set(err, PST_EINVAL, "drift profile: the dataset is not dense");
    pst_drift_profile_t *p = calloc(1, sizeof *p);
    size_t n = ds->n_features < PST_DRIFT_MAX_FEATURES ? ds->n_features : PST_DRIFT_MAX_FEATURES;
    if (p == NULL || !(p->features = calloc(n ? n : 1, sizeof *p->features))) {
        free(p);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    p->n_inputs = ds->n_features;
    p->n_features = n; /* entries not fitted yet are zeroed: safe to release */
    int rc = fit_numeric_columns(p, ds, n, err);
    for (size_t j = 0; j < n && rc == PST_OK; j++)
        if (is_category(ds, j))
            rc = fit_category(&p->features[j], ds, j, err);
    if (rc != PST_OK)
        pst_drift_profile_destroy(&p);
    *out = p;
    return rc;
}

int pst_drift_profile_fit_labels(pst_drift_profile_t *p, const pst_dataset_t *ds, pst_err_t *err)
{
    const char *name = ds->target_name ? ds->target_name : "label";
    pst_drift_dist_fini(&p->label);
    p->has_label = false;
    int rc;
    if (ds->task == PST_TASK_REGRESSION) {
        rc = pst_drift_dist_fit_numeric(&p->label, name, ds->y, 1, ds->n_rows, err);
    } else {
        size_t k = ds->n_classes > 0 ? (size_t)ds->n_classes : 1;
        uint64_t *counts = calloc(k, sizeof *counts);
        char **texts = calloc(k, sizeof *texts);
        bool ok = counts && texts;
        for (size_t c = 0; ok && c < k; c++) {
            char buf[64];
            pst_drift_class_text((const char *const *)ds->class_names, ds->class_values, (int)c,
                                 buf, sizeof buf);
            ok = (texts[c] = strdup(buf)) != NULL;
        }
        for (size_t i = 0; ok && i < ds->n_rows; i++)
            if (ds->y[i] >= 0 && ds->y[i] < (float)k)
                counts[(size_t)ds->y[i]]++;
        rc = ok ? pst_drift_dist_fit_counts(&p->label, name, (const char *const *)texts, counts, k,
                                            err)
                : pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
        for (size_t c = 0; texts && c < k; c++)
            free(texts[c]);
        free(texts);
        free(counts);
    }
    p->has_label = rc == PST_OK;
    return rc;
}
