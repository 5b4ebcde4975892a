/* libpstrain's predictions: a batch of named columns through the model (or ensemble) exactly as
 * pstrain predict takes a file's rows. Each call builds its own working model from the read-only
 * handle, so concurrent calls share no mutable state. */
#include <stdint.h>
#include <stdlib.h>

#include "common/data/dataset.h"
#include "lib/lib_internal.h"
#include "worker/train/train.h"

/* pstrain predict's chunk: the same row blocks through the same sgemm calls, so the same bits. */
#define PREDICT_CHUNK 256

/* The model's raw output rows (n, n_out) for the raw rows of ds; ds is preprocessed in place. */
static int forward(const pstrain_model *m, pst_dataset_t *ds, float **out, int *n_out,
                   pst_err_t *err)
{
    size_t n = ds->n_rows;
    if (m->ensemble) {
        *n_out = pst_ensemble_width(m->ref->task, m->ref->n_classes);
        if (!(*out = malloc(n * (size_t)*n_out * sizeof(float))))
            return pst_err_set(err, PSTRAIN_ENOMEM, "out of memory");
        return pst_ensemble_apply(&m->ens, ds, *out, err);
    }
    int rc = pst_modelfile_preprocess(&m->mf, ds, err);
    if (rc != PST_OK)
        return rc;
    pst_model_t *model = pst_modelfile_build(&m->mf, PREDICT_CHUNK, err);
    if (!model)
        return pst_err_code(err, PSTRAIN_EFORMAT);
    *n_out = pst_model_n_outputs(model);
    if (!(*out = malloc(n * (size_t)*n_out * sizeof(float))))
        rc = pst_err_set(err, PSTRAIN_ENOMEM, "out of memory");
    else
        rc = pst_predict(model, ds, PREDICT_CHUNK, *out, err);
    pst_model_destroy(&model);
    return rc;
}

/* Raw outputs to the public rows: a single sigmoid output p becomes (1 - p, p), worked in float
 * as pstrain predict prints it. */
static void publish(const pstrain_model *m, const float *raw, int n_out, size_t n_rows, double *out,
                    int *classes)
{
    bool classify = m->ref->task == PST_TASK_CLASSIFICATION;
    int width = m->n_outputs;
    for (size_t i = 0; i < n_rows; i++) {
        const float *row = raw + i * (size_t)n_out;
        double *dst = out + i * (size_t)width;
        if (!classify) {
            dst[0] = row[0];
            continue;
        }
        for (int k = 0; k < width; k++)
            dst[k] = n_out == 1 ? (k ? row[0] : 1.0f - row[0]) : row[k];
        if (classes)
            classes[i] = pst_predicted_class(row, n_out);
    }
}

int pstrain_predict(const pstrain_model *m, const pstrain_column *columns, int n_columns,
                    size_t n_rows, double *out, int *classes, pstrain_error *err)
{
    pst_err_t e = {0};
    if (!m || (n_columns > 0 && !columns) || n_columns < 0 || (n_rows > 0 && !out))
        return pst_lib_report(NULL, PSTRAIN_EINVAL, err);
    if (n_rows > SIZE_MAX / sizeof(float) / (size_t)(m->width + m->n_outputs + 1))
        return pst_lib_report(NULL, PSTRAIN_ERANGE, err);
    /* One row at least: an empty batch still has its columns checked. */
    pst_dataset_t *ds = pst_dataset_new(n_rows ? n_rows : 1, (size_t)m->width, m->ref->task);
    if (!ds)
        return pst_lib_report(NULL, PSTRAIN_ENOMEM, err);
    float *raw = NULL;
    int n_out = 0;
    int rc = pst_lib_encode_rows(m, columns, n_columns, n_rows, ds->x, &e);
    ds->n_rows = n_rows;
    if (rc == PST_OK && n_rows > 0 && (rc = forward(m, ds, &raw, &n_out, &e)) == PST_OK)
        publish(m, raw, n_out, n_rows, out, classes);
    free(raw);
    pst_dataset_destroy(&ds);
    if (rc != PST_OK)
        return pst_lib_report(&e, rc, err);
    if (err)
        err->code = PSTRAIN_OK, err->message[0] = '\0';
    return PSTRAIN_OK;
}
