/* The trained models of a sweep's best jobs, kept in memory (at most k) and written as
 * top_models/trial_T.pst, so the top trials can be used without retraining. */
#ifndef PST_APP_SWEEP_SWEEP_KEEP_H
#define PST_APP_SWEEP_SWEEP_KEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct pst_sweep_keep pst_sweep_keep_t;

/* Keeps the k best jobs, ranked as a sweep's best is chosen: the highest rung first, then the
 * metric (higher first when maximize), then the trial. NULL when out of memory. */
pst_sweep_keep_t *pst_sweep_keep_new(int k, bool maximize);
void pst_sweep_keep_destroy(pst_sweep_keep_t **keep_p);

/* A finished job's model (model is taken, whatever happens: kept or freed). A trial's job
 * replaces its earlier one. A non-finite metric is never kept. */
void pst_sweep_keep_offer(pst_sweep_keep_t *keep, int trial, int rung, double metric,
                          uint8_t *model, size_t len);

/* Writes DIR/top_models/trial_T.pst (atomically) for each kept model not written yet, and removes
 * the files of trials that left the top k. */
int pst_sweep_keep_write(pst_sweep_keep_t *keep, const char *dir, pst_err_t *err);

/* The trials kept, best first (ids[0..n)); returns n. */
int pst_sweep_keep_trials(const pst_sweep_keep_t *keep, int *ids, int cap);

#endif
