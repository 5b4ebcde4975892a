/* Per-coordinate sparse optimizers over row blocks: FTRL-Proximal with lazy weights, and AdaGrad.
 */
#include "common/optim/ftrl.h"

/* pst_ftrl_update_kept is a plain loop over arrays whose selects GCC at -O2 would keep as
 * branches: vectorise it (FP exceptions are never trapped here, so both sides of a select may
 * be computed). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")
#endif

#include <math.h>
#include <stdbool.h>

void pst_ftrl_cfg_defaults(pst_ftrl_cfg_t *cfg)
{
    cfg->alpha = 0.05f;
    cfg->beta = 1.0f;
    cfg->l1 = 0.0f;
    cfg->l2 = 0.0f;
}

static int positive(float x)
{
    return x > 0.0f && isfinite(x);
}

static int non_negative(float x)
{
    return x >= 0.0f && isfinite(x);
}

int pst_ftrl_cfg_check(const pst_ftrl_cfg_t *cfg, pst_err_t *err)
{
    if (!positive(cfg->alpha) || !positive(cfg->beta))
        return pst_err_set(err, PST_EINVAL, "ftrl: alpha %g and beta %g must be > 0", cfg->alpha,
                           cfg->beta);
    if (!non_negative(cfg->l1) || !non_negative(cfg->l2))
        return pst_err_set(err, PST_EINVAL, "ftrl: l1 %g and l2 %g must be >= 0", cfg->l1, cfg->l2);
    return PST_OK;
}

float pst_ftrl_weight(const pst_ftrl_cfg_t *cfg, float z, float n)
{
    return pst_ftrl_weight_of_root(cfg, z, sqrtf(n));
}

void pst_ftrl_weights(const pst_ftrl_cfg_t *cfg, float *w, const float *z, const float *n,
                      size_t count)
{
    for (size_t i = 0; i < count; i++)
        w[i] = pst_ftrl_weight(cfg, z[i], n[i]);
}

void pst_ftrl_update(const pst_ftrl_cfg_t *cfg, float *w, float *z, float *n, const float *g,
                     size_t count)
{
    for (size_t i = 0; i < count; i++)
        pst_ftrl_step(cfg, &w[i], &z[i], &n[i], g[i]);
}

void pst_ftrl_update_kept(const pst_ftrl_cfg_t *cfg, float *restrict w, float *restrict z,
                          float *restrict n, const float *restrict g, size_t count)
{
    const float alpha = cfg->alpha, beta = cfg->beta, l1 = cfg->l1, l2 = cfg->l2;
    const float start = beta / alpha + l2, alpha_l2 = alpha * l2;
    for (size_t i = 0; i < count; i++) {
        /* both cases computed, one kept: the loop has no branches and runs lanes wide */
        float n0 = n[i], w_in = w[i], gi = g[i];
        bool fresh = n0 == 0.0f;
        float z_start = w_in == 0.0f ? 0.0f : -(w_in * start + copysignf(l1, w_in));
        float z0 = fresh ? z_start : z[i];
        float root0 = sqrtf(n0);
        float scale0 = alpha / (beta + root0 + alpha_l2);
        float w_start = fabsf(z0) <= l1 ? 0.0f : -(z0 - copysignf(l1, z0)) * scale0;
        float w0 = fresh ? w_start : w_in;
        float g2 = gi * gi, n1 = n0 + g2, root1 = sqrtf(n1);
        float scale1 = alpha / (beta + root1 + alpha_l2);
        float sigma = g2 > 0.0f ? g2 / ((root1 + root0) * alpha) : 0.0f;
        float z1 = z0 + (gi - sigma * w0);
        z[i] = z1;
        n[i] = n1;
        w[i] = fabsf(z1) <= l1 ? 0.0f : -(z1 - copysignf(l1, z1)) * scale1;
    }
}

void pst_ftrl_adagrad_cfg_defaults(pst_ftrl_adagrad_cfg_t *cfg)
{
    cfg->lr = 0.05f;
    cfg->eps = 1e-10f;
    cfg->l2 = 0.0f;
}

int pst_ftrl_adagrad_cfg_check(const pst_ftrl_adagrad_cfg_t *cfg, pst_err_t *err)
{
    if (!positive(cfg->lr))
        return pst_err_set(err, PST_EINVAL, "adagrad: lr %g must be > 0", cfg->lr);
    if (!non_negative(cfg->eps) || !non_negative(cfg->l2))
        return pst_err_set(err, PST_EINVAL, "adagrad: eps %g and l2 %g must be >= 0", cfg->eps,
                           cfg->l2);
    return PST_OK;
}

void pst_ftrl_adagrad_update(const pst_ftrl_adagrad_cfg_t *cfg, float *w, float *acc,
                             const float *g, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        float d = g[i] + cfg->l2 * w[i];
        float a = acc[i] + d * d;
        acc[i] = a;
        if (a > 0.0f) /* a == 0 means d == 0: no step, and no 0 / 0 when eps == 0 */
            w[i] -= cfg->lr * d / (sqrtf(a) + cfg->eps);
    }
}
