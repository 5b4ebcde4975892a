/* Elastic BSP for a dense mpirun job: the workers' epoch sums and their final agreement go
 * through server 0 instead of MPI collectives, so a worker the servers declared dead (silent past
 * cluster.heartbeat_timeout) holds nobody up; when it comes back it rejoins at the servers' clock;
 * the lead states every drop (which worker, which clocks, the rows not seen) in report.json and
 * the log. */
#ifndef PST_APP_MPI_ELASTIC_H
#define PST_APP_MPI_ELASTIC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/mpi/remote.h"

/* The clock of the job's final reduction (the agreement after training). */
#define PST_ELASTIC_FINAL_CLOCK UINT64_MAX
/* Seconds a failed worker gives its figures to reach server 0 for the others' final agreement. */
#define PST_ELASTIC_FAILED_SEND_S 0.2

/* Sums vals[0..n) over the live workers through server 0, as the reduction at the worker's clock
 * (the k-th there); r->reduce_buf keeps the result with every worker's drops. PST_ESTATE when
 * that reduction is long gone (this worker was away): pst_elastic_rejoin_clock then has the
 * servers' clock. */
int pst_elastic_reduce(pst_remote_t *r, double *vals, int n, pst_err_t *err);
/* The same at a given clock. */
int pst_elastic_reduce_at(pst_remote_t *r, uint64_t clock, double *vals, int n, pst_err_t *err);
/* The train hook rejoin_clock (ctx: the remote): the clock a stale push revealed, after waiting
 * for the pulls in flight. */
uint64_t pst_elastic_rejoin_clock(void *ctx, uint64_t clock);

/* The final agreement of an elastic job (after training; rc: this worker's outcome) through
 * server 0: vals[0..n) summed over the live workers in place, vals[0] being each worker's
 * failure flag (1 when rc failed). A failed worker only sends its figures (for
 * PST_ELASTIC_FAILED_SEND_S) and does not wait for the others. *missing (may be NULL) is set when a
 * worker was dropped and did not come back. Returns whether the run failed: here, at any worker, at
 * the reduction (the error printed for worker `worker`), or because the lead worker (0) was dropped
 * and is not back (the run then has no report). */
bool pst_elastic_finish(pst_remote_t *r, int rc, double *vals, int n, int worker, bool *missing);

/* Whether worker w's values were in the last reduction of n sums. */
bool pst_elastic_contributed(const pst_remote_t *r, int n, int w);

/* One absence of a worker: clocks [dropped_at, until) not trained by it. */
typedef struct pst_elastic_drop {
    int worker;
    uint64_t dropped_at, until;
    bool rejoined;
    double rows_not_seen;
} pst_elastic_drop_t;

/* The drops the last reduction of n sums reports (at most cap), with the rows each worker did not
 * train: share_rows[w] rows per epoch in steps_per_epoch steps of batch rows; a worker that did
 * not rejoin is counted up to final_clock. Returns how many. */
int pst_elastic_drops(const pst_remote_t *r, int n, const long *share_rows, long steps_per_epoch,
                      long batch, uint64_t final_clock, pst_elastic_drop_t *out, int cap);
/* Logs each drop and adds report.json's "elastic" section to extra. */
void pst_elastic_report(cJSON *extra, const pst_elastic_drop_t *drops, int n_drops);

#endif
