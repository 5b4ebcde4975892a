/* pstrain train for sparse models (model.type sparse_lr or fm): LIBSVM click data kept sparse,
 * trained in this process or by workers against parameter servers that create rows on first
 * touch. */
#ifndef PST_APP_SPARSE_SPARSE_TRAIN_H
#define PST_APP_SPARSE_SPARSE_TRAIN_H

#include <stdbool.h>

#include "app/mpi/ranks.h"
#include "common/config.h"

/* True when model.type names a sparse model. */
bool pst_sparse_train_selected(const pst_config_t *cfg);

/* Trains in this process and writes the run directory (out, or runs/NAME-STAMP): config.yaml,
 * metrics.jsonl and report.json; no model file. resume must be NULL (sparse runs do not resume).
 * Returns the exit status: 0, 1 on failure (the message printed), 2 on a usage error. */
int pst_sparse_train_local(const pst_config_t *cfg, const char *out, const char *resume);

/* One worker rank of a distributed sparse run; the server ranks run unchanged. Loads the data as
 * a local run would, joins the start-up exchange (pst_ranks_exchange, once), trains its
 * rank-strided share of the training rows with sparse pulls and pushes of exactly each batch's
 * keys plus a one-float bias tensor, and on worker 0 evaluates validation at epoch ends and test
 * at the end and writes run_dir. Collective over the workers; with cluster.elastic the epoch
 * ends and the final agreement go through server 0 instead, so a worker the servers declared dead
 * holds nobody up (it rejoins at their clock when it comes back), and *missing is set when one
 * was dropped and did not come back (the caller's final join must not wait for it). Returns the
 * exit status. */
int pst_sparse_train_worker(pst_ranks_t *ranks, const pst_config_t *cfg, const char *run_dir,
                            bool resume, bool *missing);

#endif
