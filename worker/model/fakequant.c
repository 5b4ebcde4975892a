/* Fake quantisation for quantisation-aware training (see fakequant.h). */
#include "worker/model/fakequant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "worker/model/model_internal.h"
#include "worker/model/quant.h"

/* One quantised layer: its weights' place, their float copy during a step, its input's range. */
typedef struct fq_layer {
    int layer;       /* index in the stack */
    size_t offset;   /* of W in the arena */
    int rows, cols;  /* W (rows, cols) */
    float *master;   // (rows, cols) the float weights between begin and end
    int8_t *q;       // (cols) one row's int8 values
    float *x_fq;     // (max_batch, in) the fake-quantised input of the last training forward
    const float *x;  /* the float input of that forward (a layer buffer of the model) */
    float input_max; /* running max |input| */
    float scale;     /* the input scale of the last forward */
} fq_layer_t;

struct pst_fakequant {
    pst_model_t *model;
    int n_layers;
    fq_layer_t *layers; // (n_layers)
    int *by_layer;      // (model's n_layers) index into layers, or -1
};

void pst_fakequant_values(const float *x, size_t n, float scale, float *out)
{
    int8_t q[256];
    for (size_t at = 0; at < n; at += sizeof q) { /* in blocks: no allocation per call */
        size_t m = n - at < sizeof q ? n - at : sizeof q;
        pst_quant_values(x + at, m, scale, q);
        for (size_t i = 0; i < m; i++)
            out[at + i] = (float)q[i] * scale;
    }
}

void pst_fakequant_ste(const float *x, size_t n, float scale, float *g)
{
    /* the clamp of pst_quant_values acts on x / scale: compare the same quotient */
    float inv = 1.0f / scale, lim = (float)PST_QUANT_MAX;
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(x[i] * inv) <= lim))
            g[i] = 0.0f;
}

void pst_fakequant_destroy(pst_fakequant_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pst_fakequant_t *fq = *self_p;
    if (fq->model && fq->model->fakequant == fq)
        fq->model->fakequant = NULL;
    for (int j = 0; fq->layers && j < fq->n_layers; j++) {
        free(fq->layers[j].master);
        free(fq->layers[j].q);
        free(fq->layers[j].x_fq);
    }
    free(fq->layers);
    free(fq->by_layer);
    free(fq);
    *self_p = NULL;
}

static int layers_init(pst_fakequant_t *fq, pst_model_t *m)
{
    int j = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (!pst_quant_layer_quantizable(m, i))
            continue;
        const pst_model_layer_t *l = &m->layers[i];
        const pst_tensor_info_t *t = &m->tensors[l->w_tensor];
        fq_layer_t *f = &fq->layers[j];
        *f = (fq_layer_t){.layer = i, .offset = t->offset, .rows = t->rows, .cols = t->cols};
        f->master = malloc((size_t)t->rows * (size_t)t->cols * sizeof(float));
        f->q = malloc((size_t)t->cols);
        f->x_fq = malloc((size_t)m->max_batch * (size_t)l->in * sizeof(float));
        if (!f->master || !f->q || !f->x_fq)
            return PST_ENOMEM;
        fq->by_layer[i] = j++;
    }
    return PST_OK;
}

pst_fakequant_t *pst_fakequant_new(pst_model_t *model, pst_err_t *err)
{
    int n = 0;
    for (int i = 0; i < model->n_layers; i++)
        n += pst_quant_layer_quantizable(model, i);
    if (n == 0) {
        pst_err_set(err, PST_EINVAL,
                    "train.qat: the model has no layer that quantisation makes int8 (dense, or "
                    "conv2d with %d or more values per window)",
                    PST_QUANT_MIN_WINDOW);
        return NULL;
    }
    pst_fakequant_t *fq = calloc(1, sizeof *fq);
    if (fq && (!(fq->layers = calloc((size_t)n, sizeof *fq->layers)) ||
               !(fq->by_layer = malloc((size_t)model->n_layers * sizeof(int)))))
        pst_fakequant_destroy(&fq);
    if (fq) {
        fq->n_layers = n;
        for (int i = 0; i < model->n_layers; i++)
            fq->by_layer[i] = -1;
        if (layers_init(fq, model) != PST_OK)
            pst_fakequant_destroy(&fq);
    }
    if (!fq) {
        pst_err_set(err, PST_ENOMEM, "train.qat: out of memory");
        return NULL;
    }
    fq->model = model;
    model->fakequant = fq;
    return fq;
}

void pst_fakequant_weights_begin(pst_fakequant_t *fq)
{
    for (int j = 0; j < fq->n_layers; j++) {
        fq_layer_t *f = &fq->layers[j];
        float *w = fq->model->params + f->offset;
        memcpy(f->master, w, (size_t)f->rows * (size_t)f->cols * sizeof(float));
        for (int r = 0; r < f->rows; r++) {
            float *row = w + (size_t)r * f->cols, scale;
            pst_quant_row(row, (size_t)f->cols, f->q, &scale);
            for (int c = 0; c < f->cols; c++)
                row[c] = (float)f->q[c] * scale;
        }
    }
}

void pst_fakequant_weights_end(pst_fakequant_t *fq)
{
    for (int j = 0; j < fq->n_layers; j++) {
        fq_layer_t *f = &fq->layers[j];
        memcpy(fq->model->params + f->offset, f->master,
               (size_t)f->rows * (size_t)f->cols * sizeof(float));
    }
}

int pst_fakequant_n_layers(const pst_fakequant_t *fq)
{
    return fq->n_layers;
}

float pst_fakequant_input_max(const pst_fakequant_t *fq, int j)
{
    return fq->layers[j].input_max;
}

static float max_abs(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* The batch is quantised with the range seen before it (the first batch's own range seeds it),
 * then the range takes the batch in: a value beyond everything seen so far is clipped once, and
 * its gradient stopped, as the calibrated int8 model would clip it. */
const float *pst_fakequant_forward_input(pst_fakequant_t *fq, int i, const float *x, int batch)
{
    int j = fq->by_layer[i];
    if (j < 0)
        return x;
    fq_layer_t *f = &fq->layers[j];
    size_t n = (size_t)batch * (size_t)fq->model->layers[i].in;
    float seen = max_abs(x, n);
    if (f->input_max == 0.0f)
        f->input_max = seen;
    f->scale = pst_quant_scale(f->input_max);
    f->input_max = seen > f->input_max ? seen : f->input_max;
    pst_fakequant_values(x, n, f->scale, f->x_fq);
    f->x = x;
    return f->x_fq;
}

void pst_fakequant_backward_input(const pst_fakequant_t *fq, int i, float *g, int batch)
{
    int j = fq->by_layer[i];
    if (j < 0)
        return;
    const fq_layer_t *f = &fq->layers[j];
    pst_fakequant_ste(f->x, (size_t)batch * (size_t)fq->model->layers[i].in, f->scale, g);
}
