/* Convolution and pooling over (batch, C, H, W) tensors: shapes, im2col lowering to one sgemm per
 * batch, and the pools' forward and backward passes. */
#include "worker/model/model_internal.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

/* Every side is capped so that products of shapes and the batch stay far inside size_t and the
 * int32 offsets of maxpool. */
#define MAX_SIDE 65536
#define MAX_IMAGE_FLOATS (1 << 28)

static int conv_out_side(int in, int k, int stride, int pad)
{
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

static int out_of_range(int v, int lo, int hi)
{
    return v < lo || v > hi;
}

static int shape_conv(pst_model_layer_t *l, int i, const int *in, pst_err_t *err)
{
    const pst_layer_spec_t *s = &l->spec;
    int stride = s->stride > 0 ? s->stride : 1;
    if (out_of_range(s->channels, 1, MAX_SIDE) || out_of_range(s->kernel, 1, 64) ||
        out_of_range(stride, 1, 64) || out_of_range(s->pad, 0, s->kernel - 1))
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: conv2d needs channels in [1, %d], kernel in [1, 64], stride "
                           "in [1, 64] and padding in [0, kernel-1]; got %d, %d, %d, %d",
                           i, MAX_SIDE, s->channels, s->kernel, stride, s->pad);
    int oh = conv_out_side(in[1], s->kernel, stride, s->pad);
    int ow = conv_out_side(in[2], s->kernel, stride, s->pad);
    if (oh < 1 || ow < 1)
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: conv2d kernel %d does not fit the %dx%d input (padding %d)",
                           i, s->kernel, in[1], in[2], s->pad);
    l->out_shape[0] = s->channels;
    l->out_shape[1] = oh;
    l->out_shape[2] = ow;
    return PST_OK;
}

static int shape_pool(pst_model_layer_t *l, int i, const int *in, pst_err_t *err)
{
    const pst_layer_spec_t *s = &l->spec;
    int stride = s->stride > 0 ? s->stride : s->kernel;
    if (out_of_range(s->kernel, 1, 64) || out_of_range(stride, 1, 64))
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: %s needs kernel and stride in [1, 64]; got %d, %d", i,
                           pst_layer_kind_name(s->kind), s->kernel, stride);
    int oh = conv_out_side(in[1], s->kernel, stride, 0);
    int ow = conv_out_side(in[2], s->kernel, stride, 0);
    if (oh < 1 || ow < 1)
        return pst_err_set(err, PST_EINVAL, "layer %d: %s window %d does not fit the %dx%d input",
                           i, pst_layer_kind_name(s->kind), s->kernel, in[1], in[2]);
    l->out_shape[0] = in[0];
    l->out_shape[1] = oh;
    l->out_shape[2] = ow;
    return PST_OK;
}

/* The input layer checks the declared image against the flat width, or infers a square one. */
static int shape_input(pst_model_layer_t *l, int i, const int *in, pst_err_t *err)
{
    const pst_layer_spec_t *s = &l->spec;
    int flat = in[0] * in[1] * in[2];
    int c = s->channels > 0 ? s->channels : 1, h = s->height, w = s->width;
    if (h == 0 && w == 0) {
        int side = 0;
        while ((long)(side + 1) * (side + 1) * c <= flat)
            side++;
        h = w = side;
    }
    if (c < 1 || h < 1 || w < 1 || (long)c * h * w != flat)
        return pst_err_set(err, PST_EINVAL,
                           "layer %d: an input of %d values is not a %dx%dx%d image "
                           "(set data.image_shape: [channels, height, width])",
                           i, flat, c, h, w);
    l->out_shape[0] = c;
    l->out_shape[1] = h;
    l->out_shape[2] = w;
    return PST_OK;
}

int pst_spatial_shape(pst_model_layer_t *l, int i, pst_err_t *err)
{
    const int *in = l->in_shape;
    if ((long)in[0] * in[1] * in[2] > MAX_IMAGE_FLOATS || out_of_range(in[1], 1, MAX_SIDE))
        return pst_err_set(err, PST_EINVAL, "layer %d: input %dx%dx%d is too large", i, in[0],
                           in[1], in[2]);
    int rc = PST_OK;
    switch (l->spec.kind) {
    case PST_LAYER_INPUT:
        rc = shape_input(l, i, in, err);
        break;
    case PST_LAYER_CONV2D:
        rc = shape_conv(l, i, in, err);
        break;
    case PST_LAYER_MAXPOOL2D:
    case PST_LAYER_AVGPOOL2D:
        rc = shape_pool(l, i, in, err);
        break;
    case PST_LAYER_GLOBAL_AVGPOOL:
        l->out_shape[0] = in[0];
        l->out_shape[1] = l->out_shape[2] = 1;
        break;
    case PST_LAYER_FLATTEN:
        l->out_shape[0] = in[0] * in[1] * in[2];
        l->out_shape[1] = l->out_shape[2] = 1;
        break;
    default:
        memcpy(l->out_shape, in, sizeof l->out_shape);
        break;
    }
    if (rc == PST_OK &&
        (long)l->out_shape[0] * l->out_shape[1] * l->out_shape[2] > MAX_IMAGE_FLOATS)
        return pst_err_set(err, PST_EINVAL, "layer %d: output is too large", i);
    return rc;
}

static size_t window_rows(const pst_model_layer_t *l)
{
    return (size_t)l->in_shape[0] * (size_t)l->spec.kernel * (size_t)l->spec.kernel;
}

static size_t out_pixels(const pst_model_layer_t *l)
{
    return (size_t)l->out_shape[1] * (size_t)l->out_shape[2];
}

size_t pst_spatial_col_floats(const pst_model_layer_t *l, int max_batch)
{
    if (l->spec.kind != PST_LAYER_CONV2D)
        return 0;
    return window_rows(l) * (size_t)max_batch * out_pixels(l);
}

size_t pst_spatial_tmp_floats(const pst_model_layer_t *l, int max_batch)
{
    if (l->spec.kind != PST_LAYER_CONV2D)
        return 0;
    return (size_t)l->out_shape[0] * (size_t)max_batch * out_pixels(l);
}

/* ---- convolution ---- */

typedef struct geom {
    int c, h, w; /* input */
    int k, stride, pad;
    int oh, ow;       /* output side */
    size_t p, n_cols; /* output pixels per image, and over the batch */
} geom_t;

static geom_t geometry(const pst_model_layer_t *l, int batch)
{
    geom_t g = {l->in_shape[0],
                l->in_shape[1],
                l->in_shape[2],
                l->spec.kernel,
                l->spec.stride > 0 ? l->spec.stride : 1,
                l->spec.pad,
                l->out_shape[1],
                l->out_shape[2],
                0,
                0};
    g.p = (size_t)g.oh * (size_t)g.ow;
    g.n_cols = g.p * (size_t)batch;
    return g;
}

/* Stride 1: the outputs ox in [lo, hi) read inside the row at window column kx. */
static void valid_span(const geom_t *g, int kx, int *lo, int *hi)
{
    int first = g->pad - kx, last = g->w + g->pad - kx; /* ox with 0 <= ox - pad + kx < w */
    *lo = first < 0 ? 0 : first > g->ow ? g->ow : first;
    *hi = last > g->ow ? g->ow : last;
    *hi = *hi < *lo ? *lo : *hi;
}

/* One row of the lowered matrix, for input channel plane xc and window offset (ky, kx), image n:
 * dst[oy * ow + ox] = xc[oy * stride - pad + ky][ox * stride - pad + kx], 0 outside. */
static void lower_plane(const geom_t *g, const float *xc, int ky, int kx, float *dst)
{
    for (int oy = 0; oy < g->oh; oy++) {
        float *d = dst + (size_t)oy * g->ow;
        int iy = oy * g->stride - g->pad + ky;
        if (iy < 0 || iy >= g->h) {
            memset(d, 0, (size_t)g->ow * sizeof(float));
            continue;
        }
        const float *row = xc + (size_t)iy * g->w;
        if (g->stride == 1) { /* a contiguous run between zero margins */
            int lo, hi;
            valid_span(g, kx, &lo, &hi);
            memset(d, 0, (size_t)lo * sizeof(float));
            if (hi > lo)
                memcpy(d + lo, row + lo - g->pad + kx, (size_t)(hi - lo) * sizeof(float));
            memset(d + hi, 0, (size_t)(g->ow - hi) * sizeof(float));
            continue;
        }
        for (int ox = 0; ox < g->ow; ox++) {
            int ix = ox * g->stride - g->pad + kx;
            d[ox] = ix >= 0 && ix < g->w ? row[ix] : 0.0f;
        }
    }
}

/* col (c*k*k, batch*p): row (ch*k + ky)*k + kx, column n*p + pixel. */
static void im2col(const geom_t *g, const float *x, int batch, float *col)
{
    size_t plane = (size_t)g->h * g->w;
    for (int ch = 0; ch < g->c; ch++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *dst = col + ((size_t)(ch * g->k + ky) * g->k + kx) * g->n_cols;
                for (int n = 0; n < batch; n++)
                    lower_plane(g, x + ((size_t)n * g->c + ch) * plane, ky, kx, dst + n * g->p);
            }
}

/* The adjoint of lower_plane: adds src back into the input positions it was read from. */
static void raise_plane(const geom_t *g, const float *src, int ky, int kx, float *xc)
{
    for (int oy = 0; oy < g->oh; oy++) {
        int iy = oy * g->stride - g->pad + ky;
        if (iy < 0 || iy >= g->h)
            continue;
        const float *s = src + (size_t)oy * g->ow;
        float *row = xc + (size_t)iy * g->w;
        if (g->stride == 1) {
            int lo, hi;
            valid_span(g, kx, &lo, &hi);
            float *r = row - g->pad + kx;
            for (int ox = lo; ox < hi; ox++)
                r[ox] += s[ox];
            continue;
        }
        for (int ox = 0; ox < g->ow; ox++) {
            int ix = ox * g->stride - g->pad + kx;
            if (ix >= 0 && ix < g->w)
                row[ix] += s[ox];
        }
    }
}

static void col2im(const geom_t *g, const float *col, int batch, float *dx)
{
    size_t plane = (size_t)g->h * g->w;
    memset(dx, 0, (size_t)batch * g->c * plane * sizeof(float));
    for (int ch = 0; ch < g->c; ch++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                const float *src = col + ((size_t)(ch * g->k + ky) * g->k + kx) * g->n_cols;
                for (int n = 0; n < batch; n++)
                    raise_plane(g, src + n * g->p, ky, kx, dx + ((size_t)n * g->c + ch) * plane);
            }
}

void pst_conv_forward(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                      int batch, float *tmp)
{
    geom_t g = geometry(l, batch);
    int oc = l->out_shape[0], rows = (int)window_rows(l);
    im2col(&g, x, batch, l->col);
    /* tmp (oc, batch*p) = W (oc, c*k*k) col (c*k*k, batch*p) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, (int)g.n_cols, rows, 1.0f, w, rows,
                l->col, (int)g.n_cols, 0.0f, tmp, (int)g.n_cols);
    for (int n = 0; n < batch; n++)
        for (int o = 0; o < oc; o++) {
            const float *src = tmp + (size_t)o * g.n_cols + n * g.p;
            float *dst = l->buf + ((size_t)n * oc + o) * g.p, bias = b[o];
            for (size_t i = 0; i < g.p; i++)
                dst[i] = src[i] + bias;
        }
}

void pst_conv_backward(const pst_model_layer_t *l, const float *w, const float *dy, float *dw,
                       float *db, float *dx, int batch, float *tmp, float *dcol)
{
    geom_t g = geometry(l, batch);
    int oc = l->out_shape[0], rows = (int)window_rows(l);
    for (int o = 0; o < oc; o++) {
        float sum = 0.0f;
        for (int n = 0; n < batch; n++) {
            const float *src = dy + ((size_t)n * oc + o) * g.p;
            float *dst = tmp + (size_t)o * g.n_cols + n * g.p;
            for (size_t i = 0; i < g.p; i++) {
                dst[i] = src[i];
                sum += src[i];
            }
        }
        db[o] += sum;
    }
    /* dW (oc, c*k*k) += tmp (oc, batch*p) col^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, rows, (int)g.n_cols, 1.0f, tmp,
                (int)g.n_cols, l->col, (int)g.n_cols, 1.0f, dw, rows);
    if (dx == NULL)
        return;
    /* dcol (c*k*k, batch*p) = W^T tmp */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, (int)g.n_cols, oc, 1.0f, w, rows,
                tmp, (int)g.n_cols, 0.0f, dcol, (int)g.n_cols);
    col2im(&g, dcol, batch, dx);
}

/* ---- pooling ---- */

static void maxpool_forward(pst_model_layer_t *l, const float *x, int batch)
{
    geom_t g = geometry(l, batch);
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : k;
    size_t plane = (size_t)g.h * g.w;
    for (size_t nc = 0; nc < (size_t)batch * g.c; nc++) {
        const float *xc = x + nc * plane;
        float *y = l->buf + nc * g.p;
        int32_t *arg = l->argmax + nc * g.p;
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                int best = (oy * stride) * g.w + ox * stride;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int at = (oy * stride + ky) * g.w + ox * stride + kx;
                        best = xc[at] > xc[best] ? at : best;
                    }
                y[oy * g.ow + ox] = xc[best];
                arg[oy * g.ow + ox] = best;
            }
    }
}

static void avgpool_forward(pst_model_layer_t *l, const float *x, int batch)
{
    geom_t g = geometry(l, batch);
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : k;
    size_t plane = (size_t)g.h * g.w;
    float inv = 1.0f / (float)(k * k);
    for (size_t nc = 0; nc < (size_t)batch * g.c; nc++) {
        const float *xc = x + nc * plane;
        float *y = l->buf + nc * g.p;
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        sum += xc[(oy * stride + ky) * g.w + ox * stride + kx];
                y[oy * g.ow + ox] = sum * inv;
            }
    }
}

static void global_avgpool_forward(pst_model_layer_t *l, const float *x, int batch)
{
    size_t plane = (size_t)l->in_shape[1] * l->in_shape[2];
    float inv = 1.0f / (float)plane;
    for (size_t nc = 0; nc < (size_t)batch * l->in_shape[0]; nc++) {
        float sum = 0.0f;
        for (size_t i = 0; i < plane; i++)
            sum += x[nc * plane + i];
        l->buf[nc] = sum * inv;
    }
}

void pst_pool_forward(pst_model_layer_t *l, const float *x, int batch)
{
    if (l->spec.kind == PST_LAYER_MAXPOOL2D)
        maxpool_forward(l, x, batch);
    else if (l->spec.kind == PST_LAYER_AVGPOOL2D)
        avgpool_forward(l, x, batch);
    else
        global_avgpool_forward(l, x, batch);
}

static void avgpool_backward(const pst_model_layer_t *l, const float *dy, float *dx, int batch)
{
    geom_t g = geometry(l, batch);
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : k;
    size_t plane = (size_t)g.h * g.w;
    float inv = 1.0f / (float)(k * k);
    for (size_t nc = 0; nc < (size_t)batch * g.c; nc++) {
        float *xc = dx + nc * plane;
        const float *d = dy + nc * g.p;
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                float share = d[oy * g.ow + ox] * inv;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        xc[(oy * stride + ky) * g.w + ox * stride + kx] += share;
            }
    }
}

void pst_pool_backward(const pst_model_layer_t *l, const float *dy, float *dx, int batch)
{
    size_t plane = (size_t)l->in_shape[1] * l->in_shape[2];
    size_t planes = (size_t)batch * l->in_shape[0];
    memset(dx, 0, planes * plane * sizeof(float));
    if (l->spec.kind == PST_LAYER_MAXPOOL2D) {
        size_t p = out_pixels(l);
        for (size_t nc = 0; nc < planes; nc++)
            for (size_t i = 0; i < p; i++)
                dx[nc * plane + (size_t)l->argmax[nc * p + i]] += dy[nc * p + i];
    } else if (l->spec.kind == PST_LAYER_AVGPOOL2D) {
        avgpool_backward(l, dy, dx, batch);
    } else {
        float inv = 1.0f / (float)plane;
        for (size_t nc = 0; nc < planes; nc++)
            for (size_t i = 0; i < plane; i++)
                dx[nc * plane + i] = dy[nc] * inv;
    }
}
