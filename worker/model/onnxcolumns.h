/* A model's fitted column encoder (common/data/encoder.h) as ONNX graph inputs: which form the
 * exported file takes, and the operators that turn its inputs into the raw feature matrix that
 * the model's imputation and scaling then take. */
#ifndef PST_WORKER_MODEL_ONNXCOLUMNS_H
#define PST_WORKER_MODEL_ONNXCOLUMNS_H

#include <stdbool.h>

#include "common/data/encoder.h"
#include "common/err.h"
#include "common/onnx/onnxgraph.h"

/* True when e has a column that is not a number or a boolean: such a model takes one graph
 * input per column (pst_onnx_emit_columns); otherwise one float matrix of every column. */
bool pst_onnx_columns_typed(const pst_encoder_t *e);

/* True when a and b (either may be NULL) take the same graph inputs: both numbers only (one
 * float input), or the same columns in the same order with the same input types. Models that
 * encode them differently (other categories, codes, bounds) can still share them. */
bool pst_onnx_columns_compatible(const pst_encoder_t *a, const pst_encoder_t *b);

/* One graph input per column of e, named after it: numeric and boolean columns float (N, 1)
 * (a boolean as 1 or 0; NaN when missing), one-hot and ordinal categories string (N, 1) (the
 * text as read, "" when missing). A hashed category or a date column is refused naming the
 * column (PST_EINVAL), as is a column named like an output of the graph. */
int pst_onnx_declare_columns(pst_onnx_graph_t *g, const pst_encoder_t *e, pst_err_t *err);

/* The (N, e->n_features) feature matrix of those inputs, in *out: numbers clamped to the fitted
 * outlier bounds, categories one-hot (a value not seen in training in the "other" slot) or as
 * ordinal codes (0 for such a value), concatenated in the encoder's feature order. */
int pst_onnx_encode_columns(pst_onnx_graph_t *g, const pst_encoder_t *e, const char **out,
                            pst_err_t *err);

/* The fitted outlier bounds of an encoder of numbers only over input (N, e->n_inputs): *out is
 * input itself when no column is clipped (or e is NULL). */
int pst_onnx_emit_clips(pst_onnx_graph_t *g, const pst_encoder_t *e, const char *input,
                        const char **out, pst_err_t *err);

#endif
