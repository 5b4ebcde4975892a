/* Sweep scheduling: the trials drawn from a space, and which job runs next (grid, random, or
 * asynchronous successive halving) as results come in from worker groups. */
#ifndef PST_APP_SWEEP_SWEEP_SCHED_H
#define PST_APP_SWEEP_SWEEP_SCHED_H

#include <stdbool.h>

#include "common/config.h"
#include "common/err.h"
#include "app/sweep/sweep_space.h"

/* One override, applied as pst_config_set(cfg, "key=value"). */
typedef struct pst_sweep_override {
    char *key;
    char *value; /* a --set text: "0.00123", "64", "[256, 128]", "adam" */
} pst_sweep_override_t;

/* A trial: an id and the overrides of the parameters it sets, in declaration order. */
typedef struct pst_sweep_trial {
    int id;
    int n_overrides;
    pst_sweep_override_t *overrides;
} pst_sweep_trial_t;

typedef struct pst_sweep_trials {
    int n;
    pst_sweep_trial_t *items; /* items[i].id == i */
} pst_sweep_trials_t;

/* The sweep's trials: every grid point (grid) or `trials` samples (random, hyperband).
 * Deterministic for a given space and seed. Caller finalises *out with pst_sweep_trials_fini. */
int pst_sweep_trials(const pst_sweep_space_t *space, pst_sweep_trials_t *out, pst_err_t *err);
/* Random trial `id`: a pure function of (seed, id), so trial 7 is the same whatever the count,
 * and each parameter has its own stream, so a condition never shifts another's value. */
int pst_sweep_sample(const pst_sweep_space_t *space, int id, pst_sweep_trial_t *out);
/* Every grid point; the last parameter (in condition order) varies fastest. A range without
 * `grid: N` is an error naming it; more than PST_SWEEP_MAX_GRID points is PST_ERANGE. */
int pst_sweep_grid(const pst_sweep_space_t *space, pst_sweep_trials_t *out, pst_err_t *err);
/* Number of grid points, a conditional parameter counted only under its condition. */
int pst_sweep_grid_size(const pst_sweep_space_t *space, long *n, pst_err_t *err);

/* A trial setting parameter p to values[p] (NULL: unset), in declaration order. */
int pst_sweep_trial_from_values(const pst_sweep_space_t *space, int id, const char *const *values,
                                pst_sweep_trial_t *out);
void pst_sweep_trial_fini(pst_sweep_trial_t *trial);
void pst_sweep_trials_fini(pst_sweep_trials_t *trials);
/* The value text the trial sets for key, or NULL when the trial leaves it alone. */
const char *pst_sweep_trial_value(const pst_sweep_trial_t *trial, const char *key);
/* Applies the trial's overrides to cfg with pst_config_set, in order. */
int pst_sweep_trial_apply(const pst_sweep_trial_t *trial, pst_config_t *cfg, pst_err_t *err);

typedef enum {
    PST_SWEEP_PENDING,   /* not started */
    PST_SWEEP_RUNNING,   /* a job of it is out */
    PST_SWEEP_STOPPED,   /* finished a rung below the top and does not (yet) qualify for the next */
    PST_SWEEP_PROMOTED,  /* finished a rung, qualifies for the next, waits for a worker group */
    PST_SWEEP_COMPLETED, /* finished the top rung (grid, random: its only run) */
    PST_SWEEP_FAILED     /* its last job reported a non-finite metric */
} pst_sweep_state_t;

typedef enum {
    PST_SWEEP_RUN,  /* *job holds a job to hand to a free worker group */
    PST_SWEEP_WAIT, /* nothing to start until a running job reports */
    PST_SWEEP_DONE  /* every trial finished or stopped, nothing running */
} pst_sweep_action_t;

typedef struct pst_sweep_job {
    int trial;        /* trial id */
    int rung;         /* rung index; 0 for a new trial */
    long epochs;      /* train until the trial has this many epochs (sets train.epochs) */
    long from_epochs; /* epochs it already trained at its previous rung (0: new trial); a
                         resumed job trains epochs - from_epochs more, a retrained one epochs */
} pst_sweep_job_t;

typedef struct pst_sweep_sched pst_sweep_sched_t;

/* A scheduler over the space's trials. The space must outlive it. base_epochs is train.epochs
 * of the base config: the length of a grid or random trial that does not search train.epochs
 * (hyperband ignores it). NULL on failure, with err set. */
pst_sweep_sched_t *pst_sweep_sched_new(const pst_sweep_space_t *space, long base_epochs,
                                       pst_err_t *err);
void pst_sweep_sched_destroy(pst_sweep_sched_t **sched_p);

/* The next job. With rungs, ASHA: promote a trial that finished rung k and ranks in the top
 * floor(n_k / eta) of the n_k results recorded at rung k so far (the highest rung first, best
 * metric first), or the median pruner: promote a trial whose result at rung k was at least the
 * median there when it came in; else start the lowest pending trial at rung 0; tpe then proposes
 * a new trial from the results so far. Without rungs: pending trials in id order, once each. The
 * job is marked running. */
pst_sweep_action_t pst_sweep_next(pst_sweep_sched_t *sched, pst_sweep_job_t *job);
/* Records a finished job: the metric measured at the end of it (non-finite: the trial failed,
 * ranked last) and the epochs it actually trained. PST_ESTATE unless that job is running. */
int pst_sweep_report(pst_sweep_sched_t *sched, int trial, int rung, double metric,
                     long epochs_spent, pst_err_t *err);
/* The best trial at the highest rung holding a finite result (grid, random: over all trials).
 * PST_ENOTFOUND when there is none yet. */
int pst_sweep_best(const pst_sweep_sched_t *sched, int *trial, double *metric);
/* The trials with a finite result, ranked as pst_sweep_best chooses (the highest rung reached
 * first, then the metric there, then the id): the first min(cap, count) ids into ids. Returns
 * how many were written. */
int pst_sweep_ranking(const pst_sweep_sched_t *sched, int *ids, int cap);

/* Applies the job's trial overrides to cfg, then train.epochs = job->epochs. */
int pst_sweep_job_apply(const pst_sweep_sched_t *sched, const pst_sweep_job_t *job,
                        pst_config_t *cfg, pst_err_t *err);

const pst_sweep_space_t *pst_sweep_sched_space(const pst_sweep_sched_t *sched);
/* Trials the sweep will have, and those it has so far: the same number, but for tpe, which
 * proposes each trial when it starts it (pst_sweep_get_trial is NULL for a trial not yet made). */
int pst_sweep_n_trials(const pst_sweep_sched_t *sched);
int pst_sweep_n_created(const pst_sweep_sched_t *sched);
const pst_sweep_trial_t *pst_sweep_get_trial(const pst_sweep_sched_t *sched, int trial);
/* Rungs: hyperband min_epochs * eta^k below max_epochs, then max_epochs; grid and random one
 * rung of base_epochs. */
int pst_sweep_n_rungs(const pst_sweep_sched_t *sched);
long pst_sweep_rung_epochs(const pst_sweep_sched_t *sched, int rung);

pst_sweep_state_t pst_sweep_trial_state(const pst_sweep_sched_t *sched, int trial);
const char *pst_sweep_state_name(pst_sweep_state_t state);
/* Number of rungs with a recorded result, and the result at one of them (NaN if none). */
int pst_sweep_trial_rungs_done(const pst_sweep_sched_t *sched, int trial);
double pst_sweep_trial_metric(const pst_sweep_sched_t *sched, int trial, int rung);
/* Epochs trained by one trial and by the whole sweep (as reported), and the budget of training
 * every trial fully, to compare with: hyperband n_trials * max_epochs, grid and random the sum
 * of their trials' epochs. For a grid over the same space, see pst_sweep_grid_size. */
long pst_sweep_trial_epochs(const pst_sweep_sched_t *sched, int trial);
long pst_sweep_epochs_spent(const pst_sweep_sched_t *sched);
long pst_sweep_full_epochs(const pst_sweep_sched_t *sched);

/* Tpe, restoring from a results file: makes trial `trial` with the parameter values given
 * (values[p], NULL: unset) when it is the next one to make; a no-op for other methods and for a
 * trial that exists. PST_ERANGE when trials would be skipped. */
int pst_sweep_adopt(pst_sweep_sched_t *sched, int trial, const char *const *values, pst_err_t *err);
/* Restores a trial from a results file: results of its first rungs_done rungs and its epochs.
 * Only on a trial that is still pending; a non-finite result must be the last one. */
int pst_sweep_restore(pst_sweep_sched_t *sched, int trial, int rungs_done, const double *metrics,
                      long epochs_spent, pst_err_t *err);

#endif
