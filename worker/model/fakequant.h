/* Quantisation-aware training: the training forwards of a model see its dense and conv2d layers
 * as `pstrain quantize` will make them (int8 weights per output channel, int8 inputs with a
 * running-max scale), and backward passes the gradient straight through the rounding. */
#ifndef PST_WORKER_MODEL_FAKEQUANT_H
#define PST_WORKER_MODEL_FAKEQUANT_H

#include <stddef.h>

#include "common/err.h"
#include "worker/model/model.h"

typedef struct pst_fakequant pst_fakequant_t;

/* out (n) = dequantise(quantise(x)): round(x / scale) clamped into [-127, 127], times scale; the
 * values the int8 path computes with, bit for bit (pst_quant_values, then q * scale). out may be
 * x. */
void pst_fakequant_values(const float *x, size_t n, float scale, float *out);

/* The straight-through estimate of the rounding's gradient: g (n) is kept where |x| lies inside
 * the clip range (|x| <= 127 scale) and set to zero outside it, where the output is constant. */
void pst_fakequant_ste(const float *x, size_t n, float scale, float *g);

/* Attaches fake quantisation to model's training forwards and backwards (inference forwards stay
 * float): the layers `pstrain quantize` quantises (pst_quant_layer_quantizable). Fails with
 * PST_EINVAL when the model has none, naming the model's layers. Caller owns the result, which
 * must be destroyed before the model (destroy detaches it). */
pst_fakequant_t *pst_fakequant_new(pst_model_t *model, pst_err_t *err);
void pst_fakequant_destroy(pst_fakequant_t **self_p);

/* Around one training step: begin keeps the float weights of the quantised layers and writes
 * their fake-quantised copies (per output row, as pst_quant_row and pst_quant_dequantize) into
 * the model's parameters; end puts the float weights back. The gradient the step computes in
 * between is taken at the fake-quantised weights: with every weight inside its row's range, the
 * straight-through estimate for the float weights is that gradient unchanged. */
void pst_fakequant_weights_begin(pst_fakequant_t *fq);
void pst_fakequant_weights_end(pst_fakequant_t *fq);

/* Number of quantised layers, and the running max |input| of the j-th (0 before any forward). */
int pst_fakequant_n_layers(const pst_fakequant_t *fq);
float pst_fakequant_input_max(const pst_fakequant_t *fq, int j);

/* The model's side (model.c): layer i's input x (batch rows) in a training forward, returned
 * fake-quantised when layer i is quantised (the running max first takes in this batch), else x
 * unchanged; and its gradient g (batch rows, the layer's input width) passed back through the
 * rounding. */
const float *pst_fakequant_forward_input(pst_fakequant_t *fq, int i, const float *x, int batch);
void pst_fakequant_backward_input(const pst_fakequant_t *fq, int i, float *g, int batch);

#endif
