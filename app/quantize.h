/* pstrain quantize: a float model file to an int8 one, its activation scales calibrated on
 * sample rows, with a comparison of the two models on those rows. */
#ifndef PST_APP_QUANTIZE_H
#define PST_APP_QUANTIZE_H

#include <stddef.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "worker/model/modelfile.h"

#define PST_QUANTIZE_DEFAULT_ROWS 2048

typedef struct pst_quantize_opts {
    const char *model;       /* a float dense model file */
    const char *out;         /* the int8 model file, written atomically */
    const char *calibration; /* rows read as the model's training data was; required */
    size_t calibration_rows; /* the first N rows of calibration (0: PST_QUANTIZE_DEFAULT_ROWS) */
    double percentile;       /* calibration rule: 100 = max |x|, else that percentile of |x| */
} pst_quantize_opts_t;

/* What quantising did, for the report. */
typedef struct pst_quantize_result {
    int n_layers;       /* dense layers quantised */
    size_t rows;        /* calibration rows used */
    size_t float_bytes; /* the model file as float, and as int8 */
    size_t int8_bytes;
    double max_abs_diff; /* largest |float - int8| output on the calibration rows */
    double agreement;    /* classification: share of rows with the same predicted class */
    bool classify;
} pst_quantize_result_t;

int pst_quantize_run(const pst_quantize_opts_t *o, pst_quantize_result_t *res, pst_err_t *err);

/* Loads mf from path, refusing ensembles, sparse and already quantised files with a message. */
int pst_quantize_load_float(const char *path, pst_modelfile_t *mf, pst_err_t *err);

/* Up to max_rows rows of data read as mf's training data was, preprocessed for its layers.
 * Caller owns *out. */
int pst_quantize_load_rows(const pst_modelfile_t *mf, const char *model_path, const char *data,
                           size_t max_rows, pst_dataset_t **out, pst_err_t *err);

/* The in-memory int8 version of mf (mf->quant set) calibrated on the rows of ds. */
int pst_quantize_modelfile(pst_modelfile_t *mf, const pst_dataset_t *ds, double percentile,
                           pst_err_t *err);

#endif
