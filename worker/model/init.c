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
    [PST_INIT_ORTHOGONAL] = "orthogonal",
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

/* Vector k of the set being orthonormalised: row k (by_rows) or column k of w. */
static float *vec_at(float *w, int k, int ld, bool by_rows, int *stride)
{
    *stride = by_rows ? 1 : ld;
    return by_rows ? w + (size_t)k * ld : w + k;
}

static double dot(const float *a, const float *b, int n, int stride)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)a[(size_t)i * stride] * b[(size_t)i * stride];
    return s;
}

/* Modified Gram-Schmidt over Gaussian draws, each vector orthogonalised twice ("twice is enough"
 * in float32): the result is a uniformly random orthonormal set, like the QR of a Gaussian
 * matrix with its signs fixed, with no LAPACK and no scratch memory. */
void pst_init_orthogonal(float *w, int rows, int cols, int ld, pst_rng_t *rng)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            w[(size_t)r * ld + c] = (float)pst_rng_normal(rng);
    bool by_rows = rows <= cols;
    int n_vecs = by_rows ? rows : cols, len = by_rows ? cols : rows, stride;
    for (int k = 0; k < n_vecs; k++) {
        float *v = vec_at(w, k, ld, by_rows, &stride);
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < k; j++) {
                float *u = vec_at(w, j, ld, by_rows, &stride);
                double p = dot(u, v, len, stride);
                for (int i = 0; i < len; i++)
                    v[(size_t)i * stride] -= (float)(p * u[(size_t)i * stride]);
            }
        double norm = sqrt(dot(v, v, len, stride));
        for (int i = 0; i < len; i++)
            v[(size_t)i * stride] = (float)(v[(size_t)i * stride] / norm);
    }
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
        if (pst_rnn_is_recurrent(l->spec.kind)) {
            pst_rnn_init(l, w, self->params + bt->offset, l->spec.init, rng);
            continue;
        }
        bool relu = i + 1 < self->n_layers && self->layers[i + 1].spec.kind == PST_LAYER_RELU;
        pst_init_kind_t kind = l->spec.init;
        if (kind == PST_INIT_AUTO)
            kind = relu ? PST_INIT_HE_NORMAL : PST_INIT_GLOROT_UNIFORM;
        /* A conv2d filter sees cols inputs and each input feeds rows * k * k outputs. */
        int window = l->spec.kind == PST_LAYER_CONV2D ? l->spec.kernel * l->spec.kernel : 1;
        if (kind == PST_INIT_ORTHOGONAL)
            pst_init_orthogonal(w, wt->rows, wt->cols, wt->cols, rng);
        else
            draw(w, wt->size, kind, wt->cols, (double)wt->rows * window, rng);
        memset(self->params + bt->offset, 0, bt->size * sizeof(float));
    }
}

void pst_rnn_init(const pst_model_layer_t *l, float *w, float *b, pst_init_kind_t kind,
                  pst_rng_t *rng)
{
    int T, F, H = l->spec.units, G = pst_rnn_gate_rows(l);
    pst_rnn_dims(l, &T, &F);
    (void)T;
    int ld = F + H;
    pst_init_kind_t in_kind = kind == PST_INIT_AUTO ? PST_INIT_GLOROT_UNIFORM : kind;
    bool recurrent_orthogonal = kind == PST_INIT_AUTO || kind == PST_INIT_ORTHOGONAL;
    if (in_kind == PST_INIT_ORTHOGONAL) {
        pst_init_orthogonal(w, G, F, ld, rng);
    } else {
        for (int r = 0; r < G; r++) /* the input block: G rows of F columns */
            draw(w + (size_t)r * ld, (size_t)F, in_kind, F, G, rng);
    }
    /* The recurrent block gate by gate, so each gate's H x H map keeps the state's norm. */
    for (int gate = 0; gate < G / H; gate++) {
        float *block = w + (size_t)gate * H * ld + F;
        if (recurrent_orthogonal)
            pst_init_orthogonal(block, H, H, ld, rng);
        else
            for (int r = 0; r < H; r++)
                draw(block + (size_t)r * ld, (size_t)H, kind, H, G, rng);
    }
    memset(b, 0, 4 * (size_t)H * sizeof(float));
    if (l->spec.kind == PST_LAYER_LSTM) /* forget gate open at first: long memory is learnable */
        for (int j = 0; j < H; j++)
            b[H + j] = 1.0f;
}
