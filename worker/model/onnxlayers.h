/* A model's layer stack as ONNX nodes: every layer kind pstrain trains, computing what its
 * inference forward computes (dropout is the identity, batchnorm uses the running statistics). */
#ifndef PST_WORKER_MODEL_ONNXLAYERS_H
#define PST_WORKER_MODEL_ONNXLAYERS_H

#include "common/err.h"
#include "common/onnx/onnxgraph.h"
#include "worker/model/model.h"

/* Emits the layers of model over x, a float (N, n_inputs) tensor of g holding rows as the model
 * takes them; *out names the (N, n_outputs) result. Between layers a tensor is either flat
 * (N, width) or (N, C, H, W); it is reshaped where the next layer needs the other form:
 *   dense        Gemm over the flat rows (Flatten first after spatial layers)
 *   conv2d       Conv (pads, strides, group 1), the weights in OIHW
 *   maxpool2d    MaxPool, avgpool2d AveragePool (no padding, windows that fit: floor)
 *   flatten      Flatten (axis 1); global_avgpool GlobalAveragePool, (N, C, 1, 1)
 *   batchnorm    BatchNormalization with the running statistics over (N, C, H, W), a flat row
 *                of n values being (N, n, 1, 1)
 *   lstm, gru    LSTM, GRU over (steps, N, features) (a Transpose of pstrain's (N, steps,
 *                features)); the last state Y_h as (N, units), or the sequence Y as
 *                (N, steps * units)
 *   relu, sigmoid, tanh, softmax (axis 1 of the flat rows); dropout and input emit nothing.
 * Errors name the layer; a failed allocation is PST_ENOMEM. */
int pst_onnx_emit_stack(pst_onnx_graph_t *g, const pst_model_t *model, const char *x,
                        const char **out, pst_err_t *err);

#endif
