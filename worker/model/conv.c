/* conv2d forward and backward, image by image: im2col lowering into one image's block, then
 * sgemm straight into and out of the (batch, C, H, W) tensors. */
#include "worker/model/model_internal.h"

#include <cblas.h>
#include <string.h>

/* Working image by image keeps one image's lowered input (c*k*k x oh*ow floats, 225 KB for the
 * second layer of a Fashion-MNIST CNN) in the L2 cache between the lowering and the sgemm that
 * reads it, and lets the sgemm write its (oc, oh*ow) product straight into the image's rows of the
 * output: a lowering over the whole batch makes a product in (oc, batch*oh*ow) order that has to
 * be transposed into place, and a gradient that has to be transposed back. Measured on this
 * machine, sgemm runs as fast on these per-image shapes as on the batched ones. */

static size_t window_rows(const pst_model_layer_t *l)
{
    return (size_t)l->in_shape[0] * (size_t)l->spec.kernel * (size_t)l->spec.kernel;
}

size_t pst_spatial_col_floats(const pst_model_layer_t *l, int max_batch)
{
    if (l->spec.kind != PST_LAYER_CONV2D)
        return 0;
    return window_rows(l) * (size_t)max_batch * pst_spatial_geometry(l).p;
}

size_t pst_spatial_tmp_floats(const pst_model_layer_t *l)
{
    if (l->spec.kind != PST_LAYER_CONV2D)
        return 0;
    return window_rows(l) * pst_spatial_geometry(l).p;
}

/* Fixed-length inner loops, which the compiler vectorises at -O2 (its cost model rejects loops of
 * unknown length); the sum keeps 8 partial sums, so its order is fixed and needs no -ffast-math. */
#define BLOCK 8

static void fill(float *restrict y, float v, int n)
{
    int i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (int j = 0; j < BLOCK; j++)
            y[i + j] = v;
    for (; i < n; i++)
        y[i] = v;
}

/* y += x */
static void add(float *restrict y, const float *restrict x, int n)
{
    int i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (int j = 0; j < BLOCK; j++)
            y[i + j] += x[i + j];
    for (; i < n; i++)
        y[i] += x[i];
}

static float sum(const float *restrict x, int n)
{
    float part[BLOCK] = {0};
    int i = 0;
    for (; i + BLOCK <= n; i += BLOCK)
        for (int j = 0; j < BLOCK; j++)
            part[j] += x[i + j];
    for (; i < n; i++)
        part[0] += x[i];
    return ((part[0] + part[4]) + (part[1] + part[5])) +
           ((part[2] + part[6]) + (part[3] + part[7]));
}

/* Stride 1: the outputs ox in [lo, hi) read inside the row at window column kx. */
static void valid_span(const pst_spatial_geom_t *g, int kx, int *lo, int *hi)
{
    int first = g->pad - kx, last = g->w + g->pad - kx; /* ox with 0 <= ox - pad + kx < w */
    *lo = first < 0 ? 0 : first > g->ow ? g->ow : first;
    *hi = last > g->ow ? g->ow : last;
    *hi = *hi < *lo ? *lo : *hi;
}

/* One row of the lowered matrix, for input channel plane xc and window offset (ky, kx):
 * dst[oy * ow + ox] = xc[oy * stride - pad + ky][ox * stride - pad + kx], 0 outside. */
static void lower_plane(const pst_spatial_geom_t *g, const float *xc, int ky, int kx, float *dst)
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
            for (int ox = 0; ox < lo; ox++) /* margins are a pixel or two: no calls */
                d[ox] = 0.0f;
            if (hi > lo)
                memcpy(d + lo, row + lo - g->pad + kx, (size_t)(hi - lo) * sizeof(float));
            for (int ox = hi; ox < g->ow; ox++)
                d[ox] = 0.0f;
            continue;
        }
        for (int ox = 0; ox < g->ow; ox++) {
            int ix = ox * g->stride - g->pad + kx;
            d[ox] = ix >= 0 && ix < g->w ? row[ix] : 0.0f;
        }
    }
}

/* One image: col (c*k*k, p), row (ch*k + ky)*k + kx. */
static void im2col(const pst_spatial_geom_t *g, const float *x, float *col)
{
    size_t plane = (size_t)g->h * g->w;
    for (int ch = 0; ch < g->c; ch++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++)
                lower_plane(g, x + ch * plane, ky, kx,
                            col + ((size_t)(ch * g->k + ky) * g->k + kx) * g->p);
}

/* The adjoint of lower_plane: adds src back into the input positions it was read from. */
static void raise_plane(const pst_spatial_geom_t *g, const float *src, int ky, int kx, float *xc)
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
            add(row - g->pad + kx + lo, s + lo, hi - lo);
            continue;
        }
        for (int ox = 0; ox < g->ow; ox++) {
            int ix = ox * g->stride - g->pad + kx;
            if (ix >= 0 && ix < g->w)
                row[ix] += s[ox];
        }
    }
}

/* One image: dx (c, h, w) = the sum of col's rows over the positions they were lowered from. */
static void col2im(const pst_spatial_geom_t *g, const float *col, float *dx)
{
    size_t plane = (size_t)g->h * g->w;
    memset(dx, 0, (size_t)g->c * plane * sizeof(float));
    for (int ch = 0; ch < g->c; ch++)
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++)
                raise_plane(g, col + ((size_t)(ch * g->k + ky) * g->k + kx) * g->p, ky, kx,
                            dx + ch * plane);
}

void pst_conv_forward_image(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                            int n)
{
    pst_spatial_geom_t g = pst_spatial_geometry(l);
    int oc = l->out_shape[0], rows = (int)window_rows(l), p = (int)g.p;
    float *col = l->col + (size_t)n * rows * g.p, *y = l->buf + (size_t)n * l->out;
    im2col(&g, x + (size_t)n * l->in, col);
    for (int o = 0; o < oc; o++) /* the bias, which the product adds to (beta = 1) */
        fill(y + (size_t)o * p, b[o], p);
    /* y (oc, p) += W (oc, c*k*k) col (c*k*k, p) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, oc, p, rows, 1.0f, w, rows, col, p, 1.0f,
                y, p);
}

void pst_conv_forward(pst_model_layer_t *l, const float *w, const float *b, const float *x,
                      int batch)
{
    for (int n = 0; n < batch; n++)
        pst_conv_forward_image(l, w, b, x, n);
}

void pst_conv_backward(const pst_model_layer_t *l, const float *w, const float *dy, float *dw,
                       float *db, float *dx, int batch, float *tmp)
{
    pst_spatial_geom_t g = pst_spatial_geometry(l);
    int oc = l->out_shape[0], rows = (int)window_rows(l), p = (int)g.p;
    size_t in_floats = (size_t)l->in, out_floats = (size_t)l->out, col_floats = (size_t)rows * g.p;
    for (int n = 0; n < batch; n++) {
        const float *d = dy + n * out_floats, *col = l->col + n * col_floats;
        for (int o = 0; o < oc; o++)
            db[o] += sum(d + (size_t)o * p, p);
        /* dW (oc, c*k*k) += dy (oc, p) col^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, oc, rows, p, 1.0f, d, p, col, p, 1.0f,
                    dw, rows);
        if (dx == NULL)
            continue;
        /* tmp (c*k*k, p) = W^T dy, then scattered back onto the image */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, p, oc, 1.0f, w, rows, d, p, 0.0f,
                    tmp, p);
        col2im(&g, tmp, dx + n * in_floats);
    }
}
