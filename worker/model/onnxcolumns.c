/* Encoder columns as ONNX inputs: the mapping onto common/onnx/onnxprep's column table. */
#include "worker/model/onnxcolumns.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/onnx/onnxprep.h"
#include "worker/model/onnxmodel.h"

bool pst_onnx_columns_typed(const pst_encoder_t *e)
{
    for (size_t j = 0; e && j < e->n_inputs; j++)
        if (e->inputs[j].kind != PST_ENC_VALUE)
            return true;
    return false;
}

/* Why a column has no ONNX form, or NULL when it has one. */
static const char *refusal(const pst_enc_input_t *in)
{
    if (in->kind == PST_ENC_HASH)
        return "it is a hashed category (more values than data.max_categories with "
               "data.high_cardinality: hash) and no ONNX operator computes the string hash; "
               "retrain with data.high_cardinality: top or ordinal, or drop the column";
    if (in->kind == PST_ENC_DATE)
        return "it is a date column expanded into year, month, day of week and day of year, "
               "which ONNX operators cannot parse from text; retrain with data.dates: drop or "
               "drop the column (data.drop_columns)";
    if (strcmp(in->name, PST_ONNX_LABEL_NAME) == 0 ||
        strcmp(in->name, PST_ONNX_PROBABILITIES_NAME) == 0 ||
        strcmp(in->name, PST_ONNX_VALUE_NAME) == 0)
        return "its name is the name of an output of the exported graph; rename the column";
    return NULL;
}

int pst_onnx_emit_columns(pst_onnx_graph_t *g, const pst_encoder_t *e, const char **out,
                          pst_err_t *err)
{
    for (size_t j = 0; j < e->n_inputs; j++) {
        const char *why = refusal(&e->inputs[j]);
        if (why)
            return pst_err_set(err, PST_EINVAL, "column '%s' cannot be exported to ONNX: %s",
                               e->inputs[j].name, why);
    }
    pst_onnx_column_t *cols = calloc(e->n_inputs ? e->n_inputs : 1, sizeof *cols);
    if (!cols)
        return pst_err_set(err, PST_ENOMEM, "ONNX columns: out of memory");
    for (size_t j = 0; j < e->n_inputs; j++) {
        const pst_enc_input_t *in = &e->inputs[j];
        pst_onnx_column_t *c = &cols[j];
        c->name = in->name;
        c->clip_lo = in->clip_lo;
        c->clip_hi = in->clip_hi;
        /* vocab is sorted and its index is the slot (one-hot) or the code - 1 (ordinal), as
         * pst_encoder_vocab_index; "" is the missing value when training rows had it. */
        c->n_categories = in->n_vocab;
        c->categories = (const char *const *)in->vocab;
        c->kind = in->kind == PST_ENC_ONEHOT    ? PST_ONNX_COLUMN_ONEHOT
                  : in->kind == PST_ENC_ORDINAL ? PST_ONNX_COLUMN_ORDINAL
                                                : PST_ONNX_COLUMN_NUMBER;
    }
    int rc = pst_onnx_prep_columns(g, cols, e->n_inputs, out, err);
    free(cols);
    return rc;
}

int pst_onnx_emit_clips(pst_onnx_graph_t *g, const pst_encoder_t *e, const char *input,
                        const char **out, pst_err_t *err)
{
    *out = input;
    bool clipped = false;
    for (size_t j = 0; e && j < e->n_inputs; j++)
        clipped |= !isinf(e->inputs[j].clip_lo) || !isinf(e->inputs[j].clip_hi);
    if (!clipped)
        return PST_OK;
    float *lo = malloc(2 * e->n_inputs * sizeof *lo);
    if (!lo)
        return pst_err_set(err, PST_ENOMEM, "ONNX outlier bounds: out of memory");
    float *hi = lo + e->n_inputs;
    for (size_t j = 0; j < e->n_inputs; j++) {
        lo[j] = e->inputs[j].clip_lo;
        hi[j] = e->inputs[j].clip_hi;
    }
    int rc = pst_onnx_prep_clip(g, input, e->n_inputs, lo, hi, out, err);
    free(lo);
    return rc;
}
