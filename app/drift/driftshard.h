/* Drift profiles of training data split over workers (one data file per worker): every worker
 * profiles its own rows and the workers agree on one profile through reductions. */
#ifndef PST_APP_DRIFT_DRIFTSHARD_H
#define PST_APP_DRIFT_DRIFTSHARD_H

#include "app/shardload.h"
#include "common/drift/profile.h"

/* The profile of the union of every worker's train (numeric columns: per-worker files refuse
 * categorical ones) and of its labels. Bin edges are the quantiles of each worker's rows
 * averaged over workers, weighted by their rows (close to the quantiles of the union when the
 * files are alike); the counts, missing cells, minima and maxima are exact over all rows. Every
 * worker must call this (it reduces) and gets the same profile. Caller owns *out. */
int pst_drift_profile_fit_shards(const pst_dataset_t *train, const pst_reducer_t *r,
                                 pst_drift_profile_t **out, pst_err_t *err);

#endif
