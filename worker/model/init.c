/* Initial weights of the layer stack, drawn from one seeded stream. */
#include "worker/model/model_internal.h"

#include <math.h>
#include <string.h>

static const char *const INIT_NAMES[] = {
    [PST_INIT_AUTO] = "auto",
    [PST_INIT_HE_NORMAL] = "he_normal",
    [PST_INIT_HE_UNIFORM] = "he_uniform",
    [PST_INIT_GLOROT_NORMAL] = "glorot_normal",
    [PST_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [PST_INIT_LECUN_NORMAL] = "lecun_normal",
    [PST_INIT_LECUN_UNIFORM] = "lecun_uniform",
};
#define N_INITS ((int)(sizeof INIT_NAMES / sizeof INIT_NAMES[0]))

int pst_init_kind_parse(const char *name, pst_init_kind_t *kind)
{
    for (int i = 0; name != NULL && i < N_INITS; i++)
        if (strcmp(name, INIT_NAMES[i]) == 0) {
            *kind = (pst_init_kind_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

const char *pst_init_kind_name(pst_init_kind_t kind)
{
    return (int)kind >= 0 && (int)kind < N_INITS ? INIT_NAMES[kind] : "unknown";
}

/* Fills w (n) by kind with the given fans; auto has been resolved by the caller. */
static void draw(float *w, size_t n, pst_init_kind_t kind, double fan_in, double fan_out,
                 pst_rng_t *rng)
{
    double gain = kind == PST_INIT_LECUN_NORMAL || kind == PST_INIT_LECUN_UNIFORM ? 1.0 : 2.0;
    double fan = kind == PST_INIT_GLOROT_NORMAL || kind == PST_INIT_GLOROT_UNIFORM
                     ? fan_in + fan_out
                     : fan_in;
    bool normal = kind == PST_INIT_HE_NORMAL || kind == PST_INIT_GLOROT_NORMAL ||
                  kind == PST_INIT_LECUN_NORMAL;
    if (normal) {
        double std = sqrt(gain / fan);
        for (size_t k = 0; k < n; k++)
            w[k] = (float)(std * pst_rng_normal(rng));
    } else {
        double limit = sqrt(3.0 * gain / fan);
        for (size_t k = 0; k < n; k++)
            w[k] = (float)(limit * (2.0 * pst_rng_uniform(rng) - 1.0));
    }
}

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
        bool relu = i + 1 < self->n_layers && self->layers[i + 1].spec.kind == PST_LAYER_RELU;
        pst_init_kind_t kind = l->spec.init;
        if (kind == PST_INIT_AUTO)
            kind = relu ? PST_INIT_HE_NORMAL : PST_INIT_GLOROT_UNIFORM;
        /* A conv2d filter sees cols inputs and each input feeds rows * k * k outputs. */
        int window = l->spec.kind == PST_LAYER_CONV2D ? l->spec.kernel * l->spec.kernel : 1;
        draw(w, wt->size, kind, wt->cols, (double)wt->rows * window, rng);
        memset(self->params + bt->offset, 0, bt->size * sizeof(float));
    }
}
