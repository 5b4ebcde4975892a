/* Recurrent layers (lstm, gru) over (batch, steps, features) sequences: the input projections of
 * every step in one sgemm, one sgemm per step for the recurrent part, and backpropagation
 * through time over the gates and states the forward kept. */
#include "worker/model/model_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Steps times features (and steps times units) are capped like other layers' widths. */
#define MAX_RNN_WIDTH (1 << 24)

/* Views of a layer's step buffers, all (steps, batch, ...) so each step is one contiguous block
 * of batch rows. Carved from l->rnn for the batch of the forward (the backward that follows
 * carves the same), which fits inside the block sized for max_batch. */
typedef struct rnn_view {
    int T, F, H, G;
    float *xt;    // (T, B, F) the input, step-major
    float *gates; // (T, B, G) activated gates
    float *hs;    // (T, B, H) hidden states
    float *cs;    // (T, B, H) lstm: cell states; gru: W_hn h + b_hn, which the reset gate scales
    float *tcs;   // (T, B, H) lstm: tanh of the cell states
    float *dgx;   // (T, B, G) gradient of the gates' input-side pre-activations
    float *dgh;   // (T, B, G) gru: of the recurrent-side ones (lstm: the same as dgx)
    float *dh;    // (B, H) gradient reaching the hidden state of the step being undone
    float *dc;    // (B, H) lstm: gradient reaching the cell state
    float *dxt;   // (T, B, F) gradient of the input, step-major
    float *ones;  // (T * B) all 1: bias gradients are column sums
} rnn_view_t;

bool pst_rnn_is_recurrent(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_LSTM || kind == PST_LAYER_GRU;
}

int pst_rnn_gate_rows(const pst_model_layer_t *l)
{
    return (l->spec.kind == PST_LAYER_LSTM ? 4 : 3) * l->spec.units;
}

void pst_rnn_dims(const pst_model_layer_t *l, int *steps, int *features)
{
    int n = l->in_shape[0] * l->in_shape[1] * l->in_shape[2];
    bool flat = l->in_shape[1] == 1 && l->in_shape[2] == 1;
    *steps = l->spec.steps > 0 && flat ? l->spec.steps : l->in_shape[0];
    *features = n / *steps;
}

static rnn_view_t view_of(const pst_model_layer_t *l, int max_batch)
{
    rnn_view_t v = {.H = l->spec.units};
    pst_rnn_dims(l, &v.T, &v.F);
    v.G = pst_rnn_gate_rows(l);
    size_t tb = (size_t)v.T * (size_t)max_batch, bh = (size_t)max_batch * (size_t)v.H;
    float *p = l->rnn;
    v.ones = p, p += tb; /* first: the prefix any batch takes is all 1, as filled for max_batch */
    v.xt = p, p += tb * (size_t)v.F;
    v.gates = p, p += tb * (size_t)v.G;
    v.hs = p, p += tb * (size_t)v.H;
    v.cs = p, p += tb * (size_t)v.H;
    v.tcs = p, p += tb * (size_t)v.H;
    v.dgx = p, p += tb * (size_t)v.G;
    v.dgh = l->spec.kind == PST_LAYER_GRU ? p : v.dgx;
    p += l->spec.kind == PST_LAYER_GRU ? tb * (size_t)v.G : 0;
    v.dh = p, p += bh;
    v.dc = p, p += bh;
    v.dxt = p;
    return v;
}

int pst_rnn_shape(pst_model_layer_t *l, int i, pst_err_t *err)
{
    long n = (long)l->in_shape[0] * l->in_shape[1] * l->in_shape[2], H = l->spec.units;
    bool flat = l->in_shape[1] == 1 && l->in_shape[2] == 1;
    if (l->spec.steps > 0 && flat && (l->spec.steps > n || n % l->spec.steps != 0))
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: %s: an input of %ld values is not %d steps of equal width", i,
                           pst_layer_kind_name(l->spec.kind), n, l->spec.steps);
    int steps, features;
    pst_rnn_dims(l, &steps, &features);
    long T = steps, F = features;
    if (H < 1 || H > 65536 || T * H > MAX_RNN_WIDTH || T * F > MAX_RNN_WIDTH)
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: %s needs units in [1, 65536] and at most %d values per "
                           "sequence; got %ld units over %ld steps of %ld features",
                           i, pst_layer_kind_name(l->spec.kind), MAX_RNN_WIDTH, H, T, F);
    l->out_shape[0] = l->spec.sequences ? (int)T : (int)H;
    l->out_shape[1] = l->spec.sequences ? (int)H : 1;
    l->out_shape[2] = 1;
    return PST_OK;
}

int pst_rnn_alloc(pst_model_layer_t *l, int max_batch)
{
    int steps, features;
    pst_rnn_dims(l, &steps, &features);
    size_t T = (size_t)steps, F = (size_t)features;
    size_t H = (size_t)l->spec.units, G = (size_t)pst_rnn_gate_rows(l), B = (size_t)max_batch;
    size_t per_step = 2 * F + 2 * G + 3 * H + 1 + (l->spec.kind == PST_LAYER_GRU ? G : 0);
    size_t n = T * B * per_step + 2 * B * H;
    if (!(l->rnn = malloc(n * sizeof(float))))
        return PST_ENOMEM;
    rnn_view_t v = view_of(l, max_batch);
    for (size_t k = 0; k < T * B; k++)
        v.ones[k] = 1.0f;
    return PST_OK;
}

void pst_rnn_free(pst_model_layer_t *l)
{
    free(l->rnn);
    l->rnn = NULL;
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* (B, T, F) <-> (T, B, F). */
static void to_step_major(const float *x, float *xt, int B, int T, int F)
{
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++)
            memcpy(xt + ((size_t)t * B + r) * F, x + ((size_t)r * T + t) * F,
                   (size_t)F * sizeof(float));
}

static void to_batch_major(const float *xt, float *x, int B, int T, int F)
{
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++)
            memcpy(x + ((size_t)r * T + t) * F, xt + ((size_t)t * B + r) * F,
                   (size_t)F * sizeof(float));
}

/* gates (T*B, G) = bias[0..G) + xt Wx^T, the input side of every step at once. */
static void input_projection(const rnn_view_t *v, const float *w, const float *b, int B)
{
    size_t rows = (size_t)v->T * (size_t)B;
    for (size_t r = 0; r < rows; r++)
        memcpy(v->gates + r * v->G, b, (size_t)v->G * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, v->G, v->F, 1.0f, v->xt, v->F,
                w, v->F + v->H, 1.0f, v->gates, v->G);
}

static void lstm_step(const rnn_view_t *v, const float *w, int t, int B)
{
    int H = v->H, G = v->G;
    float *g = v->gates + (size_t)t * B * G;
    const float *h_prev = t > 0 ? v->hs + (size_t)(t - 1) * B * H : NULL;
    const float *c_prev = t > 0 ? v->cs + (size_t)(t - 1) * B * H : NULL;
    if (h_prev)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f, h_prev, H, w + v->F,
                    v->F + H, 1.0f, g, G);
    float *c = v->cs + (size_t)t * B * H, *tc = v->tcs + (size_t)t * B * H;
    float *h = v->hs + (size_t)t * B * H;
    for (int r = 0; r < B; r++) {
        float *gr = g + (size_t)r * G;
        for (int j = 0; j < H; j++) {
            float i = sigmoid(gr[j]), f = sigmoid(gr[H + j]);
            float gg = tanhf(gr[2 * H + j]), o = sigmoid(gr[3 * H + j]);
            gr[j] = i, gr[H + j] = f, gr[2 * H + j] = gg, gr[3 * H + j] = o;
            size_t k = (size_t)r * H + j;
            c[k] = (c_prev ? f * c_prev[k] : 0.0f) + i * gg;
            tc[k] = tanhf(c[k]);
            h[k] = o * tc[k];
        }
    }
}

/* The step's recurrent projection goes through dgh's block for step t, free until backward. */
static void gru_step(const rnn_view_t *v, const float *w, const float *b_hn, int t, int B)
{
    int H = v->H, G = v->G;
    float *g = v->gates + (size_t)t * B * G, *hp = v->dgh + (size_t)t * B * G;
    const float *h_prev = t > 0 ? v->hs + (size_t)(t - 1) * B * H : NULL;
    if (h_prev)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f, h_prev, H, w + v->F,
                    v->F + H, 0.0f, hp, G);
    else
        memset(hp, 0, (size_t)B * G * sizeof(float));
    float *hn = v->cs + (size_t)t * B * H, *h = v->hs + (size_t)t * B * H;
    for (int r = 0; r < B; r++) {
        float *gr = g + (size_t)r * G;
        const float *pr = hp + (size_t)r * G;
        for (int j = 0; j < H; j++) {
            size_t k = (size_t)r * H + j;
            float rr = sigmoid(gr[j] + pr[j]), z = sigmoid(gr[H + j] + pr[H + j]);
            hn[k] = pr[2 * H + j] + b_hn[j];
            float n = tanhf(gr[2 * H + j] + rr * hn[k]);
            gr[j] = rr, gr[H + j] = z, gr[2 * H + j] = n;
            h[k] = (1.0f - z) * n + z * (h_prev ? h_prev[k] : 0.0f);
        }
    }
}

void pst_rnn_forward(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                     int batch)
{
    rnn_view_t v = view_of(l, batch);
    to_step_major(x, v.xt, batch, v.T, v.F);
    input_projection(&v, w, b, batch);
    for (int t = 0; t < v.T; t++) {
        if (l->spec.kind == PST_LAYER_LSTM)
            lstm_step(&v, w, t, batch);
        else
            gru_step(&v, w, b + v.G, t, batch);
    }
    if (l->spec.sequences)
        to_batch_major(v.hs, l->buf, batch, v.T, v.H);
    else
        memcpy(l->buf, v.hs + (size_t)(v.T - 1) * batch * v.H, (size_t)batch * v.H * sizeof(float));
}

/* dh += the output gradient of step t. */
static void add_output_grad(const pst_model_layer_t *l, const rnn_view_t *v, const float *dy, int t,
                            int B)
{
    if (!l->spec.sequences && t != v->T - 1)
        return;
    for (int r = 0; r < B; r++) {
        const float *src =
            l->spec.sequences ? dy + ((size_t)r * v->T + t) * v->H : dy + (size_t)r * v->H;
        float *d = v->dh + (size_t)r * v->H;
        for (int j = 0; j < v->H; j++)
            d[j] += src[j];
    }
}

/* Undoes lstm step t: gate gradients into dgx's step block; dh, dc become the previous step's
 * (dh still without its recurrent-weight part, added by the caller). */
static void lstm_step_back(const rnn_view_t *v, int t, int B)
{
    int H = v->H, G = v->G;
    const float *g = v->gates + (size_t)t * B * G, *tc = v->tcs + (size_t)t * B * H;
    const float *c_prev = t > 0 ? v->cs + (size_t)(t - 1) * B * H : NULL;
    float *dg = v->dgx + (size_t)t * B * G;
    for (int r = 0; r < B; r++) {
        const float *gr = g + (size_t)r * G;
        float *dgr = dg + (size_t)r * G;
        for (int j = 0; j < H; j++) {
            size_t k = (size_t)r * H + j;
            float i = gr[j], f = gr[H + j], gg = gr[2 * H + j], o = gr[3 * H + j];
            float dh = v->dh[k];
            float dc = v->dc[k] + dh * o * (1.0f - tc[k] * tc[k]);
            dgr[j] = dc * gg * i * (1.0f - i);
            dgr[H + j] = c_prev ? dc * c_prev[k] * f * (1.0f - f) : 0.0f;
            dgr[2 * H + j] = dc * i * (1.0f - gg * gg);
            dgr[3 * H + j] = dh * tc[k] * o * (1.0f - o);
            v->dc[k] = dc * f;
            v->dh[k] = 0.0f;
        }
    }
}

static void gru_step_back(const rnn_view_t *v, int t, int B)
{
    int H = v->H, G = v->G;
    const float *g = v->gates + (size_t)t * B * G, *hn = v->cs + (size_t)t * B * H;
    const float *h_prev = t > 0 ? v->hs + (size_t)(t - 1) * B * H : NULL;
    float *dgx = v->dgx + (size_t)t * B * G, *dgh = v->dgh + (size_t)t * B * G;
    for (int r = 0; r < B; r++) {
        const float *gr = g + (size_t)r * G;
        float *dx = dgx + (size_t)r * G, *dhh = dgh + (size_t)r * G;
        for (int j = 0; j < H; j++) {
            size_t k = (size_t)r * H + j;
            float rr = gr[j], z = gr[H + j], n = gr[2 * H + j], dh = v->dh[k];
            float hp = h_prev ? h_prev[k] : 0.0f;
            float dz = dh * (hp - n) * z * (1.0f - z);
            float dn = dh * (1.0f - z) * (1.0f - n * n);
            float dr = dn * hn[k] * rr * (1.0f - rr);
            dx[j] = dhh[j] = dr;
            dx[H + j] = dhh[H + j] = dz;
            dx[2 * H + j] = dn;
            dhh[2 * H + j] = dn * rr;
            v->dh[k] = dh * z;
        }
    }
}

/* dW, db and dx from the gate gradients of every step, as whole-sequence sgemms. */
static void weight_grads(const pst_model_layer_t *l, const rnn_view_t *v, const float *w, float *dw,
                         float *db, float *dx, int B)
{
    int T = v->T, F = v->F, H = v->H, G = v->G, ld = F + H, rows = T * B;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, F, rows, 1.0f, v->dgx, G, v->xt, F,
                1.0f, dw, ld);
    if (T > 1) /* step t's recurrent gradient meets the state of step t - 1 */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, (T - 1) * B, 1.0f,
                    v->dgh + (size_t)B * G, G, v->hs, H, 1.0f, dw + F, ld);
    cblas_sgemv(CblasRowMajor, CblasTrans, rows, G, 1.0f, v->dgx, G, v->ones, 1, 1.0f, db, 1);
    if (l->spec.kind == PST_LAYER_GRU) /* b_hn sits inside the reset gate's product */
        cblas_sgemv(CblasRowMajor, CblasTrans, rows, H, 1.0f, v->dgh + 2 * H, G, v->ones, 1, 1.0f,
                    db + G, 1);
    if (dx == NULL)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, F, G, 1.0f, v->dgx, G, w, ld, 0.0f,
                v->dxt, F);
    to_batch_major(v->dxt, dx, B, T, F);
}

void pst_rnn_backward(const pst_model_layer_t *l, const float *w, const float *dy, float *dw,
                      float *db, float *dx, int batch)
{
    rnn_view_t v = view_of(l, batch);
    int H = v.H, G = v.G;
    memset(v.dh, 0, (size_t)batch * H * sizeof(float));
    memset(v.dc, 0, (size_t)batch * H * sizeof(float));
    for (int t = v.T - 1; t >= 0; t--) {
        add_output_grad(l, &v, dy, t, batch);
        if (l->spec.kind == PST_LAYER_LSTM)
            lstm_step_back(&v, t, batch);
        else
            gru_step_back(&v, t, batch);
        if (t > 0) /* dh_{t-1} += dgates_t W_h */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, H, G, 1.0f,
                        v.dgh + (size_t)t * batch * G, G, w + v.F, v.F + H, 1.0f, v.dh, H);
    }
    weight_grads(l, &v, w, dw, db, dx, batch);
}
