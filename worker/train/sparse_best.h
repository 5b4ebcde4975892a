/* The best epoch's weights of a sparse trainer, kept while training goes on and put back at the
 * end (train.restore_best): a local sparse model's rows and bias, a local wide & deep model's
 * rows and dense stack, or the servers' rows and bias pulled into a local model. */
#ifndef PST_WORKER_TRAIN_SPARSE_BEST_H
#define PST_WORKER_TRAIN_SPARSE_BEST_H

#include <stddef.h>

#include "common/err.h"
#include "worker/model/sparse_model.h"
#include "worker/train/sparse_loop.h"
#include "worker/train/sparse_remote.h"
#include "worker/train/wide_deep_local.h"

/* Read the fields. Exactly one of model, wd and remote is set by the init functions. */
typedef struct pst_sparse_best {
    pst_sparse_model_t *model;   /* local model, restored in place (not owned) */
    pst_wd_local_t *wd;          /* local wide & deep, restored in place (not owned) */
    pst_sparse_remote_t *remote; /* servers' model (not owned) */
    pst_sparse_snapshot_t snap;  /* model, wd: the rows */
    float *dense;                // (n_dense) wd: the dense stack's parameters
    size_t n_dense;
    pst_sparse_model_t *copy; /* remote: the pulled model (owned) */
    int epoch;                /* the epoch kept; 0: none yet */
} pst_sparse_best_t;

void pst_sparse_best_init_local(pst_sparse_best_t *best, pst_sparse_model_t *model);
void pst_sparse_best_init_wd(pst_sparse_best_t *best, pst_wd_local_t *wd);
/* opts: those of a local model of the remote's rows (its spec must be the remote's); only the
 * spec is used for scoring. The remote must have its trained keys marked. */
int pst_sparse_best_init_remote(pst_sparse_best_t *best, pst_sparse_remote_t *remote,
                                const pst_sparse_train_opts_t *opts, pst_err_t *err);
void pst_sparse_best_fini(pst_sparse_best_t *best);

/* Keeps the current weights as those of epoch. */
int pst_sparse_best_save(pst_sparse_best_t *best, int epoch, pst_err_t *err);

/* Puts the kept weights back (nothing to do before the first save) and sets *trainer to one that
 * scores with them: local models are restored in place and keep their trainer; a remote's
 * trainer becomes the local trainer of the pulled copy. */
int pst_sparse_best_restore(pst_sparse_best_t *best, pst_sparse_trainer_t *trainer, pst_err_t *err);

#endif
