/* Per-coordinate sparse optimizers over row blocks, state beside the weights: FTRL-Proximal,
 * AdaGrad.
 */
#ifndef PST_COMMON_OPTIM_FTRL_H
#define PST_COMMON_OPTIM_FTRL_H

#include <math.h>
#include <stddef.h>

#include "common/err.h"

/* FTRL-Proximal (McMahan et al., 2013), per coordinate i with state z[i], n[i]:
 *   weight(z, n) = 0                                                  if |z| <= l1
 *                = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)  otherwise
 *   (computed as -(z - sign(z) l1) * alpha / (beta + sqrt(n) + alpha l2))
 *   step with gradient g, w = weight(z, n):
 *     sigma = (sqrt(n + g^2) - sqrt(n)) / alpha;  z += g - sigma w;  n += g^2
 * A coordinate whose n is 0 (it never saw a non-zero gradient) starts from the weight it holds:
 * its z is set so that weight(z, 0) equals that w. With w = 0 this is the textbook z = 0; with a
 * randomly initialised row (factorization-machine factors) the row keeps its start point.
 * beta, l1 and l2 are in the units of the gradients given: scaling g, beta, l1 and l2 by the same c
 * leaves every weight unchanged, so for gradients averaged over batches of B rows the per-example
 * values of the literature (beta 1, l1 and l2 around 1) are divided by B. */
typedef struct pst_ftrl_cfg {
    float alpha; /* > 0; per-coordinate learning rate scale (0.05) */
    float beta;  /* > 0; smoothing of the early steps (1) */
    float l1;    /* >= 0; weights with |z| <= l1 are exactly 0 (0) */
    float l2;    /* >= 0 (0) */
} pst_ftrl_cfg_t;

void pst_ftrl_cfg_defaults(pst_ftrl_cfg_t *cfg);
int pst_ftrl_cfg_check(const pst_ftrl_cfg_t *cfg, pst_err_t *err);

/* The weight of one coordinate from its state. */
float pst_ftrl_weight(const pst_ftrl_cfg_t *cfg, float z, float n);
/* w[i] = weight(z[i], n[i]) for count coordinates. */
void pst_ftrl_weights(const pst_ftrl_cfg_t *cfg, float *w, const float *z, const float *n,
                      size_t count);
/* One step with gradient g over count coordinates; w, z, n (count each) are updated in place and
 * w holds weight(z, n) afterwards. w is read only where n == 0 (the start point, see above). The
 * arrays never alias. cfg must pass pst_ftrl_cfg_check. */
void pst_ftrl_update(const pst_ftrl_cfg_t *cfg, float *w, float *z, float *n, const float *g,
                     size_t count);

/* alpha / (beta + sqrt(n) + alpha l2), from root_n = sqrt(n): weight(z, n) = -(z - sign(z) l1)
 * times this when |z| > l1. */
static inline float pst_ftrl_scale_of_root(const pst_ftrl_cfg_t *cfg, float root_n)
{
    return cfg->alpha / (cfg->beta + root_n + cfg->alpha * cfg->l2);
}

static inline float pst_ftrl_weight_scaled(const pst_ftrl_cfg_t *cfg, float z, float scale)
{
    return fabsf(z) <= cfg->l1 ? 0.0f : -(z - copysignf(cfg->l1, z)) * scale;
}

/* pst_ftrl_weight with sqrt(n) given. */
static inline float pst_ftrl_weight_of_root(const pst_ftrl_cfg_t *cfg, float z, float root_n)
{
    return pst_ftrl_weight_scaled(cfg, z, pst_ftrl_scale_of_root(cfg, root_n));
}

/* One coordinate of an FTRL step from weight w0 = weight(z0, n0), with root0 = sqrt(n0). The
 * new weight's scale depends on n only, so its division runs beside sigma's. */
static inline void pst_ftrl_step_from(const pst_ftrl_cfg_t *cfg, float *w, float *z, float *n,
                                      float g, float z0, float w0, float root0)
{
    float g2 = g * g, n1 = *n + g2, root1 = sqrtf(n1);
    float scale1 = pst_ftrl_scale_of_root(cfg, root1);
    /* sqrt(n + g^2) - sqrt(n) written as g^2 / (sqrt(n + g^2) + sqrt(n)): no cancellation once n
     * is large beside g^2 */
    float sigma = g2 > 0.0f ? g2 / ((root1 + root0) * cfg->alpha) : 0.0f;
    float z1 = z0 + (g - sigma * w0);
    *z = z1;
    *n = n1;
    *w = pst_ftrl_weight_scaled(cfg, z1, scale1);
}

/* The z for which weight(z, 0) == w: -(w (beta / alpha + l2) + sign(w) l1), 0 for w == 0. */
static inline float pst_ftrl_start_z(const pst_ftrl_cfg_t *cfg, float w)
{
    return w == 0.0f ? 0.0f : -(w * (cfg->beta / cfg->alpha + cfg->l2) + copysignf(cfg->l1, w));
}

/* One coordinate of pst_ftrl_update, inline for callers that step many single-weight rows. */
static inline void pst_ftrl_step(const pst_ftrl_cfg_t *cfg, float *w, float *z, float *n, float g)
{
    float n0 = *n, z0 = n0 != 0.0f ? *z : pst_ftrl_start_z(cfg, *w), root0 = sqrtf(n0);
    pst_ftrl_step_from(cfg, w, z, n, g, z0, pst_ftrl_weight_of_root(cfg, z0, root0), root0);
}

/* pst_ftrl_update with the same results for weights that already hold weight(z, n) under this
 * cfg wherever n > 0, as the previous step with the same cfg left them (not for a cfg that
 * changes between steps, e.g. an alpha schedule): the weight before the step is read, not
 * recomputed. A branch-free loop over contiguous arrays that never alias, for blocks of gathered
 * rows. */
void pst_ftrl_update_kept(const pst_ftrl_cfg_t *cfg, float *restrict w, float *restrict z,
                          float *restrict n, const float *restrict g, size_t count);

/* AdaGrad as torch.optim.Adagrad with weight decay, per coordinate with accumulator acc:
 *   d = g + l2 w;  acc += d^2;  w -= lr d / (sqrt(acc) + eps)
 * (the same rule as PST_OPT_ADAGRAD in common/optim/optim.h, on caller-owned state). */
typedef struct pst_ftrl_adagrad_cfg {
    float lr;  /* > 0 (0.05) */
    float eps; /* >= 0 (1e-10) */
    float l2;  /* >= 0 (0) */
} pst_ftrl_adagrad_cfg_t;

void pst_ftrl_adagrad_cfg_defaults(pst_ftrl_adagrad_cfg_t *cfg);
int pst_ftrl_adagrad_cfg_check(const pst_ftrl_adagrad_cfg_t *cfg, pst_err_t *err);
/* One step over count coordinates; w and acc (count each) are updated in place. */
void pst_ftrl_adagrad_update(const pst_ftrl_adagrad_cfg_t *cfg, float *w, float *acc,
                             const float *g, size_t count);

#endif
