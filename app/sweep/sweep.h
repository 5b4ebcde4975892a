/* Sweep results: the table of trials written as CSV or JSON, read back to resume an interrupted
 * sweep, and the best trial's configuration as ready-to-run YAML. Includes the whole sweep API. */
#ifndef PST_APP_SWEEP_SWEEP_H
#define PST_APP_SWEEP_SWEEP_H

#include "common/config.h"
#include "common/err.h"
#include "app/sweep/sweep_sched.h"
#include "app/sweep/sweep_space.h"

/* The results table as CSV: one row per trial, columns
 *   trial, state, epochs_spent, final, METRIC@E0, METRIC@E1, ..., then one per parameter key
 * (METRIC@E is the metric at the rung of E epochs; empty cells: no result, or parameter unset;
 * "nan": the job failed; metrics have 17 significant digits, so they read back exactly).
 * Malloc'ed, caller frees; NULL when out of memory. */
char *pst_sweep_results_csv(const pst_sweep_sched_t *sched);
/* The same as JSON: {method, metric, mode, seed, rung_epochs, epochs_spent, full_epochs, best,
 * trials: [{trial, state, params: {key: text}, rungs: [metric|null], final, epochs_spent}]}. */
char *pst_sweep_results_json(const pst_sweep_sched_t *sched);
/* Writes the table atomically: JSON when path ends in ".json", CSV otherwise. */
int pst_sweep_write_results(const pst_sweep_sched_t *sched, const char *path, pst_err_t *err);

/* Restores a fresh scheduler (no job started yet) from a results table, CSV or JSON (told apart
 * by the first character). Every finished job is recorded, so pst_sweep_next never hands it out
 * again; a job that was running when the table was written is run again. A table whose
 * parameters, metric or rungs disagree with the sweep is an error naming the origin. */
int pst_sweep_load_results_text(pst_sweep_sched_t *sched, const char *text, const char *origin,
                                pst_err_t *err);
int pst_sweep_load_results(pst_sweep_sched_t *sched, const char *path, pst_err_t *err);

/* Applies the best trial's overrides to cfg (the caller's base config; hyperband also sets
 * train.epochs to max_epochs) and writes cfg atomically to path as YAML, under a comment naming
 * the trial and its metric. PST_ENOTFOUND when no trial has a result yet. */
int pst_sweep_write_best_config(const pst_sweep_sched_t *sched, pst_config_t *cfg, const char *path,
                                pst_err_t *err);

#endif
