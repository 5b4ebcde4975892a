/* Permutation importance over the explainer's labelled rows. */
#include "app/explain/importance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/eval/metrics.h"
#include "common/rng.h"

static const char *const metric_names[] = {"auto", "accuracy", "log_loss", "mse"};

int pst_importance_metric_parse(const char *name, pst_importance_metric_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, metric_names[i]) == 0) {
            *out = (pst_importance_metric_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

const char *pst_importance_metric_name(pst_importance_metric_t metric)
{
    return (unsigned)metric < 4 ? metric_names[metric] : "?";
}

void pst_importance_fini(pst_importance_t *imp)
{
    free(imp->drops);
    free(imp->mean);
    free(imp->std);
    free(imp->order);
    memset(imp, 0, sizeof *imp);
}

/* The metric of the model on rows x against ex's labels. */
static int score(const pst_explainer_t *ex, pst_importance_metric_t metric, const float *x,
                 float *out, double *value, pst_err_t *err)
{
    size_t n = ex->data->n_rows;
    int rc = pst_explainer_predict(ex, x, n, out, err);
    if (rc != PST_OK)
        return rc;
    if (metric == PST_IMPORTANCE_MSE) {
        pst_reg_metrics_t m;
        pst_reg_metrics_compute(&m, n, out, ex->data->y);
        *value = m.mse;
        return PST_OK;
    }
    pst_class_metrics_t m = {0};
    rc = pst_class_metrics_from_outputs(&m, ex->ref->n_classes, n, out, ex->n_classes, ex->data->y,
                                        err);
    if (rc == PST_OK)
        *value = metric == PST_IMPORTANCE_ACCURACY ? m.accuracy : m.log_loss;
    pst_class_metrics_fini(&m);
    return rc;
}

static int resolve_metric(const pst_explainer_t *ex, pst_importance_metric_t *metric,
                          pst_err_t *err)
{
    bool classify = ex->ref->task == PST_TASK_CLASSIFICATION;
    if (*metric == PST_IMPORTANCE_AUTO)
        *metric = classify ? PST_IMPORTANCE_LOG_LOSS : PST_IMPORTANCE_MSE;
    if (classify == (*metric == PST_IMPORTANCE_MSE))
        return pst_err_set(err, PST_EINVAL, "metric %s does not apply to a %s model",
                           pst_importance_metric_name(*metric),
                           classify ? "classification" : "regression");
    return PST_OK;
}

/* Rows x with group g's features taken from row perm[i] for row i. */
static void permute_group(const pst_explainer_t *ex, int g, const size_t *perm, float *x)
{
    size_t d = ex->data->n_features, off = ex->group_offset[g], w = ex->group_width[g];
    const float *src = ex->data->x;
    for (size_t i = 0; i < ex->data->n_rows; i++)
        memcpy(x + i * d + off, src + perm[i] * d + off, w * sizeof(float));
}

static void summarise(pst_importance_t *imp)
{
    for (int g = 0; g < imp->n_groups; g++) {
        const double *d = imp->drops + (size_t)g * (size_t)imp->repeats;
        double sum = 0, sq = 0;
        for (int r = 0; r < imp->repeats; r++)
            sum += d[r];
        imp->mean[g] = sum / imp->repeats;
        for (int r = 0; r < imp->repeats; r++)
            sq += (d[r] - imp->mean[g]) * (d[r] - imp->mean[g]);
        imp->std[g] = sqrt(sq / imp->repeats);
        imp->order[g] = g;
    }
    /* insertion sort: stable, so equal means keep the column order */
    for (int i = 1; i < imp->n_groups; i++)
        for (int j = i; j > 0 && imp->mean[imp->order[j]] > imp->mean[imp->order[j - 1]]; j--) {
            int t = imp->order[j];
            imp->order[j] = imp->order[j - 1];
            imp->order[j - 1] = t;
        }
}

int pst_importance_compute(const pst_explainer_t *ex, pst_importance_metric_t metric, int repeats,
                           uint64_t seed, pst_importance_t *imp, pst_err_t *err)
{
    memset(imp, 0, sizeof *imp);
    size_t n = ex->data->n_rows, d = ex->data->n_features;
    if (!ex->labelled || n == 0)
        return pst_err_set(err, PST_EINVAL, "permutation importance needs labelled rows");
    if (repeats < 1)
        return pst_err_set(err, PST_EINVAL, "repeats must be at least 1");
    int rc = resolve_metric(ex, &metric, err);
    if (rc != PST_OK)
        return rc;
    imp->metric = metric;
    imp->n_groups = ex->n_groups;
    imp->repeats = repeats;
    size_t ng = (size_t)ex->n_groups;
    imp->drops = calloc(ng * (size_t)repeats, sizeof(double));
    imp->mean = calloc(ng, sizeof(double));
    imp->std = calloc(ng, sizeof(double));
    imp->order = calloc(ng, sizeof(int));
    float *x = malloc(n * d * sizeof(float));
    float *out = malloc(n * (size_t)ex->n_classes * sizeof(float));
    size_t *perm = malloc(n * sizeof(size_t));
    if (!imp->drops || !imp->mean || !imp->std || !imp->order || !x || !out || !perm)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK) {
        memcpy(x, ex->data->x, n * d * sizeof(float));
        rc = score(ex, metric, x, out, &imp->base, err);
    }
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    for (int g = 0; g < ex->n_groups && rc == PST_OK; g++) {
        for (int r = 0; r < repeats && rc == PST_OK; r++) {
            for (size_t i = 0; i < n; i++)
                perm[i] = i;
            pst_rng_shuffle(&rng, perm, n);
            permute_group(ex, g, perm, x);
            double value = 0;
            rc = score(ex, metric, x, out, &value, err);
            imp->drops[(size_t)g * (size_t)repeats + (size_t)r] =
                metric == PST_IMPORTANCE_ACCURACY ? imp->base - value : value - imp->base;
        }
        for (size_t i = 0; i < n; i++) /* put the group back */
            memcpy(x + i * d + ex->group_offset[g], ex->data->x + i * d + ex->group_offset[g],
                   ex->group_width[g] * sizeof(float));
    }
    if (rc == PST_OK)
        summarise(imp);
    free(x);
    free(out);
    free(perm);
    if (rc != PST_OK)
        pst_importance_fini(imp);
    return rc;
}
