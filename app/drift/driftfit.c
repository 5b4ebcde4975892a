/* Prediction distributions of drift profiles: fitted after training, counted on new data. */
#include "app/drift/driftfit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "worker/train/train.h"

#define PREDICTION_NAME "prediction"

static bool numeric_outputs(const pst_drift_outputs_t *o)
{
    return o->task == PST_TASK_REGRESSION || o->n_classes <= 2;
}

/* The numeric value profiled for one output row: p(class 1) or the predicted value. */
static float output_value(const pst_drift_outputs_t *o, const float *row, int n_out)
{
    if (o->task == PST_TASK_REGRESSION || n_out == 1)
        return row[0];
    return row[1];
}

static int fit_numeric(pst_drift_dist_t *d, const pst_drift_outputs_t *o, const float *out,
                       int n_out, size_t n, pst_err_t *err)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL)
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = output_value(o, out + i * (size_t)n_out, n_out);
    int rc = pst_drift_dist_fit_numeric(d, PREDICTION_NAME, v, 1, n, err);
    free(v);
    return rc;
}

static int fit_classes(pst_drift_dist_t *d, const pst_drift_outputs_t *o, const float *out,
                       int n_out, size_t n, pst_err_t *err)
{
    size_t k = (size_t)o->n_classes;
    uint64_t *counts = calloc(k, sizeof *counts);
    char **texts = calloc(k, sizeof *texts);
    bool ok = counts && texts;
    for (size_t c = 0; ok && c < k; c++) {
        char buf[64];
        pst_drift_class_text(o->class_names, o->class_values, (int)c, buf, sizeof buf);
        ok = (texts[c] = strdup(buf)) != NULL;
    }
    for (size_t i = 0; ok && i < n; i++) {
        int c = pst_predicted_class(out + i * (size_t)n_out, n_out);
        if (c >= 0 && (size_t)c < k)
            counts[c]++;
    }
    int rc = ok ? pst_drift_dist_fit_counts(d, PREDICTION_NAME, (const char *const *)texts, counts,
                                            k, err)
                : pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    for (size_t c = 0; texts && c < k; c++)
        free(texts[c]);
    free(texts);
    free(counts);
    return rc;
}

int pst_driftfit_outputs(pst_drift_dist_t *d, const pst_drift_outputs_t *o, const float *out,
                         int n_out, size_t n, pst_err_t *err)
{
    return numeric_outputs(o) ? fit_numeric(d, o, out, n_out, n, err)
                              : fit_classes(d, o, out, n_out, n, err);
}

void pst_driftfit_count_outputs(const pst_drift_dist_t *d, const pst_drift_outputs_t *o,
                                const float *out, int n_out, size_t n, uint64_t *counts)
{
    for (size_t i = 0; i < n; i++) {
        const float *row = out + i * (size_t)n_out;
        if (d->kind == PST_DRIFT_NUMERIC) {
            float v = output_value(o, row, n_out);
            if (isfinite(v))
                counts[pst_drift_dist_bin(d, v)]++;
            continue;
        }
        char buf[64];
        int c = pst_predicted_class(row, n_out);
        pst_drift_class_text(o->class_names, o->class_values, c, buf, sizeof buf);
        counts[pst_drift_dist_category(d, buf)]++;
    }
}

int pst_driftfit_predictions(pst_drift_profile_t *p, pst_model_t *model, const pst_dataset_t *train,
                             const pst_dataset_t *val, int batch, pst_err_t *err)
{
    const pst_dataset_t *ds = val && val->n_rows > 0 ? val : train;
    int n_out = pst_model_n_outputs(model);
    float *out = malloc((ds->n_rows ? ds->n_rows : 1) * (size_t)n_out * sizeof *out);
    if (out == NULL)
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    pst_drift_outputs_t o = {train->task, train->n_classes, (const char *const *)train->class_names,
                             train->class_values};
    pst_drift_dist_fini(&p->prediction);
    p->has_prediction = false;
    free(p->prediction_rows);
    p->prediction_rows = NULL;
    int rc = pst_predict(model, ds, batch, out, err);
    if (rc == PST_OK &&
        (rc = pst_driftfit_outputs(&p->prediction, &o, out, n_out, ds->n_rows, err)) == PST_OK) {
        p->has_prediction = true;
        if (!(p->prediction_rows = strdup(ds == val ? "validation" : "training")))
            rc = pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    free(out);
    return rc;
}
