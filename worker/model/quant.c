/* Post-training quantisation: per-output-channel int8 weights of the dense and conv2d layers and
 * each layer's input scale calibrated on sample rows through the float model. */
#include "worker/model/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/model/model_internal.h"

#define HIST_BINS 4096

float pst_quant_scale(float max_abs)
{
    return max_abs > 0.0f && isfinite(max_abs) ? max_abs / (float)PST_QUANT_MAX : 1.0f;
}

/* Adding and removing 1.5 * 2^23 rounds a float of magnitude under 2^22 to the nearest integer,
 * ties to even, as lrintf does, in plain float arithmetic (no libm call, vectorisable); the
 * result is a whole number, so the conversion truncates nothing. */
#define ROUNDING_MAGIC 12582912.0f

static void quant_span(const float *restrict x, size_t n, float inv, int8_t *restrict q)
{
    const float lim = (float)PST_QUANT_MAX;
    for (size_t i = 0; i < n; i++) {
        float v = x[i] * inv;
        v = v > lim ? lim : v;
        v = v < -lim ? -lim : v;
        q[i] = (int8_t)(int)((v + ROUNDING_MAGIC) - ROUNDING_MAGIC);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 32 values a step: scale, clamp, convert (rounding to nearest even, as the span does), then
 * narrow to int8; the packs interleave 128-bit lanes, and the permute puts them back in order. */
__attribute__((target("avx2"))) static size_t quant_avx2(const float *x, size_t n, float inv,
                                                         int8_t *q)
{
    const __m256 s = _mm256_set1_ps(inv), hi = _mm256_set1_ps((float)PST_QUANT_MAX),
                 lo = _mm256_set1_ps(-(float)PST_QUANT_MAX);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int j = 0; j < 4; j++) {
            __m256 f = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), s);
            v[j] = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(f, hi), lo));
        }
        __m256i packed =
            _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(packed, order));
    }
    return i;
}
#endif

void pst_quant_values(const float *x, size_t n, float scale, int8_t *q)
{
    float inv = 1.0f / scale;
    size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2"))
        i = quant_avx2(x, n, inv, q);
#endif
    quant_span(x + i, n - i, inv, q + i); /* inputs are finite: checked when data is read */
}

void pst_quant_row(const float *w, size_t n, int8_t *q, float *scale)
{
    float max_abs = 0.0f;
    for (size_t i = 0; i < n; i++)
        max_abs = fabsf(w[i]) > max_abs ? fabsf(w[i]) : max_abs;
    *scale = pst_quant_scale(max_abs);
    pst_quant_values(w, n, *scale, q);
}

void pst_quant_destroy(pst_quant_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_quant_t *q = *self_p;
    for (int i = 0; i < q->n_layers; i++) {
        free(q->layers[i].w);
        free(q->layers[i].w_scale);
    }
    free(q->layers);
    free(q);
    *self_p = NULL;
}

/* A quantisation with room for n layers, their arrays still unallocated. */
static pst_quant_t *quant_alloc(int n)
{
    pst_quant_t *q = calloc(1, sizeof *q);
    if (q && !(q->layers = calloc(n > 0 ? (size_t)n : 1, sizeof *q->layers)))
        pst_quant_destroy(&q);
    if (q)
        q->n_layers = n;
    return q;
}

static int layer_alloc(pst_quant_layer_t *ql)
{
    size_t n = (size_t)ql->rows * (size_t)ql->cols;
    ql->w = malloc(n ? n : 1);
    ql->w_scale = malloc((size_t)ql->rows * sizeof(float) + 1);
    return ql->w && ql->w_scale ? PST_OK : PST_ENOMEM;
}

pst_quant_t *pst_quant_copy(const pst_quant_t *src)
{
    pst_quant_t *q = quant_alloc(src->n_layers);
    if (!q)
        return NULL;
    memcpy(q->rule, src->rule, sizeof q->rule);
    q->calib_rows = src->calib_rows;
    for (int i = 0; i < src->n_layers; i++) {
        const pst_quant_layer_t *s = &src->layers[i];
        pst_quant_layer_t *d = &q->layers[i];
        *d = (pst_quant_layer_t){s->layer, s->offset, s->rows, s->cols, NULL, NULL, s->in_scale};
        if (layer_alloc(d) != PST_OK) {
            pst_quant_destroy(&q);
            return NULL;
        }
        memcpy(d->w, s->w, (size_t)s->rows * (size_t)s->cols);
        memcpy(d->w_scale, s->w_scale, (size_t)s->rows * sizeof(float));
    }
    return q;
}

void pst_quant_dequantize(const pst_quant_t *q, float *params)
{
    for (int i = 0; i < q->n_layers; i++) {
        const pst_quant_layer_t *ql = &q->layers[i];
        float *w = params + ql->offset;
        for (int r = 0; r < ql->rows; r++)
            for (int c = 0; c < ql->cols; c++) {
                size_t at = (size_t)r * ql->cols + c;
                w[at] = (float)ql->w[at] * ql->w_scale[r];
            }
    }
}

/* ---- calibration ---- */

/* Per quantised layer: the largest |input| and, for a percentile, a histogram over [0, max]. */
typedef struct calib {
    pst_model_t *model;
    const pst_quant_t *q;
    float *max_abs; // (n_layers)
    uint64_t *hist; // (n_layers, HIST_BINS) or NULL
    const float *x; // (n_rows, n_inputs)
    size_t n_rows;
} calib_t;

typedef void calib_fn(calib_t *c, int j, const float *in, size_t n);

static void track_max(calib_t *c, int j, const float *in, size_t n)
{
    float m = c->max_abs[j];
    for (size_t i = 0; i < n; i++)
        m = fabsf(in[i]) > m ? fabsf(in[i]) : m;
    c->max_abs[j] = m;
}

static void track_hist(calib_t *c, int j, const float *in, size_t n)
{
    uint64_t *h = c->hist + (size_t)j * HIST_BINS;
    float per_bin = c->max_abs[j] > 0.0f ? HIST_BINS / c->max_abs[j] : 0.0f;
    for (size_t i = 0; i < n; i++) {
        size_t bin = (size_t)(fabsf(in[i]) * per_bin);
        h[bin < HIST_BINS ? bin : HIST_BINS - 1]++;
    }
}

/* Runs the calibration rows through the float model, calling fn on each quantised layer's input. */
static int calib_pass(calib_t *c, calib_fn *fn, pst_err_t *err)
{
    int chunk = c->model->max_batch, d = c->model->n_inputs;
    for (size_t first = 0; first < c->n_rows; first += (size_t)chunk) {
        int n = c->n_rows - first < (size_t)chunk ? (int)(c->n_rows - first) : chunk;
        if (!pst_model_forward(c->model, c->x + first * (size_t)d, n, false, NULL))
            return pst_err_set(err, PST_EINVAL, "quantize: forward of %d rows failed", n);
        for (int j = 0; j < c->q->n_layers; j++) {
            const pst_model_layer_t *l = &c->model->layers[c->q->layers[j].layer];
            fn(c, j, l->input, (size_t)n * (size_t)l->in);
        }
    }
    return PST_OK;
}

/* The smallest value below which a fraction p of the histogram's mass lies (a bin's upper edge). */
static float hist_percentile(const uint64_t *h, float max_abs, double p)
{
    uint64_t total = 0;
    for (int b = 0; b < HIST_BINS; b++)
        total += h[b];
    double want = p / 100.0 * (double)total, seen = 0.0;
    for (int b = 0; b < HIST_BINS; b++) {
        seen += (double)h[b];
        if (seen >= want)
            return max_abs * (float)(b + 1) / HIST_BINS;
    }
    return max_abs;
}

static int calibrate(calib_t *c, double percentile, pst_err_t *err)
{
    int n = c->q->n_layers;
    if (!(c->max_abs = calloc((size_t)n + 1, sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "quantize: out of memory");
    int rc = calib_pass(c, track_max, err);
    if (rc != PST_OK || percentile >= 100.0)
        return rc;
    if (!(c->hist = calloc((size_t)n * HIST_BINS, sizeof(uint64_t))))
        return pst_err_set(err, PST_ENOMEM, "quantize: out of memory");
    if ((rc = calib_pass(c, track_hist, err)) != PST_OK)
        return rc;
    for (int j = 0; j < n; j++)
        c->max_abs[j] = hist_percentile(c->hist + (size_t)j * HIST_BINS, c->max_abs[j], percentile);
    return PST_OK;
}

/* ---- building the quantisation ---- */

/* Dense layers, and conv2d layers whose window holds at least PST_QUANT_MIN_WINDOW values: the
 * int8 kernel works in blocks of 32, and a smaller window (a first layer over one channel) would
 * run its scalar tail only, slower than the float sgemm, for a few hundred weights' saving. */
static bool quantizable(const pst_model_t *m, const pst_model_layer_t *l)
{
    return l->spec.kind == PST_LAYER_DENSE ||
           (l->spec.kind == PST_LAYER_CONV2D &&
            m->tensors[l->w_tensor].cols >= PST_QUANT_MIN_WINDOW);
}

bool pst_quant_layer_quantizable(const pst_model_t *m, int i)
{
    return quantizable(m, &m->layers[i]);
}

static int count_quantizable(const pst_model_t *m)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        n += quantizable(m, &m->layers[i]);
    return n;
}

static int quantize_weights(pst_model_t *m, pst_quant_t *q)
{
    int j = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const pst_model_layer_t *l = &m->layers[i];
        if (!quantizable(m, l))
            continue;
        const pst_tensor_info_t *t = &m->tensors[l->w_tensor];
        pst_quant_layer_t *ql = &q->layers[j++];
        *ql = (pst_quant_layer_t){i, t->offset, t->rows, t->cols, NULL, NULL, 1.0f};
        if (layer_alloc(ql) != PST_OK)
            return PST_ENOMEM;
        for (int r = 0; r < t->rows; r++)
            pst_quant_row(m->params + t->offset + (size_t)r * t->cols, (size_t)t->cols,
                          ql->w + (size_t)r * t->cols, &ql->w_scale[r]);
    }
    return PST_OK;
}

pst_quant_t *pst_quant_new(pst_model_t *model, const float *x, size_t n_rows, double percentile,
                           pst_err_t *err)
{
    if (n_rows == 0 || !(percentile > 0.0 && percentile <= 100.0)) {
        pst_err_set(err, PST_EINVAL,
                    n_rows == 0 ? "quantize: no calibration rows"
                                : "quantize: percentile %g outside (0, 100]",
                    percentile);
        return NULL;
    }
    pst_quant_t *q = quant_alloc(count_quantizable(model));
    if (!q || quantize_weights(model, q) != PST_OK) {
        pst_err_set(err, PST_ENOMEM, "quantize: out of memory");
        pst_quant_destroy(&q);
        return NULL;
    }
    if (percentile >= 100.0)
        snprintf(q->rule, sizeof q->rule, "max");
    else
        snprintf(q->rule, sizeof q->rule, "p%g", percentile);
    q->calib_rows = n_rows;
    calib_t c = {.model = model, .q = q, .x = x, .n_rows = n_rows};
    int rc = calibrate(&c, percentile, err);
    for (int j = 0; rc == PST_OK && j < q->n_layers; j++)
        q->layers[j].in_scale = pst_quant_scale(c.max_abs[j]);
    free(c.max_abs);
    free(c.hist);
    if (rc != PST_OK)
        pst_quant_destroy(&q);
    return q;
}
