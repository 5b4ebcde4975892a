/* Per-worker data files (data.train with a {worker} pattern): each worker reads only its own
 * file, and the workers agree on task, classes, width and preprocessing through reductions. */
#ifndef PST_APP_SHARDLOAD_H
#define PST_APP_SHARDLOAD_H

#include <stdbool.h>

#include "app/pipeline.h"
#include "common/config.h"

#define PST_WORKER_PATTERN "{worker}"

/* Element-wise sums or maxima of vals[0..n) over every worker, in place. */
typedef struct pst_reducer {
    void *ctx;
    int (*sum)(void *ctx, double *vals, int n, pst_err_t *err);
    int (*max)(void *ctx, double *vals, int n, pst_err_t *err);
} pst_reducer_t;

/* True when path names one file per worker. */
bool pst_shardload_is_pattern(const char *path);

/* Loads worker's own training file (the pattern with {worker} replaced by its index), carves its
 * validation part, loads data.test, and fits preprocessing on the union of every worker's
 * training part: mean imputation with a standard or min-max scaler, whose statistics are exact
 * sums over workers. Classification labels must be integers 0..K-1 (K agreed as the largest
 * label + 1). p->train and p->val hold this worker's rows only. Every worker must call this
 * (it reduces); a failure on one worker makes every worker return an error. */
int pst_shardload(pst_pipeline_t *p, const pst_config_t *cfg, int worker,
                  const pst_reducer_t *reduce, pst_err_t *err);

#endif
