/* What the layer tests share: models with random parameters, and the finite-difference check of
 * a model's analytic gradients with respect to every parameter and every input value. Include
 * after cmocka.h. */
#ifndef PST_TESTS_UNIT_GRADCHECK_H
#define PST_TESTS_UNIT_GRADCHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "worker/model/model.h"

static inline void fill_uniform(float *v, size_t n, float lo, float hi, pst_rng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)pst_rng_uniform(rng);
}

/* A model whose parameters are drawn uniformly from [lo, hi] by a stream seeded with seed. */
static inline pst_model_t *random_model_in(int n_inputs, const pst_layer_spec_t *layers,
                                           int n_layers, int max_batch, uint64_t seed, float lo,
                                           float hi)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, layers, n_layers, max_batch, &err);
    if (m == NULL)
        fail_msg("pst_model_new: %s", err.msg);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    fill_uniform(pst_model_params(m), pst_model_n_params(m), lo, hi, &rng);
    return m;
}

typedef struct gradcheck {
    bool training;            /* forward in training mode (batch statistics, recurrent caches) */
    float eps;                /* central-difference step */
    double rel, abs;          /* pass when |analytic - numeric| <= rel max(|a|, |n|) + abs */
    float param_lo, param_hi; /* parameters drawn from here */
    bool random_state;        /* running statistics drawn from [0.2, 1.2], not the trivial 0, 1 */
} gradcheck_t;

/* sum(out * proj) at the current parameters and input. */
static inline double gradcheck_objective(const gradcheck_t *g, pst_model_t *m, const float *x,
                                         int batch, const float *proj)
{
    const float *out = pst_model_forward(m, x, batch, g->training, NULL);
    double v = 0;
    for (int i = 0; i < batch * pst_model_n_outputs(m); i++)
        v += (double)out[i] * proj[i];
    return v;
}

/* Central differences of sum(out * proj) against the analytic gradient, for every parameter and
 * every input value of a random model and input (seeded by seed). */
static inline void gradcheck_run(const gradcheck_t *g, const pst_layer_spec_t *spec, int n_layers,
                                 int n_inputs, int batch, uint64_t seed)
{
    pst_model_t *m =
        random_model_in(n_inputs, spec, n_layers, batch, seed, g->param_lo, g->param_hi);
    pst_rng_t rng;
    pst_rng_init(&rng, seed + 1);
    int n_out = pst_model_n_outputs(m);
    size_t n_x = (size_t)batch * n_inputs, n_p = pst_model_n_params(m);
    float *x = malloc(n_x * sizeof *x), *proj = malloc((size_t)batch * n_out * sizeof *proj);
    float *gp = malloc(n_p * sizeof *gp), *gx = malloc(n_x * sizeof *gx);
    fill_uniform(x, n_x, -1.5f, 1.5f, &rng);
    fill_uniform(proj, (size_t)batch * n_out, -1, 1, &rng);
    if (g->random_state)
        fill_uniform(pst_model_state(m), pst_model_n_state(m), 0.2f, 1.2f, &rng);
    gradcheck_objective(g, m, x, batch, proj);
    memcpy(gx, pst_model_backward_input(m, proj, batch, false), n_x * sizeof *gx);
    memcpy(gp, pst_model_grads(m), n_p * sizeof *gp);
    float *values[2] = {pst_model_params(m), x};
    const float *analytic[2] = {gp, gx};
    size_t counts[2] = {n_p, n_x};
    for (int which = 0; which < 2; which++)
        for (size_t i = 0; i < counts[which]; i++) {
            float saved = values[which][i];
            values[which][i] = saved + g->eps;
            double plus = gradcheck_objective(g, m, x, batch, proj);
            values[which][i] = saved - g->eps;
            double minus = gradcheck_objective(g, m, x, batch, proj);
            values[which][i] = saved;
            double numeric = (plus - minus) / (2.0 * g->eps), a = analytic[which][i];
            if (!(fabs(a - numeric) <= g->rel * fmax(fabs(a), fabs(numeric)) + g->abs))
                fail_msg("%s %zu: analytic %g, numeric %g", which ? "input" : "parameter", i, a,
                         numeric);
        }
    free(x);
    free(proj);
    free(gp);
    free(gx);
    pst_model_destroy(&m);
}

#endif
