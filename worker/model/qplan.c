/* The int8 inference plan of a model: its quantised layers, the int8 input and int32 product
 * buffers for max_batch rows, and the dense forward that uses them. */
#include <stdlib.h>
#include <string.h>

#include "worker/model/model_internal.h"
#include "worker/model/quant.h"

struct pst_qplan {
    pst_quant_t *q;
    int *by_layer; // (n_layers) index into q->layers, or -1 for a layer left in float
    int8_t *qx;    // (max_batch, widest quantised input)
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
    free(p->acc);
    free(p);
    *self_p = NULL;
}

/* Layer ql must be a dense layer of m whose W has its shape and offset. */
static int check_layer(const pst_model_t *m, const pst_quant_layer_t *ql, int j, pst_err_t *err)
{
    if (ql->layer < 0 || ql->layer >= m->n_layers)
        return pst_err_set(err, PST_EFORMAT, "quantised layer %d names layer %d of %d", j + 1,
                           ql->layer + 1, m->n_layers);
    const pst_model_layer_t *l = &m->layers[ql->layer];
    if (l->spec.kind != PST_LAYER_DENSE)
        return pst_err_set(err, PST_EFORMAT, "quantised layer %d: layer %d is %s, not dense", j + 1,
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

static pst_qplan_t *plan_new(const pst_model_t *m, const pst_quant_t *q, pst_err_t *err)
{
    size_t in = 1, out = 1;
    for (int j = 0; j < q->n_layers; j++) {
        in = (size_t)q->layers[j].cols > in ? (size_t)q->layers[j].cols : in;
        out = (size_t)q->layers[j].rows > out ? (size_t)q->layers[j].rows : out;
    }
    size_t rows = (size_t)m->max_batch;
    pst_qplan_t *p = calloc(1, sizeof *p);
    if (p && (!(p->q = pst_quant_copy(q)) ||
              !(p->by_layer = malloc((size_t)m->n_layers * sizeof(int))) ||
              !(p->qx = malloc(rows * in)) || !(p->acc = malloc(rows * out * sizeof(int32_t)))))
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

bool pst_qplan_forward_layer(pst_model_t *m, int i, const float *x, int batch)
{
    const pst_qplan_t *p = m->qplan;
    int j = p->by_layer[i];
    if (j < 0)
        return false;
    const pst_quant_layer_t *ql = &p->q->layers[j];
    pst_model_layer_t *l = &m->layers[i];
    const float *b = m->params + m->tensors[l->w_tensor + 1].offset;
    pst_quant_values(x, (size_t)batch * (size_t)l->in, ql->in_scale, p->qx);
    pst_qgemm(p->qx, ql->w, p->acc, batch, l->out, l->in);
    for (int r = 0; r < batch; r++)
        requantize(p->acc + (size_t)r * l->out, ql->w_scale, b, ql->in_scale,
                   l->buf + (size_t)r * l->out, l->out);
    l->input = x;
    l->y = l->buf;
    l->mask_active = false;
    return true;
}
