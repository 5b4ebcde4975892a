/* Optimizers over flat float32 slices: update rules, their single state block, lookahead, clipping.
 */

/* The update loops must vectorise at the project's -O2, whose "very cheap" cost model refuses any
 * loop whose trip count is not a known multiple of the vector width. Square roots are taken
 * separately (sqrt_block) because sqrtf only vectorises under -fno-math-errno. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#endif

#include "common/optim/optim.h"

#include "common/optim/ftrl.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* Elements per block in the adaptive kernels: their scratch rows stay in L1. */
enum { BLOCK = 512 };

/* State layout: `slots` rows of n floats for the update rule (momentum: v; adam family: m, v;
 * adagrad: sum of squares; ftrl: z, n), then one row of lookahead slow weights when lookahead is
 * on. */
struct pst_optim {
    pst_optim_cfg_t cfg;
    size_t n;
    uint64_t steps;
    size_t n_state;
    float *state; // (n_state)
};

/* Per-step scalars of the adaptive family:
 * w = w * decay - step * num / (sqrt(den) * den_scale + eps). */
typedef struct adaptive {
    float decay, step, den_scale, eps;
} adaptive_t;

static const char *const kind_names[] = {"sgd",   "momentum",  "nesterov", "adam", "adamw",
                                         "radam", "adabelief", "adagrad",  "ftrl"};
enum { N_KINDS = sizeof kind_names / sizeof kind_names[0] };

void pst_optim_cfg_defaults(pst_optim_cfg_t *cfg, pst_optim_kind_t kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->momentum = 0.9f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
    if (kind == PST_OPT_ADAGRAD)
        cfg->eps = 1e-10f;
    /* AdaBelief adds eps inside the square root as well: 1e-16 there matches Adam's 1e-8. */
    if (kind == PST_OPT_ADABELIEF)
        cfg->eps = 1e-16f;
    if (kind == PST_OPT_ADAMW)
        cfg->weight_decay = 0.01f;
    cfg->lookahead_k = 0;
    cfg->lookahead_alpha = 0.5f;
    cfg->ftrl_beta = 1.0f;
}

int pst_optim_kind_parse(const char *name, pst_optim_kind_t *kind)
{
    for (int i = 0; name != NULL && i < N_KINDS; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (pst_optim_kind_t)i;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_optim_kind_name(pst_optim_kind_t kind)
{
    if ((int)kind < 0 || (int)kind >= N_KINDS)
        return "unknown";
    return kind_names[kind];
}

static size_t state_slots(pst_optim_kind_t kind)
{
    switch (kind) {
    case PST_OPT_SGD:
        return 0;
    case PST_OPT_MOMENTUM:
    case PST_OPT_NESTEROV:
    case PST_OPT_ADAGRAD:
        return 1;
    default: /* the adam family; ftrl: z, n */
        return 2;
    }
}

static int in_unit(float x)
{
    return x >= 0.0f && x < 1.0f;
}

/* FTRL's weights are a function of its state, so lookahead and weight decay, which move the
 * weights outside the rule, do not apply; its L2 is ftrl_l2. */
static int ftrl_check(const pst_optim_cfg_t *c, pst_err_t *err)
{
    if (c->lookahead_k > 0 || c->weight_decay != 0.0f)
        return pst_err_set(err, PST_EINVAL,
                           "optimizer: ftrl takes ftrl_l2, not weight_decay or lookahead");
    pst_ftrl_cfg_t f = {.alpha = 1.0f, .beta = c->ftrl_beta, .l1 = c->ftrl_l1, .l2 = c->ftrl_l2};
    return pst_ftrl_cfg_check(&f, err);
}

static int cfg_check(const pst_optim_cfg_t *c, pst_err_t *err)
{
    if ((int)c->kind < 0 || (int)c->kind >= N_KINDS)
        return pst_err_set(err, PST_EINVAL, "optimizer: unknown kind %d", (int)c->kind);
    if (!(c->momentum >= 0.0f && c->momentum <= 1.0f))
        return pst_err_set(err, PST_EINVAL, "optimizer: momentum %g not in [0, 1]", c->momentum);
    if (!in_unit(c->beta1) || !in_unit(c->beta2))
        return pst_err_set(err, PST_EINVAL, "optimizer: betas (%g, %g) not in [0, 1)", c->beta1,
                           c->beta2);
    if (!(c->eps >= 0.0f && isfinite(c->eps)))
        return pst_err_set(err, PST_EINVAL, "optimizer: eps %g must be >= 0", c->eps);
    if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
        return pst_err_set(err, PST_EINVAL, "optimizer: weight_decay %g must be >= 0",
                           c->weight_decay);
    if (c->lookahead_k < 0)
        return pst_err_set(err, PST_EINVAL, "optimizer: lookahead_k %d must be >= 0",
                           c->lookahead_k);
    if (c->lookahead_k > 0 && !(c->lookahead_alpha > 0.0f && c->lookahead_alpha <= 1.0f))
        return pst_err_set(err, PST_EINVAL, "optimizer: lookahead_alpha %g not in (0, 1]",
                           c->lookahead_alpha);
    return c->kind == PST_OPT_FTRL ? ftrl_check(c, err) : PST_OK;
}

pst_optim_t *pst_optim_new(const pst_optim_cfg_t *cfg, size_t n, pst_err_t *err)
{
    if (cfg_check(cfg, err) != PST_OK)
        return NULL;
    size_t rows = state_slots(cfg->kind) + (cfg->lookahead_k > 0 ? 1 : 0);
    if (n > 0 && rows > SIZE_MAX / sizeof(float) / n) {
        pst_err_set(err, PST_ENOMEM, "optimizer: state for %zu parameters overflows", n);
        return NULL;
    }
    pst_optim_t *self = calloc(1, sizeof *self);
    /* At least one float so that pst_optim_state never hands out NULL. */
    float *state = calloc(rows * n > 0 ? rows * n : 1, sizeof(float));
    if (self == NULL || state == NULL) {
        free(self);
        free(state);
        pst_err_set(err, PST_ENOMEM, "optimizer: no memory for %zu state floats", rows * n);
        return NULL;
    }
    self->cfg = *cfg;
    self->n = n;
    self->n_state = rows * n;
    self->state = state;
    return self;
}

void pst_optim_destroy(pst_optim_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free((*self_p)->state);
    free(*self_p);
    *self_p = NULL;
}

float *pst_optim_state(pst_optim_t *self, size_t *n_state)
{
    if (n_state != NULL)
        *n_state = self->n_state;
    return self->state;
}

uint64_t pst_optim_steps(const pst_optim_t *self)
{
    return self->steps;
}

void pst_optim_set_steps(pst_optim_t *self, uint64_t steps)
{
    self->steps = steps;
}

/* ---- kernels: w, g and state rows never alias (one parameter slice, its gradient, its state) */

static void sgd_kernel(float *restrict w, const float *restrict g, size_t n, float lr, float wd)
{
    for (size_t i = 0; i < n; i++)
        w[i] -= lr * (g[i] + wd * w[i]);
}

/* PyTorch convention: v = mu * v + d; w -= lr * v (d = g + wd * w). */
static void momentum_kernel(float *restrict w, const float *restrict g, float *restrict v, size_t n,
                            float lr, float mu, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        float vi = mu * v[i] + d;
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

/* PyTorch convention: v = mu * v + d; w -= lr * (d + mu * v). */
static void nesterov_kernel(float *restrict w, const float *restrict g, float *restrict v, size_t n,
                            float lr, float mu, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        float vi = mu * v[i] + d;
        v[i] = vi;
        w[i] -= lr * (d + mu * vi);
    }
}

/* root[i] = sqrt(x[i]), explicitly vectorised (see the top of the file). */
static void sqrt_block(float *restrict root, const float *restrict x, size_t n)
{
    size_t i = 0;
#if defined(__SSE__)
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(root + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#elif defined(__aarch64__)
    for (; i + 4 <= n; i += 4)
        vst1q_f32(root + i, vsqrtq_f32(vld1q_f32(x + i)));
#endif
    for (; i < n; i++)
        root[i] = sqrtf(x[i]);
}

/* d = g + wd * w: the L2 form of weight decay. */
static void l2_grad(float *restrict d, const float *restrict g, const float *restrict w, size_t n,
                    float wd)
{
    for (size_t i = 0; i < n; i++)
        d[i] = g[i] + wd * w[i];
}

/* Adam moments: m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2. */
static void adam_moments(float *restrict m, float *restrict v, const float *restrict d, size_t n,
                         float b1, float b2)
{
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + c1 * d[i];
        v[i] = b2 * v[i] + c2 * d[i] * d[i];
    }
}

/* AdaBelief moments: m as Adam; s = b2 s + (1 - b2) (d - m)^2 + eps, with the new m. */
static void belief_moments(float *restrict m, float *restrict s, const float *restrict d, size_t n,
                           float b1, float b2, float eps)
{
    float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float mi = b1 * m[i] + c1 * d[i];
        float r = d[i] - mi;
        m[i] = mi;
        s[i] = b2 * s[i] + c2 * r * r + eps;
    }
}

/* AdaGrad accumulator: sum += d^2. */
static void square_sum(float *restrict sum, const float *restrict d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sum[i] += d[i] * d[i];
}

/* w = w * decay - step * num / (sqrt(den) * den_scale + eps) over one block (n <= BLOCK). */
static void adaptive_apply(float *restrict w, const float *restrict num, const float *restrict den,
                           size_t n, const adaptive_t *a)
{
    float root[BLOCK];
    assert(n <= BLOCK);
    sqrt_block(root, den, n);
    float decay = a->decay, step = a->step, scale = a->den_scale, eps = a->eps;
    for (size_t i = 0; i < n; i++)
        w[i] = w[i] * decay - step * num[i] / (root[i] * scale + eps);
}

/* w -= step * m: RAdam's un-rectified early steps. */
static void momentum_only_apply(float *restrict w, const float *restrict m, size_t n, float step)
{
    for (size_t i = 0; i < n; i++)
        w[i] -= step * m[i];
}

/* ---- update rules: each walks the slice in blocks of BLOCK */

typedef struct rule_ctx {
    const pst_optim_cfg_t *cfg;
    float lr;
    double t; /* step count, 1-based */
} rule_ctx_t;

static size_t block_len(size_t n, size_t off)
{
    return n - off < BLOCK ? n - off : BLOCK;
}

/* Adam and AdamW (decoupled: w *= 1 - lr * wd beside the Adam step, as torch.optim.AdamW). */
static void adam_rule(const rule_ctx_t *c, float *w, const float *g, float *m, float *v, size_t n)
{
    const pst_optim_cfg_t *cfg = c->cfg;
    int decoupled = cfg->kind == PST_OPT_ADAMW;
    double bc1 = 1.0 - pow(cfg->beta1, c->t), bc2 = 1.0 - pow(cfg->beta2, c->t);
    adaptive_t a = {.decay = decoupled ? 1.0f - c->lr * cfg->weight_decay : 1.0f,
                    .step = (float)(c->lr / bc1),
                    .den_scale = (float)(1.0 / sqrt(bc2)),
                    .eps = cfg->eps};
    float wd = decoupled ? 0.0f : cfg->weight_decay;
    float d[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t len = block_len(n, off);
        l2_grad(d, g + off, w + off, len, wd);
        adam_moments(m + off, v + off, d, len, cfg->beta1, cfg->beta2);
        adaptive_apply(w + off, m + off, v + off, len, &a);
    }
}

/* RAdam as torch.optim.RAdam: the adaptive step only once the variance is tractable (rho_t > 5). */
static void radam_rule(const rule_ctx_t *c, float *w, const float *g, float *m, float *v, size_t n)
{
    const pst_optim_cfg_t *cfg = c->cfg;
    double b2 = cfg->beta2, t = c->t;
    double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(b2, t);
    double rho_inf = 2.0 / (1.0 - b2) - 1.0;
    double rho_t = rho_inf - 2.0 * t * pow(b2, t) / bc2;
    int rectified = rho_t > 5.0;
    adaptive_t a = {.decay = 1.0f, .den_scale = 1.0f, .eps = cfg->eps};
    if (rectified) {
        double rect = sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                           ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
        a.step = (float)(c->lr * rect * sqrt(bc2) / bc1);
    }
    float d[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t len = block_len(n, off);
        l2_grad(d, g + off, w + off, len, cfg->weight_decay);
        adam_moments(m + off, v + off, d, len, cfg->beta1, b2);
        if (rectified)
            adaptive_apply(w + off, m + off, v + off, len, &a);
        else
            momentum_only_apply(w + off, m + off, len, (float)(c->lr / bc1));
    }
}

/* AdaBelief (paper, Algorithm 2): Adam with the belief s in place of v, eps inside and outside. */
static void adabelief_rule(const rule_ctx_t *c, float *w, const float *g, float *m, float *s,
                           size_t n)
{
    const pst_optim_cfg_t *cfg = c->cfg;
    double bc1 = 1.0 - pow(cfg->beta1, c->t), bc2 = 1.0 - pow(cfg->beta2, c->t);
    adaptive_t a = {.decay = 1.0f,
                    .step = (float)(c->lr / bc1),
                    .den_scale = (float)(1.0 / sqrt(bc2)),
                    .eps = cfg->eps};
    float d[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t len = block_len(n, off);
        l2_grad(d, g + off, w + off, len, cfg->weight_decay);
        belief_moments(m + off, s + off, d, len, cfg->beta1, cfg->beta2, cfg->eps);
        adaptive_apply(w + off, m + off, s + off, len, &a);
    }
}

/* AdaGrad as torch.optim.Adagrad (no lr decay): sum += d^2; w -= lr * d / (sqrt(sum) + eps). */
static void adagrad_rule(const rule_ctx_t *c, float *w, const float *g, float *sum, size_t n)
{
    adaptive_t a = {.decay = 1.0f, .step = c->lr, .den_scale = 1.0f, .eps = c->cfg->eps};
    float d[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t len = block_len(n, off);
        l2_grad(d, g + off, w + off, len, c->cfg->weight_decay);
        square_sum(sum + off, d, len);
        adaptive_apply(w + off, d, sum + off, len, &a);
    }
}

/* FTRL-Proximal with alpha = lr over state rows z, n (common/optim/ftrl.h). */
static void ftrl_rule(const rule_ctx_t *c, float *w, const float *g, float *z, float *n_sq,
                      size_t n)
{
    if (!(c->lr > 0.0f))
        return;
    pst_ftrl_cfg_t f = {
        .alpha = c->lr, .beta = c->cfg->ftrl_beta, .l1 = c->cfg->ftrl_l1, .l2 = c->cfg->ftrl_l2};
    pst_ftrl_update(&f, w, z, n_sq, g, n);
}

/* slow += alpha * (w - slow); w = slow. */
static void lookahead_sync(float *restrict w, float *restrict slow, size_t n, float alpha)
{
    for (size_t i = 0; i < n; i++) {
        float s = slow[i] + alpha * (w[i] - slow[i]);
        slow[i] = s;
        w[i] = s;
    }
}

/* Step number `steps` (from 1) of n parameters with state rows [row0 | row1 | ...]. */
static void apply_rule(const pst_optim_cfg_t *cfg, size_t n, float *state, uint64_t steps, float *w,
                       const float *g, float lr)
{
    float *row0 = state, *row1 = state + n;
    rule_ctx_t c = {.cfg = cfg, .lr = lr, .t = (double)steps};
    switch (cfg->kind) {
    case PST_OPT_SGD:
        sgd_kernel(w, g, n, lr, cfg->weight_decay);
        break;
    case PST_OPT_MOMENTUM:
        momentum_kernel(w, g, row0, n, lr, cfg->momentum, cfg->weight_decay);
        break;
    case PST_OPT_NESTEROV:
        nesterov_kernel(w, g, row0, n, lr, cfg->momentum, cfg->weight_decay);
        break;
    case PST_OPT_ADAM:
    case PST_OPT_ADAMW:
        adam_rule(&c, w, g, row0, row1, n);
        break;
    case PST_OPT_RADAM:
        radam_rule(&c, w, g, row0, row1, n);
        break;
    case PST_OPT_ADABELIEF:
        adabelief_rule(&c, w, g, row0, row1, n);
        break;
    case PST_OPT_ADAGRAD:
        adagrad_rule(&c, w, g, row0, n);
        break;
    case PST_OPT_FTRL:
        ftrl_rule(&c, w, g, row0, row1, n);
        break;
    }
}

static void step_with(const pst_optim_cfg_t *cfg, size_t n, float *state, uint64_t *steps, float *w,
                      const float *g, float lr)
{
    int k = cfg->lookahead_k;
    float *slow = state + state_slots(cfg->kind) * n;
    if (k > 0 && *steps == 0)
        memcpy(slow, w, n * sizeof(float));
    (*steps)++;
    apply_rule(cfg, n, state, *steps, w, g, lr);
    if (k > 0 && *steps % (uint64_t)k == 0)
        lookahead_sync(w, slow, n, cfg->lookahead_alpha);
}

void pst_optim_step(pst_optim_t *self, float *w, const float *g, float lr)
{
    assert(self != NULL);
    step_with(&self->cfg, self->n, self->state, &self->steps, w, g, lr);
}

void pst_optim_step_external(const pst_optim_t *self, float *w, const float *g, float lr,
                             float *state, uint64_t *steps)
{
    assert(self != NULL && (state != NULL || self->n_state == 0) && steps != NULL);
    step_with(&self->cfg, self->n, state, steps, w, g, lr);
}

/* Sum of squares in double, four partial sums so the additions overlap. */
static double sum_squares(const float *g, size_t n)
{
    double acc[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int j = 0; j < 4; j++)
            acc[j] += (double)g[i + j] * g[i + j];
    }
    for (; i < n; i++)
        acc[0] += (double)g[i] * g[i];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when norm > max_norm.
 * A non-finite norm leaves g untouched; the caller sees it in the return value. */
double pst_clip_global_norm(float *g, size_t n, double max_norm)
{
    double norm = sqrt(sum_squares(g, n));
    if (!isfinite(norm) || !(max_norm > 0.0) || norm <= max_norm)
        return norm;
    float scale = (float)(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < n; i++)
        g[i] *= scale;
    return norm;
}

/* Clamps each element to [-limit, limit]; NaN stays NaN. */
void pst_clip_value(float *g, size_t n, float limit)
{
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        x = x > limit ? limit : x;
        g[i] = x < -limit ? -limit : x;
    }
}
