/* The layer stack as ONNX nodes: Gemm, Conv, pools, BatchNormalization, LSTM and GRU, and the
 * Reshape, Flatten and Transpose nodes that give each the tensor form it takes. */
#include "worker/model/onnxlayers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "worker/model/model_internal.h"
#include "worker/model/onnxlayout.h"

/* The stack being emitted: x is the tensor so far, (N, C, H, W) as the previous layer's
 * out_shape when spatial, else its flat rows (N, width). */
typedef struct emitter {
    pst_onnx_graph_t *g;
    const pst_model_t *m;
    int i; /* the layer being emitted */
    const char *x;
    bool spatial;
} emitter_t;

/* A fresh tensor name "<kind><layer number><suffix>", e.g. conv2d1_weight. */
static const char *name_for(emitter_t *s, const char *suffix)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%d%s", pst_layer_kind_name(s->m->layers[s->i].spec.kind),
             s->i + 1, suffix);
    return pst_onnx_graph_unique(s->g, prefix);
}

static const char *floats(emitter_t *s, const char *suffix, int n_dims, const int64_t *dims,
                          const float *values)
{
    const char *name = name_for(s, suffix);
    return pst_onnx_graph_floats(s->g, name, n_dims, dims, values) == PST_OK ? name : NULL;
}

static const char *params_of(emitter_t *s, const pst_model_layer_t *l, int which,
                             const char *suffix, int n_dims, const int64_t *dims)
{
    const pst_tensor_info_t *t = &s->m->tensors[l->w_tensor + which];
    return floats(s, suffix, n_dims, dims, s->m->params + t->offset);
}

/* x = Reshape(x, (N, dims...)): the 0 keeps the batch dimension as it is. */
static bool reshape(emitter_t *s, int n_dims, const int *dims)
{
    int64_t shape[4] = {0}, shape_dims[1] = {n_dims + 1};
    for (int d = 0; d < n_dims; d++)
        shape[d + 1] = dims[d];
    const char *shape_name = name_for(s, "_shape");
    const char *y = name_for(s, "_reshaped");
    const char *in[] = {s->x, shape_name, NULL};
    if (pst_onnx_graph_int64s(s->g, shape_name, 1, shape_dims, shape) != PST_OK ||
        !pst_onnx_graph_op(s->g, "Reshape", y, in))
        return false;
    s->x = y;
    return true;
}

static bool to_flat(emitter_t *s)
{
    if (!s->spatial)
        return true;
    const char *y = name_for(s, "_flat");
    const char *in[] = {s->x, NULL};
    if (pst_onnx_attr_int(s->g, pst_onnx_graph_op(s->g, "Flatten", y, in), "axis", 1) != PST_OK)
        return false;
    s->x = y;
    s->spatial = false;
    return true;
}

/* (N, C, H, W) of the layer's input shape. */
static bool to_image(emitter_t *s, const pst_model_layer_t *l)
{
    if (s->spatial)
        return true;
    s->spatial = reshape(s, 3, l->in_shape);
    return s->spatial;
}

/* y = op(x) for a node whose attributes the caller sets; NULL on failure. */
static pst_onnx_node_t *unary(emitter_t *s, const char *op, const char *suffix, const char *extra[])
{
    const char *y = name_for(s, suffix);
    const char *in[6] = {s->x, NULL};
    for (int k = 0; extra && k < 4 && extra[k]; k++)
        in[k + 1] = extra[k];
    pst_onnx_node_t *node = pst_onnx_graph_op(s->g, op, y, in);
    if (node)
        s->x = y;
    return node;
}

/* Gemm(x, W, b) with W (out, in) as stored, transposed by the node. */
static bool emit_dense(emitter_t *s, const pst_model_layer_t *l)
{
    int64_t w_dims[2] = {l->out, l->in}, b_dims[1] = {l->out};
    const char *w = params_of(s, l, 0, "_weight", 2, w_dims);
    const char *b = params_of(s, l, 1, "_bias", 1, b_dims);
    if (!w || !b || !to_flat(s))
        return false;
    const char *extra[] = {w, b, NULL};
    return pst_onnx_attr_int(s->g, unary(s, "Gemm", "", extra), "transB", 1) == PST_OK;
}

static bool emit_conv(emitter_t *s, const pst_model_layer_t *l)
{
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : 1, p = l->spec.pad;
    int64_t w_dims[4], b_dims[1] = {l->out_shape[0]};
    pst_onnx_conv_dims(l->out_shape[0], l->in_shape[0], k, w_dims);
    const char *w = params_of(s, l, 0, "_weight", 4, w_dims);
    const char *b = params_of(s, l, 1, "_bias", 1, b_dims);
    if (!w || !b || !to_image(s, l))
        return false;
    const char *extra[] = {w, b, NULL};
    pst_onnx_node_t *node = unary(s, "Conv", "", extra);
    const int64_t kernel[2] = {k, k}, strides[2] = {stride, stride}, pads[4] = {p, p, p, p};
    return pst_onnx_attr_ints(s->g, node, "kernel_shape", 2, kernel) == PST_OK &&
           pst_onnx_attr_ints(s->g, node, "strides", 2, strides) == PST_OK &&
           pst_onnx_attr_ints(s->g, node, "pads", 4, pads) == PST_OK &&
           pst_onnx_attr_int(s->g, node, "group", 1) == PST_OK;
}

/* pstrain's pools read only windows that fit inside the input (no padding, the output side
 * rounded down), so every average is over kernel^2 values, as AveragePool's without pads. */
static bool emit_pool(emitter_t *s, const pst_model_layer_t *l)
{
    if (!to_image(s, l))
        return false;
    if (l->spec.kind == PST_LAYER_GLOBAL_AVGPOOL)
        return unary(s, "GlobalAveragePool", "", NULL) != NULL;
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : k;
    bool max = l->spec.kind == PST_LAYER_MAXPOOL2D;
    pst_onnx_node_t *node = unary(s, max ? "MaxPool" : "AveragePool", "", NULL);
    const int64_t kernel[2] = {k, k}, strides[2] = {stride, stride};
    return pst_onnx_attr_ints(s->g, node, "kernel_shape", 2, kernel) == PST_OK &&
           pst_onnx_attr_ints(s->g, node, "strides", 2, strides) == PST_OK;
}

/* Over the channels of the input shape; a flat row is n channels of one pixel. */
static bool emit_batchnorm(emitter_t *s, const pst_model_layer_t *l)
{
    int64_t c_dims[1] = {l->in_shape[0]};
    const float *running = s->m->state + l->state_offset; /* mean (C), then variance (C) */
    const char *gamma = params_of(s, l, 0, "_scale", 1, c_dims);
    const char *beta = params_of(s, l, 1, "_bias", 1, c_dims);
    const char *mean = floats(s, "_mean", 1, c_dims, running);
    const char *var = floats(s, "_var", 1, c_dims, running + l->in_shape[0]);
    if (!gamma || !beta || !mean || !var || !to_image(s, l))
        return false;
    const char *extra[] = {gamma, beta, mean, var, NULL};
    pst_onnx_node_t *node = unary(s, "BatchNormalization", "", extra);
    return pst_onnx_attr_float(s->g, node, "epsilon", PST_BATCHNORM_EPS) == PST_OK;
}

static bool emit_activation(emitter_t *s, pst_layer_kind_t kind)
{
    static const char *const ops[] = {[PST_LAYER_RELU] = "Relu",
                                      [PST_LAYER_SIGMOID] = "Sigmoid",
                                      [PST_LAYER_TANH] = "Tanh",
                                      [PST_LAYER_SOFTMAX] = "Softmax"};
    if (kind == PST_LAYER_SOFTMAX && !to_flat(s)) /* over the whole row, as pstrain's */
        return false;
    pst_onnx_node_t *node = unary(s, ops[kind], "", NULL);
    if (kind == PST_LAYER_SOFTMAX)
        return pst_onnx_attr_int(s->g, node, "axis", 1) == PST_OK;
    return node != NULL;
}

/* W, R and B of a recurrent layer, each with ONNX's leading direction dimension of 1. */
static bool rnn_weights(emitter_t *s, const pst_model_layer_t *l, int F, const char **names)
{
    const pst_tensor_info_t *wt = &s->m->tensors[l->w_tensor];
    const float *w = s->m->params + wt->offset;
    const float *b = s->m->params + s->m->tensors[l->w_tensor + 1].offset;
    int H = l->spec.units, G = pst_rnn_gate_rows(l);
    float *buf = malloc(((size_t)G * (F + H) + 2 * (size_t)G) * sizeof(float));
    if (!buf)
        return false;
    float *w_onnx = buf, *r_onnx = buf + (size_t)G * F, *b_onnx = r_onnx + (size_t)G * H;
    if (l->spec.kind == PST_LAYER_LSTM)
        pst_onnx_lstm_layout(w, b, F, H, w_onnx, r_onnx, b_onnx);
    else
        pst_onnx_gru_layout(w, b, F, H, w_onnx, r_onnx, b_onnx);
    int64_t w_dims[3] = {1, G, F}, r_dims[3] = {1, G, H}, b_dims[2] = {1, 2 * G};
    names[0] = floats(s, "_W", 3, w_dims, w_onnx);
    names[1] = floats(s, "_R", 3, r_dims, r_onnx);
    names[2] = floats(s, "_B", 2, b_dims, b_onnx);
    free(buf);
    return names[0] && names[1] && names[2];
}

/* The layer's output from ONNX's Y (steps, 1, N, units) or Y_h (1, N, units). */
static bool rnn_output(emitter_t *s, const pst_model_layer_t *l, int steps, const char *y,
                       const char *y_h)
{
    pst_onnx_graph_t *g = s->g;
    if (!l->spec.sequences) {
        const char *axes = name_for(s, "_axes");
        const int64_t zero = 0, one[1] = {1};
        s->x = y_h;
        const char *extra[] = {axes, NULL};
        return pst_onnx_graph_int64s(g, axes, 1, one, &zero) == PST_OK &&
               unary(s, "Squeeze", "_last", extra) != NULL;
    }
    s->x = y;
    const int64_t perm[4] = {2, 0, 1, 3}; /* (N, steps, 1, units) */
    const int flat[1] = {steps * l->spec.units};
    return pst_onnx_attr_ints(g, unary(s, "Transpose", "_batch_major", NULL), "perm", 4, perm) ==
               PST_OK &&
           reshape(s, 1, flat);
}

static bool emit_rnn(emitter_t *s, const pst_model_layer_t *l)
{
    int steps, features;
    pst_rnn_dims(l, &steps, &features);
    const char *wrb[3];
    const int seq[2] = {steps, features};
    const int64_t step_major[3] = {1, 0, 2};
    if (!rnn_weights(s, l, features, wrb) || !reshape(s, 2, seq) ||
        pst_onnx_attr_ints(s->g, unary(s, "Transpose", "_steps", NULL), "perm", 3, step_major) !=
            PST_OK)
        return false;
    s->spatial = false;
    bool lstm = l->spec.kind == PST_LAYER_LSTM;
    const char *y = name_for(s, "_Y"), *y_h = name_for(s, "_Y_h");
    const char *in[] = {s->x, wrb[0], wrb[1], wrb[2]}, *outs[] = {y, y_h};
    pst_onnx_node_t *node = pst_onnx_graph_node(s->g, lstm ? "LSTM" : "GRU", NULL, 4, in, 2, outs);
    if (pst_onnx_attr_int(s->g, node, "hidden_size", l->spec.units) != PST_OK ||
        (!lstm && pst_onnx_attr_int(s->g, node, "linear_before_reset", 1) != PST_OK))
        return false;
    return rnn_output(s, l, steps, y, y_h);
}

static bool emit_layer(emitter_t *s, const pst_model_layer_t *l)
{
    switch (l->spec.kind) {
    case PST_LAYER_DENSE:
        return emit_dense(s, l);
    case PST_LAYER_CONV2D:
        return emit_conv(s, l);
    case PST_LAYER_MAXPOOL2D:
    case PST_LAYER_AVGPOOL2D:
    case PST_LAYER_GLOBAL_AVGPOOL:
        return emit_pool(s, l);
    case PST_LAYER_FLATTEN:
        return to_flat(s);
    case PST_LAYER_BATCHNORM:
        return emit_batchnorm(s, l);
    case PST_LAYER_LSTM:
    case PST_LAYER_GRU:
        return emit_rnn(s, l);
    case PST_LAYER_RELU:
    case PST_LAYER_SIGMOID:
    case PST_LAYER_TANH:
    case PST_LAYER_SOFTMAX:
        return emit_activation(s, l->spec.kind);
    case PST_LAYER_DROPOUT: /* the identity at inference */
    case PST_LAYER_INPUT:   /* the rows stay flat until a layer needs their image shape */
        return true;
    }
    return false;
}

int pst_onnx_emit_stack(pst_onnx_graph_t *g, const pst_model_t *model, const char *x,
                        const char **out, pst_err_t *err)
{
    emitter_t s = {g, model, 0, x, false};
    for (s.i = 0; s.i < model->n_layers; s.i++) {
        const pst_model_layer_t *l = &model->layers[s.i];
        if ((int)l->spec.kind < 0 || (int)l->spec.kind > PST_LAYER_GRU)
            return pst_err_set(err, PST_EINVAL, "layer %d: kind %d has no ONNX form", s.i + 1,
                               (int)l->spec.kind);
        if (!emit_layer(&s, l))
            return pst_err_set(err, PST_ENOMEM, "ONNX layer %d (%s): out of memory", s.i + 1,
                               pst_layer_kind_name(l->spec.kind));
    }
    s.i = model->n_layers - 1; /* the output's rows, named after the last layer */
    if (!to_flat(&s))
        return pst_err_set(err, PST_ENOMEM, "ONNX layers: out of memory");
    *out = s.x;
    return PST_OK;
}
