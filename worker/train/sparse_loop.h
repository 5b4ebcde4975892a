/* The sparse training loop: epochs of CSR mini-batches (windows, shuffled copies or a stream) fed
 * to a trainer's step hook, and evaluation through its predict hook. */
#ifndef PST_WORKER_TRAIN_SPARSE_LOOP_H
#define PST_WORKER_TRAIN_SPARSE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/data/sparsestream.h"
#include "common/err.h"
#include "common/eval/metrics.h"
#include "common/rng.h"
#include "worker/model/sparse_model.h"

/* What trains: the local model, a wide & deep model or the parameter servers behind hooks. */
typedef struct pst_sparse_trainer {
    void *ctx;
    /* One optimizer step on a labelled batch; *loss = its mean log-loss before the step. */
    int (*step)(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err);
    /* prob (n_rows) of a batch under the current weights; keys never trained count as zero. */
    int (*predict)(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err);
    /* Optional (NULL: no look-ahead). Every batch is handed to prepare, in order, before step
     * receives it: an epoch's first batch, then each next batch before the current one's step,
     * so a trainer can fetch a batch's weights while the one before it computes (at most two
     * prepared batches wait for their steps; opts.ahead + 1 with a deeper look-ahead).
     * A batch stays valid and unchanged until its step returns. The loop looks ahead only within an
     * epoch (never across evaluation) and not on streams, whose batches live only until the next
     * one is read. */
    int (*prepare)(void *ctx, const pst_sparse_batch_t *next, pst_err_t *err);
    /* Optional (BSP with elastic workers): asked after each step, how many steps the servers
     * went on without this worker (it was stopped past their heartbeat timeout and declared
     * dead), 0 when none. The trainer is then at the servers' clock with nothing in flight; the
     * loop passes over as many batches, into later epochs if need be (as a resumed run passes
     * over its checkpoint's), so the batches that follow are those of the uninterrupted run. */
    uint64_t (*rejoin)(void *ctx);
} pst_sparse_trainer_t;

#define PST_SPARSE_LOOP_MAX_AHEAD 3

/* The trainer of a local model (pst_sparse_model_update and pst_sparse_model_predict). */
pst_sparse_trainer_t pst_sparse_trainer_local(pst_sparse_model_t *model);

typedef struct pst_sparse_loop_opts {
    size_t batch_size;      /* rows per step, > 0 */
    bool shuffle;           /* epochs after the first reshuffle the rows (the first reads them as
                               stored: a training split comes in a seeded random order already) */
    uint64_t seed;          /* the shuffles' */
    long steps_per_epoch;   /* at most this many steps an epoch; 0: every batch */
    const char *source;     /* streamed data: its name in messages (the file) */
    const char *model_type; /* streamed data: the model's name in messages */
    /* A resumed run: the steps its servers' checkpoint already holds. The CSR epochs pass over
     * their first skip_steps batches without stepping; epochs passed over still draw their
     * shuffles, so the batches after them are those an uninterrupted run takes. */
    uint64_t skip_steps;
    /* With a prepare hook: batches prepared beyond the current one, 1 (0 counts as 1) up to
     * PST_SPARSE_LOOP_MAX_AHEAD; batch k + ahead is prepared before batch k steps. The trainer
     * must take that many (a remote sparse trainer: its prefetch depth). */
    int ahead;
} pst_sparse_loop_opts_t;

/* What one epoch did (batches passed over by opts.skip_steps are not counted). */
typedef struct pst_sparse_epoch {
    double loss; /* mean batch loss; NaN without steps */
    size_t steps, rows, nnz;
} pst_sparse_epoch_t;

/* A batch of gathered rows, reused from batch to batch. */
typedef struct pst_sparse_loop_batch {
    size_t rows_cap, nnz_cap;
    size_t *row_ptr; // (rows_cap + 1)
    uint32_t *col;   // (nnz_cap)
    float *val;      // (nnz_cap)
    float *y;        // (rows_cap)
} pst_sparse_loop_batch_t;

/* Read the fields. */
typedef struct pst_sparse_loop {
    pst_sparse_trainer_t trainer;
    pst_sparse_loop_opts_t opts;
    pst_rng_t rng;
    size_t *order; // (order_n) this epoch's row order; NULL: as stored
    size_t order_n;
    /* the current batch and those looked ahead to; batch k in slot k % (ahead + 1) */
    pst_sparse_loop_batch_t batch[PST_SPARSE_LOOP_MAX_AHEAD + 1];
    uint64_t skip_left; /* of opts.skip_steps */
} pst_sparse_loop_t;

void pst_sparse_loop_init(pst_sparse_loop_t *self, pst_sparse_trainer_t trainer,
                          const pst_sparse_loop_opts_t *opts);
void pst_sparse_loop_fini(pst_sparse_loop_t *self);

/* One pass over a CSR set of labels 0/1, epoch counted from 1. */
int pst_sparse_loop_epoch(pst_sparse_loop_t *self, const pst_dataset_t *train, int epoch,
                          pst_sparse_epoch_t *out, pst_err_t *err);
/* One pass over a stream (rewound after the first epoch); labels 0/1 or -1/+1 become 0/1, others
 * are PST_EFORMAT naming the row. */
int pst_sparse_loop_stream_epoch(pst_sparse_loop_t *self, pst_sparse_stream_t *stream, int epoch,
                                 pst_sparse_epoch_t *out, pst_err_t *err);

/* Scores every row of a CSR set with the trainer's predict hook, in chunks; a set without rows
 * gives pst_binary_metrics_none. */
int pst_sparse_evaluate(const pst_sparse_trainer_t *trainer, const pst_dataset_t *d,
                        pst_binary_metrics_t *m, pst_err_t *err);
/* The same, handing the probabilities (n_rows of them; caller frees) to *prob, or NULL for a set
 * without rows or on failure. */
int pst_sparse_evaluate_keep(const pst_sparse_trainer_t *trainer, const pst_dataset_t *d,
                             pst_binary_metrics_t *m, float **prob, pst_err_t *err);

#endif
