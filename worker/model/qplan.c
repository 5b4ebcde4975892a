/* The int8 inference plan of a model: its quantised layers, the int8 input and int32 product
 * buffers for max_batch rows, and the dense and conv2d forwards that use them. */
#include <stdlib.h>
#include <string.h>

#include "worker/model/model_internal.h"
#include "worker/model/quant.h"

struct pst_qplan {
    pst_quant_t *q;
    int *by_layer; // (n_layers) index into q->layers, or -1 for a layer left in float
    int8_t *qx;    // (max_batch, widest quantised input: in, or Ho*Wo*C*k*k for conv2d)
    int8_t *qin;   // (max_batch, widest conv2d input C*H*W): quantised before lowering
    int8_t *qpad;  // (max_batch, widest conv2d input with its zero border)
    int32_t *acc;  // (max_batch, widest quantised output)
};

void pst_qplan_destroy(pst_qplan_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_qplan_t *p = *self_p;
    pst_quant_destroy(&p->q);
    free(p->by_layer);
    free(p->qx);
    free(p->qin);
    free(p->qpad);
    free(p->acc);
    free(p);
    *self_p = NULL;
}

/* Layer ql must be a dense or conv2d layer of m whose W has its shape and offset. */
static int check_layer(const pst_model_t *m, const pst_quant_layer_t *ql, int j, pst_err_t *err)
{
    if (ql->layer < 0 || ql->layer >= m->n_layers)
        return pst_err_set(err, PST_EFORMAT, "quantised layer %d names layer %d of %d", j + 1,
                           ql->layer + 1, m->n_layers);
    const pst_model_layer_t *l = &m->layers[ql->layer];
    if (l->spec.kind != PST_LAYER_DENSE && l->spec.kind != PST_LAYER_CONV2D)
        return pst_err_set(err, PST_EFORMAT,
                           "quantised layer %d: layer %d is %s, not dense or conv2d", j + 1,
                           ql->layer + 1, pst_layer_kind_name(l->spec.kind));
    const pst_tensor_info_t *t = &m->tensors[l->w_tensor];
    if (t->rows != ql->rows || t->cols != ql->cols || t->offset != ql->offset)
        return pst_err_set(err, PST_EFORMAT,
                           "quantised layer %d: (%d, %d) at %zu, layer %d's weights are (%d, %d) "
                           "at %zu",
                           j + 1, ql->rows, ql->cols, ql->offset, ql->layer + 1, t->rows, t->cols,
                           t->offset);
    return PST_OK;
}

/* int8 inputs per row of a quantised layer: its input, or for conv2d its lowered input. */
static size_t input_bytes(const pst_model_layer_t *l, const pst_quant_layer_t *ql)
{
    if (l->spec.kind != PST_LAYER_CONV2D)
        return (size_t)l->in;
    return (size_t)l->out_shape[1] * (size_t)l->out_shape[2] * (size_t)ql->cols;
}

static pst_qplan_t *plan_new(const pst_model_t *m, const pst_quant_t *q, pst_err_t *err)
{
    size_t in = 1, out = 1, conv_in = 1, conv_pad = 1;
    for (int j = 0; j < q->n_layers; j++) {
        const pst_model_layer_t *l = &m->layers[q->layers[j].layer];
        size_t bytes = input_bytes(l, &q->layers[j]);
        in = bytes > in ? bytes : in;
        out = (size_t)l->out > out ? (size_t)l->out : out;
        if (l->spec.kind == PST_LAYER_CONV2D) {
            size_t padded = (size_t)l->in_shape[0] * ((size_t)l->in_shape[1] + 2 * l->spec.pad) *
                            ((size_t)l->in_shape[2] + 2 * l->spec.pad);
            conv_in = (size_t)l->in > conv_in ? (size_t)l->in : conv_in;
            conv_pad = padded > conv_pad ? padded : conv_pad;
        }
    }
    size_t rows = (size_t)m->max_batch;
    pst_qplan_t *p = calloc(1, sizeof *p);
    if (p &&
        (!(p->q = pst_quant_copy(q)) ||
         !(p->by_layer = malloc((size_t)m->n_layers * sizeof(int))) ||
         !(p->qx = malloc(rows * in)) || !(p->qin = malloc(rows * conv_in)) ||
         !(p->qpad = malloc(rows * conv_pad)) || !(p->acc = malloc(rows * out * sizeof(int32_t)))))
        pst_qplan_destroy(&p);
    if (!p) {
        pst_err_set(err, PST_ENOMEM, "quantised model: out of memory");
        return NULL;
    }
    for (int i = 0; i < m->n_layers; i++)
        p->by_layer[i] = -1;
    for (int j = 0; j < q->n_layers; j++)
        p->by_layer[q->layers[j].layer] = j;
    return p;
}

int pst_model_attach_quant(pst_model_t *model, const pst_quant_t *q, pst_err_t *err)
{
    for (int j = 0; j < q->n_layers; j++) {
        int rc = check_layer(model, &q->layers[j], j, err);
        if (rc != PST_OK)
            return rc;
        if (j > 0 && q->layers[j].layer <= q->layers[j - 1].layer)
            return pst_err_set(err, PST_EFORMAT, "quantised layer %d is out of order", j + 1);
    }
    pst_qplan_t *p = plan_new(model, q, err);
    if (!p)
        return pst_err_code(err, PST_ENOMEM);
    pst_qplan_destroy(&model->qplan);
    model->qplan = p;
    return PST_OK;
}

bool pst_model_is_quantized(const pst_model_t *model)
{
    return model->qplan != NULL;
}

/* y (out) = acc (out) * in_scale * w_scale + b: the int32 sums back to float. */
static void requantize(const int32_t *restrict acc, const float *restrict w_scale,
                       const float *restrict b, float in_scale, float *restrict y, int out)
{
    for (int o = 0; o < out; o++)
        y[o] = (float)acc[o] * (in_scale * w_scale[o]) + b[o];
}

/* y (batch, out) from x (batch, in): each row's int8 products with every W row. */
static void dense_int8(const pst_qplan_t *p, const pst_quant_layer_t *ql, pst_model_layer_t *l,
                       const float *b, const float *x, int batch)
{
    pst_quant_values(x, (size_t)batch * (size_t)l->in, ql->in_scale, p->qx);
    pst_qgemm(p->qx, ql->w, p->acc, batch, l->out, l->in);
    for (int r = 0; r < batch; r++)
        requantize(p->acc + (size_t)r * l->out, ql->w_scale, b, ql->in_scale,
                   l->buf + (size_t)r * l->out, l->out);
}

/* qin (batch, C, H, W) copied into qpad (batch, C, H + 2 pad, W + 2 pad) inside a zero border,
 * so that lowering reads every window without a bounds check. */
static void pad_int8(const pst_model_layer_t *l, const int8_t *qin, int batch, int8_t *qpad)
{
    int c = l->in_shape[0], h = l->in_shape[1], w = l->in_shape[2], pad = l->spec.pad;
    size_t hp = (size_t)h + 2 * (size_t)pad, wp = (size_t)w + 2 * (size_t)pad;
    memset(qpad, 0, (size_t)batch * c * hp * wp);
    for (size_t plane = 0; plane < (size_t)batch * c; plane++)
        for (int iy = 0; iy < h; iy++)
            memcpy(qpad + (plane * hp + (size_t)iy + pad) * wp + pad,
                   qin + (plane * h + (size_t)iy) * w, (size_t)w);
}

/* The padded int8 input lowered into qx (batch*Ho*Wo, C*k*k): each output position's window
 * contiguous, in the order of W's columns. Quantising before lowering gives the same values as
 * after (a zero pad quantises to 0) for a ninth of the work with a 3x3 window. */
static void lower_int8(const pst_model_layer_t *l, const int8_t *qpad, int batch, int8_t *qx)
{
    int c = l->in_shape[0], k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : 1;
    int oh = l->out_shape[1], ow = l->out_shape[2];
    size_t hp = (size_t)l->in_shape[1] + 2 * (size_t)l->spec.pad;
    size_t wp = (size_t)l->in_shape[2] + 2 * (size_t)l->spec.pad, rows = (size_t)c * k * k;
    for (int n = 0; n < batch; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int8_t *d = qx + (((size_t)n * oh + oy) * ow + ox) * rows;
                for (int ch = 0; ch < c; ch++) {
                    const int8_t *src = qpad +
                                        (((size_t)n * c + ch) * hp + (size_t)oy * stride) * wp +
                                        (size_t)ox * stride;
                    for (int ky = 0; ky < k; ky++, src += wp)
                        for (int kx = 0; kx < k; kx++)
                            *d++ = src[kx];
                }
            }
}

/* conv2d: acc (oc, batch*p) = W qx^T over the int8 windows, then y (batch, oc, p). */
static void conv_int8(const pst_qplan_t *p, const pst_quant_layer_t *ql, pst_model_layer_t *l,
                      const float *b, const float *x, int batch)
{
    size_t positions = (size_t)l->out_shape[1] * (size_t)l->out_shape[2];
    size_t n_cols = positions * (size_t)batch;
    int oc = ql->rows;
    pst_quant_values(x, (size_t)batch * (size_t)l->in, ql->in_scale, p->qin);
    pad_int8(l, p->qin, batch, p->qpad);
    lower_int8(l, p->qpad, batch, p->qx);
    pst_qgemm(ql->w, p->qx, p->acc, oc, (int)n_cols, ql->cols);
    for (int n = 0; n < batch; n++)
        for (int o = 0; o < oc; o++) {
            float scale = ql->in_scale * ql->w_scale[o], bias = b[o];
            const int32_t *src = p->acc + (size_t)o * n_cols + (size_t)n * positions;
            float *dst = l->buf + ((size_t)n * oc + o) * positions;
            for (size_t i = 0; i < positions; i++)
                dst[i] = (float)src[i] * scale + bias;
        }
}

bool pst_qplan_forward_layer(pst_model_t *m, int i, const float *x, int batch)
{
    const pst_qplan_t *p = m->qplan;
    int j = p->by_layer[i];
    if (j < 0)
        return false;
    const pst_quant_layer_t *ql = &p->q->layers[j];
    pst_model_layer_t *l = &m->layers[i];
    const float *b = m->params + m->tensors[l->w_tensor + 1].offset;
    if (l->spec.kind == PST_LAYER_CONV2D)
        conv_int8(p, ql, l, b, x, batch);
    else
        dense_int8(p, ql, l, b, x, batch);
    l->input = x;
    l->y = l->buf;
    l->mask_active = false;
    return true;
}
