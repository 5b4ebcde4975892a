/* Initial weights of the layer stack, drawn from one seeded stream. */
#include "worker/model/model_internal.h"

#include <math.h>
#include <string.h>

/* Weights are drawn layer by layer, row-major, from rng alone: the same seed gives the same
 * parameters on every rank. */
void pst_model_init_params(pst_model_t *self, pst_rng_t *rng)
{
    for (int i = 0; i < self->n_layers; i++) {
        const pst_model_layer_t *l = &self->layers[i];
        if (l->w_tensor < 0)
            continue;
        const pst_tensor_info_t *wt = &self->tensors[l->w_tensor];
        const pst_tensor_info_t *bt = &self->tensors[l->w_tensor + 1];
        float *w = self->params + wt->offset;
        if (l->spec.kind == PST_LAYER_BATCHNORM) { /* the identity: draws nothing */
            for (size_t k = 0; k < wt->size; k++)
                w[k] = 1.0f;
            memset(self->params + bt->offset, 0, bt->size * sizeof(float));
            continue;
        }
        bool he = i + 1 < self->n_layers && self->layers[i + 1].spec.kind == PST_LAYER_RELU;
        /* A conv2d filter sees cols inputs and each input feeds rows * k * k outputs. */
        int window = l->spec.kind == PST_LAYER_CONV2D ? l->spec.kernel * l->spec.kernel : 1;
        double fan_in = wt->cols, fan_out = (double)wt->rows * window;
        if (he) {
            double std = sqrt(2.0 / fan_in);
            for (size_t k = 0; k < wt->size; k++)
                w[k] = (float)(std * pst_rng_normal(rng));
        } else {
            double limit = sqrt(6.0 / (fan_in + fan_out));
            for (size_t k = 0; k < wt->size; k++)
                w[k] = (float)(limit * (2.0 * pst_rng_uniform(rng) - 1.0));
        }
        memset(self->params + bt->offset, 0, bt->size * sizeof(float));
    }
}
