/* The conv2d - relu - maxpool2d block run as one: image by image forward, and the pool's and the
 * ReLU's backward passes as one write. */
#include "worker/model/model_internal.h"

#include <string.h>

/* Why: run layer by layer, a block of a Fashion-MNIST CNN streams its largest tensor (the first
 * convolution's output, 6.4 MB for a batch of 64) through memory once per layer: written by the
 * convolution, read and written by the ReLU, read by the pool; and in backward written (zeroed,
 * then scattered into) by the pool and read and written by the ReLU. Image by image the 100 KB an
 * image produces is still in cache when the ReLU and the pool read it, and backward writes the
 * gradient once. Every value is computed by the same operations in the same order as layer by
 * layer, so results are bit for bit those of the separate layers. */

bool pst_convblock_fuses(const pst_model_t *m, int i)
{
    return i + 2 < m->n_layers && m->layers[i].spec.kind == PST_LAYER_CONV2D &&
           m->layers[i + 1].spec.kind == PST_LAYER_RELU &&
           m->layers[i + 2].spec.kind == PST_LAYER_MAXPOOL2D;
}

void pst_convblock_forward(pst_model_t *m, int i, const float *x, int batch)
{
    pst_model_layer_t *conv = &m->layers[i], *relu = &m->layers[i + 1], *pool = &m->layers[i + 2];
    const float *w = m->params + m->tensors[conv->w_tensor].offset;
    const float *b = m->params + m->tensors[conv->w_tensor + 1].offset;
    size_t out = (size_t)conv->out, channels = (size_t)pool->in_shape[0];
    for (int n = 0; n < batch; n++) {
        pst_conv_forward_image(conv, w, b, x, n);
        pst_relu_forward(conv->buf + n * out, relu->buf + n * out, out);
        pst_maxpool_planes(pool, relu->buf, (size_t)n * channels, channels);
    }
    conv->input = x;
    relu->input = conv->y = conv->buf;
    pool->input = relu->y = relu->buf;
    pool->y = pool->buf;
    conv->mask_active = relu->mask_active = pool->mask_active = false;
}

bool pst_convblock_pool_relu_fuses(const pst_model_t *m, int i)
{
    return i >= 1 && m->layers[i].spec.kind == PST_LAYER_MAXPOOL2D &&
           m->layers[i - 1].spec.kind == PST_LAYER_RELU;
}

/* The pool's output is the ReLU's output at the window's argmax, so it carries the ReLU's mask
 * for the one input that receives gradient. 0 + g turns a -0 gradient into the +0 the separate
 * passes produce (0 + -0 = +0). */
static float masked(float pooled, float g)
{
    return pooled > 0.0f ? 0.0f + g : 0.0f;
}

void pst_maxpool_relu_backward(const pst_model_layer_t *pool, const float *dy, float *dx, int batch)
{
    pst_spatial_geom_t g = pst_spatial_geometry(pool);
    int k = pool->spec.kernel, stride = pool->spec.stride > 0 ? pool->spec.stride : k;
    size_t plane = (size_t)g.h * g.w, planes = (size_t)batch * (size_t)g.c;
    if (k == 2 && stride == 2 && g.h == 2 * g.oh && g.w == 2 * g.ow) {
        /* the windows tile the plane: every input is written once, its gradient or 0, with no
         * zeroing pass first */
        for (size_t nc = 0; nc < planes; nc++)
            pst_maxpool2x2_relu_backward_plane(&g, dy + nc * g.p, pool->buf + nc * g.p,
                                               pool->argmax + nc * g.p, dx + nc * plane);
        return;
    }
    memset(dx, 0, planes * plane * sizeof(float));
    for (size_t nc = 0; nc < planes; nc++)
        for (size_t i = 0; i < g.p; i++) {
            size_t o = nc * g.p + i;
            dx[nc * plane + (size_t)pool->argmax[o]] += masked(pool->buf[o], dy[o]);
        }
}
