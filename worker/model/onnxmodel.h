/* A dense model file as one ONNX graph: raw rows in, the model's fitted preprocessing, its layer
 * stack, and predictions out, as `pstrain predict` computes them. */
#ifndef PST_WORKER_MODEL_ONNXMODEL_H
#define PST_WORKER_MODEL_ONNXMODEL_H

#include "common/err.h"
#include "common/onnx/onnxgraph.h"
#include "worker/model/modelfile.h"

/* The graph's interface:
 *   input          float (N, n_inputs): the feature columns of a data row in the training file's
 *                  order (the target left out), raw as read; NaN marks a missing value. A model
 *                  whose encoder has a categorical column takes instead one input per column,
 *                  named after it (worker/model/onnxcolumns.h).
 *   label          classification: the predicted class, int64 (N) when every class value is an
 *                  integer, else double (N): the data's own label values; string (N) for text
 *                  class names.
 *   probabilities  classification: float (N, n_classes), one column per class in label order.
 *   value          regression: float (N, 1), the predicted value. */
#define PST_ONNX_INPUT_NAME "input"
#define PST_ONNX_LABEL_NAME "label"
#define PST_ONNX_PROBABILITIES_NAME "probabilities"
#define PST_ONNX_VALUE_NAME "value"

/* Emits mf (preprocessing, layers, outputs) into g, an empty graph. Dropout is the identity at
 * inference and emits nothing. */
int pst_onnx_emit_model(pst_onnx_graph_t *g, const pst_modelfile_t *mf, pst_err_t *err);

/* The pieces, for graphs of several models (worker/model/onnxensemble): */
/* The graph input: mf's raw columns as one float input documented by name (*input names it),
 * or for a typed encoder one input per column (worker/model/onnxcolumns.h; *input NULL); and the
 * task metadata. */
int pst_onnx_emit_input(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char **input,
                        pst_err_t *err);
/* mf's output rows (N, width) for the raw rows in input (or, for a typed encoder, the column
 * inputs): its outlier clipping or column encoding, preprocessing, columns and layers; one
 * sigmoid output of a two-class model becomes [1 - p, p] (pst_ensemble_outputs_to_probs). */
int pst_onnx_emit_rows(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *input, int width,
                       const char **out, pst_err_t *err);
/* The graph outputs for rows out (N, n_outputs) with mf's task and classes: label and
 * probabilities (one output: p >= 0.5; several: the first largest), or value. */
int pst_onnx_emit_outputs(pst_onnx_graph_t *g, const pst_modelfile_t *mf, const char *out,
                          int n_outputs, pst_err_t *err);

#endif
