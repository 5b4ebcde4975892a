/* Per-step figures of a distributed training run for report.json: what a worker's step spends
 * computing and waiting, the bytes it moves each way, and what the servers spend per request.
 * They are the inputs of scripts/bench/scaling.sh's projection to more workers and servers. */
#ifndef PST_APP_MPI_STEPTIME_H
#define PST_APP_MPI_STEPTIME_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "worker/psclient.h"

/* One worker's training figures in a fixed order, for the caller to sum over workers. */
enum {
    PST_STEPTIME_STEPS,
    PST_STEPTIME_SECONDS, /* wall time of the training steps */
    PST_STEPTIME_PULL_WAIT_MS,
    PST_STEPTIME_PUSH_WAIT_MS,
    PST_STEPTIME_BYTES_SENT, /* wire bytes, worker to servers */
    PST_STEPTIME_BYTES_RECEIVED,
    PST_STEPTIME_N
};

/* The difference of the link counters `from` and `to`, taken around the training steps (so that
 * set-up and evaluation traffic stay out), with the steps and their seconds. */
void pst_steptime_worker(const pst_psclient_stats_t *from, const pst_psclient_stats_t *to,
                         double steps, double seconds, double out[PST_STEPTIME_N]);

/* Adds comm.step from figures summed over workers: per-step means of a worker's step time, its
 * pull wait, push wait and the rest (compute: everything but waiting on the servers), and the
 * wire bytes it sent and received. */
void pst_steptime_json(cJSON *comm, const double sum[PST_STEPTIME_N]);

/* Adds comm.server from counters summed over servers (PST_STAT_* order): time per push and per
 * pull request, bytes in and out, and the servers' busy time per worker step (steps: summed over
 * workers). */
void pst_steptime_server_json(cJSON *comm, const double counters[PST_STAT_COUNT], double steps);

/* Asks each of n_servers for its counters and adds their sums as comm.server; a server that does
 * not answer leaves comm.server out (logged), since a partial sum would read as a low figure. */
void pst_steptime_query_servers(cJSON *comm, pst_psclient_t *client, int n_servers, double steps);

#endif
