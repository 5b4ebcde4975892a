/* Counting data in a drift profile's bins: raw CSV cells by name, or loaded features. */
#include "app/drift/driftscan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/drift/driftfit.h"
#include "app/pipeline.h"
#include "app/score_csv.h"
#include "common/data/cells.h"
#include "common/data/csvtok.h"
#include "common/data/dataload.h"
#include "common/data/rowreader.h"
#include "common/drift/profile.h"
#include "worker/train/train.h"

enum { CHUNK_ROWS = 4096, MODEL_BATCH = 256 };

void pst_drift_counts_fini(pst_drift_counts_t *c)
{
    for (size_t j = 0; c->features && j < c->n_features; j++)
        free(c->features[j]);
    free(c->features);
    free(c->feature_missing);
    free(c->prediction);
    free(c->label);
    memset(c, 0, sizeof *c);
}

static int counts_init(pst_drift_counts_t *c, const pst_drift_profile_t *p, pst_err_t *err)
{
    memset(c, 0, sizeof *c);
    size_t n = p->n_features;
    c->features = calloc(n ? n : 1, sizeof *c->features);
    c->feature_missing = calloc(n ? n : 1, sizeof *c->feature_missing);
    c->prediction = calloc(p->has_prediction ? p->prediction.n_bins : 1, sizeof(uint64_t));
    c->label = calloc(p->has_label ? p->label.n_bins : 1, sizeof(uint64_t));
    bool ok = c->features && c->feature_missing && c->prediction && c->label;
    for (size_t j = 0; ok && j < n; j++, c->n_features++)
        ok = (c->features[j] = calloc(p->features[j].n_bins, sizeof(uint64_t))) != NULL;
    if (!ok) {
        pst_drift_counts_fini(c);
        return pst_err_set(err, PST_ENOMEM, "drift: out of memory");
    }
    return PST_OK;
}

static pst_drift_outputs_t outputs_of(const pst_modelfile_t *mf)
{
    return (pst_drift_outputs_t){mf->task, mf->n_classes, (const char *const *)mf->class_names,
                                 mf->class_values};
}

/* Labels of n rows (class indexes or targets) into the label counts. */
static void count_labels(pst_drift_counts_t *c, const pst_modelfile_t *mf, const float *y, size_t n)
{
    const pst_drift_dist_t *d = &mf->drift->label;
    for (size_t i = 0; mf->drift->has_label && i < n; i++) {
        if (d->kind == PST_DRIFT_NUMERIC) {
            if (isfinite(y[i]))
                c->label[pst_drift_dist_bin(d, y[i])]++;
            continue;
        }
        char buf[64];
        pst_drift_class_text((const char *const *)mf->class_names, mf->class_values, (int)y[i], buf,
                             sizeof buf);
        c->label[pst_drift_dist_category(d, buf)]++;
    }
}

/* Outputs of a preprocessed chunk into the prediction counts. */
static int count_predictions(pst_drift_counts_t *c, const pst_modelfile_t *mf, pst_model_t *model,
                             const pst_dataset_t *chunk, float *out, pst_err_t *err)
{
    int rc = pst_predict(model, chunk, MODEL_BATCH, out, err);
    pst_drift_outputs_t o = outputs_of(mf);
    if (rc == PST_OK && mf->drift->has_prediction)
        pst_driftfit_count_outputs(&mf->drift->prediction, &o, out, pst_model_n_outputs(model),
                                   chunk->n_rows, c->prediction);
    return rc;
}

/* ---- CSV by column name: raw cells ---- */

/* The number a raw cell of an input of type type stands for, as training read it; false when
 * the text is not of that type. */
static bool cell_value(pst_col_type_t type, const char *s, size_t len, double *v)
{
    bool finite = true;
    long days;
    switch (type) {
    case PST_COL_BOOLEAN:
        return pst_cell_boolean(s, len, v);
    case PST_COL_DATE:
        if (!pst_cell_date(s, len, &days))
            return false;
        *v = (double)days;
        return true;
    default:
        return pst_cell_number(s, len, v, &finite) && finite;
    }
}

static int count_cell(pst_drift_counts_t *c, size_t j, const pst_drift_dist_t *d,
                      const pst_enc_input_t *in, const pst_csv_record_t *rec, size_t col,
                      const char *path, pst_err_t *err)
{
    const char *s = rec->fields[col];
    size_t len = rec->lens[col];
    bool missing = pst_cell_is_missing(s, len);
    if (d->kind == PST_DRIFT_CATEGORICAL) {
        c->features[j][pst_drift_dist_category(d, missing ? "" : s)]++;
        return PST_OK;
    }
    double v;
    if (missing) {
        c->feature_missing[j]++;
    } else if (cell_value(in->type, s, len, &v)) {
        c->features[j][pst_drift_dist_bin(d, (float)v)]++;
    } else {
        return pst_err_set(err, PST_EFORMAT, "%s:%zu: column '%s': '%.64s' is not a %s", path,
                           rec->line, in->name, s, pst_col_type_name(in->type));
    }
    return PST_OK;
}

/* File column of each profiled input, named in one error when some are missing. */
static int match_columns(const pst_encoder_t *e, size_t n, const pst_csv_record_t *h, size_t *col,
                         const char *path, pst_err_t *err)
{
    for (size_t j = 0; j < n; j++) {
        size_t k = 0;
        while (k < h->n_fields && strcmp(h->fields[k], e->inputs[j].name) != 0)
            k++;
        if (k == h->n_fields)
            return pst_err_set(err, PST_ENOTFOUND, "%s:%zu: column '%s' of the model is missing",
                               path, h->line, e->inputs[j].name);
        col[j] = k;
    }
    return PST_OK;
}

static int scan_raw_csv(const pst_modelfile_t *mf, const pst_encoder_t *e, const char *path,
                        pst_drift_counts_t *c, pst_err_t *err)
{
    const pst_drift_profile_t *p = mf->drift;
    size_t *col = calloc(p->n_features ? p->n_features : 1, sizeof *col);
    pst_csvtok_t *tok = col ? pst_csvtok_open(path, err) : NULL;
    if (!col || !tok) {
        free(col);
        return col ? pst_err_code(err, PST_EIO) : pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    const pst_csv_record_t *rec;
    int got = pst_csvtok_next(tok, &rec, err);
    int rc = got < 0    ? got
             : got == 0 ? pst_err_set(err, PST_EFORMAT, "%s: empty file (no header row)", path)
                        : match_columns(e, p->n_features, rec, col, path, err);
    size_t n_cols = got > 0 ? rec->n_fields : 0;
    while (rc == PST_OK && (got = pst_csvtok_next(tok, &rec, err)) > 0) {
        if (rec->n_fields != n_cols)
            rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: ragged row: %zu fields, the header has %zu",
                             path, rec->line, rec->n_fields, n_cols);
        for (size_t j = 0; j < p->n_features && rc == PST_OK; j++)
            rc = count_cell(c, j, &p->features[j], &e->inputs[j], rec, col[j], path, err);
        c->n_rows++;
    }
    if (rc == PST_OK && got < 0)
        rc = got;
    pst_csvtok_destroy(&tok);
    free(col);
    return rc;
}

/* The encoded rows of the same file: predictions, and labels when it has the target column. */
static int scan_encoded_csv(const pst_modelfile_t *mf, const pst_encoder_t *e, const char *path,
                            const char *target, pst_drift_counts_t *c, pst_err_t *err)
{
    pst_rowreader_opts_t ro = {.encoder = e,
                               .target = target,
                               .task = mf->task,
                               .n_classes = mf->n_classes,
                               .class_values = mf->class_values,
                               .class_names = (const char *const *)mf->class_names};
    pst_rowreader_t *r = pst_rowreader_open(path, &ro, err);
    pst_model_t *model = r ? pst_modelfile_build(mf, MODEL_BATCH, err) : NULL;
    pst_dataset_t *chunk = pst_dataset_new(CHUNK_ROWS, e->n_features, mf->task);
    float *out = model
                     ? malloc((size_t)CHUNK_ROWS * (size_t)pst_model_n_outputs(model) * sizeof *out)
                     : NULL;
    int rc = !r || !model     ? pst_err_code(err, PST_EFORMAT)
             : !chunk || !out ? pst_err_set(err, PST_ENOMEM, "out of memory")
                              : PST_OK;
    c->has_labels = r && pst_rowreader_has_target(r);
    while (rc == PST_OK) {
        size_t n = 0;
        chunk->n_features = e->n_features;
        if ((rc = pst_rowreader_next(r, CHUNK_ROWS, chunk->x, chunk->y, NULL, &n, err)) || !n)
            break;
        chunk->n_rows = n;
        if ((rc = pst_modelfile_preprocess(mf, chunk, err)) == PST_OK &&
            (rc = count_predictions(c, mf, model, chunk, out, err)) == PST_OK && c->has_labels)
            count_labels(c, mf, chunk->y, n);
    }
    free(out);
    pst_dataset_destroy(&chunk);
    pst_model_destroy(&model);
    pst_rowreader_destroy(&r);
    return rc;
}

/* ---- other formats: the loaded dataset before preprocessing ---- */

static int scan_dataset(const pst_modelfile_t *mf, const pst_config_t *cfg, const char *path,
                        pst_drift_counts_t *c, pst_err_t *err)
{
    pst_dataset_t *ds = NULL;
    int rc = pst_pipeline_load_for(cfg, path, cfg->data.test_labels, mf, false, &ds, err);
    if (rc == PST_OK && (rc = pst_dataset_densify(ds, (size_t)mf->n_inputs, err)) != PST_OK)
        pst_err_prefix(err, rc, "%s: ", path);
    const pst_drift_profile_t *p = mf->drift;
    if (rc == PST_OK && ds->n_features < p->n_features)
        rc = pst_err_set(err, PST_EFORMAT, "%s: %zu features, the model takes %d", path,
                         ds->n_features, mf->n_inputs);
    for (size_t i = 0; rc == PST_OK && i < ds->n_rows; i++)
        for (size_t j = 0; j < p->n_features; j++) {
            float v = ds->x[i * ds->n_features + j];
            if (isfinite(v))
                c->features[j][pst_drift_dist_bin(&p->features[j], v)]++;
            else
                c->feature_missing[j]++;
        }
    pst_model_t *model = NULL;
    float *out = NULL;
    if (rc == PST_OK) {
        c->n_rows = ds->n_rows;
        c->has_labels = ds->y != NULL;
        if (c->has_labels)
            count_labels(c, mf, ds->y, ds->n_rows);
        rc = pst_modelfile_preprocess(mf, ds, err);
    }
    if (rc == PST_OK && !(model = pst_modelfile_build(mf, MODEL_BATCH, err)))
        rc = pst_err_code(err, PST_EFORMAT);
    if (rc == PST_OK && !(out = malloc((ds->n_rows ? ds->n_rows : 1) *
                                       (size_t)pst_model_n_outputs(model) * sizeof *out)))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = count_predictions(c, mf, model, ds, out, err);
    free(out);
    pst_model_destroy(&model);
    pst_dataset_destroy(&ds);
    return rc;
}

static bool csv_file(const pst_config_t *cfg, const char *path)
{
    pst_data_spec_t spec = {.path = path,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL};
    const char *format;
    return pst_data_infer_format(&spec, &format, NULL) == PST_OK && strcmp(format, "csv") == 0;
}

int pst_drift_scan(const pst_modelfile_t *mf, const pst_config_t *cfg, const char *data,
                   pst_drift_counts_t *out, pst_err_t *err)
{
    int rc = counts_init(out, mf->drift, err);
    if (rc != PST_OK)
        return rc;
    pst_encoder_t *owned = NULL;
    const pst_encoder_t *e = csv_file(cfg, data) ? pst_score_inputs(mf, &owned) : NULL;
    if (e && e->n_inputs != mf->drift->n_inputs)
        rc = pst_err_set(err, PST_EFORMAT, "%s: the drift profile has %zu inputs, the model %zu",
                         data, mf->drift->n_inputs, e->n_inputs);
    else if (e && (rc = scan_raw_csv(mf, e, data, out, err)) == PST_OK)
        rc = scan_encoded_csv(mf, e, data, cfg->data.target, out, err);
    else if (!e)
        rc = scan_dataset(mf, cfg, data, out, err);
    pst_encoder_destroy(&owned);
    if (rc != PST_OK)
        pst_drift_counts_fini(out);
    return rc;
}
