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

/* A column's graph input is a string (a category) or a float (a number or a boolean). */
static bool string_input(const pst_enc_input_t *in)
{
    return in->kind == PST_ENC_ONEHOT || in->kind == PST_ENC_ORDINAL || in->kind == PST_ENC_HASH;
}

bool pst_onnx_columns_compatible(const pst_encoder_t *a, const pst_encoder_t *b)
{
    bool typed = pst_onnx_columns_typed(a);
    if (!typed && !pst_onnx_columns_typed(b))
        return true; /* one float input */
    if (!typed || !b || a->n_inputs != b->n_inputs)
        return false;
    for (size_t j = 0; j < a->n_inputs; j++)
        if (strcmp(a->inputs[j].name, b->inputs[j].name) != 0 ||
            string_input(&a->inputs[j]) != string_input(&b->inputs[j]))
            return false;
    return true;
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

int pst_onnx_declare_columns(pst_onnx_graph_t *g, const pst_encoder_t *e, pst_err_t *err)
{
    const int64_t dims[2] = {PST_ONNX_BATCH, 1};
    for (size_t j = 0; j < e->n_inputs; j++) {
        const pst_enc_input_t *in = &e->inputs[j];
        const char *why = refusal(in);
        if (why)
            return pst_err_set(err, PST_EINVAL, "column '%s' cannot be exported to ONNX: %s",
                               in->name, why);
        bool text = string_input(in);
        const char *doc = text ? "a category's text as read, \"\" when missing"
                          : in->type == PST_COL_BOOLEAN ? "a boolean: 1 or 0, NaN when missing"
                                                        : "a number, NaN when missing";
        if (pst_onnx_graph_input(g, in->name, text ? PST_ONNX_STRING : PST_ONNX_FLOAT, 2, dims,
                                 doc) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "ONNX column '%s': out of memory", in->name);
    }
    return PST_OK;
}

/* Column in's block of features from its graph input. */
static int encode_column(pst_onnx_graph_t *g, const pst_enc_input_t *in, const char **block,
                         pst_err_t *err)
{
    /* vocab is sorted and its index is the slot (one-hot) or the code - 1 (ordinal), as
     * pst_encoder_vocab_index; "" is the missing value when training rows had it. */
    const char *const *vocab = (const char *const *)in->vocab;
    if (in->kind == PST_ENC_ONEHOT) {
        pst_onnx_onehot_t spec = {in->n_vocab, vocab, true};
        return pst_onnx_prep_onehot(g, in->name, &spec, block, err);
    }
    if (in->kind == PST_ENC_ORDINAL)
        return pst_onnx_prep_ordinal(g, in->name, in->n_vocab, vocab, block, err);
    *block = in->name;
    if (isinf(in->clip_lo) && isinf(in->clip_hi))
        return PST_OK;
    return pst_onnx_prep_clip(g, in->name, 1, &in->clip_lo, &in->clip_hi, block, err);
}

int pst_onnx_encode_columns(pst_onnx_graph_t *g, const pst_encoder_t *e, const char **out,
                            pst_err_t *err)
{
    for (size_t j = 0; j < e->n_inputs; j++) {
        const char *why = refusal(&e->inputs[j]);
        if (why)
            return pst_err_set(err, PST_EINVAL, "column '%s' cannot be exported to ONNX: %s",
                               e->inputs[j].name, why);
    }
    const char **blocks = calloc(e->n_inputs ? e->n_inputs : 1, sizeof *blocks);
    if (!blocks)
        return pst_err_set(err, PST_ENOMEM, "ONNX columns: out of memory");
    int rc = PST_OK;
    for (size_t j = 0; j < e->n_inputs && rc == PST_OK; j++)
        if ((rc = encode_column(g, &e->inputs[j], &blocks[j], err)) != PST_OK)
            pst_err_prefix(err, rc, "column '%s': ", e->inputs[j].name);
    if (rc == PST_OK)
        rc = pst_onnx_prep_concat(g, (int)e->n_inputs, blocks, out, err);
    free(blocks);
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
