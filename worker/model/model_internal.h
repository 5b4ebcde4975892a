/* Types shared by the layer-stack files: model.c (the stack, dense and element-wise layers) and
 * spatial.c and conv.c (pooling and convolution over (batch, C, H, W) tensors). */
#ifndef PST_WORKER_MODEL_MODEL_INTERNAL_H
#define PST_WORKER_MODEL_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/model/model.h"

typedef struct pst_model_layer {
    pst_layer_spec_t spec;
    int in, out;         /* flat widths of the layer's input and output */
    int in_shape[3];     /* (C, H, W) of the input */
    int out_shape[3];    /* (C, H, W) of the output */
    int w_tensor;        /* dense, conv2d: index of W in the tensor table (b follows); else -1 */
    float *buf;          // (max_batch, out): the output this layer writes
    float *mask;         // dropout: (max_batch, out), 0 or 1/(1-rate) of the last training forward
    float *col;          // conv2d: (max_batch, in_C*k*k, out_H*out_W), the lowered input
    int32_t *argmax;     // maxpool2d: (max_batch, out), input offset of each window's maximum
    float *bn_inv_std;   // batchnorm: (C) 1/sqrt(var + eps) of the last forward
    size_t state_offset; /* batchnorm: running mean (C) then variance (C) in the state block */
    float *rnn;          /* lstm, gru: the layer's own block of step buffers (see rnn.c) */
    const float *input;  /* of the last forward: x or the previous layer's output */
    const float *y;      /* output of the last forward: buf, or input for a pass-through */
    bool mask_active;    /* dropout applied in the last forward */
    struct pst_model_csr *csr; /* dense: compressed copy of pruned weights, or NULL */
} pst_model_layer_t;

/* The int8 inference plan of a quantised model (qplan.c). */
typedef struct pst_qplan pst_qplan_t;

/* The stack: shared with init.c, which draws the initial weights. */
struct pst_model {
    int n_inputs, n_outputs, n_layers, max_batch;
    int first_dense;   /* first layer with parameters: backward stops there, nothing below learns */
    int first_trained; /* first layer with parameters that is not frozen (n_layers: none) */
    pst_model_layer_t *layers;
    pst_tensor_info_t *tensors;
    int n_tensors;
    size_t n_params;
    float *params; // (n_params) the arena
    float *grads;  // (n_params) same layout
    float *state;  // (n_state) statistics that are not trained: batchnorm running moments
    size_t n_state;
    float *activation; /* one block carved into every layer buffer, x copy and scratch */
    float *x_copy;     // (max_batch, n_inputs): backward needs the input of the first dense layer
    float *scratch[2]; // 2 x (max_batch, max_width): ping-pong gradients in backward
    float *ones;       // (max_batch) all 1: bias gradients are dY^T ones
    float *conv_tmp;   // conv2d: one image's lowered input gradient, the largest layer's size
    int32_t *argmax;   /* one block carved into the maxpool layers */
    int batch;         /* rows of the last forward; 0 before the first */
    int csr_max_rows;  /* forwards of at most this many rows use the layers' csr */
    pst_model_layer_hooks_t hooks;
    pst_qplan_t *qplan;              /* int8 layers for inference forwards, or NULL: all float */
    struct pst_fakequant *fakequant; /* quantisation-aware training (fakequant.h), or NULL */
};

/* y (batch, out) += W x for a dense layer's compressed weights (model_sparse.c). */
void pst_model_csr_forward(const struct pst_model_csr *csr, const float *x, int batch, float *y);
void pst_model_csr_free(pst_model_t *m);

/* Layers with a weight and a bias tensor: dense, conv2d, batchnorm (gamma, beta). */
bool pst_layer_kind_has_params(pst_layer_kind_t kind);
/* The checks of a layer stack that need no shapes; errors name the layer. */
int pst_layer_specs_check(int n_inputs, const pst_layer_spec_t *layers, int n_layers, int max_batch,
                          pst_err_t *err);

/* The geometry of a conv2d or pool layer: input (c, h, w), window, output side, pixels per image.
 */
typedef struct pst_spatial_geom {
    int c, h, w;
    int k, stride, pad; /* stride and pad as conv2d reads them; pools keep their own */
    int oh, ow;
    size_t p; /* oh * ow */
} pst_spatial_geom_t;
pst_spatial_geom_t pst_spatial_geometry(const pst_model_layer_t *l);

/* Floats of the lowered input of a conv2d layer for max_batch rows (0 for other layers): kept
 * from the forward for the weight gradient. */
size_t pst_spatial_col_floats(const pst_model_layer_t *l, int max_batch);
/* Floats of the conv2d scratch: one image's lowered input gradient (0 for other layers). */
size_t pst_spatial_tmp_floats(const pst_model_layer_t *l);

/* Output shape of a spatial or reshaping layer from its input shape; an error names layer i. */
int pst_spatial_shape(pst_model_layer_t *l, int i, pst_err_t *err);

/* conv2d: y (batch, OC, Ho, Wo) = W * x + b, image by image: each image is lowered (im2col) into
 * its block of l->col and multiplied straight into its rows of l->buf. */
void pst_conv_forward(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                      int batch);
/* The forward of image n of the batch alone (x is the whole batch's input). */
void pst_conv_forward_image(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                            int n);
/* conv2d backward: dW and db accumulate into dw, db; dx (if non-NULL) is overwritten. dy is
 * (batch, OC, Ho, Wo); tmp holds pst_spatial_tmp_floats floats. */
void pst_conv_backward(const pst_model_layer_t *l, const float *w, const float *dy, float *dw,
                       float *db, float *dx, int batch, float *tmp);

/* maxpool2d forward over the input planes [first, first + count) of the batch (plane n*C + c). */
void pst_maxpool_planes(pst_model_layer_t *l, const float *x, size_t first, size_t count);

/* One plane (h, w) of a 2x2, stride-2 maxpool (pool2x2.c): y and arg (oh, ow) as the general
 * loop writes them. */
void pst_maxpool2x2_forward_plane(const pst_spatial_geom_t *g, const float *xc, float *y,
                                  int32_t *arg);
/* One plane of the fused pool-ReLU backward for windows that tile it (h = 2 oh, w = 2 ow): xc
 * (h, w) is overwritten from the pool's gradient d, output y and argmax arg (oh, ow). */
void pst_maxpool2x2_relu_backward_plane(const pst_spatial_geom_t *g, const float *d, const float *y,
                                        const int32_t *arg, float *xc);

/* The conv2d - relu - maxpool2d block (convblock.c). Layers i, i+1, i+2 form one: */
bool pst_convblock_fuses(const pst_model_t *m, int i);
/* Runs the three layers image by image, each image's convolution output still in cache when its
 * ReLU and pool read it; the same values as running them one after the other. */
void pst_convblock_forward(pst_model_t *m, int i, const float *x, int batch);
/* Layer i is a maxpool2d over a relu's output, so both backward passes fuse into one: */
bool pst_convblock_pool_relu_fuses(const pst_model_t *m, int i);
/* dx (batch, relu input) = the relu's backward of the pool's backward of dy (batch, pool out), in
 * one write over dx; the same values as the two passes. */
void pst_maxpool_relu_backward(const pst_model_layer_t *pool, const float *dy, float *dx,
                               int batch);
/* y = max(x, 0), n floats (model.c's element-wise kernel). */
void pst_relu_forward(const float *x, float *y, size_t n);

/* Pools: maxpool2d, avgpool2d, global_avgpool. */
void pst_pool_forward(pst_model_layer_t *l, const float *x, int batch);
/* dx (batch, in) is overwritten with the gradient of the pool's input. */
void pst_pool_backward(const pst_model_layer_t *l, const float *dy, float *dx, int batch);

/* The eps of batchnorm (PyTorch's default); the ONNX export gives BatchNormalization the same. */
#define PST_BATCHNORM_EPS 1e-5f
/* batchnorm: y = gamma (x - mean) / sqrt(var + eps) + beta per channel; training uses the batch's
 * moments and moves running (mean (C), then variance (C)) towards them, else running is used. */
void pst_batchnorm_forward(pst_model_layer_t *l, const float *gamma, const float *beta,
                           float *running, const float *x, int batch, bool training);
/* dgamma and dbeta accumulate; dx (if non-NULL) is overwritten. */
void pst_batchnorm_backward(const pst_model_layer_t *l, const float *gamma, const float *dy,
                            float *dgamma, float *dbeta, float *dx, int batch);

/* Recurrent layers (rnn.c). The input is (batch, steps, features), the output (batch, units) or,
 * with spec.sequences, (batch, steps, units). W (G, features + units) holds the input weights
 * in its first columns and the recurrent ones after them, G = 4 units (lstm gates i, f, g, o) or
 * 3 units (gru gates r, z, n); b is 4 units (lstm: per gate; gru: r, z, n on the input side,
 * then n on the recurrent side, where the reset gate multiplies it). */
bool pst_rnn_is_recurrent(pst_layer_kind_t kind);
/* Steps and features per step of the layer's input. */
void pst_rnn_dims(const pst_model_layer_t *l, int *steps, int *features);
/* Output shape from the input shape; an error names layer i. */
int pst_rnn_shape(pst_model_layer_t *l, int i, pst_err_t *err);
/* Rows of W (gates * units); the bias has 4 units. */
int pst_rnn_gate_rows(const pst_model_layer_t *l);
/* Allocates the layer's step buffers for max_batch rows (freed with pst_rnn_free). */
int pst_rnn_alloc(pst_model_layer_t *l, int max_batch);
void pst_rnn_free(pst_model_layer_t *l);
/* Forward over all steps into l->buf; every step's gates and states are kept for backward. */
void pst_rnn_forward(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                     int batch);
/* Backpropagation through time: dW and db accumulate into dw, db; dx (if non-NULL) is
 * overwritten. dy is (batch, out). */
void pst_rnn_backward(const pst_model_layer_t *l, const float *w, const float *dy, float *dw,
                      float *db, float *dx, int batch);
/* Draws W: the input columns by kind (fans features and G), each gate's recurrent block
 * orthogonal (or by kind when it is not auto/orthogonal); b zero but the lstm forget gate's 1. */
void pst_rnn_init(const pst_model_layer_t *l, float *w, float *b, pst_init_kind_t kind,
                  pst_rng_t *rng);
/* Fills w (rows, cols), row-major, with orthonormal rows (rows <= cols) or columns. */
void pst_init_orthogonal(float *w, int rows, int cols, int ld, pst_rng_t *rng);
/* Runs layer i of an inference forward in int8 when m's plan quantises it (true); false leaves
 * it to the float path. */
bool pst_qplan_forward_layer(pst_model_t *m, int i, const float *x, int batch);
void pst_qplan_destroy(pst_qplan_t **self_p);

#endif
