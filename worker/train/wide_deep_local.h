/* Wide & deep trained in this process: the sparse rows in a local sparse model's key map with
 * FTRL or AdaGrad beside them, the MLP stepped by a common/optim optimizer. */
#ifndef PST_WORKER_TRAIN_WIDE_DEEP_LOCAL_H
#define PST_WORKER_TRAIN_WIDE_DEEP_LOCAL_H

#include <stdint.h>

#include "common/err.h"
#include "common/optim/optim.h"
#include "worker/model/sparse_model.h"
#include "worker/model/wide_deep.h"

typedef struct pst_wd_local_opts {
    /* The rows' store: spec.kind PST_SPARSE_FM with spec.n_factors = the embedding dimension
     * (its rows are [w | e], as wide & deep's), optimizer, init_scale and init_seed. The store's
     * bias is not used. */
    pst_sparse_train_opts_t rows;
    pst_optim_cfg_t dense; /* the MLP's optimizer, stepped on batch-mean gradients */
    float dense_lr;
    uint64_t dense_seed;   /* MLP initialisation */
    uint64_t dropout_seed; /* step s draws its dropout masks from pst_rng_derive(seed, s) */
} pst_wd_local_opts_t;

typedef struct pst_wd_local pst_wd_local_t;

/* Caller owns the result. */
pst_wd_local_t *pst_wd_local_new(const pst_wide_deep_spec_t *spec, const pst_wd_local_opts_t *opts,
                                 pst_err_t *err);
void pst_wd_local_destroy(pst_wd_local_t **self_p);

/* One step on a labelled batch (at most spec.max_batch rows): creates new keys' rows, computes
 * the gradient, steps the touched rows and the MLP. *loss (may be NULL) is the batch's mean
 * log-loss before the step. */
int pst_wd_local_update(pst_wd_local_t *self, const pst_sparse_batch_t *b, double *loss,
                        pst_err_t *err);
/* prob (n_rows); keys never trained count as zero rows and are not created. */
int pst_wd_local_predict(pst_wd_local_t *self, const pst_sparse_batch_t *b, float *prob,
                         pst_err_t *err);

/* The parts, for saving: the model (its MLP holds the dense weights) and the rows' store. */
pst_wide_deep_t *pst_wd_local_model(pst_wd_local_t *self);
pst_sparse_model_t *pst_wd_local_rows(pst_wd_local_t *self);

#endif
