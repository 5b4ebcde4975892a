/* Per-coordinate sparse optimizers over row blocks, state beside the weights: FTRL-Proximal,
 * AdaGrad.
 */
#ifndef PST_FTRL_H
#define PST_FTRL_H

#include <stddef.h>

#include "common/err.h"

/* FTRL-Proximal (McMahan et al., 2013), per coordinate i with state z[i], n[i]:
 *   weight(z, n) = 0                                                  if |z| <= l1
 *                = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)  otherwise
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

/* AdaGrad as torch.optim.Adagrad with weight decay, per coordinate with accumulator acc:
 *   d = g + l2 w;  acc += d^2;  w -= lr d / (sqrt(acc) + eps)
 * (the same rule as PST_OPT_ADAGRAD in common/optim.h, on caller-owned state). */
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
