/* The best epoch's weights of a sparse trainer, kept while training goes on and put back at the
 * end (train.restore_best): a local sparse model's rows and bias, a local wide & deep model's
 * rows and dense stack, or the servers' model (rows and bias, or wide & deep) pulled into a local
 * one. */
#ifndef PST_WORKER_TRAIN_SPARSE_BEST_H
#define PST_WORKER_TRAIN_SPARSE_BEST_H

#include <stddef.h>

#include "common/err.h"
#include "worker/model/sparse_model.h"
#include "worker/train/sparse_loop.h"
#include "worker/train/sparse_remote.h"
#include "worker/train/wide_deep_local.h"
#include "worker/train/wide_deep_remote.h"

/* Read the fields. Exactly one of model, wd, remote and wd_remote is set by the init functions. */
typedef struct pst_sparse_best {
    pst_sparse_model_t *model;   /* local model, restored in place (not owned) */
    pst_wd_local_t *wd;          /* local wide & deep, restored in place (not owned) */
    pst_sparse_remote_t *remote; /* servers' model (not owned) */
    pst_sparse_snapshot_t snap;  /* model, wd: the rows */
    float *dense;                // (n_dense) wd: the dense stack's parameters
    size_t n_dense;
    pst_sparse_model_t *copy;       /* remote: the pulled model (owned) */
    pst_wd_remote_t *wd_remote;     /* servers' wide & deep model (not owned) */
    pst_wd_local_t *wd_copy;        /* wd_remote: the pulled model (owned) */
    pst_sparse_trainer_t wd_scorer; /* wd_remote: the trainer of wd_copy */
    int epoch;                      /* the epoch kept; 0: none yet */
} pst_sparse_best_t;

void pst_sparse_best_init_local(pst_sparse_best_t *best, pst_sparse_model_t *model);
void pst_sparse_best_init_wd(pst_sparse_best_t *best, pst_wd_local_t *wd);
/* opts: those of a local model of the remote's rows (its spec must be the remote's); only the
 * spec is used for scoring. The remote must have its trained keys marked. */
int pst_sparse_best_init_remote(pst_sparse_best_t *best, pst_sparse_remote_t *remote,
                                const pst_sparse_train_opts_t *opts, pst_err_t *err);
/* copy: a local model of the remote's spec, owned by best from here (also on failure elsewhere);
 * scorer: the caller's trainer of copy, handed back by a restore. The remote must have its trained
 * keys marked. */
void pst_sparse_best_init_wd_remote(pst_sparse_best_t *best, pst_wd_remote_t *remote,
                                    pst_wd_local_t *copy, pst_sparse_trainer_t scorer);
void pst_sparse_best_fini(pst_sparse_best_t *best);

/* Keeps the current weights as those of epoch. */
int pst_sparse_best_save(pst_sparse_best_t *best, int epoch, pst_err_t *err);

/* Puts the kept weights back (nothing to do before the first save) and sets *trainer to one that
 * scores with them: local models are restored in place and keep their trainer; a remote's
 * trainer becomes the local trainer of the pulled copy. */
int pst_sparse_best_restore(pst_sparse_best_t *best, pst_sparse_trainer_t *trainer, pst_err_t *err);

#endif
