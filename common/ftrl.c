/* Per-coordinate sparse optimizers over row blocks: FTRL-Proximal with lazy weights, and AdaGrad.
 */
#include "common/ftrl.h"

#include <math.h>

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
    if (fabsf(z) <= cfg->l1)
        return 0.0f;
    float shrunk = z - copysignf(cfg->l1, z);
    return -shrunk / ((cfg->beta + sqrtf(n)) / cfg->alpha + cfg->l2);
}

void pst_ftrl_weights(const pst_ftrl_cfg_t *cfg, float *w, const float *z, const float *n,
                      size_t count)
{
    for (size_t i = 0; i < count; i++)
        w[i] = pst_ftrl_weight(cfg, z[i], n[i]);
}

/* The z for which weight(z, 0) == w: z = -(w (beta / alpha + l2) + sign(w) l1), 0 for w == 0. */
static float start_z(const pst_ftrl_cfg_t *cfg, float w)
{
    if (w == 0.0f)
        return 0.0f;
    return -(w * (cfg->beta / cfg->alpha + cfg->l2) + copysignf(cfg->l1, w));
}

void pst_ftrl_update(const pst_ftrl_cfg_t *cfg, float *w, float *z, float *n, const float *g,
                     size_t count)
{
    for (size_t i = 0; i < count; i++) {
        float zi = n[i] == 0.0f ? start_z(cfg, w[i]) : z[i];
        float ni = n[i];
        float wi = pst_ftrl_weight(cfg, zi, ni);
        float g2 = g[i] * g[i];
        /* sqrt(n + g^2) - sqrt(n) written as g^2 / (sqrt(n + g^2) + sqrt(n)): no cancellation
         * once n is large beside g^2. */
        float sigma = g2 > 0.0f ? g2 / ((sqrtf(ni + g2) + sqrtf(ni)) * cfg->alpha) : 0.0f;
        zi += g[i] - sigma * wi;
        ni += g2;
        z[i] = zi;
        n[i] = ni;
        w[i] = pst_ftrl_weight(cfg, zi, ni);
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
