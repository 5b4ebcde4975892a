/* Feed-forward layer stack: spec validation, one parameter arena, batched forward and backward. */
#include "worker/model/model.h"
#include "worker/model/model_internal.h"
#include "worker/model/fakequant.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Widths and batch sizes are capped so every buffer size fits comfortably in size_t. */
#define MAX_ACT_FLOATS ((size_t)1 << 36)
#define ALIGN_FLOATS 16

typedef pst_model_layer_t layer_t;

/* ---- construction ---- */

static size_t round_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* W (rows, cols) then b (bias_rows) of layer l at *offset. */
static void add_tensors(pst_model_t *m, layer_t *l, int rows, int cols, int bias_rows,
                        size_t *offset)
{
    l->w_tensor = m->n_tensors;
    pst_tensor_info_t *w = &m->tensors[m->n_tensors++];
    *w = (pst_tensor_info_t){*offset,       (size_t)rows * (size_t)cols, rows, cols, false,
                             l->spec.frozen};
    *offset += w->size;
    pst_tensor_info_t *b = &m->tensors[m->n_tensors++];
    *b = (pst_tensor_info_t){*offset, (size_t)bias_rows, bias_rows, 1, true, l->spec.frozen};
    *offset += b->size;
}

static int rnn_features(const layer_t *l)
{
    int steps, features;
    pst_rnn_dims(l, &steps, &features);
    return features;
}

/* Fills shapes, widths and the tensor table (W then b per dense or conv2d layer, in layer
 * order); fails when a shape does not fit its layer. */
static int lay_out_tensors(pst_model_t *m, pst_err_t *err)
{
    int shape[3] = {m->n_inputs, 1, 1};
    size_t offset = 0;
    for (int i = 0; i < m->n_layers; i++) {
        layer_t *l = &m->layers[i];
        memcpy(l->in_shape, shape, sizeof shape);
        l->w_tensor = -1;
        int rc = pst_spatial_shape(l, i, err);
        if (rc == PST_OK && pst_rnn_is_recurrent(l->spec.kind))
            rc = pst_rnn_shape(l, i, err);
        if (rc != PST_OK)
            return rc;
        if (l->spec.kind == PST_LAYER_DENSE)
            l->out_shape[0] = l->spec.units, l->out_shape[1] = l->out_shape[2] = 1;
        l->in = shape[0] * shape[1] * shape[2];
        l->out = l->out_shape[0] * l->out_shape[1] * l->out_shape[2];
        if (pst_layer_kind_has_params(l->spec.kind) && m->first_dense < 0)
            m->first_dense = i;
        if (pst_layer_kind_has_params(l->spec.kind) && !l->spec.frozen && i < m->first_trained)
            m->first_trained = i;
        if (l->spec.kind == PST_LAYER_DENSE)
            add_tensors(m, l, l->out, l->in, l->out, &offset);
        else if (l->spec.kind == PST_LAYER_CONV2D)
            add_tensors(m, l, l->out_shape[0], shape[0] * l->spec.kernel * l->spec.kernel,
                        l->out_shape[0], &offset);
        else if (pst_rnn_is_recurrent(l->spec.kind))
            add_tensors(m, l, pst_rnn_gate_rows(l), rnn_features(l) + l->spec.units,
                        4 * l->spec.units, &offset);
        if (l->spec.kind == PST_LAYER_BATCHNORM) {
            add_tensors(m, l, shape[0], 1, shape[0], &offset);
            l->state_offset = m->n_state;
            m->n_state += 2 * (size_t)shape[0];
        }
        memcpy(shape, l->out_shape, sizeof shape);
    }
    m->n_outputs = shape[0] * shape[1] * shape[2];
    m->n_params = offset;
    return PST_OK;
}

/* Floats needed by the activation block, or 0 when it would be unreasonably large. */
static size_t activation_floats(const pst_model_t *m, int *max_width, size_t *tmp)
{
    size_t rows = (size_t)m->max_batch, total = round_up(rows * (size_t)m->n_inputs);
    *max_width = m->n_inputs;
    *tmp = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const layer_t *l = &m->layers[i];
        size_t col = pst_spatial_col_floats(l, m->max_batch);
        size_t t = pst_spatial_tmp_floats(l);
        total += round_up(rows * (size_t)l->out) + round_up(col);
        if (l->spec.kind == PST_LAYER_DROPOUT || l->spec.kind == PST_LAYER_BATCHNORM)
            total += round_up(rows * (size_t)l->out) + round_up((size_t)l->in_shape[0]);
        if (l->out > *max_width)
            *max_width = l->out;
        *tmp = t > *tmp ? t : *tmp;
    }
    total += 2 * round_up(rows * (size_t)*max_width) + round_up(rows) + round_up(*tmp);
    return total > MAX_ACT_FLOATS ? 0 : total;
}

static float *take(float **cursor, size_t n)
{
    float *p = *cursor;
    *cursor += round_up(n);
    return p;
}

static void carve_activations(pst_model_t *m, int max_width, size_t tmp)
{
    size_t rows = (size_t)m->max_batch;
    float *cursor = m->activation;
    m->x_copy = take(&cursor, rows * (size_t)m->n_inputs);
    for (int i = 0; i < m->n_layers; i++) {
        layer_t *l = &m->layers[i];
        l->buf = take(&cursor, rows * (size_t)l->out);
        if (l->spec.kind == PST_LAYER_DROPOUT || l->spec.kind == PST_LAYER_BATCHNORM) {
            l->mask = take(&cursor, rows * (size_t)l->out);
            l->bn_inv_std = take(&cursor, (size_t)l->in_shape[0]);
        }
        if (l->spec.kind == PST_LAYER_CONV2D)
            l->col = take(&cursor, pst_spatial_col_floats(l, m->max_batch));
    }
    m->conv_tmp = take(&cursor, tmp);
    m->scratch[0] = take(&cursor, rows * (size_t)max_width);
    m->scratch[1] = take(&cursor, rows * (size_t)max_width);
    m->ones = take(&cursor, rows);
    for (size_t r = 0; r < rows; r++)
        m->ones[r] = 1.0f;
}

static float *alloc_floats(size_t n)
{
    size_t bytes = round_up(n == 0 ? 1 : n) * sizeof(float);
    float *p = aligned_alloc(ALIGN_FLOATS * sizeof(float), bytes);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

/* One int32 block for the maxpool layers' argmax, or NULL with none. */
static int carve_argmax(pst_model_t *m)
{
    size_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].spec.kind == PST_LAYER_MAXPOOL2D)
            total += (size_t)m->max_batch * (size_t)m->layers[i].out;
    if (total == 0)
        return PST_OK;
    if (!(m->argmax = calloc(total, sizeof(int32_t))))
        return PST_ENOMEM;
    int32_t *cursor = m->argmax;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].spec.kind == PST_LAYER_MAXPOOL2D) {
            m->layers[i].argmax = cursor;
            cursor += (size_t)m->max_batch * (size_t)m->layers[i].out;
        }
    return PST_OK;
}

static int alloc_buffers(pst_model_t *m, pst_err_t *err)
{
    int max_width = 0;
    size_t tmp;
    size_t act = activation_floats(m, &max_width, &tmp);
    if (act == 0)
        return pst_err_set(err, PST_EINVAL,
                           "model.c:%d: activations for max_batch %d are too large", __LINE__,
                           m->max_batch);
    m->params = alloc_floats(m->n_params);
    m->grads = alloc_floats(m->n_params);
    m->activation = alloc_floats(act);
    m->state = alloc_floats(m->n_state);
    if (m->params == NULL || m->grads == NULL || m->activation == NULL || m->state == NULL ||
        carve_argmax(m) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "model.c:%d: out of memory for %zu parameters",
                           __LINE__, m->n_params);
    carve_activations(m, max_width, tmp);
    for (int i = 0; i < m->n_layers; i++)
        if (pst_rnn_is_recurrent(m->layers[i].spec.kind) &&
            pst_rnn_alloc(&m->layers[i], m->max_batch) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "model.c:%d: out of memory for layer %d's steps",
                               __LINE__, i);
    for (int i = 0; i < m->n_layers; i++) /* running variance starts at 1, the mean at 0 */
        if (m->layers[i].spec.kind == PST_LAYER_BATCHNORM)
            for (int c = 0; c < m->layers[i].in_shape[0]; c++)
                m->state[m->layers[i].state_offset + (size_t)m->layers[i].in_shape[0] + c] = 1.0f;
    return PST_OK;
}

pst_model_t *pst_model_new(int n_inputs, const pst_layer_spec_t *layers, int n_layers,
                           int max_batch, pst_err_t *err)
{
    if (pst_layer_specs_check(n_inputs, layers, n_layers, max_batch, err) != PST_OK)
        return NULL;
    pst_model_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        pst_err_set(err, PST_ENOMEM, "model.c:%d: out of memory", __LINE__);
        return NULL;
    }
    m->n_inputs = n_inputs;
    m->n_layers = n_layers;
    m->max_batch = max_batch;
    m->first_dense = -1;
    m->first_trained = n_layers;
    m->layers = calloc((size_t)n_layers, sizeof(layer_t));
    m->tensors = calloc(2 * (size_t)n_layers, sizeof(pst_tensor_info_t));
    if (m->layers == NULL || m->tensors == NULL) {
        pst_err_set(err, PST_ENOMEM, "model.c:%d: out of memory", __LINE__);
        pst_model_destroy(&m);
        return NULL;
    }
    for (int i = 0; i < n_layers; i++)
        m->layers[i].spec = layers[i];
    if (lay_out_tensors(m, err) != PST_OK || alloc_buffers(m, err) != PST_OK)
        pst_model_destroy(&m);
    return m;
}

void pst_model_destroy(pst_model_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_model_t *m = *self_p;
    pst_model_csr_free(m);
    free(m->params);
    free(m->grads);
    free(m->activation);
    free(m->argmax);
    free(m->state);
    pst_qplan_destroy(&m->qplan);
    free(m->tensors);
    for (int i = 0; m->layers != NULL && i < m->n_layers; i++)
        pst_rnn_free(&m->layers[i]);
    free(m->layers);
    free(m);
    *self_p = NULL;
}

/* ---- accessors ---- */

int pst_model_n_inputs(const pst_model_t *self)
{
    return self->n_inputs;
}

int pst_model_n_outputs(const pst_model_t *self)
{
    return self->n_outputs;
}

int pst_model_n_layers(const pst_model_t *self)
{
    return self->n_layers;
}

const pst_layer_spec_t *pst_model_layer(const pst_model_t *self, int i)
{
    if (i < 0 || i >= self->n_layers)
        return NULL;
    return &self->layers[i].spec;
}

size_t pst_model_n_params(const pst_model_t *self)
{
    return self->n_params;
}

float *pst_model_params(pst_model_t *self)
{
    return self->params;
}

float *pst_model_grads(pst_model_t *self)
{
    return self->grads;
}

size_t pst_model_n_state(const pst_model_t *self)
{
    return self->n_state;
}

float *pst_model_state(pst_model_t *self)
{
    return self->state;
}

int pst_model_n_tensors(const pst_model_t *self)
{
    return self->n_tensors;
}

const pst_tensor_info_t *pst_model_tensor(const pst_model_t *self, int i)
{
    if (i < 0 || i >= self->n_tensors)
        return NULL;
    return &self->tensors[i];
}

void pst_model_shape(const pst_model_t *self, int i, int shape[3])
{
    if (i < 0 || i >= self->n_layers) {
        shape[0] = self->n_inputs;
        shape[1] = shape[2] = 1;
        return;
    }
    memcpy(shape, self->layers[i].out_shape, 3 * sizeof(int));
}

/* ---- forward ---- */

/* y (batch, out) = x (batch, in) W^T + b, W (out, in) row-major. */
static void dense_forward(const pst_model_t *m, layer_t *l, const float *x, int batch)
{
    const float *w = m->params + m->tensors[l->w_tensor].offset;
    const float *b = m->params + m->tensors[l->w_tensor + 1].offset;
    for (int r = 0; r < batch; r++)
        memcpy(l->buf + (size_t)r * l->out, b, (size_t)l->out * sizeof(float));
    if (l->csr && batch <= m->csr_max_rows) {
        pst_model_csr_forward(l->csr, x, batch, l->buf);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, l->out, l->in, 1.0f, x, l->in, w,
                l->in, 1.0f, l->buf, l->out);
}

/* Element-wise kernels are "spans" (a, b, n) run in fixed-size blocks: a constant trip count lets
 * the compiler vectorise them at -O2, whose cost model rejects loops of unknown length. */
#define SPAN_BLOCK 16

typedef void span_fn(const float *restrict a, float *restrict b, size_t n);

static void run_blocked(span_fn *span, const float *a, float *b, size_t n)
{
    size_t i = 0;
    for (; i + SPAN_BLOCK <= n; i += SPAN_BLOCK)
        span(a + i, b + i, SPAN_BLOCK);
    span(a + i, b + i, n - i);
}

static void relu_span(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void pst_relu_forward(const float *x, float *y, size_t n)
{
    run_blocked(relu_span, x, y, n);
}

/* b *= a, element-wise. */
static void mul_span(const float *restrict a, float *restrict b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] *= a[i];
}

static void sigmoid_forward(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void tanh_forward(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

/* Row-wise softmax, shifted by the row maximum so exp never overflows. */
static void softmax_forward(const float *restrict x, float *restrict y, int batch, int width)
{
    for (int r = 0; r < batch; r++) {
        const float *xr = x + (size_t)r * width;
        float *yr = y + (size_t)r * width;
        float max = xr[0];
        for (int j = 1; j < width; j++)
            max = xr[j] > max ? xr[j] : max;
        float sum = 0.0f;
        for (int j = 0; j < width; j++) {
            yr[j] = expf(xr[j] - max);
            sum += yr[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < width; j++)
            yr[j] *= inv;
    }
}

/* Inverted dropout: kept units are scaled by 1/(1-rate) so inference needs no rescaling. */
static void dropout_forward(layer_t *l, const float *x, size_t n, pst_rng_t *rng)
{
    float keep_scale = 1.0f / (1.0f - l->spec.rate);
    double rate = l->spec.rate;
    for (size_t i = 0; i < n; i++)
        l->mask[i] = pst_rng_uniform(rng) >= rate ? keep_scale : 0.0f;
    memcpy(l->buf, x, n * sizeof(float));
    run_blocked(mul_span, l->mask, l->buf, n);
}

static void layer_forward(pst_model_t *m, layer_t *l, const float *x, int batch, bool training,
                          pst_rng_t *rng)
{
    size_t n = (size_t)batch * (size_t)l->out;
    l->input = x;
    l->y = l->buf;
    l->mask_active = false;
    switch (l->spec.kind) {
    case PST_LAYER_DENSE:
        dense_forward(m, l, x, batch);
        break;
    case PST_LAYER_RELU:
        run_blocked(relu_span, x, l->buf, n);
        break;
    case PST_LAYER_SIGMOID:
        sigmoid_forward(x, l->buf, n);
        break;
    case PST_LAYER_TANH:
        tanh_forward(x, l->buf, n);
        break;
    case PST_LAYER_SOFTMAX:
        softmax_forward(x, l->buf, batch, l->out);
        break;
    case PST_LAYER_DROPOUT:
        if (training && l->spec.rate > 0.0f) {
            assert(rng != NULL && "training with dropout needs an rng");
            dropout_forward(l, x, n, rng);
            l->mask_active = true;
        } else {
            l->y = x;
        }
        break;
    case PST_LAYER_CONV2D:
        pst_conv_forward(l, m->params + m->tensors[l->w_tensor].offset,
                         m->params + m->tensors[l->w_tensor + 1].offset, x, batch);
        break;
    case PST_LAYER_MAXPOOL2D:
    case PST_LAYER_AVGPOOL2D:
    case PST_LAYER_GLOBAL_AVGPOOL:
        pst_pool_forward(l, x, batch);
        break;
    case PST_LAYER_INPUT:
    case PST_LAYER_FLATTEN:
        l->y = x;
        break;
    case PST_LAYER_BATCHNORM:
        pst_batchnorm_forward(l, m->params + m->tensors[l->w_tensor].offset,
                              m->params + m->tensors[l->w_tensor + 1].offset,
                              m->state + l->state_offset, x, batch, training);
        break;
    case PST_LAYER_LSTM:
    case PST_LAYER_GRU:
        pst_rnn_forward(l, m->params + m->tensors[l->w_tensor].offset,
                        m->params + m->tensors[l->w_tensor + 1].offset, x, batch);
        break;
    }
}

/* The input is copied because backward needs it for the first dense layer's weight gradient and
 * the caller's batch buffer may be reused in between. Returns NULL for a batch outside
 * [1, max_batch]. */
const float *pst_model_forward(pst_model_t *self, const float *x, int batch, bool training,
                               pst_rng_t *rng)
{
    if (batch <= 0 || batch > self->max_batch)
        return NULL;
    memcpy(self->x_copy, x, (size_t)batch * (size_t)self->n_inputs * sizeof(float));
    const float *cur = self->x_copy;
    for (int i = 0; i < self->n_layers; i++) {
        int w = self->layers[i].w_tensor;
        if (w >= 0 && self->hooks.before_forward != NULL)
            self->hooks.before_forward(self->hooks.ctx, w / 2);
        if (training && self->fakequant)
            cur = pst_fakequant_forward_input(self->fakequant, i, cur, batch);
        if ((training || !self->qplan) && pst_convblock_fuses(self, i)) {
            pst_convblock_forward(self, i, cur, batch);
            i += 2; /* the relu and the pool ran too */
        } else if (training || !self->qplan || !pst_qplan_forward_layer(self, i, cur, batch)) {
            layer_forward(self, &self->layers[i], cur, batch, training, rng);
        }
        cur = self->layers[i].y;
    }
    self->batch = batch;
    return cur;
}

const float *pst_model_pre_output(const pst_model_t *self)
{
    const layer_t *last = &self->layers[self->n_layers - 1];
    if (last->spec.kind == PST_LAYER_SOFTMAX || last->spec.kind == PST_LAYER_SIGMOID)
        return last->input;
    return last->y;
}

/* ---- backward ---- */

/* dW (out, in) = dY^T X; db (out) = column sums of dY; dX (batch, in) = dY W unless dx is NULL. */
static void dense_backward(pst_model_t *m, const layer_t *l, const float *dy, float *dx, int batch)
{
    const pst_tensor_info_t *wt = &m->tensors[l->w_tensor];
    float *dw = m->grads + wt->offset;
    float *db = m->grads + m->tensors[l->w_tensor + 1].offset;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out, l->in, batch, 1.0f, dy, l->out,
                l->input, l->in, 1.0f, dw, l->in);
    cblas_sgemv(CblasRowMajor, CblasTrans, batch, l->out, 1.0f, dy, l->out, m->ones, 1, 0.0f, db,
                1);
    if (dx != NULL)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, l->in, l->out, 1.0f, dy,
                    l->out, m->params + wt->offset, l->in, 0.0f, dx, l->in);
}

/* Element-wise gradients work in place on g, which holds d/d(output) and becomes d/d(input). */
static void relu_backward_span(const float *restrict y, float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = y[i] > 0.0f ? g[i] : 0.0f;
}

static void sigmoid_backward_span(const float *restrict y, float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] *= y[i] * (1.0f - y[i]);
}

static void tanh_backward_span(const float *restrict y, float *restrict g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] *= 1.0f - y[i] * y[i];
}

/* g_j <- y_j (g_j - sum_k g_k y_k), row by row. */
static void softmax_backward(const float *restrict y, float *restrict g, int batch, int width)
{
    for (int r = 0; r < batch; r++) {
        const float *restrict yr = y + (size_t)r * width;
        float *restrict gr = g + (size_t)r * width;
        float dot = 0.0f;
        for (int j = 0; j < width; j++)
            dot += gr[j] * yr[j];
        for (int j = 0; j < width; j++)
            gr[j] = yr[j] * (gr[j] - dot);
    }
}

static float *other_scratch(pst_model_t *m, const float *g)
{
    return g == m->scratch[0] ? m->scratch[1] : m->scratch[0];
}

/* Turns g (batch, out) into the gradient with respect to the layer's input and returns where it
 * now lives: in place for element-wise layers, the other scratch buffer for a dense layer. */
static float *layer_backward(pst_model_t *m, const layer_t *l, float *g, int batch, bool need_dx)
{
    size_t n = (size_t)batch * (size_t)l->out;
    switch (l->spec.kind) {
    case PST_LAYER_DENSE: {
        float *dx = need_dx ? other_scratch(m, g) : NULL;
        dense_backward(m, l, g, dx, batch);
        return dx;
    }
    case PST_LAYER_RELU:
        run_blocked(relu_backward_span, l->y, g, n);
        break;
    case PST_LAYER_SIGMOID:
        run_blocked(sigmoid_backward_span, l->y, g, n);
        break;
    case PST_LAYER_TANH:
        run_blocked(tanh_backward_span, l->y, g, n);
        break;
    case PST_LAYER_SOFTMAX:
        softmax_backward(l->y, g, batch, l->out);
        break;
    case PST_LAYER_DROPOUT:
        if (l->mask_active)
            run_blocked(mul_span, l->mask, g, n);
        break;
    case PST_LAYER_CONV2D: {
        float *dx = need_dx ? other_scratch(m, g) : NULL;
        const pst_tensor_info_t *wt = &m->tensors[l->w_tensor];
        pst_conv_backward(l, m->params + wt->offset, g, m->grads + wt->offset,
                          m->grads + m->tensors[l->w_tensor + 1].offset, dx, batch, m->conv_tmp);
        return dx;
    }
    case PST_LAYER_MAXPOOL2D:
    case PST_LAYER_AVGPOOL2D:
    case PST_LAYER_GLOBAL_AVGPOOL: {
        float *dx = other_scratch(m, g);
        pst_pool_backward(l, g, dx, batch);
        return dx;
    }
    case PST_LAYER_INPUT:
    case PST_LAYER_FLATTEN:
        break;
    case PST_LAYER_BATCHNORM: {
        float *dx = need_dx ? other_scratch(m, g) : NULL;
        const pst_tensor_info_t *wt = &m->tensors[l->w_tensor];
        pst_batchnorm_backward(l, m->params + wt->offset, g, m->grads + wt->offset,
                               m->grads + m->tensors[l->w_tensor + 1].offset, dx, batch);
        return dx;
    }
    case PST_LAYER_LSTM:
    case PST_LAYER_GRU: {
        float *dx = need_dx ? other_scratch(m, g) : NULL;
        const pst_tensor_info_t *wt = &m->tensors[l->w_tensor];
        pst_rnn_backward(l, m->params + wt->offset, g, m->grads + wt->offset,
                         m->grads + m->tensors[l->w_tensor + 1].offset, dx, batch);
        return dx;
    }
    }
    return g;
}

/* The backward pass, down to the first dense layer, or with_input down to the input; returns
 * d(loss)/d(input) when with_input, else NULL. */
static const float *backward_pass(pst_model_t *self, const float *dout, int batch,
                                  bool fused_output, bool with_input)
{
    assert(batch == self->batch && "backward must follow a forward of the same batch");
    int top = self->n_layers - 1;
    pst_layer_kind_t last = self->layers[top].spec.kind;
    if (fused_output && (last == PST_LAYER_SOFTMAX || last == PST_LAYER_SIGMOID))
        top--;
    /* dW accumulates (beta = 1) into a zeroed arena: one memset is much cheaper than the
     * scaling pass sgemm makes over C when beta = 0. */
    memset(self->grads, 0, self->n_params * sizeof(float));
    float *g = self->scratch[0];
    memcpy(g, dout, (size_t)batch * (size_t)self->n_outputs * sizeof(float));
    int bottom = with_input ? 0 : self->first_trained;
    for (int i = top; i >= bottom; i--) {
        if (i - 1 >= bottom && pst_convblock_pool_relu_fuses(self, i)) {
            /* neither a pool nor a relu is quantised: no straight-through step here */
            float *dx = other_scratch(self, g);
            pst_maxpool_relu_backward(&self->layers[i], g, dx, batch);
            g = dx;
            i--; /* the relu's backward is done */
        } else {
            g = layer_backward(self, &self->layers[i], g, batch, with_input || i > bottom);
            if (self->fakequant && g) /* the rounding of the layer's input, straight through */
                pst_fakequant_backward_input(self->fakequant, i, g, batch);
        }
        int w = self->layers[i].w_tensor;
        if (w >= 0 && self->layers[i].spec.frozen) /* its gradient only passed through */
            memset(self->grads + self->tensors[w].offset, 0,
                   (self->tensors[w].size + self->tensors[w + 1].size) * sizeof(float));
        else if (w >= 0 && self->hooks.after_backward != NULL)
            self->hooks.after_backward(self->hooks.ctx, w / 2);
    }
    return with_input ? g : NULL;
}

void pst_model_set_layer_hooks(pst_model_t *self, const pst_model_layer_hooks_t *hooks)
{
    self->hooks = hooks != NULL ? *hooks : (pst_model_layer_hooks_t){0};
}

void pst_model_backward(pst_model_t *self, const float *dout, int batch, bool fused_output)
{
    backward_pass(self, dout, batch, fused_output, false);
}

const float *pst_model_backward_input(pst_model_t *self, const float *dout, int batch,
                                      bool fused_output)
{
    return backward_pass(self, dout, batch, fused_output, true);
}
