/* The explained function: a model or ensemble over input-space rows, and the named input groups. */
#include "app/explain/explainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/encoder.h"
#include "common/data/table.h"
#include "worker/train/train.h"

static int alloc_groups(pst_explainer_t *ex, int n, pst_err_t *err)
{
    ex->n_groups = n;
    ex->group_offset = calloc((size_t)n, sizeof(size_t));
    ex->group_width = calloc((size_t)n, sizeof(size_t));
    ex->group_names = calloc((size_t)n, sizeof(char *));
    if (!ex->group_offset || !ex->group_width || !ex->group_names)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    return PST_OK;
}

/* One group per feature, named by the first names given (or f1, f2, ...). */
static int feature_groups(pst_explainer_t *ex, char **names, pst_err_t *err)
{
    int rc = alloc_groups(ex, (int)ex->data->n_features, err);
    for (int g = 0; g < ex->n_groups && rc == PST_OK; g++) {
        ex->group_offset[g] = (size_t)g;
        ex->group_width[g] = 1;
        char buf[32];
        snprintf(buf, sizeof buf, "f%d", g + 1);
        if (!(ex->group_names[g] = strdup(names && names[g] ? names[g] : buf)))
            rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    return rc;
}

static int encoder_groups(pst_explainer_t *ex, const pst_encoder_t *enc, pst_err_t *err)
{
    int rc = alloc_groups(ex, (int)enc->n_inputs, err);
    for (int g = 0; g < ex->n_groups && rc == PST_OK; g++) {
        ex->group_offset[g] = enc->inputs[g].offset;
        ex->group_width[g] = enc->inputs[g].width;
        if (!(ex->group_names[g] = strdup(enc->inputs[g].name)))
            rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    return rc;
}

static int group_of_feature(const pst_explainer_t *ex, size_t f)
{
    for (int g = 0; g < ex->n_groups; g++)
        if (f >= ex->group_offset[g] && f < ex->group_offset[g] + ex->group_width[g])
            return g;
    return -1;
}

static int map_inputs(pst_explainer_t *ex, pst_err_t *err)
{
    const pst_modelfile_t *mf = ex->mf;
    int width = pst_modelfile_width(mf);
    if (!(ex->input_group = calloc((size_t)width, sizeof(int))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int j = 0; j < width; j++) {
        size_t f = mf->n_columns > 0 ? mf->columns[j] : (size_t)j;
        if ((ex->input_group[j] = group_of_feature(ex, f)) < 0)
            return pst_err_set(err, PST_EFORMAT, "model input %d (feature %zu) has no column",
                               j + 1, f + 1);
    }
    return PST_OK;
}

int pst_explainer_init_model(pst_explainer_t *ex, const pst_modelfile_t *mf, pst_dataset_t *data,
                             bool labelled, pst_err_t *err)
{
    memset(ex, 0, sizeof *ex);
    ex->mf = ex->ref = mf;
    ex->data = data;
    ex->labelled = labelled;
    ex->n_classes = mf->task == PST_TASK_CLASSIFICATION ? mf->n_classes : 1;
    if (pst_dataset_is_sparse(data))
        return pst_err_set(err, PST_EINVAL, "data must be dense");
    if (mf->encoder && data->table) {
        pst_dataset_t *enc;
        int rc = pst_encoder_apply(mf->encoder, data, &enc, err);
        if (rc != PST_OK)
            return rc;
        pst_dataset_swap(data, enc);
        pst_dataset_destroy(&enc);
    }
    if (data->n_features != (size_t)mf->n_inputs)
        return pst_err_set(err, PST_EINVAL, "the data has %zu features, the model takes %d",
                           data->n_features, mf->n_inputs);
    int rc =
        mf->encoder
            ? encoder_groups(ex, mf->encoder, err)
            : feature_groups(ex, mf->feature_names ? mf->feature_names : data->feature_names, err);
    if (rc == PST_OK)
        rc = map_inputs(ex, err);
    if (rc == PST_OK && !(ex->model = pst_modelfile_build(mf, PST_EXPLAIN_BATCH, err)))
        rc = pst_err_code(err, PST_EFORMAT);
    return rc;
}

int pst_explainer_init_ensemble(pst_explainer_t *ex, const pst_ensemble_t *ens, pst_dataset_t *data,
                                bool labelled, pst_err_t *err)
{
    memset(ex, 0, sizeof *ex);
    ex->ens = ens;
    ex->ref = &ens->members[0];
    ex->data = data;
    ex->labelled = labelled;
    ex->n_classes = pst_ensemble_width(ex->ref->task, ex->ref->n_classes);
    if (pst_dataset_is_sparse(data))
        return pst_err_set(err, PST_EINVAL, "data must be dense");
    if (!data->table && data->n_features != (size_t)ex->ref->n_inputs)
        return pst_err_set(err, PST_EINVAL, "the data has %zu features, the ensemble takes %d",
                           data->n_features, ex->ref->n_inputs);
    char **names = data->feature_names;
    char **table_names = NULL;
    if (data->table && (table_names = calloc(data->n_features, sizeof(char *))))
        for (size_t j = 0; j < data->n_features; j++)
            table_names[j] = data->table->cols[j].name;
    int rc = feature_groups(ex, table_names ? table_names : names, err);
    free(table_names);
    return rc;
}

void pst_explainer_fini(pst_explainer_t *ex)
{
    for (int g = 0; ex->group_names && g < ex->n_groups; g++)
        free(ex->group_names[g]);
    free(ex->group_names);
    free(ex->group_offset);
    free(ex->group_width);
    free(ex->input_group);
    pst_model_destroy(&ex->model);
    pst_dataset_destroy(&ex->data);
    memset(ex, 0, sizeof *ex);
}

/* A dataset of rows x with ex->data's metadata (its table too), for the model's own passes. */
static pst_dataset_t *batch_of(const pst_explainer_t *ex, const float *x, size_t n, pst_err_t *err)
{
    size_t *idx = calloc(n ? n : 1, sizeof *idx); /* all row 0: only the metadata matters */
    pst_dataset_t *ds = idx && ex->data->n_rows ? pst_dataset_take_rows(ex->data, idx, n) : NULL;
    free(idx);
    if (!ds) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(ds->x, x, n * ex->data->n_features * sizeof(float));
    return ds;
}

static pst_dataset_t *model_batch(const pst_explainer_t *ex, const float *x, size_t n,
                                  pst_err_t *err)
{
    pst_dataset_t *ds = batch_of(ex, x, n, err);
    if (ds && pst_modelfile_preprocess(ex->mf, ds, err) != PST_OK)
        pst_dataset_destroy(&ds);
    return ds;
}

int pst_explainer_predict(const pst_explainer_t *ex, const float *x, size_t n, float *out,
                          pst_err_t *err)
{
    if (ex->ens) {
        pst_dataset_t *ds = batch_of(ex, x, n, err);
        int rc = ds ? pst_ensemble_apply(ex->ens, ds, out, err) : pst_err_code(err, PST_ENOMEM);
        pst_dataset_destroy(&ds);
        return rc;
    }
    pst_dataset_t *ds = model_batch(ex, x, n, err);
    if (!ds)
        return pst_err_code(err, PST_ENOMEM);
    int n_out = pst_model_n_outputs(ex->model);
    float *raw = malloc((n ? n : 1) * (size_t)n_out * sizeof(float));
    int rc = raw ? pst_predict(ex->model, ds, PST_EXPLAIN_BATCH, raw, err)
                 : pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        pst_ensemble_outputs_to_probs(raw, n, n_out, ex->n_classes, out);
    free(raw);
    pst_dataset_destroy(&ds);
    return rc;
}

void pst_explainer_logit_weights(const pst_explainer_t *ex, int k, float *c)
{
    int n_out = pst_model_n_outputs(ex->model);
    memset(c, 0, (size_t)n_out * sizeof(float));
    if (n_out == 2 && ex->mf->task == PST_TASK_CLASSIFICATION) {
        c[0] = -1.0f; /* softmax logits are known up to a shift: their difference is not */
        c[1] = 1.0f;
    } else {
        c[n_out == 1 ? 0 : k] = 1.0f;
    }
}

static double dot_logits(const float *c, const float *z, int n)
{
    double s = 0;
    for (int o = 0; o < n; o++)
        s += (double)c[o] * z[o];
    return s;
}

/* A single model's explained output (weighted logits) for class cls[i] of each row. */
static int model_logits(const pst_explainer_t *ex, const float *x, size_t n, const int *cls,
                        double *out, pst_err_t *err)
{
    pst_dataset_t *ds = model_batch(ex, x, n, err);
    if (!ds)
        return pst_err_code(err, PST_ENOMEM);
    int n_out = pst_model_n_outputs(ex->model);
    float *c = malloc((size_t)n_out * sizeof(float));
    if (!c) {
        pst_dataset_destroy(&ds);
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    size_t width = ds->n_features;
    for (size_t at = 0; at < n; at += PST_EXPLAIN_BATCH) {
        int b = (int)(n - at < PST_EXPLAIN_BATCH ? n - at : PST_EXPLAIN_BATCH);
        pst_model_forward(ex->model, ds->x + at * width, b, false, NULL);
        const float *pre = pst_model_pre_output(ex->model);
        for (int r = 0; r < b; r++) {
            pst_explainer_logit_weights(ex, cls ? cls[at + (size_t)r] : 0, c);
            out[at + (size_t)r] = dot_logits(c, pre + (size_t)r * (size_t)n_out, n_out);
        }
    }
    free(c);
    pst_dataset_destroy(&ds);
    return PST_OK;
}

int pst_explainer_output(const pst_explainer_t *ex, const float *x, size_t n, const int *cls,
                         double *out, pst_err_t *err)
{
    if (ex->mf)
        return model_logits(ex, x, n, cls, out, err);
    float *probs = malloc((n ? n : 1) * (size_t)ex->n_classes * sizeof(float));
    int rc = probs ? pst_explainer_predict(ex, x, n, probs, err)
                   : pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; rc == PST_OK && i < n; i++)
        out[i] = probs[i * (size_t)ex->n_classes + (size_t)(cls ? cls[i] : 0)];
    free(probs);
    return rc;
}

int pst_explainer_to_model(const pst_explainer_t *ex, const float *x, size_t n, float **z,
                           pst_err_t *err)
{
    pst_dataset_t *ds = model_batch(ex, x, n, err);
    if (!ds)
        return pst_err_code(err, PST_ENOMEM);
    *z = ds->x;
    ds->x = NULL;
    pst_dataset_destroy(&ds);
    return PST_OK;
}

int pst_explainer_classes(const pst_explainer_t *ex, int *cls, pst_err_t *err)
{
    size_t n = ex->data->n_rows;
    int k = ex->n_classes;
    if (ex->ref->task != PST_TASK_CLASSIFICATION || k <= 2) {
        for (size_t i = 0; i < n; i++)
            cls[i] = ex->ref->task == PST_TASK_CLASSIFICATION ? 1 : 0;
        return PST_OK;
    }
    float *probs = malloc((n ? n : 1) * (size_t)k * sizeof(float));
    int rc = probs ? pst_explainer_predict(ex, ex->data->x, n, probs, err)
                   : pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; rc == PST_OK && i < n; i++)
        cls[i] = pst_predicted_class(probs + i * (size_t)k, k);
    free(probs);
    return rc;
}

const char *pst_explainer_output_name(const pst_explainer_t *ex)
{
    if (ex->ref->task == PST_TASK_REGRESSION)
        return "value";
    if (!ex->mf)
        return "probability";
    return ex->n_classes <= 2 ? "log-odds" : "logit";
}
