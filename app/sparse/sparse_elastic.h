/* Elastic sparse jobs (cluster.elastic): a distributed sparse run's epoch-end agreement goes
 * through server 0 (app/mpi/elastic) instead of MPI, so a worker the servers declared dead holds
 * nobody up, and the lead states every drop in report.json. */
#ifndef PST_APP_SPARSE_SPARSE_ELASTIC_H
#define PST_APP_SPARSE_SPARSE_ELASTIC_H

#include <stdbool.h>
#include <stdint.h>

#include "app/mpi/remote.h"
#include "app/sparse/sparse_run.h"

/* The agreement after the epoch that ends at clock: rc is this worker's status so far; returns
 * PST_OK when every live worker succeeded and sets *stop to the lead's early-stopping decision
 * (the other workers pass false). A worker back from being dropped whose epoch end the servers
 * have forgotten goes on (PST_OK, *stop false): the trainer's rejoin hook then moves it to their
 * clock. */
int pst_sparse_elastic_agree(pst_remote_t *link, uint64_t clock, int rc, bool *stop,
                             pst_err_t *err);

/* Lead, after the final agreement of n sums (pst_elastic_finish on link): the workers dropped,
 * the clocks they missed and their rows not seen (every worker holds a rank-strided share of
 * run->n_train_rows), logged and kept in run->elastic for report.json. final_clock: the run's
 * last clock. */
void pst_sparse_elastic_report(pst_sparse_run_t *run, const pst_remote_t *link, int n,
                               uint64_t final_clock);

#endif
