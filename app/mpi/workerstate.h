/* A distributed worker's running statistics (batchnorm moments) across checkpoints: saved at
 * the servers' checkpoint clocks (the last two kept), restored on --resume. */
#ifndef PST_APP_MPI_WORKERSTATE_H
#define PST_APP_MPI_WORKERSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "worker/model/model.h"
#include "worker/train/train.h"

typedef struct pst_workerstate {
    pst_model_t *model;
    char path[1200]; /* DIR/worker-W.state */
    long every;      /* cluster.checkpoint_every */
} pst_workerstate_t;

/* With a model that has running statistics and every > 0, sets hooks->on_clock to save them
 * at each clock the servers checkpoint (a multiple of every). ws must outlive the training. */
void pst_workerstate_hooks(pst_workerstate_t *ws, pst_model_t *model, const char *ckpt_dir,
                           int worker, long every, pst_train_hooks_t *hooks);

/* A run resumed at clock: loads the worker's statistics of that clock (a missing file, or one of
 * another clock, is a warning: they start afresh). At an epoch's end (clock a multiple of
 * steps_per_epoch) they are then averaged over the workers through hooks->allreduce_sum, as the
 * uninterrupted run did there. */
int pst_workerstate_resume(pst_workerstate_t *ws, uint64_t clock, long steps_per_epoch,
                           const pst_train_hooks_t *hooks, pst_err_t *err);

#endif
