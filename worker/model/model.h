/* A feed-forward layer stack over one contiguous parameter arena, trained on whole mini-batches
 * with OpenBLAS sgemm. Linear, logistic and softmax regression are stacks with no hidden layer. */
#ifndef PST_WORKER_MODEL_MODEL_H
#define PST_WORKER_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/rng.h"

typedef enum {
    PST_LAYER_DENSE = 0,
    PST_LAYER_RELU,
    PST_LAYER_SIGMOID,
    PST_LAYER_TANH,
    PST_LAYER_SOFTMAX,
    PST_LAYER_DROPOUT,
    PST_LAYER_INPUT,          /* declares the input's shape (channels, height, width) */
    PST_LAYER_CONV2D,         /* channels filters of kernel x kernel, stride, zero padding pad */
    PST_LAYER_MAXPOOL2D,      /* kernel x kernel windows, stride */
    PST_LAYER_AVGPOOL2D,      /* kernel x kernel windows, stride */
    PST_LAYER_FLATTEN,        /* (C, H, W) -> (C*H*W): the memory is already flat */
    PST_LAYER_GLOBAL_AVGPOOL, /* (C, H, W) -> (C) */
    PST_LAYER_BATCHNORM,      /* per channel: gamma (x - mean) / std + beta */
    PST_LAYER_LSTM,           /* units hidden; over a (steps, features) sequence */
    PST_LAYER_GRU,            /* units hidden; over a (steps, features) sequence */
} pst_layer_kind_t;

/* How a layer's weights are drawn: auto is He-normal before a ReLU and Glorot-uniform otherwise;
 * normal draws have std sqrt(g / fan), uniform ones the limit sqrt(3 g / fan), with g = 2 and
 * fan = fan_in (he), g = 2 and fan = fan_in + fan_out (glorot), g = 1 and fan = fan_in (lecun). */
typedef enum {
    PST_INIT_AUTO = 0,
    PST_INIT_HE_NORMAL,
    PST_INIT_HE_UNIFORM,
    PST_INIT_GLOROT_NORMAL,
    PST_INIT_GLOROT_UNIFORM,
    PST_INIT_LECUN_NORMAL,
    PST_INIT_LECUN_UNIFORM,
    PST_INIT_ORTHOGONAL, /* orthonormal rows (or columns, whichever are fewer), gain 1 */
} pst_init_kind_t;

int pst_init_kind_parse(const char *name, pst_init_kind_t *kind);
const char *pst_init_kind_name(pst_init_kind_t kind);

/* Tensors flow as (batch, C, H, W) row-major; a flat vector of n features is (n, 1, 1), and
 * dense layers take whatever shape comes as its flat width. A recurrent layer reads its input as
 * (steps, features) = (C, H * W): a flat row of n values is n steps of one feature. */
typedef struct pst_layer_spec {
    pst_layer_kind_t kind;
    int units;            /* dense: output width */
    float rate;           /* dropout: probability of zeroing (inverted dropout) */
    int channels;         /* conv2d: output channels; input: channels */
    int kernel;           /* conv2d, pools: window side */
    int stride;           /* conv2d, pools: step (0 = 1 for conv2d, kernel for pools) */
    int pad;              /* conv2d: zero padding on every side */
    int height;           /* input: image height (0 with width 0: inferred from a square image) */
    int width;            /* input: image width */
    pst_init_kind_t init; /* dense, conv2d: how the weights are drawn; lstm, gru: the input
                             weights (the recurrent ones are orthogonal unless init names
                             another kind) */
    bool sequences;       /* lstm, gru: output every step's state (steps, units), not the last */
    int steps;            /* lstm, gru: a flat input of n values is (steps, n / steps); 0: the
                             input's shape says (its C steps of H * W features) */
    bool frozen;          /* layers with weights: kept fixed (train.freeze); never in files */
} pst_layer_spec_t;

/* One parameter tensor inside the arena. */
typedef struct pst_tensor_info {
    size_t offset;  /* floats from the start of the arena */
    size_t size;    /* floats */
    int rows, cols; /* dense weight: (out, in); conv2d: (out_channels, in_channels*k*k);
                       bias: (out, 1) */
    bool is_bias;   /* biases take no L1/L2 penalty */
    bool frozen;    /* its layer is frozen: backward leaves its gradient 0, nothing updates it */
} pst_tensor_info_t;

typedef struct pst_model pst_model_t;

int pst_layer_kind_parse(const char *name, pst_layer_kind_t *kind);
const char *pst_layer_kind_name(pst_layer_kind_t kind);

/* True for layers with a weight and a bias tensor: dense, conv2d, batchnorm, lstm, gru. */
bool pst_layer_kind_has_weights(pst_layer_kind_t kind);

/* True for layers that need a (C, H, W) input: conv2d, the pools and global_avgpool. */
bool pst_layer_kind_is_spatial(pst_layer_kind_t kind);

/* Builds the stack for n_inputs features; activations are preallocated for max_batch rows so the
 * step loop never allocates. Caller owns the result. */
pst_model_t *pst_model_new(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                           int max_batch, pst_err_t *err);
void pst_model_destroy(pst_model_t **self_p);

int pst_model_n_inputs(const pst_model_t *self);
int pst_model_n_outputs(const pst_model_t *self);
int pst_model_n_layers(const pst_model_t *self);
const pst_layer_spec_t *pst_model_layer(const pst_model_t *self, int i);

/* The arena: all parameters, and the gradients of the last backward pass, same layout. */
size_t pst_model_n_params(const pst_model_t *self);
float *pst_model_params(pst_model_t *self);
float *pst_model_grads(pst_model_t *self);
int pst_model_n_tensors(const pst_model_t *self);
/* Statistics kept beside the arena but not trained: each batchnorm layer's running mean (C) then
 * running variance (C), in layer order. Training forwards update them; model files store them. */
size_t pst_model_n_state(const pst_model_t *self);
float *pst_model_state(pst_model_t *self);
const pst_tensor_info_t *pst_model_tensor(const pst_model_t *self, int i);

/* Draws dense and conv2d weights by each layer's init (fans counted over the kernel window for
 * conv2d); zero biases; batchnorm gamma 1, beta 0. */
void pst_model_init_params(pst_model_t *self, pst_rng_t *rng);

/* Forward pass over batch rows of x (batch, n_inputs). Returns the output (batch, n_outputs),
 * owned by the model and valid until the next forward. training=true applies dropout with rng. */
const float *pst_model_forward(pst_model_t *self, const float *x, int batch, bool training,
                               pst_rng_t *rng);

/* Backward pass for the last forward: dout is d(loss)/d(output) (batch, n_outputs). Overwrites
 * the gradient arena (does not accumulate); frozen layers' gradients stay 0, and the pass stops
 * at the lowest layer that is not frozen. When fused_output is true, dout is taken as the
 * gradient with respect to the *input* of a trailing softmax or sigmoid layer (the fused
 * cross-entropy case: p - y), and that layer's Jacobian is skipped. */
void pst_model_backward(pst_model_t *self, const float *dout, int batch, bool fused_output);

/* pst_model_backward that also returns d(loss)/d(input) (batch, n_inputs), for a model whose
 * input is itself trained (embeddings). Owned by the model, valid until the next backward. */
const float *pst_model_backward_input(pst_model_t *self, const float *dout, int batch,
                                      bool fused_output);

/* Called by the passes for each layer with parameters (dense, conv2d, batchnorm), k counting them
 * from 0 (the weights and bias of layer k are tensors 2k and 2k + 1, contiguous in the arena):
 * before_forward before its forward, after_backward once its backward has written both gradients
 * (the last layer first). A NULL function is skipped. Lets a distributed step wait for each layer's
 * weights just in time and send each layer's gradient as soon as it exists. */
typedef struct pst_model_layer_hooks {
    void *ctx;
    void (*before_forward)(void *ctx, int k);
    void (*after_backward)(void *ctx, int k);
} pst_model_layer_hooks_t;

/* Installs hooks (copied) for the following passes; NULL removes them. */
void pst_model_set_layer_hooks(pst_model_t *self, const pst_model_layer_hooks_t *hooks);

/* The (channels, height, width) of layer i's output; i = -1 gives the input's. */
void pst_model_shape(const pst_model_t *self, int i, int shape[3]);

/* Inference on pruned weights: each dense layer whose weights are at most max_density nonzero
 * gets a compressed copy (CSR) that forwards of at most max_rows rows use instead of sgemm,
 * skipping the zeros. For models that only predict: the copy does not follow later changes of
 * the weights. max_rows 0 drops the copies. */
#define PST_MODEL_SPARSE_DENSITY 0.45 /* scripts/bench/prune.sh: break-even near 0.5 */
#define PST_MODEL_SPARSE_ROWS 4
int pst_model_use_sparse(pst_model_t *self, double max_density, int max_rows, pst_err_t *err);
/* Dense layers the last pst_model_use_sparse compressed. */
int pst_model_n_sparse_layers(const pst_model_t *self);

/* Logits of the last forward: the input of a trailing softmax/sigmoid layer, or the output. */
const float *pst_model_pre_output(const pst_model_t *self);

#endif
