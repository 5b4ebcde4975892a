/* Spatial layers over (batch, C, H, W) tensors: the shapes of every spatial layer and the pools'
 * forward and backward passes (convolution itself is conv.c). */
#include "worker/model/model_internal.h"

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

static size_t out_pixels(const pst_model_layer_t *l)
{
    return (size_t)l->out_shape[1] * (size_t)l->out_shape[2];
}

pst_spatial_geom_t pst_spatial_geometry(const pst_model_layer_t *l)
{
    pst_spatial_geom_t g = {l->in_shape[0],
                            l->in_shape[1],
                            l->in_shape[2],
                            l->spec.kernel,
                            l->spec.stride > 0 ? l->spec.stride : 1,
                            l->spec.pad,
                            l->out_shape[1],
                            l->out_shape[2],
                            0};
    g.p = (size_t)g.oh * (size_t)g.ow;
    return g;
}

/* ---- pooling ---- */

void pst_maxpool_planes(pst_model_layer_t *l, const float *x, size_t first, size_t count)
{
    pst_spatial_geom_t g = pst_spatial_geometry(l);
    int k = l->spec.kernel, stride = l->spec.stride > 0 ? l->spec.stride : k;
    size_t plane = (size_t)g.h * g.w;
    for (size_t nc = first; nc < first + count; nc++) {
        const float *xc = x + nc * plane;
        float *y = l->buf + nc * g.p;
        int32_t *arg = l->argmax + nc * g.p;
        if (k == 2 && stride == 2) {
            pst_maxpool2x2_forward_plane(&g, xc, y, arg); /* pool2x2.c */
            continue;
        }
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
    pst_spatial_geom_t g = pst_spatial_geometry(l);
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
        pst_maxpool_planes(l, x, 0, (size_t)batch * (size_t)l->in_shape[0]);
    else if (l->spec.kind == PST_LAYER_AVGPOOL2D)
        avgpool_forward(l, x, batch);
    else
        global_avgpool_forward(l, x, batch);
}

static void avgpool_backward(const pst_model_layer_t *l, const float *dy, float *dx, int batch)
{
    pst_spatial_geom_t g = pst_spatial_geometry(l);
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
