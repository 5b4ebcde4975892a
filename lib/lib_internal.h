/* What libpstrain's files share: the loaded model behind the public handle, and the one step
 * that turns the caller's raw cells into the model's input features. */
#ifndef PST_LIB_INTERNAL_H
#define PST_LIB_INTERNAL_H

#include <stdbool.h>

#include "common/err.h"
#include "include/pstrain.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"

/* The public pstrain_model: read-only once loaded, so predictions may share it. */
struct pstrain_model {
    bool ensemble; /* ens holds the models, else mf */
    pst_modelfile_t mf;
    pst_ensemble_t ens;
    const pst_modelfile_t *ref; /* task, classes and input names: mf or ens member 1 */
    /* A CSV model's encoder (mf.encoder): raw columns are its inputs and become the model's
     * features through pst_encoder_encode, as in pstrain predict. NULL: raw columns are the
     * features themselves. */
    const pst_encoder_t *encoder;
    int width;                 /* features per row the model's preprocessing takes */
    int n_raw;                 /* raw input columns: the encoder's inputs, else width */
    char **raw_names;          // (n_raw) the file's names, or x0, x1, ... when it has none
    pstrain_input_type *types; // (n_raw)
    bool *imputable;           // (n_raw) every model reading the column fills missing values
    int n_inputs;              /* raw columns some model reads: what a caller must give */
    int *inputs;               // (n_inputs) their raw indices, ascending
    char **class_names;        // (n_classes) or NULL for regression
    int n_outputs;             /* per predicted row: n_classes or 1 */
};

/* Fills x (n_rows, model->width), row-major, from the caller's named columns: raw columns no
 * model reads are 0, missing cells NaN (imputed later by the model's preprocessing); a model
 * with an encoder gets its encoded features. Errors name the column and row (counted from 0).
 * This is the single raw-cells-to-features step. */
int pst_lib_encode_rows(const pstrain_model *model, const pstrain_column *columns, int n_columns,
                        size_t n_rows, float *x, pst_err_t *err);

/* Copies an internal error into the caller's (which may be NULL) and returns its code. */
int pst_lib_report(const pst_err_t *in, int code, pstrain_error *out);

#endif
