/* Tree-structured Parzen estimator: the next trial proposed from the results of earlier ones. */
#ifndef PST_APP_SWEEP_SWEEP_TPE_H
#define PST_APP_SWEEP_SWEEP_TPE_H

#include "app/sweep/sweep_sched.h"
#include "app/sweep/sweep_space.h"

/* A finished trial as TPE sees it: its parameter values and a loss (smaller is better, finite). */
typedef struct pst_sweep_obs {
    const pst_sweep_trial_t *trial;
    double loss;
} pst_sweep_obs_t;

/* Proposes trial `id` (caller finalises *out with pst_sweep_trial_fini). Trials below
 * space->tpe_startup, or with fewer than two observations, are random samples (pst_sweep_sample).
 * Otherwise the observations are split into the best ceil(gamma * n) (at most 25) and the rest, a
 * Parzen estimator (a truncated Gaussian or categorical kernel per observation, plus a uniform
 * prior) is fitted to each group, tpe_candidates values are drawn from the good group's estimator
 * and the one with the highest ratio l(x) / g(x) is kept. Independent: one parameter at a time,
 * each fitted on the observations that set it; multivariate: the kernels are joint, so
 * parameters that pay off together are drawn together. Conditional parameters are set only when
 * their conditions hold. A pure function of (space, id, observations in the order given). */
int pst_sweep_tpe_propose(const pst_sweep_space_t *space, int id, const pst_sweep_obs_t *obs,
                          int n_obs, pst_sweep_trial_t *out);

#endif
