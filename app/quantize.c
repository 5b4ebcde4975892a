/* pstrain quantize: loads a float model and calibration rows, quantises, compares the int8 model
 * with the float one on those rows, and writes the int8 model file. */
#include "app/quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/pipeline.h"
#include "common/config.h"
#include "worker/model/ensemble.h"
#include "worker/model/sparsefile.h"
#include "worker/train/train.h"

#define CALIB_BATCH 256

int pst_quantize_load_float(const char *path, pst_modelfile_t *mf, pst_err_t *err)
{
    memset(mf, 0, sizeof *mf);
    bool ensemble = false, sparse = false;
    int rc = pst_ensemble_probe(path, &ensemble, err);
    if (rc == PST_OK)
        rc = pst_sparsefile_probe(path, &sparse, err);
    if (rc != PST_OK)
        return rc;
    if (ensemble || sparse)
        return pst_err_set(err, PST_EINVAL,
                           "%s: %s; quantize takes a single dense model (MLP, linear, CNN)", path,
                           ensemble ? "an ensemble file" : "a sparse model file");
    return pst_modelfile_load(mf, path, err);
}

static size_t take_rows(pst_dataset_t *ds, size_t max_rows)
{
    if (max_rows > 0 && ds->n_rows > max_rows)
        ds->n_rows = max_rows; /* the rows beyond stay allocated, unused */
    return ds->n_rows;
}

int pst_quantize_load_rows(const pst_modelfile_t *mf, const char *model_path, const char *data,
                           size_t max_rows, pst_dataset_t **out, pst_err_t *err)
{
    *out = NULL;
    pst_config_t cfg;
    pst_config_init(&cfg);
    int rc = PST_OK;
    if (mf->config_yaml)
        rc = pst_config_load_string(&cfg, mf->config_yaml, model_path, err);
    if (rc == PST_OK)
        rc = pst_pipeline_load_for(&cfg, data, cfg.data.test_labels, mf, false, out, err);
    pst_config_fini(&cfg);
    if (rc == PST_OK)
        rc = pst_dataset_densify(*out, (size_t)mf->n_inputs, err);
    if (rc == PST_OK)
        take_rows(*out, max_rows);
    if (rc == PST_OK)
        rc = pst_modelfile_preprocess(mf, *out, err);
    if (rc == PST_OK && (*out)->n_rows == 0)
        rc = pst_err_set(err, PST_EINVAL, "no rows");
    if (rc != PST_OK) {
        pst_dataset_destroy(out);
        return pst_err_prefix(err, rc, "%s: ", data);
    }
    return PST_OK;
}

int pst_quantize_modelfile(pst_modelfile_t *mf, const pst_dataset_t *ds, double percentile,
                           pst_err_t *err)
{
    pst_model_t *model = pst_modelfile_build(mf, CALIB_BATCH, err);
    if (!model)
        return pst_err_code(err, PST_EFORMAT);
    pst_quant_t *q = pst_quant_new(model, ds->x, ds->n_rows, percentile, err);
    pst_model_destroy(&model);
    if (!q)
        return pst_err_code(err, PST_EINVAL);
    pst_quant_destroy(&mf->quant);
    mf->quant = q;
    return PST_OK;
}

/* The outputs of mf (float, or int8 when quantised) for every row of ds: (n_rows, *n_out). */
static int outputs(const pst_modelfile_t *mf, const pst_dataset_t *ds, float **out, int *n_out,
                   pst_err_t *err)
{
    pst_model_t *model = pst_modelfile_build(mf, CALIB_BATCH, err);
    if (!model)
        return pst_err_code(err, PST_EFORMAT);
    *n_out = pst_model_n_outputs(model);
    *out = malloc(ds->n_rows * (size_t)*n_out * sizeof(float));
    int rc = *out ? pst_predict(model, ds, CALIB_BATCH, *out, err)
                  : pst_err_set(err, PST_ENOMEM, "out of memory");
    pst_model_destroy(&model);
    return rc;
}

/* Float against int8 outputs on the calibration rows. */
static int compare(pst_modelfile_t *mf, const pst_dataset_t *ds, pst_quantize_result_t *res,
                   pst_err_t *err)
{
    pst_quant_t *q = mf->quant;
    float *f = NULL, *i8 = NULL;
    int n_out = 0;
    mf->quant = NULL; /* the float model's outputs first: params still hold the original floats */
    int rc = outputs(mf, ds, &f, &n_out, err);
    mf->quant = q;
    if (rc == PST_OK)
        rc = outputs(mf, ds, &i8, &n_out, err);
    size_t agree = 0;
    for (size_t r = 0; rc == PST_OK && r < ds->n_rows; r++) {
        const float *a = f + r * (size_t)n_out, *b = i8 + r * (size_t)n_out;
        for (int k = 0; k < n_out; k++)
            res->max_abs_diff = fmax(res->max_abs_diff, fabs((double)a[k] - b[k]));
        agree += pst_predicted_class(a, n_out) == pst_predicted_class(b, n_out);
    }
    res->agreement = ds->n_rows ? (double)agree / (double)ds->n_rows : 0.0;
    free(f);
    free(i8);
    return rc;
}

/* Packed size of mf as a file holds it. */
static int packed_size(const pst_modelfile_t *mf, size_t *bytes, pst_err_t *err)
{
    uint8_t *buf;
    int rc = pst_modelfile_pack(mf, &buf, bytes, err);
    free(buf);
    return rc;
}

int pst_quantize_run(const pst_quantize_opts_t *o, pst_quantize_result_t *res, pst_err_t *err)
{
    memset(res, 0, sizeof *res);
    if (!o->calibration)
        return pst_err_set(err, PST_EINVAL,
                           "quantize: --calibration DATA is required: activation scales are "
                           "measured on sample rows (a few thousand training or validation rows)");
    pst_modelfile_t mf;
    int rc = pst_quantize_load_float(o->model, &mf, err);
    if (rc == PST_OK && mf.quant)
        rc = pst_err_set(err, PST_EINVAL, "%s: already quantised (int8)", o->model);
    pst_dataset_t *ds = NULL;
    size_t rows = o->calibration_rows ? o->calibration_rows : PST_QUANTIZE_DEFAULT_ROWS;
    if (rc == PST_OK)
        rc = pst_quantize_load_rows(&mf, o->model, o->calibration, rows, &ds, err);
    if (rc == PST_OK)
        rc = packed_size(&mf, &res->float_bytes, err);
    if (rc == PST_OK)
        rc = pst_quantize_modelfile(&mf, ds, o->percentile > 0 ? o->percentile : 100.0, err);
    if (rc == PST_OK)
        rc = compare(&mf, ds, res, err);
    if (rc == PST_OK)
        rc = packed_size(&mf, &res->int8_bytes, err);
    if (rc == PST_OK)
        rc = pst_modelfile_save(&mf, o->out, err);
    if (rc == PST_OK) {
        res->n_layers = mf.quant->n_layers;
        res->rows = ds->n_rows;
        res->classify = mf.task == PST_TASK_CLASSIFICATION;
    }
    pst_dataset_destroy(&ds);
    pst_modelfile_fini(&mf);
    return rc;
}
