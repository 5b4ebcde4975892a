/* Batch normalisation over the channels of (batch, C, H, W) tensors (a flat vector of n features
 * is n channels of one pixel): batch statistics in training, running statistics otherwise. */
#include "worker/model/model_internal.h"

#include <math.h>
#include <string.h>

/* PyTorch's defaults, so a model ported from it behaves alike. */
#define BN_MOMENTUM 0.1f
#define BN_EPS PST_BATCHNORM_EPS

static size_t plane_of(const pst_model_layer_t *l)
{
    return (size_t)l->in_shape[1] * (size_t)l->in_shape[2];
}

/* Per-channel mean and biased variance of x over the batch and the plane, in double. */
static void channel_moments(const pst_model_layer_t *l, const float *x, int batch, int c,
                            double *mean, double *var)
{
    size_t plane = plane_of(l), channels = (size_t)l->in_shape[0];
    double sum = 0, sq = 0;
    for (int n = 0; n < batch; n++) {
        const float *p = x + ((size_t)n * channels + (size_t)c) * plane;
        for (size_t i = 0; i < plane; i++)
            sum += p[i];
    }
    double count = (double)batch * (double)plane;
    *mean = sum / count;
    for (int n = 0; n < batch; n++) {
        const float *p = x + ((size_t)n * channels + (size_t)c) * plane;
        for (size_t i = 0; i < plane; i++) {
            double d = p[i] - *mean;
            sq += d * d;
        }
    }
    *var = sq / count;
}

void pst_batchnorm_forward(pst_model_layer_t *l, const float *gamma, const float *beta,
                           float *running, const float *x, int batch, bool training)
{
    size_t plane = plane_of(l), channels = (size_t)l->in_shape[0];
    float *run_mean = running, *run_var = running + channels;
    double count = (double)batch * (double)plane;
    for (size_t c = 0; c < channels; c++) {
        float mean = run_mean[c], var = run_var[c];
        if (training) {
            double m, v;
            channel_moments(l, x, batch, (int)c, &m, &v);
            mean = (float)m;
            var = (float)v;
            /* the running variance is the unbiased one, as PyTorch keeps it */
            double unbiased = count > 1 ? v * count / (count - 1) : v;
            run_mean[c] = (1 - BN_MOMENTUM) * run_mean[c] + BN_MOMENTUM * (float)m;
            run_var[c] = (1 - BN_MOMENTUM) * run_var[c] + BN_MOMENTUM * (float)unbiased;
        }
        float inv_std = 1.0f / sqrtf(var + BN_EPS);
        l->bn_inv_std[c] = inv_std;
        for (int n = 0; n < batch; n++) {
            size_t at = ((size_t)n * channels + c) * plane;
            for (size_t i = 0; i < plane; i++) {
                float xhat = (x[at + i] - mean) * inv_std;
                l->mask[at + i] = xhat;
                l->buf[at + i] = gamma[c] * xhat + beta[c];
            }
        }
    }
    l->mask_active = training;
}

/* Training: dx = gamma inv_std / N (N dy - sum dy - xhat sum(dy xhat)); after an evaluation
 * forward the statistics are constants and dx = gamma inv_std dy. */
void pst_batchnorm_backward(const pst_model_layer_t *l, const float *gamma, const float *dy,
                            float *dgamma, float *dbeta, float *dx, int batch)
{
    size_t plane = plane_of(l), channels = (size_t)l->in_shape[0];
    double count = (double)batch * (double)plane;
    for (size_t c = 0; c < channels; c++) {
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int n = 0; n < batch; n++) {
            size_t at = ((size_t)n * channels + c) * plane;
            for (size_t i = 0; i < plane; i++) {
                sum_dy += dy[at + i];
                sum_dy_xhat += (double)dy[at + i] * l->mask[at + i];
            }
        }
        dgamma[c] += (float)sum_dy_xhat;
        dbeta[c] += (float)sum_dy;
        if (dx == NULL)
            continue;
        float scale = gamma[c] * l->bn_inv_std[c];
        float mean_dy = l->mask_active ? (float)(sum_dy / count) : 0.0f;
        float mean_dy_xhat = l->mask_active ? (float)(sum_dy_xhat / count) : 0.0f;
        for (int n = 0; n < batch; n++) {
            size_t at = ((size_t)n * channels + c) * plane;
            for (size_t i = 0; i < plane; i++)
                dx[at + i] = scale * (dy[at + i] - mean_dy - l->mask[at + i] * mean_dy_xhat);
        }
    }
}
